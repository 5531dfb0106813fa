/*
 * ngx_http_guichet_catalogue.c -- what a worker process knows of the town:
 * the published catalogue (parsed by the engine, counted by the
 * operations that use it), the sold-out cache that rides on it, the set
 * of revoked tokens, and their refresher; also the heap allocator the
 * engine's objects live in.
 *
 * Every guichet_catalogue_refresh the refresher asks Redis for the
 * catalogue's generation (gch:catalogue:gen) and the revoked set's
 * (gch:revoked:gen), and reloads what moved.  It talks to Redis through
 * the adapter (ngx_http_guichet_redis.h) only.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <sodium.h>

#include "gch_keys.h"
#include "ngx_http_guichet.h"


static ngx_event_t  ngx_http_guichet_refresh_ev;
static ngx_uint_t   ngx_http_guichet_refreshing;
static ngx_uint_t   ngx_http_guichet_exiting;


/* the heap */

static void *
ngx_http_guichet_heap_malloc(void *ctx, size_t size)
{
    return ngx_alloc(size, ngx_cycle->log);
}


static void
ngx_http_guichet_heap_free(void *ctx, void *p)
{
    if (p) {
        ngx_free(p);
    }
}


/* Engine objects that may outlive their request live on the heap. */
const gch_alloc_t  ngx_http_guichet_heap_alloc = {
    ngx_http_guichet_heap_malloc,
    ngx_http_guichet_heap_free,
    NULL
};


/* the catalogue */

ngx_http_guichet_cat_t *
ngx_http_guichet_cat_acquire(void)
{
    ngx_http_guichet_worker_t  *w = &ngx_http_guichet_worker;

    if (!w->ready || w->cat == NULL) {
        return NULL;
    }

    w->cat->refs++;
    return w->cat;
}


/* Drops one reference; the last one frees the catalogue. */
void
ngx_http_guichet_cat_release(ngx_http_guichet_cat_t *cat)
{
    if (cat == NULL || --cat->refs > 0) {
        return;
    }

    gch_town_free(cat->town);

    if (cat->full_until) {
        ngx_free(cat->full_until);
    }

    ngx_free(cat);
}


/*
 * Installs a freshly parsed catalogue (taking ownership) or, with NULL,
 * records that Redis has none: bookings then answer 503 (fail closed).
 */
static void
ngx_http_guichet_catalogue_set(gch_town_t *town, long long gen)
{
    ngx_http_guichet_cat_t     *cat;
    ngx_time_t                 *tp;
    ngx_http_guichet_worker_t  *w = &ngx_http_guichet_worker;

    w->ready_checked = ngx_current_msec;

    if (town == NULL) {
        if (w->ready) {
            ngx_log_error(NGX_LOG_WARN, w->log, 0,
                          "guichet: catalogue gone from Redis, "
                          "bookings closed until it is published again");
        }

        w->ready = 0;
        return;
    }

    cat = ngx_alloc(sizeof(ngx_http_guichet_cat_t), w->log);
    if (cat == NULL) {
        gch_town_free(town);
        return;
    }

    cat->town = town;
    cat->gen = gen;
    cat->refs = 1;                       /* the worker's own reference */
    cat->full_until = ngx_calloc((town->nsessions + 1) * sizeof(int64_t),
                                 w->log);
    if (cat->full_until == NULL) {
        gch_town_free(town);
        ngx_free(cat);
        return;
    }

    if (w->cat) {
        ngx_http_guichet_cat_release(w->cat);
    }

    w->cat = cat;
    w->ready = 1;

    /* read with its generation in one MULTI: the newest at that moment */
    tp = ngx_timeofday();
    w->confirmed_ms = (int64_t) tp->sec * 1000 + tp->msec;

    if (w->metrics) {
        (void) ngx_atomic_fetch_add(&w->metrics->catalogue_reloads, 1);
    }

    ngx_log_error(NGX_LOG_INFO, w->log, 0,
                  "guichet: catalogue generation %L loaded, %uz sessions, "
                  "%uz families", gen, town->nsessions, town->nfamilies);
}


/* revoked tokens (logout): BLAKE2b-128 of the token, sorted */

void
ngx_http_guichet_token_hash(const u_char *tok, size_t len, u_char *out)
{
    gch_token_hash((const char *) tok, len, out);
}


static int
ngx_http_guichet_hash_cmp(const void *a, const void *b)
{
    return ngx_memcmp(a, b, NGX_HTTP_GUICHET_TOKEN_HASH);
}


ngx_uint_t
ngx_http_guichet_token_revoked(const u_char *hash)
{
    ngx_http_guichet_worker_t  *w = &ngx_http_guichet_worker;

    return w->nrevoked
           && bsearch(hash, w->revoked, w->nrevoked,
                      NGX_HTTP_GUICHET_TOKEN_HASH,
                      ngx_http_guichet_hash_cmp) != NULL;
}


/* Replaces the worker's revoked set; takes ownership of hashes. */
static void
ngx_http_guichet_revoked_set(u_char *hashes, ngx_uint_t n, long long gen)
{
    ngx_http_guichet_worker_t  *w = &ngx_http_guichet_worker;

    qsort(hashes, n, NGX_HTTP_GUICHET_TOKEN_HASH, ngx_http_guichet_hash_cmp);

    if (w->revoked) {
        ngx_free(w->revoked);
    }

    w->revoked = hashes;
    w->nrevoked = n;
    w->revoked_gen = gen;
}


/* This worker knows at once; the others at their next refresh. */
void
ngx_http_guichet_revoked_add(const u_char *hash)
{
    u_char                     *p;
    ngx_http_guichet_worker_t  *w = &ngx_http_guichet_worker;

    if (ngx_http_guichet_token_revoked(hash)) {
        return;
    }

    p = ngx_alloc((w->nrevoked + 1) * NGX_HTTP_GUICHET_TOKEN_HASH,
                  ngx_cycle->log);
    if (p == NULL) {
        return;
    }

    if (w->nrevoked) {
        ngx_memcpy(p, w->revoked, w->nrevoked * NGX_HTTP_GUICHET_TOKEN_HASH);
    }

    ngx_memcpy(p + w->nrevoked * NGX_HTTP_GUICHET_TOKEN_HASH, hash,
               NGX_HTTP_GUICHET_TOKEN_HASH);

    ngx_http_guichet_revoked_set(p, w->nrevoked + 1, w->revoked_gen);
}


/* the refresher */

static void
ngx_http_guichet_catalogue_loaded(redisReply *reply, void *data)
{
    int                 rc;
    long long           gen;
    gch_error_t         err;
    gch_town_t         *town;
    redisReply         *g, *cat;

    ngx_http_guichet_refreshing = 0;

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY
        || reply->elements != 2)
    {
        return;
    }

    g = reply->element[0];
    cat = reply->element[1];

    if (g->type != REDIS_REPLY_STRING || cat->type != REDIS_REPLY_STRING) {
        ngx_http_guichet_catalogue_set(NULL, 0);
        return;
    }

    gen = strtoll(g->str, NULL, 10);

    rc = gch_town_parse(&town, cat->str, cat->len,
                        &ngx_http_guichet_heap_alloc, &err);
    if (rc != GCH_OK) {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "guichet: catalogue generation %L refused: %s",
                      gen, err.message);
        return;
    }

    ngx_http_guichet_catalogue_set(town, gen);
}


static void
ngx_http_guichet_gen_checked(redisReply *reply, void *data)
{
    long long    gen;
    ngx_time_t  *tp;

    if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
        ngx_http_guichet_refreshing = 0;
        return;
    }

    if (reply->type == REDIS_REPLY_NIL) {
        ngx_http_guichet_refreshing = 0;
        ngx_http_guichet_catalogue_set(NULL, 0);
        return;
    }

    gen = (reply->type == REDIS_REPLY_STRING)
          ? strtoll(reply->str, NULL, 10) : -1;

    if (ngx_http_guichet_worker.cat
        && gen == ngx_http_guichet_worker.cat->gen)
    {
        tp = ngx_timeofday();
        ngx_http_guichet_refreshing = 0;
        ngx_http_guichet_worker.ready = 1;
        ngx_http_guichet_worker.ready_checked = ngx_current_msec;
        ngx_http_guichet_worker.confirmed_ms = (int64_t) tp->sec * 1000
                                               + tp->msec;
        return;
    }

    /* on the same connection: sent in a row, in this turn */
    (void) ngx_http_guichet_redis_command(NULL, NULL, "MULTI");
    (void) ngx_http_guichet_redis_command(NULL, NULL,
                                          "GET " GCH_KEY_CATALOGUE_GEN);
    (void) ngx_http_guichet_redis_command(NULL, NULL,
                                          "GET " GCH_KEY_CATALOGUE);
    if (ngx_http_guichet_redis_command(ngx_http_guichet_catalogue_loaded,
                                       NULL, "EXEC")
        != NGX_OK)
    {
        ngx_http_guichet_refreshing = 0;
    }
}


/* revoked tokens: reloaded when gch:revoked:gen changes */

static void
ngx_http_guichet_revoked_loaded(redisReply *reply, void *data)
{
    u_char       *hashes, *p;
    size_t        i, n;
    long long     gen;

    gen = (long long) (intptr_t) data;

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY) {
        return;
    }

    hashes = ngx_alloc(reply->elements * NGX_HTTP_GUICHET_TOKEN_HASH + 1,
                       ngx_cycle->log);
    if (hashes == NULL) {
        return;
    }

    n = 0;
    p = hashes;

    for (i = 0; i < reply->elements; i++) {
        if (reply->element[i]->type != REDIS_REPLY_STRING
            || reply->element[i]->len != 2 * NGX_HTTP_GUICHET_TOKEN_HASH
            || sodium_hex2bin(p, NGX_HTTP_GUICHET_TOKEN_HASH,
                              reply->element[i]->str,
                              reply->element[i]->len, NULL, NULL, NULL)
               != 0)
        {
            continue;
        }

        p += NGX_HTTP_GUICHET_TOKEN_HASH;
        n++;
    }

    ngx_http_guichet_revoked_set(hashes, n, gen);
}


static void
ngx_http_guichet_revoked_checked(redisReply *reply, void *data)
{
    long long    gen;

    if (reply == NULL || reply->type != REDIS_REPLY_STRING) {
        return;
    }

    gen = strtoll(reply->str, NULL, 10);

    if (gen == ngx_http_guichet_worker.revoked_gen) {
        return;
    }

    (void) ngx_http_guichet_redis_command(ngx_http_guichet_revoked_loaded,
                                          (void *) (intptr_t) gen,
                                          "ZRANGEBYSCORE " GCH_KEY_REVOKED
                                          " %lld +inf",
                                          (long long) ngx_time());
}


/* One look at the generation (and the revoked tokens), if none is out. */
static void
ngx_http_guichet_refresh_now(void)
{
    if (ngx_http_guichet_refreshing) {
        return;
    }

    if (ngx_http_guichet_redis_command(ngx_http_guichet_gen_checked, NULL,
                                       "GET " GCH_KEY_CATALOGUE_GEN)
        == NGX_OK)
    {
        ngx_http_guichet_refreshing = 1;

        (void) ngx_http_guichet_redis_command(
                   ngx_http_guichet_revoked_checked, NULL,
                   "GET " GCH_KEY_REVOKED_GEN);
    }
}


static void
ngx_http_guichet_refresh_handler(ngx_event_t *ev)
{
    if (ngx_exiting || ngx_terminate || ngx_http_guichet_exiting) {
        return;
    }

    ngx_add_timer(ev, ngx_http_guichet_worker.gmcf->catalogue_refresh);

    ngx_http_guichet_refresh_now();
}


/*
 * A request named a family the catalogue does not know with a token newer
 * than the catalogue (503 catalogue_behind): look now rather than at the
 * next guichet_catalogue_refresh, so that the client's retry after
 * Retry-After finds the new catalogue.  At most one look per 100 ms.
 */
void
ngx_http_guichet_catalogue_kick(void)
{
    static ngx_msec_t  last;
    static ngx_uint_t  kicked;

    if (ngx_exiting || ngx_terminate || ngx_http_guichet_exiting) {
        return;
    }

    if (kicked && ngx_current_msec - last < 100) {
        return;
    }

    kicked = 1;
    last = ngx_current_msec;

    ngx_http_guichet_refresh_now();
}




/* Once per worker process, after the Redis pool: the first look soon. */
void
ngx_http_guichet_catalogue_init(ngx_cycle_t *cycle)
{
    ngx_http_guichet_exiting = 0;
    ngx_http_guichet_refreshing = 0;

    ngx_http_guichet_refresh_ev.handler = ngx_http_guichet_refresh_handler;
    ngx_http_guichet_refresh_ev.log = cycle->log;
    ngx_http_guichet_refresh_ev.data = NULL;
    ngx_http_guichet_refresh_ev.cancelable = 1;

    /* first look right after the connections come up */
    ngx_add_timer(&ngx_http_guichet_refresh_ev, 20);
}


/* Stops the refresher; lets go of the catalogue and the revoked set. */
void
ngx_http_guichet_catalogue_exit(ngx_cycle_t *cycle)
{
    ngx_http_guichet_exiting = 1;

    if (ngx_http_guichet_refresh_ev.timer_set) {
        ngx_del_timer(&ngx_http_guichet_refresh_ev);
    }

    if (ngx_http_guichet_worker.cat) {
        ngx_http_guichet_cat_release(ngx_http_guichet_worker.cat);
        ngx_http_guichet_worker.cat = NULL;
    }

    if (ngx_http_guichet_worker.revoked) {
        ngx_free(ngx_http_guichet_worker.revoked);
        ngx_http_guichet_worker.revoked = NULL;
        ngx_http_guichet_worker.nrevoked = 0;
    }
}
