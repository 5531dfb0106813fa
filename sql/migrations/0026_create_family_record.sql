-- 0026_create_family_record.sql -- what the back office records of a
-- family besides the town file (issue 26): its quotient familial with the
-- date it takes effect, the children's allergies, and its archiving
-- (RGPD).  Its people (who may pick the children up, who to call in an
-- emergency) are 0024's entourage_person, which the family and the back
-- office share.
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

alter table child add column allergies text;
alter table child add constraint child_allergies_size
    check (length(allergies) <= 1000);

alter table family add column archived_at timestamptz;
alter table family add column archived_by text;

create sequence family_number;
