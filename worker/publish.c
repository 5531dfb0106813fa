/*
 * publish.c -- PostgreSQL's catalogue and counters into Redis.
 *
 * Shared by `guichetctl load-town` (right after its commit) and the worker
 * (every publish_interval_ms, when the catalogue version in PostgreSQL
 * differs from {T}:catalogue:version, or when {T}:catalogue:gen is gone).
 *
 * The catalogue text is the one `load-town` stored in the catalogue table
 * (gch_town_write of the loaded file: sessions expanded, no passwords),
 * with PostgreSQL's enrolments, documents, unpaid invoices and direct
 * debits laid over it per family (overlay.c).
 * Order of writes, all pipelined:
 *
 *   1. rebuild only: {T}:s:<id>:booked, {T}:f:<id>:bookings, claims
 *      {T}:c:<id>:<date>:q<i> and {T}:seq:demande from PostgreSQL's
 *      confirmed bookings, the families' uploaded documents
 *      {T}:f:<id>:documents, and their invoice lists {T}:f:<id>:invoices
 *      (invoice.c);
 *   2. per session {T}:s:<sid>:left, 8 bytes: places_online - confirmed
 *      online bookings as a big-endian u32 (bit 0), then the on-site
 *      quota (places - places_online) - confirmed on-site bookings (bit
 *      32): SET NX (live counters win), or SET when rebuilding; a session
 *      whose places_online or on-site quota changed since the last
 *      publication (places_published, onsite_published) has its live
 *      u32 shifted by the difference;
 *   3. {T}:logins (login -> "<family_id> <hash>"), stale logins removed;
 *      {T}:staff (login -> role) of the active staff accounts, whole
 *      (the counter's bookings need an active account: issue 18);
 *      {T}:absence_reasons (code -> proof required), whole (issue 25);
 *   4. {T}:catalogue, then INCR {T}:catalogue:gen: nginx workers trust
 *      the counters once they see a generation; then, last,
 *      {T}:catalogue:version: seen equal to PostgreSQL's, the publication
 *      is whole, its generation given.
 */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <yajl/yajl_gen.h>

#include "gchw.h"


#define GCHW_PIPE_MAX  1000


typedef struct {
    redisContext  *rc;
    size_t         pending;
    int            failed;
} gchw_pipe_t;


static void
gchw_pipe_flush(gchw_pipe_t *p)
{
    void        *v;
    redisReply  *r;

    while (p->pending) {
        if (redisGetReply(p->rc, &v) != REDIS_OK) {
            gchb_log("error", "redis: %s", p->rc->errstr);
            p->failed = 1;
            p->pending = 0;
            return;
        }

        r = v;
        if (r->type == REDIS_REPLY_ERROR) {
            gchb_log("error", "redis: %s", r->str);
            p->failed = 1;
        }
        freeReplyObject(r);
        p->pending--;
    }
}


static void
gchw_pipe_cmd(gchw_pipe_t *p, int argc, const char **argv,
    const size_t *argvlen)
{
    if (p->failed) {
        return;
    }

    if (redisAppendCommandArgv(p->rc, argc, argv, argvlen) != REDIS_OK) {
        p->failed = 1;
        return;
    }

    if (++p->pending >= GCHW_PIPE_MAX) {
        gchw_pipe_flush(p);
    }
}


/* Up to 8 NUL-terminated arguments. */
static void
gchw_pipe_str(gchw_pipe_t *p, int argc, ...)
{
    int          i;
    size_t       lens[8];
    va_list      ap;
    const char  *argv[8];

    va_start(ap, argc);
    for (i = 0; i < argc && i < 8; i++) {
        argv[i] = va_arg(ap, const char *);
        lens[i] = strlen(argv[i]);
    }
    va_end(ap);

    gchw_pipe_cmd(p, argc, argv, lens);
}


static PGresult *
gchw_query(PGconn *pg, const char *sql)
{
    PGresult  *res;

    res = PQexec(pg, sql);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        gchb_log("error", "postgres: %s", PQerrorMessage(pg));
        PQclear(res);
        return NULL;
    }

    return res;
}


static void
gchw_u32be(char out[4], long v)
{
    uint32_t  u;

    u = v < 0 ? 0 : (uint32_t) v;
    out[0] = (char) (u >> 24);
    out[1] = (char) (u >> 16);
    out[2] = (char) (u >> 8);
    out[3] = (char) u;
}


static void
gchw_gen_kv(yajl_gen g, const char *k, const char *v)
{
    yajl_gen_string(g, (const unsigned char *) k, strlen(k));
    yajl_gen_string(g, (const unsigned char *) v, strlen(v));
}


static void
gchw_gen_ki(yajl_gen g, const char *k, const char *v)
{
    yajl_gen_string(g, (const unsigned char *) k, strlen(k));
    yajl_gen_number(g, v, strlen(v));
}


/* A confirmed booking (row of res) back in its session's booked set and
 * its family's {T}:f:<id>:bookings hash.  0 or -1 (out of memory). */
static int
gchw_rebuild_booking(gchw_pipe_t *p, PGresult *res, int row)
{
    int                   onsite;
    char                  key[512];
    size_t                len;
    yajl_gen              g;
    const unsigned char  *buf;

    onsite = strcmp(PQgetvalue(res, row, 9), "onsite") == 0;
    snprintf(key, sizeof(key), GCH_KEY_S("%s"), gchb_town,
             PQgetvalue(res, row, 1),
             onsite ? GCH_KEY_BOOKED_ONSITE : GCH_KEY_BOOKED);
    gchw_pipe_str(p, 3, "SADD", key, PQgetvalue(res, row, 0));

    g = yajl_gen_alloc(NULL);
    if (g == NULL) {
        return -1;
    }
    yajl_gen_map_open(g);
    gchw_gen_kv(g, "child_id", PQgetvalue(res, row, 2));
    gchw_gen_kv(g, "session_id", PQgetvalue(res, row, 1));
    gchw_gen_ki(g, "price_cents", PQgetvalue(res, row, 4));
    gchw_gen_kv(g, "request_id", PQgetvalue(res, row, 5));
    gchw_gen_ki(g, "at_ms", PQgetvalue(res, row, 6));
    if (onsite) {
        gchw_gen_kv(g, "channel", "onsite");
    }
    yajl_gen_map_close(g);
    yajl_gen_get_buf(g, &buf, &len);

    snprintf(key, sizeof(key), GCH_KEY_F(GCH_KEY_BOOKINGS), gchb_town,
             PQgetvalue(res, row, 3));
    {
        const char  *argv[4] = { "HSET", key, PQgetvalue(res, row, 0),
                                 (const char *) buf };
        size_t       lens[4] = { 4, strlen(key),
                                 strlen(PQgetvalue(res, row, 0)), len };

        gchw_pipe_cmd(p, 4, argv, lens);
    }
    yajl_gen_free(g);

    return 0;
}


/* The child's claims of a booking (row of res), while they matter (they
 * expire the day after its session). */
static void
gchw_rebuild_claims(gchw_pipe_t *p, PGresult *res, int row,
    const gch_town_t *town)
{
    int          q;
    char         key[512], val[512], exat[32];
    size_t       u;
    uint32_t     quanta;
    gch_day_t    day;
    const char  *code;

    code = PQgetvalue(res, row, 8);
    quanta = 0;
    for (u = 0; town && u < town->nunits; u++) {
        if (strcmp(town->units[u].code, code) == 0) {
            quanta = town->units[u].quanta;
        }
    }

    if (gch_day_parse(&day, PQgetvalue(res, row, 7), 10) != 0) {
        return;
    }

    if (gch_paris_to_unix(day + 2, 0) * 1000 <= gchb_now_ms()) {
        return;
    }

    snprintf(exat, sizeof(exat), "%lld",
             (long long) gch_paris_to_unix(day + 2, 0));
    snprintf(val, sizeof(val), "%s %s", PQgetvalue(res, row, 1),
             PQgetvalue(res, row, 0));

    for (q = 0; q < 32; q++) {
        if (quanta & (1u << q)) {
            snprintf(key, sizeof(key), GCH_KEY_CLAIM, gchb_town,
                     PQgetvalue(res, row, 2), PQgetvalue(res, row, 7), q);
            gchw_pipe_str(p, 5, "SET", key, val, "EXAT", exat);
        }
    }
}


/* What else a rebuild needs: the demande sequence (numbers must never be
 * reused) and the uploaded documents an absence may cite
 * (office/document.c).  0 or -1. */
static int
gchw_rebuild_seq_documents(PGconn *pg, gchw_pipe_t *p)
{
    int        row;
    char       key[512];
    PGresult  *res;

    res = gchw_query(pg, "select coalesce(max(number), 0) from demande");
    if (res == NULL) {
        return -1;
    }

    gchw_pipe_str(p, 3, "SET", gchb_keys.seq_demande, PQgetvalue(res, 0, 0));
    PQclear(res);

    res = gchw_query(pg, "select family_id, id::text from document");
    if (res == NULL) {
        return -1;
    }

    for (row = 0; row < PQntuples(res); row++) {
        snprintf(key, sizeof(key), GCH_KEY_F(GCH_KEY_DOCUMENTS), gchb_town,
                 PQgetvalue(res, row, 0));
        gchw_pipe_str(p, 3, "SADD", key, PQgetvalue(res, row, 1));
    }

    PQclear(res);

    return 0;
}


/* Step 1 of the file comment: the bookings' Redis side from PostgreSQL. */
static int
gchw_rebuild_bookings(PGconn *pg, gchw_pipe_t *p, const gch_town_t *town)
{
    int        row, n;
    PGresult  *res;

    res = gchw_query(pg,
        "select b.id, b.session_id, b.child_id, b.family_id,"
        "   b.price_cents, d.request_id,"
        "   (extract(epoch from b.created_at) * 1000)::bigint,"
        "   to_char(s.date, 'YYYY-MM-DD'), s.unit_code, b.channel"
        " from booking b join session s on s.id = b.session_id"
        " join demande d on d.number = b.demande_number"
        " where b.status = 'confirmed'");
    if (res == NULL) {
        return -1;
    }

    n = PQntuples(res);

    for (row = 0; row < n; row++) {
        if (gchw_rebuild_booking(p, res, row) != 0) {
            PQclear(res);
            return -1;
        }
        gchw_rebuild_claims(p, res, row, town);
    }

    PQclear(res);

    if (n) {
        gchb_log("info", "rebuilt %d bookings in redis", n);
    }

    return gchw_rebuild_seq_documents(pg, p);
}


/* SCARD {T}:s:<sid>:booked for every row of res (column 0), pipelined. */
static int
gchw_scard_all(redisContext *rc, PGresult *res, long *out)
{
    int          n, row, done;
    char         key[512];
    void        *v;
    redisReply  *r;

    n = PQntuples(res);
    done = 0;

    while (done < n) {
        for (row = done; row < n && row < done + GCHW_PIPE_MAX; row++) {
            snprintf(key, sizeof(key), GCH_KEY_S(GCH_KEY_BOOKED), gchb_town,
                     PQgetvalue(res, row, 0));
            redisAppendCommand(rc, "SCARD %s", key);
        }

        for (row = done; row < n && row < done + GCHW_PIPE_MAX; row++) {
            if (redisGetReply(rc, &v) != REDIS_OK) {
                gchb_log("error", "redis: %s", rc->errstr);
                return -1;
            }
            r = v;
            out[row] = r->type == REDIS_REPLY_INTEGER ? (long) r->integer
                                                      : 0;
            freeReplyObject(r);
        }

        done = row;
    }

    return 0;
}


/* SET key val NX (rebuild: SET key val, unconditionally) down the pipe;
 * val is 8 bytes (a session's two u32). */
static void
gchw_pipe_setnx(gchw_pipe_t *p, const char *key, const char *val,
    int rebuild)
{
    const char  *argv[4] = { "SET", key, val, "NX" };
    size_t       lens[4] = { 3, strlen(key), 8, 2 };

    gchw_pipe_cmd(p, rebuild ? 3 : 4, argv, lens);
}


/*
 * A live on-site counter (the u32 at bit 32 of {T}:s:<sid>:left) whose
 * quota (places - places_online) changed since it was published
 * (onsite_published) moves by the difference, saturating at 0: res rows
 * (id, ..., quota, onsite_published).  Ask which counters exist and which
 * sessions released their on-site places online (reaper.c) first, in
 * pipelined chunks: a shift never creates a counter, and a released
 * session's on-site places are online, so its difference goes to the
 * online u32 (bit 0) and to {T}:s:<sid>:released (the on-site places
 * counted online by check and the recount).  A session whose
 * {T}:s:<sid>:onsite of the layout before is not merged yet is merged
 * first (gchb_merge_counter), then shifted at bit 32; one a rush keeps
 * moving has that old key shifted instead.  0 or -1.
 */
static int
gchw_onsite_shift(redisContext *rc, gchw_pipe_t *p, PGresult *res,
    int *shifted)
{
    int          row, n, *cand, nc, c, done, *state;
    char         key[512], delta[32];
    long         d;
    void        *v;
    redisReply  *r;

    n = PQntuples(res);

    cand = calloc(n ? n : 1, sizeof(int));
    state = calloc(n ? n : 1, sizeof(int));
    if (cand == NULL || state == NULL) {
        free(cand);
        free(state);
        return -1;
    }

    nc = 0;
    for (row = 0; row < n; row++) {
        if (!PQgetisnull(res, row, 3)
            && strcmp(PQgetvalue(res, row, 2), PQgetvalue(res, row, 3)))
        {
            cand[nc++] = row;
        }
    }

    gchw_pipe_flush(p);

    for (done = 0; done < nc && !p->failed; done = c) {
        for (c = done; c < nc && c < done + GCHW_PIPE_MAX / 3; c++) {
            snprintf(key, sizeof(key), GCH_KEY_S(GCH_KEY_LEFT),
                     gchb_town, PQgetvalue(res, cand[c], 0));
            redisAppendCommand(rc, "STRLEN %s", key);
            snprintf(key, sizeof(key), GCH_KEY_S(GCH_KEY_RELEASED),
                     gchb_town, PQgetvalue(res, cand[c], 0));
            redisAppendCommand(rc, "EXISTS %s", key);
            snprintf(key, sizeof(key), GCH_KEY_S(GCH_KEY_ONSITE_OLD),
                     gchb_town, PQgetvalue(res, cand[c], 0));
            redisAppendCommand(rc, "EXISTS %s", key);
        }

        for (c = done; c < nc && c < done + GCHW_PIPE_MAX / 3; c++) {
            for (row = 0; row < 3; row++) {
                if (redisGetReply(rc, &v) != REDIS_OK) {
                    gchb_log("error", "redis: %s", rc->errstr);
                    p->failed = 1;
                    break;
                }
                r = v;
                if (r->type == REDIS_REPLY_INTEGER && r->integer > 0) {
                    /* 1: counter, 2: released, 4: an old :onsite */
                    state[c] |= 1 << row;
                }
                freeReplyObject(r);
            }
            if (p->failed) {
                break;
            }
        }
    }

    /*
     * A session with an on-site counter of the layout before, not merged
     * yet: merged first, so that its quota's change moves the sum (the
     * old key plus whatever bit 32 holds already: a 4-byte :left becomes
     * 8 bytes at any write there, a counter's booking refused full
     * included).  Only one a rush keeps moving has its old key shifted.
     */
    for (c = 0; c < nc && !p->failed; c++) {
        if ((state[c] & 7) != 5) {
            continue;
        }

        switch (gchb_merge_counter(rc, gchb_town,
                                   PQgetvalue(res, cand[c], 0)))
        {
        case 0:
            state[c] &= ~4;
            break;
        case 1:
            break;
        default:
            p->failed = 1;
        }
    }

    for (c = 0; c < nc && !p->failed; c++) {
        if (!(state[c] & 1)) {
            continue;
        }

        row = cand[c];
        d = atol(PQgetvalue(res, row, 2)) - atol(PQgetvalue(res, row, 3));
        snprintf(delta, sizeof(delta), "%ld", d);

        if ((state[c] & 6) == 4) {
            /* an on-site counter of the layout before that a rush kept
             * moving, not merged yet (gchb_merge_counter): shifted there;
             * the merge adds it to bit 32 later (a saturating shift of
             * bit 32 first would lose a decrease) */
            snprintf(key, sizeof(key), GCH_KEY_S(GCH_KEY_ONSITE_OLD),
                     gchb_town, PQgetvalue(res, row, 0));
            gchw_pipe_str(p, 8, "BITFIELD", key, "OVERFLOW", "SAT",
                          "INCRBY", "u32", "0", delta);
            (*shifted)++;
            continue;
        }

        snprintf(key, sizeof(key), GCH_KEY_S(GCH_KEY_LEFT), gchb_town,
                 PQgetvalue(res, row, 0));
        gchw_pipe_str(p, 8, "BITFIELD", key, "OVERFLOW", "SAT", "INCRBY",
                      "u32", (state[c] & 2) ? GCH_OFF_LEFT : GCH_OFF_ONSITE,
                      delta);
        if (state[c] & 2) {
            snprintf(key, sizeof(key), GCH_KEY_S(GCH_KEY_RELEASED),
                     gchb_town, PQgetvalue(res, row, 0));
            gchw_pipe_str(p, 3, "INCRBY", key, delta);
        }
        (*shifted)++;
    }

    free(cand);
    free(state);

    return p->failed ? -1 : 0;
}


/*
 * Records the quotas the on-site counters are now built on
 * (onsite_published), the values read in res (a session changed since
 * is shifted at the next publication), only for the rows that differ.
 * Clears res.  0 or -1.
 */
static int
gchw_onsite_record(PGconn *pg, PGresult *res)
{
    int          row, n, rv;
    long         changed;
    gchb_arr_t   a[2];

    memset(a, 0, sizeof(a));
    n = PQntuples(res);

    for (row = 0; row < n; row++) {
        if (PQgetisnull(res, row, 3)
            || strcmp(PQgetvalue(res, row, 2), PQgetvalue(res, row, 3)))
        {
            gchb_arr_str(&a[0], PQgetvalue(res, row, 0));
            gchb_arr_int(&a[1], atol(PQgetvalue(res, row, 2)));
        }
    }

    PQclear(res);

    if (a[0].n == 0) {
        return 0;
    }

    /* many rows (a large load): one hash join, as gchw_counters_record */
    changed = 0;
    rv = gchb_pg_exec(pg, "begin");
    if (rv == 0 && a[0].n > 10000) {
        rv = gchb_pg_exec(pg, "set local enable_nestloop = off");
    }
    if (rv == 0) {
        rv = gchb_arr_exec(pg, "session",
                 "update session s set onsite_published = v.q"
                 " from unnest($1::text[], $2::int[]) as v(id, q)"
                 " where s.id = v.id"
                 "   and s.onsite_published is distinct from v.q",
                 a, 2, &changed);
    }
    rv = gchb_pg_exec(pg, rv == 0 ? "commit" : "rollback") || rv;
    gchb_arr_free(a, 2);

    return rv ? -1 : 0;
}


/*
 * The on-site quota of each session, places - places_online - confirmed
 * on-site bookings (rows: id, that, quota, onsite_published; ordered by
 * id as gchw_publish_counters' rows), the u32 at bit 32 of
 * {T}:s:<sid>:left: a quota changed since its publication first shifts
 * the live counter (gchw_onsite_shift); gchw_counters_set() writes it
 * with the online one; then onsite_published records the quota (only the
 * rows that differ, gchw_onsite_record).  The rows, or NULL.
 */
static PGresult *
gchw_publish_onsite(PGconn *pg, gchw_pipe_t *p, int rebuild)
{
    int         shifted;
    PGresult   *res;

    res = gchw_query(pg,
        "select s.id, s.places - s.places_online - count(b.id),"
        "   s.places - s.places_online, s.onsite_published"
        " from session s left join booking b on b.session_id = s.id"
        "   and b.status = 'confirmed' and b.channel = 'onsite'"
        " group by s.id order by s.id");
    if (res == NULL) {
        return NULL;
    }

    shifted = 0;

    if (!rebuild && gchw_onsite_shift(p->rc, p, res, &shifted) != 0) {
        PQclear(res);
        return NULL;
    }

    if (shifted) {
        gchb_log("info", "shifted %d on-site counters to new places",
                 shifted);
    }

    return res;
}


/*
 * Step 2a: the live counters of sessions whose places_online changed since
 * the last publication (rows of res: id, places_online, places_published,
 * booked) are shifted by the difference.  Ask which exist first (a shift
 * must not create a counter), in pipelined chunks.  The EXISTS used to be
 * sent with redisCommand() while BITFIELDs were still queued in the
 * pipeline: it read a BITFIELD's reply instead of its own, and every
 * other changed session was left unshifted.  0 (*shifted counts them) or
 * -1.
 */
static int
gchw_counters_shift(redisContext *rc, gchw_pipe_t *p, PGresult *res,
    int *shifted)
{
    int          row, n, *cand, nc, c, done, *exists;
    char         key[512], delta[32];
    long         d;
    void        *v;
    redisReply  *r;

    n = PQntuples(res);

    cand = calloc(n ? n : 1, sizeof(int));
    exists = calloc(n ? n : 1, sizeof(int));
    if (cand == NULL || exists == NULL) {
        free(cand);
        free(exists);
        return -1;
    }

    nc = 0;
    for (row = 0; row < n; row++) {
        if (!PQgetisnull(res, row, 2)
            && strcmp(PQgetvalue(res, row, 1), PQgetvalue(res, row, 2)))
        {
            cand[nc++] = row;
        }
    }

    gchw_pipe_flush(p);

    for (done = 0; done < nc && !p->failed; done = c) {
        for (c = done; c < nc && c < done + GCHW_PIPE_MAX; c++) {
            snprintf(key, sizeof(key), GCH_KEY_S(GCH_KEY_LEFT), gchb_town,
                     PQgetvalue(res, cand[c], 0));
            redisAppendCommand(rc, "EXISTS %s", key);
        }

        for (c = done; c < nc && c < done + GCHW_PIPE_MAX; c++) {
            if (redisGetReply(rc, &v) != REDIS_OK) {
                gchb_log("error", "redis: %s", rc->errstr);
                p->failed = 1;
                break;
            }
            r = v;
            exists[c] = r->type == REDIS_REPLY_INTEGER
                        && r->integer == 1;
            freeReplyObject(r);
        }
    }

    for (c = 0; c < nc && !p->failed; c++) {
        if (!exists[c]) {
            continue;
        }

        row = cand[c];
        snprintf(key, sizeof(key), GCH_KEY_S(GCH_KEY_LEFT), gchb_town,
                 PQgetvalue(res, row, 0));
        d = atol(PQgetvalue(res, row, 1))
            - atol(PQgetvalue(res, row, 2));
        snprintf(delta, sizeof(delta), "%ld", d);
        gchw_pipe_str(p, 8, "BITFIELD", key, "OVERFLOW", "SAT",
                      "INCRBY", "u32", "0", delta);
        (*shifted)++;
    }

    free(cand);
    free(exists);

    return p->failed ? -1 : 0;
}


/*
 * Step 2b: every session's counters, {T}:s:<sid>:left: places_online minus
 * what is taken, then the on-site quota minus what is taken at the
 * counter (ores, gchw_publish_onsite's rows, in the same order): SET NX,
 * or SET when rebuilding, where what is taken online is the size of
 * {T}:s:<id>:booked, which now holds PostgreSQL's bookings and any that
 * Redis still had (the union is what is taken).  0 or -1.
 */
static int
gchw_counters_set(redisContext *rc, gchw_pipe_t *p, PGresult *res,
    PGresult *ores, int rebuild)
{
    int    row, n;
    char   key[512], val[8];
    long   left, *booked;

    n = PQntuples(res);
    booked = NULL;

    if (rebuild && n) {
        booked = calloc(n, sizeof(long));
        if (booked == NULL || gchw_scard_all(rc, res, booked) != 0) {
            free(booked);
            return -1;
        }
    }

    if (PQntuples(ores) != n) {
        gchb_log("error", "publish: %d sessions, %d on-site quotas", n,
                 PQntuples(ores));
        free(booked);
        return -1;
    }

    for (row = 0; row < n; row++) {
        if (strcmp(PQgetvalue(res, row, 0), PQgetvalue(ores, row, 0)) != 0) {
            gchb_log("error", "publish: session %s, on-site quota of %s",
                     PQgetvalue(res, row, 0), PQgetvalue(ores, row, 0));
            free(booked);
            return -1;
        }
        snprintf(key, sizeof(key), GCH_KEY_S(GCH_KEY_LEFT), gchb_town,
                 PQgetvalue(res, row, 0));
        left = atol(PQgetvalue(res, row, 1))
               - (booked ? booked[row] : atol(PQgetvalue(res, row, 3)));
        gchw_u32be(val, left);
        gchw_u32be(val + 4, atol(PQgetvalue(ores, row, 1)));
        gchw_pipe_setnx(p, key, val, rebuild);

        if (rebuild) {
            /* the rebuild sets both counters: an on-site key of the
             * layout before, merged later, would count twice */
            snprintf(key, sizeof(key), GCH_KEY_S(GCH_KEY_ONSITE_OLD),
                     gchb_town, PQgetvalue(res, row, 0));
            gchw_pipe_str(p, 2, "DEL", key);
        }
    }

    free(booked);
    gchw_pipe_flush(p);

    return p->failed ? -1 : 0;
}


/*
 * Step 2c: the PostgreSQL arrays of the sessions whose places_online is
 * not yet recorded as published: ids ({"a","b"}) and their places
 * ({1,2}), malloc'ed (the caller frees them), *k rows.  0 or -1.
 */
static int
gchw_counters_arrays(PGresult *res, char **ids, char **vals, size_t *k)
{
    int          row, n;
    FILE        *fi, *fv;
    size_t       ids_len, vals_len;
    const char  *s;

    *ids = NULL;
    *vals = NULL;
    *k = 0;
    n = PQntuples(res);

    fi = open_memstream(ids, &ids_len);
    fv = open_memstream(vals, &vals_len);
    if (fi == NULL || fv == NULL) {
        if (fi) {
            fclose(fi);
        }
        if (fv) {
            fclose(fv);
        }
        free(*ids);
        free(*vals);
        return -1;
    }

    fputc('{', fi);
    fputc('{', fv);
    for (row = 0; row < n; row++) {
        if (!PQgetisnull(res, row, 2)
            && strcmp(PQgetvalue(res, row, 1), PQgetvalue(res, row, 2))
               == 0)
        {
            continue;
        }
        fprintf(fi, "%s\"", *k ? "," : "");
        for (s = PQgetvalue(res, row, 0); *s; s++) {
            if (*s == '"' || *s == '\\') {
                fputc('\\', fi);
            }
            fputc(*s, fi);
        }
        fputc('"', fi);
        fprintf(fv, "%s%s", *k ? "," : "", PQgetvalue(res, row, 1));
        (*k)++;
    }
    fputc('}', fi);
    fputc('}', fv);
    fclose(fi);
    fclose(fv);

    return 0;
}


/*
 * Step 2d: records what the counters are built on (places_published) for
 * the k sessions of the arrays.  Only the rows whose recorded value
 * differs (a second publisher finds nothing left to write).  Many rows (a
 * large load): one hash join with nested loops off, whatever the planner
 * guesses of unnest() (100 rows): probing the primary key 10^6 times, or
 * worse, ran for minutes.  A few rows: the planner's nested loop is the
 * right plan.  0 or -1.
 */
static int
gchw_counters_record(PGconn *pg, const char *ids, const char *vals,
    size_t k)
{
    PGresult    *up;
    const char  *params[2];

    /* fresh statistics: after a large load the planner must see the
     * table's real size, or it joins 10^6 sessions by nested loop */
    if (k > 10000) {
        PQclear(PQexec(pg, "analyze session"));
    }

    params[0] = ids;
    params[1] = vals;
    up = NULL;

    if (k > 0) {
        PQclear(PQexec(pg, "begin"));

        if (k > 10000) {
            PQclear(PQexec(pg, "set local enable_nestloop = off"));
        }

        up = PQexecParams(pg,
                 "update session s set places_published = v.p"
                 " from unnest($1::text[], $2::int[]) as v(id, p)"
                 " where s.id = v.id"
                 "   and s.places_published is distinct from v.p",
                 2, NULL, params, NULL, NULL, 0);

        if (PQresultStatus(up) == PGRES_COMMAND_OK) {
            PQclear(up);
            up = PQexec(pg, "commit");
        }
    }

    if (up != NULL && PQresultStatus(up) != PGRES_COMMAND_OK) {
        gchb_log("error", "postgres: %s", PQerrorMessage(pg));
        PQclear(up);
        PQclear(PQexec(pg, "rollback"));
        return -1;
    }
    PQclear(up);

    return 0;
}


/* Step 2: counters (2a to 2d above), the on-site ones with them.  0 or
 * -1. */
static int
gchw_publish_counters(PGconn *pg, redisContext *rc, gchw_pipe_t *p,
    int rebuild)
{
    int        shifted, rv;
    char      *ids, *vals;
    size_t     k;
    PGresult  *res, *ores;

    res = gchw_query(pg,
        "select s.id, s.places_online, s.places_published,"
        "   count(b.id)"
        " from session s left join booking b on b.session_id = s.id"
        "   and b.status = 'confirmed' and b.channel = 'online'"
        " group by s.id order by s.id");
    if (res == NULL) {
        return -1;
    }

    shifted = 0;
    ores = NULL;

    if ((!rebuild && gchw_counters_shift(rc, p, res, &shifted) != 0)
        || (ores = gchw_publish_onsite(pg, p, rebuild)) == NULL
        || gchw_counters_set(rc, p, res, ores, rebuild) != 0
        || gchw_counters_arrays(res, &ids, &vals, &k) != 0)
    {
        PQclear(res);
        PQclear(ores);
        return -1;
    }

    PQclear(res);

    rv = gchw_counters_record(pg, ids, vals, k);
    free(ids);
    free(vals);

    if (rv != 0 || gchw_onsite_record(pg, ores) != 0) {
        if (rv != 0) {
            PQclear(ores);
        }
        return -1;
    }

    if (shifted) {
        gchb_log("info", "shifted %d live counters to new places", shifted);
    }

    return 0;
}


/* Step 3: the logins hash; logins gone from PostgreSQL are removed. */
static int
gchw_publish_logins(PGconn *pg, redisContext *rc, gchw_pipe_t *p)
{
    int          row, n, found;
    char         val[512];
    size_t       i;
    PGresult    *res;
    redisReply  *r;

    /* the families' logins and their co-responsables' (0046), which
     * name the same family; never an archived family's (archiving and
     * merging erase them, but a row of an older version or of a restore
     * would open a session on the erased file) */
    res = gchw_query(pg,
        "select login, id, password_hash from family"
        " where login is not null and password_hash is not null"
        " and archived_at is null"
        " union all"
        " select c.login, c.family_id, c.password_hash from co_responsable c"
        " join family f on f.id = c.family_id"
        " where c.login is not null and c.removed_at is null"
        " and f.archived_at is null");
    if (res == NULL) {
        return -1;
    }

    n = PQntuples(res);

    for (row = 0; row < n; row++) {
        snprintf(val, sizeof(val), "%s %s", PQgetvalue(res, row, 1),
                 PQgetvalue(res, row, 2));
        gchw_pipe_str(p, 4, "HSET", gchb_keys.logins, PQgetvalue(res, row, 0),
                      val);
    }

    gchw_pipe_flush(p);

    r = redisCommand(rc, "HKEYS " GCH_KEY_LOGINS, gchb_town);
    if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
        gchb_log("error", "redis: HKEYS {%s}:logins: %s", gchb_town,
                 r ? (r->str ? r->str : "bad reply") : rc->errstr);
        if (r) {
            freeReplyObject(r);
        }
        PQclear(res);
        return -1;
    }

    for (i = 0; i < r->elements; i++) {
        found = 0;
        for (row = 0; row < n && !found; row++) {
            found = strcmp(PQgetvalue(res, row, 0), r->element[i]->str) == 0;
        }

        if (!found) {
            gchw_pipe_str(p, 3, "HDEL", gchb_keys.logins, r->element[i]->str);
        }
    }

    freeReplyObject(r);
    PQclear(res);
    gchw_pipe_flush(p);

    return p->failed ? -1 : 0;
}


/*
 * Step 3b: {T}:staff, the active staff accounts with a password (login ->
 * role), replaced as a whole in one MULTI/EXEC.  guichetctl staff-add and
 * guichet-office's deactivation change it at once too; the nginx module
 * refuses the counter's bookings of a login not in it.
 */
static int
gchw_publish_staff(PGconn *pg, gchw_pipe_t *p)
{
    int        row, n;
    PGresult  *res;

    res = gchw_query(pg,
        "select login, role from staff_account"
        " where active and password_hash is not null");
    if (res == NULL) {
        return -1;
    }

    n = PQntuples(res);

    gchw_pipe_str(p, 1, "MULTI");
    gchw_pipe_str(p, 2, "DEL", gchb_keys.staff);

    for (row = 0; row < n; row++) {
        gchw_pipe_str(p, 4, "HSET", gchb_keys.staff, PQgetvalue(res, row, 0),
                      PQgetvalue(res, row, 1));
    }

    gchw_pipe_str(p, 1, "EXEC");

    PQclear(res);
    gchw_pipe_flush(p);

    return p->failed ? -1 : 0;
}


/*
 * Step 3c: {T}:absence_reasons, the town's reasons of absence (office/
 * absence.c, migration 0101: code -> "1" when a proof is required, else
 * "0"), replaced as a whole in one MULTI/EXEC; the module checks a POST
 * /api/absences against it (engine/src/absence.c).  A change of the
 * reasons marks the catalogue changed, so it is published with it.
 */
static int
gchw_publish_absence_reasons(PGconn *pg, gchw_pipe_t *p)
{
    int        row, n;
    PGresult  *res;

    res = gchw_query(pg,
        "select code, case when proof_required then '1' else '0' end"
        " from absence_reason where active");
    if (res == NULL) {
        return -1;
    }

    n = PQntuples(res);

    gchw_pipe_str(p, 1, "MULTI");
    gchw_pipe_str(p, 2, "DEL", gchb_keys.absence_reasons);

    for (row = 0; row < n; row++) {
        gchw_pipe_str(p, 4, "HSET", gchb_keys.absence_reasons,
                      PQgetvalue(res, row, 0), PQgetvalue(res, row, 1));
    }

    gchw_pipe_str(p, 1, "EXEC");

    PQclear(res);
    gchw_pipe_flush(p);

    return p->failed ? -1 : 0;
}


/*
 * One publisher at a time (guichetctl load-town and the worker both
 * publish a new catalogue version; two at once each wrote every counter
 * and every session row): a PostgreSQL advisory lock for the session.
 * wait: block until it is ours.  1 held, 0 someone else has it, -1 error.
 */
static int
gchw_publish_lock(PGconn *pg, int wait)
{
    int        held;
    PGresult  *res;

    res = gchw_query(pg, wait ? "select pg_advisory_lock(" GCHB_LOCK_PUBLISH
                                ")::text <> 'x'"
                              : "select pg_try_advisory_lock("
                                GCHB_LOCK_PUBLISH ")");
    if (res == NULL) {
        return -1;
    }

    held = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);

    return held;
}


static void
gchw_publish_unlock(PGconn *pg)
{
    PQclear(PQexec(pg, "select pg_advisory_unlock(" GCHB_LOCK_PUBLISH ")"));
}


static int gchw_publish_locked(PGconn *pg, redisContext *rc, int rebuild);


/* See gchw.h. */
int
gchw_publish(PGconn *pg, redisContext *rc, int rebuild)
{
    int  rv;

    if (gchw_publish_lock(pg, 1) != 1) {
        return -1;
    }

    rv = gchw_publish_locked(pg, rc, rebuild);
    gchw_publish_unlock(pg);

    return rv;
}


static int
gchw_publish_locked(PGconn *pg, redisContext *rc, int rebuild)
{
    int           rv;
    int64_t       t0;
    PGresult     *res;
    gch_town_t   *town;
    gchw_pipe_t   p;
    gch_error_t   err;
    char         *ov;
    size_t        ov_len;
    long long     gen;
    const char   *json, *version;
    redisReply   *r;

    res = gchw_query(pg, "select version, json from catalogue where id = 1");
    if (res == NULL) {
        return -1;
    }

    if (PQntuples(res) == 0) {
        PQclear(res);
        gchb_log("info", "no town loaded yet: nothing to publish");
        return 0;
    }

    version = PQgetvalue(res, 0, 0);

    /* the town file with PostgreSQL's facts laid over it (overlay.c) */
    if (gchw_overlay(pg, PQgetvalue(res, 0, 1), PQgetlength(res, 0, 1), &ov,
                     &ov_len)
        != 0)
    {
        PQclear(res);
        return -1;
    }
    json = ov;

    memset(&p, 0, sizeof(p));
    p.rc = rc;
    town = NULL;
    t0 = gchb_now_ms();

    if (rebuild) {
        memset(&err, 0, sizeof(err));
        if (gch_town_parse(&town, json, strlen(json), &gch_alloc_std, &err)
            != GCH_OK)
        {
            gchb_log("error", "stored catalogue refused by the engine: %s",
                     err.message);
            PQclear(res);
            free(ov);
            return -1;
        }

        rv = gchw_rebuild_bookings(pg, &p, town);
        gch_town_free(town);
        gchw_pipe_flush(&p);

        if (rv == 0 && !p.failed && gchb_invoice_publish(pg, rc, NULL) < 0) {
            rv = -1;
        }

        /* the waiting lists, in their order (waitmirror.c) */
        if (rv == 0 && !p.failed && gchw_waitlist_rebuild(pg, rc) < 0) {
            rv = -1;
        }

        if (rv != 0 || p.failed) {
            PQclear(res);
            free(ov);
            return -1;
        }
    }

    if (gchw_publish_counters(pg, rc, &p, rebuild) != 0
        || gchw_publish_logins(pg, rc, &p) != 0
        || gchw_publish_staff(pg, &p) != 0
        || gchw_publish_absence_reasons(pg, &p) != 0)
    {
        PQclear(res);
        free(ov);
        return -1;
    }

    gchw_pipe_str(&p, 3, "SET", gchb_keys.catalogue, json);
    gchw_pipe_flush(&p);

    if (p.failed) {
        PQclear(res);
        free(ov);
        return -1;
    }

    /* the generation tells nginx the counters are there */
    r = redisCommand(rc, "INCR " GCH_KEY_CATALOGUE_GEN, gchb_town);
    if (r == NULL || r->type != REDIS_REPLY_INTEGER) {
        gchb_log("error", "redis: INCR {%s}:catalogue:gen: %s", gchb_town,
                 r ? (r->str ? r->str : "bad reply") : rc->errstr);
        if (r) {
            freeReplyObject(r);
        }
        PQclear(res);
        free(ov);
        return -1;
    }

    gen = r->integer;
    freeReplyObject(r);

    /*
     * the version after the generation: whoever reads PostgreSQL's version
     * here (the worker's next check, a test) knows the generation of this
     * publication is given; a failover that loses the generation loses
     * the version too, and the worker's next check publishes again
     */
    r = redisCommand(rc, "SET %s %s", gchb_keys.catalogue_version, version);
    if (r == NULL || r->type == REDIS_REPLY_ERROR) {
        gchb_log("error", "redis: SET {%s}:catalogue:version: %s", gchb_town,
                 r ? r->str : rc->errstr);
        if (r) {
            freeReplyObject(r);
        }
        PQclear(res);
        free(ov);
        return -1;
    }

    gchb_log("info", "published catalogue version %s as generation %lld%s "
             "in %lld ms", version, gen,
             rebuild ? " (rebuilt from postgres)" : "",
             (long long) (gchb_now_ms() - t0));

    freeReplyObject(r);
    PQclear(res);
    free(ov);

    return 0;
}


/* 1 (and *rebuild) when Redis's catalogue is not PostgreSQL's, 0, -1. */
static int
gchw_publish_needed(PGconn *pg, redisContext *rc, int *rebuild)
{
    int          same;
    PGresult    *res;
    redisReply  *r;

    r = redisCommand(rc, "MGET " GCH_KEY_CATALOGUE_GEN " "
                         GCH_KEY_CATALOGUE_VERSION, gchb_town, gchb_town);
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
        gchb_log("error", "redis: MGET {%s}:catalogue:gen: %s", gchb_town,
                 r ? "bad reply" : rc->errstr);
        if (r) {
            freeReplyObject(r);
        }
        return -1;
    }

    *rebuild = r->element[0]->type == REDIS_REPLY_NIL;

    res = gchw_query(pg, "select version from catalogue where id = 1");
    if (res == NULL) {
        freeReplyObject(r);
        return -1;
    }

    if (PQntuples(res) == 0) {
        /* nothing loaded yet */
        PQclear(res);
        freeReplyObject(r);
        return 0;
    }

    same = r->element[1]->type == REDIS_REPLY_STRING
           && strcmp(r->element[1]->str, PQgetvalue(res, 0, 0)) == 0;

    PQclear(res);
    freeReplyObject(r);

    return *rebuild || !same;
}


/*
 * See gchw.h.  When another publisher (guichetctl load-town) holds the
 * lock, nothing is done this round: it is publishing, and the next round
 * finds the versions equal.
 */
int
gchw_publish_check(PGconn *pg, redisContext *rc)
{
    int  rv, rebuild;

    rv = gchw_publish_needed(pg, rc, &rebuild);
    if (rv <= 0) {
        return rv;
    }

    rv = gchw_publish_lock(pg, 0);
    if (rv <= 0) {
        return rv;
    }

    /* again, now that no one else publishes */
    rv = gchw_publish_needed(pg, rc, &rebuild);

    if (rv > 0) {
        if (rebuild) {
            gchb_log("warn", GCH_KEY_CATALOGUE_GEN " is missing: rebuilding "
                     "redis from postgres", gchb_town);
        }

        rv = gchw_publish_locked(pg, rc, rebuild);
    }

    gchw_publish_unlock(pg);

    return rv < 0 ? -1 : 0;
}
