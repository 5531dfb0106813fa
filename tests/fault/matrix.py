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
import http.client
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from faultlib import (BUILD, ROOT, Stack, assert_consistent,  # noqa: E402
                      body_of, conf_template, online, rush_town, settled,
                      tag)
from stack import NGINX, PGBIN  # noqa: E402
from cluster import ClusterStack, RedisCluster, key_slot  # noqa: E402

PY = "/usr/bin/python3"
OUT = os.path.join(ROOT, "tests", "out", "faults")
TIMEOUT_S = 1.0                 # guichet_timeout of the matrix's nginx
RUSH_FAMILIES = 800
PROBE_FAMILIES = 10
BULK = ["s%02d" % i for i in range(1, 12)]
SESSIONS = [("hot", 10)] + [(sid, 1000) for sid in BULK] + [("probe", 40)]
TOWN = rush_town(families=RUSH_FAMILIES + PROBE_FAMILIES, sessions=SESSIONS)
WORKER_SETTINGS = {"reap_after_ms": 8000, "claim_idle_ms": 3000,
                   "recount_after_ms": 3000}
OK_REASONS = {"full", "already_booked"}
# on a Redis Cluster: six towns of CLUSTER_FAMILIES rush families each (and
# PROBE_FAMILIES), two on each of the three masters (six_towns)
CLUSTER_FAMILIES = 150


def six_towns():
    """Six town ids whose hash tags {<id>} land two on each master of a
    fresh 3-master cluster (redis-cli --cluster create gives them the slots
    0-5460, 5461-10922 and 10923-16383), in turn: a town of each master,
    then the second of each.  check_spread checks it on the live cluster."""
    thirds = [[], [], []]
    i = 0
    while any(len(x) < 2 for x in thirds):
        i += 1
        tid = "ville%d" % i
        slot = key_slot("{%s}" % tid)
        x = thirds[0 if slot <= 5460 else 1 if slot <= 10922 else 2]
        if len(x) < 2:
            x.append(tid)
    return [tid for pair in zip(*thirds) for tid in pair]


TOWNS6 = six_towns()


def six_town(tid):
    town = rush_town(families=CLUSTER_FAMILIES + PROBE_FAMILIES,
                     sessions=SESSIONS)
    town["town"] = dict(town["town"], id=tid, name="Panne " + tid)
    return town


def fam(i):
    return "f-%04d" % i


def child(fid):
    return "c-" + fid[2:]


class FaultError(AssertionError):
    pass


def need(cond, what):
    if not cond:
        raise FaultError(what)


def wait_until(what, ok, timeout, step=0.05):
    """ok() true within timeout s (a bound for a hung fault, never a
    measure); FaultError otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        v = ok()
        if v:
            return v
        if time.monotonic() > deadline:
            raise FaultError("%s: not within %ss" % (what, timeout))
        time.sleep(step)


# ----- processes ----------------------------------------------------------

def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def children(pid):
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            out.append(int(d))
    return out


def cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


class PidProc:
    """What Stack.stop() needs of a process it did not start itself (the
    new nginx master after a binary upgrade)."""

    def __init__(self, pid):
        self.pid = pid

    def poll(self):
        return None if alive(self.pid) else 0

    def send_signal(self, sig):
        try:
            os.kill(self.pid, sig)
        except ProcessLookupError:
            pass

    def kill(self):
        self.send_signal(signal.SIGKILL)

    def wait(self, timeout=None):
        deadline = time.monotonic() + (timeout or 3600)
        while alive(self.pid):
            if time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(str(self.pid), timeout)
            time.sleep(0.05)
        return 0


class MatrixStack(Stack):
    """A Stack whose worker settings file gets worker_settings
    (WORKER_SETTINGS by default)."""

    def __init__(self, *args, worker_settings=None, **kw):
        super().__init__(*args, **kw)
        self.worker_settings = worker_settings or WORKER_SETTINGS

    def _setup(self):
        super()._setup()
        with open(self.worker_conf, "a") as f:
            for k, v in self.worker_settings.items():
                f.write("%s = %s\n" % (k, v))

    def restart_worker(self):
        self._start_worker()

    def postgres_pids(self):
        with open(os.path.join(self.pgdata, "postmaster.pid")) as f:
            master = int(f.readline())
        return [master] + children(master)

    def start_postgres_again(self):
        """pg_ctl start on the same cluster and port (crash recovery)."""
        opts = "-p %d -c listen_addresses=127.0.0.1 -k %s" % (
            self.pg_port, self.pg_socket)
        for k, v in self.pg_settings.items():
            opts += " -c %s=%s" % (k, v)
        r = self._as_postgres([PGBIN + "/pg_ctl", "-D", self.pgdata, "-w",
                               "-t", "120", "-l", self._path("pg", "log"),
                               "-o", opts, "start"], check=False)
        need(r.returncode == 0, "pg_ctl start: " + r.stdout.decode())
        if self._pg is not None:
            self._pg.close()
            self._pg = None

    def nginx_master(self):
        return self.procs["nginx"].pid

    def nginx_workers(self, master=None):
        m = master or self.nginx_master()
        return sorted(p for p in children(m)
                      if "worker process" in cmdline(p))

    def nginx_as_daemon(self):
        """Replaces the stack's nginx (started in the foreground, a child of
        this process) by the same configuration started as a daemon, as
        Debian's nginx.service does: a master whose parent is still the
        one it started with ignores USR2 ("the changing binary signal is
        ignored")."""
        self._end(self.procs.pop("nginx"), signal.SIGQUIT, 30)
        env = dict(os.environ)
        if self.asan:
            env["LD_PRELOAD"] = subprocess.run(
                ["gcc", "-print-file-name=libasan.so"], check=True,
                stdout=subprocess.PIPE).stdout.decode().strip()
            env.setdefault("ASAN_OPTIONS", "detect_leaks=0:abort_on_error=0")
        r = subprocess.run([NGINX, "-p", os.path.dirname(self.nginx_conf),
                            "-c", self.nginx_conf, "-e", self.error_log_path],
                           env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT)
        need(r.returncode == 0, "nginx as a daemon: " + r.stdout.decode())
        pid = wait_until("nginx.pid of the daemon", self.pid_file, 30)
        self.procs["nginx"] = PidProc(pid)
        wait_until("GET /api/health = 200 from the daemon",
                   lambda: self.http("GET", "/api/health").status == 200,
                   30, step=0.1)

    def pid_file(self, suffix=""):
        path = os.path.join(self.dir, "nginx", "nginx.pid" + suffix)
        try:
            with open(path) as f:
                return int(f.read().strip() or 0)
        except (OSError, ValueError):
            return 0


class ClusterMatrixStack(MatrixStack, ClusterStack):
    """A MatrixStack on a Redis Cluster (ClusterStack) serving the six
    towns of TOWNS6: the first is the stack's own (town_id, on
    localhost), the five others each on <id>.localhost (extra_towns),
    made and loaded by start() (guichetctl --town ID migrate, load-town).
    towns are the six, each a TownView (town_id, redis: a client of its
    master now)."""

    town_id = TOWNS6[0]
    extra_towns = " ".join(TOWNS6[1:])

    def start(self):
        super().start()
        for tid in TOWNS6[1:]:
            path = self._path(tid + ".json")
            with open(path, "w") as f:
                json.dump(six_town(tid), f)
            self.ctl_run("--town", tid, "migrate")
            self.ctl_run("--town", tid, "load-town", path)
        self.towns = [TownView(self.cluster, tid) for tid in TOWNS6]
        return self

    def tokens(self):
        """{"<town>/<family>": token} of every family of the six towns."""
        out = {}
        for tid in TOWNS6:
            for line in self.ctl_run("--town", tid, "tokens").splitlines():
                if line.strip():
                    fid, tok = line.split()
                    out["%s/%s" % (tid, fid)] = tok
        return out

    def host(self, tid):
        """The Host header of the town tid's requests."""
        return {} if tid == self.town_id else {"Host": tid + ".localhost"}


class TownView:
    """One town of a ClusterMatrixStack as faultlib's and the checker's
    functions see a stack: town_id, redis (a client of the current master
    of the town's slot)."""

    def __init__(self, cluster, tid):
        self.cluster = cluster
        self.town_id = tid

    @property
    def master(self):
        return self.cluster.master_of("{%s}" % self.town_id)

    @property
    def redis(self):
        return self.master.client()

    _redis = redis


def check_spread(cluster, towns):
    """The six towns are two on each of the three masters; their ports
    by town id."""
    where = {tid: cluster.master_of("{%s}" % tid) for tid in towns}
    per = {}
    for tid, m in where.items():
        per.setdefault(m.port, []).append(tid)
    need(len(per) == 3 and all(len(v) == 2 for v in per.values()),
         "the towns are not two per master: %r" % per)
    return {tid: m.port for tid, m in where.items()}


# ----- the rush ------------------------------------------------------------

class Rush:
    """16 parents booking without pause between their requests but a
    short one (pace) after each answer; see the module docstring.
    allow_resets: a connection reset or a timeout is not wrong (the fault
    kills the process that held the connection)."""

    def __init__(self, s, tokens, threads=16, seed=8, pace=0.03,
                 allow_resets=False, towns=None, families=RUSH_FAMILIES):
        self.s = s
        # towns: the rush books in each of them (a ClusterMatrixStack's);
        # its families are then "<town>/<family>" (split)
        self.towns = towns
        if towns is None:
            self.families = [fam(i) for i in range(1, families + 1)]
        else:
            self.families = ["%s/%s" % (tid, fam(i))
                             for i in range(1, families + 1)
                             for tid in towns]
        self.tok = tokens
        self.threads = threads
        self.pace = pace
        self.allow_resets = allow_resets
        self.lock = threading.Lock()
        self.stop_ev = threading.Event()       # no new key
        self.give_up_ev = threading.Event()    # not even the current one
        self.t0 = time.monotonic()
        self.finals = []        # {"k","f","s","b","sent","answered"}
        self.wrong = []
        self.resets = []
        self.counts = {"requests": 0, "200": 0, "503": 0, "409": 0,
                       "reset": 0, "replayed": 0}
        self.confirmed = 0
        self.workers = []
        rnd = random.Random(seed)
        self.todo = {}
        for f in self.families:
            bulk = BULK[:]
            rnd.shuffle(bulk)
            self.todo[f] = ["hot"] + bulk
        self.rnd = [random.Random(seed * 1000 + t) for t in range(threads)]

    def now(self):
        return time.monotonic() - self.t0

    @staticmethod
    def split(f):
        """(town or None, family id) of a rush family."""
        tid, _, fid = f.rpartition("/")
        return tid or None, fid

    def start(self):
        for t in range(self.threads):
            th = threading.Thread(target=self._parent, args=(t,),
                                  daemon=True)
            th.start()
            self.workers.append(th)
        return self

    def _parent(self, t):
        try:
            self._parent_loop(t)
        except Exception as e:              # noqa: BLE001 -- a test bug
            with self.lock:
                self.wrong.append("parent %d died: %r" % (t, e))

    def _parent_loop(self, t):
        fams = self.families[t::self.threads]
        rnd = self.rnd[t]
        while not self.stop_ev.is_set():
            fams = [f for f in fams if self.todo[f]]
            if not fams:
                return
            f = rnd.choice(fams)
            n = 2 if len(self.todo[f]) > 1 and rnd.random() < 0.5 else 1
            sids = [self.todo[f].pop(0) for _ in range(n)]
            self.one(f, sids)
            time.sleep(self.pace)

    def one(self, f, sids, key=None, timeout=None):
        """Books sids for f's child with one key until a 200 (or give-up,
        or timeout s); records the final answer.  Returns it."""
        key = key or "m-" + uuid.uuid4().hex
        deadline = time.monotonic() + timeout if timeout else None
        tid, fid = self.split(f)
        items = [(child(fid), sid) for sid in sids]
        headers = {"Idempotency-Key": key,
                   "Content-Type": "application/json"}
        if tid is not None:
            headers.update(self.s.host(tid))
        sent = self.now()
        last = None
        while True:
            try:
                r = self.s.http("POST", "/api/bookings", token=self.tok[f],
                                headers=headers, body=body_of(items),
                                timeout=30)
            except (OSError, http.client.HTTPException) as e:
                with self.lock:
                    self.counts["requests"] += 1
                    self.counts["reset"] += 1
                    self.resets.append((round(self.now(), 3), repr(e)))
                    if not self.allow_resets:
                        self.wrong.append("%s: connection: %r" % (key, e))
                last = "reset"
            else:
                last = r.status
                if self._judge(key, f, sids, r):
                    rec = {"k": key, "f": f, "s": 200, "b": r.json(),
                           "sent": sent, "answered": self.now()}
                    with self.lock:
                        self.finals.append(rec)
                        self.confirmed += sum(
                            1 for it in rec["b"]["items"]
                            if it["status"] == "confirmed")
                    return rec
            if self.give_up_ev.is_set() or (
                    deadline and time.monotonic() > deadline):
                rec = {"k": key, "f": f, "s": last, "b": None,
                       "sent": sent, "answered": None}
                with self.lock:
                    self.finals.append(rec)
                return rec
            time.sleep(0.2 if last == 409 else 0.05)

    def _judge(self, key, f, sids, r):
        """Counts and checks one answer; True when it is the final 200."""
        with self.lock:
            self.counts["requests"] += 1
        bad = None
        final = False
        try:
            body = r.json()
        except ValueError:
            body = None
        code = (body or {}).get("error", {}).get("code") \
            if isinstance(body, dict) and isinstance(body.get("error"),
                                                     dict) else None
        if r.status == 200:
            items = body.get("items") if isinstance(body, dict) else None
            if not isinstance(items, list) or \
                    [(it.get("child_id"), it.get("session_id"))
                     for it in items] != [(child(self.split(f)[1]), s)
                                          for s in sids]:
                bad = "200 with other items"
            else:
                for it in items:
                    if it.get("status") == "confirmed":
                        if not str(it.get("booking_id", "")).startswith(
                                "b-"):
                            bad = "confirmed without booking_id"
                    elif it.get("status") != "refused" or \
                            it.get("reason") not in OK_REASONS:
                        bad = "item %s/%s" % (it.get("status"),
                                              it.get("reason"))
            final = bad is None
            with self.lock:
                self.counts["200"] += 1
                if r.headers.get("idempotent-replayed") == "true":
                    self.counts["replayed"] += 1
        elif r.status == 503:
            # not_replicated: WAIT fell short on a cluster (issue 21)
            if code not in ("unavailable", "not_replicated"):
                bad = "503 %s" % code
            elif not re.fullmatch(r"[1-9][0-9]*",
                                  r.headers.get("retry-after", "")):
                bad = "503 without Retry-After"
            with self.lock:
                self.counts["503"] += 1
        elif r.status == 409 and code == "request_in_progress":
            with self.lock:
                self.counts["409"] += 1
        else:
            bad = "%d %s" % (r.status, code or r.body[:80])
        if bad:
            with self.lock:
                self.wrong.append("%s at %.2fs: %s" % (key, self.now(), bad))
        return final

    def answered_since(self, t):
        with self.lock:
            return sum(1 for rec in self.finals
                       if rec["s"] == 200 and rec["sent"] >= t)

    def first_answer_since(self, t):
        with self.lock:
            a = [rec["answered"] for rec in self.finals
                 if rec["s"] == 200 and rec["sent"] >= t]
        return min(a) if a else None

    def finish(self, timeout=120):
        """No new key; each parent finishes its own (a bound for a hung
        parent: then it gives up and its key counts as unanswered)."""
        self.stop_ev.set()
        deadline = time.monotonic() + timeout
        for th in self.workers:
            th.join(max(0.1, deadline - time.monotonic()))
        if any(th.is_alive() for th in self.workers):
            self.give_up_ev.set()
            for th in self.workers:
                th.join(60)

    def write_log(self, path, town=None):
        """One JSON line per key, as bench/check.py reads them (those of
        the town when given)."""
        with open(path, "w") as f:
            for rec in self.finals:
                tid, fid = self.split(rec["f"])
                if tid != town:
                    continue
                f.write(json.dumps({"k": rec["k"], "f": fid,
                                    "s": rec["s"], "b": rec["b"]}) + "\n")


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


NETDROP_MARK = "0x47"


def iptables(*args):
    r = subprocess.run(["iptables", "-w"] + list(args),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    need(r.returncode == 0, "iptables %s: %s" % (" ".join(args),
                                                 r.stdout.decode()))


def netdrop_prepare(redis_port):
    """Marks every connection nginx's workers (user nobody) open to Redis
    (connmark), so that one rule in OUTPUT drops both directions (on
    loopback every packet goes through OUTPUT)."""
    iptables("-t", "mangle", "-A", "OUTPUT", "-o", "lo", "-p", "tcp",
             "--dport", str(redis_port), "-m", "owner", "--uid-owner",
             "nobody", "-j", "CONNMARK", "--set-mark", NETDROP_MARK)


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


class Tmpfs:
    def __init__(self, size_mb):
        self.parent = tempfile.mkdtemp(prefix="guichet-fault-tmpfs-")
        os.chmod(self.parent, 0o755)
        self.path = os.path.join(self.parent, "disk")
        os.mkdir(self.path)
        opts = "size=%dm,mode=0755" % size_mb
        subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "guichet-fault",
                        self.path], check=True)

    def fill(self):
        """Writes a file until the tmpfs is full; its size in bytes."""
        self.filler = os.path.join(self.path, "filler")
        n = 0
        with open(self.filler, "wb", buffering=0) as f:
            for chunk in (1 << 20, 4096, 512):
                try:
                    while True:
                        n += f.write(b"\0" * chunk)
                except OSError:
                    pass
        return n

    def free(self):
        os.unlink(self.filler)

    def remove(self):
        subprocess.run(["umount", "-l", self.path], check=False)
        shutil.rmtree(self.parent, ignore_errors=True)


def disk_full_prepare(s):
    """Moves every table and index of the database guichet to a tablespace
    on a 16 MiB tmpfs; WAL stays on the cluster's disk."""
    disk = Tmpfs(16)
    ts = os.path.join(disk.path, "ts")
    os.mkdir(ts)
    shutil.chown(ts, "postgres", "postgres")
    os.chmod(ts, 0o700)
    s.sql("create tablespace fault_full location %s", (ts,))
    s.sql("alter table all in tablespace pg_default "
          "set tablespace fault_full")
    s.sql("alter index all in tablespace pg_default "
          "set tablespace fault_full")
    n = s.sql("select count(*) from pg_class c join pg_tablespace t "
              "on t.oid = c.reltablespace where t.spcname = 'fault_full'")
    need(n[0][0] > 10, "relations moved to the tmpfs: %s" % n)
    return disk


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
    # live attempt touches them (worker/reaper.c): after the rush
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
