/*
 * load.c -- `guichetctl load-town FILE`: a town file into PostgreSQL.
 *
 * The engine parses the file (gch_town_parse: strict, calendars expanded,
 * first error named by its JSON path); nothing here reads JSON by hand.
 * Then one transaction upserts every table with one statement per table
 * (columns sent as PostgreSQL arrays and unnest()ed), each "on conflict
 * ... do update ... where (...) is distinct from (...)" so that loading the
 * same file twice rewrites no row.  Rows gone from the file are deleted
 * only when nothing durable points at them: a session, child or family
 * with bookings or demandes is kept.  The catalogue (gch_town_write of the
 * parsed file) is stored in the catalogue table, whose version grows only
 * when its text changes; the publisher sends that text to Redis.
 *
 * The file's town.id ("main" when absent) must be the town this
 * guichetctl serves (setting town).  The file must be the loaded town's
 * (same town name) and keep every family that has bookings, unless
 * --replace (gchc_load_guard): a reload updates the town, it never swaps
 * it for another by mistake.
 *
 * Passwords become argon2id hashes (crypto_pwhash_str, interactive limits);
 * a stored hash that already verifies the file's password is kept.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "gchc.h"


static const char *
gchc_enrol_status(int s)
{
    return s == GCH_ENROL_VALIDEE ? "validee"
           : s == GCH_ENROL_REFUSEE ? "refusee" : "demandee";
}


/* The stored hash if it verifies password, else a fresh one (malloc'ed).
 * NULL on failure. */
static char *
gchc_password_hash(PGconn *pg, const char *family_id, const char *password)
{
    char         *h;
    PGresult     *res;
    const char   *params[1];

    params[0] = family_id;
    res = PQexecParams(pg,
        "select password_hash from family where id = $1"
        " and password_hash is not null",
        1, NULL, params, NULL, NULL, 0);

    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1
        && crypto_pwhash_str_verify(PQgetvalue(res, 0, 0), password,
                                    strlen(password)) == 0)
    {
        h = strdup(PQgetvalue(res, 0, 0));
        PQclear(res);
        return h;
    }

    PQclear(res);

    h = malloc(crypto_pwhash_STRBYTES);
    if (h == NULL) {
        return NULL;
    }

    if (crypto_pwhash_str(h, password, strlen(password),
                          crypto_pwhash_OPSLIMIT_INTERACTIVE,
                          crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0)
    {
        free(h);
        return NULL;
    }

    return h;
}


/* The columns of the town's families, children and enrolments, as
 * PostgreSQL arrays a[0..15) (gchc_families_write's parameters); a
 * family's password is hashed here.  0, or -1 after logging. */
static int
gchc_families_arrays(PGconn *pg, const gch_town_t *t, gchb_arr_t *a)
{
    char                *hash;
    size_t               i, j;
    const gch_family_t  *f;

    for (i = 0; i < t->nfamilies; i++) {
        f = &t->families[i];
        hash = NULL;

        if (f->password) {
            hash = gchc_password_hash(pg, f->id, f->password);
            if (hash == NULL) {
                gchb_log("error", "load-town: cannot hash the password of "
                         "family \"%s\"", f->id);
                return -1;
            }
        }

        gchb_arr_str(&a[0], f->id);
        gchb_arr_str(&a[1], f->login);
        gchb_arr_str(&a[2], hash);
        free(hash);
        if (f->qf < 0) {
            gchb_arr_str(&a[3], NULL);
        } else {
            gchb_arr_int(&a[3], f->qf);
        }
        gchb_arr_str(&a[4], f->resident ? "true" : "false");
        gchb_arr_str(&a[5], f->direct_debit ? "true" : "false");

        for (j = 0; j < f->nchildren; j++) {
            gchb_arr_str(&a[6], f->children[j].id);
            gchb_arr_str(&a[7], f->id);
            gchb_arr_str(&a[8], f->children[j].first_name);
            gchb_arr_day(&a[9], f->children[j].birth_date);
        }

        for (j = 0; j < f->nenrolments; j++) {
            gchb_arr_str(&a[10], f->enrolments[j].child_id);
            gchb_arr_str(&a[11], f->enrolments[j].activity->id);
            gchb_arr_day(&a[12], f->enrolments[j].from);
            gchb_arr_day(&a[13], f->enrolments[j].to);
            gchb_arr_str(&a[14], gchc_enrol_status(f->enrolments[j].status));
        }
    }

    return 0;
}


/* The family's residence: the town file's, unless an agent decided it
 * when validating a new address in the office. */
#define GCHC_RESIDENT                                                        \
    "case when exists (select 1 from address_change c"                       \
    "   where c.family_id = family.id and c.status = 'validee'"              \
    "   and c.resident is not null) then family.resident"                    \
    " else excluded.resident end"


/* The family's quotient familial: the town file's, unless an agent
 * validated a change in the office (qf_change, migration 0024). */
#define GCHC_QF                                                              \
    "case when exists (select 1 from qf_change q"                            \
    "   where q.family_id = family.id and q.status = 'validee')"             \
    " then family.qf else excluded.qf end"


/* A family's login and password: the town file's, unless the file has
 * none and the family activated its account itself (« Créer mon
 * espace », migration 0023). */
#define GCHC_KEEP_OWN                                                        \
    "(excluded.login is null and family.activated_at is not null)"
#define GCHC_LOGIN                                                           \
    "case when " GCHC_KEEP_OWN " then family.login else excluded.login end"
#define GCHC_PASSWORD                                                        \
    "case when " GCHC_KEEP_OWN " then family.password_hash"                  \
    " else excluded.password_hash end"


/* The families, children and enrolments of the arrays p[0..15) written,
 * and those no longer in the town deleted (unless bookings keep them).
 * 0 or -1. */
static int
gchc_families_write(PGconn *pg, const char **p, long *changed)
{
    /* logins may move between families within one file: free them first */
    if (gchb_arr_exec_raw(pg, "family",
            "update family f set login = null"
            " from unnest($1::text[], $2::text[]) k(id, login)"
            " where f.id = k.id and f.login is not null"
            "   and f.login is distinct from k.login"
            /* an account the family activated itself (migration 0023) */
            "   and not (k.login is null and f.activated_at is not null)",
            p, 2, changed) != 0
        || gchb_arr_exec_raw(pg, "family",
            "update family set login = null where login is not null"
            " and not exists (select 1 from unnest($1::text[]) k(id)"
            "   where k.id = family.id)",
            p, 1, changed) != 0
        || gchb_arr_exec_raw(pg, "family",
            "insert into family (id, login, password_hash, qf, resident,"
            "   direct_debit)"
            " select * from unnest($1::text[], $2::text[], $3::text[],"
            "   $4::int[], $5::boolean[], $6::boolean[])"
            " on conflict (id) do update set login = " GCHC_LOGIN ","
            "   password_hash = " GCHC_PASSWORD ", qf = " GCHC_QF ","
            /* a residence decided in the office outlives a town reload
             * (address_change, migration 0022) */
            "   resident = " GCHC_RESIDENT ","
            /* a mandate signed in the office outlives a town reload */
            "   direct_debit = excluded.direct_debit or exists (select 1"
            "     from direct_debit_mandate m where m.family_id = family.id"
            "     and m.ended_at is null)"
            " where (family.login, family.password_hash, family.qf,"
            "   family.resident, family.direct_debit) is distinct from"
            "   (" GCHC_LOGIN ", " GCHC_PASSWORD ", " GCHC_QF ","
            "   " GCHC_RESIDENT ", excluded.direct_debit)",
            p, 6, changed) != 0
        || gchb_arr_exec_raw(pg, "child",
            "insert into child (id, family_id, first_name, birth_date)"
            " select * from unnest($1::text[], $2::text[], $3::text[],"
            "   $4::date[])"
            " on conflict (id) do update set family_id = excluded.family_id,"
            "   first_name = excluded.first_name,"
            "   birth_date = excluded.birth_date"
            " where (child.family_id, child.first_name, child.birth_date)"
            "   is distinct from (excluded.family_id, excluded.first_name,"
            "   excluded.birth_date)",
            p + 6, 4, changed) != 0
        || gchb_arr_exec_raw(pg, "enrolment",
            "insert into enrolment (child_id, activity_id, from_date,"
            "   to_date, status)"
            " select * from unnest($1::text[], $2::text[], $3::date[],"
            "   $4::date[], $5::text[])"
            " on conflict (child_id, activity_id, from_date) do update"
            "   set to_date = excluded.to_date, status = excluded.status"
            " where (enrolment.to_date, enrolment.status) is distinct from"
            "   (excluded.to_date, excluded.status)"
            /* decisions and requests of the office win (migration 0008) */
            "   and enrolment.origin = 'town'"
            "   and enrolment.decided_at is null",
            p + 10, 5, changed) != 0
        || gchb_arr_exec_raw(pg, "enrolment",
            "delete from enrolment e where not exists (select 1 from"
            "   unnest($1::text[], $2::text[], $3::date[]) k(c, a, f)"
            "   where k.c = e.child_id and k.a = e.activity_id"
            "   and k.f = e.from_date)"
            " and e.origin = 'town'",
            p + 10, 3, changed) != 0
        || gchb_arr_exec_raw(pg, "child",
            "delete from child c where not exists (select 1 from"
            "   unnest($1::text[]) k(id) where k.id = c.id)"
            " and not exists (select 1 from booking b"
            "                 where b.child_id = c.id)",
            p + 6, 1, changed) != 0
        || gchb_arr_exec_raw(pg, "family",
            "delete from family f where not exists (select 1 from"
            "   unnest($1::text[]) k(id) where k.id = f.id)"
            " and not exists (select 1 from demande d"
            "                 where d.family_id = f.id)"
            " and not exists (select 1 from child c"
            "                 where c.family_id = f.id)",
            p, 1, changed) != 0)
    {
        return -1;
    }

    return 0;
}


static int
gchc_load_families(PGconn *pg, const gch_town_t *t, long *changed)
{
    int          rc;
    size_t       i;
    gchb_arr_t   a[16];
    const char  *p[16];

    memset(a, 0, sizeof(a));
    rc = -1;

    if (gchc_families_arrays(pg, t, a) != 0) {
        goto done;
    }

    for (i = 0; i < 15; i++) {
        p[i] = gchb_arr_end(&a[i]);
        if (p[i] == NULL) {
            gchb_log("error", "out of memory");
            goto done;
        }
    }

    rc = gchc_families_write(pg, p, changed);

done:

    gchb_arr_free(a, 16);

    return rc;
}


static int
gchc_load_town_row(PGconn *pg, const gch_town_t *t, const char *catalogue,
    long *changed)
{
    int          rc;
    size_t       i;
    gchb_arr_t   a[2];
    const char  *p[3];

    p[0] = t->name;
    p[1] = t->timezone ? t->timezone : "Europe/Paris";
    p[2] = gchb_town;

    if (gchb_arr_exec_raw(pg, "town",
            "insert into town (id, name, timezone, town_id)"
            " values (1, $1, $2, $3)"
            " on conflict (id) do update set name = excluded.name,"
            "   timezone = excluded.timezone, town_id = excluded.town_id"
            " where (town.name, town.timezone, town.town_id)"
            "   is distinct from"
            "   (excluded.name, excluded.timezone, excluded.town_id)",
            p, 3, changed) != 0)
    {
        return -1;
    }

    if (gchb_arr_exec_raw(pg, "catalogue",
            "insert into catalogue (id, version, json) values (1, 1, $1)"
            " on conflict (id) do update"
            "   set version = catalogue.version + 1, json = excluded.json,"
            "   updated_at = now()"
            " where catalogue.json is distinct from excluded.json",
            &catalogue, 1, changed) != 0)
    {
        return -1;
    }

    /* units and activities gone from the file that no session uses */
    memset(a, 0, sizeof(a));
    for (i = 0; i < t->nactivities; i++) {
        gchb_arr_str(&a[0], t->activities[i].id);
    }
    for (i = 0; i < t->nunits; i++) {
        gchb_arr_str(&a[1], t->units[i].code);
    }
    p[0] = gchb_arr_end(&a[0]);
    p[1] = gchb_arr_end(&a[1]);

    rc = -1;
    if (p[0] && p[1]
        && gchb_arr_exec_raw(pg, "activity",
            "delete from activity a where not exists (select 1 from"
            "   unnest($1::text[]) k(id) where k.id = a.id)"
            " and not exists (select 1 from session s"
            "                 where s.activity_id = a.id)",
            p, 1, changed) == 0
        && gchb_arr_exec_raw(pg, "unit",
            "delete from unit u where not exists (select 1 from"
            "   unnest($1::text[]) k(code) where k.code = u.code)"
            " and not exists (select 1 from session s"
            "                 where s.unit_code = u.code)",
            p + 1, 1, changed) == 0)
    {
        rc = 0;
    }

    gchb_arr_free(a, 2);

    return rc;
}


/* The activities' required documents and the families' documents of the
 * file, as rows for guichet-office (migration 0021): rebuilt from the
 * catalogue row just stored. */
static int
gchc_load_documents(PGconn *pg, long *changed)
{
    PGresult  *res;

    res = PQexec(pg, "select town_documents_sync()");

    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        gchb_log("error", "load-town: documents: %s", PQerrorMessage(pg));
        PQclear(res);
        return -1;
    }

    *changed += atol(PQgetvalue(res, 0, 0));
    PQclear(res);

    return 0;
}


/*
 * Without --replace, a load must not take the database from the town it
 * serves: a file of another town (another name), or one that drops
 * families that have bookings, is refused.  0 to go on, -1 after printing
 * why (the caller rolls back).
 */
static int
gchc_load_guard(PGconn *pg, const gch_town_t *t, const char *path)
{
    int          i, n, rc;
    size_t       k;
    gchb_arr_t   ids;
    PGresult    *res;
    const char  *p[1];

    res = PQexec(pg, "select name from town where id = 1");
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        gchb_log("error", "load-town: town: %s", PQerrorMessage(pg));
        PQclear(res);
        return -1;
    }

    if (PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), t->name) != 0)
    {
        fprintf(stderr, "guichetctl: %s is the town \"%s\", this database "
                "serves the town \"%s\": refused, nothing loaded (give "
                "--replace to load it over \"%s\")\n", path, t->name,
                PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 0));
        PQclear(res);
        return -1;
    }

    PQclear(res);

    memset(&ids, 0, sizeof(ids));
    for (k = 0; k < t->nfamilies; k++) {
        gchb_arr_str(&ids, t->families[k].id);
    }
    p[0] = gchb_arr_end(&ids);
    if (p[0] == NULL) {
        gchb_log("error", "out of memory");
        gchb_arr_free(&ids, 1);
        return -1;
    }

    res = PQexecParams(pg,
        "select b.family_id, count(*) from booking b"
        " where not exists (select 1 from unnest($1::text[]) k(id)"
        "   where k.id = b.family_id)"
        " group by b.family_id order by b.family_id",
        1, NULL, p, NULL, NULL, 0);
    gchb_arr_free(&ids, 1);

    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        gchb_log("error", "load-town: booking: %s", PQerrorMessage(pg));
        PQclear(res);
        return -1;
    }

    n = PQntuples(res);
    rc = 0;

    if (n > 0) {
        fprintf(stderr, "guichetctl: %s drops %d famil%s that ha%s "
                "bookings (", path, n, n == 1 ? "y" : "ies",
                n == 1 ? "s" : "ve");
        for (i = 0; i < n && i < 5; i++) {
            fprintf(stderr, "%s%s: %s", i ? ", " : "", PQgetvalue(res, i, 0),
                    PQgetvalue(res, i, 1));
        }
        fprintf(stderr, "%s): refused, nothing loaded (give --replace to "
                "load it anyway)\n", n > 5 ? ", ..." : "");
        rc = -1;
    }

    PQclear(res);

    return rc;
}


/* See gchc.h. */
int
gchc_load_town(PGconn *pg, const char *path, int replace)
{
    int           rc;
    char         *json, *cat, **seeds;
    size_t        i, len, cat_len;
    long          changed;
    gch_town_t   *t;
    gch_error_t   err;

    if (gchb_read_file(path, &json, &len) != 0) {
        fprintf(stderr, "guichetctl: cannot read \"%s\"\n", path);
        return -1;
    }

    memset(&err, 0, sizeof(err));
    t = NULL;
    rc = gch_town_parse(&t, json, len, &gch_alloc_std, &err);
    free(json);

    if (rc != GCH_OK) {
        fprintf(stderr, "guichetctl: %s: %s (%s)\n", path,
                err.message[0] ? err.message : "invalid town file",
                err.code ? err.code : "invalid");
        return -1;
    }

    /* the file must be the town this run works on (--town, the setting) */
    if (strcmp(t->id, gchb_town) != 0) {
        fprintf(stderr, "guichetctl: %s: the file is town \"%s\" but this "
                "guichetctl works on town \"%s\" (--town, else the setting "
                "town in %s): nothing loaded\n", path, t->id, gchb_town,
                gchb_conf_source() ? gchb_conf_source() : "no settings file");
        gch_town_free(t);
        return -1;
    }

    cat = NULL;
    changed = 0;
    seeds = calloc(t->nactivities + 1, sizeof(char *));
    if (seeds == NULL) {
        gch_town_free(t);
        return -1;
    }

    if (gchb_pg_exec(pg, "begin") != 0) {
        rc = -1;
        goto done;
    }

    /* the draws' seeds, then the catalogue that publishes them */
    if (gchb_draw_seeds(pg, t, seeds) != 0
        || gch_town_write(t, &cat, &cat_len, &gch_alloc_std) != GCH_OK)
    {
        gchb_pg_exec(pg, "rollback");
        fprintf(stderr, "guichetctl: cannot write the catalogue\n");
        rc = -1;
        goto done;
    }

    /* one loader at a time; the persister waits from the deletions on */
    if (gchb_pg_exec(pg, "select pg_advisory_xact_lock("
                     GCHB_LOCK_INVOICE ")") != 0
        || (!replace && gchc_load_guard(pg, t, path) != 0)
        || gchb_catalogue_store(pg, t, NULL, &changed) != 0
        || gchc_load_families(pg, t, &changed) != 0
        || gchc_load_town_row(pg, t, cat, &changed) != 0
        || gchc_load_documents(pg, &changed) != 0
        || gchb_pg_exec(pg, "commit") != 0)
    {
        gchb_pg_exec(pg, "rollback");
        fprintf(stderr, "guichetctl: %s: nothing loaded\n", path);
        rc = -1;
        goto done;
    }

    gchb_log("info", "loaded \"%s\": %zu activities, %zu sessions, "
             "%zu families, %ld rows changed", path, t->nactivities,
             t->nsessions, t->nfamilies, changed);

    rc = changed ? 0 : 1;

done:

    gch_alloc_std.free(gch_alloc_std.ctx, cat);
    for (i = 0; i < t->nactivities; i++) {
        free(seeds[i]);
    }
    free(seeds);
    gch_town_free(t);

    return rc;
}
