-- bench/worker_drain.py --ab: APPLY of 0132's undo: demande_mail_batch's
-- numbers compressed again (UNDO:
-- sql/migrations/0132_alter_demande_mail_batch_storage.sql).
alter table demande_mail_batch alter column numbers set storage extended;
