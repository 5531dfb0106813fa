"""test_cluster_faults.py -- faults of a Redis Cluster under the nginx
module (issue 21), with guichet_redis_wait_replicas 1, two nginx
instances, the town on one master with one replica
(tests/integration/test_cluster_nginx.py sets it up: a whole Guichet on
the cluster and a second nginx).  tests/fault/matrix.py's cluster faults
run the same events under its rush and invariant checker with one nginx;
these add the second instance and the retried keys.

* kill -9 of the town's master during a rush: until its replica is
  promoted every answer is 2xx or 503 with Retry-After; no 2xx is lost
  (each was on the replica before it was sent: WAIT), no place is sold
  twice, and every key answered 503 gets, when retried, its replay or a
  fresh decision, never both.  The promoted master has no replica until
  the old one comes back (restarted, it rejoins as a replica): bookings
  answer 503 not_replicated until then, 2xx after;
* CLUSTER FAILOVER (graceful) during a rush: the same invariants;
* kill -9 of the town master's replica: bookings answer 503
  not_replicated (nothing confirmed that one crash could lose), then 2xx
  once it is restarted and in sync.

make test runs the replica crash; GUICHET_FAULTS=all (make faults) all.
"""

import collections
import os
import sys
import threading
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))

from test_cluster_nginx import (FAMILIES, TOWN_TAG, assert_503,  # noqa
                                book, check_no_lost_no_oversell, env, key,
                                planning, rush, toks)


def all_faults():
    if os.environ.get("GUICHET_FAULTS") != "all":
        pytest.skip("make faults (or GUICHET_FAULTS=all) runs it")


def wait_booking(front, tok, sid, child, idem, timeout=30):
    """Retries one key (503 only) until its 200."""
    deadline = time.monotonic() + timeout
    while True:
        r = book(front, tok, sid, child, idem)
        if r.status != 503:
            return r
        assert_503(r)
        assert time.monotonic() < deadline, r
        time.sleep(0.2)


def rush_with_keys(fronts, toks, sids, stop):
    """Each child of FAMILIES books the sessions sids in turn, over and
    over (a new key each time: already booked is a 2xx refusal), until
    stop; [(family, child, key, session, response)]."""
    out = []
    lock = threading.Lock()

    def parent(i):
        fam, child = FAMILIES[i]
        front = fronts[i % len(fronts)]
        n = i
        while not stop.is_set():
            sid = sids[n % len(sids)]
            n += 1
            idem = key()
            try:
                r = book(front, toks[fam], sid, child, idem)
            except OSError:
                continue
            with lock:
                out.append((fam, child, idem, sid, r))
            time.sleep(0.02)

    ts = [threading.Thread(target=parent, args=(i,))
          for i in range(len(FAMILIES))]
    for t in ts:
        t.start()
    return out, ts


def settle_retries(fronts, toks, answers):
    """Every key answered 503 is retried until its 200: the replay of what
    was done, or a fresh decision; a child never ends up booked twice."""
    for fam, child, idem, sid, r in list(answers):
        if r.status == 503:
            r2 = wait_booking(fronts[0], toks[fam], sid, child, idem)
            assert r2.status in (200, 409), r2
            answers.append((fam, child, idem, sid, r2))


def test_replica_kill9_refuses_2xx_until_it_is_back(env, toks):
    setup, cluster, fronts = env
    home = cluster.master_of(TOWN_TAG)
    (rep,) = cluster.replicas_of(home)
    cluster.kill(rep)
    fam, child = FAMILIES[0]
    sid = "klub-0708-piscine"
    idem = key()
    r = book(fronts[0], toks[fam], sid, child, idem)
    assert_503(r)
    assert r.json()["error"]["code"] == "not_replicated", r
    cluster.restart(rep)
    r = wait_booking(fronts[1], toks[fam], sid, child, idem)
    assert r.status == 200, r
    rows = [x for x in planning(fronts[0], toks[fam])
            if x["session_id"] == sid and x["child_id"] == child]
    assert len(rows) == (1 if r.json()["items"][0]["status"] == "confirmed"
                         else 0), (rows, r.json())


def fault_during_rush(env, toks, sids, fault):
    _, cluster, fronts = env
    stop = threading.Event()
    answers, threads = rush_with_keys(fronts, toks, sids, stop)
    try:
        time.sleep(0.3)
        fault(cluster)
        time.sleep(0.3)
    finally:
        stop.set()
        for t in threads:
            t.join()
    print("answers:", collections.Counter(
        (r.status, r.json().get("error", {}).get("code", ""))
        for _, _, _, _, r in answers))
    settle_retries(fronts, toks, answers)
    # the attempts the fault cut off between their steps are reaped (their
    # places come back), the worker drains: then the checks
    env[0].wait_settled()
    for sid in sids:
        check_no_lost_no_oversell(fronts, toks, sid,
                                  [(f, c, r) for f, c, _, s, r in answers
                                   if s == sid])
    # and PostgreSQL has what Redis has (the worker on the cluster)
    env[0].ctl_run("check")
    return answers


def test_master_kill9_during_a_rush(env, toks):
    all_faults()

    def fault(cluster):
        home = cluster.master_of(TOWN_TAG)
        cluster.kill(home)
        cluster.wait_failover(home)
        # the new master has no replica until the old one rejoins
        cluster.restart(home)
        cluster.wait_ok(replicas=1)

    answers = fault_during_rush(env, toks, ["klub-0707-jeux",
                                            "klub-0712-cuisine"], fault)
    assert any(r.status == 503 for _, _, _, _, r in answers), \
        "the rush never met the failover"


def test_graceful_failover_during_a_rush(env, toks):
    all_faults()

    def fault(cluster):
        home = cluster.master_of(TOWN_TAG)
        (rep,) = cluster.replicas_of(home)
        cluster.failover(rep)
        cluster.wait_ok(replicas=1)

    fault_during_rush(env, toks, ["klub-0713-grimpe", "klub-0709-jeux"],
                      fault)
