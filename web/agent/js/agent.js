/*
 * agent.js -- the town's back office (web/agent/): a small hash-routed
 * page set for staff, on the /api/staff/ routes of guichet-office and the
 * module's counter (POST /api/staff/bookings), docs/api.md.
 *
 * Staff routes take a bearer token only (never the cookie): the token of
 * POST /api/staff/session is kept in sessionStorage (this tab only) and
 * sent as Authorization; requests go without credentials, so that a
 * family cookie of the same browser is never mixed in.
 *
 * Routes: #/connexion #/inscriptions #/documents #/adresses #/entourage
 *         #/quotient #/familles #/familles?id=F #/guichet #/activites
 *         #/activites?id=A #/nouvelle-famille #/dossier?id=F #/caisse
 *         #/listes #/facturation #/paiements #/messagerie #/absences
 *         #/journal #/commune #/reglages
 *         #/demandes (demandes.js: files asked online)
 * (#/activites: activites.js; #/nouvelle-famille, #/dossier: dossier.js;
 * #/caisse: caisse.js; #/commune: commune.js; #/messagerie: messagerie.js;
 * #/absences: absences.js; #/reglages: reglages.js; #/listes: listes.js; #/adresses: adresses.js;
 * #/entourage: entourage.js; #/quotient: quotient.js)
 */

import * as api from "../../js/api.js";
import * as F from "../../js/format.js";
import { h, id, announce, alertBox, foldingMenu } from "../../js/dom.js";
import { docTypeName, field, listOf, pick, shortRef, when }
    from "../../js/espace.js";
import { reasonText, labelOf } from "../../js/planning.js";
import { viewActivites } from "./activites.js";
import { viewDossier, viewNouvelleFamille } from "./dossier.js";
import { viewCaisse } from "./caisse.js";
import { viewCommune } from "./commune.js";
import { viewListes } from "./listes.js";
import { viewAdresses } from "./adresses.js";
import { viewDemandes } from "./demandes.js";
import { viewEntourage } from "./entourage.js";
import { viewQuotient } from "./quotient.js";
import { viewPublications } from "./publications.js";
import { viewMessagerie } from "./messagerie.js";
import { viewAbsences } from "./absences.js";
import { viewReglages } from "./reglages.js";

const main = document.getElementById("contenu");
const nav = document.getElementById("nav");
const KEY = "guichet.agent";

const RANK = { agent: 1, regie: 2, admin: 3 };

let staff = null;          /* {token, login, role, name} */
try {
    staff = JSON.parse(sessionStorage.getItem(KEY) || "null");
} catch (e) {
    staff = null;
}

/* ---------------------------------------------------------------- */
/* the API */

/* Staff calls: the bearer token, never the family cookie; a 401 ends the
 * tab's staff session. */
async function call(method, path, body, headers) {
    const r = await api.call(method, path, body, headers,
                             { credentials: "omit",
                               bearer: staff && staff.token });
    if (r.status === 401 && path !== "/api/staff/session") {
        expired();
    }
    return r;
}

const get = (p) => call("GET", p);
const post = (p, b, hd) => call("POST", p, b, hd);
const del = (p) => call("DELETE", p);
const missing = api.isMissing;
const newKey = api.newIdempotencyKey;

/* ---------------------------------------------------------------- */
/* the page frame */

let flash = null;

function page(title, ...nodes) {
    document.title = title + " – Guichet agent";
    const f = flash;
    flash = null;
    main.replaceChildren(...[h("h1", {}, title),
                             f ? alertBox(f.text, f.kind) : null,
                             ...nodes].filter((n) => n));
}

function expired() {
    if (!staff) {
        return;
    }
    staff = null;
    sessionStorage.removeItem(KEY);
    flash = { kind: "info", text: "Votre session a expiré. "
              + "Reconnectez-vous." };
    location.hash = "#/connexion";
}

const WORDS = {
    demandee: "Demandée", deposee: "Déposée", validee: "Validée",
    acceptee: "Acceptée", refusee: "Refusée", paid: "Payée",
    payee: "Payée", pending: "En attente", refused: "Refusée",
    abandoned: "Abandonnée", present: "Présent", absent: "Absent",
    absent_justifie: "Absence justifiée", confirmed: "Réservée",
    cancelled: "Annulée", justified: "Absence justifiée",
};

function tag(st) {
    const kind = /^(validee|acceptee|paid|payee|present|confirmed)$/.test(st)
        ? "ok" : /^(refusee|refused|absent|cancelled|abandoned)$/.test(st)
            ? "ko" : "attente";
    return h("span", { class: "etiquette " + kind }, WORDS[st] || st || "—");
}

function table(caption, heads, rows, attrs, hideCaption) {
    return h("div", { class: "tableau-defilant" }, h("table", attrs || {},
        h("caption", hideCaption ? { class: "visually-hidden" } : {},
          caption),
        h("thead", {}, h("tr", {}, heads.map((x) =>
            h("th", { scope: "col" }, x)))),
        h("tbody", {}, rows)));
}

function loading() {
    return h("p", { class: "chargement" }, "Chargement…");
}

function notYet(title, what) {
    page(title, h("p", { class: "info" }, what + " n'est pas encore "
                  + "disponible."));
}

/* A reason asked in a dialog; resolves to the text or null. */
function askReason(title, intro) {
    return new Promise((done) => {
        const tid = id("dlg");
        const input = h("textarea", { id: id("motif"), rows: "3",
                                      required: true });
        const err = h("div", { "aria-live": "polite" });
        const ok = h("button", { class: "bouton danger", type: "submit" },
                     "Refuser");
        const form = h("form", { method: "dialog", novalidate: true },
            h("p", {}, intro),
            field("Motif du refus (envoyé à la famille)", input), err,
            h("div", { class: "boutons" }, ok,
              h("button", { class: "bouton second", type: "button",
                            onclick: () => { dlg.close(); } }, "Annuler")));
        const dlg = h("dialog", { "aria-labelledby": tid },
                      h("h2", { id: tid }, title), form);
        let value = null;
        form.addEventListener("submit", (ev) => {
            if (!input.value.trim()) {
                ev.preventDefault();
                err.replaceChildren(alertBox("Indiquez un motif."));
                return;
            }
            value = input.value.trim();
        });
        dlg.addEventListener("close", () => {
            dlg.remove();
            done(value);
        });
        document.body.appendChild(dlg);
        dlg.showModal();
    });
}

/* ---------------------------------------------------------------- */
/* Connexion */

function viewConnexion() {
    const err = h("div", { "aria-live": "assertive" });
    const login = h("input", { type: "text", id: "ag-identifiant",
                               autocomplete: "username", required: true,
                               autocapitalize: "none",
                               spellcheck: "false" });
    const pass = h("input", { type: "password", id: "ag-motdepasse",
                              autocomplete: "current-password",
                              required: true });
    const btn = h("button", { class: "bouton", type: "submit" },
                  "Connexion");
    const form = h("form", { class: "carte", novalidate: true },
        field("Identifiant agent", login), field("Mot de passe", pass), err,
        h("div", { class: "boutons" }, btn));
    form.addEventListener("submit", async (ev) => {
        ev.preventDefault();
        err.replaceChildren();
        if (!login.value.trim() || !pass.value) {
            err.replaceChildren(alertBox("Indiquez votre identifiant et "
                                         + "votre mot de passe."));
            return;
        }
        btn.disabled = true;
        const r = await post("/api/staff/session",
                             { login: login.value.trim(),
                               password: pass.value });
        btn.disabled = false;
        if (!r.ok) {
            err.replaceChildren(alertBox(r.status === 401
                ? "Identifiant ou mot de passe incorrect."
                : r.error.message));
            pass.value = "";
            pass.focus();
            return;
        }
        staff = { token: r.data.token,
                  login: pick(r.data, "login") || login.value.trim(),
                  role: pick(r.data, "role") || "agent",
                  name: pick(r.data, "name") || "" };
        sessionStorage.setItem(KEY, JSON.stringify(staff));
        location.hash = "#/inscriptions";
    });
    page("Connexion au back office", form);
}

/* ---------------------------------------------------------------- */
/* Inscriptions à traiter */

async function viewInscriptions() {
    const out = h("div", { id: "inscriptions" }, loading());
    page("Inscriptions à traiter", out);
    const r = await get("/api/staff/enrolments?status=demandee");
    if (missing(r)) {
        return notYet("Inscriptions à traiter", "Le traitement des "
                      + "inscriptions");
    }
    if (!r.ok) {
        out.replaceChildren(alertBox(r.error.message));
        return;
    }
    const list = listOf(r.data, "enrolments")
        .filter((e) => !e.status || e.status === "demandee");
    if (list.length === 0) {
        out.replaceChildren(h("p", {}, "Aucune demande d'inscription en "
                                       + "attente."));
        return;
    }
    const decide = async (e, ok, who) => {
        let body = {};
        if (!ok) {
            const reason = await askReason("Refuser l'inscription", who);
            if (!reason) {
                return;
            }
            body = { reason };
        }
        body.decision = ok ? "validee" : "refusee";
        const p = await post("/api/staff/enrolments/"
                             + encodeURIComponent(e.id) + "/decision",
                             body);
        if (!p.ok) {
            out.prepend(alertBox(p.error.message));
            return;
        }
        flash = { kind: "succes", text: "Inscription " + (ok ? "validée"
                  : "refusée") + " : " + who + "." };
        route();
    };
    out.replaceChildren(table("Demandes d'inscription", ["Famille",
        "Enfant", "Activité", "Période", "Demandée le", "Décision"],
        list.map((e) => {
            const who = (pick(e, "child_first_name", "first_name") || e.child_id)
                        + " — " + (pick(e, "activity_name") || e.activity_id);
            return h("tr", { dataset: { inscription: String(e.id) } },
                h("td", {}, h("a", { href: "#/familles?id="
                                     + encodeURIComponent(e.family_id) },
                              familyName(e))),
                h("td", {}, pick(e, "child_first_name", "first_name")
                            || e.child_id),
                h("td", {}, pick(e, "activity_name") || e.activity_id),
                h("td", {}, "du " + when(e.from) + " au " + when(e.to)),
                h("td", {}, when(e.requested_at)),
                h("td", {}, h("div", { class: "boutons" },
                    h("button", { class: "bouton petit", type: "button",
                                  "aria-label": "Valider : " + who,
                                  onclick: () => decide(e, true, who) },
                      "Valider"),
                    h("button", { class: "bouton danger petit",
                                  type: "button",
                                  "aria-label": "Refuser : " + who,
                                  onclick: () => decide(e, false, who) },
                      "Refuser"))));
        })));
}

/* ---------------------------------------------------------------- */
/* Documents à valider */

async function openFile(d) {
    /* the file needs the bearer token: fetched, then shown from a blob */
    const res = await fetch("/api/staff/documents/"
                            + encodeURIComponent(d.id),
                            { credentials: "omit", headers: {
                                Authorization: "Bearer " + staff.token } });
    if (!res.ok) {
        announce("Fichier introuvable.");
        return null;
    }
    const blob = await res.blob();
    const url = URL.createObjectURL(blob);
    window.open(url, "_blank", "noopener");
    setTimeout(() => URL.revokeObjectURL(url), 60000);
    return blob;
}

async function viewDocuments() {
    const out = h("div", { id: "documents" }, loading());
    page("Documents à valider", out);
    const r = await get("/api/staff/documents?status=deposee");
    if (missing(r)) {
        return notYet("Documents à valider", "La validation des documents");
    }
    if (!r.ok) {
        out.replaceChildren(alertBox(r.error.message));
        return;
    }
    const list = listOf(r.data, "documents")
        .filter((d) => !d.status || d.status === "deposee");
    if (list.length === 0) {
        out.replaceChildren(h("p", {}, "Aucun document à valider."));
        return;
    }
    const today = F.todayParis();
    out.replaceChildren(...list.map((d) => {
        const fromI = h("input", { type: "date", id: "doc-du-" + d.id,
                                   value: today });
        const toI = h("input", { type: "date", id: "doc-au-" + d.id,
                                 value: F.addDays(today, 364) });
        const err = h("div", { "aria-live": "polite" });
        const who = familyName(d)
                    + (d.child_id ? " — " + (pick(d, "child_first_name",
                                                 "first_name")
                                             || d.child_id) : "");
        const accept = async () => {
            if (!fromI.value || !toI.value || toI.value < fromI.value) {
                err.replaceChildren(alertBox("Indiquez des dates de validité "
                                             + "(la fin après le début)."));
                return;
            }
            const p = await post("/api/staff/documents/"
                                 + encodeURIComponent(d.id) + "/decision",
                                 { decision: "acceptee",
                                   valid_from: fromI.value,
                                   valid_to: toI.value });
            if (!p.ok) {
                err.replaceChildren(alertBox(p.error.message));
                return;
            }
            flash = { kind: "succes", text: "Document accepté : " + who
                      + "." };
            route();
        };
        const refuse = async () => {
            const reason = await askReason("Refuser le document", who);
            if (!reason) {
                return;
            }
            const p = await post("/api/staff/documents/"
                                 + encodeURIComponent(d.id) + "/decision",
                                 { decision: "refusee", reason });
            if (!p.ok) {
                err.replaceChildren(alertBox(p.error.message));
                return;
            }
            flash = { kind: "succes", text: "Document refusé : " + who
                      + "." };
            route();
        };
        return h("section", { class: "carte", dataset: { document:
                                                         String(d.id) },
                              "aria-labelledby": "doc-t-" + d.id },
            h("h2", { id: "doc-t-" + d.id }, docTypeName(d.type) + " — "
                                             + who),
            h("p", { class: "discret" }, (d.filename || "") + " · "
              + (d.content_type || "") + " · déposé le "
              + when(pick(d, "uploaded_at"))),
            h("div", { class: "boutons" },
              h("button", { class: "bouton second petit", type: "button",
                            onclick: () => openFile(d) },
                "Voir le fichier")),
            h("div", { class: "outils-periode" },
              field("Valide du", fromI), field("au", toI)),
            err,
            h("div", { class: "boutons" },
              h("button", { class: "bouton", type: "button",
                            onclick: accept }, "Accepter"),
              h("button", { class: "bouton danger", type: "button",
                            onclick: refuse }, "Refuser")));
    }));
}

/* ---------------------------------------------------------------- */
/* Familles */

/* /api/staff/families answers a page of families (offset, limit) and the
 * total (docs/api.md): the list shows 50 at a time (issue 22) */
const FAMILIES_PAGE = 50;

/* A family in words: its name, else its login, never its internal id
 * unless that is all there is (f a family, or a row naming one). */
function familyName(f) {
    return pick(f, "name", "family_name", "login", "family_login")
           || f.family_id || f.id || "—";
}

/* The family whose login or id is exactly "asked", or null. */
async function findFamily(asked) {
    const rs = await get("/api/staff/families?limit=100&q="
                         + encodeURIComponent(asked));
    const same = (rs.ok ? listOf(rs.data, "families") : []).filter((f) =>
        f.login === asked || f.id === asked);
    return same.length === 1 ? same[0] : null;
}

async function viewFamilles() {
    const q = new URLSearchParams(location.hash.split("?")[1] || "");
    if (q.get("id")) {
        return viewFamille(q.get("id"), q);
    }
    const search = h("input", { type: "search", id: "fam-recherche",
                                value: q.get("q") || "" });
    const form = h("form", { class: "outils-periode", role: "search" },
        field("Nom, identifiant ou enfant", search),
        h("div", { class: "champ" },
          h("button", { class: "bouton", type: "submit" }, "Rechercher")));
    form.addEventListener("submit", (ev) => {
        ev.preventDefault();
        location.hash = "#/familles?q=" + encodeURIComponent(search.value);
    });
    const out = h("div", { id: "familles" }, loading());
    page("Familles", h("p", {}, h("a", { href: "#/nouvelle-famille",
                                         class: "bouton second" },
                                  "Nouvelle famille")), form, out);
    const from = Math.max(0, Number.parseInt(q.get("depuis"), 10) || 0);
    const r = await get("/api/staff/families?limit=" + FAMILIES_PAGE
                        + "&offset=" + from + "&q="
                        + encodeURIComponent(q.get("q") || ""));
    if (missing(r)) {
        return notYet("Familles", "La recherche de familles");
    }
    if (!r.ok) {
        out.replaceChildren(alertBox(r.error.message));
        return;
    }
    const list = listOf(r.data, "families");
    const total = Number.isInteger(r.data.total) ? r.data.total
                                                 : from + list.length;
    const there = (at) => "#/familles?q=" + encodeURIComponent(q.get("q")
                                                               || "")
                          + (at > 0 ? "&depuis=" + at : "");
    const s = (n) => (n > 1 ? "s" : "");
    const count = h("p", { class: "discret", id: "fam-compte" },
        total <= list.length && from === 0
            ? total + " famille" + s(total)
            : list.length + " famille" + s(list.length) + " sur " + total
              + (list.length > 0 ? " (de la " + (from + 1) + "e à la "
                                   + (from + list.length) + "e)" : ""));
    const pager = total > FAMILIES_PAGE || from > 0
        ? h("div", { class: "boutons", id: "fam-pages" },
            from > 0
                ? h("a", { class: "bouton second", href: there(Math.max(0,
                           from - FAMILIES_PAGE)), rel: "prev" },
                    "← Précédentes")
                : null,
            from + list.length < total
                ? h("a", { class: "bouton second",
                           href: there(from + FAMILIES_PAGE), rel: "next" },
                    "Suivantes →")
                : null)
        : null;
    out.replaceChildren(list.length === 0 && from === 0
        ? h("p", {}, "Aucune famille trouvée.")
        : h("div", {}, count,
          list.length === 0 ? null : table("Familles", ["Famille",
                                           "Identifiant", "E-mail",
                                           "Enfants"],
            list.map((f) => h("tr", { dataset: { famille: f.id } },
                h("td", {}, h("a", { href: "#/familles?id="
                                     + encodeURIComponent(f.id) },
                              familyName(f))),
                h("td", {}, f.login || "—"),
                h("td", {}, f.email || "—"),
                h("td", {}, (f.children || []).map((c) =>
                    c.first_name || c).join(", "))))),
          pager));
}

/* The family page's planning period (any dates: the file holds every
 * booking). */
function periodForm(fid, from, to) {
    const du = h("input", { type: "date", id: "pf-du", value: from });
    const au = h("input", { type: "date", id: "pf-au", value: to });
    const form = h("form", { class: "outils-periode" },
        field("Du", du), field("Au", au),
        h("div", { class: "champ" }, h("button", { class: "bouton second",
                                                   type: "submit" },
                                       "Afficher")));
    form.addEventListener("submit", (ev) => {
        ev.preventDefault();
        location.hash = "#/familles?id=" + encodeURIComponent(fid)
                        + "&du=" + du.value + "&au=" + au.value;
    });
    return form;
}

const ATTENDANCE = [["present", "Présent"], ["absent", "Absent"],
                    ["absent_justifie", "Absence justifiée"]];

async function viewFamille(fid, q) {
    const out = h("div", {}, loading());
    page("Famille", h("p", {}, h("a", { href: "#/familles" },
                                 "← Toutes les familles"), " · ",
                      h("a", { href: "#/dossier?id=" + encodeURIComponent(fid),
                               id: "lien-dossier" },
                        "Dossier : QF, entourage, enfants, inscriptions")),
         out);
    const today = F.todayParis();
    const from = q.get("du") || F.addDays(today, -7);
    const to = q.get("au") || F.addDays(today, 60);
    const [rf, ra] = await Promise.all([
        get("/api/staff/families/" + encodeURIComponent(fid)),
        get("/api/activities")]);
    const acts = new Map((ra.ok ? listOf(ra.data, "activities") : [])
        .map((a) => [a.id, a.name]));
    const actName = (aid) => acts.get(aid) || aid;
    if (!rf.ok) {
        out.replaceChildren(alertBox(rf.error.message));
        return;
    }
    const f = rf.data.family || rf.data;
    const kids = listOf(rf.data, "children");
    const enrol = listOf(rf.data, "enrolments");
    const docs = listOf(rf.data, "documents");
    const name = (cid) => {
        const c = kids.find((x) => x.id === cid);
        return c ? c.first_name : cid;
    };
    document.title = (pick(f, "name", "login") || fid) + " – Guichet agent";
    main.querySelector("h1").textContent = "Famille "
        + (pick(f, "name", "login") || fid);

    const blocks = [
        h("p", {}, "Identifiant : ", f.login || fid,
          f.qf !== undefined ? " · QF " + f.qf : "",
          f.direct_debit ? " · prélèvement automatique" : ""),
        h("p", { class: "boutons" }, h("a", { class: "bouton second",
                            href: "#/guichet?famille="
                                  + encodeURIComponent(fid) },
                      "Réserver au guichet pour cette famille"),
          RANK[staff.role] >= RANK.admin
              ? h("a", { class: "bouton second", href: "#/journal?famille="
                                                   + encodeURIComponent(fid) },
                  "Journal de cette famille") : null),
        h("h2", {}, "Enfants"),
        h("ul", {}, kids.map((c) => h("li", {}, c.first_name,
            c.birth_date ? " — né(e) le " + F.dayYear(c.birth_date) : ""))),
        h("h2", {}, "Inscriptions"),
        enrol.length === 0 ? h("p", {}, "Aucune inscription.")
        : table("Inscriptions", ["Enfant", "Activité", "Période", "Statut"],
            enrol.map((e) => h("tr", {},
                h("td", {}, name(e.child_id)),
                h("td", {}, pick(e, "activity_name")
                            || actName(e.activity_id)),
                h("td", {}, "du " + when(e.from) + " au " + when(e.to)),
                h("td", {}, tag(e.status)))), null, true),
        h("h2", {}, "Documents"),
        docs.length === 0 ? h("p", {}, "Aucun document.")
        : table("Documents", ["Type", "Enfant", "Statut", "Validité"],
            docs.map((d) => h("tr", {},
                h("td", {}, docTypeName(d.type)),
                h("td", {}, d.child_id ? name(d.child_id) : "Famille"),
                h("td", {}, tag(d.status)),
                h("td", {}, d.valid_to ? "jusqu'au " + when(d.valid_to)
                                       : "—"))), null, true),
        h("h2", {}, "Planning du " + F.dayYear(from) + " au "
                    + F.dayYear(to)),
        periodForm(fid, from, to),
    ];
    const bookings = listOf(rf.data, "bookings")
        .filter((b) => b.status !== "cancelled" && b.date >= from
                       && b.date <= to);
    const mark = async (b, st, cell) => {
        const p = await post("/api/staff/attendance",
                             { booking_id: b.booking_id, status: st });
        if (!p.ok) {
            cell.replaceChildren(alertBox(p.error.message));
            return;
        }
        b.attendance = st;
        cell.replaceChildren(tag(st));
        announce("Présence enregistrée : " + WORDS[st]);
    };
    blocks.push(bookings.length === 0
        ? h("p", {}, "Aucune réservation sur la période.")
        : table("Planning", ["Enfant", "Date", "Activité", "Séance",
                             "Présence", "Actions"],
            bookings.map((b) => {
                b.booking_id = b.booking_id || b.id;
                const cell = h("td", {}, b.attendance ? tag(b.attendance)
                    : b.justified ? tag("justified") : "—");
                const what = name(b.child_id) + ", " + F.dayYear(b.date)
                             + " " + (b.label || b.unit);
                const row = h("tr", { dataset: { booking: b.booking_id } },
                    h("td", {}, b.first_name || name(b.child_id)),
                    h("td", {}, F.dayShort(b.date) + " "
                                + b.date.slice(0, 4)),
                    h("td", {}, b.activity_name || actName(b.activity_id)),
                    h("td", {}, b.label || b.unit,
                      b.channel === "onsite" ? " (guichet)" : ""),
                    cell,
                    h("td", {}, h("div", { class: "boutons" },
                        ATTENDANCE.map(([st, label]) =>
                            h("button", { class: "bouton second petit",
                                          type: "button",
                                          "aria-label": label + " : " + what,
                                          onclick: () => mark(b, st,
                                                              cell) },
                              label)))));
                return row;
            }), { id: "planning-famille" }, true));
    out.replaceChildren(...blocks);
}

/* ---------------------------------------------------------------- */
/* Guichet: on-site places */

/* The suggestions of a family field (an ARIA 1.2 combobox: the input keeps
 * the focus, the list is its listbox): the families whose login, id,
 * e-mail address or a child's first name holds what was typed (two
 * characters at least, 10 suggestions), from /api/staff/families;
 * arrows move, Enter or a click chooses, Escape closes (issue 22). */
function familySuggestions(input, choose) {
    const list = h("ul", { id: "gu-suggestions", role: "listbox",
                           class: "suggestions", hidden: true,
                           "aria-label": "Familles proposées" });
    let found = [];
    let active = -1;
    let asked = 0;
    let timer = null;
    const close = () => {
        list.hidden = true;
        list.replaceChildren();
        found = [];
        active = -1;
        input.setAttribute("aria-expanded", "false");
        input.removeAttribute("aria-activedescendant");
    };
    const mark = (i) => {
        active = i;
        list.querySelectorAll("[role=option]").forEach((o, j) =>
            o.setAttribute("aria-selected", String(j === i)));
        if (i >= 0) {
            input.setAttribute("aria-activedescendant", "gu-option-" + i);
            list.children[i].scrollIntoView({ block: "nearest" });
        } else {
            input.removeAttribute("aria-activedescendant");
        }
    };
    const pickIt = (f) => {
        input.value = f.login || f.id;
        close();
        choose(f);
    };
    const suggest = async () => {
        const text = input.value.trim();
        const me = ++asked;
        if (text.length < 2) {
            close();
            return;
        }
        const r = await get("/api/staff/families?limit=10&q="
                            + encodeURIComponent(text));
        if (me !== asked || document.activeElement !== input) {
            return;
        }
        found = r.ok ? listOf(r.data, "families") : [];
        if (found.length === 0) {
            close();
            announce("Aucune famille proposée.");
            return;
        }
        list.replaceChildren(...found.map((f, i) => h("li", {
            id: "gu-option-" + i, role: "option", "aria-selected": "false",
            dataset: { famille: f.id },
            onmousedown: (ev) => ev.preventDefault(),
            onclick: () => pickIt(f) },
            familyName(f), (f.children || []).length > 0
                ? h("span", { class: "discret" }, " — "
                    + f.children.map((c) => c.first_name).join(", "))
                : null)));
        active = -1;
        list.hidden = false;
        input.setAttribute("aria-expanded", "true");
        input.removeAttribute("aria-activedescendant");
        const more = r.data.total > found.length
                     ? " sur " + r.data.total : "";
        announce(found.length + " famille" + (found.length > 1 ? "s" : "")
                 + " proposée" + (found.length > 1 ? "s" : "") + more
                 + " : flèches pour choisir.");
    };
    input.addEventListener("input", () => {
        clearTimeout(timer);
        timer = setTimeout(suggest, 200);
    });
    input.addEventListener("keydown", (ev) => {
        if (ev.key === "Escape" && !list.hidden) {
            ev.preventDefault();
            close();
        } else if ((ev.key === "ArrowDown" || ev.key === "ArrowUp")
                   && found.length > 0) {
            ev.preventDefault();
            const step = ev.key === "ArrowDown" ? 1 : -1;
            mark((active + step + found.length + (active < 0 && step < 0
                                                  ? 1 : 0))
                 % found.length);
        } else if (ev.key === "Enter" && active >= 0 && !list.hidden) {
            ev.preventDefault();
            pickIt(found[active]);
        }
    });
    input.addEventListener("blur", () => setTimeout(close, 100));
    return list;
}


async function viewGuichet() {
    const q = new URLSearchParams(location.hash.split("?")[1] || "");
    const fam = h("input", { type: "text", id: "gu-famille", required: true,
                             value: q.get("famille") || "",
                             autocomplete: "off", role: "combobox",
                             "aria-autocomplete": "list",
                             "aria-expanded": "false",
                             "aria-controls": "gu-suggestions" });
    const load = h("button", { class: "bouton second", type: "submit" },
                   "Afficher");
    const head = h("form", { class: "outils-periode" },
        h("div", { class: "combo" },
          field("Famille", fam, "Une partie de l'identifiant de connexion "
                + "ou le prénom d'un enfant, puis choisissez."),
          familySuggestions(fam, (f) => {
              location.hash = "#/guichet?famille="
                              + encodeURIComponent(f.login || f.id);
          })),
        h("div", { class: "champ" }, load));
    head.addEventListener("submit", (ev) => {
        ev.preventDefault();
        location.hash = "#/guichet?famille="
                        + encodeURIComponent(fam.value.trim());
    });
    const out = h("div", { id: "guichet" });
    page("Guichet : réservation sur place", h("p", {}, "Les places "
         + "réservées ici sont prises sur le quota du guichet, même quand "
         + "le quota en ligne est complet."), head, out);
    const asked = q.get("famille");
    if (!asked) {
        return;
    }
    out.replaceChildren(loading());
    /* the family's id, or its login as its page shows it */
    let fid = asked;
    let [rf, ra] = await Promise.all([
        get("/api/staff/families/" + encodeURIComponent(fid)),
        get("/api/activities")]);
    if (rf.status === 404) {
        const f = await findFamily(asked);
        if (f) {
            fid = f.id;
            rf = await get("/api/staff/families/" + encodeURIComponent(fid));
        }
    }
    if (!rf.ok) {
        out.replaceChildren(alertBox(rf.status === 404
            ? "Aucune famille « " + asked + " » : indiquez l'identifiant "
              + "de connexion de la famille, ou cherchez-la dans "
              + "« Familles »."
            : rf.error.message));
        return;
    }
    const kids = listOf(rf.data, "children");
    const acts = ra.ok ? listOf(ra.data, "activities") : [];
    const child = h("select", { id: "gu-enfant" }, kids.map((c) =>
        h("option", { value: c.id }, c.first_name)));
    const act = h("select", { id: "gu-activite" }, acts.map((a) =>
        h("option", { value: a.id }, a.name)));
    const day = h("input", { type: "date", id: "gu-date",
                             value: q.get("date") || F.todayParis() });
    const cells = h("div", { id: "gu-seances", "aria-live": "polite" });
    const res = h("div", { id: "gu-resultat", "aria-live": "polite" });
    const shown = new Map();     /* session id -> session */
    const show = async () => {
        res.replaceChildren();
        const s = await get("/api/activities/" + encodeURIComponent(act.value)
                            + "/sessions?from=" + day.value + "&to="
                            + day.value);
        const list = s.ok ? listOf(s.data, "sessions") : [];
        for (const x of list) {
            shown.set(x.id || x.session_id, x);
        }
        if (list.length === 0) {
            cells.replaceChildren(h("p", {}, "Aucune séance ce jour-là."));
            return;
        }
        cells.replaceChildren(h("fieldset", {},
            h("legend", {}, "Séances du " + F.dayLong(day.value)),
            h("div", { class: "choix" }, list.map((x) => {
                const sid = x.id || x.session_id;
                return h("label", {}, h("input", { type: "checkbox",
                                                   value: sid,
                                                   name: "seance" }),
                    labelOf(x) + " — en ligne : "
                    + (x.status === "full" || x.places_left === 0
                       ? "complet" : x.places_left + " place(s)"));
            }))),
            h("div", { class: "boutons" }, h("button", {
                class: "bouton", type: "button", id: "gu-reserver",
                onclick: book }, "Réserver sur place")));
    };
    let key = null;
    let lastBody = "";
    const book = async () => {
        const items = Array.from(cells.querySelectorAll(
            "input[name=seance]:checked")).map((b) => ({
                child_id: child.value, session_id: b.value }));
        if (items.length === 0) {
            res.replaceChildren(alertBox("Cochez au moins une séance."));
            return;
        }
        const body = { family_id: fid, items };
        if (JSON.stringify(body) !== lastBody || !key) {
            key = newKey();
            lastBody = JSON.stringify(body);
        }
        const btn = document.getElementById("gu-reserver");
        btn.disabled = true;
        const p = await post("/api/staff/bookings", body,
                             { "Idempotency-Key": key });
        btn.disabled = false;
        if (!p.ok) {
            if (p.status !== 503 && p.status !== 0) {
                key = null;
            }
            res.replaceChildren(alertBox(p.error.message));
            return;
        }
        key = null;
        const d = p.data;
        res.replaceChildren(h("div", { class: "carte" },
            h("p", {}, h("strong", {}, "Demande N° " + d.request_id)),
            h("ul", { class: "resultats" }, (d.items || []).map((it) => {
                const x = shown.get(it.session_id);
                return h("li", { dataset: { statut: it.status } },
                  (x ? F.dayLong(x.date) + ", " + labelOf(x)
                     : it.session_id) + " : ", it.status === "confirmed"
                  ? "Réservé au guichet (" + F.euros(it.price_cents) + ")"
                  : "Refusé : " + reasonText(it, F.instant));
            }))));
        announce("Réservation au guichet traitée.");
    };
    const pickForm = h("form", { class: "carte" },
        field("Enfant", child), field("Activité", act), field("Jour", day),
        h("div", { class: "boutons" }, h("button", { class: "bouton second",
                                                     type: "submit" },
                                         "Voir les séances")));
    pickForm.addEventListener("submit", (ev) => {
        ev.preventDefault();
        show();
    });
    out.replaceChildren(h("p", {}, "Famille : ",
                          familyName(rf.data.family || rf.data)),
                        pickForm, cells, res);
    if (q.get("date")) {
        show();
    }
}

/* ---------------------------------------------------------------- */
/* Facturation, Paiements */

async function viewFacturation() {
    const today = F.todayParis();
    const prev = F.addDays(today.slice(0, 8) + "01", -1).slice(0, 7);
    const month = h("input", { type: "month", id: "fa-mois", value: prev,
                               required: true });
    const res = h("div", { id: "fa-resultat", "aria-live": "polite" });
    const btn = h("button", { class: "bouton", type: "submit" },
                  "Lancer la facturation du mois");
    const form = h("form", { class: "carte" },
        field("Mois", month, "Une facture par famille et par mois ; "
              + "relancer le même mois ne refacture rien."), res,
        h("div", { class: "boutons" }, btn));
    let confirmed = null;
    month.addEventListener("input", () => {
        confirmed = null;
        res.replaceChildren();
        btn.textContent = "Lancer la facturation du mois";
    });
    form.addEventListener("submit", async (ev) => {
        ev.preventDefault();
        if (!/^\d{4}-\d\d$/.test(month.value)) {
            res.replaceChildren(alertBox("Indiquez le mois (AAAA-MM)."));
            return;
        }
        /* one more click, the month in words; a month not over yet is
         * said loudly (its later bookings would not be invoiced) */
        const words = F.monthName(month.value + "-01");
        if (confirmed !== month.value) {
            confirmed = month.value;
            const open = month.value >= today.slice(0, 7);
            res.replaceChildren(alertBox((open
                ? "Attention : " + words + " n'est pas terminé. Les séances "
                  + "réservées ensuite pour ce mois ne seraient sur aucune "
                  + "facture. "
                : "") + "Une facture sera émise pour chaque famille ayant "
                + "des séances facturables en " + words + ". Cliquez sur « "
                + "Confirmer la facturation de " + words + " » pour "
                + "lancer.", open ? "alerte" : "info"));
            btn.textContent = "Confirmer la facturation de " + words;
            return;
        }
        confirmed = null;
        btn.textContent = "Lancer la facturation du mois";
        btn.disabled = true;
        res.replaceChildren(h("p", { class: "chargement" },
                              "Facturation en cours…"));
        const r = await post("/api/staff/invoicing", { month: month.value });
        btn.disabled = false;
        if (!r.ok) {
            res.replaceChildren(alertBox(missing(r)
                ? "La facturation en ligne n'est pas encore disponible."
                : r.error.message));
            return;
        }
        const n = pick(r.data, "created", "invoices", "count");
        res.replaceChildren(alertBox("Facturation de " + month.value
            + " terminée" + (Number.isFinite(n) ? " : " + n
                             + " facture(s) émise(s)." : "."), "succes"));
    });
    page("Facturation", form);
}

const OP_WORDS = { pending: "En attente", paid: "Payée",
                   refused: "Refusée", abandoned: "Abandonnée" };

async function viewPaiements() {
    const out = h("div", { id: "paiements" }, loading());
    const exp = h("div", { id: "exports-sepa" });
    page("Paiements", out, h("h2", {}, "Prélèvements SEPA exportés"), exp);
    const [r, x] = await Promise.all([get("/api/staff/payments"),
                                      get("/api/staff/sepa-exports")]);
    if (missing(r)) {
        return notYet("Paiements", "La liste des paiements");
    }
    if (!r.ok) {
        out.replaceChildren(alertBox(r.error.message));
        return;
    }
    const list = listOf(r.data, "operations");
    const over = listOf(r.data, "overpayments");
    out.replaceChildren(
        h("p", {}, "Encaissé en ligne : ",
          h("strong", { id: "total-encaisse" },
            F.euros(r.data.paid_cents || 0))),
        list.length === 0 ? h("p", {}, "Aucun paiement en ligne.")
        : table("Paiements en ligne (les plus récents d'abord)",
            ["Opération", "Famille", "Factures", "Montant", "État",
             "Créée le", "Réglée le", "Référence"],
            list.map((p) => h("tr", {
                    dataset: { operation: String(p.operation_id) } },
                h("td", { class: "sans-coupure",
                           title: String(p.operation_id) },
                  shortRef(p.operation_id)),
                h("td", {}, h("a", { href: "#/familles?id="
                                     + encodeURIComponent(p.family_id) },
                              familyName(p))),
                h("td", {}, (p.invoice_ids || []).join(", ") || "—"),
                h("td", { class: "montant" }, F.euros(p.amount_cents)),
                h("td", {}, h("span", { class: "etiquette "
                    + (p.status === "paid" ? "ok" : p.status === "pending"
                       ? "attente" : "ko") },
                    OP_WORDS[p.status] || p.status)),
                h("td", {}, when(p.created_at)),
                h("td", {}, when(p.settled_at)),
                h("td", {}, p.provider_ref || "—")))),
        over.length === 0 ? null
        : table("Trop-perçus à rembourser", ["Opération", "Facture",
                                              "Montant", "Remboursé le"],
            over.map((v) => h("tr", {},
                h("td", { class: "sans-coupure" }, shortRef(v.operation_id)),
                h("td", {}, v.invoice_id == null ? "—"
                            : String(v.invoice_id)),
                h("td", { class: "montant" }, F.euros(v.amount_cents)),
                h("td", {}, when(v.refunded_at))))));
    const el = x.ok ? listOf(x.data, "exports") : [];
    exp.replaceChildren(!x.ok ? alertBox(x.error.message)
        : el.length === 0 ? h("p", {}, "Aucun export (guichetctl "
                                      + "sepa-export).")
        : table("Exports SEPA", ["Mois", "Message", "Prélèvements",
                                 "Total", "Fait le", "Par"],
            el.map((e) => h("tr", {},
                h("td", {}, e.month || "—"), h("td", {}, e.msg_id || "—"),
                h("td", {}, e.count == null ? "—" : String(e.count)),
                h("td", { class: "montant" }, F.euros(e.total_cents)),
                h("td", {}, when(e.created_at)),
                h("td", {}, e.created_by || "—"))), null, true));
}

/* ---------------------------------------------------------------- */
/* Journal (admin) */

async function viewJournal() {
    const q = new URLSearchParams(location.hash.split("?")[1] || "");
    const fam = h("input", { type: "search", id: "jo-famille",
                             value: q.get("famille") || "" });
    const target = h("input", { type: "search", id: "jo-cible",
                                value: q.get("cible") || "" });
    const form = h("form", { class: "outils-periode", role: "search" },
        field("Famille (identifiant)", fam),
        field("Ou une cible (document:12, inscription…)", target),
        h("div", { class: "champ" }, h("button", { class: "bouton second",
                                                   type: "submit" },
                                       "Filtrer")));
    form.addEventListener("submit", (ev) => {
        ev.preventDefault();
        location.hash = "#/journal?" + (fam.value.trim()
            ? "famille=" + encodeURIComponent(fam.value.trim())
            : "cible=" + encodeURIComponent(target.value.trim()));
    });
    const out = h("div", { id: "journal" }, loading());
    page("Journal des actions", form, out);
    /* a family: what it did, and what the staff decided about it */
    let filter = "";
    if (q.get("famille")) {
        const f = await findFamily(q.get("famille"));
        filter = "?family=" + encodeURIComponent(f ? f.id
                                                   : q.get("famille"));
    } else if (q.get("cible")) {
        filter = "?target=" + encodeURIComponent(q.get("cible"));
    }
    const r = await get("/api/staff/audit" + filter);
    if (missing(r)) {
        return notYet("Journal des actions", "Le journal");
    }
    if (!r.ok) {
        out.replaceChildren(alertBox(r.error.message));
        return;
    }
    const list = listOf(r.data, "entries").length
        ? listOf(r.data, "entries") : listOf(r.data, "audit");
    out.replaceChildren(list.length === 0 ? h("p", {}, "Journal vide.")
        : table("Actions (les plus récentes d'abord)", ["Date", "Qui",
                                                        "Action", "Cible",
                                                        "Détail"],
            list.map((e) => h("tr", {},
                h("td", {}, when(e.at)),
                h("td", {}, e.actor),
                h("td", {}, e.action),
                h("td", {}, e.target),
                h("td", { class: "discret" }, detailWords(e.detail))))));
}

/* A journal entry's detail as "clé : valeur" lines, not raw JSON. */
function detailWords(d) {
    if (d === null || d === undefined || d === "") {
        return "—";
    }
    if (typeof d !== "object") {
        return String(d);
    }
    const words = (v) => (v === null || v === undefined ? "—"
        : Array.isArray(v) ? v.map(words).join(", ")
        : typeof v === "object" ? Object.entries(v).map(([k, x]) =>
            k.replace(/_/g, " ") + " " + words(x)).join(", ")
        : typeof v === "boolean" ? (v ? "oui" : "non") : String(v));
    const entries = Object.entries(d);
    return entries.length === 0 ? "—"
        : h("ul", { class: "detail" }, entries.map(([k, v]) =>
            h("li", {}, k.replace(/_/g, " ") + " : " + words(v))));
}

/* ---------------------------------------------------------------- */
/* router */

/* What the views of other files get of this frame. */
function frame() {
    return { call, page, table, loading, main, route,
             rank: staff ? RANK[staff.role] || 1 : 0,
             token: () => staff && staff.token,
             flash: (f) => { flash = f; } };
}

const routes = {
    "/connexion": viewConnexion,
    "/inscriptions": viewInscriptions,
    "/documents": viewDocuments,
    "/adresses": () => viewAdresses({
        page, get, post, askReason, familyName,
        done: (text) => {
            flash = { kind: "succes", text };
            route();
        } }),
    "/demandes": () => viewDemandes({
        page, get, post, askReason,
        done: (text) => {
            flash = { kind: "succes", text };
            route();
        } }),
    "/entourage": () => viewEntourage({
        page, get, call,
        done: (text) => {
            flash = { kind: "succes", text };
            route();
        } }),
    "/quotient": () => viewQuotient({
        page, get, post, askReason, familyName, openFile,
        done: (text) => {
            flash = { kind: "succes", text };
            route();
        } }),
    "/familles": viewFamilles,
    "/guichet": viewGuichet,
    "/activites": () => viewActivites(frame()),
    "/nouvelle-famille": () => viewNouvelleFamille(frame()),
    "/dossier": () => viewDossier(frame()),
    "/caisse": () => viewCaisse(frame()),
    "/listes": () => viewListes(frame()),
    "/publications": () => viewPublications(frame()),
    "/facturation": viewFacturation,
    "/paiements": viewPaiements,
    "/messagerie": () => viewMessagerie({
        page, get, post, call, table, loading, familyName,
        token: () => staff && staff.token,
        done: (text) => {
            flash = { kind: "succes", text };
            route();
        } }),
    "/reglages": () => viewReglages({
        page, get, call, loading,
        done: (text) => {
            flash = { kind: "succes", text };
            route();
        } }),
    "/absences": () => viewAbsences({
        page, get, post, askReason, familyName, openFile,
        done: (text) => {
            flash = { kind: "succes", text };
            route();
        } }),
    "/journal": viewJournal,
    "/commune": () => viewCommune(frame()),
};

let first = true;

async function route() {
    let path = (location.hash.slice(1) || "/inscriptions").split("?")[0];
    if (!path.startsWith("/")) {
        path = "/" + path;
    }
    if (!staff && path !== "/connexion") {
        location.hash = "#/connexion";
        return;
    }
    for (const d of document.querySelectorAll("dialog[open]")) {
        d.close();
    }
    const view = routes[path] || viewInscriptions;
    nav.hidden = !staff || view === viewConnexion;
    const rank = staff ? RANK[staff.role] || 1 : 0;
    for (const li of nav.querySelectorAll("li[data-role]")) {
        li.hidden = rank < RANK[li.dataset.role];
    }
    for (const a of nav.querySelectorAll("a")) {
        if (a.getAttribute("href") === "#" + path) {
            a.setAttribute("aria-current", "page");
        } else {
            a.removeAttribute("aria-current");
        }
    }
    document.getElementById("qui").textContent = staff
        ? "· " + (staff.name || staff.login) + " (" + staff.role + ")" : "";
    await view();
    if (!first) {
        main.focus();
    }
    first = false;
}

document.getElementById("deconnexion").addEventListener("click", async () => {
    /* the module's logout revokes any token it is given, staff ones too */
    await del("/api/session");
    staff = null;
    sessionStorage.removeItem(KEY);
    flash = { kind: "info", text: "Vous êtes déconnecté." };
    location.hash = "#/connexion";
});

foldingMenu(nav);
window.addEventListener("hashchange", route);
route();
