/*
 * rush.c -- the opening-day rush client: epoll, non-blocking sockets,
 * HTTP/1.1 keep-alive, N connections to one loopback port.
 *
 * A load generator, not the product.  It sends POST requests with bearer
 * tokens and unique Idempotency-Keys, retries 503/409/429 and timeouts with
 * the same key and body (bounded), records every final answer and prints
 * throughput and latency percentiles per second and overall.
 *
 * Modes (one of):
 *   --rush FILE      replay a gen_town.py workload, one request a line:
 *                    "<family_id>\t<ncells>\t<kind>\t<body>", each once.
 *   --grid FAMILIES SESSIONS
 *                    request i books --cells consecutive sessions of
 *                    SESSIONS for --kids children of one family of
 *                    FAMILIES ("<fid> <cid> [<cid>...]" lines), never the
 *                    same (child, session) twice while i stays below
 *                    families x (sessions / cells); --offset skips requests
 *                    already sent by an earlier run.
 *   --fixed BODYFILE the same body every time (the ceiling: nginx
 *                    `return 200` at --path with the same headers).
 *
 * --rate R: open loop.  Request i is due at start + i / R seconds whatever
 * the answers before it (a closed loop, like wrk, sends the next request
 * only once a connection is free: a slow server slows the client and hides
 * its own queueing, "coordinated omission").  A due request waits for an
 * idle connection if none is free, and its latency is measured from the
 * time it was due, not from its send: the waiting counts.  --conns is then
 * a pool (take several times rate x expected latency).  The summary adds
 * "open_loop": the offered rate, how many requests were sent late and the
 * p99 of that lateness.  The client sleeps until the next due time
 * (epoll_pwait2), but never less than RUSH_TICK_US: with epoll_wait's 1 ms
 * it sent requests in bursts each tick, up to a tick late (lateness p50
 * 0.48-0.50 ms against nginx's `return 200` at 8,626/s, 0.12-0.18 ms
 * since); a wake-up for every request (0.07 ms) took 3.3 times the CPU
 * per answer, 200 us 1.5-2.2 times.
 *
 * --resubmit N: an answer whose every cell is refused not_open_yet is
 * followed, --resubmit-ms later, by the same cells as a new request (key
 * "<prefix>-<i>-<n>"), at most N times: families who came too early try
 * again.  Retries and resubmissions share one FIFO queue (a later due time
 * may wait behind an earlier one: a few ms at most).
 *
 * Output: --log FILE, one JSON line per request (k key, f family, i index,
 * a attempts, s final status, t ms since start (the summary's
 * t0_monotonic_us, CLOCK_MONOTONIC), us last attempt latency,
 * tot first send to answer, n cells, c confirmed, r refused, b the answer
 * body, embedded when it is a JSON object, else a string); --series FILE,
 * one line a second; --summary FILE, one JSON object.  Every loop is
 * bounded: by --requests, --duration, the workload's size, --retries and
 * --timeout-ms.  Only 127.0.0.1 is ever connected to.
 *
 * Build: cc -O2 -Wall -Wextra -Werror -o rush rush.c
 */

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>


#define RUSH_MAX_CONNS   8192
#define RUSH_TICK_US     200     /* open loop: the shortest sleep */
#define RUSH_RBUF        (64 * 1024)
#define RUSH_MAX_RESP    (4 * 1024 * 1024)
#define RUSH_NREASONS    16


typedef struct {
    char      *fid;
    char      *body;
    int        ncells;
} rush_job_t;

typedef struct {
    char      *fid;
    char     **cids;
    int        ncids;
    char        *body;      /* its grid body, when it has one block */
} rush_family_t;

typedef struct {
    int64_t    job;
    int        attempt;
    int        resub;           /* resubmissions after not_open_yet */
    int64_t    first_us;        /* first send of this request */
    int64_t    due_us;          /* retries: not before */
} rush_task_t;

typedef struct {
    int          fd;
    int          state;         /* 0 idle, 1 connecting, 2 busy */
    rush_task_t  task;
    char        *req;
    size_t       req_len;
    size_t       req_off;
    char        *resp;
    size_t       resp_len;
    size_t       resp_cap;
    int64_t      sent_us;
    int          reconnect;
} rush_conn_t;

typedef struct {
    uint32_t   sec;
    uint32_t   us;
} rush_lat_t;

typedef struct {
    uint64_t   answers;
    uint64_t   ok;
    uint64_t   confirmed;
    uint64_t   refused;
    uint64_t   errors;
} rush_sec_t;


/* settings */
static int          port = 0;
static int          nconns = 64;
static double       duration = 0;
static int64_t      max_requests = -1;
static int64_t      offset = 0;
static int          retries = 8;
static int          timeout_ms = 10000;
static int          cells = 1;
static int          kids = 1;
static int64_t      start_at_ms = 0;
static const char  *path = "/api/bookings";
static const char  *prefix = "r";
static const char  *mode = NULL;
static int          quiet = 0;
static int          resubmit = 0;
static int          resubmit_ms = 250;
static double       rate = 0;           /* open loop: requests a second */

/* workload */
static rush_job_t     *jobs;
static int64_t         njobs;
static rush_family_t  *fams;
static int64_t         nfams;
static char          **sessions;
static int64_t         nsessions;
static char           *fixed_body;
static char          **tok_fid;
static char          **tok_val;
static size_t          tok_cap;

/* progress */
static int64_t       next_job;
static rush_task_t  *retry_q;
static size_t        retry_head, retry_tail, retry_cap;
static int64_t       t0_us;
static FILE         *logf;
static rush_lat_t   *lats;
static size_t        nlats, lats_cap;
static rush_sec_t   *secs;
static size_t        nsecs;
static uint64_t      n_status[600];
static uint64_t      n_answers, n_attempts, n_retries, n_timeouts, n_conn_err;
static uint64_t      n_confirmed, n_refused, n_cells_sent, n_resubmits;
static uint64_t      n_reason[RUSH_NREASONS];
static char          reason_name[RUSH_NREASONS][32];
static int64_t       last_answer_us, first_send_us = -1;
static uint32_t     *lateness;          /* open loop: send - due, us */
static size_t        nlate, late_cap;
static uint64_t      n_late;            /* sent more than 1 ms after due */


static void
die(const char *fmt, ...)
{
    va_list  ap;

    va_start(ap, fmt);
    fprintf(stderr, "rush: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(2);
}


static void *
xmalloc(size_t n)
{
    void  *p = malloc(n ? n : 1);

    if (p == NULL) {
        die("out of memory");
    }
    return p;
}


static void *
xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (p == NULL) {
        die("out of memory");
    }
    return p;
}


static int64_t
now_us(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}


static int64_t
wall_ms(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


static char *
slurp(const char *file, size_t *len)
{
    FILE    *f;
    char    *buf;
    long     n;

    f = fopen(file, "rb");
    if (f == NULL) {
        die("%s: %s", file, strerror(errno));
    }
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = xmalloc((size_t) n + 1);
    if (n > 0 && fread(buf, 1, (size_t) n, f) != (size_t) n) {
        die("%s: short read", file);
    }
    buf[n] = '\0';
    fclose(f);
    if (len) {
        *len = (size_t) n;
    }
    return buf;
}


/* Split buf in place into lines; returns the count, *out the lines. */
static int64_t
lines(char *buf, char ***out)
{
    int64_t   n = 0, cap = 1024;
    char    **v = xmalloc(sizeof(char *) * cap);
    char     *p = buf, *e;

    while (*p) {
        e = strchr(p, '\n');
        if (e) {
            *e = '\0';
        }
        if (*p && *p != '#') {
            if (n == cap) {
                cap *= 2;
                v = xrealloc(v, sizeof(char *) * cap);
            }
            v[n++] = p;
        }
        if (e == NULL) {
            break;
        }
        p = e + 1;
    }
    *out = v;
    return n;
}


static uint64_t
hash(const char *s)
{
    uint64_t  h = 1469598103934665603ULL;

    while (*s) {
        h = (h ^ (unsigned char) *s++) * 1099511628211ULL;
    }
    return h;
}


static void
load_tokens(const char *file)
{
    char     *buf, **ls, *sp;
    int64_t   n, i;
    size_t    j;

    buf = slurp(file, NULL);
    n = lines(buf, &ls);
    tok_cap = 16;
    while (tok_cap < (size_t) n * 2) {
        tok_cap *= 2;
    }
    tok_fid = calloc(tok_cap, sizeof(char *));
    tok_val = calloc(tok_cap, sizeof(char *));
    if (tok_fid == NULL || tok_val == NULL) {
        die("out of memory");
    }
    for (i = 0; i < n; i++) {
        sp = strchr(ls[i], ' ');
        if (sp == NULL) {
            die("%s:%ld: expected \"family_id token\"", file, (long) i + 1);
        }
        *sp = '\0';
        j = hash(ls[i]) & (tok_cap - 1);
        while (tok_fid[j] && strcmp(tok_fid[j], ls[i]) != 0) {
            j = (j + 1) & (tok_cap - 1);
        }
        tok_fid[j] = ls[i];
        tok_val[j] = sp + 1;
    }
    if (n == 0) {
        die("%s: no token", file);
    }
    free(ls);
}


static const char *
token_of(const char *fid)
{
    size_t  j;

    if (tok_cap == 0) {
        return NULL;
    }
    j = hash(fid) & (tok_cap - 1);
    while (tok_fid[j]) {
        if (strcmp(tok_fid[j], fid) == 0) {
            return tok_val[j];
        }
        j = (j + 1) & (tok_cap - 1);
    }
    return NULL;
}


static const char *
any_token(const char **fid)
{
    size_t  j;

    for (j = 0; j < tok_cap; j++) {
        if (tok_fid[j]) {
            *fid = tok_fid[j];
            return tok_val[j];
        }
    }
    return NULL;
}


static void
load_rush(const char *file)
{
    char     *buf, **ls, *t1, *t2, *t3;
    int64_t   i;

    buf = slurp(file, NULL);
    njobs = lines(buf, &ls);
    jobs = xmalloc(sizeof(rush_job_t) * (size_t) (njobs ? njobs : 1));
    for (i = 0; i < njobs; i++) {
        t1 = strchr(ls[i], '\t');
        t2 = t1 ? strchr(t1 + 1, '\t') : NULL;
        t3 = t2 ? strchr(t2 + 1, '\t') : NULL;
        if (t3 == NULL) {
            die("%s:%ld: expected 4 tab-separated fields", file, (long) i + 1);
        }
        *t1 = '\0';
        jobs[i].fid = ls[i];
        jobs[i].ncells = atoi(t1 + 1);
        jobs[i].body = t3 + 1;
    }
    free(ls);
}


static void
load_grid(const char *ffile, const char *sfile)
{
    char     *buf, **ls, *p;
    int64_t   i, n;

    buf = slurp(ffile, NULL);
    n = lines(buf, &ls);
    fams = xmalloc(sizeof(rush_family_t) * (size_t) (n ? n : 1));
    nfams = 0;
    for (i = 0; i < n; i++) {
        rush_family_t  *f = &fams[nfams];
        int             cap = 4;

        f->cids = xmalloc(sizeof(char *) * cap);
        f->ncids = 0;
        f->body = NULL;
        f->fid = strtok_r(ls[i], " ", &p);
        for (;;) {
            char  *c = strtok_r(NULL, " ", &p);

            if (c == NULL) {
                break;
            }
            if (f->ncids == cap) {
                cap *= 2;
                f->cids = xrealloc(f->cids, sizeof(char *) * cap);
            }
            f->cids[f->ncids++] = c;
        }
        if (f->fid && f->ncids >= kids) {
            nfams++;        /* only families with enough children */
        }
    }
    free(ls);
    buf = slurp(sfile, NULL);
    nsessions = lines(buf, &sessions);
    if (nfams == 0 || nsessions < cells) {
        die("grid: %ld families with %d children, %ld sessions for %d cells",
            (long) nfams, kids, (long) nsessions, cells);
    }
}


/* The Idempotency-Key of a task: unique per request, the same for its
 * retries; a resubmission after not_open_yet is a new request. */
static void
task_key(const rush_task_t *t, char *buf, size_t n)
{
    if (t->resub == 0) {
        snprintf(buf, n, "%s-%ld", prefix, (long) (t->job + offset));
    } else {
        snprintf(buf, n, "%s-%ld-%d", prefix, (long) (t->job + offset),
                 t->resub);
    }
}


/* Build request text for a task into c->req; returns the cells count. */
static int
build(rush_conn_t *c, const rush_task_t *t)
{
    int64_t      job = t->job;
    char         key[80];
    const char  *fid = NULL, *tok, *body = NULL;
    char        *gbody = NULL;
    size_t       blen, cap;
    int          n = 1;

    if (strcmp(mode, "rush") == 0) {
        fid = jobs[job].fid;
        body = jobs[job].body;
        n = jobs[job].ncells;
    } else if (strcmp(mode, "grid") == 0) {
        int64_t         k = job + offset;
        int64_t         blocks = nsessions / cells;
        rush_family_t  *f = &fams[k % nfams];
        int64_t         b = (k / nfams) % blocks;
        int             i, j;
        size_t          off = 0;

        fid = f->fid;
        n = cells * kids;
        if (f->body != NULL) {
            /* one block (the sold-out session): the family's body is
             * always the same, formatted once */
            body = f->body;
            goto formatted;
        }
        cap = 64 + (size_t) cells * kids * 160;
        gbody = xmalloc(cap);
        off += snprintf(gbody + off, cap - off, "{\"items\":[");
        for (j = 0; j < kids; j++) {
            for (i = 0; i < cells; i++) {
                off += snprintf(gbody + off, cap - off,
                    "%s{\"child_id\":\"%s\",\"session_id\":\"%s\"}",
                    (i || j) ? "," : "", f->cids[j],
                    sessions[b * cells + i]);
            }
        }
        snprintf(gbody + off, cap - off, "]}");
        body = gbody;
        if (blocks == 1) {
            f->body = gbody;
            gbody = NULL;
        }
    } else {
        tok = any_token(&fid);
        (void) tok;
        body = fixed_body;
        n = 1;
    }
formatted:
    tok = token_of(fid);
    if (tok == NULL) {
        die("no token for family %s", fid);
    }
    task_key(t, key, sizeof(key));
    blen = strlen(body);
    cap = blen + strlen(tok) + strlen(path) + 512;
    if (c->req == NULL || c->req_len < cap) {
        free(c->req);
        c->req = xmalloc(cap);
        c->req_len = cap;
    }
    c->req_len = snprintf(c->req, cap,
        "POST %s HTTP/1.1\r\n"
        "Host: 127.0.0.1:%d\r\n"
        "Authorization: Bearer %s\r\n"
        "Content-Type: application/json\r\n"
        "Idempotency-Key: %s\r\n"
        "Content-Length: %zu\r\n"
        "\r\n%s", path, port, tok, key, blen, body);
    free(gbody);
    return n;
}


static const char *
job_fid(int64_t job)
{
    const char  *fid = NULL;

    if (strcmp(mode, "rush") == 0) {
        return jobs[job].fid;
    }
    if (strcmp(mode, "grid") == 0) {
        return fams[(job + offset) % nfams].fid;
    }
    any_token(&fid);
    return fid;
}


static int
job_cells(int64_t job)
{
    if (strcmp(mode, "rush") == 0) {
        return jobs[job].ncells;
    }
    if (strcmp(mode, "grid") == 0) {
        return cells * kids;
    }
    return 1;
}


static void
retry_push(rush_task_t *t)
{
    if (retry_tail - retry_head == retry_cap) {
        size_t        ncap = retry_cap ? retry_cap * 2 : 1024, i;
        rush_task_t  *nq = xmalloc(sizeof(rush_task_t) * ncap);

        for (i = 0; i < retry_tail - retry_head; i++) {
            nq[i] = retry_q[(retry_head + i) % (retry_cap ? retry_cap : 1)];
        }
        free(retry_q);
        retry_q = nq;
        retry_tail -= retry_head;
        retry_head = 0;
        retry_cap = ncap;
    }
    retry_q[retry_tail % retry_cap] = *t;
    retry_tail++;
}


static void
sec_grow(size_t s)
{
    if (s >= nsecs) {
        size_t  n = s + 64;

        secs = xrealloc(secs, sizeof(rush_sec_t) * n);
        memset(secs + nsecs, 0, sizeof(rush_sec_t) * (n - nsecs));
        nsecs = n;
    }
}


static void
record_latency(int64_t at_us, int64_t lat)
{
    if (nlats == lats_cap) {
        lats_cap = lats_cap ? lats_cap * 2 : 65536;
        lats = xrealloc(lats, sizeof(rush_lat_t) * lats_cap);
    }
    lats[nlats].sec = (uint32_t) ((at_us - t0_us) / 1000000);
    lats[nlats].us = (uint32_t) (lat > 0xffffffffLL ? 0xffffffffLL : lat);
    nlats++;
}


static size_t
count(const char *s, size_t n, const char *needle)
{
    size_t       k = 0, m = strlen(needle);
    const char  *p = s, *e = s + n;

    while (p < e && (p = memmem(p, e - p, needle, m)) != NULL) {
        k++;
        p += m;
    }
    return k;
}


static void
tally_reasons(const char *s, size_t n)
{
    const char  *p = s, *e = s + n, *q;
    size_t       len;
    int          i;

    while (p < e && (p = memmem(p, e - p, "\"reason\":\"", 10)) != NULL) {
        p += 10;
        q = memchr(p, '"', e - p);
        if (q == NULL) {
            break;
        }
        len = (size_t) (q - p);
        if (len > 31) {
            len = 31;
        }
        for (i = 0; i < RUSH_NREASONS; i++) {
            if (reason_name[i][0] == '\0') {
                memcpy(reason_name[i], p, len);
                reason_name[i][len] = '\0';
            }
            if (strlen(reason_name[i]) == len
                && memcmp(reason_name[i], p, len) == 0)
            {
                n_reason[i]++;
                break;
            }
        }
        p = q;
    }
}


static void
log_answer(rush_task_t *t, int status, int64_t at, int64_t lat,
    const char *body, size_t blen, size_t conf, size_t ref)
{
    size_t  i;
    char    key[80];

    if (logf == NULL) {
        return;
    }
    task_key(t, key, sizeof(key));
    fprintf(logf, "{\"k\":\"%s\",\"f\":\"%s\",\"i\":%ld,\"a\":%d,"
        "\"s\":%d,\"t\":%.3f,\"us\":%ld,\"tot\":%ld,\"n\":%d,\"c\":%zu,"
        "\"r\":%zu,\"b\":", key, job_fid(t->job), (long) t->job, t->attempt,
        status,
        (double) (at - t0_us) / 1000.0, (long) lat,
        (long) (at - t->first_us), job_cells(t->job), conf, ref);
    while (blen > 0 && (body[blen - 1] == '\n' || body[blen - 1] == '\r'
                        || body[blen - 1] == ' '))
    {
        blen--;
    }
    if (blen > 0 && body[0] == '{' && body[blen - 1] == '}'
        && memchr(body, '\n', blen) == NULL)
    {
        fwrite(body, 1, blen, logf);
    } else {
        fputc('"', logf);
        for (i = 0; i < blen && i < 512; i++) {
            unsigned char  ch = (unsigned char) body[i];

            if (ch == '"' || ch == '\\') {
                fputc('\\', logf);
                fputc(ch, logf);
            } else if (ch < 0x20) {
                fprintf(logf, "\\u%04x", ch);
            } else {
                fputc(ch, logf);
            }
        }
        fputc('"', logf);
    }
    fputs("}\n", logf);
}


/* A final answer (or a given-up request, status 0). */
static void
finish(rush_task_t *t, int status, int64_t at, int64_t lat,
    const char *body, size_t blen)
{
    size_t       conf = 0, ref = 0;
    size_t       s = (size_t) ((at - t0_us) / 1000000);

    (void) lat;
    if (rate > 0) {
        /* open loop: from the time the request was due to its final
         * answer, retries and the wait for a free connection included */
        record_latency(at, at - t->first_us);
    }
    if (status == 200 && body) {
        conf = count(body, blen, "\"confirmed\"");
        ref = count(body, blen, "\"refused\"");
        tally_reasons(body, blen);
    }
    n_answers++;
    n_status[status >= 0 && status < 600 ? status : 0]++;
    n_confirmed += conf;
    n_refused += ref;
    sec_grow(s);
    secs[s].answers++;
    if (status == 200) {
        secs[s].ok++;
    } else {
        secs[s].errors++;
    }
    secs[s].confirmed += conf;
    secs[s].refused += ref;
    last_answer_us = at;
    log_answer(t, status, at, lat, body ? body : "", body ? blen : 0,
               conf, ref);
    if (status == 200 && conf == 0 && ref > 0 && t->resub < resubmit
        && count(body, blen, "\"not_open_yet\"") == ref)
    {
        /* a family refused before the opening tries again, a new request */
        rush_task_t  nt = *t;

        nt.resub++;
        nt.attempt = 0;
        nt.first_us = at + (int64_t) resubmit_ms * 1000;
        nt.due_us = nt.first_us;
        n_resubmits++;
        retry_push(&nt);
    }
}


static int
set_nonblock(int fd)
{
    int  fl = fcntl(fd, F_GETFL, 0);

    return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}


static int
conn_open(int ep, rush_conn_t *c)
{
    struct sockaddr_in   sa;
    struct epoll_event   ev;
    int                  one = 1;

    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (c->fd < 0) {
        die("socket: %s", strerror(errno));
    }
    set_nonblock(c->fd);
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t) port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);     /* loopback only */
    if (connect(c->fd, (struct sockaddr *) &sa, sizeof(sa)) < 0
        && errno != EINPROGRESS)
    {
        close(c->fd);
        c->fd = -1;
        return -1;
    }
    ev.events = EPOLLOUT | EPOLLIN;
    ev.data.ptr = c;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
        die("epoll_ctl: %s", strerror(errno));
    }
    c->state = 1;
    return 0;
}


static void
conn_close(int ep, rush_conn_t *c)
{
    if (c->fd >= 0) {
        epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
    }
    c->fd = -1;
    c->state = 0;
    c->resp_len = 0;
}


/* After a failed attempt: retry later with the same key, or give up. */
static void
attempt_failed(rush_task_t *t, int status, int64_t now, const char *body,
    size_t blen, int64_t lat)
{
    if (t->attempt <= retries) {
        t->due_us = now + 20000 * (int64_t) t->attempt;
        if (t->due_us - now > 500000) {
            t->due_us = now + 500000;
        }
        n_retries++;
        retry_push(t);
        return;
    }
    finish(t, status, now, lat, body, blen);
}


/* Take the next task for an idle connection: a due retry or a new job. */
static int
next_task(rush_task_t *t, int64_t now, int stopping)
{
    if (retry_tail > retry_head
        && retry_q[retry_head % retry_cap].due_us <= now)
    {
        *t = retry_q[retry_head % retry_cap];
        retry_head++;
        t->attempt++;
        return 1;
    }
    if (stopping) {
        return 0;
    }
    if (max_requests >= 0 && next_job >= max_requests) {
        return 0;
    }
    if (strcmp(mode, "rush") == 0 && next_job >= njobs) {
        return 0;
    }
    if (rate > 0) {
        int64_t  due = t0_us + (int64_t) ((double) next_job * 1e6 / rate);

        if (due > now) {
            return 0;
        }
        if (nlate == late_cap) {
            late_cap = late_cap ? late_cap * 2 : 65536;
            lateness = xrealloc(lateness, sizeof(uint32_t) * late_cap);
        }
        lateness[nlate++] = (uint32_t) (now - due > 0xffffffffLL
                                        ? 0xffffffffLL : now - due);
        n_late += now - due > 1000;
        t->job = next_job++;
        t->attempt = 1;
        t->first_us = due;
        n_cells_sent += job_cells(t->job);
        return 1;
    }
    t->job = next_job++;
    t->attempt = 1;
    t->first_us = now;
    n_cells_sent += job_cells(t->job);
    return 1;
}


static void
start_task(int ep, rush_conn_t *c, int64_t now)
{
    struct epoll_event  ev;

    build(c, &c->task);
    c->req_off = 0;
    c->resp_len = 0;
    c->sent_us = now;
    if (first_send_us < 0) {
        first_send_us = now;
    }
    n_attempts++;
    c->state = 2;
    ev.events = EPOLLOUT | EPOLLIN;
    ev.data.ptr = c;
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}


/* Parse a complete response in c->resp.  0: incomplete; 1: complete. */
static int
parse(rush_conn_t *c, int *status, char **body, size_t *blen, int *closing)
{
    char    *hend, *p, *line;
    size_t   hlen, clen = 0;
    int      chunked = 0, have_len = 0;

    if (c->resp_len < 12) {
        return 0;
    }
    hend = memmem(c->resp, c->resp_len, "\r\n\r\n", 4);
    if (hend == NULL) {
        return 0;
    }
    hlen = (size_t) (hend - c->resp) + 4;
    *status = atoi(c->resp + 9);
    *closing = 0;
    line = memchr(c->resp, '\n', hlen);
    while (line && line < hend) {
        line++;
        if (strncasecmp(line, "content-length:", 15) == 0) {
            clen = strtoul(line + 15, NULL, 10);
            have_len = 1;
        } else if (strncasecmp(line, "transfer-encoding:", 18) == 0) {
            p = line + 18;
            while (*p == ' ') {
                p++;
            }
            chunked = strncasecmp(p, "chunked", 7) == 0;
        } else if (strncasecmp(line, "connection:", 11) == 0) {
            p = line + 11;
            while (*p == ' ') {
                p++;
            }
            *closing = strncasecmp(p, "close", 5) == 0;
        }
        line = memchr(line, '\n', hend - line);
    }
    if (chunked) {
        /* de-chunk into place once the last chunk is here */
        char    *src = c->resp + hlen, *end = c->resp + c->resp_len;
        char    *dst = src;
        size_t   n;

        for (;;) {
            char  *crlf = memmem(src, end - src, "\r\n", 2);

            if (crlf == NULL) {
                return 0;
            }
            n = strtoul(src, NULL, 16);
            if (n == 0) {
                if (memmem(crlf, end - crlf, "\r\n\r\n", 4) == NULL
                    && (size_t) (end - crlf) < 4)
                {
                    return 0;
                }
                break;
            }
            if ((size_t) (end - (crlf + 2)) < n + 2) {
                return 0;
            }
            src = crlf + 2 + n + 2;
        }
        src = c->resp + hlen;
        for (;;) {
            char  *crlf = memmem(src, end - src, "\r\n", 2);

            n = strtoul(src, NULL, 16);
            if (n == 0) {
                break;
            }
            memmove(dst, crlf + 2, n);
            dst += n;
            src = crlf + 2 + n + 2;
        }
        *body = c->resp + hlen;
        *blen = (size_t) (dst - (c->resp + hlen));
        return 1;
    }
    if (!have_len) {
        clen = 0;       /* every answer here carries a length */
    }
    if (c->resp_len < hlen + clen) {
        return 0;
    }
    *body = c->resp + hlen;
    *blen = clen;
    return 1;
}


static void
on_answer(int ep, rush_conn_t *c, int status, char *body, size_t blen,
    int closing, int64_t now)
{
    int64_t       lat = now - c->sent_us;
    rush_task_t   t = c->task;

    if (rate <= 0) {
        record_latency(now, lat);
    }
    body[blen] = '\0';
    if (status == 503 || status == 409 || status == 429) {
        attempt_failed(&t, status, now, body, blen, lat);
    } else {
        finish(&t, status, now, lat, body, blen);
    }
    c->state = 0;
    c->resp_len = 0;
    if (closing) {
        conn_close(ep, c);
    }
}


static void
on_error(int ep, rush_conn_t *c, int64_t now, int timeout)
{
    rush_task_t  t = c->task;
    int          busy = c->state == 2;

    conn_close(ep, c);
    if (busy) {
        if (timeout) {
            n_timeouts++;
        } else {
            n_conn_err++;
        }
        attempt_failed(&t, 0, now, "", 0, now - c->sent_us);
    }
}


static void
handle(int ep, rush_conn_t *c, uint32_t events, int64_t now)
{
    ssize_t  n;
    int      status, closing;
    char    *body;
    size_t   blen;

    if (c->state == 1) {
        int        err = 0;
        socklen_t  el = sizeof(err);

        if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
            return;
        }
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
        if (err != 0) {
            n_conn_err++;
            conn_close(ep, c);
            return;
        }
        {
            struct epoll_event  ev;

            ev.events = EPOLLIN;
            ev.data.ptr = c;
            epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
        }
        c->state = 0;       /* connected, idle: the loop gives it a task */
        return;
    }
    if (c->state != 2) {
        if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
            conn_close(ep, c);      /* server closed an idle connection */
        }
        return;
    }
    if ((events & EPOLLOUT) && c->req_off < c->req_len) {
        n = send(c->fd, c->req + c->req_off, c->req_len - c->req_off,
                 MSG_NOSIGNAL);
        if (n < 0 && errno != EAGAIN) {
            on_error(ep, c, now, 0);
            return;
        }
        if (n > 0) {
            c->req_off += (size_t) n;
        }
        if (c->req_off == c->req_len) {
            struct epoll_event  ev;

            ev.events = EPOLLIN;
            ev.data.ptr = c;
            epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
        }
    }
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        for (;;) {
            if (c->resp_cap - c->resp_len < RUSH_RBUF / 2) {
                if (c->resp_cap >= RUSH_MAX_RESP) {
                    on_error(ep, c, now, 0);
                    return;
                }
                c->resp_cap = c->resp_cap ? c->resp_cap * 2 : RUSH_RBUF;
                c->resp = xrealloc(c->resp, c->resp_cap);
            }
            n = recv(c->fd, c->resp + c->resp_len,
                     c->resp_cap - c->resp_len - 1, 0);
            if (n > 0) {
                c->resp_len += (size_t) n;
                continue;
            }
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                break;
            }
            /* EOF or error: a complete answer may be in the buffer */
            if (parse(c, &status, &body, &blen, &closing)) {
                on_answer(ep, c, status, body, blen, 1, now);
                conn_close(ep, c);
            } else {
                on_error(ep, c, now, 0);
            }
            return;
        }
        if (parse(c, &status, &body, &blen, &closing)) {
            on_answer(ep, c, status, body, blen, closing, now);
        }
    }
}


static int
cmp_lat(const void *a, const void *b)
{
    const rush_lat_t  *x = a, *y = b;

    if (x->sec != y->sec) {
        return x->sec < y->sec ? -1 : 1;
    }
    return x->us < y->us ? -1 : x->us > y->us;
}


static int
cmp_u32(const void *a, const void *b)
{
    uint32_t  x = *(const uint32_t *) a, y = *(const uint32_t *) b;

    return x < y ? -1 : x > y;
}


static uint32_t
pct(const uint32_t *v, size_t n, double p)
{
    size_t  i;

    if (n == 0) {
        return 0;
    }
    i = (size_t) (p * (double) n);
    if (i >= n) {
        i = n - 1;
    }
    return v[i];
}


static void
usage(void)
{
    fprintf(stderr,
        "usage: rush --port P --tokens FILE\n"
        "            (--rush FILE | --grid FAMILIES SESSIONS [--cells K]"
        " [--kids C] [--offset O] | --fixed BODYFILE)\n"
        "            [--conns N] [--duration S] [--requests N] [--path P]\n"
        "            [--prefix KEYPREFIX] [--retries R] [--timeout-ms T]\n"
        "            [--start-at UNIX_MS] [--log FILE] [--series FILE]\n"
        "            [--resubmit N] [--resubmit-ms MS] [--rate R]\n"
        "            [--summary FILE] [--quiet]\n");
    exit(2);
}


int
main(int argc, char **argv)
{
    const char          *tokens = NULL, *logfile = NULL, *seriesfile = NULL;
    const char          *summaryfile = NULL, *a1 = NULL, *a2 = NULL;
    rush_conn_t         *conns;
    struct epoll_event  *evs;
    struct rlimit        rl;
    int                  ep, i, n, stopping = 0;
    int64_t              now, end_us = 0, hard_end_us, busy;
    uint32_t            *all;
    size_t               k, j;
    double               el;
    FILE                *f;

    for (i = 1; i < argc; i++) {
        const char  *o = argv[i];

#define ARG (i + 1 < argc ? argv[++i] : (usage(), ""))
        if (strcmp(o, "--port") == 0) {
            port = atoi(ARG);
        } else if (strcmp(o, "--tokens") == 0) {
            tokens = ARG;
        } else if (strcmp(o, "--rush") == 0) {
            mode = "rush";
            a1 = ARG;
        } else if (strcmp(o, "--grid") == 0) {
            mode = "grid";
            a1 = ARG;
            a2 = ARG;
        } else if (strcmp(o, "--fixed") == 0) {
            mode = "fixed";
            a1 = ARG;
        } else if (strcmp(o, "--conns") == 0) {
            nconns = atoi(ARG);
        } else if (strcmp(o, "--duration") == 0) {
            duration = atof(ARG);
        } else if (strcmp(o, "--requests") == 0) {
            max_requests = atoll(ARG);
        } else if (strcmp(o, "--offset") == 0) {
            offset = atoll(ARG);
        } else if (strcmp(o, "--cells") == 0) {
            cells = atoi(ARG);
        } else if (strcmp(o, "--kids") == 0) {
            kids = atoi(ARG);
        } else if (strcmp(o, "--path") == 0) {
            path = ARG;
        } else if (strcmp(o, "--prefix") == 0) {
            prefix = ARG;
        } else if (strcmp(o, "--retries") == 0) {
            retries = atoi(ARG);
        } else if (strcmp(o, "--timeout-ms") == 0) {
            timeout_ms = atoi(ARG);
        } else if (strcmp(o, "--start-at") == 0) {
            start_at_ms = atoll(ARG);
        } else if (strcmp(o, "--log") == 0) {
            logfile = ARG;
        } else if (strcmp(o, "--series") == 0) {
            seriesfile = ARG;
        } else if (strcmp(o, "--summary") == 0) {
            summaryfile = ARG;
        } else if (strcmp(o, "--resubmit") == 0) {
            resubmit = atoi(ARG);
        } else if (strcmp(o, "--resubmit-ms") == 0) {
            resubmit_ms = atoi(ARG);
        } else if (strcmp(o, "--rate") == 0) {
            rate = atof(ARG);
        } else if (strcmp(o, "--quiet") == 0) {
            quiet = 1;
        } else {
            usage();
        }
#undef ARG
    }
    if (port <= 0 || tokens == NULL || mode == NULL || nconns < 1
        || nconns > RUSH_MAX_CONNS || cells < 1 || kids < 1 || retries < 0
        || (duration <= 0 && max_requests < 0 && strcmp(mode, "rush") != 0)
        || strlen(prefix) > 40)
    {
        usage();
    }
    if (duration <= 0) {
        duration = 600;             /* a hard bound all the same */
    }

    rl.rlim_cur = rl.rlim_max = (rlim_t) nconns + 64;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0
        && rl.rlim_cur < (rlim_t) nconns + 64)
    {
        rl.rlim_cur = (rlim_t) nconns + 64;
        if (rl.rlim_max < rl.rlim_cur) {
            rl.rlim_max = rl.rlim_cur;
        }
        setrlimit(RLIMIT_NOFILE, &rl);
    }

    load_tokens(tokens);
    if (strcmp(mode, "rush") == 0) {
        load_rush(a1);
    } else if (strcmp(mode, "grid") == 0) {
        load_grid(a1, a2);
    } else {
        size_t  bl;

        fixed_body = slurp(a1, &bl);
        while (bl > 0 && (fixed_body[bl - 1] == '\n')) {
            fixed_body[--bl] = '\0';
        }
    }
    if (logfile) {
        logf = fopen(logfile, "w");
        if (logf == NULL) {
            die("%s: %s", logfile, strerror(errno));
        }
        setvbuf(logf, NULL, _IOFBF, 1 << 20);
    }

    if (start_at_ms > 0) {
        int64_t  w = start_at_ms - wall_ms();

        if (w > 600000) {
            die("--start-at is more than 10 minutes away");
        }
        if (w > 0) {
            usleep((useconds_t) w * 1000);
        }
    }

    ep = epoll_create1(0);
    conns = calloc((size_t) nconns, sizeof(rush_conn_t));
    evs = xmalloc(sizeof(struct epoll_event) * (size_t) nconns);
    if (conns == NULL || ep < 0) {
        die("setup failed");
    }
    t0_us = now_us();
    end_us = t0_us + (int64_t) (duration * 1e6);
    hard_end_us = end_us + (int64_t) timeout_ms * 1000 * (retries + 2);
    for (i = 0; i < nconns; i++) {
        conns[i].fd = -1;
        conn_open(ep, &conns[i]);
    }

    for (;;) {
        now = now_us();
        if (now >= end_us) {
            stopping = 1;
        }
        if (now >= hard_end_us) {
            break;
        }
        busy = 0;
        for (i = 0; i < nconns; i++) {
            rush_conn_t  *c = &conns[i];

            if (c->state == 2) {
                if (now - c->sent_us > (int64_t) timeout_ms * 1000) {
                    on_error(ep, c, now, 1);
                } else {
                    busy++;
                    continue;
                }
            }
            if (c->state == 1) {
                busy++;
                continue;
            }
            if (c->fd < 0) {
                if (retry_tail == retry_head && stopping) {
                    continue;
                }
                if (!stopping || retry_tail > retry_head) {
                    if (conn_open(ep, c) == 0) {
                        busy++;
                    }
                }
                continue;
            }
            if (next_task(&c->task, now, stopping)) {
                start_task(ep, c, now);
                busy++;
            }
        }
        if (busy == 0) {
            if (retry_tail == retry_head) {
                if (stopping || (max_requests >= 0 && next_job >= max_requests)
                    || (strcmp(mode, "rush") == 0 && next_job >= njobs))
                {
                    break;
                }
            }
        }
        if (rate > 0) {
            /* open loop: sleep until the next request is due, at most
             * RUSH_TICK_US early (epoll_wait's 1 ms sent every request
             * up to a tick late, and counted many "late"; a wake-up per
             * request tripled the client's CPU); when it is due already,
             * every connection is busy: an answer wakes us */
            int64_t          due, w;
            struct timespec  ts;

            due = t0_us + (int64_t) ((double) next_job * 1e6 / rate);
            w = due - now_us();
            if (w <= 0 || w > 1000) {
                w = 1000;
            } else if (w < RUSH_TICK_US) {
                w = RUSH_TICK_US;
            }
            ts.tv_sec = 0;
            ts.tv_nsec = (long) w * 1000;
            n = epoll_pwait2(ep, evs, nconns, &ts, NULL);
        } else {
            n = epoll_wait(ep, evs, nconns, busy ? 5 : 2);
        }
        now = now_us();
        for (i = 0; i < n; i++) {
            handle(ep, evs[i].data.ptr, evs[i].events, now);
        }
    }

    /* requests still in the air when the hard bound hit: given up */
    for (i = 0; i < nconns; i++) {
        if (conns[i].state == 2) {
            finish(&conns[i].task, 0, now_us(), now_us() - conns[i].sent_us,
                   "", 0);
        }
        conn_close(ep, &conns[i]);
    }
    while (retry_tail > retry_head) {
        finish(&retry_q[retry_head % retry_cap], 0, now_us(), 0, "", 0);
        retry_head++;
    }
    if (logf) {
        fclose(logf);
    }

    /* report */
    el = (double) ((last_answer_us > first_send_us ? last_answer_us
                    : first_send_us + 1) - first_send_us) / 1e6;
    qsort(lats, nlats, sizeof(rush_lat_t), cmp_lat);
    all = xmalloc(sizeof(uint32_t) * (nlats ? nlats : 1));
    for (k = 0; k < nlats; k++) {
        all[k] = lats[k].us;
    }
    qsort(all, nlats, sizeof(uint32_t), cmp_u32);

    f = seriesfile ? fopen(seriesfile, "w") : NULL;
    if (f) {
        fprintf(f, "# sec answers ok confirmed refused errors "
                   "p50_ms p99_ms p999_ms\n");
    }
    if (!quiet) {
        printf("%4s %8s %8s %9s %9s %8s %8s %8s\n", "sec", "answers",
               "ok", "confirmed", "refused", "p50ms", "p99ms", "p99.9ms");
    }
    for (k = 0, j = 0; k < nsecs; k++) {
        size_t  b = j;

        while (j < nlats && lats[j].sec == k) {
            j++;
        }
        if (secs[k].answers == 0 && j == b) {
            continue;
        }
        {
            uint32_t  *v = xmalloc(sizeof(uint32_t) * (j - b + 1));
            size_t     m;

            for (m = b; m < j; m++) {
                v[m - b] = lats[m].us;
            }
            if (!quiet) {
                printf("%4zu %8lu %8lu %9lu %9lu %8.2f %8.2f %8.2f\n", k,
                    (unsigned long) secs[k].answers,
                    (unsigned long) secs[k].ok,
                    (unsigned long) secs[k].confirmed,
                    (unsigned long) secs[k].refused,
                    pct(v, j - b, 0.5) / 1e3, pct(v, j - b, 0.99) / 1e3,
                    pct(v, j - b, 0.999) / 1e3);
            }
            if (f) {
                fprintf(f, "%zu %lu %lu %lu %lu %lu %.3f %.3f %.3f\n", k,
                    (unsigned long) secs[k].answers,
                    (unsigned long) secs[k].ok,
                    (unsigned long) secs[k].confirmed,
                    (unsigned long) secs[k].refused,
                    (unsigned long) secs[k].errors,
                    pct(v, j - b, 0.5) / 1e3, pct(v, j - b, 0.99) / 1e3,
                    pct(v, j - b, 0.999) / 1e3);
            }
            free(v);
        }
    }
    if (f) {
        fclose(f);
    }

    printf("rush %s: %d conns, %.2f s, %lu answers (%.0f/s), %lu attempts,"
           " %lu retries, %lu timeouts, cells confirmed %lu (%.0f/s),"
           " refused %lu; latency p50 %.3f ms p99 %.3f ms p99.9 %.3f ms"
           " max %.3f ms\n", mode, nconns, el, (unsigned long) n_answers,
           n_answers / el, (unsigned long) n_attempts,
           (unsigned long) n_retries, (unsigned long) n_timeouts,
           (unsigned long) n_confirmed, n_confirmed / el,
           (unsigned long) n_refused, pct(all, nlats, 0.5) / 1e3,
           pct(all, nlats, 0.99) / 1e3, pct(all, nlats, 0.999) / 1e3,
           nlats ? all[nlats - 1] / 1e3 : 0.0);

    f = summaryfile ? fopen(summaryfile, "w") : stdout;
    if (f == NULL) {
        die("%s: %s", summaryfile, strerror(errno));
    }
    fprintf(f, "{\"mode\":\"%s\",\"conns\":%d,\"path\":\"%s\","
        "\"offset\":%ld,\"t0_monotonic_us\":%lld,\"elapsed_s\":%.3f,"
        "\"requests\":%ld,"
        "\"answers\":%lu,\"answers_per_s\":%.1f,\"attempts\":%lu,"
        "\"retries\":%lu,\"resubmits\":%lu,\"timeouts\":%lu,"
        "\"connect_errors\":%lu,"
        "\"cells_sent\":%lu,\"cells_confirmed\":%lu,"
        "\"cells_confirmed_per_s\":%.1f,\"cells_refused\":%lu,"
        "\"cells_answered_per_s\":%.1f,"
        "\"latency_ms\":{\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,"
        "\"p999\":%.3f,\"max\":%.3f},\"status\":{",
        mode, nconns, path, (long) offset, (long long) t0_us, el,
        (long) next_job,
        (unsigned long) n_answers, n_answers / el,
        (unsigned long) n_attempts, (unsigned long) n_retries,
        (unsigned long) n_resubmits,
        (unsigned long) n_timeouts, (unsigned long) n_conn_err,
        (unsigned long) n_cells_sent, (unsigned long) n_confirmed,
        n_confirmed / el, (unsigned long) n_refused,
        (n_confirmed + n_refused) / el,
        pct(all, nlats, 0.5) / 1e3, pct(all, nlats, 0.9) / 1e3,
        pct(all, nlats, 0.99) / 1e3, pct(all, nlats, 0.999) / 1e3,
        nlats ? all[nlats - 1] / 1e3 : 0.0);
    for (i = 0, n = 0; i < 600; i++) {
        if (n_status[i]) {
            fprintf(f, "%s\"%d\":%lu", n++ ? "," : "", i,
                    (unsigned long) n_status[i]);
        }
    }
    fprintf(f, "},\"reasons\":{");
    for (i = 0, n = 0; i < RUSH_NREASONS && reason_name[i][0]; i++) {
        fprintf(f, "%s\"%s\":%lu", n++ ? "," : "", reason_name[i],
                (unsigned long) n_reason[i]);
    }
    fprintf(f, "}");
    if (rate > 0) {
        qsort(lateness, nlate, sizeof(uint32_t), cmp_u32);
        fprintf(f, ",\"open_loop\":{\"rate_per_s\":%.1f,\"due\":%lu,"
            "\"sent_late_1ms\":%lu,\"send_lateness_ms\":{\"p50\":%.3f,"
            "\"p99\":%.3f,\"max\":%.3f},\"latency_from\":\"due time\"}",
            rate, (unsigned long) nlate, (unsigned long) n_late,
            pct(lateness, nlate, 0.5) / 1e3, pct(lateness, nlate, 0.99) / 1e3,
            nlate ? lateness[nlate - 1] / 1e3 : 0.0);
    }
    fprintf(f, "}\n");
    if (f != stdout) {
        fclose(f);
    }
    return 0;
}
