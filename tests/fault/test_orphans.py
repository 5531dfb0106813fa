"""test_orphans.py -- an nginx worker killed between the two steps of an
attempt that is not the first with its key: a client retrying a key whose
answer it never read (a replay).

Step one of every attempt takes the cells' claims and places (SET NX,
BITFIELD ... -1) in the same MULTI as the idempotency read; a replay gives
them back in its step two.  Here the nginx workers die between the two:
Redis is stopped, the replay is answered 503 at guichet_timeout (so nginx
has sent step one and waits), the workers are killed, Redis continues and
runs step one with nobody left to send step two.

* test_replay_killed_between_its_steps: the replay's place must come back
  (left + booked = online places) once the worker's reaper has looked at
  {main}:inflight.  Before a1cd369 the place stayed taken for good: the
  reaper saw the "D" record, removed the member and recounted nothing.
* test_replay_of_a_refused_cell_killed_between_its_steps: a replay of an
  answer that refused a cell may set that cell's claims (the place came
  back meanwhile).  Before the reaper released them (gchw_replay_claims:
  the claims holding this key's booking id of a refused cell), the child
  was then refused "already_booked" on a session it does not hold, until
  the claims expired (the day after the session).

* test_retry_answered_409_gives_its_place_back_after_the_recount: the
  first attempt with a key dies between its steps; the client's retry,
  answered 409 because the orphan's record is still there, took a place in
  its step one and gives it back in its step two, which here comes after
  the reaper released the orphan.  Before recount_after_ms the reaper
  recounted the session at the release: the place came back twice (left +
  booked = online + 1, an oversell of one).

* test_retry_answered_409_killed_while_the_first_finishes: a retry
  answered 409 dies between its steps while the first attempt with the
  key finishes normally; its own member in {main}:inflight (every attempt
  has one since attempt ids) brings its place back.
"""

import hashlib
import os
import signal
import time

import pytest

from faultlib import (body_of, book, booked, child, conf_template, left,
                      online, rush_town, send_booking, settled,
                      step_one_alone)
from matrix import MatrixStack, wait_until
import demande  # noqa: E402 -- on the path faultlib set

TOWN = rush_town(families=4, sessions=(("o1", 20), ("o2", 2)))


@pytest.fixture
def s(tmp_path):
    tpl = conf_template(tmp_path, "orphans",
                        replace=[("guichet_timeout 2s;",
                                  "guichet_timeout 1s;")])
    st = MatrixStack(town=TOWN, name="fault-orphans", nginx_template=tpl,
                     worker_settings={"reap_after_ms": 3000,
                                      "recount_after_ms": 3000})
    st.start()
    yield st
    st.stop()


def whole(s, sid, places):
    return left(s, sid) + len(booked(s, sid)) == online(places)


def replay_dies(s, token, f, sid, key, record="D "):
    """Sends f's booking of sid with key again while Redis is stopped,
    reads its 503, kills every nginx worker, lets Redis run the replay's
    step one; returns once its member is back in {main}:inflight (record "P "
    for a first attempt)."""
    step_one_alone(s, token, key, body_of([(child(f), sid)]).encode())
    rec = "{main}:f:%s:idem:%s" % (f, key)
    wait_until("the replay's step one", lambda: attempts(s, rec), 10)
    assert s.redis.get(rec).startswith(record)


def attempts(s, rec):
    """The members of {main}:inflight of the attempts with record key rec
    ("<rec>#<attempt id>")."""
    return [m for m in s.redis.zrange("{main}:inflight", 0, -1)
            if m.startswith(rec + "#")]


def test_replay_killed_between_its_steps(s):
    tok = s.tokens()
    f = "f-0001"
    r = book(s, tok[f], [(child(f), "o1")], idem="k-replay")
    assert r.json()["items"][0]["status"] == "confirmed", r
    wait_until("settled", lambda: settled(s), 10)
    assert whole(s, "o1", 20)

    replay_dies(s, tok[f], f, "o1", "k-replay")
    # it holds one more place than the bookings account for
    assert left(s, "o1") + len(booked(s, "o1")) == online(20) - 1

    # the reaper gives it back (worker/reaper.c, "D" members)
    wait_until("{main}:inflight empty", lambda: settled(s), 30)
    wait_until("left + booked = online places",
               lambda: whole(s, "o1", 20), 10)
    assert booked(s, "o1") == {r.json()["items"][0]["booking_id"]}


def test_replay_of_a_refused_cell_killed_between_its_steps(s):
    tok = s.tokens()
    a, b = "f-0002", "f-0003"              # o2: one online place
    r = book(s, tok[a], [(child(a), "o2")])
    bid = r.json()["items"][0]["booking_id"]
    r = book(s, tok[b], [(child(b), "o2")], idem="k-full")
    assert r.json()["items"][0]["reason"] == "full", r
    # the place comes back: the replay will take it and set b's claims
    r = s.http("DELETE", "/api/bookings/" + bid, token=tok[a])
    assert r.status == 200, r
    wait_until("settled", lambda: settled(s), 10)
    # past guichet_full_cache (200 ms): the nginx worker that answered
    # "full" would otherwise answer the replay from its sold-out cache
    # (one EXISTS, no step one) and there would be nothing to test
    time.sleep(0.5)

    replay_dies(s, tok[b], b, "o2", "k-full")
    wait_until("{main}:inflight empty", lambda: settled(s), 30)
    wait_until("left + booked = online places",
               lambda: whole(s, "o2", 2), 10)
    # b's child holds nothing: a new request must get the place
    r = book(s, tok[b], [(child(b), "o2")])
    assert r.json()["items"][0]["status"] == "confirmed", r


def test_retry_answered_409_gives_its_place_back_after_the_recount(s):
    tok = s.tokens()
    f = "f-0004"                           # o1: ten online places
    replay_dies(s, tok[f], f, "o1", "k-409", record="P ")
    member = "{main}:f:%s:idem:k-409" % f
    assert left(s, "o1") == online(20) - 1     # the orphan's place
    # the respawned nginx workers have read the catalogue
    # every nginx worker (respawned ones too) holds the catalogue: eight
    # answers in a row may all have come from the same worker
    s.wait_catalogue_everywhere()

    # the retry reaches Redis while the orphan's record is still "P"; its
    # nginx worker is frozen before it reads step one's reply
    redis = s.procs["redis"]
    workers = []
    redis.send_signal(signal.SIGSTOP)
    try:
        body = body_of([(child(f), "o1")]).encode()
        c = send_booking(s.port, tok[f], "k-409", body)
        time.sleep(0.5)                    # nginx sends step one, waits
        workers = s.nginx_workers()
        for p in workers:
            os.kill(p, signal.SIGSTOP)
    finally:
        redis.send_signal(signal.SIGCONT)
    try:
        wait_until("the retry's step one", lambda: left(s, "o1") == online(20) - 2, 10)
        # the reaper releases the orphan: record, claim and member gone
        wait_until("the orphan released",
                   lambda: not s.redis.exists(member), 30)
        # a reaper round (every second) later: had the session been
        # recounted now, the retry's place would come back twice
        time.sleep(1.5)
    finally:
        for p in workers:
            os.kill(p, signal.SIGCONT)
    head = b""
    c.settimeout(30)
    while b"\r\n\r\n" not in head:
        chunk = c.recv(4096)
        if not chunk:
            break
        head += chunk
    c.close()
    # 409, or 503 when the frozen worker's deadline fired first: either
    # way its step two gives the place back
    assert head.startswith((b"HTTP/1.1 409", b"HTTP/1.1 503")), head

    wait_until("the recount", lambda: s.redis.zcard("{main}:recount") == 0, 30)
    wait_until("settled", lambda: settled(s), 10)
    assert booked(s, "o1") == set()
    assert left(s, "o1") == online(20)

    # and the parent's next retry books
    r = book(s, tok[f], [(child(f), "o1")], idem="k-409")
    assert r.json()["items"][0]["status"] == "confirmed", r


def test_retry_answered_409_killed_while_the_first_finishes(s):
    """The first attempt with a key is between its steps (written here as
    the module writes it); a retry of the same body reaches Redis, is
    answered 409, and its nginx worker dies before its step two gives back
    the place its step one took; the first attempt then finishes normally.
    The retry's own member in {main}:inflight brings the place back.  The
    first attempt's member is written as before attempts had ids (the
    record key itself): the retry's ZADD NX of that same member then found
    it, the first attempt's step two removed it, and nothing in Redis
    remembered the retry's place (left + booked = online - 1 for good)."""
    tok = s.tokens()
    f, key = "f-0002", "k-409-dead"
    cid = child(f)
    body = body_of([(cid, "o1")])
    h = hashlib.blake2b(body.encode(), digest_size=16).hexdigest()
    rec = "{main}:f:%s:idem:%s" % (f, key)
    r = s.redis
    # every nginx worker (respawned ones too) holds the catalogue: eight
    # answers in a row may all have come from the same worker
    s.wait_catalogue_everywhere()

    # the first attempt's step one: its record, member and place
    first = rec
    r.set(rec, "P %s %d []" % (h, int(time.time() * 1000)), ex=3600)
    r.zadd("{main}:inflight", {first: int(time.time() * 1000)})
    r.execute_command("BITFIELD", "{main}:s:o1:left", "OVERFLOW", "FAIL",
                      "INCRBY", "u32", "0", "-1")

    replay_dies(s, tok[f], f, "o1", key, record="P ")
    assert len(attempts(s, rec)) == 1, r.zrange("{main}:inflight", 0, -1)
    # the retry took a place and set the child's claim (for the same
    # booking id as the first attempt's)
    assert left(s, "o1") == online(20) - 2
    claims = [k for k in r.scan_iter("{main}:c:%s:*" % cid)]
    assert len(claims) == 1
    bid = r.get(claims[0]).split()[1]

    # the first attempt's step two: its answer as the module stores it,
    # the compact demande (bare: the record's key names family and key)
    answer = "~1 999 0 w 0: 0: 0: 1 %d:%s 2:o1 +450" % (len(cid), cid)
    assert demande.record_answer("D %s %s" % (h, answer), f, key)[
        "items"][0]["booking_id"] == bid
    p = r.pipeline(transaction=True)
    p.set(rec, "D %s %s" % (h, answer), xx=True, ex=3600)
    p.zrem("{main}:inflight", first)
    p.sadd("{main}:s:o1:booked", bid)
    p.execute()
    assert left(s, "o1") + len(booked(s, "o1")) == online(20) - 1

    # the reaper: the retry's member is old, its body the record's
    wait_until("settled", lambda: settled(s), 30)
    assert whole(s, "o1", 20)
    assert booked(s, "o1") == {bid}


def test_recount_waits_for_a_replay_between_its_steps(s):
    """A session due for its recount while a replay of a stored answer
    holding it is between its steps: the replay's step one took a place
    its step two gives back, so the recount must wait for it (the
    replay's record is a "D" whose cells the reaper reads).  The stored
    answer is the module's compact demande (docs/architecture.md): when
    the reaper looked for the session's id in it as JSON text, it found
    nothing, recounted at once, and the replay's step two then brought the
    place back a second time (left + booked = online + 1)."""
    f, key = "f-0003", "k-busy"
    cid = child(f)
    body = body_of([(cid, "o1")])
    h = hashlib.blake2b(body.encode(), digest_size=16).hexdigest()
    rec = "{main}:f:%s:idem:%s" % (f, key)
    r = s.redis
    now = int(time.time() * 1000)

    # the first attempt booked o1 (its record, its place, its booking)
    answer = "~1 998 0 w 0: 0: 0: 1 %d:%s 2:o1 +450" % (len(cid), cid)
    bid = demande.record_answer("D %s %s" % (h, answer), f, key)[
        "items"][0]["booking_id"]
    p = r.pipeline(transaction=True)
    p.set(rec, "D %s %s" % (h, answer), ex=3600)
    p.execute_command("BITFIELD", "{main}:s:o1:left", "OVERFLOW", "FAIL",
                      "INCRBY", "u32", "0", "-1")
    p.sadd("{main}:s:o1:booked", bid)
    p.execute()
    assert whole(s, "o1", 20)

    # a replay's step one: its member (young for a minute), its place
    member = "%s#%d.1.%s" % (rec, now + 60000, h[:8])
    p = r.pipeline(transaction=True)
    p.zadd("{main}:inflight", {member: now + 60000})
    p.execute_command("BITFIELD", "{main}:s:o1:left", "OVERFLOW", "FAIL",
                      "INCRBY", "u32", "0", "-1")
    p.execute()

    # both sessions due; o2 after o1: once o2 is recounted, o1 was looked at
    r.zadd("{main}:recount", {"o1": now - 2000, "o2": now - 1000})
    wait_until("o2 recounted", lambda: r.zscore("{main}:recount", "o2") is None,
               30)
    assert r.zscore("{main}:recount", "o1") is not None, "recounted too soon"
    assert left(s, "o1") + len(booked(s, "o1")) == online(20) - 1

    # the replay's step two gives its place back; then the recount
    p = r.pipeline(transaction=True)
    p.execute_command("BITFIELD", "{main}:s:o1:left", "OVERFLOW", "FAIL",
                      "INCRBY", "u32", "0", "1")
    p.zrem("{main}:inflight", member)
    p.execute()
    wait_until("o1 recounted", lambda: r.zscore("{main}:recount", "o1") is None,
               30)
    assert whole(s, "o1", 20)
    assert booked(s, "o1") == {bid}
