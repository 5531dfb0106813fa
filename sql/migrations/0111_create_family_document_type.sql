-- 0111_create_family_document_type.sql -- the documents the town
-- requires of every family as a whole, not of a child for an activity
-- (issue 25, office/required.c): « Justificatif de domicile »,
-- « Attestation CAF », ...
--
-- blocks says what a missing one stops, as the town sets it:
--   aucun        nothing: it is listed and counted for the family;
--   inscription  the enrolment requests (POST /api/enrolments: 409
--                documents_missing while none is uploaded or accepted);
--   reservation  the enrolment requests and the bookings: guichet-worker
--                adds it to every activity's required documents in the
--                catalogue it publishes (worker/overlay.c), so the engine
--                refuses a booking with documents_missing until one is
--                accepted and valid.
-- The admin replaces the whole list (PUT /api/staff/family-documents);
-- at most 8 types.

create table family_document_type (
    type            text        not null,
    position        integer     not null,
    blocks          text        not null default 'aucun',
    updated_at      timestamptz not null default now(),
    updated_by      text        not null,
    constraint family_document_type_pkey primary key (type),
    constraint family_document_type_type check
        (type ~ '^[a-z0-9_-]{1,64}$'),
    constraint family_document_type_blocks check (blocks in
        ('aucun', 'inscription', 'reservation')),
    constraint family_document_type_position_key unique (position)
);
