/*
 * ngx_http_guichet_redis.c -- hiredis async connections inside nginx's
 * event loop, and the catalogue refresher.
 *
 * hiredis 0.14 ships no nginx adapter and no async timeouts, so this file
 * is the adapter: each connection's socket gets an nginx connection whose
 * read and write events (level-triggered) call redisAsyncHandleRead/Write;
 * hiredis asks for events through the ev hooks below.  Commands queued
 * while the connection is up are written by a posted event at the end of
 * the event loop's turn (one write for all of them, no epoll_ctl); the
 * write event is armed only for connecting and for a socket buffer that is
 * full.  Each worker keeps guichet_redis_pool connections, reconnects with
 * a doubling back-off, and refreshes the catalogue every
 * guichet_catalogue_refresh.  Deadlines of requests are nginx timers in
 * _handler.c: a reply that arrives late is still consumed here and handed
 * to its operation, never to a freed request.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_http.h>

#include <sodium.h>

#include "ngx_http_guichet.h"


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
} ngx_http_guichet_redis_op_t;


static ngx_http_guichet_redis_conn_t  *ngx_http_guichet_conns;
static ngx_uint_t                      ngx_http_guichet_nconns;
static ngx_uint_t                      ngx_http_guichet_next;
static ngx_event_t                     ngx_http_guichet_refresh_ev;
static ngx_uint_t                      ngx_http_guichet_refreshing;
static ngx_uint_t                      ngx_http_guichet_exiting;


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

    if (ngx_http_guichet_worker.metrics) {
        (void) ngx_atomic_fetch_add(
                   &ngx_http_guichet_worker.metrics->redis_reconnects, 1);
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
                      &ngx_http_guichet_worker.gmcf->redis, ac->errstr);
        rc->ac = NULL;
        rc->connected = 0;
        ngx_http_guichet_schedule_reconnect(rc);
        return;
    }

    rc->connected = 1;
    rc->backoff = NGX_HTTP_GUICHET_BACKOFF_MIN;

    ngx_log_error(NGX_LOG_INFO, ngx_cycle->log, 0,
                  "guichet: connected to redis \"%V\" (#%ui)",
                  &ngx_http_guichet_worker.gmcf->redis, rc->index);
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
    u_char                        *p, *host;
    ngx_int_t                      port;
    redisAsyncContext             *ac;
    ngx_connection_t              *c;
    ngx_http_guichet_main_conf_t  *gmcf;

    gmcf = ngx_http_guichet_worker.gmcf;

    /* NUL-terminated copies: hiredis wants C strings */

    host = ngx_alloc(gmcf->redis.len + 1, ngx_cycle->log);
    if (host == NULL) {
        ngx_http_guichet_schedule_reconnect(rc);
        return;
    }

    ngx_memcpy(host, gmcf->redis.data, gmcf->redis.len);
    host[gmcf->redis.len] = '\0';

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
                      &gmcf->redis, ac ? ac->errstr : "out of memory");
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

    if (gmcf->redis_password.len) {
        redisAsyncCommand(ac, ngx_http_guichet_auth_done, NULL, "AUTH %b",
                          gmcf->redis_password.data,
                          gmcf->redis_password.len);

    } else {
        redisAsyncCommand(ac, NULL, NULL, "PING");
    }
}


static void
ngx_http_guichet_redis_done(redisAsyncContext *ac, void *reply,
    void *privdata)
{
    ngx_http_guichet_redis_op_t  *op = privdata;
    ngx_http_guichet_metrics_t   *m;

    m = ngx_http_guichet_worker.metrics;

    if (m && (reply == NULL
              || ((redisReply *) reply)->type == REDIS_REPLY_ERROR))
    {
        (void) ngx_atomic_fetch_add(&m->redis_errors, 1);
    }

    op->handler(reply, op->data);
    ngx_free(op);
}


/*
 * See ngx_http_guichet.h.  The handler is called exactly once unless
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

    if (ngx_http_guichet_worker.metrics) {
        (void) ngx_atomic_fetch_add(
                   &ngx_http_guichet_worker.metrics->redis_round_trips, 1);
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


/* catalogue refresher */

static void
ngx_http_guichet_catalogue_loaded(redisAsyncContext *ac, void *r,
    void *privdata)
{
    int                 rc;
    long long           gen;
    gch_error_t         err;
    gch_town_t         *town;
    redisReply         *reply = r, *g, *cat;

    ngx_http_guichet_refreshing = 0;

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY
        || reply->elements != 2)
    {
        return;
    }

    g = reply->element[0];
    cat = reply->element[1];

    if (g->type != REDIS_REPLY_STRING || cat->type != REDIS_REPLY_STRING) {
        ngx_http_guichet_catalogue_set(NULL, 0);
        return;
    }

    gen = strtoll(g->str, NULL, 10);

    rc = gch_town_parse(&town, cat->str, cat->len,
                        &ngx_http_guichet_heap_alloc, &err);
    if (rc != GCH_OK) {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "guichet: catalogue generation %L refused: %s",
                      gen, err.message);
        return;
    }

    ngx_http_guichet_catalogue_set(town, gen);
}


static void
ngx_http_guichet_gen_checked(redisAsyncContext *ac, void *r, void *privdata)
{
    long long    gen;
    ngx_time_t  *tp;
    redisReply  *reply = r;

    if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
        ngx_http_guichet_refreshing = 0;
        return;
    }

    if (reply->type == REDIS_REPLY_NIL) {
        ngx_http_guichet_refreshing = 0;
        ngx_http_guichet_catalogue_set(NULL, 0);
        return;
    }

    gen = (reply->type == REDIS_REPLY_STRING)
          ? strtoll(reply->str, NULL, 10) : -1;

    if (ngx_http_guichet_worker.cat
        && gen == ngx_http_guichet_worker.cat->gen)
    {
        tp = ngx_timeofday();
        ngx_http_guichet_refreshing = 0;
        ngx_http_guichet_worker.ready = 1;
        ngx_http_guichet_worker.ready_checked = ngx_current_msec;
        ngx_http_guichet_worker.confirmed_ms = (int64_t) tp->sec * 1000
                                               + tp->msec;
        return;
    }

    redisAsyncCommand(ac, NULL, NULL, "MULTI");
    redisAsyncCommand(ac, NULL, NULL, "GET gch:catalogue:gen");
    redisAsyncCommand(ac, NULL, NULL, "GET gch:catalogue");
    if (redisAsyncCommand(ac, ngx_http_guichet_catalogue_loaded, NULL, "EXEC")
        != REDIS_OK)
    {
        ngx_http_guichet_refreshing = 0;
    }
}


/* revoked tokens: reloaded when gch:revoked:gen changes */

static void
ngx_http_guichet_revoked_loaded(redisAsyncContext *ac, void *r,
    void *privdata)
{
    u_char       *hashes, *p;
    size_t        i, n;
    long long     gen;
    redisReply   *reply = r;

    gen = (long long) (intptr_t) privdata;

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY) {
        return;
    }

    hashes = ngx_alloc(reply->elements * NGX_HTTP_GUICHET_TOKEN_HASH + 1,
                       ngx_cycle->log);
    if (hashes == NULL) {
        return;
    }

    n = 0;
    p = hashes;

    for (i = 0; i < reply->elements; i++) {
        if (reply->element[i]->type != REDIS_REPLY_STRING
            || reply->element[i]->len != 2 * NGX_HTTP_GUICHET_TOKEN_HASH
            || sodium_hex2bin(p, NGX_HTTP_GUICHET_TOKEN_HASH,
                              reply->element[i]->str,
                              reply->element[i]->len, NULL, NULL, NULL)
               != 0)
        {
            continue;
        }

        p += NGX_HTTP_GUICHET_TOKEN_HASH;
        n++;
    }

    ngx_http_guichet_revoked_set(hashes, n, gen);
}


static void
ngx_http_guichet_revoked_checked(redisAsyncContext *ac, void *r,
    void *privdata)
{
    long long    gen;
    redisReply  *reply = r;

    if (reply == NULL || reply->type != REDIS_REPLY_STRING) {
        return;
    }

    gen = strtoll(reply->str, NULL, 10);

    if (gen == ngx_http_guichet_worker.revoked_gen) {
        return;
    }

    redisAsyncCommand(ac, ngx_http_guichet_revoked_loaded,
                      (void *) (intptr_t) gen,
                      "ZRANGEBYSCORE gch:revoked %lld +inf",
                      (long long) ngx_time());
}


/* One look at the generation (and the revoked tokens), if none is out. */
static void
ngx_http_guichet_refresh_now(void)
{
    ngx_uint_t                      k;
    ngx_http_guichet_redis_conn_t  *rc;

    if (ngx_http_guichet_refreshing) {
        return;
    }

    for (k = 0; k < ngx_http_guichet_nconns; k++) {
        rc = &ngx_http_guichet_conns[k];

        if (rc->connected && rc->ac) {
            if (redisAsyncCommand(rc->ac, ngx_http_guichet_gen_checked, NULL,
                                  "GET gch:catalogue:gen")
                == REDIS_OK)
            {
                ngx_http_guichet_refreshing = 1;

                (void) redisAsyncCommand(rc->ac,
                                         ngx_http_guichet_revoked_checked,
                                         NULL, "GET gch:revoked:gen");
            }
            return;
        }
    }
}


static void
ngx_http_guichet_refresh_handler(ngx_event_t *ev)
{
    if (ngx_exiting || ngx_terminate || ngx_http_guichet_exiting) {
        return;
    }

    ngx_add_timer(ev, ngx_http_guichet_worker.gmcf->catalogue_refresh);

    ngx_http_guichet_refresh_now();
}


/*
 * A request named a family the catalogue does not know with a token newer
 * than the catalogue (503 catalogue_behind): look now rather than at the
 * next guichet_catalogue_refresh, so that the client's retry after
 * Retry-After finds the new catalogue.  At most one look per 100 ms.
 */
void
ngx_http_guichet_catalogue_kick(void)
{
    static ngx_msec_t  last;
    static ngx_uint_t  kicked;

    if (ngx_exiting || ngx_terminate || ngx_http_guichet_exiting
        || ngx_http_guichet_nconns == 0)
    {
        return;
    }

    if (kicked && ngx_current_msec - last < 100) {
        return;
    }

    kicked = 1;
    last = ngx_current_msec;

    ngx_http_guichet_refresh_now();
}


/* Called once per worker process: opens the pool, starts the refresher. */
ngx_int_t
ngx_http_guichet_redis_init(ngx_cycle_t *cycle,
    ngx_http_guichet_main_conf_t *gmcf)
{
    ngx_uint_t                      i;
    ngx_http_guichet_redis_conn_t  *rc;

    ngx_http_guichet_exiting = 0;
    ngx_http_guichet_nconns = gmcf->redis_pool;
    ngx_http_guichet_conns = ngx_pcalloc(cycle->pool,
                      gmcf->redis_pool * sizeof(ngx_http_guichet_redis_conn_t));
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

    ngx_http_guichet_refresh_ev.handler = ngx_http_guichet_refresh_handler;
    ngx_http_guichet_refresh_ev.log = cycle->log;
    ngx_http_guichet_refresh_ev.data = NULL;
    ngx_http_guichet_refresh_ev.cancelable = 1;

    /* first look right after the connections come up */
    ngx_add_timer(&ngx_http_guichet_refresh_ev, 20);

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
