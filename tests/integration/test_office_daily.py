"""test_office_daily.py -- the daily lists of the back office
(office/daily.c, issue 26): per session of a day, the children booked with
the allergies and the pick-up people of the family's entourage (which
the family declared, the town removes from); the same as a
printable PDF; the kitchen's meal counts per day; the CAF's presence hours
per child and month as CSV (régie only).
"""

import csv
import io
import subprocess
import tempfile
import uuid

import pytest

from office_town import agent, error_code, regie, staffed_stack


def town():
    units = [{"code": "MATIN", "label": "Matin", "starts": "08:30",
              "ends": "12:00"},
             {"code": "REPAS", "label": "Repas", "starts": "12:00",
              "ends": "13:30"}]
    days = ["2027-07-05", "2027-07-06"]
    sessions = [{"id": "c-%s-%s" % (d.replace("-", ""), u), "date": d,
                 "unit": u, "places": 10}
                for d in days for u in ("MATIN", "REPAS")]
    fam = lambda fid, kids: {
        "id": fid, "qf": 300,
        "children": [{"id": "%s-%s" % (fid, k), "first_name": n,
                      "birth_date": "2018-04-04"} for k, n in kids],
        "enrolments": [{"child_id": "%s-%s" % (fid, k),
                        "activity_id": "centre", "from": "2027-01-01",
                        "to": "2027-12-31", "status": "validee"}
                       for k, _ in kids]}
    return {
        "town": {"name": "Listes", "timezone": "Europe/Paris"},
        "units": units,
        "activities": [{"id": "centre", "name": "Centre de loisirs",
                        "booking_opens_at": "2026-01-01T18:00:00+01:00",
                        "prices": [{"qf_max": None, "cents": 700}],
                        "sessions": sessions}],
        "families": [fam("f1", [("a", "Alice"), ("b", "Bastien")]),
                     fam("f2", [("a", "Zoé")])],
    }


@pytest.fixture(scope="module")
def s(make_stack):
    return staffed_stack(make_stack, town(), "office-daily")


@pytest.fixture(scope="module")
def booked(s, agent):
    tok = s.tokens()
    items = {"f1": [("f1-a", "c-20270705-MATIN"), ("f1-a", "c-20270705-REPAS"),
                    ("f1-b", "c-20270705-REPAS"),
                    ("f1-a", "c-20270706-REPAS")],
             "f2": [("f2-a", "c-20270705-MATIN"),
                    ("f2-a", "c-20270705-REPAS")]}
    for fid, cells in items.items():
        r = s.http("POST", "/api/bookings", token=tok[fid],
                   headers={"Idempotency-Key": uuid.uuid4().hex},
                   json={"items": [{"child_id": c, "session_id": x}
                                   for c, x in cells]})
        assert r.status == 200, r
        assert {i["status"] for i in r.json()["items"]} == {"confirmed"}, r
    s.wait_worker_drained()
    # what the office records of the families
    assert s.http("PUT", "/api/staff/children/f1-a", token=agent,
                  json={"allergies": "arachide"}).status == 200
    # the people the family declared in its space (the entourage)
    for who in ({"first_name": "Paul", "last_name": "Martin",
                 "relation": "grand-père", "phone": "06 01 02 03 04",
                 "can_pick_up": True, "emergency": False},
                {"first_name": "Jeanne", "last_name": "Roux",
                 "relation": "voisine", "phone": "01 00 00 00 00",
                 "can_pick_up": False, "emergency": True},
                {"first_name": "Marc", "last_name": "Petit",
                 "relation": "oncle", "phone": "06 00 00 00 09",
                 "can_pick_up": True, "emergency": False}):
        r = s.http("POST", "/api/entourage", token=tok["f1"], json=who)
        assert r.status == 201, r
    # the town removed one (the row stays, off the lists)
    marc = r.json()["id"]
    assert s.http("DELETE", "/api/staff/entourage/%d" % marc, token=agent,
                  json={"reason": "à la demande de la famille"}
                  ).status == 200
    return True


def test_the_family_s_people_in_the_agent_s_file(s, agent, booked):
    r = s.http("GET", "/api/staff/families/f1/record", token=agent)
    assert r.status == 200, r
    assert [(p["first_name"], p["last_name"], p["relation"],
             p["can_pick_up"], p["emergency"])
            for p in r.json()["entourage"]] == \
        [("Paul", "Martin", "grand-père", True, False),
         ("Jeanne", "Roux", "voisine", False, True)]


def test_the_list_of_the_day(s, agent, booked):
    r = s.http("GET", "/api/staff/daily?date=2027-07-05", token=agent)
    assert r.status == 200, r
    ses = {x["unit"]: x for x in r.json()["sessions"]}
    assert set(ses) == {"MATIN", "REPAS"}
    matin = ses["MATIN"]["children"]
    assert [c["first_name"] for c in matin] == ["Alice", "Zoé"]
    assert matin[0]["allergies"] == "arachide"
    assert matin[0]["pick_up"] == [{"name": "Paul Martin",
                                    "relation": "grand-père",
                                    "phone": "06 01 02 03 04"}]
    assert matin[1]["allergies"] is None and matin[1]["pick_up"] == []
    assert [c["first_name"] for c in ses["REPAS"]["children"]] == \
        ["Alice", "Bastien", "Zoé"]
    r = s.http("GET", "/api/staff/daily?date=2027-07-05&activity_id=golf",
               token=agent)
    assert r.json()["sessions"] == []
    assert error_code(s.http("GET", "/api/staff/daily?date=demain",
                             token=agent), 400) == "invalid_field"
    assert error_code(s.http("GET", "/api/staff/daily?date=2027-07-05"),
                      401) == "unauthenticated"


def test_the_printable_list(s, agent, booked):
    r = s.http("GET", "/api/staff/daily.pdf?date=2027-07-05", token=agent)
    assert r.status == 200, r
    assert r.header_all("Content-Type")[0] == "application/pdf"
    assert r.body.startswith(b"%PDF")
    with tempfile.NamedTemporaryFile(suffix=".pdf") as f:
        f.write(r.body)
        f.flush()
        text = subprocess.run(["pdftotext", "-layout", f.name, "-"],
                              stdout=subprocess.PIPE, check=True
                              ).stdout.decode()
    pages = text.split("\f")
    assert "Centre de loisirs" in pages[0] and "Matin" in pages[0]
    assert "05/07/2027" in pages[0]
    assert "Alice" in pages[0] and "arachide" in pages[0]
    assert "Paul Martin (grand-père) 06 01 02 03 04" in pages[0]
    assert "2 enfants" in pages[0]
    assert "Bastien" in pages[1] and "3 enfants" in pages[1]
    assert "Roux" not in text and "Petit" not in text
    r = s.http("GET", "/api/staff/daily.pdf?date=2027-08-15", token=agent)
    assert r.status == 200 and r.body.startswith(b"%PDF"), r


def test_meals_per_day(s, agent, booked):
    r = s.http("GET", "/api/staff/meals?from=2027-07-04&to=2027-07-08",
               token=agent)
    assert r.status == 200, r
    days = r.json()["days"]
    assert [(d["date"], d["count"]) for d in days] == \
        [("2027-07-05", 3), ("2027-07-06", 1)]
    assert days[0]["by_activity"] == [{"activity_id": "centre",
                                       "name": "Centre de loisirs",
                                       "count": 3}]
    assert days[0]["allergies"] == [{"first_name": "Alice",
                                     "allergies": "arachide"}]
    assert error_code(s.http("GET", "/api/staff/meals?from=2027-07-04"
                             "&to=2027-12-31", token=agent), 400) == \
        "invalid_field"


def test_caf_hours(s, agent, regie, booked):
    bid = s.sql("select id from booking where child_id = 'f1-a'"
                " and session_id = 'c-20270705-MATIN'")[0][0]
    r = s.http("POST", "/api/staff/attendance", token=agent,
               json={"booking_id": bid, "status": "present"})
    assert r.status == 200, r
    assert error_code(s.http("GET", "/api/staff/exports/caf?month=2027-07",
                             token=agent), 403) == "forbidden"
    r = s.http("GET", "/api/staff/exports/caf?month=2027-07", token=regie)
    assert r.status == 200, r
    rows = list(csv.reader(io.StringIO(r.body.decode()), delimiter=";"))
    assert rows[0] == ["famille", "enfant", "prenom", "date_naissance",
                       "activite", "heures_presence", "heures_reservees",
                       "jours_presence"]
    assert rows[1:] == [
        ["f1", "f1-a", "Alice", "2018-04-04", "Centre de loisirs", "3,50",
         "6,50", "1"],
        ["f1", "f1-b", "Bastien", "2018-04-04", "Centre de loisirs",
         "0,00", "1,50", "0"],
        ["f2", "f2-a", "Zoé", "2018-04-04", "Centre de loisirs", "0,00",
         "5,00", "0"]]
