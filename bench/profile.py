#!/usr/bin/python3
"""
profile.py -- where the CPU goes during a booking or refusal rush, and A/B
comparisons of module builds on one stack.

Starts the benchmark's stack (bench/run's BenchStack: loadtest.conf, Redis
appendfsync always, PostgreSQL fsync on) on a small town, then for each
repetition and each module given (--module, interleaved: A B A B ...)
restarts nginx with that module and runs rush.c for --seconds at --conns in
each mode asked:

  ceiling   rush.c --fixed at /baseline (nginx `return 200`)
  single    single-cell bookings (a fresh child and cell each request)
  refusal   single-cell requests on the sold-out session
  open=R    single-cell bookings offered at R a second (rush.c --rate:
            open loop, latency from each request's due time); open=R@C
            with a pool of C connections instead of --conns

For every run it prints answers/s and the CPU each program took, from
/proc/<pid>/stat (user + system of its threads) and /proc/stat (the whole
machine: user, system, softirq, idle), as a share of one core, and the
nginx workers' user time alone per answer (the module's and nginx's own
code: steadier than user + system, whose kernel share moves with how many
requests a loop turn batches on a busy machine).  With
--perf, `perf record -a -g` samples the whole machine during the run and
`perf report --sort comm,dso,sym` is written next to the figures.  With
--syscalls, `perf stat` counts the nginx workers' system calls during the
run (all of them, and epoll_ctl, epoll_wait, read/recv, write/writev by
name), printed per answer: a count that the machine's noise does not move,
unlike answers/s.  Every run also prints the tokens the nginx workers
verified per answer (guichet_token_checks_total from /metrics: their
token caches' misses; None for a module without the counter).  perf's
samples are the whole machine's, other users' nginx included: to read the
shares of the stack's own workers, `perf report --pid` with the pids
whose samples are in the module under test (`--sort pid,dso`).

--worker-set gives the worker's settings of a variant ("batch_size=2000,
batch_gather_ms=100"; "" is the settings file as the stack writes it;
"bin=PATH" runs that build of guichet-worker, e.g. main's against a
branch's: --worker-set "" --worker-set bin=/tmp/w-main);
repeated, the variants are interleaved with the modules (each module with
each variant in every repetition), the worker restarted between them;
"stopped": the worker as it is, SIGSTOPped during the run (nothing
persisted until the client is done: the rush without PostgreSQL).  A few
keys of a variant are not the worker's settings: nice=N and ionice=C (the
worker's and every PostgreSQL process's nice level and I/O class, 2 best
effort, 3 idle), client_nice=N (rush.c's), redis.NAME=VALUE (CONFIG SET
of Redis for the variant, set back after it).
--redis-latency records Redis's latency monitor (events over 1 ms:
aof-fsync-always, fork, command...) and its slow log (over 1 ms) for each
run.  Every run records each program's run-queue delay (ms a second it
was ready to run but waited for a CPU, /proc/<pid>/task/*/schedstat).
--timeline (open loop) lays each request's interval (due time to answer,
rush.c --log) over what the stack did meanwhile (perf record -k mono of
the whole machine): Redis's fdatasyncs and forks (an AOF rewrite, to its
child's exit), PostgreSQL's fsyncs and the other programs': the share of
the requests slower than the run's p99, and of all, that overlapped each
kind; Redis's fdatasyncs by what was in progress when they began; and,
printed for each variant, the same over the quiet runs alone (the
machine's other programs under half a core).
--persist measures what persisting the run's bookings costs and how it
interferes, counted from the run's start until the worker has persisted
its last booking: the worker's batches (updates of stream_position), the
database's commits, WAL bytes and checkpoints per booking, the CPU of
PostgreSQL and of the worker per confirmed booking (their whole work for
the run's bookings, not only what fell inside the run), the lag (now minus
the time of the oldest unpersisted entry, sampled every 50 ms during the
run), and, during the run, the fsync + fdatasync calls a second of Redis
and of PostgreSQL (perf stat), the mean time of one and the share of the
run spent in them (perf trace -s).

    bench/profile.py --modes single,refusal --conns 256 --seconds 5 --perf
    bench/profile.py --module build/a.so --module build/b.so --reps 3
    bench/profile.py --modes single --persist --reps 3 \
        --worker-set "" --worker-set "batch_size=5000,batch_gather_ms=200"
    bench/profile.py --modes open=8626@1078 --seconds 8 --reps 3 \
        --timeline --worker-set "" --worker-set stopped

Results in --out (default bench/out/profile/).  A tool for engineers: no
timing is ever asserted.
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))

import stack as stacklib      # noqa: E402
from benchlib import say  # noqa: E402

HZ = os.sysconf("SC_CLK_TCK")


class ProfStack(stacklib.Stack):
    nginx_template = "loadtest.conf"
    pg_settings = dict(stacklib.Stack.pg_settings, fsync="on",
                       synchronous_commit="on", full_page_writes="on",
                       shared_buffers="256MB")
    nsql = 0        # statements of ours (each a commit of the database)

    def sql(self, query, params=None):
        self.nsql += 1
        return super().sql(query, params)


def children(pid):
    out = []
    try:
        for t in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/children" % (pid, t)) as fh:
                out += [int(x) for x in fh.read().split()]
    except OSError:
        pass
    return out


def proc_ticks(pid, user_only=False):
    """user + system ticks of every thread of pid (user only: its own code
    and its libraries', without the kernel's work for it, which moves with
    how many requests a loop turn batches)."""
    try:
        with open("/proc/%d/stat" % pid) as fh:
            f = fh.read().rsplit(")", 1)[1].split()
        return int(f[11]) + (0 if user_only else int(f[12]))
    except OSError:
        return 0


def proc_name(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as fh:
            return fh.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def run_delay_ns(pid):
    """Time pid's threads have waited on a run queue, ready but not
    running (/proc/<pid>/task/*/schedstat, second field): the CPU
    starvation a process met, whatever the machine's other load."""
    n = 0
    try:
        for t in os.listdir("/proc/%d/task" % pid):
            try:
                with open("/proc/%d/task/%s/schedstat" % (pid, t)) as fh:
                    n += int(fh.read().split()[1])
            except OSError:
                pass
    except OSError:
        pass
    return n


TIMELINE_EVENTS = ("syscalls:sys_enter_fdatasync",
                   "syscalls:sys_exit_fdatasync",
                   "syscalls:sys_enter_fsync", "syscalls:sys_exit_fsync",
                   "sched:sched_process_fork", "sched:sched_process_exit")


def timeline(a, tag, g, res):
    """Where the open loop's slow answers were: each request's interval
    (due time to answer, rush.c's --log) against what the stack did
    meanwhile (perf record -k mono of the whole machine): Redis's
    fdatasyncs (appendfsync always: the replies of a loop turn wait for
    it), PostgreSQL's fsyncs/fdatasyncs (the worker's commits, WAL), and
    Redis's forks (an AOF rewrite: from the fork to its child's exit).
    Returns, for the requests slower than the run's p99 and for all, the
    share that overlapped each kind of event (at least min_ms long)."""
    import bisect
    data = os.path.join(a.out, tag + ".tl.data")
    txt = subprocess.run(["perf", "script", "-i", data, "-F",
                          "pid,tid,time,event,trace"],
                         capture_output=True, text=True).stdout
    redis = set(g["redis"])
    pg = set(g["postgres"])
    open_sys = {}
    iv = {"redis_fsync": [], "pg_fsync": [], "redis_rewrite": [],
          "other_fsync": []}
    children = {}
    for line in txt.splitlines():
        f = line.split()
        if len(f) < 4:
            continue
        try:
            pid = int(f[0].split("/")[0])
            tid = int(f[0].split("/")[1]) if "/" in f[0] else int(f[1])
        except ValueError:
            continue
        # "pid/tid time: event: trace" or "pid tid time: event: ..."
        rest = line.split(":", 1)
        if "/" in f[0]:
            ts = float(f[1].rstrip(":"))
            ev = f[2].rstrip(":")
        else:
            ts = float(f[2].rstrip(":"))
            ev = f[3].rstrip(":")
        del rest
        ts_us = ts * 1e6
        if ev.startswith("syscalls:sys_enter_f"):
            open_sys[tid] = ts_us
        elif ev.startswith("syscalls:sys_exit_f"):
            t0 = open_sys.pop(tid, None)
            if t0 is None:
                continue
            if pid in redis:
                iv["redis_fsync"].append((t0, ts_us))
            elif pid in pg:
                iv["pg_fsync"].append((t0, ts_us))
            else:
                # the machine's other programs (the other stacks)
                iv["other_fsync"].append((t0, ts_us))
        elif ev == "sched:sched_process_fork" and pid in redis:
            for w in f:
                if w.startswith("child_pid="):
                    children[int(w[10:])] = ts_us
        elif ev == "sched:sched_process_exit" and tid in children:
            iv["redis_rewrite"].append((children.pop(tid), ts_us))
    for c, t0 in children.items():
        iv["redis_rewrite"].append((t0, float("inf")))
    t0 = res["t0_monotonic_us"]
    reqs = []
    with open(os.path.join(a.out, tag + ".log")) as fh:
        for line in fh:
            r = json.loads(line)
            end = t0 + r["t"] * 1000
            reqs.append((end - r["tot"], end, r["tot"], r["us"]))
    if not reqs:
        return {}
    lat = sorted(r[2] for r in reqs)
    p99 = lat[int(0.99 * (len(lat) - 1))]
    out = {"requests": len(reqs), "p99_ms": round(p99 / 1e3, 2),
           "pids": {"redis": sorted(redis), "postgres": sorted(pg)}}
    for k, v in iv.items():
        d = sorted(e - b for b, e in v)
        out[k] = {"n": len(v), "ms_p50": round(d[len(d) // 2] / 1e3, 2)
                  if d else None,
                  "ms_p99": round(d[int(0.99 * (len(d) - 1))] / 1e3, 2)
                  if d else None,
                  "ms_max": round(d[-1] / 1e3, 2) if d else None,
                  "over_5ms": sum(1 for x in d if x > 5000),
                  "over_20ms": sum(1 for x in d if x > 20000)}

    def overlap(kind, min_us):
        ev = sorted((b, e) for b, e in iv[kind] if e - b >= min_us)
        starts = [b for b, e in ev]

        def hit(r):
            # an event that began before the answer and ended after the
            # due time (events are short and sparse: look back a little)
            i = bisect.bisect_right(starts, r[1])
            j = i - 1
            while j >= 0 and starts[j] > r[0] - 2e6:
                if ev[j][1] > r[0]:
                    return True
                j -= 1
            return False
        tail = [r for r in reqs if r[2] >= p99]
        return (round(sum(map(hit, tail)) / max(1, len(tail)), 3),
                round(sum(map(hit, reqs)) / len(reqs), 3))
    out["tail_vs_all_overlapping"] = {
        "redis_fsync>=2ms": overlap("redis_fsync", 2000),
        "redis_fsync>=10ms": overlap("redis_fsync", 10000),
        "pg_fsync>=2ms": overlap("pg_fsync", 2000),
        "redis_rewrite": overlap("redis_rewrite", 0)}
    # the tail's requests sent late (waiting for the client or a free
    # connection) rather than slow once sent
    # the latency of the requests due during an AOF rewrite against the
    # others' (the same run, the same machine)
    rws = sorted(iv["redis_rewrite"])
    inside = sorted(r[2] for r in reqs
                    if any(b <= r[0] < e for b, e in rws))
    outside = sorted(r[2] for r in reqs
                     if not any(b <= r[0] < e for b, e in rws))

    def p(v, q):
        return round(v[int(q * (len(v) - 1))] / 1e3, 2) if v else None
    out["due_in_rewrite"] = {"n": len(inside), "p50_ms": p(inside, 0.5),
                             "p99_ms": p(inside, 0.99)}
    out["due_outside_rewrite"] = {"n": len(outside),
                                  "p50_ms": p(outside, 0.5),
                                  "p99_ms": p(outside, 0.99)}
    # the long fsyncs of Redis: during what?
    longs = [(b, e) for b, e in iv["redis_fsync"] if e - b >= 5000]

    def during(kind):
        return round(sum(1 for b, e in longs if any(
            x < e and y > b for x, y in iv[kind])) / max(1, len(longs)), 2)
    # Redis's fdatasyncs that began while one of our PostgreSQL's fsyncs
    # was in progress, during an AOF rewrite, or with neither: how many,
    # and their mean duration (classed by where they began, not by what
    # they overlapped: a long one overlaps more by its length alone)
    pgs = sorted(iv["pg_fsync"])
    pgstarts = [b for b, e in pgs]

    def in_progress(t):
        j = bisect.bisect_right(pgstarts, t) - 1
        while j >= 0 and pgstarts[j] > t - 1e6:
            if pgs[j][1] > t:
                return True
            j -= 1
        return False
    cls = {"with_pg_fsync": [], "in_rewrite": [], "alone": []}
    for b, e in iv["redis_fsync"]:
        if in_progress(b):
            cls["with_pg_fsync"].append(e - b)
        elif any(x <= b < y for x, y in iv["redis_rewrite"]):
            cls["in_rewrite"].append(e - b)
        else:
            cls["alone"].append(e - b)
    out["redis_fsync_by_company"] = {
        k: {"n": len(v), "ms_mean": round(sum(v) / len(v) / 1e3, 2)
            if v else None, "over_5ms": sum(1 for x in v if x > 5000)}
        for k, v in cls.items()}
    out["redis_fsync>=5ms_during"] = {
        "n": len(longs), "pg_fsync": during("pg_fsync"),
        "redis_rewrite": during("redis_rewrite"),
        "other_fsync": during("other_fsync")}
    tail = [r for r in reqs if r[2] >= p99]
    out["tail_sent_late_share"] = round(
        sum(1 for r in tail if r[2] - r[3] > 1000) / max(1, len(tail)), 3)
    return out


def machine_ticks():
    with open("/proc/stat") as fh:
        f = fh.readline().split()[1:]
    v = [int(x) for x in f]
    # user nice system idle iowait irq softirq steal
    return {"user": v[0] + v[1], "system": v[2], "idle": v[3] + v[4],
            "irq": v[5], "softirq": v[6], "steal": v[7]}


def groups(s):
    """{name: [pids]}: nginx workers, redis, worker, postgres."""
    g = {}
    ng = s.procs["nginx"].pid
    g["nginx"] = children(ng)
    g["redis"] = [s.procs["redis"].pid]
    g["guichet-worker"] = [s.procs["worker"].pid]
    pg = []
    try:
        with open(os.path.join(s.pgdata, "postmaster.pid")) as fh:
            pm = int(fh.readline())
        pg = [pm] + children(pm)
    except OSError:
        pass
    g["postgres"] = pg
    return g


SYSCALL_EVENTS = ("raw_syscalls:sys_enter", "syscalls:sys_enter_epoll_ctl",
                  "syscalls:sys_enter_epoll_wait",
                  "syscalls:sys_enter_recvfrom", "syscalls:sys_enter_read",
                  "syscalls:sys_enter_readv", "syscalls:sys_enter_write",
                  "syscalls:sys_enter_writev")


def syscalls_per_answer(csv, answers):
    """perf stat's CSV (count,unit,event,...) -> {name: calls per answer}.
    recvfrom/read/readv are summed as "read", write/writev as "write"."""
    out = {}
    with open(csv) as fh:
        for line in fh:
            f = line.strip().split(",")
            if len(f) < 3 or not f[0].isdigit():
                continue
            name = f[2].split(":")[-1].replace("sys_enter_", "")
            name = {"sys_enter": "all", "recvfrom": "read", "readv": "read",
                    "writev": "write"}.get(name, name)
            out[name] = out.get(name, 0) + int(f[0])
    return {k: round(v / answers, 2) if answers else None
            for k, v in out.items()}


FSYNC_EVENTS = ("syscalls:sys_enter_fsync", "syscalls:sys_enter_fdatasync")


def perf_count(csv):
    """perf stat's CSV -> the sum of its counts."""
    n = 0
    with open(csv) as fh:
        for line in fh:
            f = line.strip().split(",")
            if len(f) >= 3 and f[0].isdigit():
                n += int(f[0])
    return n


def trace_fsyncs(path):
    """perf trace -s's summary -> (calls, total ms) of fsync + fdatasync,
    over every thread traced."""
    calls, ms = 0, 0.0
    try:
        with open(path) as fh:
            for line in fh:
                f = line.split()
                if len(f) >= 4 and f[0] in ("fsync", "fdatasync"):
                    calls += int(f[1])
                    ms += float(f[3])
    except OSError:
        pass
    return calls, ms


def persist_counters(s):
    """PostgreSQL's counters for the town: batches persisted (updates of
    stream_position), commits, WAL position, checkpoints."""
    schema = "town_" + s.town_id.replace("-", "_")
    r = s.sql("select (select n_tup_upd from pg_stat_user_tables"
              "         where schemaname = %s and relname = 'stream_position'),"
              " (select xact_commit from pg_stat_database"
              "   where datname = current_database()),"
              " pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint,"
              " pg_current_wal_lsn()::text,"
              " (select checkpoints_timed + checkpoints_req"
              "    from pg_stat_bgwriter)", (schema,))[0]
    # the commits of the others: ours (this one included) left out
    return {"batches": r[0] or 0, "commits": r[1] - s.nsql, "wal": r[2],
            "checkpoints": r[4], "lsn": r[3]}


def lag_ms(s):
    """now minus the time of the oldest entry after the persisted position
    (0 when caught up), as the worker's lag_ms."""
    pos = s.stream_position()
    if pos is None:
        return None
    e = s.redis.xrange("{%s}:stream" % s.town_id, "(" + pos, "+", count=1)
    if not e:
        return 0
    eid = e[0][0]
    eid = eid.decode() if isinstance(eid, bytes) else eid
    return max(0, int(time.time() * 1000) - int(eid.split("-")[0]))


def token_checks(s):
    """guichet_token_checks_total (tokens the nginx workers verified, not
    found in their caches), or None (a module without it)."""
    r = s.http("GET", "/metrics")
    for line in r.body.decode().splitlines():
        if line.startswith("guichet_token_checks_total "):
            return int(line.split()[1])
    return None


def redis_commandstats(s):
    """{command: (calls, usec)} of INFO commandstats."""
    out = {}
    for k, v in s.redis.info("commandstats").items():
        if k.startswith("cmdstat_") and isinstance(v, dict):
            out[k[8:]] = (int(v.get("calls", 0)), int(v.get("usec", 0)))
    return out


def quantile(v, q):
    if not v:
        return None
    v = sorted(v)
    return v[min(len(v) - 1, int(q * len(v)))]


def run(s, a, mode, rush_bin, tokens, town, offsets, tag):
    fam = os.path.join(town, "families.tsv")
    args = []
    if mode == "ceiling":
        args = ["--fixed", os.path.join(a.out, "baseline.body"),
                "--path", "/baseline"]
    elif mode == "single" or mode.startswith("open="):
        # open=R: single-cell bookings offered at R a second (open loop,
        # latency from each request's due time)
        args = ["--grid", fam, os.path.join(town, "single.sessions"),
                "--offset", str(offsets["single"])]
        if mode.startswith("open="):
            # open=R@C: C connections as the pool instead of --conns
            args += ["--rate", mode[5:].partition("@")[0]]
    elif mode == "refusal":
        args = ["--grid", fam, os.path.join(town, "full.session"),
                "--offset", str(offsets["refusal"])]
    summ = os.path.join(a.out, tag + ".summary.json")
    conns = a.conns
    if mode.startswith("open=") and "@" in mode:
        conns = int(mode.partition("@")[2])
    argv = [rush_bin, "--port", str(s.port), "--tokens", tokens,
            "--conns", str(conns), "--duration", str(a.seconds),
            "--summary", summ, "--quiet", "--prefix",
            tag.replace(".", "_").replace("=", "").replace("@", "c")]
    argv += args
    g = groups(s)
    rstats0 = redis_commandstats(s)
    tc0 = token_checks(s)
    before = {k: sum(proc_ticks(p) for p in v) for k, v in g.items()}
    user0 = sum(proc_ticks(p, True) for p in g["nginx"])
    m0 = machine_ticks()
    t0 = time.monotonic()
    perf = None
    stat = None
    if a.syscalls:
        stat = subprocess.Popen(
            ["perf", "stat", "-x", ",", "-o",
             os.path.join(a.out, tag + ".syscalls.csv"),
             "-p", ",".join(str(p) for p in g["nginx"])]
            + sum((["-e", e] for e in SYSCALL_EVENTS), [])
            + ["--", "sleep", str(a.seconds)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    fsync = {}
    if a.persist:
        c0 = persist_counters(s)
        for k in ("redis", "postgres"):
            fsync[k] = subprocess.Popen(
                ["perf", "stat", "-x", ",", "-o",
                 os.path.join(a.out, "%s.fsync-%s.csv" % (tag, k)),
                 "-p", ",".join(str(p) for p in g[k])]
                + sum((["-e", e] for e in FSYNC_EVENTS), [])
                + ["--", "sleep", str(a.seconds)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            # how long each took (perf trace's summary at its SIGINT)
            fsync[k + "-trace"] = subprocess.Popen(
                ["timeout", "-s", "INT", str(a.seconds), "perf", "trace",
                 "-s", "-e", "fsync,fdatasync", "-o",
                 os.path.join(a.out, "%s.fsync-%s.trace" % (tag, k)),
                 "-p", ",".join(str(p) for p in g[k])],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if a.perf:
        perf = subprocess.Popen(
            ["perf", "record", "-a", "--call-graph", a.call_graph,
             "-F", str(a.freq), "-o",
             os.path.join(a.out, tag + ".perf.data"), "--",
             "sleep", str(a.seconds)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if a.stop_worker:
        s.procs["worker"].send_signal(signal.SIGSTOP)
    if a.redis_latency:
        s.redis.execute_command("LATENCY", "RESET")
        s.redis.execute_command("SLOWLOG", "RESET")
    if a.timeline:
        argv += ["--log", os.path.join(a.out, tag + ".log")]
        tl = subprocess.Popen(
            ["perf", "record", "-a", "-k", "mono", "-o",
             os.path.join(a.out, tag + ".tl.data")]
            + sum((["-e", e] for e in TIMELINE_EVENTS), [])
            + ["--", "sleep", str(a.seconds + 1)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)
    delay0 = {k: sum(run_delay_ns(p) for p in v) for k, v in g.items()}
    if a.client_cpu is not None:
        argv = ["taskset", "-c", a.client_cpu] + argv
    cnice = CLIENT["nice"] if CLIENT["nice"] is not None else a.client_nice
    if cnice:
        argv = ["nice", "-n", str(cnice)] + argv
    client = subprocess.Popen(argv, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT)
    cstat = None
    if a.syscalls:
        # the client's own system calls, for its share of the machine
        cstat = subprocess.Popen(
            ["perf", "stat", "-x", ",", "-o",
             os.path.join(a.out, tag + ".rush-syscalls.csv"),
             "-p", str(client.pid)]
            + sum((["-e", e] for e in SYSCALL_EVENTS), [])
            + ["--", "sleep", str(a.seconds)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client_ticks = 0
    client_delay = 0
    lags = []
    while client.poll() is None:
        client_ticks = max(client_ticks, proc_ticks(client.pid))
        client_delay = max(client_delay, run_delay_ns(client.pid))
        if a.persist:
            lags.append(lag_ms(s))
        time.sleep(0.05)
    out = client.stdout.read().decode()
    if a.stop_worker:
        s.procs["worker"].send_signal(signal.SIGCONT)
    if perf:
        perf.wait()
    if stat:
        stat.wait()
    if cstat:
        cstat.wait()
    for p in fsync.values():
        p.wait()
    el = time.monotonic() - t0
    delay1 = {k: sum(run_delay_ns(p) for p in v) for k, v in g.items()}
    if a.timeline:
        tl.wait()
    m1 = machine_ticks()
    after = {k: sum(proc_ticks(p) for p in v) for k, v in g.items()}
    user1 = sum(proc_ticks(p, True) for p in g["nginx"])
    rstats1 = redis_commandstats(s)
    tc1 = token_checks(s)
    if a.persist:
        # the rest of the run's bookings persisted: the whole cost of
        # persisting them (PostgreSQL's statistics reach its views within
        # a second of a transaction)
        t1 = time.monotonic()
        s.wait_worker_drained(120)
        drain_s = time.monotonic() - t1
        drained = {k: sum(proc_ticks(p) for p in g[k])
                   for k in ("postgres", "guichet-worker")}
        time.sleep(1.5)
        c1 = persist_counters(s)
    if client.returncode != 0:
        raise RuntimeError("rush failed: " + out[-2000:])
    with open(summ) as fh:
        res = json.load(fh)
    if mode.startswith("open="):
        offsets["single"] += res["requests"]
    elif mode in offsets:
        offsets[mode] += res["requests"]
    cpu = {k: round((after[k] - before[k]) / HZ / el, 3) for k in g}
    cpu["rush"] = round(client_ticks / HZ / el, 3)
    mach = {k: round((m1[k] - m0[k]) / HZ / el, 3) for k in m0}
    rate = res["cells_answered_per_s"] if mode != "ceiling" \
        else res["answers_per_s"]
    row = {"tag": tag, "mode": mode, "rate": rate,
           "confirmed_per_s": res.get("cells_confirmed_per_s"),
           "p50": res["latency_ms"]["p50"], "p99": res["latency_ms"]["p99"],
           "p999": res["latency_ms"].get("p999"),
           "max": res["latency_ms"].get("max"),
           "open_loop": res.get("open_loop"),
           "status": res["status"], "cpu_cores": cpu, "machine_cores": mach,
           # CPU time per answer: steadier than answers/s on a shared box
           "us_per_answer": {k: round(v * 1e6 / rate, 1) if rate else None
                             for k, v in cpu.items()},
           # nginx's user time alone: the module's and nginx's own code
           "nginx_user_us_per_answer":
               round((user1 - user0) / HZ / el * 1e6 / rate, 2)
               if rate else None}
    # Redis's commands per answer (all clients: nginx, the worker), and
    # the microseconds Redis says it spent executing them: counts the
    # machine's noise does not move, unlike its CPU from /proc
    answered = rate * a.seconds if rate else 0
    row["redis_per_answer"] = {
        k: round((rstats1.get(k, (0, 0))[0] - rstats0.get(k, (0, 0))[0])
                 / answered, 3) if answered else None
        for k in sorted(set(rstats1) | set(rstats0))
        if rstats1.get(k, (0, 0))[0] != rstats0.get(k, (0, 0))[0]}
    # tokens verified per answer (the workers' token caches missed them)
    row["token_checks_per_answer"] = round((tc1 - tc0) / answered, 3) \
        if answered and tc0 is not None and tc1 is not None else None
    row["redis_usec_per_answer"] = round(
        sum(v[1] for v in rstats1.values())
        - sum(v[1] for v in rstats0.values()), 1) / answered \
        if answered else None
    if a.persist:
        n = res["cells_confirmed"]
        d = {k: c1[k] - c0[k] for k in c0 if k != "lsn"}
        if a.waldump:
            # what the run's WAL is made of, by record type
            with open(os.path.join(a.out, tag + ".waldump.txt"), "w") as fh:
                subprocess.run([stacklib.PGBIN + "/pg_waldump", "-p",
                                os.path.join(s.pgdata, "pg_wal"),
                                "-s", c0["lsn"], "-e", c1["lsn"],
                                "--stats=record"], stdout=fh,
                               stderr=subprocess.STDOUT)
        lags = [x for x in lags if x is not None]
        row["persist"] = {
            "bookings": n,
            "batches": d["batches"],
            "rows_per_batch": round(n / d["batches"], 1)
            if d["batches"] else None,
            "batches_per_s": round(d["batches"] / (el + drain_s), 1),
            "commits_per_s": round(d["commits"] / (el + drain_s), 1),
            "wal_bytes_per_booking": round(d["wal"] / n) if n else None,
            "checkpoints": d["checkpoints"],
            "drain_after_run_s": round(drain_s, 2),
            "lag_ms_p50": quantile(lags, 0.5),
            "lag_ms_p99": quantile(lags, 0.99),
            "lag_ms_max": max(lags) if lags else None,
            "lag_ms_samples": lags,
            "us_per_booking": {
                k: round((drained[k] - before[k]) / HZ * 1e6 / n, 1)
                if n else None for k in drained},
            "fsync_per_s": {
                k: round(perf_count(os.path.join(
                    a.out, "%s.fsync-%s.csv" % (tag, k))) / a.seconds)
                for k in ("redis", "postgres")},
            # the mean time of one, and the share of the run spent in them
            "fsync_ms_avg": {}, "fsync_busy": {}}
        for k in ("redis", "postgres"):
            c, ms = trace_fsyncs(os.path.join(a.out, "%s.fsync-%s.trace"
                                              % (tag, k)))
            row["persist"]["fsync_ms_avg"][k] = round(ms / c, 3) if c \
                else None
            row["persist"]["fsync_busy"][k] = round(ms / 1000 / a.seconds,
                                                    3)
    # the time each program waited for a CPU (ready, not running), per
    # second of the run: the machine's contention as each of ours met it
    row["run_delay_ms_per_s"] = {
        k: round((delay1[k] - delay0[k]) / 1e6 / el, 1) for k in g}
    row["run_delay_ms_per_s"]["rush"] = round(client_delay / 1e6 / el, 1)
    if a.timeline:
        row["timeline"] = timeline(a, tag, g, res)
    if a.redis_latency:
        # Redis's own view: the events above latency-monitor-threshold
        # (command, fast-command, aof-fsync-always, aof-write...) and the
        # slow log's commands, over this run
        ev = s.redis.execute_command("LATENCY", "LATEST")
        row["redis_latency"] = {
            (e[0].decode() if isinstance(e[0], bytes) else e[0]):
            {"count_events_max_ms": e[3], "last_ms": e[2]} for e in ev}
        sl = s.redis.execute_command("SLOWLOG", "GET", "20")
        row["redis_slowlog"] = [
            {"us": e[2], "cmd": " ".join(
                (x.decode(errors="replace") if isinstance(x, bytes)
                 else str(x)) for x in e[3])[:120]} for e in sl]
    if stat:
        # counted over a.seconds from the client's start, as answers/s is
        row["nginx_syscalls_per_answer"] = syscalls_per_answer(
            os.path.join(a.out, tag + ".syscalls.csv"), rate * a.seconds)
    if cstat:
        row["rush_syscalls_per_answer"] = syscalls_per_answer(
            os.path.join(a.out, tag + ".rush-syscalls.csv"),
            rate * a.seconds)
    if perf:
        rep = os.path.join(a.out, tag + ".perf.txt")
        with open(rep, "w") as fh:
            subprocess.run(["perf", "report", "-i",
                            os.path.join(a.out, tag + ".perf.data"),
                            "--no-children", "--sort", "comm,dso,sym",
                            "--stdio", "-g", "none", "--percent-limit",
                            "0.3"], stdout=fh, stderr=subprocess.DEVNULL)
        with open(rep.replace(".txt", ".comm.txt"), "w") as fh:
            subprocess.run(["perf", "report", "-i",
                            os.path.join(a.out, tag + ".perf.data"),
                            "--no-children", "--sort", "comm", "--stdio",
                            "-g", "none"], stdout=fh,
                           stderr=subprocess.DEVNULL)
        row["perf_report"] = rep
    return row


def others_cores(r):
    """The CPU the machine's other programs took during run r (the
    other sessions' work on a shared machine), in cores."""
    m = r["machine_cores"]
    return round(m["user"] + m["system"] + m["irq"] + m["softirq"]
                 - sum(r["cpu_cores"].values()), 2)


def open_tail(mode, mi, wi, sel, med):
    """The open loop's tail of a variant with --timeline: medians over its
    runs, and over its quiet runs alone (the other programs of the
    machine under half a core: the tail of a shared machine is mostly
    theirs)."""
    def line(what, runs):
        if not runs:
            say("median %-8s m%d w%d %s: no run" % (mode, mi, wi, what))
            return
        tl = [r["timeline"] for r in runs]
        say("median %-8s m%d w%d %s (%d runs, others %s cores): p50 %s "
            "p99 %s p99.9 %s ms; Redis fdatasyncs > 5 ms %s, their p99 %s "
            "ms; beside our PostgreSQL's fsync %s of them, mean %s ms "
            "(alone %s ms); PostgreSQL fsync p99 %s ms; tail overlapping "
            "a Redis fdatasync >= 2 ms %s (all requests %s), a PostgreSQL "
            "fsync >= 2 ms %s (%s); tail sent late %s; run delay nginx %s "
            "redis %s ms/s"
            % (mode, mi, wi, what, len(runs), [others_cores(r) for r in runs],
               med(runs, lambda r: r["p50"]), med(runs, lambda r: r["p99"]),
               med(runs, lambda r: r["p999"]),
               [t["redis_fsync"]["over_5ms"] for t in tl],
               med(tl, lambda t: t["redis_fsync"]["ms_p99"]),
               med(tl, lambda t: t["redis_fsync_by_company"]
                   ["with_pg_fsync"]["n"]),
               med(tl, lambda t: t["redis_fsync_by_company"]
                   ["with_pg_fsync"]["ms_mean"]),
               med(tl, lambda t: t["redis_fsync_by_company"]["alone"]
                   ["ms_mean"]),
               med(tl, lambda t: t["pg_fsync"]["ms_p99"]),
               med(tl, lambda t: t["tail_vs_all_overlapping"]
                   ["redis_fsync>=2ms"][0]),
               med(tl, lambda t: t["tail_vs_all_overlapping"]
                   ["redis_fsync>=2ms"][1]),
               med(tl, lambda t: t["tail_vs_all_overlapping"]
                   ["pg_fsync>=2ms"][0]),
               med(tl, lambda t: t["tail_vs_all_overlapping"]
                   ["pg_fsync>=2ms"][1]),
               med(tl, lambda t: t["tail_sent_late_share"]),
               med(runs, lambda r: r["run_delay_ms_per_s"]["nginx"]),
               med(runs, lambda r: r["run_delay_ms_per_s"]["redis"])))
    line("tail", sel)
    line("tail, quiet runs", [r for r in sel if others_cores(r) < 0.5])


def restart_nginx(s, module):
    """module: a .so, or "<.so>@<configuration template>"."""
    p = s.procs.pop("nginx", None)
    if p is not None:
        s._end(p, signal.SIGQUIT, 10)
    module, _, template = module.partition("@")
    s.nginx_template = os.path.abspath(template) if template \
        else "loadtest.conf"
    s.module = os.path.abspath(module)
    shutil.rmtree(s._path("nginx"), ignore_errors=True)
    s._start_nginx()
    time.sleep(1.5)     # the catalogue refresh


REDIS_SAVED = {}
CLIENT = {"nice": None}


def restart_worker(s, base_conf, wset, wi):
    """The worker restarted with the settings file plus wset's
    KEY=VALUE,... (the settings file as written for "")."""
    p = s.procs.pop("worker", None)
    if p is not None:
        s._end(p, signal.SIGTERM, 10)
    conf = base_conf
    s.worker_bin = None
    nice = 0
    redis_set = {}
    ionice = "2"
    CLIENT["nice"] = None
    # Redis's settings of the previous variant back to the stack's
    for k, v in REDIS_SAVED.items():
        s.redis.config_set(k, v)
    if wset:
        conf = base_conf + ".w%d" % wi
        with open(base_conf) as fh, open(conf, "w") as out:
            out.write(fh.read())
            for kv in wset.split(","):
                k, v = kv.split("=", 1)
                if k.strip() == "bin":      # another build of the worker
                    s.worker_bin = os.path.abspath(v.strip())
                    continue
                if k.strip() == "nice":
                    # not a setting: the worker's and PostgreSQL's nice
                    # level (the persistence behind the bookings)
                    nice = int(v)
                    continue
                if k.strip() == "ionice":
                    # not a setting: the worker's and PostgreSQL's I/O
                    # class (ionice -c: 2 best effort, 3 idle)
                    ionice = v.strip()
                    continue
                if k.strip() == "client_nice":
                    # not a setting: rush.c's nice level for this variant
                    CLIENT["nice"] = int(v)
                    continue
                if k.strip().startswith("redis."):
                    # not a setting: CONFIG SET of Redis for this variant
                    redis_set[k.strip()[6:]] = v.strip()
                    continue
                out.write("%s = %s\n" % (k.strip(), v.strip()))
    for k, v in redis_set.items():
        if k not in REDIS_SAVED:
            REDIS_SAVED[k] = s.redis.config_get(k)[k]
        s.redis.config_set(k, v)
    s.worker_conf = conf
    old = set(pg_backends(s))
    s._start_worker()
    # its PostgreSQL backend counted from the next run on: connected
    t = time.monotonic()
    while not set(pg_backends(s)) - old and time.monotonic() - t < 15:
        time.sleep(0.05)
    for pid in groups(s)["postgres"] + [s.procs["worker"].pid]:
        try:
            os.setpriority(os.PRIO_PROCESS, pid, nice)
        except OSError:
            pass
        subprocess.run(["ionice", "-c", ionice, "-p", str(pid)],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def pg_backends(s):
    """The pids of the other client backends."""
    return [r[0] for r in s.sql(
        "select pid from pg_stat_activity where backend_type ="
        " 'client backend' and pid <> pg_backend_pid()")]


def load_bulk(s, a, town):
    """a.bulk more sessions (the same town, gen_town.py --bulk-sessions),
    loaded; back once every nginx worker has the new catalogue and Redis
    has settled."""
    import benchlib

    def reloads():
        try:
            r = s.http("GET", "/metrics", timeout=10)
        except OSError:
            return 0
        for line in r.body.decode(errors="replace").splitlines():
            if line.startswith("guichet_catalogue_reloads_total "):
                return int(line.split()[1])
        return 0

    n0 = reloads()
    subprocess.run([sys.executable, os.path.join(HERE, "gen_town.py"),
                    "--families", str(a.families), "--children",
                    str(a.families * 3 // 2), "--activities",
                    str(a.activities), "--days", str(a.days), "--out", town,
                    "--bulk-sessions", str(a.bulk)],
                   check=True, stdout=subprocess.DEVNULL)
    s.redis.config_set("maxmemory", "4gb")
    t = time.monotonic()
    s.ctl_run("load-town", os.path.join(town, "town.json"))
    while (reloads() < n0 + (os.cpu_count() or 1)
           and time.monotonic() - t < 300):
        time.sleep(0.2)
    m = benchlib.redis_settle(s.redis)
    say("bulk: %d sessions loaded in %.1f s; Redis %d keys, used_memory "
        "%d" % (a.bulk, time.monotonic() - t, m["keys"], m["used_memory"]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--module", action="append",
                    help="module .so, or .so@template.conf (repeat for "
                         "A/B); default build/")
    ap.add_argument("--modes", default="ceiling,single,refusal")
    ap.add_argument("--conns", type=int, default=256)
    ap.add_argument("--seconds", type=float, default=4)
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--perf", action="store_true")
    ap.add_argument("--syscalls", action="store_true",
                    help="count the nginx workers' system calls per answer "
                         "(perf stat)")
    ap.add_argument("--redis", choices=("unix", "tcp"), default="tcp",
                    help="how nginx and the worker reach Redis")
    ap.add_argument("--call-graph", default="fp",
                    help="perf's --call-graph: fp (default) or dwarf, "
                         "whose stacks cross the libraries built without "
                         "frame pointers (use a low --freq)")
    ap.add_argument("--freq", type=int, default=999)
    ap.add_argument("--families", type=int, default=5000)
    ap.add_argument("--activities", type=int, default=10)
    ap.add_argument("--days", type=int, default=10)
    ap.add_argument("--template", default="loadtest.conf")
    ap.add_argument("--bulk", type=int, default=0,
                    help="sessions loaded after the start (gen_town.py "
                    "--bulk-sessions, load-town), before the runs: the "
                    "cost growth of issue 20 (10^3 vs 10^6 sessions)")
    ap.add_argument("--worker-set", action="append",
                    help="the worker's settings of a variant, "
                         "KEY=VALUE[,KEY=VALUE...] (repeat for A/B; \"\": "
                         "the stack's settings file as written)")
    ap.add_argument("--persist", action="store_true",
                    help="the persistence's cost and interference: "
                         "batches, commits, WAL, lag, CPU per booking "
                         "until drained, fsyncs a second of Redis and "
                         "PostgreSQL")
    ap.add_argument("--checkpoint", action="store_true",
                    help="a CHECKPOINT before each run: every page's first "
                         "change in the run is written whole to the WAL "
                         "(full_page_writes), as after each checkpoint of "
                         "a long rush")
    ap.add_argument("--waldump", action="store_true",
                    help="with --persist: pg_waldump --stats=record of "
                         "each run's WAL (<tag>.waldump.txt)")
    ap.add_argument("--pgss", action="store_true",
                    help="pg_stat_statements: PostgreSQL's top statements")
    ap.add_argument("--pg-set", action="append", default=[],
                    help="NAME=VALUE, a PostgreSQL setting (repeat)")
    ap.add_argument("--redis-latency", action="store_true",
                    help="Redis's latency monitor (threshold 1 ms) and "
                         "slow log (1 ms) over each run: LATENCY LATEST "
                         "and SLOWLOG GET in profile.json")
    ap.add_argument("--timeline", action="store_true",
                    help="open loop: each request's interval against "
                         "Redis's fdatasyncs and forks and PostgreSQL's "
                         "fsyncs (perf record -k mono, rush.c --log): the "
                         "share of the slow answers each overlapped")
    ap.add_argument("--client-cpu", default=None,
                    help="pin rush.c to these CPUs (taskset -c)")
    ap.add_argument("--client-nice", type=int, default=0,
                    help="rush.c's nice level (negative: ahead of the "
                         "stack; needs root)")
    ap.add_argument("--out", default=os.path.join(HERE, "out", "profile"))
    a = ap.parse_args()
    a.stop_worker = False
    a.out = os.path.abspath(a.out)
    shutil.rmtree(a.out, ignore_errors=True)
    os.makedirs(a.out)
    modules = a.module or [os.path.join(ROOT, "build",
                                        "ngx_http_guichet_module.so")]
    rush_bin = os.path.join(a.out, "rush")
    subprocess.run(["cc", "-O2", "-Wall", "-Wextra", "-Werror", "-o",
                    rush_bin, os.path.join(HERE, "rush.c")], check=True)
    town = os.path.join(a.out, "town")
    subprocess.run([sys.executable, os.path.join(HERE, "gen_town.py"),
                    "--families", str(a.families), "--children",
                    str(a.families * 3 // 2), "--activities",
                    str(a.activities), "--days", str(a.days), "--out", town],
                   check=True,
                   stdout=subprocess.DEVNULL)
    pgs = {}
    if a.pgss:
        pgs = {"shared_preload_libraries": "pg_stat_statements",
               "pg_stat_statements.track": "all"}
    for kv in a.pg_set:
        k, v = kv.split("=", 1)
        pgs[k] = v
    s = ProfStack(town=os.path.join(town, "town.json"), name="profile",
                  module=modules[0].partition("@")[0],
                  nginx_template=a.template,
                  pg_settings=pgs)
    s.redis_unix = a.redis == "unix"
    s.start()
    if a.redis_latency:
        s.redis.config_set("latency-monitor-threshold", 1)
        s.redis.config_set("slowlog-log-slower-than", 1000)
    if a.bulk:
        load_bulk(s, a, town)
    if a.pgss:
        s.sql("create extension pg_stat_statements")
    rows = []
    try:
        tokens = os.path.join(a.out, "tokens")
        with open(tokens, "w") as fh:
            fh.write(s.ctl_run("tokens"))
        fid, cids = open(os.path.join(town, "families.tsv")).readline() \
            .split(" ", 1)
        first = open(os.path.join(town, "single.sessions")).readline().strip()
        with open(os.path.join(a.out, "baseline.body"), "w") as fh:
            fh.write(json.dumps({"items": [{"child_id": cids.split()[0],
                                            "session_id": first}]},
                                separators=(",", ":")))
        offsets = {"single": 0, "refusal": 0}
        # the sold-out session: its one place taken first
        run(s, argparse.Namespace(**dict(vars(a), conns=1, seconds=0.5,
                                         perf=False)),
            "refusal", rush_bin, tokens, town, offsets, "warm")
        wsets = a.worker_set or [None]
        base_conf = s.worker_conf
        wcur = None
        for rep in range(a.reps):
            for mi, mod in enumerate(modules):
                if len(modules) > 1 or rep == 0:
                    restart_nginx(s, mod)
                for wi, wset in enumerate(wsets):
                    if wset is not None and wset != "stopped" \
                            and wset != wcur:
                        restart_worker(s, base_conf, wset, wi)
                        wcur = wset
                        # a few bookings persisted first: the run meets a
                        # warm worker and backend, as a rush meets a
                        # worker that has been running (its first batch
                        # loads PostgreSQL's caches of the tables)
                        run(s, argparse.Namespace(**dict(
                            vars(a), conns=4, seconds=0.5, perf=False,
                            syscalls=False, persist=False,
                            stop_worker=False)), "single", rush_bin,
                            tokens, town, offsets, "warm-w%d-r%d" % (wi, rep))
                    a.stop_worker = wset == "stopped"
                    for mode in a.modes.split(","):
                        tag = "%s-m%d-w%d-r%d" % (mode, mi, wi, rep)
                        # the previous run's persistence is not this one's
                        s.wait_worker_drained(120)
                        if a.checkpoint:
                            s.sql("checkpoint")
                        row = run(s, a, mode, rush_bin, tokens, town,
                                  offsets, tag)
                        row["module"] = mod
                        row["worker_set"] = wset
                        rows.append(row)
                        say("%-22s %8.0f/s p50 %5.1f p99 %6.1f ms  cpu %s  "
                            "us/answer %s  machine %s" % (
                                tag, row["rate"], row["p50"], row["p99"],
                                row["cpu_cores"], row["us_per_answer"],
                                row["machine_cores"]))
                        if row["open_loop"]:
                            ol = row["open_loop"]
                            say("%-22s open loop %s/s: p50 %.2f p99 %.2f "
                                "p99.9 %.2f max %.1f ms, sent late (>1 ms) "
                                "%d of %d, lateness p99 %.2f max %.1f ms" % (
                                    tag, ol["rate_per_s"], row["p50"],
                                    row["p99"], row["p999"], row["max"],
                                    ol["sent_late_1ms"], ol["due"],
                                    ol["send_lateness_ms"]["p99"],
                                    ol["send_lateness_ms"]["max"]))
                        say("%-22s run delay ms/s %s" % (
                            tag, row["run_delay_ms_per_s"]))
                        if row.get("timeline"):
                            say("%-22s timeline %s" % (tag, row["timeline"]))
                        if row.get("redis_latency") is not None:
                            say("%-22s redis latency %s slowlog %s" % (
                                tag, row["redis_latency"],
                                row["redis_slowlog"][:5]))
                        if "nginx_syscalls_per_answer" in row:
                            say("%-22s nginx syscalls/answer %s" % (
                                tag, row["nginx_syscalls_per_answer"]))
                        if "rush_syscalls_per_answer" in row:
                            say("%-22s rush syscalls/answer %s" % (
                                tag, row["rush_syscalls_per_answer"]))
                        say("%-22s redis commands/answer %s, %.2f usec"
                            % (tag, row["redis_per_answer"],
                               row["redis_usec_per_answer"] or 0))
                        say("%-22s token checks/answer %s"
                            % (tag, row["token_checks_per_answer"]))
                        if "persist" in row:
                            say("%-22s persist %s" % (tag, {
                                k: v for k, v in row["persist"].items()
                                if k != "lag_ms_samples"}))
        s.wait_worker_drained(120)
        with open(os.path.join(a.out, "redis-info.txt"), "w") as fh:
            for sec in ("commandstats", "persistence", "stats", "cpu"):
                for k, v in s.redis.info(sec).items():
                    fh.write("%s %s\n" % (k, v))
        if a.pgss:
            top = s.sql("select round(total_exec_time), calls,"
                        " round((total_exec_time / calls)::numeric, 2),"
                        " left(regexp_replace(query, '\\s+', ' ', 'g'),"
                        " 160) from pg_stat_statements"
                        " order by total_exec_time desc limit 15")
            with open(os.path.join(a.out, "pgss.txt"), "w") as fh:
                for t in top:
                    fh.write("%8s ms %7s calls %8s ms/call  %s\n" % t)
            say("PostgreSQL's top statements: " +
                os.path.join(a.out, "pgss.txt"))
    finally:
        with open(os.path.join(a.out, "profile.json"), "w") as fh:
            json.dump(rows, fh, indent=1)
        s.stop()
    # medians per module and mode
    import statistics

    def medians(sel, field):
        """{key: median over the runs of sel} of a per-answer dict field"""
        out = {}
        for k in sel[0][field]:
            v = [r[field][k] for r in sel if r[field][k] is not None]
            out[k] = round(statistics.median(v), 2) if v else None
        return out

    def med(sel, get):
        v = [get(r) for r in sel]
        v = [x for x in v if x is not None]
        return round(statistics.median(v), 2) if v else None

    for mi, mod in enumerate(modules):
        for wi, wset in enumerate(a.worker_set or [None]):
            for mode in a.modes.split(","):
                sel = [r for r in rows if r["module"] == mod
                       and r["worker_set"] == wset and r["mode"] == mode]
                v = [r["rate"] for r in sel]
                if not v:
                    continue
                say("median %-8s m%d w%d %8.0f/s  (%s)  us/answer %s  "
                    "nginx user %s  %s%s"
                    % (mode, mi, wi, statistics.median(v),
                       ", ".join("%.0f" % x for x in v),
                       medians(sel, "us_per_answer"),
                       med(sel, lambda r: r["nginx_user_us_per_answer"]),
                       mod,
                       "" if wset is None else "  worker: " + wset))
                if sel[0].get("open_loop") and sel[0].get("timeline"):
                    open_tail(mode, mi, wi, sel, med)
                if sel[0].get("open_loop"):
                    say("median %-8s m%d w%d open loop: p50 %s p99 %s "
                        "p99.9 %s ms (p99s %s, p99.9s %s), sent late %s"
                        % (mode, mi, wi, med(sel, lambda r: r["p50"]),
                           med(sel, lambda r: r["p99"]),
                           med(sel, lambda r: r["p999"]),
                           [r["p99"] for r in sel], [r["p999"] for r in sel],
                           [r["open_loop"]["sent_late_1ms"] for r in sel]))
                if "nginx_syscalls_per_answer" in sel[0]:
                    say("median %-8s m%d w%d nginx syscalls/answer %s" % (
                        mode, mi, wi,
                        medians(sel, "nginx_syscalls_per_answer")))
                if "rush_syscalls_per_answer" in sel[0]:
                    say("median %-8s m%d w%d rush syscalls/answer %s" % (
                        mode, mi, wi,
                        medians(sel, "rush_syscalls_per_answer")))
                say("median %-8s m%d w%d redis commands/answer %s, "
                    "%s usec (INFO commandstats)" % (
                        mode, mi, wi,
                        {k: med(sel, lambda r, k=k:
                                r["redis_per_answer"].get(k, 0))
                         for k in sel[0]["redis_per_answer"]},
                        med(sel, lambda r: r["redis_usec_per_answer"])))
                if "persist" in sel[0]:
                    p = {k: med(sel, lambda r, k=k: r["persist"][k])
                         for k in sel[0]["persist"]
                         if not isinstance(sel[0]["persist"][k],
                                           (dict, list))}
                    for k in ("us_per_booking", "fsync_per_s",
                              "fsync_ms_avg", "fsync_busy"):
                        for j in sel[0]["persist"][k]:
                            p[k + "." + j] = med(
                                sel, lambda r, k=k, j=j: r["persist"][k][j])
                    say("median %-8s m%d w%d persist %s" % (mode, mi, wi, p))

if __name__ == "__main__":
    main()
