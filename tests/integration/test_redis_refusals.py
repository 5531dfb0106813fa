"""test_redis_refusals.py -- Redis answering with an error instead of data
(issue 17): LOADING while a restarted Redis reads its AOF, OOM when
maxmemory is reached under the shipped policy noeviction.

Each step of a booking, a cancellation, an absence, a login and the reads
that need Redis is answered 503 unavailable with Retry-After and the JSON
error body: never 500, never a wrong answer (a login refused as if the
password were wrong, a login whose session Redis did not record, a wrong
password not counted, an empty planning), and nothing half written (a
booking refused by OOM keeps no place, in Redis or in PostgreSQL).  Over
maxmemory Redis refuses every command queued in a MULTI, reads included.

The load is made slow and deterministic with Redis 7.0's hidden settings
key-load-delay (a pause per key loaded) and
loading-process-events-interval-bytes (answer clients every KiB): the AOF
is rewritten with 200,000 filler keys first, so that loading lasts long
enough, then key-load-delay is set to 0 to let it finish.
"""

import os
import sys
import time
import uuid

import pytest
import redis as redislib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from stack import DEMO_TOWN  # noqa: E402

SESSION = "klub-0709-jeux"
CHILD = "c-lea"
FILLER = 200000


def key():
    return "t-" + uuid.uuid4().hex


def book(s, tok, sid=SESSION, child=CHILD, idem=None):
    return s.http("POST", "/api/bookings", token=tok,
                  headers={"Idempotency-Key": idem or key()},
                  json={"items": [{"child_id": child, "session_id": sid}]})


def assert_unavailable(r, what):
    assert r.status == 503, (what, r)
    assert r.headers.get("content-type", "").startswith("application/json"), \
        (what, r)
    assert r.json()["error"]["code"] == "unavailable", (what, r)
    assert r.json()["error"]["message"], (what, r)
    assert r.headers.get("retry-after") == "1", (what, r)


def redis_loading(s):
    try:
        s.redis.exists("{main}:catalogue:gen")
        return False
    except redislib.BusyLoadingError:
        return True


def wait(what, ok, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ok():
            return
        time.sleep(0.05)
    raise AssertionError("%s: not within %d s" % (what, timeout))


def requests_(s, tok, bid_cancel, bid_absence):
    """Every kind of request that needs Redis, as (what, thunk).
    (GET /api/activities and /api/me answer from the catalogue alone.)"""
    return [
        ("login", lambda: s.http("POST", "/api/session",
                                 json={"login": "martin",
                                       "password": "secret-demo"})),
        ("sessions", lambda: s.http(
            "GET", "/api/activities/klub-8-12/sessions"
                   "?from=2027-07-09&to=2027-07-09")),
        ("planning", lambda: s.http(
            "GET", "/api/bookings?from=2027-07-01&to=2027-07-31",
            token=tok)),
        ("requests", lambda: s.http("GET", "/api/requests", token=tok)),
        ("booking", lambda: book(s, tok, "klub-0713-grimpe")),
        ("cancellation", lambda: s.http("DELETE", "/api/bookings/" +
                                        bid_cancel, token=tok)),
        ("absence", lambda: s.http("POST", "/api/absences", token=tok,
                                   json={"booking_id": bid_absence,
                                         "reason": "medical"})),
    ]


def two_bookings(s, tok):
    bids = []
    for sid in (SESSION, "klub-0712-cuisine"):
        r = book(s, tok, sid)
        assert r.status == 200 and \
            r.json()["items"][0]["status"] == "confirmed", r
        bids.append(r.json()["items"][0]["booking_id"])
    return bids


def test_redis_loading_is_503_with_retry_after(make_stack):
    s = make_stack(DEMO_TOWN, name="loading")
    tok = s.token("f-martin")
    bid_cancel, bid_absence = two_bookings(s, tok)
    s.wait_worker_drained()
    count = s.sql("select count(*) from booking")[0][0]

    # an AOF whose loading lasts: filler keys, rewritten into its RDB base
    p = s.redis.pipeline(transaction=False)
    for i in range(FILLER):
        p.set("filler:%d" % i, "x")
    p.execute()
    s.redis.bgrewriteaof()

    def rewritten():
        i = s.redis.info("persistence")
        return not i["aof_rewrite_in_progress"] and \
            not i["aof_rewrite_scheduled"]
    time.sleep(0.2)
    wait("the AOF rewrite", rewritten)

    s.stop_redis()
    s.start_redis(extra=["--key-load-delay", "100",
                         "--loading-process-events-interval-bytes", "1024"],
                  loading=True)
    assert redis_loading(s)

    # the module reconnects to the loading Redis and is answered LOADING
    def answered_loading():
        return s.http("GET", "/api/activities/klub-8-12/sessions"
                             "?from=2027-07-09&to=2027-07-09").status == 503
    wait("the module on the loading Redis", answered_loading)

    for what, req in requests_(s, tok, bid_cancel, bid_absence):
        assert redis_loading(s), "the load ended too soon: " + what
        assert_unavailable(req(), what)
    assert redis_loading(s), "the load ended too soon"

    # the load finishes: everything is back, nothing was written meanwhile
    s.redis.config_set("key-load-delay", "0")
    wait("the end of the load", lambda: not redis_loading(s))
    wait("the module after the load",
         lambda: s.http("GET", "/api/activities/klub-8-12/sessions"
                               "?from=2027-07-09&to=2027-07-09").status
         == 200)

    r = s.http("POST", "/api/session",
               json={"login": "martin", "password": "secret-demo"})
    assert r.status == 200, r
    r = s.http("DELETE", "/api/bookings/" + bid_cancel, token=tok)
    assert r.status == 200, r
    s.wait_worker_drained()
    assert s.sql("select count(*) from booking")[0][0] == count


def test_redis_oom_is_503_and_books_nothing(make_stack):
    s = make_stack(DEMO_TOWN, name="oom")
    tok = s.token("f-martin")
    bid_cancel, bid_absence = two_bookings(s, tok)
    s.wait_worker_drained()

    def state():
        r = s.redis
        keys = sum(1 for k in r.scan_iter(count=1000)
                   if not k.startswith("filler:"))
        left = r.get("{main}:s:%s:left" % "klub-0713-grimpe")
        return keys, r.xlen("{main}:stream"), left

    # a tiny maxmemory, filled to the brim
    used = s.redis.info("memory")["used_memory"]
    s.redis.config_set("maxmemory", str(used + 512 * 1024))
    i = 0
    with pytest.raises(redislib.ResponseError, match="OOM"):
        while True:
            s.redis.set("filler:%d" % i, "x" * 1024)
            i += 1
    # firmly over it (the first OOM is at the edge: Redis frees its AOF
    # buffer and may take writes again)
    used = s.redis.info("memory")["used_memory"]
    s.redis.config_set("maxmemory", str(used - 256 * 1024))
    with pytest.raises(redislib.ResponseError, match="OOM"):
        s.redis.set("filler:x", "x")

    s.wait_worker_drained()
    before = state()
    count = s.sql("select count(*) from booking")[0][0]

    idem = key()
    assert_unavailable(book(s, tok, "klub-0713-grimpe", idem=idem), "booking")
    assert_unavailable(s.http("DELETE", "/api/bookings/" + bid_cancel,
                              token=tok), "cancellation")
    assert_unavailable(s.http("POST", "/api/absences", token=tok,
                              json={"booking_id": bid_absence,
                                    "reason": "medical"}), "absence")

    # a login is 503 too: a session Redis did not record could not be
    # ended by a password change, a wrong password not counted would
    # never lock the account
    assert_unavailable(s.http("POST", "/api/session",
                              json={"login": "martin",
                                    "password": "secret-demo"}), "login")
    assert_unavailable(s.http("POST", "/api/session",
                              json={"login": "martin",
                                    "password": "wrong"}), "wrong password")
    assert s.redis.get("{main}:loginfail:127.0.0.1/martin") is None

    # over maxmemory Redis refuses every command queued in a MULTI, reads
    # included: the reads that need Redis are 503 too, never a wrong answer;
    # those from the catalogue alone still answer
    assert_unavailable(s.http("GET", "/api/bookings?from=2027-07-01"
                              "&to=2027-07-31", token=tok), "planning")
    assert s.http("GET", "/api/me", token=tok).status == 200

    assert state() == before
    s.wait_worker_drained()
    assert s.sql("select count(*) from booking")[0][0] == count

    # room again: the same request goes through
    s.redis.config_set("maxmemory", "0")
    r = s.http("POST", "/api/session",
               json={"login": "martin", "password": "secret-demo"})
    assert r.status == 200 and r.json()["family_id"] == "f-martin", r
    r = s.http("POST", "/api/session",
               json={"login": "martin", "password": "wrong"})
    assert r.status == 401, r
    assert s.redis.get("{main}:loginfail:127.0.0.1/martin") == "1"

    r = book(s, tok, "klub-0713-grimpe", idem=idem)
    assert r.status == 200 and r.json()["items"][0]["status"] == "confirmed", r
    r = s.http("GET", "/api/bookings?from=2027-07-01&to=2027-07-31",
               token=tok)
    assert r.status == 200, r
    assert len(r.json()["bookings"]) == 3, r.json()
    s.wait_worker_drained()
    assert s.sql("select count(*) from booking")[0][0] == count + 1


def test_login_waits_for_its_record(make_stack):
    """A login's bookkeeping is written before the answer: when Redis
    refuses it (OOM between the login's read and its record, a Redis that
    went away, here an ACL that denies the commands), the answer is 503,
    not a 200 whose session a password change could not end, nor a 401
    whose failure never counts towards the lock."""
    s = make_stack(DEMO_TOWN, name="login-record")
    right = {"login": "martin", "password": "secret-demo"}
    wrong = {"login": "martin", "password": "wrong"}
    conns = s.redis.llen("{main}:f:f-martin:connections")

    s.redis.execute_command("ACL", "SETUSER", "default", "-lpush", "-incr")
    try:
        assert_unavailable(s.http("POST", "/api/session", json=right),
                           "login")
        assert_unavailable(s.http("POST", "/api/session", json=wrong),
                           "wrong password")
    finally:
        s.redis.execute_command("ACL", "SETUSER", "default", "+@all")
    assert s.redis.get("{main}:loginfail:127.0.0.1/martin") is None
    assert s.redis.llen("{main}:f:f-martin:connections") == conns

    r = s.http("POST", "/api/session", json=right)
    assert r.status == 200, r
    assert s.redis.llen("{main}:f:f-martin:connections") == conns + 1
    assert s.http("POST", "/api/session", json=wrong).status == 401
    assert s.redis.get("{main}:loginfail:127.0.0.1/martin") == "1"
