#!/usr/bin/python3
"""
bench/worker_drain.py -- the worker alone: how fast guichet-worker persists
a full stream, and what each persisted booking costs PostgreSQL.

  1. the benchmark's stack (PostgreSQL with fsync and synchronous_commit
     on, Redis with appendfsync always, pg_stat_statements loaded), a small
     town;
  2. the worker stopped, N real single-cell bookings through nginx
     (build/rush --grid): the stream {main}:stream holds N entries nobody
     has read;
  3. for each repetition, for each --batch size (interleaved: A B C A B C
     ...): the booking tables emptied and checkpointed, stream_position
     put back to 0-0 (and an older worker's consumer group destroyed), the
     worker started with that batch_size (stream_keep_ms = 0: nothing
     trimmed), timed until its position is the stream's last entry (or
     an older worker's group has acknowledged it); rows/s, and CPU
     microseconds per persisted row of PostgreSQL (every process of the cluster) and of the
     worker, from /proc; pg_stat_statements's time per row of each
     statement (--track-all: the foreign-key checks show as their own
     statements, at a cost: the tracking of every nested query shows in
     the CPU per row).
  4. --ab APPLY UNDO: each run once as the schema is (A), once after the
     SQL file APPLY (B), UNDO putting A back, interleaved A B A B: a
     schema change measured on the same stack and the same entries.
     --ab-worker BINARY: B is the same schema drained by another build of
     guichet-worker (a change of the worker's statements).

Every drain replays the same entries, so runs compare; the machine's other
users do not (its busy share outside the stack is printed with each run).
Prints a table, writes --out (default bench/out/worker-drain.json).  A
benchmark, never a test: nothing is asserted.
"""

import argparse
import datetime as dt
import json
import os
import signal
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))

import stack as stacklib      # noqa: E402
from benchlib import say, proc_cpu  # noqa: E402


class DrainStack(stacklib.Stack):
    nginx_template = "loadtest.conf"
    pg_settings = dict(stacklib.Stack.pg_settings, fsync="on",
                       synchronous_commit="on", full_page_writes="on",
                       shared_buffers="256MB",
                       shared_preload_libraries="pg_stat_statements")
    pg_settings["pg_stat_statements.track"] = os.environ.get(
        "GUICHET_DRAIN_TRACK", "top")


def children(pid):
    out = []
    try:
        for t in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/children" % (pid, t)) as fh:
                out += [int(x) for x in fh.read().split()]
    except OSError:
        pass
    return out


def machine_busy():
    with open("/proc/stat") as fh:
        f = [int(x) for x in fh.readline().split()[1:9]]
    return (sum(f) - f[3] - f[4]) / os.sysconf("SC_CLK_TCK")


class Drain:

    def __init__(self, a):
        self.a = a
        self.s = None
        self.nrun = 0

    def out_path(self, name):
        return os.path.join(os.path.dirname(os.path.abspath(self.a.out)),
                            "worker-drain-" + name)

    def pg_cpu(self):
        with open(os.path.join(self.s.pgdata, "postmaster.pid")) as fh:
            pm = int(fh.readline())
        # backends that ended during the run are lost: the worker keeps
        # one connection, so the run's work is in a live process
        return sum(proc_cpu(p) for p in [pm] + children(pm))

    def stop_worker(self):
        w = self.s.procs.pop("worker", None)
        if w is not None:
            w.send_signal(signal.SIGTERM)
            w.wait(30)

    def start_worker(self, batch, binary=None):
        conf = self.s.worker_conf + ".drain"
        with open(self.s.worker_conf) as fh:
            text = fh.read()
        with open(conf, "w") as fh:
            fh.write(text + "batch_size = %d\nstream_keep_ms = 0\n" % batch)
        self.s.procs["worker"] = subprocess.Popen(
            [binary or os.path.join(ROOT, "build", "guichet-worker"), "-c",
             conf],
            cwd=ROOT, stdout=open(os.path.join(self.s.dir, "worker-drain.log"),
                                  "a"), stderr=subprocess.STDOUT)
        return self.s.procs["worker"].pid

    def drained(self, last):
        if self.s.sql("select last_id from stream_position")[0][0] == last:
            return True
        # an older worker (--ab-worker) reads with the consumer group
        for g in self.s.redis.xinfo_groups("{main}:stream"):
            if g["name"] == "persist":
                return g["last-delivered-id"] == last and g["pending"] == 0
        return False

    def reset(self):
        self.s.sql("truncate booking, demande, outbox, voided_booking, "
                   "booking_cancellation, booking_justification cascade")
        self.s.sql("checkpoint")
        self.s.sql("select pg_stat_statements_reset()")
        self.s.sql("update stream_position set last_id = '0-0'")
        try:
            self.s.redis.xgroup_destroy("{main}:stream", "persist")
        except Exception:       # noqa: BLE001 -- no group yet
            pass

    def one(self, batch, variant=None, binary=None):
        self.reset()
        if variant is not None:
            self.s.sql(open(variant).read())
        last = self.s.redis.xinfo_stream("{main}:stream")["last-generated-id"]
        lsn0 = self.s.sql("select pg_current_wal_insert_lsn()")[0][0]
        tag = "%s-%d-%d" % (
            ("B" if variant is not None or binary is not None else "A")
            if self.a.ab or self.a.ab_worker else "x", batch, self.nrun)
        self.nrun += 1
        perf = None
        if self.a.perf:
            perf = subprocess.Popen(
                ["perf", "record", "-a", "-g", "-q", "-o",
                 self.out_path(tag + ".perf.data")],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(0.5)
        pg0, busy0, t0 = self.pg_cpu(), machine_busy(), time.monotonic()
        pid = self.start_worker(batch, binary)
        while not self.drained(last):
            if time.monotonic() - t0 > 600:
                raise RuntimeError("the worker did not drain in 600 s")
            time.sleep(0.02)
        t1 = time.monotonic()
        pg1, w1, busy1 = self.pg_cpu(), proc_cpu(pid), machine_busy()
        if perf is not None:
            perf.send_signal(signal.SIGINT)
            perf.wait(60)
            # this cluster's processes and this worker, not the machine's
            # other PostgreSQL clusters
            with open(os.path.join(self.s.pgdata, "postmaster.pid")) as fh:
                pm = int(fh.readline())
            pids = ",".join(str(x) for x in [pm] + children(pm) + [pid])
        self.stop_worker()
        lsn1 = self.s.sql("select pg_current_wal_insert_lsn()")[0][0]
        wal = int(self.s.sql("select pg_wal_lsn_diff(%s, %s)",
                             (lsn1, lsn0))[0][0])
        rows = int(self.s.sql("select count(*) from booking")[0][0])
        if self.a.waldump:
            self.s.sql("select pg_switch_wal()")
            with open(self.out_path(tag + ".waldump"), "w") as fh:
                subprocess.run([os.path.join(stacklib.PGBIN, "pg_waldump"),
                                "--stats=record", "-p",
                                os.path.join(self.s.pgdata, "pg_wal"), "-s",
                                lsn0, "-e", lsn1], stdout=fh,
                               stderr=subprocess.STDOUT)
        if perf is not None:
            with open(self.out_path(tag + ".perf.txt"), "w") as fh:
                fh.write("# pids %s (the worker: %d)\n" % (pids, pid))
                fh.flush()
                subprocess.run(["perf", "report", "-i",
                                self.out_path(tag + ".perf.data"),
                                "--no-children", "--pid", pids,
                                "--percentage", "relative", "--sort",
                                "pid,sym", "-g", "none",
                                "--percent-limit", "0.3", "--stdio"],
                               stdout=fh, stderr=subprocess.DEVNULL)
        if variant is not None:
            self.s.sql("truncate booking, demande, outbox cascade")
            self.s.sql(open(self.a.ab[1]).read())
        el = t1 - t0
        stmts = self.s.sql(
            "select query, calls, total_exec_time from pg_stat_statements "
            "where query not like '%%pg_stat_statements%%' "
            "order by total_exec_time desc limit 12")
        other = max(0.0, (busy1 - busy0) - (pg1 - pg0) - w1)
        return {"batch_size": batch, "rows": rows, "seconds": round(el, 3),
                "rows_per_s": round(rows / el, 1),
                "postgres_us_per_row": round((pg1 - pg0) * 1e6 / rows, 1),
                "worker_us_per_row": round(w1 * 1e6 / rows, 1),
                "wal_bytes_per_row": round(wal / rows, 1),
                "other_cores": round(other / el, 2),
                "load1": os.getloadavg()[0],
                "statements_us_per_row": [
                    {"query": " ".join(q.split())[:110], "calls": c,
                     "us_per_row": round(t * 1e3 / rows, 2)}
                    for q, c, t in stmts]}

    def run(self):
        a = self.a
        town = os.path.join(a.workdir, "town")
        far = dt.datetime.now().astimezone() + dt.timedelta(days=1)
        subprocess.run([sys.executable, os.path.join(HERE, "gen_town.py"),
                        "--families", str(a.families), "--children",
                        str(a.families * 3 // 2), "--activities", "10",
                        "--days", "10", "--seed", "7", "--opens-at",
                        far.isoformat(), "--out", town, "--base-date",
                        dt.date.today().isoformat()], check=True,
                       stdout=subprocess.DEVNULL)
        self.s = DrainStack(town=os.path.join(town, "town.json"),
                            name="drain")
        self.s.start()
        try:
            self.s.sql("create extension if not exists pg_stat_statements")
            self.stop_worker()
            tokens = os.path.join(a.workdir, "tokens")
            with open(tokens, "w") as fh:
                fh.write(self.s.ctl_run("tokens"))
            rush = os.path.join(ROOT, "build", "rush")
            say("filling the stream: %d single-cell bookings, worker "
                "stopped" % a.entries)
            r = subprocess.run([rush, "--port", str(self.s.port), "--tokens",
                                tokens, "--conns", "128", "--requests",
                                str(a.entries), "--quiet", "--prefix", "drain",
                                "--grid", os.path.join(town, "families.tsv"),
                                os.path.join(town, "single.sessions")],
                               stdout=subprocess.PIPE, check=True)
            say(r.stdout.decode().strip()[:300])
            n = self.s.redis.xlen("{main}:stream")
            say("stream: %d entries" % n)
            runs = []
            variants = ["A", "B"] if a.ab or a.ab_worker else ["-"]
            for rep in range(a.reps):
                for b, v in [(b, v) for b in a.batch for v in variants]:
                    x = self.one(b, a.ab[0] if v == "B" and a.ab else None,
                                 a.ab_worker if v == "B" else None)
                    x["rep"] = rep
                    x["variant"] = v
                    runs.append(x)
                    say("%s batch %4d: %6d rows in %6.2f s = %8.0f rows/s; "
                        "PostgreSQL %5.1f us/row, worker %4.1f us/row, "
                        "WAL %4.0f B/row; others %.2f cores, load %.1f" % (
                            v, b, x["rows"], x["seconds"], x["rows_per_s"],
                            x["postgres_us_per_row"],
                            x["worker_us_per_row"], x["wal_bytes_per_row"],
                            x["other_cores"],
                            x["load1"]))
            return {"entries": n, "runs": runs, "summary": summary(runs),
                    "started": dt.datetime.now().astimezone().isoformat(),
                    "commit": subprocess.run(
                        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                        stdout=subprocess.PIPE).stdout.decode().strip()}
        finally:
            self.s.stop()


def summary(runs):
    out = {}
    for b, v in sorted({(r["batch_size"], r["variant"]) for r in runs}):
        rs = [r for r in runs if r["batch_size"] == b and r["variant"] == v]
        k0 = str(b) if v == "-" else "%s %d" % (v, b)
        out[k0] = {k: statistics.median(r[k] for r in rs) for k in (
            "rows_per_s", "postgres_us_per_row", "worker_us_per_row",
            "wal_bytes_per_row")}
        out[k0]["spread_rows_per_s"] = [r["rows_per_s"] for r in rs]
        out[k0]["spread_postgres_us_per_row"] = [
            r["postgres_us_per_row"] for r in rs]
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--entries", type=int, default=30000)
    ap.add_argument("--batch", type=int, nargs="+",
                    default=[100, 500, 2000])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--families", type=int, default=2000)
    ap.add_argument("--ab", nargs=2, metavar=("APPLY", "UNDO"))
    ap.add_argument("--ab-worker", metavar="BINARY",
                    help="B: the same schema, this guichet-worker")
    ap.add_argument("--track-all", action="store_true",
                    help="pg_stat_statements.track = all (costs CPU)")
    ap.add_argument("--waldump", action="store_true",
                    help="pg_waldump --stats of each run, next to --out")
    ap.add_argument("--perf", action="store_true",
                    help="perf record -a -g of each run, next to --out")
    ap.add_argument("--workdir", default=os.path.join(HERE, "out", "drain"))
    ap.add_argument("--out", default=os.path.join(HERE, "out",
                                                  "worker-drain.json"))
    a = ap.parse_args()
    if a.track_all:
        DrainStack.pg_settings["pg_stat_statements.track"] = "all"
    os.makedirs(a.workdir, exist_ok=True)
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    res = Drain(a).run()
    with open(a.out, "w") as fh:
        json.dump(res, fh, indent=1)
    print("\n  batch  rows/s (median, runs)            PostgreSQL us/row     "
          "worker us/row  WAL B/row")
    for b, x in res["summary"].items():
        print("%7s  %8.0f %-24s %6.1f %-16s %6.1f %6.0f" % (
            b, x["rows_per_s"], x["spread_rows_per_s"],
            x["postgres_us_per_row"], x["spread_postgres_us_per_row"],
            x["worker_us_per_row"], x["wal_bytes_per_row"]))
    top = [r for r in res["runs"] if r["batch_size"] == max(a.batch)][-1]
    print("\npg_stat_statements, batch %d, us per row:" % top["batch_size"])
    for s in top["statements_us_per_row"]:
        print("  %7.2f  %7d calls  %s" % (s["us_per_row"], s["calls"],
                                         s["query"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
