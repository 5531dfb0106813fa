/*
 * absence.c -- guichet-office: justified absences examined by the town,
 * and the reasons the town accepts (issue 25, docs/rules.md "Justified
 * absences").
 *
 *   family   GET  /api/absence-reasons        the town's reasons
 *            GET  /api/justifications         the family's justifications
 *   staff    GET  /api/staff/absences?status=en_examen|acceptee|refusee
 *            POST /api/staff/absences/{booking_id}/decision
 *                 {"decision": "acceptee" | "refusee", "reason"}
 *            GET  /api/staff/absence-reasons
 *            PUT  /api/staff/absence-reasons  admin: {"reasons": [{"code",
 *                 "label", "proof_required"}]}
 *
 * A family justifies an absence with the module's POST /api/absences
 * (engine/src/absence.c): the worker records the justification
 * (booking_justification, migration 0101) en_examen, billed as the
 * booking is.  An agent accepts it -- booking.justified, which the
 * invoicing reads, in the same transaction -- or refuses it with a
 * reason: the booking stays billed, and the family gets a thread in the
 * messagerie and an e-mail.  Each decision is one transaction under the
 * row's lock (gcho_decision_open: 409 `already_decided` the second time),
 * audited (absence.decision).
 *
 * The reasons are published into Redis by guichet-worker's publisher
 * ({T}:absence_reasons): a change marks the catalogue changed.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "office.h"


#define GCHO_REASONS_MAX  20

#define GCHO_ABS_FROM                                                        \
    " from booking_justification j"                                          \
    " left join booking b on b.id = j.booking_id"                            \
    " left join session s on s.id = b.session_id"                            \
    " left join activity a on a.id = s.activity_id"                          \
    " left join child c on c.id = b.child_id"

#define GCHO_ABS_JSON                                                        \
    "json_build_object('booking_id', j.booking_id,"                          \
    " 'family_id', j.family_id, 'family_login', (select f.login"             \
    "   from family f where f.id = j.family_id),"                            \
    " 'child_first_name', c.first_name, 'activity', a.name,"                 \
    " 'date', s.date, 'unit', s.unit_code,"                                  \
    " 'reason', j.reason, 'reason_label', (select r.label"                   \
    "   from absence_reason r where r.code = j.reason),"                     \
    " 'document_id', j.document_id, 'document_filename', (select d.filename" \
    "   from document d where d.id::text = j.document_id),"                  \
    " 'status', j.status, 'refusal_reason', j.refusal_reason,"               \
    " 'justified_at', j.justified_at, 'decided_at', j.decided_at,"           \
    " 'decided_by', j.decided_by,"                                           \
    " 'invoiced', exists (select 1 from invoice_line l"                      \
    "   where l.booking_id = j.booking_id))"

#define GCHO_REASONS_JSON(where, extra)                                      \
    "select json_build_object('reasons', coalesce(json_agg("                 \
    " json_build_object('code', r.code, 'label', r.label,"                   \
    "  'proof_required', r.proof_required" extra ")"                         \
    " order by r.position, r.code), '[]'::json))"                            \
    " from absence_reason r" where


static const char  gcho_abs_missing[] =
    "Cette justification d'absence n'existe pas.";


/* GET /api/absence-reasons */
static int
gcho_abs_reasons(gcho_req_t *rq)
{
    return gcho_reply_row(rq, 200, GCHO_REASONS_JSON(" where r.active", ""),
                          0, NULL, gcho_abs_missing);
}


/* GET /api/staff/absence-reasons */
static int
gcho_abs_staff_reasons(gcho_req_t *rq)
{
    return gcho_reply_row(rq, 200,
                          GCHO_REASONS_JSON("", ", 'active', r.active"),
                          0, NULL, gcho_abs_missing);
}


/* GET /api/justifications: the family's justifications, newest first */
static int
gcho_abs_list(gcho_req_t *rq)
{
    const char  *p[1];

    p[0] = rq->family_id;

    return gcho_reply_row(rq, 200,
        "select json_build_object('absences', coalesce(json_agg(x.o"
        "   order by x.at desc, x.id desc), '[]'::json))"
        " from (select " GCHO_ABS_JSON " o, j.justified_at at,"
        "   j.booking_id id" GCHO_ABS_FROM
        "   where j.family_id = $1"
        "   order by j.justified_at desc limit 200) x",
        1, p, gcho_abs_missing);
}


/* GET /api/staff/absences?status=: pending ones oldest first, decided
 * ones newest first (200 at most) */
static int
gcho_abs_staff_list(gcho_req_t *rq)
{
    const char  *status, *p[1];

    status = gcho_query(rq, "status");
    status = status && status[0] ? status : "en_examen";

    if (strcmp(status, "en_examen") != 0 && strcmp(status, "acceptee") != 0
        && strcmp(status, "refusee") != 0)
    {
        return gcho_error(rq, 400, "invalid_field", "Le paramètre status "
                          "vaut en_examen, acceptee ou refusee.");
    }

    p[0] = status;

    return gcho_reply_row(rq, 200,
        "select json_build_object('absences', coalesce(json_agg(x.o"
        "   order by x.n), '[]'::json))"
        " from (select " GCHO_ABS_JSON " o, row_number() over (order by"
        "   case when $1 = 'en_examen' then j.justified_at end,"
        "   coalesce(j.decided_at, j.justified_at) desc, j.booking_id) n"
        GCHO_ABS_FROM
        "   where j.status = $1"
        "   order by n limit 200) x",
        1, p, gcho_abs_missing);
}


static const gcho_decision_t  gcho_abs_decision = {
    "absence",
    "with d as (update booking_justification set status = $2,"
    "   refusal_reason = $3, decided_at = now(), decided_by = $4"
    "   where booking_id = $1 returning decided_at, status),"
    " b as (update booking set justified = true"
    "   where id = $1 and (select status from d) = 'acceptee'"
    "   returning 1)"
    " select (extract(epoch from decided_at) * 1000000)::bigint from d",
    4, 4,
    { "absence_acceptee", "absence_refusee" },
    { "Justificatif d'absence accepté", "Justificatif d'absence refusé" },
    { 0, 0 }
};


/*
 * The refusal's message to the family, in the decision's transaction: a
 * thread of the Régie (else the town's first service) from the agent.
 * Its id in tid; 0, or -1 after answering.
 */
static int
gcho_abs_refusal_thread(gcho_req_t *rq, const char *text, char tid[24])
{
    int          rc;
    const char  *p[3];

    p[0] = rq->family_id;
    p[1] = rq->staff;
    p[2] = text;

    rc = gcho_sql_value(rq, tid, 24,
        "with t as (insert into message_thread (family_id, service,"
        "   subject)"
        "   select $1, code, 'Justificatif d''absence refusé'"
        "   from message_service order by code = 'regie' desc,"
        "   active desc, position, code limit 1 returning id),"
        " m as (insert into message (thread_id, from_staff, body)"
        "   select id, $2, $3 from t returning thread_id)"
        " select thread_id from m", 3, p);
    if (rc < 0) {
        return -1;
    }

    if (rc == 0) {
        gcho_rollback();
        gcho_error(rq, 409, "no_town", "La messagerie de la commune n'a "
                   "aucun service.");
        return -1;
    }

    return 0;
}


/* POST /api/staff/absences/{booking_id}/decision */
static int
gcho_abs_decide(gcho_req_t *rq)
{
    static const gch_jfield_t  f[] = {
        { "decision", GCH_J_STRING, 1 },
        { "reason", GCH_J_STRING | GCH_J_NULL, 0 },
    };

    int                 rc, refused;
    char                decision[16], reason[1024], what[512], tid[24];
    char                text[2048], body[2600];
    PGresult           *res;
    gch_json_t          doc;
    const char         *p[4], *kv[8];
    const gch_jnode_t  *v[2];

    if (gcho_body_json(rq, &doc, f, 2, v) != 0) {
        return 0;
    }

    rc = gcho_str(rq, "decision", v[0], decision, sizeof(decision), 1) != 0
         || gcho_str(rq, "reason", v[1] && v[1]->type == GCH_J_STRING
                                   ? v[1] : NULL, reason, sizeof(reason), 0)
            != 0;
    gch_json_free(&doc);

    if (rc) {
        return 0;
    }

    refused = gcho_decision_word(rq, decision, "acceptee", reason);
    if (refused < 0) {
        return 0;
    }

    res = gcho_decision_open(rq,
        "select j.status, j.family_id,"
        "   format('%s, %s, le %s (motif : %s)',"
        "     coalesce(c.first_name, 'votre enfant'),"
        "     coalesce(a.name, 'activité'),"
        "     coalesce(to_char(s.date, 'DD/MM/YYYY'), '?'),"
        "     coalesce((select r.label from absence_reason r"
        "       where r.code = j.reason), j.reason))"
        GCHO_ABS_FROM
        " where j.booking_id = $1 for update of j",
        "en_examen", gcho_abs_missing,
        "Cette justification a déjà été examinée.");
    if (res == NULL) {
        return 0;
    }

    snprintf(what, sizeof(what), "%s", PQgetvalue(res, 0, 2));
    PQclear(res);

    tid[0] = '\0';

    if (refused) {
        snprintf(text, sizeof(text),
                 "Bonjour,\n\nLe justificatif de l'absence de %s n'a pas "
                 "été accepté.\n\nMotif : %s\n\nCette séance reste "
                 "facturée. Vous pouvez répondre à ce message.\n",
                 what, reason);

        if (gcho_abs_refusal_thread(rq, text, tid) != 0) {
            gcho_rollback();
            return 0;
        }

        snprintf(body, sizeof(body),
                 "%s\nVotre messagerie : %s/#/messagerie?fil=%s\n",
                 text, gcho_site_url(rq), tid);
    } else {
        snprintf(body, sizeof(body),
                 "Bonjour,\n\nLe justificatif de l'absence de %s a été "
                 "accepté : cette séance ne vous sera pas facturée.\n",
                 what);
    }

    p[0] = rq->param[0];
    p[1] = decision;
    p[2] = refused ? reason : NULL;
    p[3] = rq->staff;

    kv[0] = "decision";
    kv[1] = decision;
    kv[2] = "reason";
    kv[3] = refused ? reason : NULL;
    kv[4] = "family_id";
    kv[5] = rq->family_id;
    kv[6] = "thread_id";
    kv[7] = tid[0] ? tid : NULL;

    if (gcho_decision_close(rq, &gcho_abs_decision, refused, p, kv, body)
        != 0)
    {
        return 0;
    }

    return gcho_reply_row(rq, 200, "select " GCHO_ABS_JSON GCHO_ABS_FROM
                                   " where j.booking_id = $1", 1, p,
                          gcho_abs_missing);
}


/*
 * PUT /api/staff/absence-reasons (admin): {"reasons": [{"code", "label",
 * "proof_required"}]}, the list in its order; the reasons left out
 * become inactive.  The catalogue is marked changed: the publisher
 * writes {T}:absence_reasons, which the module checks.  200 as the
 * staff's GET; audited (absence_reasons.update).
 */
static int
gcho_abs_reasons_put(gcho_req_t *rq)
{
    static const gch_jfield_t  f[] = {
        { "reasons", GCH_J_ARRAY, 1 },
    };
    static const gch_jfield_t  rf[] = {
        { "code", GCH_J_STRING, 1 },
        { "label", GCH_J_STRING, 1 },
        { "proof_required", GCH_J_BOOL, 1 },
    };

    int                 ok;
    char                at[64], msg[200], count[12], label[4 * 80 + 1];
    size_t              i, k, n;
    gch_json_t          doc;
    const char         *p[1], *kv[2];
    const gch_jnode_t  *v[1], *e, *w[3], *codes[GCHO_REASONS_MAX];

    if (gcho_body_json(rq, &doc, f, 1, v) != 0) {
        return 0;
    }

    ok = 1;

    if (v[0]->len < 1 || v[0]->len > GCHO_REASONS_MAX) {
        gcho_error(rq, 400, "invalid_field", "$.reasons : 1 à 20 motifs");
        ok = 0;
    }

    for (e = ok ? v[0]->child : NULL, i = 0; e != NULL; e = e->next, i++) {
        snprintf(at, sizeof(at), "$.reasons[%zu]", i);

        if (gcho_json_object(rq, e, at, rf, 3, w) != 0) {
            ok = 0;
            break;
        }

        if (w[0]->len < 1 || w[0]->len > 32
            || strspn(w[0]->str, "abcdefghijklmnopqrstuvwxyz0123456789_-")
               < w[0]->len)
        {
            snprintf(msg, sizeof(msg), "%s.code : 1 à 32 lettres "
                     "minuscules, chiffres, _ ou -", at);
            gcho_error(rq, 400, "invalid_field", msg);
            ok = 0;
            break;
        }

        for (k = 0; k < i; k++) {
            if (codes[k]->len == w[0]->len
                && memcmp(codes[k]->str, w[0]->str, w[0]->len) == 0)
            {
                break;
            }
        }
        if (k < i) {
            snprintf(msg, sizeof(msg), "%s.code : déjà dans la liste", at);
            gcho_error(rq, 400, "invalid_field", msg);
            ok = 0;
            break;
        }
        codes[i] = w[0];

        n = w[1]->len < sizeof(label) ? w[1]->len : 0;
        memcpy(label, w[1]->str, n);
        label[n] = '\0';
        for (k = 0, n = 0; label[k]; k++) {
            n += ((unsigned char) label[k] & 0xc0) != 0x80;
        }
        if (label[strspn(label, " \t\r\n")] == '\0' || n > 80) {
            snprintf(msg, sizeof(msg), "%s.label : 1 à 80 caractères", at);
            gcho_error(rq, 400, "invalid_field", msg);
            ok = 0;
            break;
        }
    }

    snprintf(count, sizeof(count), "%u", ok ? v[0]->len : 0);
    gch_json_free(&doc);

    if (!ok || gcho_begin(rq) != 0) {
        return 0;
    }

    p[0] = rq->body;

    if (gcho_sql_do(rq, "update absence_reason set active = false",
                    0, NULL) != 0
        || gcho_sql_do(rq, "insert into absence_reason (code, label,"
                           "   proof_required, position, active)"
                           " select e->>'code', e->>'label',"
                           "   (e->>'proof_required')::boolean, o, true"
                           " from jsonb_array_elements($1::jsonb->'reasons')"
                           "   with ordinality x(e, o)"
                           " on conflict (code) do update set"
                           "   label = excluded.label,"
                           "   proof_required = excluded.proof_required,"
                           "   position = excluded.position, active = true",
                       1, p) != 0)
    {
        gcho_rollback();
        return 0;
    }

    kv[0] = "reasons";
    kv[1] = count;

    if (gcho_audit_kv(rq, "absence_reasons.update", "town", kv, 1) != 0
        || gcho_catalogue_changed(rq) != 0
        || gcho_commit(rq) != 0)
    {
        gcho_rollback();
        return 0;
    }

    return gcho_abs_staff_reasons(rq);
}


const gcho_route_t  gcho_absence_routes[] = {
    { "GET",  "/api/absence-reasons", GCHO_FAMILY, 0, 0, gcho_abs_reasons },
    { "GET",  "/api/justifications", GCHO_FAMILY, 0, 0, gcho_abs_list },
    { "GET",  "/api/staff/absences", GCHO_STAFF, GCHO_AGENT, 0,
      gcho_abs_staff_list },
    { "POST", "/api/staff/absences/*/decision", GCHO_STAFF, GCHO_AGENT,
      GCHO_BODY_JSON, gcho_abs_decide },
    { "GET",  "/api/staff/absence-reasons", GCHO_STAFF, GCHO_AGENT, 0,
      gcho_abs_staff_reasons },
    { "PUT",  "/api/staff/absence-reasons", GCHO_STAFF, GCHO_ADMIN,
      GCHO_BODY_JSON, gcho_abs_reasons_put },
    { NULL, NULL, 0, 0, 0, NULL }
};
