/*
 * staff.c -- guichet-office: the back office: staff login, families,
 * attendance, audit.
 *
 * Staff log in with POST /api/staff/session (argon2id hashes of
 * staff_account, written by `guichetctl staff-add`) and get a bearer token
 * "staff:<login>" made with the module's secret (token_ttl_s).  Five
 * failed logins within 15 minutes lock the login for 15 minutes (429
 * rate_limited, table staff_login_failure; unknown logins are counted the
 * same way).  Logins, failures and every staff write are audit_log rows
 * written in the transaction of the action.
 *
 * The enrolment and document decisions are in enrolment.c and document.c;
 * the on-site bookings at the counter stay in the module
 * (POST /api/staff/bookings); invoicing and payments are in payment.c.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "office.h"


#define GCHO_LOCK_FAILURES  5


/* ------------------------------------------------------------------ */
/* POST /api/staff/session                                              */

static const gch_jfield_t  gcho_session_fields[] = {
    { "login", GCH_J_STRING, 1 },
    { "password", GCH_J_STRING, 1 }
};


/* Counts a failure of login in its own transaction; answers 401. */
static int
gcho_staff_failed(gcho_req_t *rq, const char *login)
{
    char         target[GCHO_ID_MAX + 8];
    PGresult    *res;
    const char  *p[1];

    /* counts of logins nobody tried for a day go (junk logins too) */
    res = gcho_sql(rq, "delete from staff_login_failure"
                       " where first_at < now() - interval '1 day'"
                       " and (locked_until is null or locked_until < now())",
                   0, NULL);
    if (res == NULL) {
        return 0;
    }
    PQclear(res);

    p[0] = login;
    res = gcho_sql(rq,
        "insert into staff_login_failure (login, failures, first_at)"
        " values ($1, 1, now())"
        " on conflict (login) do update set"
        "   failures = case when staff_login_failure.first_at"
        "       < now() - interval '15 minutes'"
        "     then 1 else staff_login_failure.failures + 1 end,"
        "   first_at = case when staff_login_failure.first_at"
        "       < now() - interval '15 minutes'"
        "     then now() else staff_login_failure.first_at end,"
        "   locked_until = case when staff_login_failure.first_at"
        "       >= now() - interval '15 minutes'"
        "     and staff_login_failure.failures + 1 >= 5"
        "     then now() + interval '15 minutes' else null end"
        " returning locked_until is not null", 1, p);
    if (res == NULL) {
        return 0;
    }
    PQclear(res);

    snprintf(target, sizeof(target), "staff:%s", login);

    if (gcho_audit(rq, "staff.login_failed", target, NULL) != 0
        || gcho_commit(rq) != 0)
    {
        return 0;
    }

    return gcho_error(rq, 401, "unauthenticated",
                      "Identifiant ou mot de passe incorrect.");
}


/* 1 when login is locked (429 answered, with the real wait), 0 when not,
 * -1 after answering 503.  for_update: inside the caller's transaction,
 * the row locked. */
static int
gcho_staff_locked(gcho_req_t *rq, const char *login, int for_update)
{
    char         secs[24];
    PGresult    *res;
    const char  *p[1];

    p[0] = login;
    res = gcho_sql(rq, for_update
                       ? "select ceil(extract(epoch from locked_until"
                         " - now())) from staff_login_failure"
                         " where login = $1 and locked_until > now()"
                         " for update"
                       : "select ceil(extract(epoch from locked_until"
                         " - now())) from staff_login_failure"
                         " where login = $1 and locked_until > now()",
                   1, p);
    if (res == NULL) {
        return -1;
    }

    if (PQntuples(res) != 1) {
        PQclear(res);
        return 0;
    }

    snprintf(secs, sizeof(secs), "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    gcho_rollback();

    /* 429 with the real wait (gcho_error's own Retry-After is 1 s) */
    gcho_error(rq, 400, "rate_limited",
               "Trop d'essais de connexion : ce compte est bloqué "
               "pendant 15 minutes.");
    rq->status = 429;
    gcho_add_header(rq, "Retry-After", secs);
    return 1;
}


/* The second half of gcho_staff_login, once the password is verified. */
static int
gcho_staff_login_end(gcho_req_t *rq)
{
    char          fid[GCHO_ID_MAX + 8];
    char          tok[GCH_TOKEN_MAX], exp[26];
    uint8_t       nonce[16];
    int64_t       expires;
    PGresult     *res, *del;
    gch_jout_t    o;
    const char   *p[1], *login;
    gcho_hash_t  *h;

    h = rq->hash;
    login = h->keep[0];

    if (h->failed) {
        return gcho_error(rq, 503, "unavailable",
                          "Le service est momentanément indisponible.");
    }

    if (gcho_begin(rq) != 0 || gcho_staff_locked(rq, login, 1) != 0) {
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

    del = gcho_sql(rq, "delete from staff_login_failure where login = $1",
                   1, p);
    if (del == NULL) {
        PQclear(res);
        return 0;
    }
    PQclear(del);

    if (gcho_audit(rq, "staff.login", fid, NULL) != 0
        || gcho_commit(rq) != 0)
    {
        PQclear(res);
        return 0;
    }

    randombytes_buf(nonce, sizeof(nonce));
    expires = gcho_now() + gcho_ctx.conf.token_ttl_s;

    if (gch_token_make(tok, gcho_ctx.secret, fid, expires, nonce) != GCH_OK
        || gch_jout_init(&o, &gch_alloc_std) != 0)
    {
        PQclear(res);
        return -1;
    }

    gch_instant_format(expires, exp);

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
 * First half: the body, the lock, the account's hash; the password is
 * verified on a hashing thread (hash.c) -- against a dummy hash when the
 * login is unknown or disabled, so that both cost the same argon2id and
 * cannot be told apart by timing.  Second half: the lock again (in the
 * transaction), then the failure counted or the token made.
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

    if (rc || gcho_staff_locked(rq, login, 0) != 0) {
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

/* GET /api/staff/families?q= : by family id, login, child first name or
 * e-mail address (case-insensitive substring), at most 50 */
static int
gcho_staff_families(gcho_req_t *rq)
{
    const char  *p[1], *q;

    q = gcho_query(rq, "q");
    if (q != NULL && strlen(q) > 100) {
        return gcho_error(rq, 400, "invalid_field",
                          "Le paramètre q est trop long.");
    }

    p[0] = q ? q : "";

    return gcho_reply_row(rq, 200,
        "with hit as ("
        "   select f.id from family f"
        "   left join family_email m on m.family_id = f.id"
        "   where $1 = ''"
        "      or strpos(lower(f.id), lower($1)) > 0"
        "      or strpos(lower(coalesce(f.login, '')), lower($1)) > 0"
        "      or strpos(lower(coalesce(m.address, '')), lower($1)) > 0"
        "      or exists (select 1 from child c where c.family_id = f.id"
        "         and strpos(lower(c.first_name), lower($1)) > 0)"
        "   order by f.id limit 50)"
        " select json_build_object('families', coalesce(json_agg("
        "   json_build_object('id', f.id, 'login', f.login,"
        "     'email', m.address, 'direct_debit', f.direct_debit,"
        "     'children', (select coalesce(json_agg(json_build_object("
        "        'id', c.id, 'first_name', c.first_name,"
        "        'birth_date', c.birth_date) order by c.id), '[]')"
        "        from child c where c.family_id = f.id))"
        "   order by f.id), '[]'))"
        " from hit join family f on f.id = hit.id"
        " left join family_email m on m.family_id = f.id", 1, p, "");
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
        "    'total_cents', i.total_cents, 'issued_at', i.issued_at,"
        "    'due_date', i.due_date, 'paid', i.paid)"
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
    res = gcho_sql(rq, "select b.status, b.family_id, t.status"
                       " from booking b"
                       " left join attendance t on t.booking_id = b.id"
                       " where b.id = $1 for update of b", 1, p);
    if (res == NULL) {
        return 0;
    }

    if (PQntuples(res) != 1) {
        PQclear(res);
        gcho_rollback();
        return gcho_error(rq, 404, "not_found",
                          "Cette réservation n'existe pas.");
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
    res = gcho_sql(rq, "insert into attendance (booking_id, status, note,"
                       "   recorded_by) values ($1, $2, $3, $4)"
                       " on conflict (booking_id) do update"
                       "   set status = excluded.status,"
                       "   note = excluded.note, recorded_at = now(),"
                       "   recorded_by = excluded.recorded_by", 4, p);
    if (res == NULL) {
        return 0;
    }
    PQclear(res);

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
    { NULL, NULL, 0, 0, 0, NULL }
};
