/*
 * counter.c -- the régie's counter (issue 26): payments received at the
 * counter (cash, cheque, CESU, bank transfer) against a family's
 * invoices, their list, and the month's CSV for the town's accounting
 * (invoices issued, invoices paid and how), beside the SEPA file.
 *
 * A counter payment settles whole invoices of one family, in one
 * transaction: the invoices locked (FOR UPDATE, the order of their ids),
 * refused when one is not the family's, already paid, or in an online
 * payment not yet settled; the amount must be their total; then the
 * counter_payment row and its invoices, the invoices paid (paid_by
 * 'counter'), the audit row and catalogue.version + 1 (unpaid invoices
 * past due block booking through the overlay), COMMIT; then the family's
 * {f:<fid>}:invoices is republished (the module's GET /api/invoices).
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "office.h"


#define GCHO_CTR_INVOICES_MAX  100


/* "YYYY-MM" */
static int
gcho_ctr_month(const char *m)
{
    gch_day_t  d;
    char       day[11];

    if (m == NULL || strlen(m) != 7) {
        return 0;
    }

    snprintf(day, sizeof(day), "%s-01", m);
    return gch_day_parse(&d, day, 10) == 0;
}


/*
 * POST /api/staff/counter-payments: {"family_id", "method": "cash" |
 * "cheque" | "cesu" | "transfer", "amount_cents", "reference",
 * "invoice_ids": [...]}.  201 the payment.
 */
static int
gcho_ctr_create(gcho_req_t *rq)
{
    static const gch_jfield_t  f[] = {
        { "family_id", GCH_J_STRING, 1 },
        { "method", GCH_J_STRING, 1 },
        { "amount_cents", GCH_J_NUMBER, 1 },
        { "reference", GCH_J_STRING | GCH_J_NULL, 0 },
        { "invoice_ids", GCH_J_ARRAY, 1 },
    };

    int                 i, n, rc;
    char                fid[GCHO_ID_MAX], method[16], ref[201],
                        amount[32], msg[256], pid[32];
    long long           cents, id;
    PGresult           *res;
    gch_jcx_t           cx;
    gch_json_t          doc;
    gchb_arr_t          ids;
    gch_error_t         err;
    const char         *p[6];
    const gch_jnode_t  *v[5], *e;

    if (gcho_body_json(rq, &doc, f, 5, v) != 0) {
        return 0;
    }

    memset(&err, 0, sizeof(err));
    memset(&ids, 0, sizeof(ids));
    gch_jcx_init(&cx, &err);
    ref[0] = '\0';

    if (gcho_str(rq, "family_id", v[0], fid, sizeof(fid), 1) != 0
        || gcho_str(rq, "method", v[1], method, sizeof(method), 1) != 0
        || (v[3] && v[3]->type == GCH_J_STRING
            && gcho_str(rq, "reference", v[3], ref, sizeof(ref), 0) != 0))
    {
        gch_json_free(&doc);
        return 0;
    }

    if (strcmp(method, "cash") && strcmp(method, "cheque")
        && strcmp(method, "cesu") && strcmp(method, "transfer"))
    {
        gch_json_free(&doc);
        return gcho_error(rq, 400, "invalid_field", "$.method : « cash », "
                          "« cheque », « cesu » ou « transfer »");
    }

    if (gch_json_int(&cx, "amount_cents", v[2], 1, 10000000, &cents) != 0
        || gch_json_array(&cx, "invoice_ids", v[4], 1,
                          GCHO_CTR_INVOICES_MAX) != 0)
    {
        gch_json_free(&doc);
        return gcho_error(rq, 400, "invalid_field", err.message);
    }

    i = 0;
    for (e = v[4]->child; e != NULL; e = e->next, i++) {
        snprintf(msg, sizeof(msg), "invoice_ids[%d]", i);
        if (gch_json_int(&cx, msg, e, 1, (long long) 1 << 62, &id) != 0) {
            gch_json_free(&doc);
            gchb_arr_free(&ids, 1);
            return gcho_error(rq, 400, "invalid_field", err.message);
        }
        gchb_arr_int(&ids, id);
    }
    gch_json_free(&doc);

    p[0] = gchb_arr_end(&ids);
    if (p[0] == NULL) {
        gchb_arr_free(&ids, 1);
        return gcho_error(rq, 500, "internal",
                          "Une erreur interne est survenue.");
    }

    if (gcho_begin(rq) != 0) {
        gchb_arr_free(&ids, 1);
        return 0;
    }

    /* the invoices, locked in the order of their ids */
    p[1] = fid;
    res = gcho_sql(rq,
        "select i.id, i.family_id = $2, i.paid,"
        "  exists (select 1 from payment_operation_invoice oi"
        "    join payment_operation o on o.id = oi.operation_id"
        "    where oi.invoice_id = i.id and o.status = 'pending'),"
        "  i.total_cents - i.credited_cents, i.reference"
        " from invoice i where i.id = any($1::bigint[])"
        " order by i.id for update of i", 2, p);
    if (res == NULL) {
        gchb_arr_free(&ids, 1);
        return 0;
    }

    n = PQntuples(res);
    rc = 0;
    msg[0] = '\0';
    id = 0;

    if (n != (int) ids.n) {
        rc = 404;
        snprintf(msg, sizeof(msg), "Une des factures n'existe pas (ou est "
                 "en double dans la demande).");
    }

    for (i = 0; i < n && rc == 0; i++) {
        if (strcmp(PQgetvalue(res, i, 1), "t") != 0) {
            rc = 400;
            snprintf(msg, sizeof(msg), "La facture n° %s n'est pas celle "
                     "de cette famille.", PQgetvalue(res, i, 5));
        } else if (strcmp(PQgetvalue(res, i, 2), "t") == 0) {
            rc = 409;
            snprintf(msg, sizeof(msg), "La facture n° %s est déjà payée.",
                     PQgetvalue(res, i, 5));
        } else if (strcmp(PQgetvalue(res, i, 3), "t") == 0) {
            rc = 4091;
            snprintf(msg, sizeof(msg), "La facture n° %s est dans un "
                     "paiement en ligne pas encore terminé.",
                     PQgetvalue(res, i, 5));
        }
        id += atoll(PQgetvalue(res, i, 4));
    }
    PQclear(res);

    if (rc == 0 && id != cents) {
        rc = 422;
        snprintf(msg, sizeof(msg), "Le montant reçu (%lld,%02lld €) n'est "
                 "pas le total des factures (%lld,%02lld €) : un paiement "
                 "au guichet règle des factures entières.", cents / 100,
                 cents % 100, id / 100, id % 100);
    }

    if (rc != 0) {
        gchb_arr_free(&ids, 1);
        gcho_rollback();
        return rc == 404 ? gcho_error(rq, 404, "not_found", msg)
               : rc == 400 ? gcho_error(rq, 400, "invalid_field", msg)
               : rc == 409 ? gcho_error(rq, 409, "invoice_paid", msg)
               : rc == 4091 ? gcho_error(rq, 409, "payment_pending", msg)
               : gcho_error(rq, 422, "amount_mismatch", msg);
    }

    snprintf(amount, sizeof(amount), "%lld", cents);
    p[2] = method;
    p[3] = amount;
    p[4] = ref;
    p[5] = rq->staff;
    rc = gcho_sql_value(rq, pid, sizeof(pid),
        "with pay as (insert into counter_payment (family_id, method,"
        "     amount_cents, reference, recorded_by)"
        "   values ($2, $3, $4, $5, $6) returning id),"
        " link as (insert into counter_payment_invoice"
        "   select pay.id, x from pay, unnest($1::bigint[]) x)"
        " update invoice set paid = true, paid_by = 'counter',"
        "   paid_at = now()"
        " from pay where invoice.id = any($1::bigint[])"
        " returning pay.id", 6, p);
    gchb_arr_free(&ids, 1);
    if (rc < 0) {
        return 0;
    }

    {
        char         target[64];
        const char  *kv[6] = { "family_id", fid, "method", method,
                               "amount_cents", amount };

        snprintf(target, sizeof(target), "counter_payment:%s", pid);
        if (gcho_audit_kv(rq, "payment.counter", target, kv, 3) != 0
            || gcho_catalogue_changed(rq) != 0
            || gcho_commit(rq) != 0)
        {
            return 0;
        }
    }

    if (gcho_redis(NULL) == NULL
        || gchb_invoice_publish_family(gcho_ctx.pg, gcho_ctx.redis, NULL,
                                       fid) < 0)
    {
        gchb_log("warn", "office: invoices of %s not republished after "
                 "counter payment %s (the next invoicing run will)", fid,
                 pid);
    }
    gcho_redis_drop_broken();

    p[0] = pid;
    return gcho_reply_row(rq, 201,
        "select json_build_object('id', c.id, 'family_id', c.family_id,"
        "  'method', c.method, 'amount_cents', c.amount_cents,"
        "  'reference', c.reference, 'received_at', c.received_at,"
        "  'recorded_by', c.recorded_by,"
        "  'invoices', (select json_agg(i.number order by i.id)"
        "    from counter_payment_invoice ci join invoice i"
        "    on i.id = ci.invoice_id where ci.payment_id = c.id),"
        "  'invoice_references', (select json_agg(i.reference order by i.id)"
        "    from counter_payment_invoice ci join invoice i"
        "    on i.id = ci.invoice_id where ci.payment_id = c.id))"
        " from counter_payment c where c.id = $1", 1, p,
        "Paiement introuvable.");
}


/* GET /api/staff/counter-payments?month=YYYY-MM&family_id=F */
static int
gcho_ctr_list(gcho_req_t *rq)
{
    const char  *p[2];

    p[0] = gcho_query(rq, "month");
    p[1] = gcho_query(rq, "family_id");

    if (p[0] != NULL && !gcho_ctr_month(p[0])) {
        return gcho_error(rq, 400, "invalid_field",
                          "Le paramètre month doit être un mois AAAA-MM.");
    }

    return gcho_reply_row(rq, 200,
        "select json_build_object('payments', coalesce(json_agg("
        "  json_build_object('id', c.id, 'family_id', c.family_id,"
        "    'method', c.method, 'amount_cents', c.amount_cents,"
        "    'reference', c.reference, 'received_at', c.received_at,"
        "    'recorded_by', c.recorded_by,"
        "    'invoices', (select json_agg(i.number order by i.id)"
        "      from counter_payment_invoice ci join invoice i"
        "      on i.id = ci.invoice_id where ci.payment_id = c.id),"
        "    'invoice_references', (select json_agg(i.reference"
        "      order by i.id) from counter_payment_invoice ci join invoice i"
        "      on i.id = ci.invoice_id where ci.payment_id = c.id))"
        "  order by c.received_at desc, c.id desc), '[]'))"
        " from counter_payment c"
        " where ($1::text is null or (c.received_at at time zone"
        "   'Europe/Paris') >= ($1 || '-01')::date"
        "   and (c.received_at at time zone 'Europe/Paris')"
        "     < ($1 || '-01')::date + interval '1 month')"
        "   and ($2::text is null or c.family_id = $2)", 2, p, "");
}


/* An invoice's amount for the export: its total, or ($2 a régie) its
 * total if it is that régie's (migration 0041), 0 if another's, and for
 * an invoice made before 0041 (all régies) the sum of its lines of that
 * régie's activities. */
#define GCHO_CTR_AMOUNT                                                      \
    "case when $2::text is null then i.total_cents"                          \
    " when i.regie_code is not null then"                                    \
    "   case when i.regie_code = $2 then i.total_cents else 0 end else"      \
    " (select coalesce(sum(l.price_cents), 0) from invoice_line l"           \
    "   join booking b on b.id = l.booking_id"                               \
    "   join session s on s.id = b.session_id"                               \
    "   left join activity_regie ar on ar.activity_id = s.activity_id"       \
    "   where l.invoice_id = i.id"                                           \
    "     and coalesce(ar.regie_code, 'principale') = $2) end"


/* What credit notes took off an invoice before it was paid (of the régie
 * $2, if any): its encaissement is the money received, the rest. */
#define GCHO_CTR_CREDITED                                                    \
    "coalesce((select sum(cn.amount_cents) from credit_note cn"              \
    "   where cn.invoice_id = i.id and not cn.after_payment"                 \
    "     and ($2::text is null or cn.regie_code = $2)), 0)"


/*
 * GET /api/staff/exports/accounting?month=YYYY-MM&regie=CODE: text/csv
 * (UTF-8, ";", CRLF, every text field quoted), columns
 *   type;date;facture;famille;mode;montant;reference;agent
 * one "facture" row per invoice issued that month (date issued, amount
 * its total), one "encaissement" row per invoice paid that month (date
 * paid; mode especes / cheque / cesu / virement / en_ligne /
 * prelevement; reference: the cheque's or transfer's, the provider's,
 * the SEPA message's); dates and months in Europe/Paris; amounts in
 * euros with a decimal comma (docs/office.md).  With regie: the amounts
 * of that régie's lines, invoices without any left out.
 */
static int
gcho_ctr_export(gcho_req_t *rq)
{
    int          rc;
    char         disp[160];
    PGresult    *res;
    const char  *p[2];

    p[0] = gcho_query(rq, "month");
    p[1] = gcho_query(rq, "regie");
    if (!gcho_ctr_month(p[0])) {
        return gcho_error(rq, 400, "invalid_field",
                          "Le paramètre month doit être un mois AAAA-MM.");
    }

    if (p[1] != NULL) {
        rc = gcho_sql_exists(rq, "select 1 from regie where code = $1",
                             1, p + 1);
        if (rc < 0) {
            return 0;
        }
        if (rc == 0) {
            return gcho_error(rq, 404, "not_found",
                              "Cette régie n'existe pas.");
        }
    }

    res = gcho_sql(rq,
        "with m as (select ($1 || '-01')::date f,"
        "   ($1 || '-01')::date + interval '1 month' t),"
        " rows as ("
        "  select 0 k, i.issued_at at time zone 'Europe/Paris' d,"
        "    i.reference number,"
        "    'facture' ty, i.family_id fam, '' mode, " GCHO_CTR_AMOUNT " c,"
        "    '' ref, '' who, '' piece, i.id iid"
        "  from invoice i, m"
        "  where i.issued_at at time zone 'Europe/Paris' >= m.f"
        "    and i.issued_at at time zone 'Europe/Paris' < m.t"
        "  union all"
        "  select 1, i.paid_at at time zone 'Europe/Paris', i.reference,"
        "    'encaissement', i.family_id,"
        "    case i.paid_by when 'online' then 'en_ligne'"
        "      when 'direct_debit' then 'prelevement'"
        "      else case cp.method when 'cash' then 'especes'"
        "        when 'transfer' then 'virement' else cp.method end end,"
        "    " GCHO_CTR_AMOUNT " - " GCHO_CTR_CREDITED ","
        "    coalesce(cp.reference, (select o.provider_ref from"
        "      payment_operation_invoice oi join payment_operation o"
        "      on o.id = oi.operation_id where oi.invoice_id = i.id"
        "      and o.status = 'paid' limit 1), (select e.msg_id from"
        "      sepa_export_invoice ei join sepa_export e"
        "      on e.id = ei.export_id where ei.invoice_id = i.id"
        "      limit 1), ''),"
        "    coalesce(cp.recorded_by, ''), '', i.id"
        "  from invoice i cross join m"
        "  left join counter_payment_invoice ci on ci.invoice_id = i.id"
        "  left join counter_payment cp on cp.id = ci.payment_id"
        "  where i.paid and coalesce(i.paid_by, '') <> 'credit_note'"
        "    and i.paid_at at time zone 'Europe/Paris' >= m.f"
        "    and i.paid_at at time zone 'Europe/Paris' < m.t"
        "  union all"
        "  select 2, c.issued_at at time zone 'Europe/Paris', i.reference,"
        "    'avoir', i.family_id, '', c.amount_cents, c.reason,"
        "    c.issued_by, 'AV-' || c.number, i.id"
        "  from credit_note c join invoice i on i.id = c.invoice_id, m"
        "  where c.issued_at at time zone 'Europe/Paris' >= m.f"
        "    and c.issued_at at time zone 'Europe/Paris' < m.t"
        "    and ($2::text is null or c.regie_code = $2)"
        "  union all"
        "  select 3, r.refunded_at at time zone 'Europe/Paris', i.reference,"
        "    'remboursement', r.family_id,"
        "    case r.method when 'cash' then 'especes'"
        "      when 'transfer' then 'virement' else r.method end,"
        "    r.amount_cents, r.reference, r.recorded_by, 'RB-' || r.number,"
        "    i.id"
        "  from refund r join invoice i on i.id = r.invoice_id, m"
        "  where r.refunded_at at time zone 'Europe/Paris' >= m.f"
        "    and r.refunded_at at time zone 'Europe/Paris' < m.t"
        "    and ($2::text is null or r.regie_code = $2))"
        " select 'type;date;facture;famille;mode;montant;reference;agent;"
        "piece'"
        "   || E'\\r\\n' || coalesce(string_agg("
        "     concat_ws(';', '\"' || ty || '\"', to_char(d, 'YYYY-MM-DD'),"
        "       number, '\"' || replace(fam, '\"', '\"\"') || '\"',"
        "       '\"' || mode || '\"',"
        "       replace(to_char(c / 100.0, 'FM9999999990.00'), '.', ','),"
        "       '\"' || replace(ref, '\"', '\"\"') || '\"',"
        "       '\"' || replace(who, '\"', '\"\"') || '\"',"
        "       '\"' || piece || '\"')"
        "     || E'\\r\\n', '' order by k, d, iid)"
        "     filter (where $2::text is null or c > 0), '')"
        " from rows", 2, p);
    if (res == NULL) {
        return 0;
    }

    snprintf(disp, sizeof(disp), "attachment; filename=\"guichet-"
             "comptabilite-%s%s%s.csv\"", p[1] ? p[1] : "", p[1] ? "-" : "",
             p[0]);
    gcho_add_header(rq, "Content-Disposition", disp);
    rc = gcho_reply_bytes(rq, 200, "text/csv; charset=utf-8",
                          PQgetvalue(res, 0, 0), PQgetlength(res, 0, 0));
    PQclear(res);

    return rc;
}


/* GET /api/staff/regies: {"regies": [{"code", "name", "activities"}]} */
static int
gcho_ctr_regies(gcho_req_t *rq)
{
    return gcho_reply_row(rq, 200,
        "select json_build_object('regies', coalesce(json_agg("
        "  json_build_object('code', r.code, 'name', r.name,"
        "    'activities', (select coalesce(json_agg(a.id order by a.id),"
        "      '[]') from activity a left join activity_regie ar"
        "      on ar.activity_id = a.id"
        "      where coalesce(ar.regie_code, 'principale') = r.code))"
        "  order by r.code), '[]'))"
        " from regie r", 0, NULL, "");
}


/* POST /api/staff/regies (admin): {"code", "name"}.  201 the list. */
static int
gcho_ctr_regie_create(gcho_req_t *rq)
{
    static const gch_jfield_t  f[] = {
        { "code", GCH_J_STRING, 1 },
        { "name", GCH_J_STRING, 1 },
    };

    int                 i;
    char                code[33], name[201];
    PGresult           *res;
    gch_json_t          doc;
    const char         *p[2];
    const gch_jnode_t  *v[2];

    if (gcho_body_json(rq, &doc, f, 2, v) != 0) {
        return 0;
    }

    if (gcho_str(rq, "code", v[0], code, sizeof(code), 1) != 0
        || gcho_str(rq, "name", v[1], name, sizeof(name), 1) != 0)
    {
        gch_json_free(&doc);
        return 0;
    }
    gch_json_free(&doc);

    for (i = 0; code[i]; i++) {
        if (!((code[i] >= 'a' && code[i] <= 'z')
              || (code[i] >= '0' && code[i] <= '9') || code[i] == '_'
              || code[i] == '-'))
        {
            return gcho_error(rq, 400, "invalid_field", "$.code : lettres "
                              "minuscules, chiffres, « _ » ou « - »");
        }
    }

    if (gcho_begin(rq) != 0) {
        return 0;
    }

    p[0] = code;
    p[1] = name;
    res = gcho_sql(rq, "insert into regie (code, name) values ($1, $2)"
                       " on conflict (code) do nothing returning code",
                   2, p);
    if (res == NULL) {
        return 0;
    }
    i = PQntuples(res);
    PQclear(res);

    if (i != 1) {
        gcho_rollback();
        return gcho_error(rq, 409, "already_exists",
                          "Une régie porte déjà ce code.");
    }

    {
        char         target[48];
        const char  *kv[2] = { "name", name };

        snprintf(target, sizeof(target), "regie:%s", code);
        if (gcho_audit_kv(rq, "regie.create", target, kv, 1) != 0
            || gcho_commit(rq) != 0)
        {
            return 0;
        }
    }

    gcho_ctr_regies(rq);
    if (rq->status == 200) {
        rq->status = 201;
    }

    return 0;
}


/* PUT /api/staff/activities/{id}/regie (admin): {"regie": code}. */
static int
gcho_ctr_activity_regie(gcho_req_t *rq)
{
    static const gch_jfield_t  f[] = {
        { "regie", GCH_J_STRING, 1 },
    };

    int                 n;
    char                code[33];
    PGresult           *res;
    gch_json_t          doc;
    const char         *p[2];
    const gch_jnode_t  *v[1];

    if (gcho_body_json(rq, &doc, f, 1, v) != 0) {
        return 0;
    }
    if (gcho_str(rq, "regie", v[0], code, sizeof(code), 1) != 0) {
        gch_json_free(&doc);
        return 0;
    }
    gch_json_free(&doc);

    if (gcho_begin(rq) != 0) {
        return 0;
    }

    p[0] = rq->param[0];
    p[1] = code;
    res = gcho_sql(rq, "insert into activity_regie (activity_id,"
                       "   regie_code)"
                       " select a.id, r.code from activity a, regie r"
                       " where a.id = $1 and r.code = $2"
                       " on conflict (activity_id) do update"
                       "   set regie_code = excluded.regie_code"
                       " returning activity_id", 2, p);
    if (res == NULL) {
        return 0;
    }
    n = PQntuples(res);
    PQclear(res);

    if (n != 1) {
        gcho_rollback();
        return gcho_error(rq, 404, "not_found", "Cette activité ou cette "
                          "régie n'existe pas.");
    }

    {
        char         target[GCHO_ID_MAX + 16];
        const char  *kv[2] = { "regie", code };

        snprintf(target, sizeof(target), "activity:%s", rq->param[0]);
        if (gcho_audit_kv(rq, "activity.regie", target, kv, 1) != 0
            || gcho_commit(rq) != 0)
        {
            return 0;
        }
    }

    return gcho_ctr_regies(rq);
}


/*
 * GET /api/staff/families/{id}/relance.pdf (régie): the letter for the
 * family's invoices past due and not paid (the e-mail is the invoice_due
 * reminder, notice.c): the town, the day, the invoices, their total, how
 * to pay.  404 when none is due.
 */
static int
gcho_ctr_letter(gcho_req_t *rq)
{
    int          row, n;
    char         line[256], name[GCHO_ID_MAX + 32], today[11];
    long long    total;
    int64_t      now;
    gch_day_t    day;
    int          minute;
    PGresult    *res;
    gcho_pdf_t   d;
    const char  *p[1];

    p[0] = rq->param[0];
    res = gcho_sql(rq,
        "select i.reference, to_char(i.month, 'MM/YYYY'),"
        "  to_char(i.due_date, 'DD/MM/YYYY'),"
        "  i.total_cents - i.credited_cents,"
        "  (select name from town where id = 1),"
        "  coalesce(f.login, f.id)"
        " from invoice i join family f on f.id = i.family_id"
        " where i.family_id = $1 and not i.paid"
        "   and i.due_date < (now() at time zone 'Europe/Paris')::date"
        " order by i.due_date, i.id", 1, p);
    if (res == NULL) {
        return 0;
    }

    n = PQntuples(res);
    if (n == 0) {
        PQclear(res);
        return gcho_error(rq, 404, "not_found", "Aucune facture échue "
                          "n'est à payer pour cette famille.");
    }

    if (gcho_pdf_open(&d) != 0) {
        PQclear(res);
        if (d.pdf != NULL) {
            HPDF_Free(d.pdf);
        }
        return gcho_error(rq, 500, "internal",
                          "Une erreur interne est survenue.");
    }

    now = gcho_now();
    gch_unix_to_paris(now, &day, &minute, NULL);
    gch_day_format(day, today);

    gcho_pdf_page(&d);
    snprintf(line, sizeof(line), "Mairie de %s - régie", PQgetvalue(res, 0, 4)
             ? PQgetvalue(res, 0, 4) : "");
    gcho_pdf_text(&d, d.bold, 12, 40, 515, line);
    d.y -= 16;
    snprintf(line, sizeof(line), "Le %.2s/%.2s/%.4s", today + 8, today + 5,
             today);
    gcho_pdf_text(&d, d.font, 10, 40, 515, line);
    d.y -= 40;
    snprintf(line, sizeof(line), "Famille %s (dossier %s)",
             PQgetvalue(res, 0, 5), rq->param[0]);
    gcho_pdf_text(&d, d.bold, 11, 300, 255, line);
    d.y -= 50;
    gcho_pdf_text(&d, d.bold, 11, 40, 515,
                  "Objet : rappel de factures non payées");
    d.y -= 24;
    gcho_pdf_text(&d, d.font, 10, 40, 515, "Madame, Monsieur,");
    d.y -= 18;
    gcho_pdf_text(&d, d.font, 10, 40, 515, "Sauf erreur de notre part, les "
                  "factures suivantes n'ont pas été réglées à leur "
                  "échéance :");
    d.y -= 26;

    gcho_pdf_text(&d, d.bold, 9, 40, 100, "Facture");
    gcho_pdf_text(&d, d.bold, 9, 150, 100, "Mois");
    gcho_pdf_text(&d, d.bold, 9, 260, 120, "Échéance");
    gcho_pdf_text(&d, d.bold, 9, 470, 85, "Montant");
    gcho_pdf_rule(&d);
    d.y -= 16;

    total = 0;
    for (row = 0; row < n && d.y > 120; row++) {
        snprintf(line, sizeof(line), "n° %s", PQgetvalue(res, row, 0));
        gcho_pdf_text(&d, d.font, 10, 40, 100, line);
        gcho_pdf_text(&d, d.font, 10, 150, 100, PQgetvalue(res, row, 1));
        gcho_pdf_text(&d, d.font, 10, 260, 120, PQgetvalue(res, row, 2));
        total += atoll(PQgetvalue(res, row, 3));
        snprintf(line, sizeof(line), "%lld,%02lld €",
                 atoll(PQgetvalue(res, row, 3)) / 100,
                 atoll(PQgetvalue(res, row, 3)) % 100);
        gcho_pdf_text(&d, d.font, 10, 470, 85, line);
        d.y -= 16;
    }
    for ( /* void */ ; row < n; row++) {
        total += atoll(PQgetvalue(res, row, 3));      /* past the page */
    }

    d.y -= 6;
    snprintf(line, sizeof(line), "Total à payer : %lld,%02lld €",
             total / 100, total % 100);
    gcho_pdf_text(&d, d.bold, 11, 40, 515, line);
    d.y -= 28;
    gcho_pdf_text(&d, d.font, 10, 40, 515, "Vous pouvez les payer en ligne "
                  "dans votre Espace Famille, ou au guichet de la régie");
    d.y -= 14;
    gcho_pdf_text(&d, d.font, 10, 40, 515, "(espèces, chèque, CESU, "
                  "virement).  Si vous les avez réglées entre-temps, ne "
                  "tenez pas compte de ce courrier.");
    d.y -= 28;
    gcho_pdf_text(&d, d.font, 10, 40, 515, "Le régisseur");
    PQclear(res);

    snprintf(name, sizeof(name), "relance-%s.pdf", rq->param[0]);
    return gcho_pdf_reply(rq, &d, name);
}


const gcho_route_t  gcho_counter_routes[] = {
    { "GET", "/api/staff/families/*/relance.pdf", GCHO_STAFF, GCHO_REGIE, 0,
      gcho_ctr_letter },
    { "POST", "/api/staff/counter-payments", GCHO_STAFF, GCHO_REGIE,
      GCHO_BODY_JSON, gcho_ctr_create },
    { "GET", "/api/staff/counter-payments", GCHO_STAFF, GCHO_REGIE, 0,
      gcho_ctr_list },
    { "GET", "/api/staff/exports/accounting", GCHO_STAFF, GCHO_REGIE, 0,
      gcho_ctr_export },
    { "GET", "/api/staff/regies", GCHO_STAFF, GCHO_REGIE, 0,
      gcho_ctr_regies },
    { "POST", "/api/staff/regies", GCHO_STAFF, GCHO_ADMIN, GCHO_BODY_JSON,
      gcho_ctr_regie_create },
    { "PUT", "/api/staff/activities/*/regie", GCHO_STAFF, GCHO_ADMIN,
      GCHO_BODY_JSON, gcho_ctr_activity_regie },
    { NULL, NULL, 0, 0, 0, NULL }
};
