"""test_counters_layout.py -- a session's two counters in one Redis key
(issue 20, fifth pass): {T}:s:<sid>:left is 8 bytes, the online places
left as a big-endian u32 at bit 0 and the on-site ones (the counter's
quota) at bit 32; no {T}:s:<sid>:onsite any more (one key less, ~123
bytes of Redis a session).  The layout before (a 4-byte :left and a
4-byte :onsite) is merged by guichetctl migrate-keys and by the worker
at its start (backend/migrate.c, gchb_merge_counters): nothing lost,
every counter right, and an old :onsite written again after a first
pass (a module of the old layout still answering) joins the merged one.
"""

import json
import signal
import struct
import subprocess
import threading
import time
import uuid

from test_publish import town


def counters(s, sid):
    """(online left, on-site left) as the module reads them."""
    return tuple(s.redis.execute_command(
        "BITFIELD", "{main}:s:%s:left" % sid, "GET", "u32", "0",
        "GET", "u32", "32"))


def session_keys(s):
    return sorted(s.redis.scan_iter(match="{main}:s:p-*"))


def check(s):
    s.wait_worker_drained()
    r = subprocess.run([s.ctl, "-c", s.worker_conf, "check"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert r.returncode == 0, r.stdout.decode()


def agent_token(s):
    subprocess.run([s.ctl, "-c", s.worker_conf, "staff-add", "guichet-1",
                    "agent", "Agent"], input=b"counter-pass-1\n",
                   check=True, stdout=subprocess.PIPE)
    return s.ctl_run("staff-token", "guichet-1").strip()


def book(s, tok, sid, fid, staff=False):
    path = "/api/staff/bookings" if staff else "/api/bookings"
    body = {"items": [{"child_id": fid + "-c", "session_id": sid}]}
    if staff:
        body["family_id"] = fid
    r = s.http("POST", path, token=tok, json=body,
               headers={"Idempotency-Key": uuid.uuid4().hex})
    assert r.status == 200, r
    return r.json()["items"][0]


def wait_until(what, ok, timeout=15):
    t = time.monotonic()
    while time.monotonic() - t < timeout:
        if ok():
            return
        time.sleep(0.1)
    raise AssertionError("timed out: " + what)


def test_a_sessions_two_counters_are_one_key(make_stack):
    s = make_stack(town(8), name="counters-one-key")
    agent = agent_token(s)
    tok = s.tokens()

    # published: 8 places, 4 online and 4 at the counter, in one key each
    assert session_keys(s) == ["{main}:s:p-%d:left" % i for i in range(3)]
    assert s.redis.get("{main}:s:p-0:left") == struct.pack(">II", 4, 4) \
        .decode()
    assert [counters(s, "p-%d" % i) for i in range(3)] == [(4, 4)] * 3

    # each channel takes from its own u32
    it = book(s, agent, "p-0", "f1", staff=True)
    assert it["status"] == "confirmed", it
    assert counters(s, "p-0") == (4, 3)
    assert book(s, tok["f2"], "p-0", "f2")["status"] == "confirmed"
    assert counters(s, "p-0") == (3, 3)
    assert not s.redis.exists("{main}:s:p-0:onsite")
    check(s)

    # the on-site booking cancelled: its place back to the on-site u32
    r = s.http("DELETE", "/api/bookings/" + it["booking_id"], token=tok["f1"])
    assert r.status == 200, r
    assert counters(s, "p-0") == (3, 4)
    check(s)


def to_old_layout(s, onsite):
    """What a Redis of the layout before holds: a 4-byte :left (the online
    u32 alone) and a 4-byte :onsite per session."""
    r = s.redis
    for sid, o in onsite.items():
        online = counters(s, sid)[0]
        r.set("{main}:s:%s:left" % sid, struct.pack(">I", online))
        r.set("{main}:s:%s:onsite" % sid, struct.pack(">I", o))


def test_the_layout_before_is_merged(make_stack):
    s = make_stack(town(8), name="counters-merge")
    agent = agent_token(s)
    r = s.redis

    # the worker of the old layout is gone; Redis holds the old keys:
    # p-0's counter already sold one place, p-2 none left at the counter
    s._end(s.procs.pop("worker"), signal.SIGTERM, 10)
    to_old_layout(s, {"p-0": 3, "p-1": 4, "p-2": 0})
    assert r.strlen("{main}:s:p-0:left") == 4
    # a 4-byte :left reads 0 at bit 32 (past its end): the counter is full
    assert counters(s, "p-0") == (4, 0)

    out = s.ctl_run("migrate-keys")
    assert out.splitlines() == [
        "0 keys renamed to the layout of town main",
        "3 on-site counters merged into {main}:s:<sid>:left"], out
    assert session_keys(s) == ["{main}:s:p-%d:left" % i for i in range(3)]
    assert [counters(s, "p-%d" % i) for i in range(3)] == \
        [(4, 3), (4, 4), (4, 0)]
    # run again: nothing to do, nothing moves
    assert s.ctl_run("migrate-keys").splitlines() == [
        "0 keys renamed to the layout of town main"]
    assert [counters(s, "p-%d" % i) for i in range(3)] == \
        [(4, 3), (4, 4), (4, 0)]

    # a module of the old layout still answering gave a place back at the
    # counter after the first pass (its :onsite, written again): added
    r.set("{main}:s:p-2:onsite", struct.pack(">I", 1))
    assert s.ctl_run("migrate-keys").splitlines()[1:] == [
        "1 on-site counter merged into {main}:s:<sid>:left"]
    assert counters(s, "p-2") == (4, 1)

    # the worker merges at its start too (a stack restarted by the new
    # make run without guichetctl), then serves as before
    to_old_layout(s, {"p-1": 2})
    s._start_worker()
    wait_until("the worker's merge", lambda: not r.exists(
        "{main}:s:p-1:onsite"))
    assert "1 on-site counters merged" in s.read("worker.log")
    assert counters(s, "p-1") == (4, 2)

    # the merged quotas are the counter's: sold once each, then full
    assert book(s, agent, "p-2", "f1", staff=True)["status"] == "confirmed"
    it = book(s, agent, "p-2", "f2", staff=True)
    assert (it["status"], it.get("reason")) == ("refused", "full"), it
    assert counters(s, "p-2") == (4, 0)
    check(s)


def test_a_key_of_1_kb_does_not_stop_the_merge(make_stack):
    # a key of the pattern {main}:s:*:onsite whose name is 1 KB or more
    # (no session's: a :left of that name does not fit the merge's
    # buffers) is kept as it is, and the others of its SCAN batch are
    # merged; before, it failed the whole merge: guichetctl migrate-keys
    # exited 1 and the worker took it for Redis lost, again and again
    s = make_stack(town(8), name="counters-long-key")
    r = s.redis
    s._end(s.procs.pop("worker"), signal.SIGTERM, 10)
    to_old_layout(s, {"p-0": 3, "p-1": 4})
    long_key = "{main}:s:" + "x" * 1100 + ":onsite"
    r.set(long_key, struct.pack(">I", 7))

    assert s.ctl_run("migrate-keys").splitlines() == [
        "0 keys renamed to the layout of town main",
        "2 on-site counters merged into {main}:s:<sid>:left"]
    assert [counters(s, "p-%d" % i) for i in range(3)] == \
        [(4, 3), (4, 4), (4, 4)]
    assert r.get(long_key) == struct.pack(">I", 7).decode()

    # the worker's own merge at its start, the long key still there
    to_old_layout(s, {"p-2": 2})
    s._start_worker()
    wait_until("the worker's merge", lambda: not r.exists(
        "{main}:s:p-2:onsite"))
    assert counters(s, "p-2") == (4, 2)
    assert "key of 1116 bytes kept" in s.read("worker.log")
    check(s)


def test_a_publication_before_the_merge_merges_what_it_shifts(make_stack,
                                                              tmp_path):
    # guichetctl load-town (or the office) may publish before the merge:
    # a quota that went down merges the session's old :onsite first, then
    # shifts bit 32 (bit 32 of a 4-byte :left reads 0: a shift there alone
    # saturates and the merge would bring back the place taken away)
    s = make_stack(town(8), name="counters-shift-old")
    s._end(s.procs.pop("worker"), signal.SIGTERM, 10)
    to_old_layout(s, {"p-0": 4, "p-1": 3})
    path = tmp_path / "fewer.json"
    path.write_text(json.dumps(town(6)))        # 6 places: 3 and 3
    s.ctl_run("load-town", str(path))
    assert not s.redis.exists("{main}:s:p-0:onsite", "{main}:s:p-1:onsite")
    assert s.ctl_run("migrate-keys").splitlines() == [
        "0 keys renamed to the layout of town main"]
    assert counters(s, "p-0") == (3, 3)
    assert counters(s, "p-1") == (3, 2)
    assert counters(s, "p-2") == (3, 3)         # published 8 bytes
    s._start_worker()
    check(s)


def test_a_shift_of_an_old_key_merged_meanwhile_keeps_the_decrease(
        make_stack, tmp_path):
    # a publication that finds a session's old :onsite still moving (its
    # merge busy: a rush) shifts the old key; if a merge of another
    # process (guichetctl migrate-keys, the worker) merges and deletes it
    # in between, the shift must go to bit 32 of :left, where the quota
    # now is: a BITFIELD of the old key, gone, would make it again at 0
    # (a decrease saturates), and the counter would sell the place taken
    # away.  gdb holds guichetctl load-town in its merge of p-0, runs the
    # other merge there, and has its merge answer "busy".
    s = make_stack(town(8), name="counters-shift-race")
    s._end(s.procs.pop("worker"), signal.SIGTERM, 10)
    to_old_layout(s, {"p-0": 4})
    path = tmp_path / "fewer.json"
    path.write_text(json.dumps(town(6)))        # 6 places: 3 and 3
    other = tmp_path / "other-merge.out"

    def load_busy(path, meanwhile):
        """guichetctl load-town path, its merges answering busy, each
        after the shell command meanwhile (if any)."""
        script = tmp_path / "race.gdb"
        script.write_text("\n".join([
            "set confirm off",
            "set pagination off",
            "break gchb_merge_counter",
            "commands",
            "  silent"]
            + (["  shell " + meanwhile] if meanwhile else [])
            + ["  return (int) 1",
               "  continue",
               "end",
               "run",
               ""]))
        r = subprocess.run(["gdb", "-q", "-nx", "-batch", "-x", str(script),
                            "--args", s.ctl, "-c", s.worker_conf,
                            "load-town", str(path)],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=120)
        assert "exited normally" in r.stdout.decode(), r.stdout.decode()

    load_busy(path, "%s -c %s migrate-keys > %s 2>&1"
              % (s.ctl, s.worker_conf, other))
    assert "1 on-site counter merged" in other.read_text(), \
        other.read_text()
    s.ctl_run("migrate-keys")
    assert not s.redis.exists("{main}:s:p-0:onsite")
    assert counters(s, "p-0") == (3, 3)

    # no merge meanwhile: the old key itself moves (3 to 2), then merged
    to_old_layout(s, {"p-1": 3})
    path = tmp_path / "fewer2.json"
    path.write_text(json.dumps(town(4)))        # 4 places: 2 and 2
    load_busy(path, None)
    assert s.redis.get("{main}:s:p-1:onsite") == \
        struct.pack(">I", 2).decode()
    s.ctl_run("migrate-keys")
    assert counters(s, "p-1") == (2, 2)
    s._start_worker()
    check(s)


def test_a_publication_after_a_counter_refusal_keeps_the_decrease(
        make_stack, tmp_path):
    # a counter's booking of a session not merged yet reads 0 at bit 32 and
    # is refused full, but its BITFIELD makes the 4-byte :left 8 bytes (as
    # a cancellation at the counter does): a quota that then goes down
    # (load-town before migrate-keys) must still take its place from the
    # old :onsite, not saturate bit 32 at 0 and let the merge bring the
    # place back (the counter would sell 4 places of a quota of 3)
    s = make_stack(town(8), name="counters-shift-grown")
    agent = agent_token(s)
    s._end(s.procs.pop("worker"), signal.SIGTERM, 10)
    to_old_layout(s, {"p-0": 4})
    it = book(s, agent, "p-0", "f1", staff=True)
    assert (it["status"], it.get("reason")) == ("refused", "full"), it
    assert s.redis.strlen("{main}:s:p-0:left") == 8
    path = tmp_path / "fewer.json"
    path.write_text(json.dumps(town(6)))        # 6 places: 3 and 3
    s.ctl_run("load-town", str(path))
    s.ctl_run("migrate-keys")
    assert not s.redis.exists("{main}:s:p-0:onsite")
    assert counters(s, "p-0") == (3, 3)
    # the counter sells its 3 places, not one more
    for fid in ("f1", "f2", "f3"):
        it = book(s, agent, "p-0", fid, staff=True)
        assert it["status"] == "confirmed", it
    assert counters(s, "p-0") == (3, 0)
    s._start_worker()
    check(s)


def test_the_merge_under_bookings_loses_nothing(make_stack):
    # bookings and cancellations keep moving both counters of every
    # session while migrate-keys merges (a rush during the upgrade): each
    # batch is read again or left for a later run, never half merged; once
    # they stop, both u32 are what they were plus nothing
    s = make_stack(town(8), name="counters-merge-busy")
    s._end(s.procs.pop("worker"), signal.SIGTERM, 10)
    old = {"p-0": 4, "p-1": 3, "p-2": 1}
    to_old_layout(s, old)
    stop = threading.Event()
    moves = [0]

    def hammer():
        r = s.redis.__class__(connection_pool=s.redis.connection_pool)
        while not stop.is_set():
            for sid in old:
                p = r.pipeline(transaction=False)
                # a booking then its cancellation, online and on site
                # (bit 32 of a 4-byte :left reads 0: +1 first)
                for off, d in (("0", -1), ("0", 1), ("32", 1), ("32", -1)):
                    p.execute_command("BITFIELD", "{main}:s:%s:left" % sid,
                                      "OVERFLOW", "FAIL", "INCRBY", "u32",
                                      off, d)
                p.execute()
                moves[0] += 1

    th = threading.Thread(target=hammer)
    th.start()
    try:
        for _ in range(5):
            r = subprocess.run([s.ctl, "-c", s.worker_conf, "migrate-keys"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            assert r.returncode == 0, r.stderr
    finally:
        stop.set()
        th.join()
    assert moves[0] > 0
    s.ctl_run("migrate-keys")               # what a rush left, if any
    assert session_keys(s) == ["{main}:s:p-%d:left" % i for i in range(3)]
    assert [counters(s, sid) for sid in sorted(old)] == \
        [(4, old[sid]) for sid in sorted(old)]
