#!/usr/bin/python3
"""
promote.py -- waiting lists' promotions per second after a mass
cancellation (issue 23), and the invariant checker over what follows.

On its own stack (tests/integration/stack.py: Redis appendfsync always,
PostgreSQL, guichet-worker, nginx with the module), a town of --sessions
sessions (one a day, --places places each, all online) and --places +
--waiting families of one child each, enrolled:

  1. the first --places children book every session (full);
  2. the --waiting others join every session's list ("waitlist": true),
     in the same order on each;
  3. the mass cancellation: every booking is cancelled (DELETE, --conns
     in parallel), sessions x places freed places;
  4. the worker's promoter books the lists' first children (one booking
     saga each, worker/promote.c): the clock runs from the first
     cancellation sent until the lists have moved by sessions x places
     (Redis's LLEN summed, polled every 20 ms) and the worker drained
     the promotions to PostgreSQL.

Reported (JSON on stdout, or --json FILE): the cancellations' time, the
promotions' time and promotions per second (from the first cancellation,
and from the last cancellation answered), the drain, then bench/check.py
(invariants 1-6; 6: nobody booked and listed, positions dense, no place
online while a family waits).  Exits 1 on a violation, 2 when the run
failed.  No figure is ever asserted.

Usage: bench/promote.py [--sessions N] [--places N] [--waiting N]
                        [--conns N] [--json FILE]
"""

import argparse
import concurrent.futures
import json
import os
import subprocess
import sys
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))

import stack as stacklib      # noqa: E402


def cpu_s(pid):
    """A process's CPU time (user + system), in seconds."""
    with open("/proc/%d/stat" % pid) as fh:
        f = fh.read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def town(n_sessions, places, waiting):
    kids = places + waiting
    sessions = []
    for i in range(n_sessions):
        # one a day from 2027-03-01, every day of the year (explicit
        # sessions: no calendar, no holiday skipped)
        y, d = 2027, 60 + i
        import datetime as dt
        day = dt.date(y, 1, 1) + dt.timedelta(days=d)
        sessions.append({"id": "p%04d" % i, "date": day.isoformat(),
                         "unit": "JOUR", "places": places})
    fams = []
    for k in range(kids):
        fid, cid = "f%03d" % k, "c%03d" % k
        fams.append({
            "id": fid, "qf": 500, "resident": True, "direct_debit": False,
            "children": [{"id": cid, "first_name": "Enfant%d" % k,
                          "birth_date": "2018-03-01"}],
            "enrolments": [{"child_id": cid, "activity_id": "promo",
                            "from": "2027-01-01", "to": "2027-12-31",
                            "status": "validee"}]})
    return {
        "town": {"name": "Promotions", "timezone": "Europe/Paris"},
        "units": [{"code": "JOUR", "label": "Journée", "starts": "08:30",
                   "ends": "17:30"}],
        "activities": [{
            "id": "promo", "name": "Centre", "age_min": 3, "age_max": 17,
            "booking_opens_at": "2026-01-01T18:00:00+01:00",
            "deadline": {"working_days": 2}, "online_share_percent": 100,
            "week_required": False,
            "prices": [{"qf_max": None, "cents": 500}],
            "sessions": sessions}],
        "families": fams,
    }


def book_all(s, token, cid, sids, wait):
    """cid on every session of sids, 100 cells a request."""
    out = []
    for i in range(0, len(sids), 100):
        items = [dict({"child_id": cid, "session_id": sid},
                      **({"waitlist": True} if wait else {}))
                 for sid in sids[i:i + 100]]
        r = s.http("POST", "/api/bookings", token=token,
                   headers={"Idempotency-Key": uuid.uuid4().hex},
                   json={"items": items})
        if r.status != 200:
            raise RuntimeError("booking: %r" % r)
        out += r.json()["items"]
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sessions", type=int, default=200)
    ap.add_argument("--places", type=int, default=10)
    ap.add_argument("--waiting", type=int, default=12)
    ap.add_argument("--conns", type=int, default=32)
    ap.add_argument("--json")
    a = ap.parse_args()

    res = {"sessions": a.sessions, "places": a.places, "waiting": a.waiting,
           "conns": a.conns}
    t = town(a.sessions, a.places, a.waiting)
    sids = [x["id"] for x in t["activities"][0]["sessions"]]
    s = stacklib.Stack(town=t, name="bench-promote")
    rc = 0
    try:
        s.start()
        tok = s.tokens()
        kids = ["f%03d" % k for k in range(a.places + a.waiting)]

        # 1, 2: full sessions, then the lists
        bids = []
        owner = {}
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            for f, items in zip(kids[:a.places], pool.map(
                    lambda f: book_all(s, tok[f], "c" + f[1:], sids, False),
                    kids[:a.places])):
                assert all(i["status"] == "confirmed" for i in items), items
                bids += [(i["booking_id"], i["session_id"]) for i in items]
                for i in items:
                    owner[i["booking_id"]] = f
        for f in kids[a.places:]:           # in order: the same on each
            items = book_all(s, tok[f], "c" + f[1:], sids, True)
            assert all(i["status"] == "waitlisted" for i in items), items[:3]
        s.wait_worker_drained(120)
        listed = sum(s.redis.llen("{main}:s:%s:wait" % sid) for sid in sids)
        res["listed_before"] = listed
        res["bookings_before"] = len(bids)

        # 3: the mass cancellation
        def cancel(bid):
            r = s.http("DELETE", "/api/bookings/" + bid,
                       token=tok[owner[bid]])
            return r.status, time.monotonic()

        expected = listed - min(listed, len(bids))
        cpu0 = {k: cpu_s(s.procs[k].pid) for k in ("worker", "redis")}
        t0 = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(a.conns) as pool:
            answers = list(pool.map(cancel, [b for b, _ in bids]))
        t_cancelled = max(at for _, at in answers)
        res["cancellations"] = len(answers)
        res["cancellations_not_200"] = sum(1 for st, _ in answers
                                           if st != 200)
        res["cancellations_s"] = round(t_cancelled - t0, 3)

        # 4: the promoter moves the lists (a bound: 10 minutes)
        while True:
            p = s.redis.pipeline(transaction=False)
            for sid in sids:
                p.llen("{main}:s:%s:wait" % sid)
            now_listed = sum(p.execute())
            if now_listed <= expected:
                break
            if time.monotonic() - t0 > 600:
                raise RuntimeError("the lists never moved: %d listed"
                                   % now_listed)
            time.sleep(0.02)
        t_promoted = time.monotonic()
        promoted = listed - now_listed
        # CPU from the first cancellation to the last promotion (the
        # worker: promotions and some persistence; Redis: the
        # cancellations too), per promotion
        for k in ("worker", "redis"):
            used = cpu_s(s.procs[k].pid) - cpu0[k]
            res["cpu_%s_s" % k] = round(used, 3)
            res["cpu_%s_ms_per_promotion" % k] = (
                round(used * 1000 / promoted, 3) if promoted else None)
        res["promotions"] = promoted
        res["promotions_s_from_first_cancel"] = round(t_promoted - t0, 3)
        res["promotions_per_s"] = round(promoted / (t_promoted - t0), 1)
        res["promotions_per_s_after_last_cancel"] = (
            round(promoted / (t_promoted - t_cancelled), 1)
            if t_promoted > t_cancelled else None)
        s.wait_worker_drained(300)
        res["promoted_and_persisted_s"] = round(time.monotonic() - t0, 3)
        res["postgres_promotions"] = s.sql(
            "select count(*) from demande where idem_key like 'wl.%%'")[0][0]

        # the invariants, waiting lists included
        argv = [sys.executable, os.path.join(HERE, "check.py"),
                "--redis", "127.0.0.1:%d" % s.redis_port,
                "--pg", s.pg_conninfo, "--drain-timeout", "120"]
        ck = subprocess.run(argv, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, timeout=900)
        res["check"] = ck.stdout.decode()[-3000:]
        res["check_exit"] = ck.returncode
        rc = 1 if ck.returncode else 0
    except Exception as e:      # noqa: BLE001 -- report, keep the figures
        import traceback
        traceback.print_exc()
        res["error"] = "%s: %s" % (type(e).__name__, e)
        rc = 2
    finally:
        s.stop()

    text = json.dumps(res, indent=1)
    if a.json:
        with open(a.json, "w") as fh:
            fh.write(text + "\n")
    print(text)
    return rc


if __name__ == "__main__":
    sys.exit(main())
