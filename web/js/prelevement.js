/*
 * prelevement.js -- the family space's "Prélèvement automatique"
 * (#/prelevement): the direct debit's state, the IBAN given or stopped
 * (ibanOk, maskIban: the pure helpers tests/web/espace-pur checks).
 */

import * as api from "./api.js";
import { h, alertBox } from "./dom.js";
import { field, notYet, pick, settle, when } from "./espace.js";

/* IBAN checksum (ISO 13616, mod 97), to warn before sending. */
export function ibanOk(iban) {
    const s = iban.replace(/\s+/g, "").toUpperCase();
    if (!/^[A-Z]{2}\d{2}[A-Z0-9]{10,30}$/.test(s)) {
        return false;
    }
    const r = s.slice(4) + s.slice(0, 4);
    let m = 0;
    for (const ch of r) {
        const v = /\d/.test(ch) ? ch : String(ch.charCodeAt(0) - 55);
        for (const d of v) {
            m = (m * 10 + Number(d)) % 97;
        }
    }
    return m === 1;
}

/* "FR76 •••• •••• •••• •••• •••7 890" -- enough to recognise it. */
export function maskIban(iban) {
    const s = String(iban || "").replace(/\s+/g, "");
    if (s.length < 10) {
        return s || "—";
    }
    const masked = s.slice(0, 4) + s.slice(4, -4).replace(/./g, "•")
                   + s.slice(-4);
    return masked.replace(/(.{4})/g, "$1 ").trim();
}

export async function viewPrelevement(ctx) {
    const out = h("div", { id: "mandat" },
                  h("p", { class: "chargement" }, "Chargement…"));
    ctx.page("Prélèvement automatique",
        h("p", {}, "Avec le prélèvement automatique, vos factures sont "
          + "prélevées chaque mois à l'échéance ; le paiement en ligne "
          + "n'est alors plus proposé."), out);
    const r = await api.get("/api/direct-debit");
    if (r.status === 401) {
        return ctx.expired();
    }
    if (api.isMissing(r) && r.error.code !== "not_found") {
        return notYet(ctx, "Prélèvement automatique",
                      "Le prélèvement automatique");
    }
    const m = r.ok ? r.data.mandate : null;
    const active = !!(m && r.data.active !== false && !m.ended_at);
    const msg = h("div", { "aria-live": "polite" });

    if (active) {
        const stop = h("button", { class: "bouton danger", type: "button" },
                       "Arrêter le prélèvement");
        out.replaceChildren(h("section", { class: "carte",
                                           "aria-labelledby": "t-mandat" },
            h("h2", { id: "t-mandat" }, "Mandat en cours"),
            h("dl", { class: "fiche" },
              h("dt", {}, "Titulaire du compte"),
              h("dd", {}, pick(m, "holder", "account_holder") || "—"),
              h("dt", {}, "IBAN"),
              h("dd", { id: "mandat-iban" }, maskIban(m.iban)),
              h("dt", {}, "BIC"), h("dd", {}, m.bic || "—"),
              h("dt", {}, "Référence unique du mandat"),
              h("dd", { id: "mandat-rum" },
                pick(m, "mandate_ref", "rum", "reference") || "—"),
              h("dt", {}, "Signé le"),
              h("dd", {}, when(pick(m, "signed_on", "mandate_date",
                                    "signed_at")))),
            msg, h("div", { class: "boutons" }, stop)));
        stop.addEventListener("click", async () => {
            stop.disabled = true;
            const d = await api.del("/api/direct-debit");
            if (d.status === 401) {
                return ctx.expired();
            }
            if (!d.ok) {
                stop.disabled = false;
                msg.replaceChildren(alertBox(d.error.message));
                return;
            }
            ctx.flash = { kind: "succes", text: "Prélèvement automatique "
                          + "arrêté. Vous pouvez payer en ligne." };
            ctx.me = null;
            ctx.route();
        });
        return;
    }

    const holder = h("input", { type: "text", id: "pr-titulaire",
                                required: true, autocomplete: "name" });
    const iban = h("input", { type: "text", id: "pr-iban", required: true,
                              autocomplete: "off", spellcheck: "false",
                              inputmode: "text" });
    const bic = h("input", { type: "text", id: "pr-bic", required: true,
                             autocomplete: "off", spellcheck: "false" });
    const agree = h("input", { type: "checkbox", id: "pr-accord",
                               required: true });
    const ok = h("button", { class: "bouton", type: "submit" },
                 "Souscrire au prélèvement");
    const form = h("form", { class: "carte", "aria-labelledby": "t-souscr" },
        h("h2", { id: "t-souscr" }, "Souscrire"),
        field("Titulaire du compte", holder),
        field("IBAN", iban, "Par exemple FR76 3000 6000 0112 3456 7890 "
              + "189."),
        field("BIC", bic, "8 ou 11 caractères, par exemple AGRIFRPP."),
        h("div", { class: "choix" }, h("label", { for: "pr-accord" }, agree,
          "J'autorise la commune à prélever mes factures sur ce compte "
          + "(mandat SEPA).")),
        msg, h("div", { class: "boutons" }, ok));
    out.replaceChildren(...(r.ok || r.status === 404 ? [form]
                            : [alertBox(r.error.message), form]));
    form.addEventListener("submit", async (ev) => {
        ev.preventDefault();
        msg.replaceChildren();
        const i = iban.value.replace(/\s+/g, "").toUpperCase();
        if (!holder.value.trim()) {
            msg.replaceChildren(alertBox("Indiquez le titulaire du compte."));
            return;
        }
        if (!ibanOk(i)) {
            msg.replaceChildren(alertBox("Cet IBAN n'est pas valide : "
                                         + "vérifiez-le."));
            iban.focus();
            return;
        }
        if (!agree.checked) {
            msg.replaceChildren(alertBox("Cochez l'autorisation de "
                                         + "prélèvement."));
            return;
        }
        ok.disabled = true;
        const p = await api.put("/api/direct-debit",
                                 { holder: holder.value.trim(), iban: i,
                                   bic: bic.value.replace(/\s+/g, "")
                                        .toUpperCase() });
        ok.disabled = false;
        settle(ctx, p, msg, "Prélèvement automatique enregistré.", true);
    });
}
