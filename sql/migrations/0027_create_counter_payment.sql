-- 0027_create_counter_payment.sql -- payments the régie records at the
-- counter (issue 26): cash, cheque, CESU, bank transfer, each settling
-- whole invoices of one family (office/counter.c).
--
-- The invoices it pays become paid (invoice.paid_by 'counter', allowed
-- since 0009); an invoice is settled by one counter payment at most.

create table counter_payment (
    id              bigint      generated always as identity,
    family_id       text        not null,
    method          text        not null,
    amount_cents    bigint      not null,
    reference       text        not null default '',
    received_at     timestamptz not null default now(),
    recorded_by     text        not null,
    constraint counter_payment_pkey primary key (id),
    constraint counter_payment_family_fkey foreign key (family_id)
        references family (id),
    constraint counter_payment_method_check check (method in
        ('cash', 'cheque', 'cesu', 'transfer')),
    constraint counter_payment_amount_check check (amount_cents > 0),
    constraint counter_payment_reference_check check
        (length(reference) <= 200)
);

create index counter_payment_received_idx on counter_payment (received_at);
create index counter_payment_family_idx on counter_payment (family_id);

create table counter_payment_invoice (
    payment_id  bigint      not null,
    invoice_id  bigint      not null,
    constraint counter_payment_invoice_pkey primary key
        (payment_id, invoice_id),
    constraint counter_payment_invoice_invoice_key unique (invoice_id),
    constraint counter_payment_invoice_payment_fkey foreign key
        (payment_id) references counter_payment (id),
    constraint counter_payment_invoice_invoice_fkey foreign key
        (invoice_id) references invoice (id)
);
