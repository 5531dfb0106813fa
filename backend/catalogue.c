/*
 * catalogue.c -- the catalogue's units, activities, price bands and
 * sessions into PostgreSQL's tables, and PostgreSQL array literals.
 *
 * Written for `guichetctl load-town` (ctl/load.c: the whole town, in its
 * one transaction) and shared with guichet-office (office/activity.c: one
 * activity the staff created or changed, in the office's transaction).
 * Each table is one statement (columns sent as PostgreSQL arrays and
 * unnest()ed), "on conflict ... do update ... where (...) is distinct
 * from (...)", so that storing the same town twice rewrites no row.
 * Sessions gone from the town are deleted only when no booking points at
 * them.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "gchb.h"


static void
gchb_arr_put(gchb_arr_t *a, const char *s, size_t n)
{
    (void) gchb_buf_add(&a->buf, s, n);        /* a failure is sticky */
}


static void
gchb_arr_sep(gchb_arr_t *a)
{
    gchb_arr_put(a, a->n++ ? "," : "{", 1);
}


void
gchb_arr_str(gchb_arr_t *a, const char *s)
{
    gchb_arr_sep(a);

    if (s == NULL) {
        gchb_arr_put(a, "NULL", 4);
        return;
    }

    gchb_arr_put(a, "\"", 1);
    for ( /* void */ ; *s; s++) {
        if (*s == '"' || *s == '\\') {
            gchb_arr_put(a, "\\", 1);
        }
        gchb_arr_put(a, s, 1);
    }
    gchb_arr_put(a, "\"", 1);
}


void
gchb_arr_int(gchb_arr_t *a, long long v)
{
    char  buf[32];

    gchb_arr_sep(a);
    gchb_arr_put(a, buf, snprintf(buf, sizeof(buf), "%lld", v));
}


void
gchb_arr_day(gchb_arr_t *a, gch_day_t d)
{
    char  buf[11];

    gch_day_format(d, buf);
    gchb_arr_str(a, buf);
}


const char *
gchb_arr_end(gchb_arr_t *a)
{
    gchb_arr_put(a, a->n ? "}" : "{}", a->n ? 1 : 2);

    return a->buf.failed ? NULL : a->buf.data;
}


void
gchb_arr_free(gchb_arr_t *a, size_t n)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        gchb_buf_free(&a[i].buf);
    }
}


/* Exec with already terminated arrays (data pointers). */
int
gchb_arr_exec_raw(PGconn *pg, const char *what, const char *sql,
    const char **params, int n, long *changed)
{
    PGresult  *res;

    res = PQexecParams(pg, sql, n, NULL, params, NULL, NULL, 0);

    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        gchb_log("error", "catalogue: %s: %s", what, PQerrorMessage(pg));
        PQclear(res);
        return -1;
    }

    *changed += atol(PQcmdTuples(res));
    PQclear(res);

    return 0;
}


/* Runs sql with n array parameters; adds the rows it touched to *changed.
 * 0 or -1 after logging. */
int
gchb_arr_exec(PGconn *pg, const char *what, const char *sql,
    gchb_arr_t *arr, int n, long *changed)
{
    int          i;
    PGresult    *res;
    const char  *params[16];

    for (i = 0; i < n; i++) {
        params[i] = gchb_arr_end(&arr[i]);
        if (params[i] == NULL) {
            gchb_log("error", "out of memory");
            return -1;
        }
    }

    res = PQexecParams(pg, sql, n, NULL, params, NULL, NULL, 0);

    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        gchb_log("error", "catalogue: %s: %s", what, PQerrorMessage(pg));
        PQclear(res);
        return -1;
    }

    *changed += atol(PQcmdTuples(res));
    PQclear(res);

    return 0;
}


const char *
gchb_deadline_kind(gch_deadline_kind_t k)
{
    switch (k) {
    case GCH_DEADLINE_WORKING_DAYS:
        return "working_days";
    case GCH_DEADLINE_HOURS:
        return "hours";
    case GCH_DEADLINE_DAY_BEFORE_AT:
        return "day_before_at";
    default:
        return "none";
    }
}


/* The town's units (upserted). */
static int
gchb_cat_units(PGconn *pg, const gch_town_t *t, long *changed)
{
    int          rc;
    size_t       i;
    gchb_arr_t   a[4];

    memset(a, 0, sizeof(a));

    for (i = 0; i < t->nunits; i++) {
        gchb_arr_str(&a[0], t->units[i].code);
        gchb_arr_str(&a[1], t->units[i].label);
        gchb_arr_int(&a[2], t->units[i].starts_min);
        gchb_arr_int(&a[3], t->units[i].ends_min);
    }

    rc = gchb_arr_exec(pg, "unit",
        "insert into unit (code, label, starts_min, ends_min)"
        " select * from unnest($1::text[], $2::text[], $3::int[],"
        "                      $4::int[])"
        " on conflict (code) do update set label = excluded.label,"
        "   starts_min = excluded.starts_min, ends_min = excluded.ends_min"
        " where (unit.label, unit.starts_min, unit.ends_min)"
        "   is distinct from"
        "   (excluded.label, excluded.starts_min, excluded.ends_min)",
        a, 4, changed);
    gchb_arr_free(a, 4);

    return rc;
}


/* The town's activities (upserted). */
static int
gchb_cat_activities(PGconn *pg, const gch_town_t *t, const char *only,
    long *changed)
{
    int                    rc;
    char                   opens[26];
    size_t                 i;
    gchb_arr_t             a[10];
    const gch_activity_t  *act;

    memset(a, 0, sizeof(a));

    for (i = 0; i < t->nactivities; i++) {
        act = &t->activities[i];
        if (only != NULL && strcmp(act->id, only) != 0) {
            continue;
        }
        gchb_arr_str(&a[0], act->id);
        gchb_arr_str(&a[1], act->name);
        gchb_arr_str(&a[2], act->site);
        gchb_arr_int(&a[3], act->age_min);
        gchb_arr_int(&a[4], act->age_max);
        if (act->opens_at) {
            gch_instant_format(act->opens_at, opens);
            gchb_arr_str(&a[5], opens);
        } else {
            gchb_arr_str(&a[5], NULL);
        }
        gchb_arr_str(&a[6], gchb_deadline_kind(act->deadline.kind));
        gchb_arr_int(&a[7], act->deadline.n);
        gchb_arr_int(&a[8], act->online_share_percent);
        gchb_arr_str(&a[9], act->week_required ? "true" : "false");
    }

    rc = gchb_arr_exec(pg, "activity",
        "insert into activity (id, name, site, age_min, age_max,"
        "   booking_opens_at, deadline_kind, deadline_n,"
        "   online_share_percent, week_required)"
        " select * from unnest($1::text[], $2::text[], $3::text[],"
        "   $4::int[], $5::int[], $6::timestamptz[], $7::text[],"
        "   $8::int[], $9::int[], $10::boolean[])"
        " on conflict (id) do update set name = excluded.name,"
        "   site = excluded.site, age_min = excluded.age_min,"
        "   age_max = excluded.age_max,"
        "   booking_opens_at = excluded.booking_opens_at,"
        "   deadline_kind = excluded.deadline_kind,"
        "   deadline_n = excluded.deadline_n,"
        "   online_share_percent = excluded.online_share_percent,"
        "   week_required = excluded.week_required"
        " where (activity.name, activity.site, activity.age_min,"
        "   activity.age_max, activity.booking_opens_at,"
        "   activity.deadline_kind, activity.deadline_n,"
        "   activity.online_share_percent, activity.week_required)"
        "   is distinct from (excluded.name, excluded.site,"
        "   excluded.age_min, excluded.age_max, excluded.booking_opens_at,"
        "   excluded.deadline_kind, excluded.deadline_n,"
        "   excluded.online_share_percent, excluded.week_required)",
        a, 10, changed);
    gchb_arr_free(a, 10);

    return rc;
}


/* The activities' price bands (upserted; bands beyond the file's count
 * and those of activities gone from the file deleted). */
static int
gchb_cat_prices(PGconn *pg, const gch_town_t *t, const char *only,
    long *changed)
{
    int                    rc;
    size_t                 i, j;
    gchb_arr_t             a[4];
    const char            *p[3];
    const gch_activity_t  *act;

    memset(a, 0, sizeof(a));

    for (i = 0; i < t->nactivities; i++) {
        act = &t->activities[i];
        if (only != NULL && strcmp(act->id, only) != 0) {
            continue;
        }
        for (j = 0; j < act->nprices; j++) {
            gchb_arr_str(&a[0], act->id);
            gchb_arr_int(&a[1], (long long) j);
            if (act->prices[j].qf_max < 0) {
                gchb_arr_str(&a[2], NULL);
            } else {
                gchb_arr_int(&a[2], act->prices[j].qf_max);
            }
            gchb_arr_int(&a[3], act->prices[j].cents);
        }
    }

    rc = gchb_arr_exec(pg, "activity_price",
        "insert into activity_price (activity_id, position, qf_max, cents)"
        " select * from unnest($1::text[], $2::int[], $3::int[], $4::int[])"
        " on conflict (activity_id, position) do update"
        "   set qf_max = excluded.qf_max, cents = excluded.cents"
        " where (activity_price.qf_max, activity_price.cents)"
        "   is distinct from (excluded.qf_max, excluded.cents)",
        a, 4, changed);

    if (rc == 0) {
        /* bands beyond the file's count, activities gone from the file */
        p[0] = a[0].buf.data;
        p[1] = a[1].buf.data;
        p[2] = only;
        rc = gchb_arr_exec_raw(pg, "activity_price",
            "delete from activity_price p"
            " where not exists (select 1 from unnest($1::text[], $2::int[])"
            "   k(a, n) where k.a = p.activity_id and k.n = p.position)"
            "   and ($3::text is null or p.activity_id = $3)",
            p, 3, changed);
    }

    gchb_arr_free(a, 4);

    return rc;
}


static int
gchb_cat_sessions(PGconn *pg, const gch_town_t *t, const char *only,
    long *changed)
{
    int                   rc;
    size_t                i;
    gchb_arr_t            a[7];
    const char           *p[2];
    const gch_session_t  *s;

    memset(a, 0, sizeof(a));

    for (i = 0; i < t->nsessions; i++) {
        s = &t->sessions[i];
        if (only != NULL && strcmp(s->activity->id, only) != 0) {
            continue;
        }
        gchb_arr_str(&a[0], s->id);
        gchb_arr_str(&a[1], s->activity->id);
        gchb_arr_day(&a[2], s->date);
        gchb_arr_str(&a[3], t->units[s->unit].code);
        gchb_arr_str(&a[4], s->label ? s->label : t->units[s->unit].label);
        gchb_arr_int(&a[5], s->places);
        gchb_arr_int(&a[6], s->places_online);
    }

    rc = gchb_arr_exec(pg, "session",
        "insert into session (id, activity_id, date, unit_code, label,"
        "   places, places_online)"
        " select * from unnest($1::text[], $2::text[], $3::date[],"
        "   $4::text[], $5::text[], $6::int[], $7::int[])"
        " on conflict (id) do update set activity_id = excluded.activity_id,"
        "   date = excluded.date, unit_code = excluded.unit_code,"
        "   label = excluded.label, places = excluded.places,"
        "   places_online = excluded.places_online"
        " where (session.activity_id, session.date, session.unit_code,"
        "   session.label, session.places, session.places_online)"
        "   is distinct from (excluded.activity_id, excluded.date,"
        "   excluded.unit_code, excluded.label, excluded.places,"
        "   excluded.places_online)",
        a, 7, changed);

    /*
     * No foreign key checks a persisted booking's session or child (0015)
     * nor a demande's family (0017, checked by the batch without a lock):
     * the persister's batch in flight is committed, and seen by the
     * deletions below and the families', before a session, child or
     * family is found free of bookings and demandes, and no batch runs
     * until the load commits (the families' upsert and deletion).
     */
    if (rc == 0) {
        rc = gchb_pg_exec(pg, "select pg_advisory_xact_lock("
                          GCHB_LOCK_PERSIST ")");
    }

    if (rc == 0) {
        /* a[0] is terminated: sessions gone from the file, no bookings */
        p[0] = a[0].buf.data;
        p[1] = only;
        rc = gchb_arr_exec_raw(pg, "session",
            "delete from session s where not exists (select 1 from"
            "   unnest($1::text[]) k(id) where k.id = s.id)"
            " and not exists (select 1 from booking b"
            "                 where b.session_id = s.id)"
            " and ($2::text is null or s.activity_id = $2)",
            p, 2, changed);
    }

    gchb_arr_free(a, 7);

    return rc;
}


/* See gchb.h. */
int
gchb_catalogue_store(PGconn *pg, const gch_town_t *t, const char *only,
    long *changed)
{
    if ((only == NULL && gchb_cat_units(pg, t, changed) != 0)
        || gchb_cat_activities(pg, t, only, changed) != 0
        || gchb_cat_prices(pg, t, only, changed) != 0)
    {
        return -1;
    }

    return gchb_cat_sessions(pg, t, only, changed);
}


/*
 * The seed of each draw activity (docs/rules.md, "Opening by draw"):
 * the one stored the first time the activity was loaded -- the town
 * file's "seed" or 32 random bytes in hex -- and never another after, so
 * that the seed the catalogue published before the entries stays the
 * draw's.  Sets act->draw_seed to a copy kept in seeds[] (freed by the
 * caller).  Inside the caller's transaction (load-town's, the office's
 * activity change).
 */
/* See gchb.h. */
int
gchb_draw_seeds(PGconn *pg, gch_town_t *t, char **seeds)
{
    char             fresh[65];
    size_t           i;
    unsigned char    rnd[32];
    const char      *p[2];
    PGresult        *res;
    gch_activity_t  *act;

    for (i = 0; i < t->nactivities; i++) {
        act = (gch_activity_t *) &t->activities[i];
        if (!act->draw) {
            continue;
        }

        randombytes_buf(rnd, sizeof(rnd));
        sodium_bin2hex(fresh, sizeof(fresh), rnd, sizeof(rnd));

        p[0] = act->id;
        p[1] = act->draw_seed ? act->draw_seed : fresh;
        res = PQexecParams(pg,
            "with i as (insert into draw_seed (activity_id, seed)"
            "   values ($1, $2) on conflict (activity_id) do nothing"
            "   returning seed)"
            " select seed from i union all"
            " select seed from draw_seed where activity_id = $1",
            2, NULL, p, NULL, NULL, 0);

        if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) < 1) {
            gchb_log("error", "draw_seed: %s", PQerrorMessage(pg));
            PQclear(res);
            return -1;
        }

        if (act->draw_seed && strcmp(act->draw_seed, PQgetvalue(res, 0, 0))
                              != 0)
        {
            gchb_log("warn", "activity \"%s\": its draw's seed is already "
                     "%s (published): the new one is not taken", act->id,
                     PQgetvalue(res, 0, 0));
        }

        seeds[i] = strdup(PQgetvalue(res, 0, 0));
        PQclear(res);
        if (seeds[i] == NULL) {
            return -1;
        }

        act->draw_seed = seeds[i];
    }

    return 0;
}
