/*
 * book_answer.c -- the booking's JSON and what Redis keeps of it: the
 * answer to the family and the compact demande (demande.c) the record
 * stored for a replay, the family's demande list and the {T}:stream
 * entry hold; the reaper's plan and the planning entry.  See
 * book.h.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "book.h"


/*
 * The reaper's plan, "~q <n> <child> <session> ..." (demande.c): the cells
 * step one takes; the reaper derives their booking ids and claim keys.
 */
void
gch_plan_json(gch_book_t *b, gch_buf_t *out)
{
    char                *p;
    size_t               i, n, len;
    gch_dm_plan_cell_t  *cells;

    cells = b->a->alloc(b->a->ctx, (b->ncells ? b->ncells : 1)
                                   * sizeof(gch_dm_plan_cell_t));
    if (cells == NULL) {
        out->failed = 1;
        return;
    }

    n = 0;
    for (i = 0; i < b->ncells; i++) {
        if (b->cells[i].reason == GCH_REASON_NONE) {
            cells[n].child = b->cells[i].child->id;
            cells[n].session = b->cells[i].session->id;
            n++;
        }
    }

    p = gch_dm_plan_encode(cells, n, b->a, &len);
    b->a->free(b->a->ctx, cells);

    if (p == NULL) {
        out->failed = 1;
        return;
    }

    gch_buf_add(out, p, len);
    b->a->free(b->a->ctx, p);
}


/* The body is released (it may live inside the stored record). */
void
gch_body_release(gch_book_t *b)
{
    if (!b->body_in_stored) {
        b->a->free(b->a->ctx, b->body);
    }

    b->body = NULL;
    b->body_len = 0;
    b->body_in_stored = 0;
}


int
gch_reply_is_str(const redisReply *r)
{
    return r && (r->type == REDIS_REPLY_STRING
                 || r->type == REDIS_REPLY_STATUS);
}


void
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


/*
 * The demande as gch_dm_t (demande.c), the cells in d->cells (freed by
 * the caller with b->a): the compact form stored in Redis and the JSON
 * answer are both made from it, so that a replay renders the very bytes
 * of the first answer.
 */
static int
gch_dm_of(gch_book_t *b, gch_dm_t *d)
{
    size_t          i;
    gch_cell_t     *c;
    gch_dm_cell_t  *x;

    memset(d, 0, sizeof(*d));
    d->number = b->request_id[0] ? b->number : -1;
    d->at_ms = b->in.now_ms;
    d->onsite = b->in.onsite;
    d->family = b->in.family->id;
    d->family_len = strlen(b->in.family->id);
    d->key = b->in.idem_key;
    d->key_len = b->in.idem_len;
    d->agent = "";

    if (b->in.onsite && b->in.agent) {
        d->agent = b->in.agent;
        d->agent_len = strlen(b->in.agent);
    }

    d->ncells = b->ncells;
    d->cells = b->a->alloc(b->a->ctx, (b->ncells ? b->ncells : 1)
                                      * sizeof(gch_dm_cell_t));
    if (d->cells == NULL) {
        return -1;
    }

    for (i = 0; i < b->ncells; i++) {
        c = &b->cells[i];
        x = &d->cells[i];
        x->child = c->item->child_id;
        x->child_len = c->item->child_len;
        x->session = c->item->session_id;
        x->session_len = c->item->session_len;
        x->reason = c->reason;
        x->price_cents = c->price_cents;
        x->opens_at = (c->reason == GCH_REASON_NOT_OPEN_YET
                       || c->reason == GCH_REASON_ENTERED)
                      ? c->session->activity->opens_at : 0;
        x->position = GCH_WAITLISTED(c) ? c->position : 0;

        x->replaces = NULL;
        x->replaces_len = 0;
        x->released = NULL;
        x->released_len = 0;
        x->billed = 0;
        x->bid = NULL;

        if (c->item->replaces) {
            x->replaces = c->item->replaces;
            x->replaces_len = c->item->replaces_len;
        }

        if (c->item->replaces && c->reason == GCH_REASON_NONE && c->old) {
            x->released = c->old->id;
            x->released_len = strlen(c->old->id);
            x->billed = c->billed;
        }
    }

    return 0;
}


/* The answer's JSON (docs/api.md), rendered from the demande. */
char *
gch_answer_json(gch_book_t *b, size_t *len)
{
    char      *out;
    gch_dm_t   d;

    if (gch_dm_of(b, &d) != 0) {
        return NULL;
    }

    out = gch_dm_render(&d, GCH_DM_ANSWER, b->a, len);
    gch_dm_free(&d, b->a);

    return out;
}


/*
 * The compact demande after "prefix" (the stored record's "D <hash> "):
 * the family's demande list and the stream entry hold it whole; the
 * idempotency record bare, without the family and the key its own key
 * names (gch_dm_json_in() puts them back) nor the time (at_ms 0), which
 * the answer does not show.
 */
char *
gch_compact(gch_book_t *b, const char *prefix, size_t plen, int bare,
    size_t *len)
{
    char      *enc, *out;
    size_t     n;
    gch_dm_t   d;

    if (gch_dm_of(b, &d) != 0) {
        return NULL;
    }

    if (bare) {
        d.family_len = 0;
        d.key_len = 0;
        d.at_ms = 0;            /* the answer does not show it */
    }

    enc = gch_dm_encode(&d, b->a, &n);
    gch_dm_free(&d, b->a);
    if (enc == NULL) {
        return NULL;
    }

    out = b->a->alloc(b->a->ctx, plen + n + 1);
    if (out) {
        memcpy(out, prefix, plen);
        memcpy(out + plen, enc, n + 1);
        *len = plen + n;
    }

    b->a->free(b->a->ctx, enc);

    return out;
}


/* The planning entry of a confirmed cell, compact (demande.c). */
char *
gch_planning_json(gch_book_t *b, const gch_cell_t *c, size_t *len)
{
    gch_dm_planning_t  e;

    e.child = c->child->id;
    e.child_len = strlen(c->child->id);
    e.session = c->session->id;
    e.session_len = strlen(c->session->id);
    e.price_cents = c->price_cents;
    e.number = b->number;
    e.onsite = b->in.onsite;

    return gch_dm_planning_encode(&e, b->a, len);
}
