/*
 * ngx_http_guichet_views.c -- what is only read: the sessions of an
 * activity, the family's planning and demandes (views the engine plans
 * and renders from one Redis round trip), the family and the activities
 * (from the catalogue alone), invoices, and health.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "gch_keys.h"
#include "ngx_http_guichet_api.h"


/* An engine's plan of a read view: the town, and the family if a family's. */
typedef int (*ngx_http_guichet_plan_pt)(ngx_http_request_t *r,
    ngx_http_guichet_call_t *call, gch_town_t *town,
    const gch_family_t *family, gch_view_t **view, gch_error_t *err);

/* An engine's rendering from the catalogue alone. */
typedef int (*ngx_http_guichet_render_pt)(gch_town_t *town,
    const gch_family_t *family, char **body, size_t *len);


static ngx_int_t ngx_http_guichet_view_town(ngx_http_request_t *r,
    ngx_http_guichet_call_t *call, ngx_uint_t need_family, gch_town_t **town,
    const gch_family_t **family);
static ngx_int_t ngx_http_guichet_view_plan(ngx_http_request_t *r,
    ngx_http_guichet_call_t *call, ngx_uint_t need_family,
    ngx_http_guichet_plan_pt plan);
static ngx_int_t ngx_http_guichet_view_render(ngx_http_request_t *r,
    ngx_http_guichet_call_t *call, ngx_uint_t need_family,
    ngx_http_guichet_render_pt render);
static ngx_int_t ngx_http_guichet_view(ngx_http_request_t *r,
    gch_view_t *view);
static void ngx_http_guichet_view_done(ngx_http_guichet_op_t *op,
    redisReply *reply);
static void ngx_http_guichet_range(ngx_http_request_t *r, ngx_str_t *from,
    ngx_str_t *to);
static int ngx_http_guichet_sessions_plan(ngx_http_request_t *r,
    ngx_http_guichet_call_t *call, gch_town_t *town,
    const gch_family_t *family, gch_view_t **view, gch_error_t *err);
static int ngx_http_guichet_planning_plan(ngx_http_request_t *r,
    ngx_http_guichet_call_t *call, gch_town_t *town,
    const gch_family_t *family, gch_view_t **view, gch_error_t *err);
static int ngx_http_guichet_requests_plan(ngx_http_request_t *r,
    ngx_http_guichet_call_t *call, gch_town_t *town,
    const gch_family_t *family, gch_view_t **view, gch_error_t *err);
static int ngx_http_guichet_me_render(gch_town_t *town,
    const gch_family_t *family, char **body, size_t *len);
static int ngx_http_guichet_activities_render(gch_town_t *town,
    const gch_family_t *family, char **body, size_t *len);
static void ngx_http_guichet_invoices_done(ngx_http_guichet_op_t *op,
    redisReply *reply);
static void ngx_http_guichet_health_done(ngx_http_guichet_op_t *op,
    redisReply *reply);


/* GET /api/activities/{id}/sessions, GET /api/bookings, GET /api/requests */

ngx_int_t
ngx_http_guichet_sessions(ngx_http_request_t *r,
    ngx_http_guichet_call_t *call)
{
    return ngx_http_guichet_view_plan(r, call, 0,
                                      ngx_http_guichet_sessions_plan);
}


ngx_int_t
ngx_http_guichet_planning(ngx_http_request_t *r,
    ngx_http_guichet_call_t *call)
{
    return ngx_http_guichet_view_plan(r, call, 1,
                                      ngx_http_guichet_planning_plan);
}


ngx_int_t
ngx_http_guichet_requests(ngx_http_request_t *r,
    ngx_http_guichet_call_t *call)
{
    return ngx_http_guichet_view_plan(r, call, 1,
                                      ngx_http_guichet_requests_plan);
}


/* GET /api/me, GET /api/activities: from the catalogue alone */

ngx_int_t
ngx_http_guichet_me(ngx_http_request_t *r, ngx_http_guichet_call_t *call)
{
    return ngx_http_guichet_view_render(r, call, 1,
                                        ngx_http_guichet_me_render);
}


ngx_int_t
ngx_http_guichet_activities(ngx_http_request_t *r,
    ngx_http_guichet_call_t *call)
{
    return ngx_http_guichet_view_render(r, call, 0,
                                        ngx_http_guichet_activities_render);
}


/* the shape they share */

/*
 * The catalogue, and the token's family when need_family, or the answer
 * sent instead (503 without a catalogue, 403 or 503 catalogue_behind for
 * an account it does not know): *town is then NULL and the value is what
 * sending returned.
 */
static ngx_int_t
ngx_http_guichet_view_town(ngx_http_request_t *r,
    ngx_http_guichet_call_t *call, ngx_uint_t need_family, gch_town_t **town,
    const gch_family_t **family)
{
    ngx_int_t  rc;

    *family = NULL;

    if (need_family) {
        rc = ngx_http_guichet_family(r, call->fid, town, family);
        if (*family == NULL) {
            *town = NULL;
            return rc;
        }

        return NGX_OK;
    }

    *town = ngx_http_guichet_town(r);

    return *town ? NGX_OK : ngx_http_guichet_unavailable(r);
}


/* The engine plans the view (or says why not), Redis fills it. */
static ngx_int_t
ngx_http_guichet_view_plan(ngx_http_request_t *r,
    ngx_http_guichet_call_t *call, ngx_uint_t need_family,
    ngx_http_guichet_plan_pt plan)
{
    ngx_int_t            rc;
    gch_town_t          *town;
    gch_view_t          *view;
    gch_error_t          err;
    const gch_family_t  *family;

    rc = ngx_http_guichet_view_town(r, call, need_family, &town, &family);
    if (town == NULL) {
        return rc;                      /* answered: 503 or 403 */
    }

    ngx_memzero(&err, sizeof(gch_error_t));

    if (plan(r, call, town, family, &view, &err) != GCH_OK) {
        return ngx_http_guichet_engine_error(r, &err);
    }

    return ngx_http_guichet_view(r, view);
}


/* The engine renders the answer from the catalogue, at once. */
static ngx_int_t
ngx_http_guichet_view_render(ngx_http_request_t *r,
    ngx_http_guichet_call_t *call, ngx_uint_t need_family,
    ngx_http_guichet_render_pt render)
{
    char                *body;
    size_t               len;
    ngx_int_t            rc;
    gch_town_t          *town;
    const gch_family_t  *family;

    rc = ngx_http_guichet_view_town(r, call, need_family, &town, &family);
    if (town == NULL) {
        return rc;                      /* answered: 503 or 403 */
    }

    if (render(town, family, &body, &len) != GCH_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_guichet_send(r, NGX_HTTP_OK, body, len, 0, NULL);
    ngx_free(body);

    return rc;
}


static ngx_int_t
ngx_http_guichet_view(ngx_http_request_t *r, gch_view_t *view)
{
    ngx_http_guichet_op_t  *op;

    op = ngx_http_guichet_op_new(r);
    if (op == NULL) {
        gch_view_free(view);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    op->view = view;
    /* the view points into it */
    op->cat = ngx_http_guichet_cat_acquire(op->town);

    return ngx_http_guichet_op_start(r, op, gch_view_cmds(view),
                                     ngx_http_guichet_view_done);
}


static void
ngx_http_guichet_view_done(ngx_http_guichet_op_t *op, redisReply *reply)
{
    int     rc;
    char   *body;
    size_t  len;

    rc = gch_view_render(op->view, reply, &body, &len);

    if (rc != GCH_OK) {
        ngx_http_guichet_op_unavailable(op);

    } else {
        ngx_http_guichet_op_answer(op, NGX_HTTP_OK, body, len, 0, NULL);
        ngx_free(body);
    }

    ngx_http_guichet_op_free(op);
}


static void
ngx_http_guichet_range(ngx_http_request_t *r, ngx_str_t *from, ngx_str_t *to)
{
    if (ngx_http_arg(r, (u_char *) "from", 4, from) != NGX_OK) {
        from->data = NULL;
        from->len = 0;
    }

    if (ngx_http_arg(r, (u_char *) "to", 2, to) != NGX_OK) {
        to->data = NULL;
        to->len = 0;
    }
}


/* the plans and renderings */

static int
ngx_http_guichet_sessions_plan(ngx_http_request_t *r,
    ngx_http_guichet_call_t *call, gch_town_t *town,
    const gch_family_t *family, gch_view_t **view, gch_error_t *err)
{
    ngx_str_t  from, to;

    ngx_http_guichet_range(r, &from, &to);

    return gch_sessions_plan(view, town, (const char *) call->arg.data,
                             call->arg.len, (const char *) from.data,
                             from.len, (const char *) to.data, to.len,
                             ngx_http_guichet_now_ms(),
                             &ngx_http_guichet_heap_alloc, err);
}


static int
ngx_http_guichet_planning_plan(ngx_http_request_t *r,
    ngx_http_guichet_call_t *call, gch_town_t *town,
    const gch_family_t *family, gch_view_t **view, gch_error_t *err)
{
    ngx_str_t  from, to;

    ngx_http_guichet_range(r, &from, &to);

    return gch_bookings_plan(view, town, family, (const char *) from.data,
                             from.len, (const char *) to.data, to.len,
                             ngx_http_guichet_now_ms(),
                             &ngx_http_guichet_heap_alloc, err);
}


static int
ngx_http_guichet_requests_plan(ngx_http_request_t *r,
    ngx_http_guichet_call_t *call, gch_town_t *town,
    const gch_family_t *family, gch_view_t **view, gch_error_t *err)
{
    return gch_requests_plan(view, town, family, ngx_http_guichet_now_ms(),
                             &ngx_http_guichet_heap_alloc, err);
}


static int
ngx_http_guichet_me_render(gch_town_t *town, const gch_family_t *family,
    char **body, size_t *len)
{
    return gch_render_me(town, family, &ngx_http_guichet_heap_alloc, body,
                         len);
}


static int
ngx_http_guichet_activities_render(gch_town_t *town,
    const gch_family_t *family, char **body, size_t *len)
{
    return gch_render_activities(town, &ngx_http_guichet_heap_alloc, body,
                                 len);
}


/* GET /api/invoices: the list the worker publishes at invoicing time */

ngx_int_t
ngx_http_guichet_invoices(ngx_http_request_t *r,
    ngx_http_guichet_call_t *call)
{
    char                   *fid = call->fid;
    ngx_http_guichet_op_t  *op;
    static const char      *fmts[] = {
        "MULTI",
        "GET " GCH_KEY_T(GCH_N_F "%b:" GCH_KEY_INVOICES),
        "EXEC"
    };

    op = ngx_http_guichet_op_new(r);
    if (op == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_guichet_op_start(r, op,
               ngx_http_guichet_op_format(op, 3, fmts, fid, ngx_strlen(fid))
               == NGX_OK ? &op->cmds : NULL,
               ngx_http_guichet_invoices_done);
}


static void
ngx_http_guichet_invoices_done(ngx_http_guichet_op_t *op, redisReply *reply)
{
    redisReply  *l;

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY
        || reply->elements != 1)
    {
        ngx_http_guichet_op_unavailable(op);
        ngx_http_guichet_op_free(op);
        return;
    }

    l = reply->element[0];

    if (l->type == REDIS_REPLY_STRING) {
        ngx_http_guichet_op_answer(op, NGX_HTTP_OK, l->str, l->len, 0, NULL);

    } else {
        ngx_http_guichet_op_answer(op, NGX_HTTP_OK, "[]", 2, 0, NULL);
    }

    ngx_http_guichet_op_free(op);
}


/*
 * GET /api/invoices/{id}.pdf: the file the worker wrote under its
 * invoice_dir, <family>/<id>.pdf (a town other than main: towns/<town>/
 * <family>/<id>.pdf, backend/invoice.c), served by nginx from the internal
 * location /_invoices/.  The family comes from the token, so another
 * family's invoice is simply not there (404).
 */
ngx_int_t
ngx_http_guichet_invoice_pdf(ngx_http_request_t *r,
    ngx_http_guichet_call_t *call)
{
    char       *fid = call->fid;
    ngx_str_t  *name = &call->arg;
    u_char     *p, *town;
    ngx_str_t   uri, id;

    if (name->len <= 4 || name->len > 64 + 4
        || ngx_strncmp(name->data + name->len - 4, ".pdf", 4) != 0)
    {
        return ngx_http_guichet_error(r, GCH_ENOTFOUND,
                                      "Cette facture n'existe pas.");
    }

    id.data = name->data;
    id.len = name->len - 4;

    for (p = id.data; p < id.data + id.len; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')
              || (*p >= '0' && *p <= '9') || *p == '_' || *p == '-'))
        {
            return ngx_http_guichet_error(r, GCH_ENOTFOUND,
                                          "Cette facture n'existe pas.");
        }
    }

    /* the town main's files where they were before towns */
    town = ngx_http_guichet_tenant(r)->id.data;
    if (ngx_strcmp(town, GCH_TOWN_DEFAULT) == 0) {
        town = NULL;
    }

    uri.len = sizeof("/_invoices/towns///.pdf") - 1 + ngx_strlen(fid)
              + id.len + (town ? ngx_strlen(town) : 0);
    uri.data = ngx_pnalloc(r->pool, uri.len);
    if (uri.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (town) {
        p = ngx_sprintf(uri.data, "/_invoices/towns/%s/%s/%V.pdf", town, fid,
                        &id);
    } else {
        p = ngx_sprintf(uri.data, "/_invoices/%s/%V.pdf", fid, &id);
    }

    uri.len = p - uri.data;

    /* kept through the internal redirect, on the file's answer */
    if (ngx_http_guichet_own_answer(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_internal_redirect(r, &uri, NULL);
}


/* GET /api/health */

ngx_int_t
ngx_http_guichet_health(ngx_http_request_t *r, ngx_http_guichet_call_t *call)
{
    ngx_http_guichet_op_t  *op;
    static const char      *fmts[] = {
        "MULTI", "PING", "GET " GCH_KEY_HEARTBEAT, "EXEC"
    };
    static const char       down[] = "{\"redis\":\"down\","
                                     "\"postgres\":\"unknown\","
                                     "\"worker_lag_ms\":-1}";

    op = ngx_http_guichet_op_new(r);
    if (op == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_guichet_op_format(op, 4, fmts, NULL, 0) != NGX_OK
        || ngx_http_guichet_op_send(op, &op->cmds,
                                    ngx_http_guichet_health_done)
           != NGX_OK)
    {
        ngx_http_guichet_op_free(op);
        return ngx_http_guichet_send(r, NGX_HTTP_SERVICE_UNAVAILABLE, down,
                                     sizeof(down) - 1, 0, NULL);
    }

    r->main->count++;
    return NGX_DONE;
}


static void
ngx_http_guichet_health_done(ngx_http_guichet_op_t *op, redisReply *reply)
{
    u_char       buf[256], *p;
    ngx_str_t    pg;
    ngx_uint_t   ok;
    long long    lag;
    const char  *s;
    redisReply  *hb;

    ok = reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2;
    ngx_str_set(&pg, "unknown");
    lag = -1;

    if (ok) {
        hb = reply->element[1];

        if (hb->type == REDIS_REPLY_STRING) {
            s = ngx_strstr(hb->str, "\"postgres\":\"ok\"");
            if (s) {
                ngx_str_set(&pg, "ok");
            } else {
                ngx_str_set(&pg, "down");
            }

            s = ngx_strstr(hb->str, "\"lag_ms\":");
            if (s) {
                lag = strtoll(s + 9, NULL, 10);
            }
        }
    }

    p = ngx_snprintf(buf, sizeof(buf),
                     "{\"redis\":\"%s\",\"postgres\":\"%V\","
                     "\"catalogue\":\"%s\",\"worker_lag_ms\":%L}",
                     ok ? "ok" : "down", &pg,
                     op->town->ready ? "ok" : "missing", lag);

    ok = ok && pg.len == 2 && op->town->ready;

    ngx_http_guichet_op_answer(op, ok ? NGX_HTTP_OK
                                      : NGX_HTTP_SERVICE_UNAVAILABLE,
                               (char *) buf, p - buf, 0, NULL);
    ngx_http_guichet_op_free(op);
}
