/*
 * debit.c -- guichet-office: direct debit.  PUT /api/direct-debit records
 * a mandate (IBAN checked by its mod-97 checksum, BIC by its shape,
 * engine/src/sepa.c) and sets family.direct_debit; such families cannot
 * pay online (payment.c).  guichetctl sepa-export writes the month's
 * debits (ctl/sepa.c).
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "office.h"


#define GCHO_DD_JSON                                                         \
    "json_build_object('reference', m.reference, 'iban', m.iban,"            \
    " 'bic', m.bic, 'holder', m.holder,"                                     \
    " 'signed_on', to_char(m.signed_on, 'YYYY-MM-DD'),"                      \
    " 'created_at', m.created_at)"


/* GET /api/direct-debit */
static int
gcho_dd_get(gcho_req_t *rq)
{
    const char  *p[1];

    p[0] = rq->family_id;

    return gcho_reply_row(rq, 200,
        "select json_build_object('active', f.direct_debit,"
        " 'mandate', (select " GCHO_DD_JSON " from direct_debit_mandate m"
        "   where m.family_id = f.id and m.ended_at is null))"
        " from family f where f.id = $1", 1, p, "Famille inconnue.");
}


static const gch_jfield_t  gcho_dd_fields[] = {
    { "iban", GCH_J_STRING, 1 },
    { "bic", GCH_J_STRING, 1 },
    { "holder", GCH_J_STRING, 1 }
};


/* PUT /api/direct-debit {"iban", "bic", "holder"}: a new mandate (ending
 * the previous one) */
static int
gcho_dd_put(gcho_req_t *rq)
{
    int                 rc;
    char                raw[64], iban[GCH_IBAN_MAX + 1], bic[16];
    char                holder[71], ref[GCHO_ID_MAX + 32], body[512];
    size_t              i, n;
    gch_json_t          doc;
    const char         *p[5];
    const gch_jnode_t  *v[3];

    if (gcho_body_json(rq, &doc, gcho_dd_fields, 3, v) != 0) {
        return 0;
    }

    rc = gcho_str(rq, "iban", v[0], raw, sizeof(raw), 1) != 0
         || gcho_str(rq, "bic", v[1], bic, sizeof(bic), 1) != 0
         || gcho_str(rq, "holder", v[2], holder, sizeof(holder), 1) != 0;

    gch_json_free(&doc);

    if (rc) {
        return 0;
    }

    if (gch_iban_normalize(raw, strlen(raw), iban) == 0) {
        return gcho_error(rq, 400, "invalid_field", "Le champ iban n'est "
                          "pas un IBAN valide (vérifiez les chiffres).");
    }

    n = strlen(bic);
    for (i = 0; i < n; i++) {
        if (bic[i] >= 'a' && bic[i] <= 'z') {
            bic[i] = (char) (bic[i] - 'a' + 'A');
        }
    }

    if (!gch_bic_valid(bic, n)) {
        return gcho_error(rq, 400, "invalid_field", "Le champ bic n'est pas "
                          "un BIC valide (8 ou 11 caractères).");
    }

    if (gcho_begin(rq) != 0) {
        return 0;
    }

    p[0] = rq->family_id;
    if (gcho_sql_do(rq, "update direct_debit_mandate set ended_at = now()"
                        " where family_id = $1 and ended_at is null",
                    1, p) != 0)
    {
        return 0;
    }

    /* the RUM: "GCH-<family>-<n>", or "GCH-<md5 of family, 16>-<n>" when
     * that is over SEPA's 35 characters */
    if (gcho_sql_value(rq, ref, sizeof(ref),
                       "select case when length(r) <= 35 then r"
                       "   else 'GCH-' || left(md5($1), 16) || '-' || n"
                       "   end"
                       " from (select n, 'GCH-' || $1 || '-' || n r"
                       "   from (select count(*) + 1 n"
                       "     from direct_debit_mandate"
                       "     where family_id = $1) c) x", 1, p)
        < 0)
    {
        return 0;
    }

    p[1] = ref;
    p[2] = iban;
    p[3] = bic;
    p[4] = holder;
    if (gcho_sql_do(rq, "insert into direct_debit_mandate (family_id,"
                        "   reference, iban, bic, holder, signed_on)"
                        " values ($1, $2, $3, $4, $5,"
                        "   (now() at time zone 'Europe/Paris')::date)",
                    5, p) != 0)
    {
        return 0;
    }

    if (gcho_sql_do(rq, "update family set direct_debit = true"
                        " where id = $1", 1, p) != 0)
    {
        return 0;
    }

    snprintf(body, sizeof(body), "Bonjour,\n\nVotre mandat de prélèvement "
             "automatique %s est enregistré (IBAN se terminant par %s).\n"
             "Vos prochaines factures seront prélevées.\n", ref,
             iban + strlen(iban) - 4);

    if (gcho_mail(rq, rq->family_id, "mandate", ref,
                  "Prélèvement automatique", body) != 0
        || gcho_catalogue_changed(rq) != 0
        || gcho_commit(rq) != 0)
    {
        gcho_rollback();
        return 0;
    }

    p[0] = ref;
    return gcho_reply_row(rq, 200, "select json_build_object('active', true,"
                         " 'mandate', " GCHO_DD_JSON ")"
                         " from direct_debit_mandate m"
                         " where m.reference = $1", 1, p,
                         "Mandat introuvable.");
}


/* DELETE /api/direct-debit */
static int
gcho_dd_delete(gcho_req_t *rq)
{
    int          n;
    const char  *p[1];

    static const char  off[] = "{\"active\":false,\"mandate\":null}";

    if (gcho_begin(rq) != 0) {
        return 0;
    }

    p[0] = rq->family_id;
    n = gcho_sql_changed(rq, "update direct_debit_mandate set ended_at ="
                             " now() where family_id = $1"
                             " and ended_at is null", 1, p);
    if (n < 0) {
        return 0;
    }

    if (n == 0) {
        gcho_rollback();
        return gcho_error(rq, 404, "not_found",
                          "Vous n'avez pas de prélèvement automatique.");
    }

    if (gcho_sql_do(rq, "update family set direct_debit = false"
                        " where id = $1", 1, p) != 0)
    {
        return 0;
    }

    if (gcho_catalogue_changed(rq) != 0 || gcho_commit(rq) != 0) {
        gcho_rollback();
        return 0;
    }

    return gcho_reply(rq, 200, off, sizeof(off) - 1);
}


const gcho_route_t  gcho_debit_routes[] = {
    { "GET", "/api/direct-debit", GCHO_FAMILY, 0, 0, gcho_dd_get },
    { "PUT", "/api/direct-debit", GCHO_FAMILY, 0, GCHO_BODY_JSON,
      gcho_dd_put },
    { "DELETE", "/api/direct-debit", GCHO_FAMILY, 0, 0, gcho_dd_delete },
    { NULL, NULL, 0, 0, 0, NULL }
};
