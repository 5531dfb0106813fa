/*
 * book_answer.c -- the booking's JSON: the answer to the family, the record
 * stored for a replay, the reaper's plan, the {T}:stream entry and
 * the planning one.  See book.h.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "book.h"


/* The reaper's plan: [{"s":sid,"c":cid,"b":bid,"q":[claim keys]}] */
void
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
                && gch_claim_key(key, sizeof(key), b, c, q) > 0)
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

        } else if (GCH_WAITLISTED(c)) {
            gch_buf_lit(&o, ",\"status\":\"waitlisted\",\"reason\":");
            gch_buf_jstrz(&o, gch_reason_name(c->reason));
            gch_buf_lit(&o, ",\"position\":");
            gch_buf_addi(&o, c->position);

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
char *
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


char *
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
char *
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


char *
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
