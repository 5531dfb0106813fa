#!/usr/bin/python3
"""town22.py -- the town of issue 22's browser test (parcours22.test.mjs):
the website as a parent lives it, dated from today (Europe/Paris).

    /usr/bin/python3 tests/web/town22.py [--login L] [--password P] OUT.json

* "ALSH" (alsh): whole weeks only, Monday to Friday, MATIN REPAS APM, in
  week W (the first whole week at least 70 days ahead: past the old
  61-day default of "Mes réservations") and W+1, 4,50 € a unit; its
  Wednesday MATIN of W has 2 places (1 online): two children asking for
  that week get one whole week and one refused day.
* "Klub" (klub): REPAS on the same days (ALSH Repas and Klub Repas
  overlap), 6 € a unit, 8 to 12 years old (Hugo is 7), no whole-week
  rule; also the other weekdays of
  the week of the next public holiday on a weekday at least 14 days ahead
  (the grid says "Férié" for it).
* "Mercredis" (mercredis): Wednesday MATIN from the first Wednesday at
  least 120 days ahead, for 6 weeks, 5 € a unit: an activity that starts in
  a later month than the one shown.
* The family f-p22 (login/password from the options, default
  parent / secret-p22), QF 650, Léa (10) and Hugo (7), enrolled (validée)
  in the three activities.

Prints nothing; writes OUT.
"""

import argparse
import datetime as dt
import json
import sys
from zoneinfo import ZoneInfo

from town import holidays

PARIS = ZoneInfo("Europe/Paris")


def town(login, password, now=None):
    now = now or dt.datetime.now(PARIS)
    today = now.date()
    w = today + dt.timedelta(days=70)
    w += dt.timedelta(days=(7 - w.weekday()) % 7)
    iso = dt.date.isoformat
    days = [w + dt.timedelta(days=i) for i in list(range(5))
            + list(range(7, 12))]
    days = [d for d in days if d not in holidays(d.year)]
    wed = w + dt.timedelta(days=2)
    mer = today + dt.timedelta(days=120)
    mer += dt.timedelta(days=(2 - mer.weekday()) % 7)
    mers = [mer + dt.timedelta(days=7 * i) for i in range(6)]
    hol = today + dt.timedelta(days=14)
    while hol.weekday() >= 5 or hol not in holidays(hol.year):
        hol += dt.timedelta(days=1)
    hmon = hol - dt.timedelta(days=hol.weekday())
    hweek = [hmon + dt.timedelta(days=i) for i in range(5)]
    hweek = [d for d in hweek if d not in holidays(d.year)]

    def cells(prefix, units, dates, places=20):
        return [{"id": "%s-%s-%s" % (prefix, d.strftime("%Y%m%d"), u),
                 "date": iso(d), "unit": u,
                 "places": 2 if (prefix, d, u) == ("alsh", wed, "MATIN")
                 else places}
                for d in dates for u in units]

    def act(aid, name, cents, sessions, week=False, age_min=3):
        return {"id": aid, "name": name, "site": "Centre de loisirs",
                "age_min": age_min, "age_max": 12, "booking_opens_at": None,
                "deadline": {"working_days": 2}, "online_share_percent": 50,
                "week_required": week,
                "prices": [{"qf_max": None, "cents": cents}],
                "sessions": sessions}

    last = max(days + mers)
    first = min(days + hweek)
    return {
        "town": {"name": "Ambérieu-en-Bugey", "timezone": "Europe/Paris"},
        "units": [
            {"code": "MATIN", "label": "Matin", "starts": "08:30",
             "ends": "12:00"},
            {"code": "REPAS", "label": "Repas", "starts": "12:00",
             "ends": "13:30"},
            {"code": "APM", "label": "Après-midi", "starts": "13:30",
             "ends": "17:30"},
        ],
        "activities": [
            act("alsh", "ALSH", 450,
                cells("alsh", ["MATIN", "REPAS", "APM"], days), week=True),
            act("klub", "Klub", 600, cells("klub", ["REPAS"],
                                           sorted(set(days + hweek))),
                age_min=8),
            act("mercredis", "Mercredis", 500,
                cells("mercredis", ["MATIN"], mers)),
        ],
        "families": [{
            "id": "f-p22", "login": login, "password": password,
            "qf": 650, "resident": True, "direct_debit": False,
            "children": [
                {"id": "c-lea", "first_name": "Léa",
                 "birth_date": "%04d-02-03" % (today.year - 10)},
                {"id": "c-hugo", "first_name": "Hugo",
                 "birth_date": "%04d-01-09" % (today.year - 7)}],
            "enrolments": [{"child_id": c, "activity_id": a,
                            "from": iso(min(today, first)),
                            "to": iso(last),
                            "status": "validee"}
                           for c in ("c-lea", "c-hugo")
                           for a in ("alsh", "klub", "mercredis")],
        }],
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--login", default="parent")
    ap.add_argument("--password", default="secret-p22")
    ap.add_argument("out")
    a = ap.parse_args(argv)
    with open(a.out, "w") as f:
        json.dump(town(a.login, a.password), f, ensure_ascii=False,
                  indent=1)
        f.write("\n")


if __name__ == "__main__":
    sys.exit(main())
