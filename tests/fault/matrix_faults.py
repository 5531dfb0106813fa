"""matrix_faults.py -- the fault matrix's faults (matrix.py): each a
function run while the rush runs, with the recovery a supervisor would
do, and the table of them (FAULTS, EXTRA, QUICK: the subset make test
runs).
"""

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from faultlib import tag  # noqa: E402
from cluster import key_slot  # noqa: E402
from matrix_harness import (NETDROP_MARK, TIMEOUT_S,  # noqa: E402
                            WORKER_SETTINGS, FaultError, PidProc, alive,
                            iptables, need, netdrop_prepare, wait_until)


# ----- the faults ----------------------------------------------------------
#
# Each is fault(ctx) -> notes (a dict), run while the rush runs; it
# includes the recovery a supervisor would do, and checks that the fault
# really bit (FaultError otherwise).  ctx.s is the stack, ctx.rush the rush.

def fault_redis_kill9(ctx):
    s = ctx.s
    s.stop_redis(signal.SIGKILL)
    t = time.monotonic()
    wait_until("503 answers while Redis is down",
               lambda: ctx.rush.counts["503"] > 0, 30)
    time.sleep(max(0.0, 1.5 - (time.monotonic() - t)))
    s.start_redis()
    return {}


def fault_worker_kill9(ctx):
    s = ctx.s

    def pending():
        # entries after the persisted position while a transaction of
        # the worker's has written (a batch read and not yet committed)
        n = s.stream_unpersisted()
        return n if n > 0 and s.sql(
            "select count(*) from pg_stat_activity where backend_xid is"
            " not null and pid <> pg_backend_pid()")[0][0] else 0
    try:
        n = wait_until("a batch read and not yet committed", pending, 20,
                       step=0.001)
    except FaultError:
        n = 0
    s.procs["worker"].kill()
    s.procs["worker"].wait()
    need(n > 0, "no batch was pending when the worker was killed")
    time.sleep(2)
    s.restart_worker()
    return {"pending at the kill": n}


def fault_postgres_kill9(ctx):
    s = ctx.s
    pids = s.postgres_pids()
    for p in pids:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass
    wait_until("PostgreSQL's processes gone",
               lambda: not any(alive(p) for p in pids), 30)

    def down():
        hb = s.redis.get("{main}:worker:heartbeat")
        return hb and json.loads(hb).get("postgres") == "down"
    wait_until("the worker's heartbeat saying postgres down", down, 30)
    time.sleep(2)
    s.start_postgres_again()
    return {"killed": len(pids)}


def fault_nginx_worker_kill9(ctx):
    s = ctx.s
    killed = []
    for _ in range(3):
        before = s.nginx_workers()
        need(before, "no nginx worker process")
        victim = random.Random(len(killed)).choice(before)
        os.kill(victim, signal.SIGKILL)
        killed.append(victim)
        wait_until("the master respawning a worker",
                   lambda: len(s.nginx_workers()) == len(before)
                   and victim not in s.nginx_workers(), 30)
        time.sleep(0.7)
    return {"killed": len(killed)}


def fault_redis_sigstop(ctx):
    p = ctx.s.procs["redis"]
    p.send_signal(signal.SIGSTOP)
    try:
        time.sleep(TIMEOUT_S + 1.5)
    finally:
        p.send_signal(signal.SIGCONT)
    return {}


def fault_redis_data_lost(ctx):
    s = ctx.s
    workers = s.nginx_workers()
    for p in workers:
        os.kill(p, signal.SIGSTOP)
    try:
        s.wait_worker_drained(60)
        s.stop_redis(signal.SIGKILL)
        shutil.rmtree(os.path.join(s.dir, "redis"))
        s.start_redis()
    finally:
        for p in workers:
            os.kill(p, signal.SIGCONT)
    wait_until("503 answers while Redis is rebuilt",
               lambda: ctx.rush.counts["503"] > 0, 60)
    return {}


def fault_redis_data_lost_live(ctx):
    """The same loss without freezing nginx: the answers the worker had not
    yet persisted when Redis lost its data are lost (not in the default
    matrix: it measures that window, see docs/reliability.md)."""
    s = ctx.s
    s.stop_redis(signal.SIGKILL)
    shutil.rmtree(os.path.join(s.dir, "redis"))
    s.start_redis()
    wait_until("503 answers while Redis is rebuilt",
               lambda: ctx.rush.counts["503"] > 0, 60)
    return {}


def fault_redis_sigstop_long(ctx):
    """SIGSTOP past the reaper's reap_after_ms, not only past
    guichet_timeout: the reaper and the late steps two meet."""
    p = ctx.s.procs["redis"]
    p.send_signal(signal.SIGSTOP)
    try:
        time.sleep(WORKER_SETTINGS["reap_after_ms"] / 1000 + 2)
    finally:
        p.send_signal(signal.SIGCONT)
    return {}


def fault_netdrop(ctx):
    s = ctx.s
    need(os.environ.get("GUICHET_NETNS"), "netdrop runs in its namespace")
    netdrop_prepare(s.redis_port)
    # nginx's pooled connections are marked by their next packet; the
    # rush sends them some before the drop
    time.sleep(0.5)
    rule = ["OUTPUT", "-o", "lo", "-m", "connmark", "--mark", NETDROP_MARK,
            "-j", "DROP"]
    iptables("-A", *rule)
    try:
        wait_until("503 answers during the drop",
                   lambda: ctx.rush.counts["503"] > 0, 30)
        time.sleep(3)
        listing = subprocess.run(["iptables", "-w", "-L", "OUTPUT", "-v",
                                  "-x", "-n"], stdout=subprocess.PIPE)
    finally:
        iptables("-D", *rule)
    dropped = sum(int(l.split()[0]) for l in
                  listing.stdout.decode().splitlines() if " DROP " in l)
    need(dropped > 0, "no packet dropped")
    return {"packets dropped": dropped}


def fault_postgres_disk_full(ctx):
    s = ctx.s
    disk = ctx.disk
    pglog = s._path("pg", "log")
    start = os.path.getsize(pglog)

    def enospc():
        with open(pglog, errors="replace") as f:
            f.seek(start)
            return "No space left on device" in f.read()
    size = disk.fill()
    try:
        wait_until("PostgreSQL failing with No space left on device",
                   enospc, 60, step=0.1)
        time.sleep(3)
        lag = json.loads(s.redis.get("{main}:worker:heartbeat") or "{}")
    finally:
        disk.free()
    return {"filler bytes": size, "lag_ms while full": lag.get("lag_ms")}


def fault_nginx_reload(ctx):
    master = ctx.s.procs["nginx"]
    for _ in range(3):
        master.send_signal(signal.SIGHUP)
        time.sleep(0.7)
    need("reconfiguring" in ctx.s.error_log(), "no reload in the error log")
    return {"reloads": 3}


def fault_nginx_upgrade(ctx):
    s = ctx.s
    old = s.procs["nginx"]
    old_workers = s.nginx_workers()
    old.send_signal(signal.SIGUSR2)
    new = wait_until("a new master (nginx.pid.oldbin, nginx.pid)",
                     lambda: s.pid_file(".oldbin") == old.pid
                     and s.pid_file() not in (0, old.pid)
                     and s.pid_file(), 30)
    wait_until("the new master's workers",
               lambda: len(s.nginx_workers(new)) == len(old_workers), 30)
    time.sleep(0.7)                 # both generations accept
    old.send_signal(signal.SIGQUIT)
    old.wait(60)
    s.procs["nginx"] = PidProc(new)
    need(not any(alive(p) for p in old_workers), "old workers still there")
    return {"old master": old.pid, "new master": new}


# ----- on a Redis Cluster (issue 21) ---------------------------------------

def fault_cluster_master_kill9(ctx):
    s, c = ctx.s, ctx.cluster
    m = s.town_master
    c.kill(m)
    wait_until("503 answers while the town's master is down",
               lambda: ctx.rush.counts["503"] > 0, 30)
    c.wait_failover(m, 60)
    promoted = s.town_master
    need(promoted is not m, "the town's slot is still on %s" % m)
    c.restart(m)                    # the supervisor; it rejoins as replica
    c.wait_ok(60, replicas=1)
    return {"promoted": promoted.port}


def fault_cluster_failover(ctx):
    s, c = ctx.s, ctx.cluster
    m = s.town_master
    reps = c.replicas_of(m)
    need(reps, "the town's master %s has no replica" % m)
    c.failover(reps[0])
    need(s.town_master is reps[0], "CLUSTER FAILOVER did not move the town")
    c.wait_ok(60, replicas=1)
    return {"promoted": reps[0].port}


def fault_cluster_replica_kill9(ctx):
    s, c = ctx.s, ctx.cluster
    reps = c.replicas_of(s.town_master)
    need(reps, "the town's master has no replica")
    c.kill(reps[0])
    wait_until("503 not_replicated while the replica is down",
               lambda: ctx.rush.counts["503"] > 0, 30)
    time.sleep(1)
    c.restart(reps[0])
    c.wait_ok(60, replicas=1)
    return {}


def fault_cluster_slot_move(ctx):
    s, c = ctx.s, ctx.cluster
    slot = key_slot(tag(s))
    src = s.town_master
    dst = [n for n in c.masters_now() if n is not src][0]
    c.begin_migration(slot, dst)
    moved = 0
    while True:
        n = c.migrate_keys(slot, src, dst, count=50)
        if not n:
            break
        moved += n
        time.sleep(0.02)            # the rush runs between the batches
    c.end_migration(slot, dst)
    need(s.town_master is dst, "the town's slot is not on %s" % dst)
    need(moved > 0, "no key moved")
    return {"keys moved": moved}


def fault_cluster_worker_failover(ctx):
    s, c = ctx.s, ctx.cluster
    m = s.town_master
    s.procs["worker"].kill()
    c.kill(m)
    s.procs["worker"].wait()
    c.wait_failover(m, 60)
    s.restart_worker()
    c.restart(m)
    c.wait_ok(60, replicas=1)
    return {"promoted": s.town_master.port}


# name: (function, description, 503 expected, resets allowed,
#        error-log lines the fault itself causes, in make test)
FAULTS = {
    "redis-kill9": (fault_redis_kill9,
                    "kill -9 of Redis, restarted from its AOF", True, False,
                    None, True),
    "worker-kill9": (fault_worker_kill9,
                     "kill -9 of guichet-worker mid-batch", False, False,
                     None, True),
    "postgres-kill9": (fault_postgres_kill9,
                       "kill -9 of PostgreSQL (postmaster and backends)",
                       False, False, None, False),
    "nginx-worker-kill9": (fault_nginx_worker_kill9,
                           "kill -9 of one nginx worker process (x3)",
                           False, True,
                           r"\[alert\] \d+#\d+: worker process \d+ exited "
                           r"on signal 9$", True),
    "redis-sigstop": (fault_redis_sigstop,
                      "SIGSTOP of Redis past guichet_timeout, SIGCONT",
                      True, False, None, False),
    "redis-data-lost": (fault_redis_data_lost,
                        "Redis restarted with its data lost", True, False,
                        None, False),
    "netdrop": (fault_netdrop,
                "network drop between nginx and Redis (iptables, netns)",
                True, False, None, True),
    "postgres-disk-full": (fault_postgres_disk_full,
                           "PostgreSQL's disk full (tmpfs tablespace)",
                           False, False, None, False),
    "nginx-reload": (fault_nginx_reload, "nginx reload (SIGHUP x3)", False,
                     False, None, False),
    "nginx-upgrade": (fault_nginx_upgrade,
                      "nginx binary upgrade (USR2, then QUIT)", False,
                      False, None, False),
    "cluster-master-kill9": (fault_cluster_master_kill9,
                             "kill -9 of the town's master, replica "
                             "promoted", True, False, None, False),
    "cluster-failover": (fault_cluster_failover,
                         "CLUSTER FAILOVER of the town's master", False,
                         False, None, False),
    "cluster-replica-kill9": (fault_cluster_replica_kill9,
                              "kill -9 of the town master's replica", True,
                              False, None, True),
    "cluster-slot-move": (fault_cluster_slot_move,
                          "the town's slot moved during the rush (ASK, "
                          "MOVED)", False, False, None, False),
    "cluster-worker-failover": (fault_cluster_worker_failover,
                                "kill -9 of the worker and the town's "
                                "master together", True, False, None,
                                False),
}

# run only when named: its losses are the design's window, not a failure
# the matrix can pass
EXTRA = {
    "redis-sigstop-long": (fault_redis_sigstop_long,
                           "SIGSTOP of Redis past reap_after_ms, SIGCONT",
                           True, False, None, False),
    "redis-data-lost-live": (fault_redis_data_lost_live,
                             "Redis's data lost while nginx runs on", True,
                             False, None, False),
}

QUICK = [n for n, f in FAULTS.items() if f[5]]
ALL = dict(FAULTS, **EXTRA)
