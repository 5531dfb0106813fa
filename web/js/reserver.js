/*
 * reserver.js -- "Modifier les réservations": tick the children, choose an
 * activity, pick cells on a month / quinzaine / semaine planning, then
 * "Valider mes réservations" sends one POST /api/bookings.
 *
 * Picked cells stay pending (this module's state, kept while the family
 * visits other pages) until validated: an unsaved change is not a booking.
 * The grid re-reads places every few seconds and exactly at the opening
 * instant, without reloading the page.  One validation = one
 * Idempotency-Key, reused for every retry of the same selection.
 */

import * as api from "./api.js";
import * as F from "./format.js";
import * as P from "./planning.js";
import { h, id, announce, alertBox } from "./dom.js";

const POLL_MS = 5000;
const MAX_ITEMS = 400;

const R = {
    children: new Set(),
    activityId: null,
    mode: "mois",
    anchor: null,
    sessions: [],
    bookings: [],
    pending: new Map(),      /* "child|session" -> {child_id, session_id} */
    cancels: new Map(),      /* "child|session" -> booking to cancel */
    docs: null,              /* GET /api/documents (null: unknown) */
    progress: null,          /* {done, total} while sending */
    results: new Map(),      /* "child|session" -> answer item */
    answer: null,            /* last POST /api/bookings answer */
    error: null,
    idem: new Map(),         /* request body -> its Idempotency-Key */
    inFlight: false,
    ticked: false,           /* one child ticked for the family, once */
    seek: false,             /* open on the activity's first sessions */
    index: new Map(),        /* session id -> session, every one seen */
    waits: new Map(),        /* "child|session" -> place on its waiting
                                list (GET /api/waitlist) */
    joined: new Map(),       /* "child|session" -> the answer's item of
                                "M'inscrire sur liste d'attente" */
    total: null,             /* the summary's period and its bookings */
    entered: new Set(),      /* "child|session" entered in a draw not
                                decided yet (GET /api/requests) */
};

let activities = null;

window.addEventListener("beforeunload", (ev) => {
    if (R.pending.size > 0 || R.cancels.size > 0) {
        ev.preventDefault();
        ev.returnValue = "";
    }
});

const keyOf = (cid, sid) => cid + "|" + sid;
const sidOf = (s) => s.id || s.session_id;

function listOf(data, key) {
    return Array.isArray(data) ? data
        : (data && Array.isArray(data[key]) ? data[key] : []);
}

const STATE_WORDS = {
    libre: "Libre",
    complet: "Complet",
    ferme: "Fermé",
    pas_ouvert: "Pas encore ouvert",
    tirage: "Tirage au sort",
    tirage_en_cours: "Tirage au sort en cours",
    inscrit_tirage: "Inscrit au tirage au sort",
    reserve: "Déjà réservé",
    annuler: "À annuler",
    conflit: "Conflit",
    hors_age: "Âge hors tranche",
    non_inscrit: "Inscription non validée",
};

export async function viewReserver(ctx) {
    const me = ctx.me;
    const children = me.children || [];

    if (!activities) {
        const r = await api.get("/api/activities");
        if (r.status === 401) {
            return ctx.expired();
        }
        if (!r.ok) {
            ctx.page("Modifier les réservations", alertBox(r.error.message));
            return;
        }
        activities = listOf(r.data, "activities");
    }
    const q = new URLSearchParams(location.hash.split("?")[1] || "");
    if (q.get("activite") && q.get("activite") !== R.activityId) {
        R.activityId = q.get("activite");
        R.seek = true;
    }
    if (!R.anchor) {
        R.anchor = F.todayParis(api.serverNow());
    }
    if (R.docs === null) {
        /* the family's documents, for the summary's "pièces manquantes"
         * (guichet-office; absent: nothing said) */
        api.get("/api/documents").then((r) => {
            R.docs = r.ok ? listOf(r.data, "documents") : null;
        });
    }
    if (!R.ticked && children.length > 0) {
        R.ticked = true;
        R.children.add(children[0].id);
    }

    const activity = () => activities.find((a) => a.id === R.activityId);
    const actOf = (s) => activities.find((a) => a.id === s.activity_id)
                         || activity();
    const actName = (x) => (actOf(x) || { name: x.activity_id }).name;
    const who = (cid) => children.find((c) => c.id === cid)
                         || { id: cid, first_name: cid };
    const cellWords = (x) => F.dayLong(x.date) + ", " + P.labelOf(x);

    /* -- the controls ------------------------------------------------ */

    const childBoxes = children.map((c) => h("label", {},
        h("input", { type: "checkbox", name: "enfant", value: c.id,
                     checked: R.children.has(c.id),
                     onchange: (ev) => {
                         if (ev.target.checked) {
                             R.children.add(c.id);
                         } else {
                             R.children.delete(c.id);
                         }
                         draw();
                     } }),
        c.first_name));

    const select = h("select", { id: "activite", name: "activite" },
        h("option", { value: "" }, "— Choisissez une activité —"),
        activities.map((a) => h("option", { value: a.id,
                                            selected: a.id === R.activityId },
                                a.name + (a.site ? " (" + a.site + ")" : ""))));
    select.addEventListener("change", () => {
        R.activityId = select.value || null;
        R.results.clear();
        R.answer = null;
        R.seek = true;
        load();
    });

    const actInfo = h("div", { id: "infos-activite" });
    const countBox = h("div", { id: "ouverture" });
    const periodLabel = h("h2", { id: "periode", "aria-live": "polite" });
    /* the period's cost under its title, not in the sticky bar (issue 22:
     * the bar took 140 px of a phone) */
    const costLine = h("p", { id: "cout-periode" });
    const modeButtons = Object.entries(P.MODES).map(([m, label]) =>
        h("button", { type: "button", "aria-pressed": String(R.mode === m),
                      dataset: { mode: m },
                      onclick: () => {
                          R.mode = m;
                          for (const b of modeButtons) {
                              b.setAttribute("aria-pressed",
                                             String(b.dataset.mode === m));
                          }
                          load();
                      } }, label));
    const jump = h("input", { type: "date", id: "aller-au", value: R.anchor });
    jump.addEventListener("change", () => {
        if (/^\d{4}-\d{2}-\d{2}$/.test(jump.value)) {
            R.anchor = jump.value;
            load();
        }
    });
    const shift = (dir) => () => {
        R.anchor = P.shiftAnchor(R.mode, P.periodOf(R.mode, R.anchor), dir);
        jump.value = R.anchor;
        load();
    };

    const tools = h("div", { id: "outils" });
    const results = h("div", { id: "resultat", tabindex: "-1" });
    const notice = h("div", { id: "avis-semaine" });
    const sendWarn = h("div", { id: "avis-envoi" });
    const grids = h("div", { id: "plannings", "aria-busy": "false" });
    const summary = h("section", { id: "recapitulatif",
                                   "aria-labelledby": "titre-recap" });

    const countText = h("p", { id: "en-attente", "aria-live": "polite" });
    const validate = h("button", { class: "bouton", type: "button",
                                   id: "valider", onclick: submit },
                       validateWords());
    const clear = h("button", { class: "bouton second", type: "button",
                                onclick: () => {
                                    R.pending.clear();
                                    R.cancels.clear();
                                    R.idem.clear();
                                    sendWarn.replaceChildren();
                                    draw();
                                } }, "Annuler",
                  h("span", { class: "sur-grand" }, " les modifications"));
    const bar = h("div", { class: "barre-validation", role: "region",
                           "aria-label": "Validation" },
                  sendWarn, countText,
                  h("div", { class: "boutons" }, clear, validate));

    ctx.page("Modifier les réservations",
        h("fieldset", {},
          h("legend", {}, "Cochez les enfants"),
          h("div", { class: "choix" }, childBoxes)),
        h("div", { class: "champ large" },
          h("label", { for: "activite" }, "Activité"), select),
        actInfo, countBox,
        h("div", { class: "outils-periode" },
          h("div", { class: "bascule", role: "group",
                     "aria-label": "Affichage du planning" }, modeButtons),
          h("div", { class: "boutons" },
            h("button", { class: "bouton second", type: "button",
                          onclick: shift(-1) },
              h("span", { "aria-hidden": "true" }, "‹ "), "Précédent"),
            h("button", { class: "bouton second", type: "button",
                          onclick: shift(1) },
              "Suivant", h("span", { "aria-hidden": "true" }, " ›"))),
          h("div", { class: "champ" },
            h("label", { for: "aller-au" }, "Aller au"), jump)),
        periodLabel, costLine, tools, legend(), results, notice, grids,
        summary, bar);

    /* -- timers -------------------------------------------------------- */

    let pollTimer = null;
    let tickTimer = null;
    let openTimer = null;
    let alive = true;
    ctx.onLeave(() => {
        alive = false;
        clearTimeout(pollTimer);
        clearInterval(tickTimer);
        clearTimeout(openTimer);
    });

    const schedulePoll = () => {
        clearTimeout(pollTimer);
        /* A little jitter keeps thousands of families from polling in
         * step at the opening minute. */
        pollTimer = setTimeout(async () => {
            if (alive && document.visibilityState === "visible"
                && !R.inFlight && activity()) {
                await refreshPlaces();
            }
            if (alive) {
                schedulePoll();
            }
        }, POLL_MS + Math.random() * 1000);
    };

    /* an activity opening by draw (issue 23) takes requests from its
     * entries_from: they are entered, then drawn at booking_opens_at */
    function drawOf(a) {
        return a && a.opening && a.opening.mode === "draw"
               && !a.opening.drawn ? a.opening : null;
    }

    function opensAt() {
        const a = activity();
        const d = drawOf(a);
        const at = d ? d.entries_from : a && a.booking_opens_at;
        const t = at ? Date.parse(at) : NaN;
        return Number.isNaN(t) ? null : t;
    }

    function isBeforeOpening() {
        const t = opensAt();
        return t !== null && api.serverNow() < t;
    }

    function setupCountdown() {
        clearInterval(tickTimer);
        clearTimeout(openTimer);
        countBox.replaceChildren();
        const t = opensAt();
        const d = drawOf(activity());
        if (d && t !== null && api.serverNow() >= t) {
            const a = activity();
            countBox.replaceChildren(h("div", { class: "compte",
                                                id: "avis-tirage" },
                h("p", {}, "Ouverture par tirage au sort : les demandes "
                           + "envoyées avant le ",
                  F.instant(a.booking_opens_at), " sont tirées au sort à "
                  + "cette heure-là ; l'heure d'envoi ne compte pas.")));
            return;
        }
        if (t === null || api.serverNow() >= t) {
            return;
        }
        const left = h("strong", { id: "compte-a-rebours" });
        countBox.replaceChildren(h("div", { class: "compte", role: "timer",
                                            "aria-live": "off" },
            h("p", {}, "Les réservations ouvrent le ",
              h("span", { id: "date-ouverture" },
                F.instant(new Date(t).toISOString())), "."),
            h("p", {}, "Ouverture dans ", left),
            h("p", {}, "Préparez votre sélection dès maintenant : le bouton "
                       + "« Valider mes réservations » s'active à l'heure "
                       + "exacte.")));
        const tick = () => {
            left.textContent = F.countdown(t - api.serverNow());
        };
        tick();
        tickTimer = setInterval(tick, 1000);
        const delay = t - api.serverNow();
        if (delay < 2 ** 31 - 1) {
            openTimer = setTimeout(async () => {
                clearInterval(tickTimer);
                countBox.replaceChildren(alertBox(
                    "Les réservations sont ouvertes.", "succes"));
                announce("Les réservations sont ouvertes.");
                await refreshPlaces();
            }, delay + 20);
        }
    }

    /* -- data ---------------------------------------------------------- */

    /* Still the period shown?  An answer for another one (the parent
     * moved on while it was on its way) is dropped, not drawn. */
    function shown(p) {
        const q = P.periodOf(R.mode, R.anchor);
        return q.from === p.from && q.to === p.to;
    }

    async function refreshPlaces() {
        const a = activity();
        if (!a) {
            return;
        }
        const p = P.periodOf(R.mode, R.anchor);
        const r = await api.get("/api/activities/" + encodeURIComponent(a.id)
                                + "/sessions?from=" + p.from + "&to=" + p.to);
        if (r.status === 401) {
            return ctx.expired();
        }
        if (r.ok && alive && activity() === a && shown(p)) {
            R.sessions = listOf(r.data, "sessions");
            for (const s of R.sessions) {
                R.index.set(sidOf(s), s);
            }
            draw();
        }
    }

    async function load() {
        const a = activity();
        const p = P.periodOf(R.mode, R.anchor);
        periodLabel.textContent = "Planning : " + p.label;
        drawActivity(a);
        setupCountdown();
        if (!a) {
            R.sessions = [];
            draw();
            return;
        }
        grids.setAttribute("aria-busy", "true");
        const draw23 = drawOf(a) !== null;
        const [s, b, w, q] = await Promise.all([
            api.get("/api/activities/" + encodeURIComponent(a.id)
                    + "/sessions?from=" + p.from + "&to=" + p.to),
            api.get("/api/bookings?from=" + p.from + "&to=" + p.to),
            api.get("/api/waitlist"),
            /* an opening by draw not decided yet: the cells entered, from
             * the demandes (issue 23) */
            draw23 ? api.get("/api/requests") : Promise.resolve(null),
        ]);
        if (alive && activity() === a && !shown(p)) {
            return;         /* a later load() draws the period shown */
        }
        R.waits = new Map();
        for (const x of (w.ok && w.data && w.data.waitlist) || []) {
            /* a position, or the place offered to the child: "Place
             * proposée jusqu'au …" (accepted in Mes réservations) */
            R.waits.set(keyOf(x.child_id, x.session_id),
                        x.status === "offered"
                            ? { mark: "offre",
                                text: "Place proposée jusqu'au "
                                      + F.instantShort(x.offer_until) }
                            : { mark: String(x.position),
                                text: P.waitWords(x.position) });
        }
        R.entered = P.enteredCells(q && q.ok ? q.data : []);
        grids.setAttribute("aria-busy", "false");
        if (s.status === 401 || b.status === 401) {
            return ctx.expired();
        }
        if (!alive || activity() !== a) {
            return;
        }
        R.error = !s.ok ? s.error.message : (!b.ok ? b.error.message : null);
        R.sessions = s.ok ? listOf(s.data, "sessions") : [];
        R.bookings = b.ok ? listOf(b.data, "bookings") : [];
        for (const x of R.sessions) {
            R.index.set(sidOf(x), x);
        }
        /* An activity just picked opens on its first sessions, not on an
         * empty month. */
        const seek = R.seek;
        R.seek = false;
        if (seek && s.ok && R.sessions.length === 0) {
            const first = await firstSession(a, F.todayParis(
                api.serverNow()));
            if (first && alive && activity() === a) {
                R.anchor = first;
                jump.value = first;
                announce("Première séance de « " + a.name + " » : "
                         + F.dayLong(first) + ".");
                return load();
            }
        }
        draw();
    }

    /* The first session day of a on or after from, within a year (the
     * API gives 92 days at a time); null when there is none. */
    async function firstSession(a, from) {
        for (let i = 0; i < 4; i++) {
            const to = F.addDays(from, 91);
            const r = await api.get("/api/activities/"
                                    + encodeURIComponent(a.id)
                                    + "/sessions?from=" + from + "&to=" + to);
            if (!r.ok) {
                return null;
            }
            const first = listOf(r.data, "sessions").map((x) => x.date)
                .sort()[0];
            if (first) {
                return first;
            }
            from = F.addDays(to, 1);
        }
        return null;
    }

    function drawActivity(a) {
        if (!a) {
            actInfo.replaceChildren(h("p", { class: "discret" },
                "Choisissez l'activité pour voir le planning."));
            return;
        }
        const dl = a.deadline || {};
        const deadline = dl.working_days
            ? dl.working_days + " jours ouvrés avant la date"
            : dl.hours ? dl.hours + " h avant la séance"
            : dl.day_before_at ? "la veille à " + dl.day_before_at : null;
        const price = P.priceFor(me, a);
        actInfo.replaceChildren(h("div", { class: "info" },
            h("p", {}, h("strong", {}, a.name),
              a.site ? " — " + a.site : "",
              Number.isFinite(a.age_min) ? " — de " + a.age_min + " à "
                                           + a.age_max + " ans" : ""),
            deadline ? h("p", {}, "Réservation, modification et annulation "
                                  + "jusqu'à " + deadline + ".") : null,
            price !== null ? h("p", {}, "Tarif pour votre famille : "
                                        + F.euros(price) + " la séance.")
                           : null,
            a.week_required ? h("p", { id: "semaine-obligatoire" },
                h("strong", {}, "La semaine complète est obligatoire : "),
                "choisir un jour sélectionne toute la semaine pour cette "
                + "unité.") : null));
    }

    /* -- drawing ------------------------------------------------------- */

    function enrolled(child, s) {
        const list = me.enrolments;
        if (!Array.isArray(list) || list.length === 0) {
            return true;    /* nothing said: let the server decide */
        }
        const aid = s.activity_id || R.activityId;
        return list.some((e) => e.child_id === child.id
                                && e.activity_id === aid
                                && e.status === "validee"
                                && (!e.from || e.from <= s.date)
                                && (!e.to || s.date <= e.to));
    }

    function stateOf(s, child) {
        let st = P.cellState(s, child, R.bookings, actOf(s));
        if ((st.state === "tirage" || st.state === "tirage_en_cours")
            && R.entered && R.entered.has(keyOf(child.id, sidOf(s)))) {
            return { state: "inscrit_tirage" };
        }
        /* the booking it clashes with is to be cancelled (unticked): the
         * cell may take its slot, "Valider" sends it as a swap that
         * replaces that booking (issue 24) */
        while (st.state === "conflit" && st.with
               && R.cancels.has(keyOf(child.id, st.with.session_id))) {
            const other = st.with;
            st = P.cellState(s, child, R.bookings.filter((b) =>
                b !== other && R.cancels.get(keyOf(child.id, b.session_id))
                               !== b), actOf(s));
        }
        if ((st.state === "libre" || st.state === "pas_ouvert"
             || st.state === "tirage")
            && !enrolled(child, s)) {
            return { state: "non_inscrit" };
        }
        return st;
    }

    function toggle(s, child) {
        const a = activity();
        const group = a && a.week_required ? P.weekOf(s, R.sessions) : [s];
        const on = !R.pending.has(keyOf(child.id, sidOf(s)));
        /* A whole week the child cannot take entirely (a conflict, a full
         * or closed day...) would be refused whole: say so now. */
        const blocked = on ? group.filter((x) =>
            !P.selectable(stateOf(x, child).state)) : [];
        notice.replaceChildren();
        sendWarn.replaceChildren();
        if (blocked.length > 0) {
            const x = blocked[0];
            const text = "La semaine complète est obligatoire : "
                + child.first_name + " ne peut pas être inscrit(e) le "
                + F.dayLong(x.date) + ", " + P.labelOf(x) + " ("
                + STATE_WORDS[stateOf(x, child).state].toLowerCase()
                + "), donc pas sur cette semaine.";
            notice.replaceChildren(alertBox(text, "info"));
            announce(text);
            return;
        }
        for (const x of group) {
            const k = keyOf(child.id, sidOf(x));
            if (on && P.selectable(stateOf(x, child).state)) {
                R.pending.set(k, { child_id: child.id, session_id: sidOf(x) });
            } else if (!on) {
                R.pending.delete(k);
            }
            R.results.delete(k);
        }
        draw();
    }

    /* The words of cancelling a booking of s now: free until its
     * cancel_until, billed from it (docs/rules.md). */
    function feeWords(s) {
        const c = P.cancelCost(s, api.serverNow());
        if (c.billed === null) {
            return "";
        }
        return c.billed ? "annulation facturée"
                        : "annulation sans frais jusqu'au "
                          + F.instantShort(c.until);
    }

    /* A booked cell: pressed while kept; unticking marks it to cancel
     * (sent by "Valider", DELETE /api/bookings/{id}). */
    function bookedCell(s, child, b, cls, data, what, sub) {
        const k = keyOf(child.id, sidOf(s));
        const off = R.cancels.has(k);
        const fee = feeWords(s);
        const price = b.price_cents ? F.euros(b.price_cents) : "";
        const billed = P.cancelCost(s, api.serverNow()).billed;
        return h("button", {
            type: "button",
            class: cls + (off ? " annuler" : "")
                   + (off && billed ? " facturee" : ""),
            dataset: Object.assign({}, data, {
                state: off ? "annuler" : "reserve",
                booking: b.booking_id,
                billed: billed === null ? "" : String(billed) }),
            "aria-pressed": String(!off),
            "aria-label": what + (off ? " : à annuler, " + fee
                                  : " : déjà réservé" + (price ? ", " + price
                                                                : "")
                                    + (fee ? ", " + fee : "")),
            onclick: () => {
                if (off) {
                    R.cancels.delete(k);
                } else {
                    R.cancels.set(k, b);
                }
                R.results.delete(k);
                draw();
                announce(off ? "Réservation gardée."
                             : "Réservation à annuler : " + fee + ".");
            } },
            off ? "À annuler" : "Déjà réservé", sub,
            h("span", { class: "places" }, off ? (billed ? "facturée"
                                                         : "sans frais")
                                               : price));
    }

    function cell(s, child, explain) {
        if (!s) {
            return h("td", {}, h("span", { class: "case vide" },
                                 h("span", { "aria-hidden": "true" }, "—"),
                                 h("span", { class: "visually-hidden" },
                                   "Pas de séance")));
        }
        const sid = sidOf(s);
        const k = keyOf(child.id, sid);
        const st = stateOf(s, child);
        const picked = R.pending.has(k);
        const res = R.results.get(k);
        const what = child.first_name + ", " + cellWords(s);
        const sub = P.ownLabel(s)
            ? h("span", { class: "places" }, P.ownLabel(s)) : null;
        let cls = "case " + st.state;
        if (res) {
            cls += res.status === "confirmed" || res.status === "entered"
                ? " resultat-ok" : " resultat-ko";
        }
        const data = { key: k, state: st.state, session: sid,
                       child: child.id, date: s.date, unit: s.unit };

        if (st.state === "reserve" && st.booking
            && st.booking.booking_id) {
            return h("td", {}, bookedCell(s, child, st.booking, cls, data,
                                          what, sub));
        }

        if (P.selectable(st.state)) {
            const places = st.state === "libre"
                ? (Number(s.places_left) === 1 ? "1 place"
                                               : s.places_left + " places")
                : "";
            return h("td", {}, h("button", {
                type: "button", class: cls, dataset: data,
                "aria-pressed": String(picked),
                "aria-label": what + " : " + STATE_WORDS[st.state]
                              + (places ? ", " + places : "")
                              + (picked ? ", sélectionné, à valider" : "")
                              + (res && res.status !== "confirmed"
                                 ? ", refusé : " + P.reasonText(res,
                                                                F.instant)
                                 : ""),
                onclick: () => toggle(s, child) },
                picked ? "Sélectionné" : STATE_WORDS[st.state],
                sub, places ? h("span", { class: "places" }, places) : null,
                res && res.status !== "confirmed"
                    ? h("span", { class: "places motif" },
                        "Refusé : " + P.reasonText(res, F.instant))
                    : null));
        }

        let word = STATE_WORDS[st.state];
        if (res && res.status !== "confirmed" && res.status !== "entered") {
            word = P.reasonText(res, F.instant);
        }
        if (st.state === "conflit") {
            const eid = id("expl");
            const b = st.with;
            const text = F.dayLong(s.date) + ", "
                + P.labelOf(s) + " : "
                + child.first_name + " est déjà inscrit(e) à « "
                + (b.activity_name || "une autre activité") + " » de "
                + F.time(b.starts_at) + " à " + F.time(b.ends_at)
                + ". Un enfant ne peut être que dans une activité par "
                + "créneau.";
            /* Shown in a row right under the day's row (grid()). */
            const p = h("p", { class: "explication" }, "(i) " + text);
            explain.push({ id: eid, p });
            const btn = h("button", {
                type: "button", class: "info-bulle", "aria-expanded": "false",
                "aria-controls": eid,
                "aria-label": "Pourquoi ce conflit ? " + what,
                onclick: () => {
                    const open = btn.getAttribute("aria-expanded") !== "true";
                    btn.setAttribute("aria-expanded", String(open));
                    const row = document.getElementById(eid);
                    if (row) {
                        row.hidden = !open;
                    }
                } }, "i");
            return h("td", {}, h("div", { class: cls + " cellule-conflit",
                                          dataset: data, title: text },
                                  h("span", {}, word), sub, btn));
        }
        if (st.state === "reserve" && st.booking && st.booking.price_cents) {
            return h("td", {}, h("div", { class: cls, dataset: data },
                word, h("span", { class: "places" },
                        F.euros(st.booking.price_cents))));
        }
        const wait = R.waits.get(k);
        if (wait) {
            data.attente = wait.mark;
        }
        return h("td", {}, h("div", { class: cls, dataset: data,
                                      "aria-label": what + " : " + word
                                          + (wait ? ", " + wait.text : "") },
                             word, sub,
                             wait ? h("span", { class: "places attente" },
                                      wait.text) : null));
    }

    /* Public holidays of the period, shown as "Férié" instead of silently
     * missing: on a weekday the activity has sessions on, or any working
     * day for an activity held on several weekdays. */
    function holidays() {
        const p = P.periodOf(R.mode, R.anchor);
        const days = new Set(R.sessions.map((s) => F.weekday(s.date)));
        const out = [];
        for (let d = p.from; d <= p.to; d = F.addDays(d, 1)) {
            const wd = F.weekday(d);
            if (F.holiday(d) && R.sessions.length > 0
                && (days.has(wd) || (days.size > 1 && wd < 5))) {
                out.push(d);
            }
        }
        return out;
    }

    /*
     * "Tout cocher" of a row (a day) or a column (a unit): picks every cell
     * of it the child can take; when they are all picked already, unpicks
     * them.  Booked cells are left as they are (cancelling is one cell at
     * a time).
     */
    function allButton(list, child, what, kind) {
        const can = list.filter((x) => P.selectable(stateOf(x, child).state));
        if (can.length === 0) {
            return null;
        }
        const all = can.every((x) => R.pending.has(keyOf(child.id,
                                                          sidOf(x))));
        return h("button", {
            type: "button", class: "tout-cocher " + kind
                                   + (all ? " tous" : ""),
            dataset: { all: kind, child: child.id },
            "aria-label": (all ? "Tout décocher " : "Tout cocher ") + what
                          + " pour " + child.first_name,
            onclick: () => {
                for (const x of can) {
                    const k = keyOf(child.id, sidOf(x));
                    if (all) {
                        R.pending.delete(k);
                    } else {
                        R.pending.set(k, { child_id: child.id,
                                           session_id: sidOf(x) });
                    }
                    R.results.delete(k);
                }
                draw();
                announce((all ? "Décoché : " : "Coché : ") + can.length
                         + " séance(s), " + what + ".");
            } }, all ? "Aucun" : "Tout");
    }

    function grid(child) {
        const dates = Array.from(new Set(R.sessions.map((s) => s.date)
                                                   .concat(holidays())))
            .sort();
        const units = P.unitsOf(R.sessions);
        const by = new Map(R.sessions.map((s) => [s.date + "|" + s.unit, s]));
        const rows = [];
        for (const d of dates) {
            const off = F.holiday(d);
            if (off && !R.sessions.some((s) => s.date === d)) {
                rows.push(h("tr", {},
                    h("th", { scope: "row" }, F.dayShort(d)),
                    h("td", { colspan: units.length },
                      h("span", { class: "case ferie" },
                        "Férié (" + off + ") : pas de séance"))));
                continue;
            }
            const explain = [];
            const day = R.sessions.filter((x) => x.date === d);
            rows.push(h("tr", {},
                h("th", { scope: "row" }, F.dayShort(d),
                  allButton(day, child, "le " + F.dayLong(d), "ligne")),
                units.map((u) => cell(by.get(d + "|" + u.code), child,
                                      explain))));
            for (const x of explain) {
                rows.push(h("tr", { id: x.id, class: "ligne-explication",
                                    hidden: true },
                            h("td", { colspan: units.length + 1 }, x.p)));
            }
        }
        const tid = "grille-" + child.id;
        return h("section", { class: "planning", "aria-labelledby": tid,
                              dataset: { child: child.id } },
            h("h3", { id: tid }, "Planning de " + child.first_name),
            h("div", { class: "tableau-defilant" }, h("table", {},
                h("caption", { class: "visually-hidden" },
                  "Planning de " + child.first_name + " — "
                  + P.periodOf(R.mode, R.anchor).label),
                h("thead", {}, h("tr", {},
                    h("th", { scope: "col" }, "Jour"),
                    units.map((u) => h("th", { scope: "col" }, u.label,
                        allButton(R.sessions.filter((x) =>
                            x.unit === u.code), child,
                                  "la colonne " + u.label, "colonne"))))),
                h("tbody", {}, rows))));
    }

    function draw() {
        const focused = document.activeElement && document.activeElement
            .dataset ? document.activeElement.dataset.key : null;
        const a = activity();
        const chosen = children.filter((c) => R.children.has(c.id));

        drawTools(a);
        drawResults();

        if (!a) {
            grids.replaceChildren();
        } else if (R.error) {
            grids.replaceChildren(alertBox(R.error));
        } else if (chosen.length === 0) {
            grids.replaceChildren(h("p", { class: "info" },
                "Cochez le ou les enfants à inscrire."));
        } else if (R.sessions.length === 0) {
            const next = h("div", {});
            grids.replaceChildren(h("p", {}, "Aucune séance de cette "
                                             + "activité sur la période."),
                                  next);
            findNext(a, next);
        } else {
            grids.replaceChildren(...chosen.map(grid));
        }

        drawBar(a, chosen);

        if (focused) {
            const el = grids.querySelector("[data-key=\"" + focused + "\"]");
            if (el && el.tagName === "BUTTON") {
                el.focus({ preventScroll: true });
            }
        }
    }

    async function findNext(a, box) {
        const first = await firstSession(a, F.addDays(
            P.periodOf(R.mode, R.anchor).to, 1));
        if (!first && activity() === a) {
            box.replaceChildren(h("p", {}, "Aucune séance prévue dans "
                                           + "l'année qui suit."));
        } else if (first && activity() === a) {
            box.replaceChildren(h("button", {
                class: "bouton second", type: "button",
                onclick: () => {
                    R.anchor = first;
                    jump.value = first;
                    load();
                } }, "Aller à la prochaine séance (" + F.dayLong(first)
                     + ")"));
        }
    }

    /* The price of one new cell: the family's price of its activity
     * (GET /api/me "prices", the engine's), null when unknown. */
    const cellPrice = (s) => s ? P.priceFor(me, actOf(s)) : null;

    /* The estimate of the selection: each cell at its own activity's
     * price for this family; null when one price is unknown. */
    function estimate() {
        let sum = 0;
        for (const it of R.pending.values()) {
            const price = cellPrice(R.index.get(it.session_id));
            if (price === null) {
                return null;
            }
            sum += price;
        }
        return sum;
    }

    function drawBar(a, chosen) {
        const n = R.pending.size;
        const m = R.cancels.size;
        const price = estimate();
        const p = P.periodOf(R.mode, R.anchor);
        const booked = R.bookings.filter((b) =>
            b.activity_id === R.activityId && R.children.has(b.child_id)
            && b.date >= p.from && b.date <= p.to && b.status !== "cancelled");
        const cost = booked.reduce((s, b) => s + (Number(b.price_cents) || 0),
                                   0);
        const parts = [];
        costLine.textContent = a && chosen.length
            ? "Coût de la période : " + F.euros(cost) + " ("
              + booked.length + " séance" + (booked.length > 1 ? "s" : "")
              + " réservée" + (booked.length > 1 ? "s" : "") + ")"
            : "";
        if (R.progress) {
            parts.push(h("label", { for: "progression-envoi" },
                         "Envoi : " + R.progress.done + " sur "
                         + R.progress.total + " "),
                       h("progress", { id: "progression-envoi",
                                       max: String(R.progress.total),
                                       value: String(R.progress.done) }));
        } else if (n === 0 && m === 0) {
            parts.push("Aucune modification en attente.");
        } else {
            if (n > 0) {
                parts.push(h("strong", {}, n + " séance" + (n > 1 ? "s" : "")
                                           + " sélectionnée"
                                           + (n > 1 ? "s" : "")),
                           price !== null
                               ? " — estimation " + F.euros(price) : "");
            }
            if (m > 0) {
                parts.push(n > 0 ? ", " : "",
                           h("strong", { id: "a-annuler" },
                             m + " à annuler"));
            }
            parts.push(" — ", h("a", { href: "#recapitulatif",
                                       class: "recap-lien",
                                       onclick: (ev) => {
                                           ev.preventDefault();
                                           summary.scrollIntoView();
                                       } }, "récapitulatif"),
                       h("span", { class: "recap-lien" }, " — "),
                       h("strong", {}, "pensez à valider."));
        }
        if (isBeforeOpening()) {
            parts.push(h("br"), "Validation possible à l'ouverture.");
        }
        countText.replaceChildren(...parts);
        validate.disabled = (n === 0 && m === 0) || R.inFlight
                            || (n > 0 && isBeforeOpening());
        clear.disabled = (n === 0 && m === 0) || R.inFlight;
        drawSummary();
    }

    /*
     * The summary before "Valider" (issue 24): each cell to book with its
     * price, each booking to cancel with what it costs (free or billed:
     * its cancel_until), what is already known to be refused (deadline
     * passed, enrolment not validated, a required document missing) so
     * the family can fix it first, and the total of the period before and
     * after.  The period: from the first to the last day concerned (the
     * period shown included); its bookings are read from the API.
     */
    function drawSummary() {
        if ((R.pending.size === 0 && R.cancels.size === 0) || R.progress) {
            summary.replaceChildren();
            return;
        }
        const now = api.serverNow();
        const adds = Array.from(R.pending.values()).map((it) =>
            ({ it, s: R.index.get(it.session_id) }))
            .sort((x, y) => ((x.s && x.s.date) || "")
                .localeCompare((y.s && y.s.date) || ""));
        const dels = Array.from(R.cancels.values()).map((b) =>
            ({ b, s: R.index.get(b.session_id) || b,
               cost: P.cancelCost(R.index.get(b.session_id), now) }))
            .sort((x, y) => x.b.date.localeCompare(y.b.date));
        const shown = P.periodOf(R.mode, R.anchor);
        const days = adds.filter((x) => x.s).map((x) => x.s.date)
            .concat(dels.map((x) => x.b.date), [shown.from, shown.to])
            .sort();
        const span = { from: days[0], to: days[days.length - 1] };

        let plus = 0;
        let unknown = false;
        const known = [];
        const addRows = adds.map(({ it, s }) => {
            const c = who(it.child_id);
            const price = cellPrice(s);
            if (price === null) {
                unknown = true;
            } else {
                plus += price;
            }
            const why = s ? P.knownRefusal(s, c, actOf(s), me, R.docs)
                          : null;
            if (why) {
                known.push({ c, s, why });
            }
            return h("tr", { dataset: { key: keyOf(it.child_id,
                                                   it.session_id),
                                        refus: why || "" } },
                h("td", {}, c.first_name),
                h("td", {}, s ? cellWords(s) : it.session_id),
                h("td", {}, s ? actName(s) : ""),
                h("td", { class: "montant" },
                  price === null ? "?" : F.euros(price)));
        });
        let minus = 0;
        let billedSum = 0;
        const swapOf = new Map(Array.from(swapPlan()).map(([k, b]) =>
            [b, R.pending.get(k)]));
        const delRows = dels.map(({ b, s, cost }) => {
            const price = Number(b.price_cents) || 0;
            if (cost.billed) {
                billedSum += price;
            } else {
                minus += price;
            }
            const by = swapOf.get(b);
            const bys = by ? R.index.get(by.session_id) : null;
            return h("tr", { dataset: { booking: b.booking_id,
                                        billed: String(cost.billed),
                                        swap: by ? "true" : "false" } },
                h("td", {}, who(b.child_id).first_name),
                h("td", {}, cellWords(s), by ? h("span", { class: "echange" },
                    " — échangée contre " + (bys ? actName(bys) : "")
                    + " : gardée si la nouvelle séance est refusée") : null),
                h("td", {}, cost.billed === null ? "" : cost.billed
                    ? "Délai d'annulation dépassé (depuis le "
                      + F.instantShort(cost.until) + ") : reste facturée"
                    : "Sans frais (annulable jusqu'au "
                      + F.instantShort(cost.until) + ")"),
                h("td", { class: "montant" }, cost.billed
                    ? F.euros(price) : "− " + F.euros(price)));
        });

        const t = R.total && R.total.from === span.from
                  && R.total.to === span.to ? R.total : null;
        if (!t || t.pending) {
            if (!t) {
                R.total = { from: span.from, to: span.to, pending: true };
                api.getSpan("/api/bookings", span.from, span.to, "bookings")
                    .then((r) => {
                        if (R.total && R.total.from === span.from
                            && R.total.to === span.to) {
                            R.total = r.ok
                                ? { from: span.from, to: span.to,
                                    cents: r.list.reduce((x, b) =>
                                        x + (Number(b.price_cents) || 0), 0) }
                                : { from: span.from, to: span.to,
                                    cents: null };
                            if (alive) {
                                drawSummary();
                            }
                        }
                    });
            }
        }
        const before = t && !t.pending ? t.cents : null;
        /* a region one can scroll with the keyboard on a phone */
        const table = (caption, head, rows, id0) => h("div", {
            class: "tableau-defilant", tabindex: "0", role: "region",
            "aria-label": caption }, h("table", { id: id0 },
            h("caption", {}, caption),
            h("thead", {}, h("tr", {}, head.map((x) =>
                h("th", { scope: "col" }, x)))),
            h("tbody", {}, rows)));

        /* (replaceChildren would write a null as the text "null") */
        summary.replaceChildren(...[
            h("h2", { id: "titre-recap" }, "Récapitulatif avant validation"),
            known.length ? h("div", { class: "alerte", id: "refus-connus" },
                h("p", {}, h("strong", {}, known.length + " séance"
                    + (known.length > 1 ? "s seront" : " sera")
                    + " refusée" + (known.length > 1 ? "s" : "")
                    + " si vous validez maintenant :")),
                h("ul", {}, known.map(({ c, s, why }) => h("li", {},
                    c.first_name + " — " + cellWords(s) + " : "
                    + P.reasonText({ reason: why }, F.instant)
                    + (why === "not_enrolled"
                       ? " (demandez l'inscription dans « Mes "
                         + "inscriptions »)"
                       : why === "documents_missing"
                       ? " (déposez la pièce dans « Mes documents »)"
                       : why === "closed" ? " (retirez-la de la sélection)"
                       : "")))))
                : null,
            adds.length ? table("À réserver : " + adds.length + " séance"
                                + (adds.length > 1 ? "s" : ""),
                                ["Enfant", "Séance", "Activité", "Prix"],
                                addRows, "recap-reserver") : null,
            dels.length ? table("À annuler : " + dels.length + " séance"
                                + (dels.length > 1 ? "s" : ""),
                                ["Enfant", "Séance", "Annulation", "Prix"],
                                delRows, "recap-annuler") : null,
            h("dl", { class: "totaux", id: "recap-totaux" },
              h("dt", {}, "Nouvelles réservations"),
              h("dd", {}, unknown ? "prix inconnu" : "+ " + F.euros(plus)),
              dels.length ? h("dt", {}, "Annulations sans frais") : null,
              dels.length ? h("dd", {}, "− " + F.euros(minus)) : null,
              billedSum ? h("dt", {}, "Annulations facturées quand même")
                        : null,
              billedSum ? h("dd", {}, F.euros(billedSum)) : null,
              h("dt", {}, "Total du " + F.dayLong(span.from) + " au "
                          + F.dayLong(span.to)),
              h("dd", { id: "recap-total" }, before === null || unknown
                  ? (t && t.pending ? "calcul en cours…" : "inconnu")
                  : F.euros(before) + " aujourd'hui → "
                    + F.euros(before + plus - minus) + " après validation"))
        ].filter(Boolean));
    }

    function drawTools(a) {
        if (!a || R.sessions.length === 0) {
            tools.replaceChildren();
            return;
        }
        const units = P.unitsOf(R.sessions);
        const days = Array.from(new Set(R.sessions.map((s) =>
            F.weekday(s.date)))).sort();
        const dayBoxes = days.map((d) => h("label", {},
            h("input", { type: "checkbox", name: "st-jour", value: d }),
            F.WEEKDAYS[d]));
        const unitBoxes = units.map((u) => h("label", {},
            h("input", { type: "checkbox", name: "st-unite", value: u.code }),
            u.label));
        const every = h("select", { id: "st-frequence" },
                        h("option", { value: "1" }, "Chaque semaine"),
                        h("option", { value: "2" }, "Une semaine sur deux"));
        const stMsg = h("p", { "aria-live": "polite", id: "st-message" });
        const span = h("select", { id: "st-periode" },
                       Object.entries(P.SPANS).map(([k, label]) =>
                           h("option", { value: k }, label)));
        const stForm = h("form", {},
            h("fieldset", {}, h("legend", {}, "Jours"),
              h("div", { class: "choix" }, dayBoxes)),
            h("fieldset", {}, h("legend", {}, "Unités"),
              h("div", { class: "choix" }, unitBoxes)),
            h("div", { class: "champ" },
              h("label", { for: "st-frequence" }, "Fréquence"), every),
            h("div", { class: "champ" },
              h("label", { for: "st-periode" }, "Appliquer sur"), span),
            h("button", { class: "bouton second", type: "submit" },
              "Appliquer la semaine type"), stMsg);
        stForm.addEventListener("submit", async (ev) => {
            ev.preventDefault();
            const ds = dayBoxes.map((l) => l.firstChild)
                .filter((x) => x.checked).map((x) => Number(x.value));
            const us = unitBoxes.map((l) => l.firstChild)
                .filter((x) => x.checked).map((x) => x.value);
            const kids = children.filter((c) => R.children.has(c.id));
            if (!kids.length || !ds.length || !us.length) {
                stMsg.textContent = "Cochez au moins un enfant, un jour et "
                                    + "une unité.";
                return;
            }
            const shown = P.periodOf(R.mode, R.anchor);
            const p = P.spanOf(span.value, R.anchor, shown);
            let sessions = R.sessions;
            let booked = R.bookings;
            if (p.from !== shown.from || p.to !== shown.to) {
                stMsg.textContent = "Lecture des séances du "
                    + F.dayLong(p.from) + " au " + F.dayLong(p.to) + "…";
                const [rs, rb] = await Promise.all([
                    api.getSpan("/api/activities/" + encodeURIComponent(a.id)
                                + "/sessions", p.from, p.to, "sessions"),
                    api.getSpan("/api/bookings", p.from, p.to, "bookings"),
                ]);
                if (rs.status === 401 || rb.status === 401) {
                    return ctx.expired();
                }
                if (!rs.ok || !rb.ok) {
                    stMsg.textContent = (!rs.ok ? rs : rb).error.message;
                    return;
                }
                sessions = rs.list;
                booked = rb.list;
                for (const x of sessions) {
                    R.index.set(sidOf(x), x);
                }
            }
            /* holidays and closed days have no session or a closed one:
             * they are skipped, and so is what the child cannot take */
            let added = 0;
            const skipped = new Map();
            for (const c of kids) {
                for (const x of P.semaineType(sessions, ds, us,
                                              Number(every.value), p.from)) {
                    const k = keyOf(c.id, sidOf(x));
                    let st = P.cellState(x, c, booked, actOf(x)).state;
                    if (P.selectable(st) && !enrolled(c, x)) {
                        st = "non_inscrit";
                    }
                    if (R.pending.has(k) || st === "reserve") {
                        continue;
                    }
                    if (P.selectable(st)) {
                        R.pending.set(k, { child_id: c.id,
                                           session_id: sidOf(x) });
                        added++;
                    } else {
                        skipped.set(st, (skipped.get(st) || 0) + 1);
                    }
                }
            }
            draw();
            const why = Array.from(skipped, ([st, n]) =>
                n + " " + STATE_WORDS[st].toLowerCase()).join(", ");
            const text = added + " séance(s) ajoutée(s) à la sélection, du "
                + F.dayLong(p.from) + " au " + F.dayLong(p.to)
                + (why ? " ; non retenues : " + why : "") + ".";
            stMsg.textContent = text;
            announce(text);
        });

        const blocks = [h("details", { class: "outil", id: "semaine-type" },
                          h("summary", {}, "Semaine type"),
                          h("p", { class: "discret" },
                            "Choisissez les jours et les unités une fois : "
                            + "ils sont sélectionnés sur la période choisie "
                            + "(mois, trimestre, année scolaire), pour les "
                            + "enfants cochés. Les jours fériés, fermés ou "
                            + "complets sont laissés de côté."),
                          stForm)];

        if (children.length > 1) {
            const opts = () => children.map((c) =>
                h("option", { value: c.id }, c.first_name));
            const src = h("select", { id: "copie-de" }, opts());
            const dst = h("select", { id: "copie-vers" }, opts());
            dst.selectedIndex = 1;
            const cpMsg = h("p", { "aria-live": "polite" });
            const cpForm = h("form", {},
                h("div", { class: "choix" },
                  h("div", { class: "champ" },
                    h("label", { for: "copie-de" }, "Planning de"), src),
                  h("div", { class: "champ" },
                    h("label", { for: "copie-vers" }, "Copier vers"), dst)),
                h("button", { class: "bouton second", type: "submit" },
                  "Copier le planning"), cpMsg);
            cpForm.addEventListener("submit", (ev) => {
                ev.preventDefault();
                const from = children.find((c) => c.id === src.value);
                const to = children.find((c) => c.id === dst.value);
                if (!from || !to || from === to) {
                    cpMsg.textContent = "Choisissez deux enfants différents.";
                    return;
                }
                let added = 0;
                for (const s of R.index.values()) {
                    if (s.activity_id !== a.id) {
                        continue;
                    }
                    const st = stateOf(s, from).state;
                    const k = keyOf(to.id, sidOf(s));
                    if ((st === "reserve"
                         || R.pending.has(keyOf(from.id, sidOf(s))))
                        && !R.pending.has(k)
                        && P.selectable(stateOf(s, to).state)) {
                        R.pending.set(k, { child_id: to.id,
                                           session_id: sidOf(s) });
                        added++;
                    }
                }
                R.children.add(to.id);
                for (const l of childBoxes) {
                    if (l.firstChild.value === to.id) {
                        l.firstChild.checked = true;
                    }
                }
                draw();
                announce(added + " séance(s) copiée(s) pour "
                         + to.first_name + ".");
            });
            blocks.push(h("details", { class: "outil", id: "copier" },
                          h("summary", {}, "Copier le planning"),
                          h("p", { class: "discret" },
                            "Reprend les séances réservées ou sélectionnées "
                            + "d'un enfant sur la période, pour un frère ou "
                            + "une sœur."),
                          cpForm));
        }

        /* Keep the tools open (and their ticks) across redraws. */
        if (tools.dataset.sig !== a.id + R.sessions.length + children.length
                                   + R.mode + R.anchor) {
            tools.dataset.sig = a.id + R.sessions.length + children.length
                                + R.mode + R.anchor;
            tools.replaceChildren(...blocks);
        }
    }

    function drawResults() {
        const ans = R.answer;
        if (!ans) {
            results.replaceChildren();
            return;
        }
        if (ans.error && !ans.requests.length && !ans.cancels.length) {
            results.replaceChildren(alertBox(ans.error));
            return;
        }
        const all = ans.requests.flatMap((x) => x.items || []);
        /* a week refused: the day of that week refused for its own
         * reason, if there is one */
        const blocker = (it) => {
            const s = it.reason === "week_incomplete"
                ? R.index.get(it.session_id) : null;
            for (const o of s ? all : []) {
                const x = R.index.get(o.session_id);
                if (x && o.child_id === it.child_id && o.status !== "confirmed"
                    && o.reason !== "week_incomplete"
                    && x.activity_id === s.activity_id && x.unit === s.unit
                    && F.mondayOf(x.date) === F.mondayOf(s.date)) {
                    return "Semaine incomplète : le " + cellWords(x)
                        + " est refusé (" + P.reasonText(o, F.instant)
                        + ") et cette activité se réserve à la semaine "
                        + "complète";
                }
            }
            return P.reasonText(it, F.instant);
        };
        const items = all.map((it) => {
            const s = R.index.get(it.session_id);
            const where = s ? cellWords(s) : it.session_id;
            const ok = it.status === "confirmed";
            const name = who(it.child_id).first_name;
            return h("li", { class: ok ? "ok" : "ko",
                             dataset: { status: it.status,
                                        reason: it.reason || "" } },
                name + " — " + where + " : ",
                h("strong", {}, ok ? "Réservé" + (it.price_cents !== undefined
                                    ? " (" + F.euros(it.price_cents) + ")"
                                    : "")
                    : it.status === "waitlisted"
                      ? "Complet — " + P.waitWords(it.position)
                      : it.status === "entered"
                      ? P.drawWords(it, F.instant)
                      : blocker(it)),
                canWait(it, s) ? " " : null,
                canWait(it, s) ? waitButton(it, name + ", " + where) : null);
        });
        const gone = ans.cancels.map((x) => {
            const s = R.index.get(x.b.session_id) || x.b;
            /* a swap's old booking: replaced, or kept when the new
             * cell was refused (its reason is in the list above) */
            return h("li", { class: x.ok ? "ok" : "ko",
                             dataset: { status: x.swap
                                            ? (x.ok ? "swapped" : "kept")
                                            : x.ok ? "cancelled"
                                            : "not_cancelled",
                                        booking: x.b.booking_id } },
                who(x.b.child_id).first_name + " — " + cellWords(s) + " : ",
                h("strong", {}, x.swap && !x.ok
                    ? "Conservée : la nouvelle séance n'a pas pu être "
                      + "réservée"
                    : !x.ok ? "Non annulée : " + x.error
                    : (x.swap ? "Remplacée, " : "")
                      + (x.billed ? (x.swap ? "a" : "A")
                                    + "nnulée, reste facturée ("
                                    + F.euros(x.b.price_cents || 0) + ")"
                         : (x.swap ? "a" : "A") + "nnulée sans frais")));
        });
        const ok = all.filter((i) => i.status === "confirmed");
        const ids = ans.requests.map((x) => x.request_id).filter(Boolean);
        const status = ans.requests.length === 0 ? null
            : ans.requests.length === 1 ? ans.requests[0].status
            : ok.length === all.length ? "traitee_positivement"
            : ok.length === 0 ? "traitee_negativement" : "partielle";
        const cancelled = ans.cancels.filter((x) => x.ok).length;
        const klass = ans.error ? "alerte"
            : (status === null || status === "traitee_positivement")
              && cancelled === ans.cancels.length ? "succes"
            : status === "traitee_negativement" ? "alerte" : "info";
        results.replaceChildren(h("div", { class: klass },
            h("h2", { id: "demande-numero" }, ids.length > 1
                ? "Demandes N° " + ids.join(", ")
                : ids.length === 1 ? "Demande N° " + ids[0]
                : ans.requests.length ? P.unrecordedTitle(all)
                : "Annulations"),
            status ? h("p", {}, (P.REQUEST_STATUS[status] || status)
                       + " — " + ok.length + " séance"
                       + (ok.length > 1 ? "s" : "") + " réservée"
                       + (ok.length > 1 ? "s" : "") + " sur "
                       + all.length
                       + (ok.length ? ", pour " + F.euros(ok.reduce((s, i) =>
                             s + (Number(i.price_cents) || 0), 0)) : "")
                       + ".") : null,
            ans.cancels.length ? h("p", { id: "annulations-faites" },
                cancelled + " annulation" + (cancelled > 1 ? "s" : "")
                + " sur " + ans.cancels.length + ".") : null,
            ans.error ? h("p", { role: "alert" }, ans.error) : null,
            items.length ? h("ul", { class: "resultats" }, items) : null,
            gone.length ? h("ul", { class: "resultats",
                                    id: "resultat-annulations" }, gone)
                        : null));
    }

    /*
     * After a refusal "complet": join the session's waiting list (a
     * booking request of that one cell with "waitlist": true, issue 23).
     * The answer replaces the button: the position, or the booking when
     * a place came back meanwhile.
     */
    function waitButton(it, words) {
        const k = keyOf(it.child_id, it.session_id);
        const done = R.joined.get(k);
        if (done) {
            return h("span", { class: "liste-attente", role: "status",
                               dataset: { status: done.status || "error" } },
                     "— " + joinedWords(done));
        }
        const b = h("button", { class: "bouton second petit", type: "button",
                                "aria-label": "M'inscrire sur liste "
                                              + "d'attente : " + words },
                    "M'inscrire sur liste d'attente");
        const key = api.newIdempotencyKey();
        b.addEventListener("click", async () => {
            b.disabled = true;
            const r = await api.submitBookings([{ child_id: it.child_id,
                                                  session_id: it.session_id,
                                                  waitlist: true }], key);
            const x = r.ok && r.data && r.data.items ? r.data.items[0]
                : { error: r.error ? r.error.message
                                   : "Inscription impossible." };
            R.joined.set(k, x);
            announce(words + " : " + joinedWords(x));
            drawResults();
            if (x.status === "confirmed" || x.status === "waitlisted") {
                load();
            }
        });
        return b;
    }

    /* A refusal "complet" may join the waiting list, but not a day of
     * a whole-week activity (a promotion of one day would be refused). */
    function canWait(it, s) {
        const a = s ? activities.find((x) => x.id === s.activity_id) : null;
        return it.status === "refused" && it.reason === "full"
               && !(a && a.week_required);
    }

    function joinedWords(x) {
        return x.status === "waitlisted"
            ? "Inscrit : " + P.waitWords(x.position)
            : x.status === "confirmed" ? "Une place s'est libérée : réservé"
            : x.error ? x.error : P.reasonText(x, F.instant);
    }

    /* -- validation ---------------------------------------------------- */

    /*
     * What the engine would refuse for sure, said before anything is sent:
     * two selected cells of one child that overlap (ALSH Repas and Klub
     * Repas), a whole week that is not whole.  Sessions are those seen on
     * the grid (R.index).
     */
    function blockers() {
        const out = [];
        const byChild = new Map();
        for (const it of R.pending.values()) {
            const s = R.index.get(it.session_id);
            if (s) {
                if (!byChild.has(it.child_id)) {
                    byChild.set(it.child_id, []);
                }
                byChild.get(it.child_id).push(s);
            }
        }
        const seen = Array.from(R.index.values());
        for (const [cid, list] of byChild) {
            const child = who(cid);
            for (let i = 0; i < list.length; i++) {
                for (let j = i + 1; j < list.length; j++) {
                    const [x, y] = [list[i], list[j]];
                    if (x.date === y.date && P.overlaps(x, y)) {
                        out.push(child.first_name + ", " + F.dayLong(x.date)
                            + " : « " + actName(x) + " » (" + P.labelOf(x)
                            + ", " + F.time(x.starts_at) + "–"
                            + F.time(x.ends_at) + ") et « " + actName(y)
                            + " » (" + P.labelOf(y) + ", "
                            + F.time(y.starts_at) + "–" + F.time(y.ends_at)
                            + ") se chevauchent : un enfant ne peut être "
                            + "que dans une activité par créneau. Retirez "
                            + "l'une des deux.");
                    }
                }
            }
            const weeks = new Set();
            for (const x of list) {
                const a = actOf(x);
                const wk = x.activity_id + "|" + x.unit + "|"
                           + F.mondayOf(x.date);
                if (!a || !a.week_required || weeks.has(wk)) {
                    continue;
                }
                weeks.add(wk);
                const gap = P.weekOf(x, seen.filter((y) =>
                    y.activity_id === x.activity_id)).find((y) =>
                    !R.pending.has(keyOf(cid, sidOf(y))));
                if (gap) {
                    const st = stateOf(gap, child).state;
                    out.push("La semaine complète est obligatoire pour « "
                        + a.name + " » : " + child.first_name + " n'a pas "
                        + "le " + cellWords(gap)
                        + (P.selectable(st) ? " dans la sélection"
                           : " (" + STATE_WORDS[st].toLowerCase() + ")")
                        + ". Complétez la semaine du "
                        + F.dayLong(F.mondayOf(x.date))
                        + " ou retirez-la de la sélection.");
                }
            }
        }
        return out;
    }

    /* DELETE /api/bookings/{id}, again after a network error or a 503
     * (a cancellation is asked once more: the second finds it gone). */
    async function cancelOne(b) {
        let r;
        for (let attempt = 1; attempt <= 4; attempt++) {
            r = await api.del("/api/bookings/"
                              + encodeURIComponent(b.booking_id));
            if (r.status !== 0 && r.status !== 503) {
                break;
            }
            await api.sleep(Math.min(8, r.retryAfter || attempt) * 1000);
        }
        if (r.status === 401) {
            return null;
        }
        return { b, ok: r.ok, billed: r.ok && r.data ? !!r.data.billed
                                                      : false,
                 error: r.ok ? null : r.status === 404
                     ? "déjà annulée ou inconnue" : r.error.message };
    }

    /* The swaps "Valider" will send: each booking to cancel whose slot
     * a picked cell of the same child needs (the same day, overlapping)
     * is replaced by that cell (issue 24): pending key -> booking. */
    function swapPlan() {
        const swaps = new Map();
        const pend = Array.from(R.pending.values());
        for (const b of R.cancels.values()) {
            const it = pend.find((x) => {
                const s = R.index.get(x.session_id);
                return !swaps.has(keyOf(x.child_id, x.session_id))
                       && x.child_id === b.child_id && s
                       && s.date === b.date && b.starts_at
                       && P.overlaps(s, b);
            });
            if (it) {
                swaps.set(keyOf(it.child_id, it.session_id), b);
            }
        }
        return swaps;
    }

    async function submit() {
        if (R.inFlight || (R.pending.size === 0 && R.cancels.size === 0)) {
            return;
        }
        const why = R.pending.size ? blockers() : [];
        sendWarn.replaceChildren();
        if (why.length > 0) {
            sendWarn.replaceChildren(h("div", { class: "alerte",
                                                role: "alert" },
                h("p", {}, "Rien n'a été envoyé :"),
                h("ul", {}, why.map((w) => h("li", {}, w)))));
            return;
        }
        /* A booking to cancel whose slot a new cell of the same child
         * needs is not cancelled then booked again (the place could be
         * lost in between): the new cell replaces it, one swap in the
         * booking request (issue 24, docs/api.md): the new place first,
         * the old one released only if the new one is confirmed.  The
         * other cancellations wait for the bookings. */
        const dels = Array.from(R.cancels.values());
        const pend = Array.from(R.pending.values());
        const swaps = swapPlan();           /* pending key -> booking */
        const swapped = Array.from(swaps.values());
        const last = dels.filter((b) => !swapped.includes(b));
        const items = pend.map((it) => {
            const b = swaps.get(keyOf(it.child_id, it.session_id));
            return b ? Object.assign({}, it, { replaces: b.booking_id })
                     : it;
        });
        /* At most MAX_ITEMS cells a request (guichet_max_items, 400 by
         * default), a whole week never split; a template over a school
         * year for two children (about 300 cells) is one request. */
        const parts = P.batches(items, (x) => R.index.get(x), MAX_ITEMS);

        R.inFlight = true;
        R.progress = { done: 0, total: R.pending.size + last.length };
        validate.disabled = true;
        validate.textContent = "Envoi en cours…";
        R.answer = null;
        results.replaceChildren(alertBox("Envoi de votre demande…", "info"));
        const out = { requests: [], cancels: [], error: null };
        const step = () => {
            drawBar(activity(), children.filter((c) =>
                R.children.has(c.id)));
        };
        step();
        let expired = false;
        const cancelAll = async (list) => {
            for (const b of list) {
                const x = await cancelOne(b);
                if (x === null) {
                    expired = true;
                    return;
                }
                out.cancels.push(x);
                R.progress.done++;
                step();
            }
        };

        for (const part of expired ? [] : parts) {
            const sig = JSON.stringify(part);
            if (!R.idem.has(sig)) {
                R.idem.set(sig, api.newIdempotencyKey());
            }
            const r = await api.submitBookings(part, R.idem.get(sig),
                (wait) => {
                    results.replaceChildren(alertBox(
                        "Service très sollicité : nouvel essai dans "
                        + Math.ceil(wait) + " s. Votre demande ne sera pas "
                        + "enregistrée deux fois.", "info"));
                });
            if (r.status === 401) {
                expired = true;
                break;
            }
            if (r.ok && r.data) {
                R.idem.delete(sig);
                out.requests.push(r.data);
                /* a swap's old booking: released with the new one
                 * confirmed, else kept as it was */
                for (const it of r.data.items || []) {
                    const b = it.replaces && swaps.get(
                        keyOf(it.child_id, it.session_id));
                    if (b) {
                        out.cancels.push(it.status === "confirmed"
                            ? { b, ok: true, swap: true,
                                billed: !!(it.released
                                           && it.released.billed),
                                error: null }
                            : { b, ok: false, swap: true, billed: false,
                                error: "conservée : la nouvelle séance "
                                       + "n'a pas pu être réservée" });
                    }
                }
                R.progress.done += part.length;
                step();
                continue;
            }
            if (r.status === 422) {
                R.idem.delete(sig);
            }
            out.error = r.status === 0 || r.status === 503
                ? "Le service est momentanément indisponible : "
                  + (out.requests.length ? "une partie de votre sélection "
                     + "n'a pas été envoyée. " : "rien n'a été réservé pour "
                     + "l'instant. ")
                  + "Cliquez à nouveau sur « Valider mes réservations » : "
                  + "votre demande ne sera pas enregistrée deux fois."
                : r.error.message;
            break;
        }
        if (!out.error && !expired) {
            await cancelAll(last);
        }

        R.inFlight = false;
        R.progress = null;
        validate.replaceChildren(...validateWords());
        if (expired) {
            return ctx.expired();
        }

        /* booked cells leave the selection; refused ones stay, marked,
         * while they can still be picked; cancelled ones leave too */
        R.results.clear();
        for (const it of out.requests.flatMap((x) => x.items || [])) {
            R.results.set(keyOf(it.child_id, it.session_id), it);
            if (it.status === "entered") {
                R.entered.add(keyOf(it.child_id, it.session_id));
            }
            if (it.status === "confirmed") {
                R.pending.delete(keyOf(it.child_id, it.session_id));
            }
        }
        for (const x of out.cancels) {
            const k = keyOf(x.b.child_id, x.b.session_id);
            if (x.ok || x.swap || x.error === "déjà annulée ou inconnue") {
                R.cancels.delete(k);
            }
        }
        R.answer = out;
        R.total = null;
        if (out.requests.length || out.cancels.length) {
            await load();
            for (const [k, it] of R.pending) {
                const s = R.index.get(it.session_id);
                if (!s || (R.sessions.includes(s)
                           && !P.selectable(stateOf(s,
                                                    who(it.child_id)).state))) {
                    R.pending.delete(k);
                }
            }
        }
        draw();
        results.focus();
        const ids = out.requests.map((x) => x.request_id).filter(Boolean);
        announce(ids.length ? "Demande N° " + ids.join(", ") + " traitée."
                 : out.error || (out.requests.length
                     ? P.unrecordedTitle(out.requests.flatMap((x) =>
                         x.items || [])) + "."
                     : "Annulations traitées."));
    }

    schedulePoll();
    await load();
}

/* "Valider mes réservations", the last words only visually hidden on a
 * phone (the bar stays one line of buttons; the name stays whole). */
function validateWords() {
    return ["Valider", h("span", { class: "sur-grand" }, " mes réservations")];
}

function legend() {
    const item = (cls, word) => h("li", {},
        h("span", { class: "case " + cls }, word));
    return h("details", { class: "outil" },
        h("summary", {}, "Légende du planning"),
        h("ul", { class: "legende" },
          item("libre", "Libre (places en ligne)"),
          item("libre choisi", "Sélectionné, en attente de validation"),
          item("libre resultat-ko", "Refusé : le motif est écrit dans "
                                    + "la case"),
          item("reserve", "Déjà réservé (touchez pour annuler)"),
          item("reserve annuler", "À annuler : sans frais ou facturée "
                                  + "selon le délai d'annulation"),
          item("complet", "Complet"),
          h("li", {}, h("span", { class: "case complet" }, "Complet",
                        h("span", { class: "places attente" },
                          P.waitWords(2)))),
          item("conflit", "Conflit (i) : déjà inscrit sur ce créneau"),
          item("ferme", "Fermé : délai dépassé"),
          item("pas_ouvert", "Pas encore ouvert"),
          item("tirage", "Tirage au sort : les demandes sont tirées au "
                         + "sort à l'ouverture"),
          item("inscrit_tirage", "Inscrit au tirage au sort : le résultat "
                                 + "à l'ouverture"),
          item("hors_age", "Âge hors tranche"),
          item("non_inscrit", "Inscription non validée"),
          item("ferie", "Férié : pas de séance"),
          item("tout-cocher", "Tout / Aucun : cocher ou décocher une "
                              + "ligne ou une colonne")));
}
