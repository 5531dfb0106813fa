/*
 * caisse.js -- the régie's counter in the back office (issue 26): a
 * family's unpaid invoices, paid at the counter by cash, cheque, CESU or
 * transfer (whole invoices), its credit notes (avoirs) and refunds, the
 * month's counter payments, and the month's CSV for the town's
 * accounting.  Routes of office/counter.c and office/credit.c,
 * docs/api.md (*Payments*).
 *
 * agent.js gives the frame (ctx: call, page, table, loading, flash,
 * route, token).
 */

import * as F from "../../js/format.js";
import { h, alertBox, cards } from "../../js/dom.js";
import { field } from "../../js/espace.js";

const METHODS = [["cheque", "Chèque"], ["cash", "Espèces"],
                 ["cesu", "CESU"], ["transfer", "Virement"]];
const WORD = Object.fromEntries(METHODS);
const DUE = (i) => i.total_cents - (i.credited_cents || 0);
/* an invoice's printed number: its reference (CANTINE-000012, migration
 * 0041), the number of one made before */
const REF = (i) => i.reference || String(i.number);

/* "12,50" -> 1250, NaN when it is not an amount */
function cents(text) {
    const v = Number(String(text).trim().replace(",", "."));
    return Number.isFinite(v) && v > 0 ? Math.round(v * 100) : NaN;
}

/* The family's credit notes and refunds, and the forms that make them:
 * an avoir on an invoice (what is left of it), a refund of what the
 * régie owes back (avoirs after payment, overpayments). */
async function creditPart(ctx, fid, invoices) {
    const r = await ctx.call("GET", "/api/staff/credits?family_id="
                             + encodeURIComponent(fid));
    const notes = r.ok ? r.data.credit_notes : [];
    const refunds = r.ok ? r.data.refunds : [];
    const rows = [
        ...notes.map((c) => h("tr", {},
            h("td", {}, "AV-" + c.number),
            h("td", {}, F.instant(c.issued_at)),
            h("td", {}, "n° " + (c.invoice_reference || c.invoice_number)),
            h("td", { class: "montant" }, F.euros(c.amount_cents)),
            h("td", {}, c.reason + (c.after_payment
                                    ? " (à rembourser)" : "")),
            h("td", {}, c.issued_by))),
        ...refunds.map((x) => h("tr", {},
            h("td", {}, "RB-" + x.number),
            h("td", {}, F.instant(x.refunded_at)),
            h("td", {}, "n° " + (x.invoice_reference || x.invoice_number)),
            h("td", { class: "montant" }, F.euros(x.amount_cents)),
            h("td", {}, "Remboursement " + (WORD[x.method] || x.method)
                        + (x.reference ? " – " + x.reference : "")),
            h("td", {}, x.recorded_by)))];
    const list = !r.ok ? alertBox(r.error.message)
        : rows.length === 0 ? h("p", {}, "Aucun avoir ni remboursement.")
        : cards(ctx.table("Avoirs et remboursements de la famille " + fid,
            ["Pièce", "Le", "Facture", "Montant", "Motif", "Par"], rows));
    const opts = (pred) => invoices.filter(pred).map((i) =>
        h("option", { value: String(i.id) }, "n° " + REF(i) + " ("
          + F.monthName(String(i.month).slice(0, 10)) + ", "
          + F.euros(i.total_cents) + ")"));

    const aInv = h("select", { id: "avoir-facture" },
                   opts((i) => DUE(i) > 0));
    const aAmt = h("input", { type: "text", id: "avoir-montant",
                              inputmode: "decimal", required: true });
    const aWhy = h("input", { type: "text", id: "avoir-motif",
                              maxlength: "500", required: true });
    const aMsg = h("div", { "aria-live": "polite" });
    const aForm = h("form", { class: "carte", id: "avoir-form" },
        h("h3", {}, "Faire un avoir"),
        field("Facture", aInv), field("Montant en euros", aAmt),
        field("Motif", aWhy, "Absence justifiée, séance annulée, erreur "
              + "de facturation…"), aMsg,
        h("div", { class: "boutons" }, h("button", { type: "submit",
                                                    class: "bouton" },
                                         "Enregistrer l'avoir")));
    aForm.addEventListener("submit", async (ev) => {
        ev.preventDefault();
        const c = cents(aAmt.value);
        if (Number.isNaN(c) || !aInv.value) {
            aMsg.replaceChildren(alertBox("Choisissez une facture et un "
                                          + "montant en euros."));
            return;
        }
        const r2 = await ctx.call("POST", "/api/staff/credit-notes", {
            invoice_id: Number(aInv.value), amount_cents: c,
            reason: aWhy.value.trim() });
        if (!r2.ok) {
            aMsg.replaceChildren(alertBox(r2.error.message));
            return;
        }
        ctx.flash({ kind: "succes", text: "Avoir AV-" + r2.data.number
                    + " de " + F.euros(r2.data.amount_cents)
                    + " enregistré (facture n° " + r2.data.invoice_number
                    + ")." });
        ctx.route();
    });

    const rInv = h("select", { id: "remb-facture" }, opts(() => true));
    const rMode = h("select", { id: "remb-mode" },
        METHODS.filter(([v]) => v !== "cesu")
            .map(([v, w]) => h("option", { value: v }, w)));
    const rAmt = h("input", { type: "text", id: "remb-montant",
                              inputmode: "decimal", required: true });
    const rRef = h("input", { type: "text", id: "remb-reference",
                              maxlength: "200" });
    const rMsg = h("div", { "aria-live": "polite" });
    const rForm = h("form", { class: "carte", id: "remboursement-form" },
        h("h3", {}, "Rembourser la famille"),
        field("Facture", rInv), field("Mode", rMode),
        field("Montant en euros", rAmt),
        field("Référence", rRef, "Numéro du chèque, libellé du virement."),
        rMsg,
        h("div", { class: "boutons" }, h("button", { type: "submit",
                                                    class: "bouton" },
                                         "Enregistrer le remboursement")));
    rForm.addEventListener("submit", async (ev) => {
        ev.preventDefault();
        const c = cents(rAmt.value);
        if (Number.isNaN(c) || !rInv.value) {
            rMsg.replaceChildren(alertBox("Choisissez une facture et un "
                                          + "montant en euros."));
            return;
        }
        const r2 = await ctx.call("POST", "/api/staff/refunds", {
            invoice_id: Number(rInv.value), method: rMode.value,
            amount_cents: c, reference: rRef.value.trim() });
        if (!r2.ok) {
            rMsg.replaceChildren(alertBox(r2.error.message));
            return;
        }
        ctx.flash({ kind: "succes", text: "Remboursement RB-"
                    + r2.data.number + " de "
                    + F.euros(r2.data.amount_cents) + " enregistré ("
                    + WORD[r2.data.method] + ", facture n° "
                    + r2.data.invoice_number + ")." });
        ctx.route();
    });

    return h("section", { id: "caisse-avoirs",
                          "aria-labelledby": "caisse-avoirs-titre" },
             h("h2", { id: "caisse-avoirs-titre" },
               "Avoirs et remboursements"),
             list, invoices.length ? aForm : null,
             invoices.length ? rForm : null);
}

/* An admin creates a régie (its activities are given on their page). */
function regieForm(ctx) {
    const code = h("input", { type: "text", id: "regie-code",
                              pattern: "[a-z0-9_\\-]{1,32}", required: true });
    const name = h("input", { type: "text", id: "regie-nom",
                              maxlength: "200", required: true });
    const msg = h("div", { "aria-live": "polite" });
    const form = h("form", { class: "carte", id: "regie-creer" },
        h("h2", {}, "Créer une régie"),
        field("Code", code, "Lettres minuscules, chiffres, « _ », « - »."),
        field("Nom", name), msg,
        h("div", { class: "boutons" }, h("button", { type: "submit",
                                                    class: "bouton" },
                                         "Créer la régie")));
    form.addEventListener("submit", async (ev) => {
        ev.preventDefault();
        const r = await ctx.call("POST", "/api/staff/regies",
                                 { code: code.value.trim(),
                                   name: name.value.trim() });
        if (!r.ok) {
            msg.replaceChildren(alertBox(r.error.message));
            return;
        }
        ctx.flash({ kind: "succes", text: "Régie « " + name.value.trim()
                    + " » créée." });
        ctx.route();
    });
    return form;
}

export async function viewCaisse(ctx) {
    if (ctx.rank < 2) {
        ctx.page("Caisse", h("p", { class: "info", id: "caisse-regie" },
                             "La caisse est tenue par la régie."));
        return;
    }
    const q = new URLSearchParams(location.hash.split("?")[1] || "");
    const fid = q.get("famille") || "";
    const month = q.get("mois") || F.todayParis().slice(0, 7);
    const fam = h("input", { type: "text", id: "caisse-famille",
                             value: fid, required: true,
                             autocomplete: "off" });
    const find = h("form", { class: "outils-periode", role: "search" },
        field("Identifiant de la famille", fam),
        h("div", { class: "champ" }, h("button", { class: "bouton",
                                                  type: "submit" },
                                         "Voir ses factures")));
    find.addEventListener("submit", (ev) => {
        ev.preventDefault();
        location.hash = "#/caisse?famille=" + encodeURIComponent(
            fam.value.trim());
    });
    const out = h("div", { id: "caisse" });
    const list = h("div", { id: "caisse-paiements" }, ctx.loading());
    const mon = h("input", { type: "month", id: "caisse-mois",
                             value: month });
    const regie = h("select", { id: "caisse-regie" },
                    h("option", { value: "" }, "Toutes les régies"));
    const exp = h("div", { "aria-live": "polite" });
    const expBtn = h("button", { type: "button", class: "bouton second",
                                 id: "export-compta" },
                     "Télécharger l'export comptable (CSV)");
    expBtn.addEventListener("click", async () => {
        const code = regie.value;
        const r = await fetch("/api/staff/exports/accounting?month="
                              + encodeURIComponent(mon.value)
                              + (code ? "&regie=" + encodeURIComponent(code)
                                      : ""),
                              { headers: { Authorization: "Bearer "
                                           + ctx.token() },
                                credentials: "omit", cache: "no-store" });
        if (!r.ok) {
            exp.replaceChildren(alertBox("L'export n'a pas pu être fait ("
                                         + r.status + ")."));
            return;
        }
        const blob = await r.blob();
        const name = "guichet-comptabilite-" + (code ? code + "-" : "")
                     + mon.value + ".csv";
        const a = h("a", { href: URL.createObjectURL(blob),
                           download: name, id: "export-lien" },
                    "Enregistrer " + name);
        exp.replaceChildren(alertBox("Export prêt : ", "succes"));
        exp.firstChild.appendChild(a);
        a.click();
    });
    mon.addEventListener("change", () => {
        location.hash = "#/caisse?mois=" + mon.value
                        + (fid ? "&famille=" + encodeURIComponent(fid) : "");
    });
    ctx.page("Caisse", find, out,
             h("h2", {}, "Paiements reçus au guichet"),
             h("div", { class: "outils-periode" }, field("Mois", mon),
               field("Régie", regie),
               h("div", { class: "champ" }, expBtn)),
             exp, list, ctx.rank >= 3 ? regieForm(ctx) : null);

    const rg = await ctx.call("GET", "/api/staff/regies");
    for (const x of rg.ok ? rg.data.regies : []) {
        regie.appendChild(h("option", { value: x.code }, x.name));
    }

    const rl = await ctx.call("GET", "/api/staff/counter-payments?month="
                              + encodeURIComponent(month));
    const pays = rl.ok ? rl.data.payments : [];
    list.replaceChildren(!rl.ok ? alertBox(rl.error.message)
        : pays.length === 0 ? h("p", {}, "Aucun paiement au guichet ce "
                                        + "mois-ci.")
        : cards(ctx.table("Paiements reçus au guichet en "
                          + F.monthName(month + "-01"),
            ["Reçu le", "Famille", "Mode", "Montant", "Factures",
             "Référence", "Par"],
            pays.map((p) => h("tr", {},
                h("td", {}, F.instant(p.received_at)),
                h("td", {}, p.family_id),
                h("td", {}, WORD[p.method] || p.method),
                h("td", { class: "montant" }, F.euros(p.amount_cents)),
                h("td", {}, (p.invoices || []).join(", ")),
                h("td", {}, p.reference || "—"),
                h("td", {}, p.recorded_by))))));

    if (!fid) {
        return;
    }
    out.replaceChildren(ctx.loading());
    const r = await ctx.call("GET", "/api/staff/families/"
                             + encodeURIComponent(fid));
    if (!r.ok) {
        out.replaceChildren(alertBox(r.error.message));
        return;
    }
    const all = (r.data.invoices || []).slice()
        .sort((a, b) => a.id - b.id);
    const unpaid = all.filter((i) => !i.paid);
    const credits = await creditPart(ctx, fid, all);
    if (unpaid.length === 0) {
        out.replaceChildren(h("p", { class: "info" }, "La famille " + fid
                                  + " n'a aucune facture à payer."),
                            credits);
        return;
    }
    const total = h("strong", { id: "caisse-total" }, F.euros(0));
    const boxes = unpaid.map((i) => h("input", {
        type: "checkbox", value: String(i.id), dataset: {
            cents: String(DUE(i)) },
        "aria-label": "Payer la facture n° " + REF(i) }));
    const sum = () => boxes.filter((b) => b.checked)
        .reduce((s, b) => s + Number(b.dataset.cents), 0);
    for (const b of boxes) {
        b.addEventListener("change", () => {
            total.textContent = F.euros(sum());
        });
    }
    const method = h("select", { id: "caisse-mode" },
        METHODS.map(([v, w]) => h("option", { value: v }, w)));
    const ref = h("input", { type: "text", id: "caisse-reference",
                             maxlength: "200" });
    const msg = h("div", { "aria-live": "polite" });
    const form = h("form", { class: "carte", id: "caisse-paiement" },
        h("h2", {}, "Factures à payer de la famille " + fid),
        cards(ctx.table("Factures non payées",
            ["Payer", "Facture", "Mois", "À payer", "Échéance"],
            unpaid.map((i, k) => h("tr", {},
                h("td", {}, boxes[k]),
                h("td", {}, "n° " + REF(i)),
                h("td", {}, F.monthName(String(i.month).slice(0, 10))),
                h("td", { class: "montant" }, F.euros(DUE(i)),
                  i.credited_cents ? " (avoirs : "
                      + F.euros(i.credited_cents) + ")" : ""),
                h("td", {}, F.dayNum(String(i.due_date).slice(0, 10))))),
            null, true)),
        h("p", {}, "Total reçu : ", total),
        field("Mode de paiement", method),
        field("Référence", ref, "Numéro et banque du chèque, numéros des "
              + "CESU, libellé du virement."),
        msg,
        h("div", { class: "boutons" }, h("button", { type: "submit",
                                                    class: "bouton" },
                                         "Enregistrer le paiement")));
    form.addEventListener("submit", async (ev) => {
        ev.preventDefault();
        const ids = boxes.filter((b) => b.checked).map((b) => Number(b.value));
        if (ids.length === 0) {
            msg.replaceChildren(alertBox("Cochez les factures payées."));
            return;
        }
        const r2 = await ctx.call("POST", "/api/staff/counter-payments", {
            family_id: fid, method: method.value, amount_cents: sum(),
            reference: ref.value.trim(), invoice_ids: ids });
        if (!r2.ok) {
            msg.replaceChildren(alertBox(r2.error.message));
            return;
        }
        ctx.flash({ kind: "succes", text: "Paiement de "
                    + F.euros(r2.data.amount_cents) + " enregistré ("
                    + WORD[r2.data.method] + ", factures n° "
                    + r2.data.invoices.join(", ") + ")." });
        ctx.route();
    });
    const today = F.todayParis();
    const late = unpaid.some((i) => String(i.due_date).slice(0, 10) < today);
    const letterMsg = h("div", { "aria-live": "polite" });
    const letter = h("button", { type: "button", class: "bouton second",
                                 id: "caisse-relance" },
                     "Lettre de relance (PDF)");
    letter.addEventListener("click", async () => {
        const r3 = await fetch("/api/staff/families/" + encodeURIComponent(fid)
                               + "/relance.pdf",
                               { headers: { Authorization: "Bearer "
                                            + ctx.token() },
                                 credentials: "omit", cache: "no-store" });
        if (!r3.ok) {
            letterMsg.replaceChildren(alertBox("La lettre n'a pas pu être "
                                               + "faite (" + r3.status
                                               + ")."));
            return;
        }
        const a = h("a", { href: URL.createObjectURL(await r3.blob()),
                           download: "relance-" + fid + ".pdf" },
                    "Enregistrer relance-" + fid + ".pdf");
        letterMsg.replaceChildren(h("div", { class: "succes",
                                             role: "status" },
                                    "Lettre prête : ", a));
        a.click();
    });
    out.replaceChildren(form, ...(late ? [h("div", { class: "boutons" },
                                            letter), letterMsg] : []),
                        credits);
}
