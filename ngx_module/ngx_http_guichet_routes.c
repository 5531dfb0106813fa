/*
 * ngx_http_guichet_routes.c -- the endpoints of /api/: one table, one
 * dispatcher.
 *
 * To add an endpoint: a row here (method, path, who may call it, whether a
 * cookie-borne request must prove its Origin, whether the handler reads
 * the body) and its handler in the room of its concern
 * (ngx_http_guichet_api.h).  The dispatcher gives every refusal the table
 * implies: 404 for a path no row has, 405 for a method no row of that
 * path has, 401 unauthenticated, 403 forbidden (the counter's rows) and
 * 403 bad_origin; a body nobody reads is discarded first, so that
 * keepalive stays sane.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_guichet_api.h"


#define NGX_HTTP_GUICHET_GET     (NGX_HTTP_GET|NGX_HTTP_HEAD)


typedef enum {
    NGX_HTTP_GUICHET_ANYONE = 0,
    NGX_HTTP_GUICHET_FAMILY,        /* any valid token ("a family's") */
    NGX_HTTP_GUICHET_AGENT          /* a counter agent's bearer token */
} ngx_http_guichet_who_e;


typedef struct {
    ngx_uint_t                    methods;      /* NGX_HTTP_GET|... */
    const char                   *path;         /* after /api/; "*": below */
    ngx_http_guichet_who_e        who;
    unsigned                      origin:1;     /* cookie: Origin is ours */
    unsigned                      body:1;       /* the handler reads it */
    unsigned                      who_first:1;  /* 401 before 405 */
    ngx_http_guichet_route_pt     handler;
} ngx_http_guichet_route_t;


/*
 * A "*" matches one or more characters: up to the next "/" in the middle
 * of a path, the rest of the path (slashes included) at its end; what it
 * matched is the handler's call->arg.  The first row whose path and
 * method match is taken.  /api/me and /api/bookings answer 401 before
 * 405 (who_first), the others 405 first.
 */
static ngx_http_guichet_route_t  ngx_http_guichet_routes[] = {

    { NGX_HTTP_GUICHET_GET, "health", NGX_HTTP_GUICHET_ANYONE, 0, 0, 0,
      ngx_http_guichet_health },

    { NGX_HTTP_POST, "session", NGX_HTTP_GUICHET_ANYONE, 0, 1, 0,
      ngx_http_guichet_login },

    { NGX_HTTP_DELETE, "session", NGX_HTTP_GUICHET_ANYONE, 0, 0, 0,
      ngx_http_guichet_logout },

    { NGX_HTTP_GUICHET_GET, "activities", NGX_HTTP_GUICHET_ANYONE, 0, 0, 0,
      ngx_http_guichet_activities },

    { NGX_HTTP_GUICHET_GET, "activities/*/sessions", NGX_HTTP_GUICHET_ANYONE,
      0, 0, 0, ngx_http_guichet_sessions },

    { NGX_HTTP_DELETE, "bookings/*", NGX_HTTP_GUICHET_FAMILY, 1, 0, 0,
      ngx_http_guichet_cancel },

    { NGX_HTTP_POST, "staff/bookings", NGX_HTTP_GUICHET_AGENT, 0, 1, 0,
      ngx_http_guichet_book_staff },

    { NGX_HTTP_GUICHET_GET, "waitlist", NGX_HTTP_GUICHET_FAMILY, 0, 0, 0,
      ngx_http_guichet_waitlist },

    { NGX_HTTP_DELETE, "waitlist/*", NGX_HTTP_GUICHET_FAMILY, 1, 0, 0,
      ngx_http_guichet_waitlist },

    { NGX_HTTP_POST, "absences", NGX_HTTP_GUICHET_FAMILY, 1, 1, 0,
      ngx_http_guichet_absence },

    { NGX_HTTP_GUICHET_GET, "invoices", NGX_HTTP_GUICHET_FAMILY, 0, 0, 0,
      ngx_http_guichet_invoices },

    { NGX_HTTP_GUICHET_GET, "invoices/", NGX_HTTP_GUICHET_FAMILY, 0, 0, 0,
      ngx_http_guichet_invoice_pdf },           /* no name: 404 */

    { NGX_HTTP_GUICHET_GET, "invoices/*", NGX_HTTP_GUICHET_FAMILY, 0, 0, 0,
      ngx_http_guichet_invoice_pdf },

    { NGX_HTTP_GUICHET_GET, "requests", NGX_HTTP_GUICHET_FAMILY, 0, 0, 0,
      ngx_http_guichet_requests },

    { NGX_HTTP_GUICHET_GET, "me", NGX_HTTP_GUICHET_FAMILY, 0, 0, 1,
      ngx_http_guichet_me },

    { NGX_HTTP_GUICHET_GET, "bookings", NGX_HTTP_GUICHET_FAMILY, 0, 0, 1,
      ngx_http_guichet_planning },

    { NGX_HTTP_POST, "bookings", NGX_HTTP_GUICHET_FAMILY, 1, 1, 1,
      ngx_http_guichet_book_family },

    { 0, NULL, 0, 0, 0, 0, NULL }
};


/* Does path match pattern?  arg gets what its "*" matched. */
static ngx_uint_t
ngx_http_guichet_route_match(const char *pattern, ngx_str_t *path,
    ngx_str_t *arg)
{
    u_char      *p, *end;
    const char  *q;

    p = path->data;
    end = path->data + path->len;
    arg->data = NULL;
    arg->len = 0;

    for (q = pattern; *q; q++) {

        if (*q != '*') {
            if (p == end || *p != (u_char) *q) {
                return 0;
            }

            p++;
            continue;
        }

        arg->data = p;

        if (q[1] == '\0') {
            p = end;

        } else {
            while (p < end && *p != '/') {
                p++;
            }
        }

        arg->len = p - arg->data;

        if (arg->len == 0) {
            return 0;
        }
    }

    return p == end;
}


/*
 * Who is asking, against what the row requires: NGX_OK, or the answer
 * (401, 403 forbidden or bad_origin) already sent.
 */
static ngx_int_t
ngx_http_guichet_route_allow(ngx_http_request_t *r,
    ngx_http_guichet_route_t *rt, ngx_http_guichet_call_t *call,
    ngx_uint_t *allowed)
{
    *allowed = 0;

    if (rt->who == NGX_HTTP_GUICHET_ANYONE) {
        *allowed = 1;
        return NGX_OK;
    }

    if (ngx_http_guichet_auth(r, call->fid, sizeof(call->fid), &call->cookie)
        != NGX_OK)
    {
        return ngx_http_guichet_unauthenticated(r,
                   rt->who == NGX_HTTP_GUICHET_AGENT
                   ? NGX_HTTP_GUICHET_AGENT_MSG
                   : NGX_HTTP_GUICHET_FAMILY_MSG);
    }

    /* agents only, and never through a browser's cookie */
    if (rt->who == NGX_HTTP_GUICHET_AGENT
        && (call->cookie || ngx_strncmp(call->fid, "staff:", 6) != 0))
    {
        (void) ngx_http_guichet_discard(r);
        return ngx_http_guichet_error(r, GCH_EFORBIDDEN,
                                      "Réservé aux agents du guichet.");
    }

    if (rt->origin && call->cookie && !ngx_http_guichet_origin_ok(r)) {
        return ngx_http_guichet_bad_origin(r);
    }

    *allowed = 1;
    return NGX_OK;
}


ngx_int_t
ngx_http_guichet_api_handler(ngx_http_request_t *r)
{
    ngx_int_t                  rc;
    ngx_str_t                  path, arg;
    ngx_uint_t                 allowed;
    ngx_http_guichet_call_t    call;
    ngx_http_guichet_route_t  *rt, *found;

    if (r->uri.len < 5 || ngx_strncmp(r->uri.data, "/api/", 5) != 0) {
        return ngx_http_guichet_not_found(r);
    }

    path.data = r->uri.data + 5;
    path.len = r->uri.len - 5;

    found = NULL;

    for (rt = ngx_http_guichet_routes; rt->path; rt++) {
        if (!ngx_http_guichet_route_match(rt->path, &path, &arg)) {
            continue;
        }

        if (found == NULL) {
            found = rt;
        }

        if (rt->methods & r->method) {
            break;
        }
    }

    if (rt->path == NULL || !rt->body) {
        (void) ngx_http_guichet_discard(r);
    }

    if (found == NULL) {
        return ngx_http_guichet_not_found(r);
    }

    ngx_memzero(&call, sizeof(ngx_http_guichet_call_t));

    if (rt->path == NULL) {
        /* no row of this path takes this method */

        if (found->who_first
            && ngx_http_guichet_auth(r, call.fid, sizeof(call.fid),
                                     &call.cookie)
               != NGX_OK)
        {
            return ngx_http_guichet_unauthenticated(r,
                                               NGX_HTTP_GUICHET_FAMILY_MSG);
        }

        return ngx_http_guichet_not_allowed(r);
    }

    rc = ngx_http_guichet_route_allow(r, rt, &call, &allowed);
    if (!allowed) {
        return rc;
    }

    call.arg = arg;

    return rt->handler(r, &call);
}
