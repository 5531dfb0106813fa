#!/usr/bin/env python3
"""What a session costs Redis (issue 20: "Redis <= 200 bytes per session").

Starts the test stack (tests/integration/stack.py: real redis-server with
lua-free-config/redis.conf, PostgreSQL, nginx with the module, the worker)
on a small bench town, then loads --bulk more sessions (gen_town.py
--bulk-sessions, guichetctl load-town) and reads Redis's memory:

  * at once, when load-town returns and every nginx worker has read the new
    catalogue (what bench/run measured until the fifth pass): used_memory
    still holds the client output buffers of the catalogue's GETs, the
    AOF rewrite's buffers, the replaced catalogue's string when a client
    still held it;
  * settled: no AOF rewrite in progress or scheduled, no client output
    buffer (omem) nor query buffer of more than 64 KB, used_memory
    stable over 1 s;
  * per key kind: MEMORY USAGE (SAMPLES 0) of every key a bulk session
    added, summed by kind ({T}:s:<sid>:left, :onsite, the catalogue...).

Prints one JSON document.  Usage:
  bench/sessionmem.py [--bulk 100000] [--families 200] [--module X.so]
                      [--pad-keys 0]
"""

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
sys.path.insert(0, HERE)

import stack as stacklib      # noqa: E402
from benchlib import redis_mem as mem, redis_settle as settle  # noqa: E402


def gen(out, bulk, a):
    argv = [sys.executable, os.path.join(HERE, "gen_town.py"),
            "--families", str(a.families), "--children",
            str(a.families * 3 // 2), "--activities", "4", "--days", "5",
            "--seed", "7", "--bulk-sessions", str(bulk), "--out", out,
            "--base-date", a.base_date, "--opens-at", a.opens_at]
    r = subprocess.run(argv, check=True, stdout=subprocess.PIPE)
    return json.loads(r.stdout)


def reloads(s):
    try:
        r = s.http("GET", "/metrics", timeout=10)
    except OSError:
        return 0                # a worker busy parsing the new catalogue
    for line in r.body.decode(errors="replace").splitlines():
        if line.startswith("guichet_catalogue_reloads_total "):
            return int(line.split()[1])
    return 0


def kinds(r, tag):
    """MEMORY USAGE summed by kind of key: {kind: [keys, bytes]} (the
    --pad-keys keys left out)."""
    out = {}
    batch = []

    def flush():
        p = r.pipeline(transaction=False)
        for _, k in batch:
            p.memory_usage(k, samples=0)
        for (kind, _), n in zip(batch, p.execute()):
            e = out.setdefault(kind, [0, 0])
            e[0] += 1
            e[1] += n or 0
        del batch[:]

    for k in r.scan_iter(count=10000):
        k = k.decode() if isinstance(k, bytes) else k
        if k.startswith("pad:"):
            continue
        if k.startswith(tag + ":s:"):
            kind = "s:<sid>:" + k.rsplit(":", 1)[1]
        elif k.startswith(tag + ":f:"):
            kind = "f:<fid>:" + k.split(":", 3)[3].split(":")[0]
        elif k.startswith(tag + ":c:"):
            kind = "c:<claim>"
        else:
            kind = k[len(tag) + 1:] if k.startswith(tag) else k
        batch.append((kind, k))
        if len(batch) >= 10000:
            flush()
    flush()
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bulk", type=int, default=100000)
    ap.add_argument("--families", type=int, default=200)
    ap.add_argument("--module")
    ap.add_argument("--pad-keys", type=int, default=0,
                    help="small keys set before (a town with a season's "
                    "bookings has millions: the main dict's table is "
                    "bigger when the sessions come)")
    a = ap.parse_args()
    # both loads of the town keep the same cells (bench/run does the same)
    a.base_date = dt.date.today().isoformat()
    a.opens_at = (dt.datetime.now().astimezone()
                  + dt.timedelta(days=1)).isoformat()

    tmp = tempfile.mkdtemp(prefix="guichet-sessionmem-")
    town = os.path.join(tmp, "town")
    meta0 = gen(town, 0, a)
    s = stacklib.Stack(town=os.path.join(town, "town.json"),
                       module=a.module, name="sessionmem")
    s.start()
    try:
        r = s.redis
        r.config_set("maxmemory", "4gb")
        tag = "{%s}" % s.town_id if hasattr(s, "town_id") else "{main}"
        p = r.pipeline(transaction=False)
        for i in range(a.pad_keys):
            p.set("pad:%d" % i, "x")
            if i % 10000 == 9999:
                p.execute()
        p.execute()
        n0 = int(s.sql("select count(*) from session")[0][0])
        k0 = kinds(r, tag)
        m0 = settle(r)
        rl = reloads(s)
        nw = os.cpu_count() or 1
        gen(town, a.bulk, a)
        t = time.monotonic()
        s.ctl_run("load-town", os.path.join(town, "town.json"))
        load_s = time.monotonic() - t
        while reloads(s) < rl + nw and time.monotonic() - t < 300:
            time.sleep(0.2)
        m1 = mem(r)
        m2 = settle(r)
        n1 = int(s.sql("select count(*) from session")[0][0])
        k1 = kinds(r, tag)
        dn = n1 - n0
        per_kind = {}
        for kind, (nk, b) in sorted(k1.items()):
            b0 = k0.get(kind, [0, 0])
            if b - b0[1] != 0 or nk != b0[0]:
                per_kind[kind] = {"keys_added": nk - b0[0],
                                  "bytes_added": b - b0[1],
                                  "bytes_per_session":
                                      round((b - b0[1]) / dn, 1)}
        res = {"sessions_before": n0, "sessions_after": n1,
               "town_sessions": meta0.get("sessions"),
               "load_town_s": round(load_s, 1),
               "catalogue_bytes": r.strlen(tag + ":catalogue"),
               "before": m0, "at_once": m1, "settled": m2,
               "bytes_per_session_at_once":
                   round((m1["used_memory"] - m0["used_memory"]) / dn, 1),
               "bytes_per_session_settled":
                   round((m2["used_memory"] - m0["used_memory"]) / dn, 1),
               "hashtable_bytes_per_session":
                   round(((m2["hashtable_main"] or 0)
                          - (m0["hashtable_main"] or 0)) / dn, 1),
               "dataset_bytes_per_session":
                   round((m2["used_memory_dataset"]
                          - m0["used_memory_dataset"]) / dn, 1),
               "memory_usage_by_kind": per_kind}
        print(json.dumps(res, indent=1))
    finally:
        s.stop()


if __name__ == "__main__":
    main()
