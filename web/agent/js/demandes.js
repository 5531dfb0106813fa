/*
 * demandes.js -- the back office's « Demandes de dossier » (issue 25,
 * office/request.c): the files new families asked online and confirmed
 * by e-mail, each with its parents, contact, address, children and the
 * families the town already knows that have a child of the same first
 * name and birth date (a possible duplicate: the family may already have
 * a file).  The agent validates it, saying whether the family lives in
 * the town (its prices), or refuses it with a reason sent to the family.
 * Audited by guichet-office (family_request.decision).
 *
 * viewDemandes(env): env is agent.js's {page, get, post, askReason,
 * done(text)} (done: flash the text and draw the page again).
 */

import { h, alertBox } from "../../js/dom.js";
import { field, when } from "../../js/espace.js";
import { pendingList } from "./shell.js";

function address(a) {
    return a ? [a.line1, a.line2, (a.postcode || "") + " " + (a.city || "")]
        .filter((x) => x && x.trim()).join(", ") : "—";
}

function duplicates(r) {
    const d = r.duplicates || [];
    if (d.length === 0) {
        return h("p", { class: "discret" }, "Aucun doublon probable : "
                 + "aucune famille connue n'a un enfant de même prénom et "
                 + "même date de naissance.");
    }
    return h("div", { class: "alerte", dataset: { doublons: r.family_id } },
        h("p", {}, "Doublon possible : vérifiez que cette famille n'a pas "
          + "déjà un dossier."),
        h("ul", {}, d.map((x) => h("li", {},
            x.first_name + " (né(e) le " + when(x.birth_date) + "), ",
            h("a", { href: "#/dossier?id="
                           + encodeURIComponent(x.family_id) },
              "dossier " + x.family_id)))));
}

export async function viewDemandes(env) {
    await pendingList(env, {
        id: "demandes", title: "Demandes de dossier",
        url: "/api/staff/family-requests?status=en_attente",
        key: "family_requests",
        empty: "Aucune demande de dossier en attente.",
    }, (q) => {
        const fid = q.family_id;
        const who = (q.parents || []).map((p) => p.first_name + " "
                                                 + p.last_name).join(", ");
        const res = h("select", { id: "dem-resident-" + fid },
            h("option", { value: "true" }, "Résident de la commune"),
            h("option", { value: "false" }, "Non-résident"));
        const err = h("div", { "aria-live": "polite" });
        const url = "/api/staff/family-requests/" + encodeURIComponent(fid)
                    + "/decision";
        const decide = async (body, text) => {
            const p = await env.post(url, body);
            if (!p.ok) {
                err.replaceChildren(alertBox(p.error.message));
                return;
            }
            env.done(text);
        };
        return h("section", { class: "carte", dataset: { demande: fid },
                              "aria-labelledby": "dem-t-" + fid },
            h("h2", { id: "dem-t-" + fid }, who + " (dossier " + fid + ")"),
            h("dl", { class: "fiche" },
              h("dt", {}, "Demandée le"), h("dd", {}, when(q.requested_at)),
              h("dt", {}, "E-mail"), h("dd", {}, q.email || "—"),
              h("dt", {}, "Téléphone"), h("dd", {}, q.phone || "—"),
              h("dt", {}, "Adresse"), h("dd", {}, address(q.address)),
              h("dt", {}, "Enfants"),
              h("dd", {}, (q.children || []).map((c) => c.first_name
                  + " (né(e) le " + when(c.birth_date) + ")").join(", "))),
            duplicates(q),
            h("p", {}, h("a", { href: "#/dossier?id="
                                      + encodeURIComponent(fid) },
                         "Voir son dossier")),
            field("Résidence (tarifs)", res, "Non-résident : les tarifs "
                  + "des non-résidents s'appliquent à ses réservations."),
            err,
            h("div", { class: "boutons" },
              h("button", { class: "bouton", type: "button",
                            onclick: () => decide(
                                { decision: "validee",
                                  resident: res.value === "true" },
                                "Dossier validé : " + who + ".") },
                "Valider le dossier"),
              h("button", { class: "bouton danger", type: "button",
                            onclick: async () => {
                                const reason = await env.askReason(
                                    "Refuser la demande de dossier", who);
                                if (reason) {
                                    decide({ decision: "refusee", reason },
                                           "Demande refusée : " + who
                                           + ".");
                                }
                            } },
                "Refuser")));
    });
}
