/*
 * gchw.h -- the worker's tasks (worker/, build/libgchw.a).
 *
 * guichet-worker runs them (main.c): catalogue publication to Redis
 * (publish.c, overlay.c), the stream persister (persist.c), the orphan
 * reaper (reaper.c), the e-mail outbox (mail.c).  guichetctl (ctl/) links
 * build/libgchw.a too, for `publish` and `check`.  Both link the back-end
 * library (settings, logging, connections, invoices: backend/gchb.h).
 * The engine (libgch.a, engine/include/gch.h) parses town files and makes
 * tokens; nothing here parses a town file by hand.
 */

#ifndef GCHW_H
#define GCHW_H

#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>
#include <libpq-fe.h>

#include <gch.h>

#include "gchb.h"


#define GCHW_STREAM      GCH_KEY_STREAM
#define GCHW_DEAD        GCH_KEY_STREAM_DEAD
/* between two attempts of a stream entry that failed on its own */
#define GCHW_RETRY_MS    1000


/* ------------------------------------------------------------------ */
/* publication (publish.c)                                              */

/*
 * Publishes PostgreSQL's catalogue to Redis: per session SET NX of the
 * places counter (places_online minus confirmed bookings), delta-adjusts
 * counters whose places_online changed since the last publication, the
 * logins hash, {T}:catalogue and, last, INCR {T}:catalogue:gen.  With
 * rebuild set (Redis lost its data), counters are SET unconditionally and
 * the bookings' sets, claims, family plannings and {T}:seq:demande are
 * rebuilt from PostgreSQL first.  0, or -1 after logging.
 */
int gchw_publish(PGconn *pg, redisContext *rc, int rebuild);

/*
 * Called every publish_interval_ms by the worker: publishes when the
 * catalogue version in PostgreSQL differs from {T}:catalogue:version, and
 * rebuilds when {T}:catalogue:gen is missing.  0 (nothing or done), or -1.
 */
int gchw_publish_check(PGconn *pg, redisContext *rc);


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
/* persistence of the stream (persist.c)                                */

typedef struct gchw_persist_s  gchw_persist_t;

/* Owns nothing of conf (it must outlive the persister). */
gchw_persist_t *gchw_persist_new(const gchb_conf_t *conf);
void gchw_persist_free(gchw_persist_t *p);
/*
 * One round: read up to batch_size entries after the persisted position
 * (XREAD, blocking batch_wait_ms), write them in one transaction that
 * moves the position (stream_position, migration 0050) to the last one.
 * After a read of fewer than batch_size entries, the next round reads
 * batch_gather_ms after it, sleeping meanwhile (at most its share of
 * batch_wait_ms a round, and returning 0).  Returns the number of
 * entries persisted (>= 0), -1 on a Redis error, -2 on a PostgreSQL error
 * (nothing written; the caller backs off and reconnects).
 */
int gchw_persist_round(gchw_persist_t *p, redisContext *rc, PGconn *pg);
/* The next round reads the position from PostgreSQL again (a new
 * connection: its last COMMIT may or may not have happened), and checks
 * the stream against it before reading (a new connection to Redis: the
 * stream may be another, see persist.c). */
void gchw_persist_reread(gchw_persist_t *p);
/* How long a round blocks waiting for new entries (ms >= 1; 0: the
 * setting batch_wait_ms): the worker shares batch_wait_ms between the
 * towns it serves. */
void gchw_persist_wait(gchw_persist_t *p, int ms);
/* The last stream id persisted, as this persister knows it (NULL until
 * read from PostgreSQL). */
const char *gchw_persist_position(gchw_persist_t *p);
/* -1, 0, 1 as a stream id "ms-seq" compares with b (stream.c). */
int gchw_id_cmp(const char *a, const char *b);
/* SELECT last_id FROM stream_position into out: 0, or -1 after logging. */
int gchw_position_read(PGconn *pg, char *out, size_t size);
/* now minus the time of the oldest stream entry after pos (the persisted
 * position), 0 when caught up, -1 on a Redis error or pos NULL. */
int64_t gchw_persist_lag(redisContext *rc, const char *pos);
/* XLEN {T}:stream:dead (entries that failed max_attempts times), -1 on a
 * Redis error. */
long long gchw_persist_dead(redisContext *rc);
/*
 * XTRIM {T}:stream MINID m, m = the smaller of: the id after pos (the
 * persisted position), now - keep_ms.  Nothing not yet persisted is ever
 * trimmed.  keep_ms 0 or pos NULL: trims nothing.  Returns the number of
 * entries trimmed, or -1 after logging.
 */
long long gchw_persist_trim(redisContext *rc, const char *pos, int keep_ms);

/* batch.c: what a batch holds, the statements of gchw_batch_write() it
 * needs */
#define GCHW_T_BOOK     0x01
#define GCHW_T_CANCEL   0x02
#define GCHW_T_ABSENCE  0x04
#define GCHW_T_VOID     0x08
#define GCHW_T_ALL      0xff
/* The stream position a batch moves (persist.c): stream ids, "from" the
 * one it was read after, "to" its last entry's.  The compare-and-set is
 * stream_position_move(from, to) (migration 0050), which raises SQLSTATE
 * GCHW_STALE when the position is no longer "from". */
typedef struct {
    const char  *from;
    const char  *to;
} gchw_position_t;
#define GCHW_STALE      "GCH01"
/* One entry of a batch: its field "d" as read from the stream (a
 * booking's compact demande, or a JSON object), and its GCHW_T_* type. */
typedef struct {
    const char  *d;
    size_t       len;
    int          type;
} gchw_entry_t;
/*
 * Writes the n entries in one transaction, with the statements their
 * types (GCHW_T_* bits, or'ed in types) need, and moves stream_position
 * from position->from (the id the entries were read after) to
 * position->to (the last one's) in it (NULL: no position).  0; -3 when
 * the position was not position->from (another worker persisted these
 * entries: nothing written, SQLSTATE GCHW_STALE); -1 when PostgreSQL
 * refused the data (SQLSTATE class 22 data exception or 23 integrity
 * constraint: the entry's own fault, the connection is fine); -2 on any
 * other error (connection lost, server shutting down, a missing table or
 * a bug of ours: not the entry's fault, never dead-lettered; the caller
 * backs off), or when memory is short.  PostgreSQL's message is copied to
 * err (errlen bytes).
 */
int gchw_batch_write(PGconn *pg, const gchw_entry_t *e, size_t n, int types,
    const gchw_position_t *position, char *err, size_t errlen);



/* ------------------------------------------------------------------ */
/* e-mail outbox (mail.c)                                               */

/*
 * Sends up to max pending e-mails of the outbox by SMTP (conf->smtp, empty:
 * does nothing).  Each is claimed and marked sent in one transaction
 * before it is sent (at most once); a failure before the end of DATA puts
 * it back with a doubling delay.  Returns the number sent, or -1 on a
 * PostgreSQL error.
 */
int gchw_mail_send(PGconn *pg, const gchb_conf_t *conf, int max);


/* ------------------------------------------------------------------ */
/* reaper (reaper.c, recount.c, release.c)                              */

typedef struct gchw_reaper_s  gchw_reaper_t;

/* The reaper keeps the catalogue parsed from {T}:catalogue (re-read when
 * {T}:catalogue:gen changes) to know each session's places_online. */
gchw_reaper_t *gchw_reaper_new(void);
void gchw_reaper_free(gchw_reaper_t *r);
/* Releases attempts of {T}:inflight older than reap_after_ms (see
 * docs/architecture.md).  Returns the number reaped or -1 after logging. */
/* Moves unused on-site places online for activities whose
 * release_onsite_at has come (once per session).  0, or -1 on a Redis
 * error. */
int gchw_release_onsite(gchw_reaper_t *r, redisContext *rc, int64_t now_ms);
int gchw_reap(gchw_reaper_t *r, redisContext *rc, int64_t now_ms,
    int reap_after_ms, int recount_after_ms);
/* The catalogue the reaper keeps (re-read when its generation changed)
 * and that generation; NULL when none is published or Redis failed. */
const gch_town_t *gchw_reaper_catalogue(gchw_reaper_t *r, redisContext *rc,
    long long *gen);
/* 1 the first time it is asked for this town's reaper (the promoter's
 * first turn in this worker), then 0. */
int gchw_reaper_first_turn(gchw_reaper_t *r);


/* ------------------------------------------------------------------ */
/* waiting lists' promotions (promote.c)                               */

/*
 * For each session of {T}:waiting with a place left online, books the
 * first child of its waiting list through the booking saga itself
 * (docs/architecture.md, "Waiting lists"): booked or no longer eligible,
 * the entry leaves the list; refused full (a fresh request took the
 * place first), it stays first.  Returns the number of promotions
 * booked, or -1 on a Redis error (after logging).
 */
int gchw_promote(gchw_reaper_t *r, redisContext *rc, int64_t now_ms);
/* cmds.c: sends a MULTI ... EXEC list of the engine; the EXEC reply (the
 * caller frees it) or NULL.  The promoter's and the draw's. */
redisReply *gchw_send_cmds(redisContext *rc, const gch_cmds_t *l);
/* Pipelining: appends a command list (0 or -1); reads its replies and
 * returns the last (EXEC's), or NULL. */
int gchw_append_cmds(redisContext *rc, const gch_cmds_t *l);
redisReply *gchw_read_cmds(redisContext *rc, const gch_cmds_t *l);


/* ------------------------------------------------------------------ */
/* openings by draw (draw.c, drawentries.c)                           */

/*
 * Decides the draw of each activity of the catalogue whose opening has
 * come (plus settle_ms) and whose draw is not decided: its entries from
 * Redis into PostgreSQL, ordered by the public rule, each family's cells
 * booked through the saga (Idempotency-Key "dr.<activity id>"), then the
 * draw marked decided (docs/architecture.md, "Opening by draw").  Returns
 * the families decided, or -1 on a Redis or PostgreSQL error (logged).
 */
int gchw_draw(gchw_reaper_t *r, redisContext *rc, PGconn *pg, int64_t now_ms,
    int settle_ms);


#define GCHW_PROMOTE_MAX  20  /* list entries looked at per session, turn */

/* promote.c, for offer.c: one child booked through the saga (1 booked,
 * 0 refused *reason, 2 in progress, -1 Redis); its entry off the list;
 * an emptied list off {T}:waiting. */
int gchw_promote_book(redisContext *rc, const gch_town_t *t, long long gen,
    const gch_family_t *f, const char *cid, const char *sid,
    const char *key, int64_t now_ms, gch_reason_t *reason);
int gchw_promote_remove(redisContext *rc, const char *sid, const char *cid,
    const char *fid);
void gchw_promote_forget(redisContext *rc, const char *sid);
/* the family's request that put the entry on the list (started at at_ms)
 * still between its steps: 1, else 0, -1 Redis */
int gchw_promote_in_flight(redisContext *rc, const char *fid,
    long long at_ms);

/* offer.c: places offered instead of booked.  An offer activity's
 * session: its first eligible children get the places left held (count
 * or -1).  Offers past their end or declined: the place goes back and
 * down the list (count or -1).  The offers' e-mails ({T}:offers:mail,
 * written with the offer) into the outbox, once each (kind
 * waitlist_offer, ref "offer.<bid>"; count or -1). */
int gchw_offer_session(redisContext *rc, const gch_town_t *t, long long gen,
    const gch_session_t *s, int64_t now_ms);
int gchw_offers_expire(redisContext *rc, int64_t now_ms);
int gchw_offer_mail(PGconn *pg, redisContext *rc);

/* waitmirror.c: the waiting lists copied to PostgreSQL (waitlist_entry)
 * when they changed, never from a Redis without {T}:catalogue:gen: 1
 * copied, 0 nothing to do, -1 (logged). */
int gchw_waitlist_mirror(PGconn *pg, redisContext *rc);
/* The publisher's rebuild: waitlist_entry pushed back into Redis (the
 * offered children first, not a child booked on the session): entries
 * restored or -1. */
int gchw_waitlist_rebuild(PGconn *pg, redisContext *rc);


#endif /* GCHW_H */
