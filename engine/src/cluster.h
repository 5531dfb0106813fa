/*
 * cluster.h -- engine-internal: the RESP2 cursor shared by the Redis
 * Cluster files (cluster_resp.c), for the slot of a RESP command
 * (cluster.c) and the CLUSTER SLOTS / SHARDS replies (cluster_map.c).
 */

#ifndef GCH_CLUSTER_PRIV_H
#define GCH_CLUSTER_PRIV_H

#include <stddef.h>


typedef struct {
    const char  *p;
    const char  *end;
} gch_rr_t;

typedef struct {
    char          type;     /* '*' '$' ':' '+' '-'                     */
    long long     n;        /* array size, bulk length, integer; -1 nil */
    const char   *s;        /* string bytes ('$' '+' '-')              */
    size_t        len;
} gch_rv_t;


/* The next value's header (and a string's bytes). */
int gch_rr_next(gch_rr_t *r, gch_rv_t *v);

/* Skips what an aggregate header announced. */
int gch_rr_skip(gch_rr_t *r, const gch_rv_t *v, int depth);

/* A bulk or simple string equal to s. */
int gch_rv_is(const gch_rv_t *v, const char *s);

#endif /* GCH_CLUSTER_PRIV_H */
