/*
 * demande.js -- a new family asks for a file online (issue 25,
 * office/request.c): the form #/demander-un-dossier (parents, contact,
 * address, children, login, password, CGU; POST /api/account/request),
 * the e-mail's confirmation link #/confirmer-demande?jeton=…
 * (POST /api/account/request/confirm), and the space of a family whose
 * file waits for the town (GET /api/account/pending): its state, its
 * children, the documents to upload; no enrolment, no booking until the
 * town validates it.
 */

import * as api from "./api.js";
import { h, alertBox, announce } from "./dom.js";
import { clearOnInput, field, when } from "./espace.js";
import { accountChecked, accountFields, query } from "./compte.js";

const CHILDREN_MAX = 10;          /* guichet-office's limit */

function input(id, attrs) {
    return h("input", Object.assign({ type: "text", id }, attrs || {}));
}

/* One child's row: first name, birth date, « Retirer ». */
function childRow(n, onRemove) {
    const first = input("dm-enfant-" + n + "-prenom",
                        { required: true, autocomplete: "off" });
    const birth = input("dm-enfant-" + n + "-naissance",
                        { type: "date", required: true });
    const remove = h("button", { class: "bouton secondaire petit",
                                 type: "button" }, "Retirer cet enfant");
    const box = h("fieldset", { class: "enfant-demande" },
        h("legend", {}, "Enfant " + n),
        field("Prénom", first), field("Date de naissance", birth),
        h("div", { class: "boutons" }, remove));
    remove.addEventListener("click", () => onRemove(row));
    const row = { box, first, birth, legend: box.firstChild };
    return row;
}

export function viewDemanderDossier(ctx) {
    const msg = h("div", { "aria-live": "assertive" });
    const p1f = input("dm-p1-prenom", { required: true,
                                        autocomplete: "given-name" });
    const p1l = input("dm-p1-nom", { required: true,
                                     autocomplete: "family-name" });
    const p2f = input("dm-p2-prenom", { autocomplete: "off" });
    const p2l = input("dm-p2-nom", { autocomplete: "off" });
    const email = input("dm-email", { type: "email", required: true,
                                      autocomplete: "email" });
    const phone = input("dm-telephone", { type: "tel", required: true,
                                          autocomplete: "tel" });
    const l1 = input("dm-adresse1", { required: true,
                                      autocomplete: "address-line1" });
    const l2 = input("dm-adresse2", { autocomplete: "address-line2" });
    const pc = input("dm-cp", { required: true, inputmode: "numeric",
                                autocomplete: "postal-code" });
    const city = input("dm-ville", { required: true,
                                     autocomplete: "address-level2" });
    const account = accountFields("dm");
    const { login, pw, pw2 } = account;

    const kids = [];
    const kidsBox = h("div", { id: "dm-enfants" });
    const add = h("button", { class: "bouton secondaire", type: "button",
                              id: "dm-ajouter-enfant" },
                  "Ajouter un enfant");
    let made = 0;
    const renumber = () => {
        kids.forEach((k, i) => {
            k.legend.textContent = "Enfant " + (i + 1);
        });
        add.disabled = kids.length >= CHILDREN_MAX;
        for (const k of kids) {
            k.box.querySelector("button").hidden = kids.length === 1;
        }
    };
    const addChild = () => {
        const k = childRow(++made, (row) => {
            kids.splice(kids.indexOf(row), 1);
            row.box.remove();
            renumber();
            announce("Enfant retiré.");
            add.focus();
        });
        kids.push(k);
        kidsBox.append(k.box);
        renumber();
        return k;
    };
    addChild();
    add.addEventListener("click", () => {
        addChild().first.focus();
    });

    const ok = h("button", { class: "bouton", type: "submit" },
                 "Envoyer ma demande");
    const form = h("form", { class: "carte", id: "form-demande",
                             novalidate: true },
        h("h2", {}, "Responsables légaux"),
        h("fieldset", {}, h("legend", {}, "Premier responsable"),
          field("Prénom", p1f), field("Nom", p1l)),
        h("fieldset", {}, h("legend", {}, "Second responsable (facultatif)"),
          field("Prénom", p2f), field("Nom", p2l)),
        h("h2", {}, "Coordonnées"),
        field("Adresse e-mail", email, "Un lien de confirmation y est "
              + "envoyé ; la mairie vous y répond."),
        field("Téléphone", phone),
        field("Adresse", l1), field("Complément d'adresse (facultatif)", l2),
        field("Code postal", pc), field("Commune", city),
        h("h2", {}, "Enfants"),
        kidsBox, h("div", { class: "boutons" }, add),
        h("h2", {}, "Votre compte"),
        ...account.rows,
        msg, h("div", { class: "boutons" }, ok));
    clearOnInput(form, msg);

    ctx.page("Demander un dossier famille",
             h("p", {}, "Votre famille n'est pas encore connue de la "
               + "mairie ? Demandez ici l'ouverture de votre dossier. "
               + "La mairie le vérifie avant toute inscription ou "
               + "réservation ; en attendant, vous pourrez vous connecter "
               + "et déposer vos pièces justificatives."),
             h("p", { class: "discret" }, "Votre famille a déjà un dossier "
               + "et la mairie vous a envoyé un code ? ",
               h("a", { href: "#/creer-mon-espace" }, "Créer mon espace "
                 + "avec mon numéro de dossier"), "."),
             form);

    form.addEventListener("submit", async (ev) => {
        ev.preventDefault();
        msg.replaceChildren();
        const required = [p1f, p1l, email, phone, l1, pc, city,
                          ...kids.flatMap((k) => [k.first, k.birth])];
        const half = !p2f.value.trim() !== !p2l.value.trim();
        if (half) {
            msg.replaceChildren(alertBox("Donnez le prénom et le nom du "
                + "second responsable, ou laissez les deux vides."));
            (p2f.value.trim() ? p2l : p2f).focus();
            return;
        }
        const version = await accountChecked(account, required, msg);
        if (version === null) {
            return;
        }
        ok.disabled = true;
        const r = await api.post("/api/account/request", {
            parent1_first_name: p1f.value.trim(),
            parent1_last_name: p1l.value.trim(),
            parent2_first_name: p2f.value.trim() || null,
            parent2_last_name: p2l.value.trim() || null,
            email: email.value.trim(), phone: phone.value.trim(),
            address_line1: l1.value.trim(),
            address_line2: l2.value.trim() || null,
            postcode: pc.value.trim(), city: city.value.trim(),
            children: kids.map((k) => ({ first_name: k.first.value.trim(),
                                         birth_date: k.birth.value })),
            login: login.value.trim(), password: pw.value,
            cgu_version: version });
        ok.disabled = false;
        if (!r.ok) {
            msg.replaceChildren(alertBox(r.status === 429
                ? "Trop de demandes : patientez quelques minutes avant de "
                  + "réessayer."
                : r.error.message));
            return;
        }
        pw.value = "";
        pw2.value = "";
        ctx.page("Demander un dossier famille",
            h("div", { class: "succes", role: "status",
                       id: "demande-envoyee" },
              h("p", {}, "Votre demande est enregistrée. Un e-mail vient "
                + "d'être envoyé à " + email.value.trim() + "."),
              h("p", {}, "Ouvrez le lien qu'il contient dans les 24 heures "
                + "pour confirmer votre adresse ; vous pourrez ensuite "
                + "vous connecter avec l'identifiant « "
                + login.value.trim() + " » et déposer vos pièces.")));
    });
}

export async function viewConfirmerDemande(ctx) {
    const token = query().get("jeton") || "";
    const out = h("div", { id: "confirmation", "aria-live": "polite" },
                  h("p", { class: "chargement" }, "Confirmation…"));
    ctx.page("Confirmer ma demande de dossier", out);
    if (!token) {
        out.replaceChildren(alertBox("Ce lien est incomplet : ouvrez le "
                                     + "lien complet de l'e-mail."));
        return;
    }
    const r = await api.post("/api/account/request/confirm", { token });
    if (!r.ok) {
        out.replaceChildren(alertBox(r.error.message),
            h("p", {}, h("a", { href: "#/demander-un-dossier" },
                          "Demander un dossier famille")));
        return;
    }
    out.replaceChildren(h("div", { class: "succes", role: "status" },
        h("p", {}, "Votre adresse e-mail est confirmée. La mairie va "
          + "vérifier votre dossier ; connectez-vous avec l'identifiant « "
          + r.data.login + " » pour suivre votre demande et déposer vos "
          + "pièces.")),
        h("p", {}, h("a", { class: "bouton", href: "#/connexion" },
                      "Me connecter")));
}

/* The family's file asked online, or null (a family the town made). */
export async function pendingFile() {
    const r = await api.get("/api/account/pending");
    return r.ok && r.data && r.data.status !== "validee" ? r.data : null;
}

/* The dashboard of a family whose file waits for the town. */
export function viewDossierEnAttente(ctx) {
    const p = ctx.me.pending;
    const refused = p.status === "refusee";
    const parents = (p.parents || []).map((x) => x.first_name + " "
                                                 + x.last_name);
    ctx.page("Mon dossier famille",
        h("div", { class: refused ? "alerte" : "info", role: "status",
                   id: "etat-dossier" },
          refused
            ? h("p", {}, "Votre demande de dossier a été refusée par la "
                + "mairie. Motif : " + (p.reason || "—"))
            : h("p", {}, "Votre dossier est en attente de validation par "
                + "la mairie. Vous recevrez sa réponse par e-mail ; "
                + "d'ici là, les inscriptions et les réservations ne "
                + "sont pas ouvertes.")),
        h("section", { class: "carte", "aria-labelledby": "t-demande" },
          h("h2", { id: "t-demande" }, "Votre demande"),
          h("dl", { class: "fiche" },
            h("dt", {}, "Numéro de dossier"), h("dd", {}, p.family_id),
            h("dt", {}, "Demandé le"), h("dd", {}, when(p.requested_at)),
            h("dt", {}, "Responsables"), h("dd", {}, parents.join(", ")),
            h("dt", {}, "Adresse e-mail"), h("dd", {}, p.email || "—"),
            h("dt", {}, "Enfants"),
            h("dd", {}, (p.children || []).map((c) => c.first_name
                + " (né(e) le " + when(c.birth_date) + ")").join(", ")))),
        refused ? null
            : h("section", { class: "carte",
                             "aria-labelledby": "t-pieces-attente" },
                h("h2", { id: "t-pieces-attente" }, "Vos pièces"),
                h("p", {}, "Déposez dès maintenant les pièces que la "
                  + "mairie demande (justificatif de domicile, attestation "
                  + "d'assurance, vaccinations…) : elles seront vérifiées "
                  + "avec votre dossier."),
                h("p", {}, h("a", { class: "bouton", href: "#/documents",
                                    id: "lien-pieces" },
                             "Déposer mes pièces"))));
}
