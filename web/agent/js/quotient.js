/*
 * quotient.js -- the back office's « Quotient familial » (issue 25): the
 * changes of QF families asked for, each with its tax notice (opened with
 * the staff token) and the family's current QF; the agent validates the
 * new QF and the date it applies from (the next bookings are priced on
 * it), or refuses with a reason.  Audited by guichet-office
 * (qf_change.decision).
 *
 * viewQuotient(env): env is agent.js's {page, get, post, askReason,
 * familyName, openFile(document), done(text)}.
 */

import * as F from "../../js/format.js";
import { h, alertBox } from "../../js/dom.js";
import { field, when } from "../../js/espace.js";
import { pendingList } from "./shell.js";

export async function viewQuotient(env) {
    await pendingList(env, {
        id: "quotients", title: "Quotient familial",
        url: "/api/staff/qf-changes?status=demandee",
        key: "qf_changes",
        empty: "Aucune demande de quotient familial en attente.",
    }, (q) => {
        const who = env.familyName(q);
        const qf = h("input", { type: "number", id: "qf-" + q.id, min: "0",
                                max: "1000000", step: "1" });
        const from = h("input", { type: "date", id: "qf-du-" + q.id,
                                  value: F.todayParis() });
        const err = h("div", { "aria-live": "polite" });
        const url = "/api/staff/qf-changes/" + encodeURIComponent(q.id)
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
                              dataset: { demande: String(q.id) },
                              "aria-labelledby": "qf-t-" + q.id },
            h("h2", { id: "qf-t-" + q.id }, "Famille " + who),
            h("p", {}, "Quotient actuel : "
              + (q.current_qf === null ? "inconnu" : q.current_qf)
              + " · demandé le " + when(q.requested_at)),
            q.comment ? h("p", {}, "« " + q.comment + " »") : null,
            q.document_id
                ? h("div", { class: "boutons" },
                    h("button", { class: "bouton second petit",
                                  type: "button",
                                  onclick: () => env.openFile(
                                      { id: q.document_id }) },
                      "Voir l'avis d'imposition"))
                : h("p", { class: "discret" }, "Document retiré par la "
                    + "famille."),
            h("div", { class: "outils-periode" },
              field("Nouveau quotient", qf), field("À compter du", from)),
            err,
            h("div", { class: "boutons" },
              h("button", { class: "bouton", type: "button",
                            onclick: () => {
                                if (qf.value === "") {
                                    err.replaceChildren(alertBox(
                                        "Indiquez le nouveau quotient."));
                                    qf.focus();
                                    return;
                                }
                                decide({ decision: "validee",
                                         qf: Number(qf.value),
                                         from: from.value || null },
                                       "Quotient validé : famille " + who
                                       + ".");
                            } }, "Valider"),
              h("button", { class: "bouton danger", type: "button",
                            onclick: async () => {
                                const reason = await env.askReason(
                                    "Refuser la demande de quotient",
                                    "Famille " + who);
                                if (reason) {
                                    decide({ decision: "refusee", reason },
                                           "Demande refusée : famille "
                                           + who + ".");
                                }
                            } }, "Refuser")));
    });
}
