/*
 * sepa.c -- guichetctl sepa-export: the month's direct debits as one
 * SEPA pain.008.001.02 file for the régie.
 *
 * ONE transaction, under an advisory lock (two exports never interleave):
 *
 *   1. a month already in sepa_export is refused (nothing written, exit
 *      1): a month is exported once, so no invoice is ever debited twice
 *      (sepa_export_invoice.invoice_id is unique as well);
 *   2. the month's unpaid invoices (total > 0) of families with an active
 *      mandate, in number order (the invoices before migration 0041,
 *      then each régie's), locked; each debit's EndToEndId "FACT-"
 *      and the invoice's reference ("FACT." and its id when that does
 *      not fit the 35 characters of the SEPA set);
 *   3. the file from the engine (gch_sepa_pain008: IBANs checked again,
 *      XML escaped, control sum), written to FILE.tmp, fsync'ed and
 *      renamed to FILE before the commit (removed if the commit fails);
 *   4. the sepa_export row and its invoices, the invoices marked paid
 *      (paid_by 'direct_debit') AT EXPORT: the régie sends the file to the
 *      bank the same day, and a debit the bank rejects is handled by the
 *      régie by hand (docs/office.md); an audit_log row.
 *
 * Then the catalogue is marked changed (the paid invoices no longer block
 * booking) and the families' {T}:f:<fid>:invoices are republished.
 */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gchc.h"


static const char  gchc_sql_debits[] =
    "select i.id, i.number, i.total_cents - i.credited_cents, m.id,"
    "   m.reference,"
    "   to_char(m.signed_on, 'YYYY-MM-DD'), m.holder, m.iban, m.bic,"
    "   to_char(i.month, 'MM/YYYY'), i.reference,"
    "   case when length(i.reference) <= 30"
    "     and i.reference ~ '^[A-Z0-9-]+$' then 'FACT-' || i.reference"
    "     else 'FACT.' || i.id end"
    " from invoice i join direct_debit_mandate m"
    "   on m.family_id = i.family_id and m.ended_at is null"
    " where i.month = $1::date and not i.paid"
    "   and i.total_cents > i.credited_cents"
    "   and not exists (select 1 from sepa_export_invoice x"
    "                   where x.invoice_id = i.id)"
    " order by i.regie_code nulls first, i.number"
    " for update of i";


static PGresult *
gchc_sepa_sql(PGconn *pg, const char *sql, int n, const char *const *p,
    ExecStatusType want)
{
    PGresult  *res;

    res = PQexecParams(pg, sql, n, NULL, p, NULL, NULL, 0);

    if (PQresultStatus(res) != want) {
        gchb_log("error", "postgres: %s", PQerrorMessage(pg));
        PQclear(res);
        return NULL;
    }

    return res;
}


static int
gchc_sepa_write(const char *path, const char *xml, size_t len)
{
    int      fd;
    char     tmp[4096];
    ssize_t  w;
    size_t   off;

    snprintf(tmp, sizeof(tmp), "%s.tmp", path);

    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0640);
    if (fd < 0) {
        gchb_log("error", "%s: %s", tmp, strerror(errno));
        return -1;
    }

    for (off = 0; off < len; off += (size_t) w) {
        w = write(fd, xml + off, len - off);
        if (w <= 0) {
            gchb_log("error", "%s: %s", tmp, strerror(errno));
            close(fd);
            unlink(tmp);
            return -1;
        }
    }

    if (fsync(fd) != 0 || close(fd) != 0 || rename(tmp, path) != 0) {
        gchb_log("error", "%s: %s", path, strerror(errno));
        unlink(tmp);
        return -1;
    }

    return 0;
}


/* The transactions of the file, one per row of debits (gchc_sql_debits),
 * and what they point to. */
typedef struct {
    int              n;
    gch_sepa_tx_t   *tx;
    char           **e2e;
    char           **rmt;
    int64_t          total;
} gchc_sepa_batch_t;


/* Step 1: 0 when month (first: its first day) is not yet exported, 1
 * (said on stderr) when it was, -1 after logging. */
static int
gchc_sepa_once(PGconn *pg, const char *month, const char *first)
{
    PGresult    *res;
    const char  *p[1];

    p[0] = first;
    res = gchc_sepa_sql(pg, "select to_char(created_at at time zone"
                            " 'Europe/Paris', 'DD/MM/YYYY HH24:MI'), count"
                            " from sepa_export where month = $1::date",
                        1, p, PGRES_TUPLES_OK);
    if (res == NULL) {
        return -1;
    }

    if (PQntuples(res) == 1) {
        fprintf(stderr, "guichetctl: le mois %s a déjà été exporté le %s "
                "(%s prélèvements) : aucun fichier écrit, rien n'est "
                "prélevé deux fois\n", month, PQgetvalue(res, 0, 0),
                PQgetvalue(res, 0, 1));
        PQclear(res);
        return 1;
    }

    PQclear(res);
    return 0;
}


/* The file's creation time and its collection date (D+5), town time. */
static int
gchc_sepa_dates(PGconn *pg, char created[32], char collect[11])
{
    PGresult  *res;

    res = gchc_sepa_sql(pg, "select to_char(now() at time zone"
                            " 'Europe/Paris', 'YYYY-MM-DD\"T\"HH24:MI:SS'),"
                            " to_char((now() at time zone 'Europe/Paris')"
                            "   ::date + 5, 'YYYY-MM-DD')",
                        0, NULL, PGRES_TUPLES_OK);
    if (res == NULL) {
        return -1;
    }

    snprintf(created, 32, "%s", PQgetvalue(res, 0, 0));
    snprintf(collect, 11, "%s", PQgetvalue(res, 0, 1));
    PQclear(res);

    return 0;
}


/* Step 2 (continued): b's transactions from the debits' rows; they point
 * into debits.  0, or -1 after logging; gchc_sepa_batch_free() either
 * way. */
static int
gchc_sepa_batch(gchc_sepa_batch_t *b, PGresult *debits)
{
    int  row;

    b->n = PQntuples(debits);
    b->tx = calloc((size_t) b->n, sizeof(gch_sepa_tx_t));
    b->e2e = calloc((size_t) b->n, sizeof(char *));
    b->rmt = calloc((size_t) b->n, sizeof(char *));
    if (b->tx == NULL || b->e2e == NULL || b->rmt == NULL) {
        gchb_log("error", "out of memory");
        return -1;
    }

    b->total = 0;
    for (row = 0; row < b->n; row++) {
        b->e2e[row] = malloc(48);
        b->rmt[row] = malloc(96);
        if (b->e2e[row] == NULL || b->rmt[row] == NULL) {
            gchb_log("error", "out of memory");
            return -1;
        }
        /* the invoice's reference (migration 0041), 35 characters at
         * most of the SEPA set */
        snprintf(b->e2e[row], 48, "%s", PQgetvalue(debits, row, 11));
        snprintf(b->rmt[row], 96, "Facture %.50s du %s",
                 PQgetvalue(debits, row, 10), PQgetvalue(debits, row, 9));

        b->tx[row].end_to_end_id = b->e2e[row];
        b->tx[row].amount_cents = strtoll(PQgetvalue(debits, row, 2), NULL,
                                          10);
        b->tx[row].mandate_id = PQgetvalue(debits, row, 4);
        b->tx[row].mandate_date = PQgetvalue(debits, row, 5);
        b->tx[row].debtor_name = PQgetvalue(debits, row, 6);
        b->tx[row].debtor_iban = PQgetvalue(debits, row, 7);
        b->tx[row].debtor_bic = PQgetvalue(debits, row, 8);
        b->tx[row].remittance = b->rmt[row];
        b->total += b->tx[row].amount_cents;
    }

    return 0;
}


static void
gchc_sepa_batch_free(gchc_sepa_batch_t *b)
{
    int  row;

    if (b->e2e != NULL && b->rmt != NULL) {
        for (row = 0; row < b->n; row++) {
            free(b->e2e[row]);
            free(b->rmt[row]);
        }
    }
    free(b->e2e);
    free(b->rmt);
    free(b->tx);
}


/* Step 3: the pain.008 text from the engine (*xml malloc'ed). */
static int
gchc_sepa_xml(const gchb_conf_t *conf, const gchc_sepa_batch_t *b,
    const char *msg_id, const char *created, const char *collect,
    char **xml, size_t *len)
{
    gch_error_t     err;
    gch_sepa_doc_t  d;

    memset(&d, 0, sizeof(d));
    d.msg_id = msg_id;
    d.created_at = created;
    d.collection_date = collect;
    d.creditor_name = conf->sepa_creditor_name;
    d.creditor_iban = conf->sepa_creditor_iban;
    d.creditor_bic = conf->sepa_creditor_bic;
    d.creditor_id = conf->sepa_creditor_id;
    d.tx = b->tx;
    d.ntx = (size_t) b->n;

    if (gch_sepa_pain008(&d, &gch_alloc_std, xml, len, &err) != GCH_OK) {
        fprintf(stderr, "guichetctl: %s\n", err.message);
        return -1;
    }

    return 0;
}


/* Step 4: the export and its invoices, paid at export; the audit row; the
 * catalogue version.  0, or -1 after logging. */
static int
gchc_sepa_record(PGconn *pg, PGresult *debits, const gchc_sepa_batch_t *b,
    const char *month, const char *first, const char *msg_id,
    const char *by)
{
    int          row;
    char         export_id[24], detail[160], total_s[24];
    PGresult    *res;
    const char  *p[5];

    snprintf(total_s, sizeof(total_s), "%lld", (long long) b->total);
    snprintf(detail, sizeof(detail), "%d", b->n);
    p[0] = first;
    p[1] = msg_id;
    p[2] = by;
    p[3] = detail;
    p[4] = total_s;
    res = gchc_sepa_sql(pg, "insert into sepa_export (month, msg_id,"
                            "   created_by, count, total_cents)"
                            " values ($1::date, $2, $3, $4, $5)"
                            " returning id", 5, p, PGRES_TUPLES_OK);
    if (res == NULL) {
        return -1;
    }
    snprintf(export_id, sizeof(export_id), "%s", PQgetvalue(res, 0, 0));
    PQclear(res);

    for (row = 0; row < b->n; row++) {
        p[0] = export_id;
        p[1] = PQgetvalue(debits, row, 0);
        p[2] = PQgetvalue(debits, row, 3);
        p[3] = PQgetvalue(debits, row, 2);
        res = gchc_sepa_sql(pg, "insert into sepa_export_invoice (export_id,"
                                "   invoice_id, mandate_id, amount_cents)"
                                " values ($1, $2, $3, $4)", 4, p,
                            PGRES_COMMAND_OK);
        if (res == NULL) {
            return -1;
        }
        PQclear(res);
    }

    p[0] = export_id;
    snprintf(detail, sizeof(detail), "{\"month\": \"%s\", \"count\": %d, "
             "\"total_cents\": %lld}", month, b->n, (long long) b->total);
    p[1] = detail;
    p[2] = by;
    res = gchc_sepa_sql(pg, "update invoice set paid = true,"
                            " paid_by = 'direct_debit', paid_at = now()"
                            " where id in (select invoice_id"
                            "   from sepa_export_invoice"
                            "   where export_id = $1)",
                        1, p, PGRES_COMMAND_OK);
    if (res == NULL) {
        return -1;
    }
    PQclear(res);

    res = gchc_sepa_sql(pg, "insert into audit_log (actor, action, target,"
                            "   detail) values ($3, 'sepa.export', $1,"
                            "   $2::jsonb)", 3, p, PGRES_COMMAND_OK);
    if (res == NULL) {
        return -1;
    }
    PQclear(res);

    return gchb_pg_exec(pg, "update catalogue set version = version + 1,"
                            " updated_at = now() where id = 1");
}


/* See gchc.h.  The steps are those of the comment at the top. */
int
gchc_sepa_export(PGconn *pg, redisContext *rc, const gchb_conf_t *conf,
    const char *month, const char *out, const char *by)
{
    int                 rcode, written, st;
    char                first[11], msg_id[32], created[32], collect[11];
    char               *xml;
    size_t              len;
    int64_t             total;
    PGresult           *res, *debits;
    const char         *p[1];
    gchc_sepa_batch_t   b;

    snprintf(first, sizeof(first), "%s-01", month);
    snprintf(msg_id, sizeof(msg_id), "GCH-SDD-%s", month);

    debits = NULL;
    memset(&b, 0, sizeof(b));
    xml = NULL;
    written = 0;
    rcode = -1;

    if (gchb_pg_exec(pg, "begin") != 0
        || gchb_pg_exec(pg, "select pg_advisory_xact_lock("
                            GCHB_LOCK_SEPA ")") != 0)
    {
        goto done;
    }

    st = gchc_sepa_once(pg, month, first);
    if (st != 0) {
        rcode = st;
        goto done;
    }

    if (gchc_sepa_dates(pg, created, collect) != 0) {
        goto done;
    }

    p[0] = first;
    debits = gchc_sepa_sql(pg, gchc_sql_debits, 1, p, PGRES_TUPLES_OK);
    if (debits == NULL) {
        goto done;
    }

    if (PQntuples(debits) == 0) {
        fprintf(stderr, "guichetctl: aucune facture impayée de %s n'est à "
                "prélever : aucun fichier écrit\n", month);
        rcode = 1;
        goto done;
    }

    if (gchc_sepa_batch(&b, debits) != 0
        || gchc_sepa_xml(conf, &b, msg_id, created, collect, &xml, &len)
           != 0
        || gchc_sepa_record(pg, debits, &b, month, first, msg_id, by) != 0)
    {
        goto done;
    }

    if (out != NULL) {
        if (gchc_sepa_write(out, xml, len) != 0) {
            goto done;
        }
        written = 1;
    }

    if (gchb_pg_exec(pg, "commit") != 0) {
        if (written) {
            unlink(out);
        }
        goto done;
    }

    written = 0;

    if (out == NULL) {
        fwrite(xml, 1, len, stdout);
    }

    total = b.total;
    fprintf(stderr, "guichetctl: %s : %d prélèvements, %lld,%02lld €%s%s\n",
            month, b.n, (long long) (total / 100), (long long) (total % 100),
            out ? " -> " : "", out ? out : "");

    if (rc != NULL && gchb_invoice_publish(pg, rc, first) < 0) {
        fprintf(stderr, "guichetctl: invoices not republished: the next "
                "invoicing run will\n");
    }

    rcode = 0;

done:

    if (rcode != 0) {
        res = PQexec(pg, "rollback");
        PQclear(res);
        if (written) {
            unlink(out);
        }
    }

    gchc_sepa_batch_free(&b);
    free(xml);
    if (debits != NULL) {
        PQclear(debits);
    }

    return rcode;
}
