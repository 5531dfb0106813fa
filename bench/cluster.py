#!/usr/bin/python3
"""
bench/cluster.py -- `make bench-cluster`: what Redis Cluster and WAIT cost
the booking path (issue 21).

One town (bench/gen_town.py, small), loaded once by a whole Guichet
(tests/integration/stack.py); its Redis keys are then copied (DUMP/RESTORE)
into each Redis set-up below, and one nginx with the module
(lua-free-config/loadtest.conf, its Redis line replaced) books single
cells on it with rush.c --grid, the client of `make bench`:

  single          one redis-server (guichet_redis), no replica
  cluster-0r      3 masters, no replica (tests/integration/cluster.py),
                  guichet_redis_cluster: the cost of the routing alone
  single-1r       one redis-server with one replica, no WAIT
  cluster         3 masters, 3 replicas, guichet_redis_wait_replicas 0
  single-1r+wait  single-1r with guichet_redis_wait_replicas 1
  cluster+wait    3 masters, 3 replicas, wait 1 (cluster mode's default)

Every Redis runs lua-free-config/redis.conf (appendfsync always).  No
guichet-worker runs beside them (the stream is not consumed: the same
work in every set-up).  For each: bookings per second, and CPU
microseconds per answer of nginx's workers, of the town's master, and of
every Redis process (replicas included).  --reps runs each set-up that
many times, alternating, and reports the medians.  Writes
bench/out-cluster/result.json and prints a table.  Nothing is asserted:
the figures go to docs/benchmarks.md.
"""

import argparse
import datetime as dt
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))

import stack as stacklib                            # noqa: E402
from cluster import RedisCluster                    # noqa: E402
from benchlib import say, proc_cpu  # noqa: E402

REDIS_CONF = os.path.join(ROOT, "lua-free-config", "redis.conf")


def proc_children(pid):
    out = []
    try:
        for t in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/children" % (pid, t)) as fh:
                out += [int(x) for x in fh.read().split()]
    except OSError:
        pass
    return out


def copy_keys(src, redis):
    """Every key of the plain Redis src into redis (DUMP/RESTORE to the
    master of its slot), TTLs kept."""
    raw = stacklib.redislib.Redis(
        host="127.0.0.1", port=src.connection_pool.connection_kwargs["port"])
    n = 0
    for k in raw.scan_iter(count=1000):
        dump = raw.dump(k)
        ttl = raw.pttl(k)
        dst = stacklib.redislib.Redis(
            host="127.0.0.1", port=redis.master_of(k.decode()).port)
        dst.restore(k, max(ttl, 0), dump, replace=True)
        n += 1
    return n


class Plain:
    """One redis-server (and a replica of it when replica=True)."""

    def __init__(self, d, replica=False):
        self.dir = d
        self.procs = []
        self.port = stacklib.free_port()
        self.start(self.port, "master")
        if replica:
            self.rport = stacklib.free_port()
            self.start(self.rport, "replica",
                       ["--replicaof", "127.0.0.1", str(self.port)])
            self.wait_sync()

    def start(self, port, name, extra=()):
        d = os.path.join(self.dir, name)
        os.makedirs(d, exist_ok=True)
        p = subprocess.Popen(
            ["redis-server", REDIS_CONF, "--bind", "127.0.0.1",
             "--port", str(port), "--dir", d, "--maxmemory", "4gb"]
            + list(extra), stdout=open(os.path.join(d, "log"), "ab"),
            stderr=subprocess.STDOUT)
        self.procs.append(p)
        c = stacklib.redislib.Redis(port=port)
        deadline = time.monotonic() + 15
        while True:
            try:
                c.ping()
                break
            except stacklib.redislib.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def wait_sync(self):
        r = stacklib.redislib.Redis(port=self.rport, decode_responses=True)
        deadline = time.monotonic() + 15
        while r.info("replication").get("master_link_status") != "up":
            assert time.monotonic() < deadline, "replica not in sync"
            time.sleep(0.05)

    @property
    def client(self):
        return stacklib.redislib.Redis(port=self.port)

    def master_of(self, key):
        return self

    def pids(self):
        return [p.pid for p in self.procs]

    def master_pids(self):
        return [self.procs[0].pid]

    def stop(self):
        for p in self.procs:
            p.send_signal(signal.SIGTERM)
        for p in self.procs:
            p.wait(10)


class Front(stacklib.Stack):
    """nginx alone (loadtest.conf) on a Redis set-up, beside the setup
    Stack whose secret it shares."""

    def __init__(self, setup, redis_line, name, pool=4):
        super().__init__(town=setup.town, name=name)
        self.pool = pool
        self.setup = setup
        self.redis_line = redis_line

    def start(self):
        self.dir = tempfile.mkdtemp(prefix="guichet-%s-" % self.name)
        os.chmod(self.dir, 0o755)
        self.secret = self.setup.secret
        with open(os.path.join(ROOT, "lua-free-config",
                               "loadtest.conf")) as f:
            conf = f.read()
        conf = conf.replace("    guichet_redis @REDIS@;\n",
                            self.redis_line, 1)
        conf = conf.replace("    guichet_redis_pool 4;\n",
                            "    guichet_redis_pool %d;\n" % self.pool, 1)
        assert self.redis_line in conf
        self.nginx_template = self._path("bench.conf")
        with open(self.nginx_template, "w") as f:
            f.write(conf)
        self._start_nginx()
        return self

    @property
    def redis_address(self):
        return "unused"


def run_rush(a, front, tokens, town_dir, tag, out):
    summ = os.path.join(out, tag + ".summary.json")
    argv = [os.path.join(ROOT, "build", "rush"), "--port", str(front.port),
            "--tokens", tokens, "--conns", str(a.conns),
            "--summary", summ, "--quiet", "--prefix", tag,
            "--duration", str(a.seconds),
            "--grid", os.path.join(town_dir, "families.tsv"),
            os.path.join(town_dir, "single.sessions"), "--cells", "1",
            "--kids", "1", "--offset", "0"]
    subprocess.run(argv, check=True, stdout=subprocess.PIPE,
                   stderr=subprocess.STDOUT, timeout=a.seconds + 120)
    with open(summ) as fh:
        return json.load(fh)


def measure(a, setup, tokens, town_dir, out, name, wait, cluster,
            replicas):
    d = tempfile.mkdtemp(prefix="guichet-bench-redis-")
    if cluster:
        r = RedisCluster(masters=3, replicas=replicas, dir=d,
                         extra=["--maxmemory", "4gb"]).start()
        line = ("    guichet_redis_cluster %s;\n"
                "    guichet_redis_wait_replicas %d;\n"
                % (" ".join(r.seeds.split(",")), wait))
        home = r.master_of("{main}")
        all_pids = [n.proc.pid for n in r.nodes]
        master_pids = [home.proc.pid]
    else:
        r = Plain(d, replica=bool(replicas))
        line = ("    guichet_redis 127.0.0.1:%d;\n"
                "    guichet_redis_wait_replicas %d;\n" % (r.port, wait))
        all_pids = r.pids()
        master_pids = r.master_pids()
    front = None
    try:
        copy_keys(setup.redis, r)
        front = Front(setup, line, "bench-" + name, a.pool).start()
        deadline = time.monotonic() + 20
        while front.http("GET", "/api/health").status == 503 and \
                b"catalogue\":\"missing" in front.http(
                    "GET", "/api/health").body:
            if time.monotonic() > deadline:
                raise RuntimeError("no catalogue on " + name)
            time.sleep(0.1)
        ngx = proc_children(front.procs["nginx"].pid)
        c0 = {"nginx": sum(map(proc_cpu, ngx)),
              "master": sum(map(proc_cpu, master_pids)),
              "redis_all": sum(map(proc_cpu, all_pids))}
        res = run_rush(a, front, tokens, town_dir, name.replace("+", "_"),
                       out)
        c1 = {"nginx": sum(map(proc_cpu, ngx)),
              "master": sum(map(proc_cpu, master_pids)),
              "redis_all": sum(map(proc_cpu, all_pids))}
        n = res.get("answers") or 1
        row = {"answers": res.get("answers"),
               "cells_confirmed": res.get("cells_confirmed"),
               "answers_per_s": res.get("answers_per_s"),
               "p99_ms": res.get("latency_ms", {}).get("p99"),
               "status": res.get("status"),
               "us_per_answer": {k: round((c1[k] - c0[k]) * 1e6 / n, 1)
                                 for k in c0}}
        row["us_per_answer"]["server"] = round(
            row["us_per_answer"]["nginx"]
            + row["us_per_answer"]["redis_all"], 1)
        bad = [ln for ln in front.error_log().splitlines()
               if stacklib.BAD_LOG.search(ln) and "setrlimit" not in ln]
        row["error_log"] = bad[:10]
        return row
    finally:
        if front:
            front.stop()
        r.stop()
        subprocess.run(["rm", "-rf", d])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--conns", type=int, default=64)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--pool", type=int, default=4,
                    help="guichet_redis_pool (loadtest.conf's: 4)")
    ap.add_argument("--only", help="set-ups to run, comma-separated")
    ap.add_argument("--out", default=os.path.join(HERE, "out-cluster"))
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    subprocess.run(["make", "-s", "-C", ROOT, "build/rush"], check=True)

    town_dir = os.path.join(a.out, "town")
    opens = (dt.datetime.now().astimezone()
             + dt.timedelta(days=1)).isoformat()
    subprocess.run([sys.executable, os.path.join(HERE, "gen_town.py"),
                    "--families", "2000", "--children", "3000",
                    "--activities", "10", "--days", "10", "--seed", "7",
                    "--opens-at", opens, "--out", town_dir],
                   check=True, stdout=subprocess.PIPE)
    say("loading the town (a whole Guichet)")
    setup = stacklib.Stack(town=os.path.join(town_dir, "town.json"),
                           name="bench-cluster-setup").start()
    try:
        # no worker: the set-ups below have none either
        setup.procs["worker"].send_signal(signal.SIGTERM)
        setup.procs.pop("worker").wait(10)
        tokens = os.path.join(a.out, "tokens")
        with open(tokens, "w") as fh:
            fh.write(setup.ctl_run("tokens"))
        # (name, WAIT replicas, cluster, replicas per master)
        setups = [("single", 0, False, 0), ("cluster-0r", 0, True, 0),
                  ("single-1r", 0, False, 1), ("cluster", 0, True, 1),
                  ("single-1r+wait", 1, False, 1),
                  ("cluster+wait", 1, True, 1)]
        if a.only:
            setups = [x for x in setups if x[0] in a.only.split(",")]
        runs = {x[0]: [] for x in setups}
        for rep in range(a.reps):
            for name, wait, cl, reps in setups:
                say("%s, run %d of %d" % (name, rep + 1, a.reps))
                runs[name].append(measure(a, setup, tokens, town_dir, a.out,
                                          name, wait, cl, reps))
    finally:
        setup.stop()

    def med(rows, *path):
        vals = []
        for r in rows:
            v = r
            for p in path:
                v = v[p]
            vals.append(v)
        return statistics.median(vals)

    result = {"seconds": a.seconds, "conns": a.conns, "reps": a.reps,
              "nproc": os.cpu_count(), "runs": runs, "median": {}}
    print("\n| set-up | answers/s | p99 ms | nginx µs | master µs "
          "| all Redis µs | server µs (nginx + all Redis) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name in runs:
        rows = runs[name]
        m = {"answers_per_s": med(rows, "answers_per_s"),
             "p99_ms": med(rows, "p99_ms")}
        for k in ("nginx", "master", "redis_all", "server"):
            m[k] = med(rows, "us_per_answer", k)
        result["median"][name] = m
        print("| %s | %.0f | %.1f | %.1f | %.1f | %.1f | %.1f |"
              % (name, m["answers_per_s"], m["p99_ms"], m["nginx"],
                 m["master"],
                 m["redis_all"], m["server"]))
    with open(os.path.join(a.out, "result.json"), "w") as fh:
        json.dump(result, fh, indent=1)


if __name__ == "__main__":
    main()
