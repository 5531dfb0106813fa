/*
 * ngx_http_guichet_redis.h -- hiredis async in nginx's event loop (the
 * adapter, ngx_http_guichet_redis.c).
 *
 * The adapter knows nothing of Guichet: it keeps a pool of connections,
 * sends lists of formatted commands, and tells its user what happened
 * through hooks.  It includes nothing of the module; the module includes
 * it.
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
    ngx_uint_t                pool;             /* connections */

    /* hooks, each may be NULL; never called for redis_command() */
    void                    (*sent)(void);      /* a list went out */
    void                    (*replied)(redisReply *reply);
                                                /* before its handler */
    void                    (*reconnecting)(void);
} ngx_http_guichet_redis_conf_t;


/* Once per worker process: opens the pool (conf is copied). */
ngx_int_t ngx_http_guichet_redis_init(ngx_cycle_t *cycle,
    const ngx_http_guichet_redis_conf_t *conf);
void ngx_http_guichet_redis_exit(ngx_cycle_t *cycle);

/*
 * The commands of one list (e.g. one MULTI ... EXEC) in a row on one
 * pooled connection.  NGX_OK, or NGX_DECLINED when no connection is up
 * (the caller answers 503).
 */
ngx_int_t ngx_http_guichet_redis_send(const gch_cmds_t *cmds,
    ngx_http_guichet_redis_pt handler, void *data);

/* One command (hiredis's format), without the hooks; handler may be NULL. */
ngx_int_t ngx_http_guichet_redis_command(ngx_http_guichet_redis_pt handler,
    void *data, const char *fmt, ...);

#endif /* NGX_HTTP_GUICHET_REDIS_H */
