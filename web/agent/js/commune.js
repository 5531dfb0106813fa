/*
 * commune.js -- the town's own settings in the back office (issue 26):
 * its name and its units (code, label, start and end), read by every
 * agent, changed by an admin; the first time, they make the town, so a
 * term is run without the town file.  Then the documents the town
 * requires of every family and what a missing one blocks (issue 25,
 * office/required.c).  Routes of office/town.c,
 * docs/api.md (*Back office*), docs/office.md (*The town's settings*).
 *
 * agent.js gives the frame (ctx: call, page, table, loading, flash,
 * route, rank).
 */

import { h, alertBox, cards } from "../../js/dom.js";
import { DOC_TYPES, docTypeName, field } from "../../js/espace.js";

/* What a missing document of the whole family blocks (office/required.c,
 * migration 0111). */
const BLOCKS = [["aucun", "Rien (affichée et comptée)"],
                ["inscription", "Les demandes d'inscription"],
                ["reservation", "Les inscriptions et les réservations"]];

/* One row of the family documents' table. */
function familyDocRow(d, n) {
    const type = h("select", { class: "type", "aria-label": "Pièce " + n },
        Object.entries(DOC_TYPES).map(([k, v]) =>
            h("option", { value: k, selected: k === d.type }, v)));
    if (d.type && !(d.type in DOC_TYPES)) {
        type.append(h("option", { value: d.type, selected: true },
                      docTypeName(d.type)));
    }
    const blocks = h("select", { class: "blocks",
                                 "aria-label": "Pièce " + n
                                               + " : manquante, bloque" },
        BLOCKS.map(([k, v]) => h("option", { value: k,
                                             selected: k === d.blocks },
                                 v)));
    const tr = h("tr", {}, h("td", {}, type), h("td", {}, blocks));
    const rm = h("button", { type: "button", class: "bouton second",
                             "aria-label": "Retirer la pièce " + n },
                 "Retirer");
    rm.addEventListener("click", () => tr.remove());
    tr.appendChild(h("td", {}, rm));
    return tr;
}

/* « Pièces demandées à chaque famille » (issue 25): read by every agent,
 * set by an admin (GET / PUT /api/staff/family-documents). */
async function familyDocs(ctx) {
    const box = h("section", { id: "pieces-famille-commune",
                               "aria-labelledby": "t-pieces-famille" },
                  h("h2", { id: "t-pieces-famille" },
                    "Pièces demandées à chaque famille"));
    const r = await ctx.call("GET", "/api/staff/family-documents");
    if (!r.ok) {
        box.append(alertBox(r.error.message));
        return box;
    }
    const list = r.data.family_documents || [];
    const words = Object.fromEntries(BLOCKS);
    if (ctx.rank < 3) {
        box.append(list.length
            ? cards(ctx.table("Pièces demandées à chaque famille",
                ["Pièce", "Manquante, elle bloque"],
                list.map((d) => h("tr", {},
                    h("td", {}, docTypeName(d.type)),
                    h("td", {}, words[d.blocks] || d.blocks)))))
            : h("p", {}, "Aucune pièce n'est demandée à toute la famille."));
        return box;
    }
    const body = h("tbody", {});
    let n = 0;
    const add = (d) => body.appendChild(familyDocRow(d, ++n));
    list.forEach(add);
    const more = h("button", { type: "button", class: "bouton second",
                               id: "piece-famille-ajouter" },
                   "Ajouter une pièce");
    more.addEventListener("click", () => add({ blocks: "aucun" }));
    const msg = h("div", { "aria-live": "polite" });
    const form = h("form", { class: "carte", id: "pieces-famille-form" },
        h("p", {}, "Pièces que chaque famille dépose pour tout le foyer "
          + "(justificatif de domicile, attestation CAF…), et ce qu'une "
          + "pièce manquante bloque."),
        h("div", { class: "tableau-defilant" }, h("table", {},
            h("caption", {}, "Pièces demandées à chaque famille"),
            h("thead", {}, h("tr", {},
                ...["Pièce", "Manquante, elle bloque", "Retirer"].map(
                    (c) => h("th", { scope: "col" }, c)))),
            body)),
        h("div", { class: "boutons" }, more),
        msg,
        h("div", { class: "boutons" }, h("button", { type: "submit",
                                                    class: "bouton" },
                                         "Enregistrer les pièces")));
    form.addEventListener("submit", async (ev) => {
        ev.preventDefault();
        const docs = [...body.querySelectorAll("tr")].map((tr) => ({
            type: tr.querySelector(".type").value,
            blocks: tr.querySelector(".blocks").value }));
        const r2 = await ctx.call("PUT", "/api/staff/family-documents",
                                  { family_documents: docs });
        if (!r2.ok) {
            msg.replaceChildren(alertBox(r2.error.message));
            return;
        }
        ctx.flash({ kind: "succes", text: "Pièces demandées à chaque "
                    + "famille enregistrées ("
                    + r2.data.family_documents.length + ")." });
        ctx.route();
    });
    box.append(form);
    return box;
}

/* One row of the units' table, its inputs named for screen readers. */
function unitRow(u, n) {
    const inp = (cls, label, attrs) => h("input", Object.assign({
        type: "text", class: cls, value: u[cls] || "", required: true,
        "aria-label": "Unité " + n + " : " + label }, attrs || {}));
    const tr = h("tr", {},
        h("td", {}, inp("code", "code", { pattern: "[A-Z0-9_]{1,16}",
                                          maxlength: "16" })),
        h("td", {}, inp("label", "libellé", { maxlength: "64" })),
        h("td", {}, inp("starts", "début", { type: "time" })),
        h("td", {}, inp("ends", "fin", { type: "time" })));
    const rm = h("button", { type: "button", class: "bouton second",
                             "aria-label": "Retirer l'unité " + n },
                 "Retirer");
    rm.addEventListener("click", () => tr.remove());
    tr.appendChild(h("td", {}, rm));
    return tr;
}

export async function viewCommune(ctx) {
    const out = h("div", { id: "commune" }, ctx.loading());
    ctx.page("Commune", out);
    const r = await ctx.call("GET", "/api/staff/town");
    if (!r.ok) {
        out.replaceChildren(alertBox(r.error.message));
        return;
    }
    const town = r.data;
    const info = town.loaded ? null
        : h("p", { class: "info", id: "commune-vide" }, "Aucune commune "
            + "n'est encore enregistrée : donnez son nom et ses unités "
            + "horaires pour créer ses activités.");
    const docs = town.loaded ? await familyDocs(ctx) : null;
    if (ctx.rank < 3) {
        out.replaceChildren(info || h("p", {}, "Commune : ",
                                      h("strong", {}, town.name)),
            cards(ctx.table("Unités horaires",
                ["Code", "Libellé", "Début", "Fin"],
                town.units.map((u) => h("tr", {}, h("td", {}, u.code),
                    h("td", {}, u.label), h("td", {}, u.starts),
                    h("td", {}, u.ends))))),
            ...(docs ? [docs] : []));
        return;
    }

    const name = h("input", { type: "text", id: "commune-nom",
                              value: town.name || "", maxlength: "200",
                              required: true });
    const body = h("tbody", {});
    let n = 0;
    const add = (u) => body.appendChild(unitRow(u, ++n));
    (town.units.length ? town.units : [{}]).forEach(add);
    const more = h("button", { type: "button", class: "bouton second",
                               id: "unite-ajouter" }, "Ajouter une unité");
    more.addEventListener("click", () => add({}));
    const msg = h("div", { "aria-live": "polite" });
    const form = h("form", { class: "carte", id: "commune-form" },
        h("h2", {}, town.loaded ? "Modifier la commune"
                                : "Créer la commune"),
        field("Nom de la commune", name),
        h("div", { class: "tableau-defilant" }, h("table", {},
            h("caption", {}, "Unités horaires (matin, repas, …)"),
            h("thead", {}, h("tr", {},
                ...["Code", "Libellé", "Début", "Fin", "Retirer"].map(
                    (c) => h("th", { scope: "col" }, c)))),
            body)),
        h("div", { class: "boutons" }, more),
        msg,
        h("div", { class: "boutons" }, h("button", { type: "submit",
                                                    class: "bouton" },
                                         "Enregistrer")));
    form.addEventListener("submit", async (ev) => {
        ev.preventDefault();
        const units = [...body.querySelectorAll("tr")].map((tr) => ({
            code: tr.querySelector(".code").value.trim(),
            label: tr.querySelector(".label").value.trim(),
            starts: tr.querySelector(".starts").value,
            ends: tr.querySelector(".ends").value }));
        const r2 = await ctx.call("PUT", "/api/staff/town",
                                  { name: name.value.trim(), units });
        if (!r2.ok) {
            msg.replaceChildren(alertBox(r2.error.message));
            return;
        }
        ctx.flash({ kind: "succes", text: "Commune « " + r2.data.name
                    + " » enregistrée (" + r2.data.units.length
                    + " unités)." });
        ctx.route();
    });
    out.replaceChildren(...(info ? [info] : []), form,
                        ...(docs ? [docs] : []));
}
