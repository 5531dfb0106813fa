/*
 * caisse.js -- the régie's counter in the back office (issue 26): a
 * family's unpaid invoices, paid at the counter by cash, cheque, CESU or
 * transfer (whole invoices), the month's counter payments, and the
 * month's CSV for the town's accounting.  Routes of office/counter.c,
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
    const unpaid = (r.data.invoices || []).filter((i) => !i.paid)
        .sort((a, b) => a.number - b.number);
    if (unpaid.length === 0) {
        out.replaceChildren(h("p", { class: "info" }, "La famille " + fid
                                  + " n'a aucune facture à payer."));
        return;
    }
    const total = h("strong", { id: "caisse-total" }, F.euros(0));
    const boxes = unpaid.map((i) => h("input", {
        type: "checkbox", value: String(i.id), dataset: {
            cents: String(i.total_cents) },
        "aria-label": "Payer la facture n° " + i.number }));
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
            ["Payer", "Facture", "Mois", "Montant", "Échéance"],
            unpaid.map((i, k) => h("tr", {},
                h("td", {}, boxes[k]),
                h("td", {}, "n° " + i.number),
                h("td", {}, F.monthName(String(i.month).slice(0, 10))),
                h("td", { class: "montant" }, F.euros(i.total_cents)),
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
                                            letter), letterMsg] : []));
}
