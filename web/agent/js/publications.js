/*
 * publications.js -- what the town publishes to every family (issue 25):
 * « Publications » of the back office, its documents (rules, price lists,
 * menus: PDF) and its news (« Actualités », shown on the families'
 * dashboard between two days).  Routes of office/publication.c,
 * docs/api.md.
 *
 * agent.js gives the frame (ctx: call, page, table, loading, rank,
 * flash, route, token).
 */

import * as F from "../../js/format.js";
import { h, alertBox, announce } from "../../js/dom.js";
import { field, when } from "../../js/espace.js";

export const CATEGORIES = { reglement: "Règlement", tarifs: "Tarifs",
                            menus: "Menus", autre: "Autre" };

const PDF_MAX = 5 * 1024 * 1024;

function done(ctx, text) {
    ctx.flash({ kind: "succes", text });
    ctx.route();
}

/* The staff's file (needs the token): fetched, opened from a blob. */
async function openPdf(ctx, d) {
    const r = await fetch("/api/staff/town-documents/"
                          + encodeURIComponent(d.id),
                          { credentials: "omit", cache: "no-store",
                            headers: { Authorization: "Bearer "
                                       + ctx.token() } });
    if (!r.ok) {
        announce("Fichier introuvable.");
        return;
    }
    window.open(URL.createObjectURL(await r.blob()), "_blank", "noopener");
}

/* A button that asks once more before it acts. */
function confirmButton(label, what, act) {
    const b = h("button", { type: "button", class: "bouton petit second",
                            "aria-label": label + " : " + what }, label);
    let armed = false;
    b.addEventListener("click", async () => {
        if (!armed) {
            armed = true;
            b.textContent = "Confirmer : " + label.toLowerCase();
            b.setAttribute("aria-label", "Confirmer : " + label.toLowerCase()
                           + " " + what);
            announce("Appuyez encore pour confirmer.");
            return;
        }
        b.disabled = true;
        await act();
        b.disabled = false;
    });
    return b;
}

function documentsSection(ctx, list) {
    const msg = h("div", { "aria-live": "polite" });
    const title = h("input", { id: "pub-titre", type: "text",
                               maxlength: "200", required: true,
                               autocomplete: "off" });
    const cat = h("select", { id: "pub-categorie" },
                  Object.entries(CATEGORIES).map(([k, v]) =>
                      h("option", { value: k }, v)));
    const file = h("input", { id: "pub-fichier", type: "file",
                              accept: "application/pdf,.pdf",
                              required: true });
    const form = h("form", { id: "form-publication", novalidate: true },
        h("h3", {}, "Publier un document"),
        field("Titre", title, "Par exemple : Règlement intérieur "
              + "2026-2027."),
        field("Catégorie", cat),
        field("Fichier PDF", file, "PDF, 5 Mo au plus."),
        msg,
        h("div", { class: "boutons" },
          h("button", { type: "submit", class: "bouton" }, "Publier")));
    form.addEventListener("submit", async (ev) => {
        ev.preventDefault();
        const f = file.files[0];
        const problem = !title.value.trim() ? [title, "Indiquez un titre."]
            : !f ? [file, "Choisissez le fichier PDF."]
            : f.size > PDF_MAX ? [file, "Ce fichier fait "
                                 + (f.size / 1048576).toFixed(1)
                                   .replace(".", ",")
                                 + " Mo : 5 Mo au plus."]
            : null;
        if (problem) {
            msg.replaceChildren(alertBox(problem[1]));
            problem[0].focus();
            return;
        }
        const q = "?title=" + encodeURIComponent(title.value.trim())
                  + "&category=" + cat.value
                  + "&name=" + encodeURIComponent(f.name);
        const r = await fetch("/api/staff/town-documents" + q, {
            method: "POST", credentials: "omit", cache: "no-store", body: f,
            headers: { Authorization: "Bearer " + ctx.token(),
                       Accept: "application/json",
                       "Content-Type": f.type || "application/pdf" } });
        if (!r.ok) {
            let m = "Le document n'a pas pu être publié (" + r.status + ").";
            try {
                m = (await r.json()).error.message;
            } catch (e) { /* not JSON: nginx's */ }
            msg.replaceChildren(alertBox(m));
            return;
        }
        done(ctx, "Document publié : " + title.value.trim() + ".");
    });

    const rows = list.map((d) => h("tr", {},
        h("th", { scope: "row" }, d.title),
        h("td", {}, CATEGORIES[d.category] || d.category),
        h("td", {}, when(d.published_at) + " par " + d.published_by),
        h("td", {}, (d.size / 1024).toFixed(0) + " ko"),
        h("td", {}, h("div", { class: "boutons" },
            h("button", { type: "button", class: "bouton petit second",
                          "aria-label": "Voir : " + d.title,
                          onclick: () => openPdf(ctx, d) }, "Voir"),
            confirmButton("Retirer", d.title, async () => {
                const r = await ctx.call("DELETE",
                    "/api/staff/town-documents/" + d.id);
                if (!r.ok) {
                    announce(r.error.message);
                    return;
                }
                done(ctx, "Document retiré : " + d.title + ".");
            })))));

    return h("section", { class: "carte", id: "documents-commune",
                          "aria-labelledby": "t-docs-commune" },
        h("h2", { id: "t-docs-commune" }, "Documents de la commune"),
        list.length
            ? ctx.table("Documents publiés", ["Titre", "Catégorie",
                        "Publié le", "Taille", "Actions"], rows)
            : h("p", {}, "Aucun document publié."),
        form);
}

function newsSection(ctx, list) {
    const msg = h("div", { "aria-live": "polite" });
    const title = h("input", { id: "act-titre", type: "text",
                               maxlength: "200", required: true,
                               autocomplete: "off" });
    const body = h("textarea", { id: "act-texte", rows: "5",
                                 maxlength: "5000", required: true });
    const from = h("input", { id: "act-du", type: "date", required: true,
                              value: F.todayParis() });
    const until = h("input", { id: "act-au", type: "date" });
    const submit = h("button", { type: "submit", class: "bouton" },
                     "Publier l'actualité");
    let editing = null;
    const form = h("form", { id: "form-actualite", novalidate: true },
        h("h3", { id: "t-form-actualite" }, "Publier une actualité"),
        field("Titre", title),
        field("Texte", body, "5 000 caractères au plus."),
        field("Afficher à partir du", from),
        field("Jusqu'au (facultatif)", until,
              "Laissez vide pour l'afficher sans date de fin."),
        msg,
        h("div", { class: "boutons" }, submit));
    form.addEventListener("submit", async (ev) => {
        ev.preventDefault();
        const problem = !title.value.trim() ? [title, "Indiquez un titre."]
            : !body.value.trim() ? [body, "Écrivez le texte."]
            : !from.value ? [from, "Indiquez la date de début."]
            : until.value && until.value < from.value
              ? [until, "La date de fin précède la date de début."]
            : null;
        if (problem) {
            msg.replaceChildren(alertBox(problem[1]));
            problem[0].focus();
            return;
        }
        const b = { title: title.value.trim(), body: body.value.trim(),
                    from: from.value, until: until.value || null };
        const r = editing
            ? await ctx.call("PUT", "/api/staff/news/" + editing, b)
            : await ctx.call("POST", "/api/staff/news", b);
        if (!r.ok) {
            msg.replaceChildren(alertBox(r.error.message));
            return;
        }
        done(ctx, (editing ? "Actualité modifiée : "
                           : "Actualité publiée : ") + b.title + ".");
    });

    const today = F.todayParis();
    const cardsList = list.map((n) => {
        const state = n.from > today ? "À venir"
            : n.until && n.until < today ? "Terminée" : "Affichée";
        return h("article", { class: "carte actualite" },
            h("h3", {}, n.title),
            h("p", { class: "discret" }, state + " · du " + when(n.from)
              + (n.until ? " au " + when(n.until) : ", sans date de fin")),
            h("p", { class: "texte-libre" }, n.body),
            h("div", { class: "boutons" },
              h("button", { type: "button", class: "bouton petit second",
                            "aria-label": "Modifier : " + n.title,
                            onclick: () => {
                                editing = n.id;
                                title.value = n.title;
                                body.value = n.body;
                                from.value = n.from;
                                until.value = n.until || "";
                                form.querySelector("h3").textContent =
                                    "Modifier l'actualité";
                                submit.textContent = "Enregistrer";
                                title.focus();
                            } }, "Modifier"),
              confirmButton("Retirer", n.title, async () => {
                  const r = await ctx.call("DELETE",
                                           "/api/staff/news/" + n.id);
                  if (!r.ok) {
                      announce(r.error.message);
                      return;
                  }
                  done(ctx, "Actualité retirée : " + n.title + ".");
              })));
    });

    return h("section", { class: "carte", id: "actualites",
                          "aria-labelledby": "t-actualites" },
        h("h2", { id: "t-actualites" }, "Actualités"),
        cardsList.length ? h("div", {}, ...cardsList)
                         : h("p", {}, "Aucune actualité."),
        form);
}

export async function viewPublications(ctx) {
    /* one ctx.page() only: the first takes the flash of a change */
    ctx.main.replaceChildren(ctx.loading());
    const [d, n] = await Promise.all([
        ctx.call("GET", "/api/staff/town-documents"),
        ctx.call("GET", "/api/staff/news")]);
    if (!d.ok || !n.ok) {
        ctx.page("Publications", alertBox((d.ok ? n : d).error.message));
        return;
    }
    ctx.page("Publications",
        h("p", {}, "Ce que la commune publie pour toutes les familles, "
          + "sur leur tableau de bord."),
        newsSection(ctx, n.data.news || []),
        documentsSection(ctx, d.data.documents || []));
}
