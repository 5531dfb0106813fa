/*
 * cluster_resp.c -- engine-internal: the RESP2 cursor the Redis Cluster
 * files read replies and commands with (see cluster.h).
 *
 * A cursor over the caller's bytes: it allocates nothing, bounds its depth
 * and checks every length against the end of the input.
 */

#include <string.h>

#include "cluster.h"


#define GCH_RESP_DEPTH  8


/* Reads a line's number (after the type byte) up to CRLF. */
static int
gch_rr_num(gch_rr_t *r, long long *v)
{
    int        neg, digits;
    long long  n;

    neg = 0;
    digits = 0;
    n = 0;

    if (r->p < r->end && *r->p == '-') {
        neg = 1;
        r->p++;
    }

    while (r->p < r->end && *r->p >= '0' && *r->p <= '9') {
        if (n > 999999999999LL) {
            return -1;
        }
        n = n * 10 + (*r->p - '0');
        r->p++;
        digits++;
    }

    if (digits == 0 || r->end - r->p < 2 || r->p[0] != '\r'
        || r->p[1] != '\n')
    {
        return -1;
    }

    r->p += 2;
    *v = neg ? -n : n;

    return 0;
}


/* The next value's header (and a string's bytes). */
int
gch_rr_next(gch_rr_t *r, gch_rv_t *v)
{
    const char  *e;

    if (r->p >= r->end) {
        return -1;
    }

    v->type = *r->p++;
    v->s = NULL;
    v->len = 0;
    v->n = 0;

    switch (v->type) {

    case '*':
    case ':':
        if (gch_rr_num(r, &v->n) != 0) {
            return -1;
        }
        return (v->type == '*' && v->n < -1) ? -1 : 0;

    case '$':
        if (gch_rr_num(r, &v->n) != 0 || v->n < -1) {
            return -1;
        }
        if (v->n == -1) {
            return 0;
        }
        if (r->end - r->p < v->n + 2 || r->p[v->n] != '\r'
            || r->p[v->n + 1] != '\n')
        {
            return -1;
        }
        v->s = r->p;
        v->len = (size_t) v->n;
        r->p += v->n + 2;
        return 0;

    case '+':
    case '-':
        for (e = r->p; e + 1 < r->end; e++) {
            if (e[0] == '\r' && e[1] == '\n') {
                v->s = r->p;
                v->len = (size_t) (e - r->p);
                r->p = e + 2;
                return 0;
            }
        }
        return -1;
    }

    return -1;
}


/* Skips what an aggregate header announced. */
int
gch_rr_skip(gch_rr_t *r, const gch_rv_t *v, int depth)
{
    long long  i;
    gch_rv_t   c;

    if (v->type != '*' || v->n <= 0) {
        return 0;
    }

    if (depth >= GCH_RESP_DEPTH) {
        return -1;
    }

    for (i = 0; i < v->n; i++) {
        if (gch_rr_next(r, &c) != 0 || gch_rr_skip(r, &c, depth + 1) != 0) {
            return -1;
        }
    }

    return 0;
}


int
gch_rv_is(const gch_rv_t *v, const char *s)
{
    size_t  n;

    n = strlen(s);

    return (v->type == '$' || v->type == '+') && v->len == n
           && memcmp(v->s, s, n) == 0;
}
