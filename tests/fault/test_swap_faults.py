"""test_swap_faults.py -- an nginx worker killed in the middle of a swap
(issue 24): the old booking must never be released while the new one is
not confirmed, nor kept alongside a confirmed new one beyond the reaper's
window (docs/architecture.md, "Swap").

* test_swap_killed_between_steps_one_and_two: step one took the new place
  (and adopted the old booking's slot, and held the old booking's marker),
  nobody sends step two.  The reaper releases the new place; the old
  booking was never touched (its marker expires within a minute).
* test_swap_killed_between_steps_two_and_three: step two confirmed the new
  booking and took the old one out of the planning (the guard), the
  worker dies before step three gives the old place back (gdb stops it at
  gch_book_step3() and kills it).  The reaper finds the swap's marker and
  finishes: the old place back (a recount), the old claims not adopted
  deleted; PostgreSQL has the old booking cancelled and the new one
  confirmed.
* test_delete_racing_a_swap_between_its_steps: a DELETE of the booking a
  swap replaces, sent while the swap's nginx worker is stopped (gdb)
  between the swap's steps one and two, is refused 409
  request_in_progress: it would have deleted the slot's claim the swap
  adopted, and the child could then be booked twice that afternoon.  The
  swap goes on, its new booking holds the slot, the old place is back.
"""

import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid

import pytest

from faultlib import (DAY, book, booked, left, online, send_booking,
                      settled, traced_and_running)
from matrix import MatrixStack, wait_until


def swap_town():
    """f-0001.. with one child each; o1 and o2 two workshops the same
    afternoon (unit APM), o3 the morning (MATIN)."""
    units = [{"code": "MATIN", "label": "Matin", "starts": "08:30",
              "ends": "12:00"},
             {"code": "APM", "label": "Après-midi", "starts": "13:30",
              "ends": "17:30"}]
    fams = []
    for i in range(1, 5):
        fid, cid = "f-%04d" % i, "c-%04d" % i
        fams.append({
            "id": fid, "qf": 500, "resident": True, "direct_debit": False,
            "children": [{"id": cid, "first_name": "Enfant%d" % i,
                          "birth_date": "2018-03-01"}],
            "enrolments": [{"child_id": cid, "activity_id": a,
                            "from": "2027-07-01", "to": "2027-08-31",
                            "status": "validee"} for a in ("a", "b")]})

    def act(aid, sessions):
        return {"id": aid, "name": "Atelier " + aid, "age_min": 3,
                "age_max": 11,
                "booking_opens_at": "2026-11-01T18:00:00+01:00",
                "deadline": {"working_days": 2}, "online_share_percent": 50,
                "week_required": False,
                "prices": [{"qf_max": None, "cents": 400}],
                "sessions": [{"id": sid, "date": DAY, "unit": u,
                              "places": 20} for sid, u in sessions]}

    return {"town": {"name": "Echange", "timezone": "Europe/Paris"},
            "units": units,
            "activities": [act("a", [("o1", "APM"), ("o3", "MATIN")]),
                           act("b", [("o2", "APM")])],
            "families": fams}


@pytest.fixture
def s():
    st = MatrixStack(town=swap_town(), name="fault-swap",
                     worker_settings={"reap_after_ms": 3000,
                                      "recount_after_ms": 1000})
    st.start()
    yield st
    st.stop()


def swap_body(cid, sid, old):
    return json.dumps({"items": [{"child_id": cid, "session_id": sid,
                                  "replaces": old}]}).encode()


def whole(s, sid):
    return left(s, sid) + len(booked(s, sid)) == online(20)


def claims(s, cid):
    """The values of the child's claims on DAY."""
    return [s.redis.get(k) for k in
            sorted(s.redis.keys("{main}:c:%s:%s:q*" % (cid, DAY)))]


def planning(s, f):
    return {k: v for k, v in s.redis.hgetall("{main}:f:%s:bookings"
                                             % f).items()}


def test_swap_killed_between_steps_one_and_two(s):
    tok = s.tokens()
    f, cid = "f-0001", "c-0001"
    r = book(s, tok[f], [(cid, "o1")])
    old = r.json()["items"][0]["booking_id"]
    wait_until("settled", lambda: settled(s), 10)

    # step one reaches Redis, the nginx workers are frozen before its
    # reply, then killed
    redis = s.procs["redis"]
    redis.send_signal(signal.SIGSTOP)
    try:
        c = send_booking(s.port, tok[f], "k-swap-1", swap_body(cid, "o2", old))
        time.sleep(0.5)                    # nginx sends step one, waits
        workers = s.nginx_workers()
        for p in workers:
            os.kill(p, signal.SIGSTOP)
    finally:
        redis.send_signal(signal.SIGCONT)
    wait_until("the swap's step one",
               lambda: left(s, "o2") == online(20) - 1, 10)
    for p in workers:
        os.kill(p, signal.SIGKILL)
    c.close()

    # the old booking is untouched: booked, planned, its place taken
    assert old in booked(s, "o1") and old in planning(s, f)
    assert left(s, "o1") == online(20) - 1
    # only the swap's hold on it ("s ...", out of {main}:inflight: no
    # release pending), for at most a minute
    marker = "{main}:f:%s:cancel:%s" % (f, old)
    assert s.redis.get(marker).startswith("s ")
    assert 0 < s.redis.ttl(marker) <= 60
    assert s.redis.zscore("{main}:inflight", marker) is None

    # the reaper gives the new place back; the old booking stays
    wait_until("settled", lambda: settled(s), 30)
    wait_until("o2 whole", lambda: whole(s, "o2"), 10)
    assert booked(s, "o2") == set()
    assert old in booked(s, "o1") and whole(s, "o1")
    assert claims(s, cid) == ["o1 " + old]


@pytest.mark.skipif(shutil.which("gdb") is None,
                    reason="gdb stops the nginx worker at step three")
def test_swap_killed_between_steps_two_and_three(s):
    tok = s.tokens()
    f, cid = "f-0002", "c-0002"
    r = book(s, tok[f], [(cid, "o1")])
    old = r.json()["items"][0]["booking_id"]
    wait_until("settled", lambda: settled(s), 10)
    # every nginx worker (respawned ones too) holds the catalogue: eight
    # answers in a row may all have come from the same worker
    s.wait_catalogue_everywhere()

    # every nginx worker under gdb: the one that reaches step three dies
    workers = s.nginx_workers()
    gdbs = [subprocess.Popen(
        ["gdb", "-q", "-nx", "-batch", "-p", str(p),
         "-ex", "set breakpoint pending on",
         "-ex", "break gch_book_step3", "-ex", "continue", "-ex", "kill"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for p in workers]
    try:
        wait_until("gdb attached to every nginx worker, running again",
                   lambda: all(traced_and_running(p) for p in workers), 60)
        c = send_booking(s.port, tok[f], "k-swap-2", swap_body(cid, "o2", old))
        wait_until("a worker killed at step three",
                   lambda: any(g.poll() is not None for g in gdbs), 30)
        c.close()
    finally:
        for g in gdbs:
            if g.poll() is None:
                g.send_signal(signal.SIGTERM)
        for g in gdbs:
            try:
                g.wait(10)
            except subprocess.TimeoutExpired:
                g.kill()

    # step two happened: the new booking confirmed, the old one out of
    # the planning and of its session, its place not yet back
    new = [b for b in booked(s, "o2")]
    assert len(new) == 1, new
    assert old not in booked(s, "o1") and old not in planning(s, f)
    marker = "{main}:f:%s:cancel:%s" % (f, old)
    assert s.redis.get(marker).startswith("S ")
    assert left(s, "o1") == online(20) - 1

    # the reaper finishes the swap: the old place back, the marker gone
    wait_until("the marker reaped", lambda: not s.redis.exists(marker), 30)
    wait_until("settled", lambda: settled(s), 30)
    wait_until("o1 whole", lambda: whole(s, "o1"), 10)
    assert left(s, "o1") == online(20) and whole(s, "o2")
    # the slot is the new booking's (adopted), not deleted
    assert claims(s, cid) == ["o2 " + new[0]]

    # PostgreSQL: the old booking cancelled, the new one confirmed
    s.wait_worker_drained()
    rows = dict(s.sql("select id, status from booking where id in (%s, %s)",
                      (old, new[0])))
    assert rows == {old: "cancelled", new[0]: "confirmed"}

    # the family can book the morning and keeps its afternoon
    r = book(s, tok[f], [(cid, "o3")], idem=uuid.uuid4().hex)
    assert r.json()["items"][0]["status"] == "confirmed", r


@pytest.mark.skipif(shutil.which("gdb") is None,
                    reason="gdb stops the nginx worker between the steps")
def test_delete_racing_a_swap_between_its_steps(s):
    tok = s.tokens()
    f, cid = "f-0003", "c-0003"
    r = book(s, tok[f], [(cid, "o1")])
    old = r.json()["items"][0]["booking_id"]
    wait_until("settled", lambda: settled(s), 10)
    # every nginx worker (respawned ones too) holds the catalogue: eight
    # answers in a row may all have come from the same worker
    s.wait_catalogue_everywhere()

    # every nginx worker under gdb: the one that gets the swap stops
    # before its step two until the file "go" exists, then goes on
    tmp = tempfile.mkdtemp(prefix="guichet-swap-race-")
    go = os.path.join(tmp, "go")
    workers = s.nginx_workers()
    logs = [os.path.join(tmp, "gdb-%d" % p) for p in workers]
    gdbs = [subprocess.Popen(
        ["gdb", "-q", "-nx", "-batch", "-p", str(p),
         "-ex", "set breakpoint pending on",
         "-ex", "break gch_book_step2", "-ex", "continue",
         "-ex", "shell while [ ! -e %s ]; do sleep 0.05; done" % go,
         "-ex", "detach"],
        stdout=open(log, "w"), stderr=subprocess.STDOUT)
        for p, log in zip(workers, logs)]
    swap = []
    try:
        wait_until("gdb attached to every nginx worker, running again",
                   lambda: all(traced_and_running(p) for p in workers), 60)
        th = threading.Thread(target=lambda: swap.append(s.http(
            "POST", "/api/bookings", token=tok[f],
            headers={"Idempotency-Key": "k-swap-3",
                     "Content-Type": "application/json"},
            body=swap_body(cid, "o2", old), timeout=60)))
        th.start()
        wait_until("the swap stopped before its step two", lambda: any(
            "Breakpoint 1," in open(log).read() for log in logs), 30)
        assert left(s, "o2") == online(20) - 1      # step one ran

        # the DELETE, served by the other nginx worker meanwhile
        d = s.http("DELETE", "/api/bookings/" + old, token=tok[f])
        with open(go, "w"):
            pass
        th.join(60)
    finally:
        with open(go, "w"):
            pass
        for g in gdbs:
            try:
                g.wait(10)
            except subprocess.TimeoutExpired:
                g.send_signal(signal.SIGTERM)
                g.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)

    # the swap: the new booking confirmed, the old one released
    assert swap and swap[0].status == 200, swap
    item = swap[0].json()["items"][0]
    assert item["status"] == "confirmed", item
    new = item["booking_id"]
    wait_until("settled", lambda: settled(s), 30)
    assert booked(s, "o2") == {new} and booked(s, "o1") == set()
    assert whole(s, "o1") and whole(s, "o2")
    assert left(s, "o1") == online(20)
    assert set(planning(s, f)) == {new}

    # the afternoon is the new booking's: the child cannot be booked a
    # second time on it (the DELETE would have freed the slot)
    assert claims(s, cid) == ["o2 " + new]
    r = book(s, tok[f], [(cid, "o1")], idem=uuid.uuid4().hex)
    assert r.json()["items"][0]["status"] == "refused", r
    assert r.json()["items"][0]["reason"] == "conflict", r

    # PostgreSQL: the old booking cancelled once, the new one confirmed
    s.wait_worker_drained()
    rows = dict(s.sql("select id, status from booking where id in (%s, %s)",
                      (old, new)))
    assert rows == {old: "cancelled", new: "confirmed"}

    # the DELETE waited for the swap: refused, nothing of it happened
    assert d.status == 409, d
    assert d.json()["error"]["code"] == "request_in_progress", d
