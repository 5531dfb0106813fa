/*
 * messagerie.js -- the family space's "Messagerie" (#/messagerie): the
 * threads with the town's services, writing and attaching; the unread
 * count of the menu badge, and the attachment and topic helpers the back
 * office's messagerie shares.
 */

import * as api from "./api.js";
import { h, alertBox } from "./dom.js";
import { ACCEPT, clearOnInput, field, listOf, megabytes, notYet, pick,
         settle, UPLOAD_HELP, UPLOAD_WORDS, uploadProblem, uploadProgress,
         when } from "./espace.js";

const BODY_MAX = 5000;      /* docs/api.md: body 1-5000 characters */

/* A message's textarea with its counter ("120 / 5 000 caractères"). */
function messageBody(tid, label, rows) {
    const count = h("span", { id: tid + "-compte", class: "discret" });
    const body = h("textarea", { id: tid, rows, required: true,
                                 "aria-describedby": tid + "-compte" });
    const update = () => {
        const n = body.value.trim().length;
        count.textContent = n.toLocaleString("fr-FR") + " / "
            + BODY_MAX.toLocaleString("fr-FR") + " caractères"
            + (n > BODY_MAX ? " : trop long" : "");
        count.classList.toggle("trop", n > BODY_MAX);
    };
    body.addEventListener("input", update);
    update();
    return {
        body,
        node: h("div", { class: "champ" }, h("label", { for: tid }, label),
                body, count),
        problem() {
            const n = body.value.trim().length;
            if (n === 0) {
                return "Écrivez votre message.";
            }
            return n > BODY_MAX
                ? "Votre message fait " + n.toLocaleString("fr-FR")
                  + " caractères : " + BODY_MAX.toLocaleString("fr-FR")
                  + " au plus. Raccourcissez-le ou envoyez la suite dans un "
                  + "second message."
                : null;
        },
    };
}

/* The number of unread messages (for the menu badge); null: unknown. */
export async function unreadCount() {
    const r = await api.get("/api/messages");
    if (!r.ok) {
        return null;
    }
    if (r.data && Number.isFinite(r.data.unread)) {
        return r.data.unread;
    }
    return listOf(r.data, "threads").reduce((s, t) =>
        s + (Number(t.unread) || 0), 0);
}

/* A message's attachments: links to download them (base: the route,
 * "/api/message-attachments/"); null when there are none. */
export function attachmentLinks(m, link) {
    const list = listOf(m, "attachments");
    if (list.length === 0) {
        return null;
    }
    return h("ul", { class: "pieces-jointes",
                     "aria-label": "Pièces jointes" },
             list.map((a) => h("li", {}, link(a))));
}

/* A file's size in words: "12 Ko", "1,4 Mo". */
const sizeText = (n) => (n < 1048576
    ? Math.max(1, Math.round(n / 1024)).toLocaleString("fr-FR") + " Ko"
    : megabytes(n));

const familyAttachment = (a) => h("a", {
    href: "/api/message-attachments/" + encodeURIComponent(a.id),
    download: a.filename }, a.filename,
    h("span", { class: "discret" }, " (" + sizeText(a.size || 0) + ")"));

function messagesList(list) {
    return h("ol", { class: "fil", id: "fil-messages" }, list.map((m) => {
        const mine = m.from === "family" || m.author === "family"
                     || m.direction === "in" || m.sender === "family";
        return h("li", { class: "message " + (mine ? "moi" : "mairie") },
            h("p", { class: "discret" },
              (mine ? "Vous" : pick(m, "author_name", "staff", "author")
                               || "La mairie")
              + " — " + when(pick(m, "created_at", "at", "sent_at"))),
            h("p", { class: "corps" }, pick(m, "body", "text") || ""),
            attachmentLinks(m, familyAttachment));
    }));
}

export const ATTACH_MAX = 5;   /* docs/api.md: 5 attachments a message */

/*
 * A message's attachments field (a file input, several files): node;
 * problem() (in words, before anything is sent); send(upload) uploads
 * each file with upload(file) → api answer and gives {ids} or {error}.
 */
export function attachmentField(tid) {
    const input = h("input", { type: "file", id: tid, multiple: true,
                               accept: ACCEPT,
                               "aria-describedby": tid + "-aide" });
    const bar = uploadProgress();
    const files = () => Array.from(input.files || []);
    return {
        input,
        node: h("div", { class: "champ" },
                h("label", { for: tid }, "Pièces jointes (facultatif)"),
                input,
                h("span", { id: tid + "-aide", class: "discret" },
                  UPLOAD_HELP + " " + ATTACH_MAX + " fichiers au plus."),
                bar.node),
        problem() {
            if (files().length > ATTACH_MAX) {
                return "Joignez " + ATTACH_MAX + " fichiers au plus.";
            }
            for (const f of files()) {
                const bad = uploadProblem(f);
                if (bad) {
                    return f.name + " : " + bad;
                }
            }
            return null;
        },
        async send(upload) {
            const ids = [];
            for (const f of files()) {
                const r = await upload(f, bar.set);
                bar.hide();
                if (!r.ok) {
                    if (r.error && UPLOAD_WORDS[r.error.code]) {
                        r.error.message = f.name + " : "
                            + UPLOAD_WORDS[r.error.code];
                    }
                    return { error: r };
                }
                ids.push(r.data.id);
            }
            return { ids };
        },
    };
}

const familyUpload = (f, progress) => api.upload(
    "/api/message-attachments?name=" + encodeURIComponent(f.name || ""),
    f, progress);

/* The town's services and their themes (GET /api/message-services); the
 * three of old from a server without them. */
async function messageServices() {
    const r = await api.get("/api/message-services");
    const list = r.ok ? listOf(r.data, "services") : [];
    return list.length ? list : [
        { code: "enfance", label: "Service enfance", themes: [] },
        { code: "regie", label: "Régie (factures, paiements)", themes: [] },
        { code: "scolaire", label: "Restauration scolaire", themes: [] }];
}

/* The service and theme selects of a new message: the themes follow the
 * service chosen. */
export function topicFields(services, sid, tid) {
    const service = h("select", { id: sid }, services.map((x) =>
        h("option", { value: x.code }, x.label)));
    const theme = h("select", { id: tid });
    const fill = () => {
        const s = services.find((x) => x.code === service.value);
        const themes = s ? listOf(s, "themes") : [];
        theme.replaceChildren(...themes.map((t) =>
            h("option", { value: t.code }, t.label)));
        theme.disabled = themes.length === 0;
    };
    service.addEventListener("change", fill);
    fill();
    return { service, theme,
             value: () => (theme.disabled ? null : theme.value || null) };
}

/* "Service · Thème" of a thread. */
export function topicOf(t) {
    return [pick(t, "service_label", "service"), t.theme_label]
        .filter(Boolean).join(" · ");
}

async function viewThread(ctx, tid) {
    const out = h("div", {}, h("p", { class: "chargement" }, "Chargement…"));
    ctx.page("Messagerie", h("p", {}, h("a", { href: "#/messagerie" },
                                       "← Toutes les conversations")), out);
    const r = await api.get("/api/messages/" + encodeURIComponent(tid));
    if (r.status === 401) {
        return ctx.expired();
    }
    if (!r.ok) {
        out.replaceChildren(alertBox(r.error.message));
        return;
    }
    const t = r.data.thread || r.data;
    const list = listOf(r.data, "messages");
    const msg = h("div", { "aria-live": "polite" });
    const mb = messageBody("msg-reponse", "Votre réponse", "5");
    const body = mb.body;
    const pj = attachmentField("msg-reponse-pj");
    const ok = h("button", { class: "bouton", type: "submit" }, "Répondre");
    const form = h("form", { class: "carte" }, mb.node, pj.node, msg,
                   h("div", { class: "boutons" }, ok));
    clearOnInput(form, msg);
    out.replaceChildren(h("h2", {}, pick(t, "subject") || "Conversation"),
                        topicOf(t) ? h("p", { class: "discret" }, topicOf(t))
                                   : null,
                        messagesList(list), form);
    form.addEventListener("submit", async (ev) => {
        ev.preventDefault();
        const bad = mb.problem() || pj.problem();
        if (bad) {
            msg.replaceChildren(alertBox(bad));
            (mb.problem() ? body : pj.input).focus();
            return;
        }
        ok.disabled = true;
        const sent = await pj.send(familyUpload);
        if (sent.error) {
            ok.disabled = false;
            return settle(ctx, sent.error, msg);
        }
        const p = await api.post("/api/messages/" + encodeURIComponent(tid),
                                 { body: body.value.trim(),
                                   attachments: sent.ids });
        ok.disabled = false;
        settle(ctx, p, msg, "Message envoyé.");
    });
    ctx.refreshBadge();
}

export async function viewMessagerie(ctx) {
    const q = new URLSearchParams(location.hash.split("?")[1] || "");
    if (q.get("fil")) {
        return viewThread(ctx, q.get("fil"));
    }
    const out = h("div", { id: "liste-fils" },
                  h("p", { class: "chargement" }, "Chargement…"));
    const msg = h("div", { "aria-live": "polite" });
    const subject = h("input", { type: "text", id: "msg-sujet",
                                 required: true, maxlength: "200" });
    const topic = topicFields(await messageServices(), "msg-service",
                              "msg-theme");
    const service = topic.service;
    const mb = messageBody("msg-corps", "Message", "6");
    const body = mb.body;
    const pj = attachmentField("msg-pj");
    const ok = h("button", { class: "bouton", type: "submit" },
                 "Envoyer le message");
    const form = h("form", { class: "carte", "aria-labelledby": "t-nouveau" },
        h("h2", { id: "t-nouveau" }, "Nouveau message"),
        field("Service", service), field("Thème", topic.theme),
        field("Objet", subject), mb.node, pj.node, msg,
        h("div", { class: "boutons" }, ok));
    clearOnInput(form, msg);

    ctx.page("Messagerie", out, form);
    const r = await api.get("/api/messages");
    if (r.status === 401) {
        return ctx.expired();
    }
    if (api.isMissing(r)) {
        return notYet(ctx, "Messagerie", "La messagerie");
    }
    if (!r.ok) {
        out.replaceChildren(alertBox(r.error.message));
    } else {
        const list = listOf(r.data, "threads");
        out.replaceChildren(list.length === 0
            ? h("p", {}, "Aucune conversation.")
            : h("ul", { class: "fils" }, list.map((t) => {
                const n = Number(t.unread) || 0;
                return h("li", { dataset: { fil: String(t.id) } },
                    h("a", { href: "#/messagerie?fil="
                                   + encodeURIComponent(t.id) },
                      pick(t, "subject") || "Sans objet"),
                    " ", h("span", { class: "discret" },
                           (topicOf(t) ? topicOf(t) + " · " : "")
                           + when(pick(t, "last_at", "updated_at",
                                       "created_at"))),
                    n ? h("span", { class: "etiquette attente pastille" },
                          n + (n > 1 ? " non lus" : " non lu")) : null);
            })));
    }
    ctx.refreshBadge();

    form.addEventListener("submit", async (ev) => {
        ev.preventDefault();
        msg.replaceChildren();
        if (!subject.value.trim()) {
            msg.replaceChildren(alertBox("Indiquez l'objet du message."));
            subject.focus();
            return;
        }
        const bad = mb.problem() || pj.problem();
        if (bad) {
            msg.replaceChildren(alertBox(bad));
            (mb.problem() ? body : pj.input).focus();
            return;
        }
        ok.disabled = true;
        const sent = await pj.send(familyUpload);
        if (sent.error) {
            ok.disabled = false;
            return settle(ctx, sent.error, msg);
        }
        const p = await api.post("/api/messages",
                                 { service: service.value,
                                   theme: topic.value(),
                                   subject: subject.value.trim(),
                                   body: body.value.trim(),
                                   attachments: sent.ids });
        ok.disabled = false;
        settle(ctx, p, msg, "Message envoyé.");
    });
}
