/*
 * agent22.test.mjs -- issue 22, the back office as an agent lives it, in a
 * real browser (Debian's chromium driven by playwright-core) on a stack of
 * its own: town22.py's town and 120 more families (it needs `make build`):
 *
 *   the family list says how many families there are and pages through
 *   all of them, 50 at a time ("Suivantes" / "Précédentes"), a search
 *   too; the counter finds a family from part of its login or a child's
 *   first name in suggestions and books for the family chosen.
 *
 * Every page checked is axe clean (serious / critical), at desktop width
 * and 375 px.  Screenshots in tests/out/web/a22-*.png.
 */

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import * as H from "./helpers.mjs";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = H.ROOT;
const CTL = path.join(ROOT, "build", "guichetctl");
const STAFF = "a.agent";
const STAFF_PASSWORD = "agent-" + Math.random().toString(36).slice(2, 10);
const READY = fs.existsSync(path.join(ROOT, "build", "guichet-office"))
              && fs.existsSync(CTL);
const MORE = 120;

let stack = null;
let BASE;
let tmp;
let browser;
let town;
const errors = [];

const shot = (name, p) => H.shot("a22-" + name, p);
const compact = (d) => d.replaceAll("-", "");

/* An agent's page at a width, logged in. */
async function agentPage(width) {
    const p = await (await browser.newContext({
        locale: "fr-FR", viewport: { width, height: 900 } })).newPage();
    p.on("pageerror", (e) => errors.push(e.message));
    await p.goto(BASE + "/agent/#/connexion");
    await p.waitForSelector("#ag-identifiant");
    await p.fill("#ag-identifiant", STAFF);
    await p.fill("#ag-motdepasse", STAFF_PASSWORD);
    await p.click("form button[type=submit]");
    await p.waitForSelector("h1:has-text('Inscriptions à traiter')");
    return p;
}

async function rows(p) {
    await p.waitForSelector("#familles [data-famille]");
    return p.$$eval("#familles [data-famille]", (trs) =>
        trs.map((tr) => tr.dataset.famille));
}

before(async () => {
    if (!READY) {
        return;
    }
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "guichet-a22-"));
    const file = path.join(tmp, "town.json");
    execFileSync(H.PY, [path.join(HERE, "town22.py"), "--login", "parent",
                        "--password", "p22-" + Date.now(), file]);
    town = JSON.parse(fs.readFileSync(file, "utf8"));
    for (let i = 0; i < MORE; i++) {
        const n = String(i).padStart(3, "0");
        /* no login nor password: found by id or a child's first name */
        town.families.push({ id: "x" + n, qf: 500,
            children: [{ id: "x" + n + "-a",
                         first_name: i % 2 ? "Lou" : "Max",
                         birth_date: "2018-04-04" }] });
    }
    fs.writeFileSync(file, JSON.stringify(town));
    stack = await H.startStack(file);
    BASE = stack.base;
    execFileSync(CTL, ["-c", stack.conf, "staff-add", STAFF, "agent",
                       "Anne Agent"],
                 { cwd: ROOT, input: STAFF_PASSWORD + "\n",
                   stdio: ["pipe", "pipe", "pipe"] });
    browser = await chromium.launch({ executablePath: H.CHROMIUM,
                                      args: H.ARGS });
});

after(async () => {
    await browser?.close();
    await H.stopStack(stack);
    if (tmp) {
        fs.rmSync(tmp, { recursive: true, force: true });
    }
});

const t = READY ? test : test.skip;

t("the family list pages through every family and says how many",
  async () => {
    const total = town.families.length;
    const all = town.families.map((f) => f.id).sort();
    for (const width of [1200, 375]) {
        const p = await agentPage(width);
        await p.goto(BASE + "/agent/#/familles");
        const seen = [];
        seen.push(...await rows(p));
        assert.equal(seen.length, 50);
        assert.equal(await p.textContent("#fam-compte"),
                     "50 familles sur " + total + " (de la 1e à la 50e)");
        assert.equal(await p.$("#fam-pages a[rel=prev]"), null);
        await H.axe("agent familles page 1 " + width, p);
        await shot("familles-" + width, p);
        while (await p.$("#fam-pages a[rel=next]")) {
            const first = seen[seen.length - 1];
            await p.click("#fam-pages a[rel=next]");
            await p.waitForFunction((f) => !document.querySelector(
                "#familles [data-famille=\"" + f + "\"]"), first);
            seen.push(...await rows(p));
        }
        assert.deepEqual(seen, all);
        assert.match(await p.textContent("#fam-compte"),
                     new RegExp("^" + (total - 100) + " familles sur "
                                + total));
        await H.axe("agent familles dernière page " + width, p);
        /* and back */
        await p.click("#fam-pages a[rel=prev]");
        await p.waitForSelector("#familles [data-famille=\"" + all[50]
                                + "\"]");
        assert.ok(await p.$("#fam-pages a[rel=next]"));
        await p.close();
    }

    /* a search pages too: 60 families have a Lou */
    const p = await agentPage(1200);
    await p.goto(BASE + "/agent/#/familles");
    await p.fill("#fam-recherche", "lou");
    await p.click("button:has-text('Rechercher')");
    await p.waitForSelector("#fam-compte:has-text('sur 60')");
    await p.click("#fam-pages a[rel=next]");
    await p.waitForSelector("#fam-compte:has-text('10 familles sur 60')");
    assert.equal((await rows(p)).length, 10);
    assert.equal(await p.$("#fam-pages a[rel=next]"), null);
    await p.close();
    assert.deepEqual(errors, []);
});

t("the counter finds a family from a child's first name or part of its "
  + "login and books for it", async () => {
    const wed = town.activities.find((a) => a.id === "mercredis")
        .sessions[0];
    const p = await agentPage(1200);
    await p.goto(BASE + "/agent/#/guichet");
    await p.waitForSelector("#gu-famille[role=combobox]");
    /* a child's first name, in part and in another case */
    await p.click("#gu-famille");
    await p.keyboard.type("hug");
    await p.waitForSelector("#gu-suggestions [role=option]");
    assert.equal(await p.getAttribute("#gu-famille", "aria-expanded"),
                 "true");
    const opts = await p.$$eval("#gu-suggestions [role=option]", (os) =>
        os.map((o) => o.textContent));
    assert.deepEqual(opts, ["parent — Hugo, Léa"]);
    await H.axe("agent guichet suggestions 1200", p);
    await shot("guichet-suggestions-1200", p);
    await p.keyboard.press("ArrowDown");
    assert.equal(await p.getAttribute("#gu-famille",
                                      "aria-activedescendant"),
                 "gu-option-0");
    await p.keyboard.press("Enter");
    await p.waitForSelector("#gu-enfant");
    assert.equal(await p.inputValue("#gu-famille"), "parent");
    assert.match(await p.textContent("#guichet"), /Famille : parent/);
    await p.selectOption("#gu-enfant", "c-hugo");
    await p.selectOption("#gu-activite", "mercredis");
    await p.fill("#gu-date", wed.date);
    await p.click("button:has-text('Voir les séances')");
    await p.check("#gu-seances input[value=\"" + wed.id + "\"]");
    await p.click("#gu-reserver");
    const res = await (await p.waitForSelector("#gu-resultat li"))
        .textContent();
    assert.match(res, /Réservé au guichet/);
    await H.axe("agent guichet réservé 1200", p);
    await p.close();

    /* at 375 px: a first name many families share gives ten
     * suggestions; part of a login, the suggestion picked by a tap opens
     * that family at the counter */
    const m = await agentPage(375);
    await m.goto(BASE + "/agent/#/guichet");
    await m.waitForSelector("#gu-famille[role=combobox]");
    await m.click("#gu-famille");
    await m.keyboard.type("MAX");
    await m.waitForSelector("#gu-suggestions [role=option]");
    /* 60 families have a Max: ten suggestions */
    assert.equal(await m.$$eval("#gu-suggestions [role=option]",
                                (os) => os.length), 10);
    await m.fill("#gu-famille", "");
    await m.click("#gu-famille");
    await m.keyboard.type("aren");
    await m.waitForSelector("#gu-suggestions [data-famille=f-p22]");
    await H.axe("agent guichet suggestions 375", m);
    await shot("guichet-suggestions-375", m);
    await m.click("#gu-suggestions [data-famille=f-p22]");
    await m.waitForSelector("#gu-enfant");
    assert.match(await m.textContent("#guichet"), /Famille : parent/);
    assert.deepEqual(await m.$$eval("#gu-enfant option", (os) =>
        os.map((o) => o.value)), ["c-hugo", "c-lea"]);
    await m.selectOption("#gu-activite", "alsh");
    await H.axe("agent guichet famille 375", m);
    /* Escape closes the suggestions */
    await m.fill("#gu-famille", "");
    await m.click("#gu-famille");
    await m.keyboard.type("lou");
    await m.waitForSelector("#gu-suggestions [role=option]");
    await m.keyboard.press("Escape");
    assert.equal(await m.getAttribute("#gu-famille", "aria-expanded"),
                 "false");
    assert.ok(await m.$eval("#gu-suggestions", (l) => l.hidden));
    await m.close();
    assert.deepEqual(errors, []);
});
