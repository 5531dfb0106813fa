/*
 * activites.js -- the back office's activities and sessions (issue 26):
 * #/activites lists the town's activities; the régie creates one (its
 * prices, opening, deadline, online share), #/activites?id=A shows its
 * sessions with their live counters, changes its settings, generates
 * sessions from a calendar (weekdays, units, closed periods: school
 * holidays and closed days) and changes one session's places.
 * Routes of office/activity.c, docs/api.md (*Back office*).
 *
 * agent.js gives the frame (ctx: call, page, table, loading, staff rank).
 */

import * as F from "../../js/format.js";
import { h, announce, alertBox, cards } from "../../js/dom.js";
import { field } from "../../js/espace.js";

const DAYS = ["Lundi", "Mardi", "Mercredi", "Jeudi", "Vendredi", "Samedi",
              "Dimanche"];

/* "2026-06-01" + "18:00" in Europe/Paris as RFC 3339 with its offset. */
function parisInstant(day, time) {
    for (const off of ["+01:00", "+02:00"]) {
        const d = new Date(day + "T" + time + ":00" + off);
        const seen = new Intl.DateTimeFormat("fr-FR", {
            timeZone: "Europe/Paris", hour: "2-digit", minute: "2-digit",
            hourCycle: "h23" }).format(d);
        if (seen === time) {
            return day + "T" + time + ":00" + off;
        }
    }
    return day + "T" + time + ":00+01:00";
}

/* The Paris day and time of an RFC 3339 instant, or ["", ""]. */
function parisParts(iso) {
    if (!iso) {
        return ["", ""];
    }
    const d = new Date(iso);
    const day = F.todayParis(d.getTime());
    const time = new Intl.DateTimeFormat("fr-FR", {
        timeZone: "Europe/Paris", hour: "2-digit", minute: "2-digit",
        hourCycle: "h23" }).format(d);
    return [day, time];
}

const euros = (cents) => (cents / 100).toFixed(2).replace(".", ",");

function cents(text) {
    const v = Number(String(text).trim().replace(",", "."));
    return Number.isFinite(v) && v >= 0 ? Math.round(v * 100) : NaN;
}

/* ---------------------------------------------------------------- */
/* the activity's form (create, or change its settings) */

function activityForm(ctx, act, done) {
    const editing = !!act;
    const a = act || {};
    const [openDay, openTime] = parisParts(a.booking_opens_at);
    const [relDay, relTime] = parisParts(a.release_onsite_at);
    const inp = (name, attrs) => h("input", Object.assign({
        id: "ac-" + name, name, type: "text" }, attrs));
    const ident = inp("id", { value: a.id || "", required: true,
                              pattern: "[A-Za-z0-9_.\\-]{1,64}",
                              readonly: editing,
                              autocomplete: "off" });
    const name = inp("nom", { value: a.name || "", required: true,
                              maxlength: "200" });
    const site = inp("site", { value: a.site || "", maxlength: "200" });
    const ageMin = inp("age-min", { type: "number", min: "0", max: "120",
                                    value: a.age_min ?? 3 });
    const ageMax = inp("age-max", { type: "number", min: "0", max: "120",
                                    value: a.age_max ?? 12 });
    const od = inp("ouverture-jour", { type: "date", value: openDay });
    const ot = inp("ouverture-heure", { type: "time",
                                        value: openTime || "18:00" });
    const dl = a.deadline || {};
    const wd = inp("delai", { type: "number", min: "0", max: "60",
                              value: dl.working_days ?? 2 });
    const share = inp("part", { type: "number", min: "0", max: "100",
                                value: a.online_share_percent ?? 50 });
    const hold = inp("offre-heures", {
        type: "number", min: "1", max: "720",
        value: a.waitlist && a.waitlist.mode === "offer"
               ? a.waitlist.hold_hours : "" });
    const rd = inp("liberation-jour", { type: "date", value: relDay });
    const rt = inp("liberation-heure", { type: "time",
                                         value: relTime || "09:00" });
    const bands = (a.prices && a.prices.length ? a.prices
                   : [{ qf_max: 500, cents: 300 },
                      { qf_max: null, cents: 900 }]);
    const rows = h("tbody");
    const addBand = (b) => {
        const n = rows.children.length + 1;
        rows.appendChild(h("tr", {},
            h("td", {}, h("input", {
                type: "number", min: "0", max: "1000000",
                value: b.qf_max ?? "", class: "qf",
                "aria-label": "Tranche " + n + " : QF jusqu'à (vide : "
                              + "au-delà)" })),
            h("td", {}, h("input", {
                type: "text", inputmode: "decimal", value: euros(b.cents),
                class: "prix",
                "aria-label": "Tranche " + n + " : prix en euros" }))));
    };
    bands.forEach(addBand);
    const nr = a.non_resident_prices && a.non_resident_prices.length
        ? euros(a.non_resident_prices[a.non_resident_prices.length - 1]
                .cents) : "";
    const nonRes = inp("non-residents", { inputmode: "decimal", value: nr });
    const msg = h("div", { "aria-live": "polite" });
    const form = h("form", { class: "carte", id: editing ? "ac-modifier"
                                                      : "ac-creer" },
        h("h2", {}, editing ? "Modifier les réglages" : "Créer une activité"),
        field("Identifiant", ident, editing ? "Il ne change pas."
              : "Lettres, chiffres, « - », « _ » ou « . » ; il entre dans "
                + "l'identifiant des séances (ex. mercredi-20270901-MATIN)."),
        field("Nom", name), field("Lieu", site),
        field("Âge minimum", ageMin), field("Âge maximum", ageMax),
        field("Ouverture des réservations (jour)", od,
              "Vide : les réservations sont ouvertes."),
        field("Ouverture des réservations (heure)", ot),
        field("Délai de réservation (jours ouvrés avant la séance)", wd),
        field("Part des places réservable en ligne (%)", share,
              "Le reste est réservé au guichet."),
        field("Places du guichet mises en ligne le (jour)", rd,
              "Vide : jamais."),
        field("Places du guichet mises en ligne à (heure)", rt),
        field("Liste d'attente : place libérée proposée pendant (heures)",
              hold, "Vide : réservée aussitôt pour le premier enfant de "
                    + "la liste. Sinon elle lui est proposée ce nombre "
                    + "d'heures (1 à 720), puis au suivant."),
        h("fieldset", {}, h("legend", {}, "Tarifs par tranche de quotient "
                                         + "familial (QF)"),
          h("div", { class: "tableau-defilant" }, h("table", {},
            h("caption", { class: "visually-hidden" }, "Tranches"),
            h("thead", {}, h("tr", {},
                h("th", { scope: "col" }, "QF jusqu'à"),
                h("th", { scope: "col" }, "Prix (€)"))),
            rows)),
          h("div", { class: "boutons" }, h("button", {
              type: "button", class: "bouton second petit",
              onclick: () => addBand({ qf_max: null, cents: 0 }) },
              "Ajouter une tranche"))),
        field("Prix pour les non-résidents (€)", nonRes,
              "Vide : le tarif des résidents."),
        msg,
        h("div", { class: "boutons" }, h("button", {
            type: "submit", class: "bouton" },
            editing ? "Enregistrer les réglages" : "Créer l'activité")));

    form.addEventListener("submit", async (ev) => {
        ev.preventDefault();
        const prices = [...rows.children].map((tr) => ({
            qf_max: tr.querySelector(".qf").value === "" ? null
                    : Number(tr.querySelector(".qf").value),
            cents: cents(tr.querySelector(".prix").value) }));
        if (prices.some((p) => Number.isNaN(p.cents))) {
            msg.replaceChildren(alertBox("Un prix n'est pas un montant "
                                         + "en euros."));
            return;
        }
        const body = {
            id: ident.value.trim(), name: name.value.trim(),
            site: site.value.trim() || null,
            age_min: Number(ageMin.value), age_max: Number(ageMax.value),
            booking_opens_at: od.value ? parisInstant(od.value, ot.value)
                                       : null,
            deadline: { working_days: Number(wd.value) },
            online_share_percent: Number(share.value),
            prices,
        };
        if (rd.value) {
            body.release_onsite_at = parisInstant(rd.value, rt.value);
        }
        if (hold.value !== "") {
            body.waitlist = { mode: "offer",
                              hold_hours: Number(hold.value) };
        }
        if (nonRes.value.trim() !== "") {
            body.non_resident_prices = [{ qf_max: null,
                                          cents: cents(nonRes.value) }];
        }
        for (const k of ["cancel_deadline", "week_required",
                         "required_documents", "blocks_unpaid_invoices",
                         "unit_requires"]) {
            if (editing && a[k] !== undefined) {
                body[k] = a[k];             /* kept as they are */
            }
        }
        const r = editing
            ? await ctx.call("PUT", "/api/staff/activities/"
                             + encodeURIComponent(a.id), body)
            : await ctx.call("POST", "/api/staff/activities", body);
        if (!r.ok) {
            msg.replaceChildren(alertBox(r.error.message));
            return;
        }
        done(r.data, editing ? "Réglages enregistrés."
                             : "Activité « " + body.name + " » créée.");
    });
    return form;
}

/* ---------------------------------------------------------------- */
/* #/activites */

export async function viewActivites(ctx) {
    const q = new URLSearchParams(location.hash.split("?")[1] || "");
    if (q.get("id")) {
        return viewActivite(ctx, q.get("id"));
    }
    const out = h("div", { id: "activites" }, ctx.loading());
    ctx.page("Activités", out);
    const r = await ctx.call("GET", "/api/staff/activities");
    if (!r.ok) {
        out.replaceChildren(alertBox(r.error.message));
        return;
    }
    const list = r.data.activities || [];
    out.replaceChildren(
        list.length === 0 ? h("p", {}, "Aucune activité.")
        : cards(ctx.table("Activités de la commune",
            ["Activité", "Lieu", "Séances", "Première", "Dernière"],
            list.map((a) => h("tr", { dataset: { activite: a.id } },
                h("td", {}, h("a", { href: "#/activites?id="
                                     + encodeURIComponent(a.id) }, a.name)),
                h("td", {}, a.site || "—"),
                h("td", {}, String(a.sessions)),
                h("td", {}, a.first ? F.dayNum(a.first) : "—"),
                h("td", {}, a.last ? F.dayNum(a.last) : "—"))))),
        ctx.rank >= 2 ? activityForm(ctx, null, (data, text) => {
            ctx.flash({ kind: "succes", text });
            location.hash = "#/activites?id="
                            + encodeURIComponent(data.activity.id);
        }) : h("p", { class: "discret" }, "La création et les réglages "
                                          + "des activités sont faits par "
                                          + "la régie."));
}

/* ---------------------------------------------------------------- */
/* #/activites?id=A */

function generateForm(ctx, aid, units, done) {
    const today = F.todayParis();
    const from = h("input", { type: "date", id: "gen-du", required: true,
                              value: today });
    const to = h("input", { type: "date", id: "gen-au", required: true });
    const places = h("input", { type: "number", id: "gen-places", min: "0",
                                max: "100000", value: "24",
                                required: true });
    const days = DAYS.map((d, i) => h("label", {},
        h("input", { type: "checkbox", value: String(i + 1),
                     name: "jours", checked: i === 2 }), " " + d));
    const us = units.map((u, i) => h("label", {},
        h("input", { type: "checkbox", value: u.code, name: "unites",
                     checked: i === 0 }), " " + (u.label || u.code)));
    const closed = h("textarea", { id: "gen-fermetures", rows: "4" });
    const msg = h("div", { "aria-live": "polite" });
    const form = h("form", { class: "carte", id: "gen" },
        h("h2", {}, "Créer des séances d'après un calendrier"),
        field("Du", from), field("Au", to),
        h("fieldset", {}, h("legend", {}, "Jours de la semaine"),
          h("div", { class: "choix" }, days)),
        h("fieldset", {}, h("legend", {}, "Unités"),
          h("div", { class: "choix" }, us)),
        field("Places par séance", places),
        field("Périodes fermées", closed, "Vacances scolaires et jours de "
              + "fermeture, une par ligne : « 2027-10-16 2027-11-01 » ou "
              + "un seul jour « 2027-09-15 ».  Les jours fériés sont "
              + "toujours exclus ; une séance qui existe déjà est gardée."),
        msg,
        h("div", { class: "boutons" }, h("button", { type: "submit",
                                                    class: "bouton" },
                                         "Créer les séances")));
    form.addEventListener("submit", async (ev) => {
        ev.preventDefault();
        const periods = [];
        for (const line of closed.value.split("\n")) {
            const m = line.trim().match(/^(\d{4}-\d\d-\d\d)(?:\s+(?:au\s+)?(\d{4}-\d\d-\d\d))?$/);
            if (line.trim() === "") {
                continue;
            }
            if (!m) {
                msg.replaceChildren(alertBox("Période fermée illisible : « "
                    + line.trim() + " » (AAAA-MM-JJ AAAA-MM-JJ)."));
                return;
            }
            periods.push({ from: m[1], to: m[2] || m[1] });
        }
        const body = {
            from: from.value, to: to.value,
            weekdays: days.map((l) => l.firstChild)
                .filter((c) => c.checked).map((c) => Number(c.value)),
            units: us.map((l) => l.firstChild).filter((c) => c.checked)
                .map((c) => c.value),
            places: Number(places.value), closed: periods,
        };
        if (!body.weekdays.length || !body.units.length) {
            msg.replaceChildren(alertBox("Cochez au moins un jour et une "
                                         + "unité."));
            return;
        }
        const r = await ctx.call("POST", "/api/staff/activities/"
                                 + encodeURIComponent(aid) + "/sessions",
                                 body);
        if (!r.ok) {
            msg.replaceChildren(alertBox(r.error.message));
            return;
        }
        done(r.data, r.data.created + " séance(s) créée(s).");
    });
    return form;
}

/* A session's waiting list (issue 23), in the order the worker promotes. */
async function showWaitlist(ctx, s, label, box, said) {
    const r = await ctx.call("GET", "/api/staff/sessions/"
                             + encodeURIComponent(s.id) + "/waitlist");
    if (!r.ok) {
        box.replaceChildren(alertBox(r.error.message));
        return;
    }
    const list = r.data.waitlist || [];
    const msg = h("div", { "aria-live": "polite" });
    /* move a child (up, down) or remove it: audited (waitlist.move) */
    const change = async (w, method, body, text) => {
        const x = await ctx.call(method, "/api/staff/sessions/"
                                 + encodeURIComponent(s.id) + "/waitlist/"
                                 + encodeURIComponent(w.child_id), body);
        await showWaitlist(ctx, s, label, box, x.ok ? text
                                                    : x.error.message);
    };
    const act = (w, word, aria, method, body, text, cls) =>
        h("button", { type: "button", class: cls || "bouton second petit",
                      "aria-label": aria + " : "
                                    + (w.first_name || w.child_id),
                      onclick: () => change(w, method, body, text) }, word);
    const offers = r.data.offers || [];
    box.replaceChildren(h("h2", { id: "titre-attente", tabindex: "-1" },
                          "Liste d'attente du " + label),
        msg,
        offers.length === 0 ? null
        : h("ul", { class: "offres" }, offers.map((o) =>
            h("li", { dataset: { child: o.child_id } },
              "Place proposée à " + (o.first_name || o.child_id)
              + " (famille ",
              h("a", { href: "#/familles?id="
                                  + encodeURIComponent(o.family_id) },
                o.family_id),
              ") jusqu'au " + F.instant(o.offer_until)))),
        list.length === 0 ? h("p", {}, "Personne sur la liste d'attente.")
        : h("ol", { class: "liste-attente" }, list.map((w, i) =>
            h("li", { dataset: { child: w.child_id } },
              (w.first_name || w.child_id) + " (famille ",
              h("a", { href: "#/familles?id="
                                  + encodeURIComponent(w.family_id) },
                w.family_id),
              "), inscrit le " + F.instant(w.joined_at) + " ",
              i > 0 ? act(w, "Monter", "Monter d'une place", "POST",
                          { move: "up" }, (w.first_name || w.child_id)
                          + " monte à la place " + i + ".") : null,
              i < list.length - 1
                  ? act(w, "Descendre", "Descendre d'une place", "POST",
                        { move: "down" }, (w.first_name || w.child_id)
                        + " descend à la place " + (i + 2) + ".") : null,
              act(w, "Retirer", "Retirer de la liste", "DELETE", undefined,
                  (w.first_name || w.child_id) + " est retiré de la liste.",
                  "bouton danger petit")))),
        h("p", { class: "discret" },
          "Dès qu'une place se libère, le premier enfant qui remplit encore "
          + "les conditions est réservé automatiquement (ou la place lui "
          + "est proposée, selon l'activité) ; les autres quittent la "
          + "liste avec le motif dans leurs demandes.  Chaque changement "
          + "d'ordre est inscrit au journal."));
    if (said) {
        msg.replaceChildren(h("p", { role: "status" }, said));
    }
    box.querySelector("#titre-attente").focus();
}

function sessionRows(ctx, aid, sessions, unitLabel, out, wl) {
    return sessions.map((s) => {
        const label = F.dayLong(s.date) + " (" + unitLabel(s.unit) + ")";
        const left = (v) => v === null || v === undefined ? "—" : String(v);
        let cell = h("td", {}, String(s.places));
        let work = h("td", {}, s.label || "—");
        if (ctx.rank >= 2) {
            const lab = h("input", { type: "text", value: s.label || "",
                                     maxlength: "200", class: "atelier",
                                     form: "f-" + s.id,
                                     "aria-label": "Atelier du " + label });
            work = h("td", {}, lab);
            const input = h("input", { type: "number", min: "0",
                                       max: "100000", value: s.places,
                                       class: "places",
                                       "aria-label": "Places du " + label });
            const save = h("button", { type: "submit",
                                       class: "bouton petit" },
                           "Enregistrer");
            const f = h("form", { class: "boutons", id: "f-" + s.id },
                        input, save);
            f.addEventListener("submit", async (ev) => {
                ev.preventDefault();
                const r = await ctx.call("PUT", "/api/staff/sessions/"
                                         + encodeURIComponent(s.id),
                                         { places: Number(input.value),
                                           label: lab.value.trim()
                                                  || null });
                if (!r.ok) {
                    out.replaceChildren(alertBox(r.error.message));
                    input.focus();
                    return;
                }
                announce("Places enregistrées : " + label);
                ctx.flash({ kind: "succes", text: "Séance du " + label
                            + " : " + input.value + " places." });
                ctx.route();
            });
            cell = h("td", {}, f);
        }
        return h("tr", { dataset: { seance: s.id } },
            h("th", { scope: "row" }, F.dayNum(s.date) + " "
              + unitLabel(s.unit)),
            work,
            cell,
            h("td", {}, String(s.places_online)),
            h("td", { class: "en-ligne-restant" }, left(s.online_left)),
            h("td", { class: "guichet-restant" }, left(s.onsite_left)),
            h("td", {}, String(s.booked)),
            h("td", {}, h("button", { type: "button",
                                      class: "bouton second petit",
                                      "aria-label": "Liste d'attente du "
                                                    + label,
                                      onclick: () => showWaitlist(
                                          ctx, s, label, wl) },
                          "Voir")));
    });
}

/* « Écrire aux familles » (agents): a thread to every family enrolled. */
function messageForm(ctx, aid, done) {
    const service = h("select", { id: "msg-service" },
        [["enfance", "Enfance"], ["scolaire", "Scolaire"],
         ["regie", "Régie"]].map(([v, w]) => h("option", { value: v }, w)));
    const subject = h("input", { type: "text", id: "msg-objet",
                                 maxlength: "200", required: true });
    const body = h("textarea", { id: "msg-texte", rows: "4",
                                 required: true });
    const msg = h("div", { "aria-live": "polite" });
    const form = h("form", { class: "carte", id: "msg-familles" },
        h("h2", {}, "Écrire aux familles inscrites"),
        field("Service", service), field("Objet", subject),
        field("Message", body, "Chaque famille inscrite le reçoit dans "
              + "sa messagerie, avec un e-mail."),
        msg, h("div", { class: "boutons" }, h("button", {
            type: "submit", class: "bouton" }, "Envoyer")));
    form.addEventListener("submit", async (ev) => {
        ev.preventDefault();
        const r = await ctx.call("POST", "/api/staff/threads", {
            activity_id: aid, service: service.value,
            subject: subject.value.trim(), body: body.value.trim() });
        if (!r.ok) {
            msg.replaceChildren(alertBox(r.error.message));
            return;
        }
        done(r.data, "Message envoyé à " + r.data.threads
                     + " famille(s).");
    });
    return form;
}

const KINDS = [["opening", "Ouverture des réservations"],
               ["deadline", "Date limite de réservation"],
               ["custom", "Texte libre"]];

/* « Rappels » (régie): e-mails scheduled for the activity's families. */
function reminders(ctx, aid, list, done) {
    const kind = h("select", { id: "rap-type" },
        KINDS.map(([v, w]) => h("option", { value: v }, w)));
    const day = h("input", { type: "date", id: "rap-jour",
                             required: true });
    const time = h("input", { type: "time", id: "rap-heure",
                              value: "09:00", required: true });
    const subject = h("input", { type: "text", id: "rap-objet",
                                 maxlength: "200" });
    const body = h("textarea", { id: "rap-texte", rows: "3" });
    const msg = h("div", { "aria-live": "polite" });
    const form = h("form", { id: "rappel" },
        field("Rappel", kind), field("Envoyé le", day),
        field("À", time),
        field("Objet", subject, "Vide : le texte du rappel (sauf texte "
              + "libre)."),
        field("Message", body), msg,
        h("div", { class: "boutons" }, h("button", {
            type: "submit", class: "bouton" }, "Programmer le rappel")));
    form.addEventListener("submit", async (ev) => {
        ev.preventDefault();
        const b = { kind: kind.value, activity_id: aid,
                    send_at: parisInstant(day.value, time.value) };
        if (subject.value.trim()) {
            b.subject = subject.value.trim();
        }
        if (body.value.trim()) {
            b.body = body.value.trim();
        }
        const r = await ctx.call("POST", "/api/staff/reminders", b);
        if (!r.ok) {
            msg.replaceChildren(alertBox(r.error.message));
            return;
        }
        done(r.data, "Rappel programmé pour " + r.data.families
                     + " famille(s).");
    });
    const mine = list.filter((x) => x.activity_id === aid);
    const rows = mine.map((x) => {
        const cancel = x.cancelled_at
                       || new Date(x.send_at).getTime() <= Date.now() ? null
            : h("button", { type: "button", class: "bouton petit danger",
                            "aria-label": "Annuler le rappel « "
                                          + x.subject + " »" },
                "Annuler");
        cancel?.addEventListener("click", async () => {
            const r = await ctx.call("DELETE", "/api/staff/reminders/"
                                     + x.id);
            done(r.data, r.ok ? "Rappel annulé." : r.error.message);
        });
        return h("tr", {},
            h("td", {}, F.instant(x.send_at)),
            h("td", {}, x.subject),
            h("td", {}, x.sent + " / " + x.families),
            h("td", {}, x.cancelled_at ? "annulé" : cancel || "envoyé"));
    });
    return h("section", { class: "carte", id: "rappels" },
        h("h2", {}, "Rappels par e-mail"),
        rows.length ? cards(ctx.table("Rappels programmés",
            ["Envoi", "Objet", "Envoyés", ""], rows, null, true)) : null,
        form);
}

/* The activity's régie (admin). */
function regieChoice(ctx, aid, regies, done) {
    const sel = h("select", { id: "activite-regie" },
        regies.map((x) => h("option", {
            value: x.code, selected: x.activities.includes(aid) }, x.name)));
    const msg = h("div", { "aria-live": "polite" });
    const form = h("form", { class: "carte", id: "regie-activite" },
        h("h2", {}, "Régie"),
        field("Régie de l'activité", sel, "Ses lignes de factures vont "
              + "dans l'export comptable de cette régie."),
        msg, h("div", { class: "boutons" }, h("button", {
            type: "submit", class: "bouton" }, "Enregistrer la régie")));
    form.addEventListener("submit", async (ev) => {
        ev.preventDefault();
        const r = await ctx.call("PUT", "/api/staff/activities/"
                                 + encodeURIComponent(aid) + "/regie",
                                 { regie: sel.value });
        if (!r.ok) {
            msg.replaceChildren(alertBox(r.error.message));
            return;
        }
        done(r.data, "Régie enregistrée.");
    });
    return form;
}

async function viewActivite(ctx, aid) {
    const out = h("div", { id: "activite" }, ctx.loading());
    ctx.page("Activité", out);
    const [r, l, rr, rg] = await Promise.all([
        ctx.call("GET", "/api/staff/activities/" + encodeURIComponent(aid)),
        ctx.call("GET", "/api/staff/activities"),
        ctx.call("GET", "/api/staff/reminders"),
        ctx.rank >= 3 ? ctx.call("GET", "/api/staff/regies")
                      : Promise.resolve({ ok: false })]);
    if (!r.ok || !l.ok) {
        out.replaceChildren(alertBox((r.ok ? l : r).error.message));
        return;
    }
    const a = r.data.activity;
    const units = l.data.units || [];
    const unitLabel = (c) => (units.find((u) => u.code === c) || {}).label
                             || c;
    document.title = a.name + " – Guichet agent";
    ctx.main.querySelector("h1").textContent = a.name;
    const err = h("div", { id: "seances-message", "aria-live": "polite" });
    const reload = (data, text) => {
        ctx.flash({ kind: "succes", text });
        ctx.route();
    };
    const bands = (a.prices || []).map((p) => (p.qf_max === null
        ? "au-delà" : "QF ≤ " + p.qf_max) + " : " + F.euros(p.cents));
    const wl = h("section", { id: "liste-attente", "aria-live": "polite" });
    out.replaceChildren(...[
        h("p", {}, h("a", { href: "#/activites" }, "← Toutes les activités")),
        h("dl", { class: "carte fiche", id: "reglages" },
          h("dt", {}, "Lieu"), h("dd", {}, a.site || "—"),
          h("dt", {}, "Âges"), h("dd", {}, a.age_min + " à " + a.age_max
                                         + " ans"),
          h("dt", {}, "Ouverture des réservations"),
          h("dd", {}, a.booking_opens_at ? F.instant(a.booking_opens_at)
                                         : "ouvertes"),
          h("dt", {}, "Réservable en ligne"),
          h("dd", {}, (a.online_share_percent ?? 50) + " % des places"),
          /* an opening by draw (issue 23): its window and published seed */
          ...(a.opening && a.opening.mode === "draw" ? [
              h("dt", {}, "Tirage au sort"),
              h("dd", { id: "tirage" }, "demandes enregistrées du "
                + F.instant(a.opening.entries_from) + " à l'ouverture, "
                + "tirées au sort à l'ouverture ; graine publiée : ",
                h("code", { id: "graine" }, a.opening.seed || "—"))]
            : []),
          h("dt", {}, "Tarifs"), h("dd", {}, bands.join(" ; ") || "—")),
        h("h2", {}, "Séances"),
        err,
        r.data.sessions.length === 0 ? h("p", {}, "Aucune séance.")
        : cards(ctx.table("Séances de " + a.name + " : places, places restantes "
                    + "en ligne et au guichet",
            ["Séance", "Atelier", "Places", "Dont en ligne",
             "Restant en ligne", "Restant au guichet", "Réservées",
             "Liste d'attente"],
            sessionRows(ctx, aid, r.data.sessions, unitLabel, err, wl),
            { id: "seances" })),
        wl,
        messageForm(ctx, aid, reload),
        ctx.rank >= 2 ? reminders(ctx, aid, rr.ok ? rr.data.reminders : [],
                                  reload) : null,
        ctx.rank >= 2 ? generateForm(ctx, aid, units, reload) : null,
        ctx.rank >= 2 ? activityForm(ctx, a, reload) : null,
        rg.ok ? regieChoice(ctx, aid, rg.data.regies, reload) : null]
        .filter((n) => n));
}
