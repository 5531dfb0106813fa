/*
 * inscriptions.js -- the back office's "Inscriptions à traiter"
 * (#/inscriptions): the enrolments families asked for, accepted or
 * refused with a reason.
 */

import { h, alertBox } from "../../js/dom.js";
import { listOf, pick, when } from "../../js/espace.js";
import { get, post, missing, setFlash, route, page, table, loading, notYet,
         askReason }
    from "./shell.js";
import { familyName } from "./familles.js";

export async function viewInscriptions() {
    const out = h("div", { id: "inscriptions" }, loading());
    page("Inscriptions à traiter", out);
    const r = await get("/api/staff/enrolments?status=demandee");
    if (missing(r)) {
        return notYet("Inscriptions à traiter", "Le traitement des "
                      + "inscriptions");
    }
    if (!r.ok) {
        out.replaceChildren(alertBox(r.error.message));
        return;
    }
    const list = listOf(r.data, "enrolments")
        .filter((e) => !e.status || e.status === "demandee");
    if (list.length === 0) {
        out.replaceChildren(h("p", {}, "Aucune demande d'inscription en "
                                       + "attente."));
        return;
    }
    const decide = async (e, ok, who) => {
        let body = {};
        if (!ok) {
            const reason = await askReason("Refuser l'inscription", who);
            if (!reason) {
                return;
            }
            body = { reason };
        }
        body.decision = ok ? "validee" : "refusee";
        const p = await post("/api/staff/enrolments/"
                             + encodeURIComponent(e.id) + "/decision",
                             body);
        if (!p.ok) {
            out.prepend(alertBox(p.error.message));
            return;
        }
        setFlash({ kind: "succes", text: "Inscription " + (ok ? "validée"
                   : "refusée") + " : " + who + "." });
        route();
    };
    out.replaceChildren(table("Demandes d'inscription", ["Famille",
        "Enfant", "Activité", "Période", "Demandée le", "Décision"],
        list.map((e) => {
            const who = (pick(e, "child_first_name", "first_name") || e.child_id)
                        + " — " + (pick(e, "activity_name") || e.activity_id);
            return h("tr", { dataset: { inscription: String(e.id) } },
                h("td", {}, h("a", { href: "#/familles?id="
                                     + encodeURIComponent(e.family_id) },
                              familyName(e))),
                h("td", {}, pick(e, "child_first_name", "first_name")
                            || e.child_id),
                h("td", {}, pick(e, "activity_name") || e.activity_id),
                h("td", {}, "du " + when(e.from) + " au " + when(e.to)),
                h("td", {}, when(e.requested_at)),
                h("td", {}, h("div", { class: "boutons" },
                    h("button", { class: "bouton petit", type: "button",
                                  "aria-label": "Valider : " + who,
                                  onclick: () => decide(e, true, who) },
                      "Valider"),
                    h("button", { class: "bouton danger petit",
                                  type: "button",
                                  "aria-label": "Refuser : " + who,
                                  onclick: () => decide(e, false, who) },
                      "Refuser"))));
        })));
}
