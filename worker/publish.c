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
 *      {T}:f:<id>:documents (rebuild.c), and their invoice lists
 *      {T}:f:<id>:invoices (invoice.c);
 *   2. per session {T}:s:<sid>:left, 8 bytes: places_online - confirmed
 *      online bookings as a big-endian u32 (bit 0), then the on-site
 *      quota (places - places_online) - confirmed on-site bookings (bit
 *      32): SET NX (live counters win), or SET when rebuilding; a session
 *      whose places_online or on-site quota changed since the last
 *      publication (places_published, onsite_published) has its live
 *      u32 shifted by the difference (counters.c);
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

#include "gchw.h"
#include "gchw_publish.h"


void
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


void
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
void
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


PGresult *
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
