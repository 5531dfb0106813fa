/*
 * counters.c -- step 2 of the publication (publish.c): each session's
 * live counters {T}:s:<sid>:left (places_online minus the confirmed
 * online bookings as a big-endian u32 at bit 0, the on-site quota minus
 * the confirmed on-site bookings at bit 32), set when missing (or always,
 * rebuilding), shifted by the difference when places_online or the
 * on-site quota changed since the last publication, and what they are
 * built on recorded in PostgreSQL (places_published, onsite_published).
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gchw.h"
#include "gchw_publish.h"



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
 * The on-site counter of the layout before of session sid, which a rush
 * kept its merge from (gchb_merge_counter), moved by delta if it is still
 * there: WATCH, EXISTS, then the BITFIELD in a MULTI, so that a merge of
 * another process (guichetctl migrate-keys, a worker) that deletes it in
 * between aborts the EXEC rather than have the BITFIELD make it again
 * (at 0 for a decrease: saturated, the place taken away sold again).  The
 * pipe is flushed.  0 moved; 1 gone (merged: the caller moves bit 32 of
 * :left instead); -1 Redis failed.  A key still written after ten tries
 * (a module of the layout before answering) is moved without the check.
 */
static int
gchw_onsite_old_shift(redisContext *rc, const char *sid, const char *delta)
{
    int          t, i, exists, error;
    char         key[512];
    void        *v;
    redisReply  *r;

    snprintf(key, sizeof(key), GCH_KEY_S(GCH_KEY_ONSITE_OLD), gchb_town,
             sid);

    for (t = 0; t < 10; t++) {
        redisAppendCommand(rc, "WATCH %s", key);
        redisAppendCommand(rc, "EXISTS %s", key);

        exists = 0;
        for (i = 0; i < 2; i++) {
            if (redisGetReply(rc, &v) != REDIS_OK) {
                goto failed;
            }
            r = v;
            if (i == 1) {
                exists = r->type == REDIS_REPLY_INTEGER && r->integer == 1;
            }
            freeReplyObject(r);
        }

        if (!exists) {
            r = redisCommand(rc, "UNWATCH");
            if (r == NULL) {
                goto failed;
            }
            freeReplyObject(r);
            return 1;
        }

        redisAppendCommand(rc, "MULTI");
        redisAppendCommand(rc, "BITFIELD %s OVERFLOW SAT INCRBY u32 0 %s",
                           key, delta);
        redisAppendCommand(rc, "EXEC");

        /* every reply read, an error's too: the context stays in step */
        error = 0;
        for (i = 0; i < 3; i++) {
            if (redisGetReply(rc, &v) != REDIS_OK) {
                goto failed;
            }
            r = v;
            if (r->type == REDIS_REPLY_ERROR) {
                gchb_log("error", "redis: %s", r->str);
                error = 1;
            }
            exists = r->type == REDIS_REPLY_ARRAY;
            freeReplyObject(r);
        }

        if (error) {
            return -1;
        }

        if (exists) {
            return 0;                   /* EXEC ran; nil: moved, again */
        }
    }

    r = redisCommand(rc, "BITFIELD %s OVERFLOW SAT INCRBY u32 0 %s", key,
                     delta);
    if (r == NULL) {
        goto failed;
    }
    freeReplyObject(r);

    return 0;

failed:

    gchb_log("error", "redis: %s", rc->errstr);
    return -1;
}


/*
 * The rows of res whose column now differs from column was (not NULL):
 * an array of their numbers, *nc of them, and in *flags as many ints at
 * 0 for the caller; NULL when memory runs out.  The caller frees both.
 */
static int *
gchw_changed_rows(PGresult *res, int now, int was, int *nc, int **flags)
{
    int   row, n, *rows;

    n = PQntuples(res);

    rows = calloc(n ? n : 1, sizeof(int));
    *flags = calloc(n ? n : 1, sizeof(int));
    if (rows == NULL || *flags == NULL) {
        free(rows);
        free(*flags);
        return NULL;
    }

    *nc = 0;
    for (row = 0; row < n; row++) {
        if (!PQgetisnull(res, row, was)
            && strcmp(PQgetvalue(res, row, now), PQgetvalue(res, row, was)))
        {
            rows[(*nc)++] = row;
        }
    }

    return rows;
}


/*
 * A live on-site counter (the u32 at bit 32 of {T}:s:<sid>:left) whose
 * quota (places - places_online) changed since it was published
 * (onsite_published) moves by the difference, saturating at 0: res rows
 * (id, ..., quota, onsite_published).  Ask which counters exist and which
 * sessions released their on-site places online (release.c) first, in
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
    int          row, *cand, nc, c, done, *state;
    char         key[512], delta[32];
    long         d;
    void        *v;
    redisReply  *r;

    cand = gchw_changed_rows(res, 2, 3, &nc, &state);
    if (cand == NULL) {
        return -1;
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
             * bit 32 first would lose a decrease).  Unless another
             * process merged it meanwhile: then bit 32, below. */
            gchw_pipe_flush(p);
            if (p->failed) {
                break;
            }

            switch (gchw_onsite_old_shift(rc, PQgetvalue(res, row, 0),
                                          delta))
            {
            case 0:
                (*shifted)++;
                continue;
            case 1:
                break;
            default:
                p->failed = 1;
                continue;
            }
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
    int          row, *cand, nc, c, done, *exists;
    char         key[512], delta[32];
    long         d;
    void        *v;
    redisReply  *r;

    cand = gchw_changed_rows(res, 1, 2, &nc, &exists);
    if (cand == NULL) {
        return -1;
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
    char   key[512], okey[512], val[8];
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

        if (rebuild) {
            /*
             * The rebuild sets both counters: an on-site key of the
             * layout before, merged later, would count twice.  Deleted
             * before the SET, not after: a merge of another process
             * (guichetctl migrate-keys) that ran between the two would
             * have added the old key to the new :left; this way it finds
             * either no old key, or the old :left, which the SET then
             * replaces (its WATCH aborts it if the DEL comes in between).
             */
            snprintf(okey, sizeof(okey), GCH_KEY_S(GCH_KEY_ONSITE_OLD),
                     gchb_town, PQgetvalue(res, row, 0));
            gchw_pipe_str(p, 2, "DEL", okey);
        }

        gchw_pipe_setnx(p, key, val, rebuild);
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
int
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
