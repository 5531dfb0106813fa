/*
 * gch_keys.h -- the names of Guichet's Redis keys, in one place.
 *
 * Used by the engine, the nginx module, the worker, guichetctl and
 * guichet-office (and backend/).  docs/architecture.md says what each
 * key holds.
 *
 * Every key of a town starts with the town's hash tag, "{<town id>}:",
 * so that all the keys of one town live in one Redis Cluster slot and
 * every step of the booking saga stays one MULTI on one node (issue 21).
 * The names after the tag are short: they are stored once per key and
 * there are several keys per booking (issue 20).
 *
 * The macros below are printf formats whose first %s is the town id:
 * "HGET " GCH_KEY_STAFF " %s" takes (town, login).  The keys of a family
 * take (town, family id), of a session (town, session id):
 * GCH_KEY_F(name) is "{%s}:f:%s:<name>", GCH_KEY_S(name) "{%s}:s:%s:<name>".
 * The hot path does not printf: the engine keeps each town's prefixes
 * ("{T}:f:", "{T}:s:", "{T}:c:") and its global keys ready in gch_town_t
 * (gch_town_keys_t, gch.h) and copies ids after them.
 *
 * The layout before towns ("gch:*", "{f:<fid>}:*", "{s:<sid>}:*",
 * "{c:<cid>}:*") is renamed by the worker at start and by guichetctl
 * migrate-keys (backend/migrate.c, the only place that still names it).
 */

#ifndef GCH_KEYS_H
#define GCH_KEYS_H


/* a town's id: [a-z0-9-]{1,40}; a town file without one is "main" */
#define GCH_TOWN_ID_MAX         40
#define GCH_TOWN_DEFAULT        "main"

/* "{" <town id> "}:" */
#define GCH_KEY_TAG_OPEN        "{"
#define GCH_KEY_TAG_CLOSE       "}:"
#define GCH_KEY_T(name)         GCH_KEY_TAG_OPEN "%s" GCH_KEY_TAG_CLOSE name


/* the names after a town's tag */

#define GCH_N_CATALOGUE         "catalogue"         /* the town, JSON */
#define GCH_N_CATALOGUE_GEN     "catalogue:gen"     /* its generation */
#define GCH_N_CATALOGUE_VERSION "catalogue:version" /* the worker's */
#define GCH_N_INFLIGHT          "inflight"          /* zset: attempts, ms */
#define GCH_N_STREAM            "stream"            /* the worker's */
#define GCH_N_STREAM_DEAD       "stream:dead"
#define GCH_N_SEQ_DEMANDE       "seq:demande"       /* demande numbers */
#define GCH_N_REVOKED           "revoked"           /* zset: token hashes */
#define GCH_N_REVOKED_GEN       "revoked:gen"
#define GCH_N_STAFF             "staff"             /* hash: active agents */
#define GCH_N_LOGINS            "logins"            /* hash: login -> id */
#define GCH_N_ABSENCE_REASONS   "absence_reasons"   /* hash: the town's
                                                       reasons of absence,
                                                       code -> "1" proof
                                                       required, or "0" */
#define GCH_N_HEARTBEAT         "worker:heartbeat"
#define GCH_N_RECOUNT           "recount"           /* zset: the reaper's */
#define GCH_N_WAITING           "waiting"           /* set: sessions with
                                                       a waiting list */
#define GCH_N_OFFERS            "offers"            /* zset: "<sid> <cid>"
                                                       -> offer's end, ms */
#define GCH_N_OFFERMAIL         "offers:mail"       /* hash: outbox ref ->
                                                       "<fid>\n<subject>\n
                                                       <body>" to queue */
#define GCH_N_LOGINFAIL         "loginfail:"
#define GCH_N_LOGINPAUSE        "loginpause:"
#define GCH_N_LOGINADDR         "loginaddr:"

/* the prefixes of the keys of a family, a session, a child's claims */
#define GCH_N_F                 "f:"
#define GCH_N_S                 "s:"
#define GCH_N_C                 "c:"
#define GCH_N_A                 "a:"


/* a town's global keys: printf formats, the town id first */

#define GCH_KEY_CATALOGUE       GCH_KEY_T(GCH_N_CATALOGUE)
#define GCH_KEY_CATALOGUE_GEN   GCH_KEY_T(GCH_N_CATALOGUE_GEN)
#define GCH_KEY_CATALOGUE_VERSION GCH_KEY_T(GCH_N_CATALOGUE_VERSION)
#define GCH_KEY_INFLIGHT        GCH_KEY_T(GCH_N_INFLIGHT)
#define GCH_KEY_STREAM          GCH_KEY_T(GCH_N_STREAM)
#define GCH_KEY_STREAM_DEAD     GCH_KEY_T(GCH_N_STREAM_DEAD)
#define GCH_KEY_SEQ_DEMANDE     GCH_KEY_T(GCH_N_SEQ_DEMANDE)
#define GCH_KEY_REVOKED         GCH_KEY_T(GCH_N_REVOKED)
#define GCH_KEY_REVOKED_GEN     GCH_KEY_T(GCH_N_REVOKED_GEN)
#define GCH_KEY_STAFF           GCH_KEY_T(GCH_N_STAFF)
#define GCH_KEY_LOGINS          GCH_KEY_T(GCH_N_LOGINS)
#define GCH_KEY_ABSENCE_REASONS GCH_KEY_T(GCH_N_ABSENCE_REASONS)
#define GCH_KEY_HEARTBEAT       GCH_KEY_T(GCH_N_HEARTBEAT)
#define GCH_KEY_RECOUNT         GCH_KEY_T(GCH_N_RECOUNT)
#define GCH_KEY_WAITING         GCH_KEY_T(GCH_N_WAITING)
#define GCH_KEY_OFFERS          GCH_KEY_T(GCH_N_OFFERS)
#define GCH_KEY_OFFERMAIL       GCH_KEY_T(GCH_N_OFFERMAIL)

/* login throttling: + "<address>/<login>", or + "<address>" */
#define GCH_KEY_LOGINFAIL       GCH_KEY_T(GCH_N_LOGINFAIL)
#define GCH_KEY_LOGINPAUSE      GCH_KEY_T(GCH_N_LOGINPAUSE)
#define GCH_KEY_LOGINADDR       GCH_KEY_T(GCH_N_LOGINADDR)

/* the tokens of an agent of guichet-office: (town, login) */
#define GCH_KEY_STAFF_TOKENS    GCH_KEY_T(GCH_N_STAFF ":%s:tokens")


/* the keys of a family: {T}:f:<family id>:<name>, (town, family id) */

#define GCH_KEY_F(name)         GCH_KEY_T(GCH_N_F "%s:" name)
#define GCH_KEY_S(name)         GCH_KEY_T(GCH_N_S "%s:" name)
/* the keys of an activity: {T}:a:<activity id>:<name> */
#define GCH_KEY_A(name)         GCH_KEY_T(GCH_N_A "%s:" name)
#define GCH_KEY_ENTRIES         "entries"      /* hash: a draw's entries,
                                                  "<fid> <cid> <sid>" ->
                                                  "<at_ms> <idx> <0|1>" */
#define GCH_KEY_ENTRIES_DRAW    "entries:draw" /* hash: the entries the
                                                  draw decides (RENAMEd) */
#define GCH_KEY_ENTRIES_LATE    "entries:late" /* hash: late entries being
                                                  decided after the draw */
/* a child's claim of one elementary interval: (town, child id, day, q) */
#define GCH_KEY_CLAIM           GCH_KEY_T(GCH_N_C "%s:%s:q%d")

#define GCH_KEY_BOOKINGS        "bookings"     /* hash: booking id -> cell */
#define GCH_KEY_BILLED          "billed"
#define GCH_KEY_DEMANDES        "demandes"     /* list: GET /api/requests */
#define GCH_KEY_DOCUMENTS       "documents"
#define GCH_KEY_IDEM            "idem"         /* + ":<Idempotency-Key>" */
#define GCH_KEY_CANCEL          "cancel"       /* + ":<booking id>" */
/*
 * The same key, taken with SET NX at the first step of whatever may release
 * the booking -- a DELETE ("c <ms>") or a swap replacing it ("s <ms> <new
 * bid>") -- then rewritten "C ..."/"S ..." by their step two and deleted by
 * their last step: one of them at a time (docs/architecture.md, "Swap").
 * Seconds: a holder that died before its step two keeps it this long.
 */
#define GCH_CANCEL_LOCK_TTL     "60"
#define GCH_KEY_INVOICES        "invoices"
#define GCH_KEY_CONNECTIONS     "connections"
#define GCH_KEY_TOKENS          "tokens"
#define GCH_KEY_WAITS           "waits"        /* hash: "<sid> <cid>" ->
                                                  booking id, the family's
                                                  places on waiting lists */


/* the keys of a session: {T}:s:<session id>:<name> */

/*
 * A session's places left, both quotas in one 8-byte string (issue 20,
 * fifth pass: one key instead of two, ~123 bytes of Redis a session):
 * BITFIELD u32 at bit GCH_OFF_LEFT (#0) the online places left, u32 at
 * bit GCH_OFF_ONSITE (#1) the on-site ones (the counter's quota).  Until
 * then the on-site quota was its own key, GCH_KEY_ONSITE_OLD: a 4-byte
 * "left" reads 0 at #1 (BITFIELD reads zeros past the end), and
 * gchb_merge_counters() (backend/migrate.c) adds an old "onsite" into
 * #1 and deletes it.
 */
#define GCH_KEY_LEFT            "left"         /* places left, 8 bytes */
#define GCH_OFF_LEFT            "0"            /* u32: online */
#define GCH_OFF_ONSITE          "32"           /* u32: on site */
#define GCH_KEY_ONSITE_OLD      "onsite"       /* before: the on-site u32 */
#define GCH_KEY_BOOKED          "booked"
#define GCH_KEY_BOOKED_ONSITE   "booked_onsite"
#define GCH_KEY_RELEASED        "released"
#define GCH_KEY_WAIT            "wait"         /* list: child ids, the
                                                  waiting list in order */
#define GCH_KEY_WAITERS         "waiters"      /* hash: child id ->
                                                  "<bid> <fid> <at_ms>" */
#define GCH_KEY_WAITTRY         "waittry"      /* hash: child id -> the
                                                  promotions tried */
#define GCH_KEY_OFFER           "offer"        /* hash: child id -> the
                                                  end of its offer, ms */
#define GCH_KEY_HOLD            "hold"         /* + ":<cid>": the place
                                                  held for it (u32, 1) */
#define GCH_KEY_HELD            "held"         /* the session's places
                                                  held by offers (INCR) */

#endif /* GCH_KEYS_H */
