/*
 * test_sepa.c -- direct debit: IBAN checksum, BIC shape, pain.008 file.
 */

#include <stdlib.h>
#include <string.h>

#include "tap.h"


typedef struct {
    const char  *in;
    const char  *norm;          /* NULL: refused */
    const char  *name;
} tiban_t;


static void
test_iban(void)
{
    char    out[GCH_IBAN_MAX + 1];
    size_t  i, n;

    static const tiban_t  cases[] = {
        { "FR1420041010050500013M02606", "FR1420041010050500013M02606",
          "fr with a letter" },
        { "FR76 3000 6000 0112 3456 7890 189", "FR7630006000011234567890189",
          "fr grouped by four" },
        { "fr76-3000-1007-9412-3456-7890-185",
          "FR7630001007941234567890185", "lower case and dashes" },
        { "DE89370400440532013000", "DE89370400440532013000", "de" },
        { "GB82WEST12345698765432", "GB82WEST12345698765432", "gb" },
        { "FR1520041010050500013M02606", NULL, "wrong check digit" },
        { "FR1420041010050500013M02607", NULL, "wrong last digit" },
        { "FR142004101005050013M02606", NULL, "fr one character short" },
        { "DE8937040044053201300", NULL, "de too short for de" },
        { "FR14200410100505000\xc3\xa9" "13M0260", NULL, "non-ascii byte" },
        { "FR14.20041010050500013M02606", NULL, "a dot" },
        { "1420041010050500013M02606FR", NULL, "country at the end" },
        { "FRAB20041010050500013M02606", NULL, "letters as check digits" },
        { "FR14", NULL, "too short" },
        { "", NULL, "empty" },
        { "FR1420041010050500013M0260612345678901", NULL, "too long" }
    };

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        memset(out, 'x', sizeof(out));
        n = gch_iban_normalize(cases[i].in, strlen(cases[i].in), out);

        if (cases[i].norm == NULL) {
            tap_ok(n == 0, "iban refused: %s", cases[i].name);
        } else {
            tap_ok(n == strlen(cases[i].norm)
                   && strcmp(out, cases[i].norm) == 0,
                   "iban accepted: %s", cases[i].name);
        }
    }
}


static void
test_bic(void)
{
    tap_ok(gch_bic_valid("BNPAFRPP", 8), "bic of 8");
    tap_ok(gch_bic_valid("BNPAFRPPXXX", 11), "bic of 11");
    tap_ok(gch_bic_valid("AGRIFRPP882", 11), "bic with digit branch");
    tap_ok(!gch_bic_valid("BNPAFRP", 7), "bic of 7 refused");
    tap_ok(!gch_bic_valid("BNPAFRPPXX", 10), "bic of 10 refused");
    tap_ok(!gch_bic_valid("BNP1FRPP", 8), "bic digit in bank refused");
    tap_ok(!gch_bic_valid("bnpafrpp", 8), "bic lower case refused");
    tap_ok(!gch_bic_valid("BNPAF<PP", 8), "bic punctuation refused");
}


static void
test_pain008(void)
{
    int             rc;
    char           *xml;
    size_t          len;
    tcount_t        cnt;
    gch_alloc_t     a;
    gch_error_t     err;
    gch_sepa_doc_t  d;
    gch_sepa_tx_t   tx[2], many[40];
    int             ok;
    long            fail;
    size_t          i;

    memset(tx, 0, sizeof(tx));
    tx[0].end_to_end_id = "FACT-1";
    tx[0].mandate_id = "GCH-F1-1";
    tx[0].mandate_date = "2026-09-01";
    tx[0].debtor_name = "Dupont & Fils <\"l'aîné\">";
    tx[0].debtor_iban = "FR76 3000 6000 0112 3456 7890 189";
    tx[0].debtor_bic = "BNPAFRPP";
    tx[0].amount_cents = 12345;
    tx[0].remittance = "Facture 1 septembre 2026";
    tx[1] = tx[0];
    tx[1].end_to_end_id = "FACT-2";
    tx[1].mandate_id = "GCH-F2-1";
    tx[1].debtor_name = "Martin";
    tx[1].amount_cents = 5;

    memset(&d, 0, sizeof(d));
    d.msg_id = "GCH-2026-09";
    d.created_at = "2026-10-05T10:00:00";
    d.collection_date = "2026-10-10";
    d.creditor_name = "Régie de Ville";
    d.creditor_iban = "FR1420041010050500013M02606";
    d.creditor_bic = "PSSTFRPPXXX";
    d.creditor_id = "FR12ZZZ123456";
    d.tx = tx;
    d.ntx = 2;

    rc = gch_sepa_pain008(&d, &gch_alloc_std, &xml, &len, &err);
    tap_ok(rc == GCH_OK && xml != NULL && strlen(xml) == len,
           "pain.008 written");
    if (rc != GCH_OK) {
        return;
    }

    tap_ok(strstr(xml, "pain.008.001.02") != NULL, "pain.008 namespace");
    tap_ok(strstr(xml, "<NbOfTxs>2</NbOfTxs>") != NULL, "pain.008 count");
    tap_ok(strstr(xml, "<CtrlSum>123.50</CtrlSum>") != NULL,
           "pain.008 control sum");
    tap_ok(strstr(xml, "<InstdAmt Ccy=\"EUR\">0.05</InstdAmt>") != NULL,
           "pain.008 amount under one euro");
    tap_ok(strstr(xml, "<Nm>Dupont &amp; Fils &lt;&quot;l&apos;aîné&quot;"
                       "&gt;</Nm>") != NULL, "pain.008 escapes names");
    tap_ok(strstr(xml, "<IBAN>FR7630006000011234567890189</IBAN>") != NULL,
           "pain.008 normalised iban");
    tap_ok(strstr(xml, "<MndtId>GCH-F2-1</MndtId>") != NULL,
           "pain.008 mandate id");
    free(xml);

    tx[1].debtor_iban = "FR1520041010050500013M02606";
    rc = gch_sepa_pain008(&d, &gch_alloc_std, &xml, &len, &err);
    tap_ok(rc == GCH_EINVALID && xml == NULL
           && strstr(err.message, "FACT-2") != NULL,
           "pain.008 refuses a bad debtor iban: %s", err.message);
    tx[1].debtor_iban = tx[0].debtor_iban;

    tx[1].mandate_id = "GCH-a-family-id-far-too-long-for-sepa-1";
    rc = gch_sepa_pain008(&d, &gch_alloc_std, &xml, &len, &err);
    tap_ok(rc == GCH_EINVALID && xml == NULL,
           "pain.008 refuses a mandate id over 35 characters");
    tx[1].mandate_id = "GCH-F2-1";

    d.ntx = 0;
    rc = gch_sepa_pain008(&d, &gch_alloc_std, &xml, &len, &err);
    tap_ok(rc == GCH_EINVALID, "pain.008 refuses an empty file");
    d.ntx = 2;

    /* every allocation failure, first or on growth, is reported and
     * leaks nothing */
    for (i = 0; i < 40; i++) {
        many[i] = tx[0];
    }
    d.tx = many;
    d.ntx = 40;
    ok = 1;
    for (fail = 1; fail < 20; fail++) {
        tcount_init(&cnt, &a, fail);
        rc = gch_sepa_pain008(&d, &a, &xml, &len, &err);
        if (rc == GCH_OK) {
            a.free(a.ctx, xml);
            break;
        }
        ok = ok && rc == GCH_ENOMEM && xml == NULL && cnt.live == 0;
    }
    tap_ok(ok && fail > 2 && cnt.live == 0,
           "pain.008 out of memory at each of %ld allocations", fail - 1);
}


void
test_sepa(void)
{
    test_iban();
    test_bic();
    test_pain008();
}
