-- 0100_create_message_service_attachment.sql -- the messagerie's services
-- and themes as a town setting, and attachments (issue 25).
--
-- message_service is the town's list of services a family writes to
-- (edited by an admin in the back office, PUT /api/staff/message-services)
-- and message_theme each service's themes.  A service or theme taken off
-- the list is kept, inactive: its threads still name it, staff still
-- filter by it, families no longer choose it.  The codes of 0010
-- (enfance, scolaire, regie) stay, so that old threads keep theirs; the
-- seed is the demo town's list.
--
-- message_attachment: a PDF, JPEG or PNG file (checked by its bytes,
-- office/document.c's checks), stored under office_upload_dir.  It is
-- uploaded first, by a family (family_id, from_staff null) or a staff
-- member (from_staff, family_id null), then bound to the message that
-- carries it (message_id) in the message's transaction; until then only
-- its uploader may read it.  A bound attachment is the thread's: its
-- family and staff read it.

create table message_service (
    code        text collate "C" not null,
    label       text        not null,
    position    int         not null default 0,
    active      boolean     not null default true,
    constraint message_service_pkey primary key (code),
    constraint message_service_code check (code ~ '^[a-z0-9_-]{1,32}$'),
    constraint message_service_label check (length(label) between 1
        and 80)
);

create table message_theme (
    service     text        not null,
    code        text collate "C" not null,
    label       text        not null,
    position    int         not null default 0,
    active      boolean     not null default true,
    constraint message_theme_pkey primary key (service, code),
    constraint message_theme_service_fkey foreign key (service)
        references message_service (code),
    constraint message_theme_code check (code ~ '^[a-z0-9_-]{1,32}$'),
    constraint message_theme_label check (length(label) between 1 and 80)
);

insert into message_service (code, label, position) values
    ('periscolaire', 'Périscolaire', 1),
    ('scolaire', 'Restauration scolaire', 2),
    ('enfance', 'Accueil de loisirs', 3),
    ('regie', 'Régie (factures, paiements)', 4);

insert into message_theme (service, code, label, position) values
    ('periscolaire', 'inscription', 'Inscription', 1),
    ('periscolaire', 'reservation', 'Réservation, annulation', 2),
    ('periscolaire', 'absence', 'Absence, justificatif', 3),
    ('periscolaire', 'autre', 'Autre question', 9),
    ('scolaire', 'menus', 'Menus', 1),
    ('scolaire', 'allergie', 'Allergie, PAI, régime', 2),
    ('scolaire', 'reservation', 'Réservation, annulation', 3),
    ('scolaire', 'autre', 'Autre question', 9),
    ('enfance', 'inscription', 'Inscription', 1),
    ('enfance', 'sortie', 'Sorties, programme', 2),
    ('enfance', 'absence', 'Absence, justificatif', 3),
    ('enfance', 'autre', 'Autre question', 9),
    ('regie', 'facture', 'Facture', 1),
    ('regie', 'paiement', 'Paiement, prélèvement', 2),
    ('regie', 'quotient', 'Quotient familial, tarif', 3),
    ('regie', 'autre', 'Autre question', 9);

alter table message_thread drop constraint message_thread_service;
alter table message_thread add column theme text;
alter table message_thread add constraint message_thread_service_fkey
    foreign key (service) references message_service (code);
alter table message_thread add constraint message_thread_theme_fkey
    foreign key (service, theme) references message_theme (service, code);

create index message_thread_service_idx on message_thread (service, theme,
    updated_at);

create table message_attachment (
    id          bigint      generated always as identity,
    message_id  bigint,
    family_id   text collate "C",
    from_staff  text,
    filename    text        not null,
    content_type text       not null,
    size        bigint      not null,
    sha256      text        not null,
    stored_name text        not null,
    uploaded_at timestamptz not null default now(),
    constraint message_attachment_pkey primary key (id),
    constraint message_attachment_message_fkey foreign key (message_id)
        references message (id),
    constraint message_attachment_family_fkey foreign key (family_id)
        references family (id),
    constraint message_attachment_uploader check
        ((family_id is null) <> (from_staff is null)),
    constraint message_attachment_type check (content_type in
        ('application/pdf', 'image/jpeg', 'image/png'))
);

create index message_attachment_message_idx on message_attachment
    (message_id);
create index message_attachment_unbound_idx on message_attachment
    (family_id, from_staff) where message_id is null;
