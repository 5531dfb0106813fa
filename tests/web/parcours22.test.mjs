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
const sent = (p) => posts.filter((x) => x === p).length;
const pdf = (text) => ({
    name: text + ".pdf", mimeType: "application/pdf",
    buffer: Buffer.from("%PDF-1.4\n% " + text + "\n1 0 obj << >> endobj\n"
                        + "trailer << >>\n%%EOF\n") });

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
        if (r.method() === "POST") {
            posts.push(new URL(r.url()).pathname);
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
    const before = sent("/api/bookings");
    await page.click("#valider");
    const warn = await page.waitForSelector("#avis-envoi [role=alert]");
    const text = await warn.textContent();
    assert.match(text, /semaine complète/i);
    assert.match(text, /Hugo/);
    assert.match(text, /mercredi/i);
    assert.equal(sent("/api/bookings"), before, "nothing sent");
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

    const before = sent("/api/bookings");
    await page.click("#valider");
    const warn = await page.waitForSelector("#avis-envoi [role=alert]");
    const text = await warn.textContent();
    assert.match(text, /Léa/);
    assert.match(text, /ALSH/);
    assert.match(text, /Klub/);
    assert.match(text, /Repas/);
    assert.equal(sent("/api/bookings"), before, "nothing sent");
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

t("absence: 5 Mo dit avant l'envoi; après l'envoi le dialogue se ferme "
  + "et la ligne dit l'état", async () => {
    await page.goto(BASE + "/#/reservations");
    await page.waitForSelector("[data-booking]");
    const first = await page.getAttribute("[data-booking]", "data-booking");
    const row = "[data-booking=\"" + first + "\"]";
    await page.click(row + " button:has-text('Justifier une absence')");
    await page.waitForSelector("dialog[open] #abs-doc");
    assert.match(await page.textContent("dialog[open]"), /5 Mo au plus/);
    const docs = sent("/api/documents");
    await page.setInputFiles("#abs-doc", {
        name: "certificat.pdf", mimeType: "application/pdf",
        buffer: Buffer.alloc(12 * 1024 * 1024, 0x25) });
    await page.click("dialog[open] button[type=submit]");
    const big = await page.waitForSelector("dialog[open] [role=alert]");
    assert.match(await big.textContent(), /12,0 Mo : 5 Mo au plus/);
    assert.equal(sent("/api/documents"), docs, "nothing sent");
    await axe("absence trop gros");

    await page.setInputFiles("#abs-doc", pdf("certificat"));
    await page.waitForSelector("dialog[open] [role=alert]",
                               { state: "detached" });
    await page.click("dialog[open] button[type=submit]");
    await page.waitForSelector("dialog[open]", { state: "detached" });
    const said = await page.textContent("main");
    assert.match(said, /en cours d.examen/);
    assert.doesNotMatch(said, /la séance ne sera pas facturée/);
    await page.waitForSelector(row + " .absence");
    assert.equal(await page.$(row + " button:has-text('Justifier')"), null);
    await axe("absence signalée");
    await shot("05-absence");

    /* a dialog goes with the page it was opened on */
    await page.click("[data-booking] button:has-text('Justifier une "
                     + "absence')");
    await page.waitForSelector("dialog[open]");
    await page.goto(BASE + "/#/documents");
    await page.waitForSelector("#form-document");
    assert.equal(await page.$("dialog[open]"), null);
});

t("documents: refus en mots simples; le parent voit ses fichiers",
  async () => {
    await page.goto(BASE + "/#/documents");
    await page.waitForSelector("#form-document");
    assert.match(await page.textContent("#form-document"), /5 Mo au plus/);
    await page.selectOption("#doc-type", "fiche-sanitaire");
    await page.setInputFiles("#doc-fichier", {
        name: "fiche.pdf", mimeType: "application/pdf",
        buffer: Buffer.from("ceci n'est pas un PDF") });
    await page.click("#form-document button[type=submit]");
    const bad = await page.waitForSelector("#form-document [role=alert]");
    const text = await bad.textContent();
    assert.match(text, /pas un vrai PDF/);
    assert.doesNotMatch(text, /Content-Type|application\//);
    /* the error goes when the family tries again */
    await page.selectOption("#doc-type", "vaccinations");
    await page.waitForSelector("#form-document [role=alert]",
                               { state: "detached" });
    /* the certificate sent above can be opened */
    const link = await page.waitForSelector("#liste-documents "
                                            + "a:has-text('Voir le fichier')");
    const href = await link.getAttribute("href");
    const got = await page.evaluate(async (u) => {
        const r = await fetch(u);
        return { status: r.status, start: (await r.text()).slice(0, 5) };
    }, href);
    assert.deepEqual(got, { status: 200, start: "%PDF-" });
    await axe("mes documents");

    /* and deleted, after a confirmation, while the town has not accepted
     * it */
    const id = href.split("/").pop();
    const row = "#liste-documents [data-document=\"" + id + "\"]";
    await page.click(row + " button:has-text('Supprimer')");
    await page.waitForSelector(row + " button:has-text('Confirmer la "
                               + "suppression')");
    await page.click(row + " button:has-text('Confirmer')");
    await page.waitForSelector("text=Document supprimé");
    await page.waitForFunction(() => document.querySelector(
        "#liste-documents") && !document.querySelector(
        "#liste-documents .chargement"));
    assert.equal(await page.$(row), null);
    const gone = await page.evaluate(async (u) => (await fetch(u)).status,
                                     href);
    assert.equal(gone, 404);
});

t("messagerie: un compteur et la limite dite avant l'envoi", async () => {
    await page.goto(BASE + "/#/messagerie");
    await page.waitForSelector("#msg-corps");
    await page.fill("#msg-sujet", "Une longue question");
    await page.fill("#msg-corps", "a".repeat(6000));
    assert.match(await page.textContent("#msg-corps-compte"),
                 /6\s000 \/ 5\s000 caractères/);
    const before = sent("/api/messages");
    await page.click("button:has-text('Envoyer le message')");
    const bad = await page.waitForSelector("[role=alert]");
    assert.match(await bad.textContent(), /5\s000 au plus/);
    assert.equal(sent("/api/messages"), before, "nothing sent");
    await axe("messagerie trop long");
});

t("inscription: l'âge hors tranche est dit avant l'envoi", async () => {
    await page.goto(BASE + "/#/inscriptions");
    await page.waitForSelector("#form-inscription");
    await page.selectOption("#ins-enfant", "c-hugo");
    await page.selectOption("#ins-activite", "klub");
    await page.waitForSelector("#ins-age [role=status]");
    assert.match(await page.textContent("#ins-age"),
                 /Hugo aura 7 ans.*de 8 à 12 ans/);
    const before = sent("/api/enrolments");
    await page.click("#form-inscription button[type=submit]");
    await page.waitForSelector("#form-inscription [role=alert]");
    assert.equal(sent("/api/enrolments"), before, "nothing sent");
    await axe("inscription âge");
});

t("mot de passe: 10 caractères, pas le même, l'erreur s'en va",
  async () => {
    await page.goto(BASE + "/#/mot-de-passe");
    await page.waitForSelector("#mdp-actuel");
    assert.match(await page.textContent("main"), /10 caractères au moins/);
    await page.fill("#mdp-actuel", PASSWORD);
    await page.fill("#mdp-nouveau", PASSWORD);
    await page.fill("#mdp-confirme", PASSWORD);
    const before = sent("/api/password");
    await page.click("main button[type=submit]");
    const bad = await page.waitForSelector("main [role=alert]");
    assert.match(await bad.textContent(), /différent de l'actuel/);
    assert.equal(sent("/api/password"), before, "nothing sent");
    await page.fill("#mdp-nouveau", PASSWORD + "-2");
    await page.waitForSelector("main [role=alert]", { state: "detached" });
    await axe("mot de passe");

    const p = await (await browser.newContext({ locale: "fr-FR" }))
        .newPage();
    await p.goto(BASE + "/#/mot-de-passe-oublie");
    await p.waitForSelector("#oubli-identifiant");
    await p.fill("#oubli-identifiant", LOGIN);
    await p.click("main button[type=submit]");
    const said = await (await p.waitForSelector("main [role=status]"))
        .textContent();
    assert.match(said, /Sans adresse e-mail/);
    assert.doesNotMatch(said, /vient de partir/);
    await axe("mot de passe oublié", p);
    await p.context().close();
});

t("tableau de bord: une demande s'ouvre sur ses séances", async () => {
    await page.goto(BASE + "/#/tableau-de-bord");
    await page.waitForSelector("[data-demande]");
    const first = "[data-demande=\"D-000001\"]";
    await page.click(first + " details summary");
    const text = await page.textContent(first + " details");
    assert.match(text, /Léa — lundi .* Matin : Réservé \(4,50\s€\)/);
    assert.match(text, /Hugo — mercredi .* Matin : Complet/);
    assert.match(text, /Semaine incomplète/);
    assert.doesNotMatch(await page.textContent(first), /Traitée/);
    await axe("tableau de bord demande ouverte");
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

    /* the sticky booking bar stays small with a selection */
    const tue = seen.next[1];
    await p.goto(BASE + "/#/reserver");
    await p.waitForSelector("#activite");
    await p.selectOption("#activite", "alsh");
    await p.click("[data-mode=semaine]");
    await p.fill("#aller-au", tue);
    await p.click(cellKey("c-lea", "alsh", tue, "APM"));
    await p.waitForSelector(cellKey("c-lea", "alsh", tue, "APM")
                            + "[aria-pressed=true]");
    const barH = await p.$eval(".barre-validation",
                               (e) => e.getBoundingClientRect().height);
    assert.ok(barH <= 100, "booking bar " + barH + " px");
    assert.match(await p.textContent("#cout-periode"), /Coût de la période/);
    await axe("réserver 375", p);
    await shot("04b-mobile-reserver", p);
    await p.click("button:has-text('Annuler les modifications')");

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

t("back office: le guichet prend l'identifiant, dit les refus en "
  + "français; la facturation se confirme; le journal en mots",
  async () => {
    const ctx = await browser.newContext({
        locale: "fr-FR", viewport: { width: 1200, height: 900 } });
    const p = await ctx.newPage();
    p.on("pageerror", (e) => errors.push(e.message));
    const agentPosts = [];
    p.on("request", (r) => {
        if (r.method() === "POST") {
            agentPosts.push(new URL(r.url()).pathname);
        }
    });
    await p.goto(BASE + "/agent/#/connexion");
    await p.waitForSelector("#ag-identifiant");
    await p.fill("#ag-identifiant", STAFF);
    await p.fill("#ag-motdepasse", STAFF_PASSWORD);
    await p.click("form button[type=submit]");
    await p.waitForSelector("h1:has-text('Inscriptions à traiter')");

    /* a family's message: the agent sees the family's login, not its id */
    const sentMsg = await page.evaluate(async () => (await fetch(
        "/api/messages", { method: "POST",
                           headers: { "Content-Type": "application/json" },
                           body: JSON.stringify({ service: "enfance",
                               subject: "Question courte",
                               body: "Bonjour, une question." }) })).status);
    assert.equal(sentMsg, 201);
    await p.goto(BASE + "/agent/#/messagerie");
    await p.waitForSelector("#contenu table");
    const threads = await p.textContent("#contenu table");
    assert.match(threads, /Question courte/);
    assert.match(threads, new RegExp(LOGIN));
    assert.doesNotMatch(threads, /f-p22/);

    /* the family list names families, not their ids */
    await p.goto(BASE + "/agent/#/familles");
    await p.waitForSelector("#familles [data-famille]");
    const fam = await p.textContent("#familles tbody");
    assert.doesNotMatch(fam, /f-p22/);
    assert.match(fam, new RegExp(LOGIN));
    await axe("agent familles", p);

    /* the counter: the login shown on the family's page is enough */
    await p.goto(BASE + "/agent/#/guichet");
    await p.waitForSelector("#gu-famille");
    await p.fill("#gu-famille", LOGIN);
    await p.click("button:has-text('Afficher')");
    await p.waitForSelector("#gu-enfant");
    await p.selectOption("#gu-enfant", "c-lea");
    await p.selectOption("#gu-activite", "alsh");
    await p.fill("#gu-date", seen.week[1]);
    await p.click("button:has-text('Voir les séances')");
    await p.waitForSelector("#gu-seances input[name=seance]");
    await p.check("#gu-seances input[value=\"alsh-"
                  + compact(seen.week[1]) + "-MATIN\"]");
    await p.click("#gu-reserver");
    const res = await (await p.waitForSelector("#gu-resultat li"))
        .textContent();
    /* one day of a whole-week activity */
    assert.match(res, /Refusé : Semaine incomplète/);
    assert.doesNotMatch(res, /week_incomplete|alsh-\d/);
    assert.match(res, /Matin/);
    await axe("agent guichet", p);
    await shot("06-agent-guichet", p);

    /* invoicing the month under way asks first, and says why */
    await p.goto(BASE + "/agent/#/facturation");
    await p.waitForSelector("#fa-mois");
    const now = new Intl.DateTimeFormat("en-CA",
        { timeZone: "Europe/Paris" }).format(new Date()).slice(0, 7);
    await p.fill("#fa-mois", now);
    const before = agentPosts.filter((x) => x === "/api/staff/invoicing")
        .length;
    await p.click("#contenu form button[type=submit]");
    const warn = await (await p.waitForSelector("#fa-resultat [role]"))
        .textContent();
    assert.match(warn, /n'est pas terminé/);
    assert.equal(agentPosts.filter((x) => x === "/api/staff/invoicing")
        .length, before, "nothing sent before the confirmation");
    assert.match(await p.textContent("#contenu form button[type=submit]"),
                 /Confirmer la facturation de/);
    await axe("agent facturation", p);
    /* the month of the family's bookings, confirmed: invoiced */
    const wm = seen.week[0].slice(0, 7);
    await p.fill("#fa-mois", wm);
    await p.click("#contenu form button[type=submit]");
    await p.waitForSelector("#contenu form button[type=submit]"
                            + ":has-text('Confirmer la facturation')");
    await p.click("#contenu form button[type=submit]");
    await p.waitForSelector("#fa-resultat .succes");

    /* the family reads it as the PDF does: its régie's reference, the
     * number on six digits (PRINCIPALE-000001, migration 0041), the
     * period in words */
    await page.goto(BASE + "/#/factures");
    await page.waitForSelector("#liste-factures table");
    const inv = await page.textContent("#liste-factures tbody");
    assert.match(inv, /N° [A-Z0-9]+-\d{6}/);
    const words = new Intl.DateTimeFormat("fr-FR", { timeZone: "UTC",
        month: "long", year: "numeric" }).format(
        new Date(seen.week[0] + "T00:00:00Z"));
    assert.match(inv, new RegExp(words));
    assert.doesNotMatch(inv, /\d{4}-\d{2}/);
    await axe("mes factures", page);

    /* the family's planning over any period; attendance noted */
    await p.goto(BASE + "/agent/#/familles?id=f-p22");
    await p.waitForSelector("#pf-du");
    await p.fill("#pf-du", seen.week[0]);
    await p.fill("#pf-au", seen.week[4]);
    await p.click("#pf-au >> xpath=ancestor::form//button[@type='submit']");
    await p.waitForSelector("#planning-famille [data-booking]");
    assert.equal((await p.$$("#planning-famille [data-booking]")).length, 5);
    await p.click("#planning-famille [data-booking] button"
                  + ":has-text('Présent')");
    await p.waitForSelector("#planning-famille .etiquette");
    await axe("agent famille période", p);

    /* the journal of a family, by its login: its own actions and the
     * staff's about it; details in words */
    await p.click("a:has-text('Journal de cette famille')");
    await p.waitForSelector("#journal table");
    const journal = await p.textContent("#journal table");
    assert.match(journal, /attendance\.record/);
    assert.match(journal, /family:f-p22/);
    assert.doesNotMatch(journal, /\{"/);
    await p.goto(BASE + "/agent/#/journal?famille=" + LOGIN);
    await p.waitForSelector("#journal table");
    assert.match(await p.textContent("#journal table"),
                 /attendance\.record/);
    await axe("agent journal", p);
    await ctx.close();
});

t("aucune erreur JavaScript", async () => {
    assert.deepEqual(errors, []);
});
