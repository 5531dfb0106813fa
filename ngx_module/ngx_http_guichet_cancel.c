/*
 * ngx_http_guichet_cancel.c -- DELETE /api/bookings/{id} (cancellation),
 * POST /api/absences (a justified absence), GET /api/waitlist and DELETE
 * /api/waitlist/{session}/{child} (waiting lists): multi-step operations
 * driven by the engine.  Send what it asks, feed back each EXEC reply,
 * answer when it has nothing more to send.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_guichet_api.h"


static void ngx_http_guichet_absence_body(ngx_http_request_t *r);
static void ngx_http_guichet_steps_start(ngx_http_guichet_op_t *op);
static const gch_cmds_t *ngx_http_guichet_steps_next(
    ngx_http_guichet_op_t *op);
static void ngx_http_guichet_steps_reply(ngx_http_guichet_op_t *op,
    redisReply *reply);
static void ngx_http_guichet_steps_reply_done(ngx_http_guichet_op_t *op);
static int ngx_http_guichet_steps_status(ngx_http_guichet_op_t *op);
static const char *ngx_http_guichet_steps_body(ngx_http_guichet_op_t *op,
    size_t *len);


/* DELETE /api/bookings/{id} */

ngx_int_t
ngx_http_guichet_cancel(ngx_http_request_t *r, ngx_http_guichet_call_t *call)
{
    char                   *fid = call->fid;
    ngx_str_t              *bid = &call->arg;
    ngx_int_t               rc;
    gch_town_t             *town;
    gch_error_t             err;
    const gch_family_t     *family;
    ngx_http_guichet_op_t  *op;

    rc = ngx_http_guichet_family(r, fid, &town, &family);
    if (family == NULL) {
        return rc;                      /* answered: 503 or 403 */
    }

    op = ngx_http_guichet_op_new(r);
    if (op == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    op->cat = ngx_http_guichet_cat_acquire(op->town);
    ngx_memzero(&err, sizeof(gch_error_t));

    if (gch_cancel_plan(&op->cancel, town, family, (const char *) bid->data,
                        bid->len, ngx_http_guichet_now_ms(),
                        &ngx_http_guichet_heap_alloc, &err)
        != GCH_OK)
    {
        ngx_http_guichet_op_free(op);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_guichet_steps_next(op) == NULL) {
        /* answered without Redis (a malformed id): 404 */
        r->main->count++;
        ngx_http_guichet_steps_reply_done(op);
        return NGX_DONE;
    }

    r->main->count++;
    ngx_http_guichet_steps_start(op);

    return NGX_DONE;
}


/*
 * DELETE /api/waitlist/{session}?child_id={child} (/work/shared/API.md's
 * form) is DELETE /api/waitlist/{session}/{child}: arg becomes
 * "<session>/<child>" (from r->pool).  Without a child in the path nor in
 * the query, arg stays as it is (404 not_found).
 */
static void
ngx_http_guichet_waitlist_arg(ngx_http_request_t *r, ngx_str_t *arg)
{
    u_char     *p, *d, *s;
    ngx_str_t   child;

    if (ngx_strlchr(arg->data, arg->data + arg->len, '/') != NULL
        || ngx_http_arg(r, (u_char *) "child_id", 8, &child) != NGX_OK
        || child.len == 0)
    {
        return;
    }

    p = ngx_pnalloc(r->pool, arg->len + 1 + child.len + 1);
    if (p == NULL) {
        return;
    }

    d = ngx_cpymem(p, arg->data, arg->len);
    *d++ = '/';
    s = child.data;
    ngx_unescape_uri(&d, &s, child.len, NGX_UNESCAPE_URI);
    *d = '\0';

    arg->len = d - p;
    arg->data = p;
}


/* GET /api/waitlist (no arg) and DELETE /api/waitlist/{session}/{child}
 * or /api/waitlist/{session}?child_id={child} */

ngx_int_t
ngx_http_guichet_waitlist(ngx_http_request_t *r,
    ngx_http_guichet_call_t *call)
{
    char                   *fid = call->fid;
    ngx_int_t               rc;
    gch_town_t             *town;
    gch_error_t             err;
    const gch_family_t     *family;
    ngx_http_guichet_op_t  *op;

    if (r->method == NGX_HTTP_DELETE) {
        ngx_http_guichet_waitlist_arg(r, &call->arg);
    }

    rc = ngx_http_guichet_family(r, fid, &town, &family);
    if (family == NULL) {
        return rc;                      /* answered: 503 or 403 */
    }

    op = ngx_http_guichet_op_new(r);
    if (op == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    op->cat = ngx_http_guichet_cat_acquire(op->town);
    ngx_memzero(&err, sizeof(gch_error_t));

    if (gch_wait_plan(&op->wait, town, family,
                      r->method == NGX_HTTP_DELETE
                      ? (const char *) call->arg.data : NULL,
                      call->arg.len, &ngx_http_guichet_heap_alloc, &err)
        != GCH_OK)
    {
        ngx_http_guichet_op_free(op);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    r->main->count++;

    if (ngx_http_guichet_steps_next(op) == NULL) {
        /* answered without Redis (unknown session or child): 404 */
        ngx_http_guichet_steps_reply_done(op);
        return NGX_DONE;
    }

    ngx_http_guichet_steps_start(op);

    return NGX_DONE;
}


/* POST /api/absences */

ngx_int_t
ngx_http_guichet_absence(ngx_http_request_t *r, ngx_http_guichet_call_t *call)
{
    char                   *fid = call->fid;
    ngx_http_guichet_op_t  *op;

    if (!ngx_http_guichet_is_json(r)) {
        return ngx_http_guichet_not_json(r);
    }

    if (ngx_http_guichet_town(r) == NULL) {
        (void) ngx_http_guichet_discard(r);
        return ngx_http_guichet_unavailable(r);
    }

    op = ngx_http_guichet_op_new(r);
    if (op == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    op->cat = ngx_http_guichet_cat_acquire(op->town);
    ngx_cpystrn((u_char *) op->fid, (u_char *) fid, sizeof(op->fid));
    return ngx_http_guichet_op_read_body(r, op, ngx_http_guichet_absence_body);
}


static void
ngx_http_guichet_absence_body(ngx_http_request_t *r)
{
    char                    bid[72], doc[72], reason[40];
    gch_town_t             *town;
    gch_error_t             err;
    const gch_family_t     *family;
    ngx_http_guichet_op_t  *op;

    op = ngx_http_get_module_ctx(r, ngx_http_guichet_module);

    ngx_memzero(&err, sizeof(gch_error_t));

    if (gch_absence_req_parse(op->body ? op->body : "", op->body_len, bid,
                              sizeof(bid), reason, sizeof(reason), doc,
                              sizeof(doc), &err)
        != GCH_OK)
    {
        ngx_http_guichet_op_engine_error(op, &err, GCH_EBADJSON);
        ngx_http_guichet_op_free(op);
        return;
    }

    town = op->cat->town;
    family = gch_town_family(town, op->fid, ngx_strlen(op->fid));

    if (family == NULL && ngx_http_guichet_behind(r, op->fid)) {
        ngx_http_guichet_op_fail(op, GCH_EBEHIND, NGX_HTTP_GUICHET_BEHIND_MSG);
        ngx_http_guichet_op_free(op);
        return;
    }

    if (family == NULL) {
        ngx_http_guichet_op_fail(op, GCH_EFORBIDDEN,
                                 NGX_HTTP_GUICHET_UNKNOWN_MSG);
        ngx_http_guichet_op_free(op);
        return;
    }

    /* its only failure is memory's: 500 internal, not the family's fault */
    if (gch_absence_plan(&op->absence, town, family, bid, reason, doc,
                         ngx_http_guichet_now_ms(),
                         &ngx_http_guichet_heap_alloc, &err)
        != GCH_OK)
    {
        ngx_http_guichet_op_engine_error(op, &err, GCH_ENOMEM);
        ngx_http_guichet_op_free(op);
        return;
    }

    ngx_http_guichet_steps_start(op);
}


/* the steps */

/* Sends the first step; the caller holds a request reference (count). */
static void
ngx_http_guichet_steps_start(ngx_http_guichet_op_t *op)
{
    const gch_cmds_t  *cmds;

    cmds = ngx_http_guichet_steps_next(op);

    if (cmds == NULL
        || ngx_http_guichet_op_send(op, cmds, ngx_http_guichet_steps_reply)
           != NGX_OK)
    {
        ngx_http_guichet_op_unavailable(op);
        ngx_http_guichet_op_free(op);
    }
}


static const gch_cmds_t *
ngx_http_guichet_steps_next(ngx_http_guichet_op_t *op)
{
    return op->cancel ? gch_cancel_next(op->cancel)
           : op->wait ? gch_wait_next(op->wait)
                      : gch_absence_next(op->absence);
}


static int
ngx_http_guichet_steps_status(ngx_http_guichet_op_t *op)
{
    return op->cancel ? gch_cancel_status(op->cancel)
           : op->wait ? gch_wait_status(op->wait)
                      : gch_absence_status(op->absence);
}


static const char *
ngx_http_guichet_steps_body(ngx_http_guichet_op_t *op, size_t *len)
{
    return op->cancel ? gch_cancel_body(op->cancel, len)
           : op->wait ? gch_wait_body(op->wait, len)
                      : gch_absence_body(op->absence, len);
}


static void
ngx_http_guichet_steps_reply(ngx_http_guichet_op_t *op, redisReply *reply)
{
    int                rc;
    size_t             len;
    const char        *body;
    const gch_cmds_t  *cmds;

    rc = op->cancel ? gch_cancel_on_reply(op->cancel, reply)
         : op->wait ? gch_wait_on_reply(op->wait, reply)
                    : gch_absence_on_reply(op->absence, reply);

    if (rc != GCH_OK) {
        ngx_http_guichet_op_unavailable(op);
        ngx_http_guichet_op_free(op);
        return;
    }

    cmds = ngx_http_guichet_steps_next(op);

    if (cmds) {
        if (ngx_http_guichet_op_send(op, cmds, ngx_http_guichet_steps_reply)
            != NGX_OK)
        {
            ngx_http_guichet_op_unavailable(op);
            ngx_http_guichet_op_free(op);
        }
        return;
    }

    body = ngx_http_guichet_steps_body(op, &len);

    if (body == NULL) {
        ngx_http_guichet_op_unavailable(op);

    } else {
        ngx_http_guichet_op_answer(op, ngx_http_guichet_steps_status(op),
                                   body, len, 0, NULL);
    }

    ngx_http_guichet_op_free(op);
}


/* Answers what the engine decided without Redis. */
static void
ngx_http_guichet_steps_reply_done(ngx_http_guichet_op_t *op)
{
    size_t       len;
    const char  *body;

    body = ngx_http_guichet_steps_body(op, &len);
    ngx_http_guichet_op_answer(op, ngx_http_guichet_steps_status(op),
                               body ? body : "", body ? len : 0, 0, NULL);
    ngx_http_guichet_op_free(op);
}
