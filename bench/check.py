#!/usr/bin/python3
"""
check.py -- the invariant checker of the opening-day rush.

Proves, from the answers rush.c recorded (--log, JSON lines), Redis and
PostgreSQL, after the worker drained the stream:

  1. no session over its online places (answers, Redis {main}:s:<sid>:booked,
     PostgreSQL booking rows);
  2. no child twice on overlapping slots (answers and PostgreSQL): two
     confirmed cells of one child on one date whose units' [starts, ends)
     intersect, or the same session twice;
  3. every confirmed cell present in PostgreSQL exactly once, as the same
     child and session;
  4. nothing in PostgreSQL that no answer confirmed, except bookings of
     requests that never got a final 200 (timeouts, 503 after the retries:
     the client does not know their fate, "unacknowledged") and never a
     voided (orphan released) booking;
     (a booking a swap's confirmed answer "released" counts as cancelled
     since: never confirmed in PostgreSQL, issue 24)
  5. places taken + places left = online places, for every session:
     SCARD {main}:s:<sid>:booked + BITFIELD {main}:s:<sid>:left GET u32 0 =
     session.places_online; and Redis's booked sets hold what PostgreSQL
     holds once drained.

Prints every violation (the first --show of each kind, and the count) and
exits 1 if there is any, 0 otherwise; 2 on a usage or connection error.

Usage: check.py --redis HOST:PORT --pg DSN [--log FILE ...] [--drain-timeout S]
                [--json OUT] [--show N]
"""

import argparse
import collections
import json
import sys
import time

import psycopg2
import redis

# the hash tag of the town's keys ({<town id>}, --town)
TAG = "{main}"


class Report:
    def __init__(self, show):
        self.show = show
        self.kinds = collections.OrderedDict()
        self.info = collections.OrderedDict()

    def violation(self, kind, text):
        lst = self.kinds.setdefault(kind, [])
        lst.append(text)
        if len(lst) <= self.show:
            print("VIOLATION %s: %s" % (kind, text))

    def count(self):
        return sum(len(v) for v in self.kinds.values())


def read_logs(paths, rep):
    """-> (confirmed {bid: (fid, cid, sid, key)}, keys {key: final status},
    refused count)"""
    confirmed = {}
    keys = {}
    released = set()
    nrefused = 0
    nlines = 0
    for path in paths:
        with open(path, encoding="utf-8") as fh:
            for ln, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                nlines += 1
                try:
                    rec = json.loads(line)
                except ValueError:
                    rep.violation("log_unreadable", "%s:%d" % (path, ln))
                    continue
                key, fid, st = rec["k"], rec["f"], rec["s"]
                if key in keys:
                    rep.violation("key_reused_by_client",
                                  "%s in %s:%d" % (key, path, ln))
                keys[key] = (fid, st)
                body = rec.get("b")
                if st != 200:
                    continue
                if not isinstance(body, dict) or "items" not in body:
                    rep.violation("answer_unreadable",
                                  "%s:%d: 200 without items" % (path, ln))
                    continue
                for it in body["items"]:
                    rel = it.get("released")
                    if it.get("status") == "confirmed" and \
                            isinstance(rel, dict) and rel.get("booking_id"):
                        # a swap (issue 24): that booking is cancelled now
                        released.add(rel["booking_id"])
                    if it.get("status") == "confirmed":
                        bid = it.get("booking_id")
                        cell = (fid, it.get("child_id"), it.get("session_id"),
                                key)
                        if not bid:
                            rep.violation("answer_unreadable",
                                          "%s:%d: confirmed without "
                                          "booking_id" % (path, ln))
                        elif bid in confirmed and confirmed[bid] != cell:
                            rep.violation("booking_id_clash",
                                          "%s given to %s and %s"
                                          % (bid, confirmed[bid], cell))
                        else:
                            confirmed[bid] = cell
                    else:
                        nrefused += 1
    # a booking a later swap released is no longer confirmed (answered
    # confirmed, then cancelled by the swap's release)
    for bid in released:
        confirmed.pop(bid, None)
    rep.released = released
    rep.info["answers_released_by_swaps"] = len(released)
    rep.info["log_lines"] = nlines
    rep.info["answers_confirmed_cells"] = len(confirmed)
    rep.info["answers_refused_cells"] = nrefused
    rep.info["requests_without_final_200"] = sum(
        1 for (_, st) in keys.values() if st != 200)
    return confirmed, keys


def wait_drained(r, cur, timeout, rep):
    """Wait until the worker has persisted everything of {main}:stream:
    no entry after its position in PostgreSQL (stream_position, 0050)
    (bounded)."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        cur.execute("select last_id from stream_position")
        pos = cur.fetchone()[0]
        left = len(r.xrange(TAG + ":stream", "(" + pos, "+"))
        last = "position %s, %d entries after it" % (pos, left)
        if left == 0:
            rep.info["drain"] = last
            return True
        if time.monotonic() > deadline:
            rep.violation("worker_not_drained", "after %ss: %s"
                          % (timeout, last))
            return False
        time.sleep(0.2)


def overlaps(cells, sess, units):
    """cells: [(bid, sid)] of one child -> [(bid1, bid2)] overlapping."""
    by_date = collections.defaultdict(list)
    for bid, sid in cells:
        s = sess.get(sid)
        if s is None:
            continue
        st, en = units[s[1]]
        by_date[s[0]].append((st, en, bid, sid))
    out = []
    for lst in by_date.values():
        if len(lst) < 2:
            continue
        lst.sort()
        for i in range(1, len(lst)):
            # sorted by start: compare with the latest end seen so far
            for j in range(i):
                if lst[j][1] > lst[i][0]:
                    out.append((lst[j][2], lst[i][2], lst[j][3], lst[i][3]))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--redis", default="127.0.0.1:6390")
    ap.add_argument("--pg", required=True, help="libpq DSN")
    ap.add_argument("--log", action="append", default=[])
    ap.add_argument("--drain-timeout", type=float, default=60)
    ap.add_argument("--json", help="write the report here")
    ap.add_argument("--show", type=int, default=20)
    ap.add_argument("--town", default="main",
                    help="the town checked: its keys {ID}:..., its schema "
                    "town_ID (default main, the database's own)")
    a = ap.parse_args()
    global TAG
    TAG = "{%s}" % a.town

    rep = Report(a.show)
    host, _, port = a.redis.rpartition(":")
    try:
        r = redis.Redis(host=host or "127.0.0.1", port=int(port),
                        decode_responses=True, socket_timeout=30)
        r.ping()
        pg = psycopg2.connect(a.pg)
    except Exception as e:      # noqa: BLE001 -- report and stop
        print("check.py: cannot connect: %s" % e, file=sys.stderr)
        return 2
    pg.set_session(readonly=True, autocommit=True)
    cur = pg.cursor()
    if a.town != "main":
        cur.execute("select set_config('search_path', %s, false)",
                    ("town_" + a.town,))

    confirmed, keys = read_logs(a.log, rep)
    wait_drained(r, cur, a.drain_timeout, rep)

    cur.execute("select code, starts_min, ends_min from unit")
    units = {c: (s, e) for c, s, e in cur.fetchall()}
    cur.execute("select id, date, unit_code, places_online from session")
    sess = {}
    online = {}
    for sid, d, u, po in cur.fetchall():
        sess[sid] = (d, u)
        online[sid] = po
    rep.info["sessions"] = len(sess)

    # --- answers alone -------------------------------------------------
    per_sess = collections.Counter()
    per_child = collections.defaultdict(list)
    seen_cell = {}
    for bid, (fid, cid, sid, key) in confirmed.items():
        per_sess[sid] += 1
        per_child[cid].append((bid, sid))
        if (cid, sid) in seen_cell:
            rep.violation("child_twice_answers",
                          "%s confirmed twice on %s (%s, %s)"
                          % (cid, sid, seen_cell[(cid, sid)], bid))
        seen_cell[(cid, sid)] = bid
        if sid not in sess:
            rep.violation("unknown_session_confirmed", "%s %s" % (bid, sid))
    for sid, n in per_sess.items():
        if sid in online and n > online[sid]:
            rep.violation("oversold_answers", "%s: %d confirmed, %d online"
                          % (sid, n, online[sid]))
    for cid, cells in per_child.items():
        for b1, b2, s1, s2 in overlaps(cells, sess, units):
            if s1 != s2:
                rep.violation("overlap_answers", "%s holds %s (%s) and %s "
                              "(%s)" % (cid, s1, b1, s2, b2))

    # --- PostgreSQL ----------------------------------------------------
    cur.execute("""select b.id, b.family_id, b.child_id, b.session_id,
                          d.idem_key
                     from booking b
                     join demande d on d.number = b.demande_number
                    where b.status = 'confirmed'""")
    pg_rows = cur.fetchall()
    rep.info["postgres_bookings"] = len(pg_rows)
    pg_by_id = {}
    for bid, fid, cid, sid, key in pg_rows:
        if bid in pg_by_id:
            rep.violation("postgres_duplicate", bid)
        pg_by_id[bid] = (fid, cid, sid, key)
    for bid in getattr(rep, "released", ()):
        if bid in pg_by_id:
            rep.violation("released_still_confirmed",
                          "%s released by a swap, confirmed in PostgreSQL"
                          % bid)
    for bid, cell in confirmed.items():
        got = pg_by_id.get(bid)
        if got is None:
            rep.violation("confirmed_not_in_postgres", "%s %s" % (bid, cell))
        elif got[:3] != cell[:3]:
            rep.violation("postgres_differs", "%s answer %s postgres %s"
                          % (bid, cell[:3], got[:3]))
    unack = 0
    promoted = 0
    for bid, (fid, cid, sid, key) in pg_by_id.items():
        if bid in confirmed:
            continue
        if key.startswith("wl."):
            promoted += 1       # a waiting list's promotion (issue 23):
            continue            # the worker's request, no client's answer
        k = keys.get(key)
        if k is not None and k[0] == fid and k[1] != 200:
            unack += 1          # the client never learnt this one's fate
        elif not a.log:
            pass                # no answers given: PostgreSQL checks only
        else:
            rep.violation("postgres_not_confirmed",
                          "%s (%s %s key %s) confirmed by no answer"
                          % (bid, cid, sid, key))
    rep.info["postgres_unacknowledged"] = unack
    rep.info["postgres_promoted"] = promoted
    cur.execute("""select v.id from voided_booking v
                     join booking b on b.id = v.id
                    where b.status = 'confirmed'""")
    for (bid,) in cur.fetchall():
        rep.violation("voided_in_postgres", bid)
    cur.execute("""select session_id, count(*) from booking
                    where status = 'confirmed' group by session_id""")
    pg_count = dict(cur.fetchall())
    for sid, n in pg_count.items():
        if n > online.get(sid, 0):
            rep.violation("oversold_postgres", "%s: %d rows, %d online"
                          % (sid, n, online.get(sid, 0)))
    cur.execute("""select b1.child_id, b1.session_id, b2.session_id
                     from booking b1
                     join session s1 on s1.id = b1.session_id
                     join unit u1 on u1.code = s1.unit_code
                     join booking b2 on b2.child_id = b1.child_id
                                    and b2.id > b1.id
                                    and b2.status = 'confirmed'
                     join session s2 on s2.id = b2.session_id
                                    and s2.date = s1.date
                     join unit u2 on u2.code = s2.unit_code
                    where b1.status = 'confirmed'
                      and u1.starts_min < u2.ends_min
                      and u2.starts_min < u1.ends_min""")
    for cid, s1, s2 in cur.fetchall():
        rep.violation("overlap_postgres", "%s holds %s and %s" % (cid, s1, s2))

    # --- Redis ---------------------------------------------------------
    sids = list(sess)
    booked_total = 0
    missing_left = 0
    for i in range(0, len(sids), 2000):
        chunk = sids[i:i + 2000]
        p = r.pipeline(transaction=False)
        for sid in chunk:
            p.execute_command("BITFIELD", TAG + ":s:%s:left" % sid,
                              "GET", "u32", "0")
            p.exists(TAG + ":s:%s:left" % sid)
            p.scard(TAG + ":s:%s:booked" % sid)
        res = p.execute()
        for j, sid in enumerate(chunk):
            left, exists, nb = res[3 * j][0], res[3 * j + 1], res[3 * j + 2]
            booked_total += nb
            if not exists:
                missing_left += 1
                if nb:
                    rep.violation("left_missing", "%s: %d booked, no :left"
                                  % (sid, nb))
                continue
            if nb > online[sid]:
                rep.violation("oversold_redis", "%s: %d booked, %d online"
                              % (sid, nb, online[sid]))
            if left + nb != online[sid]:
                rep.violation("places_mismatch", "%s: left %d + booked %d != "
                              "online %d" % (sid, left, nb, online[sid]))
            if nb != pg_count.get(sid, 0):
                rep.violation("redis_postgres_differ",
                              "%s: redis %d booked, postgres %d"
                              % (sid, nb, pg_count.get(sid, 0)))
    rep.info["redis_booked"] = booked_total
    rep.info["sessions_without_left_key"] = missing_left
    by_sess = collections.defaultdict(list)
    for bid, (_, _, sid, _) in confirmed.items():
        by_sess[sid].append(bid)
    items = list(by_sess.items())
    for i in range(0, len(items), 500):
        p = r.pipeline(transaction=False)
        for sid, bids in items[i:i + 500]:
            p.smismember(TAG + ":s:%s:booked" % sid, bids)
        for (sid, bids), flags in zip(items[i:i + 500], p.execute()):
            for bid, ok in zip(bids, flags):
                if not ok:
                    rep.violation("confirmed_not_in_redis", "%s %s"
                                  % (bid, sid))

    n = rep.count()
    for kind, lst in rep.kinds.items():
        print("  %-28s %d" % (kind, len(lst)))
    print("check: %s; %s" % (
        "%d violation(s)" % n if n else "no violation",
        ", ".join("%s %s" % kv for kv in rep.info.items())))
    if a.json:
        with open(a.json, "w") as fh:
            json.dump({"violations": n,
                       "by_kind": {k: len(v) for k, v in rep.kinds.items()},
                       "examples": {k: v[:a.show]
                                    for k, v in rep.kinds.items()},
                       "info": rep.info}, fh, indent=1, default=str)
    return 1 if n else 0


if __name__ == "__main__":
    sys.exit(main())
