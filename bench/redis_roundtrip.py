#!/usr/bin/python3
"""
bench/redis_roundtrip.py -- what a round trip costs Redis (issue 20), apart
from the commands it carries.

One redis-server with lua-free-config/redis.conf (appendfsync always, the
production setting) on a free loopback port in a temporary directory;
redis-benchmark sends the same SET of a ~100-byte value to random keys,
`--conns` clients, in pipelines of P commands (one round trip per P
commands), for each P in `--pipelines`, interleaved over `--reps`
repetitions.
redis-server's CPU comes from /proc (user + system), divided by the
commands sent: CPU per command = c + r / P, where r is the round trip's
share (reading the request, the event-loop turn, the reply, the AOF's
write and fdatasync amortized over the clients served in that turn) and
c the command's.  A least-squares fit over the Ps gives both.

CPU per command only, never throughput: the machine is shared.

    bench/redis_roundtrip.py [--requests 200000] [--conns 64]
        [--pipelines 1 2 4 8] [--reps 3] [--out FILE]
"""

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from benchlib import say  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def proc_cpu(pid):
    with open("/proc/%d/stat" % pid) as fh:
        f = fh.read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def start_redis(d, extra=()):
    port = free_port()
    p = subprocess.Popen(
        ["redis-server", os.path.join(ROOT, "lua-free-config", "redis.conf"),
         "--bind", "127.0.0.1", "--port", str(port), "--dir", d]
        + list(extra),
        stdout=open(os.path.join(d, "redis.log"), "ab"),
        stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 15
    while True:
        r = subprocess.run(["redis-cli", "-p", str(port), "ping"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        if r.stdout.strip() == b"PONG":
            return p, port
        if time.monotonic() > deadline or p.poll() is not None:
            raise RuntimeError("redis-server did not start")
        time.sleep(0.1)


def one(pid, port, n, conns, pipeline):
    argv = ["redis-benchmark", "-h", "127.0.0.1", "-p", str(port),
            "-n", str(n), "-c", str(conns), "-P", str(pipeline), "-r",
            "1000000", "-q", "SET", "key:__rand_int__", "x" * 100]
    cpu0 = proc_cpu(pid)
    t0 = time.monotonic()
    subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                   check=True)
    t1 = time.monotonic()
    cpu1 = proc_cpu(pid)
    return {"pipeline": pipeline, "commands": n,
            "seconds": round(t1 - t0, 3),
            "redis_cpu_us_per_command": round((cpu1 - cpu0) * 1e6 / n, 2)}


def fit(points):
    """Least squares of y = c + r * x, x = 1 / P."""
    xs = [1.0 / p for p, _ in points]
    ys = [y for _, y in points]
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys))
    r = sxy / sxx if sxx else 0.0
    return my - r * mx, r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=200000)
    ap.add_argument("--conns", type=int, default=64)
    ap.add_argument("--pipelines", type=int, nargs="+", default=[1, 2, 4, 8])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--fsync", default="always",
                    help="appendfsync (always: production; no: to see the "
                    "fsync's share)")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()

    d = tempfile.mkdtemp(prefix="guichet-rt-")
    p, port = start_redis(d, ["--appendfsync", a.fsync])
    runs = []
    try:
        for rep in range(a.reps):
            for pl in a.pipelines:
                r = one(p.pid, port, a.requests, a.conns, pl)
                r["rep"] = rep
                say("P=%d: %.2f us of Redis CPU per command (%.1f s)"
                    % (pl, r["redis_cpu_us_per_command"], r["seconds"]))
                runs.append(r)
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(30)
        subprocess.run(["rm", "-rf", d])

    med = {}
    for pl in a.pipelines:
        v = sorted(r["redis_cpu_us_per_command"] for r in runs
                   if r["pipeline"] == pl)
        med[pl] = v[len(v) // 2]
    c, rt = fit(sorted(med.items()))
    out = {"appendfsync": a.fsync, "conns": a.conns,
           "requests": a.requests, "runs": runs,
           "median_us_per_command": med,
           "fit": {"command_us": round(c, 2), "round_trip_us": round(rt, 2)}}
    print(json.dumps(out, indent=1))
    if a.out:
        with open(a.out, "w") as fh:
            json.dump(out, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
