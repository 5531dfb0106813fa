/*
 * ngx_http_guichet_handler.c -- the request lifecycle of /api/.
 *
 * Routing, authentication (bearer token or session cookie, Origin check),
 * body reading, and the asynchronous operations: each Redis-backed request
 * gets an "op" on the heap that may outlive the request.  The request pool
 * has a cleanup that detaches the op (op->r = NULL); the op detaches itself
 * when it answers.  A reply arriving after the client left or after the
 * deadline timer fired is still fed to the engine (so that a booking saga
 * always completes its second step and stores its answer for the retry),
 * but never touches the freed request.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <sys/time.h>
#include <sodium.h>

#include "ngx_http_guichet.h"


#define NGX_HTTP_GUICHET_LOGIN_MAX     128
#define NGX_HTTP_GUICHET_PASSWORD_MAX  256
#define NGX_HTTP_GUICHET_FID_MAX       128
#define NGX_HTTP_GUICHET_OP_FMT        8      /* op->fmt[] slots */
#define NGX_HTTP_GUICHET_CLIENT_MAX    (NGX_SOCKADDR_STRLEN + 4)


typedef struct ngx_http_guichet_op_s  ngx_http_guichet_op_t;

struct ngx_http_guichet_op_s {
    ngx_http_request_t           *r;            /* NULL once detached */
    ngx_pool_cleanup_t           *cln;
    ngx_event_t                   deadline;
    struct timeval                start;

    ngx_http_guichet_cat_t       *cat;          /* referenced catalogue */
    const gch_family_t           *family;
    char                          fid[NGX_HTTP_GUICHET_FID_MAX];

    char                         *body;         /* heap copy */
    size_t                        body_len;
    char                          idem[65];
    size_t                        idem_len;

    gch_booking_req_t             req;
    unsigned                      have_req:1;
    unsigned                      staff:1;      /* the counter: on site */
    unsigned                      full_checked:1;
    gch_book_t                   *book;
    gch_cancel_t                 *cancel;
    gch_absence_t                *absence;
    gch_view_t                   *view;
    gch_cmds_t                    cmds;         /* module-formatted */
    char                         *fmt[NGX_HTTP_GUICHET_OP_FMT];
    int                           fmt_len[NGX_HTTP_GUICHET_OP_FMT];
    ngx_uint_t                    nfmt;

    void                        (*on_reply)(ngx_http_guichet_op_t *op,
                                            redisReply *reply);
    ngx_http_client_body_handler_pt  body_handler; /* set while reading */
    char                          login[NGX_HTTP_GUICHET_LOGIN_MAX];
    char                          password[NGX_HTTP_GUICHET_PASSWORD_MAX];
    char                          hash[256];
    ngx_uint_t                    verified;
    ngx_uint_t                    retry_after;  /* seconds, 429 */
    char                          client[NGX_HTTP_GUICHET_CLIENT_MAX];
    unsigned                      unknown:1;    /* login: dummy hash */
    gch_login_verdict_t           verdict;
    char                          agent[NGX_HTTP_GUICHET_LOGIN_MAX];
                                                /* staff: their login */
    ngx_str_t                     answer;       /* login: 200 body, and */
    ngx_str_t                     cookie;       /* its Set-Cookie (pool) */
};


const char *ngx_http_guichet_reasons[] = {
    "full", "conflict", "already_booked", "not_open_yet", "closed",
    "not_enrolled", "age", "documents_missing", "unpaid_invoices",
    "week_incomplete", "unknown_session", "unit_required", NULL
};


static ngx_uint_t ngx_http_guichet_latency_us[NGX_HTTP_GUICHET_NBUCKETS] = {
    250, 500, 1000, 2000, 5000, 10000, 25000, 50000, 100000, 250000,
    1000000, 0
};


/* booking attempts of this worker process: their gch:inflight members */
static uint32_t  ngx_http_guichet_attempts;


static void ngx_http_guichet_op_free(ngx_http_guichet_op_t *op);
static ngx_int_t ngx_http_guichet_discard(ngx_http_request_t *r);


static int64_t
ngx_http_guichet_now_ms(void)
{
    ngx_time_t  *tp;

    tp = ngx_timeofday();
    return (int64_t) tp->sec * 1000 + tp->msec;
}


static void
ngx_http_guichet_count(ngx_uint_t status)
{
    ngx_http_guichet_metrics_t  *m = ngx_http_guichet_worker.metrics;

    if (m) {
        (void) ngx_atomic_fetch_add(&m->requests[ngx_min(status / 100, 7)],
                                    1);
    }
}


/*
 * Every answer the module makes (JSON, invoice PDFs) says its own type is
 * the real one: a browser never sniffs it into something else, whatever
 * the operator's configuration adds or forgets.
 */
static ngx_int_t
ngx_http_guichet_nosniff(ngx_http_request_t *r)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "X-Content-Type-Options");
    ngx_str_set(&h->value, "nosniff");

    return NGX_OK;
}


static ngx_int_t
ngx_http_guichet_send(ngx_http_request_t *r, ngx_uint_t status,
    const char *body, size_t len, ngx_uint_t replayed, ngx_str_t *cookie)
{
    ngx_int_t               rc;
    ngx_buf_t              *b;
    ngx_chain_t             out;
    ngx_table_elt_t        *h;
    ngx_http_guichet_op_t  *op;

    ngx_http_guichet_count(status);

    r->headers_out.status = status;
    r->headers_out.content_length_n = len;
    ngx_str_set(&r->headers_out.content_type, "application/json");
    r->headers_out.content_type_len = r->headers_out.content_type.len;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    h->hash = 1;
    ngx_str_set(&h->key, "Cache-Control");
    ngx_str_set(&h->value, "no-store");

    if (ngx_http_guichet_nosniff(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (status == NGX_HTTP_SERVICE_UNAVAILABLE
        || status == NGX_HTTP_TOO_MANY_REQUESTS)
    {
        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
        h->hash = 1;
        ngx_str_set(&h->key, "Retry-After");
        ngx_str_set(&h->value, "1");

        op = ngx_http_get_module_ctx(r, ngx_http_guichet_module);

        if (op && op->retry_after) {
            h->value.data = ngx_pnalloc(r->pool, NGX_INT_T_LEN);
            if (h->value.data == NULL) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }
            h->value.len = ngx_sprintf(h->value.data, "%ui", op->retry_after)
                           - h->value.data;
        }
    }

    if (replayed) {
        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
        h->hash = 1;
        ngx_str_set(&h->key, "Idempotent-Replayed");
        ngx_str_set(&h->value, "true");
    }

    if (cookie) {
        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
        h->hash = 1;
        ngx_str_set(&h->key, "Set-Cookie");
        h->value = *cookie;
    }

    if (len == 0 || r->method == NGX_HTTP_HEAD) {
        r->header_only = 1;
        return ngx_http_send_header(r);
    }

    b = ngx_create_temp_buf(r->pool, len);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->last = ngx_cpymem(b->last, body, len);
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    rc = ngx_http_send_header(r);
    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


static ngx_int_t
ngx_http_guichet_error(ngx_http_request_t *r, ngx_uint_t status,
    const char *code, const char *message)
{
    char         *body;
    size_t        len;
    ngx_int_t     rc;
    gch_error_t   err;

    err.status = (int) status;
    err.code = code;
    ngx_cpystrn((u_char *) err.message, (u_char *) message,
                sizeof(err.message));

    if (gch_render_error(&err, &ngx_http_guichet_heap_alloc, &body, &len)
        != GCH_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_guichet_send(r, status, body, len, 0, NULL);
    ngx_free(body);

    return rc;
}


static ngx_int_t
ngx_http_guichet_engine_error(ngx_http_request_t *r, const gch_error_t *err)
{
    char       *body;
    size_t      len;
    ngx_int_t   rc;

    if (gch_render_error(err, &ngx_http_guichet_heap_alloc, &body, &len)
        != GCH_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_guichet_send(r, err->status ? err->status : 500, body, len,
                               0, NULL);
    ngx_free(body);

    return rc;
}


static ngx_int_t
ngx_http_guichet_unavailable(ngx_http_request_t *r)
{
    return ngx_http_guichet_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
               "unavailable",
               "Le service est momentanément indisponible, rien n'a été "
               "réservé. Réessayez dans un instant.");
}


/* authentication */

/*
 * The session cookie: "__Host-guichet_session" with Secure when
 * guichet_cookie_secure is on (the default: a browser then sends it only
 * over https, only to this host, and no other site or plain-http page can
 * set it), "guichet_session" without Secure when off (plain http on
 * 127.0.0.1 in development).  Only the configured name is read.
 */
static void
ngx_http_guichet_cookie_name(ngx_http_request_t *r, ngx_str_t *name)
{
    ngx_http_guichet_main_conf_t  *gmcf;

    gmcf = ngx_http_get_module_main_conf(r, ngx_http_guichet_module);

    if (gmcf->cookie_secure) {
        ngx_str_set(name, "__Host-guichet_session");

    } else {
        ngx_str_set(name, "guichet_session");
    }
}


/* The Set-Cookie value of token (max_age 0 and "" to clear it). */
static ngx_int_t
ngx_http_guichet_session_cookie(ngx_http_request_t *r, const char *token,
    time_t max_age, ngx_str_t *cookie)
{
    u_char                        *p;
    ngx_str_t                      name;
    ngx_http_guichet_main_conf_t  *gmcf;

    gmcf = ngx_http_get_module_main_conf(r, ngx_http_guichet_module);
    ngx_http_guichet_cookie_name(r, &name);

    cookie->len = name.len + sizeof("=; Path=/; Secure; HttpOnly; "
                                    "SameSite=Strict; Max-Age=") - 1
                  + ngx_strlen(token) + NGX_TIME_T_LEN;
    cookie->data = ngx_pnalloc(r->pool, cookie->len);
    if (cookie->data == NULL) {
        return NGX_ERROR;
    }

    p = ngx_sprintf(cookie->data, "%V=%s; Path=/; %sHttpOnly; "
                    "SameSite=Strict; Max-Age=%T", &name, token,
                    gmcf->cookie_secure ? "Secure; " : "", max_age);
    cookie->len = p - cookie->data;

    return NGX_OK;
}


static ngx_int_t
ngx_http_guichet_token(ngx_http_request_t *r, ngx_str_t *tok,
    ngx_uint_t *cookie)
{
    ngx_str_t         name;
    ngx_table_elt_t  *h;

    *cookie = 0;
    h = r->headers_in.authorization;

    if (h && h->value.len > 7
        && ngx_strncasecmp(h->value.data, (u_char *) "Bearer ", 7) == 0)
    {
        tok->data = h->value.data + 7;
        tok->len = h->value.len - 7;
        return NGX_OK;
    }

    ngx_http_guichet_cookie_name(r, &name);

    if (ngx_http_parse_multi_header_lines(&r->headers_in.cookies, &name, tok)
        != NGX_DECLINED)
    {
        *cookie = 1;
        return NGX_OK;
    }

    return NGX_DECLINED;
}


/* The family id of a valid token, or NGX_DECLINED. */
static ngx_int_t
ngx_http_guichet_auth(ngx_http_request_t *r, char *fid, size_t size,
    ngx_uint_t *cookie)
{
    u_char                         hash[NGX_HTTP_GUICHET_TOKEN_HASH];
    ngx_str_t                      tok;
    ngx_http_guichet_main_conf_t  *gmcf;

    gmcf = ngx_http_get_module_main_conf(r, ngx_http_guichet_module);

    if (!gmcf->have_secret
        || ngx_http_guichet_token(r, &tok, cookie) != NGX_OK)
    {
        return NGX_DECLINED;
    }

    if (gch_token_verify(gmcf->secret, (const char *) tok.data, tok.len,
                         ngx_time(), fid, size, NULL)
        != GCH_OK)
    {
        return NGX_DECLINED;
    }

    if (ngx_http_guichet_worker.nrevoked) {
        ngx_http_guichet_token_hash(tok.data, tok.len, hash);

        if (ngx_http_guichet_token_revoked(hash)) {
            return NGX_DECLINED;         /* logged out */
        }
    }

    return NGX_OK;
}


static ngx_table_elt_t *
ngx_http_guichet_header(ngx_http_request_t *r, const char *name, size_t len)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                return NULL;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == len
            && ngx_strncasecmp(h[i].key.data, (u_char *) name, len) == 0)
        {
            return &h[i];
        }
    }
}


/*
 * Browsers authenticated by cookie must prove the page is ours: the Origin
 * of a state-changing request names the Host it is sent to.
 */
static ngx_int_t
ngx_http_guichet_origin_ok(ngx_http_request_t *r)
{
    u_char           *p;
    ngx_str_t         host;
    ngx_table_elt_t  *o;

    o = ngx_http_guichet_header(r, "Origin", 6);
    if (o == NULL || r->headers_in.host == NULL) {
        return 0;
    }

    p = ngx_strlcasestrn(o->value.data, o->value.data + o->value.len,
                         (u_char *) "://", 3 - 1);
    if (p == NULL) {
        return 0;
    }

    host.data = p + 3;
    host.len = o->value.data + o->value.len - host.data;

    return host.len == r->headers_in.host->value.len
           && ngx_strncasecmp(host.data, r->headers_in.host->value.data,
                              host.len) == 0;
}


/* ops */

static void
ngx_http_guichet_op_cleanup(void *data)
{
    ngx_http_guichet_op_t  *op = data;

    op->r = NULL;
    op->cln = NULL;

    if (op->body_handler) {
        /*
         * The request ended while its body was being read (client gone,
         * client_body_timeout): nothing else will ever free the op.
         */
        ngx_http_guichet_op_free(op);
        return;
    }

    if (op->deadline.timer_set) {
        ngx_del_timer(&op->deadline);
    }
}


static void
ngx_http_guichet_observe(ngx_http_guichet_op_t *op)
{
    ngx_uint_t                   i;
    ngx_msec_int_t               us;
    struct timeval               now;
    ngx_http_guichet_metrics_t  *m = ngx_http_guichet_worker.metrics;

    if (m == NULL) {
        return;
    }

    ngx_gettimeofday(&now);
    us = (now.tv_sec - op->start.tv_sec) * 1000000
         + (now.tv_usec - op->start.tv_usec);

    for (i = 0; i < NGX_HTTP_GUICHET_NBUCKETS - 1; i++) {
        if ((ngx_uint_t) us <= ngx_http_guichet_latency_us[i]) {
            break;
        }
    }

    (void) ngx_atomic_fetch_add(&m->latency_bucket[i], 1);
    (void) ngx_atomic_fetch_add(&m->latency_sum_us, us);
    (void) ngx_atomic_fetch_add(&m->latency_count, 1);
}


/*
 * The op lets go of its request, which is about to be answered: the
 * latency is recorded, the pool cleanup and the deadline are disarmed.
 * NULL when the request was already answered or is gone.
 */
static ngx_http_request_t *
ngx_http_guichet_op_detach(ngx_http_guichet_op_t *op)
{
    ngx_http_request_t  *r;

    r = op->r;
    if (r == NULL) {
        return NULL;
    }

    ngx_http_guichet_observe(op);

    op->cln->handler = NULL;
    op->cln = NULL;
    op->r = NULL;

    if (op->deadline.timer_set) {
        ngx_del_timer(&op->deadline);
    }

    return r;
}


/* Answers and detaches; the op itself lives on until its saga ends. */
static void
ngx_http_guichet_op_answer(ngx_http_guichet_op_t *op, ngx_uint_t status,
    const char *body, size_t len, ngx_uint_t replayed, ngx_str_t *cookie)
{
    ngx_http_request_t  *r;

    r = ngx_http_guichet_op_detach(op);

    if (r) {
        ngx_http_finalize_request(r, ngx_http_guichet_send(r, status, body,
                                                           len, replayed,
                                                           cookie));
    }
}


static void
ngx_http_guichet_op_fail(ngx_http_guichet_op_t *op, ngx_uint_t status,
    const char *code, const char *message)
{
    ngx_http_request_t  *r;

    r = ngx_http_guichet_op_detach(op);

    if (r) {
        ngx_http_finalize_request(r, ngx_http_guichet_error(r, status, code,
                                                            message));
    }
}


static void
ngx_http_guichet_op_unavailable(ngx_http_guichet_op_t *op)
{
    ngx_http_guichet_op_fail(op, NGX_HTTP_SERVICE_UNAVAILABLE, "unavailable",
                             "Le service est momentanément indisponible. "
                             "Réessayez dans un instant avec la même "
                             "demande.");
}


static void
ngx_http_guichet_deadline_handler(ngx_event_t *ev)
{
    ngx_http_guichet_op_t  *op = ev->data;

    if (op->r) {
        ngx_log_error(NGX_LOG_WARN, op->r->connection->log, 0,
                      "guichet: redis did not answer in time");
        ngx_http_guichet_op_unavailable(op);
    }
}


static ngx_http_guichet_op_t *
ngx_http_guichet_op_new(ngx_http_request_t *r)
{
    ngx_http_guichet_op_t         *op;
    ngx_http_guichet_main_conf_t  *gmcf;

    gmcf = ngx_http_get_module_main_conf(r, ngx_http_guichet_module);

    op = ngx_calloc(sizeof(ngx_http_guichet_op_t), r->connection->log);
    if (op == NULL) {
        return NULL;
    }

    op->cln = ngx_pool_cleanup_add(r->pool, 0);
    if (op->cln == NULL) {
        ngx_free(op);
        return NULL;
    }

    op->cln->handler = ngx_http_guichet_op_cleanup;
    op->cln->data = op;
    op->r = r;

    ngx_gettimeofday(&op->start);

    op->deadline.handler = ngx_http_guichet_deadline_handler;
    op->deadline.data = op;
    op->deadline.log = r->connection->log;
    ngx_add_timer(&op->deadline, gmcf->timeout);

    if (ngx_http_guichet_worker.metrics) {
        (void) ngx_atomic_fetch_add(
                   &ngx_http_guichet_worker.metrics->in_flight, 1);
    }

    return op;
}


static void
ngx_http_guichet_op_free(ngx_http_guichet_op_t *op)
{
    ngx_uint_t  i;

    if (op->r && op->cln) {
        op->cln->handler = NULL;
    }

    if (op->deadline.timer_set) {
        ngx_del_timer(&op->deadline);
    }

    gch_book_free(op->book);
    gch_cancel_free(op->cancel);
    gch_absence_free(op->absence);
    gch_view_free(op->view);

    if (op->have_req) {
        gch_booking_req_free(&op->req);
    }

    for (i = 0; i < NGX_HTTP_GUICHET_OP_FMT; i++) {
        if (op->fmt[i]) {
            redisFreeCommand(op->fmt[i]);
        }
    }

    if (op->cmds.cmds) {
        ngx_free(op->cmds.cmds);
    }

    if (op->body) {
        ngx_free(op->body);
    }

    sodium_memzero(op->password, sizeof(op->password));
    ngx_http_guichet_cat_release(op->cat);

    if (ngx_http_guichet_worker.metrics) {
        (void) ngx_atomic_fetch_add(
                   &ngx_http_guichet_worker.metrics->in_flight, -1);
    }

    ngx_free(op);
}


static void
ngx_http_guichet_op_reply(redisReply *reply, void *data)
{
    ngx_http_guichet_op_t  *op = data;

    op->on_reply(op, reply);
}


static ngx_int_t
ngx_http_guichet_op_send(ngx_http_guichet_op_t *op, const gch_cmds_t *cmds,
    void (*on_reply)(ngx_http_guichet_op_t *op, redisReply *reply))
{
    op->on_reply = on_reply;

    return ngx_http_guichet_redis_send(cmds, ngx_http_guichet_op_reply, op);
}


/* The body is in: the op's own post handler takes over. */
static void
ngx_http_guichet_op_body_read(ngx_http_request_t *r)
{
    ngx_http_guichet_op_t            *op;
    ngx_http_client_body_handler_pt   handler;

    op = ngx_http_get_module_ctx(r, ngx_http_guichet_module);
    handler = op->body_handler;
    op->body_handler = NULL;

    handler(r);
}


/*
 * From a content handler: sends the op's first commands and returns
 * NGX_DONE (the op answers later), or the 503 answer when there is nothing
 * to send or Redis cannot be reached.
 */
static ngx_int_t
ngx_http_guichet_op_start(ngx_http_request_t *r, ngx_http_guichet_op_t *op,
    const gch_cmds_t *cmds,
    void (*on_reply)(ngx_http_guichet_op_t *op, redisReply *reply))
{
    if (cmds == NULL
        || ngx_http_guichet_op_send(op, cmds, on_reply) != NGX_OK)
    {
        ngx_http_guichet_op_free(op);
        return ngx_http_guichet_unavailable(r);
    }

    r->main->count++;
    return NGX_DONE;
}


/*
 * Reads the whole body in memory, then post_handler runs with the op.
 * Until then the op belongs to the request: its pool cleanup frees it if
 * the request ends first.
 */
static ngx_int_t
ngx_http_guichet_op_read_body(ngx_http_request_t *r,
    ngx_http_guichet_op_t *op, ngx_http_client_body_handler_pt post_handler)
{
    ngx_int_t  rc;

    ngx_http_set_ctx(r, op, ngx_http_guichet_module);
    r->request_body_in_single_buf = 1;
    op->body_handler = post_handler;

    rc = ngx_http_read_client_request_body(r, ngx_http_guichet_op_body_read);
    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        ngx_http_guichet_op_free(op);
        return rc;
    }

    return NGX_DONE;
}


/*
 * The adapter's own small commands, formatted by hiredis into op->fmt[]
 * (op->nfmt of them so far): op_collect() makes them the op's command
 * list.
 */
static ngx_int_t
ngx_http_guichet_op_collect(ngx_http_guichet_op_t *op)
{
    ngx_uint_t  i;

    op->cmds.cmds = ngx_calloc(op->nfmt * sizeof(gch_cmd_t), ngx_cycle->log);
    if (op->cmds.cmds == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < op->nfmt; i++) {
        if (op->fmt_len[i] < 0) {
            return NGX_ERROR;
        }

        op->cmds.cmds[i].data = op->fmt[i];
        op->cmds.cmds[i].len = (size_t) op->fmt_len[i];
    }

    op->cmds.ncmds = op->nfmt;

    return NGX_OK;
}


/* n commands each taking the same one %b argument (or none). */
static ngx_int_t
ngx_http_guichet_op_format(ngx_http_guichet_op_t *op, ngx_uint_t n,
    const char **fmts, const char *arg, size_t arg_len)
{
    ngx_uint_t  i;

    for (i = 0; i < n && op->nfmt < NGX_HTTP_GUICHET_OP_FMT;
         i++, op->nfmt++)
    {
        op->fmt_len[op->nfmt] =
            arg ? redisFormatCommand(&op->fmt[op->nfmt], fmts[i], arg,
                                     arg_len)
                : redisFormatCommand(&op->fmt[op->nfmt], fmts[i]);
    }

    return ngx_http_guichet_op_collect(op);
}


/* Frees the op's own commands, for its next round trip. */
static void
ngx_http_guichet_op_reset(ngx_http_guichet_op_t *op)
{
    ngx_uint_t  i;

    for (i = 0; i < NGX_HTTP_GUICHET_OP_FMT; i++) {
        if (op->fmt[i]) {
            redisFreeCommand(op->fmt[i]);
            op->fmt[i] = NULL;
        }
    }

    if (op->cmds.cmds) {
        ngx_free(op->cmds.cmds);
        op->cmds.cmds = NULL;
    }

    op->cmds.ncmds = 0;
    op->nfmt = 0;
}


/* body */

static ngx_int_t
ngx_http_guichet_read_body(ngx_http_request_t *r, char **out, size_t *len)
{
    u_char       *p;
    size_t        n;
    ssize_t       rd;
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    *out = NULL;
    *len = 0;

    if (r->request_body == NULL) {
        return NGX_OK;
    }

    n = 0;
    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        b = cl->buf;
        /* an empty body (Content-Length: 0) comes as one special buf,
         * neither in memory nor in a file */
        n += ngx_buf_in_memory(b) ? (size_t) (b->last - b->pos)
             : b->in_file ? (size_t) (b->file_last - b->file_pos) : 0;
    }

    p = ngx_alloc(n + 1, r->connection->log);
    if (p == NULL) {
        return NGX_ERROR;
    }

    *out = (char *) p;
    *len = n;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        b = cl->buf;

        if (ngx_buf_in_memory(b)) {
            p = ngx_cpymem(p, b->pos, b->last - b->pos);
            continue;
        }

        if (!b->in_file) {
            continue;
        }

        rd = ngx_read_file(b->file, p, b->file_last - b->file_pos,
                           b->file_pos);
        if (rd == NGX_ERROR) {
            return NGX_ERROR;
        }

        p += rd;
    }

    *p = '\0';

    return NGX_OK;
}


static ngx_uint_t
ngx_http_guichet_is_json(ngx_http_request_t *r)
{
    ngx_str_t  *ct;

    if (r->headers_in.content_type == NULL) {
        return 0;
    }

    ct = &r->headers_in.content_type->value;

    return ct->len >= 16
           && ngx_strncasecmp(ct->data, (u_char *) "application/json", 16)
              == 0
           && (ct->len == 16 || ct->data[16] == ';' || ct->data[16] == ' ');
}


/* 415 for a body that is not JSON (it is discarded, keepalive stays). */
static ngx_int_t
ngx_http_guichet_not_json(ngx_http_request_t *r)
{
    (void) ngx_http_guichet_discard(r);

    return ngx_http_guichet_error(r, NGX_HTTP_UNSUPPORTED_MEDIA_TYPE,
                                  "unsupported_media_type",
                                  "Le corps de la demande doit être du JSON "
                                  "(Content-Type: application/json).");
}


/* catalogue, for handlers that answer at once (no reference kept) */

static gch_town_t *
ngx_http_guichet_town(void)
{
    ngx_http_guichet_worker_t  *w = &ngx_http_guichet_worker;

    return (w->ready && w->cat) ? w->cat->town : NULL;
}


#define NGX_HTTP_GUICHET_BEHIND_MSG                                          \
    "Votre compte vient d'être ouvert : ce guichet le découvre dans un "     \
    "instant. Réessayez dans une seconde."
#define NGX_HTTP_GUICHET_UNKNOWN_MSG                                         \
    "Ce compte n'est pas connu de ce guichet."


/*
 * The request's authentic token names a family this worker's catalogue
 * does not know.  Is the catalogue older than the token (the family was
 * published after it: "not yet"), or is the family really not there?
 * The engine compares the token's issue time with when the catalogue was
 * last confirmed the newest (gch_catalogue_behind); when behind, the
 * catalogue is looked at now.
 */
static ngx_uint_t
ngx_http_guichet_behind(ngx_http_request_t *r, const char *fid)
{
    ngx_str_t   tok;
    ngx_uint_t  cookie;

    /* an agent's id is never a family's */
    if (ngx_strncmp(fid, "staff:", 6) == 0
        || ngx_http_guichet_token(r, &tok, &cookie) != NGX_OK
        || !gch_catalogue_behind(gch_token_issued((const char *) tok.data,
                                                  tok.len),
                                 ngx_http_guichet_worker.confirmed_ms))
    {
        return 0;
    }

    ngx_http_guichet_catalogue_kick();

    return 1;
}


/* 503 catalogue_behind (with Retry-After) or 403 forbidden. */
static ngx_int_t
ngx_http_guichet_unknown_family(ngx_http_request_t *r, const char *fid)
{
    if (ngx_http_guichet_behind(r, fid)) {
        return ngx_http_guichet_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                      "catalogue_behind",
                                      NGX_HTTP_GUICHET_BEHIND_MSG);
    }

    return ngx_http_guichet_error(r, NGX_HTTP_FORBIDDEN, "forbidden",
                                  NGX_HTTP_GUICHET_UNKNOWN_MSG);
}


/*
 * The catalogue and the token's family, or the answer to send instead:
 * 503 without a catalogue, 403 for an account the catalogue does not know
 * (503 catalogue_behind if the token is newer than the catalogue).  When
 * *family is NULL the answer is sent and the return value is what sending
 * it returned, NGX_OK included: callers test *family, not the value.
 */
static ngx_int_t
ngx_http_guichet_family(ngx_http_request_t *r, const char *fid,
    gch_town_t **town, const gch_family_t **family)
{
    *family = NULL;
    *town = ngx_http_guichet_town();
    if (*town == NULL) {
        return ngx_http_guichet_unavailable(r);
    }

    *family = gch_town_family(*town, fid, ngx_strlen(fid));
    if (*family == NULL) {
        return ngx_http_guichet_unknown_family(r, fid);
    }

    return NGX_OK;
}


/* POST /api/bookings */

static void
ngx_http_guichet_book_metrics(ngx_http_guichet_op_t *op)
{
    size_t                       i, n;
    ngx_uint_t                   k;
    const char                  *reason;
    ngx_http_guichet_metrics_t  *m = ngx_http_guichet_worker.metrics;

    if (m == NULL) {
        return;
    }

    n = gch_book_ncells(op->book);

    for (i = 0; i < n; i++) {
        reason = gch_book_cell_reason(op->book, i);

        if (reason == NULL) {
            (void) ngx_atomic_fetch_add(&m->cells_confirmed, 1);
            continue;
        }

        for (k = 0; ngx_http_guichet_reasons[k]; k++) {
            if (ngx_strcmp(reason, ngx_http_guichet_reasons[k]) == 0) {
                (void) ngx_atomic_fetch_add(&m->cells_refused[k], 1);
                break;
            }
        }
    }
}


static void
ngx_http_guichet_book_answer(ngx_http_guichet_op_t *op)
{
    size_t       len;
    const char  *body;

    body = gch_book_body(op->book, &len);

    if (body == NULL) {
        ngx_http_guichet_op_unavailable(op);
        return;
    }

    ngx_http_guichet_book_metrics(op);
    op->retry_after = (ngx_uint_t) gch_book_retry_after(op->book);
    ngx_http_guichet_op_answer(op, gch_book_status(op->book), body, len,
                               gch_book_replayed(op->book), NULL);
}


static void
ngx_http_guichet_book_step3_done(ngx_http_guichet_op_t *op, redisReply *reply)
{
    ngx_http_guichet_op_free(op);
}


static void
ngx_http_guichet_book_step2_done(ngx_http_guichet_op_t *op, redisReply *reply)
{
    int                rc;
    const gch_cmds_t  *cmds;

    rc = gch_book_on_step2(op->book, reply);

    if (rc == GCH_EFENCED) {
        if (ngx_http_guichet_worker.metrics) {
            (void) ngx_atomic_fetch_add(
                       &ngx_http_guichet_worker.metrics->fenced, 1);
        }

        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "guichet: booking attempt of family \"%s\" was reaped "
                      "before its second step, undone", op->fid);

        ngx_http_guichet_book_answer(op);

        if (ngx_http_guichet_op_send(op, gch_book_step3(op->book),
                                     ngx_http_guichet_book_step3_done)
            != NGX_OK)
        {
            ngx_http_guichet_op_free(op);
        }

        return;
    }

    if (rc != GCH_OK) {
        ngx_http_guichet_op_unavailable(op);

    } else {
        ngx_http_guichet_book_answer(op);

        /* the demande list's trim, now and then */
        cmds = gch_book_step3(op->book);
        if (cmds != NULL
            && ngx_http_guichet_op_send(op, cmds,
                                        ngx_http_guichet_book_step3_done)
               == NGX_OK)
        {
            return;
        }
    }

    ngx_http_guichet_op_free(op);
}


/*
 * The sold-out cache (guichet_full_cache): sessions this worker saw full
 * lately.  A request whose every open cell is on one of them is refused
 * "full" at once, without Redis; a released place may thus be refused for
 * at most guichet_full_cache after its release.
 */
static int
ngx_http_guichet_sold_out(const gch_session_t *s, void *ctx)
{
    ngx_http_guichet_cat_t  *cat = ctx;

    return cat->full_until[s - cat->town->sessions]
           > ngx_http_guichet_now_ms();
}


static void
ngx_http_guichet_remember_full(ngx_http_guichet_op_t *op)
{
    size_t                         i, n;
    int64_t                        until;
    const char                    *reason;
    const gch_session_t           *s;
    ngx_http_guichet_main_conf_t  *gmcf;

    gmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_guichet_module);
    if (gmcf == NULL || gmcf->full_cache == 0) {
        return;
    }

    until = ngx_http_guichet_now_ms() + gmcf->full_cache;
    n = gch_book_ncells(op->book);

    for (i = 0; i < n; i++) {
        reason = gch_book_cell_reason(op->book, i);
        s = gch_book_cell_session(op->book, i);

        if (reason && s && ngx_strcmp(reason, "full") == 0) {
            op->cat->full_until[s - op->cat->town->sessions] = until;
        }
    }
}


static void
ngx_http_guichet_book_step1_done(ngx_http_guichet_op_t *op, redisReply *reply)
{
    int                rc;
    const gch_cmds_t  *cmds;

    rc = gch_book_on_step1(op->book, reply);

    if (rc != GCH_OK) {
        if (reply && reply->type == REDIS_REPLY_ERROR) {
            ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                          "guichet: redis refused step one: %s", reply->str);
        }

        ngx_http_guichet_op_unavailable(op);
        ngx_http_guichet_op_free(op);
        return;
    }

    if (!op->staff) {
        ngx_http_guichet_remember_full(op);
    }

    cmds = gch_book_step2(op->book);

    if (cmds == NULL) {
        ngx_http_guichet_book_answer(op);
        ngx_http_guichet_op_free(op);
        return;
    }

    /*
     * Step two is sent even if the client left or the deadline passed: the
     * answer is then stored under the idempotency key for the retry.  The
     * SET ... XX GET fence catches a reaper that got there first.
     */

    if (ngx_http_guichet_op_send(op, cmds, ngx_http_guichet_book_step2_done)
        != NGX_OK)
    {
        ngx_http_guichet_op_unavailable(op);
        ngx_http_guichet_op_free(op);
    }
}


static ngx_uint_t
ngx_http_guichet_idem_key(ngx_http_request_t *r, ngx_http_guichet_op_t *op)
{
    u_char           *p;
    ngx_table_elt_t  *h;

    h = ngx_http_guichet_header(r, "Idempotency-Key", 15);
    if (h == NULL || h->value.len == 0 || h->value.len > 64) {
        return 0;
    }

    for (p = h->value.data; p < h->value.data + h->value.len; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')
              || (*p >= '0' && *p <= '9') || *p == '_' || *p == '-'))
        {
            return 0;
        }
    }

    ngx_memcpy(op->idem, h->value.data, h->value.len);
    op->idem_len = h->value.len;
    op->idem[op->idem_len] = '\0';

    return 1;
}


static void ngx_http_guichet_book_go(ngx_http_guichet_op_t *op);
static void ngx_http_guichet_staff_check(ngx_http_guichet_op_t *op);


/*
 * The sold-out cache would answer "full" at once, but only a key Redis
 * does not know may get that answer: a known one (a booking that went
 * through while its client got 503, a concurrent twin) gets its replay,
 * 409 or 422 the normal way.
 */
static void
ngx_http_guichet_book_idem_checked(ngx_http_guichet_op_t *op,
    redisReply *reply)
{
    if (reply && reply->type == REDIS_REPLY_INTEGER && reply->integer == 0) {
        ngx_http_guichet_book_answer(op);
        ngx_http_guichet_op_free(op);
        return;
    }

    if (op->r == NULL || reply == NULL
        || reply->type != REDIS_REPLY_INTEGER)
    {
        ngx_http_guichet_op_unavailable(op);
        ngx_http_guichet_op_free(op);
        return;
    }

    gch_book_free(op->book);
    op->book = NULL;
    op->full_checked = 1;

    ngx_http_guichet_book_go(op);
}


static void
ngx_http_guichet_book_body(ngx_http_request_t *r)
{
    int                            rc;
    gch_error_t                    err;
    ngx_http_guichet_op_t         *op;
    ngx_http_guichet_main_conf_t  *gmcf;

    gmcf = ngx_http_get_module_main_conf(r, ngx_http_guichet_module);
    op = ngx_http_get_module_ctx(r, ngx_http_guichet_module);

    if (ngx_http_guichet_read_body(r, &op->body, &op->body_len) != NGX_OK) {
        ngx_http_guichet_op_unavailable(op);
        ngx_http_guichet_op_free(op);
        return;
    }

    ngx_memzero(&err, sizeof(gch_error_t));

    rc = (op->staff ? gch_staff_req_parse : gch_booking_req_parse)
             (&op->req, op->body ? op->body : "", op->body_len,
              gmcf->max_items, &ngx_http_guichet_heap_alloc, &err);
    if (rc != GCH_OK) {
        ngx_http_guichet_op_fail(op, err.status ? err.status : 400,
                                 err.code ? err.code : "bad_json",
                                 err.message);
        ngx_http_guichet_op_free(op);
        return;
    }

    op->have_req = 1;

    if (op->staff) {
        /* the counter books for the family named in the body */
        op->family = gch_town_family(op->cat->town, op->req.family_id,
                                     ngx_strlen(op->req.family_id));
        if (op->family == NULL) {
            ngx_http_guichet_op_fail(op, NGX_HTTP_NOT_FOUND, "not_found",
                                     "Cette famille n'existe pas.");
            ngx_http_guichet_op_free(op);
            return;
        }

        /* op->fid was the token's "staff:<login>" */
        ngx_cpystrn((u_char *) op->agent, (u_char *) op->fid + 6,
                    sizeof(op->agent));
        ngx_cpystrn((u_char *) op->fid, (u_char *) op->family->id,
                    sizeof(op->fid));

        ngx_http_guichet_staff_check(op);
        return;
    }

    ngx_http_guichet_book_go(op);
}


/* Plans the booking and sends step one (or answers from the cache). */
static void
ngx_http_guichet_book_go(ngx_http_guichet_op_t *op)
{
    int                            rc;
    gch_error_t                    err;
    gch_book_in_t                  in;
    ngx_http_guichet_main_conf_t  *gmcf;

    gmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_guichet_module);
    ngx_memzero(&err, sizeof(gch_error_t));

    in.town = op->cat->town;
    in.family = op->family;
    in.req = &op->req;
    in.now_ms = ngx_http_guichet_now_ms();
    in.idem_key = op->idem;
    in.idem_len = op->idem_len;
    in.body = op->body;
    in.body_len = op->body_len;
    in.idem_ttl_s = gmcf->idempotency_ttl;
    in.inflight_ttl_s = 3600;
    in.catalogue_gen = op->cat->gen;
    in.onsite = op->staff;
    /* with now_ms and the body's hash, unique to this attempt */
    in.attempt = ((uint64_t) (uint32_t) ngx_pid << 32)
                 | ++ngx_http_guichet_attempts;
    in.refused_ttl_s = GCH_REFUSED_TTL_S;
    in.agent = op->staff ? op->agent : NULL;
    /* what one family can make the system keep is bounded (issue 18) */
    in.budget = !op->staff;

    rc = gch_book_plan(&op->book, &in, &ngx_http_guichet_heap_alloc, &err);
    if (rc != GCH_OK) {
        ngx_http_guichet_op_fail(op, err.status ? err.status : 500,
                                 err.code ? err.code : "internal",
                                 err.message);
        ngx_http_guichet_op_free(op);
        return;
    }

    if (gmcf->full_cache && !op->full_checked && !op->staff
        && gch_book_sold_out(op->book, ngx_http_guichet_sold_out, op->cat)
           == 1)
    {
        if (ngx_http_guichet_op_send(op, gch_book_idem_check(op->book),
                                     ngx_http_guichet_book_idem_checked)
            != NGX_OK)
        {
            ngx_http_guichet_op_unavailable(op);
            ngx_http_guichet_op_free(op);
        }

        return;
    }

    if (ngx_http_guichet_op_send(op, gch_book_step1(op->book),
                                 ngx_http_guichet_book_step1_done)
        != NGX_OK)
    {
        ngx_http_guichet_op_unavailable(op);
        ngx_http_guichet_op_free(op);
    }
}


/*
 * The counter: the agent's account must be active (gch:staff, published
 * from staff_account by the worker, guichetctl staff-add and
 * guichet-office) and the token not ended (gch:revoked, read here rather
 * than from the worker's copy, which may lag by guichet_catalogue_refresh):
 * a deactivated agent, or a token from before a password change, books
 * nothing.
 */
static void
ngx_http_guichet_staff_checked(ngx_http_guichet_op_t *op, redisReply *reply)
{
    if (op->r == NULL) {
        ngx_http_guichet_op_free(op);
        return;
    }

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY
        || reply->elements != 2)
    {
        ngx_http_guichet_op_unavailable(op);
        ngx_http_guichet_op_free(op);
        return;
    }

    if (reply->element[0]->type != REDIS_REPLY_STRING
        || reply->element[1]->type != REDIS_REPLY_NIL)
    {
        ngx_http_guichet_op_fail(op, NGX_HTTP_UNAUTHORIZED,
                                 "unauthenticated",
                                 "Ce jeton d'agent n'est plus valable "
                                 "(compte désactivé ou mot de passe "
                                 "changé) : reconnectez-vous.");
        ngx_http_guichet_op_free(op);
        return;
    }

    ngx_http_guichet_book_go(op);
}


static void
ngx_http_guichet_staff_check(ngx_http_guichet_op_t *op)
{
    u_char      hash[NGX_HTTP_GUICHET_TOKEN_HASH];
    u_char      hex[2 * NGX_HTTP_GUICHET_TOKEN_HASH + 1];
    ngx_str_t   tok;
    ngx_uint_t  cookie;

    if (ngx_http_guichet_token(op->r, &tok, &cookie) != NGX_OK) {
        ngx_http_guichet_op_fail(op, NGX_HTTP_UNAUTHORIZED,
                                 "unauthenticated",
                                 "Un jeton d'agent du guichet est "
                                 "nécessaire.");
        ngx_http_guichet_op_free(op);
        return;
    }

    ngx_http_guichet_token_hash(tok.data, tok.len, hash);
    ngx_hex_dump(hex, hash, NGX_HTTP_GUICHET_TOKEN_HASH);
    hex[2 * NGX_HTTP_GUICHET_TOKEN_HASH] = '\0';

    ngx_http_guichet_op_reset(op);

    op->fmt_len[0] = redisFormatCommand(&op->fmt[0], "MULTI");
    op->fmt_len[1] = redisFormatCommand(&op->fmt[1], "HGET gch:staff %s",
                                        op->agent);
    op->fmt_len[2] = redisFormatCommand(&op->fmt[2],
                                        "ZSCORE gch:revoked %s", hex);
    op->fmt_len[3] = redisFormatCommand(&op->fmt[3], "EXEC");
    op->nfmt = 4;

    if (ngx_http_guichet_op_collect(op) != NGX_OK
        || ngx_http_guichet_op_send(op, &op->cmds,
                                    ngx_http_guichet_staff_checked)
           != NGX_OK)
    {
        ngx_http_guichet_op_unavailable(op);
        ngx_http_guichet_op_free(op);
    }
}


static ngx_int_t
ngx_http_guichet_book(ngx_http_request_t *r, const char *fid,
    ngx_uint_t staff)
{
    gch_town_t             *town;
    ngx_http_guichet_op_t  *op;
    const gch_family_t     *family;

    town = ngx_http_guichet_town();
    if (town == NULL) {
        (void) ngx_http_guichet_discard(r);
        return ngx_http_guichet_unavailable(r);
    }

    family = staff ? NULL : gch_town_family(town, fid, ngx_strlen(fid));
    if (family == NULL && !staff) {
        (void) ngx_http_guichet_discard(r);
        return ngx_http_guichet_unknown_family(r, fid);
    }

    if (!ngx_http_guichet_is_json(r)) {
        return ngx_http_guichet_not_json(r);
    }

    op = ngx_http_guichet_op_new(r);
    if (op == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (!ngx_http_guichet_idem_key(r, op)) {
        ngx_http_guichet_op_free(op);
        (void) ngx_http_guichet_discard(r);
        return ngx_http_guichet_error(r, NGX_HTTP_BAD_REQUEST,
                   "idempotency_key_missing",
                   "L'en-tête Idempotency-Key (1 à 64 caractères "
                   "A-Z a-z 0-9 _ -) est obligatoire.");
    }

    op->cat = ngx_http_guichet_cat_acquire();
    op->family = family;
    op->staff = staff;
    ngx_cpystrn((u_char *) op->fid, (u_char *) fid, sizeof(op->fid));

    return ngx_http_guichet_op_read_body(r, op, ngx_http_guichet_book_body);
}


/*
 * Multi-step operations driven by the engine (cancellation, justified
 * absence): send what it asks, feed back each EXEC reply, answer when it
 * has nothing more to send.
 */

static const gch_cmds_t *
ngx_http_guichet_steps_next(ngx_http_guichet_op_t *op)
{
    return op->cancel ? gch_cancel_next(op->cancel)
                      : gch_absence_next(op->absence);
}


static void
ngx_http_guichet_steps_reply(ngx_http_guichet_op_t *op, redisReply *reply)
{
    int                rc;
    size_t             len;
    const char        *body;
    const gch_cmds_t  *cmds;

    rc = op->cancel ? gch_cancel_on_reply(op->cancel, reply)
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

    body = op->cancel ? gch_cancel_body(op->cancel, &len)
                      : gch_absence_body(op->absence, &len);

    if (body == NULL) {
        ngx_http_guichet_op_unavailable(op);

    } else {
        ngx_http_guichet_op_answer(op,
                                   op->cancel
                                   ? gch_cancel_status(op->cancel)
                                   : gch_absence_status(op->absence),
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

    body = gch_cancel_body(op->cancel, &len);
    ngx_http_guichet_op_answer(op, gch_cancel_status(op->cancel),
                               body ? body : "", body ? len : 0, 0, NULL);
    ngx_http_guichet_op_free(op);
}


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


/* DELETE /api/bookings/{id} */

static ngx_int_t
ngx_http_guichet_cancel(ngx_http_request_t *r, const char *fid,
    ngx_str_t *bid)
{
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

    op->cat = ngx_http_guichet_cat_acquire();
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


/* POST /api/absences */

static void
ngx_http_guichet_absence_body(ngx_http_request_t *r)
{
    char                    bid[72], doc[72];
    gch_town_t             *town;
    gch_error_t             err;
    const gch_family_t     *family;
    ngx_http_guichet_op_t  *op;

    op = ngx_http_get_module_ctx(r, ngx_http_guichet_module);

    if (ngx_http_guichet_read_body(r, &op->body, &op->body_len) != NGX_OK) {
        ngx_http_guichet_op_unavailable(op);
        ngx_http_guichet_op_free(op);
        return;
    }

    ngx_memzero(&err, sizeof(gch_error_t));

    if (gch_absence_req_parse(op->body ? op->body : "", op->body_len, bid,
                              sizeof(bid), doc, sizeof(doc), &err)
        != GCH_OK)
    {
        ngx_http_guichet_op_fail(op, err.status ? err.status : 400,
                                 err.code ? err.code : "bad_json",
                                 err.message);
        ngx_http_guichet_op_free(op);
        return;
    }

    town = op->cat->town;
    family = gch_town_family(town, op->fid, ngx_strlen(op->fid));

    if (family == NULL && ngx_http_guichet_behind(r, op->fid)) {
        ngx_http_guichet_op_fail(op, NGX_HTTP_SERVICE_UNAVAILABLE,
                                 "catalogue_behind",
                                 NGX_HTTP_GUICHET_BEHIND_MSG);
        ngx_http_guichet_op_free(op);
        return;
    }

    if (family == NULL
        || gch_absence_plan(&op->absence, family, bid, doc,
                            ngx_http_guichet_now_ms(),
                            &ngx_http_guichet_heap_alloc, &err)
           != GCH_OK)
    {
        ngx_http_guichet_op_fail(op, NGX_HTTP_FORBIDDEN, "forbidden",
                                 NGX_HTTP_GUICHET_UNKNOWN_MSG);
        ngx_http_guichet_op_free(op);
        return;
    }

    ngx_http_guichet_steps_start(op);
}


static ngx_int_t
ngx_http_guichet_absence(ngx_http_request_t *r, const char *fid)
{
    ngx_http_guichet_op_t  *op;

    if (!ngx_http_guichet_is_json(r)) {
        return ngx_http_guichet_not_json(r);
    }

    if (ngx_http_guichet_town() == NULL) {
        (void) ngx_http_guichet_discard(r);
        return ngx_http_guichet_unavailable(r);
    }

    op = ngx_http_guichet_op_new(r);
    if (op == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    op->cat = ngx_http_guichet_cat_acquire();
    ngx_cpystrn((u_char *) op->fid, (u_char *) fid, sizeof(op->fid));
    return ngx_http_guichet_op_read_body(r, op, ngx_http_guichet_absence_body);
}


/* views: GET sessions and GET bookings */

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
    op->cat = ngx_http_guichet_cat_acquire();   /* the view points into it */

    return ngx_http_guichet_op_start(r, op, gch_view_cmds(view),
                                     ngx_http_guichet_view_done);
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


static ngx_int_t
ngx_http_guichet_sessions(ngx_http_request_t *r, ngx_str_t *activity)
{
    int          rc;
    ngx_str_t    from, to;
    gch_town_t  *town;
    gch_view_t  *view;
    gch_error_t  err;

    town = ngx_http_guichet_town();
    if (town == NULL) {
        return ngx_http_guichet_unavailable(r);
    }

    ngx_http_guichet_range(r, &from, &to);
    ngx_memzero(&err, sizeof(gch_error_t));

    rc = gch_sessions_plan(&view, town, (const char *) activity->data,
                           activity->len, (const char *) from.data, from.len,
                           (const char *) to.data, to.len,
                           ngx_http_guichet_now_ms(),
                           &ngx_http_guichet_heap_alloc, &err);
    if (rc != GCH_OK) {
        return ngx_http_guichet_engine_error(r, &err);
    }

    return ngx_http_guichet_view(r, view);
}


static ngx_int_t
ngx_http_guichet_planning(ngx_http_request_t *r, const char *fid)
{
    int                  rc;
    ngx_str_t            from, to;
    gch_town_t          *town;
    gch_view_t          *view;
    gch_error_t          err;
    const gch_family_t  *family;

    rc = ngx_http_guichet_family(r, fid, &town, &family);
    if (family == NULL) {
        return rc;                      /* answered: 503 or 403 */
    }

    ngx_http_guichet_range(r, &from, &to);
    ngx_memzero(&err, sizeof(gch_error_t));

    rc = gch_bookings_plan(&view, town, family, (const char *) from.data,
                           from.len, (const char *) to.data, to.len,
                           ngx_http_guichet_now_ms(),
                           &ngx_http_guichet_heap_alloc, &err);
    if (rc != GCH_OK) {
        return ngx_http_guichet_engine_error(r, &err);
    }

    return ngx_http_guichet_view(r, view);
}


static ngx_int_t
ngx_http_guichet_requests(ngx_http_request_t *r, const char *fid)
{
    ngx_int_t            rc;
    gch_town_t          *town;
    gch_view_t          *view;
    gch_error_t          err;
    const gch_family_t  *family;

    rc = ngx_http_guichet_family(r, fid, &town, &family);
    if (family == NULL) {
        return rc;                      /* answered: 503 or 403 */
    }

    ngx_memzero(&err, sizeof(gch_error_t));

    if (gch_requests_plan(&view, town, family, ngx_http_guichet_now_ms(),
                          &ngx_http_guichet_heap_alloc, &err)
        != GCH_OK)
    {
        return ngx_http_guichet_engine_error(r, &err);
    }

    return ngx_http_guichet_view(r, view);
}


/* GET /api/invoices: the list the worker publishes at invoicing time */

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


static ngx_int_t
ngx_http_guichet_invoices(ngx_http_request_t *r, const char *fid)
{
    ngx_http_guichet_op_t  *op;
    static const char      *fmts[] = {
        "MULTI", "GET {f:%b}:invoices", "EXEC"
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


/*
 * GET /api/invoices/{id}.pdf: the file the worker wrote under its
 * invoice_dir, <family>/<id>.pdf, served by nginx from the internal
 * location /_invoices/.  The family comes from the token, so another
 * family's invoice is simply not there (404).
 */
static ngx_int_t
ngx_http_guichet_invoice_pdf(ngx_http_request_t *r, const char *fid,
    ngx_str_t *name)
{
    u_char     *p;
    ngx_str_t   uri, id;

    if (name->len <= 4 || name->len > 64 + 4
        || ngx_strncmp(name->data + name->len - 4, ".pdf", 4) != 0)
    {
        return ngx_http_guichet_error(r, NGX_HTTP_NOT_FOUND, "not_found",
                                      "Cette facture n'existe pas.");
    }

    id.data = name->data;
    id.len = name->len - 4;

    for (p = id.data; p < id.data + id.len; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')
              || (*p >= '0' && *p <= '9') || *p == '_' || *p == '-'))
        {
            return ngx_http_guichet_error(r, NGX_HTTP_NOT_FOUND,
                                          "not_found",
                                          "Cette facture n'existe pas.");
        }
    }

    uri.len = sizeof("/_invoices//.pdf") - 1 + ngx_strlen(fid) + id.len;
    uri.data = ngx_pnalloc(r->pool, uri.len);
    if (uri.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_sprintf(uri.data, "/_invoices/%s/%V.pdf", fid, &id);
    uri.len = p - uri.data;

    /* kept through the internal redirect, on the file's answer */
    if (ngx_http_guichet_nosniff(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_internal_redirect(r, &uri, NULL);
}


/* GET /api/me, GET /api/activities: from the catalogue alone */

static ngx_int_t
ngx_http_guichet_me(ngx_http_request_t *r, const char *fid)
{
    char                *body;
    size_t               len;
    ngx_int_t            rc;
    gch_town_t          *town;
    const gch_family_t  *family;

    rc = ngx_http_guichet_family(r, fid, &town, &family);
    if (family == NULL) {
        return rc;                      /* answered: 503 or 403 */
    }

    if (gch_render_me(town, family, &ngx_http_guichet_heap_alloc, &body, &len)
        != GCH_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_guichet_send(r, NGX_HTTP_OK, body, len, 0, NULL);
    ngx_free(body);

    return rc;
}


static ngx_int_t
ngx_http_guichet_activities(ngx_http_request_t *r)
{
    char        *body;
    size_t       len;
    ngx_int_t    rc;
    gch_town_t  *town;

    town = ngx_http_guichet_town();
    if (town == NULL) {
        return ngx_http_guichet_unavailable(r);
    }

    if (gch_render_activities(town, &ngx_http_guichet_heap_alloc, &body, &len)
        != GCH_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_guichet_send(r, NGX_HTTP_OK, body, len, 0, NULL);
    ngx_free(body);

    return rc;
}


/* GET /api/health */

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
                     ngx_http_guichet_worker.ready ? "ok" : "missing", lag);

    ok = ok && pg.len == 2 && ngx_http_guichet_worker.ready;

    ngx_http_guichet_op_answer(op, ok ? NGX_HTTP_OK
                                      : NGX_HTTP_SERVICE_UNAVAILABLE,
                               (char *) buf, p - buf, 0, NULL);
    ngx_http_guichet_op_free(op);
}


static ngx_int_t
ngx_http_guichet_health(ngx_http_request_t *r)
{
    ngx_http_guichet_op_t  *op;
    static const char      *fmts[] = {
        "MULTI", "PING", "GET gch:worker:heartbeat", "EXEC"
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


/* POST /api/session: argon2id in the thread pool, never on the loop */

/*
 * An unknown login is checked against this hash all the same (argon2id
 * with guichetctl's interactive limits, of a random password nobody
 * knows), so that it costs the time of a known one: login names cannot be
 * told apart by the answer's delay.
 */
static const char  ngx_http_guichet_dummy_hash[] =
    "$argon2id$v=19$m=65536,t=2,p=1$sj5eP5SJUDupy/VHJMqgOA$"
    "KuB/vMTlxoNUeRs0ciFr4jmH+Vw6Jpps0/ZBCUqNv8A";


static void
ngx_http_guichet_verify_thread(void *data, ngx_log_t *log)
{
    ngx_http_guichet_op_t  *op = *(ngx_http_guichet_op_t **) data;

    op->verified = crypto_pwhash_str_verify(op->hash, op->password,
                                            ngx_strlen(op->password)) == 0
                   && !op->unknown;
    sodium_memzero(op->password, sizeof(op->password));

    if (ngx_http_guichet_worker.metrics) {
        (void) ngx_atomic_fetch_add(
                   &ngx_http_guichet_worker.metrics->password_checks, 1);
    }
}


/*
 * Fire and forget: a MULTI ... EXEC whose answer nobody waits for (the
 * login's bookkeeping).  Each block touches the keys of one hash tag only.
 */
#define NGX_HTTP_GUICHET_FIRE_MAX  6

typedef struct {
    char        *fmt[NGX_HTTP_GUICHET_FIRE_MAX];
    int          len[NGX_HTTP_GUICHET_FIRE_MAX];
    ngx_uint_t   n;
} ngx_http_guichet_fire_t;


static void
ngx_http_guichet_fire_done(redisReply *reply, void *data)
{
    ngx_uint_t                i;
    ngx_http_guichet_fire_t  *f = data;

    for (i = 0; i < f->n; i++) {
        if (f->fmt[i]) {
            redisFreeCommand(f->fmt[i]);
        }
    }

    ngx_free(f);
}


/* Sends f's commands (f->n of them) and frees f in every case. */
static void
ngx_http_guichet_fire(ngx_http_guichet_fire_t *f)
{
    ngx_uint_t  i;
    gch_cmds_t  cmds;
    gch_cmd_t   list[NGX_HTTP_GUICHET_FIRE_MAX];

    for (i = 0; i < f->n; i++) {
        if (f->len[i] < 0) {
            ngx_http_guichet_fire_done(NULL, f);
            return;
        }

        list[i].data = f->fmt[i];
        list[i].len = (size_t) f->len[i];
    }

    cmds.cmds = list;
    cmds.ncmds = f->n;

    if (ngx_http_guichet_redis_send(&cmds, ngx_http_guichet_fire_done, f)
        != NGX_OK)
    {
        ngx_http_guichet_fire_done(NULL, f);
    }
}


/*
 * Login throttling (the policy is the engine's, gch_login_throttle()):
 * every attempt was counted before its check, in
 *   gch:loginfail:<address>/<login>   attempts of that login from there,
 *   gch:loginaddr:<address>           unsuccessful attempts from there,
 * and may have taken the pause slot gch:loginpause:<address>/<login>.
 * A success clears the first and the slot and gives its attempt back to
 * the second (fire and forget: the answer does not wait for it).
 */
static void
ngx_http_guichet_login_succeeded(ngx_http_guichet_op_t *op)
{
    ngx_http_guichet_fire_t  *f;

    f = ngx_calloc(sizeof(ngx_http_guichet_fire_t), ngx_cycle->log);
    if (f == NULL) {
        return;
    }

    f->len[0] = redisFormatCommand(&f->fmt[0], "MULTI");
    f->len[1] = redisFormatCommand(&f->fmt[1], "DEL gch:loginfail:%s/%s "
                                   "gch:loginpause:%s/%s", op->client,
                                   op->login, op->client, op->login);
    f->len[2] = redisFormatCommand(&f->fmt[2], "DECR gch:loginaddr:%s",
                                   op->client);
    f->len[3] = redisFormatCommand(&f->fmt[3],
                                   "EXPIRE gch:loginaddr:%s %d NX",
                                   op->client, GCH_LOGIN_ADDR_WINDOW_S);
    f->len[4] = redisFormatCommand(&f->fmt[4], "EXEC");
    f->n = 5;

    ngx_http_guichet_fire(f);
}


/*
 * The address login attempts are counted by: the client's (after the
 * realip module, when the operator trusts a proxy), an IPv6 client by its
 * /64 (one subscriber's network).
 */
static void
ngx_http_guichet_client_key(ngx_http_request_t *r, char *buf, size_t size)
{
    u_char                *p;
    ngx_connection_t      *c;
#if (NGX_HAVE_INET6)
    u_char                 a6[16];
    struct sockaddr_in6   *sin6;
#endif

    c = r->connection;

#if (NGX_HAVE_INET6)
    if (c->sockaddr->sa_family == AF_INET6) {
        sin6 = (struct sockaddr_in6 *) c->sockaddr;
        ngx_memcpy(a6, sin6->sin6_addr.s6_addr, 16);
        ngx_memzero(a6 + 8, 8);
        p = (u_char *) buf + ngx_inet6_ntop(a6, (u_char *) buf, size - 4);
        p = ngx_cpymem(p, "/64", 3);
        *p = '\0';
        return;
    }
#endif

    p = ngx_cpymem(buf, c->addr_text.data,
                   ngx_min(c->addr_text.len, size - 1));
    *p = '\0';
}


/*
 * A successful login is recorded for the family before it is answered:
 * the connection (unix ms and client address) at the head of
 * {f:<fid>}:connections (the last 200 kept, the family's history page),
 * and the token's hash in {f:<fid>}:tokens scored by its expiry, so that
 * a password change can end the family's other sessions (guichet-office,
 * office/account.c); expired hashes are dropped.  A Redis that refuses it
 * (OOM at maxmemory, LOADING, gone) gets the login 503, never a 200 whose
 * session a password change could not end.  NGX_OK: the answer comes
 * from ngx_http_guichet_login_recorded.
 */
static void ngx_http_guichet_login_recorded(ngx_http_guichet_op_t *op,
    redisReply *reply);


static ngx_int_t
ngx_http_guichet_login_record(ngx_http_guichet_op_t *op, const char *token,
    time_t expires)
{
    u_char                         hash[NGX_HTTP_GUICHET_TOKEN_HASH];
    u_char                         hex[2 * NGX_HTTP_GUICHET_TOKEN_HASH + 1];
    u_char                         conn[NGX_INT64_LEN + 1
                                        + NGX_SOCKADDR_STRLEN];
    u_char                        *last;
    ngx_int_t                      rc;
    ngx_uint_t                     i;
    ngx_time_t                    *tp;
    ngx_str_t                     *addr;
    gch_cmds_t                     cmds;
    gch_cmd_t                      list[NGX_HTTP_GUICHET_FIRE_MAX];
    ngx_http_guichet_fire_t       *f;
    ngx_http_guichet_main_conf_t  *gmcf;

    f = ngx_calloc(sizeof(ngx_http_guichet_fire_t), ngx_cycle->log);
    if (f == NULL) {
        return NGX_ERROR;
    }

    ngx_http_guichet_token_hash((u_char *) token, ngx_strlen(token), hash);
    ngx_hex_dump(hex, hash, NGX_HTTP_GUICHET_TOKEN_HASH);
    hex[2 * NGX_HTTP_GUICHET_TOKEN_HASH] = '\0';

    tp = ngx_timeofday();
    addr = &op->r->connection->addr_text;

    f->len[0] = redisFormatCommand(&f->fmt[0], "MULTI");
    /* one list element: "<unix ms> <address>" */
    last = ngx_snprintf(conn, sizeof(conn), "%M %V",
                        (ngx_msec_t) (tp->sec * 1000 + tp->msec), addr);

    f->len[1] = redisFormatCommand(&f->fmt[1], "LPUSH {f:%s}:connections %b",
                                   op->fid, conn, (size_t) (last - conn));
    f->len[2] = redisFormatCommand(&f->fmt[2],
                                   "LTRIM {f:%s}:connections 0 199", op->fid);
    f->len[3] = redisFormatCommand(&f->fmt[3], "ZADD {f:%s}:tokens %lld %s",
                                   op->fid, (long long) expires, hex);
    f->len[4] = redisFormatCommand(&f->fmt[4],
                                   "ZREMRANGEBYSCORE {f:%s}:tokens -inf %lld",
                                   op->fid, (long long) tp->sec);
    f->len[5] = redisFormatCommand(&f->fmt[5], "EXEC");
    f->n = 6;

    rc = NGX_OK;

    for (i = 0; i < f->n; i++) {
        if (f->len[i] < 0) {
            rc = NGX_ERROR;
            break;
        }

        list[i].data = f->fmt[i];
        list[i].len = (size_t) f->len[i];
    }

    if (rc == NGX_OK) {
        cmds.cmds = list;
        cmds.ncmds = f->n;

        /* the thread pool's wait had no deadline; this one has */
        gmcf = ngx_http_get_module_main_conf(op->r, ngx_http_guichet_module);
        ngx_add_timer(&op->deadline, gmcf->timeout);

        rc = ngx_http_guichet_op_send(op, &cmds,
                                      ngx_http_guichet_login_recorded);
    }

    /* hiredis has copied the commands */
    ngx_http_guichet_fire_done(NULL, f);

    return rc;
}


static void
ngx_http_guichet_login_recorded(ngx_http_guichet_op_t *op, redisReply *reply)
{
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY) {
        if (reply && reply->type == REDIS_REPLY_ERROR) {
            ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                          "guichet: redis refused a login's record: %s",
                          reply->str);
        }

        ngx_http_guichet_op_unavailable(op);

    } else {
        ngx_http_guichet_op_answer(op, NGX_HTTP_OK, (char *) op->answer.data,
                                   op->answer.len, 0, &op->cookie);
    }

    ngx_http_guichet_op_free(op);
}


/*
 * After the password check: a failure is answered at once (its attempt was
 * counted before the check); a success clears the login's count (fire and
 * forget), makes the token, and waits for its record: NGX_DONE, then
 * ngx_http_guichet_login_recorded answers and frees op.  NGX_OK: answered
 * here, the caller frees op.
 */
static ngx_int_t
ngx_http_guichet_login_answer(ngx_http_guichet_op_t *op)
{
    u_char                        *p, nonce[16];
    char                           token[GCH_TOKEN_MAX], exp[26];
    time_t                         expires;
    ngx_http_request_t            *r;
    ngx_http_guichet_main_conf_t  *gmcf;

    r = op->r;
    if (r == NULL) {
        return NGX_OK;
    }

    if (!op->verified) {
        ngx_http_guichet_op_fail(op, NGX_HTTP_UNAUTHORIZED, "unauthenticated",
                                 "Identifiant ou mot de passe incorrect.");
        return NGX_OK;
    }

    ngx_http_guichet_login_succeeded(op);

    gmcf = ngx_http_get_module_main_conf(r, ngx_http_guichet_module);

    expires = ngx_time() + gmcf->token_ttl;
    randombytes_buf(nonce, sizeof(nonce));

    if (gch_token_issue(token, gmcf->secret, op->fid, ngx_time(), expires,
                        nonce)
        != GCH_OK)
    {
        ngx_http_guichet_op_unavailable(op);
        return NGX_OK;
    }

    gch_instant_format(expires, exp);

    op->answer.len = sizeof("{\"family_id\":\"\",\"token\":\"\","
                            "\"expires_at\":\"\"}") - 1
                     + ngx_strlen(op->fid) + ngx_strlen(token)
                     + ngx_strlen(exp);
    op->answer.data = ngx_pnalloc(r->pool, op->answer.len);

    if (op->answer.data == NULL
        || ngx_http_guichet_session_cookie(r, token, gmcf->token_ttl,
                                           &op->cookie)
           != NGX_OK)
    {
        ngx_http_guichet_op_unavailable(op);
        return NGX_OK;
    }

    p = ngx_sprintf(op->answer.data, "{\"family_id\":\"%s\",\"token\":\"%s\","
                    "\"expires_at\":\"%s\"}", op->fid, token, exp);
    op->answer.len = p - op->answer.data;

    if (ngx_http_guichet_login_record(op, token, expires) != NGX_OK) {
        ngx_http_guichet_op_unavailable(op);
        return NGX_OK;
    }

    return NGX_DONE;
}


static void
ngx_http_guichet_verify_done(ngx_event_t *ev)
{
    ngx_http_guichet_op_t  *op = ev->data;
    ngx_http_request_t     *r;

    r = op->r;
    if (r) {
        r->main->blocked--;
        r->aio = 0;

        if (ngx_http_guichet_login_answer(op) == NGX_DONE) {
            return;
        }
    }

    ngx_http_guichet_op_free(op);
}


/* The password check, in the thread pool, against the hash in op->hash. */
static void
ngx_http_guichet_login_verify(ngx_http_guichet_op_t *op)
{
    ngx_thread_task_t             *task;
    ngx_http_request_t            *r;
    ngx_http_guichet_main_conf_t  *gmcf;

    r = op->r;
    gmcf = ngx_http_get_module_main_conf(r, ngx_http_guichet_module);

    task = ngx_thread_task_alloc(r->pool, sizeof(ngx_http_guichet_op_t *));
    if (task == NULL) {
        ngx_http_guichet_op_unavailable(op);
        ngx_http_guichet_op_free(op);
        return;
    }

    *(ngx_http_guichet_op_t **) task->ctx = op;
    task->handler = ngx_http_guichet_verify_thread;
    task->event.handler = ngx_http_guichet_verify_done;
    task->event.data = op;

    if (gmcf->thread_pool == NULL
        || ngx_thread_task_post(gmcf->thread_pool, task) != NGX_OK)
    {
        ngx_http_guichet_op_unavailable(op);
        ngx_http_guichet_op_free(op);
        return;
    }

    /* the request must not be freed while the thread reads the op */
    r->main->blocked++;
    r->aio = 1;

    if (op->deadline.timer_set) {
        ngx_del_timer(&op->deadline);
    }
}


static void
ngx_http_guichet_login_refuse(ngx_http_guichet_op_t *op, long long secs,
    const char *message)
{
    op->retry_after = secs > 0 ? (ngx_uint_t) secs : 1;
    ngx_http_guichet_op_fail(op, NGX_HTTP_TOO_MANY_REQUESTS, "rate_limited",
                             message);
    ngx_http_guichet_op_free(op);
}


/* The pause slot's answer: [SET NX reply, TTL of the slot]. */
static void
ngx_http_guichet_login_paced(ngx_http_guichet_op_t *op, redisReply *reply)
{
    if (op->r == NULL) {
        ngx_http_guichet_op_free(op);
        return;
    }

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY
        || reply->elements != 2
        || reply->element[1]->type != REDIS_REPLY_INTEGER)
    {
        ngx_http_guichet_op_unavailable(op);
        ngx_http_guichet_op_free(op);
        return;
    }

    if (reply->element[0]->type != REDIS_REPLY_STATUS) {
        /* another attempt holds the slot: wait for it to end */
        ngx_http_guichet_login_refuse(op,
            gch_login_paused(&op->verdict, reply->element[1]->integer),
            "Trop d'essais pour cet identifiant : patientez un moment "
            "avant de réessayer.");
        return;
    }

    ngx_http_guichet_login_verify(op);
}


/*
 * [HGET gch:logins, INCR and EXPIRE of the attempts of this login from
 * this address, INCR, EXPIRE and TTL of this address's].  The attempt is
 * counted before its check: a burst of guesses is refused before it costs
 * a hash.
 */
static void
ngx_http_guichet_login_found(ngx_http_guichet_op_t *op, redisReply *reply)
{
    char                *sp;
    size_t               n;
    redisReply          *e;
    gch_login_counts_t   counts;

    if (op->r == NULL) {
        ngx_http_guichet_op_free(op);
        return;
    }

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY
        || reply->elements != 6
        || reply->element[1]->type != REDIS_REPLY_INTEGER
        || reply->element[3]->type != REDIS_REPLY_INTEGER
        || reply->element[5]->type != REDIS_REPLY_INTEGER)
    {
        ngx_http_guichet_op_unavailable(op);
        ngx_http_guichet_op_free(op);
        return;
    }

    counts.pair = reply->element[1]->integer;
    counts.addr = reply->element[3]->integer;
    counts.addr_ttl = reply->element[5]->integer;

    gch_login_throttle(&counts, &op->verdict);

    if (op->verdict.action == GCH_LOGIN_REFUSE) {
        ngx_http_guichet_login_refuse(op, op->verdict.retry_after_s,
            "Trop d'essais de connexion depuis cette adresse : réessayez "
            "dans quelques minutes.");
        return;
    }

    /* "<family id> <hash>"; an unknown login gets the dummy hash */

    e = reply->element[0];
    sp = (e->type == REDIS_REPLY_STRING) ? ngx_strchr(e->str, ' ') : NULL;
    n = sp ? (size_t) (sp - e->str) : 0;

    if (sp == NULL || n == 0 || n >= sizeof(op->fid)
        || ngx_strlen(sp + 1) >= sizeof(op->hash))
    {
        op->unknown = 1;
        op->fid[0] = '\0';
        ngx_cpystrn((u_char *) op->hash,
                    (u_char *) ngx_http_guichet_dummy_hash,
                    sizeof(op->hash));

    } else {
        ngx_memcpy(op->fid, e->str, n);
        op->fid[n] = '\0';
        ngx_cpystrn((u_char *) op->hash, (u_char *) sp + 1,
                    sizeof(op->hash));
    }

    if (op->verdict.action == GCH_LOGIN_GO) {
        ngx_http_guichet_login_verify(op);
        return;
    }

    /* GCH_LOGIN_PACE: one attempt per pause, whoever takes the slot */

    ngx_http_guichet_op_reset(op);

    op->fmt_len[0] = redisFormatCommand(&op->fmt[0], "MULTI");
    op->fmt_len[1] = redisFormatCommand(&op->fmt[1],
                                        "SET gch:loginpause:%s/%s 1 EX %lld "
                                        "NX", op->client, op->login,
                                        op->verdict.pause_s);
    op->fmt_len[2] = redisFormatCommand(&op->fmt[2],
                                        "TTL gch:loginpause:%s/%s",
                                        op->client, op->login);
    op->fmt_len[3] = redisFormatCommand(&op->fmt[3], "EXEC");
    op->nfmt = 4;

    if (ngx_http_guichet_op_collect(op) != NGX_OK
        || ngx_http_guichet_op_send(op, &op->cmds,
                                    ngx_http_guichet_login_paced)
           != NGX_OK)
    {
        ngx_http_guichet_op_unavailable(op);
        ngx_http_guichet_op_free(op);
    }
}


static void
ngx_http_guichet_login_body(ngx_http_request_t *r)
{
    gch_error_t             err;
    ngx_http_guichet_op_t  *op;

    op = ngx_http_get_module_ctx(r, ngx_http_guichet_module);

    if (ngx_http_guichet_read_body(r, &op->body, &op->body_len) != NGX_OK) {
        ngx_http_guichet_op_unavailable(op);
        ngx_http_guichet_op_free(op);
        return;
    }

    ngx_memzero(&err, sizeof(gch_error_t));

    if (gch_login_req_parse(op->body ? op->body : "", op->body_len,
                            op->login, sizeof(op->login), op->password,
                            sizeof(op->password), &err)
        != GCH_OK)
    {
        ngx_http_guichet_op_fail(op, err.status ? err.status : 400,
                                 err.code ? err.code : "bad_json",
                                 err.message);
        ngx_http_guichet_op_free(op);
        return;
    }

    ngx_http_guichet_client_key(r, op->client, sizeof(op->client));

    op->fmt_len[0] = redisFormatCommand(&op->fmt[0], "MULTI");
    op->fmt_len[1] = redisFormatCommand(&op->fmt[1], "HGET gch:logins %s",
                                        op->login);
    op->fmt_len[2] = redisFormatCommand(&op->fmt[2],
                                        "INCR gch:loginfail:%s/%s",
                                        op->client, op->login);
    op->fmt_len[3] = redisFormatCommand(&op->fmt[3],
                                        "EXPIRE gch:loginfail:%s/%s %d NX",
                                        op->client, op->login,
                                        GCH_LOGIN_PAIR_WINDOW_S);
    op->fmt_len[4] = redisFormatCommand(&op->fmt[4],
                                        "INCR gch:loginaddr:%s", op->client);
    op->fmt_len[5] = redisFormatCommand(&op->fmt[5],
                                        "EXPIRE gch:loginaddr:%s %d NX",
                                        op->client, GCH_LOGIN_ADDR_WINDOW_S);
    op->fmt_len[6] = redisFormatCommand(&op->fmt[6],
                                        "TTL gch:loginaddr:%s", op->client);
    op->fmt_len[7] = redisFormatCommand(&op->fmt[7], "EXEC");
    op->nfmt = 8;

    if (ngx_http_guichet_op_collect(op) != NGX_OK
        || ngx_http_guichet_op_send(op, &op->cmds,
                                    ngx_http_guichet_login_found)
           != NGX_OK)
    {
        ngx_http_guichet_op_unavailable(op);
        ngx_http_guichet_op_free(op);
    }
}


static ngx_int_t
ngx_http_guichet_login(ngx_http_request_t *r)
{
    ngx_http_guichet_op_t  *op;

    if (ngx_http_guichet_header(r, "Origin", 6)
        && !ngx_http_guichet_origin_ok(r))
    {
        (void) ngx_http_guichet_discard(r);
        return ngx_http_guichet_error(r, NGX_HTTP_FORBIDDEN, "bad_origin",
                   "Cette demande ne vient pas du site du guichet.");
    }

    if (!ngx_http_guichet_is_json(r)) {
        return ngx_http_guichet_not_json(r);
    }

    op = ngx_http_guichet_op_new(r);
    if (op == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_guichet_op_read_body(r, op, ngx_http_guichet_login_body);
}


static void
ngx_http_guichet_logout_done(ngx_http_guichet_op_t *op, redisReply *reply)
{
    ngx_str_t            cookie;
    ngx_http_request_t  *r;

    r = op->r;

    if (r) {
        if (reply == NULL || reply->type != REDIS_REPLY_ARRAY) {
            ngx_http_guichet_op_unavailable(op);

        } else if (ngx_http_guichet_session_cookie(r, "", 0, &cookie)
                   != NGX_OK)
        {
            ngx_http_guichet_op_unavailable(op);

        } else {
            ngx_http_guichet_op_answer(op, NGX_HTTP_NO_CONTENT, NULL, 0, 0,
                                       &cookie);
        }
    }

    ngx_http_guichet_op_free(op);
}


/*
 * DELETE /api/session ends the session for real: the token's hash goes
 * into gch:revoked (until the token would have expired anyway); this
 * worker refuses it at once, the others within guichet_catalogue_refresh.
 */
static ngx_int_t
ngx_http_guichet_logout(ngx_http_request_t *r)
{
    u_char                         hash[NGX_HTTP_GUICHET_TOKEN_HASH];
    u_char                         hex[2 * NGX_HTTP_GUICHET_TOKEN_HASH + 1];
    char                           fid[NGX_HTTP_GUICHET_FID_MAX];
    int64_t                        expires;
    ngx_str_t                      tok, cookie;
    ngx_uint_t                     is_cookie;
    ngx_http_guichet_op_t         *op;
    ngx_http_guichet_main_conf_t  *gmcf;

    gmcf = ngx_http_get_module_main_conf(r, ngx_http_guichet_module);

    if (!gmcf->have_secret
        || ngx_http_guichet_token(r, &tok, &is_cookie) != NGX_OK
        || gch_token_verify(gmcf->secret, (const char *) tok.data, tok.len,
                            ngx_time(), fid, sizeof(fid), &expires)
           != GCH_OK)
    {
        /* nothing to end: just clear the cookie */
        if (ngx_http_guichet_session_cookie(r, "", 0, &cookie) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_guichet_send(r, NGX_HTTP_NO_CONTENT, NULL, 0, 0,
                                     &cookie);
    }

    if (is_cookie && !ngx_http_guichet_origin_ok(r)) {
        return ngx_http_guichet_error(r, NGX_HTTP_FORBIDDEN, "bad_origin",
                   "Cette demande ne vient pas du site du guichet.");
    }

    ngx_http_guichet_token_hash(tok.data, tok.len, hash);
    ngx_hex_dump(hex, hash, NGX_HTTP_GUICHET_TOKEN_HASH);
    hex[2 * NGX_HTTP_GUICHET_TOKEN_HASH] = '\0';
    ngx_http_guichet_revoked_add(hash);

    op = ngx_http_guichet_op_new(r);
    if (op == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    op->fmt_len[0] = redisFormatCommand(&op->fmt[0], "MULTI");
    op->fmt_len[1] = redisFormatCommand(&op->fmt[1],
                                        "ZADD gch:revoked %lld %s",
                                        (long long) expires, hex);
    op->fmt_len[2] = redisFormatCommand(&op->fmt[2],
                                        "ZREMRANGEBYSCORE gch:revoked -inf "
                                        "%lld", (long long) ngx_time());
    op->fmt_len[3] = redisFormatCommand(&op->fmt[3], "INCR gch:revoked:gen");
    op->fmt_len[4] = redisFormatCommand(&op->fmt[4], "EXEC");
    op->nfmt = 5;

    return ngx_http_guichet_op_start(r, op,
               ngx_http_guichet_op_collect(op) == NGX_OK ? &op->cmds : NULL,
               ngx_http_guichet_logout_done);
}


/* routing */

static ngx_int_t
ngx_http_guichet_not_allowed(ngx_http_request_t *r)
{
    return ngx_http_guichet_error(r, NGX_HTTP_NOT_ALLOWED,
                                  "method_not_allowed",
                                  "Cette méthode n'est pas permise ici.");
}


static ngx_int_t
ngx_http_guichet_finish(ngx_http_request_t *r, ngx_int_t rc)
{
    return rc;
}


/* A body nobody reads is discarded first, so that keepalive stays sane. */
static ngx_int_t
ngx_http_guichet_discard(ngx_http_request_t *r)
{
    if (ngx_http_discard_request_body(r) != NGX_OK) {
        r->keepalive = 0;
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_guichet_api_handler(ngx_http_request_t *r)
{
    u_char      *p, *end;
    char         fid[NGX_HTTP_GUICHET_FID_MAX];
    ngx_str_t    path, activity;
    ngx_uint_t   cookie, authed;

    if (r->uri.len < 5 || ngx_strncmp(r->uri.data, "/api/", 5) != 0) {
        return ngx_http_guichet_error(r, NGX_HTTP_NOT_FOUND, "not_found",
                                      "Cette adresse n'existe pas.");
    }

    path.data = r->uri.data + 5;
    path.len = r->uri.len - 5;

    if (!(r->method == NGX_HTTP_POST
          && ((path.len == 7 && ngx_strncmp(path.data, "session", 7) == 0)
              || (path.len == 8
                  && (ngx_strncmp(path.data, "bookings", 8) == 0
                      || ngx_strncmp(path.data, "absences", 8) == 0))
              || (path.len == 14
                  && ngx_strncmp(path.data, "staff/bookings", 14) == 0))))
    {
        (void) ngx_http_guichet_discard(r);
    }

    authed = (ngx_http_guichet_auth(r, fid, sizeof(fid), &cookie) == NGX_OK);

    if (path.len == 6 && ngx_strncmp(path.data, "health", 6) == 0) {
        if (r->method != NGX_HTTP_GET && r->method != NGX_HTTP_HEAD) {
            return ngx_http_guichet_not_allowed(r);
        }
        return ngx_http_guichet_finish(r, ngx_http_guichet_health(r));
    }

    if (path.len == 7 && ngx_strncmp(path.data, "session", 7) == 0) {
        if (r->method == NGX_HTTP_POST) {
            return ngx_http_guichet_login(r);
        }
        if (r->method == NGX_HTTP_DELETE) {
            return ngx_http_guichet_finish(r, ngx_http_guichet_logout(r));
        }
        return ngx_http_guichet_not_allowed(r);
    }

    if (path.len == 10 && ngx_strncmp(path.data, "activities", 10) == 0) {
        if (r->method != NGX_HTTP_GET && r->method != NGX_HTTP_HEAD) {
            return ngx_http_guichet_not_allowed(r);
        }
        return ngx_http_guichet_finish(r, ngx_http_guichet_activities(r));
    }

    if (path.len > 11 && ngx_strncmp(path.data, "activities/", 11) == 0) {
        activity.data = path.data + 11;
        end = path.data + path.len;
        p = ngx_strlchr(activity.data, end, '/');

        if (p == NULL || (size_t) (end - p) != sizeof("/sessions") - 1
            || ngx_strncmp(p, "/sessions", sizeof("/sessions") - 1) != 0
            || p == activity.data)
        {
            return ngx_http_guichet_error(r, NGX_HTTP_NOT_FOUND, "not_found",
                                          "Cette adresse n'existe pas.");
        }

        if (r->method != NGX_HTTP_GET && r->method != NGX_HTTP_HEAD) {
            return ngx_http_guichet_not_allowed(r);
        }

        activity.len = p - activity.data;
        return ngx_http_guichet_finish(r,
                   ngx_http_guichet_sessions(r, &activity));
    }

    if (path.len > 9 && ngx_strncmp(path.data, "bookings/", 9) == 0) {
        if (r->method != NGX_HTTP_DELETE) {
            return ngx_http_guichet_not_allowed(r);
        }

        if (!authed) {
            return ngx_http_guichet_error(r, NGX_HTTP_UNAUTHORIZED,
                       "unauthenticated",
                       "Connectez-vous pour accéder à votre espace.");
        }

        if (cookie && !ngx_http_guichet_origin_ok(r)) {
            return ngx_http_guichet_error(r, NGX_HTTP_FORBIDDEN,
                       "bad_origin",
                       "Cette demande ne vient pas du site du guichet.");
        }

        activity.data = path.data + 9;
        activity.len = path.len - 9;

        return ngx_http_guichet_cancel(r, fid, &activity);
    }

    if (path.len == 14 && ngx_strncmp(path.data, "staff/bookings", 14) == 0) {
        if (r->method != NGX_HTTP_POST) {
            return ngx_http_guichet_not_allowed(r);
        }

        if (!authed) {
            (void) ngx_http_guichet_discard(r);
            return ngx_http_guichet_error(r, NGX_HTTP_UNAUTHORIZED,
                       "unauthenticated",
                       "Un jeton d'agent du guichet est nécessaire.");
        }

        /* agents only, and never through a browser's cookie */
        if (cookie || ngx_strncmp(fid, "staff:", 6) != 0) {
            (void) ngx_http_guichet_discard(r);
            return ngx_http_guichet_error(r, NGX_HTTP_FORBIDDEN, "forbidden",
                       "Réservé aux agents du guichet.");
        }

        return ngx_http_guichet_book(r, fid, 1);
    }

    if (path.len == 8 && ngx_strncmp(path.data, "absences", 8) == 0) {
        if (r->method != NGX_HTTP_POST) {
            return ngx_http_guichet_not_allowed(r);
        }

        if (!authed) {
            (void) ngx_http_guichet_discard(r);
            return ngx_http_guichet_error(r, NGX_HTTP_UNAUTHORIZED,
                       "unauthenticated",
                       "Connectez-vous pour accéder à votre espace.");
        }

        if (cookie && !ngx_http_guichet_origin_ok(r)) {
            (void) ngx_http_guichet_discard(r);
            return ngx_http_guichet_error(r, NGX_HTTP_FORBIDDEN,
                       "bad_origin",
                       "Cette demande ne vient pas du site du guichet.");
        }

        return ngx_http_guichet_absence(r, fid);
    }

    if (path.len >= 8 && ngx_strncmp(path.data, "invoices", 8) == 0
        && (path.len == 8 || path.data[8] == '/'))
    {
        if (r->method != NGX_HTTP_GET && r->method != NGX_HTTP_HEAD) {
            return ngx_http_guichet_not_allowed(r);
        }

        if (!authed) {
            return ngx_http_guichet_error(r, NGX_HTTP_UNAUTHORIZED,
                       "unauthenticated",
                       "Connectez-vous pour accéder à votre espace.");
        }

        if (path.len == 8) {
            return ngx_http_guichet_invoices(r, fid);
        }

        activity.data = path.data + 9;
        activity.len = path.len - 9;

        return ngx_http_guichet_invoice_pdf(r, fid, &activity);
    }

    if (path.len == 8 && ngx_strncmp(path.data, "requests", 8) == 0) {
        if (r->method != NGX_HTTP_GET && r->method != NGX_HTTP_HEAD) {
            return ngx_http_guichet_not_allowed(r);
        }

        if (!authed) {
            return ngx_http_guichet_error(r, NGX_HTTP_UNAUTHORIZED,
                       "unauthenticated",
                       "Connectez-vous pour accéder à votre espace.");
        }

        return ngx_http_guichet_requests(r, fid);
    }

    if (!(path.len == 2 && ngx_strncmp(path.data, "me", 2) == 0)
        && !(path.len == 8 && ngx_strncmp(path.data, "bookings", 8) == 0))
    {
        return ngx_http_guichet_finish(r,
                   ngx_http_guichet_error(r, NGX_HTTP_NOT_FOUND, "not_found",
                                          "Cette adresse n'existe pas."));
    }

    /* the family's own resources */

    if (!authed) {
        if (r->method == NGX_HTTP_POST) {
            (void) ngx_http_guichet_discard(r);
        }
        return ngx_http_guichet_finish(r,
                   ngx_http_guichet_error(r, NGX_HTTP_UNAUTHORIZED,
                       "unauthenticated",
                       "Connectez-vous pour accéder à votre espace."));
    }

    if (path.len == 2) {
        if (r->method != NGX_HTTP_GET && r->method != NGX_HTTP_HEAD) {
            return ngx_http_guichet_not_allowed(r);
        }
        return ngx_http_guichet_finish(r, ngx_http_guichet_me(r, fid));
    }

    if (r->method == NGX_HTTP_GET || r->method == NGX_HTTP_HEAD) {
        return ngx_http_guichet_finish(r, ngx_http_guichet_planning(r, fid));
    }

    if (r->method != NGX_HTTP_POST) {
        return ngx_http_guichet_not_allowed(r);
    }

    if (cookie && !ngx_http_guichet_origin_ok(r)) {
        (void) ngx_http_guichet_discard(r);
        return ngx_http_guichet_error(r, NGX_HTTP_FORBIDDEN, "bad_origin",
                   "Cette demande ne vient pas du site du guichet.");
    }

    return ngx_http_guichet_book(r, fid, 0);
}


/* $guichet_family: the authenticated family, empty otherwise */

ngx_int_t
ngx_http_guichet_family_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    char        fid[NGX_HTTP_GUICHET_FID_MAX];
    size_t      n;
    ngx_uint_t  cookie;

    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;

    if (ngx_http_guichet_auth(r, fid, sizeof(fid), &cookie) != NGX_OK) {
        v->len = 0;
        v->data = (u_char *) "";
        return NGX_OK;
    }

    n = ngx_strlen(fid);
    v->data = ngx_pnalloc(r->pool, n);
    if (v->data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(v->data, fid, n);
    v->len = n;

    return NGX_OK;
}


/* metrics, Prometheus text format */

/*
 * The counters of the shared zone, plus what Redis says of the stream
 * (XLEN gch:bookings) and of the worker (its heartbeat: lag, dead
 * letters) when the EXEC reply is there; without Redis those are absent.
 */
static ngx_int_t
ngx_http_guichet_metrics_send(ngx_http_request_t *r, redisReply *redis)
{
    u_char                      *p, *last;
    char                        *s;
    ngx_int_t                    rc;
    ngx_buf_t                   *b;
    ngx_uint_t                   i, cum;
    ngx_chain_t                  out;
    redisReply                  *hb;
    ngx_http_guichet_metrics_t  *m;
    static const char           *classes[] = {
        "0xx", "1xx", "2xx", "3xx", "4xx", "5xx", "6xx", "7xx"
    };

    m = ngx_http_guichet_worker.metrics;
    if (m == NULL) {
        return NGX_HTTP_SERVICE_UNAVAILABLE;
    }

    b = ngx_create_temp_buf(r->pool, 8192);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = b->last;
    last = b->end;

    p = ngx_slprintf(p, last, "# TYPE guichet_requests_total counter\n");
    for (i = 1; i < 6; i++) {
        p = ngx_slprintf(p, last, "guichet_requests_total{class=\"%s\"} %uA\n",
                         classes[i], m->requests[i]);
    }

    p = ngx_slprintf(p, last, "# TYPE guichet_cells_total counter\n"
                     "guichet_cells_total{outcome=\"confirmed\"} %uA\n",
                     m->cells_confirmed);
    for (i = 0; ngx_http_guichet_reasons[i]; i++) {
        p = ngx_slprintf(p, last,
                         "guichet_cells_total{outcome=\"refused\","
                         "reason=\"%s\"} %uA\n",
                         ngx_http_guichet_reasons[i], m->cells_refused[i]);
    }

    p = ngx_slprintf(p, last,
                     "# TYPE guichet_redis_round_trips_total counter\n"
                     "guichet_redis_round_trips_total %uA\n"
                     "# TYPE guichet_redis_errors_total counter\n"
                     "guichet_redis_errors_total %uA\n"
                     "# TYPE guichet_redis_reconnects_total counter\n"
                     "guichet_redis_reconnects_total %uA\n"
                     "# TYPE guichet_in_flight gauge\n"
                     "guichet_in_flight %uA\n"
                     "# TYPE guichet_fenced_total counter\n"
                     "guichet_fenced_total %uA\n"
                     "# TYPE guichet_catalogue_reloads_total counter\n"
                     "guichet_catalogue_reloads_total %uA\n"
                     "# TYPE guichet_password_checks_total counter\n"
                     "guichet_password_checks_total %uA\n",
                     m->redis_round_trips, m->redis_errors,
                     m->redis_reconnects, m->in_flight, m->fenced,
                     m->catalogue_reloads, m->password_checks);

    p = ngx_slprintf(p, last,
                     "# TYPE guichet_request_duration_seconds histogram\n");
    cum = 0;
    for (i = 0; i < NGX_HTTP_GUICHET_NBUCKETS; i++) {
        cum += m->latency_bucket[i];

        if (i < NGX_HTTP_GUICHET_NBUCKETS - 1) {
            p = ngx_slprintf(p, last,
                             "guichet_request_duration_seconds_bucket"
                             "{le=\"%.6f\"} %ui\n",
                             ngx_http_guichet_latency_us[i] / 1e6, cum);
        } else {
            p = ngx_slprintf(p, last,
                             "guichet_request_duration_seconds_bucket"
                             "{le=\"+Inf\"} %ui\n", cum);
        }
    }

    p = ngx_slprintf(p, last,
                     "guichet_request_duration_seconds_sum %.6f\n"
                     "guichet_request_duration_seconds_count %uA\n",
                     m->latency_sum_us / 1e6, m->latency_count);

    if (redis && redis->type == REDIS_REPLY_ARRAY && redis->elements == 2) {
        if (redis->element[0]->type == REDIS_REPLY_INTEGER) {
            p = ngx_slprintf(p, last,
                             "# TYPE guichet_stream_length gauge\n"
                             "guichet_stream_length %L\n",
                             (int64_t) redis->element[0]->integer);
        }

        hb = redis->element[1];

        if (hb->type == REDIS_REPLY_STRING) {
            s = ngx_strstr(hb->str, "\"lag_ms\":");
            if (s) {
                p = ngx_slprintf(p, last,
                                 "# TYPE guichet_worker_lag_seconds gauge\n"
                                 "guichet_worker_lag_seconds %.3f\n",
                                 strtoll(s + 9, NULL, 10) / 1000.0);
            }

            s = ngx_strstr(hb->str, "\"dead\":");
            if (s) {
                p = ngx_slprintf(p, last,
                                 "# TYPE guichet_dead_letters gauge\n"
                                 "guichet_dead_letters %L\n",
                                 (int64_t) strtoll(s + 7, NULL, 10));
            }
        }
    }

    b->last = p;
    b->last_buf = 1;
    b->last_in_chain = 1;

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = b->last - b->pos;
    ngx_str_set(&r->headers_out.content_type, "text/plain; version=0.0.4");

    rc = ngx_http_send_header(r);
    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


static void
ngx_http_guichet_metrics_done(ngx_http_guichet_op_t *op, redisReply *reply)
{
    ngx_http_request_t  *r;

    /* the scrape is not an in-flight request of the API: free it first */
    r = ngx_http_guichet_op_detach(op);
    ngx_http_guichet_op_free(op);

    if (r) {
        ngx_http_finalize_request(r, ngx_http_guichet_metrics_send(r, reply));
    }
}


/* The metrics location: counters at once, stream and worker from Redis. */
ngx_int_t
ngx_http_guichet_metrics_handler(ngx_http_request_t *r)
{
    ngx_http_guichet_op_t  *op;
    static const char      *fmts[] = {
        "MULTI", "XLEN gch:bookings", "GET gch:worker:heartbeat", "EXEC"
    };

    (void) ngx_http_discard_request_body(r);

    op = ngx_http_guichet_op_new(r);
    if (op == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_guichet_op_format(op, 4, fmts, NULL, 0) == NGX_OK
        && ngx_http_guichet_op_send(op, &op->cmds,
                                    ngx_http_guichet_metrics_done)
           == NGX_OK)
    {
        /* the scrape's own read is not one of the API's round trips */
        if (ngx_http_guichet_worker.metrics) {
            (void) ngx_atomic_fetch_add(
                       &ngx_http_guichet_worker.metrics->redis_round_trips,
                       -1);
        }

        r->main->count++;
        return NGX_DONE;
    }

    ngx_http_guichet_op_free(op);

    return ngx_http_guichet_metrics_send(r, NULL);
}
