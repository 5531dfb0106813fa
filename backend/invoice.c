/*
 * invoice.c -- monthly invoices: PostgreSQL rows, PDF files, Redis list.
 *
 * `guichetctl invoice --month YYYY-MM`, and the worker on invoice_day,
 * call gchb_invoice_run():
 *
 *   1. ONE transaction, under an advisory lock (two runs never interleave):
 *      an invoice per family and régie having billable bookings in the
 *      month (the session's date is in the month; confirmed, or cancelled
 *      with billed; never justified; not yet on an invoice) of that
 *      régie's activities (activity_regie, else 'principale') and no
 *      invoice of that régie for that month yet, nor one made before
 *      migration 0041 (régie null, all régies): numbered in the régie's
 *      own series (migration 0041) max + 1, 2 ... in family order, its
 *      reference "<RÉGIE>-<number on 6 digits>", issued now, due the
 *      last day of the month it is issued in (town time zone), or of the
 *      invoiced month when that is later (never before the services);
 *      then its lines, one per child x date x unit of that régie at the
 *      booking's price_cents, and its total.
 *   2. A PDF (libharu) per invoice of the month whose file is missing:
 *      <invoice_dir>/<family_id>/<invoice_id>.pdf for the town main (as
 *      before towns), <invoice_dir>/towns/<town>/<family_id>/<invoice_id>
 *      .pdf for any other (ids are each town's own), written to a
 *      temporary name and renamed.
 *   3. SET {T}:f:<fid>:invoices <JSON array> for every family invoiced that
 *      month (all its invoices, newest month first), for the module's
 *      GET /api/invoices.
 *
 * Re-running creates no row; it rewrites only missing PDFs and republishes.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <hpdf.h>

#include "gchb.h"


/* billable booking b of session s in month $1 */
#define GCHB_SQL_BILLABLE                                                     \
    " s.date >= $1::date and s.date < ($1::date + interval '1 month')"        \
    " and (b.status = 'confirmed' or (b.status = 'cancelled' and b.billed))"  \
    " and not b.justified"                                                    \
    " and not exists (select 1 from invoice_line l where l.booking_id = b.id)"

/* the régie of booking b's activity (s its session), migration 0041 */
#define GCHB_SQL_REGIE                                                        \
    "coalesce((select ar.regie_code from activity_regie ar"                   \
    "   where ar.activity_id = s.activity_id), 'principale')"

static const char  gchb_sql_invoices[] =
    "insert into invoice (number, family_id, month, regie_code, total_cents,"
    "   issued_at, due_date)"
    " select (select coalesce(max(x.number), 0) from invoice x"
    "     where x.regie_code = f.regie)"
    "     + row_number() over (partition by f.regie order by f.family_id),"
    "   f.family_id, $1::date, f.regie, 0, now(),"
    "   greatest((date_trunc('month', now() at time zone z.tz)"
    "     + interval '1 month - 1 day')::date,"
    "     ($1::date + interval '1 month - 1 day')::date)"
    " from (select distinct b.family_id, " GCHB_SQL_REGIE " regie"
    "       from booking b"
    "       join session s on s.id = b.session_id"
    "       where" GCHB_SQL_BILLABLE
    "       and not exists (select 1 from invoice i"
    "         where i.family_id = b.family_id and i.month = $1::date"
    "         and (i.regie_code is null"
    "           or i.regie_code = " GCHB_SQL_REGIE "))) f,"
    "   (select coalesce((select timezone from town where id = 1),"
    "     'Europe/Paris') tz) z"
    " order by f.regie, f.family_id";

static const char  gchb_sql_lines[] =
    "with l as ("
    "  insert into invoice_line (invoice_id, booking_id, child_id, date,"
    "     unit_code, price_cents)"
    "  select distinct on (i.id, b.child_id, s.date, s.unit_code)"
    "     i.id, b.id, b.child_id, s.date, s.unit_code, b.price_cents"
    "  from invoice i join booking b on b.family_id = i.family_id"
    "  join session s on s.id = b.session_id"
    "  where i.month = $1::date and" GCHB_SQL_BILLABLE
    "    and i.regie_code = " GCHB_SQL_REGIE
    "    and not exists (select 1 from invoice_line x"
    "                    where x.invoice_id = i.id)"
    "  order by i.id, b.child_id, s.date, s.unit_code,"
    "     b.status = 'confirmed' desc, b.id"
    "  returning invoice_id, price_cents)"
    " update invoice i set total_cents = t.total"
    " from (select invoice_id, sum(price_cents) total from l group by 1) t"
    " where i.id = t.invoice_id";

/* the month's new invoices ($1 the month, $2 site_url): paper for the
 * families that did not opt in to paperless invoices, an e-mail for
 * those that did (migration 0024, issue 25) */
static const char  gchb_sql_paper[] =
    "update invoice i set paper = not f.paperless from family f"
    " where f.id = i.family_id and i.month = $1::date and i.paper is null";

static const char  gchb_sql_paperless_mail[] =
    "insert into outbox (family_id, kind, ref, subject, body)"
    " select i.family_id, 'invoice', i.id::text,"
    "   'Votre facture de ' || m.name || ' est disponible',"
    "   'Bonjour,' || chr(10) || chr(10) || 'Votre facture n° '"
    "   || case when i.regie_code is null"
    "     then lpad(i.number::text, 6, '0') else i.reference end"
    "   || ' de ' || m.name || ' ('"
    "   || euros(i.total_cents) || ') est disponible dans votre Espace"
    " Famille, page Mes factures :' || chr(10) || chr(10) || $2"
    "   || '/#/factures' || chr(10) || chr(10) || 'À payer avant le '"
    "   || to_char(i.due_date, 'DD/MM/YYYY') || '.  Vous avez choisi la"
    " facture en ligne : elle ne vous est pas envoyée par courrier.'"
    "   || chr(10)"
    " from invoice i join family f on f.id = i.family_id,"
    "   (select (array['janvier', 'février', 'mars', 'avril', 'mai',"
    "     'juin', 'juillet', 'août', 'septembre', 'octobre', 'novembre',"
    "     'décembre'])[extract(month from $1::date)::int] || ' '"
    "     || extract(year from $1::date)::int as name) m"
    " where i.month = $1::date and f.paperless and i.paper = false"
    " on conflict (kind, ref) do nothing";

/* one row per line of every invoice of the month, in print order */
static const char  gchb_sql_print[] =
    "select i.id, i.number, i.family_id, i.total_cents,"
    "   to_char(i.due_date, 'DD/MM/YYYY'),"
    "   to_char(i.issued_at at time zone coalesce(t.timezone,"
    "     'Europe/Paris'), 'DD/MM/YYYY'),"
    "   extract(month from i.month)::int, extract(year from i.month)::int,"
    "   coalesce(c.first_name, l.child_id), to_char(l.date, 'DD/MM/YYYY'),"
    "   coalesce(u.label, l.unit_code), coalesce(a.name, ''),"
    "   l.price_cents, coalesce(t.name, ''),"
    "   coalesce(fc.address_line1, ''), coalesce(fc.address_line2, ''),"
    "   coalesce(fc.postcode || ' ' || fc.city, ''),"
    "   case when i.regie_code is null then lpad(i.number::text, 6, '0')"
    "     else i.reference end, coalesce(rg.name, '')"
    " from invoice i join invoice_line l on l.invoice_id = i.id"
    " left join regie rg on rg.code = i.regie_code"
    " left join town t on t.id = 1"
    " left join family_contact fc on fc.family_id = i.family_id"
    " left join child c on c.id = l.child_id"
    " left join booking b on b.id = l.booking_id"
    " left join session s on s.id = b.session_id"
    " left join activity a on a.id = s.activity_id"
    " left join unit u on u.code = l.unit_code"
    " where i.month = $1::date"
    " order by i.id, c.first_name, l.child_id, l.date, u.starts_min";

/* the JSON list of each family invoiced in month $1 (all: $1 null), or of
 * family $2 alone */
static const char  gchb_sql_list[] =
    "select family_id, json_agg(json_build_object("
    "   'id', id, 'number', number, 'month', to_char(month, 'YYYY-MM'),"
    "   'reference', reference, 'regie', regie_code,"
    "   'total_cents', total_cents, 'paid', paid,"
    "   'due_date', to_char(due_date, 'YYYY-MM-DD'),"
    "   'issued_at', to_char(issued_at at time zone 'UTC',"
    "     'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
    "   'credited_cents', credited_cents,"
    "   'due_cents', case when paid then 0"
    "     else total_cents - credited_cents end,"
    "   'credit_notes', (select coalesce(json_agg(json_build_object("
    "     'number', c.number, 'amount_cents', c.amount_cents,"
    "     'reason', c.reason, 'booking_id', c.booking_id,"
    "     'issued_at', to_char(c.issued_at at time zone 'UTC',"
    "       'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')) order by c.number), '[]')"
    "     from credit_note c where c.invoice_id = invoice.id),"
    "   'refunds', (select coalesce(json_agg(json_build_object("
    "     'number', r.number, 'amount_cents', r.amount_cents,"
    "     'method', r.method,"
    "     'refunded_at', to_char(r.refunded_at at time zone 'UTC',"
    "       'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')) order by r.number), '[]')"
    "     from refund r where r.invoice_id = invoice.id))"
    "   order by month desc, id desc)"
    " from invoice"
    " where ($1::date is null or family_id in"
    "   (select family_id from invoice where month = $1::date))"
    "   and ($2::text is null or family_id = $2)"
    " group by family_id";


static const char  *gchb_months[] = {
    "janvier", "février", "mars", "avril", "mai", "juin", "juillet",
    "août", "septembre", "octobre", "novembre", "décembre"
};


/* ------------------------------------------------------------------ */
/* PDF                                                                 */

typedef struct {
    HPDF_Doc     pdf;
    HPDF_Page    page;
    HPDF_Font    font;
    HPDF_Font    bold;
    float        y;
    int          failed;
} gchb_pdf_t;


static void
gchb_pdf_error(HPDF_STATUS error_no, HPDF_STATUS detail_no, void *data)
{
    gchb_pdf_t  *d = data;

    gchb_log("error", "libharu: error 0x%04x (detail %u)",
             (unsigned) error_no, (unsigned) detail_no);
    d->failed = 1;
}


/* See gchb.h. */
void
gchb_cp1252(char *out, size_t n, const char *in)
{
    size_t                i;
    unsigned int          cp;
    const unsigned char  *s;

    s = (const unsigned char *) in;
    i = 0;

    while (*s && i + 1 < n) {
        if (*s < 0x80) {
            cp = *s++;
        } else if ((*s & 0xe0) == 0xc0 && s[1]) {
            cp = ((s[0] & 0x1fu) << 6) | (s[1] & 0x3fu);
            s += 2;
        } else if ((*s & 0xf0) == 0xe0 && s[1] && s[2]) {
            cp = ((s[0] & 0x0fu) << 12) | ((s[1] & 0x3fu) << 6)
                 | (s[2] & 0x3fu);
            s += 3;
        } else {
            cp = '?';
            s++;
            while ((*s & 0xc0) == 0x80) {
                s++;
            }
        }

        if (cp == 0x20ac) {
            cp = 0x80;                          /* € */
        } else if (cp == 0x2019) {
            cp = 0x92;                          /* ’ */
        } else if (cp == 0x2013) {
            cp = 0x96;                          /* – */
        } else if (cp >= 0x100 || (cp >= 0x80 && cp < 0xa0)) {
            cp = '?';
        }

        out[i++] = (char) cp;
    }

    out[i] = '\0';
}


static void
gchb_pdf_text(gchb_pdf_t *d, HPDF_Font font, float size, float x,
    int right, const char *utf8)
{
    char  buf[512];

    gchb_cp1252(buf, sizeof(buf), utf8);

    HPDF_Page_SetFontAndSize(d->page, font, size);
    if (right) {
        x -= HPDF_Page_TextWidth(d->page, buf);
    }
    HPDF_Page_BeginText(d->page);
    HPDF_Page_TextOut(d->page, x, d->y, buf);
    HPDF_Page_EndText(d->page);
}


static void
gchb_euros(char *out, size_t n, long long cents)
{
    snprintf(out, n, "%s%lld,%02lld €", cents < 0 ? "-" : "",
             llabs(cents) / 100, llabs(cents) % 100);
}


#define GCHB_X_CHILD     50
#define GCHB_X_DATE      150
#define GCHB_X_ACTIVITY  225
#define GCHB_X_UNIT      400
#define GCHB_X_AMOUNT    545
#define GCHB_X_ADDRESS   330


static void
gchb_pdf_header_row(gchb_pdf_t *d)
{
    gchb_pdf_text(d, d->bold, 10, GCHB_X_CHILD, 0, "Enfant");
    gchb_pdf_text(d, d->bold, 10, GCHB_X_DATE, 0, "Date");
    gchb_pdf_text(d, d->bold, 10, GCHB_X_ACTIVITY, 0, "Activité");
    gchb_pdf_text(d, d->bold, 10, GCHB_X_UNIT, 0, "Unité");
    gchb_pdf_text(d, d->bold, 10, GCHB_X_AMOUNT, 1, "Montant");
    d->y -= 6;
    HPDF_Page_SetLineWidth(d->page, 0.5);
    HPDF_Page_MoveTo(d->page, GCHB_X_CHILD, d->y);
    HPDF_Page_LineTo(d->page, GCHB_X_AMOUNT, d->y);
    HPDF_Page_Stroke(d->page);
    d->y -= 14;
}


static void
gchb_pdf_page(gchb_pdf_t *d)
{
    d->page = HPDF_AddPage(d->pdf);
    HPDF_Page_SetSize(d->page, HPDF_PAGE_SIZE_A4, HPDF_PAGE_PORTRAIT);
    d->y = HPDF_Page_GetHeight(d->page) - 50;
}


/* The children's first names of rows [from, to): "Léa et Hugo". */
static void
gchb_invoice_children(PGresult *res, int from, int to, char *out, size_t n)
{
    int          row, k, seen;
    size_t       len;
    const char  *name, *names[8];

    k = 0;
    for (row = from; row < to && k < 8; row++) {
        name = PQgetvalue(res, row, 8);
        for (seen = 0; seen < k && strcmp(names[seen], name) != 0; seen++) {
            /* void */
        }
        if (seen == k) {
            names[k++] = name;
        }
    }

    out[0] = '\0';
    for (seen = 0; seen < k; seen++) {
        len = strlen(out);
        snprintf(out + len, n - len, "%s%s",
                 seen == 0 ? "" : seen == k - 1 ? " et " : ", ",
                 names[seen]);
    }
}


/*
 * Writes the PDF of the invoice whose lines are rows [from, to) of res
 * (gchb_sql_print) to path.  0 or -1 after logging.
 */
static int
gchb_invoice_pdf(PGresult *res, int from, int to, const char *path)
{
    int          row, month, k;
    float        y;
    char         buf[256], money[32], tmp[4200];
    gchb_pdf_t   d;

    memset(&d, 0, sizeof(d));

    d.pdf = HPDF_New(gchb_pdf_error, &d);
    if (d.pdf == NULL) {
        gchb_log("error", "libharu: cannot create a document");
        return -1;
    }

    HPDF_SetCompressionMode(d.pdf, HPDF_COMP_ALL);
    d.font = HPDF_GetFont(d.pdf, "Helvetica", "WinAnsiEncoding");
    d.bold = HPDF_GetFont(d.pdf, "Helvetica-Bold", "WinAnsiEncoding");

    gchb_pdf_page(&d);

    gchb_pdf_text(&d, d.bold, 14, 50, 0, PQgetvalue(res, from, 13));
    d.y -= 30;

    /* the family's postal address validated by the town (migration
     * 0022), where a window envelope shows it (issue 25) */
    y = d.y;
    for (k = 14; k <= 16; k++) {
        if (*PQgetvalue(res, from, k) != '\0') {
            snprintf(buf, sizeof(buf), "%.44s", PQgetvalue(res, from, k));
            gchb_pdf_text(&d, d.font, 11, GCHB_X_ADDRESS, 0, buf);
            d.y -= 14;
        }
    }
    d.y = y;

    snprintf(buf, sizeof(buf), "Facture N° %.60s",
             PQgetvalue(res, from, 17));
    gchb_pdf_text(&d, d.bold, 20, 50, 0, buf);
    d.y -= 28;

    month = atoi(PQgetvalue(res, from, 6));
    if (*PQgetvalue(res, from, 18) != '\0') {
        snprintf(buf, sizeof(buf), "%.120s", PQgetvalue(res, from, 18));
        gchb_pdf_text(&d, d.font, 11, 50, 0, buf);
        d.y -= 16;
    }

    snprintf(buf, sizeof(buf), "Période : %s %s",
             gchb_months[(month - 1) % 12], PQgetvalue(res, from, 7));
    gchb_pdf_text(&d, d.font, 11, 50, 0, buf);
    d.y -= 16;

    gchb_invoice_children(res, from, to, tmp, sizeof(tmp));
    snprintf(buf, sizeof(buf), "Famille de %.180s (référence %.40s)", tmp,
             PQgetvalue(res, from, 2));
    gchb_pdf_text(&d, d.font, 11, 50, 0, buf);
    d.y -= 16;

    snprintf(buf, sizeof(buf), "Émise le : %s", PQgetvalue(res, from, 5));
    gchb_pdf_text(&d, d.font, 11, 50, 0, buf);
    d.y -= 32;

    gchb_pdf_header_row(&d);

    for (row = from; row < to; row++) {
        if (d.y < 90) {
            gchb_pdf_page(&d);
            gchb_pdf_header_row(&d);
        }

        gchb_pdf_text(&d, d.font, 10, GCHB_X_CHILD, 0,
                      PQgetvalue(res, row, 8));
        gchb_pdf_text(&d, d.font, 10, GCHB_X_DATE, 0,
                      PQgetvalue(res, row, 9));
        snprintf(buf, sizeof(buf), "%.34s", PQgetvalue(res, row, 11));
        gchb_pdf_text(&d, d.font, 10, GCHB_X_ACTIVITY, 0, buf);
        snprintf(buf, sizeof(buf), "%.24s", PQgetvalue(res, row, 10));
        gchb_pdf_text(&d, d.font, 10, GCHB_X_UNIT, 0, buf);
        gchb_euros(money, sizeof(money), atoll(PQgetvalue(res, row, 12)));
        gchb_pdf_text(&d, d.font, 10, GCHB_X_AMOUNT, 1, money);
        d.y -= 15;
    }

    d.y -= 4;
    HPDF_Page_MoveTo(d.page, GCHB_X_UNIT, d.y + 12);
    HPDF_Page_LineTo(d.page, GCHB_X_AMOUNT, d.y + 12);
    HPDF_Page_Stroke(d.page);
    d.y -= 6;

    gchb_euros(money, sizeof(money), atoll(PQgetvalue(res, from, 3)));
    snprintf(buf, sizeof(buf), "Total : %s", money);
    gchb_pdf_text(&d, d.bold, 12, GCHB_X_AMOUNT, 1, buf);
    d.y -= 30;

    snprintf(buf, sizeof(buf), "À payer avant le %s",
             PQgetvalue(res, from, 4));
    gchb_pdf_text(&d, d.bold, 12, 50, 0, buf);
    d.y -= 26;

    /* how to pay and whom to ask (issue 22: the PDF said neither) */
    gchb_pdf_text(&d, d.bold, 10, 50, 0, "Comment payer");
    d.y -= 14;
    gchb_pdf_text(&d, d.font, 10, 50, 0, "- en ligne, par carte, dans "
                  "votre Espace Famille (page Mes factures) ;");
    d.y -= 13;
    snprintf(buf, sizeof(buf), "- à la régie de la mairie%s%.60s, en "
             "rappelant le numéro de facture %.40s ;",
             PQgetvalue(res, from, 13)[0] ? " de " : "",
             PQgetvalue(res, from, 13), PQgetvalue(res, from, 17));
    gchb_pdf_text(&d, d.font, 10, 50, 0, buf);
    d.y -= 13;
    gchb_pdf_text(&d, d.font, 10, 50, 0, "- en prélèvement automatique, "
                  "la facture est prélevée à l'échéance.");
    d.y -= 18;
    gchb_pdf_text(&d, d.font, 10, 50, 0, "Une question : la messagerie de "
                  "l'Espace Famille (service Régie) ou l'accueil de la "
                  "mairie.");

    snprintf(tmp, sizeof(tmp), "%s.tmp", path);

    if (!d.failed && HPDF_SaveToFile(d.pdf, tmp) == HPDF_OK && !d.failed
        && rename(tmp, path) == 0)
    {
        HPDF_Free(d.pdf);
        return 0;
    }

    gchb_log("error", "cannot write invoice \"%s\": %s", path,
             d.failed ? "libharu failed" : strerror(errno));
    unlink(tmp);
    HPDF_Free(d.pdf);

    return -1;
}


static int
gchb_mkdir(const char *path)
{
    if (mkdir(path, 0755) != 0 && errno != EEXIST) {
        gchb_log("error", "cannot create \"%s\": %s", path, strerror(errno));
        return -1;
    }

    return 0;
}


/* Step 2 of the file comment.  The number of files written, or -1. */
static int
gchb_invoice_pdfs(PGconn *pg, const char *dir, const char *month)
{
    int          n, row, first, written, rc;
    char         path[4096], tdir[3072];
    PGresult    *res;
    const char  *params[1];

    params[0] = month;
    res = PQexecParams(pg, gchb_sql_print, 1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        gchb_log("error", "postgres: %s", PQerrorMessage(pg));
        PQclear(res);
        return -1;
    }

    n = PQntuples(res);
    written = 0;
    rc = 0;

    if (n && gchb_mkdir(dir) != 0) {
        PQclear(res);
        return -1;
    }

    for (first = 0; first < n && rc == 0; first = row) {
        for (row = first + 1; row < n; row++) {
            if (strcmp(PQgetvalue(res, row, 0), PQgetvalue(res, first, 0))) {
                break;
            }
        }

        if (strcmp(gchb_town, GCH_TOWN_DEFAULT) == 0) {
            snprintf(tdir, sizeof(tdir), "%s", dir);

        } else {
            snprintf(tdir, sizeof(tdir), "%s/towns", dir);
            if (gchb_mkdir(tdir) != 0) {
                rc = -1;
                break;
            }
            snprintf(tdir, sizeof(tdir), "%s/towns/%s", dir, gchb_town);
            if (gchb_mkdir(tdir) != 0) {
                rc = -1;
                break;
            }
        }

        snprintf(path, sizeof(path), "%s/%s", tdir,
                 PQgetvalue(res, first, 2));
        if (gchb_mkdir(path) != 0) {
            rc = -1;
            break;
        }

        snprintf(path, sizeof(path), "%s/%s/%s.pdf", tdir,
                 PQgetvalue(res, first, 2), PQgetvalue(res, first, 0));
        if (access(path, F_OK) == 0) {
            continue;
        }

        if (gchb_invoice_pdf(res, first, row, path) != 0) {
            rc = -1;
            break;
        }
        written++;
    }

    PQclear(res);

    return rc == 0 ? written : -1;
}


/* See gchb.h. */
int
gchb_invoice_publish(PGconn *pg, redisContext *rc, const char *month)
{
    return gchb_invoice_publish_family(pg, rc, month, NULL);
}


/* See gchb.h. */
int
gchb_invoice_publish_family(PGconn *pg, redisContext *rc, const char *month,
    const char *family_id)
{
    int          row, n;
    char         key[512];
    PGresult    *res;
    redisReply  *r;
    const char  *params[2];

    params[0] = month;
    params[1] = family_id;
    res = PQexecParams(pg, gchb_sql_list, 2, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        gchb_log("error", "postgres: %s", PQerrorMessage(pg));
        PQclear(res);
        return -1;
    }

    n = PQntuples(res);

    for (row = 0; row < n; row++) {
        snprintf(key, sizeof(key), GCH_KEY_F(GCH_KEY_INVOICES), gchb_town,
                 PQgetvalue(res, row, 0));
        r = redisCommand(rc, "SET %s %s", key, PQgetvalue(res, row, 1));
        if (r == NULL || r->type == REDIS_REPLY_ERROR) {
            gchb_log("error", "redis: SET %s: %s", key,
                     r ? r->str : rc->errstr);
            if (r) {
                freeReplyObject(r);
            }
            PQclear(res);
            return -1;
        }
        freeReplyObject(r);
    }

    PQclear(res);

    return n;
}


static int
gchb_month_ok(const char *m)
{
    int  i;

    if (strlen(m) != 7 || m[4] != '-') {
        return 0;
    }

    for (i = 0; i < 7; i++) {
        if (i != 4 && (m[i] < '0' || m[i] > '9')) {
            return 0;
        }
    }

    i = atoi(m + 5);

    return i >= 1 && i <= 12 && atoi(m) >= 2000;
}


/* See gchb.h. */
int
gchb_invoice_run(PGconn *pg, redisContext *rc, const gchb_conf_t *conf,
    const char *month, int *created)
{
    int          files;
    char         first[16];
    PGresult    *res;
    const char  *params[2];

    *created = 0;

    if (!gchb_month_ok(month)) {
        gchb_log("error", "invoice: month \"%s\" is not YYYY-MM", month);
        return -1;
    }

    snprintf(first, sizeof(first), "%s-01", month);
    params[0] = first;

    if (gchb_pg_exec(pg, "begin") != 0) {
        return -1;
    }

    if (gchb_pg_exec(pg, "select pg_advisory_xact_lock("
                     GCHB_LOCK_INVOICE ")") != 0)
    {
        goto failed;
    }

    res = PQexecParams(pg, gchb_sql_invoices, 1, NULL, params, NULL, NULL,
                       0);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        gchb_log("error", "postgres: %s", PQerrorMessage(pg));
        PQclear(res);
        goto failed;
    }
    *created = atoi(PQcmdTuples(res));
    PQclear(res);

    res = PQexecParams(pg, gchb_sql_lines, 1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        gchb_log("error", "postgres: %s", PQerrorMessage(pg));
        PQclear(res);
        goto failed;
    }
    PQclear(res);

    /* paper or e-mail, as each family chose */
    params[1] = conf->site_url ? conf->site_url : "";
    res = PQexecParams(pg, gchb_sql_paper, 1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) == PGRES_COMMAND_OK) {
        PQclear(res);
        res = PQexecParams(pg, gchb_sql_paperless_mail, 2, NULL, params,
                           NULL, NULL, 0);
    }
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        gchb_log("error", "postgres: %s", PQerrorMessage(pg));
        PQclear(res);
        goto failed;
    }
    PQclear(res);

    if (gchb_pg_exec(pg, "commit") != 0) {
        *created = 0;
        return -1;
    }

    if (*created) {
        gchb_log("info", "invoice %s: %d invoice%s created", month, *created,
                 *created == 1 ? "" : "s");
    }

    files = gchb_invoice_pdfs(pg, conf->invoice_dir, first);
    if (files < 0) {
        return -1;
    }

    if (rc && gchb_invoice_publish(pg, rc, first) < 0) {
        return -1;
    }

    return 0;

failed:

    gchb_pg_exec(pg, "rollback");
    *created = 0;

    return -1;
}


/* See gchb.h. */
int
gchb_invoice_schedule(PGconn *pg, redisContext *rc, const gchb_conf_t *conf,
    char last[8])
{
    int        created, rv;
    char       month[8];
    PGresult  *res;

    if (conf->invoice_day == 0) {
        return 0;
    }

    res = PQexec(pg,
        "select extract(day from now() at time zone z.tz)::int,"
        "   to_char(date_trunc('month', now() at time zone z.tz)"
        "     - interval '1 month', 'YYYY-MM')"
        " from (select coalesce((select timezone from town where id = 1),"
        "   'Europe/Paris') tz) z");
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        gchb_log("error", "postgres: %s", PQerrorMessage(pg));
        PQclear(res);
        return -1;
    }

    if (atoi(PQgetvalue(res, 0, 0)) != conf->invoice_day
        || strcmp(PQgetvalue(res, 0, 1), last) == 0)
    {
        PQclear(res);
        return 0;
    }

    snprintf(month, sizeof(month), "%s", PQgetvalue(res, 0, 1));
    PQclear(res);

    gchb_log("info", "invoice_day %d: invoicing %s", conf->invoice_day,
             month);

    rv = gchb_invoice_run(pg, rc, conf, month, &created);
    if (rv == 0) {
        memcpy(last, month, 8);
    }

    return rv;
}
