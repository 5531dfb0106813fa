/*
 * staff.c -- guichet-office: the back office: staff login, families,
 * attendance, audit.
 *
 * Staff log in with POST /api/staff/session (argon2id hashes of
 * staff_account, written by `guichetctl staff-add`) and get a bearer token
 * "staff:<login>" made with the module's secret (token_ttl_s).  Attempts
 * are counted per login and client address, and per address, in Redis
 * before the password is checked, with the module's policy and keys
 * (gch_login_throttle(): a growing pause for the address that keeps
 * failing, never a lock-out of the owner elsewhere, a hard limit per
 * address; 429 rate_limited).  Logins, failures and every staff write are
 * audit_log rows written in the transaction of the action.
 *
 * A staff token is recorded in {T}:staff:<login>:tokens (like a family's),
 * so that deactivating the account (POST /api/staff/accounts/{login}/
 * deactivate, admin) or changing its password (guichetctl staff-add) ends
 * it; {T}:staff tells the module which accounts are active (issue 18).
 *
 * The enrolment and document decisions are in enrolment.c and document.c;
 * the on-site bookings at the counter stay in the module
 * (POST /api/staff/bookings); invoicing and payments are in payment.c.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include <sodium.h>

#include "office.h"


/* an address as login attempts are counted by: X-Real-IP, or an IPv6
 * /64 */
#define GCHO_ADDR_KEY  (sizeof(((gcho_req_t *) 0)->ip) + 4)


/* ------------------------------------------------------------------ */
/* POST /api/staff/session                                              */

static const gch_jfield_t  gcho_session_fields[] = {
    { "login", GCH_J_STRING, 1 },
    { "password", GCH_J_STRING, 1 }
};


/* An audit row for the failure of login in its own transaction (begun by
 * the caller); answers 401. */
static int
gcho_staff_failed(gcho_req_t *rq, const char *login)
{
    char  target[GCHO_ID_MAX + 8];

    snprintf(target, sizeof(target), "staff:%s", login);

    if (gcho_audit(rq, "staff.login_failed", target, NULL) != 0
        || gcho_commit(rq) != 0)
    {
        return 0;
    }

    return gcho_error(rq, 401, "unauthenticated",
                      "Identifiant ou mot de passe incorrect.");
}


/*
 * Login throttling: the module's policy for families (issue 18,
 * gch_login_throttle() in gch.h, docs/reliability.md "Security") and its
 * Redis keys, the login written "staff:<login>" so that it is never a
 * family's:
 *   {T}:loginfail:<address>/staff:<login>   attempts of that login from
 *                                           that address since its last
 *                                           success,
 *   {T}:loginaddr:<address>                 unsuccessful attempts from
 *                                           that address, family and staff
 *                                           logins alike (one hard limit),
 *   {T}:loginpause:<address>/staff:<login>  the pause slot.
 * The attempt is counted (INCR, atomic) before the account is read and the
 * hash queued: a burst of concurrent guesses is refused before it costs a
 * hash.  The address is nginx's X-Real-IP (the socket is 0660: nginx alone
 * writes it), an IPv6 address by its /64 like the module's.
 */
static void
gcho_staff_client_key(gcho_req_t *rq, char *buf, size_t size)
{
    char           text[INET6_ADDRSTRLEN];
    unsigned char  a6[16];

    if (strchr(rq->ip, ':') != NULL && inet_pton(AF_INET6, rq->ip, a6) == 1)
    {
        memset(a6 + 8, 0, 8);

        if (inet_ntop(AF_INET6, a6, text, sizeof(text)) != NULL) {
            snprintf(buf, size, "%s/64", text);
            return;
        }
    }

    /* no X-Real-IP: not through nginx (the tests' own socket, at most) */
    snprintf(buf, size, "%s", rq->ip[0] ? rq->ip : "-");
}


/* Reads the replies of n pipelined commands, MULTI ... EXEC; EXEC's (an
 * array of n - 2 replies) or NULL after logging. */
static redisReply *
gcho_staff_exec(redisContext *rc, int n, const char *what)
{
    int          i, bad;
    redisReply  *r, *last;

    last = NULL;
    bad = 0;

    for (i = 0; i < n; i++) {
        if (redisGetReply(rc, (void **) &r) != REDIS_OK) {
            gchb_log("error", "office: redis: %s: %s", what, rc->errstr);
            if (last) {
                freeReplyObject(last);
            }
            gcho_redis_drop_broken();
            return NULL;
        }

        if (last) {
            freeReplyObject(last);
        }
        last = r;

        if (r->type == REDIS_REPLY_ERROR) {
            gchb_log("error", "office: redis: %s: %s", what, r->str);
            bad = 1;
        }
    }

    if (bad || last->type != REDIS_REPLY_ARRAY
        || last->elements != (size_t) (n - 2))
    {
        if (!bad) {
            gchb_log("error", "office: redis: %s: unexpected reply", what);
        }
        freeReplyObject(last);
        return NULL;
    }

    return last;
}


/* 429 rate_limited with the real wait (gcho_error's own Retry-After is
 * 1 s). */
static int
gcho_staff_refuse(gcho_req_t *rq, long long secs, const char *message)
{
    char  wait[24];

    snprintf(wait, sizeof(wait), "%lld", secs > 0 ? secs : 1);

    gcho_error(rq, 400, "rate_limited", message);
    rq->status = 429;
    gcho_add_header(rq, "Retry-After", wait);

    return 1;
}


/* See office.h. */
int
gcho_login_throttle(gcho_req_t *rq, const char *kind, const char *login)
{
    char                  addr[GCHO_ADDR_KEY];
    long long             wait;
    redisReply           *r, **e;
    redisContext         *rc;
    gch_login_counts_t    counts;
    gch_login_verdict_t   verdict;

    rc = gcho_redis(rq);
    if (rc == NULL) {
        return 1;
    }

    gcho_staff_client_key(rq, addr, sizeof(addr));

    redisAppendCommand(rc, "MULTI");
    redisAppendCommand(rc, "INCR " GCH_KEY_LOGINFAIL "%s/%s:%s", gchb_town,
                       addr, kind, login);
    redisAppendCommand(rc, "EXPIRE " GCH_KEY_LOGINFAIL "%s/%s:%s %d NX",
                       gchb_town, addr, kind, login, GCH_LOGIN_PAIR_WINDOW_S);
    redisAppendCommand(rc, "INCR " GCH_KEY_LOGINADDR "%s", gchb_town, addr);
    redisAppendCommand(rc, "EXPIRE " GCH_KEY_LOGINADDR "%s %d NX", gchb_town,
                       addr, GCH_LOGIN_ADDR_WINDOW_S);
    redisAppendCommand(rc, "TTL " GCH_KEY_LOGINADDR "%s", gchb_town, addr);
    redisAppendCommand(rc, "EXEC");

    r = gcho_staff_exec(rc, 7, "counting a staff login");
    if (r == NULL) {
        goto unavailable;
    }

    e = r->element;

    if (e[0]->type != REDIS_REPLY_INTEGER || e[2]->type != REDIS_REPLY_INTEGER
        || e[4]->type != REDIS_REPLY_INTEGER)
    {
        freeReplyObject(r);
        goto unavailable;
    }

    counts.pair = e[0]->integer;
    counts.addr = e[2]->integer;
    counts.addr_ttl = e[4]->integer;
    freeReplyObject(r);

    gch_login_throttle(&counts, &verdict);

    if (verdict.action == GCH_LOGIN_GO) {
        return 0;
    }

    if (verdict.action == GCH_LOGIN_REFUSE) {
        return gcho_staff_refuse(rq, verdict.retry_after_s,
            "Trop d'essais de connexion depuis cette adresse : réessayez "
            "dans quelques minutes.");
    }

    /* GCH_LOGIN_PACE: one attempt per pause, whoever takes the slot */

    redisAppendCommand(rc, "MULTI");
    redisAppendCommand(rc, "SET " GCH_KEY_LOGINPAUSE "%s/%s:%s 1 EX %lld NX",
                       gchb_town, addr, kind, login, verdict.pause_s);
    redisAppendCommand(rc, "TTL " GCH_KEY_LOGINPAUSE "%s/%s:%s", gchb_town,
                       addr, kind, login);
    redisAppendCommand(rc, "EXEC");

    r = gcho_staff_exec(rc, 4, "pausing a staff login");
    if (r == NULL) {
        goto unavailable;
    }

    e = r->element;

    if (e[1]->type != REDIS_REPLY_INTEGER) {
        freeReplyObject(r);
        goto unavailable;
    }

    if (e[0]->type == REDIS_REPLY_STATUS) {
        /* the slot is ours: this attempt is checked */
        freeReplyObject(r);
        return 0;
    }

    /* another attempt holds the slot: wait for it to end */
    wait = gch_login_paused(&verdict, e[1]->integer);
    freeReplyObject(r);

    return gcho_staff_refuse(rq, wait,
        "Trop d'essais pour cet identifiant : patientez un moment avant "
        "de réessayer.");

unavailable:

    gcho_error(rq, 503, "unavailable",
               "Le service est momentanément indisponible, réessayez dans "
               "un instant.");
    return 1;
}


/* See office.h. */
void
gcho_login_throttle_clear(gcho_req_t *rq, const char *kind,
    const char *login)
{
    char           addr[GCHO_ADDR_KEY];
    redisReply    *r;
    redisContext  *rc;

    rc = gcho_redis(NULL);
    if (rc == NULL) {
        return;
    }

    gcho_staff_client_key(rq, addr, sizeof(addr));

    redisAppendCommand(rc, "MULTI");
    redisAppendCommand(rc, "DEL " GCH_KEY_LOGINFAIL "%s/%s:%s "
                       GCH_KEY_LOGINPAUSE "%s/%s:%s", gchb_town, addr, kind,
                       login, gchb_town, addr, kind, login);
    redisAppendCommand(rc, "DECR " GCH_KEY_LOGINADDR "%s", gchb_town, addr);
    redisAppendCommand(rc, "EXPIRE " GCH_KEY_LOGINADDR "%s %d NX", gchb_town,
                       addr, GCH_LOGIN_ADDR_WINDOW_S);
    redisAppendCommand(rc, "EXEC");

    r = gcho_staff_exec(rc, 5, "clearing a staff login's attempts");
    if (r != NULL) {
        freeReplyObject(r);
    }
}


/*
 * The token's hash in {T}:staff:<login>:tokens scored by its expiry, as
 * the module does for a family's login; expired ones dropped.  Best effort:
 * without Redis the login still answers (the token then ends only by
 * expiring or when the account is deactivated: {T}:staff).
 */
static void
gcho_staff_token_record(const char *login, const char *tok, int64_t expires)
{
    char           hex[2 * GCH_TOKEN_HASH_LEN + 1];
    uint8_t        hash[GCH_TOKEN_HASH_LEN];
    redisReply    *r;
    redisContext  *rc;

    rc = gcho_redis(NULL);
    if (rc == NULL) {
        return;
    }

    gch_token_hash(tok, strlen(tok), hash);
    sodium_bin2hex(hex, sizeof(hex), hash, sizeof(hash));

    r = redisCommand(rc, "ZADD " GCH_KEY_STAFF_TOKENS " %lld %s", gchb_town,
                     login, (long long) expires, hex);
    if (r == NULL || r->type == REDIS_REPLY_ERROR) {
        gchb_log("warn", "office: redis: ZADD " GCH_KEY_STAFF_TOKENS ": %s",
                 gchb_town, login, r ? r->str : rc->errstr);
        gcho_redis_drop_broken();
    }
    if (r) {
        freeReplyObject(r);
    }

    r = redisCommand(rc, "ZREMRANGEBYSCORE " GCH_KEY_STAFF_TOKENS " -inf %lld",
                     gchb_town, login, (long long) gcho_now());
    if (r) {
        freeReplyObject(r);
    }
}


/* The second half of gcho_staff_login, once the password is verified. */
static int
gcho_staff_login_end(gcho_req_t *rq)
{
    char          fid[GCHO_ID_MAX + 8];
    char          tok[GCH_TOKEN_MAX], exp[26];
    uint8_t       nonce[16];
    int64_t       expires;
    PGresult     *res;
    gch_jout_t    o;
    const char   *p[1], *login;
    gcho_hash_t  *h;

    h = rq->hash;
    login = h->keep[0];

    if (h->failed) {
        return gcho_error(rq, 503, "unavailable",
                          "Le service est momentanément indisponible.");
    }

    if (gcho_begin(rq) != 0) {
        return 0;
    }

    if (!h->verified || h->keep[1][0] == '\0') {
        return gcho_staff_failed(rq, login);
    }

    /* the account again: it may have been disabled meanwhile */
    p[0] = login;
    res = gcho_sql(rq, "select name, role from staff_account"
                       " where login = $1 and active"
                       " and password_hash is not null", 1, p);
    if (res == NULL) {
        return 0;
    }

    if (PQntuples(res) != 1) {
        PQclear(res);
        return gcho_staff_failed(rq, login);
    }

    /* the actor of the audit row is the staff member now logged in */
    snprintf(rq->staff, sizeof(rq->staff), "%s", login);
    snprintf(fid, sizeof(fid), "staff:%s", login);

    if (gcho_audit(rq, "staff.login", fid, NULL) != 0
        || gcho_commit(rq) != 0)
    {
        PQclear(res);
        return 0;
    }

    gcho_login_throttle_clear(rq, "staff", login);

    randombytes_buf(nonce, sizeof(nonce));
    expires = gcho_now() + gcho_ctx.conf.token_ttl_s;

    if (gch_token_make(tok, gcho_ctx.secret, gchb_town, fid, expires, nonce)
        != GCH_OK
        || gch_jout_init(&o, &gch_alloc_std) != 0)
    {
        PQclear(res);
        return -1;
    }

    gch_instant_format(expires, exp);
    gcho_staff_token_record(login, tok, expires);

    yajl_gen_map_open(o.g);
    gch_jout_cstr(&o, "token");
    gch_jout_cstr(&o, tok);
    gch_jout_cstr(&o, "login");
    gch_jout_cstr(&o, login);
    gch_jout_cstr(&o, "name");
    gch_jout_cstr(&o, PQgetvalue(res, 0, 0));
    gch_jout_cstr(&o, "role");
    gch_jout_cstr(&o, PQgetvalue(res, 0, 1));
    gch_jout_cstr(&o, "expires_at");
    gch_jout_cstr(&o, exp);
    yajl_gen_map_close(o.g);

    PQclear(res);
    sodium_memzero(tok, sizeof(tok));

    return gcho_reply_jout(rq, 200, &o);
}


/*
 * First half: the body, the attempt counted (gcho_login_throttle), the
 * account's hash; the password is verified on a hashing thread (hash.c)
 * -- against a dummy hash when the login is unknown or disabled, so that
 * both cost the same argon2id and cannot be told apart by timing.  Second
 * half: the failure audited, or the token made and the attempts of that
 * login from that address forgotten.
 */
static int
gcho_staff_login(gcho_req_t *rq)
{
    int                 rc;
    char                login[GCHO_ID_MAX], password[GCHO_PW_BYTES];
    PGresult           *res;
    gch_json_t          doc;
    gcho_hash_t        *h;
    const char         *p[1];
    const gch_jnode_t  *v[2];

    if (rq->hash != NULL) {
        return gcho_staff_login_end(rq);
    }

    if (gcho_body_json(rq, &doc, gcho_session_fields, 2, v) != 0) {
        return 0;
    }

    rc = gcho_str(rq, "login", v[0], login, 65, 1) != 0
         || gcho_str(rq, "password", v[1], password, sizeof(password), 1)
            != 0;

    gch_json_free(&doc);

    if (rc || gcho_login_throttle(rq, "staff", login) != 0) {
        sodium_memzero(password, sizeof(password));
        return 0;
    }

    p[0] = login;
    res = gcho_sql(rq, "select password_hash from staff_account"
                       " where login = $1 and active"
                       " and password_hash is not null", 1, p);
    if (res == NULL) {
        sodium_memzero(password, sizeof(password));
        return 0;
    }

    h = gcho_hash_prepare(rq);
    if (h != NULL) {
        snprintf(h->verify_hash, sizeof(h->verify_hash), "%s",
                 PQntuples(res) == 1 ? PQgetvalue(res, 0, 0)
                                     : gcho_hash_dummy());
        snprintf(h->verify_pw, sizeof(h->verify_pw), "%s", password);
        snprintf(h->keep[0], sizeof(h->keep[0]), "%s", login);
        snprintf(h->keep[1], sizeof(h->keep[1]), "%s",
                 PQntuples(res) == 1 ? "known" : "");
    }

    PQclear(res);
    sodium_memzero(password, sizeof(password));
    return 0;
}


/* GET /api/staff/me: who the token is */
static int
gcho_staff_me(gcho_req_t *rq)
{
    const char  *p[1];

    p[0] = rq->staff;

    return gcho_reply_row(rq, 200,
        "select json_build_object('login', login, 'name', name,"
        "   'role', role) from staff_account where login = $1", 1, p,
        "Ce compte d'agent n'existe pas.");
}


/* ------------------------------------------------------------------ */
/* families                                                             */

/*
 * A paging parameter of the family search: absent, the default; else
 * decimal digits only, from min to max.
 */
static int
gcho_staff_page_arg(gcho_req_t *rq, const char *name, long dflt, long min,
    long max, char *out, size_t size)
{
    char        msg[120];
    long        n;
    const char  *v, *c;

    v = gcho_query(rq, name);
    n = dflt;

    if (v != NULL) {
        if (*v == '\0' || strlen(v) > 7) {
            goto invalid;
        }
        for (c = v; *c != '\0'; c++) {
            if (*c < '0' || *c > '9') {
                goto invalid;
            }
        }
        n = strtol(v, NULL, 10);
        if (n < min || n > max) {
            goto invalid;
        }
    }

    snprintf(out, size, "%ld", n);
    return 0;

invalid:

    snprintf(msg, sizeof(msg), "Le paramètre %s doit être un entier de "
             "%ld à %ld.", name, min, max);
    gcho_error(rq, 400, "invalid_field", msg);
    return -1;
}


/* GET /api/staff/families?q=&offset=&limit= : by family id, login, child
 * first name or e-mail address (case-insensitive substring), ordered by id;
 * a page of limit families (50 unless asked, 100 at most) from offset, and
 * the total of the hits (issue 22) */
static int
gcho_staff_families(gcho_req_t *rq)
{
    char         off[16], lim[16];
    const char  *p[3], *q;

    q = gcho_query(rq, "q");
    if (q != NULL && strlen(q) > 100) {
        return gcho_error(rq, 400, "invalid_field",
                          "Le paramètre q est trop long.");
    }

    if (gcho_staff_page_arg(rq, "offset", 0, 0, 1000000, off, sizeof(off))
        != 0
        || gcho_staff_page_arg(rq, "limit", 50, 1, 100, lim, sizeof(lim))
           != 0)
    {
        return 0;
    }

    p[0] = q ? q : "";
    p[1] = off;
    p[2] = lim;

    return gcho_reply_row(rq, 200,
        "with hit as ("
        "   select f.id from family f"
        "   left join family_email m on m.family_id = f.id"
        "   where $1 = ''"
        "      or strpos(lower(f.id), lower($1)) > 0"
        "      or strpos(lower(coalesce(f.login, '')), lower($1)) > 0"
        "      or strpos(lower(coalesce(m.address, '')), lower($1)) > 0"
        "      or exists (select 1 from child c where c.family_id = f.id"
        "         and strpos(lower(c.first_name), lower($1)) > 0)),"
        " page as (select id from hit order by id"
        "   offset $2::int limit $3::int)"
        " select json_build_object('total', (select count(*) from hit),"
        "   'offset', $2::int, 'limit', $3::int,"
        "   'families', coalesce((select json_agg("
        "   json_build_object('id', f.id, 'login', f.login,"
        "     'email', m.address, 'direct_debit', f.direct_debit,"
        "     'children', (select coalesce(json_agg(json_build_object("
        "        'id', c.id, 'first_name', c.first_name,"
        "        'birth_date', c.birth_date) order by c.id), '[]')"
        "        from child c where c.family_id = f.id))"
        "   order by f.id)"
        "   from page join family f on f.id = page.id"
        "   left join family_email m on m.family_id = f.id), '[]'))",
        3, p, "");
}


/* GET /api/staff/families/{id}: the family's whole file */
static int
gcho_staff_family(gcho_req_t *rq)
{
    const char  *p[1];

    p[0] = rq->param[0];

    return gcho_reply_row(rq, 200,
        "select json_build_object('id', f.id, 'login', f.login,"
        " 'qf', f.qf, 'resident', f.resident,"
        " 'direct_debit', f.direct_debit,"
        " 'email', (select address from family_email m"
        "    where m.family_id = f.id),"
        " 'children', (select coalesce(json_agg(json_build_object("
        "    'id', c.id, 'first_name', c.first_name,"
        "    'birth_date', c.birth_date) order by c.id), '[]')"
        "    from child c where c.family_id = f.id),"
        " 'enrolments', (select coalesce(json_agg(json_build_object("
        "    'id', e.id, 'child_id', e.child_id,"
        "    'activity_id', e.activity_id, 'from', e.from_date,"
        "    'to', e.to_date, 'status', e.status, 'origin', e.origin,"
        "    'reason', e.reason) order by e.from_date, e.id), '[]')"
        "    from enrolment e join child c on c.id = e.child_id"
        "    where c.family_id = f.id),"
        " 'documents', (select coalesce(json_agg(json_build_object("
        "    'id', d.id, 'child_id', d.child_id, 'type', d.type,"
        "    'filename', d.filename, 'status', d.status,"
        "    'reason', d.reason, 'valid_from', d.valid_from,"
        "    'valid_to', d.valid_to, 'uploaded_at', d.uploaded_at)"
        "    order by d.id), '[]')"
        "    from document d where d.family_id = f.id),"
        " 'bookings', (select coalesce(json_agg(json_build_object("
        "    'id', b.id, 'child_id', b.child_id,"
        "    'session_id', b.session_id, 'activity_id', s.activity_id,"
        "    'date', s.date, 'unit', s.unit_code, 'label', s.label,"
        "    'status', b.status, 'channel', b.channel,"
        "    'price_cents', b.price_cents, 'justified', b.justified,"
        "    'created_at', b.created_at, 'cancelled_at', b.cancelled_at,"
        "    'attendance', t.status, 'attendance_note', t.note)"
        "    order by s.date, s.unit_code, b.child_id), '[]')"
        "    from booking b join session s on s.id = b.session_id"
        "    left join attendance t on t.booking_id = b.id"
        "    where b.family_id = f.id),"
        " 'invoices', (select coalesce(json_agg(json_build_object("
        "    'id', i.id, 'number', i.number, 'month', i.month,"
        "    'reference', i.reference, 'regie', i.regie_code,"
        "    'total_cents', i.total_cents, 'issued_at', i.issued_at,"
        "    'due_date', i.due_date, 'paid', i.paid,"
        "    'credited_cents', i.credited_cents, 'paid_by', i.paid_by)"
        "    order by i.month), '[]')"
        "    from invoice i where i.family_id = f.id))"
        " from family f where f.id = $1", 1, p,
        "Cette famille n'existe pas.");
}


/* ------------------------------------------------------------------ */
/* attendance                                                           */

static const gch_jfield_t  gcho_attendance_fields[] = {
    { "booking_id", GCH_J_STRING, 1 },
    { "status", GCH_J_STRING, 1 },
    { "note", GCH_J_STRING | GCH_J_NULL, 0 }
};


/* POST /api/staff/attendance {booking_id, status, note} */
static int
gcho_staff_attendance(gcho_req_t *rq)
{
    int                 rc;
    char                bid[GCHO_ID_MAX], status[20], note[1024];
    char                target[GCHO_ID_MAX + 16], before[20];
    PGresult           *res;
    gch_json_t          doc;
    const char         *p[4], *kv[8];
    const gch_jnode_t  *v[3];

    if (gcho_body_json(rq, &doc, gcho_attendance_fields, 3, v) != 0) {
        return 0;
    }

    rc = gcho_str(rq, "booking_id", v[0], bid, sizeof(bid), 1) != 0
         || gcho_str(rq, "status", v[1], status, sizeof(status), 1) != 0
         || gcho_str(rq, "note", v[2], note, sizeof(note), 0) != 0;

    gch_json_free(&doc);

    if (rc) {
        return 0;
    }

    if (strcmp(status, "present") != 0 && strcmp(status, "absent") != 0
        && strcmp(status, "absent_justifie") != 0)
    {
        return gcho_error(rq, 400, "invalid_field",
                          "Le champ status vaut present, absent ou "
                          "absent_justifie.");
    }

    if (gcho_begin(rq) != 0) {
        return 0;
    }

    p[0] = bid;
    rc = gcho_sql_row(rq, &res, "Cette réservation n'existe pas.",
                      "select b.status, b.family_id, t.status"
                      " from booking b"
                      " left join attendance t on t.booking_id = b.id"
                      " where b.id = $1 for update of b", 1, p);
    if (rc != GCHO_GO) {
        return rc;
    }

    if (strcmp(PQgetvalue(res, 0, 0), "confirmed") != 0) {
        PQclear(res);
        gcho_rollback();
        return gcho_error(rq, 409, "booking_cancelled",
                          "Cette réservation a été annulée : pas de "
                          "présence à noter.");
    }

    snprintf(before, sizeof(before), "%s", PQgetvalue(res, 0, 2));
    snprintf(rq->family_id, sizeof(rq->family_id), "%s",
             PQgetvalue(res, 0, 1));
    PQclear(res);

    p[1] = status;
    p[2] = note;
    p[3] = rq->staff;
    if (gcho_sql_do(rq, "insert into attendance (booking_id, status, note,"
                        "   recorded_by) values ($1, $2, $3, $4)"
                        " on conflict (booking_id) do update"
                        "   set status = excluded.status,"
                        "   note = excluded.note, recorded_at = now(),"
                        "   recorded_by = excluded.recorded_by", 4, p) != 0)
    {
        return 0;
    }

    kv[0] = "status";
    kv[1] = status;
    kv[2] = "previous";
    kv[3] = before[0] ? before : NULL;
    kv[4] = "note";
    kv[5] = note;
    kv[6] = "family_id";        /* the journal's family filter */
    kv[7] = rq->family_id;
    snprintf(target, sizeof(target), "booking:%s", bid);
    rc = gcho_audit_kv(rq, "attendance.record", target, kv, 4);

    if (rc != 0 || gcho_commit(rq) != 0) {
        return 0;
    }

    return gcho_reply_row(rq, 200,
        "select json_build_object('booking_id', booking_id,"
        " 'status', status, 'note', note, 'recorded_at', recorded_at,"
        " 'recorded_by', recorded_by) from attendance"
        " where booking_id = $1", 1, p, "Cette réservation n'existe pas.");
}


/* ------------------------------------------------------------------ */
/* audit log                                                            */

/* GET /api/staff/audit?from=YYYY-MM-DD&to=YYYY-MM-DD&actor=&target=
 * &family= (admin): newest first, at most 500.  family=F keeps what the
 * family did (actor family:F), what was done to its account (target
 * family:F) and the staff's decisions about it (detail family_id F). */
static int
gcho_staff_audit(gcho_req_t *rq)
{
    size_t       i;
    gch_day_t    d;
    const char  *p[5];

    p[0] = gcho_query(rq, "from");
    p[1] = gcho_query(rq, "to");
    p[2] = gcho_query(rq, "actor");
    p[3] = gcho_query(rq, "target");
    p[4] = gcho_query(rq, "family");

    for (i = 0; i < 2; i++) {
        if (p[i] != NULL
            && (strlen(p[i]) != 10 || gch_day_parse(&d, p[i], 10) != GCH_OK))
        {
            return gcho_error(rq, 400, "invalid_field",
                              "Les paramètres from et to sont des dates "
                              "AAAA-MM-JJ.");
        }
    }

    return gcho_reply_row(rq, 200,
        "select json_build_object('entries', coalesce(json_agg("
        "   json_build_object('id', x.id, 'at', x.at, 'actor', x.actor,"
        "   'action', x.action, 'target', x.target, 'detail', x.detail,"
        "   'ip', x.ip) order by x.id desc), '[]'))"
        " from (select * from audit_log a"
        "   where ($1::date is null or a.at >= ($1::date::timestamp"
        "            at time zone 'Europe/Paris'))"
        "   and ($2::date is null or a.at < (($2::date + 1)::timestamp"
        "            at time zone 'Europe/Paris'))"
        "   and ($3::text is null or a.actor = $3)"
        "   and ($4::text is null or a.target = $4)"
        "   and ($5::text is null or a.actor = 'family:' || $5"
        "        or a.target = 'family:' || $5"
        "        or a.detail->>'family_id' = $5)"
        "   order by a.id desc limit 500) x", 5, p, "");
}


/* ------------------------------------------------------------------ */
/* staff accounts                                                       */

/*
 * POST /api/staff/accounts/{login}/deactivate (admin): the account can no
 * longer log in, its tokens end at once ({T}:revoked) and the counter
 * refuses it ({T}:staff).  staff-add makes it active again.
 */
static int
gcho_staff_deactivate(gcho_req_t *rq)
{
    int            go;
    char           target[GCHO_ID_MAX + 8];
    PGresult      *res;
    const char    *p[1];
    redisContext  *rc;

    p[0] = rq->param[0];

    if (strcmp(rq->param[0], rq->staff) == 0) {
        return gcho_error(rq, 403, "forbidden",
                          "Un administrateur ne peut pas désactiver son "
                          "propre compte.");
    }

    rc = gcho_redis(rq);
    if (rc == NULL || gcho_begin(rq) != 0) {
        return 0;
    }

    go = gcho_sql_row(rq, &res, "Ce compte d'agent n'existe pas.",
                      "update staff_account set active = false"
                      " where login = $1 returning login", 1, p);
    if (go != GCHO_GO) {
        return go;
    }
    PQclear(res);

    snprintf(target, sizeof(target), "staff:%s", rq->param[0]);

    if (gcho_audit(rq, "staff.deactivate", target, NULL) != 0) {
        return 0;
    }

    /* Redis first: if it fails, nothing is committed and 503 says so */
    if (gchb_staff_changed(rc, rq->param[0], NULL) != 0) {
        gcho_rollback();
        gcho_redis_drop_broken();
        return gcho_error(rq, 503, "unavailable",
                          "Le service est momentanément indisponible : "
                          "le compte n'a pas été désactivé.");
    }

    if (gcho_commit(rq) != 0) {
        return 0;
    }

    return gcho_reply_row(rq, 200,
        "select json_build_object('login', login, 'name', name,"
        "   'role', role, 'active', active) from staff_account"
        " where login = $1", 1, p, "Ce compte d'agent n'existe pas.");
}


const gcho_route_t  gcho_staff_routes[] = {
    { "POST", "/api/staff/session", GCHO_PUBLIC, 0, GCHO_BODY_JSON,
      gcho_staff_login },
    { "GET", "/api/staff/me", GCHO_STAFF, GCHO_AGENT, 0, gcho_staff_me },
    { "GET", "/api/staff/families", GCHO_STAFF, GCHO_AGENT, 0,
      gcho_staff_families },
    { "GET", "/api/staff/families/*", GCHO_STAFF, GCHO_AGENT, 0,
      gcho_staff_family },
    { "POST", "/api/staff/attendance", GCHO_STAFF, GCHO_AGENT,
      GCHO_BODY_JSON, gcho_staff_attendance },
    { "GET", "/api/staff/audit", GCHO_STAFF, GCHO_ADMIN, 0,
      gcho_staff_audit },
    { "POST", "/api/staff/accounts/*/deactivate", GCHO_STAFF, GCHO_ADMIN, 0,
      gcho_staff_deactivate },
    { NULL, NULL, 0, 0, 0, NULL }
};
