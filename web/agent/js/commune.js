/*
 * commune.js -- the town's own settings in the back office (issue 26):
 * its name and its units (code, label, start and end), read by every
 * agent, changed by an admin; the first time, they make the town, so a
 * term is run without the town file.  Routes of office/town.c,
 * docs/api.md (*Back office*), docs/office.md (*The town's settings*).
 *
 * agent.js gives the frame (ctx: call, page, table, loading, flash,
 * route, rank).
 */

import { h, alertBox, cards } from "../../js/dom.js";
import { field } from "../../js/espace.js";

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
    if (ctx.rank < 3) {
        out.replaceChildren(info || h("p", {}, "Commune : ",
                                      h("strong", {}, town.name)),
            cards(ctx.table("Unités horaires",
                ["Code", "Libellé", "Début", "Fin"],
                town.units.map((u) => h("tr", {}, h("td", {}, u.code),
                    h("td", {}, u.label), h("td", {}, u.starts),
                    h("td", {}, u.ends))))));
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
    out.replaceChildren(...(info ? [info] : []), form);
}
