-- bench/worker_drain.py --ab: APPLY of 0130's undo: demande's unique index
-- on request_id back (UNDO: sql/migrations/0130_drop_demande_request_id_key.sql).
alter table demande add constraint demande_request_id_key unique (request_id);
