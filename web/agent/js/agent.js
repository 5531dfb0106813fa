/*
 * agent.js -- the town's back office (web/agent/): a small hash-routed
 * page set for staff, on the /api/staff/ routes of guichet-office and the
 * module's counter (POST /api/staff/bookings), docs/api.md.  This file
 * is the router: the routes, the menu, the logout; the frame the views
 * share (session, staff calls, page) is shell.js, each view a module.
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
 * (#/connexion: connexion.js; #/inscriptions: inscriptions.js;
 * #/documents: documents.js; #/familles: familles.js; #/guichet:
 * guichet.js; #/facturation, #/paiements: facturation.js; #/journal:
 * journal.js; #/activites: activites.js; #/nouvelle-famille, #/dossier:
 * dossier.js; #/caisse: caisse.js; #/commune: commune.js; #/messagerie:
 * messagerie.js; #/absences: absences.js; #/reglages: reglages.js;
 * #/listes: listes.js; #/adresses: adresses.js; #/entourage:
 * entourage.js; #/quotient: quotient.js)
 */

import { foldingMenu } from "../../js/dom.js";
import { main, KEY, RANK, staff, setStaff, call, get, post, del, setFlash,
         setRouter, page, table, loading, askReason }
    from "./shell.js";
import { viewConnexion } from "./connexion.js";
import { viewInscriptions } from "./inscriptions.js";
import { openFile, viewDocuments } from "./documents.js";
import { familyName, viewFamilles } from "./familles.js";
import { viewGuichet } from "./guichet.js";
import { viewFacturation, viewPaiements } from "./facturation.js";
import { viewJournal } from "./journal.js";
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

const nav = document.getElementById("nav");

/* ---------------------------------------------------------------- */
/* router */

/* What the views of other files get of this frame. */
function frame() {
    return { call, page, table, loading, main, route,
             rank: staff ? RANK[staff.role] || 1 : 0,
             token: () => staff && staff.token,
             flash: (f) => { setFlash(f); } };
}

const routes = {
    "/connexion": viewConnexion,
    "/inscriptions": viewInscriptions,
    "/documents": viewDocuments,
    "/adresses": () => viewAdresses({
        page, get, post, askReason, familyName,
        done: (text) => {
            setFlash({ kind: "succes", text });
            route();
        } }),
    "/demandes": () => viewDemandes({
        page, get, post, askReason,
        done: (text) => {
            setFlash({ kind: "succes", text });
            route();
        } }),
    "/entourage": () => viewEntourage({
        page, get, call,
        done: (text) => {
            setFlash({ kind: "succes", text });
            route();
        } }),
    "/quotient": () => viewQuotient({
        page, get, post, askReason, familyName, openFile,
        done: (text) => {
            setFlash({ kind: "succes", text });
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
            setFlash({ kind: "succes", text });
            route();
        } }),
    "/reglages": () => viewReglages({
        page, get, call, loading,
        done: (text) => {
            setFlash({ kind: "succes", text });
            route();
        } }),
    "/absences": () => viewAbsences({
        page, get, post, askReason, familyName, openFile,
        done: (text) => {
            setFlash({ kind: "succes", text });
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
    setStaff(null);
    sessionStorage.removeItem(KEY);
    setFlash({ kind: "info", text: "Vous êtes déconnecté." });
    location.hash = "#/connexion";
});

setRouter(route);
foldingMenu(nav);
window.addEventListener("hashchange", route);
route();
