"""test_draw_faults.py -- an opening by draw (issue 23) when the worker
dies in the middle of deciding it.

600 families enter one session of 20 online places during the entry
window (one in three asking for the waiting list).  The worker decides
families in batches (worker/draw.c: every step one of a batch, then every
step two); gdb stops it in a later batch, after its step ones ran in
Redis and before its step twos were sent, and kills it: the first
families decided (record "D"), that batch's between their steps (record
"P"), the rest not started (or, as the worker sends a batch's step ones
while Redis runs the step twos of the one before, between their steps
too).  The restarted worker resumes from
the entries PostgreSQL kept: the first batch replays its stored answers,
the second waits for the reaper to release its attempts and decides them
again under the same keys, the rest are decided.  Then every family is
decided exactly once (one demande "dr.rush" each, in the published
order), no place is sold twice (left + booked = online, 20 confirmed), the
waiting list holds exactly the refused entries that asked for it, and
guichetctl draw-verify agrees.
"""

import datetime
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from faultlib import (book, child, left, online, rush_town,  # noqa
                      settled, traced_and_running)
from matrix import MatrixStack, wait_until  # noqa: E402

FAMILIES = 600
FAR = "2036-06-07T18:00:00+02:00"




def town(opens=FAR):
    t = rush_town(families=FAMILIES, sessions=(("d1", 40),))  # 20 online
    act = t["activities"][0]
    act["booking_opens_at"] = opens
    act["opening"] = {"mode": "draw",
                      "entries_from": "2026-01-01T12:00:00+01:00"}
    return t


@pytest.fixture
def s():
    st = MatrixStack(town=town(), name="fault-draw",
                     worker_settings={"reap_after_ms": 2000,
                                      "recount_after_ms": 2000})
    st.start()
    yield st
    try:
        st.assert_clean_error_log()
    finally:
        st.stop()


def rank(seed, family):
    return hashlib.sha256((seed + ":" + family).encode()).hexdigest()


@pytest.mark.skipif(shutil.which("gdb") is None,
                    reason="gdb stops the worker in the middle of the draw")
def test_worker_killed_mid_draw(s):
    tok = s.tokens()
    for i in range(1, FAMILIES + 1):
        f = "f-%04d" % i
        r = s.http("POST", "/api/bookings", token=tok[f],
                   headers={"Idempotency-Key": "k-" + f},
                   json={"items": [{"child_id": child(f), "session_id": "d1",
                                    "waitlist": i % 3 == 0}]})
        assert r.status == 202, r

    # the worker under gdb, stopped in a batch of families after Redis ran
    # their step ones and before their step twos are sent (when it asks
    # which one gives something back, gch_book_gives_back: the 400th
    # time is in the second or third batch) -- and killed there
    gdb = subprocess.Popen(
        ["gdb", "-q", "-nx", "-batch", "-p", str(s.procs["worker"].pid),
         "-ex", "set breakpoint pending on",
         "-ex", "break gch_book_gives_back", "-ex", "ignore 1 400",
         "-ex", "continue", "-ex", "kill"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until("gdb attached, its breakpoint set, the worker running",
                   lambda: traced_and_running(s.procs["worker"].pid), 60)

        # the opening comes
        past = (datetime.datetime.now(datetime.timezone.utc)
                - datetime.timedelta(seconds=2)).replace(microsecond=0)
        with open(s.town_file, "w") as f:
            json.dump(town(past.isoformat()), f)
        s.ctl_run("load-town", s.town_file)

        wait_until("the worker killed mid-draw",
                   lambda: gdb.poll() is not None, 60)
    finally:
        if gdb.poll() is None:
            gdb.send_signal(signal.SIGTERM)
            gdb.wait(10)
    s.procs["worker"].wait(10)

    assert s.sql("select decided_at is null from draw_run") == [(True,)]
    recs = s.redis.keys("{main}:f:*:idem:dr.rush")
    states = sorted(s.redis.get(k)[:1] for k in recs)
    # the first batches decided, the one stopped between its steps; the
    # rest not started, or (the worker sends a batch's step ones while
    # Redis runs the step twos of the one before: draw2) the next batch
    # between its steps too -- the restart must finish both kinds
    print("killed with %d families decided, %d between their steps, %d"
          " not started" % (states.count("D"), states.count("P"),
                            FAMILIES - len(states)))
    assert states.count("D") > 0 and states.count("P") > 0
    assert states.count("D") < FAMILIES

    s.restart_worker()
    wait_until("the draw decided", lambda: s.sql(
        "select count(*) from draw_run where decided_at is not null")
        == [(1,)], 60)
    wait_until("settled", lambda: settled(s), 30)
    s.wait_worker_drained()

    # every family decided once, in the published order
    seed = s.sql("select seed from draw_run")[0][0]
    got = s.sql("select family_id, items from demande"
                " where idem_key = 'dr.rush' order by number")
    fams = ["f-%04d" % i for i in range(1, FAMILIES + 1)]
    assert [g[0] for g in got] == sorted(fams, key=lambda f: rank(seed, f))
    assert len(s.redis.xrange("{main}:stream")) == FAMILIES * 2

    # the first 20 in that order have the places, the others waited
    # (those that asked) or were refused full
    booked = s.redis.smembers("{main}:s:d1:booked")
    assert len(booked) == online(40) == 20
    assert left(s, "d1") == 0
    wait = []
    for k, (f, items) in enumerate(got):
        it = items[0]
        if k < 20:
            assert it["status"] == "confirmed", (k, f, it)
        elif int(f[2:]) % 3 == 0:
            assert it["status"] == "waitlisted", (k, f, it)
            wait.append(child(f))
        else:
            assert (it["status"], it["reason"]) == ("refused", "full")
    assert s.redis.lrange("{main}:s:d1:wait", 0, -1) == wait
    assert s.sql("select count(*) from booking where session_id = 'd1'"
                 " and status = 'confirmed'") == [(20,)]

    out = s.ctl_run("draw-verify", "rush")
    assert "the decisions follow the order of the seed" in out


@pytest.mark.skipif(shutil.which("gdb") is None,
                    reason="gdb stops the worker in the middle of the draw")
def test_entry_after_the_draw_read(s, tmp_path):
    """A request planned in the entry window whose step two reaches Redis
    after the draw read the entries (its parent is answered "entered"):
    the entry is written by hand while gdb holds the worker in the draw's
    first batch, after the draw took its snapshot.  It is decided after
    the draw, first come, first served: the places are the draw's, so the
    late family, which asked for the waiting list, is last on it."""
    tok = s.tokens()
    late = "f-%04d" % FAMILIES
    for i in range(1, FAMILIES):
        f = "f-%04d" % i
        r = s.http("POST", "/api/bookings", token=tok[f],
                   headers={"Idempotency-Key": "k-" + f},
                   json={"items": [{"child_id": child(f), "session_id": "d1",
                                    "waitlist": i % 3 == 0}]})
        assert r.status == 202, r

    stopped, go = tmp_path / "stopped", tmp_path / "go"
    gdb = subprocess.Popen(
        ["gdb", "-q", "-nx", "-batch", "-p", str(s.procs["worker"].pid),
         "-ex", "set breakpoint pending on",
         "-ex", "break gch_book_gives_back", "-ex", "continue",
         "-ex", "shell touch %s; while [ ! -e %s ]; do sleep 0.1; done"
         % (stopped, go),
         "-ex", "delete", "-ex", "detach"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until("gdb attached, its breakpoint set, the worker running",
                   lambda: traced_and_running(s.procs["worker"].pid), 60)
        past = (datetime.datetime.now(datetime.timezone.utc)
                - datetime.timedelta(seconds=2)).replace(microsecond=0)
        with open(s.town_file, "w") as f:
            json.dump(town(past.isoformat()), f)
        s.ctl_run("load-town", s.town_file)

        wait_until("the worker stopped in the draw", stopped.exists, 60)
        # the draw has read its entries; the late step two lands now
        # (planned a second before the opening)
        s.redis.hset("{main}:a:rush:entries", "%s %s d1" % (late, child(late)),
                     "%d 0 1" % ((past.timestamp() - 1) * 1000))
        go.touch()
        gdb.wait(60)
    finally:
        if gdb.poll() is None:
            gdb.send_signal(signal.SIGTERM)
            gdb.wait(10)

    wait_until("the draw decided", lambda: s.sql(
        "select count(*) from draw_run where decided_at is not null")
        == [(1,)], 60)
    wait_until("the late entry decided", lambda: s.sql(
        "select count(*) from demande where family_id = %s"
        " and idem_key like 'dr.rush.late.%%'", (late,)) == [(1,)], 60)
    wait_until("settled", lambda: settled(s), 30)
    s.wait_worker_drained()

    # the draw is the snapshot's: 599 families, in the seed's order
    assert s.sql("select entries from draw_run") == [(FAMILIES - 1,)]
    out = s.ctl_run("draw-verify", "rush")
    assert "the decisions follow the order of the seed" in out

    # the late family decided once, after every family of the draw
    items = s.sql("select items from demande where family_id = %s"
                  " and kind = 'book' and idem_key like 'dr.%%'", (late,))
    assert len(items) == 1
    assert items[0][0][0]["status"] == "waitlisted", items
    assert s.redis.lrange("{main}:s:d1:wait", -1, -1) == [child(late)]
    assert len(s.redis.smembers("{main}:s:d1:booked")) == 20
    assert left(s, "d1") == 0
    assert not s.redis.keys("{main}:a:rush:entries*")
