/*
 * cluster_cmd.c -- Redis Cluster for the back-end programs: the program's
 * commands.
 *
 * What the routing thread (cluster.c) does with the commands the program
 * wrote: replies written back as RESP bytes, MULTI ... EXEC answered and
 * sent as one, WATCH's pin, SCAN over every master, and the commands sent
 * at once grouped into one pipeline per node (the nodes and the route of
 * one command: cluster_node.c).
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <gch_cluster.h>

#include "gchb.h"
#include "gchb_cluster.h"


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
void
gchb_cluster_resp_reply(gchb_buf_t *b, const redisReply *r)
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
            gchb_cluster_resp_reply(b, r->element[i]);
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


void
gchb_cluster_txn_clear(gchb_cproxy_t *p)
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
        r = gchb_cluster_route(p, slot, p->queued, p->nqueued, 1, &nil, NULL,
                       NULL);
        if (r != NULL) {
            gchb_cluster_resp_reply(&p->out, r);
            freeReplyObject(r);

        } else if (nil) {
            gchb_buf_add(&p->out, "$-1\r\n", 5);
        }
    }

    gchb_cluster_txn_clear(p);
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
            gchb_cluster_map_refresh(p);
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
    r = gchb_cluster_route(p, GCH_CLUSTER_NOKEY, args, 1, 0, &nil, NULL, NULL);
    p->pin = pin;
    p->pin_ask = pin_ask;

    if (r == NULL) {
        return;
    }

    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2
        || r->element[0]->type != REDIS_REPLY_STRING)
    {
        gchb_cluster_resp_reply(&p->out, r);
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
    gchb_cluster_resp_reply(&p->out, r->element[1]);
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
            gchb_cluster_txn_clear(p);
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
        r = gchb_cluster_route(p, slot, one, 1, 0, &nil, &node, &ask);
        if (r != NULL) {
            if (r->type != REDIS_REPLY_ERROR) {
                p->pin = node;
                p->pin_ask = ask;
            }
            gchb_cluster_resp_reply(&p->out, r);
            freeReplyObject(r);
        }
        freeReplyObject(cmd);
        return;
    }

    one[0] = cmd;
    r = gchb_cluster_route(p, slot, one, 1, 0, &nil, NULL, NULL);
    if (r != NULL) {
        gchb_cluster_resp_reply(&p->out, r);
        freeReplyObject(r);
    }

    freeReplyObject(cmd);
}


/* ------------------------------------------------------------------ */
/* batches and pipelines                                               */

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
 * again alone through gchb_cluster_route(), the others written back as
 * they are.  So a command redirected in the middle of a pipeline runs
 * after the ones that followed it, as it would with a cluster client
 * library: their keys are in other slots, or in a slot half migrated
 * (ASK).  Frees cmds.
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
        gchb_cluster_append(node->c, cmds[i]);
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

        if (!p->dead && gchb_cluster_redirected(r, &to)) {
            freeReplyObject(r);
            one[0] = cmds[i];
            r = gchb_cluster_route(p, slots[i], one, 1, 0, &nil, NULL, NULL);
            if (r == NULL) {
                continue;
            }
        }

        if (!p->dead) {
            gchb_cluster_resp_reply(&p->out, r);
        }
        freeReplyObject(r);
    }

    for (i = 0; i < n; i++) {
        freeReplyObject(cmds[i]);
    }
}


/* The commands the program sent at once, in order. */
void
gchb_cluster_batch(gchb_cproxy_t *p, redisReply **cmds, size_t n)
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

        node = gchb_cluster_master(p, slot, 0);
        slots[0] = slot;

        for (j = i + 1; j < n && j - i < GCHB_PIPELINE_MAX; j++) {
            if (!gchb_plain(p, cmds[j], &slots[j - i])
                || gchb_cluster_master(p, slots[j - i], 0) != node)
            {
                break;
            }
        }

        if (j == i + 1 || node == NULL || gchb_cnode_connect(p, node) != 0) {
            /* alone: gchb_cluster_route() waits for a failover, reads the
             * map */
            gchb_command(p, cmds[i++]);
            continue;
        }

        gchb_pipeline(p, node, cmds + i, slots, j - i);
        i = j;
    }
}
