-- schema.sql -- the PostgreSQL peer of the rush benchmark: what a town would
-- otherwise run, the same booking as one PostgreSQL transaction with row
-- locks (bench/pg_peer/book.pgbench).  Its own database, the same sizes as
-- the generated town: :sessions sessions, :children children.
--
-- A slot claim is the unique key (child_id, day, unit): the rush town's
-- units (MATIN, REPAS, APM) do not overlap each other, so "one child per
-- time slot" is exactly this key, as Guichet's SET NX claims are.

drop table if exists peer_booking;
drop table if exists peer_session;
drop table if exists peer_child;

create table peer_child (
    id          integer     not null,
    constraint peer_child_pkey primary key (id)
);

create table peer_session (
    id              integer     not null,
    day             integer     not null,
    unit            smallint    not null,
    places_online   integer     not null,
    places_left     integer     not null,
    constraint peer_session_pkey primary key (id),
    constraint peer_session_left check (places_left >= 0)
);

create table peer_booking (
    id          bigint generated always as identity,
    child_id    integer     not null,
    session_id  integer     not null,
    day         integer     not null,
    unit        smallint    not null,
    booked_at   timestamptz not null default now(),
    constraint peer_booking_pkey primary key (id),
    constraint peer_booking_slot_key unique (child_id, day, unit),
    constraint peer_booking_child_fkey foreign key (child_id)
        references peer_child (id),
    constraint peer_booking_session_fkey foreign key (session_id)
        references peer_session (id)
);

insert into peer_child (id) select g from generate_series(1, :children) g;

-- session i: day i / 3, unit i % 3; the first :hot sessions (the benchmark's
-- hot cells) have :hot_places online places, the others :places.
insert into peer_session (id, day, unit, places_online, places_left)
select g, g / 3, g % 3,
       case when g <= :hot then :hot_places else :places end,
       case when g <= :hot then :hot_places else :places end
  from generate_series(1, :sessions) g;

analyze;
