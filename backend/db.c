/*
 * db.c -- PostgreSQL connection helpers and the migration runner.
 *
 * Migrations are the files sql/migrations/NNNN_<verb>_<object>.sql,
 * forward-only.  Each is applied in one transaction together with its
 * schema_migrations row, under a transaction-level advisory lock so that
 * two concurrent `guichetctl migrate` cannot apply one twice.  The first
 * migration creates schema_migrations itself; before it exists, no
 * migration counts as applied.
 */

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gchb.h"


/* See gchb.h. */
PGconn *
gchb_pg_connect(const gchb_conf_t *conf)
{
    int          n;
    PGconn      *pg;
    const char  *msg;

    pg = PQconnectdb(conf->postgres);
    if (pg == NULL || PQstatus(pg) != CONNECTION_OK) {
        msg = pg ? PQerrorMessage(pg) : "out of memory";
        n = (int) strlen(msg);
        while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' ')) {
            n--;
        }
        gchb_log("error", "cannot connect to postgres: %.*s (%s)", n, msg,
                 gchb_conf_note());
        if (pg) {
            PQfinish(pg);
        }
        return NULL;
    }

    /* no NOTICE lines on stderr ("relation exists, skipping") */
    PQclear(PQexec(pg, "set client_min_messages = warning"));

    /*
     * The persister XACKs a batch once its COMMIT returned: the commit
     * must be durable whatever the server's own setting, else a crash of
     * PostgreSQL loses acknowledged bookings (tests/fault/matrix.py,
     * postgres-kill9).
     */
    PQclear(PQexec(pg, "set synchronous_commit = on"));

    return pg;
}


/* See gchb.h. */
int
gchb_pg_exec(PGconn *pg, const char *sql)
{
    PGresult        *res;
    ExecStatusType   st;

    res = PQexec(pg, sql);
    st = PQresultStatus(res);

    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        gchb_log("error", "postgres: %s", PQerrorMessage(pg));
        PQclear(res);
        return -1;
    }

    PQclear(res);
    return 0;
}


static int
gchb_migration_name_ok(const char *name)
{
    size_t  n;
    int     i;

    n = strlen(name);
    if (n < 10 || strcmp(name + n - 4, ".sql") != 0) {
        return 0;
    }

    for (i = 0; i < 4; i++) {
        if (name[i] < '0' || name[i] > '9') {
            return 0;
        }
    }

    return name[4] == '_';
}


static int
gchb_strcmp(const void *a, const void *b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}


/* 1 applied, 0 already there, -1 error (rolled back). */
static int
gchb_migrate_one(PGconn *pg, const char *dir, const char *file)
{
    int          version, applied;
    char         path[4096], vbuf[16], name[256];
    char        *sql;
    size_t       len;
    PGresult    *res;
    const char  *params[2];

    version = atoi(file);
    snprintf(vbuf, sizeof(vbuf), "%d", version);
    snprintf(name, sizeof(name), "%.*s", (int) (strlen(file) - 9),
             file + 5);
    snprintf(path, sizeof(path), "%s/%s", dir, file);

    if (gchb_pg_exec(pg, "begin") != 0) {
        return -1;
    }

    if (gchb_pg_exec(pg, "select pg_advisory_xact_lock("
                     GCHB_LOCK_MIGRATE ")") != 0)
    {
        goto failed;
    }

    res = PQexec(pg, "select to_regclass('schema_migrations') is not null");
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        gchb_log("error", "postgres: %s", PQerrorMessage(pg));
        PQclear(res);
        goto failed;
    }

    applied = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);

    params[0] = vbuf;

    if (applied) {
        res = PQexecParams(pg,
                "select exists (select 1 from schema_migrations"
                "               where version = $1::integer)",
                1, NULL, params, NULL, NULL, 0);

        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
            gchb_log("error", "postgres: %s", PQerrorMessage(pg));
            PQclear(res);
            goto failed;
        }

        applied = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
        PQclear(res);
    }

    if (applied) {
        gchb_pg_exec(pg, "rollback");
        return 0;
    }

    if (gchb_read_file(path, &sql, &len) != 0) {
        gchb_log("error", "cannot read \"%s\": %s", path, strerror(errno));
        goto failed;
    }

    res = PQexec(pg, sql);
    free(sql);

    if (PQresultStatus(res) != PGRES_COMMAND_OK
        && PQresultStatus(res) != PGRES_TUPLES_OK)
    {
        gchb_log("error", "migration %s failed: %s", file,
                 PQerrorMessage(pg));
        PQclear(res);
        goto failed;
    }

    PQclear(res);

    params[1] = name;
    res = PQexecParams(pg,
            "insert into schema_migrations (version, name)"
            " values ($1::integer, $2)",
            2, NULL, params, NULL, NULL, 0);

    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        gchb_log("error", "migration %s: %s", file, PQerrorMessage(pg));
        PQclear(res);
        goto failed;
    }

    PQclear(res);

    if (gchb_pg_exec(pg, "commit") != 0) {
        return -1;
    }

    gchb_log("info", "applied migration %s", file);
    return 1;

failed:

    gchb_pg_exec(pg, "rollback");
    return -1;
}


/* See gchb.h. */
int
gchb_migrate(PGconn *pg, const char *dir, int *applied)
{
    int              rc;
    DIR             *d;
    char           **names, **nn;
    size_t           n, cap, i;
    struct dirent   *de;

    *applied = 0;

    d = opendir(dir);
    if (d == NULL) {
        gchb_log("error", "cannot open migrations_dir \"%s\": %s", dir,
                 strerror(errno));
        return -1;
    }

    names = NULL;
    n = 0;
    cap = 0;
    rc = 0;

    while ((de = readdir(d)) != NULL) {
        if (!gchb_migration_name_ok(de->d_name)) {
            continue;
        }

        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            nn = realloc(names, cap * sizeof(char *));
            if (nn == NULL) {
                rc = -1;
                break;
            }
            names = nn;
        }

        names[n] = strdup(de->d_name);
        if (names[n] == NULL) {
            rc = -1;
            break;
        }
        n++;
    }

    closedir(d);

    if (rc == 0 && n) {
        qsort(names, n, sizeof(char *), gchb_strcmp);

        for (i = 0; i < n; i++) {
            if (i && atoi(names[i]) == atoi(names[i - 1])) {
                gchb_log("error", "two migrations numbered %.4s",
                         names[i]);
                rc = -1;
                break;
            }
        }

        for (i = 0; rc == 0 && i < n; i++) {
            switch (gchb_migrate_one(pg, dir, names[i])) {
            case 1:
                (*applied)++;
                break;
            case 0:
                break;
            default:
                rc = -1;
            }
        }
    }

    for (i = 0; i < n; i++) {
        free(names[i]);
    }
    free(names);

    return rc;
}
