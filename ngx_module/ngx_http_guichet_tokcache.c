/*
 * ngx_http_guichet_tokcache.c -- the worker's cache of verified tokens:
 * its sets, their growth to the towns' families at a catalogue load, the
 * look-up and entry ngx_http_guichet_auth() (ngx_http_guichet_session.c)
 * makes of each token, and the family kept with the last one.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <sys/mman.h>

#include <sodium.h>

#include "ngx_http_guichet_api.h"


/*
 * Tokens this worker found authentic lately, so that the next request of
 * the same session does not verify its token again (the HMAC and three
 * base64 decodings were a tenth of the module's CPU on a refusal: issue
 * 20, docs/benchmarks.md).  An entry (120 bytes) holds the token's
 * BLAKE2b-128 (the hash the revoked set is made of, computed once for
 * both), its town (the location's, which the token names), the http{}
 * whose secret verified it, what gch_token_verify() found in it: the
 * expiry and the account (its id copied, up to 63 bytes: the request
 * needs it whatever the catalogue), and the family last found for it.
 * Only a token that verified is ever entered, so a token is found only
 * when its hash is that of an authentic token (a second preimage of
 * BLAKE2b-128).  A token found is checked for its expiry exactly as
 * gch_token_verify() does, and against the town's revoked tokens
 * (logouts, password changes) like any other, on every request.  A
 * reload's new workers start with an empty cache, and the new secret.
 *
 * Sets of NGX_HTTP_GUICHET_TOKC_WAYS entries (a set of 1 KB: its 8 tags
 * on one cache line, then 15 lines of entries), a set for two families
 * of the towns' catalogues (ngx_http_guichet_tokc_fit(), at each
 * catalogue load; NGX_HTTP_GUICHET_TOKC_MIN sets before the first and at
 * least), rounded up to 2 MB (a huge page), so 512 bytes a family and
 * worker: a town's whole rush of families, each set holding two families
 * on average at most.  A set of 8 ways rather than two of 4 in the same
 * memory: a token is evicted when its set is asked to hold more tokens
 * than it has ways, and 9 of 8 ways at two families a set are much rarer
 * than 5 of 4 at one (0.02 % of the sets against 0.3 %; with 4 ways,
 * 0.6 % of a 20,000-family rush's refusals verified their token again:
 * docs/benchmarks.md).  A set is picked by multiplying 32 bits of the
 * hash by the number of sets (no power of 2 needed).
 * guichet_token_cache_size bounds the table (0: no cache); the table
 * grows at a catalogue that brings more families, shrinks at one that
 * brings a quarter fewer, keeping the unexpired entries its sets still
 * have ways for, and is mapped on its own (mmap) so that what it gives
 * back goes back to the kernel.  guichet_token_cache_bytes (/metrics)
 * adds up the workers' tables.
 */

#define NGX_HTTP_GUICHET_TOKC_MIN   1024          /* sets: 1 MB */
#define NGX_HTTP_GUICHET_TOKC_STEP  2048          /* sets: 2 MB, a huge page */
#define NGX_HTTP_GUICHET_TOKC_WAYS  8             /* families a set: 2 */
#define NGX_HTTP_GUICHET_TOKC_FID   64
#define NGX_HTTP_GUICHET_TOKC_HUGE  (2 * 1024 * 1024)

typedef struct {
    u_char                        hash[NGX_HTTP_GUICHET_TOKEN_HASH];
    void                         *conf;         /* the secret's http{} */
    ngx_http_guichet_tenant_t    *town;
    int64_t                       expires;
    ngx_uint_t                    seq;          /* family's catalogue */
    const gch_family_t           *family;       /* fid's there, or NULL */
    char                          fid[NGX_HTTP_GUICHET_TOKC_FID];
} ngx_http_guichet_tokc_t;

/*
 * A set: the first 8 bytes of each way's hash (0: an empty way) on one
 * cache line, looked at first, so that a look-up reads the lines of one
 * way only.
 */
typedef struct {
    uint64_t                      tag[NGX_HTTP_GUICHET_TOKC_WAYS];
    ngx_http_guichet_tokc_t       way[NGX_HTTP_GUICHET_TOKC_WAYS];
} ngx_http_guichet_tokc_set_t;

typedef char ngx_http_guichet_tokc_set_fits_t[
    sizeof(ngx_http_guichet_tokc_set_t) == 1024 ? 1 : -1];


static ngx_http_guichet_tokc_set_t  *ngx_http_guichet_tokc;
static ngx_uint_t                    ngx_http_guichet_tokc_nsets;
/* the entry of the token ngx_http_guichet_auth() found or entered last */
static ngx_http_guichet_tokc_t      *ngx_http_guichet_tokc_last;


/* The set of nsets that hash falls in: 32 bits of it, times nsets. */
static ngx_inline ngx_uint_t
ngx_http_guichet_tokc_index(const u_char *hash, ngx_uint_t nsets)
{
    uint32_t  h;

    ngx_memcpy(&h, hash + 8, sizeof(h));

    return (ngx_uint_t) (((uint64_t) h * nsets) >> 32);
}


/* The most sets guichet_token_cache_size allows (0: no cache). */
static ngx_uint_t
ngx_http_guichet_tokc_bound(void)
{
    ngx_http_guichet_main_conf_t  *gmcf = ngx_http_guichet_worker.gmcf;

    if (gmcf == NULL) {
        return NGX_HTTP_GUICHET_TOKC_MIN;
    }

    /* whole pages of sets (8 KB) */
    return gmcf->token_cache_size / sizeof(ngx_http_guichet_tokc_set_t)
           / 8 * 8;
}


/*
 * This worker's cell of the zone guichet_catalogues (its bytes, this
 * configuration's), or NULL.
 */
static ngx_atomic_t *
ngx_http_guichet_tokc_cell(void)
{
    ngx_http_guichet_main_conf_t  *gmcf = ngx_http_guichet_worker.gmcf;

    if (gmcf == NULL || gmcf->catalogues_zone == NULL
        || gmcf->catalogues_zone->data == NULL
        || ngx_worker >= NGX_MAX_PROCESSES)
    {
        return NULL;
    }

    return ngx_http_guichet_held_tokc(gmcf, ngx_worker);
}


/* This worker's part of guichet_token_cache_bytes moves by delta. */
static void
ngx_http_guichet_tokc_count(ssize_t delta)
{
    ngx_atomic_t  *cell;

    if (ngx_http_guichet_worker.metrics) {
        (void) ngx_atomic_fetch_add(
                   &ngx_http_guichet_worker.metrics->token_cache_bytes,
                   (ngx_atomic_int_t) delta);
    }

    cell = ngx_http_guichet_tokc_cell();

    if (cell) {
        *cell += (ngx_atomic_uint_t) delta;
    }
}


/*
 * The worker's start, its metrics slot known: a predecessor of the same
 * number in this configuration was killed with its table mapped (a
 * crash, SIGKILL: no exit handler); the master respawned this worker in
 * its place.  Its bytes are taken off guichet_token_cache_bytes (in the
 * slot they were added to: the same, ngx_worker's).  A worker of a
 * reload starts with a zone of its own, all zeros: the old workers take
 * their tables off themselves when they exit.
 */
void
ngx_http_guichet_tokc_init(void)
{
    ngx_atomic_t  *cell;

    cell = ngx_http_guichet_tokc_cell();

    if (cell == NULL || *cell == 0) {
        return;
    }

    if (ngx_http_guichet_worker.metrics) {
        (void) ngx_atomic_fetch_add(
                   &ngx_http_guichet_worker.metrics->token_cache_bytes,
                   -(ngx_atomic_int_t) *cell);
    }

    *cell = 0;
}


/*
 * The table unmapped, if there is one; its bytes taken off
 * guichet_token_cache_bytes.
 */
static void
ngx_http_guichet_tokc_unmap(void)
{
    size_t  size;

    if (ngx_http_guichet_tokc == NULL) {
        return;
    }

    size = ngx_http_guichet_tokc_nsets * sizeof(ngx_http_guichet_tokc_set_t);
    (void) munmap(ngx_http_guichet_tokc, size);
    ngx_http_guichet_tokc_count(-(ssize_t) size);

    ngx_http_guichet_tokc = NULL;
    ngx_http_guichet_tokc_nsets = 0;
    ngx_http_guichet_tokc_last = NULL;
}


/*
 * A cache of nsets sets (a multiple of 4: whole pages) with what the
 * current one holds that is not expired and that the new sets have ways
 * for, the current one unmapped; else NGX_ERROR and the current one kept.
 */
static ngx_int_t
ngx_http_guichet_tokc_alloc(ngx_uint_t nsets, ngx_log_t *log)
{
    size_t                        size, map, head;
    u_char                       *p, *start;
    int64_t                       now;
    ngx_uint_t                    i, j, k;
    ngx_http_guichet_tokc_set_t  *tokc, *from, *to;

    size = nsets * sizeof(ngx_http_guichet_tokc_set_t);

    /*
     * A cache larger than the processor's caches is read at random, a
     * page a request: on huge pages (2 MB, where the kernel has them on
     * request) its look-ups do not miss the TLB as well.  The mapping is
     * made 2 MB larger, and trimmed to the 2 MB boundary in it.
     */
    map = size >= NGX_HTTP_GUICHET_TOKC_HUGE
          ? size + NGX_HTTP_GUICHET_TOKC_HUGE : size;

    p = mmap(NULL, map, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS,
             -1, 0);
    if (p == MAP_FAILED) {
        ngx_log_error(NGX_LOG_WARN, log, ngx_errno,
                      "guichet: mmap(%uz) of the token cache failed", map);
        return NGX_ERROR;
    }

    start = p;

    if (map != size) {
        start = ngx_align_ptr(p, NGX_HTTP_GUICHET_TOKC_HUGE);
        head = start - p;

        if (head) {
            (void) munmap(p, head);
        }

        if (map - head > size) {
            (void) munmap(start + size, map - head - size);
        }

#if (NGX_LINUX && defined MADV_HUGEPAGE)
        (void) madvise(start, size, MADV_HUGEPAGE);
#endif
    }

    /* anonymous pages read 0: every way empty */
    tokc = (ngx_http_guichet_tokc_set_t *) start;
    now = (int64_t) ngx_time();

    for (i = 0; i < ngx_http_guichet_tokc_nsets; i++) {
        from = &ngx_http_guichet_tokc[i];

        for (j = 0; j < NGX_HTTP_GUICHET_TOKC_WAYS; j++) {
            if (from->tag[j] == 0 || from->way[j].expires <= now) {
                continue;
            }

            to = &tokc[ngx_http_guichet_tokc_index(from->way[j].hash,
                                                   nsets)];

            for (k = 0; k < NGX_HTTP_GUICHET_TOKC_WAYS; k++) {
                if (to->tag[k] == 0) {
                    to->tag[k] = from->tag[j];
                    to->way[k] = from->way[j];
                    break;
                }
            }

            /* no way left (a smaller table): verified again when seen */
        }
    }

    ngx_http_guichet_tokc_unmap();

    ngx_http_guichet_tokc = tokc;
    ngx_http_guichet_tokc_nsets = nsets;
    ngx_http_guichet_tokc_count((ssize_t) size);

    return NGX_OK;
}


/*
 * At a catalogue's load: the cache sized for the towns' families (a set
 * for two, in steps of 2 MB, guichet_token_cache_size at most), if it is
 * smaller, or larger by a third or more (a failed allocation keeps the
 * cache as it is, and says so).
 */
void
ngx_http_guichet_tokc_fit(ngx_log_t *log)
{
    ngx_uint_t                  i, families, nsets, bound, cur;
    ngx_http_guichet_worker_t  *w = &ngx_http_guichet_worker;

    families = 0;

    for (i = 0; i < w->ntowns; i++) {
        if (w->towns[i].cat) {
            families += w->towns[i].cat->town->nfamilies;
        }
    }

    nsets = (families + 1) / 2;
    nsets = nsets <= NGX_HTTP_GUICHET_TOKC_MIN
            ? NGX_HTTP_GUICHET_TOKC_MIN
            : ngx_align(nsets, NGX_HTTP_GUICHET_TOKC_STEP);

    bound = ngx_http_guichet_tokc_bound();

    if (nsets > bound) {
        nsets = bound;
    }

    cur = ngx_http_guichet_tokc_nsets;

    if (nsets == 0) {
        ngx_http_guichet_tokc_unmap();          /* no cache */
        return;
    }

    if (nsets == cur || (nsets < cur && nsets > cur / 4 * 3)) {
        return;
    }

    if (ngx_http_guichet_tokc_alloc(nsets, log) != NGX_OK) {
        ngx_log_error(NGX_LOG_WARN, log, 0,
                      "guichet: no memory for a token cache of %ui "
                      "families, %ui sets kept", families, cur);
        return;
    }

    ngx_log_error(NGX_LOG_NOTICE, log, 0,
                  "guichet: token cache of %ui entries (%uz KB) for %ui "
                  "families", nsets * NGX_HTTP_GUICHET_TOKC_WAYS,
                  nsets * sizeof(ngx_http_guichet_tokc_set_t) / 1024,
                  families);
}


/* The worker's exit: the table unmapped, its bytes no longer counted. */
void
ngx_http_guichet_tokc_exit(void)
{
    ngx_http_guichet_tokc_unmap();
}


/* The set of hash, or NULL without a cache (none, or no memory). */
static ngx_http_guichet_tokc_set_t *
ngx_http_guichet_tokc_set(const u_char *hash)
{
    ngx_uint_t  nsets;

    if (ngx_http_guichet_tokc == NULL) {
        nsets = ngx_http_guichet_tokc_bound();

        if (nsets > NGX_HTTP_GUICHET_TOKC_MIN) {
            nsets = NGX_HTTP_GUICHET_TOKC_MIN;
        }

        if (nsets == 0
            || ngx_http_guichet_tokc_alloc(nsets, ngx_cycle->log) != NGX_OK)
        {
            return NULL;
        }
    }

    return &ngx_http_guichet_tokc[
               ngx_http_guichet_tokc_index(hash,
                                           ngx_http_guichet_tokc_nsets)];
}


/*
 * The family fid of the request's catalogue town (ngx_http_guichet_town()),
 * as gch_town_family() finds it; kept next to the token that named fid
 * (the last one ngx_http_guichet_auth() found or entered), for that
 * catalogue (its seq: a catalogue loaded later, at whatever address, is
 * another), so that the next request of the family does not look it up
 * in the town's index again (a cache miss or two a request in a large
 * town).
 */
const gch_family_t *
ngx_http_guichet_tokc_family(ngx_http_request_t *r, gch_town_t *town,
    const char *fid)
{
    ngx_http_guichet_cat_t     *cat;
    ngx_http_guichet_tokc_t    *c;
    const gch_family_t         *family;
    ngx_http_guichet_tenant_t  *w;

    w = ngx_http_guichet_tenant(r);
    cat = w->cat;
    c = ngx_http_guichet_tokc_last;

    if (c == NULL || cat == NULL || cat->town != town || c->town != w
        || ngx_strcmp(c->fid, fid) != 0)
    {
        return gch_town_family(town, fid, ngx_strlen(fid));
    }

    if (c->seq == cat->seq) {
        return c->family;
    }

    family = gch_town_family(town, fid, ngx_strlen(fid));

    if (family) {
        c->seq = cat->seq;
        c->family = family;
    }

    return family;
}


/* The set's first 8 bytes of hash, never 0 (an empty way). */
static uint64_t
ngx_http_guichet_tokc_tag(const u_char *hash)
{
    uint64_t  tag;

    ngx_memcpy(&tag, hash, sizeof(tag));

    return tag | 1;
}


/*
 * A token of hash for town, verified with conf's secret, found and not
 * expired: its family id into fid (size bytes) and NGX_OK, the entry kept
 * as the last one (ngx_http_guichet_tokc_family()); else NGX_DECLINED.
 */
ngx_int_t
ngx_http_guichet_tokc_find(const u_char *hash, ngx_http_guichet_tenant_t *town,
    void *conf, char *fid, size_t size)
{
    size_t                        n;
    uint64_t                      tag;
    ngx_uint_t                    i;
    ngx_http_guichet_tokc_t      *c;
    ngx_http_guichet_tokc_set_t  *set;

    ngx_http_guichet_tokc_last = NULL;

    set = ngx_http_guichet_tokc_set(hash);
    if (set == NULL) {
        return NGX_DECLINED;
    }

    tag = ngx_http_guichet_tokc_tag(hash);

    for (i = 0; i < NGX_HTTP_GUICHET_TOKC_WAYS; i++) {
        c = &set->way[i];

        if (set->tag[i] == tag && c->town == town && c->conf == conf
            && sodium_memcmp(c->hash, hash, NGX_HTTP_GUICHET_TOKEN_HASH)
               == 0)
        {
            if ((int64_t) ngx_time() < c->expires
                && (n = ngx_strlen(c->fid)) < size)
            {
                ngx_memcpy(fid, c->fid, n + 1);
                ngx_http_guichet_tokc_last = c;
                return NGX_OK;
            }

            return NGX_DECLINED;
        }
    }

    return NGX_DECLINED;
}


/*
 * A token that gch_token_verify() found authentic: entered in its set
 * (in its own way if it is there, else an empty way, else one the hash
 * picks), kept as the last one.  An fid too long for an entry, or no
 * memory for the cache: not entered.
 */
void
ngx_http_guichet_tokc_enter(const u_char *hash,
    ngx_http_guichet_tenant_t *town, void *conf, int64_t expires,
    const char *fid)
{
    size_t                        n;
    uint64_t                      tag;
    ngx_uint_t                    i;
    ngx_http_guichet_tokc_t      *c;
    ngx_http_guichet_tokc_set_t  *set;

    n = ngx_strlen(fid);
    set = ngx_http_guichet_tokc_set(hash);

    if (set == NULL || n >= NGX_HTTP_GUICHET_TOKC_FID) {
        return;
    }

    tag = ngx_http_guichet_tokc_tag(hash);

    for (i = 0; i < NGX_HTTP_GUICHET_TOKC_WAYS; i++) {
        if (set->tag[i] == tag && set->way[i].town == town
            && set->way[i].conf == conf
            && sodium_memcmp(set->way[i].hash, hash,
                             NGX_HTTP_GUICHET_TOKEN_HASH) == 0)
        {
            break;
        }
    }

    if (i == NGX_HTTP_GUICHET_TOKC_WAYS) {
        for (i = 0; i < NGX_HTTP_GUICHET_TOKC_WAYS; i++) {
            if (set->tag[i] == 0) {
                break;
            }
        }

        if (i == NGX_HTTP_GUICHET_TOKC_WAYS) {
            i = hash[12] % NGX_HTTP_GUICHET_TOKC_WAYS;
        }
    }

    c = &set->way[i];
    set->tag[i] = tag;
    ngx_memcpy(c->hash, hash, NGX_HTTP_GUICHET_TOKEN_HASH);
    c->conf = conf;
    c->town = town;
    c->expires = expires;
    c->seq = 0;
    c->family = NULL;
    ngx_memcpy(c->fid, fid, n + 1);
    ngx_http_guichet_tokc_last = c;
}
