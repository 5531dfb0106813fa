#!/usr/bin/python3
"""town24.py -- the town of issue 24's browser test (planning24.test.mjs):
the planning a parent uses, dated from today (Europe/Paris).

    /usr/bin/python3 tests/web/town24.py [--login L] [--password P] OUT.json

* "Périscolaire" (peri): Monday, Tuesday, Thursday, Friday, MATIN and APM,
  from tomorrow for 420 days (public holidays skipped), bookable until the
  unit starts, a cancellation later than 5 working days before billed;
  resident bands 3 € (QF up to 700) and 5 €, non-resident 8 €.
* "Stage nature" (stage): Wednesday MATIN for 8 weeks from the first
  Wednesday at least 10 days ahead, 12 € (non-resident 15 €), a
  "fiche-sanitaire" required (the family has none).
* The family f-p24 (login/password from the options, default
  famille / secret-p24), not resident, QF 800, Léa (9) and Hugo (7),
  enrolled (validée) in both from today for 420 days.

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
    iso = dt.date.isoformat
    end = today + dt.timedelta(days=420)
    days = [today + dt.timedelta(days=i) for i in range(1, 421)]
    off = set()
    for y in range(today.year, end.year + 1):
        off |= set(holidays(y))
    peri = [d for d in days if d.weekday() in (0, 1, 3, 4) and d not in off]
    wed = today + dt.timedelta(days=10)
    wed += dt.timedelta(days=(2 - wed.weekday()) % 7)
    stage = [wed + dt.timedelta(days=7 * i) for i in range(8)]
    stage = [d for d in stage if d not in off]

    def cells(prefix, units, dates):
        return [{"id": "%s-%s-%s" % (prefix, d.strftime("%Y%m%d"), u),
                 "date": iso(d), "unit": u, "places": 20}
                for d in dates for u in units]

    return {
        "town": {"name": "Ambérieu-en-Bugey", "timezone": "Europe/Paris"},
        "units": [
            {"code": "MATIN", "label": "Matin", "starts": "08:30",
             "ends": "12:00"},
            {"code": "APM", "label": "Après-midi", "starts": "13:30",
             "ends": "17:30"},
        ],
        "activities": [
            {"id": "peri", "name": "Périscolaire", "site": "École Jean Moulin",
             "age_min": 3, "age_max": 12, "booking_opens_at": None,
             "deadline": {}, "cancel_deadline": {"working_days": 5},
             "online_share_percent": 100, "week_required": False,
             "prices": [{"qf_max": 700, "cents": 300},
                        {"qf_max": None, "cents": 500}],
             "non_resident_prices": [{"qf_max": None, "cents": 800}],
             "sessions": cells("peri", ["MATIN", "APM"], peri)},
            {"id": "stage", "name": "Stage nature", "site": "Base de loisirs",
             "age_min": 3, "age_max": 12, "booking_opens_at": None,
             "deadline": {"working_days": 2}, "online_share_percent": 100,
             "week_required": False,
             "required_documents": ["fiche-sanitaire"],
             "prices": [{"qf_max": None, "cents": 1200}],
             "non_resident_prices": [{"qf_max": None, "cents": 1500}],
             "sessions": cells("stage", ["MATIN"], stage)},
        ],
        "families": [{
            "id": "f-p24", "login": login, "password": password,
            "qf": 800, "resident": False, "direct_debit": False,
            "children": [
                {"id": "c-lea", "first_name": "Léa",
                 "birth_date": "%04d-02-03" % (today.year - 9)},
                {"id": "c-hugo", "first_name": "Hugo",
                 "birth_date": "%04d-01-09" % (today.year - 7)}],
            "enrolments": [{"child_id": c, "activity_id": a,
                            "from": iso(today), "to": iso(end),
                            "status": "validee"}
                           for c in ("c-lea", "c-hugo")
                           for a in ("peri", "stage")],
        }],
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--login", default="famille")
    ap.add_argument("--password", default="secret-p24")
    ap.add_argument("out")
    a = ap.parse_args(argv)
    with open(a.out, "w") as f:
        json.dump(town(a.login, a.password), f, ensure_ascii=False,
                  indent=1)
        f.write("\n")


if __name__ == "__main__":
    sys.exit(main())
