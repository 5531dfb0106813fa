/*
 * stream.c -- watching the stream {T}:stream for the heartbeat and
 * keeping it short: the persister's lag (the oldest pending or
 * undelivered entry), the count of dead letters, and XTRIM of what the
 * group has acknowledged and keep_ms no longer keeps.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gchw.h"


static int64_t
gchw_id_ms(const char *id)
{
    return strtoll(id, NULL, 10);
}


/*
 * The last-delivered id of the persister's group into out ("" when the
 * stream or the group does not exist yet): 0, or -1 when Redis did not
 * answer (rc->errstr).
 */
static int
gchw_group_last(redisContext *rc, char *out, size_t size)
{
    size_t        i, j;
    redisReply   *r, *g;

    out[0] = '\0';

    r = redisCommand(rc, "XINFO GROUPS " GCHW_STREAM, gchb_town);
    if (r == NULL) {
        return -1;
    }

    if (r->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(r);
        return 0;                          /* no stream yet */
    }

    for (i = 0; i < r->elements; i++) {
        g = r->element[i];
        if (g->type != REDIS_REPLY_ARRAY) {
            continue;
        }

        for (j = 0; j + 1 < g->elements; j += 2) {
            if (strcmp(g->element[j]->str, "name") == 0
                && strcmp(g->element[j + 1]->str, GCHW_GROUP) != 0)
            {
                break;
            }
            if (strcmp(g->element[j]->str, "last-delivered-id") == 0) {
                snprintf(out, size, "%s", g->element[j + 1]->str);
            }
        }
    }

    freeReplyObject(r);

    return 0;
}


/* See gchw.h. */
int64_t
gchw_persist_lag(redisContext *rc)
{
    char          last[64];
    int64_t       oldest, now;
    redisReply   *x;

    oldest = 0;

    if (gchw_group_last(rc, last, sizeof(last)) != 0) {
        return -1;
    }

    /* oldest pending */
    x = redisCommand(rc, "XPENDING " GCHW_STREAM " " GCHW_GROUP, gchb_town);
    if (x && x->type == REDIS_REPLY_ARRAY && x->elements >= 2
        && x->element[1]->type == REDIS_REPLY_STRING)
    {
        oldest = gchw_id_ms(x->element[1]->str);
    }
    if (x) {
        freeReplyObject(x);
    }

    /* oldest undelivered */
    if (last[0] != '\0' && oldest == 0) {
        x = redisCommand(rc, "XRANGE " GCHW_STREAM " (%s + COUNT 1", gchb_town,
                         last);
        if (x && x->type == REDIS_REPLY_ARRAY && x->elements == 1) {
            oldest = gchw_id_ms(x->element[0]->element[0]->str);
        }
        if (x) {
            freeReplyObject(x);
        }
    }

    if (oldest == 0) {
        return 0;
    }

    now = gchb_now_ms();

    return now > oldest ? now - oldest : 0;
}


/* See gchw.h. */
long long
gchw_persist_dead(redisContext *rc)
{
    long long    n;
    redisReply  *r;

    r = redisCommand(rc, "XLEN " GCHW_DEAD, gchb_town);
    if (r == NULL) {
        return -1;
    }

    n = r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    freeReplyObject(r);

    return n;
}


/* -1, 0, 1 as a stream id "ms-seq" compares with b. */
static int
gchw_id_cmp(const char *a, const char *b)
{
    unsigned long long  am, as, bm, bs;

    am = as = bm = bs = 0;
    sscanf(a, "%llu-%llu", &am, &as);
    sscanf(b, "%llu-%llu", &bm, &bs);

    if (am != bm) {
        return am < bm ? -1 : 1;
    }

    return as < bs ? -1 : (as > bs ? 1 : 0);
}


/* See gchw.h. */
long long
gchw_persist_trim(redisContext *rc, int keep_ms)
{
    char          minid[64], keep[32];
    long long     n;
    redisReply   *r, *x;

    if (keep_ms == 0) {
        return 0;
    }

    snprintf(keep, sizeof(keep), "%lld-0",
             (long long) (gchb_now_ms() - keep_ms));

    if (gchw_group_last(rc, minid, sizeof(minid)) != 0) {
        gchb_log("error", "redis: %s", rc->errstr);
        return -1;
    }

    if (minid[0] == '\0') {
        return 0;                          /* no group: trim nothing */
    }

    /* the oldest pending entry (older than the last delivered one) */
    x = redisCommand(rc, "XPENDING " GCHW_STREAM " " GCHW_GROUP, gchb_town);
    if (x == NULL) {
        gchb_log("error", "redis: %s", rc->errstr);
        return -1;
    }
    if (x->type == REDIS_REPLY_ARRAY && x->elements >= 2
        && x->element[1]->type == REDIS_REPLY_STRING
        && gchw_id_cmp(x->element[1]->str, minid) < 0)
    {
        snprintf(minid, sizeof(minid), "%s", x->element[1]->str);
    }
    freeReplyObject(x);

    if (gchw_id_cmp(keep, minid) < 0) {
        snprintf(minid, sizeof(minid), "%s", keep);
    }

    r = redisCommand(rc, "XTRIM " GCHW_STREAM " MINID %s", gchb_town, minid);
    if (r == NULL || r->type != REDIS_REPLY_INTEGER) {
        gchb_log("error", "redis: XTRIM: %s",
                 r ? (r->str ? r->str : "bad reply") : rc->errstr);
        if (r) {
            freeReplyObject(r);
        }
        return -1;
    }

    n = r->integer;
    freeReplyObject(r);

    return n;
}
