/*
 * situation.test.mjs -- Ma situation (issue 25) in a real browser, on a
 * stack of its own (pieces_town.py's town, QF 650; guichetctl adds an
 * agent):
 *
 *   the family asks for a new quotient familial with its tax notice (no
 *   file is said first); the agent's « Quotient familial » shows the
 *   request with the current QF, validates 800 (an empty QF is said
 *   first); the family sees its new QF and the decision.  axe-clean, the
 *   family at 375 px, the agent at 1200.
 *
 * Skipped when build/ has no guichet-office.  Screenshots in
 * tests/out/web/situation-*.png.
 */

import { test } from "node:test";
import assert from "node:assert/strict";
import { axe, login, ownStack } from "./helpers.mjs";

const PASSWORD = "qf-" + Math.random().toString(36).slice(2, 10);
const STAFF_PASSWORD = "agent-" + Math.random().toString(36).slice(2, 10);

const web = ownStack("situation", "pieces_town.py", {
    args: ["--password", PASSWORD],
    staff: [{ login: "q.agent", role: "agent", name: "Quentin Agent",
              password: STAFF_PASSWORD }] });
const { errors, newPage, shot } = web;

const t = web.ready ? test : test.skip;

t("a new quotient familial with the tax notice", async () => {
    const m = await newPage(375);
    await login(m, web.stack.base, "durand", PASSWORD);
    await m.goto(web.stack.base + "/#/situation");
    await m.waitForSelector("#form-qf");
    assert.match(await m.textContent("#qf-actuel"),
                 /Votre quotient familial : 650\./);
    await axe("situation 375", m);
    await m.fill("#qf-commentaire", "Reprise d'emploi en septembre");
    await m.click("#form-qf button[type=submit]");
    await m.waitForSelector("#form-qf [role=alert]");
    await m.setInputFiles("#qf-fichier", {
        name: "avis-2026.pdf", mimeType: "application/pdf",
        buffer: Buffer.from("%PDF-1.4\n1 0 obj << >> endobj\ntrailer << >>"
                            + "\n%%EOF\n") });
    await m.click("#form-qf button[type=submit]");
    await m.waitForSelector("text=Demande envoyée");
    await m.waitForSelector("#qf-demandes");
    assert.match(await m.textContent("#qf-demandes"), /Demandée/);
    await axe("situation demandee 375", m);

    const ag = await newPage(1200);
    await ag.goto(web.stack.base + "/agent/#/connexion");
    await ag.waitForSelector("#ag-identifiant");
    await ag.fill("#ag-identifiant", "q.agent");
    await ag.fill("#ag-motdepasse", STAFF_PASSWORD);
    await ag.click("form button[type=submit]");
    await ag.waitForSelector("h1:has-text('Inscriptions à traiter')");
    await ag.click("#nav a[href='#/quotient']");
    const card = "#quotients section:has-text('durand')";
    await ag.waitForSelector(card);
    assert.match(await ag.textContent(card),
                 /Quotient actuel : 650.*Reprise d'emploi/s);
    await axe("agent quotient", ag);
    await shot("agent", ag);
    await ag.click(card + " button:has-text('Valider')");
    await ag.waitForSelector(card + " [role=alert]");
    await ag.fill(card + " input[type=number]", "800");
    await ag.click(card + " button:has-text('Valider')");
    await ag.waitForSelector("text=Quotient validé : famille durand.");
    await ag.context().close();

    await m.reload();
    await m.waitForSelector("#qf-demandes");
    assert.match(await m.textContent("#qf-actuel"),
                 /Votre quotient familial : 800\./);
    assert.match(await m.textContent("#qf-demandes"),
                 /Validée.*Quotient 800 à compter du/s);
    await shot("validee-375", m);
    await m.context().close();
    assert.deepEqual(errors, []);
});
