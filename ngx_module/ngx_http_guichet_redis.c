/*
 * ngx_http_guichet_redis.c -- hiredis async connections inside nginx's
 * event loop: the adapter, in the spirit of hiredis's adapters/libevent.h.
 * It knows nothing of Guichet: what it is told to send, it sends, and it
 * tells its user through the hooks of ngx_http_guichet_redis_conf_t
 * (round trips, replies, reconnections: the module's metrics).
 *
 * hiredis 0.14 ships no nginx adapter and no async timeouts, so this file
 * is the adapter: each connection's socket gets an nginx connection whose
 * read and write events (level-triggered) call redisAsyncHandleRead/Write;
 * hiredis asks for events through the ev hooks below.  Commands queued
 * while the connection is up are written by a posted event at the end of
 * the event loop's turn (one write for all of them, no epoll_ctl); the
 * write event is armed only for connecting and for a socket buffer that is
 * full.  Each worker keeps guichet_redis_pool connections, reconnects with
 * a doubling back-off.  Deadlines of requests are nginx timers of their
 * operations (_op.c): a reply that arrives late is still consumed here and
 * handed to its operation, never to a freed request.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include "ngx_http_guichet_redis.h"


#define NGX_HTTP_GUICHET_BACKOFF_MIN  100
#define NGX_HTTP_GUICHET_BACKOFF_MAX  2000


typedef struct {
    redisAsyncContext          *ac;
    ngx_connection_t           *conn;
    ngx_event_t                 reconnect;
    ngx_event_t                 flush;
    ngx_msec_t                  backoff;
    ngx_uint_t                  connected;
    ngx_uint_t                  writing;
    ngx_uint_t                  index;
} ngx_http_guichet_redis_conn_t;


typedef struct {
    ngx_http_guichet_redis_pt   handler;
    void                       *data;
    ngx_uint_t                  quiet;      /* no hooks */
} ngx_http_guichet_redis_op_t;


static ngx_http_guichet_redis_conn_t  *ngx_http_guichet_conns;
static ngx_uint_t                      ngx_http_guichet_nconns;
static ngx_uint_t                      ngx_http_guichet_next;
static ngx_uint_t                      ngx_http_guichet_exiting;
static ngx_http_guichet_redis_conf_t   ngx_http_guichet_redis_conf;


static void ngx_http_guichet_redis_connect(ngx_http_guichet_redis_conn_t *rc);


static void
ngx_http_guichet_redis_read(ngx_event_t *ev)
{
    ngx_connection_t               *c = ev->data;
    ngx_http_guichet_redis_conn_t  *rc = c->data;

    if (rc->ac) {
        redisAsyncHandleRead(rc->ac);
    }
}


static void
ngx_http_guichet_redis_handle_write(ngx_http_guichet_redis_conn_t *rc)
{
    if (rc->ac) {
        rc->writing = 1;
        redisAsyncHandleWrite(rc->ac);
        rc->writing = 0;
    }
}


static void
ngx_http_guichet_redis_write(ngx_event_t *ev)
{
    ngx_connection_t  *c = ev->data;

    ngx_http_guichet_redis_handle_write(c->data);
}


static void
ngx_http_guichet_redis_flush(ngx_event_t *ev)
{
    ngx_http_guichet_redis_handle_write(ev->data);
}


static void
ngx_http_guichet_ev_add_read(void *privdata)
{
    ngx_http_guichet_redis_conn_t  *rc = privdata;

    if (rc->conn && !rc->conn->read->active) {
        (void) ngx_add_event(rc->conn->read, NGX_READ_EVENT,
                             NGX_LEVEL_EVENT);
    }
}


static void
ngx_http_guichet_ev_del_read(void *privdata)
{
    ngx_http_guichet_redis_conn_t  *rc = privdata;

    if (rc->conn && rc->conn->read->active) {
        (void) ngx_del_event(rc->conn->read, NGX_READ_EVENT, 0);
    }
}


/*
 * hiredis asks for writability after queueing a command, and again from
 * redisAsyncHandleWrite when the socket took only part of its buffer.  The
 * first, once connected, posts the flush (the commands of every request of
 * this turn go out in one write); connecting and a partial write arm the
 * write event.
 */
static void
ngx_http_guichet_ev_add_write(void *privdata)
{
    ngx_http_guichet_redis_conn_t  *rc = privdata;

    if (rc->conn == NULL) {
        return;
    }

    if (rc->connected && !rc->writing) {
        if (!rc->flush.posted && !rc->conn->write->active) {
            ngx_post_event(&rc->flush, &ngx_posted_events);
        }

        return;
    }

    if (!rc->conn->write->active) {
        (void) ngx_add_event(rc->conn->write, NGX_WRITE_EVENT,
                             NGX_LEVEL_EVENT);
    }
}


/* hiredis's buffer is empty, or the context goes away */
static void
ngx_http_guichet_ev_del_write(void *privdata)
{
    ngx_http_guichet_redis_conn_t  *rc = privdata;

    if (rc->flush.posted) {
        ngx_delete_posted_event(&rc->flush);
    }

    if (rc->conn && rc->conn->write->active) {
        (void) ngx_del_event(rc->conn->write, NGX_WRITE_EVENT, 0);
    }
}


/* hiredis frees its context: release the nginx connection (not the fd). */
static void
ngx_http_guichet_ev_cleanup(void *privdata)
{
    ngx_http_guichet_redis_conn_t  *rc = privdata;
    ngx_connection_t               *c;

    c = rc->conn;
    if (c == NULL) {
        return;
    }

    ngx_http_guichet_ev_del_read(rc);
    ngx_http_guichet_ev_del_write(rc);

    if (c->read->timer_set) {
        ngx_del_timer(c->read);
    }

    if (c->write->timer_set) {
        ngx_del_timer(c->write);
    }

    ngx_free_connection(c);
    c->fd = (ngx_socket_t) -1;

    rc->conn = NULL;
    rc->ac = NULL;
    rc->connected = 0;
}


static void
ngx_http_guichet_schedule_reconnect(ngx_http_guichet_redis_conn_t *rc)
{
    if (ngx_http_guichet_exiting || ngx_exiting || ngx_terminate) {
        return;
    }

    if (ngx_http_guichet_redis_conf.reconnecting) {
        ngx_http_guichet_redis_conf.reconnecting();
    }

    if (!rc->reconnect.timer_set) {
        ngx_add_timer(&rc->reconnect, rc->backoff);
    }

    rc->backoff = ngx_min(rc->backoff * 2, NGX_HTTP_GUICHET_BACKOFF_MAX);
}


static void
ngx_http_guichet_on_connect(const redisAsyncContext *ac, int status)
{
    ngx_http_guichet_redis_conn_t  *rc = ac->data;

    if (status != REDIS_OK) {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "guichet: connect() to redis \"%V\" failed: %s",
                      &ngx_http_guichet_redis_conf.address, ac->errstr);
        rc->ac = NULL;
        rc->connected = 0;
        ngx_http_guichet_schedule_reconnect(rc);
        return;
    }

    rc->connected = 1;
    rc->backoff = NGX_HTTP_GUICHET_BACKOFF_MIN;

    ngx_log_error(NGX_LOG_INFO, ngx_cycle->log, 0,
                  "guichet: connected to redis \"%V\" (#%ui)",
                  &ngx_http_guichet_redis_conf.address, rc->index);
}


static void
ngx_http_guichet_on_disconnect(const redisAsyncContext *ac, int status)
{
    ngx_http_guichet_redis_conn_t  *rc = ac->data;

    rc->ac = NULL;
    rc->connected = 0;

    if (status != REDIS_OK) {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "guichet: redis connection #%ui lost: %s",
                      rc->index, ac->errstr);
    }

    ngx_http_guichet_schedule_reconnect(rc);
}


static void
ngx_http_guichet_reconnect_handler(ngx_event_t *ev)
{
    ngx_http_guichet_redis_connect(ev->data);
}


/*
 * A refused AUTH (a wrong guichet_redis_password, or none configured on
 * the Redis side) is logged: every command of that connection is then
 * refused (NOAUTH), and requests answer 503 unavailable.
 */
static void
ngx_http_guichet_auth_done(redisAsyncContext *ac, void *reply,
    void *privdata)
{
    redisReply  *r = reply;

    if (r != NULL && r->type == REDIS_REPLY_ERROR) {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "guichet: redis refused guichet_redis_password: %s",
                      r->str);
    }
}


static void
ngx_http_guichet_redis_connect(ngx_http_guichet_redis_conn_t *rc)
{
    u_char                         *p, *host;
    ngx_int_t                       port;
    redisAsyncContext              *ac;
    ngx_connection_t               *c;
    ngx_http_guichet_redis_conf_t  *conf;

    conf = &ngx_http_guichet_redis_conf;

    /* NUL-terminated copies: hiredis wants C strings */

    host = ngx_alloc(conf->address.len + 1, ngx_cycle->log);
    if (host == NULL) {
        ngx_http_guichet_schedule_reconnect(rc);
        return;
    }

    ngx_memcpy(host, conf->address.data, conf->address.len);
    host[conf->address.len] = '\0';

    if (ngx_strncmp(host, "unix:", 5) == 0) {
        ac = redisAsyncConnectUnix((char *) host + 5);

    } else {
        p = (u_char *) strrchr((char *) host, ':');
        port = 6379;

        if (p) {
            *p = '\0';
            port = ngx_atoi(p + 1, ngx_strlen(p + 1));
        }

        ac = redisAsyncConnect((char *) host, (int) port);
    }

    ngx_free(host);

    if (ac == NULL || ac->err) {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "guichet: connect() to redis \"%V\" failed: %s",
                      &conf->address, ac ? ac->errstr : "out of memory");
        if (ac) {
            redisAsyncFree(ac);
        }
        ngx_http_guichet_schedule_reconnect(rc);
        return;
    }

    c = ngx_get_connection(ac->c.fd, ngx_cycle->log);
    if (c == NULL) {
        redisAsyncFree(ac);
        ngx_http_guichet_schedule_reconnect(rc);
        return;
    }

    c->data = rc;
    c->read->handler = ngx_http_guichet_redis_read;
    c->write->handler = ngx_http_guichet_redis_write;
    c->read->log = ngx_cycle->log;
    c->write->log = ngx_cycle->log;

    rc->ac = ac;
    rc->conn = c;

    ac->data = rc;
    ac->ev.data = rc;
    ac->ev.addRead = ngx_http_guichet_ev_add_read;
    ac->ev.delRead = ngx_http_guichet_ev_del_read;
    ac->ev.addWrite = ngx_http_guichet_ev_add_write;
    ac->ev.delWrite = ngx_http_guichet_ev_del_write;
    ac->ev.cleanup = ngx_http_guichet_ev_cleanup;

    redisAsyncSetConnectCallback(ac, ngx_http_guichet_on_connect);
    redisAsyncSetDisconnectCallback(ac, ngx_http_guichet_on_disconnect);

    /* the first command makes hiredis wait for writability: connect */

    if (conf->password.len) {
        redisAsyncCommand(ac, ngx_http_guichet_auth_done, NULL, "AUTH %b",
                          conf->password.data,
                          conf->password.len);

    } else {
        redisAsyncCommand(ac, NULL, NULL, "PING");
    }
}


static void
ngx_http_guichet_redis_done(redisAsyncContext *ac, void *reply,
    void *privdata)
{
    ngx_http_guichet_redis_op_t  *op = privdata;

    if (!op->quiet && ngx_http_guichet_redis_conf.replied) {
        ngx_http_guichet_redis_conf.replied(reply);
    }

    op->handler(reply, op->data);
    ngx_free(op);
}


/*
 * See ngx_http_guichet_redis.h.  The handler is called exactly once unless
 * NGX_DECLINED or NGX_ERROR is returned.
 */
ngx_int_t
ngx_http_guichet_redis_send(const gch_cmds_t *cmds,
    ngx_http_guichet_redis_pt handler, void *data)
{
    size_t                          i;
    ngx_uint_t                      k;
    ngx_http_guichet_redis_op_t    *op;
    ngx_http_guichet_redis_conn_t  *rc;

    if (cmds == NULL || cmds->ncmds == 0 || ngx_http_guichet_nconns == 0) {
        return NGX_DECLINED;
    }

    rc = NULL;

    for (k = 0; k < ngx_http_guichet_nconns; k++) {
        rc = &ngx_http_guichet_conns[(ngx_http_guichet_next + k)
                                     % ngx_http_guichet_nconns];
        if (rc->connected && rc->ac) {
            break;
        }
        rc = NULL;
    }

    if (rc == NULL) {
        return NGX_DECLINED;
    }

    ngx_http_guichet_next = (rc->index + 1) % ngx_http_guichet_nconns;

    op = ngx_alloc(sizeof(ngx_http_guichet_redis_op_t), ngx_cycle->log);
    if (op == NULL) {
        return NGX_ERROR;
    }

    op->handler = handler;
    op->data = data;
    op->quiet = 0;

    for (i = 0; i + 1 < cmds->ncmds; i++) {
        if (redisAsyncFormattedCommand(rc->ac, NULL, NULL, cmds->cmds[i].data,
                                       cmds->cmds[i].len)
            != REDIS_OK)
        {
            goto failed;
        }
    }

    if (redisAsyncFormattedCommand(rc->ac, ngx_http_guichet_redis_done, op,
                                   cmds->cmds[i].data, cmds->cmds[i].len)
        != REDIS_OK)
    {
        goto failed;
    }

    if (ngx_http_guichet_redis_conf.sent) {
        ngx_http_guichet_redis_conf.sent();
    }

    return NGX_OK;

failed:

    /*
     * hiredis refuses commands only when the context is disconnecting;
     * what was queued is then answered with NULL to NULL callbacks.
     */
    ngx_free(op);
    return NGX_DECLINED;
}


/*
 * One command (hiredis's format) on the first connection that is up, for
 * the module's own housekeeping: the hooks are not told.  handler may be
 * NULL (the reply is then dropped); otherwise it is called exactly once
 * unless NGX_DECLINED or NGX_ERROR is returned.  Commands sent in a row in
 * one turn of the event loop go out on the same connection, in order.
 */
ngx_int_t
ngx_http_guichet_redis_command(ngx_http_guichet_redis_pt handler, void *data,
    const char *fmt, ...)
{
    int                             rc;
    va_list                         args;
    ngx_uint_t                      k;
    ngx_http_guichet_redis_op_t    *op;
    ngx_http_guichet_redis_conn_t  *c;

    for (k = 0; k < ngx_http_guichet_nconns; k++) {
        c = &ngx_http_guichet_conns[k];

        if (!c->connected || c->ac == NULL) {
            continue;
        }

        op = NULL;

        if (handler) {
            op = ngx_alloc(sizeof(ngx_http_guichet_redis_op_t),
                           ngx_cycle->log);
            if (op == NULL) {
                return NGX_ERROR;
            }

            op->handler = handler;
            op->data = data;
            op->quiet = 1;
        }

        va_start(args, fmt);
        rc = redisvAsyncCommand(c->ac,
                                handler ? ngx_http_guichet_redis_done : NULL,
                                op, fmt, args);
        va_end(args);

        if (rc != REDIS_OK) {
            if (op) {
                ngx_free(op);
            }

            return NGX_DECLINED;
        }

        return NGX_OK;
    }

    return NGX_DECLINED;
}


/* Called once per worker process: opens the pool. */
ngx_int_t
ngx_http_guichet_redis_init(ngx_cycle_t *cycle,
    const ngx_http_guichet_redis_conf_t *conf)
{
    ngx_uint_t                      i;
    ngx_http_guichet_redis_conn_t  *rc;

    ngx_http_guichet_redis_conf = *conf;
    ngx_http_guichet_exiting = 0;
    ngx_http_guichet_nconns = conf->pool;
    ngx_http_guichet_conns = ngx_pcalloc(cycle->pool,
                      conf->pool * sizeof(ngx_http_guichet_redis_conn_t));
    if (ngx_http_guichet_conns == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < ngx_http_guichet_nconns; i++) {
        rc = &ngx_http_guichet_conns[i];
        rc->index = i;
        rc->backoff = NGX_HTTP_GUICHET_BACKOFF_MIN;
        rc->reconnect.handler = ngx_http_guichet_reconnect_handler;
        rc->reconnect.data = rc;
        rc->reconnect.log = cycle->log;
        rc->reconnect.cancelable = 1;
        rc->flush.handler = ngx_http_guichet_redis_flush;
        rc->flush.data = rc;
        rc->flush.log = cycle->log;

        ngx_http_guichet_redis_connect(rc);
    }

    return NGX_OK;
}


void
ngx_http_guichet_redis_exit(ngx_cycle_t *cycle)
{
    ngx_uint_t  i;

    ngx_http_guichet_exiting = 1;

    for (i = 0; i < ngx_http_guichet_nconns; i++) {
        if (ngx_http_guichet_conns[i].ac) {
            redisAsyncFree(ngx_http_guichet_conns[i].ac);
        }
    }

    ngx_http_guichet_nconns = 0;
}
