#!/usr/bin/python3
"""
bench/redis_cost.py -- what one booking costs Redis (issue 20): memory, AOF
bytes, commands and CPU per confirmed single-cell booking, and per refusal
on a sold-out session.

One stack (tests/integration/stack.py with lua-free-config/loadtest.conf and
redis.conf: appendfsync always), a small town (bench/gen_town.py), rush.c
--grid.  After a warm-up (so that every structure exists), N single-cell
bookings; once the worker has persisted them: used_memory, the AOF's size
(INFO persistence aof_current_size, and per command from the AOF file
itself: which command writes what), INFO commandstats (calls per booking),
redis-server's CPU from /proc (run and drain), MEMORY USAGE of one key of
each kind the booking writes.  Then N refusals on a session with one place,
then a crash (SIGKILL) and the time Redis takes to serve again (it reads
its AOF: every request gets 503 until then).
The stream is trimmed by the worker only after trim_keep_ms, so its entries
are still in used_memory: they are shown apart ("stream").

Bytes and CPU per answer, never throughput: the machine is shared.
--template runs nginx with another configuration: an older module that does
not know a newer directive, for an A/B with GUICHET_MODULE.

    bench/redis_cost.py [--bookings 20000] [--conns 64]
                        [--template FILE] [--out FILE]
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))

import stack as stacklib      # noqa: E402
from benchlib import say  # noqa: E402


def proc_cpu(pid):
    with open("/proc/%d/stat" % pid) as fh:
        f = fh.read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


class CostStack(stacklib.Stack):
    nginx_template = "loadtest.conf"


def aof_bytes(r):
    return int(r.info("persistence").get("aof_current_size", 0))


def aof_incr(r):
    """The AOF file commands are appended to now (Redis 7's multi-part
    AOF: the last .incr.aof of appenddirname)."""
    d = os.path.join(r.config_get("dir")["dir"],
                     r.config_get("appenddirname")["appenddirname"])
    files = sorted((f for f in os.listdir(d) if f.endswith(".incr.aof")),
                   key=lambda f: int(f.rsplit(".", 3)[-3]))
    return os.path.join(d, files[-1])


def aof_by_command(path, start, end, n):
    """Bytes of the AOF between start and end, per command name, per
    booking (n): which command writes what."""
    with open(path, "rb") as fh:
        fh.seek(start)
        data = fh.read(end - start)
    out, i = {}, 0
    while i < len(data):
        j = data.index(b"\r\n", i)
        assert data[i:i + 1] == b"*", data[i:i + 40]
        argc, k, args = int(data[i + 1:j]), j + 2, []
        for a in range(argc):
            e = data.index(b"\r\n", k)
            ln = int(data[k + 1:e])
            if a < 3:
                args.append(data[e + 2:e + 2 + ln])
            k = e + 2 + ln + 2
        name = args[0].decode().upper()
        if name == "SET" and len(args) == 3:
            # which SET: the record (P or D) or a claim
            name = ("SET claim" if b":c:" in args[1]
                    else "SET record " + args[2][:1].decode())
        out[name] = out.get(name, 0) + (k - i)
        i = k
    return {c: round(b / n, 1) for c, b in sorted(out.items(),
                                                  key=lambda x: -x[1])}


def key_kinds(r, fid):
    """MEMORY USAGE of one key of each kind one family's booking wrote."""
    out = {}
    for pat, name in (("{main}:f:%s:idem:*" % fid, "idempotency record"),
                      ("{main}:f:%s:bookings" % fid, "family bookings hash"),
                      ("{main}:f:%s:demandes" % fid, "family demandes list"),
                      ("{main}:f:%s:budget" % fid, "family budget")):
        keys = list(r.scan_iter(match=pat, count=1000))
        if keys:
            k = keys[0]
            out[name] = {"key": k, "bytes": r.memory_usage(k, samples=0),
                         "strlen": (r.strlen(k) if r.type(k) == "string"
                                    else None)}
    claims = list(r.scan_iter(match="{main}:c:*", count=1000))
    if claims:
        out["claim"] = {"key": claims[0],
                        "bytes": r.memory_usage(claims[0], samples=0)}
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bookings", type=int, default=20000)
    ap.add_argument("--refusals", type=int, default=20000)
    ap.add_argument("--conns", type=int, default=64)
    ap.add_argument("--families", type=int, default=5000)
    ap.add_argument("--template", default="loadtest.conf",
                    help="nginx configuration template (lua-free-config/ "
                         "or a path)")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    CostStack.nginx_template = os.path.abspath(a.template) \
        if os.sep in a.template else a.template

    tmp = tempfile.mkdtemp(prefix="redis-cost-")
    rush = os.path.join(tmp, "rush")
    subprocess.run(["cc", "-O2", "-Wall", "-Wextra", "-Werror", "-o", rush,
                    os.path.join(HERE, "rush.c")], check=True)
    town = os.path.join(tmp, "town")
    import datetime as dt
    far = dt.datetime.now().astimezone() + dt.timedelta(days=1)
    subprocess.run([sys.executable, os.path.join(HERE, "gen_town.py"),
                    "--families", str(a.families), "--children",
                    str(a.families * 3 // 2), "--activities", "4", "--days",
                    "5", "--opens-at", far.isoformat(timespec="seconds"),
                    "--out", town], check=True, stdout=subprocess.DEVNULL)
    s = CostStack(town=os.path.join(town, "town.json"), name="redis-cost")
    s.start()
    res = {"bookings_requested": a.bookings, "conns": a.conns}
    try:
        r = s.redis
        r.config_set("maxmemory", "4gb")
        tokens = os.path.join(tmp, "tokens")
        with open(tokens, "w") as fh:
            fh.write(s.ctl_run("tokens"))
        fam = os.path.join(town, "families.tsv")
        single = os.path.join(town, "single.sessions")
        full = os.path.join(town, "full.session")
        n = [0]

        def run(sessions, count, offset, tag):
            summ = os.path.join(tmp, tag + ".json")
            subprocess.run([rush, "--port", str(s.port), "--tokens", tokens,
                            "--conns", str(a.conns), "--grid", fam, sessions,
                            "--offset", str(offset), "--requests", str(count),
                            "--prefix", tag, "--quiet", "--summary", summ],
                           check=True, stdout=subprocess.DEVNULL)
            with open(summ) as fh:
                return json.load(fh)

        say("warm-up")
        run(single, 2000, 0, "warm")
        s.wait_worker_drained(120)
        time.sleep(1)

        # bytes a booking writes: no AOF rewrite while they are counted
        # (redis.conf rewrites past 64 MB of commands, and a rewrite makes
        # the AOF's size the new base's); restored before the crash below
        pct = r.config_get("auto-aof-rewrite-percentage")[
            "auto-aof-rewrite-percentage"]
        r.config_set("auto-aof-rewrite-percentage", 0)
        while r.info("persistence")["aof_rewrite_in_progress"]:
            time.sleep(0.05)
        pid = s.procs["redis"].pid
        m0 = r.info("memory")["used_memory"]
        f0 = aof_bytes(r)
        incr = aof_incr(r)
        i0 = os.path.getsize(incr)
        r.config_resetstat()
        c0 = proc_cpu(pid)
        say("%d single-cell bookings" % a.bookings)
        out = run(single, a.bookings, 2000, "book")
        c1 = proc_cpu(pid)
        s.wait_worker_drained(120)
        c2 = proc_cpu(pid)
        time.sleep(0.5)
        m1 = r.info("memory")["used_memory"]
        f1 = aof_bytes(r)
        i1 = os.path.getsize(incr)
        ok = out["cells_confirmed"]
        stats = r.info("commandstats")
        slen = r.xlen("{main}:stream")
        smem = r.memory_usage("{main}:stream", samples=0) or 0
        res["booking"] = {
            "confirmed": ok,
            "memory_bytes": round((m1 - m0) / ok, 1),
            "memory_bytes_without_stream": None,
            "stream_entries_left": slen,
            "stream_bytes_per_entry": round(smem / max(1, slen), 1),
            "aof_bytes": round((f1 - f0) / ok, 1),
            "aof_bytes_by_command": (aof_by_command(incr, i0, i1, ok)
                                     if aof_incr(r) == incr else None),
            "redis_cpu_us_run": round((c1 - c0) * 1e6 / ok, 1),
            "redis_cpu_us_with_drain": round((c2 - c0) * 1e6 / ok, 1),
            "commands": {k[len("cmdstat_"):]:
                         round(v["calls"] / ok, 2)
                         for k, v in sorted(stats.items())},
            "commands_usec": {k[len("cmdstat_"):]:
                              round(v["usec"] / ok, 2)
                              for k, v in sorted(stats.items())},
        }
        res["booking"]["memory_bytes_without_stream"] = round(
            (m1 - m0 - smem * min(1.0, a.bookings / max(1, slen))) / ok, 1) \
            if slen else res["booking"]["memory_bytes"]
        fid = open(fam).readline().split()[0]
        res["key_kinds"] = key_kinds(r, fid)

        say("%d refusals on a sold-out session" % a.refusals)
        run(full, 10, 0, "fill")
        s.wait_worker_drained(120)
        m0 = r.info("memory")["used_memory"]
        f0 = aof_bytes(r)
        r.config_resetstat()
        c0 = proc_cpu(pid)
        out = run(full, a.refusals, 10, "refuse")
        c1 = proc_cpu(pid)
        n = out["answers"]
        m1 = r.info("memory")["used_memory"]
        f1 = aof_bytes(r)
        stats = r.info("commandstats")
        res["refusal"] = {
            "answers": n, "confirmed": out["cells_confirmed"],
            "memory_bytes": round((m1 - m0) / n, 1),
            "aof_bytes": round((f1 - f0) / n, 1),
            "redis_cpu_us": round((c1 - c0) * 1e6 / n, 1),
            "commands": {k[len("cmdstat_"):]: round(v["calls"] / n, 2)
                         for k, v in sorted(stats.items())}}

        # a crash now: how long Redis takes to serve again (its AOF read,
        # as redis.conf's rewrites leave it)
        r.config_set("auto-aof-rewrite-percentage", pct)
        time.sleep(0.3)             # serverCron starts a rewrite due
        while r.info("persistence")["aof_rewrite_in_progress"] or \
                r.info("persistence")["aof_rewrite_scheduled"]:
            time.sleep(0.05)
        aof = aof_bytes(r)
        s.stop_redis(signal.SIGKILL)
        t = time.monotonic()
        s.start_redis()
        res["restart"] = {"aof_bytes": aof,
                          "seconds_to_serve": round(time.monotonic() - t, 2),
                          "bookings_in_aof": 2000 + a.bookings + 10}
    finally:
        s.stop()
    text = json.dumps(res, indent=1, sort_keys=True)
    if a.out:
        with open(a.out, "w") as fh:
            fh.write(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
