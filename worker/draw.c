/*
 * draw.c -- openings by draw (issue 23; docs/rules.md, "Opening by
 * draw"; docs/architecture.md, "Opening by draw").
 *
 * During an activity's entry window the booking saga enters items instead
 * of deciding them: HSET {T}:a:<aid>:entries "<fid> <cid> <sid>"
 * "<at_ms> <idx> <0|1 waitlist>" (a second request for the same cell
 * replaces the first).  From booking_opens_at until its draw is decided,
 * fresh requests on it are refused not_open_yet (the engine's hold,
 * gch_draw_phase()).
 *
 * This task decides the draw, once the opening has come, draw_settle_ms
 * have passed and no booking attempt that started before the opening is
 * still between its steps ({T}:inflight), so that every entry is in:
 *
 *   1. the entries are read from Redis and written to PostgreSQL
 *      (draw_run, draw_entry, one transaction; a draw already started
 *      keeps the entries it wrote: PostgreSQL's are the draw's;
 *      drawentries.c);
 *   2. they are ordered by the public rule (gch_draw_order(): the rank
 *      SHA-256("<seed>:<family id>"), then each family's request order);
 *   3. each family's cells are one booking request of that family, run
 *      through the booking saga as nginx runs it (gch_book_plan with
 *      in.draw: every rule of a booking, the claims, the BITFIELD, the
 *      waiting list for an entry that asked for it), with the
 *      Idempotency-Key "dr.<activity id>": a worker killed mid-draw
 *      replays the families it had decided (the stored answer) and never
 *      decides one twice;
 *   4. draw_run.decided_at is set and the catalogue's version moved, in
 *      one transaction: the publisher marks the activity "drawn" and
 *      nginx sells it first come, first served from then on.
 *
 * The decisions are demandes like any: a stream entry persisted once, in
 * the family's demandes, an e-mail ("Résultat du tirage au sort", 0070).
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gchw.h"
#include "gchw_draw.h"


static uint64_t  gchw_draw_attempts;


/* The first entry of a family after e[i]. */
static size_t
gchw_draw_group_end(const gch_draw_entry_t *e, size_t n, size_t i)
{
    size_t  j;

    for (j = i + 1; j < n && strcmp(e[j].family, e[i].family) == 0; j++) {
        /* void */
    }

    return j;
}


#define GCHW_DRAW_BATCH  256       /* families pipelined together */


/* One family's decision, planned then driven through the saga. */
typedef struct {
    const gch_family_t  *f;
    gchb_buf_t           body;
    gch_booking_req_t    req;
    int                  parsed;
    gch_book_t          *b;
    int                  st;       /* GCH_OK while it goes on */
} gchw_draw_one_t;


/* Plans d's request of its entries e[0..n).  0, or -1 (nothing to send:
 * d->st says why). */
static int
gchw_draw_plan(gchw_draw_one_t *d, const gch_town_t *t, long long gen,
    const char *key, const gch_draw_entry_t *e, size_t n, int64_t now_ms)
{
    int             k;
    char            item[512];
    size_t          i;
    gch_error_t     err;
    gch_book_in_t   in;

    /* ids are [A-Za-z0-9_.-] (the town file's): nothing to escape */
    gchb_buf_add(&d->body, "{\"items\":[", 10);
    for (i = 0; i < n; i++) {
        k = snprintf(item, sizeof(item), "%s{\"child_id\":\"%s\","
                     "\"session_id\":\"%s\"%s}", i ? "," : "", e[i].child,
                     e[i].session, e[i].waitlist ? ",\"waitlist\":true" : "");
        if (k < 0 || (size_t) k >= sizeof(item)) {
            d->body.failed = 1;
            break;
        }
        gchb_buf_add(&d->body, item, (size_t) k);
    }
    gchb_buf_add(&d->body, "]}", 2);

    d->st = GCH_ENOMEM;
    if (d->body.failed) {
        return -1;
    }

    memset(&err, 0, sizeof(err));
    if (gch_booking_req_parse(&d->req, d->body.data, d->body.len, n,
                              &gch_alloc_std, &err)
        != GCH_OK)
    {
        gchb_log("error", "draw: family %s: entries refused by the engine: "
                 "%s", d->f->id, err.message);
        d->st = GCH_EINVALID;
        return -1;
    }
    d->parsed = 1;

    memset(&in, 0, sizeof(in));
    in.town = t;
    in.family = d->f;
    in.req = &d->req;
    in.now_ms = now_ms;
    in.idem_key = key;
    in.idem_len = strlen(key);
    in.body = d->body.data;
    in.body_len = d->body.len;
    in.idem_ttl_s = 86400 * 7;
    in.inflight_ttl_s = 3600;
    in.catalogue_gen = gen;
    in.draw = 1;
    in.attempt = ((uint64_t) getpid() << 32) | ++gchw_draw_attempts;

    d->st = gch_book_plan(&d->b, &in, &gch_alloc_std, &err);
    if (d->st == GCH_EFORBIDDEN) {
        /* a child no longer the family's: nothing to decide */
        gchb_log("warn", "draw: family %s: %s", d->f->id, err.message);
    }

    return d->st == GCH_OK ? 0 : -1;
}


/* A fresh decision (not a replay, a 409 or a 422): its step one took
 * what it decided. */
static int
gchw_draw_fresh(const gch_book_t *b)
{
    return !gch_book_replayed(b)
           && (gch_book_status(b) == 200 || gch_book_status(b) == 202);
}


/*
 * The first family of d[0..n) whose step two gives back a place or a
 * waiting-list push of a session on which a later family of the batch was
 * refused full: sequentially, that later family would have seen it.  n
 * when there is none (the usual case: a place is given back only by a
 * cell refused for another reason, or a replay, while places are left).
 */
static size_t
gchw_draw_cut(const gch_activity_t *act, const gch_town_t *t,
    gchw_draw_one_t *d, size_t n)
{
    size_t                k, j, i;
    const gch_session_t  *s;

    for (k = 0; k + 1 < n; k++) {
        if (d[k].b == NULL || d[k].st != GCH_OK
            || !gch_book_gives_back(d[k].b, NULL))
        {
            continue;
        }

        for (i = 0; i < t->nsessions; i++) {
            s = &t->sessions[i];
            if (s->activity != act || !gch_book_gives_back(d[k].b, s)) {
                continue;
            }

            for (j = k + 1; j < n; j++) {
                if (d[j].b && d[j].st == GCH_OK
                    && gch_book_wants(d[j].b, s))
                {
                    return k;
                }
            }
        }
    }

    return n;
}


/*
 * Decides the families d[0..n) in their order, pipelined: every step one
 * in one write (Redis runs them in this order: the places go in the
 * draw's order, its AOF is written once for them all), then every step
 * two.  When a step two would give back what a later family of the batch
 * was refused for (gchw_draw_cut), the batch is cut there: the families
 * after the cut take back their step one (gch_book_abandon) and are
 * decided again in the next batch, as if they had waited.
 *
 * gchw_draw_send(): every step one, their replies, the cut (*cutp: n when
 * none), every step two (or abandon) written but not read; 0 or -1.
 * gchw_draw_finish(): the rest; *done gets the families decided; 0, 2
 * when one is in progress (409: an earlier try died between its steps),
 * -1 Redis.
 */
static int
gchw_draw_send(redisContext *rc, const gch_activity_t *act,
    const gch_town_t *t, gchw_draw_one_t *d, size_t n, size_t *cutp)
{
    size_t              i, cut;
    redisReply         *x;
    const gch_cmds_t   *l;

    /* step one of each */
    for (i = 0; i < n; i++) {
        if (d[i].st != GCH_OK) {
            continue;
        }
        l = gch_book_step1(d[i].b);
        if (l == NULL || gchw_append_cmds(rc, l) != 0) {
            return -1;
        }
    }

    for (i = 0; i < n; i++) {
        if (d[i].st != GCH_OK) {
            continue;
        }
        x = gchw_read_cmds(rc, gch_book_step1(d[i].b));
        if (x == NULL) {
            return -1;
        }
        d[i].st = gch_book_on_step1(d[i].b, x);
        freeReplyObject(x);
    }

    cut = gchw_draw_cut(act, t, d, n);
    *cutp = cut;

    /* step two (or a replay's compensation) of each up to the cut; after
     * it, a fresh request takes back its step one (a replay's outcome is
     * stored already: its compensation is its step two, as ever) */
    for (i = 0; i < n; i++) {
        if (d[i].st != GCH_OK) {
            continue;
        }
        if (i > cut && gchw_draw_fresh(d[i].b)) {
            l = gch_book_abandon(d[i].b);
            if (l == NULL) {
                return -1;
            }
        } else {
            l = gch_book_step2(d[i].b);
        }
        if (l && gchw_append_cmds(rc, l) != 0) {
            return -1;
        }
    }

    return 0;
}


/*
 * The second half of a batch: the step twos' replies gchw_draw_send()
 * left in flight (the caller plans the next batch meanwhile: the worker's
 * CPU and Redis's overlap), the step threes, the outcomes.
 */
static int
gchw_draw_finish(redisContext *rc, gchw_draw_one_t *d, size_t n,
    size_t cut, size_t *done)
{
    int                 ret;
    size_t              i;
    redisReply         *x;
    const gch_cmds_t   *l;

    *done = 0;

    for (i = 0; i < n; i++) {
        if (d[i].st != GCH_OK || (l = gch_book_step2(d[i].b)) == NULL) {
            continue;
        }
        x = gchw_read_cmds(rc, l);
        if (x == NULL) {
            return -1;
        }
        if (i > cut) {
            freeReplyObject(x);         /* decided (again) next batch */
            continue;
        }
        d[i].st = gch_book_on_step2(d[i].b, x);
        freeReplyObject(x);
    }

    /* step threes (a fenced one's undo, a demande list's LTRIM) once
     * every step two's reply is read: sent in the loop above, one would
     * read a later family's step two replies as its own */
    for (i = 0; i < n && i <= cut; i++) {
        if (d[i].b == NULL || (l = gch_book_step3(d[i].b)) == NULL) {
            continue;
        }
        x = gchw_send_cmds(rc, l);
        if (x) {
            freeReplyObject(x);
        }
    }

    ret = 0;
    for (i = 0; i < n && i <= cut; i++) {
        if (d[i].b == NULL) {
            if (d[i].st == GCH_ENOMEM) {
                return -1;              /* the next turn tries again */
            }
            continue;                   /* not planned: nothing to decide */
        }
        if (d[i].st != GCH_OK) {
            return -1;
        }
        switch (gch_book_status(d[i].b)) {
        case 200:
        case 202:
            break;
        case 409:
            return 2;
        default:
            gchb_log("error", "draw: family %s: answered %d", d[i].f->id,
                     gch_book_status(d[i].b));
            if (gch_book_status(d[i].b) == 503) {
                return -1;
            }
        }
    }

    *done = cut < n ? cut + 1 : n;
    return ret;
}


/* Both halves of a batch, nothing between them (the late entries'). */
static int
gchw_draw_batch(redisContext *rc, const gch_activity_t *act,
    const gch_town_t *t, gchw_draw_one_t *d, size_t n, size_t *done)
{
    size_t  cut;

    *done = 0;

    if (gchw_draw_send(rc, act, t, d, n, &cut) != 0) {
        return -1;
    }

    return gchw_draw_finish(rc, d, n, cut, done);
}


static void
gchw_draw_free(gchw_draw_one_t *d, size_t n)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        gch_book_free(d[i].b);
        if (d[i].parsed) {
            gch_booking_req_free(&d[i].req);
        }
        gchb_buf_free(&d[i].body);
    }

    memset(d, 0, n * sizeof(gchw_draw_one_t));
}


/* A PostgreSQL statement without rows; 0 or -1 after logging. */
int
gchw_draw_exec(PGconn *pg, const char *sql, int n, const char **p)
{
    PGresult  *res;

    res = PQexecParams(pg, sql, n, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_COMMAND_OK
        && PQresultStatus(res) != PGRES_TUPLES_OK)
    {
        gchb_log("error", "draw: %s", PQerrorMessage(pg));
        PQclear(res);
        return -1;
    }

    PQclear(res);
    return 0;
}


/* Is an attempt that started before the opening still in flight? */
static int
gchw_draw_inflight(redisContext *rc, const gch_activity_t *act)
{
    int          busy;
    redisReply  *x;

    x = redisCommand(rc, "ZRANGE " GCH_KEY_INFLIGHT " -inf %lld BYSCORE"
                     " LIMIT 0 1", gchb_town,
                     (long long) act->opens_at * 1000);
    if (x == NULL || x->type != REDIS_REPLY_ARRAY) {
        if (x) {
            freeReplyObject(x);
        }
        return -1;
    }

    busy = x->elements > 0;
    freeReplyObject(x);
    return busy;
}


/* Is a decision of this draw between its two steps ({T}:inflight has
 * an attempt of a "dr.<aid>" key)?  1, 0, or -1. */
static int
gchw_draw_caught(redisContext *rc, const gch_activity_t *act)
{
    int          busy;
    char         needle[256];
    size_t       i;
    redisReply  *x;

    snprintf(needle, sizeof(needle), ":" GCH_KEY_IDEM ":"
             GCH_DRAW_KEY_PREFIX "%s#", act->id);

    x = redisCommand(rc, "ZRANGE " GCH_KEY_INFLIGHT " 0 -1", gchb_town);
    if (x == NULL || x->type != REDIS_REPLY_ARRAY) {
        if (x) {
            freeReplyObject(x);
        }
        return -1;
    }

    busy = 0;
    for (i = 0; i < x->elements; i++) {
        if (x->element[i]->str && strstr(x->element[i]->str, needle)) {
            busy = 1;
            break;
        }
    }

    freeReplyObject(x);
    return busy;
}


/* Late entries first come, first served: by their request's instant,
 * then family, then position. */
static int
gchw_draw_late_cmp(const void *a, const void *b)
{
    int                      c;
    const gch_draw_entry_t  *x, *y;

    x = a;
    y = b;

    if (x->at_ms != y->at_ms) {
        return x->at_ms < y->at_ms ? -1 : 1;
    }

    c = strcmp(x->family, y->family);
    if (c != 0) {
        return c;
    }

    return x->idx - y->idx;
}


/*
 * The entries written after the draw took its snapshot: a request planned
 * in the entry window whose step two reached Redis after the RENAME
 * (docs/architecture.md, "Opening by draw", "Late entries").  Its parent
 * was answered "entered", so it is decided, after the draw, first come,
 * first served: RENAMENX to {T}:a:<aid>:entries:late (a later one goes to
 * a new hash again, decided next turn), each request (a family's entries
 * of one instant) in their order through the saga, with the key
 * "dr.<aid>.late.<at_ms>" (a worker killed here replays them; the key is
 * not the draw's, so draw-verify's order is the draw's alone), then
 * UNLINK.  Requests decided, or -1.
 */
static int
gchw_draw_late(redisContext *rc, const gch_town_t *t, long long gen,
    const gch_activity_t *act, int64_t now_ms)
{
    int                  st, decided;
    char                 key[256];
    size_t               i, j, n, done;
    redisReply          *x;
    gch_draw_entry_t    *e;
    gchw_draw_one_t      one;

    x = redisCommand(rc, "EXISTS " GCH_KEY_A(GCH_KEY_ENTRIES_LATE),
                     gchb_town, act->id);
    if (x == NULL || x->type != REDIS_REPLY_INTEGER) {
        if (x) {
            freeReplyObject(x);
        }
        return -1;
    }
    st = x->integer == 0;
    freeReplyObject(x);

    if (st) {
        st = gchw_draw_rename(rc, act, GCH_KEY_A(GCH_KEY_ENTRIES_LATE));
        if (st <= 0) {
            return st;                  /* no late entry: the usual case */
        }
    }

    x = redisCommand(rc, "HGETALL " GCH_KEY_A(GCH_KEY_ENTRIES_LATE),
                     gchb_town, act->id);
    if (x == NULL || x->type != REDIS_REPLY_ARRAY) {
        if (x) {
            freeReplyObject(x);
        }
        return -1;
    }

    e = calloc(x->elements / 2 + 1, sizeof(gch_draw_entry_t));
    if (e == NULL) {
        freeReplyObject(x);
        return -1;
    }

    n = 0;
    for (i = 0; i + 1 < x->elements; i += 2) {
        if (gch_draw_entry_parse(&e[n], x->element[i]->str,
                                 x->element[i + 1]->str) != 0)
        {
            gchb_log("warn", "draw: %s: late entry \"%s\" is not one: "
                     "skipped", act->id, x->element[i]->str);
            continue;
        }
        n++;
    }

    qsort(e, n, sizeof(gch_draw_entry_t), gchw_draw_late_cmp);

    decided = 0;
    st = 0;

    for (i = 0; i < n; i = j) {
        for (j = i + 1;
             j < n && e[j].at_ms == e[i].at_ms
             && strcmp(e[j].family, e[i].family) == 0;
             j++)
        {
            /* void */
        }

        if (snprintf(key, sizeof(key), GCH_DRAW_KEY_PREFIX "%s.late.%lld",
                     act->id, (long long) e[i].at_ms)
            >= (int) sizeof(key))
        {
            st = -1;
            break;
        }

        memset(&one, 0, sizeof(one));
        one.f = gch_town_family(t, e[i].family, strlen(e[i].family));
        if (one.f == NULL) {
            gchb_log("warn", "draw of %s: family %s is gone: late entry "
                     "not decided", act->id, e[i].family);
            continue;
        }

        (void) gchw_draw_plan(&one, t, gen, key, &e[i], j - i, now_ms);
        st = gchw_draw_batch(rc, act, t, &one, 1, &done);
        gchw_draw_free(&one, 1);
        if (st != 0) {
            break;                      /* the next turn goes on */
        }

        decided++;
        gchb_log("info", "draw of %s: late entry of family %s decided",
                 act->id, e[i].family);
    }

    free(e);
    freeReplyObject(x);

    if (st != 0) {
        return st < 0 ? -1 : decided;
    }

    freeReplyObject(redisCommand(rc, "UNLINK "
                                 GCH_KEY_A(GCH_KEY_ENTRIES_LATE),
                                 gchb_town, act->id));
    return decided;
}


/* Plans the batch of up to size families from family k into d; their
 * number. */
static size_t
gchw_draw_plan_batch(gchw_draw_one_t *d, const gch_activity_t *act,
    const gch_town_t *t, long long gen, const char *key,
    const gch_draw_entry_t *e, const size_t *fam, size_t nfam, size_t k,
    size_t size, int64_t now_ms)
{
    size_t               i, nb;
    const gch_family_t  *f;

    nb = 0;
    for (i = k; i < nfam && nb < size; i++) {
        f = gch_town_family(t, e[fam[i]].family, strlen(e[fam[i]].family));
        d[nb].f = f;
        if (f == NULL) {
            gchb_log("warn", "draw of %s: family %s is gone: not decided",
                     act->id, e[fam[i]].family);
            d[nb].st = GCH_EINVALID;
        } else {
            (void) gchw_draw_plan(&d[nb], t, gen, key, &e[fam[i]],
                                  fam[i + 1] - fam[i], now_ms);
        }
        nb++;
    }

    return nb;
}


/* One activity whose draw is due.  Families decided, or -1. */
static int
gchw_draw_activity(redisContext *rc, PGconn *pg, const gch_town_t *t,
    long long gen, const gch_activity_t *act, int64_t now_ms)
{
    int                  st, n, nrows, decided;
    char                 key[256];
    size_t               i, k, nb, nfam, done, size, *fam;
    char                *seed;
    PGresult            *res;
    const char          *p[1];
    gch_draw_entry_t    *e;
    size_t               cut, nn, cur;
    static gchw_draw_one_t  batch[2][GCHW_DRAW_BATCH];

    p[0] = act->id;
    res = PQexecParams(pg, "select decided_at is not null, seed"
                       " from draw_run where activity_id = $1",
                       1, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        gchb_log("error", "draw: %s", PQerrorMessage(pg));
        PQclear(res);
        return -1;
    }

    if (PQntuples(res) == 1 && PQgetvalue(res, 0, 0)[0] == 't') {
        PQclear(res);
        /* decided (the publisher will say so): its late entries */
        return gchw_draw_late(rc, t, gen, act, now_ms);
    }

    if (PQntuples(res) == 0) {
        PQclear(res);

        /* every entry in: no attempt from before the opening between its
         * steps (at most reap_after_ms: the reaper ends orphans) */
        st = gchw_draw_inflight(rc, act);
        if (st != 0) {
            return st < 0 ? -1 : 0;
        }

        if (act->draw_seed == NULL) {
            gchb_log("error", "draw: %s has no seed (load the town with "
                     "this guichetctl): not decided", act->id);
            return 0;
        }

        if (gchw_draw_snapshot(rc, pg, act) != 0) {
            return -1;
        }

    } else {
        PQclear(res);

        /* a worker died mid-draw: its families caught between their
         * steps are released by the reaper first, so that none is decided
         * after a family that comes later in the order */
        st = gchw_draw_caught(rc, act);
        if (st != 0) {
            return st < 0 ? -1 : 0;
        }

        gchb_log("info", "draw of %s: resumed", act->id);
    }

    /* PostgreSQL's entries and seed are the draw's */
    res = PQexecParams(pg, "select e.family_id, e.child_id, e.session_id,"
                       "   e.at_ms, e.idx, e.waitlist, r.seed"
                       " from draw_entry e join draw_run r"
                       "   on r.activity_id = e.activity_id"
                       " where e.activity_id = $1",
                       1, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        gchb_log("error", "draw: %s", PQerrorMessage(pg));
        PQclear(res);
        return -1;
    }

    nrows = PQntuples(res);
    e = calloc(nrows + 1, sizeof(gch_draw_entry_t));
    if (e == NULL) {
        PQclear(res);
        return -1;
    }

    for (n = 0; n < nrows; n++) {
        e[n].family = PQgetvalue(res, n, 0);
        e[n].child = PQgetvalue(res, n, 1);
        e[n].session = PQgetvalue(res, n, 2);
        e[n].at_ms = atoll(PQgetvalue(res, n, 3));
        e[n].idx = atoi(PQgetvalue(res, n, 4));
        e[n].waitlist = PQgetvalue(res, n, 5)[0] == 't';
    }

    seed = nrows ? PQgetvalue(res, 0, 6) : "";

    /* families of one sort: those equal ids are next to each other */
    gch_draw_order(e, (size_t) nrows, seed);

    if (gch_draw_key(key, sizeof(key), act->id) < 0) {
        free(e);
        PQclear(res);
        return -1;
    }

    /* the families: fam[k] their first entry, fam[nfam] the end */
    fam = malloc((nrows + 1) * sizeof(size_t));
    if (fam == NULL) {
        free(e);
        PQclear(res);
        return -1;
    }

    nfam = 0;
    for (i = 0; i < (size_t) nrows; i = gchw_draw_group_end(e, nrows, i)) {
        fam[nfam++] = i;
    }
    fam[nfam] = (size_t) nrows;

    decided = 0;
    st = 0;
    size = GCHW_DRAW_BATCH;

    /* batch cur is sent while the next one is planned into 1 - cur */
    cur = 0;
    nb = gchw_draw_plan_batch(batch[cur], act, t, gen, key, e, fam, nfam,
                              0, size, now_ms);

    for (k = 0; k < nfam; k += done) {
        st = gchw_draw_send(rc, act, t, batch[cur], nb, &cut);
        if (st != 0) {
            gchw_draw_free(batch[cur], nb);
            break;
        }

        /* the families this batch decides, unless it fails: the next
         * batch starts after them */
        done = cut < nb ? cut + 1 : nb;

        /* cut: smaller batches for a while; else back up to the most */
        size = (done < nb) ? (done > 1 ? done : 1)
               : (size * 2 < GCHW_DRAW_BATCH ? size * 2 : GCHW_DRAW_BATCH);

        nn = gchw_draw_plan_batch(batch[1 - cur], act, t, gen, key, e, fam,
                                  nfam, k + done, size, now_ms);

        st = gchw_draw_finish(rc, batch[cur], nb, cut, &done);
        gchw_draw_free(batch[cur], nb);
        if (st != 0) {
            gchw_draw_free(batch[1 - cur], nn);
            break;
        }

        decided += (int) done;
        cur = 1 - cur;
        nb = nn;
    }

    free(fam);

    free(e);
    PQclear(res);

    if (st != 0) {
        /* Redis failed, or a try of a family is between its steps: the
         * next turn goes on (the decided families replay) */
        return st < 0 ? -1 : decided;
    }

    if (gchb_pg_exec(pg, "begin") != 0
        || gchw_draw_exec(pg, "update draw_run set decided_at = now()"
                          " where activity_id = $1 and decided_at is null",
                          1, p) != 0
        || gchb_pg_exec(pg, "update catalogue set version = version + 1,"
                        " updated_at = now() where id = 1") != 0
        || gchb_pg_exec(pg, "commit") != 0)
    {
        gchb_pg_exec(pg, "rollback");
        return -1;
    }

    /* the snapshot only: entries written since are decided late */
    freeReplyObject(redisCommand(rc, "UNLINK "
                                 GCH_KEY_A(GCH_KEY_ENTRIES_DRAW),
                                 gchb_town, act->id));

    gchb_log("info", "draw of %s decided: %d families", act->id, decided);
    return decided;
}


/* See gchw.h. */
int
gchw_draw(gchw_reaper_t *r, redisContext *rc, PGconn *pg, int64_t now_ms,
    int settle_ms)
{
    int                    n, total;
    size_t                 i;
    long long              gen;
    const gch_town_t      *t;
    const gch_activity_t  *act;

    t = gchw_reaper_catalogue(r, rc, &gen);
    if (t == NULL) {
        return rc->err ? -1 : 0;
    }

    total = 0;

    for (i = 0; i < t->nactivities; i++) {
        act = &t->activities[i];

        if (!act->draw || now_ms < act->opens_at * 1000 + settle_ms) {
            continue;
        }

        n = act->drawn ? gchw_draw_late(rc, t, gen, act, now_ms)
                       : gchw_draw_activity(rc, pg, t, gen, act, now_ms);
        if (n < 0) {
            return -1;
        }

        total += n;
    }

    return total;
}
