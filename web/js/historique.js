/*
 * historique.js -- the family space's "Historique" (#/historique): the
 * family's logins and payments (GET /api/history).
 */

import * as api from "./api.js";
import * as F from "./format.js";
import { h, alertBox } from "./dom.js";
import { listOf, notYet, pick, statusTag, when } from "./espace.js";

export async function viewHistorique(ctx) {
    const q = new URLSearchParams(location.hash.split("?")[1] || "");
    const par = q.get("par") === "semaine" ? "semaine" : "mois";
    const today = F.todayParis();
    const anchor = /^\d{4}-\d\d-\d\d$/.test(q.get("du") || "")
        ? q.get("du") : today;
    const from = par === "semaine" ? F.mondayOf(anchor)
                                   : anchor.slice(0, 8) + "01";
    const to = par === "semaine" ? F.addDays(from, 6) : F.lastOfMonth(from);
    const go = (p, d) => { location.hash = "#/historique?par=" + p
                                           + "&du=" + d; };
    const prev = par === "semaine" ? F.addDays(from, -7)
                                   : F.addDays(from, -1).slice(0, 8) + "01";
    const next = F.addDays(to, 1);

    const bascule = h("div", { class: "bascule", role: "group",
                               "aria-label": "Période" },
        h("button", { type: "button", "aria-pressed": String(par === "semaine"),
                      onclick: () => go("semaine", anchor) }, "Semaine"),
        h("button", { type: "button", "aria-pressed": String(par === "mois"),
                      onclick: () => go("mois", anchor) }, "Mois"));
    const out = h("div", { id: "historique" },
                  h("p", { class: "chargement" }, "Chargement…"));
    ctx.page("Historique",
        h("div", { class: "outils-periode" }, bascule,
          h("button", { class: "bouton second", type: "button",
                        onclick: () => go(par, prev) }, "Précédent"),
          h("button", { class: "bouton second", type: "button",
                        onclick: () => go(par, next) }, "Suivant")),
        h("p", { id: "periode-historique" }, par === "semaine"
          ? "Semaine du " + F.dayLong(from) + " au " + F.dayLong(to)
          : "Mois de " + F.monthName(from)),
        out);

    const r = await api.get("/api/history?from=" + from + "&to=" + to);
    if (r.status === 401) {
        return ctx.expired();
    }
    if (api.isMissing(r)) {
        return notYet(ctx, "Historique", "L'historique");
    }
    if (!r.ok) {
        out.replaceChildren(alertBox(r.error.message));
        return;
    }
    const cx = listOf(r.data && r.data.connections, "connections");
    const pays = listOf(r.data && r.data.payments, "payments");
    out.replaceChildren(
        h("h2", {}, "Connexions"),
        cx.length === 0 ? h("p", {}, "Aucune connexion sur la période.")
        : h("div", { class: "tableau-defilant" }, h("table", {
                id: "table-connexions" },
            h("caption", { class: "visually-hidden" }, "Connexions"),
            h("thead", {}, h("tr", {},
                h("th", { scope: "col" }, "Date"),
                h("th", { scope: "col" }, "Heure"),
                h("th", { scope: "col" }, "Adresse IP"))),
            h("tbody", {}, cx.map((c) => {
                const at = pick(c, "at", "created_at", "date");
                return h("tr", {},
                    h("td", {}, at ? F.dayYear(F.todayParis(Date.parse(at)))
                                   : "—"),
                    h("td", {}, at ? F.time(at) : "—"),
                    h("td", {}, c.ip || "—"));
            })))),
        h("h2", {}, "Paiements"),
        pays.length === 0 ? h("p", {}, "Aucun paiement sur la période.")
        : h("div", { class: "tableau-defilant" }, h("table", {
                id: "table-paiements" },
            h("caption", { class: "visually-hidden" }, "Paiements"),
            h("thead", {}, h("tr", {},
                h("th", { scope: "col" }, "Date"),
                h("th", { scope: "col" }, "Moyen"),
                h("th", { scope: "col" }, "Factures"),
                h("th", { scope: "col", class: "montant" }, "Montant"),
                h("th", { scope: "col" }, "État"))),
            h("tbody", {}, pays.map((p) => h("tr", {},
                h("td", {}, when(pick(p, "paid_at", "at", "created_at"))),
                h("td", {}, { online: "En ligne", payfip: "En ligne",
                              direct_debit: "Prélèvement",
                              counter: "À la régie" }[p.method]
                            || p.method || "—"),
                h("td", {}, (p.invoice_numbers || p.invoices
                             || p.invoice_ids || []).join(", ")),
                h("td", { class: "montant" },
                  F.euros(pick(p, "amount_cents", "total_cents"))),
                h("td", {}, statusTag(p.status))))))));
}
