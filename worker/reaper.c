/*
 * reaper.c -- releases what dead nginx workers left between two steps.
 *
 * {T}:inflight holds one member per attempt between its steps, scored by
 * its start in ms: a booking attempt "{T}:f:<fid>:idem:<key>#<id>" (the
 * record "{T}:f:<fid>:idem:<key>" is "P <hash> <id> <plan>" while its first
 * attempt is in flight; a member without "#<id>" is the record key alone,
 * as written before attempts had ids) or a cancellation marker
 * "{T}:f:<fid>:cancel:<bid>" (value "C <ms> <billed> <bid> <cid> <sid>",
 * then " onsite" for a booking made at the counter).
 * Every second the worker looks at members older than reap_after_ms
 * (docs/architecture.md, "When the nginx worker dies between the steps"):
 *
 * booking: WATCH the record, GET it; not the attempt's own (gone, "D",
 *   another attempt's "P"): a retry died between its steps; with the
 *   record's body, the sessions of the answer ("D") or plan ("P") are
 *   recounted and the claims its refused cells got from its step one are
 *   deleted; ZREM.
 *   its own "P": MULTI, DEL the claims of its plan that still hold
 *   "<sid> <bid>", the record and the member, ZADD each session of the plan to
 *   {T}:recount, due recount_after_ms later, EXEC (aborted if a late step
 *   two wrote meanwhile: it wins).
 * recount (recount.c): each due session of {T}:recount gets left =
 *   places_online + on-site places released online - SCARD booked, under
 *   WATCH of those keys and only when no younger attempt touches the
 *   session; otherwise it stays due, tried again next round.  The delay
 *   lets the attempts that saw the released record (a retry answered 409)
 *   give their places back first.
 * cancellation: finish its third step (place back, claims deleted, cancel
 *   entry on the stream, marker and member removed) in one MULTI, under
 *   WATCH of the marker.
 *
 * places_online comes from the catalogue in Redis, parsed by the engine and
 * re-read when {T}:catalogue:gen changes.  With it, the reaper's turn also
 * releases on-site places online (release.c).
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "gchw.h"
#include "gchw_reaper.h"


#define GCHW_REAP_MAX    100


/* See gchw.h. */
gchw_reaper_t *
gchw_reaper_new(void)
{
    return calloc(1, sizeof(gchw_reaper_t));
}


/* See gchw.h; NULL is a no-op. */
void
gchw_reaper_free(gchw_reaper_t *r)
{
    if (r == NULL) {
        return;
    }

    free(r->released);

    gch_town_free(r->town);
    free(r);
}


/* 1 when item (of a stored answer) is a refused cell (or one on a
 * waiting list: refused full); its ids. */
static int
gchw_refused_item(yajl_val item, const char **cid, const char **sid)
{
    yajl_val     cv, sv, st;
    const char  *pc[] = { "child_id", NULL }, *ps[] = { "session_id", NULL },
                *pt[] = { "status", NULL };

    cv = yajl_tree_get(item, pc, yajl_t_string);
    sv = yajl_tree_get(item, ps, yajl_t_string);
    st = yajl_tree_get(item, pt, yajl_t_string);

    if (cv == NULL || sv == NULL || st == NULL
        || (strcmp(st->u.string, "refused") != 0
            && strcmp(st->u.string, "waitlisted") != 0))
    {
        return 0;
    }

    *cid = cv->u.string;
    *sid = sv->u.string;
    return 1;
}


/*
 * The answer of a stored record "D <hash32> <demande>" as a yajl tree:
 * the compact demande (engine/src/demande.c) rendered, or the JSON answer
 * of a record written before it.  NULL if it is neither.
 */
yajl_val
gchw_answer_parse(const char *rec, size_t len, char *ebuf, size_t esize)
{
    char      *js;
    size_t     n;
    yajl_val   v;

    js = gch_dm_json(rec + 35, len - 35, GCH_DM_ANSWER, &gch_alloc_std, &n);
    if (js == NULL) {
        return NULL;
    }

    v = yajl_tree_parse(js, ebuf, esize);
    free(js);

    return v;
}


/*
 * A replay (same key, same body) whose nginx worker died between its
 * steps also left the claims its step one set for cells the stored answer
 * refused (a cell refused "full" whose place came back meanwhile: SET NX
 * took the free slot).  Such a claim holds "<sid> <bid>" with this key's
 * booking id (gch_book_id: the same for every attempt with the key), and
 * no booking of that id exists: it is deleted, under WATCH of the claims
 * so that nobody else's claim is touched.  member is
 * "{T}:f:<fid>:idem:<key>", rec the record "D <hash32> <demande>".
 */
static void
gchw_replay_claims(gchw_reaper_t *r, redisContext *rc, const char *member,
    const char *rec, size_t len)
{
    int                   q, n;
    char                  fid[256], want[600], bid[GCH_BOOKING_ID_MAX];
    char                  ebuf[128], keys[64][160];
    size_t                i, k, nkeys, ndel, del[64], pre;
    uint32_t              quanta;
    yajl_val              v, items;
    redisReply           *x;
    const char           *end, *key, *cid, *sid;
    const gch_session_t  *s;
    const char           *pi[] = { "items", NULL };

    /* "{T}:f:<fid>:idem:<key>": a family id has no ":" */
    k = gchb_keys.f_len;
    end = strncmp(member, gchb_keys.f, k) == 0
          ? strstr(member + k, ":idem:") : NULL;
    if (len <= 35 || end == NULL || (size_t) (end - member - k) >= sizeof(fid)
        || r->town == NULL)
    {
        return;
    }

    memcpy(fid, member + k, end - member - k);
    fid[end - member - k] = '\0';
    key = end + 6;

    v = gchw_answer_parse(rec, len, ebuf, sizeof(ebuf));
    items = v ? yajl_tree_get(v, pi, yajl_t_array) : NULL;

    nkeys = 0;
    for (i = 0; items && i < items->u.array.len; i++) {
        if (!gchw_refused_item(items->u.array.values[i], &cid, &sid)) {
            continue;
        }
        s = gch_town_session(r->town, sid, strlen(sid));
        if (s == NULL) {
            continue;
        }

        quanta = r->town->units[s->unit].quanta;
        for (q = 0; q < 32 && nkeys < 64; q++) {
            if ((quanta & (1u << q))
                && gch_claim_key_of(keys[nkeys], sizeof(keys[0]), r->town,
                                    cid, s->date, q) > 0)
            {
                nkeys++;
            }
        }
    }

    if (nkeys == 0) {
        yajl_tree_free(v);
        return;
    }

    /* WATCH every claim, then keep those holding this key's booking */
    for (k = 0; k < nkeys; k++) {
        freeReplyObject(redisCommand(rc, "WATCH %s", keys[k]));
    }

    ndel = 0;
    for (i = 0; items && i < items->u.array.len; i++) {
        if (!gchw_refused_item(items->u.array.values[i], &cid, &sid)) {
            continue;
        }
        gch_book_id(bid, fid, key, strlen(key), cid, sid);
        snprintf(want, sizeof(want), "%s %s", sid, bid);

        /* this child's claims: "{T}:c:<cid>:..." */
        for (k = 0; k < nkeys; k++) {
            n = (int) strlen(cid);
            pre = strlen(r->town->keys.c);
            if (strncmp(keys[k] + pre, cid, n) != 0 || keys[k][pre + n] != ':')
            {
                continue;
            }
            x = redisCommand(rc, "GET %s", keys[k]);
            if (x && x->type == REDIS_REPLY_STRING
                && strcmp(x->str, want) == 0 && ndel < 64)
            {
                del[ndel++] = k;
            }
            if (x) {
                freeReplyObject(x);
            }
        }
    }

    yajl_tree_free(v);

    if (ndel == 0) {
        freeReplyObject(redisCommand(rc, "UNWATCH"));
        return;
    }

    freeReplyObject(redisCommand(rc, "MULTI"));
    for (i = 0; i < ndel; i++) {
        freeReplyObject(redisCommand(rc, "DEL %s", keys[del[i]]));
    }
    x = redisCommand(rc, "EXEC");

    if (x && x->type == REDIS_REPLY_ARRAY) {
        gchb_log("info", "released %zu claims of the dead replay %s", ndel,
                 member);
    }
    if (x) {
        freeReplyObject(x);
    }
}


/*
 * The plan of a first attempt's record "P <hash32> <id> <plan>" as the JSON
 * plan [{"s","c","b","q"}] (gch_dm_plan_json(): the compact plan the module
 * writes, with booking ids from rkey "{T}:f:<fid>:idem:<key>" -- none when
 * rkey is NULL -- and claim keys from the catalogue t; a JSON plan as it
 * is).  Freed with free(); NULL if unreadable.
 */
char *
gchw_plan_text(const gch_town_t *t, const char *rkey, const char *rec,
    size_t len)
{
    char         fid[256];
    size_t       n, k;
    const char  *plan, *end, *key;

    plan = len > 35 ? memchr(rec + 35, ' ', len - 35) : NULL;
    if (plan == NULL) {
        return NULL;
    }

    plan++;
    fid[0] = '\0';
    key = NULL;

    /* a family id has no ":" */
    k = gchb_keys.f_len;
    end = rkey && strncmp(rkey, gchb_keys.f, k) == 0
          ? strstr(rkey + k, ":idem:") : NULL;

    if (end && (size_t) (end - rkey - k) < sizeof(fid)) {
        memcpy(fid, rkey + k, end - rkey - k);
        fid[end - rkey - k] = '\0';
        key = end + 6;
    }

    return gch_dm_plan_json(plan, len - (size_t) (plan - rec), t, fid, key,
                            key ? strlen(key) : 0, &gch_alloc_std, &n);
}


/* Re-reads the catalogue when its generation changed.  0 or -1. */
int
gchw_reaper_town(gchw_reaper_t *r, redisContext *rc)
{
    long long     gen;
    redisReply   *x;
    gch_town_t   *t;
    gch_error_t   err;

    x = redisCommand(rc, "GET " GCH_KEY_CATALOGUE_GEN, gchb_town);
    if (x == NULL) {
        return -1;
    }

    gen = x->type == REDIS_REPLY_STRING ? atoll(x->str) : 0;
    freeReplyObject(x);

    if (gen == 0) {
        return -1;                    /* fail closed: nothing published */
    }

    if (gen == r->gen && r->town) {
        return 0;
    }

    x = redisCommand(rc, "GET " GCH_KEY_CATALOGUE, gchb_town);
    if (x == NULL || x->type != REDIS_REPLY_STRING) {
        if (x) {
            freeReplyObject(x);
        }
        return -1;
    }

    memset(&err, 0, sizeof(err));
    t = NULL;
    if (gch_town_parse(&t, x->str, x->len, &gch_alloc_std, &err) != GCH_OK) {
        gchb_log("error", "reaper: catalogue refused: %s", err.message);
        freeReplyObject(x);
        return -1;
    }

    freeReplyObject(x);
    gch_town_free(r->town);
    r->town = t;
    r->gen = gen;

    /* a new catalogue (or a rebuild after data loss): look again */
    free(r->released);
    r->released = calloc(t->nactivities + 1, 1);

    return r->released ? 0 : -1;
}


/*
 * The record g (of rkey, WATCHed) is not this attempt's step one: not the
 * first attempt with the key, or the record is gone: a retry (replayed,
 * answered 409 or 422) died between its steps.  Its step one took the
 * places and claims of its body's cells, which its step two would have
 * given back: those of the record when the body is the same.  Returns 1
 * (the member is dropped).
 */
static int
gchw_reap_retry(gchw_reaper_t *r, redisContext *rc, const char *member,
    const char *rkey, const char *id, redisReply *g)
{
    freeReplyObject(redisCommand(rc, "UNWATCH"));
    if (g->type == REDIS_REPLY_STRING && g->str[0] == 'D'
        && (id == NULL || gch_attempt_same_body(id, g->str, g->len)))
    {
        gchw_dirty_answer(r, rc, g->str, g->len);
        gchw_replay_claims(r, rc, rkey, g->str, g->len);

    } else if (g->type == REDIS_REPLY_STRING && g->str[0] == 'P'
               && id && gch_attempt_same_body(id, g->str, g->len))
    {
        gchw_dirty_plan(r, rc, g->str, g->len);

    } else if (id && g->type == REDIS_REPLY_STRING) {
        gchb_log("warn", "reaper: %s died between its steps with "
                 "another body than its key's: the places it took are "
                 "not known", member);
    }
    freeReplyObject(g);
    freeReplyObject(redisCommand(rc, "ZREM " GCH_KEY_INFLIGHT " %s", gchb_town,
                                 member));
    return 1;
}


/* The claims of plan v still holding this attempt's "<sid> <bid>", into
 * dels (at most max); their number. */
static size_t
gchw_reap_claims(redisContext *rc, yajl_val v, const char **dels,
    size_t max)
{
    char          want[600];
    size_t        i, j, ndel;
    yajl_val      e, sv, bv, qv, cl;
    redisReply   *x;
    const char   *ps[] = { "s", NULL }, *pb[] = { "b", NULL },
                 *pq[] = { "q", NULL };

    ndel = 0;
    for (i = 0; i < v->u.array.len; i++) {
        e = v->u.array.values[i];
        sv = yajl_tree_get(e, ps, yajl_t_string);
        bv = yajl_tree_get(e, pb, yajl_t_string);
        qv = yajl_tree_get(e, pq, yajl_t_array);
        if (sv == NULL || bv == NULL || qv == NULL) {
            continue;
        }

        snprintf(want, sizeof(want), "%s %s", YAJL_GET_STRING(sv),
                 YAJL_GET_STRING(bv));

        for (j = 0; j < qv->u.array.len; j++) {
            cl = qv->u.array.values[j];
            if (!YAJL_IS_STRING(cl) || ndel == max) {
                continue;
            }

            x = redisCommand(rc, "GET %s", YAJL_GET_STRING(cl));
            if (x && x->type == REDIS_REPLY_STRING
                && strcmp(x->str, want) == 0)
            {
                dels[ndel++] = YAJL_GET_STRING(cl);
            }
            if (x) {
                freeReplyObject(x);
            }
        }
    }

    return ndel;
}


/* A booking attempt's record.  1 released, 0 retry later, -1 error. */
static int
gchw_reap_booking(gchw_reaper_t *r, redisContext *rc, const char *member)
{
    int           rv;
    char          ebuf[128], rkey[600], *plan;
    size_t        i, ndel;
    yajl_val      v, sv;
    redisReply   *x, *g;
    const char   *id, *dels[GCHW_REAP_MAX * 8];
    const char   *ps[] = { "s", NULL };

    id = gch_attempt_split(member, rkey, sizeof(rkey));

    x = redisCommand(rc, "WATCH %s", rkey);
    if (x == NULL) {
        return -1;
    }
    freeReplyObject(x);

    g = redisCommand(rc, "GET %s", rkey);
    if (g == NULL) {
        return -1;
    }

    if (g->type != REDIS_REPLY_STRING || g->str[0] != 'P'
        || (id && !gch_attempt_wrote(id, g->str, g->len)))
    {
        return gchw_reap_retry(r, rc, member, rkey, id, g);
    }

    /* "P <hash32> <id> <plan>"; a compact plan's claims come from the
     * catalogue: without it, later */
    if (r->town == NULL && strstr(g->str, " " GCH_DM_PLAN_MAGIC) != NULL) {
        freeReplyObject(g);
        freeReplyObject(redisCommand(rc, "UNWATCH"));
        return 0;
    }

    plan = gchw_plan_text(r->town, rkey, g->str, g->len);
    v = plan ? yajl_tree_parse(plan, ebuf, sizeof(ebuf)) : NULL;
    free(plan);

    if (v == NULL || !YAJL_IS_ARRAY(v)) {
        gchb_log("error", "reaper: bad record %s: dropped", member);
        yajl_tree_free(v);
        freeReplyObject(g);
        freeReplyObject(redisCommand(rc, "UNWATCH"));
        freeReplyObject(redisCommand(rc, "MULTI"));
        freeReplyObject(redisCommand(rc, "DEL %s", rkey));
        freeReplyObject(redisCommand(rc, "ZREM " GCH_KEY_INFLIGHT " %s",
                                     gchb_town, member));
        freeReplyObject(redisCommand(rc, "EXEC"));
        return 1;
    }

    ndel = gchw_reap_claims(rc, v, dels, sizeof(dels) / sizeof(dels[0]));

    /*
     * One MULTI: the claims, the record, the member, and the sessions to
     * recount later.
     */
    freeReplyObject(redisCommand(rc, "MULTI"));
    for (i = 0; i < ndel; i++) {
        freeReplyObject(redisCommand(rc, "DEL %s", dels[i]));
    }
    freeReplyObject(redisCommand(rc, "DEL %s", rkey));
    freeReplyObject(redisCommand(rc, "ZREM " GCH_KEY_INFLIGHT " %s", gchb_town,
                                 member));
    for (i = 0; i < v->u.array.len; i++) {
        sv = yajl_tree_get(v->u.array.values[i], ps, yajl_t_string);
        if (sv) {
            gchw_dirty_add(r, rc, YAJL_GET_STRING(sv));
        }
    }
    x = redisCommand(rc, "EXEC");

    rv = 0;
    if (x && x->type == REDIS_REPLY_ARRAY) {
        gchb_log("info", "reaped orphan attempt %s (%zu claims)", member,
                 ndel);
        rv = 1;
    }

    if (x) {
        freeReplyObject(x);
    }

    yajl_tree_free(v);
    freeReplyObject(g);

    return rv;
}


/*
 * A swap's marker "S <ms> <billed> <old bid> <child> <old session>[
 * onsite]": its step two confirmed the new booking and took the old one
 * out of its session's booked set and of the planning (the guard), the
 * nginx worker died before step three.  Finish it, under WATCH of the
 * marker and of the old claims: the claims that still name the old
 * booking deleted (those the new one adopted name it), the billed ones
 * kept for a justification, and the old session recounted rather than
 * incremented -- the guard's reply is lost with the worker, and a
 * concurrent cancellation that won it gave the place back already.  The
 * stream needs nothing: the book entry names the released booking.
 */
static int
gchw_reap_swap(gchw_reaper_t *r, redisContext *rc, const char *member,
    const char *val)
{
    int                   q, n, rv, billed, onsite, del[32];
    char                  bid[256], cid[256], sid[256], day[11];
    char                  keys[32][600], want[600];
    long long             ms;
    uint32_t              quanta;
    redisReply           *x;
    const gch_session_t  *s;
    const char           *fid, *end;

    if (sscanf(val, "S %lld %d %255s %255s %255s", &ms, &billed, bid, cid,
               sid) != 5
        || (s = gch_town_session(r->town, sid, strlen(sid))) == NULL)
    {
        freeReplyObject(redisCommand(rc, "UNWATCH"));
        freeReplyObject(redisCommand(rc, "ZREM " GCH_KEY_INFLIGHT " %s",
                                     gchb_town, member));
        return 1;
    }

    onsite = strstr(val, " onsite") != NULL;

    fid = member + gchb_keys.f_len;
    end = strncmp(member, gchb_keys.f, gchb_keys.f_len) == 0
          ? strstr(fid, ":cancel:") : NULL;
    if (end == NULL) {
        freeReplyObject(redisCommand(rc, "UNWATCH"));
        return 1;
    }

    gch_day_format(s->date, day);
    quanta = r->town->units[s->unit].quanta;
    snprintf(want, sizeof(want), "%s %s", sid, bid);

    n = 0;
    for (q = 0; q < 32; q++) {
        if (!(quanta & (1u << q))) {
            continue;
        }

        snprintf(keys[n], sizeof(keys[n]), GCH_KEY_CLAIM, gchb_town, cid,
                 day, q);
        freeReplyObject(redisCommand(rc, "WATCH %s", keys[n]));
        x = redisCommand(rc, "GET %s", keys[n]);
        if (x == NULL) {
            return -1;
        }

        del[n] = x->type == REDIS_REPLY_STRING && strcmp(x->str, want) == 0;
        freeReplyObject(x);
        n++;
    }

    freeReplyObject(redisCommand(rc, "MULTI"));

    for (q = 0; q < n; q++) {
        if (del[q]) {
            freeReplyObject(redisCommand(rc, "DEL %s", keys[q]));
        }
    }

    if (onsite) {
        /* the counter's quota has no recount: as a cancellation */
        freeReplyObject(redisCommand(rc, "BITFIELD " GCH_KEY_S(GCH_KEY_LEFT)
                                     " OVERFLOW FAIL INCRBY u32 "
                                     GCH_OFF_ONSITE " 1", gchb_town, sid));
    } else {
        gchw_dirty_add(r, rc, sid);
    }

    if (billed && (size_t) (end - fid) < sizeof(want)) {
        memcpy(want, fid, end - fid);
        want[end - fid] = '\0';
        freeReplyObject(redisCommand(rc, "HSET " GCH_KEY_F(GCH_KEY_BILLED)
                                     " %s %s", gchb_town, want, bid, sid));
    }

    freeReplyObject(redisCommand(rc, "DEL %s", member));
    freeReplyObject(redisCommand(rc, "ZREM " GCH_KEY_INFLIGHT " %s",
                                 gchb_town, member));
    x = redisCommand(rc, "EXEC");

    rv = x && x->type == REDIS_REPLY_ARRAY;
    if (rv) {
        gchb_log("info", "finished orphan swap %s", member);
    }
    if (x) {
        freeReplyObject(x);
    }

    return rv;
}


/* A cancellation marker: finish its step three.  1, 0, -1. */
static int
gchw_reap_cancel(gchw_reaper_t *r, redisContext *rc, const char *member)
{
    int                   q, rv, billed, onsite;
    char                  bid[256], cid[256], sid[256], key[600], day[11];
    long long             ms;
    size_t                len;
    uint32_t              quanta;
    yajl_gen              g;
    redisReply           *x, *m;
    const gch_session_t  *s;
    const unsigned char  *buf;
    const char           *fid, *end;

    freeReplyObject(redisCommand(rc, "WATCH %s", member));

    m = redisCommand(rc, "GET %s", member);
    if (m == NULL) {
        return -1;
    }

    if (m->type == REDIS_REPLY_STRING && m->str[0] == 'S') {
        rv = gchw_reap_swap(r, rc, member, m->str);
        freeReplyObject(m);
        return rv;
    }

    if (m->type != REDIS_REPLY_STRING
        || sscanf(m->str, "C %lld %d %255s %255s %255s", &ms, &billed, bid,
                  cid, sid) != 5
        || (s = gch_town_session(r->town, sid, strlen(sid))) == NULL)
    {
        freeReplyObject(m);
        freeReplyObject(redisCommand(rc, "UNWATCH"));
        freeReplyObject(redisCommand(rc, "ZREM " GCH_KEY_INFLIGHT " %s",
                                     gchb_town, member));
        return 1;
    }

    /* an on-site booking (the counter's) gives its place back on site */
    onsite = strstr(m->str, " onsite") != NULL;
    freeReplyObject(m);

    /* "{T}:f:<fid>:cancel:<bid>" */
    fid = member + gchb_keys.f_len;
    end = strncmp(member, gchb_keys.f, gchb_keys.f_len) == 0
          ? strstr(fid, ":cancel:") : NULL;
    if (end == NULL) {
        freeReplyObject(redisCommand(rc, "UNWATCH"));
        return 1;
    }

    g = yajl_gen_alloc(NULL);
    if (g == NULL) {
        freeReplyObject(redisCommand(rc, "UNWATCH"));
        return -1;
    }

    yajl_gen_map_open(g);
    yajl_gen_string(g, (const unsigned char *) "type", 4);
    yajl_gen_string(g, (const unsigned char *) "cancel", 6);
    yajl_gen_string(g, (const unsigned char *) "booking_id", 10);
    yajl_gen_string(g, (const unsigned char *) bid, strlen(bid));
    yajl_gen_string(g, (const unsigned char *) "family_id", 9);
    yajl_gen_string(g, (const unsigned char *) fid, end - fid);
    yajl_gen_string(g, (const unsigned char *) "child_id", 8);
    yajl_gen_string(g, (const unsigned char *) cid, strlen(cid));
    yajl_gen_string(g, (const unsigned char *) "session_id", 10);
    yajl_gen_string(g, (const unsigned char *) sid, strlen(sid));
    yajl_gen_string(g, (const unsigned char *) "at_ms", 5);
    yajl_gen_integer(g, ms);
    yajl_gen_string(g, (const unsigned char *) "billed", 6);
    yajl_gen_bool(g, billed);
    yajl_gen_map_close(g);
    yajl_gen_get_buf(g, &buf, &len);

    freeReplyObject(redisCommand(rc, "MULTI"));
    freeReplyObject(redisCommand(rc, "BITFIELD " GCH_KEY_S(GCH_KEY_LEFT)
                                 " OVERFLOW FAIL INCRBY u32 %s 1", gchb_town,
                                 sid, onsite ? GCH_OFF_ONSITE : GCH_OFF_LEFT));

    gch_day_format(s->date, day);
    quanta = r->town->units[s->unit].quanta;
    for (q = 0; q < 32; q++) {
        if (quanta & (1u << q)) {
            snprintf(key, sizeof(key), GCH_KEY_CLAIM, gchb_town, cid, day,
                     q);
            freeReplyObject(redisCommand(rc, "DEL %s", key));
        }
    }

    freeReplyObject(redisCommand(rc, "XADD " GCHW_STREAM " * d %b",
                                 gchb_town, buf, len));
    freeReplyObject(redisCommand(rc, "DEL %s", member));
    freeReplyObject(redisCommand(rc, "ZREM " GCH_KEY_INFLIGHT " %s",
                                 gchb_town, member));
    x = redisCommand(rc, "EXEC");
    yajl_gen_free(g);

    rv = x && x->type == REDIS_REPLY_ARRAY;
    if (rv) {
        gchb_log("info", "finished orphan cancellation %s", member);
    }
    if (x) {
        freeReplyObject(x);
    }

    return rv;
}


/* See gchw.h. */
int
gchw_reap(gchw_reaper_t *r, redisContext *rc, int64_t now_ms,
    int reap_after_ms, int recount_after_ms)
{
    int          n, rv;
    size_t       i;
    int64_t      cutoff;
    redisReply  *m;

    if (gchw_reaper_town(r, rc) != 0) {
        return 0;                   /* nothing published: nothing to do */
    }

    cutoff = now_ms - reap_after_ms;
    r->recount_at = now_ms + recount_after_ms;

    m = redisCommand(rc, "ZRANGEBYSCORE " GCH_KEY_INFLIGHT
                         " -inf %lld LIMIT 0 %d", gchb_town,
                     (long long) cutoff, GCHW_REAP_MAX);
    if (m == NULL || m->type != REDIS_REPLY_ARRAY) {
        gchb_log("error", "reaper: redis: %s",
                 m ? (m->str ? m->str : "bad reply") : rc->errstr);
        if (m) {
            freeReplyObject(m);
        }
        return -1;
    }

    n = 0;
    for (i = 0; i < m->elements; i++) {
        if (m->element[i]->type != REDIS_REPLY_STRING) {
            continue;
        }

        /* "{T}:f:<fid>:cancel:<bid>" ("}:cancel:" was the layout
         * before towns, "{f:<fid>}:cancel:"); a booking attempt's member
         * is "{T}:f:<fid>:idem:<key>#<id>", whatever its key */
        if (strstr(m->element[i]->str, ":" GCH_KEY_CANCEL ":")
            && strstr(m->element[i]->str, ":idem:") == NULL)
        {
            rv = gchw_reap_cancel(r, rc, m->element[i]->str);
        } else {
            rv = gchw_reap_booking(r, rc, m->element[i]->str);
        }

        if (rv < 0) {
            freeReplyObject(m);
            return -1;
        }
        n += rv;
    }

    freeReplyObject(m);

    /* recount the sessions of released attempts, once due */
    m = redisCommand(rc, "ZRANGEBYSCORE " GCH_KEY_RECOUNT
                         " -inf %lld LIMIT 0 %d", gchb_town,
                     (long long) now_ms, GCHW_REAP_MAX);
    if (m == NULL || m->type != REDIS_REPLY_ARRAY) {
        if (m) {
            freeReplyObject(m);
        }
        return -1;
    }

    for (i = 0; i < m->elements; i++) {
        if (m->element[i]->type == REDIS_REPLY_STRING) {
            (void) gchw_recount(r, rc, m->element[i]->str, cutoff);
        }
    }

    freeReplyObject(m);

    return n;
}


/* See gchw.h. */
const gch_town_t *
gchw_reaper_catalogue(gchw_reaper_t *r, redisContext *rc, long long *gen)
{
    if (gchw_reaper_town(r, rc) != 0) {
        return NULL;
    }

    *gen = r->gen;
    return r->town;
}


/* See gchw.h. */
int
gchw_reaper_first_turn(gchw_reaper_t *r)
{
    int  first;

    first = !r->promoted_once;
    r->promoted_once = 1;

    return first;
}
