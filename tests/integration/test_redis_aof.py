"""test_redis_aof.py -- what a crashed Redis reads back (issue 20).

A restarted Redis answers LOADING (every request a 503) until it has read
its AOF, and replaying commands costs four to five times what loading
the same data from an RDB base does.  lua-free-config/redis.conf has
Redis rewrite its AOF into an RDB base by itself once the commands since
the last rewrite reach 64 MB (auto-aof-rewrite-min-size): after a crash
it loads that base and the commands since, not a season of commands (a
gigabyte under the former 1gb: 11.4 s of 503s after `make bench`).

The test books, writes 80 MB of commands into the tests' Redis (the
shipped redis.conf), and checks that Redis rewrote its AOF by itself:
the manifest's base is an RDB file holding the data, the commands left
to replay are fewer than 64 MB.  Then Redis is killed (SIGKILL) and
restarted: the booking's answer is replayed as it was given, and a new
booking is confirmed.  No timing is asserted: bench/restart.py (a phase of
`make bench`) measures how long the restart takes.
"""

import os
import signal
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from stack import DEMO_TOWN  # noqa: E402

CHILD = "c-lea"


def book(s, tok, sid, idem):
    return s.http("POST", "/api/bookings", token=tok,
                  headers={"Idempotency-Key": idem},
                  json={"items": [{"child_id": CHILD, "session_id": sid}]})


def wait(what, ok, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ok():
            return
        time.sleep(0.1)
    raise AssertionError("%s: not within %d s" % (what, timeout))


def manifest(s):
    """The multi-part AOF's files: [(name, type b/h/i, bytes)]."""
    d = os.path.join(s.dir, "redis", "appendonlydir")
    out = []
    with open(os.path.join(d, "appendonly.aof.manifest")) as fh:
        for line in fh:
            f = line.split()
            kv = dict(zip(f[::2], f[1::2]))
            out.append((kv["file"], kv["type"],
                        os.path.getsize(os.path.join(d, kv["file"]))))
    return out


def test_redis_rewrites_its_aof_and_a_crash_loads_the_rdb_base(make_stack):
    s = make_stack(DEMO_TOWN, name="aof")
    tok = s.token("f-martin")
    idem = "t-" + uuid.uuid4().hex
    first = book(s, tok, "klub-0709-jeux", idem)
    assert first.status == 200, first
    assert first.json()["items"][0]["status"] == "confirmed", first
    r = s.redis
    assert r.info("persistence")["aof_rewrites"] == 0

    # 80 MB of commands (values LZF cannot shrink, so that the RDB base
    # shows the data): more than auto-aof-rewrite-min-size
    p = r.pipeline(transaction=False)
    for i in range(80):
        p.set("filler:%d" % i, os.urandom(1 << 20))
    p.execute()

    def rewritten():
        i = r.info("persistence")
        return (i["aof_rewrites"] >= 1 and not i["aof_rewrite_in_progress"]
                and not i["aof_rewrite_scheduled"])
    wait("Redis rewriting its AOF by itself", rewritten)
    files = manifest(s)
    bases = [f for f in files if f[1] == "b"]
    incrs = [f for f in files if f[1] == "i"]
    assert len(bases) == 1 and bases[0][0].endswith(".base.rdb"), files
    assert bases[0][2] > 32 << 20, files       # the data
    assert sum(f[2] for f in incrs) < 64 << 20, files

    s.stop_redis(signal.SIGKILL)
    s.start_redis()
    assert s.redis.exists("filler:79")
    # a client retrying its key gets the answer it was given
    again = book(s, tok, "klub-0709-jeux", idem)
    assert again.status == 200, again
    assert again.headers.get("idempotent-replayed") == "true", again
    assert again.body == first.body
    second = book(s, tok, "klub-0712-cuisine", "t-" + uuid.uuid4().hex)
    assert second.status == 200, second
    assert second.json()["items"][0]["status"] == "confirmed", second
