/*
 * planning-pur.test.mjs -- the planning's pure rules of issue 24
 * (web/js/planning.js) without a browser: the periods a semaine type is
 * applied over, the cost of cancelling a booking now, the cutting of a
 * validation into requests the API accepts, the family's price, and what
 * is known to be refused before sending.
 */

import { test } from "node:test";
import assert from "node:assert/strict";
import * as P from "../../web/js/planning.js";

const shown = { from: "2027-02-15", to: "2027-02-21", label: "semaine" };

test("spanOf: month, school term, school year, the period shown", () => {
    assert.deepEqual(P.spanOf("mois", "2027-02-17", shown),
                     { from: "2027-02-01", to: "2027-02-28",
                       label: P.spanOf("mois", "2027-02-17", shown).label });
    const t1 = P.spanOf("trimestre", "2026-10-05", shown);
    assert.equal(t1.from + " " + t1.to, "2026-09-01 2026-12-31");
    const t2 = P.spanOf("trimestre", "2027-02-17", shown);
    assert.equal(t2.from + " " + t2.to, "2027-01-01 2027-03-31");
    const t3 = P.spanOf("trimestre", "2027-05-03", shown);
    assert.equal(t3.from + " " + t3.to, "2027-04-01 2027-08-31");
    const y1 = P.spanOf("annee", "2027-02-17", shown);
    assert.equal(y1.from + " " + y1.to, "2026-09-01 2027-08-31");
    assert.match(y1.label, /2026-2027/);
    const y2 = P.spanOf("annee", "2027-09-01", shown);
    assert.equal(y2.from + " " + y2.to, "2027-09-01 2028-08-31");
    const a = P.spanOf("affichee", "2027-02-17", shown);
    assert.equal(a.from + " " + a.to, shown.from + " " + shown.to);
});

test("cancelCost: free before cancel_until, billed from it", () => {
    const s = { cancel_until: "2027-02-10T00:00:00+01:00" };
    const at = Date.parse("2027-02-10T00:00:00+01:00");
    assert.deepEqual(P.cancelCost(s, at - 1),
                     { billed: false, until: s.cancel_until });
    assert.equal(P.cancelCost(s, at).billed, true);
    assert.equal(P.cancelCost({}, at).billed, null);
    assert.equal(P.cancelCost(null, at).billed, null);
});

test("batches: at most max a request, a child's week never split", () => {
    /* two children, 40 weeks, Monday..Thursday: 320 cells */
    const sessions = new Map();
    const items = [];
    for (const child of ["lea", "hugo"]) {
        for (let w = 0; w < 40; w++) {
            for (let d = 0; d < 4; d++) {
                const day = new Date(Date.UTC(2026, 8, 7 + 7 * w + d))
                    .toISOString().slice(0, 10);
                const id = "peri-" + day + "-MATIN";
                sessions.set(id, { id, activity_id: "peri", unit: "MATIN",
                                   date: day });
                items.push({ child_id: child, session_id: id });
            }
        }
    }
    const parts = P.batches(items, (id) => sessions.get(id), 200);
    assert.equal(parts.length, 2);
    assert.ok(parts.every((p) => p.length <= 200), parts.map((p) =>
        p.length).join(" "));
    assert.equal(parts.flat().length, items.length);
    assert.deepEqual(new Set(parts.flat()), new Set(items));
    const week = (it) => it.child_id + P.weekOf(sessions.get(it.session_id),
        [...sessions.values()])[0].date;
    const where = new Map();
    parts.forEach((p, i) => p.forEach((it) => {
        const k = week(it);
        assert.ok(!where.has(k) || where.get(k) === i, "week split: " + k);
        where.set(k, i);
    }));
    assert.deepEqual(P.batches([], () => null, 200), []);
    assert.equal(P.batches(items.slice(0, 7), (id) => sessions.get(id), 3)
        .flat().length, 7);
});

test("priceFor: the server's price (GET /api/me), else the bands", () => {
    const act = { id: "peri", prices: [{ qf_max: 700, cents: 300 },
                                       { qf_max: null, cents: 500 }] };
    /* a non-resident family: the engine's price, not the resident band */
    assert.equal(P.priceFor({ qf: 800, prices: [{ activity_id: "peri",
                                                  price_cents: 800 }] },
                            act), 800);
    assert.equal(P.priceFor({ qf: 600 }, act), 300);
    assert.equal(P.priceFor({ qf: null }, act), 500);
});

test("knownRefusal: closed, enrolment not validated, document missing", () => {
    const child = { id: "lea" };
    const s = { activity_id: "peri", date: "2027-02-15", status: "open" };
    const me = { enrolments: [{ child_id: "lea", activity_id: "peri",
                                from: "2026-09-01", to: "2027-07-04",
                                status: "validee" }] };
    const act = { id: "peri", required_documents: ["fiche-sanitaire"] };
    const doc = { type: "fiche-sanitaire", status: "acceptee",
                  child_id: "lea", valid_from: null, valid_to: "2027-08-31" };
    assert.equal(P.knownRefusal(s, child, act, me, [doc]), null);
    assert.equal(P.knownRefusal({ ...s, status: "closed" }, child, act, me,
                                [doc]), "closed");
    assert.equal(P.knownRefusal({ ...s, date: "2027-07-05" }, child,
                                { id: "peri" }, me, null), "not_enrolled");
    assert.equal(P.knownRefusal(s, child, act, me, []), "documents_missing");
    assert.equal(P.knownRefusal(s, child, act, me,
                                [{ ...doc, status: "deposee" }]),
                 "documents_missing");
    assert.equal(P.knownRefusal(s, child, act, me,
                                [{ ...doc, valid_to: "2027-01-31" }]),
                 "documents_missing");
    /* documents unknown (no guichet-office): nothing said */
    assert.equal(P.knownRefusal(s, child, act, me, null), null);
});

test("unrecordedTitle: an answer without a demande says why", () => {
    const early = { status: "refused", reason: "not_open_yet",
                    opens_at: "2027-06-07T18:00:00+02:00" };
    assert.match(P.unrecordedTitle([early, early]), /^Pas encore ouvert/);
    assert.match(P.unrecordedTitle([{ status: "refused", reason: "full" }]),
                 /^Complet/);
    assert.match(P.unrecordedTitle([early, { status: "refused",
                                             reason: "full" }]), /^Complet/);
});
