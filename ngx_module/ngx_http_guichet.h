/*
 * ngx_http_guichet.h -- shared declarations of the Guichet nginx adapter.
 *
 * One file per concern (docs/architecture.md, "The module's rooms"):
 *
 *   _module.c     directives, configuration, process start and exit, the
 *                 shared metrics zone;
 *   _budget.c     a family's booking budget in a shared memory zone
 *                 (guichet_budget_zone), shared by one host's workers;
 *   _catalogue.c  the worker's catalogue (refcounted), the sold-out cache,
 *                 the revoked tokens, their refresher, the heap allocator;
 *   _redis.c      the hiredis adapter (ngx_http_guichet_redis.h): knows
 *                 nothing of the application, calls nothing of it;
 *   _routes.c, _op.c, _session.c, _book.c, _cancel.c, _views.c,
 *   _metrics.c    the /api/ and /metrics requests
 *                 (ngx_http_guichet_api.h says who owns what).
 *
 * Business rules live in the engine (engine/include/gch.h), never here.
 */

#ifndef NGX_HTTP_GUICHET_H
#define NGX_HTTP_GUICHET_H

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "gch.h"
#include "ngx_http_guichet_redis.h"


typedef struct {
    ngx_str_t                 redis;            /* host:port or unix:path */
    ngx_str_t                 redis_password;
    ngx_uint_t                redis_pool;
    ngx_array_t              *redis_cluster;    /* ngx_str_t seeds, or NULL */
    ngx_uint_t                wait_replicas;    /* WAIT before a 2xx */
    ngx_msec_t                wait_timeout;
    ngx_msec_t                timeout;
    ngx_str_t                 secret_file;
    u_char                    secret[GCH_SECRET_LEN];
    ngx_flag_t                have_secret;
    ngx_uint_t                max_items;
    time_t                    idempotency_ttl;
    ngx_msec_t                catalogue_refresh;
    ngx_msec_t                full_cache;
    time_t                    token_ttl;
    ngx_str_t                 thread_pool_name;
    ngx_thread_pool_t        *thread_pool;
    ngx_shm_zone_t           *metrics_zone;
    ngx_shm_zone_t           *catalogues_zone;  /* the catalogue generation
                                                   each worker holds, per
                                                   town: below */
    size_t                    budget_zone_size;
    size_t                    token_cache_size; /* a worker's, at most */
    ngx_shm_zone_t           *budget_zone;      /* the families' budgets */
    ngx_flag_t                cookie_secure;    /* __Host-, Secure */
    ngx_array_t              *towns;            /* ngx_str_t: the towns the
                                                   locations serve */
} ngx_http_guichet_main_conf_t;


typedef struct {
    ngx_flag_t                api;
    ngx_flag_t                metrics;
    ngx_str_t                 town;             /* guichet_town, NUL-ended */
    ngx_uint_t                town_index;       /* in the main conf's towns
                                                   and the worker's */
} ngx_http_guichet_loc_conf_t;


/*
 * Counters shared by all workers (one shared memory zone): one slot of
 * them per worker (ngx_worker modulo NGX_HTTP_GUICHET_METRICS_SLOTS, each
 * slot on cache lines of its own), which /metrics adds up.  A worker's
 * atomic additions then stay in its own core's cache: when the two
 * workers added to the same lines, each addition waited for the line to
 * come back from the other core (issue 20, docs/benchmarks.md).  Every
 * field is an ngx_atomic_t (the sum goes field by field).
 */

#define NGX_HTTP_GUICHET_NBUCKETS  12
#define NGX_HTTP_GUICHET_METRICS_SLOTS  32
#define NGX_HTTP_GUICHET_METRICS_SLOT                                        \
    ngx_align(sizeof(ngx_http_guichet_metrics_t), 128)

typedef struct {
    ngx_atomic_t              requests[8];      /* by status class, below */
    ngx_atomic_t              cells_confirmed;
    ngx_atomic_t              cells_refused[16];   /* gch_reason_t - 1 */
    ngx_atomic_t              redis_round_trips;
    ngx_atomic_t              redis_errors;
    ngx_atomic_t              redis_reconnects;
    ngx_atomic_t              redis_moved;      /* cluster redirections */
    ngx_atomic_t              redis_ask;
    ngx_atomic_t              in_flight;
    ngx_atomic_t              latency_bucket[NGX_HTTP_GUICHET_NBUCKETS];
    ngx_atomic_t              latency_sum_us;
    ngx_atomic_t              latency_count;
    ngx_atomic_t              fenced;
    ngx_atomic_t              catalogue_reloads;
    ngx_atomic_t              password_checks;  /* argon2id verifications */
    ngx_atomic_t              token_checks;     /* tokens verified, not
                                                   found in the cache */
    ngx_atomic_t              token_cache_bytes;  /* gauge: the workers'
                                                     caches, mapped */
} ngx_http_guichet_metrics_t;


/*
 * The generations of each town's catalogue and revoked set each worker
 * process holds (0: none), /metrics' guichet_catalogue_generation and
 * guichet_revoked_generation: an operator sees a worker left behind, a
 * test waits until every worker took a publication or a logout; with the
 * pid of the worker that wrote them (a worker killed leaves its values
 * until the one respawned in its slot starts).  The zone
 * "guichet_catalogues" is made anew at each configuration load (its size
 * follows the towns), an array of ngx_atomic_t: town i, worker slot j,
 * what k (NGX_HTTP_GUICHET_HELD_*) at [(i * SLOTS + j) * 3 + k].
 */
#define NGX_HTTP_GUICHET_HELD_CATALOGUE  0
#define NGX_HTTP_GUICHET_HELD_REVOKED    1
#define NGX_HTTP_GUICHET_HELD_PID        2

#define ngx_http_guichet_held_gen(gmcf, town, slot, what)                     \
    (((ngx_atomic_t *) (gmcf)->catalogues_zone->data)                         \
     + ((town) * NGX_HTTP_GUICHET_METRICS_SLOTS + (slot)) * 3 + (what))

/*
 * After the towns' array, one cell per worker number (ngx_worker, below
 * NGX_MAX_PROCESSES): the bytes of the token cache the worker of that
 * number holds in this configuration.  A worker respawned after a crash
 * (its exit handler did not run) finds there what its predecessor left in
 * guichet_token_cache_bytes and takes it off (tokcache.c).
 */
#define ngx_http_guichet_held_towns(gmcf)                                     \
    ((gmcf)->towns ? (gmcf)->towns->nelts : 0)

#define ngx_http_guichet_held_size(gmcf)                                      \
    ((ngx_http_guichet_held_towns(gmcf) * NGX_HTTP_GUICHET_METRICS_SLOTS * 3 \
      + NGX_MAX_PROCESSES) * sizeof(ngx_atomic_t))

#define ngx_http_guichet_held_tokc(gmcf, worker)                              \
    (((ngx_atomic_t *) (gmcf)->catalogues_zone->data)                         \
     + ngx_http_guichet_held_towns(gmcf) * NGX_HTTP_GUICHET_METRICS_SLOTS * 3 \
     + (worker))


/* A published catalogue, counted: ops in flight keep theirs alive. */
typedef struct {
    gch_town_t               *town;
    long long                 gen;
    ngx_uint_t                seq;              /* the worker's loads, 1.. */
    ngx_uint_t                refs;
    int64_t                  *full_until;       /* per session, ms */
    int64_t                  *full_probe;       /* the full_until a
                                                   renewal was sent for */
} ngx_http_guichet_cat_t;


/*
 * What a worker process knows of one town (guichet_town): its catalogue,
 * its revoked tokens, and the state of their refresher.  Each town's keys
 * carry its hash tag (gch_keys.h); every Redis command of a request names
 * the keys of the town of its location.
 */
typedef struct {
    ngx_str_t                 id;               /* NUL-terminated */
    ngx_http_guichet_cat_t   *cat;              /* current catalogue */
    ngx_flag_t                ready;            /* catalogue present in Redis */
    ngx_msec_t                ready_checked;    /* when last confirmed */
    int64_t                   confirmed_ms;     /* Unix ms: cat was the
                                                   newest published */
    u_char                   *revoked;          /* sorted 16-byte hashes */
    ngx_uint_t                nrevoked;
    long long                 revoked_gen;
    long long                 revoked_loading;  /* the gen being read */
    ngx_uint_t                refreshing;
    ngx_uint_t                kicked;
    ngx_msec_t                kicked_at;
} ngx_http_guichet_tenant_t;


/* Per worker process state. */
typedef struct {
    ngx_http_guichet_tenant_t  *towns;          /* gmcf->towns, in order */
    ngx_uint_t                ntowns;
    ngx_http_guichet_metrics_t  *metrics;
    ngx_http_guichet_main_conf_t  *gmcf;
    ngx_log_t                *log;
} ngx_http_guichet_worker_t;


extern ngx_http_guichet_worker_t  ngx_http_guichet_worker;
extern ngx_module_t               ngx_http_guichet_module;
extern const gch_alloc_t          ngx_http_guichet_heap_alloc;


/* _budget.c */

/* the longest "<town>\0<family id>" a budget is kept for */
#define NGX_HTTP_GUICHET_BUDGET_KEY  256

ngx_int_t ngx_http_guichet_budget_zone_add(ngx_conf_t *cf,
    ngx_http_guichet_main_conf_t *gmcf);
/* Charges a family's request of nitems: 0 to go on, else the Retry-After
 * of its 429 (gch_family_charge()). */
long long ngx_http_guichet_budget_charge(ngx_str_t *town, const char *fid,
    size_t nitems, int64_t now_ms);


/* _catalogue.c */

/* The town of a request's location. */
ngx_http_guichet_tenant_t *ngx_http_guichet_tenant(ngx_http_request_t *r);

/* The town's current catalogue with a reference taken, or NULL (503). */
ngx_http_guichet_cat_t *ngx_http_guichet_cat_acquire(
    ngx_http_guichet_tenant_t *t);
void ngx_http_guichet_cat_release(ngx_http_guichet_cat_t *cat);
/* Asks Redis for the town's catalogue generation now (at most every
 * 100 ms); reloads it when it moved. */
void ngx_http_guichet_catalogue_kick(ngx_http_guichet_tenant_t *t);
ngx_int_t ngx_http_guichet_catalogue_init(ngx_cycle_t *cycle);
void ngx_http_guichet_catalogue_exit(ngx_cycle_t *cycle);

/* Revoked tokens (logout): BLAKE2b-128 of the token. */
#define NGX_HTTP_GUICHET_TOKEN_HASH  GCH_TOKEN_HASH_LEN
void ngx_http_guichet_token_hash(const u_char *tok, size_t len, u_char *out);
/* The verified-token cache sized for the towns' families. */
void ngx_http_guichet_tokc_fit(ngx_log_t *log);
void ngx_http_guichet_tokc_init(void);
void ngx_http_guichet_tokc_exit(void);
ngx_uint_t ngx_http_guichet_token_revoked(ngx_http_guichet_tenant_t *t,
    const u_char *hash);
/* This worker refuses the token at once, the others at their refresh. */
void ngx_http_guichet_revoked_add(ngx_http_guichet_tenant_t *t,
    const u_char *hash);


/* _routes.c: the guichet_api location's handler */

ngx_int_t ngx_http_guichet_api_handler(ngx_http_request_t *r);


/* _metrics.c: the guichet_metrics location, $guichet_family, the hooks */

ngx_int_t ngx_http_guichet_metrics_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_guichet_family_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);

/* _session.c: the session cookie's name (guichet_cookie_secure) */
void ngx_http_guichet_cookie_name(ngx_http_request_t *r, ngx_str_t *name);

/* the Redis adapter's hooks */
void ngx_http_guichet_metrics_redis_sent(void);
void ngx_http_guichet_metrics_redis_replied(redisReply *reply);
void ngx_http_guichet_metrics_redis_reconnecting(void);
void ngx_http_guichet_metrics_redis_redirected(ngx_uint_t ask);

#endif /* NGX_HTTP_GUICHET_H */
