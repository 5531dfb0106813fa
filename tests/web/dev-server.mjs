/*
 * dev-server.mjs -- a DEVELOPMENT AID ONLY: serves web/ and fakes the
 * /api/ endpoints of API.md from in-memory demo data, so that the website
 * can be built and its browser tests written while the real stack (nginx
 * module + Redis + worker) is being finished.  It is not the product and
 * its rules are a rough sketch of the engine's.
 *
 *   node dev-server.mjs            # http://127.0.0.1:8089/
 *   PORT=9000 OPENS_IN=90 node dev-server.mjs
 *
 * Env: PORT, OPENS_IN (seconds until the ALSH vacations open, default 120),
 * MISSING=requests,invoices,absences,payments (answer 404 there),
 * FAIL_503=n (the first n POST /api/bookings answer 503 with Retry-After 1).
 */

import http from "node:http";
import fs from "node:fs";
import path from "node:path";
import crypto from "node:crypto";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)),
                          "../../web");
const PORT = Number(process.env.PORT || 8089);
const MISSING = new Set((process.env.MISSING || "").split(",")
                        .filter(Boolean));
let fail503 = Number(process.env.FAIL_503 || 0);

/* ---------------------------------------------------------------- */
/* Calendar helpers (Europe/Paris offsets approximated: +01/+02). */

const day = (d) => d.toISOString().slice(0, 10);
const addDays = (s, n) => {
    const d = new Date(s + "T00:00:00Z");
    d.setUTCDate(d.getUTCDate() + n);
    return day(d);
};
const wd = (s) => (new Date(s + "T00:00:00Z").getUTCDay() + 6) % 7;
function parisOffset(s) {
    const m = Number(s.slice(5, 7));
    return m >= 4 && m <= 10 ? "+02:00" : "+01:00";
}
const at = (s, hhmm) => s + "T" + hhmm + ":00" + parisOffset(s);

/* ---------------------------------------------------------------- */
/* Demo data */

const today = day(new Date());
const opensIn = Number(process.env.OPENS_IN || 120);
const family = {
    family_id: "f-martin", login: "martin", town: "Ville de démonstration",
    qf: 850, resident: true, direct_debit: false, representatives: [],
    children: [
        { id: "c-lea", first_name: "Léa", birth_date: "2016-03-14" },
        { id: "c-tom", first_name: "Tom", birth_date: "2018-05-02" },
    ],
    enrolments: [],
};
const PASSWORD = "secret-demo";

const units = {
    MATIN: ["08:30", "12:00"], REPAS: ["12:00", "13:30"],
    "APRES-MIDI": ["13:30", "17:30"],
};
const prices = [{ qf_max: 600, cents: 350 }, { qf_max: 1200, cents: 450 },
                { qf_max: null, cents: 600 }];

const activities = [
    { id: "a-merc", name: "Accueil de loisirs Mercredis",
      site: "Accueil de loisirs Arlequin", age_min: 3, age_max: 12,
      booking_opens_at: at(addDays(today, -30), "18:00"),
      deadline: { working_days: 2 }, week_required: false,
      online_share_percent: 50, prices,
      days: [2], units: ["MATIN", "REPAS", "APRES-MIDI"] },
    { id: "a-klub", name: "Activités et repas Klub 8-12 ans",
      site: "Espace jeunes", age_min: 8, age_max: 12,
      booking_opens_at: at(addDays(today, -30), "18:00"),
      deadline: { hours: 72 }, week_required: false,
      online_share_percent: 50,
      prices: [{ qf_max: null, cents: 500 }],
      days: [2], units: ["MATIN", "APRES-MIDI"],
      labels: { MATIN: "Danse latine",
                "APRES-MIDI": "Tournoi de jeux de société" },
      times: { MATIN: ["09:00", "12:00"], "APRES-MIDI": ["14:00", "17:00"] } },
    { id: "a-cantine", name: "Restauration scolaire", site: "École du Bourg",
      age_min: 3, age_max: 11, booking_opens_at: null,
      deadline: { day_before_at: "09:00" }, week_required: false,
      online_share_percent: 100, prices,
      days: [0, 1, 3, 4], units: ["REPAS"] },
    { id: "a-alsh", name: "ALSH Bourg vacances", site: "Centre de loisirs",
      age_min: 3, age_max: 12,
      booking_opens_at: new Date(Date.now() + opensIn * 1000).toISOString()
          .replace(/\.\d+Z$/, "Z"),
      deadline: { working_days: 9 }, week_required: true,
      online_share_percent: 50, prices,
      days: [0, 1, 2, 3, 4], units: ["MATIN", "REPAS", "APRES-MIDI"],
      from: addDays(today, 28), to: addDays(today, 41) },
];
for (const a of activities) {
    for (const c of family.children) {
        family.enrolments.push({ child_id: c.id, activity_id: a.id,
                                 activity_name: a.name,
                                 from: addDays(today, -60),
                                 to: addDays(today, 200),
                                 status: "validee" });
    }
}

const sessions = new Map();
for (const a of activities) {
    const from = a.from || addDays(today, -14);
    const to = a.to || addDays(today, 120);
    for (let d = from; d <= to; d = addDays(d, 1)) {
        if (!a.days.includes(wd(d))) {
            continue;
        }
        for (const u of a.units) {
            const t = (a.times && a.times[u]) || units[u];
            const s = {
                id: "s-" + a.id.slice(2) + "-" + d + "-" + u.toLowerCase(),
                activity_id: a.id, date: d, unit: u,
                label: (a.labels && a.labels[u]) || null,
                starts_at: at(d, t[0]), ends_at: at(d, t[1]),
                places_online: 12, left: 12,
            };
            sessions.set(s.id, s);
        }
    }
}

/* The 3rd Wednesday from today is full in the morning at Mercredis. */
const wednesdays = [];
for (let d = addDays(today, 1); wednesdays.length < 6; d = addDays(d, 1)) {
    if (wd(d) === 2) {
        wednesdays.push(d);
    }
}
for (const s of sessions.values()) {
    if (s.activity_id === "a-merc" && s.date === wednesdays[2]) {
        s.left = s.unit === "MATIN" ? 0 : 2;
    }
}

const bookings = new Map();
const requests = [];
let requestNo = 11106;
let bookingNo = 1;
const idem = new Map();

function activityOf(s) {
    return activities.find((a) => a.id === s.activity_id);
}

function closedNow(s) {
    /* Rough deadline: closed from two days before the session. */
    return s.date <= addDays(day(new Date()), 2);
}

function statusOf(s) {
    const a = activityOf(s);
    if (closedNow(s)) {
        return "closed";
    }
    if (a.booking_opens_at && Date.now() < Date.parse(a.booking_opens_at)) {
        return "not_open_yet";
    }
    return s.left > 0 ? "open" : "full";
}

function unitPrice(a) {
    const band = a.prices.find((p) => p.qf_max === null
                                      || family.qf <= p.qf_max);
    return band ? band.cents : 0;
}

function book(childId, s, requestId) {
    const b = { booking_id: "b-" + String(bookingNo++).padStart(6, "0"),
                child_id: childId, session_id: s.id, price_cents:
                unitPrice(activityOf(s)), request_id: requestId };
    s.left -= 1;
    bookings.set(b.booking_id, b);
    return b;
}

function bookingView(b) {
    const s = sessions.get(b.session_id);
    const a = activityOf(s);
    const c = family.children.find((x) => x.id === b.child_id);
    return { booking_id: b.booking_id, child_id: b.child_id,
             first_name: c.first_name, session_id: s.id, activity_id: a.id,
             date: s.date, unit: s.unit, label: s.label || s.unit,
             starts_at: s.starts_at, ends_at: s.ends_at,
             activity_name: a.name, price_cents: b.price_cents,
             request_id: b.request_id, status: "confirmed" };
}

/* Léa already holds Klub "Danse latine" on the 2nd Wednesday. */
book("c-lea", [...sessions.values()].find((s) => s.activity_id === "a-klub"
    && s.date === wednesdays[1] && s.unit === "MATIN"), "D-011105");
requests.push({ request_id: "D-011105", created_at: new Date(Date.now()
    - 86400000 * 3).toISOString(), type: "booking",
    status: "traitee_positivement", reasons: [] });

const invoices = [
    { id: "inv-2026-09", number: "2026-0912", period: "septembre 2026",
      total_cents: 4850, paid: true, due_date: "2026-09-30" },
    { id: "inv-2026-10", number: "2026-1047", period: "octobre 2026",
      total_cents: 6300, paid: false, due_date: "2026-10-31" },
];

/* ---------------------------------------------------------------- */
/* Booking rules (a sketch of the engine's) */

function overlaps(a, b) {
    return Date.parse(a.starts_at) < Date.parse(b.ends_at)
           && Date.parse(b.starts_at) < Date.parse(a.ends_at);
}

function ageOn(birth, d) {
    let age = Number(d.slice(0, 4)) - Number(birth.slice(0, 4));
    if (d.slice(5) < birth.slice(5)) {
        age--;
    }
    return age;
}

function processBooking(items) {
    const requestId = "D-" + String(++requestNo).padStart(6, "0");
    const out = items.map((it) => ({ child_id: it.child_id,
                                     session_id: it.session_id }));
    const held = [...bookings.values()];
    const taken = [];

    for (const o of out) {
        const s = sessions.get(o.session_id);
        const c = family.children.find((x) => x.id === o.child_id);
        const refuse = (reason, extra) => Object.assign(o,
            { status: "refused", reason }, extra || {});
        if (!s) { refuse("unknown_session"); continue; }
        const a = activityOf(s);
        const st = statusOf(s);
        if (!family.enrolments.some((e) => e.child_id === c.id
            && e.activity_id === a.id && e.status === "validee")) {
            refuse("not_enrolled"); continue;
        }
        const age = ageOn(c.birth_date, s.date);
        if (age < a.age_min || age > a.age_max) { refuse("age"); continue; }
        if (st === "not_open_yet") {
            refuse("not_open_yet", { opens_at: a.booking_opens_at }); continue;
        }
        if (st === "closed") { refuse("closed"); continue; }
        const mine = held.filter((b) => b.child_id === c.id)
            .map((b) => sessions.get(b.session_id)).concat(
                taken.filter((t) => t.child_id === c.id).map((t) => t.s));
        if (mine.some((x) => x.id === s.id)) {
            refuse("already_booked"); continue;
        }
        if (mine.some((x) => x.date === s.date && overlaps(x, s))) {
            refuse("conflict"); continue;
        }
        if (s.left - taken.filter((t) => t.s === s).length <= 0) {
            refuse("full"); continue;
        }
        taken.push({ child_id: c.id, s, o });
    }

    /* Whole week: every open day of the week for the unit, or nothing. */
    for (const t of taken.slice()) {
        const a = activityOf(t.s);
        if (!a.week_required) {
            continue;
        }
        const monday = addDays(t.s.date, -wd(t.s.date));
        const week = [...sessions.values()].filter((x) => x.activity_id
            === a.id && x.unit === t.s.unit && x.date >= monday
            && x.date <= addDays(monday, 6));
        const ok = week.every((x) => taken.some((y) => y.s === x
                                                 && y.child_id === t.child_id));
        if (!ok) {
            Object.assign(t.o, { status: "refused",
                                 reason: "week_incomplete" });
            taken.splice(taken.indexOf(t), 1);
        }
    }

    for (const t of taken) {
        const b = book(t.child_id, t.s, requestId);
        Object.assign(t.o, { status: "confirmed", booking_id: b.booking_id,
                             price_cents: b.price_cents });
    }
    const n = taken.length;
    const status = n === out.length ? "traitee_positivement"
        : n === 0 ? "traitee_negativement" : "partielle";
    requests.push({ request_id: requestId, created_at: new Date()
        .toISOString(), type: "booking", status,
        reasons: [...new Set(out.filter((o) => o.reason)
                                .map((o) => o.reason))], items: out });
    return { request_id: requestId, status, items: out };
}

/* ---------------------------------------------------------------- */
/* HTTP */

const TYPES = { ".html": "text/html; charset=utf-8",
                ".js": "text/javascript; charset=utf-8",
                ".mjs": "text/javascript; charset=utf-8",
                ".css": "text/css; charset=utf-8",
                ".svg": "image/svg+xml", ".png": "image/png",
                ".ico": "image/x-icon" };

const tokens = new Set();
const failures = { n: 0, until: 0 };

function send(res, status, body, headers) {
    const h = Object.assign({ "Cache-Control": "no-store" }, headers || {});
    if (body === undefined) {
        res.writeHead(status, h);
        res.end();
        return;
    }
    h["Content-Type"] = "application/json";
    res.writeHead(status, h);
    res.end(JSON.stringify(body));
}

function err(res, status, code, message, headers) {
    send(res, status, { error: { code, message } }, headers);
}

function token(req) {
    const m = /(?:^|;\s*)guichet_session=([^;]+)/.exec(req.headers.cookie
                                                       || "");
    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization || "");
    const t = m ? m[1] : bearer ? bearer[1] : null;
    return t && tokens.has(t) ? t : null;
}

async function readJson(req) {
    const chunks = [];
    for await (const c of req) {
        chunks.push(c);
    }
    const text = Buffer.concat(chunks).toString("utf8");
    try {
        return { ok: true, body: JSON.parse(text || "null"), text };
    } catch (e) {
        return { ok: false, text };
    }
}

async function api(req, res, url) {
    const p = url.pathname;
    const m = req.method;
    const unsafe = m !== "GET" && m !== "HEAD";
    if (unsafe && req.headers.origin
        && req.headers.origin !== "http://" + req.headers.host) {
        return err(res, 403, "bad_origin", "Origine de la requête refusée.");
    }

    if (p === "/api/session" && m === "POST") {
        if (Date.now() < failures.until) {
            return err(res, 429, "rate_limited", "Trop de tentatives.",
                       { "Retry-After": String(Math.ceil((failures.until
                                                          - Date.now())
                                                         / 1000)) });
        }
        const j = await readJson(req);
        if (!j.ok || !j.body) {
            return err(res, 400, "bad_json", "Le corps n'est pas du JSON.");
        }
        if (j.body.login !== family.login || j.body.password !== PASSWORD) {
            if (++failures.n >= 5) {
                failures.n = 0;
                failures.until = Date.now() + 60000;
            }
            return err(res, 401, "unauthenticated",
                       "Identifiant ou mot de passe incorrect.");
        }
        failures.n = 0;
        const t = crypto.randomBytes(16).toString("hex");
        tokens.add(t);
        return send(res, 200, { family_id: family.family_id, token: t,
                                expires_at: new Date(Date.now() + 3600e3)
                                    .toISOString() },
                    { "Set-Cookie": "guichet_session=" + t
                                    + "; Path=/; HttpOnly; SameSite=Strict" });
    }

    if (p === "/api/health") {
        return send(res, 200, { redis: "ok", postgres: "ok",
                                worker_lag_ms: 0 });
    }

    const t = token(req);
    if (!t) {
        return err(res, 401, "unauthenticated", "Connectez-vous.");
    }

    if (p === "/api/session" && m === "DELETE") {
        tokens.delete(t);
        return send(res, 204, undefined, {
            "Set-Cookie": "guichet_session=; Path=/; Max-Age=0" });
    }
    if (p === "/api/me" && m === "GET") {
        return send(res, 200, Object.assign({}, family, {
            prices: activities.map((a) => ({ activity_id: a.id,
                                             price_cents: unitPrice(a) })) }));
    }
    if (p === "/api/activities" && m === "GET") {
        return send(res, 200, activities.map((a) => ({
            id: a.id, name: a.name, age_min: a.age_min, age_max: a.age_max,
            site: a.site, booking_opens_at: a.booking_opens_at,
            deadline: a.deadline, week_required: a.week_required,
            online_share_percent: a.online_share_percent,
            prices: a.prices })));
    }
    let mm = /^\/api\/activities\/([^/]+)\/sessions$/.exec(p);
    if (mm && m === "GET") {
        const a = activities.find((x) => x.id === decodeURIComponent(mm[1]));
        if (!a) {
            return err(res, 404, "not_found", "Cette activité n'existe pas.");
        }
        const from = url.searchParams.get("from") || today;
        const to = url.searchParams.get("to") || addDays(from, 31);
        return send(res, 200, [...sessions.values()]
            .filter((s) => s.activity_id === a.id && s.date >= from
                           && s.date <= to)
            .sort((x, y) => x.starts_at.localeCompare(y.starts_at))
            .map((s) => ({ id: s.id, session_id: s.id, activity_id: a.id,
                           date: s.date, unit: s.unit,
                           label: s.label || s.unit, starts_at: s.starts_at,
                           ends_at: s.ends_at,
                           places_online: s.places_online,
                           places_left: Math.max(0, s.left),
                           status: statusOf(s),
                           /* the rough deadline of closedNow() */
                           cancel_until: addDays(s.date, -2)
                               + "T00:00:00+01:00" })));
    }
    if (p === "/api/bookings" && m === "GET") {
        const from = url.searchParams.get("from") || today;
        const to = url.searchParams.get("to") || addDays(from, 31);
        const list = [...bookings.values()].map(bookingView)
            .filter((b) => b.date >= from && b.date <= to)
            .sort((x, y) => x.starts_at.localeCompare(y.starts_at));
        return send(res, 200, { from, to, bookings: list,
                                total_cents: list.reduce((s, b) =>
                                    s + b.price_cents, 0) });
    }
    if (p === "/api/bookings" && m === "POST") {
        const key = req.headers["idempotency-key"];
        if (!key) {
            return err(res, 400, "idempotency_key_missing",
                       "L'en-tête Idempotency-Key est obligatoire.");
        }
        if (!/^[A-Za-z0-9_-]{1,64}$/.test(key)) {
            return err(res, 400, "invalid_field",
                       "Idempotency-Key : 1 à 64 caractères A-Z a-z 0-9 _ -.");
        }
        const j = await readJson(req);
        if (!j.ok || !j.body || !Array.isArray(j.body.items)
            || j.body.items.length < 1 || j.body.items.length > 200) {
            return err(res, 400, "invalid_field",
                       "Le champ \"items\" doit contenir 1 à 200 séances.");
        }
        if (fail503 > 0) {
            fail503--;
            return err(res, 503, "unavailable",
                       "Service momentanément indisponible : rien n'a été "
                       + "réservé.", { "Retry-After": "1" });
        }
        const prev = idem.get(key);
        if (prev) {
            if (prev.text !== JSON.stringify(j.body)) {
                return err(res, 422, "idempotency_key_reused",
                           "Cette clé a déjà servi pour une autre demande.");
            }
            return send(res, 200, prev.answer,
                        { "Idempotent-Replayed": "true" });
        }
        for (const it of j.body.items) {
            if (!family.children.some((c) => c.id === it.child_id)) {
                return err(res, 403, "forbidden",
                           "Cet enfant n'appartient pas à votre famille.");
            }
        }
        const answer = processBooking(j.body.items);
        idem.set(key, { text: JSON.stringify(j.body), answer });
        return send(res, 200, answer);
    }
    mm = /^\/api\/bookings\/([^/]+)$/.exec(p);
    if (mm && m === "DELETE") {
        const b = bookings.get(decodeURIComponent(mm[1]));
        if (!b) {
            return err(res, 404, "not_found", "Réservation introuvable.");
        }
        const s = sessions.get(b.session_id);
        const billed = closedNow(s);
        bookings.delete(b.booking_id);
        s.left += 1;
        requests.push({ request_id: "D-" + String(++requestNo)
            .padStart(6, "0"), created_at: new Date().toISOString(),
            type: "cancellation", status: "traitee_positivement",
            reasons: [], booking_id: b.booking_id, billed });
        return send(res, 200, { booking_id: b.booking_id,
                                status: "cancelled", billed });
    }
    if (p === "/api/absences" && m === "POST" && !MISSING.has("absences")) {
        const j = await readJson(req);
        if (!j.ok || !j.body || !bookings.has(j.body.booking_id)) {
            return err(res, 400, "invalid_field",
                       "Le champ \"booking_id\" est invalide.");
        }
        const rid = "D-" + String(++requestNo).padStart(6, "0");
        requests.push({ request_id: rid, created_at: new Date()
            .toISOString(), type: "justification",
            status: "traitee_positivement", reasons: [],
            booking_id: j.body.booking_id });
        return send(res, 200, { booking_id: j.body.booking_id,
                                status: "justified", billed: false,
                                request_id: rid });
    }
    if (p === "/api/waitlist" && m === "GET" && !MISSING.has("waitlist")) {
        return send(res, 200, { waitlist: [] });    /* issue 23: none */
    }
    if (p === "/api/requests" && m === "GET" && !MISSING.has("requests")) {
        return send(res, 200, requests.slice().reverse());
    }
    if (p === "/api/invoices" && m === "GET" && !MISSING.has("invoices")) {
        return send(res, 200, invoices);
    }
    mm = /^\/api\/invoices\/([^/]+)\.pdf$/.exec(p);
    if (mm && m === "GET" && !MISSING.has("invoices")) {
        const pdf = "%PDF-1.4\n% facture de démonstration\n%%EOF\n";
        res.writeHead(200, { "Content-Type": "application/pdf" });
        return res.end(pdf);
    }
    if (p === "/api/payments" && m === "POST" && !MISSING.has("payments")) {
        const j = await readJson(req);
        const ids = j.ok && j.body && Array.isArray(j.body.invoice_ids)
            ? j.body.invoice_ids : [];
        if (ids.length === 0) {
            return err(res, 400, "invalid_field",
                       "Le champ \"invoice_ids\" est vide.");
        }
        for (const i of ids) {
            const inv = invoices.find((x) => x.id === i);
            if (inv) {
                inv.paid = true;
            }
        }
        return send(res, 200, { status: "paid", invoice_ids: ids });
    }
    return err(res, 404, "not_found", "Ressource introuvable.");
}

function serveStatic(req, res, url) {
    let rel = decodeURIComponent(url.pathname);
    if (rel === "/") {
        rel = "/index.html";
    }
    const file = path.resolve(ROOT, "." + rel);
    if (!file.startsWith(ROOT + path.sep)) {
        res.writeHead(403);
        return res.end();
    }
    fs.readFile(file, (e, data) => {
        if (e) {
            res.writeHead(404, { "Content-Type": "text/plain" });
            return res.end("Introuvable");
        }
        res.writeHead(200, { "Content-Type": TYPES[path.extname(file)]
                                             || "application/octet-stream" });
        res.end(data);
    });
}

const server = http.createServer((req, res) => {
    const url = new URL(req.url, "http://" + req.headers.host);
    if (url.pathname.startsWith("/api/")) {
        api(req, res, url).catch((e) => {
            console.error(e);
            err(res, 500, "internal", "Erreur interne.");
        });
    } else {
        serveStatic(req, res, url);
    }
});

server.listen(PORT, "127.0.0.1", () => {
    console.log("dev-server: http://127.0.0.1:" + PORT + "/ (web/ = " + ROOT
                + ")");
});
