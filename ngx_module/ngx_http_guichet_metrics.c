/*
 * ngx_http_guichet_metrics.c -- the counters of the shared zone (requests
 * by status class, latency, cells by outcome, Redis round trips, errors
 * and reconnections: the adapter's hooks), the guichet_metrics location
 * (Prometheus text format) and $guichet_family.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <sys/time.h>

#include "gch_keys.h"
#include "ngx_http_guichet_api.h"


/* every reason of the engine has its counter */
typedef char ngx_http_guichet_reasons_fit_t[
    (GCH_REASON_COUNT - 1 <= 16) ? 1 : -1];


static ngx_uint_t ngx_http_guichet_latency_us[NGX_HTTP_GUICHET_NBUCKETS] = {
    250, 500, 1000, 2000, 5000, 10000, 25000, 50000, 100000, 250000,
    1000000, 0
};


void
ngx_http_guichet_count(ngx_uint_t status)
{
    ngx_http_guichet_metrics_t  *m = ngx_http_guichet_worker.metrics;

    if (m) {
        (void) ngx_atomic_fetch_add(&m->requests[ngx_min(status / 100, 7)],
                                    1);
    }
}


void
ngx_http_guichet_observe(struct timeval *start)
{
    ngx_uint_t                   i;
    ngx_msec_int_t               us;
    struct timeval               now;
    ngx_http_guichet_metrics_t  *m = ngx_http_guichet_worker.metrics;

    if (m == NULL) {
        return;
    }

    ngx_gettimeofday(&now);
    us = (now.tv_sec - start->tv_sec) * 1000000
         + (now.tv_usec - start->tv_usec);

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
 * The outcome of each cell of a booking answer, as the engine says it:
 * cells_refused[] is indexed by gch_reason_t - 1.
 */
void
ngx_http_guichet_count_cells(gch_book_t *book)
{
    size_t                       i, n;
    gch_reason_t                 reason;
    ngx_http_guichet_metrics_t  *m = ngx_http_guichet_worker.metrics;

    if (m == NULL) {
        return;
    }

    n = gch_book_ncells(book);

    for (i = 0; i < n; i++) {
        reason = gch_book_cell_outcome(book, i);

        if (reason == GCH_REASON_NONE) {
            (void) ngx_atomic_fetch_add(&m->cells_confirmed, 1);

        } else if ((ngx_uint_t) reason < GCH_REASON_COUNT) {
            (void) ngx_atomic_fetch_add(&m->cells_refused[reason - 1], 1);
        }
    }
}


/* the Redis adapter's hooks */

void
ngx_http_guichet_metrics_redis_sent(void)
{
    ngx_http_guichet_metrics_t  *m = ngx_http_guichet_worker.metrics;

    if (m) {
        (void) ngx_atomic_fetch_add(&m->redis_round_trips, 1);
    }
}


void
ngx_http_guichet_metrics_redis_replied(redisReply *reply)
{
    ngx_http_guichet_metrics_t  *m = ngx_http_guichet_worker.metrics;

    if (m && (reply == NULL || reply->type == REDIS_REPLY_ERROR)) {
        (void) ngx_atomic_fetch_add(&m->redis_errors, 1);
    }
}


void
ngx_http_guichet_metrics_redis_reconnecting(void)
{
    ngx_http_guichet_metrics_t  *m = ngx_http_guichet_worker.metrics;

    if (m) {
        (void) ngx_atomic_fetch_add(&m->redis_reconnects, 1);
    }
}


void
ngx_http_guichet_metrics_redis_redirected(ngx_uint_t ask)
{
    ngx_http_guichet_metrics_t  *m = ngx_http_guichet_worker.metrics;

    if (m) {
        (void) ngx_atomic_fetch_add(ask ? &m->redis_ask : &m->redis_moved, 1);
    }
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

static void ngx_http_guichet_metrics_done(ngx_http_guichet_op_t *op,
    redisReply *reply);
static ngx_int_t ngx_http_guichet_metrics_send(ngx_http_request_t *r,
    redisReply *redis);
static u_char *ngx_http_guichet_metrics_redis(u_char *p, u_char *last,
    redisReply *redis);


/* The metrics location: counters at once, stream and worker from Redis. */
ngx_int_t
ngx_http_guichet_metrics_handler(ngx_http_request_t *r)
{
    ngx_http_guichet_op_t  *op;
    static const char      *fmts[] = {
        "MULTI", "XLEN " GCH_KEY_STREAM, "GET " GCH_KEY_HEARTBEAT, "EXEC"
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


/*
 * The towns whose generations the zone guichet_catalogues holds (0
 * without it) and the worker slots /metrics shows: worker_processes, at
 * most NGX_HTTP_GUICHET_METRICS_SLOTS, 1 without a master.
 */
static void
ngx_http_guichet_held_shape(ngx_uint_t *ntowns, ngx_uint_t *workers)
{
    ngx_core_conf_t               *ccf;
    ngx_http_guichet_main_conf_t  *gmcf = ngx_http_guichet_worker.gmcf;

    ccf = (ngx_core_conf_t *) ngx_get_conf(ngx_cycle->conf_ctx,
                                           ngx_core_module);
    *workers = (ngx_process == NGX_PROCESS_SINGLE)
               ? 1 : ngx_min((ngx_uint_t) ccf->worker_processes,
                             NGX_HTTP_GUICHET_METRICS_SLOTS);
    *ntowns = gmcf->catalogues_zone && gmcf->catalogues_zone->data
              ? ngx_http_guichet_worker.ntowns : 0;
}


/* The bytes ngx_http_guichet_held_print() writes at most: each town's two
   generations per worker, a line at most 96 + the town's id. */
static size_t
ngx_http_guichet_held_bytes(void)
{
    size_t                         size;
    ngx_str_t                     *ids;
    ngx_uint_t                     i, ntowns, workers;
    ngx_http_guichet_main_conf_t  *gmcf = ngx_http_guichet_worker.gmcf;

    ngx_http_guichet_held_shape(&ntowns, &workers);
    ids = gmcf->towns ? gmcf->towns->elts : NULL;
    size = 0;

    for (i = 0; i < ntowns; i++) {
        size += 2 * workers * (96 + ids[i].len);
    }

    return size;
}


/* The generations of each town's catalogue and revoked set each worker
   holds, with its pid. */
static u_char *
ngx_http_guichet_held_print(u_char *p, u_char *last)
{
    ngx_str_t                     *ids;
    ngx_uint_t                     i, j, k, ntowns, workers;
    ngx_http_guichet_main_conf_t  *gmcf = ngx_http_guichet_worker.gmcf;
    static const char             *held[] = { "catalogue", "revoked" };

    ngx_http_guichet_held_shape(&ntowns, &workers);
    ids = gmcf->towns ? gmcf->towns->elts : NULL;

    for (k = 0; k < 2; k++) {
        p = ngx_slprintf(p, last, "# TYPE guichet_%s_generation gauge\n",
                         held[k]);
        for (i = 0; i < ntowns; i++) {
            for (j = 0; j < workers; j++) {
                p = ngx_slprintf(p, last,
                                 "guichet_%s_generation{town=\"%V\","
                                 "worker=\"%ui\",pid=\"%uA\"} %uA\n",
                                 held[k], &ids[i], j,
                                 *ngx_http_guichet_held_gen(gmcf, i, j,
                                     NGX_HTTP_GUICHET_HELD_PID),
                                 *ngx_http_guichet_held_gen(gmcf, i, j, k));
            }
        }
    }

    return p;
}


/*
 * The counters of the shared zone, plus what Redis says of the stream
 * (XLEN {T}:stream) and of the worker (its heartbeat: lag, dead
 * letters) when the EXEC reply is there; without Redis those are absent.
 */
static ngx_int_t
ngx_http_guichet_metrics_send(ngx_http_request_t *r, redisReply *redis)
{
    u_char                      *p, *last;
    ngx_int_t                    rc;
    ngx_buf_t                   *b;
    ngx_uint_t                   i, cum;
    ngx_chain_t                  out;
    ngx_uint_t                   j, k;
    ngx_atomic_t                *sum, *slot;
    ngx_http_guichet_metrics_t  *m;
    static const char           *classes[] = {
        "0xx", "1xx", "2xx", "3xx", "4xx", "5xx", "6xx", "7xx"
    };

    if (ngx_http_guichet_worker.metrics == NULL) {
        return NGX_HTTP_SERVICE_UNAVAILABLE;
    }

    /* the workers' slots added up, field by field */

    m = ngx_pcalloc(r->pool, sizeof(ngx_http_guichet_metrics_t));
    if (m == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    sum = (ngx_atomic_t *) m;

    for (j = 0; j < NGX_HTTP_GUICHET_METRICS_SLOTS; j++) {
        slot = (ngx_atomic_t *) ((u_char *)
                   ngx_http_guichet_worker.gmcf->metrics_zone->data
                   + j * NGX_HTTP_GUICHET_METRICS_SLOT);

        for (k = 0;
             k < sizeof(ngx_http_guichet_metrics_t) / sizeof(ngx_atomic_t);
             k++)
        {
            sum[k] += slot[k];
        }
    }

    b = ngx_create_temp_buf(r->pool, 8192 + ngx_http_guichet_held_bytes());
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
    for (i = GCH_REASON_NONE + 1; i < GCH_REASON_COUNT; i++) {
        p = ngx_slprintf(p, last,
                         "guichet_cells_total{outcome=\"refused\","
                         "reason=\"%s\"} %uA\n",
                         gch_reason_name(i), m->cells_refused[i - 1]);
    }

    p = ngx_slprintf(p, last,
                     "# TYPE guichet_redis_round_trips_total counter\n"
                     "guichet_redis_round_trips_total %uA\n"
                     "# TYPE guichet_redis_errors_total counter\n"
                     "guichet_redis_errors_total %uA\n"
                     "# TYPE guichet_redis_reconnects_total counter\n"
                     "guichet_redis_reconnects_total %uA\n"
                     "# TYPE guichet_redis_redirects_total counter\n"
                     "guichet_redis_redirects_total{kind=\"moved\"} %uA\n"
                     "guichet_redis_redirects_total{kind=\"ask\"} %uA\n"
                     "# TYPE guichet_in_flight gauge\n"
                     "guichet_in_flight %uA\n"
                     "# TYPE guichet_fenced_total counter\n"
                     "guichet_fenced_total %uA\n"
                     "# TYPE guichet_catalogue_reloads_total counter\n"
                     "guichet_catalogue_reloads_total %uA\n"
                     "# TYPE guichet_password_checks_total counter\n"
                     "guichet_password_checks_total %uA\n"
                     "# TYPE guichet_token_checks_total counter\n"
                     "guichet_token_checks_total %uA\n"
                     "# TYPE guichet_token_cache_bytes gauge\n"
                     "guichet_token_cache_bytes %uA\n",
                     m->redis_round_trips, m->redis_errors,
                     m->redis_reconnects, m->redis_moved, m->redis_ask,
                     m->in_flight, m->fenced,
                     m->catalogue_reloads, m->password_checks,
                     m->token_checks, m->token_cache_bytes);

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

    p = ngx_http_guichet_held_print(p, last);
    p = ngx_http_guichet_metrics_redis(p, last, redis);

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


/* What Redis said (XLEN of the stream, the worker's heartbeat), if it did. */
static u_char *
ngx_http_guichet_metrics_redis(u_char *p, u_char *last, redisReply *redis)
{
    char        *s;
    redisReply  *hb;

    if (redis == NULL || redis->type != REDIS_REPLY_ARRAY
        || redis->elements != 2)
    {
        return p;
    }

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

    return p;
}
