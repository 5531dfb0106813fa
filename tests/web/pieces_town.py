#!/usr/bin/python3
"""pieces_town.py -- the town of the browser test of the documents ahead
(tests/web/pieces.test.mjs, issue 25).

    /usr/bin/python3 tests/web/pieces_town.py [--login L] [--password P] OUT.json

Dated from today (Europe/Paris):

* "Piscine" (piscine, 3-12 ans) requires "vaccinations" and
  "attestation-assurance", "Stage nautique" (stage) "brevet-natation";
  "Centre de loisirs" (centre) requires nothing.
* The family f-pieces (login/password from the options, default
  durand / secret-pieces), two children: Alice (8) and Bastien (6), both
  enrolled in Piscine.  The town's file holds the family's insurance
  certificate (every child) and Alice's vaccinations, which end in ten
  days (to renew); Bastien has none (missing).  Nobody is enrolled in
  Stage nautique, and no one has a brevet-natation (missing).
* The family f-neuve (Jade, 9), without an account: the town invites it
  (guichetctl set-email, then guichetctl invite) to « Créer mon espace ».

Prints nothing; writes OUT.
"""

import argparse
import datetime as dt
import json
import sys
from zoneinfo import ZoneInfo

PARIS = ZoneInfo("Europe/Paris")


def town(login, password, now=None):
    today = (now or dt.datetime.now(PARIS)).date()
    iso = dt.date.isoformat
    start = today + dt.timedelta(days=30)

    def act(aid, name, required):
        a = {"id": aid, "name": name, "age_min": 3, "age_max": 12,
             "deadline": {},
             "prices": [{"qf_max": None, "cents": 700}],
             "calendar": {"from": iso(start),
                          "to": iso(start + dt.timedelta(days=13)),
                          "weekdays": [3], "units": ["MATIN"],
                          "places": 10}}
        if required:
            a["required_documents"] = required
        return a

    return {
        "town": {"name": "Ambérieu-en-Bugey", "timezone": "Europe/Paris"},
        "units": [{"code": "MATIN", "label": "Matin", "starts": "08:30",
                   "ends": "12:00"}],
        "activities": [
            act("centre", "Centre de loisirs", None),
            act("piscine", "Piscine",
                ["vaccinations", "attestation-assurance"]),
            act("stage", "Stage nautique", ["brevet-natation"]),
        ],
        "families": [{
            "id": "f-pieces", "login": login, "password": password,
            "qf": 650,
            "children": [
                {"id": "c-alice", "first_name": "Alice",
                 "birth_date": "%04d-03-04" % (today.year - 8)},
                {"id": "c-bastien", "first_name": "Bastien",
                 "birth_date": "%04d-03-04" % (today.year - 6)}],
            "enrolments": [{"child_id": c, "activity_id": "piscine",
                            "from": iso(today),
                            "to": iso(today + dt.timedelta(days=300)),
                            "status": "validee"}
                           for c in ("c-alice", "c-bastien")],
            "documents": [
                {"type": "attestation-assurance"},
                {"type": "vaccinations", "child_id": "c-alice",
                 "valid_to": iso(today + dt.timedelta(days=10))}],
        }, {
            "id": "f-neuve", "qf": 400,
            "children": [{"id": "c-jade", "first_name": "Jade",
                          "birth_date": "%04d-09-09" % (today.year - 9)}],
        }],
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--login", default="durand")
    ap.add_argument("--password", default="secret-pieces")
    ap.add_argument("out")
    a = ap.parse_args(argv)
    with open(a.out, "w") as f:
        json.dump(town(a.login, a.password), f, ensure_ascii=False,
                  indent=1)
        f.write("\n")


if __name__ == "__main__":
    sys.exit(main())
