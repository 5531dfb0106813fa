/*
 * espace-pur.test.mjs -- the family space's pure helpers (web/js/espace.js,
 * web/js/prelevement.js) without a browser: the IBAN key check done
 * before sending a mandate, the masked IBAN, document type names.
 */

import { test } from "node:test";
import assert from "node:assert/strict";
import { docTypeName } from "../../web/js/espace.js";
import { ibanOk, maskIban } from "../../web/js/prelevement.js";

test("ibanOk: ISO 13616 mod-97", () => {
    for (const good of ["FR7630006000011234567890189",
                        "FR76 3000 6000 0112 3456 7890 189",
                        "fr7630006000011234567890189",
                        "DE89370400440532013000",
                        "FR1420041010050500013M02606"]) {
        assert.ok(ibanOk(good), good);
    }
    for (const bad of ["FR7630006000011234567890188",   /* key */
                       "FR763000600001123456789018",    /* short */
                       "7630006000011234567890189FR",
                       "FR76 3000 6000 0112 3456 7890 18X",
                       "", "FR"]) {
        assert.equal(ibanOk(bad), false, bad);
    }
});

test("maskIban keeps the country, the key and the last digits", () => {
    assert.equal(maskIban("FR7630006000011234567890189"),
                 "FR76 •••• •••• •••• •••• •••0 189");
    assert.equal(maskIban(""), "—");
});

test("docTypeName: known types in French, others readable", () => {
    assert.equal(docTypeName("fiche-sanitaire"), "Fiche sanitaire");
    assert.equal(docTypeName("certificat_medical"), "Certificat médical");
    assert.equal(docTypeName("attestation-caf"), "Attestation CAF");
    assert.equal(docTypeName("brevet_natation"), "brevet natation");
});
