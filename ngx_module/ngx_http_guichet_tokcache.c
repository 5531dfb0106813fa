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
 * 20, docs/benchmarks.md).  An entry holds the token's BLAKE2b-128 (the
 * hash the revoked set is made of, computed once for both), its town (the
 * location's, which the token names), the http{} whose secret verified it
 * and what gch_token_verify() found in it: the account and the expiry.
 * Only a token that verified is ever entered, so a token is found only
 * when its hash is that of an authentic token (a second preimage of
 * BLAKE2b-128).  A token found is checked for its expiry exactly as
 * gch_token_verify() does, and against the town's revoked tokens
 * (logouts, password changes) like any other, on every request.  A
 * reload's new workers start with an empty cache, and the new secret.
 * Sets of NGX_HTTP_GUICHET_TOKC_WAYS entries (a set of 512 bytes, 8 cache
 * lines), as many sets as a power of 2 at least the families of the
 * towns' catalogues (ngx_http_guichet_tokc_fit(), at each catalogue load;
 * NGX_HTTP_GUICHET_TOKC_MIN sets before the first): a town's whole rush of
 * families, each set holding one family on average at most (with 4 ways,
 * at most about 1 % of a rush's requests then meet their token evicted,
 * against 10 % at 2.4 families a set, the fixed 2,048 sets of a
 * 5,000-family town, and 80 % for 20,000 families).  The cache grows,
 * never shrinks, keeping its entries.
 */

#define NGX_HTTP_GUICHET_TOKC_MIN   2048          /* powers of 2 */
#define NGX_HTTP_GUICHET_TOKC_MAX   (1 << 20)     /* 512 MB */
#define NGX_HTTP_GUICHET_TOKC_WAYS  4
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
    sizeof(ngx_http_guichet_tokc_set_t) == 512 ? 1 : -1];


static ngx_http_guichet_tokc_set_t  *ngx_http_guichet_tokc;
static ngx_uint_t                    ngx_http_guichet_tokc_nsets;
/* the entry of the token ngx_http_guichet_auth() found or entered last */
static ngx_http_guichet_tokc_t      *ngx_http_guichet_tokc_last;


/* A cache of nsets sets, with what the current one holds; else NGX_ERROR. */
static ngx_int_t
ngx_http_guichet_tokc_alloc(ngx_uint_t nsets, ngx_log_t *log)
{
    size_t                        size, align;
    uint32_t                      h;
    ngx_uint_t                    i, j, k;
    ngx_http_guichet_tokc_set_t  *tokc, *from, *to;

    size = nsets * sizeof(ngx_http_guichet_tokc_set_t);

    /*
     * A cache larger than the processor's caches is read at random, a
     * page a request: on huge pages (2 MB, where the kernel has them on
     * request) its look-ups do not miss the TLB as well.
     */
    align = size >= NGX_HTTP_GUICHET_TOKC_HUGE ? NGX_HTTP_GUICHET_TOKC_HUGE
                                               : 64;

    tokc = ngx_memalign(align, size, log);
    if (tokc == NULL) {
        return NGX_ERROR;
    }

#if (NGX_LINUX && defined MADV_HUGEPAGE)
    if (align == NGX_HTTP_GUICHET_TOKC_HUGE) {
        (void) madvise(tokc, size, MADV_HUGEPAGE);
    }
#endif

    ngx_memzero(tokc, size);

    for (i = 0; i < ngx_http_guichet_tokc_nsets; i++) {
        from = &ngx_http_guichet_tokc[i];

        for (j = 0; j < NGX_HTTP_GUICHET_TOKC_WAYS; j++) {
            if (from->tag[j] == 0) {
                continue;
            }

            ngx_memcpy(&h, from->way[j].hash + 8, sizeof(h));
            to = &tokc[h & (nsets - 1)];

            /* nsets a multiple of the old: at most the old set's ways */
            for (k = 0; to->tag[k] != 0; k++) { /* void */ }

            to->tag[k] = from->tag[j];
            to->way[k] = from->way[j];
        }
    }

    if (ngx_http_guichet_tokc) {
        ngx_free(ngx_http_guichet_tokc);
    }

    ngx_http_guichet_tokc = tokc;
    ngx_http_guichet_tokc_nsets = nsets;
    ngx_http_guichet_tokc_last = NULL;

    return NGX_OK;
}


/*
 * At a catalogue's load: the cache grown to the towns' families, if it is
 * smaller (a failed allocation keeps the cache as it is, and says so).
 */
void
ngx_http_guichet_tokc_fit(ngx_log_t *log)
{
    ngx_uint_t                  i, families, nsets;
    ngx_http_guichet_worker_t  *w = &ngx_http_guichet_worker;

    families = 0;

    for (i = 0; i < w->ntowns; i++) {
        if (w->towns[i].cat) {
            families += w->towns[i].cat->town->nfamilies;
        }
    }

    nsets = ngx_http_guichet_tokc_nsets ? ngx_http_guichet_tokc_nsets
                                        : NGX_HTTP_GUICHET_TOKC_MIN;

    while (nsets < families && nsets < NGX_HTTP_GUICHET_TOKC_MAX) {
        nsets *= 2;
    }

    if (nsets == ngx_http_guichet_tokc_nsets) {
        return;
    }

    if (ngx_http_guichet_tokc_alloc(nsets, log) != NGX_OK) {
        ngx_log_error(NGX_LOG_WARN, log, 0,
                      "guichet: no memory for a token cache of %ui "
                      "families, %ui kept", families,
                      ngx_http_guichet_tokc_nsets);
        return;
    }

    ngx_log_error(NGX_LOG_NOTICE, log, 0,
                  "guichet: token cache of %ui entries (%uz KB) for %ui "
                  "families", nsets * NGX_HTTP_GUICHET_TOKC_WAYS,
                  nsets * sizeof(ngx_http_guichet_tokc_set_t) / 1024,
                  families);
}


/* The set of hash, or NULL without memory for the cache. */
static ngx_http_guichet_tokc_set_t *
ngx_http_guichet_tokc_set(const u_char *hash)
{
    uint32_t  h;

    if (ngx_http_guichet_tokc == NULL
        && ngx_http_guichet_tokc_alloc(NGX_HTTP_GUICHET_TOKC_MIN,
                                       ngx_cycle->log)
           != NGX_OK)
    {
        return NULL;
    }

    ngx_memcpy(&h, hash + 8, sizeof(h));

    return &ngx_http_guichet_tokc[h & (ngx_http_guichet_tokc_nsets - 1)];
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
