/*
 * tirage-pur.test.mjs -- the website's words and cell states of an
 * opening by draw (issue 23; web/js/planning.js) without a browser: a
 * session in its entry window is "Tirage au sort" and may be picked, a
 * session whose draw is being decided may not, and an entered item reads
 * "Inscrit au tirage au sort du <jour> à 18:00".
 */

import { test } from "node:test";
import assert from "node:assert/strict";
import * as P from "../../web/js/planning.js";
import * as F from "../../web/js/format.js";

const child = { id: "c1", birth_date: "2018-03-04" };
const act = { age_min: 3, age_max: 17 };

function session(status) {
    return { id: "s1", date: "2027-07-07", status, places_left: 10,
             starts_at: "2027-07-07T08:30:00+02:00",
             ends_at: "2027-07-07T12:00:00+02:00" };
}

test("a draw's entry window is picked, its decision is waited for", () => {
    const entries = P.cellState(session("draw_entries"), child, [], act);
    assert.equal(entries.state, "tirage");
    assert.equal(P.selectable(entries.state), true);
    const pending = P.cellState(session("draw_pending"), child, [], act);
    assert.equal(pending.state, "tirage_en_cours");
    assert.equal(P.selectable(pending.state), false);
    /* a booking the draw gave shows as booked */
    const held = P.cellState(session("open"), child,
                             [{ child_id: "c1", session_id: "s1" }], act);
    assert.equal(held.state, "reserve");
});

test("an entered item says when the draw is", () => {
    const words = P.drawWords({ status: "entered",
                                draw_at: "2026-06-07T18:00:00+02:00" },
                              F.instant);
    assert.match(words, /^Inscrit au tirage au sort du .*7 juin 2026 .*18:00$/);
});

test("the cells entered in a draw, from the demandes", () => {
    const got = P.enteredCells([
        { request_id: "D-000003", status: "traitee_positivement",
          items: [{ child_id: "c1", session_id: "n1", status: "confirmed" }] },
        { request_id: "D-000002", status: "deposee",
          items: [{ child_id: "c1", session_id: "d1", status: "entered",
                    draw_at: "2026-06-07T18:00:00+02:00" },
                  { child_id: "c2", session_id: "d1", status: "entered" }] },
        { request_id: "D-000001", status: "traitee_negativement",
          items: [{ child_id: "c1", session_id: "d2", status: "refused",
                    reason: "not_open_yet" }] }]);
    assert.deepEqual([...got].sort(), ["c1|d1", "c2|d1"]);
    assert.equal(P.enteredCells(null).size, 0);
});
