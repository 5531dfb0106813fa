/*
 * entourage.c -- guichet-office: the family's entourage (issue 25):
 * people allowed to pick a child up, emergency contacts.
 *
 * As the towns' manuals say, the family adds and edits them
 * (GET / POST /api/entourage, PUT /api/entourage/{id}: audited
 * entourage.add, entourage.edit) and only the town removes one
 * (DELETE /api/staff/entourage/{id} {reason}: audited entourage.remove,
 * the family e-mailed); a family's DELETE is 405.  A removed person stays
 * in the table (removed_at, removed_by, removal_reason) for the town's
 * history; the family no longer sees it.  Table of migration 0024.
 *
 * It is the one table of a family's people: the back office's family
 * file (family.c) shows them and an agent adds and edits them too
 * (POST /api/staff/families/{id}/entourage, PUT /api/staff/entourage/{id},
 * audited as the family's own changes); the daily lists (daily.c) print
 * those who may pick the children up; archiving erases them.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "office.h"


#define GCHO_ENT_MAX  20             /* people per family */

#define GCHO_ENT_JSON                                                        \
    "json_build_object('id', e.id, 'family_id', e.family_id,"                \
    " 'first_name', e.first_name, 'last_name', e.last_name,"                 \
    " 'relation', e.relation, 'phone', e.phone,"                             \
    " 'can_pick_up', e.can_pick_up, 'emergency', e.emergency,"               \
    " 'created_at', e.created_at, 'updated_at', e.updated_at,"               \
    " 'removed_at', e.removed_at, 'removed_by', e.removed_by,"               \
    " 'removal_reason', e.removal_reason)"


/* GET /api/entourage */
static int
gcho_ent_list(gcho_req_t *rq)
{
    const char  *p[1];

    p[0] = rq->family_id;

    return gcho_reply_row(rq, 200,
        "select json_build_object('entourage', coalesce(json_agg("
        GCHO_ENT_JSON " order by e.last_name, e.first_name, e.id), '[]'))"
        " from entourage_person e"
        " where e.family_id = $1 and e.removed_at is null", 1, p,
        "Famille inconnue.");
}


static const gch_jfield_t  gcho_ent_fields[] = {
    { "first_name", GCH_J_STRING, 1 },
    { "last_name", GCH_J_STRING, 1 },
    { "relation", GCH_J_STRING, 1 },
    { "phone", GCH_J_STRING, 1 },
    { "can_pick_up", GCH_J_BOOL, 1 },
    { "emergency", GCH_J_BOOL, 1 }
};

typedef struct {
    char   first[101];
    char   last[101];
    char   relation[101];
    char   phone[26];
    char  *pick;
    char  *emergency;
} gcho_ent_t;


static int
gcho_ent_blank(const char *s)
{
    return s[strspn(s, " \t")] == '\0';
}


/* The members v[6] (gcho_ent_fields) into e; at is the person's path in
 * an array ("$.entourage[k]"), NULL for a request's body.  0, or -1
 * after answering 400. */
static int
gcho_ent_vals(gcho_req_t *rq, const gch_jnode_t **v, const char *at,
    gcho_ent_t *e)
{
    char         name[4][64], msg[400];
    size_t       i, n, digits;
    const char  *why;

    static const char  *const  names[] = {
        "first_name", "last_name", "relation", "phone"
    };

    for (i = 0; i < 4; i++) {
        snprintf(name[i], sizeof(name[i]), "%s%s%s", at ? at : "",
                 at ? "." : "", names[i]);
    }

    if (gcho_str(rq, name[0], v[0], e->first, sizeof(e->first), 1) != 0
        || gcho_str(rq, name[1], v[1], e->last, sizeof(e->last), 1) != 0
        || gcho_str(rq, name[2], v[2], e->relation, sizeof(e->relation), 1)
           != 0
        || gcho_str(rq, name[3], v[3], e->phone, sizeof(e->phone), 1) != 0)
    {
        return -1;
    }

    e->pick = v[4]->len ? "true" : "false";
    e->emergency = v[5]->len ? "true" : "false";

    why = NULL;

    n = strlen(e->phone);
    for (i = 0, digits = 0; i < n; i++) {
        if (e->phone[i] >= '0' && e->phone[i] <= '9') {
            digits++;
        } else if (!(e->phone[i] == '+' && i == 0)
                   && strchr(" .()-", e->phone[i]) == NULL)
        {
            break;
        }
    }

    if (gcho_ent_blank(e->first) || gcho_ent_blank(e->last)
        || gcho_ent_blank(e->relation))
    {
        why = "Indiquez le prénom, le nom et le lien avec l'enfant "
              "(champs first_name, last_name, relation).";

    } else if (i < n || digits < 6 || n > 25) {
        why = "Le champ phone n'est pas un numéro de téléphone (6 à 25 "
              "chiffres, espaces, « + », « . »).";

    } else if (e->pick[0] == 'f' && e->emergency[0] == 'f') {
        why = "Cette personne doit pouvoir venir chercher un enfant, ou "
              "être à prévenir en cas d'urgence (can_pick_up, emergency).";
    }

    if (why != NULL) {
        snprintf(msg, sizeof(msg), "%s%s%s", at ? at : "", at ? " : " : "",
                 why);
        gcho_error(rq, 400, "invalid_field", msg);
        return -1;
    }

    return 0;
}


/* The request's body into e; 0, or -1 after answering 400. */
static int
gcho_ent_body(gcho_req_t *rq, gcho_ent_t *e)
{
    int                 rc;
    gch_json_t          doc;
    const gch_jnode_t  *v[6];

    if (gcho_body_json(rq, &doc, gcho_ent_fields, 6, v) != 0) {
        return -1;
    }

    rc = gcho_ent_vals(rq, v, NULL, e);
    gch_json_free(&doc);

    return rc;
}


/* Inserts person e of family fid, its id into id (32 bytes).  0, or -1
 * after answering. */
static int
gcho_ent_insert(gcho_req_t *rq, const char *fid, const gcho_ent_t *e,
    char *id)
{
    const char  *p[7];

    p[0] = fid;
    p[1] = e->first;
    p[2] = e->last;
    p[3] = e->relation;
    p[4] = e->phone;
    p[5] = e->pick;
    p[6] = e->emergency;
    if (gcho_sql_value(rq, id, 32,
                       "insert into entourage_person (family_id,"
                       "   first_name, last_name, relation, phone,"
                       "   can_pick_up, emergency)"
                       " values ($1, $2, $3, $4, $5, $6::boolean,"
                       "   $7::boolean) returning id", 7, p)
        < 0)
    {
        return -1;
    }

    return 0;
}


/*
 * The entourage of a family the office creates (family.c), in its
 * transaction: arr is the body's "entourage" array (NULL: none), each
 * person as POST /api/entourage's body.  0, or -1 after answering.
 */
int
gcho_entourage_create(gcho_req_t *rq, const char *fid,
    const gch_jnode_t *arr)
{
    int                 k;
    char                at[48], id[32];
    gcho_ent_t          e;
    const gch_jnode_t  *o, *v[6];

    if (arr == NULL) {
        return 0;
    }

    if (arr->len > GCHO_ENT_MAX) {
        gcho_error(rq, 400, "invalid_field", "$.entourage : au plus 20 "
                   "personnes");
        return -1;
    }

    k = 0;
    for (o = arr->child; o != NULL; o = o->next, k++) {
        snprintf(at, sizeof(at), "$.entourage[%d]", k);

        if (gcho_json_object(rq, o, at, gcho_ent_fields, 6, v) != 0) {
            return -1;
        }

        if (gcho_ent_vals(rq, v, at, &e) != 0
            || gcho_ent_insert(rq, fid, &e, id) != 0)
        {
            return -1;
        }
    }

    return 0;
}


/* The audit row of an addition or an edit of person id of family fid,
 * then COMMIT; 0 or -1 after answering. */
static int
gcho_ent_close(gcho_req_t *rq, const char *action, const char *fid,
    const char *id, const gcho_ent_t *e)
{
    char         target[GCHO_ID_MAX + 16];
    const char  *kv[8];

    snprintf(target, sizeof(target), "entourage:%s", id);
    kv[0] = "name";
    kv[1] = e->last;
    kv[2] = "relation";
    kv[3] = e->relation;
    kv[4] = "can_pick_up";
    kv[5] = e->pick;
    kv[6] = "family_id";
    kv[7] = fid;

    if (gcho_audit_kv(rq, action, target, kv, 4) != 0
        || gcho_commit(rq) != 0)
    {
        return -1;
    }

    return 0;
}


/* BEGIN, family fid's row locked (the count of its people holds), not
 * archived, fewer than GCHO_ENT_MAX people; then person e added, audited
 * and committed, and 201 the person.  0 or -1. */
static int
gcho_ent_add_to(gcho_req_t *rq, const char *fid, const gcho_ent_t *e)
{
    int          rc, n, archived;
    char         id[32];
    PGresult    *res;
    const char  *p[1];

    if (gcho_begin(rq) != 0) {
        return 0;
    }

    p[0] = fid;
    rc = gcho_sql_row(rq, &res, "Cette famille n'existe pas.",
                      "select (select count(*) from entourage_person"
                      "   where family_id = f.id and removed_at is null),"
                      "   f.archived_at is not null"
                      " from family f where f.id = $1 for update", 1, p);
    if (rc != GCHO_GO) {
        return rc;
    }

    n = atoi(PQgetvalue(res, 0, 0));
    archived = strcmp(PQgetvalue(res, 0, 1), "t") == 0;
    PQclear(res);

    if (archived) {
        gcho_rollback();
        return gcho_error(rq, 409, "family_archived",
                          "Cette famille est archivée : son dossier ne "
                          "change plus.");
    }

    if (n >= GCHO_ENT_MAX) {
        gcho_rollback();
        return gcho_error(rq, 409, "entourage_full", rq->staff[0]
                          ? "Cette famille a déjà 20 personnes dans son "
                            "entourage : modifiez-en une, ou retirez-en."
                          : "Vous avez déjà 20 personnes dans votre "
                            "entourage : modifiez-en une, ou demandez à la "
                            "mairie d'en retirer.");
    }

    if (gcho_ent_insert(rq, fid, e, id) != 0
        || gcho_ent_close(rq, "entourage.add", fid, id, e) != 0)
    {
        return 0;
    }

    p[0] = id;
    return gcho_reply_row(rq, 201, "select " GCHO_ENT_JSON
                                   " from entourage_person e where e.id = $1",
                          1, p, "Personne introuvable.");
}


/* POST /api/entourage {first_name, last_name, relation, phone,
 * can_pick_up, emergency} */
static int
gcho_ent_add(gcho_req_t *rq)
{
    gcho_ent_t  e;

    if (gcho_ent_body(rq, &e) != 0) {
        return 0;
    }

    return gcho_ent_add_to(rq, rq->family_id, &e);
}


/* POST /api/staff/families/{id}/entourage, the same body: an agent adds
 * a person to the family's entourage (audited entourage.add). */
static int
gcho_ent_staff_add(gcho_req_t *rq)
{
    gcho_ent_t  e;

    if (gcho_ent_body(rq, &e) != 0) {
        return 0;
    }

    return gcho_ent_add_to(rq, rq->param[0], &e);
}


static int
gcho_ent_id_ok(const char *id)
{
    size_t  n;

    n = strlen(id);
    return n > 0 && n <= 18 && strspn(id, "0123456789") == n;
}


/* PUT /api/entourage/{id} (the family's person) and
 * PUT /api/staff/entourage/{id} (an agent's edit), the same body. */
static int
gcho_ent_edit(gcho_req_t *rq)
{
    int          rc;
    char         fid[GCHO_ID_MAX];
    PGresult    *res;
    gcho_ent_t   e;
    const char  *p[8];

    if (!gcho_ent_id_ok(rq->param[0])) {
        return gcho_error(rq, 404, "not_found",
                          "Cette personne n'est pas dans votre entourage.");
    }

    if (gcho_ent_body(rq, &e) != 0 || gcho_begin(rq) != 0) {
        return 0;
    }

    /* a family edits its own people; an agent, any family's */
    p[0] = rq->param[0];
    p[1] = rq->staff[0] ? NULL : rq->family_id;
    p[2] = e.first;
    p[3] = e.last;
    p[4] = e.relation;
    p[5] = e.phone;
    p[6] = e.pick;
    p[7] = e.emergency;
    rc = gcho_sql_row(rq, &res,
                      rq->staff[0] ? "Personne introuvable (ou retirée)."
                                   : "Cette personne n'est pas dans votre "
                                     "entourage.",
                      "update entourage_person set first_name = $3,"
                      "   last_name = $4, relation = $5, phone = $6,"
                      "   can_pick_up = $7::boolean,"
                      "   emergency = $8::boolean, updated_at = now()"
                      " where id = $1::bigint"
                      "   and ($2::text is null or family_id = $2)"
                      "   and removed_at is null returning family_id", 8, p);
    if (rc != GCHO_GO) {
        return rc;
    }
    snprintf(fid, sizeof(fid), "%s", PQgetvalue(res, 0, 0));
    PQclear(res);

    if (gcho_ent_close(rq, "entourage.edit", fid, rq->param[0], &e) != 0) {
        return 0;
    }

    return gcho_reply_row(rq, 200, "select " GCHO_ENT_JSON
                                   " from entourage_person e where e.id = $1",
                          1, p, "Personne introuvable.");
}


/* GET /api/staff/entourage?family_id=F (removed ones too) */
static int
gcho_ent_staff_list(gcho_req_t *rq)
{
    const char  *p[1];

    p[0] = gcho_query(rq, "family_id");
    if (p[0] == NULL) {
        return gcho_error(rq, 400, "invalid_field",
                          "Le paramètre family_id est obligatoire.");
    }

    return gcho_reply_row(rq, 200,
        "select json_build_object('entourage', coalesce(json_agg("
        GCHO_ENT_JSON " order by e.removed_at nulls first, e.last_name,"
        " e.first_name, e.id), '[]'))"
        " from entourage_person e where e.family_id = $1", 1, p,
        "Famille inconnue.");
}


/* DELETE /api/staff/entourage/{id} {"reason"} */
static int
gcho_ent_remove(gcho_req_t *rq)
{
    int                 rc;
    char                reason[501], body[900], target[GCHO_ID_MAX + 16];
    char                name[210];
    PGresult           *res;
    gch_json_t          doc;
    const char         *p[3], *kv[6];
    const gch_jnode_t  *v[1];

    static const gch_jfield_t  fields[] = {
        { "reason", GCH_J_STRING, 1 },
    };

    if (!gcho_ent_id_ok(rq->param[0])) {
        return gcho_error(rq, 404, "not_found", "Personne introuvable.");
    }

    if (gcho_body_json(rq, &doc, fields, 1, v) != 0) {
        return 0;
    }
    rc = gcho_str(rq, "reason", v[0], reason, sizeof(reason), 1);
    gch_json_free(&doc);
    if (rc != 0) {
        return 0;
    }

    if (gcho_ent_blank(reason)) {
        return gcho_error(rq, 400, "invalid_field",
                          "Le champ reason est obligatoire.");
    }

    if (gcho_begin(rq) != 0) {
        return 0;
    }

    p[0] = rq->param[0];
    p[1] = rq->staff;
    p[2] = reason;
    rc = gcho_sql_row(rq, &res, "Personne introuvable (ou déjà retirée).",
                      "update entourage_person set removed_at = now(),"
                      "   removed_by = $2, removal_reason = $3"
                      " where id = $1::bigint and removed_at is null"
                      " returning family_id,"
                      "   first_name || ' ' || last_name,"
                      "   (extract(epoch from removed_at) * 1000000)"
                      "   ::bigint", 3, p);
    if (rc != GCHO_GO) {
        return rc;
    }

    snprintf(rq->family_id, sizeof(rq->family_id), "%s",
             PQgetvalue(res, 0, 0));
    snprintf(name, sizeof(name), "%s", PQgetvalue(res, 0, 1));
    snprintf(target, sizeof(target), "%s:%s", rq->param[0],
             PQgetvalue(res, 0, 2));
    PQclear(res);

    snprintf(body, sizeof(body), "Bonjour,\n\nLa mairie a retiré %s de "
             "l'entourage de votre famille.\n\nMotif : %s\n\n"
             "%s/#/entourage\n", name, reason, gcho_ctx.conf.site_url);

    if (gcho_mail(rq, rq->family_id, "entourage_remove", target,
                  "Votre entourage", body) != 0)
    {
        return 0;
    }

    snprintf(target, sizeof(target), "entourage:%s", rq->param[0]);
    kv[0] = "reason";
    kv[1] = reason;
    kv[2] = "name";
    kv[3] = name;
    kv[4] = "family_id";
    kv[5] = rq->family_id;

    if (gcho_audit_kv(rq, "entourage.remove", target, kv, 3) != 0
        || gcho_commit(rq) != 0)
    {
        return 0;
    }

    return gcho_reply_row(rq, 200, "select " GCHO_ENT_JSON
                                   " from entourage_person e where e.id = $1",
                          1, p, "Personne introuvable.");
}


const gcho_route_t  gcho_entourage_routes[] = {
    { "GET", "/api/entourage", GCHO_FAMILY, 0, 0, gcho_ent_list },
    { "POST", "/api/entourage", GCHO_FAMILY, 0, GCHO_BODY_JSON,
      gcho_ent_add },
    { "PUT", "/api/entourage/*", GCHO_FAMILY, 0, GCHO_BODY_JSON,
      gcho_ent_edit },
    { "GET", "/api/staff/entourage", GCHO_STAFF, GCHO_AGENT, 0,
      gcho_ent_staff_list },
    { "POST", "/api/staff/families/*/entourage", GCHO_STAFF, GCHO_AGENT,
      GCHO_BODY_JSON, gcho_ent_staff_add },
    { "PUT", "/api/staff/entourage/*", GCHO_STAFF, GCHO_AGENT,
      GCHO_BODY_JSON, gcho_ent_edit },
    { "DELETE", "/api/staff/entourage/*", GCHO_STAFF, GCHO_AGENT,
      GCHO_BODY_JSON, gcho_ent_remove },
    { NULL, NULL, 0, 0, 0, NULL }
};
