/*
 * entourage.js -- Mon entourage (issue 25): the people allowed to pick a
 * child up and the emergency contacts.  The family adds and edits them
 * (POST /api/entourage, PUT /api/entourage/{id}); only the town removes
 * one, so the page has no « Supprimer »: it says whom to ask.
 */

import * as api from "./api.js";
import { h, alertBox } from "./dom.js";
import { clearOnInput, field, settle } from "./espace.js";

/* A person's form (p: the person to edit, or null for a new one). */
function personForm(ctx, p) {
    const k = p ? "ent-" + p.id : "ent-nouveau";
    const first = h("input", { type: "text", id: k + "-prenom",
                               required: true, value: p ? p.first_name : ""
                               });
    const last = h("input", { type: "text", id: k + "-nom", required: true,
                              value: p ? p.last_name : "" });
    const rel = h("input", { type: "text", id: k + "-lien", required: true,
                             value: p ? p.relation : "" });
    const phone = h("input", { type: "tel", id: k + "-tel", required: true,
                               value: p ? p.phone : "" });
    const pick = h("input", { type: "checkbox", id: k + "-cherche" });
    const urg = h("input", { type: "checkbox", id: k + "-urgence" });
    pick.checked = p ? p.can_pick_up : true;
    urg.checked = p ? p.emergency : false;
    const msg = h("div", { "aria-live": "polite" });
    const ok = h("button", { class: "bouton", type: "submit" },
                 p ? "Enregistrer" : "Ajouter");
    const title = p ? p.first_name + " " + p.last_name
                    : "Ajouter une personne";
    const form = h("form", { class: "carte", id: "form-" + k,
                             dataset: p ? { personne: String(p.id) } : {},
                             "aria-labelledby": k + "-t" },
        h("h2", { id: k + "-t" }, title),
        field("Prénom", first), field("Nom", last),
        field("Lien avec l'enfant", rel, "Par exemple grand-mère, voisin, "
              + "assistante maternelle."),
        field("Téléphone", phone),
        h("div", { class: "choix" },
          h("label", { for: pick.id }, pick, " Peut venir chercher les "
            + "enfants"),
          h("label", { for: urg.id }, urg, " À prévenir en cas "
            + "d'urgence")),
        msg, h("div", { class: "boutons" }, ok));
    clearOnInput(form, msg);
    form.addEventListener("submit", async (ev) => {
        ev.preventDefault();
        const body = { first_name: first.value.trim(),
                       last_name: last.value.trim(),
                       relation: rel.value.trim(),
                       phone: phone.value.trim(),
                       can_pick_up: pick.checked, emergency: urg.checked };
        ok.disabled = true;
        const r = p
            ? await api.put("/api/entourage/" + encodeURIComponent(p.id),
                            body)
            : await api.post("/api/entourage", body);
        ok.disabled = false;
        settle(ctx, r, msg, p ? "Modification enregistrée."
                              : "Personne ajoutée à votre entourage.");
    });
    return form;
}

export async function viewEntourage(ctx) {
    const out = h("div", { id: "entourage" },
                  h("p", { class: "chargement" }, "Chargement…"));
    ctx.page("Mon entourage",
             h("p", {}, "Les personnes autorisées à venir chercher vos "
               + "enfants et celles à prévenir en cas d'urgence. Vous "
               + "pouvez en ajouter et les modifier ; pour en retirer une, "
               + "écrivez au service enfance (Messagerie)."), out);
    const r = await api.get("/api/entourage");
    if (r.status === 401) {
        return ctx.expired();
    }
    if (!r.ok) {
        out.replaceChildren(api.isMissing(r)
            ? h("p", { class: "info" }, "L'entourage n'est pas encore "
                + "disponible en ligne.")
            : alertBox(r.error.message));
        return;
    }
    const list = r.data.entourage || [];
    out.replaceChildren(
        list.length ? null : h("p", { id: "entourage-vide" },
                               "Personne dans votre entourage pour "
                               + "l'instant."),
        ...list.map((p) => personForm(ctx, p)),
        personForm(ctx, null));
}
