/*
 * notice.c -- what the town tells many families at once (issue 26): a
 * message thread opened to one family or to every family of an
 * activity, and the e-mails it schedules (reminders: booking opens soon,
 * a deadline near, invoices due, or its own text).
 *
 * Both are set-based statements in one transaction with their audit row:
 * the families concerned are those with a validated enrolment in the
 * activity that has not ended (not archived), or, for invoices due,
 * those with an unpaid invoice past its due date.  E-mails go through the
 * outbox (guichet-worker's mail.c sends them when due, 50 a second at
 * most); (kind, ref) is unique, so a family gets each message and each
 * reminder once.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "office.h"


/* The families an activity concerns ($1 the activity). */
#define GCHO_NOTICE_FAMILIES                                                 \
    "select distinct c.family_id from enrolment e"                           \
    " join child c on c.id = e.child_id"                                     \
    " join family f on f.id = c.family_id"                                   \
    " where e.activity_id = $1 and e.status = 'validee'"                     \
    "   and e.to_date >= (now() at time zone 'Europe/Paris')::date"          \
    "   and f.archived_at is null"


/* After "with fams as (...),": a thread per family, its first message,
 * its e-mail; one row: the number of threads and the answer's JSON.
 * $2 service, $3 subject, $4 the agent, $5 body, $6 site_url, $7 theme
 * (null: none). */
#define GCHO_NOTICE_THREADS                                                  \
    " th as (insert into message_thread (family_id, service, subject,"       \
    "   theme) select family_id, $2, $3, $7 from fams"                       \
    "   returning id, family_id),"                                           \
    " ms as (insert into message (thread_id, from_staff, body)"              \
    "   select id, $4, $5 from th returning id, thread_id),"                 \
    " mails as (insert into outbox (family_id, kind, ref, subject, body)"    \
    "   select th.family_id, 'message', ms.id::text,"                        \
    "     'Nouveau message de la mairie : ' || $3,"                          \
    "     'Bonjour,' || E'\\n\\n' || 'Les services de la mairie vous'"       \
    "     || ' ont écrit dans votre Espace Famille (rubrique Messagerie).'"  \
    "     || E'\\n\\n' || $6 || '/#/messagerie?fil=' || th.id || E'\\n'"    \
    "   from th join ms on ms.thread_id = th.id returning 1)"                \
    " select (select count(*) from th),"                                     \
    "   json_build_object('threads', (select count(*) from th),"             \
    "     'sent', (select count(*) from mails),"                             \
    "     'families', (select coalesce(json_agg(family_id"                   \
    "       order by family_id), '[]') from th))::text"

/* A reminder r as JSON ("sent": its e-mails already sent). */
#define GCHO_NOTICE_JSON                                                     \
    "json_build_object('id', r.id, 'kind', r.kind,"                          \
    "  'activity_id', r.activity_id, 'send_at', r.send_at,"                  \
    "  'subject', r.subject, 'body', r.body, 'families', r.families,"        \
    "  'sent', (select count(*) from outbox o where o.kind = 'reminder'"     \
    "    and o.ref like r.id || ':%' and o.sent_at is not null),"            \
    "  'created_by', r.created_by, 'created_at', r.created_at,"              \
    "  'cancelled_at', r.cancelled_at)"

#define GCHO_NOTICE_ONE  "select " GCHO_NOTICE_JSON " from reminder r"


/* A string member of 1..max characters into a malloc'ed copy; NULL after
 * answering 400 (or 500). */
static char *
gcho_notice_text(gcho_req_t *rq, const char *name, const gch_jnode_t *v,
    size_t max)
{
    char   *out, msg[128];
    size_t  size;

    size = 4 * max + 1;
    out = malloc(size);
    if (out == NULL) {
        gcho_error(rq, 500, "internal", "Une erreur interne est survenue.");
        return NULL;
    }

    if (gcho_str(rq, name, v, out, size, 1) != 0) {
        free(out);
        return NULL;
    }

    if (strlen(out) > max && gch_utf8_ok((const unsigned char *) out,
                                         strlen(out)))
    {
        size_t  i, n;

        for (i = 0, n = 0; out[i]; i++) {
            n += ((unsigned char) out[i] & 0xc0) != 0x80;
        }
        if (n > max) {
            snprintf(msg, sizeof(msg), "$.%s : au plus %zu caractères",
                     name, max);
            free(out);
            gcho_error(rq, 400, "invalid_field", msg);
            return NULL;
        }
    }

    return out;
}


/*
 * POST /api/staff/threads: {"family_id" | "activity_id", "service", "theme"
 * (optional; the town's list, message.c), "subject", "body"}: a thread opened
 * to the family, or to every family of the activity, its first message
 * from the agent, an e-mail to each.  201 {"threads", "families"}.
 */
static int
gcho_notice_threads(gcho_req_t *rq)
{
    static const gch_jfield_t  f[] = {
        { "family_id", GCH_J_STRING, 0 },
        { "activity_id", GCH_J_STRING, 0 },
        { "service", GCH_J_STRING, 1 },
        { "subject", GCH_J_STRING, 1 },
        { "body", GCH_J_STRING, 1 },
        { "theme", GCH_J_STRING | GCH_J_NULL, 0 },
    };

    int                 rc;
    char                who[GCHO_ID_MAX], service[40], theme[40], *subject;
    char               *body;
    PGresult           *res;
    gch_json_t          doc;
    const char         *p[7], *kv[6];
    const gch_jnode_t  *v[6];

    if (gcho_body_json(rq, &doc, f, 6, v) != 0) {
        return 0;
    }

    subject = body = NULL;
    rc = 0;

    if ((v[0] == NULL) == (v[1] == NULL)) {
        gcho_error(rq, 400, "invalid_field", "$.family_id, $.activity_id "
                   ": l'un ou l'autre");
        goto done;
    }

    if (gcho_str(rq, v[0] ? "family_id" : "activity_id", v[0] ? v[0] : v[1],
                 who, sizeof(who), 1) != 0
        || gcho_str(rq, "service", v[2], service, sizeof(service), 1) != 0
        || gcho_str(rq, "theme", v[5] && v[5]->type == GCH_J_STRING
                                 ? v[5] : NULL, theme, sizeof(theme), 0)
           != 0
        || gcho_msg_topic(rq, service, theme, 1) != 0)
    {
        goto done;
    }

    subject = gcho_notice_text(rq, "subject", v[3], 200);
    body = subject ? gcho_notice_text(rq, "body", v[4], 5000) : NULL;
    if (body == NULL) {
        goto done;
    }

    if (gcho_begin(rq) != 0) {
        goto done;
    }

    p[0] = who;
    p[1] = service;
    p[2] = subject;
    p[3] = rq->staff;
    p[4] = body;
    p[5] = gcho_ctx.conf.site_url ? gcho_ctx.conf.site_url : "";
    p[6] = theme[0] ? theme : NULL;
    res = gcho_sql(rq, v[0]
        ? "with fams as (select id family_id from family where id = $1"
          "   and archived_at is null),"
          GCHO_NOTICE_THREADS
        : "with fams as (" GCHO_NOTICE_FAMILIES "),"
          GCHO_NOTICE_THREADS, 7, p);
    if (res == NULL) {
        goto done;
    }

    if (PQntuples(res) != 1 || strcmp(PQgetvalue(res, 0, 0), "0") == 0) {
        PQclear(res);
        gcho_rollback();
        gcho_error(rq, 404, "not_found", v[0]
                   ? "Cette famille n'existe pas (ou est archivée)."
                   : "Aucune famille n'est inscrite à cette activité.");
        goto done;
    }

    kv[0] = v[0] ? "family_id" : "activity_id";
    kv[1] = who;
    kv[2] = "threads";
    kv[3] = PQgetvalue(res, 0, 0);
    kv[4] = "subject";
    kv[5] = subject;

    {
        char  target[GCHO_ID_MAX + 16];

        snprintf(target, sizeof(target), "%s:%s",
                 v[0] ? "family" : "activity", who);
        if (gcho_audit_kv(rq, "message.open", target, kv, 3) != 0
            || gcho_commit(rq) != 0)
        {
            PQclear(res);
            goto done;
        }
    }

    rc = gcho_reply(rq, 201, PQgetvalue(res, 0, 1), PQgetlength(res, 0, 1));
    PQclear(res);

done:

    gch_json_free(&doc);
    free(subject);
    free(body);

    return rc;
}


/*
 * POST /api/staff/reminders: {"kind": "opening" | "deadline" |
 * "invoice_due" | "custom", "activity_id" (not for invoice_due),
 * "send_at": RFC 3339, "subject", "body"} (subject and body have a
 * default per kind but custom).  201 the reminder.
 */
static int
gcho_notice_remind(gcho_req_t *rq)
{
    static const gch_jfield_t  f[] = {
        { "kind", GCH_J_STRING, 1 },
        { "activity_id", GCH_J_STRING, 0 },
        { "send_at", GCH_J_STRING, 1 },
        { "subject", GCH_J_STRING, 0 },
        { "body", GCH_J_STRING, 0 },
    };

    int                 rc, due;
    char                kind[16], act[GCHO_ID_MAX], when[26], *subject,
                        *body, id[32];
    int64_t             at;
    PGresult           *res;
    gch_json_t          doc;
    const char         *p[7], *kv[4];
    const gch_jnode_t  *v[5];

    if (gcho_body_json(rq, &doc, f, 5, v) != 0) {
        return 0;
    }

    subject = body = NULL;
    rc = 0;
    act[0] = '\0';

    if (gcho_str(rq, "kind", v[0], kind, sizeof(kind), 1) != 0) {
        goto done;
    }

    if (strcmp(kind, "opening") && strcmp(kind, "deadline")
        && strcmp(kind, "invoice_due") && strcmp(kind, "custom"))
    {
        gcho_error(rq, 400, "invalid_field", "$.kind : « opening », "
                   "« deadline », « invoice_due » ou « custom »");
        goto done;
    }

    due = strcmp(kind, "invoice_due") == 0;
    if (due != (v[1] == NULL)) {
        gcho_error(rq, 400, "invalid_field", due
                   ? "$.activity_id : pas pour les factures à payer"
                   : "$.activity_id : champ obligatoire manquant");
        goto done;
    }

    if ((v[1] && gcho_str(rq, "activity_id", v[1], act, sizeof(act), 1))
        || gch_instant_parse(&at, v[2]->str, v[2]->len) != 0)
    {
        if (rq->out == NULL) {
            gcho_error(rq, 400, "invalid_field", "$.send_at : instant "
                       "invalide (RFC 3339, ex. 2027-06-07T18:00:00+02:00)");
        }
        goto done;
    }
    gch_instant_format(at, when);

    if (strcmp(kind, "custom") == 0 && (v[3] == NULL || v[4] == NULL)) {
        gcho_error(rq, 400, "invalid_field", "$.subject, $.body : "
                   "obligatoires pour un rappel « custom »");
        goto done;
    }

    if ((v[3] && (subject = gcho_notice_text(rq, "subject", v[3], 200))
                 == NULL)
        || (v[4] && (body = gcho_notice_text(rq, "body", v[4], 5000))
                    == NULL))
    {
        goto done;
    }

    if (gcho_begin(rq) != 0) {
        goto done;
    }

    p[0] = act[0] ? act : NULL;
    p[1] = kind;
    p[2] = when;
    p[3] = subject;
    p[4] = body;
    p[5] = rq->staff;
    p[6] = gcho_ctx.conf.site_url ? gcho_ctx.conf.site_url : "";

    res = gcho_sql(rq,
        "with a as (select $1::text aid, (select name from activity"
        "   where id = $1) name,"
        "   (select to_char(booking_opens_at at time zone 'Europe/Paris',"
        "     'DD/MM/YYYY \"à\" HH24\"h\"MI') from activity"
        "     where id = $1) opens),"
        " fams as (select family_id from (" GCHO_NOTICE_FAMILIES ") x"
        "   where $2 <> 'invoice_due'"
        "   union select distinct i.family_id from invoice i"
        "   join family f on f.id = i.family_id"
        "   where $2 = 'invoice_due' and not i.paid"
        "     and i.due_date < (now() at time zone 'Europe/Paris')::date"
        "     and f.archived_at is null),"
        " t as (select coalesce($4, case $2"
        "     when 'opening' then 'Les réservations de « ' || a.name"
        "       || ' » ouvrent bientôt'"
        "     when 'deadline' then 'Pensez à réserver : « ' || a.name"
        "       || ' »'"
        "     else 'Des factures restent à payer' end) subject,"
        "   coalesce($5, case $2"
        "     when 'opening' then 'Bonjour,' || E'\\n\\n'"
        "       || 'Les réservations de « ' || a.name || ' » ouvrent le '"
        "       || coalesce(a.opens, '(date à venir)') || ' dans votre'"
        "       || ' Espace Famille.'"
        "     when 'deadline' then 'Bonjour,' || E'\\n\\n'"
        "       || 'La date limite de réservation des séances de la semaine'"
        "       || ' prochaine de « ' || a.name || ' » approche : pensez à'"
        "       || ' réserver dans votre Espace Famille.'"
        "     else 'Bonjour,' || E'\\n\\n' || 'Une ou plusieurs factures'"
        "       || ' de votre famille sont échues : vous pouvez les payer'"
        "       || ' en ligne dans votre Espace Famille ou au guichet.'"
        "     end) || E'\\n\\n' || $7 || '/' body from a),"
        " r as (insert into reminder (kind, activity_id, send_at, subject,"
        "     body, families, created_by)"
        "   select $2, $1, $3::timestamptz, t.subject, t.body,"
        "     (select count(*) from fams), $6 from t"
        "   where $1::text is null or exists (select 1 from activity"
        "     where id = $1)"
        "   returning id, subject, body, send_at),"
        " o as (insert into outbox (family_id, kind, ref, subject, body,"
        "     next_attempt_at)"
        "   select fams.family_id, 'reminder', r.id || ':'"
        "     || fams.family_id, r.subject, r.body, r.send_at"
        "   from r, fams returning 1)"
        " select r.id, (select count(*) from o) from r", 7, p);
    if (res == NULL) {
        goto done;
    }

    if (PQntuples(res) != 1) {
        PQclear(res);
        gcho_rollback();
        gcho_error(rq, 404, "not_found", "Cette activité n'existe pas.");
        goto done;
    }

    snprintf(id, sizeof(id), "%s", PQgetvalue(res, 0, 0));
    kv[0] = "kind";
    kv[1] = kind;
    kv[2] = "families";
    kv[3] = PQgetvalue(res, 0, 1);

    {
        char  target[48];

        snprintf(target, sizeof(target), "reminder:%s", id);
        if (gcho_audit_kv(rq, "reminder.create", target, kv, 2) != 0
            || gcho_commit(rq) != 0)
        {
            PQclear(res);
            goto done;
        }
    }
    PQclear(res);

    p[0] = id;
    rc = gcho_reply_row(rq, 201, GCHO_NOTICE_ONE " where r.id = $1", 1, p,
                        "Rappel introuvable.");

done:

    gch_json_free(&doc);
    free(subject);
    free(body);

    return rc;
}


/* GET /api/staff/reminders: the 200 newest. */
static int
gcho_notice_list(gcho_req_t *rq)
{
    return gcho_reply_row(rq, 200,
        "select json_build_object('reminders', coalesce(json_agg(x.j"
        "   order by x.id desc), '[]'))"
        " from (select r.id, (" GCHO_NOTICE_JSON ") j from reminder r"
        "   order by r.id desc limit 200) x", 0, NULL, "");
}


/* DELETE /api/staff/reminders/{id}: the e-mails not sent yet are
 * dropped.  200 the reminder. */
static int
gcho_notice_cancel(gcho_req_t *rq)
{
    int          rc;
    PGresult    *res;
    const char  *p[1];

    if (gcho_begin(rq) != 0) {
        return 0;
    }

    p[0] = rq->param[0];
    rc = gcho_sql_row(rq, &res,
                      "Ce rappel n'existe pas (ou est déjà annulé).",
                      "update reminder set cancelled_at = now()"
                      " where id::text = $1 and cancelled_at is null"
                      " returning id", 1, p);
    if (rc != GCHO_GO) {
        return rc;
    }
    PQclear(res);

    if (gcho_sql_do(rq, "delete from outbox where kind = 'reminder'"
                        " and sent_at is null and ref like $1 || ':%'",
                    1, p) != 0)
    {
        return 0;
    }

    {
        char  target[GCHO_ID_MAX + 16];

        snprintf(target, sizeof(target), "reminder:%s", rq->param[0]);
        if (gcho_audit(rq, "reminder.cancel", target, NULL) != 0
            || gcho_commit(rq) != 0)
        {
            return 0;
        }
    }

    return gcho_reply_row(rq, 200, GCHO_NOTICE_ONE " where r.id::text = $1",
                          1, p, "Ce rappel n'existe pas.");
}


const gcho_route_t  gcho_notice_routes[] = {
    { "POST", "/api/staff/threads", GCHO_STAFF, GCHO_AGENT,
      GCHO_BODY_JSON, gcho_notice_threads },
    { "POST", "/api/staff/reminders", GCHO_STAFF, GCHO_REGIE,
      GCHO_BODY_JSON, gcho_notice_remind },
    { "GET", "/api/staff/reminders", GCHO_STAFF, GCHO_AGENT, 0,
      gcho_notice_list },
    { "DELETE", "/api/staff/reminders/*", GCHO_STAFF, GCHO_REGIE, 0,
      gcho_notice_cancel },
    { NULL, NULL, 0, 0, 0, NULL }
};
