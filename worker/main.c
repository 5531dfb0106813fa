/*
 * main.c -- guichet-worker, the daemon between Redis and PostgreSQL.
 *
 *   guichet-worker [-c FILE]
 *
 * One thread, one loop: persist a batch of the stream {T}:stream
 * (persist.c), and on their own clocks run the periodic tasks of the
 * table gchw_tasks below (pgbouncer's janitor style): write the heartbeat
 * (heartbeat_ms), reap orphan attempts and trim the stream (every second,
 * reaper.c, persist.c), check the publication (publish_interval_ms,
 * publish.c), send the e-mail outbox (every second, mail.c) and, on
 * invoice_day, invoice the previous month (backend/invoice.c).  A new
 * periodic task is one function and one row of that table.  PostgreSQL
 * errors are retried with a backoff from 100 ms doubling to 5 s; nothing
 * is acknowledged that is not committed.  SIGTERM/SIGINT: finish the batch
 * and exit 0.  SIGHUP: re-read the settings file.  Under systemd
 * (Type=notify, debian/guichet.guichet-worker.service) it says READY=1
 * once Redis answers.
 *
 * One worker serves every town of the database (issue 21): each turn
 * visits the towns in order (public.platform_town, read again every
 * GCHW_TOWNS_EVERY ms), each with its own persister, reaper, task clocks
 * and last invoiced month; the Redis keys and the PostgreSQL search_path
 * are the visited town's (gchb_town_set, gchb_pg_town).  The blocking
 * read of new entries shares batch_wait_ms between the towns.  Before
 * PostgreSQL has answered, the configured town alone.
 */

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>
#include <systemd/sd-daemon.h>

#include "gchw.h"


#define GCHW_BACKOFF_MIN   100
#define GCHW_BACKOFF_MAX   5000
#define GCHW_TOWNS_EVERY   5000
#define GCHW_NTASKS_MAX    10


static volatile sig_atomic_t  gchw_stop;
static volatile sig_atomic_t  gchw_reload;


static void
gchw_on_signal(int sig)
{
    if (sig == SIGHUP) {
        gchw_reload = 1;
    } else {
        gchw_stop = 1;
    }
}


static void
gchw_heartbeat(redisContext *rc, int pg_ok, const char *pos)
{
    char         buf[192];
    int64_t      lag;
    long long    dead;
    redisReply  *r;

    lag = gchw_persist_lag(rc, pos);
    dead = gchw_persist_dead(rc);
    snprintf(buf, sizeof(buf),
             "{\"at_ms\":%lld,\"postgres\":\"%s\",\"lag_ms\":%lld,"
             "\"dead\":%lld}",
             (long long) gchb_now_ms(), pg_ok ? "ok" : "down",
             (long long) (lag < 0 ? 0 : lag), dead < 0 ? 0 : dead);

    r = redisCommand(rc, "SET " GCH_KEY_HEARTBEAT " %s EX 5", gchb_town, buf);
    if (r) {
        freeReplyObject(r);
    }
}


/* ------------------------------------------------------------------ */
/* the worker's state                                                   */

/* What the worker keeps of one town it serves. */
typedef struct {
    char              id[GCH_TOWN_ID_MAX + 1];
    char              invoiced[8];   /* the last month invoiced */
    gchw_reaper_t    *reaper;
    gchw_persist_t   *persist;
    int64_t           next[GCHW_NTASKS_MAX];  /* its tasks' clocks */
    int               counters_merged;  /* gchb_merge_counters() done */
    int64_t           merge_at;      /* ms: its next try (some left) */
} gchw_town_t;


typedef struct {
    gchb_conf_t       conf;
    const char       *file;          /* the settings file, NULL: none */
    redisContext     *rc;
    PGconn           *pg;
    int               backoff;       /* ms, GCHW_BACKOFF_MIN .. _MAX */
    int               pg_down_logged;
    int64_t           pg_retry;      /* no PostgreSQL connection before */
    char             *invoiced;      /* the visited town's */
    gchw_reaper_t    *reaper;        /* the visited town's */
    gchw_persist_t   *persist;       /* the visited town's */
    int               keys_migrated; /* gchb_migrate_keys() done */
    gchw_town_t     **towns;         /* served, in order */
    int               ntowns;
    int               towns_read;    /* from PostgreSQL at least once */
    char              pg_town[GCH_TOWN_ID_MAX + 1];  /* pg's search_path's
                                        town, "" for a new connection */
    int64_t           towns_at;      /* read them again then */
} gchw_worker_t;


/* After a failure: the next wait doubles, up to GCHW_BACKOFF_MAX. */
static void
gchw_backoff_more(gchw_worker_t *w)
{
    w->backoff = w->backoff * 2 > GCHW_BACKOFF_MAX
                 ? GCHW_BACKOFF_MAX : w->backoff * 2;
}


static void
gchw_redis_lost(gchw_worker_t *w)
{
    redisFree(w->rc);
    w->rc = NULL;
}


/* PostgreSQL failed: closed, tried again in backoff ms. */
static void
gchw_pg_lost(gchw_worker_t *w, int64_t now)
{
    PQfinish(w->pg);
    w->pg = NULL;
    w->pg_town[0] = '\0';
    w->pg_retry = now + w->backoff;
}


/* ------------------------------------------------------------------ */
/* periodic tasks: one table, walked by the main loop                   */

/*
 * A task runs when its time has come (and PostgreSQL is connected, for
 * GCHW_TASK_PG).  run returns 0, or -1 when it lost a connection and
 * closed it: the loop then starts its turn again.  The next run is due
 * period ms later; with GCHW_TASK_RETRY, only after a run that returned
 * 0 (a failed one is tried again at the next turn).  period returns the
 * task's period in ms from the settings, 0 for every turn, -1 when the
 * task is off.
 */
#define GCHW_TASK_PG     0x01
#define GCHW_TASK_RETRY  0x02

typedef struct {
    const char   *name;
    unsigned      flags;
    int         (*period)(const gchb_conf_t *conf);
    int         (*run)(gchw_worker_t *w, int64_t now);
} gchw_task_t;


static int
gchw_every_turn(const gchb_conf_t *conf)
{
    (void) conf;
    return 0;
}


static int
gchw_every_second(const gchb_conf_t *conf)
{
    (void) conf;
    return 1000;
}


static int
gchw_heartbeat_period(const gchb_conf_t *conf)
{
    return conf->heartbeat_ms;
}


static int
gchw_publish_period(const gchb_conf_t *conf)
{
    return conf->publish_interval_ms;
}


/* Every 10 s on invoice_day's months; off when invoice_day is 0. */
static int
gchw_invoice_period(const gchb_conf_t *conf)
{
    return conf->invoice_day ? 10000 : -1;
}


/* {T}:worker:heartbeat (what guichet-office and the module show). */
static int
gchw_task_heartbeat(gchw_worker_t *w, int64_t now)
{
    (void) now;
    gchw_heartbeat(w->rc, w->pg != NULL,
                   gchw_persist_position(w->persist));
    return 0;
}


/* A Redis connection that failed (in this turn or the last) is closed. */
static int
gchw_task_redis_ok(gchw_worker_t *w, int64_t now)
{
    (void) now;

    if (w->rc->err) {
        gchw_redis_lost(w);
        return -1;
    }

    return 0;
}


/* Orphan attempts reaped, the stream trimmed, on-site places released. */
static int
gchw_task_reap(gchw_worker_t *w, int64_t now)
{
    if (gchw_reap(w->reaper, w->rc, now, w->conf.reap_after_ms,
                  w->conf.recount_after_ms) < 0
        && w->rc->err)
    {
        gchw_redis_lost(w);
        return -1;
    }

    gchw_persist_trim(w->rc, gchw_persist_position(w->persist),
                      w->conf.stream_keep_ms);
    (void) gchw_release_onsite(w->reaper, w->rc, now);

    return 0;
}


/* Waiting lists: the first eligible child of each list with a place
 * left is booked (promote.c). */
static int
gchw_task_promote(gchw_worker_t *w, int64_t now)
{
    if (gchw_promote(w->reaper, w->rc, now) < 0 && w->rc->err) {
        gchw_redis_lost(w);
        return -1;
    }

    return 0;
}


/* Openings by draw whose instant has come are decided (draw.c). */
static int
gchw_task_draw(gchw_worker_t *w, int64_t now)
{
    if (gchw_draw(w->reaper, w->rc, w->pg, now, w->conf.draw_settle_ms) < 0)
    {
        if (w->rc->err) {
            gchw_redis_lost(w);
            return -1;
        }

        if (PQstatus(w->pg) != CONNECTION_OK) {
            gchw_pg_lost(w, now);
            return -1;
        }
    }

    return 0;
}


/* The end of a PostgreSQL task: when it failed and the connection broke,
 * the connection is closed (-1). */
static int
gchw_pg_task_end(gchw_worker_t *w, int64_t now, int failed)
{
    if (failed && PQstatus(w->pg) != CONNECTION_OK) {
        gchw_pg_lost(w, now);
        return -1;
    }

    return 0;
}


static int
gchw_task_publish(gchw_worker_t *w, int64_t now)
{
    return gchw_pg_task_end(w, now, gchw_publish_check(w->pg, w->rc) != 0);
}


static int
gchw_task_mail(gchw_worker_t *w, int64_t now)
{
    /* the waiting lists' offers' e-mails, from Redis to the outbox */
    if (gchw_offer_mail(w->pg, w->rc) < 0) {
        if (w->rc->err) {
            gchw_redis_lost(w);
            return -1;
        }
        return gchw_pg_task_end(w, now, 1);
    }

    return gchw_pg_task_end(w, now,
                            gchw_mail_send(w->pg, &w->conf, 50) < 0);
}


/* The waiting lists copied to PostgreSQL when they changed
 * (waitmirror.c). */
static int
gchw_task_waitlists(gchw_worker_t *w, int64_t now)
{
    if (gchw_waitlist_mirror(w->pg, w->rc) < 0) {
        if (w->rc->err) {
            gchw_redis_lost(w);
            return -1;
        }
        return gchw_pg_task_end(w, now, 1);
    }

    return 0;
}


static int
gchw_task_invoice(gchw_worker_t *w, int64_t now)
{
    return gchw_pg_task_end(w, now,
                            gchb_invoice_schedule(w->pg, w->rc, &w->conf,
                                                  w->invoiced) < 0);
}


/* In the order they run, each turn, before the persister's batch. */
static const gchw_task_t  gchw_tasks[] = {
    { "heartbeat", 0,
      gchw_heartbeat_period, gchw_task_heartbeat },
    { "redis", 0,
      gchw_every_turn, gchw_task_redis_ok },
    { "reaper", GCHW_TASK_RETRY,
      gchw_every_second, gchw_task_reap },
    { "promote", 0,
      gchw_every_turn, gchw_task_promote },
    { "draw", GCHW_TASK_PG,
      gchw_every_turn, gchw_task_draw },
    { "publish", GCHW_TASK_PG | GCHW_TASK_RETRY,
      gchw_publish_period, gchw_task_publish },
    { "mail", GCHW_TASK_PG,
      gchw_every_second, gchw_task_mail },
    { "waitlists", GCHW_TASK_PG,
      gchw_every_second, gchw_task_waitlists },
    { "invoice", GCHW_TASK_PG,
      gchw_invoice_period, gchw_task_invoice },
};

#define GCHW_NTASKS  (sizeof(gchw_tasks) / sizeof(gchw_tasks[0]))

typedef char  gchw_ntasks_fit[GCHW_NTASKS <= GCHW_NTASKS_MAX ? 1 : -1];


/* Runs the tasks whose time has come; -1 when one lost a connection. */
static int
gchw_tasks_run(gchw_worker_t *w, int64_t now, int64_t next[])
{
    int                 period;
    size_t              i;
    const gchw_task_t  *t;

    for (i = 0; i < GCHW_NTASKS; i++) {
        t = &gchw_tasks[i];
        period = t->period(&w->conf);

        if (period < 0 || now < next[i]
            || ((t->flags & GCHW_TASK_PG) && w->pg == NULL))
        {
            continue;
        }

        if (!(t->flags & GCHW_TASK_RETRY)) {
            next[i] = now + period;
        }

        if (t->run(w, now) != 0) {
            return -1;
        }

        next[i] = now + period;
    }

    return 0;
}


/* ------------------------------------------------------------------ */
/* the steps of one turn                                                */

/* SIGHUP: the settings again (the consumer name kept: the name the
 * logs know), and new connections with them. */
static void
gchw_reload_settings(gchw_worker_t *w)
{
    gchb_conf_t  fresh;

    if (gchb_conf_load(&fresh, w->file) != 0) {
        return;
    }

    free(fresh.consumer);
    fresh.consumer = w->conf.consumer;
    w->conf.consumer = NULL;
    gchb_conf_free(&w->conf);
    w->conf = fresh;
    gchb_log("info", "settings reloaded");

    if (w->rc) {
        gchw_redis_lost(w);
    }
    if (w->pg) {
        PQfinish(w->pg);
        w->pg = NULL;
    }
}


/* Nothing runs without Redis: 0 connected, or -1 after waiting the
 * back-off. */
static int
gchw_connect_redis(gchw_worker_t *w)
{
    int  i;

    if (w->rc != NULL) {
        return 0;
    }

    w->rc = gchb_redis_connect(&w->conf);

    /* once per process, before the stream is read: the keys of
     * the layout before towns get the names of the configured town's
     * (backend/migrate.c), the one town of those days */
    if (w->rc != NULL && !w->keys_migrated) {
        if (gchb_migrate_keys(w->rc, w->conf.town, NULL) != 0) {
            gchw_redis_lost(w);
            gchb_sleep_ms(w->backoff);
            gchw_backoff_more(w);
            return -1;
        }
        w->keys_migrated = 1;
    }

    if (w->rc == NULL) {
        gchb_sleep_ms(w->backoff);
        gchw_backoff_more(w);
        return -1;
    }

    gchb_log("info", "connected to redis %s", gchb_redis_name(&w->conf));
    w->backoff = GCHW_BACKOFF_MIN;

    /* each town's stream checked against its position before it is read
     * or trimmed on this connection (persist.c) */
    for (i = 0; i < w->ntowns; i++) {
        gchw_persist_reread(w->towns[i]->persist);
    }

    return 0;
}


static void
gchw_town_free(gchw_town_t *t)
{
    if (t) {
        gchw_persist_free(t->persist);
        gchw_reaper_free(t->reaper);
        free(t);
    }
}


static gchw_town_t *
gchw_town_new(gchw_worker_t *w, const char *id)
{
    gchw_town_t  *t;

    t = calloc(1, sizeof(*t));
    if (t == NULL) {
        return NULL;
    }

    snprintf(t->id, sizeof(t->id), "%s", id);
    t->persist = gchw_persist_new(&w->conf);
    t->reaper = gchw_reaper_new();

    if (t->persist == NULL || t->reaper == NULL) {
        gchw_town_free(t);
        return NULL;
    }

    return t;
}


/*
 * The towns to serve: those of the database (a town kept keeps its state,
 * a new one starts afresh, one gone is dropped), or the configured town
 * until the database has answered.  0, or -1 (out of memory, nothing
 * changed).
 */
static int
gchw_towns_set(gchw_worker_t *w, char (*ids)[GCH_TOWN_ID_MAX + 1], int n)
{
    int            i, j;
    gchw_town_t  **towns;

    towns = calloc(n ? n : 1, sizeof(gchw_town_t *));
    if (towns == NULL) {
        return -1;
    }

    /* the new towns first: nothing changes when one cannot be made */
    for (i = 0; i < n; i++) {
        for (j = 0; j < w->ntowns; j++) {
            if (strcmp(w->towns[j]->id, ids[i]) == 0) {
                break;
            }
        }

        if (j == w->ntowns) {
            towns[i] = gchw_town_new(w, ids[i]);
            if (towns[i] == NULL) {
                while (i--) {
                    gchw_town_free(towns[i]);
                }
                free(towns);
                return -1;
            }
            gchb_log("info", "serving town \"%s\"", ids[i]);
        }
    }

    for (i = 0; i < n; i++) {
        for (j = 0; towns[i] == NULL && j < w->ntowns; j++) {
            if (w->towns[j] && strcmp(w->towns[j]->id, ids[i]) == 0) {
                towns[i] = w->towns[j];
                w->towns[j] = NULL;
            }
        }
    }

    for (j = 0; j < w->ntowns; j++) {
        if (w->towns[j]) {
            gchb_log("info", "town \"%s\" no longer served",
                     w->towns[j]->id);
            gchw_town_free(w->towns[j]);
        }
    }

    free(w->towns);
    w->towns = towns;
    w->ntowns = n;

    /* one turn blocks batch_wait_ms in all */
    for (i = 0; i < n; i++) {
        gchw_persist_wait(towns[i]->persist,
                          n > 1 ? (w->conf.batch_wait_ms + n - 1) / n : 0);
    }

    return 0;
}


/* The database's towns read again when their time has come. */
static void
gchw_towns_refresh(gchw_worker_t *w, int64_t now)
{
    int    n;
    char (*ids)[GCH_TOWN_ID_MAX + 1];

    if (w->pg == NULL || now < w->towns_at) {
        return;
    }

    w->towns_at = now + GCHW_TOWNS_EVERY;

    ids = malloc(GCHB_TOWNS_MAX * sizeof(*ids));
    if (ids == NULL) {
        return;
    }

    n = gchb_pg_towns(w->pg, ids, GCHB_TOWNS_MAX);

    if (n < 0) {
        if (PQstatus(w->pg) != CONNECTION_OK) {
            gchw_pg_lost(w, now);
        }

    } else if (n > 0) {
        if (gchw_towns_set(w, ids, n) == 0) {
            w->towns_read = 1;
        }
    }

    free(ids);
}


/* PostgreSQL when its retry time has come; the turn goes on without. */
static void
gchw_connect_pg(gchw_worker_t *w, int64_t now)
{
    if (w->pg != NULL || now < w->pg_retry) {
        return;
    }

    w->pg = gchb_pg_connect(&w->conf);
    w->pg_town[0] = '\0';
    if (w->pg == NULL) {
        w->pg_retry = now + w->backoff;
        gchw_backoff_more(w);
        w->pg_down_logged = 1;
        return;
    }

    gchb_log("info", "connected to postgres%s",
             w->pg_down_logged ? " again" : "");
    w->pg_down_logged = 0;
    w->backoff = GCHW_BACKOFF_MIN;
}


/* One batch of the stream into PostgreSQL (persist.c). */
static void
gchw_persist_step(gchw_worker_t *w)
{
    int  n;

    if (w->pg == NULL) {
        gchb_sleep_ms(w->ntowns > 1 ? w->conf.batch_wait_ms / w->ntowns + 1
                                    : w->conf.batch_wait_ms);
        return;
    }

    n = gchw_persist_round(w->persist, w->rc, w->pg);

    if (n == -2) {
        gchb_log("warn", "postgres failed: batch not persisted, "
                 "retrying in %d ms", w->backoff);
        gchw_pg_lost(w, gchb_now_ms());
        gchw_backoff_more(w);

    } else if (n == -1) {
        if (w->rc->err) {
            gchw_redis_lost(w);
        } else {
            gchb_sleep_ms(w->backoff);
        }

    } else {
        w->backoff = GCHW_BACKOFF_MIN;
    }
}


static void
gchw_signals(void)
{
    struct sigaction  sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = gchw_on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}


int
main(int argc, char **argv)
{
    int             ready, i;
    int64_t         now;
    const char     *file;
    gchw_town_t    *t;
    gchw_worker_t   w;

    gchb_log_init("guichet-worker");

    file = NULL;
    if (argc == 3 && strcmp(argv[1], "-c") == 0) {
        file = argv[2];

    } else if (argc != 1) {
        fprintf(stderr, "usage: guichet-worker [-c FILE]\n");
        return 2;
    }

    memset(&w, 0, sizeof(w));

    /* without -c: $GUICHET_CONF, else the checkout's var/worker.conf */
    w.file = gchb_conf_find(file);

    if (sodium_init() < 0 || gchb_conf_load(&w.conf, w.file) != 0) {
        return 1;
    }

    gchw_signals();

    /* the configured town until the database says which it holds */
    if (gchw_towns_set(&w, (char (*)[GCH_TOWN_ID_MAX + 1]) gchb_town, 1)
        != 0)
    {
        gchb_log("error", "out of memory");
        return 1;
    }

    gchb_log("info", "starting as consumer \"%s\" (%s)", w.conf.consumer,
             gchb_conf_note());

    w.backoff = GCHW_BACKOFF_MIN;
    ready = 0;

    while (!gchw_stop) {

        if (gchw_reload) {
            gchw_reload = 0;
            gchw_reload_settings(&w);
        }

        if (gchw_connect_redis(&w) != 0) {
            continue;
        }

        /* systemd's Type=notify (no-op without $NOTIFY_SOCKET): ready once
         * Redis answers; PostgreSQL may come later, bookings wait in the
         * stream meanwhile */
        if (!ready) {
            (void) sd_notify(0, "READY=1");
            ready = 1;
        }

        now = gchb_now_ms();
        gchw_connect_pg(&w, now);
        gchw_towns_refresh(&w, now);

        for (i = 0; i < w.ntowns && w.rc != NULL && !gchw_stop; i++) {
            t = w.towns[i];
            gchb_town_set(t->id);

            /* one town alone: its search_path set once per connection */
            if (w.pg != NULL && strcmp(w.pg_town, t->id) != 0) {
                switch (gchb_pg_town(w.pg, t->id)) {
                case 0:
                    snprintf(w.pg_town, sizeof(w.pg_town), "%s", t->id);
                    break;
                case 1:
                    w.pg_town[0] = '\0';
                    continue;       /* gone since read: dropped next time */
                default:
                    gchw_pg_lost(&w, now);
                }
            }

            /* once per town and process, before its first publication,
             * reaper or promoter turn: the on-site counters of the layout
             * before issue 20's fifth pass into the sessions' :left keys
             * (backend/migrate.c) */
            if (!t->counters_merged && gchb_now_ms() >= t->merge_at) {
                switch (gchb_merge_counters(w.rc, t->id, NULL)) {
                case 0:
                    t->counters_merged = 1;
                    break;
                case 1:
                    /* sessions a rush kept moving: again in 10 s, the
                     * town served meanwhile (its publisher shifts an
                     * unmerged session's old key, counters.c) */
                    t->merge_at = gchb_now_ms() + 10000;
                    break;
                default:
                    gchw_redis_lost(&w);
                }
                if (w.rc == NULL) {
                    break;
                }
            }

            w.persist = t->persist;
            w.reaper = t->reaper;
            w.invoiced = t->invoiced;

            if (gchw_tasks_run(&w, gchb_now_ms(), t->next) != 0) {
                break;
            }

            gchw_persist_step(&w);
        }
    }

    gchb_log("info", "stopping");
    (void) sd_notify(0, "STOPPING=1");

    if (w.rc) {
        redisFree(w.rc);
    }
    if (w.pg) {
        PQfinish(w.pg);
    }

    for (i = 0; i < w.ntowns; i++) {
        gchw_town_free(w.towns[i]);
    }
    free(w.towns);
    gchb_conf_free(&w.conf);

    return 0;
}
