/*
 * coordonnees.test.mjs -- Mes coordonnées (issue 25) in a real browser, on
 * a stack of its own (pieces_town.py's town; guichetctl adds an agent):
 *
 *   the family changes its e-mail and mobile phone at once (a wrong
 *   number is said in words first), chooses paperless invoices; asks
 *   for a new postal address, which
 *   waits for the town; the agent sees it in « Changements d'adresse »
 *   with the current one, validates it as non-resident; the family then
 *   sees the new address and its residence, nothing waiting; its
 *   dashboard says "Dernière connexion le …" (the first login).  axe-clean,
 *   the family at 1200 and 375 px, the agent at 1200.
 *
 * Skipped when build/ has no guichet-office.  Screenshots in
 * tests/out/web/coordonnees-*.png.
 */

import { test } from "node:test";
import assert from "node:assert/strict";
import { axe, login, ownStack } from "./helpers.mjs";

const LOGIN = "durand";
const PASSWORD = "coord-" + Math.random().toString(36).slice(2, 10);
const STAFF = "c.agent";
const STAFF_PASSWORD = "agent-" + Math.random().toString(36).slice(2, 10);

const web = ownStack("coordonnees", "pieces_town.py", {
    args: ["--login", LOGIN, "--password", PASSWORD],
    staff: [{ login: STAFF, role: "agent", name: "Camille Agent",
              password: STAFF_PASSWORD }] });
const { errors, newPage, shot } = web;

const t = web.ready ? test : test.skip;

t("the family's contact details, and a new address the town validates",
  async () => {
    const fam = await newPage(1200);
    await login(fam, web.stack.base, LOGIN, PASSWORD);
    await fam.click("#nav a[href='#/coordonnees']");
    await fam.waitForSelector("#form-contact");
    assert.equal(await fam.textContent("#adresse-actuelle"),
                 "Aucune adresse enregistrée.");
    await axe("coordonnees", fam);

    /* e-mail and phones: at once; a wrong number said first */
    await fam.fill("#co-email", "famille.durand@example.org");
    await fam.fill("#co-mobile", "06 12");
    await fam.click("#form-contact button[type=submit]");
    await fam.waitForSelector("#form-contact [role=alert]");
    assert.match(await fam.textContent("#form-contact [role=alert]"),
                 /numéro de téléphone/);
    await fam.fill("#co-mobile", "06 12 34 56 78");
    await fam.click("#form-contact button[type=submit]");
    await fam.waitForSelector("text=Coordonnées enregistrées.");
    assert.equal(await fam.inputValue("#co-mobile"), "06 12 34 56 78");
    assert.equal(await fam.inputValue("#co-email"),
                 "famille.durand@example.org");

    /* paperless invoices */
    assert.match(await fam.textContent("#facture-mode"), /par courrier/);
    await fam.check("#co-en-ligne");
    await fam.click("#form-facture button[type=submit]");
    await fam.waitForSelector("text=Facture en ligne choisie");
    assert.match(await fam.textContent("#facture-mode"), /par e-mail/);
    assert.equal(await fam.isChecked("#co-en-ligne"), true);

    /* a new address waits */
    await fam.fill("#co-ligne1", "12 rue des Lilas");
    await fam.fill("#co-ligne2", "Bâtiment B");
    await fam.fill("#co-cp", "69001");
    await fam.fill("#co-ville", "Lyon");
    await fam.click("#form-adresse button[type=submit]");
    await fam.waitForSelector("text=Demande de changement d'adresse "
                              + "envoyée");
    await fam.waitForSelector("#adresse-attente");
    assert.match(await fam.textContent("#adresse-attente"),
                 /en attente de validation.*12 rue des Lilas.*69001 Lyon/s);
    assert.equal(await fam.textContent("#adresse-actuelle"),
                 "Aucune adresse enregistrée.");
    await axe("coordonnees en attente", fam);
    await shot("attente-1200", fam);

    /* the agent validates it, non-resident */
    const ag = await newPage(1200);
    await ag.goto(web.stack.base + "/agent/#/connexion");
    await ag.waitForSelector("#ag-identifiant");
    await ag.fill("#ag-identifiant", STAFF);
    await ag.fill("#ag-motdepasse", STAFF_PASSWORD);
    await ag.click("form button[type=submit]");
    await ag.waitForSelector("h1:has-text('Inscriptions à traiter')");
    await ag.click("#nav a[href='#/adresses']");
    const card = "#adresses section:has-text('12 rue des Lilas')";
    await ag.waitForSelector(card);
    assert.match(await ag.textContent(card),
                 /Famille durand.*Bâtiment B.*Adresse actuelle\s*aucune/s);
    await axe("agent changements d'adresse", ag);
    await shot("agent", ag);
    await ag.selectOption(card + " select", "false");
    await ag.click(card + " button:has-text('Valider')");
    await ag.waitForSelector("text=Adresse validée : famille durand.");
    /* the list, drawn again once it is read */
    await ag.waitForSelector("#adresses:has-text(\"Aucun changement "
                             + "d'adresse en attente\")");
    await ag.context().close();

    /* the family sees it, on a phone */
    await fam.context().close();
    const m = await newPage(375);
    await login(m, web.stack.base, LOGIN, PASSWORD);
    /* the dashboard says when the family came before this session (the
     * module records a login without waiting: read again until it is) */
    for (let tries = 0; ; tries++) {
        const said = await m.textContent("#derniere-connexion");
        assert.ok(tries < 100, "never said: " + said);
        if (/^Dernière connexion le /.test(said)) {
            assert.match(said,
                         /^Dernière connexion le \S+ \d{1,2} \S+ \d{4}/);
            break;
        }
        await m.reload();
        await m.waitForSelector("h1:has-text('Tableau de bord')");
        await new Promise((ok) => setTimeout(ok, 300));
    }
    await m.goto(web.stack.base + "/#/coordonnees");
    await m.waitForSelector("#bloc-adresse");
    assert.match(await m.textContent("#adresse-actuelle"),
                 /12 rue des Lilas.*Bâtiment B.*69001 Lyon/s);
    assert.match(await m.textContent("#bloc-adresse"),
                 /non-résident de la commune/);
    assert.equal(await m.$("#adresse-attente"), null);
    assert.equal(await m.evaluate(() => document.documentElement.scrollWidth
                                        <= window.innerWidth), true,
                 "no sideways scrolling at 375 px");
    await axe("coordonnees 375", m);
    await shot("validee-375", m);
    await m.context().close();
    assert.deepEqual(errors, []);
});
