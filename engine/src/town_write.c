/*
 * town_write.c -- gch_town_write(): the catalogue the worker publishes to
 * Redis and every nginx worker parses back (gch_town_parse(), town.c).
 */

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "resp.h"
#include "town.h"


/* writing the catalogue */

static void
gch_w_kv(gch_jout_t *o, const char *k, const char *v)
{
    gch_gen_kv(o->g, k, v);
}


static void
gch_w_ki(gch_jout_t *o, const char *k, long long v)
{
    gch_gen_ki(o->g, k, v);
}


static void
gch_w_kb(gch_jout_t *o, const char *k, int v)
{
    gch_jout_cstr(o, k);
    yajl_gen_bool(o->g, v);
}


static void
gch_w_day(gch_jout_t *o, const char *k, gch_day_t d)
{
    char  buf[11];

    gch_day_format(d, buf);
    gch_w_kv(o, k, buf);
}


static void
gch_w_hhmm(gch_jout_t *o, const char *k, int m)
{
    char  buf[6];

    buf[0] = (char) ('0' + m / 600);
    buf[1] = (char) ('0' + m / 60 % 10);
    buf[2] = ':';
    buf[3] = (char) ('0' + m % 60 / 10);
    buf[4] = (char) ('0' + m % 10);
    buf[5] = '\0';

    gch_w_kv(o, k, buf);
}


static void
gch_w_requires(gch_jout_t *o, const gch_town_t *t,
    const gch_activity_t *act)
{
    size_t  u, w;

    gch_jout_cstr(o, "unit_requires");
    yajl_gen_array_open(o->g);

    for (u = 0; u < t->nunits; u++) {
        if (act->unit_requires[u] == 0) {
            continue;
        }

        yajl_gen_map_open(o->g);
        gch_w_kv(o, "unit", t->units[u].code);
        gch_jout_cstr(o, "with_any");
        yajl_gen_array_open(o->g);

        for (w = 0; w < t->nunits; w++) {
            if (act->unit_requires[u] & (1u << w)) {
                gch_jout_cstr(o, t->units[w].code);
            }
        }

        yajl_gen_array_close(o->g);
        yajl_gen_map_close(o->g);
    }

    yajl_gen_array_close(o->g);
}


static void
gch_w_prices(gch_jout_t *o, const char *k, const gch_price_t *p, size_t n)
{
    size_t  i;

    gch_jout_cstr(o, k);
    yajl_gen_array_open(o->g);

    for (i = 0; i < n; i++) {
        yajl_gen_map_open(o->g);

        if (p[i].qf_max < 0) {
            gch_w_kv(o, "qf_max", NULL);

        } else {
            gch_w_ki(o, "qf_max", p[i].qf_max);
        }

        gch_w_ki(o, "cents", p[i].cents);
        yajl_gen_map_close(o->g);
    }

    yajl_gen_array_close(o->g);
}


static void
gch_w_deadline(gch_jout_t *o, const char *k, const gch_deadline_t *dl)
{
    gch_jout_cstr(o, k);
    yajl_gen_map_open(o->g);

    switch (dl->kind) {
    case GCH_DEADLINE_WORKING_DAYS:
        gch_w_ki(o, "working_days", dl->n);
        break;
    case GCH_DEADLINE_HOURS:
        gch_w_ki(o, "hours", dl->n);
        break;
    case GCH_DEADLINE_DAY_BEFORE_AT:
        gch_w_hhmm(o, "day_before_at", dl->n);
        break;
    default:
        break;
    }

    yajl_gen_map_close(o->g);
}


static void
gch_w_activity(gch_jout_t *o, const gch_town_t *t, size_t ai)
{
    int                      unit;
    char                     when[26];
    size_t                   i;
    gch_day_t                day;
    const gch_session_t     *s;
    const gch_activity_t    *act = &t->activities[ai];
    const gch_town_priv_t   *p = t->priv;

    yajl_gen_map_open(o->g);
    gch_w_kv(o, "id", act->id);
    gch_w_kv(o, "name", act->name);

    if (act->site) {
        gch_w_kv(o, "site", act->site);
    }

    gch_w_ki(o, "age_min", act->age_min);
    gch_w_ki(o, "age_max", act->age_max);

    if (act->opens_at) {
        gch_instant_format(act->opens_at, when);
        gch_w_kv(o, "booking_opens_at", when);
    }

    gch_w_deadline(o, "deadline", &act->deadline);

    gch_w_deadline(o, "cancel_deadline", &act->cancel_deadline);

    gch_jout_cstr(o, "required_documents");
    yajl_gen_array_open(o->g);
    for (i = 0; i < act->nrequired_documents; i++) {
        gch_jout_cstr(o, act->required_documents[i]);
    }
    yajl_gen_array_close(o->g);

    gch_w_kb(o, "blocks_unpaid_invoices", act->blocks_unpaid);
    gch_w_ki(o, "online_share_percent", act->online_share_percent);
    gch_w_kb(o, "week_required", act->week_required);

    gch_w_prices(o, "prices", act->prices, act->nprices);

    if (act->nnr_prices) {
        gch_w_prices(o, "non_resident_prices", act->nr_prices,
                     act->nnr_prices);
    }

    if (act->unit_requires) {
        gch_w_requires(o, t, act);
    }

    if (act->release_onsite_at) {
        gch_instant_format(act->release_onsite_at, when);
        gch_w_kv(o, "release_onsite_at", when);
    }

    if (act->draw) {
        gch_jout_cstr(o, "opening");
        yajl_gen_map_open(o->g);
        gch_w_kv(o, "mode", "draw");
        gch_instant_format(act->entries_from, when);
        gch_w_kv(o, "entries_from", when);
        if (act->draw_seed) {
            gch_w_kv(o, "seed", act->draw_seed);
        }
        if (act->drawn) {
            gch_w_kb(o, "drawn", 1);
        }
        yajl_gen_map_close(o->g);
    }

    if (act->offer_hours) {
        gch_jout_cstr(o, "waitlist");
        yajl_gen_map_open(o->g);
        gch_w_kv(o, "mode", "offer");
        gch_w_ki(o, "hold_hours", act->offer_hours);
        yajl_gen_map_close(o->g);
    }

    gch_jout_cstr(o, "sessions");
    yajl_gen_array_open(o->g);

    for (i = 0; i < p->act_count[ai]; i++) {
        s = &t->sessions[p->act_first[ai] + i];

        yajl_gen_map_open(o->g);
        gch_w_kv(o, "id", s->id);

        /* an id "<activity>-<YYYYMMDD>-<UNIT>" (a calendar's) gives them
         * back: 35 bytes of the catalogue a session (issue 20) */
        if (!gch_town_id_cell(t, s->id, strlen(s->id), &day, &unit)
            || day != s->date || unit != s->unit)
        {
            gch_w_day(o, "date", s->date);
            gch_w_kv(o, "unit", t->units[s->unit].code);
        }

        /* the unit's label, the parser's default, is not written: 16 to
         * 21 bytes of the catalogue a session (issue 20, fifth pass) */
        if (strcmp(s->label, t->units[s->unit].label) != 0) {
            gch_w_kv(o, "label", s->label);
        }

        gch_w_ki(o, "places", s->places);
        yajl_gen_map_close(o->g);
    }

    yajl_gen_array_close(o->g);
    yajl_gen_map_close(o->g);
}


static void
gch_w_family(gch_jout_t *o, const gch_family_t *f)
{
    const gch_document_t   *d;

    size_t                  i;
    const gch_enrolment_t  *en;
    static const char      *status[] = { "demandee", "validee", "refusee" };

    yajl_gen_map_open(o->g);
    gch_w_kv(o, "id", f->id);

    if (f->login) {
        gch_w_kv(o, "login", f->login);
    }

    if (f->qf < 0) {
        gch_w_kv(o, "qf", NULL);

    } else {
        gch_w_ki(o, "qf", f->qf);
    }

    gch_w_kb(o, "resident", f->resident);
    gch_w_kb(o, "direct_debit", f->direct_debit);

    gch_jout_cstr(o, "children");
    yajl_gen_array_open(o->g);

    for (i = 0; i < f->nchildren; i++) {
        yajl_gen_map_open(o->g);
        gch_w_kv(o, "id", f->children[i].id);
        gch_w_kv(o, "first_name", f->children[i].first_name);
        gch_w_day(o, "birth_date", f->children[i].birth_date);
        yajl_gen_map_close(o->g);
    }

    yajl_gen_array_close(o->g);

    gch_jout_cstr(o, "enrolments");
    yajl_gen_array_open(o->g);

    for (i = 0; i < f->nenrolments; i++) {
        en = &f->enrolments[i];

        yajl_gen_map_open(o->g);
        gch_w_kv(o, "child_id", en->child_id);
        gch_w_kv(o, "activity_id", en->activity->id);
        gch_w_day(o, "from", en->from);
        gch_w_day(o, "to", en->to);
        gch_w_kv(o, "status", status[en->status]);
        yajl_gen_map_close(o->g);
    }

    yajl_gen_array_close(o->g);

    gch_jout_cstr(o, "documents");
    yajl_gen_array_open(o->g);

    for (i = 0; i < f->ndocuments; i++) {
        d = &f->documents[i];

        yajl_gen_map_open(o->g);
        gch_w_kv(o, "type", d->type);
        if (d->child_id != NULL) {
            gch_w_kv(o, "child_id", d->child_id);
        }
        if (d->valid_from != INT32_MIN) {
            gch_w_day(o, "valid_from", d->valid_from);
        }
        if (d->valid_to != INT32_MAX) {
            gch_w_day(o, "valid_to", d->valid_to);
        }
        yajl_gen_map_close(o->g);
    }

    yajl_gen_array_close(o->g);
    gch_w_ki(o, "unpaid_invoices", f->unpaid_invoices);
    yajl_gen_map_close(o->g);
}


/*
 * Writes t as a catalogue: "catalogue": true, every session explicit, no
 * calendar, no password.  gch_town_parse() of the result gives back t
 * (passwords aside).  *out (NUL-terminated, *len bytes) is allocated with
 * a; the caller frees it with a->free.  0 or GCH_ENOMEM (nothing left).
 */
int
gch_town_write(const gch_town_t *t, char **out, size_t *len,
    const gch_alloc_t *a)
{
    int          rc;
    size_t       i;
    gch_jout_t  *o;
    gch_unit_t  *u;

    *out = NULL;

    o = a->alloc(a->ctx, sizeof(gch_jout_t));
    if (o == NULL) {
        return GCH_ENOMEM;
    }

    rc = gch_jout_init(o, a);
    if (rc != GCH_OK) {
        a->free(a->ctx, o);
        return rc;
    }

    yajl_gen_map_open(o->g);
    gch_w_kb(o, "catalogue", 1);

    gch_jout_cstr(o, "town");
    yajl_gen_map_open(o->g);
    if (strcmp(t->id, GCH_TOWN_DEFAULT) != 0) {
        gch_w_kv(o, "id", t->id);
    }
    gch_w_kv(o, "name", t->name);
    gch_w_kv(o, "timezone", t->timezone);
    yajl_gen_map_close(o->g);

    gch_jout_cstr(o, "units");
    yajl_gen_array_open(o->g);

    for (i = 0; i < t->nunits; i++) {
        u = &t->units[i];

        yajl_gen_map_open(o->g);
        gch_w_kv(o, "code", u->code);
        gch_w_kv(o, "label", u->label);
        gch_w_hhmm(o, "starts", u->starts_min);
        gch_w_hhmm(o, "ends", u->ends_min);
        yajl_gen_map_close(o->g);
    }

    yajl_gen_array_close(o->g);

    gch_jout_cstr(o, "activities");
    yajl_gen_array_open(o->g);

    for (i = 0; i < t->nactivities; i++) {
        gch_w_activity(o, t, i);
    }

    yajl_gen_array_close(o->g);

    gch_jout_cstr(o, "families");
    yajl_gen_array_open(o->g);

    for (i = 0; i < t->nfamilies; i++) {
        gch_w_family(o, &t->families[i]);
    }

    yajl_gen_array_close(o->g);
    yajl_gen_map_close(o->g);

    rc = gch_jout_detach(o, out, len);
    a->free(a->ctx, o);

    return rc;
}
