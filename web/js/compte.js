/*
 * compte.js -- the login and password a person chooses, the terms of use
 * accepted: the part « Créer mon espace » (premiere.js) and the page of a
 * co-responsable's invitation (coresponsable.js) share.  The rules are
 * guichet-office's (office/activation.c, gcho_account_choice_check); they
 * are said here before sending.
 */

import * as api from "./api.js";
import { h, alertBox } from "./dom.js";
import { field } from "./espace.js";

export const PW_MIN = 10;       /* guichet-office: 10 characters at least */

/* The parameters after the hash's "?" (#/activer?jeton=…). */
export function query() {
    return new URLSearchParams(location.hash.split("?")[1] || "");
}

/* The inputs (ids prefix-identifiant, prefix-motdepasse,
 * prefix-confirmation, prefix-cgu) and the form's rows that show them. */
export function accountFields(prefix) {
    const c = {
        login: h("input", { type: "text", id: prefix + "-identifiant",
                            required: true, autocomplete: "username",
                            autocapitalize: "none", spellcheck: "false" }),
        pw: h("input", { type: "password", id: prefix + "-motdepasse",
                         required: true, autocomplete: "new-password" }),
        pw2: h("input", { type: "password", id: prefix + "-confirmation",
                          required: true, autocomplete: "new-password" }),
        cgu: h("input", { type: "checkbox", id: prefix + "-cgu",
                          required: true }),
    };
    c.rows = [
        field("Identifiant choisi", c.login, "3 à 64 caractères : lettres "
              + "sans accent, chiffres, « . », « _ », « - », « @ »."),
        field("Mot de passe", c.pw, PW_MIN + " caractères au moins."),
        field("Confirmation du mot de passe", c.pw2),
        h("div", { class: "choix" }, h("label", { for: prefix + "-cgu" },
          c.cgu, " J'ai lu et j'accepte les conditions générales "
          + "d'utilisation")),
        h("p", {}, h("a", { href: "#/cgu", target: "_blank",
                            rel: "noopener" },
                      "Lire les conditions générales d'utilisation "
                      + "(nouvel onglet)")),
    ];
    return c;
}

/*
 * Before sending: every input of others and c filled, the password long
 * enough and typed twice the same, the terms accepted; then the version
 * of the terms in force.  That version, or null after saying what is
 * wrong in msg (and focusing the input to correct).
 */
export async function accountChecked(c, others, msg) {
    const missing = [...others, c.login, c.pw, c.pw2]
        .find((x) => !x.value.trim());
    const problem = missing ? "Remplissez tous les champs."
        : [...c.pw.value].length < PW_MIN ? "Le mot de passe doit faire "
          + PW_MIN + " caractères au moins."
        : c.pw.value !== c.pw2.value ? "Les deux mots de passe sont "
          + "différents."
        : !c.cgu.checked ? "Acceptez les conditions générales "
          + "d'utilisation."
        : null;
    if (problem) {
        msg.replaceChildren(alertBox(problem));
        (missing || (!c.cgu.checked ? c.cgu : c.pw)).focus();
        return null;
    }
    const v = await api.get("/api/account/cgu");
    if (!v.ok) {
        msg.replaceChildren(alertBox(v.error.message));
        return null;
    }
    return v.data.version;
}
