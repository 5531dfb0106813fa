/*
 * payment.c -- guichet-office: a family's online payments (PayFiP-like;
 * the régie's invoicing run and its lists of these payments and of the
 * SEPA exports are invoicing.c's, direct-debit mandates debit.c's).
 *
 * Online payment, shaped like the DGFiP's PayFiP:
 *
 *   1. POST /api/payments {"invoice_ids": [...]}: whole unpaid invoices of
 *      the family, none in another pending operation, 1 € .. 100,000 €.
 *      ONE transaction locks the invoices, inserts the operation (a fresh
 *      32-hex id) and its invoices, registers the operation with the
 *      provider (POST <payfip_url>/api/operations) and commits; the
 *      browser is sent to <payfip_url>/paiement/<id>.
 *   2. The provider notifies POST /api/payments/notify with only
 *      "idop=<id>" (form-encoded, as PayFiP does).  The office trusts
 *      nothing of it but the id: it asks the provider for the result
 *      (GET <payfip_url>/api/operations/<id>), then settles in ONE
 *      transaction with "update ... where id = $1 and status = 'pending'":
 *      the first settlement wins, a duplicated notification finds nothing
 *      pending and changes nothing.  Paid: the invoices are paid (one
 *      somehow already paid is recorded in payment_overpayment, to refund,
 *      never paid twice).  Refused or abandoned: the invoices stay unpaid
 *      and may be paid again.  Then the catalogue is marked changed
 *      (unpaid invoices block booking through worker/overlay.c) and the
 *      family's {T}:f:<fid>:invoices is republished.
 *   3. GET /api/payments/{id} (the return page) settles the same way when
 *      the operation is still pending, in case the notification is late.
 *
 * Direct debit (debit.c): families with a mandate cannot pay online.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <sodium.h>

#include "office.h"


#define GCHO_PAY_MIN        100          /* cents: 1 € */
#define GCHO_PAY_MAX        10000000     /* cents: 100,000 € */
#define GCHO_PAY_INVOICES   50
#define GCHO_PAY_ANSWER     65536        /* the provider's answer, bytes */

#define GCHO_PAY_NOTIFY_PATH  "/api/payments/notify"


/* one operation as JSON, o the operation */
#define GCHO_PAY_JSON                                                        \
    "json_build_object('operation_id', o.id, 'amount_cents', o.amount_cents,"\
    " 'status', o.status, 'created_at', o.created_at,"                       \
    " 'settled_at', o.settled_at,"                                           \
    " 'invoices', (select coalesce(json_agg(json_build_object('id', i.id,"   \
    "   'number', i.number, 'month', to_char(i.month, 'YYYY-MM'),"           \
    "   'reference', i.reference, 'regie', i.regie_code,"                   \
    "   'total_cents', i.total_cents) order by i.id), '[]')"                 \
    "   from payment_operation_invoice p join invoice i"                     \
    "   on i.id = p.invoice_id where p.operation_id = o.id))"


/* ------------------------------------------------------------------ */
/* the provider                                                         */

typedef struct {
    gchb_buf_t   buf;
    int          over;
} gcho_pay_buf_t;


static size_t
gcho_pay_write(char *p, size_t size, size_t n, void *data)
{
    gcho_pay_buf_t  *b = data;

    n *= size;

    if (b->buf.len + n > GCHO_PAY_ANSWER) {
        b->over = 1;
        return 0;
    }

    return gchb_buf_add(&b->buf, p, n) == 0 ? n : 0;
}


/*
 * One request to the provider (json NULL: GET, else POST of json), with
 * short timeouts: the office serves one request at a time.  0 and *out
 * (malloc'ed, the caller frees it) when it answered 2xx, else -1 after
 * logging.
 */
static int
gcho_pay_call(const char *url, const char *json, char **out)
{
    long                status;
    CURL               *c;
    CURLcode            rc;
    gcho_pay_buf_t      b;
    struct curl_slist  *h;

    *out = NULL;
    memset(&b, 0, sizeof(b));
    h = NULL;

    c = curl_easy_init();
    if (c == NULL) {
        gchb_log("error", "office: payfip: curl_easy_init failed");
        return -1;
    }

    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, gcho_pay_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);

    if (json != NULL) {
        h = curl_slist_append(h, "Content-Type: application/json");
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, json);
    }

    rc = curl_easy_perform(c);
    status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);

    curl_slist_free_all(h);
    curl_easy_cleanup(c);

    if (rc != CURLE_OK || status < 200 || status > 299
        || b.buf.data == NULL)
    {
        gchb_log("error", "office: payfip: %s: %s (HTTP %ld)", url,
                 rc != CURLE_OK ? curl_easy_strerror(rc) : "bad answer",
                 status);
        gchb_buf_free(&b.buf);
        return -1;
    }

    *out = b.buf.data;
    return 0;
}


typedef struct {
    char       status[16];        /* pending paid refused abandoned */
    char       ref[64];           /* the provider's transaction ref */
    long long  amount_cents;
} gcho_pay_result_t;


/* Copies the string member v (NULL or not a string: "") into out. */
static void
gcho_pay_copy(const gch_jnode_t *v, char *out, size_t size)
{
    size_t  n;

    out[0] = '\0';

    if (v == NULL || v->type != GCH_J_STRING) {
        return;
    }

    n = v->len < size - 1 ? v->len : size - 1;
    memcpy(out, v->str, n);
    out[n] = '\0';
}


/* Asks the provider for operation id's result.  0 and *r, or -1 after
 * logging (unreachable, unreadable, another operation, unknown status). */
static int
gcho_pay_lookup(const char *id, gcho_pay_result_t *r)
{
    int                 rc;
    char                url[1024], opid[GCHO_ID_MAX], *out;
    gch_json_t          doc;
    gch_error_t         err;
    const gch_jnode_t  *m;

    memset(r, 0, sizeof(*r));
    r->amount_cents = -1;

    snprintf(url, sizeof(url), "%s/api/operations/%s",
             gcho_ctx.conf.payfip_url, id);

    if (gcho_pay_call(url, NULL, &out) != 0) {
        return -1;
    }

    if (gch_json_parse(&doc, out, strlen(out), 8, &gch_alloc_std, &err)
        != GCH_OK)
    {
        gchb_log("error", "office: payfip: %s: not JSON: %s", url,
                 err.message);
        free(out);
        return -1;
    }

    opid[0] = '\0';

    if (doc.root->type == GCH_J_OBJECT) {
        for (m = doc.root->child; m; m = m->next) {
            if (m->klen == 2 && memcmp(m->key, "id", 2) == 0) {
                gcho_pay_copy(m, opid, sizeof(opid));

            } else if (m->klen == 6 && memcmp(m->key, "status", 6) == 0) {
                gcho_pay_copy(m, r->status, sizeof(r->status));

            } else if (m->klen == 12
                       && memcmp(m->key, "amount_cents", 12) == 0
                       && m->type == GCH_J_NUMBER && m->len < 16)
            {
                r->amount_cents = strtoll(m->str, NULL, 10);

            } else if (m->klen == 12
                       && memcmp(m->key, "provider_ref", 12) == 0)
            {
                gcho_pay_copy(m, r->ref, sizeof(r->ref));
            }
        }
    }

    gch_json_free(&doc);
    free(out);

    rc = strcmp(opid, id) == 0
         && (strcmp(r->status, "pending") == 0
             || strcmp(r->status, "paid") == 0
             || strcmp(r->status, "refused") == 0
             || strcmp(r->status, "abandoned") == 0);

    if (!rc) {
        gchb_log("error", "office: payfip: %s: unexpected answer "
                 "(id \"%s\", status \"%s\")", url, opid, r->status);
        return -1;
    }

    return 0;
}


/* In the settling transaction: operation id takes r's status; paid, its
 * invoices are paid (those paid before by another way are recorded as
 * overpaid, not paid twice).  0, or -1 after answering 503. */
static int
gcho_pay_apply(gcho_req_t *rq, const char *id, const gcho_pay_result_t *r,
    int paid)
{
    const char  *p[3];

    p[0] = id;
    p[1] = r->status;
    p[2] = r->ref[0] ? r->ref : NULL;
    if (gcho_sql_do(rq, "update payment_operation set status = $2,"
                        " settled_at = now(), provider_ref = $3"
                        " where id = $1 and status = 'pending'", 3, p) != 0)
    {
        return -1;
    }

    if (!paid) {
        return 0;
    }

    if (gcho_sql_do(rq, "insert into payment_overpayment (operation_id,"
                        "   invoice_id, amount_cents)"
                        " select p.operation_id, i.id,"
                        "   i.total_cents - i.credited_cents"
                        " from payment_operation_invoice p"
                        " join invoice i on i.id = p.invoice_id"
                        " where p.operation_id = $1 and i.paid", 1, p) != 0)
    {
        return -1;
    }

    if (gcho_sql_do(rq, "update invoice set paid = true,"
                        " paid_by = 'online', paid_at = now()"
                        " where not paid and id in (select invoice_id"
                        "   from payment_operation_invoice"
                        "   where operation_id = $1)", 1, p) != 0)
    {
        return -1;
    }

    return 0;
}


/* The e-mail to the family about operation id's outcome r. */
static void
gcho_pay_letter(const gcho_pay_result_t *r, const char *id, int paid,
    char *subject, size_t ssize, char *body, size_t bsize)
{
    if (paid) {
        snprintf(subject, ssize, "Paiement reçu");
        snprintf(body, bsize, "Bonjour,\n\nNous avons bien reçu "
                 "votre paiement en ligne de %lld,%02lld € (opération %s)."
                 "\nVos factures sont réglées.\n",
                 r->amount_cents / 100, r->amount_cents % 100, id);
    } else {
        snprintf(subject, ssize, "Paiement non abouti");
        snprintf(body, bsize, "Bonjour,\n\nVotre paiement en ligne "
                 "(opération %s) n'a pas abouti (%s).\nVos factures restent "
                 "à payer ; vous pouvez les régler à nouveau depuis votre "
                 "espace famille.\n", id,
                 strcmp(r->status, "refused") == 0 ? "refusé" : "abandonné");
    }
}


/*
 * Settles operation id with the provider's result r (not pending), in ONE
 * transaction; a settled operation is left alone.  Then republishes the
 * family's invoices.  0 (*status: the operation's status now), or -1
 * after answering 503 or 502.
 */
static int
gcho_pay_settle(gcho_req_t *rq, const char *id, const gcho_pay_result_t *r,
    char status[16])
{
    int            n, paid;
    char           fid[GCHO_ID_MAX], amount[32], subject[128], body[512];
    char           detail[256];
    PGresult      *res;
    redisContext  *rc;
    const char    *p[3];

    if (gcho_begin(rq) != 0) {
        return -1;
    }

    p[0] = id;
    res = gcho_sql(rq, "select family_id, amount_cents, status"
                       " from payment_operation where id = $1 for update",
                   1, p);
    if (res == NULL) {
        return -1;
    }

    n = PQntuples(res);
    if (n == 1) {
        snprintf(fid, sizeof(fid), "%s", PQgetvalue(res, 0, 0));
        snprintf(amount, sizeof(amount), "%s", PQgetvalue(res, 0, 1));
        snprintf(status, 16, "%s", PQgetvalue(res, 0, 2));
    }
    PQclear(res);

    if (n != 1) {
        gcho_rollback();
        gcho_error(rq, 404, "not_found", "Cette opération de paiement "
                   "n'existe pas.");
        return -1;
    }

    if (strcmp(status, "pending") != 0) {
        gcho_rollback();                 /* settled before: nothing to do */
        return 0;
    }

    paid = strcmp(r->status, "paid") == 0;

    if (paid && r->amount_cents != strtoll(amount, NULL, 10)) {
        gcho_rollback();
        gchb_log("error", "office: payfip: operation %s paid %lld cents, "
                 "%s expected: left pending", id, r->amount_cents, amount);
        gcho_error(rq, 502, "payment_provider_error",
                   "Le montant payé ne correspond pas à l'opération.");
        return -1;
    }

    if (gcho_pay_apply(rq, id, r, paid) != 0) {
        return -1;
    }

    snprintf(status, 16, "%s", r->status);
    gcho_pay_letter(r, id, paid, subject, sizeof(subject), body,
                    sizeof(body));

    snprintf(detail, sizeof(detail), "{\"status\": \"%s\", "
             "\"amount_cents\": %s}", r->status, amount);

    if (gcho_mail(rq, fid, "payment", id, subject, body) != 0
        || gcho_audit(rq, "payment.settle", id, detail) != 0
        || gcho_catalogue_changed(rq) != 0
        || gcho_commit(rq) != 0)
    {
        gcho_rollback();
        return -1;
    }

    /* the module's GET /api/invoices; the catalogue follows by itself */
    rc = gcho_redis(NULL);
    if (rc == NULL
        || gchb_invoice_publish_family(gcho_ctx.pg, rc, NULL, fid) < 0)
    {
        gchb_log("warn", "office: invoices of %s not republished after "
                 "operation %s (the next invoicing run will)", fid, id);
    }

    return 0;
}


/* ------------------------------------------------------------------ */
/* families                                                             */

static const gch_jfield_t  gcho_pay_fields[] = {
    { "invoice_ids", GCH_J_ARRAY, 1 }
};


/* The invoice ids of v as a PostgreSQL array literal; 0, or -1 after
 * answering 400 invalid_field. */
static int
gcho_pay_ids(gcho_req_t *rq, const gch_jnode_t *v, char *out, size_t size,
    size_t *count)
{
    size_t              i, j, n, mark;
    long long           id, ids[GCHO_PAY_INVOICES];
    gch_jcx_t           cx;
    gch_error_t         err;
    const gch_jnode_t  *e;

    gch_jcx_init(&cx, &err);

    if (gch_json_array(&cx, "invoice_ids", v, 1, GCHO_PAY_INVOICES)
        != GCH_OK)
    {
        gcho_error(rq, 400, "invalid_field", err.message);
        return -1;
    }

    mark = gch_jcx_key(&cx, "invoice_ids", 11);
    n = 0;
    out[0] = '{';
    out[1] = '\0';

    for (e = v->child, i = 0; e; e = e->next, i++) {
        gch_jcx_index(&cx, i);

        if (gch_json_int(&cx, NULL, e, 1, 999999999999LL, &id) != GCH_OK) {
            gcho_error(rq, 400, "invalid_field", err.message);
            return -1;
        }

        gch_jcx_pop(&cx, mark);

        for (j = 0; j < n; j++) {
            if (ids[j] == id) {
                gcho_error(rq, 400, "invalid_field", "Le champ invoice_ids "
                           "cite deux fois la même facture.");
                return -1;
            }
        }

        ids[n++] = id;
        snprintf(out + strlen(out), size - strlen(out), "%s%lld",
                 n > 1 ? "," : "", id);
    }

    snprintf(out + strlen(out), size - strlen(out), "}");
    *count = n;

    return 0;
}


/*
 * Before a new operation: the family's pending operations holding one of
 * the invoices ids are asked to the provider, and settled when it has a
 * result (a notification that never came).  0, or -1 after answering.
 */
static int
gcho_pay_resync(gcho_req_t *rq, const char *ids)
{
    int                n, i;
    char               opid[33], status[16];
    PGresult          *res;
    const char        *p[2];
    gcho_pay_result_t  r;

    p[0] = ids;
    p[1] = rq->family_id;
    res = gcho_sql(rq, "select distinct o.id from payment_operation o"
                       " join payment_operation_invoice p"
                       "   on p.operation_id = o.id"
                       " where p.invoice_id = any($1::bigint[])"
                       " and o.family_id = $2 and o.status = 'pending'"
                       " limit 8", 2, p);
    if (res == NULL) {
        return -1;
    }

    n = PQntuples(res);

    for (i = 0; i < n; i++) {
        snprintf(opid, sizeof(opid), "%s", PQgetvalue(res, i, 0));

        if (gcho_pay_lookup(opid, &r) == 0
            && strcmp(r.status, "pending") != 0
            && gcho_pay_settle(rq, opid, &r, status) != 0)
        {
            PQclear(res);
            return -1;
        }
    }

    PQclear(res);
    return 0;
}


/* The steps of POST /api/payments below return GCHO_GO (office.h). */

/* In the transaction: the family pays online (no direct debit), the
 * invoices (n ids) are its own, unpaid, not being paid, locked; *total
 * their sum in cents, within the online limits. */
static int
gcho_pay_lock(gcho_req_t *rq, const char *ids, size_t n, char *total,
    size_t size)
{
    int          rc;
    long long    cents;
    PGresult    *res;
    const char  *p[2];

    p[0] = rq->family_id;
    res = gcho_sql(rq, "select direct_debit from family where id = $1"
                       " for update", 1, p);
    if (res == NULL) {
        return 0;
    }
    rc = PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);

    if (rc) {
        gcho_rollback();
        return gcho_error(rq, 403, "direct_debit", "Vos factures sont "
                          "réglées par prélèvement automatique : le "
                          "paiement en ligne n'est pas possible.");
    }

    /* the invoices, locked: the family's, unpaid, not being paid */
    p[0] = ids;
    p[1] = rq->family_id;
    res = gcho_sql(rq, "select count(*) filter (where family_id = $2),"
                       "   count(*) filter (where family_id = $2 and paid),"
                       "   coalesce(sum(total_cents - credited_cents), 0)"
                       " from (select * from invoice"
                       "   where id = any($1::bigint[]) order by id"
                       "   for update) i", 2, p);
    if (res == NULL) {
        return 0;
    }

    if ((size_t) atoll(PQgetvalue(res, 0, 0)) != n) {
        PQclear(res);
        gcho_rollback();
        return gcho_error(rq, 404, "not_found",
                          "Une de ces factures n'existe pas dans votre "
                          "espace.");
    }

    rc = atoi(PQgetvalue(res, 0, 1));
    snprintf(total, size, "%s", PQgetvalue(res, 0, 2));
    PQclear(res);

    if (rc > 0) {
        gcho_rollback();
        return gcho_error(rq, 409, "invoice_paid",
                          "Une de ces factures est déjà payée.");
    }

    rc = gcho_sql_exists(rq, "select 1 from payment_operation_invoice p"
                             " join payment_operation o"
                             "   on o.id = p.operation_id"
                             " where p.invoice_id = any($1::bigint[])"
                             " and o.status = 'pending'", 1, p);
    if (rc < 0) {
        return 0;
    }

    if (rc > 0) {
        gcho_rollback();
        return gcho_error(rq, 409, "payment_pending",
                          "Un paiement de ces factures est déjà en cours.");
    }

    cents = atoll(total);

    if (cents < GCHO_PAY_MIN || cents > GCHO_PAY_MAX) {
        gcho_rollback();
        return gcho_error(rq, 422, "amount_out_of_range",
                          "Le paiement en ligne est possible de 1 € à "
                          "100 000 €.");
    }

    return GCHO_GO;
}


/* In the transaction: a new operation (opid, 32 hex characters, made
 * here) for total and its invoices. */
static int
gcho_pay_insert(gcho_req_t *rq, const char *ids, const char *total,
    char opid[33])
{
    size_t       i;
    uint8_t      rnd[16];
    const char  *p[3];

    randombytes_buf(rnd, sizeof(rnd));
    for (i = 0; i < sizeof(rnd); i++) {
        snprintf(opid + 2 * i, 3, "%02x", rnd[i]);
    }

    p[0] = opid;
    p[1] = rq->family_id;
    p[2] = total;
    if (gcho_sql_do(rq, "insert into payment_operation (id, family_id,"
                        "   amount_cents) values ($1, $2, $3)", 3, p) != 0)
    {
        return 0;
    }

    p[1] = ids;
    if (gcho_sql_do(rq, "insert into payment_operation_invoice"
                        " (operation_id, invoice_id)"
                        " select $1, unnest($2::bigint[])", 2, p) != 0)
    {
        return 0;
    }

    return GCHO_GO;
}


/* The operation registered with the provider (before the commit). */
static int
gcho_pay_register(gcho_req_t *rq, const char *ids, const char *opid,
    long long cents)
{
    int          rc;
    char         json[2048], url[1024], *answer, *text;
    size_t       len;
    gch_jout_t   o;

    if (gch_jout_init(&o, &gch_alloc_std) != GCH_OK) {
        gcho_rollback();
        return -1;
    }
    yajl_gen_map_open(o.g);
    gch_jout_cstr(&o, "id");
    gch_jout_cstr(&o, opid);
    gch_jout_cstr(&o, "amount_cents");
    yajl_gen_integer(o.g, cents);
    gch_jout_cstr(&o, "client");
    gch_jout_cstr(&o, gcho_ctx.conf.payfip_client);
    gch_jout_cstr(&o, "object");
    snprintf(json, sizeof(json), "Factures %s", ids);
    gch_jout_cstr(&o, json);
    gch_jout_cstr(&o, "return_url");
    snprintf(json, sizeof(json), "%s/#factures?paiement=%s",
             gcho_site_url(rq), opid);
    gch_jout_cstr(&o, json);
    gch_jout_cstr(&o, "notify_url");
    snprintf(json, sizeof(json), "%s" GCHO_PAY_NOTIFY_PATH,
             gcho_site_url(rq));
    gch_jout_cstr(&o, json);
    yajl_gen_map_close(o.g);

    if (gch_jout_detach(&o, &text, &len) != GCH_OK) {
        gcho_rollback();
        return -1;
    }

    snprintf(url, sizeof(url), "%s/api/operations", gcho_ctx.conf.payfip_url);
    rc = gcho_pay_call(url, text, &answer);
    free(text);

    if (rc != 0) {
        gcho_rollback();
        return gcho_error(rq, 503, "unavailable", "Le service de paiement "
                          "en ligne ne répond pas, réessayez plus tard.");
    }
    free(answer);

    return GCHO_GO;
}


/* 201: the operation, and where to send the family to pay. */
static int
gcho_pay_created(gcho_req_t *rq, const char *opid, long long cents)
{
    char        url[1024];
    gch_jout_t  o;

    if (gch_jout_init(&o, &gch_alloc_std) != GCH_OK) {
        return -1;
    }
    yajl_gen_map_open(o.g);
    gch_jout_cstr(&o, "operation_id");
    gch_jout_cstr(&o, opid);
    gch_jout_cstr(&o, "amount_cents");
    yajl_gen_integer(o.g, cents);
    gch_jout_cstr(&o, "status");
    gch_jout_cstr(&o, "pending");
    gch_jout_cstr(&o, "redirect_url");
    snprintf(url, sizeof(url), "%s/paiement/%s", gcho_ctx.conf.payfip_url,
             opid);
    gch_jout_cstr(&o, url);
    yajl_gen_map_close(o.g);

    return gcho_reply_jout(rq, 201, &o);
}


/* POST /api/payments {"invoice_ids": [...]} */
static int
gcho_pay_create(gcho_req_t *rq)
{
    int                 rc;
    char                ids[GCHO_PAY_INVOICES * 16], opid[33], total[32];
    size_t              n;
    long long           cents;
    gch_json_t          doc;
    const gch_jnode_t  *v[1];

    if (gcho_body_json(rq, &doc, gcho_pay_fields, 1, v) != 0) {
        return 0;
    }

    rc = gcho_pay_ids(rq, v[0], ids, sizeof(ids), &n);
    gch_json_free(&doc);

    if (rc != 0) {
        return 0;
    }

    if (gcho_pay_resync(rq, ids) != 0) {
        return 0;
    }

    if (gcho_begin(rq) != 0) {
        return 0;
    }

    rc = gcho_pay_lock(rq, ids, n, total, sizeof(total));
    if (rc != GCHO_GO) {
        return rc;
    }

    cents = atoll(total);

    rc = gcho_pay_insert(rq, ids, total, opid);
    if (rc != GCHO_GO) {
        return rc;
    }

    /* register the operation with the provider, then commit */
    rc = gcho_pay_register(rq, ids, opid, cents);
    if (rc != GCHO_GO) {
        return rc;
    }

    if (gcho_commit(rq) != 0) {
        return 0;
    }

    return gcho_pay_created(rq, opid, cents);
}


/* An operation id: 32 lower-case hex characters. */
static int
gcho_pay_id_ok(const char *s, size_t len)
{
    size_t  i;

    if (len != 32) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
        {
            return 0;
        }
    }

    return 1;
}


/* POST /api/payments/notify, body "idop=<id>" (form-encoded, PayFiP's) */
static int
gcho_pay_notify(gcho_req_t *rq)
{
    int                rc;
    char               id[33], status[16];
    size_t             n;
    PGresult          *res;
    const char        *ct, *s, *e, *p[1];
    gcho_pay_result_t  r;
    gch_jout_t         o;

    ct = gcho_header(rq, "Content-Type");
    if (ct == NULL
        || strncmp(ct, "application/x-www-form-urlencoded", 33) != 0)
    {
        return gcho_error(rq, 415, "unsupported_media_type",
                          "La notification est un formulaire idop=<id> "
                          "(application/x-www-form-urlencoded).");
    }

    /* the idop parameter among others */
    s = rq->body;
    id[0] = '\0';
    while (s != NULL && *s) {
        e = strchr(s, '&');
        n = e ? (size_t) (e - s) : strlen(s);
        if (n > 5 && strncmp(s, "idop=", 5) == 0) {
            if (!gcho_pay_id_ok(s + 5, n - 5)) {
                break;
            }
            memcpy(id, s + 5, 32);
            id[32] = '\0';
        }
        s = e ? e + 1 : NULL;
    }

    if (id[0] == '\0') {
        return gcho_error(rq, 400, "invalid_field", "Le champ idop doit "
                          "être un identifiant d'opération.");
    }

    /* a known operation; a settled one is answered as it is (duplicate) */
    p[0] = id;
    rc = gcho_sql_row(rq, &res,
                      "Cette opération de paiement n'existe pas.",
                      "select status from payment_operation"
                      " where id = $1", 1, p);
    if (rc != GCHO_GO) {
        return rc;
    }
    snprintf(status, sizeof(status), "%s", PQgetvalue(res, 0, 0));
    PQclear(res);

    if (strcmp(status, "pending") != 0) {
        r.status[0] = '\0';

    } else if (gcho_pay_lookup(id, &r) != 0) {
        return gcho_error(rq, 502, "payment_provider_error",
                          "Le service de paiement n'a pas donné le résultat "
                          "de cette opération.");
    }

    if (r.status[0] == '\0' || strcmp(r.status, "pending") == 0) {
        /* status as read */

    } else if (gcho_pay_settle(rq, id, &r, status) != 0) {
        return 0;
    }

    if (gch_jout_init(&o, &gch_alloc_std) != GCH_OK) {
        return -1;
    }
    yajl_gen_map_open(o.g);
    gch_jout_cstr(&o, "operation_id");
    gch_jout_cstr(&o, id);
    gch_jout_cstr(&o, "status");
    gch_jout_cstr(&o, status);
    yajl_gen_map_close(o.g);

    return gcho_reply_jout(rq, 200, &o);
}


/* GET /api/payments */
static int
gcho_pay_list(gcho_req_t *rq)
{
    const char  *p[1];

    p[0] = rq->family_id;

    return gcho_reply_row(rq, 200,
        "select json_build_object('operations', coalesce(json_agg("
        GCHO_PAY_JSON " order by o.created_at desc, o.id), '[]'),"
        " 'direct_debit', (select direct_debit from family where id = $1))"
        " from payment_operation o where o.family_id = $1", 1, p,
        "Famille inconnue.");
}


/* GET /api/payments/{id}: settles a pending one with the provider's
 * result first (a late notification) */
static int
gcho_pay_get(gcho_req_t *rq)
{
    int                 rc, pending;
    char                status[16];
    PGresult           *res;
    const char         *p[2];
    gcho_pay_result_t   r;

    static const char  missing[] = "Cette opération de paiement n'existe "
                                   "pas.";

    p[0] = rq->param[0];
    p[1] = rq->family_id;

    rc = gcho_sql_row(rq, &res, missing,
                      "select status = 'pending' from payment_operation"
                      " where id = $1 and family_id = $2", 2, p);
    if (rc != GCHO_GO) {
        return rc;
    }
    pending = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);

    if (pending && gcho_pay_lookup(p[0], &r) == 0
        && strcmp(r.status, "pending") != 0)
    {
        if (gcho_pay_settle(rq, p[0], &r, status) != 0) {
            return 0;
        }
    }

    return gcho_reply_row(rq, 200, "select " GCHO_PAY_JSON
                         " from payment_operation o"
                         " where o.id = $1 and o.family_id = $2", 2, p,
                         missing);
}


const gcho_route_t  gcho_payment_routes[] = {
    { "POST", GCHO_PAY_NOTIFY_PATH, GCHO_PUBLIC, 0, 4096, gcho_pay_notify },
    { "GET", "/api/payments", GCHO_FAMILY, 0, 0, gcho_pay_list },
    { "POST", "/api/payments", GCHO_FAMILY, 0, GCHO_BODY_JSON,
      gcho_pay_create },
    { "GET", "/api/payments/*", GCHO_FAMILY, 0, 0, gcho_pay_get },
    { NULL, NULL, 0, 0, 0, NULL }
};
