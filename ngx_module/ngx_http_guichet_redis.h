/*
 * ngx_http_guichet_redis.h -- hiredis async in nginx's event loop (the
 * adapter, ngx_http_guichet_redis.c) and the routing above it
 * (ngx_http_guichet_cluster.c: one Redis, or a Redis Cluster).
 *
 * The adapter knows nothing of Guichet: it keeps a pool of connections per
 * Redis node, sends lists of formatted commands, and tells its user what
 * happened through hooks.  It includes nothing of the module; the module
 * includes it.
 */

#ifndef NGX_HTTP_GUICHET_REDIS_H
#define NGX_HTTP_GUICHET_REDIS_H

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include <hiredis/hiredis.h>
#include <hiredis/async.h>

#include "gch.h"                         /* gch_cmds_t, a command list */


/*
 * The handler of a command list: called exactly once with the reply to
 * the last command (EXEC), or with NULL if the connection failed first.
 * The reply is freed by hiredis after handler returns.
 */
typedef void (*ngx_http_guichet_redis_pt)(redisReply *reply, void *data);


typedef struct {
    ngx_str_t                 address;          /* host:port or unix:path */
    ngx_str_t                 password;
    ngx_uint_t                pool;             /* connections per node */
    ngx_array_t              *cluster;          /* seeds (ngx_str_t), or
                                                   NULL: one Redis */

    /* hooks, each may be NULL; never called for redis_command() */
    void                    (*sent)(void);      /* a list went out */
    void                    (*replied)(redisReply *reply);
                                                /* before its handler */
    void                    (*reconnecting)(void);
    void                    (*redirected)(ngx_uint_t ask);
                                                /* MOVED (0) or ASK (1) */
} ngx_http_guichet_redis_conf_t;


/* the adapter (_redis.c): nodes, each with its pool of connections */

typedef struct ngx_http_guichet_redis_node_s  ngx_http_guichet_redis_node_t;

/* Once per worker process (conf is copied); opens no connection. */
void ngx_http_guichet_redis_setup(const ngx_http_guichet_redis_conf_t *conf);
void ngx_http_guichet_redis_close(void);

/*
 * The node of that address, connecting its pool if it is new; NULL when
 * memory is short.  Nodes live until the process exits.
 */
ngx_http_guichet_redis_node_t *ngx_http_guichet_redis_node(u_char *addr,
    size_t len);
ngx_str_t *ngx_http_guichet_redis_node_name(
    ngx_http_guichet_redis_node_t *node);
ngx_uint_t ngx_http_guichet_redis_node_up(ngx_http_guichet_redis_node_t *node);
/* The next node after node (NULL: the first), NULL after the last. */
ngx_http_guichet_redis_node_t *ngx_http_guichet_redis_node_next(
    ngx_http_guichet_redis_node_t *node);

/*
 * The commands of one list (e.g. one MULTI ... EXEC) in a row on one
 * pooled connection of node (quiet: the first up, and no hooks), after
 * ASKING if asking.  NGX_OK (handler is then called exactly once), or
 * NGX_DECLINED when no connection of the node is up.  With peek, every
 * reply of the list is looked at: the first redirection (MOVED, ASK)
 * among them is told by redis_redirect().
 */
ngx_int_t ngx_http_guichet_redis_node_send(ngx_http_guichet_redis_node_t *node,
    const gch_cmds_t *cmds, ngx_uint_t asking, ngx_uint_t peek,
    ngx_uint_t quiet, ngx_http_guichet_redis_pt handler, void *data);

/*
 * Inside a handler: the first MOVED or ASK error among the list's replies
 * ("MOVED 3999 127.0.0.1:7001"), or NULL.
 */
ngx_str_t *ngx_http_guichet_redis_redirect(void);

/*
 * Inside a handler: WAIT numreplicas timeout on the connection that just
 * answered, after what it executed; handler gets WAIT's reply (the
 * number of replicas that acknowledged), or NULL when the connection
 * failed.  Answers arriving together share one WAIT.  NGX_DECLINED
 * outside a handler or when the connection is going away.
 */
ngx_int_t ngx_http_guichet_redis_wait(ngx_uint_t numreplicas,
    ngx_msec_t timeout, ngx_http_guichet_redis_pt handler, void *data);


/* the routing (_cluster.c): what the module calls */

/* Once per worker process: the node, or the cluster's seeds. */
ngx_int_t ngx_http_guichet_redis_init(ngx_cycle_t *cycle,
    const ngx_http_guichet_redis_conf_t *conf);
void ngx_http_guichet_redis_exit(ngx_cycle_t *cycle);

/*
 * The commands of one list (e.g. one MULTI ... EXEC) in a row on one
 * pooled connection: in cluster mode, of the master of the slot of the
 * list's keys (which must all share one slot).  NGX_OK, or NGX_DECLINED
 * when no connection is up (the caller answers 503).  A MOVED or ASK
 * refusal of the list is followed (the whole list is sent again where
 * the cluster says) before handler is called.
 */
ngx_int_t ngx_http_guichet_redis_send(const gch_cmds_t *cmds,
    ngx_http_guichet_redis_pt handler, void *data);

/*
 * One command (hiredis's format), without the hooks; handler may be NULL.
 * In cluster mode it goes to the master of its key's slot.
 */
ngx_int_t ngx_http_guichet_redis_command(ngx_http_guichet_redis_pt handler,
    void *data, const char *fmt, ...);

#endif /* NGX_HTTP_GUICHET_REDIS_H */
