/*
 * documents.js -- the back office's "Documents à valider" (#/documents):
 * the documents families sent, opened, accepted or refused with a reason;
 * openFile(), which the Quotient familial and Absences views use too.
 */

import * as F from "../../js/format.js";
import { h, announce, alertBox } from "../../js/dom.js";
import { docTypeName, field, listOf, pick, when } from "../../js/espace.js";
import { staff, get, post, missing, setFlash, route, page, loading, notYet,
         askReason }
    from "./shell.js";
import { familyName } from "./familles.js";

export async function openFile(d) {
    /* the file needs the bearer token: fetched, then shown from a blob */
    const res = await fetch("/api/staff/documents/"
                            + encodeURIComponent(d.id),
                            { credentials: "omit", headers: {
                                Authorization: "Bearer " + staff.token } });
    if (!res.ok) {
        announce("Fichier introuvable.");
        return null;
    }
    const blob = await res.blob();
    const url = URL.createObjectURL(blob);
    window.open(url, "_blank", "noopener");
    setTimeout(() => URL.revokeObjectURL(url), 60000);
    return blob;
}

export async function viewDocuments() {
    const out = h("div", { id: "documents" }, loading());
    page("Documents à valider", out);
    const r = await get("/api/staff/documents?status=deposee");
    if (missing(r)) {
        return notYet("Documents à valider", "La validation des documents");
    }
    if (!r.ok) {
        out.replaceChildren(alertBox(r.error.message));
        return;
    }
    const list = listOf(r.data, "documents")
        .filter((d) => !d.status || d.status === "deposee");
    if (list.length === 0) {
        out.replaceChildren(h("p", {}, "Aucun document à valider."));
        return;
    }
    const today = F.todayParis();
    out.replaceChildren(...list.map((d) => {
        const fromI = h("input", { type: "date", id: "doc-du-" + d.id,
                                   value: today });
        const toI = h("input", { type: "date", id: "doc-au-" + d.id,
                                 value: F.addDays(today, 364) });
        const err = h("div", { "aria-live": "polite" });
        const who = familyName(d)
                    + (d.child_id ? " — " + (pick(d, "child_first_name",
                                                 "first_name")
                                             || d.child_id) : "");
        const accept = async () => {
            if (!fromI.value || !toI.value || toI.value < fromI.value) {
                err.replaceChildren(alertBox("Indiquez des dates de validité "
                                             + "(la fin après le début)."));
                return;
            }
            const p = await post("/api/staff/documents/"
                                 + encodeURIComponent(d.id) + "/decision",
                                 { decision: "acceptee",
                                   valid_from: fromI.value,
                                   valid_to: toI.value });
            if (!p.ok) {
                err.replaceChildren(alertBox(p.error.message));
                return;
            }
            setFlash({ kind: "succes", text: "Document accepté : " + who
                       + "." });
            route();
        };
        const refuse = async () => {
            const reason = await askReason("Refuser le document", who);
            if (!reason) {
                return;
            }
            const p = await post("/api/staff/documents/"
                                 + encodeURIComponent(d.id) + "/decision",
                                 { decision: "refusee", reason });
            if (!p.ok) {
                err.replaceChildren(alertBox(p.error.message));
                return;
            }
            setFlash({ kind: "succes", text: "Document refusé : " + who
                       + "." });
            route();
        };
        return h("section", { class: "carte", dataset: { document:
                                                         String(d.id) },
                              "aria-labelledby": "doc-t-" + d.id },
            h("h2", { id: "doc-t-" + d.id }, docTypeName(d.type) + " — "
                                             + who),
            h("p", { class: "discret" }, (d.filename || "") + " · "
              + (d.content_type || "") + " · déposé le "
              + when(pick(d, "uploaded_at"))),
            h("div", { class: "boutons" },
              h("button", { class: "bouton second petit", type: "button",
                            onclick: () => openFile(d) },
                "Voir le fichier")),
            h("div", { class: "outils-periode" },
              field("Valide du", fromI), field("au", toI)),
            err,
            h("div", { class: "boutons" },
              h("button", { class: "bouton", type: "button",
                            onclick: accept }, "Accepter"),
              h("button", { class: "bouton danger", type: "button",
                            onclick: refuse }, "Refuser")));
    }));
}
