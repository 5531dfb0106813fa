/*
 * adresses.js -- the back office's « Changements d'adresse » (issue 25):
 * the new postal addresses families asked for, each with the family's
 * current address and residence; the agent validates it, saying whether
 * the family lives in the town (the price band of its next bookings), or
 * refuses it with a reason sent to the family.  Every decision is audited
 * by guichet-office (address_change.decision).
 *
 * viewAdresses(env): env is agent.js's {page, get, post, askReason,
 * familyName, done(text)} (done: flash the text and draw the page again).
 */

import { h, alertBox } from "../../js/dom.js";
import { field, when } from "../../js/espace.js";
import { pendingList } from "./shell.js";

function lines(a) {
    return a ? [a.line1, a.line2, (a.postcode || "") + " " + (a.city || "")]
        .filter((x) => x && x.trim()).join(", ") : "aucune";
}

export async function viewAdresses(env) {
    await pendingList(env, {
        id: "adresses", title: "Changements d'adresse",
        url: "/api/staff/address-changes?status=demandee",
        key: "address_changes",
        empty: "Aucun changement d'adresse en attente.",
    }, (c) => {
        const who = env.familyName(c);
        const res = h("select", { id: "adr-resident-" + c.id },
            h("option", { value: "" }, "Inchangée ("
              + (c.current_resident === false ? "non-résident"
                                              : "résident") + ")"),
            h("option", { value: "true" }, "Résident de la commune"),
            h("option", { value: "false" }, "Non-résident"));
        const err = h("div", { "aria-live": "polite" });
        const url = "/api/staff/address-changes/" + encodeURIComponent(c.id)
                    + "/decision";
        const decide = async (body, text) => {
            const p = await env.post(url, body);
            if (!p.ok) {
                err.replaceChildren(alertBox(p.error.message));
                return;
            }
            env.done(text);
        };
        return h("section", { class: "carte",
                              dataset: { changement: String(c.id) },
                              "aria-labelledby": "adr-t-" + c.id },
            h("h2", { id: "adr-t-" + c.id }, "Famille " + who),
            h("dl", { class: "fiche" },
              h("dt", {}, "Nouvelle adresse"), h("dd", {}, lines(c)),
              h("dt", {}, "Adresse actuelle"),
              h("dd", {}, lines(c.current)),
              h("dt", {}, "Demandée le"), h("dd", {}, when(c.requested_at))),
            field("Résidence après ce changement (tarifs)", res,
                  "Non-résident : les tarifs des non-résidents "
                  + "s'appliquent à ses prochaines réservations."),
            err,
            h("div", { class: "boutons" },
              h("button", { class: "bouton", type: "button",
                            onclick: () => decide(
                                { decision: "validee",
                                  resident: res.value === "" ? null
                                      : res.value === "true" },
                                "Adresse validée : famille " + who + ".") },
                "Valider"),
              h("button", { class: "bouton danger", type: "button",
                            onclick: async () => {
                                const reason = await env.askReason(
                                    "Refuser le changement d'adresse",
                                    "Famille " + who);
                                if (reason) {
                                    decide({ decision: "refusee", reason },
                                           "Changement d'adresse refusé : "
                                           + "famille " + who + ".");
                                }
                            } },
                "Refuser")));
    });
}
