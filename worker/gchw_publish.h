/*
 * gchw_publish.h -- private to the publication of the catalogue: the
 * publisher (publish.c), the rebuild of the bookings' Redis side
 * (rebuild.c) and the live counters (counters.c) share these.
 */

#ifndef GCHW_PUBLISH_H
#define GCHW_PUBLISH_H

#include "gchw.h"


#define GCHW_PIPE_MAX  1000


/* publish.c */

/* Commands appended to rc, their replies read every GCHW_PIPE_MAX
 * commands and at each gchw_pipe_flush(); failed: a command or a reply
 * failed (logged), the commands after it are not sent. */
typedef struct {
    redisContext  *rc;
    size_t         pending;
    int            failed;
} gchw_pipe_t;

void gchw_pipe_flush(gchw_pipe_t *p);
void gchw_pipe_cmd(gchw_pipe_t *p, int argc, const char **argv,
    const size_t *argvlen);
/* Up to 8 NUL-terminated arguments. */
void gchw_pipe_str(gchw_pipe_t *p, int argc, ...);
/* PQexec() of a query returning rows: its result, or NULL after logging. */
PGresult *gchw_query(PGconn *pg, const char *sql);


/* rebuild.c: step 1 of publish.c's comment, the bookings' Redis side (and
 * {T}:seq:demande, the uploaded documents) from PostgreSQL.  0 or -1. */
int gchw_rebuild_bookings(PGconn *pg, gchw_pipe_t *p, const gch_town_t *town);

/* counters.c: step 2, the live counters, the on-site ones with them.  0 or
 * -1. */
int gchw_publish_counters(PGconn *pg, redisContext *rc, gchw_pipe_t *p,
    int rebuild);


#endif /* GCHW_PUBLISH_H */
