/*
 * fuzz_iban.c -- libFuzzer harness for the IBAN and BIC a family types for
 * its direct-debit mandate (gch_iban_normalize, gch_bic_valid) and the
 * pain.008 writer fed with that input as names.  An accepted IBAN is 15..34
 * upper-case letters and digits, starts with two letters and two digits,
 * normalises to itself and its mod-97 is 1 (checked again here the slow
 * way); the XML written never holds a raw '<' or '&' from the input.
 */

#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int             c;
    char            out[GCH_IBAN_MAX + 1], again[GCH_IBAN_MAX + 1];
    char           *name, *xml, *p;
    size_t          n, i, len;
    unsigned        rem;
    gch_error_t     err;
    gch_sepa_tx_t   tx;
    gch_sepa_doc_t  d;

    n = gch_iban_normalize((const char *) data, size, out);

    if (n != 0) {
        if (n < 15 || n > GCH_IBAN_MAX || strlen(out) != n) {
            abort();
        }

        rem = 0;
        for (i = 0; i < n; i++) {
            c = (unsigned char) out[(i + 4) % n];
            if (c >= '0' && c <= '9') {
                rem = (rem * 10 + (unsigned) (c - '0')) % 97;
            } else if (c >= 'A' && c <= 'Z') {
                rem = (rem * 100 + (unsigned) (c - 'A' + 10)) % 97;
            } else {
                abort();
            }
        }

        if (rem != 1 || out[2] < '0' || out[2] > '9'
            || gch_iban_normalize(out, n, again) != n
            || strcmp(out, again) != 0)
        {
            abort();
        }
    }

    (void) gch_bic_valid((const char *) data, size);

    /* the input (its first 70 bytes, SEPA's longest name) as a debtor's
     * name: escaped, never raw markup */
    len = size < 70 ? size : 70;
    name = malloc(len + 1);
    if (name == NULL) {
        return 0;
    }
    for (i = 0; i < len; i++) {
        name[i] = data[i] ? (char) data[i] : ' ';
    }
    name[len] = '\0';

    memset(&tx, 0, sizeof(tx));
    tx.end_to_end_id = "FACT-1";
    tx.mandate_id = "GCH-F1-1";
    tx.mandate_date = "2026-09-01";
    tx.debtor_name = name;
    tx.debtor_iban = "FR7630006000011234567890189";
    tx.debtor_bic = "BNPAFRPP";
    tx.amount_cents = 100;
    tx.remittance = name;

    memset(&d, 0, sizeof(d));
    d.msg_id = "GCH-FUZZ";
    d.created_at = "2026-10-05T10:00:00";
    d.collection_date = "2026-10-10";
    d.creditor_name = "Régie";
    d.creditor_iban = "FR1420041010050500013M02606";
    d.creditor_bic = "PSSTFRPPXXX";
    d.creditor_id = "FR12ZZZ123456";
    d.tx = &tx;
    d.ntx = 1;

    if (gch_sepa_pain008(&d, &gch_alloc_std, &xml, &len, &err) != GCH_OK) {
        abort();
    }

    /* between <Nm> and </Nm> of the debtor: no '<' nor a bare '&' */
    p = strstr(xml, "<Dbtr>\n          <Nm>");
    if (p == NULL) {
        abort();
    }
    p += strlen("<Dbtr>\n          <Nm>");
    for (; *p && strncmp(p, "</Nm>", 5) != 0; p++) {
        if (*p == '<' || *p == '>') {
            abort();
        }
    }

    free(xml);
    free(name);

    return 0;
}
