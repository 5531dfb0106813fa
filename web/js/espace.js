/*
 * espace.js -- what the family space's pages share (served by
 * guichet-office, docs/api.md, "The family space and the back office"),
 * and the back office too: lists and statuses of answers, document
 * types, uploadDocument() (checked before sending, with progress),
 * field(), settle() (the end of a form's request), clearOnInput().  The
 * pages are modules of their own: inscriptions.js, documents.js,
 * messagerie.js, historique.js, paiement.js (the online payment's
 * return), prelevement.js, motdepasse.js.
 *
 * Each view gets the shared ctx of app.js (ctx.me, ctx.page,
 * ctx.expired).  Answers that say the route does not exist (404/405/501)
 * show "pas encore disponible" rather than an error (notYet).
 */

import * as api from "./api.js";
import * as F from "./format.js";
import { h, id, alertBox } from "./dom.js";

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

export const megabytes = (n) => (n / 1048576).toLocaleString("fr-FR",
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

/* "<what> n'est pas encore disponible en ligne" as the page. */
export function notYet(ctx, title, what) {
    ctx.page(title, h("p", { class: "info" }, what
        + " n'est pas encore disponible en ligne. Contactez le service "
        + "enfance de la mairie."));
}

/* A child's first name (its id when unknown). */
export function childName(me, cid) {
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
