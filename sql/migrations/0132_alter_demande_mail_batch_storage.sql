-- 0132_alter_demande_mail_batch_storage.sql -- a batch's e-mail row stored
-- without compression (issue 20).
--
-- The persister writes one demande_mail_batch row per batch (0131): the
-- numbers of its demandes, a bigint[] of up to batch_size elements (16 KB
-- at 2000, 40 KB at 5000).  Past 2 KB PostgreSQL compresses such a value
-- with pglz before moving it to the TOAST table, on the persister's
-- commit path, during the rush; the row lives until the mailer has turned
-- its numbers into outbox rows (seconds to minutes), so its few kilobytes
-- are not worth the compression's CPU.  Storage "external": moved out of
-- line uncompressed.  bench/worker_drain.py --ab (docs/benchmarks.md,
-- "The worker's pace during a rush"): the COPY of that row 0.70-1.33 ->
-- 0.11-0.18 µs a persisted booking at batch_size 2000 (pg_stat_statements),
-- about -0.6 µs of PostgreSQL's CPU a row at 2000 and above (at 500 the
-- 4 KB row, which pglz kept in line, goes to TOAST: no gain there).  Rows
-- written before keep their storage; reading is unchanged.

alter table demande_mail_batch alter column numbers set storage external;
