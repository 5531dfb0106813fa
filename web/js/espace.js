/*
 * espace.js -- the family space served by guichet-office (docs/api.md,
 * "The family space and the back office"): Mes inscriptions, Mes
 * documents, the certificate upload of "Justifier une absence",
 * Messagerie, Historique, Prélèvement automatique, Mot de passe (change,
 * forgotten, reset) and the online payment's return.
 *
 * Each view gets the shared ctx of app.js (ctx.me, ctx.page,
 * ctx.expired).  Answers that say the route does not exist (404/405/501)
 * show "pas encore disponible" rather than an error.
 */

import * as api from "./api.js";
import * as F from "./format.js";
import { h, id, announce, alertBox, cards } from "./dom.js";

export function listOf(data, key) {
    if (Array.isArray(data)) {
        return data;
    }
    if (data && Array.isArray(data[key])) {
        return data[key];
    }
    return [];
}

/* The first of the fields that is set. */
export function pick(o, ...keys) {
    for (const k of keys) {
        if (o && o[k] !== undefined && o[k] !== null) {
            return o[k];
        }
    }
    return undefined;
}

export const STATUS_WORDS = {
    demandee: "Demandée", deposee: "Déposée", validee: "Validée",
    acceptee: "Acceptée", refusee: "Refusée", expiree: "Expirée",
    paid: "Payée", payee: "Payée", pending: "En attente",
    en_attente: "En attente", created: "En attente", refused: "Refusée",
    abandoned: "Abandonnée", abandonnee: "Abandonnée", active: "Actif",
    stopped: "Arrêté", arrete: "Arrêté", success: "Payée",
    succeeded: "Payée", failed: "Refusée", cancelled: "Annulée",
    valide: "Valide", a_renouveler: "À renouveler", manquante: "Manquante",
};

export function statusTag(status) {
    const kind =
        /^(validee|acceptee|valide|paid|payee|success|succeeded|active)$/
            .test(status) ? "ok"
        : /^(refusee|refused|failed|expiree|manquante|abandon|cancel)/
            .test(status) || /^(stopped|arrete)/.test(status) ? "ko"
        : "attente";
    return h("span", { class: "etiquette " + kind },
             STATUS_WORDS[status] || status || "—");
}

/* A day or an instant, shortly. */
export function when(v) {
    if (!v) {
        return "—";
    }
    return String(v).length > 10 ? F.instantShort(v) : F.dayYear(v);
}

export const DOC_TYPES = {
    "fiche-sanitaire": "Fiche sanitaire",
    "certificat_medical": "Certificat médical",
    "justificatif-domicile": "Justificatif de domicile",
    "attestation-assurance": "Attestation d'assurance",
    "avis-imposition": "Avis d'imposition (quotient familial)",
    "attestation-caf": "Attestation CAF",
    "vaccinations": "Carnet de vaccinations",
};

export function docTypeName(t) {
    return DOC_TYPES[t] || String(t || "—").replace(/[-_]/g, " ");
}

export const ACCEPT = "application/pdf,image/jpeg,image/png,.pdf,.jpg,"
                      + ".jpeg,.png";
/* guichet-office's office_upload_max default (docs/api.md) */
export const UPLOAD_MAX = 5 * 1024 * 1024;
export const UPLOAD_HELP = "PDF, JPEG ou PNG, 5 Mo au plus.";
const TYPES = ["application/pdf", "image/jpeg", "image/png"];

const megabytes = (n) => (n / 1048576).toLocaleString("fr-FR",
    { maximumFractionDigits: 1, minimumFractionDigits: 1 }) + " Mo";

/* What is wrong with a file before it is sent, in words; null if fine. */
export function uploadProblem(file) {
    if (file.size > UPLOAD_MAX) {
        return "Ce fichier fait " + megabytes(file.size) + " : 5 Mo au "
               + "plus. Réduisez-le (numérisez-le en noir et blanc ou en "
               + "plus basse résolution) puis réessayez.";
    }
    if (file.size === 0) {
        return "Ce fichier est vide.";
    }
    if (file.type && !TYPES.includes(file.type)) {
        return "Ce fichier n'est ni un PDF, ni une image JPEG ou PNG. "
               + "Enregistrez-le dans l'un de ces formats puis réessayez.";
    }
    return null;
}

export const UPLOAD_WORDS = {
    unsupported_media_type: "Ce fichier n'est pas un vrai PDF, JPEG ou "
        + "PNG : son contenu ne correspond pas à son type. Enregistrez-le "
        + "à nouveau en PDF (ou photographiez le document) puis "
        + "réessayez.",
    body_too_large: "Ce fichier dépasse 5 Mo. Réduisez-le puis réessayez.",
    empty_file: "Ce fichier est vide.",
};

/*
 * POST the file as the body (the office checks its type by content).
 * Checked here first (size, type): nothing is sent for a file that would
 * be refused.  onProgress(fraction) while it is sent.
 */
export async function uploadDocument(file, type, childId, onProgress) {
    const bad = uploadProblem(file);
    if (bad) {
        return { ok: false, status: 0, data: null,
                 error: { code: "local", message: bad } };
    }
    let path = "/api/documents?type=" + encodeURIComponent(type);
    if (childId) {
        path += "&child_id=" + encodeURIComponent(childId);
    }
    if (file.name) {
        path += "&name=" + encodeURIComponent(file.name);
    }
    const r = await api.upload(path, file, onProgress);
    if (!r.ok && r.error && UPLOAD_WORDS[r.error.code]) {
        r.error.message = UPLOAD_WORDS[r.error.code];
    }
    return r;
}

/* A progress bar for an upload: node, set(fraction), hide(). */
export function uploadProgress() {
    const bar = h("progress", { max: "100", value: "0",
                                "aria-label": "Envoi du fichier" });
    const words = h("span", { class: "discret" });
    const node = h("p", { class: "progression" }, bar, " ", words);
    node.hidden = true;
    return {
        node,
        set(f) {
            node.hidden = false;
            bar.value = Math.round(f * 100);
            words.textContent = "Envoi : " + Math.round(f * 100) + " %";
        },
        hide() {
            node.hidden = true;
        },
    };
}

/*
 * The end of a form's request: a 401 sends the family to the login, an
 * error is said in msg, a success is flashed on the page drawn again (with
 * /api/me read again when reloadMe).
 */
export function settle(ctx, r, msg, success, reloadMe) {
    if (r.status === 401) {
        ctx.expired();
        return;
    }
    if (!r.ok) {
        msg.replaceChildren(alertBox(r.error.message));
        return;
    }
    ctx.flash = { kind: "succes", text: success };
    if (reloadMe) {
        ctx.me = null;
    }
    ctx.route();
}

/* A payment operation's reference as people read it: its first 8
 * characters in two groups ("9F3A 1C2B"), the same on both sites. */
export function shortRef(id) {
    const s = String(id || "").replace(/[^0-9a-zA-Z]/g, "").slice(0, 8)
        .toUpperCase();
    return s.length > 4 ? s.slice(0, 4) + " " + s.slice(4) : s || "—";
}

/* A form's message goes as soon as the family types again. */
export function clearOnInput(form, msg) {
    form.addEventListener("input", () => msg.replaceChildren());
}

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

function notYet(ctx, title, what) {
    ctx.page(title, h("p", { class: "info" }, what
        + " n'est pas encore disponible en ligne. Contactez le service "
        + "enfance de la mairie."));
}

function childName(me, cid) {
    const c = (me.children || []).find((x) => x.id === cid);
    return c ? c.first_name : (cid || "—");
}

/* A labelled field, its help tied by aria-describedby (both sites). */
export function field(label, input, help) {
    const hid = help ? id("aide") : null;
    if (hid) {
        input.setAttribute("aria-describedby", hid);
    }
    return h("div", { class: "champ" },
             h("label", { for: input.id }, label), input,
             help ? h("span", { id: hid, class: "discret" }, help) : null);
}

/* ---------------------------------------------------------------- */
/* Mes inscriptions */

export async function viewInscriptions(ctx) {
    const me = ctx.me;
    const out = h("div", { id: "liste-inscriptions" },
                  h("p", { class: "chargement" }, "Chargement…"));
    const msg = h("div", { "aria-live": "polite" });
    const child = h("select", { id: "ins-enfant", required: true },
        (me.children || []).map((c) => h("option", { value: c.id },
                                          c.first_name)));
    const act = h("select", { id: "ins-activite", required: true });
    const today = F.todayParis();
    const from = h("input", { type: "date", id: "ins-du", required: true,
                              value: today });
    const to = h("input", { type: "date", id: "ins-au", required: true,
                            value: F.addDays(today, 364) });
    const ok = h("button", { class: "bouton", type: "submit" },
                 "Demander l'inscription");
    const form = h("form", { class: "carte", id: "form-inscription",
                             "aria-labelledby": "t-demande-ins" },
        h("h2", { id: "t-demande-ins" }, "Demander une inscription"),
        field("Enfant", child), field("Activité", act),
        h("div", { class: "outils-periode" }, field("Du", from),
          field("Au", to)),
        msg, h("div", { class: "boutons" }, ok),
        h("p", { class: "discret" }, "La demande est déposée ; la mairie "
          + "la valide ou la refuse en indiquant un motif. Vous recevez un "
          + "e-mail à chaque étape."));

    ctx.page("Mes inscriptions", out, form);

    const [ra, rl] = await Promise.all([api.get("/api/activities"),
                                        api.get("/api/enrolments")]);
    if (rl.status === 401) {
        return ctx.expired();
    }
    const acts = ra.ok ? listOf(ra.data, "activities") : [];
    act.replaceChildren(...acts.map((a) => h("option", { value: a.id },
                                              a.name || a.id)));
    const actName = (aid) => {
        const a = acts.find((x) => x.id === aid);
        return a ? a.name : aid;
    };

    if (api.isMissing(rl)) {
        form.remove();
        return notYet(ctx, "Mes inscriptions",
                      "La demande d'inscription");
    }
    if (!rl.ok) {
        out.replaceChildren(alertBox(rl.error.message));
    } else {
        const list = listOf(rl.data, "enrolments");
        out.replaceChildren(list.length === 0
            ? h("p", {}, "Aucune inscription.")
            : cards(h("div", { class: "tableau-defilant" }, h("table", {},
                h("caption", {}, "Inscriptions de mes enfants"),
                h("thead", {}, h("tr", {},
                    h("th", { scope: "col" }, "Enfant"),
                    h("th", { scope: "col" }, "Activité"),
                    h("th", { scope: "col" }, "Période"),
                    h("th", { scope: "col" }, "Statut"),
                    h("th", { scope: "col" }, "Motif"))),
                h("tbody", {}, list.map((e) => h("tr", {
                        dataset: { inscription: String(pick(e, "id", "") ) } },
                    h("td", {}, pick(e, "child_first_name", "first_name")
                                || childName(me, e.child_id)),
                    h("td", {}, pick(e, "activity_name")
                                || actName(e.activity_id)),
                    h("td", {}, "du " + when(e.from) + " au "
                                + when(e.to)),
                    h("td", {}, statusTag(e.status)),
                    h("td", {}, pick(e, "reason") || ""))))))));
    }

    /* The child's age against the activity's band, over the period asked:
     * said as soon as it is chosen, and once more before sending. */
    const ageProblem = () => {
        const a = acts.find((x) => x.id === act.value);
        const c = (me.children || []).find((x) => x.id === child.value);
        if (!a || !c || !c.birth_date || !Number.isFinite(a.age_min)
            || !Number.isFinite(a.age_max) || !from.value) {
            return null;
        }
        const end = to.value && to.value >= from.value ? to.value
                                                        : from.value;
        const first = F.ageOn(c.birth_date, from.value);
        const last = F.ageOn(c.birth_date, end);
        const band = "« " + a.name + " » accueille les enfants de "
                     + a.age_min + " à " + a.age_max + " ans";
        if (last < a.age_min || first > a.age_max) {
            return c.first_name + " aura " + first + " ans le "
                   + F.dayLong(from.value) + " : " + band + ". La mairie "
                   + "refusera sans doute cette demande.";
        }
        if (first < a.age_min || last > a.age_max) {
            return c.first_name + " aura " + first + " ans le "
                   + F.dayLong(from.value) + " et n'aura l'âge de "
                   + "l'activité que sur une partie de la période : " + band
                   + ".";
        }
        return null;
    };
    const ageBox = h("div", { id: "ins-age" });
    msg.before(ageBox);
    let warned = null;
    const showAge = () => {
        const p = ageProblem();
        ageBox.replaceChildren(p ? alertBox(p, "info") : "");
    };
    for (const x of [child, act, from, to]) {
        x.addEventListener("change", showAge);
    }
    showAge();

    form.addEventListener("submit", async (ev) => {
        ev.preventDefault();
        msg.replaceChildren();
        if (!from.value || !to.value || to.value < from.value) {
            msg.replaceChildren(alertBox("Indiquez une période valide (la "
                                         + "fin après le début)."));
            return;
        }
        const age = ageProblem();
        const sig = [child.value, act.value, from.value, to.value].join("|");
        if (age && warned !== sig) {
            warned = sig;
            msg.replaceChildren(alertBox(age + " Cliquez à nouveau sur "
                + "« Demander l'inscription » pour l'envoyer quand même."));
            return;
        }
        ok.disabled = true;
        const r = await api.post("/api/enrolments",
                                 { child_id: child.value,
                                   activity_id: act.value,
                                   from: from.value, to: to.value });
        ok.disabled = false;
        settle(ctx, r, msg, "Demande d'inscription déposée. La mairie vous "
               + "répondra par e-mail.", true);
        if (!r.ok && r.error && r.error.code === "documents_missing") {
            msg.append(h("p", {}, h("a", { href: "#/documents",
                                           id: "ins-pieces" },
                                       "Voir les pièces à fournir et les "
                                       + "déposer")));
        }
    });
}

/* ---------------------------------------------------------------- */
/* Mes documents */

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

/* ---------------------------------------------------------------- */
/* Messagerie */

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

/* ---------------------------------------------------------------- */
/* Historique */

export async function viewHistorique(ctx) {
    const q = new URLSearchParams(location.hash.split("?")[1] || "");
    const par = q.get("par") === "semaine" ? "semaine" : "mois";
    const today = F.todayParis();
    const anchor = /^\d{4}-\d\d-\d\d$/.test(q.get("du") || "")
        ? q.get("du") : today;
    const from = par === "semaine" ? F.mondayOf(anchor)
                                   : anchor.slice(0, 8) + "01";
    const to = par === "semaine" ? F.addDays(from, 6) : F.lastOfMonth(from);
    const go = (p, d) => { location.hash = "#/historique?par=" + p
                                           + "&du=" + d; };
    const prev = par === "semaine" ? F.addDays(from, -7)
                                   : F.addDays(from, -1).slice(0, 8) + "01";
    const next = F.addDays(to, 1);

    const bascule = h("div", { class: "bascule", role: "group",
                               "aria-label": "Période" },
        h("button", { type: "button", "aria-pressed": String(par === "semaine"),
                      onclick: () => go("semaine", anchor) }, "Semaine"),
        h("button", { type: "button", "aria-pressed": String(par === "mois"),
                      onclick: () => go("mois", anchor) }, "Mois"));
    const out = h("div", { id: "historique" },
                  h("p", { class: "chargement" }, "Chargement…"));
    ctx.page("Historique",
        h("div", { class: "outils-periode" }, bascule,
          h("button", { class: "bouton second", type: "button",
                        onclick: () => go(par, prev) }, "Précédent"),
          h("button", { class: "bouton second", type: "button",
                        onclick: () => go(par, next) }, "Suivant")),
        h("p", { id: "periode-historique" }, par === "semaine"
          ? "Semaine du " + F.dayLong(from) + " au " + F.dayLong(to)
          : "Mois de " + F.monthName(from)),
        out);

    const r = await api.get("/api/history?from=" + from + "&to=" + to);
    if (r.status === 401) {
        return ctx.expired();
    }
    if (api.isMissing(r)) {
        return notYet(ctx, "Historique", "L'historique");
    }
    if (!r.ok) {
        out.replaceChildren(alertBox(r.error.message));
        return;
    }
    const cx = listOf(r.data && r.data.connections, "connections");
    const pays = listOf(r.data && r.data.payments, "payments");
    out.replaceChildren(
        h("h2", {}, "Connexions"),
        cx.length === 0 ? h("p", {}, "Aucune connexion sur la période.")
        : h("div", { class: "tableau-defilant" }, h("table", {
                id: "table-connexions" },
            h("caption", { class: "visually-hidden" }, "Connexions"),
            h("thead", {}, h("tr", {},
                h("th", { scope: "col" }, "Date"),
                h("th", { scope: "col" }, "Heure"),
                h("th", { scope: "col" }, "Adresse IP"))),
            h("tbody", {}, cx.map((c) => {
                const at = pick(c, "at", "created_at", "date");
                return h("tr", {},
                    h("td", {}, at ? F.dayYear(F.todayParis(Date.parse(at)))
                                   : "—"),
                    h("td", {}, at ? F.time(at) : "—"),
                    h("td", {}, c.ip || "—"));
            })))),
        h("h2", {}, "Paiements"),
        pays.length === 0 ? h("p", {}, "Aucun paiement sur la période.")
        : h("div", { class: "tableau-defilant" }, h("table", {
                id: "table-paiements" },
            h("caption", { class: "visually-hidden" }, "Paiements"),
            h("thead", {}, h("tr", {},
                h("th", { scope: "col" }, "Date"),
                h("th", { scope: "col" }, "Moyen"),
                h("th", { scope: "col" }, "Factures"),
                h("th", { scope: "col", class: "montant" }, "Montant"),
                h("th", { scope: "col" }, "État"))),
            h("tbody", {}, pays.map((p) => h("tr", {},
                h("td", {}, when(pick(p, "paid_at", "at", "created_at"))),
                h("td", {}, { online: "En ligne", payfip: "En ligne",
                              direct_debit: "Prélèvement",
                              counter: "À la régie" }[p.method]
                            || p.method || "—"),
                h("td", {}, (p.invoice_numbers || p.invoices
                             || p.invoice_ids || []).join(", ")),
                h("td", { class: "montant" },
                  F.euros(pick(p, "amount_cents", "total_cents"))),
                h("td", {}, statusTag(p.status))))))));
}

/* ---------------------------------------------------------------- */
/* Paiement en ligne: the return from the provider */

/* The answer of GET /api/payments/{id}, shown above the invoices. */
export async function paymentReturn(ctx, op) {
    const box = h("div", { id: "retour-paiement", "aria-live": "polite" },
                  h("p", { class: "chargement" },
                    "Vérification du paiement…"));
    let r;
    /* The provider's notification may reach us just after the browser:
     * a pending operation is asked again a few times. */
    for (let i = 0; i < 6; i++) {
        r = await api.get("/api/payments/" + encodeURIComponent(op));
        if (!r.ok || !/^(pending|created|en_attente)$/.test(r.data.status)) {
            break;
        }
        await api.sleep(1000);
    }
    if (r.status === 401) {
        ctx.expired();
        return box;
    }
    if (!r.ok) {
        box.replaceChildren(alertBox(r.error.message));
        return box;
    }
    const p = r.data;
    const amount = F.euros(pick(p, "amount_cents", "total_cents"));
    const st = p.status;
    let text;
    let kind = "info";
    if (/^(paid|payee|success|succeeded)$/.test(st)) {
        text = "Paiement accepté : " + amount + " payés. Merci.";
        kind = "succes";
    } else if (/^(refused|refusee|failed)$/.test(st)) {
        text = "Paiement refusé : vos factures restent à payer.";
        kind = "alerte";
    } else if (/^(abandoned|abandonnee|cancelled)$/.test(st)) {
        text = "Paiement abandonné : vos factures restent à payer.";
        kind = "alerte";
    } else {
        text = "Paiement en attente de confirmation par la DGFiP. "
               + "Revenez dans quelques minutes.";
    }
    box.replaceChildren(h("div", { class: kind, role: "status",
                                   dataset: { statut: st } },
        h("p", {}, h("strong", {}, text)),
        h("p", { class: "discret" }, "Référence du paiement : ",
          h("strong", { id: "reference-paiement" },
            shortRef(p.operation_id || p.id || op)),
          " (à rappeler à la régie) — ", statusTag(st))));
    announce(text);
    return box;
}

/* ---------------------------------------------------------------- */
/* Prélèvement automatique */

/* IBAN checksum (ISO 13616, mod 97), to warn before sending. */
export function ibanOk(iban) {
    const s = iban.replace(/\s+/g, "").toUpperCase();
    if (!/^[A-Z]{2}\d{2}[A-Z0-9]{10,30}$/.test(s)) {
        return false;
    }
    const r = s.slice(4) + s.slice(0, 4);
    let m = 0;
    for (const ch of r) {
        const v = /\d/.test(ch) ? ch : String(ch.charCodeAt(0) - 55);
        for (const d of v) {
            m = (m * 10 + Number(d)) % 97;
        }
    }
    return m === 1;
}

/* "FR76 •••• •••• •••• •••• •••7 890" -- enough to recognise it. */
export function maskIban(iban) {
    const s = String(iban || "").replace(/\s+/g, "");
    if (s.length < 10) {
        return s || "—";
    }
    const masked = s.slice(0, 4) + s.slice(4, -4).replace(/./g, "•")
                   + s.slice(-4);
    return masked.replace(/(.{4})/g, "$1 ").trim();
}

export async function viewPrelevement(ctx) {
    const out = h("div", { id: "mandat" },
                  h("p", { class: "chargement" }, "Chargement…"));
    ctx.page("Prélèvement automatique",
        h("p", {}, "Avec le prélèvement automatique, vos factures sont "
          + "prélevées chaque mois à l'échéance ; le paiement en ligne "
          + "n'est alors plus proposé."), out);
    const r = await api.get("/api/direct-debit");
    if (r.status === 401) {
        return ctx.expired();
    }
    if (api.isMissing(r) && r.error.code !== "not_found") {
        return notYet(ctx, "Prélèvement automatique",
                      "Le prélèvement automatique");
    }
    const m = r.ok ? r.data.mandate : null;
    const active = !!(m && r.data.active !== false && !m.ended_at);
    const msg = h("div", { "aria-live": "polite" });

    if (active) {
        const stop = h("button", { class: "bouton danger", type: "button" },
                       "Arrêter le prélèvement");
        out.replaceChildren(h("section", { class: "carte",
                                           "aria-labelledby": "t-mandat" },
            h("h2", { id: "t-mandat" }, "Mandat en cours"),
            h("dl", { class: "fiche" },
              h("dt", {}, "Titulaire du compte"),
              h("dd", {}, pick(m, "holder", "account_holder") || "—"),
              h("dt", {}, "IBAN"),
              h("dd", { id: "mandat-iban" }, maskIban(m.iban)),
              h("dt", {}, "BIC"), h("dd", {}, m.bic || "—"),
              h("dt", {}, "Référence unique du mandat"),
              h("dd", { id: "mandat-rum" },
                pick(m, "mandate_ref", "rum", "reference") || "—"),
              h("dt", {}, "Signé le"),
              h("dd", {}, when(pick(m, "signed_on", "mandate_date",
                                    "signed_at")))),
            msg, h("div", { class: "boutons" }, stop)));
        stop.addEventListener("click", async () => {
            stop.disabled = true;
            const d = await api.del("/api/direct-debit");
            if (d.status === 401) {
                return ctx.expired();
            }
            if (!d.ok) {
                stop.disabled = false;
                msg.replaceChildren(alertBox(d.error.message));
                return;
            }
            ctx.flash = { kind: "succes", text: "Prélèvement automatique "
                          + "arrêté. Vous pouvez payer en ligne." };
            ctx.me = null;
            ctx.route();
        });
        return;
    }

    const holder = h("input", { type: "text", id: "pr-titulaire",
                                required: true, autocomplete: "name" });
    const iban = h("input", { type: "text", id: "pr-iban", required: true,
                              autocomplete: "off", spellcheck: "false",
                              inputmode: "text" });
    const bic = h("input", { type: "text", id: "pr-bic", required: true,
                             autocomplete: "off", spellcheck: "false" });
    const agree = h("input", { type: "checkbox", id: "pr-accord",
                               required: true });
    const ok = h("button", { class: "bouton", type: "submit" },
                 "Souscrire au prélèvement");
    const form = h("form", { class: "carte", "aria-labelledby": "t-souscr" },
        h("h2", { id: "t-souscr" }, "Souscrire"),
        field("Titulaire du compte", holder),
        field("IBAN", iban, "Par exemple FR76 3000 6000 0112 3456 7890 "
              + "189."),
        field("BIC", bic, "8 ou 11 caractères, par exemple AGRIFRPP."),
        h("div", { class: "choix" }, h("label", { for: "pr-accord" }, agree,
          "J'autorise la commune à prélever mes factures sur ce compte "
          + "(mandat SEPA).")),
        msg, h("div", { class: "boutons" }, ok));
    out.replaceChildren(...(r.ok || r.status === 404 ? [form]
                            : [alertBox(r.error.message), form]));
    form.addEventListener("submit", async (ev) => {
        ev.preventDefault();
        msg.replaceChildren();
        const i = iban.value.replace(/\s+/g, "").toUpperCase();
        if (!holder.value.trim()) {
            msg.replaceChildren(alertBox("Indiquez le titulaire du compte."));
            return;
        }
        if (!ibanOk(i)) {
            msg.replaceChildren(alertBox("Cet IBAN n'est pas valide : "
                                         + "vérifiez-le."));
            iban.focus();
            return;
        }
        if (!agree.checked) {
            msg.replaceChildren(alertBox("Cochez l'autorisation de "
                                         + "prélèvement."));
            return;
        }
        ok.disabled = true;
        const p = await api.put("/api/direct-debit",
                                 { holder: holder.value.trim(), iban: i,
                                   bic: bic.value.replace(/\s+/g, "")
                                        .toUpperCase() });
        ok.disabled = false;
        settle(ctx, p, msg, "Prélèvement automatique enregistré.", true);
    });
}

/* ---------------------------------------------------------------- */
/* Mot de passe */

function newPasswordFields(prefix) {
    const a = h("input", { type: "password", id: prefix + "-nouveau",
                           required: true, autocomplete: "new-password",
                           minlength: String(PASSWORD_MIN) });
    const b = h("input", { type: "password", id: prefix + "-confirme",
                           required: true, autocomplete: "new-password" });
    return { a, b, nodes: [
        field("Nouveau mot de passe", a, PASSWORD_MIN
                                          + " caractères au moins."),
        field("Confirmez le nouveau mot de passe", b)] };
}

/* docs/website.md: 10 characters at least (the API's rule too) */
const PASSWORD_MIN = 10;

function checkNew(f, msg, old) {
    if (f.a.value.length < PASSWORD_MIN) {
        msg.replaceChildren(alertBox("Le nouveau mot de passe doit faire "
                                     + PASSWORD_MIN
                                     + " caractères au moins."));
        f.a.focus();
        return false;
    }
    if (old !== undefined && f.a.value === old) {
        msg.replaceChildren(alertBox("Le nouveau mot de passe doit être "
                                     + "différent de l'actuel."));
        f.a.focus();
        return false;
    }
    if (f.a.value !== f.b.value) {
        msg.replaceChildren(alertBox("Les deux mots de passe ne sont pas "
                                     + "identiques."));
        f.b.focus();
        return false;
    }
    return true;
}

export function viewMotDePasse(ctx) {
    const msg = h("div", { "aria-live": "polite" });
    const old = h("input", { type: "password", id: "mdp-actuel",
                             required: true,
                             autocomplete: "current-password" });
    /* whose password: the token names the family, not the person; the
     * login typed at Connexion (the family's own or its
     * co-responsable's) says it (docs/office.md, *Co-responsable*) */
    const who = h("input", { type: "text", id: "mdp-identifiant",
                             autocomplete: "username",
                             autocapitalize: "none", spellcheck: "false",
                             value: sessionStorage.getItem("guichet.login")
                                    || "" });
    const f = newPasswordFields("mdp");
    const ok = h("button", { class: "bouton", type: "submit" },
                 "Changer le mot de passe");
    const form = h("form", { class: "carte" },
        field("Identifiant", who, "Celui avec lequel vous vous connectez : "
              + "le second responsable légal change ainsi son propre mot "
              + "de passe."),
        field("Mot de passe actuel", old), ...f.nodes, msg,
        h("div", { class: "boutons" }, ok),
        h("p", { class: "discret" }, "Vos autres sessions (autres "
          + "appareils) seront fermées."));
    clearOnInput(form, msg);
    form.addEventListener("submit", async (ev) => {
        ev.preventDefault();
        msg.replaceChildren();
        if (!old.value) {
            msg.replaceChildren(alertBox("Indiquez votre mot de passe "
                                         + "actuel."));
            old.focus();
            return;
        }
        if (!checkNew(f, msg, old.value)) {
            return;
        }
        ok.disabled = true;
        const r = await api.post("/api/password",
                                 { old_password: old.value,
                                   new_password: f.a.value,
                                   login: who.value.trim() || null });
        ok.disabled = false;
        if (r.status === 401 && !(r.error && r.error.code
                                  === "bad_password")) {
            return ctx.expired();
        }
        if (!r.ok) {
            msg.replaceChildren(alertBox(r.error.message));
            return;
        }
        old.value = f.a.value = f.b.value = "";
        msg.replaceChildren(alertBox("Mot de passe changé. Vos autres "
                                     + "sessions sont fermées.", "succes"));
    });
    ctx.page("Mot de passe", form);
}

export function viewMotDePasseOublie(ctx) {
    const msg = h("div", { "aria-live": "polite" });
    const login = h("input", { type: "text", id: "oubli-identifiant",
                               required: true, autocomplete: "username",
                               autocapitalize: "none" });
    const ok = h("button", { class: "bouton", type: "submit" },
                 "Recevoir un lien");
    const form = h("form", { class: "carte" },
        h("p", {}, "Indiquez votre identifiant : un lien pour choisir un "
          + "nouveau mot de passe est envoyé à l'adresse e-mail de votre "
          + "famille. Il ne sert qu'une fois et expire rapidement."),
        field("Identifiant", login), msg,
        h("div", { class: "boutons" }, ok,
          h("a", { href: "#/connexion" }, "Retour à la connexion")));
    form.addEventListener("submit", async (ev) => {
        ev.preventDefault();
        if (!login.value.trim()) {
            msg.replaceChildren(alertBox("Indiquez votre identifiant."));
            return;
        }
        ok.disabled = true;
        const r = await api.post("/api/password/forgot",
                                 { login: login.value.trim() });
        ok.disabled = false;
        if (!r.ok) {
            msg.replaceChildren(alertBox(r.error.message));
            return;
        }
        msg.replaceChildren(alertBox("Demande enregistrée. Si cet "
            + "identifiant existe et qu'une adresse e-mail est connue pour "
            + "votre famille, le lien y est envoyé (pensez à regarder les "
            + "courriers indésirables). Sans adresse e-mail, ou sans "
            + "message d'ici quelques minutes, adressez-vous au service "
            + "enfance de la mairie.", "info"));
    });
    ctx.page("Mot de passe oublié", form);
}

export function viewNouveauMotDePasse(ctx) {
    const q = new URLSearchParams(location.hash.split("?")[1] || "");
    const token = q.get("jeton") || "";
    const msg = h("div", { "aria-live": "polite" });
    const f = newPasswordFields("reinit");
    const ok = h("button", { class: "bouton", type: "submit" },
                 "Enregistrer le mot de passe");
    const form = h("form", { class: "carte" }, ...f.nodes, msg,
                   h("div", { class: "boutons" }, ok));
    form.addEventListener("submit", async (ev) => {
        ev.preventDefault();
        msg.replaceChildren();
        if (!checkNew(f, msg)) {
            return;
        }
        ok.disabled = true;
        const r = await api.post("/api/password/reset",
                                 { token, password: f.a.value });
        if (!r.ok) {
            ok.disabled = false;
            msg.replaceChildren(alertBox(r.error.message));
            return;
        }
        ctx.flash = { kind: "succes", text: "Mot de passe enregistré. "
                      + "Connectez-vous avec le nouveau mot de passe." };
        location.hash = "#/connexion";
    });
    if (!token) {
        ctx.page("Nouveau mot de passe", alertBox("Ce lien est incomplet. "
            + "Demandez un nouveau lien depuis « Mot de passe oublié ? »."));
        return;
    }
    ctx.page("Nouveau mot de passe", form);
}
