-- 0024_create_entourage_qf_change.sql -- the family's entourage, its
-- changes of quotient familial, and paperless invoices (issue 25).
--
-- The entourage: people allowed to pick a child up, emergency contacts.
-- The family adds and edits them in guichet-office (/api/entourage); only
-- the town removes one (DELETE /api/staff/entourage/{id}, audited): the
-- row stays, with removed_at, removed_by and the reason.
--
-- A change of situation or of quotient familial: the family asks with
-- its tax notice attached (a document it uploaded, POST /api/qf-changes;
-- if the family withdraws that document, document_id becomes null);
-- an agent validates it with the new QF and the date it applies from, or
-- refuses it with a reason (audited).  The validated QF becomes
-- family.qf at once (the publisher lays it over the town file: the next
-- bookings are priced on its band; booked ones keep their price), and a
-- reload of the town file keeps it.  A new request replaces the one
-- waiting (annulee).
--
-- Paperless invoices, « adhésion à la facture en ligne »:
-- The family opts in or out in guichet-office (PUT /api/contact/paperless,
-- audited).  The monthly invoicing (backend/invoice.c) then, in the
-- transaction that creates the month's invoices, records for each new
-- invoice whether it is to be printed and posted (invoice.paper: the
-- family did not opt in) and queues an e-mail (outbox kind invoice) to
-- the families that did.  invoice.paper is null for invoices issued
-- before this migration.

alter table family
    add column paperless boolean not null default false,
    add column paperless_changed_at timestamptz;

alter table invoice add column paper boolean;

create table entourage_person (
    id              bigint      generated always as identity,
    family_id       text        not null,
    first_name      text        not null,
    last_name       text        not null,
    relation        text        not null,
    phone           text        not null,
    can_pick_up     boolean     not null,
    emergency       boolean     not null,
    created_at      timestamptz not null default now(),
    updated_at      timestamptz not null default now(),
    removed_at      timestamptz,
    removed_by      text,
    removal_reason  text,
    constraint entourage_person_pkey primary key (id),
    constraint entourage_person_family_fkey foreign key (family_id)
        references family (id) on delete cascade,
    constraint entourage_person_phone check
        (phone ~ '^\+?[0-9 .()-]{6,25}$'),
    constraint entourage_person_role check (can_pick_up or emergency)
);

create index entourage_person_family_idx on entourage_person (family_id);

create table qf_change (
    id              bigint      generated always as identity,
    family_id       text        not null,
    document_id     bigint,
    comment         text,
    status          text        not null default 'demandee',
    reason          text,
    qf              integer,
    effective_from  date,
    requested_at    timestamptz not null default now(),
    decided_at      timestamptz,
    decided_by      text,
    constraint qf_change_pkey primary key (id),
    constraint qf_change_family_fkey foreign key (family_id)
        references family (id) on delete cascade,
    constraint qf_change_document_fkey foreign key (document_id)
        references document (id) on delete set null,
    constraint qf_change_status check (status in
        ('demandee', 'validee', 'refusee', 'annulee')),
    constraint qf_change_decided check (status <> 'validee'
        or (qf is not null and effective_from is not null)),
    constraint qf_change_qf check (qf is null or qf between 0 and 1000000),
    constraint qf_change_refusal_reason check (status <> 'refusee'
        or reason is not null)
);

create unique index qf_change_pending_key on qf_change (family_id)
    where status = 'demandee';
create index qf_change_status_idx on qf_change (status, requested_at);
