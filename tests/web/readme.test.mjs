/*
 * readme.test.mjs -- README.md's « Try it: a family runs its own file »,
 * step by step, on the demo town (demo/amberieu.json) in a real browser,
 * on a stack of its own (the back office's admin / secret-demo as make
 * run makes it):
 *
 *   1. `guichetctl invite --letter f-petit` prints the code; *Créer mon
 *      espace* with it; `guichetctl outbox --kind activation` prints the
 *      link; the family activates and logs in as petit: Jules;
 *   2. *Mes coordonnées*, *Demander un changement d'adresse*; the back
 *      office's *Changements d'adresse*, *Valider*; the new address;
 *   3. *Co-responsable*, *Inviter*: the link opened in another browser
 *      context, *Créer mon accès*, logged in: Jules; the agent sees them
 *      in the family's file (*Familles*, search petit, *Dossier …*,
 *      *Co-responsable*);
 *   4. *Mes documents*: Jules's *Fiche sanitaire* *Manquante*,
 *      *Déposer*, *Envoyer*: *Déposée*; the back office's *Documents à
 *      valider*, *Accepter*: *Valide*;
 *   5. the co-responsable changes their own password in *Mot de passe*
 *      (*Identifiant* filled with their login).
 *
 * axe-clean pages, at 375 px (the family) and 1200 px (the back office
 * and the co-responsable).  If this test changes, change the README.
 * Skipped when build/ has no guichet-office.  Screenshots in
 * tests/out/web/readme-*.png.
 */

import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { ROOT, axe, ownStack } from "./helpers.mjs";

const DEMO = JSON.parse(fs.readFileSync(path.join(ROOT, "demo",
                                                  "amberieu.json"), "utf8"));
const PASSWORD = "readme-" + Math.random().toString(36).slice(2, 10);
const SECOND = "second-" + Math.random().toString(36).slice(2, 10);
const ADMIN = { login: "admin", role: "admin", name: "Admin",
                password: "secret-demo" };

const web = ownStack("readme", DEMO, { staff: [ADMIN] });
const { ctl, errors, newPage, shot } = web;

const t = web.ready ? test : test.skip;

/* A link of the stack's e-mails as the family's browser opens it. */
function local(url) {
    return web.stack.base + url.replace(/^https?:\/\/[^/]+/, "");
}

async function agentPage() {
    return web.staffPage(ADMIN.login, ADMIN.password, 1200);
}

t("README: activate f-petit, new address, co-responsable, a document",
  async () => {
    /* 1. the letter's code, « Créer mon espace », the e-mailed link */
    const letter = ctl("invite", "--letter", "f-petit");
    const code = /^dossier f-petit {2}code d'activation (\S+) {2}\(valable/
        .exec(letter)[1];
    const p = await newPage(375);
    await p.goto(web.stack.base + "/");
    await p.waitForSelector("#lien-creer");
    await p.click("#lien-creer");
    await p.waitForSelector("#form-creer");
    await p.fill("#cr-dossier", "f-petit");
    await p.fill("#cr-code", code);
    await p.fill("#cr-email", "famille.petit@example.org");
    await p.fill("#cr-identifiant", "petit");
    await p.fill("#cr-motdepasse", PASSWORD);
    await p.fill("#cr-confirmation", PASSWORD);
    await p.check("#cr-cgu");
    await p.click("#form-creer button[type=submit]");
    await p.waitForSelector("#creer-envoye");
    const mail = ctl("outbox", "--kind", "activation");
    assert.match(mail, /f-petit activation to famille\.petit@example\.org/);
    const link = /(https?:\/\/\S+\/#\/activer\?jeton=\S+)/.exec(mail)[1];
    await p.goto(local(link));
    await p.waitForSelector("text=Votre Espace Famille est activé");
    await p.click("text=Me connecter");
    await p.waitForSelector("#identifiant");
    await p.fill("#identifiant", "petit");
    await p.fill("#motdepasse", PASSWORD);
    await p.click("form button[type=submit]");
    await p.waitForSelector("h1:has-text('Tableau de bord')");
    await p.waitForSelector("text=Jules");
    await axe("readme tableau de bord 375", p);
    await shot("1-tableau-375", p);

    /* 2. a new address, validated by the town */
    await p.goto(web.stack.base + "/#/coordonnees");
    await p.waitForSelector("#form-adresse");
    await p.fill("#co-ligne1", "12 rue de la Gare");
    await p.fill("#co-cp", "01500");
    await p.fill("#co-ville", "Ambérieu-en-Bugey");
    await p.click("#form-adresse button[type=submit]");
    await p.waitForSelector("#adresse-attente");
    await axe("readme adresse en attente 375", p);
    const a = await agentPage();
    await a.goto(web.stack.base + "/agent/#/adresses");
    await a.waitForSelector("[data-changement]");
    assert.match(await a.textContent("#adresses"), /12 rue de la Gare/);
    await a.click("[data-changement] button:has-text('Valider')");
    await a.waitForSelector("text=Adresse validée");
    await p.goto(web.stack.base + "/#/tableau-de-bord");
    await p.goto(web.stack.base + "/#/coordonnees");
    await p.waitForSelector("#adresse-actuelle");
    assert.match(await p.textContent("#adresse-actuelle"),
                 /12 rue de la Gare/);
    assert.equal(await p.$("#adresse-attente"), null);
    await shot("2-adresse-375", p);

    /* 3. a co-responsable with a login of their own */
    await p.goto(web.stack.base + "/#/co-responsable");
    await p.waitForSelector("#form-co");
    await p.fill("#co-prenom", "Camille");
    await p.fill("#co-nom", "Petit");
    await p.fill("#co-email", "camille.petit@example.org");
    await p.click("#form-co button[type=submit]");
    await p.waitForSelector("#co-lien");
    const invitation = await p.inputValue("#co-lien");
    await axe("readme co-responsable 375", p);
    await shot("3-invitation-375", p);
    const c = await newPage(1200);          /* another browser context */
    await c.goto(local(invitation));
    await c.waitForSelector("#inv-identifiant");
    await c.fill("#inv-identifiant", "petit.second");
    await c.fill("#inv-motdepasse", SECOND);
    await c.fill("#inv-confirmation", SECOND);
    await c.check("#inv-cgu");
    await c.click("button:has-text('Créer mon accès')");
    await c.click("text=Me connecter");
    await c.waitForSelector("#identifiant");
    await c.fill("#identifiant", "petit.second");
    await c.fill("#motdepasse", SECOND);
    await c.click("form button[type=submit]");
    await c.waitForSelector("h1:has-text('Tableau de bord')");
    await c.waitForSelector("text=Jules");

    await a.goto(web.stack.base + "/agent/#/familles");
    await a.waitForSelector("#fam-recherche");
    await a.fill("#fam-recherche", "petit");
    await a.click("button:has-text('Rechercher')");
    await a.click("[data-famille=\"f-petit\"] a");
    await a.click("text=Dossier : QF, entourage, enfants, inscriptions");
    await a.waitForSelector("#co-responsable");
    assert.match(await a.textContent("#section-coresponsable"),
                 /Camille Petit.*camille\.petit@example\.org.*actif depuis.*petit\.second/s);
    await axe("readme dossier agent 1200", a);
    await shot("3-dossier-agent-1200", a);

    /* 4. the required document */
    await p.goto(web.stack.base + "/#/documents");
    const row = "[data-piece=\"c-jules/sejour-ete/fiche-sanitaire\"]";
    await p.waitForSelector(row + "[data-statut=manquante]");
    await p.click(row + " button:has-text('Déposer')");
    await p.setInputFiles("#doc-fichier", {
        name: "fiche-sanitaire-jules.pdf", mimeType: "application/pdf",
        buffer: Buffer.from("%PDF-1.4\n1 0 obj << >> endobj\ntrailer << >>"
                            + "\n%%EOF\n") });
    await p.click("#form-document button[type=submit]");
    await p.waitForSelector("text=Document envoyé");
    await p.waitForSelector(row + "[data-statut=deposee]");
    await axe("readme documents 375", p);
    await shot("4-documents-375", p);
    await a.goto(web.stack.base + "/agent/#/documents");
    await a.click("button:has-text('Accepter')");
    await a.waitForSelector("text=Aucun document");
    await p.goto(web.stack.base + "/#/tableau-de-bord");
    await p.goto(web.stack.base + "/#/documents");
    await p.waitForSelector(row + "[data-statut=valide]");

    /* 5. the co-responsable's own password: the login they typed fills
     * *Identifiant*; the family's other sessions end */
    await c.goto(web.stack.base + "/#/mot-de-passe");
    await c.waitForSelector("#mdp-identifiant");
    assert.equal(await c.inputValue("#mdp-identifiant"), "petit.second");
    await c.fill("#mdp-actuel", SECOND);
    await c.fill("#mdp-nouveau", SECOND + "-2");
    await c.fill("#mdp-confirme", SECOND + "-2");
    await c.click("button:has-text('Changer le mot de passe')");
    await c.waitForSelector("text=Mot de passe changé.");
    await axe("readme mot de passe co-responsable 1200", c);
    await c.context().close();
    const relog = (who, pw) => fetch(web.stack.base + "/api/session", {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ login: who, password: pw }) });
    assert.equal((await relog("petit.second", SECOND)).status, 401);
    assert.equal((await relog("petit.second", SECOND + "-2")).status, 200);
    assert.equal((await relog("petit", PASSWORD)).status, 200);

    await a.context().close();
    await p.context().close();
    assert.deepEqual(errors, []);
});
