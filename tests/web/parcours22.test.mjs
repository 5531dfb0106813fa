/*
 * parcours22.test.mjs -- issue 22, "the website as a parent lives it", in a
 * real browser (Debian's chromium driven by playwright-core) on a stack of
 * its own with town22.py's town (it needs `make build`):
 *
 *   two children ask for the same whole week, one place left on its
 *   Wednesday: one week booked, the other child's week refused with the
 *   day that blocks it, and that selection kept on the grid; sending it
 *   again is explained before anything leaves; two overlapping cells of
 *   two activities are warned about before sending; the estimate is
 *   priced per cell; an activity that starts in a later month opens on
 *   its first month; week titles carry the year; the legend says every
 *   state; one child is ticked for you; "Mes réservations" shows what is
 *   upcoming (beyond 61 days) and a long range works; at 375 px the menu
 *   folds and bookings are cards.
 *
 * Every page checked is axe clean (serious / critical).  Screenshots in
 * tests/out/web/p22-*.png.
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
const PY = H.PY;
const LOGIN = "parent";
const PASSWORD = "p22-" + Math.random().toString(36).slice(2, 10);
const CTL = path.join(ROOT, "build", "guichetctl");
const STAFF = "a.agent";
const STAFF_PASSWORD = "agent-" + Math.random().toString(36).slice(2, 10);
const READY = fs.existsSync(path.join(ROOT, "build", "guichet-office"))
              && fs.existsSync(CTL);

let stack = null;
let BASE;
let CONF;
let tmp;
let browser;
let page;
let town;
const errors = [];
const posts = [];
const seen = {};

const shot = (name, p) => H.shot("p22-" + name, p || page);
const axe = (name, p) => H.axe(name, p || page);
const login = (p) => H.login(p, BASE, LOGIN, PASSWORD);

const compact = (d) => d.replaceAll("-", "");
const cellKey = (child, act, date, unit) =>
    "[data-key=\"" + child + "|" + act + "-" + compact(date) + "-" + unit
    + "\"]";

function sessionsOf(aid) {
    return town.activities.find((a) => a.id === aid).sessions;
}

/* The family's booking page on an activity, week mode, at day. */
async function grid(aid, day) {
    if (!page.url().endsWith("#/reserver")) {
        await page.goto(BASE + "/#/reserver");
    }
    await page.waitForSelector("#activite");
    await page.selectOption("#activite", aid);
    if (await page.getAttribute("[data-mode=semaine]", "aria-pressed")
        !== "true") {
        await page.click("[data-mode=semaine]");
    }
    if (await page.inputValue("#aller-au") !== day) {
        await page.fill("#aller-au", day);
    }
}

before(async () => {
    if (!READY) {
        return;
    }
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "guichet-p22-"));
    const file = path.join(tmp, "town.json");
    execFileSync(PY, [path.join(HERE, "town22.py"), "--login", LOGIN,
                      "--password", PASSWORD, file]);
    town = JSON.parse(fs.readFileSync(file, "utf8"));
    /* the weekday missing from one of the klub's weeks: a holiday */
    const kd = new Set(sessionsOf("klub").map((s) => s.date));
    for (const d of kd) {
        const day = Date.parse(d + "T00:00:00Z");
        const mon = day - ((new Date(day).getUTCDay() + 6) % 7) * 86400e3;
        for (let i = 0; i < 5 && !town.holiday; i++) {
            const x = new Date(mon + i * 86400e3).toISOString().slice(0, 10);
            if (!kd.has(x)) {
                town.holiday = x;
            }
        }
    }
    stack = await H.startStack(file);
    BASE = stack.base;
    CONF = stack.conf;
    execFileSync(CTL, ["-c", CONF, "staff-add", STAFF, "admin", "Anne Agent"],
                 { cwd: ROOT, input: STAFF_PASSWORD + "\n",
                   stdio: ["pipe", "pipe", "pipe"] });
    browser = await chromium.launch({ executablePath: H.CHROMIUM,
                                      args: H.ARGS });
    page = await (await browser.newContext({
        locale: "fr-FR", viewport: { width: 1200, height: 900 } })).newPage();
    page.on("pageerror", (e) => errors.push(e.message));
    page.on("request", (r) => {
        if (r.method() === "POST" && r.url().endsWith("/api/bookings")) {
            posts.push(r.url());
        }
    });
    await login(page);
    const alsh = sessionsOf("alsh").filter((s) => s.unit === "MATIN");
    seen.week = alsh.slice(0, 5).map((s) => s.date);
    seen.wed = alsh.find((s) => s.places === 2).date;
    seen.next = sessionsOf("alsh").filter((s) => s.unit === "REPAS")
        .slice(5).map((s) => s.date);
});

after(async () => {
    await browser?.close();
    await H.stopStack(stack);
    if (tmp) {
        fs.rmSync(tmp, { recursive: true, force: true });
    }
});

const t = READY ? test : test.skip;

t("une semaine refusée ne refuse que ses séances; la sélection reste",
  async () => {
    await page.goto(BASE + "/#/reserver");
    await page.waitForSelector("#activite");
    await page.check("input[name=enfant][value=c-lea]");
    await page.check("input[name=enfant][value=c-hugo]");
    await grid("alsh", seen.week[0]);
    for (const c of ["c-lea", "c-hugo"]) {
        await page.click(cellKey(c, "alsh", seen.week[0], "MATIN"));
        await page.waitForSelector(cellKey(c, "alsh", seen.wed, "MATIN")
                                   + "[aria-pressed=true]");
    }
    await page.click("#valider");
    await page.waitForSelector("#demande-numero");
    const items = await page.$$eval("#resultat li", (l) => l.map((x) => ({
        status: x.dataset.status, reason: x.dataset.reason,
        text: x.textContent })));
    assert.equal(items.length, 10);
    const ok = items.filter((i) => i.status === "confirmed");
    assert.equal(ok.length, 5, JSON.stringify(items));
    assert.ok(ok.every((i) => /^Léa/.test(i.text)));
    const ko = items.filter((i) => i.status !== "confirmed");
    assert.deepEqual(ko.map((i) => i.reason).sort(),
                     ["full", "week_incomplete", "week_incomplete",
                      "week_incomplete", "week_incomplete"]);
    /* each refused cell says why, the week's refusal names the day */
    const wk = ko.find((i) => i.reason === "week_incomplete").text;
    assert.match(wk, /semaine/i);
    assert.match(wk, /mercredi/i, wk);
    assert.match(ko.find((i) => i.reason === "full").text, /: Complet$/);
    const summary = await page.textContent("#resultat");
    assert.match(summary, /5 séances réservées sur 10/);
    assert.doesNotMatch(summary, /Traitée/);
    assert.match(summary, /Acceptée en partie/);

    /* Hugo's four open days stay selected, marked as refused */
    for (const d of seen.week.filter((x) => x !== seen.wed)) {
        const sel = cellKey("c-hugo", "alsh", d, "MATIN");
        await page.waitForSelector(sel + "[aria-pressed=true]");
        assert.match(await page.getAttribute(sel, "class"), /resultat-ko/);
    }
    assert.match(await page.getAttribute(
        cellKey("c-hugo", "alsh", seen.wed, "MATIN"), "class"),
                 /resultat-ko/);
    await axe("réponse partielle");
    await shot("01-semaine-refusee");
});

t("renvoyer une semaine incomplète est expliqué avant l'envoi", async () => {
    const before = posts.length;
    await page.click("#valider");
    const warn = await page.waitForSelector("#avis-envoi [role=alert]");
    const text = await warn.textContent();
    assert.match(text, /semaine complète/i);
    assert.match(text, /Hugo/);
    assert.match(text, /mercredi/i);
    assert.equal(posts.length, before, "nothing sent");
    await axe("semaine incomplète avant envoi");
    await page.click("button:has-text('Annuler les modifications')");
    await page.waitForSelector("#avis-envoi:empty", { state: "attached" });
});

t("deux séances qui se chevauchent: averti avant l'envoi; estimation "
  + "par séance", async () => {
    const tue = seen.next[1];
    await page.uncheck("input[name=enfant][value=c-hugo]");
    await grid("alsh", tue);
    await page.click(cellKey("c-lea", "alsh", tue, "REPAS"));
    await page.waitForSelector(cellKey("c-lea", "alsh", seen.next[4],
                                       "REPAS") + "[aria-pressed=true]");
    await grid("klub", tue);
    await page.click(cellKey("c-lea", "klub", tue, "REPAS"));
    await page.waitForSelector(cellKey("c-lea", "klub", tue, "REPAS")
                               + "[aria-pressed=true]");
    /* 5 × 4,50 € + 1 × 6 € */
    const bar = await page.textContent("#en-attente");
    assert.match(bar, /6 séances sélectionnées/);
    assert.match(bar, /28,50\s€/, bar);

    const before = posts.length;
    await page.click("#valider");
    const warn = await page.waitForSelector("#avis-envoi [role=alert]");
    const text = await warn.textContent();
    assert.match(text, /Léa/);
    assert.match(text, /ALSH/);
    assert.match(text, /Klub/);
    assert.match(text, /Repas/);
    assert.equal(posts.length, before, "nothing sent");
    assert.equal(await page.$("#demande-numero"), null);
    await axe("chevauchement avant envoi");
    await shot("02-chevauchement");
    await page.click("button:has-text('Annuler les modifications')");
});

t("une activité qui commence plus tard; titres, légende, enfant coché",
  async () => {
    await page.reload();
    await page.waitForSelector("#activite");
    assert.equal(await page.isChecked("input[name=enfant][value=c-lea]"),
                 true, "one child ticked for you");
    const first = sessionsOf("mercredis")[0].date;
    await page.selectOption("#activite", "mercredis");
    if (await page.getAttribute("[data-mode=mois]", "aria-pressed")
        !== "true") {
        await page.click("[data-mode=mois]");
    }
    await page.waitForSelector(cellKey("c-lea", "mercredis", first, "MATIN"));
    assert.match(await page.textContent("#periode"),
                 new RegExp(first.slice(0, 4)));
    assert.doesNotMatch(await page.textContent("#plannings"),
                        /Aucune séance/);
    await page.click("[data-mode=semaine]");
    await page.waitForSelector(cellKey("c-lea", "mercredis", first, "MATIN"));
    assert.match(await page.textContent("#periode"),
                 new RegExp("Semaine du .*" + first.slice(0, 4)));
    const legend = await page.textContent(".legende");
    assert.match(legend, /Âge hors tranche/);
    assert.match(legend, /Inscription non validée/);
    /* a public holiday is said, not silently missing */
    const hol = town.holiday;
    await grid("klub", hol);
    await page.waitForSelector("#plannings .ferie");
    assert.match(await page.textContent("#plannings"), /Férié/);
    await axe("mercredis");
    await shot("03-mercredis");
});

t("Mes réservations montre ce qui vient; une longue période marche",
  async () => {
    await page.goto(BASE + "/#/reservations");
    await page.waitForSelector("[data-booking]");
    const rows = await page.$$("[data-booking]");
    assert.equal(rows.length, 5);
    assert.match(await page.textContent("#liste-reservations"), /ALSH/);
    await axe("mes réservations");

    const today = new Intl.DateTimeFormat("en-CA",
        { timeZone: "Europe/Paris" }).format(new Date());
    const far = new Date(Date.parse(today + "T00:00:00Z") + 200 * 86400e3)
        .toISOString().slice(0, 10);
    await page.goto(BASE + "/#/reservations?du=" + today + "&au=" + far);
    await page.waitForSelector("[data-booking]");
    const text = await page.textContent("main");
    assert.doesNotMatch(text, /paramètre/);
    assert.equal((await page.$$("[data-booking]")).length, 5);
});

t("à 375 px: menu replié, réservations en cartes", async () => {
    const ctx = await browser.newContext({
        locale: "fr-FR", viewport: { width: 375, height: 800 } });
    const p = await ctx.newPage();
    p.on("pageerror", (e) => errors.push(e.message));
    await login(p);
    const head = await p.$eval("header", (e) => e.getBoundingClientRect()
        .height);
    assert.ok(head < 120, "header " + head + " px");
    const menu = await p.waitForSelector("#bouton-menu");
    assert.equal(await menu.getAttribute("aria-expanded"), "false");
    assert.equal(await p.isVisible("nav a[href='#/factures']"), false);
    await menu.click();
    assert.equal(await menu.getAttribute("aria-expanded"), "true");
    await p.waitForSelector("nav a[href='#/factures']", { state: "visible" });
    await axe("menu ouvert 375", p);
    await p.click("nav a[href='#/reservations']");
    await p.waitForSelector("[data-booking]");
    assert.equal(await menu.getAttribute("aria-expanded"), "false");
    const wide = await p.evaluate(() =>
        document.documentElement.scrollWidth);
    assert.ok(wide <= 375, "page " + wide + " px wide");
    for (const b of await p.$$("[data-booking] button")) {
        const box = await b.boundingBox();
        assert.ok(box && box.x + box.width <= 375, "button off screen");
    }
    const price = await p.$("[data-booking] .montant");
    const pb = await price.boundingBox();
    assert.ok(pb && pb.x + pb.width <= 375, "price off screen");
    await axe("mes réservations 375", p);
    await shot("04-mobile-reservations", p);

    /* the back office folds its menu too */
    await p.goto(BASE + "/agent/#/connexion");
    await p.waitForSelector("#ag-identifiant");
    await p.fill("#ag-identifiant", STAFF);
    await p.fill("#ag-motdepasse", STAFF_PASSWORD);
    await p.click("form button[type=submit]");
    await p.waitForSelector("h1:has-text('Inscriptions à traiter')");
    const ahead = await p.$eval("header", (e) => e.getBoundingClientRect()
        .height);
    assert.ok(ahead < 120, "agent header " + ahead + " px");
    const am = await p.waitForSelector("#bouton-menu");
    await am.click();
    await p.waitForSelector("nav a[href='#/familles']", { state: "visible" });
    await axe("agent menu ouvert 375", p);
    await ctx.close();
});

t("aucune erreur JavaScript", async () => {
    assert.deepEqual(errors, []);
});
