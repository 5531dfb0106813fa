/*
 * situation.js -- Ma situation (issue 25): the family's quotient familial
 * and a change of situation or of QF asked with the tax notice attached:
 * the notice is uploaded as a document (avis-imposition), then the request
 * names it (POST /api/qf-changes); the town's decision (the new QF and
 * the date it applies from, or the reason of a refusal) is shown here.
 */

import * as api from "./api.js";
import { h, alertBox } from "./dom.js";
import { ACCEPT, UPLOAD_HELP, clearOnInput, field, settle, statusTag,
         uploadDocument, uploadProgress, when } from "./espace.js";

export async function viewSituation(ctx) {
    const out = h("div", { id: "situation" },
                  h("p", { class: "chargement" }, "Chargement…"));
    ctx.page("Ma situation",
             h("p", {}, "Vos tarifs dépendent de votre quotient familial. "
               + "Un changement de situation (naissance, séparation, "
               + "emploi…) ou un nouvel avis d'imposition ? Envoyez-le : "
               + "la mairie calcule votre nouveau quotient."), out);
    const r = await api.get("/api/qf-changes");
    if (r.status === 401) {
        return ctx.expired();
    }
    if (!r.ok) {
        out.replaceChildren(alertBox(r.error.message));
        return;
    }
    const list = r.data.qf_changes || [];

    const file = h("input", { type: "file", id: "qf-fichier",
                              accept: ACCEPT, required: true });
    const comment = h("textarea", { id: "qf-commentaire", rows: "3" });
    const bar = uploadProgress();
    const msg = h("div", { "aria-live": "polite" });
    const ok = h("button", { class: "bouton", type: "submit" },
                 "Envoyer la demande");
    const form = h("form", { class: "carte", id: "form-qf",
                             novalidate: true,
                             "aria-labelledby": "t-qf-demande" },
        h("h2", { id: "t-qf-demande" }, "Demander un nouveau calcul"),
        field("Avis d'imposition", file, UPLOAD_HELP),
        field("Votre situation (facultatif)", comment),
        bar.node, msg, h("div", { class: "boutons" }, ok));
    clearOnInput(form, msg);

    out.replaceChildren(
        h("p", { id: "qf-actuel", class: "info" },
          r.data.qf === null || r.data.qf === undefined
            ? "Votre quotient familial n'est pas connu de la mairie : le "
              + "tarif le plus élevé s'applique."
            : "Votre quotient familial : " + r.data.qf + "."),
        list.length ? h("div", { class: "tableau-defilant" },
            h("table", { id: "qf-demandes" },
              h("caption", {}, "Mes demandes"),
              h("thead", {}, h("tr", {},
                h("th", { scope: "col" }, "Demandée le"),
                h("th", { scope: "col" }, "Statut"),
                h("th", { scope: "col" }, "Décision"))),
              h("tbody", {}, list.map((q) => h("tr", {},
                h("td", {}, when(q.requested_at)),
                h("td", {}, statusTag(q.status)),
                h("td", {}, q.status === "validee"
                    ? "Quotient " + q.qf + " à compter du "
                      + when(q.effective_from)
                    : q.reason || "—")))))) : null,
        form);

    form.addEventListener("submit", async (ev) => {
        ev.preventDefault();
        msg.replaceChildren();
        const f = file.files && file.files[0];
        if (!f) {
            msg.replaceChildren(alertBox("Joignez votre avis "
                                         + "d'imposition."));
            file.focus();
            return;
        }
        ok.disabled = true;
        const u = await uploadDocument(f, "avis-imposition", null, bar.set);
        bar.hide();
        if (!u.ok) {
            ok.disabled = false;
            settle(ctx, u, msg, "");
            return;
        }
        const q = await api.post("/api/qf-changes",
                                 { document_id: u.data.id,
                                   comment: comment.value.trim() || null });
        ok.disabled = false;
        settle(ctx, q, msg, "Demande envoyée : la mairie va calculer votre "
               + "quotient familial.");
    });
}
