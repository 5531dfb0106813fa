#!/usr/bin/python3
"""town23.py -- the town of issue 23's browser test (attente23.test.mjs):
a waiting list, dated from today (Europe/Paris).

    /usr/bin/python3 tests/web/town23.py [--login L] [--password P] OUT.json

* "Mini-camp" (camp): one MATIN session, the first working day at least
  10 days ahead, ONE place, online, 9 €.
* "Stage poney" (stage): the same day, ONE place, its waiting list in
  offer mode ("waitlist": {"mode": "offer", "hold_hours": 24}).
* The family f-a (login/password from the options), Léa (8); the family
  f-b (login "autre", the same password), Tom and Zoé (8); all enrolled
  in both.

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
    off = set(holidays(today.year)) | set(holidays(today.year + 1))
    day = today + dt.timedelta(days=10)
    while day.weekday() >= 5 or day in off:
        day += dt.timedelta(days=1)

    def family(fid, who, *kids):
        return {
            "id": fid, "login": who, "password": password,
            "qf": 500, "resident": True, "direct_debit": False,
            "children": [{"id": cid, "first_name": name,
                          "birth_date": "%04d-02-03" % (today.year - 8)}
                         for cid, name in kids],
            "enrolments": [{"child_id": cid, "activity_id": a,
                            "from": iso(today),
                            "to": iso(today + dt.timedelta(days=60)),
                            "status": "validee"}
                           for cid, _ in kids for a in ("camp", "stage")]}

    return {
        "town": {"name": "Ambérieu-en-Bugey", "timezone": "Europe/Paris"},
        "units": [{"code": "MATIN", "label": "Matin", "starts": "08:30",
                   "ends": "12:00"},
                  {"code": "APM", "label": "Après-midi", "starts": "13:30",
                   "ends": "17:30"}],
        "activities": [
            {"id": "camp", "name": "Mini-camp", "site": "Base de loisirs",
             "age_min": 3, "age_max": 12, "booking_opens_at": None,
             "deadline": {"working_days": 2}, "online_share_percent": 100,
             "week_required": False,
             "prices": [{"qf_max": None, "cents": 900}],
             "sessions": [{"id": "camp-%s-MATIN" % day.strftime("%Y%m%d"),
                           "date": iso(day), "unit": "MATIN",
                           "places": 1}]},
            {"id": "stage", "name": "Stage poney", "site": "Poney-club",
             "age_min": 3, "age_max": 12, "booking_opens_at": None,
             "deadline": {"working_days": 2}, "online_share_percent": 100,
             "week_required": False,
             "waitlist": {"mode": "offer", "hold_hours": 24},
             "prices": [{"qf_max": None, "cents": 1200}],
             "sessions": [{"id": "stage-%s-APM" % day.strftime("%Y%m%d"),
                           "date": iso(day), "unit": "APM",
                           "places": 1}]},
        ],
        "families": [family("f-a", login, ("c-lea", "Léa")),
                     family("f-b", "autre", ("c-tom", "Tom"),
                            ("c-zoe", "Zoé"))],
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--login", default="famille")
    ap.add_argument("--password", default="secret-p23")
    ap.add_argument("out")
    a = ap.parse_args(argv)
    with open(a.out, "w") as f:
        json.dump(town(a.login, a.password), f, ensure_ascii=False,
                  indent=1)
        f.write("\n")


if __name__ == "__main__":
    sys.exit(main())
