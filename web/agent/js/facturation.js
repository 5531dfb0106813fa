/*
 * facturation.js -- the back office's "Facturation" (#/facturation) and
 * "Paiements" (#/paiements): a month's invoicing run, the online
 * payments and the SEPA direct debits exported.
 */

import * as F from "../../js/format.js";
import { h, alertBox } from "../../js/dom.js";
import { field, listOf, pick, shortRef, when } from "../../js/espace.js";
import { get, post, missing, page, table, loading, notYet } from "./shell.js";
import { familyName } from "./familles.js";

export async function viewFacturation() {
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

export async function viewPaiements() {
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
