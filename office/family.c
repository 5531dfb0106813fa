/*
 * family.c -- the back office's families (issue 26): an agent creates a
 * family at the counter with its children, e-mail, entourage and QF;
 * records a new QF with the date it takes effect, the resident status,
 * a child's allergies, adds a child, enrols a child.  An admin archives
 * a family (RGPD) by archive.c's route.  The family's people (who may
 * pick the children up, who to call in an emergency) are entourage.c's:
 * the record shows them, an agent adds, edits and removes them by its
 * routes.
 *
 * What the booking path must know of a family is in the catalogue: a new
 * family and a new child are added to the catalogue's text (jsonb, then
 * the engine parses and writes it again: gcho_catalogue_lock/_put of
 * catalogue.c) and to PostgreSQL's rows in the same transaction; the QF
 * (family_qf, the latest whose date has come), the resident status and
 * the enrolments are laid over the catalogue by the publisher
 * (worker/overlay.c) once gcho_catalogue_changed() moved its version.
 * Every change writes its audit row in its transaction.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "office.h"


#define GCHO_FAM_CHILDREN_MAX  64


static int
gcho_fam_internal(gcho_req_t *rq)
{
    gcho_rollback();
    return gcho_error(rq, 500, "internal", "Une erreur interne est survenue.");
}


/* 1 when s is a date "YYYY-MM-DD". */
static int
gcho_fam_day(const gch_jnode_t *v, char *out)
{
    gch_day_t  d;

    if (v == NULL || v->type != GCH_J_STRING
        || gch_day_parse(&d, v->str, v->len) != 0)
    {
        return 0;
    }

    gch_day_format(d, out);
    return 1;
}


/* Today in Europe/Paris, "YYYY-MM-DD". */
static void
gcho_fam_today(char *out)
{
    int        minute;
    gch_day_t  d;

    gch_unix_to_paris(gcho_now(), &d, &minute, NULL);
    gch_day_format(d, out);
}


/* ------------------------------------------------------------------ */
/* children of a body                                                  */

typedef struct {
    char  first_name[201];
    char  birth_date[11];
    char  allergies[1001];
    int   has_allergies;
} gcho_fam_child_t;


static const gch_jfield_t  gcho_fam_child_fields[] = {
    { "first_name", GCH_J_STRING, 1 },
    { "birth_date", GCH_J_STRING, 1 },
    { "allergies", GCH_J_STRING | GCH_J_NULL, 0 },
};


/* A child's members v[3] (gcho_fam_child_fields); the field's path in
 * messages is at.  0, or -1 after answering 400. */
static int
gcho_fam_child_vals(gcho_req_t *rq, const gch_jnode_t **v, const char *at,
    gcho_fam_child_t *c)
{
    char  msg[256];

    if (gcho_str(rq, "first_name", v[0], c->first_name,
                 sizeof(c->first_name), 1) != 0)
    {
        return -1;
    }

    if (!gcho_fam_day(v[1], c->birth_date)) {
        snprintf(msg, sizeof(msg), "%s.birth_date : date invalide "
                 "(AAAA-MM-JJ)", at);
        gcho_error(rq, 400, "invalid_field", msg);
        return -1;
    }

    c->has_allergies = v[2] != NULL && v[2]->type == GCH_J_STRING;
    if (c->has_allergies
        && gcho_str(rq, "allergies", v[2], c->allergies,
                    sizeof(c->allergies), 0) != 0)
    {
        return -1;
    }

    return 0;
}


/* A child object of an array; 0, or -1 after answering 400. */
static int
gcho_fam_child(gcho_req_t *rq, const gch_jnode_t *obj, const char *at,
    gcho_fam_child_t *c)
{
    const gch_jnode_t  *v[3];

    if (gcho_json_object(rq, obj, at, gcho_fam_child_fields, 3, v) != 0) {
        return -1;
    }

    return gcho_fam_child_vals(rq, v, at, c);
}


/* A QF row of family fid (qf NULL: no QF), effective from day.  When the
 * day has come, family.qf too.  0, or -1 after answering. */
static int
gcho_fam_qf(gcho_req_t *rq, const char *fid, const char *qf,
    const char *day)
{
    char         today[11];
    const char  *p[4];

    p[0] = fid;
    p[1] = qf;
    p[2] = day;
    p[3] = rq->staff;
    if (gcho_sql_do(rq, "insert into family_qf (family_id, qf,"
                        "   effective_from, recorded_by)"
                        " values ($1, $2, $3, $4)", 4, p) != 0)
    {
        return -1;
    }

    gcho_fam_today(today);
    if (strcmp(day, today) > 0) {
        return 0;
    }

    /* the QF in effect: the latest whose day has come (as overlay.c) */
    if (gcho_sql_do(rq, "update family set qf = (select q.qf from family_qf q"
                        "   where q.family_id = $1 and q.effective_from <="
                        "     (now() at time zone 'Europe/Paris')::date"
                        "   order by q.effective_from desc, q.id desc"
                        "   limit 1) where id = $1", 1, p) != 0)
    {
        return -1;
    }

    return 0;
}


/* ------------------------------------------------------------------ */
/* the answer: the family's record                                      */

/* 200/201 {"id", "login", "email", "qf", "resident", "archived_at",
 * "qf_history": [{"qf", "from", "recorded_by", "recorded_at"}],
 * "children": [{"id", "first_name", "birth_date", "allergies"}],
 * "entourage": [{"id", "first_name", "last_name", "relation", "phone",
 *                "can_pick_up", "emergency", ...}] (entourage.c's people,
 *                the removed ones left out),
 * "enrolments": [{"child_id", "activity_id", "from", "to", "status"}],
 * "co_responsable": {"id", "first_name", "last_name", "email", "login",
 *                    "invited_at", "invite_expires_at", "activated_at"}
 *                   or null (coresp.c's, the removed ones left out),
 * "file_request": {"status", "requested_at", "reason"} or null (a file
 *                 asked online, request.c)} */
int
gcho_fam_answer(gcho_req_t *rq, int status, const char *fid)
{
    const char  *p[1];

    p[0] = fid;

    return gcho_reply_row(rq, status,
        "select json_build_object('id', f.id, 'login', f.login,"
        "  'email', (select address from family_email e"
        "            where e.family_id = f.id),"
        "  'qf', f.qf, 'resident', f.resident,"
        "  'archived_at', f.archived_at,"
        "  'qf_history', (select coalesce(json_agg(json_build_object("
        "      'qf', q.qf, 'from', q.effective_from,"
        "      'recorded_by', q.recorded_by, 'recorded_at', q.recorded_at)"
        "      order by q.effective_from desc, q.id desc), '[]')"
        "    from family_qf q where q.family_id = f.id),"
        "  'children', (select coalesce(json_agg(json_build_object("
        "      'id', c.id, 'first_name', c.first_name,"
        "      'birth_date', c.birth_date, 'allergies', c.allergies)"
        "      order by c.birth_date, c.id), '[]')"
        "    from child c where c.family_id = f.id),"
        "  'entourage', (select coalesce(json_agg(json_build_object("
        "      'id', k.id, 'first_name', k.first_name,"
        "      'last_name', k.last_name, 'relation', k.relation,"
        "      'phone', k.phone, 'can_pick_up', k.can_pick_up,"
        "      'emergency', k.emergency, 'updated_at', k.updated_at)"
        "      order by k.last_name, k.first_name, k.id), '[]')"
        "    from entourage_person k where k.family_id = f.id"
        "      and k.removed_at is null),"
        "  'enrolments', (select coalesce(json_agg(json_build_object("
        "      'child_id', e.child_id, 'activity_id', e.activity_id,"
        "      'from', e.from_date, 'to', e.to_date, 'status', e.status)"
        "      order by e.from_date, e.id), '[]')"
        "    from enrolment e join child c on c.id = e.child_id"
        "    where c.family_id = f.id),"
        "  'co_responsable', (select json_build_object('id', k.id,"
        "      'first_name', k.first_name, 'last_name', k.last_name,"
        "      'email', k.email, 'login', k.login,"
        "      'invited_at', k.created_at,"
        "      'invite_expires_at', k.invite_expires_at,"
        "      'activated_at', k.activated_at)"
        "    from co_responsable k where k.family_id = f.id"
        "      and k.removed_at is null),"
        "  'file_request', (select json_build_object('status', r.status,"
        "      'requested_at', r.requested_at, 'reason', r.reason)"
        "    from family_request r where r.family_id = f.id))"
        " from family f where f.id = $1", 1, p,
        "Cette famille n'existe pas.");
}


/* GET /api/staff/families/{id}/record */
static int
gcho_fam_get(gcho_req_t *rq)
{
    return gcho_fam_answer(rq, 200, rq->param[0]);
}


/* ------------------------------------------------------------------ */
/* creating a family                                                    */

/* The family's object for the catalogue (JSON text, malloc'ed). */
static char *
gcho_fam_object(const char *fid, const char *login, const char *qf,
    int resident, gcho_fam_child_t *c, size_t nc)
{
    char        *text, cid[GCHO_ID_MAX + 8];
    size_t       i, len;
    gch_jout_t   o;

    if (gch_jout_init(&o, &gch_alloc_std) != 0) {
        return NULL;
    }

    yajl_gen_map_open(o.g);
    gch_jout_cstr(&o, "id");
    gch_jout_cstr(&o, fid);
    if (login != NULL) {
        gch_jout_cstr(&o, "login");
        gch_jout_cstr(&o, login);
    }
    gch_jout_cstr(&o, "qf");
    if (qf != NULL) {
        yajl_gen_integer(o.g, atol(qf));
    } else {
        yajl_gen_null(o.g);
    }
    gch_jout_cstr(&o, "resident");
    yajl_gen_bool(o.g, resident);
    gch_jout_cstr(&o, "children");
    yajl_gen_array_open(o.g);
    for (i = 0; i < nc; i++) {
        snprintf(cid, sizeof(cid), "%s-%zu", fid, i + 1);
        yajl_gen_map_open(o.g);
        gch_jout_cstr(&o, "id");
        gch_jout_cstr(&o, cid);
        gch_jout_cstr(&o, "first_name");
        gch_jout_cstr(&o, c[i].first_name);
        gch_jout_cstr(&o, "birth_date");
        gch_jout_cstr(&o, c[i].birth_date);
        yajl_gen_map_close(o.g);
    }
    yajl_gen_array_close(o.g);
    yajl_gen_map_close(o.g);

    if (gch_jout_detach(&o, &text, &len) != 0) {
        return NULL;
    }

    return text;
}


/*
 * POST /api/staff/families: {"login", "email", "qf", "qf_from",
 * "resident", "children": [{"first_name", "birth_date", "allergies"}],
 * "entourage": [...] (each as POST /api/entourage's body)}; the office
 * names the family ("fam-<n>") and its children ("<family>-<k>").  201
 * the family's record.
 */
static int
gcho_fam_create(gcho_req_t *rq)
{
    static const gch_jfield_t  f[] = {
        { "login", GCH_J_STRING | GCH_J_NULL, 0 },
        { "email", GCH_J_STRING | GCH_J_NULL, 0 },
        { "qf", GCH_J_NUMBER | GCH_J_NULL, 0 },
        { "qf_from", GCH_J_STRING, 0 },
        { "resident", GCH_J_BOOL, 0 },
        { "children", GCH_J_ARRAY, 1 },
        { "entourage", GCH_J_ARRAY, 0 },
    };

    int                 rc, resident;
    char               *obj, fid[32], login[129], mail[255], qf[32],
                        day[11], cid[GCHO_ID_MAX + 8], msg[64];
    size_t              i, nc;
    long long           q;
    PGresult           *cat, *res;
    gch_jcx_t           cx;
    gch_json_t          doc;
    gch_town_t         *t;
    gch_error_t         err;
    const char         *p[6];
    const gch_jnode_t  *v[7], *e;
    gcho_fam_child_t   *c;

    if (gcho_body_json(rq, &doc, f, 7, v) != 0) {
        return 0;
    }

    c = NULL;
    memset(&err, 0, sizeof(err));
    gch_jcx_init(&cx, &err);
    login[0] = mail[0] = qf[0] = '\0';

    if ((v[0] && v[0]->type == GCH_J_STRING
         && gcho_str(rq, "login", v[0], login, sizeof(login), 1) != 0)
        || (v[1] && v[1]->type == GCH_J_STRING
            && gcho_str(rq, "email", v[1], mail, sizeof(mail), 3) != 0))
    {
        goto answered;
    }

    if (!gcho_email_ok(mail)) {
        gcho_error(rq, 400, "invalid_field", "Le champ email n'est pas "
                   "une adresse e-mail (nom@domaine).");
        goto answered;
    }

    if (v[2] && v[2]->type == GCH_J_NUMBER) {
        if (gch_json_int(&cx, "qf", v[2], 0, 1000000, &q) != 0) {
            gcho_error(rq, 400, "invalid_field", err.message);
            goto answered;
        }
        snprintf(qf, sizeof(qf), "%lld", q);
    }

    gcho_fam_today(day);
    if (v[3] && !gcho_fam_day(v[3], day)) {
        gcho_error(rq, 400, "invalid_field",
                   "$.qf_from : date invalide (AAAA-MM-JJ)");
        goto answered;
    }

    resident = v[4] == NULL || v[4]->len;

    nc = v[5]->len;
    if (nc < 1 || nc > GCHO_FAM_CHILDREN_MAX) {
        gcho_error(rq, 400, "invalid_field",
                   "$.children : de 1 à 64 enfants");
        goto answered;
    }

    c = calloc(nc, sizeof(gcho_fam_child_t));
    if (c == NULL) {
        gcho_fam_internal(rq);
        goto answered;
    }

    for (i = 0, e = v[5]->child; e != NULL; e = e->next, i++) {
        snprintf(msg, sizeof(msg), "$.children[%zu]", i);
        if (gcho_fam_child(rq, e, msg, &c[i]) != 0) {
            goto answered;
        }
    }

    rc = gcho_catalogue_lock(rq, &cat);
    if (rc != GCHO_GO) {
        goto answered;
    }

    /* the family's id: the next free "fam-<n>" */
    fid[0] = '\0';
    for (i = 0; i < 10 && fid[0] == '\0'; i++) {
        p[0] = PQgetvalue(cat, 0, 0);
        res = gcho_sql(rq, "select 'fam-' || nextval('family_number'),"
                           "  exists (select 1 from jsonb_array_elements("
                           "    $1::jsonb -> 'families') e"
                           "    where e ->> 'id' = 'fam-' ||"
                           "      currval('family_number'))"
                           "  or exists (select 1 from family"
                           "    where id = 'fam-' ||"
                           "      currval('family_number'))", 1, p);
        if (res == NULL) {
            PQclear(cat);
            goto answered;
        }
        if (strcmp(PQgetvalue(res, 0, 1), "f") == 0) {
            snprintf(fid, sizeof(fid), "%s", PQgetvalue(res, 0, 0));
        }
        PQclear(res);
    }

    obj = fid[0] ? gcho_fam_object(fid, login[0] ? login : NULL,
                                   qf[0] ? qf : NULL, resident, c, nc)
                 : NULL;
    if (obj == NULL) {
        PQclear(cat);
        gcho_fam_internal(rq);
        goto answered;
    }

    p[0] = PQgetvalue(cat, 0, 0);
    p[1] = obj;
    res = gcho_sql(rq, "select jsonb_set(c, '{families}',"
                       "   coalesce(c -> 'families', '[]')"
                       "   || jsonb_build_array($2::jsonb))::text,"
                       "   jsonb_array_length(coalesce(c -> 'families',"
                       "                               '[]'))"
                       " from (select $1::jsonb c) x", 2, p);
    PQclear(cat);
    free(obj);
    if (res == NULL) {
        goto answered;
    }

    t = NULL;
    rc = gcho_catalogue_put(rq, PQgetvalue(res, 0, 0), "families",
                            atol(PQgetvalue(res, 0, 1)), &t);
    PQclear(res);
    if (rc != GCHO_GO) {
        goto answered;
    }
    gch_town_free(t);

    p[0] = fid;
    p[1] = login[0] ? login : NULL;
    p[2] = qf[0] ? qf : NULL;
    p[3] = resident ? "true" : "false";
    if (gcho_sql_do(rq, "insert into family (id, login, qf, resident,"
                        "   direct_debit) values ($1, $2, $3, $4, false)",
                    4, p) != 0)
    {
        goto answered;
    }

    for (i = 0; i < nc; i++) {
        snprintf(cid, sizeof(cid), "%s-%zu", fid, i + 1);
        p[0] = cid;
        p[1] = fid;
        p[2] = c[i].first_name;
        p[3] = c[i].birth_date;
        p[4] = c[i].has_allergies && c[i].allergies[0] ? c[i].allergies
                                                       : NULL;
        if (gcho_sql_do(rq, "insert into child (id, family_id, first_name,"
                            "   birth_date, allergies)"
                            " values ($1, $2, $3, $4, $5)", 5, p) != 0)
        {
            goto answered;
        }
    }

    p[0] = fid;
    p[1] = mail;
    if (mail[0]) {
        if (gcho_sql_do(rq, "insert into family_email (family_id, address)"
                            " values ($1, $2)", 2, p) != 0)
        {
            goto answered;
        }
    }

    if ((qf[0] && gcho_fam_qf(rq, fid, qf, day) != 0)
        || gcho_entourage_create(rq, fid, v[6]) != 0)
    {
        goto answered;
    }

    {
        const char  *kv[4] = { "login", login[0] ? login : NULL,
                               "children", NULL };
        char         n[16], target[64];

        snprintf(n, sizeof(n), "%zu", nc);
        kv[3] = n;
        snprintf(target, sizeof(target), "family:%s", fid);

        if (gcho_audit_kv(rq, "family.create", target, kv, 2) != 0
            || gcho_commit(rq) != 0)
        {
            goto answered;
        }
    }

    gch_json_free(&doc);
    free(c);

    return gcho_fam_answer(rq, 201, fid);

answered:

    gcho_rollback();
    gch_json_free(&doc);
    free(c);

    return 0;
}


/* POST /api/staff/families/{id}/children: {"first_name", "birth_date",
 * "allergies"}: a child added to the family.  201 the family's record. */
static int
gcho_fam_add_child(gcho_req_t *rq)
{
    int                 rc;
    char                cid[GCHO_ID_MAX + 16];
    PGresult           *cat, *res;
    gch_json_t          doc;
    gch_town_t         *t;
    const char         *p[5];
    const gch_jnode_t  *v[3];
    gcho_fam_child_t    c;

    if (gcho_body_json(rq, &doc, gcho_fam_child_fields, 3, v) != 0) {
        return 0;
    }

    memset(&c, 0, sizeof(c));
    if (gcho_fam_child_vals(rq, v, "$", &c) != 0) {
        gch_json_free(&doc);
        return 0;
    }
    gch_json_free(&doc);

    rc = gcho_catalogue_lock(rq, &cat);
    if (rc != GCHO_GO) {
        return rc;
    }

    /* the next "<family>-<k>", and the family in the catalogue */
    p[0] = PQgetvalue(cat, 0, 0);
    p[1] = rq->param[0];
    p[2] = c.first_name;
    p[3] = c.birth_date;
    rc = gcho_sql_row(rq, &res, "Cette famille n'existe pas.",
        "select jsonb_set(c, array['families', (t.i - 1)::text, 'children'],"
        "     coalesce(t.f -> 'children', '[]') || jsonb_build_array("
        "       jsonb_build_object('id', $2 || '-' || n.k,"
        "         'first_name', $3::text, 'birth_date', $4::text)))::text,"
        "   t.i - 1, $2 || '-' || n.k"
        " from (select $1::jsonb c) x,"
        "   jsonb_array_elements(c -> 'families') with ordinality t(f, i),"
        "   lateral (select coalesce(max(substring(y.id from"
        "       length($2) + 2)::int), 0) + 1 k"
        "     from child y where y.family_id = $2"
        "       and left(y.id, length($2) + 1) = $2 || '-'"
        "       and substring(y.id from length($2) + 2) ~ '^[0-9]{1,9}$') n"
        " where t.f ->> 'id' = $2", 4, p);
    PQclear(cat);
    if (rc != GCHO_GO) {
        return rc;
    }

    snprintf(cid, sizeof(cid), "%s", PQgetvalue(res, 0, 2));
    t = NULL;
    rc = gcho_catalogue_put(rq, PQgetvalue(res, 0, 0), "families",
                            atol(PQgetvalue(res, 0, 1)), &t);
    PQclear(res);
    if (rc != GCHO_GO) {
        return rc;
    }
    gch_town_free(t);

    p[0] = cid;
    p[1] = rq->param[0];
    p[2] = c.first_name;
    p[3] = c.birth_date;
    p[4] = c.has_allergies && c.allergies[0] ? c.allergies : NULL;
    if (gcho_sql_do(rq, "insert into child (id, family_id, first_name,"
                        "   birth_date, allergies)"
                        " values ($1, $2, $3, $4, $5)", 5, p) != 0)
    {
        return 0;
    }

    {
        char         target[GCHO_ID_MAX + 8];
        const char  *kv[2] = { "child_id", cid };

        snprintf(target, sizeof(target), "family:%s", rq->param[0]);
        if (gcho_audit_kv(rq, "family.child", target, kv, 1) != 0
            || gcho_commit(rq) != 0)
        {
            return 0;
        }
    }

    return gcho_fam_answer(rq, 201, rq->param[0]);
}


/* ------------------------------------------------------------------ */
/* changes laid over the catalogue by the publisher                     */

/* BEGIN and the family's row, locked and not archived.  GCHO_GO, or the
 * answer (404, 409 family_archived; rolled back). */
static int
gcho_fam_open(gcho_req_t *rq)
{
    int          rc, archived;
    PGresult    *res;
    const char  *p[1];

    if (gcho_begin(rq) != 0) {
        return 0;
    }

    p[0] = rq->param[0];
    rc = gcho_sql_row(rq, &res, "Cette famille n'existe pas.",
                      "select archived_at is not null from family"
                      " where id = $1 for no key update", 1, p);
    if (rc != GCHO_GO) {
        return rc;
    }

    archived = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);

    if (archived) {
        gcho_rollback();
        return gcho_error(rq, 409, "family_archived",
                          "Cette famille est archivée : son dossier ne "
                          "change plus.");
    }

    return GCHO_GO;
}


/* The audit row, the catalogue's version when asked, COMMIT, then the
 * record.  0 or -1. */
static int
gcho_fam_close(gcho_req_t *rq, const char *action, int catalogue)
{
    char         target[GCHO_ID_MAX + 8];
    const char  *kv[2] = { "change", rq->body };

    snprintf(target, sizeof(target), "family:%s", rq->param[0]);

    if (gcho_audit_kv(rq, action, target, kv, 1) != 0
        || (catalogue && gcho_catalogue_changed(rq) != 0)
        || gcho_commit(rq) != 0)
    {
        return 0;
    }

    return gcho_fam_answer(rq, 200, rq->param[0]);
}


/* PUT /api/staff/families/{id}/qf: {"qf": n | null, "from": date}: a QF
 * that takes effect on that day (today when absent), kept in the
 * history. */
static int
gcho_fam_set_qf(gcho_req_t *rq)
{
    static const gch_jfield_t  f[] = {
        { "qf", GCH_J_NUMBER | GCH_J_NULL, 1 },
        { "from", GCH_J_STRING, 0 },
    };

    int                 rc;
    char                qf[32], day[11];
    long long           q;
    gch_jcx_t           cx;
    gch_json_t          doc;
    gch_error_t         err;
    const gch_jnode_t  *v[2];

    if (gcho_body_json(rq, &doc, f, 2, v) != 0) {
        return 0;
    }

    memset(&err, 0, sizeof(err));
    gch_jcx_init(&cx, &err);
    qf[0] = '\0';

    if (v[0]->type == GCH_J_NUMBER) {
        if (gch_json_int(&cx, "qf", v[0], 0, 1000000, &q) != 0) {
            gch_json_free(&doc);
            return gcho_error(rq, 400, "invalid_field", err.message);
        }
        snprintf(qf, sizeof(qf), "%lld", q);
    }

    gcho_fam_today(day);
    if (v[1] && !gcho_fam_day(v[1], day)) {
        gch_json_free(&doc);
        return gcho_error(rq, 400, "invalid_field",
                          "$.from : date invalide (AAAA-MM-JJ)");
    }
    gch_json_free(&doc);

    rc = gcho_fam_open(rq);
    if (rc != GCHO_GO) {
        return rc;
    }

    if (gcho_fam_qf(rq, rq->param[0], qf[0] ? qf : NULL, day) != 0) {
        return 0;
    }

    return gcho_fam_close(rq, "family.qf", 1);
}


/* PUT /api/staff/families/{id}: {"resident": bool, "email": "..." |
 * null} (either or both). */
static int
gcho_fam_update(gcho_req_t *rq)
{
    static const gch_jfield_t  f[] = {
        { "resident", GCH_J_BOOL, 0 },
        { "email", GCH_J_STRING | GCH_J_NULL, 0 },
    };

    int                 rc;
    char                mail[255];
    gch_json_t          doc;
    const char         *p[2];
    const gch_jnode_t  *v[2];

    if (gcho_body_json(rq, &doc, f, 2, v) != 0) {
        return 0;
    }

    mail[0] = '\0';
    if (v[1] && v[1]->type == GCH_J_STRING
        && gcho_str(rq, "email", v[1], mail, sizeof(mail), 3) != 0)
    {
        gch_json_free(&doc);
        return 0;
    }

    if (!gcho_email_ok(mail)) {
        gch_json_free(&doc);
        return gcho_error(rq, 400, "invalid_field", "Le champ email n'est "
                          "pas une adresse e-mail (nom@domaine).");
    }

    rc = gcho_fam_open(rq);
    if (rc != GCHO_GO) {
        gch_json_free(&doc);
        return rc;
    }

    p[0] = rq->param[0];

    if (v[0] != NULL) {
        p[1] = v[0]->len ? "true" : "false";
        if (gcho_sql_do(rq, "update family set resident = $2 where id = $1",
                        2, p) != 0)
        {
            gch_json_free(&doc);
            return 0;
        }
    }

    if (v[1] != NULL) {
        p[1] = mail;
        if ((mail[0]
             ? gcho_sql_do(rq, "insert into family_email (family_id,"
                               "   address) values ($1, $2)"
                               " on conflict (family_id) do update"
                               " set address = excluded.address,"
                               "   updated_at = now()", 2, p)
             : gcho_sql_do(rq, "delete from family_email"
                               " where family_id = $1", 1, p))
            != 0)
        {
            gch_json_free(&doc);
            return 0;
        }
    }

    gch_json_free(&doc);

    return gcho_fam_close(rq, "family.update", v[0] != NULL);
}


/* PUT /api/staff/children/{id}: {"allergies": "..." | null}. */
static int
gcho_fam_child_update(gcho_req_t *rq)
{
    static const gch_jfield_t  f[] = {
        { "allergies", GCH_J_STRING | GCH_J_NULL, 1 },
    };

    int                 rc;
    char                text[1001], fid[GCHO_ID_MAX];
    PGresult           *res;
    gch_json_t          doc;
    const char         *p[2];
    const gch_jnode_t  *v[1];

    if (gcho_body_json(rq, &doc, f, 1, v) != 0) {
        return 0;
    }

    text[0] = '\0';
    if (v[0]->type == GCH_J_STRING
        && gcho_str(rq, "allergies", v[0], text, sizeof(text), 0) != 0)
    {
        gch_json_free(&doc);
        return 0;
    }
    gch_json_free(&doc);

    if (gcho_begin(rq) != 0) {
        return 0;
    }

    p[0] = rq->param[0];
    p[1] = text[0] ? text : NULL;
    rc = gcho_sql_row(rq, &res, "Cet enfant n'existe pas.",
                      "update child set allergies = $2 where id = $1"
                      " and family_id in (select id from family"
                      "   where archived_at is null)"
                      " returning family_id", 2, p);
    if (rc != GCHO_GO) {
        return rc;
    }

    snprintf(fid, sizeof(fid), "%s", PQgetvalue(res, 0, 0));
    PQclear(res);

    {
        char         target[GCHO_ID_MAX + 8];
        const char  *kv[2] = { "child_id", rq->param[0] };

        snprintf(target, sizeof(target), "family:%s", fid);
        if (gcho_audit_kv(rq, "child.allergies", target, kv, 1) != 0
            || gcho_commit(rq) != 0)
        {
            return 0;
        }
    }

    return gcho_fam_answer(rq, 200, fid);
}


/* POST /api/staff/families/{id}/enrolments: {"child_id", "activity_id",
 * "from", "to"}: the child enrolled (validée) by the agent. */
static int
gcho_fam_enrol(gcho_req_t *rq)
{
    static const gch_jfield_t  f[] = {
        { "child_id", GCH_J_STRING, 1 },
        { "activity_id", GCH_J_STRING, 1 },
        { "from", GCH_J_STRING, 1 },
        { "to", GCH_J_STRING, 1 },
    };

    int                 rc;
    char                child[GCHO_ID_MAX], act[GCHO_ID_MAX], from[11],
                        to[11];
    PGresult           *res;
    gch_json_t          doc;
    const char         *p[6];
    const gch_jnode_t  *v[4];

    if (gcho_body_json(rq, &doc, f, 4, v) != 0) {
        return 0;
    }

    if (gcho_str(rq, "child_id", v[0], child, sizeof(child), 1) != 0
        || gcho_str(rq, "activity_id", v[1], act, sizeof(act), 1) != 0)
    {
        gch_json_free(&doc);
        return 0;
    }

    if (!gcho_fam_day(v[2], from) || !gcho_fam_day(v[3], to)
        || strcmp(to, from) < 0)
    {
        gch_json_free(&doc);
        return gcho_error(rq, 400, "invalid_field", "$.from, $.to : dates "
                          "(AAAA-MM-JJ), « to » au plus tôt « from »");
    }
    gch_json_free(&doc);

    rc = gcho_fam_open(rq);
    if (rc != GCHO_GO) {
        return rc;
    }

    p[0] = child;
    p[1] = rq->param[0];
    p[2] = act;
    res = gcho_sql(rq, "select (select count(*) from child where id = $1"
                       "   and family_id = $2),"
                       " (select count(*) from activity where id = $3)",
                   3, p);
    if (res == NULL) {
        return 0;
    }
    rc = strcmp(PQgetvalue(res, 0, 0), "1") != 0 ? 1
         : strcmp(PQgetvalue(res, 0, 1), "1") != 0 ? 2 : 0;
    PQclear(res);

    if (rc != 0) {
        gcho_rollback();
        return gcho_error(rq, 400, "invalid_field", rc == 1
                          ? "$.child_id : enfant inconnu dans cette famille"
                          : "$.activity_id : activité inconnue");
    }

    /* a file asked online enrols nobody before the town validates it */
    rc = gcho_family_pending(rq, rq->param[0]);
    if (rc != GCHO_GO) {
        return rc;
    }

    p[1] = act;
    p[2] = from;
    p[3] = to;
    p[4] = rq->staff;
    rc = gcho_sql_exists(rq, "select 1 from enrolment where child_id = $1"
                             " and activity_id = $2 and status <> 'refusee'"
                             " and from_date <= $4 and to_date >= $3", 4, p);
    if (rc < 0) {
        return 0;
    }

    if (rc != 0) {
        gcho_rollback();
        return gcho_error(rq, 409, "already_requested",
                          "Cet enfant est déjà inscrit (ou demandé) à "
                          "cette activité sur une partie de ces dates.");
    }

    if (gcho_sql_do(rq, "insert into enrolment (child_id, activity_id,"
                        "   from_date, to_date, status, origin, requested_at,"
                        "   decided_at, decided_by)"
                        " values ($1, $2, $3, $4, 'validee', 'office', now(),"
                        "   now(), $5)", 5, p) != 0)
    {
        return 0;
    }

    return gcho_fam_close(rq, "enrolment.create", 1);
}


const gcho_route_t  gcho_family_routes[] = {
    { "POST", "/api/staff/families", GCHO_STAFF, GCHO_AGENT,
      GCHO_BODY_JSON, gcho_fam_create },
    { "GET", "/api/staff/families/*/record", GCHO_STAFF, GCHO_AGENT, 0,
      gcho_fam_get },
    { "PUT", "/api/staff/families/*", GCHO_STAFF, GCHO_AGENT,
      GCHO_BODY_JSON, gcho_fam_update },
    { "PUT", "/api/staff/families/*/qf", GCHO_STAFF, GCHO_AGENT,
      GCHO_BODY_JSON, gcho_fam_set_qf },
    { "POST", "/api/staff/families/*/children", GCHO_STAFF, GCHO_AGENT,
      GCHO_BODY_JSON, gcho_fam_add_child },
    { "PUT", "/api/staff/children/*", GCHO_STAFF, GCHO_AGENT,
      GCHO_BODY_JSON, gcho_fam_child_update },
    { "POST", "/api/staff/families/*/enrolments", GCHO_STAFF, GCHO_AGENT,
      GCHO_BODY_JSON, gcho_fam_enrol },
    { NULL, NULL, 0, 0, 0, NULL }
};
