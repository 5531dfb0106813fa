/*
 * gchb.h -- what the back-end programs share (backend/, libgchb.a).
 *
 * guichet-worker, guichetctl and guichet-office all link build/libgchb.a:
 * settings (conf.c, one table), logging, clocks, files, the token secret
 * and the Redis connection (util.c), the PostgreSQL connection and the
 * migration runner (db.c), a growable buffer (buf.c); and the two pieces
 * of Guichet that more than one program runs: monthly invoices
 * (invoice.c) and the publication of a staff account's change (staff.c).
 * Nothing here includes the worker's, guichetctl's or the office's
 * headers.
 */

#ifndef GCHB_H
#define GCHB_H

#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>
#include <libpq-fe.h>

#include <gch.h>
#include <gch_keys.h>                   /* the Redis key names */


/*
 * PostgreSQL advisory lock keys, all here so that no two uses share one by
 * accident.  Transaction-level (pg_advisory_xact_lock) unless said.
 */
#define GCHB_LOCK_MIGRATE  "7310041"    /* guichetctl migrate */
#define GCHB_LOCK_INVOICE  "7310042"    /* invoicing and town loading */
#define GCHB_LOCK_SEPA     "7310043"    /* SEPA direct-debit files */
#define GCHB_LOCK_PERSIST  "7310044"    /* one persister batch at a time */
#define GCHB_LOCK_CREDIT   "7310045"    /* credit note and refund numbers */
#define GCHB_LOCK_PUBLISH  "7567061716" /* publication; session-level */


/* ------------------------------------------------------------------ */
/* the layout before towns (migrate.c)                                 */

/*
 * Renames every Redis key of the layout before towns ("gch:*", "{f:*",
 * "{s:*", "{c:*") to its name in town's layout (migrate.c says which);
 * idempotent, safe to interrupt and run again; no value is lost.
 * Logs what it did (nothing when there was nothing to do).  *renamed (if
 * not NULL) gets the count; 0, or -1 after logging a Redis error.
 */
int gchb_migrate_keys(redisContext *rc, const char *town, long *renamed);
/*
 * The on-site counters of the layout before issue 20's fifth pass,
 * {T}:s:<sid>:onsite, added into the u32 at bit 32 of {T}:s:<sid>:left
 * (gch_keys.h) and deleted, for town: one SCAN, a MULTI under WATCH per
 * batch; idempotent, safe to interrupt and run again, and run again
 * after a module of the old layout wrote such a key again.  Logs what it
 * did; *merged (if not NULL) gets the count; 0 all merged, 1 some left
 * for a later run (their sessions kept moving under a rush: safe, the
 * layout before still reads right), or -1 after logging a Redis error.
 */
int gchb_merge_counters(redisContext *rc, const char *town, long *merged);
/*
 * The same for one session sid of town, its old {T}:s:<sid>:onsite (if
 * any) added into bit 32 of its :left and deleted, under WATCH (ten
 * tries): what a publication shifting that session's on-site quota does
 * first (counters.c).  0 merged or nothing to merge, 1 the session kept
 * moving (nothing merged), -1 after logging a Redis error.
 */
int gchb_merge_counter(redisContext *rc, const char *town, const char *sid);
/* The new name of one old key (len bytes) into out: its length, 0 when
 * the key is not of the old layout, -1 when out is too small. */
int gchb_migrate_name(const char *town, const char *key, size_t len,
    char *out, size_t size);


/* ------------------------------------------------------------------ */
/* settings (conf.c)                                                   */

typedef struct {
    char   *town;                /* the town this process serves */
    char   *redis;
    char   *redis_password;
    char   *redis_cluster;
    char   *postgres;
    char   *secret_file;
    char   *migrations_dir;
    char   *consumer;
    int     batch_size;
    int     batch_wait_ms;
    int     batch_gather_ms;     /* a busy stream's batches read this
                                    far apart (docs/worker.md) */
    int     reap_after_ms;
    int     recount_after_ms;
    int     draw_settle_ms;      /* a draw waits this long after its
                                    opening (docs/worker.md) */
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
    char   *town_site_url;       /* another town's: "{town}" its id */
    char   *payfip_url;
    char   *payfip_client;
    char   *sepa_creditor_name;
    char   *sepa_creditor_iban;
    char   *sepa_creditor_bic;
    char   *sepa_creditor_id;
} gchb_conf_t;

/*
 * Fills *conf with the defaults, then the settings of file (NULL: defaults
 * only).  Strings in *conf are malloc'ed and owned by conf; release them
 * with gchb_conf_free().  Returns 0, or -1 after logging the file, line and
 * reason (unknown key, bad value); *conf then holds nothing to free.
 */
int gchb_conf_load(gchb_conf_t *conf, const char *file);
/*
 * The town this process is serving now (setting "town", default "main"),
 * the first argument of every Redis key (gch_keys.h).  Set by a
 * successful gchb_conf_load(); the setting is refused unless it is a town
 * id ([a-z0-9-]{1,40}).  guichetctl --town, the worker (each town of the
 * database in turn) and guichet-office (each request's town) change it
 * with gchb_town_set() (an id already checked), together with the
 * PostgreSQL schema (gchb_pg_town).
 */
extern char  gchb_town[];
void gchb_town_set(const char *id);

/* The town's global keys, whole, for the commands sent as argv. */
#define GCHB_KEY_MAX  (GCH_TOWN_ID_MAX + 32)

typedef struct {
    char  catalogue[GCHB_KEY_MAX];
    char  catalogue_version[GCHB_KEY_MAX];
    char  seq_demande[GCHB_KEY_MAX];
    char  stream[GCHB_KEY_MAX];
    char  stream_dead[GCHB_KEY_MAX];
    char  staff[GCHB_KEY_MAX];
    char  logins[GCHB_KEY_MAX];
    char  absence_reasons[GCHB_KEY_MAX];
    char  f[GCHB_KEY_MAX];       /* "{T}:f:", before a family's id */
    size_t  f_len;
} gchb_keys_t;

extern gchb_keys_t  gchb_keys;
void gchb_conf_free(gchb_conf_t *conf);
/*
 * The settings file to read when the program was given given (-c FILE, may
 * be NULL): given, else $GUICHET_CONF, else <checkout>/var/worker.conf when
 * the program runs from <checkout>/build/ and the file exists (make run
 * writes it), or GCHB_CONF_INSTALLED when it runs from /usr/sbin/ (the
 * package guichet) and that file exists, else NULL (the built-in
 * defaults).  The string is given, the environment's or static storage.
 */
#define GCHB_CONF_INSTALLED  "/etc/guichet/guichet.conf"
const char *gchb_conf_find(const char *given);
/* The file the last successful gchb_conf_load read, NULL for none: the
 * connection errors name it. */
const char *gchb_conf_source(void);
/* "settings from FILE" or "no settings file: the built-in defaults, give
 * -c FILE or set GUICHET_CONF", for the connection errors. */
const char *gchb_conf_note(void);
/* Writes "key = value" lines of every setting to stdout (guichetctl). */
void gchb_conf_dump(const gchb_conf_t *conf);


/* ------------------------------------------------------------------ */
/* logging and helpers (util.c)                                        */

void gchb_log_init(const char *program);
/* One line on stderr: time, level, program, message. */
void gchb_log(const char *level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

int64_t gchb_now_ms(void);
void gchb_sleep_ms(int ms);

/* Reads a whole file; *out is malloc'ed (NUL-terminated) and owned by the
 * caller.  -1 with errno set on failure. */
int gchb_read_file(const char *path, char **out, size_t *len);

/* Secret file: 64 hex characters (optional trailing newline) or 32 raw
 * bytes.  0 or -1 after logging. */
int gchb_secret_read(const char *path, uint8_t secret[GCH_SECRET_LEN]);
/* Creates path (mode 0600, refuses to overwrite) with 64 fresh hex
 * characters and a newline.  0 or -1 after logging. */
int gchb_secret_create(const char *path);

/* Connects to conf->redis ("host:port" or "unix:/path"), sends AUTH when
 * redis_password is set; or, when conf->redis_cluster names seed nodes,
 * to that Redis Cluster through gchb_cluster_open().  The caller owns
 * the context (redisFree).  NULL after logging, and NULL while Redis is
 * still loading its data after a restart (LOADING; logged once every
 * 10 s at most): the caller retries later, as when Redis is down. */
redisContext *gchb_redis_connect(const gchb_conf_t *conf);
/* The same for a command line tool (guichetctl): while Redis loads its
 * data, waits, with one progress line on stderr (updated in place on a
 * terminal, else repeated every 30 s at most), then returns the
 * connection. */
redisContext *gchb_redis_connect_wait(const gchb_conf_t *conf);
/* The Redis the settings name, for messages: redis_cluster's seeds when
 * set, else redis. */
const char *gchb_redis_name(const gchb_conf_t *conf);


/* ------------------------------------------------------------------ */
/* Redis Cluster (cluster.c)                                           */

/*
 * A connection to the Redis Cluster of conf->redis_cluster ("host:port,
 * host:port..." seed nodes): an ordinary redisContext whose commands a
 * routing thread sends to the master of their slot (MULTI ... EXEC whole,
 * following MOVED and ASK, one connection per node), so that callers use
 * it as a connection to one Redis.  A node lost closes the connection, as
 * a Redis going down does.  redisFree() ends the thread (joined at the
 * next gchb_cluster_open() or at exit; at exit the threads still running
 * are ended first, so nothing is left allocated).  SIGPIPE is set
 * to be ignored when it was not handled.  NULL after logging when no seed
 * answered CLUSTER SLOTS.  Called by gchb_redis_connect(); see cluster.c.
 */
redisContext *gchb_cluster_open(const gchb_conf_t *conf);


/* ------------------------------------------------------------------ */
/* growable buffer (buf.c)                                              */

/* Zeroed means empty: gchb_buf_t b = { 0 }. */
typedef struct {
    char    *data;               /* malloc'ed, NUL-terminated; NULL empty */
    size_t   len;
    size_t   cap;
    int      failed;             /* an allocation failed: sticky */
} gchb_buf_t;

/* Appends s[0..n) and a NUL after it.  0, or -1 when out of memory now or
 * before (b->failed): nothing more is added.  b->data is the owner's, to
 * release with gchb_buf_free() or free(). */
int gchb_buf_add(gchb_buf_t *b, const char *s, size_t n);
/* Room for n more bytes and the NUL after them: b->data + b->len can then
 * be written up to n bytes (the writer moves b->len and puts the NUL).
 * 0, or -1 as gchb_buf_add(). */
int gchb_buf_reserve(gchb_buf_t *b, size_t n);
/* Releases the bytes; b is empty again. */
void gchb_buf_free(gchb_buf_t *b);


/* ------------------------------------------------------------------ */
/* PostgreSQL (db.c)                                                    */

/* NULL after logging; the caller owns the connection (PQfinish). */
PGconn *gchb_pg_connect(const gchb_conf_t *conf);
/* Runs sql (no parameters) and checks its status; 0, or -1 after logging.
 * The result is cleared. */
int gchb_pg_exec(PGconn *pg, const char *sql);
/* Applies every NNNN_*.sql of dir not yet in schema_migrations, in order,
 * each in one transaction with its row.  0 or -1 (nothing of the failing
 * migration is left). *applied counts the new ones. */
int gchb_migrate(PGconn *pg, const char *dir, int *applied);


/* ------------------------------------------------------------------ */
/* the catalogue's tables and PostgreSQL arrays (catalogue.c)           */

/*
 * Upserts the town's units, activities, price bands and sessions (units
 * and every activity when only is NULL: load-town; else the activity of
 * that id alone, its sessions and bands: guichet-office), deleting the
 * bands beyond the town's and the sessions gone from it that no booking
 * points at.  Inside the caller's transaction; *changed counts the rows
 * touched.  0, or -1 after logging.
 */
int gchb_catalogue_store(PGconn *pg, const gch_town_t *t, const char *only,
    long *changed);
/* "none", "working_days", "hours", "day_before_at" */
const char *gchb_deadline_kind(gch_deadline_kind_t k);

/* A PostgreSQL array literal under construction, {"a","b",NULL,...};
 * zeroed means empty.  A failed allocation is sticky: _end gives NULL. */
typedef struct {
    gchb_buf_t   buf;
    size_t       n;
} gchb_arr_t;

void gchb_arr_str(gchb_arr_t *a, const char *s);   /* NULL: NULL */
void gchb_arr_int(gchb_arr_t *a, long long v);
void gchb_arr_day(gchb_arr_t *a, gch_day_t d);
/* Closes the literal: its text, or NULL when out of memory. */
const char *gchb_arr_end(gchb_arr_t *a);
void gchb_arr_free(gchb_arr_t *a, size_t n);
/* Runs sql with n closed parameters (or any text); adds the rows it
 * touched to *changed.  0, or -1 after logging (what: the table). */
int gchb_arr_exec_raw(PGconn *pg, const char *what, const char *sql,
    const char **params, int n, long *changed);
/* The same with n arrays, closed here (gchb_arr_end). */
int gchb_arr_exec(PGconn *pg, const char *what, const char *sql,
    gchb_arr_t *arr, int n, long *changed);
/*
 * The seed of each activity of t that opens by draw (issue 23,
 * docs/rules.md "Opening by draw"): the one stored in draw_seed the first
 * time the activity was stored -- its own "seed" or 32 random bytes in
 * hex -- and never another after, so that the seed published before the
 * entries stays the draw's.  Sets each act->draw_seed to a copy in
 * seeds[i] (t->nactivities slots, zeroed; the caller frees each).
 * Inside the caller's transaction.  0 or -1 after logging.
 */
int gchb_draw_seeds(PGconn *pg, gch_town_t *t, char **seeds);


/* ------------------------------------------------------------------ */
/* towns in PostgreSQL (towns.c)                                        */

/*
 * Each town's rows live in its own schema, "town_<id>" ('-' written '_'),
 * listed in public.platform_town (docs/architecture.md, "Towns in
 * PostgreSQL"); a connection serves one town at a time: its search_path.
 */
#define GCHB_SCHEMA_MAX  (GCH_TOWN_ID_MAX + 6)
#define GCHB_TOWNS_MAX   256             /* served by one worker */
void gchb_town_schema(const char *town, char out[GCHB_SCHEMA_MAX]);
/* The connection's search_path set to town's schema, and gchb_town set
 * too: 0; 1 when the database has no such town; -1 after logging. */
int gchb_pg_town(PGconn *pg, const char *town);
/* The towns of the database, ordered, into ids (at most max): how many,
 * 0 when the database has none yet (nor the table), or -1 after logging. */
int gchb_pg_towns(PGconn *pg, char (*ids)[GCH_TOWN_ID_MAX + 1], int max);
/*
 * guichetctl migrate: a database of the layout before towns (the tables in
 * public) has them moved into the schema of the town legacy (the
 * configured one, whose file was loaded); town (NULL: none) is created
 * when absent (the first town becomes the database's default search_path,
 * for psql); then every town's schema gets the migrations it lacks.
 * *applied: how many were applied in all.  0, or -1 after logging.
 */
int gchb_migrate_towns(PGconn *pg, const char *dir, const char *legacy,
    const char *town, int *applied);



/* ------------------------------------------------------------------ */
/* monthly invoices (invoice.c)                                         */

/* UTF-8 to WinAnsi (CP1252), the encoding of libharu's base-14 fonts
 * (the invoices' PDFs, guichet-office's daily lists); a character it
 * lacks becomes '?'.  out holds n bytes. */
void gchb_cp1252(char *out, size_t n, const char *in);

/*
 * Invoices month ("YYYY-MM"): creates, in one transaction, an invoice per
 * family with billable bookings that month and no invoice for it yet
 * (*created counts them), writes the missing PDFs under
 * conf->invoice_dir, then (rc not NULL) publishes {T}:f:<fid>:invoices of
 * the families invoiced that month.  0, or -1 after logging (nothing of
 * the transaction is left when it failed).
 */
int gchb_invoice_run(PGconn *pg, redisContext *rc, const gchb_conf_t *conf,
    const char *month, int *created);
/* SET {T}:f:<fid>:invoices <JSON array> for the families invoiced in month
 * ("YYYY-MM-01"), or every family with an invoice (month NULL).  The
 * number of families, or -1 after logging. */
int gchb_invoice_publish(PGconn *pg, redisContext *rc, const char *month);
/* The same, for family_id alone (NULL: every family) after one of its
 * invoices was paid (guichet-office) or debited. */
int gchb_invoice_publish_family(PGconn *pg, redisContext *rc,
    const char *month, const char *family_id);
/* The worker's schedule: on day conf->invoice_day of the month (town time
 * zone), invoices the previous month unless it is last ("YYYY-MM", "" at
 * start), then sets last.  0 (nothing to do or done), -1 after logging. */
int gchb_invoice_schedule(PGconn *pg, redisContext *rc,
    const gchb_conf_t *conf, char last[8]);


/* ------------------------------------------------------------------ */
/* staff accounts (staff.c)                                             */

/* A staff account changed (issue 18): role non-NULL, it is active with a
 * new password ({T}:staff[login] = role); NULL, it is deactivated (HDEL).
 * Either way its tokens recorded in {T}:staff:<login>:tokens end (into
 * {T}:revoked until they expire; {T}:revoked:gen moves).  0, or -1 after
 * logging the Redis error. */
int gchb_staff_changed(redisContext *rc, const char *login,
    const char *role);


#endif /* GCHB_H */
