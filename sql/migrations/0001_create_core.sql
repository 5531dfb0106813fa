-- 0001_create_core.sql -- the core schema of Guichet.
--
-- Applied by `guichetctl migrate` in one transaction together with its
-- schema_migrations row.  Forward-only: never edit an applied migration,
-- add 0002_... instead.  PostgreSQL owns the durable facts: the town's
-- catalogue and families (written by `guichetctl load-town`), demandes and
-- bookings (written by guichet-worker from the Redis stream {T}:stream).

create table schema_migrations (
    version     integer     not null,
    name        text        not null,
    applied_at  timestamptz not null default now(),
    constraint schema_migrations_pkey primary key (version)
);

-- one row: the town this database serves
create table town (
    id          smallint    not null default 1,
    name        text        not null,
    timezone    text        not null,
    constraint town_pkey primary key (id),
    constraint town_single check (id = 1)
);

-- the published catalogue (gch_town_write output of the last loaded file);
-- version grows by one each time the text changes
create table catalogue (
    id          smallint    not null default 1,
    version     bigint      not null,
    json        text        not null,
    updated_at  timestamptz not null default now(),
    constraint catalogue_pkey primary key (id),
    constraint catalogue_single check (id = 1)
);

create table unit (
    code        text        not null,
    label       text        not null,
    starts_min  integer     not null,
    ends_min    integer     not null,
    constraint unit_pkey primary key (code),
    constraint unit_times check (0 <= starts_min and starts_min < ends_min
                                 and ends_min <= 1440)
);

create table activity (
    id                      text        not null,
    name                    text        not null,
    site                    text,
    age_min                 integer     not null,
    age_max                 integer     not null,
    booking_opens_at        timestamptz,
    deadline_kind           text        not null,
    deadline_n              integer     not null default 0,
    online_share_percent    integer     not null,
    week_required           boolean     not null,
    constraint activity_pkey primary key (id),
    constraint activity_deadline_kind check (deadline_kind in
        ('none', 'working_days', 'hours', 'day_before_at')),
    constraint activity_share check (online_share_percent between 0 and 100)
);

-- price bands in file order; qf_max null = no upper bound
create table activity_price (
    activity_id text        not null,
    position    integer     not null,
    qf_max      integer,
    cents       integer     not null,
    constraint activity_price_pkey primary key (activity_id, position),
    constraint activity_price_activity_fkey foreign key (activity_id)
        references activity (id) on delete cascade,
    constraint activity_price_cents check (cents >= 0)
);

create table session (
    id              text        not null,
    activity_id     text        not null,
    date            date        not null,
    unit_code       text        not null,
    label           text        not null,
    places          integer     not null,
    places_online   integer     not null,
    constraint session_pkey primary key (id),
    constraint session_activity_fkey foreign key (activity_id)
        references activity (id),
    constraint session_unit_fkey foreign key (unit_code)
        references unit (code),
    constraint session_places check (0 <= places_online
                                     and places_online <= places)
);

create index session_activity_date_idx on session (activity_id, date);

create table family (
    id              text        not null,
    login           text,
    password_hash   text,
    qf              integer,
    resident        boolean     not null,
    direct_debit    boolean     not null,
    constraint family_pkey primary key (id),
    constraint family_login_key unique (login)
);

create table child (
    id          text        not null,
    family_id   text        not null,
    first_name  text        not null,
    birth_date  date        not null,
    constraint child_pkey primary key (id),
    constraint child_family_fkey foreign key (family_id)
        references family (id)
);

create index child_family_idx on child (family_id);

create table enrolment (
    child_id    text        not null,
    activity_id text        not null,
    from_date   date        not null,
    to_date     date        not null,
    status      text        not null,
    constraint enrolment_pkey primary key (child_id, activity_id, from_date),
    constraint enrolment_child_fkey foreign key (child_id)
        references child (id) on delete cascade,
    constraint enrolment_activity_fkey foreign key (activity_id)
        references activity (id) on delete cascade,
    constraint enrolment_status check (status in
        ('demandee', 'validee', 'refusee')),
    constraint enrolment_period check (from_date <= to_date)
);

-- one row per processed demande of the stream (type "book")
create table demande (
    number      bigint      not null,
    request_id  text        not null,
    family_id   text        not null,
    kind        text        not null,
    status      text        not null,
    idem_key    text        not null,
    created_at  timestamptz not null,
    items       jsonb       not null,
    constraint demande_pkey primary key (number),
    constraint demande_request_id_key unique (request_id),
    constraint demande_family_fkey foreign key (family_id)
        references family (id),
    constraint demande_status check (status in ('traitee_positivement',
        'partielle', 'traitee_negativement', 'deposee'))
);

create index demande_family_idx on demande (family_id, created_at);

create table booking (
    id              text        not null,
    demande_number  bigint      not null,
    family_id       text        not null,
    child_id        text        not null,
    session_id      text        not null,
    price_cents     integer     not null,
    status          text        not null default 'confirmed',
    created_at      timestamptz not null,
    cancelled_at    timestamptz,
    billed          boolean     not null default true,
    constraint booking_pkey primary key (id),
    constraint booking_demande_fkey foreign key (demande_number)
        references demande (number),
    constraint booking_family_fkey foreign key (family_id)
        references family (id),
    constraint booking_child_fkey foreign key (child_id)
        references child (id),
    constraint booking_session_fkey foreign key (session_id)
        references session (id),
    constraint booking_status check (status in ('confirmed', 'cancelled'))
);

create index booking_session_idx on booking (session_id) where
    status = 'confirmed';
create index booking_family_idx on booking (family_id);

-- booking ids of attempts fenced by the reaper: never inserted again
create table voided_booking (
    id          text        not null,
    family_id   text        not null,
    idem_key    text        not null,
    voided_at   timestamptz not null default now(),
    constraint voided_booking_pkey primary key (id)
);
