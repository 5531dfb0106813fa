/*
 * office.h -- guichet-office, the family space and the town's back office.
 *
 * Outside the rush, families and town staff do everything else the towns'
 * manuals describe: enrolment requests, documents, messages, history,
 * password reset, online payments, direct debit, and the staff's
 * validations, attendance, invoicing and audit log.  This traffic is
 * light, so guichet-office is a small HTTP service (GNU libmicrohttpd, one
 * polling thread, one PostgreSQL and one Redis connection; password
 * hashing on threads of its own, hash.c) that nginx
 * reaches by proxy_pass on a unix socket (lua-free-config/).  Every
 * write is one PostgreSQL transaction; what the booking path must know
 * (enrolments, documents, unpaid invoices, logins) reaches Redis through
 * the catalogue publication of guichet-worker (publish_interval_ms) or a
 * direct write right after the commit.
 *
 * Layers: http.c owns the server and routing, auth.c authentication,
 * body.c request data and bodies, store.c PostgreSQL and Redis, reply.c
 * answers; each feature file (enrolment.c, document.c, message.c,
 * account.c, payment.c, invoicing.c, debit.c, staff.c, activity.c,
 * family.c, archive.c, merge.c, counter.c, credit.c, daily.c, notice.c,
 * town.c) owns a table of routes and its handlers.
 * Settings are guichet-worker's file (backend/conf.c, docs/worker.md).
 */

#ifndef GCHO_H
#define GCHO_H

#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>
#include <hiredis/hiredis.h>
#include <hpdf.h>

#include "gchb.h"
#include <gch_json.h>             /* the engine's strict JSON reader */


/* Who may call a route. */
#define GCHO_PUBLIC   0           /* anyone (login, password reset, notify) */
#define GCHO_FAMILY   1           /* a family's token or cookie */
#define GCHO_STAFF    2           /* a staff token of an active account */

/* Staff roles, by rank: a route asks for a minimum. */
#define GCHO_AGENT    1           /* counter agent: families, enrolments,
                                     documents, on-site bookings,
                                     attendance */
#define GCHO_REGIE    2           /* + invoicing, payments, SEPA export */
#define GCHO_ADMIN    3           /* + staff accounts, audit log */

/* Bodies: JSON routes take at most 64 KiB; upload routes take
 * office_upload_max bytes (settings). */
#define GCHO_BODY_JSON    65536
#define GCHO_BODY_UPLOAD  ((size_t) -1)

#define GCHO_HEADERS_MAX  4


typedef struct gcho_req_s  gcho_req_t;

#define GCHO_PARAMS_MAX  3
#define GCHO_ID_MAX      128


/* Passwords: at most this many bytes (family: 128, staff: 255). */
#define GCHO_PW_BYTES  256

/*
 * A password hashing job (hash.c): the handler fills the inputs in its
 * first half; a hashing thread fills the results; the handler's second
 * half reads them.  Owned by the request (freed, zeroed, with it).
 */
typedef struct gcho_hash_s  gcho_hash_t;

struct gcho_hash_s {
    /* in */
    char                  verify_hash[128];   /* "": nothing to verify */
    char                  verify_pw[GCHO_PW_BYTES];
    char                  make_pw[GCHO_PW_BYTES];   /* "": nothing to make
                                                     (made only when the
                                                     verification, if any,
                                                     passed) */
    char                  keep[2][GCHO_ID_MAX];     /* the handler's own */
    /* out */
    int                   verified;
    int                   failed;             /* could not hash or check
                                                 (no memory); stopping */
    char                  made[128];
    int                   done;
    /* hash.c's */
    void                 *conn;
    gcho_hash_t          *next;
};

/* A handler fills the answer of rq (gcho_reply*, gcho_error) and returns
 * 0; it returns -1 only when it could not even do that (the server then
 * answers 500). */
typedef int (*gcho_handler_pt)(gcho_req_t *rq);

/* A long handler's steps return GCHO_GO to go on, or, when they answered
 * (and rolled back a transaction they were in), what the handler
 * returns: rc = step(rq, ...); if (rc != GCHO_GO) { return rc; } */
#define GCHO_GO  1

typedef struct {
    const char       *method;     /* "GET", "POST", "PUT", "DELETE" */
    const char       *pattern;    /* "/api/documents/ *" without the space:
                                     '*' matches one non-empty segment,
                                     captured in rq->param[] */
    int               auth;       /* GCHO_PUBLIC / _FAMILY / _STAFF */
    int               role;       /* GCHO_STAFF: minimum role */
    size_t            max_body;   /* 0: no body; GCHO_BODY_* */
    gcho_handler_pt   handler;
} gcho_route_t;

/* The route tables, each ended by a { NULL } row; http.c walks them in
 * this order. */
extern const gcho_route_t  gcho_enrolment_routes[];
extern const gcho_route_t  gcho_required_routes[];
extern const gcho_route_t  gcho_document_routes[];
extern const gcho_route_t  gcho_message_routes[];
extern const gcho_route_t  gcho_account_routes[];
extern const gcho_route_t  gcho_payment_routes[];
extern const gcho_route_t  gcho_invoicing_routes[];
extern const gcho_route_t  gcho_debit_routes[];
extern const gcho_route_t  gcho_contact_routes[];
extern const gcho_route_t  gcho_activation_routes[];
extern const gcho_route_t  gcho_entourage_routes[];
extern const gcho_route_t  gcho_qf_routes[];
extern const gcho_route_t  gcho_staff_routes[];
extern const gcho_route_t  gcho_calendar_routes[];
extern const gcho_route_t  gcho_activity_routes[];
extern const gcho_route_t  gcho_family_routes[];
extern const gcho_route_t  gcho_archive_routes[];
extern const gcho_route_t  gcho_merge_routes[];
extern const gcho_route_t  gcho_counter_routes[];
extern const gcho_route_t  gcho_credit_routes[];
extern const gcho_route_t  gcho_daily_routes[];
extern const gcho_route_t  gcho_notice_routes[];
extern const gcho_route_t  gcho_mydata_routes[];
extern const gcho_route_t  gcho_publication_routes[];
extern const gcho_route_t  gcho_coresp_routes[];
extern const gcho_route_t  gcho_town_routes[];
extern const gcho_route_t  gcho_waitlist_routes[];
extern const gcho_route_t  gcho_request_routes[];
extern const gcho_route_t  gcho_attachment_routes[];
extern const gcho_route_t  gcho_absence_routes[];



struct gcho_req_s {
    void                 *conn;           /* struct MHD_Connection */
    const gcho_route_t   *route;
    const char           *method;
    const char           *path;           /* without the query string */
    char                  param[GCHO_PARAMS_MAX][GCHO_ID_MAX];
    size_t                nparam;

    char                 *body;           /* NUL-terminated; NULL: none */
    size_t                body_len;
    size_t                body_max;
    int                   body_too_large;

    /* authentication */
    int                   cookie;         /* the token came in the cookie */
    char                  token_hash[2 * GCH_TOKEN_HASH_LEN + 1]; /* hex */
    int64_t               token_expires;
    char                  family_id[GCHO_ID_MAX];  /* GCHO_FAMILY */
    char                  staff[GCHO_ID_MAX];      /* GCHO_STAFF: login */
    int                   staff_role;
    char                  ip[64];         /* X-Real-IP from nginx */
    char                  town[GCH_TOWN_ID_MAX + 1];  /* X-Guichet-Town
                                             from nginx, else the setting
                                             town (gcho_town_use) */

    /* a password hashing job (hash.c): set by a handler's first half */
    gcho_hash_t          *hash;

    /* the answer */
    int                   status;
    char                 *out;            /* malloc'ed, owned by rq */
    size_t                out_len;
    const char           *out_type;
    char                 *hdr_name[GCHO_HEADERS_MAX];
    char                 *hdr_value[GCHO_HEADERS_MAX];
    size_t                nhdr;
};


/* The process: settings, secret, connections.  The server's thread alone
 * uses them (never the hashing threads of hash.c). */
typedef struct {
    gchb_conf_t    conf;
    const char    *conf_file;
    uint8_t        secret[GCH_SECRET_LEN];
    PGconn        *pg;
    char           pg_town[GCH_TOWN_ID_MAX + 1];  /* pg's search_path's
                                                     town, "" after a new
                                                     connection */
    redisContext  *redis;
} gcho_ctx_t;

extern gcho_ctx_t  gcho_ctx;


/* ------------------------------------------------------------------ */
/* http.c: server                                                       */

/* Starts listening on conf.office_listen ("unix:/path" or
 * "host:port").  0 or -1 after logging. */
int gcho_http_start(void);
void gcho_http_stop(void);

/* auth.c: the route's authentication (rq->route known), before its
 * handler.  0: go on; -1: the answer (401/403/503) is set. */
int gcho_authorize(gcho_req_t *rq);
/* Again before a handler's second half (after its hash, hash.c): the
 * session may have ended, the family been archived meanwhile.  0 or -1
 * as above. */
int gcho_authorize_resumed(gcho_req_t *rq);

/* store.c: the site's address of the request's town (no final '/'):
 * site_url for the configured town, or when town_site_url is empty;
 * else town_site_url with each "{town}" replaced by the town's id. */
const char *gcho_site_url(gcho_req_t *rq);

/* store.c: the request's town made the process's (gchb_town: its Redis
 * keys and tokens); gcho_pg() then gives a connection whose search_path
 * names the town's schema, or answers 404 unknown_town. */
void gcho_town_use(gcho_req_t *rq);


/* ------------------------------------------------------------------ */
/* hash.c: password hashing off the server's thread                     */

/* Makes the dummy hash and starts the threads.  0, or -1 after logging. */
int gcho_hash_start(int threads);
/* Ends the threads; jobs not begun are failed and resumed. */
void gcho_hash_stop(void);
/* A job for rq (rq->hash, zeroed) that the handler fills before it
 * returns: http.c then suspends the connection and queues the job, and
 * calls the handler again once it is done (gcho_hash_done).  NULL after
 * answering 503 (too many waiting) or 500. */
gcho_hash_t *gcho_hash_prepare(gcho_req_t *rq);
/* http.c: queues rq->hash once the connection is suspended. */
void gcho_hash_queue(gcho_req_t *rq);
/* 1 when rq->hash is done (the handler's second half). */
int gcho_hash_done(gcho_req_t *rq);
void gcho_hash_free(gcho_hash_t *h);
/* A valid argon2id hash of a password nobody knows. */
const char *gcho_hash_dummy(void);
/* Logs the counters of hashes made and verified (SIGUSR1). */
void gcho_hash_log_counters(void);


/* ------------------------------------------------------------------ */
/* what handlers use: body.c (request data, bodies), store.c (PostgreSQL,  */
/* Redis, audit, outbox), reply.c (answers)                             */

/* The value of a request header or query argument, or NULL. */
const char *gcho_header(gcho_req_t *rq, const char *name);
const char *gcho_query(gcho_req_t *rq, const char *name);

/* The connection to PostgreSQL (reconnected when it broke), or NULL after
 * answering 503 `unavailable`. */
PGconn *gcho_pg(gcho_req_t *rq);
/* The same for Redis. */
redisContext *gcho_redis(gcho_req_t *rq);
/* After an error: frees the connection if it is broken, so that the next
 * gcho_redis() makes a new one. */
void gcho_redis_drop_broken(void);

/* Runs sql with text parameters.  The result (caller PQclear()s it) when
 * its status is expected (PGRES_COMMAND_OK or PGRES_TUPLES_OK), else NULL
 * after logging and answering 503 `unavailable` (rq may be NULL: no
 * answer).  A connection left in a failed transaction is rolled back. */
PGresult *gcho_sql(gcho_req_t *rq, const char *sql, int n,
    const char *const *params);
/*
 * The shapes statements come in (store.c), each over gcho_sql(): a
 * database error is answered 503 `unavailable` there and is never read
 * as "no row".
 *
 * gcho_sql_do: sql for its effect alone (insert, update, lock...): 0, or
 * -1 after answering 503.
 *
 * gcho_sql_exists: sql (a "select 1 from ... where ...") finds a row: 1,
 * 0 when it finds none, -1 after answering 503.
 *
 * gcho_sql_changed: the number of rows sql (an update, a delete...)
 * changed, or -1 after answering 503.
 *
 * gcho_sql_value: the first column of sql's first row copied into out
 * (size bytes with the NUL; a NULL value is ""; out may be one of
 * params): 1, 0 when there is no row (out ""), -1 after answering 503.
 *
 * gcho_sql_row: sql's one row, for a handler's step: GCHO_GO and *res
 * (the caller PQclear()s it); or, *res NULL, what the handler returns
 * after answering 503, or, when sql finds no row (or more than one),
 * after rolling back the transaction the caller was in and answering
 * 404 `not_found` with the message missing.
 */
int gcho_sql_do(gcho_req_t *rq, const char *sql, int n,
    const char *const *params);
int gcho_sql_exists(gcho_req_t *rq, const char *sql, int n,
    const char *const *params);
int gcho_sql_changed(gcho_req_t *rq, const char *sql, int n,
    const char *const *params);
int gcho_sql_value(gcho_req_t *rq, char *out, size_t size, const char *sql,
    int n, const char *const *params);
int gcho_sql_row(gcho_req_t *rq, PGresult **res, const char *missing,
    const char *sql, int n, const char *const *params);

/* begin / commit / rollback: 0, or -1 after answering 503. */
int gcho_begin(gcho_req_t *rq);
int gcho_commit(gcho_req_t *rq);
void gcho_rollback(void);

/*
 * Parses the body as JSON against the field table (the engine's strict
 * reader: unknown or duplicate fields, wrong types refused).  0 and
 * vals[] (pointing into *doc; gch_json_free(doc) after use), or -1 after
 * answering 415 `unsupported_media_type`, 400 `bad_json` or 400
 * `invalid_field` naming the field.
 */
int gcho_body_json(gcho_req_t *rq, gch_json_t *doc, const gch_jfield_t *f,
    size_t nf, const gch_jnode_t **vals);
/* The same for obj, an object inside the body at path at
 * ("$.entourage[2]"): 0 and vals[], or -1 after answering 400
 * `invalid_field` naming the field under at, or saying an object was
 * expected there. */
int gcho_json_object(gcho_req_t *rq, const gch_jnode_t *obj, const char *at,
    const gch_jfield_t *f, size_t nf, const gch_jnode_t **vals);
/* Copies a string member (NULL v: "") into out (size bytes with the NUL);
 * -1 after answering 400 `invalid_field` when it is longer, or shorter
 * than min. */
int gcho_str(gcho_req_t *rq, const char *field, const gch_jnode_t *v,
    char *out, size_t size, size_t min);

/* Answers: rq takes a copy of json (or of the bytes of type). */
int gcho_reply(gcho_req_t *rq, int status, const char *json, size_t len);
int gcho_reply_bytes(gcho_req_t *rq, int status, const char *type,
    const char *bytes, size_t len);
/* Detaches o's text into the answer (gch_jout_detach), or answers 500. */
int gcho_reply_jout(gcho_req_t *rq, int status, gch_jout_t *o);
/* {"error":{"code","message"}} with status; 429/503 add Retry-After. */
int gcho_error(gcho_req_t *rq, int status, const char *code,
    const char *message);
/* Adds an answer header (copied). */
void gcho_add_header(gcho_req_t *rq, const char *name, const char *value);
/* 503 `unavailable` (rq NULL: no answer); -1. */
int gcho_unavailable(gcho_req_t *rq);

/*
 * Appends a row to the append-only audit log (audit_log): who (the staff
 * login of rq, or "family:<id>", or "system"), the action, its target and
 * a JSON detail (NULL: {}).  Call it inside the transaction of the action.
 * 0, or -1 after answering 503.
 */
int gcho_audit(gcho_req_t *rq, const char *action, const char *target,
    const char *detail_json);

/* gcho_audit() with the detail {"k": "v", ...} of the n pairs of kv
 * (name, value; a NULL value is null), escaped by the engine's writer.
 * 0, or -1 after answering (500 or 503). */
int gcho_audit_kv(gcho_req_t *rq, const char *action, const char *target,
    const char *const *kv, size_t n);

/* Runs sql (at most one row of one JSON text column, e.g. built by
 * json_build_object) and answers that text with status; no row or NULL:
 * 404 `not_found` with the message missing.  0, or -1 (see handlers). */
int gcho_reply_row(gcho_req_t *rq, int status, const char *sql, int n,
    const char *const *params, const char *missing);

/* Queues an e-mail in the outbox (worker/mail.c sends it) for the family,
 * inside the caller's transaction; (kind, ref) is unique: a second call
 * with the same pair queues nothing.  0, or -1 after answering 503. */
int gcho_mail(gcho_req_t *rq, const char *family_id, const char *kind,
    const char *ref, const char *subject, const char *body);

/*
 * Marks the catalogue changed (catalogue.version + 1), inside the caller's
 * transaction: guichet-worker republishes it (publish_interval_ms) with
 * the facts of PostgreSQL laid over the town file (worker/overlay.c:
 * enrolments, accepted documents, unpaid invoices, direct debit).  Call it
 * in every transaction that changes one of those facts.  0, or -1 after
 * answering 503.
 */
int gcho_catalogue_changed(gcho_req_t *rq);

/* In a transaction: child is a child of rq's family.  GCHO_GO, or 403
 * `forbidden` (rolled back), 0 after answering 503. */
int gcho_family_child(gcho_req_t *rq, const char *child);

/*
 * The login, password and CGU version a family member chooses, the
 * family's own account (activation.c) or a co-responsable's (coresp.c):
 * 3 to 64 of A-Z a-z 0-9 . _ - @, 10 characters at least, the version of
 * the terms in force.  0, or -1 after answering 400 `invalid_field` or
 * 503.  gcho_login_taken answers 409 `login_taken`.
 */
int gcho_account_choice_check(gcho_req_t *rq, const char *login,
    const char *pw, const char *ver);
int gcho_login_taken(gcho_req_t *rq);
/* No family and no co-responsable has login, and no family's request
 * not yet confirmed was promised it (request.c): 1, 0 when one has, -1
 * after answering 503 (activation.c). */
int gcho_login_free(gcho_req_t *rq, const char *login);

/* document.c: answers 200 with the stored file of res's one row
 * (stored_name, content_type, filename: a document or a message
 * attachment, `what` in the log), downloaded under its name; 503 when the
 * file cannot be read.  Clears res. */
int gcho_stored_file_reply(gcho_req_t *rq, PGresult *res,
    const char *what);

/*
 * A link e-mailed to a family that gives it its login (activation.c's
 * account activation, request.c's confirmation of a file asked online).
 * gcho_link_claim reads {"token"} from the body, opens a transaction,
 * runs claim ($1 the token's SHA-256 in hex; it marks the link used and
 * returns the family's id, the login, the password hash and the CGU
 * version, or no row: 400 `activation_token_invalid` with the message
 * invalid), checks the login is still free (409 `login_taken`) and sets
 * it on the family.  1 with the transaction open and k filled, 0 after
 * answering.  gcho_link_finish then marks the catalogue changed, audits
 * action, commits, publishes the login and answers 200 {"login"}.
 */
typedef struct {
    char    fid[GCHO_ID_MAX];
    char    login[65];
    char    hash[160];
    char    ver[24];
} gcho_link_t;

int gcho_link_claim(gcho_req_t *rq, const char *claim, const char *invalid,
    gcho_link_t *k);
int gcho_link_finish(gcho_req_t *rq, const char *action, gcho_link_t *k);

/* contact.c: "" or an e-mail address (one '@', something on both sides,
 * no space, no '<' '>', at most 254 bytes: migration 0005's check); ""
 * or a phone number (6 to 25 of "+0-9 .()-", '+' first only, 6 digits at
 * least: migration 0022's check).  1 when s is one. */
int gcho_email_ok(const char *s);
int gcho_phone_ok(const char *s);

/* request.c: in a transaction, rq's family (fid) is not one whose file
 * asked online is still waiting for the town (or was refused).  GCHO_GO,
 * or 409 `family_pending` (rolled back), 0 after answering 503. */
int gcho_family_pending(gcho_req_t *rq, const char *fid);

/* Sets {T}:logins[login] to "<fid> <hash>" at once, best effort: the
 * worker republishes it from PostgreSQL anyway (account.c). */
void gcho_login_publish(const char *login, const char *fid,
    const char *hash);

/*
 * Login throttling (staff.c): the module's policy (gch_login_throttle())
 * and its Redis counters, keyed "<address>/<kind>:<login>" (kind "staff"
 * for staff logins, "dossier" for account creation with a dossier number
 * and code, "invite" for a co-responsable's link, "request" for a file
 * asked online, keyed by its e-mail).  gcho_login_throttle counts this
 * attempt: 0 to go on, 1 after answering 429 `rate_limited` or 503.
 * gcho_login_throttle_clear after a success.
 */
int gcho_login_throttle(gcho_req_t *rq, const char *kind,
    const char *login);
void gcho_login_throttle_clear(gcho_req_t *rq, const char *kind,
    const char *login);

/* In a transaction: every document activity act requires is on file for
 * child (or the whole family), accepted or waiting, valid on from (or
 * today, if later) (required.c).  GCHO_GO, or 409 `documents_missing`
 * naming them (rolled back), 0 after answering 503. */
int gcho_required_missing(gcho_req_t *rq, const char *child,
    const char *act, const char *from);

/*
 * A staff decision on a pending item (decision.c).  gcho_decision_open:
 * BEGIN, then sql ($1 = rq->param[0], the item's id; columns status,
 * family_id, then the caller's; FOR UPDATE).  The row (the caller clears
 * it) with rq->family_id set, or NULL after answering: 404 `not_found`
 * with not_found when there is no row, 409 `already_decided` with
 * decided when its status is not pending, 503 (rolled back).
 */
PGresult *gcho_decision_open(gcho_req_t *rq, const char *sql,
    const char *pending, const char *not_found, const char *decided);

/* The decision field of a staff decision: accepted (this flow's word,
 * "validee" or "acceptee") or "refusee", with a reason other than blanks
 * when refused (decision.c).  0 accepted, 1 refused, -1 after answering
 * 400 `invalid_field`. */
int gcho_decision_word(gcho_req_t *rq, const char *decision,
    const char *accepted, const char *reason);

/* What a kind of decision does; [0] when accepted, [1] when refused. */
typedef struct {
    const char  *kind;           /* "enrolment": the audit action
                                    "enrolment.decision" on
                                    "enrolment:<id>" */
    const char  *update;         /* $1 the id ...; returns one row, the
                                    decision's time in microseconds */
    int          nparams;
    size_t       nkv;            /* pairs of the audit detail */
    const char  *mail_kind[2];   /* the e-mail to the family */
    const char  *subject[2];
    int          catalogue[2];   /* gcho_catalogue_changed() too */
} gcho_decision_t;

/* Then: d's update with params, the audit row (detail kv), the e-mail
 * (body; ref "<id>:<time>"), the catalogue version, COMMIT.  0 (the
 * caller answers), or -1 after answering. */
int gcho_decision_close(gcho_req_t *rq, const gcho_decision_t *d,
    int refused, const char *const *params, const char *const *kv,
    const char *body);

/*
 * catalogue.c: the catalogue's text changed by the back office
 * (activity.c, family.c, ...).  gcho_catalogue_lock: BEGIN, the locks of
 * town loading and publication, the catalogue's row FOR UPDATE: GCHO_GO
 * and *cat (columns json, units as JSON text; the caller clears it), or
 * the answer (409 `no_town`, 503; rolled back).  gcho_catalogue_put: the
 * new text parsed by the engine (400 `invalid_field` with the path from
 * "$.member[index]" made "$"), written again and stored with
 * catalogue.version + 1: GCHO_GO and *t (the parsed town;
 * gch_town_free), or the answer (rolled back).
 */
int gcho_catalogue_lock(gcho_req_t *rq, PGresult **cat);
int gcho_catalogue_put(gcho_req_t *rq, const char *text, const char *member,
    long index, gch_town_t **t);

/*
 * catalogue.c, for the changes that parse and write the text themselves
 * (activity.c).  gcho_cat_path: "$.<member>[<index>]..." of an engine
 * message becomes "$..." (the path from the staff's activity or family);
 * with calendar, a "$.calendar[k]" after it becomes "$" too (the staff's
 * calendar is one object).  gcho_cat_write: gch_town_write() of t, each
 * activity opening by draw with the seed it was first given
 * (docs/rules.md, "Opening by draw"; gchb_draw_seeds): the staff's text
 * may lack it or name another; GCH_OK, or an error (the caller answers
 * 500).
 */
void gcho_cat_path(char *msg, const char *member, long index, int calendar);
int gcho_cat_write(gch_town_t *t, char **cat, size_t *len);

/*
 * places.c: the live counters of published sessions whose places a
 * change of activity.c moves.  gcho_act_shift moves one session's
 * counters by sh->d_online and sh->d_onsite (pub_*: the published
 * quotas): 1 moved or nothing to move, 0 refused (sh->booked_* filled),
 * -1 Redis failed.  gcho_act_unshift moves back what the n shifts moved.
 * gcho_act_refuse answers the refusal (409 places_below_booked) with the
 * refused sessions: 0, or -1.  gcho_act_u32: the integer of a reply to
 * BITFIELD GET u32 0, or -1.  One session's counters to move, and what
 * moved:
 */
typedef struct {
    const char  *id;
    long         d_online;               /* new places_online - published */
    long         d_onsite;               /* new on-site quota - published */
    long         moved_left;             /* what was added to {s}:left */
    long         moved_onsite;
    long         moved_released;         /* to {s}:released */
    int          done;
    /* a refusal: what is booked */
    long         booked_online;
    long         booked_onsite;
    int          share;
    int          date;                   /* gch_day_t */
    const char  *unit;
} gcho_act_shift_t;

int gcho_act_shift(redisContext *rc, gcho_act_shift_t *sh, long pub_online,
    long pub_onsite);
void gcho_act_unshift(gcho_act_shift_t *sh, size_t n);
int gcho_act_refuse(gcho_req_t *rq, int status, const char *code,
    gcho_act_shift_t *sh, size_t n);
long long gcho_act_u32(redisReply *r);

/* family.c: answers the family fid's record (GET
 * /api/staff/families/{id}/record) with status (archive.c's answer too).
 * 0, or -1 (see handlers). */
int gcho_fam_answer(gcho_req_t *rq, int status, const char *fid);

/* entourage.c: the people of a family the office creates (family.c), in
 * its transaction: arr the body's "entourage" array (NULL: none), each as
 * POST /api/entourage's body.  0, or -1 after answering 400 or 503. */
int gcho_entourage_create(gcho_req_t *rq, const char *fid,
    const gch_jnode_t *arr);

/* account.c: ends the family's sessions recorded in Redis except the one
 * whose hash is keep (NULL: all).  0, or -1 after answering 503 with
 * failed_msg. */
int gcho_sessions_end(gcho_req_t *rq, const char *fid, const char *keep,
    const char *failed_msg);

/* account.c: the family's connections between the days from and to
 * ("YYYY-MM-DD", Europe/Paris), newest first, from the module's list in
 * Redis: GCHO_GO and *conns a JSON array of {at, ip} (malloc'ed, the
 * caller frees it), or the answer (503; -1). */
int gcho_history_connections(gcho_req_t *rq, const char *from,
    const char *to, char **conns);

/* document.c: writes len bytes to path (created, 0600) and fsyncs it; 0,
 * or -1 after logging (nothing left).  gcho_doc_sync_dir fsyncs a
 * directory after a rename into it. */
int gcho_doc_write(const char *path, const char *bytes, size_t len);
void gcho_doc_sync_dir(const char *dir);
/*
 * The messagerie's attachments (attachment.c).  gcho_attach_parse: the
 * "attachments" member v (NULL: none) of a message, an array of at most
 * GCHO_ATTACH_PER_MESSAGE distinct ids, as a PostgreSQL array text in
 * out ("{}" for none) and their number in *n; -1 after answering 400.
 * gcho_attach_bind: inside the message's transaction, binds them to
 * message mid; each must be the requester's upload not yet sent (the
 * route's family, or staff member); 0, or -1 after answering (the caller
 * rolls back).
 */
#define GCHO_ATTACH_PER_MESSAGE  5
#define GCHO_ATTACH_IDS_MAX      (GCHO_ATTACH_PER_MESSAGE * 20 + 3)

int gcho_attach_parse(gcho_req_t *rq, const gch_jnode_t *v, char *out,
    size_t size, int *n);
int gcho_attach_bind(gcho_req_t *rq, const char *mid, const char *ids,
    int n);

/* The messagerie (message.c): service and theme ("": none) must be on
 * the town's list (migration 0100): active ones for a new thread, any
 * (active 0) for the staff's filter.  0, or -1 after answering 400 (or
 * 503). */
int gcho_msg_topic(gcho_req_t *rq, const char *service, const char *theme,
    int active);

/* An upload's bytes (document.c): the Content-Type is PDF, JPEG or PNG,
 * the body not empty, and the bytes are what that type says (the
 * engine's gch_sniff_document): GCHO_GO and *sniffed, or the answer (415
 * `unsupported_media_type`, 400 `empty_file`). */
int gcho_doc_bytes_check(gcho_req_t *rq, const char **sniffed);
/* The name a file is served under: X-Filename (or ?name=) cleaned, with
 * the extension of what it is (sniffed); else "<type>.<ext>". */
void gcho_doc_upload_name(gcho_req_t *rq, const char *type,
    const char *sniffed, char *name, size_t size);
/* ".pdf", ".jpg" or ".png" for a sniffed content type. */
const char *gcho_doc_ext(const char *type);

/* In the transaction: rq's body written to tmp, the row inserted (insert
 * with its np parameters p, "returning id": rq->param[0] the new id), the
 * file renamed to final in dir: GCHO_GO, or the answer (503, tmp gone). */
int gcho_doc_store(gcho_req_t *rq, const char *insert, const char *const *p,
    int np, const char *tmp, const char *final, const char *dir);

/* After a commit that queued files in upload_erasure (archive.c,
 * merge.c): the family fid's queued files are unlinked from
 * office_upload_dir and their rows deleted; a file that cannot be
 * unlinked stays queued.  Errors are logged ("office: <what> <fid>"). */
void gcho_upload_erase(const char *fid, const char *what);

/* pdf.c: a printed page (libharu, A4, Helvetica in WinAnsi). */
typedef struct {
    HPDF_Doc     pdf;
    HPDF_Page    page;
    HPDF_Font    font;
    HPDF_Font    bold;
    float        y;                  /* the current line, from the bottom */
    int          failed;
} gcho_pdf_t;

/* A new document: 0, or -1 (nothing to free). */
int gcho_pdf_open(gcho_pdf_t *d);
/* A new A4 page, d->y at its top margin. */
void gcho_pdf_page(gcho_pdf_t *d);
/* UTF-8 text at (x, d->y), cut with "..." to width points. */
void gcho_pdf_text(gcho_pdf_t *d, HPDF_Font font, float size, float x,
    float width, const char *utf8);
/* A thin rule under the current line. */
void gcho_pdf_rule(gcho_pdf_t *d);
/* Answers the document (200 application/pdf, inline filename) and frees
 * it; 500 when it could not be made.  0, or -1. */
int gcho_pdf_reply(gcho_req_t *rq, gcho_pdf_t *d, const char *filename);

/* unix seconds / "YYYY-MM-DDTHH:MM:SS+HH:MM" (Europe/Paris, the town's
 * time zone) of now. */
int64_t gcho_now(void);


#endif /* GCHO_H */
