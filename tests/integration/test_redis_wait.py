"""test_redis_wait.py -- no confirmed answer that a failover can lose
(issue 21): with guichet_redis_wait_replicas 1, the module answers a
booking, a cancellation or an absence 2xx only after a replica
acknowledged the write (WAIT on the connection that wrote it).

A whole stack whose Redis has one replica (a second redis-server with
--replicaof).  The replica is paused with SIGSTOP (it stops acknowledging,
as a replica that crashed or is cut off):

* a booking answers 503 not_replicated with Retry-After, not 2xx: the
  place is taken on the master, but nothing confirmed it to the family;
* once the replica is back, the retry with the same Idempotency-Key gets
  the replay of that booking (Idempotent-Replayed), one booking, never
  two;
* a cancellation likewise answers 503, and its retry finds the booking
  cancelled (404): one cancellation, the place back once;
* what is not a 2xx (a refusal, an Idempotency-Key reused with another
  body) is answered at once, without waiting for anyone;
* bookings arriving together while the replica is up share WAITs and
  are all confirmed.
"""

import concurrent.futures
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest
import redis as redislib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from stack import DEMO_TOWN, ROOT, Stack, free_port  # noqa: E402

CHILD = "c-lea"
WAIT_TIMEOUT_MS = 300


class ReplicaStack(Stack):
    """A stack whose Redis has one replica, and whose nginx waits for it."""

    def _start_redis(self, port=None, extra=(), loading=False):
        super()._start_redis(port=port, extra=extra, loading=loading)
        if "replica" in self.procs:
            return
        self.replica_port = free_port()
        os.makedirs(self._path("replica"), exist_ok=True)
        self.procs["replica"] = subprocess.Popen(
            ["redis-server", os.path.join(ROOT, "lua-free-config",
                                          "redis.conf"),
             "--bind", "127.0.0.1", "--port", str(self.replica_port),
             "--dir", self._path("replica"),
             "--replicaof", "127.0.0.1", str(self.redis_port)],
            stdout=self._log("replica"), stderr=subprocess.STDOUT)
        self.replica = redislib.Redis(host="127.0.0.1",
                                      port=self.replica_port,
                                      decode_responses=True)
        self._wait("the replica in sync", self.replica_in_sync)

    def replica_in_sync(self):
        try:
            info = self.replica.info("replication")
        except redislib.ConnectionError:
            return False
        if info.get("master_link_status") != "up":
            return False
        master = self.redis.info("replication")
        return info.get("slave_repl_offset") == master.get(
            "master_repl_offset")

    def _start_nginx(self):
        # dev.conf with the WAIT directives, rendered like any template
        with open(os.path.join(ROOT, "lua-free-config", "dev.conf")) as f:
            conf = f.read()
        conf = conf.replace(
            "    guichet_redis_pool 2;\n",
            "    guichet_redis_pool 2;\n"
            "    guichet_redis_wait_replicas 1;\n"
            "    guichet_redis_wait_timeout %dms;\n" % WAIT_TIMEOUT_MS, 1)
        assert "guichet_redis_wait_replicas 1;" in conf
        self.nginx_template = self._path("dev-wait.conf")
        with open(self.nginx_template, "w") as f:
            f.write(conf)
        super()._start_nginx()

    def stop(self):
        p = self.procs.get("replica")
        if p is not None and p.poll() is None:
            p.send_signal(signal.SIGCONT)
        super().stop()
        p = self.procs.pop("replica", None)
        if p is not None:
            self._end(p, signal.SIGTERM, 10)


@pytest.fixture(scope="module")
def s():
    st = ReplicaStack(town=DEMO_TOWN, name="redis-wait").start()
    yield st
    try:
        st.assert_clean_error_log()
    finally:
        st.stop()


@pytest.fixture(scope="module")
def tok(s):
    return s.token("f-martin")


def key():
    return "w-" + uuid.uuid4().hex


def book(s, tok, sid, idem, child=CHILD):
    return s.http("POST", "/api/bookings", token=tok,
                  headers={"Idempotency-Key": idem},
                  json={"items": [{"child_id": child, "session_id": sid}]})


def planning(s, tok, sid, child=CHILD):
    r = s.http("GET", "/api/bookings?from=2027-07-01&to=2027-07-31",
               token=tok)
    assert r.status == 200, r
    return [b for b in r.json()["bookings"]
            if b.get("session_id") == sid and b.get("child_id") == child]


class Paused:
    """The replica stopped (SIGSTOP) inside the with block."""

    def __init__(self, s):
        self.s = s

    def __enter__(self):
        self.s.procs["replica"].send_signal(signal.SIGSTOP)
        return self

    def __exit__(self, *exc):
        self.s.procs["replica"].send_signal(signal.SIGCONT)
        deadline = time.monotonic() + 20
        while not self.s.replica_in_sync():
            assert time.monotonic() < deadline, "replica never caught up"
            time.sleep(0.05)


def assert_not_replicated(r):
    assert r.status == 503, r
    assert r.json()["error"]["code"] == "not_replicated", r
    assert r.json()["error"]["message"], r
    assert r.headers.get("retry-after") == "1", r


def test_a_booking_is_confirmed_once_a_replica_holds_it(s, tok):
    sid = "klub-0707-danse"
    r = book(s, tok, sid, key())
    assert r.status == 200, r
    item = r.json()["items"][0]
    assert item["status"] == "confirmed", r.json()
    # the replica has what the answer confirmed, before the answer
    assert s.replica.dbsize() == s.redis.dbsize() or s.replica_in_sync()


def test_a_stalled_replica_turns_the_2xx_into_503_and_the_retry_replays(
        s, tok):
    sid = "klub-0708-danse"
    idem = key()
    with Paused(s):
        r = book(s, tok, sid, idem)
        assert_not_replicated(r)
        # the master made the booking: it is there, just not confirmed
        assert len(planning(s, tok, sid)) == 1
    r = book(s, tok, sid, idem)
    assert r.status == 200, r
    assert r.headers.get("idempotent-replayed") == "true", r
    assert r.json()["items"][0]["status"] == "confirmed", r.json()
    rows = planning(s, tok, sid)
    assert len(rows) == 1, rows
    assert rows[0]["booking_id"] == r.json()["items"][0]["booking_id"]


def places_left(s, sid):
    r = s.http("GET", "/api/activities/klub-8-12/sessions"
               "?from=2027-07-01&to=2027-07-31")
    assert r.status == 200, r
    return [x["places_left"] for x in r.json() if x["session_id"] == sid][0]


def test_a_cancellation_waits_too_and_happens_once(s, tok):
    sid = "klub-0709-jeux"
    left = places_left(s, sid)
    r = book(s, tok, sid, key())
    assert r.status == 200, r
    bid = r.json()["items"][0]["booking_id"]
    assert places_left(s, sid) == left - 1
    with Paused(s):
        r = s.http("DELETE", "/api/bookings/" + bid, token=tok)
        assert_not_replicated(r)
    r = s.http("DELETE", "/api/bookings/" + bid, token=tok)
    assert r.status == 404, r
    assert planning(s, tok, sid) == []
    # the place came back once
    assert places_left(s, sid) == left


def test_what_is_not_a_2xx_does_not_wait(s, tok):
    sid = "klub-0712-cuisine"
    idem = key()
    r = book(s, tok, sid, idem)
    assert r.status == 200, r
    with Paused(s):
        # the same key with another body: refused at once, nothing written
        r = book(s, tok, "klub-0713-grimpe", idem)
        assert r.status == 422, r
        assert r.json()["error"]["code"] == "idempotency_key_reused", r


def test_bookings_together_share_waits_and_are_all_confirmed(s):
    toks = s.tokens()
    fams = [("f-martin", "c-hugo"), ("f-bernard", "c-chloe"),
            ("f-bernard", "c-noah"), ("f-nguyen", "c-ines"),
            ("f-nguyen", "c-sami")]
    sid = "klub-0713-grimpe"

    def one(fc):
        return book(s, toks[fc[0]], sid, key(), child=fc[1])

    with concurrent.futures.ThreadPoolExecutor(len(fams)) as ex:
        answers = list(ex.map(one, fams))
    for r in answers:
        assert r.status == 200, r
        assert r.json()["items"][0]["status"] in ("confirmed", "refused"), r
    assert any(r.json()["items"][0]["status"] == "confirmed"
               for r in answers), answers


def test_a_stalled_replica_refuses_every_concurrent_booking(s):
    toks = s.tokens()
    fams = [("f-martin", "c-hugo"), ("f-bernard", "c-chloe"),
            ("f-nguyen", "c-ines")]
    sid = "klub-0712-cuisine"
    with Paused(s):
        with concurrent.futures.ThreadPoolExecutor(len(fams)) as ex:
            answers = list(ex.map(
                lambda fc: book(s, toks[fc[0]], sid, key(), child=fc[1]),
                fams))
    # a 2xx needs the replica: none comes while it sleeps
    assert not [r for r in answers if 200 <= r.status < 300], answers
    for r in answers:
        if r.status == 503:
            assert_not_replicated(r)
