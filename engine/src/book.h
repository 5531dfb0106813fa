/*
 * book.h -- engine-internal: the booking saga's state, shared by its files.
 *
 *   book.c         the plan and its lifecycle: keys, ids, gch_book_plan(),
 *                  the accessors, gch_book_sold_out(), gch_book_free()
 *   book_rules.c   the rules that need no Redis (enrolment, age, documents,
 *                  unpaid invoices, opening, deadline, conflicts, whole
 *                  weeks) and the unit dependencies' outcome
 *   book_step.c    the step one/two/three commands and their replies
 *   book_answer.c  the JSON answer and the compact demande (demande.c)
 *                  the record, the demande list and the stream hold
 *
 * See book.c for the saga itself.
 */

#ifndef GCH_BOOK_H
#define GCH_BOOK_H

#include "gch_keys.h"
#include "resp.h"


#define GCH_BOOK_PLANNED    0
#define GCH_BOOK_STEP1      1      /* step one sent, waiting */
#define GCH_BOOK_STEP2      2      /* step two sent, waiting */
#define GCH_BOOK_DONE       3

#define GCH_BID_LEN         22     /* "b-" + 20 hex */
#define GCH_KEY_MAX         256
#define GCH_STEP1_CELLS     4      /* replies before the first cell's */

/*
 * {T}:f:<fid>:demandes keeps the newest 200; step two only LPUSHes and the
 * list is trimmed (step three) once LPUSH says it holds more than
 * GCH_DEMANDES_TRIM: one command less per booking, 49 times in 50.
 */
#define GCH_DEMANDES_LAST   "199"
#define GCH_DEMANDES_TRIM   250

/* the online quota, or the on-site one for staff at the counter: both
 * in {T}:s:<sid>:left, at bit 0 or 32 (gch_keys.h) */
#define GCH_LEFT_OFF(b) ((b)->in.onsite ? GCH_OFF_ONSITE : GCH_OFF_LEFT)
#define GCH_BOOKED(b)  ((b)->in.onsite ? GCH_KEY_BOOKED_ONSITE : GCH_KEY_BOOKED)


typedef struct {
    const gch_item_t     *item;
    const gch_child_t    *child;
    const gch_session_t  *session;
    gch_reason_t          reason;       /* GCH_REASON_NONE: open */
    char                  bid[GCH_BID_LEN + 1];
    uint32_t              quanta;       /* claims this cell needs */
    uint32_t              claimed;      /* claims step one set for us */
    uint32_t              needs;        /* units, one of which it needs */
    size_t                needs_at;     /* first GET reply of those */
    int                   took_place;
    int                   price_cents;
    int                   wl;           /* step one pushed it on the
                                           session's waiting list */
    int                   wl_new;       /* ... and it was not there */
    long long             position;     /* its place there, from 1 */

    /* a swap (item->replaces): the booking it replaces, read by step
     * one's HGET, released by step two's guard and step three */
    uint32_t              adopted;      /* its claims this cell keeps */
    size_t                hget_at;      /* step one: the HGET's reply,
                                           the marker's SET NX next */
    int                   locked;       /* step one took the marker */
    size_t                srem_at;      /* step two: the guard's reply */
    const gch_session_t  *old;          /* NULL: not (or no more) */
    int                   old_onsite;
    int                   billed;       /* its release is billed */
    char                 *old_entry;    /* its planning entry, for the */
    size_t                old_entry_len;  /* restore of a fenced swap */
} gch_cell_t;

/* a cell refused full that stays on the session's waiting list */
#define GCH_WAITLISTED(c)                                                   \
    ((c)->reason == GCH_REASON_FULL && (c)->wl && (c)->position > 0)


struct gch_book_s {
    const gch_alloc_t    *a;
    gch_book_in_t         in;
    gch_cell_t           *cells;
    size_t                ncells;
    size_t                nopen;

    char                  hash[33];
    char                 *idem_rkey;   /* "{T}:f:<fid>:idem:<key>" */
    char                 *member;      /* "<idem_rkey>#<attempt id>" */
    long long             number;
    char                  request_id[32];
    size_t                cells_at;     /* first claim reply in step one */
    long long             retry_after;  /* 429: seconds */

    gch_cmdlist_t         step1;
    gch_cmdlist_t         step2;
    gch_cmdlist_t         step3;
    gch_cmdlist_t         check;       /* EXISTS of the record (sold out) */

    int                   state;
    int                   status;
    int                   replayed;
    char                 *body;
    size_t                body_len;
    int                   body_in_stored;  /* body points into stored */
    char                 *stored;      /* "D <hash> <compact>", step two */
    size_t                stored_len;
    char                 *entry;       /* the compact demande, whole */
    size_t                entry_len;
    int                   step1_built;
    int                   swap_step3;  /* step three releases a swap's */
};


/* book.c: keys, ids, the plan and its lifecycle */
int gch_claim_key(char *buf, size_t size, const gch_book_t *b,
    const gch_cell_t *c, int q);
int gch_key3(char *buf, size_t size, const char *pre, const char *id,
    size_t idlen, const char *post);
int gch_member(gch_book_t *b);
const char *gch_attempt_id(const gch_book_t *b);
int gch_own_record(const gch_book_t *b, const char *rec, size_t len);
int gch_demandes_key(char *buf, size_t size, const gch_book_t *b);
void gch_place_key(char *buf, size_t size, const gch_book_t *b,
    const gch_session_t *s, const char *what);
void gch_ids(gch_book_t *b);

/* book_rules.c: the rules that need no Redis, the unit dependencies */
void gch_precheck(gch_book_t *b, gch_cell_t *c, size_t idx);
void gch_week_rule(gch_book_t *b);
void gch_week_outcome(gch_book_t *b);
void gch_dep_key(char *buf, size_t size, const gch_book_t *b,
    const gch_cell_t *c, int u);
void gch_needs_outcome(gch_book_t *b, const redisReply *exec);

/* book_answer.c: the JSON answer, the compact demande (demande.c) */
void gch_plan_json(gch_book_t *b, gch_buf_t *out);
void gch_body_release(gch_book_t *b);
int gch_reply_is_str(const redisReply *r);
void gch_error_body(gch_book_t *b, int status, const char *code,
    const char *message);
char *gch_answer_json(gch_book_t *b, size_t *len);
char *gch_compact(gch_book_t *b, const char *prefix, size_t plen,
    int bare, size_t *len);
char *gch_planning_json(gch_book_t *b, const gch_cell_t *c, size_t *len);

/* book_swap.c: a swap's old booking (docs/architecture.md, "Swap") */
void gch_swap_step1(gch_book_t *b, gch_cmdlist_t *l);
int gch_swap_adopts(const gch_cell_t *c, const char *held, size_t len);
int gch_swap_locks(gch_book_t *b, const redisReply *exec);
int gch_swap_outcome(gch_book_t *b, const redisReply *exec);
void gch_swap_unlock(gch_book_t *b, gch_cmdlist_t *l, gch_cell_t *c);
void gch_swap_step2(gch_book_t *b, gch_cmdlist_t *l, gch_cell_t *c,
    const char *fkey, size_t flen);
void gch_swap_step3(gch_book_t *b, const redisReply *exec);
void gch_swap_restore(gch_book_t *b, const redisReply *exec, gch_buf_t *o);
int gch_swap_marker(char *buf, size_t size, const gch_book_t *b,
    const gch_cell_t *c);


#endif /* GCH_BOOK_H */
