/*
 * coresponsable.js -- the second legal representative (issue 25):
 * « Co-responsable » of the family space (#/co-responsable: invite them,
 * the single-use link shown once to hand over, their state, *Retirer*)
 * and the page of that link (#/invitation?jeton=…, public: they choose
 * their login and password and accept the CGU).  Routes of
 * office/coresp.c, docs/api.md.  Both parents then log in on the same
 * file.
 */

import * as api from "./api.js";
import { h, alertBox, announce } from "./dom.js";
import { clearOnInput, field, when } from "./espace.js";
import { accountChecked, accountFields, query } from "./compte.js";

function invitationShown(c) {
    const link = h("input", { type: "text", id: "co-lien", readonly: true,
                              value: c.invitation_url });
    const copy = h("button", { type: "button", class: "bouton second" },
                   "Copier le lien");
    copy.addEventListener("click", async () => {
        link.select();
        try {
            await navigator.clipboard.writeText(link.value);
            announce("Lien copié.");
        } catch (e) {
            announce("Sélectionnez le lien et copiez-le.");
        }
    });
    return h("div", { class: "succes", role: "status", id: "co-invitation" },
        h("p", {}, "Invitation créée pour " + c.first_name + " "
          + c.last_name + ". Transmettez-lui ce lien (par e-mail ou SMS) : "
          + "il ne sera plus affiché, il sert une seule fois et reste "
          + "valable 7 jours."),
        field("Lien d'invitation", link),
        h("div", { class: "boutons" }, copy));
}

export async function viewCoResponsable(ctx) {
    const r = await api.get("/api/co-responsables");
    if (r.status === 401) {
        return ctx.expired();
    }
    if (!r.ok) {
        ctx.page("Co-responsable", alertBox(r.error.message));
        return;
    }
    const intro = h("p", {}, "Le second responsable légal de vos enfants "
        + "peut avoir son propre identifiant et son mot de passe sur votre "
        + "dossier : il voit et fait les mêmes choses que vous "
        + "(réservations, factures, documents).");
    const list = r.data.co_responsables || [];
    if (list.length) {
        const c = list[0];
        const msg = h("div", { "aria-live": "polite" });
        const remove = h("button", { type: "button",
                                     class: "bouton second",
                                     id: "co-retirer" },
                         "Retirer le co-responsable");
        let armed = false;
        remove.addEventListener("click", async () => {
            if (!armed) {
                armed = true;
                remove.textContent = "Confirmer le retrait";
                msg.replaceChildren(h("p", { class: "info" },
                    "Son accès s'arrête aussitôt et vos autres sessions "
                    + "ouvertes se ferment. Appuyez encore pour "
                    + "confirmer."));
                return;
            }
            remove.disabled = true;
            const d = await api.del("/api/co-responsables/" + c.id);
            remove.disabled = false;
            if (!d.ok) {
                msg.replaceChildren(alertBox(d.error.message));
                return;
            }
            ctx.flash = { kind: "succes", text: "Co-responsable retiré." };
            ctx.route();
        });
        ctx.page("Co-responsable", intro,
            h("section", { class: "carte", id: "co-actuel",
                           "aria-labelledby": "t-co" },
              h("h2", { id: "t-co" }, c.first_name + " " + c.last_name),
              h("p", {}, "Adresse e-mail : " + c.email),
              h("p", {}, c.status === "actif"
                ? "Accès actif depuis le " + when(c.activated_at)
                  + ", identifiant « " + c.login + " »."
                : "Invité le " + when(c.created_at) + " : l'invitation "
                  + "n'a pas encore été utilisée (valable jusqu'au "
                  + when(c.invite_expires_at) + ")."),
              msg, h("div", { class: "boutons" }, remove)));
        return;
    }

    const msg = h("div", { "aria-live": "assertive" });
    const first = h("input", { type: "text", id: "co-prenom",
                               required: true, autocomplete: "off" });
    const last = h("input", { type: "text", id: "co-nom", required: true,
                              autocomplete: "off" });
    const email = h("input", { type: "email", id: "co-email",
                               required: true, autocomplete: "off" });
    const form = h("form", { class: "carte", id: "form-co",
                             novalidate: true },
        h("h2", {}, "Inviter le second responsable légal"),
        field("Prénom", first), field("Nom", last),
        field("Adresse e-mail", email),
        msg,
        h("div", { class: "boutons" },
          h("button", { type: "submit", class: "bouton" }, "Inviter")));
    clearOnInput(form, msg);
    form.addEventListener("submit", async (ev) => {
        ev.preventDefault();
        const missing = [first, last, email].find((x) => !x.value.trim());
        if (missing) {
            msg.replaceChildren(alertBox("Remplissez tous les champs."));
            missing.focus();
            return;
        }
        const c = await api.post("/api/co-responsables", {
            first_name: first.value.trim(), last_name: last.value.trim(),
            email: email.value.trim() });
        if (!c.ok) {
            msg.replaceChildren(alertBox(c.error.message));
            return;
        }
        ctx.page("Co-responsable", intro, invitationShown(c.data));
    });
    ctx.page("Co-responsable", intro, form);
}

export async function viewInvitation(ctx) {
    const token = query().get("jeton") || "";
    const msg = h("div", { "aria-live": "assertive" });
    const account = accountFields("inv");
    const { login, pw, pw2 } = account;
    const ok = h("button", { class: "bouton", type: "submit" },
                 "Créer mon accès");
    const form = h("form", { class: "carte", id: "form-invitation",
                             novalidate: true },
        ...account.rows,
        msg, h("div", { class: "boutons" }, ok));
    clearOnInput(form, msg);
    ctx.page("Accès co-responsable",
             h("p", {}, "L'autre responsable légal de vos enfants vous "
               + "invite sur son Espace Famille. Choisissez votre "
               + "identifiant et votre mot de passe."),
             token ? form : alertBox("Ce lien est incomplet : ouvrez le "
                                     + "lien complet qui vous a été "
                                     + "transmis."));

    form.addEventListener("submit", async (ev) => {
        ev.preventDefault();
        const version = await accountChecked(account, [], msg);
        if (version === null) {
            return;
        }
        ok.disabled = true;
        const r = await api.post("/api/account/co-responsable", {
            token, login: login.value.trim(), password: pw.value,
            cgu_version: version });
        ok.disabled = false;
        if (!r.ok) {
            msg.replaceChildren(alertBox(r.status === 429
                ? "Trop d'essais : patientez quelques minutes avant de "
                  + "réessayer."
                : r.error.message));
            return;
        }
        pw.value = "";
        pw2.value = "";
        ctx.page("Accès co-responsable",
            h("div", { class: "succes", role: "status", id: "inv-ok" },
              h("p", {}, "Votre accès est créé. Connectez-vous avec "
                + "l'identifiant « " + r.data.login + " » et votre mot "
                + "de passe.")),
            h("p", {}, h("a", { class: "bouton", href: "#/connexion" },
                          "Me connecter")));
    });
}
