/*
 * gch.h -- public API of the Guichet engine.
 *
 * The engine is sans-I/O: it parses bytes (town files, published catalogues,
 * booking requests, tokens), applies the towns' booking rules with time as a
 * parameter, writes the Redis command plans of the booking saga as RESP bytes,
 * reads hiredis replies, and renders the HTTP answers as JSON bytes.  It never
 * opens a socket, reads a clock, logs, or uses a global.  Both the nginx
 * module (its adapter directory) and the worker (worker/) link it.
 *
 * Memory: every function that allocates takes a gch_alloc_t.  Objects are
 * arenas: one *_free() releases everything they own.  Strings handed out by
 * the engine are NUL-terminated and owned by the object they came from.
 *
 * Errors: 0 on success, a negative GCH_E* otherwise; when a gch_error_t is
 * given it receives a stable public code ("bad_json", "invalid_field", ...)
 * and a French message for people (see docs/errors.md).
 */

#ifndef GCH_H
#define GCH_H

#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>     /* redisReply: a plain struct, no I/O */

#include "gch_keys.h"


/* ------------------------------------------------------------------ */
/* errors and allocation                                               */

#define GCH_OK            0
#define GCH_ENOMEM       -1     /* allocator failed: "internal" 500     */
#define GCH_EBADJSON     -2     /* 400 bad_json                         */
#define GCH_EINVALID     -3     /* 400 invalid_field (message: field)    */
#define GCH_EFORBIDDEN   -4     /* 403 forbidden                        */
#define GCH_EUNAUTH      -5     /* 401 unauthenticated                  */
#define GCH_ENOTFOUND    -6     /* 404 not_found                        */
#define GCH_EREDIS       -7     /* 503 unavailable (bad/err reply)      */
#define GCH_EFENCED      -8     /* 503: attempt reaped before step two  */
#define GCH_ETOOLARGE    -9     /* 413 body_too_large                   */
/* the nginx module's own refusals (the engine only names them) */
#define GCH_EMETHOD     -10     /* 405 method_not_allowed               */
#define GCH_EMEDIA      -11     /* 415 unsupported_media_type           */
#define GCH_EIDEMKEY    -12     /* 400 idempotency_key_missing          */
#define GCH_EBEHIND     -13     /* 503 catalogue_behind                 */
#define GCH_EORIGIN     -14     /* 403 bad_origin                       */
#define GCH_ERATE       -15     /* 429 rate_limited                     */
#define GCH_EREPLICA    -16     /* 503 not_replicated (WAIT fell short) */

typedef struct {
    int          status;        /* HTTP status the error maps to        */
    const char  *code;          /* stable public code, static string    */
    char         message[256];  /* French, names the field or JSON path */
} gch_error_t;

/* Caller allocator.  alloc() returns NULL on failure; the engine then
 * releases what it made and returns GCH_ENOMEM.  free(ctx, NULL) is a no-op. */
typedef struct {
    void   *(*alloc)(void *ctx, size_t size);
    void    (*free)(void *ctx, void *p);
    void     *ctx;
} gch_alloc_t;

/* malloc/free; for the worker, guichetctl and tests. */
extern const gch_alloc_t  gch_alloc_std;

/* The state of an allocator over one caller buffer (engine/src/arena.h,
 * gch_fixed_init); public because gch_json.h's gch_jout_t holds one. */
typedef struct {
    char    *base;
    size_t   size;
    size_t   used;
    size_t   last;       /* offset of the most recent piece */
} gch_fixed_t;

/*
 * Why a cell of a booking is refused: the "reason" of its answer, one row
 * each in docs/errors.md (scripts/check-docs.py reads gch_reasons[] of
 * engine/src/alloc.c).  To add one: a constant before GCH_REASON_COUNT,
 * its name at the same place in gch_reasons[], its row in docs/errors.md.
 */
typedef enum {
    GCH_REASON_NONE = 0,                 /* not refused */
    GCH_REASON_FULL,
    GCH_REASON_CONFLICT,
    GCH_REASON_ALREADY_BOOKED,
    GCH_REASON_NOT_OPEN_YET,
    GCH_REASON_CLOSED,
    GCH_REASON_NOT_ENROLLED,
    GCH_REASON_AGE,
    GCH_REASON_DOCUMENTS_MISSING,
    GCH_REASON_UNPAID_INVOICES,
    GCH_REASON_WEEK_INCOMPLETE,
    GCH_REASON_UNKNOWN_SESSION,
    GCH_REASON_UNIT_REQUIRED,
    GCH_REASON_REPLACED_UNKNOWN,         /* a swap's booking to replace is
                                            not the child's (any more) */
    GCH_REASON_ENTERED,                  /* not a refusal: entered in a
                                            draw, decided at its opening
                                            (status "entered") */
    GCH_REASON_COUNT
} gch_reason_t;

/* "full", "conflict", ...; NULL for GCH_REASON_NONE or out of range. */
const char *gch_reason_name(gch_reason_t reason);

/* Fill err (if not NULL) from a GCH_E* and an optional message. */
void gch_error_set(gch_error_t *err, int rc, const char *fmt, ...);


/* ------------------------------------------------------------------ */
/* calendar: civil days, Europe/Paris instants, holidays, deadlines     */

/* A civil date as days since 1970-01-01 (may be negative). */
typedef int32_t  gch_day_t;

/* Parse "YYYY-MM-DD" (exactly 10 bytes, a real date).  0 or GCH_EINVALID. */
int gch_day_parse(gch_day_t *out, const char *s, size_t len);
/* Write "YYYY-MM-DD" + NUL into buf (11 bytes). */
void gch_day_format(gch_day_t d, char buf[11]);
void gch_day_ymd(gch_day_t d, int *y, int *m, int *dd);
gch_day_t gch_day_from_ymd(int y, int m, int d);
int gch_day_weekday(gch_day_t d);            /* 1 = Monday .. 7 = Sunday */

/* French public holidays (fixed and Easter-based) and working days. */
int gch_day_is_holiday(gch_day_t d);
int gch_day_is_working(gch_day_t d);         /* Mon-Fri and not holiday */

/* Europe/Paris, with its DST rule (last Sunday of March/October, 01:00 UTC),
 * computed without the process time zone.  Instants are Unix seconds. */
int64_t gch_paris_to_unix(gch_day_t d, int minute_of_day);
void gch_unix_to_paris(int64_t t, gch_day_t *d, int *minute_of_day,
    int *utc_offset_min);
/* Parse RFC 3339 with offset ("2021-06-07T18:00:00+02:00", "Z" allowed). */
int gch_instant_parse(int64_t *out, const char *s, size_t len);
/* Write RFC 3339 in Europe/Paris with its offset + NUL (26 bytes). */
void gch_instant_format(int64_t t, char buf[26]);
/* Age in whole years on day d of a child born on day birth. */
int gch_age_on(gch_day_t birth, gch_day_t d);

typedef enum {
    GCH_DEADLINE_NONE = 0,
    GCH_DEADLINE_WORKING_DAYS,   /* n: starts of the Nth working day before */
    GCH_DEADLINE_HOURS,          /* n: hours before the unit starts         */
    GCH_DEADLINE_DAY_BEFORE_AT   /* n: minute of day, the day before         */
} gch_deadline_kind_t;

typedef struct {
    gch_deadline_kind_t  kind;
    int                  n;
} gch_deadline_t;

/* The last instant (exclusive) at which a cell on day d whose unit starts
 * at minute starts_min can still be booked or cancelled. */
int64_t gch_deadline_instant(const gch_deadline_t *dl, gch_day_t d,
    int starts_min);


/* ------------------------------------------------------------------ */
/* town: the town file (TOWN-FILE.md) and the published catalogue       */

/*
 * One structure serves both documents.  A town file may carry family
 * passwords and calendars; gch_town_parse() expands every calendar into
 * sessions (ids "<activity>-<YYYYMMDD>-<UNIT>", holidays excluded).  The
 * catalogue that the worker publishes to Redis is the same format with
 * sessions only and no passwords (gch_town_write()).
 */

#define GCH_ENROL_DEMANDEE   0
#define GCH_ENROL_VALIDEE    1
#define GCH_ENROL_REFUSEE    2

typedef struct {
    const char  *code;
    const char  *label;
    int          starts_min;     /* minute of day, Europe/Paris */
    int          ends_min;
    uint32_t     quanta;         /* bit i: covers elementary interval i */
} gch_unit_t;

typedef struct {
    int          qf_max;         /* -1: no upper bound (null) */
    int          cents;
} gch_price_t;

typedef struct {
    const char      *type;               /* e.g. "vaccinations" */
    const char      *child_id;           /* NULL: the whole family */
    gch_day_t        valid_from;
    gch_day_t        valid_to;           /* INT32_MAX: no end */
} gch_document_t;

typedef struct {
    const char      *id;
    const char      *name;
    const char      *site;
    int              age_min;
    int              age_max;
    int64_t          opens_at;           /* unix s; 0 = always open */
    gch_deadline_t   deadline;
    int              online_share_percent;
    int              week_required;
    gch_price_t     *prices;             /* sorted by qf_max, null last */
    size_t           nprices;
    gch_deadline_t   cancel_deadline;    /* defaults to deadline */
    const char     **required_documents; /* document types */
    size_t           nrequired_documents;
    int              blocks_unpaid;      /* unpaid invoices block booking */
    gch_price_t     *nr_prices;          /* non-residents; NULL: prices */
    size_t           nnr_prices;
    uint32_t        *unit_requires;      /* per unit: bit u = unit u is
                                            enough; 0 or NULL: none */
    int64_t          release_onsite_at;  /* unix s: unused on-site places
                                            go online; 0: never */
    int              draw;               /* opens by draw ("opening":
                                            {"mode": "draw"}, issue 23) */
    int64_t          entries_from;       /* draw: entries from (unix s) */
    const char      *draw_seed;          /* draw: the published seed (hex),
                                            NULL until load-town draws it */
    int              drawn;              /* draw: decided (published by
                                            the worker once it is) */
    int              offer_hours;        /* "waitlist": {"mode": "offer",
                                            "hold_hours": N}: a freed place
                                            is held N hours for the list's
                                            first family; 0: booked at
                                            once ("mode": "book") */
} gch_activity_t;

typedef struct {
    const char           *id;
    const gch_activity_t *activity;
    gch_day_t             date;
    int                   unit;          /* index in town->units */
    const char           *label;         /* unit label when not given */
    int                   places;
    int                   places_online;  /* floor(places * share / 100) */
    int64_t               book_until;    /* unix s: booking closes (the
                                            activity's deadline, exclusive;
                                            set when the town is read) */
} gch_session_t;

typedef struct {
    const char  *id;
    const char  *first_name;
    gch_day_t    birth_date;
} gch_child_t;

typedef struct {
    const char           *child_id;
    const gch_activity_t *activity;
    gch_day_t             from;
    gch_day_t             to;
    int                   status;        /* GCH_ENROL_* */
} gch_enrolment_t;

typedef struct {
    const char       *id;
    const char       *login;             /* NULL: no website login */
    const char       *password;          /* town file only; NULL after */
    int               qf;                /* -1: missing */
    int               resident;
    int               direct_debit;
    gch_child_t      *children;
    size_t            nchildren;
    gch_enrolment_t  *enrolments;
    size_t            nenrolments;
    gch_document_t   *documents;         /* valid documents on file */
    size_t            ndocuments;
    int               unpaid_invoices;   /* count, set by the town */
} gch_family_t;

typedef struct gch_town_s  gch_town_t;

/*
 * A town's Redis keys (gch_keys.h), ready when it is parsed: the hot path
 * copies ids after the prefixes instead of formatting.  "{<id>}:" starts
 * each; f, s and c are "{<id>}:f:", "{<id>}:s:", "{<id>}:c:".
 */
#define GCH_TOWN_KEY_MAX  (GCH_TOWN_ID_MAX + 24)

typedef struct {
    char              f[GCH_TOWN_KEY_MAX];
    char              s[GCH_TOWN_KEY_MAX];
    char              c[GCH_TOWN_KEY_MAX];
    char              inflight[GCH_TOWN_KEY_MAX];
    char              stream[GCH_TOWN_KEY_MAX];
    char              seq_demande[GCH_TOWN_KEY_MAX];
    char              catalogue_gen[GCH_TOWN_KEY_MAX];
    char              waiting[GCH_TOWN_KEY_MAX];
    size_t            stream_len;
} gch_town_keys_t;

struct gch_town_s {
    const char       *id;                /* town.id, GCH_TOWN_DEFAULT when
                                            the file has none */
    gch_town_keys_t   keys;
    const char       *name;
    const char       *timezone;
    gch_unit_t       *units;
    size_t            nunits;
    gch_activity_t   *activities;
    size_t            nactivities;
    gch_session_t    *sessions;
    size_t            nsessions;
    gch_family_t     *families;
    size_t            nfamilies;
    void             *priv;              /* arena and hash indexes */
};

/* Parse a town file or a catalogue.  Strict: unknown fields, duplicate
 * keys, wrong types, bad dates, unknown references, duplicate ids are
 * refused with GCH_EINVALID and err->message naming the JSON path of the
 * first error (e.g. "$.activities[0].sessions[3].unit").  On success *out
 * owns everything; free with gch_town_free(). */
int gch_town_parse(gch_town_t **out, const char *json, size_t len,
    const gch_alloc_t *a, gch_error_t *err);
/* 1 when s (n bytes) is a valid town id: [a-z0-9-]{1,40}. */
int gch_town_id_ok(const char *s, size_t n);
void gch_town_free(gch_town_t *t);

/* Serialise as a catalogue (sessions only, no passwords).  *out is
 * allocated with a; the caller frees it with a->free. */
int gch_town_write(const gch_town_t *t, char **out, size_t *len,
    const gch_alloc_t *a);

/* O(1) look-ups by id; NULL when absent. */
const gch_session_t *gch_town_session(const gch_town_t *t, const char *id,
    size_t len);
const gch_activity_t *gch_town_activity(const gch_town_t *t, const char *id,
    size_t len);
/* The sessions of act (an activity of t), contiguous in t->sessions: the
 * first, *n of them.  What walks one activity's sessions walks these, not
 * the town's (10^6 sessions: issue 20, fifth pass). */
const gch_session_t *gch_town_act_sessions(const gch_town_t *t,
    const gch_activity_t *act, size_t *n);
const gch_family_t *gch_town_family(const gch_town_t *t, const char *id,
    size_t len);
const gch_child_t *gch_family_child(const gch_family_t *f, const char *id,
    size_t len);

/* Price of one cell for a family: band by QF, highest band if QF missing;
 * non-resident families use non_resident_prices when the activity has
 * them. */
int gch_price_cents(const gch_activity_t *act, const gch_family_t *f);


/* ------------------------------------------------------------------ */
/* tokens: bearer tokens and session cookies                           */

/* "v4.<town>.<b64url family_id>.<expires unix>.<issued unix>.<b64url
 * nonce16>.<b64url mac>" (v3 without <issued>), mac = HMAC-SHA256(secret,
 * everything before the last dot).  A token names its town (issue 21) and
 * verifies only for that town; v1 and v2 (before towns, no <town>) only
 * for the town "main". */
#define GCH_SECRET_LEN  32
#define GCH_TOKEN_MAX   320

/* v3 (no issue time): staff tokens of guichet-office. */
int gch_token_make(char out[GCH_TOKEN_MAX], const uint8_t *secret,
    const char *town, const char *family_id, int64_t expires,
    const uint8_t nonce[16]);
/* v4: issued (Unix seconds) <= expires; what families are given. */
int gch_token_issue(char out[GCH_TOKEN_MAX], const uint8_t *secret,
    const char *town, const char *family_id, int64_t issued, int64_t expires,
    const uint8_t nonce[16]);
/* 0 and the family id (copied into fid, NUL-terminated, at most fid_size)
 * or GCH_EUNAUTH for any malformed, forged or expired token, or a token of
 * another town than town (NUL-terminated); v1 to v4. */
int gch_token_verify(const uint8_t *secret, const char *town,
    const char *tok, size_t len, int64_t now, char *fid, size_t fid_size,
    int64_t *expires);
/* The issue time of a verified token, or -1 (v1). */
int64_t gch_token_issued(const char *tok, size_t len);

/* Unknown family, authentic token: is the catalogue older than the token
 * (1: 503 catalogue_behind) or is the family really not there (0: 403)?
 * confirmed_ms: when the catalogue was last confirmed the newest (Unix
 * ms).  A token issued up to GCH_CATALOGUE_SLACK_MS before that still
 * counts as newer: clocks of several hosts, and logins published a moment
 * before the catalogue that holds them (docs/errors.md). */
#define GCH_CATALOGUE_SLACK_MS  5000
int gch_catalogue_behind(int64_t issued, int64_t confirmed_ms);

/* How a token is named where it is stored or revoked ({T}:f:<fid>:tokens,
 * {T}:revoked): BLAKE2b-128 of its text, written as 32 hex digits. */
#define GCH_TOKEN_HASH_LEN  16
void gch_token_hash(const char *tok, size_t len,
    uint8_t out[GCH_TOKEN_HASH_LEN]);


/* ------------------------------------------------------------------ */
/* small JSON requests                                                 */

typedef struct {
    const char  *child_id;
    size_t       child_len;
    const char  *session_id;
    size_t       session_len;
    const char  *replaces;           /* a swap: the booking id this cell
                                        replaces (NULL: a plain booking) */
    size_t       replaces_len;
    int          waitlist;       /* "waitlist": true: join the session's
                                    waiting list when it is full */
    int          offer;          /* "offer": true: accept the place held
                                    for this child on this session (an
                                    activity in offer mode, issue 23) */
} gch_item_t;

typedef struct {
    gch_item_t  *items;
    size_t       nitems;
    const char  *family_id;          /* staff requests only, else NULL */
    void        *priv;
} gch_booking_req_t;

/* {"items": [{"child_id": "...", "session_id": "...", "waitlist": true},
 * ...]}, 1..max items ("waitlist" optional, false by default).  An item
 * may say "replaces": "<booking id>" (a swap, docs/api.md); two items may
 * not replace the same booking.
 * Strict (see gch_town_parse).  Free with gch_booking_req_free(). */
int gch_booking_req_parse(gch_booking_req_t *out, const char *body,
    size_t len, size_t max_items, const gch_alloc_t *a, gch_error_t *err);
void gch_booking_req_free(gch_booking_req_t *r);
/* The counter's request (POST /api/staff/bookings): the same with a
 * required "family_id" (1..64 bytes) naming the family booked for. */
int gch_staff_req_parse(gch_booking_req_t *out, const char *body,
    size_t len, size_t max_items, const gch_alloc_t *a, gch_error_t *err);

/* {"login": "...", "password": "..."}: copies into the buffers. */
int gch_login_req_parse(const char *body, size_t len, char *login,
    size_t login_size, char *password, size_t password_size,
    gch_error_t *err);


/* ------------------------------------------------------------------ */
/* commands: RESP-formatted Redis commands                              */

typedef struct {
    char    *data;
    size_t   len;
} gch_cmd_t;

typedef struct {
    gch_cmd_t  *cmds;
    size_t      ncmds;
} gch_cmds_t;


/* ------------------------------------------------------------------ */
/* the booking saga (docs/architecture.md)                             */

typedef struct {
    const gch_town_t        *town;
    const gch_family_t      *family;
    const gch_booking_req_t *req;
    int64_t                  now_ms;
    const char              *idem_key;      /* validated by the caller */
    size_t                   idem_len;
    const char              *body;          /* raw body, hashed */
    size_t                   body_len;
    int64_t                  idem_ttl_s;    /* answer kept this long */
    int64_t                  inflight_ttl_s;
    long long                catalogue_gen; /* generation planned with */
    int                      onsite;        /* staff at the counter: the
                                               on-site quota, no opening */
    uint64_t                 attempt;       /* the caller's number for this
                                               attempt, unique (process,
                                               counter from a random
                                               start): its {T}:inflight
                                               member */
    int64_t                  refused_ttl_s; /* the answer of a request
                                               with no cell confirmed is
                                               kept this long (0: as
                                               idem_ttl_s) */
    const char              *agent;         /* onsite: the staff login
                                               booking (NULL: none), in
                                               the stream entry */
    int                      draw;          /* the worker deciding a draw
                                               (draw.c): the hold before
                                               the draw is decided does
                                               not apply */
} gch_book_in_t;

typedef struct gch_book_s  gch_book_t;

/* The inputs must outlive the gch_book_t (it points into them).
 * Step zero, no Redis: checks every child belongs to the family (else
 * GCH_EFORBIDDEN, nothing to send) and applies the rules that need no
 * Redis.  *out owns everything; free with gch_book_free().
 * gch_book_step1() then writes the first MULTI/EXEC (claims, places,
 * idempotency key, demande number) -- only when asked, so that a refusal
 * from the sold-out cache never writes it; NULL when memory is short
 * (answer 503, nothing was sent). */
int gch_book_plan(gch_book_t **out, const gch_book_in_t *in,
    const gch_alloc_t *a, gch_error_t *err);
const gch_cmds_t *gch_book_step1(gch_book_t *b);

/* Feed the EXEC reply of step one.  Returns 0, and then either
 * gch_book_step2() has commands to send (fresh request, or the
 * compensation of a replay), or nothing: check gch_book_done(). */
int gch_book_on_step1(gch_book_t *b, const redisReply *exec);
const gch_cmds_t *gch_book_step2(gch_book_t *b);
int gch_book_on_step2(gch_book_t *b, const redisReply *exec);
/* After gch_book_on_step2(), commands to send once the answer is out, or
 * NULL.  After GCH_EFENCED (the reaper released this attempt first): step
 * three undoes what step two wrote, and the answer is 503 unavailable.
 * After GCH_OK: the LTRIM of the family's demande list when it grew past
 * its bound (not every time: one command less per booking). */
const gch_cmds_t *gch_book_step3(gch_book_t *b);
/* 1 when step three gives a swap's old places back (docs/architecture.md,
 * "Swap"): the answer, which says them "released", waits for its reply. */
int gch_book_answer_after_step3(const gch_book_t *b);

/* The answer, once known: HTTP status, JSON body, replayed flag. */
int gch_book_done(const gch_book_t *b);
int gch_book_status(const gch_book_t *b);
const char *gch_book_body(const gch_book_t *b, size_t *len);
int gch_book_replayed(const gch_book_t *b);
/* Instead of gch_book_step1(), when gch_family_charge() refused the
 * request (retry_after its answer): the answer is 429 rate_limited, with
 * nothing sent to Redis but gch_book_idem_check() (a key Redis knows goes
 * to step one instead).  GCH_ENOMEM when memory is short (answer 503). */
int gch_book_over_budget(gch_book_t *b, long long retry_after);
/* After a 429 (the family's budget): its Retry-After in seconds, else 0. */
long long gch_book_retry_after(const gch_book_t *b);
void gch_book_free(gch_book_t *b);
/*
 * Per-cell outcomes once answered (metrics, the sold-out cache):
 * GCH_REASON_NONE = confirmed; the reason's name (NULL = confirmed).
 */
size_t gch_book_ncells(const gch_book_t *b);
gch_reason_t gch_book_cell_outcome(const gch_book_t *b, size_t i);
const char *gch_book_cell_reason(const gch_book_t *b, size_t i);
const gch_session_t *gch_book_cell_session(const gch_book_t *b, size_t i);

/*
 * The sold-out shortcut (directive guichet_full_cache): right after
 * gch_book_plan(), if every cell still open is on a session sold_out()
 * says is full, the request is answered at once -- each such cell
 * "full", request_id null, no demande, nothing sent to Redis, nothing kept
 * for a replay -- and 1 is returned (gch_book_body() holds the answer).
 * 0: go on with step one.  GCH_ENOMEM when memory is short.
 */
int gch_book_sold_out(gch_book_t *b,
    int (*sold_out)(const gch_session_t *s, void *ctx), void *ctx);
/*
 * The not-yet-open shortcut: right after gch_book_plan(), if every cell of
 * a family's request is refused not_open_yet by the rules that need no
 * Redis (the booking has not opened, or its draw is not decided yet), the
 * request is answered at once -- the same refusal, request_id null, no
 * demande, nothing sent to Redis, nothing kept for a replay, so that the
 * same key books once it has opened -- and 1 is returned (gch_book_body()
 * holds the answer).  0: go on (any other cell outcome, or the counter).
 * GCH_ENOMEM when memory is short.  Independent of the sold-out cache.
 */
int gch_book_not_open_yet(gch_book_t *b);
/* After gch_book_sold_out() or gch_book_not_open_yet() returned 1: the one
 * command (EXISTS of the request's idempotency record) telling whether
 * Redis knows its key -- a known key must not be answered at once: it gets
 * its replay, 409 or 422 from the saga.  Owned by b; NULL when memory is
 * short. */
const gch_cmds_t *gch_book_idem_check(gch_book_t *b);
/* The key that command asks about ({T}:f:<fid>:idem:<key>, NUL-terminated,
 * owned by b), for a caller that asks about several requests' keys in one
 * EXISTS: a count of 0 is each one's 0. */
const char *gch_book_idem_rkey(const gch_book_t *b);


/* ------------------------------------------------------------------ */
/* a demande's compact form (demande.c)                                */

/*
 * What a booking demande leaves in Redis -- the idempotency record's
 * answer, the family's demande list and the stream entry -- is one
 * compact text (docs/architecture.md, "The compact demande"), not its
 * JSON: the JSON is rendered when it is read.  The record's is bare: its
 * family and key are empty (its Redis key names them), its at_ms 0 (the
 * answer does not show it).  "~1 <number> <at_ms>
 * <o|w> <family> <key> <agent> <ncells>" then per cell "<child>
 * <session> +<price>" (confirmed) or "-<reason>[@<opens unix s>]", then
 * for a swap " ><replaced booking>" and, confirmed, " <released session>
 * <0|1 billed>", every string as "<length>:<bytes>".  Booking ids are not
 * stored: they are gch_book_id(family, key, child, session).  Strings
 * point into the decoded text.
 */
typedef struct {
    const char    *child;
    size_t         child_len;
    const char    *session;
    size_t         session_len;
    gch_reason_t   reason;            /* GCH_REASON_NONE: confirmed */
    long long      price_cents;       /* confirmed */
    long long      opens_at;          /* not_open_yet: unix seconds */
    long long      position;          /* full: > 0 on the waiting list
                                         ("#<n>"), status "waitlisted" */
    const char    *replaces;          /* a swap: the booking replaced */
    size_t         replaces_len;      /* 0: not a swap */
    const char    *released;          /* confirmed swap: the session of */
    size_t         released_len;      /* the booking released */
    int            billed;            /* its release is billed */
    const char    *bid;               /* confirmed: its booking id, if the
                                         caller has it (NUL-terminated;
                                         gch_dm_render() writes it as is),
                                         else NULL (decoded: NULL) */
} gch_dm_cell_t;

typedef struct {
    long long       number;           /* < 0: none (request_id null) */
    long long       at_ms;
    int             onsite;           /* booked at the counter */
    const char     *family;
    size_t          family_len;
    const char     *key;              /* the Idempotency-Key */
    size_t          key_len;
    const char     *agent;            /* onsite: who, else length 0 */
    size_t          agent_len;
    size_t          ncells;
    gch_dm_cell_t  *cells;
} gch_dm_t;

#define GCH_DM_MAGIC      "~1 "       /* a compact demande starts so */
#define GCH_DM_MAX_CELLS  1000

/* What gch_dm_json() renders. */
#define GCH_DM_ANSWER     0   /* the API's answer (docs/api.md) */
#define GCH_DM_ENTRY      1   /* the stream's "book" entry, for the worker */
#define GCH_DM_DEMANDE    2   /* one element of GET /api/requests */
#define GCH_DM_ITEMS      3   /* the entry's "items" array alone (the
                                 worker's COPY of demande.items), for
                                 gch_dm_render() only */

/* The compact text of d; NULL when memory is short or d is too big. */
char *gch_dm_encode(const gch_dm_t *d, const gch_alloc_t *a, size_t *len);
/* Decodes p (n bytes, not necessarily NUL-terminated): GCH_OK, GCH_EINVALID
 * on anything that is not exactly one compact demande, GCH_ENOMEM.
 * d->cells is allocated with a (gch_dm_free); the strings point into p. */
int gch_dm_decode(gch_dm_t *d, const char *p, size_t n, const gch_alloc_t *a);
void gch_dm_free(gch_dm_t *d, const gch_alloc_t *a);
/* The JSON of what (GCH_DM_ANSWER ...) for d, NUL-terminated; NULL when
 * memory is short. */
char *gch_dm_render(const gch_dm_t *d, int what, const gch_alloc_t *a,
    size_t *len);
/* The demande's status as its JSON states it ("traitee_positivement",
 * "partielle", "traitee_negativement", "deposee"): a static string. */
const char *gch_dm_status(const gch_dm_t *d);
/* A stored demande, compact or JSON (written before the compact form, or
 * a cancellation's, which stays JSON), as JSON of what: JSON is copied as
 * it is.  NULL when memory is short or p is neither (*len = 0 then, and
 * 1 when memory was short). */
char *gch_dm_json(const char *p, size_t n, int what, const gch_alloc_t *a,
    size_t *len);
/* The same for the idempotency record's bare demande (no family, no key:
 * its key "{T}:f:<family>:idem:<key>" names them): family and key fill
 * them in. */
char *gch_dm_json_in(const char *p, size_t n, int what, const char *family,
    const char *key, size_t key_len, const gch_alloc_t *a, size_t *len);
/* 1 when p (n bytes) is a compact demande every cell of which is entered
 * in a draw (answered 202), else 0. */
int gch_dm_all_entered(const char *p, size_t n, const gch_alloc_t *a);


/*
 * A confirmed booking's planning entry, the value of {T}:f:<fid>:bookings
 * (the field is the booking id): "~p <child> <session> <price> <number>
 * <o|w>", strings "<length>:<bytes>" -- under Redis's 64 bytes of
 * hash-max-listpack-value for the usual ids, so that a family's hash
 * stays a listpack.  JSON entries (written by the worker's rebuild, or
 * before the compact form) are read too.
 */
typedef struct {
    const char  *child;
    size_t       child_len;
    const char  *session;
    size_t       session_len;
    long long    price_cents;
    long long    number;              /* the demande's */
    int          onsite;
} gch_dm_planning_t;

#define GCH_DM_PLANNING_MAGIC  "~p "

char *gch_dm_planning_encode(const gch_dm_planning_t *e,
    const gch_alloc_t *a, size_t *len);
int gch_dm_planning_decode(gch_dm_planning_t *e, const char *p, size_t n);
/* {"child_id","session_id","price_cents","request_id"[,"channel"]} of a
 * compact entry; a JSON one copied.  NULL when p is neither (*len 0)
 * or memory is short (*len 1). */
char *gch_dm_planning_json(const char *p, size_t n, const gch_alloc_t *a,
    size_t *len);


/*
 * A first attempt's plan, in its record "P <hash> <id> <plan>": "~q <n>"
 * then "<child> <session>" per cell its step one took.  The reaper reads
 * it as the JSON plan [{"s","c","b","q":[claim keys]}] it always read:
 * booking ids derived from family and key, claim keys from the catalogue
 * t (none for a session t does not know, or t NULL).  A JSON plan (a
 * record written before) is copied.  NULL when p is neither (*len 0) or
 * memory is short (*len 1).
 */
typedef struct {
    const char  *child;
    const char  *session;
} gch_dm_plan_cell_t;

#define GCH_DM_PLAN_MAGIC  "~q "

char *gch_dm_plan_encode(const gch_dm_plan_cell_t *cells, size_t n,
    const gch_alloc_t *a, size_t *len);
char *gch_dm_plan_json(const char *p, size_t n, const gch_town_t *t,
    const char *family, const char *key, size_t key_len,
    const gch_alloc_t *a, size_t *len);


/* ------------------------------------------------------------------ */
/* cancellation (cancel.c): DELETE /api/bookings/{id}                  */

typedef struct gch_cancel_s  gch_cancel_t;

/* A booking's id: "b-" + 20 hex of BLAKE2b(family id, Idempotency-Key,
 * child id, session id), the same for every attempt with that key.  out
 * gets GCH_BOOKING_ID_MAX bytes with the NUL. */
#define GCH_BOOKING_ID_MAX  23
void gch_book_id(char out[GCH_BOOKING_ID_MAX], const char *fid,
    const char *key, size_t key_len, const char *cid, const char *sid);
/* The claim key of elementary interval q (< 100) of child cid on day:
 * "{T}:c:<cid>:<YYYY-MM-DD>:q<q>" of town t.  Its length, or -1 (and "")
 * when it does not fit in size. */
int gch_claim_key_of(char *buf, size_t size, const gch_town_t *t,
    const char *cid, gch_day_t day, int q);

/* A booking attempt's {T}:inflight member "<record key>#<id>", id =
 * "<attempt>.<8 hex of the body's hash>" ("<ms>.<attempt>.<8 hex>" before
 * issue 20's second pass, read alike; a member without "#" is the record
 * key alone, as written before attempts had ids).  Copies the
 * record key into rkey (truncated to size); returns the id or NULL. */
const char *gch_attempt_split(const char *member, char *rkey, size_t size);
/* 1 when the idempotency record rec ("P <hash> <id> <plan>") was written
 * by the attempt id, else 0. */
int gch_attempt_wrote(const char *id, const char *rec, size_t len);
/* 1 when the attempt id came with the body whose hash the record ("P" or
 * "D <hash> ...") holds, else 0. */
int gch_attempt_same_body(const char *id, const char *rec, size_t len);

/* Plans the cancellation of booking bid of family f.  Then, while
 * gch_cancel_next() gives commands, send them and feed the EXEC reply to
 * gch_cancel_on_reply(); the answer is gch_cancel_status()/_body():
 * 200 {"booking_id","status":"cancelled","billed"} or 404 not_found. */
int gch_cancel_plan(gch_cancel_t **out, const gch_town_t *t,
    const gch_family_t *f, const char *bid, size_t len, int64_t now_ms,
    const gch_alloc_t *a, gch_error_t *err);
const gch_cmds_t *gch_cancel_next(gch_cancel_t *c);
int gch_cancel_on_reply(gch_cancel_t *c, const redisReply *exec);
int gch_cancel_status(const gch_cancel_t *c);
const char *gch_cancel_body(const gch_cancel_t *c, size_t *len);
void gch_cancel_free(gch_cancel_t *c);


/* ------------------------------------------------------------------ */
/* waiting lists (waitlist.c; joining is the booking saga's)            */

/*
 * GET /api/waitlist (arg NULL) and DELETE /api/waitlist/{sid}/{cid} (arg
 * "<sid>/<cid>", len bytes), driven like a cancellation: 200
 * {"waitlist":[{"session_id","child_id","activity_id","activity_name",
 * "date","unit","unit_label","position"}]}, 200 {"session_id",
 * "child_id","status":"left"} or 404 not_found.  Points into t and f.
 */
typedef struct gch_wait_s  gch_wait_t;

int gch_wait_plan(gch_wait_t **out, const gch_town_t *t,
    const gch_family_t *f, const char *arg, size_t len,
    const gch_alloc_t *a, gch_error_t *err);
const gch_cmds_t *gch_wait_next(gch_wait_t *w);
int gch_wait_on_reply(gch_wait_t *w, const redisReply *exec);
int gch_wait_status(const gch_wait_t *w);
const char *gch_wait_body(const gch_wait_t *w, size_t *len);
void gch_wait_free(gch_wait_t *w);

/*
 * A promotion is a booking request of the list's first child made by the
 * worker through the saga itself (gch_book_plan ...), so that every rule
 * and every atomic primitive of a booking apply.  Its Idempotency-Key is
 * derived from the list entry: "wl." <entry's booking id> "." <tries>
 * (clients' keys cannot hold a '.'): a retry after a crash replays it.
 */
#define GCH_WAIT_KEY_PREFIX  "wl."

/* The key into out; its length or -1 when size is too small. */
int gch_wait_promotion_key(char *out, size_t size, const char *bid,
    long long tries);
/* 1 when an Idempotency-Key is a promotion's. */
int gch_wait_is_promotion(const char *key, size_t len);

#define GCH_WAIT_BOOKED  0    /* booked: the entry leaves the list */
#define GCH_WAIT_STAY    1    /* full again: the entry stays first, the
                                 next promotion takes a new key */
#define GCH_WAIT_DROP    2    /* not eligible: the entry leaves the list,
                                 the refused demande records why */

/* What the promoter does with an entry after its booking's outcome. */
int gch_wait_decide(int confirmed, gch_reason_t reason);
/* 1 when session s of t no longer takes bookings at now_ms (its
 * activity's booking deadline): its list ends, each entry is tried once
 * more (refused "closed", it leaves with its e-mail). */
int gch_wait_closed(const gch_town_t *t, const gch_session_t *s,
    int64_t now_ms);

/*
 * Offers (an activity whose "waitlist" is {"mode": "offer", "hold_hours":
 * N}): a freed place is held for the list's first eligible child, in
 * {T}:s:<sid>:hold:<cid> (a u32 place counter, 1), until the instant
 * gch_offer_until() gives; the family accepts with a booking item
 * "offer": true (that counter is its place instead of {T}:s:<sid>:left)
 * or declines (DELETE /api/waitlist/...); past that instant the worker
 * gives the place to the next family.
 */
/* The end of an offer made at now_ms on session s: now + hold_hours,
 * never past the session's booking deadline.  0: s's activity makes no
 * offer (or its deadline has passed: nothing to hold). */
int64_t gch_offer_until(const gch_town_t *t, const gch_session_t *s,
    int64_t now_ms);
/* 1 when an offer held until until_ms has expired at now_ms. */
int gch_offer_expired(int64_t until_ms, int64_t now_ms);
/* The rules of a booking that need no Redis (enrolment, age, documents,
 * unpaid invoices, deadline, whole weeks) for child cid of f on s at
 * now_ms: GCH_REASON_NONE when eligible, GCH_REASON_COUNT when memory
 * is short, else the refusal's reason. */
gch_reason_t gch_wait_eligible(const gch_town_t *t, const gch_family_t *f,
    const char *cid, const gch_session_t *s, int64_t now_ms,
    const gch_alloc_t *a);


/* ------------------------------------------------------------------ */
/* opening by draw (draw.c, issue 23; docs/rules.md, "Opening by draw") */

/*
 * Where an activity stands at now_ms: GCH_DRAW_OPEN (first come, first
 * served: no opening instant, it has come and any draw is decided),
 * GCH_DRAW_NOT_OPEN (before the opening, or before a draw's entries),
 * GCH_DRAW_ENTRIES (a draw's window: items are entered, not decided),
 * GCH_DRAW_HELD (the opening has come, its draw is not decided yet:
 * nothing is sold first come).
 */
#define GCH_DRAW_OPEN       0
#define GCH_DRAW_NOT_OPEN   1
#define GCH_DRAW_ENTRIES    2
#define GCH_DRAW_HELD       3

int gch_draw_phase(const gch_activity_t *act, int64_t now_ms);

/* A family's rank in a draw: SHA-256 of "<seed>:<family id>", 64 lower
 * hex digits and a NUL into out.  The lower the rank, the earlier. */
#define GCH_DRAW_RANK_LEN  64
void gch_draw_rank(char out[GCH_DRAW_RANK_LEN + 1], const char *seed,
    const char *family_id);

/* One entry: a family's cell, entered at at_ms as item idx of its
 * request, with its "waitlist" flag. */
typedef struct {
    const char  *family;
    const char  *child;
    const char  *session;
    long long    at_ms;
    int          idx;
    int          waitlist;
    char         rank[GCH_DRAW_RANK_LEN + 1];   /* gch_draw_order's */
} gch_draw_entry_t;

/* Sorts the entries in the order they are decided: families by rank
 * (then id), a family's cells by at_ms, idx, child, session (its
 * requests' order).  Fills each rank. */
void gch_draw_order(gch_draw_entry_t *e, size_t n, const char *seed);

/*
 * The worker decides a draw's families in pipelined batches (every step
 * one, then every step two): exact as long as no step two gives back a
 * place or a waiting-list push that a later family of the batch was
 * refused for.  After gch_book_on_step1():
 *   gch_book_gives_back()  1 when b's step two gives back a place or a
 *                          waiting-list push of session s (NULL: of any);
 *   gch_book_wants()       1 when a cell of b on s was refused full (on a
 *                          list or not);
 *   gch_book_abandon()     instead of step two: takes back all that step
 *                          one of a fresh request took, its record and its
 *                          {T}:inflight member, so that the same key is
 *                          planned again later (a gap in the demande
 *                          numbers).  NULL when memory is short.
 */
int gch_book_gives_back(const gch_book_t *b, const gch_session_t *s);
int gch_book_wants(const gch_book_t *b, const gch_session_t *s);
const gch_cmds_t *gch_book_abandon(gch_book_t *b);

/* The Idempotency-Key of a family's draw decision: "dr.<activity id>"
 * (clients' keys cannot hold a '.'): a worker killed mid-draw replays it
 * and never decides a family twice.  Its length, or -1 when size is too
 * small. */
#define GCH_DRAW_KEY_PREFIX  "dr."
int gch_draw_key(char *out, size_t size, const char *activity_id);
/* The field and value of an entry in {T}:a:<aid>:entries: "<family>
 * <child> <session>" and "<at_ms> <idx> <0|1 waitlist>".  Their length,
 * or -1 when size is too small. */
int gch_draw_field(char *out, size_t size, const char *family,
    const char *child, size_t child_len, const char *session,
    size_t session_len);
/* Parses field and value back into e (e's strings point into field,
 * which is modified: spaces become NULs).  0, or -1 when they are not an
 * entry's. */
int gch_draw_entry_parse(gch_draw_entry_t *e, char *field,
    const char *value);


/* ------------------------------------------------------------------ */
/* justified absences (absence.c): POST /api/absences                  */

typedef struct gch_absence_s  gch_absence_t;

/* {"booking_id","reason","document_id"}: copies the ids and the reason
 * (a code, [a-z0-9_-]{1,32}: one of the town's reasons, checked in
 * Redis by the saga) into the caller's buffers ("" for no document).
 * GCH_EBADJSON/GCH_EINVALID. */
int gch_absence_req_parse(const char *body, size_t len, char *bid,
    size_t bid_size, char *reason, size_t reason_size, char *doc,
    size_t doc_size, gch_error_t *err);

/* Driven like a cancellation: 200 {"booking_id","status":"en_examen",
 * "billed":true,"reason","request_id"} (the town examines it: office/
 * absence.c), 404 not_found, or 400 invalid_field when the reason is not
 * one of the town's ({T}:absence_reasons; without that key, only
 * "medical") or needs a proof and document_id is missing. */
int gch_absence_plan(gch_absence_t **out, const gch_town_t *t,
    const gch_family_t *f, const char *bid, const char *reason,
    const char *doc, int64_t now_ms, const gch_alloc_t *a,
    gch_error_t *err);
const gch_cmds_t *gch_absence_next(gch_absence_t *j);
int gch_absence_on_reply(gch_absence_t *j, const redisReply *exec);
int gch_absence_status(const gch_absence_t *j);
const char *gch_absence_body(const gch_absence_t *j, size_t *len);
void gch_absence_free(gch_absence_t *j);


/* ------------------------------------------------------------------ */
/* read endpoints (render.c)                                            */

/* GET /api/me and GET /api/activities: no Redis.  *out from a. */
int gch_render_me(const gch_town_t *t, const gch_family_t *f,
    const gch_alloc_t *a, char **out, size_t *len);
int gch_render_activities(const gch_town_t *t, const gch_alloc_t *a,
    char **out, size_t *len);

/*
 * GET /api/activities/{id}/sessions?from=&to= and GET /api/bookings?from=&to=
 * need one MULTI/EXEC of reads: plan, send gch_view_cmds(), render with the
 * EXEC reply.  from/to may be NULL (today .. today + 31 days); a range of
 * more than 92 days or a bad date is GCH_EINVALID naming the parameter; an
 * unknown activity is GCH_ENOTFOUND.  The view points into t and f.
 */
typedef struct gch_view_s  gch_view_t;

int gch_sessions_plan(gch_view_t **out, const gch_town_t *t,
    const char *activity_id, size_t activity_len, const char *from,
    size_t from_len, const char *to, size_t to_len, int64_t now_ms,
    const gch_alloc_t *a, gch_error_t *err);
int gch_bookings_plan(gch_view_t **out, const gch_town_t *t,
    const gch_family_t *f, const char *from, size_t from_len,
    const char *to, size_t to_len, int64_t now_ms, const gch_alloc_t *a,
    gch_error_t *err);
/* GET /api/requests: the family's last 100 demandes, newest first. */
int gch_requests_plan(gch_view_t **out, const gch_town_t *t,
    const gch_family_t *f, int64_t now_ms, const gch_alloc_t *a,
    gch_error_t *err);
const gch_cmds_t *gch_view_cmds(gch_view_t *v);
int gch_view_render(gch_view_t *v, const redisReply *exec, char **out,
    size_t *len);
void gch_view_free(gch_view_t *v);

/* {"error":{"code","message"}} for err; *out from a. */
int gch_render_error(const gch_error_t *err, const gch_alloc_t *a,
    char **out, size_t *len);


/* ------------------------------------------------------------------ */
/* uploaded documents (sniff.c)                                        */

/* The media type of a document by its first bytes: "application/pdf",
 * "image/jpeg", "image/png" (static strings), or NULL for anything else.
 * Reads at most the first 16 of len bytes. */
const char *gch_sniff_document(const uint8_t *p, size_t len);

/* A file name safe to store and to send back, from len bytes of in (a
 * client's name, possibly a path): the last path segment, letters, digits,
 * '-', '_' and inner dots kept, runs of anything else turned into one '_',
 * "document" when nothing is left.  Writes at most size - 1 bytes and a
 * NUL into out (size > 0); returns the length written. */
size_t gch_filename_clean(const char *in, size_t len, char *out,
    size_t size);


/* ------------------------------------------------------------------ */
/* direct debit: IBAN, BIC, pain.008 (sepa.c)                          */

#define GCH_IBAN_MAX  34

/* The IBAN of len bytes of in (spaces and '-' dropped, letters upper-
 * cased) into out with a NUL when it is one: letters and digits only,
 * 15..34 of them, country letters, check digits, the country's length for
 * SEPA countries and ISO 13616's mod-97 = 1.  Its length, or 0. */
size_t gch_iban_normalize(const char *in, size_t len,
    char out[GCH_IBAN_MAX + 1]);
/* 1 when the len bytes of s are a BIC (ISO 9362: AAAA CC LL [BBB], upper
 * case), else 0. */
int gch_bic_valid(const char *s, size_t len);

typedef struct {
    const char  *end_to_end_id;   /* the invoice, e.g. "FACT-42" */
    const char  *mandate_id;      /* RUM */
    const char  *mandate_date;    /* "YYYY-MM-DD", signature */
    const char  *debtor_name;
    const char  *debtor_iban;
    const char  *debtor_bic;
    int64_t      amount_cents;    /* > 0 */
    const char  *remittance;      /* unstructured, shown to the debtor */
} gch_sepa_tx_t;

typedef struct {
    const char           *msg_id;          /* unique per file, <= 35 */
    const char           *created_at;      /* "YYYY-MM-DDTHH:MM:SS" */
    const char           *collection_date; /* "YYYY-MM-DD" */
    const char           *creditor_name;
    const char           *creditor_iban;
    const char           *creditor_bic;
    const char           *creditor_id;     /* ICS, e.g. FR12ZZZ123456 */
    const gch_sepa_tx_t  *tx;
    size_t                ntx;             /* >= 1 */
} gch_sepa_doc_t;

/* The pain.008.001.02 file (one PmtInf, CORE, RCUR) of d, every text
 * XML-escaped, control sum and count computed: GCH_OK and *out (NUL-
 * terminated, *len bytes, freed with a), GCH_EINVALID (err says which
 * IBAN, BIC, amount or over-long text -- ids and mandates 35 bytes, names
 * 70, remittance 140 -- is wrong; nothing allocated) or GCH_ENOMEM. */
int gch_sepa_pain008(const gch_sepa_doc_t *d, const gch_alloc_t *a,
    char **out, size_t *len, gch_error_t *err);


/* ------------------------------------------------------------------ */
/* throttling: login attempts, a family's bookings (throttle.c)        */

/*
 * The policy only (docs/reliability.md, "Security"); the module keeps the
 * counters in Redis and asks these functions what to do with them.
 *
 * Login attempts are counted before the password is checked (INCR then
 * EXPIRE NX, the returned value compared here), so that a burst of
 * concurrent guesses is refused before it costs a hash:
 *
 *   pair  attempts of one login from one client address since the last
 *         success (window GCH_LOGIN_PAIR_WINDOW_S from the first one);
 *         the first GCH_LOGIN_FREE - 1 go through, from the
 *         GCH_LOGIN_FREE-th on each attempt must take a pause slot (SET
 *         NX EX, one holder at a time) lasting GCH_LOGIN_PAUSE_S doubled
 *         at each attempt, at most GCH_LOGIN_PAUSE_MAX_S: the owner who
 *         mistyped is slowed, never locked out, and nobody else's address
 *         slows them;
 *   addr  unsuccessful attempts from one client address, whatever the
 *         login (a success gives its attempt back), at most
 *         GCH_LOGIN_ADDR_MAX per GCH_LOGIN_ADDR_WINDOW_S: a hard limit.
 */
#define GCH_LOGIN_FREE            5
#define GCH_LOGIN_PAIR_WINDOW_S   3600
#define GCH_LOGIN_PAUSE_S         15
#define GCH_LOGIN_PAUSE_MAX_S     900
#define GCH_LOGIN_ADDR_MAX        50
#define GCH_LOGIN_ADDR_WINDOW_S   900

#define GCH_LOGIN_GO      0     /* check the password */
#define GCH_LOGIN_PACE    1     /* check it only if the pause slot is free:
                                   SET <pause key> NX EX pause_s */
#define GCH_LOGIN_REFUSE  2     /* 429 rate_limited, Retry-After */

typedef struct {
    long long   pair;           /* INCR's answer, this attempt included */
    long long   addr;           /* INCR's answer, this attempt included */
    long long   addr_ttl;       /* TTL of the address counter, s (<= 0:
                                   none) */
} gch_login_counts_t;

typedef struct {
    int         action;         /* GCH_LOGIN_* */
    long long   pause_s;        /* GCH_LOGIN_PACE: the slot's lifetime */
    long long   retry_after_s;  /* GCH_LOGIN_REFUSE: >= 1 */
} gch_login_verdict_t;

/* Pure: the verdict for one attempt from its counters. */
void gch_login_throttle(const gch_login_counts_t *c, gch_login_verdict_t *v);
/* After GCH_LOGIN_PACE when another attempt holds the slot (TTL ttl
 * seconds, <= 0 if unknown): the Retry-After to answer, >= 1. */
long long gch_login_paused(const gch_login_verdict_t *v, long long ttl);

/*
 * A family's bookings: every request that reaches Redis (step one) is
 * charged GCH_FAMILY_REQUEST_COST plus its number of items against a
 * budget of GCH_FAMILY_BUDGET per window of GCH_FAMILY_WINDOW_S that
 * starts with the window's first request; beyond, 429 rate_limited
 * before step one, nothing written to Redis and nothing kept (the nginx
 * module reads whether Redis knows the Idempotency-Key: a known one goes
 * on to step one, which replays its answer).  The caller
 * keeps the counts (the nginx module: a shared memory zone, one host's
 * workers; docs/directives.md, guichet_budget_zone) and asks
 * gch_family_charge().  The answers of wholly refused requests are kept
 * GCH_REFUSED_TTL_S instead of guichet_idempotency_ttl
 * (gch_book_in_t.refused_ttl_s).
 */
#define GCH_FAMILY_REQUEST_COST   10
#define GCH_FAMILY_BUDGET         6000
#define GCH_FAMILY_WINDOW_S       60
#define GCH_REFUSED_TTL_S         600

/* One family's window, kept by the caller (zeroed: no window yet). */
typedef struct {
    int64_t     start_ms;       /* the window's first request, Unix ms */
    long long   spent;          /* what its requests cost, refused ones
                                   included */
} gch_family_budget_t;

/* What one request of nitems costs. */
long long gch_family_cost(size_t nitems);
/* Pure: 0 when a family whose counter reads spent (this request included)
 * may go on; else the Retry-After (>= 1 s) of its 429, from the seconds
 * ttl left in its window (<= 0: unknown, the whole window). */
long long gch_family_throttle(long long spent, long long ttl);
/* Pure: charges one request of nitems at now_ms to fb (a new window when
 * the last one is over); 0 when it may go on, else the Retry-After (>= 1
 * s, the window's seconds left, rounded up) of its 429.  A refused request
 * is charged too, as it was when the counter was in Redis (INCRBY). */
long long gch_family_charge(gch_family_budget_t *fb, size_t nitems,
    int64_t now_ms);
/* Pure: 1 when fb's window is over at now_ms (the caller may forget it). */
int gch_family_window_over(const gch_family_budget_t *fb, int64_t now_ms);


#endif /* GCH_H */
