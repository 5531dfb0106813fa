/*
 * staff.c -- a back-office account changed: Redis learns it (issue 18).
 *
 * guichetctl staff-add and guichet-office's deactivation both call
 * gchb_staff_changed(): the account's role in {T}:staff, and its tokens
 * revoked, in one MULTI/EXEC.
 */

#include <time.h>

#include "gchb.h"


/* See gchb.h. */
int
gchb_staff_changed(redisContext *rc, const char *login, const char *role)
{
    int          ret;
    size_t       i, n;
    redisReply  *r, *x;

    r = redisCommand(rc, "ZRANGEBYSCORE " GCH_KEY_STAFF_TOKENS " %lld +inf "
                     "WITHSCORES", gchb_town, login, (long long) time(NULL));
    if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
        gchb_log("error", "redis: the tokens of staff:%s: %s", login,
                 r ? (r->str ? r->str : "bad reply") : rc->errstr);
        if (r) {
            freeReplyObject(r);
        }
        return -1;
    }

    redisAppendCommand(rc, "MULTI");
    n = 1;

    for (i = 0; i + 1 < r->elements; i += 2) {
        redisAppendCommand(rc, "ZADD " GCH_KEY_REVOKED " %s %s", gchb_town,
                           r->element[i + 1]->str, r->element[i]->str);
        n++;
    }

    freeReplyObject(r);

    redisAppendCommand(rc, "DEL " GCH_KEY_STAFF_TOKENS, gchb_town, login);
    redisAppendCommand(rc, "INCR " GCH_KEY_REVOKED_GEN, gchb_town);

    if (role) {
        redisAppendCommand(rc, "HSET " GCH_KEY_STAFF " %s %s", gchb_town, login,
                           role);
    } else {
        redisAppendCommand(rc, "HDEL " GCH_KEY_STAFF " %s", gchb_town, login);
    }

    redisAppendCommand(rc, "EXEC");
    n += 4;

    ret = 0;
    for (i = 0; i < n; i++) {
        if (redisGetReply(rc, (void **) &x) != REDIS_OK) {
            gchb_log("error", "redis: staff:%s: %s", login, rc->errstr);
            return -1;
        }
        if (x->type == REDIS_REPLY_ERROR
            || (i == n - 1 && x->type != REDIS_REPLY_ARRAY))
        {
            gchb_log("error", "redis: staff:%s: %s", login,
                     x->type == REDIS_REPLY_ERROR ? x->str : "EXEC failed");
            ret = -1;
        }
        freeReplyObject(x);
    }

    return ret;
}
