/*
 * main.c -- guichet-worker, the daemon between Redis and PostgreSQL.
 *
 *   guichet-worker [-c FILE]
 *
 * One thread, one loop: persist a batch of the stream gch:bookings
 * (persist.c), and on their own clocks write the heartbeat
 * (heartbeat_ms), reap orphan attempts and trim the stream (every
 * second, reaper.c, persist.c), check the publication
 * (publish_interval_ms, publish.c), send the e-mail outbox (every second,
 * mail.c) and, on invoice_day, invoice the previous month (invoice.c).  PostgreSQL
 * errors are retried with a backoff from 100 ms doubling to 5 s; nothing
 * is acknowledged that is not committed.  SIGTERM/SIGINT: finish the batch
 * and exit 0.  SIGHUP: re-read the settings file.
 */

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "gchw.h"


#define GCHW_BACKOFF_MIN   100
#define GCHW_BACKOFF_MAX   5000


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
gchw_heartbeat(redisContext *rc, int pg_ok)
{
    char         buf[192];
    int64_t      lag;
    long long    dead;
    redisReply  *r;

    lag = gchw_persist_lag(rc);
    dead = gchw_persist_dead(rc);
    snprintf(buf, sizeof(buf),
             "{\"at_ms\":%lld,\"postgres\":\"%s\",\"lag_ms\":%lld,"
             "\"dead\":%lld}",
             (long long) gchb_now_ms(), pg_ok ? "ok" : "down",
             (long long) (lag < 0 ? 0 : lag), dead < 0 ? 0 : dead);

    r = redisCommand(rc, "SET gch:worker:heartbeat %s EX 5", buf);
    if (r) {
        freeReplyObject(r);
    }
}


int
main(int argc, char **argv)
{
    int                n, backoff, pg_down_logged;
    int64_t            now, next_beat, next_reap, next_publish, pg_retry;
    int64_t            next_mail, next_invoice;
    char               invoiced[8];
    const char        *file;
    PGconn            *pg;
    gchb_conf_t        conf, fresh;
    redisContext      *rc;
    gchw_reaper_t     *reaper;
    gchw_persist_t    *persist;
    struct sigaction   sa;

    gchb_log_init("guichet-worker");

    file = NULL;
    if (argc == 3 && strcmp(argv[1], "-c") == 0) {
        file = argv[2];

    } else if (argc != 1) {
        fprintf(stderr, "usage: guichet-worker [-c FILE]\n");
        return 2;
    }

    /* without -c: $GUICHET_CONF, else the checkout's var/worker.conf */
    file = gchb_conf_find(file);

    if (sodium_init() < 0 || gchb_conf_load(&conf, file) != 0) {
        return 1;
    }

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = gchw_on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    persist = gchw_persist_new(&conf);
    reaper = gchw_reaper_new();
    if (persist == NULL || reaper == NULL) {
        gchb_log("error", "out of memory");
        return 1;
    }

    gchb_log("info", "starting as consumer \"%s\" (%s)", conf.consumer,
             gchb_conf_note());

    rc = NULL;
    pg = NULL;
    backoff = GCHW_BACKOFF_MIN;
    pg_retry = 0;
    pg_down_logged = 0;
    next_beat = next_reap = next_publish = 0;
    next_mail = next_invoice = 0;
    invoiced[0] = '\0';

    while (!gchw_stop) {

        if (gchw_reload) {
            gchw_reload = 0;
            if (gchb_conf_load(&fresh, file) == 0) {
                /* keep the consumer name: our pending entries are ours */
                free(fresh.consumer);
                fresh.consumer = conf.consumer;
                conf.consumer = NULL;
                gchb_conf_free(&conf);
                conf = fresh;
                gchb_log("info", "settings reloaded");
                if (rc) {
                    redisFree(rc);
                    rc = NULL;
                }
                if (pg) {
                    PQfinish(pg);
                    pg = NULL;
                }
            }
        }

        if (rc == NULL) {
            rc = gchb_redis_connect(&conf);
            if (rc == NULL || gchw_persist_group(rc) != 0) {
                if (rc) {
                    redisFree(rc);
                    rc = NULL;
                }
                gchb_sleep_ms(backoff);
                backoff = backoff * 2 > GCHW_BACKOFF_MAX
                          ? GCHW_BACKOFF_MAX : backoff * 2;
                continue;
            }
            gchb_log("info", "connected to redis %s", conf.redis);
            gchw_persist_reread(persist);
            backoff = GCHW_BACKOFF_MIN;
        }

        now = gchb_now_ms();

        if (pg == NULL && now >= pg_retry) {
            pg = gchb_pg_connect(&conf);
            if (pg == NULL) {
                pg_retry = now + backoff;
                backoff = backoff * 2 > GCHW_BACKOFF_MAX
                          ? GCHW_BACKOFF_MAX : backoff * 2;
                pg_down_logged = 1;

            } else {
                gchb_log("info", "connected to postgres%s",
                         pg_down_logged ? " again" : "");
                pg_down_logged = 0;
                backoff = GCHW_BACKOFF_MIN;
            }
        }

        if (now >= next_beat) {
            gchw_heartbeat(rc, pg != NULL);
            next_beat = now + conf.heartbeat_ms;
        }

        if (rc->err) {
            redisFree(rc);
            rc = NULL;
            continue;
        }

        if (now >= next_reap) {
            if (gchw_reap(reaper, rc, now, conf.reap_after_ms,
                          conf.recount_after_ms) < 0
                && rc->err)
            {
                redisFree(rc);
                rc = NULL;
                continue;
            }
            gchw_persist_trim(rc, conf.stream_keep_ms);
            (void) gchw_release_onsite(reaper, rc, now);
            next_reap = now + 1000;
        }

        if (pg && now >= next_publish) {
            if (gchw_publish_check(pg, rc) != 0
                && PQstatus(pg) != CONNECTION_OK)
            {
                PQfinish(pg);
                pg = NULL;
                pg_retry = now + backoff;
                continue;
            }
            next_publish = now + conf.publish_interval_ms;
        }

        if (pg && now >= next_mail) {
            next_mail = now + 1000;
            if (gchw_mail_send(pg, &conf, 50) < 0
                && PQstatus(pg) != CONNECTION_OK)
            {
                PQfinish(pg);
                pg = NULL;
                pg_retry = now + backoff;
                continue;
            }
        }

        if (pg && conf.invoice_day && now >= next_invoice) {
            next_invoice = now + 10000;
            if (gchb_invoice_schedule(pg, rc, &conf, invoiced) < 0
                && PQstatus(pg) != CONNECTION_OK)
            {
                PQfinish(pg);
                pg = NULL;
                pg_retry = now + backoff;
                continue;
            }
        }

        if (pg == NULL) {
            gchb_sleep_ms(conf.batch_wait_ms);
            continue;
        }

        n = gchw_persist_round(persist, rc, pg);

        if (n == -2) {
            gchb_log("warn", "postgres failed: batch kept pending, "
                     "retrying in %d ms", backoff);
            PQfinish(pg);
            pg = NULL;
            pg_retry = gchb_now_ms() + backoff;
            backoff = backoff * 2 > GCHW_BACKOFF_MAX
                      ? GCHW_BACKOFF_MAX : backoff * 2;

        } else if (n == -1) {
            if (rc->err) {
                redisFree(rc);
                rc = NULL;
            } else {
                gchb_sleep_ms(backoff);
            }

        } else {
            backoff = GCHW_BACKOFF_MIN;
        }
    }

    gchb_log("info", "stopping");

    if (rc) {
        redisFree(rc);
    }
    if (pg) {
        PQfinish(pg);
    }

    gchw_persist_free(persist);
    gchw_reaper_free(reaper);
    gchb_conf_free(&conf);

    return 0;
}
