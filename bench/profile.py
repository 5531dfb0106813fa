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
unlike answers/s.

    bench/profile.py --modes single,refusal --conns 256 --seconds 5 --perf
    bench/profile.py --module build/a.so --module build/b.so --reps 3

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

HZ = os.sysconf("SC_CLK_TCK")


class ProfStack(stacklib.Stack):
    nginx_template = "loadtest.conf"
    pg_settings = dict(stacklib.Stack.pg_settings, fsync="on",
                       synchronous_commit="on", full_page_writes="on",
                       shared_buffers="256MB")


def say(*a):
    print("[%s]" % time.strftime("%H:%M:%S"), *a, flush=True)


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


def run(s, a, mode, rush_bin, tokens, town, offsets, tag):
    fam = os.path.join(town, "families.tsv")
    args = []
    if mode == "ceiling":
        args = ["--fixed", os.path.join(a.out, "baseline.body"),
                "--path", "/baseline"]
    elif mode == "single":
        args = ["--grid", fam, os.path.join(town, "single.sessions"),
                "--offset", str(offsets["single"])]
    elif mode == "refusal":
        args = ["--grid", fam, os.path.join(town, "full.session"),
                "--offset", str(offsets["refusal"])]
    summ = os.path.join(a.out, tag + ".summary.json")
    argv = [rush_bin, "--port", str(s.port), "--tokens", tokens,
            "--conns", str(a.conns), "--duration", str(a.seconds),
            "--summary", summ, "--quiet", "--prefix", tag.replace(".", "_")]
    argv += args
    g = groups(s)
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
    if a.perf:
        perf = subprocess.Popen(
            ["perf", "record", "-a", "--call-graph", a.call_graph,
             "-F", str(a.freq), "-o",
             os.path.join(a.out, tag + ".perf.data"), "--",
             "sleep", str(a.seconds)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = subprocess.Popen(argv, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT)
    client_ticks = 0
    while client.poll() is None:
        client_ticks = max(client_ticks, proc_ticks(client.pid))
        time.sleep(0.05)
    out = client.stdout.read().decode()
    if perf:
        perf.wait()
    if stat:
        stat.wait()
    el = time.monotonic() - t0
    m1 = machine_ticks()
    after = {k: sum(proc_ticks(p) for p in v) for k, v in g.items()}
    user1 = sum(proc_ticks(p, True) for p in g["nginx"])
    if client.returncode != 0:
        raise RuntimeError("rush failed: " + out[-2000:])
    with open(summ) as fh:
        res = json.load(fh)
    if mode in offsets:
        offsets[mode] += res["requests"]
    cpu = {k: round((after[k] - before[k]) / HZ / el, 3) for k in g}
    cpu["rush"] = round(client_ticks / HZ / el, 3)
    mach = {k: round((m1[k] - m0[k]) / HZ / el, 3) for k in m0}
    rate = res["cells_answered_per_s"] if mode != "ceiling" \
        else res["answers_per_s"]
    row = {"tag": tag, "mode": mode, "rate": rate,
           "confirmed_per_s": res.get("cells_confirmed_per_s"),
           "p50": res["latency_ms"]["p50"], "p99": res["latency_ms"]["p99"],
           "status": res["status"], "cpu_cores": cpu, "machine_cores": mach,
           # CPU time per answer: steadier than answers/s on a shared box
           "us_per_answer": {k: round(v * 1e6 / rate, 1) if rate else None
                             for k, v in cpu.items()},
           # nginx's user time alone: the module's and nginx's own code
           "nginx_user_us_per_answer":
               round((user1 - user0) / HZ / el * 1e6 / rate, 2)
               if rate else None}
    if stat:
        # counted over a.seconds from the client's start, as answers/s is
        row["nginx_syscalls_per_answer"] = syscalls_per_answer(
            os.path.join(a.out, tag + ".syscalls.csv"), rate * a.seconds)
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
    ap.add_argument("--pgss", action="store_true",
                    help="pg_stat_statements: PostgreSQL's top statements")
    ap.add_argument("--pg-set", action="append", default=[],
                    help="NAME=VALUE, a PostgreSQL setting (repeat)")
    ap.add_argument("--out", default=os.path.join(HERE, "out", "profile"))
    a = ap.parse_args()
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
        for rep in range(a.reps):
            for mi, mod in enumerate(modules):
                if len(modules) > 1 or rep == 0:
                    restart_nginx(s, mod)
                for mode in a.modes.split(","):
                    tag = "%s-m%d-r%d" % (mode, mi, rep)
                    # the previous run's persistence is not this one's
                    s.wait_worker_drained(120)
                    row = run(s, a, mode, rush_bin, tokens, town, offsets,
                              tag)
                    row["module"] = mod
                    rows.append(row)
                    say("%-22s %8.0f/s p50 %5.1f p99 %6.1f ms  cpu %s  "
                        "us/answer %s  machine %s" % (
                            tag, row["rate"], row["p50"], row["p99"],
                            row["cpu_cores"], row["us_per_answer"],
                            row["machine_cores"]))
                    if "nginx_syscalls_per_answer" in row:
                        say("%-22s nginx syscalls/answer %s" % (
                            tag, row["nginx_syscalls_per_answer"]))
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
        return {k: round(statistics.median(r[field][k] for r in sel), 2)
                for k in sel[0][field]}

    for mi, mod in enumerate(modules):
        for mode in a.modes.split(","):
            sel = [r for r in rows
                   if r["module"] == mod and r["mode"] == mode]
            v = [r["rate"] for r in sel]
            if v:
                say("median %-8s m%d %8.0f/s  (%s)  us/answer %s  "
                    "nginx user %.2f  %s" % (
                        mode, mi, statistics.median(v),
                        ", ".join("%.0f" % x for x in v),
                        medians(sel, "us_per_answer"),
                        statistics.median(r["nginx_user_us_per_answer"]
                                          for r in sel), mod))
                if "nginx_syscalls_per_answer" in sel[0]:
                    say("median %-8s m%d nginx syscalls/answer %s" % (
                        mode, mi, medians(sel, "nginx_syscalls_per_answer")))


if __name__ == "__main__":
    main()
