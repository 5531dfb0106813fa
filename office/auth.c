/*
 * auth.c -- guichet-office's authentication, the module's
 * (ngx_http_guichet_session.c): a bearer token or the session cookie of
 * the name nginx gives (X-Guichet-Cookie), checked with gch_token_verify()
 * and against the logout set {T}:revoked (BLAKE2b-128 of the token,
 * hex); cookie requests that change something must carry a matching
 * Origin.  Staff tokens
 * ("staff:<login>") are bearer only and need an active staff_account row
 * whose role ranks at least the route's; a family token needs its family
 * still there, not archived.  http.c calls gcho_authorize()
 * before the handler.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <microhttpd.h>
#include <sodium.h>

#include "office.h"


/* ------------------------------------------------------------------ */
/* authentication                                                       */

static int
gcho_origin_ok(gcho_req_t *rq)
{
    const char  *o, *host, *p;

    o = gcho_header(rq, "Origin");
    host = gcho_header(rq, "Host");
    if (o == NULL || host == NULL) {
        return 0;
    }

    p = strstr(o, "://");
    if (p == NULL) {
        return 0;
    }

    return strcasecmp(p + 3, host) == 0;
}


/*
 * The session cookie's name, the module's: nginx sends it in
 * X-Guichet-Cookie ($guichet_cookie_name, office.conf), and only one is
 * read, as by the module.  "guichet_session" (guichet_cookie_secure off:
 * plain http in development) only when nginx names it; anything else, no
 * header included, is production's "__Host-guichet_session", which no
 * other host of the domain can set (a guichet_session planted by a
 * sibling subdomain would log the browser into the planter's family).
 */
static const char *
gcho_cookie_name(gcho_req_t *rq)
{
    const char  *name;

    name = gcho_header(rq, "X-Guichet-Cookie");

    if (name != NULL && strcmp(name, "guichet_session") == 0) {
        return "guichet_session";
    }

    return "__Host-guichet_session";
}


/*
 * The request's token (rq->token_hash) is in the logout set {T}:revoked:
 * 1, 0, or -1 after answering 503.
 */
static int
gcho_token_revoked(gcho_req_t *rq)
{
    int            revoked;
    redisReply    *r;
    redisContext  *rc;

    rc = gcho_redis(rq);
    if (rc == NULL) {
        return -1;
    }

    r = redisCommand(rc, "ZSCORE " GCH_KEY_REVOKED " %s", gchb_town,
                     rq->token_hash);
    if (r == NULL || r->type == REDIS_REPLY_ERROR) {
        gchb_log("error", "office: redis: ZSCORE {%s}:revoked: %s", gchb_town,
                 r ? r->str : rc->errstr);
        if (r) {
            freeReplyObject(r);
        }
        gcho_unavailable(rq);
        return -1;
    }

    revoked = r->type != REDIS_REPLY_NIL;
    freeReplyObject(r);

    return revoked;
}


/*
 * Fills rq->family_id or rq->staff from the token.  1: a valid token,
 * 0: none or invalid, -1: Redis unreachable (503 answered).
 */
static int
gcho_token(gcho_req_t *rq)
{
    char            fid[GCHO_ID_MAX];
    uint8_t         hash[GCH_TOKEN_HASH_LEN];
    const char     *auth, *tok;

    auth = gcho_header(rq, "Authorization");

    if (auth != NULL && strncasecmp(auth, "Bearer ", 7) == 0) {
        tok = auth + 7;
    } else {
        tok = MHD_lookup_connection_value(rq->conn, MHD_COOKIE_KIND,
                                          gcho_cookie_name(rq));
        if (tok == NULL) {
            return 0;
        }
        rq->cookie = 1;
    }

    /* a token of the request's town (gcho_town_use) only */
    if (gch_token_verify(gcho_ctx.secret, gchb_town, tok, strlen(tok),
                         gcho_now(), fid, sizeof(fid), &rq->token_expires)
        != 0)
    {
        return 0;
    }

    gch_token_hash(tok, strlen(tok), hash);
    sodium_bin2hex(rq->token_hash, sizeof(rq->token_hash), hash,
                   sizeof(hash));

    switch (gcho_token_revoked(rq)) {
    case -1:
        return -1;
    case 1:
        return 0;                        /* logged out */
    }

    if (strncmp(fid, "staff:", 6) == 0) {
        snprintf(rq->staff, sizeof(rq->staff), "%s", fid + 6);
    } else {
        snprintf(rq->family_id, sizeof(rq->family_id), "%s", fid);
    }

    return 1;
}


/*
 * A family token's family still has a file: 1, 0 (archived, or merged
 * into another: archived too, or no such family), -1 after answering 503.
 * Archiving takes the family out of the catalogue, so the module refuses
 * its tokens; guichet-office asks PostgreSQL, or a session opened before
 * would read the file and write personal data back into it.
 */
static int
gcho_family_live(gcho_req_t *rq)
{
    const char  *p[1];

    p[0] = rq->family_id;

    return gcho_sql_exists(rq, "select 1 from family"
                               " where id = $1 and archived_at is null",
                           1, p);
}


/* The family's file is there: 0, or -1 after answering (401, 503). */
static int
gcho_family_ok(gcho_req_t *rq)
{
    int  rc;

    rc = gcho_family_live(rq);
    if (rc < 0) {
        return -1;
    }

    if (rc == 0) {
        gcho_error(rq, 401, "unauthenticated",
                   "Ce compte n'existe plus : votre session est "
                   "terminée.");
        return -1;
    }

    return 0;
}


static int
gcho_staff_role(gcho_req_t *rq)
{
    int          role;
    PGresult    *res;
    const char  *p[1], *v;

    p[0] = rq->staff;
    res = gcho_sql(rq, "select role from staff_account"
                       " where login = $1 and active", 1, p);
    if (res == NULL) {
        return -1;
    }

    role = 0;
    if (PQntuples(res) == 1) {
        v = PQgetvalue(res, 0, 0);
        role = strcmp(v, "admin") == 0 ? GCHO_ADMIN
               : strcmp(v, "regie") == 0 ? GCHO_REGIE
               : strcmp(v, "agent") == 0 ? GCHO_AGENT : 0;
    }

    PQclear(res);
    rq->staff_role = role;
    return 0;
}


/* See office.h. */
int
gcho_authorize(gcho_req_t *rq)
{
    int  rc;

    rc = gcho_token(rq);
    if (rc < 0) {
        return -1;
    }

    if (rq->route->auth == GCHO_PUBLIC) {
        return 0;
    }

    if (rc == 0) {
        gcho_error(rq, 401, "unauthenticated",
                   rq->route->auth == GCHO_STAFF
                   ? "Un jeton d'agent du guichet est nécessaire."
                   : "Connectez-vous pour accéder à votre espace.");
        return -1;
    }

    if (rq->route->auth == GCHO_FAMILY) {
        if (rq->family_id[0] == '\0') {
            gcho_error(rq, 403, "forbidden",
                       "Réservé aux familles connectées.");
            return -1;
        }

        if (rq->cookie && strcmp(rq->method, "GET") != 0
            && strcmp(rq->method, "HEAD") != 0 && !gcho_origin_ok(rq))
        {
            gcho_error(rq, 403, "bad_origin",
                       "Cette demande ne vient pas du site du guichet.");
            return -1;
        }

        return gcho_family_ok(rq);
    }

    /* GCHO_STAFF: bearer tokens only, an active account of enough rank */

    if (rq->staff[0] == '\0' || rq->cookie) {
        gcho_error(rq, 403, "forbidden", "Réservé aux agents du guichet.");
        return -1;
    }

    if (gcho_staff_role(rq) != 0) {
        return -1;
    }

    if (rq->staff_role < rq->route->role) {
        gcho_error(rq, 403, "forbidden",
                   rq->staff_role == 0
                   ? "Ce compte d'agent n'existe pas ou est désactivé."
                   : "Votre rôle ne permet pas cette action.");
        return -1;
    }

    return 0;
}


/*
 * See office.h.  A family's request whose first half ran before its hash
 * (a password change) meets its session and its family's file again
 * after it: a removal of the co-responsable, a logout or a password set
 * elsewhere ended the session meanwhile, or an archiving erased the
 * file, and nothing is written back.  No route of a staff token hashes
 * (the staff login, public, reads its account again itself); one that
 * ever does must check it here too.
 */
int
gcho_authorize_resumed(gcho_req_t *rq)
{
    int  rc;

    if (rq->route->auth != GCHO_FAMILY || rq->family_id[0] == '\0') {
        return 0;
    }

    rc = gcho_token_revoked(rq);
    if (rc < 0) {
        return -1;
    }

    if (rc == 1) {
        gcho_error(rq, 401, "unauthenticated",
                   "Votre session est terminée : reconnectez-vous.");
        return -1;
    }

    return gcho_family_ok(rq);
}
