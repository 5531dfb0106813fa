/*
 * book.c -- the booking saga, sans I/O: the plan and its lifecycle.
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
 *
 * This file holds the keys and ids, gch_book_plan() and the accessors;
 * book.h says which file holds the rules, the steps and the answer.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "book.h"


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

/* See gch.h: "{T}:c:<cid>:<YYYY-MM-DD>:q<q>", q < 100 */
int
gch_claim_key_of(char *buf, size_t size, const gch_town_t *t,
    const char *cid, gch_day_t day, int q)
{
    char    *p;
    size_t   m, n;

    m = strlen(t->keys.c);
    n = strlen(cid);

    if (m + n + 1 + 10 + 2 + 2 + 1 > size || q < 0 || q > 99) {
        buf[0] = '\0';
        return -1;
    }

    p = buf;
    memcpy(p, t->keys.c, m);
    p += m;
    memcpy(p, cid, n);
    p += n;
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


int
gch_claim_key(char *buf, size_t size, const gch_book_t *b,
    const gch_cell_t *c, int q)
{
    return gch_claim_key_of(buf, size, b->in.town, c->child->id,
                            c->session->date, q);
}


/* "<pre><id><post>" */
int
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
 * The attempt's member in {T}:inflight, "<idem_rkey>#<id>", id =
 * "<attempt, hex>.<8 hex of the body's hash>": unique to the attempt (the
 * caller's attempt number is; its time was in the id before, 14 bytes of
 * the member and of the P record, the score has it), and the P record
 * carries the same id, so that the reaper tells
 * the first attempt with a key (its record names it) from a retry answered
 * 409, 422 or replayed (its record is another's; the hash says whether it
 * is the same body, hence the same cells).  The hash must be known
 * (gch_ids).
 */
int
gch_member(gch_book_t *b)
{
    int     n;
    size_t  size;

    if (b->member) {
        return 0;
    }

    size = strlen(b->idem_rkey) + 1 + 16 + 1 + 8 + 1;
    b->member = b->a->alloc(b->a->ctx, size);
    if (b->member == NULL) {
        return -1;
    }

    n = snprintf(b->member, size, "%s#%llx.%.8s", b->idem_rkey,
                 (unsigned long long) b->in.attempt, b->hash);

    return (n > 0 && (size_t) n < size) ? 0 : -1;
}


const char *
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
int
gch_own_record(const gch_book_t *b, const char *rec, size_t len)
{
    return b->member != NULL && len > 35 && memcmp(rec + 2, b->hash, 32) == 0
           && gch_attempt_wrote(gch_attempt_id(b), rec, len);
}


/* "{T}:f:<fid>:demandes", the family's demande list */
int
gch_demandes_key(char *buf, size_t size, const gch_book_t *b)
{
    return gch_key3(buf, size, b->in.town->keys.f, b->in.family->id,
                    strlen(b->in.family->id), ":" GCH_KEY_DEMANDES);
}


void
gch_place_key(char *buf, size_t size, const gch_book_t *b,
    const gch_session_t *s, const char *what)
{
    char  post[32];

    post[0] = ':';
    memcpy(post + 1, what, strlen(what) + 1);

    (void) gch_key3(buf, size, b->in.town->keys.s, s->id, strlen(s->id),
                    post);
}


/*
 * The body's hash and the booking ids, which only Redis's steps need (not
 * a refusal from the sold-out cache).
 */
void
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
 * See gch.h.  On GCH_EFORBIDDEN, GCH_ENOMEM and GCH_EINVALID nothing is
 * returned in *out and err says why; the request must not reach Redis.
 */
int
gch_book_plan(gch_book_t **out, const gch_book_in_t *in,
    const gch_alloc_t *a, gch_error_t *err)
{
    char           *p;
    size_t          i, n, tl, fl;
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

    /* "{T}:f:<fid>:idem:<key>" (GCH_KEY_F(GCH_KEY_IDEM)), without printf */
    tl = strlen(in->town->keys.f);
    fl = strlen(in->family->id);
    n = tl + fl + sizeof(":" GCH_KEY_IDEM ":") - 1 + in->idem_len + 1;
    b->idem_rkey = a->alloc(a->ctx, n);
    if (b->idem_rkey == NULL) {
        goto nomem;
    }

    p = b->idem_rkey;
    memcpy(p, in->town->keys.f, tl);
    p += tl;
    memcpy(p, in->family->id, fl);
    p += fl;
    memcpy(p, ":" GCH_KEY_IDEM ":", sizeof(":" GCH_KEY_IDEM ":") - 1);
    p += sizeof(":" GCH_KEY_IDEM ":") - 1;
    memcpy(p, in->idem_key, in->idem_len);
    p[in->idem_len] = '\0';

    /* step one is written when it is asked for: not at all when the
     * sold-out shortcut answers */

    *out = b;
    return GCH_OK;

nomem:

    gch_book_free(b);
    gch_error_set(err, GCH_ENOMEM, NULL);
    return GCH_ENOMEM;
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
    size_t              i;
    const gch_alloc_t  *a;

    if (b == NULL) {
        return;
    }

    a = b->a;

    for (i = 0; b->cells && i < b->ncells; i++) {
        a->free(a->ctx, b->cells[i].old_entry);
    }

    gch_cmdlist_free(&b->step1);
    gch_cmdlist_free(&b->step2);
    gch_cmdlist_free(&b->step3);
    gch_cmdlist_free(&b->check);
    a->free(a->ctx, b->cells);
    a->free(a->ctx, b->idem_rkey);
    a->free(a->ctx, b->member);
    gch_body_release(b);
    a->free(a->ctx, b->stored);
    a->free(a->ctx, b->entry);
    a->free(a->ctx, b);
}


size_t
gch_book_ncells(const gch_book_t *b)
{
    return ((b->status == 200 || b->status == 202) && !b->replayed)
           ? b->ncells : 0;
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
 * A shortcut's answer: the cells as they stand, no demande (request_id
 * null), nothing sent to Redis nor kept for a replay.  1, or GCH_ENOMEM.
 */
static int
gch_book_unrecorded(gch_book_t *b)
{
    b->request_id[0] = '\0';
    b->body = gch_answer_json(b, &b->body_len);
    if (b->body == NULL) {
        return GCH_ENOMEM;
    }

    b->status = 200;
    b->state = GCH_BOOK_DONE;

    return 1;
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
        /* a cell entered in a draw must reach Redis to be stored */
        if (c->reason == GCH_REASON_ENTERED) {
            return 0;
        }
        /* a cell asking for the waiting list must reach Redis to join,
         * one accepting an offer to take its held place */
        if (c->reason == GCH_REASON_NONE
            && (!sold_out(c->session, ctx)
                || ((c->item->waitlist || c->item->offer)
                    && !b->in.onsite)))
        {
            return 0;
        }
    }

    for (i = 0; i < b->ncells; i++) {
        c = &b->cells[i];
        if (c->reason == GCH_REASON_NONE) {
            c->reason = GCH_REASON_FULL;
        }
    }

    return gch_book_unrecorded(b);
}


/*
 * See gch.h.  Every cell refused not_open_yet by the rules that need no
 * Redis: the answer is the same refusal, request_id null, and nothing is
 * written nor kept for a replay, so that the parent who pressed a second
 * before the opening books with the same key once it has opened.  A cell
 * with any other outcome (entered in a draw, refused for another reason,
 * open) keeps the saga; so does the counter (never refused not_open_yet).
 */
int
gch_book_not_open_yet(gch_book_t *b)
{
    size_t  i;

    if (b->nopen != 0 || b->ncells == 0 || b->in.onsite
        || b->state != GCH_BOOK_PLANNED)
    {
        return 0;
    }

    for (i = 0; i < b->ncells; i++) {
        if (b->cells[i].reason != GCH_REASON_NOT_OPEN_YET) {
            return 0;
        }
    }

    return gch_book_unrecorded(b);
}


/*
 * See gch.h: EXISTS {T}:f:<fid>:idem:<key>, after gch_book_sold_out() or
 * gch_book_not_open_yet() answered.  NULL when memory is short.
 */
const gch_cmds_t *
gch_book_idem_check(gch_book_t *b)
{
    if (b->check.list.ncmds == 0) {
        gch_cmdlist_cmd(&b->check, "EXISTS", b->idem_rkey, NULL);
    }

    return b->check.failed ? NULL : &b->check.list;
}


/* See gch.h: the key gch_book_idem_check() asks about. */
const char *
gch_book_idem_rkey(const gch_book_t *b)
{
    return b->idem_rkey;
}
