/*
 * cluster.c -- Redis Cluster for the back-end programs (redis_cluster).
 *
 * guichet-worker, guichetctl and guichet-office talk to Redis through a
 * plain hiredis redisContext, synchronously, with pipelines and MULTI/EXEC
 * in many places.  In cluster mode that context is one end of a socketpair;
 * a routing thread owns the other end.  It reads the program's commands
 * (RESP, as hiredis wrote them), sends each to the master of its slot
 * (engine/src/cluster.c computes slots and reads the slot map), keeps one
 * connection per node, and writes the nodes' replies back in order.  So
 * every call site stays as it is, and one program's connection behaves as
 * with one Redis:
 *
 *   - MULTI ... EXEC: MULTI and the queued commands are answered +OK and
 *     +QUEUED at once; at EXEC the whole transaction goes to the master of
 *     its slot (its keys must share one: else EXEC fails, nothing sent).
 *     WATCH pins the connection to its slot's master until EXEC, DISCARD
 *     or UNWATCH.
 *   - -MOVED: the slot map is read again (CLUSTER SLOTS) and the command or
 *     the whole transaction is sent again to the node MOVED named (nothing
 *     of it ran).  A transaction under WATCH whose slot moved answers EXEC
 *     with nil, as when a watched key changed: the program retries it.
 *   - -ASK: ASKING, then the command (or ASKING MULTI ... EXEC: Redis keeps
 *     the ASKING flag for the whole transaction) on the node ASK named.
 *     -TRYAGAIN (keys of a transaction on both sides of a migration): a
 *     short pause and again.  At most GCHB_CLUSTER_TRIES sends.
 *   - a node that cannot be reached before anything was sent: the map is
 *     read again and the command waits for the failover, a bounded time;
 *     then, or when a node is lost after a command was sent (it may have
 *     run), the routing thread closes the program's connection: the program
 *     sees the same I/O error as when its one Redis goes down, and does
 *     what it does then (the worker reconnects with its backoff, guichetctl
 *     fails, the office answers 503).
 *   - SCAN walks every master in turn behind one cursor.
 *
 * The program's redisFree() closes its end; the thread then closes the
 * nodes' connections and ends (joined later: gchb_join_done).  At the
 * program's exit the threads still running are shut down and joined, so
 * that memcheck finds nothing allocated (test_cluster_backend.py runs the
 * routing under valgrind).
 */

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/read.h>

#include <gch_cluster.h>

#include "gchb.h"


#define GCHB_CLUSTER_TRIES     8        /* sends of one command, at most */
#define GCHB_CLUSTER_NODES   256        /* node connections kept         */


typedef struct {
    char           host[256];
    int            port;
    redisContext  *c;
} gchb_cnode_t;

typedef struct gchb_cproxy_s {
    int                 fd;             /* our end of the socketpair      */
    char               *seeds;          /* "host:port,host:port"          */
    char               *password;       /* "" for none                    */
    gch_cluster_map_t  *map;
    gchb_cnode_t       *nodes[GCHB_CLUSTER_NODES];
    size_t              nnodes;
    gchb_buf_t          out;            /* replies not yet written        */
    int                 dead;           /* close the program's connection */
    int64_t             logged;         /* last "cannot connect" logged   */

    int                 multi;          /* between MULTI and EXEC         */
    redisReply        **queued;         /* commands of the transaction    */
    size_t              nqueued;
    size_t              capqueued;
    gchb_cnode_t       *pin;            /* WATCH's node                   */
    int                 pin_slot;
    int                 pin_ask;        /* pinned through -ASK: ASKING    */
    int                 pin_broken;     /* the watched slot moved         */

    unsigned long long  scan_token;     /* the cursor SCAN handed out     */
    size_t              scan_master;
    char                scan_cursor[32];

    struct gchb_cproxy_s  *next;        /* gchb_live, under gchb_live_mu */
} gchb_cproxy_t;


/*
 * The routing threads that run (gchb_live), and those that ended and are
 * not joined yet (gchb_done: joined by the next gchb_cluster_open() and at
 * exit).  The program's exit ends the live ones first
 * (gchb_cluster_atexit), so that their memory is all released and no
 * thread is cut off mid-work.
 */
#define GCHB_DONE_MAX  64

static pthread_mutex_t   gchb_live_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t    gchb_live_cv = PTHREAD_COND_INITIALIZER;
static gchb_cproxy_t    *gchb_live;
static pthread_t         gchb_done[GCHB_DONE_MAX];
static size_t            gchb_ndone;
static int               gchb_live_hooked;


/* ------------------------------------------------------------------ */
/* replies as RESP bytes                                               */

static void
gchb_resp_line(gchb_buf_t *b, char type, const char *s, size_t n)
{
    gchb_buf_add(b, &type, 1);
    gchb_buf_add(b, s, n);
    gchb_buf_add(b, "\r\n", 2);
}


static void
gchb_resp_num(gchb_buf_t *b, char type, long long v)
{
    char  num[32];
    int   n;

    n = snprintf(num, sizeof(num), "%lld", v);
    gchb_resp_line(b, type, num, (size_t) n);
}


/* A hiredis reply (RESP2) written back as the bytes Redis sent. */
static void
gchb_resp_reply(gchb_buf_t *b, const redisReply *r)
{
    size_t  i;

    switch (r->type) {

    case REDIS_REPLY_STRING:
        gchb_resp_num(b, '$', (long long) r->len);
        gchb_buf_add(b, r->str, r->len);
        gchb_buf_add(b, "\r\n", 2);
        break;

    case REDIS_REPLY_ARRAY:
        gchb_resp_num(b, '*', (long long) r->elements);
        for (i = 0; i < r->elements; i++) {
            gchb_resp_reply(b, r->element[i]);
        }
        break;

    case REDIS_REPLY_INTEGER:
        gchb_resp_num(b, ':', r->integer);
        break;

    case REDIS_REPLY_STATUS:
        gchb_resp_line(b, '+', r->str, r->len);
        break;

    case REDIS_REPLY_ERROR:
        gchb_resp_line(b, '-', r->str, r->len);
        break;

    default:                            /* REDIS_REPLY_NIL */
        gchb_buf_add(b, "$-1\r\n", 5);
        break;
    }
}


static void
gchb_resp_error(gchb_buf_t *b, const char *msg)
{
    gchb_resp_line(b, '-', msg, strlen(msg));
}


/* ------------------------------------------------------------------ */
/* node connections                                                    */

static void
gchb_cnode_drop(gchb_cnode_t *n)
{
    if (n->c != NULL) {
        redisFree(n->c);
        n->c = NULL;
    }
}


/* The node host:port, found or added (not yet connected); NULL when the
 * table is full or out of memory. */
static gchb_cnode_t *
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
static int
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

    gchb_resp_reply(&b, r);
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
static int
gchb_map_refresh(gchb_cproxy_t *p)
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
static gchb_cnode_t *
gchb_master(gchb_cproxy_t *p, int slot, int skip)
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


static void
gchb_append(redisContext *c, const redisReply *cmd)
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

static int
gchb_redirected(const redisReply *r, gch_cluster_redirect_t *to)
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
static redisReply *
gchb_route(gchb_cproxy_t *p, int slot, redisReply **cmds, size_t n,
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
                node = gchb_master(p, slot, attempt);
                if (node == NULL) {
                    gchb_pause(attempt);
                    gchb_map_refresh(p);
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
            gchb_map_refresh(p);
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
            gchb_append(node->c, cmds[i]);
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
            if (bad == NULL && gchb_redirected(r, &to)) {
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

        if (bad == NULL && gchb_redirected(last, &to)) {
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

        k = gchb_redirected(bad, &to);

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
            gchb_map_refresh(p);
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
                gchb_map_refresh(p);
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


/* ------------------------------------------------------------------ */
/* commands                                                            */

static int
gchb_is(const redisReply *cmd, const char *name)
{
    return cmd->element[0]->len == strlen(name)
           && strncasecmp(cmd->element[0]->str, name,
                          cmd->element[0]->len) == 0;
}


static int
gchb_cmd_slot(const redisReply *cmd)
{
    size_t       i;
    const char  *argv[64];
    size_t       argvlen[64];

    if (cmd->elements > 64) {
        return GCH_CLUSTER_BADCMD;
    }

    for (i = 0; i < cmd->elements; i++) {
        argv[i] = cmd->element[i]->str;
        argvlen[i] = cmd->element[i]->len;
    }

    return gch_cluster_argv_slot((int) cmd->elements, argv, argvlen);
}


static int
gchb_slot_error(gchb_cproxy_t *p, int slot, const redisReply *cmd)
{
    char  msg[200];

    switch (slot) {

    case GCH_CLUSTER_CROSS:
        gchb_resp_error(&p->out, "CROSSSLOT Keys in request don't hash to "
                        "the same slot (guichet cluster routing)");
        return 1;

    case GCH_CLUSTER_UNKNOWN:
        snprintf(msg, sizeof(msg), "ERR guichet cluster routing does not "
                 "know the keys of '%.*s'",
                 (int) (cmd->element[0]->len > 64 ? 64
                        : cmd->element[0]->len), cmd->element[0]->str);
        gchb_resp_error(&p->out, msg);
        return 1;

    case GCH_CLUSTER_BADCMD:
        gchb_resp_error(&p->out, "ERR wrong number of arguments "
                        "(guichet cluster routing)");
        return 1;
    }

    return 0;
}


static void
gchb_unpin(gchb_cproxy_t *p)
{
    p->pin = NULL;
    p->pin_ask = 0;
    p->pin_broken = 0;
    p->pin_slot = GCH_CLUSTER_NOKEY;
}


static void
gchb_txn_clear(gchb_cproxy_t *p)
{
    size_t  i;

    for (i = 0; i < p->nqueued; i++) {
        freeReplyObject(p->queued[i]);
    }

    p->nqueued = 0;
    p->multi = 0;
}


static void
gchb_exec(gchb_cproxy_t *p)
{
    int          slot, nil;
    size_t       i;
    redisReply  *r;

    slot = p->pin ? p->pin_slot : GCH_CLUSTER_NOKEY;

    for (i = 0; i < p->nqueued; i++) {
        slot = gch_cluster_slot_join(slot, gchb_cmd_slot(p->queued[i]));
    }

    if (slot < GCH_CLUSTER_NOKEY) {
        gchb_resp_error(&p->out, "EXECABORT Transaction discarded: its keys "
                        "are not in one slot (guichet cluster routing)");

    } else if (p->pin_broken) {
        gchb_buf_add(&p->out, "$-1\r\n", 5);

    } else {
        r = gchb_route(p, slot, p->queued, p->nqueued, 1, &nil, NULL,
                       NULL);
        if (r != NULL) {
            gchb_resp_reply(&p->out, r);
            freeReplyObject(r);

        } else if (nil) {
            gchb_buf_add(&p->out, "$-1\r\n", 5);
        }
    }

    gchb_txn_clear(p);
    gchb_unpin(p);
}


/*
 * SCAN cursor [MATCH ...] [COUNT ...]: every master in turn.  The cursor
 * handed out is our own counter; the node and its cursor are kept here.
 */
static void
gchb_scan(gchb_cproxy_t *p, const redisReply *cmd)
{
    int                        nil, pin_ask;
    size_t                     k, seen;
    char                       tok[32];
    redisReply                *r, copy, *args[1], cur, *el[64];
    gchb_cnode_t              *node, *pin;
    const gch_cluster_node_t  *mn;
    unsigned long long         given;

    if (cmd->elements < 2 || cmd->elements > 64) {
        gchb_resp_error(&p->out, "ERR wrong number of arguments for 'scan'");
        return;
    }

    given = strtoull(cmd->element[1]->str, NULL, 10);

    if (given == 0) {
        p->scan_master = 0;
        snprintf(p->scan_cursor, sizeof(p->scan_cursor), "0");
        if (p->map == NULL) {
            gchb_map_refresh(p);
        }

    } else if (given != p->scan_token) {
        gchb_resp_error(&p->out, "ERR invalid cursor (guichet cluster "
                        "routing: one SCAN at a time)");
        return;
    }

    /* the scan_master-th master of the map */
    node = NULL;
    seen = 0;
    for (k = 0; p->map != NULL && k < gch_cluster_map_nnodes(p->map); k++) {
        mn = gch_cluster_map_node(p->map, k);
        if (mn->master && seen++ == p->scan_master) {
            node = gchb_cnode(p, mn->host, mn->port);
            break;
        }
    }

    if (node == NULL) {
        gchb_buf_add(&p->out, "*2\r\n$1\r\n0\r\n*0\r\n", 16);
        return;
    }

    /* the same command, the node's cursor in place of ours */
    copy = *cmd;
    memcpy(el, cmd->element, cmd->elements * sizeof(el[0]));
    cur = *cmd->element[1];
    cur.str = p->scan_cursor;
    cur.len = strlen(p->scan_cursor);
    el[1] = &cur;
    copy.element = el;
    args[0] = &copy;

    /* this node, no redirection: pinned for the call (a WATCH's pin,
     * if any, is put back) */
    pin = p->pin;
    pin_ask = p->pin_ask;
    p->pin = node;
    p->pin_ask = 0;
    r = gchb_route(p, GCH_CLUSTER_NOKEY, args, 1, 0, &nil, NULL, NULL);
    p->pin = pin;
    p->pin_ask = pin_ask;

    if (r == NULL) {
        return;
    }

    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2
        || r->element[0]->type != REDIS_REPLY_STRING)
    {
        gchb_resp_reply(&p->out, r);
        freeReplyObject(r);
        return;
    }

    snprintf(p->scan_cursor, sizeof(p->scan_cursor), "%s",
             r->element[0]->str);

    if (strcmp(p->scan_cursor, "0") == 0) {
        p->scan_master++;
    }

    /* done when the last master's cursor came back to 0 */
    seen = 0;
    for (k = 0; k < gch_cluster_map_nnodes(p->map); k++) {
        seen += gch_cluster_map_node(p->map, k)->master;
    }

    if (strcmp(p->scan_cursor, "0") == 0 && p->scan_master >= seen) {
        snprintf(tok, sizeof(tok), "0");
        p->scan_token = 0;

    } else {
        p->scan_token++;
        if (p->scan_token == 0) {
            p->scan_token = 1;
        }
        snprintf(tok, sizeof(tok), "%llu", p->scan_token);
    }

    gchb_buf_add(&p->out, "*2\r\n", 4);
    gchb_resp_num(&p->out, '$', (long long) strlen(tok));
    gchb_buf_add(&p->out, tok, strlen(tok));
    gchb_buf_add(&p->out, "\r\n", 2);
    gchb_resp_reply(&p->out, r->element[1]);
    freeReplyObject(r);
}


/* One command of the program.  Keeps cmd (queued) or frees it. */
static void
gchb_command(gchb_cproxy_t *p, redisReply *cmd)
{
    int            slot, nil, ask;
    size_t         i;
    void          *np;
    redisReply    *r, *one[1];
    gchb_cnode_t  *node;

    if (cmd->type != REDIS_REPLY_ARRAY || cmd->elements == 0) {
        gchb_resp_error(&p->out, "ERR protocol error (guichet cluster "
                        "routing)");
        freeReplyObject(cmd);
        return;
    }

    for (i = 0; i < cmd->elements; i++) {
        if (cmd->element[i]->type != REDIS_REPLY_STRING) {
            gchb_resp_error(&p->out, "ERR protocol error (guichet cluster "
                            "routing)");
            freeReplyObject(cmd);
            return;
        }
    }

    if (gchb_is(cmd, "MULTI")) {
        if (p->multi) {
            gchb_resp_error(&p->out, "ERR MULTI calls can not be nested");
        } else {
            p->multi = 1;
            gchb_buf_add(&p->out, "+OK\r\n", 5);
        }
        freeReplyObject(cmd);
        return;
    }

    if (gchb_is(cmd, "EXEC") || gchb_is(cmd, "DISCARD")) {
        if (!p->multi) {
            gchb_resp_error(&p->out, gchb_is(cmd, "EXEC")
                            ? "ERR EXEC without MULTI"
                            : "ERR DISCARD without MULTI");

        } else if (gchb_is(cmd, "EXEC")) {
            gchb_exec(p);

        } else {
            if (p->pin != NULL && p->pin->c != NULL) {
                r = redisCommand(p->pin->c, "UNWATCH");
                if (r) {
                    freeReplyObject(r);
                }
            }
            gchb_txn_clear(p);
            gchb_unpin(p);
            gchb_buf_add(&p->out, "+OK\r\n", 5);
        }
        freeReplyObject(cmd);
        return;
    }

    if (p->multi) {
        if (p->nqueued == p->capqueued) {
            np = realloc(p->queued, (p->capqueued ? p->capqueued * 2 : 16)
                                    * sizeof(p->queued[0]));
            if (np == NULL) {
                p->dead = 1;
                freeReplyObject(cmd);
                return;
            }
            p->queued = np;
            p->capqueued = p->capqueued ? p->capqueued * 2 : 16;
        }
        p->queued[p->nqueued++] = cmd;
        gchb_buf_add(&p->out, "+QUEUED\r\n", 9);
        return;
    }

    if (gchb_is(cmd, "SCAN")) {
        gchb_scan(p, cmd);
        freeReplyObject(cmd);
        return;
    }

    if (gchb_is(cmd, "UNWATCH")) {
        if (p->pin != NULL && p->pin->c != NULL) {
            r = redisCommand(p->pin->c, "UNWATCH");
            if (r) {
                freeReplyObject(r);
            }
        }
        gchb_unpin(p);
        gchb_buf_add(&p->out, "+OK\r\n", 5);
        freeReplyObject(cmd);
        return;
    }

    if (gchb_is(cmd, "AUTH")) {
        /* the routing thread authenticates every node itself */
        gchb_buf_add(&p->out, "+OK\r\n", 5);
        freeReplyObject(cmd);
        return;
    }

    slot = gchb_cmd_slot(cmd);

    if (gchb_slot_error(p, slot, cmd)) {
        freeReplyObject(cmd);
        return;
    }

    if (p->pin != NULL && slot >= 0 && slot != p->pin_slot) {
        gchb_slot_error(p, GCH_CLUSTER_CROSS, cmd);
        freeReplyObject(cmd);
        return;
    }

    if (gchb_is(cmd, "WATCH") && p->pin == NULL) {
        /* pin the connection to the slot's master, found by the WATCH */
        p->pin_slot = slot;
        one[0] = cmd;
        r = gchb_route(p, slot, one, 1, 0, &nil, &node, &ask);
        if (r != NULL) {
            if (r->type != REDIS_REPLY_ERROR) {
                p->pin = node;
                p->pin_ask = ask;
            }
            gchb_resp_reply(&p->out, r);
            freeReplyObject(r);
        }
        freeReplyObject(cmd);
        return;
    }

    one[0] = cmd;
    r = gchb_route(p, slot, one, 1, 0, &nil, NULL, NULL);
    if (r != NULL) {
        gchb_resp_reply(&p->out, r);
        freeReplyObject(r);
    }

    freeReplyObject(cmd);
}


/* ------------------------------------------------------------------ */
/* the routing thread                                                  */

static int
gchb_write_all(int fd, const char *p, size_t n)
{
    ssize_t  w;

    while (n > 0) {
        w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            return -1;
        }
        p += w;
        n -= (size_t) w;
    }

    return 0;
}


static void
gchb_cproxy_free(gchb_cproxy_t *p)
{
    size_t  i;

    gchb_txn_clear(p);
    free(p->queued);

    for (i = 0; i < p->nnodes; i++) {
        gchb_cnode_drop(p->nodes[i]);
        free(p->nodes[i]);
    }

    gch_cluster_map_free(p->map);
    gchb_buf_free(&p->out);
    free(p->seeds);
    free(p->password);

    if (p->fd >= 0) {
        close(p->fd);
    }

    free(p);
}


/* The thread's end: off the list of live ones, everything released,
 * onto the list of threads to join. */
static void
gchb_cproxy_end(gchb_cproxy_t *p)
{
    gchb_cproxy_t  **pp;

    pthread_mutex_lock(&gchb_live_mu);

    for (pp = &gchb_live; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    }

    gchb_cproxy_free(p);

    if (gchb_ndone < GCHB_DONE_MAX) {
        gchb_done[gchb_ndone++] = pthread_self();
    } else {
        pthread_detach(pthread_self());
    }

    pthread_cond_broadcast(&gchb_live_cv);
    pthread_mutex_unlock(&gchb_live_mu);
}


/* Joins the threads that ended. */
static void
gchb_join_done(void)
{
    size_t     i, n;
    pthread_t  done[GCHB_DONE_MAX];

    pthread_mutex_lock(&gchb_live_mu);
    n = gchb_ndone;
    memcpy(done, gchb_done, n * sizeof(done[0]));
    gchb_ndone = 0;
    pthread_mutex_unlock(&gchb_live_mu);

    for (i = 0; i < n; i++) {
        pthread_join(done[i], NULL);
    }
}


/* At exit: wakes every routing thread (its connection shut down), waits
 * 2 s at most for them to end, and joins them. */
static void
gchb_cluster_atexit(void)
{
    gchb_cproxy_t    *p;
    struct timespec   until;

    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 2;

    pthread_mutex_lock(&gchb_live_mu);

    for (p = gchb_live; p != NULL; p = p->next) {
        shutdown(p->fd, SHUT_RDWR);
    }

    while (gchb_live != NULL) {
        if (pthread_cond_timedwait(&gchb_live_cv, &gchb_live_mu, &until)
            != 0)
        {
            break;
        }
    }

    pthread_mutex_unlock(&gchb_live_mu);

    gchb_join_done();
}


/*
 * A command that goes through the plain route, and may share a pipeline
 * with its neighbours: no transaction, no WATCH in force, none of the
 * commands gchb_command() handles itself; *slot its slot.
 */
static int
gchb_plain(gchb_cproxy_t *p, const redisReply *cmd, int *slot)
{
    size_t  i;

    if (p->multi || p->pin != NULL || p->pin_broken
        || cmd->type != REDIS_REPLY_ARRAY || cmd->elements == 0)
    {
        return 0;
    }

    for (i = 0; i < cmd->elements; i++) {
        if (cmd->element[i]->type != REDIS_REPLY_STRING) {
            return 0;
        }
    }

    if (gchb_is(cmd, "MULTI") || gchb_is(cmd, "EXEC")
        || gchb_is(cmd, "DISCARD") || gchb_is(cmd, "WATCH")
        || gchb_is(cmd, "UNWATCH") || gchb_is(cmd, "SCAN")
        || gchb_is(cmd, "AUTH"))
    {
        return 0;
    }

    *slot = gchb_cmd_slot(cmd);

    return *slot >= 0 || *slot == GCH_CLUSTER_NOKEY;
}


#define GCHB_PIPELINE_MAX  1024

/*
 * cmds[0..n) to node as one pipeline (with appendfsync always, one fsync
 * for all of them instead of one each).  The replies are read first, all
 * of them; then, in order, a redirected one (MOVED, ASK, TRYAGAIN) is sent
 * again alone through gchb_route(), the others written back as they are.
 * So a command redirected in the middle of a pipeline runs after the ones
 * that followed it, as it would with a cluster client library: their
 * keys are in other slots, or in a slot half migrated (ASK).  Frees cmds.
 */
static void
gchb_pipeline(gchb_cproxy_t *p, gchb_cnode_t *node, redisReply **cmds,
    const int *slots, size_t n)
{
    int                      nil;
    size_t                   i, got;
    redisReply              *r, *one[1];
    redisReply              *replies[GCHB_PIPELINE_MAX];
    gch_cluster_redirect_t   to;

    for (i = 0; i < n; i++) {
        gchb_append(node->c, cmds[i]);
    }

    for (got = 0; got < n; got++) {
        if (redisGetReply(node->c, (void **) &r) != REDIS_OK || r == NULL) {
            break;
        }
        replies[got] = r;
    }

    if (got < n) {
        /* lost with commands sent: as one Redis going down */
        gchb_log("warn", "redis cluster node %s:%d lost during a "
                 "pipeline", node->host, node->port);
        gchb_cnode_drop(node);
        p->dead = 1;
    }

    for (i = 0; i < got; i++) {
        r = replies[i];

        if (!p->dead && gchb_redirected(r, &to)) {
            freeReplyObject(r);
            one[0] = cmds[i];
            r = gchb_route(p, slots[i], one, 1, 0, &nil, NULL, NULL);
            if (r == NULL) {
                continue;
            }
        }

        if (!p->dead) {
            gchb_resp_reply(&p->out, r);
        }
        freeReplyObject(r);
    }

    for (i = 0; i < n; i++) {
        freeReplyObject(cmds[i]);
    }
}


/* The commands the program sent at once, in order. */
static void
gchb_batch(gchb_cproxy_t *p, redisReply **cmds, size_t n)
{
    int            slot;
    size_t         i, j;
    gchb_cnode_t  *node;
    int            slots[GCHB_PIPELINE_MAX];

    i = 0;

    while (i < n) {
        if (p->dead) {
            freeReplyObject(cmds[i++]);
            continue;
        }

        if (!gchb_plain(p, cmds[i], &slot)) {
            gchb_command(p, cmds[i++]);
            continue;
        }

        node = gchb_master(p, slot, 0);
        slots[0] = slot;

        for (j = i + 1; j < n && j - i < GCHB_PIPELINE_MAX; j++) {
            if (!gchb_plain(p, cmds[j], &slots[j - i])
                || gchb_master(p, slots[j - i], 0) != node)
            {
                break;
            }
        }

        if (j == i + 1 || node == NULL || gchb_cnode_connect(p, node) != 0) {
            /* alone: gchb_route() waits for a failover, reads the map */
            gchb_command(p, cmds[i++]);
            continue;
        }

        gchb_pipeline(p, node, cmds + i, slots, j - i);
        i = j;
    }
}


static void *
gchb_cproxy_run(void *arg)
{
    char             buf[65536];
    size_t           ncmds, cap;
    ssize_t          n;
    redisReply      *cmd, **cmds, **np;
    redisReader     *in;
    gchb_cproxy_t   *p;

    p = arg;
    cmds = NULL;
    cap = 0;

    in = redisReaderCreate();
    if (in == NULL) {
        gchb_cproxy_end(p);
        return NULL;
    }

    while (!p->dead) {
        n = read(p->fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;                      /* the program's redisFree() */
        }

        /* what else the program wrote already: one batch */
        do {
            if (redisReaderFeed(in, buf, (size_t) n) != REDIS_OK) {
                p->dead = 1;
                break;
            }
            n = recv(p->fd, buf, sizeof(buf), MSG_DONTWAIT);
        } while (n > 0);

        if (n == 0) {
            p->dead = 1;                /* closed after writing */
        }

        ncmds = 0;

        for ( ;; ) {
            if (redisReaderGetReply(in, (void **) &cmd) != REDIS_OK) {
                p->dead = 1;
                break;
            }
            if (cmd == NULL) {
                break;
            }
            if (ncmds == cap) {
                np = realloc(cmds, (cap ? cap * 2 : 64) * sizeof(cmds[0]));
                if (np == NULL) {
                    freeReplyObject(cmd);
                    p->dead = 1;
                    break;
                }
                cmds = np;
                cap = cap ? cap * 2 : 64;
            }
            cmds[ncmds++] = cmd;
        }

        gchb_batch(p, cmds, ncmds);

        if (p->out.failed
            || gchb_write_all(p->fd, p->out.data, p->out.len) != 0)
        {
            break;
        }

        p->out.len = 0;
    }

    free(cmds);
    redisReaderFree(in);
    gchb_cproxy_end(p);

    return NULL;
}


/* See gchb.h. */
redisContext *
gchb_cluster_open(const gchb_conf_t *conf)
{
    int                 sv[2], err;
    sigset_t            all, old;
    pthread_t           tid;
    pthread_attr_t      attr;
    redisContext       *rc;
    gchb_cproxy_t      *p, **pp;
    struct sigaction    sa;

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        gchb_log("error", "redis cluster: socketpair: %s", strerror(errno));
        return NULL;
    }

    p = calloc(1, sizeof(*p));
    if (p == NULL) {
        close(sv[0]);
        close(sv[1]);
        return NULL;
    }

    p->fd = sv[1];
    p->pin_slot = GCH_CLUSTER_NOKEY;
    p->seeds = strdup(conf->redis_cluster);
    p->password = strdup(conf->redis_password ? conf->redis_password : "");

    if (p->seeds == NULL || p->password == NULL) {
        close(sv[0]);
        gchb_cproxy_free(p);
        return NULL;
    }

    if (gchb_map_refresh(p) != 0) {
        gchb_log("error", "cannot read the slot map of redis_cluster \"%s\":"
                 " no node answered CLUSTER SLOTS (%s)", conf->redis_cluster,
                 gchb_conf_note());
        close(sv[0]);
        gchb_cproxy_free(p);
        return NULL;
    }

    /* a write on a connection whose routing thread ended must be an
     * error, as on a Redis that went away, not a SIGPIPE that kills */
    if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL) {
        signal(SIGPIPE, SIG_IGN);
    }

    gchb_join_done();                   /* the connections closed before */

    pthread_mutex_lock(&gchb_live_mu);
    if (!gchb_live_hooked) {
        gchb_live_hooked = (atexit(gchb_cluster_atexit) == 0);
    }
    p->next = gchb_live;
    gchb_live = p;
    pthread_mutex_unlock(&gchb_live_mu);

    /* the routing thread takes no signal: they stay the program's */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_attr_init(&attr);
    err = pthread_create(&tid, &attr, gchb_cproxy_run, p);
    pthread_attr_destroy(&attr);
    pthread_sigmask(SIG_SETMASK, &old, NULL);

    if (err != 0) {
        gchb_log("error", "redis cluster: cannot start the routing thread:"
                 " %s", strerror(err));
        close(sv[0]);
        pthread_mutex_lock(&gchb_live_mu);
        for (pp = &gchb_live; *pp != NULL; pp = &(*pp)->next) {
            if (*pp == p) {
                *pp = p->next;
                break;
            }
        }
        pthread_mutex_unlock(&gchb_live_mu);
        gchb_cproxy_free(p);
        return NULL;
    }

    rc = redisConnectFd(sv[0]);
    if (rc == NULL || rc->err) {
        if (rc) {
            redisFree(rc);              /* closes sv[0]: the thread ends */
        } else {
            close(sv[0]);
        }
        return NULL;
    }

    return rc;
}
