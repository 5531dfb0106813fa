/*
 * ngx_http_guichet_op.c -- answers, errors, the body, and the lifecycle
 * of an operation.
 *
 * Each Redis-backed request gets an "op" on the heap that may outlive the
 * request.  The request pool has a cleanup that detaches the op
 * (op->r = NULL); the op detaches itself when it answers.  A reply
 * arriving after the client left or after the deadline timer fired is
 * still fed to the engine (so that a booking saga always completes its
 * second step and stores its answer for the retry), but never touches the
 * freed request.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <sys/time.h>
#include <sodium.h>

#include "ngx_http_guichet_api.h"


static void ngx_http_guichet_op_cleanup(void *data);
static void ngx_http_guichet_deadline_handler(ngx_event_t *ev);
static void ngx_http_guichet_op_reply(redisReply *reply, void *data);
static void ngx_http_guichet_op_body_read(ngx_http_request_t *r);
static ngx_int_t ngx_http_guichet_read_body(ngx_http_request_t *r,
    ngx_http_guichet_op_t *op);
static ngx_int_t ngx_http_guichet_hold(ngx_http_guichet_op_t *op,
    ngx_uint_t status, const char *body, size_t len, ngx_uint_t replayed);


/*
 * A 2xx of a booking, a cancellation or an absence waits for
 * guichet_redis_wait_replicas replicas (WAIT): the answer is held here,
 * apart from its op, which may end meanwhile.
 */
typedef struct {
    ngx_http_request_t           *r;            /* NULL once answered */
    ngx_pool_cleanup_t           *cln;
    ngx_event_t                   deadline;
    struct timeval                start;
    ngx_uint_t                    status;
    ngx_uint_t                    replayed;
    ngx_uint_t                    replicas;     /* how many must ack */
    size_t                        len;
    u_char                        body[1];
} ngx_http_guichet_hold_t;


#define NGX_HTTP_GUICHET_NOT_REPLICATED_MSG                                  \
    "Votre demande a été faite mais sa sauvegarde n'est pas encore "         \
    "confirmée. Réessayez dans un instant avec la même demande "             \
    "(le même Idempotency-Key) : vous aurez sa réponse."


int64_t
ngx_http_guichet_now_ms(void)
{
    ngx_time_t  *tp;

    tp = ngx_timeofday();
    return (int64_t) tp->sec * 1000 + tp->msec;
}


/* answers */

/* A header pushed onto r's answer, value a static string (NULL: set by
 * the caller); NULL without memory. */
static ngx_table_elt_t *
ngx_http_guichet_header_out(ngx_http_request_t *r, const char *key,
    const char *value)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NULL;
    }

    h->hash = 1;
    h->key.data = (u_char *) key;
    h->key.len = ngx_strlen(key);

    if (value) {
        h->value.data = (u_char *) value;
        h->value.len = ngx_strlen(value);
    }

    return h;
}


/*
 * Every answer the module makes (JSON, invoice PDFs) is a family's own
 * (its bookings, its invoices) or changes with each booking: no cache
 * keeps it, neither a proxy nor the browser's disk (a family on a shared
 * computer); and it says its own type is the real one: a browser never
 * sniffs it into something else, whatever the operator's configuration
 * adds or forgets.
 */
ngx_int_t
ngx_http_guichet_own_answer(ngx_http_request_t *r)
{
    if (ngx_http_guichet_header_out(r, "Cache-Control", "no-store") == NULL
        || ngx_http_guichet_header_out(r, "X-Content-Type-Options",
                                       "nosniff")
           == NULL)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


ngx_int_t
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

    if (ngx_http_guichet_own_answer(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (status == NGX_HTTP_SERVICE_UNAVAILABLE
        || status == NGX_HTTP_TOO_MANY_REQUESTS)
    {
        h = ngx_http_guichet_header_out(r, "Retry-After", "1");
        if (h == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

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
        if (ngx_http_guichet_header_out(r, "Idempotent-Replayed", "true")
            == NULL)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    if (cookie) {
        h = ngx_http_guichet_header_out(r, "Set-Cookie", NULL);
        if (h == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
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


/*
 * A refusal of the engine's table of errors (gch_errors[],
 * engine/src/alloc.c: its status and code) with this answer's message.
 */
ngx_int_t
ngx_http_guichet_error(ngx_http_request_t *r, int rc, const char *message)
{
    gch_error_t  err;

    gch_error_set(&err, rc, "%s", message);

    return ngx_http_guichet_engine_error(r, &err);
}


ngx_int_t
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


ngx_int_t
ngx_http_guichet_unavailable(ngx_http_request_t *r)
{
    return ngx_http_guichet_error(r, GCH_EREDIS,
               "Le service est momentanément indisponible, rien n'a été "
               "réservé. Réessayez dans un instant.");
}


ngx_int_t
ngx_http_guichet_not_found(ngx_http_request_t *r)
{
    return ngx_http_guichet_error(r, GCH_ENOTFOUND,
                                  "Cette adresse n'existe pas.");
}


ngx_int_t
ngx_http_guichet_not_allowed(ngx_http_request_t *r)
{
    return ngx_http_guichet_error(r, GCH_EMETHOD,
                                  "Cette méthode n'est pas permise ici.");
}


ngx_int_t
ngx_http_guichet_unauthenticated(ngx_http_request_t *r, const char *message)
{
    (void) ngx_http_guichet_discard(r);

    return ngx_http_guichet_error(r, GCH_EUNAUTH, message);
}


ngx_int_t
ngx_http_guichet_bad_origin(ngx_http_request_t *r)
{
    (void) ngx_http_guichet_discard(r);

    return ngx_http_guichet_error(r, GCH_EORIGIN,
               "Cette demande ne vient pas du site du guichet.");
}


/* A body nobody reads is discarded first, so that keepalive stays sane. */
ngx_int_t
ngx_http_guichet_discard(ngx_http_request_t *r)
{
    if (ngx_http_discard_request_body(r) != NGX_OK) {
        r->keepalive = 0;
    }

    return NGX_OK;
}


ngx_table_elt_t *
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


/* the body */

ngx_uint_t
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
ngx_int_t
ngx_http_guichet_not_json(ngx_http_request_t *r)
{
    (void) ngx_http_guichet_discard(r);

    return ngx_http_guichet_error(r, GCH_EMEDIA,
                                  "Le corps de la demande doit être du JSON "
                                  "(Content-Type: application/json).");
}


/*
 * The whole body, NUL-terminated, in op->body (the op's memory).
 * NGX_ERROR: no memory; NGX_DECLINED: a body buffered to a temporary file
 * (client_body_buffer_size smaller than the body) could not be read back
 * whole (logged).  A read may return less than asked (POSIX allows it):
 * the rest is read until the file ends; a file that ends before the size
 * nginx wrote is refused, never parsed with bytes that were not read.
 */
static ngx_int_t
ngx_http_guichet_read_body(ngx_http_request_t *r, ngx_http_guichet_op_t *op)
{
    u_char       *p;
    off_t         off;
    size_t        n, want;
    ssize_t       rd;
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    op->body = NULL;
    op->body_len = 0;

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

    p = ngx_http_guichet_op_alloc(op, n + 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    op->body = (char *) p;
    op->body_len = n;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        b = cl->buf;

        if (ngx_buf_in_memory(b)) {
            p = ngx_cpymem(p, b->pos, b->last - b->pos);
            continue;
        }

        if (!b->in_file) {
            continue;
        }

        off = b->file_pos;
        want = (size_t) (b->file_last - b->file_pos);

        while (want > 0) {
            rd = ngx_read_file(b->file, p, want, off);
            if (rd == NGX_ERROR) {
                return NGX_DECLINED;        /* logged by ngx_read_file */
            }

            if (rd == 0) {
                ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                              "guichet: the request body's temporary file "
                              "\"%V\" ended after %O of its %O bytes",
                              &b->file->name, off - b->file_pos,
                              b->file_last - b->file_pos);
                return NGX_DECLINED;
            }

            p += rd;
            off += rd;
            want -= (size_t) rd;
        }
    }

    *p = '\0';

    return NGX_OK;
}


/* catalogue, for handlers that answer at once (no reference kept) */

gch_town_t *
ngx_http_guichet_town(ngx_http_request_t *r)
{
    ngx_http_guichet_tenant_t  *w = ngx_http_guichet_tenant(r);

    return (w->ready && w->cat) ? w->cat->town : NULL;
}


/*
 * The request's authentic token names a family this worker's catalogue
 * does not know.  Is the catalogue older than the token (the family was
 * published after it: "not yet"), or is the family really not there?
 * The engine compares the token's issue time with when the catalogue was
 * last confirmed the newest (gch_catalogue_behind); when behind, the
 * catalogue is looked at now.
 */
ngx_uint_t
ngx_http_guichet_behind(ngx_http_request_t *r, const char *fid)
{
    ngx_str_t   tok;
    ngx_uint_t  cookie;

    /* an agent's id is never a family's */
    if (ngx_strncmp(fid, "staff:", 6) == 0
        || ngx_http_guichet_token(r, &tok, &cookie) != NGX_OK
        || !gch_catalogue_behind(gch_token_issued((const char *) tok.data,
                                                  tok.len),
                                 ngx_http_guichet_tenant(r)->confirmed_ms))
    {
        return 0;
    }

    ngx_http_guichet_catalogue_kick(ngx_http_guichet_tenant(r));

    return 1;
}


/* 503 catalogue_behind (with Retry-After) or 403 forbidden. */
ngx_int_t
ngx_http_guichet_unknown_family(ngx_http_request_t *r, const char *fid)
{
    if (ngx_http_guichet_behind(r, fid)) {
        return ngx_http_guichet_error(r, GCH_EBEHIND,
                                      NGX_HTTP_GUICHET_BEHIND_MSG);
    }

    return ngx_http_guichet_error(r, GCH_EFORBIDDEN,
                                  NGX_HTTP_GUICHET_UNKNOWN_MSG);
}


/*
 * The catalogue and the token's family, or the answer to send instead:
 * 503 without a catalogue, 403 for an account the catalogue does not know
 * (503 catalogue_behind if the token is newer than the catalogue).  When
 * *family is NULL the answer is sent and the return value is what sending
 * it returned, NGX_OK included: callers test *family, not the value.
 */
ngx_int_t
ngx_http_guichet_family(ngx_http_request_t *r, const char *fid,
    gch_town_t **town, const gch_family_t **family)
{
    *family = NULL;
    *town = ngx_http_guichet_town(r);
    if (*town == NULL) {
        return ngx_http_guichet_unavailable(r);
    }

    *family = gch_town_family(*town, fid, ngx_strlen(fid));
    if (*family == NULL) {
        return ngx_http_guichet_unknown_family(r, fid);
    }

    return NGX_OK;
}


/* ops */

ngx_http_guichet_op_t *
ngx_http_guichet_op_new(ngx_http_request_t *r)
{
    ngx_http_guichet_op_t         *op;
    ngx_http_guichet_main_conf_t  *gmcf;

    gmcf = ngx_http_get_module_main_conf(r, ngx_http_guichet_module);

    op = ngx_http_guichet_op_block(r->connection->log);
    if (op == NULL) {
        return NULL;
    }

    op->cln = ngx_pool_cleanup_add(r->pool, 0);
    if (op->cln == NULL) {
        ngx_http_guichet_op_release(op);
        return NULL;
    }

    op->cln->handler = ngx_http_guichet_op_cleanup;
    op->cln->data = op;
    op->r = r;
    op->town = ngx_http_guichet_tenant(r);

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
ngx_http_guichet_deadline_handler(ngx_event_t *ev)
{
    ngx_http_guichet_op_t  *op = ev->data;

    if (op->r) {
        ngx_log_error(NGX_LOG_WARN, op->r->connection->log, 0,
                      "guichet: redis did not answer in time");
        ngx_http_guichet_op_unavailable(op);
    }
}


void
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
    gch_wait_free(op->wait);
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
        /* a login's has a password; the block is used again */
        sodium_memzero(op->body, op->body_len);
    }

    sodium_memzero(op->password, sizeof(op->password));
    ngx_http_guichet_cat_release(op->cat);

    if (ngx_http_guichet_worker.metrics) {
        (void) ngx_atomic_fetch_add(
                   &ngx_http_guichet_worker.metrics->in_flight, -1);
    }

    ngx_http_guichet_op_release(op);
}


/*
 * The op lets go of its request, which is about to be answered: the
 * latency is recorded, the pool cleanup and the deadline are disarmed.
 * NULL when the request was already answered or is gone.
 */
ngx_http_request_t *
ngx_http_guichet_op_detach(ngx_http_guichet_op_t *op)
{
    ngx_http_request_t  *r;

    r = op->r;
    if (r == NULL) {
        return NULL;
    }

    ngx_http_guichet_observe(&op->start);

    op->cln->handler = NULL;
    op->cln = NULL;
    op->r = NULL;

    if (op->deadline.timer_set) {
        ngx_del_timer(&op->deadline);
    }

    return r;
}


/*
 * Answers and detaches; the op itself lives on until its saga ends.  The
 * 2xx of what writes a booking (a booking, a cancellation, an absence)
 * first waits for the replicas (ngx_http_guichet_hold).
 */
void
ngx_http_guichet_op_answer(ngx_http_guichet_op_t *op, ngx_uint_t status,
    const char *body, size_t len, ngx_uint_t replayed, ngx_str_t *cookie)
{
    ngx_http_request_t            *r;
    ngx_http_guichet_main_conf_t  *gmcf;

    if (op->r && status >= 200 && status < 300
        && (op->book || op->cancel || op->absence))
    {
        gmcf = ngx_http_get_module_main_conf(op->r, ngx_http_guichet_module);

        if (gmcf->wait_replicas) {
            if (ngx_http_guichet_hold(op, status, body, len, replayed)
                != NGX_OK)
            {
                ngx_http_guichet_op_fail(op, GCH_EREPLICA,
                                         NGX_HTTP_GUICHET_NOT_REPLICATED_MSG);
            }

            return;
        }
    }

    r = ngx_http_guichet_op_detach(op);

    if (r) {
        ngx_http_finalize_request(r, ngx_http_guichet_send(r, status, body,
                                                           len, replayed,
                                                           cookie));
    }
}


/* WAIT */

static void
ngx_http_guichet_hold_cleanup(void *data)
{
    ngx_http_guichet_hold_t  *h = data;

    h->r = NULL;
    h->cln = NULL;

    if (h->deadline.timer_set) {
        ngx_del_timer(&h->deadline);
    }
}


/* The request lets go of its hold, which is about to answer it. */
static ngx_http_request_t *
ngx_http_guichet_hold_detach(ngx_http_guichet_hold_t *h)
{
    ngx_http_request_t  *r;

    r = h->r;
    if (r == NULL) {
        return NULL;
    }

    ngx_http_guichet_observe(&h->start);

    h->cln->handler = NULL;
    h->cln = NULL;
    h->r = NULL;

    if (h->deadline.timer_set) {
        ngx_del_timer(&h->deadline);
    }

    return r;
}


/*
 * Too few replicas acknowledged the write in guichet_redis_wait_timeout
 * (or the connection failed): the booking may be made on the master only,
 * and a failover now would lose it.  503 not_replicated: the retry with
 * the same Idempotency-Key gets the replay (once replicated) or, if the
 * write was lost, a fresh decision; never both.
 */
static void
ngx_http_guichet_hold_refuse(ngx_http_guichet_hold_t *h, redisReply *reply)
{
    ngx_http_request_t  *r;

    r = ngx_http_guichet_hold_detach(h);
    if (r == NULL) {
        return;
    }

    ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                  "guichet: %s of %ui replicas acknowledged the write, "
                  "answered 503",
                  reply == NULL ? "none (no answer)"
                  : reply->type == REDIS_REPLY_INTEGER
                    ? (reply->integer == 0 ? "0" : "too few")
                  : "none (error)", h->replicas);

    ngx_http_finalize_request(r, ngx_http_guichet_error(r, GCH_EREPLICA,
                                     NGX_HTTP_GUICHET_NOT_REPLICATED_MSG));
}


static void
ngx_http_guichet_hold_deadline(ngx_event_t *ev)
{
    ngx_http_guichet_hold_refuse(ev->data, NULL);
}


/* WAIT's reply (freed here: WAIT calls this exactly once). */
static void
ngx_http_guichet_hold_done(redisReply *reply, void *data)
{
    ngx_http_guichet_hold_t  *h = data;
    ngx_http_request_t       *r;

    if (reply && reply->type == REDIS_REPLY_INTEGER
        && reply->integer >= (long long) h->replicas)
    {
        r = ngx_http_guichet_hold_detach(h);

        if (r) {
            ngx_http_finalize_request(r, ngx_http_guichet_send(r, h->status,
                                             (const char *) h->body, h->len,
                                             h->replayed, NULL));
        }

    } else {
        ngx_http_guichet_hold_refuse(h, reply);
    }

    ngx_free(h);
}


/*
 * Called from the reply of the step that made the write durable (its
 * handler): WAIT goes on the same connection, after that step.  The
 * request moves from the op to the hold (its reference, r->main->count,
 * with it); the op no longer answers it.
 */
static ngx_int_t
ngx_http_guichet_hold(ngx_http_guichet_op_t *op, ngx_uint_t status,
    const char *body, size_t len, ngx_uint_t replayed)
{
    ngx_http_request_t            *r;
    ngx_http_guichet_hold_t       *h;
    ngx_http_guichet_main_conf_t  *gmcf;

    r = op->r;
    gmcf = ngx_http_get_module_main_conf(r, ngx_http_guichet_module);

    h = ngx_calloc(sizeof(ngx_http_guichet_hold_t) + len, r->connection->log);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->cln = ngx_pool_cleanup_add(r->pool, 0);
    if (h->cln == NULL) {
        ngx_free(h);
        return NGX_ERROR;
    }

    if (ngx_http_guichet_redis_wait(gmcf->wait_replicas, gmcf->wait_timeout,
                                    ngx_http_guichet_hold_done, h)
        != NGX_OK)
    {
        ngx_free(h);
        return NGX_ERROR;
    }

    h->r = r;
    h->cln->handler = ngx_http_guichet_hold_cleanup;
    h->cln->data = h;
    h->start = op->start;
    h->status = status;
    h->replayed = replayed;
    h->replicas = gmcf->wait_replicas;
    h->len = len;
    ngx_memcpy(h->body, body, len);

    /* a connection that hangs: Redis ends WAIT at its timeout */
    h->deadline.handler = ngx_http_guichet_hold_deadline;
    h->deadline.data = h;
    h->deadline.log = r->connection->log;
    ngx_add_timer(&h->deadline, gmcf->wait_timeout + gmcf->timeout);

    /* the op lets go of the request without answering it */
    op->cln->handler = NULL;
    op->cln = NULL;
    op->r = NULL;

    if (op->deadline.timer_set) {
        ngx_del_timer(&op->deadline);
    }

    /* the op's ctx goes away with the op */
    ngx_http_set_ctx(r, NULL, ngx_http_guichet_module);

    return NGX_OK;
}


void
ngx_http_guichet_op_fail(ngx_http_guichet_op_t *op, int rc,
    const char *message)
{
    ngx_http_request_t  *r;

    r = ngx_http_guichet_op_detach(op);

    if (r) {
        ngx_http_finalize_request(r, ngx_http_guichet_error(r, rc, message));
    }
}


/*
 * The engine's refusal in err; a status or code it left out is
 * fallback's (a GCH_E*).
 */
void
ngx_http_guichet_op_engine_error(ngx_http_guichet_op_t *op, gch_error_t *err,
    int fallback)
{
    gch_error_t          dflt;
    ngx_http_request_t  *r;

    if (err->status == 0 || err->code == NULL) {
        gch_error_set(&dflt, fallback, NULL);

        if (err->status == 0) {
            err->status = dflt.status;
        }

        if (err->code == NULL) {
            err->code = dflt.code;
        }
    }

    r = ngx_http_guichet_op_detach(op);

    if (r) {
        ngx_http_finalize_request(r, ngx_http_guichet_engine_error(r, err));
    }
}


void
ngx_http_guichet_op_unavailable(ngx_http_guichet_op_t *op)
{
    ngx_http_guichet_op_fail(op, GCH_EREDIS,
                             "Le service est momentanément indisponible. "
                             "Réessayez dans un instant avec la même "
                             "demande.");
}


ngx_int_t
ngx_http_guichet_op_send(ngx_http_guichet_op_t *op, const gch_cmds_t *cmds,
    void (*on_reply)(ngx_http_guichet_op_t *op, redisReply *reply))
{
    op->on_reply = on_reply;

    return ngx_http_guichet_redis_send(cmds, ngx_http_guichet_op_reply, op);
}


static void
ngx_http_guichet_op_reply(redisReply *reply, void *data)
{
    ngx_http_guichet_op_t  *op = data;

    op->on_reply(op, reply);
}


/*
 * From a content handler: sends the op's first commands and returns
 * NGX_DONE (the op answers later), or the 503 answer when there is nothing
 * to send or Redis cannot be reached.
 */
ngx_int_t
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
 * Reads the whole body in memory (op->body, op->body_len), then
 * post_handler runs with the op; a body that cannot be read is a 503.
 * Until then the op belongs to the request: its pool cleanup frees it if
 * the request ends first.
 */
ngx_int_t
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


/* The body is in: copied to op->body, the op's own post handler takes over. */
static void
ngx_http_guichet_op_body_read(ngx_http_request_t *r)
{
    ngx_int_t                         rc;
    ngx_http_guichet_op_t            *op;
    ngx_http_client_body_handler_pt   handler;

    op = ngx_http_get_module_ctx(r, ngx_http_guichet_module);
    handler = op->body_handler;
    op->body_handler = NULL;

    rc = ngx_http_guichet_read_body(r, op);

    if (rc == NGX_DECLINED) {
        ngx_http_guichet_op_fail(op, GCH_ENOMEM,
                                 "La demande n'a pas pu être relue : rien "
                                 "n'a été réservé.");
        ngx_http_guichet_op_free(op);
        return;
    }

    if (rc != NGX_OK) {
        ngx_http_guichet_op_unavailable(op);
        ngx_http_guichet_op_free(op);
        return;
    }

    handler(r);
}


/*
 * The adapter's own small commands, formatted by hiredis into op->fmt[]
 * (op->nfmt of them so far): op_collect() makes them the op's command
 * list.
 */
ngx_int_t
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
ngx_int_t
ngx_http_guichet_op_format(ngx_http_guichet_op_t *op, ngx_uint_t n,
    const char **fmts, const char *arg, size_t arg_len)
{
    ngx_uint_t  i;

    for (i = 0; i < n && op->nfmt < NGX_HTTP_GUICHET_OP_FMT;
         i++, op->nfmt++)
    {
        /* the town's id first: every key starts with its hash tag */
        op->fmt_len[op->nfmt] =
            arg ? redisFormatCommand(&op->fmt[op->nfmt], fmts[i],
                                     NGX_HTTP_GUICHET_T(op), arg, arg_len)
                : redisFormatCommand(&op->fmt[op->nfmt], fmts[i],
                                     NGX_HTTP_GUICHET_T(op));
    }

    return ngx_http_guichet_op_collect(op);
}


/* Frees the op's own commands, for its next round trip. */
void
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
