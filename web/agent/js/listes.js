/*
 * listes.js -- the daily lists of the back office (issue 26): per
 * session of a day, the children booked with their allergies and the
 * people who may pick them up, attendance ticked with big buttons (a
 * tablet at the door), the list as PDF to print, the week's meal counts
 * for the kitchen, and (régie) the month's CAF hours as CSV.  Routes of
 * office/daily.c and POST /api/staff/attendance, docs/api.md.
 *
 * agent.js gives the frame (ctx: call, page, table, loading, rank,
 * flash, route, token).
 */

import * as F from "../../js/format.js";
import { h, alertBox, announce, cards } from "../../js/dom.js";
import { field } from "../../js/espace.js";

const PRESENCE = [["present", "Présent"], ["absent", "Absent"],
                  ["absent_justifie", "Absence justifiée"]];

/* GET path with the staff's token, saved as name (a PDF opens). */
async function download(ctx, path, name, out) {
    const r = await fetch(path, { headers: { Authorization: "Bearer "
                                             + ctx.token() },
                                  credentials: "omit", cache: "no-store" });
    if (!r.ok) {
        out.replaceChildren(alertBox("Le fichier n'a pas pu être fait ("
                                     + r.status + ")."));
        return;
    }
    const url = URL.createObjectURL(await r.blob());
    const a = h("a", { href: url, download: name, class: "lien-fichier" },
                "Enregistrer " + name);
    out.replaceChildren(h("div", { class: "succes", role: "status" },
                          "Fichier prêt : ", a));
    a.click();
}

function age(birth, day) {
    const [y, m, d] = birth.split("-").map(Number);
    const [Y, M, D] = day.split("-").map(Number);
    return Y - y - (M < m || (M === m && D < d) ? 1 : 0);
}

function childRow(ctx, s, c, day) {
    const state = h("span", { class: "presence-etat" },
                    c.attendance ? (PRESENCE.find((p) => p[0]
                                    === c.attendance) || [0, ""])[1] : "—");
    const buttons = PRESENCE.slice(0, 2).map(([v, w]) => {
        const b = h("button", { type: "button", class: "bouton petit"
                                + (c.attendance === v ? "" : " second"),
                                "aria-pressed": String(c.attendance === v),
                                "aria-label": w + " : " + c.first_name },
                    w);
        b.addEventListener("click", async () => {
            const r = await ctx.call("POST", "/api/staff/attendance",
                                     { booking_id: c.booking_id,
                                       status: v });
            if (!r.ok) {
                announce(r.error.message);
                state.textContent = r.error.message;
                return;
            }
            c.attendance = v;
            state.textContent = w;
            for (const x of b.parentNode.children) {
                const on = x === b;
                x.setAttribute("aria-pressed", String(on));
                x.classList.toggle("second", !on);
            }
            announce(c.first_name + " : " + w);
        });
        return b;
    });
    return h("tr", { dataset: { enfant: c.child_id } },
        h("th", { scope: "row" }, c.first_name),
        h("td", {}, age(c.birth_date, day) + " ans"),
        h("td", { class: c.allergies ? "allergie" : "" },
          c.allergies || "—"),
        h("td", {}, c.pick_up.length === 0 ? "—"
          : c.pick_up.map((p) => p.name + (p.relation ? " ("
                                             + p.relation + ")" : "")
                                 + (p.phone ? " " + p.phone : ""))
              .join(" ; ")),
        h("td", {}, h("div", { class: "boutons" }, buttons), state));
}

export async function viewListes(ctx) {
    const q = new URLSearchParams(location.hash.split("?")[1] || "");
    const day = q.get("date") || F.todayParis();
    const aid = q.get("activite") || "";
    const date = h("input", { type: "date", id: "liste-date", value: day });
    const act = h("select", { id: "liste-activite" },
                  h("option", { value: "" }, "Toutes les activités"));
    const form = h("form", { class: "outils-periode" },
        field("Jour", date), field("Activité", act),
        h("div", { class: "champ" }, h("button", { class: "bouton",
                                                  type: "submit" },
                                         "Afficher")));
    form.addEventListener("submit", (ev) => {
        ev.preventDefault();
        location.hash = "#/listes?date=" + date.value
                        + (act.value ? "&activite="
                                       + encodeURIComponent(act.value) : "");
    });
    const files = h("div", { "aria-live": "polite" });
    const pdf = h("button", { type: "button", class: "bouton second",
                              id: "liste-pdf" }, "Imprimer la liste (PDF)");
    const qs = "date=" + day + (aid ? "&activity_id="
                                      + encodeURIComponent(aid) : "");
    pdf.addEventListener("click", () => download(ctx,
        "/api/staff/daily.pdf?" + qs, "liste-" + day + ".pdf", files));
    const out = h("div", { id: "listes" }, ctx.loading());
    const meals = h("div", { id: "repas" }, ctx.loading());
    const month = h("input", { type: "month", id: "caf-mois",
                               value: day.slice(0, 7) });
    const caf = h("button", { type: "button", class: "bouton second",
                              id: "caf-export" },
                  "Télécharger les heures CAF (CSV)");
    caf.addEventListener("click", () => download(ctx,
        "/api/staff/exports/caf?month=" + month.value,
        "guichet-caf-" + month.value + ".csv", files));
    ctx.page("Listes du jour", form,
             h("div", { class: "boutons" }, pdf), files, out,
             h("h2", {}, "Repas de la semaine"), meals,
             ctx.rank >= 2 ? h("h2", {}, "Statistiques CAF") : null,
             ctx.rank >= 2 ? h("div", { class: "outils-periode" },
                               field("Mois", month),
                               h("div", { class: "champ" }, caf)) : null);

    const [ra, rd, rm] = await Promise.all([
        ctx.call("GET", "/api/staff/activities"),
        ctx.call("GET", "/api/staff/daily?" + qs),
        ctx.call("GET", "/api/staff/meals?from=" + day + "&to="
                        + F.addDays(day, 6))]);
    for (const a of ra.ok ? ra.data.activities : []) {
        act.appendChild(h("option", { value: a.id, selected: a.id === aid },
                          a.name));
    }
    if (!rd.ok) {
        out.replaceChildren(alertBox(rd.error.message));
    } else if (rd.data.sessions.length === 0) {
        out.replaceChildren(h("p", {}, "Aucune séance le "
                                      + F.dayLong(day) + "."));
    } else {
        out.replaceChildren(...rd.data.sessions.map((s) => h("section", {
                class: "carte", dataset: { seance: s.id } },
            h("h2", {}, s.activity + " – " + (s.label || s.unit_label)),
            h("p", {}, F.dayLong(day) + " · " + s.children.length
              + " enfant(s) sur " + s.places + " places"),
            s.children.length === 0 ? h("p", {}, "Aucun enfant inscrit.")
            : cards(ctx.table(s.activity + " – " + (s.label
                                                    || s.unit_label),
                ["Enfant", "Âge", "Allergies", "Peut venir le chercher",
                 "Présence"],
                s.children.map((c) => childRow(ctx, s, c, day)),
                null, true)))));
    }
    meals.replaceChildren(!rm.ok ? alertBox(rm.error.message)
        : rm.data.days.length === 0 ? h("p", {}, "Aucun repas réservé.")
        : cards(ctx.table("Repas réservés par jour",
            ["Jour", "Repas", "Allergies"],
            rm.data.days.map((d) => h("tr", {},
                h("th", { scope: "row" }, F.dayLong(d.date)),
                h("td", {}, String(d.count)),
                h("td", {}, d.allergies.length === 0 ? "—"
                  : d.allergies.map((x) => x.first_name + " : "
                                           + x.allergies).join(" ; ")))))));
}
