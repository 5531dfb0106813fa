"""test_office_regies.py -- several régies (office/counter.c, issue 26):
an admin creates a régie and gives it an activity; the month's
accounting export of each régie counts its invoices, and of an invoice
made before the régies had their own (migration 0041) the lines of its
activities (the invoices made by the real monthly invoicing of real
bookings); only an admin changes régies.
"""

import uuid

import pytest

from office_town import audit, csv_rows, error_code, staff_token, staffed_stack


def town():
    acts = []
    for aid, cents in (("centre", 700), ("cantine", 350)):
        acts.append({"id": aid, "name": aid.capitalize(),
                     "booking_opens_at": "2026-01-01T18:00:00+01:00",
                     "prices": [{"qf_max": None, "cents": cents}],
                     "sessions": [{"id": "%s-%d" % (aid, d),
                                   "date": "2027-07-%02d" % d,
                                   "unit": "MATIN" if aid == "centre"
                                   else "REPAS", "places": 10}
                                  for d in (5, 6)]})
    return {
        "town": {"name": "Régies", "timezone": "Europe/Paris"},
        "units": [{"code": "MATIN", "label": "Matin", "starts": "08:30",
                   "ends": "12:00"},
                  {"code": "REPAS", "label": "Repas", "starts": "12:00",
                   "ends": "13:30"}],
        "activities": acts,
        "families": [{"id": "f1", "qf": 300,
                      "children": [{"id": "f1-a", "first_name": "Alice",
                                    "birth_date": "2018-04-04"}],
                      "enrolments": [{"child_id": "f1-a", "activity_id": a,
                                      "from": "2027-01-01",
                                      "to": "2027-12-31",
                                      "status": "validee"}
                                     for a in ("centre", "cantine")]}],
    }


@pytest.fixture(scope="module")
def s(make_stack):
    return staffed_stack(make_stack, town(), "office-regies",
                         roles=("regie", "admin"))


def test_one_export_per_regie(s):
    regie = staff_token(s, "regie")
    admin = staff_token(s, "admin")
    r = s.http("POST", "/api/bookings", token=s.token("f1"),
               headers={"Idempotency-Key": uuid.uuid4().hex},
               json={"items": [{"child_id": "f1-a", "session_id": x}
                               for x in ("centre-5", "centre-6",
                                         "cantine-5")]})
    assert r.status == 200, r
    s.wait_worker_drained()
    r = s.http("POST", "/api/staff/invoicing", token=regie,
               json={"month": "2027-07"})
    assert r.status == 200 and r.json()["created"] == 1, r
    reference = s.sql("select reference from invoice")[0][0]
    assert reference == "PRINCIPALE-000001"

    # the kitchen's own régie, for the canteen
    body = {"code": "cantine", "name": "Régie de la restauration"}
    assert error_code(s.http("POST", "/api/staff/regies", token=regie,
                             json=body), 403) == "forbidden"
    r = s.http("POST", "/api/staff/regies", token=admin, json=body)
    assert r.status == 201, r
    assert error_code(s.http("POST", "/api/staff/regies", token=admin,
                             json=body), 409) == "already_exists"
    assert error_code(s.http("POST", "/api/staff/regies", token=admin,
                             json={"code": "A B", "name": "x"}), 400) == \
        "invalid_field"
    assert error_code(s.http("PUT", "/api/staff/activities/cantine/regie",
                             token=regie, json={"regie": "cantine"}),
                      403) == "forbidden"
    r = s.http("PUT", "/api/staff/activities/cantine/regie", token=admin,
               json={"regie": "cantine"})
    assert r.status == 200, r
    assert {x["code"]: x["activities"] for x in r.json()["regies"]} == \
        {"cantine": ["cantine"], "principale": ["centre"]}
    assert error_code(s.http("PUT", "/api/staff/activities/golf/regie",
                             token=admin, json={"regie": "cantine"}),
                      404) == "not_found"
    assert [a[1] for a in audit(s, "activity.regie")] == ["activity:cantine"]

    month = s.sql("select to_char(now() at time zone 'Europe/Paris',"
                  " 'YYYY-MM')")[0][0]
    url = "/api/staff/exports/accounting?month=%s" % month
    assert [(x[0], x[2], x[5]) for x in csv_rows(s.http("GET", url,
                                                    token=regie))] == \
        [("facture", reference, "17,50")]
    main = s.http("GET", url + "&regie=principale", token=regie)
    assert "guichet-comptabilite-principale-" in \
        main.header_all("Content-Disposition")[0]
    # invoiced before the canteen had its régie: the whole invoice is the
    # régie principale's (migration 0041)
    assert [(x[0], x[5]) for x in csv_rows(main)] == [("facture", "17,50")]
    assert csv_rows(s.http("GET", url + "&regie=cantine", token=regie)) == []

    # an invoice made before 0041 (no régie, all régies' lines): each
    # régie's export counts its lines of it
    s.sql("update invoice set regie_code = null")
    number = s.sql("select number from invoice")[0][0]
    assert [(x[0], x[2], x[5]) for x in csv_rows(s.http("GET", url,
                                                    token=regie))] == \
        [("facture", str(number), "17,50")]
    assert [(x[0], x[5]) for x in csv_rows(s.http(
        "GET", url + "&regie=principale", token=regie))] == \
        [("facture", "14,00")]
    assert [(x[0], x[5]) for x in csv_rows(s.http("GET", url + "&regie=cantine",
                                              token=regie))] == \
        [("facture", "3,50")]
    assert error_code(s.http("GET", url + "&regie=piscine", token=regie),
                      404) == "not_found"
