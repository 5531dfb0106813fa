/*
 * cluster_node.c -- Redis Cluster for the back-end programs: the nodes.
 *
 * One connection per node (connected when first needed, AUTH), the slot
 * map read from the nodes or the seeds, and the route of one command or
 * transaction to the master of its slot, following -MOVED, -ASK and
 * -TRYAGAIN, waiting a bounded time for a failover (see cluster.c).
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <gch_cluster.h>

#include "gchb.h"
#include "gchb_cluster.h"


#define GCHB_CLUSTER_TRIES     8        /* sends of one command, at most */


/* ------------------------------------------------------------------ */
/* node connections                                                    */

void
gchb_cnode_drop(gchb_cnode_t *n)
{
    if (n->c != NULL) {
        redisFree(n->c);
        n->c = NULL;
    }
}


/* The node host:port, found or added (not yet connected); NULL when the
 * table is full or out of memory. */
gchb_cnode_t *
gchb_cnode(gchb_cproxy_t *p, const char *host, int port)
{
    size_t         i;
    gchb_cnode_t  *n;

    for (i = 0; i < p->nnodes; i++) {
        if (p->nodes[i]->port == port
            && strcmp(p->nodes[i]->host, host) == 0)
        {
            return p->nodes[i];
        }
    }

    if (p->nnodes == GCHB_CLUSTER_NODES || strlen(host) >= 256) {
        return NULL;
    }

    n = calloc(1, sizeof(*n));
    if (n == NULL) {
        return NULL;
    }

    snprintf(n->host, sizeof(n->host), "%s", host);
    n->port = port;
    p->nodes[p->nnodes++] = n;

    return n;
}


/* Connects n if it is not; 0, or -1 (logged at most once a second). */
int
gchb_cnode_connect(gchb_cproxy_t *p, gchb_cnode_t *n)
{
    redisReply      *r;
    struct timeval   tv = { 1, 0 };

    if (n->c != NULL) {
        return 0;
    }

    n->c = redisConnectWithTimeout(n->host, n->port, tv);

    if (n->c == NULL || n->c->err) {
        if (gchb_now_ms() - p->logged >= 1000) {
            p->logged = gchb_now_ms();
            gchb_log("warn", "redis cluster node %s:%d: %s", n->host,
                     n->port, n->c ? n->c->errstr : "out of memory");
        }
        gchb_cnode_drop(n);
        return -1;
    }

    /* as the single-Redis connection: commands may block a while */
    tv.tv_sec = 10;
    redisSetTimeout(n->c, tv);

    if (p->password[0]) {
        r = redisCommand(n->c, "AUTH %s", p->password);
        if (r == NULL || r->type == REDIS_REPLY_ERROR) {
            gchb_log("error", "redis cluster node %s:%d: AUTH failed: %s",
                     n->host, n->port, r ? r->str : n->c->errstr);
            if (r) {
                freeReplyObject(r);
            }
            gchb_cnode_drop(n);
            return -1;
        }
        freeReplyObject(r);
    }

    return 0;
}


/* ------------------------------------------------------------------ */
/* the slot map                                                        */

/* CLUSTER SLOTS of one node into a map; 0 or -1. */
static int
gchb_map_from(gchb_cproxy_t *p, gchb_cnode_t *n, gch_cluster_map_t **m)
{
    int          rc;
    redisReply  *r;
    gchb_buf_t   b = { 0 };
    gch_error_t  err;

    *m = NULL;

    if (gchb_cnode_connect(p, n) != 0) {
        return -1;
    }

    r = redisCommand(n->c, "CLUSTER SLOTS");
    if (r == NULL) {
        gchb_cnode_drop(n);
        return -1;
    }

    gchb_cluster_resp_reply(&b, r);
    freeReplyObject(r);

    if (b.failed) {
        gchb_buf_free(&b);
        return -1;
    }

    rc = gch_cluster_map_parse(m, b.data, b.len, n->host, &gch_alloc_std,
                               &err);
    gchb_buf_free(&b);

    if (rc != GCH_OK) {
        gchb_log("warn", "redis cluster node %s:%d: %s", n->host, n->port,
                 err.message);
        return -1;
    }

    return 0;
}


/*
 * Reads the slot map again: from the nodes of the map we have, then from
 * the seeds; the first map that covers every slot wins, else the one that
 * covers most.  0, or -1 when no node answered.
 */
int
gchb_cluster_map_refresh(gchb_cproxy_t *p)
{
    int                        port;
    char                       host[256], *seeds, *s, *save, *colon;
    size_t                     i, best;
    gchb_cnode_t              *cand[GCHB_CLUSTER_NODES];
    size_t                     ncand;
    gch_cluster_map_t         *m, *keep;
    const gch_cluster_node_t  *node;

    ncand = 0;

    if (p->map != NULL) {
        for (i = 0; i < gch_cluster_map_nnodes(p->map)
                    && ncand < GCHB_CLUSTER_NODES; i++)
        {
            node = gch_cluster_map_node(p->map, i);
            cand[ncand] = gchb_cnode(p, node->host, node->port);
            if (cand[ncand] != NULL) {
                ncand++;
            }
        }
    }

    seeds = strdup(p->seeds);
    if (seeds == NULL) {
        return -1;
    }

    for (s = strtok_r(seeds, ", ", &save); s != NULL;
         s = strtok_r(NULL, ", ", &save))
    {
        snprintf(host, sizeof(host), "%s", s);
        colon = strrchr(host, ':');
        port = 6379;
        if (colon != NULL) {
            *colon = '\0';
            port = atoi(colon + 1);
        }
        if (ncand < GCHB_CLUSTER_NODES) {
            cand[ncand] = gchb_cnode(p, host, port);
            if (cand[ncand] != NULL) {
                ncand++;
            }
        }
    }

    free(seeds);

    keep = NULL;
    best = 0;

    for (i = 0; i < ncand; i++) {
        if (gchb_map_from(p, cand[i], &m) != 0) {
            continue;
        }
        if (keep == NULL || gch_cluster_map_covered(m) > best) {
            gch_cluster_map_free(keep);
            keep = m;
            best = gch_cluster_map_covered(m);
        } else {
            gch_cluster_map_free(m);
        }
        if (best == GCH_CLUSTER_SLOTS) {
            break;
        }
    }

    if (keep == NULL) {
        return -1;
    }

    gch_cluster_map_free(p->map);
    p->map = keep;

    return 0;
}


/* The master of slot, or NULL; for NOKEY, the (skip mod masters)-th
 * master, so that a command without key tries them in turn. */
gchb_cnode_t *
gchb_cluster_master(gchb_cproxy_t *p, int slot, int skip)
{
    int                        i;
    size_t                     k, masters, want;
    const gch_cluster_node_t  *node;

    if (p->map == NULL) {
        return NULL;
    }

    if (slot == GCH_CLUSTER_NOKEY) {
        masters = 0;
        for (k = 0; k < gch_cluster_map_nnodes(p->map); k++) {
            masters += gch_cluster_map_node(p->map, k)->master;
        }
        if (masters == 0) {
            return NULL;
        }
        want = (size_t) skip % masters;
        for (k = 0; k < gch_cluster_map_nnodes(p->map); k++) {
            node = gch_cluster_map_node(p->map, k);
            if (node->master && want-- == 0) {
                return gchb_cnode(p, node->host, node->port);
            }
        }
        return NULL;
    }

    i = gch_cluster_map_master(p->map, slot);
    if (i < 0) {
        return NULL;
    }

    node = gch_cluster_map_node(p->map, (size_t) i);

    return gchb_cnode(p, node->host, node->port);
}


/* ------------------------------------------------------------------ */
/* sending                                                             */

static void
gchb_pause(int attempt)
{
    /* 0, 25, 50, 100, 200, 400, 800, 800 ms: a failover's few seconds */
    if (attempt > 0) {
        gchb_sleep_ms(attempt > 5 ? 800 : 25 << (attempt - 1));
    }
}


void
gchb_cluster_append(redisContext *c, const redisReply *cmd)
{
    size_t       i;
    const char  *argv[64];
    size_t       argvlen[64];

    for (i = 0; i < cmd->elements && i < 64; i++) {
        argv[i] = cmd->element[i]->str;
        argvlen[i] = cmd->element[i]->len;
    }

    redisAppendCommandArgv(c, (int) i, argv, argvlen);
}


/* What an error reply asks: a redirect kind, TRYAGAIN (3), other (0). */
#define GCHB_TRYAGAIN  3

int
gchb_cluster_redirected(const redisReply *r, gch_cluster_redirect_t *to)
{
    int  k;

    if (r == NULL || r->type != REDIS_REPLY_ERROR) {
        return 0;
    }

    k = gch_cluster_redirect(r->str, r->len, to);
    if (k > 0) {
        return k;
    }

    if (strncmp(r->str, "TRYAGAIN", 8) == 0
        || strncmp(r->str, "CLUSTERDOWN", 11) == 0)
    {
        return GCHB_TRYAGAIN;
    }

    return 0;
}


/* The node a redirection names ("" host: the node that answered). */
static gchb_cnode_t *
gchb_redirect_node(gchb_cproxy_t *p, gchb_cnode_t *from,
    const gch_cluster_redirect_t *to)
{
    return gchb_cnode(p, to->host[0] ? to->host : from->host, to->port);
}


/*
 * Sends cmds[0..n) (one command, or MULTI ... EXEC when txn) to the node
 * of slot and returns the reply of the last one (EXEC's for a transaction)
 * following MOVED / ASK / TRYAGAIN; NULL when the program's connection is
 * to end (p->dead), or *nil_exec = 1 when a WATCHed transaction lost its
 * slot (EXEC answers nil).  *used (when not NULL) is the node that gave
 * the reply, *used_ask whether it needed ASKING.
 */
redisReply *
gchb_cluster_route(gchb_cproxy_t *p, int slot, redisReply **cmds, size_t n,
    int txn, int *nil_exec, gchb_cnode_t **used, int *used_ask)
{
    int                      attempt, asking, k;
    size_t                   i, nreplies;
    redisReply              *r, *last, *bad;
    gchb_cnode_t            *node;
    gch_cluster_redirect_t   to;

    *nil_exec = 0;
    node = NULL;
    asking = 0;

    for (attempt = 0; attempt < GCHB_CLUSTER_TRIES; attempt++) {

        if (node == NULL) {
            if (p->pin != NULL) {
                node = p->pin;
                asking = p->pin_ask;

            } else {
                node = gchb_cluster_master(p, slot, attempt);
                if (node == NULL) {
                    gchb_pause(attempt);
                    gchb_cluster_map_refresh(p);
                    continue;
                }
            }
        }

        if (gchb_cnode_connect(p, node) != 0) {
            /* nothing sent: wait for the failover, read the map again */
            if (p->pin != NULL) {
                p->dead = 1;            /* the WATCH died with the node */
                return NULL;
            }
            node = NULL;
            asking = 0;
            gchb_pause(attempt + 1);
            gchb_cluster_map_refresh(p);
            continue;
        }

        nreplies = 0;
        if (asking) {
            redisAppendCommand(node->c, "ASKING");
            nreplies++;
        }
        if (txn) {
            redisAppendCommand(node->c, "MULTI");
            nreplies++;
        }
        for (i = 0; i < n; i++) {
            gchb_cluster_append(node->c, cmds[i]);
            nreplies++;
        }
        if (txn) {
            redisAppendCommand(node->c, "EXEC");
            nreplies++;
        }

        last = NULL;
        bad = NULL;

        for (i = 0; i < nreplies; i++) {
            if (redisGetReply(node->c, (void **) &r) != REDIS_OK) {
                r = NULL;
            }
            if (r == NULL) {
                break;
            }
            if (i + 1 == nreplies) {
                last = r;
                break;
            }
            /* a redirect of a queued command (EXEC then EXECABORT) */
            if (bad == NULL && gchb_cluster_redirected(r, &to)) {
                bad = r;
                continue;
            }
            freeReplyObject(r);
        }

        if (last == NULL) {
            /* the node was lost with the command sent: it may have run */
            if (bad) {
                freeReplyObject(bad);
            }
            gchb_cnode_drop(node);
            gchb_log("warn", "redis cluster node %s:%d lost during a "
                     "command", node->host, node->port);
            p->dead = 1;
            return NULL;
        }

        if (bad == NULL && gchb_cluster_redirected(last, &to)) {
            bad = last;
            last = NULL;
        }

        if (bad == NULL) {
            if (used != NULL) {
                *used = node;
                *used_ask = asking;
            }
            return last;
        }

        k = gchb_cluster_redirected(bad, &to);

        if (last) {
            freeReplyObject(last);
        }
        freeReplyObject(bad);

        if (p->pin != NULL && k != GCHB_TRYAGAIN) {
            /* the watched slot moved */
            p->pin_broken = 1;
            if (txn) {
                *nil_exec = 1;
                return NULL;
            }
            p->pin = NULL;
        }

        switch (k) {

        case GCH_CLUSTER_MOVED:
            gchb_cluster_map_refresh(p);
            node = gchb_redirect_node(p, node, &to);
            asking = 0;
            break;

        case GCH_CLUSTER_ASK:
            node = gchb_redirect_node(p, node, &to);
            asking = 1;
            break;

        default:                        /* TRYAGAIN, CLUSTERDOWN */
            gchb_pause(attempt + 1);
            if (p->pin == NULL) {
                node = NULL;
                asking = 0;
                gchb_cluster_map_refresh(p);
            }
            break;
        }
    }

    gchb_log("warn", "redis cluster: slot %d: no answer from its master "
             "after %d tries (down, failing over, or redirecting)", slot,
             GCHB_CLUSTER_TRIES);
    p->dead = 1;

    return NULL;
}
