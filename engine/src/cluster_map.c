/*
 * cluster_map.c -- Redis Cluster routing, sans I/O (see gch_cluster.h): the
 * slot map.
 *
 * The slot map (slot -> master, its replicas) read from the RESP bytes of
 * a CLUSTER SLOTS or CLUSTER SHARDS reply with cluster_resp.c's cursor,
 * and its lookups.
 */

#include <string.h>

#include "gch_cluster.h"
#include "cluster.h"


typedef struct {
    uint16_t  start;
    uint16_t  end;
    uint16_t  master;
    uint16_t  nreplicas;
    size_t    replicas;     /* offset in m->repl */
} gch_cluster_range_t;

struct gch_cluster_map_s {
    const gch_alloc_t    *a;
    const char           *asked;
    gch_cluster_node_t   *nodes;
    size_t                nnodes;
    size_t                capnodes;
    gch_cluster_range_t  *ranges;
    size_t                nranges;
    size_t                capranges;
    uint16_t             *repl;
    size_t                nrepl;
    size_t                caprepl;
    size_t                covered;
    uint16_t              slot[GCH_CLUSTER_SLOTS];  /* range + 1; 0: none */
};

#define GCH_MAP_NODES_MAX   1000    /* Redis advises at most 1000 nodes */


static void *
gch_grow(const gch_alloc_t *a, void *p, size_t n, size_t *cap, size_t size)
{
    size_t  ncap;
    void   *np;

    if (n < *cap) {
        return p;
    }

    ncap = *cap ? *cap * 2 : 8;
    np = a->alloc(a->ctx, ncap * size);
    if (np == NULL) {
        return NULL;
    }

    if (p != NULL) {
        memcpy(np, p, n * size);
        a->free(a->ctx, p);
    }

    *cap = ncap;

    return np;
}


static char *
gch_strdupn(const gch_alloc_t *a, const char *s, size_t n)
{
    char  *d;

    d = a->alloc(a->ctx, n + 1);
    if (d == NULL) {
        return NULL;
    }

    memcpy(d, s, n);
    d[n] = '\0';

    return d;
}


/*
 * The index of the node host:port (added when new), -1 when the node is
 * to be left out (unknown endpoint), -2 out of memory, -3 too many.
 */
static int
gch_map_node(gch_cluster_map_t *m, const char *host, size_t hlen,
    long long port, const char *id, size_t idlen)
{
    size_t               i;
    void                *p;
    gch_cluster_node_t  *n;

    if (hlen == 0) {
        if (m->asked == NULL) {
            return -1;
        }
        host = m->asked;
        hlen = strlen(host);
    }

    if ((hlen == 1 && host[0] == '?') || hlen > 255 || port <= 0
        || port > 65535 || memchr(host, '\0', hlen) != NULL)
    {
        return -1;
    }

    for (i = 0; i < m->nnodes; i++) {
        n = &m->nodes[i];
        if (n->port == port && strlen(n->host) == hlen
            && memcmp(n->host, host, hlen) == 0)
        {
            return (int) i;
        }
    }

    if (m->nnodes >= GCH_MAP_NODES_MAX) {
        return -3;
    }

    p = gch_grow(m->a, m->nodes, m->nnodes, &m->capnodes, sizeof(*n));
    if (p == NULL) {
        return -2;
    }
    m->nodes = p;

    n = &m->nodes[m->nnodes];
    n->port = (int) port;
    n->master = 0;
    n->host = gch_strdupn(m->a, host, hlen);
    n->id = gch_strdupn(m->a, id ? id : "", id ? idlen : 0);

    if (n->host == NULL || n->id == NULL) {
        m->a->free(m->a->ctx, (void *) n->host);
        m->a->free(m->a->ctx, (void *) n->id);
        return -2;
    }

    m->nnodes++;

    return (int) (m->nnodes - 1);
}


static int
gch_map_range(gch_cluster_map_t *m, long long start, long long end,
    int master, const uint16_t *repl, size_t nrepl)
{
    size_t                i, off;
    long long             s;
    void                 *p;
    gch_cluster_range_t  *r;

    if (start < 0 || end >= GCH_CLUSTER_SLOTS || start > end) {
        return GCH_EREDIS;
    }

    if (master < 0) {
        return GCH_OK;                  /* its slots stay uncovered */
    }

    for (s = start; s <= end; s++) {
        if (m->slot[s] != 0) {
            return GCH_EREDIS;          /* a slot served twice */
        }
    }

    p = gch_grow(m->a, m->ranges, m->nranges, &m->capranges, sizeof(*r));
    if (p == NULL) {
        return GCH_ENOMEM;
    }
    m->ranges = p;

    off = m->nrepl;

    for (i = 0; i < nrepl; i++) {
        p = gch_grow(m->a, m->repl, m->nrepl, &m->caprepl,
                     sizeof(uint16_t));
        if (p == NULL) {
            return GCH_ENOMEM;
        }
        m->repl = p;
        m->repl[m->nrepl++] = repl[i];
    }

    r = &m->ranges[m->nranges];
    r->start = (uint16_t) start;
    r->end = (uint16_t) end;
    r->master = (uint16_t) master;
    r->nreplicas = (uint16_t) nrepl;
    r->replicas = off;
    m->nranges++;

    m->nodes[master].master = 1;

    for (s = start; s <= end; s++) {
        m->slot[s] = (uint16_t) m->nranges;
    }

    m->covered += (size_t) (end - start + 1);

    return GCH_OK;
}


#define GCH_REPL_MAX  16            /* replicas kept per range */

/* Turns gch_map_node's failures into a return code (0: usable). */
static int
gch_node_err(int i, gch_error_t *err)
{
    if (i == -2) {
        gch_error_set(err, GCH_ENOMEM, NULL);
        return GCH_ENOMEM;
    }

    if (i == -3) {
        gch_error_set(err, GCH_EREDIS, "cluster: more than %d nodes",
                      GCH_MAP_NODES_MAX);
        return GCH_EREDIS;
    }

    return GCH_OK;
}


/* One node of CLUSTER SLOTS: *M host port [id [metadata]]; *idx its
 * index, or -1 when left out. */
static int
gch_slots_node(gch_cluster_map_t *m, gch_rr_t *r, int *idx,
    gch_error_t *err)
{
    int        i, rc;
    long long  k;
    gch_rv_t   v, host, port, id, x;

    if (gch_rr_next(r, &v) != 0 || v.type != '*' || v.n < 2
        || gch_rr_next(r, &host) != 0 || host.type != '$' || host.n < 0
        || gch_rr_next(r, &port) != 0 || port.type != ':')
    {
        goto bad;
    }

    id.s = NULL;
    id.len = 0;

    if (v.n >= 3
        && (gch_rr_next(r, &id) != 0 || id.type != '$' || id.n < 0))
    {
        goto bad;
    }

    for (k = 3; k < v.n; k++) {
        if (gch_rr_next(r, &x) != 0 || gch_rr_skip(r, &x, 3) != 0) {
            goto bad;
        }
    }

    i = gch_map_node(m, host.s, host.len, port.n, id.s, id.len);
    rc = gch_node_err(i, err);
    if (rc != GCH_OK) {
        return rc;
    }

    *idx = i;

    return GCH_OK;

bad:

    gch_error_set(err, GCH_EREDIS, "CLUSTER SLOTS: malformed node");
    return GCH_EREDIS;
}


/* The rest of CLUSTER SLOTS once its first header was read. */
static int
gch_parse_slots(gch_cluster_map_t *m, gch_rr_t *r, long long nranges,
    gch_error_t *err)
{
    int        rc, master, node;
    size_t     nrepl;
    long long  i, k;
    gch_rv_t   v, start, end;
    uint16_t   repl[GCH_REPL_MAX];

    for (i = 0; i < nranges; i++) {
        if (gch_rr_next(r, &v) != 0 || v.type != '*' || v.n < 3
            || gch_rr_next(r, &start) != 0 || start.type != ':'
            || gch_rr_next(r, &end) != 0 || end.type != ':')
        {
            gch_error_set(err, GCH_EREDIS, "CLUSTER SLOTS: malformed range");
            return GCH_EREDIS;
        }

        rc = gch_slots_node(m, r, &master, err);
        if (rc != GCH_OK) {
            return rc;
        }

        nrepl = 0;

        for (k = 3; k < v.n; k++) {
            rc = gch_slots_node(m, r, &node, err);
            if (rc != GCH_OK) {
                return rc;
            }
            if (node >= 0 && node != master && nrepl < GCH_REPL_MAX) {
                repl[nrepl++] = (uint16_t) node;
            }
        }

        rc = gch_map_range(m, start.n, end.n, master, repl, nrepl);
        if (rc != GCH_OK) {
            gch_error_set(err, rc, rc == GCH_ENOMEM ? NULL
                          : "CLUSTER SLOTS: bad range %lld-%lld",
                          start.n, end.n);
            return rc;
        }
    }

    return GCH_OK;
}


/*
 * One node of CLUSTER SHARDS: a flat map (id, port, ip, endpoint, role,
 * health...).  *idx its index (-1 when left out), *master whether its role
 * is master.
 */
static int
gch_shards_node(gch_cluster_map_t *m, gch_rr_t *r, int *idx, int *master,
    gch_error_t *err)
{
    int        i, rc, online;
    long long  k;
    gch_rv_t   v, key, val, ip, endpoint, id;
    long long  port;

    if (gch_rr_next(r, &v) != 0 || v.type != '*' || v.n < 0 || v.n % 2) {
        goto bad;
    }

    ip.len = endpoint.len = id.len = 0;
    ip.s = endpoint.s = id.s = NULL;
    ip.n = endpoint.n = -1;
    port = -1;
    online = 1;
    *master = 0;

    for (k = 0; k < v.n; k += 2) {
        if (gch_rr_next(r, &key) != 0 || key.type != '$' || key.n < 0
            || gch_rr_next(r, &val) != 0)
        {
            goto bad;
        }

        if (gch_rv_is(&key, "port") && val.type == ':') {
            port = val.n;

        } else if (gch_rv_is(&key, "ip") && val.type == '$') {
            ip = val;

        } else if (gch_rv_is(&key, "endpoint") && val.type == '$') {
            endpoint = val;

        } else if (gch_rv_is(&key, "id") && val.type == '$') {
            id = val;

        } else if (gch_rv_is(&key, "role")) {
            *master = gch_rv_is(&val, "master");

        } else if (gch_rv_is(&key, "health")) {
            online = gch_rv_is(&val, "online");

        } else if (gch_rr_skip(r, &val, 4) != 0) {
            goto bad;
        }
    }

    *idx = -1;

    if (!online || port < 0 || (endpoint.n < 0 && ip.n < 0)) {
        return GCH_OK;
    }

    if (endpoint.n >= 0) {
        ip = endpoint;
    }

    i = gch_map_node(m, ip.s, ip.len, port, id.s, id.len);
    rc = gch_node_err(i, err);
    if (rc != GCH_OK) {
        return rc;
    }

    *idx = i;

    return GCH_OK;

bad:

    gch_error_set(err, GCH_EREDIS, "CLUSTER SHARDS: malformed node");
    return GCH_EREDIS;
}


/* One shard: a flat map with "slots" (start, end, ...) and "nodes". */
static int
gch_shards_one(gch_cluster_map_t *m, gch_rr_t *r, gch_error_t *err)
{
    int        rc, master, node, is_master, have_slots;
    size_t     nrepl;
    long long  k, j;
    gch_rr_t   slots;
    gch_rv_t   v, key, val, start, end;
    uint16_t   repl[GCH_REPL_MAX];

    if (gch_rr_next(r, &v) != 0 || v.type != '*' || v.n < 0 || v.n % 2) {
        goto bad;
    }

    master = -1;
    nrepl = 0;
    have_slots = 0;
    slots = *r;
    val.n = 0;

    for (k = 0; k < v.n; k += 2) {
        if (gch_rr_next(r, &key) != 0 || key.type != '$' || key.n < 0) {
            goto bad;
        }

        if (gch_rv_is(&key, "slots")) {
            if (have_slots) {
                goto bad;
            }
            slots = *r;
            have_slots = 1;
            if (gch_rr_next(r, &val) != 0 || val.type != '*'
                || val.n < 0 || val.n % 2
                || gch_rr_skip(r, &val, 2) != 0)
            {
                goto bad;
            }
            continue;
        }

        if (gch_rr_next(r, &val) != 0) {
            goto bad;
        }

        if (!gch_rv_is(&key, "nodes")) {
            if (gch_rr_skip(r, &val, 2) != 0) {
                goto bad;
            }
            continue;
        }

        if (val.type != '*' || val.n < 0) {
            goto bad;
        }

        for (j = 0; j < val.n; j++) {
            rc = gch_shards_node(m, r, &node, &is_master, err);
            if (rc != GCH_OK) {
                return rc;
            }
            if (node < 0) {
                continue;
            }
            if (is_master && master < 0) {
                master = node;

            } else if (!is_master && nrepl < GCH_REPL_MAX) {
                repl[nrepl++] = (uint16_t) node;
            }
        }
    }

    if (!have_slots) {
        return GCH_OK;                  /* a shard without slots */
    }

    /* the slots, read again from where they were */
    if (gch_rr_next(&slots, &val) != 0) {
        goto bad;
    }

    for (j = 0; j < val.n; j += 2) {
        if (gch_rr_next(&slots, &start) != 0 || start.type != ':'
            || gch_rr_next(&slots, &end) != 0 || end.type != ':')
        {
            goto bad;
        }

        rc = gch_map_range(m, start.n, end.n, master, repl, nrepl);
        if (rc != GCH_OK) {
            gch_error_set(err, rc, rc == GCH_ENOMEM ? NULL
                          : "CLUSTER SHARDS: bad range %lld-%lld",
                          start.n, end.n);
            return rc;
        }
    }

    return GCH_OK;

bad:

    gch_error_set(err, GCH_EREDIS, "CLUSTER SHARDS: malformed shard");
    return GCH_EREDIS;
}


int
gch_cluster_map_parse(gch_cluster_map_t **out, const char *resp,
    size_t len, const char *asked_host, const gch_alloc_t *a,
    gch_error_t *err)
{
    int                 rc;
    long long           i;
    gch_rr_t            r, peek;
    gch_rv_t            v, first, inner;
    gch_cluster_map_t  *m;

    *out = NULL;

    m = a->alloc(a->ctx, sizeof(*m));
    if (m == NULL) {
        gch_error_set(err, GCH_ENOMEM, NULL);
        return GCH_ENOMEM;
    }

    memset(m, 0, sizeof(*m));
    m->a = a;
    m->asked = asked_host;

    r.p = resp;
    r.end = resp + len;

    if (gch_rr_next(&r, &v) != 0) {
        gch_error_set(err, GCH_EREDIS, "cluster: not a RESP reply");
        rc = GCH_EREDIS;
        goto failed;
    }

    if (v.type == '-') {
        gch_error_set(err, GCH_EREDIS, "cluster: error reply: %.*s",
                      (int) (v.len > 200 ? 200 : v.len), v.s);
        rc = GCH_EREDIS;
        goto failed;
    }

    if (v.type != '*' || v.n < 0) {
        gch_error_set(err, GCH_EREDIS, "cluster: not an array");
        rc = GCH_EREDIS;
        goto failed;
    }

    rc = GCH_OK;

    if (v.n > 0) {
        /* CLUSTER SLOTS: *K :start ...; CLUSTER SHARDS: *2k $5 slots ... */
        peek = r;
        if (gch_rr_next(&peek, &inner) != 0 || inner.type != '*'
            || inner.n < 1 || gch_rr_next(&peek, &first) != 0)
        {
            gch_error_set(err, GCH_EREDIS, "cluster: unknown reply shape");
            rc = GCH_EREDIS;
            goto failed;
        }

        if (first.type == ':') {
            rc = gch_parse_slots(m, &r, v.n, err);

        } else if (first.type == '$') {
            for (i = 0; i < v.n && rc == GCH_OK; i++) {
                rc = gch_shards_one(m, &r, err);
            }

        } else {
            gch_error_set(err, GCH_EREDIS, "cluster: unknown reply shape");
            rc = GCH_EREDIS;
        }

        if (rc != GCH_OK) {
            goto failed;
        }
    }

    if (r.p != r.end) {
        gch_error_set(err, GCH_EREDIS, "cluster: bytes after the reply");
        rc = GCH_EREDIS;
        goto failed;
    }

    m->asked = NULL;
    *out = m;

    return GCH_OK;

failed:

    gch_cluster_map_free(m);
    return rc;
}


void
gch_cluster_map_free(gch_cluster_map_t *m)
{
    size_t              i;
    const gch_alloc_t  *a;

    if (m == NULL) {
        return;
    }

    a = m->a;

    for (i = 0; i < m->nnodes; i++) {
        a->free(a->ctx, (void *) m->nodes[i].host);
        a->free(a->ctx, (void *) m->nodes[i].id);
    }

    a->free(a->ctx, m->nodes);
    a->free(a->ctx, m->ranges);
    a->free(a->ctx, m->repl);
    a->free(a->ctx, m);
}


size_t
gch_cluster_map_nnodes(const gch_cluster_map_t *m)
{
    return m->nnodes;
}


const gch_cluster_node_t *
gch_cluster_map_node(const gch_cluster_map_t *m, size_t i)
{
    return (i < m->nnodes) ? &m->nodes[i] : NULL;
}


int
gch_cluster_map_master(const gch_cluster_map_t *m, int slot)
{
    if (slot < 0 || slot >= GCH_CLUSTER_SLOTS || m->slot[slot] == 0) {
        return -1;
    }

    return m->ranges[m->slot[slot] - 1].master;
}


size_t
gch_cluster_map_replicas(const gch_cluster_map_t *m, int slot,
    const uint16_t **idx)
{
    const gch_cluster_range_t  *r;

    *idx = NULL;

    if (slot < 0 || slot >= GCH_CLUSTER_SLOTS || m->slot[slot] == 0) {
        return 0;
    }

    r = &m->ranges[m->slot[slot] - 1];
    if (r->nreplicas > 0) {
        *idx = &m->repl[r->replicas];
    }

    return r->nreplicas;
}


size_t
gch_cluster_map_covered(const gch_cluster_map_t *m)
{
    return m->covered;
}
