"""test_waitlist_offer.py -- waiting lists' offers (issue 23) through the
real stack: an activity whose "waitlist" is {"mode": "offer",
"hold_hours": 24} holds a freed place for the list's first family instead
of booking it; the family is told (GET /api/waitlist "offered" with its
end, an e-mail), accepts (POST /api/bookings with "offer": true: a
booking, a demande, persisted once) or declines (DELETE
/api/waitlist/...); declined or past its end, the place goes to the next
family, also after a restart of the worker (the end is in Redis).

One custom town on its own Stack; every test uses its own session.
"""

import datetime
import signal
import time
import uuid

import pytest

from test_waitlist import until


def town():
    units = [{"code": "MATIN", "label": "Matin", "starts": "08:30",
              "ends": "12:00"}]

    def cell(sid, day):
        return {"id": sid, "date": day, "unit": "MATIN", "places": 1}

    acts = [
        {"id": "of", "name": "Stage poney", "age_min": 3, "age_max": 17,
         "booking_opens_at": "2026-01-01T18:00:00+01:00",
         "deadline": {"working_days": 2},
         "online_share_percent": 100, "week_required": False,
         "waitlist": {"mode": "offer", "hold_hours": 24},
         "prices": [{"qf_max": None, "cents": 700}],
         "sessions": [cell("acc", "2027-07-07"), cell("dec", "2027-07-08"),
                      cell("exp", "2027-07-09"), cell("skip", "2027-07-12")]},
        {"id": "o2", "name": "Atelier", "age_min": 3, "age_max": 17,
         "booking_opens_at": "2026-01-01T18:00:00+01:00",
         "deadline": {"working_days": 2},
         "online_share_percent": 100, "week_required": False,
         "prices": [{"qf_max": None, "cents": 500}],
         "sessions": [dict(cell("skip2", "2027-07-12"), places=5)]},
    ]

    families = []
    for i in range(1, 6):
        fid = "f%d" % i
        kids = [{"id": "%s-c1" % fid, "first_name": "Enfant%d" % i,
                 "birth_date": "2018-03-01"}]
        families.append({
            "id": fid, "qf": 500, "resident": True,
            "direct_debit": False, "children": kids, "documents": [],
            "unpaid_invoices": 0,
            "enrolments": [
                {"child_id": kids[0]["id"], "activity_id": a,
                 "from": "2026-01-01", "to": "2027-08-31",
                 "status": "validee"} for a in ("of", "o2")]})

    return {"town": {"name": "Offres", "timezone": "Europe/Paris"},
            "units": units, "activities": acts, "families": families}


@pytest.fixture(scope="module")
def s(make_stack):
    return make_stack(town(), name="offer")


@pytest.fixture(scope="module")
def tok(s):
    return s.tokens()


def book(s, token, cid, sid, **flags):
    return s.http("POST", "/api/bookings", token=token,
                  headers={"Idempotency-Key": uuid.uuid4().hex},
                  json={"items": [dict({"child_id": cid, "session_id": sid},
                                       **flags)]})


def outcome(r):
    assert r.status == 200, r
    i = r.json()["items"][0]
    return i["status"], i.get("reason")


def left(s, sid):
    return s.redis.execute_command("BITFIELD", "{main}:s:%s:left" % sid,
                                   "GET", "u32", "0")[0]


def hold(s, sid, cid):
    return s.redis.execute_command("BITFIELD", "{main}:s:%s:hold:%s"
                                   % (sid, cid), "GET", "u32", "0")[0]


def mine(s, token, sid):
    r = s.http("GET", "/api/waitlist", token=token)
    assert r.status == 200, r
    return [e for e in r.json()["waitlist"] if e["session_id"] == sid]


def offered(s, token, sid):
    return [e for e in mine(s, token, sid) if e["status"] == "offered"]


def full_with_list(s, tok, sid, fams):
    r = book(s, tok["f1"], "f1-c1", sid)
    assert outcome(r) == ("confirmed", None)
    for f in fams:
        assert outcome(book(s, tok[f], f + "-c1", sid, waitlist=True)) == \
            ("waitlisted", "full")
    return r.json()["items"][0]["booking_id"]


def cancel(s, token, bid):
    r = s.http("DELETE", "/api/bookings/" + bid, token=token)
    assert r.status == 200, r


def test_a_freed_place_is_offered_then_accepted(s, tok):
    bid = full_with_list(s, tok, "acc", ["f2", "f3"])

    cancel(s, tok["f1"], bid)

    # held for f2, not booked, not in the pool
    got = until("the offer to f2", lambda: offered(s, tok["f2"], "acc"))
    assert got[0]["offer_until"].endswith(("+01:00", "+02:00")), got
    assert "position" not in got[0]
    assert s.redis.lrange("{main}:s:acc:wait", 0, -1) == ["f3-c1"]
    assert left(s, "acc") == 0
    assert hold(s, "acc", "f2-c1") == 1
    assert s.redis.get("{main}:s:acc:held") == "1"
    assert mine(s, tok["f3"], "acc")[0]["position"] == 1
    s.wait_worker_drained()
    assert s.sql("select count(*) from booking where session_id = 'acc'"
                 " and status = 'confirmed'") == [(0,)]
    # the held place is neither left nor booked: guichetctl check agrees
    assert s.ctl_run("check").strip() == "redis and postgres agree"
    # the back office sees the offer beside the list
    from office_town import staff_add, staff_login
    staff_add(s, "agent.o", "agent", "Agent Offres", "offres-pass-1")
    st = staff_login(s, "agent.o", "offres-pass-1")
    r = s.http("GET", "/api/staff/sessions/acc/waitlist", token=st)
    assert r.status == 200, r
    assert [(w["child_id"], w["position"]) for w in r.json()["waitlist"]] \
        == [("f3-c1", 1)]
    assert [(o["child_id"], o["family_id"], o["first_name"])
            for o in r.json()["offers"]] == [("f2-c1", "f2", "Enfant2")]
    seen = datetime.datetime.fromisoformat(r.json()["offers"][0]
                                           ["offer_until"])
    told = datetime.datetime.fromisoformat(got[0]["offer_until"])
    assert abs((seen - told).total_seconds()) < 1, (seen, told)

    # nobody else takes it: a fresh request is refused full
    assert outcome(book(s, tok["f4"], "f4-c1", "acc")) == ("refused", "full")
    # a family without an offer cannot accept one
    assert outcome(book(s, tok["f3"], "f3-c1", "acc", offer=True)) == \
        ("refused", "full")

    # the family is told by e-mail, once
    mails = until("the offer's e-mail", lambda: s.sql(
        "select subject, body from outbox_mail where family_id = 'f2'"
        " and kind = 'waitlist_offer'"))
    assert len(mails) == 1, mails
    assert mails[0][0] == "Une place vous est proposée : Stage poney"
    assert "Enfant2" in mails[0][1] and "07/07/2027" in mails[0][1]
    assert "jusqu'au" in mails[0][1]

    # accepted: a booking like any other, persisted once
    r = book(s, tok["f2"], "f2-c1", "acc", offer=True)
    assert outcome(r) == ("confirmed", None), r.json()
    new = r.json()["items"][0]["booking_id"]
    assert r.json()["request_id"].startswith("D-")
    assert offered(s, tok["f2"], "acc") == [] and \
        mine(s, tok["f2"], "acc") == []
    assert not s.redis.exists("{main}:s:acc:hold:f2-c1")
    assert s.redis.get("{main}:s:acc:held") == "0"
    assert s.redis.zscore("{main}:offers", "acc f2-c1") is None
    assert left(s, "acc") == 0
    assert s.redis.scard("{main}:s:acc:booked") == 1
    s.wait_worker_drained()
    assert s.sql("select id, child_id from booking where session_id = 'acc'"
                 " and status = 'confirmed'") == [(new, "f2-c1")]
    d = s.http("GET", "/api/requests", token=tok["f2"]).json()[0]
    assert d["status"] == "traitee_positivement"

    # accepted twice: the second is refused (already booked), nothing more
    assert outcome(book(s, tok["f2"], "f2-c1", "acc", offer=True))[0] == \
        "refused"
    assert s.redis.scard("{main}:s:acc:booked") == 1
    assert s.redis.lrange("{main}:s:acc:wait", 0, -1) == ["f3-c1"]
    assert s.ctl_run("check").strip() == "redis and postgres agree"


def test_a_declined_offer_goes_to_the_next_family(s, tok):
    bid = full_with_list(s, tok, "dec", ["f2", "f3"])
    cancel(s, tok["f1"], bid)
    until("the offer to f2", lambda: offered(s, tok["f2"], "dec"))

    r = s.http("DELETE", "/api/waitlist/dec/f2-c1", token=tok["f2"])
    assert r.status == 200, r
    assert r.json()["status"] == "declined"

    got = until("the offer to f3", lambda: offered(s, tok["f3"], "dec"))
    assert got[0]["child_id"] == "f3-c1"
    assert mine(s, tok["f2"], "dec") == []
    assert hold(s, "dec", "f3-c1") == 1
    assert not s.redis.exists("{main}:s:dec:hold:f2-c1")
    assert s.redis.get("{main}:s:dec:held") == "1"
    assert left(s, "dec") == 0
    # too late for f2
    assert outcome(book(s, tok["f2"], "f2-c1", "dec", offer=True)) == \
        ("refused", "full")
    assert outcome(book(s, tok["f3"], "f3-c1", "dec", offer=True)) == \
        ("confirmed", None)
    assert s.redis.scard("{main}:s:dec:booked") == 1


def test_an_expired_offer_goes_to_the_next_family_after_a_restart(s, tok):
    bid = full_with_list(s, tok, "exp", ["f2", "f3"])
    cancel(s, tok["f1"], bid)
    end = until("the offer to f2", lambda: offered(s, tok["f2"], "exp"))
    assert end

    # the worker stops; its 24 hours pass (the offer's end, kept in Redis,
    # moved to the past: the clock is not ours to move)
    w = s.procs["worker"]
    w.send_signal(signal.SIGTERM)
    w.wait(10)
    past = int(time.time() * 1000) - 1000
    assert s.redis.zscore("{main}:offers", "exp f2-c1") is not None
    s.redis.zadd("{main}:offers", {"exp f2-c1": past})
    s.redis.hset("{main}:s:exp:offer", "f2-c1", past)
    assert hold(s, "exp", "f2-c1") == 1   # still held while none runs

    s._start_worker()

    got = until("the offer to f3", lambda: offered(s, tok["f3"], "exp"))
    assert got[0]["child_id"] == "f3-c1"
    assert mine(s, tok["f2"], "exp") == []
    assert not s.redis.exists("{main}:s:exp:hold:f2-c1")
    assert s.redis.get("{main}:s:exp:held") == "1"
    assert left(s, "exp") == 0
    assert outcome(book(s, tok["f2"], "f2-c1", "exp", offer=True)) == \
        ("refused", "full")
    assert "the offer to f2-c1 expired" in s.read("worker.log")


def test_an_ineligible_family_is_skipped(s, tok):
    bid = full_with_list(s, tok, "skip", ["f5", "f3"])
    # meanwhile f5's child is booked elsewhere on the same time slot
    assert outcome(book(s, tok["f5"], "f5-c1", "skip2")) == \
        ("confirmed", None)
    cancel(s, tok["f1"], bid)

    until("the offer to f3", lambda: offered(s, tok["f3"], "skip"))
    assert mine(s, tok["f5"], "skip") == []
    # the refusal is f5's demande, with its reason
    d = s.http("GET", "/api/requests", token=tok["f5"]).json()[0]
    assert d["status"] == "traitee_negativement"
    assert d["reasons"] == ["conflict"], d
    assert left(s, "skip") == 0


def test_the_bench_checker_sees_a_broken_list(s, tok):
    """bench/check.py's waiting-list invariants (issue 23) hold on what
    the tests above left, and catch a child both booked and listed, and a
    child twice on a list."""
    import os
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))))

    def check():
        r = subprocess.run(
            [sys.executable, os.path.join(root, "bench", "check.py"),
             "--redis", "127.0.0.1:%d" % s.redis_port, "--pg",
             s.pg_conninfo, "--promote-timeout", "5"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
        return r.returncode, r.stdout.decode()

    s.wait_worker_drained()
    rc, out = check()
    assert rc == 0, out
    assert "waitlisted" in out

    # f2-c1 is booked on "acc" (the accepted offer); put it on the list
    # too, and f3-c1 twice
    entry = s.redis.hget("{main}:s:acc:waiters", "f3-c1")
    s.redis.rpush("{main}:s:acc:wait", "f2-c1", "f3-c1")
    s.redis.hset("{main}:s:acc:waiters", "f2-c1", entry.replace("f3", "f2"))
    try:
        rc, out = check()
        assert rc == 1, out
        assert "waitlist_and_booked" in out, out
        assert "waitlist_child_twice" in out, out
    finally:
        s.redis.lrem("{main}:s:acc:wait", -1, "f3-c1")
        s.redis.lrem("{main}:s:acc:wait", 0, "f2-c1")
        s.redis.hdel("{main}:s:acc:waiters", "f2-c1")
    assert check()[0] == 0
