#!/usr/bin/python3
"""town.py -- a town file for the browser tests, dated from today.

    /usr/bin/python3 tests/web/town.py [--login L] [--password P]
                                       [--opens-in SECONDS] OUT.json

The demo town (demo/amberieu.json) is a fixed summer; the browser suite
needs, within the 90 days it looks at, everything a parent meets
(docs/website.md, "Browser tests"):

* "Accueil de loisirs" (accueil): Monday to Friday, MATIN REPAS APM, from
  today + 10 days for 6 weeks, deadline 2 working days (so bookable now),
  20 places (10 online).  Its first day's APM has 1 place (0 online:
  "Complet") and its first day's MATIN 5 places (2 online: the tests book
  them for the two children, so it is full afterwards).
* "Ateliers du Klub" (ateliers): the same days, MATIN only, with workshop
  labels: a child booked on an accueil morning sees a "Conflit" here.
* "Vacances de Noël" (vacances): whole weeks only, a document required,
  opening at least OPENS_IN seconds from now (default 60), on the next
  whole minute: the countdown, the automatic refresh of places, and a
  booking made on the same page once it opens (the browser suite reaches
  that test about 15 s after the stack starts).
* The family f-demo (login/password from the options, default
  martin / secret-demo) with two children, Léa (10) and Hugo (7), validly
  enrolled in the three activities over the whole period.

Dates are Europe/Paris.  Prints nothing; writes OUT.
"""

import argparse
import datetime as dt
import json
import sys
from zoneinfo import ZoneInfo

PARIS = ZoneInfo("Europe/Paris")


def holidays(year):
    """French public holidays (the engine's calendars skip them too)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = b // 4, b % 4
    g = (8 * b + 13) // 25
    h = (19 * a + b - d - g + 15) % 30
    i, k = c // 4, c % 4
    l = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 19 * l) // 433
    month = (h + l - 7 * m + 90) // 25
    easter = dt.date(year, month, (h + l - 7 * m + 33 * month + 19) % 32)
    fixed = [(1, 1), (5, 1), (5, 8), (7, 14), (8, 15), (11, 1), (11, 11),
             (12, 25)]
    return ({dt.date(year, mo, da) for mo, da in fixed} |
            {easter + dt.timedelta(days=n) for n in (1, 39, 50)})


def next_weekday(d):
    while d.weekday() >= 5 or d in holidays(d.year):
        d += dt.timedelta(days=1)
    return d


def town(login, password, opens_in, now=None):
    now = now or dt.datetime.now(PARIS)
    today = now.date()
    start = next_weekday(today + dt.timedelta(days=10))
    end = start + dt.timedelta(days=41)               # six weeks
    # on a whole minute, like a town's opening, at least OPENS_IN away
    opens = (now + dt.timedelta(seconds=opens_in + 59)).replace(
        second=0, microsecond=0)
    iso = dt.date.isoformat

    def age_to_birth(years, month_day):
        return "%04d-%s" % (today.year - years, month_day)

    workshops = ["Danse latine", "Atelier cuisine", "Escalade",
                 "Théâtre", "Arts plastiques"]
    ateliers = []
    d = start
    while d <= end:
        if d.weekday() < 5 and d not in holidays(d.year):
            ateliers.append({"id": "ateliers-%s" % d.strftime("%Y%m%d"),
                             "date": iso(d), "unit": "MATIN",
                             "label": workshops[d.weekday()],
                             "places": 12})
        d += dt.timedelta(days=1)

    acts = [
        {
            "id": "accueil",
            "name": "Accueil de loisirs",
            "site": "École Jean-Jaurès, rue de la République",
            "age_min": 3, "age_max": 11,
            "booking_opens_at": None,
            "deadline": {"working_days": 2},
            "cancel_deadline": {"working_days": 2},
            "online_share_percent": 50,
            "week_required": False,
            "prices": [{"qf_max": 450, "cents": 200},
                       {"qf_max": 800, "cents": 450},
                       {"qf_max": None, "cents": 700}],
            "sessions": [
                {"id": "accueil-peu-de-places", "date": iso(start),
                 "unit": "MATIN", "places": 5},
                {"id": "accueil-complet", "date": iso(start),
                 "unit": "APM", "places": 1},
            ],
            "calendar": {"from": iso(start), "to": iso(end),
                         "weekdays": [1, 2, 3, 4, 5],
                         "units": ["MATIN", "REPAS", "APM"], "places": 20},
        },
        {
            "id": "ateliers",
            "name": "Ateliers du Klub",
            "site": "Espace jeunesse Le Klub, place Sémard",
            "age_min": 6, "age_max": 12,
            "booking_opens_at": None,
            "deadline": {"working_days": 2},
            "online_share_percent": 50,
            "week_required": False,
            "prices": [{"qf_max": 600, "cents": 300},
                       {"qf_max": None, "cents": 900}],
            "sessions": ateliers,
        },
        {
            "id": "vacances",
            "name": "Vacances de Noël",
            "site": "Centre de loisirs du Bourg, 12 rue Alexandre Bérard",
            "age_min": 3, "age_max": 11,
            "booking_opens_at": opens.isoformat(timespec="seconds"),
            "deadline": {"working_days": 2},
            "online_share_percent": 50,
            "week_required": True,
            "required_documents": ["fiche-sanitaire"],
            "prices": [{"qf_max": 800, "cents": 650},
                       {"qf_max": None, "cents": 850}],
            "calendar": {"from": iso(start),
                         "to": iso(start + dt.timedelta(days=13)),
                         "weekdays": [1, 2, 3, 4, 5],
                         "units": ["MATIN", "REPAS", "APM"], "places": 24},
        },
    ]
    kids = [{"id": "c-lea", "first_name": "Léa",
             "birth_date": age_to_birth(10, "04-12")},
            {"id": "c-hugo", "first_name": "Hugo",
             "birth_date": age_to_birth(7, "09-03")}]
    enrol_from = iso(today.replace(day=1))
    enrol_to = iso(end + dt.timedelta(days=30))
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
        "activities": acts,
        "families": [{
            "id": "f-demo",
            "login": login,
            "password": password,
            "qf": 650,
            "resident": True,
            "direct_debit": False,
            "children": kids,
            "enrolments": [{"child_id": c["id"], "activity_id": a["id"],
                            "from": enrol_from, "to": enrol_to,
                            "status": "validee"}
                           for c in kids for a in acts],
            "documents": [{"type": "fiche-sanitaire",
                           "valid_from": None, "valid_to": enrol_to}],
        }],
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--login", default="martin")
    ap.add_argument("--password", default="secret-demo")
    ap.add_argument("--opens-in", type=int, default=60,
                    help="at least this many seconds until the holidays "
                         "open, rounded up to the minute (default 60)")
    ap.add_argument("out")
    a = ap.parse_args(argv)
    with open(a.out, "w") as f:
        json.dump(town(a.login, a.password, a.opens_in), f,
                  ensure_ascii=False, indent=1)
        f.write("\n")


if __name__ == "__main__":
    sys.exit(main())
