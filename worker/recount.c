/*
 * recount.c -- the sessions a dead attempt leaves to recount (reaper.c),
 * and their recount.
 *
 * A released attempt's sessions go to {T}:recount, due recount_after_ms
 * later (kept in Redis: a worker restart forgets nothing).  Each due
 * session gets left = places_online + on-site places released online -
 * places held by offers - SCARD booked, under WATCH of those keys and
 * only when no younger attempt touches the session; otherwise it stays
 * due, tried again next round.  The delay lets the attempts that saw the
 * released record (a retry answered 409) give their places back first.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_tree.h>

#include "gchw.h"
#include "gchw_reaper.h"


/*
 * Session sid is to be recounted, not before recount_after_ms from now
 * (kept in Redis, {T}:recount, so that a worker restart forgets nothing).
 * Inside the caller's MULTI when there is one.
 */
void
gchw_dirty_add(gchw_reaper_t *r, redisContext *rc, const char *sid)
{
    freeReplyObject(redisCommand(rc, "ZADD " GCH_KEY_RECOUNT " GT %lld %s",
                                 gchb_town, (long long) r->recount_at, sid));
}


/*
 * The sessions of a stored answer "D <hash32> <demande>" are to be
 * recounted: its member in {T}:inflight is a replay (same key, same body)
 * whose nginx worker died between its steps.  The first attempt's step two
 * had removed the member, the replay's step one put it back and took the
 * places its step two would have given back.
 */
void
gchw_dirty_answer(gchw_reaper_t *r, redisContext *rc, const char *rec,
    size_t len)
{
    char         ebuf[128];
    size_t       i;
    yajl_val     v, items, sv;
    const char  *pi[] = { "items", NULL }, *ps[] = { "session_id", NULL };

    if (len <= 35) {
        return;
    }

    v = gchw_answer_parse(rec, len, ebuf, sizeof(ebuf));
    items = v ? yajl_tree_get(v, pi, yajl_t_array) : NULL;

    for (i = 0; items && i < items->u.array.len; i++) {
        sv = yajl_tree_get(items->u.array.values[i], ps, yajl_t_string);
        if (sv) {
            gchw_dirty_add(r, rc, YAJL_GET_STRING(sv));
        }
    }

    yajl_tree_free(v);
}


/* The sessions of a first attempt's plan "P <hash32> <id> <plan>" are to
 * be recounted: a retry of its body died between its steps. */
void
gchw_dirty_plan(gchw_reaper_t *r, redisContext *rc, const char *rec,
    size_t len)
{
    char         ebuf[128], *plan;
    size_t       i;
    yajl_val     v, sv;
    const char  *ps[] = { "s", NULL };

    plan = gchw_plan_text(NULL, NULL, rec, len);
    v = plan ? yajl_tree_parse(plan, ebuf, sizeof(ebuf)) : NULL;
    free(plan);

    for (i = 0; v && YAJL_IS_ARRAY(v) && i < v->u.array.len; i++) {
        sv = yajl_tree_get(v->u.array.values[i], ps, yajl_t_string);
        if (sv) {
            gchw_dirty_add(r, rc, YAJL_GET_STRING(sv));
        }
    }

    yajl_tree_free(v);
}


/*
 * Does the answer of the record "D <hash32> <demande>" contain needle (in
 * its JSON)?  An answer that cannot be read counts as containing it: the
 * recount waits.
 */
static int
gchw_answer_has(const char *rec, size_t len, const char *needle)
{
    int      has;
    char    *js;
    size_t   n;

    if (len <= 35) {
        return 1;
    }

    js = gch_dm_json(rec + 35, len - 35, GCH_DM_ANSWER, &gch_alloc_std, &n);
    if (js == NULL) {
        return 1;
    }

    has = strstr(js, needle) != NULL;
    free(js);

    return has;
}


/*
 * Does an attempt younger than cutoff touch session sid?  1, 0, -1.  "P":
 * a first attempt, its plan (a retry answered 409 has the same body, hence
 * the same sessions); "D": a replay between its steps, the sessions of the
 * stored answer; "C": a cancellation.  An attempt whose cells are not known
 * (another body than the record's, answered 422; a record gone) counts as
 * touching every session: the recount waits for it.
 */
static int
gchw_session_busy(redisContext *rc, const char *sid, int64_t cutoff)
{
    int          busy;
    char         pat[600], ans[600], rkey[600], *plan;
    size_t       i, n, lsid;
    redisReply  *m, *v;
    const char  *id;

    m = redisCommand(rc, "ZRANGEBYSCORE " GCH_KEY_INFLIGHT " (%lld +inf",
                     gchb_town, (long long) cutoff);
    if (m == NULL || m->type != REDIS_REPLY_ARRAY) {
        if (m) {
            freeReplyObject(m);
        }
        return -1;
    }

    snprintf(pat, sizeof(pat), "\"s\":\"%s\"", sid);
    snprintf(ans, sizeof(ans), "\"session_id\":\"%s\"", sid);
    lsid = strlen(sid);
    busy = 0;

    for (i = 0; i < m->elements && !busy; i++) {
        id = gch_attempt_split(m->element[i]->str, rkey, sizeof(rkey));
        v = redisCommand(rc, "GET %s", rkey);
        if (v == NULL) {
            freeReplyObject(m);
            return -1;
        }

        if (id && (v->type != REDIS_REPLY_STRING
                   || !gch_attempt_same_body(id, v->str, v->len)))
        {
            busy = 1;                     /* its cells are not known */

        } else if (v->type == REDIS_REPLY_STRING) {
            n = v->len;
            if (v->str[0] == 'P') {
                plan = gchw_plan_text(NULL, NULL, v->str, v->len);
                busy = plan == NULL || strstr(plan, pat) != NULL;
                free(plan);

            } else if (v->str[0] == 'D') {
                busy = gchw_answer_has(v->str, v->len, ans);

            } else if ((v->str[0] == 'C' || v->str[0] == 'S')
                       && n > lsid
                       && v->str[n - lsid - 1] == ' '
                       && strcmp(v->str + n - lsid, sid) == 0)
            {
                busy = 1;
            }
        }

        freeReplyObject(v);
    }

    freeReplyObject(m);

    return busy;
}


/*
 * left (its online u32) = places_online - SCARD booked, atomically, and
 * sid leaves {T}:recount in the same MULTI (WATCHed: a release that
 * scheduled it again meanwhile aborts this one).  1 done, 0 not yet.
 */
int
gchw_recount(gchw_reaper_t *r, redisContext *rc, const char *sid,
    int64_t cutoff)
{
    int                   tries, done;
    char                  left[512], booked[512], released[512],
                          held[512];
    long                  n;
    uint32_t              u;
    redisReply           *x;
    const gch_session_t  *s;

    s = gch_town_session(r->town, sid, strlen(sid));
    if (s == NULL) {                       /* not bookable any more */
        freeReplyObject(redisCommand(rc, "ZREM " GCH_KEY_RECOUNT " %s",
                                     gchb_town, sid));
        return 1;
    }

    snprintf(left, sizeof(left), GCH_KEY_S(GCH_KEY_LEFT), gchb_town, sid);
    snprintf(booked, sizeof(booked), GCH_KEY_S(GCH_KEY_BOOKED), gchb_town, sid);
    snprintf(released, sizeof(released), GCH_KEY_S(GCH_KEY_RELEASED), gchb_town,
             sid);
    snprintf(held, sizeof(held), GCH_KEY_S(GCH_KEY_HELD), gchb_town, sid);

    for (tries = 0; tries < 5; tries++) {
        x = redisCommand(rc, "WATCH %s %s %s %s " GCH_KEY_RECOUNT, left,
                         booked, released, held, gchb_town);
        if (x == NULL) {
            return 0;
        }
        freeReplyObject(x);

        if (gchw_session_busy(rc, sid, cutoff) != 0) {
            freeReplyObject(redisCommand(rc, "UNWATCH"));
            return 0;
        }

        x = redisCommand(rc, "SCARD %s", booked);
        if (x == NULL || x->type != REDIS_REPLY_INTEGER) {
            if (x) {
                freeReplyObject(x);
            }
            return 0;
        }
        n = s->places_online - (long) x->integer;
        freeReplyObject(x);

        /* on-site places moved online (gchw_release_onsite) count too */
        x = redisCommand(rc, "GET %s", released);
        if (x == NULL) {
            return 0;
        }
        if (x->type == REDIS_REPLY_STRING) {
            n += atol(x->str);
        }
        freeReplyObject(x);

        /* places held by waiting lists' offers (promote.c) are not left */
        x = redisCommand(rc, "GET %s", held);
        if (x == NULL) {
            return 0;
        }
        if (x->type == REDIS_REPLY_STRING && atol(x->str) > 0) {
            n -= atol(x->str);
        }
        freeReplyObject(x);

        u = n < 0 ? 0 : (uint32_t) n;

        /* the online u32 alone: the on-site one (bit 32) is not ours */
        freeReplyObject(redisCommand(rc, "MULTI"));
        freeReplyObject(redisCommand(rc, "BITFIELD %s SET u32 " GCH_OFF_LEFT
                                     " %u", left, (unsigned) u));
        freeReplyObject(redisCommand(rc, "ZREM " GCH_KEY_RECOUNT " %s",
                                     gchb_town, sid));
        x = redisCommand(rc, "EXEC");
        if (x == NULL) {
            return 0;
        }
        done = x->type == REDIS_REPLY_ARRAY;
        freeReplyObject(x);

        if (done) {
            return 1;
        }
    }

    return 0;
}
