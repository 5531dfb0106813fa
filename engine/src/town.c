/*
 * town.c -- the town file and the published catalogue (TOWN-FILE.md).
 *
 * Four files (town.h): this one (indexes, field helpers, the town and its
 * units, gch_town_parse(), look-ups), town_activity.c, town_family.c and
 * town_write.c.
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

#include "town.h"


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


int
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


long
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
long
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

int
gch_tp_nomem(gch_tp_t *tp)
{
    gch_error_set(tp->err, GCH_ENOMEM, NULL);
    return GCH_ENOMEM;
}


int
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


int
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


int
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
int
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


int
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
    { "timezone", GCH_J_STRING, 0 },
    { "id", GCH_J_STRING, 0 }
};


static const gch_jfield_t  gch_unit_fields[] = {
    { "code", GCH_J_STRING, 1 },
    { "label", GCH_J_STRING, 0 },
    { "starts", GCH_J_STRING, 1 },
    { "ends", GCH_J_STRING, 1 }
};

enum { U_CODE, U_LABEL, U_STARTS, U_ENDS, U_N };


int
gch_town_id_ok(const char *s, size_t n)
{
    size_t  i;

    if (n == 0 || n > GCH_TOWN_ID_MAX) {
        return 0;
    }

    for (i = 0; i < n; i++) {
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9')
              || s[i] == '-'))
        {
            return 0;
        }
    }

    return 1;
}


/* "{<id>}:<name>" into one of the town's key buffers */
static void
gch_town_key(char *buf, const char *id, const char *name)
{
    size_t  a, b;

    a = strlen(id);
    b = strlen(name);

    buf[0] = '{';
    memcpy(buf + 1, id, a);
    memcpy(buf + 1 + a, GCH_KEY_TAG_CLOSE, 2);
    memcpy(buf + 3 + a, name, b + 1);
}


static void
gch_town_keys_set(gch_town_t *t)
{
    gch_town_keys_t  *k = &t->keys;

    gch_town_key(k->f, t->id, GCH_N_F);
    gch_town_key(k->s, t->id, GCH_N_S);
    gch_town_key(k->c, t->id, GCH_N_C);
    gch_town_key(k->inflight, t->id, GCH_N_INFLIGHT);
    gch_town_key(k->stream, t->id, GCH_N_STREAM);
    gch_town_key(k->seq_demande, t->id, GCH_N_SEQ_DEMANDE);
    gch_town_key(k->catalogue_gen, t->id, GCH_N_CATALOGUE_GEN);
    gch_town_key(k->waiting, t->id, GCH_N_WAITING);
    k->stream_len = strlen(k->stream);
}


static int
gch_town_obj(gch_tp_t *tp, const gch_jnode_t *node)
{
    int                 rc;
    size_t              mark;
    const gch_jnode_t  *v[3];

    mark = gch_jcx_key(&tp->cx, "town", 4);

    rc = gch_json_fields(&tp->cx, node, gch_townobj_fields, 3, v);
    if (rc == GCH_OK) {
        rc = gch_tp_str(tp, "name", v[0], 1, GCH_TEXT_MAX, &tp->t->name);
    }

    tp->t->id = GCH_TOWN_DEFAULT;

    if (rc == GCH_OK && v[2]) {
        if (v[2]->type != GCH_J_STRING
            || !gch_town_id_ok(v[2]->str, v[2]->len))
        {
            rc = gch_jcx_fail(&tp->cx, "id", "identifiant de commune "
                              "invalide : 1 à 40 caractères parmi a-z, "
                              "0-9 et « - »");
        } else {
            rc = gch_tp_str(tp, "id", v[2], 1, GCH_TOWN_ID_MAX, &tp->t->id);
        }
    }

    if (rc == GCH_OK) {
        gch_town_keys_set(tp->t);
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


int
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


/* See town.h. */
const gch_session_t *
gch_town_act_sessions(const gch_town_t *t, const gch_activity_t *act,
    size_t *n)
{
    size_t                  ai;
    const gch_town_priv_t  *p = t->priv;

    ai = (size_t) (act - t->activities);
    *n = p->act_count[ai];

    return &t->sessions[p->act_first[ai]];
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
