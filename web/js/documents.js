/*
 * documents.js -- the family space's "Mes documents" (#/documents): the
 * family's documents, those its enrolments require, sending and deleting.
 */

import * as api from "./api.js";
import { h, announce, alertBox, cards } from "./dom.js";
import { ACCEPT, childName, clearOnInput, DOC_TYPES, docTypeName, field,
         listOf, notYet, pick, settle, STATUS_WORDS, statusTag, UPLOAD_HELP,
         uploadDocument, uploadProgress, when } from "./espace.js";

/* "Supprimer", then "Confirmer la suppression": DELETE, the page again. */
function deleteButton(ctx, d) {
    let armed = false;
    const b = h("button", { class: "bouton danger petit", type: "button",
                            "aria-label": "Supprimer " + docTypeName(d.type)
                                          + " " + d.filename },
                "Supprimer");
    b.addEventListener("click", async () => {
        if (!armed) {
            armed = true;
            b.textContent = "Confirmer la suppression";
            b.setAttribute("aria-label", "Confirmer la suppression de "
                           + docTypeName(d.type) + " " + d.filename);
            return;
        }
        b.disabled = true;
        const r = await api.del("/api/documents/" + encodeURIComponent(d.id));
        const msg = h("span", { role: "alert" });
        b.after(msg);
        settle(ctx, r, msg, "Document supprimé.");
        b.disabled = false;
    });
    return b;
}

function documentsTable(ctx, list) {
    const me = ctx.me;
    return cards(h("div", { class: "tableau-defilant" }, h("table", {},
        h("caption", {}, "Documents déposés"),
        h("thead", {}, h("tr", {},
            h("th", { scope: "col" }, "Document"),
            h("th", { scope: "col" }, "Enfant"),
            h("th", { scope: "col" }, "Déposé le"),
            h("th", { scope: "col" }, "Statut"),
            h("th", { scope: "col" }, "Validité"),
            h("th", { scope: "col" }, "Motif"),
            h("th", { scope: "col" }, "Fichier"))),
        h("tbody", {}, list.map((d) => h("tr", {
                dataset: { document: String(d.id) } },
            h("td", {}, docTypeName(d.type),
              d.filename ? h("span", { class: "discret" },
                             " (" + d.filename + ")") : null),
            h("td", {}, d.child_id ? childName(me, d.child_id) : "Famille"),
            h("td", {}, when(pick(d, "uploaded_at", "created_at"))),
            h("td", {}, statusTag(d.expired ? "expiree" : d.status)),
            h("td", {}, d.valid_from || d.valid_to
                ? (d.valid_from ? "du " + when(d.valid_from) + " " : "")
                  + (d.valid_to ? "jusqu'au " + when(d.valid_to) : "")
                : "—"),
            h("td", {}, d.reason || ""),
            h("td", {}, d.id && d.filename
                ? h("div", { class: "boutons" },
                    h("a", { href: "/api/documents/"
                                   + encodeURIComponent(d.id),
                             download: d.filename },
                      "Voir le fichier",
                      h("span", { class: "visually-hidden" },
                        " " + docTypeName(d.type) + " " + d.filename)),
                    d.status === "acceptee" ? null : deleteButton(ctx, d))
                : "—")))))));
}

/*
 * Pièces à fournir (issue 25): per child, per activity that requires
 * documents, each one and where it stands (GET /api/documents/required);
 * "Déposer" fills the upload form below with the type and the child.
 */
const REQUIRED_HELP = {
    valide: null,
    deposee: "La mairie va le vérifier.",
    a_renouveler: "Déposez le nouveau avant la fin de sa validité.",
    refusee: "Déposez-en un autre.",
    expiree: "Déposez le nouveau.",
    manquante: "À déposer avant l'inscription et la réservation.",
};

function requiredRow(doc, act, child, prepare) {
    const name = docTypeName(doc.type);
    const help = [REQUIRED_HELP[doc.status] || null,
                  doc.valid_to ? "Valable jusqu'au " + when(doc.valid_to)
                                 + "." : null,
                  doc.reason ? "Motif : " + doc.reason : null]
        .filter(Boolean).join(" ");
    const todo = doc.status !== "valide" && doc.status !== "deposee";
    return h("tr", { dataset: { piece: child.child_id + "/"
                                        + act.activity_id + "/"
                                        + doc.type,
                                statut: doc.status } },
        h("th", { scope: "row" }, name),
        h("td", {}, act.activity_name || act.activity_id,
          act.enrolment ? h("span", { class: "discret" }, " (inscription "
                            + (STATUS_WORDS[act.enrolment] || act.enrolment)
                              .toLowerCase() + ")") : null),
        h("td", {}, statusTag(doc.status),
          help ? h("span", { class: "discret" }, " " + help) : null),
        h("td", {}, todo
            ? h("button", { class: "bouton petit", type: "button",
                            "aria-label": "Déposer " + name + " pour "
                                          + child.first_name,
                            onclick: () => prepare(doc.type,
                                                   child.child_id) },
                "Déposer")
            : "—"));
}

/* What a missing document of the whole family stops (the town sets
 * it). */
const BLOCKS_WORDS = {
    aucun: "—",
    inscription: "les demandes d'inscription",
    reservation: "les inscriptions et les réservations",
};

function familyRow(doc, prepare) {
    const name = docTypeName(doc.type);
    const help = [REQUIRED_HELP[doc.status] || null,
                  doc.valid_to ? "Valable jusqu'au " + when(doc.valid_to)
                                 + "." : null,
                  doc.reason ? "Motif : " + doc.reason : null]
        .filter(Boolean).join(" ");
    const todo = doc.status !== "valide" && doc.status !== "deposee";
    return h("tr", { dataset: { piece: "famille/" + doc.type,
                                statut: doc.status } },
        h("th", { scope: "row" }, name),
        h("td", {}, BLOCKS_WORDS[doc.blocks] || "—"),
        h("td", {}, statusTag(doc.status),
          help ? h("span", { class: "discret" }, " " + help) : null),
        h("td", {}, todo
            ? h("button", { class: "bouton petit", type: "button",
                            "aria-label": "Déposer " + name + " pour "
                                          + "toute la famille",
                            onclick: () => prepare(doc.type, "") },
                "Déposer")
            : "—"));
}

/* The documents the town requires of the whole family (issue 25). */
function familyTable(data, prepare) {
    const docs = listOf(data, "family");
    return docs.length
        ? cards(h("div", { class: "tableau-defilant" },
            h("table", { id: "pieces-famille" },
              h("caption", {}, "Pièces demandées pour toute la famille"),
              h("thead", {}, h("tr", {},
                h("th", { scope: "col" }, "Pièce"),
                h("th", { scope: "col" }, "Manquante, elle bloque"),
                h("th", { scope: "col" }, "État"),
                h("th", { scope: "col" }, "Action"))),
              h("tbody", {}, docs.map((d) => familyRow(d, prepare))))))
        : null;
}

function requiredTables(data, prepare) {
    const kids = listOf(data, "children");
    const n = Number(data && data.to_do) || 0;
    return [
        h("p", { id: "pieces-resume", class: n ? "info" : "" }, n === 0
            ? "Toutes les pièces demandées sont fournies."
            : n === 1 ? "1 pièce à fournir ou à renouveler."
            : n + " pièces à fournir ou à renouveler."),
        h("p", { class: "discret" }, "Une pièce déposée pour un enfant ne "
          + "vaut que pour lui ; choisissez « Toute la famille » pour une "
          + "pièce commune (attestation d'assurance du foyer, par "
          + "exemple)."),
        familyTable(data, prepare),
        ...kids.map((c) => {
            const rows = (c.activities || []).flatMap((a) =>
                (a.documents || []).map((d) =>
                    requiredRow(d, a, c, prepare)));
            return rows.length
                ? cards(h("div", { class: "tableau-defilant" },
                    h("table", { dataset: { enfant: c.child_id } },
                      h("caption", {}, "Pièces demandées pour "
                                       + c.first_name),
                      h("thead", {}, h("tr", {},
                        h("th", { scope: "col" }, "Pièce"),
                        h("th", { scope: "col" }, "Activité"),
                        h("th", { scope: "col" }, "État"),
                        h("th", { scope: "col" }, "Action"))),
                      h("tbody", {}, rows))))
                : h("p", { dataset: { enfant: c.child_id } },
                    c.first_name + " : aucune pièce demandée pour ses "
                    + "activités.");
        }),
    ];
}

export async function viewDocuments(ctx) {
    const me = ctx.me;
    const out = h("div", { id: "liste-documents" },
                  h("p", { class: "chargement" }, "Chargement…"));
    const msg = h("div", { "aria-live": "polite" });
    const type = h("select", { id: "doc-type", required: true },
        Object.entries(DOC_TYPES).map(([k, v]) =>
            h("option", { value: k }, v)));
    const child = h("select", { id: "doc-enfant" },
        h("option", { value: "" }, "Toute la famille"),
        (me.children || []).map((c) => h("option", { value: c.id },
                                          c.first_name)));
    const file = h("input", { type: "file", id: "doc-fichier",
                              accept: ACCEPT, required: true });
    const ok = h("button", { class: "bouton", type: "submit" }, "Envoyer");
    const bar = uploadProgress();
    const form = h("form", { class: "carte", id: "form-document",
                             "aria-labelledby": "t-depot" },
        h("h2", { id: "t-depot" }, "Déposer un document"),
        field("Type de document", type),
        field("Enfant concerné", child),
        field("Fichier", file, UPLOAD_HELP), bar.node,
        msg, h("div", { class: "boutons" }, ok));
    clearOnInput(form, msg);

    const ahead = h("section", { id: "pieces-a-fournir",
                                 "aria-labelledby": "t-pieces" },
        h("h2", { id: "t-pieces" }, "Pièces à fournir"),
        h("p", { class: "chargement" }, "Chargement…"));
    const prepare = (t, cid) => {
        if (![...type.options].some((o) => o.value === t)) {
            type.append(h("option", { value: t }, docTypeName(t)));
        }
        type.value = t;
        child.value = cid || "";
        form.scrollIntoView({ block: "start" });
        file.focus();
        announce("Déposer " + docTypeName(t) + " : choisissez le fichier.");
    };

    ctx.page("Mes documents",
             h("p", {}, "Les pièces demandées par une activité doivent être "
               + "déposées pour demander l'inscription, puis acceptées par "
               + "la mairie et valides pour pouvoir réserver."),
             ahead, out, form);

    const need = await api.get("/api/documents/required");
    if (need.status === 401) {
        return ctx.expired();
    }
    ahead.replaceChildren(ahead.firstChild,
        ...(need.ok ? requiredTables(need.data, prepare).filter(Boolean)
            : [api.isMissing(need)
               ? h("p", {}, "La liste des pièces demandées n'est pas "
                   + "encore disponible en ligne.")
               : alertBox(need.error.message)]));

    const r = await api.get("/api/documents");
    if (r.status === 401) {
        return ctx.expired();
    }
    if (api.isMissing(r)) {
        return notYet(ctx, "Mes documents", "Le dépôt de documents");
    }
    if (!r.ok) {
        out.replaceChildren(alertBox(r.error.message));
    } else {
        const list = listOf(r.data, "documents");
        out.replaceChildren(list.length ? documentsTable(ctx, list)
                                        : h("p", {}, "Aucun document."));
    }

    form.addEventListener("submit", async (ev) => {
        ev.preventDefault();
        msg.replaceChildren();
        const f = file.files && file.files[0];
        if (!f) {
            msg.replaceChildren(alertBox("Choisissez un fichier."));
            file.focus();
            return;
        }
        ok.disabled = true;
        const u = await uploadDocument(f, type.value, child.value, bar.set);
        ok.disabled = false;
        bar.hide();
        settle(ctx, u, msg, "Document envoyé : la mairie va le vérifier.");
    });
}
