#!/usr/bin/python3
"""matrix.py -- issue 8's fault matrix: each fault under a running rush,
each followed by the invariant checker.

    /usr/bin/python3 tests/fault/matrix.py [FAULT ...]     (make faults)

prints one line per fault, e.g.

    fault redis-kill9: survived, 1312 confirmed, 0 lost, 0 doubled,
        0 oversold, 41×503 (...)

(on one line) or "fault NAME: FAILED: why", then a summary line.
tests/fault/test_matrix.py runs the same faults under pytest (a short
subset in make test).  Logs, the rush's answers and the checker's report
of every fault go to tests/out/faults/<fault>/.

The files: this one runs one fault and its checks (run_fault) and the
command line; matrix_harness.py has the town, the stacks, the processes
and the faults' tools (iptables, a tmpfs); matrix_rush.py the rush (Rush);
matrix_faults.py the faults and their table (FAULTS below).

One fault, run_fault(name):

 1. a whole Guichet (stack.py) with guichet_timeout 1s, the worker's
    reap_after_ms 8000 (so that orphans are taken over within the
    test), and a town of 810
    one-child families: session "hot" (5 online places, everyone wants it),
    s01..s11 (500 online places each) and "probe" (kept for the probes);
 2. the rush (Rush): 16 parents book 1 or 2 cells per request with a new
    Idempotency-Key, and retry an unanswered request (503, 409, a reset)
    with the same key until it gets its 200; every answer is classified:
    200 with items confirmed or refused (full, already_booked), 503
    unavailable with Retry-After, 409 request_in_progress are right,
    anything else (500, 502, another code, a 503 without Retry-After, an
    item status or reason out of place) is WRONG, and a connection reset is
    wrong except where the fault kills the process that held it;
 3. once 40 cells are confirmed, the fault and its recovery (a restart is
    the supervisor's part of the fault; nothing else is touched);
 4. bookings resume by themselves: 100 new requests sent after the
    recovery answered 200, and a probe family's booking of "probe"
    confirmed (retrying 503 with the same key) -- waited for, never timed;
 5. the rush stops (each parent finishes its key), the attempts settle
    ({main}:inflight empty), the worker drains the stream, then the checks:
    bench/check.py on the answers (every confirmed cell in PostgreSQL
    exactly once and in Redis, nothing in PostgreSQL no answer confirmed,
    no child twice, no session over its online places, left + booked =
    online), faultlib.assert_consistent (the stream and the idempotency
    records agree with the counters), `guichetctl check` (Redis and
    PostgreSQL agree) and nginx's error log (no [alert], [crit], [emerg]
    beyond what the fault itself causes).

The faults (FAULTS below):

  redis-kill9       kill -9 of Redis for 1.5 s, restarted from its AOF
  worker-kill9      kill -9 of guichet-worker while a batch is in flight
                    (read, its transaction not committed), down 2 s, a new
                    worker (reads on from stream_position: the batch again)
  postgres-kill9    kill -9 of the postmaster and every backend, down 2 s,
                    pg_ctl start (crash recovery)
  nginx-worker-kill9  kill -9 of one nginx worker process, three times
  redis-sigstop     SIGSTOP of Redis for 2.5 s (guichet_timeout 1 s), SIGCONT
  redis-data-lost   Redis killed, its directory removed, restarted empty;
                    nginx's workers are frozen (SIGSTOP) for the instant of
                    the loss so that the worker has persisted every answer
                    given (see docs/reliability.md)
  netdrop           every packet between nginx and Redis dropped for 3 s
                    (iptables in a network namespace made for the test; the
                    whole stack runs inside it, loopback only)
  postgres-disk-full  PostgreSQL's tables and indexes on a 16 MiB tmpfs
                    (a tablespace), the tmpfs filled up for at least 3 s
                    (the worker's inserts fail "No space left on device"),
                    then the filler removed
  nginx-reload      three SIGHUPs to the master, 0.7 s apart
  nginx-upgrade     binary upgrade: USR2 to the master (a new master from
                    /usr/sbin/nginx with the same sockets), then QUIT to the
                    old one

On a Redis Cluster (issue 21): the same stack on 3 masters and 3 replicas
(tests/integration/cluster.py: nginx with guichet_redis_cluster and WAIT for
one replica, the worker, guichetctl and the office with redis_cluster)
serving six towns (TOWNS6), two on each master: each town's keys {<id>}:...
are in one slot, the ids are picked by their slots and check_spread asserts
the spread on the live cluster.  The rush books in all six (150 families
each, on localhost and <id>.localhost), each town has its probe, and the
checks above run town by town (bench/check.py --town, each town's schema
town_<id>, guichetctl --town ID check).  "The town" below is the first of
the six (its master holds a second town too).  A 503 not_replicated (the
WAIT fell short) is right, like 503 unavailable, and retried with its key.
make test runs cluster-replica-kill9 (about 30 s); make faults all five.

  cluster-master-kill9   kill -9 of the town's master; its replica is
                    promoted; the supervisor restarts the dead one (it
                    rejoins as a replica: bookings answer 503
                    not_replicated until then)
  cluster-failover  CLUSTER FAILOVER (graceful) on the town master's replica
  cluster-replica-kill9  kill -9 of the town master's replica (503
                    not_replicated), restarted 1 s later
  cluster-slot-move  the town's slot moved to another master during the
                    rush, 50 keys per MIGRATE (clients see ASK and
                    TRYAGAIN), then SETSLOT NODE (MOVED)
  cluster-worker-failover  kill -9 of the worker and of the town's master
                    together; a new worker once the replica is promoted
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from faultlib import (BUILD, ROOT, assert_consistent,  # noqa: E402
                      conf_template, online, settled, tag)
from cluster import ClusterStack, RedisCluster  # noqa: E402
from matrix_harness import (CLUSTER_FAMILIES, RUSH_FAMILIES,  # noqa: E402
                            SESSIONS, TIMEOUT_S, TOWN, TOWNS6,
                            ClusterMatrixStack, FaultError, MatrixStack,
                            check_spread, disk_full_prepare, fam, need,
                            six_town, wait_until)
from matrix_rush import Rush  # noqa: E402
from matrix_faults import ALL, FAULTS, QUICK  # noqa: E402


PY = "/usr/bin/python3"
OUT = os.path.join(ROOT, "tests", "out", "faults")


# ----- one fault -----------------------------------------------------------

class Ctx:
    pass


def check_error_log(s, allowed):
    bad = []
    for line in s.error_log().splitlines():
        if re.search(r"\[(alert|crit|emerg)\]|AddressSanitizer|"
                     r"LeakSanitizer|runtime error:", line):
            if allowed and re.search(allowed, line):
                continue
            bad.append(line)
    need(not bad, "nginx error log:\n" + "\n".join(bad[:10]))


def run_checker(s, log, out_json, town=None):
    """bench/check.py on the answers of log; town: a TownView of s (a
    ClusterMatrixStack), checked in its keys and its schema."""
    # on a cluster: the master of the town's slot holds all its keys
    if town is not None:
        redis = town.master.address
    elif isinstance(s, ClusterStack):
        redis = s.town_master.address
    else:
        redis = "127.0.0.1:%d" % s.redis_port
    r = subprocess.run([PY, os.path.join(ROOT, "bench", "check.py"),
                        "--redis", redis,
                        "--town", town.town_id if town else "main",
                        "--pg", s.pg_conninfo, "--log", log,
                        "--json", out_json, "--drain-timeout", "120",
                        "--show", "100000"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    text = r.stdout.decode()
    try:
        with open(out_json) as f:
            rep = json.load(f)
    except (OSError, ValueError):
        raise FaultError("bench/check.py exit %d: %s"
                         % (r.returncode, text[-500:]))
    return r.returncode, text, rep


def counters_whole(s):
    """left + SCARD booked = online places, for every session."""
    for sid, places in SESSIONS:
        left = s.redis.execute_command("BITFIELD",
                                       tag(s) + ":s:%s:left" % sid,
                                       "GET", "u32", "0")[0]
        if left + s.redis.scard(tag(s) + ":s:%s:booked" % sid) != \
                online(places):
            return False
    return True


LOST = ("confirmed_not_in_postgres", "confirmed_not_in_redis",
        "voided_in_postgres")
DOUBLED = ("postgres_duplicate", "child_twice_answers", "booking_id_clash",
           "postgres_not_confirmed", "postgres_differs", "overlap_answers",
           "overlap_postgres")
OVERSOLD = ("oversold_answers", "oversold_postgres", "oversold_redis",
            "places_mismatch", "redis_postgres_differ")


def town_fault_checks(s, v, rush, outdir, name, res):
    """The checks of one town after the rush: v a TownView of s (a
    ClusterMatrixStack) or None (s's one town); adds its figures to res."""
    w = v or s
    where = " of " + v.town_id if v else ""
    wait_until("attempts settled%s ({town}:inflight empty)" % where,
               lambda: settled(w), 120, step=0.2)
    # the reaper recounts a released attempt's sessions only once no
    # live attempt touches them (worker/recount.c): after the rush
    t = time.monotonic()
    wait_until("the reaper's recounts%s (left + booked = online)" % where,
               lambda: counters_whole(w), 60, step=0.2)
    if time.monotonic() - t > 0.1:
        res["notes"]["recount waited s" + where] = round(
            time.monotonic() - t, 1)
    if v is None or v.town_id == s.town_id:
        s.wait_worker_drained(120)
    # (another town's stream: bench/check.py waits for it to drain)
    sub = os.path.join(outdir, v.town_id) if v else outdir
    os.makedirs(sub, exist_ok=True)
    log = os.path.join(sub, "answers.jsonl")
    rush.write_log(log, v.town_id if v else None)
    rc, text, rep = run_checker(s, log, os.path.join(sub, "check.json"),
                                town=v)
    kinds = rep["by_kind"]
    res["confirmed"] = res.get("confirmed", 0) + \
        rep["info"].get("answers_confirmed_cells", 0)
    # a booking missing from both PostgreSQL and Redis counts once
    res["lost"] = res.get("lost", 0) + len(
        {bid for k in LOST for ex in rep["examples"].get(k, [])
         for bid in re.findall(r"b-[0-9a-f]{20}", ex)})
    res["doubled"] = res.get("doubled", 0) + \
        sum(kinds.get(k, 0) for k in DOUBLED)
    res["oversold"] = res.get("oversold", 0) + \
        sum(kinds.get(k, 0) for k in OVERSOLD)
    if v is not None:
        res["notes"].setdefault("confirmed by town", {})[v.town_id] = \
            rep["info"].get("answers_confirmed_cells", 0)
    need(rc == 0, "bench/check.py%s: %s" % (where, "; ".join(
        "%s %d" % kv for kv in kinds.items())))


def run_fault_here(name, outdir):
    """Runs one fault in this process (see the module docstring);
    returns the result dict (ok, numbers, notes, error)."""
    fn, desc, want_503, resets, allowed_log, _ = ALL[name]
    res = {"fault": name, "what": desc, "ok": False, "notes": {}}
    os.makedirs(outdir, exist_ok=True)
    conf_dir = tempfile.mkdtemp(prefix="guichet-fault-conf-")
    tpl = conf_template(conf_dir, "matrix",
                        replace=[("guichet_timeout 2s;",
                                  "guichet_timeout %ds;" % TIMEOUT_S)])
    # PostgreSQL as stack.py runs it for tests: fsync and
    # synchronous_commit off.  The worker sets synchronous_commit on for
    # its own sessions (backend/db.c); without that, postgres-kill9 loses
    # the batches whose COMMIT had returned but not reached the WAL.
    cluster = None
    if name.startswith("cluster-"):
        cluster = RedisCluster()
        s = ClusterMatrixStack(cluster, town=six_town(TOWNS6[0]),
                               name="fault-" + name, nginx_template=tpl)
    else:
        s = MatrixStack(town=TOWN, name="fault-" + name, nginx_template=tpl)
    ctx = Ctx()
    ctx.s = s
    ctx.cluster = cluster
    ctx.disk = None
    rush = None
    t_start = time.monotonic()
    try:
        if cluster is not None:
            cluster.start()
        s.start()
        if name == "postgres-disk-full":
            ctx.disk = disk_full_prepare(s)
        if name == "nginx-upgrade":
            s.nginx_as_daemon()
        tokens = s.tokens()
        if cluster is not None:
            # six towns, two per master; each served before the rush
            res["notes"]["towns"] = " ".join(
                "%s@%d" % kv for kv in check_spread(cluster,
                                                    TOWNS6).items())
            for tid in TOWNS6:
                f = "%s/%s" % (tid, fam(1))
                wait_until("town %s served" % tid, lambda: s.http(
                    "GET", "/api/me", headers=s.host(tid),
                    token=tokens[f]).status == 200, 60, step=0.1)
            rush = Rush(s, tokens, allow_resets=resets, towns=TOWNS6,
                        families=CLUSTER_FAMILIES)
            probes = ["%s/%s" % (tid, fam(CLUSTER_FAMILIES + 1))
                      for tid in TOWNS6]
            views = s.towns
        else:
            rush = Rush(s, tokens, allow_resets=resets)
            probes = [fam(RUSH_FAMILIES + 1)]
            views = [None]
        rush = ctx.rush = rush.start()
        wait_until("the rush's first 40 confirmed cells",
                   lambda: rush.confirmed >= 40, 120)
        t_fault = rush.now()
        res["notes"].update(fn(ctx) or {})
        t_back = rush.now()
        res["fault_s"] = round(t_back - t_fault, 2)

        # bookings resume by themselves
        wait_until("100 requests sent after the recovery answered 200",
                   lambda: rush.answered_since(t_back) >= 100, 120)
        first = rush.first_answer_since(t_back)
        res["resumed_after_s"] = round(first - t_back, 2)
        for f in probes:
            probe = rush.one(f, ["probe"], timeout=120)
            need(probe["s"] == 200 and
                 probe["b"]["items"][0]["status"] == "confirmed",
                 "the probe booking of %s: %r" % (f, probe))
        rush.finish()
        res["counts"] = dict(rush.counts)

        # the invariant checker, town by town
        for v in views:
            town_fault_checks(s, v, rush, outdir, name, res)
        res["unanswered"] = sum(1 for r in rush.finals if r["s"] != 200)
        need(not rush.wrong, "%d wrong answers: %s"
             % (len(rush.wrong), "; ".join(rush.wrong[:5])))
        need(res["unanswered"] == 0,
             "%d requests never answered 200" % res["unanswered"])
        if want_503:
            need(rush.counts["503"] > 0, "the fault caused no 503")
        for v in views:
            assert_consistent(v or s, six_town(v.town_id) if v else TOWN,
                              stream=not name.startswith("redis-data-lost"))
            out = s.ctl_run(*(["--town", v.town_id] if v else []),
                            "check")
            need("agree" in out, "guichetctl check%s: %s"
                 % (" of " + v.town_id if v else "", out[-500:]))
        check_error_log(s, allowed_log)
        res["ok"] = True
    except Exception as e:                  # noqa: BLE001 -- reported
        res["error"] = "%s: %s" % (type(e).__name__, e)
        with open(os.path.join(outdir, "traceback.txt"), "w") as f:
            f.write(traceback.format_exc())
    finally:
        if rush is not None:
            rush.give_up_ev.set()
            rush.stop_ev.set()
            if "counts" not in res:
                res["counts"] = dict(rush.counts)
            with open(os.path.join(outdir, "wrong.txt"), "w") as f:
                f.write("\n".join(rush.wrong + ["reset %s %s" % r
                                                for r in rush.resets]))
        if s.dir:
            for f in ("worker.log", "redis.log", "office.log",
                      "nginx-stderr.log", "nginx/error.log", "pg/log"):
                if os.path.exists(s._path(f)):
                    shutil.copy(s._path(f), os.path.join(
                        outdir, f.replace("/", "-")))
        s.stop()
        if cluster is not None:
            for n in cluster.nodes:
                with open(os.path.join(outdir, "redis-%d.log" % n.port),
                          "w") as f:
                    f.write(n.log())
            cluster.stop()
        if ctx.disk is not None:
            ctx.disk.remove()
        shutil.rmtree(conf_dir, ignore_errors=True)
        res["seconds"] = round(time.monotonic() - t_start, 1)
        with open(os.path.join(outdir, "result.json"), "w") as f:
            json.dump(res, f, indent=1)
    return res


def run_fault(name):
    """Runs one fault: in this process, or for netdrop in a network
    namespace made for it (`ip netns exec`, this file with --inner)."""
    outdir = os.path.join(OUT, name)
    shutil.rmtree(outdir, ignore_errors=True)
    os.makedirs(outdir)
    if name != "netdrop":
        return run_fault_here(name, outdir)
    ns = "guichet-fault-%d" % os.getpid()
    res = {"fault": name, "what": ALL[name][1], "ok": False, "notes": {}}
    r = subprocess.run(["ip", "netns", "add", ns], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT)
    if r.returncode != 0:
        res["error"] = "ip netns add: " + r.stdout.decode().strip()
        return res
    try:
        with open(os.path.join(outdir, "inner.log"), "w") as log:
            r = subprocess.run(["ip", "netns", "exec", ns, PY,
                                os.path.abspath(__file__), "--inner", name],
                               stdout=log, stderr=subprocess.STDOUT,
                               env=dict(os.environ, GUICHET_NETNS=ns))
        try:
            with open(os.path.join(outdir, "result.json")) as f:
                return json.load(f)
        except (OSError, ValueError):
            res["error"] = "the namespace's run exited %d (see %s)" % (
                r.returncode, os.path.join(outdir, "inner.log"))
            return res
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)


def inner(name):
    """In the namespace: loopback up, then the fault."""
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    run_fault_here(name, os.path.join(OUT, name))


def line(res):
    """The one line of a fault."""
    if res.get("ok"):
        c = res["counts"]
        extra = ["%d requests" % c["requests"]]
        if c["409"]:
            extra.append("%d×409" % c["409"])
        if c["reset"]:
            extra.append("%d resets" % c["reset"])
        extra += ["%s %s" % kv for kv in res["notes"].items()]
        extra.append("first 200 %.1f s after the recovery"
                     % res["resumed_after_s"])
        extra.append("%.0f s" % res["seconds"])
        return ("fault %s: survived, %d confirmed, %d lost, %d doubled, "
                "%d oversold, %d×503 (%s)"
                % (res["fault"], res["confirmed"], res["lost"],
                   res["doubled"], res["oversold"], c["503"],
                   ", ".join(extra)))
    err = " ".join(str(res.get("error", "?")).split())
    figures = ""
    if "confirmed" in res:
        figures = " (%d confirmed, %d lost, %d doubled, %d oversold)" % (
            res["confirmed"], res["lost"], res["doubled"], res["oversold"])
    return "fault %s: FAILED%s: %s" % (res["fault"], figures, err[:400])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("faults", nargs="*", help="default: all of them")
    ap.add_argument("--quick", action="store_true",
                    help="only the subset make test runs")
    ap.add_argument("--inner", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.inner:
        inner(a.inner)
        return 0
    names = a.faults or (QUICK if a.quick else list(FAULTS))
    for n in names:
        if n not in ALL:
            ap.error("unknown fault %s (one of %s)" % (n, ", ".join(ALL)))
    for f in ("guichet-worker", "guichetctl", "ngx_http_guichet_module.so"):
        if not os.path.exists(os.path.join(BUILD, f)):
            print("faults: build/%s is missing: run make build" % f)
            return 1
    t0 = time.monotonic()
    survived = 0
    for n in names:
        res = run_fault(n)
        survived += bool(res.get("ok"))
        print(line(res), flush=True)
    print("faults: %d survived, %d failed, %d s (logs tests/out/faults/)"
          % (survived, len(names) - survived, time.monotonic() - t0))
    return 0 if survived == len(names) else 1


if __name__ == "__main__":
    sys.exit(main())
