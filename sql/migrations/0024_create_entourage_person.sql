-- 0024_create_entourage_person.sql -- the family's entourage, and
-- paperless invoices (issue 25).
--
-- The entourage: people allowed to pick a child up, emergency contacts.
-- The family adds and edits them in guichet-office (/api/entourage); only
-- the town removes one (DELETE /api/staff/entourage/{id}, audited): the
-- row stays, with removed_at, removed_by and the reason.
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
