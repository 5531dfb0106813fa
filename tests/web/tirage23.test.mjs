/*
 * tirage23.test.mjs -- issue 23, an opening by draw as a parent lives it,
 * in a real browser (Debian's chromium driven by playwright-core) on a
 * stack of its own (it needs `make build`):
 *
 *   during the entry window the planning says "Tirage au sort" on the
 *   activity's cells; the parent picks one and validates: the answer
 *   reads "Inscrit au tirage au sort du … à 18:00" and the cell
 *   "Inscrit au tirage au sort"; the opening comes (the town file loaded
 *   again with the opening just past), the worker decides the draw, and
 *   the planning shows the place booked.
 *
 * Every page checked is axe clean (serious / critical).  Screenshots in
 * tests/out/web/p23t-*.png.
 */

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";
import * as H from "./helpers.mjs";

const LOGIN = "famille";
const PASSWORD = "p23t-" + Math.random().toString(36).slice(2, 10);
const CTL = path.join(H.ROOT, "build", "guichetctl");
const READY = fs.existsSync(path.join(H.ROOT, "build", "guichet-office"))
              && fs.existsSync(path.join(H.ROOT, "build",
                                         "ngx_http_guichet_module.so"));

let stack = null;
let BASE;
let tmp;
let file;
let browser;
let page;
const errors = [];

const shot = (name) => H.shot("p23t-" + name, page);
const axe = (name) => H.axe(name, page);

const iso = (d) => d.toISOString().slice(0, 10);
const DAY = (() => {
    const d = new Date(Date.now() + 14 * 86400000);
    while (d.getUTCDay() === 0 || d.getUTCDay() === 6) {
        d.setUTCDate(d.getUTCDate() + 1);
    }
    return iso(d);
})();
const SID = "sejour-" + DAY.replaceAll("-", "") + "-MATIN";
/* the opening: tomorrow 18:00 in Paris (summer or winter time) */
const TOMORROW = iso(new Date(Date.now() + 86400000));

function town(opens) {
    const year = new Date().getUTCFullYear();
    return {
        town: { name: "Ambérieu-en-Bugey", timezone: "Europe/Paris" },
        units: [{ code: "MATIN", label: "Matin", starts: "08:30",
                  ends: "12:00" }],
        activities: [{
            id: "sejour", name: "Séjour au tirage au sort",
            site: "Base de loisirs", age_min: 3, age_max: 12,
            booking_opens_at: opens,
            opening: { mode: "draw",
                       entries_from: "2026-01-01T12:00:00+01:00" },
            deadline: { working_days: 2 }, online_share_percent: 100,
            week_required: false, prices: [{ qf_max: null, cents: 900 }],
            sessions: [{ id: SID, date: DAY, unit: "MATIN", places: 1 }],
        }],
        families: [{
            id: "f-a", login: LOGIN, password: PASSWORD, qf: 500,
            resident: true, direct_debit: false,
            children: [{ id: "c-lea", first_name: "Léa",
                         birth_date: (year - 8) + "-02-03" }],
            enrolments: [{ child_id: "c-lea", activity_id: "sejour",
                           from: "2026-01-01", to: (year + 1) + "-12-31",
                           status: "validee" }],
        }],
    };
}

function paris(day, hhmm) {
    /* the offset Europe/Paris has on that day */
    const probe = new Date(day + "T12:00:00Z");
    const local = probe.toLocaleString("sv-SE", { timeZone: "Europe/Paris" });
    const off = Math.round((Date.parse(local.replace(" ", "T") + "Z")
                            - probe.getTime()) / 3600000);
    return day + "T" + hhmm + ":00+0" + off + ":00";
}

async function api(method, url) {
    return page.evaluate(async ([m, u]) => {
        const r = await fetch(u, { method: m, credentials: "same-origin" });
        return { status: r.status, body: await r.json() };
    }, [method, url]);
}

before(async () => {
    if (!READY) {
        return;
    }
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "guichet-p23t-"));
    file = path.join(tmp, "town.json");
    fs.writeFileSync(file, JSON.stringify(town(paris(TOMORROW, "18:00"))));
    stack = await H.startStack(file);
    BASE = stack.base;
    browser = await chromium.launch({ executablePath: H.CHROMIUM,
                                      args: H.ARGS });
    page = await (await browser.newContext({
        locale: "fr-FR", viewport: { width: 1200, height: 900 } }))
        .newPage();
    page.on("pageerror", (e) => errors.push(e.message));
    await H.login(page, BASE, LOGIN, PASSWORD);
});

after(async () => {
    await browser?.close();
    await H.stopStack(stack);
    if (tmp) {
        fs.rmSync(tmp, { recursive: true, force: true });
    }
});

const t = READY ? test : test.skip;

t("entered in the draw, then the place the draw gave", async () => {
    const cell = "[data-key=\"c-lea|" + SID + "\"]";

    await page.goto(BASE + "/#/reserver");
    await page.waitForSelector("#activite");
    await page.selectOption("#activite", "sejour");
    await page.click("[data-mode=semaine]");
    await page.fill("#aller-au", DAY);
    await page.waitForSelector(cell);
    assert.match(await page.textContent(cell), /Tirage au sort/);
    await page.click(cell);
    await page.click("#valider");

    await page.waitForSelector("#resultat li[data-status=entered]");
    assert.match(await page.textContent("#resultat li[data-status=entered]"),
                 /Inscrit au tirage au sort du .* 18:00/);
    /* the cell says it at once, not "Refusé" */
    await page.waitForFunction((c) => {
        const e = document.querySelector(c);
        return e && /Inscrit au tirage au sort/.test(e.textContent)
               && !/Refusé/.test(e.textContent);
    }, cell);
    await axe("inscrit");
    await shot("01-inscrit");

    /* the planning says it on the cell */
    await page.goto(BASE + "/#/reserver");
    await page.waitForSelector("#activite");
    await page.selectOption("#activite", "sejour");
    await page.click("[data-mode=semaine]");
    await page.fill("#aller-au", DAY);
    await page.waitForFunction((c) => {
        const e = document.querySelector(c);
        return e && /Inscrit au tirage au sort/.test(e.textContent);
    }, cell);
    await shot("02-planning");

    /* the opening comes: the worker decides the draw */
    const past = new Date(Date.now() - 2000).toISOString()
        .replace(/\.\d+Z$/, "+00:00");
    fs.writeFileSync(file, JSON.stringify(town(past)));
    execFileSync(CTL, ["-c", stack.conf, "load-town", file],
                 { cwd: H.ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let mine = null;
    for (let i = 0; i < 300; i++) {
        mine = await api("GET", "/api/bookings?from=" + DAY + "&to=" + DAY);
        if (mine.body.bookings && mine.body.bookings.length) {
            break;
        }
        await new Promise((ok) => setTimeout(ok, 100));
    }
    assert.equal(mine.body.bookings[0].session_id, SID);

    /* the planning shows the place booked; the demande, the draw's */
    await page.goto(BASE + "/#/reserver");
    await page.waitForSelector("#activite");
    await page.selectOption("#activite", "sejour");
    await page.click("[data-mode=semaine]");
    await page.fill("#aller-au", DAY);
    await page.waitForFunction((c) => {
        const e = document.querySelector(c);
        return e && /Déjà réservé|Réservé/.test(e.textContent);
    }, cell);
    await axe("tire");
    await shot("03-tire");
    const d = await api("GET", "/api/requests");
    assert.equal(d.body[0].items[0].status, "confirmed");

    assert.deepEqual(errors, []);
});
