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
     SCARD {main}:s:<sid>:booked + BITFIELD {main}:s:<sid>:left GET u32 0
     (+ the places held by waiting lists' offers, {main}:s:<sid>:held) =
     session.places_online; and Redis's booked sets hold what PostgreSQL
     holds once drained;
  6. waiting lists (issue 23), once the worker caught up (its promoter
     is given --promote-timeout to make it so): nobody both booked
     (PostgreSQL) and listed or offered a place on a session; positions
     dense (no child twice on a list, every child on a list has its
     entry in :waiters, every entry is on the list or offered, and the
     family's {main}:f:<fid>:waits names it); no place online while a
     list is not empty (an eligible family waits: the promoter books or
     offers, an ineligible one leaves; a list past its session's booking
     deadline is emptied too);
  7. draws (issue 23: every activity with a draw_run, or --draw ID): the
     draw decided; every family with entries (draw_entry) decided exactly
     once (one demande with the Idempotency-Key dr.<activity>), no
     decision without entries; each entry in its family's decision exactly
     once, the family's entries in their order; the decisions numbered in
     the public order (SHA-256 of "<seed>:<family id>", recomputed here);
     "dr." bookings are the draw's, not a client's answer.

Prints every violation (the first --show of each kind, and the count) and
exits 1 if there is any, 0 otherwise; 2 on a usage or connection error.

Usage: check.py --redis HOST:PORT --pg DSN [--log FILE ...] [--drain-timeout S]
                [--promote-timeout S] [--json OUT] [--show N]
                [--draw ACTIVITY ...]
"""

import argparse
import collections
import hashlib
import json
import os
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


def waitlists_now(r):
    """{sid: (list, waiters {cid: fid}, offered {cid}, left)} of every
    session with a list or an offer."""
    sids = set(r.smembers(TAG + ":waiting"))
    sids |= {m.split(" ")[0] for m in r.zrange(TAG + ":offers", 0, -1)}
    out = {}
    sids = sorted(sids)
    for i in range(0, len(sids), 500):
        p = r.pipeline(transaction=True)
        for sid in sids[i:i + 500]:
            p.lrange(TAG + ":s:%s:wait" % sid, 0, -1)
            p.hgetall(TAG + ":s:%s:waiters" % sid)
            p.hkeys(TAG + ":s:%s:offer" % sid)
            p.execute_command("BITFIELD", TAG + ":s:%s:left" % sid,
                              "GET", "u32", "0")
        res = p.execute()
        for j, sid in enumerate(sids[i:i + 500]):
            lst, w, off, left = res[4 * j:4 * j + 4]
            out[sid] = (lst, {c: v.split(" ")[1] for c, v in w.items()
                              if len(v.split(" ")) > 1},
                        set(off), left[0])
    return out


def check_waitlists(r, cur, rep, timeout, known):
    """Invariant 6 (the module docstring).  A list past its session's
    booking deadline is emptied by the promoter too (each entry refused
    "closed"), so no session is set aside."""
    # the promoter catches up: no place online while a list waits
    deadline = time.monotonic() + timeout
    while True:
        lists = waitlists_now(r)
        waiting_with_place = [sid for sid, (lst, _, _, left)
                              in lists.items() if lst and left > 0]
        if not waiting_with_place or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    for sid in waiting_with_place:
        rep.violation("place_free_while_waiting",
                      "%s: %d online, %d waiting"
                      % (sid, lists[sid][3], len(lists[sid][0])))
    cur.execute("""select session_id, child_id from booking
                    where status = 'confirmed'""")
    booked = set(cur.fetchall())
    nlisted = 0
    for sid, (lst, waiters, offered, left) in lists.items():
        if sid not in known:
            rep.violation("waitlist_unknown_session", sid)
        nlisted += len(lst)
        if len(set(lst)) != len(lst):
            rep.violation("waitlist_child_twice", "%s: %s" % (sid, lst))
        for cid in lst:
            if cid not in waiters:
                rep.violation("waitlist_without_entry", "%s %s" % (sid, cid))
        for cid in set(lst) | offered:
            if (sid, cid) in booked:
                rep.violation("waitlist_and_booked", "%s %s" % (sid, cid))
        for cid, fid in waiters.items():
            if cid not in lst and cid not in offered:
                rep.violation("waitlist_entry_off_list", "%s %s"
                              % (sid, cid))
            elif not r.hexists(TAG + ":f:%s:waits" % fid, sid + " " + cid):
                rep.violation("waitlist_family_index", "%s %s (%s)"
                              % (sid, cid, fid))
    rep.info["waitlisted"] = nlisted
    rep.info["offers"] = sum(len(v[2]) for v in lists.values())


def draw_rank(seed, family):
    """docs/rules.md, "Opening by draw": SHA-256 of "<seed>:<family id>"."""
    return hashlib.sha256((seed + ":" + family).encode()).hexdigest()


def check_draws(cur, only, rep):
    """Invariant 7: every entry of each draw decided exactly once, in the
    public order."""
    cur.execute("select to_regclass('draw_run') is not null")
    if not cur.fetchone()[0]:
        return
    cur.execute("select activity_id, seed, decided_at is not null"
                " from draw_run")
    runs = [r for r in cur.fetchall() if not only or r[0] in only]
    for aid in only:
        if aid not in [r[0] for r in runs]:
            rep.violation("draw_not_started", aid)
    for aid, seed, decided in runs:
        if not decided:
            rep.violation("draw_not_decided", aid)
        cur.execute("select family_id, child_id, session_id, at_ms, idx"
                    " from draw_entry where activity_id = %s", (aid,))
        fams = collections.defaultdict(list)
        for fid, cid, sid, at, idx in cur.fetchall():
            fams[fid].append((at, idx, cid, sid))
        cur.execute("select number, family_id, items from demande"
                    " where idem_key = %s order by number", ("dr." + aid,))
        got = collections.defaultdict(list)
        order = []
        for number, fid, items in cur.fetchall():
            got[fid].append(items)
            order.append(fid)
        for fid, cells in fams.items():
            dec = got.get(fid, [])
            if len(dec) != 1:
                rep.violation("draw_decided_%s" % ("never" if not dec
                                                   else "twice"),
                              "%s: family %s, %d decisions"
                              % (aid, fid, len(dec)))
                continue
            want = [(c, x) for _, _, c, x in sorted(cells)]
            have = [(i.get("child_id"), i.get("session_id"))
                    for i in dec[0]]
            if have != want:
                rep.violation("draw_cells_differ", "%s: family %s decided "
                              "%s, entered %s" % (aid, fid, have, want))
        for fid in got:
            if fid not in fams:
                rep.violation("draw_decision_without_entry",
                              "%s: family %s" % (aid, fid))
        want_order = sorted(fams, key=lambda f: (draw_rank(seed, f), f))
        if [f for f in order if f in fams] != want_order:
            rep.violation("draw_order", "%s: the decisions do not follow "
                          "the seed's order" % aid)
        rep.info["draw_%s_families" % aid] = len(fams)
        rep.info["draw_%s_entries" % aid] = sum(len(v) for v in fams.values())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--redis", default="127.0.0.1:6390")
    ap.add_argument("--pg", required=True, help="libpq DSN")
    ap.add_argument("--log", action="append", default=[])
    ap.add_argument("--drain-timeout", type=float, default=60)
    ap.add_argument("--promote-timeout", type=float, default=30,
                    help="seconds the promoter gets to fill the places "
                    "online while families wait (a bound, not a measure)")
    ap.add_argument("--json", help="write the report here")
    ap.add_argument("--show", type=int, default=20)
    ap.add_argument("--draw", action="append", default=[],
                    help="a draw's activity to check (default: every "
                    "activity with a draw_run)")
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
    drawn = 0
    for bid, (fid, cid, sid, key) in pg_by_id.items():
        if bid in confirmed:
            continue
        if key.startswith("wl."):
            promoted += 1       # a waiting list's promotion (issue 23):
            continue            # the worker's request, no client's answer
        if key.startswith("dr."):
            drawn += 1          # a draw's decision (issue 23): the same
            continue
        k = keys.get(key)
        if k is not None and k[0] == fid and k[1] != 200:
            unack += 1          # the client never learnt this one's fate
        elif not a.log:
            pass                # no answers given: PostgreSQL checks only
        else:
            rep.violation("postgres_not_confirmed",
                          "%s (%s %s key %s) confirmed by no answer"
                          % (bid, cid, sid, key))
    rep.info["postgres_drawn"] = drawn
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
            p.get(TAG + ":s:%s:held" % sid)
        res = p.execute()
        for j, sid in enumerate(chunk):
            left, exists, nb = res[4 * j][0], res[4 * j + 1], res[4 * j + 2]
            held = int(res[4 * j + 3] or 0)
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
            if left + nb + held != online[sid]:
                rep.violation("places_mismatch", "%s: left %d + booked %d + "
                              "held %d != online %d"
                              % (sid, left, nb, held, online[sid]))
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

    check_waitlists(r, cur, rep, a.promote_timeout, sess)
    check_draws(cur, a.draw, rep)

    n = rep.count()
    for kind, lst in rep.kinds.items():
        print("  %-28s %d" % (kind, len(lst)))
    print("check: %s; %s" % (
        "%d violation(s)" % n if n else "no violation",
        ", ".join("%s %s" % kv for kv in rep.info.items())))
    if a.json:
        os.makedirs(os.path.dirname(os.path.abspath(a.json)), exist_ok=True)
        with open(a.json, "w") as fh:
            json.dump({"violations": n,
                       "by_kind": {k: len(v) for k, v in rep.kinds.items()},
                       "examples": {k: v[:a.show]
                                    for k, v in rep.kinds.items()},
                       "info": rep.info}, fh, indent=1, default=str)
    return 1 if n else 0


if __name__ == "__main__":
    sys.exit(main())
