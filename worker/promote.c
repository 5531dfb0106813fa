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




static uint64_t  gchw_promote_attempts;


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
int
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
int
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
void
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


/* One entry of a session's batch: the list's child, its promotion. */
typedef struct {
    char                 cid[128];
    char                 bid[64];
    char                 fid[128];
    char                 key[128];
    char                 body[512];
    const gch_family_t  *f;
    int                  gone;     /* no :waiters entry: a leftover */
    long long            at;       /* the entry's request, its start */
    int                  busy;     /* that request is between its steps */
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


/* Does the reply of ZRANGE {T}:inflight hold a booking attempt of the
 * family fid ("{T}:f:<fid>:idem:<key>#<id>")? */
static int
gchw_promo_in_flight(const redisReply *r, const char *fid)
{
    int     n;
    char    prefix[256];
    size_t  i;

    n = snprintf(prefix, sizeof(prefix), GCH_KEY_F(GCH_KEY_IDEM) ":",
                 gchb_town, fid);
    if (r->type != REDIS_REPLY_ARRAY || n < 0
        || (size_t) n >= sizeof(prefix))
    {
        return 0;
    }

    for (i = 0; i < r->elements; i++) {
        if (r->element[i]->type == REDIS_REPLY_STRING
            && strncmp(r->element[i]->str, prefix, (size_t) n) == 0)
        {
            return 1;
        }
    }

    return 0;
}


/* See gchw.h: one ZRANGE {T}:inflight at_ms at_ms BYSCORE, for offer.c
 * (the promoter pipelines the same read for a whole list). */
int
gchw_promote_in_flight(redisContext *rc, const char *fid, long long at_ms)
{
    int          busy;
    redisReply  *r;

    if (at_ms <= 0) {
        return 0;
    }

    r = redisCommand(rc, "ZRANGE " GCH_KEY_INFLIGHT " %lld %lld BYSCORE",
                     gchb_town, at_ms, at_ms);
    if (r == NULL) {
        return -1;
    }

    busy = gchw_promo_in_flight(r, fid);
    freeReplyObject(r);

    return busy;
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
            || sscanf(x->str, "%63s %127s %lld", p[i].bid, p[i].fid,
                      &p[i].at) < 2
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
     * before the entry left the list: its replay); the entry's own
     * request still between its steps: {T}:inflight has an attempt of the
     * family started at the entry's instant.  A request that asked for
     * the list pushes its child in its step one whatever it gets, and its
     * step two takes the child off again when it took a place: seen
     * between the two, the child is not waiting (promoted, it would be
     * refused already_booked, a demande and an e-mail the family never
     * asked for); nor is it known yet whether it waits, so no later child
     * goes before it either */
    for (i = 0; i < nl; i++) {
        if (!p[i].gone) {
            redisAppendCommand(rc, "EXISTS " GCH_KEY_F(GCH_KEY_IDEM) ":%s",
                               gchb_town, p[i].fid, p[i].key);
            redisAppendCommand(rc, "ZRANGE " GCH_KEY_INFLIGHT " %lld %lld"
                               " BYSCORE", gchb_town, p[i].at, p[i].at);
        }
    }
    for (i = 0; i < nl; i++) {
        if (p[i].gone) {
            continue;
        }
        if (redisGetReply(rc, (void **) &x) != REDIS_OK) {
            return -1;
        }
        if (redisGetReply(rc, (void **) &y) != REDIS_OK) {
            freeReplyObject(x);
            return -1;
        }
        p[i].replay = x->type == REDIS_REPLY_INTEGER && x->integer == 1;
        p[i].busy = p[i].at > 0 && gchw_promo_in_flight(y, p[i].fid);
        freeReplyObject(x);
        freeReplyObject(y);
    }

    /* the children the places can serve, in order: m of them */
    want = 0;
    for (m = 0; m < nl; m++) {
        if (p[m].gone || p[m].replay) {
            continue;
        }
        if (p[m].busy) {
            gchb_log("info", "waitlist %s: %s's request is between its"
                     " steps: the list waits", sid, p[m].cid);
            break;
        }
        if (closed) {
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

