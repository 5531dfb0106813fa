/*
 * promote.c -- waiting lists' promotions (issue 23).
 *
 * Every turn of the worker's loop, for each session of {T}:waiting (the
 * sessions with a waiting list, named by the booking saga's step two):
 * when {T}:s:<sid>:left says a place is online and the list has a first
 * child, that child is booked by the booking saga itself -- the engine's
 * gch_book_plan(), step one, step two, as nginx runs them, so that every
 * rule of a booking is checked again now (enrolment, age, documents,
 * unpaid invoices, deadline, an overlapping booking of the child, whole
 * weeks) and the place is taken with the same claims (SET NX) and
 * BITFIELD OVERFLOW FAIL that a fresh request races on: one place is never
 * sold twice.  The request is the family's: its demande, its stream entry
 * (persisted once, like any), its e-mail ("Une place s'est libérée").
 *
 * Its Idempotency-Key is derived from the entry, "wl.<booking id of the
 * entry>.<tries>" (gch_wait_promotion_key): a worker that dies between
 * the booking and the entry's removal replays the same key on its next
 * turn and finds the booking made.  gch_wait_decide() says what follows:
 * booked or not eligible, the entry leaves the list (the refused demande
 * records why); refused full (a fresh request took the place first), it
 * stays first and the next try takes a new key (HINCRBY waittry).
 *
 * A freed place is seen whatever freed it: a cancellation, the reaper's
 * release or recount, the on-site release, places added by the town.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <yajl/yajl_tree.h>

#include "gchw.h"


#define GCHW_PROMOTE_MAX  20      /* entries looked at per session, turn */


static uint64_t  gchw_promote_attempts;


/* See gchw.h. */
redisReply *
gchw_send_cmds(redisContext *rc, const gch_cmds_t *l)
{
    size_t       i;
    void        *x;
    redisReply  *last;

    for (i = 0; i < l->ncmds; i++) {
        if (redisAppendFormattedCommand(rc, l->cmds[i].data,
                                        l->cmds[i].len)
            != REDIS_OK)
        {
            return NULL;
        }
    }

    last = NULL;
    for (i = 0; i < l->ncmds; i++) {
        if (redisGetReply(rc, &x) != REDIS_OK) {
            if (last) {
                freeReplyObject(last);
            }
            return NULL;
        }

        if (last) {
            freeReplyObject(last);
        }
        last = x;
    }

    return last;
}


/*
 * The first item of a booking's answer: 1 confirmed, 0 refused (*reason
 * set), -1 anything else (an error answer).
 */
static int
gchw_promote_outcome(const char *body, size_t len, gch_reason_t *reason)
{
    int          i, rc;
    char        *copy;
    yajl_val     doc, items, st, rs;
    const char  *pi[] = { "items", NULL }, *ps[] = { "status", NULL },
                *pr[] = { "reason", NULL };

    copy = strndup(body, len);
    if (copy == NULL) {
        return -1;
    }

    doc = yajl_tree_parse(copy, NULL, 0);
    free(copy);
    if (doc == NULL) {
        return -1;
    }

    rc = -1;
    items = yajl_tree_get(doc, pi, yajl_t_array);

    if (items && items->u.array.len == 1) {
        st = yajl_tree_get(items->u.array.values[0], ps, yajl_t_string);
        rs = yajl_tree_get(items->u.array.values[0], pr, yajl_t_string);

        if (st && strcmp(st->u.string, "confirmed") == 0) {
            rc = 1;

        } else if (st && rs) {
            *reason = GCH_REASON_COUNT;
            for (i = GCH_REASON_NONE + 1; i < GCH_REASON_COUNT; i++) {
                if (strcmp(gch_reason_name((gch_reason_t) i), rs->u.string)
                    == 0)
                {
                    *reason = (gch_reason_t) i;
                }
            }
            rc = 0;
        }
    }

    yajl_tree_free(doc);
    return rc;
}


/*
 * Books child cid of family f on session sid with Idempotency-Key key.
 * 1 confirmed, 0 refused (*reason), 2 in progress (409: an earlier try
 * of the key died between its steps; the reaper releases it), -1 Redis.
 */
static int
gchw_promote_book(redisContext *rc, const gch_town_t *t, long long gen,
    const gch_family_t *f, const char *cid, const char *sid,
    const char *key, int64_t now_ms, gch_reason_t *reason)
{
    int                 ret, st;
    char                body[512];
    size_t              len;
    const char         *ans;
    redisReply         *x;
    gch_error_t         err;
    gch_book_t         *b;
    gch_book_in_t       in;
    gch_booking_req_t   req;
    const gch_cmds_t   *l;

    len = (size_t) snprintf(body, sizeof(body),
                            "{\"items\":[{\"child_id\":\"%s\","
                            "\"session_id\":\"%s\"}]}", cid, sid);

    memset(&err, 0, sizeof(err));
    if (len >= sizeof(body)
        || gch_booking_req_parse(&req, body, len, 1, &gch_alloc_std, &err)
           != GCH_OK)
    {
        *reason = GCH_REASON_UNKNOWN_SESSION;
        return 0;
    }

    memset(&in, 0, sizeof(in));
    in.town = t;
    in.family = f;
    in.req = &req;
    in.now_ms = now_ms;
    in.idem_key = key;
    in.idem_len = strlen(key);
    in.body = body;
    in.body_len = len;
    in.idem_ttl_s = 86400;
    in.inflight_ttl_s = 3600;
    in.catalogue_gen = gen;
    in.attempt = ((uint64_t) getpid() << 32) | ++gchw_promote_attempts;

    b = NULL;
    ret = -1;

    switch (gch_book_plan(&b, &in, &gch_alloc_std, &err)) {
    case GCH_OK:
        break;
    case GCH_EFORBIDDEN:
        *reason = GCH_REASON_NOT_ENROLLED;  /* not the family's child now */
        ret = 0;
        goto done;
    default:
        goto done;
    }

    l = gch_book_step1(b);
    x = l ? gchw_send_cmds(rc, l) : NULL;
    if (x == NULL) {
        goto done;
    }

    st = gch_book_on_step1(b, x);
    freeReplyObject(x);
    if (st != GCH_OK) {
        goto done;
    }

    l = gch_book_step2(b);
    if (l) {
        x = gchw_send_cmds(rc, l);
        if (x == NULL) {
            goto done;
        }

        st = gch_book_on_step2(b, x);
        freeReplyObject(x);

        l = gch_book_step3(b);
        if (l) {
            x = gchw_send_cmds(rc, l);
            if (x) {
                freeReplyObject(x);
            }
        }

        if (st != GCH_OK) {
            goto done;
        }
    }

    if (gch_book_status(b) == 409) {
        ret = 2;
        goto done;
    }

    ans = gch_book_body(b, &len);
    if (gch_book_status(b) == 200 && ans) {
        ret = gchw_promote_outcome(ans, len, reason);
    }

done:

    gch_book_free(b);
    gch_booking_req_free(&req);
    return ret;
}


/* The entry leaves the list (all of it: a duplicate an orphan left too). */
static int
gchw_promote_remove(redisContext *rc, const char *sid, const char *cid,
    const char *fid)
{
    redisReply  *x;

    redisAppendCommand(rc, "MULTI");
    redisAppendCommand(rc, "LREM " GCH_KEY_S(GCH_KEY_WAIT) " 0 %s",
                       gchb_town, sid, cid);
    redisAppendCommand(rc, "HDEL " GCH_KEY_S(GCH_KEY_WAITERS) " %s",
                       gchb_town, sid, cid);
    redisAppendCommand(rc, "HDEL " GCH_KEY_S(GCH_KEY_WAITTRY) " %s",
                       gchb_town, sid, cid);
    if (fid) {
        redisAppendCommand(rc, "HDEL " GCH_KEY_F(GCH_KEY_WAITS) " %s %s",
                           gchb_town, fid, sid, cid);
    } else {
        redisAppendCommand(rc, "PING");
    }
    redisAppendCommand(rc, "EXEC");

    for (int i = 0; i < 6; i++) {
        if (redisGetReply(rc, (void **) &x) != REDIS_OK) {
            return -1;
        }
        freeReplyObject(x);
    }

    return 0;
}


/* The list of sid is empty: out of {T}:waiting (unless a join came). */
static void
gchw_promote_forget(redisContext *rc, const char *sid)
{
    redisReply  *x;

    freeReplyObject(redisCommand(rc, "WATCH " GCH_KEY_S(GCH_KEY_WAIT),
                                 gchb_town, sid));
    x = redisCommand(rc, "LLEN " GCH_KEY_S(GCH_KEY_WAIT), gchb_town, sid);
    if (x && x->type == REDIS_REPLY_INTEGER && x->integer == 0) {
        freeReplyObject(x);
        freeReplyObject(redisCommand(rc, "MULTI"));
        freeReplyObject(redisCommand(rc, "SREM " GCH_KEY_WAITING " %s",
                                     gchb_town, sid));
        x = redisCommand(rc, "EXEC");
    } else {
        freeReplyObject(redisCommand(rc, "UNWATCH"));
    }

    if (x) {
        freeReplyObject(x);
    }
}


/* One session: promotions while a place is left.  Booked count or -1. */
static int
gchw_promote_session(redisContext *rc, const gch_town_t *t, long long gen,
    const char *sid, int64_t now_ms)
{
    int                   n, k, got, closed;
    char                  cid[128], bid[64], fid[128], key[128];
    long long             tries, left;
    redisReply           *x, *y;
    gch_reason_t          reason;
    const gch_family_t   *f;
    const gch_session_t  *s;

    s = gch_town_session(t, sid, strlen(sid));
    if (s == NULL) {
        return 0;                          /* not in this catalogue */
    }

    /* past the booking deadline the list ends: each entry is tried once
     * more, refused "closed", and leaves with its e-mail */
    closed = gch_wait_closed(t, s, now_ms);

    n = 0;

    for (k = 0; k < GCHW_PROMOTE_MAX; k++) {

        x = redisCommand(rc, "LINDEX " GCH_KEY_S(GCH_KEY_WAIT) " 0",
                         gchb_town, sid);
        if (x == NULL) {
            return -1;
        }

        if (x->type != REDIS_REPLY_STRING || x->len >= sizeof(cid)) {
            freeReplyObject(x);
            gchw_promote_forget(rc, sid);
            return n;
        }

        memcpy(cid, x->str, x->len + 1);
        freeReplyObject(x);

        redisAppendCommand(rc, "HGET " GCH_KEY_S(GCH_KEY_WAITERS) " %s",
                           gchb_town, sid, cid);
        redisAppendCommand(rc, "HGET " GCH_KEY_S(GCH_KEY_WAITTRY) " %s",
                           gchb_town, sid, cid);
        if (redisGetReply(rc, (void **) &x) != REDIS_OK) {
            return -1;
        }
        if (redisGetReply(rc, (void **) &y) != REDIS_OK) {
            freeReplyObject(x);
            return -1;
        }

        tries = (y->type == REDIS_REPLY_STRING) ? atoll(y->str) : 0;
        freeReplyObject(y);

        /* "<bid> <fid> <at_ms>"; none: a leftover of a request that died
         * between its steps, or of a family that left meanwhile */
        if (x->type != REDIS_REPLY_STRING
            || sscanf(x->str, "%63s %127s", bid, fid) != 2
            || (f = gch_town_family(t, fid, strlen(fid))) == NULL)
        {
            freeReplyObject(x);
            gchb_log("info", "waitlist %s: %s has no entry, removed", sid,
                     cid);
            if (gchw_promote_remove(rc, sid, cid, NULL) != 0) {
                return -1;
            }
            continue;
        }

        freeReplyObject(x);

        if (gch_wait_promotion_key(key, sizeof(key), bid, tries) < 0) {
            return n;
        }

        /* a place online, or a promotion of this key already recorded (a
         * worker killed before the entry left the list: its replay) */
        redisAppendCommand(rc, "BITFIELD " GCH_KEY_S(GCH_KEY_LEFT)
                           " GET u32 0", gchb_town, sid);
        redisAppendCommand(rc, "EXISTS " GCH_KEY_F(GCH_KEY_IDEM) ":%s",
                           gchb_town, fid, key);
        if (redisGetReply(rc, (void **) &x) != REDIS_OK) {
            return -1;
        }
        if (redisGetReply(rc, (void **) &y) != REDIS_OK) {
            freeReplyObject(x);
            return -1;
        }

        left = (x->type == REDIS_REPLY_ARRAY && x->elements == 1
                && x->element[0]->type == REDIS_REPLY_INTEGER)
               ? x->element[0]->integer : 0;
        if ((y->type == REDIS_REPLY_INTEGER && y->integer == 1) || closed) {
            left = 1;
        }
        freeReplyObject(x);
        freeReplyObject(y);

        if (left <= 0) {
            return n;
        }

        reason = GCH_REASON_NONE;
        got = gchw_promote_book(rc, t, gen, f, cid, sid, key, now_ms,
                                &reason);

        if (got < 0) {
            return rc->err ? -1 : n;
        }

        if (got == 2) {
            return n;                      /* in progress: the reaper */
        }

        switch (gch_wait_decide(got == 1, reason)) {

        case GCH_WAIT_BOOKED:
            gchb_log("info", "waitlist %s: %s promoted (%s)", sid, cid, key);
            n++;
            if (gchw_promote_remove(rc, sid, cid, fid) != 0) {
                return -1;
            }
            break;

        case GCH_WAIT_STAY:
            freeReplyObject(redisCommand(rc, "HINCRBY "
                                         GCH_KEY_S(GCH_KEY_WAITTRY) " %s 1",
                                         gchb_town, sid, cid));
            return n;

        default:
            gchb_log("info", "waitlist %s: %s not eligible (%s), removed",
                     sid, cid,
                     reason < GCH_REASON_COUNT ? gch_reason_name(reason)
                                               : "?");
            if (gchw_promote_remove(rc, sid, cid, fid) != 0) {
                return -1;
            }
            break;
        }
    }

    return n;
}


/* See gchw.h. */
int
gchw_promote(gchw_reaper_t *r, redisContext *rc, int64_t now_ms)
{
    int                   n, got, first;
    size_t                i;
    long long             gen, *left;
    redisReply           *x, *y;
    const gch_town_t     *t;
    const gch_session_t  *s;

    x = redisCommand(rc, "SMEMBERS " GCH_KEY_WAITING, gchb_town);
    if (x == NULL) {
        gchb_log("error", "redis: %s", rc->errstr);
        return -1;
    }

    if (x->type != REDIS_REPLY_ARRAY || x->elements == 0) {
        freeReplyObject(x);
        return 0;
    }

    t = gchw_reaper_catalogue(r, rc, &gen);
    if (t == NULL) {
        freeReplyObject(x);
        return rc->err ? -1 : 0;
    }

    /* one round trip for every session's places; only a session with a
     * place online, or past its deadline, is looked at (and every one at
     * the first turn of a worker: a promotion its predecessor recorded
     * but did not finish) */
    for (i = 0; i < x->elements; i++) {
        redisAppendCommand(rc, "BITFIELD " GCH_KEY_S(GCH_KEY_LEFT)
                           " GET u32 0", gchb_town,
                           x->element[i]->type == REDIS_REPLY_STRING
                           ? x->element[i]->str : "");
    }

    /* every reply read before any promotion sends its own commands */
    left = calloc(x->elements, sizeof(long long));
    if (left == NULL) {
        freeReplyObject(x);
        return 0;
    }

    for (i = 0; i < x->elements; i++) {
        if (redisGetReply(rc, (void **) &y) != REDIS_OK) {
            free(left);
            freeReplyObject(x);
            return -1;
        }

        left[i] = (y->type == REDIS_REPLY_ARRAY && y->elements == 1
                   && y->element[0]->type == REDIS_REPLY_INTEGER)
                  ? y->element[0]->integer : 0;
        freeReplyObject(y);
    }

    first = gchw_reaper_first_turn(r);

    n = 0;
    for (i = 0; i < x->elements; i++) {
        if (x->element[i]->type != REDIS_REPLY_STRING) {
            continue;
        }

        s = gch_town_session(t, x->element[i]->str,
                             strlen(x->element[i]->str));
        if (left[i] <= 0 && !first
            && !(s && gch_wait_closed(t, s, now_ms)))
        {
            continue;
        }

        got = gchw_promote_session(rc, t, gen, x->element[i]->str, now_ms);
        if (got < 0) {
            gchb_log("error", "waitlist %s: redis: %s", x->element[i]->str,
                     rc->errstr);
            free(left);
            freeReplyObject(x);
            return -1;
        }

        n += got;
    }

    free(left);
    freeReplyObject(x);
    return n;
}
