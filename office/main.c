/*
 * main.c -- guichet-office, the family space and the back office.
 *
 *   guichet-office [-c FILE]
 *
 * Reads guichet-worker's settings file (the office_* keys and the shared
 * redis, postgres, secret_file), starts the HTTP server (http.c) and waits
 * for SIGTERM/SIGINT; SIGHUP is ignored (restart to re-read the
 * settings: the office keeps no state between requests); SIGUSR1 logs
 * the counters of password hashes (hash.c).  Under systemd (Type=notify,
 * debian/guichet.guichet-office.service) it says READY=1 once it serves
 * its socket.
 *
 * The payment provider's address (payfip_url) must be https, except on a
 * loopback address (127.0.0.0/8, [::1], localhost: the simulator of dev
 * and tests): otherwise the office refuses to start.
 */

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <arpa/inet.h>

#include <sodium.h>
#include <systemd/sd-daemon.h>

#include "office.h"


gcho_ctx_t  gcho_ctx;


/* 1 when host (of a URL, without port; "[::1]" bracketed) is loopback. */
static int
gcho_loopback(const char *host, size_t len)
{
    char             h[64];
    struct in_addr   a4;
    struct in6_addr  a6;

    if (len == 0 || len >= sizeof(h)) {
        return 0;
    }

    memcpy(h, host, len);
    h[len] = '\0';

    if (strcasecmp(h, "localhost") == 0) {
        return 1;
    }

    if (inet_pton(AF_INET, h, &a4) == 1) {
        return (ntohl(a4.s_addr) >> 24) == 127;
    }

    if (len > 2 && h[0] == '[' && h[len - 1] == ']') {
        h[len - 1] = '\0';
        return inet_pton(AF_INET6, h + 1, &a6) == 1
               && IN6_IS_ADDR_LOOPBACK(&a6);
    }

    return 0;
}


/*
 * payfip_url: https://..., or http:// on a loopback address only (dev and
 * tests run the simulator there); anything else would send the payment
 * operations in clear.  0, or -1 after logging.
 */
static int
gcho_payfip_url_ok(const char *url)
{
    size_t       n;
    const char  *host;

    if (strncasecmp(url, "https://", 8) == 0 && url[8] != '\0') {
        return 0;
    }

    if (strncasecmp(url, "http://", 7) == 0) {
        host = url + 7;
        if (host[0] == '[') {
            n = strcspn(host, "]");
            n += host[n] == ']';
        } else {
            n = strcspn(host, ":/");
        }
        if (gcho_loopback(host, n)) {
            return 0;
        }
    }

    gchb_log("error", "payfip_url must be https (plain http only on a "
             "loopback address, for the simulator): \"%s\"", url);
    return -1;
}


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

    gchb_log_init("guichet-office");

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
        gchb_log("error", "libsodium cannot start");
        return 1;
    }

    /* without -c: $GUICHET_CONF, else the checkout's var/worker.conf */
    gcho_ctx.conf_file = gchb_conf_find(gcho_ctx.conf_file);

    if (gchb_conf_load(&gcho_ctx.conf, gcho_ctx.conf_file) != 0
        || gchb_secret_read(gcho_ctx.conf.secret_file, gcho_ctx.secret) != 0
        || gcho_payfip_url_ok(gcho_ctx.conf.payfip_url) != 0)
    {
        return 1;
    }

    if (mkdir(gcho_ctx.conf.office_upload_dir, 0700) != 0
        && errno != EEXIST)
    {
        gchb_log("error", "office_upload_dir %s: %s",
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
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    /* PostgreSQL and Redis are connected lazily and again after a
     * failure: the office starts even when they are down (503 meanwhile) */
    if (gcho_http_start() != 0) {
        return 1;
    }

    /* systemd's Type=notify (no-op without $NOTIFY_SOCKET): the socket is
     * bound and served, nginx may pass requests */
    (void) sd_notify(0, "READY=1");

    for ( ;; ) {
        if (sigwait(&set, &sig) != 0) {
            continue;
        }
        if (sig == SIGTERM || sig == SIGINT) {
            break;
        }
        if (sig == SIGUSR1) {
            gcho_hash_log_counters();
        }
    }

    gchb_log("info", "office: stopping");
    (void) sd_notify(0, "STOPPING=1");
    gcho_http_stop();

    if (gcho_ctx.pg != NULL) {
        PQfinish(gcho_ctx.pg);
    }
    if (gcho_ctx.redis != NULL) {
        redisFree(gcho_ctx.redis);
    }
    gchb_conf_free(&gcho_ctx.conf);

    return 0;
}
