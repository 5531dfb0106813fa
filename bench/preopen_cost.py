#!/usr/bin/python3
"""
bench/preopen_cost.py -- what a request sent before the opening costs
Redis: commands, AOF bytes, keys and stream entries per request.

For each --module (A/B, interleaved --reps times): a whole stack
(tests/integration/stack.py, dev.conf, Redis with lua-free-config/
redis.conf: AOF on), a town whose activity opens in 2036, the worker
stopped (so that Redis runs nginx's commands only); then --requests
single-cell requests of one family, each with a fresh Idempotency-Key,
all refused not_open_yet.  Counts, not rates: INFO stats
total_commands_processed and INFO persistence aof_current_size before
and after (nginx's catalogue refresher adds a GET every 500 ms per
worker, and the two INFO calls count).  A benchmark, never a test.

    bench/preopen_cost.py --module a.so --module b.so [--requests 500]
                          [--reps 2]
"""

import argparse
import json
import os
import sys
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests",
                                "integration"))

import stack as stacklib      # noqa: E402
import test_preopen           # noqa: E402  (its town)


def one(module, n):
    s = stacklib.Stack(town=test_preopen.town(test_preopen.FAR),
                       module=module, name="preopen-cost").start()
    try:
        tok = s.token(test_preopen.FID)
        s.procs["worker"].terminate()
        s.procs["worker"].wait(10)
        r = s.redis
        c0 = r.info("stats")["total_commands_processed"]
        a0 = r.info("persistence")["aof_current_size"]
        k0, x0 = r.dbsize(), r.xlen(test_preopen.STREAM)
        reasons = set()
        for _ in range(n):
            res = test_preopen.book(s, tok, ["soon-1"], uuid.uuid4().hex)
            reasons.add((res.status, res.json()["items"][0].get("reason")))
        c1 = r.info("stats")["total_commands_processed"]
        a1 = r.info("persistence")["aof_current_size"]
        return {"module": module, "requests": n, "answers": sorted(reasons),
                "commands_per_request": round((c1 - c0) / n, 2),
                "aof_bytes_per_request": round((a1 - a0) / n, 1),
                "keys_per_request": round((r.dbsize() - k0) / n, 2),
                "stream_entries": r.xlen(test_preopen.STREAM) - x0}
    finally:
        s.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--module", action="append", required=True)
    ap.add_argument("--requests", type=int, default=500)
    ap.add_argument("--reps", type=int, default=2)
    a = ap.parse_args()
    for _ in range(a.reps):
        for m in a.module:
            print(json.dumps(one(os.path.abspath(m), a.requests)),
                  flush=True)


if __name__ == "__main__":
    main()
