/*
 * gchw_batch.h -- private to the writing of a batch: its transaction and
 * statements (batch.c) and the rush's batches written with COPY (copy.c)
 * share these.
 */

#ifndef GCHW_BATCH_H
#define GCHW_BATCH_H

#include "gchw.h"


/* batch.c */

/* The batch's BEGIN under the advisory lock GCHB_LOCK_PERSIST (generic:
 * the probe's generic plan, copy.c), and its COMMIT with the stream's
 * position moved (position NULL: none).  NULL, or the failed result. */
PGresult *gchw_batch_begin(PGconn *pg, int generic);
PGresult *gchw_batch_commit(PGconn *pg, const gchw_position_t *position);


/* copy.c */

/* Prepares the probe on pg, with batch.c's statements.  NULL, or the
 * failed result. */
PGresult *gchw_copy_prepare(PGconn *pg);
/* The rush's way: 0 committed; 1 not a batch COPY takes, or the probe
 * found a case it does not (nothing written, no transaction open); -1
 * failed, *res the failed result (the transaction is left aborted: the
 * caller rolls back); -2 memory is short. */
int gchw_batch_copy(PGconn *pg, const gchw_entry_t *e, size_t n,
    const gchw_position_t *position, PGresult **res);


#endif /* GCHW_BATCH_H */
