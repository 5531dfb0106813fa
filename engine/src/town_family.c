/*
 * town_family.c -- the families of a town file or catalogue: their
 * children, enrolments and documents, and the logins (town.h).
 */

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "town.h"


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
    { "valid_to", GCH_J_STRING | GCH_J_NULL, 0 },
    { "child_id", GCH_J_STRING | GCH_J_NULL, 0 }
};


/* "documents": [{"type", "valid_from", "valid_to", "child_id"}], dates
 * inclusive; a document with a child_id counts for that child only. */
static int
gch_town_documents(gch_tp_t *tp, gch_family_t *f, const gch_jnode_t *arr)
{
    int                 rc;
    size_t              i, mark, mark2;
    gch_document_t     *d;
    const gch_child_t  *c;
    const gch_jnode_t  *e, *v[4];

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

        rc = gch_json_fields(&tp->cx, e, gch_document_fields, 4, v);
        if (rc == GCH_OK) {
            rc = gch_tp_id(tp, "type", v[0], &d->type);
        }

        d->child_id = NULL;

        if (rc == GCH_OK && v[3] && v[3]->type == GCH_J_STRING) {
            rc = gch_json_str(&tp->cx, "child_id", v[3], 1, GCH_ID_MAX);
            if (rc == GCH_OK) {
                c = gch_family_child(f, v[3]->str, v[3]->len);
                if (c == NULL) {
                    rc = gch_jcx_fail(&tp->cx, "child_id", "enfant inconnu "
                                      "dans cette famille");
                } else {
                    d->child_id = c->id;
                }
            }
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


/* The family at index i of "families" (node e). */
static int
gch_town_one_family(gch_tp_t *tp, gch_fam_ctx_t *fc, size_t i,
    const gch_jnode_t *e)
{
    int                 rc;
    gch_family_t       *f;
    const gch_jnode_t  *v[F_N];

    f = &tp->t->families[i];

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

    if (f->login && gch_index_put(&fc->logins, (uint32_t) i) >= 0) {
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
        rc = gch_town_children(tp, fc, f, v[F_CHILDREN]);
    }

    if (rc == GCH_OK) {
        rc = gch_town_enrolments(tp, f, v[F_ENROLMENTS]);
    }

    if (rc == GCH_OK) {
        rc = gch_town_documents(tp, f, v[F_DOCUMENTS]);
    }

    return rc;
}


int
gch_town_families(gch_tp_t *tp, const gch_jnode_t *arr)
{
    int                 rc;
    size_t              i, nchildren, mark, mark2;
    gch_town_t         *t = tp->t;
    gch_fam_ctx_t       fc;
    const gch_jnode_t  *e, *m;

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
        mark2 = gch_jcx_index(&tp->cx, i);

        rc = gch_town_one_family(tp, &fc, i, e);
        if (rc != GCH_OK) {
            return rc;
        }

        t->nfamilies++;
        gch_jcx_pop(&tp->cx, mark2);
    }

    gch_jcx_pop(&tp->cx, mark);
    return GCH_OK;
}
