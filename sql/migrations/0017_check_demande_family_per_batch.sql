-- 0017_check_demande_family_per_batch.sql -- a demande's family checked
-- once per batch by the persister instead of by a foreign key (issue 20).
--
-- After 0015, demande_family_fkey was the one foreign key checked per
-- persisted booking: a query and a FOR KEY SHARE lock of the family row
-- (the lock writes the row: a page dirtied and WAL) for each demande, 3.6
-- µs of PostgreSQL's CPU per row at a batch of 2,000 (docs/benchmarks.md,
-- *The worker alone*).
--
-- guichet-worker now checks, in the statement that writes a batch's
-- demandes (worker/batch.c), that each distinct family of the batch
-- exists: one index probe per family, no lock.  A missing family raises
-- foreign_key_violation (SQLSTATE 23503) through demande_family_missing()
-- below: the batch rolls back and its entries are written one by one, the
-- refused one going to the dead letters with this message, as with the
-- foreign key.  No lock is needed because a family is deleted only by
-- guichetctl load-town, when it has neither demande nor child, and under
-- the persister's advisory lock (GCHB_LOCK_PERSIST, ctl/load.c), which
-- every batch holds: a family checked by a batch stays until it commits.

alter table demande drop constraint demande_family_fkey;

create function demande_family_missing(p_family text) returns boolean
language plpgsql as $$
begin
    raise foreign_key_violation using message = format(
        'demande: family "%s" does not exist (foreign key demande_family,'
        ' checked by the persister)', p_family);
end
$$;
