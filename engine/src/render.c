/*
 * render.c -- the read endpoints: family, catalogue, live places, planning.
 *
 * GET /api/me and GET /api/activities come from the catalogue alone.  The
 * sessions list and the family's planning need Redis: a "view" plans one
 * MULTI/EXEC of reads (places left of each session, the family's bookings
 * hash) and renders the answer from its reply, so that places_left comes
 * from the very counters that take the places.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_tree.h>

#include "gch_keys.h"
#include "resp.h"


#define GCH_VIEW_SESSIONS   1
#define GCH_VIEW_BOOKINGS   2
#define GCH_VIEW_REQUESTS   3
#define GCH_RANGE_MAX       92


struct gch_view_s {
    int                    kind;
    const gch_alloc_t     *a;
    const gch_town_t      *town;
    const gch_family_t    *family;
    const gch_activity_t  *activity;
    gch_day_t              from;
    gch_day_t              to;
    int64_t                now_ms;
    const gch_session_t  **sessions;
    size_t                 nsessions;
    gch_cmdlist_t          cmds;
};


static void
gch_gen_day(yajl_gen g, const char *k, gch_day_t d)
{
    char  buf[11];

    gch_day_format(d, buf);
    gch_gen_kv(g, k, buf);
}


static void
gch_gen_instant(yajl_gen g, const char *k, int64_t t)
{
    char  buf[26];

    gch_instant_format(t, buf);
    gch_gen_kv(g, k, buf);
}


static int
gch_finish(yajl_gen g, const gch_alloc_t *a, char **out, size_t *len)
{
    *out = gch_gen_detach(g, a, len);
    return *out ? GCH_OK : GCH_ENOMEM;
}


/* See gch.h.  *out is allocated with a. */
int
gch_render_error(const gch_error_t *err, const gch_alloc_t *a, char **out,
    size_t *len)
{
    yajl_gen  g;

    g = gch_gen_new(a);
    if (g == NULL) {
        return GCH_ENOMEM;
    }

    yajl_gen_map_open(g);
    gch_gen_str(g, "error");
    yajl_gen_map_open(g);
    gch_gen_kv(g, "code", err->code ? err->code : "internal");
    gch_gen_kv(g, "message", err->message);
    yajl_gen_map_close(g);
    yajl_gen_map_close(g);

    return gch_finish(g, a, out, len);
}


static const char *
gch_enrol_status(int s)
{
    return s == GCH_ENROL_VALIDEE ? "validee"
           : s == GCH_ENROL_REFUSEE ? "refusee" : "demandee";
}


/* See gch.h.  *out is allocated with a. */
int
gch_render_me(const gch_town_t *t, const gch_family_t *f,
    const gch_alloc_t *a, char **out, size_t *len)
{
    size_t                  i;
    yajl_gen                g;
    const gch_enrolment_t  *e;

    g = gch_gen_new(a);
    if (g == NULL) {
        return GCH_ENOMEM;
    }

    yajl_gen_map_open(g);
    gch_gen_kv(g, "family_id", f->id);
    gch_gen_kv(g, "login", f->login);
    gch_gen_kv(g, "town", t->name);
    gch_gen_str(g, "qf");
    if (f->qf >= 0) {
        yajl_gen_integer(g, f->qf);
    } else {
        yajl_gen_null(g);
    }
    gch_gen_str(g, "resident");
    yajl_gen_bool(g, f->resident);
    gch_gen_str(g, "direct_debit");
    yajl_gen_bool(g, f->direct_debit);

    gch_gen_str(g, "representatives");
    yajl_gen_array_open(g);
    yajl_gen_array_close(g);

    gch_gen_str(g, "children");
    yajl_gen_array_open(g);
    for (i = 0; i < f->nchildren; i++) {
        yajl_gen_map_open(g);
        gch_gen_kv(g, "id", f->children[i].id);
        gch_gen_kv(g, "first_name", f->children[i].first_name);
        gch_gen_day(g, "birth_date", f->children[i].birth_date);
        yajl_gen_map_close(g);
    }
    yajl_gen_array_close(g);

    gch_gen_str(g, "enrolments");
    yajl_gen_array_open(g);
    for (i = 0; i < f->nenrolments; i++) {
        e = &f->enrolments[i];
        yajl_gen_map_open(g);
        gch_gen_kv(g, "child_id", e->child_id);
        gch_gen_kv(g, "activity_id", e->activity->id);
        gch_gen_kv(g, "activity_name", e->activity->name);
        gch_gen_day(g, "from", e->from);
        gch_gen_day(g, "to", e->to);
        gch_gen_kv(g, "status", gch_enrol_status(e->status));
        yajl_gen_map_close(g);
    }
    yajl_gen_array_close(g);

    /* the price of one cell of each activity for this family, as a
     * booking fixes it (gch_price_cents: QF band, non-resident bands) */
    gch_gen_str(g, "prices");
    yajl_gen_array_open(g);
    for (i = 0; i < t->nactivities; i++) {
        yajl_gen_map_open(g);
        gch_gen_kv(g, "activity_id", t->activities[i].id);
        gch_gen_ki(g, "price_cents",
                   gch_price_cents(&t->activities[i], f));
        yajl_gen_map_close(g);
    }
    yajl_gen_array_close(g);

    yajl_gen_map_close(g);

    return gch_finish(g, a, out, len);
}


static void
gch_gen_deadline(yajl_gen g, const char *key, const gch_deadline_t *dl)
{
    char      hhmm[16];
    unsigned  m;

    gch_gen_str(g, key);
    yajl_gen_map_open(g);

    switch (dl->kind) {

    case GCH_DEADLINE_WORKING_DAYS:
        gch_gen_ki(g, "working_days", dl->n);
        break;

    case GCH_DEADLINE_HOURS:
        gch_gen_ki(g, "hours", dl->n);
        break;

    case GCH_DEADLINE_DAY_BEFORE_AT:
        m = (unsigned) dl->n % (24 * 60);
        snprintf(hhmm, sizeof(hhmm), "%02u:%02u", m / 60, m % 60);
        gch_gen_kv(g, "day_before_at", hhmm);
        break;

    default:
        break;
    }

    yajl_gen_map_close(g);
}


static void
gch_gen_prices(yajl_gen g, const char *k, const gch_price_t *p, size_t n)
{
    size_t  i;

    gch_gen_str(g, k);
    yajl_gen_array_open(g);

    for (i = 0; i < n; i++) {
        yajl_gen_map_open(g);
        gch_gen_str(g, "qf_max");

        if (p[i].qf_max >= 0) {
            yajl_gen_integer(g, p[i].qf_max);

        } else {
            yajl_gen_null(g);
        }

        gch_gen_ki(g, "cents", p[i].cents);
        yajl_gen_map_close(g);
    }

    yajl_gen_array_close(g);
}


/* See gch.h.  *out is allocated with a. */
int
gch_render_activities(const gch_town_t *t, const gch_alloc_t *a,
    char **out, size_t *len)
{
    size_t                 i, j;
    yajl_gen               g;
    const gch_activity_t  *act;

    g = gch_gen_new(a);
    if (g == NULL) {
        return GCH_ENOMEM;
    }

    yajl_gen_array_open(g);

    for (i = 0; i < t->nactivities; i++) {
        act = &t->activities[i];

        yajl_gen_map_open(g);
        gch_gen_kv(g, "id", act->id);
        gch_gen_kv(g, "name", act->name);
        gch_gen_ki(g, "age_min", act->age_min);
        gch_gen_ki(g, "age_max", act->age_max);
        gch_gen_kv(g, "site", act->site);

        if (act->opens_at) {
            gch_gen_instant(g, "booking_opens_at", act->opens_at);
        } else {
            gch_gen_kv(g, "booking_opens_at", NULL);
        }

        if (act->release_onsite_at) {
            gch_gen_instant(g, "release_onsite_at", act->release_onsite_at);
        }

        if (act->draw) {
            /* the draw's published seed (docs/rules.md, "Opening by
             * draw") */
            gch_gen_str(g, "opening");
            yajl_gen_map_open(g);
            gch_gen_kv(g, "mode", "draw");
            gch_gen_instant(g, "entries_from", act->entries_from);
            gch_gen_kv(g, "seed", act->draw_seed);
            gch_gen_str(g, "drawn");
            yajl_gen_bool(g, act->drawn);
            yajl_gen_map_close(g);
        }

        gch_gen_deadline(g, "deadline", &act->deadline);
        gch_gen_deadline(g, "cancel_deadline", &act->cancel_deadline);

        gch_gen_str(g, "required_documents");
        yajl_gen_array_open(g);
        for (j = 0; j < act->nrequired_documents; j++) {
            gch_gen_str(g, act->required_documents[j]);
        }
        yajl_gen_array_close(g);

        gch_gen_str(g, "blocks_unpaid_invoices");
        yajl_gen_bool(g, act->blocks_unpaid);
        gch_gen_str(g, "week_required");
        yajl_gen_bool(g, act->week_required);
        gch_gen_ki(g, "online_share_percent", act->online_share_percent);

        gch_gen_prices(g, "prices", act->prices, act->nprices);

        if (act->nnr_prices) {
            gch_gen_prices(g, "non_resident_prices", act->nr_prices,
                           act->nnr_prices);
        }

        yajl_gen_map_close(g);
    }

    yajl_gen_array_close(g);

    return gch_finish(g, a, out, len);
}


static gch_view_t *
gch_view_new(int kind, const gch_town_t *t, int64_t now_ms,
    const gch_alloc_t *a)
{
    gch_view_t  *v;

    v = a->alloc(a->ctx, sizeof(gch_view_t));
    if (v == NULL) {
        return NULL;
    }

    memset(v, 0, sizeof(gch_view_t));
    v->kind = kind;
    v->a = a;
    v->town = t;
    v->now_ms = now_ms;
    gch_cmdlist_init(&v->cmds, a);

    return v;
}


static int
gch_view_range(gch_view_t *v, const char *from, size_t from_len,
    const char *to, size_t to_len, gch_error_t *err)
{
    int      m;
    int64_t  now_s;

    now_s = v->now_ms / 1000;
    gch_unix_to_paris(now_s, &v->from, &m, NULL);

    if (from && gch_day_parse(&v->from, from, from_len) != 0) {
        gch_error_set(err, GCH_EINVALID,
                      "Le paramètre \"from\" doit être une date AAAA-MM-JJ.");
        return GCH_EINVALID;
    }

    v->to = v->from + 31;

    if (to && gch_day_parse(&v->to, to, to_len) != 0) {
        gch_error_set(err, GCH_EINVALID,
                      "Le paramètre \"to\" doit être une date AAAA-MM-JJ.");
        return GCH_EINVALID;
    }

    if (v->to < v->from || v->to - v->from > GCH_RANGE_MAX) {
        gch_error_set(err, GCH_EINVALID,
                      "Le paramètre \"to\" doit suivre \"from\" de %d jours "
                      "au plus.", GCH_RANGE_MAX);
        return GCH_EINVALID;
    }

    return GCH_OK;
}


static int
gch_session_cmp(const void *x, const void *y)
{
    const gch_session_t  *a = *(const gch_session_t * const *) x;
    const gch_session_t  *b = *(const gch_session_t * const *) y;

    if (a->date != b->date) {
        return a->date < b->date ? -1 : 1;
    }

    return a->unit - b->unit;
}


/* See gch.h.  On error nothing is returned and err says why. */
int
gch_sessions_plan(gch_view_t **out, const gch_town_t *t,
    const char *activity_id, size_t activity_len, const char *from,
    size_t from_len, const char *to, size_t to_len, int64_t now_ms,
    const gch_alloc_t *a, gch_error_t *err)
{
    int                   rc;
    char                  key[256];
    size_t                i, n, na;
    gch_view_t           *v;
    const gch_session_t  *s, *first;

    *out = NULL;

    v = gch_view_new(GCH_VIEW_SESSIONS, t, now_ms, a);
    if (v == NULL) {
        gch_error_set(err, GCH_ENOMEM, NULL);
        return GCH_ENOMEM;
    }

    v->activity = gch_town_activity(t, activity_id, activity_len);
    if (v->activity == NULL) {
        gch_view_free(v);
        gch_error_set(err, GCH_ENOTFOUND, "Cette activité n'existe pas.");
        return GCH_ENOTFOUND;
    }

    rc = gch_view_range(v, from, from_len, to, to_len, err);
    if (rc != GCH_OK) {
        gch_view_free(v);
        return rc;
    }

    /* the activity's sessions only, not the town's */
    first = gch_town_act_sessions(t, v->activity, &na);

    n = 0;
    for (i = 0; i < na; i++) {
        s = &first[i];
        n += (s->date >= v->from && s->date <= v->to);
    }

    v->sessions = a->alloc(a->ctx, (n ? n : 1) * sizeof(gch_session_t *));
    if (v->sessions == NULL) {
        goto nomem;
    }

    for (i = 0; i < na; i++) {
        s = &first[i];
        if (s->date >= v->from && s->date <= v->to) {
            v->sessions[v->nsessions++] = s;
        }
    }

    qsort(v->sessions, v->nsessions, sizeof(gch_session_t *),
          gch_session_cmp);

    gch_cmdlist_cmd(&v->cmds, "MULTI", NULL);
    for (i = 0; i < v->nsessions; i++) {
        snprintf(key, sizeof(key), GCH_KEY_S(GCH_KEY_LEFT), v->town->id,
                 v->sessions[i]->id);
        gch_cmdlist_cmd(&v->cmds, "BITFIELD_RO", key, "GET", "u32", "0",
                        NULL);
    }
    gch_cmdlist_cmd(&v->cmds, "EXEC", NULL);

    if (v->cmds.failed) {
        goto nomem;
    }

    *out = v;
    return GCH_OK;

nomem:

    gch_view_free(v);
    gch_error_set(err, GCH_ENOMEM, NULL);
    return GCH_ENOMEM;
}


/* See gch.h.  On error nothing is returned and err says why. */
int
gch_bookings_plan(gch_view_t **out, const gch_town_t *t,
    const gch_family_t *f, const char *from, size_t from_len,
    const char *to, size_t to_len, int64_t now_ms, const gch_alloc_t *a,
    gch_error_t *err)
{
    int          rc;
    char         key[256];
    gch_view_t  *v;

    *out = NULL;

    v = gch_view_new(GCH_VIEW_BOOKINGS, t, now_ms, a);
    if (v == NULL) {
        gch_error_set(err, GCH_ENOMEM, NULL);
        return GCH_ENOMEM;
    }

    v->family = f;

    rc = gch_view_range(v, from, from_len, to, to_len, err);
    if (rc != GCH_OK) {
        gch_view_free(v);
        return rc;
    }

    snprintf(key, sizeof(key), GCH_KEY_F(GCH_KEY_BOOKINGS), v->town->id, f->id);
    gch_cmdlist_cmd(&v->cmds, "MULTI", NULL);
    gch_cmdlist_cmd(&v->cmds, "HGETALL", key, NULL);
    gch_cmdlist_cmd(&v->cmds, "EXEC", NULL);

    if (v->cmds.failed) {
        gch_view_free(v);
        gch_error_set(err, GCH_ENOMEM, NULL);
        return GCH_ENOMEM;
    }

    *out = v;
    return GCH_OK;
}


/* See gch.h.  GCH_ENOMEM leaves nothing in *out. */
int
gch_requests_plan(gch_view_t **out, const gch_town_t *t,
    const gch_family_t *f, int64_t now_ms, const gch_alloc_t *a,
    gch_error_t *err)
{
    char         key[256];
    gch_view_t  *v;

    *out = NULL;

    v = gch_view_new(GCH_VIEW_REQUESTS, t, now_ms, a);
    if (v == NULL) {
        gch_error_set(err, GCH_ENOMEM, NULL);
        return GCH_ENOMEM;
    }

    v->family = f;

    snprintf(key, sizeof(key), GCH_KEY_F(GCH_KEY_DEMANDES), v->town->id, f->id);
    gch_cmdlist_cmd(&v->cmds, "MULTI", NULL);
    gch_cmdlist_cmd(&v->cmds, "LRANGE", key, "0", "99", NULL);
    gch_cmdlist_cmd(&v->cmds, "EXEC", NULL);

    if (v->cmds.failed) {
        gch_view_free(v);
        gch_error_set(err, GCH_ENOMEM, NULL);
        return GCH_ENOMEM;
    }

    *out = v;
    return GCH_OK;
}


/*
 * The stored demandes are a booking's compact demande (demande.c), rendered
 * here, or our own JSON objects (cancellations, justifications, bookings
 * stored before the compact form): a JSON array of them.
 */
static int
gch_render_requests(gch_view_t *v, const redisReply *exec, char **out,
    size_t *len)
{
    char              *js;
    size_t             i, n;
    gch_buf_t          b;
    const redisReply  *l;

    if (exec->elements != 1 || exec->element[0]->type != REDIS_REPLY_ARRAY) {
        return GCH_EREDIS;
    }

    l = exec->element[0];
    gch_buf_init(&b, v->a);
    gch_buf_add(&b, "[", 1);

    for (i = 0; i < l->elements; i++) {
        if (l->element[i]->type != REDIS_REPLY_STRING) {
            gch_buf_free(&b);
            return GCH_EREDIS;
        }

        if (i) {
            gch_buf_add(&b, ",", 1);
        }

        if (l->element[i]->len == 0
            || l->element[i]->str[0] != GCH_DM_MAGIC[0])
        {
            gch_buf_add(&b, l->element[i]->str, l->element[i]->len);
            continue;
        }

        js = gch_dm_json(l->element[i]->str, l->element[i]->len,
                         GCH_DM_DEMANDE, v->a, &n);
        if (js == NULL) {
            gch_buf_free(&b);
            return n ? GCH_ENOMEM : GCH_EREDIS;
        }

        gch_buf_add(&b, js, n);
        v->a->free(v->a->ctx, js);
    }

    gch_buf_add(&b, "]", 1);

    *out = gch_buf_detach(&b, len);
    return *out ? GCH_OK : GCH_ENOMEM;
}


const gch_cmds_t *
gch_view_cmds(gch_view_t *v)
{
    return &v->cmds.list;
}


static const char *
gch_session_status(const gch_view_t *v, const gch_session_t *s,
    long long left)
{
    int64_t                now_s;
    const gch_activity_t  *act;

    act = s->activity;
    now_s = v->now_ms / 1000;

    if (now_s >= gch_deadline_instant(&act->deadline, s->date,
                                      v->town->units[s->unit].starts_min))
    {
        return "closed";
    }

    switch (gch_draw_phase(act, v->now_ms)) {
    case GCH_DRAW_NOT_OPEN:
        return "not_open_yet";
    case GCH_DRAW_ENTRIES:
        return "draw_entries";          /* entered, decided at the draw */
    case GCH_DRAW_HELD:
        return "draw_pending";          /* the draw is being decided */
    default:
        break;
    }

    return left > 0 ? "open" : "full";
}


static void
gch_gen_session(const gch_view_t *v, yajl_gen g, const gch_session_t *s)
{
    const gch_unit_t  *u;

    u = &v->town->units[s->unit];

    gch_gen_kv(g, "session_id", s->id);
    gch_gen_kv(g, "activity_id", s->activity->id);
    gch_gen_day(g, "date", s->date);
    gch_gen_kv(g, "unit", u->code);
    gch_gen_kv(g, "label", s->label ? s->label : u->label);
    gch_gen_instant(g, "starts_at", gch_paris_to_unix(s->date,
                                                      u->starts_min));
    gch_gen_instant(g, "ends_at", gch_paris_to_unix(s->date, u->ends_min));
}


static int
gch_render_sessions(gch_view_t *v, const redisReply *exec, yajl_gen g)
{
    size_t                i;
    long long             left;
    const redisReply     *r;
    const gch_session_t  *s;

    if (exec->elements != v->nsessions) {
        return GCH_EREDIS;
    }

    yajl_gen_array_open(g);

    for (i = 0; i < v->nsessions; i++) {
        s = v->sessions[i];
        r = exec->element[i];

        if (r->type != REDIS_REPLY_ARRAY || r->elements != 1
            || r->element[0]->type != REDIS_REPLY_INTEGER)
        {
            return GCH_EREDIS;
        }

        left = r->element[0]->integer;

        yajl_gen_map_open(g);
        gch_gen_kv(g, "id", s->id);
        gch_gen_session(v, g, s);
        gch_gen_ki(g, "places_online", s->places_online);
        gch_gen_ki(g, "places_left", left);
        gch_gen_kv(g, "status", gch_session_status(v, s, left));
        /* from this instant a cancellation is billed (cancel.c) */
        gch_gen_instant(g, "cancel_until", gch_deadline_instant(
                            &s->activity->cancel_deadline, s->date,
                            v->town->units[s->unit].starts_min));
        yajl_gen_map_close(g);
    }

    yajl_gen_array_close(g);

    return GCH_OK;
}


typedef struct {
    const char           *bid;
    const gch_session_t  *session;
    yajl_val              doc;
} gch_brow_t;


static int
gch_brow_cmp(const void *x, const void *y)
{
    const gch_brow_t  *a = x;
    const gch_brow_t  *b = y;
    int                rc;

    rc = gch_session_cmp(&a->session, &b->session);
    return rc ? rc : strcmp(a->bid, b->bid);
}


static long long
gch_doc_int(yajl_val doc, const char *name)
{
    const char  *path[2] = { name, NULL };
    yajl_val     v;

    v = yajl_tree_get(doc, path, yajl_t_number);
    return (v && YAJL_IS_INTEGER(v)) ? YAJL_GET_INTEGER(v) : 0;
}


static int
gch_render_bookings(gch_view_t *v, const redisReply *exec, yajl_gen g)
{
    int                   rc;
    size_t                i, n;
    long long             total;
    gch_brow_t           *rows;
    const char           *sid, *cid;
    const redisReply     *h;
    const gch_session_t  *s;
    const gch_child_t    *child;

    if (exec->elements != 1 || exec->element[0]->type != REDIS_REPLY_ARRAY
        || exec->element[0]->elements % 2)
    {
        return GCH_EREDIS;
    }

    h = exec->element[0];
    rows = v->a->alloc(v->a->ctx,
                       (h->elements / 2 + 1) * sizeof(gch_brow_t));
    if (rows == NULL) {
        return GCH_ENOMEM;
    }

    n = 0;
    rc = GCH_OK;

    for (i = 0; i + 1 < h->elements; i += 2) {
        if (h->element[i + 1]->type != REDIS_REPLY_STRING) {
            rc = GCH_EREDIS;
            continue;
        }

        rows[n].doc = gch_planning_doc(h->element[i + 1]->str,
                                       h->element[i + 1]->len, v->a);
        if (rows[n].doc == NULL) {
            rc = GCH_EREDIS;
            continue;
        }

        sid = gch_doc_str(rows[n].doc, "session_id");
        s = sid ? gch_town_session(v->town, sid, strlen(sid)) : NULL;

        if (s == NULL || s->date < v->from || s->date > v->to) {
            yajl_tree_free(rows[n].doc);
            continue;
        }

        rows[n].bid = h->element[i]->str;
        rows[n].session = s;
        n++;
    }

    qsort(rows, n, sizeof(gch_brow_t), gch_brow_cmp);

    total = 0;

    yajl_gen_map_open(g);
    gch_gen_day(g, "from", v->from);
    gch_gen_day(g, "to", v->to);
    gch_gen_str(g, "bookings");
    yajl_gen_array_open(g);

    for (i = 0; i < n; i++) {
        cid = gch_doc_str(rows[i].doc, "child_id");
        child = cid ? gch_family_child(v->family, cid, strlen(cid)) : NULL;

        yajl_gen_map_open(g);
        gch_gen_kv(g, "booking_id", rows[i].bid);
        gch_gen_kv(g, "child_id", cid);
        gch_gen_kv(g, "first_name", child ? child->first_name : NULL);
        gch_gen_session(v, g, rows[i].session);
        gch_gen_kv(g, "activity_name", rows[i].session->activity->name);
        gch_gen_ki(g, "price_cents", gch_doc_int(rows[i].doc,
                                                 "price_cents"));
        gch_gen_kv(g, "request_id", gch_doc_str(rows[i].doc, "request_id"));
        gch_gen_kv(g, "status", "confirmed");
        yajl_gen_map_close(g);

        total += gch_doc_int(rows[i].doc, "price_cents");
        yajl_tree_free(rows[i].doc);
    }

    yajl_gen_array_close(g);
    gch_gen_ki(g, "total_cents", total);
    yajl_gen_map_close(g);

    v->a->free(v->a->ctx, rows);

    return rc;
}


/*
 * See gch.h.  GCH_EREDIS when the reply is not the expected one; *out is
 * allocated with the view's allocator.
 */
int
gch_view_render(gch_view_t *v, const redisReply *exec, char **out,
    size_t *len)
{
    int       rc;
    yajl_gen  g;

    *out = NULL;

    if (exec == NULL || exec->type != REDIS_REPLY_ARRAY) {
        return GCH_EREDIS;
    }

    if (v->kind == GCH_VIEW_REQUESTS) {
        return gch_render_requests(v, exec, out, len);
    }

    g = gch_gen_new(v->a);
    if (g == NULL) {
        return GCH_ENOMEM;
    }

    rc = (v->kind == GCH_VIEW_SESSIONS) ? gch_render_sessions(v, exec, g)
                                        : gch_render_bookings(v, exec, g);
    if (rc != GCH_OK) {
        yajl_gen_free(g);
        return rc;
    }

    return gch_finish(g, v->a, out, len);
}


void
gch_view_free(gch_view_t *v)
{
    if (v == NULL) {
        return;
    }

    gch_cmdlist_free(&v->cmds);
    v->a->free(v->a->ctx, v->sessions);
    v->a->free(v->a->ctx, v);
}
