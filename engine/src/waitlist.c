/*
 * waitlist.c -- a session's waiting list, sans I/O: the family's view of
 * its places (GET /api/waitlist), leaving a list (DELETE
 * /api/waitlist/{session}/{child}) and the promotion's decision, which the
 * worker's promoter follows.  Joining is part of the booking saga
 * (book_step.c, gch_step1_wait).  docs/architecture.md, "Waiting lists".
 *
 * Keys: {T}:s:<sid>:wait (list of child ids, the order), {T}:s:<sid>:waiters
 * (hash: child -> "<booking id> <family id> <at_ms>"), {T}:s:<sid>:waittry
 * (hash: child -> promotions tried), {T}:f:<fid>:waits (hash: "<sid> <cid>"
 * -> booking id), {T}:waiting (set of sessions with a list).
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gch_keys.h"
#include "resp.h"
#include "book.h"


#define GCH_WAIT_LIST       0     /* GET: HGETALL the family's waits */
#define GCH_WAIT_POSITIONS  1     /* GET: LPOS of each */
#define GCH_WAIT_LEAVE      2     /* DELETE */
#define GCH_WAIT_DONE       3

#define GCH_WAIT_MAX        200   /* entries shown */


typedef struct {
    const gch_session_t  *session;
    const gch_child_t    *child;
} gch_wait_entry_t;


struct gch_wait_s {
    const gch_alloc_t     *a;
    const gch_town_t      *town;
    const gch_family_t    *family;
    const gch_session_t   *session;      /* DELETE */
    const gch_child_t     *child;
    gch_wait_entry_t      *entries;
    size_t                 nentries;
    int                    step;
    int                    status;
    char                  *body;
    size_t                 body_len;
    gch_cmdlist_t          cmds;
};


static int
gch_wait_answer(gch_wait_t *w, int status, const char *code,
    const char *message)
{
    gch_error_t  err;

    w->step = GCH_WAIT_DONE;
    w->status = status;

    memset(&err, 0, sizeof(gch_error_t));
    err.status = status;
    err.code = code;
    snprintf(err.message, sizeof(err.message), "%s", message);

    if (gch_render_error(&err, w->a, &w->body, &w->body_len) != GCH_OK) {
        w->body = NULL;
        return GCH_ENOMEM;
    }

    return GCH_OK;
}


static void
gch_wait_key(char *buf, size_t size, const gch_town_t *t,
    const gch_session_t *s, const char *what)
{
    snprintf(buf, size, GCH_KEY_S("%s"), t->id, s->id, what);
}


/*
 * See gch.h.  arg NULL: the family's places (GET); else "<session>/<child>"
 * of len bytes: leave that list (DELETE).  Points into t and f.
 */
int
gch_wait_plan(gch_wait_t **out, const gch_town_t *t, const gch_family_t *f,
    const char *arg, size_t len, const gch_alloc_t *a, gch_error_t *err)
{
    char         key[256], field[160];
    const char  *slash;
    gch_wait_t  *w;

    *out = NULL;

    w = a->alloc(a->ctx, sizeof(gch_wait_t));
    if (w == NULL) {
        gch_error_set(err, GCH_ENOMEM, NULL);
        return GCH_ENOMEM;
    }

    memset(w, 0, sizeof(gch_wait_t));
    w->a = a;
    w->town = t;
    w->family = f;
    gch_cmdlist_init(&w->cmds, a);

    if (arg == NULL) {
        snprintf(key, sizeof(key), GCH_KEY_F(GCH_KEY_WAITS), t->id, f->id);
        gch_cmdlist_cmd(&w->cmds, "MULTI", NULL);
        gch_cmdlist_cmd(&w->cmds, "HGETALL", key, NULL);
        gch_cmdlist_cmd(&w->cmds, "EXEC", NULL);
        w->step = GCH_WAIT_LIST;
        goto done;
    }

    slash = len ? memchr(arg, '/', len) : NULL;
    if (slash) {
        w->session = gch_town_session(t, arg, slash - arg);
        w->child = gch_family_child(f, slash + 1, len - (slash - arg) - 1);
    }

    if (w->session == NULL || w->child == NULL) {
        if (gch_wait_answer(w, 404, "not_found",
                            "Cet enfant n'est pas sur cette liste "
                            "d'attente.")
            != GCH_OK)
        {
            goto nomem;
        }

        goto done;
    }

    /* one MULTI: the list, the entry, the family's index, the tries */
    gch_cmdlist_cmd(&w->cmds, "MULTI", NULL);
    gch_wait_key(key, sizeof(key), t, w->session, GCH_KEY_WAIT);
    gch_cmdlist_cmd(&w->cmds, "LREM", key, "0", w->child->id, NULL);
    gch_wait_key(key, sizeof(key), t, w->session, GCH_KEY_WAITERS);
    gch_cmdlist_cmd(&w->cmds, "HDEL", key, w->child->id, NULL);
    gch_wait_key(key, sizeof(key), t, w->session, GCH_KEY_WAITTRY);
    gch_cmdlist_cmd(&w->cmds, "HDEL", key, w->child->id, NULL);
    snprintf(key, sizeof(key), GCH_KEY_F(GCH_KEY_WAITS), t->id, f->id);
    snprintf(field, sizeof(field), "%s %s", w->session->id, w->child->id);
    gch_cmdlist_cmd(&w->cmds, "HDEL", key, field, NULL);
    /* an offer declined: its end is now, the worker gives the held place
     * to the next family (the offer's place counter stays until then) */
    gch_wait_key(key, sizeof(key), t, w->session, GCH_KEY_OFFER);
    gch_cmdlist_cmd(&w->cmds, "HDEL", key, w->child->id, NULL);
    snprintf(key, sizeof(key), GCH_KEY_OFFERS, t->id);
    gch_cmdlist_cmd(&w->cmds, "ZADD", key, "XX", "0", field, NULL);
    gch_cmdlist_cmd(&w->cmds, "EXEC", NULL);
    w->step = GCH_WAIT_LEAVE;

done:

    if (w->cmds.failed) {
        goto nomem;
    }

    *out = w;
    return GCH_OK;

nomem:

    gch_wait_free(w);
    gch_error_set(err, GCH_ENOMEM, NULL);
    return GCH_ENOMEM;
}


const gch_cmds_t *
gch_wait_next(gch_wait_t *w)
{
    if (w->step == GCH_WAIT_DONE || w->cmds.list.ncmds == 0) {
        return NULL;
    }

    return &w->cmds.list;
}


/* HGETALL's fields "<sid> <cid>" of sessions and children still known */
static int
gch_wait_entries(gch_wait_t *w, const redisReply *r)
{
    char               key[256];
    size_t             i, n;
    const char        *sp;
    const redisReply  *f;
    gch_wait_entry_t  *e;

    if (r->type != REDIS_REPLY_ARRAY) {
        return GCH_EREDIS;
    }

    n = r->elements / 2;
    if (n > GCH_WAIT_MAX) {
        n = GCH_WAIT_MAX;
    }

    w->entries = w->a->alloc(w->a->ctx, (n + 1) * sizeof(gch_wait_entry_t));
    if (w->entries == NULL) {
        return GCH_ENOMEM;
    }

    for (i = 0; i < n; i++) {
        f = r->element[2 * i];
        if (f->type != REDIS_REPLY_STRING) {
            return GCH_EREDIS;
        }

        sp = memchr(f->str, ' ', f->len);
        if (sp == NULL) {
            continue;
        }

        e = &w->entries[w->nentries];
        e->session = gch_town_session(w->town, f->str, sp - f->str);
        e->child = gch_family_child(w->family, sp + 1,
                                    f->len - (sp - f->str) - 1);
        if (e->session && e->child) {
            w->nentries++;
        }
    }

    gch_cmdlist_free(&w->cmds);
    gch_cmdlist_cmd(&w->cmds, "MULTI", NULL);

    for (i = 0; i < w->nentries; i++) {
        gch_wait_key(key, sizeof(key), w->town, w->entries[i].session,
                     GCH_KEY_WAIT);
        gch_cmdlist_cmd(&w->cmds, "LPOS", key, w->entries[i].child->id,
                        NULL);
        gch_wait_key(key, sizeof(key), w->town, w->entries[i].session,
                     GCH_KEY_OFFER);
        gch_cmdlist_cmd(&w->cmds, "HGET", key, w->entries[i].child->id,
                        NULL);
    }

    gch_cmdlist_cmd(&w->cmds, "EXEC", NULL);
    w->step = GCH_WAIT_POSITIONS;

    return w->cmds.failed ? GCH_ENOMEM : GCH_OK;
}


/* {"waitlist":[{"session_id","child_id","activity_id","activity_name",
 * "date","unit","unit_label","position"}]}
 * in the order of the sessions' days; entries gone from their list (a
 * promotion, a refusal at promotion) are not shown. */
static int
gch_wait_render(gch_wait_t *w, const redisReply *r)
{
    char               day[11], until[26];
    size_t             i, j, *order, t;
    yajl_gen           g;
    const redisReply  *pos, *offer;
    const gch_wait_entry_t  *e;

    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 * w->nentries) {
        return GCH_EREDIS;
    }

    order = w->a->alloc(w->a->ctx, (w->nentries + 1) * sizeof(size_t));
    if (order == NULL) {
        return GCH_ENOMEM;
    }

    /* insertion sort by day, then session id, then child (a few entries) */
    for (i = 0; i < w->nentries; i++) {
        order[i] = i;
        for (j = i; j > 0; j--) {
            const gch_wait_entry_t  *x = &w->entries[order[j - 1]],
                                    *y = &w->entries[order[j]];
            int                      c;

            c = (x->session->date > y->session->date)
                - (x->session->date < y->session->date);
            if (c == 0) {
                c = strcmp(x->session->id, y->session->id);
            }
            if (c == 0) {
                c = strcmp(x->child->id, y->child->id);
            }
            if (c <= 0) {
                break;
            }

            t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    }

    g = gch_gen_new(w->a);
    if (g == NULL) {
        w->a->free(w->a->ctx, order);
        return GCH_ENOMEM;
    }

    yajl_gen_map_open(g);
    gch_gen_str(g, "waitlist");
    yajl_gen_array_open(g);

    for (i = 0; i < w->nentries; i++) {
        e = &w->entries[order[i]];
        pos = r->element[2 * order[i]];
        offer = r->element[2 * order[i] + 1];
        if (pos->type != REDIS_REPLY_INTEGER
            && offer->type != REDIS_REPLY_STRING)
        {
            continue;
        }

        gch_day_format(e->session->date, day);

        yajl_gen_map_open(g);
        gch_gen_kv(g, "session_id", e->session->id);
        gch_gen_kv(g, "child_id", e->child->id);
        gch_gen_kv(g, "activity_id", e->session->activity->id);
        gch_gen_kv(g, "activity_name", e->session->activity->name
                                       ? e->session->activity->name : "");
        gch_gen_kv(g, "date", day);
        gch_gen_kv(g, "unit", w->town->units[e->session->unit].code);
        gch_gen_kv(g, "unit_label", e->session->label
                                    ? e->session->label
                                    : w->town->units[e->session->unit]
                                      .label);
        if (offer->type == REDIS_REPLY_STRING) {
            /* a place held for the child: "Une place vous est proposée
             * jusqu'au ..." */
            gch_gen_kv(g, "status", "offered");
            gch_instant_format(strtoll(offer->str, NULL, 10) / 1000,
                               until);
            gch_gen_kv(g, "offer_until", until);

        } else {
            gch_gen_kv(g, "status", "waiting");
            gch_gen_str(g, "position");
            yajl_gen_integer(g, pos->integer + 1);
        }
        yajl_gen_map_close(g);
    }

    yajl_gen_array_close(g);
    yajl_gen_map_close(g);

    w->a->free(w->a->ctx, order);

    w->body = gch_gen_detach(g, w->a, &w->body_len);
    w->status = 200;
    w->step = GCH_WAIT_DONE;

    return w->body ? GCH_OK : GCH_ENOMEM;
}


int
gch_wait_on_reply(gch_wait_t *w, const redisReply *exec)
{
    yajl_gen  g;

    if (exec == NULL || exec->type != REDIS_REPLY_ARRAY) {
        return GCH_EREDIS;
    }

    switch (w->step) {

    case GCH_WAIT_LIST:
        if (exec->elements != 1) {
            return GCH_EREDIS;
        }
        return gch_wait_entries(w, exec->element[0]);

    case GCH_WAIT_POSITIONS:
        return gch_wait_render(w, exec);

    case GCH_WAIT_LEAVE:
        if (exec->elements != 6
            || exec->element[0]->type != REDIS_REPLY_INTEGER
            || exec->element[3]->type != REDIS_REPLY_INTEGER
            || exec->element[4]->type != REDIS_REPLY_INTEGER)
        {
            return GCH_EREDIS;
        }

        if (exec->element[0]->integer == 0
            && exec->element[3]->integer == 0
            && exec->element[4]->integer == 0)
        {
            return gch_wait_answer(w, 404, "not_found",
                                   "Cet enfant n'est pas sur cette liste "
                                   "d'attente.");
        }

        g = gch_gen_new(w->a);
        if (g == NULL) {
            return GCH_ENOMEM;
        }

        yajl_gen_map_open(g);
        gch_gen_kv(g, "session_id", w->session->id);
        gch_gen_kv(g, "child_id", w->child->id);
        gch_gen_kv(g, "status", exec->element[4]->integer
                                ? "declined" : "left");
        yajl_gen_map_close(g);

        w->body = gch_gen_detach(g, w->a, &w->body_len);
        w->status = 200;
        w->step = GCH_WAIT_DONE;

        return w->body ? GCH_OK : GCH_ENOMEM;

    default:
        return GCH_EREDIS;
    }
}


int
gch_wait_status(const gch_wait_t *w)
{
    return w->status;
}


const char *
gch_wait_body(const gch_wait_t *w, size_t *len)
{
    *len = w->body_len;
    return w->body;
}


void
gch_wait_free(gch_wait_t *w)
{
    if (w == NULL) {
        return;
    }

    gch_cmdlist_free(&w->cmds);
    w->a->free(w->a->ctx, w->entries);
    w->a->free(w->a->ctx, w->body);
    w->a->free(w->a->ctx, w);
}


/* ----- the promotion ------------------------------------------------ */

/* See gch.h. */
int
gch_wait_promotion_key(char *out, size_t size, const char *bid,
    long long tries)
{
    int  n;

    n = snprintf(out, size, GCH_WAIT_KEY_PREFIX "%s.%lld", bid, tries);

    return (n < 0 || (size_t) n >= size) ? -1 : n;
}


/* See gch.h. */
int
gch_wait_is_promotion(const char *key, size_t len)
{
    return len > sizeof(GCH_WAIT_KEY_PREFIX) - 1
           && memcmp(key, GCH_WAIT_KEY_PREFIX,
                     sizeof(GCH_WAIT_KEY_PREFIX) - 1) == 0;
}


/* See gch.h. */
int
gch_wait_decide(int confirmed, gch_reason_t reason)
{
    if (confirmed) {
        return GCH_WAIT_BOOKED;
    }

    switch (reason) {

    case GCH_REASON_FULL:
        /* the freed place went to a fresh request first: wait again */
        return GCH_WAIT_STAY;

    default:
        /* not eligible now (enrolment, age, documents, unpaid invoices,
         * deadline, an overlapping booking, whole week ...) */
        return GCH_WAIT_DROP;
    }
}


/* See gch.h. */
int
gch_wait_closed(const gch_town_t *t, const gch_session_t *s, int64_t now_ms)
{
    int  starts;

    starts = t->units[s->unit].starts_min;

    return now_ms / 1000 >= gch_deadline_instant(&s->activity->deadline,
                                                 s->date, starts);
}


/* ----- offers --------------------------------------------------------- */

/* See gch.h. */
int64_t
gch_offer_until(const gch_town_t *t, const gch_session_t *s, int64_t now_ms)
{
    int64_t  until, deadline;

    if (s->activity->offer_hours <= 0) {
        return 0;
    }

    until = now_ms + (int64_t) s->activity->offer_hours * 3600 * 1000;

    /* an offer never outlives the booking deadline: accepted after it,
     * it would be refused "closed" */
    deadline = gch_deadline_instant(&s->activity->deadline, s->date,
                                    t->units[s->unit].starts_min)
               * 1000;
    if (deadline <= now_ms) {
        return 0;
    }

    return until < deadline ? until : deadline;
}


/* See gch.h. */
int
gch_offer_expired(int64_t until_ms, int64_t now_ms)
{
    return now_ms >= until_ms;
}


/* See gch.h. */
gch_reason_t
gch_wait_eligible(const gch_town_t *t, const gch_family_t *f,
    const char *cid, const gch_session_t *s, int64_t now_ms,
    const gch_alloc_t *a)
{
    int            rc;
    gch_book_t     *b;
    gch_item_t      item;
    gch_reason_t    reason;
    gch_error_t     err;
    gch_book_in_t   in;
    gch_booking_req_t  req;

    memset(&item, 0, sizeof(item));
    item.child_id = cid;
    item.child_len = strlen(cid);
    item.session_id = s->id;
    item.session_len = strlen(s->id);

    memset(&req, 0, sizeof(req));
    req.items = &item;
    req.nitems = 1;

    memset(&in, 0, sizeof(in));
    in.town = t;
    in.family = f;
    in.req = &req;
    in.now_ms = now_ms;
    in.idem_key = GCH_WAIT_KEY_PREFIX "check";
    in.idem_len = sizeof(GCH_WAIT_KEY_PREFIX "check") - 1;
    in.body = "";

    memset(&err, 0, sizeof(err));
    b = NULL;

    rc = gch_book_plan(&b, &in, a, &err);
    if (rc != GCH_OK) {
        /* not the family's child now (or memory: tried again later) */
        return rc == GCH_EFORBIDDEN ? GCH_REASON_NOT_ENROLLED
                                    : GCH_REASON_COUNT;
    }

    reason = b->cells[0].reason;
    gch_book_free(b);

    return reason;
}
