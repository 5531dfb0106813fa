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
 *
 * The bookings of a session's first children are pipelined as draw.c
 * pipelines a batch (gchw_promote_session: every step one, then every
 * step two, then every removal), cut where the one-at-a-time loop would
 * have stopped or seen a place given back (docs/architecture.md).
 *
 * Offers (an activity's "waitlist": {"mode": "offer", "hold_hours": N}):
 * instead of a booking, the first eligible child (gch_wait_eligible: the
 * rules that need no Redis; one that is not is tried as a booking, which
 * records the refusal and drops it) gets the place held: under WATCH of
 * {T}:s:<sid>:left, one MULTI moves a place from left to
 * {T}:s:<sid>:hold:<cid>, counts it in :held, writes the offer's end
 * (:offer, {T}:offers) and the e-mail to queue ({T}:offers:mail), and
 * takes the child off the list (its entry in :waiters stays: the offer's
 * family).  The family accepts with a booking ("offer": true) or declines
 * (DELETE /api/waitlist/...: the end becomes 0).  gchw_offers_expire()
 * gives back the place of an offer past its end, declined, or left by a
 * family that no longer exists: the next turn offers it to the next child.
 * Everything is in Redis, so a restarted worker keeps the offers' ends.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <yajl/yajl_tree.h>

#include "gchw.h"


#define GCHW_PROMOTE_MAX  20      /* entries looked at per session, turn */
#define GCHW_OFFERS_MAX   100     /* offers expired per turn */
#define GCHW_OFFER_GRACE  120000  /* ms: an acceptance between its steps */


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


/* See gchw.h. */
int
gchw_append_cmds(redisContext *rc, const gch_cmds_t *l)
{
    size_t  i;

    for (i = 0; i < l->ncmds; i++) {
        if (redisAppendFormattedCommand(rc, l->cmds[i].data, l->cmds[i].len)
            != REDIS_OK)
        {
            return -1;
        }
    }

    return 0;
}


/* See gchw.h. */
redisReply *
gchw_read_cmds(redisContext *rc, const gch_cmds_t *l)
{
    size_t       i;
    void        *x;
    redisReply  *last;

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


/* "2021-07-01T12:00:00+02:00" -> "01/07/2021 à 12:00" */
static void
gchw_offer_when(int64_t ms, char *out, size_t size)
{
    char  iso[26];

    gch_instant_format(ms / 1000, iso);
    snprintf(out, size, "%.2s/%.2s/%.4s à %.5s", iso + 8, iso + 5, iso,
             iso + 11);
}


/*
 * Holds a place of session s for child cid of family f until until_ms:
 * 1 held, 0 no place left, -1 Redis.  WATCH {T}:s:<sid>:left: a booking
 * that takes the last place meanwhile aborts the MULTI (tried again).
 */
static int
gchw_offer_hold(redisContext *rc, const gch_town_t *t,
    const gch_session_t *s, const gch_family_t *f, const char *cid,
    const char *bid, int64_t until_ms)
{
    int                 tries, ok, i;
    char                day[11], when[40], member[300], subject[512],
                        mail[2048], ref[96];
    long long           left;
    redisReply         *x;
    const char         *sid = s->id;
    const gch_child_t  *c;

    c = gch_family_child(f, cid, strlen(cid));
    gch_day_format(s->date, day);
    gchw_offer_when(until_ms, when, sizeof(when));
    snprintf(member, sizeof(member), "%s %s", sid, cid);
    snprintf(ref, sizeof(ref), "offer.%s", bid);
    snprintf(subject, sizeof(subject), "Une place vous est proposée : %s",
             s->activity->name);
    snprintf(mail, sizeof(mail),
             "%s\n%s\nBonjour,\n\nUne place s'est libérée pour %s : %s, "
             "le %.2s/%.2s/%.4s (%s).\n\nElle vous est proposée jusqu'au "
             "%s.  Acceptez-la ou refusez-la dans votre Espace Famille, "
             "page Mes réservations.  Sans réponse d'ici là, elle sera "
             "proposée à la famille suivante sur la liste d'attente.\n\n"
             "Le service enfance\n",
             f->id, subject, c && c->first_name ? c->first_name : cid,
             s->activity->name, day + 8, day + 5, day,
             s->label ? s->label : t->units[s->unit].label, when);

    for (tries = 0; tries < 5; tries++) {
        x = redisCommand(rc, "WATCH " GCH_KEY_S(GCH_KEY_LEFT), gchb_town,
                         sid);
        if (x == NULL) {
            return -1;
        }
        freeReplyObject(x);

        x = redisCommand(rc, "BITFIELD " GCH_KEY_S(GCH_KEY_LEFT)
                         " GET u32 0", gchb_town, sid);
        if (x == NULL) {
            return -1;
        }
        left = (x->type == REDIS_REPLY_ARRAY && x->elements == 1
                && x->element[0]->type == REDIS_REPLY_INTEGER)
               ? x->element[0]->integer : 0;
        freeReplyObject(x);

        if (left <= 0) {
            freeReplyObject(redisCommand(rc, "UNWATCH"));
            return 0;
        }

        redisAppendCommand(rc, "MULTI");
        redisAppendCommand(rc, "BITFIELD " GCH_KEY_S(GCH_KEY_LEFT)
                           " OVERFLOW FAIL INCRBY u32 0 -1", gchb_town, sid);
        redisAppendCommand(rc, "BITFIELD " GCH_KEY_S(GCH_KEY_HOLD) ":%s"
                           " SET u32 0 1", gchb_town, sid, cid);
        redisAppendCommand(rc, "INCR " GCH_KEY_S(GCH_KEY_HELD), gchb_town,
                           sid);
        redisAppendCommand(rc, "HSET " GCH_KEY_S(GCH_KEY_OFFER) " %s %lld",
                           gchb_town, sid, cid, (long long) until_ms);
        redisAppendCommand(rc, "ZADD " GCH_KEY_OFFERS " %lld %s", gchb_town,
                           (long long) until_ms, member);
        redisAppendCommand(rc, "LREM " GCH_KEY_S(GCH_KEY_WAIT) " 0 %s",
                           gchb_town, sid, cid);
        redisAppendCommand(rc, "HSET " GCH_KEY_OFFERMAIL " %s %s", gchb_town,
                           ref, mail);
        redisAppendCommand(rc, "EXEC");

        ok = 0;
        for (i = 0; i < 9; i++) {
            if (redisGetReply(rc, (void **) &x) != REDIS_OK) {
                return -1;
            }
            if (i == 8) {
                ok = (x->type == REDIS_REPLY_ARRAY);
            }
            freeReplyObject(x);
        }

        if (ok) {
            return 1;
        }
    }

    return 0;                              /* a rush: the next turn */
}


/* 1 when child cid holds a claim on a time slot of s (a booking of it
 * overlapping s, made meanwhile): the offer would be refused "conflict"
 * when accepted.  -1 Redis. */
static int
gchw_offer_claimed(redisContext *rc, const gch_town_t *t,
    const gch_session_t *s, const char *cid)
{
    int          q, n, got;
    char         key[512];
    uint32_t     quanta;
    redisReply  *x;

    quanta = t->units[s->unit].quanta;
    n = 0;

    for (q = 0; q < 32; q++) {
        if ((quanta & (1u << q))
            && gch_claim_key_of(key, sizeof(key), t, cid, s->date, q) > 0)
        {
            redisAppendCommand(rc, "EXISTS %s", key);
            n++;
        }
    }

    got = 0;
    for (q = 0; q < n; q++) {
        if (redisGetReply(rc, (void **) &x) != REDIS_OK) {
            return -1;
        }
        got |= (x->type == REDIS_REPLY_INTEGER && x->integer > 0);
        freeReplyObject(x);
    }

    return got;
}


/* An offer's session: the first eligible children get the places left
 * held.  Offered count or -1. */
static int
gchw_offer_session(redisContext *rc, const gch_town_t *t, long long gen,
    const gch_session_t *s, int64_t now_ms)
{
    int                  n, k, got;
    char                 cid[128], bid[64], fid[128], key[128];
    int64_t              until;
    redisReply          *x;
    gch_reason_t         reason;
    const char          *sid = s->id;
    const gch_family_t  *f;

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

        x = redisCommand(rc, "HGET " GCH_KEY_S(GCH_KEY_WAITERS) " %s",
                         gchb_town, sid, cid);
        if (x == NULL) {
            return -1;
        }

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

        reason = gch_wait_eligible(t, f, cid, s, now_ms, &gch_alloc_std);
        if (reason == GCH_REASON_COUNT) {
            return n;                      /* memory: the next turn */
        }

        until = gch_offer_until(t, s, now_ms);

        if (reason == GCH_REASON_NONE && until) {
            got = gchw_offer_claimed(rc, t, s, cid);
            if (got < 0) {
                return -1;
            }
            if (got) {
                reason = GCH_REASON_CONFLICT;
            }
        }

        if (reason != GCH_REASON_NONE || until == 0) {
            /* not eligible: tried as a booking, refused, its demande
             * records why (no place is taken: the rules come first) */
            if (gch_wait_promotion_key(key, sizeof(key), bid, 0) < 0) {
                return n;
            }
            got = gchw_promote_book(rc, t, gen, f, cid, sid, key, now_ms,
                                    &reason);
            if (got < 0) {
                return rc->err ? -1 : n;
            }
            if (got == 2) {
                return n;
            }
            gchb_log("info", "waitlist %s: %s not eligible (%s), removed",
                     sid, cid,
                     reason < GCH_REASON_COUNT ? gch_reason_name(reason)
                                               : "?");
            if (gchw_promote_remove(rc, sid, cid, fid) != 0) {
                return -1;
            }
            continue;
        }

        got = gchw_offer_hold(rc, t, s, f, cid, bid, until);
        if (got <= 0) {
            return got < 0 ? -1 : n;
        }

        gchb_log("info", "waitlist %s: a place offered to %s until %lld",
                 sid, cid, (long long) until);
        n++;
    }

    return n;
}


/*
 * Offers past their end (or declined: end 0): the place held goes back
 * online, the offer and the entry go (the next turn offers the place to
 * the next child).  An offer whose place was taken by an acceptance
 * between its steps is left alone for GCHW_OFFER_GRACE past its end; then
 * its session is recounted by the reaper.  Count or -1.
 */
static int
gchw_offers_expire(redisContext *rc, int64_t now_ms)
{
    int          n, i, j, ok, v, offered;
    char         sid[128], cid[128], bid[64], fid[128], hold[400];
    size_t       e;
    long long    until;
    redisReply  *x, *y, *z;

    x = redisCommand(rc, "ZRANGEBYSCORE " GCH_KEY_OFFERS " -inf %lld"
                     " WITHSCORES LIMIT 0 %d", gchb_town, (long long) now_ms,
                     GCHW_OFFERS_MAX);
    if (x == NULL) {
        return -1;
    }

    n = 0;

    for (e = 0; x->type == REDIS_REPLY_ARRAY && e + 1 < x->elements;
         e += 2)
    {
        if (sscanf(x->element[e]->str, "%127s %127s", sid, cid) != 2) {
            freeReplyObject(redisCommand(rc, "ZREM " GCH_KEY_OFFERS " %s",
                                         gchb_town, x->element[e]->str));
            continue;
        }
        until = atoll(x->element[e + 1]->str);

        snprintf(hold, sizeof(hold), GCH_KEY_S(GCH_KEY_HOLD) ":%s",
                 gchb_town, sid, cid);

        freeReplyObject(redisCommand(rc, "WATCH %s", hold));

        redisAppendCommand(rc, "BITFIELD %s GET u32 0", hold);
        redisAppendCommand(rc, "HGET " GCH_KEY_S(GCH_KEY_WAITERS) " %s",
                           gchb_town, sid, cid);
        redisAppendCommand(rc, "HEXISTS " GCH_KEY_S(GCH_KEY_OFFER) " %s",
                           gchb_town, sid, cid);
        if (redisGetReply(rc, (void **) &y) != REDIS_OK) {
            freeReplyObject(x);
            return -1;
        }
        v = (y->type == REDIS_REPLY_ARRAY && y->elements == 1
             && y->element[0]->type == REDIS_REPLY_INTEGER)
            ? (int) y->element[0]->integer : 0;
        freeReplyObject(y);

        if (redisGetReply(rc, (void **) &y) != REDIS_OK) {
            freeReplyObject(x);
            return -1;
        }
        fid[0] = '\0';
        if (y->type != REDIS_REPLY_STRING
            || sscanf(y->str, "%63s %127s", bid, fid) != 2)
        {
            fid[0] = '\0';
        }
        freeReplyObject(y);

        if (redisGetReply(rc, (void **) &y) != REDIS_OK) {
            freeReplyObject(x);
            return -1;
        }
        offered = (y->type == REDIS_REPLY_INTEGER && y->integer == 1);
        freeReplyObject(y);

        if (v == 0 && offered && until > 0
            && now_ms < until + GCHW_OFFER_GRACE)
        {
            /* an acceptance between its steps: its step two ends it */
            freeReplyObject(redisCommand(rc, "UNWATCH"));
            continue;
        }

        redisAppendCommand(rc, "MULTI");
        redisAppendCommand(rc, "ZREM " GCH_KEY_OFFERS " %s %s", gchb_town,
                           sid, cid);
        redisAppendCommand(rc, "HDEL " GCH_KEY_S(GCH_KEY_OFFER) " %s",
                           gchb_town, sid, cid);
        j = 3;
        if (v > 0 || offered) {
            /* not accepted: the place, the entry */
            redisAppendCommand(rc, "DEL %s", hold);
            redisAppendCommand(rc, "DECR " GCH_KEY_S(GCH_KEY_HELD),
                               gchb_town, sid);
            redisAppendCommand(rc, "HDEL " GCH_KEY_S(GCH_KEY_WAITERS) " %s",
                               gchb_town, sid, cid);
            redisAppendCommand(rc, "HDEL " GCH_KEY_S(GCH_KEY_WAITTRY) " %s",
                               gchb_town, sid, cid);
            j += 4;
            if (fid[0]) {
                redisAppendCommand(rc, "HDEL " GCH_KEY_F(GCH_KEY_WAITS)
                                   " %s %s", gchb_town, fid, sid, cid);
                j++;
            }
            if (v > 0) {
                redisAppendCommand(rc, "BITFIELD " GCH_KEY_S(GCH_KEY_LEFT)
                                   " OVERFLOW SAT INCRBY u32 0 1", gchb_town,
                                   sid);
            } else {
                /* taken by an acceptance that never finished: the
                 * reaper's recount says what is left */
                redisAppendCommand(rc, "ZADD " GCH_KEY_RECOUNT " NX %lld %s",
                                   gchb_town, (long long) now_ms, sid);
            }
            j++;
        }
        redisAppendCommand(rc, "EXEC");
        j++;

        ok = 0;
        for (i = 0; i < j; i++) {
            if (redisGetReply(rc, (void **) &z) != REDIS_OK) {
                freeReplyObject(x);
                return -1;
            }
            if (i == j - 1) {
                ok = (z->type == REDIS_REPLY_ARRAY);
            }
            freeReplyObject(z);
        }

        if (ok && (v > 0 || offered)) {
            gchb_log("info", "waitlist %s: the offer to %s %s, the place "
                     "given back", sid, cid, until > 0 ? "expired"
                                                        : "declined");
            n++;
        }
    }

    freeReplyObject(x);
    return n;
}


/* One entry of a session's batch: the list's child, its promotion. */
typedef struct {
    char                 cid[128];
    char                 bid[64];
    char                 fid[128];
    char                 key[128];
    char                 body[512];
    const gch_family_t  *f;
    int                  gone;     /* no :waiters entry: a leftover */
    int                  replay;   /* its key is recorded already */
    int                  parsed;
    gch_booking_req_t    req;
    gch_book_t          *b;
    int                  st;       /* GCH_OK while it goes on */
    int                  got;      /* 1 booked, 0 refused, -1 error */
    gch_reason_t         reason;
} gchw_promo_t;


static void
gchw_promo_free(gchw_promo_t *p, size_t n)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        gch_book_free(p[i].b);
        if (p[i].parsed) {
            gch_booking_req_free(&p[i].req);
        }
    }
}


/* Plans p's promotion; p->st GCH_OK when there is a booking to send,
 * else p->got and p->reason say the outcome (0: refused), or p->st the
 * error. */
static void
gchw_promo_plan(gchw_promo_t *p, const gch_town_t *t, long long gen,
    const char *sid, int64_t now_ms)
{
    size_t          len;
    gch_error_t     err;
    gch_book_in_t   in;

    p->got = -1;
    len = (size_t) snprintf(p->body, sizeof(p->body),
                            "{\"items\":[{\"child_id\":\"%s\","
                            "\"session_id\":\"%s\"}]}", p->cid, sid);

    memset(&err, 0, sizeof(err));
    if (len >= sizeof(p->body)
        || gch_booking_req_parse(&p->req, p->body, len, 1, &gch_alloc_std,
                                 &err)
           != GCH_OK)
    {
        p->reason = GCH_REASON_UNKNOWN_SESSION;
        p->got = 0;
        p->st = GCH_EINVALID;
        return;
    }
    p->parsed = 1;

    memset(&in, 0, sizeof(in));
    in.town = t;
    in.family = p->f;
    in.req = &p->req;
    in.now_ms = now_ms;
    in.idem_key = p->key;
    in.idem_len = strlen(p->key);
    in.body = p->body;
    in.body_len = len;
    in.idem_ttl_s = 86400;
    in.inflight_ttl_s = 3600;
    in.catalogue_gen = gen;
    in.attempt = ((uint64_t) getpid() << 32) | ++gchw_promote_attempts;

    p->st = gch_book_plan(&p->b, &in, &gch_alloc_std, &err);
    if (p->st == GCH_EFORBIDDEN) {
        p->reason = GCH_REASON_NOT_ENROLLED;   /* not the family's child */
        p->got = 0;
    }
}


/* Appends the MULTI that takes an entry off the list (as
 * gchw_promote_remove); its 6 replies are read by gchw_promo_skip. */
static void
gchw_promo_remove_append(redisContext *rc, const char *sid,
    const char *cid, const char *fid)
{
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
}


/* Reads and drops n replies; 0 or -1. */
static int
gchw_promo_skip(redisContext *rc, size_t n)
{
    void  *x;

    while (n--) {
        if (redisGetReply(rc, &x) != REDIS_OK) {
            return -1;
        }
        freeReplyObject(x);
    }

    return 0;
}


/*
 * One session: promotions while a place is left, pipelined.  The list's
 * first GCHW_PROMOTE_MAX children are read in one round trip (with the
 * places left), their entries and tries in a second, whether each one's
 * key is recorded (a replay) in a third; the first ones that the places
 * left can serve (every one when the list is closed, and a replay in any
 * case) are booked as draw.c books a batch: every step one in one write
 * (Redis runs them in the list's order), then every step two, then every
 * removal.  Exact as the one-at-a-time loop was: the batch is cut after
 * the first child refused full (it stays first: a place freed meanwhile
 * must not go to a later child of the batch) and after the first whose
 * step two gives back a place a later one was refused for; a fresh
 * booking after the cut takes back its step one (gch_book_abandon) and
 * is tried again next turn with the same key.  Booked count or -1.
 */
static int
gchw_promote_session(redisContext *rc, const gch_town_t *t, long long gen,
    const char *sid, int64_t now_ms)
{
    int                   n, closed;
    size_t                i, j, m, nl, cut, nrm;
    long long             left, want;
    redisReply           *x, *y, *w;
    const gch_cmds_t     *l;
    const gch_session_t  *s;
    static gchw_promo_t   p[GCHW_PROMOTE_MAX];

    s = gch_town_session(t, sid, strlen(sid));
    if (s == NULL) {
        return 0;                          /* not in this catalogue */
    }

    /* past the booking deadline the list ends: each entry is tried once
     * more, refused "closed", and leaves with its e-mail */
    closed = gch_wait_closed(t, s, now_ms);

    if (s->activity->offer_hours > 0 && !closed) {
        return gchw_offer_session(rc, t, gen, s, now_ms);
    }

    /* 1: the places online and the list's first children */
    redisAppendCommand(rc, "BITFIELD " GCH_KEY_S(GCH_KEY_LEFT) " GET u32 0",
                       gchb_town, sid);
    redisAppendCommand(rc, "LRANGE " GCH_KEY_S(GCH_KEY_WAIT) " 0 %d",
                       gchb_town, sid, GCHW_PROMOTE_MAX - 1);
    if (redisGetReply(rc, (void **) &x) != REDIS_OK) {
        return -1;
    }
    if (redisGetReply(rc, (void **) &w) != REDIS_OK) {
        freeReplyObject(x);
        return -1;
    }

    left = (x->type == REDIS_REPLY_ARRAY && x->elements == 1
            && x->element[0]->type == REDIS_REPLY_INTEGER)
           ? x->element[0]->integer : 0;
    freeReplyObject(x);

    if (w->type != REDIS_REPLY_ARRAY || w->elements == 0) {
        freeReplyObject(w);
        gchw_promote_forget(rc, sid);
        return 0;
    }

    /* the batch: the list's order, up to a child seen twice (a stale
     * duplicate: the first's removal takes it) */
    memset(p, 0, sizeof(p));
    nl = 0;
    for (i = 0; i < w->elements && nl < GCHW_PROMOTE_MAX; i++) {
        if (w->element[i]->type != REDIS_REPLY_STRING
            || w->element[i]->len >= sizeof(p[0].cid))
        {
            break;
        }
        for (j = 0; j < nl; j++) {
            if (strcmp(p[j].cid, w->element[i]->str) == 0) {
                break;
            }
        }
        if (j < nl) {
            break;
        }
        memcpy(p[nl++].cid, w->element[i]->str, w->element[i]->len + 1);
    }
    freeReplyObject(w);

    if (nl == 0) {
        return 0;
    }

    /* 2: their entries "<bid> <fid> <at_ms>" and tries */
    for (i = 0; i < nl; i++) {
        redisAppendCommand(rc, "HGET " GCH_KEY_S(GCH_KEY_WAITERS) " %s",
                           gchb_town, sid, p[i].cid);
        redisAppendCommand(rc, "HGET " GCH_KEY_S(GCH_KEY_WAITTRY) " %s",
                           gchb_town, sid, p[i].cid);
    }
    for (i = 0; i < nl; i++) {
        if (redisGetReply(rc, (void **) &x) != REDIS_OK) {
            return -1;
        }
        if (redisGetReply(rc, (void **) &y) != REDIS_OK) {
            freeReplyObject(x);
            return -1;
        }

        /* none: a leftover of a request that died between its steps,
         * or of a family that left meanwhile */
        if (x->type != REDIS_REPLY_STRING
            || sscanf(x->str, "%63s %127s", p[i].bid, p[i].fid) != 2
            || (p[i].f = gch_town_family(t, p[i].fid, strlen(p[i].fid)))
               == NULL
            || gch_wait_promotion_key(p[i].key, sizeof(p[i].key), p[i].bid,
                   y->type == REDIS_REPLY_STRING ? atoll(y->str) : 0) < 0)
        {
            p[i].gone = 1;
        }
        freeReplyObject(x);
        freeReplyObject(y);
    }

    /* 3: a promotion of this key already recorded (a worker killed
     * before the entry left the list: its replay) */
    for (i = 0; i < nl; i++) {
        if (!p[i].gone) {
            redisAppendCommand(rc, "EXISTS " GCH_KEY_F(GCH_KEY_IDEM) ":%s",
                               gchb_town, p[i].fid, p[i].key);
        }
    }
    for (i = 0; i < nl; i++) {
        if (p[i].gone) {
            continue;
        }
        if (redisGetReply(rc, (void **) &x) != REDIS_OK) {
            return -1;
        }
        p[i].replay = x->type == REDIS_REPLY_INTEGER && x->integer == 1;
        freeReplyObject(x);
    }

    /* the children the places can serve, in order: m of them */
    want = 0;
    for (m = 0; m < nl; m++) {
        if (p[m].gone || p[m].replay || closed) {
            continue;
        }
        if (want >= left) {
            break;
        }
        want++;
    }

    for (i = 0; i < m; i++) {
        if (!p[i].gone) {
            gchw_promo_plan(&p[i], t, gen, sid, now_ms);
            if (p[i].st != GCH_OK && p[i].got != 0) {
                m = i;                     /* memory: the rest next turn */
                break;
            }
        }
    }

    /* 4: every step one */
    for (i = 0; i < m; i++) {
        if (p[i].gone || p[i].st != GCH_OK) {
            continue;
        }
        l = gch_book_step1(p[i].b);
        if (l == NULL || gchw_append_cmds(rc, l) != 0) {
            gchw_promo_free(p, nl);
            return -1;
        }
    }
    for (i = 0; i < m; i++) {
        if (p[i].gone || p[i].st != GCH_OK) {
            continue;
        }
        x = gchw_read_cmds(rc, gch_book_step1(p[i].b));
        if (x == NULL) {
            gchw_promo_free(p, nl);
            return -1;
        }
        p[i].st = gch_book_on_step1(p[i].b, x);
        freeReplyObject(x);
    }

    /* the cut: after the first child refused full, or the first whose
     * step two gives back a place a later one was refused for */
    cut = m;
    for (i = 0; i < m && cut == m; i++) {
        if (p[i].gone || p[i].st != GCH_OK || p[i].b == NULL) {
            continue;
        }
        if (gch_book_wants(p[i].b, s) || gch_book_status(p[i].b) == 409) {
            cut = i;                       /* it stays first */
            break;
        }
        if (gch_book_gives_back(p[i].b, s)) {
            for (j = i + 1; j < m; j++) {
                if (!p[j].gone && p[j].st == GCH_OK && p[j].b
                    && gch_book_wants(p[j].b, s))
                {
                    cut = i;
                    break;
                }
            }
        }
    }

    /* 5: every step two (a replay's compensation), or after the cut a
     * fresh booking's abandon */
    for (i = 0; i < m; i++) {
        if (p[i].gone || p[i].st != GCH_OK) {
            continue;
        }
        if (i > cut && !gch_book_replayed(p[i].b)
            && (gch_book_status(p[i].b) == 200
                || gch_book_status(p[i].b) == 202))
        {
            l = gch_book_abandon(p[i].b);
            if (l == NULL) {
                gchw_promo_free(p, nl);
                return -1;
            }
        } else {
            l = gch_book_step2(p[i].b);
        }
        if (l && gchw_append_cmds(rc, l) != 0) {
            gchw_promo_free(p, nl);
            return -1;
        }
    }
    for (i = 0; i < m; i++) {
        if (p[i].gone || p[i].st != GCH_OK
            || (l = gch_book_step2(p[i].b)) == NULL)
        {
            continue;
        }
        x = gchw_read_cmds(rc, l);
        if (x == NULL) {
            gchw_promo_free(p, nl);
            return -1;
        }
        if (i > cut) {
            freeReplyObject(x);            /* tried again next turn */
            p[i].st = GCH_EINVALID;
            p[i].got = -1;
            continue;
        }
        p[i].st = gch_book_on_step2(p[i].b, x);
        freeReplyObject(x);
    }

    /* step threes (a fenced one's undo, a demande list's LTRIM) once
     * every step two's reply is read: sent earlier, they would read a
     * later booking's replies as theirs */
    for (i = 0; i < m && i <= cut; i++) {
        if (p[i].gone || p[i].b == NULL
            || (l = gch_book_step3(p[i].b)) == NULL)
        {
            continue;
        }
        x = gchw_send_cmds(rc, l);
        if (x) {
            freeReplyObject(x);
        }
    }

    /* the outcomes, in the list's order, up to the cut */
    for (i = 0; i < m && i <= cut; i++) {
        if (p[i].gone || p[i].st != GCH_OK || p[i].b == NULL) {
            continue;
        }
        if (gch_book_status(p[i].b) == 409) {
            p[i].got = 2;                  /* in progress: the reaper */
            continue;
        }
        {
            size_t       len;
            const char  *ans;

            ans = gch_book_body(p[i].b, &len);
            if (gch_book_status(p[i].b) == 200 && ans) {
                p[i].got = gchw_promote_outcome(ans, len, &p[i].reason);
            }
        }
    }

    /* 6: the entries' ends, pipelined, in order; the first child that
     * stays (full, in progress, an error) ends the turn's batch */
    n = 0;
    nrm = 0;
    for (i = 0; i < nl; i++) {
        if (p[i].gone) {
            gchb_log("info", "waitlist %s: %s has no entry, removed", sid,
                     p[i].cid);
            gchw_promo_remove_append(rc, sid, p[i].cid, NULL);
            nrm += 6;
            continue;
        }
        if (i >= m || i > cut || p[i].got < 0 || p[i].got == 2) {
            break;
        }

        switch (gch_wait_decide(p[i].got == 1, p[i].reason)) {

        case GCH_WAIT_BOOKED:
            gchb_log("info", "waitlist %s: %s promoted (%s)", sid, p[i].cid,
                     p[i].key);
            n++;
            gchw_promo_remove_append(rc, sid, p[i].cid, p[i].fid);
            nrm += 6;
            continue;

        case GCH_WAIT_STAY:
            redisAppendCommand(rc, "HINCRBY " GCH_KEY_S(GCH_KEY_WAITTRY)
                               " %s 1", gchb_town, sid, p[i].cid);
            nrm++;
            break;

        default:
            gchb_log("info", "waitlist %s: %s not eligible (%s), removed",
                     sid, p[i].cid,
                     p[i].reason < GCH_REASON_COUNT
                     ? gch_reason_name(p[i].reason) : "?");
            gchw_promo_remove_append(rc, sid, p[i].cid, p[i].fid);
            nrm += 6;
            continue;
        }
        break;
    }

    gchw_promo_free(p, nl);

    if (gchw_promo_skip(rc, nrm) != 0) {
        return -1;
    }

    /* every child read left the list, and that was all of it: the
     * session leaves {T}:waiting now (it may have no place left, and
     * then gchw_promote() would not look at it again) */
    if (i == nl && nl < GCHW_PROMOTE_MAX) {
        gchw_promote_forget(rc, sid);
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

    if (gchw_offers_expire(rc, now_ms) < 0) {
        gchb_log("error", "redis: %s", rc->errstr);
        return -1;
    }

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


/* See gchw.h. */
int
gchw_offer_mail(PGconn *pg, redisContext *rc)
{
    int          n;
    char        *fid, *subject, *body, *nl;
    size_t       i;
    PGresult    *res;
    redisReply  *x;
    const char  *params[4];

    x = redisCommand(rc, "HGETALL " GCH_KEY_OFFERMAIL, gchb_town);
    if (x == NULL) {
        return -1;
    }

    n = 0;

    for (i = 0; x->type == REDIS_REPLY_ARRAY && i + 1 < x->elements;
         i += 2)
    {
        fid = strdup(x->element[i + 1]->str);
        if (fid == NULL) {
            break;
        }

        /* "<fid>\n<subject>\n<body>" */
        nl = strchr(fid, '\n');
        subject = nl ? nl + 1 : NULL;
        nl = subject ? strchr(subject, '\n') : NULL;
        body = nl ? nl + 1 : NULL;

        if (body == NULL) {
            free(fid);
            freeReplyObject(redisCommand(rc, "HDEL " GCH_KEY_OFFERMAIL " %s",
                                         gchb_town, x->element[i]->str));
            continue;
        }
        subject[-1] = '\0';
        body[-1] = '\0';

        params[0] = fid;
        params[1] = x->element[i]->str;
        params[2] = subject;
        params[3] = body;

        /* once: the ref is the offer's (a retry after a crash finds it) */
        res = PQexecParams(pg, "insert into outbox (family_id, kind, ref,"
                           " subject, body) values ($1, 'waitlist_offer',"
                           " $2, $3, $4) on conflict (kind, ref) do nothing",
                           4, NULL, params, NULL, NULL, 0);
        free(fid);

        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            gchb_log("error", "postgres: %s", PQerrorMessage(pg));
            PQclear(res);
            freeReplyObject(x);
            return -1;
        }
        PQclear(res);

        freeReplyObject(redisCommand(rc, "HDEL " GCH_KEY_OFFERMAIL " %s",
                                     gchb_town, x->element[i]->str));
        n++;
    }

    freeReplyObject(x);
    return n;
}
