/*
 * credit.c -- the régie's credit notes (avoirs) and refunds (issue 26,
 * docs/office.md "Credit notes and refunds", migration 0040).
 *
 * A credit note is an amount the town no longer asks, against one
 * invoice (any part of what is left of it) or one of its lines (a line
 * once).  On an invoice not yet paid it lowers what is due
 * (invoice.credited_cents; credited to its whole total, the invoice is
 * settled, paid_by 'credit_note'); on a paid invoice it is owed back to
 * the family (after_payment), which a refund pays back at the counter
 * (cash, cheque, transfer), as it does an overpayment.  Both are
 * numbered without gaps for the whole town, each its own series (AV-<n>,
 * RB-<n>), under an advisory lock; each carries the régie it is counted
 * for in the accounting export.  One transaction each, with its audit
 * row; then the family's {f:<fid>}:invoices is republished (the
 * module's GET /api/invoices shows them).
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "office.h"


/* Republishes the family's invoices after a commit (logs a failure: the
 * next invoicing run or payment publishes them again). */
static void
gcho_crd_publish(const char *fid, const char *what)
{
    if (gcho_redis(NULL) == NULL
        || gchb_invoice_publish_family(gcho_ctx.pg, gcho_ctx.redis, NULL,
                                       fid) < 0)
    {
        gchb_log("warn", "office: invoices of %s not republished after %s "
                 "(the next invoicing run will)", fid, what);
    }
    gcho_redis_drop_broken();
}


/* The régie's code exists: 1, 0 (answered 404), -1 (answered 503). */
static int
gcho_crd_regie(gcho_req_t *rq, const char *code)
{
    int          n;
    const char  *p[1];

    p[0] = code;
    n = gcho_sql_exists(rq, "select 1 from regie where code = $1", 1, p);
    if (n < 0) {
        return -1;
    }

    if (n == 0) {
        gcho_rollback();
        gcho_error(rq, 404, "not_found", "Cette régie n'existe pas.");
        return 0;
    }

    return 1;
}


#define GCHO_CRD_NOTE_JSON                                                   \
    "json_build_object('id', c.id, 'number', c.number,"                      \
    " 'invoice_id', c.invoice_id, 'invoice_number', i.number,"               \
    " 'invoice_reference', i.reference,"                                     \
    " 'family_id', i.family_id, 'booking_id', c.booking_id,"                 \
    " 'regie', c.regie_code, 'amount_cents', c.amount_cents,"                \
    " 'reason', c.reason, 'after_payment', c.after_payment,"                 \
    " 'issued_at', c.issued_at, 'issued_by', c.issued_by)"

#define GCHO_CRD_REFUND_JSON                                                 \
    "json_build_object('id', r.id, 'number', r.number,"                      \
    " 'invoice_id', r.invoice_id, 'invoice_number', i.number,"               \
    " 'invoice_reference', i.reference,"                                     \
    " 'family_id', r.family_id, 'regie', r.regie_code,"                      \
    " 'method', r.method, 'amount_cents', r.amount_cents,"                   \
    " 'reference', r.reference, 'refunded_at', r.refunded_at,"               \
    " 'recorded_by', r.recorded_by)"


/*
 * POST /api/staff/credit-notes (régie): {"invoice_id", "booking_id"?,
 * "amount_cents"?, "reason", "regie"?}.  With booking_id: one line of
 * the invoice, amount its price unless given smaller, the régie its
 * activity's; without: amount_cents required, the régie given or
 * 'principale'.  201 the credit note.
 */
static int
gcho_crd_note_create(gcho_req_t *rq)
{
    static const gch_jfield_t  f[] = {
        { "invoice_id", GCH_J_NUMBER, 1 },
        { "booking_id", GCH_J_STRING | GCH_J_NULL, 0 },
        { "amount_cents", GCH_J_NUMBER | GCH_J_NULL, 0 },
        { "reason", GCH_J_STRING, 1 },
        { "regie", GCH_J_STRING | GCH_J_NULL, 0 },
    };

    int                 rc, paid, own;
    char                iid[32], bid[GCHO_ID_MAX], reason[501], regie[33],
                        amount[32], fid[GCHO_ID_MAX], num[48], cid[32],
                        msg[320];
    long long           inv, cents, left, price;
    PGresult           *res;
    gch_jcx_t           cx;
    gch_json_t          doc;
    gch_error_t         err;
    const char         *p[6];
    const gch_jnode_t  *v[5];

    if (gcho_body_json(rq, &doc, f, 5, v) != 0) {
        return 0;
    }

    memset(&err, 0, sizeof(err));
    gch_jcx_init(&cx, &err);
    bid[0] = '\0';
    regie[0] = '\0';
    cents = 0;

    if (gch_json_int(&cx, "invoice_id", v[0], 1, (long long) 1 << 62, &inv)
        != 0
        || (v[2] && v[2]->type == GCH_J_NUMBER
            && gch_json_int(&cx, "amount_cents", v[2], 1, 10000000, &cents)
               != 0))
    {
        gch_json_free(&doc);
        return gcho_error(rq, 400, "invalid_field", err.message);
    }

    if ((v[1] && v[1]->type == GCH_J_STRING
         && gcho_str(rq, "booking_id", v[1], bid, sizeof(bid), 1) != 0)
        || gcho_str(rq, "reason", v[3], reason, sizeof(reason), 1) != 0
        || (v[4] && v[4]->type == GCH_J_STRING
            && gcho_str(rq, "regie", v[4], regie, sizeof(regie), 1) != 0))
    {
        gch_json_free(&doc);
        return 0;
    }
    gch_json_free(&doc);

    if (bid[0] == '\0' && cents == 0) {
        return gcho_error(rq, 400, "invalid_field", "$.amount_cents : le "
                          "montant de l'avoir est requis (ou booking_id, "
                          "une ligne de la facture).");
    }
    if (bid[0] != '\0' && regie[0] != '\0') {
        return gcho_error(rq, 400, "invalid_field", "$.regie : l'avoir "
                          "d'une ligne compte pour la régie de son "
                          "activité.");
    }

    if (gcho_begin(rq) != 0) {
        return 0;
    }

    if (gcho_sql_do(rq, "select pg_advisory_xact_lock(" GCHB_LOCK_CREDIT ")",
                    0, NULL) != 0)
    {
        return 0;
    }

    snprintf(iid, sizeof(iid), "%lld", inv);
    p[0] = iid;
    p[1] = bid[0] ? bid : NULL;
    rc = gcho_sql_row(rq, &res, "Cette facture n'existe pas.",
        "select i.family_id, i.reference, i.paid,"
        "  i.total_cents - i.credited_cents,"
        "  exists (select 1 from payment_operation_invoice oi"
        "    join payment_operation o on o.id = oi.operation_id"
        "    where oi.invoice_id = i.id and o.status = 'pending'),"
        "  l.price_cents,"
        "  coalesce(i.regie_code, ar.regie_code, 'principale'),"
        "  exists (select 1 from credit_note c where c.booking_id = $2),"
        "  i.regie_code"
        " from invoice i"
        " left join invoice_line l on l.invoice_id = i.id"
        "   and l.booking_id = $2"
        " left join booking b on b.id = l.booking_id"
        " left join session s on s.id = b.session_id"
        " left join activity_regie ar on ar.activity_id = s.activity_id"
        " where i.id = $1 for update of i", 2, p);
    if (rc != GCHO_GO) {
        return rc;
    }

    snprintf(fid, sizeof(fid), "%s", PQgetvalue(res, 0, 0));
    snprintf(num, sizeof(num), "%s", PQgetvalue(res, 0, 1));
    paid = strcmp(PQgetvalue(res, 0, 2), "t") == 0;
    left = atoll(PQgetvalue(res, 0, 3));
    rc = 0;

    /* an invoice of one régie (migration 0041): its credit notes are
     * that régie's */
    own = !PQgetisnull(res, 0, 8);
    if (own && bid[0] == '\0' && regie[0] != '\0'
        && strcmp(regie, PQgetvalue(res, 0, 8)) != 0)
    {
        PQclear(res);
        gcho_rollback();
        return gcho_error(rq, 400, "invalid_field", "$.regie : l'avoir "
                          "d'une facture compte pour la régie de la "
                          "facture.");
    }
    if (own) {
        snprintf(regie, sizeof(regie), "%s", PQgetvalue(res, 0, 8));
    }

    if (strcmp(PQgetvalue(res, 0, 4), "t") == 0) {
        rc = 4091;
        snprintf(msg, sizeof(msg), "La facture n° %s est dans un paiement "
                 "en ligne pas encore terminé.", num);

    } else if (bid[0] != '\0') {
        if (PQgetisnull(res, 0, 5)) {
            rc = 404;
            snprintf(msg, sizeof(msg), "Cette réservation n'est pas une "
                     "ligne de la facture n° %s.", num);
        } else if (strcmp(PQgetvalue(res, 0, 7), "t") == 0) {
            rc = 409;
            snprintf(msg, sizeof(msg), "Cette ligne de la facture n° %s a "
                     "déjà un avoir.", num);
        } else {
            price = atoll(PQgetvalue(res, 0, 5));
            snprintf(regie, sizeof(regie), "%s", PQgetvalue(res, 0, 6));
            if (cents == 0) {
                cents = price;
            } else if (cents > price) {
                rc = 422;
                snprintf(msg, sizeof(msg), "L'avoir (%lld,%02lld €) "
                         "dépasse le prix de la ligne (%lld,%02lld €).",
                         cents / 100, cents % 100, price / 100,
                         price % 100);
            }
        }
    }
    PQclear(res);

    if (rc == 0 && cents > left) {
        rc = 422;
        snprintf(msg, sizeof(msg), "L'avoir (%lld,%02lld €) dépasse ce qui "
                 "reste de la facture n° %s après ses avoirs "
                 "(%lld,%02lld €).", cents / 100, cents % 100, num,
                 left / 100, left % 100);
    }

    if (rc != 0) {
        gcho_rollback();
        return rc == 404 ? gcho_error(rq, 404, "not_found", msg)
               : rc == 409 ? gcho_error(rq, 409, "already_credited", msg)
               : rc == 4091 ? gcho_error(rq, 409, "payment_pending", msg)
               : gcho_error(rq, 422, "credit_exceeds", msg);
    }

    if (regie[0] == '\0') {
        snprintf(regie, sizeof(regie), "principale");
    } else if (bid[0] == '\0' && !own) {
        rc = gcho_crd_regie(rq, regie);
        if (rc != 1) {
            return 0;
        }
    }

    snprintf(amount, sizeof(amount), "%lld", cents);
    p[2] = regie;
    p[3] = amount;
    p[4] = reason;
    p[5] = rq->staff;
    rc = gcho_sql_value(rq, cid, sizeof(cid),
        "with c as (insert into credit_note (number, invoice_id,"
        "     booking_id, regie_code, amount_cents, reason, after_payment,"
        "     issued_by)"
        "   select coalesce((select max(number) from credit_note), 0) + 1,"
        "     i.id, $2, $3, $4, $5, i.paid, $6 from invoice i"
        "   where i.id = $1 returning id)"
        " update invoice i set credited_cents = i.credited_cents + $4,"
        "   paid = i.paid or i.credited_cents + $4 = i.total_cents,"
        "   paid_by = case when not i.paid"
        "     and i.credited_cents + $4 = i.total_cents"
        "     then 'credit_note' else i.paid_by end,"
        "   paid_at = case when not i.paid"
        "     and i.credited_cents + $4 = i.total_cents"
        "     then now() else i.paid_at end"
        " from c where i.id = $1 returning c.id", 6, p);
    if (rc < 0) {
        return 0;
    }

    {
        char         target[64];
        const char  *kv[10] = { "family_id", fid, "invoice", num,
                                "booking_id", bid[0] ? bid : NULL,
                                "amount_cents", amount,
                                "after_payment", paid ? "true" : "false" };

        snprintf(target, sizeof(target), "credit_note:%s", cid);
        if (gcho_audit_kv(rq, "invoice.credit_note", target, kv, 5) != 0
            || gcho_catalogue_changed(rq) != 0
            || gcho_commit(rq) != 0)
        {
            return 0;
        }
    }

    gcho_crd_publish(fid, "a credit note");

    p[0] = cid;
    return gcho_reply_row(rq, 201,
        "select " GCHO_CRD_NOTE_JSON " from credit_note c"
        " join invoice i on i.id = c.invoice_id where c.id = $1", 1, p,
        "Avoir introuvable.");
}


/*
 * POST /api/staff/refunds (régie): {"invoice_id", "method": "cash" |
 * "cheque" | "transfer", "amount_cents", "reference"}: money paid back,
 * at most what the invoice owes back (its credit notes after payment and
 * its overpayments, less its refunds).  201 the refund.
 */
static int
gcho_crd_refund_create(gcho_req_t *rq)
{
    static const gch_jfield_t  f[] = {
        { "invoice_id", GCH_J_NUMBER, 1 },
        { "method", GCH_J_STRING, 1 },
        { "amount_cents", GCH_J_NUMBER, 1 },
        { "reference", GCH_J_STRING | GCH_J_NULL, 0 },
    };

    int                 rc;
    char                iid[32], method[16], ref[201], amount[32],
                        fid[GCHO_ID_MAX], num[48], regie[33], rid[32],
                        msg[320];
    long long           inv, cents, owed;
    PGresult           *res;
    gch_jcx_t           cx;
    gch_json_t          doc;
    gch_error_t         err;
    const char         *p[7];
    const gch_jnode_t  *v[4];

    if (gcho_body_json(rq, &doc, f, 4, v) != 0) {
        return 0;
    }

    memset(&err, 0, sizeof(err));
    gch_jcx_init(&cx, &err);
    ref[0] = '\0';

    if (gch_json_int(&cx, "invoice_id", v[0], 1, (long long) 1 << 62, &inv)
        != 0
        || gch_json_int(&cx, "amount_cents", v[2], 1, 10000000, &cents)
           != 0)
    {
        gch_json_free(&doc);
        return gcho_error(rq, 400, "invalid_field", err.message);
    }

    if (gcho_str(rq, "method", v[1], method, sizeof(method), 1) != 0
        || (v[3] && v[3]->type == GCH_J_STRING
            && gcho_str(rq, "reference", v[3], ref, sizeof(ref), 0) != 0))
    {
        gch_json_free(&doc);
        return 0;
    }
    gch_json_free(&doc);

    if (strcmp(method, "cash") && strcmp(method, "cheque")
        && strcmp(method, "transfer"))
    {
        return gcho_error(rq, 400, "invalid_field", "$.method : « cash », "
                          "« cheque » ou « transfer »");
    }

    if (gcho_begin(rq) != 0) {
        return 0;
    }

    if (gcho_sql_do(rq, "select pg_advisory_xact_lock(" GCHB_LOCK_CREDIT ")",
                    0, NULL) != 0)
    {
        return 0;
    }

    snprintf(iid, sizeof(iid), "%lld", inv);
    p[0] = iid;
    rc = gcho_sql_row(rq, &res, "Cette facture n'existe pas.",
        "select i.family_id, i.reference,"
        "  coalesce((select sum(c.amount_cents) from credit_note c"
        "    where c.invoice_id = i.id and c.after_payment), 0)"
        "  + coalesce((select sum(o.amount_cents) from payment_overpayment o"
        "    where o.invoice_id = i.id), 0)"
        "  - coalesce((select sum(r.amount_cents) from refund r"
        "    where r.invoice_id = i.id), 0),"
        "  coalesce((select c.regie_code from credit_note c"
        "    where c.invoice_id = i.id and c.after_payment"
        "    order by c.id desc limit 1), i.regie_code, 'principale')"
        " from invoice i where i.id = $1 for update", 1, p);
    if (rc != GCHO_GO) {
        return rc;
    }

    snprintf(fid, sizeof(fid), "%s", PQgetvalue(res, 0, 0));
    snprintf(num, sizeof(num), "%s", PQgetvalue(res, 0, 1));
    owed = atoll(PQgetvalue(res, 0, 2));
    snprintf(regie, sizeof(regie), "%s", PQgetvalue(res, 0, 3));
    PQclear(res);

    if (cents > owed) {
        gcho_rollback();
        snprintf(msg, sizeof(msg), "Le remboursement (%lld,%02lld €) "
                 "dépasse ce que la régie doit à la famille sur la facture "
                 "n° %s (%lld,%02lld €, ses avoirs après paiement et ses "
                 "trop-perçus moins ses remboursements).", cents / 100,
                 cents % 100, num, owed / 100, owed % 100);
        return gcho_error(rq, 422, "refund_exceeds", msg);
    }

    snprintf(amount, sizeof(amount), "%lld", cents);
    p[1] = fid;
    p[2] = regie;
    p[3] = method;
    p[4] = amount;
    p[5] = ref;
    p[6] = rq->staff;
    rc = gcho_sql_value(rq, rid, sizeof(rid),
        "insert into refund (number, family_id, invoice_id, regie_code,"
        "   method, amount_cents, reference, recorded_by)"
        " select coalesce((select max(number) from refund), 0) + 1,"
        "   $2, $1, $3, $4, $5, $6, $7 returning id", 7, p);
    if (rc < 0) {
        return 0;
    }

    if (cents == owed) {
        if (gcho_sql_do(rq, "update payment_overpayment set refunded_at ="
                            " now() where invoice_id = $1"
                            " and refunded_at is null", 1, p) != 0)
        {
            return 0;
        }
    }

    {
        char         target[64];
        const char  *kv[8] = { "family_id", fid, "invoice", num,
                               "method", method, "amount_cents", amount };

        snprintf(target, sizeof(target), "refund:%s", rid);
        if (gcho_audit_kv(rq, "payment.refund", target, kv, 4) != 0
            || gcho_commit(rq) != 0)
        {
            return 0;
        }
    }

    gcho_crd_publish(fid, "a refund");

    p[0] = rid;
    return gcho_reply_row(rq, 201,
        "select " GCHO_CRD_REFUND_JSON " from refund r"
        " join invoice i on i.id = r.invoice_id where r.id = $1", 1, p,
        "Remboursement introuvable.");
}


/*
 * GET /api/staff/credits?family_id=F&month=YYYY-MM (régie): {"credit_notes":
 * [...], "refunds": [...]}, newest first; month: issued / refunded that
 * month (Europe/Paris).
 */
static int
gcho_crd_list(gcho_req_t *rq)
{
    const char  *p[2], *m;

    m = gcho_query(rq, "month");
    p[0] = gcho_query(rq, "family_id");
    p[1] = NULL;

    if (m != NULL) {
        if (strlen(m) != 7 || m[4] != '-' || atoi(m + 5) < 1
            || atoi(m + 5) > 12 || strspn(m, "0123456789-") != 7)
        {
            return gcho_error(rq, 400, "invalid_field",
                              "Le paramètre month doit être un mois "
                              "AAAA-MM.");
        }
        p[1] = m;
    }

    return gcho_reply_row(rq, 200,
        "select json_build_object("
        " 'credit_notes', (select coalesce(json_agg(" GCHO_CRD_NOTE_JSON
        "   order by c.issued_at desc, c.id desc), '[]')"
        "   from credit_note c join invoice i on i.id = c.invoice_id"
        "   where ($1::text is null or i.family_id = $1)"
        "     and ($2::text is null or to_char(c.issued_at at time zone"
        "       'Europe/Paris', 'YYYY-MM') = $2)),"
        " 'refunds', (select coalesce(json_agg(" GCHO_CRD_REFUND_JSON
        "   order by r.refunded_at desc, r.id desc), '[]')"
        "   from refund r join invoice i on i.id = r.invoice_id"
        "   where ($1::text is null or r.family_id = $1)"
        "     and ($2::text is null or to_char(r.refunded_at at time zone"
        "       'Europe/Paris', 'YYYY-MM') = $2)))", 2, p, "");
}


const gcho_route_t  gcho_credit_routes[] = {
    { "POST", "/api/staff/credit-notes", GCHO_STAFF, GCHO_REGIE,
      GCHO_BODY_JSON, gcho_crd_note_create },
    { "POST", "/api/staff/refunds", GCHO_STAFF, GCHO_REGIE, GCHO_BODY_JSON,
      gcho_crd_refund_create },
    { "GET", "/api/staff/credits", GCHO_STAFF, GCHO_REGIE, 0,
      gcho_crd_list },
    { NULL, NULL, 0, 0, 0, NULL }
};
