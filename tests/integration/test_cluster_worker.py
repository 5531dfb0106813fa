"""test_cluster_worker.py -- guichetctl, guichet-worker (and the office)
on a real Redis Cluster (issue 21, setting redis_cluster): 3 masters and
3 replicas of redis-server 7.0 (cluster.py), a whole Guichet on it
(ClusterStack: nginx with guichet_redis_cluster too).

* guichetctl load-town writes the town on the master of its slot, and
  nowhere else; `guichetctl check` reads it back (SCAN over every master)
  and agrees with PostgreSQL;
* bookings answered 200 are persisted by the worker (its stream read with
  XREADGROUP on the town's master), exactly once;
* the town's master killed -9: its replica is promoted, the worker
  reconnects by itself and persists what comes after, Redis and
  PostgreSQL still agree;
* guichet-office on the cluster: a staff account published by
  guichetctl staff-add, its login, the office's family list;
* no seed answering: guichetctl fails with a message that says so.

The fault matrix (tests/fault/matrix.py, make faults) adds rushes under a
master's kill -9, CLUSTER FAILOVER, a replica's kill -9, the town's slot
moved, and the worker killed during a failover.
"""

import os
import subprocess
import sys
import time
import uuid

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "fault"))

from cluster import ClusterStack, RedisCluster  # noqa: E402
from faultlib import body_of, rush_town  # noqa: E402
from office_town import staff_add, staff_login  # noqa: E402
from stack import ROOT, BUILD  # noqa: E402

TOWN = rush_town(families=30, sessions=(("s1", 40), ("s2", 40)))


@pytest.fixture(scope="module")
def cluster():
    c = RedisCluster().start()
    yield c
    c.stop()


@pytest.fixture(scope="module")
def cs(cluster):
    s = ClusterStack(cluster, town=TOWN, name="cluster-worker")
    s.start()
    yield s
    s.stop()


def fam(i):
    return "f-%04d" % i


def book(s, token, cid, sid, idem, deadline_s=60):
    """Books (cid, sid); a 503 (a master down, a replica not yet back:
    not_replicated) is retried with the same key until the 200.  The
    bound is for a hung test, not a measure."""
    deadline = time.monotonic() + deadline_s
    while True:
        r = s.http("POST", "/api/bookings", token=token,
                   headers={"Idempotency-Key": idem,
                            "Content-Type": "application/json"},
                   body=body_of([(cid, sid)]))
        if r.status != 503 or time.monotonic() > deadline:
            return r
        assert r.headers.get("retry-after"), r
        time.sleep(0.2)


def confirmed_ids(r):
    assert r.status == 200, r
    items = r.json()["items"]
    assert [i["status"] for i in items] == ["confirmed"], items
    return [i["booking_id"] for i in items]


def pg_bookings(s):
    return {row[0] for row in s.sql("select id from booking")}


def town_keys_by_master(cluster, town_id="main"):
    out = {}
    for n in cluster.masters_now():
        out[n.port] = n.client().keys("{%s}:*" % town_id)
    return out


def test_load_town_on_its_master_only(cluster, cs):
    keys = town_keys_by_master(cluster)
    master = cs.town_master
    assert "{main}:catalogue" in keys[master.port]
    assert all(not ks for port, ks in keys.items() if port != master.port)
    out = cs.ctl_run("check")
    assert "redis and postgres agree" in out


def test_bookings_persisted_once(cs):
    toks = cs.tokens()
    ids = []
    for i in range(1, 11):
        r = book(cs, toks[fam(i)], "c-%04d" % i, "s1", uuid.uuid4().hex)
        ids += confirmed_ids(r)
    cs.wait_worker_drained(60)
    assert set(ids) <= pg_bookings(cs)
    assert cs.sql("select count(*) from booking where id = any(%s)",
                  (ids,))[0][0] == len(ids)
    assert "redis and postgres agree" in cs.ctl_run("check")


def test_master_killed_worker_carries_on(cluster, cs):
    toks = cs.tokens()
    before = pg_bookings(cs)
    m = cs.town_master
    cluster.kill(m)
    cluster.wait_failover(m)
    assert cs.town_master is not m
    # the old master comes back as a replica of the promoted one: until
    # then bookings answer 503 not_replicated (WAIT 1)
    cluster.restart(m)
    cluster.wait_ok(replicas=1)
    ids = []
    for i in range(11, 21):
        r = book(cs, toks[fam(i)], "c-%04d" % i, "s2", uuid.uuid4().hex)
        ids += confirmed_ids(r)
    # the worker lost its connection with the master and reconnected to
    # the cluster by itself; what came after is persisted
    cs.wait_worker_drained(60)
    assert set(ids) <= pg_bookings(cs)
    assert before <= pg_bookings(cs)
    assert "redis and postgres agree" in cs.ctl_run("check")
    assert cs.procs["worker"].poll() is None


def test_office_on_the_cluster(cs):
    staff_add(cs, "agent-c", "agent", "Agent Cluster", "secret-cluster-1")
    assert cs.redis.hget("{main}:staff", "agent-c") == "agent"
    tok = staff_login(cs, "agent-c", "secret-cluster-1")
    r = cs.http("GET", "/api/staff/families", token=tok)
    assert r.status == 200, r
    ids = [f["id"] for f in r.json()["families"]]
    assert fam(1) in ids and len(ids) == 30
    assert cs.procs["office"].poll() is None


def test_guichetctl_fails_clearly_without_a_node(cs, tmp_path):
    conf = tmp_path / "nowhere.conf"
    with open(cs.worker_conf) as f:
        text = f.read()
    conf.write_text(text + "redis_cluster = 127.0.0.1:1,127.0.0.1:2\n")
    r = subprocess.run([os.path.join(BUILD, "guichetctl"), "-c", str(conf),
                        "check"], cwd=ROOT, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=60)
    assert r.returncode != 0
    err = r.stderr.decode()
    assert "no node answered CLUSTER SLOTS" in err
    assert "127.0.0.1:1,127.0.0.1:2" in err
