/*
 * shell.js -- the back office's frame, shared by the router (agent.js)
 * and the views: the tab's staff session (its bearer token, kept in
 * sessionStorage), the staff calls (call, get, post, del: the token,
 * never the family cookie; a 401 ends the session), the page (page(),
 * the message shown once above it, tables, "Chargement…", a reason asked
 * in a dialog) and route(), which shows the page again.
 */

import * as api from "../../js/api.js";
import { h, id, alertBox } from "../../js/dom.js";
import { field, listOf } from "../../js/espace.js";

export const main = document.getElementById("contenu");
export const KEY = "guichet.agent";

export const RANK = { agent: 1, regie: 2, admin: 3 };

export let staff = null;   /* {token, login, role, name} */
try {
    staff = JSON.parse(sessionStorage.getItem(KEY) || "null");
} catch (e) {
    staff = null;
}

/* The tab's staff session, set by the login (connexion.js) and ended by
 * the logout (agent.js). */
export function setStaff(s) {
    staff = s;
}

/* ---------------------------------------------------------------- */
/* the API */

/* Staff calls: the bearer token, never the family cookie; a 401 ends the
 * tab's staff session. */
export async function call(method, path, body, headers) {
    const r = await api.call(method, path, body, headers,
                             { credentials: "omit",
                               bearer: staff && staff.token });
    if (r.status === 401 && path !== "/api/staff/session") {
        expired();
    }
    return r;
}

export const get = (p) => call("GET", p);
export const post = (p, b, hd) => call("POST", p, b, hd);
export const del = (p) => call("DELETE", p);
export const missing = api.isMissing;
export const newKey = api.newIdempotencyKey;

/* ---------------------------------------------------------------- */
/* the page frame */

export let flash = null;

/* The message the next page shows above its title (once). */
export function setFlash(f) {
    flash = f;
}

/* The router (agent.js's route(), given once): a view shows the page
 * again after a change. */
let router = null;

export function setRouter(f) {
    router = f;
}

export function route() {
    return router();
}

export function page(title, ...nodes) {
    document.title = title + " – Guichet agent";
    const f = flash;
    flash = null;
    main.replaceChildren(...[h("h1", {}, title),
                             f ? alertBox(f.text, f.kind) : null,
                             ...nodes].filter((n) => n));
}

export function expired() {
    if (!staff) {
        return;
    }
    staff = null;
    sessionStorage.removeItem(KEY);
    flash = { kind: "info", text: "Votre session a expiré. "
              + "Reconnectez-vous." };
    location.hash = "#/connexion";
}

export const WORDS = {
    demandee: "Demandée", deposee: "Déposée", validee: "Validée",
    acceptee: "Acceptée", refusee: "Refusée", paid: "Payée",
    payee: "Payée", pending: "En attente", refused: "Refusée",
    abandoned: "Abandonnée", present: "Présent", absent: "Absent",
    absent_justifie: "Absence justifiée", confirmed: "Réservée",
    cancelled: "Annulée", justified: "Absence justifiée",
};

export function tag(st) {
    const kind = /^(validee|acceptee|paid|payee|present|confirmed)$/.test(st)
        ? "ok" : /^(refusee|refused|absent|cancelled|abandoned)$/.test(st)
            ? "ko" : "attente";
    return h("span", { class: "etiquette " + kind }, WORDS[st] || st || "—");
}

export function table(caption, heads, rows, attrs, hideCaption) {
    return h("div", { class: "tableau-defilant" }, h("table", attrs || {},
        h("caption", hideCaption ? { class: "visually-hidden" } : {},
          caption),
        h("thead", {}, h("tr", {}, heads.map((x) =>
            h("th", { scope: "col" }, x)))),
        h("tbody", {}, rows)));
}

export function loading() {
    return h("p", { class: "chargement" }, "Chargement…");
}

/*
 * A page of requests waiting for an agent's decision (absences, quotients,
 * addresses, new files): q is {id, title, url, key, empty, emptyId}; the
 * list at url (its array under key) is shown one card(item) each, or the
 * empty sentence, or the error.
 */
export async function pendingList(env, q, card) {
    const out = h("div", { id: q.id }, loading());
    env.page(q.title, out);
    const r = await env.get(q.url);
    if (!r.ok) {
        out.replaceChildren(alertBox(r.error.message));
        return;
    }
    const list = listOf(r.data, q.key);
    if (list.length === 0) {
        out.replaceChildren(h("p", q.emptyId ? { id: q.emptyId } : {},
                              q.empty));
        return;
    }
    out.replaceChildren(...list.map(card));
}

export function notYet(title, what) {
    page(title, h("p", { class: "info" }, what + " n'est pas encore "
                  + "disponible."));
}

/* A reason asked in a dialog; resolves to the text or null. */
export function askReason(title, intro) {
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
