/*
 * gchw_draw.h -- private to the openings by draw: the draw itself
 * (draw.c) and its entries taken from Redis (drawentries.c) share these.
 */

#ifndef GCHW_DRAW_H
#define GCHW_DRAW_H

#include "gchw.h"


/* draw.c */

/* A PostgreSQL statement without rows; 0 or -1 after logging. */
int gchw_draw_exec(PGconn *pg, const char *sql, int n, const char **p);


/* drawentries.c */

/* RENAMENX {T}:a:<aid>:entries to the key fmt names (town, activity): 1
 * renamed, 0 nothing to rename, -1 Redis. */
int gchw_draw_rename(redisContext *rc, const gch_activity_t *act,
    const char *fmt);
/* Step 1: Redis's entries into PostgreSQL, unless this draw already
 * started (its entries are those it wrote).  0 or -1. */
int gchw_draw_snapshot(redisContext *rc, PGconn *pg,
    const gch_activity_t *act);


#endif /* GCHW_DRAW_H */
