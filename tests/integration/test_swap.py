"""test_swap.py -- the atomic swap (issue 24) through the real stack: an
item of POST /api/bookings that "replaces" a booked cell.  The new place
is taken first; the old one is released only once the new one is
confirmed, as DELETE would release it (deadline, "billed"); otherwise the
family keeps what it had.  Idempotent, persisted once (the old booking
cancelled and the new one confirmed in one batch), and no place lost or
oversold when the swap races a rush on the new cell.

One custom town on its own Stack; every test uses its own cells.
"""

import json
import os
import subprocess
import sys
import threading
import uuid

import pytest

import demande

DAY = "2027-07-07"          # a Wednesday, far from any deadline


def town():
    units = [
        {"code": "MATIN", "label": "Matin", "starts": "08:30",
         "ends": "12:00"},
        {"code": "APM", "label": "Après-midi", "starts": "13:30",
         "ends": "17:30"},
        {"code": "JOUR", "label": "Journée", "starts": "08:30",
         "ends": "17:30"},
    ]

    def act(aid, sessions, **extra):
        a = {"id": aid, "name": "Atelier " + aid, "age_min": 3,
             "age_max": 17,
             "booking_opens_at": "2026-01-01T18:00:00+01:00",
             "deadline": {"working_days": 2},
             "online_share_percent": 50, "week_required": False,
             "prices": [{"qf_max": None, "cents": 500}],
             "sessions": sessions}
        a.update(extra)
        return a

    def cell(aid, day, unit, places=4):
        return {"id": "%s-%s-%s" % (aid, day.replace("-", ""), unit),
                "date": day, "unit": unit, "places": places}

    days = ["2027-07-%02d" % d for d in (7, 8, 9, 12, 13, 14, 15, 16)]
    acts = [
        # two workshops the same afternoon, and a whole day
        act("danse", [cell("danse", d, u) for d in days
                      for u in ("MATIN", "APM")]),
        act("poterie", [cell("poterie", d, "APM") for d in days]
            + [cell("poterie", "2027-07-20", "APM", 2)]),
        act("sortie", [cell("sortie", d, "JOUR") for d in days]),
        # cancellations are late a year ahead: a swap's release is billed
        act("late", [cell("late", d, "APM", 10) for d in days],
            cancel_deadline={"hours": 24 * 365}),
        # the rush: one online place
        act("rush", [cell("rush", "2027-07-21", "APM", 2)]),
    ]
    families = []
    for i in range(1, 31):
        fid = "f%d" % i
        kids = [{"id": "%s-c%d" % (fid, k), "first_name": "Enfant%d" % k,
                 "birth_date": "2018-03-0%d" % k} for k in (1, 2)]
        families.append({
            "id": fid, "qf": 500, "resident": True, "direct_debit": False,
            "children": kids,
            "enrolments": [{"child_id": c["id"], "activity_id": a,
                            "from": "2026-01-01", "to": "2027-08-31",
                            "status": "validee"}
                           for c in kids
                           for a in ("danse", "poterie", "sortie", "late",
                                     "rush")]})

    return {"town": {"name": "Echange", "timezone": "Europe/Paris"},
            "units": units, "activities": acts, "families": families}


@pytest.fixture(scope="module")
def s(make_stack):
    return make_stack(town(), name="swap")


@pytest.fixture(scope="module")
def tok(s):
    t = s.tokens()
    token_family.update({v: k for k, v in t.items()})
    return t


# every booking answer of this module, as bench/rush.c logs them, for
# the invariant checker (test_bench_checker_holds_after_swaps)
LOG = []
LOCK = threading.Lock()


def post(s, token, items, idem=None):
    k = idem or uuid.uuid4().hex
    r = s.http("POST", "/api/bookings", token=token,
               headers={"Idempotency-Key": k}, json={"items": items})
    fid = token_family.get(token)
    if fid and not (r.status == 200 and r.headers.get("idempotent-replayed")):
        with LOCK:
            LOG.append({"k": k, "f": fid, "s": r.status,
                        "b": r.json() if r.status == 200 else None})
    return r


token_family = {}
DELETED = set()             # cancelled by DELETE: not the checker's concern


def book(s, token, child, sid):
    r = post(s, token, [{"child_id": child, "session_id": sid}])
    assert r.status == 200 and r.json()["items"][0]["status"] == "confirmed", r
    return r.json()["items"][0]["booking_id"]


def swap(s, token, child, sid, old, idem=None):
    return post(s, token, [{"child_id": child, "session_id": sid,
                            "replaces": old}], idem)


def left(s, sid):
    return s.redis.execute_command("BITFIELD", "{main}:s:%s:left" % sid,
                                   "GET", "u32", "0")[0]


def booked(s, sid):
    return set(s.redis.smembers("{main}:s:%s:booked" % sid))


def planning(s, token, child, day=DAY, to=None):
    r = s.http("GET", "/api/bookings?from=%s&to=%s" % (day, to or day),
               token=token)
    assert r.status == 200, r
    return {b["booking_id"]: b["session_id"] for b in r.json()["bookings"]
            if b["child_id"] == child}


def whole(s, sid, places):
    """No place lost nor sold twice: left + booked = online places."""
    return left(s, sid) + len(booked(s, sid)) == places * 50 // 100


def test_swap_same_afternoon_releases_the_old_workshop(s, tok):
    """danse's afternoon becomes poterie's: the child's slot is the old
    booking's, adopted by the new one (no conflict); the old place goes
    back to the pool; PostgreSQL shows the old booking cancelled and the
    new one confirmed."""
    old_sid, new_sid = "danse-20270707-APM", "poterie-20270707-APM"
    old = book(s, tok["f1"], "f1-c1", old_sid)
    assert left(s, old_sid) == 1

    k = uuid.uuid4().hex
    r = swap(s, tok["f1"], "f1-c1", new_sid, old, idem=k)
    assert r.status == 200, r
    item = r.json()["items"][0]
    assert item["status"] == "confirmed", item
    assert item["replaces"] == old
    assert item["released"] == {"booking_id": old, "session_id": old_sid,
                                "billed": False}
    new = item["booking_id"]
    assert r.json()["status"] == "traitee_positivement"

    # Redis: one place each, the slot held by the new booking
    assert left(s, old_sid) == 2 and old not in booked(s, old_sid)
    assert booked(s, new_sid) == {new}
    assert whole(s, old_sid, 4) and whole(s, new_sid, 4)
    assert planning(s, tok["f1"], "f1-c1") == {new: new_sid}
    claim = s.redis.get("{main}:c:f1-c1:%s:q2" % DAY)
    assert claim == "%s %s" % (new_sid, new), claim

    # the slot is the new booking's: the old workshop again is a conflict
    c = post(s, tok["f1"], [{"child_id": "f1-c1", "session_id": old_sid}])
    assert c.json()["items"][0]["reason"] == "conflict", c

    # replay: the same answer, byte for byte, nothing moves
    r2 = swap(s, tok["f1"], "f1-c1", new_sid, old, idem=k)
    assert r2.status == 200 and r2.headers.get("idempotent-replayed") == "true"
    assert r2.body == r.body
    assert left(s, old_sid) == 2 and booked(s, new_sid) == {new}
    # nothing left for the reaper
    assert not s.redis.exists("{main}:f:f1:cancel:" + old)
    # the record and the stream entry hold the release (tests' reader of
    # the compact demande, demande.py)
    rec = s.redis.get("{main}:f:f1:idem:" + k)
    assert demande.record_answer(rec, "f1", k) == r.json()
    entries = [demande.entry(f["d"]) for _, f in
               s.redis.xrange("{main}:stream", "-", "+")]
    mine = [e for e in entries if e.get("idem") == k]
    assert len(mine) == 1 and mine[0]["items"][0]["released"] == \
        item["released"]

    s.wait_worker_drained()
    rows = dict(s.sql("select id, status from booking where id in (%s, %s)",
                      (old, new)))
    assert rows == {old: "cancelled", new: "confirmed"}
    billed = s.sql("select billed from booking where id = %s", (old,))
    assert billed == [(False,)]
    # the demande's e-mail says what was released; no cancellation e-mail
    rid = r.json()["request_id"]
    body = s.sql("select body from outbox_mail where kind = 'demande'"
                 " and ref = %s", (rid,))[0][0]
    assert ("Atelier poterie, le 07/07/2027 (Après-midi) : confirmée "
            "(5,00 €), à la place de Atelier danse, le 07/07/2027 "
            "(Après-midi), annulée sans frais") in body, body
    assert s.sql("select count(*) from outbox where kind = 'cancellation'"
                 " and ref = %s", (old,)) == [(0,)]
    # the demande is stored once, with the release in its items
    items = s.sql("select items from demande where family_id = 'f1'"
                  " and idem_key = %s", (k,))
    assert len(items) == 1
    got = items[0][0] if not isinstance(items[0][0], str) \
        else json.loads(items[0][0])
    assert got[0]["released"]["booking_id"] == old


def test_swap_to_a_full_cell_keeps_the_old_booking(s, tok):
    """The new cell is full: refused with its reason, the old booking
    stays booked, its place taken, its slot held."""
    old_sid, new_sid = "danse-20270708-APM", "poterie-20270720-APM"
    old = book(s, tok["f2"], "f2-c1", old_sid)
    book(s, tok["f3"], "f3-c1", new_sid)          # its one online place

    r = swap(s, tok["f2"], "f2-c1", new_sid, old)
    assert r.status == 200, r
    item = r.json()["items"][0]
    assert (item["status"], item["reason"]) == ("refused", "full"), item
    assert item["replaces"] == old and item["kept"] is True
    assert "released" not in item
    assert old in booked(s, old_sid) and left(s, old_sid) == 1
    assert planning(s, tok["f2"], "f2-c1", "2027-07-08") == {old: old_sid}
    assert whole(s, old_sid, 4) and whole(s, new_sid, 2)

    s.wait_worker_drained()
    assert s.sql("select status from booking where id = %s",
                 (old,)) == [("confirmed",)]
    body = s.sql("select body from outbox_mail where kind = 'demande'"
                 " and ref = %s", (r.json()["request_id"],))[0][0]
    assert "refusée (complet), votre réservation précédente est " \
        "conservée" in body, body


def test_swap_of_a_booking_gone_is_refused_and_takes_nothing(s, tok):
    old_sid, new_sid = "danse-20270709-APM", "poterie-20270709-APM"
    old = book(s, tok["f4"], "f4-c1", old_sid)
    r = s.http("DELETE", "/api/bookings/" + old, token=tok["f4"])
    assert r.status == 200, r
    DELETED.add(old)

    r = swap(s, tok["f4"], "f4-c1", new_sid, old)
    item = r.json()["items"][0]
    assert (item["status"], item["reason"]) == ("refused",
                                                "replaced_unknown"), item
    assert booked(s, new_sid) == set() and left(s, new_sid) == 2

    # another family's booking is not found either
    mine = book(s, tok["f5"], "f5-c1", old_sid)
    r = swap(s, tok["f4"], "f4-c1", new_sid, mine)
    assert r.json()["items"][0]["reason"] == "replaced_unknown", r
    assert mine in booked(s, old_sid)

    # one booking replaced twice in one request: 400, nothing written
    r = post(s, tok["f5"], [
        {"child_id": "f5-c1", "session_id": new_sid, "replaces": mine},
        {"child_id": "f5-c1", "session_id": "sortie-20270709-JOUR",
         "replaces": mine}])
    assert r.status == 400 and r.json()["error"]["code"] == "invalid_field"
    assert "replaces" in r.json()["error"]["message"]


def test_late_swap_is_billed_as_a_late_cancellation(s, tok):
    """'late' takes cancellations only until a year before: the release
    of a swap is billed exactly as DELETE would bill it."""
    old_sid, new_sid = "late-20270712-APM", "poterie-20270712-APM"
    old = book(s, tok["f6"], "f6-c1", old_sid)
    r = swap(s, tok["f6"], "f6-c1", new_sid, old)
    item = r.json()["items"][0]
    assert item["status"] == "confirmed", item
    assert item["released"] == {"booking_id": old, "session_id": old_sid,
                                "billed": True}
    assert left(s, old_sid) == 5       # the place is released all the same
    # kept for a medical justification, as after a late DELETE
    assert s.redis.hget("{main}:f:f6:billed", old) == old_sid

    s.wait_worker_drained()
    assert s.sql("select status, billed from booking where id = %s",
                 (old,)) == [("cancelled", True)]
    body = s.sql("select body from outbox_mail where kind = 'demande'"
                 " and ref = %s", (r.json()["request_id"],))[0][0]
    assert "annulée après le délai : elle reste facturée" in body, body


def test_template_over_booked_weeks_is_a_batch_of_swaps(s, tok):
    """Applying a new template over booked days: every cell that changes
    is a swap, each one decided on its own (one full cell keeps its old
    booking, the others move)."""
    days = ["2027-07-13", "2027-07-14", "2027-07-15"]
    olds = {d: book(s, tok["f7"], "f7-c2", "danse-%s-MATIN"
                    % d.replace("-", "")) for d in days}
    # the day trip of the 14th is full
    for f in ("f8", "f9"):
        book(s, tok[f], f + "-c1", "sortie-20270714-JOUR")
    r = post(s, tok["f7"], [
        {"child_id": "f7-c2", "session_id": "sortie-%s-JOUR"
         % d.replace("-", ""), "replaces": olds[d]} for d in days])
    items = r.json()["items"]
    assert [(i["status"], i.get("reason")) for i in items] == [
        ("confirmed", None), ("refused", "full"), ("confirmed", None)], items
    assert r.json()["status"] == "partielle"
    got = planning(s, tok["f7"], "f7-c2", days[0], days[-1])
    assert sorted(got.values()) == ["danse-20270714-MATIN",
                                    "sortie-20270713-JOUR",
                                    "sortie-20270715-JOUR"]
    for d in days:
        k = d.replace("-", "")
        assert whole(s, "danse-%s-MATIN" % k, 4)
        assert whole(s, "sortie-%s-JOUR" % k, 4)


def test_swap_racing_a_rush_on_the_new_cell(s, tok):
    """The new cell has one online place; a swap and 20 other families
    ask for it at once.  The family never ends with neither booking nor
    with both; the new cell is never oversold; the old place comes back
    exactly when the swap won."""
    old_sid, new_sid = "danse-20270716-APM", "rush-20270721-APM"
    old = book(s, tok["f10"], "f10-c1", old_sid)
    results = {}
    barrier = threading.Barrier(21)

    def rush(i):
        f = "f%d" % i
        barrier.wait()
        results[f] = post(s, tok[f], [{"child_id": f + "-c1",
                                       "session_id": new_sid}])

    def swapper():
        barrier.wait()
        results["swap"] = swap(s, tok["f10"], "f10-c1", new_sid, old)

    threads = [threading.Thread(target=rush, args=(i,))
               for i in range(11, 31)] + [threading.Thread(target=swapper)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    won = [f for f, r in results.items()
           if r.status == 200 and r.json()["items"][0]["status"]
           == "confirmed"]
    assert len(won) == 1, {f: r.body for f, r in results.items()}
    assert len(booked(s, new_sid)) == 1 and left(s, new_sid) == 0
    mine = planning(s, tok["f10"], "f10-c1", "2027-07-16", "2027-07-21")
    if won == ["swap"]:
        assert list(mine.values()) == [new_sid]
        assert left(s, old_sid) == 2 and old not in booked(s, old_sid)
    else:
        item = results["swap"].json()["items"][0]
        assert (item["reason"], item["kept"]) == ("full", True), item
        assert mine == {old: old_sid}
        assert left(s, old_sid) == 1 and old in booked(s, old_sid)
    assert whole(s, old_sid, 4) and whole(s, new_sid, 2)
    assert s.redis.zcard("{main}:inflight") == 0


def test_bench_checker_holds_after_swaps(s, tok, tmp_path):
    """bench/check.py, the invariant checker of make bench, over every
    answer of this module: no session oversold, no child twice on a slot,
    every confirmed cell in PostgreSQL once -- a booking a swap released
    counts as cancelled -- and left + booked = online places."""
    log = tmp_path / "answers.jsonl"
    with open(log, "w") as f:
        for rec in LOG:
            if rec["b"] and any(i.get("booking_id") in DELETED
                                for i in rec["b"]["items"]):
                continue
            f.write(json.dumps(rec) + "\n")
    out = tmp_path / "check.json"
    root = os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))))
    r = subprocess.run(
        [sys.executable, os.path.join(root, "bench", "check.py"),
         "--redis", "127.0.0.1:%d" % s.redis_port, "--pg", s.pg_conninfo,
         "--log", str(log), "--json", str(out), "--drain-timeout", "60"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)
    assert r.returncode == 0, r.stdout.decode()[-3000:]
    rep = json.loads(out.read_text())
    assert rep["info"]["answers_released_by_swaps"] >= 4, rep["info"]
