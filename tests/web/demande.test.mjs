/*
 * demande.test.mjs -- a new family asks for a file online (issue 25,
 * office/request.c, web/js/demande.js, web/agent/js/demandes.js) in a
 * real browser, on a stack of its own (pieces_town.py's town: the Durand
 * family has a child Alice born on 4 March, 8 years ago):
 *
 *   from the login page, « Demander un dossier famille »: the form says
 *   what is missing, then takes two parents, contact, address, two
 *   children (one added, one removed, one added again), a login, a
 *   password, the CGU; the e-mail's link (read from the outbox) confirms
 *   it; the family logs in and sees its file pending, a menu of its
 *   documents and password only, uploads a « Justificatif de domicile »
 *   for the whole family, and cannot open the booking page; the agent's
 *   « Demandes de dossier » shows it with the possible duplicate (the
 *   Durands' Alice) and validates it; the family's space is then whole,
 *   its children on the dashboard.  axe-clean at 375 px and 1200 px.
 *
 * Skipped when build/ has no guichet-office.  Screenshots in
 * tests/out/web/demande-*.png.
 */

import { test } from "node:test";
import assert from "node:assert/strict";
import { axe, ownStack } from "./helpers.mjs";

const PASSWORD = "demande-" + Math.random().toString(36).slice(2, 10);
const AGENT = { login: "agent.demandes", role: "agent", name: "Agent",
                password: "agent-" + Math.random().toString(36).slice(2) };
const YEAR = new Date().getFullYear();

const web = ownStack("demande", "pieces_town.py", { staff: [AGENT] });
const { errors, newPage, shot, sql } = web;

const t = web.ready ? test : test.skip;

t("a new family asks for its file, waits, and the town validates it",
  async () => {
    const m = await newPage(375);
    await m.goto(web.stack.base + "/#/connexion");
    await m.click("#lien-demande");
    await m.waitForSelector("#form-demande");
    await axe("demande 375", m);

    /* nothing filled: said in words, the first field focused */
    await m.click("#form-demande button[type=submit]");
    await m.waitForSelector("#form-demande [role=alert]");
    assert.match(await m.textContent("#form-demande [role=alert]"),
                 /Remplissez tous les champs/);

    await m.fill("#dm-p1-prenom", "Awa");
    await m.fill("#dm-p1-nom", "Diallo");
    await m.fill("#dm-p2-prenom", "Moussa");
    await m.fill("#dm-email", "awa.diallo@example.org");
    await m.fill("#dm-telephone", "06 12 34 56 78");
    await m.fill("#dm-adresse1", "3 rue des Lilas");
    await m.fill("#dm-cp", "01500");
    await m.fill("#dm-ville", "Ambérieu-en-Bugey");
    await m.fill("#dm-enfant-1-prenom", "Alice");
    await m.fill("#dm-enfant-1-naissance", (YEAR - 8) + "-03-04");
    /* a second child added, removed, added again */
    await m.click("#dm-ajouter-enfant");
    await m.waitForSelector("#dm-enfant-2-prenom");
    await m.click("#dm-enfants fieldset:nth-child(2) button");
    assert.equal(await m.$("#dm-enfant-2-prenom"), null);
    await m.click("#dm-ajouter-enfant");
    await m.fill("#dm-enfant-3-prenom", "Fatou");
    await m.fill("#dm-enfant-3-naissance", (YEAR - 4) + "-01-09");
    assert.match(await m.textContent("#dm-enfants"), /Enfant 2/);
    await m.fill("#dm-identifiant", "awa.diallo");
    await m.fill("#dm-motdepasse", PASSWORD);
    await m.fill("#dm-confirmation", PASSWORD);
    await m.check("#dm-cgu");
    /* half a second parent is refused before sending */
    await m.click("#form-demande button[type=submit]");
    await m.waitForSelector("text=second responsable");
    await m.fill("#dm-p2-nom", "Diallo");
    await m.click("#form-demande button[type=submit]");
    await m.waitForSelector("#demande-envoyee");
    assert.match(await m.textContent("#demande-envoyee"),
                 /awa\.diallo@example\.org.*awa\.diallo/s);
    await axe("demande envoyee 375", m);
    await shot("envoyee-375", m);

    const mail = sql("select body from outbox where kind = "
                     + "'family_request'");
    const token = /confirmer-demande\?jeton=(\S+)/.exec(mail)[1];
    await m.goto(web.stack.base + "/#/confirmer-demande?jeton=" + token);
    await m.waitForSelector("text=Votre adresse e-mail est confirmée");
    await axe("confirmer 375", m);
    await m.context().close();
    const fid = sql("select family_id from family_request");

    /* the pending family logs in */
    const p = await newPage(1200);
    await p.goto(web.stack.base + "/#/connexion");
    await p.waitForSelector("#identifiant");
    await p.fill("#identifiant", "awa.diallo");
    await p.fill("#motdepasse", PASSWORD);
    await p.click("form button[type=submit]");
    await p.waitForSelector("h1:has-text('Mon dossier famille')");
    assert.match(await p.textContent("#etat-dossier"),
                 /en attente de validation/);
    assert.match(await p.textContent("main"), new RegExp(fid));
    assert.match(await p.textContent("main"), /Alice.*Fatou/s);
    const menu = await p.$$eval("#nav-liste li:not([hidden]) a",
                                (as) => as.map((a) => a.textContent));
    assert.deepEqual(menu, ["Tableau de bord", "Mes documents",
                            "Mot de passe"]);
    await axe("en attente 1200", p);
    await shot("attente-1200", p);
    /* the same on a phone */
    const n = await newPage(375);
    await n.goto(web.stack.base + "/#/connexion");
    await n.waitForSelector("#identifiant");
    await n.fill("#identifiant", "awa.diallo");
    await n.fill("#motdepasse", PASSWORD);
    await n.click("form button[type=submit]");
    await n.waitForSelector("#etat-dossier");
    /* nothing wider than the phone (a long e-mail address wraps) */
    assert.ok(await n.evaluate(() => document.documentElement.scrollWidth
                                     <= window.innerWidth));
    await axe("en attente 375", n);
    await shot("attente-375", n);
    await n.context().close();
    /* the booking page is not open to it */
    await p.goto(web.stack.base + "/#/reserver");
    await p.waitForSelector("h1:has-text('Mon dossier famille')");

    await p.goto(web.stack.base + "/#/tableau-de-bord");
    await p.click("#lien-pieces");
    await p.waitForSelector("#form-document");
    await p.selectOption("#doc-type", "justificatif-domicile");
    assert.equal(await p.inputValue("#doc-enfant"), "");
    await p.setInputFiles("#doc-fichier", {
        name: "facture-edf.pdf", mimeType: "application/pdf",
        buffer: Buffer.from("%PDF-1.4\n1 0 obj << >> endobj\ntrailer << >>"
                            + "\n%%EOF\n") });
    await p.click("#form-document button[type=submit]");
    await p.waitForSelector("text=Document envoyé");
    assert.equal(sql("select type || ' ' || coalesce(child_id, '-')"
                     + " from document where family_id = '" + fid + "'"),
                 "justificatif-domicile -");
    await axe("en attente documents 1200", p);

    /* the agent: the possible duplicate, then validates */
    for (const width of [375, 1200]) {
        const a = await web.staffPage(AGENT.login, AGENT.password, width);
        await a.goto(web.stack.base + "/agent/#/demandes");
        await a.waitForSelector("[data-demande=\"" + fid + "\"]");
        assert.match(await a.textContent("[data-doublons=\"" + fid + "\"]"),
                     /Alice.*dossier f-pieces/s);
        await axe("agent demandes " + width, a);
        await shot("agent-" + width, a);
        if (width === 1200) {
            await a.click("[data-demande=\"" + fid + "\"] "
                          + "button:has-text('Valider le dossier')");
            await a.waitForSelector("text=Dossier validé : Awa Diallo, "
                                    + "Moussa Diallo.");
            await a.waitForSelector("text=Aucune demande de dossier en "
                                    + "attente.");
            await axe("agent demandes apres 1200", a);
        }
        await a.context().close();
    }
    assert.equal(sql("select status || ' ' || decided_by from "
                     + "family_request"), "validee " + AGENT.login);

    /* the family's whole space, once the catalogue is published */
    for (let i = 0; i < 100; i++) {
        await p.goto(web.stack.base + "/#/tableau-de-bord");
        await p.reload();
        await p.waitForSelector("h1");
        if (/Tableau de bord/.test(await p.textContent("h1"))) {
            break;
        }
        await p.waitForTimeout(200);
    }
    await p.waitForSelector("h1:has-text('Tableau de bord')");
    assert.match(await p.textContent("main"), /Alice.*Fatou/s);
    const whole = await p.$$eval("#nav-liste li:not([hidden]) a",
                                 (as) => as.length);
    assert.ok(whole > 10, "the whole menu: " + whole);
    await axe("tableau de bord valide 1200", p);
    await p.context().close();
    assert.deepEqual(errors, []);
});
