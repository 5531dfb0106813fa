-- 0003_add_booking_justified.sql -- justified absences, and cancellations
-- and justifications kept as facts of their own.
--
-- The stream's "cancel" and "absence" entries may be persisted before the
-- "book" entry of their booking (an entry pending at a dead consumer is
-- taken over only after claim_idle_ms, while a new worker already reads
-- the entries after it).  So each is recorded in its own table, keyed by
-- the booking id, and applied to booking whenever either side arrives:
-- the order of delivery does not matter, and a replay changes nothing.

alter table booking add column justified boolean not null default false;

create table booking_cancellation (
    booking_id      text        not null,
    family_id       text        not null,
    cancelled_at    timestamptz not null,
    billed          boolean     not null,
    constraint booking_cancellation_pkey primary key (booking_id)
);

create table booking_justification (
    booking_id      text        not null,
    family_id       text        not null,
    demande_number  bigint      not null,
    justified_at    timestamptz not null,
    constraint booking_justification_pkey primary key (booking_id)
);

alter table demande add constraint demande_kind check (kind in
    ('book', 'justification'));

-- French amounts: 450 -> '4,50 €' (e-mails, invoices)
create function euros(cents bigint) returns text
    language sql immutable strict
    return replace(to_char(cents / 100.0, 'FM999999990.00'), '.', ',')
           || ' €';
