"""test_waitlist.py -- guichet-worker killed (kill -9) in the middle of a
waiting list's promotion (issue 23): nothing lost, nothing promoted twice.

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
import signal
import sys
import threading

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from faultlib import book, child, left, online, rush_town, settled  # noqa
from matrix import MatrixStack, wait_until  # noqa: E402

TOWN = rush_town(families=3, sessions=(("w1", 2),))    # 1 place online


@pytest.fixture
def s():
    st = MatrixStack(town=TOWN, name="fault-waitlist",
                     worker_settings={"reap_after_ms": 2000,
                                      "recount_after_ms": 2000})
    st.start()
    yield st
    try:
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
    # the entry is still first: nothing removed it
    assert s.redis.lrange("{main}:s:w1:wait", 0, -1) == [child("f-0002")]

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
