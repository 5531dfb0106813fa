/*
 * motdepasse.js -- the family space's passwords: "Mot de passe" (change,
 * #/mot-de-passe), forgotten (#/mot-de-passe-oublie) and the reset of an
 * e-mailed link (#/nouveau-mot-de-passe).
 */

import * as api from "./api.js";
import { h, alertBox } from "./dom.js";
import { clearOnInput, field } from "./espace.js";

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
