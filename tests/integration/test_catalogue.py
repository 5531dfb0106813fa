"""test_catalogue.py -- the town's changes reach the booking path: a staff
validation of an enrolment and a capacity increase, loaded with
`guichetctl load-town`, take effect on the next requests (the module
re-reads the catalogue every guichet_catalogue_refresh = 1 s); loading the
same file again changes nothing; a booking is never dropped by a reload.
"""

import copy
import json
import uuid


def town(status="demandee", places=2):
    return {
        "town": {"name": "Catalogue", "timezone": "Europe/Paris"},
        "units": [{"code": "MATIN", "label": "Matin", "starts": "08:30",
                   "ends": "12:00"}],
        "activities": [{
            "id": "a", "name": "Mercredis", "age_min": 3, "age_max": 12,
            "booking_opens_at": "2026-01-01T18:00:00+01:00",
            "deadline": {"working_days": 2},
            "prices": [{"qf_max": None, "cents": 500}],
            "sessions": [{"id": "a-1", "date": "2027-07-07", "unit": "MATIN",
                          "places": places}]}],
        "families": [{
            "id": "f1", "qf": 400,
            "children": [{"id": "c1", "first_name": "Léa",
                          "birth_date": "2019-05-01"},
                         {"id": "c2", "first_name": "Tom",
                          "birth_date": "2018-05-01"}],
            "enrolments": [{"child_id": c, "activity_id": "a",
                            "from": "2027-01-01", "to": "2027-12-31",
                            "status": status} for c in ("c1", "c2")]}],
    }


def book(s, tok, child):
    r = s.http("POST", "/api/bookings", token=tok,
               headers={"Idempotency-Key": uuid.uuid4().hex},
               json={"items": [{"child_id": child, "session_id": "a-1"}]})
    assert r.status == 200, r
    return r.json()["items"][0]


def reload(s, t):
    with open(s.town_file, "w") as f:
        json.dump(t, f, ensure_ascii=False)
    s.ctl_run("load-town", s.town_file)


def places_left(s):
    return s.http("GET", "/api/activities/a/sessions?from=2027-07-07"
                  "&to=2027-07-07").json()[0]["places_left"]


def test_validation_and_capacity_reach_the_booking_path(make_stack):
    t = town()
    s = make_stack(t, name="catalogue")
    tok = s.token("f1")

    assert book(s, tok, "c1")["reason"] == "not_enrolled"

    # the town validates the enrolment: once every nginx worker holds the
    # new catalogue, the first booking is confirmed, whichever worker
    # takes it
    t2 = town(status="validee")
    reload(s, t2)
    s.wait_catalogue_everywhere()
    item = book(s, tok, "c1")
    assert item["status"] == "confirmed", item
    assert places_left(s) == 0                      # 2 places, 1 online

    assert book(s, tok, "c2")["reason"] == "full"

    # the same file again: nothing changes, the booking stays
    reload(s, copy.deepcopy(t2))
    s.wait_catalogue_everywhere()
    assert places_left(s) == 0
    s.wait_worker_drained()
    assert s.sql("select count(*) from booking where status = 'confirmed'"
                 )[0][0] == 1

    # six places: three online, one taken -> two left, at once
    reload(s, town(status="validee", places=6))
    s.wait_catalogue_everywhere()
    assert places_left(s) == 2
    assert book(s, tok, "c2")["status"] == "confirmed"


def test_metrics_say_which_catalogue_each_worker_holds(make_stack):
    """/metrics' guichet_catalogue_generation{town,worker} and
    guichet_revoked_generation: the generation of the town's catalogue and
    revoked set each nginx worker holds (dev.conf runs two): what a test or
    an operator reads to know that every worker took a publication or a
    logout."""
    s = make_stack(town(), name="generations")
    gen = s.wait_catalogue_everywhere()
    assert gen >= 1
    assert s.catalogue_generations() == {0: gen, 1: gen}

    reload(s, town(places=4))
    new = s.wait_catalogue_everywhere()
    assert new > gen
    assert s.catalogue_generations() == {0: new, 1: new}

    # a logout: both workers move to its revoked set and refuse the token
    assert set(s.catalogue_generations(what="revoked").values()) == {0}
    tok = s.token("f1")
    assert s.http("DELETE", "/api/session", token=tok).status == 204
    gen = s.wait_revoked_everywhere()
    assert gen >= 1
    assert s.catalogue_generations(what="revoked") == {0: gen, 1: gen}
    for _ in range(4):
        assert s.http("GET", "/api/me", token=tok).status == 401
