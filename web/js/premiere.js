/*
 * premiere.js -- a family's first connection (issue 25): « Créer mon
 * espace » with the dossier number and the code the town sent, the terms
 * of use (CGU, versioned) accepted, a login and a password
 * (POST /api/account/create); the activation link of the e-mail
 * (#/activer?jeton=…, POST /api/account/activate); the terms of use
 * themselves (#/cgu), which a logged-in family accepts again when a new
 * version is published (POST /api/account/cgu).
 */

import * as api from "./api.js";
import { h, alertBox } from "./dom.js";
import { clearOnInput, field, when } from "./espace.js";
import { accountChecked, accountFields, query } from "./compte.js";

/* The terms' text: what the family agrees to (the town's own terms may
 * replace it; the version is the server's). */
function cguText() {
    return [
        h("h2", {}, "Objet"),
        h("p", {}, "L'Espace Famille permet aux familles de la commune "
          + "d'inscrire leurs enfants aux activités, de réserver et "
          + "d'annuler des séances, de déposer les pièces demandées, "
          + "d'échanger avec les services et de payer leurs factures."),
        h("h2", {}, "Compte"),
        h("p", {}, "Le compte est créé avec le numéro de dossier et le "
          + "code envoyés par la mairie. L'identifiant et le mot de passe "
          + "sont personnels : ne les communiquez à personne. Toute "
          + "réservation faite avec votre compte vous engage et est "
          + "facturée selon les règles de l'activité."),
        h("h2", {}, "Données personnelles"),
        h("p", {}, "Les informations de votre dossier sont traitées par la "
          + "commune pour l'accueil de vos enfants et la facturation. Vous "
          + "pouvez y accéder et les faire rectifier auprès du service "
          + "enfance ; vos coordonnées se modifient dans « Mes "
          + "coordonnées »."),
    ];
}

export async function viewCgu(ctx) {
    const head = h("p", { id: "cgu-version", class: "discret" },
                   "Chargement…");
    const msg = h("div", { "aria-live": "polite" });
    ctx.page("Conditions générales d'utilisation", head, ...cguText(), msg);
    const r = await api.get("/api/account/cgu");
    if (!r.ok) {
        head.replaceChildren(alertBox(r.error.message));
        return;
    }
    head.textContent = r.data.title + " — version " + r.data.version
                       + " du " + when(String(r.data.published_at)
                                          .slice(0, 10)) + ".";
    /* a family logged in accepts it here; anyone else only reads */
    const a = await api.get("/api/account");
    if (!a.ok || a.data.cgu_ok) {
        if (a.ok) {
            msg.replaceChildren(h("p", { class: "info", role: "status" },
                "Vous avez accepté cette version le "
                + when(a.data.cgu_accepted_at) + "."));
        }
        return;
    }
    const ok = h("button", { class: "bouton", type: "button",
                             id: "cgu-accepter" },
                 "J'accepte les conditions d'utilisation");
    ok.addEventListener("click", async () => {
        ok.disabled = true;
        const u = await api.post("/api/account/cgu",
                                 { version: r.data.version });
        ok.disabled = false;
        if (!u.ok) {
            msg.replaceChildren(alertBox(u.error.message));
            return;
        }
        ctx.flash = { kind: "succes", text: "Conditions d'utilisation "
                      + "acceptées." };
        location.hash = "#/tableau-de-bord";
    });
    msg.replaceChildren(h("div", { class: "boutons" }, ok));
}

export async function viewCreerEspace(ctx) {
    const q = query();
    const msg = h("div", { "aria-live": "assertive" });
    const dossier = h("input", { type: "text", id: "cr-dossier",
                                 required: true, autocapitalize: "none",
                                 spellcheck: "false",
                                 value: q.get("dossier") || "" });
    const code = h("input", { type: "text", id: "cr-code", required: true,
                              autocomplete: "off", autocapitalize:
                              "characters", spellcheck: "false" });
    const email = h("input", { type: "email", id: "cr-email",
                               required: true, autocomplete: "email" });
    const account = accountFields("cr");
    const { login, pw, pw2 } = account;
    const ok = h("button", { class: "bouton", type: "submit" },
                 "Créer mon espace");
    const form = h("form", { class: "carte", id: "form-creer",
                             novalidate: true },
        h("h2", {}, "Votre dossier"),
        field("Numéro de dossier", dossier, "Il figure sur le courrier ou "
              + "l'e-mail de la mairie."),
        field("Code d'activation", code, "10 lettres et chiffres, par "
              + "exemple ABCDE-FGH23."),
        h("h2", {}, "Votre compte"),
        field("Adresse e-mail", email, "Le lien d'activation y est "
              + "envoyé."),
        ...account.rows,
        msg, h("div", { class: "boutons" }, ok));
    clearOnInput(form, msg);

    ctx.page("Créer mon espace",
             h("p", {}, "Votre famille a un dossier à la mairie mais pas "
               + "encore d'accès à l'Espace Famille ? Saisissez le numéro "
               + "de dossier et le code envoyés par la mairie."), form);

    form.addEventListener("submit", async (ev) => {
        ev.preventDefault();
        msg.replaceChildren();
        const version = await accountChecked(account,
                                             [dossier, code, email], msg);
        if (version === null) {
            return;
        }
        ok.disabled = true;
        const r = await api.post("/api/account/create", {
            dossier: dossier.value.trim(), code: code.value.trim(),
            email: email.value.trim(), login: login.value.trim(),
            password: pw.value, cgu_version: version });
        ok.disabled = false;
        if (!r.ok) {
            msg.replaceChildren(alertBox(r.status === 429
                ? "Trop d'essais pour ce dossier : patientez quelques "
                  + "minutes avant de réessayer."
                : r.error.message));
            return;
        }
        pw.value = "";
        pw2.value = "";
        ctx.page("Créer mon espace", h("div", { class: "succes",
                                                role: "status",
                                                id: "creer-envoye" },
            h("p", {}, "C'est presque fini : un e-mail vient d'être envoyé "
              + "à " + email.value.trim() + "."),
            h("p", {}, "Ouvrez le lien qu'il contient dans les 24 heures "
              + "pour activer votre espace, puis connectez-vous avec "
              + "l'identifiant « " + login.value.trim() + " ».")));
    });
}

export async function viewActiver(ctx) {
    const token = query().get("jeton") || "";
    const out = h("div", { id: "activation", "aria-live": "polite" },
                  h("p", { class: "chargement" }, "Activation…"));
    ctx.page("Activer mon espace", out);
    if (!token) {
        out.replaceChildren(alertBox("Ce lien est incomplet : ouvrez le "
                                     + "lien complet de l'e-mail."));
        return;
    }
    const r = await api.post("/api/account/activate", { token });
    if (!r.ok) {
        out.replaceChildren(alertBox(r.error.message),
            h("p", {}, h("a", { href: "#/creer-mon-espace" },
                          "Créer mon espace")));
        return;
    }
    out.replaceChildren(h("div", { class: "succes", role: "status" },
        h("p", {}, "Votre Espace Famille est activé. Connectez-vous avec "
          + "l'identifiant « " + r.data.login + " » et votre mot de "
          + "passe.")),
        h("p", {}, h("a", { class: "bouton", href: "#/connexion" },
                      "Me connecter")));
}
