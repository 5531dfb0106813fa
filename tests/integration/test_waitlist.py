"""test_waitlist.py -- waiting lists (issue 23) through the real stack:
joining on "complet" ("waitlist": true), positions in Redis's order, no
child twice on a list, GET /api/waitlist, leaving it, and the worker's
promotion when a place frees (every rule checked again, one place never
sold twice).

One custom town (below) on its own Stack; every test uses its own
sessions.
"""

import json
import threading
import time
import uuid

import pytest


def town():
    units = [
        {"code": "MATIN", "label": "Matin", "starts": "08:30", "ends": "12:00"},
        {"code": "APM", "label": "Après-midi", "starts": "13:30",
         "ends": "17:30"},
    ]

    def act(aid, sessions, **extra):
        a = {"id": aid, "name": "Activité " + aid, "age_min": 3,
             "age_max": 17,
             "booking_opens_at": "2026-01-01T18:00:00+01:00",
             "deadline": {"working_days": 2},
             "online_share_percent": 100, "week_required": False,
             "prices": [{"qf_max": None, "cents": 500}],
             "sessions": sessions}
        a.update(extra)
        return a

    def cell(sid, day, unit="MATIN", places=2):
        return {"id": sid, "date": day, "unit": unit, "places": places}

    acts = [
        act("j", [cell("join", "2027-07-07"), cell("dup", "2027-07-08"),
                  cell("join2", "2027-07-23"),
                  cell("leave", "2027-07-09"), cell("free", "2027-07-12"),
                  cell("leave2", "2027-07-26"), cell("move", "2027-07-27"),
                  cell("cache", "2027-07-13"), cell("bad", "2027-07-14")]),
        act("p", [cell("promo", "2027-07-15"), cell("skip", "2027-07-16"),
                  cell("busy", "2027-07-19"),
                  cell("rush", "2027-07-20", places=1),
                  cell("multi", "2027-07-28")]),
        act("o", [cell("other", "2027-07-19", "MATIN", 10),
                  cell("other2", "2027-07-28", "MATIN", 10)]),
        act("late", [cell("late", "2027-07-22")]),
        act("doc", [cell("docs", "2027-07-21", places=1)],
            required_documents=["vaccinations"]),
    ]

    families = []
    for i in range(1, 9):
        fid = "f%d" % i
        kids = [{"id": "%s-c%d" % (fid, k), "first_name": "Enfant%d" % k,
                 "birth_date": "2018-03-0%d" % k} for k in (1, 2)]
        families.append({
            "id": fid, "qf": 500, "resident": True,
            "direct_debit": False, "children": kids,
            "documents": ([{"type": "vaccinations",
                            "valid_to": "2028-12-31"}]
                          if fid != "f3" else []),
            "unpaid_invoices": 0,
            "enrolments": [{"child_id": c["id"], "activity_id": a,
                            "from": "2026-01-01", "to": "2027-08-31",
                            "status": "validee"}
                           for c in kids for a in ("j", "p", "o", "doc", "late")]})

    return {"town": {"name": "Attente", "timezone": "Europe/Paris"},
            "units": units, "activities": acts, "families": families}


@pytest.fixture(scope="module")
def s(make_stack):
    return make_stack(town(), name="waitlist")


@pytest.fixture(scope="module")
def tok(s):
    return s.tokens()


def book(s, token, items, wait=False, idem=None):
    return s.http("POST", "/api/bookings", token=token,
                  headers={"Idempotency-Key": idem or uuid.uuid4().hex},
                  json={"items": [dict({"child_id": c, "session_id": sid},
                                       **({"waitlist": True} if wait
                                          else {}))
                                  for c, sid in items]})


def items(r):
    assert r.status == 200, r
    return [(i["status"], i.get("reason"), i.get("position"))
            for i in r.json()["items"]]


def wait_list(s, sid):
    return s.redis.lrange("{main}:s:%s:wait" % sid, 0, -1)


def left(s, sid):
    return s.redis.execute_command("BITFIELD", "{main}:s:%s:left" % sid,
                                   "GET", "u32", "0")[0]


def fill(s, tok, sid):
    r = book(s, tok["f1"], [("f1-c1", sid), ("f1-c2", sid)])
    assert [i[0] for i in items(r)] == ["confirmed", "confirmed"]
    return [i["booking_id"] for i in r.json()["items"]]


def positions(s, token):
    r = s.http("GET", "/api/waitlist", token=token)
    assert r.status == 200, r
    return [(e["session_id"], e["child_id"], e["position"])
            for e in r.json()["waitlist"]]


# ----- 1. join and see ----------------------------------------------------

def test_full_cells_join_the_list_in_order(s, tok):
    fill(s, tok, "join")

    # without "waitlist": refused full, as always
    assert items(book(s, tok["f2"], [("f2-c1", "join")])) == \
        [("refused", "full", None)]
    assert wait_list(s, "join") == []

    r = book(s, tok["f2"], [("f2-c1", "join")], wait=True)
    assert items(r) == [("waitlisted", "full", 1)]
    assert r.json()["request_id"].startswith("D-")
    assert items(book(s, tok["f4"], [("f4-c1", "join"), ("f4-c2", "join")],
                      wait=True)) == \
        [("waitlisted", "full", 2), ("waitlisted", "full", 3)]
    assert wait_list(s, "join") == ["f2-c1", "f4-c1", "f4-c2"]

    # the list holds no place and no claim
    assert left(s, "join") == 0
    assert s.redis.keys("{main}:c:f2-c1:2027-07-07:*") == []

    # the family sees it: the answer, its demandes, GET /api/waitlist
    assert positions(s, tok["f4"]) == [("join", "f4-c1", 2),
                                       ("join", "f4-c2", 3)]
    demandes = s.http("GET", "/api/requests", token=tok["f2"]).json()
    assert demandes[0]["items"][0]["status"] == "waitlisted"
    assert demandes[0]["items"][0]["position"] == 1

    # the worker persists the demande (nothing booked)
    s.wait_worker_drained()
    assert s.sql("select count(*) from booking where session_id = 'join'"
                 " and status = 'confirmed'") == [(2,)]


def test_no_child_twice_on_a_list(s, tok):
    fill(s, tok, "dup")
    assert items(book(s, tok["f2"], [("f2-c1", "dup")], wait=True)) == \
        [("waitlisted", "full", 1)]
    assert items(book(s, tok["f4"], [("f4-c1", "dup")], wait=True)) == \
        [("waitlisted", "full", 2)]
    # asked again, with a new key: the first place is kept
    assert items(book(s, tok["f2"], [("f2-c1", "dup")], wait=True)) == \
        [("waitlisted", "full", 1)]
    assert wait_list(s, "dup") == ["f2-c1", "f4-c1"]

    # a replay is the first answer, and pushes nothing more
    key = uuid.uuid4().hex
    assert items(book(s, tok["f5"], [("f5-c1", "dup")], wait=True,
                      idem=key)) == [("waitlisted", "full", 3)]
    r = book(s, tok["f5"], [("f5-c1", "dup")], wait=True, idem=key)
    assert r.header_all("Idempotent-Replayed") == ["true"]
    assert items(r) == [("waitlisted", "full", 3)]
    assert wait_list(s, "dup") == ["f2-c1", "f4-c1", "f5-c1"]


def test_a_cell_with_a_place_is_booked_and_not_listed(s, tok):
    r = book(s, tok["f2"], [("f2-c2", "free")], wait=True)
    assert items(r)[0][0] == "confirmed"
    assert wait_list(s, "free") == []
    assert s.redis.hlen("{main}:s:free:waiters") == 0
    assert positions(s, tok["f2"]) == [(sid, c, p) for sid, c, p
                                       in positions(s, tok["f2"])
                                       if sid != "free"]


def test_the_sold_out_cache_does_not_swallow_a_waitlist_request(s, tok):
    fill(s, tok, "cache")
    # refused full: this nginx worker now knows "cache" is full
    assert items(book(s, tok["f2"], [("f2-c1", "cache")])) == \
        [("refused", "full", None)]
    r = book(s, tok["f2"], [("f2-c1", "cache")], wait=True)
    assert items(r) == [("waitlisted", "full", 1)]
    assert wait_list(s, "cache") == ["f2-c1"]


def test_leave_the_list(s, tok):
    fill(s, tok, "leave")
    for f in ("f2", "f4", "f5"):
        book(s, tok[f], [(f + "-c1", "leave")], wait=True)
    assert positions(s, tok["f5"])[-1] == ("leave", "f5-c1", 3)

    r = s.http("DELETE", "/api/waitlist/leave/f4-c1", token=tok["f4"])
    assert r.status == 200, r
    assert r.json() == {"session_id": "leave", "child_id": "f4-c1",
                        "status": "left"}
    assert wait_list(s, "leave") == ["f2-c1", "f5-c1"]
    assert ("leave", "f5-c1", 2) in positions(s, tok["f5"])
    assert all(e[0] != "leave" for e in positions(s, tok["f4"]))

    # twice, another family's child, an unknown session: not found
    for path, f in (("leave/f4-c1", "f4"), ("leave/f2-c1", "f4"),
                    ("nope/f4-c1", "f4"), ("leave", "f4")):
        r = s.http("DELETE", "/api/waitlist/" + path, token=tok[f])
        assert r.status == 404, (path, r)
        assert r.json()["error"]["code"] == "not_found"
    assert wait_list(s, "leave") == ["f2-c1", "f5-c1"]

    # without a token
    assert s.http("GET", "/api/waitlist").status == 401


def test_leave_with_the_child_in_the_query(s, tok):
    """DELETE /api/waitlist/{session_id}?child_id= (/work/shared/API.md's
    form) is the same as /api/waitlist/{session_id}/{child_id}."""
    fill(s, tok, "leave2")
    for f in ("f2", "f4"):
        book(s, tok[f], [(f + "-c1", "leave2")], wait=True)

    r = s.http("DELETE", "/api/waitlist/leave2?child_id=f2-c1",
               token=tok["f2"])
    assert r.status == 200, r
    assert r.json() == {"session_id": "leave2", "child_id": "f2-c1",
                        "status": "left"}
    assert wait_list(s, "leave2") == ["f4-c1"]
    assert ("leave2", "f4-c1", 1) in positions(s, tok["f4"])

    # again, another family's child, an empty or missing child: not found
    for q, f in (("?child_id=f2-c1", "f2"), ("?child_id=f4-c1", "f2"),
                 ("?child_id=", "f4"), ("?other=f4-c1", "f4")):
        r = s.http("DELETE", "/api/waitlist/leave2" + q, token=tok[f])
        assert r.status == 404, (q, r)
        assert r.json()["error"]["code"] == "not_found"
    assert wait_list(s, "leave2") == ["f4-c1"]


def test_waitlist_must_be_a_boolean(s, tok):
    r = s.http("POST", "/api/bookings", token=tok["f2"],
               headers={"Idempotency-Key": uuid.uuid4().hex},
               json={"items": [{"child_id": "f2-c1", "session_id": "bad",
                                "waitlist": "yes"}]})
    assert r.status == 400, r
    assert r.json()["error"]["code"] == "invalid_field"
    assert "waitlist" in r.json()["error"]["message"]
    assert wait_list(s, "bad") == []


# ----- 2. promotion by the worker -------------------------------------------

def until(what, pred, timeout=20):
    """Waits for an event the worker makes happen (not a speed check)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError("never happened: " + what)


def booked(s, token, sid, day):
    r = s.http("GET", "/api/bookings?from=%s&to=%s" % (day, day), token=token)
    assert r.status == 200, r
    return [b for b in r.json()["bookings"] if b["session_id"] == sid]


def cancel(s, token, bid):
    r = s.http("DELETE", "/api/bookings/" + bid, token=token)
    assert r.status == 200, r


def test_a_cancellation_promotes_the_first_family(s, tok):
    bids = fill(s, tok, "promo")
    book(s, tok["f2"], [("f2-c1", "promo")], wait=True)
    book(s, tok["f4"], [("f4-c1", "promo")], wait=True)
    assert wait_list(s, "promo") == ["f2-c1", "f4-c1"]

    cancel(s, tok["f1"], bids[0])

    got = until("f2-c1 booked on promo",
                lambda: booked(s, tok["f2"], "promo", "2027-07-15"))
    assert [b["child_id"] for b in got] == ["f2-c1"]
    assert until("the list moved", lambda: wait_list(s, "promo")
                 == ["f4-c1"])
    assert left(s, "promo") == 0
    assert s.redis.scard("{main}:s:promo:booked") == 2
    assert positions(s, tok["f4"])[0][1:] == ("f4-c1", 1) or \
        ("promo", "f4-c1", 1) in positions(s, tok["f4"])
    assert all(e[0] != "promo" for e in positions(s, tok["f2"]))

    # a booking like any other: a demande of the family, persisted once,
    # an e-mail
    d = s.http("GET", "/api/requests", token=tok["f2"]).json()[0]
    assert d["status"] == "traitee_positivement"
    assert d["items"][0]["status"] == "confirmed"
    bid = d["items"][0]["booking_id"]
    s.wait_worker_drained()
    assert s.sql("select child_id, session_id, status from booking"
                 " where id = %s", (bid,)) == [("f2-c1", "promo",
                                                "confirmed")]
    assert s.sql("select count(*) from demande where idem_key like 'wl.%%'"
                 " and family_id = 'f2'") == [(1,)]
    mails = until("the e-mail queued", lambda: s.sql(
        "select subject, body from outbox_mail where family_id = 'f2'"
        " and subject like 'Une place%%'"))
    assert len(mails) == 1
    assert "est réservée" in mails[0][1], mails

    # no promotion twice: a second cancellation promotes the next one
    cancel(s, tok["f1"], bids[1])
    until("f4-c1 booked", lambda: booked(s, tok["f4"], "promo",
                                         "2027-07-15"))
    assert until("the list empty", lambda: wait_list(s, "promo") == [])
    assert s.redis.scard("{main}:s:promo:booked") == 2
    assert left(s, "promo") == 0
    assert len(booked(s, tok["f2"], "promo", "2027-07-15")) == 1
    until("promo forgotten",
          lambda: not s.redis.sismember("{main}:waiting", "promo"))


def test_an_entry_no_longer_eligible_is_skipped(s, tok):
    bids = fill(s, tok, "busy")
    book(s, tok["f2"], [("f2-c1", "busy")], wait=True)
    book(s, tok["f4"], [("f4-c1", "busy")], wait=True)
    # meanwhile f2-c1 is booked elsewhere on the same time slot
    r = book(s, tok["f2"], [("f2-c1", "other")])
    assert items(r)[0][0] == "confirmed"

    cancel(s, tok["f1"], bids[0])

    until("f4-c1 booked", lambda: booked(s, tok["f4"], "busy",
                                         "2027-07-19"))
    assert until("the list empty", lambda: wait_list(s, "busy") == [])
    assert booked(s, tok["f2"], "busy", "2027-07-19") == []
    # the refusal is recorded: a demande of f2 with its reason
    d = s.http("GET", "/api/requests", token=tok["f2"]).json()[0]
    assert d["status"] == "traitee_negativement"
    assert d["reasons"] == ["conflict"], d
    assert s.redis.scard("{main}:s:busy:booked") == 2


def test_places_freed_together_go_down_the_list_in_order(s, tok):
    """The promoter books a session's first children in one pipelined
    batch (worker/promote.c): still in the list's order, every rule
    checked again, the child no longer eligible skipped and the others
    left in place."""
    bids = fill(s, tok, "multi")
    for f in ("f2", "f3", "f4", "f5"):
        r = book(s, tok[f], [(f + "-c2", "multi")], wait=True)
        assert items(r)[0][0] == "waitlisted"
    assert wait_list(s, "multi") == ["f2-c2", "f3-c2", "f4-c2", "f5-c2"]
    # f3-c2 is booked elsewhere on the same time slot meanwhile
    r = book(s, tok["f3"], [("f3-c2", "other2")])
    assert items(r)[0][0] == "confirmed"

    # two places at once: a single DELETE cannot free both, but the
    # worker may see them together or one by one, the same outcome
    cancel(s, tok["f1"], bids[0])
    cancel(s, tok["f1"], bids[1])

    until("f2-c2 and f4-c2 booked", lambda: booked(
        s, tok["f2"], "multi", "2027-07-28")
        and booked(s, tok["f4"], "multi", "2027-07-28"))
    assert until("f5-c2 alone on the list",
                 lambda: wait_list(s, "multi") == ["f5-c2"])
    assert booked(s, tok["f3"], "multi", "2027-07-28") == []
    assert booked(s, tok["f5"], "multi", "2027-07-28") == []
    assert s.redis.scard("{main}:s:multi:booked") == 2
    assert left(s, "multi") == 0
    assert ("multi", "f5-c2", 1) in positions(s, tok["f5"])
    d = s.http("GET", "/api/requests", token=tok["f3"]).json()[0]
    assert d["reasons"] == ["conflict"], d


def test_a_rush_racing_a_promotion_never_oversells(s, tok):
    r = book(s, tok["f1"], [("f1-c1", "rush")])
    bid = r.json()["items"][0]["booking_id"]
    assert items(book(s, tok["f2"], [("f2-c1", "rush")], wait=True)) == \
        [("waitlisted", "full", 1)]

    kids = [(f, "%s-c%d" % (f, k)) for f in ("f4", "f5", "f6", "f7", "f8")
            for k in (1, 2)]
    answers = []
    go = threading.Event()

    def rush(f, c):
        go.wait()
        for _ in range(3):
            answers.append(items(book(s, tok[f], [(c, "rush")]))[0][0])

    threads = [threading.Thread(target=rush, args=k) for k in kids]
    for t in threads:
        t.start()
    go.set()
    cancel(s, tok["f1"], bid)
    for t in threads:
        t.join()

    def settled():
        # the freed place is sold (to the rush, or else to the list's
        # first: the promoter books it), nothing in flight
        return (s.redis.zcard("{main}:inflight") == 0
                and s.redis.scard("{main}:s:rush:booked") == 1)

    until("the session settled", settled)
    assert left(s, "rush") == 0
    # the freed place is sold once: to the rush or to the list's first
    rushed = answers.count("confirmed")
    promoted = len(booked(s, tok["f2"], "rush", "2027-07-20"))
    assert s.redis.scard("{main}:s:rush:booked") == 1
    assert rushed + promoted <= 1, (rushed, promoted)
    s.wait_worker_drained()
    assert s.redis.scard("{main}:s:rush:booked") == 1
    assert rushed + len(booked(s, tok["f2"], "rush", "2027-07-20")) == 1
    if rushed:
        assert wait_list(s, "rush") == ["f2-c1"]    # it stays first
    assert s.sql("select count(*) from booking where session_id = 'rush'"
                 " and status = 'confirmed'") == [(1,)]


# ----- 4. staff see a session's list ----------------------------------------

def test_staff_see_a_sessions_list(s, tok):
    from office_town import staff_add, staff_login

    fill(s, tok, "join2")
    for f in ("f5", "f2", "f6"):
        book(s, tok[f], [(f + "-c2", "join2")], wait=True)
    # a leftover of a request whose nginx worker died between its steps:
    # pushed, never recorded -- not shown
    s.redis.rpush("{main}:s:join2:wait", "f7-c2")

    staff_add(s, "agent.w", "agent", "Agent Attente", "attente-pass-1")
    st = staff_login(s, "agent.w", "attente-pass-1")
    r = s.http("GET", "/api/staff/sessions/join2/waitlist", token=st)
    assert r.status == 200, r
    body = r.json()
    assert body["session_id"] == "join2" and body["places"] == 2
    assert [(w["position"], w["child_id"], w["family_id"], w["first_name"])
            for w in body["waitlist"]] == [
        (1, "f5-c2", "f5", "Enfant2"), (2, "f2-c2", "f2", "Enfant2"),
        (3, "f6-c2", "f6", "Enfant2")]
    assert body["waitlist"][0]["joined_at"].startswith("20")

    r = s.http("GET", "/api/staff/sessions/nope/waitlist", token=st)
    assert r.status == 404, r
    # families do not see it
    assert s.http("GET", "/api/staff/sessions/join2/waitlist",
                  token=tok["f5"]).status in (401, 403)


def staff_lists(s):
    from office_town import staff_add, staff_login
    staff_add(s, "agent.m", "agent", "Agent Moves", "attente-pass-2")
    return staff_login(s, "agent.m", "attente-pass-2")


def test_staff_move_a_family_on_a_list(s, tok):
    fill(s, tok, "move")
    for f in ("f2", "f4", "f5", "f6"):
        book(s, tok[f], [(f + "-c1", "move")], wait=True)
    s.redis.rpush("{main}:s:move:wait", "f7-c1")   # a leftover: not counted
    st = staff_lists(s)

    def move(cid, body):
        r = s.http("POST", "/api/staff/sessions/move/waitlist/" + cid,
                   token=st, json=body)
        assert r.status == 200, r
        return [w["child_id"] for w in r.json()["waitlist"]]

    assert move("f5-c1", {"move": "up"}) == \
        ["f2-c1", "f5-c1", "f4-c1", "f6-c1"]
    assert move("f6-c1", {"move": "first"}) == \
        ["f6-c1", "f2-c1", "f5-c1", "f4-c1"]
    assert move("f6-c1", {"move": "down"}) == \
        ["f2-c1", "f6-c1", "f5-c1", "f4-c1"]
    assert move("f2-c1", {"position": 3}) == \
        ["f6-c1", "f5-c1", "f2-c1", "f4-c1"]
    assert move("f6-c1", {"move": "last"}) == \
        ["f5-c1", "f2-c1", "f4-c1", "f6-c1"]
    assert move("f4-c1", {"position": 99}) == \
        ["f5-c1", "f2-c1", "f6-c1", "f4-c1"]
    # the order the worker promotes and the families see
    assert wait_list(s, "move") == ["f5-c1", "f2-c1", "f6-c1", "f4-c1"]
    assert ("move", "f4-c1", 4) in positions(s, tok["f4"])
    assert ("move", "f5-c1", 1) in positions(s, tok["f5"])

    # removed: off the list and off the family's places
    r = s.http("DELETE", "/api/staff/sessions/move/waitlist/f2-c1",
               token=st)
    assert r.status == 200, r
    assert [w["child_id"] for w in r.json()["waitlist"]] == \
        ["f5-c1", "f6-c1", "f4-c1"]
    assert all(e[0] != "move" for e in positions(s, tok["f2"]))
    assert not s.redis.hexists("{main}:s:move:waiters", "f2-c1")

    # audited, each change
    rows = s.sql("select actor, target, detail->>'child_id',"
                 " detail->>'from', detail->>'to' from audit_log"
                 " where action = 'waitlist.move' and target = 'move'"
                 " order by id")
    assert rows == [
        ("agent.m", "move", "f5-c1", "3", "2"),
        ("agent.m", "move", "f6-c1", "4", "1"),
        ("agent.m", "move", "f6-c1", "1", "2"),
        ("agent.m", "move", "f2-c1", "1", "3"),
        ("agent.m", "move", "f6-c1", "1", "4"),
        ("agent.m", "move", "f4-c1", "3", "4"),
        ("agent.m", "move", "f2-c1", "2", None)], rows

    # refusals: nothing changes
    for cid, body, code in (("f2-c1", {"move": "up"}, 404),
                            ("f5-c1", {"move": "sideways"}, 400),
                            ("f5-c1", {"position": 0}, 400),
                            ("f5-c1", {"move": "up", "position": 2}, 400),
                            ("f5-c1", {}, 400)):
        r = s.http("POST", "/api/staff/sessions/move/waitlist/" + cid,
                   token=st, json=body)
        assert r.status == code, (body, r)
    assert s.http("POST", "/api/staff/sessions/nope/waitlist/f5-c1",
                  token=st, json={"move": "up"}).status == 404
    assert s.http("POST", "/api/staff/sessions/move/waitlist/f5-c1",
                  token=tok["f5"], json={"move": "first"}).status in (401,
                                                                        403)
    assert wait_list(s, "move")[:3] == ["f5-c1", "f6-c1", "f4-c1"]

    # the worker promotes in the new order
    s.wait_worker_drained()
    bid = booked(s, tok["f1"], "move", "2027-07-27")[0]["booking_id"]
    cancel(s, tok["f1"], bid)
    until("f5-c1 promoted", lambda: booked(s, tok["f5"], "move",
                                           "2027-07-27"))


# ----- 4. the list ends with the booking deadline ---------------------------

def test_the_list_closes_at_the_booking_deadline(s, tok):
    """Last in the file: it loads the town again, with activity "late"'s
    deadline moved a year before its session (the town's word)."""
    fill(s, tok, "late")
    book(s, tok["f2"], [("f2-c1", "late")], wait=True)
    book(s, tok["f4"], [("f4-c1", "late")], wait=True)
    assert wait_list(s, "late") == ["f2-c1", "f4-c1"]

    t = town()
    for a in t["activities"]:
        if a["id"] == "late":
            a["deadline"] = {"hours": 8784}
    with open(s.town_file, "w") as f:
        json.dump(t, f, ensure_ascii=False)
    s.ctl_run("load-town", s.town_file)

    # no place freed: every entry leaves, refused "closed", with an e-mail
    assert until("the list closed", lambda: wait_list(s, "late") == [])
    assert left(s, "late") == 0
    for f in ("f2", "f4"):
        d = s.http("GET", "/api/requests", token=tok[f]).json()[0]
        assert d["reasons"] == ["closed"], d
        assert all(e[0] != "late" for e in positions(s, tok[f]))
    s.wait_worker_drained()
    mails = s.sql("select family_id, body from outbox_mail"
                  " where subject like 'Liste d''attente close%%'"
                  " order by family_id")
    assert [m[0] for m in mails] == ["f2", "f4"], mails
    assert "aucune place" in mails[0][1]
