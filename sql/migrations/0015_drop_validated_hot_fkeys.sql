-- 0015_drop_validated_hot_fkeys.sql -- the last foreign keys checked per
-- persisted booking (issue 20).
--
-- After 0014, four foreign-key checks ran per booking, each a query and a
-- FOR KEY SHARE row lock in the after-trigger queue: a third of
-- PostgreSQL's time per persisted row (docs/benchmarks.md, *The worker
-- alone*).  Three of them check what the same write or the engine has
-- just established:
--
-- booking_demande_fkey: the booking's demande is inserted by the same
--   statement (worker/batch.c, gchw_sql_book: demande, booking and outbox
--   in one statement, "on conflict do nothing" when it was already
--   there); no demande is ever deleted.
-- booking_child_fkey, booking_session_fkey: nginx's engine booked the
--   child on the session against the published catalogue, which is
--   written from these tables; guichetctl load-town deletes a child or a
--   session only when no booking names it, and does so under the
--   persister's advisory lock (GCHB_LOCK_PERSIST) so that a batch being
--   written is committed and seen first.
--
-- Kept: demande -> family (the one check left per booking; a family is
-- what the token names, and the dead-letter path for an unknown family,
-- tests/integration/test_worker.py, goes through it).

alter table booking drop constraint booking_demande_fkey;
alter table booking drop constraint booking_child_fkey;
alter table booking drop constraint booking_session_fkey;
