-- 0024_add_family_paperless.sql -- paperless invoices, « adhésion à la
-- facture en ligne » (issue 25).
--
-- The family opts in or out in guichet-office (PUT /api/contact/paperless,
-- audited).  The monthly invoicing (backend/invoice.c) then, in the
-- transaction that creates the month's invoices, records for each new
-- invoice whether it is to be printed and posted (invoice.paper: the
-- family did not opt in) and queues an e-mail (outbox kind invoice) to
-- the families that did.  invoice.paper is null for invoices issued
-- before this migration.

alter table family
    add column paperless boolean not null default false,
    add column paperless_changed_at timestamptz;

alter table invoice add column paper boolean;
