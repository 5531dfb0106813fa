/*
 * annee-famille.test.mjs -- a family's whole year through the family space
 * (web/) and the town's back office (web/agent/), in a real browser, on
 * a stack of its own (issue 9, "Done when"):
 *
 *   enrolment refused while the fiche sanitaire is missing; the fiche
 *   uploaded from the list of documents to provide (family); enrolment
 *   requested (family) and validated (staff); booking refused while the
 *   fiche is not accepted; fiche accepted (staff); booking; late
 *   cancellation (billed); absence justified with
 *   a medical certificate upload, accepted by staff (issue 25); on-site place booked at the counter by
 *   staff while the online quota is full; attendance recorded; monthly
 *   invoicing run by staff; online payment through the payment simulator
 *   (a duplicated notification pays once); direct debit subscribed and the
 *   month's debits exported by `guichetctl sepa-export`.
 *
 * The stack is tests/integration/stack.py serve with year_town.py's town
 * (it needs `make build`); guichetctl adds the staff account.  Runs under
 * `node --test` with the rest of the web suite; skipped when build/ has no
 * guichet-office.  Screenshots in tests/out/web/annee-*.png.
 */

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { ARGS, CHROMIUM, PY, ROOT, axe, everyWorker, shot as helperShot,
         startStack, stopStack } from "./helpers.mjs";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const CTL = path.join(ROOT, "build", "guichetctl");
const LOGIN = "durand";
const PASSWORD = "annee-" + Math.random().toString(36).slice(2, 10);
const NEW_PASSWORD = "nouveau-" + Math.random().toString(36).slice(2, 10);
const RESET_PASSWORD = "oubli-" + Math.random().toString(36).slice(2, 10);
const STAFF = "c.bernard";
const STAFF_PASSWORD = "agent-" + Math.random().toString(36).slice(2, 10);
const CHILD = "c-chloe";
const ACT = "periscolaire";

const READY = fs.existsSync(path.join(ROOT, "build", "guichet-office"))
              && fs.existsSync(CTL);

let stack = null;
let BASE;
let CONF;
let tmp;
let browser;
let fam;          /* the family's page */
let ag;           /* the staff member's page */
const errors = [];
const seen = {};

function ctl(args, input) {
    return execFileSync(CTL, ["-c", CONF, ...args],
                        { cwd: ROOT, input: input || "",
                          stdio: ["pipe", "pipe", "pipe"] }).toString();
}

/* Screenshots of this test are tests/out/web/annee-*.png. */
function shot(name, p) {
    return helperShot("annee-" + name, p);
}


/* GET from inside a page, with its session (family cookie). */
function apiGet(p, url) {
    return p.evaluate(async (u) => {
        const r = await fetch(u, { credentials: "same-origin" });
        return { status: r.status,
                 data: (r.headers.get("Content-Type") || "").includes("json")
                     ? await r.json() : null };
    }, url);
}

/* Opens url in p, reloading when p is already there (a hash alone does
 * not navigate). */
async function open(p, url) {
    if (p.url() === url) {
        await p.reload();
    } else {
        await p.goto(url);
    }
}

/* Waits (no time limit of its own: the test's) until fn(page) is true. */
async function until(what, fn) {
    for (;;) {
        if (await fn()) {
            return;
        }
        await new Promise((ok) => setTimeout(ok, 300));
        void what;
    }
}

/* One SQL query on the stack's PostgreSQL (the e-mails of the outbox);
 * its rows as arrays of text. */
function sql(query) {
    const conf = fs.readFileSync(CONF, "utf8");
    const info = /^postgres\s*=\s*"([^"]*)"/m.exec(conf)[1];
    return execFileSync("psql", ["-X", "-A", "-t", "-F", "\t", "-d", info,
                                 "-c", query]).toString()
        .split("\n").filter((l) => l !== "").map((l) => l.split("\t"));
}

/* GET with the staff token, from inside the back office page. */
function staffGet(url) {
    return ag.evaluate(async (u) => {
        const s = JSON.parse(sessionStorage.getItem("guichet.agent"));
        const r = await fetch(u, { credentials: "omit", headers: {
            Authorization: "Bearer " + s.token } });
        return { status: r.status, data: await r.json() };
    }, url);
}

const pdf = (text) => ({
    name: text + ".pdf", mimeType: "application/pdf",
    buffer: Buffer.from("%PDF-1.4\n% " + text + "\n1 0 obj << >> endobj\n"
                        + "trailer << >>\n%%EOF\n") });

function month(d) {
    return d.slice(0, 7);
}

function nextMonth(m) {
    const [y, mo] = m.split("-").map(Number);
    return mo === 12 ? (y + 1) + "-01"
                     : y + "-" + String(mo + 1).padStart(2, "0");
}

/* Picks cells of Chloé on the planning and validates; the result items. */
async function book(sessions) {
    const p = fam;
    await p.goto(BASE + "/#/reserver");
    await p.waitForSelector("#activite");
    await p.reload();
    await p.waitForSelector("#activite");
    await p.selectOption("#activite", ACT);
    if (await p.getAttribute("[data-mode=mois]", "aria-pressed") !== "true") {
        await p.click("[data-mode=mois]");
    }
    for (const s of sessions) {
        if (await p.inputValue("#aller-au") !== s.date) {
            await p.fill("#aller-au", s.date);
        }
        const cell = "[data-key=\"" + CHILD + "|" + s.id + "\"]";
        await p.waitForSelector(cell);
        await p.click(cell);
        await p.waitForSelector(cell + "[aria-pressed=true]");
    }
    await p.click("#valider");
    await p.waitForSelector("#demande-numero");
    return p.$$eval("#resultat li", (l) => l.map((x) => ({
        status: x.dataset.status, reason: x.dataset.reason,
        text: x.textContent })));
}

before(async () => {
    if (!READY) {
        return;
    }
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "guichet-annee-"));
    const town = path.join(tmp, "town.json");
    execFileSync(PY, [path.join(HERE, "year_town.py"), "--login", LOGIN,
                      "--password", PASSWORD, town]);
    stack = await startStack(town);
    BASE = stack.base;
    CONF = stack.conf;
    ctl(["staff-add", STAFF, "admin", "Claire Bernard"],
        STAFF_PASSWORD + "\n");
    ctl(["set-email", "f-annee", "famille.durand@example.org"]);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
    const opts = { locale: "fr-FR", viewport: { width: 1200, height: 900 } };
    fam = await (await browser.newContext(opts)).newPage();
    ag = await (await browser.newContext(opts)).newPage();
    for (const p of [fam, ag]) {
        p.on("pageerror", (e) => errors.push(e.message));
    }
});

after(async () => {
    await browser?.close();
    await stopStack(stack);
    if (tmp) {
        fs.rmSync(tmp, { recursive: true, force: true });
    }
});

const t1 = READY ? test : test.skip;

t1("famille: demande d'inscription", async () => {
    await open(fam, BASE + "/#/connexion");
    await fam.waitForSelector("#lien-oubli");
    await fam.fill("#identifiant", LOGIN);
    await fam.fill("#motdepasse", PASSWORD);
    await fam.click("form button[type=submit]");
    await fam.waitForSelector("h1:has-text('Tableau de bord')");

    const today = new Intl.DateTimeFormat("en-CA",
        { timeZone: "Europe/Paris" }).format(new Date());
    const plus90 = new Date(Date.parse(today + "T00:00:00Z") + 90 * 86400e3)
        .toISOString().slice(0, 10);
    const ss = (await apiGet(fam, "/api/activities/" + ACT + "/sessions?from="
                             + today + "&to=" + plus90)).data;
    const list = Array.isArray(ss) ? ss : ss.sessions;
    const first = list.find((s) => s.unit === "MATIN").date;
    seen.m1 = month(first);
    seen.m2 = nextMonth(seen.m1);
    const morn = list.filter((s) => s.unit === "MATIN");
    seen.a = morn[0];                       /* late cancellation */
    seen.b = morn[1];                       /* justified absence */
    seen.c = morn[2];                       /* attended, billed */
    seen.d = morn.find((s) => month(s.date) === seen.m2);  /* debit */
    seen.full = list.find((s) => s.id === "peri-guichet");
    assert.ok(seen.d && seen.full, "the town has the sessions");
    assert.equal(seen.full.status, "full", "no online place on it");

    const ask = async () => {
        await open(fam, BASE + "/#/inscriptions");
        await fam.waitForSelector("#form-inscription");
        await fam.waitForSelector("#ins-activite option[value=" + ACT + "]",
                                  { state: "attached" });
        await fam.selectOption("#ins-enfant", CHILD);
        await fam.selectOption("#ins-activite", ACT);
        await fam.fill("#ins-du", first.slice(0, 8) + "01");
        await fam.fill("#ins-au", list[list.length - 1].date);
        await fam.click("#form-inscription button[type=submit]");
    };

    /* the fiche sanitaire first (issue 25): the request is refused
     * without it, and the list of documents to provide says so */
    await ask();
    await fam.waitForSelector("#form-inscription [role=alert]");
    assert.match(await fam.textContent("#form-inscription"),
                 /Pièces manquantes au dossier : fiche-sanitaire/);
    await axe("mes inscriptions", fam);
    await fam.click("#ins-pieces");
    const piece = "[data-piece=\"" + CHILD + "/" + ACT
                  + "/fiche-sanitaire\"]";
    await fam.waitForSelector(piece + "[data-statut=manquante]");
    await fam.click(piece + " button");
    assert.equal(await fam.inputValue("#doc-type"), "fiche-sanitaire");
    assert.equal(await fam.inputValue("#doc-enfant"), CHILD);
    /* a file named .pdf that is not one: refused by its content */
    await fam.setInputFiles("#doc-fichier", {
        name: "fiche.pdf", mimeType: "application/pdf",
        buffer: Buffer.from("ceci n'est pas un PDF") });
    await fam.click("#form-document button[type=submit]");
    await fam.waitForSelector("#form-document [role=alert]");
    await fam.setInputFiles("#doc-fichier", pdf("fiche-sanitaire"));
    await axe("mes documents", fam);
    await fam.click("#form-document button[type=submit]");
    await fam.waitForSelector("text=Document envoyé");
    await fam.waitForSelector("#liste-documents table");
    await fam.waitForSelector(piece + "[data-statut=deposee]");
    assert.match(await fam.textContent("#liste-documents"),
                 /Fiche sanitaire.*Chloé.*Déposée/s);
    await shot("04-document-depose", fam);

    /* deposited, waiting for the town's check: enough to ask */
    await ask();
    await fam.waitForSelector("text=Demande d'inscription déposée");
    await fam.waitForSelector("#liste-inscriptions table");
    assert.match(await fam.textContent("#liste-inscriptions"),
                 /Chloé.*Accueil périscolaire.*Demandée/s);
    await shot("01-inscription-demandee", fam);
});

t1("agent: connexion, inscription validée", async () => {
    await open(ag, BASE + "/agent/#/connexion");
    await ag.waitForSelector("#ag-identifiant");
    assert.equal(await ag.getAttribute("html", "lang"), "fr");
    await ag.fill("#ag-identifiant", STAFF);
    await ag.fill("#ag-motdepasse", "mauvais-mot-de-passe");
    await ag.click("form button[type=submit]");
    await ag.waitForSelector("text=Identifiant ou mot de passe incorrect");
    await axe("agent connexion", ag);
    await ag.fill("#ag-identifiant", STAFF);
    await ag.fill("#ag-motdepasse", STAFF_PASSWORD);
    await ag.click("form button[type=submit]");
    await ag.waitForSelector("h1:has-text('Inscriptions à traiter')");
    await ag.waitForSelector("#inscriptions table");
    const row = "#inscriptions tr:has-text('Chloé')";
    assert.match(await ag.textContent(row), /Accueil périscolaire/);
    await axe("inscriptions à traiter", ag);
    await shot("02-agent-inscriptions", ag);
    await ag.click(row + " button:has-text('Valider')");
    await ag.waitForSelector("text=Inscription validée");
    /* the list is loaded again after the decision ("Chargement…" first) */
    await ag.waitForSelector(
        "#inscriptions >> text=Aucune demande d'inscription en attente");

    await open(fam, BASE + "/#/inscriptions");
    await fam.waitForSelector("#liste-inscriptions table");
    assert.match(await fam.textContent("#liste-inscriptions"), /Validée/);
    /* the booking path learns it from the publisher */
    await until("enrolment published", async () => {
        const me = (await apiGet(fam, "/api/me")).data;
        return (me.enrolments || []).some((e) => e.child_id === CHILD
                                          && e.status === "validee");
    });
    /* one answer had it: the next test's booking, refused
     * documents_missing, may reach the other nginx worker (not_enrolled
     * while it holds the older catalogue) */
    await everyWorker(BASE);
});

t1("famille: réservation refusée tant que la fiche n'est pas acceptée",
   async () => {
    const items = await book([seen.c]);
    assert.equal(items.length, 1);
    assert.equal(items[0].reason, "documents_missing", items[0].text);
    assert.match(items[0].text, /Pièces manquantes au dossier/);
    await shot("03-pieces-manquantes", fam);
});

t1("agent: fiche sanitaire acceptée", async () => {
    await open(ag, BASE + "/agent/#/documents");
    const card = "#documents section:has-text('fiche-sanitaire')";
    await ag.waitForSelector(card);
    await axe("documents à valider", ag);
    /* the file itself, with the staff token */
    const got = await ag.evaluate(async () => {
        const s = JSON.parse(sessionStorage.getItem("guichet.agent"));
        const id = document.querySelector("#documents section")
            .dataset.document;
        const r = await fetch("/api/staff/documents/" + id, {
            credentials: "omit",
            headers: { Authorization: "Bearer " + s.token } });
        return { status: r.status, type: r.headers.get("Content-Type"),
                 head: (await r.text()).slice(0, 5) };
    });
    assert.deepEqual(got, { status: 200, type: "application/pdf",
                            head: "%PDF-" });
    await ag.click(card + " button:has-text('Accepter')");
    await ag.waitForSelector("text=Document accepté");
    await shot("05-agent-document-accepte", ag);

    await open(fam, BASE + "/#/documents");
    await fam.waitForSelector("#liste-documents table");
    assert.match(await fam.textContent("#liste-documents"),
                 /Acceptée.*jusqu'au/s);
});

t1("famille: réservation, annulation tardive, absence justifiée",
   async () => {
    /* the accepted document reaches the booking path: retry until the
     * refusal goes away (each try is a demande of its own) */
    let items;
    for (;;) {
        items = await book([seen.a, seen.b, seen.c, seen.d]);
        if (!items.some((i) => i.reason === "documents_missing")) {
            break;
        }
        await new Promise((ok) => setTimeout(ok, 500));
    }
    assert.deepEqual(items.map((i) => i.status),
                     ["confirmed", "confirmed", "confirmed", "confirmed"],
                     items.map((i) => i.text).join("; "));
    assert.match(items[0].text, /Réservé \(4,50\s€\)/);
    await shot("06-reservation", fam);

    /* late cancellation: the first morning is within 5 working days */
    await open(fam, BASE + "/#/reservations?du=" + seen.a.date + "&au="
                   + seen.b.date);
    await fam.waitForSelector("#liste-reservations table");
    const bookings = (await apiGet(fam, "/api/bookings?from=" + seen.a.date
                                   + "&to=" + seen.d.date)).data.bookings;
    const bid = (s) => bookings.find((b) => b.session_id === s.id)
        .booking_id;
    seen.bid = { a: bid(seen.a), b: bid(seen.b), c: bid(seen.c),
                 d: bid(seen.d) };
    const rowA = "tr[data-booking=\"" + seen.bid.a + "\"]";
    await fam.click(rowA + " button:has-text('Annuler')");
    await fam.waitForSelector("dialog[open]");
    await fam.click("dialog[open] button:has-text('Confirmer')");
    await fam.waitForSelector("text=Annulation hors délai : la séance "
                              + "reste facturée");

    /* justified absence with the medical certificate */
    const rowB = "tr[data-booking=\"" + seen.bid.b + "\"]";
    await fam.click(rowB + " button:has-text('Justifier une absence')");
    await fam.waitForSelector("dialog[open] #abs-doc");
    await fam.setInputFiles("#abs-doc", pdf("certificat-medical"));
    await axe("justifier une absence", fam);
    await fam.click("dialog[open] button[type=submit]");
    /* issue 22: the dialog closes, the page says what happens next */
    await fam.waitForSelector("main >> text=Absence signalée");
    assert.equal(await fam.$("dialog[open]"), null);
    await fam.waitForSelector(rowB + " .absence");
    await shot("07-absence-justifiee", fam);
    const docs = (await apiGet(fam, "/api/documents")).data.documents;
    assert.ok(docs.some((d) => d.type === "certificat_medical"
                        && d.child_id === CHILD),
              "the certificate is in the family's documents");
});

t1("agent: place au guichet alors que le quota en ligne est complet",
   async () => {
    /* online: complet on the family's planning */
    await open(fam, BASE + "/#/reserver");
    await fam.waitForSelector("#activite");
    await fam.selectOption("#activite", ACT);
    await fam.fill("#aller-au", seen.full.date);
    await fam.waitForSelector("[data-key=\"" + CHILD + "|peri-guichet\"]"
                              + "[data-state=complet]");
    await open(ag, BASE + "/agent/#/guichet?famille=f-annee&date="
                  + seen.full.date);
    await ag.waitForSelector("#gu-seances input[value=\"peri-guichet\"]");
    assert.match(await ag.textContent("#gu-seances"), /complet/);
    await ag.check("#gu-seances input[value=\"peri-guichet\"]");
    await axe("guichet", ag);
    await ag.click("#gu-reserver");
    await ag.waitForSelector("#gu-resultat li");
    assert.match(await ag.textContent("#gu-resultat"),
                 /Réservé au guichet \(4,50\s€\)/);
    await shot("08-guichet", ag);
});

t1("agent: famille, planning et présence", async () => {
    /* issue 25: the town examines the certificate before the absence is
     * un-billed; the worker records the justification first */
    const abs = "section[data-absence=\"" + seen.bid.b + "\"]";
    await until("justification to examine", async () => {
        await open(ag, BASE + "/agent/#/absences");
        await ag.waitForSelector("#absences section, #aucune-absence");
        return (await ag.$(abs)) !== null;
    });
    assert.match(await ag.textContent(abs), /Ouvrir le justificatif/);
    await axe("absences à examiner", ag);
    await ag.click(abs + " button:has-text('Accepter')");
    await ag.waitForSelector("text=Justificatif accepté");
    await open(ag, BASE + "/agent/#/familles?q=durand");
    await ag.waitForSelector("#familles tr[data-famille=\"f-annee\"]");
    await axe("familles", ag);
    /* issue 22: the link names the family (its login), not its id */
    await ag.click("#familles tr[data-famille=\"f-annee\"] a:has-text('"
                   + LOGIN + "')");
    await ag.waitForSelector("#planning-famille");
    const row = "#planning-famille tr[data-booking=\"" + seen.bid.c + "\"]";
    /* the worker persists bookings: wait for it */
    await until("bookings persisted", async () => {
        await ag.reload();
        await ag.waitForSelector("h1:has-text('Famille')");
        await ag.waitForSelector("#planning-famille, main p:has-text("
                                 + "'Aucune réservation')");
        return (await ag.$(row)) !== null;
    });
    assert.match(await ag.textContent("#planning-famille"), /\(guichet\)/);
    /* the cancellation and the justification are persisted too (the
     * invoicing reads them) */
    await until("cancellation and justification persisted", async () => {
        const f = (await staffGet("/api/staff/families/f-annee")).data;
        const by = (id) => f.bookings.find((x) => x.id === id) || {};
        return by(seen.bid.a).status === "cancelled"
               && by(seen.bid.b).justified === true;
    });
    await axe("famille", ag);
    await ag.click(row + " button:has-text('Présent')");
    await ag.waitForSelector(row + " .etiquette:has-text('Présent')");
    await shot("09-agent-famille", ag);
});

t1("agent: un document refusé avec un motif, lu par la famille",
   async () => {
    await open(ag, BASE + "/agent/#/documents");
    const card = "#documents section:has-text('Certificat médical')";
    await ag.waitForSelector(card);
    await ag.click(card + " button:has-text('Refuser')");
    await ag.waitForSelector("dialog[open] textarea");
    await ag.click("dialog[open] button[type=submit]");
    await ag.waitForSelector("dialog[open] >> text=Indiquez un motif");
    await axe("refus d'un document", ag);
    await ag.fill("dialog[open] textarea", "Certificat illisible, "
                                           + "merci de le renvoyer.");
    await ag.click("dialog[open] button[type=submit]");
    await ag.waitForSelector("text=Document refusé");
    await open(fam, BASE + "/#/documents");
    await fam.waitForSelector("#liste-documents table");
    assert.match(await fam.textContent("#liste-documents"),
                 /Certificat médical.*Refusée.*Certificat illisible/s);
});

t1("famille et agent: une question par la messagerie, sa réponse",
   async () => {
    await open(fam, BASE + "/#/messagerie");
    await fam.waitForSelector("#msg-sujet");
    await fam.selectOption("#msg-service", "enfance");
    await fam.fill("#msg-sujet", "Sortie au lac");
    await fam.fill("#msg-corps", "Faut-il prévoir un pique-nique ?");
    await fam.click("form:has(#msg-sujet) button[type=submit]");
    await fam.waitForSelector("text=Message envoyé");
    await fam.waitForSelector("#liste-fils li:has-text('Sortie au lac')");
    await axe("messagerie (famille)", fam);

    await open(ag, BASE + "/agent/#/messagerie");
    const row = "#messagerie tr:has-text('Sortie au lac')";
    await ag.waitForSelector(row);
    assert.match(await ag.textContent(row), /durand.*Accueil de loisirs.*1$/s);
    await ag.click(row + " a");
    await ag.waitForSelector("#ag-reponse");
    assert.match(await ag.textContent("#messagerie"), /pique-nique/);
    await ag.fill("#ag-reponse", "Oui, un pique-nique et une gourde.");
    await ag.click("#messagerie form button[type=submit]");
    await ag.waitForSelector("text=Réponse envoyée");
    await axe("messagerie (agent)", ag);

    await open(fam, BASE + "/#/messagerie");
    await fam.waitForSelector("#non-lus:not([hidden])");
    assert.equal((await fam.textContent("#non-lus")).trim(), "1");
    await fam.click("#liste-fils li:has-text('Sortie au lac') a");
    await fam.waitForSelector("#fil-messages li.mairie");
    assert.match(await fam.textContent("#fil-messages"),
                 /Claire Bernard.*un pique-nique et une gourde/s);
    await until("the badge goes", async () =>
        await fam.$("#non-lus:not([hidden])") === null);
});

t1("agent: le journal garde chaque action", async () => {
    await open(ag, BASE + "/agent/#/journal");
    await ag.waitForSelector("#journal table");
    const text = await ag.textContent("#journal");
    for (const who of [STAFF, "family:f-annee"]) {
        assert.ok(text.includes(who), who + " in the journal");
    }
    for (const action of ["enrolment.request", "enrolment.decision",
                          "message.reply",
                          "document.upload", "document.decision",
                          "attendance.record", "staff.login_failed"]) {
        assert.ok(text.includes(action), action + " in the journal");
    }
    await axe("journal", ag);
    await shot("10-agent-journal", ag);
});

/* What the month's invoice holds: 4,50 € per billable booking of the
 * month (the late cancellation, the attended morning, the counter's
 * afternoon; not the justified absence). */
function expected(m) {
    return [seen.a, seen.c, seen.full, seen.d]
        .filter((s) => month(s.date) === m).length * 450;
}

async function paid(m) {
    const l = (await apiGet(fam, "/api/invoices")).data;
    return (Array.isArray(l) ? l : l.invoices || [])
        .some((i) => i.month === m && i.paid);
}

async function invoiceOf(m) {
    let inv;
    await until("invoice of " + m + " published", async () => {
        const l = (await apiGet(fam, "/api/invoices")).data;
        inv = (Array.isArray(l) ? l : l.invoices || [])
            .find((i) => i.month === m);
        return inv !== undefined;
    });
    return inv;
}

/* Invoicing is asked, then confirmed (issue 22). */
async function confirmInvoicing() {
    await ag.click("form button[type=submit]");
    await ag.waitForSelector("form button[type=submit]"
                             + ":has-text('Confirmer la facturation')");
    await ag.click("form button[type=submit]");
}

t1("agent: facturation du mois", async () => {
    await open(ag, BASE + "/agent/#/facturation");
    await ag.waitForSelector("#fa-mois");
    await ag.fill("#fa-mois", seen.m1);
    await axe("facturation", ag);
    await confirmInvoicing();
    await ag.waitForSelector("#fa-resultat .succes");
    assert.match(await ag.textContent("#fa-resultat"),
                 new RegExp("Facturation de " + seen.m1
                            + " terminée : 1 facture"));
    const inv = await invoiceOf(seen.m1);
    assert.equal(inv.total_cents, expected(seen.m1));
    assert.equal(inv.paid, false);
    seen.inv1 = inv;
    await shot("11-agent-facturation", ag);
});

t1("famille: paiement en ligne abandonné, puis payé avec une "
   + "notification en double, payé une fois",
   async () => {
    /* a first try abandoned on the provider's page: nothing paid */
    await open(fam, BASE + "/#/factures");
    const box = "#fac-" + seen.inv1.id;
    await fam.waitForSelector(box);
    await fam.check(box);
    await fam.click("#liste-factures button[type=submit]");
    await fam.waitForURL(/\/paiement\/[0-9a-f]{32}$/);
    await fam.click("button[value=abandonner]");
    await fam.waitForSelector("#retour-paiement [data-statut]");
    assert.equal(await fam.getAttribute("#retour-paiement [data-statut]",
                                        "data-statut"), "abandoned");
    assert.match(await fam.textContent("#retour-paiement"),
                 /Paiement abandonné : vos factures restent à payer/);

    /* then paid */
    await fam.waitForSelector(box);
    await fam.check(box);
    assert.match(await fam.textContent("#somme-cochee"),
                 new RegExp((expected(seen.m1) / 100).toFixed(2)
                            .replace(".", ",")));
    await axe("mes factures", fam);
    await fam.click("#liste-factures button[type=submit]");
    /* the provider's page (the simulator) */
    await fam.waitForURL(/\/paiement\/[0-9a-f]{32}$/);
    seen.op = fam.url().split("/").pop();
    await shot("12-simulateur", fam);
    await fam.click("button[value=payer_double]");
    await fam.waitForURL(/#factures\?paiement=/);
    await fam.waitForSelector("#retour-paiement [data-statut]");
    assert.equal(await fam.getAttribute("#retour-paiement [data-statut]",
                                        "data-statut"), "paid");
    assert.match(await fam.textContent("#retour-paiement"),
                 /Paiement accepté/);
    /* issue 22: a reference people can read out, not 32 hex digits */
    assert.match(await fam.textContent("#reference-paiement"),
                 /^[0-9A-Z]{4} [0-9A-Z]{4}$/);
    await axe("retour de paiement", fam);
    await shot("13-paiement-accepte", fam);

    /* and once more, as a late provider would */
    const again = await fetch(BASE + "/api/payments/notify", {
        method: "POST", body: "idop=" + seen.op,
        headers: { "Content-Type": "application/x-www-form-urlencoded" } });
    assert.ok(again.status < 300, "notify answered " + again.status);

    await until("invoice paid", () => paid(seen.m1));
    await open(fam, BASE + "/#/factures");
    await fam.waitForSelector("#liste-factures table");
    assert.equal(await fam.$("#fac-" + seen.inv1.id), null,
                 "a paid invoice cannot be ticked");

    await open(ag, BASE + "/agent/#/paiements");
    await ag.waitForSelector("#paiements table");
    const row = "#paiements tr[data-operation=\"" + seen.op + "\"]";
    assert.match(await ag.textContent(row), /Payée/);
    const pay = (await staffGet("/api/staff/payments")).data;
    assert.deepEqual(pay.operations.map((o) => o.status).sort(),
                     ["abandoned", "paid"]);
    assert.equal(pay.paid_cents, expected(seen.m1), "paid once");
    assert.deepEqual(pay.overpayments, []);
    await axe("paiements", ag);
    await shot("14-agent-paiements", ag);
});

t1("famille: prélèvement automatique; export SEPA du mois suivant",
   async () => {
    await open(fam, BASE + "/#/prelevement");
    await fam.waitForSelector("#pr-iban");
    await fam.fill("#pr-titulaire", "Camille Durand");
    await fam.fill("#pr-iban", "FR76 3000 6000 0112 3456 7890 188");
    await fam.fill("#pr-bic", "AGRIFRPP");
    await fam.check("#pr-accord");
    await fam.click("#mandat button[type=submit]");
    await fam.waitForSelector("text=Cet IBAN n'est pas valide");
    await fam.fill("#pr-iban", "FR76 3000 6000 0112 3456 7890 189");
    await axe("prélèvement", fam);
    await fam.click("#mandat button[type=submit]");
    await fam.waitForSelector("text=Prélèvement automatique enregistré");
    await fam.waitForSelector("#mandat-rum");
    seen.rum = (await fam.textContent("#mandat-rum")).trim();
    assert.match(await fam.textContent("#mandat-iban"), /FR76/);
    await shot("15-prelevement", fam);

    /* no online payment any more */
    await until("direct debit published", async () =>
        (await apiGet(fam, "/api/me")).data.direct_debit === true);
    /* each nginx worker takes the new catalogue on its own: the page is
     * read again until the worker that answers it has it too */
    await until("the invoices say direct debit", async () => {
        await fam.reload();
        await open(fam, BASE + "/#/factures");
        await fam.waitForSelector("#liste-factures table");
        return fam.locator("text=Vous êtes en prélèvement automatique")
            .isVisible();
    });

    await open(ag, BASE + "/agent/#/facturation");
    await ag.waitForSelector("#fa-mois");
    await ag.fill("#fa-mois", seen.m2);
    await confirmInvoicing();
    await ag.waitForSelector("#fa-resultat .succes");
    const inv = await invoiceOf(seen.m2);
    assert.equal(inv.total_cents, expected(seen.m2));

    const file = path.join(tmp, "sepa-" + seen.m2 + ".xml");
    ctl(["sepa-export", "--month", seen.m2, "--out", file]);
    const xml = fs.readFileSync(file, "utf8");
    assert.match(xml, /urn:iso:std:iso:20022:tech:xsd:pain\.008\.001\.02/);
    assert.ok(xml.includes(seen.rum), "the mandate reference");
    assert.ok(xml.includes("FR7630006000011234567890189"), "the IBAN");
    const amount = (expected(seen.m2) / 100).toFixed(2);
    assert.match(xml, new RegExp("<InstdAmt Ccy=\"EUR\">" + amount
                                 + "</InstdAmt>"));
    assert.match(xml, new RegExp("<NbOfTxs>1</NbOfTxs>"));

    await open(ag, BASE + "/agent/#/paiements");
    await ag.waitForSelector("#exports-sepa table");
    assert.match(await ag.textContent("#exports-sepa"),
                 new RegExp(seen.m2 + ".*1"));
    await shot("16-agent-export-sepa", ag);
    /* exported: paid by direct debit */
    await until("invoice debited", () => paid(seen.m2));
    assert.deepEqual(errors, [], "no JavaScript error");
});

t1("agent: déconnexion, le jeton ne sert plus", async () => {
    const token = await ag.evaluate(() => JSON.parse(
        sessionStorage.getItem("guichet.agent")).token);
    await open(ag, BASE + "/agent/#/paiements");
    await ag.waitForSelector("#paiements");
    await ag.click("#deconnexion");
    await ag.waitForSelector("#ag-identifiant");
    assert.equal(await ag.evaluate(() =>
        sessionStorage.getItem("guichet.agent")), null);
    const r = await fetch(BASE + "/api/staff/me",
                          { headers: { Authorization: "Bearer " + token } });
    assert.equal(r.status, 401);
});

t1("famille: un e-mail à chaque étape", async () => {
    const kinds = sql("select kind from outbox where family_id = 'f-annee'"
                      + " order by id").map((r) => r[0]);
    for (const k of ["enrolment_deposee", "enrolment_validee"]) {
        assert.ok(kinds.includes(k), k + " in " + kinds.join(", "));
    }
    assert.ok(kinds.some((k) => /^document/.test(k)),
              "a document e-mail in " + kinds.join(", "));
    assert.ok(kinds.some((k) => /^payment/.test(k)),
              "a payment e-mail in " + kinds.join(", "));
});

t1("famille: historique des connexions et des paiements", async () => {
    const today = new Intl.DateTimeFormat("en-CA",
        { timeZone: "Europe/Paris" }).format(new Date());
    await open(fam, BASE + "/#/historique?par=mois&du=" + today);
    await fam.waitForSelector("#historique h2");
    assert.match(await fam.textContent("#table-connexions"), /127\.0\.0\.1/);
    const pays = await fam.textContent("#table-paiements");
    assert.match(pays, /En ligne/);
    assert.match(pays, new RegExp((expected(seen.m1) / 100).toFixed(2)
                                  .replace(".", ",")));
    assert.match(pays, /Payée/);
    await axe("historique", fam);
    await shot("17-historique", fam);
    await fam.click("#contenu .bascule button:has-text('Semaine')");
    await fam.waitForSelector("#periode-historique:has-text('Semaine du')");
    await fam.waitForSelector("#table-connexions");
    /* a week of last year: nothing */
    const old = (Number(today.slice(0, 4)) - 1) + today.slice(4);
    await open(fam, BASE + "/#/historique?par=semaine&du=" + old);
    await fam.waitForSelector("text=Aucune connexion sur la période");
});

t1("famille: mot de passe changé, l'autre appareil déconnecté",
   async () => {
    const other = await (await browser.newContext({ locale: "fr-FR" }))
        .newPage();
    other.on("pageerror", (e) => errors.push(e.message));
    await other.goto(BASE + "/#/connexion");
    await other.fill("#identifiant", LOGIN);
    await other.fill("#motdepasse", PASSWORD);
    await other.click("form button[type=submit]");
    await other.waitForSelector("h1:has-text('Tableau de bord')");

    await open(fam, BASE + "/#/mot-de-passe");
    await fam.waitForSelector("#mdp-actuel");
    await fam.fill("#mdp-actuel", "pas-le-bon-mot");
    await fam.fill("#mdp-nouveau", NEW_PASSWORD);
    await fam.fill("#mdp-confirme", NEW_PASSWORD);
    await fam.click("#contenu form button[type=submit]");
    await fam.waitForSelector("#contenu [role=alert]");
    await fam.fill("#mdp-actuel", PASSWORD);
    await fam.fill("#mdp-nouveau", NEW_PASSWORD);
    await fam.fill("#mdp-confirme", NEW_PASSWORD);
    await axe("mot de passe", fam);
    await fam.click("#contenu form button[type=submit]");
    await fam.waitForSelector("text=Mot de passe changé");
    /* this session goes on, the other one ends */
    assert.equal((await apiGet(fam, "/api/me")).status, 200);
    await until("the other session ended", async () =>
        (await apiGet(other, "/api/me")).status === 401);
    assert.equal((await apiGet(fam, "/api/me")).status, 200);
    await other.context().close();
});

t1("famille: mot de passe oublié, lien à usage unique", async () => {
    const p = await (await browser.newContext({ locale: "fr-FR" }))
        .newPage();
    p.on("pageerror", (e) => errors.push(e.message));
    await p.goto(BASE + "/#/connexion");
    await p.click("#lien-oubli");
    await p.waitForSelector("#oubli-identifiant");
    await p.fill("#oubli-identifiant", LOGIN);
    await axe("mot de passe oublié", p);
    await p.click("#contenu form button[type=submit]");
    await p.waitForSelector("text=le lien y est envoyé");
    const link = sql("select substring(body from"
                     + " '(http\\S+jeton=[A-Za-z0-9_-]+)') from outbox"
                     + " where family_id = 'f-annee'"
                     + " and kind = 'password_reset'"
                     + " order by id desc limit 1")[0][0];
    assert.ok(link.startsWith(BASE + "/#"), link);
    /* the brief's form of the link: no "/" after the "#" */
    await p.goto(link.replace("#/", "#"));
    await p.waitForSelector("#reinit-nouveau");
    await p.fill("#reinit-nouveau", RESET_PASSWORD);
    await p.fill("#reinit-confirme", RESET_PASSWORD);
    await axe("nouveau mot de passe", p);
    await p.click("#contenu form button[type=submit]");
    await p.waitForSelector("text=Mot de passe enregistré");
    await p.fill("#identifiant", LOGIN);
    await p.fill("#motdepasse", RESET_PASSWORD);
    await p.click("form button[type=submit]");
    await p.waitForSelector("h1:has-text('Tableau de bord')");
    /* used once */
    await p.goto(BASE + "/#/connexion");
    await p.goto(link);
    await p.waitForSelector("#reinit-nouveau");
    await p.fill("#reinit-nouveau", RESET_PASSWORD + "x");
    await p.fill("#reinit-confirme", RESET_PASSWORD + "x");
    await p.click("#contenu form button[type=submit]");
    await p.waitForSelector("#contenu [role=alert]");
    await shot("18-lien-deja-utilise", p);
    await p.context().close();
    assert.deepEqual(errors, [], "no JavaScript error");
});
