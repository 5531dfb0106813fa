#!/usr/bin/python3
"""
gen_town.py -- the opening-day rush town and its workload, deterministic.

Writes into OUT (default bench/out/town):

  town.json          the town file (shared/TOWN-FILE.md format), loaded with
                     `guichetctl load-town`.  No passwords: load testers get
                     bearer tokens from `guichetctl tokens`.
  rush.tsv           the rush workload, one request a line, in arrival order:
                     "<family_id>\t<ncells>\t<kind>\t<body JSON>"; rush.c gives
                     each a unique Idempotency-Key.  kind: plain | conflict
                     (the request itself holds overlapping cells of two
                     activities for one child) | multi (several children).
  families.tsv       "<family_id> <child_id> [<child_id> ...]" per family, for
                     the grid modes of rush.c (single-cell, multi-cell).
  single.sessions    session ids of "bench-single" (huge places, own dates):
                     single-cell bookings per second.
  multi.sessions     session ids of "bench-multi" in date then unit order,
                     whole weeks only: 15 consecutive ids = a week x 3 units.
  full.session       one session with one online place: refusals on their own.
  year.sessions      session ids of "bench-year" in date order: a school
                     canteen's year (REPAS on Mondays, Tuesdays, Thursdays
                     and Fridays, holidays skipped, YEAR_CELLS of them): a
                     semaine type over a school year, for two children one
                     request of 2 x YEAR_CELLS cells (issue 24).
  meta.json          sizes, dates, supply and demand of the popular cells.

The rush town: ACTIVITIES activities x DAYS open days x 3 units (MATIN, REPAS,
APM, the same units in every activity, so a child holding MATIN in two
activities on one day is a conflict).  The first tenth of the activities are
"popular" (few places, most of the demand): demand >= 3x supply there.  Half
of the activities list their cells one by one (`sessions`), half use a
`calendar` block (ids "<activity>-<YYYYMMDD>-<UNIT>", holidays excluded, the
engine's rule).  All rush activities open at --opens-at; the bench activities
opened long ago.  Deadlines (9 working days) leave every cell bookable: the
first cell is at least 5 weeks after the opening.

--bulk-sessions N adds N more sessions (calendar blocks over two years, no
enrolments) for the cost-growth measure (1k vs 1M sessions loaded).

Usage: gen_town.py [--families 20000] [--children 30000] [--activities 40]
                   [--days 30] [--seed 7] [--opens-at RFC3339]
                   [--bulk-sessions 0] [--out DIR]
"""

import argparse
import datetime as dt
import json
import os
import random
import sys

UNITS = [
    {"code": "MATIN", "label": "Matin", "starts": "08:30", "ends": "12:00"},
    {"code": "REPAS", "label": "Repas", "starts": "12:00", "ends": "13:30"},
    {"code": "APM", "label": "Après-midi", "starts": "13:30", "ends": "17:30"},
]
UNIT_CODES = [u["code"] for u in UNITS]
PARIS_SUMMER = dt.timezone(dt.timedelta(hours=2))
# a school year's canteen days: 36 weeks x 4 days = 144, give or take the
# holidays; two children make the ~300 cells of issue 24's figure
YEAR_CELLS = 150

FIRST_NAMES = ["Thaïs", "Lucas", "Emma", "Noé", "Jade", "Léo", "Louise",
               "Gabriel", "Alice", "Raphaël", "Chloé", "Arthur", "Inès",
               "Hugo", "Léna", "Jules", "Zoé", "Adam", "Manon", "Nathan"]


def easter(year):
    """Gregorian Easter Sunday (anonymous algorithm)."""
    a = year % 19
    b, c = divmod(year, 100)
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    l_ = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * l_) // 451
    month, day = divmod(h + l_ - 7 * m + 114, 31)
    return dt.date(year, month, day + 1)


def holidays(year):
    e = easter(year)
    fixed = [(1, 1), (5, 1), (5, 8), (7, 14), (8, 15), (11, 1), (11, 11),
             (12, 25)]
    out = {dt.date(year, m, d) for m, d in fixed}
    out |= {e + dt.timedelta(days=1), e + dt.timedelta(days=39),
            e + dt.timedelta(days=50)}
    return out


def is_open(d):
    return d.isoweekday() <= 5 and d not in holidays(d.year)


def open_days(start, n):
    out, d = [], start
    while len(out) < n:
        if is_open(d):
            out.append(d)
        d += dt.timedelta(days=1)
    return out


def whole_weeks(start, n):
    """n Monday-to-Friday weeks with no holiday, from start (a Monday)."""
    weeks, d = [], start
    while len(weeks) < n:
        days = [d + dt.timedelta(days=i) for i in range(5)]
        if all(is_open(x) for x in days):
            weeks.append(days)
        d += dt.timedelta(days=7)
    return weeks


def monday_on_or_after(d):
    return d + dt.timedelta(days=(7 - d.weekday()) % 7)


def sid(act, day, unit):
    return "%s-%s-%s" % (act, day.strftime("%Y%m%d"), unit)


def rfc3339(t):
    return t.isoformat(timespec="seconds")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--families", type=int, default=20000)
    ap.add_argument("--children", type=int, default=30000)
    ap.add_argument("--activities", type=int, default=40)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--opens-at", default=None,
                    help="rush opening instant, RFC 3339 (default: now+10s)")
    ap.add_argument("--base-date", default=None,
                    help="dates are laid from here (default: the opening's "
                    "date); keep it fixed across reloads of one town")
    ap.add_argument("--bulk-sessions", type=int, default=0)
    ap.add_argument("--requests-per-family", type=float, default=1.3)
    ap.add_argument("--out", default=os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "out", "town"))
    a = ap.parse_args()

    if a.children < a.families:
        sys.exit("gen_town: --children must be >= --families")
    if a.activities < 2 or a.days < 1:
        sys.exit("gen_town: need >= 2 activities and >= 1 day")

    rng = random.Random(a.seed)
    if a.opens_at:
        opens = dt.datetime.fromisoformat(a.opens_at)
    else:
        opens = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=10))
    opens = opens.astimezone(PARIS_SUMMER).replace(microsecond=0)
    opens_s = rfc3339(opens)
    long_ago = rfc3339(opens - dt.timedelta(days=1))

    base = dt.date.fromisoformat(a.base_date) if a.base_date \
        else opens.date()
    if base < opens.date() - dt.timedelta(days=7):
        sys.exit("gen_town: --base-date is more than a week before the "
                 "opening: the deadlines would close the first cells")
    start = monday_on_or_after(base + dt.timedelta(days=35))
    rush_days = open_days(start, a.days)
    after = monday_on_or_after(rush_days[-1] + dt.timedelta(days=1))
    single_days = open_days(after, 30)
    after = monday_on_or_after(single_days[-1] + dt.timedelta(days=1))
    multi_weeks = whole_weeks(after, 6)
    full_day = monday_on_or_after(multi_weeks[-1][-1] + dt.timedelta(days=1))
    while not is_open(full_day):
        full_day += dt.timedelta(days=1)
    year_from = monday_on_or_after(full_day + dt.timedelta(days=1))
    year_days = []
    d = year_from
    while len(year_days) < YEAR_CELLS:
        if is_open(d) and d.isoweekday() in (1, 2, 4, 5):
            year_days.append(d)
        d += dt.timedelta(days=1)
    period_from = start - dt.timedelta(days=1)
    period_to = year_days[-1] + dt.timedelta(days=1)

    npop = max(1, a.activities // 10)
    activities = []
    rush_sessions = {}          # activity id -> [(sid, day, unit, online)]
    places_online = {}
    for i in range(a.activities):
        aid = "act-%02d" % i
        popular = i < npop
        act = {
            "id": aid,
            "name": ("Stage populaire %d" if popular else "Accueil %d") % i,
            "age_min": 3, "age_max": 17,
            "site": "Site %d" % (i % 7),
            "booking_opens_at": opens_s,
            "deadline": {"working_days": 9},
            "online_share_percent": 50,
            "week_required": False,
            "prices": [{"qf_max": 600, "cents": 300 + 10 * i},
                       {"qf_max": None, "cents": 900 + 10 * i}],
        }
        cells = []
        if i % 2 == 0:
            sess = []
            for d in rush_days:
                for u in UNIT_CODES:
                    places = rng.choice([6, 8, 10]) if popular else \
                        rng.choice([20, 24, 30])
                    s = sid(aid, d, u)
                    sess.append({"id": s, "date": d.isoformat(), "unit": u,
                                 "places": places})
                    cells.append((s, d, u, places * 50 // 100))
            act["sessions"] = sess
        else:
            places = 8 if popular else 24
            act["calendar"] = {"from": rush_days[0].isoformat(),
                               "to": rush_days[-1].isoformat(),
                               "weekdays": [1, 2, 3, 4, 5],
                               "units": UNIT_CODES, "places": places}
            for d in rush_days:
                for u in UNIT_CODES:
                    cells.append((sid(aid, d, u), d, u, places * 50 // 100))
        for c in cells:
            places_online[c[0]] = c[3]
        rush_sessions[aid] = cells
        activities.append(act)

    def bench_activity(aid, name, sessions):
        return {"id": aid, "name": name, "age_min": 3, "age_max": 17,
                "site": "Banc d'essai", "booking_opens_at": long_ago,
                "deadline": {"working_days": 9}, "online_share_percent": 50,
                "week_required": False,
                "prices": [{"qf_max": None, "cents": 500}],
                "sessions": sessions}

    big = 100000     # the engine's maximum: 50,000 online, never full here
    single_ids, multi_ids = [], []
    sess = []
    for d in single_days:
        for u in UNIT_CODES:
            s = sid("bench-single", d, u)
            single_ids.append(s)
            sess.append({"id": s, "date": d.isoformat(), "unit": u,
                         "places": big})
    activities.append(bench_activity("bench-single", "Banc cellule seule",
                                     sess))
    sess = []
    for week in multi_weeks:
        for d in week:
            for u in UNIT_CODES:
                s = sid("bench-multi", d, u)
                multi_ids.append(s)
                sess.append({"id": s, "date": d.isoformat(), "unit": u,
                             "places": big})
    activities.append(bench_activity("bench-multi", "Banc semaine", sess))
    year_ids = [sid("bench-year", d, "REPAS") for d in year_days]
    activities.append(bench_activity("bench-year", "Banc année scolaire", [
        {"id": s, "date": d.isoformat(), "unit": "REPAS", "places": big}
        for s, d in zip(year_ids, year_days)]))
    full_id = sid("bench-full", full_day, "MATIN")
    activities.append(bench_activity("bench-full", "Banc complet", [
        {"id": full_id, "date": full_day.isoformat(), "unit": "MATIN",
         "places": 2}]))

    nbulk_act = 0
    if a.bulk_sessions > 0:
        # ~1,500 cells per activity: two years of open days x 3 units
        bulk_from = full_day + dt.timedelta(days=7)
        per_act = 1500
        nbulk_act = (a.bulk_sessions + per_act - 1) // per_act
        ndays = open_days(bulk_from, per_act // 3)
        for j in range(nbulk_act):
            act = bench_activity("bulk-%05d" % j, "Volume %d" % j, [])
            del act["sessions"]
            act["calendar"] = {"from": ndays[0].isoformat(),
                               "to": ndays[-1].isoformat(),
                               "weekdays": [1, 2, 3, 4, 5],
                               "units": UNIT_CODES, "places": 20}
            activities.append(act)

    # families and children: exactly a.children children over a.families
    nkids = [1] * a.families
    extra = a.children - a.families
    order = list(range(a.families))
    rng.shuffle(order)
    k = 0
    while extra > 0:
        f = order[k % a.families]
        if nkids[f] < 4:
            nkids[f] += 1
            extra -= 1
        k += 1
    year = rush_days[0].year
    families, fam_children = [], []
    child_enrol = {}            # cid -> [rush activity ids]
    cn = 0
    pop_ids = ["act-%02d" % i for i in range(npop)]
    other_ids = ["act-%02d" % i for i in range(npop, a.activities)]
    for f in range(a.families):
        fid = "f-%06d" % f
        children, enrols, cids = [], [], []
        for _ in range(nkids[f]):
            cid = "c-%06d" % cn
            cn += 1
            born = dt.date(year - rng.randint(5, 12), rng.randint(1, 12),
                           rng.randint(1, 28))
            children.append({"id": cid,
                             "first_name": rng.choice(FIRST_NAMES),
                             "birth_date": born.isoformat()})
            acts = set(rng.sample(pop_ids, min(len(pop_ids), 2)))
            acts |= set(rng.sample(other_ids, min(len(other_ids), 3)))
            acts = sorted(acts)
            child_enrol[cid] = acts
            for aid in acts + ["bench-single", "bench-multi", "bench-full",
                               "bench-year"]:
                enrols.append({"child_id": cid, "activity_id": aid,
                               "from": period_from.isoformat(),
                               "to": period_to.isoformat(),
                               "status": "validee"})
            cids.append(cid)
        qf = rng.choice([None, 350, 550, 800, 1200, 1600])
        families.append({"id": fid, "qf": qf,
                         "resident": rng.random() < 0.85,
                         "direct_debit": rng.random() < 0.3,
                         "children": children, "enrolments": enrols})
        fam_children.append((fid, cids))

    town = {"town": {"name": "Bourg-sur-Banc (rush %d)" % a.seed,
                     "timezone": "Europe/Paris"},
            "units": UNITS, "activities": activities, "families": families}

    # the rush workload
    demand = {}
    requests = []
    cells_by = {aid: {(d, u): s for (s, d, u, _) in cl}
                for aid, cl in rush_sessions.items()}
    nreq = int(a.families * a.requests_per_family)
    for r in range(nreq):
        fid, cids = fam_children[r % a.families if r < a.families
                                 else rng.randrange(a.families)]
        kids = cids if len(cids) == 1 else \
            rng.sample(cids, rng.randint(1, min(len(cids), 3)))
        x = rng.random()    # a few cells, a week, or most of a fortnight
        ncells = rng.randint(1, 3) if x < 0.4 else \
            rng.randint(5, 15) if x < 0.85 else rng.randint(16, 30)
        if ncells < len(kids):
            kids = kids[:ncells]
        per_kid = max(1, ncells // len(kids))
        items, seen, kind = [], set(), "multi" if len(kids) > 1 else "plain"
        for cid in kids:
            acts = child_enrol[cid]
            # popular activities draw most of the demand
            pops = [x for x in acts if x in pop_ids]
            aid = rng.choice(pops) if pops and rng.random() < 0.7 \
                else rng.choice(acts)
            d0 = rng.randrange(max(1, len(rush_days) - 5))
            units = rng.sample(UNIT_CODES, rng.randint(1, 3))
            want = []
            for d in rush_days[d0:]:
                for u in units:
                    want.append((d, u))
            for (d, u) in want[:per_kid]:
                s = cells_by[aid][(d, u)]
                if (cid, s) not in seen:
                    seen.add((cid, s))
                    items.append({"child_id": cid, "session_id": s})
            if rng.random() < 0.15 and len(items) < 30:
                # the same slot in another activity of the child: conflict
                others = [x for x in acts if x != aid]
                if others:
                    d, u = want[0]
                    s = cells_by[rng.choice(others)][(d, u)]
                    if (cid, s) not in seen:
                        seen.add((cid, s))
                        items.append({"child_id": cid, "session_id": s})
                        kind = "conflict"
        items = items[:30]
        for it in items:
            demand[it["session_id"]] = demand.get(it["session_id"], 0) + 1
        body = json.dumps({"items": items}, separators=(",", ":"),
                          ensure_ascii=False)
        requests.append((fid, len(items), kind, body))

    os.makedirs(a.out, exist_ok=True)

    def write(name, text):
        tmp = os.path.join(a.out, name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, os.path.join(a.out, name))

    write("town.json", json.dumps(town, ensure_ascii=False,
                                  separators=(",", ":")) + "\n")
    write("rush.tsv", "".join("%s\t%d\t%s\t%s\n" % r for r in requests))
    write("families.tsv", "".join("%s %s\n" % (f, " ".join(c))
                                  for f, c in fam_children))
    write("single.sessions", "\n".join(single_ids) + "\n")
    write("multi.sessions", "\n".join(multi_ids) + "\n")
    write("full.session", full_id + "\n")
    write("year.sessions", "\n".join(year_ids) + "\n")

    pop_cells = [s for aid in pop_ids for (s, _, _, _) in rush_sessions[aid]]
    pop_supply = sum(places_online[s] for s in pop_cells)
    pop_demand = sum(demand.get(s, 0) for s in pop_cells)
    hot = [s for s in pop_cells if demand.get(s, 0) >= 3 * places_online[s]]
    nsessions = (sum(len(v) for v in rush_sessions.values()) +
                 len(single_ids) + len(multi_ids) + 1 + len(year_ids) +
                 1500 * nbulk_act)
    meta = {
        "seed": a.seed, "families": a.families, "children": a.children,
        "activities": a.activities, "days": a.days, "units": len(UNITS),
        "opens_at": opens_s,
        "rush_first_day": rush_days[0].isoformat(),
        "rush_last_day": rush_days[-1].isoformat(),
        "sessions": nsessions,
        "rush_sessions": sum(len(v) for v in rush_sessions.values()),
        "bulk_activities": nbulk_act,
        "requests": len(requests),
        "request_cells": sum(r[1] for r in requests),
        "popular_online_places": pop_supply,
        "popular_demand_cells": pop_demand,
        "popular_demand_ratio": round(pop_demand / max(1, pop_supply), 2),
        "popular_cells": len(pop_cells),
        "popular_cells_demand_ge_3x": len(hot),
        "single_sessions": len(single_ids),
        "multi_sessions": len(multi_ids),
        "full_session": full_id,
        "year_sessions": len(year_ids),
        "year_first_day": year_days[0].isoformat(),
        "year_last_day": year_days[-1].isoformat(),
    }
    write("meta.json", json.dumps(meta, indent=1) + "\n")
    print(json.dumps(meta))


if __name__ == "__main__":
    main()
