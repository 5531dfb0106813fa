"""test_make_run_cluster.py -- make run-cluster (issue 21): scripts/run.sh
with GUICHET_REDIS=cluster, in a temporary state directory on free ports
(test_make_run.py's Ops), as a person trying it would use it:

* the first run creates a Redis Cluster of 3 masters and 3 replicas
  (scripts/redis-cluster.sh), loads the town into it, and a booking made
  through nginx is confirmed and persisted by the worker;
* running it again keeps the cluster and the booking (nothing recreated);
* a node killed is started again by the next run;
* make stop (scripts/stop.sh) stops every node.

No timing is asserted.
"""

import os
import random
import socket
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from test_make_run import (Ops, book, booked_sessions, listed,  # noqa: E402
                           wait_for)


def port_free(p):
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", p))
        except OSError:
            return False
    return True


def cluster_base():
    """p .. p+5 and their bus ports (+10000) free, all below the kernel's
    ephemeral ports (an outgoing connection could take one meanwhile)."""
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        lo = int(f.read().split()[0])
    for _ in range(200):
        p = random.randrange(11000, lo - 10006)
        if all(port_free(q) and port_free(q + 10000)
               for q in range(p, p + 6)):
            return p
    raise AssertionError("no 6 free ports for a cluster")


def book_through_503(o, fid, sid, key):
    """Books, retrying a 503 (a replica still syncing: not_replicated;
    nginx still reading the catalogue) with the same key; a bound for a
    hung test, not a measure."""
    return wait_for("a booking answered other than 503", lambda: (
        lambda r: r if r[0] != 503 else None)(book(o, fid, sid, key)),
        timeout=60, step=0.2)


def ping(port):
    r = subprocess.run(["redis-cli", "-p", str(port), "ping"],
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                       timeout=30)
    return r.stdout.decode().strip() == "PONG"


@pytest.fixture(scope="module")
def cops():
    o = Ops()
    o.base = cluster_base()
    o.extra = {"GUICHET_REDIS": "cluster",
               "GUICHET_CLUSTER_PORT": str(o.base)}
    try:
        o.first_output = o.run_sh(GUICHET_TOWN=o.town_file, **o.extra)
        yield o
    finally:
        o.stop()
        for p in range(o.base, o.base + 6):
            assert not ping(p), "redis %d still runs after make stop" % p


def test_first_run_creates_the_cluster_and_books(cops):
    assert "redis cluster: created" in cops.first_output
    with open(cops.conf) as f:
        conf = f.read()
    assert "redis_cluster = 127.0.0.1:%d," % cops.base in conf
    assert "\nredis = " not in conf
    with open(os.path.join(cops.var, "nginx", "nginx.conf")) as f:
        assert "guichet_redis_cluster 127.0.0.1:%d " % cops.base in f.read()
    info = subprocess.run(["redis-cli", "-p", str(cops.base), "cluster",
                           "info"], stdout=subprocess.PIPE,
                          timeout=30).stdout.decode()
    assert "cluster_state:ok" in info and "cluster_size:3" in info
    st, body = book_through_503(cops, "f-01", "s1", "first")
    assert st == 200, body
    assert body["items"][0]["status"] == "confirmed", body
    wait_for("the booking persisted in PostgreSQL", lambda: cops.psql(
        "select count(*) from booking where family_id = 'f-01'") == "1")
    assert "redis and postgres agree" in cops.ctl("check").out


def test_run_again_keeps_the_cluster_and_the_booking(cops):
    out = cops.run_sh(**cops.extra)
    assert "redis cluster: already running" in out
    assert "created" not in out
    assert "s1" in booked_sessions(listed(cops, cops.token("f-01")))


def test_a_node_killed_is_started_again(cops):
    pidf = os.path.join(cops.var, "redis", str(cops.base + 5), "redis.pid")
    with open(pidf) as f:
        pid = int(f.read())
    os.kill(pid, 9)
    wait_for("the node down", lambda: not ping(cops.base + 5))
    out = cops.run_sh(**cops.extra)
    assert "1 node(s) started again" in out
    assert ping(cops.base + 5)
    # its master answers 503 not_replicated until it has resynced
    st, body = book_through_503(cops, "f-02", "s2", "after-restart")
    assert st == 200, body
    assert body["items"][0]["status"] == "confirmed", body
