-- 0026_create_family_record.sql -- what the back office records of a
-- family besides the town file (issue 26): its quotient familial with the
-- date it takes effect, its contacts (who may pick the children up), the
-- children's allergies, and its archiving (RGPD).
--
-- family_qf is the history of the QF the town recorded: the catalogue's
-- published QF is the latest whose effective_from has come
-- (worker/overlay.c); the rows stay for accounting (a price is justified
-- by the QF of its day), also after archiving.

create table family_qf (
    id              bigint      generated always as identity,
    family_id       text        not null,
    qf              integer,
    effective_from  date        not null,
    recorded_at     timestamptz not null default now(),
    recorded_by     text        not null,
    constraint family_qf_pkey primary key (id),
    constraint family_qf_family_fkey foreign key (family_id)
        references family (id),
    constraint family_qf_range check (qf is null
                                      or qf between 0 and 1000000)
);

create index family_qf_family_idx on family_qf (family_id, effective_from);

create table family_person (
    id          bigint      generated always as identity,
    family_id   text        not null,
    position    integer     not null,
    name        text        not null,
    relation    text        not null default '',
    phone       text        not null default '',
    email       text        not null default '',
    pick_up     boolean     not null default false,
    constraint family_person_pkey primary key (id),
    constraint family_person_family_fkey foreign key (family_id)
        references family (id) on delete cascade,
    constraint family_person_position_key unique (family_id, position),
    constraint family_person_name check (length(name) between 1 and 200),
    constraint family_person_sizes check (length(relation) <= 100
        and length(phone) <= 40 and length(email) <= 254)
);

alter table child add column allergies text;
alter table child add constraint child_allergies_size
    check (length(allergies) <= 1000);

alter table family add column archived_at timestamptz;
alter table family add column archived_by text;

create sequence family_number;
