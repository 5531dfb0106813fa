-- 0041_add_invoice_regie.sql -- each régie its own invoices and invoice
-- numbering (issue 26, backend/invoice.c, docs/office.md "Invoices per
-- régie").
--
-- From this migration on, the monthly invoicing makes one invoice per
-- family, month and régie (the régie of each line's activity,
-- activity_regie, 'principale' when none), numbered 1, 2, 3 ... without
-- gaps in each régie's own series (under the invoicing advisory lock).
-- Its reference, printed on the PDF, in the e-mails, the family's list
-- and the accounting export, is the régie's code in capitals, a dash and
-- the number on six digits: "CANTINE-000012", "PRINCIPALE-000001".
--
-- Invoices made before (regie_code null) are left as they are: one
-- numbering for the whole town, one invoice per family and month mixing
-- the régies, their reference their number ("101").  They keep their
-- unique number among themselves; a family invoiced for a month before
-- this migration is not invoiced again for that month.

alter table invoice add column regie_code text;

alter table invoice add constraint invoice_regie_fkey foreign key
    (regie_code) references regie (code);

alter table invoice add column reference text
    generated always as (case when regie_code is null then number::text
        else upper(regie_code) || '-' || lpad(number::text, 6, '0') end)
    stored;

alter table invoice drop constraint invoice_number_key;
create unique index invoice_number_key on invoice (number)
    where regie_code is null;
create unique index invoice_regie_number_key on invoice (regie_code, number)
    where regie_code is not null;

alter table invoice drop constraint invoice_family_month_key;
create unique index invoice_family_month_key on invoice (family_id, month)
    where regie_code is null;
create unique index invoice_family_month_regie_key on invoice
    (family_id, month, regie_code) where regie_code is not null;
