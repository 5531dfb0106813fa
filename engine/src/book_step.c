/*
 * book.c -- the booking saga, sans I/O.
 *
 * One gch_book_t follows one POST /api/bookings through the two Redis steps
 * described in docs/architecture.md:
 *
 *   gch_book_plan()      rules that need no Redis, the step-one MULTI/EXEC
 *   gch_book_on_step1()  idempotency verdict, per-cell outcome, step two
 *   gch_book_on_step2()  the fence; the answer is final
 *   gch_book_step3()     when fenced: undo step two; or, when the family's
 *                        demande list grew past GCH_DEMANDES_TRIM, trim it
 *
 * The caller (the nginx module, or a test) sends the RESP commands of each
 * step as they are and feeds back the EXEC reply.  Nothing here reads a
 * clock: "now" is in gch_book_in_t.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

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
 * {f:<fid>}:demandes keeps the newest 200; step two only LPUSHes and the
 * list is trimmed (step three) once LPUSH says it holds more than
 * GCH_DEMANDES_TRIM: one command less per booking, 49 times in 50.
 */
#define GCH_DEMANDES_LAST   "199"
#define GCH_DEMANDES_TRIM   250

/* the online quota, or the on-site one for staff at the counter */
#define GCH_LEFT(b)    ((b)->in.onsite ? GCH_KEY_ONSITE : GCH_KEY_LEFT)
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
} gch_cell_t;


struct gch_book_s {
    const gch_alloc_t    *a;
    gch_book_in_t         in;
    gch_cell_t           *cells;
    size_t                ncells;
    size_t                nopen;

    char                  hash[33];
    char                 *idem_rkey;   /* "{f:<fid>}:idem:<key>" */
    char                 *member;      /* "<idem_rkey>#<attempt id>" */
    long long             number;
    char                  request_id[32];
    size_t                cells_at;     /* first claim reply in step one */
    size_t                budget_at;    /* the INCRBY of the budget */
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
    char                 *stored;      /* "D <hash> <answer>" for step two */
    size_t                stored_len;
    char                 *items;       /* the items JSON array, once */
    size_t                items_len;
    int                   step1_built;
};


static void
gch_hex(char *out, const unsigned char *in, size_t n)
{
    static const char  digits[] = "0123456789abcdef";
    size_t             i;

    for (i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 0xf];
    }

    out[2 * n] = '\0';
}


/* See gch.h. */
void
gch_book_id(char out[GCH_BOOKING_ID_MAX], const char *fid, const char *key,
    size_t key_len, const char *cid, const char *sid)
{
    unsigned char                      h[10];
    static const unsigned char         zero = 0;
    crypto_generichash_state           st;

    crypto_generichash_init(&st, NULL, 0, sizeof(h));
    crypto_generichash_update(&st, (const unsigned char *) fid, strlen(fid));
    crypto_generichash_update(&st, &zero, 1);
    crypto_generichash_update(&st, (const unsigned char *) key, key_len);
    crypto_generichash_update(&st, &zero, 1);
    crypto_generichash_update(&st, (const unsigned char *) cid, strlen(cid));
    crypto_generichash_update(&st, &zero, 1);
    crypto_generichash_update(&st, (const unsigned char *) sid, strlen(sid));
    crypto_generichash_final(&st, h, sizeof(h));

    out[0] = 'b';
    out[1] = '-';
    gch_hex(out + 2, h, sizeof(h));
}


static void
gch_booking_id(char *out, const gch_book_in_t *in, const gch_cell_t *c)
{
    gch_book_id(out, in->family->id, in->idem_key, in->idem_len,
                c->child->id, c->session->id);
}


/*
 * Keys are built by hand, not with snprintf: a booking writes a dozen of
 * them and printf was most of the module's time.  Each returns the key's
 * length, or -1 (and an empty key) when it does not fit in size.
 */

/* See gch.h: "{c:<cid>}:<YYYY-MM-DD>:q<q>", q < 100 */
int
gch_claim_key_of(char *buf, size_t size, const char *cid, gch_day_t day,
    int q)
{
    char    *p;
    size_t   n;

    n = strlen(cid);

    if (3 + n + 2 + 10 + 2 + 2 + 1 > size || q < 0 || q > 99) {
        buf[0] = '\0';
        return -1;
    }

    p = buf;
    memcpy(p, "{c:", 3);
    p += 3;
    memcpy(p, cid, n);
    p += n;
    *p++ = '}';
    *p++ = ':';
    gch_day_format(day, p);
    p += 10;
    *p++ = ':';
    *p++ = 'q';

    if (q >= 10) {
        *p++ = (char) ('0' + q / 10);
    }

    *p++ = (char) ('0' + q % 10);
    *p = '\0';

    return (int) (p - buf);
}


static int
gch_claim_key(char *buf, size_t size, const gch_cell_t *c, int q)
{
    return gch_claim_key_of(buf, size, c->child->id, c->session->date, q);
}


/* "<pre><id><post>" */
static int
gch_key3(char *buf, size_t size, const char *pre, const char *id,
    size_t idlen, const char *post)
{
    size_t  a, c;

    a = strlen(pre);
    c = strlen(post);

    if (a + idlen + c + 1 > size) {
        buf[0] = '\0';
        return -1;
    }

    memcpy(buf, pre, a);
    memcpy(buf + a, id, idlen);
    memcpy(buf + a + idlen, post, c + 1);

    return (int) (a + idlen + c);
}


/*
 * The attempt's member in gch:inflight, "<idem_rkey>#<id>", id =
 * "<now_ms>.<attempt, hex>.<8 hex of the body's hash>": unique to the
 * attempt, and the P record carries the same id, so that the reaper tells
 * the first attempt with a key (its record names it) from a retry answered
 * 409, 422 or replayed (its record is another's; the hash says whether it
 * is the same body, hence the same cells).  The hash must be known
 * (gch_ids).
 */
static int
gch_member(gch_book_t *b)
{
    int     n;
    size_t  size;

    if (b->member) {
        return 0;
    }

    size = strlen(b->idem_rkey) + 1 + 20 + 1 + 16 + 1 + 8 + 1;
    b->member = b->a->alloc(b->a->ctx, size);
    if (b->member == NULL) {
        return -1;
    }

    n = snprintf(b->member, size, "%s#%lld.%llx.%.8s", b->idem_rkey,
                 (long long) b->in.now_ms,
                 (unsigned long long) b->in.attempt, b->hash);

    return (n > 0 && (size_t) n < size) ? 0 : -1;
}


static const char *
gch_attempt_id(const gch_book_t *b)
{
    return b->member + strlen(b->idem_rkey) + 1;
}


/* See gch.h. */
const char *
gch_attempt_split(const char *member, char *rkey, size_t size)
{
    size_t       n;
    const char  *h;

    h = strrchr(member, '#');              /* the id has none */
    n = h ? (size_t) (h - member) : strlen(member);
    if (n >= size) {
        n = size - 1;
    }
    memcpy(rkey, member, n);
    rkey[n] = '\0';

    return h ? h + 1 : NULL;
}


/* See gch.h. */
int
gch_attempt_wrote(const char *id, const char *rec, size_t len)
{
    size_t  n;

    n = strlen(id);

    return len > 35 + n && rec[0] == 'P' && memcmp(rec + 35, id, n) == 0
           && rec[35 + n] == ' ';
}


/* See gch.h. */
int
gch_attempt_same_body(const char *id, const char *rec, size_t len)
{
    const char  *dot;

    dot = strrchr(id, '.');

    return dot && strlen(dot + 1) == 8 && len > 35
           && memcmp(rec + 2, dot + 1, 8) == 0;
}


/* Is rec the record this attempt wrote (its whole hash, its id)? */
static int
gch_own_record(const gch_book_t *b, const char *rec, size_t len)
{
    return b->member != NULL && len > 35 && memcmp(rec + 2, b->hash, 32) == 0
           && gch_attempt_wrote(gch_attempt_id(b), rec, len);
}


/* "{f:<fid>}:demandes", the family's demande list */
static int
gch_demandes_key(char *buf, size_t size, const gch_book_t *b)
{
    return gch_key3(buf, size, GCH_KEY_F_TAG, b->in.family->id,
                    strlen(b->in.family->id),
                    GCH_KEY_TAG_END GCH_KEY_DEMANDES);
}


static void
gch_place_key(char *buf, size_t size, const gch_session_t *s,
    const char *what)
{
    char  post[32];

    post[0] = '}';
    post[1] = ':';
    memcpy(post + 2, what, strlen(what) + 1);

    (void) gch_key3(buf, size, GCH_KEY_S_TAG, s->id, strlen(s->id), post);
}


static int
gch_enrolled(const gch_family_t *f, const gch_cell_t *c)
{
    size_t                  i;
    const gch_enrolment_t  *e;

    for (i = 0; i < f->nenrolments; i++) {
        e = &f->enrolments[i];

        if (e->status == GCH_ENROL_VALIDEE
            && e->activity == c->session->activity
            && strcmp(e->child_id, c->child->id) == 0
            && e->from <= c->session->date && c->session->date <= e->to)
        {
            return 1;
        }
    }

    return 0;
}


/* Every document the activity requires, valid on day d. */
static int
gch_documents_ok(const gch_family_t *f, const gch_activity_t *act,
    gch_day_t d)
{
    size_t                 i, j;
    const gch_document_t  *doc;

    for (i = 0; i < act->nrequired_documents; i++) {
        for (j = 0; j < f->ndocuments; j++) {
            doc = &f->documents[j];

            if (strcmp(doc->type, act->required_documents[i]) == 0
                && doc->valid_from <= d && d <= doc->valid_to)
            {
                break;
            }
        }

        if (j == f->ndocuments) {
            return 0;
        }
    }

    return 1;
}


/* The rules that need no Redis, in the order a parent would ask them. */
static void
gch_precheck(gch_book_t *b, gch_cell_t *c, size_t idx)
{
    int                    age, starts;
    size_t                 j;
    int64_t                now_s;
    const gch_cell_t      *p;
    const gch_session_t   *s;
    const gch_activity_t  *act;

    s = c->session;
    if (s == NULL) {
        c->reason = GCH_REASON_UNKNOWN_SESSION;
        return;
    }

    act = s->activity;
    now_s = b->in.now_ms / 1000;
    starts = b->in.town->units[s->unit].starts_min;

    if (!gch_enrolled(b->in.family, c)) {
        c->reason = GCH_REASON_NOT_ENROLLED;
        return;
    }

    age = gch_age_on(c->child->birth_date, s->date);
    if (age < act->age_min || age > act->age_max) {
        c->reason = GCH_REASON_AGE;
        return;
    }

    if (!gch_documents_ok(b->in.family, act, s->date)) {
        c->reason = GCH_REASON_DOCUMENTS_MISSING;
        return;
    }

    if (act->blocks_unpaid && b->in.family->unpaid_invoices > 0) {
        c->reason = GCH_REASON_UNPAID_INVOICES;
        return;
    }

    if (act->opens_at && b->in.now_ms < act->opens_at * 1000
        && !b->in.onsite)
    {
        c->reason = GCH_REASON_NOT_OPEN_YET;
        return;
    }

    if (now_s >= gch_deadline_instant(&act->deadline, s->date, starts)) {
        c->reason = GCH_REASON_CLOSED;
        return;
    }

    /* two cells of the same request that overlap for one child */

    for (j = 0; j < idx; j++) {
        p = &b->cells[j];

        if (p->reason || p->child != c->child
            || p->session->date != s->date)
        {
            continue;
        }

        if (p->session == s) {
            c->reason = GCH_REASON_ALREADY_BOOKED;
            return;
        }

        if (p->quanta & c->quanta) {
            c->reason = GCH_REASON_CONFLICT;
            return;
        }
    }
}


/*
 * Whole weeks (Ambérieu): for an activity with week_required, each child,
 * week and unit asked must cover every day of that week on which the
 * activity has that unit.  When it does not, or when one cell of that
 * child, activity, unit and week is refused for another reason, the other
 * cells of that group are refused week_incomplete; every other cell of the
 * request keeps its own outcome.
 */
static int
gch_week_same(const gch_cell_t *a, const gch_cell_t *c)
{
    gch_day_t  ma, mc;

    if (a->session == NULL || c->session == NULL || a->child != c->child
        || a->session->activity != c->session->activity
        || a->session->unit != c->session->unit)
    {
        return 0;
    }

    ma = a->session->date - (gch_day_weekday(a->session->date) - 1);
    mc = c->session->date - (gch_day_weekday(c->session->date) - 1);

    return ma == mc;
}


static int
gch_week_complete(gch_book_t *b, const gch_cell_t *c)
{
    size_t                 i, j;
    gch_day_t              monday;
    const gch_session_t   *s, *t;
    const gch_cell_t      *o;

    s = c->session;
    monday = s->date - (gch_day_weekday(s->date) - 1);

    for (i = 0; i < b->in.town->nsessions; i++) {
        t = &b->in.town->sessions[i];

        if (t->activity != s->activity || t->unit != s->unit
            || t->date < monday || t->date > monday + 6)
        {
            continue;
        }

        for (j = 0; j < b->ncells; j++) {
            o = &b->cells[j];
            if (o->reason == GCH_REASON_NONE && o->session == t
                && o->child == c->child)
            {
                break;
            }
        }

        if (j == b->ncells) {
            return 0;
        }
    }

    return 1;
}


/* c's group goes: each of its cells still open is week_incomplete. */
static void
gch_week_refuse(gch_book_t *b, const gch_cell_t *c)
{
    size_t       i;
    gch_cell_t  *o;

    for (i = 0; i < b->ncells; i++) {
        o = &b->cells[i];
        if (o->reason == GCH_REASON_NONE && gch_week_same(o, c)) {
            o->reason = GCH_REASON_WEEK_INCOMPLETE;
        }
    }
}


/* c is the same cell asked twice, the first one still open. */
static int
gch_week_twice(gch_book_t *b, const gch_cell_t *c)
{
    size_t             i;
    const gch_cell_t  *o;

    if (c->reason != GCH_REASON_ALREADY_BOOKED) {
        return 0;
    }

    for (i = 0; i < b->ncells; i++) {
        o = &b->cells[i];
        if (o != c && o->reason == GCH_REASON_NONE && o->session == c->session
            && o->child == c->child)
        {
            return 1;
        }
    }

    return 0;
}


/*
 * Refusing a group's cells changes no other group's completeness: one pass
 * is enough.  A group refused by its first cell is seen again, refused, by
 * its other cells (harmless).  A copy of a cell asked twice refuses nothing
 * more.
 */
static void
gch_week_rule(gch_book_t *b)
{
    size_t       i;
    gch_cell_t  *c;

    for (i = 0; i < b->ncells; i++) {
        c = &b->cells[i];

        if (c->session && c->session->activity->week_required
            && !gch_week_twice(b, c)
            && (c->reason != GCH_REASON_NONE || !gch_week_complete(b, c)))
        {
            gch_week_refuse(b, c);
        }
    }

    b->nopen = 0;
    for (i = 0; i < b->ncells; i++) {
        if (b->cells[i].reason == GCH_REASON_NONE) {
            b->nopen++;
        }
    }
}


/*
 * After step one: a refused cell (full, conflict) of a whole week refuses
 * its group; step two gives back what the group's cells took.
 */
static void
gch_week_outcome(gch_book_t *b)
{
    size_t       i;
    gch_cell_t  *c;

    for (i = 0; i < b->ncells; i++) {
        c = &b->cells[i];
        if (c->session && c->session->activity->week_required && c->reason
            && !gch_week_twice(b, c))
        {
            gch_week_refuse(b, c);
        }
    }
}


/* The reaper's plan: [{"s":sid,"c":cid,"b":bid,"q":[claim keys]}] */
static void
gch_plan_json(gch_book_t *b, gch_buf_t *out)
{
    int           q, n, first;
    char          key[GCH_KEY_MAX];
    size_t        i;
    gch_cell_t   *c;

    gch_buf_lit(out, "[");
    first = 1;

    for (i = 0; i < b->ncells; i++) {
        c = &b->cells[i];
        if (c->reason) {
            continue;
        }

        if (!first) {
            gch_buf_lit(out, ",");
        }

        first = 0;
        gch_buf_lit(out, "{\"s\":");
        gch_buf_jstrz(out, c->session->id);
        gch_buf_lit(out, ",\"c\":");
        gch_buf_jstrz(out, c->child->id);
        gch_buf_lit(out, ",\"b\":");
        gch_buf_jstrz(out, c->bid);
        gch_buf_lit(out, ",\"q\":[");

        n = 0;

        for (q = 0; q < 32; q++) {
            if ((c->quanta & (1u << q))
                && gch_claim_key(key, sizeof(key), c, q) > 0)
            {
                if (n++) {
                    gch_buf_lit(out, ",");
                }

                gch_buf_jstrz(out, key);
            }
        }

        gch_buf_lit(out, "]}");
    }

    gch_buf_lit(out, "]");
}


/* The claim key of the first elementary interval of unit u, that day. */
static void
gch_dep_key(char *buf, size_t size, const gch_book_t *b, const gch_cell_t *c,
    int u)
{
    int       q;
    uint32_t  quanta;

    quanta = b->in.town->units[u].quanta;
    for (q = 0; q < 31 && !(quanta & (1u << q)); q++) { /* void */ }

    (void) gch_claim_key_of(buf, size, c->child->id, c->session->date, q);
}


/*
 * Unit dependencies ("REPAS only with MATIN or APM", unit_requires): a
 * cell needing one of c->needs is refused unit_required unless the child
 * holds one of them in the same activity that day -- booked before (the
 * GET replies of step one) or confirmed in this very request.
 */
static void
gch_needs_outcome(gch_book_t *b, const redisReply *exec)
{
    int                   u;
    size_t                i, j, k;
    const char           *sp;
    const gch_cell_t     *o;
    const redisReply     *r;
    const gch_session_t  *held;
    gch_cell_t           *c;

    for (i = 0; i < b->ncells; i++) {
        c = &b->cells[i];
        if (c->reason || c->needs == 0) {
            continue;
        }

        for (j = 0; j < b->ncells; j++) {
            o = &b->cells[j];
            if (j != i && o->reason == GCH_REASON_NONE && o->child == c->child
                && o->session->activity == c->session->activity
                && o->session->date == c->session->date
                && (c->needs & (1u << o->session->unit)))
            {
                break;
            }
        }

        if (j < b->ncells) {
            continue;
        }

        k = c->needs_at;

        for (u = 0; u < 32; u++) {
            if (!(c->needs & (1u << u))) {
                continue;
            }

            r = (k < exec->elements) ? exec->element[k] : NULL;
            k++;

            if (r == NULL || r->type != REDIS_REPLY_STRING) {
                continue;
            }

            sp = strrchr(r->str, ' ');
            held = sp ? gch_town_session(b->in.town, r->str, sp - r->str)
                      : NULL;

            if (held && held->activity == c->session->activity
                && held->unit == u)
            {
                break;
            }
        }

        if (u == 32) {
            c->reason = GCH_REASON_UNIT_REQUIRED;
        }
    }
}


/*
 * The body's hash and the booking ids, which only Redis's steps need (not
 * a refusal from the sold-out cache).
 */
static void
gch_ids(gch_book_t *b)
{
    size_t          i;
    unsigned char   h[16];

    crypto_generichash(h, sizeof(h), (const unsigned char *) b->in.body,
                       b->in.body_len, NULL, 0);
    gch_hex(b->hash, h, sizeof(h));

    for (i = 0; i < b->ncells; i++) {
        if (b->cells[i].session) {
            gch_booking_id(b->cells[i].bid, &b->in, &b->cells[i]);
        }
    }
}


/*
 * The family's budget, last in step one: INCRBY {f:<fid>}:budget <cost>,
 * EXPIRE ... NX (the window starts with the first request), TTL.
 */
static void
gch_budget_cmds(gch_book_t *b, gch_cmdlist_t *l)
{
    int    klen;
    char   key[GCH_KEY_MAX], cost[24], win[24];

    klen = gch_key3(key, sizeof(key), GCH_KEY_F_TAG, b->in.family->id,
                    strlen(b->in.family->id),
                    GCH_KEY_TAG_END GCH_KEY_BUDGET);
    if (klen < 0) {
        l->failed = 1;
        return;
    }

    gch_lltoa(cost, gch_family_cost(b->ncells));
    gch_lltoa(win, GCH_FAMILY_WINDOW_S);

    /* replies are numbered without the MULTI */
    b->budget_at = l->list.ncmds - 1;

    gch_cmdlist_cmd(l, "INCRBY", key, cost, NULL);
    gch_cmdlist_cmd(l, "EXPIRE", key, win, "NX", NULL);
    gch_cmdlist_cmd(l, "TTL", key, NULL);
}


static void
gch_step1_build(gch_book_t *b)
{
    int            q, klen;
    char           key[GCH_KEY_MAX], val[GCH_KEY_MAX], exat[24], ttl[24],
                   ms[24];
    size_t         i, n, slen;
    gch_buf_t      rec;
    gch_cell_t    *c;
    const char    *argv[8];
    size_t         argvlen[8];
    gch_cmdlist_t *l;

    l = &b->step1;
    gch_ids(b);

    if (gch_member(b) != 0) {
        l->failed = 1;
        return;
    }

    gch_buf_init(&rec, b->a);
    gch_buf_lit(&rec, "P ");
    gch_buf_add(&rec, b->hash, 32);
    gch_buf_lit(&rec, " ");
    gch_buf_add(&rec, gch_attempt_id(b), strlen(gch_attempt_id(b)));
    gch_buf_lit(&rec, " ");
    gch_plan_json(b, &rec);

    gch_lltoa(ttl, (long long) b->in.inflight_ttl_s);
    gch_lltoa(ms, (long long) b->in.now_ms);

    gch_cmdlist_cmd(l, "MULTI", NULL);

    argv[0] = "SET"; argvlen[0] = 3;
    argv[1] = b->idem_rkey; argvlen[1] = strlen(b->idem_rkey);
    argv[2] = rec.data ? rec.data : ""; argvlen[2] = rec.len;
    argv[3] = "NX"; argvlen[3] = 2;
    argv[4] = "GET"; argvlen[4] = 3;
    argv[5] = "EX"; argvlen[5] = 2;
    argv[6] = ttl; argvlen[6] = strlen(ttl);
    if (rec.failed) {
        l->failed = 1;
    }
    gch_cmdlist_argv(l, 7, argv, argvlen);
    gch_buf_free(&rec);

    gch_cmdlist_cmd(l, "INCR", GCH_KEY_SEQ_DEMANDE, NULL);
    gch_cmdlist_cmd(l, "ZADD", GCH_KEY_INFLIGHT, ms, b->member, NULL);
    gch_cmdlist_cmd(l, "GET", GCH_KEY_CATALOGUE_GEN, NULL);

    /* unit dependencies: who holds the units a cell needs, before us */

    b->cells_at = GCH_STEP1_CELLS;

    for (i = 0; i < b->ncells; i++) {
        c = &b->cells[i];
        if (c->reason || c->needs == 0) {
            continue;
        }

        c->needs_at = b->cells_at;

        for (q = 0; q < 32; q++) {
            if (!(c->needs & (1u << q))) {
                continue;
            }

            gch_dep_key(key, sizeof(key), b, c, q);
            gch_cmdlist_cmd(l, "GET", key, NULL);
            b->cells_at++;
        }
    }

    for (i = 0; i < b->ncells; i++) {
        c = &b->cells[i];
        if (c->reason) {
            continue;
        }

        /* claims expire the day after the session's day */
        gch_lltoa(exat, (long long) gch_paris_to_unix(c->session->date + 2,
                                                       0));

        /* "<sid> <bid>" */
        slen = strlen(c->session->id);
        n = slen + 1 + GCH_BID_LEN;
        if (n >= sizeof(val)) {
            l->failed = 1;
            continue;
        }

        memcpy(val, c->session->id, slen);
        val[slen] = ' ';
        memcpy(val + slen + 1, c->bid, GCH_BID_LEN + 1);

        argv[0] = "SET"; argvlen[0] = 3;
        argv[1] = key;
        argv[2] = val; argvlen[2] = n;
        argv[3] = "NX"; argvlen[3] = 2;
        argv[4] = "GET"; argvlen[4] = 3;
        argv[5] = "EXAT"; argvlen[5] = 4;
        argv[6] = exat; argvlen[6] = strlen(exat);

        for (q = 0; q < 32; q++) {
            if (!(c->quanta & (1u << q))) {
                continue;
            }

            klen = gch_claim_key(key, sizeof(key), c, q);
            if (klen < 0) {
                l->failed = 1;
                continue;
            }

            argvlen[1] = (size_t) klen;
            gch_cmdlist_argv(l, 7, argv, argvlen);
        }

        gch_place_key(key, sizeof(key), c->session, GCH_LEFT(b));
        gch_cmdlist_cmd(l, "BITFIELD", key, "OVERFLOW", "FAIL", "INCRBY",
                        "u32", "0", "-1", NULL);
    }

    if (b->in.budget) {
        gch_budget_cmds(b, l);
    }

    gch_cmdlist_cmd(l, "EXEC", NULL);
}


/*
 * See gch.h.  On GCH_EFORBIDDEN, GCH_ENOMEM and GCH_EINVALID nothing is
 * returned in *out and err says why; the request must not reach Redis.
 */
int
gch_book_plan(gch_book_t **out, const gch_book_in_t *in,
    const gch_alloc_t *a, gch_error_t *err)
{
    size_t          i, n;
    gch_book_t     *b;
    gch_cell_t     *c;
    const gch_item_t  *it;

    *out = NULL;

    b = a->alloc(a->ctx, sizeof(gch_book_t));
    if (b == NULL) {
        gch_error_set(err, GCH_ENOMEM, NULL);
        return GCH_ENOMEM;
    }

    memset(b, 0, sizeof(gch_book_t));
    b->a = a;
    b->in = *in;
    b->state = GCH_BOOK_PLANNED;
    gch_cmdlist_init(&b->step1, a);
    gch_cmdlist_init(&b->step2, a);
    gch_cmdlist_init(&b->step3, a);
    gch_cmdlist_init(&b->check, a);

    b->ncells = in->req->nitems;
    b->cells = a->alloc(a->ctx, b->ncells * sizeof(gch_cell_t));
    if (b->cells == NULL) {
        goto nomem;
    }

    memset(b->cells, 0, b->ncells * sizeof(gch_cell_t));

    /* every child must be the family's: else nothing is written at all */

    for (i = 0; i < b->ncells; i++) {
        it = &in->req->items[i];
        c = &b->cells[i];
        c->item = it;
        c->child = gch_family_child(in->family, it->child_id, it->child_len);

        if (c->child == NULL) {
            gch_error_set(err, GCH_EFORBIDDEN,
                          "L'enfant \"%.*s\" n'appartient pas à votre "
                          "famille.", (int) it->child_len, it->child_id);
            gch_book_free(b);
            return GCH_EFORBIDDEN;
        }

        c->session = gch_town_session(in->town, it->session_id,
                                      it->session_len);
    }

    for (i = 0; i < b->ncells; i++) {
        c = &b->cells[i];

        if (c->session) {
            c->quanta = in->town->units[c->session->unit].quanta;
            c->needs = c->session->activity->unit_requires
                       ? c->session->activity->unit_requires[c->session->unit]
                       : 0;
            c->price_cents = gch_price_cents(c->session->activity,
                                             in->family);
        }

        gch_precheck(b, c, i);

        if (c->reason == GCH_REASON_NONE) {
            b->nopen++;
        }
    }

    gch_week_rule(b);

    n = strlen(in->family->id) + in->idem_len + 16;
    b->idem_rkey = a->alloc(a->ctx, n);
    if (b->idem_rkey == NULL) {
        goto nomem;
    }

    snprintf(b->idem_rkey, n, GCH_KEY_F(GCH_KEY_IDEM) ":%.*s", in->family->id,
             (int) in->idem_len, in->idem_key);

    /* step one is written when it is asked for: not at all when the
     * sold-out shortcut answers */

    *out = b;
    return GCH_OK;

nomem:

    gch_book_free(b);
    gch_error_set(err, GCH_ENOMEM, NULL);
    return GCH_ENOMEM;
}


/* See gch.h: NULL when memory is short (answer 503, nothing was sent). */
const gch_cmds_t *
gch_book_step1(gch_book_t *b)
{
    if (!b->step1_built) {
        b->step1_built = 1;
        gch_step1_build(b);
    }

    if (b->step1.failed) {
        return NULL;
    }

    b->state = GCH_BOOK_STEP1;
    return &b->step1.list;
}


/* The body is released (it may live inside the stored record). */
static void
gch_body_release(gch_book_t *b)
{
    if (!b->body_in_stored) {
        b->a->free(b->a->ctx, b->body);
    }

    b->body = NULL;
    b->body_len = 0;
    b->body_in_stored = 0;
}


static int
gch_reply_is_str(const redisReply *r)
{
    return r && (r->type == REDIS_REPLY_STRING
                 || r->type == REDIS_REPLY_STATUS);
}


static void
gch_error_body(gch_book_t *b, int status, const char *code,
    const char *message)
{
    gch_buf_t  o;

    b->status = status;
    gch_body_release(b);

    gch_buf_init(&o, b->a);
    gch_buf_lit(&o, "{\"error\":{\"code\":");
    gch_buf_jstrz(&o, code);
    gch_buf_lit(&o, ",\"message\":");
    gch_buf_jstrz(&o, message);
    gch_buf_lit(&o, "}}");

    b->body = gch_buf_detach(&o, &b->body_len);
}


static const char *
gch_request_status(const gch_book_t *b)
{
    size_t  i, ok;

    ok = 0;
    for (i = 0; i < b->ncells; i++) {
        ok += (b->cells[i].reason == GCH_REASON_NONE);
    }

    return ok == b->ncells ? "traitee_positivement"
           : ok == 0 ? "traitee_negativement" : "partielle";
}


/*
 * The items array, shared by the answer, the stream entry and the
 * demande: written once per request (b->items), copied after that.  JSON
 * is written by hand with gch_buf_jstr(): yajl's generator cost a
 * quarter of a booking's time.
 */
static int
gch_items_json(gch_book_t *b)
{
    char          opens[26];
    size_t        i;
    gch_buf_t     o;
    gch_cell_t   *c;

    if (b->items) {
        return 0;
    }

    gch_buf_init(&o, b->a);
    gch_buf_lit(&o, "[");

    for (i = 0; i < b->ncells; i++) {
        c = &b->cells[i];

        if (i) {
            gch_buf_lit(&o, ",");
        }

        gch_buf_lit(&o, "{\"child_id\":");
        gch_buf_jstr(&o, c->item->child_id, c->item->child_len);
        gch_buf_lit(&o, ",\"session_id\":");
        gch_buf_jstr(&o, c->item->session_id, c->item->session_len);

        if (c->reason == GCH_REASON_NONE) {
            gch_buf_lit(&o, ",\"status\":\"confirmed\",\"booking_id\":");
            gch_buf_jstrz(&o, c->bid);
            gch_buf_lit(&o, ",\"price_cents\":");
            gch_buf_addi(&o, c->price_cents);

            if (b->in.onsite) {
                gch_buf_lit(&o, ",\"channel\":\"onsite\"");
            }

        } else {
            gch_buf_lit(&o, ",\"status\":\"refused\",\"reason\":");
            gch_buf_jstrz(&o, gch_reason_name(c->reason));

            if (c->reason == GCH_REASON_NOT_OPEN_YET) {
                gch_instant_format(c->session->activity->opens_at, opens);
                gch_buf_lit(&o, ",\"opens_at\":");
                gch_buf_jstrz(&o, opens);
            }
        }

        gch_buf_lit(&o, "}");
    }

    gch_buf_lit(&o, "]");

    b->items = gch_buf_detach(&o, &b->items_len);

    return b->items ? 0 : -1;
}


/* The answer, after "prefix" (the stored record's "D <hash> "). */
static char *
gch_answer_json(gch_book_t *b, const char *prefix, size_t plen, size_t *len)
{
    gch_buf_t  o;

    if (gch_items_json(b) != 0) {
        return NULL;
    }

    gch_buf_init(&o, b->a);
    gch_buf_add(&o, prefix, plen);
    gch_buf_lit(&o, "{\"request_id\":");
    gch_buf_jstrz(&o, b->request_id[0] ? b->request_id : NULL);
    gch_buf_lit(&o, ",\"status\":");
    gch_buf_jstrz(&o, gch_request_status(b));
    gch_buf_lit(&o, ",\"items\":");
    gch_buf_add(&o, b->items, b->items_len);
    gch_buf_lit(&o, "}");

    return gch_buf_detach(&o, len);
}


static char *
gch_entry_json(gch_book_t *b, size_t *len)
{
    gch_buf_t  o;

    if (gch_items_json(b) != 0) {
        return NULL;
    }

    gch_buf_init(&o, b->a);
    gch_buf_lit(&o, "{\"type\":\"book\",\"number\":");
    gch_buf_addi(&o, b->number);
    gch_buf_lit(&o, ",\"request_id\":");
    gch_buf_jstrz(&o, b->request_id);
    gch_buf_lit(&o, ",\"family_id\":");
    gch_buf_jstrz(&o, b->in.family->id);
    gch_buf_lit(&o, ",\"idem\":");
    gch_buf_jstr(&o, b->in.idem_key, b->in.idem_len);
    gch_buf_lit(&o, ",\"at_ms\":");
    gch_buf_addi(&o, b->in.now_ms);
    gch_buf_lit(&o, ",\"status\":");
    gch_buf_jstrz(&o, gch_request_status(b));

    if (b->in.onsite && b->in.agent) {
        /* who booked at the counter: booking.booked_by */
        gch_buf_lit(&o, ",\"agent\":");
        gch_buf_jstrz(&o, b->in.agent);
    }

    gch_buf_lit(&o, ",\"items\":");
    gch_buf_add(&o, b->items, b->items_len);
    gch_buf_lit(&o, "}");

    return gch_buf_detach(&o, len);
}


/* The family's list of demandes (GET /api/requests) keeps this entry. */
static char *
gch_demande_json(gch_book_t *b, size_t *len)
{
    int           n;
    char          at[26];
    size_t        i, j;
    gch_buf_t     o;
    gch_reason_t  r;

    if (gch_items_json(b) != 0) {
        return NULL;
    }

    gch_instant_format(b->in.now_ms / 1000, at);

    gch_buf_init(&o, b->a);
    gch_buf_lit(&o, "{\"request_id\":");
    gch_buf_jstrz(&o, b->request_id);
    gch_buf_lit(&o, ",\"number\":");
    gch_buf_addi(&o, b->number);
    gch_buf_lit(&o, ",\"type\":\"booking\",\"created_at\":");
    gch_buf_jstrz(&o, at);
    gch_buf_lit(&o, ",\"status\":");
    gch_buf_jstrz(&o, gch_request_status(b));
    gch_buf_lit(&o, ",\"reasons\":[");

    n = 0;

    for (i = 0; i < b->ncells; i++) {
        r = b->cells[i].reason;
        if (r == GCH_REASON_NONE) {
            continue;
        }

        for (j = 0; j < i; j++) {
            if (b->cells[j].reason == r) {
                break;
            }
        }

        if (j == i) {
            if (n++) {
                gch_buf_lit(&o, ",");
            }

            gch_buf_jstrz(&o, gch_reason_name(r));
        }
    }

    gch_buf_lit(&o, "],\"items\":");
    gch_buf_add(&o, b->items, b->items_len);
    gch_buf_lit(&o, "}");

    return gch_buf_detach(&o, len);
}


static char *
gch_planning_json(gch_book_t *b, const gch_cell_t *c, size_t *len)
{
    gch_buf_t  o;

    gch_buf_init(&o, b->a);
    gch_buf_lit(&o, "{\"child_id\":");
    gch_buf_jstrz(&o, c->child->id);
    gch_buf_lit(&o, ",\"session_id\":");
    gch_buf_jstrz(&o, c->session->id);
    gch_buf_lit(&o, ",\"price_cents\":");
    gch_buf_addi(&o, c->price_cents);
    gch_buf_lit(&o, ",\"request_id\":");
    gch_buf_jstrz(&o, b->request_id);
    gch_buf_lit(&o, ",\"at_ms\":");
    gch_buf_addi(&o, b->in.now_ms);

    if (b->in.onsite) {
        gch_buf_lit(&o, ",\"channel\":\"onsite\"");
    }

    gch_buf_lit(&o, "}");

    return gch_buf_detach(&o, len);
}


/* Undo what step one took for cell c (claims set, place taken). */
static void
gch_undo_cell(gch_book_t *b, gch_cmdlist_t *l, gch_cell_t *c)
{
    int   q;
    char  key[GCH_KEY_MAX];

    for (q = 0; q < 32; q++) {
        if ((c->claimed & (1u << q))
            && gch_claim_key(key, sizeof(key), c, q) > 0)
        {
            gch_cmdlist_cmd(l, "DEL", key, NULL);
        }
    }

    if (c->took_place) {
        gch_place_key(key, sizeof(key), c->session, GCH_LEFT(b));
        gch_cmdlist_cmd(l, "BITFIELD", key, "OVERFLOW", "FAIL", "INCRBY",
                        "u32", "0", "1", NULL);
    }

    (void) b;
}


/*
 * Reads one cell's claim and place replies (starting at *k in the EXEC
 * array) and decides its outcome.  Returns -1 on an unexpected reply.
 */
static int
gch_cell_outcome(gch_book_t *b, gch_cell_t *c, const redisReply *exec,
    size_t *k)
{
    int                q;
    const char        *sp;
    const redisReply  *r, *bf;
    const char        *held;

    held = NULL;

    for (q = 0; q < 32; q++) {
        if (!(c->quanta & (1u << q))) {
            continue;
        }

        if (*k >= exec->elements) {
            return -1;
        }

        r = exec->element[(*k)++];

        if (r->type == REDIS_REPLY_NIL) {
            c->claimed |= 1u << q;

        } else if (r->type == REDIS_REPLY_STRING) {
            held = r->str;

            /* "<sid> <bid>": the same session means already booked */
            sp = strrchr(r->str, ' ');
            if (sp && (size_t) (sp - r->str) == strlen(c->session->id)
                && memcmp(r->str, c->session->id, sp - r->str) == 0)
            {
                c->reason = GCH_REASON_ALREADY_BOOKED;
            }

        } else {
            return -1;
        }
    }

    if (*k >= exec->elements) {
        return -1;
    }

    bf = exec->element[(*k)++];
    if (bf->type != REDIS_REPLY_ARRAY || bf->elements != 1) {
        return -1;
    }

    c->took_place = (bf->element[0]->type == REDIS_REPLY_INTEGER);

    if (held && c->reason == GCH_REASON_NONE) {
        c->reason = GCH_REASON_CONFLICT;

    } else if (!held && !c->took_place) {
        c->reason = GCH_REASON_FULL;
    }

    (void) b;
    return 0;
}


/*
 * How long the answer is kept for a retry: a request with no cell
 * confirmed keeps nothing else and may be kept less (refused_ttl_s).
 */
static int64_t
gch_answer_ttl(const gch_book_t *b)
{
    size_t  i;

    if (b->in.refused_ttl_s <= 0
        || b->in.refused_ttl_s >= b->in.idem_ttl_s)
    {
        return b->in.idem_ttl_s;
    }

    for (i = 0; i < b->ncells; i++) {
        if (b->cells[i].reason == GCH_REASON_NONE) {
            return b->in.idem_ttl_s;
        }
    }

    return b->in.refused_ttl_s;
}


static void
gch_step2_build(gch_book_t *b)
{
    int             flen;
    char            key[GCH_KEY_MAX], fkey[GCH_KEY_MAX], ttl[24];
    char           *entry, *plan;
    size_t          i, len;
    gch_cell_t     *c;
    gch_cmdlist_t  *l;
    const char     *argv[8];
    size_t          argvlen[8];

    l = &b->step2;
    gch_lltoa(ttl, (long long) gch_answer_ttl(b));
    flen = gch_key3(fkey, sizeof(fkey), GCH_KEY_F_TAG, b->in.family->id,
                    strlen(b->in.family->id),
                    GCH_KEY_TAG_END GCH_KEY_BOOKINGS);
    if (flen < 0) {
        l->failed = 1;
        return;
    }

    gch_cmdlist_cmd(l, "MULTI", NULL);

    argv[0] = "SET"; argvlen[0] = 3;
    argv[1] = b->idem_rkey; argvlen[1] = strlen(b->idem_rkey);
    argv[2] = b->stored; argvlen[2] = b->stored_len;
    argv[3] = "XX"; argvlen[3] = 2;
    argv[4] = "GET"; argvlen[4] = 3;
    argv[5] = "EX"; argvlen[5] = 2;
    argv[6] = ttl; argvlen[6] = strlen(ttl);
    gch_cmdlist_argv(l, 7, argv, argvlen);

    gch_cmdlist_cmd(l, "ZREM", GCH_KEY_INFLIGHT, b->member, NULL);

    for (i = 0; i < b->ncells; i++) {
        c = &b->cells[i];

        if (c->session == NULL) {
            continue;
        }

        if (c->reason) {
            gch_undo_cell(b, l, c);
            continue;
        }

        gch_place_key(key, sizeof(key), c->session, GCH_BOOKED(b));
        gch_cmdlist_cmd(l, "SADD", key, c->bid, NULL);

        plan = gch_planning_json(b, c, &len);
        if (plan == NULL) {
            l->failed = 1;
            continue;
        }

        argv[0] = "HSET"; argvlen[0] = 4;
        argv[1] = fkey; argvlen[1] = (size_t) flen;
        argv[2] = c->bid; argvlen[2] = GCH_BID_LEN;
        argv[3] = plan; argvlen[3] = len;
        gch_cmdlist_argv(l, 4, argv, argvlen);
        b->a->free(b->a->ctx, plan);
    }

    entry = gch_entry_json(b, &len);
    if (entry == NULL) {
        l->failed = 1;

    } else {
        argv[0] = "XADD"; argvlen[0] = 4;
        argv[1] = GCH_KEY_STREAM; argvlen[1] = sizeof(GCH_KEY_STREAM) - 1;
        argv[2] = "*"; argvlen[2] = 1;
        argv[3] = "d"; argvlen[3] = 1;
        argv[4] = entry; argvlen[4] = len;
        gch_cmdlist_argv(l, 5, argv, argvlen);
        b->a->free(b->a->ctx, entry);
    }

    entry = gch_demande_json(b, &len);
    if (entry == NULL) {
        l->failed = 1;

    } else {
        (void) gch_demandes_key(key, sizeof(key), b);
        argv[0] = "LPUSH"; argvlen[0] = 5;
        argv[1] = key; argvlen[1] = strlen(key);
        argv[2] = entry; argvlen[2] = len;
        gch_cmdlist_argv(l, 3, argv, argvlen);
        b->a->free(b->a->ctx, entry);
    }

    gch_cmdlist_cmd(l, "EXEC", NULL);
}


/* Replays, 409 and 422: give back whatever step one took. */
static void
gch_compensate_all(gch_book_t *b)
{
    size_t       i, before;
    gch_cell_t  *c;

    gch_cmdlist_cmd(&b->step2, "MULTI", NULL);
    before = b->step2.list.ncmds;

    for (i = 0; i < b->ncells; i++) {
        c = &b->cells[i];
        if (c->session) {
            gch_undo_cell(b, &b->step2, c);
        }
    }

    if (b->step2.list.ncmds == before) {
        gch_cmdlist_free(&b->step2);     /* nothing to undo */
        return;
    }

    gch_cmdlist_cmd(&b->step2, "EXEC", NULL);
}


/* Reads claim and place replies only to learn what to undo. */
static int
gch_scan_taken(gch_book_t *b, const redisReply *exec)
{
    size_t       i, k;
    gch_cell_t  *c;

    k = b->cells_at;
    for (i = 0; i < b->ncells; i++) {
        c = &b->cells[i];
        if (c->reason) {
            continue;
        }

        if (gch_cell_outcome(b, c, exec, &k) != 0) {
            return -1;
        }
    }

    return 0;
}


static int
gch_idem_verdict(gch_book_t *b, const redisReply *r)
{
    const char  *p;
    size_t       n;

    /* "P <hash> ..." or "D <hash> <answer>" */

    if (r->len < 35 || r->str[1] != ' ' || r->str[34] != ' ') {
        gch_error_body(b, 503, "unavailable",
                       "Le service est momentanément indisponible.");
        return -1;
    }

    if (memcmp(r->str + 2, b->hash, 32) != 0) {
        gch_error_body(b, 422, "idempotency_key_reused",
                       "Cette clé Idempotency-Key a déjà servi pour une "
                       "autre demande.");
        return 0;
    }

    if (r->str[0] == 'P') {
        gch_error_body(b, 409, "request_in_progress",
                       "Cette demande est déjà en cours de traitement.");
        return 0;
    }

    p = r->str + 35;
    n = r->len - 35;

    b->body = b->a->alloc(b->a->ctx, n + 1);
    if (b->body == NULL) {
        return -1;
    }

    memcpy(b->body, p, n);
    b->body[n] = '\0';
    b->body_len = n;
    b->status = 200;
    b->replayed = 1;

    return 0;
}


/*
 * Redis lost its data (no catalogue generation) or went back in time (an
 * older one than the catalogue this request was planned with): nothing
 * may be sold on counters that are not the truth.
 */
static int
gch_data_lost(gch_book_t *b, const redisReply *gen)
{
    long long  g;

    if (gen->type != REDIS_REPLY_STRING) {
        return 1;
    }

    g = strtoll(gen->str, NULL, 10);

    return g <= 0 || g < b->in.catalogue_gen;
}


/* Undo all of step one (its record too) and answer this error. */
static int
gch_abort(gch_book_t *b, const redisReply *exec, int status,
    const char *code, const char *message)
{
    b->state = GCH_BOOK_DONE;

    if (gch_scan_taken(b, exec) != 0) {
        return GCH_EREDIS;
    }

    gch_compensate_all(b);

    if (exec->element[0]->type == REDIS_REPLY_NIL) {
        /* the record step one created */
        if (b->step2.list.ncmds == 0) {
            gch_cmdlist_cmd(&b->step2, "MULTI", NULL);
        } else {
            b->a->free(b->a->ctx, b->step2.list.cmds[--b->step2.list.ncmds]
                                      .data);    /* reopen before EXEC */
        }

        gch_cmdlist_cmd(&b->step2, "DEL", b->idem_rkey, NULL);
        gch_cmdlist_cmd(&b->step2, "ZREM", GCH_KEY_INFLIGHT, b->member, NULL);
        gch_cmdlist_cmd(&b->step2, "EXEC", NULL);
    }

    gch_error_body(b, status, code, message);

    return b->step2.failed ? GCH_ENOMEM : GCH_OK;
}


/* Undo all of step one and answer 503 until the worker has rebuilt. */
static int
gch_fail_closed(gch_book_t *b, const redisReply *exec)
{
    return gch_abort(b, exec, 503, "unavailable",
                     "Le guichet se remet d'une panne : rien n'a été "
                     "réservé. Réessayez dans un instant.");
}


/*
 * The family's budget (gch_budget_cmds): 0 within it, 1 past it
 * (b->retry_after set), -1 on unexpected replies.
 */
static int
gch_over_budget(gch_book_t *b, const redisReply *exec)
{
    const redisReply  *spent, *ttl;

    if (b->budget_at + 2 >= exec->elements) {
        return -1;
    }

    spent = exec->element[b->budget_at];
    ttl = exec->element[b->budget_at + 2];

    if (spent->type != REDIS_REPLY_INTEGER
        || ttl->type != REDIS_REPLY_INTEGER)
    {
        return -1;
    }

    b->retry_after = gch_family_throttle(spent->integer, ttl->integer);

    return b->retry_after > 0;
}


/* "D-%06lld" of the demande number */
static void
gch_request_id(gch_book_t *b)
{
    char    num[24];
    size_t  n, pad;

    n = gch_lltoa(num, b->number);
    pad = (b->number >= 0 && n < 6) ? 6 - n : 0;

    memcpy(b->request_id, "D-", 2);
    memset(b->request_id + 2, '0', pad);
    memcpy(b->request_id + 2 + pad, num, n + 1);
}


/*
 * See gch.h.  Returns GCH_EREDIS on an unexpected reply (the answer is
 * then 503), GCH_ENOMEM when memory is short.
 */
int
gch_book_on_step1(gch_book_t *b, const redisReply *exec)
{
    char         prefix[35];
    size_t       i, k, len;
    gch_cell_t  *c;
    const redisReply  *r;

    if (exec == NULL || exec->type != REDIS_REPLY_ARRAY
        || exec->elements < b->cells_at)
    {
        b->state = GCH_BOOK_DONE;
        return GCH_EREDIS;
    }

    if (gch_data_lost(b, exec->element[3])) {
        return gch_fail_closed(b, exec);
    }

    r = exec->element[0];

    if (r->type != REDIS_REPLY_NIL) {

        /* the key was known: replay, in progress or reused */

        b->state = GCH_BOOK_DONE;

        if (!gch_reply_is_str(r) || gch_scan_taken(b, exec) != 0) {
            return GCH_EREDIS;
        }

        if (gch_idem_verdict(b, r) != 0) {
            return b->body ? GCH_EREDIS : GCH_ENOMEM;
        }

        gch_compensate_all(b);

        /* this attempt's own member in gch:inflight, with what it undoes
         * (the first attempt's member, if it is live, is its own) */
        if (b->step2.list.ncmds == 0) {
            gch_cmdlist_cmd(&b->step2, "MULTI", NULL);
        } else {
            b->a->free(b->a->ctx,
                       b->step2.list.cmds[--b->step2.list.ncmds].data);
        }

        gch_cmdlist_cmd(&b->step2, "ZREM", GCH_KEY_INFLIGHT, b->member, NULL);
        gch_cmdlist_cmd(&b->step2, "EXEC", NULL);

        return b->step2.failed ? GCH_ENOMEM : GCH_OK;
    }

    if (exec->element[1]->type != REDIS_REPLY_INTEGER) {
        b->state = GCH_BOOK_DONE;
        return GCH_EREDIS;
    }

    if (b->in.budget) {
        switch (gch_over_budget(b, exec)) {
        case 0:
            break;
        case 1:
            return gch_abort(b, exec, 429, "rate_limited",
                             "Trop de demandes de réservation pour cette "
                             "famille en peu de temps : rien n'a été "
                             "réservé. Réessayez dans un moment.");
        default:
            b->state = GCH_BOOK_DONE;
            return GCH_EREDIS;
        }
    }

    b->number = exec->element[1]->integer;
    gch_request_id(b);

    k = b->cells_at;
    for (i = 0; i < b->ncells; i++) {
        c = &b->cells[i];
        if (c->reason) {
            continue;
        }

        if (gch_cell_outcome(b, c, exec, &k) != 0) {
            b->state = GCH_BOOK_DONE;
            return GCH_EREDIS;
        }
    }

    gch_needs_outcome(b, exec);
    gch_week_outcome(b);

    /* the stored record "D <hash> <answer>"; the body is its tail */

    memcpy(prefix, "D ", 2);
    memcpy(prefix + 2, b->hash, 32);
    prefix[34] = ' ';

    b->stored = gch_answer_json(b, prefix, 35, &len);
    if (b->stored == NULL) {
        return GCH_ENOMEM;
    }

    b->stored_len = len;
    b->body = b->stored + 35;
    b->body_len = len - 35;
    b->body_in_stored = 1;
    b->status = 200;

    gch_step2_build(b);

    return b->step2.failed ? GCH_ENOMEM : GCH_OK;
}


const gch_cmds_t *
gch_book_step2(gch_book_t *b)
{
    if (b->step2.list.ncmds == 0) {
        return NULL;
    }

    if (b->state == GCH_BOOK_STEP1) {
        b->state = GCH_BOOK_STEP2;
    }

    return &b->step2.list;
}


static void
gch_step3_build(gch_book_t *b)
{
    int             n;
    char            key[GCH_KEY_MAX], fkey[GCH_KEY_MAX];
    size_t          i;
    char           *entry;
    gch_buf_t       o;
    gch_cell_t     *c;
    gch_cmdlist_t  *l;

    l = &b->step3;
    gch_cmdlist_cmd(l, "MULTI", NULL);

    (void) gch_key3(fkey, sizeof(fkey), GCH_KEY_F_TAG, b->in.family->id,
                    strlen(b->in.family->id),
                    GCH_KEY_TAG_END GCH_KEY_BOOKINGS);

    gch_buf_init(&o, b->a);
    gch_buf_lit(&o, "{\"type\":\"void\",\"family_id\":");
    gch_buf_jstrz(&o, b->in.family->id);
    gch_buf_lit(&o, ",\"idem\":");
    gch_buf_jstr(&o, b->in.idem_key, b->in.idem_len);
    gch_buf_lit(&o, ",\"booking_ids\":[");

    n = 0;

    for (i = 0; i < b->ncells; i++) {
        c = &b->cells[i];
        if (c->reason) {
            continue;
        }

        if (n++) {
            gch_buf_lit(&o, ",");
        }

        gch_buf_jstrz(&o, c->bid);

        gch_place_key(key, sizeof(key), c->session, GCH_BOOKED(b));
        gch_cmdlist_cmd(l, "SREM", key, c->bid, NULL);
        gch_cmdlist_cmd(l, "HDEL", fkey, c->bid, NULL);
    }

    gch_buf_lit(&o, "]}");

    entry = gch_buf_detach(&o, NULL);
    if (entry == NULL) {
        l->failed = 1;
        return;
    }

    gch_cmdlist_cmd(l, "XADD", GCH_KEY_STREAM, "*", "d", entry, NULL);
    b->a->free(b->a->ctx, entry);

    gch_cmdlist_cmd(l, "DEL", b->idem_rkey, NULL);
    gch_cmdlist_cmd(l, "EXEC", NULL);
}


/*
 * See gch.h.  GCH_EFENCED: the reaper released this attempt before step
 * two ran; send gch_book_step3() and answer 503.
 */
int
gch_book_on_step2(gch_book_t *b, const redisReply *exec)
{
    const redisReply  *r;

    b->state = GCH_BOOK_DONE;

    if (b->replayed || b->status != 200 || b->stored == NULL) {
        return GCH_OK;                   /* a compensation: no verdict */
    }

    if (exec == NULL || exec->type != REDIS_REPLY_ARRAY
        || exec->elements < 1)
    {
        return GCH_EREDIS;
    }

    r = exec->element[0];

    /* our own "P <hash> <attempt id> ...": not another attempt's with the
     * same body, which owns the key since the reaper released ours */
    if (!gch_reply_is_str(r) || !gch_own_record(b, r->str, r->len)) {
        gch_step3_build(b);
        gch_body_release(b);
        gch_error_body(b, 503, "unavailable",
                       "Le service est momentanément indisponible, "
                       "rien n'a été réservé. Réessayez.");
        return GCH_EFENCED;
    }

    /* the last reply is LPUSH's: the length of the demande list */
    r = exec->element[exec->elements - 1];
    if (r->type == REDIS_REPLY_INTEGER && r->integer > GCH_DEMANDES_TRIM) {
        char  key[GCH_KEY_MAX];

        if (gch_demandes_key(key, sizeof(key), b) >= 0) {
            gch_cmdlist_cmd(&b->step3, "LTRIM", key, "0", GCH_DEMANDES_LAST,
                            NULL);
        }
    }

    return GCH_OK;
}


const gch_cmds_t *
gch_book_step3(gch_book_t *b)
{
    /* a step three cut short by memory would leave a MULTI open */
    return (b->step3.list.ncmds && !b->step3.failed) ? &b->step3.list
                                                      : NULL;
}


int
gch_book_done(const gch_book_t *b)
{
    return b->state == GCH_BOOK_DONE
           || (b->body != NULL && b->step2.list.ncmds == 0
               && b->state != GCH_BOOK_PLANNED);
}


int
gch_book_status(const gch_book_t *b)
{
    return b->status;
}


const char *
gch_book_body(const gch_book_t *b, size_t *len)
{
    *len = b->body_len;
    return b->body;
}


int
gch_book_replayed(const gch_book_t *b)
{
    return b->replayed;
}


long long
gch_book_retry_after(const gch_book_t *b)
{
    return b->status == 429 ? b->retry_after : 0;
}


void
gch_book_free(gch_book_t *b)
{
    const gch_alloc_t  *a;

    if (b == NULL) {
        return;
    }

    a = b->a;
    gch_cmdlist_free(&b->step1);
    gch_cmdlist_free(&b->step2);
    gch_cmdlist_free(&b->step3);
    gch_cmdlist_free(&b->check);
    a->free(a->ctx, b->cells);
    a->free(a->ctx, b->idem_rkey);
    a->free(a->ctx, b->member);
    gch_body_release(b);
    a->free(a->ctx, b->stored);
    a->free(a->ctx, b->items);
    a->free(a->ctx, b);
}


size_t
gch_book_ncells(const gch_book_t *b)
{
    return (b->status == 200 && !b->replayed) ? b->ncells : 0;
}


gch_reason_t
gch_book_cell_outcome(const gch_book_t *b, size_t i)
{
    return b->cells[i].reason;
}


const char *
gch_book_cell_reason(const gch_book_t *b, size_t i)
{
    return gch_reason_name(b->cells[i].reason);
}


const gch_session_t *
gch_book_cell_session(const gch_book_t *b, size_t i)
{
    return b->cells[i].session;
}


/*
 * See gch.h.  The answer refuses every open cell "full" without a demande
 * (request_id null): nothing was sent, nothing is written, nothing is kept
 * for a replay.
 */
int
gch_book_sold_out(gch_book_t *b,
    int (*sold_out)(const gch_session_t *s, void *ctx), void *ctx)
{
    size_t       i;
    gch_cell_t  *c;

    if (b->nopen == 0 || b->state != GCH_BOOK_PLANNED) {
        return 0;
    }

    for (i = 0; i < b->ncells; i++) {
        c = &b->cells[i];
        if (c->reason == GCH_REASON_NONE && !sold_out(c->session, ctx)) {
            return 0;
        }
    }

    for (i = 0; i < b->ncells; i++) {
        c = &b->cells[i];
        if (c->reason == GCH_REASON_NONE) {
            c->reason = GCH_REASON_FULL;
        }
    }

    b->request_id[0] = '\0';
    b->body = gch_answer_json(b, "", 0, &b->body_len);
    if (b->body == NULL) {
        return GCH_ENOMEM;
    }

    b->status = 200;
    b->state = GCH_BOOK_DONE;

    return 1;
}


/*
 * See gch.h: EXISTS {f:<fid>}:idem:<key>, after gch_book_sold_out()
 * answered from the cache.  NULL when memory is short.
 */
const gch_cmds_t *
gch_book_idem_check(gch_book_t *b)
{
    if (b->check.list.ncmds == 0) {
        gch_cmdlist_cmd(&b->check, "EXISTS", b->idem_rkey, NULL);
    }

    return b->check.failed ? NULL : &b->check.list;
}
