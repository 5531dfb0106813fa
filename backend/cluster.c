/*
 * cluster.c -- Redis Cluster for the back-end programs (redis_cluster).
 *
 * guichet-worker, guichetctl and guichet-office talk to Redis through a
 * plain hiredis redisContext, synchronously, with pipelines and MULTI/EXEC
 * in many places.  In cluster mode that context is one end of a socketpair;
 * a routing thread owns the other end.  It reads the program's commands
 * (RESP, as hiredis wrote them), sends each to the master of its slot
 * (engine/src/cluster.c computes slots, cluster_map.c reads the slot map),
 * keeps one connection per node, and writes the nodes' replies back in
 * order.  So
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
 * This file is the routing thread: its start (gchb_cluster_open), its
 * loop over the program's socket, its end.  The program's commands (the
 * transaction, SCAN, pipelines) are cluster_cmd.c; the nodes (one
 * connection each, the slot map, a command's route through MOVED / ASK /
 * TRYAGAIN) are cluster_node.c; gchb_cluster.h is what the three share.
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
#include "gchb_cluster.h"


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

    gchb_cluster_txn_clear(p);
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

        gchb_cluster_batch(p, cmds, ncmds);

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

    if (gchb_cluster_map_refresh(p) != 0) {
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
