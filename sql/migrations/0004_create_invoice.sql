-- 0004_create_invoice.sql -- monthly invoices (guichetctl invoice).
--
-- One invoice per family and month (the database serves one town, the
-- régie), numbered 1, 2, 3 ... without gaps in issue order (numbers are
-- taken under an advisory lock by the one transaction that creates the
-- month's invoices).  One line per billable booking: child x date x unit
-- at the booking's snapshotted price; a booking is never on two invoices.

create table invoice (
    id          bigint      generated always as identity,
    number      bigint      not null,
    family_id   text        not null,
    month       date        not null,
    total_cents bigint      not null,
    issued_at   timestamptz not null,
    due_date    date        not null,
    paid        boolean     not null default false,
    constraint invoice_pkey primary key (id),
    constraint invoice_number_key unique (number),
    constraint invoice_family_month_key unique (family_id, month),
    constraint invoice_family_fkey foreign key (family_id)
        references family (id),
    constraint invoice_month_first check (extract(day from month) = 1),
    constraint invoice_total check (total_cents >= 0)
);

create table invoice_line (
    invoice_id  bigint      not null,
    booking_id  text        not null,
    child_id    text        not null,
    date        date        not null,
    unit_code   text        not null,
    price_cents integer     not null,
    constraint invoice_line_pkey primary key (invoice_id, child_id, date,
                                              unit_code),
    constraint invoice_line_booking_key unique (booking_id),
    constraint invoice_line_invoice_fkey foreign key (invoice_id)
        references invoice (id),
    constraint invoice_line_booking_fkey foreign key (booking_id)
        references booking (id)
);
