-- bench/worker_drain.py --ab: UNDO of drain-issue20-before.sql
alter table booking drop constraint booking_demande_fkey;
alter table booking drop constraint booking_child_fkey;
alter table booking drop constraint booking_session_fkey;
alter table demande drop constraint demande_family_fkey;
