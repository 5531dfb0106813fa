/*
 * store.c -- guichet-office's PostgreSQL and Redis: the connections of
 * gcho_ctx (made again when they broke; 503 `unavailable` when they
 * cannot be), statements and transactions, the audit log, the outbox,
 * and the few checks and marks several handlers share.
 *
 * Only the server's thread uses them (http.c), so they need no lock.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "office.h"


/* ------------------------------------------------------------------ */
/* PostgreSQL and Redis                                                 */

/* See office.h. */
const char *
gcho_site_url(gcho_req_t *rq)
{
    size_t       n, tl;
    const char  *p, *u;
    static char  url[1024];

    u = gcho_ctx.conf.town_site_url;

    if (u[0] == '\0' || strcmp(rq->town, gcho_ctx.conf.town) == 0) {
        return gcho_ctx.conf.site_url;
    }

    n = 0;
    tl = strlen(rq->town);

    for (p = u; *p && n + tl + 1 < sizeof(url); p++) {
        if (strncmp(p, "{town}", 6) == 0) {
            memcpy(url + n, rq->town, tl);
            n += tl;
            p += 5;

        } else {
            url[n++] = *p;
        }
    }

    url[n] = '\0';

    return url;
}


/* See office.h. */
void
gcho_town_use(gcho_req_t *rq)
{
    gchb_town_set(rq->town);
}


/* The connection's search_path is the request's town's: pg, or NULL
 * after answering (404 unknown_town, 503). */
static PGconn *
gcho_pg_town(gcho_req_t *rq, PGconn *pg)
{
    if (strcmp(gcho_ctx.pg_town, rq->town) == 0) {
        return pg;
    }

    switch (gchb_pg_town(pg, rq->town)) {

    case 0:
        snprintf(gcho_ctx.pg_town, sizeof(gcho_ctx.pg_town), "%s",
                 rq->town);
        return pg;

    case 1:
        gcho_ctx.pg_town[0] = '\0';
        gcho_error(rq, 404, "unknown_town",
                   "Cette commune n'est pas servie ici.");
        return NULL;

    default:
        gcho_ctx.pg_town[0] = '\0';
        gcho_unavailable(rq);
        return NULL;
    }
}


PGconn *
gcho_pg(gcho_req_t *rq)
{
    if (gcho_ctx.pg != NULL && PQstatus(gcho_ctx.pg) == CONNECTION_OK) {
        return gcho_pg_town(rq, gcho_ctx.pg);
    }

    gcho_ctx.pg_town[0] = '\0';

    if (gcho_ctx.pg != NULL) {
        PQreset(gcho_ctx.pg);
        if (PQstatus(gcho_ctx.pg) == CONNECTION_OK) {
            /* gchb_pg_connect's settings again */
            PQclear(PQexec(gcho_ctx.pg, "set client_min_messages = warning"));
            PQclear(PQexec(gcho_ctx.pg, "set synchronous_commit = on"));
            return gcho_pg_town(rq, gcho_ctx.pg);
        }
        PQfinish(gcho_ctx.pg);
    }

    gcho_ctx.pg = gchb_pg_connect(&gcho_ctx.conf);
    if (gcho_ctx.pg == NULL) {
        gcho_unavailable(rq);
        return NULL;
    }

    return gcho_pg_town(rq, gcho_ctx.pg);
}


redisContext *
gcho_redis(gcho_req_t *rq)
{
    if (gcho_ctx.redis != NULL && gcho_ctx.redis->err == 0) {
        return gcho_ctx.redis;
    }

    if (gcho_ctx.redis != NULL) {
        redisFree(gcho_ctx.redis);
    }

    gcho_ctx.redis = gchb_redis_connect(&gcho_ctx.conf);
    if (gcho_ctx.redis == NULL) {
        gcho_unavailable(rq);
    }

    return gcho_ctx.redis;
}


void
gcho_redis_drop_broken(void)
{
    if (gcho_ctx.redis != NULL && gcho_ctx.redis->err) {
        redisFree(gcho_ctx.redis);
        gcho_ctx.redis = NULL;
    }
}


PGresult *
gcho_sql(gcho_req_t *rq, const char *sql, int n, const char *const *params)
{
    PGconn          *pg;
    PGresult        *res;
    ExecStatusType   st;

    pg = gcho_pg(rq);
    if (pg == NULL) {
        return NULL;
    }

    res = PQexecParams(pg, sql, n, NULL, params, NULL, NULL, 0);
    st = PQresultStatus(res);

    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
        return res;
    }

    gchb_log("error", "office: postgres: %s (%.80s)",
             PQresultErrorMessage(res), sql);
    PQclear(res);

    if (PQtransactionStatus(pg) == PQTRANS_INERROR) {
        res = PQexec(pg, "rollback");
        PQclear(res);
    }

    gcho_unavailable(rq);
    return NULL;
}


/* ------------------------------------------------------------------ */
/* the shapes of statements (see office.h): one place that tells a     */
/* database error (answered 503) from "no row"                          */

int
gcho_sql_do(gcho_req_t *rq, const char *sql, int n, const char *const *params)
{
    PGresult  *res;

    res = gcho_sql(rq, sql, n, params);
    if (res == NULL) {
        return -1;
    }

    PQclear(res);
    return 0;
}


int
gcho_sql_exists(gcho_req_t *rq, const char *sql, int n,
    const char *const *params)
{
    int        found;
    PGresult  *res;

    res = gcho_sql(rq, sql, n, params);
    if (res == NULL) {
        return -1;
    }

    found = PQntuples(res) > 0;
    PQclear(res);

    return found;
}


int
gcho_sql_changed(gcho_req_t *rq, const char *sql, int n,
    const char *const *params)
{
    int        changed;
    PGresult  *res;

    res = gcho_sql(rq, sql, n, params);
    if (res == NULL) {
        return -1;
    }

    changed = atoi(PQcmdTuples(res));
    PQclear(res);

    return changed;
}


int
gcho_sql_value(gcho_req_t *rq, char *out, size_t size, const char *sql,
    int n, const char *const *params)
{
    int        found;
    PGresult  *res;

    /* out may be one of params: written once the statement has run */
    res = gcho_sql(rq, sql, n, params);
    if (res == NULL) {
        out[0] = '\0';
        return -1;
    }

    found = PQntuples(res) > 0 && PQnfields(res) > 0;
    snprintf(out, size, "%s", found ? PQgetvalue(res, 0, 0) : "");

    PQclear(res);
    return found;
}


int
gcho_sql_row(gcho_req_t *rq, PGresult **res, const char *missing,
    const char *sql, int n, const char *const *params)
{
    *res = gcho_sql(rq, sql, n, params);
    if (*res == NULL) {
        return 0;
    }

    if (PQntuples(*res) != 1) {
        PQclear(*res);
        *res = NULL;
        gcho_rollback();
        return gcho_error(rq, 404, "not_found", missing);
    }

    return GCHO_GO;
}


int
gcho_begin(gcho_req_t *rq)
{
    return gcho_sql_do(rq, "begin", 0, NULL);
}


int
gcho_commit(gcho_req_t *rq)
{
    return gcho_sql_do(rq, "commit", 0, NULL);
}


void
gcho_rollback(void)
{
    PGresult  *res;

    if (gcho_ctx.pg != NULL
        && PQtransactionStatus(gcho_ctx.pg) != PQTRANS_IDLE)
    {
        res = PQexec(gcho_ctx.pg, "rollback");
        PQclear(res);
    }
}


int
gcho_audit(gcho_req_t *rq, const char *action, const char *target,
    const char *detail_json)
{
    char         who[GCHO_ID_MAX + 8];
    const char  *p[5];

    if (rq->staff[0]) {
        snprintf(who, sizeof(who), "%s", rq->staff);
    } else if (rq->family_id[0]) {
        snprintf(who, sizeof(who), "family:%s", rq->family_id);
    } else {
        snprintf(who, sizeof(who), "system");
    }

    p[0] = who;
    p[1] = action;
    p[2] = target ? target : "";
    p[3] = detail_json ? detail_json : "{}";
    p[4] = rq->ip[0] ? rq->ip : NULL;

    return gcho_sql_do(rq,
               "insert into audit_log (actor, action, target, detail, ip)"
               " values ($1, $2, $3, $4::jsonb, $5)", 5, p);
}


int
gcho_audit_kv(gcho_req_t *rq, const char *action, const char *target,
    const char *const *kv, size_t n)
{
    int          rc;
    char        *text;
    size_t       i, len;
    gch_jout_t   o;

    if (gch_jout_init(&o, &gch_alloc_std) != 0) {
        goto failed;
    }

    yajl_gen_map_open(o.g);
    for (i = 0; i < n; i++) {
        gch_jout_cstr(&o, kv[2 * i]);
        if (kv[2 * i + 1] == NULL) {
            yajl_gen_null(o.g);
        } else {
            gch_jout_cstr(&o, kv[2 * i + 1]);
        }
    }
    yajl_gen_map_close(o.g);

    if (gch_jout_detach(&o, &text, &len) != 0) {
        goto failed;
    }

    rc = gcho_audit(rq, action, target, text);
    free(text);
    return rc;

failed:

    gcho_error(rq, 500, "internal", "Une erreur interne est survenue.");
    return -1;
}


int
gcho_reply_row(gcho_req_t *rq, int status, const char *sql, int n,
    const char *const *params, const char *missing)
{
    int        rc;
    PGresult  *res;

    res = gcho_sql(rq, sql, n, params);
    if (res == NULL) {
        return 0;
    }

    if (PQntuples(res) != 1 || PQgetisnull(res, 0, 0)) {
        PQclear(res);
        return gcho_error(rq, 404, "not_found", missing);
    }

    rc = gcho_reply(rq, status, PQgetvalue(res, 0, 0),
                    PQgetlength(res, 0, 0));
    PQclear(res);

    return rc;
}


int
gcho_mail(gcho_req_t *rq, const char *family_id, const char *kind,
    const char *ref, const char *subject, const char *body)
{
    const char  *p[5];

    p[0] = family_id;
    p[1] = kind;
    p[2] = ref;
    p[3] = subject;
    p[4] = body;

    return gcho_sql_do(rq,
               "insert into outbox (family_id, kind, ref, subject, body)"
               " values ($1, $2, $3, $4, $5)"
               " on conflict (kind, ref) do nothing", 5, p);
}


/* See office.h (enrolment requests and document uploads). */
int
gcho_family_child(gcho_req_t *rq, const char *child)
{
    int          rc;
    const char  *p[2];

    p[0] = child;
    p[1] = rq->family_id;
    rc = gcho_sql_exists(rq, "select 1 from child where id = $1"
                             " and family_id = $2", 2, p);
    if (rc < 0) {
        return 0;
    }

    if (rc == 0) {
        gcho_rollback();
        return gcho_error(rq, 403, "forbidden",
                          "Cet enfant n'appartient pas à votre famille.");
    }

    return GCHO_GO;
}


int
gcho_catalogue_changed(gcho_req_t *rq)
{
    return gcho_sql_do(rq, "update catalogue set version = version + 1,"
                           " updated_at = now() where id = 1", 0, NULL);
}
