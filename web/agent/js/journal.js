/*
 * journal.js -- the back office's "Journal" (#/journal, admin): the audit
 * rows of a family, or of a target (document:12, ...).
 */

import { h, alertBox } from "../../js/dom.js";
import { field, listOf, when } from "../../js/espace.js";
import { get, missing, page, table, loading, notYet } from "./shell.js";
import { findFamily } from "./familles.js";

export async function viewJournal() {
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
