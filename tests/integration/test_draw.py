"""test_draw.py -- an opening by draw (issue 23, second half) through the
real stack: the entry window (202, "entered", one entry per family and
cell, a second request replaces the first, idempotent), the seed
published before the opening, fresh requests held until the draw is
decided, the draw deciding every family in the published order with
every rule of a booking (refusals exact, the waiting list for entries
that asked for it), its demandes and e-mails, and `guichetctl
draw-verify` agreeing with an independent recomputation in this file.

The opening instant is moved by loading the town file again with another
booking_opens_at (load-town keeps the draw's seed), with the worker
stopped, so that the window between the opening and the draw's decision
is observed without any timing.
"""

import datetime
import hashlib
import json
import subprocess
import time
import uuid

import pytest

from stack import StackError


ENTRIES_FROM = "2026-01-01T12:00:00+01:00"
# the town's own seed (else load-town draws one): with it f04 comes first,
# and its d1 entry, refused "conflict" after taking a place in its step one,
# gives that place back while later families of the same batch are refused
# full on d1 (worker/draw.c cuts the batch there)
SEED = "0000000000000000000000000000002a"
FAR = "2036-06-07T18:00:00+02:00"


def town(opens=FAR):
    units = [
        {"code": "MATIN", "label": "Matin", "starts": "08:30", "ends": "12:00"},
        {"code": "APM", "label": "Après-midi", "starts": "13:30",
         "ends": "17:30"},
    ]

    def cell(sid, day, unit="MATIN", places=2):
        return {"id": sid, "date": day, "unit": unit, "places": places}

    acts = [
        {"id": "d", "name": "Séjour tiré au sort", "age_min": 3,
         "age_max": 17, "booking_opens_at": opens,
         "opening": {"mode": "draw", "entries_from": ENTRIES_FROM,
                     "seed": SEED},
         "deadline": {"working_days": 2}, "online_share_percent": 100,
         "week_required": False, "prices": [{"qf_max": None, "cents": 700}],
         "sessions": [cell("d1", "2037-07-07", places=2),
                      cell("d2", "2037-07-08", places=1),
                      cell("d3", "2037-07-07", "APM", places=10),
                      cell("d4", "2037-07-09", places=1)]},
        {"id": "n", "name": "Centre de loisirs", "age_min": 3, "age_max": 17,
         "booking_opens_at": "2026-01-01T18:00:00+01:00",
         "deadline": {"working_days": 2}, "online_share_percent": 100,
         "week_required": False, "prices": [{"qf_max": None, "cents": 300}],
         "sessions": [cell("n1", "2037-07-07", "MATIN", places=5)]},
        {"id": "later", "name": "Tirage plus tard", "age_min": 3,
         "age_max": 17, "booking_opens_at": "2036-09-01T18:00:00+02:00",
         "opening": {"mode": "draw",
                     "entries_from": "2036-08-01T12:00:00+02:00"},
         "deadline": {"working_days": 2}, "online_share_percent": 100,
         "week_required": False, "prices": [{"qf_max": None, "cents": 300}],
         "sessions": [cell("l1", "2037-07-10")]},
    ]

    families = []
    for i in range(1, 13):
        fid = "f%02d" % i
        kids = [{"id": "%s-c%d" % (fid, k), "first_name": "Enfant%d" % k,
                 "birth_date": "2035-03-0%d" % k if fid == "f12"
                 else "2028-03-0%d" % k} for k in (1, 2)]
        families.append({
            "id": fid, "qf": 500, "resident": True, "direct_debit": False,
            "children": kids, "unpaid_invoices": 0,
            "enrolments": [{"child_id": c["id"], "activity_id": a,
                            "from": "2026-01-01", "to": "2037-12-31",
                            "status": "validee"}
                           for c in kids for a in ("d", "n", "later")
                           if not (fid == "f11" and a == "d")]})
    return {"town": {"name": "Tirage", "timezone": "Europe/Paris"},
            "units": units, "activities": acts, "families": families}


@pytest.fixture(scope="module")
def s(make_stack):
    return make_stack(town(), name="draw")


@pytest.fixture(scope="module")
def tok(s):
    return s.tokens()


def book(s, token, items, idem=None):
    return s.http("POST", "/api/bookings", token=token,
                  headers={"Idempotency-Key": idem or uuid.uuid4().hex},
                  json={"items": [dict({"child_id": c, "session_id": sid},
                                       **({"waitlist": True} if w else {}))
                                  for c, sid, w in items]})


def entries(s):
    return s.redis.hgetall("{main}:a:d:entries")


def seed_of(s, aid="d"):
    r = s.http("GET", "/api/activities")
    assert r.status == 200, r
    act = [a for a in r.json() if a["id"] == aid][0]
    return act["opening"]


# ----- an independent recomputation (docs/rules.md, "Opening by draw") -----

def rank(seed, family):
    return hashlib.sha256((seed + ":" + family).encode()).hexdigest()


def order(seed, rows):
    """rows: (family, child, session, at_ms, idx); the families in the
    draw's order, each with its cells in its request order."""
    fams = {}
    for fam, child, sess, at, idx in rows:
        fams.setdefault(fam, []).append((int(at), int(idx), child, sess))
    out = []
    for fam in sorted(fams, key=lambda f: (rank(seed, f), f)):
        out.append((fam, [(c, x) for _, _, c, x in sorted(fams[fam])]))
    return out


# ----- the tests, in the order of a draw's life ------------------------

def test_seed_published_before_the_window(s):
    o = seed_of(s)
    assert o["mode"] == "draw" and o["drawn"] is False
    assert o["seed"] == SEED
    assert o["entries_from"].startswith("2026-01-01T12:00:00")
    # without a seed in the file, load-town draws one: 32 random bytes
    later = seed_of(s, "later")["seed"]
    assert len(later) == 64 and int(later, 16) >= 0
    assert s.sql("select seed from draw_seed where activity_id = 'later'"
                 ) == [(later,)]


def test_before_entries_not_open_yet(s, tok):
    r = book(s, tok["f01"], [("f01-c1", "l1", False)])
    assert r.status == 200, r
    item = r.json()["items"][0]
    assert item["status"] == "refused" and item["reason"] == "not_open_yet"
    assert not s.redis.exists("{main}:a:later:entries")


def test_entered_202_and_replay(s, tok):
    key = uuid.uuid4().hex
    r = book(s, tok["f01"], [("f01-c1", "d1", False),
                             ("f01-c2", "d1", True)], idem=key)
    assert r.status == 202, r
    items = r.json()["items"]
    assert [i["status"] for i in items] == ["entered", "entered"]
    assert items[0]["draw_at"].startswith("2036-06-07T18:00:00")
    assert "booking_id" not in items[0]
    assert r.json()["status"] == "deposee"
    e = entries(s)
    assert set(e) == {"f01 f01-c1 d1", "f01 f01-c2 d1"}
    assert e["f01 f01-c2 d1"].endswith(" 1 1")
    # nothing was taken
    assert s.redis.execute_command("BITFIELD", "{main}:s:d1:left", "GET",
                                   "u32", "0")[0] == 2

    again = book(s, tok["f01"], [("f01-c1", "d1", False),
                                 ("f01-c2", "d1", True)], idem=key)
    assert again.status == 202
    assert again.headers.get("idempotent-replayed") == "true"
    assert again.body == r.body
    assert len(entries(s)) == 2

    d = s.http("GET", "/api/requests", token=tok["f01"]).json()
    first = [x for x in d if x["request_id"]
             == r.json()["request_id"]][0]
    assert first["status"] == "deposee"
    assert [i["status"] for i in first["items"]] == ["entered", "entered"]


def test_second_request_replaces_the_first(s, tok):
    r = book(s, tok["f02"], [("f02-c1", "d1", False)])
    assert r.status == 202
    before = entries(s)["f02 f02-c1 d1"]
    r = book(s, tok["f02"], [("f02-c2", "d2", False),
                             ("f02-c1", "d1", True)])
    assert r.status == 202
    e = entries(s)
    assert [k for k in e if k.startswith("f02 ")].count("f02 f02-c1 d1") == 1
    assert e["f02 f02-c1 d1"] != before and e["f02 f02-c1 d1"].endswith(" 1")
    assert e["f02 f02-c2 d2"].split()[1:] == ["0", "0"]


def test_mixed_request_200(s, tok):
    # an item of a first-come activity in the same request is decided now
    r = book(s, tok["f03"], [("f03-c1", "d1", False),
                             ("f03-c2", "n1", False)])
    assert r.status == 200, r
    assert [i["status"] for i in r.json()["items"]] == ["entered",
                                                         "confirmed"]


def test_more_entries(s, tok):
    # f04..f10 each enter d1 and d2 (one place), f05 asks the waiting list;
    # f04-c1 holds the same morning of another activity (booked first come
    # now: its d1 entry is refused "conflict" at the draw); f11 is not
    # enrolled and f12's children are too young: refused at once
    r = book(s, tok["f04"], [("f04-c1", "n1", False)])
    assert r.json()["items"][0]["status"] == "confirmed"
    for i in range(4, 11):
        fid = "f%02d" % i
        r = book(s, tok[fid], [(fid + "-c1", "d2", fid == "f05"),
                               (fid + "-c1", "d1", False),
                               (fid + "-c2", "d3", False)])
        assert r.status == 202, r
    r = book(s, tok["f11"], [("f11-c1", "d4", False)])
    assert r.status == 200
    assert r.json()["items"][0]["reason"] == "not_enrolled"
    r = book(s, tok["f12"], [("f12-c1", "d4", False)])
    assert r.json()["items"][0]["reason"] == "age"


def test_held_until_the_draw_is_decided(s, tok):
    # the opening comes, the worker is stopped: nothing is decided yet
    s.procs["worker"].terminate()
    s.procs["worker"].wait(10)
    past = (datetime.datetime.now(datetime.timezone.utc)
            - datetime.timedelta(seconds=2)).replace(microsecond=0)
    with open(s.town_file, "w") as f:
        json.dump(town(past.isoformat()), f)
    seed = seed_of(s)["seed"]
    s.ctl_run("load-town", s.town_file)
    assert seed_of(s)["seed"] == seed          # the published seed stays

    # every nginx worker has it (each refreshes its own catalogue; a worker
    # still in the window would only enter f03's entry again): waited for
    # on /metrics, then f03's entry is refused at once, whichever worker
    s.wait_catalogue_everywhere()
    r = s.http("GET", "/api/activities")
    assert [a for a in r.json() if a["id"] == "d"][0][
        "booking_opens_at"] != FAR, r
    r = book(s, tok["f03"], [("f03-c1", "d1", False)])
    assert r.json()["items"][0].get("reason") == "not_open_yet", r
    assert seed_of(s)["drawn"] is False
    r = book(s, tok["f01"], [("f01-c1", "d4", False)])
    assert r.status == 200, r
    assert r.json()["items"][0]["reason"] == "not_open_yet"
    # no entry either: the window is over
    r = book(s, tok["f09"], [("f09-c2", "d4", False)])
    assert r.json()["items"][0]["reason"] == "not_open_yet"
    assert "f09 f09-c2 d4" not in entries(s)
    assert s.sql("select count(*) from draw_run") == [(0,)]


def test_the_draw_decides_in_the_published_order(s, tok):
    s._start_worker()
    s._wait("the draw", lambda: s.sql(
        "select count(*) from draw_run where decided_at is not null")
        == [(1,)], timeout=30)
    s._wait("the catalogue saying drawn",
            lambda: seed_of(s)["drawn"] is True)
    s.wait_worker_drained()

    seed = seed_of(s)["seed"]
    assert seed == SEED and s.sql("select seed from draw_run") == [(seed,)]
    rows = s.sql("select family_id, child_id, session_id, at_ms, idx"
                 " from draw_entry where activity_id = 'd'")
    assert len(rows) == 2 + 2 + 1 + 7 * 3           # f01 f02 f03 f04-10
    want = order(seed, rows)

    got = s.sql("select family_id, items from demande"
                " where idem_key = 'dr.d' order by number")
    assert [g[0] for g in got] == [w[0] for w in want]
    for (fam, items), (wfam, cells) in zip(got, want):
        assert [(i["child_id"], i["session_id"]) for i in items] == cells

    assert [g[0] for g in got][:3] == ["f04", "f02", "f10"]

    # the outcomes, replayed by hand: places in the draw's order
    places = {"d1": 2, "d2": 1, "d3": 10, "d4": 1}
    waited = {}

    def why(fam, i):
        # f10 was once refused full on d1 here (never reproduced since, in
        # some 130 runs under load): what the next failure should show
        return (fam, i, {k: (s.redis.execute_command(
                    "BITFIELD", "{main}:s:%s:left" % k, "GET", "u32", "0"),
                    s.redis.scard("{main}:s:%s:booked" % k)) for k in places},
                s.read("worker.log")[-3000:])
    for fam, items in got:
        for i in items:
            if fam == "f04" and i["session_id"] == "d1":
                assert (i["status"], i["reason"]) == ("refused", "conflict")
                continue
            if places[i["session_id"]] > 0:
                places[i["session_id"]] -= 1
                assert i["status"] == "confirmed", why(fam, i)
            elif fam in ("f05", "f01", "f02") and i.get("position"):
                assert i["status"] == "waitlisted", (fam, i)
                waited[i["session_id"]] = waited.get(i["session_id"], 0) + 1
                assert i["position"] == waited[i["session_id"]]
            else:
                assert (i["status"], i["reason"]) == ("refused", "full"), \
                    why(fam, i)
    # the waitlist flag was kept: f01-c2 and f02-c1 asked for d1
    asked = {(f, i["child_id"]) for f, items in got for i in items
             if i["session_id"] == "d1" and i["status"] != "confirmed"}
    for f, c in (("f01", "f01-c2"), ("f02", "f02-c1")):
        if (f, c) in asked:
            st = [i for ff, items in got if ff == f for i in items
                  if i["child_id"] == c and i["session_id"] == "d1"][0]
            assert st["status"] == "waitlisted"

    # nothing over its places, in Redis and PostgreSQL
    for sid, n in (("d1", 2), ("d2", 1), ("d3", 10)):
        booked = s.redis.scard("{main}:s:%s:booked" % sid)
        left = s.redis.execute_command("BITFIELD", "{main}:s:%s:left" % sid,
                                       "GET", "u32", "0")[0]
        assert booked + left == n and booked == min(n, booked)
        assert s.sql("select count(*) from booking where session_id = %s"
                     " and status = 'confirmed'", (sid,))[0][0] == booked
    assert not s.redis.exists("{main}:a:d:entries")


def test_result_mails(s):
    # one e-mail per decision (the outbox, the same transaction as its
    # demande), its text "Résultat du tirage au sort"
    assert s.sql("select count(*) from outbox_mail o join demande d"
                 "   on d.request_id = o.ref where d.idem_key = 'dr.d'"
                 ) == [(10,)]
    mails = s.sql("select (demande_mail(d.request_id)).subject,"
                  "   (demande_mail(d.request_id)).body"
                  " from demande d where d.idem_key = 'dr.d'")
    assert len(mails) == 10
    for subject, body in mails:
        assert subject.startswith("Résultat du tirage au sort : demande N° D-")
        assert "Résultat du tirage au sort" in body
    entered = s.sql("select (demande_mail(d.request_id)).subject,"
                    "   (demande_mail(d.request_id)).body"
                    " from demande d where d.status = 'deposee'")
    assert entered
    for subject, body in entered:
        assert subject.startswith("Inscription au tirage au sort")
        assert "inscrite au tirage au sort" in body


def test_first_come_after_the_draw(s, tok):
    # each nginx worker reloads the catalogue on its own: one answer saying
    # "drawn" let f09's booking below reach the other worker, still holding
    # the draw (refused not_open_yet).  The worker published "drawn"
    # (test_the_draw_decides_in_the_published_order saw it in one
    # answer): every nginx worker holding that generation sells first
    # come
    s._wait("the catalogue saying drawn",
            lambda: seed_of(s)["drawn"] is True)
    s.wait_catalogue_everywhere()
    assert seed_of(s)["drawn"] is True
    r = book(s, tok["f12"], [("f12-c2", "n1", False)])
    assert r.json()["items"][0]["reason"] == "age"
    r = book(s, tok["f09"], [("f09-c2", "d4", False)])
    assert r.status == 200, r
    assert r.json()["items"][0]["status"] == "confirmed"
    r = book(s, tok["f10"], [("f10-c2", "d4", False)])
    assert r.json()["items"][0]["reason"] == "full"


def test_draw_verify_agrees_and_catches_a_change(s):
    out = s.ctl_run("draw-verify", "d")
    assert "the decisions follow the order" in out
    seed = s.sql("select seed from draw_run")[0][0]
    lines = [l.split() for l in out.splitlines()[1:-1]
             if l[0].isdigit()]
    rows = s.sql("select family_id, child_id, session_id, at_ms, idx"
                 " from draw_entry where activity_id = 'd'")
    assert [l[2] for l in lines] == [f for f, _ in order(seed, rows)]
    assert [l[1] for l in lines] == [rank(seed, f)[:16]
                                     for f, _ in order(seed, rows)]

    # another seed gives another order: draw-verify says so
    other = "0" * 64
    assert [f for f, _ in order(other, rows)] != \
        [f for f, _ in order(seed, rows)]
    s.sql("update draw_run set seed = %s", (other,))
    try:
        with pytest.raises(StackError):
            s.ctl_run("draw-verify", "d")
    finally:
        s.sql("update draw_run set seed = %s", (seed,))
    assert "the decisions follow" in s.ctl_run("draw-verify", "d")


def test_back_office_activity_keeps_its_seed(s):
    # the régie creates an activity opening by draw without a seed: one is
    # drawn and published; a change that names another seed keeps it
    from office_town import STAFF, staff_add, staff_token
    staff_add(s, *STAFF["regie"])
    regie = staff_token(s, "regie")
    act = {"id": "bo", "name": "Séjour du bureau", "age_min": 3,
           "age_max": 17, "booking_opens_at": "2036-07-01T18:00:00+02:00",
           "opening": {"mode": "draw",
                       "entries_from": "2036-06-20T12:00:00+02:00"},
           "prices": [{"qf_max": None, "cents": 500}]}
    r = s.http("POST", "/api/staff/activities", token=regie, json=act)
    assert r.status in (200, 201), r
    seed = r.json()["activity"]["opening"]["seed"]
    assert len(seed) == 64
    assert s.sql("select seed from draw_seed where activity_id = 'bo'") \
        == [(seed,)]
    other = dict(act, opening=dict(act["opening"], seed="ab" * 16))
    r = s.http("PUT", "/api/staff/activities/bo", token=regie, json=other)
    assert r.status == 200, r
    assert r.json()["activity"]["opening"]["seed"] == seed

    def published():
        r = s.http("GET", "/api/activities")
        return any(a["id"] == "bo" and a["opening"]["seed"] == seed
                   for a in r.json())
    s._wait("the activity published with its seed", published)
