/*
 * entourage.test.mjs -- Mon entourage (issue 25) in a real browser, on a
 * stack of its own (pieces_town.py's town; guichetctl adds an agent):
 *
 *   the family adds a grandmother (a wrong phone number said first),
 *   edits her, and finds no way to remove her (the page says whom to
 *   ask); the agent's « Entourage » removes her with a reason; the family
 *   no longer sees her, the agent still does, marked removed.  axe-clean,
 *   the family at 375 px, the agent at 1200.
 *
 * Skipped when build/ has no guichet-office.  Screenshots in
 * tests/out/web/entourage-*.png.
 */

import { test } from "node:test";
import assert from "node:assert/strict";
import { axe, login, ownStack } from "./helpers.mjs";

const PASSWORD = "ent-" + Math.random().toString(36).slice(2, 10);
const STAFF_PASSWORD = "agent-" + Math.random().toString(36).slice(2, 10);

const web = ownStack("entourage", "pieces_town.py", {
    args: ["--password", PASSWORD],
    staff: [{ login: "e.agent", role: "agent", name: "Emma Agent",
              password: STAFF_PASSWORD }] });
const { errors, newPage, shot } = web;

const t = web.ready ? test : test.skip;

t("the family adds and edits, only the town removes", async () => {
    const m = await newPage(375);
    await login(m, web.stack.base, "durand", PASSWORD);
    await m.goto(web.stack.base + "/#/entourage");
    await m.waitForSelector("#entourage-vide");
    await axe("entourage vide 375", m);
    const f = "#form-ent-nouveau";
    await m.fill(f + " #ent-nouveau-prenom", "Josette");
    await m.fill(f + " #ent-nouveau-nom", "Durand");
    await m.fill(f + " #ent-nouveau-lien", "Grand-mère");
    await m.fill(f + " #ent-nouveau-tel", "04 74");
    await m.check("#ent-nouveau-urgence");
    await m.click(f + " button[type=submit]");
    await m.waitForSelector(f + " [role=alert]");
    assert.match(await m.textContent(f + " [role=alert]"),
                 /numéro de téléphone/);
    await m.fill(f + " #ent-nouveau-tel", "04 74 12 34 56");
    await m.click(f + " button[type=submit]");
    await m.waitForSelector("text=Personne ajoutée à votre entourage.");
    const card = "form[data-personne]";
    await m.waitForSelector(card);
    assert.match(await m.textContent(card + " h2"), /Josette Durand/);
    await m.fill(card + " input[type=tel]", "06 11 22 33 44");
    await m.click(card + " button[type=submit]");
    await m.waitForSelector("text=Modification enregistrée.");
    assert.equal(await m.inputValue(card + " input[type=tel]"),
                 "06 11 22 33 44");
    assert.equal(await m.$("#entourage button:has-text('Supprimer')"),
                 null);
    assert.match(await m.textContent("main"), /pour en retirer une/);
    await axe("entourage 375", m);
    await shot("famille-375", m);

    const ag = await newPage(1200);
    await ag.goto(web.stack.base + "/agent/#/connexion");
    await ag.waitForSelector("#ag-identifiant");
    await ag.fill("#ag-identifiant", "e.agent");
    await ag.fill("#ag-motdepasse", STAFF_PASSWORD);
    await ag.click("form button[type=submit]");
    await ag.waitForSelector("h1:has-text('Inscriptions à traiter')");
    await ag.click("#nav a[href='#/entourage']");
    await ag.waitForSelector("#ent-famille");
    await ag.fill("#ent-famille", "f-pieces");
    await ag.click("#form-ent-famille button[type=submit]");
    const sec = "#entourage section:has-text('Josette Durand')";
    await ag.waitForSelector(sec);
    await axe("agent entourage", ag);
    await ag.click(sec + " button:has-text('Retirer')");
    await ag.waitForSelector("dialog[open]");
    await axe("agent entourage dialogue", ag);
    await ag.click("dialog[open] button[type=submit]");
    await ag.waitForSelector("dialog[open] [role=alert]");
    await ag.fill("dialog[open] textarea", "Demande de la famille");
    await ag.click("dialog[open] button[type=submit]");
    await ag.waitForSelector("text=Josette Durand retiré(e) de l'entourage.");
    await ag.waitForSelector(sec);
    assert.match(await ag.textContent(sec),
                 /Retiré\(e\) le .* par e\.agent : Demande de la famille/);
    await shot("agent", ag);
    await ag.context().close();

    await m.reload();
    await m.waitForSelector("#entourage-vide");
    await m.context().close();
    assert.deepEqual(errors, []);
});
