"""test_waitlist_faults.py -- waiting lists (issue 23) when a process dies.

* test_worker_killed_mid_promotion: guichet-worker killed (kill -9) in the
  middle of a promotion: nothing lost, nothing promoted twice.
* test_nginx_killed_between_a_joins_steps: the nginx workers die between
  the two steps of a request that joins a list: its step one already put
  the child on the list, so the family sees its place and the child is
  promoted when a place frees; the reaper gives back the claims.
* test_no_promotion_of_a_request_between_its_steps: a request that asks
  for the list on a session with a place left takes the place and puts
  its child on the list in its step one (its step two takes the child off
  again); its nginx workers die between the two.  While the attempt is in
  {main}:inflight the worker does not promote the child (it did: refused
  already_booked against its own request's claim, a demande the family
  never asked for, the child off the list); once the reaper released the
  attempt, the child is promoted like any.
* test_no_offer_to_a_request_between_its_steps: the same in an activity
  that offers freed places (waitlist mode "offer"): the child is neither
  refused `conflict` against its own request's claim nor offered a place
  while the attempt is in flight; then the place is offered to it.
* test_redis_data_lost_keeps_the_lists: Redis restarted without its data
  (killed, its directory removed): the worker's rebuild from PostgreSQL
  (waitlist_entry, copied by the worker each second) puts the lists back
  in their order, moves and leaves included, and a cancellation then
  promotes the first family as before.

test_worker_killed_mid_promotion in detail:

A session of one online place is full; f-0002's child is first on its
waiting list.  f-0001 cancels; the worker books f-0002's child through
the saga (worker/promote.c) and is killed as soon as Redis shows the
promotion's step one (MONITOR: the SET of its record "...:idem:wl.<...>").
Depending on where the signal lands, the worker died between the
promotion's two steps (record "P": the reaper releases it, and the next
worker books again under the same key) or after its step two, before the
entry left the list (record "D": the next worker replays the key, finds
the booking, and only removes the entry).  Both are checked each run;
which one happened is printed.  Then: exactly one booking of the child,
the list empty, left + booked = online places, one stream entry and one
PostgreSQL booking for it.
"""

import os
import shutil
import signal
import sys
import threading

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from faultlib import (book, child, conf_template, left, online,  # noqa
                      rush_town, settled, step_one_alone)
from matrix import MatrixStack, wait_until  # noqa: E402

TOWN = rush_town(families=3, sessions=(("w1", 2), ("w2", 4)))  # 1 and 2


@pytest.fixture
def s(tmp_path):
    tpl = conf_template(tmp_path, "waitlist",
                        replace=[("guichet_timeout 2s;",
                                  "guichet_timeout 1s;")])
    st = MatrixStack(town=TOWN, name="fault-waitlist", nginx_template=tpl,
                     worker_settings={"reap_after_ms": 2000,
                                      "recount_after_ms": 2000})
    st.start()
    st.killed_nginx = False
    yield st
    try:
        if not st.killed_nginx:      # else: "exited on signal 9" alerts
            st.assert_clean_error_log()
    finally:
        st.stop()


def join(s, token, f, sid):
    r = s.http("POST", "/api/bookings", token=token,
               headers={"Idempotency-Key": "k-" + f},
               json={"items": [{"child_id": child(f), "session_id": sid,
                                "waitlist": True}]})
    assert r.status == 200, r
    return r.json()["items"][0]


def test_worker_killed_mid_promotion(s):
    tok = s.tokens()
    r = book(s, tok["f-0001"], [(child("f-0001"), "w1")])
    bid = r.json()["items"][0]["booking_id"]
    assert join(s, tok["f-0002"], "f-0002", "w1")["status"] == "waitlisted"

    # watch Redis for the promotion's step one, then kill the worker
    worker = s.procs["worker"]
    seen = threading.Event()
    mon = s.redis.monitor()

    def watch():
        with mon as m:
            for cmd in m.listen():
                line = cmd.get("command", "")
                if line.startswith("SET ") and ":f:f-0002:idem:wl." in line:
                    worker.send_signal(signal.SIGKILL)
                    seen.set()
                    return

    th = threading.Thread(target=watch, daemon=True)
    th.start()
    r = s.http("DELETE", "/api/bookings/" + bid, token=tok["f-0001"])
    assert r.status == 200, r
    assert seen.wait(20), "the promotion never started"
    worker.wait(10)

    recs = [k for k in s.redis.keys("{main}:f:f-0002:idem:wl.*")]
    assert len(recs) == 1, recs
    state = s.redis.get(recs[0])[:1]
    print("worker killed with the promotion's record at %r" % state)
    assert state in ("P", "D")
    # the entry is still first, unless the promotion had already booked:
    # the promoter pipelines a turn's steps and the list's removal
    # (draw2), so the kill may land after them
    wait = s.redis.lrange("{main}:s:w1:wait", 0, -1)
    assert wait == [child("f-0002")] or (state == "D" and wait == []), \
        (state, wait)

    s.restart_worker()

    wait_until("the list empty",
               lambda: s.redis.llen("{main}:s:w1:wait") == 0, 30)
    wait_until("settled", lambda: settled(s), 30)
    booked = s.redis.smembers("{main}:s:w1:booked")
    assert len(booked) == 1
    assert left(s, "w1") + len(booked) == online(2)
    planning = s.http("GET", "/api/bookings?from=2027-07-08&to=2027-07-08",
                      token=tok["f-0002"]).json()["bookings"]
    assert [(b["child_id"], b["booking_id"]) for b in planning] == \
        [(child("f-0002"), next(iter(booked)))]

    s.wait_worker_drained()
    assert s.sql("select count(*) from booking where session_id = 'w1'"
                 " and status = 'confirmed'") == [(1,)]
    assert s.sql("select count(*) from demande where family_id = 'f-0002'"
                 " and idem_key like 'wl.%%'"
                 " and status = 'traitee_positivement'") == [(1,)]


def test_nginx_killed_between_a_joins_steps(s):
    tok = s.tokens()
    r = book(s, tok["f-0001"], [(child("f-0001"), "w1")])
    bid = r.json()["items"][0]["booking_id"]
    wait_until("settled", lambda: settled(s), 10)

    # Redis stopped: nginx sends step one and answers 503 at its deadline;
    # its workers die; Redis runs step one with nobody left for step two
    half_join(s, tok, "f-0002", "w1", "k-dies")

    # the family sees its place (nginx's master made new workers)
    def place():
        r = s.http("GET", "/api/waitlist", token=tok["f-0002"])
        return r.status == 200 and r.json()["waitlist"]
    got = wait_until("GET /api/waitlist", place, 10)
    assert [(w["session_id"], w["position"]) for w in got] == [("w1", 1)]

    # the reaper releases the attempt (its claims: the place was full)
    wait_until("reaped", lambda: settled(s), 30)
    assert left(s, "w1") + len(s.redis.smembers("{main}:s:w1:booked")) \
        == online(2)

    # a place frees: the child is promoted
    r = s.http("DELETE", "/api/bookings/" + bid, token=tok["f-0001"])
    assert r.status == 200, r
    wait_until("promoted", lambda: s.redis.llen("{main}:s:w1:wait") == 0
               and len(s.redis.smembers("{main}:s:w1:booked")) == 1, 30)
    planning = s.http("GET", "/api/bookings?from=2027-07-08&to=2027-07-08",
                      token=tok["f-0002"]).json()["bookings"]
    assert [b["child_id"] for b in planning] == [child("f-0002")]


def half_join(s, tok, f, sid, key):
    """A request of family f asking for sid's list whose nginx workers die
    between its steps (faultlib.step_one_alone), once Redis has run its
    step one: its child is alone on the list.  The attempt's idempotency
    record's key."""
    cid = child(f)
    s.killed_nginx = True
    step_one_alone(s, tok[f], key,
                   ('{"items":[{"child_id":"%s","session_id":"%s",'
                    '"waitlist":true}]}' % (cid, sid)).encode())
    rec = "{main}:f:%s:idem:%s" % (f, key)
    wait_until("the request's step one", lambda: s.redis.exists(rec), 10)
    assert s.redis.lrange("{main}:s:%s:wait" % sid, 0, -1) == [cid]
    return rec


def test_no_promotion_of_a_request_between_its_steps(s):
    tok = s.tokens()
    f, cid = "f-0002", child("f-0002")

    # step one took a place and listed the child: a place is still left,
    # the child is first on the list, its attempt between the steps
    rec = half_join(s, tok, f, "w2", "k-half")
    assert s.redis.get(rec).startswith("P ")
    assert left(s, "w2") == online(4) - 1

    # the reaper releases the attempt; the child is then promoted, once
    wait_until("promoted", lambda: s.redis.llen("{main}:s:w2:wait") == 0
               and len(s.redis.smembers("{main}:s:w2:booked")) == 1, 30)
    wait_until("settled", lambda: settled(s), 30)
    planning = s.http("GET", "/api/bookings?from=2027-07-08&to=2027-07-08",
                      token=tok[f]).json()["bookings"]
    assert [(b["child_id"], b["session_id"]) for b in planning] \
        == [(cid, "w2")]
    assert left(s, "w2") + len(s.redis.smembers("{main}:s:w2:booked")) \
        == online(4)
    # no demande the family did not ask for: its promotion, confirmed
    d = s.http("GET", "/api/requests", token=tok[f]).json()
    assert [[(i["status"], i.get("reason")) for i in x["items"]]
            for x in d] == [[("confirmed", None)]], d


OFFER_TOWN = rush_town(families=3, sessions=(("w1", 2), ("w2", 4)))
OFFER_TOWN["activities"][0]["waitlist"] = {"mode": "offer", "hold_hours": 24}


@pytest.fixture
def so(tmp_path):
    tpl = conf_template(tmp_path, "waitlist-offer",
                        replace=[("guichet_timeout 2s;",
                                  "guichet_timeout 1s;")])
    st = MatrixStack(town=OFFER_TOWN, name="fault-waitlist-offer",
                     nginx_template=tpl,
                     worker_settings={"reap_after_ms": 2000,
                                      "recount_after_ms": 2000})
    st.start()
    st.killed_nginx = True           # half_join kills nginx's workers
    yield st
    st.stop()


def test_no_offer_to_a_request_between_its_steps(so):
    """The same in an activity that offers freed places: while the
    attempt is in {main}:inflight the worker neither refuses the child
    (it did: `conflict` against its own request's claim, a demande the
    family never asked for, the child off the list) nor offers it a
    place; once the reaper released the attempt, the place left is
    offered to the child."""
    s = so
    tok = s.tokens()
    f, cid = "f-0002", child("f-0002")

    rec = half_join(s, tok, f, "w2", "k-half")
    assert s.redis.get(rec).startswith("P ")

    # the reaper releases the attempt, then the place is held for the child
    wait_until("offered", lambda: s.redis.exists(
        "{main}:s:w2:hold:%s" % cid), 30)
    got = wait_until("GET /api/waitlist", lambda: (lambda r: r.status == 200
                     and r.json()["waitlist"])(
        s.http("GET", "/api/waitlist", token=tok[f])), 30)
    assert [(w["session_id"], w["status"]) for w in got] \
        == [("w2", "offered")], got
    # no demande the family did not ask for
    wait_until("settled", lambda: settled(s), 30)
    d = s.http("GET", "/api/requests", token=tok[f]).json()
    assert d == [], d


def planning_of(s, token):
    """The family's planning of 8 July, once GET /api/bookings answers."""
    def got():
        r = s.http("GET", "/api/bookings?from=2027-07-08&to=2027-07-08",
                   token=token)
        if r.status == 503:
            return None
        assert r.status == 200, r
        return [r.json()["bookings"]]
    return wait_until("GET /api/bookings", got, 30)[0]


TOWN6 = rush_town(families=6, sessions=(("w1", 2), ("w2", 2)))


@pytest.fixture
def s6(tmp_path):
    st = MatrixStack(town=TOWN6, name="fault-waitlist-lost",
                     worker_settings={"reap_after_ms": 2000,
                                      "recount_after_ms": 2000})
    st.start()
    yield st
    st.stop()


def test_redis_data_lost_keeps_the_lists(s6):
    s = s6
    tok = s.tokens()
    f = ["f-%04d" % i for i in range(1, 7)]

    r = book(s, tok[f[0]], [(child(f[0]), "w1")])
    bid = r.json()["items"][0]["booking_id"]
    assert r.json()["items"][0]["status"] == "confirmed"
    for x in f[1:5]:
        assert join(s, tok[x], x, "w1")["position"] >= 1
    # a family leaves: the copy has the list as it is
    r = s.http("DELETE", "/api/waitlist/w1/" + child(f[2]), token=tok[f[2]])
    assert r.status == 200, r
    order = [child(x) for x in (f[1], f[3], f[4])]
    assert s.redis.lrange("{main}:s:w1:wait", 0, -1) == order

    # the worker copies the lists to PostgreSQL
    s.wait_worker_drained()
    wait_until("the lists in postgres", lambda: s.sql(
        "select child_id from waitlist_entry where session_id = 'w1'"
        " order by rank") == [(c,) for c in order], 15)

    # Redis loses its data
    s.stop_redis(signal.SIGKILL)
    shutil.rmtree(os.path.join(s.dir, "redis"))
    s.start_redis()

    # fail closed until the worker rebuilt it, then the same places
    def seen():
        r = s.http("GET", "/api/waitlist", token=tok[f[4]])
        return r.status == 200 and r.json()["waitlist"]
    got = wait_until("GET /api/waitlist after the rebuild", seen, 60)
    assert [(w["session_id"], w["position"]) for w in got] == [("w1", 3)]
    assert s.redis.lrange("{main}:s:w1:wait", 0, -1) == order
    assert s.redis.sismember("{main}:waiting", "w1")
    for x in (f[1], f[3], f[4]):
        assert s.redis.hget("{main}:s:w1:waiters", child(x)).split()[1] \
            == x
        assert s.redis.hexists("{main}:f:%s:waits" % x,
                               "w1 " + child(x))
    assert not s.redis.hexists("{main}:s:w1:waiters", child(f[2]))
    assert left(s, "w1") == 0

    # and the list works as before: a cancellation promotes the first
    r = s.http("DELETE", "/api/bookings/" + bid, token=tok[f[0]])
    assert r.status == 200, r
    wait_until("promoted", lambda: s.redis.lrange("{main}:s:w1:wait", 0, -1)
               == order[1:], 30)
    # (an nginx worker may still answer 503 `unavailable` while it reloads
    # the rebuilt catalogue: retried, as docs/errors.md tells clients)
    planning = planning_of(s, tok[f[1]])
    assert [b["child_id"] for b in planning] == [child(f[1])]
    # the copy follows
    wait_until("the copy follows", lambda: s.sql(
        "select child_id from waitlist_entry where session_id = 'w1'"
        " order by rank") == [(c,) for c in order[1:]], 15)
