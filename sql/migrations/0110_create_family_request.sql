-- 0110_create_family_request.sql -- a new family asks for a file online
-- (issue 25, office/request.c): « Créer mon espace » for a family the
-- town does not know yet.
--
-- The request makes the family's rows at once (family without a login,
-- its children, e-mail, phone and address) and this row, which keeps the
-- parents' names, the login and password hash chosen and the SHA-256 of
-- the e-mail confirmation link (24 hours, single use).  Confirming the
-- link gives the family its login (status en_attente): it can log in,
-- see its pending state and upload documents, but it is not in the
-- catalogue, so the booking path does not know it, and the office
-- refuses its enrolment requests (409 family_pending).  An agent
-- validates the file (the family enters the catalogue: validee) or
-- refuses it with a reason (refusee); both are e-mailed.
--
-- A login promised to a request not yet confirmed is not free
-- (gcho_login_free).

create table family_request (
    family_id           text collate "C" not null,
    parent1_first_name  text        not null,
    parent1_last_name   text        not null,
    parent2_first_name  text,
    parent2_last_name   text,
    email               text        not null,
    login               text        not null,
    password_hash       text        not null,
    cgu_version         integer     not null,
    confirm_hash        text        not null,
    confirm_expires_at  timestamptz not null,
    confirmed_at        timestamptz,
    status              text        not null default 'a_confirmer',
    reason              text,
    requested_at        timestamptz not null default now(),
    decided_at          timestamptz,
    decided_by          text,
    constraint family_request_pkey primary key (family_id),
    constraint family_request_family_fkey foreign key (family_id)
        references family (id) on delete cascade,
    constraint family_request_cgu_fkey foreign key (cgu_version)
        references cgu_version (version),
    constraint family_request_confirm_key unique (confirm_hash),
    constraint family_request_confirm_hash check
        (confirm_hash ~ '^[0-9a-f]{64}$'),
    constraint family_request_status check (status in
        ('a_confirmer', 'en_attente', 'validee', 'refusee')),
    constraint family_request_confirmed check
        ((status = 'a_confirmer') = (confirmed_at is null)),
    constraint family_request_refusal_reason check (status <> 'refusee'
        or reason is not null),
    constraint family_request_names check
        (length(parent1_first_name) between 1 and 100
         and length(parent1_last_name) between 1 and 100
         and (parent2_first_name is null) = (parent2_last_name is null)
         and coalesce(length(parent2_first_name), 1) between 1 and 100
         and coalesce(length(parent2_last_name), 1) between 1 and 100)
);

create index family_request_status_idx on family_request (status,
    requested_at);
create index family_request_login_idx on family_request (login)
    where status = 'a_confirmer';
