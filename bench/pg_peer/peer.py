#!/usr/bin/python3
"""
peer.py -- the PostgreSQL peer of the rush benchmark: its own cluster and
database, the same booking as a transaction with row locks (book.pgbench),
run by pgbench at the same concurrency as rush.c.

    p = Peer(dir, port)          # a PostgreSQL 15 cluster of its own:
    p.start()                    # fsync on, synchronous_commit on (as Redis's
                                 # appendfsync always), max_connections 1100
    p.load(sessions, children, hot, hot_places, places)
    res = p.run(conns, seconds, first=1, nsess=1)   # bookings/s, latencies
    p.check()                    # [] or the sessions that lost a place
    p.stop()

Run alone: peer.py [--conns 64] [--seconds 5] [--dir DIR] [--port P]
starts, loads, runs book.pgbench and dup.pgbench, checks, stops.
"""

import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PGBIN = "/usr/lib/postgresql/15/bin"


def as_postgres(argv, **kw):
    if os.geteuid() == 0:
        argv = ["runuser", "-u", "postgres", "--"] + argv
    return subprocess.run(argv, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, **kw)


def pct(sorted_v, p):
    if not sorted_v:
        return 0.0
    i = min(len(sorted_v) - 1, int(p * len(sorted_v)))
    return sorted_v[i]


class Peer:

    def __init__(self, directory, port):
        self.dir = os.path.abspath(directory)
        self.port = port
        self.data = os.path.join(self.dir, "data")
        self.sock = os.path.join(self.dir, "run")
        self.started = False
        self.db = "peer"

    def start(self):
        if os.geteuid() == 0:
            d = self.dir
            while d != "/":     # postgres must traverse every parent
                if os.path.exists(d):
                    os.chmod(d, os.stat(d).st_mode | 0o005)
                d = os.path.dirname(d)
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(self.sock)
        if os.geteuid() == 0:
            for d in (self.dir, self.sock):
                shutil.chown(d, "postgres", "postgres")
        r = as_postgres([PGBIN + "/initdb", "-D", self.data, "-U", "postgres",
                         "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8",
                         "--no-sync"])
        if r.returncode:
            raise RuntimeError("initdb: " + r.stdout.decode())
        opts = ("-p %d -c listen_addresses=127.0.0.1 -k %s "
                "-c max_connections=1100 -c fsync=on "
                "-c synchronous_commit=on -c shared_buffers=256MB"
                % (self.port, self.sock))
        r = as_postgres([PGBIN + "/pg_ctl", "-D", self.data, "-w", "-t", "60",
                         "-l", os.path.join(self.dir, "log"), "-o", opts,
                         "start"])
        if r.returncode:
            raise RuntimeError("pg_ctl start: " + r.stdout.decode())
        self.started = True
        self.psql("postgres", "create database peer")

    def stop(self):
        if self.started:
            as_postgres([PGBIN + "/pg_ctl", "-D", self.data, "-m", "fast",
                         "-w", "stop"])
            self.started = False

    def psql(self, db, sql=None, file=None, vars_=None):
        argv = ["psql", "-h", self.sock, "-p", str(self.port), "-U",
                "postgres", "-d", db, "-X", "-q", "-At", "-v",
                "ON_ERROR_STOP=1"]
        for k, v in (vars_ or {}).items():
            argv += ["-v", "%s=%s" % (k, v)]
        argv += ["-f", file] if file else ["-c", sql]
        r = subprocess.run(argv, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT)
        if r.returncode:
            raise RuntimeError("psql: " + r.stdout.decode())
        return r.stdout.decode()

    def load(self, sessions, children, hot, hot_places, places):
        t = time.monotonic()
        self.psql(self.db, file=os.path.join(HERE, "schema.sql"),
                  vars_={"sessions": sessions, "children": children,
                         "hot": hot, "hot_places": hot_places,
                         "places": places})
        self.sizes = {"sessions": sessions, "children": children}
        return time.monotonic() - t

    def reset(self):
        """Empty the bookings and give every place back (between runs)."""
        self.psql(self.db, "truncate peer_booking; "
                  "update peer_session set places_left = places_online "
                  "where places_left <> places_online")
        self.psql(self.db, "vacuum analyze")

    def run(self, conns, seconds, first=1, nsess=1, script="book.pgbench"):
        """pgbench's clock starts before its connections are made (about
        5 ms each here): the run lasts seconds + conns / 100 and the rate is
        pgbench's "tps without initial connection time" (every transaction
        books one cell: the pattern never repeats a child on a session)."""
        measured = seconds
        seconds = int(round(seconds + conns / 100.0 + 0.5))
        logdir = tempfile.mkdtemp(prefix="peerlog-", dir=self.dir)
        os.chmod(logdir, 0o777)
        argv = ["pgbench", "-h", self.sock, "-p", str(self.port), "-U",
                "postgres", "-n", "-M", "prepared", "-c", str(conns),
                "-j", "2", "-T", str(seconds), "-f",
                os.path.join(HERE, script),
                "-D", "n=0", "-D", "nclients=%d" % conns,
                "-D", "children=%d" % self.sizes["children"],
                "-D", "first=%d" % first, "-D", "nsess=%d" % nsess,
                "-l", "--log-prefix", os.path.join(logdir, "tx"), self.db]
        t = time.monotonic()
        r = subprocess.run(argv, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=seconds + 120)
        wall = time.monotonic() - t
        out = r.stdout.decode()
        if r.returncode:
            raise RuntimeError("pgbench: " + out[-2000:])
        lat, per_sec = [], {}
        t0 = None
        for f in glob.glob(os.path.join(logdir, "tx*")):
            with open(f) as fh:
                for line in fh:
                    p = line.split()
                    # client tx latency_us script epoch_s epoch_us
                    us, sec = int(p[2]), int(p[4])
                    lat.append(us)
                    per_sec[sec] = per_sec.get(sec, 0) + 1
                    t0 = sec if t0 is None or sec < t0 else t0
        shutil.rmtree(logdir, ignore_errors=True)
        lat.sort()
        tps = None
        for line in out.splitlines():
            if line.startswith("tps =") and "without" in line:
                tps = float(line.split()[2])
            elif line.startswith("tps =") and tps is None:
                tps = float(line.split()[2])
        booked = int(self.psql(self.db, "select count(*) from peer_booking"))
        return {"conns": conns, "seconds": seconds, "wall_s": round(wall, 2),
                "transactions": len(lat), "tps": tps,
                "bookings": booked,
                "measured_s": measured,
                "bookings_per_s": round(tps if tps is not None and
                                        booked == len(lat) else
                                        booked / seconds, 1),
                "latency_ms": {"p50": pct(lat, 0.5) / 1e3,
                               "p99": pct(lat, 0.99) / 1e3,
                               "p999": pct(lat, 0.999) / 1e3,
                               "max": (lat[-1] / 1e3) if lat else 0},
                "series": [[s - t0, per_sec[s]] for s in sorted(per_sec)]}

    def check(self):
        """Sessions where places_left + bookings != places_online, or more
        bookings than places: [] when the peer lost nothing."""
        out = self.psql(self.db, """
            select s.id || ' online ' || s.places_online || ' left ' ||
                   s.places_left || ' booked ' || count(b.id)
              from peer_session s
              left join peer_booking b on b.session_id = s.id
             group by s.id
            having s.places_left + count(b.id) <> s.places_online
                or count(b.id) > s.places_online""")
        return [x for x in out.splitlines() if x.strip()]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--conns", type=int, default=64)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--dir", default=os.path.join(HERE, "..", "out", "peer"))
    ap.add_argument("--port", type=int, default=5541)
    a = ap.parse_args()
    p = Peer(a.dir, a.port)
    p.start()
    try:
        print("load %.1fs" % p.load(3781, 30000, 90, 2000000, 12))
        res = p.run(a.conns, a.seconds)
        res.pop("series")
        print(json.dumps(res))
        p.reset()
        res = p.run(a.conns, a.seconds, script="dup.pgbench", first=91, nsess=50)
        res.pop("series")
        print("dup:", json.dumps(res))
        bad = p.check()
        print("check:", bad or "places_left + bookings = places_online "
              "everywhere")
        return 1 if bad else 0
    finally:
        p.stop()


if __name__ == "__main__":
    sys.exit(main())
