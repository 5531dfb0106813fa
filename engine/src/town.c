/*
 * town.c -- the town file and the published catalogue (TOWN-FILE.md).
 *
 * gch_town_parse() reads either document into one gch_town_t held in an
 * arena: units with their elementary time intervals, activities with
 * sorted price bands, sessions (calendars expanded), families with their
 * children and enrolments, and open-addressing hash indexes by id.  It is
 * strict and all-or-nothing: the first error is reported with its JSON
 * path and nothing is kept.  gch_town_write() writes the catalogue that
 * the worker publishes to Redis and every nginx worker parses back.
 *
 * Decisions (documented in docs/town-file.md):
 *
 * - Calendar cells get the id "<activity_id>-<YYYYMMDD>-<UNIT>"; an
 *   explicit `sessions` entry with the same date and unit replaces the
 *   calendar cell (its own id, label and places win).  Two explicit
 *   entries, or two calendars, giving the same date and unit are an error.
 *   `calendar` is one object or an array of them.  Public holidays get no
 *   calendar cell; explicit sessions may fall on them.
 * - Ids (activities, sessions, families, children, unit codes) are 1..64
 *   bytes of A-Z a-z 0-9 "_" "-" "."; they go into Redis keys, claim
 *   values split on spaces, and URLs.  Session, activity, family and child
 *   ids are unique town-wide (children too: their claims are keyed by id);
 *   so are logins.
 * - A family has a website login iff it has both "login" and "password"
 *   (a login alone is dropped).  A catalogue ("catalogue": true, written
 *   by gch_town_write()) has no passwords and keeps its logins.
 * - Prices are sorted by qf_max, the null band last; qf_max values are
 *   distinct.  Sessions are ordered by activity (file order), date, unit.
 */

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <gch_json.h>

#include "arena.h"


#define GCH_ID_MAX          64
#define GCH_TEXT_MAX        200
#define GCH_MAX_UNITS       32
#define GCH_MAX_PRICES      32
#define GCH_MAX_CAL_DAYS    731
#define GCH_MAX_PLACES      100000
#define GCH_TOWN_DEPTH      8


typedef struct {
    uint64_t    *slots;          /* hash << 32 | (index + 1); 0: empty */
    uint32_t     mask;
    const char  *base;           /* entry i's id: *(base + i*stride + off) */
    size_t       stride;
    size_t       off;
} gch_index_t;


typedef struct {
    gch_arena_t  *ar;
    gch_index_t   sessions;
    gch_index_t   activities;
    gch_index_t   families;
    size_t       *act_first;     /* an activity's sessions: first, count */
    size_t       *act_count;
    int           catalogue;
} gch_town_priv_t;


/* a session being assembled for one activity */
typedef struct {
    gch_day_t     date;
    int           unit;
    int           origin;        /* >= 0: sessions[origin]; else calendar */
    int           places;
    const char   *id;
    const char   *label;
} gch_cell_t;


typedef struct {
    gch_jcx_t         cx;
    gch_town_t       *t;
    gch_town_priv_t  *p;
    gch_arena_t      *ar;        /* the town's */
    gch_arena_t      *tmp;       /* the JSON tree's: freed after parsing */
    gch_error_t      *err;
    gch_cell_t      **cells;     /* per activity */
    size_t           *ncells;
    int              *cal_array; /* per activity: calendar given as array */
} gch_tp_t;


/* indexes */

static uint32_t
gch_hash(const char *s, size_t n)
{
    size_t    i;
    uint32_t  h;

    h = 2166136261u;

    for (i = 0; i < n; i++) {
        h ^= (unsigned char) s[i];
        h *= 16777619u;
    }

    return h;
}


static const char *
gch_index_id(const gch_index_t *ix, uint32_t i)
{
    return *(const char * const *) (ix->base + i * ix->stride + ix->off);
}


static int
gch_index_init(gch_index_t *ix, gch_arena_t *ar, size_t n, const void *base,
    size_t stride, size_t off)
{
    size_t  cap;

    cap = 8;
    while (cap < 2 * n) {
        cap *= 2;
    }

    ix->slots = gch_arena_calloc(ar, cap * sizeof(uint64_t));
    if (ix->slots == NULL) {
        return GCH_ENOMEM;
    }

    ix->mask = (uint32_t) (cap - 1);
    ix->base = base;
    ix->stride = stride;
    ix->off = off;

    return GCH_OK;
}


static long
gch_index_get(const gch_index_t *ix, const char *id, size_t len)
{
    uint32_t     h, j, i;
    uint64_t     s;
    const char  *e;

    if (ix->slots == NULL) {
        return -1;
    }

    h = gch_hash(id, len);

    for (j = h & ix->mask; (s = ix->slots[j]) != 0; j = (j + 1) & ix->mask) {
        if ((uint32_t) (s >> 32) != h) {
            continue;
        }

        i = (uint32_t) s - 1;
        e = gch_index_id(ix, i);

        if (strncmp(e, id, len) == 0 && e[len] == '\0') {
            return (long) i;
        }
    }

    return -1;
}


/* Inserts entry i; returns -1, or the entry that already has that id. */
static long
gch_index_put(gch_index_t *ix, uint32_t i)
{
    long         old;
    size_t       len;
    uint32_t     h, j;
    const char  *id;

    id = gch_index_id(ix, i);
    len = strlen(id);

    old = gch_index_get(ix, id, len);
    if (old >= 0) {
        return old;
    }

    h = gch_hash(id, len);

    for (j = h & ix->mask; ix->slots[j] != 0; j = (j + 1) & ix->mask) {
        /* void */
    }

    ix->slots[j] = ((uint64_t) h << 32) | (i + 1);

    return -1;
}


/* field helpers: each reports its own error */

static int
gch_tp_nomem(gch_tp_t *tp)
{
    gch_error_set(tp->err, GCH_ENOMEM, NULL);
    return GCH_ENOMEM;
}


static int
gch_tp_str(gch_tp_t *tp, const char *key, const gch_jnode_t *v, size_t min,
    size_t max, const char **out)
{
    int  rc;

    rc = gch_json_str(&tp->cx, key, v, min, max);
    if (rc != GCH_OK) {
        return rc;
    }

    *out = gch_arena_strndup(tp->ar, v->str, v->len);
    if (*out == NULL) {
        return gch_tp_nomem(tp);
    }

    return GCH_OK;
}


static int
gch_id_ok(const char *s, size_t n)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')
              || (s[i] >= '0' && s[i] <= '9')
              || s[i] == '_' || s[i] == '-' || s[i] == '.'))
        {
            return 0;
        }
    }

    return 1;
}


static int
gch_tp_id(gch_tp_t *tp, const char *key, const gch_jnode_t *v,
    const char **out)
{
    int  rc;

    rc = gch_json_str(&tp->cx, key, v, 1, GCH_ID_MAX);
    if (rc != GCH_OK) {
        return rc;
    }

    if (!gch_id_ok(v->str, v->len)) {
        return gch_jcx_fail(&tp->cx, key, "identifiant invalide (lettres, "
                            "chiffres, « _ », « - », « . »)");
    }

    *out = gch_arena_strndup(tp->ar, v->str, v->len);
    if (*out == NULL) {
        return gch_tp_nomem(tp);
    }

    return GCH_OK;
}


static int
gch_tp_date(gch_tp_t *tp, const char *key, const gch_jnode_t *v,
    gch_day_t *out)
{
    if (v == NULL || v->type != GCH_J_STRING) {
        return gch_jcx_fail(&tp->cx, key, "chaîne attendue");
    }

    if (gch_day_parse(out, v->str, v->len) != GCH_OK) {
        return gch_jcx_fail(&tp->cx, key, "date invalide (AAAA-MM-JJ)");
    }

    return GCH_OK;
}


/* "HH:MM", 00:00 .. 23:59, or 24:00 when allow_24 */
static int
gch_tp_hhmm(gch_tp_t *tp, const char *key, const gch_jnode_t *v,
    int allow_24, int *out)
{
    int          h, m;
    const char  *s;

    if (v == NULL || v->type != GCH_J_STRING) {
        return gch_jcx_fail(&tp->cx, key, "chaîne attendue");
    }

    s = v->str;

    if (v->len != 5 || s[2] != ':'
        || s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9'
        || s[3] < '0' || s[3] > '9' || s[4] < '0' || s[4] > '9')
    {
        return gch_jcx_fail(&tp->cx, key, "heure invalide (HH:MM)");
    }

    h = (s[0] - '0') * 10 + (s[1] - '0');
    m = (s[3] - '0') * 10 + (s[4] - '0');

    if (m > 59 || h > 24 || (h == 24 && (m != 0 || !allow_24))) {
        return gch_jcx_fail(&tp->cx, key, "heure invalide (HH:MM)");
    }

    *out = h * 60 + m;
    return GCH_OK;
}


static int
gch_tp_int(gch_tp_t *tp, const char *key, const gch_jnode_t *v,
    long long min, long long max, long long dflt, int *out)
{
    int        rc;
    long long  n;

    if (v == NULL) {
        *out = (int) dflt;
        return GCH_OK;
    }

    rc = gch_json_int(&tp->cx, key, v, min, max, &n);
    if (rc == GCH_OK) {
        *out = (int) n;
    }

    return rc;
}


/* town and units */

static const gch_jfield_t  gch_top_fields[] = {
    { "town", GCH_J_OBJECT, 1 },
    { "units", GCH_J_ARRAY, 1 },
    { "activities", GCH_J_ARRAY, 1 },
    { "families", GCH_J_ARRAY, 0 },
    { "catalogue", GCH_J_BOOL, 0 }
};

enum { T_TOWN, T_UNITS, T_ACTIVITIES, T_FAMILIES, T_CATALOGUE, T_N };


static const gch_jfield_t  gch_townobj_fields[] = {
    { "name", GCH_J_STRING, 1 },
    { "timezone", GCH_J_STRING, 0 }
};


static const gch_jfield_t  gch_unit_fields[] = {
    { "code", GCH_J_STRING, 1 },
    { "label", GCH_J_STRING, 0 },
    { "starts", GCH_J_STRING, 1 },
    { "ends", GCH_J_STRING, 1 }
};

enum { U_CODE, U_LABEL, U_STARTS, U_ENDS, U_N };


static int
gch_town_obj(gch_tp_t *tp, const gch_jnode_t *node)
{
    int                 rc;
    size_t              mark;
    const gch_jnode_t  *v[2];

    mark = gch_jcx_key(&tp->cx, "town", 4);

    rc = gch_json_fields(&tp->cx, node, gch_townobj_fields, 2, v);
    if (rc == GCH_OK) {
        rc = gch_tp_str(tp, "name", v[0], 1, GCH_TEXT_MAX, &tp->t->name);
    }

    if (rc == GCH_OK && v[1]
        && (v[1]->len != 12 || memcmp(v[1]->str, "Europe/Paris", 12) != 0))
    {
        rc = gch_jcx_fail(&tp->cx, "timezone", "seul « Europe/Paris » est "
                          "pris en charge");
    }

    tp->t->timezone = "Europe/Paris";

    gch_jcx_pop(&tp->cx, mark);
    return rc;
}


static int
gch_int_cmp(const void *x, const void *y)
{
    int  a = *(const int *) x, b = *(const int *) y;

    return (a > b) - (a < b);
}


static int
gch_town_units(gch_tp_t *tp, const gch_jnode_t *arr)
{
    int                 rc, b[2 * GCH_MAX_UNITS];
    size_t              i, j, nb, nu, mark, mark2;
    gch_unit_t         *u;
    gch_town_t         *t = tp->t;
    const gch_jnode_t  *e, *v[U_N];

    rc = gch_json_array(&tp->cx, "units", arr, 1, GCH_MAX_UNITS);
    if (rc != GCH_OK) {
        return rc;
    }

    t->nunits = arr->len;
    t->units = gch_arena_calloc(tp->ar, t->nunits * sizeof(gch_unit_t));
    if (t->units == NULL) {
        return gch_tp_nomem(tp);
    }

    mark = gch_jcx_key(&tp->cx, "units", 5);

    for (i = 0, e = arr->child; e; i++, e = e->next) {
        u = &t->units[i];
        mark2 = gch_jcx_index(&tp->cx, i);

        rc = gch_json_fields(&tp->cx, e, gch_unit_fields, U_N, v);
        if (rc == GCH_OK) {
            rc = gch_tp_id(tp, "code", v[U_CODE], &u->code);
        }

        if (rc == GCH_OK) {
            if (v[U_LABEL]) {
                rc = gch_tp_str(tp, "label", v[U_LABEL], 1, GCH_TEXT_MAX,
                                &u->label);

            } else {
                u->label = u->code;
            }
        }

        if (rc == GCH_OK) {
            rc = gch_tp_hhmm(tp, "starts", v[U_STARTS], 0, &u->starts_min);
        }

        if (rc == GCH_OK) {
            rc = gch_tp_hhmm(tp, "ends", v[U_ENDS], 1, &u->ends_min);
        }

        if (rc == GCH_OK && u->ends_min <= u->starts_min) {
            rc = gch_jcx_fail(&tp->cx, "ends", "doit suivre « starts »");
        }

        for (j = 0; rc == GCH_OK && j < i; j++) {
            if (strcmp(t->units[j].code, u->code) == 0) {
                rc = gch_jcx_fail(&tp->cx, "code", "unité en double");
            }
        }

        if (rc != GCH_OK) {
            return rc;
        }

        gch_jcx_pop(&tp->cx, mark2);
    }

    /* elementary intervals: [b[k], b[k+1]) between distinct boundaries */

    nu = t->nunits;

    for (i = 0; i < nu; i++) {
        b[2 * i] = t->units[i].starts_min;
        b[2 * i + 1] = t->units[i].ends_min;
    }

    qsort(b, 2 * nu, sizeof(int), gch_int_cmp);

    for (i = 1, nb = 1; i < 2 * nu; i++) {
        if (b[i] != b[nb - 1]) {
            b[nb++] = b[i];
        }
    }

    if (nb - 1 > 32) {
        gch_jcx_pop(&tp->cx, mark);
        return gch_jcx_fail(&tp->cx, "units", "plus de 32 intervalles "
                            "horaires élémentaires");
    }

    for (i = 0; i < nu; i++) {
        u = &t->units[i];
        u->quanta = 0;

        for (j = 0; j + 1 < nb; j++) {
            if (u->starts_min < b[j + 1] && u->ends_min > b[j]) {
                u->quanta |= (uint32_t) 1 << j;
            }
        }
    }

    gch_jcx_pop(&tp->cx, mark);
    return GCH_OK;
}


static int
gch_unit_find(const gch_town_t *t, const char *code, size_t len)
{
    size_t  i;

    for (i = 0; i < t->nunits; i++) {
        if (strncmp(t->units[i].code, code, len) == 0
            && t->units[i].code[len] == '\0')
        {
            return (int) i;
        }
    }

    return -1;
}


static int
gch_tp_unit(gch_tp_t *tp, const char *key, const gch_jnode_t *v, int *out)
{
    if (v == NULL || v->type != GCH_J_STRING) {
        return gch_jcx_fail(&tp->cx, key, "chaîne attendue");
    }

    *out = gch_unit_find(tp->t, v->str, v->len);
    if (*out < 0) {
        return gch_jcx_fail(&tp->cx, key, "unité inconnue");
    }

    return GCH_OK;
}


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
    { "release_onsite_at", GCH_J_STRING | GCH_J_NULL, 0 }
};

enum {
    A_ID, A_NAME, A_SITE, A_AGE_MIN, A_AGE_MAX, A_OPENS, A_DEADLINE,
    A_SHARE, A_WEEK, A_PRICES, A_SESSIONS, A_CALENDAR, A_CANCEL, A_DOCS,
    A_UNPAID, A_NR_PRICES, A_REQUIRES, A_RELEASE, A_N
};


static const gch_jfield_t  gch_deadline_fields[] = {
    { "working_days", GCH_J_NUMBER, 0 },
    { "hours", GCH_J_NUMBER, 0 },
    { "day_before_at", GCH_J_STRING, 0 }
};


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

        rc = gch_json_fields(&tp->cx, e, gch_session_fields, S_N, v);
        if (rc == GCH_OK) {
            rc = gch_tp_id(tp, "id", v[S_ID], &c->id);
        }

        if (rc == GCH_OK) {
            rc = gch_tp_date(tp, "date", v[S_DATE], &c->date);
        }

        if (rc == GCH_OK) {
            rc = gch_tp_unit(tp, "unit", v[S_UNIT], &c->unit);
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


static int
gch_town_one_activity(gch_tp_t *tp, size_t ai, const gch_jnode_t *node)
{
    int                 rc;
    size_t              i, k, n, ncals, total, mark, pos;
    gch_cal_t          *cals;
    gch_cell_t         *cells, *c, *prev;
    gch_activity_t     *act;
    const gch_jnode_t  *v[A_N], *e;

    act = &tp->t->activities[ai];

    rc = gch_json_fields(&tp->cx, node, gch_activity_fields, A_N, v);
    if (rc != GCH_OK) {
        return rc;
    }

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

    /* sessions: explicit ones, then calendar cells */

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

    /* drop calendar cells replaced by explicit ones; refuse real clashes */

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


static int
gch_town_activities(gch_tp_t *tp, const gch_jnode_t *arr)
{
    int                 rc, share;
    long                old;
    size_t              i, j, total, mark, mark2, len;
    char               *id;
    gch_town_t         *t = tp->t;
    gch_session_t      *s;
    gch_cell_t         *c;
    const gch_jnode_t  *e;

    rc = gch_json_array(&tp->cx, "activities", arr, 0, 10000);
    if (rc != GCH_OK) {
        return rc;
    }

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

    /* every activity's sessions, in order, with ids and quotas */

    t->sessions = gch_arena_alloc(tp->ar, (total + 1) * sizeof(gch_session_t));
    if (t->sessions == NULL
        || gch_index_init(&tp->p->sessions, tp->ar, total, t->sessions,
                          sizeof(gch_session_t), 0) != GCH_OK)
    {
        return gch_tp_nomem(tp);
    }

    t->nsessions = 0;

    for (i = 0; i < t->nactivities; i++) {
        tp->p->act_first[i] = t->nsessions;
        tp->p->act_count[i] = tp->ncells[i];
        share = t->activities[i].online_share_percent;

        for (j = 0; j < tp->ncells[i]; j++) {
            c = &tp->cells[i][j];
            s = &t->sessions[t->nsessions];

            if (c->id == NULL) {
                /* "<activity>-<YYYYMMDD>-<UNIT>" */
                char  day[11];

                len = strlen(t->activities[i].id);
                id = gch_arena_alloc(tp->ar, len + 1 + 8 + 1
                                     + strlen(t->units[c->unit].code) + 1);
                if (id == NULL) {
                    return gch_tp_nomem(tp);
                }

                gch_day_format(c->date, day);
                memcpy(id, t->activities[i].id, len);
                id[len] = '-';
                memcpy(id + len + 1, day, 4);
                memcpy(id + len + 5, day + 5, 2);
                memcpy(id + len + 7, day + 8, 2);
                id[len + 9] = '-';
                strcpy(id + len + 10, t->units[c->unit].code);
                c->id = id;
            }

            s->id = c->id;
            s->activity = &t->activities[i];
            s->date = c->date;
            s->unit = c->unit;
            s->label = c->label;
            s->places = c->places;
            s->places_online = (int) ((long long) c->places * share / 100);

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


/* families */

static const gch_jfield_t  gch_family_fields[] = {
    { "id", GCH_J_STRING, 1 },
    { "login", GCH_J_STRING, 0 },
    { "password", GCH_J_STRING, 0 },
    { "qf", GCH_J_NUMBER | GCH_J_NULL, 0 },
    { "resident", GCH_J_BOOL, 0 },
    { "direct_debit", GCH_J_BOOL, 0 },
    { "children", GCH_J_ARRAY, 0 },
    { "enrolments", GCH_J_ARRAY, 0 },
    { "documents", GCH_J_ARRAY, 0 },
    { "unpaid_invoices", GCH_J_NUMBER, 0 }
};

enum {
    F_ID, F_LOGIN, F_PASSWORD, F_QF, F_RESIDENT, F_DEBIT, F_CHILDREN,
    F_ENROLMENTS, F_DOCUMENTS, F_UNPAID, F_N
};


static const gch_jfield_t  gch_document_fields[] = {
    { "type", GCH_J_STRING, 1 },
    { "valid_from", GCH_J_STRING | GCH_J_NULL, 0 },
    { "valid_to", GCH_J_STRING | GCH_J_NULL, 0 }
};


/* "documents": [{"type", "valid_from", "valid_to"}], dates inclusive. */
static int
gch_town_documents(gch_tp_t *tp, gch_family_t *f, const gch_jnode_t *arr)
{
    int                 rc;
    size_t              i, mark, mark2;
    gch_document_t     *d;
    const gch_jnode_t  *e, *v[3];

    f->documents = NULL;
    f->ndocuments = 0;

    if (arr == NULL) {
        return GCH_OK;
    }

    rc = gch_json_array(&tp->cx, "documents", arr, 0, 64);
    if (rc != GCH_OK) {
        return rc;
    }

    f->documents = gch_arena_alloc(tp->ar, (arr->len + 1) * sizeof(*d));
    if (f->documents == NULL) {
        return gch_tp_nomem(tp);
    }

    mark = gch_jcx_key(&tp->cx, "documents", 9);

    for (i = 0, e = arr->child; e; i++, e = e->next) {
        d = &f->documents[i];
        mark2 = gch_jcx_index(&tp->cx, i);

        rc = gch_json_fields(&tp->cx, e, gch_document_fields, 3, v);
        if (rc == GCH_OK) {
            rc = gch_tp_id(tp, "type", v[0], &d->type);
        }

        d->valid_from = INT32_MIN;
        d->valid_to = INT32_MAX;

        if (rc == GCH_OK && v[1] && v[1]->type == GCH_J_STRING) {
            rc = gch_tp_date(tp, "valid_from", v[1], &d->valid_from);
        }

        if (rc == GCH_OK && v[2] && v[2]->type == GCH_J_STRING) {
            rc = gch_tp_date(tp, "valid_to", v[2], &d->valid_to);
        }

        if (rc == GCH_OK && d->valid_to < d->valid_from) {
            rc = gch_jcx_fail(&tp->cx, "valid_to", "avant « valid_from »");
        }

        if (rc != GCH_OK) {
            return rc;
        }

        gch_jcx_pop(&tp->cx, mark2);
    }

    gch_jcx_pop(&tp->cx, mark);
    f->ndocuments = arr->len;

    return GCH_OK;
}


static const gch_jfield_t  gch_child_fields[] = {
    { "id", GCH_J_STRING, 1 },
    { "first_name", GCH_J_STRING, 1 },
    { "birth_date", GCH_J_STRING, 1 }
};


static const gch_jfield_t  gch_enrolment_fields[] = {
    { "child_id", GCH_J_STRING, 1 },
    { "activity_id", GCH_J_STRING, 1 },
    { "from", GCH_J_STRING, 1 },
    { "to", GCH_J_STRING, 1 },
    { "status", GCH_J_STRING, 1 }
};

enum { E_CHILD, E_ACTIVITY, E_FROM, E_TO, E_STATUS, E_N };


typedef struct {
    gch_index_t    children;      /* ids town-wide */
    const char   **child_ids;
    size_t         nchild_ids;
    gch_index_t    logins;
} gch_fam_ctx_t;


static int
gch_town_children(gch_tp_t *tp, gch_fam_ctx_t *fc, gch_family_t *f,
    const gch_jnode_t *arr)
{
    int                 rc;
    size_t              i, mark, mark2;
    gch_child_t        *c;
    const gch_jnode_t  *e, *v[3];

    f->nchildren = 0;
    f->children = NULL;

    if (arr == NULL) {
        return GCH_OK;
    }

    rc = gch_json_array(&tp->cx, "children", arr, 0, 64);
    if (rc != GCH_OK) {
        return rc;
    }

    f->children = gch_arena_alloc(tp->ar, (arr->len + 1) * sizeof(*c));
    if (f->children == NULL) {
        return gch_tp_nomem(tp);
    }

    mark = gch_jcx_key(&tp->cx, "children", 8);

    for (i = 0, e = arr->child; e; i++, e = e->next) {
        c = &f->children[i];
        mark2 = gch_jcx_index(&tp->cx, i);

        rc = gch_json_fields(&tp->cx, e, gch_child_fields, 3, v);
        if (rc == GCH_OK) {
            rc = gch_tp_id(tp, "id", v[0], &c->id);
        }

        if (rc == GCH_OK) {
            rc = gch_tp_str(tp, "first_name", v[1], 1, GCH_TEXT_MAX,
                            &c->first_name);
        }

        if (rc == GCH_OK) {
            rc = gch_tp_date(tp, "birth_date", v[2], &c->birth_date);
        }

        if (rc != GCH_OK) {
            return rc;
        }

        fc->child_ids[fc->nchild_ids] = c->id;
        if (gch_index_put(&fc->children, (uint32_t) fc->nchild_ids) >= 0) {
            return gch_jcx_fail(&tp->cx, "id", "enfant en double");
        }

        fc->nchild_ids++;
        f->nchildren++;
        gch_jcx_pop(&tp->cx, mark2);
    }

    gch_jcx_pop(&tp->cx, mark);
    return GCH_OK;
}


static int
gch_town_enrolments(gch_tp_t *tp, gch_family_t *f, const gch_jnode_t *arr)
{
    int                 rc;
    long                ai;
    size_t              i, mark, mark2;
    gch_enrolment_t    *en;
    const gch_child_t  *c;
    const gch_jnode_t  *e, *v[E_N], *st;

    f->nenrolments = 0;
    f->enrolments = NULL;

    if (arr == NULL) {
        return GCH_OK;
    }

    rc = gch_json_array(&tp->cx, "enrolments", arr, 0, 1000);
    if (rc != GCH_OK) {
        return rc;
    }

    f->enrolments = gch_arena_alloc(tp->ar, (arr->len + 1) * sizeof(*en));
    if (f->enrolments == NULL) {
        return gch_tp_nomem(tp);
    }

    mark = gch_jcx_key(&tp->cx, "enrolments", 10);

    for (i = 0, e = arr->child; e; i++, e = e->next) {
        en = &f->enrolments[i];
        mark2 = gch_jcx_index(&tp->cx, i);

        rc = gch_json_fields(&tp->cx, e, gch_enrolment_fields, E_N, v);
        if (rc != GCH_OK) {
            return rc;
        }

        rc = gch_json_str(&tp->cx, "child_id", v[E_CHILD], 1, GCH_ID_MAX);
        if (rc != GCH_OK) {
            return rc;
        }

        c = gch_family_child(f, v[E_CHILD]->str, v[E_CHILD]->len);
        if (c == NULL) {
            return gch_jcx_fail(&tp->cx, "child_id", "enfant inconnu dans "
                                "cette famille");
        }

        en->child_id = c->id;

        rc = gch_json_str(&tp->cx, "activity_id", v[E_ACTIVITY], 1,
                          GCH_ID_MAX);
        if (rc != GCH_OK) {
            return rc;
        }

        ai = gch_index_get(&tp->p->activities, v[E_ACTIVITY]->str,
                           v[E_ACTIVITY]->len);
        if (ai < 0) {
            return gch_jcx_fail(&tp->cx, "activity_id", "activité inconnue");
        }

        en->activity = &tp->t->activities[ai];

        if (gch_tp_date(tp, "from", v[E_FROM], &en->from) != GCH_OK
            || gch_tp_date(tp, "to", v[E_TO], &en->to) != GCH_OK)
        {
            return GCH_EINVALID;
        }

        if (en->to < en->from) {
            return gch_jcx_fail(&tp->cx, "to", "avant « from »");
        }

        st = v[E_STATUS];

        if (st->len == 8 && memcmp(st->str, "demandee", 8) == 0) {
            en->status = GCH_ENROL_DEMANDEE;

        } else if (st->len == 7 && memcmp(st->str, "validee", 7) == 0) {
            en->status = GCH_ENROL_VALIDEE;

        } else if (st->len == 7 && memcmp(st->str, "refusee", 7) == 0) {
            en->status = GCH_ENROL_REFUSEE;

        } else {
            return gch_jcx_fail(&tp->cx, "status", "« demandee », "
                                "« validee » ou « refusee » attendu");
        }

        f->nenrolments++;
        gch_jcx_pop(&tp->cx, mark2);
    }

    gch_jcx_pop(&tp->cx, mark);
    return GCH_OK;
}


static int
gch_town_families(gch_tp_t *tp, const gch_jnode_t *arr)
{
    int                 rc;
    size_t              i, nchildren, mark, mark2;
    gch_town_t         *t = tp->t;
    gch_family_t       *f;
    gch_fam_ctx_t       fc;
    const gch_jnode_t  *e, *v[F_N], *m;

    t->nfamilies = 0;

    if (arr == NULL) {
        t->families = NULL;
        return gch_index_init(&tp->p->families, tp->ar, 0, NULL, 0, 0)
               == GCH_OK ? GCH_OK : gch_tp_nomem(tp);
    }

    rc = gch_json_array(&tp->cx, "families", arr, 0, 1000000);
    if (rc != GCH_OK) {
        return rc;
    }

    /* children are counted first for the town-wide id index */

    nchildren = 0;
    for (e = arr->child; e; e = e->next) {
        if (e->type != GCH_J_OBJECT) {
            continue;
        }

        for (m = e->child; m; m = m->next) {
            if (m->type == GCH_J_ARRAY && m->klen == 8
                && memcmp(m->key, "children", 8) == 0)
            {
                nchildren += m->len;
            }
        }
    }

    t->families = gch_arena_calloc(tp->ar,
                                   (arr->len + 1) * sizeof(gch_family_t));
    fc.child_ids = gch_arena_alloc(tp->tmp,
                                   (nchildren + 1) * sizeof(const char *));
    fc.nchild_ids = 0;

    if (t->families == NULL || fc.child_ids == NULL
        || gch_index_init(&tp->p->families, tp->ar, arr->len, t->families,
                          sizeof(gch_family_t), 0) != GCH_OK
        || gch_index_init(&fc.logins, tp->tmp, arr->len, t->families,
                          sizeof(gch_family_t),
                          offsetof(gch_family_t, login)) != GCH_OK
        || gch_index_init(&fc.children, tp->tmp, nchildren, fc.child_ids,
                          sizeof(const char *), 0) != GCH_OK)
    {
        return gch_tp_nomem(tp);
    }

    mark = gch_jcx_key(&tp->cx, "families", 8);

    for (i = 0, e = arr->child; e; i++, e = e->next) {
        f = &t->families[i];
        mark2 = gch_jcx_index(&tp->cx, i);

        rc = gch_json_fields(&tp->cx, e, gch_family_fields, F_N, v);
        if (rc == GCH_OK) {
            rc = gch_tp_id(tp, "id", v[F_ID], &f->id);
        }

        if (rc != GCH_OK) {
            return rc;
        }

        if (gch_index_put(&tp->p->families, (uint32_t) i) >= 0) {
            return gch_jcx_fail(&tp->cx, "id", "famille en double");
        }

        f->login = NULL;
        f->password = NULL;

        if (v[F_PASSWORD] && tp->p->catalogue) {
            return gch_jcx_fail(&tp->cx, "password", "interdit dans un "
                                "catalogue");
        }

        if (v[F_PASSWORD]) {
            rc = gch_tp_str(tp, "password", v[F_PASSWORD], 1, 256,
                            &f->password);
            if (rc != GCH_OK) {
                return rc;
            }
        }

        if (v[F_LOGIN]) {
            rc = gch_tp_str(tp, "login", v[F_LOGIN], 1, 128, &f->login);
            if (rc != GCH_OK) {
                return rc;
            }

            if (f->password == NULL && !tp->p->catalogue) {
                f->login = NULL;    /* no password: no website login */
            }
        }

        if (f->login && gch_index_put(&fc.logins, (uint32_t) i) >= 0) {
            return gch_jcx_fail(&tp->cx, "login", "identifiant de connexion "
                                "déjà utilisé");
        }

        f->qf = -1;
        if (v[F_QF] && v[F_QF]->type == GCH_J_NUMBER) {
            rc = gch_tp_int(tp, "qf", v[F_QF], 0, 1000000, -1, &f->qf);
            if (rc != GCH_OK) {
                return rc;
            }
        }

        f->resident = v[F_RESIDENT] ? (int) v[F_RESIDENT]->len : 1;
        f->direct_debit = v[F_DEBIT] ? (int) v[F_DEBIT]->len : 0;

        f->unpaid_invoices = 0;
        rc = gch_tp_int(tp, "unpaid_invoices", v[F_UNPAID], 0, 100000, 0,
                        &f->unpaid_invoices);

        if (rc == GCH_OK) {
            rc = gch_town_children(tp, &fc, f, v[F_CHILDREN]);
        }

        if (rc == GCH_OK) {
            rc = gch_town_enrolments(tp, f, v[F_ENROLMENTS]);
        }

        if (rc == GCH_OK) {
            rc = gch_town_documents(tp, f, v[F_DOCUMENTS]);
        }

        if (rc != GCH_OK) {
            return rc;
        }

        t->nfamilies++;
        gch_jcx_pop(&tp->cx, mark2);
    }

    gch_jcx_pop(&tp->cx, mark);
    return GCH_OK;
}


/*
 * Parses a town file or a catalogue (see the top of this file and gch.h).
 * json need not outlive the result.  On success *out owns everything and
 * is freed with gch_town_free(); on error *out is NULL, nothing is left
 * allocated and err holds the code and the path of the first error.
 */
int
gch_town_parse(gch_town_t **out, const char *json, size_t len,
    const gch_alloc_t *a, gch_error_t *err)
{
    int                 rc;
    gch_tp_t            tp;
    gch_json_t          doc;
    gch_arena_t        *ar;
    const gch_jnode_t  *v[T_N];

    *out = NULL;

    rc = gch_json_parse(&doc, json, len, GCH_TOWN_DEPTH, a, err);
    if (rc != GCH_OK) {
        return rc;
    }

    ar = gch_arena_new(a, len < 16384 ? 16384 : len);
    if (ar == NULL) {
        gch_json_free(&doc);
        gch_error_set(err, GCH_ENOMEM, NULL);
        return GCH_ENOMEM;
    }

    memset(&tp, 0, sizeof(tp));
    gch_jcx_init(&tp.cx, err);
    tp.ar = ar;
    tp.tmp = doc.ar;
    tp.err = err;

    tp.t = gch_arena_calloc(ar, sizeof(gch_town_t));
    tp.p = gch_arena_calloc(ar, sizeof(gch_town_priv_t));
    if (tp.t == NULL || tp.p == NULL) {
        rc = gch_tp_nomem(&tp);
        goto failed;
    }

    tp.t->priv = tp.p;
    tp.p->ar = ar;

    rc = gch_json_fields(&tp.cx, doc.root, gch_top_fields, T_N, v);
    if (rc != GCH_OK) {
        goto failed;
    }

    tp.p->catalogue = v[T_CATALOGUE] ? (int) v[T_CATALOGUE]->len : 0;

    rc = gch_town_obj(&tp, v[T_TOWN]);
    if (rc == GCH_OK) {
        rc = gch_town_units(&tp, v[T_UNITS]);
    }

    if (rc == GCH_OK) {
        rc = gch_town_activities(&tp, v[T_ACTIVITIES]);
    }

    if (rc == GCH_OK) {
        rc = gch_town_families(&tp, v[T_FAMILIES]);
    }

    if (rc != GCH_OK) {
        goto failed;
    }

    gch_json_free(&doc);
    *out = tp.t;

    return GCH_OK;

failed:

    gch_arena_free(ar);
    gch_json_free(&doc);

    return rc;
}


/* Releases the town and everything it owns.  NULL is a no-op. */
void
gch_town_free(gch_town_t *t)
{
    gch_town_priv_t  *p;

    if (t == NULL) {
        return;
    }

    p = t->priv;
    gch_arena_free(p->ar);
}


/* look-ups */

const gch_session_t *
gch_town_session(const gch_town_t *t, const char *id, size_t len)
{
    long                    i;
    const gch_town_priv_t  *p = t->priv;

    i = gch_index_get(&p->sessions, id, len);

    return i < 0 ? NULL : &t->sessions[i];
}


const gch_activity_t *
gch_town_activity(const gch_town_t *t, const char *id, size_t len)
{
    long                    i;
    const gch_town_priv_t  *p = t->priv;

    i = gch_index_get(&p->activities, id, len);

    return i < 0 ? NULL : &t->activities[i];
}


const gch_family_t *
gch_town_family(const gch_town_t *t, const char *id, size_t len)
{
    long                    i;
    const gch_town_priv_t  *p = t->priv;

    i = gch_index_get(&p->families, id, len);

    return i < 0 ? NULL : &t->families[i];
}


/* A family has a handful of children: a linear search. */
const gch_child_t *
gch_family_child(const gch_family_t *f, const char *id, size_t len)
{
    size_t  i;

    for (i = 0; i < f->nchildren; i++) {
        if (strncmp(f->children[i].id, id, len) == 0
            && f->children[i].id[len] == '\0')
        {
            return &f->children[i];
        }
    }

    return NULL;
}


/*
 * The first band (sorted by qf_max, null last) whose qf_max >= the
 * family's QF; the last band when the QF is missing (-1) or above every
 * bounded band of an activity without a null band.  0 without bands.
 */
int
gch_price_cents(const gch_activity_t *act, const gch_family_t *f)
{
    size_t              i, n;
    const gch_price_t  *p;

    p = act->prices;
    n = act->nprices;

    if (f && !f->resident && act->nnr_prices) {
        p = act->nr_prices;
        n = act->nnr_prices;
    }

    if (n == 0) {
        return 0;
    }

    if (f == NULL || f->qf < 0) {
        return p[n - 1].cents;
    }

    for (i = 0; i < n; i++) {
        if (p[i].qf_max < 0 || p[i].qf_max >= f->qf) {
            return p[i].cents;
        }
    }

    return p[n - 1].cents;
}


/* writing the catalogue */

static void
gch_w_kv(gch_jout_t *o, const char *k, const char *v)
{
    gch_jout_cstr(o, k);

    if (v) {
        gch_jout_cstr(o, v);

    } else {
        yajl_gen_null(o->g);
    }
}


static void
gch_w_ki(gch_jout_t *o, const char *k, long long v)
{
    gch_jout_cstr(o, k);
    yajl_gen_integer(o->g, v);
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
    char                     when[26];
    size_t                   i;
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

    gch_jout_cstr(o, "sessions");
    yajl_gen_array_open(o->g);

    for (i = 0; i < p->act_count[ai]; i++) {
        s = &t->sessions[p->act_first[ai] + i];

        yajl_gen_map_open(o->g);
        gch_w_kv(o, "id", s->id);
        gch_w_day(o, "date", s->date);
        gch_w_kv(o, "unit", t->units[s->unit].code);
        gch_w_kv(o, "label", s->label);
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
