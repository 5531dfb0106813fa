/*
 * main.c -- guichet-office, the family space and the back office.
 *
 *   guichet-office [-c FILE]
 *
 * Reads guichet-worker's settings file (the office_* keys and the shared
 * redis, postgres, secret_file), starts the HTTP server (http.c) and waits
 * for SIGTERM/SIGINT; SIGHUP is ignored (restart to re-read the
 * settings: the office keeps no state between requests).
 */

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "office.h"


gcho_ctx_t  gcho_ctx;


static void
gcho_usage(void)
{
    fprintf(stderr, "usage: guichet-office [-c FILE]\n");
}


int
main(int argc, char **argv)
{
    int       opt, sig;
    sigset_t  set;

    gchw_log_init("guichet-office");

    while ((opt = getopt(argc, argv, "c:h")) != -1) {
        switch (opt) {
        case 'c':
            gcho_ctx.conf_file = optarg;
            break;
        default:
            gcho_usage();
            return 2;
        }
    }

    if (optind != argc) {
        gcho_usage();
        return 2;
    }

    if (sodium_init() < 0) {
        gchw_log("error", "libsodium cannot start");
        return 1;
    }

    /* without -c: $GUICHET_CONF, else the checkout's var/worker.conf */
    gcho_ctx.conf_file = gchw_conf_find(gcho_ctx.conf_file);

    if (gchw_conf_load(&gcho_ctx.conf, gcho_ctx.conf_file) != 0
        || gchw_secret_read(gcho_ctx.conf.secret_file, gcho_ctx.secret) != 0)
    {
        return 1;
    }

    if (mkdir(gcho_ctx.conf.office_upload_dir, 0700) != 0
        && errno != EEXIST)
    {
        gchw_log("error", "office_upload_dir %s: %s",
                 gcho_ctx.conf.office_upload_dir, strerror(errno));
        return 1;
    }

    /* every signal is taken here, by sigwait; the server's thread
     * inherits the mask */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    /* PostgreSQL and Redis are connected lazily and again after a
     * failure: the office starts even when they are down (503 meanwhile) */
    if (gcho_http_start() != 0) {
        return 1;
    }

    for ( ;; ) {
        if (sigwait(&set, &sig) != 0) {
            continue;
        }
        if (sig == SIGTERM || sig == SIGINT) {
            break;
        }
    }

    gchw_log("info", "office: stopping");
    gcho_http_stop();

    if (gcho_ctx.pg != NULL) {
        PQfinish(gcho_ctx.pg);
    }
    if (gcho_ctx.redis != NULL) {
        redisFree(gcho_ctx.redis);
    }
    gchw_conf_free(&gcho_ctx.conf);

    return 0;
}
