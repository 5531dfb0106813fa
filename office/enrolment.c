/*
 * enrolment.c -- guichet-office: enrolment requests (families) and their
 * decisions (staff).
 *
 * A family asks for a child's enrolment in an activity for a period
 * (POST /api/enrolments): a row of the enrolment table with origin
 * 'office' and status 'demandee' ("déposée" on the site).  Staff validate
 * or refuse it with a reason (POST /api/staff/enrolments/{id}/decision).
 * Each step is one transaction that also writes the audit row, queues the
 * family's e-mail (outbox) and marks the catalogue changed, so that the
 * publisher lays the new status over the town file within
 * publish_interval_ms (worker/overlay.c): bookings need a validated
 * enrolment covering the date (reason not_enrolled otherwise).
 *
 * A refused request may be asked again; a request or a validated
 * enrolment overlapping the new period for the same child and activity
 * is refused with 409 already_requested, and one whose activity requires
 * a document the child does not have (accepted or waiting) with 409
 * documents_missing (required.c).
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "office.h"


/* One enrolment as JSON, by id (the $1 parameter). */
#define GCHO_ENROL_JSON                                                      \
    "json_build_object('id', e.id, 'child_id', e.child_id,"                  \
    " 'child_first_name', c.first_name, 'family_id', c.family_id,"           \
    " 'family_login', (select f.login from family f"                         \
    "   where f.id = c.family_id),"                                          \
    " 'activity_id', e.activity_id, 'activity_name', a.name,"                \
    " 'from', e.from_date, 'to', e.to_date, 'status', e.status,"             \
    " 'origin', e.origin, 'reason', e.reason,"                               \
    " 'requested_at', e.requested_at, 'decided_at', e.decided_at,"           \
    " 'decided_by', e.decided_by)"

#define GCHO_ENROL_FROM                                                      \
    " from enrolment e join child c on c.id = e.child_id"                    \
    " join activity a on a.id = e.activity_id"


/* Runs sql (one row, one JSON text column) and answers it with status. */
static int
gcho_enrol_json(gcho_req_t *rq, int status, const char *sql, int n,
    const char *const *p)
{
    return gcho_reply_row(rq, status, sql, n, p,
                          "Cette inscription n'existe pas.");
}


/* A "YYYY-MM-DD" field: 0, or -1 after answering 400 invalid_field. */
static int
gcho_enrol_date(gcho_req_t *rq, const char *field, const gch_jnode_t *v,
    char out[11], gch_day_t *d)
{
    char  msg[96];

    if (gcho_str(rq, field, v, out, 11, 10) != 0) {
        return -1;
    }

    if (gch_day_parse(d, out, 10) != GCH_OK) {
        snprintf(msg, sizeof(msg), "Le champ %s doit être une date "
                 "AAAA-MM-JJ.", field);
        gcho_error(rq, 400, "invalid_field", msg);
        return -1;
    }

    return 0;
}


/* GET /api/enrolments */
static int
gcho_enrol_list(gcho_req_t *rq)
{
    const char  *p[1];

    p[0] = rq->family_id;

    return gcho_enrol_json(rq, 200,
        "select json_build_object('enrolments', coalesce(json_agg("
        GCHO_ENROL_JSON " order by e.from_date, e.id), '[]'))"
        GCHO_ENROL_FROM " where c.family_id = $1", 1, p);
}


static const gch_jfield_t  gcho_enrol_fields[] = {
    { "child_id", GCH_J_STRING, 1 },
    { "activity_id", GCH_J_STRING, 1 },
    { "from", GCH_J_STRING, 1 },
    { "to", GCH_J_STRING, 1 }
};


/* The request's body: child, activity and days (from <= to). */
static int
gcho_enrol_body(gcho_req_t *rq, char *child, char *act, char *from,
    char *to)
{
    int                 rc;
    gch_day_t           df, dt;
    gch_json_t          doc;
    const gch_jnode_t  *v[4];

    if (gcho_body_json(rq, &doc, gcho_enrol_fields, 4, v) != 0) {
        return 0;
    }

    rc = gcho_str(rq, "child_id", v[0], child, GCHO_ID_MAX, 1) != 0
         || gcho_str(rq, "activity_id", v[1], act, GCHO_ID_MAX, 1) != 0
         || gcho_enrol_date(rq, "from", v[2], from, &df) != 0
         || gcho_enrol_date(rq, "to", v[3], to, &dt) != 0;

    gch_json_free(&doc);

    if (rc) {
        return 0;
    }

    if (dt < df) {
        return gcho_error(rq, 400, "invalid_field",
                          "Le champ to est avant from.");
    }

    return GCHO_GO;
}


/* In the transaction: the activity exists (name: its name) and no open
 * request or validated enrolment of the child covers the same days
 * (p: child, activity, from, to). */
static int
gcho_enrol_free(gcho_req_t *rq, const char *const *p, char *name,
    size_t size)
{
    int        rc;

    rc = gcho_sql_value(rq, name, size,
                        "select name from activity where id = $1", 1, p + 1);
    if (rc < 0) {
        return 0;
    }

    if (rc == 0) {
        gcho_rollback();
        return gcho_error(rq, 400, "invalid_field",
                          "Le champ activity_id ne désigne aucune activité.");
    }

    rc = gcho_sql_exists(rq, "select id from enrolment"
                             " where child_id = $1 and activity_id = $2"
                             " and status in ('demandee', 'validee')"
                             " and daterange(from_date, to_date, '[]') &&"
                             "     daterange($3::date, $4::date, '[]')"
                             " for update", 4, p);
    if (rc < 0) {
        return 0;
    }

    if (rc != 0) {
        gcho_rollback();
        return gcho_error(rq, 409, "already_requested",
                          "Une demande ou une inscription couvre déjà cette "
                          "période pour cet enfant et cette activité.");
    }

    return GCHO_GO;
}


/* In the transaction: the request (p: child, activity, from, to); a
 * refused one with the same first day is asked again.  rq->param[0] its
 * id; body the e-mail to the family about the activity name, ref its ref
 * (one per request). */
static int
gcho_enrol_insert(gcho_req_t *rq, const char *const *p, const char *name,
    char *body, size_t bsize, char *ref, size_t rsize)
{
    PGresult  *res;

    res = gcho_sql(rq,
        "insert into enrolment (child_id, activity_id, from_date, to_date,"
        "   status, origin, requested_at)"
        " values ($1, $2, $3, $4, 'demandee', 'office', now())"
        " on conflict (child_id, activity_id, from_date) do update"
        "   set to_date = excluded.to_date, status = 'demandee',"
        "   origin = 'office', reason = null, requested_at = now(),"
        "   decided_at = null, decided_by = null"
        " where enrolment.status = 'refusee'"
        " returning id, (select first_name from child where id = $1),"
        "   (extract(epoch from requested_at) * 1000000)::bigint",
        4, p);
    if (res == NULL) {
        return 0;
    }

    if (PQntuples(res) != 1) {
        PQclear(res);
        gcho_rollback();
        return gcho_error(rq, 409, "already_requested",
                          "Une demande ou une inscription couvre déjà cette "
                          "période pour cet enfant et cette activité.");
    }

    snprintf(rq->param[0], GCHO_ID_MAX, "%s", PQgetvalue(res, 0, 0));
    snprintf(body, bsize,
             "Bonjour,\n\nVotre demande d'inscription de %s à « %s » du %s "
             "au %s a bien été déposée.  Les services de la commune vont "
             "l'examiner ; vous recevrez un message à chaque étape.\n",
             PQgetvalue(res, 0, 1), name, p[2], p[3]);
    snprintf(ref, rsize, "%s:%s", PQgetvalue(res, 0, 0),
             PQgetvalue(res, 0, 2));
    PQclear(res);

    return GCHO_GO;
}


/* POST /api/enrolments {child_id, activity_id, from, to} */
static int
gcho_enrol_create(gcho_req_t *rq)
{
    int           rc;
    char          child[GCHO_ID_MAX], act[GCHO_ID_MAX];
    char          from[11], to[11], body[512], name[160], ref[160];
    char          target[GCHO_ID_MAX + 16];
    const char   *p[5];

    rc = gcho_enrol_body(rq, child, act, from, to);
    if (rc != GCHO_GO) {
        return rc;
    }

    if (gcho_begin(rq) != 0) {
        return 0;
    }

    p[0] = child;
    p[1] = act;
    p[2] = from;
    p[3] = to;

    rc = gcho_family_child(rq, child);
    if (rc == GCHO_GO) {
        rc = gcho_family_pending(rq, rq->family_id);
    }
    if (rc == GCHO_GO) {
        rc = gcho_enrol_free(rq, p, name, sizeof(name));
    }
    if (rc == GCHO_GO) {
        rc = gcho_required_missing(rq, child, act, from);
    }
    if (rc == GCHO_GO) {
        rc = gcho_enrol_insert(rq, p, name, body, sizeof(body), ref,
                               sizeof(ref));
    }
    if (rc != GCHO_GO) {
        return rc;
    }

    p[0] = rq->param[0];
    snprintf(target, sizeof(target), "enrolment:%s", rq->param[0]);

    if (gcho_audit(rq, "enrolment.request", target, NULL) != 0
        || gcho_mail(rq, rq->family_id, "enrolment_deposee", ref,
                     "Demande d'inscription déposée", body) != 0
        || gcho_catalogue_changed(rq) != 0
        || gcho_commit(rq) != 0)
    {
        return 0;
    }

    return gcho_enrol_json(rq, 201,
        "select " GCHO_ENROL_JSON GCHO_ENROL_FROM " where e.id = $1", 1, p);
}


/* GET /api/staff/enrolments?status=demandee&family_id= */
static int
gcho_enrol_staff_list(gcho_req_t *rq)
{
    const char  *p[2], *st;

    st = gcho_query(rq, "status");
    if (st != NULL && strcmp(st, "demandee") != 0
        && strcmp(st, "validee") != 0 && strcmp(st, "refusee") != 0)
    {
        return gcho_error(rq, 400, "invalid_field",
                          "Le paramètre status vaut demandee, validee ou "
                          "refusee.");
    }

    p[0] = st;
    p[1] = gcho_query(rq, "family_id");

    return gcho_enrol_json(rq, 200,
        "select json_build_object('enrolments', coalesce(json_agg("
        GCHO_ENROL_JSON " order by e.requested_at nulls last, e.id), '[]'))"
        GCHO_ENROL_FROM
        " where ($1::text is null or e.status = $1)"
        " and ($2::text is null or c.family_id = $2)", 2, p);
}


static const gch_jfield_t  gcho_decision_fields[] = {
    { "decision", GCH_J_STRING, 1 },
    { "reason", GCH_J_STRING | GCH_J_NULL, 0 }
};


static const gcho_decision_t  gcho_enrol_decision = {
    "enrolment",
    "update enrolment set status = $2, reason = $3,"
    "   decided_at = now(), decided_by = $4"
    " where id = $1"
    " returning (extract(epoch from decided_at) * 1000000)::bigint",
    4, 3,
    { "enrolment_validee", "enrolment_refusee" },
    { "Inscription validée", "Demande d'inscription refusée" },
    { 1, 1 }
};


/* POST /api/staff/enrolments/{id}/decision {decision, reason} */
static int
gcho_enrol_decide(gcho_req_t *rq)
{
    int                 rc, refused;
    char                decision[16], reason[1024], body[1600];
    PGresult           *res;
    gch_json_t          doc;
    const char         *p[4], *kv[6];
    const gch_jnode_t  *v[2];

    if (strspn(rq->param[0], "0123456789") != strlen(rq->param[0])
        || strlen(rq->param[0]) > 18)
    {
        return gcho_error(rq, 404, "not_found",
                          "Cette inscription n'existe pas.");
    }

    if (gcho_body_json(rq, &doc, gcho_decision_fields, 2, v) != 0) {
        return 0;
    }

    rc = gcho_str(rq, "decision", v[0], decision, sizeof(decision), 1) != 0
         || gcho_str(rq, "reason", v[1], reason, sizeof(reason), 0) != 0;

    gch_json_free(&doc);

    if (rc) {
        return 0;
    }

    refused = gcho_decision_word(rq, decision, "validee", reason);
    if (refused < 0) {
        return 0;
    }

    res = gcho_decision_open(rq,
              "select e.status, c.family_id, c.first_name, a.name,"
              "   to_char(e.from_date, 'DD/MM/YYYY'),"
              "   to_char(e.to_date, 'DD/MM/YYYY')"
              GCHO_ENROL_FROM " where e.id = $1"
              " for update of e", "demandee",
              "Cette inscription n'existe pas.",
              "Cette demande a déjà été traitée.");
    if (res == NULL) {
        return 0;
    }

    if (refused) {
        snprintf(body, sizeof(body),
                 "Bonjour,\n\nVotre demande d'inscription de %s à « %s » du "
                 "%s au %s a été refusée.\n\nMotif : %s\n",
                 PQgetvalue(res, 0, 2), PQgetvalue(res, 0, 3),
                 PQgetvalue(res, 0, 4), PQgetvalue(res, 0, 5), reason);
    } else {
        snprintf(body, sizeof(body),
                 "Bonjour,\n\nVotre demande d'inscription de %s à « %s » du "
                 "%s au %s a été validée : vous pouvez réserver les "
                 "séances de cette période.\n%s%s",
                 PQgetvalue(res, 0, 2), PQgetvalue(res, 0, 3),
                 PQgetvalue(res, 0, 4), PQgetvalue(res, 0, 5),
                 reason[0] ? "\nCommentaire : " : "", reason);
    }
    PQclear(res);

    p[0] = rq->param[0];
    p[1] = decision;
    p[2] = reason[0] ? reason : NULL;
    p[3] = rq->staff;

    kv[0] = "decision";
    kv[1] = decision;
    kv[2] = "reason";
    kv[3] = reason;
    kv[4] = "family_id";
    kv[5] = rq->family_id;

    if (gcho_decision_close(rq, &gcho_enrol_decision, refused, p, kv, body)
        != 0)
    {
        return 0;
    }

    return gcho_enrol_json(rq, 200,
        "select " GCHO_ENROL_JSON GCHO_ENROL_FROM " where e.id = $1", 1, p);
}


const gcho_route_t  gcho_enrolment_routes[] = {
    { "GET", "/api/enrolments", GCHO_FAMILY, 0, 0, gcho_enrol_list },
    { "POST", "/api/enrolments", GCHO_FAMILY, 0, GCHO_BODY_JSON,
      gcho_enrol_create },
    { "GET", "/api/staff/enrolments", GCHO_STAFF, GCHO_AGENT, 0,
      gcho_enrol_staff_list },
    { "POST", "/api/staff/enrolments/*/decision", GCHO_STAFF, GCHO_AGENT,
      GCHO_BODY_JSON, gcho_enrol_decide },
    { NULL, NULL, 0, 0, 0, NULL }
};
