/*
 * ngx_http_guichet_catalogue.c -- what a worker process knows of the town:
 * the published catalogue (parsed by the engine, counted by the
 * operations that use it), the sold-out cache that rides on it, the set
 * of revoked tokens, and their refresher; also the heap allocator the
 * engine's objects live in.
 *
 * One of each per town (guichet_town; ngx_http_guichet_tenant_t): every
 * guichet_catalogue_refresh the refresher asks Redis for each town's
 * catalogue generation ({T}:catalogue:gen) and revoked set's
 * ({T}:revoked:gen), and reloads what moved.  It talks to Redis through
 * the adapter (ngx_http_guichet_redis.h) only.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <sodium.h>

#include "gch_keys.h"
#include "ngx_http_guichet.h"


static ngx_event_t  ngx_http_guichet_refresh_ev;
static ngx_uint_t   ngx_http_guichet_exiting;
static ngx_uint_t   ngx_http_guichet_cat_seq;


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

ngx_http_guichet_tenant_t *
ngx_http_guichet_tenant(ngx_http_request_t *r)
{
    ngx_uint_t                    i;
    ngx_http_guichet_worker_t    *w = &ngx_http_guichet_worker;
    ngx_http_guichet_loc_conf_t  *glcf;

    glcf = ngx_http_get_module_loc_conf(r, ngx_http_guichet_module);

    if (glcf->town_index < w->ntowns) {
        return &w->towns[glcf->town_index];
    }

    /*
     * A location that serves no town ($guichet_family evaluated for a
     * static page): the state of its town if another location serves
     * it, else the empty one past the end (no catalogue, nothing revoked).
     */
    for (i = 0; i < w->ntowns; i++) {
        if (w->towns[i].id.len == glcf->town.len
            && ngx_strncmp(w->towns[i].id.data, glcf->town.data,
                           glcf->town.len) == 0)
        {
            return &w->towns[i];
        }
    }

    return &w->towns[w->ntowns];
}


ngx_http_guichet_cat_t *
ngx_http_guichet_cat_acquire(ngx_http_guichet_tenant_t *w)
{
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
 * The generation of w's catalogue or revoked set (what) this worker holds,
 * for /metrics (0: none), or its pid.
 */
static void
ngx_http_guichet_held(ngx_http_guichet_tenant_t *w, ngx_uint_t what,
    long long gen)
{
    ngx_http_guichet_main_conf_t  *gmcf = ngx_http_guichet_worker.gmcf;

    /* the empty state past the end (a location serving no town) has no
       cell: the token cache's bytes follow the towns' */
    if (gmcf->catalogues_zone == NULL || gmcf->catalogues_zone->data == NULL
        || (ngx_uint_t) (w - ngx_http_guichet_worker.towns)
           >= ngx_http_guichet_worker.ntowns)
    {
        return;
    }

    *ngx_http_guichet_held_gen(gmcf, w - ngx_http_guichet_worker.towns,
                               ngx_worker % NGX_HTTP_GUICHET_METRICS_SLOTS,
                               what)
        = (ngx_atomic_t) (gen > 0 ? gen : 0);
}


/*
 * Installs a freshly parsed catalogue (taking ownership) or, with NULL,
 * records that Redis has none: bookings then answer 503 (fail closed).
 */
static void
ngx_http_guichet_catalogue_set(ngx_http_guichet_tenant_t *w,
    gch_town_t *town, long long gen)
{
    ngx_http_guichet_cat_t     *cat;
    ngx_time_t                 *tp;
    ngx_log_t                  *log = ngx_http_guichet_worker.log;

    w->ready_checked = ngx_current_msec;

    if (town == NULL) {
        if (w->ready) {
            ngx_log_error(NGX_LOG_WARN, log, 0,
                          "guichet: catalogue of town \"%V\" gone from "
                          "Redis, bookings closed until it is published "
                          "again", &w->id);
        }

        w->ready = 0;
        ngx_http_guichet_held(w, NGX_HTTP_GUICHET_HELD_CATALOGUE, 0);
        return;
    }

    cat = ngx_alloc(sizeof(ngx_http_guichet_cat_t), log);
    if (cat == NULL) {
        gch_town_free(town);
        return;
    }

    cat->town = town;
    cat->gen = gen;
    cat->seq = ++ngx_http_guichet_cat_seq;
    cat->refs = 1;                       /* the worker's own reference */
    /* full_until, then full_probe: one allocation */
    cat->full_until = ngx_calloc(2 * (town->nsessions + 1) * sizeof(int64_t),
                                 log);
    if (cat->full_until == NULL) {
        gch_town_free(town);
        ngx_free(cat);
        return;
    }

    cat->full_probe = cat->full_until + town->nsessions + 1;

    if (w->cat) {
        ngx_http_guichet_cat_release(w->cat);
    }

    w->cat = cat;
    w->ready = 1;
    ngx_http_guichet_held(w, NGX_HTTP_GUICHET_HELD_CATALOGUE, gen);

    ngx_http_guichet_tokc_fit(log);

    /* read with its generation in one MULTI: the newest at that moment */
    tp = ngx_timeofday();
    w->confirmed_ms = (int64_t) tp->sec * 1000 + tp->msec;

    if (ngx_http_guichet_worker.metrics) {
        (void) ngx_atomic_fetch_add(
                   &ngx_http_guichet_worker.metrics->catalogue_reloads, 1);
    }

    ngx_log_error(NGX_LOG_INFO, log, 0,
                  "guichet: town \"%V\": catalogue generation %L loaded, "
                  "%uz sessions, %uz families", &w->id, gen, town->nsessions,
                  town->nfamilies);
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
ngx_http_guichet_token_revoked(ngx_http_guichet_tenant_t *w,
    const u_char *hash)
{
    return w->nrevoked
           && bsearch(hash, w->revoked, w->nrevoked,
                      NGX_HTTP_GUICHET_TOKEN_HASH,
                      ngx_http_guichet_hash_cmp) != NULL;
}


/* Replaces the worker's revoked set; takes ownership of hashes. */
static void
ngx_http_guichet_revoked_set(ngx_http_guichet_tenant_t *w, u_char *hashes,
    ngx_uint_t n, long long gen)
{
    qsort(hashes, n, NGX_HTTP_GUICHET_TOKEN_HASH, ngx_http_guichet_hash_cmp);

    if (w->revoked) {
        ngx_free(w->revoked);
    }

    w->revoked = hashes;
    w->nrevoked = n;
    w->revoked_gen = gen;
    ngx_http_guichet_held(w, NGX_HTTP_GUICHET_HELD_REVOKED, gen);
}


/* This worker knows at once; the others at their next refresh. */
void
ngx_http_guichet_revoked_add(ngx_http_guichet_tenant_t *w,
    const u_char *hash)
{
    u_char  *p;

    if (ngx_http_guichet_token_revoked(w, hash)) {
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

    ngx_http_guichet_revoked_set(w, p, w->nrevoked + 1, w->revoked_gen);
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
    ngx_http_guichet_tenant_t  *w = data;

    w->refreshing = 0;

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY
        || reply->elements != 2)
    {
        return;
    }

    g = reply->element[0];
    cat = reply->element[1];

    if (g->type != REDIS_REPLY_STRING || cat->type != REDIS_REPLY_STRING) {
        ngx_http_guichet_catalogue_set(w, NULL, 0);
        return;
    }

    gen = strtoll(g->str, NULL, 10);

    rc = gch_town_parse(&town, cat->str, cat->len,
                        &ngx_http_guichet_heap_alloc, &err);
    if (rc != GCH_OK) {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "guichet: town \"%V\": catalogue generation %L "
                      "refused: %s", &w->id, gen, err.message);
        return;
    }

    if (ngx_strcmp(town->id, w->id.data) != 0) {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "guichet: the catalogue under the keys of town "
                      "\"%V\" is the catalogue of town \"%s\": refused",
                      &w->id, town->id);
        gch_town_free(town);
        return;
    }

    ngx_http_guichet_catalogue_set(w, town, gen);
}


static void
ngx_http_guichet_gen_checked(redisReply *reply, void *data)
{
    long long                   gen;
    ngx_time_t                 *tp;
    ngx_http_guichet_tenant_t  *w = data;

    if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
        w->refreshing = 0;
        return;
    }

    if (reply->type == REDIS_REPLY_NIL) {
        w->refreshing = 0;
        ngx_http_guichet_catalogue_set(w, NULL, 0);
        return;
    }

    gen = (reply->type == REDIS_REPLY_STRING)
          ? strtoll(reply->str, NULL, 10) : -1;

    if (w->cat && gen == w->cat->gen) {
        tp = ngx_timeofday();
        w->refreshing = 0;
        w->ready = 1;
        ngx_http_guichet_held(w, NGX_HTTP_GUICHET_HELD_CATALOGUE, gen);
        w->ready_checked = ngx_current_msec;
        w->confirmed_ms = (int64_t) tp->sec * 1000 + tp->msec;
        return;
    }

    /* on the same connection: sent in a row, in this turn */
    (void) ngx_http_guichet_redis_command(NULL, NULL, "MULTI");
    (void) ngx_http_guichet_redis_command(NULL, NULL,
                                          "GET " GCH_KEY_CATALOGUE_GEN,
                                          w->id.data);
    (void) ngx_http_guichet_redis_command(NULL, NULL,
                                          "GET " GCH_KEY_CATALOGUE,
                                          w->id.data);
    if (ngx_http_guichet_redis_command(ngx_http_guichet_catalogue_loaded,
                                       w, "EXEC")
        != NGX_OK)
    {
        w->refreshing = 0;
    }
}


/* revoked tokens: reloaded when {T}:revoked:gen changes */

static void
ngx_http_guichet_revoked_loaded(redisReply *reply, void *data)
{
    u_char                     *hashes, *p;
    size_t                      i, n;
    ngx_http_guichet_tenant_t  *w = data;

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

    ngx_http_guichet_revoked_set(w, hashes, n, w->revoked_loading);
}


static void
ngx_http_guichet_revoked_checked(redisReply *reply, void *data)
{
    long long                   gen;
    ngx_http_guichet_tenant_t  *w = data;

    if (reply == NULL || reply->type != REDIS_REPLY_STRING) {
        return;
    }

    gen = strtoll(reply->str, NULL, 10);

    if (gen == w->revoked_gen) {
        return;
    }

    w->revoked_loading = gen;

    (void) ngx_http_guichet_redis_command(ngx_http_guichet_revoked_loaded,
                                          w,
                                          "ZRANGEBYSCORE " GCH_KEY_REVOKED
                                          " %lld +inf", w->id.data,
                                          (long long) ngx_time());
}


/* One look at the town's generation (and its revoked tokens), if none is
 * out. */
static void
ngx_http_guichet_refresh_now(ngx_http_guichet_tenant_t *w)
{
    if (w->refreshing) {
        return;
    }

    if (ngx_http_guichet_redis_command(ngx_http_guichet_gen_checked, w,
                                       "GET " GCH_KEY_CATALOGUE_GEN,
                                       w->id.data)
        == NGX_OK)
    {
        w->refreshing = 1;

        (void) ngx_http_guichet_redis_command(
                   ngx_http_guichet_revoked_checked, w,
                   "GET " GCH_KEY_REVOKED_GEN, w->id.data);
    }
}


static void
ngx_http_guichet_refresh_handler(ngx_event_t *ev)
{
    ngx_uint_t  i;

    if (ngx_exiting || ngx_terminate || ngx_http_guichet_exiting) {
        return;
    }

    ngx_add_timer(ev, ngx_http_guichet_worker.gmcf->catalogue_refresh);

    for (i = 0; i < ngx_http_guichet_worker.ntowns; i++) {
        ngx_http_guichet_refresh_now(&ngx_http_guichet_worker.towns[i]);
    }
}


/*
 * A request named a family the catalogue does not know with a token newer
 * than the catalogue (503 catalogue_behind): look now rather than at the
 * next guichet_catalogue_refresh, so that the client's retry after
 * Retry-After finds the new catalogue.  At most one look per 100 ms.
 */
void
ngx_http_guichet_catalogue_kick(ngx_http_guichet_tenant_t *w)
{
    if (ngx_exiting || ngx_terminate || ngx_http_guichet_exiting) {
        return;
    }

    if (w->kicked && ngx_current_msec - w->kicked_at < 100) {
        return;
    }

    w->kicked = 1;
    w->kicked_at = ngx_current_msec;

    ngx_http_guichet_refresh_now(w);
}


/* Once per worker process, after the Redis pool: one state per town, the
 * first look soon. */
ngx_int_t
ngx_http_guichet_catalogue_init(ngx_cycle_t *cycle)
{
    ngx_str_t                     *ids;
    ngx_uint_t                     i, n;
    ngx_http_guichet_tenant_t     *t;
    ngx_http_guichet_main_conf_t  *gmcf = ngx_http_guichet_worker.gmcf;

    ngx_http_guichet_exiting = 0;

    n = gmcf->towns ? gmcf->towns->nelts : 0;
    ids = gmcf->towns ? gmcf->towns->elts : NULL;

    t = ngx_pcalloc(cycle->pool,
                    (n + 1) * sizeof(ngx_http_guichet_tenant_t));
    if (t == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < n; i++) {
        t[i].id = ids[i];
    }

    ngx_http_guichet_worker.towns = t;
    ngx_http_guichet_worker.ntowns = n;

    /* none yet (a worker respawned in the same slot starts from nothing) */
    for (i = 0; i < n; i++) {
        ngx_http_guichet_held(&t[i], NGX_HTTP_GUICHET_HELD_CATALOGUE, 0);
        ngx_http_guichet_held(&t[i], NGX_HTTP_GUICHET_HELD_REVOKED, 0);
        ngx_http_guichet_held(&t[i], NGX_HTTP_GUICHET_HELD_PID, ngx_pid);
    }

    ngx_http_guichet_refresh_ev.handler = ngx_http_guichet_refresh_handler;
    ngx_http_guichet_refresh_ev.log = cycle->log;
    ngx_http_guichet_refresh_ev.data = NULL;
    ngx_http_guichet_refresh_ev.cancelable = 1;

    /* first look right after the connections come up */
    ngx_add_timer(&ngx_http_guichet_refresh_ev, 20);

    return NGX_OK;
}


/* Stops the refresher; lets go of the catalogues and the revoked sets. */
void
ngx_http_guichet_catalogue_exit(ngx_cycle_t *cycle)
{
    ngx_uint_t                  i;
    ngx_http_guichet_tenant_t  *w;

    ngx_http_guichet_exiting = 1;

    if (ngx_http_guichet_refresh_ev.timer_set) {
        ngx_del_timer(&ngx_http_guichet_refresh_ev);
    }

    for (i = 0; i < ngx_http_guichet_worker.ntowns; i++) {
        w = &ngx_http_guichet_worker.towns[i];

        if (w->cat) {
            ngx_http_guichet_cat_release(w->cat);
            w->cat = NULL;
        }

        if (w->revoked) {
            ngx_free(w->revoked);
            w->revoked = NULL;
            w->nrevoked = 0;
        }
    }
}
