/*
 * qf.c -- guichet-office: a change of situation or of quotient familial
 * (issue 25).
 *
 * The family uploads its tax notice (POST /api/documents, type
 * avis-imposition) and asks, with it (POST /api/qf-changes {document_id,
 * comment}); a new request replaces the one waiting (annulee).  An agent
 * validates it with the new QF and the date it applies from, or refuses it
 * with a reason (POST /api/staff/qf-changes/{id}/decision, decision.c's
 * flow: audited, e-mailed).  A validated QF becomes family.qf in the same
 * transaction, which marks the catalogue changed: the publisher lays
 * family.qf over the town file (worker/overlay.c), so the next bookings
 * are priced on its band; bookings already made keep their price.
 * load-town keeps a QF decided here.  Table of migration 0024.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "office.h"


#define GCHO_QF_JSON                                                         \
    "json_build_object('id', q.id, 'family_id', q.family_id,"                \
    " 'family_login', (select f.login from family f"                         \
    "   where f.id = q.family_id),"                                          \
    " 'current_qf', (select f.qf from family f where f.id = q.family_id),"   \
    " 'document_id', q.document_id, 'document_filename',"                    \
    " (select d.filename from document d where d.id = q.document_id),"       \
    " 'comment', q.comment, 'status', q.status, 'reason', q.reason,"         \
    " 'qf', q.qf, 'effective_from', q.effective_from,"                       \
    " 'requested_at', q.requested_at, 'decided_at', q.decided_at,"           \
    " 'decided_by', q.decided_by)"


static int
gcho_qf_id_ok(const char *id)
{
    size_t  n;

    n = strlen(id);
    return n > 0 && n <= 18 && strspn(id, "0123456789") == n;
}


/* GET /api/qf-changes: the family's QF and its requests, newest first */
static int
gcho_qf_list(gcho_req_t *rq)
{
    const char  *p[1];

    p[0] = rq->family_id;

    return gcho_reply_row(rq, 200,
        "select json_build_object('qf', f.qf, 'qf_changes',"
        " coalesce((select json_agg(" GCHO_QF_JSON " order by q.id desc)"
        "   from qf_change q where q.family_id = f.id"
        "   and q.status <> 'annulee'), '[]'))"
        " from family f where f.id = $1", 1, p, "Famille inconnue.");
}


static const gch_jfield_t  gcho_qf_fields[] = {
    { "document_id", GCH_J_NUMBER | GCH_J_STRING, 1 },
    { "comment", GCH_J_STRING | GCH_J_NULL, 0 }
};


/* POST /api/qf-changes {"document_id", "comment"} */
static int
gcho_qf_request(gcho_req_t *rq)
{
    int                 rc, n;
    char                doc_id[24], comment[1001], target[GCHO_ID_MAX + 16];
    PGresult           *res;
    gch_json_t          doc;
    const char         *p[3], *kv[4];
    const gch_jnode_t  *v[2];

    if (gcho_body_json(rq, &doc, gcho_qf_fields, 2, v) != 0) {
        return 0;
    }

    snprintf(doc_id, sizeof(doc_id), "%.*s",
             (int) (v[0]->len < sizeof(doc_id) ? v[0]->len : 0), v[0]->str);
    rc = gcho_str(rq, "comment", v[1] && v[1]->type == GCH_J_STRING
                                 ? v[1] : NULL, comment, sizeof(comment), 0);
    gch_json_free(&doc);

    if (rc != 0) {
        return 0;
    }

    if (!gcho_qf_id_ok(doc_id)) {
        return gcho_error(rq, 400, "invalid_field", "Le champ document_id "
                          "ne désigne aucun de vos documents.");
    }

    if (gcho_begin(rq) != 0) {
        return 0;
    }

    /* the family's row locked: one request waits at a time */
    p[0] = rq->family_id;
    p[1] = doc_id;
    res = gcho_sql(rq, "select (select count(*) from document d"
                       "   where d.id = $2::bigint and d.family_id = f.id)"
                       " from family f where f.id = $1 for update", 2, p);
    if (res == NULL) {
        return 0;
    }
    n = PQntuples(res) == 1 ? atoi(PQgetvalue(res, 0, 0)) : 0;
    PQclear(res);

    if (n != 1) {
        gcho_rollback();
        return gcho_error(rq, 400, "invalid_field", "Le champ document_id "
                          "ne désigne aucun de vos documents : déposez "
                          "d'abord votre avis d'imposition.");
    }

    if (gcho_sql_do(rq, "update qf_change set status = 'annulee'"
                        " where family_id = $1 and status = 'demandee'",
                    1, p) != 0)
    {
        return 0;
    }

    p[2] = comment[0] ? comment : NULL;
    res = gcho_sql(rq, "insert into qf_change (family_id, document_id,"
                       "   comment) values ($1, $2::bigint, $3)"
                       " returning id", 3, p);
    if (res == NULL) {
        return 0;
    }
    snprintf(target, sizeof(target), "qf_change:%s", PQgetvalue(res, 0, 0));
    snprintf(rq->param[1], GCHO_ID_MAX, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);

    kv[0] = "document_id";
    kv[1] = doc_id;
    kv[2] = "comment";
    kv[3] = p[2];

    if (gcho_audit_kv(rq, "qf.request", target, kv, 2) != 0
        || gcho_commit(rq) != 0)
    {
        return 0;
    }

    p[0] = rq->param[1];
    return gcho_reply_row(rq, 201, "select " GCHO_QF_JSON
                                   " from qf_change q where q.id = $1",
                          1, p, "Demande introuvable.");
}


/* GET /api/staff/qf-changes?status=&family_id= (oldest first) */
static int
gcho_qf_staff_list(gcho_req_t *rq)
{
    const char  *p[2], *st;

    st = gcho_query(rq, "status");
    if (st != NULL && strcmp(st, "demandee") != 0
        && strcmp(st, "validee") != 0 && strcmp(st, "refusee") != 0
        && strcmp(st, "annulee") != 0)
    {
        return gcho_error(rq, 400, "invalid_field",
                          "Le paramètre status vaut demandee, validee, "
                          "refusee ou annulee.");
    }

    p[0] = st;
    p[1] = gcho_query(rq, "family_id");

    return gcho_reply_row(rq, 200,
        "select json_build_object('qf_changes', coalesce(json_agg("
        GCHO_QF_JSON " order by q.requested_at, q.id), '[]'))"
        " from qf_change q"
        " where ($1::text is null or q.status = $1)"
        " and ($2::text is null or q.family_id = $2)", 2, p,
        "Aucune demande.");
}


static const gch_jfield_t  gcho_qf_decision_fields[] = {
    { "decision", GCH_J_STRING, 1 },
    { "reason", GCH_J_STRING | GCH_J_NULL, 0 },
    { "qf", GCH_J_NUMBER | GCH_J_NULL, 0 },
    { "from", GCH_J_STRING | GCH_J_NULL, 0 }
};


/* A validated QF changes prices: the catalogue too. */
static const gcho_decision_t  gcho_qf_decision = {
    "qf_change",
    "update qf_change set status = $2, reason = $3, qf = $4::int,"
    "   effective_from = $5::date, decided_at = now(), decided_by = $6"
    " where id = $1"
    " returning (extract(epoch from decided_at) * 1000000)::bigint",
    6, 5,
    { "qf_validee", "qf_refusee" },
    { "Quotient familial mis à jour", "Changement de quotient familial "
      "refusé" },
    { 1, 0 }
};


/* POST /api/staff/qf-changes/{id}/decision
 * {decision: validee|refusee, reason, qf, from} */
static int
gcho_qf_decide(gcho_req_t *rq)
{
    int                 rc, refused;
    long                qf;
    char                decision[16], reason[1024], sqf[16], from[11];
    char                body[1400], *end;
    gch_day_t           day;
    PGresult           *res;
    gch_json_t          doc;
    const char         *p[6], *kv[10];
    const gch_jnode_t  *v[4];

    if (!gcho_qf_id_ok(rq->param[0])) {
        return gcho_error(rq, 404, "not_found", "Cette demande n'existe "
                          "pas.");
    }

    if (gcho_body_json(rq, &doc, gcho_qf_decision_fields, 4, v) != 0) {
        return 0;
    }

    rc = gcho_str(rq, "decision", v[0], decision, sizeof(decision), 1) != 0
         || gcho_str(rq, "reason", v[1] && v[1]->type == GCH_J_STRING
                                   ? v[1] : NULL, reason, sizeof(reason), 0)
            != 0
         || gcho_str(rq, "from", v[3] && v[3]->type == GCH_J_STRING
                                 ? v[3] : NULL, from, sizeof(from), 0) != 0;

    sqf[0] = '\0';
    if (rc == 0 && v[2] && v[2]->type == GCH_J_NUMBER) {
        snprintf(sqf, sizeof(sqf), "%.*s",
                 (int) (v[2]->len < sizeof(sqf) ? v[2]->len : 0),
                 v[2]->str);
    }

    gch_json_free(&doc);

    if (rc) {
        return 0;
    }

    refused = gcho_decision_word(rq, decision, "validee", reason);
    if (refused < 0) {
        return 0;
    }

    if (!refused) {
        qf = strtol(sqf, &end, 10);
        if (sqf[0] == '\0' || *end != '\0' || qf < 0 || qf > 1000000) {
            return gcho_error(rq, 400, "invalid_field", "Le champ qf (le "
                              "nouveau quotient familial, de 0 à "
                              "1 000 000) est obligatoire pour valider.");
        }

        if (from[0] != '\0'
            && (strlen(from) != 10 || gch_day_parse(&day, from, 10)
                                      != GCH_OK))
        {
            return gcho_error(rq, 400, "invalid_field", "Le champ from "
                              "doit être une date AAAA-MM-JJ.");
        }
    }

    res = gcho_decision_open(rq, "select status, family_id"
                                 " from qf_change where id = $1 for update",
                             "demandee", "Cette demande n'existe pas.",
                             "Cette demande a déjà été traitée.");
    if (res == NULL) {
        return 0;
    }
    PQclear(res);

    if (!refused) {
        if (from[0] == '\0') {
            if (gcho_sql_value(rq, from, sizeof(from),
                               "select to_char((now() at time zone"
                               " 'Europe/Paris')::date, 'YYYY-MM-DD')",
                               0, NULL)
                < 0)
            {
                return 0;
            }
        }

        /*
         * The QF history the back office keeps (family_qf, issue 26): the
         * new QF from its date; family.qf, what the publisher lays over
         * the town file, is the latest whose date has come (overlay.c).
         */
        p[0] = rq->family_id;
        p[1] = sqf;
        p[2] = from;
        p[3] = rq->staff;
        if (gcho_sql_do(rq, "insert into family_qf (family_id, qf,"
                            "   effective_from, recorded_by)"
                            " values ($1, $2::int, $3::date, $4)", 4, p) != 0)
        {
            return 0;
        }

        if (gcho_sql_do(rq, "update family set qf = coalesce((select q.qf"
                            "   from family_qf q where q.family_id = $1"
                            "   and q.effective_from <="
                            "     (now() at time zone 'Europe/Paris')::date"
                            "   order by q.effective_from desc, q.id desc"
                            "   limit 1), qf) where id = $1", 1, p) != 0)
        {
            return 0;
        }
    }

    if (refused) {
        snprintf(body, sizeof(body), "Bonjour,\n\nVotre demande de "
                 "changement de quotient familial a été refusée.\n\n"
                 "Motif : %s\n\n%s/#/situation\n", reason,
                 gcho_ctx.conf.site_url);
    } else {
        snprintf(body, sizeof(body), "Bonjour,\n\nVotre quotient familial "
                 "est désormais de %s, à compter du %s : vos prochaines "
                 "réservations sont calculées sur ce quotient.\n\n"
                 "%s/#/situation\n", sqf, from, gcho_ctx.conf.site_url);
    }

    p[0] = rq->param[0];
    p[1] = decision;
    p[2] = reason[0] ? reason : NULL;
    p[3] = refused ? NULL : sqf;
    p[4] = refused ? NULL : from;
    p[5] = rq->staff;

    kv[0] = "decision";
    kv[1] = decision;
    kv[2] = "reason";
    kv[3] = p[2];
    kv[4] = "qf";
    kv[5] = p[3];
    kv[6] = "from";
    kv[7] = p[4];
    kv[8] = "family_id";
    kv[9] = rq->family_id;

    if (gcho_decision_close(rq, &gcho_qf_decision, refused, p, kv, body)
        != 0)
    {
        return 0;
    }

    return gcho_reply_row(rq, 200, "select " GCHO_QF_JSON
                                   " from qf_change q where q.id = $1",
                          1, p, "Cette demande n'existe pas.");
}


const gcho_route_t  gcho_qf_routes[] = {
    { "GET", "/api/qf-changes", GCHO_FAMILY, 0, 0, gcho_qf_list },
    { "POST", "/api/qf-changes", GCHO_FAMILY, 0, GCHO_BODY_JSON,
      gcho_qf_request },
    { "GET", "/api/staff/qf-changes", GCHO_STAFF, GCHO_AGENT, 0,
      gcho_qf_staff_list },
    { "POST", "/api/staff/qf-changes/*/decision", GCHO_STAFF, GCHO_AGENT,
      GCHO_BODY_JSON, gcho_qf_decide },
    { NULL, NULL, 0, 0, 0, NULL }
};
