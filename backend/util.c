/*
 * util.c -- logging, clocks, files, the token secret and the Redis
 * connection, shared by guichet-worker and guichetctl.
 *
 * Logs go to stderr, one line per event:
 *   2021-06-07T18:00:00.123Z [info] guichet-worker: message
 */

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "gchb.h"


static const char  *gchb_program = "guichet";


/* program must be a static string. */
void
gchb_log_init(const char *program)
{
    gchb_program = program;
}


/* See gchb.h. */
void
gchb_log(const char *level, const char *fmt, ...)
{
    char            msg[2048], stamp[32];
    va_list         ap;
    struct tm       tm;
    struct timeval  tv;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);

    fprintf(stderr, "%s.%03dZ [%s] %s: %s\n", stamp,
            (int) (tv.tv_usec / 1000), level, gchb_program, msg);
}


/* Wall clock in milliseconds (stream ids and heartbeats use it). */
int64_t
gchb_now_ms(void)
{
    struct timeval  tv;

    gettimeofday(&tv, NULL);

    return (int64_t) tv.tv_sec * 1000 + tv.tv_usec / 1000;
}


/* Sleeps ms milliseconds; a signal may cut it short. */
void
gchb_sleep_ms(int ms)
{
    struct timespec  ts;

    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (long) (ms % 1000) * 1000000;
    nanosleep(&ts, NULL);
}


/* See gchb.h. */
int
gchb_read_file(const char *path, char **out, size_t *len)
{
    FILE    *f;
    char    *buf, *nbuf;
    size_t   n, cap, r;

    f = fopen(path, "rb");
    if (f == NULL) {
        return -1;
    }

    cap = 65536;
    n = 0;
    buf = malloc(cap + 1);
    if (buf == NULL) {
        fclose(f);
        return -1;
    }

    while ((r = fread(buf + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) {
            cap *= 2;
            nbuf = realloc(buf, cap + 1);
            if (nbuf == NULL) {
                free(buf);
                fclose(f);
                errno = ENOMEM;
                return -1;
            }
            buf = nbuf;
        }
    }

    if (ferror(f)) {
        free(buf);
        fclose(f);
        errno = EIO;
        return -1;
    }

    fclose(f);
    buf[n] = '\0';
    *out = buf;
    *len = n;

    return 0;
}


/* See gchb.h. */
int
gchb_secret_read(const char *path, uint8_t secret[GCH_SECRET_LEN])
{
    char    *buf;
    size_t   len;
    int      rc;

    if (gchb_read_file(path, &buf, &len) != 0) {
        gchb_log("error", "cannot read secret file \"%s\": %s", path,
                 strerror(errno));
        return -1;
    }

    rc = -1;

    if (len == GCH_SECRET_LEN) {
        memcpy(secret, buf, GCH_SECRET_LEN);
        rc = 0;

    } else {
        while (len > 2 * GCH_SECRET_LEN
               && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
        {
            len--;
        }

        if (len == 2 * GCH_SECRET_LEN
            && sodium_hex2bin(secret, GCH_SECRET_LEN, buf, len, NULL, NULL,
                              NULL) == 0)
        {
            rc = 0;
        }
    }

    sodium_memzero(buf, len);
    free(buf);

    if (rc != 0) {
        gchb_log("error", "secret file \"%s\" must hold 64 hex characters "
                 "or 32 raw bytes", path);
    }

    return rc;
}


/* See gchb.h. */
int
gchb_secret_create(const char *path)
{
    int       fd;
    char      hex[2 * GCH_SECRET_LEN + 2];
    uint8_t   key[GCH_SECRET_LEN];
    ssize_t   n;

    randombytes_buf(key, sizeof(key));
    sodium_bin2hex(hex, sizeof(hex), key, sizeof(key));
    sodium_memzero(key, sizeof(key));
    hex[2 * GCH_SECRET_LEN] = '\n';

    fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0) {
        gchb_log("error", "cannot create secret file \"%s\": %s", path,
                 strerror(errno));
        return -1;
    }

    n = write(fd, hex, 2 * GCH_SECRET_LEN + 1);
    sodium_memzero(hex, sizeof(hex));

    if (n != 2 * GCH_SECRET_LEN + 1 || fsync(fd) != 0 || close(fd) != 0) {
        gchb_log("error", "cannot write secret file \"%s\": %s", path,
                 strerror(errno));
        unlink(path);
        return -1;
    }

    return 0;
}


/* See gchb.h. */
const char *
gchb_redis_name(const gchb_conf_t *conf)
{
    if (conf->redis_cluster != NULL && conf->redis_cluster[0]) {
        return conf->redis_cluster;
    }

    return conf->redis;
}


/* Connects and authenticates; NULL after logging. */
static redisContext *
gchb_redis_open(const gchb_conf_t *conf)
{
    int              port;
    char             host[256], *colon;
    redisReply      *r;
    redisContext    *rc;
    struct timeval   tv = { 2, 0 };

    if (conf->redis_cluster != NULL && conf->redis_cluster[0]) {
        rc = gchb_cluster_open(conf);
        if (rc == NULL) {
            return NULL;
        }
        /* the routing thread authenticates each node itself */
        tv.tv_sec = 10;
        redisSetTimeout(rc, tv);
        return rc;
    }

    if (strncmp(conf->redis, "unix:", 5) == 0) {
        rc = redisConnectUnixWithTimeout(conf->redis + 5, tv);

    } else {
        snprintf(host, sizeof(host), "%s", conf->redis);
        colon = strrchr(host, ':');
        port = 6379;
        if (colon) {
            *colon = '\0';
            port = atoi(colon + 1);
        }
        rc = redisConnectWithTimeout(host, port, tv);
    }

    if (rc == NULL || rc->err) {
        gchb_log("error", "cannot connect to redis \"%s\": %s (%s)",
                 conf->redis, rc ? rc->errstr : "out of memory",
                 gchb_conf_note());
        if (rc) {
            redisFree(rc);
        }
        return NULL;
    }

    /* commands may block up to batch_wait_ms; allow for slow replies */
    tv.tv_sec = 10;
    redisSetTimeout(rc, tv);

    if (conf->redis_password && conf->redis_password[0]) {
        r = redisCommand(rc, "AUTH %s", conf->redis_password);
        if (r == NULL || r->type == REDIS_REPLY_ERROR) {
            gchb_log("error", "redis AUTH failed: %s (%s)",
                     r ? r->str : rc->errstr, gchb_conf_note());
            if (r) {
                freeReplyObject(r);
            }
            redisFree(rc);
            return NULL;
        }
        freeReplyObject(r);
    }

    return rc;
}


/*
 * Whether Redis answers commands yet: after a restart it reads its AOF or
 * RDB and answers every data command "-LOADING Redis is loading the
 * dataset in memory" meanwhile (INFO and AUTH still work).  1 while it
 * loads (*perc: loading_loaded_perc of INFO persistence, -1 unknown), 0
 * when it answers, -1 after logging another error.
 */
static int
gchb_redis_loading(redisContext *rc, const gchb_conf_t *conf, int *perc)
{
    char        *p;
    redisReply  *r;

    *perc = -1;

    r = redisCommand(rc, "PING");
    if (r == NULL) {
        gchb_log("error", "redis \"%s\": %s (%s)", gchb_redis_name(conf),
                 rc->errstr, gchb_conf_note());
        return -1;
    }

    if (r->type != REDIS_REPLY_ERROR) {
        freeReplyObject(r);
        return 0;
    }

    if (strncmp(r->str, "LOADING", 7) != 0) {
        gchb_log("error", "redis \"%s\": %s (%s)", gchb_redis_name(conf),
                 r->str, gchb_conf_note());
        freeReplyObject(r);
        return -1;
    }

    freeReplyObject(r);

    r = redisCommand(rc, "INFO persistence");
    if (r != NULL && r->type == REDIS_REPLY_STRING) {
        p = strstr(r->str, "loading_loaded_perc:");
        if (p != NULL) {
            *perc = atoi(p + sizeof("loading_loaded_perc:") - 1);
        }
    }
    if (r != NULL) {
        freeReplyObject(r);
    }

    return 1;
}


/*
 * See gchb.h.  A Redis that is loading its data is "not yet": NULL, and
 * the caller retries as it does when Redis is down; that is logged once
 * every 10 s at most, not at every attempt.
 */
redisContext *
gchb_redis_connect(const gchb_conf_t *conf)
{
    int              perc, st;
    int64_t          now;
    redisContext    *rc;
    static int64_t   logged;

    rc = gchb_redis_open(conf);
    if (rc == NULL) {
        return NULL;
    }

    st = gchb_redis_loading(rc, conf, &perc);
    if (st == 0) {
        return rc;
    }

    if (st == 1) {
        now = gchb_now_ms();
        if (logged == 0 || now - logged >= 10000) {
            logged = now;
            gchb_log("info", "redis \"%s\" is loading its data (%d%%): "
                     "not yet, retrying", gchb_redis_name(conf),
                     perc < 0 ? 0 : perc);
        }
    }

    redisFree(rc);
    return NULL;
}


/* See gchb.h. */
redisContext *
gchb_redis_connect_wait(const gchb_conf_t *conf)
{
    int             perc, st, tty, shown;
    int64_t         now, printed;
    redisContext   *rc;

    rc = gchb_redis_open(conf);
    if (rc == NULL) {
        return NULL;
    }

    tty = isatty(STDERR_FILENO);
    shown = 0;
    printed = 0;

    while ((st = gchb_redis_loading(rc, conf, &perc)) == 1) {
        now = gchb_now_ms();

        if (tty) {
            fprintf(stderr, "\r%s: redis \"%s\" is loading its data: "
                    "%3d%%, waiting", gchb_program, gchb_redis_name(conf),
                    perc < 0 ? 0 : perc);
            shown = 1;

        } else if (printed == 0 || now - printed >= 30000) {
            fprintf(stderr, "%s: redis \"%s\" is loading its data (%d%%): "
                    "waiting\n", gchb_program, gchb_redis_name(conf),
                    perc < 0 ? 0 : perc);
            printed = now;
        }

        fflush(stderr);
        gchb_sleep_ms(200);
    }

    if (shown) {
        fprintf(stderr, "\r%s: redis \"%s\" is loading its data: "
                "%s\n", gchb_program, gchb_redis_name(conf),
                st == 0 ? "done         " : "failed       ");
    }

    if (st != 0) {
        redisFree(rc);
        return NULL;
    }

    return rc;
}
