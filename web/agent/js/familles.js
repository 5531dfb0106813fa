/*
 * familles.js -- the back office's "Familles" (#/familles, a family's file
 * #/familles?id=F): the list, 50 at a time, and one family's children,
 * enrolments, documents, planning and attendance; familyName() and
 * findFamily(), which the other views use.
 */

import * as F from "../../js/format.js";
import { h, announce, alertBox } from "../../js/dom.js";
import { docTypeName, field, listOf, pick, when } from "../../js/espace.js";
import { main, RANK, staff, get, post, missing, page, WORDS, tag, table,
         loading, notYet }
    from "./shell.js";

/* /api/staff/families answers a page of families (offset, limit) and the
 * total (docs/api.md): the list shows 50 at a time (issue 22) */
const FAMILIES_PAGE = 50;

/* A family in words: its name, else its login, never its internal id
 * unless that is all there is (f a family, or a row naming one). */
export function familyName(f) {
    return pick(f, "name", "family_name", "login", "family_login")
           || f.family_id || f.id || "—";
}

/* The family whose login or id is exactly "asked", or null. */
export async function findFamily(asked) {
    const rs = await get("/api/staff/families?limit=100&q="
                         + encodeURIComponent(asked));
    const same = (rs.ok ? listOf(rs.data, "families") : []).filter((f) =>
        f.login === asked || f.id === asked);
    return same.length === 1 ? same[0] : null;
}

export async function viewFamilles() {
    const q = new URLSearchParams(location.hash.split("?")[1] || "");
    if (q.get("id")) {
        return viewFamille(q.get("id"), q);
    }
    const search = h("input", { type: "search", id: "fam-recherche",
                                value: q.get("q") || "" });
    const form = h("form", { class: "outils-periode", role: "search" },
        field("Nom, identifiant ou enfant", search),
        h("div", { class: "champ" },
          h("button", { class: "bouton", type: "submit" }, "Rechercher")));
    form.addEventListener("submit", (ev) => {
        ev.preventDefault();
        location.hash = "#/familles?q=" + encodeURIComponent(search.value);
    });
    const out = h("div", { id: "familles" }, loading());
    page("Familles", h("p", {}, h("a", { href: "#/nouvelle-famille",
                                         class: "bouton second" },
                                  "Nouvelle famille")), form, out);
    const from = Math.max(0, Number.parseInt(q.get("depuis"), 10) || 0);
    const r = await get("/api/staff/families?limit=" + FAMILIES_PAGE
                        + "&offset=" + from + "&q="
                        + encodeURIComponent(q.get("q") || ""));
    if (missing(r)) {
        return notYet("Familles", "La recherche de familles");
    }
    if (!r.ok) {
        out.replaceChildren(alertBox(r.error.message));
        return;
    }
    const list = listOf(r.data, "families");
    const total = Number.isInteger(r.data.total) ? r.data.total
                                                 : from + list.length;
    const there = (at) => "#/familles?q=" + encodeURIComponent(q.get("q")
                                                               || "")
                          + (at > 0 ? "&depuis=" + at : "");
    const s = (n) => (n > 1 ? "s" : "");
    const count = h("p", { class: "discret", id: "fam-compte" },
        total <= list.length && from === 0
            ? total + " famille" + s(total)
            : list.length + " famille" + s(list.length) + " sur " + total
              + (list.length > 0 ? " (de la " + (from + 1) + "e à la "
                                   + (from + list.length) + "e)" : ""));
    const pager = total > FAMILIES_PAGE || from > 0
        ? h("div", { class: "boutons", id: "fam-pages" },
            from > 0
                ? h("a", { class: "bouton second", href: there(Math.max(0,
                           from - FAMILIES_PAGE)), rel: "prev" },
                    "← Précédentes")
                : null,
            from + list.length < total
                ? h("a", { class: "bouton second",
                           href: there(from + FAMILIES_PAGE), rel: "next" },
                    "Suivantes →")
                : null)
        : null;
    out.replaceChildren(list.length === 0 && from === 0
        ? h("p", {}, "Aucune famille trouvée.")
        : h("div", {}, count,
          list.length === 0 ? null : table("Familles", ["Famille",
                                           "Identifiant", "E-mail",
                                           "Enfants"],
            list.map((f) => h("tr", { dataset: { famille: f.id } },
                h("td", {}, h("a", { href: "#/familles?id="
                                     + encodeURIComponent(f.id) },
                              familyName(f))),
                h("td", {}, f.login || "—"),
                h("td", {}, f.email || "—"),
                h("td", {}, (f.children || []).map((c) =>
                    c.first_name || c).join(", "))))),
          pager));
}

/* The family page's planning period (any dates: the file holds every
 * booking). */
function periodForm(fid, from, to) {
    const du = h("input", { type: "date", id: "pf-du", value: from });
    const au = h("input", { type: "date", id: "pf-au", value: to });
    const form = h("form", { class: "outils-periode" },
        field("Du", du), field("Au", au),
        h("div", { class: "champ" }, h("button", { class: "bouton second",
                                                   type: "submit" },
                                       "Afficher")));
    form.addEventListener("submit", (ev) => {
        ev.preventDefault();
        location.hash = "#/familles?id=" + encodeURIComponent(fid)
                        + "&du=" + du.value + "&au=" + au.value;
    });
    return form;
}

const ATTENDANCE = [["present", "Présent"], ["absent", "Absent"],
                    ["absent_justifie", "Absence justifiée"]];

export async function viewFamille(fid, q) {
    const out = h("div", {}, loading());
    page("Famille", h("p", {}, h("a", { href: "#/familles" },
                                 "← Toutes les familles"), " · ",
                      h("a", { href: "#/dossier?id=" + encodeURIComponent(fid),
                               id: "lien-dossier" },
                        "Dossier : QF, entourage, enfants, inscriptions")),
         out);
    const today = F.todayParis();
    const from = q.get("du") || F.addDays(today, -7);
    const to = q.get("au") || F.addDays(today, 60);
    const [rf, ra] = await Promise.all([
        get("/api/staff/families/" + encodeURIComponent(fid)),
        get("/api/activities")]);
    const acts = new Map((ra.ok ? listOf(ra.data, "activities") : [])
        .map((a) => [a.id, a.name]));
    const actName = (aid) => acts.get(aid) || aid;
    if (!rf.ok) {
        out.replaceChildren(alertBox(rf.error.message));
        return;
    }
    const f = rf.data.family || rf.data;
    const kids = listOf(rf.data, "children");
    const enrol = listOf(rf.data, "enrolments");
    const docs = listOf(rf.data, "documents");
    const name = (cid) => {
        const c = kids.find((x) => x.id === cid);
        return c ? c.first_name : cid;
    };
    document.title = (pick(f, "name", "login") || fid) + " – Guichet agent";
    main.querySelector("h1").textContent = "Famille "
        + (pick(f, "name", "login") || fid);

    const blocks = [
        h("p", {}, "Identifiant : ", f.login || fid,
          f.qf !== undefined ? " · QF " + f.qf : "",
          f.direct_debit ? " · prélèvement automatique" : ""),
        h("p", { class: "boutons" }, h("a", { class: "bouton second",
                            href: "#/guichet?famille="
                                  + encodeURIComponent(fid) },
                      "Réserver au guichet pour cette famille"),
          RANK[staff.role] >= RANK.admin
              ? h("a", { class: "bouton second", href: "#/journal?famille="
                                                   + encodeURIComponent(fid) },
                  "Journal de cette famille") : null),
        h("h2", {}, "Enfants"),
        h("ul", {}, kids.map((c) => h("li", {}, c.first_name,
            c.birth_date ? " — né(e) le " + F.dayYear(c.birth_date) : ""))),
        h("h2", {}, "Inscriptions"),
        enrol.length === 0 ? h("p", {}, "Aucune inscription.")
        : table("Inscriptions", ["Enfant", "Activité", "Période", "Statut"],
            enrol.map((e) => h("tr", {},
                h("td", {}, name(e.child_id)),
                h("td", {}, pick(e, "activity_name")
                            || actName(e.activity_id)),
                h("td", {}, "du " + when(e.from) + " au " + when(e.to)),
                h("td", {}, tag(e.status)))), null, true),
        h("h2", {}, "Documents"),
        docs.length === 0 ? h("p", {}, "Aucun document.")
        : table("Documents", ["Type", "Enfant", "Statut", "Validité"],
            docs.map((d) => h("tr", {},
                h("td", {}, docTypeName(d.type)),
                h("td", {}, d.child_id ? name(d.child_id) : "Famille"),
                h("td", {}, tag(d.status)),
                h("td", {}, d.valid_to ? "jusqu'au " + when(d.valid_to)
                                       : "—"))), null, true),
        h("h2", {}, "Planning du " + F.dayYear(from) + " au "
                    + F.dayYear(to)),
        periodForm(fid, from, to),
    ];
    const bookings = listOf(rf.data, "bookings")
        .filter((b) => b.status !== "cancelled" && b.date >= from
                       && b.date <= to);
    const mark = async (b, st, cell) => {
        const p = await post("/api/staff/attendance",
                             { booking_id: b.booking_id, status: st });
        if (!p.ok) {
            cell.replaceChildren(alertBox(p.error.message));
            return;
        }
        b.attendance = st;
        cell.replaceChildren(tag(st));
        announce("Présence enregistrée : " + WORDS[st]);
    };
    blocks.push(bookings.length === 0
        ? h("p", {}, "Aucune réservation sur la période.")
        : table("Planning", ["Enfant", "Date", "Activité", "Séance",
                             "Présence", "Actions"],
            bookings.map((b) => {
                b.booking_id = b.booking_id || b.id;
                const cell = h("td", {}, b.attendance ? tag(b.attendance)
                    : b.justified ? tag("justified") : "—");
                const what = name(b.child_id) + ", " + F.dayYear(b.date)
                             + " " + (b.label || b.unit);
                const row = h("tr", { dataset: { booking: b.booking_id } },
                    h("td", {}, b.first_name || name(b.child_id)),
                    h("td", {}, F.dayShort(b.date) + " "
                                + b.date.slice(0, 4)),
                    h("td", {}, b.activity_name || actName(b.activity_id)),
                    h("td", {}, b.label || b.unit,
                      b.channel === "onsite" ? " (guichet)" : ""),
                    cell,
                    h("td", {}, h("div", { class: "boutons" },
                        ATTENDANCE.map(([st, label]) =>
                            h("button", { class: "bouton second petit",
                                          type: "button",
                                          "aria-label": label + " : " + what,
                                          onclick: () => mark(b, st,
                                                              cell) },
                              label)))));
                return row;
            }), { id: "planning-famille" }, true));
    out.replaceChildren(...blocks);
}
