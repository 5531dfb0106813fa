/*
 * cancel.c -- cancelling a booking, sans I/O (DELETE /api/bookings/{id}).
 *
 * Three MULTI/EXEC steps, driven by the caller with gch_cancel_next() and
 * gch_cancel_on_reply() until gch_cancel_next() returns NULL:
 *
 *   1. HGET the family's planning entry (a booking of another family is
 *      simply not found: no id can be probed across families), and take
 *      the booking's marker "c <ms>" (SET NX GET): a swap replacing the
 *      booking that holds it ("s ...") answers 409 request_in_progress,
 *      nothing done -- its step two would name the new booking in claims
 *      this cancellation deletes (docs/architecture.md, "Swap");
 *   2. the guard: SREM the booking from its session's booked set (only one
 *      of two concurrent cancellations gets 1), drop it from the planning,
 *      and leave a "C" marker in {T}:inflight for the reaper;
 *   3. the winner gives the place back online, releases the child's
 *      claims, appends a "cancel" entry to the stream and drops the marker.
 *
 * Before the deadline the cancellation is free; after it the place is
 * still released but the booking stays on the invoice ("billed": true).
 */

#include <stdio.h>
#include <string.h>

#include <yajl/yajl_tree.h>

#include "gch_keys.h"
#include "resp.h"


#define GCH_CANCEL_LOOKUP   0
#define GCH_CANCEL_GUARD    1
#define GCH_CANCEL_RELEASE  2
#define GCH_CANCEL_DONE     3


struct gch_cancel_s {
    const gch_alloc_t     *a;
    const gch_town_t      *town;
    const gch_family_t    *family;
    const gch_session_t   *session;
    const gch_child_t     *child;
    char                   bid[72];
    char                   marker[256];
    int                    locked;       /* step one took the marker */
    int64_t                now_ms;
    int                    onsite;       /* booked at the counter */
    long long              number;
    int                    billed;
    int                    step;
    int                    status;
    char                  *body;
    size_t                 body_len;
    gch_cmdlist_t          cmds;
};


static void
gch_cancel_answer(gch_cancel_t *c, int status, const char *code,
    const char *message)
{
    gch_error_t  err;

    c->step = GCH_CANCEL_DONE;
    c->status = status;

    if (code == NULL) {
        return;
    }

    memset(&err, 0, sizeof(gch_error_t));
    err.status = status;
    err.code = code;
    snprintf(err.message, sizeof(err.message), "%s", message);

    if (gch_render_error(&err, c->a, &c->body, &c->body_len) != GCH_OK) {
        c->body = NULL;
    }
}


/*
 * See gch.h.  The cancellation points into t and f, which must outlive
 * it.  GCH_ENOMEM leaves nothing in *out.
 */
int
gch_cancel_plan(gch_cancel_t **out, const gch_town_t *t,
    const gch_family_t *f, const char *bid, size_t len, int64_t now_ms,
    const gch_alloc_t *a, gch_error_t *err)
{
    char           key[256], val[64];
    gch_cancel_t  *c;

    *out = NULL;

    c = a->alloc(a->ctx, sizeof(gch_cancel_t));
    if (c == NULL) {
        gch_error_set(err, GCH_ENOMEM, NULL);
        return GCH_ENOMEM;
    }

    memset(c, 0, sizeof(gch_cancel_t));
    c->a = a;
    c->town = t;
    c->family = f;
    c->now_ms = now_ms;
    c->step = GCH_CANCEL_LOOKUP;
    gch_cmdlist_init(&c->cmds, a);

    if (len == 0 || len >= sizeof(c->bid) || memchr(bid, '\0', len)) {
        gch_cancel_answer(c, 404, "not_found",
                          "Cette réservation n'existe pas.");
        if (c->body == NULL) {
            gch_cancel_free(c);
            gch_error_set(err, GCH_ENOMEM, NULL);
            return GCH_ENOMEM;
        }
        *out = c;
        return GCH_OK;
    }

    memcpy(c->bid, bid, len);
    c->bid[len] = '\0';

    snprintf(key, sizeof(key), GCH_KEY_F(GCH_KEY_BOOKINGS), c->town->id, f->id);
    snprintf(c->marker, sizeof(c->marker), GCH_KEY_F(GCH_KEY_CANCEL) ":%s",
             c->town->id, c->family->id, c->bid);
    snprintf(val, sizeof(val), "c %lld", (long long) c->now_ms);
    gch_cmdlist_cmd(&c->cmds, "MULTI", NULL);
    gch_cmdlist_cmd(&c->cmds, "HGET", key, c->bid, NULL);
    gch_cmdlist_cmd(&c->cmds, "SET", c->marker, val, "NX", "GET", "EX",
                    GCH_CANCEL_LOCK_TTL, NULL);
    gch_cmdlist_cmd(&c->cmds, "EXEC", NULL);

    if (c->cmds.failed) {
        gch_cancel_free(c);
        gch_error_set(err, GCH_ENOMEM, NULL);
        return GCH_ENOMEM;
    }

    *out = c;
    return GCH_OK;
}


const gch_cmds_t *
gch_cancel_next(gch_cancel_t *c)
{
    if (c->step == GCH_CANCEL_DONE || c->cmds.list.ncmds == 0) {
        return NULL;
    }

    return &c->cmds.list;
}


static int
gch_cancel_lookup(gch_cancel_t *c, const redisReply *exec)
{
    int                starts;
    char               key[256], val[256], ms[32];
    int64_t            deadline;
    yajl_val           doc;
    const char        *sid, *cid;
    const redisReply  *r, *held;

    if (exec->elements < 2) {
        return GCH_EREDIS;
    }

    r = exec->element[0];
    held = exec->element[1];

    if (held->type == REDIS_REPLY_NIL) {
        c->locked = 1;

    } else if (held->type != REDIS_REPLY_STRING || held->len == 0) {
        return GCH_EREDIS;
    }

    if (r->type == REDIS_REPLY_NIL) {
        gch_cancel_answer(c, 404, "not_found",
                          "Cette réservation n'existe pas ou est déjà "
                          "annulée.");
        if (c->body == NULL) {
            return GCH_ENOMEM;
        }

        if (c->locked) {
            /* the marker taken for nothing: given back, then the 404 */
            gch_cmdlist_free(&c->cmds);
            gch_cmdlist_cmd(&c->cmds, "MULTI", NULL);
            gch_cmdlist_cmd(&c->cmds, "DEL", c->marker, NULL);
            gch_cmdlist_cmd(&c->cmds, "EXEC", NULL);
            c->step = GCH_CANCEL_RELEASE;
            return c->cmds.failed ? GCH_ENOMEM : GCH_OK;
        }

        return GCH_OK;
    }

    if (!c->locked && (held->str[0] == 's' || held->str[0] == 'S')) {
        /* a swap replacing this booking is between its steps: it holds
         * the booking until its step two; nothing done */
        gch_cancel_answer(c, 409, "request_in_progress",
                          "Cette réservation est en cours d'échange par "
                          "une autre demande. Réessayez dans un instant.");
        return c->body ? GCH_OK : GCH_ENOMEM;
    }

    if (r->type != REDIS_REPLY_STRING) {
        return GCH_EREDIS;
    }

    doc = gch_planning_doc(r->str, r->len, c->a);
    if (doc == NULL) {
        return GCH_EREDIS;
    }

    sid = gch_doc_str(doc, "session_id");
    cid = gch_doc_str(doc, "child_id");
    c->onsite = gch_doc_str(doc, "channel") != NULL
                && strcmp(gch_doc_str(doc, "channel"), "onsite") == 0;
    c->session = sid ? gch_town_session(c->town, sid, strlen(sid)) : NULL;
    c->child = cid ? gch_family_child(c->family, cid, strlen(cid)) : NULL;
    yajl_tree_free(doc);

    if (c->session == NULL || c->child == NULL) {
        return GCH_EREDIS;
    }

    starts = c->town->units[c->session->unit].starts_min;
    deadline = gch_deadline_instant(&c->session->activity->cancel_deadline,
                                    c->session->date, starts);
    c->billed = c->now_ms / 1000 >= deadline;

    /* step two: the guard */

    gch_cmdlist_free(&c->cmds);
    snprintf(ms, sizeof(ms), "%lld", (long long) c->now_ms);
    snprintf(val, sizeof(val), "C %lld %d %s %s %s%s", (long long) c->now_ms,
             c->billed, c->bid, c->child->id, c->session->id,
             c->onsite ? " onsite" : "");

    gch_cmdlist_cmd(&c->cmds, "MULTI", NULL);
    snprintf(key, sizeof(key), GCH_KEY_S("%s"), c->town->id, c->session->id,
             c->onsite ? GCH_KEY_BOOKED_ONSITE : GCH_KEY_BOOKED);
    gch_cmdlist_cmd(&c->cmds, "SREM", key, c->bid, NULL);
    snprintf(key, sizeof(key), GCH_KEY_F(GCH_KEY_BOOKINGS), c->town->id,
             c->family->id);
    gch_cmdlist_cmd(&c->cmds, "HDEL", key, c->bid, NULL);
    gch_cmdlist_cmd(&c->cmds, "SET", c->marker, val, "EX", "3600", NULL);
    gch_cmdlist_cmd(&c->cmds, "ZADD", c->town->keys.inflight, "NX", ms,
                    c->marker, NULL);
    gch_cmdlist_cmd(&c->cmds, "INCR", c->town->keys.seq_demande, NULL);
    gch_cmdlist_cmd(&c->cmds, "EXEC", NULL);

    c->step = GCH_CANCEL_GUARD;

    return c->cmds.failed ? GCH_ENOMEM : GCH_OK;
}


static int
gch_cancel_release(gch_cancel_t *c)
{
    int        q;
    char       key[256], day[11], ms[32], at[26];
    char      *entry;
    yajl_gen   g;
    uint32_t   quanta;

    gch_cmdlist_free(&c->cmds);
    gch_cmdlist_cmd(&c->cmds, "MULTI", NULL);

    snprintf(key, sizeof(key), GCH_KEY_S(GCH_KEY_LEFT), c->town->id,
             c->session->id);
    gch_cmdlist_cmd(&c->cmds, "BITFIELD", key, "OVERFLOW", "FAIL", "INCRBY",
                    "u32", c->onsite ? GCH_OFF_ONSITE : GCH_OFF_LEFT, "1",
                    NULL);

    gch_day_format(c->session->date, day);
    quanta = c->town->units[c->session->unit].quanta;

    for (q = 0; q < 32; q++) {
        if (quanta & (1u << q)) {
            snprintf(key, sizeof(key), GCH_KEY_CLAIM, c->town->id, c->child->id,
                     day, q);
            gch_cmdlist_cmd(&c->cmds, "DEL", key, NULL);
        }
    }

    g = gch_gen_new(c->a);
    if (g == NULL) {
        return GCH_ENOMEM;
    }

    snprintf(ms, sizeof(ms), "D-%06lld", c->number);

    yajl_gen_map_open(g);
    gch_gen_kv(g, "type", "cancel");
    gch_gen_ki(g, "number", c->number);
    gch_gen_kv(g, "request_id", ms);
    gch_gen_kv(g, "booking_id", c->bid);
    gch_gen_kv(g, "family_id", c->family->id);
    gch_gen_kv(g, "child_id", c->child->id);
    gch_gen_kv(g, "session_id", c->session->id);
    gch_gen_ki(g, "at_ms", c->now_ms);
    gch_gen_str(g, "billed");
    yajl_gen_bool(g, c->billed);
    yajl_gen_map_close(g);

    entry = gch_gen_detach(g, c->a, NULL);
    if (entry == NULL) {
        return GCH_ENOMEM;
    }

    gch_cmdlist_cmd(&c->cmds, "XADD", c->town->keys.stream, "*", "d", entry,
                    NULL);
    c->a->free(c->a->ctx, entry);

    /* the demande the family sees (GET /api/requests) */

    g = gch_gen_new(c->a);
    if (g == NULL) {
        return GCH_ENOMEM;
    }

    snprintf(ms, sizeof(ms), "D-%06lld", c->number);
    gch_instant_format(c->now_ms / 1000, at);

    yajl_gen_map_open(g);
    gch_gen_kv(g, "request_id", ms);
    gch_gen_ki(g, "number", c->number);
    gch_gen_kv(g, "type", "cancellation");
    gch_gen_kv(g, "created_at", at);
    gch_gen_kv(g, "status", "traitee_positivement");
    gch_gen_str(g, "reasons");
    yajl_gen_array_open(g);
    yajl_gen_array_close(g);
    gch_gen_kv(g, "booking_id", c->bid);
    gch_gen_kv(g, "session_id", c->session->id);
    gch_gen_kv(g, "child_id", c->child->id);
    gch_gen_str(g, "billed");
    yajl_gen_bool(g, c->billed);
    yajl_gen_map_close(g);

    entry = gch_gen_detach(g, c->a, NULL);
    if (entry == NULL) {
        return GCH_ENOMEM;
    }

    if (c->billed) {
        /* still on the invoice: a medical certificate may lift it */
        snprintf(key, sizeof(key), GCH_KEY_F(GCH_KEY_BILLED), c->town->id,
                 c->family->id);
        gch_cmdlist_cmd(&c->cmds, "HSET", key, c->bid, c->session->id, NULL);
    }

    snprintf(key, sizeof(key), GCH_KEY_F(GCH_KEY_DEMANDES), c->town->id,
             c->family->id);
    gch_cmdlist_cmd(&c->cmds, "LPUSH", key, entry, NULL);
    gch_cmdlist_cmd(&c->cmds, "LTRIM", key, "0", "199", NULL);
    c->a->free(c->a->ctx, entry);

    gch_cmdlist_cmd(&c->cmds, "DEL", c->marker, NULL);
    gch_cmdlist_cmd(&c->cmds, "ZREM", c->town->keys.inflight, c->marker, NULL);
    gch_cmdlist_cmd(&c->cmds, "EXEC", NULL);

    c->step = GCH_CANCEL_RELEASE;

    return c->cmds.failed ? GCH_ENOMEM : GCH_OK;
}


/* See gch.h.  GCH_EREDIS on an unexpected reply (then answer 503). */
int
gch_cancel_on_reply(gch_cancel_t *c, const redisReply *exec)
{
    yajl_gen   g;

    if (exec == NULL || exec->type != REDIS_REPLY_ARRAY
        || exec->elements < 1)
    {
        c->step = GCH_CANCEL_DONE;
        return GCH_EREDIS;
    }

    switch (c->step) {

    case GCH_CANCEL_LOOKUP:
        return gch_cancel_lookup(c, exec);

    case GCH_CANCEL_GUARD:
        if (exec->element[0]->type != REDIS_REPLY_INTEGER) {
            c->step = GCH_CANCEL_DONE;
            return GCH_EREDIS;
        }

        if (exec->elements >= 5
            && exec->element[4]->type == REDIS_REPLY_INTEGER)
        {
            c->number = exec->element[4]->integer;
        }

        if (exec->element[0]->integer == 0) {
            /* a concurrent cancellation won: undo our marker only */
            gch_cmdlist_free(&c->cmds);
            gch_cmdlist_cmd(&c->cmds, "MULTI", NULL);
            gch_cmdlist_cmd(&c->cmds, "DEL", c->marker, NULL);
            gch_cmdlist_cmd(&c->cmds, "ZREM", c->town->keys.inflight, c->marker,
                            NULL);
            gch_cmdlist_cmd(&c->cmds, "EXEC", NULL);
            gch_cancel_answer(c, 404, "not_found",
                              "Cette réservation est déjà annulée.");
            c->step = GCH_CANCEL_RELEASE;
            return c->cmds.failed ? GCH_ENOMEM : GCH_OK;
        }

        return gch_cancel_release(c);

    case GCH_CANCEL_RELEASE:
        c->step = GCH_CANCEL_DONE;

        if (c->status == 404) {
            /* the lost race, answered (not "cancelled" if memory ran
             * short rendering its 404) */
            return c->body ? GCH_OK : GCH_ENOMEM;
        }

        g = gch_gen_new(c->a);
        if (g == NULL) {
            return GCH_ENOMEM;
        }

        yajl_gen_map_open(g);
        gch_gen_kv(g, "booking_id", c->bid);
        gch_gen_kv(g, "status", "cancelled");
        gch_gen_str(g, "billed");
        yajl_gen_bool(g, c->billed);
        yajl_gen_map_close(g);

        c->body = gch_gen_detach(g, c->a, &c->body_len);
        c->status = 200;

        return c->body ? GCH_OK : GCH_ENOMEM;

    default:
        return GCH_EREDIS;
    }
}


int
gch_cancel_status(const gch_cancel_t *c)
{
    return c->status;
}


const char *
gch_cancel_body(const gch_cancel_t *c, size_t *len)
{
    *len = c->body_len;
    return c->body;
}


void
gch_cancel_free(gch_cancel_t *c)
{
    if (c == NULL) {
        return;
    }

    gch_cmdlist_free(&c->cmds);
    c->a->free(c->a->ctx, c->body);
    c->a->free(c->a->ctx, c);
}
