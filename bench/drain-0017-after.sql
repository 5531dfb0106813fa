-- bench/worker_drain.py --ab: UNDO of drain-0017-before.sql
alter table demande drop constraint demande_family_fkey;
