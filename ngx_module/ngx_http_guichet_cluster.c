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
 * saga step) goes to the master of the slot of its keys: they must share
 * one (a town's keys carry the town's hash tag), a list that spans slots
 * is never sent.  The adapter peeks at each reply of the list:
 *
 *   MOVED  on a queued command makes EXEC fail (EXECABORT), nothing ran:
 *          the slot's owner is remembered, the map refreshed, and the
 *          whole list sent again to the new owner;
 *   ASK    (the slot is migrating and a key is already, or not yet, on
 *          the target): ASKING then the whole list on the target; ASKING
 *          holds from MULTI to EXEC.  A transaction of several keys some
 *          of which the target does not hold yet gets TRYAGAIN there:
 *          the step's handler sees an error reply, the client 503;
 *   a node that is down, a slot nobody serves (CLUSTERDOWN), TRYAGAIN:
 *          the handler gets NULL or the error: 503 with Retry-After,
 *          never a wrong answer.
 *
 * A list follows at most NGX_HTTP_GUICHET_REDIRECTS redirections.  The
 * hiredis replies the handler gets are those of the node that ran the
 * list: a WAIT asked from the handler goes to that node's connection.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include "ngx_http_guichet_redis.h"


#define NGX_HTTP_GUICHET_SLOTS       16384
#define NGX_HTTP_GUICHET_REDIRECTS   5
#define NGX_HTTP_GUICHET_RESEND      20     /* ms before trying again */
#define NGX_HTTP_GUICHET_RESENDS     10     /* node not up yet: tries */
#define NGX_HTTP_GUICHET_MAP_EVERY   1000   /* ms between map refreshes */
#define NGX_HTTP_GUICHET_MAP_FIRST   50     /* ms, until a map is known */
#define NGX_HTTP_GUICHET_MAP_MIN     100    /* ms between two refreshes */
#define NGX_HTTP_GUICHET_HELD        32     /* commands of a held MULTI */


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

/* redis_command()'s MULTI ... EXEC, held until EXEC in cluster mode */
static gch_cmd_t                       ngx_http_guichet_held[
                                           NGX_HTTP_GUICHET_HELD];
static ngx_uint_t                      ngx_http_guichet_nheld;
static ngx_uint_t                      ngx_http_guichet_holding;


static void ngx_http_guichet_route_go(ngx_http_guichet_route_t *rt);
static void ngx_http_guichet_map_refresh(void);


/* slots: CRC16 (XMODEM) of the key's hash tag, as Redis Cluster */

static uint16_t
ngx_http_guichet_crc16(const u_char *p, size_t len)
{
    size_t    i;
    uint16_t  crc;
    int       k;

    crc = 0;

    for (i = 0; i < len; i++) {
        crc ^= (uint16_t) p[i] << 8;

        for (k = 0; k < 8; k++) {
            crc = (crc & 0x8000) ? (uint16_t) ((crc << 1) ^ 0x1021)
                                 : (uint16_t) (crc << 1);
        }
    }

    return crc;
}


static ngx_int_t
ngx_http_guichet_key_slot(const u_char *key, size_t len)
{
    const u_char  *open, *close;

    open = ngx_strlchr((u_char *) key, (u_char *) key + len, '{');

    if (open) {
        close = ngx_strlchr((u_char *) open + 1, (u_char *) key + len, '}');

        if (close && close > open + 1) {
            key = open + 1;
            len = close - open - 1;
        }
    }

    return ngx_http_guichet_crc16(key, len) & (NGX_HTTP_GUICHET_SLOTS - 1);
}


/* The next bulk string of a formatted command ("$<len>\r\n<data>\r\n"). */
static ngx_int_t
ngx_http_guichet_bulk(const u_char **p, const u_char *end, ngx_str_t *arg)
{
    size_t         n;
    const u_char  *q;

    q = *p;

    if (q >= end || *q != '$') {
        return NGX_ERROR;
    }

    for (n = 0, q++; q < end && *q >= '0' && *q <= '9'; q++) {
        n = n * 10 + (*q - '0');
    }

    if (end - q < 2 || (size_t) (end - q - 2) < n + 2) {
        return NGX_ERROR;
    }

    arg->data = (u_char *) q + 2;
    arg->len = n;
    *p = q + 2 + n + 2;

    return NGX_OK;
}


/*
 * The slot of one formatted command's key (its first argument, or the
 * first key of EVAL/EVALSHA/FCALL), -1 for a command without a key.
 */
static ngx_int_t
ngx_http_guichet_cmd_slot(const gch_cmd_t *cmd)
{
    ngx_str_t      name, arg;
    ngx_uint_t     argc, i, skip;
    const u_char  *p, *end;

    static const char  *keyless[] = {
        "MULTI", "EXEC", "DISCARD", "WAIT", "PING", "AUTH", "ASKING",
        "CLUSTER", "INFO", "SELECT", "CLIENT", "COMMAND", "CONFIG",
        "SCRIPT", "HELLO", "READONLY", "READWRITE", NULL
    };

    p = (const u_char *) cmd->data;
    end = p + cmd->len;

    if (p >= end || *p != '*') {
        return -1;
    }

    for (argc = 0, p++; p < end && *p >= '0' && *p <= '9'; p++) {
        argc = argc * 10 + (*p - '0');
    }

    p += 2;

    if (argc < 2 || ngx_http_guichet_bulk(&p, end, &name) != NGX_OK) {
        return -1;
    }

    for (i = 0; keyless[i]; i++) {
        if (name.len == ngx_strlen(keyless[i])
            && ngx_strncasecmp(name.data, (u_char *) keyless[i], name.len)
               == 0)
        {
            return -1;
        }
    }

    skip = 0;

    if ((name.len == 4 && ngx_strncasecmp(name.data, (u_char *) "EVAL", 4)
                          == 0)
        || (name.len == 7
            && ngx_strncasecmp(name.data, (u_char *) "EVALSHA", 7) == 0)
        || (name.len == 5
            && ngx_strncasecmp(name.data, (u_char *) "FCALL", 5) == 0))
    {
        skip = 2;                       /* script, numkeys */
    }

    for (i = 0; i <= skip; i++) {
        if (ngx_http_guichet_bulk(&p, end, &arg) != NGX_OK) {
            return -1;
        }
    }

    if (skip && argc < 4) {
        return -1;
    }

    return ngx_http_guichet_key_slot(arg.data, arg.len);
}


/*
 * The one slot of a list's keys; -1 without keys, -2 when they span
 * slots (a programming error: the list is not sent).
 */
static ngx_int_t
ngx_http_guichet_cmds_slot(const gch_cmds_t *cmds)
{
    size_t     i;
    ngx_int_t  slot, s;

    slot = -1;

    for (i = 0; i < cmds->ncmds; i++) {
        s = ngx_http_guichet_cmd_slot(&cmds->cmds[i]);

        if (s < 0) {
            continue;
        }

        if (slot >= 0 && s != slot) {
            return -2;
        }

        slot = s;
    }

    return slot;
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
 * CLUSTER SLOTS: [[start, end, [host, port, id], replica...], ...]; an
 * empty host is the node that answered.
 */
static void
ngx_http_guichet_map_done(redisReply *reply, void *data)
{
    u_char                          addr[NGX_SOCKADDR_STRLEN + 8], *p;
    size_t                          i;
    ngx_int_t                       s, start, end, changed;
    ngx_str_t                      *asked;
    redisReply                     *e, *m;
    ngx_http_guichet_redis_node_t  *node;

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

    asked = data ? ngx_http_guichet_redis_node_name(data) : NULL;
    changed = 0;

    for (i = 0; i < reply->elements; i++) {
        e = reply->element[i];

        if (e->type != REDIS_REPLY_ARRAY || e->elements < 3
            || e->element[0]->type != REDIS_REPLY_INTEGER
            || e->element[1]->type != REDIS_REPLY_INTEGER
            || e->element[2]->type != REDIS_REPLY_ARRAY
            || e->element[2]->elements < 2)
        {
            continue;
        }

        start = (ngx_int_t) e->element[0]->integer;
        end = (ngx_int_t) e->element[1]->integer;
        m = e->element[2];

        if (start < 0 || end >= NGX_HTTP_GUICHET_SLOTS || start > end
            || m->element[0]->type != REDIS_REPLY_STRING
            || m->element[1]->type != REDIS_REPLY_INTEGER
            || m->element[0]->len > NGX_SOCKADDR_STRLEN - 8)
        {
            continue;
        }

        if (m->element[0]->len == 0 || m->element[0]->str[0] == '?') {
            /* "" or "?": the node that answered, by its host */
            if (asked == NULL) {
                continue;
            }

            p = ngx_strlchr(asked->data, asked->data + asked->len, ':');
            if (p == NULL) {
                continue;
            }

            p = ngx_cpymem(addr, asked->data, p - asked->data);

        } else {
            p = ngx_cpymem(addr, m->element[0]->str, m->element[0]->len);
        }

        p = ngx_sprintf(p, ":%i", (ngx_int_t) m->element[1]->integer);

        node = ngx_http_guichet_redis_node(addr, p - addr);
        if (node == NULL) {
            continue;
        }

        for (s = start; s <= end; s++) {
            if (ngx_http_guichet_slots[s] != node) {
                ngx_http_guichet_slots[s] = node;
                changed++;
            }
        }
    }

    if (changed) {
        ngx_log_error(NGX_LOG_INFO, ngx_cycle->log, 0,
                      "guichet: redis cluster: slot map learned, %i slots "
                      "changed master", changed);
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
 * "MOVED <slot> <host:port>" or "ASK <slot> <host:port>": the node named,
 * connected if new.
 */
static ngx_http_guichet_redis_node_t *
ngx_http_guichet_redirect_node(ngx_str_t *err, ngx_uint_t *ask)
{
    u_char  *p, *end;

    end = err->data + err->len;
    *ask = (err->data[0] == 'A');

    p = ngx_strlchr(err->data, end, ' ');
    if (p == NULL) {
        return NULL;
    }

    p = ngx_strlchr(p + 1, end, ' ');
    if (p == NULL || p + 1 >= end) {
        return NULL;
    }

    return ngx_http_guichet_redis_node(p + 1, end - p - 1);
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

    if (redirect == NULL || ngx_http_guichet_cluster_exiting
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

    node = ngx_http_guichet_redirect_node(redirect, &ask);
    if (node == NULL) {
        ngx_http_guichet_route_end(rt, reply);
        return;
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
    rt->slot = ngx_http_guichet_cmds_slot(cmds);
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

    if (rt->slot == -2) {
        ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, 0,
                      "guichet: redis cluster: a command list spans "
                      "slots, not sent");
        ngx_free(rt);
        return NGX_DECLINED;
    }

    rt->node = rt->slot >= 0 ? ngx_http_guichet_slots[rt->slot]
                             : ngx_http_guichet_any_node();

    if (rt->node == NULL
        || ngx_http_guichet_redis_node_send(rt->node, &rt->cmds, 0, 1, 0,
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

    } else if (rt->slot == -2) {
        ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, 0,
                      "guichet: redis cluster: a transaction spans slots, "
                      "not sent");
        rc = NGX_DECLINED;

    } else {
        rt->quiet = 1;
        rt->node = rt->slot >= 0 ? ngx_http_guichet_slots[rt->slot]
                                 : ngx_http_guichet_any_node();
        rc = rt->node
             ? ngx_http_guichet_redis_node_send(rt->node, &rt->cmds, 0, 1, 1,
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
