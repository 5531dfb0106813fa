/*
 * dossier.js -- a family's file in the back office (issue 26):
 * #/nouvelle-famille creates a family at the counter (children with
 * their allergies, login, e-mail, entourage, QF); #/dossier?id=F records
 * a QF with the day it takes effect, the resident status and e-mail, a
 * child and its allergies, enrols a child, shows, edits and adds to the
 * family's entourage (the people it declared: who may pick the children
 * up, who to call; removing one is #/entourage's), (admin) merges a
 * duplicate family into it (POST .../merge), and (admin) archives
 * the family.  Routes of office/family.c and office/entourage.c,
 * docs/api.md (*Back office*).
 *
 * agent.js gives the frame (ctx: call, page, table, loading, rank, flash,
 * route, main).
 */

import * as F from "../../js/format.js";
import { h, alertBox, cards } from "../../js/dom.js";
import { field } from "../../js/espace.js";

const enc = encodeURIComponent;

function text(name, label, value, attrs, help) {
    const i = h("input", Object.assign({ type: "text", id: name, name,
                                         value: value ?? "" }, attrs || {}));
    return [i, field(label, i, help)];
}

function check(name, label, checked) {
    const i = h("input", { type: "checkbox", id: name, checked });
    return [i, h("div", { class: "choix" },
                 h("label", { for: name }, i, " " + label))];
}

/* The inputs of a person of the entourage (office/entourage.c's
 * fields), named for screen readers by label. */
function personInputs(p, label) {
    const t = (v, what, cls, type) => h("input", {
        type: type || "text", value: v || "", class: cls,
        "aria-label": label + " : " + what });
    const c = (v, what) => h("input", { type: "checkbox", checked: !!v,
                                        "aria-label": label + " : "
                                                      + what });
    return {
        first_name: t(p.first_name, "prénom", "prenom"),
        last_name: t(p.last_name, "nom", "nom"),
        relation: t(p.relation, "lien avec l'enfant", "lien"),
        phone: t(p.phone, "téléphone", "tel", "tel"),
        can_pick_up: c(p.can_pick_up, "peut venir chercher les enfants"),
        emergency: c(p.emergency, "à prévenir en cas d'urgence"),
    };
}

function personValue(ins) {
    return { first_name: ins.first_name.value.trim(),
             last_name: ins.last_name.value.trim(),
             relation: ins.relation.value.trim(),
             phone: ins.phone.value.trim(),
             can_pick_up: ins.can_pick_up.checked,
             emergency: ins.emergency.checked };
}

const PERSON_COLS = ["Prénom", "Nom", "Lien", "Téléphone",
                     "Peut venir chercher", "À prévenir (urgence)"];

function personCells(ins) {
    return ["first_name", "last_name", "relation", "phone", "can_pick_up",
            "emergency"].map((k) => h("td", {}, ins[k]));
}

/* The entourage of a new family: rows to fill, the empty ones left
 * out. */
function entourageEditor() {
    const rows = [];
    const body = h("tbody");
    const add = () => {
        const ins = personInputs({}, "Personne " + (rows.length + 1));
        rows.push(ins);
        body.appendChild(h("tr", {}, personCells(ins)));
    };
    add();
    const el = h("fieldset", { id: "nf-entourage" },
        h("legend", {}, "Entourage : qui peut venir chercher les enfants, "
                        + "qui prévenir en cas d'urgence"),
        h("div", { class: "tableau-defilant" }, h("table", {},
            h("caption", { class: "visually-hidden" }, "Entourage"),
            h("thead", {}, h("tr", {},
                PERSON_COLS.map((x) => h("th", { scope: "col" }, x)))),
            body)),
        h("div", { class: "boutons" }, h("button", {
            type: "button", class: "bouton second petit",
            onclick: add }, "Ajouter une personne")));
    const value = () => rows.filter((ins) =>
        ins.first_name.value.trim() !== ""
        || ins.last_name.value.trim() !== "").map(personValue);
    return { el, value };
}

/* ---------------------------------------------------------------- */
/* #/nouvelle-famille */

export function viewNouvelleFamille(ctx) {
    const [login, fLogin] = text("nf-login", "Identifiant de connexion", "",
        { autocomplete: "off" }, "Facultatif ; la famille choisit son mot "
        + "de passe par « Mot de passe oublié ».");
    const [mail, fMail] = text("nf-email", "E-mail", "",
                               { type: "email", autocomplete: "off" });
    const [qf, fQf] = text("nf-qf", "Quotient familial (QF)", "",
                           { type: "number", min: "0", max: "1000000" },
                           "Vide : QF non fourni (tranche la plus haute).");
    const [res, fRes] = check("nf-resident", "Réside dans la commune", true);
    const kids = [];
    const kidBox = h("div", {});
    const addKid = () => {
        const n = kids.length + 1;
        const k = {
            first: h("input", { type: "text", id: "nf-enfant-" + n,
                                required: true }),
            birth: h("input", { type: "date", id: "nf-naissance-" + n,
                                required: true }),
            allergies: h("input", { type: "text",
                                    id: "nf-allergies-" + n }),
        };
        kids.push(k);
        kidBox.appendChild(h("fieldset", {},
            h("legend", {}, "Enfant " + n),
            field("Prénom", k.first), field("Date de naissance", k.birth),
            field("Allergies", k.allergies, "Facultatif ; figure sur les "
                  + "listes du jour.")));
    };
    addKid();
    const entourage = entourageEditor();
    const msg = h("div", { "aria-live": "polite" });
    const form = h("form", { class: "carte", id: "nouvelle-famille" },
        fLogin, fMail, fQf, fRes, kidBox,
        h("div", { class: "boutons" }, h("button", {
            type: "button", class: "bouton second petit",
            onclick: addKid }, "Ajouter un enfant")),
        entourage.el, msg,
        h("div", { class: "boutons" }, h("button", {
            type: "submit", class: "bouton" }, "Créer la famille")));
    form.addEventListener("submit", async (ev) => {
        ev.preventDefault();
        const body = {
            login: login.value.trim() || null,
            email: mail.value.trim() || null,
            qf: qf.value === "" ? null : Number(qf.value),
            resident: res.checked,
            children: kids.map((k) => Object.assign(
                { first_name: k.first.value.trim(),
                  birth_date: k.birth.value },
                k.allergies.value.trim()
                    ? { allergies: k.allergies.value.trim() } : {})),
            entourage: entourage.value(),
        };
        const r = await ctx.call("POST", "/api/staff/families", body);
        if (!r.ok) {
            msg.replaceChildren(alertBox(r.error.message));
            return;
        }
        ctx.flash({ kind: "succes", text: "Famille " + r.data.id
                    + " créée." });
        location.hash = "#/dossier?id=" + enc(r.data.id);
    });
    ctx.page("Nouvelle famille",
             h("p", {}, h("a", { href: "#/familles" },
                          "← Toutes les familles")), form);
}

/* ---------------------------------------------------------------- */
/* #/dossier?id=F */

/* The state of a file asked online (office/request.c). */
const FILE_REQUEST = {
    a_confirmer: "e-mail pas encore confirmé",
    en_attente: "en attente de validation",
    validee: "validé",
    refusee: "refusé",
};

/* The family's second legal representative (office/coresp.c): who, and
 * whether their own login works yet. */
function coResponsable(c) {
    if (!c) {
        return h("p", {}, "Pas de co-responsable : la famille l'invite "
                 + "depuis son espace (menu « Co-responsable »).");
    }
    return h("dl", { class: "fiche", id: "co-responsable" },
        h("dt", {}, "Nom"), h("dd", {}, c.first_name + " " + c.last_name),
        h("dt", {}, "E-mail"), h("dd", {}, c.email),
        h("dt", {}, "Accès"),
        h("dd", {}, c.activated_at
            ? "actif depuis le " + F.instant(c.activated_at)
              + ", identifiant « " + c.login + " »"
            : "invité le " + F.instant(c.invited_at) + ", invitation "
              + "valable jusqu'au " + F.instant(c.invite_expires_at)));
}

function section(title, idName, ...nodes) {
    return h("section", { class: "carte", id: idName },
             h("h2", {}, title), ...nodes);
}

/* A form that PUTs/POSTs body() and shows the file again. */
function act(ctx, formId, method, path, body, done, ...nodes) {
    const msg = h("div", { "aria-live": "polite" });
    const f = h("form", { id: formId }, ...nodes, msg);
    f.addEventListener("submit", async (ev) => {
        ev.preventDefault();
        const b = body();
        if (b === null) {
            return;
        }
        const r = await ctx.call(method, path, b);
        if (!r.ok) {
            msg.replaceChildren(alertBox(r.error.message));
            return;
        }
        ctx.flash({ kind: "succes", text: done });
        ctx.route();
    });
    return f;
}

const submit = (label) => h("div", { class: "boutons" },
    h("button", { type: "submit", class: "bouton" }, label));

export async function viewDossier(ctx) {
    const q = new URLSearchParams(location.hash.split("?")[1] || "");
    const fid = q.get("id") || "";
    const out = h("div", { id: "dossier" }, ctx.loading());
    ctx.page("Dossier de la famille", out);
    const [r, ra] = await Promise.all([
        ctx.call("GET", "/api/staff/families/" + enc(fid) + "/record"),
        ctx.call("GET", "/api/staff/activities")]);
    if (!r.ok) {
        out.replaceChildren(alertBox(r.error.message));
        return;
    }
    const f = r.data;
    const base = "/api/staff/families/" + enc(fid);
    ctx.main.querySelector("h1").textContent = "Dossier de la famille "
        + (f.login || f.id);
    document.title = "Dossier " + (f.login || f.id) + " – Guichet agent";
    const acts = ra.ok ? ra.data.activities || [] : [];
    const summary = h("dl", { class: "carte fiche", id: "resume" },
        h("dt", {}, "Identifiant"), h("dd", {}, f.id),
        h("dt", {}, "Connexion"), h("dd", {}, f.login || "—"),
        h("dt", {}, "E-mail"), h("dd", {}, f.email || "—"),
        h("dt", {}, "QF en vigueur"),
        h("dd", { id: "qf-en-vigueur" }, f.qf === null ? "non fourni"
                                                       : String(f.qf)),
        h("dt", {}, "Résidence"),
        h("dd", {}, f.resident ? "dans la commune" : "hors commune"),
        f.file_request ? h("dt", {}, "Dossier demandé en ligne") : null,
        f.file_request ? h("dd", { id: "dossier-demande" },
            (FILE_REQUEST[f.file_request.status]
             || f.file_request.status) + " (le "
            + F.instant(f.file_request.requested_at) + ")",
            f.file_request.status === "en_attente"
                ? [" ", h("a", { href: "#/demandes" }, "Traiter la demande")]
                : null) : null,
        f.archived_at ? h("dt", {}, "Archivée le") : null,
        f.archived_at ? h("dd", {}, F.instant(f.archived_at)) : null);
    if (f.archived_at) {
        out.replaceChildren(summary, h("p", { class: "info" },
            "Cette famille est archivée : son dossier ne change plus."));
        return;
    }

    /* QF */
    const qf = h("input", { type: "number", id: "qf-valeur", min: "0",
                            max: "1000000" });
    const qfFrom = h("input", { type: "date", id: "qf-du",
                                value: F.todayParis() });
    const qfForm = act(ctx, "qf", "PUT", base + "/qf",
        () => ({ qf: qf.value === "" ? null : Number(qf.value),
                 from: qfFrom.value || undefined }),
        "Quotient familial enregistré.",
        field("Nouveau QF", qf, "Vide : QF non fourni."),
        field("En vigueur à partir du", qfFrom), submit("Enregistrer le QF"));
    const hist = f.qf_history.length === 0
        ? h("p", {}, "Aucun QF enregistré au back office.")
        : cards(ctx.table("Historique des quotients familiaux",
            ["QF", "À partir du", "Saisi par", "Le"],
            f.qf_history.map((x) => h("tr", {},
                h("td", {}, x.qf === null ? "non fourni" : String(x.qf)),
                h("td", {}, F.dayNum(x.from)),
                h("td", {}, x.recorded_by),
                h("td", {}, F.instant(x.recorded_at))))));

    /* resident, e-mail */
    const res = h("input", { type: "checkbox", id: "residence",
                             checked: f.resident });
    const mail = h("input", { type: "email", id: "email",
                              value: f.email || "" });
    const resForm = act(ctx, "coordonnees", "PUT", base,
        () => ({ resident: res.checked, email: mail.value.trim() || null }),
        "Coordonnées enregistrées.",
        h("div", { class: "choix" }, h("label", { for: "residence" }, res,
                                       " Réside dans la commune")),
        field("E-mail", mail), submit("Enregistrer"));

    /* children */
    const kidRows = f.children.map((c) => {
        const a = h("input", { type: "text", value: c.allergies || "",
                               "aria-label": "Allergies de "
                                             + c.first_name });
        const fm = h("form", { class: "boutons" }, a,
                     h("button", { type: "submit", class: "bouton petit" },
                       "Enregistrer"));
        fm.addEventListener("submit", async (ev) => {
            ev.preventDefault();
            const r2 = await ctx.call("PUT", "/api/staff/children/"
                                      + enc(c.id),
                                      { allergies: a.value.trim() || null });
            ctx.flash(r2.ok ? { kind: "succes", text: "Allergies de "
                                + c.first_name + " enregistrées." }
                            : { kind: "alerte", text: r2.error.message });
            ctx.route();
        });
        return h("tr", { dataset: { enfant: c.id } },
                 h("th", { scope: "row" }, c.first_name),
                 h("td", {}, F.dayNum(c.birth_date)), h("td", {}, fm));
    });
    const kFirst = h("input", { type: "text", id: "enfant-prenom",
                                required: true });
    const kBirth = h("input", { type: "date", id: "enfant-naissance",
                                required: true });
    const kidForm = act(ctx, "ajout-enfant", "POST", base + "/children",
        () => ({ first_name: kFirst.value.trim(),
                 birth_date: kBirth.value }),
        "Enfant ajouté.",
        h("h3", {}, "Ajouter un enfant"),
        field("Prénom", kFirst), field("Date de naissance", kBirth),
        submit("Ajouter l'enfant"));

    /* enrolment */
    const child = h("select", { id: "ins-enfant" },
        f.children.map((c) => h("option", { value: c.id }, c.first_name)));
    const activity = h("select", { id: "ins-activite" },
        acts.map((a) => h("option", { value: a.id }, a.name)));
    const iFrom = h("input", { type: "date", id: "ins-du", required: true,
                               value: F.todayParis() });
    const iTo = h("input", { type: "date", id: "ins-au", required: true });
    const enrolForm = act(ctx, "inscription", "POST", base + "/enrolments",
        () => ({ child_id: child.value, activity_id: activity.value,
                 from: iFrom.value, to: iTo.value }),
        "Inscription validée.",
        field("Enfant", child), field("Activité", activity),
        field("Du", iFrom), field("Au", iTo), submit("Inscrire"));
    const enrolled = f.enrolments.length === 0 ? null
        : cards(ctx.table("Inscriptions", ["Enfant", "Activité", "Du",
                                            "Au", "État"],
            f.enrolments.map((e) => h("tr", {},
                h("td", {}, (f.children.find((c) => c.id === e.child_id)
                             || {}).first_name || e.child_id),
                h("td", {}, (acts.find((a) => a.id === e.activity_id)
                             || {}).name || e.activity_id),
                h("td", {}, F.dayNum(e.from)), h("td", {}, F.dayNum(e.to)),
                h("td", {}, e.status)))));

    /* the entourage: the people the family declared or an agent added;
     * removing one (with a reason sent to the family) is #/entourage's */
    const people = f.entourage.map((p) => {
        const who = p.first_name + " " + p.last_name;
        const ins = personInputs(p, who);
        const save = h("button", { type: "button", class: "bouton petit",
                                   "aria-label": "Enregistrer " + who },
                       "Enregistrer");
        save.addEventListener("click", async () => {
            const r2 = await ctx.call("PUT", "/api/staff/entourage/"
                                      + enc(p.id), personValue(ins));
            ctx.flash(r2.ok ? { kind: "succes", text: who
                                + " : enregistré(e)." }
                            : { kind: "alerte", text: r2.error.message });
            ctx.route();
        });
        return h("tr", { dataset: { personne: String(p.id) } },
                 personCells(ins), h("td", {}, save));
    });
    const peopleTable = people.length === 0
        ? h("p", {}, "Personne dans l'entourage de cette famille.")
        : cards(ctx.table("Entourage", PERSON_COLS.concat(["Action"]), people));
    const added = personInputs({}, "Nouvelle personne");
    const addForm = act(ctx, "ajout-personne", "POST", base + "/entourage",
        () => personValue(added), "Personne ajoutée.",
        h("h3", {}, "Ajouter une personne"),
        field("Prénom", added.first_name), field("Nom", added.last_name),
        field("Lien avec l'enfant", added.relation),
        field("Téléphone", added.phone),
        h("div", { class: "choix" }, h("label", {}, added.can_pick_up,
            " Peut venir chercher les enfants")),
        h("div", { class: "choix" }, h("label", {}, added.emergency,
            " À prévenir en cas d'urgence")),
        submit("Ajouter"));
    const removeLink = h("p", {}, h("a", {
        href: "#/entourage?famille=" + enc(fid) },
        "Retirer une personne (avec un motif), personnes retirées"));

    /* archiving: admin, two clicks */
    let archive = null;
    if (ctx.rank >= 3) {
        const msg = h("div", { "aria-live": "polite" });
        const btn = h("button", { type: "button", class: "bouton danger",
                                  id: "archiver" }, "Archiver la famille");
        let armed = false;
        btn.addEventListener("click", async () => {
            if (!armed) {
                armed = true;
                btn.textContent = "Confirmer l'archivage";
                msg.replaceChildren(alertBox("L'archivage efface "
                    + "l'identifiant, l'e-mail, l'entourage, les messages, "
                    + "les documents, les prénoms et allergies des "
                    + "enfants ; les factures, paiements et réservations "
                    + "restent pour la comptabilité.  Il est définitif.",
                    "alerte"));
                return;
            }
            const r2 = await ctx.call("POST", base + "/archive");
            if (!r2.ok) {
                msg.replaceChildren(alertBox(r2.error.message));
                armed = false;
                btn.textContent = "Archiver la famille";
                return;
            }
            ctx.flash({ kind: "succes", text: "Famille archivée." });
            ctx.route();
        });
        archive = section("Archivage (RGPD)", "archivage", msg,
                          h("div", { class: "boutons" }, btn));
    }

    /* merging a duplicate into this family: admin */
    let merge = null;
    if (ctx.rank >= 3) {
        const dup = h("input", { type: "text", id: "doublon",
                                 required: true, autocomplete: "off" });
        const mmsg = h("div", { "aria-live": "polite" });
        const mform = h("form", { id: "fusion-form" },
            field("Identifiant du doublon", dup, "Ses enfants, "
                  + "réservations, factures, paiements, documents et "
                  + "messages passent dans cette famille ; le doublon est "
                  + "archivé."),
            mmsg,
            h("div", { class: "boutons" }, h("button", {
                type: "submit", class: "bouton danger" },
                "Fusionner le doublon dans cette famille")));
        mform.addEventListener("submit", async (ev) => {
            ev.preventDefault();
            const r2 = await ctx.call("POST", base + "/merge",
                                      { from: dup.value.trim() });
            if (!r2.ok) {
                mmsg.replaceChildren(alertBox(r2.error.message));
                return;
            }
            ctx.flash({ kind: "succes", text: "Famille " + r2.data.merged
                        + " fusionnée dans " + r2.data.id + " (enfants : "
                        + r2.data.children.join(", ") + ")." });
            ctx.route();
        });
        merge = section("Fusionner un doublon", "fusion", mform);
    }

    out.replaceChildren(
        h("p", {}, h("a", { href: "#/familles?id=" + enc(fid) },
                     "← Fiche de la famille")),
        summary,
        section("Quotient familial", "section-qf", qfForm, hist),
        section("Résidence et e-mail", "section-coordonnees", resForm),
        section("Enfants", "section-enfants",
                cards(ctx.table("Enfants", ["Prénom", "Né(e) le",
                                            "Allergies"], kidRows, null,
                                true)),
                kidForm),
        section("Inscriptions", "section-inscriptions", enrolled,
                enrolForm),
        section("Co-responsable", "section-coresponsable",
                coResponsable(f.co_responsable)),
        section("Entourage", "section-entourage", peopleTable, removeLink,
                addForm),
        ...(merge ? [merge] : []),
        ...(archive ? [archive] : []));
}
