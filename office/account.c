/*
 * account.c -- guichet-office: the family's account: history (connections
 * and payments), password change, forgotten password.
 *
 *   GET  /api/history?from=&to=          (or ?period=week|month&date=)
 *   POST /api/password                   {old_password, new_password,
 *                                         login}  (login: whose password,
 *                                         the family's own or its
 *                                         co-responsable's; none: the
 *                                         family's)
 *   POST /api/password/forgot            {login}          always 202
 *   POST /api/password/reset             {token, password}
 *
 * Connections are recorded by the module at each login (fire and forget,
 * ngx_http_guichet_login_record): "<unix ms> <address>" at the head of
 * {T}:f:<fid>:connections (200 kept) and the token's BLAKE2b-128 hash in
 * {T}:f:<fid>:tokens scored by its expiry.  Ending a family's sessions puts
 * those hashes in {T}:revoked (the logout set) and moves {T}:revoked:gen,
 * which every nginx worker reloads within guichet_catalogue_refresh.
 *
 * A new password is an argon2id hash (libsodium, interactive limits, as
 * guichetctl load-town makes them).  It is written to PostgreSQL and the
 * catalogue is marked changed in the same transaction (the worker then
 * republishes {T}:logins); {T}:logins is also set at once after the
 * commit.  The other sessions are ended before the commit: if Redis
 * cannot do it, nothing changes (503).
 *
 * Reset links carry 32 random bytes (base64url); only their SHA-256 is
 * stored (password_reset, migration 0011), valid one hour, used once.  A
 * login gets at most three links an hour; the answer never says whether
 * the login exists.  Setting a password (reset or change) ends every
 * link of the family still open.  The e-mail's body holds the link until
 * guichet-worker sends it, then is scrubbed (worker/mail.c).
 *
 * argon2id runs on the hashing threads (hash.c), never on the server's:
 * each handler that hashes has two halves.  A reset checks its token
 * first, so that a bogus one costs no hash at all.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "office.h"


/* characters (UTF-8 code points), as the site says (issue 22) */
#define GCHO_PW_MIN        10
#define GCHO_PW_MAX        128
#define GCHO_RESET_PER_H   3
#define GCHO_HISTORY_DAYS  366
#define GCHO_CONNECTIONS   200


/* ------------------------------------------------------------------ */
/* sessions and logins in Redis                                         */

/*
 * Ends the family's sessions recorded in {T}:f:<fid>:tokens except the one
 * whose hash is keep (NULL: all): their hashes go into {T}:revoked until
 * they expire, then {T}:revoked:gen moves.  0, or -1 after answering 503.
 */
static int
gcho_end_sessions(gcho_req_t *rq, const char *fid, const char *keep)
{
    return gcho_sessions_end(rq, fid, keep,
                             "Le service est momentanément indisponible : "
                             "votre mot de passe n'a pas été changé.");
}


/* See office.h. */
int
gcho_sessions_end(gcho_req_t *rq, const char *fid, const char *keep,
    const char *failed_msg)
{
    int            rc;
    size_t         i, n;
    redisReply    *r, *x;
    redisContext  *rc_;

    rc_ = gcho_redis(rq);
    if (rc_ == NULL) {
        return -1;
    }

    r = redisCommand(rc_, "ZRANGEBYSCORE " GCH_KEY_F(GCH_KEY_TOKENS)
                          " %lld +inf WITHSCORES", gchb_town,
                     fid, (long long) gcho_now());
    if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
        goto failed;
    }

    n = 0;
    for (i = 0; i + 1 < r->elements; i += 2) {
        if (keep != NULL && strcmp(r->element[i]->str, keep) == 0) {
            continue;
        }
        redisAppendCommand(rc_, "ZADD " GCH_KEY_REVOKED " %s %s", gchb_town,
                           r->element[i + 1]->str, r->element[i]->str);
        redisAppendCommand(rc_, "ZREM " GCH_KEY_F(GCH_KEY_TOKENS) " %s",
                           gchb_town, fid, r->element[i]->str);
        n += 2;
    }

    redisAppendCommand(rc_, "INCR " GCH_KEY_REVOKED_GEN, gchb_town);
    n++;

    freeReplyObject(r);
    r = NULL;

    rc = 0;
    for (i = 0; i < n; i++) {
        if (redisGetReply(rc_, (void **) &x) != REDIS_OK) {
            goto failed;
        }
        if (x->type == REDIS_REPLY_ERROR) {
            gchb_log("error", "office: redis: ending sessions: %s", x->str);
            rc = -1;
        }
        freeReplyObject(x);
    }

    if (rc == 0) {
        return 0;
    }

failed:

    if (r != NULL) {
        freeReplyObject(r);
    }

    gchb_log("error", "office: redis: cannot end the sessions of %s: %s",
             fid, rc_->err ? rc_->errstr : "error reply");
    gcho_redis_drop_broken();

    (void) gcho_error(rq, 503, "unavailable", failed_msg);
    return -1;
}


/* See office.h: sets {T}:logins[login] at once (the worker republishes
 * it anyway). */
void
gcho_login_publish(const char *login, const char *fid, const char *hash)
{
    char           value[GCHO_ID_MAX + crypto_pwhash_STRBYTES + 2];
    redisReply    *r;
    redisContext  *rc;

    rc = gcho_redis(NULL);
    if (rc == NULL) {
        return;
    }

    /* one value "<family_id> <hash>" (a space inside %s splits nothing) */
    snprintf(value, sizeof(value), "%s %s", fid, hash);
    r = redisCommand(rc, "HSET " GCH_KEY_LOGINS " %s %s", gchb_town, login,
                     value);
    if (r == NULL || r->type == REDIS_REPLY_ERROR) {
        gchb_log("warn", "office: redis: HSET " GCH_KEY_LOGINS
                 " %s: %s (the worker "
                 "publishes it within publish_interval_ms)", gchb_town, login,
                 r ? r->str : rc->errstr);
    }
    if (r != NULL) {
        freeReplyObject(r);
    }
}


/* After a hashing job: 0 when it did its work, else -1 after answering
 * (503 while stopping, 500 when a hash could not be made). */
static int
gcho_hash_ok(gcho_req_t *rq)
{
    if (rq->hash->failed) {
        gcho_error(rq, 503, "unavailable",
                   "Le service est momentanément indisponible : "
                   "votre mot de passe n'a pas été changé.");
        return -1;
    }

    return 0;
}


/*
 * Sets the family's password hash (or, coresp not NULL, that
 * co-responsable's: its id), ends every reset link still open, marks the
 * catalogue changed, audits action, ends the sessions but keep, commits,
 * then publishes the login.
 * Inside a transaction the caller began; on failure it is rolled back and
 * the answer is set.  0 or -1.
 */
static int
gcho_password_set(gcho_req_t *rq, const char *fid, const char *login,
    const char *hash, const char *action, const char *keep,
    const char *coresp)
{
    char         target[GCHO_ID_MAX + 16];
    const char  *p[3], *kv[2];

    p[0] = fid;
    p[1] = hash;
    p[2] = coresp;
    if ((coresp == NULL
         ? gcho_sql_do(rq, "update family set password_hash = $2"
                           " where id = $1", 2, p)
         : gcho_sql_do(rq, "update co_responsable set password_hash = $2"
                           " where family_id = $1 and id = $3::bigint"
                           "   and removed_at is null", 3, p))
        != 0)
    {
        return -1;
    }

    /* the links e-mailed before (a thief may read the mailbox) */
    if (gcho_sql_do(rq, "update password_reset set used_at = now()"
                        " where family_id = $1 and used_at is null", 1, p) != 0)
    {
        return -1;
    }

    snprintf(target, sizeof(target), "family:%s", fid);

    /* whose: the family's own login, or its co-responsable's (the token
     * names the family only, docs/office.md, *Co-responsable*) */
    kv[0] = "co_responsable";
    kv[1] = coresp != NULL ? login : NULL;

    if (gcho_catalogue_changed(rq) != 0
        || (coresp == NULL ? gcho_audit(rq, action, target, NULL)
                           : gcho_audit_kv(rq, action, target, kv, 1)) != 0
        || gcho_end_sessions(rq, fid, keep) != 0
        || gcho_commit(rq) != 0)
    {
        gcho_rollback();
        return -1;
    }

    if (login != NULL && login[0]) {
        gcho_login_publish(login, fid, hash);
    }

    return 0;
}


/*
 * The new password's length in characters (UTF-8 code points, the string
 * already checked by gch_json_str): the same rule and words as the site.
 */
static int
gcho_password_long_enough(gcho_req_t *rq, const char *pw)
{
    size_t  n;

    for (n = 0; *pw != '\0'; pw++) {
        if (((unsigned char) *pw & 0xc0) != 0x80) {
            n++;
        }
    }

    if (n >= GCHO_PW_MIN) {
        return 0;
    }

    (void) gcho_error(rq, 400, "invalid_field",
                      "Le nouveau mot de passe doit faire 10 caractères "
                      "au moins.");
    return -1;
}


/* ------------------------------------------------------------------ */
/* POST /api/password                                                   */

/*
 * First half: the body and the current hash; the old password is
 * verified, and the new one hashed when it matches, on a hashing thread
 * (a family without a password is verified against the dummy hash).
 * Second half: 403, or the new hash set.
 */
static int
gcho_password_change(gcho_req_t *rq)
{
    int                 ok;
    char                old[GCHO_PW_MAX + 1], pw[GCHO_PW_MAX + 1];
    PGresult           *res;
    gch_json_t          doc;
    const char         *p[2];
    gcho_hash_t        *h;
    const gch_jnode_t  *v[3];

    char                login[65];

    static const gch_jfield_t  fields[] = {
        { "old_password", GCH_J_STRING, 1 },
        { "new_password", GCH_J_STRING, 1 },
        { "login", GCH_J_STRING | GCH_J_NULL, 0 },
    };

    if (rq->hash != NULL) {
        h = rq->hash;

        if (gcho_hash_ok(rq) != 0) {
            return 0;
        }

        if (!h->verified) {
            return gcho_error(rq, 403, "wrong_password",
                              "Le mot de passe actuel est incorrect.");
        }

        if (gcho_begin(rq) != 0) {
            return 0;
        }

        if (gcho_password_set(rq, rq->family_id, h->keep[0], h->made,
                              "password.change", rq->token_hash,
                              h->keep[1][0] ? h->keep[1] : NULL) == 0)
        {
            gcho_reply(rq, 204, "", 0);
        }

        return 0;
    }

    if (gcho_body_json(rq, &doc, fields, 3, v) != 0) {
        return 0;
    }

    old[0] = pw[0] = '\0';
    ok = gcho_str(rq, "old_password", v[0], old, sizeof(old), 1) == 0
         && gcho_str(rq, "new_password", v[1], pw, sizeof(pw), 1) == 0
         && gcho_str(rq, "login", v[2] && v[2]->type == GCH_J_STRING
                                  ? v[2] : NULL, login, sizeof(login), 0)
            == 0
         && gcho_password_long_enough(rq, pw) == 0;
    gch_json_free(&doc);

    if (!ok) {
        goto done;
    }

    /* the same password again is no change (issue 22) */
    if (strcmp(old, pw) == 0) {
        (void) gcho_error(rq, 400, "invalid_field",
                          "Le champ new_password doit être différent du "
                          "mot de passe actuel.");
        goto done;
    }

    /* "login": the person whose password it is, the family's own login
     * (or none) or its co-responsable's; another login is answered as a
     * wrong password, after the same hash */
    p[0] = rq->family_id;
    p[1] = login;
    res = gcho_sql(rq, "select coalesce(login, ''), password_hash, ''"
                       " from family where id = $1"
                       "   and ($2 = '' or login = $2)"
                       " union all select login, password_hash, id::text"
                       " from co_responsable where family_id = $1"
                       "   and $2 <> '' and login = $2"
                       "   and removed_at is null", 2, p);
    if (res == NULL) {
        goto done;
    }

    h = gcho_hash_prepare(rq);
    if (h != NULL) {
        snprintf(h->verify_hash, sizeof(h->verify_hash), "%s",
                 PQntuples(res) == 1 && !PQgetisnull(res, 0, 1)
                 ? PQgetvalue(res, 0, 1) : gcho_hash_dummy());
        snprintf(h->verify_pw, sizeof(h->verify_pw), "%s", old);
        snprintf(h->make_pw, sizeof(h->make_pw), "%s", pw);
        snprintf(h->keep[0], sizeof(h->keep[0]), "%s",
                 PQntuples(res) == 1 ? PQgetvalue(res, 0, 0) : "");
        snprintf(h->keep[1], sizeof(h->keep[1]), "%s",
                 PQntuples(res) == 1 ? PQgetvalue(res, 0, 2) : "");
    }
    PQclear(res);

done:

    sodium_memzero(old, sizeof(old));
    sodium_memzero(pw, sizeof(pw));
    return 0;
}


/* ------------------------------------------------------------------ */
/* POST /api/password/forgot                                            */

static int
gcho_password_forgot(gcho_req_t *rq)
{
    int                 n;
    char                login[65], fid[GCHO_ID_MAX], body[1024];
    char                tok[64], thash[crypto_hash_sha256_BYTES * 2 + 1];
    char                target[GCHO_ID_MAX + 16];
    uint8_t             raw[32], h[crypto_hash_sha256_BYTES];
    gch_json_t          doc;
    const char         *p[2];
    const gch_jnode_t  *v[1];

    static const gch_jfield_t  fields[] = {
        { "login", GCH_J_STRING, 1 },
    };
    static const char  sent[] = "{\"status\":\"sent\"}";

    if (gcho_body_json(rq, &doc, fields, 1, v) != 0) {
        return 0;
    }

    n = gcho_str(rq, "login", v[0], login, sizeof(login), 1);
    gch_json_free(&doc);
    if (n != 0) {
        return 0;
    }

    /* the family, if it has an e-mail and fewer than three recent links */
    snprintf(fid, sizeof(fid), "%d", GCHO_RESET_PER_H);
    p[0] = login;
    p[1] = fid;
    n = gcho_sql_value(rq, fid, sizeof(fid),
                       "select f.id from family f"
                       " join family_email e on e.family_id = f.id"
                       " where f.login = $1 and (select count(*)"
                       "   from password_reset r where r.family_id = f.id"
                       "   and r.created_at > now() - interval '1 hour')"
                       "   < $2::int", 2, p);
    if (n < 0) {
        return 0;
    }

    if (n == 0) {
        return gcho_reply(rq, 202, sent, sizeof(sent) - 1);
    }

    randombytes_buf(raw, sizeof(raw));
    sodium_bin2base64(tok, sizeof(tok), raw, sizeof(raw),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    crypto_hash_sha256(h, (const uint8_t *) tok, strlen(tok));
    sodium_bin2hex(thash, sizeof(thash), h, sizeof(h));

    snprintf(body, sizeof(body),
             "Bonjour,\n\n"
             "Une demande de nouveau mot de passe a été faite pour votre "
             "Espace Famille (identifiant %s).\n\n"
             "Pour choisir un nouveau mot de passe, ouvrez ce lien dans "
             "l'heure qui vient ; il ne sert qu'une fois :\n\n"
             "%s/#/nouveau-mot-de-passe?jeton=%s\n\n"
             "Si vous n'êtes pas à l'origine de cette demande, ignorez ce "
             "message : votre mot de passe ne change pas.\n",
             login, gcho_site_url(rq), tok);

    snprintf(target, sizeof(target), "family:%s", fid);

    p[0] = thash;
    p[1] = fid;

    if (gcho_begin(rq) != 0) {
        goto done;
    }

    if (gcho_sql_do(rq, "insert into password_reset (token_hash, family_id,"
                        "   expires_at)"
                        " values ($1, $2, now() + interval '1 hour')",
                    2, p) != 0)
    {
        goto done;
    }

    if (gcho_mail(rq, fid, "password_reset", thash,
                  "Votre nouveau mot de passe", body) != 0
        || gcho_audit(rq, "password.forgot", target, NULL) != 0
        || gcho_commit(rq) != 0)
    {
        gcho_rollback();
        goto done;
    }

    gcho_reply(rq, 202, sent, sizeof(sent) - 1);

done:

    sodium_memzero(tok, sizeof(tok));
    sodium_memzero(body, sizeof(body));
    return 0;
}


/* ------------------------------------------------------------------ */
/* POST /api/password/reset                                             */

/*
 * First half: the body, then the token, which must name an open link:
 * a bogus token is answered at once and costs no hash.  The new password
 * is hashed on a hashing thread.  Second half: the link is used (it may
 * have been used meanwhile: then refused) and the password set.
 */
static int
gcho_password_reset(gcho_req_t *rq)
{
    int                 ok;
    char                tok[101], pw[GCHO_PW_MAX + 1];
    char                fid[GCHO_ID_MAX], login[GCHO_ID_MAX];
    char                thash[crypto_hash_sha256_BYTES * 2 + 1];
    uint8_t             h[crypto_hash_sha256_BYTES];
    PGresult           *res;
    gch_json_t          doc;
    gcho_hash_t        *job;
    const char         *p[1];
    const gch_jnode_t  *v[2];

    static const gch_jfield_t  fields[] = {
        { "token", GCH_J_STRING, 1 },
        { "password", GCH_J_STRING, 1 },
    };
    static const char  sql_open[] =
        "select 1 from password_reset"
        " where token_hash = $1 and used_at is null and expires_at > now()";

    if (rq->hash != NULL) {
        job = rq->hash;

        if (gcho_hash_ok(rq) != 0 || gcho_begin(rq) != 0) {
            return 0;
        }

        p[0] = job->keep[0];
        res = gcho_sql(rq, "update password_reset r set used_at = now()"
                           " from family f"
                           " where r.token_hash = $1 and r.used_at is null"
                           "   and r.expires_at > now()"
                           "   and f.id = r.family_id"
                           " returning f.id, coalesce(f.login, '')", 1, p);
        if (res == NULL) {
            return 0;
        }

        if (PQntuples(res) != 1) {
            PQclear(res);
            gcho_rollback();
            goto invalid;
        }

        snprintf(fid, sizeof(fid), "%s", PQgetvalue(res, 0, 0));
        snprintf(login, sizeof(login), "%s", PQgetvalue(res, 0, 1));
        PQclear(res);

        /* every session of the family ends: the link may come from a
         * thief of the e-mail, but the password was perhaps stolen first */
        snprintf(rq->family_id, sizeof(rq->family_id), "%s", fid);

        if (gcho_password_set(rq, fid, login, job->made, "password.reset",
                              NULL, NULL) == 0)
        {
            gcho_reply(rq, 204, "", 0);
        }

        return 0;
    }

    if (gcho_body_json(rq, &doc, fields, 2, v) != 0) {
        return 0;
    }

    ok = gcho_str(rq, "token", v[0], tok, sizeof(tok), 1) == 0
         && gcho_str(rq, "password", v[1], pw, sizeof(pw), 1) == 0
         && gcho_password_long_enough(rq, pw) == 0;
    gch_json_free(&doc);

    if (!ok) {
        goto done;
    }

    crypto_hash_sha256(h, (const uint8_t *) tok, strlen(tok));
    sodium_bin2hex(thash, sizeof(thash), h, sizeof(h));

    /* the token first: no hash for a link that is not open */
    p[0] = thash;
    res = gcho_sql(rq, sql_open, 1, p);
    if (res == NULL) {
        goto done;
    }

    ok = PQntuples(res) == 1;
    PQclear(res);

    if (!ok) {
        sodium_memzero(tok, sizeof(tok));
        sodium_memzero(pw, sizeof(pw));
        goto invalid;
    }

    job = gcho_hash_prepare(rq);
    if (job != NULL) {
        snprintf(job->make_pw, sizeof(job->make_pw), "%s", pw);
        snprintf(job->keep[0], sizeof(job->keep[0]), "%s", thash);
    }

done:

    sodium_memzero(tok, sizeof(tok));
    sodium_memzero(pw, sizeof(pw));
    return 0;

invalid:

    return gcho_error(rq, 400, "reset_token_invalid",
                      "Ce lien n'est plus valable (déjà utilisé ou expiré) : "
                      "demandez-en un nouveau.");
}


/* ------------------------------------------------------------------ */
/* GET /api/history                                                     */

/* "YYYY-MM-DD" to a day of the engine's calendar; -1 when not a date. */
static int
gcho_day(const char *s, gch_day_t *d)
{
    return s != NULL && gch_day_parse(d, s, strlen(s)) == 0 ? 0 : -1;
}


/* The period asked: from and to, or period (week, month) and date.
 * *df and *dt its first and last days. */
static int
gcho_history_period(gcho_req_t *rq, gch_day_t *df, gch_day_t *dt)
{
    int          y, m, dd;
    gch_day_t    d;
    const char  *period, *date;

    period = gcho_query(rq, "period");

    if (period != NULL) {
        date = gcho_query(rq, "date");
        if (gcho_day(date, &d) != 0) {
            return gcho_error(rq, 400, "invalid_field",
                              "Le paramètre date doit être AAAA-MM-JJ.");
        }

        if (strcmp(period, "week") == 0) {
            *df = d - (gch_day_weekday(d) - 1);     /* Monday */
            *dt = *df + 6;

        } else if (strcmp(period, "month") == 0) {
            gch_day_ymd(d, &y, &m, &dd);
            *df = gch_day_from_ymd(y, m, 1);
            *dt = (m == 12 ? gch_day_from_ymd(y + 1, 1, 1)
                           : gch_day_from_ymd(y, m + 1, 1)) - 1;

        } else {
            return gcho_error(rq, 400, "invalid_field",
                              "Le paramètre period vaut week ou month.");
        }

    } else if (gcho_day(gcho_query(rq, "from"), df) != 0
               || gcho_day(gcho_query(rq, "to"), dt) != 0)
    {
        return gcho_error(rq, 400, "invalid_field",
                          "Indiquez from et to (AAAA-MM-JJ), ou period "
                          "(week, month) et date.");
    }

    if (*dt < *df || *dt - *df >= GCHO_HISTORY_DAYS) {
        return gcho_error(rq, 400, "invalid_field",
                          "La période va de from à to, un an au plus.");
    }

    return GCHO_GO;
}


/* The connections of the period, newest first, from the module's list:
 * *conns a JSON array (malloc'ed, the caller frees it). */
int
gcho_history_connections(gcho_req_t *rq, const char *from, const char *to,
    char **conns)
{
    char            at[26];
    size_t          i, len;
    int64_t         ms;
    gch_jout_t      o;
    redisReply     *r;
    redisContext   *redis;
    const char     *sp;

    redis = gcho_redis(rq);
    if (redis == NULL) {
        return 0;
    }

    r = redisCommand(redis, "LRANGE " GCH_KEY_F(GCH_KEY_CONNECTIONS) " 0 %d",
                     gchb_town, rq->family_id, GCHO_CONNECTIONS - 1);
    if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
        gchb_log("error", "office: redis: LRANGE connections: %s",
                 r ? (r->str ? r->str : "?") : redis->errstr);
        if (r) {
            freeReplyObject(r);
        }
        return gcho_error(rq, 503, "unavailable",
                          "Le service est momentanément indisponible.");
    }

    if (gch_jout_init(&o, &gch_alloc_std) != 0) {
        freeReplyObject(r);
        return -1;
    }

    yajl_gen_array_open(o.g);

    for (i = 0; i < r->elements; i++) {
        if (r->element[i]->type != REDIS_REPLY_STRING) {
            continue;
        }

        ms = strtoll(r->element[i]->str, NULL, 10);
        sp = strchr(r->element[i]->str, ' ');
        if (ms <= 0 || sp == NULL) {
            continue;
        }

        gch_instant_format(ms / 1000, at);         /* Europe/Paris */
        if (strncmp(at, from, 10) < 0 || strncmp(at, to, 10) > 0) {
            continue;
        }

        yajl_gen_map_open(o.g);
        gch_jout_cstr(&o, "at");
        gch_jout_cstr(&o, at);
        gch_jout_cstr(&o, "ip");
        gch_jout_cstr(&o, sp + 1);
        yajl_gen_map_close(o.g);
    }

    yajl_gen_array_close(o.g);
    freeReplyObject(r);

    if (gch_jout_detach(&o, conns, &len) != 0) {
        return -1;
    }

    return GCHO_GO;
}


static int
gcho_history(gcho_req_t *rq)
{
    int             rc;
    char            from[11], to[11], *conns, *text;
    gch_day_t       df, dt;
    PGresult       *res;
    const char     *p[4];

    rc = gcho_history_period(rq, &df, &dt);
    if (rc != GCHO_GO) {
        return rc;
    }

    gch_day_format(df, from);
    gch_day_format(dt, to);

    rc = gcho_history_connections(rq, from, to, &conns);
    if (rc != GCHO_GO) {
        return rc;
    }

    /* payments of the period, from payment_operation (payment.c) */

    p[0] = rq->family_id;
    p[1] = from;
    p[2] = to;
    p[3] = conns;

    res = gcho_sql(rq,
        "select json_build_object('from', $2::text, 'to', $3::text,"
        " 'connections', $4::json,"
        " 'payments', coalesce((select json_agg(json_build_object("
        "   'operation_id', o.id, 'method', 'online',"
        "   'amount_cents', o.amount_cents, 'status', o.status,"
        "   'created_at', o.created_at, 'paid_at', o.settled_at,"
        "   'invoice_numbers', (select coalesce(json_agg(i.number"
        "       order by i.number), '[]'::json)"
        "     from payment_operation_invoice pi"
        "     join invoice i on i.id = pi.invoice_id"
        "     where pi.operation_id = o.id))"
        "   order by o.created_at desc)"
        "  from payment_operation o where o.family_id = $1"
        "   and (o.created_at at time zone 'Europe/Paris')::date"
        "       between $2::date and $3::date), '[]'::json))::text",
        4, p);
    free(conns);

    if (res == NULL) {
        return 0;
    }

    text = PQgetvalue(res, 0, 0);
    rc = gcho_reply(rq, 200, text, strlen(text));
    PQclear(res);

    return rc;
}


const gcho_route_t  gcho_account_routes[] = {
    { "GET",  "/api/history", GCHO_FAMILY, 0, 0, gcho_history },
    { "POST", "/api/password", GCHO_FAMILY, 0, GCHO_BODY_JSON,
      gcho_password_change },
    { "POST", "/api/password/forgot", GCHO_PUBLIC, 0, GCHO_BODY_JSON,
      gcho_password_forgot },
    { "POST", "/api/password/reset", GCHO_PUBLIC, 0, GCHO_BODY_JSON,
      gcho_password_reset },
    { NULL, NULL, 0, 0, 0, NULL }
};
