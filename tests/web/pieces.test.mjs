/*
 * pieces.test.mjs -- documents ahead (issue 25), in a real browser on a
 * stack of its own (tests/integration/web.stack.py serve with
 * pieces_town.py's town):
 *
 *   the dashboard says how many documents are to provide; "Mes
 *   documents" lists, per child and activity, each required document and
 *   where it stands (a child's document counts for that child only, the
 *   family's for every child); "Déposer" on a row fills the upload form
 *   with that type and child; after the upload the row says "Déposée";
 *   an enrolment request is refused while a required document is
 *   missing, with a link to the list.  axe-clean at 1200 and 375 px.
 *
 * Skipped when build/ has no guichet-office.  Screenshots in
 * tests/out/web/pieces-*.png.
 */

import { test } from "node:test";
import assert from "node:assert/strict";
import { axe, login, ownStack } from "./helpers.mjs";

const LOGIN = "durand";
const PASSWORD = "pieces-" + Math.random().toString(36).slice(2, 10);

const web = ownStack("pieces", "pieces_town.py", {
    args: ["--login", LOGIN, "--password", PASSWORD] });
const { errors, shot } = web;

async function familyPage(width) {
    const p = await web.newPage(width);
    await login(p, web.stack.base, LOGIN, PASSWORD);
    return p;
}

/* The state of one row of the list: child/activity/type. */
function state(p, key) {
    return p.getAttribute("[data-piece=\"" + key + "\"]", "data-statut");
}

const t = web.ready ? test : test.skip;

t("the documents to provide, per child and activity, before booking",
  async () => {
    const p = await familyPage(1200);
    /* Alice's vaccinations to renew; Bastien's missing; the brevet of
     * the stage missing for both */
    await p.waitForSelector("#alerte-pieces a");
    assert.match(await p.textContent("#alerte-pieces"),
                 /4 pièces à fournir ou à renouveler/);
    await axe("pieces tableau de bord", p);
    await p.click("#alerte-pieces a");
    await p.waitForSelector("h1:has-text('Mes documents')");
    await p.waitForSelector("#pieces-a-fournir table");

    assert.equal(await state(p, "c-alice/piscine/vaccinations"),
                 "a_renouveler");
    assert.equal(await state(p, "c-alice/piscine/attestation-assurance"),
                 "valide");
    /* Alice's vaccinations are not Bastien's; the family's insurance
     * covers him */
    assert.equal(await state(p, "c-bastien/piscine/vaccinations"),
                 "manquante");
    assert.equal(await state(p, "c-bastien/piscine/attestation-assurance"),
                 "valide");
    assert.equal(await state(p, "c-alice/stage/brevet-natation"),
                 "manquante");
    assert.equal(await p.$("[data-piece^=\"c-alice/centre/\"]"), null,
                 "an activity that requires nothing is not listed");
    const alice = await p.textContent("table[data-enfant=c-alice]");
    assert.match(alice, /Pièces demandées pour Alice/);
    assert.match(alice, /Carnet de vaccinations.*Piscine.*À renouveler/s);
    assert.match(alice, /Valable jusqu'au/);
    assert.match(await p.textContent("#pieces-resume"),
                 /4 pièces à fournir ou à renouveler/);
    await axe("pieces liste", p);
    await shot("liste-1200", p);

    /* "Déposer" on Bastien's row fills the form */
    await p.click("[data-piece=\"c-bastien/piscine/vaccinations\"] button");
    assert.equal(await p.inputValue("#doc-type"), "vaccinations");
    assert.equal(await p.inputValue("#doc-enfant"), "c-bastien");
    assert.equal(await p.evaluate(() => document.activeElement.id),
                 "doc-fichier");
    await p.setInputFiles("#doc-fichier", {
        name: "vaccins-bastien.pdf", mimeType: "application/pdf",
        buffer: Buffer.from("%PDF-1.4\n1 0 obj << >> endobj\ntrailer << >>"
                            + "\n%%EOF\n") });
    await p.click("#form-document button[type=submit]");
    await p.waitForSelector("text=Document envoyé");
    await p.waitForSelector("[data-piece=\"c-bastien/piscine/vaccinations\"]"
                            + "[data-statut=deposee]");
    /* still not Alice's */
    assert.equal(await state(p, "c-alice/piscine/vaccinations"),
                 "a_renouveler");
    assert.match(await p.textContent("#pieces-resume"),
                 /3 pièces à fournir ou à renouveler/);
    await p.waitForSelector("#liste-documents table");
    assert.match(await p.textContent("#liste-documents"),
                 /Carnet de vaccinations.*Bastien.*Déposée/s);
    await axe("pieces apres depot", p);
    await p.context().close();
});

t("an enrolment request waits for its required documents", async () => {
    const p = await familyPage(375);
    await p.goto(web.stack.base + "/#/inscriptions");
    await p.waitForSelector("#form-inscription");
    await p.waitForSelector("#ins-activite option[value=stage]",
                            { state: "attached" });
    await p.selectOption("#ins-enfant", "c-alice");
    await p.selectOption("#ins-activite", "stage");
    await p.click("#form-inscription button[type=submit]");
    await p.waitForSelector("#form-inscription [role=alert]");
    assert.match(await p.textContent("#form-inscription"),
                 /Pièces manquantes au dossier : brevet-natation/);
    await axe("pieces inscription refusee 375", p);
    await shot("inscription-375", p);

    await p.click("#ins-pieces");
    await p.waitForSelector("#pieces-a-fournir table");
    assert.equal(await p.evaluate(() => document.documentElement.scrollWidth
                                        <= window.innerWidth), true,
                 "no sideways scrolling at 375 px");
    await axe("pieces liste 375", p);
    await shot("liste-375", p);

    /* Alice's brevet, uploaded from her row, lets her ask */
    await p.click("[data-piece=\"c-alice/stage/brevet-natation\"] button");
    assert.equal(await p.inputValue("#doc-enfant"), "c-alice");
    await p.setInputFiles("#doc-fichier", {
        name: "brevet.png", mimeType: "image/png",
        buffer: Buffer.from("89504e470d0a1a0a0000000d4948445200000001000000"
                            + "010802000000907753de0000000c4944415478"
                            + "9c63f80f00000101000518d84e0000000049454e44"
                            + "ae426082", "hex") });
    await p.click("#form-document button[type=submit]");
    await p.waitForSelector("[data-piece=\"c-alice/stage/brevet-natation\"]"
                            + "[data-statut=deposee]");
    await p.goto(web.stack.base + "/#/inscriptions");
    await p.waitForSelector("#ins-activite option[value=stage]",
                            { state: "attached" });
    await p.selectOption("#ins-enfant", "c-alice");
    await p.selectOption("#ins-activite", "stage");
    await p.click("#form-inscription button[type=submit]");
    await p.waitForSelector("text=Demande d'inscription déposée");
    await p.context().close();
    assert.deepEqual(errors, []);
});
