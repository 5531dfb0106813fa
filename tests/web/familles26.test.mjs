/*
 * familles26.test.mjs -- issue 26, a family's file in the back office, in
 * a real browser (Debian's chromium driven by playwright-core) on a stack
 * of its own (it needs `make build`):
 *
 *   an agent creates a family at the counter (a child with an allergy, a
 *   person of its entourage who may pick the children up, a QF), adds a
 *   person to the entourage and edits her, records a new QF from a day,
 *   makes it non-resident, adds a child, enrols the first child in the
 *   centre; an admin merges a duplicate made at the counter into it (its
 *   child joins the file, the duplicate archived); an admin archives it
 *   in two clicks; the agent has no archive button.
 *
 * Every page checked is axe clean (serious / critical), at desktop width
 * and 375 px.  Screenshots in tests/out/web/f26-*.png.
 */

import { test } from "node:test";
import assert from "node:assert/strict";
import * as H from "./helpers.mjs";

const PW = "pw-" + Math.random().toString(36).slice(2, 12);

let fid = null;

const TOWN = {
    town: { name: "Familles", timezone: "Europe/Paris" },
    units: [{ code: "MATIN", label: "Matin", starts: "08:30",
              ends: "12:00" }],
    activities: [{
        id: "centre", name: "Centre de loisirs", age_min: 3, age_max: 12,
        prices: [{ qf_max: null, cents: 700 }],
        sessions: [{ id: "centre-1", date: "2027-09-06", unit: "MATIN",
                     places: 10 }] }],
    families: [],
};

/* Waits for the file drawn again after a change: the page shows its
 * message at once, over "Chargement…", and fills the file (#resume and
 * every section at once) when the family's record comes back; reading a
 * list in between saw it empty under load. */
async function drawn(p, words) {
    await p.waitForSelector("main [role=status]:has-text('" + words + "')");
    await p.waitForSelector("#dossier #resume");
}

/* Submits a form of the file and waits for its success message and the
 * file drawn again. */
async function save(p, sel, words) {
    await p.click(sel + " button[type=submit]");
    await drawn(p, words);
}

const web = H.ownStack("f26", TOWN, {
    staff: [["a.agent", "agent"],
            ["c.chef", "admin"]]
        .map(([login, role]) => ({ login, role, name: "Camille " + role,
                                   password: PW }))
});
const { errors, shot, sql } = web;
const staffPage = (login, width) => web.staffPage(login, PW, width);

const t = web.ready ? test : test.skip;

t("an agent makes a family's file at the counter", async () => {
    const p = await staffPage("a.agent", 1200);
    await p.click("nav a[href='#/familles']");
    await p.click("a[href='#/nouvelle-famille']");
    await p.waitForSelector("#nouvelle-famille");
    await H.axe("nouvelle famille", p);
    await p.fill("#nf-login", "martin");
    await p.fill("#nf-email", "martin@example.org");
    await p.fill("#nf-qf", "450");
    await p.fill("#nf-enfant-1", "Léo");
    await p.fill("#nf-naissance-1", "2019-03-03");
    await p.fill("#nf-allergies-1", "arachide");
    await p.fill("#nouvelle-famille .prenom", "Paul");
    await p.fill("#nouvelle-famille .nom", "Martin");
    await p.fill("#nouvelle-famille .lien", "grand-père");
    await p.fill("#nouvelle-famille .tel", "06 00 00 00 01");
    await p.check("#nouvelle-famille input[aria-label$='chercher les "
                  + "enfants']");
    await p.click("#nouvelle-famille button[type=submit]");
    await p.waitForSelector("#dossier #resume");
    fid = await p.$eval("#resume dd", (d) => d.textContent);
    assert.match(fid, /^fam-\d+$/);
    assert.equal(await p.textContent("#qf-en-vigueur"), "450");
    assert.match(await p.textContent("main"), /Famille fam-\d+ créée\./);
    assert.equal(await p.inputValue("#section-entourage tbody .prenom"),
                 "Paul");
    await H.axe("dossier", p);
    await shot("dossier-1200", p);

    /* the entourage: an agent adds a person, then edits her */
    await p.fill("#ajout-personne .prenom", "Anne");
    await p.fill("#ajout-personne .nom", "Roux");
    await p.fill("#ajout-personne .lien", "voisine");
    await p.fill("#ajout-personne .tel", "06 00 00 00 02");
    await p.check("#ajout-personne input[aria-label$='urgence']");
    await save(p, "#ajout-personne", "Personne ajoutée.");
    const anne = "#section-entourage tbody tr:has(input[value='Anne']) ";
    await p.fill(anne + ".lien", "marraine");
    await p.click(anne + "button");
    await drawn(p, "Anne Roux : enregistré(e).");
    assert.deepEqual(
        await p.$$eval("#section-entourage tbody .lien",
                       (x) => x.map((e) => e.value)),
        ["grand-père", "marraine"]);

    /* a QF from a day already come, then non-resident */
    await p.fill("#qf-valeur", "820");
    await save(p, "#qf", "Quotient familial enregistré.");
    assert.equal(await p.textContent("#qf-en-vigueur"), "820");
    await p.uncheck("#residence");
    await save(p, "#coordonnees", "Coordonnées enregistrées.");
    assert.match(await p.textContent("#resume"), /hors commune/);

    /* a second child, then Léo in the centre */
    await p.fill("#enfant-prenom", "Inès");
    await p.fill("#enfant-naissance", "2020-05-05");
    await save(p, "#ajout-enfant", "Enfant ajouté.");
    assert.deepEqual(await p.$$eval("#section-enfants tbody th",
                                    (x) => x.map((e) => e.textContent)),
                     ["Léo", "Inès"]);
    await p.selectOption("#ins-enfant", { label: "Léo" });
    await p.fill("#ins-du", "2027-09-01");
    await p.fill("#ins-au", "2028-07-07");
    await save(p, "#inscription", "Inscription validée.");
    assert.match(await p.textContent("#section-inscriptions"),
                 /Léo.*Centre de loisirs.*validee/s);
    assert.equal(await p.$("#archiver"), null);
    await H.axe("dossier complété", p);
    await p.close();

    const m = await staffPage("a.agent", 375);
    await m.goto(web.stack.base + "/agent/#/dossier?id=" + fid);
    await m.waitForSelector("#dossier #resume");
    await H.axe("dossier 375", m);
    await shot("dossier-375", m);
    await m.close();
    assert.deepEqual(errors, []);
});

t("an admin merges a duplicate into the family", async () => {
    assert.ok(fid);
    const p = await staffPage("c.chef", 1200);
    /* the same family made twice at the counter */
    await p.goto(web.stack.base + "/agent/#/nouvelle-famille");
    await p.waitForSelector("#nouvelle-famille");
    await p.fill("#nf-login", "martin-bis");
    await p.fill("#nf-qf", "450");
    await p.fill("#nf-enfant-1", "Zoé");
    await p.fill("#nf-naissance-1", "2020-05-05");
    await p.click("#nouvelle-famille button[type=submit]");
    await p.waitForSelector("#dossier #resume");
    const dup = await p.$eval("#resume dd", (d) => d.textContent);
    assert.notEqual(dup, fid);

    await p.goto(web.stack.base + "/agent/#/dossier?id=" + fid);
    await p.waitForSelector("#fusion-form");
    await p.fill("#doublon", "fam-99999");
    await p.click("#fusion-form button[type=submit]");
    await p.waitForSelector("#fusion-form [role=alert]");
    assert.match(await p.textContent("#fusion-form [role=alert]"),
                 /n'existe pas/);
    await p.fill("#doublon", dup);
    await p.click("#fusion-form button[type=submit]");
    await p.waitForSelector("main [role=status]:has-text('fusionnée')");
    assert.match(await p.textContent("main [role=status]"),
                 new RegExp("Famille " + dup + " fusionnée dans " + fid));
    await p.waitForSelector("#section-enfants :text('Zoé')");
    assert.match(await p.textContent("#section-enfants tbody"),
                 /Léo.*Inès.*Zoé/s);
    await H.axe("fusion", p);
    await shot("fusion", p);
    await p.goto(web.stack.base + "/agent/#/dossier?id=" + dup);
    await p.waitForSelector("#dossier #resume");
    assert.match(await p.textContent("#dossier"), /est archivée/);
    await p.close();
    assert.deepEqual(errors, []);
});

t("an admin archives the family in two clicks", async () => {
    assert.ok(fid);
    const p = await staffPage("c.chef", 1200);
    await p.goto(web.stack.base + "/agent/#/dossier?id=" + fid);
    await p.waitForSelector("#archiver");
    await p.click("#archiver");
    await p.waitForSelector("#archivage [role=alert]");
    assert.match(await p.textContent("#archivage"), /définitif/);
    await H.axe("archivage", p);
    await p.click("#archiver");
    await drawn(p, "Famille archivée.");
    assert.match(await p.textContent("#dossier"), /est archivée/);
    assert.match(await p.textContent("#resume"), /Connexion\s*—/);
    await H.axe("famille archivée", p);
    await shot("archivee", p);
    await p.close();
    assert.deepEqual(errors, []);
});
