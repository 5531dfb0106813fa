/*
 * ngx_http_guichet_cluster.c -- where each command list goes: to the one
 * Redis of guichet_redis, or, with guichet_redis_cluster, to the master
 * of its slot in a Redis Cluster.
 *
 * Cluster mode.  Each worker process learns the slot map (CLUSTER SLOTS)
 * from the seeds at start, every second after, and at once when a node
 * answers MOVED or a slot's master is not up; one refresh is in flight at
 * a time.  Every master gets the adapter's pool of connections
 * (ngx_http_guichet_redis.c).  A command list (one MULTI ... EXEC of a
 * saga step) goes to the master of the slot of its first key (a town's
 * keys carry the town's hash tag; Redis refuses a transaction that spans
 * slots whole, CROSSSLOT).  A list goes without looking at each reply;
 * when its EXEC is refused (EXECABORT: nothing ran) it is sent once more
 * to the same node, looking at every reply:
 *
 *   MOVED  on a queued command: the slot's owner is remembered, the map
 *          refreshed, and the whole list sent again to the new owner;
 *   ASK    (the slot is migrating and a key is already, or not yet, on
 *          the target): ASKING then the whole list on the target; ASKING
 *          holds from MULTI to EXEC on Redis 7.0;
 *   TRYAGAIN (at the target, a transaction of several keys some of which
 *          are not there yet): nothing ran; sent again from the start
 *          NGX_HTTP_GUICHET_TRYAGAIN_MS later, a few times, then the
 *          handler gets the error: 503;
 *   a node that is down, a slot nobody serves (CLUSTERDOWN): the handler
 *          gets NULL or the error: 503 with Retry-After, never a wrong
 *          answer.
 *
 * A list follows at most NGX_HTTP_GUICHET_REDIRECTS redirections.  The
 * hiredis replies the handler gets are those of the node that ran the
 * list: a WAIT asked from the handler goes to that node's connection.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include "gch_cluster.h"
#include "ngx_http_guichet_redis.h"


#define NGX_HTTP_GUICHET_SLOTS       GCH_CLUSTER_SLOTS
#define NGX_HTTP_GUICHET_REDIRECTS   5
#define NGX_HTTP_GUICHET_RESEND      20     /* ms before trying again */
#define NGX_HTTP_GUICHET_RESENDS     10     /* node not up yet: tries */
#define NGX_HTTP_GUICHET_MAP_EVERY   1000   /* ms between map refreshes */
#define NGX_HTTP_GUICHET_MAP_FIRST   50     /* ms, until a map is known */
#define NGX_HTTP_GUICHET_MAP_MIN     100    /* ms between two refreshes */
#define NGX_HTTP_GUICHET_HELD        32     /* commands of a held MULTI */
#define NGX_HTTP_GUICHET_TRYAGAIN    10     /* TRYAGAIN: tries, */
#define NGX_HTTP_GUICHET_TRYAGAIN_MS 50     /* this far apart */


/* A command list on its way through the cluster. */
typedef struct {
    gch_cmds_t                      cmds;       /* copy of the array */
    ngx_http_guichet_redis_pt       handler;
    void                           *data;
    ngx_int_t                       slot;
    ngx_http_guichet_redis_node_t  *node;       /* where to, now */
    ngx_uint_t                      asking;
    ngx_uint_t                      quiet;
    ngx_uint_t                      redirects;
    ngx_uint_t                      resends;
    ngx_uint_t                      tryagain;
    ngx_uint_t                      peek;       /* look at every reply */
    ngx_uint_t                      owned;      /* frees cmds' data */
    ngx_event_t                     resend;
} ngx_http_guichet_route_t;


static ngx_http_guichet_redis_node_t  *ngx_http_guichet_single;
static ngx_http_guichet_redis_node_t **ngx_http_guichet_slots;
static ngx_uint_t                      ngx_http_guichet_map_known;
static ngx_uint_t                      ngx_http_guichet_map_refreshing;
static ngx_msec_t                      ngx_http_guichet_map_asked;
static ngx_http_guichet_redis_node_t  *ngx_http_guichet_map_from;
static ngx_event_t                     ngx_http_guichet_map_ev;
static ngx_uint_t                      ngx_http_guichet_cluster_exiting;
static void                          (*ngx_http_guichet_redirected)(
                                           ngx_uint_t ask);

/* redis_command()'s MULTI ... EXEC, held until EXEC in cluster mode */
static gch_cmd_t                       ngx_http_guichet_held[
                                           NGX_HTTP_GUICHET_HELD];
static ngx_uint_t                      ngx_http_guichet_nheld;
static ngx_uint_t                      ngx_http_guichet_holding;


static void ngx_http_guichet_route_go(ngx_http_guichet_route_t *rt);
static void ngx_http_guichet_map_refresh(void);


/* the allocator of the engine's slot map */

static void *
ngx_http_guichet_std_alloc(void *ctx, size_t size)
{
    return ngx_alloc(size, ngx_cycle->log);
}


static void
ngx_http_guichet_std_free(void *ctx, void *p)
{
    if (p) {
        ngx_free(p);
    }
}


static const gch_alloc_t  ngx_http_guichet_std = {
    ngx_http_guichet_std_alloc, ngx_http_guichet_std_free, NULL
};


static const char *
ngx_http_guichet_slot_error(ngx_int_t slot)
{
    switch (slot) {

    case GCH_CLUSTER_CROSS:
        return "spans slots";

    case GCH_CLUSTER_UNKNOWN:
        return "names a command whose keys are unknown";

    default:
        return "is malformed";
    }
}


/*
 * The slot of a list: of its first command with a key.  The others are
 * not looked at (a booking's step has some twenty): a town's keys share
 * its hash tag, and Redis refuses a transaction whose keys span slots
 * whole (CROSSSLOT, EXECABORT: nothing runs, the client gets 503).
 */
static ngx_int_t
ngx_http_guichet_list_slot(const gch_cmds_t *cmds)
{
    int     slot;
    size_t  i;

    for (i = 0; i < cmds->ncmds; i++) {
        slot = gch_cluster_cmd_slot(cmds->cmds[i].data, cmds->cmds[i].len);

        if (slot != GCH_CLUSTER_NOKEY) {
            return slot;
        }
    }

    return GCH_CLUSTER_NOKEY;
}


/* the map */

static ngx_http_guichet_redis_node_t *
ngx_http_guichet_any_node(void)
{
    ngx_http_guichet_redis_node_t  *node;

    for (node = ngx_http_guichet_redis_node_next(NULL); node;
         node = ngx_http_guichet_redis_node_next(node))
    {
        if (ngx_http_guichet_redis_node_up(node)) {
            return node;
        }
    }

    return NULL;
}


/*
 * hiredis parsed the reply; the engine's map parser (gch_cluster.h, unit
 * tested against recorded replies) reads RESP bytes: the reply written
 * back as RESP2.  n bytes are needed; out may be NULL (counting only).
 */
static size_t
ngx_http_guichet_resp(const redisReply *r, u_char *out)
{
    size_t   i, n;
    u_char   head[NGX_INT64_LEN + 4], *p;

    switch (r->type) {

    case REDIS_REPLY_ARRAY:
        p = ngx_sprintf(head, "*%uz\r\n", r->elements);
        break;

    case REDIS_REPLY_INTEGER:
        p = ngx_sprintf(head, ":%L\r\n", (int64_t) r->integer);
        break;

    case REDIS_REPLY_NIL:
        p = ngx_cpymem(head, "$-1\r\n", 5);
        break;

    case REDIS_REPLY_STRING:
        p = ngx_sprintf(head, "$%uz\r\n", r->len);
        break;

    default:                            /* status, error: a line */
        p = ngx_cpymem(head, r->type == REDIS_REPLY_ERROR ? "-" : "+", 1);
        break;
    }

    n = p - head;
    if (out) {
        (void) ngx_cpymem(out, head, n);
    }

    if (r->type == REDIS_REPLY_ARRAY) {
        for (i = 0; i < r->elements; i++) {
            n += ngx_http_guichet_resp(r->element[i], out ? out + n : NULL);
        }

        return n;
    }

    if (r->type == REDIS_REPLY_INTEGER || r->type == REDIS_REPLY_NIL) {
        return n;
    }

    if (out) {
        p = ngx_cpymem(out + n, r->str, r->len);
        *p++ = '\r';
        *p = '\n';
    }

    return n + r->len + 2;
}


/* CLUSTER SLOTS answered: every slot to its master's node. */
static void
ngx_http_guichet_map_done(redisReply *reply, void *data)
{
    int                              idx;
    u_char                          *resp, *p, host[NGX_SOCKADDR_STRLEN];
    size_t                           len, i, nnodes;
    ngx_int_t                        s, changed;
    ngx_str_t                       *asked;
    gch_error_t                      err;
    gch_cluster_map_t               *map;
    const gch_cluster_node_t        *cn;
    ngx_http_guichet_redis_node_t  **nodes;
    u_char                           addr[NGX_SOCKADDR_STRLEN + 8];

    ngx_http_guichet_map_refreshing = 0;

    if (ngx_http_guichet_cluster_exiting || reply == NULL
        || reply->type != REDIS_REPLY_ARRAY)
    {
        if (reply && reply->type == REDIS_REPLY_ERROR) {
            ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                          "guichet: redis cluster: CLUSTER SLOTS refused: %s",
                          reply->str);
        }

        return;
    }

    /* the host of the node asked: for an empty host in the reply */

    asked = ngx_http_guichet_redis_node_name(data);
    p = ngx_strlchr(asked->data, asked->data + asked->len, ':');
    len = p ? (size_t) (p - asked->data) : asked->len;
    len = ngx_min(len, sizeof(host) - 1);
    ngx_memcpy(host, asked->data, len);
    host[len] = '\0';

    len = ngx_http_guichet_resp(reply, NULL);

    resp = ngx_alloc(len, ngx_cycle->log);
    if (resp == NULL) {
        return;
    }

    (void) ngx_http_guichet_resp(reply, resp);

    ngx_memzero(&err, sizeof(gch_error_t));

    if (gch_cluster_map_parse(&map, (const char *) resp, len,
                              (const char *) host, &ngx_http_guichet_std,
                              &err)
        != GCH_OK)
    {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "guichet: redis cluster: slot map from \"%V\" "
                      "unreadable: %s", asked, err.message);
        ngx_free(resp);
        return;
    }

    ngx_free(resp);

    nnodes = gch_cluster_map_nnodes(map);

    nodes = ngx_calloc(nnodes * sizeof(ngx_http_guichet_redis_node_t *) + 1,
                       ngx_cycle->log);
    if (nodes == NULL) {
        gch_cluster_map_free(map);
        return;
    }

    changed = 0;

    for (s = 0; s < NGX_HTTP_GUICHET_SLOTS; s++) {
        idx = gch_cluster_map_master(map, (int) s);

        if (idx < 0) {
            /* nobody serves it (a master down, not yet replaced) */
            if (ngx_http_guichet_slots[s]) {
                ngx_http_guichet_slots[s] = NULL;
                changed++;
            }

            continue;
        }

        i = (size_t) idx;

        if (nodes[i] == NULL) {
            cn = gch_cluster_map_node(map, i);
            p = ngx_snprintf(addr, sizeof(addr), "%s:%d", cn->host,
                             cn->port);
            nodes[i] = ngx_http_guichet_redis_node(addr, p - addr);

            if (nodes[i] == NULL) {
                continue;
            }
        }

        if (ngx_http_guichet_slots[s] != nodes[i]) {
            ngx_http_guichet_slots[s] = nodes[i];
            changed++;
        }
    }

    ngx_free(nodes);
    gch_cluster_map_free(map);

    if (changed) {
        ngx_log_error(NGX_LOG_NOTICE, ngx_cycle->log, 0,
                      "guichet: redis cluster: slot map from \"%V\", %i "
                      "slots changed master", asked, changed);
    }

    ngx_http_guichet_map_known = 1;
}


/*
 * One CLUSTER SLOTS in flight per worker process, at most one every
 * NGX_HTTP_GUICHET_MAP_MIN ms: a rush of MOVED refreshes once.  The nodes
 * are asked in turn: a dead one is skipped.
 */
static void
ngx_http_guichet_map_refresh(void)
{
    gch_cmd_t                       cmd;
    gch_cmds_t                      cmds;
    ngx_http_guichet_redis_node_t  *node, *start;

    if (ngx_http_guichet_map_refreshing
        || ngx_http_guichet_cluster_exiting
        || (ngx_http_guichet_map_known
            && ngx_current_msec - ngx_http_guichet_map_asked
               < NGX_HTTP_GUICHET_MAP_MIN))
    {
        return;
    }

    start = ngx_http_guichet_map_from;
    node = start;

    do {
        node = ngx_http_guichet_redis_node_next(node);
        if (node == NULL) {
            node = ngx_http_guichet_redis_node_next(NULL);
        }

        if (node && ngx_http_guichet_redis_node_up(node)) {
            break;
        }

    } while (node && node != start);

    if (node == NULL || !ngx_http_guichet_redis_node_up(node)) {
        return;
    }

    ngx_http_guichet_map_from = node;

    cmd.data = "*2\r\n$7\r\nCLUSTER\r\n$5\r\nSLOTS\r\n";
    cmd.len = sizeof("*2\r\n$7\r\nCLUSTER\r\n$5\r\nSLOTS\r\n") - 1;
    cmds.cmds = &cmd;
    cmds.ncmds = 1;

    if (ngx_http_guichet_redis_node_send(node, &cmds, 0, 0, 1,
                                         ngx_http_guichet_map_done, node)
        == NGX_OK)
    {
        ngx_http_guichet_map_refreshing = 1;
        ngx_http_guichet_map_asked = ngx_current_msec;
    }
}


static void
ngx_http_guichet_map_handler(ngx_event_t *ev)
{
    if (ngx_http_guichet_cluster_exiting || ngx_exiting || ngx_terminate) {
        return;
    }

    ngx_http_guichet_map_refresh();

    ngx_add_timer(ev, ngx_http_guichet_map_known
                      ? NGX_HTTP_GUICHET_MAP_EVERY
                      : NGX_HTTP_GUICHET_MAP_FIRST);
}


/* routes */

static void
ngx_http_guichet_route_free(ngx_http_guichet_route_t *rt)
{
    size_t  i;

    if (rt->resend.timer_set) {
        ngx_del_timer(&rt->resend);
    }

    if (rt->owned) {
        for (i = 0; i < rt->cmds.ncmds; i++) {
            ngx_free((void *) rt->cmds.cmds[i].data);
        }
    }

    ngx_free(rt);
}


static void
ngx_http_guichet_route_end(ngx_http_guichet_route_t *rt, redisReply *reply)
{
    if (rt->handler) {
        rt->handler(reply, rt->data);
    }

    ngx_http_guichet_route_free(rt);
}


/*
 * "MOVED <slot> <host:port>" or "ASK <slot> <host:port>": the node named
 * (connected if new), and whether it is ASK.
 */
static ngx_http_guichet_redis_node_t *
ngx_http_guichet_redirect_node(ngx_str_t *err, ngx_uint_t *ask,
    ngx_http_guichet_redis_node_t *from)
{
    u_char                  addr[NGX_SOCKADDR_STRLEN + 8], *p, *colon;
    ngx_str_t              *name;
    gch_cluster_redirect_t  r;

    switch (gch_cluster_redirect((const char *) err->data, err->len, &r)) {

    case GCH_CLUSTER_MOVED:
        *ask = 0;
        break;

    case GCH_CLUSTER_ASK:
        *ask = 1;
        break;

    default:
        return NULL;
    }

    if (r.host[0] == '\0') {
        /* the node that answered, by its host */
        if (from == NULL) {
            return NULL;
        }

        name = ngx_http_guichet_redis_node_name(from);
        colon = ngx_strlchr(name->data, name->data + name->len, ':');
        if (colon == NULL) {
            return NULL;
        }

        p = ngx_snprintf(addr, sizeof(addr), "%*s:%d",
                         (size_t) (colon - name->data), name->data, r.port);

    } else {
        p = ngx_snprintf(addr, sizeof(addr), "%s:%d", r.host, r.port);
    }

    return ngx_http_guichet_redis_node(addr, p - addr);
}


static void
ngx_http_guichet_route_done(redisReply *reply, void *data)
{
    ngx_str_t                      *redirect, one;
    ngx_uint_t                      ask;
    ngx_http_guichet_route_t       *rt = data;
    ngx_http_guichet_redis_node_t  *node;

    redirect = ngx_http_guichet_redis_redirect();

    if (redirect == NULL && reply && reply->type == REDIS_REPLY_ERROR
        && (ngx_strncmp(reply->str, "MOVED ", 6) == 0
            || ngx_strncmp(reply->str, "ASK ", 4) == 0))
    {
        /* a single command's own reply */
        one.data = (u_char *) reply->str;
        one.len = reply->len;
        redirect = &one;
    }

    if (redirect == NULL && reply && reply->type == REDIS_REPLY_ERROR
        && ngx_strncmp(reply->str, "TRYAGAIN", 8) == 0
        && rt->tryagain < NGX_HTTP_GUICHET_TRYAGAIN
        && !ngx_http_guichet_cluster_exiting)
    {
        /*
         * The slot is being migrated and the list's keys are partly on
         * each side: nothing ran.  Again in a moment, from the start
         * (the slot's owner, ASK, the target), as Redis advises.
         */
        rt->tryagain++;
        rt->redirects = 0;
        rt->resends = 0;
        rt->asking = 0;
        rt->node = NULL;
        ngx_add_timer(&rt->resend, NGX_HTTP_GUICHET_TRYAGAIN_MS);
        return;
    }

    /*
     * EXECABORT: a queued command was refused, nothing ran.  Lists go
     * without looking at each reply (the common case costs nothing); a
     * list refused so is sent once more, to the same node, looking at
     * every reply this time: the refusal says where to (MOVED, ASK).
     */
    if (redirect == NULL && reply && reply->type == REDIS_REPLY_ERROR
        && ngx_strncmp(reply->str, "EXECABORT", 9) == 0 && !rt->peek
        && !ngx_http_guichet_cluster_exiting)
    {
        rt->peek = 1;
        rt->resends = 0;
        ngx_http_guichet_route_go(rt);
        return;
    }

    /*
     * Only a list that did not run is sent again: its last reply is the
     * error (EXECABORT after a MOVED or ASK of a queued command, or the
     * redirection of a single command).
     */
    if (redirect == NULL || ngx_http_guichet_cluster_exiting
        || reply == NULL || reply->type != REDIS_REPLY_ERROR
        || rt->redirects >= NGX_HTTP_GUICHET_REDIRECTS)
    {
        if (redirect) {
            ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                          "guichet: redis cluster: too many redirections, "
                          "last \"%V\"", redirect);
        }

        ngx_http_guichet_route_end(rt, reply);
        return;
    }

    /* nothing of the list ran (EXECABORT): send it all again */

    node = ngx_http_guichet_redirect_node(redirect, &ask, rt->node);
    if (node == NULL) {
        ngx_http_guichet_route_end(rt, reply);
        return;
    }

    if (ngx_http_guichet_redirected) {
        ngx_http_guichet_redirected(ask);
    }

    rt->redirects++;
    rt->resends = 0;
    rt->asking = ask;
    rt->node = node;

    if (!ask) {
        if (rt->slot >= 0) {
            ngx_http_guichet_slots[rt->slot] = node;
        }

        ngx_http_guichet_map_refresh();
    }

    ngx_http_guichet_route_go(rt);
}


static void
ngx_http_guichet_resend_handler(ngx_event_t *ev)
{
    ngx_http_guichet_route_go(ev->data);
}


/*
 * Sends rt to its node.  A node not up (new, reconnecting, dead) is tried
 * again a few times NGX_HTTP_GUICHET_RESEND ms apart (a failover's new
 * master is being connected), then the handler gets NULL: 503.
 */
static void
ngx_http_guichet_route_go(ngx_http_guichet_route_t *rt)
{
    if (rt->node == NULL && rt->slot >= 0) {
        rt->node = ngx_http_guichet_slots[rt->slot];
    }

    if (rt->node == NULL && rt->slot < 0) {
        rt->node = ngx_http_guichet_any_node();
    }

    if (rt->node
        && ngx_http_guichet_redis_node_send(rt->node, &rt->cmds, rt->asking,
                                            1, rt->quiet,
                                            ngx_http_guichet_route_done, rt)
           == NGX_OK)
    {
        return;
    }

    ngx_http_guichet_map_refresh();

    if (ngx_http_guichet_cluster_exiting
        || rt->resends++ >= NGX_HTTP_GUICHET_RESENDS)
    {
        ngx_http_guichet_route_end(rt, NULL);
        return;
    }

    /* the map may name another master by then */
    if (!rt->asking) {
        rt->node = NULL;
    }

    ngx_add_timer(&rt->resend, NGX_HTTP_GUICHET_RESEND);
}


static ngx_http_guichet_route_t *
ngx_http_guichet_route_new(const gch_cmds_t *cmds, ngx_uint_t copy_data,
    ngx_http_guichet_redis_pt handler, void *data)
{
    size_t                     i;
    gch_cmd_t                 *list;
    ngx_http_guichet_route_t  *rt;

    rt = ngx_calloc(sizeof(ngx_http_guichet_route_t)
                    + cmds->ncmds * sizeof(gch_cmd_t), ngx_cycle->log);
    if (rt == NULL) {
        return NULL;
    }

    list = (gch_cmd_t *) (rt + 1);

    for (i = 0; i < cmds->ncmds; i++) {
        list[i] = cmds->cmds[i];
    }

    rt->cmds.cmds = list;
    rt->cmds.ncmds = cmds->ncmds;
    rt->owned = copy_data;
    rt->handler = handler;
    rt->data = data;
    rt->slot = ngx_http_guichet_list_slot(cmds);
    rt->resend.handler = ngx_http_guichet_resend_handler;
    rt->resend.data = rt;
    rt->resend.log = ngx_cycle->log;
    rt->resend.cancelable = 1;

    return rt;
}


/* See ngx_http_guichet_redis.h. */
ngx_int_t
ngx_http_guichet_redis_send(const gch_cmds_t *cmds,
    ngx_http_guichet_redis_pt handler, void *data)
{
    ngx_http_guichet_route_t  *rt;

    if (ngx_http_guichet_single) {
        return ngx_http_guichet_redis_node_send(ngx_http_guichet_single,
                                                cmds, 0, 0, 0, handler,
                                                data);
    }

    if (cmds == NULL || cmds->ncmds == 0 || ngx_http_guichet_slots == NULL) {
        return NGX_DECLINED;
    }

    rt = ngx_http_guichet_route_new(cmds, 0, handler, data);
    if (rt == NULL) {
        return NGX_ERROR;
    }

    if (rt->slot < GCH_CLUSTER_NOKEY) {
        ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, 0,
                      "guichet: redis cluster: a command list %s, "
                      "not sent", ngx_http_guichet_slot_error(rt->slot));
        ngx_free(rt);
        return NGX_DECLINED;
    }

    rt->node = rt->slot >= 0 ? ngx_http_guichet_slots[rt->slot]
                             : ngx_http_guichet_any_node();

    if (rt->node == NULL
        || ngx_http_guichet_redis_node_send(rt->node, &rt->cmds, 0, 0, 0,
                                            ngx_http_guichet_route_done, rt)
           != NGX_OK)
    {
        /* a down master: 503 now, a fresher map for the next request */
        ngx_http_guichet_map_refresh();
        ngx_free(rt);
        return NGX_DECLINED;
    }

    return NGX_OK;
}


static void
ngx_http_guichet_held_free(void)
{
    ngx_uint_t  i;

    for (i = 0; i < ngx_http_guichet_nheld; i++) {
        ngx_free((void *) ngx_http_guichet_held[i].data);
    }

    ngx_http_guichet_nheld = 0;
    ngx_http_guichet_holding = 0;
}


/*
 * See ngx_http_guichet_redis.h.  One Redis: on its first connection that
 * is up, so that commands sent in a row in one turn of the event loop
 * (MULTI ... EXEC) go out together, in order.  Cluster: a MULTI is held
 * until its EXEC and the whole goes as one routed list.
 */
ngx_int_t
ngx_http_guichet_redis_command(ngx_http_guichet_redis_pt handler, void *data,
    const char *fmt, ...)
{
    int                        len;
    char                      *cmd;
    va_list                    args;
    ngx_int_t                  rc;
    gch_cmd_t                  one;
    gch_cmds_t                 cmds;
    ngx_http_guichet_route_t  *rt;

    va_start(args, fmt);
    len = redisvFormatCommand(&cmd, fmt, args);
    va_end(args);

    if (len < 0) {
        return NGX_ERROR;
    }

    one.data = cmd;
    one.len = (size_t) len;

    if (ngx_http_guichet_single == NULL) {

        if (ngx_strcmp(fmt, "MULTI") == 0) {
            ngx_http_guichet_held_free();
            ngx_http_guichet_holding = 1;
        }

        if (ngx_http_guichet_holding) {
            if (ngx_http_guichet_nheld == NGX_HTTP_GUICHET_HELD) {
                ngx_free(cmd);
                ngx_http_guichet_held_free();
                return NGX_ERROR;
            }

            ngx_http_guichet_held[ngx_http_guichet_nheld++] = one;

            if (ngx_strcmp(fmt, "EXEC") != 0) {
                return NGX_OK;
            }

            cmds.cmds = ngx_http_guichet_held;
            cmds.ncmds = ngx_http_guichet_nheld;

        } else {
            cmds.cmds = &one;
            cmds.ncmds = 1;
        }

    } else {
        cmds.cmds = &one;
        cmds.ncmds = 1;
    }

    rt = ngx_http_guichet_route_new(&cmds, 1, handler, data);

    /* the route owns the commands now */
    ngx_http_guichet_nheld = 0;
    ngx_http_guichet_holding = 0;

    if (rt == NULL) {
        for (len = 0; len < (int) cmds.ncmds; len++) {
            ngx_free((void *) cmds.cmds[len].data);
        }

        return NGX_ERROR;
    }

    if (ngx_http_guichet_single) {
        rc = ngx_http_guichet_redis_node_send(ngx_http_guichet_single,
                                              &rt->cmds, 0, 0, 1,
                                              ngx_http_guichet_route_done,
                                              rt);

    } else if (rt->slot < GCH_CLUSTER_NOKEY) {
        ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, 0,
                      "guichet: redis cluster: a command %s, not sent",
                      ngx_http_guichet_slot_error(rt->slot));
        rc = NGX_DECLINED;

    } else {
        rt->quiet = 1;
        rt->node = rt->slot >= 0 ? ngx_http_guichet_slots[rt->slot]
                                 : ngx_http_guichet_any_node();
        rc = rt->node
             ? ngx_http_guichet_redis_node_send(rt->node, &rt->cmds, 0, 0, 1,
                                                ngx_http_guichet_route_done,
                                                rt)
             : NGX_DECLINED;

        if (rc != NGX_OK) {
            ngx_http_guichet_map_refresh();
        }
    }

    if (rc != NGX_OK) {
        rt->handler = NULL;
        ngx_http_guichet_route_free(rt);
    }

    return rc;
}


/* Called once per worker process: opens the pool(s). */
ngx_int_t
ngx_http_guichet_redis_init(ngx_cycle_t *cycle,
    const ngx_http_guichet_redis_conf_t *conf)
{
    ngx_str_t   *seeds;
    ngx_uint_t   i;

    ngx_http_guichet_redis_setup(conf);
    ngx_http_guichet_redirected = conf->redirected;
    ngx_http_guichet_cluster_exiting = 0;
    ngx_http_guichet_single = NULL;
    ngx_http_guichet_slots = NULL;
    ngx_http_guichet_map_known = 0;
    ngx_http_guichet_map_refreshing = 0;
    ngx_http_guichet_map_from = NULL;
    ngx_http_guichet_nheld = 0;
    ngx_http_guichet_holding = 0;

    if (conf->cluster == NULL) {
        ngx_http_guichet_single = ngx_http_guichet_redis_node(
                                      conf->address.data, conf->address.len);

        return ngx_http_guichet_single ? NGX_OK : NGX_ERROR;
    }

    ngx_http_guichet_slots = ngx_calloc(NGX_HTTP_GUICHET_SLOTS
                                 * sizeof(ngx_http_guichet_redis_node_t *),
                                 cycle->log);
    if (ngx_http_guichet_slots == NULL) {
        return NGX_ERROR;
    }

    seeds = conf->cluster->elts;

    for (i = 0; i < conf->cluster->nelts; i++) {
        if (ngx_http_guichet_redis_node(seeds[i].data, seeds[i].len)
            == NULL)
        {
            return NGX_ERROR;
        }
    }

    ngx_http_guichet_map_ev.handler = ngx_http_guichet_map_handler;
    ngx_http_guichet_map_ev.log = cycle->log;
    ngx_http_guichet_map_ev.cancelable = 1;
    ngx_add_timer(&ngx_http_guichet_map_ev, NGX_HTTP_GUICHET_MAP_FIRST);

    return NGX_OK;
}


void
ngx_http_guichet_redis_exit(ngx_cycle_t *cycle)
{
    ngx_http_guichet_cluster_exiting = 1;

    if (ngx_http_guichet_map_ev.timer_set) {
        ngx_del_timer(&ngx_http_guichet_map_ev);
    }

    ngx_http_guichet_held_free();
    ngx_http_guichet_redis_close();

    if (ngx_http_guichet_slots) {
        ngx_free(ngx_http_guichet_slots);
        ngx_http_guichet_slots = NULL;
    }
}
