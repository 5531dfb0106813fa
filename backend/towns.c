/*
 * towns.c -- the towns of one PostgreSQL database (issue 21).
 *
 * Each town's rows live in a schema of their own, "town_<id>" (the town
 * id with '-' written '_', which ids never hold: one schema per id), made
 * by the same migrations as any other town's; public.platform_town lists
 * the towns.  So every row carries its town by where it lives, ids and
 * numbers are the town's own (two towns may both have a family
 * "f-martin", a session "alsh-2027-07-07-MATIN", a demande 1 and an
 * invoice 1: each town's régie numbers its invoices from 1 without gaps)
 * and no statement of a program can reach another town's rows: a
 * connection's search_path names one town's schema (gchb_pg_town), set
 * when the program turns to that town.
 *
 * A database of the layout before towns has its tables in public: the
 * first `guichetctl migrate` moves them, with their sequences, indexes,
 * triggers and functions, into the configured town's schema (the town
 * whose file was loaded; load-town refuses another town's file), in one
 * transaction with the migration runner's lock; values and identities
 * are kept.  The first town of a database becomes its default
 * search_path (ALTER DATABASE), so that psql and scripts written for one
 * town keep reading it; programs always set theirs.
 */

#include <stdio.h>
#include <string.h>

#include "gchb.h"


/* See gchb.h. */
void
gchb_town_schema(const char *town, char out[GCHB_SCHEMA_MAX])
{
    size_t  i;

    snprintf(out, GCHB_SCHEMA_MAX, "town_%s", town);

    for (i = 5; out[i]; i++) {
        if (out[i] == '-') {
            out[i] = '_';
        }
    }
}


/* See gchb.h. */
int
gchb_pg_town(PGconn *pg, const char *town)
{
    int          rc;
    char         schema[GCHB_SCHEMA_MAX];
    PGresult    *res;
    const char  *params[1];

    gchb_town_schema(town, schema);
    params[0] = schema;

    res = PQexecParams(pg,
            "select to_regnamespace(quote_ident($1)) is not null,"
            "       set_config('search_path', quote_ident($1), false)",
            1, NULL, params, NULL, NULL, 0);

    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        gchb_log("error", "postgres: %s", PQerrorMessage(pg));
        PQclear(res);
        return -1;
    }

    rc = strcmp(PQgetvalue(res, 0, 0), "t") == 0 ? 0 : 1;
    PQclear(res);

    gchb_town_set(town);

    return rc;
}


/* See gchb.h. */
int
gchb_pg_towns(PGconn *pg, char (*ids)[GCH_TOWN_ID_MAX + 1], int max)
{
    int        i, n;
    PGresult  *res;

    res = PQexec(pg, "select to_regclass('public.platform_town') is null");

    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        gchb_log("error", "postgres: %s", PQerrorMessage(pg));
        PQclear(res);
        return -1;
    }

    n = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);

    if (n) {
        return 0;               /* not migrated since towns: none yet */
    }

    res = PQexec(pg, "select id from public.platform_town order by id");

    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        gchb_log("error", "postgres: %s", PQerrorMessage(pg));
        PQclear(res);
        return -1;
    }

    n = PQntuples(res);
    if (n > max) {
        gchb_log("warn", "%d towns in the database, serving the first %d",
                 n, max);
        n = max;
    }

    for (i = 0; i < n; i++) {
        snprintf(ids[i], GCH_TOWN_ID_MAX + 1, "%s", PQgetvalue(res, i, 0));
    }

    PQclear(res);

    return n;
}


/*
 * The registry, the move of a database of the layout before towns into
 * legacy's schema, and town's schema when it is not there; one
 * transaction.  1 when the town was created, 0 when it was there, -1.
 */
static int
gchb_towns_prepare(PGconn *pg, const char *legacy, const char *town)
{
    int          rc, first, moved;
    char         schema[GCHB_SCHEMA_MAX], lschema[GCHB_SCHEMA_MAX];
    PGresult    *res;
    const char  *params[4];

    gchb_town_schema(legacy, lschema);
    gchb_town_schema(town, schema);

    if (gchb_pg_exec(pg, "begin") != 0) {
        return -1;
    }

    if (gchb_pg_exec(pg, "select pg_advisory_xact_lock("
                     GCHB_LOCK_MIGRATE ")") != 0
        || gchb_pg_exec(pg,
            "create table if not exists public.platform_town ("
            "  id          text        not null,"
            "  schema_name text        not null,"
            "  created_at  timestamptz not null default now(),"
            "  constraint platform_town_pkey primary key (id),"
            "  constraint platform_town_schema_key unique (schema_name),"
            "  constraint platform_town_id check"
            "      (id ~ '^[a-z0-9-]{1,40}$'))") != 0)
    {
        goto failed;
    }

    /*
     * The layout before towns: every object of Guichet's in public (not
     * an extension's, not the registry) goes to legacy's schema.  Indexes,
     * constraints, triggers and identity sequences follow their table.
     */
    params[0] = legacy;
    params[1] = lschema;

    res = PQexecParams(pg,
        "select set_config('guichet.legacy_schema', $1, true)"
        " where to_regclass('public.schema_migrations') is not null",
        1, NULL, params + 1, NULL, NULL, 0);
    rc = PQresultStatus(res) == PGRES_TUPLES_OK ? PQntuples(res) : -1;
    PQclear(res);

    if (rc < 0) {
        gchb_log("error", "postgres: %s", PQerrorMessage(pg));
        goto failed;
    }

    moved = rc;

    if (rc == 1) {
        if (gchb_pg_exec(pg,
            "do $$\n"
            "declare\n"
            "    s text := current_setting('guichet.legacy_schema');\n"
            "    r record;\n"
            "begin\n"
            "    execute format('create schema %I', s);\n"
            "    for r in select c.oid, c.relname, c.relkind\n"
            "             from pg_class c\n"
            "             where c.relnamespace = 'public'::regnamespace\n"
            "               and c.relkind in ('r', 'p', 'v', 'm', 'S')\n"
            "               and c.relname <> 'platform_town'\n"
            "               and not exists (select 1 from pg_depend d\n"
            "                   where d.classid = 'pg_class'::regclass\n"
            "                     and d.objid = c.oid\n"
            "                     and d.deptype in ('e', 'a', 'i'))\n"
            "    loop\n"
            "        execute format('alter %s public.%I set schema %I',\n"
            "            case r.relkind when 'v' then 'view'\n"
            "                 when 'm' then 'materialized view'\n"
            "                 when 'S' then 'sequence' else 'table' end,\n"
            "            r.relname, s);\n"
            "    end loop;\n"
            "    for r in select p.oid::regprocedure as f from pg_proc p\n"
            "             where p.pronamespace = 'public'::regnamespace\n"
            "               and not exists (select 1 from pg_depend d\n"
            "                   where d.classid = 'pg_proc'::regclass\n"
            "                     and d.objid = p.oid\n"
            "                     and d.deptype = 'e')\n"
            "    loop\n"
            "        execute format('alter routine %s set schema %I',\n"
            "                       r.f, s);\n"
            "    end loop;\n"
            "end\n"
            "$$") != 0)
        {
            goto failed;
        }

        res = PQexecParams(pg,
                "insert into public.platform_town (id, schema_name)"
                " values ($1, $2)",
                2, NULL, params, NULL, NULL, 0);
        rc = PQresultStatus(res) == PGRES_COMMAND_OK ? 0 : -1;
        PQclear(res);

        if (rc != 0) {
            gchb_log("error", "postgres: %s", PQerrorMessage(pg));
            goto failed;
        }

        gchb_log("info", "the tables of the layout before towns moved into"
                 " schema %s (town \"%s\")", lschema, legacy);
    }

    /* town's schema, when it is not listed yet */
    params[0] = town;
    params[1] = schema;

    res = PQexecParams(pg,
            "select not exists (select 1 from public.platform_town"
            "                   where id = $1),"
            "       not exists (select 1 from public.platform_town)",
            1, NULL, params, NULL, NULL, 0);

    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        gchb_log("error", "postgres: %s", PQerrorMessage(pg));
        PQclear(res);
        goto failed;
    }

    rc = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    first = moved || strcmp(PQgetvalue(res, 0, 1), "t") == 0;
    PQclear(res);

    if (rc) {
        res = PQexecParams(pg,
                "select set_config('guichet.new_schema', $1, true)",
                1, NULL, params + 1, NULL, NULL, 0);
        PQclear(res);

        if (gchb_pg_exec(pg,
                "do $$ begin execute format('create schema if not exists %I',"
                " current_setting('guichet.new_schema')); end $$") != 0)
        {
            goto failed;
        }

        res = PQexecParams(pg,
                "insert into public.platform_town (id, schema_name)"
                " values ($1, $2)",
                2, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            gchb_log("error", "postgres: %s", PQerrorMessage(pg));
            PQclear(res);
            goto failed;
        }

        PQclear(res);
        gchb_log("info", "town \"%s\" created (schema %s)", town, schema);
    }

    /* the first town: what psql reads by default */
    if (first) {
        if (gchb_pg_exec(pg,
                "do $$ begin execute format("
                "'alter database %I set search_path = %I',"
                " current_database(),"
                " (select schema_name from public.platform_town"
                "  order by created_at, id limit 1)); end $$") != 0)
        {
            goto failed;
        }
    }

    if (gchb_pg_exec(pg, "commit") != 0) {
        return -1;
    }

    return rc;

failed:

    gchb_pg_exec(pg, "rollback");
    return -1;
}


/* See gchb.h. */
int
gchb_migrate_towns(PGconn *pg, const char *dir, const char *legacy,
    const char *town, int *applied)
{
    int   i, n, one;
    char  ids[GCHB_TOWNS_MAX][GCH_TOWN_ID_MAX + 1];

    *applied = 0;

    if (gchb_towns_prepare(pg, legacy, town ? town : legacy) < 0) {
        return -1;
    }

    n = gchb_pg_towns(pg, ids, GCHB_TOWNS_MAX);
    if (n < 0) {
        return -1;
    }

    for (i = 0; i < n; i++) {
        if (gchb_pg_town(pg, ids[i]) != 0
            || gchb_migrate(pg, dir, &one) != 0)
        {
            gchb_log("error", "town \"%s\": migrations stopped", ids[i]);
            return -1;
        }

        *applied += one;
    }

    return 0;
}
