/*
 * planning24.test.mjs -- issue 24, the planning a parent uses, in a real
 * browser (Debian's chromium driven by playwright-core) on a stack of its
 * own with town24.py's town (it needs `make build`):
 *
 *   a booked cell unticked on the grid is cancelled by "Valider", the
 *   summary saying first which cancellation stays billed (past the
 *   activity's cancel_deadline) and which is free; the prices are the
 *   engine's (a non-resident family: 8 €, not the resident band); a
 *   booked afternoon changed for another workshop of the same afternoon
 *   is one swap ("replaces", no DELETE first);
 *   an answer for a week the parent left while it was on its way is not
 *   drawn over the week shown;
 *   "Tout / Aucun" of a column and of a row; a required document missing
 *   is said in the summary before sending (and the engine agrees); a
 *   semaine type applied over a school year for two children (more than
 *   200 cells, fewer than guichet_max_items' 400) goes in one request,
 *   with a progress bar, every cell answered; at 375 px no horizontal
 *   scroll; the legend names booked, pending, refused, waiting list,
 *   closed and full, at 375 px and on a desktop.
 *
 * Every page checked is axe clean (serious / critical).  Screenshots in
 * tests/out/web/p24-*.png.
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
const LOGIN = "famille";
const PASSWORD = "p24-" + Math.random().toString(36).slice(2, 10);
const READY = fs.existsSync(path.join(ROOT, "build", "guichet-office"))
              && fs.existsSync(path.join(ROOT, "build",
                                         "ngx_http_guichet_module.so"));

let stack = null;
let BASE;
let tmp;
let browser;
let page;
let town;
const errors = [];
const bodies = [];
const seen = {};

const shot = (name, p) => H.shot("p24-" + name, p || page);
const axe = (name, p) => H.axe(name, p || page);
const compact = (d) => d.replaceAll("-", "");
const key = (child, act, date, unit) =>
    "[data-key=\"" + child + "|" + act + "-" + compact(date) + "-" + unit
    + "\"]";
const sessionsOf = (aid) => town.activities.find((a) => a.id === aid)
    .sessions;
const plusDays = (d, n) => new Date(Date.parse(d + "T00:00:00Z")
                                    + n * 86400e3).toISOString().slice(0, 10);
const today = () => new Date().toLocaleDateString("sv-SE",
                                                  { timeZone: "Europe/Paris" });

/* The booking page on an activity, week mode, at day. */
async function grid(aid, day) {
    if (!page.url().endsWith("#/reserver")) {
        await page.goto(BASE + "/#/reserver");
    }
    await page.waitForSelector("#activite");
    if (await page.inputValue("#activite") !== aid) {
        await page.selectOption("#activite", aid);
    }
    if (await page.getAttribute("[data-mode=semaine]", "aria-pressed")
        !== "true") {
        await page.click("[data-mode=semaine]");
    }
    if (await page.inputValue("#aller-au") !== day) {
        await page.fill("#aller-au", day);
    }
    await page.waitForFunction((d) => {
        const t = document.getElementById("periode");
        return t && document.querySelector("[data-date=\"" + d + "\"]");
    }, day);
}

async function bookingsApi(from, to) {
    return page.evaluate(async ([a, b]) => {
        const r = await fetch("/api/bookings?from=" + a + "&to=" + b,
                              { credentials: "same-origin" });
        return (await r.json()).bookings;
    }, [from, to]);
}

before(async () => {
    if (!READY) {
        return;
    }
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "guichet-p24-"));
    const file = path.join(tmp, "town.json");
    execFileSync(PY, [path.join(HERE, "town24.py"), "--login", LOGIN,
                      "--password", PASSWORD, file]);
    town = JSON.parse(fs.readFileSync(file, "utf8"));
    stack = await H.startStack(file);
    BASE = stack.base;
    browser = await chromium.launch({ executablePath: H.CHROMIUM,
                                      args: H.ARGS });
    const ctx = await browser.newContext({
        locale: "fr-FR", viewport: { width: 1200, height: 900 } });
    /* remember whether the progress bar of a validation was ever shown */
    await ctx.addInitScript(() => {
        window.__progress = 0;
        new MutationObserver(() => {
            const p = document.getElementById("progression-envoi");
            if (p) {
                window.__progress = Math.max(window.__progress,
                                             Number(p.max) || 0);
            }
        }).observe(document, { childList: true, subtree: true });
    });
    page = await ctx.newPage();
    page.on("pageerror", (e) => errors.push(e.message));
    page.on("request", (r) => {
        if (r.method() === "POST"
            && new URL(r.url()).pathname === "/api/bookings") {
            bodies.push(JSON.parse(r.postData()));
        }
    });
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

t("grid: unticking booked cells cancels them, billed or free said first",
  async () => {
    const peri = sessionsOf("peri").filter((s) => s.unit === "MATIN");
    /* A: the first morning (within 5 working days: a cancellation is
     * billed); B: a morning four weeks ahead (free) */
    const a = peri[0].date;
    const b = peri.find((s) => s.date >= plusDays(today(), 28)).date;
    const A = key("c-lea", "peri", a, "MATIN");
    const B = key("c-lea", "peri", b, "MATIN");

    await grid("peri", a);
    await page.click(A);
    await grid("peri", b);
    await page.click(B);
    /* the engine's price for this non-resident family: 8 €, not 5 € */
    await page.waitForSelector("#recap-reserver");
    const recap = await page.textContent("#recap-reserver");
    assert.equal((recap.match(/8,00\s€/g) || []).length, 2, recap);
    assert.match(await page.textContent("#en-attente"), /16,00\s€/);
    await page.click("#valider");
    await page.waitForSelector("#demande-numero");
    assert.equal((await page.$$("#resultat li[data-status=confirmed]"))
                 .length, 2, await page.textContent("#resultat"));

    /* "Mes réservations" warns from the same cancel_until (the session
     * is still open for booking: its status alone would not say it) */
    const held = await bookingsApi(a, b);
    for (const [date, late] of [[a, true], [b, false]]) {
        const id = held.find((x) => x.date === date).booking_id;
        await page.goto(BASE + "/#/reservations?du=" + a + "&au=" + b);
        await page.click("tr[data-booking=\"" + id + "\"] .bouton.danger");
        const dlg = await page.waitForSelector("dialog[open]");
        const text = await dlg.textContent();
        assert.equal(/restera facturée/.test(text), late, text);
        await page.click("dialog[open] .bouton.second");
    }

    /* untick both: to cancel */
    await grid("peri", b);
    await page.click(B);
    await page.waitForSelector(B + "[data-state=annuler]");
    assert.match(await page.textContent(B), /sans frais/);
    await grid("peri", a);
    await page.click(A);
    await page.waitForSelector(A + "[data-state=annuler]");
    assert.match(await page.textContent(A), /factur/);
    const rows = await page.$$eval("#recap-annuler tbody tr", (trs) =>
        trs.map((tr) => [tr.dataset.billed, tr.textContent]));
    assert.equal(rows.length, 2);
    const billed = rows.find((r) => r[0] === "true");
    const free = rows.find((r) => r[0] === "false");
    assert.ok(billed && /reste facturée/.test(billed[1]), rows.join(" | "));
    assert.ok(free && /Sans frais/.test(free[1]), rows.join(" | "));
    await page.waitForFunction(() => /après validation/.test(
        document.getElementById("recap-total").textContent));
    assert.match(await page.textContent("#recap-totaux"),
                 /Annulations sans frais\s*− 8,00\s€/);
    assert.doesNotMatch(await page.textContent("#recapitulatif"),
                        /null|undefined|NaN/);
    await axe("reserver-annuler");
    await shot("01-annuler");

    await page.click("#valider");
    await page.waitForSelector("#resultat-annulations");
    const out = await page.textContent("#resultat-annulations");
    assert.match(out, /Annulée, reste facturée \(8,00\s€\)/);
    assert.match(out, /Annulée sans frais/);
    assert.deepEqual(await bookingsApi(a, b), []);
    await page.waitForSelector(A + "[data-state=libre]");
});

t("grid: changing a booked afternoon for another workshop is one swap",
  async () => {
    /* a périscolaire afternoon booked, then exchanged on the grid for the
     * théâtre of the same afternoon: unticked, the théâtre ticked in its
     * slot, "Valider" sends ONE booking request whose item replaces the
     * booking (no DELETE first: the place cannot be lost in between) */
    const th = sessionsOf("theatre");
    const d = th.find((s) => s.date >= plusDays(today(), 28)).date;
    const P_ = key("c-lea", "peri", d, "APM");
    const T_ = key("c-lea", "theatre", d, "APM");

    await grid("peri", d);
    await page.click(P_);
    await page.click("#valider");
    await page.waitForSelector("#resultat li[data-status=confirmed]");
    const old = (await bookingsApi(d, d)).find((x) =>
        x.child_id === "c-lea").booking_id;

    await grid("theatre", d);
    /* held by the périscolaire: not free while it is kept */
    assert.equal(await page.$(T_ + "[data-state=libre]"), null);
    await grid("peri", d);
    await page.click(P_);
    await page.waitForSelector(P_ + "[data-state=annuler]");
    await grid("theatre", d);
    await page.waitForSelector(T_ + "[data-state=libre]");
    await page.click(T_);
    await page.waitForSelector(T_ + "[aria-pressed=true]");
    /* the summary says it is an exchange, and what happens if refused */
    const row = await page.waitForSelector(
        "#recap-annuler tbody tr[data-swap=true]");
    assert.match(await row.textContent(),
                 /échangée contre Atelier théâtre : gardée si la nouvelle/);
    await axe("reserver-echange");
    await shot("05-echange");

    const sent = bodies.length;
    const dels = [];
    const onReq = (r) => {
        if (r.method() === "DELETE") {
            dels.push(r.url());
        }
    };
    page.on("request", onReq);
    await page.click("#valider");
    await page.waitForSelector("#resultat-annulations "
                               + "li[data-status=swapped]");
    page.off("request", onReq);
    assert.deepEqual(dels, []);
    assert.equal(bodies.length, sent + 1);
    const item = bodies[sent].items.find((i) => i.child_id === "c-lea");
    assert.equal(item.replaces, old);
    assert.equal(item.session_id, "theatre-" + compact(d) + "-APM");
    assert.match(await page.textContent("#resultat-annulations"),
                 /Remplacée, annulée sans frais/);
    const now = await bookingsApi(d, d);
    assert.deepEqual(now.filter((x) => x.child_id === "c-lea")
                        .map((x) => x.session_id),
                     ["theatre-" + compact(d) + "-APM"]);
    await axe("reserver-echange-fait");
    /* leave the year's count (below) to the semaine type */
    const gone = await page.evaluate(async (id) => (await fetch(
        "/api/bookings/" + id, { method: "DELETE",
                                 credentials: "same-origin" })).status,
        now.find((x) => x.child_id === "c-lea").booking_id);
    assert.equal(gone, 200);
});

t("grid: the answer for a week left while it was on its way is not drawn "
  + "over the week shown", async () => {
    /* under load, a slow answer came back after the next week's and drew
     * the old week under the new week's title (a click then ticked the
     * wrong days) */
    const peri = sessionsOf("peri");
    const monday = (d) => plusDays(d, -((new Date(d).getUTCDay() + 6) % 7));
    const a = peri.find((s) => s.date >= plusDays(today(), 21)).date;
    const b = peri.find((s) => s.date >= plusDays(monday(a), 7)).date;
    const sessionsFrom = (d) => (u) => {
        const url = new URL(u);
        return url.pathname.endsWith("/sessions")
            && url.searchParams.get("from") === monday(d);
    };
    await grid("peri", b);
    /* a's places held back until b's grid is drawn */
    let release;
    const held = new Promise((ok) => { release = ok; });
    const isA = sessionsFrom(a);
    const hold = async (r) => {
        await held;
        await r.continue();
    };
    const route = (u) => isA(u.href);
    await page.route(route, hold);
    const aAsked = page.waitForRequest((r) => isA(r.url()));
    await page.fill("#aller-au", a);
    await aAsked;
    await page.fill("#aller-au", b);
    await page.waitForSelector("#plannings[aria-busy=false] [data-date=\""
                               + b + "\"]");
    const aDone = page.waitForEvent("requestfinished", (r) => isA(r.url()));
    release();
    await aDone;
    /* the page's own tasks after that answer, then a frame */
    await page.evaluate(() => new Promise((ok) => requestAnimationFrame(
        () => setTimeout(ok, 0))));
    await page.unroute(route, hold);
    assert.ok(await page.$("[data-date=\"" + b + "\"]"),
              "the week of " + b + " is still drawn");
    assert.equal(await page.$("[data-date=\"" + a + "\"]"), null,
                 "the week of " + a + " is not drawn over it");
    assert.equal(await page.inputValue("#aller-au"), b);
});

t("grid: « Tout » ticks a column and a row, « Aucun » unticks them",
  async () => {
    const peri = sessionsOf("peri");
    const day = peri.find((s) => s.date >= plusDays(today(), 35)).date;
    await grid("peri", day);
    await page.click("[data-all=colonne][data-child=c-lea]");
    const mon = plusDays(day, -((new Date(day).getUTCDay() + 6) % 7));
    const week = peri.filter((s) => s.date >= mon && s.date <= plusDays(mon,
                                                                      6));
    const mornings = week.filter((s) => s.unit === "MATIN").length;
    const picked = () => page.$$eval(
        "[data-child=c-lea][aria-pressed=true][data-state=libre]",
        (x) => x.map((e) => e.dataset.date + e.dataset.unit));
    assert.equal((await picked()).length, mornings);
    assert.ok((await picked()).every((x) => x.endsWith("MATIN")));
    await page.click("[data-all=colonne][data-child=c-lea]");
    assert.equal((await picked()).length, 0);
    await page.click("[data-all=ligne][data-child=c-lea]");
    const first = week[0].date;
    assert.deepEqual((await picked()).sort(),
                     [first + "APM", first + "MATIN"]);
    await axe("reserver-tout");
    await page.click(".barre-validation .boutons button.second");
});

t("summary: a missing document is said before sending", async () => {
    const s = sessionsOf("stage")[0];
    await grid("stage", s.date);
    await page.click(key("c-lea", "stage", s.date, "MATIN"));
    await page.waitForSelector("#refus-connus");
    const warn = await page.textContent("#refus-connus");
    assert.match(warn, /Pièces manquantes au dossier/);
    assert.match(warn, /Mes documents/);
    assert.match(await page.textContent("#recap-reserver"), /15,00\s€/);
    await page.click("#valider");
    await page.waitForSelector("#demande-numero");
    assert.ok(await page.$("#resultat li[data-reason=documents_missing]"),
              await page.textContent("#resultat"));
    await page.click(".barre-validation .boutons button.second");
});

t("semaine type over the school year for two children: one request, "
  + "progress, every cell answered", async () => {
    const now = today();
    const m = Number(now.slice(5, 7));
    /* a school year with at least 30 weeks of sessions ahead */
    const near = m >= 3 && m <= 8 ? now.slice(0, 4) + "-09-07"
                                  : plusDays(now, 14);
    const anchor = sessionsOf("peri").find((s) => s.date >= near).date;
    await grid("peri", anchor);
    for (const c of ["c-lea", "c-hugo"]) {
        if (!await page.isChecked("input[name=enfant][value=" + c + "]")) {
            await page.check("input[name=enfant][value=" + c + "]");
        }
    }
    await page.click("#semaine-type summary");
    await page.check("input[name=st-jour][value=\"1\"]");    /* mardi */
    await page.check("input[name=st-jour][value=\"3\"]");    /* jeudi */
    await page.check("input[name=st-unite][value=MATIN]");
    await page.check("input[name=st-unite][value=APM]");
    await page.selectOption("#st-periode", "annee");
    await page.click("#semaine-type button[type=submit]");
    await page.waitForFunction(() => /ajoutée/.test(
        document.getElementById("st-message").textContent));

    const y = Number(anchor.slice(5, 7)) >= 9
        ? Number(anchor.slice(0, 4)) : Number(anchor.slice(0, 4)) - 1;
    const from = y + "-09-01";
    const to = (y + 1) + "-08-31";
    const want = sessionsOf("peri").filter((s) =>
        s.date >= from && s.date <= to
        && [2, 4].includes(new Date(s.date + "T00:00:00Z").getUTCDay()));
    const n = want.length * 2;
    assert.ok(n > 200 && n <= 400, "the town gives " + n + " cells");
    assert.match(await page.textContent("#st-message"),
                 new RegExp("^" + n + " séance"));
    assert.match(await page.textContent("#en-attente"),
                 new RegExp(n + " séances sélectionnées"));
    await shot("02-semaine-type");

    bodies.length = 0;
    await page.click("#valider");
    await page.waitForSelector("#demande-numero");
    await page.waitForFunction(() =>
        !document.getElementById("progression-envoi"));
    assert.deepEqual(bodies.map((b) => b.items.length), [n],
                     "one request of every cell");
    const sent = new Set(bodies.flatMap((b) => b.items.map((i) =>
        i.child_id + "|" + i.session_id)));
    assert.equal(sent.size, n);
    assert.match(await page.textContent("#demande-numero"),
                 /^Demande N° \S+$/);
    assert.equal((await page.$$("#resultat li[data-status=confirmed]"))
                 .length, n);
    assert.equal(await page.evaluate(() => window.__progress), n);
    const booked = await page.evaluate(async ([a, b]) => {
        let total = 0;
        for (let d = a; d <= b;) {
            const e = new Date(Date.parse(d + "T00:00:00Z") + 91 * 86400e3)
                .toISOString().slice(0, 10);
            const r = await fetch("/api/bookings?from=" + d + "&to="
                                  + (e < b ? e : b));
            total += (await r.json()).bookings.length;
            d = new Date(Date.parse(e + "T00:00:00Z") + 86400e3)
                .toISOString().slice(0, 10);
        }
        return total;
    }, [from, to]);
    assert.equal(booked, n);
    seen.anchor = anchor;
    seen.booked = n;
    await axe("reserver-annee");
    await shot("03-annee");
});

t("agenda: the week's bookings, a private iCalendar address made, "
  + "re-made and revoked", async () => {
    const week = seen.anchor;
    const mon = plusDays(week, -((new Date(week + "T00:00:00Z").getUTCDay()
                                  + 6) % 7));
    const inWeek = (await bookingsApi(mon, plusDays(mon, 6))).length;
    assert.ok(inWeek > 0);
    await page.goto(BASE + "/#/agenda?semaine=" + week);
    await page.waitForSelector("#agenda-semaine [data-booking]");
    assert.equal((await page.$$("#agenda-semaine [data-booking]")).length,
                 inWeek);
    assert.match(await page.textContent("#agenda-semaine"),
                 /08:30–12:00 Léa — Périscolaire \(Matin\)/);
    await page.waitForSelector("#ical-creer");
    assert.match(await page.textContent("#ical-etat"), /pas d'adresse/);
    await page.click("#ical-creer");
    await page.waitForSelector("#ical-adresse");
    const url = await page.inputValue("#ical-adresse");
    assert.match(url,
                 /^http:\/\/127\.0\.0\.1:\d+\/api\/calendar\/[\w-]+\.ics$/);
    assert.match(await page.getAttribute("#ical-abonner", "href"),
                 /^webcal:\/\//);
    assert.doesNotMatch(await page.textContent("main"),
                        /null|undefined|NaN/);
    await axe("agenda");
    await shot("05-agenda");

    /* the feed, without the session: the address is the secret; the
     * worker persists the bookings, so ask until they are all there */
    const all = seen.booked;
    let text = "";
    for (;;) {
        const r = await fetch(url);
        assert.equal(r.status, 200);
        assert.match(r.headers.get("content-type"), /^text\/calendar/);
        text = await r.text();
        if ((text.match(/^BEGIN:VEVENT\r$/gm) || []).length >= all) {
            break;
        }
        await new Promise((ok) => setTimeout(ok, 300));
    }
    assert.equal((text.match(/^BEGIN:VEVENT\r$/gm) || []).length, all);
    assert.ok(text.startsWith("BEGIN:VCALENDAR\r\nVERSION:2.0\r\n"));

    /* a new address: the old one stops answering */
    await page.click("#ical-creer");
    await page.waitForFunction((old) => {
        const f = document.getElementById("ical-adresse");
        return f && f.value !== old;
    }, url);
    const url2 = await page.inputValue("#ical-adresse");
    assert.equal((await fetch(url)).status, 404);
    assert.equal((await fetch(url2)).status, 200);
    await page.click("#ical-supprimer");
    await page.waitForFunction(() => /pas d'adresse/.test(
        document.getElementById("ical-etat").textContent));
    assert.equal((await fetch(url2)).status, 404);
});

t("at 375 px: the grid with a summary has no horizontal scroll",
  async () => {
    await page.setViewportSize({ width: 375, height: 800 });
    const s = sessionsOf("stage")[1];
    await grid("stage", s.date);
    await page.click(key("c-lea", "stage", s.date, "MATIN"));
    await page.waitForSelector("#recap-reserver");
    const wide = await page.evaluate(() =>
        document.documentElement.scrollWidth
        > document.documentElement.clientWidth);
    assert.equal(wide, false);
    await axe("reserver-375");
    await shot("04-telephone");
    await page.click(".barre-validation .boutons button.second");
    await page.goto(BASE + "/#/agenda?semaine=" + seen.anchor);
    await page.waitForSelector("#agenda-semaine [data-booking]");
    await page.click("#ical-creer");
    await page.waitForSelector("#ical-adresse");
    assert.equal(await page.evaluate(() =>
        document.documentElement.scrollWidth
        > document.documentElement.clientWidth), false);
    await axe("agenda-375");
    await shot("06-agenda-telephone");
    await page.click("#ical-supprimer");
    await page.waitForFunction(() => /pas d'adresse/.test(
        document.getElementById("ical-etat").textContent));
    await page.setViewportSize({ width: 1200, height: 900 });
});

/* The legend names every state of a cell the issue lists -- booked,
 * pending, refused with its reason, waiting list, closed, full -- on a
 * phone and on a desktop, open, axe clean. */
t("the legend: booked, pending, refused, waiting list, closed, full",
  async () => {
    for (const width of [375, 1200]) {
        await page.setViewportSize({ width, height: 900 });
        await grid("stage", sessionsOf("stage")[1].date);
        const det = await page.$("details:has(> .legende)");
        if (!await det.evaluate((d) => d.open)) {
            await page.click("details:has(> .legende) summary");
        }
        const words = await page.$$eval(".legende li",
                                        (l) => l.map((x) => x.textContent));
        const has = (re, what) => assert.ok(words.some((w) => re.test(w)),
                                            what + ": " + words.join(" | "));
        has(/^Déjà réservé/, "booked");
        has(/^Sélectionné, en attente de validation/, "pending");
        has(/^Refusé : le motif est écrit/, "refused with its reason");
        has(/^Complet2ᵉ sur la liste d'attente$/, "waiting list");
        has(/^Fermé : délai dépassé/, "closed");
        has(/^Complet$/, "full");
        assert.equal(await page.evaluate(() =>
            document.documentElement.scrollWidth
            > document.documentElement.clientWidth), false);
        await axe("legende-" + width);
        await shot("07-legende-" + width);
    }
});

t("no JavaScript error", () => {
    assert.deepEqual(errors, []);
});
