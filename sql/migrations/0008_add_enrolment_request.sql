-- 0008_add_enrolment_request.sql -- enrolment requests, documents,
-- attendance and staff logins of guichet-office (docs/office.md).
--
-- Enrolments: the town file's rows (origin 'town', upserted by
-- `guichetctl load-town`) and the families' requests made in the office
-- (origin 'office', status 'demandee' until staff decide).  A decision
-- taken in the office (decided_at set) survives a reload of the town file:
-- load-town neither overwrites nor deletes such rows, nor office-made ones.
--
-- Documents: one row per uploaded file (stored under office_upload_dir as
-- <id>-<sha256>), 'deposee' until staff accept (with validity dates) or
-- refuse it.  Accepted documents are laid over the catalogue's
-- "documents" by the publisher (worker/overlay.c).
--
-- Attendance: one row per booking, written by staff (updates allowed, each
-- one audited).  Staff logins: failures counted per login; five within 15
-- minutes lock the login for 15 minutes.

alter table enrolment add column id bigint generated always as identity;
alter table enrolment add column origin text not null default 'town';
alter table enrolment add column reason text;
alter table enrolment add column requested_at timestamptz;
alter table enrolment add column decided_at timestamptz;
alter table enrolment add column decided_by text;

alter table enrolment add constraint enrolment_id_key unique (id);
alter table enrolment add constraint enrolment_origin check (origin in
    ('town', 'office'));
alter table enrolment add constraint enrolment_refusal_reason check
    (status <> 'refusee' or decided_at is null or reason is not null);

create index enrolment_status_idx on enrolment (status, requested_at);

create table document (
    id              bigint      generated always as identity,
    family_id       text        not null,
    child_id        text,
    type            text        not null,
    filename        text        not null,
    content_type    text        not null,
    size            bigint      not null,
    sha256          text        not null,
    stored_name     text        not null,
    status          text        not null default 'deposee',
    reason          text,
    valid_from      date,
    valid_to        date,
    uploaded_at     timestamptz not null default now(),
    decided_at      timestamptz,
    decided_by      text,
    constraint document_pkey primary key (id),
    constraint document_stored_name_key unique (stored_name),
    constraint document_family_fkey foreign key (family_id)
        references family (id) on delete cascade,
    constraint document_child_fkey foreign key (child_id)
        references child (id) on delete set null,
    constraint document_type_check check (type ~ '^[a-z0-9_-]{1,64}$'),
    constraint document_content_type_check check (content_type in
        ('application/pdf', 'image/jpeg', 'image/png')),
    constraint document_size_check check (size > 0),
    constraint document_sha256_check check (sha256 ~ '^[0-9a-f]{64}$'),
    constraint document_status_check check (status in
        ('deposee', 'acceptee', 'refusee')),
    constraint document_validity_check check (valid_from is null
        or valid_to is null or valid_from <= valid_to),
    constraint document_refusal_reason check (status <> 'refusee'
        or reason is not null)
);

create index document_family_idx on document (family_id);
create index document_status_idx on document (status, uploaded_at);

create table attendance (
    booking_id      text        not null,
    status          text        not null,
    note            text        not null default '',
    recorded_at     timestamptz not null default now(),
    recorded_by     text        not null,
    constraint attendance_pkey primary key (booking_id),
    constraint attendance_booking_fkey foreign key (booking_id)
        references booking (id),
    constraint attendance_status_check check (status in
        ('present', 'absent', 'absent_justifie'))
);

-- no foreign key: unknown logins are counted (and locked) the same way,
-- so that a lock says nothing about which logins exist
create table staff_login_failure (
    login           text        not null,
    failures        integer     not null,
    first_at        timestamptz not null,
    locked_until    timestamptz,
    constraint staff_login_failure_pkey primary key (login)
);
