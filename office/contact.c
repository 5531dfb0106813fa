/*
 * contact.c -- guichet-office: a family's contact details (issue 25).
 *
 * The family edits its e-mail and phones at once (PUT /api/contact: the
 * e-mail in family_email, the phones in family_contact, audited
 * contact.update).  A new postal address waits for the town
 * (POST /api/contact/address): it may change the family's residence and
 * so its price band.  The family sees its request (GET /api/contact,
 * address_change); a new request replaces the one waiting (annulee).  An
 * agent validates it, saying whether the family now lives in the town, or
 * refuses it with a reason (POST /api/staff/address-changes/{id}/decision,
 * decision.c's flow: audited, e-mailed).  A validated address becomes
 * family_contact's; a residence decided sets family.resident and marks the
 * catalogue changed, so the publisher lays it over the town file
 * (worker/overlay.c) and the next bookings are priced on the right bands.
 * Tables of migration 0022.  Paperless invoices (PUT
 * /api/contact/paperless, migration 0024) are chosen here too.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "office.h"


#define GCHO_ADDR_JSON                                                       \
    "json_build_object('id', a.id, 'family_id', a.family_id,"                \
    " 'family_login', (select f.login from family f"                         \
    "   where f.id = a.family_id),"                                          \
    " 'line1', a.address_line1, 'line2', a.address_line2,"                   \
    " 'postcode', a.postcode, 'city', a.city, 'status', a.status,"           \
    " 'reason', a.reason, 'resident', a.resident,"                           \
    " 'requested_at', a.requested_at, 'decided_at', a.decided_at,"           \
    " 'decided_by', a.decided_by)"

/* The family's details: $1 its id. */
static const char  gcho_contact_sql[] =
    "select json_build_object("
    " 'email', (select m.address from family_email m"
    "   where m.family_id = f.id),"
    " 'phone_home', c.phone_home, 'phone_mobile', c.phone_mobile,"
    " 'phone_work', c.phone_work,"
    " 'address', case when c.address_line1 is null then null"
    "   else json_build_object('line1', c.address_line1,"
    "   'line2', c.address_line2, 'postcode', c.postcode, 'city', c.city)"
    "   end,"
    " 'resident', f.resident, 'paperless', f.paperless,"
    " 'paperless_changed_at', f.paperless_changed_at,"
    " 'address_change', (select " GCHO_ADDR_JSON
    "   from address_change a where a.family_id = f.id"
    "   and a.status <> 'annulee' order by a.id desc limit 1))"
    " from family f left join family_contact c on c.family_id = f.id"
    " where f.id = $1";


/* GET /api/contact */
static int
gcho_contact_get(gcho_req_t *rq)
{
    const char  *p[1];

    p[0] = rq->family_id;

    return gcho_reply_row(rq, 200, gcho_contact_sql, 1, p,
                          "Famille inconnue.");
}


/* See office.h. */
int
gcho_email_ok(const char *s)
{
    const char  *at;

    if (*s == '\0') {
        return 1;
    }

    at = strchr(s, '@');

    return at != NULL && at != s && at[1] != '\0'
           && strchr(at + 1, '@') == NULL && strlen(s) <= 254
           && strpbrk(s, " \t\r\n<>") == NULL;
}


/* See office.h. */
int
gcho_phone_ok(const char *s)
{
    size_t  i, n, digits;

    n = strlen(s);
    if (n == 0) {
        return 1;
    }

    if (n < 6 || n > 25) {
        return 0;
    }

    digits = 0;
    for (i = 0; i < n; i++) {
        if (s[i] >= '0' && s[i] <= '9') {
            digits++;
        } else if (!(s[i] == '+' && i == 0) && strchr(" .()-", s[i]) == NULL)
        {
            return 0;
        }
    }

    return digits >= 6;
}


static const gch_jfield_t  gcho_contact_fields[] = {
    { "email", GCH_J_STRING | GCH_J_NULL, 0 },
    { "phone_home", GCH_J_STRING | GCH_J_NULL, 0 },
    { "phone_mobile", GCH_J_STRING | GCH_J_NULL, 0 },
    { "phone_work", GCH_J_STRING | GCH_J_NULL, 0 }
};

static const char *const  gcho_contact_names[] = {
    "email", "phone_home", "phone_mobile", "phone_work"
};


/* PUT /api/contact {"email", "phone_home", "phone_mobile", "phone_work"}
 * (each a string or null; a missing or null one is cleared) */
static int
gcho_contact_put(gcho_req_t *rq)
{
    int                 rc;
    char                v[4][256], msg[128];
    char                target[GCHO_ID_MAX + 16];
    size_t              i;
    gch_json_t          doc;
    const char         *p[5], *q[4], *kv[8];
    const gch_jnode_t  *n[4];

    if (gcho_body_json(rq, &doc, gcho_contact_fields, 4, n) != 0) {
        return 0;
    }

    rc = 0;
    for (i = 0; i < 4 && rc == 0; i++) {
        rc = gcho_str(rq, gcho_contact_names[i],
                      n[i] && n[i]->type == GCH_J_STRING ? n[i] : NULL,
                      v[i], sizeof(v[i]), 0);
    }

    gch_json_free(&doc);

    if (rc != 0) {
        return 0;
    }

    if (!gcho_email_ok(v[0])) {
        return gcho_error(rq, 400, "invalid_field", "Le champ email n'est "
                          "pas une adresse e-mail (nom@domaine).");
    }

    for (i = 1; i < 4; i++) {
        if (!gcho_phone_ok(v[i])) {
            snprintf(msg, sizeof(msg), "Le champ %s n'est pas un numéro de "
                     "téléphone (6 à 25 chiffres, espaces, « + », « . »).",
                     gcho_contact_names[i]);
            return gcho_error(rq, 400, "invalid_field", msg);
        }
    }

    if (gcho_begin(rq) != 0) {
        return 0;
    }

    p[0] = rq->family_id;
    for (i = 0; i < 4; i++) {
        p[i + 1] = v[i][0] ? v[i] : NULL;
        kv[2 * i] = gcho_contact_names[i];
        kv[2 * i + 1] = p[i + 1];
    }

    q[0] = p[0];
    q[1] = p[2];
    q[2] = p[3];
    q[3] = p[4];
    if (gcho_sql_do(rq, "insert into family_contact (family_id, phone_home,"
                        "   phone_mobile, phone_work)"
                        " values ($1, $2, $3, $4)"
                        " on conflict (family_id) do update"
                        "   set phone_home = excluded.phone_home,"
                        "   phone_mobile = excluded.phone_mobile,"
                        "   phone_work = excluded.phone_work,"
                        "   updated_at = now()", 4, q) != 0)
    {
        return 0;
    }

    if ((p[1] != NULL
         ? gcho_sql_do(rq, "insert into family_email (family_id, address)"
                           " values ($1, $2) on conflict (family_id) do"
                           " update set address = excluded.address", 2, p)
         : gcho_sql_do(rq, "delete from family_email where family_id = $1",
                       1, p))
        != 0)
    {
        return 0;
    }

    snprintf(target, sizeof(target), "family:%s", rq->family_id);

    if (gcho_audit_kv(rq, "contact.update", target, kv, 4) != 0
        || gcho_commit(rq) != 0)
    {
        return 0;
    }

    return gcho_reply_row(rq, 200, gcho_contact_sql, 1, p,
                          "Famille inconnue.");
}


static const gch_jfield_t  gcho_address_fields[] = {
    { "line1", GCH_J_STRING, 1 },
    { "line2", GCH_J_STRING | GCH_J_NULL, 0 },
    { "postcode", GCH_J_STRING, 1 },
    { "city", GCH_J_STRING, 1 }
};


/* Something else than blanks. */
static int
gcho_filled(const char *s)
{
    return s[strspn(s, " \t")] != '\0';
}


/* POST /api/contact/address {"line1", "line2", "postcode", "city"} */
static int
gcho_address_request(gcho_req_t *rq)
{
    int                 rc;
    char                l1[201], l2[201], pc[11], city[101];
    char                target[GCHO_ID_MAX + 32];
    size_t              n;
    PGresult           *res;
    gch_json_t          doc;
    const char         *p[5], *kv[8];
    const gch_jnode_t  *v[4];

    if (gcho_body_json(rq, &doc, gcho_address_fields, 4, v) != 0) {
        return 0;
    }

    rc = gcho_str(rq, "line1", v[0], l1, sizeof(l1), 1) != 0
         || gcho_str(rq, "line2", v[1] && v[1]->type == GCH_J_STRING
                                  ? v[1] : NULL, l2, sizeof(l2), 0) != 0
         || gcho_str(rq, "postcode", v[2], pc, sizeof(pc), 2) != 0
         || gcho_str(rq, "city", v[3], city, sizeof(city), 1) != 0;

    gch_json_free(&doc);

    if (rc) {
        return 0;
    }

    n = strlen(pc);
    if (strspn(pc, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                   "abcdefghijklmnopqrstuvwxyz -") != n)
    {
        return gcho_error(rq, 400, "invalid_field", "Le champ postcode "
                          "n'est pas un code postal (chiffres et lettres).");
    }

    if (!gcho_filled(l1) || !gcho_filled(city)) {
        return gcho_error(rq, 400, "invalid_field", !gcho_filled(l1)
                          ? "Le champ line1 est obligatoire."
                          : "Le champ city est obligatoire.");
    }

    if (gcho_begin(rq) != 0) {
        return 0;
    }

    p[0] = rq->family_id;
    p[1] = l1;
    p[2] = l2[0] ? l2 : NULL;
    p[3] = pc;
    p[4] = city;

    /* the family's lock: one request waits at a time */
    if (gcho_sql_do(rq, "select 1 from family where id = $1 for update",
                    1, p) != 0)
    {
        return 0;
    }

    if (gcho_sql_do(rq, "update address_change set status = 'annulee'"
                        " where family_id = $1 and status = 'demandee'",
                    1, p) != 0)
    {
        return 0;
    }

    res = gcho_sql(rq, "insert into address_change (family_id,"
                       "   address_line1, address_line2, postcode, city)"
                       " values ($1, $2, $3, $4, $5) returning id", 5, p);
    if (res == NULL) {
        return 0;
    }
    snprintf(target, sizeof(target), "address_change:%s",
             PQgetvalue(res, 0, 0));
    PQclear(res);

    kv[0] = "line1";
    kv[1] = l1;
    kv[2] = "line2";
    kv[3] = p[2];
    kv[4] = "postcode";
    kv[5] = pc;
    kv[6] = "city";
    kv[7] = city;

    if (gcho_audit_kv(rq, "address.request", target, kv, 4) != 0
        || gcho_commit(rq) != 0)
    {
        return 0;
    }

    return gcho_reply_row(rq, 201, gcho_contact_sql, 1, p,
                          "Famille inconnue.");
}


/* GET /api/staff/address-changes?status=demandee&family_id= (oldest
 * first), with the family's current address and residence */
static int
gcho_address_staff_list(gcho_req_t *rq)
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
        "select json_build_object('address_changes', coalesce(json_agg("
        " (" GCHO_ADDR_JSON "::jsonb || jsonb_build_object("
        "   'current', (select case when c.address_line1 is null then null"
        "     else jsonb_build_object('line1', c.address_line1,"
        "     'line2', c.address_line2, 'postcode', c.postcode,"
        "     'city', c.city) end"
        "     from family_contact c where c.family_id = a.family_id),"
        "   'current_resident', (select f.resident from family f"
        "     where f.id = a.family_id)))"
        " order by a.requested_at, a.id), '[]'))"
        " from address_change a"
        " where ($1::text is null or a.status = $1)"
        " and ($2::text is null or a.family_id = $2)", 2, p,
        "Aucun changement d'adresse.");
}


static const gch_jfield_t  gcho_address_decision_fields[] = {
    { "decision", GCH_J_STRING, 1 },
    { "reason", GCH_J_STRING | GCH_J_NULL, 0 },
    { "resident", GCH_J_BOOL | GCH_J_NULL, 0 }
};


/* A validated address may change the residence: the catalogue too. */
static const gcho_decision_t  gcho_address_decision = {
    "address_change",
    "update address_change set status = $2, reason = $3,"
    "   resident = $4::boolean, decided_at = now(), decided_by = $5"
    " where id = $1"
    " returning (extract(epoch from decided_at) * 1000000)::bigint",
    5, 4,
    { "address_validee", "address_refusee" },
    { "Changement d'adresse validé", "Changement d'adresse refusé" },
    { 1, 0 }
};


/* In the decision's transaction: the validated address becomes the
 * family's (res: the change's row), and the residence decided. */
static int
gcho_address_apply(gcho_req_t *rq, PGresult *row, const char *resident)
{
    const char  *p[6];

    p[0] = rq->family_id;
    p[1] = PQgetvalue(row, 0, 2);
    p[2] = PQgetisnull(row, 0, 3) ? NULL : PQgetvalue(row, 0, 3);
    p[3] = PQgetvalue(row, 0, 4);
    p[4] = PQgetvalue(row, 0, 5);
    p[5] = resident;

    if (gcho_sql_do(rq, "insert into family_contact (family_id,"
                        "   address_line1, address_line2, postcode, city)"
                        " values ($1, $2, $3, $4, $5)"
                        " on conflict (family_id) do update"
                        "   set address_line1 = excluded.address_line1,"
                        "   address_line2 = excluded.address_line2,"
                        "   postcode = excluded.postcode,"
                        "   city = excluded.city, updated_at = now()",
                    5, p) != 0)
    {
        return -1;
    }

    if (resident == NULL) {
        return 0;
    }

    p[1] = resident;
    if (gcho_sql_do(rq, "update family set resident = $2::boolean"
                        " where id = $1", 2, p) != 0)
    {
        return -1;
    }

    return 0;
}


/* POST /api/staff/address-changes/{id}/decision
 * {decision: validee|refusee, reason, resident: true|false|null} */
static int
gcho_address_decide(gcho_req_t *rq)
{
    int                 rc, refused;
    char                decision[16], reason[1024], body[1800];
    size_t              n;
    PGresult           *res;
    gch_json_t          doc;
    const char         *p[5], *kv[8], *resident;
    const gch_jnode_t  *v[3];

    n = strlen(rq->param[0]);
    if (n == 0 || n > 18 || strspn(rq->param[0], "0123456789") != n) {
        return gcho_error(rq, 404, "not_found",
                          "Ce changement d'adresse n'existe pas.");
    }

    if (gcho_body_json(rq, &doc, gcho_address_decision_fields, 3, v) != 0) {
        return 0;
    }

    rc = gcho_str(rq, "decision", v[0], decision, sizeof(decision), 1) != 0
         || gcho_str(rq, "reason", v[1] && v[1]->type == GCH_J_STRING
                                   ? v[1] : NULL, reason, sizeof(reason), 0)
            != 0;

    resident = NULL;
    if (v[2] && v[2]->type == GCH_J_BOOL) {
        resident = v[2]->len ? "true" : "false";
    }

    gch_json_free(&doc);

    if (rc) {
        return 0;
    }

    refused = gcho_decision_word(rq, decision, "validee", reason);
    if (refused < 0) {
        return 0;
    }

    res = gcho_decision_open(rq, "select status, family_id, address_line1,"
                                 "   address_line2, postcode, city"
                                 " from address_change where id = $1"
                                 " for update",
                             "demandee",
                             "Ce changement d'adresse n'existe pas.",
                             "Ce changement d'adresse a déjà été traité.");
    if (res == NULL) {
        return 0;
    }

    if (!refused && gcho_address_apply(rq, res, resident) != 0) {
        PQclear(res);
        return 0;
    }

    snprintf(body, sizeof(body),
             refused
             ? "Bonjour,\n\nVotre demande de changement d'adresse (%s%s%s, "
               "%s %s) a été refusée.\n\nMotif : %s\n\n%s/#/coordonnees\n"
             : "Bonjour,\n\nVotre nouvelle adresse (%s%s%s, %s %s) est "
               "enregistrée.%s\n\n%s/#/coordonnees\n",
             PQgetvalue(res, 0, 2), PQgetisnull(res, 0, 3) ? "" : ", ",
             PQgetvalue(res, 0, 3), PQgetvalue(res, 0, 4),
             PQgetvalue(res, 0, 5),
             refused ? reason
             : resident == NULL ? ""
             : resident[0] == 't' ? "  Vous êtes désormais résident de la "
                                    "commune."
             : "  Vous êtes désormais non-résident : les tarifs des "
               "non-résidents s'appliquent à vos prochaines réservations.",
             gcho_ctx.conf.site_url);
    PQclear(res);

    p[0] = rq->param[0];
    p[1] = decision;
    p[2] = reason[0] ? reason : NULL;
    p[3] = refused ? NULL : resident;
    p[4] = rq->staff;

    kv[0] = "decision";
    kv[1] = decision;
    kv[2] = "reason";
    kv[3] = p[2];
    kv[4] = "resident";
    kv[5] = p[3];
    kv[6] = "family_id";
    kv[7] = rq->family_id;

    if (gcho_decision_close(rq, &gcho_address_decision, refused, p, kv, body)
        != 0)
    {
        return 0;
    }

    return gcho_reply_row(rq, 200, "select " GCHO_ADDR_JSON
                                   " from address_change a where a.id = $1",
                          1, p, "Ce changement d'adresse n'existe pas.");
}


/* PUT /api/contact/paperless {"paperless": true|false}: paperless
 * invoices, « adhésion à la facture en ligne » (migration 0024): the
 * monthly invoicing e-mails the family instead of printing its invoice */
static int
gcho_paperless_put(gcho_req_t *rq)
{
    char                target[GCHO_ID_MAX + 16];
    gch_json_t          doc;
    const char         *p[2], *kv[2];
    const gch_jnode_t  *v[1];

    static const gch_jfield_t  fields[] = {
        { "paperless", GCH_J_BOOL, 1 },
    };

    if (gcho_body_json(rq, &doc, fields, 1, v) != 0) {
        return 0;
    }
    p[0] = rq->family_id;
    p[1] = v[0]->len ? "true" : "false";
    gch_json_free(&doc);

    if (gcho_begin(rq) != 0) {
        return 0;
    }

    if (gcho_sql_do(rq, "update family set paperless = $2::boolean,"
                        "   paperless_changed_at = now()"
                        " where id = $1 and paperless <> $2::boolean",
                    2, p) != 0)
    {
        return 0;
    }

    snprintf(target, sizeof(target), "family:%s", rq->family_id);
    kv[0] = "paperless";
    kv[1] = p[1];

    if (gcho_audit_kv(rq, "invoice.paperless", target, kv, 1) != 0
        || gcho_commit(rq) != 0)
    {
        return 0;
    }

    return gcho_reply_row(rq, 200, gcho_contact_sql, 1, p,
                          "Famille inconnue.");
}


const gcho_route_t  gcho_contact_routes[] = {
    { "GET", "/api/contact", GCHO_FAMILY, 0, 0, gcho_contact_get },
    { "PUT", "/api/contact", GCHO_FAMILY, 0, GCHO_BODY_JSON,
      gcho_contact_put },
    { "POST", "/api/contact/address", GCHO_FAMILY, 0, GCHO_BODY_JSON,
      gcho_address_request },
    { "PUT", "/api/contact/paperless", GCHO_FAMILY, 0, GCHO_BODY_JSON,
      gcho_paperless_put },
    { "GET", "/api/staff/address-changes", GCHO_STAFF, GCHO_AGENT, 0,
      gcho_address_staff_list },
    { "POST", "/api/staff/address-changes/*/decision", GCHO_STAFF,
      GCHO_AGENT, GCHO_BODY_JSON, gcho_address_decide },
    { NULL, NULL, 0, 0, 0, NULL }
};
