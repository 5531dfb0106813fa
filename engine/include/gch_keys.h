/*
 * gch_keys.h -- the names of Guichet's Redis keys, in one place.
 *
 * Used by the engine, the nginx module, the worker, guichetctl and
 * guichet-office (and backend/).  docs/architecture.md says what each
 * key holds.  Global keys are string literals, to be joined into a
 * command at compile time ("HGET " GCH_KEY_STAFF " %s").  The keys of one
 * family, and of one session, share a hash tag so that one MULTI touches
 * one cluster slot: GCH_KEY_F(name) is the printf format "{f:%s}:<name>"
 * (the family's id in the %s), GCH_KEY_S(name) "{s:%s}:<name>", and
 * GCH_KEY_F_TAG, GCH_KEY_S_TAG, GCH_KEY_TAG_END are their pieces for the
 * builders that copy ids without printf.
 */

#ifndef GCH_KEYS_H
#define GCH_KEYS_H


/* global keys */

#define GCH_KEY_CATALOGUE       "gch:catalogue"      /* the town, JSON */
#define GCH_KEY_CATALOGUE_GEN   "gch:catalogue:gen"  /* its generation */
#define GCH_KEY_INFLIGHT        "gch:inflight"       /* zset: attempts, ms */
#define GCH_KEY_STREAM          "gch:bookings"       /* stream: the worker's */
#define GCH_KEY_SEQ_DEMANDE     "gch:seq:demande"    /* demande numbers */
#define GCH_KEY_REVOKED         "gch:revoked"        /* zset: token hashes */
#define GCH_KEY_REVOKED_GEN     "gch:revoked:gen"
#define GCH_KEY_STAFF           "gch:staff"          /* hash: active agents */
#define GCH_KEY_LOGINS          "gch:logins"         /* hash: login -> id */
#define GCH_KEY_HEARTBEAT       "gch:worker:heartbeat"
#define GCH_KEY_CATALOGUE_VERSION "gch:catalogue:version" /* the worker's */
#define GCH_KEY_RECOUNT         "gch:recount"        /* zset: the reaper's */

/* login throttling: + "<address>/<login>", or + "<address>" */
#define GCH_KEY_LOGINFAIL       "gch:loginfail:"
#define GCH_KEY_LOGINPAUSE      "gch:loginpause:"
#define GCH_KEY_LOGINADDR       "gch:loginaddr:"


/* the keys of a family: {f:<family id>}:<name> */

#define GCH_KEY_F_TAG           "{f:"
#define GCH_KEY_S_TAG           "{s:"
#define GCH_KEY_TAG_END         "}:"

#define GCH_KEY_F(name)         GCH_KEY_F_TAG "%s" GCH_KEY_TAG_END name
#define GCH_KEY_S(name)         GCH_KEY_S_TAG "%s" GCH_KEY_TAG_END name

#define GCH_KEY_BOOKINGS        "bookings"     /* hash: booking id -> cell */
#define GCH_KEY_BILLED          "billed"
#define GCH_KEY_DEMANDES        "demandes"     /* list: GET /api/requests */
#define GCH_KEY_DOCUMENTS       "documents"
#define GCH_KEY_BUDGET          "budget"
#define GCH_KEY_IDEM            "idem"         /* + ":<Idempotency-Key>" */
#define GCH_KEY_CANCEL          "cancel"       /* + ":<booking id>" */
#define GCH_KEY_INVOICES        "invoices"
#define GCH_KEY_CONNECTIONS     "connections"
#define GCH_KEY_TOKENS          "tokens"


/* the keys of a session: {s:<session id>}:<name> */

#define GCH_KEY_LEFT            "left"         /* places left, online */
#define GCH_KEY_ONSITE          "onsite"       /* places left, counter */
#define GCH_KEY_BOOKED          "booked"
#define GCH_KEY_BOOKED_ONSITE   "booked_onsite"
#define GCH_KEY_RELEASED        "released"

#endif /* GCH_KEYS_H */
