"""test_redis.py -- Redis fails under the module: stopped, paused beyond
guichet_timeout, restarted without its data.  What a parent notices:
503 unavailable with Retry-After and nothing booked, then bookings that
resume by themselves; what the town notices: no place sold twice, counts
intact (faultlib.assert_consistent), every booking in PostgreSQL.

One stack (guichet_timeout 500ms) for the module; the tests run in file
order and each uses its own session and families.  The last one empties
Redis.
"""

import concurrent.futures
import os
import shutil
import signal
import time
import uuid

import pytest

from faultlib import (assert_consistent, book, booked, child, conf_template,
                      finish_stack, left, metrics, online, rush_town,
                      settled, start_stack, wait_for)

TIMEOUT = 0.5
SESSIONS = (("s1", 20), ("s2", 20), ("s3", 20), ("s4", 4))
TOWN = rush_town(families=60, sessions=SESSIONS)


@pytest.fixture(scope="module")
def s(tmp_path_factory):
    tpl = conf_template(tmp_path_factory.mktemp("conf"), "fault",
                        replace=[("guichet_timeout 2s;",
                                  "guichet_timeout 500ms;")])
    st = start_stack(TOWN, "fault-redis", template=tpl)
    yield st
    finish_stack(st)


@pytest.fixture(scope="module")
def tok(s):
    return s.tokens()


def fam(i):
    return "f-%04d" % i


def assert_unavailable(r):
    assert r.status == 503, r
    assert r.json()["error"]["code"] == "unavailable", r
    assert r.headers.get("retry-after") == "1", r.header_list


def sql_confirmed(s, sid):
    s.wait_worker_drained(30)
    return {row[0] for row in s.sql(
        "select id from booking where session_id = %s "
        "and status = 'confirmed'", (sid,))}


def test_redis_stopped_503_then_resumes_by_itself(s, tok):
    sid = "s1"
    for i in (1, 2, 3):
        r = book(s, tok[fam(i)], [(child(fam(i)), sid)])
        assert r.json()["items"][0]["status"] == "confirmed", r
    left_before, booked_before = left(s, sid), booked(s, sid)
    reconnects = metrics(s)["guichet_redis_reconnects_total"]

    s.stop_redis()
    keys = {}
    for i in range(4, 10):
        keys[i] = "down-" + uuid.uuid4().hex
        t0 = time.monotonic()
        r = book(s, tok[fam(i)], [(child(fam(i)), sid)], idem=keys[i])
        assert_unavailable(r)
        assert time.monotonic() - t0 < TIMEOUT + 1.0
    r = s.http("GET", "/api/health")
    assert r.status == 503 and r.json()["redis"] == "down", r

    s.start_redis()
    # nothing of the refused attempts reached Redis
    assert left(s, sid) == left_before
    assert booked(s, sid) == booked_before
    for i, k in keys.items():
        assert not s.redis.exists("{main}:f:%s:idem:%s" % (fam(i), k))

    # the module reconnects alone (back-off at most 2 s): the parents'
    # retries with the same key book
    t0 = time.monotonic()

    def retried():
        r = book(s, tok[fam(4)], [(child(fam(4)), sid)], idem=keys[4])
        return r.status == 200
    wait_for("a booking after Redis came back", retried, timeout=8,
             step=0.1)
    assert time.monotonic() - t0 < 6
    for i in range(5, 10):
        r = book(s, tok[fam(i)], [(child(fam(i)), sid)], idem=keys[i])
        assert r.status == 200, r
        assert r.headers.get("idempotent-replayed") is None
    assert left(s, sid) == online(20) - 9
    assert len(booked(s, sid)) == 9
    # 2 workers x guichet_redis_pool 2 connections were lost
    assert metrics(s)["guichet_redis_reconnects_total"] >= reconnects + 4
    wait_for("GET /api/health = 200",
             lambda: s.http("GET", "/api/health").status == 200, 5)
    assert_consistent(s, TOWN)
    assert sql_confirmed(s, sid) == booked(s, sid)


def test_redis_paused_beyond_timeout(s, tok):
    """SIGSTOP: connections stay open, commands wait in the socket.  Every
    parent gets 503 at the deadline; after SIGCONT each attempt completes
    in the background, and the retry with the same key returns its
    stored answer (or books, had it not reached Redis)."""
    sid = "s2"
    fams = [fam(i) for i in range(11, 25)]          # 14 parents, 10 places
    keys = {f: "pause-" + uuid.uuid4().hex for f in fams}
    redis = s.procs["redis"]

    def one(f):
        t0 = time.monotonic()
        r = book(s, tok[f], [(child(f), sid)], idem=keys[f])
        return r, time.monotonic() - t0

    redis.send_signal(signal.SIGSTOP)
    try:
        with concurrent.futures.ThreadPoolExecutor(14) as pool:
            answers = list(pool.map(one, fams))
    finally:
        redis.send_signal(signal.SIGCONT)
    for r, took in answers:
        assert_unavailable(r)
        assert TIMEOUT - 0.1 < took < TIMEOUT + 1.0, took

    wait_for("the paused attempts to finish", lambda: settled(s), 10)
    confirmed = []
    for f in fams:
        r = book(s, tok[f], [(child(f), sid)], idem=keys[f])
        assert r.status == 200, r
        item = r.json()["items"][0]
        if r.headers.get("idempotent-replayed") == "true":
            rec = s.redis.get("{main}:f:%s:idem:%s" % (f, keys[f]))
            assert rec.startswith("D ")
        assert item["status"] == "confirmed" or item["reason"] == "full", r
        if item["status"] == "confirmed":
            confirmed.append(item["booking_id"])
    assert len(confirmed) == online(20), confirmed
    assert set(confirmed) == booked(s, sid)
    assert left(s, sid) == 0
    assert_consistent(s, TOWN)
    assert sql_confirmed(s, sid) == booked(s, sid)


def test_client_pause_beyond_timeout(s, tok):
    """CLIENT PAUSE ALL: Redis keeps the commands unanswered; 503 at the
    deadline, then every retry gets its attempt's stored answer, the
    refused ones included (the sold-out cache does not hide them)."""
    sid = "s4"                                      # 2 online places
    fams = [fam(i) for i in range(25, 29)]
    keys = {f: "cpause-" + uuid.uuid4().hex for f in fams}
    s.redis.execute_command("CLIENT", "PAUSE", "1500", "ALL")
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(
            lambda f: book(s, tok[f], [(child(f), sid)], idem=keys[f]),
            fams))
    for r in answers:
        assert_unavailable(r)
    wait_for("the paused attempts to finish", lambda: settled(s), 10)
    outcomes = []
    for f in fams:
        r = book(s, tok[f], [(child(f), sid)], idem=keys[f])
        assert r.status == 200, r
        assert r.headers.get("idempotent-replayed") == "true", r
        outcomes.append(r.json()["items"][0].get("reason"))
    assert sorted(outcomes, key=str) == [None, None, "full", "full"]
    assert left(s, sid) == 0 and len(booked(s, sid)) == 2
    assert_consistent(s, TOWN)


def test_redis_restarted_empty_under_the_rush(s, tok):
    """Redis comes back without its data while parents keep booking:
    503 until the worker rebuilt the counters from PostgreSQL, then the
    remaining places only; PostgreSQL gets every confirmed booking."""
    sid = "s3"
    first = []
    for i in range(31, 35):
        r = book(s, tok[fam(i)], [(child(fam(i)), sid)])
        first.append(r.json()["items"][0]["booking_id"])
    s.wait_worker_drained()

    fams = [fam(i) for i in range(35, 61)]          # 26 parents, 6 places
    stop = time.monotonic() + 25

    def parent(f):
        k = uuid.uuid4().hex
        statuses = []
        while time.monotonic() < stop:
            try:
                r = book(s, tok[f], [(child(f), sid)], idem=k, timeout=5)
            except OSError as e:
                statuses.append(repr(e))
                time.sleep(0.05)
                continue
            statuses.append(r.status)
            if r.status == 200:
                return statuses, r.json()["items"][0]
            time.sleep(0.05)
        return statuses, None

    s.stop_redis(signal.SIGKILL)
    shutil.rmtree(os.path.join(s.dir, "redis"))
    s.start_redis()
    with concurrent.futures.ThreadPoolExecutor(len(fams)) as pool:
        results = list(pool.map(parent, fams))

    for statuses, item in results:
        assert item is not None, statuses[-5:]
        assert set(statuses) <= {200, 503}, statuses
    # fail closed for a while: the rebuild takes the worker some time
    assert any(503 in st for st, _ in results)
    confirmed = [it["booking_id"] for _, it in results
                 if it["status"] == "confirmed"]
    assert all(it["reason"] == "full" for _, it in results
               if it["status"] != "confirmed")
    assert len(confirmed) == online(20) - len(first), confirmed
    assert booked(s, sid) == set(first) | set(confirmed)
    assert left(s, sid) == 0
    assert_consistent(s, TOWN, stream=False)
    assert sql_confirmed(s, sid) == booked(s, sid)
