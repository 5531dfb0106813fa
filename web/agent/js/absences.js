/*
 * absences.js -- the back office's « Absences à examiner » (issue 25): the
 * justifications families sent (GET /api/staff/absences), each with the
 * child, the activity and date, the reason and its proof (opened with the
 * staff token among the family's documents); the agent accepts (the
 * booking is not billed) or refuses with a reason (it stays billed, the
 * family gets a message and an e-mail).  docs/office.md, docs/rules.md.
 *
 * viewAbsences(env): env is agent.js's {page, get, post, askReason,
 * familyName, openFile(document), done(text)}.
 */

import { h, alertBox } from "../../js/dom.js";
import { when } from "../../js/espace.js";
import { pendingList } from "./shell.js";

export async function viewAbsences(env) {
    await pendingList(env, {
        id: "absences", title: "Absences à examiner",
        url: "/api/staff/absences?status=en_examen",
        key: "absences",
        emptyId: "aucune-absence",
        empty: "Aucun justificatif d'absence à examiner.",
    }, (a) => {
        const what = (a.child_first_name || "?") + ", "
            + (a.activity || "?") + ", le " + when(a.date);
        const err = h("div", { "aria-live": "polite" });
        const url = "/api/staff/absences/" + encodeURIComponent(a.booking_id)
                    + "/decision";
        const decide = async (body, text) => {
            const p = await env.post(url, body);
            if (!p.ok) {
                err.replaceChildren(alertBox(p.error.message));
                return;
            }
            env.done(text + (p.data && p.data.invoiced
                ? " Cette séance est déjà sur une facture : la régie "
                  + "émet l'avoir." : ""));
        };
        return h("section", { class: "carte",
                              dataset: { absence: a.booking_id } },
            h("h2", {}, what),
            h("p", {}, "Famille " + env.familyName(a) + " — motif : "
                       + (a.reason_label || a.reason)
                       + " — envoyé le " + when(a.justified_at)),
            a.document_id
                ? h("p", {}, h("button", {
                      class: "lien", type: "button",
                      onclick: () => env.openFile({ id: a.document_id }) },
                      "Ouvrir le justificatif "
                      + (a.document_filename || "")))
                : h("p", { class: "discret" }, "Sans justificatif (ce "
                                               + "motif n'en demande pas)."),
            err,
            h("div", { class: "boutons" },
              h("button", { class: "bouton", type: "button",
                            onclick: () => decide({ decision: "acceptee" },
                                "Justificatif accepté : la séance de "
                                + what + " n'est pas facturée.") },
                "Accepter"),
              h("button", { class: "bouton danger", type: "button",
                            onclick: async () => {
                                const reason = await env.askReason(
                                    "Refuser le justificatif",
                                    what + " : la séance reste facturée ; "
                                    + "la famille reçoit le motif dans sa "
                                    + "messagerie.");
                                if (reason) {
                                    decide({ decision: "refusee", reason },
                                           "Justificatif refusé : la séance "
                                           + "de " + what
                                           + " reste facturée.");
                                }
                            } },
                "Refuser")));
    });
}
