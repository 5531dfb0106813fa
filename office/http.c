/*
 * http.c -- guichet-office's HTTP side: libmicrohttpd server and routing
 * (authentication is auth.c's, request data and bodies body.c's,
 * PostgreSQL and Redis store.c's, answers reply.c's).
 *
 * One internal polling thread serves every connection in turn (the
 * office's traffic is light and each handler is a few SQL statements), so
 * the PostgreSQL and Redis connections of gcho_ctx need no lock.  What is
 * slow, password hashing, goes to hash.c's threads.  nginx is the only
 * client (proxy_pass on a unix socket, 0660, office_socket_group); it
 * passes the client's address in X-Real-IP and the Host header untouched.
 *
 * A request goes: first call of gcho_access() (headers read) -> route
 * matched, body limit known; further calls -> body bytes appended (over
 * the limit they are read and dropped); last call -> authentication, the
 * handler, the answer queued -- or, when the handler left a hashing job
 * (rq->hash), the connection suspended and the job queued; once the job
 * resumes it, one more call runs the handler's second half and queues the
 * answer.  gcho_completed() frees the request.
 *
 * Authentication (auth.c) is the module's (ngx_http_guichet_session.c).
 */

#include <errno.h>
#include <grp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <microhttpd.h>
#include <sodium.h>

#include "office.h"


static int gcho_utf8_request(gcho_req_t *rq);


static struct MHD_Daemon  *gcho_daemon;
static int                 gcho_listen_fd = -1;


static const gcho_route_t *const  gcho_tables[] = {
    gcho_enrolment_routes,
    gcho_required_routes,       /* before documents' /api/documents/ * */
    gcho_document_routes,
    gcho_message_routes,
    gcho_attachment_routes,
    gcho_absence_routes,
    gcho_account_routes,
    gcho_payment_routes,
    gcho_invoicing_routes,
    gcho_debit_routes,
    gcho_contact_routes,
    gcho_activation_routes,
    gcho_entourage_routes,
    gcho_qf_routes,
    gcho_staff_routes,
    gcho_calendar_routes,
    gcho_activity_routes,
    gcho_merge_routes,          /* before families' /api/staff/families/ * */
    gcho_archive_routes,
    gcho_family_routes,
    gcho_counter_routes,
    gcho_credit_routes,
    gcho_daily_routes,
    gcho_notice_routes,
    gcho_mydata_routes,
    gcho_publication_routes,
    gcho_coresp_routes,
    gcho_town_routes,
    gcho_waitlist_routes,
    gcho_request_routes,
    NULL
};


/* ------------------------------------------------------------------ */
/* routing                                                              */

/* 1 when path matches pattern; captures the '*' segments. */
static int
gcho_match(const char *pattern, const char *path, gcho_req_t *rq)
{
    size_t       n, np;
    const char  *seg;

    np = 0;

    while (*pattern && *path) {
        if (*pattern == '*') {
            seg = path;
            while (*path && *path != '/') {
                path++;
            }
            n = path - seg;
            if (n == 0 || n >= GCHO_ID_MAX || np == GCHO_PARAMS_MAX) {
                return 0;
            }
            memcpy(rq->param[np], seg, n);
            rq->param[np][n] = '\0';
            np++;
            pattern++;
            continue;
        }

        if (*pattern != *path) {
            return 0;
        }
        pattern++;
        path++;
    }

    if (*pattern || *path) {
        return 0;
    }

    rq->nparam = np;
    return 1;
}


/* The route of (method, path); *path_known set when some route has this
 * path with another method (405 rather than 404). */
static const gcho_route_t *
gcho_route_find(gcho_req_t *rq, int *path_known)
{
    size_t               i;
    const gcho_route_t  *rt;

    *path_known = 0;

    for (i = 0; gcho_tables[i] != NULL; i++) {
        for (rt = gcho_tables[i]; rt->method != NULL; rt++) {
            if (!gcho_match(rt->pattern, rq->path, rq)) {
                continue;
            }
            if (strcmp(rt->method, rq->method) == 0
                || (strcmp(rq->method, "HEAD") == 0
                    && strcmp(rt->method, "GET") == 0))
            {
                return rt;
            }
            *path_known = 1;
        }
    }

    return NULL;
}


/* ------------------------------------------------------------------ */
/* libmicrohttpd callbacks                                              */

static void
gcho_req_free(gcho_req_t *rq)
{
    size_t  i;

    for (i = 0; i < rq->nhdr; i++) {
        free(rq->hdr_name[i]);
        free(rq->hdr_value[i]);
    }

    gcho_hash_free(rq->hash);
    free(rq->out);
    if (rq->body != NULL) {
        sodium_memzero(rq->body, rq->body_len);    /* passwords */
        free(rq->body);
    }
    free((char *) rq->path);
    free(rq);
}


static enum MHD_Result
gcho_queue(struct MHD_Connection *c, gcho_req_t *rq)
{
    size_t                i;
    enum MHD_Result       ret;
    struct MHD_Response  *resp;

    if (rq->out == NULL) {
        if (gcho_error(rq, 500, "internal",
                       "Une erreur interne est survenue.") != 0)
        {
            return MHD_NO;
        }
    }

    resp = MHD_create_response_from_buffer(rq->out_len, rq->out,
                                           MHD_RESPMEM_MUST_FREE);
    if (resp == NULL) {
        return MHD_NO;
    }
    rq->out = NULL;                      /* the response owns it */

    MHD_add_response_header(resp, "Content-Type", rq->out_type);
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");

    for (i = 0; i < rq->nhdr; i++) {
        MHD_add_response_header(resp, rq->hdr_name[i], rq->hdr_value[i]);
    }

    ret = MHD_queue_response(c, rq->status, resp);
    MHD_destroy_response(resp);

    return ret;
}


static void
gcho_dispatch(gcho_req_t *rq)
{
    if (rq->route == NULL) {
        return;                          /* 404 / 405 already set */
    }

    if (rq->body_too_large) {
        gcho_error(rq, 413, "body_too_large",
                   "Le corps de la demande est trop volumineux.");
        return;
    }

    if (gcho_utf8_request(rq) != 0) {
        return;
    }

    gcho_town_use(rq);

    /* a town the database lacks is 404 unknown_town before anything else
     * (checked when the request's town is not the connection's) */
    if (strcmp(rq->town, gcho_ctx.pg_town) != 0 && gcho_pg(rq) == NULL) {
        return;
    }

    if (gcho_authorize(rq) != 0) {
        return;
    }

    if (rq->route->handler(rq) != 0 && rq->out == NULL
        && rq->hash == NULL)
    {
        gcho_error(rq, 500, "internal", "Une erreur interne est survenue.");
    }

    gcho_rollback();                     /* a handler that forgot */
}


static enum MHD_Result
gcho_utf8_arg(void *cls, enum MHD_ValueKind kind, const char *key,
    const char *value)
{
    char  *bad = cls;

    (void) kind;

    if (!gch_utf8_ok((const unsigned char *) key, strlen(key))) {
        snprintf(bad, GCHO_ID_MAX, "(nom de paramètre)");
        return MHD_NO;
    }

    if (value != NULL
        && !gch_utf8_ok((const unsigned char *) value, strlen(value)))
    {
        /* named whole, or not at all (no cut UTF-8 in the answer) */
        snprintf(bad, GCHO_ID_MAX, "%s",
                 strlen(key) < 64 ? key : "(nom trop long)");
        return MHD_NO;
    }

    return MHD_YES;
}


/*
 * Text reaches PostgreSQL only as valid UTF-8 (the engine's strict
 * check, gch_utf8_ok: no overlong form, no surrogate): the query
 * arguments and the path's segments are checked here, the JSON strings by
 * gcho_str.  0, or -1 after answering 400 `invalid_field` naming it.
 */
static int
gcho_utf8_request(gcho_req_t *rq)
{
    char    bad[GCHO_ID_MAX], msg[GCHO_ID_MAX + 80];
    size_t  i;

    bad[0] = '\0';

    (void) MHD_get_connection_values(rq->conn, MHD_GET_ARGUMENT_KIND,
                                     gcho_utf8_arg, bad);

    for (i = 0; bad[0] == '\0' && i < rq->nparam; i++) {
        if (!gch_utf8_ok((const unsigned char *) rq->param[i],
                         strlen(rq->param[i])))
        {
            snprintf(bad, sizeof(bad), "(segment %zu de l'adresse)", i + 1);
        }
    }

    if (bad[0] == '\0') {
        return 0;
    }

    snprintf(msg, sizeof(msg), "Le paramètre %s n'est pas de l'UTF-8 "
             "valide.", bad);
    gcho_error(rq, 400, "invalid_field", msg);
    return -1;
}


static enum MHD_Result
gcho_access(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **con_cls)
{
    int          known;
    char        *body;
    size_t       n;
    int          bad_town;
    gcho_req_t  *rq;
    const char  *ip, *town;

    (void) cls;
    (void) version;

    rq = *con_cls;

    if (rq == NULL) {
        rq = calloc(1, sizeof(gcho_req_t));
        if (rq == NULL) {
            return MHD_NO;
        }

        rq->conn = c;
        rq->method = method;
        rq->path = strdup(url);
        if (rq->path == NULL) {
            free(rq);
            return MHD_NO;
        }

        ip = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Real-IP");
        snprintf(rq->ip, sizeof(rq->ip), "%s", ip ? ip : "");

        /* the town of the host name the client reached (nginx sets
         * X-Guichet-Town to $guichet_town), else the setting town */
        town = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                           "X-Guichet-Town");
        if (town == NULL || town[0] == '\0') {
            town = gcho_ctx.conf.town;
        }
        snprintf(rq->town, sizeof(rq->town), "%s", town);
        bad_town = !gch_town_id_ok(town, strlen(town));

        *con_cls = rq;

        rq->route = gcho_route_find(rq, &known);

        if (bad_town) {
            rq->route = NULL;
            snprintf(rq->town, sizeof(rq->town), "%s", gcho_ctx.conf.town);
            gcho_error(rq, 404, "unknown_town",
                       "Cette commune n'est pas servie ici.");

        } else if (rq->route == NULL) {
            if (known) {
                gcho_error(rq, 405, "method_not_allowed",
                           "Cette méthode n'est pas permise ici.");
            } else {
                gcho_error(rq, 404, "not_found",
                           "Cette adresse n'existe pas.");
            }
        } else {
            rq->body_max = rq->route->max_body == GCHO_BODY_UPLOAD
                           ? (size_t) gcho_ctx.conf.office_upload_max
                           : rq->route->max_body;
        }

        return MHD_YES;
    }

    if (*upload_data_size) {
        n = *upload_data_size;
        *upload_data_size = 0;

        if (rq->route == NULL || rq->body_too_large) {
            return MHD_YES;              /* read and dropped */
        }

        if (n > rq->body_max - rq->body_len) {
            rq->body_too_large = 1;
            free(rq->body);
            rq->body = NULL;
            rq->body_len = 0;
            return MHD_YES;
        }

        body = realloc(rq->body, rq->body_len + n + 1);
        if (body == NULL) {
            return MHD_NO;
        }

        memcpy(body + rq->body_len, upload_data, n);
        rq->body = body;
        rq->body_len += n;
        rq->body[rq->body_len] = '\0';

        return MHD_YES;
    }

    if (rq->hash != NULL) {
        /* resumed: the handler's second half (hash.c) */
        if (!gcho_hash_done(rq)) {
            gchb_log("error", "office: %s resumed before its hash",
                     rq->path);
            return MHD_NO;
        }
        gcho_town_use(rq);
        /* the session may have ended, the family been archived, while
         * it was hashed */
        if (gcho_authorize_resumed(rq) != 0) {
            return gcho_queue(c, rq);
        }
        if (rq->route->handler(rq) != 0 && rq->out == NULL) {
            gcho_error(rq, 500, "internal",
                       "Une erreur interne est survenue.");
        }
        gcho_rollback();
        return gcho_queue(c, rq);
    }

    gcho_dispatch(rq);

    if (rq->hash != NULL && rq->out == NULL) {
        /* the handler's first half left a hash to make: the connection
         * waits, suspended, while the server serves the others; the job
         * is queued only now, so that it cannot resume the connection
         * before it is suspended */
        MHD_suspend_connection(c);
        gcho_hash_queue(rq);
        return MHD_YES;
    }

    return gcho_queue(c, rq);
}


static void
gcho_completed(void *cls, struct MHD_Connection *c, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
    (void) cls;
    (void) c;
    (void) toe;

    if (*con_cls != NULL) {
        gcho_req_free(*con_cls);
        *con_cls = NULL;
    }
}


static void
gcho_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char  buf[512];

    (void) cls;

    vsnprintf(buf, sizeof(buf), fmt, ap);
    buf[strcspn(buf, "\n")] = '\0';
    gchb_log("warn", "office: microhttpd: %s", buf);
}


/* ------------------------------------------------------------------ */
/* listening                                                            */

/*
 * The socket's mode and group (office_socket_mode, office_socket_group):
 * only nginx's workers may connect, never any local user (who would
 * bypass nginx and write what it likes in X-Real-IP, hence in the audit
 * log).  The mode may not give others any right.  0 or -1 after logging.
 */
static int
gcho_socket_perms(const char *path)
{
    long            mode;
    char           *end;
    const char     *g;
    struct group   *gr;

    mode = strtol(gcho_ctx.conf.office_socket_mode, &end, 8);
    if (*end != '\0' || end == gcho_ctx.conf.office_socket_mode
        || mode < 0 || mode > 0770 || (mode & 07))
    {
        gchb_log("error", "office_socket_mode: an octal mode giving others "
                 "nothing (0600, 0660) is needed, not \"%s\"",
                 gcho_ctx.conf.office_socket_mode);
        return -1;
    }

    g = gcho_ctx.conf.office_socket_group;
    if (g[0]) {
        gr = getgrnam(g);
        if (gr == NULL) {
            gchb_log("error", "office_socket_group: no group \"%s\"", g);
            return -1;
        }
        if (chown(path, (uid_t) -1, gr->gr_gid) != 0) {
            gchb_log("error", "office_socket_group: chown %s to %s: %s",
                     path, g, strerror(errno));
            return -1;
        }
    }

    if (chmod(path, (mode_t) mode) != 0) {
        gchb_log("error", "office_socket_mode: chmod %s: %s", path,
                 strerror(errno));
        return -1;
    }

    return 0;
}


static int
gcho_listen_unix(const char *path)
{
    int                 fd;
    mode_t              um;
    struct sockaddr_un  sa;

    if (strlen(path) >= sizeof(sa.sun_path)) {
        gchb_log("error", "office_listen: path too long: %s", path);
        return -1;
    }

    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        gchb_log("error", "office_listen: socket: %s", strerror(errno));
        return -1;
    }

    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, path, strlen(path));

    (void) unlink(path);

    /* born 0600: nobody else connects before the mode and group are set */
    um = umask(0177);
    if (bind(fd, (struct sockaddr *) &sa, sizeof(sa)) != 0) {
        umask(um);
        gchb_log("error", "office_listen: %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    umask(um);

    if (gcho_socket_perms(path) != 0) {
        close(fd);
        (void) unlink(path);
        return -1;
    }

    if (listen(fd, 128) != 0) {
        gchb_log("error", "office_listen: %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }

    return fd;
}


static int
gcho_listen_tcp(const char *addr)
{
    int                 fd, one;
    long                port;
    char                host[64], *end;
    const char         *colon;
    struct sockaddr_in  sa;

    colon = strrchr(addr, ':');
    if (colon == NULL || (size_t) (colon - addr) >= sizeof(host)) {
        goto bad;
    }

    memcpy(host, addr, colon - addr);
    host[colon - addr] = '\0';
    port = strtol(colon + 1, &end, 10);
    if (*end != '\0' || port < 1 || port > 65535) {
        goto bad;
    }

    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t) port);
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        goto bad;
    }

    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        gchb_log("error", "office_listen: socket: %s", strerror(errno));
        return -1;
    }

    one = 1;
    (void) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));

    if (bind(fd, (struct sockaddr *) &sa, sizeof(sa)) != 0
        || listen(fd, 128) != 0)
    {
        gchb_log("error", "office_listen: %s: %s", addr, strerror(errno));
        close(fd);
        return -1;
    }

    return fd;

bad:

    gchb_log("error", "office_listen: not \"unix:/path\" nor "
             "\"ipv4:port\": %s", addr);
    return -1;
}


int
gcho_http_start(void)
{
    const char  *l = gcho_ctx.conf.office_listen;

    gcho_listen_fd = strncmp(l, "unix:", 5) == 0 ? gcho_listen_unix(l + 5)
                                                 : gcho_listen_tcp(l);
    if (gcho_listen_fd < 0) {
        return -1;
    }

    if (gcho_hash_start(gcho_ctx.conf.office_hash_threads) != 0) {
        return -1;
    }

    gcho_daemon = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ERROR_LOG
        | MHD_ALLOW_SUSPEND_RESUME,
        0, NULL, NULL, gcho_access, NULL,
        MHD_OPTION_EXTERNAL_LOGGER, gcho_mhd_log, NULL,
        MHD_OPTION_LISTEN_SOCKET, gcho_listen_fd,
        MHD_OPTION_NOTIFY_COMPLETED, gcho_completed, NULL,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int) 30,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned int) 256,
        MHD_OPTION_END);

    if (gcho_daemon == NULL) {
        gcho_hash_stop();
        gchb_log("error", "office: cannot start the HTTP server on %s", l);
        close(gcho_listen_fd);
        gcho_listen_fd = -1;
        return -1;
    }

    gchb_log("info", "office: listening on %s (%s)", l, gchb_conf_note());
    return 0;
}


void
gcho_http_stop(void)
{
    /* first the hashing threads: the jobs still waiting are resumed (and
     * answered 503) before the server stops */
    gcho_hash_stop();

    if (gcho_daemon != NULL) {
        MHD_stop_daemon(gcho_daemon);    /* closes the listening socket */
        gcho_daemon = NULL;
    }

    if (gcho_listen_fd >= 0) {
        gcho_listen_fd = -1;
        if (strncmp(gcho_ctx.conf.office_listen, "unix:", 5) == 0) {
            (void) unlink(gcho_ctx.conf.office_listen + 5);
        }
    }
}
