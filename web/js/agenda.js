/*
 * agenda.js -- "Mon agenda" (issue 24): the family's booked activities
 * week by week (GET /api/bookings of the week, the module), and the
 * private iCalendar address that a phone's calendar subscribes to
 * (/api/calendar, guichet-office): made, shown once, re-made, revoked.
 *
 * Route: #/agenda?semaine=YYYY-MM-DD (any day of the week; default this
 * week).
 */

import * as api from "./api.js";
import * as F from "./format.js";
import * as P from "./planning.js";
import { h, announce, alertBox } from "./dom.js";

export async function viewAgenda(ctx) {
    const q = new URLSearchParams(location.hash.split("?")[1] || "");
    const today = F.todayParis(api.serverNow());
    const day = /^\d{4}-\d\d-\d\d$/.test(q.get("semaine") || "")
        ? q.get("semaine") : today;
    const from = F.mondayOf(day);
    const to = F.addDays(from, 6);
    const go = (d) => { location.hash = "#/agenda?semaine=" + d; };

    const week = h("div", { id: "agenda-semaine", "aria-live": "polite" },
                   h("p", { class: "chargement" }, "Chargement…"));
    const feed = h("section", { id: "agenda-ical",
                                "aria-labelledby": "titre-ical" });
    ctx.page("Mon agenda",
        h("div", { class: "outils-periode" },
          h("div", { class: "boutons" },
            h("button", { class: "bouton second", type: "button",
                          onclick: () => go(F.addDays(from, -7)) },
              h("span", { "aria-hidden": "true" }, "‹ "),
              "Semaine précédente"),
            h("button", { class: "bouton second", type: "button",
                          onclick: () => go(today) }, "Cette semaine"),
            h("button", { class: "bouton second", type: "button",
                          onclick: () => go(F.addDays(from, 7)) },
              "Semaine suivante",
              h("span", { "aria-hidden": "true" }, " ›")))),
        h("h2", { id: "agenda-titre" }, "Semaine du " + F.dayLong(from)
                                        + " au " + F.dayLong(to)),
        week, feed);

    const r = await api.get("/api/bookings?from=" + from + "&to=" + to);
    if (r.status === 401) {
        return ctx.expired();
    }
    if (!r.ok) {
        week.replaceChildren(alertBox(r.error.message));
    } else {
        drawWeek(week, r.data && Array.isArray(r.data.bookings)
                       ? r.data.bookings : [], from);
    }
    await drawFeed(ctx, feed);
}

/* One block a day that has bookings, in the order of the day. */
function drawWeek(box, bookings, from) {
    const days = [];
    for (let i = 0; i < 7; i++) {
        const d = F.addDays(from, i);
        const list = bookings.filter((b) => b.date === d)
            .sort((a, b) => (a.starts_at || "").localeCompare(
                b.starts_at || "") || (a.first_name || "").localeCompare(
                b.first_name || ""));
        if (list.length) {
            days.push(h("li", { class: "agenda-jour", dataset: { date: d } },
                h("h3", {}, F.dayLong(d)),
                h("ul", {}, list.map((b) => h("li", {
                    dataset: { booking: b.booking_id } },
                    h("strong", {}, F.time(b.starts_at) + "–"
                                    + F.time(b.ends_at)),
                    " " + (b.first_name || b.child_id) + " — "
                    + (b.activity_name || b.activity_id) + " ("
                    + P.labelOf(b) + ")")))));
        }
    }
    const n = bookings.length;
    box.replaceChildren(n === 0
        ? h("p", {}, "Aucune activité réservée cette semaine.")
        : h("p", {}, n + " activité" + (n > 1 ? "s" : "") + " réservée"
                     + (n > 1 ? "s" : "") + " cette semaine."),
        h("ul", { class: "agenda" }, days));
}

/* The private calendar address: its state, make / re-make / revoke. */
async function drawFeed(ctx, box) {
    const title = h("h2", { id: "titre-ical" },
                    "Agenda sur votre téléphone");
    const intro = h("p", {}, "Une adresse privée permet à l'agenda de votre "
        + "téléphone (ou de votre messagerie) d'afficher vos réservations "
        + "et de les suivre. Ne la donnez qu'aux personnes de confiance : "
        + "qui la connaît voit les activités de vos enfants. Vous pouvez la "
        + "supprimer ou en créer une nouvelle à tout moment.");
    const msg = h("div", { id: "ical-message", "aria-live": "polite" });
    const r = await api.get("/api/calendar");
    if (r.status === 401) {
        return ctx.expired();
    }
    if (api.isMissing(r)) {
        box.replaceChildren(title, h("p", {}, "L'agenda partagé n'est pas "
                                              + "encore disponible."));
        return;
    }
    if (!r.ok) {
        box.replaceChildren(title, alertBox(r.error.message));
        return;
    }
    const active = !!(r.data && r.data.active);

    const make = async () => {
        const x = await api.post("/api/calendar");
        if (x.status === 401) {
            return ctx.expired();
        }
        if (!x.ok) {
            msg.replaceChildren(alertBox(x.error.message));
            return;
        }
        const url = location.origin + x.data.path;
        const field = h("input", { id: "ical-adresse", type: "text",
                                   readonly: true, value: url,
                                   class: "large" });
        await drawFeed(ctx, box);
        msg.replaceChildren(h("div", { class: "succes" },
            h("p", {}, h("strong", {}, "Votre adresse d'agenda : "),
              "copiez-la maintenant, elle ne sera plus affichée."),
            h("div", { class: "champ large" },
              h("label", { for: "ical-adresse" }, "Adresse de l'agenda"),
              field),
            h("p", {}, h("a", { id: "ical-abonner",
                                href: url.replace(/^https?:/, "webcal:") },
                         "S'abonner avec l'agenda de cet appareil"))));
        box.querySelector("#ical-message").replaceWith(msg);
        announce("Adresse d'agenda créée.");
        field.focus();
        field.select();
    };
    const revoke = async () => {
        const x = await api.del("/api/calendar");
        if (x.status === 401) {
            return ctx.expired();
        }
        if (!x.ok && x.status !== 404) {
            msg.replaceChildren(alertBox(x.error.message));
            return;
        }
        await drawFeed(ctx, box);
        box.querySelector("#ical-message").replaceWith(msg);
        msg.replaceChildren(alertBox("L'adresse est supprimée : les agendas "
                                     + "abonnés ne reçoivent plus vos "
                                     + "réservations.", "info"));
        announce("Adresse d'agenda supprimée.");
    };

    box.replaceChildren(title, intro,
        h("p", { id: "ical-etat" }, active
            ? "Une adresse d'agenda est active depuis le "
              + F.instant(r.data.created_at) + "."
            : "Vous n'avez pas d'adresse d'agenda."),
        h("div", { class: "boutons" },
          h("button", { class: "bouton", type: "button", id: "ical-creer",
                        onclick: make },
            active ? "Créer une nouvelle adresse (l'ancienne ne marchera "
                     + "plus)" : "Créer mon adresse d'agenda"),
          active ? h("button", { class: "bouton second", type: "button",
                                 id: "ical-supprimer", onclick: revoke },
                     "Supprimer l'adresse") : null),
        msg);
}
