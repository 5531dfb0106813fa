/*
 * ngx_http_guichet_session.c -- who is asking: the token (bearer or
 * session cookie), the Origin check, login (POST /api/session: argon2id in
 * the thread pool, never on the loop; throttled by the engine's policy,
 * gch_login_throttle()) and logout (DELETE /api/session).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <sodium.h>

#include "gch_keys.h"
#include "ngx_http_guichet_api.h"


/*
 * Fire and forget: a MULTI ... EXEC whose answer nobody waits for (the
 * login's bookkeeping).  Each block touches the keys of one hash tag only.
 */
#define NGX_HTTP_GUICHET_FIRE_MAX  6

typedef struct {
    char        *fmt[NGX_HTTP_GUICHET_FIRE_MAX];
    int          len[NGX_HTTP_GUICHET_FIRE_MAX];
    ngx_uint_t   n;
} ngx_http_guichet_fire_t;


/*
 * An unknown login is checked against this hash all the same (argon2id
 * with guichetctl's interactive limits, of a random password nobody
 * knows), so that it costs the time of a known one: login names cannot be
 * told apart by the answer's delay.
 */
static const char  ngx_http_guichet_dummy_hash[] =
    "$argon2id$v=19$m=65536,t=2,p=1$sj5eP5SJUDupy/VHJMqgOA$"
    "KuB/vMTlxoNUeRs0ciFr4jmH+Vw6Jpps0/ZBCUqNv8A";


static ngx_int_t ngx_http_guichet_session_cookie(ngx_http_request_t *r,
    const char *token, time_t max_age, ngx_str_t *cookie);
static void ngx_http_guichet_client_key(ngx_http_request_t *r, char *buf,
    size_t size);
static void ngx_http_guichet_login_body(ngx_http_request_t *r);
static void ngx_http_guichet_login_found(ngx_http_guichet_op_t *op,
    redisReply *reply);
static void ngx_http_guichet_login_paced(ngx_http_guichet_op_t *op,
    redisReply *reply);
static void ngx_http_guichet_login_refuse(ngx_http_guichet_op_t *op,
    long long secs, const char *message);
static void ngx_http_guichet_login_verify(ngx_http_guichet_op_t *op);
static void ngx_http_guichet_verify_thread(void *data, ngx_log_t *log);
static void ngx_http_guichet_verify_done(ngx_event_t *ev);
static ngx_int_t ngx_http_guichet_login_answer(ngx_http_guichet_op_t *op);
static void ngx_http_guichet_login_succeeded(ngx_http_guichet_op_t *op);
static ngx_int_t ngx_http_guichet_login_record(ngx_http_guichet_op_t *op,
    const char *token, time_t expires);
static void ngx_http_guichet_login_recorded(ngx_http_guichet_op_t *op,
    redisReply *reply);
static void ngx_http_guichet_fire(ngx_http_guichet_fire_t *f);
static void ngx_http_guichet_fire_done(redisReply *reply, void *data);
static void ngx_http_guichet_logout_done(ngx_http_guichet_op_t *op,
    redisReply *reply);


/* the token */

/*
 * The session cookie: "__Host-guichet_session" with Secure when
 * guichet_cookie_secure is on (the default: a browser then sends it only
 * over https, only to this host, and no other site or plain-http page can
 * set it), "guichet_session" without Secure when off (plain http on
 * 127.0.0.1 in development).  Only the configured name is read, here and
 * by guichet-office ($guichet_cookie_name, X-Guichet-Cookie).
 */
void
ngx_http_guichet_cookie_name(ngx_http_request_t *r, ngx_str_t *name)
{
    ngx_http_guichet_main_conf_t  *gmcf;

    gmcf = ngx_http_get_module_main_conf(r, ngx_http_guichet_module);

    if (gmcf->cookie_secure) {
        ngx_str_set(name, "__Host-guichet_session");

    } else {
        ngx_str_set(name, "guichet_session");
    }
}


/* The Set-Cookie value of token (max_age 0 and "" to clear it). */
static ngx_int_t
ngx_http_guichet_session_cookie(ngx_http_request_t *r, const char *token,
    time_t max_age, ngx_str_t *cookie)
{
    u_char                        *p;
    ngx_str_t                      name;
    ngx_http_guichet_main_conf_t  *gmcf;

    gmcf = ngx_http_get_module_main_conf(r, ngx_http_guichet_module);
    ngx_http_guichet_cookie_name(r, &name);

    cookie->len = name.len + sizeof("=; Path=/; Secure; HttpOnly; "
                                    "SameSite=Strict; Max-Age=") - 1
                  + ngx_strlen(token) + NGX_TIME_T_LEN;
    cookie->data = ngx_pnalloc(r->pool, cookie->len);
    if (cookie->data == NULL) {
        return NGX_ERROR;
    }

    p = ngx_sprintf(cookie->data, "%V=%s; Path=/; %sHttpOnly; "
                    "SameSite=Strict; Max-Age=%T", &name, token,
                    gmcf->cookie_secure ? "Secure; " : "", max_age);
    cookie->len = p - cookie->data;

    return NGX_OK;
}


ngx_int_t
ngx_http_guichet_token(ngx_http_request_t *r, ngx_str_t *tok,
    ngx_uint_t *cookie)
{
    ngx_str_t         name;
    ngx_table_elt_t  *h;

    *cookie = 0;
    h = r->headers_in.authorization;

    if (h && h->value.len > 7
        && ngx_strncasecmp(h->value.data, (u_char *) "Bearer ", 7) == 0)
    {
        tok->data = h->value.data + 7;
        tok->len = h->value.len - 7;
        return NGX_OK;
    }

    ngx_http_guichet_cookie_name(r, &name);

    if (ngx_http_parse_multi_header_lines(&r->headers_in.cookies, &name, tok)
        != NGX_DECLINED)
    {
        *cookie = 1;
        return NGX_OK;
    }

    return NGX_DECLINED;
}


/* The family id of a valid token, or NGX_DECLINED. */
ngx_int_t
ngx_http_guichet_auth(ngx_http_request_t *r, char *fid, size_t size,
    ngx_uint_t *cookie)
{
    int64_t                        expires;
    u_char                         hash[NGX_HTTP_GUICHET_TOKEN_HASH];
    ngx_str_t                      tok;
    ngx_http_guichet_tenant_t     *town;
    ngx_http_guichet_main_conf_t  *gmcf;

    gmcf = ngx_http_get_module_main_conf(r, ngx_http_guichet_module);

    if (size) {
        fid[0] = '\0';
    }

    if (!gmcf->have_secret
        || ngx_http_guichet_token(r, &tok, cookie) != NGX_OK)
    {
        return NGX_DECLINED;
    }

    /* a token of this location's town only, checked against its logouts */
    town = ngx_http_guichet_tenant(r);

    if (town->id.data == NULL) {
        /* a town no location serves ($guichet_family on a static page):
         * no revoked set to check a token against, nobody signed in */
        return NGX_DECLINED;
    }

    ngx_http_guichet_token_hash(tok.data, tok.len, hash);

    if (ngx_http_guichet_tokc_find(hash, town, gmcf, fid, size) != NGX_OK) {
        if (ngx_http_guichet_worker.metrics) {
            (void) ngx_atomic_fetch_add(
                       &ngx_http_guichet_worker.metrics->token_checks, 1);
        }

        if (gch_token_verify(gmcf->secret, (const char *) town->id.data,
                             (const char *) tok.data, tok.len, ngx_time(),
                             fid, size, &expires)
            != GCH_OK)
        {
            return NGX_DECLINED;
        }

        ngx_http_guichet_tokc_enter(hash, town, gmcf, expires, fid);
    }

    if (town->nrevoked && ngx_http_guichet_token_revoked(town, hash)) {
        if (size) {
            fid[0] = '\0';
        }

        return NGX_DECLINED;             /* logged out */
    }

    return NGX_OK;
}


/*
 * Browsers authenticated by cookie must prove the page is ours: the Origin
 * of a state-changing request names the Host it is sent to.
 */
ngx_int_t
ngx_http_guichet_origin_ok(ngx_http_request_t *r)
{
    u_char           *p;
    ngx_str_t         host;
    ngx_table_elt_t  *o;

    o = ngx_http_guichet_header(r, "Origin", 6);
    if (o == NULL || r->headers_in.host == NULL) {
        return 0;
    }

    p = ngx_strlcasestrn(o->value.data, o->value.data + o->value.len,
                         (u_char *) "://", 3 - 1);
    if (p == NULL) {
        return 0;
    }

    host.data = p + 3;
    host.len = o->value.data + o->value.len - host.data;

    return host.len == r->headers_in.host->value.len
           && ngx_strncasecmp(host.data, r->headers_in.host->value.data,
                              host.len) == 0;
}


/* POST /api/session */

ngx_int_t
ngx_http_guichet_login(ngx_http_request_t *r, ngx_http_guichet_call_t *call)
{
    ngx_http_guichet_op_t  *op;

    if (ngx_http_guichet_header(r, "Origin", 6)
        && !ngx_http_guichet_origin_ok(r))
    {
        return ngx_http_guichet_bad_origin(r);
    }

    if (!ngx_http_guichet_is_json(r)) {
        return ngx_http_guichet_not_json(r);
    }

    op = ngx_http_guichet_op_new(r);
    if (op == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_guichet_op_read_body(r, op, ngx_http_guichet_login_body);
}


static void
ngx_http_guichet_login_body(ngx_http_request_t *r)
{
    gch_error_t             err;
    ngx_http_guichet_op_t  *op;

    op = ngx_http_get_module_ctx(r, ngx_http_guichet_module);

    ngx_memzero(&err, sizeof(gch_error_t));

    if (gch_login_req_parse(op->body ? op->body : "", op->body_len,
                            op->login, sizeof(op->login), op->password,
                            sizeof(op->password), &err)
        != GCH_OK)
    {
        ngx_http_guichet_op_engine_error(op, &err, GCH_EBADJSON);
        ngx_http_guichet_op_free(op);
        return;
    }

    ngx_http_guichet_client_key(r, op->client, sizeof(op->client));

    op->fmt_len[0] = redisFormatCommand(&op->fmt[0], "MULTI");
    op->fmt_len[1] = redisFormatCommand(&op->fmt[1],
                                        "HGET " GCH_KEY_LOGINS " %s",
                                        NGX_HTTP_GUICHET_T(op), op->login);
    op->fmt_len[2] = redisFormatCommand(&op->fmt[2],
                                        "INCR " GCH_KEY_LOGINFAIL "%s/%s",
                                        NGX_HTTP_GUICHET_T(op), op->client,
                                        op->login);
    op->fmt_len[3] = redisFormatCommand(&op->fmt[3],
                                        "EXPIRE " GCH_KEY_LOGINFAIL
                                        "%s/%s %d NX",
                                        NGX_HTTP_GUICHET_T(op), op->client,
                                        op->login, GCH_LOGIN_PAIR_WINDOW_S);
    op->fmt_len[4] = redisFormatCommand(&op->fmt[4],
                                        "INCR " GCH_KEY_LOGINADDR "%s",
                                        NGX_HTTP_GUICHET_T(op), op->client);
    op->fmt_len[5] = redisFormatCommand(&op->fmt[5],
                                        "EXPIRE " GCH_KEY_LOGINADDR "%s %d NX",
                                        NGX_HTTP_GUICHET_T(op), op->client,
                                        GCH_LOGIN_ADDR_WINDOW_S);
    op->fmt_len[6] = redisFormatCommand(&op->fmt[6],
                                        "TTL " GCH_KEY_LOGINADDR "%s",
                                        NGX_HTTP_GUICHET_T(op), op->client);
    op->fmt_len[7] = redisFormatCommand(&op->fmt[7], "EXEC");
    op->nfmt = 8;

    if (ngx_http_guichet_op_collect(op) != NGX_OK
        || ngx_http_guichet_op_send(op, &op->cmds,
                                    ngx_http_guichet_login_found)
           != NGX_OK)
    {
        ngx_http_guichet_op_unavailable(op);
        ngx_http_guichet_op_free(op);
    }
}


/*
 * The address login attempts are counted by: the client's (after the
 * realip module, when the operator trusts a proxy), an IPv6 client by its
 * /64 (one subscriber's network).
 */
static void
ngx_http_guichet_client_key(ngx_http_request_t *r, char *buf, size_t size)
{
    u_char                *p;
    ngx_connection_t      *c;
#if (NGX_HAVE_INET6)
    u_char                 a6[16];
    struct sockaddr_in6   *sin6;
#endif

    c = r->connection;

#if (NGX_HAVE_INET6)
    if (c->sockaddr->sa_family == AF_INET6) {
        sin6 = (struct sockaddr_in6 *) c->sockaddr;
        ngx_memcpy(a6, sin6->sin6_addr.s6_addr, 16);
        ngx_memzero(a6 + 8, 8);
        p = (u_char *) buf + ngx_inet6_ntop(a6, (u_char *) buf, size - 4);
        p = ngx_cpymem(p, "/64", 3);
        *p = '\0';
        return;
    }
#endif

    p = ngx_cpymem(buf, c->addr_text.data,
                   ngx_min(c->addr_text.len, size - 1));
    *p = '\0';
}


/*
 * [HGET {T}:logins, INCR and EXPIRE of the attempts of this login from
 * this address, INCR, EXPIRE and TTL of this address's].  The attempt is
 * counted before its check: a burst of guesses is refused before it costs
 * a hash.
 */
static void
ngx_http_guichet_login_found(ngx_http_guichet_op_t *op, redisReply *reply)
{
    char                *sp;
    size_t               n;
    redisReply          *e;
    gch_login_counts_t   counts;

    if (op->r == NULL) {
        ngx_http_guichet_op_free(op);
        return;
    }

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY
        || reply->elements != 6
        || reply->element[1]->type != REDIS_REPLY_INTEGER
        || reply->element[3]->type != REDIS_REPLY_INTEGER
        || reply->element[5]->type != REDIS_REPLY_INTEGER)
    {
        ngx_http_guichet_op_unavailable(op);
        ngx_http_guichet_op_free(op);
        return;
    }

    counts.pair = reply->element[1]->integer;
    counts.addr = reply->element[3]->integer;
    counts.addr_ttl = reply->element[5]->integer;

    gch_login_throttle(&counts, &op->verdict);

    if (op->verdict.action == GCH_LOGIN_REFUSE) {
        ngx_http_guichet_login_refuse(op, op->verdict.retry_after_s,
            "Trop d'essais de connexion depuis cette adresse : réessayez "
            "dans quelques minutes.");
        return;
    }

    /* "<family id> <hash>"; an unknown login gets the dummy hash */

    e = reply->element[0];
    sp = (e->type == REDIS_REPLY_STRING) ? ngx_strchr(e->str, ' ') : NULL;
    n = sp ? (size_t) (sp - e->str) : 0;

    if (sp == NULL || n == 0 || n >= sizeof(op->fid)
        || ngx_strlen(sp + 1) >= sizeof(op->hash))
    {
        op->unknown = 1;
        op->fid[0] = '\0';
        ngx_cpystrn((u_char *) op->hash,
                    (u_char *) ngx_http_guichet_dummy_hash,
                    sizeof(op->hash));

    } else {
        ngx_memcpy(op->fid, e->str, n);
        op->fid[n] = '\0';
        ngx_cpystrn((u_char *) op->hash, (u_char *) sp + 1,
                    sizeof(op->hash));
    }

    if (op->verdict.action == GCH_LOGIN_GO) {
        ngx_http_guichet_login_verify(op);
        return;
    }

    /* GCH_LOGIN_PACE: one attempt per pause, whoever takes the slot */

    ngx_http_guichet_op_reset(op);

    op->fmt_len[0] = redisFormatCommand(&op->fmt[0], "MULTI");
    op->fmt_len[1] = redisFormatCommand(&op->fmt[1],
                                        "SET " GCH_KEY_LOGINPAUSE
                                        "%s/%s 1 EX %lld NX",
                                        NGX_HTTP_GUICHET_T(op), op->client,
                                        op->login, op->verdict.pause_s);
    op->fmt_len[2] = redisFormatCommand(&op->fmt[2],
                                        "TTL " GCH_KEY_LOGINPAUSE "%s/%s",
                                        NGX_HTTP_GUICHET_T(op), op->client,
                                        op->login);
    op->fmt_len[3] = redisFormatCommand(&op->fmt[3], "EXEC");
    op->nfmt = 4;

    if (ngx_http_guichet_op_collect(op) != NGX_OK
        || ngx_http_guichet_op_send(op, &op->cmds,
                                    ngx_http_guichet_login_paced)
           != NGX_OK)
    {
        ngx_http_guichet_op_unavailable(op);
        ngx_http_guichet_op_free(op);
    }
}


/* The pause slot's answer: [SET NX reply, TTL of the slot]. */
static void
ngx_http_guichet_login_paced(ngx_http_guichet_op_t *op, redisReply *reply)
{
    if (op->r == NULL) {
        ngx_http_guichet_op_free(op);
        return;
    }

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY
        || reply->elements != 2
        || reply->element[1]->type != REDIS_REPLY_INTEGER)
    {
        ngx_http_guichet_op_unavailable(op);
        ngx_http_guichet_op_free(op);
        return;
    }

    if (reply->element[0]->type != REDIS_REPLY_STATUS) {
        /* another attempt holds the slot: wait for it to end */
        ngx_http_guichet_login_refuse(op,
            gch_login_paused(&op->verdict, reply->element[1]->integer),
            "Trop d'essais pour cet identifiant : patientez un moment "
            "avant de réessayer.");
        return;
    }

    ngx_http_guichet_login_verify(op);
}


static void
ngx_http_guichet_login_refuse(ngx_http_guichet_op_t *op, long long secs,
    const char *message)
{
    op->retry_after = secs > 0 ? (ngx_uint_t) secs : 1;
    ngx_http_guichet_op_fail(op, GCH_ERATE, message);
    ngx_http_guichet_op_free(op);
}


/* The password check, in the thread pool, against the hash in op->hash. */
static void
ngx_http_guichet_login_verify(ngx_http_guichet_op_t *op)
{
    ngx_thread_task_t             *task;
    ngx_http_request_t            *r;
    ngx_http_guichet_main_conf_t  *gmcf;

    r = op->r;
    gmcf = ngx_http_get_module_main_conf(r, ngx_http_guichet_module);

    task = ngx_thread_task_alloc(r->pool, sizeof(ngx_http_guichet_op_t *));
    if (task == NULL) {
        ngx_http_guichet_op_unavailable(op);
        ngx_http_guichet_op_free(op);
        return;
    }

    *(ngx_http_guichet_op_t **) task->ctx = op;
    task->handler = ngx_http_guichet_verify_thread;
    task->event.handler = ngx_http_guichet_verify_done;
    task->event.data = op;

    if (gmcf->thread_pool == NULL
        || ngx_thread_task_post(gmcf->thread_pool, task) != NGX_OK)
    {
        ngx_http_guichet_op_unavailable(op);
        ngx_http_guichet_op_free(op);
        return;
    }

    /* the request must not be freed while the thread reads the op */
    r->main->blocked++;
    r->aio = 1;

    if (op->deadline.timer_set) {
        ngx_del_timer(&op->deadline);
    }
}


static void
ngx_http_guichet_verify_thread(void *data, ngx_log_t *log)
{
    int                     rc;
    ngx_http_guichet_op_t  *op = *(ngx_http_guichet_op_t **) data;

    ngx_set_errno(0);
    rc = crypto_pwhash_str_verify(op->hash, op->password,
                                  ngx_strlen(op->password));
    op->verified = rc == 0 && !op->unknown;
    /* -1 is a wrong password (EINVAL) or argon2id's memory refused
     * (ENOMEM): the server's failure, not the family's */
    op->unchecked = rc != 0 && ngx_errno == NGX_ENOMEM;
    sodium_memzero(op->password, sizeof(op->password));

    if (ngx_http_guichet_worker.metrics) {
        (void) ngx_atomic_fetch_add(
                   &ngx_http_guichet_worker.metrics->password_checks, 1);
    }
}


static void
ngx_http_guichet_verify_done(ngx_event_t *ev)
{
    ngx_http_guichet_op_t  *op = ev->data;
    ngx_http_request_t     *r;

    r = op->r;
    if (r) {
        r->main->blocked--;
        r->aio = 0;

        if (ngx_http_guichet_login_answer(op) == NGX_DONE) {
            return;
        }
    }

    ngx_http_guichet_op_free(op);
}


/*
 * After the password check: a failure is answered at once (its attempt was
 * counted before the check); a success clears the login's count (fire and
 * forget), makes the token, and waits for its record: NGX_DONE, then
 * ngx_http_guichet_login_recorded answers and frees op.  NGX_OK: answered
 * here, the caller frees op.
 */
static ngx_int_t
ngx_http_guichet_login_answer(ngx_http_guichet_op_t *op)
{
    u_char                        *p, nonce[16];
    char                           token[GCH_TOKEN_MAX], exp[26];
    time_t                         expires;
    ngx_http_request_t            *r;
    ngx_http_guichet_main_conf_t  *gmcf;

    r = op->r;
    if (r == NULL) {
        return NGX_OK;
    }

    if (op->unchecked) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, NGX_ENOMEM,
                      "guichet: a login's password check had no memory");
        ngx_http_guichet_op_unavailable(op);
        return NGX_OK;
    }

    if (!op->verified) {
        ngx_http_guichet_op_fail(op, GCH_EUNAUTH,
                                 "Identifiant ou mot de passe incorrect.");
        return NGX_OK;
    }

    ngx_http_guichet_login_succeeded(op);

    gmcf = ngx_http_get_module_main_conf(r, ngx_http_guichet_module);

    expires = ngx_time() + gmcf->token_ttl;
    randombytes_buf(nonce, sizeof(nonce));

    if (gch_token_issue(token, gmcf->secret, NGX_HTTP_GUICHET_T(op), op->fid,
                        ngx_time(), expires, nonce)
        != GCH_OK)
    {
        ngx_http_guichet_op_unavailable(op);
        return NGX_OK;
    }

    gch_instant_format(expires, exp);

    op->answer.len = sizeof("{\"family_id\":\"\",\"token\":\"\","
                            "\"expires_at\":\"\"}") - 1
                     + ngx_strlen(op->fid) + ngx_strlen(token)
                     + ngx_strlen(exp);
    op->answer.data = ngx_pnalloc(r->pool, op->answer.len);

    if (op->answer.data == NULL
        || ngx_http_guichet_session_cookie(r, token, gmcf->token_ttl,
                                           &op->cookie)
           != NGX_OK)
    {
        ngx_http_guichet_op_unavailable(op);
        return NGX_OK;
    }

    p = ngx_sprintf(op->answer.data, "{\"family_id\":\"%s\",\"token\":\"%s\","
                    "\"expires_at\":\"%s\"}", op->fid, token, exp);
    op->answer.len = p - op->answer.data;

    if (ngx_http_guichet_login_record(op, token, expires) != NGX_OK) {
        ngx_http_guichet_op_unavailable(op);
        return NGX_OK;
    }

    return NGX_DONE;
}


/*
 * Login throttling (the policy is the engine's, gch_login_throttle()):
 * every attempt was counted before its check, in
 *   {T}:loginfail:<address>/<login>   attempts of that login from there,
 *   {T}:loginaddr:<address>           unsuccessful attempts from there,
 * and may have taken the pause slot {T}:loginpause:<address>/<login>.
 * A success clears the first and the slot and gives its attempt back to
 * the second (fire and forget: the answer does not wait for it).
 */
static void
ngx_http_guichet_login_succeeded(ngx_http_guichet_op_t *op)
{
    ngx_http_guichet_fire_t  *f;

    f = ngx_calloc(sizeof(ngx_http_guichet_fire_t), ngx_cycle->log);
    if (f == NULL) {
        return;
    }

    f->len[0] = redisFormatCommand(&f->fmt[0], "MULTI");
    f->len[1] = redisFormatCommand(&f->fmt[1], "DEL " GCH_KEY_LOGINFAIL "%s/%s "
                                   GCH_KEY_LOGINPAUSE "%s/%s",
                                   NGX_HTTP_GUICHET_T(op), op->client,
                                   op->login, NGX_HTTP_GUICHET_T(op),
                                   op->client, op->login);
    f->len[2] = redisFormatCommand(&f->fmt[2], "DECR " GCH_KEY_LOGINADDR "%s",
                                   NGX_HTTP_GUICHET_T(op), op->client);
    f->len[3] = redisFormatCommand(&f->fmt[3],
                                   "EXPIRE " GCH_KEY_LOGINADDR "%s %d NX",
                                   NGX_HTTP_GUICHET_T(op), op->client,
                                   GCH_LOGIN_ADDR_WINDOW_S);
    f->len[4] = redisFormatCommand(&f->fmt[4], "EXEC");
    f->n = 5;

    ngx_http_guichet_fire(f);
}


/*
 * A successful login is recorded for the family before it is answered:
 * the connection (unix ms and client address) at the head of
 * {T}:f:<fid>:connections (the last 200 kept, the family's history page),
 * and the token's hash in {T}:f:<fid>:tokens scored by its expiry, so that
 * a password change can end the family's other sessions (guichet-office,
 * office/account.c); expired hashes are dropped.  A Redis that refuses it
 * (OOM at maxmemory, LOADING, gone) gets the login 503, never a 200 whose
 * session a password change could not end.  NGX_OK: the answer comes
 * from ngx_http_guichet_login_recorded.
 */
static ngx_int_t
ngx_http_guichet_login_record(ngx_http_guichet_op_t *op, const char *token,
    time_t expires)
{
    u_char                         hash[NGX_HTTP_GUICHET_TOKEN_HASH];
    u_char                         hex[2 * NGX_HTTP_GUICHET_TOKEN_HASH + 1];
    u_char                         conn[NGX_INT64_LEN + 1
                                        + NGX_SOCKADDR_STRLEN];
    u_char                        *last;
    ngx_int_t                      rc;
    ngx_uint_t                     i;
    ngx_time_t                    *tp;
    ngx_str_t                     *addr;
    gch_cmds_t                     cmds;
    gch_cmd_t                      list[NGX_HTTP_GUICHET_FIRE_MAX];
    ngx_http_guichet_fire_t       *f;
    ngx_http_guichet_main_conf_t  *gmcf;

    f = ngx_calloc(sizeof(ngx_http_guichet_fire_t), ngx_cycle->log);
    if (f == NULL) {
        return NGX_ERROR;
    }

    ngx_http_guichet_token_hash((u_char *) token, ngx_strlen(token), hash);
    ngx_hex_dump(hex, hash, NGX_HTTP_GUICHET_TOKEN_HASH);
    hex[2 * NGX_HTTP_GUICHET_TOKEN_HASH] = '\0';

    tp = ngx_timeofday();
    addr = &op->r->connection->addr_text;

    f->len[0] = redisFormatCommand(&f->fmt[0], "MULTI");
    /* one list element: "<unix ms> <address>" */
    last = ngx_snprintf(conn, sizeof(conn), "%M %V",
                        (ngx_msec_t) (tp->sec * 1000 + tp->msec), addr);

    f->len[1] = redisFormatCommand(&f->fmt[1],
                                   "LPUSH " GCH_KEY_F(GCH_KEY_CONNECTIONS)
                                   " %b", NGX_HTTP_GUICHET_T(op), op->fid,
                                   conn, (size_t) (last - conn));
    f->len[2] = redisFormatCommand(&f->fmt[2],
                                   "LTRIM " GCH_KEY_F(GCH_KEY_CONNECTIONS)
                                   " 0 199", NGX_HTTP_GUICHET_T(op), op->fid);
    f->len[3] = redisFormatCommand(&f->fmt[3],
                                   "ZADD " GCH_KEY_F(GCH_KEY_TOKENS)
                                   " %lld %s", NGX_HTTP_GUICHET_T(op),
                                   op->fid, (long long) expires, hex);
    f->len[4] = redisFormatCommand(&f->fmt[4],
                                   "ZREMRANGEBYSCORE "
                                   GCH_KEY_F(GCH_KEY_TOKENS) " -inf %lld",
                                   NGX_HTTP_GUICHET_T(op), op->fid,
                                   (long long) tp->sec);
    f->len[5] = redisFormatCommand(&f->fmt[5], "EXEC");
    f->n = 6;

    rc = NGX_OK;

    for (i = 0; i < f->n; i++) {
        if (f->len[i] < 0) {
            rc = NGX_ERROR;
            break;
        }

        list[i].data = f->fmt[i];
        list[i].len = (size_t) f->len[i];
    }

    if (rc == NGX_OK) {
        cmds.cmds = list;
        cmds.ncmds = f->n;

        /* the thread pool's wait had no deadline; this one has */
        gmcf = ngx_http_get_module_main_conf(op->r, ngx_http_guichet_module);
        ngx_add_timer(&op->deadline, gmcf->timeout);

        rc = ngx_http_guichet_op_send(op, &cmds,
                                      ngx_http_guichet_login_recorded);
    }

    /* hiredis has copied the commands */
    ngx_http_guichet_fire_done(NULL, f);

    return rc;
}


static void
ngx_http_guichet_login_recorded(ngx_http_guichet_op_t *op, redisReply *reply)
{
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY) {
        if (reply && reply->type == REDIS_REPLY_ERROR) {
            ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                          "guichet: redis refused a login's record: %s",
                          reply->str);
        }

        ngx_http_guichet_op_unavailable(op);

    } else {
        ngx_http_guichet_op_answer(op, NGX_HTTP_OK, (char *) op->answer.data,
                                   op->answer.len, 0, &op->cookie);
    }

    ngx_http_guichet_op_free(op);
}


/* Sends f's commands (f->n of them) and frees f in every case. */
static void
ngx_http_guichet_fire(ngx_http_guichet_fire_t *f)
{
    ngx_uint_t  i;
    gch_cmds_t  cmds;
    gch_cmd_t   list[NGX_HTTP_GUICHET_FIRE_MAX];

    for (i = 0; i < f->n; i++) {
        if (f->len[i] < 0) {
            ngx_http_guichet_fire_done(NULL, f);
            return;
        }

        list[i].data = f->fmt[i];
        list[i].len = (size_t) f->len[i];
    }

    cmds.cmds = list;
    cmds.ncmds = f->n;

    if (ngx_http_guichet_redis_send(&cmds, ngx_http_guichet_fire_done, f)
        != NGX_OK)
    {
        ngx_http_guichet_fire_done(NULL, f);
    }
}


static void
ngx_http_guichet_fire_done(redisReply *reply, void *data)
{
    ngx_uint_t                i;
    ngx_http_guichet_fire_t  *f = data;

    for (i = 0; i < f->n; i++) {
        if (f->fmt[i]) {
            redisFreeCommand(f->fmt[i]);
        }
    }

    ngx_free(f);
}


/* DELETE /api/session */

/*
 * DELETE /api/session ends the session for real: the token's hash goes
 * into {T}:revoked (until the token would have expired anyway); this
 * worker refuses it at once, the others within guichet_catalogue_refresh.
 */
ngx_int_t
ngx_http_guichet_logout(ngx_http_request_t *r, ngx_http_guichet_call_t *call)
{
    u_char                         hash[NGX_HTTP_GUICHET_TOKEN_HASH];
    u_char                         hex[2 * NGX_HTTP_GUICHET_TOKEN_HASH + 1];
    char                           fid[NGX_HTTP_GUICHET_FID_MAX];
    int64_t                        expires;
    ngx_str_t                      tok, cookie;
    ngx_uint_t                     is_cookie;
    ngx_http_guichet_op_t         *op;
    ngx_http_guichet_main_conf_t  *gmcf;

    gmcf = ngx_http_get_module_main_conf(r, ngx_http_guichet_module);

    if (!gmcf->have_secret
        || ngx_http_guichet_token(r, &tok, &is_cookie) != NGX_OK
        || gch_token_verify(gmcf->secret,
                            (const char *) ngx_http_guichet_tenant(r)->id.data,
                            (const char *) tok.data, tok.len, ngx_time(), fid,
                            sizeof(fid), &expires)
           != GCH_OK)
    {
        /* nothing to end: just clear the cookie */
        if (ngx_http_guichet_session_cookie(r, "", 0, &cookie) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_guichet_send(r, NGX_HTTP_NO_CONTENT, NULL, 0, 0,
                                     &cookie);
    }

    if (is_cookie && !ngx_http_guichet_origin_ok(r)) {
        return ngx_http_guichet_bad_origin(r);
    }

    ngx_http_guichet_token_hash(tok.data, tok.len, hash);
    ngx_hex_dump(hex, hash, NGX_HTTP_GUICHET_TOKEN_HASH);
    hex[2 * NGX_HTTP_GUICHET_TOKEN_HASH] = '\0';
    ngx_http_guichet_revoked_add(ngx_http_guichet_tenant(r), hash);

    op = ngx_http_guichet_op_new(r);
    if (op == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    op->fmt_len[0] = redisFormatCommand(&op->fmt[0], "MULTI");
    op->fmt_len[1] = redisFormatCommand(&op->fmt[1],
                                        "ZADD " GCH_KEY_REVOKED " %lld %s",
                                        NGX_HTTP_GUICHET_T(op),
                                        (long long) expires, hex);
    op->fmt_len[2] = redisFormatCommand(&op->fmt[2],
                                        "ZREMRANGEBYSCORE " GCH_KEY_REVOKED
                                        " -inf %lld", NGX_HTTP_GUICHET_T(op),
                                        (long long) ngx_time());
    op->fmt_len[3] = redisFormatCommand(&op->fmt[3],
                                        "INCR " GCH_KEY_REVOKED_GEN,
                                        NGX_HTTP_GUICHET_T(op));
    op->fmt_len[4] = redisFormatCommand(&op->fmt[4], "EXEC");
    op->nfmt = 5;

    return ngx_http_guichet_op_start(r, op,
               ngx_http_guichet_op_collect(op) == NGX_OK ? &op->cmds : NULL,
               ngx_http_guichet_logout_done);
}


static void
ngx_http_guichet_logout_done(ngx_http_guichet_op_t *op, redisReply *reply)
{
    ngx_str_t            cookie;
    ngx_http_request_t  *r;

    r = op->r;

    if (r) {
        if (reply == NULL || reply->type != REDIS_REPLY_ARRAY) {
            ngx_http_guichet_op_unavailable(op);

        } else if (ngx_http_guichet_session_cookie(r, "", 0, &cookie)
                   != NGX_OK)
        {
            ngx_http_guichet_op_unavailable(op);

        } else {
            ngx_http_guichet_op_answer(op, NGX_HTTP_NO_CONTENT, NULL, 0, 0,
                                       &cookie);
        }
    }

    ngx_http_guichet_op_free(op);
}
