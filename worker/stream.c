/*
 * stream.c -- watching the stream {T}:stream for the heartbeat and
 * keeping it short: the persister's lag (the oldest entry after the
 * persisted position), the count of dead letters, and XTRIM of what is
 * persisted and keep_ms no longer keeps.
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


/* See gchw.h. */
int64_t
gchw_persist_lag(redisContext *rc, const char *pos)
{
    int64_t       oldest, now;
    redisReply   *x;

    if (pos == NULL) {
        return -1;
    }

    /* the oldest entry not persisted */
    x = redisCommand(rc, "XRANGE " GCHW_STREAM " (%s + COUNT 1", gchb_town,
                     pos);
    if (x == NULL) {
        return -1;
    }

    oldest = 0;
    if (x->type == REDIS_REPLY_ARRAY && x->elements == 1) {
        oldest = gchw_id_ms(x->element[0]->element[0]->str);
    }
    freeReplyObject(x);

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


/* See gchw.h. */
int
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
gchw_persist_trim(redisContext *rc, const char *pos, int keep_ms)
{
    char                minid[64], keep[32];
    long long           n;
    unsigned long long  ms, seq;
    redisReply         *r;

    if (keep_ms == 0 || pos == NULL) {
        return 0;
    }

    /* the id after the last one persisted: XTRIM MINID keeps it */
    ms = seq = 0;
    if (sscanf(pos, "%llu-%llu", &ms, &seq) != 2) {
        return 0;
    }
    snprintf(minid, sizeof(minid), "%llu-%llu", ms, seq + 1);

    snprintf(keep, sizeof(keep), "%lld-0",
             (long long) (gchb_now_ms() - keep_ms));

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
