"""test_orphans.py -- an nginx worker killed between the two steps of an
attempt that is not the first with its key: a client retrying a key whose
answer it never read (a replay).

Step one of every attempt takes the cells' places (BITFIELD ... -1) in the
same MULTI as the idempotency read; a replay gives them back in its step
two.  Here the nginx workers die between the two: Redis is stopped, the
replay's step one waits in Redis's socket, the workers are killed, Redis
continues and runs it.  What must hold once the worker's reaper has looked
at gch:inflight: left + booked = online places (no place held by nobody).
Before 'reaper: recount the sessions of a dead replay' the place stayed
taken for good: the reaper saw the "D" record, removed the member and
recounted nothing.

Still open (not fixed, not tested here): an attempt answered 409 (the first
attempt with its key still between its steps) also takes places in its step
one; if its nginx worker dies before it gives them back and the first
attempt then finishes normally, nothing in Redis remembers them.
"""

import os
import signal
import socket

from faultlib import (body_of, book, booked, child, conf_template, left,
                      online, rush_town, settled)
from matrix import MatrixStack, wait_until

TOWN = rush_town(families=4, sessions=(("o1", 20),))


def test_replay_killed_between_its_steps(tmp_path):
    tpl = conf_template(tmp_path, "orphans",
                        replace=[("guichet_timeout 2s;",
                                  "guichet_timeout 1s;")])
    s = MatrixStack(town=TOWN, name="fault-orphans", nginx_template=tpl,
                    worker_settings={"reap_after_ms": 3000})
    s.start()
    try:
        tok = s.tokens()
        f = "f-0001"
        r = book(s, tok[f], [(child(f), "o1")], idem="k-replay")
        assert r.json()["items"][0]["status"] == "confirmed", r
        wait_until("settled", lambda: settled(s), 10)
        assert left(s, "o1") + len(booked(s, "o1")) == online(20)

        redis = s.procs["redis"]
        redis.send_signal(signal.SIGSTOP)
        try:
            body = body_of([(child(f), "o1")]).encode()
            c = socket.create_connection(("127.0.0.1", s.port), 5)
            c.sendall(("POST /api/bookings HTTP/1.1\r\nHost: x\r\n"
                       "Authorization: Bearer %s\r\n"
                       "Idempotency-Key: k-replay\r\n"
                       "Content-Type: application/json\r\n"
                       "Content-Length: %d\r\n\r\n"
                       % (tok[f], len(body))).encode() + body)
            # the 503 at guichet_timeout: nginx has sent step one and
            # waits for its reply (docs/architecture.md)
            c.settimeout(30)
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = c.recv(4096)
                assert chunk, head
                head += chunk
            assert head.startswith(b"HTTP/1.1 503"), head
            for p in s.nginx_workers():
                os.kill(p, signal.SIGKILL)
            c.close()
        finally:
            redis.send_signal(signal.SIGCONT)

        # the replay's step one ran: its member is back in gch:inflight
        # and it holds one more place than the bookings account for
        member = "{f:%s}:idem:k-replay" % f
        wait_until("the replay's step one",
                   lambda: s.redis.zscore("gch:inflight", member), 10)
        assert s.redis.get(member).startswith("D ")
        assert left(s, "o1") + len(booked(s, "o1")) == online(20) - 1

        # the reaper gives it back (worker/reaper.c, "D" members)
        wait_until("gch:inflight empty", lambda: settled(s), 30)
        wait_until("left + booked = online places",
                   lambda: left(s, "o1") + len(booked(s, "o1"))
                   == online(20), 10)
        assert booked(s, "o1") == {r.json()["items"][0]["booking_id"]}
    finally:
        s.stop()
