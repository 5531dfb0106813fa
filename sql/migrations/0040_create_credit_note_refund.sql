-- 0040_create_credit_note_refund.sql -- credit notes (avoirs) and
-- refunds of the régie (issue 26, office/counter.c, docs/office.md
-- "Credit notes and refunds").
--
-- credit_note: an amount the town no longer asks, against one invoice
-- (any part of what is left of it) or one of its lines (booking_id, a
-- line credited once).  Numbered 1, 2, 3 ... without gaps for the whole
-- town, a series of its own ("AV-<n>"), like the invoices' numbering
-- (one for all régies); each carries the régie it is counted for (the
-- line's activity's, or the one the régie chose).  On an invoice not yet
-- paid it lowers what is due (invoice.credited_cents: the counter, the
-- online payment and the SEPA export ask total - credited; credited to
-- the whole total, the invoice is settled, paid_by 'credit_note'); on a
-- paid invoice (after_payment) it is money owed back to the family.
--
-- refund: money paid back at the counter (cash, cheque, transfer),
-- against an invoice, at most what its credit notes after payment and
-- its overpayments (payment_overpayment, marked refunded when all is
-- refunded) owe back.  Numbered "RB-<n>" likewise.

alter table invoice add column credited_cents bigint not null default 0;
alter table invoice add constraint invoice_credited_check check
    (credited_cents between 0 and total_cents);
alter table invoice drop constraint invoice_paid_by_check;
alter table invoice add constraint invoice_paid_by_check check
    (paid_by is null or paid_by in ('online', 'direct_debit', 'counter',
                                    'credit_note'));

create table credit_note (
    id              bigint      generated always as identity,
    number          bigint      not null,
    invoice_id      bigint      not null,
    booking_id      text,
    regie_code      text        not null,
    amount_cents    bigint      not null,
    reason          text        not null,
    after_payment   boolean     not null,
    issued_at       timestamptz not null default now(),
    issued_by       text        not null,
    constraint credit_note_pkey primary key (id),
    constraint credit_note_number_key unique (number),
    constraint credit_note_booking_key unique (booking_id),
    constraint credit_note_invoice_fkey foreign key (invoice_id)
        references invoice (id),
    constraint credit_note_booking_fkey foreign key (booking_id)
        references invoice_line (booking_id),
    constraint credit_note_regie_fkey foreign key (regie_code)
        references regie (code),
    constraint credit_note_amount_check check (amount_cents > 0),
    constraint credit_note_reason_check check
        (length(reason) between 1 and 500)
);

create index credit_note_invoice_idx on credit_note (invoice_id);
create index credit_note_issued_idx on credit_note (issued_at);

create table refund (
    id              bigint      generated always as identity,
    number          bigint      not null,
    family_id       text        not null,
    invoice_id      bigint      not null,
    regie_code      text        not null,
    method          text        not null,
    amount_cents    bigint      not null,
    reference       text        not null default '',
    refunded_at     timestamptz not null default now(),
    recorded_by     text        not null,
    constraint refund_pkey primary key (id),
    constraint refund_number_key unique (number),
    constraint refund_family_fkey foreign key (family_id)
        references family (id),
    constraint refund_invoice_fkey foreign key (invoice_id)
        references invoice (id),
    constraint refund_regie_fkey foreign key (regie_code)
        references regie (code),
    constraint refund_method_check check (method in
        ('cash', 'cheque', 'transfer')),
    constraint refund_amount_check check (amount_cents > 0),
    constraint refund_reference_check check (length(reference) <= 200)
);

create index refund_invoice_idx on refund (invoice_id);
create index refund_refunded_idx on refund (refunded_at);
