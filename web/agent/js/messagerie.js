/*
 * messagerie.js -- the back office's « Messagerie » (issues 25, 26): the
 * families' threads filtered by the town's services and themes (GET
 * /api/staff/messages?service=&theme=&unread=1), a thread with its
 * attachments (opened with the staff token) and the reply, with files of
 * its own (POST /api/staff/message-attachments, then the reply naming
 * them); « Écrire à une famille » opens a thread to a family (POST
 * /api/staff/threads).  docs/website.md, docs/office.md.
 *
 * viewMessagerie(env): env is agent.js's {page, get, post, call, table,
 * loading, familyName, token(), done(text)}.
 */

import { h, alertBox, announce } from "../../js/dom.js";
import { UPLOAD_WORDS, field, listOf, pick, when }
    from "../../js/espace.js";
import { attachmentField, attachmentLinks, topicFields, topicOf }
    from "../../js/messagerie.js";

/* The staff's files need the bearer token: sent and read with it. */
function staffUpload(env) {
    return async (file, progress) => {
        progress(0);
        let res;
        try {
            res = await fetch("/api/staff/message-attachments?name="
                              + encodeURIComponent(file.name || ""),
                              { method: "POST", credentials: "omit",
                                body: file,
                                headers: { "Content-Type": file.type
                                           || "application/octet-stream",
                                           Authorization: "Bearer "
                                           + env.token() } });
        } catch (e) {
            return { ok: false, status: 0, error: {
                code: "unreachable",
                message: "Le serveur ne répond pas. Réessayez." } };
        }
        progress(1);
        const data = await res.json().catch(() => null);
        if (res.ok) {
            return { ok: true, status: res.status, data };
        }
        const e = (data && data.error) || {};
        return { ok: false, status: res.status,
                 error: { code: e.code, message: UPLOAD_WORDS[e.code]
                          || e.message || "Envoi impossible." } };
    };
}

function staffAttachment(env) {
    return (a) => h("button", {
        class: "lien", type: "button",
        onclick: async () => {
            const res = await fetch("/api/staff/message-attachments/"
                                    + encodeURIComponent(a.id),
                                    { credentials: "omit", headers: {
                                        Authorization: "Bearer "
                                                       + env.token() } });
            if (!res.ok) {
                announce("Fichier introuvable.");
                return;
            }
            const url = URL.createObjectURL(await res.blob());
            window.open(url, "_blank", "noopener");
            setTimeout(() => URL.revokeObjectURL(url), 60000);
        } }, "Ouvrir " + a.filename);
}

async function services(env) {
    const r = await env.get("/api/staff/message-services");
    return r.ok ? listOf(r.data, "services") : [];
}

async function viewThread(env, tid) {
    const out = h("div", { id: "messagerie" }, env.loading());
    env.page("Messagerie", out);
    const r = await env.get("/api/staff/messages/" + encodeURIComponent(tid));
    if (!r.ok) {
        out.replaceChildren(alertBox(r.error.message));
        return;
    }
    const t = r.data.thread || r.data;
    const body = h("textarea", { id: "ag-reponse", rows: "5" });
    const pj = attachmentField("ag-reponse-pj");
    const err = h("div", { "aria-live": "polite" });
    const ok = h("button", { class: "bouton", type: "submit" }, "Répondre");
    const form = h("form", { class: "carte" },
        field("Réponse à la famille", body), pj.node, err,
        h("div", { class: "boutons" }, ok));
    form.addEventListener("submit", async (ev) => {
        ev.preventDefault();
        const bad = !body.value.trim() ? "Écrivez la réponse."
                                       : pj.problem();
        if (bad) {
            err.replaceChildren(alertBox(bad));
            return;
        }
        ok.disabled = true;
        const sent = await pj.send(staffUpload(env));
        if (sent.error) {
            ok.disabled = false;
            err.replaceChildren(alertBox(sent.error.error.message));
            return;
        }
        const p = await env.post("/api/staff/messages/"
                                 + encodeURIComponent(tid),
                                 { body: body.value.trim(),
                                   attachments: sent.ids });
        ok.disabled = false;
        if (!p.ok) {
            err.replaceChildren(alertBox(p.error.message));
            return;
        }
        env.done("Réponse envoyée.");
    });
    out.replaceChildren(
        h("p", {}, h("a", { href: "#/messagerie" },
                     "← Toutes les conversations")),
        h("h2", {}, (t.subject || "Conversation") + " — "
                    + env.familyName(t)),
        topicOf(t) ? h("p", { class: "discret" }, topicOf(t)) : null,
        h("ol", { class: "fil" }, listOf(r.data, "messages").map((m) => {
            const fam = m.from === "family";
            return h("li", { class: "message " + (fam ? "mairie" : "moi") },
                h("p", { class: "discret" }, (fam ? "Famille" : (
                    m.author_name || "Mairie"))
                  + " — " + when(pick(m, "created_at", "at"))),
                h("p", { class: "corps" }, m.body || ""),
                attachmentLinks(m, staffAttachment(env)));
        })), form);
}

/* « Écrire à une famille »: a thread opened by the town. */
function newThreadForm(env, list) {
    const fam = h("input", { type: "text", id: "ag-nouveau-famille",
                             required: true });
    const topic = topicFields(list.filter((s) => s.active !== false)
        .map((s) => ({ ...s, themes: listOf(s, "themes")
                                  .filter((x) => x.active !== false) })),
        "ag-nouveau-service", "ag-nouveau-theme");
    const subject = h("input", { type: "text", id: "ag-nouveau-objet",
                                 required: true, maxlength: "200" });
    const body = h("textarea", { id: "ag-nouveau-corps", rows: "4",
                                 required: true });
    const err = h("div", { "aria-live": "polite" });
    const form = h("form", { class: "carte", id: "form-nouveau-fil",
                             "aria-labelledby": "t-nouveau-fil" },
        h("h2", { id: "t-nouveau-fil" }, "Écrire à une famille"),
        field("Numéro de dossier de la famille", fam),
        field("Service", topic.service), field("Thème", topic.theme),
        field("Objet", subject), field("Message", body), err,
        h("div", { class: "boutons" },
          h("button", { class: "bouton", type: "submit" }, "Envoyer")));
    form.addEventListener("submit", async (ev) => {
        ev.preventDefault();
        if (!fam.value.trim() || !subject.value.trim()
            || !body.value.trim())
        {
            err.replaceChildren(alertBox("Indiquez la famille, l'objet et "
                                         + "le message."));
            return;
        }
        const p = await env.post("/api/staff/threads", {
            family_id: fam.value.trim(), service: topic.service.value,
            theme: topic.value(), subject: subject.value.trim(),
            body: body.value.trim() });
        if (!p.ok) {
            err.replaceChildren(alertBox(p.error.message));
            return;
        }
        env.done("Message envoyé à la famille " + fam.value.trim() + ".");
    });
    return form;
}

export async function viewMessagerie(env) {
    const q = new URLSearchParams(location.hash.split("?")[1] || "");
    if (q.get("fil")) {
        return viewThread(env, q.get("fil"));
    }
    const out = h("div", { id: "messagerie" }, env.loading());
    env.page("Messagerie", out);
    const list = await services(env);
    const service = h("select", { id: "ag-filtre-service" },
        h("option", { value: "" }, "Tous les services"),
        list.map((s) => h("option", { value: s.code },
                          s.label + (s.active === false ? " (retiré)"
                                                        : ""))));
    const theme = h("select", { id: "ag-filtre-theme" });
    const unread = h("input", { type: "checkbox", id: "ag-filtre-nonlus" });
    service.value = q.get("service") || "";
    const themes = () => {
        const s = list.find((x) => x.code === service.value);
        theme.replaceChildren(h("option", { value: "" }, "Tous les thèmes"),
            ...(s ? listOf(s, "themes") : []).map((t) =>
                h("option", { value: t.code }, t.label)));
        theme.disabled = !s;
    };
    themes();
    theme.value = q.get("theme") || "";
    unread.checked = q.get("unread") === "1";
    const filter = h("form", { class: "carte filtres", id: "form-filtres",
                               "aria-label": "Filtrer les conversations" },
        field("Service", service), field("Thème", theme),
        h("div", { class: "champ" }, unread,
          h("label", { for: "ag-filtre-nonlus" }, " Non lus seulement")),
        h("div", { class: "boutons" },
          h("button", { class: "bouton second", type: "submit" },
            "Filtrer")));
    service.addEventListener("change", themes);
    filter.addEventListener("submit", (ev) => {
        ev.preventDefault();
        const p = new URLSearchParams();
        if (service.value) {
            p.set("service", service.value);
            if (theme.value) {
                p.set("theme", theme.value);
            }
        }
        if (unread.checked) {
            p.set("unread", "1");
        }
        location.hash = "#/messagerie" + (p.toString() ? "?" + p : "");
    });
    const p = new URLSearchParams();
    for (const k of ["service", "theme", "unread"]) {
        if (q.get(k)) {
            p.set(k, q.get(k));
        }
    }
    const r = await env.get("/api/staff/messages"
                            + (p.toString() ? "?" + p : ""));
    if (!r.ok) {
        out.replaceChildren(filter, alertBox(r.error.message));
        return;
    }
    const threads = listOf(r.data, "threads");
    out.replaceChildren(filter, threads.length === 0
        ? h("p", { id: "aucun-fil" }, "Aucune conversation.")
        : env.table("Conversations", ["Objet", "Famille", "Service et thème",
                                      "Dernier message", "Non lus"],
            threads.map((t) => h("tr", { dataset: { fil: String(t.id) } },
                h("td", {}, h("a", { href: "#/messagerie?fil="
                                     + encodeURIComponent(t.id) },
                              t.subject || "Sans objet")),
                h("td", {}, env.familyName(t)),
                h("td", {}, topicOf(t)),
                h("td", {}, when(pick(t, "updated_at", "created_at"))),
                h("td", {}, String(Number(t.unread) || 0))))),
        newThreadForm(env, list));
}
