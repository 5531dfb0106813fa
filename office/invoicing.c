/*
 * invoicing.c -- guichet-office: the régie's invoicing and what it sees of
 * the money paid online or to collect (staff: the régie, or an admin):
 *
 *   POST /api/staff/invoicing {"month"}: runs the month's invoicing
 *       (gchb_invoice_run of backend/, its own transaction; the invoices
 *       published to Redis now, or by the worker when Redis is down),
 *       then the audit row and catalogue.version + 1 (due invoices block
 *       booking through worker/overlay.c) in another.
 *   GET /api/staff/payments?month=: the online payment operations
 *       (payment.c's), what was paid and the overpayments to refund.
 *   GET /api/staff/sepa-exports: the direct-debit files made.
 *
 * A room of its own, apart from payment.c's conversation with a family
 * and the payment provider.  The counter's payments and the month's CSV
 * are counter.c's, credit notes and refunds credit.c's.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "office.h"


static const gch_jfield_t  gcho_inv_fields[] = {
    { "month", GCH_J_STRING, 1 }
};


/* "YYYY-MM" with a month 01..12 */
static int
gcho_inv_month_ok(const char *m)
{
    return strlen(m) == 7 && m[0] >= '1' && m[0] <= '9'
           && m[1] >= '0' && m[1] <= '9' && m[2] >= '0' && m[2] <= '9'
           && m[3] >= '0' && m[3] <= '9' && m[4] == '-'
           && ((m[5] == '0' && m[6] >= '1' && m[6] <= '9')
               || (m[5] == '1' && m[6] >= '0' && m[6] <= '2'));
}


/* POST /api/staff/invoicing {"month": "YYYY-MM"} */
static int
gcho_staff_invoicing(gcho_req_t *rq)
{
    int                 rc, created;
    char                month[8], detail[96];
    PGconn             *pg;
    gch_json_t          doc;
    gch_jout_t          o;
    redisContext       *redis;
    const gch_jnode_t  *v[1];

    if (gcho_body_json(rq, &doc, gcho_inv_fields, 1, v) != 0) {
        return 0;
    }

    rc = gcho_str(rq, "month", v[0], month, sizeof(month), 7);
    gch_json_free(&doc);

    if (rc != 0) {
        return 0;
    }

    if (!gcho_inv_month_ok(month)) {
        return gcho_error(rq, 400, "invalid_field",
                          "Le champ month doit être un mois AAAA-MM.");
    }

    pg = gcho_pg(rq);
    if (pg == NULL) {
        return 0;
    }

    redis = gcho_redis(NULL);           /* NULL: published by the worker */

    created = 0;
    if (gchb_invoice_run(pg, redis, &gcho_ctx.conf, month, &created) != 0)
    {
        return gcho_error(rq, 503, "unavailable", "La facturation n'a pas "
                          "pu aboutir ; rien n'a été facturé, réessayez.");
    }

    /* the run is its own transaction; its audit row and the catalogue
     * (due invoices block booking) follow in another */
    snprintf(detail, sizeof(detail), "{\"month\": \"%s\", \"created\": %d}",
             month, created);

    if (gcho_begin(rq) != 0) {
        return 0;
    }

    if (gcho_audit(rq, "invoicing.run", month, detail) != 0
        || gcho_catalogue_changed(rq) != 0
        || gcho_commit(rq) != 0)
    {
        gcho_rollback();
        return 0;
    }

    if (gch_jout_init(&o, &gch_alloc_std) != GCH_OK) {
        return -1;
    }
    yajl_gen_map_open(o.g);
    gch_jout_cstr(&o, "month");
    gch_jout_cstr(&o, month);
    gch_jout_cstr(&o, "created");
    yajl_gen_integer(o.g, created);
    yajl_gen_map_close(o.g);

    return gcho_reply_jout(rq, 200, &o);
}


/* GET /api/staff/payments?month=YYYY-MM (default: every month) */
static int
gcho_staff_payments(gcho_req_t *rq)
{
    const char  *month, *p[1];
    char         first[11];

    month = gcho_query(rq, "month");

    if (month != NULL && !gcho_inv_month_ok(month)) {
        return gcho_error(rq, 400, "invalid_field",
                          "Le paramètre month doit être un mois AAAA-MM.");
    }

    if (month != NULL) {
        snprintf(first, sizeof(first), "%s-01", month);
        p[0] = first;
    } else {
        p[0] = NULL;
    }

    return gcho_reply_row(rq, 200,
        "select json_build_object("
        " 'operations', coalesce(json_agg(json_build_object("
        "   'operation_id', o.id, 'family_id', o.family_id,"
        "   'family_login', (select f.login from family f"
        "     where f.id = o.family_id),"
        "   'amount_cents', o.amount_cents, 'status', o.status,"
        "   'created_at', o.created_at, 'settled_at', o.settled_at,"
        "   'provider_ref', o.provider_ref,"
        "   'invoice_ids', (select json_agg(p.invoice_id order by"
        "     p.invoice_id) from payment_operation_invoice p"
        "     where p.operation_id = o.id))"
        "   order by o.created_at desc, o.id), '[]'),"
        " 'paid_cents', coalesce(sum(o.amount_cents)"
        "   filter (where o.status = 'paid'), 0),"
        " 'overpayments', (select coalesce(json_agg(json_build_object("
        "   'operation_id', v.operation_id, 'invoice_id', v.invoice_id,"
        "   'amount_cents', v.amount_cents, 'refunded_at', v.refunded_at)"
        "   order by v.created_at), '[]') from payment_overpayment v))"
        " from payment_operation o"
        " where $1::date is null or (o.created_at >= $1::date"
        "   and o.created_at < $1::date + interval '1 month')", 1, p,
        "Aucun paiement.");
}


/* GET /api/staff/sepa-exports */
static int
gcho_staff_sepa(gcho_req_t *rq)
{
    return gcho_reply_row(rq, 200,
        "select json_build_object('exports', coalesce(json_agg("
        " json_build_object('id', e.id, 'month', to_char(e.month,"
        "   'YYYY-MM'), 'msg_id', e.msg_id, 'count', e.count,"
        "   'total_cents', e.total_cents, 'created_at', e.created_at,"
        "   'created_by', e.created_by) order by e.month desc), '[]'))"
        " from sepa_export e", 0, NULL, "Aucun export.");
}


const gcho_route_t  gcho_invoicing_routes[] = {
    { "POST", "/api/staff/invoicing", GCHO_STAFF, GCHO_REGIE,
      GCHO_BODY_JSON, gcho_staff_invoicing },
    { "GET", "/api/staff/payments", GCHO_STAFF, GCHO_REGIE, 0,
      gcho_staff_payments },
    { "GET", "/api/staff/sepa-exports", GCHO_STAFF, GCHO_REGIE, 0,
      gcho_staff_sepa },
    { NULL, NULL, 0, 0, 0, NULL }
};
