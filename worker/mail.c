/*
 * mail.c -- the e-mail outbox: PostgreSQL rows out by SMTP.
 *
 * The persister queues the e-mails of a batch's demandes as one row of
 * demande_mail_batch (batch.c, 0131), in the transaction that persists
 * them.  The worker calls gchw_mail_send() every second; it first turns
 * up to max of those into outbox rows (demande_mail_expand(): one
 * transaction, which advances the expansion's cursor), then for each row
 * due (sent_at null, next_attempt_at passed, attempts below
 * smtp_max_attempts, the family has an address in family_email):
 *
 *   1. ONE transaction claims the row (select ... for update skip locked)
 *      and marks it sent (sent_at = now(), attempts + 1): committed before
 *      a byte goes to the relay, so no other worker and no later round can
 *      send it again.  This is AT MOST ONCE: a crash between this commit
 *      and the relay's "250" after DATA loses that e-mail (it shows as
 *      sent, without error), it never sends it twice.
 *   2. Plain SMTP over TCP (EHLO, MAIL FROM, RCPT TO, DATA, QUIT), 10 s
 *      timeouts.
 *   3. If it failed before the final "." of DATA was written (connection
 *      refused, 4xx/5xx reply to EHLO/MAIL/RCPT/DATA), the relay has not
 *      taken the message: the row is put back (sent_at null, last_error,
 *      next_attempt_at = now + smtp_retry_ms * 2^(attempts - 1), at most
 *      one day).  A failure after the final "." (no reply, or an error
 *      reply) is ambiguous: the row stays sent, with last_error, and is
 *      never retried.
 *
 * Some e-mails carry a secret (kind password_reset: a single-use link,
 * guichet-office's account.c; activation: the link that activates an
 * account, activation.c; invitation: a dossier's activation code,
 * guichetctl invite; family_request: the link that confirms a file asked
 * online, office/request.c).  The claim of step 1 also replaces their
 * body by a note: once the relay may have it, the outbox keeps no usable
 * link.  The body the worker sends is the one the claim read; when step 3
 * puts the row back for a retry, it puts that body back too.
 */

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "gchw.h"


/*
 * A demande's row is queued without its text (0016): demande_mail()
 * writes it from the demande when it is claimed, and the row keeps none.
 * Oldest first; of the same time (one transaction of the persister),
 * demandes first: their rows are turned from the batch's row (0131)
 * after the cancellations and justifications of the same batch were
 * inserted, which the persister used to insert after them.
 */
static const char  gchw_sql_claim[] =
    "with c as (select x.id, x.body, x.subject,"
    "     case x.kind when 'demande' then x.ref end id_ref from outbox x"
    "   join family_email e on e.family_id = x.family_id"
    "   where x.sent_at is null and x.next_attempt_at <= now()"
    "     and x.attempts < $1::integer"
    "   order by x.next_attempt_at, x.kind <> 'demande', x.id limit 1"
    "   for update of x skip locked)"
    " update outbox o set sent_at = now(), attempts = o.attempts + 1,"
    "   body = case when o.kind in ('password_reset', 'activation',"
    "     'invitation', 'family_request')"
    "     then '(effacé à l''envoi : ce message portait un lien à usage"
    " unique)' else o.body end"
    " from c left join lateral demande_mail(c.id_ref) m"
    "   on c.body is null"
    " where o.id = c.id"
    " returning o.id, (select address from family_email e"
    "   where e.family_id = o.family_id), coalesce(c.subject, m.subject),"
    "   coalesce(c.body, m.body), o.attempts";

/* $4: the body put back (a demande's, written when sent, is not kept) */
/* the demandes' e-mails queued by the persister, into the outbox (0131) */
static const char  gchw_sql_expand[] =
    "select demande_mail_expand($1::integer)";

static const char  gchw_sql_retry[] =
    "update outbox set sent_at = null, last_error = $2,"
    "   body = case when body is null then null else $4 end,"
    "   next_attempt_at = now() + least(interval '1 day',"
    "     $3::bigint * power(2, attempts - 1) * interval '1 millisecond')"
    " where id = $1::bigint";

static const char  gchw_sql_unsure[] =
    "update outbox set last_error = $2 where id = $1::bigint";


typedef struct {
    int    fd;
    char   buf[4096];
    size_t len;
    char   error[256];
} gchw_smtp_t;


static int
gchw_smtp_connect(gchw_smtp_t *s, const char *hostport)
{
    int               fd, rc;
    char              host[256], *colon;
    const char       *port;
    struct timeval    tv = { 10, 0 };
    struct addrinfo   hints, *res, *ai;

    snprintf(host, sizeof(host), "%s", hostport);
    colon = strrchr(host, ':');
    port = "25";
    if (colon) {
        *colon = '\0';
        port = colon + 1;
    }

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;

    rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        snprintf(s->error, sizeof(s->error), "smtp %s: %s", hostport,
                 gai_strerror(rc));
        return -1;
    }

    fd = -1;
    for (ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd < 0) {
            continue;
        }
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            break;
        }
        snprintf(s->error, sizeof(s->error), "smtp %s: %s", hostport,
                 strerror(errno));
        close(fd);
        fd = -1;
    }

    freeaddrinfo(res);

    s->fd = fd;
    s->len = 0;

    return fd < 0 ? -1 : 0;
}


static int
gchw_smtp_write(gchw_smtp_t *s, const char *data, size_t n)
{
    ssize_t  w;

    while (n) {
        w = send(s->fd, data, n, MSG_NOSIGNAL);
        if (w <= 0) {
            if (w < 0 && errno == EINTR) {
                continue;
            }
            snprintf(s->error, sizeof(s->error), "smtp write: %s",
                     w < 0 ? strerror(errno) : "closed");
            return -1;
        }
        data += w;
        n -= (size_t) w;
    }

    return 0;
}


/* Reads one (possibly multi-line) reply; its code, or -1. */
static int
gchw_smtp_reply(gchw_smtp_t *s)
{
    char     *nl, *line;
    ssize_t   r;
    int       code;

    for ( ;; ) {
        nl = memchr(s->buf, '\n', s->len);

        if (nl) {
            *nl = '\0';
            line = s->buf;
            code = atoi(line);
            if (nl > line && nl[-1] == '\r') {
                nl[-1] = '\0';
            }

            if (strlen(line) < 3 || code < 200 || code > 599) {
                snprintf(s->error, sizeof(s->error), "smtp: bad reply "
                         "\"%.100s\"", line);
                return -1;
            }

            if (line[3] != '-') {
                if (code >= 400) {
                    snprintf(s->error, sizeof(s->error), "smtp: %.200s",
                             line);
                }
                s->len -= (size_t) (nl + 1 - s->buf);
                memmove(s->buf, nl + 1, s->len);
                return code;
            }

            s->len -= (size_t) (nl + 1 - s->buf);
            memmove(s->buf, nl + 1, s->len);
            continue;
        }

        if (s->len == sizeof(s->buf)) {
            snprintf(s->error, sizeof(s->error), "smtp: reply too long");
            return -1;
        }

        r = recv(s->fd, s->buf + s->len, sizeof(s->buf) - s->len, 0);
        if (r <= 0) {
            if (r < 0 && errno == EINTR) {
                continue;
            }
            snprintf(s->error, sizeof(s->error), "smtp read: %s",
                     r < 0 ? strerror(errno) : "connection closed");
            return -1;
        }
        s->len += (size_t) r;
    }
}


/* Sends a command line and expects a reply below 400. */
static int
gchw_smtp_cmd(gchw_smtp_t *s, const char *line)
{
    int  code;

    if (gchw_smtp_write(s, line, strlen(line)) != 0
        || gchw_smtp_write(s, "\r\n", 2) != 0)
    {
        return -1;
    }

    code = gchw_smtp_reply(s);

    return code < 0 || code >= 400 ? -1 : code;
}


/*
 * The message: headers (Subject in RFC 2047 base64, UTF-8 text body
 * 8bit), CRLF line ends, dot-stuffed, ending with CRLF.CRLF.  NULL when out
 * of memory; the caller frees it.
 */
static char *
gchw_message(const char *id, const char *from, const char *to,
    const char *subject, const char *body, size_t *len)
{
    int          fail;
    char        *b64, date[64], hdr[1024];
    size_t       n, sl;
    time_t       now;
    struct tm    tm;
    gchb_buf_t   m = { 0 };
    const char  *p;

    sl = strlen(subject);
    n = sodium_base64_encoded_len(sl, sodium_base64_VARIANT_ORIGINAL);
    b64 = malloc(n);
    if (b64 == NULL) {
        return NULL;
    }
    sodium_bin2base64(b64, n, (const unsigned char *) subject, sl,
                      sodium_base64_VARIANT_ORIGINAL);

    now = time(NULL);
    gmtime_r(&now, &tm);
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);

    snprintf(hdr, sizeof(hdr),
             "From: <%s>\r\n"
             "To: <%s>\r\n"
             "Date: %s\r\n"
             "Message-ID: <outbox-%s@guichet>\r\n"
             "MIME-Version: 1.0\r\n"
             "Content-Type: text/plain; charset=UTF-8\r\n"
             "Content-Transfer-Encoding: 8bit\r\n"
             "Subject: ", from, to, date, id);

    fail = gchb_buf_add(&m, hdr, strlen(hdr))
           || gchb_buf_add(&m, "=?UTF-8?B?", 10)
           || gchb_buf_add(&m, b64, strlen(b64))
           || gchb_buf_add(&m, "?=\r\n\r\n", 6);
    free(b64);

    /* body: LF -> CRLF, a line starting with '.' gets another */
    for (p = body; !fail && *p; ) {
        n = strcspn(p, "\r\n");
        if (*p == '.') {
            fail = gchb_buf_add(&m, ".", 1);
        }
        fail = fail || gchb_buf_add(&m, p, n)
               || gchb_buf_add(&m, "\r\n", 2);
        p += n;
        if (*p == '\r') {
            p++;
        }
        if (*p == '\n') {
            p++;
        }
    }

    fail = fail || gchb_buf_add(&m, ".\r\n", 3);

    if (fail) {
        gchb_buf_free(&m);
        return NULL;
    }

    *len = m.len;
    return m.data;
}


/*
 * One e-mail.  0 sent; 1 failed before the end of DATA (the relay has
 * not taken it: retry); 2 failed after (unknown outcome: do not retry).
 * s->error says why.
 */
static int
gchw_smtp_send(gchw_smtp_t *s, const gchb_conf_t *conf, const char *id,
    const char *to, const char *subject, const char *body)
{
    int          code;
    char         line[600], host[256];
    char        *msg;
    size_t       len;

    if (gchw_smtp_connect(s, conf->smtp) != 0) {
        return 1;
    }

    if (gethostname(host, sizeof(host)) != 0) {
        strcpy(host, "localhost");
    }
    host[sizeof(host) - 1] = '\0';

    code = gchw_smtp_reply(s);
    if (code < 0 || code >= 400) {
        goto before;
    }

    snprintf(line, sizeof(line), "EHLO %s", host);
    if (gchw_smtp_cmd(s, line) < 0) {
        goto before;
    }

    snprintf(line, sizeof(line), "MAIL FROM:<%s>", conf->smtp_from);
    if (gchw_smtp_cmd(s, line) < 0) {
        goto before;
    }

    snprintf(line, sizeof(line), "RCPT TO:<%s>", to);
    if (gchw_smtp_cmd(s, line) < 0) {
        goto before;
    }

    if (gchw_smtp_cmd(s, "DATA") != 354) {
        goto before;
    }

    msg = gchw_message(id, conf->smtp_from, to, subject, body, &len);
    if (msg == NULL) {
        snprintf(s->error, sizeof(s->error), "out of memory");
        goto before;
    }

    /* everything but the final "." first: a failure here is still safe */
    if (gchw_smtp_write(s, msg, len - 3) != 0) {
        free(msg);
        goto before;
    }

    code = gchw_smtp_write(s, msg + len - 3, 3);
    free(msg);

    if (code != 0 || (code = gchw_smtp_reply(s)) < 0 || code >= 400) {
        close(s->fd);
        return 2;
    }

    gchw_smtp_cmd(s, "QUIT");
    close(s->fd);

    return 0;

before:

    close(s->fd);
    return 1;
}


/* See gchw.h. */
int
gchw_mail_send(PGconn *pg, const gchb_conf_t *conf, int max)
{
    int           sent, rc;
    char          maxa[16], retry[24], n[16];
    PGresult     *res, *up;
    gchw_smtp_t   s;
    const char   *params[4];

    if (conf->smtp == NULL || conf->smtp[0] == '\0') {
        return 0;
    }

    snprintf(maxa, sizeof(maxa), "%d", conf->smtp_max_attempts);
    snprintf(retry, sizeof(retry), "%d", conf->smtp_retry_ms);
    sent = 0;

    snprintf(n, sizeof(n), "%d", max);
    params[0] = n;
    res = PQexecParams(pg, gchw_sql_expand, 1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        gchb_log("error", "postgres: %s", PQerrorMessage(pg));
        PQclear(res);
        return -1;
    }
    PQclear(res);

    while (sent < max) {
        params[0] = maxa;
        /* one statement = one transaction: claimed and marked sent */
        res = PQexecParams(pg, gchw_sql_claim, 1, NULL, params, NULL, NULL,
                           0);
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
            gchb_log("error", "postgres: %s", PQerrorMessage(pg));
            PQclear(res);
            return -1;
        }

        if (PQntuples(res) == 0) {
            PQclear(res);
            break;
        }

        memset(&s, 0, sizeof(s));
        rc = gchw_smtp_send(&s, conf, PQgetvalue(res, 0, 0),
                            PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 2),
                            PQgetvalue(res, 0, 3));

        if (rc == 0) {
            sent++;
            PQclear(res);
            continue;
        }

        gchb_log("warn", "e-mail %s to %s, attempt %s: %s%s",
                 PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1),
                 PQgetvalue(res, 0, 4), s.error,
                 rc == 1 ? "; will retry" : "; outcome unknown, not retried");

        params[0] = PQgetvalue(res, 0, 0);
        params[1] = s.error;
        params[2] = retry;
        params[3] = PQgetvalue(res, 0, 3);      /* the body, put back */
        up = PQexecParams(pg, rc == 1 ? gchw_sql_retry : gchw_sql_unsure,
                          rc == 1 ? 4 : 2, NULL, params, NULL, NULL, 0);
        PQclear(res);

        if (PQresultStatus(up) != PGRES_COMMAND_OK) {
            gchb_log("error", "postgres: %s", PQerrorMessage(pg));
            PQclear(up);
            return -1;
        }
        PQclear(up);

        if (rc == 1) {
            break;                  /* the relay is unwell: next round */
        }
    }

    return sent;
}
