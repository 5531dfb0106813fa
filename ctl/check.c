/*
 * check.c -- `guichetctl check`: Redis against PostgreSQL.
 *
 * Per session (every row of session):
 *   taken  = places - left, places = places_published (what the counter
 *            was built on; places_online when never published) minus
 *            the places held by offers ({T}:s:<sid>:held), left =
 *            BITFIELD {T}:s:<sid>:left GET u32 0;
 *   booked = SCARD {T}:s:<sid>:booked;
 *   pg     = PostgreSQL's confirmed bookings of the session;
 * a difference when the counter is missing or taken, booked and pg are
 * not all equal.
 *
 * Per child: the claims {T}:c:<cid>:<date>:q<i> = "<sid> <bid>" that
 * PostgreSQL's confirmed bookings imply (quanta of the unit from the
 * engine's parse of the catalogue; days whose claims have expired are
 * skipped, as in the rebuild) against the claims Redis holds (SCAN):
 * missing, different, or extra.
 *
 * Every difference is one line on stdout.  Entries of {T}:stream not yet
 * persisted (or attempts between their two steps) explain transient
 * differences: a note on stderr says so.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gchc.h"


typedef struct {
    char    **v;               /* "key\tvalue" */
    size_t    n;
    size_t    cap;
} gchc_strs_t;


static int
gchc_strs_add(gchc_strs_t *a, const char *key, const char *val)
{
    char   **nv, *s;
    size_t   n;

    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 256;
        nv = realloc(a->v, a->cap * sizeof(char *));
        if (nv == NULL) {
            return -1;
        }
        a->v = nv;
    }

    n = strlen(key) + strlen(val) + 2;
    s = malloc(n);
    if (s == NULL) {
        return -1;
    }
    snprintf(s, n, "%s\t%s", key, val);
    a->v[a->n++] = s;

    return 0;
}


static void
gchc_strs_free(gchc_strs_t *a)
{
    size_t  i;

    for (i = 0; i < a->n; i++) {
        free(a->v[i]);
    }
    free(a->v);
}


static int
gchc_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}


/* Sessions.  The number of differences, or -1. */
static int
gchc_check_sessions(PGconn *pg, redisContext *rc)
{
    int          row, n, diff, ok;
    long long    places, left, booked, count;
    char         key[512];
    void        *v;
    PGresult    *res;
    redisReply  *r1, *r2;

    res = PQexec(pg,
        "select s.id, coalesce(s.places_published, s.places_online),"
        "   (select count(*) from booking b where b.session_id = s.id"
        "      and b.status = 'confirmed' and b.channel = 'online')"
        " from session s order by s.id");
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        gchb_log("error", "postgres: %s", PQerrorMessage(pg));
        PQclear(res);
        return -1;
    }

    n = PQntuples(res);

    for (row = 0; row < n; row++) {
        snprintf(key, sizeof(key), GCH_KEY_S(GCH_KEY_LEFT), gchb_town,
                 PQgetvalue(res, row, 0));
        redisAppendCommand(rc, "EXISTS %s", key);
        redisAppendCommand(rc, "BITFIELD %s GET u32 0", key);
        snprintf(key, sizeof(key), GCH_KEY_S(GCH_KEY_BOOKED), gchb_town,
                 PQgetvalue(res, row, 0));
        redisAppendCommand(rc, "SCARD %s", key);
        snprintf(key, sizeof(key), GCH_KEY_S(GCH_KEY_RELEASED), gchb_town,
                 PQgetvalue(res, row, 0));
        redisAppendCommand(rc, "GET %s", key);
        snprintf(key, sizeof(key), GCH_KEY_S(GCH_KEY_HELD), gchb_town,
                 PQgetvalue(res, row, 0));
        redisAppendCommand(rc, "GET %s", key);
    }

    diff = 0;

    for (row = 0; row < n; row++) {
        places = atoll(PQgetvalue(res, row, 1));
        count = atoll(PQgetvalue(res, row, 2));

        if (redisGetReply(rc, &v) != REDIS_OK) {
            goto redis_failed;
        }
        r1 = v;
        ok = r1->type == REDIS_REPLY_INTEGER && r1->integer == 1;
        freeReplyObject(r1);

        if (redisGetReply(rc, &v) != REDIS_OK) {
            goto redis_failed;
        }
        r1 = v;
        left = 0;
        if (r1->type == REDIS_REPLY_ARRAY && r1->elements == 1
            && r1->element[0]->type == REDIS_REPLY_INTEGER)
        {
            left = r1->element[0]->integer;
        }
        freeReplyObject(r1);

        if (redisGetReply(rc, &v) != REDIS_OK) {
            goto redis_failed;
        }
        r2 = v;
        booked = r2->type == REDIS_REPLY_INTEGER ? r2->integer : -1;
        freeReplyObject(r2);

        /* on-site places released online (release_onsite_at) */
        if (redisGetReply(rc, &v) != REDIS_OK) {
            goto redis_failed;
        }
        r2 = v;
        if (r2->type == REDIS_REPLY_STRING) {
            places += atoll(r2->str);
        }
        freeReplyObject(r2);

        /* places held by waiting lists' offers: not left, not booked */
        if (redisGetReply(rc, &v) != REDIS_OK) {
            goto redis_failed;
        }
        r2 = v;
        if (r2->type == REDIS_REPLY_STRING && atoll(r2->str) > 0) {
            places -= atoll(r2->str);
        }
        freeReplyObject(r2);

        if (!ok) {
            printf("session %s: no counter " GCH_KEY_S(GCH_KEY_LEFT)
                   " in redis, "
                   "postgres %lld confirmed of %lld\n",
                   PQgetvalue(res, row, 0), gchb_town, PQgetvalue(res, row, 0),
                              count,
                   places);
            diff++;

        } else if (places - left != count || booked != count) {
            printf("session %s: places taken %lld in redis (%lld - left "
                   "%lld), booked set %lld, postgres %lld confirmed\n",
                   PQgetvalue(res, row, 0), places - left, places, left,
                   booked, count);
            diff++;
        }
    }

    PQclear(res);
    return diff;

redis_failed:

    gchb_log("error", "redis: %s", rc->errstr);
    PQclear(res);
    return -1;
}


/* The claims PostgreSQL implies. */
static int
gchc_claims_expected(PGconn *pg, gchc_strs_t *out)
{
    int           q, row, n, rc;
    char          key[512], val[512];
    size_t        u;
    uint32_t      quanta;
    PGresult     *res;
    gch_day_t     day;
    gch_town_t   *town;
    gch_error_t   err;
    const char   *json;

    res = PQexec(pg, "select json from catalogue where id = 1");
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        gchb_log("error", "postgres: %s", PQerrorMessage(pg));
        PQclear(res);
        return -1;
    }

    town = NULL;
    if (PQntuples(res) == 1) {
        json = PQgetvalue(res, 0, 0);
        memset(&err, 0, sizeof(err));
        if (gch_town_parse(&town, json, strlen(json), &gch_alloc_std, &err)
            != GCH_OK)
        {
            gchb_log("error", "stored catalogue refused by the engine: %s",
                     err.message);
            PQclear(res);
            return -1;
        }
    }
    PQclear(res);

    res = PQexec(pg,
        "select b.id, b.session_id, b.child_id, to_char(s.date,"
        "   'YYYY-MM-DD'), s.unit_code"
        " from booking b join session s on s.id = b.session_id"
        " where b.status = 'confirmed'");
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        gchb_log("error", "postgres: %s", PQerrorMessage(pg));
        PQclear(res);
        gch_town_free(town);
        return -1;
    }

    n = PQntuples(res);
    rc = 0;

    for (row = 0; row < n && rc == 0; row++) {
        quanta = 0;
        for (u = 0; town && u < town->nunits; u++) {
            if (strcmp(town->units[u].code, PQgetvalue(res, row, 4)) == 0) {
                quanta = town->units[u].quanta;
            }
        }

        if (gch_day_parse(&day, PQgetvalue(res, row, 3), 10) != 0
            || gch_paris_to_unix(day + 2, 0) * 1000 <= gchb_now_ms())
        {
            continue;
        }

        snprintf(val, sizeof(val), "%s %s", PQgetvalue(res, row, 1),
                 PQgetvalue(res, row, 0));

        for (q = 0; q < 32 && rc == 0; q++) {
            if (quanta & (1u << q)) {
                snprintf(key, sizeof(key), GCH_KEY_CLAIM, gchb_town,
                         PQgetvalue(res, row, 2), PQgetvalue(res, row, 3), q);
                rc = gchc_strs_add(out, key, val);
            }
        }
    }

    PQclear(res);
    gch_town_free(town);

    return rc;
}


/* The claims Redis holds (SCAN MATCH {T}:c:*:q*, then GET). */
static int
gchc_claims_held(redisContext *rc, gchc_strs_t *out)
{
    char         cursor[32];
    size_t       i;
    redisReply  *r, *g;

    strcpy(cursor, "0");

    do {
        r = redisCommand(rc, "SCAN %s MATCH " GCH_KEY_T(GCH_N_C "*:q*")
                         " COUNT 1000", cursor, gchb_town);
        if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
            gchb_log("error", "redis: SCAN: %s", r ? "bad reply"
                     : rc->errstr);
            if (r) {
                freeReplyObject(r);
            }
            return -1;
        }

        snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);

        for (i = 0; i < r->element[1]->elements; i++) {
            g = redisCommand(rc, "GET %s", r->element[1]->element[i]->str);
            if (g == NULL) {
                freeReplyObject(r);
                return -1;
            }
            if (g->type == REDIS_REPLY_STRING
                && gchc_strs_add(out, r->element[1]->element[i]->str,
                                 g->str) != 0)
            {
                freeReplyObject(g);
                freeReplyObject(r);
                return -1;
            }
            freeReplyObject(g);
        }

        freeReplyObject(r);

    } while (strcmp(cursor, "0") != 0);

    return 0;
}


/* Prints "key\tvalue" as claim key: value. */
static void
gchc_claim_print(const char *what, const char *kv, const char *other)
{
    const char  *tab;

    tab = strchr(kv, '\t');
    printf("claim %.*s: %s \"%s\"%s%s%s\n", (int) (tab - kv), kv, what,
           tab + 1, other ? ", redis \"" : "", other ? other : "",
           other ? "\"" : "");
}


static int
gchc_check_claims(PGconn *pg, redisContext *rc)
{
    int           diff, c;
    size_t        i, j, ki, kj;
    gchc_strs_t   want, have;

    memset(&want, 0, sizeof(want));
    memset(&have, 0, sizeof(have));

    if (gchc_claims_expected(pg, &want) != 0
        || gchc_claims_held(rc, &have) != 0)
    {
        gchc_strs_free(&want);
        gchc_strs_free(&have);
        return -1;
    }

    qsort(want.v, want.n, sizeof(char *), gchc_cmp);
    qsort(have.v, have.n, sizeof(char *), gchc_cmp);

    diff = 0;
    i = j = 0;

    while (i < want.n || j < have.n) {
        if (i < want.n && j < have.n) {
            ki = strchr(want.v[i], '\t') - want.v[i];
            kj = strchr(have.v[j], '\t') - have.v[j];
            c = strncmp(want.v[i], have.v[j], ki < kj ? ki : kj);
            if (c == 0) {
                c = ki < kj ? -1 : (ki > kj ? 1 : 0);
            }
        } else {
            c = i < want.n ? -1 : 1;
        }

        if (c < 0) {
            gchc_claim_print("postgres", want.v[i], "(none)");
            i++;
            diff++;

        } else if (c > 0) {
            gchc_claim_print("no booking in postgres, redis holds",
                             have.v[j], NULL);
            j++;
            diff++;

        } else {
            if (strcmp(want.v[i], have.v[j]) != 0) {
                gchc_claim_print("postgres", want.v[i],
                                 strchr(have.v[j], '\t') + 1);
                diff++;
            }
            i++;
            j++;
        }
    }

    gchc_strs_free(&want);
    gchc_strs_free(&have);

    return diff;
}


/* See gchc.h. */
int
gchc_check(PGconn *pg, redisContext *rc)
{
    int          a, b;
    char         pos[64];
    int64_t      lag;
    redisReply  *r;

    lag = gchw_position_read(pg, pos, sizeof(pos)) == 0
          ? gchw_persist_lag(rc, pos) : -1;
    if (lag > 0) {
        fprintf(stderr, "guichetctl: note: " GCH_KEY_STREAM " has entries not "
                "yet persisted (lag %lld ms): differences may be "
                "transient\n", gchb_town, (long long) lag);
    }

    r = redisCommand(rc, "ZCARD " GCH_KEY_INFLIGHT, gchb_town);
    if (r && r->type == REDIS_REPLY_INTEGER && r->integer > 0) {
        fprintf(stderr, "guichetctl: note: %lld attempts in flight hold "
                "claims and places\n", (long long) r->integer);
    }
    if (r) {
        freeReplyObject(r);
    }

    r = redisCommand(rc, "ZCARD " GCH_KEY_RECOUNT, gchb_town);
    if (r && r->type == REDIS_REPLY_INTEGER && r->integer > 0) {
        fprintf(stderr, "guichetctl: note: %lld sessions wait for the "
                "reaper's recount of their places (recount_after_ms)\n",
                (long long) r->integer);
    }
    if (r) {
        freeReplyObject(r);
    }

    a = gchc_check_sessions(pg, rc);
    if (a < 0) {
        return -1;
    }

    b = gchc_check_claims(pg, rc);
    if (b < 0) {
        return -1;
    }

    return a + b;
}


/*
 * `guichetctl recount SESSION...`: asks the worker's reaper to set each
 * session's counter from its booked set (left = places_online + on-site
 * places released - SCARD booked), as it does after releasing an orphan:
 * ZADD {T}:recount NX <now> (due at once, unless the reaper scheduled it
 * already: its delay stays), recounted in the reaper's next round once no
 * attempt in flight touches the session.  For the places a
 * dead attempt took that nothing gives back (docs/reliability.md).  The
 * recount trusts the booked set, so a session whose set differs from
 * PostgreSQL's confirmed online bookings is not scheduled (the worker may
 * still be persisting: wait, then check again).  0 all scheduled, 1 not.
 */
int
gchc_recount_schedule(PGconn *pg, redisContext *rc, char **sids, int n)
{
    int          i, ret;
    long long    count, booked;
    char         key[512], now[32];
    PGresult    *res;
    redisReply  *r;
    const char  *params[1];

    snprintf(now, sizeof(now), "%lld", (long long) gchb_now_ms());
    ret = 0;

    for (i = 0; i < n; i++) {
        params[0] = sids[i];
        res = PQexecParams(pg,
            "select (select count(*) from booking b where b.session_id = $1"
            "   and b.status = 'confirmed' and b.channel = 'online')"
            " from session where id = $1", 1, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
            gchb_log("error", "postgres: %s", PQerrorMessage(pg));
            PQclear(res);
            return 1;
        }
        if (PQntuples(res) == 0) {
            printf("session %s: unknown, not scheduled\n", sids[i]);
            PQclear(res);
            ret = 1;
            continue;
        }
        count = atoll(PQgetvalue(res, 0, 0));
        PQclear(res);

        snprintf(key, sizeof(key), GCH_KEY_S(GCH_KEY_BOOKED), gchb_town,
                 sids[i]);
        r = redisCommand(rc, "SCARD %s", key);
        if (r == NULL || r->type != REDIS_REPLY_INTEGER) {
            gchb_log("error", "redis: SCARD %s: %s", key,
                     r ? r->str : rc->errstr);
            if (r) {
                freeReplyObject(r);
            }
            return 1;
        }
        booked = r->integer;
        freeReplyObject(r);

        if (booked != count) {
            printf("session %s: booked set %lld, postgres %lld confirmed: "
                   "not scheduled (the recount trusts the booked set)\n",
                   sids[i], booked, count);
            ret = 1;
            continue;
        }

        /* NX: a recount the reaper scheduled keeps its delay */
        r = redisCommand(rc, "ZADD " GCH_KEY_RECOUNT " NX %s %s", gchb_town,
                         now, sids[i]);
        if (r == NULL || r->type != REDIS_REPLY_INTEGER) {
            gchb_log("error", "redis: ZADD {%s}:recount: %s", gchb_town,
                     r ? r->str : rc->errstr);
            if (r) {
                freeReplyObject(r);
            }
            return 1;
        }

        printf("session %s: %s for the reaper's recount\n", sids[i],
               r->integer ? "scheduled" : "already scheduled");
        freeReplyObject(r);
    }

    return ret;
}
