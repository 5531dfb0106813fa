"""test_saga.py -- the booking saga's edges through the real stack: places
and claims given back by refusals and cancellations, whole weeks, the
reaper of orphaned attempts, idempotency records met half-way, metrics.

One custom town (below) on its own Stack; every test uses its own cells.
"""

import hashlib
import json
import time
import uuid

import pytest

import demande
from office_town import PDF

DAY = "2027-07-07"          # a Wednesday, far from any deadline


WK = ["2027-08-%02d" % d for d in (2, 3, 4, 5, 6)]


def town():
    units = [
        {"code": "MATIN", "label": "Matin", "starts": "08:30", "ends": "12:00"},
        {"code": "REPAS", "label": "Repas", "starts": "12:00", "ends": "13:30"},
        {"code": "APM", "label": "Après-midi", "starts": "13:30",
         "ends": "17:30"},
    ]

    def act(aid, sessions, week=False, **extra):
        a = {"id": aid, "name": "Activité " + aid, "age_min": 3,
             "age_max": 17,
             "booking_opens_at": "2026-01-01T18:00:00+01:00",
             "deadline": {"working_days": 2},
             "online_share_percent": 50, "week_required": week,
             "prices": [{"qf_max": 600, "cents": 300},
                        {"qf_max": None, "cents": 900}],
             "sessions": sessions}
        a.update(extra)
        return a

    def cells(prefix, unit, places=4, days=("2027-07-07",)):
        return [{"id": "%s-%s-%s" % (prefix, d.replace("-", ""), unit),
                 "date": d, "unit": unit, "places": places} for d in days]

    week = ["2027-07-%02d" % d for d in (5, 6, 7, 8, 9)]
    acts = [
        act("a", cells("a", "MATIN") + cells("a", "APM")
            + cells("a", "MATIN", 4, ["2027-07-08", "2027-07-15",
                                      "2027-07-16"])),
        act("b", cells("b", "MATIN") + cells("b", "REPAS")),
        act("w", cells("w", "MATIN", 10, week), week=True),
        # one activity per refusal reason, each on its own day
        act("d", cells("d", "APM", 10, ["2027-07-12"]),
            required_documents=["vaccinations"],
            blocks_unpaid_invoices=True),
        act("teen", cells("teen", "APM", 10, ["2027-07-13"]), age_min=12),
        act("x", cells("x", "APM", 10, ["2027-07-14"])),
        act("later", cells("later", "APM", 10, ["2027-07-15"]),
            booking_opens_at="2030-01-07T18:00:00+01:00"),
        act("past", cells("past", "APM", 10, ["2026-01-05"])),
        act("late", cells("late", "APM", 10, ["2027-07-19"]),
            cancel_deadline={"hours": 24 * 365}),
        act("sold", cells("sold", "REPAS", 2, ["2027-07-20"])),
        act("meal", cells("meal", "MATIN", 10, ["2027-07-22"])
            + cells("meal", "REPAS", 10, ["2027-07-22"]),
            unit_requires=[{"unit": "REPAS", "with_any": ["MATIN", "APM"]}]),
        # issue 22: a failed week next to another activity's cell
        act("wk", cells("wk", "MATIN", 10, WK), week=True),
        act("solo", cells("solo", "APM", 10, ["2027-08-04"])),
        act("nr", cells("nr", "APM", 10, ["2027-07-21"]),
            prices=[{"qf_max": None, "cents": 500}],
            non_resident_prices=[{"qf_max": None, "cents": 800}]),
    ]
    docs = {"f1": [{"type": "vaccinations", "valid_to": "2028-12-31"}],
            "f2": [{"type": "vaccinations", "valid_to": "2026-12-31"}],
            "f3": [],
            "f4": [{"type": "vaccinations"}]}

    families = []
    for i in range(1, 5):
        fid = "f%d" % i
        kids = [{"id": "%s-c%d" % (fid, k), "first_name": "Enfant%d" % k,
                 "birth_date": "2018-03-0%d" % k} for k in (1, 2)]
        families.append({
            "id": fid, "qf": 500 if i % 2 else None, "resident": i != 4,
            "direct_debit": False, "children": kids,
            "documents": docs[fid],
            "unpaid_invoices": 2 if fid == "f4" else 0,
            "enrolments": [{"child_id": c["id"], "activity_id": a,
                            "from": "2026-01-01", "to": "2027-08-31",
                            "status": "validee"}
                           for c in kids
                           for a in ("a", "b", "w", "d", "teen", "later",
                                     "past", "late", "sold", "nr",
                                     "meal", "wk", "solo")]})

    return {"town": {"name": "Saga", "timezone": "Europe/Paris"},
            "units": units, "activities": acts, "families": families}


@pytest.fixture(scope="module")
def s(make_stack):
    return make_stack(town(), name="saga")


@pytest.fixture(scope="module")
def tok(s):
    return s.tokens()


def book(s, token, items, idem=None):
    return s.http("POST", "/api/bookings", token=token,
                  headers={"Idempotency-Key": idem or uuid.uuid4().hex},
                  json={"items": [{"child_id": c, "session_id": sid}
                                  for c, sid in items]})


def left(s, sid):
    return s.redis.execute_command("BITFIELD", "{main}:s:%s:left" % sid,
                                   "GET", "u32", "0")[0]


def statuses(r):
    return [(i["status"], i.get("reason")) for i in r.json()["items"]]


def test_cancel_gives_the_place_back_and_frees_the_slot(s, tok):
    r = book(s, tok["f1"], [("f1-c1", "a-20270707-MATIN")])
    assert statuses(r) == [("confirmed", None)], r
    bid = r.json()["items"][0]["booking_id"]
    assert left(s, "a-20270707-MATIN") == 1

    # the slot is taken: the same child cannot be on b's MATIN
    r = book(s, tok["f1"], [("f1-c1", "b-20270707-MATIN")])
    assert statuses(r) == [("refused", "conflict")], r

    r = s.http("DELETE", "/api/bookings/" + bid, token=tok["f1"])
    assert r.status == 200, r
    assert r.json() == {"booking_id": bid, "status": "cancelled",
                        "billed": False}
    assert left(s, "a-20270707-MATIN") == 2

    r = book(s, tok["f1"], [("f1-c1", "b-20270707-MATIN")])
    assert statuses(r) == [("confirmed", None)], r

    planning = s.http("GET", "/api/bookings?from=%s&to=%s" % (DAY, DAY),
                      token=tok["f1"]).json()
    assert [b["session_id"] for b in planning["bookings"]
            if b["child_id"] == "f1-c1"] == ["b-20270707-MATIN"]

    s.wait_worker_drained()
    rows = dict(s.sql("select id, status from booking where id = %s",
                      (bid,)))
    assert rows == {bid: "cancelled"}

    # the family's demandes, newest first: the booking, the refusal, the
    # cancellation and the second booking, each with its number
    demandes = s.http("GET", "/api/requests", token=tok["f1"]).json()
    kinds = [(d["type"], d["status"]) for d in demandes[:4]]
    assert kinds == [("booking", "traitee_positivement"),
                     ("cancellation", "traitee_positivement"),
                     ("booking", "traitee_negativement"),
                     ("booking", "traitee_positivement")], demandes
    assert demandes[2]["reasons"] == ["conflict"]
    assert demandes[1]["booking_id"] == bid
    numbers = [d["number"] for d in demandes[:4]]
    assert numbers == sorted(numbers, reverse=True)
    assert all(d["request_id"] == "D-%06d" % d["number"]
               for d in demandes[:4])


def test_late_cancellation_is_billed_unless_justified(s, tok):
    """Activity 'late' takes bookings until 2 working days before, but
    cancellations only until a year before: cancelling now is late."""
    sid = "late-20270719-APM"
    r = book(s, tok["f3"], [("f3-c2", sid)])
    assert statuses(r) == [("confirmed", None)], r
    bid = r.json()["items"][0]["booking_id"]
    before = left(s, sid)

    r = s.http("DELETE", "/api/bookings/" + bid, token=tok["f3"])
    assert r.status == 200 and r.json()["billed"] is True, r
    assert left(s, sid) == before + 1       # the place is still released

    # another family cannot justify it; a bad reason is refused by field
    r = s.http("POST", "/api/absences", token=tok["f1"],
               json={"booking_id": bid, "reason": "medical"})
    assert r.status == 404, r
    r = s.http("POST", "/api/absences", token=tok["f3"],
               json={"booking_id": bid, "reason": "vacances"})
    assert r.status == 400 and r.json()["error"]["code"] == "invalid_field"
    assert "reason" in r.json()["error"]["message"]

    # the certificate must be one of the family's uploads (guichet-office)
    def certificate(family):
        r = s.http("POST", "/api/documents?type=certificat_medical",
                   token=tok[family], body=PDF,
                   headers={"Content-Type": "application/pdf"})
        assert r.status == 201, r
        return str(r.json()["id"])

    theirs, mine = certificate("f1"), certificate("f3")
    for doc in ("certificat-1", theirs):
        r = s.http("POST", "/api/absences", token=tok["f3"],
                   json={"booking_id": bid, "reason": "medical",
                         "document_id": doc})
        assert r.status == 400 and r.json()["error"]["code"] == \
            "invalid_field", r
        assert "document_id" in r.json()["error"]["message"]
    assert s.http("GET", "/api/requests",
                  token=tok["f3"]).json()[0]["type"] == "cancellation"

    r = s.http("POST", "/api/absences", token=tok["f3"],
               json={"booking_id": bid, "reason": "medical",
                     "document_id": mine})
    assert r.status == 200, r
    # the town examines it before it is un-billed (issue 25)
    assert r.json()["status"] == "en_examen" and r.json()["billed"] is True
    demandes = s.http("GET", "/api/requests", token=tok["f3"]).json()
    assert demandes[0]["type"] == "justification"
    assert demandes[0]["booking_id"] == bid

    # justified once: a second time finds nothing billed
    r = s.http("POST", "/api/absences", token=tok["f3"],
               json={"booking_id": bid, "reason": "medical"})
    assert r.status == 404, r


def test_cancel_twice_or_for_another_family_is_not_found(s, tok):
    r = book(s, tok["f2"], [("f2-c1", "a-20270708-MATIN")])
    bid = r.json()["items"][0]["booking_id"]

    r = s.http("DELETE", "/api/bookings/" + bid, token=tok["f3"])
    assert r.status == 404 and r.json()["error"]["code"] == "not_found"
    assert left(s, "a-20270708-MATIN") == 1

    assert s.http("DELETE", "/api/bookings/" + bid,
                  token=tok["f2"]).status == 200
    r = s.http("DELETE", "/api/bookings/" + bid, token=tok["f2"])
    assert r.status == 404, r
    assert left(s, "a-20270708-MATIN") == 2


def test_a_full_cell_releases_the_childs_slot(s, tok):
    sid = "a-20270707-APM"
    for c in ("f3-c1", "f3-c2"):
        assert statuses(book(s, tok["f3"], [(c, sid)])) == [
            ("confirmed", None)]
    assert left(s, sid) == 0

    r = book(s, tok["f4"], [("f4-c1", sid)])
    assert statuses(r) == [("refused", "full")]
    # nothing of the refused cell stays held
    assert s.redis.get("{main}:c:f4-c1:%s:q2" % DAY) is None
    assert left(s, sid) == 0

    sessions = s.http("GET", "/api/activities/a/sessions?from=%s&to=%s"
                      % (DAY, DAY)).json()
    apm = [x for x in sessions if x["id"] == sid][0]
    assert apm["places_left"] == 0 and apm["status"] == "full"


def test_each_cell_gets_its_own_reason(s, tok):
    r = book(s, tok["f1"], [("f1-c1", "d-20270712-APM"),
                            ("f1-c1", "teen-20270713-APM"),
                            ("f1-c1", "x-20270714-APM"),
                            ("f1-c1", "later-20270715-APM"),
                            ("f1-c1", "past-20260105-APM"),
                            ("f1-c1", "no-such-session"),
                            ("f1-c1", "d-20270712-APM")])
    assert r.status == 200, r
    assert statuses(r) == [("confirmed", None), ("refused", "age"),
                           ("refused", "not_enrolled"),
                           ("refused", "not_open_yet"),
                           ("refused", "closed"),
                           ("refused", "unknown_session"),
                           ("refused", "already_booked")], r
    items = r.json()["items"]
    assert items[3]["opens_at"] == "2030-01-07T18:00:00+01:00"
    assert items[0]["price_cents"] == 300          # QF 500: first band
    assert r.json()["status"] == "partielle"

    # the same cell again, later: already booked, nothing taken
    before = left(s, "d-20270712-APM")
    r = book(s, tok["f1"], [("f1-c1", "d-20270712-APM")])
    assert statuses(r) == [("refused", "already_booked")]
    assert left(s, "d-20270712-APM") == before


def test_documents_and_unpaid_invoices_gate_booking(s, tok):
    sid = "d-20270712-APM"
    before = left(s, sid)
    # f2's vaccinations expired before the session, f3 has none on file
    assert statuses(book(s, tok["f2"], [("f2-c1", sid)])) == [
        ("refused", "documents_missing")]
    assert statuses(book(s, tok["f3"], [("f3-c1", sid)])) == [
        ("refused", "documents_missing")]
    # f4 is in order for documents but owes two invoices
    assert statuses(book(s, tok["f4"], [("f4-c1", sid)])) == [
        ("refused", "unpaid_invoices")]
    assert left(s, sid) == before

    acts = {a["id"]: a for a in s.http("GET", "/api/activities").json()}
    assert acts["d"]["required_documents"] == ["vaccinations"]
    assert acts["d"]["blocks_unpaid_invoices"] is True
    # f4 pays no higher band: missing QF takes the highest one
    r = book(s, tok["f4"], [("f4-c2", "a-20270715-MATIN")])
    assert r.json()["items"][0]["price_cents"] == 900


def test_sold_out_cache_writes_nothing_and_its_staleness_is_bounded(s, tok):
    """guichet_full_cache (200 ms in dev.conf): once a worker saw a session
    full, requests for it alone are refused at once, without a demande and
    without writing; a place released is sold again after at most that."""
    sid = "sold-20270720-REPAS"                      # one place online
    assert statuses(book(s, tok["f2"], [("f2-c1", sid)])) == [
        ("confirmed", None)]
    assert left(s, sid) == 0

    # a refusal that reaches Redis marks the session full in that worker;
    # a few of them make sure both nginx workers have seen it
    for _ in range(6):
        r = book(s, tok["f3"], [("f3-c1", sid)])
        assert statuses(r) == [("refused", "full")], r

    cached = 0
    for _ in range(20):
        before = (s.redis.dbsize(), s.redis.xlen("{main}:stream"))
        r = book(s, tok["f3"], [("f3-c1", sid)])
        assert statuses(r) == [("refused", "full")], r
        if r.json()["request_id"] is None:
            cached += 1
            assert r.json()["status"] == "traitee_negativement"
            assert (s.redis.dbsize(),
                    s.redis.xlen("{main}:stream")) == before
    assert cached > 0, "no refusal came from the sold-out cache"

    # a place comes back: within the bound it may still be refused, after
    # it, it is sold
    bid = s.http("GET", "/api/bookings?from=2027-07-20&to=2027-07-20",
                 token=tok["f2"]).json()["bookings"]
    bid = [b["booking_id"] for b in bid if b["session_id"] == sid][0]
    assert s.http("DELETE", "/api/bookings/" + bid,
                  token=tok["f2"]).status == 200
    time.sleep(0.25)
    r = book(s, tok["f3"], [("f3-c1", sid)])
    assert statuses(r) == [("confirmed", None)], r


def test_a_meal_needs_a_morning_or_an_afternoon(s, tok):
    m, r = "meal-20270722-MATIN", "meal-20270722-REPAS"
    before = left(s, r)
    res = book(s, tok["f1"], [("f1-c2", r)])
    assert statuses(res) == [("refused", "unit_required")], res
    assert left(s, r) == before          # nothing held

    res = book(s, tok["f1"], [("f1-c2", r), ("f1-c2", m)])
    assert statuses(res) == [("confirmed", None), ("confirmed", None)], res

    # booked before, in another request: enough too
    assert statuses(book(s, tok["f3"], [("f3-c2", m)])) == [
        ("confirmed", None)]
    assert statuses(book(s, tok["f3"], [("f3-c2", r)])) == [
        ("confirmed", None)]


def test_non_residents_pay_their_own_bands(s, tok):
    sid = "nr-20270721-APM"
    r = book(s, tok["f1"], [("f1-c1", sid)])
    assert r.json()["items"][0]["price_cents"] == 500, r
    r = book(s, tok["f4"], [("f4-c1", sid)])          # f4 lives elsewhere
    assert r.json()["items"][0]["price_cents"] == 800, r
    acts = {a["id"]: a for a in s.http("GET", "/api/activities").json()}
    assert acts["nr"]["non_resident_prices"] == [{"qf_max": None,
                                                  "cents": 800}]


def test_two_cells_of_one_request_that_overlap(s, tok):
    r = book(s, tok["f4"], [("f4-c2", "a-20270707-MATIN"),
                            ("f4-c2", "b-20270707-MATIN"),
                            ("f4-c2", "b-20270707-REPAS")])
    assert statuses(r) == [("confirmed", None), ("refused", "conflict"),
                           ("confirmed", None)], r
    assert r.json()["status"] == "partielle"


def test_whole_week_is_all_or_nothing(s, tok):
    four = ["w-2027070%d-MATIN" % d for d in (5, 6, 7, 8)]
    before = [left(s, x) for x in four]
    r = book(s, tok["f2"], [("f2-c2", x) for x in four])
    assert r.status == 200
    assert set(statuses(r)) == {("refused", "week_incomplete")}
    assert r.json()["status"] == "traitee_negativement"
    assert [left(s, x) for x in four] == before

    five = four + ["w-20270709-MATIN"]
    r = book(s, tok["f2"], [("f2-c2", x) for x in five])
    assert set(statuses(r)) == {("confirmed", None)}, r


def test_a_failed_week_refuses_its_own_cells_only(s, tok):
    """Issue 22: an incomplete week is refused week_incomplete, the other
    activity's cell of the same request is booked."""
    four = ["wk-%s-MATIN" % d.replace("-", "") for d in WK[:4]]
    before = [left(s, x) for x in four]
    solo = "solo-20270804-APM"
    one = left(s, solo)
    r = book(s, tok["f4"], [("f4-c1", x) for x in four] + [("f4-c1", solo)])
    assert statuses(r) == [("refused", "week_incomplete")] * 4 + [
        ("confirmed", None)], r
    assert r.json()["status"] == "partielle"
    assert [left(s, x) for x in four] == before
    assert left(s, solo) == one - 1
    assert s.redis.get("{main}:c:f4-c1:2027-08-02:q0") is None


def test_a_full_day_after_step_one_gives_back_its_week_only(s, tok):
    """Step one took the week's places; one day was full: step two gives
    back exactly the other days' places and claims, and books the rest."""
    five = ["wk-%s-MATIN" % d.replace("-", "") for d in WK]
    full = five[2]
    saved = left(s, full)
    s.redis.execute_command("BITFIELD", "{main}:s:%s:left" % full, "SET", "u32",
                            "0", "0")
    try:
        before = [left(s, x) for x in five]
        solo = "solo-20270804-APM"
        one = left(s, solo)
        r = book(s, tok["f4"], [("f4-c2", x) for x in five]
                 + [("f4-c2", solo)])
        assert statuses(r) == [("refused", "week_incomplete")] * 2 + [
            ("refused", "full")] + [("refused", "week_incomplete")] * 2 + [
            ("confirmed", None)], r
        assert [left(s, x) for x in five] == before
        assert left(s, solo) == one - 1
        for d in WK:
            assert s.redis.get("{main}:c:f4-c2:%s:q0" % d) is None
        assert s.redis.get("{main}:c:f4-c2:2027-08-04:q2") is not None
    finally:
        s.redis.execute_command("BITFIELD", "{main}:s:%s:left" % full, "SET",
                                "u32", "0", str(saved))


def body_hash(body):
    return hashlib.blake2b(body.encode(), digest_size=16).hexdigest()


def test_same_key_while_in_progress_is_409_and_holds_nothing(s, tok):
    sid = "a-20270715-MATIN"
    body = json.dumps({"items": [{"child_id": "f1-c2", "session_id": sid}]})
    k = "inprog-" + uuid.uuid4().hex[:8]
    rec = "{main}:f:f1:idem:" + k
    s.redis.set(rec, "P %s %d []" % (body_hash(body),
                                     int(time.time() * 1000)), ex=60)
    before = left(s, sid)

    r = s.http("POST", "/api/bookings", token=tok["f1"],
               headers={"Idempotency-Key": k,
                        "Content-Type": "application/json"}, body=body)
    assert r.status == 409, r
    assert r.json()["error"]["code"] == "request_in_progress"
    assert left(s, sid) == before
    assert s.redis.get("{main}:c:f1-c2:2027-07-15:q0") is None

    other = json.dumps({"items": [{"child_id": "f1-c1",
                                   "session_id": sid}]})
    r = s.http("POST", "/api/bookings", token=tok["f1"],
               headers={"Idempotency-Key": k,
                        "Content-Type": "application/json"}, body=other)
    assert r.status == 422, r
    assert left(s, sid) == before
    s.redis.delete(rec)


def test_demande_list_stays_bounded_newest_first(s, tok):
    """Step two only LPUSHes the demande; the list is trimmed to the newest
    200 after an answer that found it longer than 250."""
    key = "{main}:f:f1:demandes"
    last = None
    for _ in range(260):
        r = book(s, tok["f1"], [("f1-c1", "b-20270707-MATIN")])
        assert r.status == 200, r
        last = r.json()["request_id"]
    # the trim follows the answer (fire and forget): give it a moment (a
    # bound, not a measure: a loaded machine may take seconds)
    deadline = time.time() + 30
    while time.time() < deadline and s.redis.llen(key) > 250:
        time.sleep(0.05)
    assert 200 <= s.redis.llen(key) <= 250
    demandes = s.http("GET", "/api/requests", token=tok["f1"]).json()
    assert demandes[0]["request_id"] == last
    numbers = [d["number"] for d in demandes]
    assert numbers == sorted(numbers, reverse=True)


def test_orphan_of_a_dead_nginx_worker_is_reaped(s, tok):
    """Step one happened, step two never will: the worker's reaper gives
    the claim and the place back after reap_after_ms."""
    sid = "a-20270716-MATIN"
    k = "orphan-" + uuid.uuid4().hex[:8]
    rec = "{main}:f:f2:idem:" + k
    claim = "{main}:c:f2-c1:2027-07-16:q0"
    bid = "b-00000000000000000000"
    old = int(time.time() * 1000) - 3600 * 1000
    plan = [{"s": sid, "c": "f2-c1", "b": bid, "q": [claim]}]
    r = s.redis
    r.set(rec, "P %s %d %s" % ("0" * 32, old, json.dumps(plan)), ex=3600)
    r.zadd("{main}:inflight", {rec: old})
    r.set(claim, "%s %s" % (sid, bid))
    r.execute_command("BITFIELD", "{main}:s:%s:left" % sid, "OVERFLOW", "FAIL",
                      "INCRBY", "u32", "0", "-1")
    assert left(s, sid) == 1

    deadline = time.time() + 60
    while time.time() < deadline and r.exists(rec):
        time.sleep(0.2)

    assert not r.exists(rec), "the reaper did not release the orphan"
    assert r.get(claim) is None
    assert r.zscore("{main}:inflight", rec) is None
    # the place comes back with the recount, recount_after_ms later
    deadline = time.time() + 30
    while time.time() < deadline and left(s, sid) != 2:
        time.sleep(0.2)
    assert left(s, sid) == 2
    assert r.zscore("{main}:recount", sid) is None

    # the parent retrying with the same key books afresh
    rr = book(s, tok["f2"], [("f2-c1", sid)], idem=k)
    assert statuses(rr) == [("confirmed", None)], rr


def test_orphan_with_the_modules_compact_plan_is_reaped(s, tok):
    """The same, with the record as the module writes it: its plan names
    the cells ("~q <n> <child> <session>", docs/architecture.md); the
    reaper derives the booking id (from the record's family and key) and
    the claim keys (from the catalogue), and deletes the claim still
    holding "<sid> <bid>"."""
    sid = "a-20270715-MATIN"
    k = "orphan-q-" + uuid.uuid4().hex[:8]
    rec = "{main}:f:f2:idem:" + k
    claim = "{main}:c:f2-c1:2027-07-15:q0"
    bid = demande.booking_id("f2", k, "f2-c1", sid)
    old = int(time.time() * 1000) - 3600 * 1000
    r = s.redis
    assert r.get(claim) is None
    before = left(s, sid)
    r.set(rec, "P %s %d ~q 1 5:f2-c1 %d:%s" % ("0" * 32, old, len(sid),
                                               sid), ex=3600)
    r.zadd("{main}:inflight", {rec: old})
    r.set(claim, "%s %s" % (sid, bid))
    r.execute_command("BITFIELD", "{main}:s:%s:left" % sid, "OVERFLOW", "FAIL",
                      "INCRBY", "u32", "0", "-1")

    deadline = time.time() + 60
    while time.time() < deadline and r.exists(rec):
        time.sleep(0.2)

    assert not r.exists(rec), "the reaper did not release the orphan"
    assert r.get(claim) is None
    deadline = time.time() + 30
    while time.time() < deadline and left(s, sid) != before:
        time.sleep(0.2)
    assert left(s, sid) == before

    rr = book(s, tok["f2"], [("f2-c1", sid)], idem=k)
    assert statuses(rr) == [("confirmed", None)], rr


def test_orphan_cancellation_is_finished_by_the_reaper(s, tok):
    """A cancellation whose nginx worker died between its guard (step
    two: SREM, HDEL, the "C" marker) and step three, written here as the
    module leaves it: the reaper finishes it -- the place back, the slot
    free.  Before the reaper looked for ":cancel:" (it looked for
    "}:cancel:", the layout before towns), it took the marker for a
    booking attempt and dropped it: the place was lost for good."""
    sid = "a-20270708-MATIN"
    r = book(s, tok["f3"], [("f3-c1", sid)])
    assert statuses(r) == [("confirmed", None)], r
    bid = r.json()["items"][0]["booking_id"]
    assert left(s, sid) == 1
    rd = s.redis
    old = int(time.time() * 1000) - 3600 * 1000
    marker = "{main}:f:f3:cancel:" + bid
    rd.srem("{main}:s:%s:booked" % sid, bid)
    rd.hdel("{main}:f:f3:bookings", bid)
    rd.set(marker, "C %d 0 %s f3-c1 %s" % (old, bid, sid), ex=3600)
    rd.zadd("{main}:inflight", {marker: old})

    deadline = time.time() + 30
    while time.time() < deadline and rd.exists(marker):
        time.sleep(0.2)
    assert not rd.exists(marker), "the reaper did not finish it"
    assert rd.zscore("{main}:inflight", marker) is None
    assert left(s, sid) == 2
    assert rd.get("{main}:c:f3-c1:2027-07-08:q0") is None


def test_metrics_count_outcomes(s):
    r = s.http("GET", "/metrics")
    assert r.status == 200
    text = r.body.decode()
    confirmed = [ln for ln in text.splitlines()
                 if ln.startswith('guichet_cells_total{outcome="confirmed"}')]
    assert confirmed and int(confirmed[0].split()[-1]) > 0
    assert "guichet_request_duration_seconds_bucket" in text
    assert 'reason="full"' in text
    # the stream and the worker, read from Redis at scrape time
    xlen = [ln for ln in text.splitlines()
            if ln.startswith("guichet_stream_length ")]
    assert xlen and int(xlen[0].split()[1]) == s.redis.xlen("{main}:stream")
    assert any(ln.startswith("guichet_worker_lag_seconds ")
               for ln in text.splitlines())


def test_metrics_add_up_every_workers_requests(s):
    """Each nginx worker counts in a slot of its own: /metrics adds them
    all up, whichever worker answers the scrape."""
    def ok_total():
        r = s.http("GET", "/metrics")
        assert r.status == 200
        for ln in r.body.decode().splitlines():
            if ln.startswith('guichet_requests_total{class="2xx"} '):
                return int(ln.split()[-1])
        raise AssertionError("no 2xx counter: " + r.body.decode()[:300])

    before = ok_total()
    # fresh connections: the workers share them
    for _ in range(24):
        assert s.http("GET", "/api/health").status == 200
    # every scrape, whichever worker answers it, sees all 24
    for _ in range(6):
        assert ok_total() == before + 24


def test_redis_restarted_empty_fails_closed_then_rebuilds(s, tok):
    """Redis loses everything: bookings answer 503 and write nothing until
    the worker has rebuilt counters and claims from PostgreSQL; then the
    counts are the true ones.  (Last test of the module: it empties Redis.)
    """
    import signal

    # the state this test checks after the rebuild, whatever ran before:
    # a-20270707-APM sold out by f3's two children
    for c in ("f3-c1", "f3-c2"):
        st = statuses(book(s, tok["f3"], [(c, "a-20270707-APM")]))
        assert st in ([("confirmed", None)], [("refused", "already_booked")])
    assert left(s, "a-20270707-APM") == 0
    # a medical certificate uploaded before the loss
    r = s.http("POST", "/api/documents?type=certificat_medical",
               token=tok["f4"], body=PDF,
               headers={"Content-Type": "application/pdf"})
    assert r.status == 201, r
    doc = str(r.json()["id"])

    s.wait_worker_drained()
    worker = s.procs["worker"]
    worker.send_signal(signal.SIGSTOP)
    try:
        s.redis.flushall()
        r = book(s, tok["f4"], [("f4-c1", "a-20270708-MATIN")])
        assert r.status == 503, r
        assert r.json()["error"]["code"] == "unavailable"
        assert r.headers.get("retry-after") == "1"
        # nothing was left behind by the refused attempt
        assert s.redis.get("{main}:c:f4-c1:2027-07-08:q0") is None
        assert not s.redis.exists("{main}:stream")
    finally:
        worker.send_signal(signal.SIGCONT)

    deadline = time.time() + 30
    while time.time() < deadline and not s.redis.exists("{main}:catalogue:gen"):
        time.sleep(0.1)
    s.wait_catalogue_everywhere()   # every nginx worker holds the rebuild's

    # the rebuilt truth: a-20270707-APM was sold out by f3's two children
    assert left(s, "a-20270707-APM") == 0
    assert s.redis.get("{main}:c:f3-c1:%s:q2" % DAY) is not None
    r = book(s, tok["f4"], [("f4-c1", "a-20270708-MATIN")])
    assert statuses(r) == [("confirmed", None)], r
    # the family's uploads were rebuilt too: an absence may cite it
    r = s.http("POST", "/api/absences", token=tok["f4"],
               json={"booking_id": r.json()["items"][0]["booking_id"],
                     "reason": "medical", "document_id": doc})
    assert r.status == 200 and r.json()["status"] == "en_examen", r
