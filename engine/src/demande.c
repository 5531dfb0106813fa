/*
 * demande.c -- a booking demande's compact form: what the idempotency
 * record, the family's demande list and the stream entry store, and the
 * JSON rendered from it when it is read (the answer of a replay, GET
 * /api/requests, the worker's entry).  See gch.h and
 * docs/architecture.md, "The compact demande".
 *
 *   ~1 <number> <at_ms> <o|w> <family> <key> <agent> <ncells>
 *      then per cell: <child> <session> +<price>
 *                     | -<reason>[@<opens>][#<waiting list position>]
 *      and, for a swap, " ><replaced booking>", then when confirmed
 *      " <released session> <0|1 billed>"
 *
 * every string "<length>:<bytes>" (any bytes: a refused cell keeps the
 * session id the client sent), every field separated by one space.
 * Booking ids are derived (gch_book_id), never stored.  The live answer
 * is rendered by the same functions (book_answer.c), so that a replay is
 * byte for byte the first answer.
 */

#include <stdlib.h>
#include <string.h>

#include "resp.h"


#define GCH_DM_NUM_MAX  18     /* digits of a number: no overflow */


static void
gch_dm_str(gch_buf_t *o, const char *s, size_t n)
{
    gch_buf_addu(o, n);
    gch_buf_lit(o, ":");
    gch_buf_add(o, s, n);
}


/* See gch.h. */
char *
gch_dm_encode(const gch_dm_t *d, const gch_alloc_t *a, size_t *len)
{
    size_t                i;
    gch_buf_t             o;
    const char           *name;
    const gch_dm_cell_t  *c;

    if (d->ncells > GCH_DM_MAX_CELLS) {
        return NULL;
    }

    gch_buf_init(&o, a);
    gch_buf_lit(&o, GCH_DM_MAGIC);
    gch_buf_addi(&o, d->number);
    gch_buf_lit(&o, " ");
    gch_buf_addi(&o, d->at_ms);
    gch_buf_add(&o, d->onsite ? " o " : " w ", 3);
    gch_dm_str(&o, d->family, d->family_len);
    gch_buf_lit(&o, " ");
    gch_dm_str(&o, d->key, d->key_len);
    gch_buf_lit(&o, " ");
    gch_dm_str(&o, d->agent, d->agent_len);
    gch_buf_lit(&o, " ");
    gch_buf_addu(&o, d->ncells);

    for (i = 0; i < d->ncells; i++) {
        c = &d->cells[i];
        gch_buf_lit(&o, " ");
        gch_dm_str(&o, c->child, c->child_len);
        gch_buf_lit(&o, " ");
        gch_dm_str(&o, c->session, c->session_len);

        if (c->reason == GCH_REASON_NONE) {
            gch_buf_lit(&o, " +");
            gch_buf_addi(&o, c->price_cents);

        } else {
            name = gch_reason_name(c->reason);
            if (name == NULL) {
                gch_buf_free(&o);
                return NULL;
            }

            gch_buf_lit(&o, " -");
            gch_buf_adds(&o, name);

            if (c->reason == GCH_REASON_NOT_OPEN_YET
                || c->reason == GCH_REASON_ENTERED)
            {
                gch_buf_lit(&o, "@");
                gch_buf_addi(&o, c->opens_at);
            }

            if (c->position > 0) {
                gch_buf_lit(&o, "#");
                gch_buf_addi(&o, c->position);
            }
        }

        if (c->replaces_len == 0) {
            continue;
        }

        /* a swap: the booking replaced, released when confirmed */
        gch_buf_lit(&o, " >");
        gch_dm_str(&o, c->replaces, c->replaces_len);

        if (c->reason == GCH_REASON_NONE) {
            gch_buf_lit(&o, " ");
            gch_dm_str(&o, c->released, c->released_len);
            if (c->billed) {
                gch_buf_lit(&o, " 1");
            } else {
                gch_buf_lit(&o, " 0");
            }
        }
    }

    return gch_buf_detach(&o, len);
}


/* ----- decoding: every read is bounded by end ----------------------- */

typedef struct {
    const char  *p;
    const char  *end;
} gch_dm_rd_t;


static int
gch_dm_sp(gch_dm_rd_t *r)
{
    if (r->p >= r->end || *r->p != ' ') {
        return -1;
    }

    r->p++;
    return 0;
}


/* A decimal integer, '-' allowed when neg, spelled as gch_buf_addi does. */
static int
gch_dm_int(gch_dm_rd_t *r, int neg, long long *v)
{
    int        minus, n;
    long long  x;

    minus = 0;
    if (neg && r->p < r->end && *r->p == '-') {
        minus = 1;
        r->p++;
    }

    x = 0;
    for (n = 0; r->p < r->end && *r->p >= '0' && *r->p <= '9'; n++) {
        if (n == GCH_DM_NUM_MAX) {
            return -1;
        }

        x = x * 10 + (*r->p++ - '0');
    }

    /* one spelling per number: no leading zero, no "-0" */
    if (n == 0 || (n > 1 && r->p[-n] == '0') || (minus && x == 0)) {
        return -1;
    }

    *v = minus ? -x : x;
    return 0;
}


static int
gch_dm_rstr(gch_dm_rd_t *r, const char **s, size_t *n)
{
    long long  len;

    if (gch_dm_int(r, 0, &len) != 0 || r->p >= r->end || *r->p != ':') {
        return -1;
    }

    r->p++;

    if (len > r->end - r->p) {
        return -1;
    }

    *s = r->p;
    *n = (size_t) len;
    r->p += len;

    return 0;
}


static int
gch_dm_reason(gch_dm_rd_t *r, gch_reason_t *reason)
{
    int          i;
    size_t       n;
    const char  *s, *name;

    s = r->p;
    while (r->p < r->end && *r->p != ' ' && *r->p != '@' && *r->p != '#') {
        r->p++;
    }

    n = (size_t) (r->p - s);

    for (i = GCH_REASON_NONE + 1; i < GCH_REASON_COUNT; i++) {
        name = gch_reason_name((gch_reason_t) i);
        if (name && strlen(name) == n && memcmp(name, s, n) == 0) {
            *reason = (gch_reason_t) i;
            return 0;
        }
    }

    return -1;
}


/* A swap's " ><replaced>[ <released session> <0|1>]", if any. */
static int
gch_dm_swap(gch_dm_rd_t *r, gch_dm_cell_t *c)
{
    if (r->end - r->p < 2 || r->p[0] != ' ' || r->p[1] != '>') {
        return 0;
    }

    r->p += 2;

    if (gch_dm_rstr(r, &c->replaces, &c->replaces_len) != 0
        || c->replaces_len == 0)
    {
        return -1;
    }

    if (c->reason != GCH_REASON_NONE) {
        return 0;
    }

    if (gch_dm_sp(r) != 0
        || gch_dm_rstr(r, &c->released, &c->released_len) != 0
        || gch_dm_sp(r) != 0 || r->p >= r->end
        || (*r->p != '0' && *r->p != '1'))
    {
        return -1;
    }

    c->billed = (*r->p++ == '1');

    return 0;
}


static int
gch_dm_cell(gch_dm_rd_t *r, gch_dm_cell_t *c)
{
    if (gch_dm_sp(r) != 0 || gch_dm_rstr(r, &c->child, &c->child_len) != 0
        || gch_dm_sp(r) != 0
        || gch_dm_rstr(r, &c->session, &c->session_len) != 0
        || gch_dm_sp(r) != 0 || r->p >= r->end)
    {
        return -1;
    }

    if (*r->p == '+') {
        r->p++;
        c->reason = GCH_REASON_NONE;
        if (gch_dm_int(r, 1, &c->price_cents) != 0) {
            return -1;
        }

        return gch_dm_swap(r, c);
    }

    if (*r->p++ != '-' || gch_dm_reason(r, &c->reason) != 0) {
        return -1;
    }

    if ((c->reason == GCH_REASON_NOT_OPEN_YET
         || c->reason == GCH_REASON_ENTERED)
        && (r->p >= r->end || *r->p++ != '@'
            || gch_dm_int(r, 1, &c->opens_at) != 0))
    {
        return -1;
    }

    /* a place on the waiting list: "#<position>", full only */
    if (r->p < r->end && *r->p == '#') {
        r->p++;
        if (c->reason != GCH_REASON_FULL
            || gch_dm_int(r, 0, &c->position) != 0 || c->position <= 0)
        {
            return -1;
        }
    }

    return gch_dm_swap(r, c);
}


/* See gch.h. */
int
gch_dm_decode(gch_dm_t *d, const char *p, size_t n, const gch_alloc_t *a)
{
    size_t        i;
    long long     ncells;
    gch_dm_rd_t   r;

    memset(d, 0, sizeof(*d));

    r.p = p;
    r.end = p + n;

    if (n < sizeof(GCH_DM_MAGIC) - 1
        || memcmp(p, GCH_DM_MAGIC, sizeof(GCH_DM_MAGIC) - 1) != 0)
    {
        return GCH_EINVALID;
    }

    r.p += sizeof(GCH_DM_MAGIC) - 1;

    if (gch_dm_int(&r, 1, &d->number) != 0 || gch_dm_sp(&r) != 0
        || gch_dm_int(&r, 0, &d->at_ms) != 0 || gch_dm_sp(&r) != 0
        || r.p >= r.end || (*r.p != 'o' && *r.p != 'w'))
    {
        return GCH_EINVALID;
    }

    d->onsite = (*r.p++ == 'o');

    if (gch_dm_sp(&r) != 0
        || gch_dm_rstr(&r, &d->family, &d->family_len) != 0
        || gch_dm_sp(&r) != 0 || gch_dm_rstr(&r, &d->key, &d->key_len) != 0
        || gch_dm_sp(&r) != 0
        || gch_dm_rstr(&r, &d->agent, &d->agent_len) != 0
        || gch_dm_sp(&r) != 0 || gch_dm_int(&r, 0, &ncells) != 0
        || ncells > GCH_DM_MAX_CELLS
        || ncells > (r.end - r.p) / 9)      /* " 0: 0: +0" at least */
    {
        return GCH_EINVALID;
    }

    d->ncells = (size_t) ncells;
    d->cells = a->alloc(a->ctx, (d->ncells ? d->ncells : 1)
                                * sizeof(gch_dm_cell_t));
    if (d->cells == NULL) {
        d->ncells = 0;
        return GCH_ENOMEM;
    }

    memset(d->cells, 0, (d->ncells ? d->ncells : 1) * sizeof(gch_dm_cell_t));

    for (i = 0; i < d->ncells; i++) {
        if (gch_dm_cell(&r, &d->cells[i]) != 0) {
            gch_dm_free(d, a);
            return GCH_EINVALID;
        }
    }

    if (r.p != r.end) {
        gch_dm_free(d, a);
        return GCH_EINVALID;
    }

    return GCH_OK;
}


/* See gch.h; a zeroed or freed d is a no-op. */
void
gch_dm_free(gch_dm_t *d, const gch_alloc_t *a)
{
    a->free(a->ctx, d->cells);
    d->cells = NULL;
    d->ncells = 0;
}


/* ----- rendering ---------------------------------------------------- */

/* See gch.h. */
const char *
gch_dm_status(const gch_dm_t *d)
{
    size_t  i, ok, entered;

    ok = 0;
    entered = 0;
    for (i = 0; i < d->ncells; i++) {
        ok += (d->cells[i].reason == GCH_REASON_NONE);
        entered += (d->cells[i].reason == GCH_REASON_ENTERED);
    }

    /* entered in a draw: filed, decided at the draw (its own demande) */
    if (entered == d->ncells && entered > 0) {
        return "deposee";
    }

    return ok == d->ncells - entered ? "traitee_positivement"
           : ok == 0 ? "traitee_negativement" : "partielle";
}


/* "D-%06lld" of the demande number */
static void
gch_dm_request_id(gch_buf_t *o, long long number)
{
    char    num[24];
    size_t  n, pad;

    n = gch_lltoa(num, number);
    pad = (number >= 0 && n < 6) ? 6 - n : 0;

    gch_buf_lit(o, "\"D-");
    gch_buf_add(o, "000000", pad);
    gch_buf_add(o, num, n);
    gch_buf_lit(o, "\"");
}


/* A NUL-terminated copy of s in buf (size bytes) or allocated. */
static char *
gch_dm_cstr(const char *s, size_t n, char *buf, size_t size,
    const gch_alloc_t *a)
{
    char  *p;

    p = (n < size) ? buf : a->alloc(a->ctx, n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }

    return p;
}


static void
gch_dm_cstr_free(char *p, const char *buf, const gch_alloc_t *a)
{
    if (p != buf) {
        a->free(a->ctx, p);
    }
}


static int
gch_dm_bid(const gch_dm_t *d, const gch_dm_cell_t *c, const char *fid,
    char bid[GCH_BOOKING_ID_MAX], const gch_alloc_t *a)
{
    char  cb[128], sb[128], *cid, *sid;

    cid = gch_dm_cstr(c->child, c->child_len, cb, sizeof(cb), a);
    sid = gch_dm_cstr(c->session, c->session_len, sb, sizeof(sb), a);

    if (cid && sid) {
        gch_book_id(bid, fid, d->key, d->key_len, cid, sid);
    }

    if (cid) {
        gch_dm_cstr_free(cid, cb, a);
    }

    if (sid) {
        gch_dm_cstr_free(sid, sb, a);
    }

    return (cid && sid) ? 0 : -1;
}


static void
gch_dm_items(gch_buf_t *o, const gch_dm_t *d, const char *fid)
{
    char                  opens[26], bid[GCH_BOOKING_ID_MAX];
    size_t                i;
    const gch_dm_cell_t  *c;

    gch_buf_lit(o, "[");

    for (i = 0; i < d->ncells; i++) {
        c = &d->cells[i];

        if (i) {
            gch_buf_lit(o, ",");
        }

        gch_buf_lit(o, "{\"child_id\":");
        gch_buf_jstr(o, c->child, c->child_len);
        gch_buf_lit(o, ",\"session_id\":");
        gch_buf_jstr(o, c->session, c->session_len);

        if (c->reason == GCH_REASON_NONE) {
            if (c->bid == NULL && gch_dm_bid(d, c, fid, bid, o->a) != 0) {
                o->failed = 1;
                return;
            }

            gch_buf_lit(o, ",\"status\":\"confirmed\",\"booking_id\":");
            gch_buf_jstrz(o, c->bid ? c->bid : bid);
            gch_buf_lit(o, ",\"price_cents\":");
            gch_buf_addi(o, c->price_cents);

            if (d->onsite) {
                gch_buf_lit(o, ",\"channel\":\"onsite\"");
            }

            if (c->replaces_len) {
                /* a swap: what it released, billed as a cancellation */
                gch_buf_lit(o, ",\"replaces\":");
                gch_buf_jstr(o, c->replaces, c->replaces_len);
                gch_buf_lit(o, ",\"released\":{\"booking_id\":");
                gch_buf_jstr(o, c->replaces, c->replaces_len);
                gch_buf_lit(o, ",\"session_id\":");
                gch_buf_jstr(o, c->released, c->released_len);
                if (c->billed) {
                    gch_buf_lit(o, ",\"billed\":true}");
                } else {
                    gch_buf_lit(o, ",\"billed\":false}");
                }
            }

        } else if (c->reason == GCH_REASON_ENTERED) {
            /* entered in a draw, decided at draw_at */
            gch_instant_format(c->opens_at, opens);
            gch_buf_lit(o, ",\"status\":\"entered\",\"draw_at\":");
            gch_buf_jstrz(o, opens);

        } else if (c->position > 0) {
            gch_buf_lit(o, ",\"status\":\"waitlisted\",\"reason\":");
            gch_buf_jstrz(o, gch_reason_name(c->reason));
            gch_buf_lit(o, ",\"position\":");
            gch_buf_addi(o, c->position);

            if (c->replaces_len) {
                /* a swap waiting: that booking is kept as it was */
                gch_buf_lit(o, ",\"replaces\":");
                gch_buf_jstr(o, c->replaces, c->replaces_len);
                gch_buf_lit(o, ",\"kept\":true");
            }

        } else {
            gch_buf_lit(o, ",\"status\":\"refused\",\"reason\":");
            gch_buf_jstrz(o, gch_reason_name(c->reason));

            if (c->reason == GCH_REASON_NOT_OPEN_YET) {
                gch_instant_format(c->opens_at, opens);
                gch_buf_lit(o, ",\"opens_at\":");
                gch_buf_jstrz(o, opens);
            }

            if (c->replaces_len) {
                /* a refused swap: that booking is kept as it was */
                gch_buf_lit(o, ",\"replaces\":");
                gch_buf_jstr(o, c->replaces, c->replaces_len);
                gch_buf_lit(o, ",\"kept\":true");
            }
        }

        gch_buf_lit(o, "}");
    }

    gch_buf_lit(o, "]");
}


/* "reasons": each refusal's reason once, in the order of the cells */
static void
gch_dm_reasons(gch_buf_t *o, const gch_dm_t *d)
{
    int           n;
    size_t        i, j;
    gch_reason_t  r;

    gch_buf_lit(o, "[");
    n = 0;

    for (i = 0; i < d->ncells; i++) {
        r = d->cells[i].reason;
        if (r == GCH_REASON_NONE) {
            continue;
        }

        for (j = 0; j < i; j++) {
            if (d->cells[j].reason == r) {
                break;
            }
        }

        if (j == i) {
            if (n++) {
                gch_buf_lit(o, ",");
            }

            gch_buf_jstrz(o, gch_reason_name(r));
        }
    }

    gch_buf_lit(o, "]");
}


/* See gch.h. */
char *
gch_dm_render(const gch_dm_t *d, int what, const gch_alloc_t *a,
    size_t *len)
{
    char        at[26], fb[128], *fid;
    gch_buf_t   o;

    fid = gch_dm_cstr(d->family, d->family_len, fb, sizeof(fb), a);
    if (fid == NULL) {
        return NULL;
    }

    gch_buf_init(&o, a);

    if (what == GCH_DM_ITEMS) {
        gch_dm_items(&o, d, fid);
        gch_dm_cstr_free(fid, fb, a);
        return gch_buf_detach(&o, len);
    }

    switch (what) {

    case GCH_DM_ANSWER:
        gch_buf_lit(&o, "{\"request_id\":");
        if (d->number >= 0) {
            gch_dm_request_id(&o, d->number);
        } else {
            gch_buf_lit(&o, "null");
        }
        gch_buf_lit(&o, ",\"status\":");
        gch_buf_jstrz(&o, gch_dm_status(d));
        break;

    case GCH_DM_ENTRY:
        gch_buf_lit(&o, "{\"type\":\"book\",\"number\":");
        gch_buf_addi(&o, d->number);
        gch_buf_lit(&o, ",\"request_id\":");
        gch_dm_request_id(&o, d->number);
        gch_buf_lit(&o, ",\"family_id\":");
        gch_buf_jstr(&o, d->family, d->family_len);
        gch_buf_lit(&o, ",\"idem\":");
        gch_buf_jstr(&o, d->key, d->key_len);
        gch_buf_lit(&o, ",\"at_ms\":");
        gch_buf_addi(&o, d->at_ms);
        gch_buf_lit(&o, ",\"status\":");
        gch_buf_jstrz(&o, gch_dm_status(d));

        if (d->onsite && d->agent_len) {
            /* who booked at the counter: booking.booked_by */
            gch_buf_lit(&o, ",\"agent\":");
            gch_buf_jstr(&o, d->agent, d->agent_len);
        }
        break;

    default:
        gch_instant_format(d->at_ms / 1000, at);
        gch_buf_lit(&o, "{\"request_id\":");
        gch_dm_request_id(&o, d->number);
        gch_buf_lit(&o, ",\"number\":");
        gch_buf_addi(&o, d->number);
        gch_buf_lit(&o, ",\"type\":\"booking\",\"created_at\":");
        gch_buf_jstrz(&o, at);
        gch_buf_lit(&o, ",\"status\":");
        gch_buf_jstrz(&o, gch_dm_status(d));
        gch_buf_lit(&o, ",\"reasons\":");
        gch_dm_reasons(&o, d);
        break;
    }

    gch_buf_lit(&o, ",\"items\":");
    gch_dm_items(&o, d, fid);
    gch_buf_lit(&o, "}");

    gch_dm_cstr_free(fid, fb, a);

    return gch_buf_detach(&o, len);
}


/* See gch.h. */
char *
gch_dm_json(const char *p, size_t n, int what, const gch_alloc_t *a,
    size_t *len)
{
    return gch_dm_json_in(p, n, what, NULL, NULL, 0, a, len);
}


/* See gch.h. */
char *
gch_dm_json_in(const char *p, size_t n, int what, const char *family,
    const char *key, size_t key_len, const gch_alloc_t *a, size_t *len)
{
    int        rc;
    char      *out;
    gch_dm_t   d;

    *len = 0;

    if (n && p[0] == '{') {
        out = a->alloc(a->ctx, n + 1);
        if (out == NULL) {
            *len = 1;
            return NULL;
        }

        memcpy(out, p, n);
        out[n] = '\0';
        *len = n;
        return out;
    }

    rc = gch_dm_decode(&d, p, n, a);
    if (rc != GCH_OK) {
        *len = (rc == GCH_ENOMEM);
        return NULL;
    }

    if (family && d.family_len == 0 && d.key_len == 0) {
        /* a bare demande: the record's key names them */
        d.family = family;
        d.family_len = strlen(family);
        d.key = key;
        d.key_len = key_len;
    }

    out = gch_dm_render(&d, what, a, len);
    gch_dm_free(&d, a);

    if (out == NULL) {
        *len = 1;
    }

    return out;
}


/* ----- the planning entry: {T}:f:<fid>:bookings' value -------------- */

/* See gch.h. */
char *
gch_dm_planning_encode(const gch_dm_planning_t *e, const gch_alloc_t *a,
    size_t *len)
{
    gch_buf_t  o;

    gch_buf_init(&o, a);
    gch_buf_lit(&o, GCH_DM_PLANNING_MAGIC);
    gch_dm_str(&o, e->child, e->child_len);
    gch_buf_lit(&o, " ");
    gch_dm_str(&o, e->session, e->session_len);
    gch_buf_lit(&o, " ");
    gch_buf_addi(&o, e->price_cents);
    gch_buf_lit(&o, " ");
    gch_buf_addi(&o, e->number);
    gch_buf_add(&o, e->onsite ? " o" : " w", 2);

    return gch_buf_detach(&o, len);
}


/* See gch.h. */
int
gch_dm_planning_decode(gch_dm_planning_t *e, const char *p, size_t n)
{
    gch_dm_rd_t  r;

    memset(e, 0, sizeof(*e));

    r.p = p;
    r.end = p + n;

    if (n < sizeof(GCH_DM_PLANNING_MAGIC) - 1
        || memcmp(p, GCH_DM_PLANNING_MAGIC,
                  sizeof(GCH_DM_PLANNING_MAGIC) - 1) != 0)
    {
        return GCH_EINVALID;
    }

    r.p += sizeof(GCH_DM_PLANNING_MAGIC) - 1;

    if (gch_dm_rstr(&r, &e->child, &e->child_len) != 0
        || gch_dm_sp(&r) != 0
        || gch_dm_rstr(&r, &e->session, &e->session_len) != 0
        || gch_dm_sp(&r) != 0 || gch_dm_int(&r, 1, &e->price_cents) != 0
        || gch_dm_sp(&r) != 0 || gch_dm_int(&r, 0, &e->number) != 0
        || gch_dm_sp(&r) != 0 || r.end - r.p != 1
        || (*r.p != 'o' && *r.p != 'w'))
    {
        return GCH_EINVALID;
    }

    e->onsite = (*r.p == 'o');

    return GCH_OK;
}


/* See gch.h. */
char *
gch_dm_planning_json(const char *p, size_t n, const gch_alloc_t *a,
    size_t *len)
{
    char               *out;
    gch_buf_t           o;
    gch_dm_planning_t   e;

    *len = 0;

    if (n && p[0] == '{') {
        out = a->alloc(a->ctx, n + 1);
        if (out == NULL) {
            *len = 1;
            return NULL;
        }

        memcpy(out, p, n);
        out[n] = '\0';
        *len = n;
        return out;
    }

    if (gch_dm_planning_decode(&e, p, n) != GCH_OK) {
        return NULL;
    }

    gch_buf_init(&o, a);
    gch_buf_lit(&o, "{\"child_id\":");
    gch_buf_jstr(&o, e.child, e.child_len);
    gch_buf_lit(&o, ",\"session_id\":");
    gch_buf_jstr(&o, e.session, e.session_len);
    gch_buf_lit(&o, ",\"price_cents\":");
    gch_buf_addi(&o, e.price_cents);
    gch_buf_lit(&o, ",\"request_id\":");
    gch_dm_request_id(&o, e.number);

    if (e.onsite) {
        gch_buf_lit(&o, ",\"channel\":\"onsite\"");
    }

    gch_buf_lit(&o, "}");

    out = gch_buf_detach(&o, len);
    if (out == NULL) {
        *len = 1;
    }

    return out;
}


/* See resp.h. */
yajl_val
gch_planning_doc(const char *p, size_t n, const gch_alloc_t *a)
{
    char      *js;
    size_t     len;
    yajl_val   doc;

    if (n && p[0] == '{' && p[n] == '\0') {
        return yajl_tree_parse(p, NULL, 0);    /* a JSON entry, as it is */
    }

    js = gch_dm_planning_json(p, n, a, &len);
    if (js == NULL) {
        return NULL;
    }

    doc = yajl_tree_parse(js, NULL, 0);
    a->free(a->ctx, js);

    return doc;
}


/* ----- the in-flight record's plan ---------------------------------- */

/*
 * A first attempt's record "P <hash> <id> <plan>" names the cells its
 * step one took, for the reaper: "~q <n>" then per cell "<child>
 * <session>" (strings "<length>:<bytes>").  Their booking ids and claim
 * keys are derived (gch_dm_plan_json()).
 */
char *
gch_dm_plan_encode(const gch_dm_plan_cell_t *cells, size_t n,
    const gch_alloc_t *a, size_t *len)
{
    size_t     i;
    gch_buf_t  o;

    gch_buf_init(&o, a);
    gch_buf_lit(&o, GCH_DM_PLAN_MAGIC);
    gch_buf_addu(&o, n);

    for (i = 0; i < n; i++) {
        gch_buf_lit(&o, " ");
        gch_dm_str(&o, cells[i].child, strlen(cells[i].child));
        gch_buf_lit(&o, " ");
        gch_dm_str(&o, cells[i].session, strlen(cells[i].session));
    }

    return gch_buf_detach(&o, len);
}


/* See gch.h. */
char *
gch_dm_plan_json(const char *p, size_t n, const gch_town_t *t,
    const char *family, const char *key, size_t key_len,
    const gch_alloc_t *a, size_t *len)
{
    int                   q, k;
    char                  cb[128], sb[128], *cid, *sid, *out;
    char                  claim[256], bid[GCH_BOOKING_ID_MAX];
    size_t                i, clen, slen;
    uint32_t              quanta;
    long long             cells;
    gch_buf_t             o;
    gch_dm_rd_t           r;
    const char           *c, *s;
    const gch_session_t  *ses;

    *len = 0;

    if (n && p[0] == '[') {
        out = a->alloc(a->ctx, n + 1);          /* a JSON plan, as it is */
        if (out == NULL) {
            *len = 1;
            return NULL;
        }

        memcpy(out, p, n);
        out[n] = '\0';
        *len = n;
        return out;
    }

    r.p = p;
    r.end = p + n;

    if (n < sizeof(GCH_DM_PLAN_MAGIC) - 1
        || memcmp(p, GCH_DM_PLAN_MAGIC, sizeof(GCH_DM_PLAN_MAGIC) - 1) != 0)
    {
        return NULL;
    }

    r.p += sizeof(GCH_DM_PLAN_MAGIC) - 1;

    if (gch_dm_int(&r, 0, &cells) != 0 || cells > GCH_DM_MAX_CELLS) {
        return NULL;
    }

    gch_buf_init(&o, a);
    gch_buf_lit(&o, "[");

    for (i = 0; i < (size_t) cells; i++) {
        if (gch_dm_sp(&r) != 0 || gch_dm_rstr(&r, &c, &clen) != 0
            || gch_dm_sp(&r) != 0 || gch_dm_rstr(&r, &s, &slen) != 0)
        {
            gch_buf_free(&o);
            return NULL;
        }

        cid = gch_dm_cstr(c, clen, cb, sizeof(cb), a);
        sid = gch_dm_cstr(s, slen, sb, sizeof(sb), a);

        if (cid && sid) {
            gch_book_id(bid, family ? family : "", key ? key : "",
                        key ? key_len : 0, cid, sid);

            if (i) {
                gch_buf_lit(&o, ",");
            }

            gch_buf_lit(&o, "{\"s\":");
            gch_buf_jstr(&o, s, slen);
            gch_buf_lit(&o, ",\"c\":");
            gch_buf_jstr(&o, c, clen);
            gch_buf_lit(&o, ",\"b\":");
            gch_buf_jstrz(&o, bid);
            gch_buf_lit(&o, ",\"q\":[");

            /* the claims, from the catalogue: none if it lost the session
             * (they expire the day after it) */
            ses = t ? gch_town_session(t, sid, slen) : NULL;
            quanta = ses ? t->units[ses->unit].quanta : 0;
            k = 0;

            for (q = 0; q < 32; q++) {
                if ((quanta & (1u << q))
                    && gch_claim_key_of(claim, sizeof(claim), t, cid,
                                        ses->date, q) > 0)
                {
                    if (k++) {
                        gch_buf_lit(&o, ",");
                    }

                    gch_buf_jstrz(&o, claim);
                }
            }

            gch_buf_lit(&o, "]}");

        } else {
            o.failed = 1;
        }

        if (cid) {
            gch_dm_cstr_free(cid, cb, a);
        }

        if (sid) {
            gch_dm_cstr_free(sid, sb, a);
        }
    }

    gch_buf_lit(&o, "]");

    if (r.p != r.end) {
        gch_buf_free(&o);
        return NULL;
    }

    out = gch_buf_detach(&o, len);
    if (out == NULL) {
        *len = 1;
    }

    return out;
}


/* See gch.h. */
int
gch_dm_all_entered(const char *p, size_t n, const gch_alloc_t *a)
{
    int       all;
    size_t    i;
    gch_dm_t  d;

    if (gch_dm_decode(&d, p, n, a) != GCH_OK) {
        return 0;
    }

    all = d.ncells > 0;
    for (i = 0; i < d.ncells; i++) {
        if (d.cells[i].reason != GCH_REASON_ENTERED) {
            all = 0;
        }
    }

    gch_dm_free(&d, a);
    return all;
}
