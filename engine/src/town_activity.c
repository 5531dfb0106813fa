/*
 * town_activity.c -- the activities of a town file or catalogue: their
 * fields, deadlines, price bands, document types, unit requirements,
 * explicit sessions and calendars expanded into sessions (town.h).
 */

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "town.h"


/* activities */

static const gch_jfield_t  gch_activity_fields[] = {
    { "id", GCH_J_STRING, 1 },
    { "name", GCH_J_STRING, 1 },
    { "site", GCH_J_STRING | GCH_J_NULL, 0 },
    { "age_min", GCH_J_NUMBER, 0 },
    { "age_max", GCH_J_NUMBER, 0 },
    { "booking_opens_at", GCH_J_STRING | GCH_J_NULL, 0 },
    { "deadline", GCH_J_OBJECT, 0 },
    { "online_share_percent", GCH_J_NUMBER, 0 },
    { "week_required", GCH_J_BOOL, 0 },
    { "prices", GCH_J_ARRAY, 1 },
    { "sessions", GCH_J_ARRAY, 0 },
    { "calendar", GCH_J_OBJECT | GCH_J_ARRAY, 0 },
    { "cancel_deadline", GCH_J_OBJECT, 0 },
    { "required_documents", GCH_J_ARRAY, 0 },
    { "blocks_unpaid_invoices", GCH_J_BOOL, 0 },
    { "non_resident_prices", GCH_J_ARRAY, 0 },
    { "unit_requires", GCH_J_ARRAY, 0 },
    { "release_onsite_at", GCH_J_STRING | GCH_J_NULL, 0 },
    { "opening", GCH_J_OBJECT, 0 },
    { "waitlist", GCH_J_OBJECT, 0 }
};

enum {
    A_ID, A_NAME, A_SITE, A_AGE_MIN, A_AGE_MAX, A_OPENS, A_DEADLINE,
    A_SHARE, A_WEEK, A_PRICES, A_SESSIONS, A_CALENDAR, A_CANCEL, A_DOCS,
    A_UNPAID, A_NR_PRICES, A_REQUIRES, A_RELEASE, A_OPENING, A_WAITLIST,
    A_N
};


/* "waitlist": {"mode": "book" | "offer", "hold_hours": 1..720} */
static const gch_jfield_t  gch_waitlist_fields[] = {
    { "mode", GCH_J_STRING, 1 },
    { "hold_hours", GCH_J_NUMBER, 0 }
};


static const gch_jfield_t  gch_deadline_fields[] = {
    { "working_days", GCH_J_NUMBER, 0 },
    { "hours", GCH_J_NUMBER, 0 },
    { "day_before_at", GCH_J_STRING, 0 }
};


static const gch_jfield_t  gch_opening_fields[] = {
    { "mode", GCH_J_STRING, 1 },
    { "entries_from", GCH_J_STRING, 0 },
    { "seed", GCH_J_STRING, 0 },
    { "drawn", GCH_J_BOOL, 0 }
};

enum { O_MODE, O_FROM, O_SEED, O_DRAWN, O_N };


static const gch_jfield_t  gch_price_fields[] = {
    { "qf_max", GCH_J_NUMBER | GCH_J_NULL, 1 },
    { "cents", GCH_J_NUMBER, 1 }
};


static const gch_jfield_t  gch_session_fields[] = {
    { "id", GCH_J_STRING, 1 },
    { "date", GCH_J_STRING, 1 },
    { "unit", GCH_J_STRING, 1 },
    { "label", GCH_J_STRING, 0 },
    { "places", GCH_J_NUMBER, 1 }
};

enum { S_ID, S_DATE, S_UNIT, S_LABEL, S_PLACES, S_N };

/* a catalogue's ("catalogue": true): "date" and "unit" may be left out
 * when the id gives them back (gch_town_id_cell) */
static const gch_jfield_t  gch_cat_session_fields[] = {
    { "id", GCH_J_STRING, 1 },
    { "date", GCH_J_STRING, 0 },
    { "unit", GCH_J_STRING, 0 },
    { "label", GCH_J_STRING, 0 },
    { "places", GCH_J_NUMBER, 1 }
};


static const gch_jfield_t  gch_calendar_fields[] = {
    { "from", GCH_J_STRING, 1 },
    { "to", GCH_J_STRING, 1 },
    { "weekdays", GCH_J_ARRAY, 1 },
    { "units", GCH_J_ARRAY, 1 },
    { "places", GCH_J_NUMBER, 1 }
};

enum { C_FROM, C_TO, C_WEEKDAYS, C_UNITS, C_PLACES, C_N };


static int
gch_town_deadline(gch_tp_t *tp, const char *key, const gch_jnode_t *node,
    gch_deadline_t *dl)
{
    int                 rc, n;
    size_t              mark;
    const gch_jnode_t  *v[3];

    dl->kind = GCH_DEADLINE_NONE;
    dl->n = 0;

    if (node == NULL) {
        return GCH_OK;
    }

    mark = gch_jcx_key(&tp->cx, key, strlen(key));

    rc = gch_json_fields(&tp->cx, node, gch_deadline_fields, 3, v);
    if (rc != GCH_OK) {
        goto done;
    }

    n = (v[0] != NULL) + (v[1] != NULL) + (v[2] != NULL);
    if (n > 1) {
        rc = gch_jcx_fail(&tp->cx, NULL, "un seul de « working_days », "
                          "« hours », « day_before_at »");
        goto done;
    }

    if (v[0]) {
        dl->kind = GCH_DEADLINE_WORKING_DAYS;
        rc = gch_tp_int(tp, "working_days", v[0], 0, 60, 0, &dl->n);

    } else if (v[1]) {
        dl->kind = GCH_DEADLINE_HOURS;
        rc = gch_tp_int(tp, "hours", v[1], 0, 24 * 366, 0, &dl->n);

    } else if (v[2]) {
        dl->kind = GCH_DEADLINE_DAY_BEFORE_AT;
        rc = gch_tp_hhmm(tp, "day_before_at", v[2], 0, &dl->n);
    }

done:

    gch_jcx_pop(&tp->cx, mark);
    return rc;
}


/*
 * "opening": {"mode": "first_come"} or {"mode": "draw", "entries_from":
 * instant, "seed": hex (set by load-town), "drawn": bool (the worker's)}.
 * A draw needs booking_opens_at after entries_from.
 */
static int
gch_town_opening(gch_tp_t *tp, gch_activity_t *act, const gch_jnode_t *node)
{
    int                 rc;
    size_t              i, mark;
    const gch_jnode_t  *v[O_N];

    act->draw = 0;
    act->entries_from = 0;
    act->draw_seed = NULL;
    act->drawn = 0;

    if (node == NULL) {
        return GCH_OK;
    }

    mark = gch_jcx_key(&tp->cx, "opening", 7);

    rc = gch_json_fields(&tp->cx, node, gch_opening_fields, O_N, v);
    if (rc != GCH_OK) {
        goto done;
    }

    if (v[O_MODE]->len == 10 && memcmp(v[O_MODE]->str, "first_come", 10) == 0)
    {
        if (v[O_FROM] || v[O_SEED] || v[O_DRAWN]) {
            rc = gch_jcx_fail(&tp->cx, NULL, "« entries_from », « seed » et "
                              "« drawn » sont ceux d'un tirage au sort");
        }
        goto done;
    }

    if (v[O_MODE]->len != 4 || memcmp(v[O_MODE]->str, "draw", 4) != 0) {
        rc = gch_jcx_fail(&tp->cx, "mode", "« draw » ou « first_come »");
        goto done;
    }

    act->draw = 1;

    if (v[O_FROM] == NULL
        || gch_instant_parse(&act->entries_from, v[O_FROM]->str,
                             v[O_FROM]->len) != GCH_OK)
    {
        rc = gch_jcx_fail(&tp->cx, "entries_from", "instant invalide "
                          "(RFC 3339, ex. 2021-06-07T12:00:00+02:00)");
        goto done;
    }

    if (act->opens_at == 0 || act->entries_from >= act->opens_at) {
        rc = gch_jcx_fail(&tp->cx, "entries_from", "un tirage au sort a "
                          "besoin de « booking_opens_at » après "
                          "« entries_from »");
        goto done;
    }

    if (v[O_SEED]) {
        if (v[O_SEED]->len < 32 || v[O_SEED]->len > 128) {
            rc = gch_jcx_fail(&tp->cx, "seed", "de 32 à 128 chiffres "
                              "hexadécimaux");
            goto done;
        }

        for (i = 0; i < v[O_SEED]->len; i++) {
            if (!((v[O_SEED]->str[i] >= '0' && v[O_SEED]->str[i] <= '9')
                  || (v[O_SEED]->str[i] >= 'a' && v[O_SEED]->str[i] <= 'f')))
            {
                rc = gch_jcx_fail(&tp->cx, "seed", "chiffres hexadécimaux "
                                  "en minuscules");
                goto done;
            }
        }

        act->draw_seed = gch_arena_strndup(tp->ar, v[O_SEED]->str,
                                           v[O_SEED]->len);
        if (act->draw_seed == NULL) {
            rc = gch_tp_nomem(tp);
            goto done;
        }
    }

    act->drawn = v[O_DRAWN] ? (int) v[O_DRAWN]->len : 0;

done:

    gch_jcx_pop(&tp->cx, mark);
    return rc;
}


static int
gch_price_cmp(const void *x, const void *y)
{
    const gch_price_t  *a = x, *b = y;
    long                qa, qb;

    qa = a->qf_max < 0 ? (long) INT32_MAX + 1 : a->qf_max;
    qb = b->qf_max < 0 ? (long) INT32_MAX + 1 : b->qf_max;

    return (qa > qb) - (qa < qb);
}


static int
gch_town_prices(gch_tp_t *tp, const char *key, const gch_jnode_t *arr,
    gch_price_t **out, size_t *nout)
{
    int                 rc;
    size_t              i, j, mark, mark2;
    gch_price_t        *p;
    const gch_jnode_t  *e, *v[2];

    rc = gch_json_array(&tp->cx, key, arr, 1, GCH_MAX_PRICES);
    if (rc != GCH_OK) {
        return rc;
    }

    *nout = arr->len;
    *out = gch_arena_alloc(tp->ar, arr->len * sizeof(gch_price_t));
    if (*out == NULL) {
        return gch_tp_nomem(tp);
    }

    mark = gch_jcx_key(&tp->cx, key, strlen(key));

    for (i = 0, e = arr->child; e; i++, e = e->next) {
        p = &(*out)[i];
        mark2 = gch_jcx_index(&tp->cx, i);

        rc = gch_json_fields(&tp->cx, e, gch_price_fields, 2, v);
        if (rc == GCH_OK) {
            if (v[0]->type == GCH_J_NULL) {
                p->qf_max = -1;

            } else {
                rc = gch_tp_int(tp, "qf_max", v[0], 0, 1000000, 0,
                                &p->qf_max);
            }
        }

        if (rc == GCH_OK) {
            rc = gch_tp_int(tp, "cents", v[1], 0, 10000000, 0, &p->cents);
        }

        for (j = 0; rc == GCH_OK && j < i; j++) {
            if ((*out)[j].qf_max == p->qf_max) {
                rc = gch_jcx_fail(&tp->cx, "qf_max", "tranche en double");
            }
        }

        if (rc != GCH_OK) {
            return rc;
        }

        gch_jcx_pop(&tp->cx, mark2);
    }

    gch_jcx_pop(&tp->cx, mark);

    qsort(*out, *nout, sizeof(gch_price_t), gch_price_cmp);

    return GCH_OK;
}


static int
gch_cell_cmp(const void *x, const void *y)
{
    const gch_cell_t  *a = x, *b = y;

    if (a->date != b->date) {
        return a->date < b->date ? -1 : 1;
    }

    if (a->unit != b->unit) {
        return a->unit - b->unit;
    }

    /* explicit sessions (origin >= 0) first, in file order */

    if ((a->origin >= 0) != (b->origin >= 0)) {
        return a->origin >= 0 ? -1 : 1;
    }

    return a->origin >= 0 ? a->origin - b->origin : b->origin - a->origin;
}


/* Points the context at where a cell came from (for an error message). */
static size_t
gch_cell_path(gch_tp_t *tp, size_t ai, const gch_cell_t *c)
{
    size_t  mark;

    mark = gch_jcx_key(&tp->cx, "activities", 10);
    gch_jcx_index(&tp->cx, ai);

    if (c->origin >= 0) {
        gch_jcx_key(&tp->cx, "sessions", 8);
        gch_jcx_index(&tp->cx, (size_t) c->origin);

    } else {
        gch_jcx_key(&tp->cx, "calendar", 8);
        if (tp->cal_array[ai]) {
            gch_jcx_index(&tp->cx, (size_t) (-c->origin - 1));
        }
    }

    return mark;
}


/* See town.h. */
int
gch_town_id_cell(const gch_town_t *t, const char *id, size_t len,
    gch_day_t *date, int *unit)
{
    int          u, found;
    char         ymd[10];
    size_t       cl;
    gch_day_t    d;
    const char  *p;

    found = 0;

    for (u = 0; u < (int) t->nunits; u++) {
        cl = strlen(t->units[u].code);
        if (len < cl + 11
            || memcmp(id + len - cl, t->units[u].code, cl) != 0
            || id[len - cl - 1] != '-' || id[len - cl - 10] != '-')
        {
            continue;
        }

        p = id + len - cl - 9;                          /* YYYYMMDD */
        memcpy(ymd, p, 4);
        ymd[4] = '-';
        memcpy(ymd + 5, p + 4, 2);
        ymd[7] = '-';
        memcpy(ymd + 8, p + 6, 2);

        if (gch_day_parse(&d, ymd, 10) != GCH_OK) {
            continue;
        }

        if (found++) {
            return 0;                   /* two units would fit: neither */
        }

        *date = d;
        *unit = u;
    }

    return found;
}


/* Explicit sessions of one activity into cells[0..] (path: the activity) */
static int
gch_town_sessions(gch_tp_t *tp, const gch_jnode_t *arr, gch_cell_t *cells)
{
    int                 rc;
    size_t              i, mark, mark2;
    gch_cell_t         *c;
    const gch_jnode_t  *e, *v[S_N];

    mark = gch_jcx_key(&tp->cx, "sessions", 8);

    for (i = 0, e = arr->child; e; i++, e = e->next) {
        c = &cells[i];
        c->origin = (int) i;
        mark2 = gch_jcx_index(&tp->cx, i);

        rc = gch_json_fields(&tp->cx, e, tp->p->catalogue
                                         ? gch_cat_session_fields
                                         : gch_session_fields, S_N, v);
        if (rc == GCH_OK) {
            rc = gch_tp_id(tp, "id", v[S_ID], &c->id);
        }

        if (rc == GCH_OK && v[S_DATE] == NULL && v[S_UNIT] == NULL) {
            /* a catalogue's session whose id names its date and unit */
            if (!gch_town_id_cell(tp->t, c->id, strlen(c->id), &c->date,
                                  &c->unit))
            {
                rc = gch_jcx_fail(&tp->cx, "date", "champ manquant (l'id "
                                  "ne donne ni la date ni l'unité)");
            }

        } else {
            if (rc == GCH_OK) {
                rc = gch_tp_date(tp, "date", v[S_DATE], &c->date);
            }

            if (rc == GCH_OK) {
                rc = gch_tp_unit(tp, "unit", v[S_UNIT], &c->unit);
            }
        }

        if (rc == GCH_OK) {
            if (v[S_LABEL]) {
                rc = gch_tp_str(tp, "label", v[S_LABEL], 1, GCH_TEXT_MAX,
                                &c->label);

            } else {
                c->label = tp->t->units[c->unit].label;
            }
        }

        if (rc == GCH_OK) {
            rc = gch_tp_int(tp, "places", v[S_PLACES], 0, GCH_MAX_PLACES, 0,
                            &c->places);
        }

        if (rc != GCH_OK) {
            return rc;
        }

        gch_jcx_pop(&tp->cx, mark2);
    }

    gch_jcx_pop(&tp->cx, mark);
    return GCH_OK;
}


typedef struct {
    gch_day_t   from;
    gch_day_t   to;
    unsigned    weekdays;        /* bit w: weekday w (1..7) open */
    uint32_t    units;           /* bit u: unit u */
    int         places;
} gch_cal_t;


static int
gch_town_calendar(gch_tp_t *tp, const gch_jnode_t *node, gch_cal_t *cal,
    size_t *ncells)
{
    int                 rc, w, u;
    size_t              i, n;
    gch_day_t           d;
    long long           ll;
    const gch_jnode_t  *e, *v[C_N];

    *ncells = 0;

    rc = gch_json_fields(&tp->cx, node, gch_calendar_fields, C_N, v);
    if (rc != GCH_OK) {
        return rc;
    }

    if (gch_tp_date(tp, "from", v[C_FROM], &cal->from) != GCH_OK
        || gch_tp_date(tp, "to", v[C_TO], &cal->to) != GCH_OK)
    {
        return GCH_EINVALID;
    }

    if (cal->to < cal->from || cal->to - cal->from >= GCH_MAX_CAL_DAYS) {
        return gch_jcx_fail(&tp->cx, "to", "période invalide (de 1 à %d "
                            "jours après « from »)", GCH_MAX_CAL_DAYS);
    }

    rc = gch_json_array(&tp->cx, "weekdays", v[C_WEEKDAYS], 1, 7);
    if (rc != GCH_OK) {
        return rc;
    }

    cal->weekdays = 0;

    for (i = 0, e = v[C_WEEKDAYS]->child; e; i++, e = e->next) {
        size_t  mark = gch_jcx_key(&tp->cx, "weekdays", 8);

        gch_jcx_index(&tp->cx, i);
        rc = gch_json_int(&tp->cx, NULL, e, 1, 7, &ll);
        if (rc == GCH_OK && (cal->weekdays & (1u << ll))) {
            rc = gch_jcx_fail(&tp->cx, NULL, "jour en double");
        }

        gch_jcx_pop(&tp->cx, mark);
        if (rc != GCH_OK) {
            return rc;
        }

        cal->weekdays |= 1u << ll;
    }

    rc = gch_json_array(&tp->cx, "units", v[C_UNITS], 1, GCH_MAX_UNITS);
    if (rc != GCH_OK) {
        return rc;
    }

    cal->units = 0;

    for (i = 0, e = v[C_UNITS]->child; e; i++, e = e->next) {
        size_t  mark = gch_jcx_key(&tp->cx, "units", 5);

        gch_jcx_index(&tp->cx, i);
        rc = gch_tp_unit(tp, NULL, e, &u);
        if (rc == GCH_OK && (cal->units & ((uint32_t) 1 << u))) {
            rc = gch_jcx_fail(&tp->cx, NULL, "unité en double");
        }

        gch_jcx_pop(&tp->cx, mark);
        if (rc != GCH_OK) {
            return rc;
        }

        cal->units |= (uint32_t) 1 << u;
    }

    rc = gch_tp_int(tp, "places", v[C_PLACES], 0, GCH_MAX_PLACES, 0,
                    &cal->places);
    if (rc != GCH_OK) {
        return rc;
    }

    n = 0;

    for (d = cal->from; d <= cal->to; d++) {
        w = gch_day_weekday(d);
        if ((cal->weekdays & (1u << w)) && !gch_day_is_holiday(d)) {
            n += (size_t) __builtin_popcount(cal->units);
        }
    }

    *ncells = n;
    return GCH_OK;
}


/* Generates the cells of the calendars cals[0..ncals) after cells[*n]. */
static void
gch_town_calendars(gch_tp_t *tp, gch_cell_t *cells, size_t *n,
    const gch_cal_t *cals, size_t ncals)
{
    int          u;
    size_t       k;
    gch_day_t    d;
    gch_cell_t  *c;

    for (k = 0; k < ncals; k++) {
        for (d = cals[k].from; d <= cals[k].to; d++) {
            if (!(cals[k].weekdays & (1u << gch_day_weekday(d)))
                || gch_day_is_holiday(d))
            {
                continue;
            }

            for (u = 0; u < (int) tp->t->nunits; u++) {
                if (!(cals[k].units & ((uint32_t) 1 << u))) {
                    continue;
                }

                c = &cells[(*n)++];
                c->date = d;
                c->unit = u;
                c->origin = -(int) k - 1;
                c->places = cals[k].places;
                c->id = NULL;
                c->label = tp->t->units[u].label;
            }
        }
    }
}


static const gch_jfield_t  gch_requires_fields[] = {
    { "unit", GCH_J_STRING, 1 },
    { "with_any", GCH_J_ARRAY, 1 }
};


/*
 * "unit_requires": [{"unit": "REPAS", "with_any": ["MATIN", "APM"]}]: a
 * REPAS cell needs the child to hold MATIN or APM of the same activity
 * that day (booked before, or in the same request).
 */
static int
gch_town_unit_requires(gch_tp_t *tp, gch_activity_t *act,
    const gch_jnode_t *arr)
{
    int                 rc, u, w;
    size_t              i, k, mark, mark2, mark3;
    const gch_jnode_t  *e, *x, *v[2];

    act->unit_requires = NULL;

    if (arr == NULL) {
        return GCH_OK;
    }

    rc = gch_json_array(&tp->cx, "unit_requires", arr, 0, GCH_MAX_UNITS);
    if (rc != GCH_OK) {
        return rc;
    }

    act->unit_requires = gch_arena_calloc(tp->ar,
                                          (tp->t->nunits + 1)
                                          * sizeof(uint32_t));
    if (act->unit_requires == NULL) {
        return gch_tp_nomem(tp);
    }

    mark = gch_jcx_key(&tp->cx, "unit_requires", 13);

    for (i = 0, e = arr->child; e; i++, e = e->next) {
        mark2 = gch_jcx_index(&tp->cx, i);

        rc = gch_json_fields(&tp->cx, e, gch_requires_fields, 2, v);
        if (rc == GCH_OK) {
            rc = gch_tp_unit(tp, "unit", v[0], &u);
        }

        if (rc == GCH_OK) {
            rc = gch_json_array(&tp->cx, "with_any", v[1], 1,
                                GCH_MAX_UNITS);
        }

        if (rc == GCH_OK && act->unit_requires[u]) {
            rc = gch_jcx_fail(&tp->cx, "unit", "unité en double");
        }

        if (rc != GCH_OK) {
            return rc;
        }

        mark3 = gch_jcx_key(&tp->cx, "with_any", 8);

        for (k = 0, x = v[1]->child; x; k++, x = x->next) {
            size_t  mark4 = gch_jcx_index(&tp->cx, k);

            rc = gch_tp_unit(tp, NULL, x, &w);
            if (rc == GCH_OK && w == u) {
                rc = gch_jcx_fail(&tp->cx, NULL, "une unité ne peut "
                                  "dépendre d'elle-même");
            }

            if (rc != GCH_OK) {
                return rc;
            }

            act->unit_requires[u] |= 1u << w;
            gch_jcx_pop(&tp->cx, mark4);
        }

        gch_jcx_pop(&tp->cx, mark3);
        gch_jcx_pop(&tp->cx, mark2);
    }

    gch_jcx_pop(&tp->cx, mark);

    return GCH_OK;
}


/* "required_documents": ["responsabilite_civile", "vaccinations"] */
static int
gch_town_doc_types(gch_tp_t *tp, gch_activity_t *act, const gch_jnode_t *arr)
{
    int                 rc;
    size_t              i, j, mark, mark2;
    const gch_jnode_t  *e;

    act->required_documents = NULL;
    act->nrequired_documents = 0;

    if (arr == NULL) {
        return GCH_OK;
    }

    rc = gch_json_array(&tp->cx, "required_documents", arr, 0, 16);
    if (rc != GCH_OK) {
        return rc;
    }

    act->required_documents = gch_arena_alloc(tp->ar,
                                  (arr->len + 1) * sizeof(const char *));
    if (act->required_documents == NULL) {
        return gch_tp_nomem(tp);
    }

    mark = gch_jcx_key(&tp->cx, "required_documents", 18);

    for (i = 0, e = arr->child; e; i++, e = e->next) {
        mark2 = gch_jcx_index(&tp->cx, i);

        rc = gch_tp_id(tp, NULL, e, &act->required_documents[i]);
        for (j = 0; rc == GCH_OK && j < i; j++) {
            if (strcmp(act->required_documents[j],
                       act->required_documents[i]) == 0)
            {
                rc = gch_jcx_fail(&tp->cx, NULL, "document en double");
            }
        }

        if (rc != GCH_OK) {
            return rc;
        }

        gch_jcx_pop(&tp->cx, mark2);
    }

    gch_jcx_pop(&tp->cx, mark);
    act->nrequired_documents = arr->len;

    return GCH_OK;
}


static int gch_town_activity_fields(gch_tp_t *tp, gch_activity_t *act,
    const gch_jnode_t **v);
static int gch_town_waitlist(gch_tp_t *tp, const gch_jnode_t *node,
    int *hours);
static int gch_town_activity_cells(gch_tp_t *tp, size_t ai,
    const gch_jnode_t **v);
static int gch_town_cells_unique(gch_tp_t *tp, size_t ai, gch_cell_t *cells,
    size_t n);


static int
gch_town_one_activity(gch_tp_t *tp, size_t ai, const gch_jnode_t *node)
{
    int                 rc;
    const gch_jnode_t  *v[A_N];

    rc = gch_json_fields(&tp->cx, node, gch_activity_fields, A_N, v);
    if (rc != GCH_OK) {
        return rc;
    }

    rc = gch_town_activity_fields(tp, &tp->t->activities[ai], v);
    if (rc != GCH_OK) {
        return rc;
    }

    return gch_town_activity_cells(tp, ai, v);
}


/* The activity's own fields (its sessions aside). */
static int
gch_town_activity_fields(gch_tp_t *tp, gch_activity_t *act,
    const gch_jnode_t **v)
{
    int  rc;

    rc = gch_tp_id(tp, "id", v[A_ID], &act->id);
    if (rc == GCH_OK) {
        rc = gch_tp_str(tp, "name", v[A_NAME], 1, GCH_TEXT_MAX, &act->name);
    }

    act->site = NULL;
    if (rc == GCH_OK && v[A_SITE] && v[A_SITE]->type == GCH_J_STRING) {
        rc = gch_tp_str(tp, "site", v[A_SITE], 0, GCH_TEXT_MAX, &act->site);
    }

    if (rc == GCH_OK) {
        rc = gch_tp_int(tp, "age_min", v[A_AGE_MIN], 0, 120, 0,
                        &act->age_min);
    }

    if (rc == GCH_OK) {
        rc = gch_tp_int(tp, "age_max", v[A_AGE_MAX], 0, 120, 120,
                        &act->age_max);
    }

    if (rc == GCH_OK && act->age_max < act->age_min) {
        rc = gch_jcx_fail(&tp->cx, "age_max", "inférieur à « age_min »");
    }

    if (rc != GCH_OK) {
        return rc;
    }

    act->opens_at = 0;
    if (v[A_OPENS] && v[A_OPENS]->type == GCH_J_STRING
        && gch_instant_parse(&act->opens_at, v[A_OPENS]->str,
                             v[A_OPENS]->len) != GCH_OK)
    {
        return gch_jcx_fail(&tp->cx, "booking_opens_at", "instant invalide "
                            "(RFC 3339, ex. 2021-06-07T18:00:00+02:00)");
    }

    act->release_onsite_at = 0;
    if (v[A_RELEASE] && v[A_RELEASE]->type == GCH_J_STRING
        && gch_instant_parse(&act->release_onsite_at, v[A_RELEASE]->str,
                             v[A_RELEASE]->len) != GCH_OK)
    {
        return gch_jcx_fail(&tp->cx, "release_onsite_at", "instant invalide "
                            "(RFC 3339, ex. 2021-07-01T09:00:00+02:00)");
    }

    rc = gch_town_opening(tp, act, v[A_OPENING]);
    if (rc != GCH_OK) {
        return rc;
    }

    rc = gch_town_deadline(tp, "deadline", v[A_DEADLINE], &act->deadline);
    if (rc == GCH_OK) {
        act->cancel_deadline = act->deadline;
        if (v[A_CANCEL]) {
            rc = gch_town_deadline(tp, "cancel_deadline", v[A_CANCEL],
                                   &act->cancel_deadline);
        }
    }

    if (rc == GCH_OK) {
        rc = gch_town_doc_types(tp, act, v[A_DOCS]);
    }

    if (rc == GCH_OK) {
        rc = gch_town_unit_requires(tp, act, v[A_REQUIRES]);
    }

    act->blocks_unpaid = v[A_UNPAID] ? (int) v[A_UNPAID]->len : 0;

    if (rc == GCH_OK) {
        rc = gch_tp_int(tp, "online_share_percent", v[A_SHARE], 0, 100, 50,
                        &act->online_share_percent);
    }

    if (rc != GCH_OK) {
        return rc;
    }

    act->week_required = v[A_WEEK] ? (int) v[A_WEEK]->len : 0;

    rc = gch_town_waitlist(tp, v[A_WAITLIST], &act->offer_hours);
    if (rc != GCH_OK) {
        return rc;
    }

    rc = gch_town_prices(tp, "prices", v[A_PRICES], &act->prices,
                         &act->nprices);

    act->nr_prices = NULL;
    act->nnr_prices = 0;

    if (rc == GCH_OK && v[A_NR_PRICES]) {
        rc = gch_town_prices(tp, "non_resident_prices", v[A_NR_PRICES],
                             &act->nr_prices, &act->nnr_prices);
    }
    if (rc != GCH_OK) {
        return rc;
    }

    return GCH_OK;
}


/* The activity's waiting list: its promotions book ("mode": "book", the
 * default) or offer the place for hold_hours ("mode": "offer"). */
static int
gch_town_waitlist(gch_tp_t *tp, const gch_jnode_t *node, int *hours)
{
    int                 rc;
    size_t              mark;
    const gch_jnode_t  *v[2];

    *hours = 0;

    if (node == NULL) {
        return GCH_OK;
    }

    mark = gch_jcx_key(&tp->cx, "waitlist", 8);

    rc = gch_json_fields(&tp->cx, node, gch_waitlist_fields, 2, v);
    if (rc != GCH_OK) {
        goto done;
    }

    if (v[0]->len == 5 && memcmp(v[0]->str, "offer", 5) == 0) {
        rc = gch_tp_int(tp, "hold_hours", v[1], 1, 720, 24, hours);

    } else if (v[0]->len == 4 && memcmp(v[0]->str, "book", 4) == 0) {
        if (v[1] != NULL) {
            rc = gch_jcx_fail(&tp->cx, "hold_hours", "seulement avec "
                              "« mode »: « offer »");
        }

    } else {
        rc = gch_jcx_fail(&tp->cx, "mode", "« book » ou « offer »");
    }

done:

    gch_jcx_pop(&tp->cx, mark);
    return rc;
}


/* Its sessions: explicit ones, then calendar cells, sorted. */
static int
gch_town_activity_cells(gch_tp_t *tp, size_t ai, const gch_jnode_t **v)
{
    int                 rc;
    size_t              i, k, n, ncals, total, mark;
    gch_cal_t          *cals;
    gch_cell_t         *cells;
    const gch_jnode_t  *e;

    n = 0;
    if (v[A_SESSIONS]) {
        rc = gch_json_array(&tp->cx, "sessions", v[A_SESSIONS], 0, 100000);
        if (rc != GCH_OK) {
            return rc;
        }

        n = v[A_SESSIONS]->len;
    }

    ncals = 0;
    cals = NULL;
    total = n;

    if (v[A_CALENDAR]) {
        tp->cal_array[ai] = (v[A_CALENDAR]->type == GCH_J_ARRAY);
        ncals = tp->cal_array[ai] ? v[A_CALENDAR]->len : 1;

        if (ncals > 64) {
            return gch_jcx_fail(&tp->cx, "calendar", "plus de 64 périodes");
        }

        cals = gch_arena_alloc(tp->tmp, (ncals + 1) * sizeof(gch_cal_t));
        if (cals == NULL) {
            return gch_tp_nomem(tp);
        }

        mark = gch_jcx_key(&tp->cx, "calendar", 8);

        e = tp->cal_array[ai] ? v[A_CALENDAR]->child : v[A_CALENDAR];

        for (k = 0; k < ncals; k++, e = e->next) {
            size_t  mark2 = tp->cx.len;

            if (tp->cal_array[ai]) {
                gch_jcx_index(&tp->cx, k);
            }

            rc = gch_town_calendar(tp, e, &cals[k], &i);
            if (rc != GCH_OK) {
                return rc;
            }

            total += i;
            gch_jcx_pop(&tp->cx, mark2);
        }

        gch_jcx_pop(&tp->cx, mark);
    }

    cells = gch_arena_alloc(tp->tmp, (total + 1) * sizeof(gch_cell_t));
    if (cells == NULL) {
        return gch_tp_nomem(tp);
    }

    if (n) {
        rc = gch_town_sessions(tp, v[A_SESSIONS], cells);
        if (rc != GCH_OK) {
            return rc;
        }
    }

    gch_town_calendars(tp, cells, &n, cals, ncals);

    qsort(cells, n, sizeof(gch_cell_t), gch_cell_cmp);

    return gch_town_cells_unique(tp, ai, cells, n);
}


/*
 * Drops calendar cells replaced by explicit ones, refuses real clashes,
 * and keeps the activity's cells.
 */
static int
gch_town_cells_unique(gch_tp_t *tp, size_t ai, gch_cell_t *cells, size_t n)
{
    int          rc;
    size_t       i, pos;
    gch_cell_t  *c, *prev;

    prev = NULL;
    pos = 0;

    for (i = 0; i < n; i++) {
        c = &cells[i];

        if (prev && prev->date == c->date && prev->unit == c->unit) {
            if (prev->origin >= 0 && c->origin < 0) {
                continue;
            }

            /* the path is rebuilt from the root */
            size_t  save = tp->cx.len;
            char    path[sizeof(tp->cx.path)];

            memcpy(path, tp->cx.path, save + 1);
            gch_jcx_init(&tp->cx, tp->err);
            gch_cell_path(tp, ai, c);
            rc = gch_jcx_fail(&tp->cx, NULL, c->origin >= 0
                              ? "séance en double (même date et même unité)"
                              : "période qui en recouvre une autre");
            memcpy(tp->cx.path, path, save + 1);
            tp->cx.len = save;

            return rc;
        }

        cells[pos++] = *c;
        prev = &cells[pos - 1];
    }

    tp->cells[ai] = cells;
    tp->ncells[ai] = pos;

    return GCH_OK;
}


/* The arrays the activities fill, one entry per activity (and one more). */
static int
gch_town_activities_alloc(gch_tp_t *tp, const gch_jnode_t *arr)
{
    gch_town_t  *t = tp->t;

    t->nactivities = arr->len;
    t->activities = gch_arena_calloc(tp->ar,
                                     (arr->len + 1) * sizeof(gch_activity_t));
    tp->cells = gch_arena_calloc(tp->tmp, (arr->len + 1) * sizeof(void *));
    tp->ncells = gch_arena_calloc(tp->tmp, (arr->len + 1) * sizeof(size_t));
    tp->cal_array = gch_arena_calloc(tp->tmp, (arr->len + 1) * sizeof(int));
    tp->p->act_first = gch_arena_calloc(tp->ar,
                                        (arr->len + 1) * sizeof(size_t));
    tp->p->act_count = gch_arena_calloc(tp->ar,
                                        (arr->len + 1) * sizeof(size_t));

    if (t->activities == NULL || tp->cells == NULL || tp->ncells == NULL
        || tp->cal_array == NULL || tp->p->act_first == NULL
        || tp->p->act_count == NULL
        || gch_index_init(&tp->p->activities, tp->ar, arr->len,
                          t->activities, sizeof(gch_activity_t), 0)
           != GCH_OK)
    {
        return gch_tp_nomem(tp);
    }

    return GCH_OK;
}


/* A cell without an id: "<activity>-<YYYYMMDD>-<UNIT>". */
static int
gch_town_session_id(gch_tp_t *tp, const gch_activity_t *act, gch_cell_t *c)
{
    char        *id;
    char         day[11];
    size_t       len;
    gch_town_t  *t = tp->t;

    len = strlen(act->id);
    id = gch_arena_alloc(tp->ar, len + 1 + 8 + 1
                         + strlen(t->units[c->unit].code) + 1);
    if (id == NULL) {
        return gch_tp_nomem(tp);
    }

    gch_day_format(c->date, day);
    memcpy(id, act->id, len);
    id[len] = '-';
    memcpy(id + len + 1, day, 4);
    memcpy(id + len + 5, day + 5, 2);
    memcpy(id + len + 7, day + 8, 2);
    id[len + 9] = '-';
    strcpy(id + len + 10, t->units[c->unit].code);
    c->id = id;

    return GCH_OK;
}


/* Every activity's sessions, in order, with ids and quotas. */
static int
gch_town_session_table(gch_tp_t *tp, size_t total)
{
    int                    rc, share, starts, day_starts;
    long                   old;
    size_t                 i, j;
    int64_t                until;
    gch_day_t              day;
    gch_town_t            *t = tp->t;
    gch_session_t         *s;
    gch_cell_t            *c;
    const gch_deadline_t  *dl;

    t->sessions = gch_arena_alloc(tp->ar, (total + 1) * sizeof(gch_session_t));
    if (t->sessions == NULL
        || gch_index_init(&tp->p->sessions, tp->ar, total, t->sessions,
                          sizeof(gch_session_t), 0) != GCH_OK)
    {
        return gch_tp_nomem(tp);
    }

    t->nsessions = 0;
    until = 0;
    day = 0;
    day_starts = 0;

    for (i = 0; i < t->nactivities; i++) {
        tp->p->act_first[i] = t->nsessions;
        tp->p->act_count[i] = tp->ncells[i];
        share = t->activities[i].online_share_percent;

        for (j = 0; j < tp->ncells[i]; j++) {
            c = &tp->cells[i][j];
            s = &t->sessions[t->nsessions];

            if (c->id == NULL) {
                rc = gch_town_session_id(tp, &t->activities[i], c);
                if (rc != GCH_OK) {
                    return rc;
                }
            }

            s->id = c->id;
            s->activity = &t->activities[i];
            s->date = c->date;
            s->unit = c->unit;
            s->label = c->label;
            s->places = c->places;
            s->places_online = (int) ((long long) c->places * share / 100);
            /*
             * once here rather than for each booking (gch_precheck), and
             * once per day of the activity when the deadline does not
             * depend on the unit's start (working days, the day before)
             */
            dl = &t->activities[i].deadline;
            starts = t->units[c->unit].starts_min;

            if (j == 0 || c->date != day
                || ((dl->kind == GCH_DEADLINE_HOURS
                     || dl->kind == GCH_DEADLINE_NONE)
                    && starts != day_starts))
            {
                until = gch_deadline_instant(dl, c->date, starts);
                day = c->date;
                day_starts = starts;
            }

            s->book_until = until;

            old = gch_index_put(&tp->p->sessions, (uint32_t) t->nsessions);
            if (old >= 0) {
                gch_cell_path(tp, i, c);
                return gch_jcx_fail(&tp->cx, NULL, "identifiant de séance "
                                    "« %s » déjà utilisé", c->id);
            }

            t->nsessions++;
        }
    }

    return GCH_OK;
}


int
gch_town_activities(gch_tp_t *tp, const gch_jnode_t *arr)
{
    int                 rc;
    size_t              i, total, mark, mark2;
    const gch_jnode_t  *e;

    rc = gch_json_array(&tp->cx, "activities", arr, 0, 10000);
    if (rc != GCH_OK) {
        return rc;
    }

    rc = gch_town_activities_alloc(tp, arr);
    if (rc != GCH_OK) {
        return rc;
    }

    mark = gch_jcx_key(&tp->cx, "activities", 10);
    total = 0;

    for (i = 0, e = arr->child; e; i++, e = e->next) {
        mark2 = gch_jcx_index(&tp->cx, i);

        rc = gch_town_one_activity(tp, i, e);
        if (rc != GCH_OK) {
            return rc;
        }

        if (gch_index_put(&tp->p->activities, (uint32_t) i) >= 0) {
            return gch_jcx_fail(&tp->cx, "id", "activité en double");
        }

        total += tp->ncells[i];
        gch_jcx_pop(&tp->cx, mark2);
    }

    gch_jcx_pop(&tp->cx, mark);

    return gch_town_session_table(tp, total);
}
