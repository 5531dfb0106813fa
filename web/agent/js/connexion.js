/*
 * connexion.js -- the back office's login (#/connexion): POST
 * /api/staff/session, the tab's staff session kept (shell.js).
 */

import { h, alertBox } from "../../js/dom.js";
import { field, pick } from "../../js/espace.js";
import { KEY, staff, setStaff, post, page } from "./shell.js";

export function viewConnexion() {
    const err = h("div", { "aria-live": "assertive" });
    const login = h("input", { type: "text", id: "ag-identifiant",
                               autocomplete: "username", required: true,
                               autocapitalize: "none",
                               spellcheck: "false" });
    const pass = h("input", { type: "password", id: "ag-motdepasse",
                              autocomplete: "current-password",
                              required: true });
    const btn = h("button", { class: "bouton", type: "submit" },
                  "Connexion");
    const form = h("form", { class: "carte", novalidate: true },
        field("Identifiant agent", login), field("Mot de passe", pass), err,
        h("div", { class: "boutons" }, btn));
    form.addEventListener("submit", async (ev) => {
        ev.preventDefault();
        err.replaceChildren();
        if (!login.value.trim() || !pass.value) {
            err.replaceChildren(alertBox("Indiquez votre identifiant et "
                                         + "votre mot de passe."));
            return;
        }
        btn.disabled = true;
        const r = await post("/api/staff/session",
                             { login: login.value.trim(),
                               password: pass.value });
        btn.disabled = false;
        if (!r.ok) {
            err.replaceChildren(alertBox(r.status === 401
                ? "Identifiant ou mot de passe incorrect."
                : r.error.message));
            pass.value = "";
            pass.focus();
            return;
        }
        setStaff({ token: r.data.token,
                   login: pick(r.data, "login") || login.value.trim(),
                   role: pick(r.data, "role") || "agent",
                   name: pick(r.data, "name") || "" });
        sessionStorage.setItem(KEY, JSON.stringify(staff));
        location.hash = "#/inscriptions";
    });
    page("Connexion au back office", form);
}
