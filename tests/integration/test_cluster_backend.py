"""test_cluster_backend.py -- the back-end programs' Redis connection on a
real Redis Cluster (backend/cluster.c, setting redis_cluster).

A 3-master, 3-replica cluster of redis-server 7.0 (cluster.py) and
build/cluster-probe (tests/cluster/probe.c), which talks through
gchb_redis_connect() exactly as guichet-worker, guichetctl and
guichet-office do: commands of many hash tags spread over the masters,
pipelines, MULTI/EXEC of one tag (and refused across tags, nothing
written), WATCH, streams (XREADGROUP, XAUTOCLAIM), SCAN over every master,
MOVED after a slot moved, ASK during a migration, and a master killed -9:
the connection ends as with one Redis down, the next one works once the
replica is promoted.
"""

import json
import os
import subprocess
import tempfile
import time

import pytest

from cluster import RedisCluster, key_slot
from stack import BUILD

PROBE = os.path.join(BUILD, "cluster-probe")


class Probe:
    """build/cluster-probe as a subprocess: one line in, replies out."""

    def __init__(self, conf_text):
        self.dir = tempfile.mkdtemp(prefix="guichet-probe-")
        self.conf = os.path.join(self.dir, "probe.conf")
        with open(self.conf, "w") as f:
            f.write(conf_text)
        self.log = open(os.path.join(self.dir, "probe.log"), "wb")
        self.p = subprocess.Popen([PROBE, "-c", self.conf],
                                  stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=self.log)

    def run(self, *cmds):
        """Sends cmds as one pipeline; the list of their replies (an
        {"io": ...} dict ends it early when the connection was lost)."""
        self.p.stdin.write((" ; ".join(cmds) + "\n").encode())
        self.p.stdin.flush()
        out = []
        while len(out) < len(cmds):
            line = self.p.stdout.readline()
            assert line, "cluster-probe exited: " + self.stderr()
            r = json.loads(line)
            out.append(r)
            if isinstance(r, dict) and "io" in r:
                break
        return out

    def one(self, cmd):
        return self.run(cmd)[0]

    def stderr(self):
        self.log.flush()
        with open(os.path.join(self.dir, "probe.log")) as f:
            return f.read()

    def close(self):
        self.p.stdin.close()
        self.p.wait(10)
        self.log.close()


@pytest.fixture(scope="module")
def cluster():
    c = RedisCluster().start()
    yield c
    c.stop()


@pytest.fixture
def probe(cluster):
    p = Probe("redis_cluster = %s\n" % cluster.seeds)
    yield p
    p.close()


def tags_on_every_master(cluster, n=6):
    """n hash tags, spread so that every master serves some."""
    tags, seen = [], {}
    i = 0
    while len(tags) < n:
        t = "town%d" % i
        i += 1
        m = cluster.master_of("{%s}" % t)
        if seen.get(m.port, 0) < (n + 2) // 3:
            seen[m.port] = seen.get(m.port, 0) + 1
            tags.append(t)
    assert len(seen) == 3
    return tags


def test_commands_go_to_their_masters(cluster, probe):
    tags = tags_on_every_master(cluster)
    got = probe.run(*["SET {%s}:name %s" % (t, t) for t in tags])
    assert got == [{"status": "OK"}] * len(tags)
    got = probe.run(*["GET {%s}:name" % t for t in tags])
    assert got == [{"str": t} for t in tags]
    # each key is on its slot's master, nowhere else
    for t in tags:
        assert cluster.client_for("{%s}" % t).get("{%s}:name" % t) == t


def test_transaction_of_one_town(cluster, probe):
    t = "txa"
    got = probe.run("MULTI", "INCR {%s}:seq" % t, "HSET {%s}:h k v" % t,
                    "EXEC")
    assert got == [{"status": "OK"}, {"status": "QUEUED"},
                   {"status": "QUEUED"}, [{"int": 1}, {"int": 1}]]
    assert cluster.client_for("{txa}").get("{txa}:seq") == "1"


def test_transaction_across_towns_is_refused_whole(cluster, probe):
    a, b = "crossa", "crossb"
    assert key_slot("{%s}" % a) != key_slot("{%s}" % b)
    got = probe.run("MULTI", "SET {%s}:k 1" % a, "SET {%s}:k 1" % b, "EXEC")
    assert got[-1]["error"].startswith("EXECABORT")
    assert "one slot" in got[-1]["error"]
    # nothing of it was written, on either side
    assert cluster.client_for("{%s}" % a).get("{%s}:k" % a) is None
    assert cluster.client_for("{%s}" % b).get("{%s}:k" % b) is None
    # and the connection goes on
    assert probe.one("PING") == {"status": "PONG"}


def test_cross_slot_command_is_refused(probe):
    got = probe.one("DEL {x1}:a {x2}:b")
    assert got["error"].startswith("CROSSSLOT")


def test_watch_sees_another_writer(cluster, probe):
    t = "{watched}"
    assert probe.run("SET %s:v 1" % t, "WATCH %s:v" % t,
                     "GET %s:v" % t) == [
        {"status": "OK"}, {"status": "OK"}, {"str": "1"}]
    cluster.client_for(t).set(t + ":v", "2")       # another client
    got = probe.run("MULTI", "SET %s:v 3" % t, "EXEC")
    assert got[-1] == {"nil": True}
    assert cluster.client_for(t).get(t + ":v") == "2"
    # without a writer in between, it goes through
    got = probe.run("WATCH %s:v" % t, "MULTI", "SET %s:v 4" % t, "EXEC")
    assert got[-1] == [{"status": "OK"}]
    assert cluster.client_for(t).get(t + ":v") == "4"


def test_streams_read_and_claim(probe):
    s = "{streamtown}:stream"
    got = probe.run("XGROUP CREATE %s g $ MKSTREAM" % s,
                    "XADD %s * booking b1" % s,
                    "XREADGROUP GROUP g w1 COUNT 10 BLOCK 100 STREAMS %s >"
                    % s)
    assert got[0] == {"status": "OK"}
    entry = got[1]["str"]
    assert got[2] == [[{"str": s}, [[{"str": entry},
                                     [{"str": "booking"}, {"str": "b1"}]]]]]
    got = probe.one("XAUTOCLAIM %s g w2 0 0-0 COUNT 10" % s)
    assert got[1][0][0] == {"str": entry}
    assert probe.one("XACK %s g %s" % (s, entry)) == {"int": 1}


def test_scan_walks_every_master(cluster, probe):
    tags = tags_on_every_master(cluster)
    probe.run(*["SET {%s}:scan 1" % t for t in tags])
    cursor, keys = "0", set()
    for _ in range(1000):
        r = probe.one("SCAN %s MATCH *:scan COUNT 1000" % cursor)
        cursor = r[0]["str"]
        keys.update(k["str"] for k in r[1])
        if cursor == "0":
            break
    assert keys == {"{%s}:scan" % t for t in tags}


def test_moved_after_a_slot_moves(cluster, probe):
    t = "{movingtown}"
    assert probe.one("SET %s:k before" % t) == {"status": "OK"}
    slot = key_slot(t)
    src = cluster.master_of_slot(slot)
    dst = [m for m in cluster.masters_now() if m is not src][0]
    cluster.move_slot(slot, dst)
    # the probe still has the old map: src answers -MOVED, followed
    assert probe.one("GET %s:k" % t) == {"str": "before"}
    got = probe.run("MULTI", "SET %s:k after" % t, "EXEC")
    assert got[-1] == [{"status": "OK"}]
    assert dst.client().get(t + ":k") == "after"
    assert "MOVED" not in json.dumps(probe.run("GET %s:k" % t))


def test_ask_during_a_migration(cluster, probe):
    t = "{asktown}"
    probe.run("SET %s:a 1" % t, "SET %s:b 2" % t)
    slot = key_slot(t)
    dst = [m for m in cluster.masters_now()
           if m is not cluster.master_of_slot(slot)][0]
    src = cluster.begin_migration(slot, dst)
    try:
        assert cluster.migrate_keys(slot, src, dst) == 2
        # the keys are on dst, the slot still src's: -ASK, then ASKING
        assert probe.one("GET %s:a" % t) == {"str": "1"}
        got = probe.run("MULTI", "INCR %s:a" % t, "INCR %s:b" % t, "EXEC")
        assert got[-1] == [{"int": 2}, {"int": 3}]
        # the source really refuses: a plain client gets -ASK there
        with pytest.raises(Exception) as e:
            src.client().get(t + ":a")
        assert "ASK" in str(e.value)
    finally:
        cluster.end_migration(slot, dst)
    assert dst.client().get(t + ":b") == "3"


def test_master_killed_then_replica_promoted(cluster, probe):
    t = "{failtown}"
    assert probe.one("SET %s:k 1" % t) == {"status": "OK"}
    cluster.wait_ok(replicas=0)
    m = cluster.master_of(t)
    m.client().execute_command("WAIT", 1, 5000)     # the replica has it
    cluster.kill(m)
    # the first commands may end the connection (a Redis down, as for one
    # Redis); the probe reconnects on the next line; it comes back
    r = None
    deadline = time.monotonic() + 60        # a bound, not a measure
    while time.monotonic() < deadline:
        r = probe.one("GET %s:k" % t)
        if r == {"str": "1"}:
            break
        assert set(r) <= {"io", "error"}, r
        time.sleep(0.1)
    assert r == {"str": "1"}
    assert probe.one("INCR %s:k" % t) == {"int": 2}
    cluster.restart(m)                  # it comes back as a replica
    cluster.wait_ok()


def test_no_seed_answers(cluster):
    p = Probe("redis_cluster = 127.0.0.1:1\n")
    try:
        assert p.one("PING") == {"io": "cannot connect"}
        assert "no node answered CLUSTER SLOTS" in p.stderr()
    finally:
        p.close()


def test_pipeline_across_masters_and_a_moved_slot(cluster, probe):
    """A pipeline is sent to each master in pieces (one fsync each, not
    one per command); a piece whose slot moved meanwhile is sent again
    where MOVED says; the replies come back in the program's order."""
    tags = tags_on_every_master(cluster)
    mv = tags[0]
    assert probe.run(*["SET {%s}:p %s" % (t, t) for t in tags]) == \
        [{"status": "OK"}] * len(tags)
    slot = key_slot("{%s}" % mv)
    src = cluster.master_of_slot(slot)
    dst = [m for m in cluster.masters_now() if m is not src][0]
    cluster.move_slot(slot, dst)
    cmds, want = [], []
    for i in range(5):
        for t in tags:
            cmds.append("APPEND {%s}:p .%d" % (t, i))
            want.append({"int": len(t) + 2 * (i + 1)})
            cmds.append("GET {%s}:p" % t)
            want.append({"str": t + "".join(".%d" % k
                                            for k in range(i + 1))})
    assert probe.run(*cmds) == want
    assert dst.client().get("{%s}:p" % mv).startswith(mv + ".0.1")


def test_routing_thread_under_valgrind(cluster):
    """The routing thread (transactions, WATCH, SCAN, streams, a MOVED,
    an unknown command, a cross-slot one) under memcheck: no error, no
    leak, not even "possibly lost" at the program's exit."""
    d = tempfile.mkdtemp(prefix="guichet-probe-vg-")
    conf = os.path.join(d, "probe.conf")
    with open(conf, "w") as f:
        f.write("redis_cluster = %s\n" % cluster.seeds)
    p = subprocess.Popen(
        ["valgrind", "-q", "--error-exitcode=9", "--leak-check=full",
         "--errors-for-leak-kinds=definite,indirect,possible", PROBE,
         "-c", conf], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE)

    try:
        def send(line):
            p.stdin.write((line + "\n").encode())
            p.stdin.flush()
            return json.loads(p.stdout.readline())

        assert send("SET {vga}:n 1") == {"status": "OK"}
        slot = key_slot("{vga}")
        src = cluster.master_of_slot(slot)
        dst = [m for m in cluster.masters_now() if m is not src][0]
        cluster.move_slot(slot, dst)
        for line in ["MULTI ; INCR {vga}:n ; EXEC",
                     "WATCH {vga}:n ; GET {vga}:n ; MULTI ; INCR {vga}:n ;"
                     " EXEC",
                     "MULTI ; INCR {vga}:n ; INCR {vgb}:n ; EXEC",
                     "SCAN 0 COUNT 10",
                     "XADD {vga}:st * k v ; XRANGE {vga}:st - +",
                     "FROB {vga}:n", "DEL {vga}:n {vgb}:n"]:
            p.stdin.write((line + "\n").encode())
        out, err = p.communicate(timeout=300)
    finally:
        # the probe under valgrind outlives a failed step otherwise
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0, err.decode()[-3000:]
    assert b'[{"int":2}]' in out and b'[{"int":3}]' in out
