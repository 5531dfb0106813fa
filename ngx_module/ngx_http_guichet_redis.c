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
 * full.  Each worker keeps guichet_redis_pool connections per Redis node
 * (one node, or each master of a cluster: _cluster.c routes), reconnects
 * with a doubling back-off.  Deadlines of requests are nginx timers of their
 * operations (_op.c): a reply that arrives late is still consumed here and
 * handed to its operation, never to a freed request.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include "ngx_http_guichet_redis.h"


#define NGX_HTTP_GUICHET_BACKOFF_MIN  100
#define NGX_HTTP_GUICHET_BACKOFF_MAX  2000


typedef struct ngx_http_guichet_redis_waiter_s
    ngx_http_guichet_redis_waiter_t;

struct ngx_http_guichet_redis_waiter_s {
    ngx_http_guichet_redis_pt         handler;
    void                             *data;
    ngx_http_guichet_redis_waiter_t  *next;
};


/* One WAIT on a connection and those who wait for its answer. */
typedef struct {
    ngx_http_guichet_redis_waiter_t  *first;
    ngx_http_guichet_redis_waiter_t **last;
    void                             *conn;     /* NULL once answered */
} ngx_http_guichet_redis_wait_t;


typedef struct {
    redisAsyncContext          *ac;
    ngx_connection_t           *conn;
    ngx_event_t                 reconnect;
    ngx_event_t                 flush;
    ngx_msec_t                  backoff;
    ngx_uint_t                  connected;
    ngx_uint_t                  writing;
    ngx_uint_t                  index;
    ngx_http_guichet_redis_node_t  *node;
    ngx_http_guichet_redis_wait_t  *wait;   /* the WAIT not answered yet */
} ngx_http_guichet_redis_conn_t;


struct ngx_http_guichet_redis_node_s {
    ngx_str_t                       address;    /* NUL-terminated */
    ngx_http_guichet_redis_conn_t  *conns;
    ngx_uint_t                      nconns;
    ngx_uint_t                      next;
    ngx_http_guichet_redis_node_t  *link;       /* all nodes */
};


typedef struct {
    ngx_http_guichet_redis_pt   handler;
    void                       *data;
    ngx_uint_t                  quiet;      /* no hooks */
    ngx_uint_t                  pending;    /* peeked replies to come */
    ngx_str_t                   redirect;   /* first MOVED/ASK, heap */
} ngx_http_guichet_redis_op_t;


static ngx_http_guichet_redis_node_t  *ngx_http_guichet_nodes;
static ngx_uint_t                      ngx_http_guichet_exiting;
static ngx_http_guichet_redis_conf_t   ngx_http_guichet_redis_conf;

/* while a handler runs: its connection and its op */
static ngx_http_guichet_redis_conn_t  *ngx_http_guichet_current;
static ngx_http_guichet_redis_op_t    *ngx_http_guichet_current_op;


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
                      &rc->node->address, ac->errstr);
        rc->ac = NULL;
        rc->connected = 0;
        ngx_http_guichet_schedule_reconnect(rc);
        return;
    }

    rc->connected = 1;
    rc->backoff = NGX_HTTP_GUICHET_BACKOFF_MIN;

    ngx_log_error(NGX_LOG_INFO, ngx_cycle->log, 0,
                  "guichet: connected to redis \"%V\" (#%ui)",
                  &rc->node->address, rc->index);
}


static void
ngx_http_guichet_on_disconnect(const redisAsyncContext *ac, int status)
{
    ngx_http_guichet_redis_conn_t  *rc = ac->data;

    rc->ac = NULL;
    rc->connected = 0;

    if (status != REDIS_OK) {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "guichet: redis \"%V\" connection #%ui lost: %s",
                      &rc->node->address, rc->index, ac->errstr);
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
    ngx_str_t                      *address;
    ngx_http_guichet_redis_conf_t  *conf;

    conf = &ngx_http_guichet_redis_conf;
    address = &rc->node->address;

    /* NUL-terminated copies: hiredis wants C strings */

    host = ngx_alloc(address->len + 1, ngx_cycle->log);
    if (host == NULL) {
        ngx_http_guichet_schedule_reconnect(rc);
        return;
    }

    ngx_memcpy(host, address->data, address->len);
    host[address->len] = '\0';

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
                      address, ac ? ac->errstr : "out of memory");
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


/*
 * The op of a list lives until the last of its callbacks ran: hiredis
 * calls each once, with NULL when the connection fails first.
 */
static void
ngx_http_guichet_redis_op_unref(ngx_http_guichet_redis_op_t *op)
{
    if (--op->pending) {
        return;
    }

    if (op->redirect.data) {
        ngx_free(op->redirect.data);
    }

    ngx_free(op);
}


/* A reply before the last one of a peeked list: a redirection? */
static void
ngx_http_guichet_redis_peek(redisAsyncContext *ac, void *reply,
    void *privdata)
{
    redisReply                   *r = reply;
    ngx_http_guichet_redis_op_t  *op = privdata;

    if (r != NULL && r->type == REDIS_REPLY_ERROR
        && op->redirect.data == NULL
        && (ngx_strncmp(r->str, "MOVED ", 6) == 0
            || ngx_strncmp(r->str, "ASK ", 4) == 0))
    {
        op->redirect.data = ngx_alloc(r->len, ngx_cycle->log);
        if (op->redirect.data) {
            ngx_memcpy(op->redirect.data, r->str, r->len);
            op->redirect.len = r->len;
        }
    }

    ngx_http_guichet_redis_op_unref(op);
}


static void
ngx_http_guichet_redis_done(redisAsyncContext *ac, void *reply,
    void *privdata)
{
    ngx_http_guichet_redis_op_t  *op = privdata;

    if (!op->quiet && ngx_http_guichet_redis_conf.replied) {
        ngx_http_guichet_redis_conf.replied(reply);
    }

    ngx_http_guichet_current = ac->data;
    ngx_http_guichet_current_op = op;

    op->handler(reply, op->data);

    ngx_http_guichet_current = NULL;
    ngx_http_guichet_current_op = NULL;

    ngx_http_guichet_redis_op_unref(op);
}


ngx_str_t *
ngx_http_guichet_redis_redirect(void)
{
    ngx_http_guichet_redis_op_t  *op = ngx_http_guichet_current_op;

    return (op && op->redirect.data) ? &op->redirect : NULL;
}


/*
 * See ngx_http_guichet_redis.h.  The handler is called exactly once unless
 * NGX_DECLINED or NGX_ERROR is returned.
 */
ngx_int_t
ngx_http_guichet_redis_node_send(ngx_http_guichet_redis_node_t *node,
    const gch_cmds_t *cmds, ngx_uint_t asking, ngx_uint_t peek,
    ngx_uint_t quiet, ngx_http_guichet_redis_pt handler, void *data)
{
    size_t                          i;
    ngx_uint_t                      k;
    ngx_http_guichet_redis_op_t    *op;
    ngx_http_guichet_redis_conn_t  *rc;

    if (cmds == NULL || cmds->ncmds == 0 || node == NULL
        || node->nconns == 0)
    {
        return NGX_DECLINED;
    }

    rc = NULL;

    /*
     * Requests' lists take the connections in turn, those not blocked in
     * a WAIT first (Redis runs nothing behind a WAIT on its connection
     * until it returns); the module's own (quiet) commands take the first
     * that is up, so that those sent in a row in one turn of the event
     * loop go out together, in order.
     */
    for (k = 0; k < 2 * node->nconns; k++) {
        rc = &node->conns[quiet ? k % node->nconns
                                : (node->next + k) % node->nconns];
        if (rc->connected && rc->ac
            && (quiet || k >= node->nconns || rc->wait == NULL))
        {
            break;
        }
        rc = NULL;
    }

    if (rc == NULL) {
        return NGX_DECLINED;
    }

    if (!quiet) {
        node->next = (rc->index + 1) % node->nconns;
    }

    op = ngx_calloc(sizeof(ngx_http_guichet_redis_op_t), ngx_cycle->log);
    if (op == NULL) {
        return NGX_ERROR;
    }

    op->handler = handler;
    op->data = data;
    op->quiet = quiet;

    /* ASKING holds until the transaction's EXEC (Redis 7.0) */

    if (asking
        && redisAsyncCommand(rc->ac, NULL, NULL, "ASKING") != REDIS_OK)
    {
        goto failed;
    }

    for (i = 0; i + 1 < cmds->ncmds; i++) {
        if (redisAsyncFormattedCommand(rc->ac,
                                       peek ? ngx_http_guichet_redis_peek
                                            : NULL,
                                       peek ? op : NULL, cmds->cmds[i].data,
                                       cmds->cmds[i].len)
            != REDIS_OK)
        {
            goto failed;
        }

        if (peek) {
            op->pending++;
        }
    }

    if (redisAsyncFormattedCommand(rc->ac, ngx_http_guichet_redis_done, op,
                                   cmds->cmds[i].data, cmds->cmds[i].len)
        != REDIS_OK)
    {
        goto failed;
    }

    op->pending++;

    if (!quiet && ngx_http_guichet_redis_conf.sent) {
        ngx_http_guichet_redis_conf.sent();
    }

    return NGX_OK;

failed:

    /*
     * hiredis refuses commands only when the context is disconnecting;
     * what was queued is then answered with NULL: the peeks queued so far
     * free the op, the handler is not called.
     */
    if (op->pending == 0) {
        ngx_free(op);

    } else {
        op->pending++;
        ngx_http_guichet_redis_op_unref(op);
    }

    return NGX_DECLINED;
}


/* WAIT answered (or the connection failed): everyone who joined it. */
static void
ngx_http_guichet_redis_wait_done(redisAsyncContext *ac, void *reply,
    void *privdata)
{
    ngx_http_guichet_redis_wait_t    *w = privdata;
    ngx_http_guichet_redis_conn_t    *rc;
    ngx_http_guichet_redis_waiter_t  *wt, *next;

    rc = w->conn;
    if (rc && rc->wait == w) {
        rc->wait = NULL;
    }

    for (wt = w->first; wt; wt = next) {
        next = wt->next;
        wt->handler(reply, wt->data);
        ngx_free(wt);
    }

    ngx_free(w);
}


/*
 * See ngx_http_guichet_redis.h.  A reply that arrived before a WAIT's
 * reply was written before that WAIT (one connection answers in order):
 * a WAIT still unanswered on this connection covers the write just
 * answered, and its answer is this one's.
 */
ngx_int_t
ngx_http_guichet_redis_wait(ngx_uint_t numreplicas, ngx_msec_t timeout,
    ngx_http_guichet_redis_pt handler, void *data)
{
    ngx_http_guichet_redis_wait_t    *w;
    ngx_http_guichet_redis_conn_t    *rc;
    ngx_http_guichet_redis_waiter_t  *wt;

    rc = ngx_http_guichet_current;

    if (rc == NULL || rc->ac == NULL || !rc->connected) {
        return NGX_DECLINED;
    }

    wt = ngx_alloc(sizeof(ngx_http_guichet_redis_waiter_t), ngx_cycle->log);
    if (wt == NULL) {
        return NGX_ERROR;
    }

    wt->handler = handler;
    wt->data = data;
    wt->next = NULL;

    w = rc->wait;

    if (w == NULL) {
        w = ngx_alloc(sizeof(ngx_http_guichet_redis_wait_t), ngx_cycle->log);
        if (w == NULL) {
            ngx_free(wt);
            return NGX_ERROR;
        }

        w->first = NULL;
        w->last = &w->first;
        w->conn = rc;

        if (redisAsyncCommand(rc->ac, ngx_http_guichet_redis_wait_done, w,
                              "WAIT %lu %lu", (unsigned long) numreplicas,
                              (unsigned long) timeout)
            != REDIS_OK)
        {
            ngx_free(w);
            ngx_free(wt);
            return NGX_DECLINED;
        }

        rc->wait = w;
    }

    *w->last = wt;
    w->last = &wt->next;

    return NGX_OK;
}


ngx_http_guichet_redis_node_t *
ngx_http_guichet_redis_node(u_char *addr, size_t len)
{
    ngx_uint_t                      i;
    ngx_http_guichet_redis_conn_t  *rc;
    ngx_http_guichet_redis_node_t  *node;

    for (node = ngx_http_guichet_nodes; node; node = node->link) {
        if (node->address.len == len
            && ngx_strncmp(node->address.data, addr, len) == 0)
        {
            return node;
        }
    }

    node = ngx_calloc(sizeof(ngx_http_guichet_redis_node_t)
                      + len + 1
                      + ngx_http_guichet_redis_conf.pool
                        * sizeof(ngx_http_guichet_redis_conn_t),
                      ngx_cycle->log);
    if (node == NULL) {
        return NULL;
    }

    node->conns = (ngx_http_guichet_redis_conn_t *) (node + 1);
    node->nconns = ngx_http_guichet_redis_conf.pool;
    node->address.data = (u_char *) (node->conns + node->nconns);
    node->address.len = len;
    ngx_memcpy(node->address.data, addr, len);
    node->address.data[len] = '\0';

    node->link = ngx_http_guichet_nodes;
    ngx_http_guichet_nodes = node;

    for (i = 0; i < node->nconns; i++) {
        rc = &node->conns[i];
        rc->node = node;
        rc->index = i;
        rc->backoff = NGX_HTTP_GUICHET_BACKOFF_MIN;
        rc->reconnect.handler = ngx_http_guichet_reconnect_handler;
        rc->reconnect.data = rc;
        rc->reconnect.log = ngx_cycle->log;
        rc->reconnect.cancelable = 1;
        rc->flush.handler = ngx_http_guichet_redis_flush;
        rc->flush.data = rc;
        rc->flush.log = ngx_cycle->log;

        ngx_http_guichet_redis_connect(rc);
    }

    return node;
}


ngx_str_t *
ngx_http_guichet_redis_node_name(ngx_http_guichet_redis_node_t *node)
{
    return &node->address;
}


ngx_uint_t
ngx_http_guichet_redis_node_up(ngx_http_guichet_redis_node_t *node)
{
    ngx_uint_t  i;

    for (i = 0; i < node->nconns; i++) {
        if (node->conns[i].connected && node->conns[i].ac) {
            return 1;
        }
    }

    return 0;
}


ngx_http_guichet_redis_node_t *
ngx_http_guichet_redis_node_next(ngx_http_guichet_redis_node_t *node)
{
    return node ? node->link : ngx_http_guichet_nodes;
}


void
ngx_http_guichet_redis_setup(const ngx_http_guichet_redis_conf_t *conf)
{
    ngx_http_guichet_redis_conf = *conf;
    ngx_http_guichet_exiting = 0;
    ngx_http_guichet_nodes = NULL;
}


void
ngx_http_guichet_redis_close(void)
{
    ngx_uint_t                      i;
    ngx_http_guichet_redis_node_t  *node, *next;

    ngx_http_guichet_exiting = 1;

    for (node = ngx_http_guichet_nodes; node; node = next) {
        next = node->link;

        for (i = 0; i < node->nconns; i++) {
            if (node->conns[i].reconnect.timer_set) {
                ngx_del_timer(&node->conns[i].reconnect);
            }

            if (node->conns[i].ac) {
                redisAsyncFree(node->conns[i].ac);
            }
        }

        ngx_free(node);
    }

    ngx_http_guichet_nodes = NULL;
}
