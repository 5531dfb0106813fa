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

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { ARGS, CHROMIUM, PY, ROOT, axe, login, shot as helperShot,
         startStack, stopStack } from "./helpers.mjs";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const CTL = path.join(ROOT, "build", "guichetctl");
const PASSWORD = "qf-" + Math.random().toString(36).slice(2, 10);
const STAFF_PASSWORD = "agent-" + Math.random().toString(36).slice(2, 10);
const READY = fs.existsSync(path.join(ROOT, "build", "guichet-office"))
              && fs.existsSync(CTL);

let stack = null;
let tmp;
let browser;
const errors = [];

function shot(name, p) {
    return helperShot("situation-" + name, p);
}

async function newPage(width) {
    const ctx = await browser.newContext({
        locale: "fr-FR", viewport: { width, height: 900 } });
    const p = await ctx.newPage();
    p.on("pageerror", (e) => errors.push(e.message));
    return p;
}

before(async () => {
    if (!READY) {
        return;
    }
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "guichet-situation-"));
    const town = path.join(tmp, "town.json");
    execFileSync(PY, [path.join(HERE, "pieces_town.py"), "--password",
                      PASSWORD, town]);
    stack = await startStack(town);
    execFileSync(CTL, ["-c", stack.conf, "staff-add", "q.agent", "agent",
                       "Quentin Agent"],
                 { cwd: ROOT, input: STAFF_PASSWORD + "\n",
                   stdio: ["pipe", "pipe", "pipe"] });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
});

after(async () => {
    await browser?.close();
    await stopStack(stack);
    if (tmp) {
        fs.rmSync(tmp, { recursive: true, force: true });
    }
});

const t = READY ? test : test.skip;

t("a new quotient familial with the tax notice", async () => {
    const m = await newPage(375);
    await login(m, stack.base, "durand", PASSWORD);
    await m.goto(stack.base + "/#/situation");
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
    await ag.goto(stack.base + "/agent/#/connexion");
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
