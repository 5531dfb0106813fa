/*
 * sepa.c -- direct debit: IBAN and BIC checks, the pain.008.001.02 file.
 *
 * Pure functions, no I/O.  guichet-office checks the IBAN and BIC a
 * family gives for its mandate (PUT /api/direct-debit); guichetctl
 * sepa-export writes the month's debits with gch_sepa_pain008().
 *
 * IBAN (ISO 13616): 2 letters of country, 2 check digits, up to 30
 * letters or digits; the whole, its first four characters moved to the
 * end and letters counted A = 10 .. Z = 35, is 1 modulo 97.  The lengths
 * of the SEPA countries the régies meet are checked too (FR 27 ...).
 * BIC (ISO 9362): 4 letters (bank), 2 letters (country), 2 letters or
 * digits (location), optionally 3 letters or digits (branch).
 */

#include <stdio.h>
#include <string.h>

#include "gch.h"


typedef struct {
    char    cc[3];
    size_t  len;
} gch_iban_len_t;

/* SWIFT's IBAN registry, the SEPA countries */
static const gch_iban_len_t  gch_iban_lens[] = {
    { "AD", 24 }, { "AT", 20 }, { "BE", 16 }, { "BG", 22 }, { "CH", 21 },
    { "CY", 28 }, { "CZ", 24 }, { "DE", 22 }, { "DK", 18 }, { "EE", 20 },
    { "ES", 24 }, { "FI", 18 }, { "FR", 27 }, { "GB", 22 }, { "GI", 23 },
    { "GR", 27 }, { "HR", 21 }, { "HU", 28 }, { "IE", 22 }, { "IS", 26 },
    { "IT", 27 }, { "LI", 21 }, { "LT", 20 }, { "LU", 20 }, { "LV", 21 },
    { "MC", 27 }, { "MT", 31 }, { "NL", 18 }, { "NO", 15 }, { "PL", 28 },
    { "PT", 25 }, { "RO", 24 }, { "SE", 24 }, { "SI", 19 }, { "SK", 24 },
    { "SM", 27 }, { "VA", 22 }
};


static int
gch_upper(int c)
{
    return (c >= 'a' && c <= 'z') ? c - 'a' + 'A' : c;
}


static int
gch_is_alpha(int c)
{
    return c >= 'A' && c <= 'Z';
}


static int
gch_is_digit(int c)
{
    return c >= '0' && c <= '9';
}


size_t
gch_iban_normalize(const char *in, size_t len, char out[GCH_IBAN_MAX + 1])
{
    int       c;
    size_t    i, n, k;
    unsigned  rem;

    n = 0;

    for (i = 0; i < len; i++) {
        c = (unsigned char) in[i];

        if (c == ' ' || c == '-') {
            continue;
        }

        c = gch_upper(c);

        if (!gch_is_alpha(c) && !gch_is_digit(c)) {
            return 0;
        }

        if (n == GCH_IBAN_MAX) {
            return 0;
        }

        out[n++] = (char) c;
    }

    out[n] = '\0';

    if (n < 15 || !gch_is_alpha(out[0]) || !gch_is_alpha(out[1])
        || !gch_is_digit(out[2]) || !gch_is_digit(out[3]))
    {
        return 0;
    }

    for (k = 0; k < sizeof(gch_iban_lens) / sizeof(gch_iban_lens[0]); k++) {
        if (out[0] == gch_iban_lens[k].cc[0]
            && out[1] == gch_iban_lens[k].cc[1]
            && n != gch_iban_lens[k].len)
        {
            return 0;
        }
    }

    /* mod 97 of BBAN + country + check digits, letters as 10..35 */
    rem = 0;

    for (i = 0; i < n; i++) {
        c = (unsigned char) out[(i + 4) % n];

        if (gch_is_digit(c)) {
            rem = (rem * 10 + (unsigned) (c - '0')) % 97;
        } else {
            rem = (rem * 100 + (unsigned) (c - 'A' + 10)) % 97;
        }
    }

    if (rem != 1) {
        return 0;
    }

    return n;
}


int
gch_bic_valid(const char *s, size_t len)
{
    int     c;
    size_t  i;

    if (len != 8 && len != 11) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        c = (unsigned char) s[i];

        if (i < 6 ? !gch_is_alpha(c) : !(gch_is_alpha(c) || gch_is_digit(c)))
        {
            return 0;
        }
    }

    return 1;
}


/* ------------------------------------------------------------------ */
/* pain.008.001.02                                                      */

typedef struct {
    const gch_alloc_t  *a;
    char               *buf;
    size_t              len;
    size_t              cap;
    int                 failed;
} gch_xbuf_t;


static void
gch_xput(gch_xbuf_t *b, const char *s, size_t n)
{
    char    *p;
    size_t   cap;

    if (b->failed) {
        return;
    }

    if (b->len + n + 1 > b->cap) {
        cap = b->cap ? b->cap : 4096;
        while (b->len + n + 1 > cap) {
            cap *= 2;
        }

        p = b->a->alloc(b->a->ctx, cap);
        if (p == NULL) {
            b->failed = 1;
            return;
        }

        if (b->len) {
            memcpy(p, b->buf, b->len);
        }
        b->a->free(b->a->ctx, b->buf);
        b->buf = p;
        b->cap = cap;
    }

    memcpy(b->buf + b->len, s, n);
    b->len += n;
    b->buf[b->len] = '\0';
}


static void
gch_xs(gch_xbuf_t *b, const char *s)
{
    gch_xput(b, s, strlen(s));
}


/* Text content: & < > " ' escaped; control bytes other than tab, newline
 * and carriage return (not allowed in XML 1.0) become spaces. */
static void
gch_xesc(gch_xbuf_t *b, const char *s)
{
    const char  *p;

    for (p = s; *p; p++) {
        switch (*p) {
        case '&':
            gch_xs(b, "&amp;");
            break;
        case '<':
            gch_xs(b, "&lt;");
            break;
        case '>':
            gch_xs(b, "&gt;");
            break;
        case '"':
            gch_xs(b, "&quot;");
            break;
        case '\'':
            gch_xs(b, "&apos;");
            break;
        default:
            if ((unsigned char) *p < 0x20 && *p != '\t' && *p != '\n'
                && *p != '\r')
            {
                gch_xs(b, " ");
            } else {
                gch_xput(b, p, 1);
            }
        }
    }
}


/* <tag>escaped text</tag> */
static void
gch_xel(gch_xbuf_t *b, const char *indent, const char *tag, const char *text)
{
    gch_xs(b, indent);
    gch_xs(b, "<");
    gch_xs(b, tag);
    gch_xs(b, ">");
    gch_xesc(b, text);
    gch_xs(b, "</");
    gch_xs(b, tag);
    gch_xs(b, ">\n");
}


static void
gch_xamount(char buf[32], int64_t cents)
{
    snprintf(buf, 32, "%lld.%02lld", (long long) (cents / 100),
             (long long) (cents % 100));
}


static int
gch_sepa_check(const gch_sepa_doc_t *d, gch_error_t *err)
{
    char     iban[GCH_IBAN_MAX + 1];
    size_t   i;
    const gch_sepa_tx_t  *t;

    if (d->ntx == 0) {
        gch_error_set(err, GCH_EINVALID, "Aucun prélèvement à exporter.");
        return GCH_EINVALID;
    }

    if (gch_iban_normalize(d->creditor_iban, strlen(d->creditor_iban), iban)
        == 0)
    {
        gch_error_set(err, GCH_EINVALID,
                      "L'IBAN du créancier (sepa_creditor_iban) est invalide.");
        return GCH_EINVALID;
    }

    if (!gch_bic_valid(d->creditor_bic, strlen(d->creditor_bic))) {
        gch_error_set(err, GCH_EINVALID,
                      "Le BIC du créancier (sepa_creditor_bic) est invalide.");
        return GCH_EINVALID;
    }

    if (strlen(d->msg_id) == 0 || strlen(d->msg_id) > 35
        || strlen(d->creditor_name) > 70 || strlen(d->creditor_id) > 35)
    {
        gch_error_set(err, GCH_EINVALID, "Identifiant du fichier ou du "
                      "créancier trop long (35 caractères, nom 70).");
        return GCH_EINVALID;
    }

    if (d->creditor_name[0] == '\0' || d->creditor_id[0] == '\0') {
        gch_error_set(err, GCH_EINVALID, "Le nom et l'identifiant créancier "
                      "SEPA (sepa_creditor_name, sepa_creditor_id) sont "
                      "nécessaires.");
        return GCH_EINVALID;
    }

    for (i = 0; i < d->ntx; i++) {
        t = &d->tx[i];

        if (t->amount_cents <= 0 || t->amount_cents > 99999999999LL) {
            gch_error_set(err, GCH_EINVALID, "Prélèvement %s : montant "
                          "invalide.", t->end_to_end_id);
            return GCH_EINVALID;
        }

        if (strlen(t->end_to_end_id) == 0 || strlen(t->end_to_end_id) > 35
            || strlen(t->mandate_id) == 0 || strlen(t->mandate_id) > 35
            || strlen(t->debtor_name) > 70 || strlen(t->remittance) > 140)
        {
            gch_error_set(err, GCH_EINVALID, "Prélèvement %.35s : référence, "
                          "mandat (35 caractères), nom (70) ou libellé (140) "
                          "trop long.", t->end_to_end_id);
            return GCH_EINVALID;
        }

        if (gch_iban_normalize(t->debtor_iban, strlen(t->debtor_iban), iban)
            == 0)
        {
            gch_error_set(err, GCH_EINVALID, "Prélèvement %s : IBAN du "
                          "débiteur invalide.", t->end_to_end_id);
            return GCH_EINVALID;
        }

        if (!gch_bic_valid(t->debtor_bic, strlen(t->debtor_bic))) {
            gch_error_set(err, GCH_EINVALID, "Prélèvement %s : BIC du "
                          "débiteur invalide.", t->end_to_end_id);
            return GCH_EINVALID;
        }
    }

    return GCH_OK;
}


int
gch_sepa_pain008(const gch_sepa_doc_t *d, const gch_alloc_t *a, char **out,
    size_t *len, gch_error_t *err)
{
    int                   rc;
    char                  amount[32], iban[GCH_IBAN_MAX + 1], n[24];
    size_t                i;
    int64_t               sum;
    gch_xbuf_t            b;
    const gch_sepa_tx_t  *t;

    *out = NULL;
    *len = 0;

    rc = gch_sepa_check(d, err);
    if (rc != GCH_OK) {
        return rc;
    }

    memset(&b, 0, sizeof(b));
    b.a = a;

    sum = 0;
    for (i = 0; i < d->ntx; i++) {
        sum += d->tx[i].amount_cents;
    }

    gch_xs(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
               "<Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:"
               "pain.008.001.02\" xmlns:xsi=\"http://www.w3.org/2001/"
               "XMLSchema-instance\">\n"
               "  <CstmrDrctDbtInitn>\n"
               "    <GrpHdr>\n");
    gch_xel(&b, "      ", "MsgId", d->msg_id);
    gch_xel(&b, "      ", "CreDtTm", d->created_at);
    snprintf(n, sizeof(n), "%zu", d->ntx);
    gch_xel(&b, "      ", "NbOfTxs", n);
    gch_xamount(amount, sum);
    gch_xel(&b, "      ", "CtrlSum", amount);
    gch_xs(&b, "      <InitgPty>\n");
    gch_xel(&b, "        ", "Nm", d->creditor_name);
    gch_xs(&b, "      </InitgPty>\n"
               "    </GrpHdr>\n"
               "    <PmtInf>\n");
    gch_xel(&b, "      ", "PmtInfId", d->msg_id);
    gch_xs(&b, "      <PmtMtd>DD</PmtMtd>\n");
    gch_xel(&b, "      ", "NbOfTxs", n);
    gch_xel(&b, "      ", "CtrlSum", amount);
    gch_xs(&b, "      <PmtTpInf>\n"
               "        <SvcLvl><Cd>SEPA</Cd></SvcLvl>\n"
               "        <LclInstrm><Cd>CORE</Cd></LclInstrm>\n"
               "        <SeqTp>RCUR</SeqTp>\n"
               "      </PmtTpInf>\n");
    gch_xel(&b, "      ", "ReqdColltnDt", d->collection_date);
    gch_xs(&b, "      <Cdtr>\n");
    gch_xel(&b, "        ", "Nm", d->creditor_name);
    gch_xs(&b, "      </Cdtr>\n"
               "      <CdtrAcct><Id>\n");
    gch_iban_normalize(d->creditor_iban, strlen(d->creditor_iban), iban);
    gch_xel(&b, "        ", "IBAN", iban);
    gch_xs(&b, "      </Id></CdtrAcct>\n"
               "      <CdtrAgt><FinInstnId>\n");
    gch_xel(&b, "        ", "BIC", d->creditor_bic);
    gch_xs(&b, "      </FinInstnId></CdtrAgt>\n"
               "      <ChrgBr>SLEV</ChrgBr>\n"
               "      <CdtrSchmeId><Id><PrvtId><Othr>\n");
    gch_xel(&b, "        ", "Id", d->creditor_id);
    gch_xs(&b, "        <SchmeNm><Prtry>SEPA</Prtry></SchmeNm>\n"
               "      </Othr></PrvtId></Id></CdtrSchmeId>\n");

    for (i = 0; i < d->ntx; i++) {
        t = &d->tx[i];

        gch_xs(&b, "      <DrctDbtTxInf>\n"
                   "        <PmtId>\n");
        gch_xel(&b, "          ", "EndToEndId", t->end_to_end_id);
        gch_xs(&b, "        </PmtId>\n");
        gch_xamount(amount, t->amount_cents);
        gch_xs(&b, "        <InstdAmt Ccy=\"EUR\">");
        gch_xs(&b, amount);
        gch_xs(&b, "</InstdAmt>\n"
                   "        <DrctDbtTx><MndtRltdInf>\n");
        gch_xel(&b, "          ", "MndtId", t->mandate_id);
        gch_xel(&b, "          ", "DtOfSgntr", t->mandate_date);
        gch_xs(&b, "        </MndtRltdInf></DrctDbtTx>\n"
                   "        <DbtrAgt><FinInstnId>\n");
        gch_xel(&b, "          ", "BIC", t->debtor_bic);
        gch_xs(&b, "        </FinInstnId></DbtrAgt>\n"
                   "        <Dbtr>\n");
        gch_xel(&b, "          ", "Nm", t->debtor_name);
        gch_xs(&b, "        </Dbtr>\n"
                   "        <DbtrAcct><Id>\n");
        gch_iban_normalize(t->debtor_iban, strlen(t->debtor_iban), iban);
        gch_xel(&b, "          ", "IBAN", iban);
        gch_xs(&b, "        </Id></DbtrAcct>\n"
                   "        <RmtInf>\n");
        gch_xel(&b, "          ", "Ustrd", t->remittance);
        gch_xs(&b, "        </RmtInf>\n"
                   "      </DrctDbtTxInf>\n");
    }

    gch_xs(&b, "    </PmtInf>\n"
               "  </CstmrDrctDbtInitn>\n"
               "</Document>\n");

    if (b.failed) {
        a->free(a->ctx, b.buf);
        gch_error_set(err, GCH_ENOMEM, NULL);
        return GCH_ENOMEM;
    }

    *out = b.buf;
    *len = b.len;

    return GCH_OK;
}
