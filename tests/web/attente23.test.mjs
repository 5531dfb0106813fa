/*
 * attente23.test.mjs -- issue 23, a waiting list as a parent lives it, in
 * a real browser (Debian's chromium driven by playwright-core) on a stack
 * of its own with town23.py's town (it needs `make build`):
 *
 *   a parent picks the last place while another family takes it first:
 *   the answer says "complet" and offers "M'inscrire sur liste
 *   d'attente"; the parent joins and reads "1ᵉʳ sur la liste d'attente",
 *   in the answer, on the planning's cell and in "Mes réservations"; the other family cancels and
 *   the place appears among the parent's bookings (the worker's
 *   promotion), the list gone; the back office shows a session's list
 *   (Activités, "Voir"), an agent moves Zoé up ("Monter") and removes her
 *   ("Retirer"); a parent leaves a list with "Quitter la liste".
 *
 *   an activity whose list offers (town23.py's "Stage poney"): the other
 *   family cancels and the parent reads "Une place vous est proposée
 *   jusqu'au …" in "Mes réservations" and on the planning's cell, presses
 *   "Accepter la place" and finds the booking among theirs; then the
 *   other family, offered the place the parent cancels, presses "Refuser"
 *   and the place is back online.
 *
 * Every page checked is axe clean (serious / critical).  Screenshots in
 * tests/out/web/p23-*.png.
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
const PY = H.PY;
const LOGIN = "famille";
const PASSWORD = "p23-" + Math.random().toString(36).slice(2, 10);
const CTL = path.join(H.ROOT, "build", "guichetctl");
const STAFF = "a.attente";
const STAFF_PASSWORD = "agent-" + Math.random().toString(36).slice(2, 10);
const READY = fs.existsSync(path.join(H.ROOT, "build", "guichet-office"))
              && fs.existsSync(path.join(H.ROOT, "build",
                                         "ngx_http_guichet_module.so"));

let stack = null;
let BASE;
let tmp;
let browser;
let page;
let other;
let town;
const errors = [];

const shot = (name, p) => H.shot("p23-" + name, p || page);
const axe = (name, p) => H.axe(name, p || page);

/* A call of the API from a logged-in page (its cookie). */
async function api(p, method, url, body) {
    return p.evaluate(async ([m, u, b]) => {
        const headers = { "Content-Type": "application/json" };
        if (m === "POST") {
            headers["Idempotency-Key"] = "k" + Math.random().toString(36)
                                                    .slice(2);
        }
        const r = await fetch(u, { method: m, headers,
                                   credentials: "same-origin",
                                   body: b ? JSON.stringify(b) : undefined });
        return { status: r.status, body: await r.json() };
    }, [method, url, body]);
}

before(async () => {
    if (!READY) {
        return;
    }
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "guichet-p23-"));
    const file = path.join(tmp, "town.json");
    execFileSync(PY, [path.join(HERE, "town23.py"), "--login", LOGIN,
                      "--password", PASSWORD, file]);
    town = JSON.parse(fs.readFileSync(file, "utf8"));
    stack = await H.startStack(file);
    BASE = stack.base;
    execFileSync(CTL, ["-c", stack.conf, "staff-add", STAFF, "agent",
                       "Alex Agent"],
                 { cwd: H.ROOT, input: STAFF_PASSWORD + "\n",
                   stdio: ["pipe", "pipe", "pipe"] });
    browser = await chromium.launch({ executablePath: H.CHROMIUM,
                                      args: H.ARGS });
    const opts = { locale: "fr-FR", viewport: { width: 1200, height: 900 } };
    page = await (await browser.newContext(opts)).newPage();
    page.on("pageerror", (e) => errors.push(e.message));
    other = await (await browser.newContext(opts)).newPage();
    await H.login(page, BASE, LOGIN, PASSWORD);
    await H.login(other, BASE, "autre", PASSWORD);
});

after(async () => {
    await browser?.close();
    await H.stopStack(stack);
    if (tmp) {
        fs.rmSync(tmp, { recursive: true, force: true });
    }
});

const t = READY ? test : test.skip;

t("complet, the waiting list, and the place that comes back", async () => {
    const s = town.activities[0].sessions[0];
    const cell = "[data-key=\"c-lea|" + s.id + "\"]";

    /* the parent picks the last place on the grid ... */
    await page.goto(BASE + "/#/reserver");
    await page.waitForSelector("#activite");
    await page.selectOption("#activite", "camp");
    await page.click("[data-mode=semaine]");
    await page.fill("#aller-au", s.date);
    await page.waitForSelector(cell);
    await page.click(cell);

    /* ... another family takes it first */
    const won = await api(other, "POST", "/api/bookings",
                          { items: [{ child_id: "c-tom",
                                      session_id: s.id }] });
    assert.equal(won.body.items[0].status, "confirmed", JSON.stringify(won));

    await page.click("#valider");
    await page.waitForSelector("#resultat li[data-reason=full]");
    const join = "#resultat li[data-reason=full] button";
    assert.match(await page.textContent(join),
                 /M'inscrire sur liste d'attente/);
    await axe("complet");
    await shot("01-complet");

    await page.click(join);
    await page.waitForSelector(".liste-attente[data-status=waitlisted]");
    assert.match(await page.textContent(".liste-attente"),
                 /1ᵉʳ sur la liste d'attente/);
    /* the grid says it on the full cell */
    await page.waitForSelector(cell + "[data-attente=\"1\"]");
    assert.match(await page.textContent(cell),
                 /1ᵉʳ sur la liste d'attente/);
    await axe("inscrit");
    await shot("02-inscrit");

    /* Mes réservations: the position, and the way out */
    await page.goto(BASE + "/#/reservations");
    await page.waitForSelector("#listes-attente li");
    assert.match(await page.textContent("#listes-attente"),
                 /Léa — .*1ᵉʳ sur la liste d'attente/);
    assert.ok(await page.$("#listes-attente button"));
    await axe("reservations-attente");
    await shot("03-reservations");

    /* the other family cancels: the place is Léa's, the list is gone */
    const held = await api(other, "GET", "/api/bookings?from=" + s.date
                                         + "&to=" + s.date);
    const bid = held.body.bookings[0].booking_id;
    assert.equal((await api(other, "DELETE", "/api/bookings/" + bid)).status,
                 200);
    for (let i = 0; i < 200; i++) {
        const mine = await api(page, "GET", "/api/bookings?from=" + s.date
                                            + "&to=" + s.date);
        if (mine.body.bookings.length) {
            break;
        }
        await new Promise((ok) => setTimeout(ok, 100));
    }
    await page.goto(BASE + "/#/reservations?du=" + s.date + "&au="
                    + s.date);
    await page.waitForSelector("#liste-reservations tr[data-booking]");
    assert.match(await page.textContent("#liste-reservations"), /Léa/);
    await page.waitForFunction(() => !document.querySelector(
        "#listes-attente li"));
    await shot("04-promu");

    /* Tom and Zoé join the list now that Léa holds the place */
    const joined = await api(other, "POST", "/api/bookings",
                             { items: [{ child_id: "c-tom", session_id: s.id,
                                         waitlist: true },
                                       { child_id: "c-zoe", session_id: s.id,
                                         waitlist: true }] });
    assert.equal(joined.body.items[0].status, "waitlisted");
    assert.equal(joined.body.items[1].status, "waitlisted");
    /* the back office sees Tom first on the session's list */
    const ag = await (await browser.newContext({
        locale: "fr-FR", viewport: { width: 1200, height: 900 } }))
        .newPage();
    ag.on("pageerror", (e) => errors.push(e.message));
    await ag.goto(BASE + "/agent/#/connexion");
    await ag.waitForSelector("#ag-identifiant");
    await ag.fill("#ag-identifiant", STAFF);
    await ag.fill("#ag-motdepasse", STAFF_PASSWORD);
    await ag.click("form button[type=submit]");
    await ag.waitForSelector("h1:has-text('Inscriptions à traiter')");
    await ag.goto(BASE + "/agent/#/activites?id=camp");
    await ag.click("tr[data-seance=\"" + s.id + "\"] button:has-text('Voir')");
    await ag.waitForSelector("#liste-attente li[data-child=c-tom]");
    assert.match(await ag.textContent("#liste-attente"),
                 /Liste d'attente du[\s\S]*Tom \(famille f-b\)[\s\S]*Zoé/);
    await axe("agent-attente", ag);
    await shot("05-agent", ag);
    /* the agent moves Zoé up, then removes her (audited) */
    await ag.click("#liste-attente li[data-child=c-zoe] "
                   + "button:has-text('Monter')");
    await ag.waitForSelector("#liste-attente li:first-child[data-child=c-zoe]");
    assert.match(await ag.textContent("#liste-attente"),
                 /Zoé monte à la place 1/);
    const order = await api(other, "GET", "/api/waitlist");
    assert.deepEqual(order.body.waitlist.map((w) => [w.child_id,
                                                     w.position]),
                     [["c-tom", 2], ["c-zoe", 1]]);
    await axe("agent-attente-ordre", ag);
    await ag.click("#liste-attente li[data-child=c-zoe] "
                   + "button:has-text('Retirer')");
    await ag.waitForFunction(() => !document.querySelector(
        "#liste-attente li[data-child=c-zoe]"));
    await ag.waitForSelector("#liste-attente li:first-child[data-child=c-tom]");

    await other.goto(BASE + "/#/reservations");
    await other.waitForSelector("#listes-attente li button");
    await axe("quitter", other);
    await other.click("#listes-attente li button");
    await other.waitForFunction(() => !document.querySelector(
        "#listes-attente li"));
    const after = await api(other, "GET", "/api/waitlist");
    assert.deepEqual(after.body.waitlist, []);

    assert.deepEqual(errors, []);
});

/* Polls the API until pred(body) holds (the worker's turn), else fails. */
async function until(p, url, pred, what) {
    for (let i = 0; i < 200; i++) {
        const r = await api(p, "GET", url);
        if (pred(r.body)) {
            return r.body;
        }
        await new Promise((ok) => setTimeout(ok, 100));
    }
    assert.fail("never happened: " + what);
}

t("a place offered, accepted, then declined", async () => {
    const s = town.activities[1].sessions[0];
    const cell = "[data-key=\"c-lea|" + s.id + "\"]";
    const offered = (b) => (b.waitlist || []).some(
        (w) => w.session_id === s.id && w.status === "offered");

    /* Tom holds the only place, Léa waits */
    const won = await api(other, "POST", "/api/bookings",
                          { items: [{ child_id: "c-tom",
                                      session_id: s.id }] });
    assert.equal(won.body.items[0].status, "confirmed", JSON.stringify(won));
    const joined = await api(page, "POST", "/api/bookings",
                             { items: [{ child_id: "c-lea", session_id: s.id,
                                         waitlist: true }] });
    assert.equal(joined.body.items[0].status, "waitlisted");

    /* Tom cancels: the place is offered to Léa, not booked */
    assert.equal((await api(other, "DELETE", "/api/bookings/"
                            + won.body.items[0].booking_id)).status, 200);
    await until(page, "/api/waitlist", offered, "the offer to Léa");

    await page.goto(BASE + "/#/reservations");
    await page.waitForSelector("#listes-attente li.offre");
    assert.match(await page.textContent("#listes-attente"),
                 /Léa — Stage poney.*Une place vous est proposée jusqu'au/);
    await axe("offre");
    await shot("06-offre");

    /* the back office sees the offer above the session's list */
    const ag = await (await browser.newContext({
        locale: "fr-FR", viewport: { width: 1200, height: 900 } }))
        .newPage();
    ag.on("pageerror", (e) => errors.push(e.message));
    await ag.goto(BASE + "/agent/#/connexion");
    await ag.waitForSelector("#ag-identifiant");
    await ag.fill("#ag-identifiant", STAFF);
    await ag.fill("#ag-motdepasse", STAFF_PASSWORD);
    await ag.click("form button[type=submit]");
    await ag.waitForSelector("h1:has-text('Inscriptions à traiter')");
    await ag.goto(BASE + "/agent/#/activites?id=stage");
    await ag.click("tr[data-seance=\"" + s.id + "\"] button:has-text('Voir')");
    await ag.waitForSelector("#liste-attente .offres li[data-child=c-lea]");
    assert.match(await ag.textContent("#liste-attente .offres"),
                 /Place proposée à Léa \(famille f-a\) jusqu'au/);
    await axe("agent-offre", ag);
    await ag.context().close();

    /* the planning says it on the cell */
    await page.goto(BASE + "/#/reserver");
    await page.waitForSelector("#activite");
    await page.selectOption("#activite", "stage");
    await page.click("[data-mode=semaine]");
    await page.fill("#aller-au", s.date);
    await page.waitForSelector(cell + "[data-attente=offre]");
    assert.match(await page.textContent(cell),
                 /Place proposée jusqu'au/);
    await shot("07-offre-planning");

    /* accepted: Léa's booking */
    await page.goto(BASE + "/#/reservations");
    await page.waitForSelector("#listes-attente li.offre button");
    await page.click("#listes-attente li.offre button:has-text('Accepter')");
    await page.waitForFunction(() => /Stage poney/.test(
        document.querySelector("#liste-reservations tr[data-booking]")
            ?.closest("#liste-reservations").textContent || ""));
    assert.match(await page.textContent("main"), /Place réservée : Léa/);
    await page.waitForFunction(() => !document.querySelector(
        "#listes-attente li.offre"));
    const mine = await api(page, "GET", "/api/bookings?from=" + s.date
                                        + "&to=" + s.date);
    assert.equal(mine.body.bookings.filter(
        (b) => b.session_id === s.id).length, 1);
    await shot("08-acceptee");

    /* Tom waits now; Léa cancels; Tom declines the offer */
    const tom = await api(other, "POST", "/api/bookings",
                          { items: [{ child_id: "c-tom", session_id: s.id,
                                      waitlist: true }] });
    assert.equal(tom.body.items[0].status, "waitlisted");
    const lea = mine.body.bookings.find((b) => b.session_id === s.id);
    assert.equal((await api(page, "DELETE", "/api/bookings/"
                            + lea.booking_id)).status, 200);
    await until(other, "/api/waitlist", offered, "the offer to Tom");
    await other.goto(BASE + "/#/");         /* from the same page */
    await other.goto(BASE + "/#/reservations");
    await other.waitForSelector("#listes-attente li.offre button");
    await axe("offre-refus", other);
    await other.click("#listes-attente li.offre button:has-text('Refuser')");
    await other.waitForFunction(() => !document.querySelector(
        "#listes-attente li"));
    assert.deepEqual((await api(other, "GET", "/api/waitlist")).body
                     .waitlist, []);
    /* nobody else waits: the place is back online */
    await until(page, "/api/activities/stage/sessions?from=" + s.date
                      + "&to=" + s.date,
                (b) => (b.sessions || b).some(
                    (x) => x.id === s.id && x.places_left === 1),
                "the place back online");

    assert.deepEqual(errors, []);
});
