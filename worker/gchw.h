/*
 * gchw.h -- shared declarations of guichet-worker and guichetctl.
 *
 * Both programs link the same objects: settings (conf.c), logging and
 * small helpers (util.c), PostgreSQL helpers and migrations (db.c),
 * catalogue publication to Redis (publish.c), town loading (load.c), the
 * stream persister (persist.c) and the orphan reaper (reaper.c).  The
 * engine (libgch.a, engine/include/gch.h) parses town files and makes
 * tokens; nothing here parses a town file by hand.
 */

#ifndef GCHW_H
#define GCHW_H

#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>
#include <libpq-fe.h>

#include <gch.h>


#define GCHW_STREAM      "gch:bookings"
#define GCHW_GROUP       "persist"
#define GCHW_DEAD        "gch:bookings:dead"


/*
 * PostgreSQL advisory lock keys, all here so that no two uses share one by
 * accident.  Transaction-level (pg_advisory_xact_lock) unless said.
 */
#define GCHW_LOCK_MIGRATE  "7310041"    /* guichetctl migrate */
#define GCHW_LOCK_INVOICE  "7310042"    /* invoicing and town loading */
#define GCHW_LOCK_SEPA     "7310043"    /* SEPA direct-debit files */
#define GCHW_LOCK_PERSIST  "7310044"    /* one persister batch at a time */
#define GCHW_LOCK_PUBLISH  "7567061716" /* publication; session-level */


/* ------------------------------------------------------------------ */
/* settings (conf.c)                                                   */

typedef struct {
    char   *redis;
    char   *redis_password;
    char   *postgres;
    char   *secret_file;
    char   *migrations_dir;
    char   *consumer;
    int     batch_size;
    int     batch_wait_ms;
    int     reap_after_ms;
    int     recount_after_ms;
    int     heartbeat_ms;
    int     claim_idle_ms;
    int     publish_interval_ms;
    int     max_attempts;
    int     stream_keep_ms;
    char   *invoice_dir;
    int     invoice_day;
    char   *smtp;
    char   *smtp_from;
    int     smtp_max_attempts;
    int     smtp_retry_ms;
    char   *office_listen;
    char   *office_upload_dir;
    int     office_upload_max;
    int     office_documents_max;
    int     office_documents_bytes_max;
    char   *office_socket_mode;
    char   *office_socket_group;
    int     office_hash_threads;
    int     token_ttl_s;
    char   *site_url;
    char   *payfip_url;
    char   *payfip_client;
    char   *sepa_creditor_name;
    char   *sepa_creditor_iban;
    char   *sepa_creditor_bic;
    char   *sepa_creditor_id;
} gchw_conf_t;

/*
 * Fills *conf with the defaults, then the settings of file (NULL: defaults
 * only).  Strings in *conf are malloc'ed and owned by conf; release them
 * with gchw_conf_free().  Returns 0, or -1 after logging the file, line and
 * reason (unknown key, bad value); *conf then holds nothing to free.
 */
int gchw_conf_load(gchw_conf_t *conf, const char *file);
void gchw_conf_free(gchw_conf_t *conf);
/*
 * The settings file to read when the program was given given (-c FILE, may
 * be NULL): given, else $GUICHET_CONF, else <checkout>/var/worker.conf when
 * the program runs from <checkout>/build/ and the file exists (make run
 * writes it), else NULL (the built-in defaults).  The string is given, the
 * environment's or static storage.
 */
const char *gchw_conf_find(const char *given);
/* The file the last successful gchw_conf_load read, NULL for none: the
 * connection errors name it. */
const char *gchw_conf_source(void);
/* "settings from FILE" or "no settings file: the built-in defaults, give
 * -c FILE or set GUICHET_CONF", for the connection errors. */
const char *gchw_conf_note(void);
/* Writes "key = value" lines of every setting to stdout (guichetctl). */
void gchw_conf_dump(const gchw_conf_t *conf);


/* ------------------------------------------------------------------ */
/* logging and helpers (util.c)                                        */

void gchw_log_init(const char *program);
/* One line on stderr: time, level, program, message. */
void gchw_log(const char *level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

int64_t gchw_now_ms(void);
void gchw_sleep_ms(int ms);

/* Reads a whole file; *out is malloc'ed (NUL-terminated) and owned by the
 * caller.  -1 with errno set on failure. */
int gchw_read_file(const char *path, char **out, size_t *len);

/* Secret file: 64 hex characters (optional trailing newline) or 32 raw
 * bytes.  0 or -1 after logging. */
int gchw_secret_read(const char *path, uint8_t secret[GCH_SECRET_LEN]);
/* Creates path (mode 0600, refuses to overwrite) with 64 fresh hex
 * characters and a newline.  0 or -1 after logging. */
int gchw_secret_create(const char *path);

/* Connects to conf->redis ("host:port" or "unix:/path"), sends AUTH when
 * redis_password is set.  The caller owns the context (redisFree).  NULL
 * after logging, and NULL while Redis is still loading its data after a
 * restart (LOADING; logged once every 10 s at most): the caller retries
 * later, as when Redis is down. */
redisContext *gchw_redis_connect(const gchw_conf_t *conf);
/* The same for a command line tool (guichetctl): while Redis loads its
 * data, waits, with one progress line on stderr (updated in place on a
 * terminal, else repeated every 30 s at most), then returns the
 * connection. */
redisContext *gchw_redis_connect_wait(const gchw_conf_t *conf);


/* ------------------------------------------------------------------ */
/* PostgreSQL (db.c)                                                    */

/* NULL after logging; the caller owns the connection (PQfinish). */
PGconn *gchw_pg_connect(const gchw_conf_t *conf);
/* Runs sql (no parameters) and checks its status; 0, or -1 after logging.
 * The result is cleared. */
int gchw_pg_exec(PGconn *pg, const char *sql);
/* Applies every NNNN_*.sql of dir not yet in schema_migrations, in order,
 * each in one transaction with its row.  0 or -1 (nothing of the failing
 * migration is left). *applied counts the new ones. */
int gchw_migrate(PGconn *pg, const char *dir, int *applied);


/* ------------------------------------------------------------------ */
/* publication (publish.c)                                              */

/*
 * Publishes PostgreSQL's catalogue to Redis: per session SET NX of the
 * places counter (places_online minus confirmed bookings), delta-adjusts
 * counters whose places_online changed since the last publication, the
 * logins hash, gch:catalogue and, last, INCR gch:catalogue:gen.  With
 * rebuild set (Redis lost its data), counters are SET unconditionally and
 * the bookings' sets, claims, family plannings and gch:seq:demande are
 * rebuilt from PostgreSQL first.  0, or -1 after logging.
 */
int gchw_publish(PGconn *pg, redisContext *rc, int rebuild);

/*
 * Called every publish_interval_ms by the worker: publishes when the
 * catalogue version in PostgreSQL differs from gch:catalogue:version, and
 * rebuilds when gch:catalogue:gen is missing.  0 (nothing or done), or -1.
 */
int gchw_publish_check(PGconn *pg, redisContext *rc);
/* A staff account changed (issue 18): role non-NULL, it is active with a
 * new password (gch:staff[login] = role); NULL, it is deactivated (HDEL).
 * Either way its tokens recorded in {f:staff:<login>}:tokens end (into
 * gch:revoked until they expire; gch:revoked:gen moves).  0, or -1 after
 * logging the Redis error. */
int gchw_staff_changed(redisContext *rc, const char *login,
    const char *role);


/* ------------------------------------------------------------------ */
/* catalogue overlay (overlay.c)                                        */

/*
 * Lays PostgreSQL's facts over the stored catalogue json (len bytes):
 * per family, enrolments from the enrolment table (town file's and the
 * office's, with their status), the town's documents plus the accepted,
 * unexpired rows of the document table, the town's unpaid_invoices plus
 * the family's unpaid invoices past their due date, family.direct_debit.
 * 0 and *out (malloc'ed, NUL-terminated, *out_len bytes, the caller
 * frees it), or -1 after logging (*out NULL).
 */
int gchw_overlay(PGconn *pg, const char *json, size_t len, char **out,
    size_t *out_len);


/* ------------------------------------------------------------------ */
/* load-town (load.c)                                                   */

/*
 * Parses the town file with the engine and upserts it in one transaction.
 * 0, 1 when it changed nothing, or -1 after printing the engine's message
 * (nothing written).  Unless replace is set, a file of another town (its
 * name differs from the loaded town's) or one that drops families that
 * have bookings is refused (-1, the reason printed, nothing written).
 */
int gchw_load_town(PGconn *pg, const char *path, int replace);


/* ------------------------------------------------------------------ */
/* persistence of the stream (persist.c)                                */

typedef struct gchw_persist_s  gchw_persist_t;

/* Owns nothing of conf (it must outlive the persister). */
gchw_persist_t *gchw_persist_new(const gchw_conf_t *conf);
void gchw_persist_free(gchw_persist_t *p);
/* XGROUP CREATE gch:bookings persist 0 MKSTREAM (BUSYGROUP ignored). */
int gchw_persist_group(redisContext *rc);
/*
 * One round: claim idle entries of dead consumers, read up to batch_size
 * new ones (blocking batch_wait_ms), write them in one transaction, XACK
 * after COMMIT.  Returns the number of entries persisted (>= 0), -1 on a
 * Redis error, -2 on a PostgreSQL error (nothing acknowledged; the caller
 * backs off and reconnects).
 */
int gchw_persist_round(gchw_persist_t *p, redisContext *rc, PGconn *pg);
/* The next round reads this consumer's pending list from its start: after
 * a new connection to Redis (an XACK lost with the old one leaves
 * committed entries pending, which would otherwise wait claim_idle_ms for
 * XAUTOCLAIM). */
void gchw_persist_reread(gchw_persist_t *p);
/* now minus the time of the oldest pending or undelivered entry, 0 when
 * caught up, -1 on a Redis error. */
int64_t gchw_persist_lag(redisContext *rc);
/* XLEN gch:bookings:dead (entries that failed max_attempts times), -1 on a
 * Redis error. */
long long gchw_persist_dead(redisContext *rc);
/*
 * XTRIM gch:bookings MINID m, m = the smallest of: the group's oldest
 * pending entry, its last delivered entry, now - keep_ms.  Nothing not yet
 * acknowledged is ever trimmed.  keep_ms 0: never trims.  Returns the
 * number of entries trimmed, or -1 after logging.
 */
long long gchw_persist_trim(redisContext *rc, int keep_ms);


/* ------------------------------------------------------------------ */
/* monthly invoices (invoice.c)                                         */

/*
 * Invoices month ("YYYY-MM"): creates, in one transaction, an invoice per
 * family with billable bookings that month and no invoice for it yet
 * (*created counts them), writes the missing PDFs under
 * conf->invoice_dir, then (rc not NULL) publishes {f:<fid>}:invoices of
 * the families invoiced that month.  0, or -1 after logging (nothing of
 * the transaction is left when it failed).
 */
int gchw_invoice_run(PGconn *pg, redisContext *rc, const gchw_conf_t *conf,
    const char *month, int *created);
/* SET {f:<fid>}:invoices <JSON array> for the families invoiced in month
 * ("YYYY-MM-01"), or every family with an invoice (month NULL).  The
 * number of families, or -1 after logging. */
int gchw_invoice_publish(PGconn *pg, redisContext *rc, const char *month);
/* The same, for family_id alone (NULL: every family) after one of its
 * invoices was paid (guichet-office) or debited. */
int gchw_invoice_publish_family(PGconn *pg, redisContext *rc,
    const char *month, const char *family_id);
/* The worker's schedule: on day conf->invoice_day of the month (town time
 * zone), invoices the previous month unless it is last ("YYYY-MM", "" at
 * start), then sets last.  0 (nothing to do or done), -1 after logging. */
int gchw_invoice_schedule(PGconn *pg, redisContext *rc,
    const gchw_conf_t *conf, char last[8]);


/* ------------------------------------------------------------------ */
/* SEPA direct-debit export (sepa.c)                                    */

/*
 * guichetctl sepa-export: writes the pain.008 file of month ("YYYY-MM")
 * to out (NULL: stdout): the month's unpaid invoices of families with an
 * active mandate, in ONE transaction that records the export
 * (sepa_export, unique per month) and marks those invoices paid by
 * direct debit.  A month already exported writes nothing and returns 1
 * after saying so on stderr.  0, 1, or -1 after logging (nothing left).
 */
int gchw_sepa_export(PGconn *pg, redisContext *rc, const gchw_conf_t *conf,
    const char *month, const char *out, const char *by);


/* ------------------------------------------------------------------ */
/* e-mail outbox (mail.c)                                               */

/*
 * Sends up to max pending e-mails of the outbox by SMTP (conf->smtp, empty:
 * does nothing).  Each is claimed and marked sent in one transaction
 * before it is sent (at most once); a failure before the end of DATA puts
 * it back with a doubling delay.  Returns the number sent, or -1 on a
 * PostgreSQL error.
 */
int gchw_mail_send(PGconn *pg, const gchw_conf_t *conf, int max);


/* ------------------------------------------------------------------ */
/* guichetctl check (check.c)                                           */

/* Compares Redis with PostgreSQL (places taken per session, claims per
 * child), one line per difference on stdout.  The number of differences,
 * or -1 after logging. */
int gchw_check(PGconn *pg, redisContext *rc);
/* guichetctl recount SESSION...: schedules the reaper's recount of each
 * session whose booked set PostgreSQL confirms.  0, or 1 when one was not
 * scheduled (unknown, or its booked set differs) or on an error. */
int gchw_recount_schedule(PGconn *pg, redisContext *rc, char **sids, int n);


/* ------------------------------------------------------------------ */
/* reaper (reaper.c)                                                    */

typedef struct gchw_reaper_s  gchw_reaper_t;

/* The reaper keeps the catalogue parsed from gch:catalogue (re-read when
 * gch:catalogue:gen changes) to know each session's places_online. */
gchw_reaper_t *gchw_reaper_new(void);
void gchw_reaper_free(gchw_reaper_t *r);
/* Releases attempts of gch:inflight older than reap_after_ms (see
 * docs/architecture.md).  Returns the number reaped or -1 after logging. */
/* Moves unused on-site places online for activities whose
 * release_onsite_at has come (once per session).  0, or -1 on a Redis
 * error. */
int gchw_release_onsite(gchw_reaper_t *r, redisContext *rc, int64_t now_ms);
int gchw_reap(gchw_reaper_t *r, redisContext *rc, int64_t now_ms,
    int reap_after_ms, int recount_after_ms);


#endif /* GCHW_H */
