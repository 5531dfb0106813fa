/*
 * required.c -- guichet-office: the documents required ahead (issue 25).
 *
 * Before any booking, a family sees, for each child and each activity
 * that requires documents (one the child is enrolled in or asked for, or
 * whose age band the child is in today), every required document and
 * where it stands: GET /api/documents/required.  The town's requirements
 * and the documents the town file has on record are the rows of
 * activity_document and town_document (migration 0021, rebuilt by
 * guichetctl load-town); the uploads are the document table.
 *
 * A document counts for a child when it is the family's (no child) or
 * that child's: a child's document counts for that child only, as in the
 * booking rule documents_missing (book_rules.c, the catalogue's
 * documents[].child_id).  The status of a required document, the best of
 * the documents that count, in this order:
 *
 *   valide        accepted (or on the town's record), valid beyond
 *                 GCHO_REQ_SOON_DAYS days from today (Europe/Paris);
 *   deposee       uploaded, waiting for the town's check;
 *   a_renouveler  accepted, but its validity ends within
 *                 GCHO_REQ_SOON_DAYS days;
 *   refusee       refused (the town's reason);
 *   expiree       accepted once, validity over;
 *   manquante     nothing.
 *
 * An enrolment request (POST /api/enrolments, enrolment.c) is refused
 * with 409 documents_missing while a required document of the activity
 * has neither an accepted nor a waiting document for the child, still
 * valid on the first day of the period (or today, if later):
 * gcho_required_missing().  Booking still needs it accepted.
 *
 * The town also requires documents of every family as a whole
 * (family_document_type, migration 0111: « Justificatif de domicile »,
 * « Attestation CAF »): listed under "family" (only the family's own
 * documents, without a child, count), counted in to_do; as the town sets
 * it (blocks), a missing one blocks nothing, the enrolment requests
 * (gcho_required_missing), or those and the bookings (worker/overlay.c
 * adds it to every activity's required documents in the catalogue it
 * publishes).  The admin sets the list: PUT /api/staff/family-documents.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "office.h"


#define GCHO_REQ_SOON_DAYS  "30"


/* The rank of a candidate document x (1 best) and the state it gives. */
#define GCHO_REQ_RANK                                                        \
    "case"                                                                   \
    "      when x.status = 'acceptee' and (x.valid_to is null"               \
    "        or x.valid_to >= p.today + " GCHO_REQ_SOON_DAYS ") then 1"      \
    "      when x.status = 'deposee' then 2"                                 \
    "      when x.status = 'acceptee' and x.valid_to >= p.today then 3"      \
    "      when x.status = 'refusee' then 4"                                 \
    "      else 5 end as rank"

#define GCHO_REQ_STATE                                                       \
    "coalesce((array['valide', 'deposee', 'a_renouveler',"                   \
    "      'refusee', 'expiree'])[r.rank], 'manquante') as state"

/* The documents a family's children need, and those the town requires of
 * every family (family_document_type, migration 0111): ($1 family).  One
 * JSON row. */
static const char  gcho_req_sql[] =
    "with p as (select $1::text as family_id,"
    "    (now() at time zone 'Europe/Paris')::date as today),"
    " need as ("
    "  select c.id as child_id, c.first_name, a.id as activity_id,"
    "    a.name as activity_name, ad.type, ad.position,"
    "    (select e.status from enrolment e"
    "      where e.child_id = c.id and e.activity_id = a.id"
    "        and e.status <> 'refusee' and e.to_date >= p.today"
    "      order by e.status = 'validee' desc, e.from_date limit 1)"
    "      as enrolment"
    "  from p join child c on c.family_id = p.family_id"
    "  join activity_document ad on true"
    "  join activity a on a.id = ad.activity_id"
    "  where exists (select 1 from enrolment e"
    "      where e.child_id = c.id and e.activity_id = a.id"
    "        and e.status <> 'refusee' and e.to_date >= p.today)"
    "    or extract(year from age(p.today, c.birth_date))"
    "       between a.age_min and a.age_max),"
    " cand as ("
    "  select t.child_id, t.type, 'acceptee' as status, t.valid_to,"
    "    null::text as reason, null::bigint as id,"
    "    null::timestamptz as at"
    "  from p join town_document t on t.family_id = p.family_id"
    "  union all"
    "  select d.child_id, d.type, d.status, d.valid_to, d.reason, d.id,"
    "    d.uploaded_at"
    "  from p join document d on d.family_id = p.family_id),"
    " judged as ("
    "  select n.*, " GCHO_REQ_STATE ","
    "    r.valid_to, case when r.rank = 4 then r.reason end as reason,"
    "    r.id as document_id"
    "  from need n cross join p left join lateral ("
    "    select " GCHO_REQ_RANK ", x.valid_to, x.reason, x.id"
    "    from cand x"
    "    where x.type = n.type"
    "      and (x.child_id is null or x.child_id = n.child_id)"
    "    order by 1, x.at desc nulls first, x.id desc limit 1) r on true),"
    " fam as ("
    "  select ft.type, ft.position, ft.blocks, " GCHO_REQ_STATE ","
    "    r.valid_to, case when r.rank = 4 then r.reason end as reason,"
    "    r.id as document_id"
    "  from family_document_type ft cross join p left join lateral ("
    "    select " GCHO_REQ_RANK ", x.valid_to, x.reason, x.id"
    "    from cand x"
    "    where x.type = ft.type and x.child_id is null"
    "    order by 1, x.at desc nulls first, x.id desc limit 1) r on true),"
    " acts as ("
    "  select child_id, first_name, activity_id, activity_name, enrolment,"
    "    json_agg(json_build_object('type', type, 'status', state,"
    "      'valid_to', valid_to, 'reason', reason,"
    "      'document_id', document_id) order by position) as documents,"
    "    count(*) filter (where state <> 'valide' and state <> 'deposee')"
    "      as to_do"
    "  from judged"
    "  group by child_id, first_name, activity_id, activity_name,"
    "    enrolment),"
    " kids as ("
    "  select c.id, c.first_name,"
    "    coalesce(json_agg(json_build_object('activity_id', a.activity_id,"
    "      'activity_name', a.activity_name, 'enrolment', a.enrolment,"
    "      'documents', a.documents)"
    "      order by a.activity_name, a.activity_id)"
    "      filter (where a.activity_id is not null), '[]') as activities,"
    "    coalesce(sum(a.to_do), 0) as to_do"
    "  from p join child c on c.family_id = p.family_id"
    "  left join acts a on a.child_id = c.id"
    "  group by c.id, c.first_name)"
    " select json_build_object('today', (select today from p),"
    "   'soon_days', " GCHO_REQ_SOON_DAYS ","
    "   'to_do', (select count(*) from (select distinct child_id, type"
    "     from judged where state <> 'valide' and state <> 'deposee') z)"
    "     + (select count(*) from fam"
    "        where state <> 'valide' and state <> 'deposee'),"
    "   'family', coalesce((select json_agg(json_build_object("
    "     'type', f.type, 'status', f.state, 'valid_to', f.valid_to,"
    "     'reason', f.reason, 'document_id', f.document_id,"
    "     'blocks', f.blocks) order by f.position) from fam f), '[]'),"
    "   'children', coalesce((select json_agg(json_build_object("
    "     'child_id', k.id, 'first_name', k.first_name,"
    "     'activities', k.activities) order by k.first_name, k.id)"
    "     from kids k), '[]'))";


/* GET /api/documents/required */
static int
gcho_req_list(gcho_req_t *rq)
{
    const char  *p[1];

    p[0] = rq->family_id;

    return gcho_reply_row(rq, 200, gcho_req_sql, 1, p, "Famille inconnue.");
}


/* See office.h. */
int
gcho_required_missing(gcho_req_t *rq, const char *child, const char *act,
    const char *from)
{
    int         rc;
    char        msg[512];
    PGresult   *res;
    const char  *p[4];

    p[0] = child;
    p[1] = act;
    p[2] = from;
    p[3] = rq->family_id;

    res = gcho_sql(rq,
        "select string_agg(ad.type, ', ' order by ad.o)"
        " from (select type, min(o) as o from ("
        "   select type, position as o from activity_document"
        "   where activity_id = $2"
        "   union all select type, 1000 + position from family_document_type"
        "   where blocks <> 'aucun') y group by type) ad"
        " cross join (select greatest($3::date,"
        "   (now() at time zone 'Europe/Paris')::date) as day) w"
        " where not exists (select 1 from town_document t"
        "   where t.family_id = $4 and t.type = ad.type"
        "     and (t.child_id is null or t.child_id = $1)"
        "     and (t.valid_to is null or t.valid_to >= w.day))"
        " and not exists (select 1 from document d"
        "   where d.family_id = $4 and d.type = ad.type"
        "     and (d.child_id is null or d.child_id = $1)"
        "     and d.status in ('deposee', 'acceptee')"
        "     and (d.valid_to is null or d.valid_to >= w.day))",
        4, p);
    if (res == NULL) {
        return 0;
    }

    if (PQgetisnull(res, 0, 0)) {
        PQclear(res);
        return GCHO_GO;
    }

    snprintf(msg, sizeof(msg),
             "Pièces manquantes au dossier : %s.  Déposez-les dans « Mes "
             "documents » (pour cet enfant ou pour toute la famille), puis "
             "demandez l'inscription.", PQgetvalue(res, 0, 0));
    PQclear(res);

    rc = gcho_error(rq, 409, "documents_missing", msg);
    gcho_rollback();

    return rc;
}


static const char  gcho_req_types_sql[] =
    "select json_build_object('family_documents', coalesce(json_agg("
    " json_build_object('type', type, 'blocks', blocks)"
    " order by position), '[]')) from family_document_type";


/* GET /api/staff/family-documents (agent): the town's list */
static int
gcho_req_types_get(gcho_req_t *rq)
{
    return gcho_reply_row(rq, 200, gcho_req_types_sql, 0, NULL,
                          "Aucune liste.");
}


#define GCHO_REQ_TYPES_MAX  8


/* PUT /api/staff/family-documents {"family_documents": [{"type",
 * "blocks"}]} (admin): the whole list replaced, in one transaction with
 * its audit row and the catalogue's version (a type that blocks bookings
 * is published with every activity) */
static int
gcho_req_types_put(gcho_req_t *rq)
{
    int                 rc;
    char                type[GCHO_REQ_TYPES_MAX][65];
    char                blocks[GCHO_REQ_TYPES_MAX][16], at[128], pos[24];
    char                all[GCHO_REQ_TYPES_MAX * 90 + 4];
    size_t              i, j, n, len;
    gch_json_t          doc;
    const char         *p[4], *kv[2];
    const gch_jnode_t  *v[1], *e, *f[2];

    static const gch_jfield_t  fields[] = {
        { "family_documents", GCH_J_ARRAY, 1 },
    };
    static const gch_jfield_t  item[] = {
        { "type", GCH_J_STRING, 1 },
        { "blocks", GCH_J_STRING, 1 },
    };

    if (gcho_body_json(rq, &doc, fields, 1, v) != 0) {
        return 0;
    }

    n = v[0]->len;
    rc = 0;
    if (n > GCHO_REQ_TYPES_MAX) {
        rc = -1;
        (void) gcho_error(rq, 400, "invalid_field", "$.family_documents : "
                          "8 pièces au plus.");
    }

    for (i = 0, e = rc ? NULL : v[0]->child; e != NULL; e = e->next, i++) {
        snprintf(at, sizeof(at), "$.family_documents[%zu]", i);
        if (gcho_json_object(rq, e, at, item, 2, f) != 0
            || gcho_str(rq, "type", f[0], type[i], sizeof(type[i]), 1) != 0
            || gcho_str(rq, "blocks", f[1], blocks[i], sizeof(blocks[i]), 1)
               != 0)
        {
            rc = -1;
            break;
        }
        len = strlen(type[i]);
        if (strspn(type[i], "abcdefghijklmnopqrstuvwxyz0123456789_-")
            != len)
        {
            snprintf(at, sizeof(at), "$.family_documents[%zu].type : "
                     "lettres minuscules, chiffres, _ et -.", i);
            rc = -1;
            (void) gcho_error(rq, 400, "invalid_field", at);
            break;
        }
        if (strcmp(blocks[i], "aucun") != 0
            && strcmp(blocks[i], "inscription") != 0
            && strcmp(blocks[i], "reservation") != 0)
        {
            snprintf(at, sizeof(at), "$.family_documents[%zu].blocks : "
                     "aucun, inscription ou reservation.", i);
            rc = -1;
            (void) gcho_error(rq, 400, "invalid_field", at);
            break;
        }
        for (j = 0; j < i; j++) {
            if (strcmp(type[j], type[i]) == 0) {
                snprintf(at, sizeof(at), "$.family_documents[%zu].type : "
                         "en double.", i);
                rc = -1;
            (void) gcho_error(rq, 400, "invalid_field", at);
                break;
            }
        }
        if (rc != 0) {
            break;
        }
    }

    gch_json_free(&doc);

    if (rc != 0 || gcho_begin(rq) != 0) {
        return 0;
    }

    if (gcho_sql_do(rq, "delete from family_document_type", 0, NULL) != 0) {
        return 0;
    }

    all[0] = '\0';
    for (i = 0; i < n; i++) {
        snprintf(pos, sizeof(pos), "%zu", i);
        p[0] = type[i];
        p[1] = blocks[i];
        p[2] = pos;
        p[3] = rq->staff;
        if (gcho_sql_do(rq, "insert into family_document_type (type, blocks,"
                            "   position, updated_by)"
                            " values ($1, $2, $3::int, $4)", 4, p) != 0)
        {
            return 0;
        }
        len = strlen(all);
        snprintf(all + len, sizeof(all) - len, "%s%s:%s", i ? ", " : "",
                 type[i], blocks[i]);
    }

    kv[0] = "family_documents";
    kv[1] = all;

    if (gcho_audit_kv(rq, "town.family_documents", "town", kv, 1) != 0
        || gcho_catalogue_changed(rq) != 0
        || gcho_commit(rq) != 0)
    {
        gcho_rollback();
        return 0;
    }

    return gcho_reply_row(rq, 200, gcho_req_types_sql, 0, NULL,
                          "Aucune liste.");
}


const gcho_route_t  gcho_required_routes[] = {
    { "GET", "/api/documents/required", GCHO_FAMILY, 0, 0, gcho_req_list },
    { "GET", "/api/staff/family-documents", GCHO_STAFF, GCHO_AGENT, 0,
      gcho_req_types_get },
    { "PUT", "/api/staff/family-documents", GCHO_STAFF, GCHO_ADMIN,
      GCHO_BODY_JSON, gcho_req_types_put },
    { NULL, NULL, 0, 0, 0, NULL }
};
