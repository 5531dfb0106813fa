/*
 * waitmirror.c -- the waiting lists (issue 23) copied to PostgreSQL, and
 * pushed back into a Redis that lost its data.
 *
 * The lists live in Redis: the booking saga joins them, DELETE
 * /api/waitlist leaves them, the promoter (promote.c) books or offers and
 * takes children off, the back office (office/waitlist.c) moves them.
 * Rather than one more stream entry for each of those, gchw_waitlist_mirror()
 * copies the lists as they are to the table waitlist_entry (migration
 * 0080) each second, when they changed since its last copy: read in one
 * MULTI with {T}:catalogue:gen (a Redis that lost its data has none, and
 * its empty lists are never copied), written in one transaction.  So what
 * a Redis loss can take is the last second's changes, as it can take the
 * answers the persister had not yet written (docs/reliability.md).
 *
 * gchw_waitlist_rebuild(), in the publisher's rebuild (publish.c), pushes
 * them back in their order: the children a place was offered to first
 * (their offer is made again, the held place having gone with the data),
 * then the list's; not a child booked on that session by then (the
 * bookings PostgreSQL has).
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gch_json.h>

#include "gchw.h"


#define GCHW_MIRROR_SESSIONS  10000      /* sessions with a list, at most */
#define GCHW_MIRROR_TOWNS     64         /* towns remembered */


/* the last copy's checksum, per town (one worker serves several) */
typedef struct {
    char      town[GCH_TOWN_ID_MAX + 1];
    uint64_t  sum;
    int       done;
} gchw_mirror_t;

static gchw_mirror_t  gchw_mirrors[GCHW_MIRROR_TOWNS];


/* The current town's (gchb_town) slot; the last one when all are taken
 * (its copies are then made each second, never wrong). */
static gchw_mirror_t *
gchw_mirror_of_town(void)
{
    size_t  i;

    for (i = 0; i < GCHW_MIRROR_TOWNS; i++) {
        if (gchw_mirrors[i].town[0] == '\0') {
            snprintf(gchw_mirrors[i].town, sizeof(gchw_mirrors[i].town),
                     "%s", gchb_town);
            return &gchw_mirrors[i];
        }
        if (strcmp(gchw_mirrors[i].town, gchb_town) == 0) {
            return &gchw_mirrors[i];
        }
    }

    return &gchw_mirrors[GCHW_MIRROR_TOWNS - 1];
}


/* FNV-1a over s, into h */
static uint64_t
gchw_fnv(uint64_t h, const char *s, size_t n)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        h ^= (unsigned char) s[i];
        h *= 1099511628211ULL;
    }

    return h;
}


/* A child id and what goes with it: its entry in :waiters, or its index
 * in the list. */
typedef struct {
    const char  *cid;
    const char  *val;
    size_t       idx;
} gchw_mirror_kv_t;


static int
gchw_mirror_kv_cmp(const void *a, const void *b)
{
    int                      c;
    const gchw_mirror_kv_t  *x, *y;

    x = a;
    y = b;
    c = strcmp(x->cid, y->cid);
    if (c != 0) {
        return c;
    }

    return (x->idx > y->idx) - (x->idx < y->idx);
}


/*
 * The HGETALL reply h as kv[0..*n) sorted by child id (searched with
 * gchw_mirror_waiter: a session's list and entries can be thousands long
 * after a draw, and a linear search per child made the copy quadratic).
 * NULL when memory is short.
 */
static gchw_mirror_kv_t *
gchw_mirror_index(const redisReply *h, size_t *n)
{
    size_t             i;
    gchw_mirror_kv_t  *kv;

    kv = malloc((h->elements / 2 + 1) * sizeof(gchw_mirror_kv_t));
    if (kv == NULL) {
        return NULL;
    }

    *n = 0;
    for (i = 0; i + 1 < h->elements; i += 2) {
        if (h->element[i]->type == REDIS_REPLY_STRING
            && h->element[i + 1]->type == REDIS_REPLY_STRING)
        {
            kv[*n].cid = h->element[i]->str;
            kv[*n].val = h->element[i + 1]->str;
            kv[*n].idx = 0;
            (*n)++;
        }
    }

    qsort(kv, *n, sizeof(gchw_mirror_kv_t), gchw_mirror_kv_cmp);
    return kv;
}


/* "<bid> <fid> <at_ms>" of child cid in the index, or NULL */
static const char *
gchw_mirror_waiter(const gchw_mirror_kv_t *kv, size_t n, const char *cid)
{
    gchw_mirror_kv_t   key;
    gchw_mirror_kv_t  *hit;

    key.cid = cid;
    key.idx = 0;
    hit = bsearch(&key, kv, n, sizeof(gchw_mirror_kv_t),
                  gchw_mirror_kv_cmp);

    return hit ? hit->val : NULL;
}


/* One row of the JSON array: {"session_id", ...}. */
static void
gchw_mirror_row(gch_jout_t *o, const char *sid, const char *cid,
    const char *waiter, long long rank, const char *until)
{
    char       bid[64], fid[128];
    long long  ms;

    if (sscanf(waiter, "%63s %127s %lld", bid, fid, &ms) != 3) {
        return;
    }

    yajl_gen_map_open(o->g);
    gch_jout_cstr(o, "session_id");
    gch_jout_cstr(o, sid);
    gch_jout_cstr(o, "child_id");
    gch_jout_cstr(o, cid);
    gch_jout_cstr(o, "family_id");
    gch_jout_cstr(o, fid);
    gch_jout_cstr(o, "entry_id");
    gch_jout_cstr(o, bid);
    gch_jout_cstr(o, "joined_ms");
    yajl_gen_integer(o->g, ms);
    gch_jout_cstr(o, "rank");
    yajl_gen_integer(o->g, rank);
    gch_jout_cstr(o, "offer_until_ms");
    if (until) {
        yajl_gen_integer(o->g, atoll(until));
    } else {
        yajl_gen_null(o->g);
    }
    yajl_gen_map_close(o->g);
}


/*
 * One session's rows from its EXEC reply (LRANGE wait, HGETALL waiters,
 * HGETALL offer): the offered children (rank 0), then the list's, each
 * child once and only with its entry.  0, or -1 when memory is short.
 */
static int
gchw_mirror_session(gch_jout_t *o, const char *sid, const redisReply *e)
{
    size_t             i, nw;
    long long          rank;
    const char        *cid, *w;
    unsigned char     *dup;
    gchw_mirror_kv_t  *kv, *seen;
    const redisReply  *list, *h, *off;

    list = e->element[0];
    h = e->element[1];
    off = e->element[2];

    kv = gchw_mirror_index(h, &nw);
    seen = malloc((list->elements + 1) * sizeof(gchw_mirror_kv_t));
    dup = calloc(list->elements + 1, 1);
    if (kv == NULL || seen == NULL || dup == NULL) {
        free(kv);
        free(seen);
        free(dup);
        return -1;
    }

    /* a child twice on the list (an orphan's stale push) counts at its
     * first place: sorted by (id, index), every later one is a dup */
    for (i = 0; i < list->elements; i++) {
        seen[i].cid = list->element[i]->str ? list->element[i]->str : "";
        seen[i].idx = i;
    }
    qsort(seen, list->elements, sizeof(gchw_mirror_kv_t),
          gchw_mirror_kv_cmp);
    for (i = 1; i < list->elements; i++) {
        if (strcmp(seen[i].cid, seen[i - 1].cid) == 0) {
            dup[seen[i].idx] = 1;
        }
    }
    free(seen);

    for (i = 0; i + 1 < off->elements; i += 2) {
        cid = off->element[i]->str;
        w = gchw_mirror_waiter(kv, nw, cid);
        if (w) {
            gchw_mirror_row(o, sid, cid, w, 0, off->element[i + 1]->str);
        }
    }

    rank = 0;
    for (i = 0; i < list->elements; i++) {
        cid = list->element[i]->str;
        w = (!dup[i] && cid) ? gchw_mirror_waiter(kv, nw, cid) : NULL;
        if (w) {
            gchw_mirror_row(o, sid, cid, w, ++rank, NULL);
        }
    }

    free(kv);
    free(dup);
    return 0;
}


static int
gchw_mirror_ok(const redisReply *e)
{
    size_t  i;

    if (e == NULL || e->type != REDIS_REPLY_ARRAY || e->elements != 3) {
        return 0;
    }

    for (i = 0; i < 3; i++) {
        if (e->element[i]->type != REDIS_REPLY_ARRAY) {
            return 0;
        }
    }

    return 1;
}


/* See gchw.h. */
int
gchw_waitlist_mirror(PGconn *pg, redisContext *rc)
{
    int           rc_;
    char         *json, *sid, *sp, **sids;
    size_t        i, j, n, len;
    uint64_t      sum;
    PGresult       *res;
    redisReply     *x, *y, *e;
    gch_jout_t      o;
    const char     *params[1];
    gchw_mirror_t  *m;

    /* the sessions with a list or an offer, and the generation: none, a
     * Redis that lost its data (or not yet published): nothing copied */
    redisAppendCommand(rc, "MULTI");
    redisAppendCommand(rc, "GET " GCH_KEY_CATALOGUE_GEN, gchb_town);
    redisAppendCommand(rc, "SMEMBERS " GCH_KEY_WAITING, gchb_town);
    redisAppendCommand(rc, "ZRANGE " GCH_KEY_OFFERS " 0 -1", gchb_town);
    redisAppendCommand(rc, "EXEC");

    x = NULL;
    for (i = 0; i < 5; i++) {
        if (redisGetReply(rc, (void **) &y) != REDIS_OK) {
            if (x) {
                freeReplyObject(x);
            }
            return -1;
        }
        if (x) {
            freeReplyObject(x);
        }
        x = y;
    }

    if (x->type != REDIS_REPLY_ARRAY || x->elements != 3
        || x->element[0]->type != REDIS_REPLY_STRING
        || x->element[1]->type != REDIS_REPLY_ARRAY
        || x->element[2]->type != REDIS_REPLY_ARRAY)
    {
        freeReplyObject(x);
        return 0;
    }

    /* the sessions: the set's, and the offers' ("<sid> <cid>") */
    n = 0;
    sids = calloc(x->element[1]->elements + x->element[2]->elements + 1,
                  sizeof(char *));
    if (sids == NULL) {
        freeReplyObject(x);
        return -1;
    }

    for (i = 0; i < x->element[1]->elements + x->element[2]->elements
                && n < GCHW_MIRROR_SESSIONS; i++)
    {
        e = i < x->element[1]->elements
            ? x->element[1]->element[i]
            : x->element[2]->element[i - x->element[1]->elements];
        if (e->type != REDIS_REPLY_STRING) {
            continue;
        }
        sid = strdup(e->str);
        if (sid == NULL) {
            break;
        }
        sp = strchr(sid, ' ');
        if (sp) {
            *sp = '\0';
        }
        for (j = 0; j < n && strcmp(sids[j], sid) != 0; j++) {
            /* void */
        }
        if (j < n) {
            free(sid);
            continue;
        }
        sids[n++] = sid;
    }
    freeReplyObject(x);

    /* every list in one MULTI, with the generation again */
    redisAppendCommand(rc, "MULTI");
    redisAppendCommand(rc, "GET " GCH_KEY_CATALOGUE_GEN, gchb_town);
    for (i = 0; i < n; i++) {
        redisAppendCommand(rc, "LRANGE " GCH_KEY_S(GCH_KEY_WAIT) " 0 -1",
                           gchb_town, sids[i]);
        redisAppendCommand(rc, "HGETALL " GCH_KEY_S(GCH_KEY_WAITERS),
                           gchb_town, sids[i]);
        redisAppendCommand(rc, "HGETALL " GCH_KEY_S(GCH_KEY_OFFER),
                           gchb_town, sids[i]);
    }
    redisAppendCommand(rc, "EXEC");

    x = NULL;
    rc_ = 0;
    for (i = 0; i < 3 * n + 3; i++) {
        if (redisGetReply(rc, (void **) &y) != REDIS_OK) {
            rc_ = -1;
            break;
        }
        if (x) {
            freeReplyObject(x);
        }
        x = y;
    }

    if (rc_ != 0 || x == NULL || x->type != REDIS_REPLY_ARRAY
        || x->elements != 3 * n + 1
        || x->element[0]->type != REDIS_REPLY_STRING
        || gch_jout_init(&o, &gch_alloc_std) != 0)
    {
        if (x) {
            freeReplyObject(x);
        }
        for (i = 0; i < n; i++) {
            free(sids[i]);
        }
        free(sids);
        return rc_;
    }

    yajl_gen_array_open(o.g);

    for (i = 0; i < n; i++) {
        redisReply  part;

        memset(&part, 0, sizeof(part));
        part.type = REDIS_REPLY_ARRAY;
        part.elements = 3;
        part.element = &x->element[1 + 3 * i];

        if (gchw_mirror_ok(&part) && rc_ == 0
            && gchw_mirror_session(&o, sids[i], &part) != 0)
        {
            rc_ = -1;                   /* nothing half copied */
        }
        free(sids[i]);
    }
    free(sids);
    freeReplyObject(x);

    if (rc_ != 0) {
        gch_jout_free(&o);
        return -1;
    }

    yajl_gen_array_close(o.g);

    if (gch_jout_detach(&o, &json, &len) != 0) {
        return -1;
    }

    m = gchw_mirror_of_town();
    sum = gchw_fnv(gchw_fnv(14695981039346656037ULL, gchb_town,
                            strlen(gchb_town)), json, len);
    if (m->done && sum == m->sum) {
        free(json);
        return 0;                          /* nothing changed */
    }

    params[0] = json;

    res = PQexec(pg, "begin");
    rc_ = PQresultStatus(res) == PGRES_COMMAND_OK ? 0 : -1;
    PQclear(res);

    if (rc_ == 0) {
        res = PQexec(pg, "delete from waitlist_entry");
        rc_ = PQresultStatus(res) == PGRES_COMMAND_OK ? 0 : -1;
        PQclear(res);
    }

    if (rc_ == 0) {
        res = PQexecParams(pg,
            "insert into waitlist_entry (session_id, child_id, family_id,"
            " entry_id, joined_ms, rank, offer_until_ms)"
            " select r.session_id, r.child_id, r.family_id, r.entry_id,"
            "   r.joined_ms, r.rank, r.offer_until_ms"
            " from json_to_recordset($1::json) r(session_id text,"
            "   child_id text, family_id text, entry_id text,"
            "   joined_ms bigint, rank integer, offer_until_ms bigint)"
            " on conflict do nothing",
            1, NULL, params, NULL, NULL, 0);
        rc_ = PQresultStatus(res) == PGRES_COMMAND_OK ? 0 : -1;
        PQclear(res);
    }

    res = PQexec(pg, rc_ == 0 ? "commit" : "rollback");
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        rc_ = -1;
    }
    PQclear(res);
    free(json);

    if (rc_ != 0) {
        gchb_log("error", "waitlist mirror: postgres: %s",
                 PQerrorMessage(pg));
        return -1;
    }

    m->sum = sum;
    m->done = 1;
    return 1;
}


/* See gchw.h. */
int
gchw_waitlist_rebuild(PGconn *pg, redisContext *rc)
{
    int          n, row, i, k;
    char         val[256], field[300];
    PGresult    *res;
    redisReply  *x;

    /* the offered children first (rank 0, by their offer's end), then
     * the list; not a child booked on the session by now */
    res = PQexec(pg,
        "select w.session_id, w.child_id, w.family_id, w.entry_id,"
        "   w.joined_ms"
        " from waitlist_entry w"
        " where not exists (select 1 from booking b"
        "   where b.session_id = w.session_id and b.child_id = w.child_id"
        "   and b.status = 'confirmed')"
        " order by w.session_id, w.rank, w.offer_until_ms, w.joined_ms");
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        gchb_log("error", "waitlist rebuild: postgres: %s",
                 PQerrorMessage(pg));
        PQclear(res);
        return -1;
    }

    n = PQntuples(res);
    k = 0;

    for (row = 0; row < n; row++) {
        const char  *sid = PQgetvalue(res, row, 0),
                    *cid = PQgetvalue(res, row, 1),
                    *fid = PQgetvalue(res, row, 2),
                    *bid = PQgetvalue(res, row, 3),
                    *ms = PQgetvalue(res, row, 4);

        snprintf(val, sizeof(val), "%s %s %s", bid, fid, ms);
        snprintf(field, sizeof(field), "%s %s", sid, cid);

        /* PostgreSQL's copy is the list: what a partial loss left goes */
        if (row == 0 || strcmp(sid, PQgetvalue(res, row - 1, 0)) != 0) {
            redisAppendCommand(rc, "DEL " GCH_KEY_S(GCH_KEY_WAIT), gchb_town,
                               sid);
            k++;
        }

        redisAppendCommand(rc, "RPUSH " GCH_KEY_S(GCH_KEY_WAIT) " %s",
                           gchb_town, sid, cid);
        redisAppendCommand(rc, "HSET " GCH_KEY_S(GCH_KEY_WAITERS) " %s %s",
                           gchb_town, sid, cid, val);
        redisAppendCommand(rc, "HSET " GCH_KEY_F(GCH_KEY_WAITS) " %s %s",
                           gchb_town, fid, field, bid);
        redisAppendCommand(rc, "SADD " GCH_KEY_WAITING " %s", gchb_town,
                           sid);
    }

    PQclear(res);

    for (i = 0; i < 4 * n + k; i++) {
        if (redisGetReply(rc, (void **) &x) != REDIS_OK) {
            return -1;
        }
        freeReplyObject(x);
    }

    if (n) {
        gchb_log("info", "waitlist rebuild: %d entries back on their lists",
                 n);
    }

    /* copied again at the next turn */
    gchw_mirror_of_town()->done = 0;
    return n;
}
