"""test_office_required.py -- documents ahead (issue 25): what each child
needs for each activity before any booking (GET /api/documents/required,
office/required.c), enrolment requests refused while a required document
is missing, and a child's document counting for that child only, in the
list, for the enrolment request and on the booking path (engine
book_rules.c, worker/overlay.c).

The town: "piscine" requires vaccinations and assurance, "stage"
requires assurance and brevet-natation, "centre" nothing, "ados" (13-17)
fiche-sanitaire.  Family f1: Alice (f1-a) and Bastien (f1-b), both
enrolled in piscine; the town's file holds an assurance for the whole
family and Alice's vaccinations, which expire in ten days.
"""

import datetime
import time
import uuid
import zoneinfo

import pytest

from office_town import (PDF, error_code, outbox, published, staff_add,
                         staff_login)

TODAY = datetime.datetime.now(zoneinfo.ZoneInfo("Europe/Paris")).date()
SOON = (TODAY + datetime.timedelta(days=10)).isoformat()
DAYS = ["2027-07-%02d" % d for d in range(5, 10)]


def town():
    def act(aid, required=None, age=(3, 12)):
        a = {"id": aid, "name": aid.capitalize(), "age_min": age[0],
             "age_max": age[1],
             "booking_opens_at": "2026-01-01T18:00:00+01:00",
             "deadline": {"working_days": 2},
             "prices": [{"qf_max": None, "cents": 700}],
             "sessions": [{"id": "%s-%s" % (aid, d.replace("-", "")),
                           "date": d, "unit": "MATIN", "places": 10}
                          for d in DAYS]}
        if required:
            a["required_documents"] = required
        return a

    return {
        "town": {"name": "Pièces", "timezone": "Europe/Paris"},
        "units": [{"code": "MATIN", "label": "Matin", "starts": "08:30",
                   "ends": "12:00"}],
        "activities": [
            act("centre"),
            act("piscine", ["vaccinations", "assurance"]),
            act("stage", ["assurance", "brevet-natation"]),
            act("ados", ["fiche-sanitaire"], age=(13, 17)),
        ],
        "families": [
            {"id": "f1", "login": "durand", "password": "secret-f1",
             "qf": 300,
             "children": [{"id": "f1-a", "first_name": "Alice",
                           "birth_date": "2018-04-04"},
                          {"id": "f1-b", "first_name": "Bastien",
                           "birth_date": "2019-05-05"}],
             "enrolments": [{"child_id": c, "activity_id": "piscine",
                             "from": "2026-09-01", "to": "2027-08-31",
                             "status": "validee"}
                            for c in ("f1-a", "f1-b")],
             "documents": [{"type": "assurance"},
                           {"type": "vaccinations", "child_id": "f1-a",
                            "valid_to": SOON}]},
            {"id": "f2", "qf": 800,
             "children": [{"id": "f2-a", "first_name": "Zoé",
                           "birth_date": "2018-06-06"}]},
        ],
    }


@pytest.fixture(scope="module")
def s(make_stack):
    st = make_stack(town(), name="office-required")
    staff_add(st, "agent.r", "agent", "Rémi Agent", "agent-pass-r")
    return st


@pytest.fixture(scope="module")
def tok(s):
    return s.tokens()


@pytest.fixture(scope="module")
def agent(s):
    return staff_login(s, "agent.r", "agent-pass-r")


def required(s, token):
    r = s.http("GET", "/api/documents/required", token=token)
    assert r.status == 200, r
    return r.json()


def table(body):
    """{(child, activity): {type: status}} of an answer."""
    return {(c["child_id"], a["activity_id"]):
            {d["type"]: d["status"] for d in a["documents"]}
            for c in body["children"] for a in c["activities"]}


def upload(s, token, typ, child=None):
    q = "type=" + typ + ("&child_id=" + child if child else "")
    r = s.http("POST", "/api/documents?" + q, token=token, body=PDF,
               headers={"Content-Type": "application/pdf"})
    assert r.status == 201, r
    return r.json()["id"]


def decide(s, agent, doc, **body):
    r = s.http("POST", "/api/staff/documents/%d/decision" % doc,
               token=agent, json=body)
    assert r.status == 200, r


def ask(s, token, child, activity):
    return s.http("POST", "/api/enrolments", token=token,
                  json={"child_id": child, "activity_id": activity,
                        "from": "2027-07-01", "to": "2027-07-31"})


def test_the_list_before_any_booking(s, tok):
    body = required(s, tok["f1"])
    assert body["today"] == TODAY.isoformat()
    assert table(body) == {
        # Alice's own vaccinations expire in ten days; the family's
        # assurance covers both children
        ("f1-a", "piscine"): {"vaccinations": "a_renouveler",
                              "assurance": "valide"},
        ("f1-a", "stage"): {"assurance": "valide",
                            "brevet-natation": "manquante"},
        # Alice's vaccinations are not Bastien's
        ("f1-b", "piscine"): {"vaccinations": "manquante",
                              "assurance": "valide"},
        ("f1-b", "stage"): {"assurance": "valide",
                            "brevet-natation": "manquante"},
    }
    alice = body["children"][0]
    assert alice["first_name"] == "Alice"
    piscine = [a for a in alice["activities"]
               if a["activity_id"] == "piscine"][0]
    assert piscine["enrolment"] == "validee"
    assert piscine["documents"][0]["valid_to"] == SOON
    stage = [a for a in alice["activities"]
             if a["activity_id"] == "stage"][0]
    assert stage["enrolment"] is None
    # renewals and missing ones, each (child, type) once
    assert body["to_do"] == 4

    # another family sees its own child only, with nothing required yet
    other = required(s, tok["f2"])
    assert [c["child_id"] for c in other["children"]] == ["f2-a"]
    assert table(other) == {
        ("f2-a", "piscine"): {"vaccinations": "manquante",
                              "assurance": "manquante"},
        ("f2-a", "stage"): {"assurance": "manquante",
                            "brevet-natation": "manquante"}}
    assert error_code(s.http("GET", "/api/documents/required"), 401) == \
        "unauthenticated"


def test_missing_documents_block_the_enrolment_request(s, tok):
    n = s.sql("select count(*) from enrolment")[0][0]
    r = ask(s, tok["f1"], "f1-a", "stage")
    assert error_code(r, 409) == "documents_missing"
    assert "brevet-natation" in r.json()["error"]["message"]
    assert "assurance" not in r.json()["error"]["message"]
    assert s.sql("select count(*) from enrolment")[0][0] == n
    assert outbox(s, "enrolment_deposee") == []

    # Bastien's brevet does not count for Alice
    upload(s, tok["f1"], "brevet-natation", "f1-b")
    assert error_code(ask(s, tok["f1"], "f1-a", "stage"), 409) == \
        "documents_missing"
    assert table(required(s, tok["f1"]))[("f1-a", "stage")][
        "brevet-natation"] == "manquante"

    # Alice's own, waiting for the town's check, lets her ask
    upload(s, tok["f1"], "brevet-natation", "f1-a")
    r = ask(s, tok["f1"], "f1-a", "stage")
    assert r.status == 201 and r.json()["status"] == "demandee", r
    t = table(required(s, tok["f1"]))
    assert t[("f1-a", "stage")]["brevet-natation"] == "deposee"
    # an activity that requires nothing is asked as before
    assert ask(s, tok["f2"], "f2-a", "centre").status == 201


def test_refused_then_accepted(s, tok, agent):
    doc = upload(s, tok["f1"], "vaccinations", "f1-b")
    assert table(required(s, tok["f1"]))[("f1-b", "piscine")][
        "vaccinations"] == "deposee"
    decide(s, agent, doc, decision="refusee", reason="Illisible")
    body = required(s, tok["f1"])
    bastien = [c for c in body["children"] if c["child_id"] == "f1-b"][0]
    vacc = [a for a in bastien["activities"]
            if a["activity_id"] == "piscine"][0]["documents"][0]
    assert (vacc["type"], vacc["status"], vacc["reason"],
            vacc["document_id"]) == ("vaccinations", "refusee",
                                     "Illisible", doc)

    doc = upload(s, tok["f1"], "vaccinations", "f1-b")
    decide(s, agent, doc, decision="acceptee", valid_from="2026-01-01",
           valid_to="2027-12-31")
    t = table(required(s, tok["f1"]))
    assert t[("f1-b", "piscine")]["vaccinations"] == "valide"
    # still not Alice's
    assert t[("f1-a", "piscine")]["vaccinations"] == "a_renouveler"


def test_a_childs_document_books_for_that_child_only(s, tok):
    """Bastien's accepted vaccinations (previous test) let him book the
    pool; Alice's expire before the session: refused in the same answer,
    so both cells were judged on the same catalogue."""
    published(s)
    sid = "piscine-20270706"

    def both():
        r = s.http("POST", "/api/bookings", token=tok["f1"],
                   json={"items": [{"child_id": "f1-a", "session_id": sid},
                                   {"child_id": "f1-b", "session_id": sid}]},
                   headers={"Idempotency-Key": uuid.uuid4().hex})
        assert r.status == 200, r
        return [(i["status"], i.get("reason")) for i in r.json()["items"]]

    # an nginx worker may still hold the catalogue of before the
    # acceptance: asked again until Bastien's cell is confirmed
    deadline = time.monotonic() + 20
    got = both()
    while got[1] != ("confirmed", None) and time.monotonic() < deadline:
        time.sleep(0.1)
        got = both()
    assert got == [("refused", "documents_missing"), ("confirmed", None)]
