/*
 * planning.js -- the booking grid's rules, with no DOM: periods (mois,
 * quinzaine, semaine), the state of each cell for a child, slot conflicts
 * computed from the family's bookings, semaine type, copy to a sibling and
 * whole weeks.  app.js draws what these functions decide.
 *
 * A "cell" is one session (activité x date x unité) for one child.
 */

import { addDays, mondayOf, lastOfMonth, weekday, monthName, dayShort,
         ageOn } from "./format.js";

export const MODES = {
    mois: "Mois",
    quinzaine: "Quinzaine",
    semaine: "Semaine",
};

/* The period of a display mode that contains the day "anchor". */
export function periodOf(mode, anchor) {
    if (mode === "semaine") {
        const from = mondayOf(anchor);
        const to = addDays(from, 6);
        return { from, to,
                 label: "Semaine du " + dayShort(from) + " au "
                        + dayShort(to) + " " + to.slice(0, 4) };
    }
    const first = anchor.slice(0, 8) + "01";
    const last = lastOfMonth(anchor);
    if (mode === "quinzaine") {
        const firstHalf = Number(anchor.slice(8)) <= 15;
        const from = firstHalf ? first : anchor.slice(0, 8) + "16";
        const to = firstHalf ? anchor.slice(0, 8) + "15" : last;
        return { from, to,
                 label: (firstHalf ? "1re" : "2de") + " quinzaine de "
                        + monthName(first) };
    }
    return { from: first, to: last, label: monthName(first) };
}

/* The anchor of the previous (dir -1) or next (dir 1) period. */
export function shiftAnchor(mode, period, dir) {
    return dir > 0 ? addDays(period.to, 1) : addDays(period.from, -1);
}

export function overlaps(a, b) {
    const a0 = Date.parse(a.starts_at), a1 = Date.parse(a.ends_at);
    const b0 = Date.parse(b.starts_at), b1 = Date.parse(b.ends_at);
    return a0 < b1 && b0 < a1;
}

/*
 * The state of a session for a child:
 *   reserve   the child already holds this session
 *   conflit   the child holds an overlapping slot (any other session);
 *             "with" is that booking
 *   ferme     deadline passed (status closed)
 *   pas_ouvert booking not open yet (status not_open_yet)
 *   tirage    an opening by draw's entry window (status draw_entries):
 *             a request is entered in the draw, decided at the opening
 *   tirage_en_cours the draw is being decided (status draw_pending)
 *   complet   no online place left (status full, or places_left 0)
 *   hors_age  outside the activity's age band on that day
 *   libre     bookable
 * bookings: the family's bookings (GET /api/bookings) covering the date.
 */
export function cellState(session, child, bookings, activity) {
    const sid = session.id || session.session_id;
    const mine = bookings.filter((b) => b.child_id === child.id
                                        && b.status !== "cancelled");
    const held = mine.find((b) => (b.session_id || b.id) === sid);
    if (held) {
        return { state: "reserve", booking: held };
    }
    const clash = mine.find((b) => b.date === session.date
                                   && b.starts_at && overlaps(b, session));
    if (clash) {
        return { state: "conflit", with: clash };
    }
    if (session.status === "closed") {
        return { state: "ferme" };
    }
    if (session.status === "not_open_yet") {
        return { state: "pas_ouvert" };
    }
    if (session.status === "draw_entries") {
        return { state: "tirage" };
    }
    if (session.status === "draw_pending") {
        return { state: "tirage_en_cours" };
    }
    if (session.status === "full" || Number(session.places_left) <= 0) {
        return { state: "complet" };
    }
    if (activity && child.birth_date
        && Number.isFinite(activity.age_min)
        && Number.isFinite(activity.age_max)) {
        const age = ageOn(child.birth_date, session.date);
        if (age < activity.age_min || age > activity.age_max) {
            return { state: "hors_age" };
        }
    }
    return { state: "libre" };
}

/* Can the family pick this cell now (or before opening, to be ready)? */
export function selectable(state) {
    return state === "libre" || state === "pas_ouvert" || state === "tirage";
}

/*
 * Whole-week rule: the sessions of the same unit in the same week (Monday
 * to Sunday) as "session", among "sessions" (the open days the town
 * offers that week).
 */
export function weekOf(session, sessions) {
    const monday = mondayOf(session.date);
    return sessions.filter((s) => s.unit === session.unit
                                  && mondayOf(s.date) === monday);
}

/*
 * Semaine type: sessions of the period whose weekday (0 = lundi) is in
 * "days" and whose unit is in "units".  every = 1 (chaque semaine) or 2
 * (une semaine sur deux, counted from the first week of the period).
 */
export function semaineType(sessions, days, units, every, periodFrom) {
    const firstMonday = mondayOf(periodFrom);
    return sessions.filter((s) => {
        if (!days.includes(weekday(s.date)) || !units.includes(s.unit)) {
            return false;
        }
        if (every === 2) {
            const weeks = Math.round((Date.parse(mondayOf(s.date))
                                      - Date.parse(firstMonday))
                                     / (7 * 86400000));
            return weeks % 2 === 0;
        }
        return true;
    });
}

/* Units of a list of sessions, in the order of the day. */
export function unitsOf(sessions) {
    const seen = new Map();
    for (const s of sessions) {
        const prev = seen.get(s.unit);
        if (!prev || Date.parse(s.starts_at) < Date.parse(prev.starts_at)) {
            seen.set(s.unit, s);
        }
    }
    return Array.from(seen.values())
        .sort((a, b) => (a.starts_at || "").slice(11)
                        .localeCompare((b.starts_at || "").slice(11)))
        .map((s) => ({ code: s.unit, label: unitName(s.unit, sessions) }));
}

/* The unit's own French name as the town spells it: the API gives each
 * session the unit's label when the session has none of its own, and a
 * unit's label reads like its code ("Après-midi" for APM). */
function unitName(code, sessions) {
    const own = sessions.find((s) => s.unit === code && s.label
                                     && namesUnit(s.label, code)
                                     && plain(s.label) !== plain(code));
    return own ? own.label : unitLabel(code);
}

const plain = (x) => String(x || "").toLowerCase().normalize("NFD")
    .replace(/[^a-z]/g, "");

/* "Après-midi" names APM, "Repas" names REPAS, "Danse latine" does not
 * name MATIN: same first letter and the code's letters in order. */
function namesUnit(label, code) {
    const l = plain(label);
    const c = plain(code);
    if (!c || l[0] !== c[0]) {
        return false;
    }
    let i = 0;
    for (const ch of l) {
        if (ch === c[i]) {
            i++;
        }
    }
    return i === c.length;
}

const UNIT_LABELS = {
    MATIN: "Matin",
    REPAS: "Repas",
    SIESTE: "Sieste",
    APM: "Après-midi",
    "APRES-MIDI": "Après-midi",
    APRES_MIDI: "Après-midi",
    SOIR: "Soir",
    JOURNEE: "Journée",
};

/* The words for a session's unit: its own label ("Danse latine") when it
 * says more than the unit code, else the unit's French name. */
export function labelOf(s) {
    return ownLabel(s)
        || (s.label && plain(s.label) !== plain(s.unit) ? s.label
                                                        : unitLabel(s.unit));
}

/* The session's own label ("Danse latine"), null when it is only the
 * unit's name. */
export function ownLabel(s) {
    return s.label && !namesUnit(s.label, s.unit) ? s.label : null;
}

export function unitLabel(code) {
    return UNIT_LABELS[code] || String(code || "").toLowerCase()
        .replace(/^./, (c) => c.toUpperCase());
}

/*
 * Estimated price in cents of one unit for this family: the first band
 * whose qf_max is at least the family's QF; a missing QF gets the highest
 * band (DOMAIN.md).  null when the activity publishes no prices.
 */
export function unitPrice(activity, qf) {
    const prices = (activity && Array.isArray(activity.prices))
        ? activity.prices.slice() : [];
    if (prices.length === 0) {
        return null;
    }
    const top = prices.reduce((m, p) => Math.max(m, Number(p.cents) || 0), 0);
    if (qf === null || qf === undefined) {
        return top;
    }
    prices.sort((a, b) => (a.qf_max === null ? Infinity : a.qf_max)
                          - (b.qf_max === null ? Infinity : b.qf_max));
    const band = prices.find((p) => p.qf_max === null || qf <= p.qf_max);
    return band ? Number(band.cents) : top;
}

/* French words for each refusal reason of POST /api/bookings. */
export function reasonText(item, fmtInstant) {
    switch (item.reason) {
    case "full":
        return "Complet";
    case "conflict":
        return "Conflit : l'enfant est déjà inscrit sur ce créneau";
    case "already_booked":
        return "Déjà réservé";
    case "not_open_yet":
        return item.opens_at
            ? "Les réservations ouvrent le " + fmtInstant(item.opens_at)
            : "Les réservations ne sont pas encore ouvertes";
    case "closed":
        return "Délai dépassé";
    case "not_enrolled":
        return "Inscription non validée";
    case "age":
        return "Âge hors tranche";
    case "documents_missing":
        return "Pièces manquantes au dossier";
    case "unpaid_invoices":
        return "Factures impayées";
    case "week_incomplete":
        return "Semaine incomplète (cette activité se réserve à la "
               + "semaine complète)";
    case "unknown_session":
        return "Séance inconnue";
    case "unit_required":
        return "Le repas se réserve avec la matinée ou l'après-midi";
    default:
        return "Refusé" + (item.reason ? " (" + item.reason + ")" : "");
    }
}

/* The title of answers without a demande ("request_id": null: nothing
 * recorded, docs/api.md): every cell refused before the opening (the
 * not-yet-open shortcut), else the sold-out shortcut's "full". */
export function unrecordedTitle(items) {
    return items.length && items.every((i) => i.reason === "not_open_yet")
        ? "Pas encore ouvert : réessayez à l'heure d'ouverture"
        : "Complet : plus de place en ligne";
}

export const REQUEST_STATUS = {
    deposee: "Envoyée",
    traitee_positivement: "Acceptée",
    partielle: "Acceptée en partie",
    traitee_negativement: "Refusée",
};

/*
 * The periods a semaine type can be applied over, for the day "anchor"
 * (issue 24): the period shown, its month, its school term (septembre-
 * décembre, janvier-mars, avril-août) or its school year (1 September to
 * 31 August).  shown: periodOf() of the grid.
 */
export const SPANS = {
    affichee: "La période affichée",
    mois: "Le mois",
    trimestre: "Le trimestre scolaire",
    annee: "L'année scolaire",
};

export function spanOf(kind, anchor, shown) {
    const y = Number(anchor.slice(0, 4));
    const m = Number(anchor.slice(5, 7));
    if (kind === "mois") {
        return { from: anchor.slice(0, 8) + "01", to: lastOfMonth(anchor),
                 label: monthName(anchor) };
    }
    if (kind === "trimestre") {
        const [from, to, name] = m >= 9
            ? [y + "-09-01", y + "-12-31", "1er trimestre " + y + "-"
               + (y + 1)]
            : m <= 3
            ? [y + "-01-01", y + "-03-31", "2e trimestre " + (y - 1) + "-"
               + y]
            : [y + "-04-01", y + "-08-31", "3e trimestre " + (y - 1) + "-"
               + y];
        return { from, to, label: name };
    }
    if (kind === "annee") {
        const start = m >= 9 ? y : y - 1;
        return { from: start + "-09-01", to: (start + 1) + "-08-31",
                 label: "année scolaire " + start + "-" + (start + 1) };
    }
    return { from: shown.from, to: shown.to, label: shown.label };
}

/*
 * Cancelling a booking of this session now: billed (a late cancellation,
 * the booking stays on the invoice) when now is at or after the session's
 * cancel_until, as DELETE /api/bookings/{id} decides (docs/rules.md).
 * billed null when the server gave no cancel_until.
 */
export function cancelCost(session, nowMs) {
    const until = session && session.cancel_until
        ? Date.parse(session.cancel_until) : NaN;
    if (Number.isNaN(until)) {
        return { billed: null, until: null };
    }
    return { billed: nowMs >= until, until: session.cancel_until };
}

/*
 * The cells of a validation cut into requests the API accepts (at most
 * "max" items each, guichet_max_items): the cells of one child, activity,
 * unit and week stay in the same request, so that a whole week
 * (week_required) is never split.  sessionOf(id) gives a cell's session
 * (null: its own group).  Order is kept inside a request.
 */
export function batches(items, sessionOf, max) {
    const groups = new Map();
    for (const it of items) {
        const s = sessionOf(it.session_id);
        const g = s ? it.child_id + "|" + s.activity_id + "|" + s.unit + "|"
                      + mondayOf(s.date)
                    : it.child_id + "|" + it.session_id;
        if (!groups.has(g)) {
            groups.set(g, []);
        }
        groups.get(g).push(it);
    }
    const out = [];
    let cur = [];
    for (const g of groups.values()) {
        if (cur.length + g.length > max && cur.length > 0) {
            out.push(cur);
            cur = [];
        }
        for (let i = 0; i < g.length; i += max) {
            const part = g.slice(i, i + max);
            if (cur.length + part.length > max) {
                out.push(cur);
                cur = [];
            }
            cur.push(...part);
        }
    }
    if (cur.length > 0) {
        out.push(cur);
    }
    return out;
}

/*
 * The family's price of one cell of an activity: the server's
 * (GET /api/me "prices", computed by the engine's gch_price_cents), or,
 * from a server that does not send it, the estimate of unitPrice().
 */
export function priceFor(me, activity) {
    const list = me && Array.isArray(me.prices) ? me.prices : null;
    if (list && activity) {
        const p = list.find((x) => x.activity_id === activity.id);
        if (p && Number.isFinite(p.price_cents)) {
            return p.price_cents;
        }
    }
    return unitPrice(activity, me ? me.qf : null);
}

/*
 * What is already known to be refused for a cell about to be sent, so the
 * family can fix it first (null: nothing known).  docs: the family's
 * documents (GET /api/documents), null when unknown.
 */
export function knownRefusal(session, child, activity, me, docs) {
    if (session.status === "closed") {
        return "closed";
    }
    const list = me && Array.isArray(me.enrolments) ? me.enrolments : [];
    if (list.length > 0 && !list.some((e) =>
        e.child_id === child.id && e.activity_id === session.activity_id
        && e.status === "validee" && (!e.from || e.from <= session.date)
        && (!e.to || session.date <= e.to))) {
        return "not_enrolled";
    }
    const need = activity && Array.isArray(activity.required_documents)
        ? activity.required_documents : [];
    if (docs && need.some((type) => !docs.some((d) =>
        d.type === type && d.status === "acceptee"
        && (!d.child_id || d.child_id === child.id)
        && (!d.valid_from || d.valid_from <= session.date)
        && (!d.valid_to || session.date <= d.valid_to)))) {
        return "documents_missing";
    }
    return null;
}


/* "3ᵉ sur la liste d'attente" (issue 23) */
/*
 * The cells entered in a draw not decided yet, from the family's demandes
 * (GET /api/requests, newest first): a Set of "<child>|<session>".
 */
export function enteredCells(requests) {
    const out = new Set();
    for (const d of Array.isArray(requests) ? requests : []) {
        for (const it of d.items || []) {
            if (it.status === "entered") {
                out.add(it.child_id + "|" + it.session_id);
            }
        }
    }
    return out;
}

/* An item entered in a draw (issue 23): "Inscrit au tirage au sort du
 * dimanche 7 juin 2026 à 18:00". */
export function drawWords(item, fmtInstant) {
    return "Inscrit au tirage au sort du " + fmtInstant(item.draw_at);
}

export function waitWords(position) {
    const n = Number(position) || 0;
    return (n === 1 ? "1ᵉʳ" : n + "ᵉ") + " sur la liste d'attente";
}
