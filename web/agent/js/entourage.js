/*
 * entourage.js -- the back office's « Entourage » (issue 25): a family's
 * entourage, the people removed before included; only the town removes
 * one, with a reason sent to the family (DELETE /api/staff/entourage/{id},
 * audited entourage.remove).
 *
 * viewEntourage(env): env is agent.js's {page, get, call, done(text)}.
 */

import { h, id, alertBox } from "../../js/dom.js";
import { field, when } from "../../js/espace.js";

/* The reason of a removal, asked in a dialog; null when cancelled. */
function askRemoval(who) {
    return new Promise((done) => {
        const tid = id("dlg");
        const input = h("textarea", { id: id("motif"), rows: "3",
                                      required: true });
        const err = h("div", { "aria-live": "polite" });
        const form = h("form", { method: "dialog", novalidate: true },
            h("p", {}, who),
            field("Motif du retrait (envoyé à la famille)", input), err,
            h("div", { class: "boutons" },
              h("button", { class: "bouton danger", type: "submit" },
                "Retirer"),
              h("button", { class: "bouton second", type: "button",
                            onclick: () => { dlg.close(); } },
                "Annuler")));
        const dlg = h("dialog", { "aria-labelledby": tid },
                      h("h2", { id: tid }, "Retirer de l'entourage"), form);
        let value = null;
        form.addEventListener("submit", (ev) => {
            if (!input.value.trim()) {
                ev.preventDefault();
                err.replaceChildren(alertBox("Indiquez un motif."));
                return;
            }
            value = input.value.trim();
        });
        dlg.addEventListener("close", () => {
            dlg.remove();
            done(value);
        });
        document.body.appendChild(dlg);
        dlg.showModal();
    });
}

export async function viewEntourage(env) {
    const q = new URLSearchParams(location.hash.split("?")[1] || "");
    const fid = q.get("famille") || "";
    const input = h("input", { type: "text", id: "ent-famille",
                               value: fid, required: true });
    const form = h("form", { class: "carte", id: "form-ent-famille" },
        field("Famille (numéro de dossier)", input),
        h("div", { class: "boutons" },
          h("button", { class: "bouton", type: "submit" }, "Afficher")));
    form.addEventListener("submit", (ev) => {
        ev.preventDefault();
        location.hash = "#/entourage?famille="
                        + encodeURIComponent(input.value.trim());
    });
    const out = h("div", { id: "entourage" });
    env.page("Entourage", form, out);
    if (!fid) {
        return;
    }
    const r = await env.get("/api/staff/entourage?family_id="
                            + encodeURIComponent(fid));
    if (!r.ok) {
        out.replaceChildren(alertBox(r.error.message));
        return;
    }
    const list = r.data.entourage || [];
    if (list.length === 0) {
        out.replaceChildren(h("p", {}, "Personne dans l'entourage de "
                                       + "cette famille."));
        return;
    }
    const err = h("div", { "aria-live": "polite" });
    out.replaceChildren(err, ...list.map((p) => {
        const who = p.first_name + " " + p.last_name;
        const roles = [p.can_pick_up ? "peut venir chercher les enfants"
                                     : null,
                       p.emergency ? "à prévenir en cas d'urgence" : null]
            .filter(Boolean).join(", ");
        return h("section", { class: "carte",
                              dataset: { personne: String(p.id) },
                              "aria-labelledby": "ent-t-" + p.id },
            h("h2", { id: "ent-t-" + p.id }, who + " (" + p.relation + ")"),
            h("p", {}, p.phone + " — " + roles),
            p.removed_at
                ? h("p", { class: "discret" }, "Retiré(e) le "
                    + when(p.removed_at) + " par " + p.removed_by
                    + " : " + p.removal_reason)
                : h("div", { class: "boutons" },
                    h("button", { class: "bouton danger", type: "button",
                                  onclick: async () => {
                                      const reason = await askRemoval(who);
                                      if (!reason) {
                                          return;
                                      }
                                      const d = await env.call("DELETE",
                                          "/api/staff/entourage/"
                                          + encodeURIComponent(p.id),
                                          { reason });
                                      if (!d.ok) {
                                          err.replaceChildren(
                                              alertBox(d.error.message));
                                          return;
                                      }
                                      env.done(who + " retiré(e) de "
                                               + "l'entourage.");
                                  } },
                      "Retirer")));
    }));
}
