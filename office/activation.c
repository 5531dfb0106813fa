/*
 * activation.c -- guichet-office: « Créer mon espace », a family's first
 * connection (issue 25).
 *
 * The town created the family's file (town file or back office) and sent
 * it its dossier number (the family's id) and a code (guichetctl invite,
 * ctl/invite.c: an e-mail through the outbox; or a letter).  With both,
 * the family accepts the current terms of use (CGU, cgu_version), gives
 * its e-mail address and chooses a login and a password:
 * POST /api/account/create.  The attempt is counted like a login
 * (gcho_login_throttle, kind "dossier": a growing pause per dossier and
 * address, a hard limit per address), the code checked (its SHA-256,
 * unused, not expired; an unknown dossier is answered the same), the
 * login must be free; then the password is hashed on a hashing thread
 * (hash.c) and the second half records the activation (its link's
 * SHA-256, valid 24 hours) and e-mails the link (outbox kind activation,
 * whose body worker/mail.c wipes when it sends it).
 *
 * POST /api/account/activate {token} uses the link once: family.login,
 * password_hash, cgu_version, activated_at set, the code used, the
 * family's other links ended, the catalogue marked changed (the worker
 * republishes {T}:logins) and the login published at once.  The family
 * can log in.
 *
 * A new version of the CGU asks again: GET /api/account says whether the
 * family accepted the current one, POST /api/account/cgu {version}
 * accepts it (audited).  Tables of migration 0023.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "office.h"


#define GCHO_ACT_PW_MIN  10          /* characters, as account.c */


static const char  gcho_cgu_sql[] =
    "select json_build_object('version', version, 'title', title,"
    " 'published_at', published_at)"
    " from cgu_version order by version desc limit 1";


/* GET /api/account/cgu (public): the current terms of use */
static int
gcho_cgu_get(gcho_req_t *rq)
{
    return gcho_reply_row(rq, 200, gcho_cgu_sql, 0, NULL,
                          "Aucune version des conditions d'utilisation.");
}


/* GET /api/account (family) */
static int
gcho_account_get(gcho_req_t *rq)
{
    const char  *p[1];

    p[0] = rq->family_id;

    return gcho_reply_row(rq, 200,
        "select json_build_object('family_id', f.id, 'login', f.login,"
        " 'cgu_version', f.cgu_version, 'cgu_accepted_at',"
        " f.cgu_accepted_at, 'activated_at', f.activated_at,"
        " 'cgu_current', c.version, 'cgu_title', c.title,"
        " 'cgu_ok', f.cgu_version is not distinct from c.version)"
        " from family f left join lateral (select version, title"
        "   from cgu_version order by version desc limit 1) c on true"
        " where f.id = $1", 1, p, "Famille inconnue.");
}


/* POST /api/account/cgu {"version"} (family): accepts that version, which
 * must be the current one */
static int
gcho_cgu_accept(gcho_req_t *rq)
{
    int                 n;
    char                ver[24], target[GCHO_ID_MAX + 16];
    gch_json_t          doc;
    const char         *p[2], *kv[2];
    const gch_jnode_t  *v[1];

    static const gch_jfield_t  fields[] = {
        { "version", GCH_J_NUMBER, 1 },
    };

    if (gcho_body_json(rq, &doc, fields, 1, v) != 0) {
        return 0;
    }
    snprintf(ver, sizeof(ver), "%.*s", (int) v[0]->len, v[0]->str);
    gch_json_free(&doc);

    if (gcho_begin(rq) != 0) {
        return 0;
    }

    p[0] = rq->family_id;
    p[1] = ver;
    n = gcho_sql_changed(rq, "update family set cgu_version = $2::int,"
                             "   cgu_accepted_at = now()"
                             " where id = $1 and $2 ~ '^[0-9]{1,9}$'"
                             " and $2::bigint = (select max(version)"
                             "   from cgu_version)", 2, p);
    if (n < 0) {
        return 0;
    }

    if (n != 1) {
        gcho_rollback();
        return gcho_error(rq, 400, "invalid_field", "Le champ version n'est "
                          "pas la version en vigueur des conditions "
                          "d'utilisation.");
    }

    snprintf(target, sizeof(target), "family:%s", rq->family_id);
    kv[0] = "version";
    kv[1] = ver;

    if (gcho_audit_kv(rq, "account.cgu", target, kv, 1) != 0
        || gcho_commit(rq) != 0)
    {
        return 0;
    }

    return gcho_account_get(rq);
}


/* A login the family chooses: 3 to 64 of A-Z a-z 0-9 . _ - @ */
static int
gcho_login_ok(const char *s)
{
    size_t  n;

    n = strlen(s);

    return n >= 3 && n <= 64
           && strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                        "0123456789._-@") == n;
}


/* Characters (UTF-8 code points) of a string already checked. */
static size_t
gcho_chars(const char *s)
{
    size_t  n;

    for (n = 0; *s != '\0'; s++) {
        if (((unsigned char) *s & 0xc0) != 0x80) {
            n++;
        }
    }

    return n;
}


static int
gcho_code_invalid(gcho_req_t *rq)
{
    return gcho_error(rq, 400, "activation_code_invalid",
                      "Numéro de dossier ou code d'activation incorrect (ou "
                      "déjà utilisé, ou expiré) : vérifiez le courrier ou "
                      "l'e-mail de la mairie.");
}


int
gcho_login_taken(gcho_req_t *rq)
{
    return gcho_error(rq, 409, "login_taken",
                      "Cet identifiant est déjà pris : choisissez-en un "
                      "autre.");
}


int
gcho_login_free(gcho_req_t *rq, const char *login)
{
    int          taken;
    const char  *p[1];

    p[0] = login;
    taken = gcho_sql_exists(rq, "select 1 from family where login = $1"
                                " union all select 1 from co_responsable"
                                " where login = $1"
                                " union all select 1 from family_request"
                                " where login = $1"
                                "   and status = 'a_confirmer'"
                                "   and confirm_expires_at > now()", 1, p);
    if (taken < 0) {
        return -1;
    }

    return !taken;
}


int
gcho_account_choice_check(gcho_req_t *rq, const char *login, const char *pw,
    const char *ver)
{
    int          rc;
    const char  *p[1];

    if (!gcho_login_ok(login)) {
        (void) gcho_error(rq, 400, "invalid_field", "Le champ login doit "
                          "faire de 3 à 64 caractères : lettres sans "
                          "accent, chiffres, « . », « _ », « - », « @ ».");
        return -1;
    }

    if (gcho_chars(pw) < GCHO_ACT_PW_MIN) {
        (void) gcho_error(rq, 400, "invalid_field", "Le mot de passe doit "
                          "faire 10 caractères au moins.");
        return -1;
    }

    /* the terms of use: the current version, accepted */
    p[0] = ver;
    rc = gcho_sql_exists(rq, "select 1 where $1 ~ '^[0-9]{1,9}$'"
                             " and $1::bigint = (select max(version)"
                             "   from cgu_version)", 1, p);
    if (rc < 0) {
        return -1;
    }

    if (rc == 0) {
        (void) gcho_error(rq, 400, "invalid_field", "Acceptez la version en "
                          "vigueur des conditions d'utilisation (champ "
                          "cgu_version).");
        return -1;
    }

    return 0;
}


/* In the transaction: the code of dossier p[0], its SHA-256 p[1], is open
 * and the family has no account yet (for update).  1, 0 when not, -1
 * after answering 503. */
static int
gcho_code_open(gcho_req_t *rq, const char *const *p)
{
    /* family_code's key is family_id: one row at the most */
    return gcho_sql_exists(rq, "select 1 from family_code c join family f"
                               "   on f.id = c.family_id"
                               " where c.family_id = $1"
                               "   and c.code_hash = $2"
                               "   and c.used_at is null"
                               "   and c.expires_at > now()"
                               "   and f.login is null"
                               "   and f.archived_at is null"
                               "   and not exists (select 1"
                               "     from family_request r"
                               "     where r.family_id = f.id)"
                               " for update of c", 2, p);
}


/* The second half of POST /api/account/create: job->keep[0] the dossier,
 * keep[1] the code's SHA-256; job->made the password's hash; the login,
 * e-mail and CGU version in rq->param[0..2]. */
static int
gcho_account_create_end(gcho_req_t *rq)
{
    int           rc;
    char          tok[64], thash[crypto_hash_sha256_BYTES * 2 + 1];
    char          body[1400], target[GCHO_ID_MAX + 16];
    uint8_t       raw[32], h[crypto_hash_sha256_BYTES];
    gcho_hash_t  *job;
    const char   *p[6], *kv[4];

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
    rc = gcho_code_open(rq, p);
    if (rc < 0) {
        return 0;
    }
    if (rc == 0) {
        gcho_rollback();
        return gcho_code_invalid(rq);
    }

    randombytes_buf(raw, sizeof(raw));
    sodium_bin2base64(tok, sizeof(tok), raw, sizeof(raw),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    crypto_hash_sha256(h, (const uint8_t *) tok, strlen(tok));
    sodium_bin2hex(thash, sizeof(thash), h, sizeof(h));

    p[0] = thash;
    p[1] = job->keep[0];
    p[2] = rq->param[0];
    p[3] = job->made;
    p[4] = rq->param[2];
    if (gcho_sql_do(rq, "insert into account_activation (token_hash,"
                        "   family_id, login, password_hash, cgu_version,"
                        "   expires_at)"
                        " values ($1, $2, $3, $4, $5::int,"
                        "   now() + interval '24 hours')", 5, p) != 0)
    {
        return 0;
    }

    p[0] = job->keep[0];
    p[1] = rq->param[1];
    if (gcho_sql_do(rq, "insert into family_email (family_id, address)"
                        " values ($1, $2) on conflict (family_id) do update"
                        " set address = excluded.address", 2, p) != 0)
    {
        return 0;
    }

    snprintf(body, sizeof(body),
             "Bonjour,\n\n"
             "Vous avez demandé la création de votre Espace Famille "
             "(dossier %s, identifiant %s).\n\n"
             "Pour l'activer, ouvrez ce lien dans les 24 heures ; il ne "
             "sert qu'une fois :\n\n"
             "%s/#/activer?jeton=%s\n\n"
             "Si vous n'êtes pas à l'origine de cette demande, ignorez ce "
             "message et prévenez la mairie.\n",
             job->keep[0], rq->param[0], gcho_ctx.conf.site_url, tok);

    /* the family is the actor: rq has no token */
    snprintf(rq->family_id, sizeof(rq->family_id), "%s", job->keep[0]);
    snprintf(target, sizeof(target), "family:%s", job->keep[0]);
    kv[0] = "login";
    kv[1] = rq->param[0];
    kv[2] = "cgu_version";
    kv[3] = rq->param[2];

    rc = gcho_mail(rq, job->keep[0], "activation", thash,
                   "Activez votre Espace Famille", body) != 0
         || gcho_audit_kv(rq, "account.create", target, kv, 2) != 0
         || gcho_commit(rq) != 0;

    sodium_memzero(tok, sizeof(tok));
    sodium_memzero(body, sizeof(body));

    if (rc) {
        return 0;
    }

    gcho_login_throttle_clear(rq, "dossier", job->keep[0]);

    return gcho_reply(rq, 202, "{\"status\":\"sent\"}", 17);
}


/* POST /api/account/create {"dossier", "code", "email", "login",
 * "password", "cgu_version"} (public) */
static int
gcho_account_create(gcho_req_t *rq)
{
    int                 rc;
    char                dossier[GCHO_ID_MAX], code[65], email[GCHO_ID_MAX];
    char                login[65], pw[GCHO_PW_BYTES], ver[24];
    char                chash[crypto_hash_sha256_BYTES * 2 + 1];
    uint8_t             h[crypto_hash_sha256_BYTES];
    size_t              i, n;
    gch_json_t          doc;
    gcho_hash_t        *job;
    const char         *p[2], *at;
    const gch_jnode_t  *v[6];

    static const gch_jfield_t  fields[] = {
        { "dossier", GCH_J_STRING, 1 },
        { "code", GCH_J_STRING, 1 },
        { "email", GCH_J_STRING, 1 },
        { "login", GCH_J_STRING, 1 },
        { "password", GCH_J_STRING, 1 },
        { "cgu_version", GCH_J_NUMBER, 1 },
    };

    if (rq->hash != NULL) {
        return gcho_account_create_end(rq);
    }

    if (gcho_body_json(rq, &doc, fields, 6, v) != 0) {
        return 0;
    }

    rc = gcho_str(rq, "dossier", v[0], dossier, sizeof(dossier), 1) != 0
         || gcho_str(rq, "code", v[1], code, sizeof(code), 1) != 0
         || gcho_str(rq, "email", v[2], email, sizeof(email), 3) != 0
         || gcho_str(rq, "login", v[3], login, sizeof(login), 1) != 0
         || gcho_str(rq, "password", v[4], pw, sizeof(pw), 1) != 0;
    if (rc == 0) {
        snprintf(ver, sizeof(ver), "%.*s", (int) v[5]->len, v[5]->str);
    }
    gch_json_free(&doc);

    if (rc) {
        goto done;
    }

    at = strchr(email, '@');
    if (at == NULL || at == email || at[1] == '\0'
        || strchr(at + 1, '@') != NULL || strpbrk(email, " \t\r\n<>"))
    {
        rc = gcho_error(rq, 400, "invalid_field", "Le champ email n'est pas "
                        "une adresse e-mail (nom@domaine).");
        goto done;
    }

    if (gcho_account_choice_check(rq, login, pw, ver) != 0) {
        goto done;
    }

    /* counted like a login, before the code is checked */
    if (gcho_login_throttle(rq, "dossier", dossier) != 0) {
        goto done;
    }

    /* the code as the town wrote it: spaces and dashes ignored, upper
     * case */
    for (i = 0, n = 0; code[i] != '\0'; i++) {
        if (code[i] == ' ' || code[i] == '-') {
            continue;
        }
        code[n++] = (char) (code[i] >= 'a' && code[i] <= 'z'
                            ? code[i] - 'a' + 'A' : code[i]);
    }
    code[n] = '\0';

    crypto_hash_sha256(h, (const uint8_t *) code, n);
    sodium_bin2hex(chash, sizeof(chash), h, sizeof(h));

    p[0] = dossier;
    p[1] = chash;
    rc = gcho_code_open(rq, p);
    if (rc < 0) {
        goto done;
    }
    if (rc == 0) {
        rc = gcho_code_invalid(rq);
        goto done;
    }

    rc = gcho_login_free(rq, login);
    if (rc < 0) {
        goto done;
    }
    if (rc == 0) {
        rc = gcho_login_taken(rq);
        goto done;
    }

    job = gcho_hash_prepare(rq);
    if (job != NULL) {
        snprintf(job->make_pw, sizeof(job->make_pw), "%s", pw);
        snprintf(job->keep[0], sizeof(job->keep[0]), "%s", dossier);
        snprintf(job->keep[1], sizeof(job->keep[1]), "%s", chash);
        snprintf(rq->param[0], GCHO_ID_MAX, "%s", login);
        snprintf(rq->param[1], GCHO_ID_MAX, "%s", email);
        snprintf(rq->param[2], GCHO_ID_MAX, "%s", ver);
    }

done:

    sodium_memzero(pw, sizeof(pw));
    sodium_memzero(code, sizeof(code));
    return 0;
}


/* See office.h. */
int
gcho_link_claim(gcho_req_t *rq, const char *claim, const char *invalid,
    gcho_link_t *k)
{
    int                 rc;
    char                tok[101];
    char                thash[crypto_hash_sha256_BYTES * 2 + 1];
    uint8_t             h[crypto_hash_sha256_BYTES];
    PGresult           *res;
    gch_json_t          doc;
    const char         *p[4];
    const gch_jnode_t  *v[1];

    static const gch_jfield_t  fields[] = {
        { "token", GCH_J_STRING, 1 },
    };

    if (gcho_body_json(rq, &doc, fields, 1, v) != 0) {
        return 0;
    }
    rc = gcho_str(rq, "token", v[0], tok, sizeof(tok), 1);
    gch_json_free(&doc);
    if (rc != 0) {
        return 0;
    }

    crypto_hash_sha256(h, (const uint8_t *) tok, strlen(tok));
    sodium_bin2hex(thash, sizeof(thash), h, sizeof(h));
    sodium_memzero(tok, sizeof(tok));

    if (gcho_begin(rq) != 0) {
        return 0;
    }

    p[0] = thash;
    res = gcho_sql(rq, claim, 1, p);
    if (res == NULL) {
        return 0;
    }

    if (PQntuples(res) != 1) {
        PQclear(res);
        gcho_rollback();
        return gcho_error(rq, 400, "activation_token_invalid", invalid);
    }

    snprintf(k->fid, sizeof(k->fid), "%s", PQgetvalue(res, 0, 0));
    snprintf(k->login, sizeof(k->login), "%s", PQgetvalue(res, 0, 1));
    snprintf(k->hash, sizeof(k->hash), "%s", PQgetvalue(res, 0, 2));
    snprintf(k->ver, sizeof(k->ver), "%s", PQgetvalue(res, 0, 3));
    PQclear(res);

    /* the login may have been taken since the link was sent (an account
     * activated meanwhile takes precedence over a request's promise) */
    rc = gcho_login_free(rq, k->login);
    if (rc < 0) {
        return 0;
    }
    if (rc == 0) {
        gcho_rollback();
        return gcho_login_taken(rq);
    }

    p[0] = k->fid;
    p[1] = k->login;
    p[2] = k->hash;
    p[3] = k->ver;
    if (gcho_sql_do(rq, "update family set login = $2, password_hash = $3,"
                        "   cgu_version = $4::int, cgu_accepted_at = now(),"
                        "   activated_at = now()"
                        " where id = $1", 4, p) != 0)
    {
        return 0;
    }

    return 1;
}


/* See office.h. */
int
gcho_link_finish(gcho_req_t *rq, const char *action, gcho_link_t *k)
{
    char  target[GCHO_ID_MAX + 80];

    snprintf(rq->family_id, sizeof(rq->family_id), "%s", k->fid);
    snprintf(target, sizeof(target), "family:%s", k->fid);

    if (gcho_catalogue_changed(rq) != 0
        || gcho_audit(rq, action, target, NULL) != 0
        || gcho_commit(rq) != 0)
    {
        gcho_rollback();
        sodium_memzero(k->hash, sizeof(k->hash));
        return 0;
    }

    gcho_login_publish(k->login, k->fid, k->hash);
    sodium_memzero(k->hash, sizeof(k->hash));

    snprintf(target, sizeof(target), "{\"login\":\"%s\"}", k->login);

    return gcho_reply(rq, 200, target, strlen(target));
}


/* POST /api/account/activate {"token"} (public): the link, once */
static int
gcho_account_activate(gcho_req_t *rq)
{
    gcho_link_t   k;
    const char   *q[1];

    if (gcho_link_claim(rq,
            "update account_activation a set used_at = now()"
            " from family f"
            " where a.token_hash = $1 and a.used_at is null"
            "   and a.expires_at > now() and f.id = a.family_id"
            "   and f.login is null and f.archived_at is null"
            " returning a.family_id, a.login, a.password_hash,"
            "   a.cgu_version",
            "Ce lien d'activation n'est plus valable (déjà utilisé ou "
            "expiré) : recommencez « Créer mon espace ».", &k) != 1)
    {
        return 0;
    }

    /* the code and every other link of the family are used up */
    q[0] = k.fid;
    if (gcho_sql_do(rq, "update family_code set used_at = now()"
                        " where family_id = $1 and used_at is null", 1, q) != 0)
    {
        return 0;
    }

    if (gcho_sql_do(rq, "update account_activation set used_at = now()"
                        " where family_id = $1 and used_at is null", 1, q) != 0)
    {
        return 0;
    }

    return gcho_link_finish(rq, "account.activate", &k);
}


const gcho_route_t  gcho_activation_routes[] = {
    { "GET", "/api/account", GCHO_FAMILY, 0, 0, gcho_account_get },
    { "GET", "/api/account/cgu", GCHO_PUBLIC, 0, 0, gcho_cgu_get },
    { "POST", "/api/account/cgu", GCHO_FAMILY, 0, GCHO_BODY_JSON,
      gcho_cgu_accept },
    { "POST", "/api/account/create", GCHO_PUBLIC, 0, GCHO_BODY_JSON,
      gcho_account_create },
    { "POST", "/api/account/activate", GCHO_PUBLIC, 0, GCHO_BODY_JSON,
      gcho_account_activate },
    { NULL, NULL, 0, 0, 0, NULL }
};
