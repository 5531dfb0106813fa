#!/usr/bin/python3
"""
bench/restart.py -- Redis killed at the peak of a town's opening rush, and
the time until Guichet books again (issue 20: "a Redis restarted after the
rush of a 20,000-family town serving again within 3 s").

  1. the benchmark's stack (bench/run's: PostgreSQL with fsync and
     synchronous_commit on, Redis with lua-free-config/redis.conf:
     appendfsync always, nginx's loadtest.conf), the town of bench/run
     (gen_town.py, 20,000 families, same seed), loaded, then loaded again
     to open a few seconds ahead, as `make bench` does before its rush;
  2. the rush (rush.c --rush rush.tsv, 256 connections, --resubmit 40,
     from 2 s before the opening), as `make bench` drives it;
  3. at the peak (once the rush has confirmed --kill-cells cells, in the
     first second or two after the opening: see the series in the
     result), SIGKILL redis-server, and at once a new one on the same
     directory: the time until it answers PING (not LOADING), and until
     a booking sent through nginx every 10 ms (one cell of an always-open
     session, a fresh Idempotency-Key each) is answered 200; every
     request in between is a 503;
  4. the AOF at the kill (Redis 7's multi-part AOF: the base and incr
     files of appenddirname), the keys and memory once loaded, Redis's own
     account of its load (its log), and during the rush the AOF rewrites
     (auto-aof-rewrite-*: their fork time, the child's CPU, copy-on-write);
  5. the rush goes on against the restarted Redis (its 503s are retried),
     the worker drains; what the rush got is in the result;
  6. the same data after a BGREWRITEAOF (an RDB base, nothing to replay):
     SIGKILL, restart, the time until PING ("restart_rewritten").

--perf records redis-server while it loads (perf record -g) and adds the
top symbols.  --redis NAME=VALUE and --worker NAME=VALUE change a setting
(A/B runs).  --keep-aof copies the AOF's directory at the kill, and
--reload loads such copies again on their own (no stack), interleaved.
A benchmark, never a test: nothing is asserted.  Writes --out
(default bench/out/restart.json).

    bench/restart.py [--quick] [--kill-cells 20000] [--perf]
                     [--keep-aof DIR] [--out FILE]
    bench/restart.py --reload DIR [DIR ...] [--reps 3]
"""

import argparse
import datetime as dt
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))

import stack as stacklib      # noqa: E402
import redis as redislib      # noqa: E402
from benchlib import say, proc_cpu  # noqa: E402


def children_cpu(pid):
    """CPU seconds of the children a process has waited for (its forked
    AOF rewrites: cutime + cstime in /proc)."""
    try:
        with open("/proc/%d/stat" % pid) as fh:
            f = fh.read().rsplit(")", 1)[1].split()
        return (int(f[13]) + int(f[14])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def children(pid):
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as fh:
            return [int(x) for x in fh.read().split()]
    except OSError:
        return []


class RestartStack(stacklib.Stack):
    nginx_template = "loadtest.conf"
    pg_settings = dict(stacklib.Stack.pg_settings, fsync="on",
                       synchronous_commit="on", full_page_writes="on",
                       shared_buffers="256MB")
    redis_extra = ()
    worker_extra = ""

    def _start_redis(self, port=None, extra=(), loading=False):
        super()._start_redis(port=port, extra=tuple(self.redis_extra)
                             + tuple(extra), loading=loading)

    def _setup(self):
        super()._setup()
        if self.worker_extra:
            with open(self.worker_conf, "a") as f:
                f.write(self.worker_extra)

    def redis_argv(self):
        return (["redis-server", os.path.join(ROOT, "lua-free-config",
                                              "redis.conf"),
                 "--bind", "127.0.0.1", "--port", str(self.redis_port),
                 "--dir", self._path("redis"),
                 "--unixsocket", self._path("redis.sock"),
                 "--unixsocketperm", "777"] + list(self.redis_extra))


def aof_files(s):
    """The multi-part AOF's files now: name -> bytes (and their kinds)."""
    d = os.path.join(s._path("redis"), "appendonlydir")
    out = {}
    for f in sorted(os.listdir(d)):
        out[f] = os.path.getsize(os.path.join(d, f))
    base = sum(v for k, v in out.items() if ".base." in k)
    incr = sum(v for k, v in out.items() if ".incr." in k)
    return {"files": out, "base_bytes": base, "incr_bytes": incr,
            "total_bytes": base + incr,
            "base_kind": ("rdb" if any(k.endswith(".base.rdb") for k in out)
                          else "aof")}


class Sampler:
    """Every 100 ms during the rush: the AOF rewrites in progress, the
    CPU of redis-server and of its forked children (the rewrite)."""

    def __init__(self, s):
        self.s = s
        self.on = True
        self.child_cpu = {}
        self.rewrites_seen = 0
        self.samples = []
        self.pid = s.procs["redis"].pid
        self.cpu0 = children_cpu(self.pid)
        self.r = redislib.Redis(host="127.0.0.1", port=s.redis_port,
                                socket_timeout=5)
        self.forks0 = self.r.info("stats")["total_forks"]
        self.th = threading.Thread(target=self.run, daemon=True)
        self.th.start()

    def run(self):
        r = redislib.Redis(host="127.0.0.1", port=self.s.redis_port,
                           socket_timeout=2)
        pid = self.s.procs["redis"].pid
        t0 = time.monotonic()
        while self.on:
            for c in children(pid):
                self.child_cpu[c] = max(self.child_cpu.get(c, 0.0),
                                        proc_cpu(c))
            try:
                p = r.info("persistence")
                self.samples.append({
                    "t": round(time.monotonic() - t0, 2),
                    "rewrite": p.get("aof_rewrite_in_progress"),
                    "aof": p.get("aof_current_size"),
                    "redis_cpu": proc_cpu(pid)})
            except redislib.RedisError:
                pass
            time.sleep(0.1)

    def stop(self):
        self.on = False
        self.th.join(5)
        return {"rewrite_child_cpu_s": round(sum(self.child_cpu.values()),
                                             2),
                # the rewrites' children Redis has waited for, exact
                "children_cpu_s": round(children_cpu(self.pid) - self.cpu0,
                                        2),
                "forks": self.r.info("stats")["total_forks"] - self.forks0,
                "forked_children": len(self.child_cpu),
                "rewrite_sampled_s": round(
                    0.1 * sum(1 for x in self.samples if x["rewrite"]), 1)}


def probe(s, token, fid, cid, sessions, since, stop):
    """POSTs one booking every 10 ms until one is answered 200: the first
    200's time since `since`, and the statuses seen on the way."""
    seen = {}
    i = 0
    while not stop.is_set():
        sid = sessions[i % len(sessions)]
        body = json.dumps({"items": [{"child_id": cid, "session_id": sid}]})
        i += 1
        try:
            c = http.client.HTTPConnection("127.0.0.1", s.port, timeout=5)
            c.request("POST", "/api/bookings", body=body, headers={
                "Authorization": "Bearer " + token,
                "Content-Type": "application/json",
                "Idempotency-Key": "restart-probe-%d-%d" % (os.getpid(), i)})
            r = c.getresponse()
            r.read()
            c.close()
            st = r.status
        except OSError as e:
            st = type(e).__name__
        seen[str(st)] = seen.get(str(st), 0) + 1
        if st == 200:
            return {"first_200_s": round(time.monotonic() - since, 3),
                    "answers_before": seen}
        if st == 409 or st == 422:
            # this child already has that session: the next one
            continue
        time.sleep(0.01)
    return {"first_200_s": None, "answers_before": seen}


def redis_load_log(text):
    """What redis-server says of its last load."""
    out = {}
    tail = text[text.rfind("Server initialized"):]
    for line in tail.splitlines():
        m = re.search(r"DB loaded from (base|incr) file (\S+): ([0-9.]+) "
                      r"seconds", line)
        if m:
            out.setdefault("files", []).append(
                {"kind": m.group(1), "file": m.group(2),
                 "seconds": float(m.group(3))})
        m = re.search(r"DB loaded from append only file: ([0-9.]+) seconds",
                      line)
        if m:
            out["aof_seconds"] = float(m.group(1))
        m = re.search(r"Done loading RDB, keys loaded: (\d+), keys expired: "
                      r"(\d+)", line)
        if m:
            out["rdb_keys_loaded"] = int(m.group(1))
    return out


def perf_top(data):
    r = subprocess.run(["perf", "report", "-i", data, "--stdio",
                        "--no-children", "--percent-limit", "1.5",
                        "--sort", "symbol", "-g", "none"],
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    out = []
    for line in r.stdout.decode(errors="replace").splitlines():
        m = re.match(r"\s*([0-9.]+)%\s+\[.\]\s+(.*)", line)
        if m:
            out.append([m.group(2).strip(), float(m.group(1))])
    return out[:25]


def reload_dirs(dirs, reps):
    """Each AOF directory (--keep-aof's) loaded by a redis-server of its
    own (redis.conf, no rewrite), reps times, interleaved: the wall time
    until PING and redis-server's CPU by then."""
    out = []
    for rep in range(reps):
        for d in dirs:
            tmp = tempfile.mkdtemp(prefix="restart-reload-")
            p = None
            try:
                shutil.copytree(d, os.path.join(tmp, "appendonlydir"))
                port = stacklib.free_port()
                t = time.monotonic()
                p = subprocess.Popen(
                    ["redis-server", os.path.join(ROOT, "lua-free-config",
                                                  "redis.conf"),
                     "--bind", "127.0.0.1", "--port", str(port), "--dir",
                     tmp, "--maxmemory", "0",
                     "--auto-aof-rewrite-percentage", "0"],
                    stdout=subprocess.DEVNULL)
                r = redislib.Redis(host="127.0.0.1", port=port)
                while True:
                    try:
                        r.ping()
                        break
                    except (redislib.BusyLoadingError,
                            redislib.ConnectionError):
                        if p.poll() is not None or \
                                time.monotonic() - t > 300:
                            raise RuntimeError("redis-server on %s" % d)
                        time.sleep(0.005)
                x = {"dir": d, "rep": rep,
                     "ping_s": round(time.monotonic() - t, 3),
                     "cpu_s": round(proc_cpu(p.pid), 2),
                     "keys": r.dbsize()}
                say("%s: PING %.2f s, CPU %.2f s, %d keys" % (
                    d, x["ping_s"], x["cpu_s"], x["keys"]))
                out.append(x)
            finally:
                if p is not None:
                    p.kill()
                    p.wait()
                shutil.rmtree(tmp, ignore_errors=True)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true",
                    help="bench/run --quick's town (2,000 families)")
    ap.add_argument("--families", type=int)
    ap.add_argument("--children", type=int)
    ap.add_argument("--activities", type=int)
    ap.add_argument("--days", type=int)
    ap.add_argument("--conns", type=int, default=256)
    ap.add_argument("--kill-cells", type=int,
                    help="Redis is killed once the rush has confirmed this "
                    "many cells (default 20,000 of about 33,000, 2,000 with "
                    "--quick)")
    ap.add_argument("--perf", action="store_true")
    ap.add_argument("--keep-aof", metavar="DIR",
                    help="a copy of the AOF's directory at the kill")
    ap.add_argument("--redis", action="append", default=[],
                    help="NAME=VALUE: a redis-server setting")
    ap.add_argument("--worker", action="append", default=[],
                    help="NAME=VALUE: a worker setting")
    ap.add_argument("--reload", nargs="+", metavar="DIR",
                    help="no stack: load each AOF directory kept by "
                    "--keep-aof, --reps times interleaved")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--out", default=os.path.join(HERE, "out",
                                                  "restart.json"))
    a = ap.parse_args()
    if a.reload:
        print(json.dumps(reload_dirs(a.reload, a.reps), indent=1))
        return 0
    d = (dict(families=2000, children=3000, activities=10, days=10)
         if a.quick else
         dict(families=20000, children=30000, activities=40, days=30))
    d["kill_cells"] = 2000 if a.quick else 20000
    for k, v in d.items():
        if getattr(a, k) is None:
            setattr(a, k, v)

    tmp = tempfile.mkdtemp(prefix="restart-bench-")
    rush_bin = os.path.join(tmp, "rush")
    subprocess.run(["cc", "-O2", "-Wall", "-Wextra", "-Werror", "-o",
                    rush_bin, os.path.join(HERE, "rush.c")], check=True)
    town = os.path.join(tmp, "town")
    base_date = dt.date.today().isoformat()

    def gen(opens):
        r = subprocess.run([
            sys.executable, os.path.join(HERE, "gen_town.py"),
            "--families", str(a.families), "--children", str(a.children),
            "--activities", str(a.activities), "--days", str(a.days),
            "--seed", "7", "--opens-at", opens.isoformat(),
            "--out", town, "--base-date", base_date],
            check=True, stdout=subprocess.PIPE)
        return json.loads(r.stdout)

    res = {"settings": {k: v for k, v in vars(a).items()
                        if k not in ("out",)}}
    say("town: %d families" % a.families)
    meta = gen(dt.datetime.now().astimezone() + dt.timedelta(days=1))
    res["town"] = {k: meta.get(k) for k in ("families", "children",
                                            "sessions", "requests")}
    s = RestartStack(town=os.path.join(town, "town.json"), name="restart")
    s.redis_extra = []
    for kv in a.redis:
        k, v = kv.split("=", 1)
        s.redis_extra += ["--" + k, v]
    s.worker_extra = "".join("%s = %s\n" % tuple(kv.split("=", 1))
                             for kv in a.worker)
    t = time.monotonic()
    s.start()
    start_s = time.monotonic() - t
    rc = 0
    try:
        r = s.redis
        res["redis_config"] = {k: r.config_get(k)[k] for k in (
            "appendfsync", "auto-aof-rewrite-min-size",
            "auto-aof-rewrite-percentage", "aof-use-rdb-preamble",
            "maxmemory")}
        tokens = os.path.join(tmp, "tokens")
        with open(tokens, "w") as fh:
            fh.write(s.ctl_run("tokens"))
        tok = {}
        with open(tokens) as fh:
            for line in fh:
                p = line.split()
                if len(p) >= 2:
                    tok[p[0]] = p[1]
        with open(os.path.join(town, "families.tsv")) as fh:
            fam = fh.readline().split()
        fid, cid = fam[0], fam[1]
        with open(os.path.join(town, "single.sessions")) as fh:
            single = fh.read().split()

        # the reload that opens the rush, as bench/run does it
        est = max(12 if not a.quick else 4, 1.5 * start_s)
        for _ in range(3):
            t = time.monotonic()
            opens = (dt.datetime.now().astimezone()
                     + dt.timedelta(seconds=est + 4)).replace(microsecond=0)
            gen(opens)
            s.ctl_run("load-town", os.path.join(town, "town.json"))
            opens_ms = int(opens.timestamp() * 1000)
            if opens_ms - int(time.time() * 1000) >= 2500:
                break
            est = 2 * (time.monotonic() - t)
        else:
            raise RuntimeError("the reload outlasted its margin")
        res["aof_before_rush"] = aof_files(s)
        res["used_memory_before_rush"] = r.info("memory")["used_memory"]
        res["keys_before_rush"] = r.dbsize()

        say("rush: opens at %s, %d connections, %d requests"
            % (opens.isoformat(), a.conns, meta["requests"]))
        summ = os.path.join(tmp, "rush.summary.json")
        series = os.path.join(tmp, "rush.series")
        sampler = Sampler(s)
        rush = subprocess.Popen(
            [rush_bin, "--port", str(s.port), "--tokens", tokens,
             "--conns", str(a.conns), "--summary", summ, "--series", series,
             "--quiet", "--prefix", "rush", "--resubmit", "40", "--rush",
             os.path.join(town, "rush.tsv"), "--start-at",
             str(opens_ms - 2000)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        # the rush confirms most of its cells in the first second after
        # the opening: Redis is killed once --kill-cells cells are
        # confirmed (one HSET of {main}:f:<fid>:bookings each, in INFO
        # commandstats), whatever the machine's speed
        def hsets():
            return r.info("commandstats").get("cmdstat_hset",
                                              {}).get("calls", 0)
        t_open = opens_ms / 1000.0
        seq0 = int(r.get("{main}:seq:demande") or 0)
        cmd0 = r.info("stats")["total_commands_processed"]
        h0 = hsets()
        while hsets() - h0 < a.kill_cells:
            if rush.poll() is not None:
                break
            time.sleep(0.01)
        cells = hsets() - h0
        n = int(r.get("{main}:seq:demande") or 0) - seq0
        pid = s.procs["redis"].pid
        mem = r.info("memory")
        # every command Redis ran from the rush's start to the kill (the
        # sampler's INFO included, a few a second)
        cmds = r.info("stats")["total_commands_processed"] - cmd0
        kill = {"demandes_numbered_in_rush": n, "cells_confirmed": cells,
                "redis_commands_in_rush": cmds,
                "rush_requests": meta["requests"],
                "rush_running": rush.poll() is None,
                "s_after_opening": round(time.time() - t_open, 2),
                "used_memory": mem["used_memory"],
                "used_memory_rss": mem["used_memory_rss"],
                "keys": r.dbsize(),
                "stream_entries": r.xlen("{main}:stream")}
        rew = sampler.stop()
        pers = r.info("persistence")
        st = r.info("stats")
        rew.update({"aof_rewrites": pers.get("aof_rewrites"),
                    "latest_fork_usec": st.get("latest_fork_usec"),
                    "total_forks": st.get("total_forks"),
                    "aof_last_cow_size": pers.get("aof_last_cow_size"),
                    "aof_last_rewrite_time_sec":
                        pers.get("aof_last_rewrite_time_sec"),
                    "redis_cpu_s_rush_until_kill": round(proc_cpu(pid) - (
                        sampler.samples[0]["redis_cpu"]
                        if sampler.samples else 0), 2)})
        res["rewrite_during_rush"] = rew

        # the crash, and the restart on the same directory
        os.kill(pid, signal.SIGKILL)
        s.procs.pop("redis").wait()
        kill["aof"] = aof_files(s)
        if a.keep_aof:
            shutil.rmtree(a.keep_aof, ignore_errors=True)
            shutil.copytree(os.path.join(s._path("redis"), "appendonlydir"),
                            a.keep_aof)
        res["at_kill"] = kill
        say("killed Redis %.1f s after the opening, %d cells confirmed, "
            "%d demandes numbered, %d Redis commands: "
            "AOF %.1f MB (base %s %.1f MB, incr %.1f MB)" % (
                kill["s_after_opening"], cells, n, cmds,
                kill["aof"]["total_bytes"] / 1e6, kill["aof"]["base_kind"],
                kill["aof"]["base_bytes"] / 1e6,
                kill["aof"]["incr_bytes"] / 1e6))
        stop = threading.Event()
        got = {}
        th = threading.Thread(target=lambda: got.update(probe(
            s, tok[fid], fid, cid, single, t0, stop)), daemon=True)
        log = s._log("redis")
        t0 = time.monotonic()
        s.procs["redis"] = subprocess.Popen(s.redis_argv(), stdout=log,
                                            stderr=subprocess.STDOUT)
        th.start()
        perf = None
        if a.perf:
            pdata = os.path.join(tmp, "perf.data")
            perf = subprocess.Popen(
                ["perf", "record", "-q", "-g", "-F", "1999", "-o", pdata,
                 "-p", str(s.procs["redis"].pid)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        rc2 = redislib.Redis(host="127.0.0.1", port=s.redis_port,
                             socket_timeout=5)
        first_answer = None
        while True:
            try:
                rc2.ping()
                break
            except redislib.BusyLoadingError:
                if first_answer is None:
                    first_answer = time.monotonic() - t0
            except redislib.ConnectionError:
                pass
            if time.monotonic() - t0 > 300:
                raise RuntimeError("Redis did not load within 300 s")
            time.sleep(0.005)
        ping_s = time.monotonic() - t0
        load_cpu = proc_cpu(s.procs["redis"].pid)
        if perf is not None:
            perf.send_signal(signal.SIGINT)
            perf.wait(30)
        th.join(120)
        stop.set()
        s._redis = redislib.Redis(host="127.0.0.1", port=s.redis_port,
                                  decode_responses=True)
        info = s.redis.info()
        res["restart"] = {
            "ping_s": round(ping_s, 3),
            "load_cpu_s": round(load_cpu, 2),
            "first_loading_answer_s": (round(first_answer, 3)
                                       if first_answer else None),
            "first_booking_200_s": got.get("first_200_s"),
            "probe_answers_before_200": got.get("answers_before"),
            "redis_log": redis_load_log(s.read("redis.log")),
            "keys": s.redis.dbsize(),
            "used_memory": info["used_memory"],
            "used_memory_rss": info["used_memory_rss"],
            "aof_bytes_loaded": kill["aof"]["total_bytes"]}
        if a.perf:
            res["restart"]["perf_load_top"] = perf_top(pdata)
        say("Redis answered PING %.2f s after its restart, a booking 200 "
            "through nginx %s s after" % (ping_s, got.get("first_200_s")))

        # the rest of the rush, on the restarted Redis: its rewrites too
        sampler2 = Sampler(s)
        out, _ = rush.communicate(timeout=600)
        rew2 = sampler2.stop()
        pers = s.redis.info("persistence")
        st = s.redis.info("stats")
        rew2.update({"aof_rewrites": pers.get("aof_rewrites"),
                     "latest_fork_usec": st.get("latest_fork_usec"),
                     "total_forks": st.get("total_forks"),
                     "aof_last_cow_size": pers.get("aof_last_cow_size")})
        res["rewrite_rest_of_rush"] = rew2
        try:
            with open(summ) as fh:
                rs = json.load(fh)
            res["rush"] = {k: rs.get(k) for k in (
                "answers", "cells_sent", "cells_confirmed", "cells_refused",
                "statuses", "retries", "timeouts", "latency_ms")}
        except (OSError, ValueError):
            res["rush"] = {"error": out.decode(errors="replace")[-2000:]}
        res["rush"]["exit"] = rush.returncode
        # answers and cells confirmed per second of the rush (second 0:
        # its start, 2 s before the opening): where the kill fell
        try:
            with open(series) as fh:
                rows = [l.split() for l in fh if not l.startswith("#")]
            res["rush"]["per_second"] = [
                {"s_after_opening": int(x[0]) - 2, "answers": int(x[1]),
                 "confirmed": int(x[3]), "refused": int(x[4])}
                for x in rows]
            peak = max(res["rush"]["per_second"],
                       key=lambda x: x["confirmed"])
            res["rush"]["peak_second_after_opening"] = peak["s_after_opening"]
        except (OSError, ValueError, IndexError):
            pass
        t = time.monotonic()
        s.wait_worker_drained(300)
        res["drain_after_rush_s"] = round(time.monotonic() - t, 2)
        mem = s.redis.info("memory")["used_memory"]
        res["after_drain"] = {"used_memory": mem, "keys": s.redis.dbsize(),
                              "stream_entries":
                                  s.redis.xlen("{main}:stream"),
                              "aof": aof_files(s)}

        # the same data once the AOF is rewritten (an RDB base, no
        # commands to replay): what a rewrite before the crash buys
        say("the AOF rewritten (BGREWRITEAOF), then SIGKILL and restart")
        cpu0 = proc_cpu(s.procs["redis"].pid)
        t = time.monotonic()
        s.redis.bgrewriteaof()
        while True:
            p = s.redis.info("persistence")
            if (not p["aof_rewrite_in_progress"]
                    and not p["aof_rewrite_scheduled"]):
                break
            time.sleep(0.02)
        rw = {"rewrite_s": round(time.monotonic() - t, 2),
              "latest_fork_usec": s.redis.info("stats")["latest_fork_usec"],
              "aof_last_cow_size": p.get("aof_last_cow_size"),
              "parent_cpu_s": round(proc_cpu(s.procs["redis"].pid) - cpu0,
                                    2)}
        pid = s.procs["redis"].pid
        os.kill(pid, signal.SIGKILL)
        s.procs.pop("redis").wait()
        rw["aof"] = aof_files(s)
        t0 = time.monotonic()
        s.procs["redis"] = subprocess.Popen(s.redis_argv(), stdout=log,
                                            stderr=subprocess.STDOUT)
        while True:
            try:
                rc2.ping()
                break
            except (redislib.BusyLoadingError, redislib.ConnectionError):
                pass
            if time.monotonic() - t0 > 300:
                raise RuntimeError("Redis did not load within 300 s")
            time.sleep(0.005)
        rw["ping_s"] = round(time.monotonic() - t0, 3)
        rw["load_cpu_s"] = round(proc_cpu(s.procs["redis"].pid), 2)
        rw["redis_log"] = redis_load_log(s.read("redis.log"))
        rw["keys"] = s.redis.dbsize()
        res["restart_rewritten"] = rw
        say("rewritten: %.1f MB (base %s), PING %.2f s after the restart"
            % (rw["aof"]["total_bytes"] / 1e6, rw["aof"]["base_kind"],
               rw["ping_s"]))
    except Exception as e:      # noqa: BLE001 -- report what was measured
        import traceback
        traceback.print_exc()
        res["error"] = "%s: %s" % (type(e).__name__, e)
        rc = 2
    finally:
        s.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    text = json.dumps(res, indent=1, sort_keys=True)
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w") as fh:
        fh.write(text + "\n")
    print(text)
    return rc


if __name__ == "__main__":
    sys.exit(main())
