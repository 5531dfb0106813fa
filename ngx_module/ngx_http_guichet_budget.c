/*
 * ngx_http_guichet_budget.c -- a family's booking budget (issue 18) in a
 * zone of shared memory (guichet_budget_zone), kept the way nginx's
 * limit_req keeps its state: one node per family charged lately (its town
 * and its id), in a red-black tree and in a queue from the last charged to
 * the least recently charged, under the zone's mutex.
 *
 * The rule (what a request costs, the window, the limit, the Retry-After)
 * is the engine's gch_family_charge(); this file only keeps the counts and
 * passes the time.  The zone is shared by the nginx workers of one host
 * and survives a reload when its size is unchanged; with several nginx
 * hosts, a family's budget is per host (docs/directives.md).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_guichet.h"


typedef struct {
    ngx_rbtree_t                    rbtree;
    ngx_rbtree_node_t               sentinel;
    ngx_queue_t                     queue;      /* head: the last charged */
} ngx_http_guichet_budget_sh_t;


typedef struct {
    ngx_http_guichet_budget_sh_t   *sh;
    ngx_slab_pool_t                *shpool;
} ngx_http_guichet_budget_ctx_t;


typedef struct {
    ngx_str_node_t                  sn;         /* sn.str: key below */
    ngx_queue_t                     queue;
    gch_family_budget_t             fb;
    u_char                          key[1];     /* "<town>\0<family id>" */
} ngx_http_guichet_budget_node_t;


static ngx_int_t ngx_http_guichet_budget_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static void ngx_http_guichet_budget_expire(
    ngx_http_guichet_budget_ctx_t *ctx, int64_t now_ms, ngx_uint_t force);
static ngx_http_guichet_budget_node_t *ngx_http_guichet_budget_node(
    ngx_http_guichet_budget_ctx_t *ctx, ngx_str_t *key, uint32_t hash,
    int64_t now_ms);


/* From the postconfiguration: the zone "guichet_budget" of the size of
 * guichet_budget_zone. */
ngx_int_t
ngx_http_guichet_budget_zone_add(ngx_conf_t *cf,
    ngx_http_guichet_main_conf_t *gmcf)
{
    ngx_str_t                       name;
    ngx_http_guichet_budget_ctx_t  *ctx;

    ctx = ngx_pcalloc(cf->pool, sizeof(ngx_http_guichet_budget_ctx_t));
    if (ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_str_set(&name, "guichet_budget");

    gmcf->budget_zone = ngx_shared_memory_add(cf, &name,
                                              gmcf->budget_zone_size,
                                              &ngx_http_guichet_module);
    if (gmcf->budget_zone == NULL) {
        return NGX_ERROR;
    }

    gmcf->budget_zone->init = ngx_http_guichet_budget_init_zone;
    gmcf->budget_zone->data = ctx;

    return NGX_OK;
}


/* A reload with the same size keeps the zone, and with it the counts. */
static ngx_int_t
ngx_http_guichet_budget_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_guichet_budget_ctx_t  *octx = data;

    size_t                          len;
    ngx_http_guichet_budget_ctx_t  *ctx;

    ctx = shm_zone->data;

    if (octx) {
        ctx->sh = octx->sh;
        ctx->shpool = octx->shpool;
        return NGX_OK;
    }

    ctx->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        ctx->sh = ctx->shpool->data;
        return NGX_OK;
    }

    ctx->sh = ngx_slab_alloc(ctx->shpool,
                             sizeof(ngx_http_guichet_budget_sh_t));
    if (ctx->sh == NULL) {
        return NGX_ERROR;
    }

    ctx->shpool->data = ctx->sh;

    ngx_rbtree_init(&ctx->sh->rbtree, &ctx->sh->sentinel,
                    ngx_str_rbtree_insert_value);
    ngx_queue_init(&ctx->sh->queue);

    len = sizeof(" in guichet_budget_zone \"\"") + shm_zone->shm.name.len;

    ctx->shpool->log_ctx = ngx_slab_alloc(ctx->shpool, len);
    if (ctx->shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(ctx->shpool->log_ctx, " in guichet_budget_zone \"%V\"%Z",
                &shm_zone->shm.name);

    /* a full zone forgets the least recently charged family, quietly */
    ctx->shpool->log_nomem = 0;

    return NGX_OK;
}


/*
 * Charges one request of nitems of the family fid of town at now_ms: 0 to
 * go on, else the Retry-After of its 429 (gch_family_charge()).  A zone
 * too small to hold one more family even after forgetting the least
 * recently charged lets the request go, logged: the budget slows a
 * runaway client, it never refuses a booking for want of memory.
 */
long long
ngx_http_guichet_budget_charge(ngx_str_t *town, const char *fid,
    size_t nitems, int64_t now_ms)
{
    u_char                          buf[NGX_HTTP_GUICHET_BUDGET_KEY], *p;
    size_t                          fid_len;
    uint32_t                        hash;
    long long                       retry_after;
    ngx_str_t                       key;
    ngx_http_guichet_budget_ctx_t  *ctx;
    ngx_http_guichet_budget_node_t *node;
    ngx_http_guichet_main_conf_t   *gmcf;

    gmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_guichet_module);
    if (gmcf == NULL || gmcf->budget_zone == NULL) {
        return 0;
    }

    ctx = gmcf->budget_zone->data;
    fid_len = ngx_strlen(fid);

    if (town->len + 1 + fid_len > sizeof(buf)) {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "guichet: family id \"%s\" too long for its budget",
                      fid);
        return 0;
    }

    p = ngx_cpymem(buf, town->data, town->len);
    *p++ = '\0';
    p = ngx_cpymem(p, fid, fid_len);

    key.data = buf;
    key.len = p - buf;

    hash = ngx_crc32_short(key.data, key.len);

    ngx_shmtx_lock(&ctx->shpool->mutex);

    ngx_http_guichet_budget_expire(ctx, now_ms, 0);

    node = ngx_http_guichet_budget_node(ctx, &key, hash, now_ms);

    if (node == NULL) {
        ngx_shmtx_unlock(&ctx->shpool->mutex);

        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "guichet: guichet_budget_zone is full, family \"%s\" "
                      "not charged", fid);
        return 0;
    }

    retry_after = gch_family_charge(&node->fb, nitems, now_ms);

    ngx_shmtx_unlock(&ctx->shpool->mutex);

    return retry_after;
}


/* The family's node, the last charged now (made if missing), or NULL. */
static ngx_http_guichet_budget_node_t *
ngx_http_guichet_budget_node(ngx_http_guichet_budget_ctx_t *ctx,
    ngx_str_t *key, uint32_t hash, int64_t now_ms)
{
    size_t                           size;
    ngx_uint_t                       tries;
    ngx_str_node_t                  *sn;
    ngx_http_guichet_budget_node_t  *node;

    sn = ngx_str_rbtree_lookup(&ctx->sh->rbtree, key, hash);

    if (sn) {
        node = (ngx_http_guichet_budget_node_t *) sn;
        ngx_queue_remove(&node->queue);
        ngx_queue_insert_head(&ctx->sh->queue, &node->queue);
        return node;
    }

    size = offsetof(ngx_http_guichet_budget_node_t, key) + key->len;

    for (tries = 0; tries < 8; tries++) {
        node = ngx_slab_alloc_locked(ctx->shpool, size);
        if (node) {
            break;
        }

        if (ngx_queue_empty(&ctx->sh->queue)) {
            return NULL;
        }

        ngx_http_guichet_budget_expire(ctx, now_ms, 1);
    }

    if (node == NULL) {
        return NULL;
    }

    ngx_memzero(node, offsetof(ngx_http_guichet_budget_node_t, key));
    ngx_memcpy(node->key, key->data, key->len);
    node->sn.node.key = hash;
    node->sn.str.data = node->key;
    node->sn.str.len = key->len;

    ngx_rbtree_insert(&ctx->sh->rbtree, &node->sn.node);
    ngx_queue_insert_head(&ctx->sh->queue, &node->queue);

    return node;
}


/*
 * Forgets, from the least recently charged, at most two families whose
 * window is over; with force, the least recently charged one first
 * whatever its window (the zone is full).
 */
static void
ngx_http_guichet_budget_expire(ngx_http_guichet_budget_ctx_t *ctx,
    int64_t now_ms, ngx_uint_t force)
{
    ngx_uint_t                       n;
    ngx_queue_t                     *q;
    ngx_http_guichet_budget_node_t  *node;

    for (n = 0; n < 3; n++) {

        if (ngx_queue_empty(&ctx->sh->queue)) {
            return;
        }

        q = ngx_queue_last(&ctx->sh->queue);
        node = ngx_queue_data(q, ngx_http_guichet_budget_node_t, queue);

        if (!force && !gch_family_window_over(&node->fb, now_ms)) {
            return;
        }

        force = 0;

        ngx_queue_remove(q);
        ngx_rbtree_delete(&ctx->sh->rbtree, &node->sn.node);
        ngx_slab_free_locked(ctx->shpool, node);
    }
}
