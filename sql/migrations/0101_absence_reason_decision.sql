-- 0101_absence_reason_decision.sql -- a justified absence is un-billed
-- only once the town accepts its justification; the reasons the town
-- accepts are a town setting (issue 25, docs/rules.md "Justified
-- absences").
--
-- absence_reason: the town's reasons (medical, a death in the family,
-- ...), each with its proof required or not; edited by an admin (PUT
-- /api/staff/absence-reasons), published by guichet-worker into Redis
-- ({T}:absence_reasons, code -> "1" proof required / "0") where the
-- module checks a POST /api/absences against it.  A reason taken off the
-- list is kept, inactive, for the justifications that cite it.
--
-- booking_justification (0003) gains the reason and certificate the
-- stream entry carries, and the town's decision: status en_examen (the
-- worker's insert), acceptee or refusee (guichet-office, one
-- transaction: the row, booking.justified when accepted, the audit row,
-- the e-mail, and when refused the message to the family).  Only an
-- accepted justification sets booking.justified, which the invoicing
-- reads: a pending or refused one is billed.  The justifications
-- recorded before this migration were un-billed at once: they stay
-- accepted.

create table absence_reason (
    code            text collate "C" not null,
    label           text        not null,
    proof_required  boolean     not null,
    position        int         not null default 0,
    active          boolean     not null default true,
    constraint absence_reason_pkey primary key (code),
    constraint absence_reason_code check (code ~ '^[a-z0-9_-]{1,32}$'),
    constraint absence_reason_label check (length(label) between 1 and 80)
);

insert into absence_reason (code, label, proof_required, position) values
    ('medical', 'Maladie de l''enfant (certificat médical)', true, 1),
    ('deces', 'Décès dans la famille', true, 2),
    ('hospitalisation', 'Hospitalisation', true, 3),
    ('greve', 'Grève ou fermeture de l''école', false, 4);

alter table booking_justification
    add column reason text not null default 'medical',
    add column document_id text collate "C",
    add column status text not null default 'acceptee',
    add column decided_at timestamptz,
    add column decided_by text,
    add column refusal_reason text,
    add constraint booking_justification_status check (status in
        ('en_examen', 'acceptee', 'refusee'));

alter table booking_justification alter column status set default
    'en_examen';
alter table booking_justification alter column reason drop default;

create index booking_justification_pending_idx on booking_justification
    (justified_at) where status = 'en_examen';
create index booking_justification_family_idx on booking_justification
    (family_id);
