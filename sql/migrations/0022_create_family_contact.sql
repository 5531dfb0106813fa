-- 0022_create_family_contact.sql -- a family's contact details, and the
-- changes of postal address the town validates (issue 25).
--
-- The family edits its phones in guichet-office (PUT /api/contact; its
-- e-mail stays in family_email, migration 0005) at once.  A new postal
-- address only asks (POST /api/contact/address): it may change the
-- family's residence and so its price band, so an agent validates it
-- (saying whether the family now lives in the town) or refuses it with a
-- reason (POST /api/staff/address-changes/{id}/decision, audited).  The
-- validated address is family_contact's; the family sees its pending
-- request.  At most one request waits per family: a new one replaces it
-- (status annulee).  The residence an agent decides outlives a reload of
-- the town file (load-town keeps family.resident then).

create table family_contact (
    family_id       text        not null,
    phone_home      text,
    phone_mobile    text,
    phone_work      text,
    address_line1   text,
    address_line2   text,
    postcode        text,
    city            text,
    updated_at      timestamptz not null default now(),
    constraint family_contact_pkey primary key (family_id),
    constraint family_contact_family_fkey foreign key (family_id)
        references family (id) on delete cascade,
    constraint family_contact_phones check (
        (phone_home is null or phone_home ~ '^\+?[0-9 .()-]{6,25}$')
        and (phone_mobile is null or phone_mobile ~ '^\+?[0-9 .()-]{6,25}$')
        and (phone_work is null or phone_work ~ '^\+?[0-9 .()-]{6,25}$')),
    constraint family_contact_address check ((address_line1 is null)
        = (city is null) and (address_line1 is null) = (postcode is null))
);

create table address_change (
    id              bigint      generated always as identity,
    family_id       text        not null,
    address_line1   text        not null,
    address_line2   text,
    postcode        text        not null,
    city            text        not null,
    status          text        not null default 'demandee',
    reason          text,
    resident        boolean,
    requested_at    timestamptz not null default now(),
    decided_at      timestamptz,
    decided_by      text,
    constraint address_change_pkey primary key (id),
    constraint address_change_family_fkey foreign key (family_id)
        references family (id) on delete cascade,
    constraint address_change_status check (status in
        ('demandee', 'validee', 'refusee', 'annulee')),
    constraint address_change_refusal_reason check (status <> 'refusee'
        or reason is not null)
);

create unique index address_change_pending_key on address_change (family_id)
    where status = 'demandee';
create index address_change_status_idx on address_change (status,
    requested_at);
