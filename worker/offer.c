/*
 * offer.c -- places offered instead of booked (issue 23, an activity's
 * "waitlist": {"mode": "offer", "hold_hours": N}): the worker holds a
 * freed place for the first eligible family of the list, ends the offers
 * that expire (the place goes down the list), and e-mails each offer once.
 * The promotion proper (booking the first family) is promote.c's; this
 * file calls its gchw_promote_book, _remove and _forget.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <yajl/yajl_tree.h>

#include "gchw.h"


#define GCHW_OFFERS_MAX   100     /* offers expired per turn */
#define GCHW_OFFER_GRACE  120000  /* ms: an acceptance between its steps */


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
int
gchw_offer_session(redisContext *rc, const gch_town_t *t, long long gen,
    const gch_session_t *s, int64_t now_ms)
{
    int                  n, k, got;
    char                 cid[128], bid[64], fid[128], key[128];
    int64_t              until;
    long long            at;
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

        at = 0;
        if (x->type != REDIS_REPLY_STRING
            || sscanf(x->str, "%63s %127s %lld", bid, fid, &at) < 2
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

        /*
         * The request that put the child here still between its steps
         * (as in promote.c): its claims are held and its step two may yet
         * take the child off with a place, so the child is neither
         * refused "conflict" nor offered a place now; the list waits for
         * the next turn.
         */
        got = gchw_promote_in_flight(rc, fid, at);
        if (got != 0) {
            if (got > 0) {
                gchb_log("info", "waitlist %s: %s's request is between its"
                         " steps: the list waits", sid, cid);
            }
            return got < 0 ? -1 : n;
        }

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
int
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
