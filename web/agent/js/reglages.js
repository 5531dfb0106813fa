/*
 * reglages.js -- the back office's « Messagerie et absences » (admin,
 * issue 25): the town's services of the messagerie with their themes,
 * and the reasons of absence it accepts with their proof required or
 * not.  Each list is saved whole (PUT /api/staff/message-services, PUT
 * /api/staff/absence-reasons); an unticked row leaves the list (kept for
 * what cites it, ticked again later).  docs/website.md, docs/api.md.
 *
 * viewReglages(env): env is agent.js's {page, get, call, loading,
 * done(text)}.
 */

import { h, alertBox } from "../../js/dom.js";
import { listOf } from "../../js/espace.js";

/* A code from a label: "Repas bio" → "repas-bio". */
function slug(s) {
    return s.normalize("NFD").replace(/[\u0300-\u036f]/g, "").toLowerCase()
        .replace(/[^a-z0-9_-]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 32);
}

/* The themes' textarea: "code : Libellé" (or just "Libellé") a line. */
function themesOf(text) {
    return text.split("\n").map((l) => l.trim()).filter(Boolean).map((l) => {
        const i = l.indexOf(" : ");
        return i > 0 ? { code: l.slice(0, i).trim(), label: l.slice(i + 3)
                                                             .trim() }
                     : { code: slug(l), label: l };
    });
}

function row(cells) {
    return h("tr", {}, cells.map((c) => h("td", {}, c)));
}

function serviceRow(s, n) {
    const label = "Service " + n;
    return row([
        h("input", { type: "checkbox", class: "actif",
                     checked: s.active !== false,
                     "aria-label": label + " : proposé aux familles" }),
        h("input", { type: "text", class: "code", value: s.code || "",
                     readonly: s.code ? true : null, maxlength: "32",
                     "aria-label": label + " : code" }),
        h("input", { type: "text", class: "libelle", value: s.label || "",
                     maxlength: "80", "aria-label": label + " : libellé" }),
        h("textarea", { class: "themes", rows: "4",
                        "aria-label": label + " : thèmes, un par ligne "
                                      + "(code : libellé)" },
          /* a service off the list keeps its last themes, offered
           * again if it is ticked again */
          listOf(s, "themes").filter((t) => t.active !== false
                                            || s.active === false)
              .map((t) => t.code + " : " + t.label).join("\n"))]);
}

function reasonRow(x, n) {
    const label = "Motif " + n;
    return row([
        h("input", { type: "checkbox", class: "actif",
                     checked: x.active !== false,
                     "aria-label": label + " : accepté" }),
        h("input", { type: "text", class: "code", value: x.code || "",
                     readonly: x.code ? true : null, maxlength: "32",
                     "aria-label": label + " : code" }),
        h("input", { type: "text", class: "libelle", value: x.label || "",
                     maxlength: "80", "aria-label": label + " : libellé" }),
        h("input", { type: "checkbox", class: "preuve",
                     checked: x.proof_required !== false,
                     "aria-label": label + " : justificatif demandé" })]);
}

function listForm(env, o) {
    const body = h("tbody", {});
    let n = 0;
    const add = (x) => body.appendChild(o.row(x, ++n));
    o.items.forEach(add);
    const msg = h("div", { "aria-live": "polite" });
    const form = h("form", { class: "carte", id: o.id },
        h("h2", {}, o.title), h("p", { class: "discret" }, o.help),
        h("div", { class: "tableau-defilant" }, h("table", {},
            h("caption", { class: "visually-hidden" }, o.title),
            h("thead", {}, h("tr", {}, o.heads.map((c) =>
                h("th", { scope: "col" }, c)))), body)),
        h("div", { class: "boutons" },
          h("button", { type: "button", class: "bouton second",
                        onclick: () => add({}) }, o.more)),
        msg,
        h("div", { class: "boutons" },
          h("button", { type: "submit", class: "bouton" }, "Enregistrer")));
    form.addEventListener("submit", async (ev) => {
        ev.preventDefault();
        const rows = [...body.querySelectorAll("tr")]
            .filter((tr) => tr.querySelector(".actif").checked)
            .map((tr) => {
                const label = tr.querySelector(".libelle").value.trim();
                const code = tr.querySelector(".code").value.trim()
                             || slug(label);
                return o.item(tr, code, label);
            });
        const r = await env.call("PUT", o.path, o.wrap(rows));
        if (!r.ok) {
            msg.replaceChildren(alertBox(r.error.message));
            return;
        }
        env.done(o.saved);
    });
    return form;
}

export async function viewReglages(env) {
    const out = h("div", { id: "reglages" }, env.loading());
    env.page("Messagerie et absences", out);
    const [rs, ra] = await Promise.all([
        env.get("/api/staff/message-services"),
        env.get("/api/staff/absence-reasons")]);
    if (!rs.ok || !ra.ok) {
        out.replaceChildren(alertBox((rs.ok ? ra : rs).error.message));
        return;
    }
    out.replaceChildren(
        listForm(env, {
            id: "form-services", title: "Services de la messagerie",
            help: "Les familles écrivent à un service, sur un de ses "
                + "thèmes. Décochez un service pour ne plus le proposer : "
                + "ses conversations le gardent.",
            heads: ["Proposé", "Code", "Libellé",
                    "Thèmes (un par ligne : code : libellé)"],
            items: listOf(rs.data, "services"), row: serviceRow,
            more: "Ajouter un service",
            path: "/api/staff/message-services",
            item: (tr, code, label) => ({ code, label,
                themes: themesOf(tr.querySelector(".themes").value) }),
            wrap: (services) => ({ services }),
            saved: "Services de la messagerie enregistrés." }),
        listForm(env, {
            id: "form-motifs", title: "Motifs d'absence acceptés",
            help: "Une absence justifiée par un de ces motifs n'est pas "
                + "facturée une fois que la mairie a accepté son "
                + "justificatif.",
            heads: ["Accepté", "Code", "Libellé", "Justificatif demandé"],
            items: listOf(ra.data, "reasons"), row: reasonRow,
            more: "Ajouter un motif",
            path: "/api/staff/absence-reasons",
            item: (tr, code, label) => ({ code, label,
                proof_required: tr.querySelector(".preuve").checked }),
            wrap: (reasons) => ({ reasons }),
            saved: "Motifs d'absence enregistrés." }));
}
