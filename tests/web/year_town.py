#!/usr/bin/python3
"""year_town.py -- the town of the family space's browser test (a family's
whole year through guichet-office, tests/web/annee-famille.test.mjs).

    /usr/bin/python3 tests/web/year_town.py [--login L] [--password P] OUT.json

Dated from today (Europe/Paris):

* "Accueil périscolaire" (periscolaire): Monday to Friday, MATIN and APM,
  from the next working day for 11 weeks, 20 places (10 online), bookable
  until the unit starts, a cancellation later than 5 working days before
  is billed, the document "fiche-sanitaire" required.  Its first day's APM
  has 1 place, kept for the counter (0 online: "Complet" on the website).
* The family f-annee (login/password from the options, default
  durand / secret-annee), QF 650 (4,50 € a unit), one child, Chloé (8),
  enrolled nowhere and without any document: the test is refused the
  enrolment without the fiche sanitaire, uploads it, asks for the
  enrolment, has it validated, has the fiche accepted, then books.

Prints nothing; writes OUT.
"""

import argparse
import datetime as dt
import json
import sys
from zoneinfo import ZoneInfo

from town import next_weekday

PARIS = ZoneInfo("Europe/Paris")


def town(login, password, now=None):
    now = now or dt.datetime.now(PARIS)
    today = now.date()
    start = next_weekday(today + dt.timedelta(days=1))
    end = start + dt.timedelta(days=76)
    iso = dt.date.isoformat
    return {
        "town": {"name": "Ambérieu-en-Bugey", "timezone": "Europe/Paris"},
        "units": [
            {"code": "MATIN", "label": "Matin", "starts": "08:30",
             "ends": "12:00"},
            {"code": "APM", "label": "Après-midi", "starts": "13:30",
             "ends": "17:30"},
        ],
        "activities": [{
            "id": "periscolaire",
            "name": "Accueil périscolaire",
            "site": "École Jean-Jaurès, rue de la République",
            "age_min": 3, "age_max": 11,
            "booking_opens_at": None,
            "deadline": {},
            "cancel_deadline": {"working_days": 5},
            "online_share_percent": 50,
            "week_required": False,
            "required_documents": ["fiche-sanitaire"],
            "prices": [{"qf_max": 450, "cents": 200},
                       {"qf_max": 800, "cents": 450},
                       {"qf_max": None, "cents": 700}],
            "sessions": [
                {"id": "peri-guichet", "date": iso(start), "unit": "APM",
                 "places": 1},
            ],
            "calendar": {"from": iso(start), "to": iso(end),
                         "weekdays": [1, 2, 3, 4, 5],
                         "units": ["MATIN", "APM"], "places": 20},
        }],
        "families": [{
            "id": "f-annee",
            "login": login,
            "password": password,
            "qf": 650,
            "resident": True,
            "direct_debit": False,
            "children": [{"id": "c-chloe", "first_name": "Chloé",
                          "birth_date": "%04d-05-17" % (today.year - 8)}],
        }],
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--login", default="durand")
    ap.add_argument("--password", default="secret-annee")
    ap.add_argument("out")
    a = ap.parse_args(argv)
    with open(a.out, "w") as f:
        json.dump(town(a.login, a.password), f, ensure_ascii=False,
                  indent=1)
        f.write("\n")


if __name__ == "__main__":
    sys.exit(main())
