/*
 * app.js -- the Espace Famille: hash routes, session, and the pages
 * Connexion, Tableau de bord, Mes réservations and Mes factures.  The
 * booking page (Modifier les réservations) lives in reserver.js.
 *
 * Routes: #/connexion  #/tableau-de-bord  #/reserver  #/reservations
 *         #/agenda (agenda.js)
 *         #/factures  and the family space (espace.js and one module
 *         a page: inscriptions.js, documents.js, messagerie.js, ...):
 *         #/inscriptions
 *         #/documents  #/messagerie  #/historique  #/prelevement
 *         #/mot-de-passe  #/mot-de-passe-oublie  #/nouveau-mot-de-passe
 *         #/demander-un-dossier  #/confirmer-demande (demande.js: a
 *         family whose file waits for the town sees only its state,
 *         documents and password)
 *         (the leading "/" is optional: e-mailed links omit it)
 * The family (GET /api/me) is fetched once per login and kept in `ctx`.
 */

import * as api from "./api.js";
import * as F from "./format.js";
import { REQUEST_STATUS, cancelCost, labelOf, reasonText, unitLabel,
         waitWords }
    from "./planning.js";
import { h, id, announce, alertBox, cards, foldingMenu } from "./dom.js";
import { viewReserver } from "./reserver.js";
import { viewAgenda } from "./agenda.js";
import * as E from "./espace.js";
import { viewInscriptions } from "./inscriptions.js";
import { viewDocuments } from "./documents.js";
import { unreadCount, viewMessagerie } from "./messagerie.js";
import { viewHistorique } from "./historique.js";
import { paymentReturn } from "./paiement.js";
import { viewPrelevement } from "./prelevement.js";
import { viewMotDePasse, viewMotDePasseOublie, viewNouveauMotDePasse }
    from "./motdepasse.js";
import { viewCoordonnees } from "./coordonnees.js";
import { viewEntourage } from "./entourage.js";
import { viewSituation } from "./situation.js";
import { viewActiver, viewCgu, viewCreerEspace } from "./premiere.js";
import { viewAccessibilite, viewAide, viewMentions } from "./infos.js";
import { townBlocks } from "./publications.js";
import { viewCoResponsable, viewInvitation } from "./coresponsable.js";
import { pendingFile, viewConfirmerDemande, viewDemanderDossier,
         viewDossierEnAttente } from "./demande.js";

const main = document.getElementById("contenu");
const nav = document.getElementById("nav");

/* Shared with the pages: the family, and timers to stop on leaving. */
export const ctx = {
    me: null,
    cleanups: [],
    flash: null,
    onLeave: (fn) => ctx.cleanups.push(fn),
    page,
    expired,
    route: () => route(),
    refreshBadge: () => refreshBadge(),
};

const routes = {
    "/connexion": viewConnexion,
    "/tableau-de-bord": viewTableau,
    "/reserver": viewReserver,
    "/reservations": viewReservations,
    "/agenda": viewAgenda,
    "/factures": viewFactures,
    "/inscriptions": viewInscriptions,
    "/documents": viewDocuments,
    "/coordonnees": viewCoordonnees,
    "/entourage": viewEntourage,
    "/situation": viewSituation,
    "/creer-mon-espace": viewCreerEspace,
    "/demander-un-dossier": viewDemanderDossier,
    "/confirmer-demande": viewConfirmerDemande,
    "/activer": viewActiver,
    "/cgu": viewCgu,
    "/mentions-legales": viewMentions,
    "/accessibilite": viewAccessibilite,
    "/aide": viewAide,
    "/co-responsable": viewCoResponsable,
    "/invitation": viewInvitation,
    "/messagerie": viewMessagerie,
    "/historique": viewHistorique,
    "/prelevement": viewPrelevement,
    "/mot-de-passe": viewMotDePasse,
    "/mot-de-passe-oublie": viewMotDePasseOublie,
    "/nouveau-mot-de-passe": viewNouveauMotDePasse,
};

/* Pages shown without a session. */
const publicViews = new Set([viewConnexion, viewMotDePasseOublie,
                             viewNouveauMotDePasse, viewCreerEspace,
                             viewActiver, viewCgu, viewMentions,
                             viewAccessibilite, viewAide, viewInvitation,
                             viewDemanderDossier, viewConfirmerDemande]);

/* Public pages that keep the menu for a family logged in (the footer's). */
const infoViews = new Set([viewCgu, viewMentions, viewAccessibilite,
                           viewAide]);

/* What a family whose file waits for the town (issue 25, demande.js)
 * may open: its state, its documents, its password, the footer's pages;
 * any other route shows its state. */
const pendingPaths = new Set(["/tableau-de-bord", "/documents",
                              "/mot-de-passe"]);

/* The unread messages badge of the menu. */
async function refreshBadge() {
    const badge = document.getElementById("non-lus");
    if (!badge || !ctx.me) {
        return;
    }
    const n = await unreadCount();
    badge.hidden = !n;
    badge.textContent = n ? String(n) : "";
    badge.setAttribute("aria-label", n ? n + (n > 1 ? " messages non lus"
                                                    : " message non lu")
                                       : "");
}

/* Replace the page body; the h1 is the page title. */
function page(title, ...nodes) {
    document.title = title + " – Espace Famille";
    const flash = ctx.flash;
    ctx.flash = null;
    main.replaceChildren(...[h("h1", {}, title),
                             flash ? alertBox(flash.text, flash.kind) : null,
                             ...nodes].filter((n) => n !== null
                                                     && n !== undefined));
}

/* A 401 in the middle of a page: back to Connexion, then back here. */
function expired() {
    ctx.me = null;
    ctx.flash = { text: "Votre session a expiré. Reconnectez-vous.",
                  kind: "info" };
    sessionStorage.setItem("guichet.retour", location.hash);
    location.hash = "#/connexion";
}

function listOf(data, key) {
    if (Array.isArray(data)) {
        return data;
    }
    if (data && Array.isArray(data[key])) {
        return data[key];
    }
    return [];
}

let firstRoute = true;
let routeGen = 0;

async function route() {
    const gen = ++routeGen;
    for (const fn of ctx.cleanups.splice(0)) {
        try { fn(); } catch (e) { /* a timer already gone */ }
    }

    let path = (location.hash.slice(1) || "/tableau-de-bord").split("?")[0];
    if (!path.startsWith("/")) {
        path = "/" + path;
    }
    let view = routes[path] || viewTableau;

    if (!publicViews.has(view) && !ctx.me) {
        const r = await api.get("/api/me");
        /* a file asked online, not yet validated: the module does not
         * know the family (403; 503 catalogue_behind just after the
         * login), guichet-office does */
        const pending = r.status === 403 || (r.status === 503 && r.error
                                             && r.error.code
                                                === "catalogue_behind")
            ? await pendingFile() : null;
        if (pending) {
            ctx.me = { pending, family_id: pending.family_id,
                       children: pending.children || [] };
        } else if (r.status === 401 || r.status === 403) {
            sessionStorage.setItem("guichet.retour", location.hash);
            location.hash = "#/connexion";
            return;
        } else if (!r.ok) {
            nav.hidden = true;
            page("Espace Famille", alertBox(r.error.message),
                 h("p", {}, h("button", { class: "bouton", type: "button",
                                          onclick: route }, "Réessayer")));
            return;
        } else {
            ctx.me = r.data;
            refreshBadge();
        }
    }

    const waiting = Boolean(ctx.me && ctx.me.pending);
    if (waiting && !publicViews.has(view) && (!pendingPaths.has(path)
                                              || path === "/tableau-de-bord"))
    {
        view = viewDossierEnAttente;
    }
    for (const li of nav.querySelectorAll("li")) {
        const a = li.querySelector("a");
        li.hidden = waiting && a !== null
                    && !pendingPaths.has(a.getAttribute("href").slice(1));
    }

    nav.hidden = !ctx.me || (publicViews.has(view) && !infoViews.has(view));
    for (const a of nav.querySelectorAll("a")) {
        if (a.getAttribute("href") === "#" + path) {
            a.setAttribute("aria-current", "page");
        } else {
            a.removeAttribute("aria-current");
        }
    }

    /* A page still loading when the family has moved on (a slow answer,
     * a quick click) draws nothing over the newer one: its ctx.page is
     * this route's only. */
    await view(new Proxy(ctx, {
        get: (t, k) => (k === "page" ? (...a) => {
            if (gen === routeGen) {
                page(...a);
            }
        } : t[k]),
    }));
    if (gen !== routeGen) {
        return;
    }
    if (!firstRoute) {
        main.focus({ preventScroll: false });
    }
    firstRoute = false;
}

/* ---------------------------------------------------------------- */
/* Connexion */

function viewConnexion() {
    const err = h("div", { "aria-live": "assertive" });
    const login = h("input", { type: "text", id: "identifiant", name: "login",
                               autocomplete: "username", required: true,
                               autocapitalize: "none", spellcheck: "false" });
    const pass = h("input", { type: "password", id: "motdepasse",
                              name: "password", required: true,
                              autocomplete: "current-password" });
    const btn = h("button", { class: "bouton", type: "submit" }, "Connexion");

    const form = h("form", { class: "carte", novalidate: true },
        h("div", { class: "champ" },
          h("label", { for: "identifiant" }, "Identifiant"), login),
        h("div", { class: "champ" },
          h("label", { for: "motdepasse" }, "Mot de passe"), pass),
        err,
        h("div", { class: "boutons" }, btn),
        h("p", {}, h("a", { href: "#/mot-de-passe-oublie",
                            id: "lien-oubli" }, "Mot de passe oublié ?")),
        h("p", {}, "Première connexion ? ",
          h("a", { href: "#/creer-mon-espace", id: "lien-creer" },
            "Créer mon espace"),
          " avec le numéro de dossier et le code envoyés par la mairie."),
        h("p", {}, "Pas encore de dossier à la mairie ? ",
          h("a", { href: "#/demander-un-dossier", id: "lien-demande" },
            "Demander un dossier famille"), "."));

    form.addEventListener("submit", async (ev) => {
        ev.preventDefault();
        err.replaceChildren();
        if (!login.value.trim() || !pass.value) {
            err.replaceChildren(alertBox(
                "Indiquez votre identifiant et votre mot de passe."));
            (login.value.trim() ? pass : login).focus();
            return;
        }
        btn.disabled = true;
        btn.textContent = "Connexion…";
        const r = await api.post("/api/session",
                                 { login: login.value.trim(),
                                   password: pass.value });
        btn.disabled = false;
        btn.textContent = "Connexion";
        if (r.ok) {
            ctx.me = null;
            /* whose password « Mot de passe » changes */
            sessionStorage.setItem("guichet.login", login.value.trim());
            const back = sessionStorage.getItem("guichet.retour");
            sessionStorage.removeItem("guichet.retour");
            location.hash = back && back !== "#/connexion"
                ? back : "#/tableau-de-bord";
            return;
        }
        let msg;
        if (r.status === 401) {
            msg = "Identifiant ou mot de passe incorrect.";
        } else if (r.status === 429) {
            const s = r.retryAfter || 60;
            const when = s >= 90 ? Math.ceil(s / 60) + " minutes"
                                 : Math.ceil(s) + " secondes";
            msg = "Trop de tentatives de connexion : votre accès est "
                  + "bloqué pour le moment. Réessayez dans " + when + ".";
            btn.disabled = true;
            setTimeout(() => { btn.disabled = false; }, s * 1000);
        } else {
            msg = r.error.message;
        }
        err.replaceChildren(alertBox(msg));
        pass.value = "";
        pass.focus();
    });

    page("Connexion à mon espace",
         h("p", {}, "Connectez-vous avec l'identifiant et le mot de passe "
                    + "de votre Espace Famille."),
         form);
    if (!firstRoute || !location.hash.includes("connexion")) {
        /* focus is moved to main by route(); the field is one Tab away */
    }
}

/* ---------------------------------------------------------------- */
/* Tableau de bord */

function statusTag(status) {
    const words = Object.assign({
        validee: "Validée", demandee: "Demandée", refusee: "Refusée",
    }, REQUEST_STATUS);
    const kind = /positiv|validee|paid|payee/.test(status) ? "ok"
        : /negativ|refusee/.test(status) ? "ko" : "attente";
    return h("span", { class: "etiquette " + kind },
             words[status] || status || "—");
}

function childCard(me, child) {
    const today = F.todayParis();
    const enrol = (me.enrolments || []).filter((e) => e.child_id === child.id);
    return h("section", { class: "carte", "aria-labelledby": "enf-" + child.id },
        h("h3", { id: "enf-" + child.id }, child.first_name),
        child.birth_date
            ? h("p", { class: "discret" },
                F.ageOn(child.birth_date, today) + " ans · né(e) le "
                + F.dayLong(child.birth_date))
            : null,
        enrol.length
            ? h("ul", {}, enrol.map((e) => h("li", {},
                e.activity_name || e.activity_id, " ",
                e.from ? h("span", { class: "discret" },
                           "(du " + F.dayYear(e.from) + " au "
                           + F.dayYear(e.to) + ") ") : null,
                statusTag(e.status))))
            : h("p", { class: "discret" }, "Aucune inscription."));
}

/* An invoice's number as its PDF prints it: its régie's reference
 * ("CANTINE-000012", migration 0041), or "005002" for one made before. */
function invoiceNumber(inv) {
    if (inv.regie && inv.reference) {
        return String(inv.reference);
    }
    return /^\d+$/.test(String(inv.number)) ? String(inv.number)
        .padStart(6, "0") : String(inv.number || inv.id);
}

/* An invoice's period: "juillet 2027" for "2027-07". */
function periodWords(p) {
    return /^\d{4}-\d{2}$/.test(p || "") ? F.monthName(p + "-01")
                                           : p || "—";
}

function invoiceAmount(inv) {
    for (const k of ["total_cents", "amount_cents", "remaining_cents"]) {
        if (Number.isFinite(inv[k])) {
            return inv[k];
        }
    }
    return Math.round((Number(inv.total) || 0) * 100);
}

/* What is left to pay of an unpaid invoice: its total less its avoirs
 * (credit notes, due_cents of GET /api/invoices). */
function invoiceDue(inv) {
    return Number.isFinite(inv.due_cents) && !invoicePaid(inv)
        ? inv.due_cents : invoiceAmount(inv);
}

/* Its avoirs and refunds, in words under its amount (null: none). */
function invoiceCredits(inv) {
    const words = [];
    for (const c of inv.credit_notes || []) {
        words.push("avoir AV-" + c.number + " : −" + F.euros(c.amount_cents)
                   + (c.reason ? " (" + c.reason + ")" : ""));
    }
    for (const x of inv.refunds || []) {
        words.push("remboursé : " + F.euros(x.amount_cents));
    }
    if (words.length && !invoicePaid(inv) && Number.isFinite(inv.due_cents)) {
        words.push("reste à payer : " + F.euros(inv.due_cents));
    }
    return words.length ? h("small", { class: "avoirs" }, h("br"),
                            words.join(" · ")) : null;
}

function invoicePaid(inv) {
    return inv.paid === true || inv.status === "paid"
           || inv.status === "payee";
}

/* The family's right of access (RGPD, issue 25): its whole file as a
 * JSON download (GET /api/my-data, sent as an attachment). */
function myData() {
    return h("section", { class: "carte", id: "bloc-donnees",
                          "aria-labelledby": "t-donnees" },
        h("h2", { id: "t-donnees" }, "Mes données personnelles"),
        h("p", {}, "Téléchargez tout ce que la commune conserve sur votre "
          + "dossier : famille, enfants, entourage, inscriptions, "
          + "documents, réservations, demandes, factures, paiements, "
          + "messages et connexions (fichier JSON)."),
        h("p", {}, h("a", { class: "bouton second", id: "mes-donnees",
                            href: "/api/my-data", download: "" },
                     "Télécharger mes données")));
}

async function viewTableau() {
    const me = ctx.me;
    const demandes = h("section", { class: "carte", id: "bloc-demandes",
                                    "aria-labelledby": "t-demandes" },
        h("h2", { id: "t-demandes" }, "Mes demandes"),
        h("p", { class: "chargement" }, "Chargement…"));
    const factures = h("section", { class: "carte", id: "bloc-factures",
                                    "aria-labelledby": "t-factures" },
        h("h2", { id: "t-factures" }, "Mes factures"),
        h("p", { class: "chargement" }, "Chargement…"));

    /* "Dernière connexion le …" (issue 25): the login before the one of
     * this session, from the connections history (GET /api/history) */
    const last = h("p", { id: "derniere-connexion", class: "discret" });
    const today = F.todayParis();
    api.get("/api/history?from=" + F.addDays(today, -365) + "&to="
            + today).then((r) => {
        const list = r.ok && r.data && Array.isArray(r.data.connections)
            ? r.data.connections : [];
        if (list.length > 1 && list[1].at) {
            last.textContent = "Dernière connexion le "
                               + F.instant(list[1].at) + ".";
        } else if (list.length === 1) {
            last.textContent = "Première connexion à votre Espace Famille.";
        }
    });

    /* a new version of the terms of use asks again (issue 25) */
    const cgu = h("div", { id: "alerte-cgu" });
    api.get("/api/account").then((r) => {
        if (r.ok && r.data && r.data.cgu_ok === false) {
            cgu.replaceChildren(h("p", { class: "info" },
                "Les conditions d'utilisation de l'Espace Famille ont "
                + "changé. ",
                h("a", { href: "#/cgu" }, "Lire et accepter les "
                                          + "conditions d'utilisation")));
        }
    });

    /* documents ahead (issue 25): said before any booking */
    const pieces = h("div", { id: "alerte-pieces" });
    api.get("/api/documents/required").then((r) => {
        const n = r.ok && r.data ? Number(r.data.to_do) || 0 : 0;
        if (n > 0) {
            pieces.replaceChildren(h("p", { class: "info" },
                n === 1 ? "1 pièce à fournir ou à renouveler pour votre "
                          + "famille ou les activités de vos enfants. "
                        : n + " pièces à fournir ou à renouveler pour "
                          + "votre famille ou les activités de vos "
                          + "enfants. ",
                h("a", { href: "#/documents" }, "Voir les pièces à "
                                                + "fournir")));
        }
    });

    page("Tableau de bord",
        h("p", {}, "Bienvenue sur votre Espace Famille",
          me.town ? " — " + me.town : "", "."),
        last,
        cgu,
        pieces,
        ...townBlocks(),
        h("div", { class: "boutons" },
          h("a", { class: "bouton", href: "#/reserver" },
            "Modifier les réservations"),
          h("a", { class: "bouton second", href: "#/reservations" },
            "Justifier une absence"),
          h("a", { class: "bouton second", href: "#/factures" },
            "Mes factures"),
          h("a", { class: "bouton second", href: "#/inscriptions" },
            "Demander une inscription"),
          h("a", { class: "bouton second", href: "#/documents" },
            "Mes documents")),
        h("h2", {}, "Ma famille"),
        h("div", { class: "grille-cartes" },
          (me.children || []).map((c) => childCard(me, c))),
        h("div", { class: "grille-suivi" }, demandes, factures),
        myData());

    const [rq, inv] = await Promise.all([api.get("/api/requests"),
                                         api.get("/api/invoices")]);
    if (rq.status === 401 || inv.status === 401) {
        return expired();
    }

    if (rq.ok) {
        const list = listOf(rq.data, "requests");
        demandes.replaceChildren(demandes.firstChild, list.length
            ? requestsTable(list, me.children || [])
            : h("p", {}, "Aucune demande pour le moment."));
    } else if (api.isMissing(rq)) {
        demandes.remove();
    } else {
        demandes.replaceChildren(demandes.firstChild,
                                 alertBox(rq.error.message));
    }

    if (inv.ok) {
        const unpaid = listOf(inv.data, "invoices")
            .filter((i) => !invoicePaid(i));
        const due = unpaid.reduce((s, i) => s + invoiceAmount(i), 0);
        factures.replaceChildren(factures.firstChild,
            h("p", { class: "chiffre", id: "nb-impayees" }, unpaid.length),
            h("p", {}, unpaid.length === 0 ? "Aucune facture à payer."
                : (unpaid.length === 1 ? "facture à payer"
                                       : "factures à payer")
                  + " (" + F.euros(due) + ")."),
            h("a", { href: "#/factures" }, "Voir mes factures"));
    } else if (api.isMissing(inv)) {
        factures.remove();
    } else {
        factures.replaceChildren(factures.firstChild,
                                 alertBox(inv.error.message));
    }
}

/* What a demande was about, in words. */
function requestObject(r) {
    const n = Array.isArray(r.items) ? r.items.length : 0;
    switch (r.type || "booking") {
    case "booking":
        return n ? "Réservation de " + n + (n > 1 ? " séances" : " séance")
                 : "Réservation de séances";
    case "cancellation":
        return "Annulation d'une réservation"
               + (r.billed ? " (facturée)" : "");
    case "justification":
        return "Justification d'absence";
    default:
        return String(r.type);
    }
}

/* A session in words from its id when the town names it
 * "<activity>-<YYYYMMDD>-<UNIT>" (calendar blocks do), else the id. */
function sessionWords(sid) {
    const m = /-(\d{4})(\d{2})(\d{2})-([A-Z_-]+)$/.exec(sid || "");
    return m ? F.dayLong(m[1] + "-" + m[2] + "-" + m[3]) + ", "
               + unitLabel(m[4]) : "séance " + sid;
}

/* A booking demande opens on its cells, each with its outcome. */
function requestCells(r, kids) {
    const items = Array.isArray(r.items) ? r.items : [];
    if (items.length === 0) {
        return null;
    }
    const name = (cid) => (kids.find((c) => c.id === cid)
                           || { first_name: cid }).first_name;
    return h("details", { class: "detail-demande" },
        h("summary", {}, "Voir " + (items.length > 1
            ? "les " + items.length + " séances" : "la séance"),
          h("span", { class: "visually-hidden" },
            " de la demande N° " + (r.request_id || r.number || r.id))),
        h("ul", {}, items.map((it) => h("li", {
                dataset: { status: it.status || "" } },
            name(it.child_id) + " — " + sessionWords(it.session_id) + " : ",
            h("strong", {}, it.status === "confirmed"
                ? "Réservé" + (Number.isFinite(it.price_cents)
                               ? " (" + F.euros(it.price_cents) + ")" : "")
                : reasonText(it, F.instant))))));
}

function requestsTable(list, kids) {
    const rows = list.slice().sort((a, b) =>
        String(b.created_at || b.date || "")
            .localeCompare(String(a.created_at || a.date || "")));
    return cards(h("div", { class: "tableau-defilant" }, h("table", {},
        h("caption", { class: "visually-hidden" }, "Mes demandes"),
        h("thead", {}, h("tr", {},
            h("th", { scope: "col" }, "N°"),
            h("th", { scope: "col" }, "Date"),
            h("th", { scope: "col" }, "Objet"),
            h("th", { scope: "col" }, "Statut"))),
        h("tbody", {}, rows.slice(0, 20).map((r) => {
            const num = r.request_id || r.number || r.id;
            const when = r.created_at || r.date;
            const reasons = (Array.isArray(r.reasons) ? r.reasons
                : (r.reason ? [r.reason] : []))
                .map((x) => typeof x === "string"
                     ? reasonText({ reason: x }, F.instant) : String(x));
            return h("tr", { dataset: { demande: num } },
                h("td", { class: "sans-coupure" }, "Demande N° " + num),
                h("td", {}, when ? (when.length > 10 ? F.instantShort(when)
                                                     : F.dayYear(when))
                                 : "—"),
                h("td", {}, requestObject(r), requestCells(r, kids)),
                h("td", {}, statusTag(r.status),
                  reasons.length ? h("span", { class: "discret" },
                                     " " + reasons.join(" ; ")) : null));
        })))));
}

/* ---------------------------------------------------------------- */
/* Mes réservations */

function dialog(title, body, actions) {
    const titleId = id("dlg");
    const dlg = h("dialog", { "aria-labelledby": titleId },
                  h("h2", { id: titleId }, title), body,
                  h("div", { class: "boutons" }, actions));
    document.body.appendChild(dlg);
    /* a new page (the back button too) closes it */
    const leave = () => dlg.close();
    window.addEventListener("hashchange", leave);
    dlg.addEventListener("close", () => {
        window.removeEventListener("hashchange", leave);
        dlg.remove();
    });
    dlg.showModal();
    return dlg;
}

async function viewReservations() {
    const today = F.todayParis();
    const q = new URLSearchParams(location.hash.split("?")[1] || "");
    /* by default what is upcoming: the coming year */
    const upcoming = !q.get("du") && !q.get("au");
    const from = q.get("du") || today;
    const to = q.get("au") || F.addDays(from, 365);

    const du = h("input", { type: "date", id: "res-du", value: from });
    const au = h("input", { type: "date", id: "res-au", value: to });
    const out = h("div", { id: "liste-reservations", "aria-live": "polite" },
                  h("p", { class: "chargement" }, "Chargement…"));
    const form = h("form", { class: "outils-periode" },
        h("div", { class: "champ" }, h("label", { for: "res-du" }, "Du"), du),
        h("div", { class: "champ" }, h("label", { for: "res-au" }, "Au"), au),
        h("div", { class: "champ" },
          h("button", { class: "bouton second", type: "submit" },
            "Afficher")));
    form.addEventListener("submit", (ev) => {
        ev.preventDefault();
        location.hash = "#/reservations?du=" + du.value + "&au=" + au.value;
    });

    const wl = h("section", { id: "listes-attente", "aria-live": "polite" });
    page("Mes réservations", form, out, wl);
    waitlists(wl);

    const r = await api.getSpan("/api/bookings", from, to, "bookings");
    if (r.status === 401) {
        return expired();
    }
    if (!r.ok) {
        out.replaceChildren(alertBox(r.error.message));
        return;
    }
    const list = r.list.filter((b) => b.status !== "cancelled");
    if (list.length === 0) {
        out.replaceChildren(h("p", {}, upcoming
                                ? "Aucune réservation à venir."
                                : "Aucune réservation sur cette période."),
                            h("a", { class: "bouton", href: "#/reserver" },
                              "Modifier les réservations"));
        return;
    }

    /* Absences already justified: the family's justification demandes,
     * and what the town decided (GET /api/justifications, issue 25). */
    const justified = new Set();
    const rq = await api.get("/api/requests");
    for (const d of rq.ok ? listOf(rq.data, "requests") : []) {
        if (d.type === "justification" && d.booking_id) {
            justified.add(d.booking_id);
        }
    }
    const examined = new Map();
    const rj = await api.get("/api/justifications");
    for (const a of rj.ok ? listOf(rj.data, "absences") : []) {
        examined.set(a.booking_id, a);
        justified.add(a.booking_id);
    }

    /* Which bookings are past their cancellation deadline: the session's
     * cancel_until says (the activity's cancel_deadline), or, from a
     * server without it, its status (the booking deadline). */
    const closed = new Set();
    const byAct = new Map();
    for (const b of list) {
        if (b.activity_id) {
            byAct.set(b.activity_id, true);
        }
    }
    await Promise.all(Array.from(byAct.keys()).map(async (aid) => {
        const first = list.find((b) => b.activity_id === aid).date;
        const last = list.filter((b) => b.activity_id === aid)
            .reduce((m, b) => (b.date > m ? b.date : m), first);
        const s = await api.getSpan("/api/activities/"
                                    + encodeURIComponent(aid) + "/sessions",
                                    first, last, "sessions");
        for (const x of (s.ok ? s.list : [])) {
            const c = cancelCost(x, api.serverNow());
            if (c.billed === null ? x.status === "closed" : c.billed) {
                closed.add(x.id || x.session_id);
            }
        }
    }));

    const total = r.total_cents !== null ? r.total_cents
        : list.reduce((s, b) => s + (Number(b.price_cents) || 0), 0);

    const rows = list.map((b) => {
        const late = closed.has(b.session_id);
        const who = b.first_name || b.child_id;
        const what = F.dayLong(b.date) + ", " + labelOf(b);
        return h("tr", { dataset: { booking: b.booking_id } },
            h("td", {}, who),
            h("td", {}, b.activity_name || b.activity_id),
            h("td", {}, F.dayShort(b.date) + " " + b.date.slice(0, 4)),
            h("td", {}, labelOf(b),
              b.starts_at ? h("span", { class: "discret" },
                              " " + F.time(b.starts_at) + "–"
                              + F.time(b.ends_at)) : null),
            h("td", { class: "montant" }, F.euros(b.price_cents)),
            h("td", {}, b.request_id ? "N° " + b.request_id : "—",
              justified.has(b.booking_id)
                  ? justificationTag(examined.get(b.booking_id)) : null),
            h("td", {}, h("div", { class: "boutons" },
                h("button", { class: "bouton danger petit", type: "button",
                              "aria-label": "Annuler : " + who + ", " + what,
                              onclick: () => cancelBooking(b, who, what,
                                                           late) },
                  "Annuler"),
                justified.has(b.booking_id) ? null
                : h("button", { class: "bouton second petit", type: "button",
                                "aria-label": "Justifier une absence : "
                                              + who + ", " + what,
                                onclick: () => justify(b, who, what) },
                    "Justifier une absence"))));
    });

    out.replaceChildren(
        cards(h("div", { class: "tableau-defilant" }, h("table", {},
            h("caption", {}, upcoming ? "Réservations à venir"
                             : "Réservations du " + F.dayLong(from) + " au "
                               + F.dayLong(to)),
            h("thead", {}, h("tr", {},
                h("th", { scope: "col" }, "Enfant"),
                h("th", { scope: "col" }, "Activité"),
                h("th", { scope: "col" }, "Date"),
                h("th", { scope: "col" }, "Séance"),
                h("th", { scope: "col", class: "montant" }, "Prix"),
                h("th", { scope: "col" }, "Demande"),
                h("th", { scope: "col" }, "Actions"))),
            h("tbody", {}, rows),
            h("tfoot", {}, h("tr", {},
                h("th", { scope: "row", colspan: "4" }, "Total de la période"),
                h("td", { class: "montant", id: "total-periode" },
                  F.euros(total)),
                h("td", { colspan: "2" })))))),
        h("p", { class: "discret" },
          "Une annulation après le délai reste facturée, sauf absence "
          + "justifiée que la mairie accepte (certificat médical ou autre "
          + "motif qu'elle reconnaît)."));
}

/* The family's places on waiting lists (issue 23), and leaving one. */
async function waitlists(box) {
    const r = await api.get("/api/waitlist");
    const list = r.ok && r.data ? r.data.waitlist || [] : [];
    if (list.length === 0) {
        box.replaceChildren();
        return;
    }
    const kids = new Map();
    for (const c of (ctx.me && ctx.me.children) || []) {
        kids.set(c.id, c.first_name);
    }
    const rows = list.map((w) => {
        const who = kids.get(w.child_id) || w.child_id;
        const what = (w.activity_name || w.activity_id) + ", "
                     + F.dayLong(w.date) + " (" + (w.unit_label || w.unit)
                     + ")";
        const b = h("button", { class: "bouton danger petit", type: "button",
                                "aria-label": "Quitter la liste d'attente : "
                                              + who + ", " + what },
                    "Quitter la liste");
        b.addEventListener("click", async () => {
            b.disabled = true;
            const x = await api.del("/api/waitlist/"
                                    + encodeURIComponent(w.session_id) + "/"
                                    + encodeURIComponent(w.child_id));
            announce(x.ok ? who + " a quitté la liste d'attente du "
                            + what + "."
                          : x.error.message);
            waitlists(box);
        });
        if (w.status === "offered") {
            return offerRow(box, w, who, what);
        }
        return h("li", { dataset: { session: w.session_id,
                                    child: w.child_id } },
                 who + " — " + what + " : ",
                 h("strong", {}, waitWords(w.position)), " ", b);
    });
    box.replaceChildren(h("h2", {}, "Listes d'attente"),
        h("p", { class: "discret" },
          "Dès qu'une place se libère, elle est réservée (ou, selon "
          + "l'activité, proposée pour un temps limité) pour le premier "
          + "enfant de la liste qui remplit encore les conditions ; un "
          + "e-mail vous le dit."),
        h("ul", { class: "resultats" }, rows));
}

/*
 * A place held for a child (an activity whose waiting list offers, issue
 * 23): "Une place vous est proposée jusqu'au …", accept (a booking of
 * that cell with "offer": true) or decline (leaving the list).
 */
function offerRow(box, w, who, what) {
    const until = F.instant(w.offer_until);
    const yes = h("button", { class: "bouton petit", type: "button",
                              "aria-label": "Accepter la place : " + who
                                            + ", " + what },
                  "Accepter la place");
    const no = h("button", { class: "bouton danger petit", type: "button",
                             "aria-label": "Refuser la place : " + who
                                           + ", " + what },
                 "Refuser");
    yes.addEventListener("click", async () => {
        yes.disabled = no.disabled = true;
        const r = await api.submitBookings(
            [{ child_id: w.child_id, session_id: w.session_id,
               offer: true }], api.newIdempotencyKey());
        if (r.status === 401) {
            return expired();
        }
        const it = r.ok && r.data && r.data.items ? r.data.items[0] : null;
        if (it && it.status === "confirmed") {
            ctx.flash = { kind: "succes",
                          text: "Place réservée : " + who + ", " + what
                                + "." };
            route();
            return;
        }
        announce(it ? "La place n'a pas pu être réservée : "
                      + reasonText(it, F.instant) + "."
                    : r.error.message);
        waitlists(box);
    });
    no.addEventListener("click", async () => {
        yes.disabled = no.disabled = true;
        const x = await api.del("/api/waitlist/"
                                + encodeURIComponent(w.session_id) + "/"
                                + encodeURIComponent(w.child_id));
        announce(x.ok ? "Place refusée : " + who + ", " + what
                        + ". Elle est proposée à la famille suivante."
                      : x.error.message);
        waitlists(box);
    });
    return h("li", { class: "offre", dataset: { session: w.session_id,
                                                child: w.child_id,
                                                offre: w.offer_until } },
             who + " — " + what + " : ",
             h("strong", {}, "Une place vous est proposée jusqu'au "
                             + until), " ", yes, " ", no);
}

function cancelBooking(b, who, what, late) {
    const msg = h("div", { "aria-live": "polite" });
    const ok = h("button", { class: "bouton danger", type: "button" },
                 "Confirmer l'annulation");
    const dlg = dialog("Annuler une réservation",
        h("div", {},
          h("p", {}, who + " — " + (b.activity_name || "") + " — " + what),
          late ? alertBox("Le délai d'annulation est dépassé : cette "
                          + "séance restera facturée. En cas de maladie, "
                          + "justifiez plutôt l'absence avec un certificat "
                          + "médical.")
               : h("p", {}, "La place sera remise en ligne aussitôt."),
          msg),
        [ok, h("button", { class: "bouton second", type: "button",
                           onclick: () => dlg.close() },
               "Garder la réservation")]);
    ok.addEventListener("click", async () => {
        ok.disabled = true;
        const r = await api.del("/api/bookings/"
                                + encodeURIComponent(b.booking_id));
        if (r.status === 401) {
            dlg.close();
            return expired();
        }
        if (r.ok) {
            dlg.close();
            ctx.flash = {
                kind: "succes",
                text: "Réservation annulée : " + who + ", " + what + "."
                      + (r.data && r.data.billed
                         ? " Annulation hors délai : la séance reste "
                           + "facturée." : ""),
            };
            route();
            return;
        }
        ok.disabled = false;
        msg.replaceChildren(alertBox(api.isMissing(r)
            ? "L'annulation en ligne n'est pas encore disponible. "
              + "Contactez le service enfance de la mairie."
            : r.error.message));
    });
}

/* What the town made of a booking's justification (a, from GET
 * /api/justifications; undefined: only the demande is known). */
function justificationTag(a) {
    if (a && a.status === "acceptee") {
        return h("span", { class: "etiquette ok absence" },
                 "Justificatif accepté : non facturée");
    }
    if (a && a.status === "refusee") {
        return h("span", { class: "etiquette ko absence" },
                 "Justificatif refusé" + (a.refusal_reason
                     ? " : " + a.refusal_reason : "")
                 + " (séance facturée ; voir la messagerie)");
    }
    return h("span", { class: "etiquette attente absence" },
             "Absence signalée : justificatif en cours d'examen "
             + "par la mairie");
}

/* The town's reasons of absence (GET /api/absence-reasons); the medical
 * certificate alone from a server without them. */
async function absenceReasons() {
    const r = await api.get("/api/absence-reasons");
    const list = r.ok ? listOf(r.data, "reasons") : [];
    return list.length ? list
        : [{ code: "medical", label: "Maladie (certificat médical)",
             proof_required: true }];
}

async function justify(b, who, what) {
    const reasons = await absenceReasons();
    const msg = h("div", { "aria-live": "polite" });
    const motif = h("select", { id: "abs-motif" }, reasons.map((x) =>
        h("option", { value: x.code }, x.label
          + (x.proof_required ? " — justificatif demandé" : ""))));
    const doc = h("input", { type: "file", id: "abs-doc", required: true,
                             accept: E.ACCEPT,
                             "aria-describedby": "abs-doc-aide" });
    const docLabel = h("label", { for: "abs-doc" }, "Justificatif");
    const bar = E.uploadProgress();
    const ok = h("button", { class: "bouton", type: "submit" },
                 "Envoyer le justificatif");
    const reason = () => reasons.find((x) => x.code === motif.value)
                         || reasons[0];
    const proofNeeded = () => reason().proof_required !== false;
    const showProof = () => {
        doc.required = proofNeeded();
        docLabel.textContent = proofNeeded()
            ? (motif.value === "medical" ? "Certificat médical"
                                         : "Justificatif")
            : "Justificatif (facultatif)";
    };
    motif.addEventListener("change", showProof);
    showProof();
    const form = h("form", {},
        h("p", {}, who + " — " + (b.activity_name || "") + " — " + what),
        h("div", { class: "champ" },
          h("label", { for: "abs-motif" }, "Motif"), motif),
        h("div", { class: "champ" },
          docLabel, doc,
          h("span", { id: "abs-doc-aide", class: "discret" },
            E.UPLOAD_HELP + " Le justificatif est joint à vos documents "
            + "et examiné par la mairie : l'absence n'est pas facturée "
            + "une fois qu'elle l'a accepté.")), bar.node,
        msg, h("div", { class: "boutons" }, ok));
    E.clearOnInput(form, msg);
    const dlg = dialog("Justifier une absence", form,
        [h("button", { class: "bouton second", type: "button",
                       onclick: () => dlg.close() }, "Fermer")]);
    form.addEventListener("submit", async (ev) => {
        ev.preventDefault();
        msg.replaceChildren();
        const file = doc.files && doc.files[0];
        if (!file && proofNeeded()) {
            msg.replaceChildren(alertBox(motif.value === "medical"
                ? "Joignez le certificat médical."
                : "Joignez le justificatif : ce motif en demande un."));
            doc.focus();
            return;
        }
        ok.disabled = true;
        /* the proof first, then the absence that cites it; a proof
         * already sent for this booking is reused */
        let docId = b.__certificat;
        if (!docId && file) {
            const u = await E.uploadDocument(file, motif.value === "medical"
                                             ? "certificat_medical"
                                             : "justificatif_absence",
                                             b.child_id, bar.set);
            bar.hide();
            if (u.status === 401) {
                dlg.close();
                return expired();
            }
            if (!u.ok) {
                ok.disabled = false;
                msg.replaceChildren(alertBox(api.isMissing(u)
                    ? "Le dépôt de justificatif en ligne n'est pas encore "
                      + "disponible. Envoyez le certificat au service "
                      + "enfance."
                    : u.error.message));
                return;
            }
            docId = String(E.pick(u.data, "id", "document_id"));
            b.__certificat = docId;
        }
        const body = { booking_id: b.booking_id, reason: motif.value };
        if (docId) {
            body.document_id = docId;
        }
        const r = await api.post("/api/absences", body);
        ok.disabled = false;
        if (r.status === 401) {
            dlg.close();
            return expired();
        }
        if (r.ok) {
            dlg.close();
            ctx.flash = { kind: "succes", text: "Absence signalée pour "
                + who + " (" + what + "). Justificatif en cours d'examen "
                + "par la mairie : une fois accepté, l'absence n'est pas "
                + "facturée ; un refus vous est expliqué dans la "
                + "messagerie." };
            route();
            return;
        }
        msg.replaceChildren(alertBox(api.isMissing(r)
            ? "La justification d'absence en ligne n'est pas encore "
              + "disponible. Envoyez le certificat au service enfance par "
              + "la messagerie."
            : r.error.message));
    });
}

/* ---------------------------------------------------------------- */
/* Mes factures */

async function viewFactures() {
    const out = h("div", { id: "liste-factures" },
                  h("p", { class: "chargement" }, "Chargement…"));
    const q = new URLSearchParams(location.hash.split("?")[1] || "");
    const op = q.get("paiement");
    page("Mes factures",
         op ? await paymentReturn(ctx, op) : null,
         h("p", { class: "info", id: "regle-paiement" },
           "Le paiement partiel n'est pas autorisé : chaque facture cochée "
           + "est payée en totalité."),
         out);

    const r = await api.get("/api/invoices");
    if (r.status === 401) {
        return expired();
    }
    if (api.isMissing(r)) {
        out.replaceChildren(h("p", {}, "Vos factures ne sont pas encore "
                                       + "consultables en ligne. Elles vous "
                                       + "sont envoyées chaque mois."));
        return;
    }
    if (!r.ok) {
        out.replaceChildren(alertBox(r.error.message));
        return;
    }
    const list = listOf(r.data, "invoices");
    if (list.length === 0) {
        out.replaceChildren(h("p", {}, "Aucune facture."));
        return;
    }

    const debit = !!(ctx.me && ctx.me.direct_debit);
    const boxes = [];
    const sum = h("strong", { id: "somme-cochee" }, F.euros(0));
    const pay = h("button", { class: "bouton", type: "submit", disabled: true },
                  "Payer les factures cochées");
    const msg = h("div", { "aria-live": "polite" });

    const refresh = () => {
        const chosen = boxes.filter((b) => b.box.checked);
        sum.textContent = F.euros(chosen.reduce((s, b) =>
            s + invoiceDue(b.inv), 0));
        pay.disabled = chosen.length === 0;
    };

    const rows = list.map((inv) => {
        const paid = invoicePaid(inv);
        const num = invoiceNumber(inv);
        let box = null;
        if (!paid && !debit) {
            box = h("input", { type: "checkbox", id: "fac-" + inv.id,
                               onchange: refresh });
            boxes.push({ box, inv });
        }
        return h("tr", {},
            h("td", { class: box ? "choix" : null }, box
                ? h("label", { for: "fac-" + inv.id }, box,
                    h("span", { class: "visually-hidden" },
                      "Payer la facture "), "N° " + num)
                : "N° " + num),
            h("td", {}, periodWords(inv.period || inv.month)),
            h("td", { class: "montant" }, F.euros(invoiceAmount(inv)),
              invoiceCredits(inv)),
            h("td", {}, inv.due_date ? F.dayLong(inv.due_date) : "—"),
            h("td", {}, paid ? h("span", { class: "etiquette ok" }, "Payée")
                             : h("span", { class: "etiquette attente" },
                                 "À payer")),
            h("td", {}, h("a", {
                href: "/api/invoices/" + encodeURIComponent(inv.id) + ".pdf",
                download: "" }, "Télécharger (PDF)",
                h("span", { class: "visually-hidden" }, " facture " + num))));
    });

    const table = cards(h("div", { class: "tableau-defilant" }, h("table", {},
        h("caption", { class: "visually-hidden" }, "Mes factures"),
        h("thead", {}, h("tr", {},
            h("th", { scope: "col" }, "Facture"),
            h("th", { scope: "col" }, "Période"),
            h("th", { scope: "col", class: "montant" }, "Montant"),
            h("th", { scope: "col" }, "À payer avant le"),
            h("th", { scope: "col" }, "État"),
            h("th", { scope: "col" }, "Document"))),
        h("tbody", {}, rows))));

    if (debit) {
        out.replaceChildren(table, alertBox("Vous êtes en prélèvement "
            + "automatique : vos factures sont prélevées à l'échéance, "
            + "pas de paiement en ligne.", "info"),
            h("p", {}, h("a", { href: "#/prelevement" },
                         "Voir mon mandat de prélèvement")));
        return;
    }

    const form = h("form", {}, table,
        h("div", { class: "boutons" }, h("span", {}, "Total coché : ", sum),
          pay), msg);
    form.addEventListener("submit", async (ev) => {
        ev.preventDefault();
        const ids = boxes.filter((b) => b.box.checked).map((b) => b.inv.id);
        if (ids.length === 0) {
            return;
        }
        pay.disabled = true;
        const p = await api.post("/api/payments", { invoice_ids: ids });
        if (p.status === 401) {
            return expired();
        }
        const url = p.ok && p.data && (p.data.redirect_url
                                       || p.data.payment_url);
        if (url && /^(https?:\/\/|\/)/.test(url)) {
            location.assign(url);
            return;
        }
        if (p.ok) {
            ctx.flash = { kind: "succes",
                          text: "Paiement enregistré. Merci." };
            route();
            return;
        }
        pay.disabled = false;
        msg.replaceChildren(alertBox(api.isMissing(p)
            ? "Le paiement en ligne n'est pas encore disponible. Vous "
              + "pouvez payer à la régie de la mairie."
            : p.error.message));
    });
    out.replaceChildren(form);
}

/* ---------------------------------------------------------------- */

document.getElementById("deconnexion").addEventListener("click", async () => {
    await api.del("/api/session");
    ctx.me = null;
    ctx.flash = { text: "Vous êtes déconnecté.", kind: "info" };
    announce("Vous êtes déconnecté.");
    location.hash = "#/connexion";
});

foldingMenu(nav);
window.addEventListener("hashchange", route);
route();
