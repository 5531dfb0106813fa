/*
 * guichet.js -- the back office's "Guichet" (#/guichet): on-site places
 * booked for a family (the module's POST /api/staff/bookings), the family
 * found by its suggestions (an ARIA 1.2 combobox, issue 22).
 */

import * as F from "../../js/format.js";
import { h, announce, alertBox } from "../../js/dom.js";
import { field, listOf } from "../../js/espace.js";
import { reasonText, labelOf } from "../../js/planning.js";
import { get, post, newKey, page, loading } from "./shell.js";
import { familyName, findFamily } from "./familles.js";

/* The suggestions of a family field (an ARIA 1.2 combobox: the input keeps
 * the focus, the list is its listbox): the families whose login, id,
 * e-mail address or a child's first name holds what was typed (two
 * characters at least, 10 suggestions), from /api/staff/families;
 * arrows move, Enter or a click chooses, Escape closes (issue 22). */
function familySuggestions(input, choose) {
    const list = h("ul", { id: "gu-suggestions", role: "listbox",
                           class: "suggestions", hidden: true,
                           "aria-label": "Familles proposées" });
    let found = [];
    let active = -1;
    let asked = 0;
    let timer = null;
    const close = () => {
        list.hidden = true;
        list.replaceChildren();
        found = [];
        active = -1;
        input.setAttribute("aria-expanded", "false");
        input.removeAttribute("aria-activedescendant");
    };
    const mark = (i) => {
        active = i;
        list.querySelectorAll("[role=option]").forEach((o, j) =>
            o.setAttribute("aria-selected", String(j === i)));
        if (i >= 0) {
            input.setAttribute("aria-activedescendant", "gu-option-" + i);
            list.children[i].scrollIntoView({ block: "nearest" });
        } else {
            input.removeAttribute("aria-activedescendant");
        }
    };
    const pickIt = (f) => {
        input.value = f.login || f.id;
        close();
        choose(f);
    };
    const suggest = async () => {
        const text = input.value.trim();
        const me = ++asked;
        if (text.length < 2) {
            close();
            return;
        }
        const r = await get("/api/staff/families?limit=10&q="
                            + encodeURIComponent(text));
        if (me !== asked || document.activeElement !== input) {
            return;
        }
        found = r.ok ? listOf(r.data, "families") : [];
        if (found.length === 0) {
            close();
            announce("Aucune famille proposée.");
            return;
        }
        list.replaceChildren(...found.map((f, i) => h("li", {
            id: "gu-option-" + i, role: "option", "aria-selected": "false",
            dataset: { famille: f.id },
            onmousedown: (ev) => ev.preventDefault(),
            onclick: () => pickIt(f) },
            familyName(f), (f.children || []).length > 0
                ? h("span", { class: "discret" }, " — "
                    + f.children.map((c) => c.first_name).join(", "))
                : null)));
        active = -1;
        list.hidden = false;
        input.setAttribute("aria-expanded", "true");
        input.removeAttribute("aria-activedescendant");
        const more = r.data.total > found.length
                     ? " sur " + r.data.total : "";
        announce(found.length + " famille" + (found.length > 1 ? "s" : "")
                 + " proposée" + (found.length > 1 ? "s" : "") + more
                 + " : flèches pour choisir.");
    };
    input.addEventListener("input", () => {
        clearTimeout(timer);
        timer = setTimeout(suggest, 200);
    });
    input.addEventListener("keydown", (ev) => {
        if (ev.key === "Escape" && !list.hidden) {
            ev.preventDefault();
            close();
        } else if ((ev.key === "ArrowDown" || ev.key === "ArrowUp")
                   && found.length > 0) {
            ev.preventDefault();
            const step = ev.key === "ArrowDown" ? 1 : -1;
            mark((active + step + found.length + (active < 0 && step < 0
                                                  ? 1 : 0))
                 % found.length);
        } else if (ev.key === "Enter" && active >= 0 && !list.hidden) {
            ev.preventDefault();
            pickIt(found[active]);
        }
    });
    input.addEventListener("blur", () => setTimeout(close, 100));
    return list;
}


export async function viewGuichet() {
    const q = new URLSearchParams(location.hash.split("?")[1] || "");
    const fam = h("input", { type: "text", id: "gu-famille", required: true,
                             value: q.get("famille") || "",
                             autocomplete: "off", role: "combobox",
                             "aria-autocomplete": "list",
                             "aria-expanded": "false",
                             "aria-controls": "gu-suggestions" });
    const load = h("button", { class: "bouton second", type: "submit" },
                   "Afficher");
    const head = h("form", { class: "outils-periode" },
        h("div", { class: "combo" },
          field("Famille", fam, "Une partie de l'identifiant de connexion "
                + "ou le prénom d'un enfant, puis choisissez."),
          familySuggestions(fam, (f) => {
              location.hash = "#/guichet?famille="
                              + encodeURIComponent(f.login || f.id);
          })),
        h("div", { class: "champ" }, load));
    head.addEventListener("submit", (ev) => {
        ev.preventDefault();
        location.hash = "#/guichet?famille="
                        + encodeURIComponent(fam.value.trim());
    });
    const out = h("div", { id: "guichet" });
    page("Guichet : réservation sur place", h("p", {}, "Les places "
         + "réservées ici sont prises sur le quota du guichet, même quand "
         + "le quota en ligne est complet."), head, out);
    const asked = q.get("famille");
    if (!asked) {
        return;
    }
    out.replaceChildren(loading());
    /* the family's id, or its login as its page shows it */
    let fid = asked;
    let [rf, ra] = await Promise.all([
        get("/api/staff/families/" + encodeURIComponent(fid)),
        get("/api/activities")]);
    if (rf.status === 404) {
        const f = await findFamily(asked);
        if (f) {
            fid = f.id;
            rf = await get("/api/staff/families/" + encodeURIComponent(fid));
        }
    }
    if (!rf.ok) {
        out.replaceChildren(alertBox(rf.status === 404
            ? "Aucune famille « " + asked + " » : indiquez l'identifiant "
              + "de connexion de la famille, ou cherchez-la dans "
              + "« Familles »."
            : rf.error.message));
        return;
    }
    const kids = listOf(rf.data, "children");
    const acts = ra.ok ? listOf(ra.data, "activities") : [];
    const child = h("select", { id: "gu-enfant" }, kids.map((c) =>
        h("option", { value: c.id }, c.first_name)));
    const act = h("select", { id: "gu-activite" }, acts.map((a) =>
        h("option", { value: a.id }, a.name)));
    const day = h("input", { type: "date", id: "gu-date",
                             value: q.get("date") || F.todayParis() });
    const cells = h("div", { id: "gu-seances", "aria-live": "polite" });
    const res = h("div", { id: "gu-resultat", "aria-live": "polite" });
    const shown = new Map();     /* session id -> session */
    const show = async () => {
        res.replaceChildren();
        const s = await get("/api/activities/" + encodeURIComponent(act.value)
                            + "/sessions?from=" + day.value + "&to="
                            + day.value);
        const list = s.ok ? listOf(s.data, "sessions") : [];
        for (const x of list) {
            shown.set(x.id || x.session_id, x);
        }
        if (list.length === 0) {
            cells.replaceChildren(h("p", {}, "Aucune séance ce jour-là."));
            return;
        }
        cells.replaceChildren(h("fieldset", {},
            h("legend", {}, "Séances du " + F.dayLong(day.value)),
            h("div", { class: "choix" }, list.map((x) => {
                const sid = x.id || x.session_id;
                return h("label", {}, h("input", { type: "checkbox",
                                                   value: sid,
                                                   name: "seance" }),
                    labelOf(x) + " — en ligne : "
                    + (x.status === "full" || x.places_left === 0
                       ? "complet" : x.places_left + " place(s)"));
            }))),
            h("div", { class: "boutons" }, h("button", {
                class: "bouton", type: "button", id: "gu-reserver",
                onclick: book }, "Réserver sur place")));
    };
    let key = null;
    let lastBody = "";
    const book = async () => {
        const items = Array.from(cells.querySelectorAll(
            "input[name=seance]:checked")).map((b) => ({
                child_id: child.value, session_id: b.value }));
        if (items.length === 0) {
            res.replaceChildren(alertBox("Cochez au moins une séance."));
            return;
        }
        const body = { family_id: fid, items };
        if (JSON.stringify(body) !== lastBody || !key) {
            key = newKey();
            lastBody = JSON.stringify(body);
        }
        const btn = document.getElementById("gu-reserver");
        btn.disabled = true;
        const p = await post("/api/staff/bookings", body,
                             { "Idempotency-Key": key });
        btn.disabled = false;
        if (!p.ok) {
            if (p.status !== 503 && p.status !== 0) {
                key = null;
            }
            res.replaceChildren(alertBox(p.error.message));
            return;
        }
        key = null;
        const d = p.data;
        res.replaceChildren(h("div", { class: "carte" },
            h("p", {}, h("strong", {}, "Demande N° " + d.request_id)),
            h("ul", { class: "resultats" }, (d.items || []).map((it) => {
                const x = shown.get(it.session_id);
                return h("li", { dataset: { statut: it.status } },
                  (x ? F.dayLong(x.date) + ", " + labelOf(x)
                     : it.session_id) + " : ", it.status === "confirmed"
                  ? "Réservé au guichet (" + F.euros(it.price_cents) + ")"
                  : "Refusé : " + reasonText(it, F.instant));
            }))));
        announce("Réservation au guichet traitée.");
    };
    const pickForm = h("form", { class: "carte" },
        field("Enfant", child), field("Activité", act), field("Jour", day),
        h("div", { class: "boutons" }, h("button", { class: "bouton second",
                                                     type: "submit" },
                                         "Voir les séances")));
    pickForm.addEventListener("submit", (ev) => {
        ev.preventDefault();
        show();
    });
    out.replaceChildren(h("p", {}, "Famille : ",
                          familyName(rf.data.family || rf.data)),
                        pickForm, cells, res);
    if (q.get("date")) {
        show();
    }
}
