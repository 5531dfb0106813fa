/*
 * coresp.c -- a family's second legal representative, the
 * co-responsable, with a login of their own on the same file (issue 25).
 *
 *   GET    /api/co-responsables          family: theirs (invited, active)
 *   POST   /api/co-responsables          family: {first_name, last_name,
 *                                        email}: an invitation link
 *   DELETE /api/co-responsables/{id}     family: removed
 *   POST   /api/account/co-responsable   public: {token, login, password,
 *                                        cgu_version}: the invited person
 *                                        chooses their login
 *
 * Tokens: the module's token names a family, not a person.  A
 * co-responsable's login is one more entry of {T}:logins mapping to the
 * family's id with their own password hash (guichet-worker publishes the
 * co_responsable rows with the families', migration 0046), so the module
 * logs them in unchanged and both parents act on the same file; the
 * audit log's actor is the family either way.  The invitation is a link
 * the office answers once to the family (valid 7 days, single use, only
 * its SHA-256 stored), which the family hands to the co-responsable; the
 * login is chosen like the family's own (3 to 64 characters, unique across
 * families and co-responsables, a 10-character password hashed on a
 * hashing thread, the CGU in force accepted).  Removing the
 * co-responsable takes the login out of {T}:logins and ends every other
 * session of the family (the module cannot tell whose a session is).
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "office.h"


#define GCHO_COR_JSON                                                        \
    "json_build_object('id', c.id, 'first_name', c.first_name,"              \
    " 'last_name', c.last_name, 'email', c.email, 'login', c.login,"         \
    " 'status', case when c.login is null then 'invite' else 'actif' end,"   \
    " 'created_at', c.created_at, 'activated_at', c.activated_at,"           \
    " 'invite_expires_at', c.invite_expires_at)"



static int
gcho_cor_id_ok(const char *id)
{
    size_t  n;

    n = strlen(id);
    return n > 0 && n <= 18 && strspn(id, "0123456789") == n;
}


/* GET /api/co-responsables */
static int
gcho_cor_list(gcho_req_t *rq)
{
    const char  *p[1];

    p[0] = rq->family_id;

    return gcho_reply_row(rq, 200,
        "select json_build_object('co_responsables', coalesce(json_agg("
        GCHO_COR_JSON " order by c.id), '[]'))::text"
        " from co_responsable c where c.family_id = $1"
        " and c.removed_at is null", 1, p, "");
}


/* POST /api/co-responsables {"first_name", "last_name", "email"} */
static int
gcho_cor_invite(gcho_req_t *rq)
{
    int                 rc;
    char                first[101], last[101], email[128], tok[64];
    char                thash[crypto_hash_sha256_BYTES * 2 + 1];
    char                url[512], target[GCHO_ID_MAX + 24], *text, *out;
    uint8_t             raw[32], h[crypto_hash_sha256_BYTES];
    size_t              n;
    PGresult           *res;
    gch_json_t          doc;
    const char         *p[5], *at, *kv[2];
    const gch_jnode_t  *v[3];

    static const gch_jfield_t  fields[] = {
        { "first_name", GCH_J_STRING, 1 },
        { "last_name", GCH_J_STRING, 1 },
        { "email", GCH_J_STRING, 1 },
    };

    if (gcho_body_json(rq, &doc, fields, 3, v) != 0) {
        return 0;
    }
    rc = gcho_str(rq, "first_name", v[0], first, sizeof(first), 1) != 0
         || gcho_str(rq, "last_name", v[1], last, sizeof(last), 1) != 0
         || gcho_str(rq, "email", v[2], email, sizeof(email), 3) != 0;
    gch_json_free(&doc);
    if (rc) {
        return 0;
    }

    at = strchr(email, '@');
    if (at == NULL || at == email || at[1] == '\0'
        || strchr(at + 1, '@') != NULL || strpbrk(email, " \t\r\n<>"))
    {
        return gcho_error(rq, 400, "invalid_field", "Le champ email n'est "
                          "pas une adresse e-mail (nom@domaine).");
    }

    randombytes_buf(raw, sizeof(raw));
    sodium_bin2base64(tok, sizeof(tok), raw, sizeof(raw),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    crypto_hash_sha256(h, (const uint8_t *) tok, strlen(tok));
    sodium_bin2hex(thash, sizeof(thash), h, sizeof(h));
    sodium_memzero(raw, sizeof(raw));

    if (gcho_begin(rq) != 0) {
        return 0;
    }

    /* one at a time: the family's row locked, then the partial index */
    p[0] = rq->family_id;
    rc = gcho_sql_exists(rq, "select 1 from co_responsable c"
                             " join family f on f.id = c.family_id"
                             " where f.id = $1 and c.removed_at is null",
                         1, p);
    if (rc < 0) {
        return 0;
    }

    if (rc != 0) {
        gcho_rollback();
        return gcho_error(rq, 409, "co_responsable_exists",
                          "Votre dossier a déjà un co-responsable (invité "
                          "ou actif) : retirez-le avant d'en inviter un "
                          "autre.");
    }

    p[1] = first;
    p[2] = last;
    p[3] = email;
    p[4] = thash;
    rc = gcho_sql_value(rq, rq->param[0], GCHO_ID_MAX,
                        "insert into co_responsable (family_id,"
                        "   first_name, last_name, email, invite_hash,"
                        "   invite_expires_at)"
                        " values ($1, $2, $3, $4, $5,"
                        "   now() + interval '7 days') returning id",
                        5, p);
    if (rc < 0) {
        return 0;
    }

    snprintf(target, sizeof(target), "co_responsable:%s", rq->param[0]);
    kv[0] = "email";
    kv[1] = email;

    if (gcho_audit_kv(rq, "co_responsable.invite", target, kv, 1) != 0
        || gcho_commit(rq) != 0)
    {
        sodium_memzero(tok, sizeof(tok));
        return 0;
    }

    snprintf(url, sizeof(url), "%s/#/invitation?jeton=%s",
             gcho_ctx.conf.site_url, tok);
    sodium_memzero(tok, sizeof(tok));

    p[0] = rq->param[0];
    p[1] = url;
    res = gcho_sql(rq, "select (to_jsonb(" GCHO_COR_JSON ")"
                       " || jsonb_build_object('invitation_url', $2::text))"
                       "::text from co_responsable c where c.id = $1",
                   2, p);
    sodium_memzero(url, sizeof(url));
    if (res == NULL) {
        return 0;
    }

    text = PQgetvalue(res, 0, 0);
    n = strlen(text);
    out = malloc(n + 1);
    if (out == NULL) {
        PQclear(res);
        return -1;
    }
    memcpy(out, text, n + 1);
    sodium_memzero(text, n);
    PQclear(res);

    rc = gcho_reply(rq, 201, out, n);
    sodium_memzero(out, n);
    free(out);

    return rc;
}


/* DELETE /api/co-responsables/{id} */
static int
gcho_cor_remove(gcho_req_t *rq)
{
    int            go;
    char           login[65], target[GCHO_ID_MAX + 24];
    PGresult      *res;
    redisReply    *r;
    redisContext  *rc;
    const char    *p[2];

    if (!gcho_cor_id_ok(rq->param[0])) {
        return gcho_error(rq, 404, "not_found", "Co-responsable introuvable.");
    }

    if (gcho_begin(rq) != 0) {
        return 0;
    }

    p[0] = rq->param[0];
    p[1] = rq->family_id;
    go = gcho_sql_row(rq, &res, "Co-responsable introuvable.",
                      "update co_responsable set removed_at = now()"
                      " where id = $1 and family_id = $2"
                      " and removed_at is null"
                      " returning coalesce(login, '')", 2, p);
    if (go != GCHO_GO) {
        return go;
    }
    snprintf(login, sizeof(login), "%s", PQgetvalue(res, 0, 0));
    PQclear(res);

    snprintf(target, sizeof(target), "co_responsable:%s", rq->param[0]);

    if (gcho_audit(rq, "co_responsable.remove", target, NULL) != 0) {
        return 0;
    }

    /* an active one: the login out of {T}:logins and the sessions they
     * may hold ended, before the commit (Redis down: nothing changed) */
    if (login[0] != '\0') {
        rc = gcho_redis(rq);
        if (rc == NULL) {
            gcho_rollback();
            return 0;
        }
        r = redisCommand(rc, "HDEL " GCH_KEY_LOGINS " %s", gchb_town, login);
        if (r == NULL || r->type == REDIS_REPLY_ERROR) {
            gchb_log("error", "office: redis: HDEL logins %s: %s", login,
                     r ? r->str : rc->errstr);
            if (r != NULL) {
                freeReplyObject(r);
            }
            gcho_redis_drop_broken();
            gcho_rollback();
            return gcho_error(rq, 503, "unavailable", "Le service est "
                              "momentanément indisponible : le "
                              "co-responsable n'a pas été retiré.");
        }
        freeReplyObject(r);

        if (gcho_sessions_end(rq, rq->family_id, rq->token_hash,
                              "Le service est momentanément indisponible : "
                              "le co-responsable n'a pas été retiré.")
            != 0)
        {
            gcho_rollback();
            return 0;
        }

        if (gcho_catalogue_changed(rq) != 0) {
            return 0;
        }
    }

    if (gcho_commit(rq) != 0) {
        return 0;
    }

    return gcho_reply(rq, 204, "", 0);
}


/* ------------------------------------------------------------------ */
/* POST /api/account/co-responsable (public)                            */

static int
gcho_cor_invitation_invalid(gcho_req_t *rq)
{
    return gcho_error(rq, 400, "invitation_invalid",
                      "Ce lien d'invitation n'est plus valable (déjà "
                      "utilisé, retiré ou expiré) : demandez-en un nouveau "
                      "à l'autre responsable du dossier.");
}


/* In the transaction (or not): the invitation p[0] is open and login
 * p[1] is free.  GCHO_GO with the family in rq->family_id, or the
 * answer. */
static int
gcho_cor_open(gcho_req_t *rq, const char *const *p, int lock)
{
    int        n;
    PGresult  *res;

    res = gcho_sql(rq, lock
                   ? "select family_id from co_responsable"
                     " where invite_hash = $1 and login is null"
                     " and removed_at is null and invite_expires_at > now()"
                     " for update"
                   : "select family_id from co_responsable"
                     " where invite_hash = $1 and login is null"
                     " and removed_at is null and invite_expires_at > now()",
                   1, p);
    if (res == NULL) {
        return 0;
    }
    if (PQntuples(res) != 1) {
        PQclear(res);
        if (lock) {
            gcho_rollback();
        }
        return gcho_cor_invitation_invalid(rq);
    }
    snprintf(rq->family_id, sizeof(rq->family_id), "%s",
             PQgetvalue(res, 0, 0));
    PQclear(res);

    n = gcho_login_free(rq, p[1]);
    if (n < 0) {
        return 0;
    }

    if (n == 0) {
        if (lock) {
            gcho_rollback();
        }
        return gcho_login_taken(rq);
    }

    return GCHO_GO;
}


/* The second half: job->keep[0] the invitation's SHA-256, keep[1] the
 * login, job->made the hash; rq->param[0] the CGU version. */
static int
gcho_cor_accept_end(gcho_req_t *rq)
{
    int           rc;
    char          target[GCHO_ID_MAX + 24], id[24];
    char          body[GCHO_ID_MAX + 16];
    gcho_hash_t  *job;
    const char   *p[3], *kv[4];

    job = rq->hash;

    if (job->failed) {
        (void) gcho_unavailable(rq);
        return 0;
    }

    if (gcho_begin(rq) != 0) {
        return 0;
    }

    p[0] = job->keep[0];
    p[1] = job->keep[1];
    rc = gcho_cor_open(rq, p, 1);
    if (rc != GCHO_GO) {
        return rc;
    }

    p[2] = job->made;
    if (gcho_sql_value(rq, id, sizeof(id),
                       "update co_responsable set login = $2,"
                       " password_hash = $3, activated_at = now()"
                       " where invite_hash = $1 returning id", 3, p)
        < 0)
    {
        return 0;
    }

    snprintf(target, sizeof(target), "co_responsable:%s", id);
    kv[0] = "login";
    kv[1] = job->keep[1];
    kv[2] = "cgu_version";
    kv[3] = rq->param[0];

    if (gcho_catalogue_changed(rq) != 0
        || gcho_audit_kv(rq, "co_responsable.activate", target, kv, 2) != 0
        || gcho_commit(rq) != 0)
    {
        return 0;
    }

    gcho_login_publish(job->keep[1], rq->family_id, job->made);
    gcho_login_throttle_clear(rq, "invite", job->keep[0] + 48);

    snprintf(body, sizeof(body), "{\"login\":\"%s\"}", job->keep[1]);
    return gcho_reply(rq, 200, body, strlen(body));
}


static int
gcho_cor_accept(gcho_req_t *rq)
{
    int                 rc;
    char                tok[101], login[65], pw[GCHO_PW_BYTES], ver[24];
    char                thash[crypto_hash_sha256_BYTES * 2 + 1];
    uint8_t             h[crypto_hash_sha256_BYTES];
    gch_json_t          doc;
    gcho_hash_t        *job;
    const char         *p[2];
    const gch_jnode_t  *v[4];

    static const gch_jfield_t  fields[] = {
        { "token", GCH_J_STRING, 1 },
        { "login", GCH_J_STRING, 1 },
        { "password", GCH_J_STRING, 1 },
        { "cgu_version", GCH_J_NUMBER, 1 },
    };

    if (rq->hash != NULL) {
        return gcho_cor_accept_end(rq);
    }

    if (gcho_body_json(rq, &doc, fields, 4, v) != 0) {
        return 0;
    }
    rc = gcho_str(rq, "token", v[0], tok, sizeof(tok), 1) != 0
         || gcho_str(rq, "login", v[1], login, sizeof(login), 1) != 0
         || gcho_str(rq, "password", v[2], pw, sizeof(pw), 1) != 0;
    if (rc == 0) {
        snprintf(ver, sizeof(ver), "%.*s", (int) v[3]->len, v[3]->str);
    }
    gch_json_free(&doc);

    if (rc) {
        goto done;
    }

    if (gcho_account_choice_check(rq, login, pw, ver) != 0) {
        goto done;
    }

    crypto_hash_sha256(h, (const uint8_t *) tok, strlen(tok));
    sodium_bin2hex(thash, sizeof(thash), h, sizeof(h));

    /* counted like a login, per invitation and address */
    if (gcho_login_throttle(rq, "invite", thash + 48) != 0) {
        goto done;
    }

    p[0] = thash;
    p[1] = login;
    if (gcho_cor_open(rq, p, 0) != GCHO_GO) {
        goto done;
    }

    job = gcho_hash_prepare(rq);
    if (job != NULL) {
        snprintf(job->make_pw, sizeof(job->make_pw), "%s", pw);
        snprintf(job->keep[0], sizeof(job->keep[0]), "%s", thash);
        snprintf(job->keep[1], sizeof(job->keep[1]), "%s", login);
        snprintf(rq->param[0], GCHO_ID_MAX, "%s", ver);
    }

done:

    sodium_memzero(pw, sizeof(pw));
    sodium_memzero(tok, sizeof(tok));
    return 0;
}


const gcho_route_t  gcho_coresp_routes[] = {
    { "GET", "/api/co-responsables", GCHO_FAMILY, 0, 0, gcho_cor_list },
    { "POST", "/api/co-responsables", GCHO_FAMILY, 0, GCHO_BODY_JSON,
      gcho_cor_invite },
    { "DELETE", "/api/co-responsables/*", GCHO_FAMILY, 0, 0,
      gcho_cor_remove },
    { "POST", "/api/account/co-responsable", GCHO_PUBLIC, 0, GCHO_BODY_JSON,
      gcho_cor_accept },
    { NULL, NULL, 0, 0, 0, NULL }
};
