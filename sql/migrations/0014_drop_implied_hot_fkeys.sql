-- 0014_drop_implied_hot_fkeys.sql -- two foreign keys of the rows written
-- per booking, each implied by another check of the same write (issue 20).
--
-- guichet-worker persists a booking as three rows in one statement
-- (worker/persist.c): a demande, a booking, an outbox e-mail, all with the
-- family of the same stream entry.  Six foreign-key checks ran per booking
-- (a query and a FOR KEY SHARE row lock each); `perf` of the statement
-- over a batch of 2,000: the checks were 39 % of the backend's time,
-- pg_stat_statements: the family alone was looked up three times.
--
-- booking_family_fkey: the booking's demande is checked
--   (booking_demande_fkey) and the demande's family is checked
--   (demande_family_fkey); the worker writes the entry's one family to
--   both.  A family with demandes is never deleted (guichetctl load-town
--   checks it).
-- outbox_family_fkey: an outbox row of the worker goes with its demande's
--   checked family; guichet-office queues mail for the family it has just
--   authenticated.  A row whose family is gone is never sent (the mailer
--   joins family_email) instead of blocking the family's deletion.
--
-- Kept: demande -> family, booking -> demande, child, session.

alter table booking drop constraint booking_family_fkey;
alter table outbox drop constraint outbox_family_fkey;
