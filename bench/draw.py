#!/usr/bin/python3
"""
bench/draw.py -- an opening by draw (issue 23): how long after the opening
instant the last family of a 20,000-family × 10-cell draw has its answer.

  1. the benchmark's stack (PostgreSQL with fsync and synchronous_commit
     on, Redis with appendfsync always, nginx's loadtest.conf), a town of
     --families families of one child each, enrolled in one activity
     opening by draw with --cells sessions (one per day, --places places
     each, all online);
  2. the entries: each family enters every session (one request of
     --cells items, a family in four asking for the waiting list), written
     into {main}:a:draw:entries as the booking saga's step two writes them
     (the entry window's requests are not what is measured here;
     tests/integration/test_draw.py covers them);
  3. the town file loaded again with booking_opens_at --lead seconds ahead
     (the worker running); then, from the opening instant, PostgreSQL's
     own clocks: the entries persisted (draw_run.started_at), the last
     decision (draw_run.decided_at: every family booked, refused or
     waitlisted through the saga in Redis), every decision persisted by
     the worker (the stream drained), and the catalogue saying "drawn"
     (first come, first served from then on);
  4. bench/check.py with --draw: no session over its places, every entry
     decided exactly once, in the seed's order.

Prints the figures, writes --out (default bench/out/draw.json).  A
benchmark, never a test: nothing is asserted but the checker's verdict.
"""

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))

import stack as stacklib      # noqa: E402
from benchlib import say, proc_cpu  # noqa: E402


class DrawStack(stacklib.Stack):
    nginx_template = "loadtest.conf"
    pg_settings = dict(stacklib.Stack.pg_settings, fsync="on",
                       synchronous_commit="on", full_page_writes="on",
                       shared_buffers="256MB")


def town(a, opens):
    days = [dt.date(2037, 7, 6) + dt.timedelta(days=i)
            for i in range(a.cells * 7 // 5 + 7)]
    days = [d for d in days if d.isoweekday() <= 5][:a.cells]
    sessions = [{"id": "t%02d" % i, "date": d.isoformat(), "unit": "MATIN",
                 "places": a.places} for i, d in enumerate(days)]
    fams = []
    for i in range(1, a.families + 1):
        fid, cid = "f%05d" % i, "c%05d" % i
        fams.append({"id": fid, "qf": 500, "resident": True,
                     "direct_debit": False,
                     "children": [{"id": cid, "first_name": "E%d" % i,
                                   "birth_date": "2029-03-01"}],
                     "enrolments": [{"child_id": cid, "activity_id": "draw",
                                     "from": "2037-01-01",
                                     "to": "2037-12-31",
                                     "status": "validee"}]})
    return {"town": {"name": "Tirage", "timezone": "Europe/Paris"},
            "units": [{"code": "MATIN", "label": "Matin",
                       "starts": "08:30", "ends": "12:00"}],
            "activities": [{
                "id": "draw", "name": "Séjour au tirage au sort",
                "age_min": 3, "age_max": 17, "booking_opens_at": opens,
                "opening": {"mode": "draw",
                            "entries_from": "2026-01-01T12:00:00+01:00"},
                "deadline": {"working_days": 2},
                "online_share_percent": 100, "week_required": False,
                "prices": [{"qf_max": None, "cents": 900}],
                "sessions": sessions}],
            "families": fams}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--families", type=int, default=20000)
    ap.add_argument("--cells", type=int, default=10)
    ap.add_argument("--places", type=int, default=6000)
    ap.add_argument("--lead", type=float, default=20,
                    help="seconds between the load and the opening")
    ap.add_argument("--out", default=os.path.join(HERE, "out", "draw.json"))
    a = ap.parse_args()

    say("stack: %d families, %d sessions of %d places"
        % (a.families, a.cells, a.places))
    s = DrawStack(town=town(a, "2036-06-07T18:00:00+02:00"), name="draw")
    s.start()
    try:
        return run(a, s)
    finally:
        s.stop()


def run(a, s):
    # 2. the entries, as step two writes them
    now_ms = int(time.time() * 1000)
    sids = ["t%02d" % i for i in range(a.cells)]
    p = s.redis.pipeline(transaction=False)
    n = 0
    for i in range(1, a.families + 1):
        fid, cid = "f%05d" % i, "c%05d" % i
        for k, sid in enumerate(sids):
            p.hset("{main}:a:draw:entries", "%s %s %s" % (fid, cid, sid),
                   "%d %d %d" % (now_ms + i, k, 1 if i % 4 == 0 else 0))
            n += 1
        if i % 1000 == 0:
            p.execute()
    p.execute()
    say("%d entries in Redis" % n)

    # 3. the opening, --lead seconds from now
    opens = (dt.datetime.now(dt.timezone.utc)
             + dt.timedelta(seconds=a.lead)).replace(microsecond=0)
    with open(s.town_file, "w") as fh:
        json.dump(town(a, opens.isoformat()), fh)
    t0 = time.time()
    s.ctl_run("load-town", s.town_file)
    cpu0 = {k: proc_cpu(s.procs[k].pid) for k in ("worker", "redis")}
    say("town loaded again in %.1f s, opening at %s" % (time.time() - t0,
                                                         opens.isoformat()))
    if time.time() > opens.timestamp():
        say("the load took longer than --lead: the figures start late")

    def decided():
        return s.sql("select decided_at is not null from draw_run") \
            == [(True,)]
    s._wait("the draw decided", decided, timeout=600)
    cpu = {k: round(proc_cpu(s.procs[k].pid) - cpu0[k], 2)
           for k in ("worker", "redis")}
    s.wait_worker_drained(timeout=600)
    drained_at = time.time()
    # from the load to every decision persisted (the persister, the
    # waiting lists' copy in PostgreSQL, the mails queued)
    cpu_drained = {k: round(proc_cpu(s.procs[k].pid) - cpu0[k], 2)
                   for k in ("worker", "redis")}

    def drawn():
        r = s.http("GET", "/api/activities")
        return r.status == 200 and r.json()[0]["opening"].get("drawn")
    s._wait("the catalogue saying drawn", drawn, timeout=120)
    drawn_seen = time.time()

    (started, decided_at, nfam, nent) = s.sql(
        "select extract(epoch from started_at), extract(epoch from"
        " decided_at), families, entries from draw_run")[0]
    first, last = s.sql("select extract(epoch from min(created_at)),"
                        " extract(epoch from max(created_at)) from demande"
                        " where idem_key = 'dr.draw'")[0]
    counts = dict(s.sql("select i->>'status', count(*) from demande d,"
                        " jsonb_array_elements(d.items) i"
                        " where d.idem_key = 'dr.draw' group by 1"))
    o = opens.timestamp()
    res = {
        "families": nfam, "entries": nent, "places": a.places * a.cells,
        "outcomes": counts,
        "opening_to_draw_started_s": round(float(started) - o, 3),
        "opening_to_decisions_instant_s": round(float(first) - o, 3),
        "opening_to_last_decision_s": round(float(decided_at) - o, 3),
        "opening_to_all_persisted_s": round(drained_at - o, 3),
        "opening_to_first_come_published_s": round(drawn_seen - o, 3),
        "cpu_s_until_decided": cpu,
        "cpu_s_until_persisted": cpu_drained,
    }
    say("decided: %s" % json.dumps(res))

    # 4. the invariant checker
    chk = subprocess.run([sys.executable, os.path.join(HERE, "check.py"),
                          "--redis", "127.0.0.1:%d" % s.redis_port,
                          "--pg", s.pg_conninfo, "--draw", "draw",
                          "--json", a.out + ".check.json"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    print(chk.stdout.decode().rstrip())
    res["check"] = "ok" if chk.returncode == 0 else "violations"
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as fh:
        json.dump(res, fh, indent=1)
    say("wrote %s" % a.out)
    return 0 if chk.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
