"""test_office_enrolment.py -- enrolment requests in guichet-office
(office/enrolment.c) and how their decisions reach the booking path
(worker/overlay.c).

A family asks for a child's enrolment (POST /api/enrolments): a row
'demandee' of the enrolment table, an e-mail, an audit row.  Staff
validate or refuse it with a reason; the publisher lays the new status
over the town file, so bookings of that child go from not_enrolled to
confirmed -- or stay not_enrolled after a refusal.  Reloading the town
file keeps the office's requests and decisions.
"""

import json

import pytest

from office_town import (audit, book, enrolment_status, error_code,
                         module_sees, outbox, published, staff_add,
                         staff_login, town, upload_pdf)


@pytest.fixture(scope="module")
def s(make_stack):
    st = make_stack(town(), name="office-enrol")
    staff_add(st, "agent.a", "agent", "Agathe Agent", "agent-pass-1")
    return st


@pytest.fixture(scope="module")
def tok(s):
    return s.tokens()


@pytest.fixture(scope="module")
def agent(s):
    return staff_login(s, "agent.a", "agent-pass-1")


def ask(s, token, **kw):
    body = {"child_id": "f1-b", "activity_id": "centre",
            "from": "2027-07-01", "to": "2027-07-31"}
    body.update(kw)
    return s.http("POST", "/api/enrolments", token=token, json=body)


def test_list_shows_the_town_enrolments(s, tok):
    r = s.http("GET", "/api/enrolments", token=tok["f1"])
    assert r.status == 200, r
    en = r.json()["enrolments"]
    assert sorted((e["child_id"], e["activity_id"], e["status"], e["origin"])
                  for e in en) == [("f1-a", "centre", "validee", "town"),
                                   ("f1-a", "piscine", "validee", "town")]
    assert all(isinstance(e["id"], int) for e in en)
    assert en[0]["from"] == "2026-09-01" and en[0]["to"] == "2027-08-31"
    # the other family sees only its own
    r = s.http("GET", "/api/enrolments", token=tok["f2"])
    assert [e["child_id"] for e in r.json()["enrolments"]] == ["f2-a"]


def test_request_errors_write_nothing(s, tok):
    before = s.sql("select count(*) from enrolment")[0][0]
    assert error_code(s.http("POST", "/api/enrolments",
                             json={"child_id": "f1-b"}), 401) == \
        "unauthenticated"
    assert error_code(ask(s, tok["f2"]), 403) == "forbidden"
    assert error_code(ask(s, tok["f1"], child_id="nobody"), 403) == \
        "forbidden"
    assert error_code(ask(s, tok["f1"], activity_id="golf"), 400) == \
        "invalid_field"
    assert error_code(ask(s, tok["f1"], to="2027-06-01"), 400) == \
        "invalid_field"
    assert error_code(ask(s, tok["f1"], **{"from": "2027-02-30"}), 400) == \
        "invalid_field"
    assert error_code(ask(s, tok["f1"], extra=1), 400) == "invalid_field"
    assert error_code(s.http("POST", "/api/enrolments", token=tok["f1"],
                             body="child_id=f1-b"), 415) == \
        "unsupported_media_type"
    # f1-a is already enrolled in centre over these days
    assert error_code(ask(s, tok["f1"], child_id="f1-a"), 409) == \
        "already_requested"
    assert s.sql("select count(*) from enrolment")[0][0] == before
    assert s.sql("select count(*) from outbox")[0][0] == 0


def test_request_validate_then_book(s, tok, agent):
    assert book(s, tok["f1"], "f1-b", "centre-20270705") == \
        ("refused", "not_enrolled")

    r = ask(s, tok["f1"])
    assert r.status == 201, r
    e = r.json()
    assert (e["child_id"], e["activity_id"], e["status"], e["origin"],
            e["from"], e["to"], e["reason"]) == \
        ("f1-b", "centre", "demandee", "office", "2027-07-01", "2027-07-31",
         None)
    assert e["requested_at"] and e["decided_at"] is None
    eid = e["id"]

    # one request at a time over the same days
    assert error_code(ask(s, tok["f1"], **{"from": "2027-07-15",
                                           "to": "2027-08-15"}), 409) == \
        "already_requested"

    mails = outbox(s, "enrolment_deposee")
    assert len(mails) == 1 and mails[0][0] == "f1"
    assert "Bastien" in mails[0][3] and "Centre" in mails[0][3]
    assert audit(s, "enrolment.request")[-1][:2] == \
        ("family:f1", "enrolment:%d" % eid)

    # still not enrolled while the request waits (the module shows it)
    module_sees(s, tok["f1"], enrolment_status("f1-b", "centre",
                                               "2027-07-01"))
    assert enrolment_status("f1-b", "centre", "2027-07-01")(
        s.http("GET", "/api/me", token=tok["f1"]).json()) == "demandee"
    assert book(s, tok["f1"], "f1-b", "centre-20270705") == \
        ("refused", "not_enrolled")

    # staff see it among the requests and validate it
    r = s.http("GET", "/api/staff/enrolments?status=demandee", token=agent)
    assert r.status == 200, r
    assert [x["id"] for x in r.json()["enrolments"]] == [eid]
    r = s.http("POST", "/api/staff/enrolments/%d/decision" % eid,
               token=agent, json={"decision": "validee"})
    assert r.status == 200, r
    assert r.json()["status"] == "validee"
    assert r.json()["decided_by"] == "agent.a"

    # the booking path learns it from the republished catalogue
    published(s)
    cat = json.loads(s.redis.get("{main}:catalogue"))
    f1 = [f for f in cat["families"] if f["id"] == "f1"][0]
    assert {"child_id": "f1-b", "activity_id": "centre",
            "from": "2027-07-01", "to": "2027-07-31",
            "status": "validee"} in f1["enrolments"]
    module_sees(s, tok["f1"], lambda me: enrolment_status(
        "f1-b", "centre", "2027-07-01")(me) == "validee")
    assert book(s, tok["f1"], "f1-b", "centre-20270705") == \
        ("confirmed", None)

    mails = outbox(s, "enrolment_validee")
    assert len(mails) == 1 and mails[0][0] == "f1"
    actor, target, detail = audit(s, "enrolment.decision")[-1]
    assert (actor, target, detail["decision"]) == \
        ("agent.a", "enrolment:%d" % eid, "validee")

    # decided once
    assert error_code(s.http("POST", "/api/staff/enrolments/%d/decision"
                             % eid, token=agent,
                             json={"decision": "refusee", "reason": "x"}),
                      409) == "already_decided"


def test_refusal_needs_a_reason_and_blocks_booking(s, tok, agent):
    # piscine requires vaccinations: on file before the request
    upload_pdf(s, tok["f1"], "vaccinations", "f1-b")
    r = ask(s, tok["f1"], activity_id="piscine")
    assert r.status == 201, r
    eid = r.json()["id"]
    url = "/api/staff/enrolments/%d/decision" % eid

    assert error_code(s.http("POST", url, token=agent,
                             json={"decision": "refusee"}), 400) == \
        "invalid_field"
    assert error_code(s.http("POST", url, token=agent,
                             json={"decision": "refusee", "reason": "  "}),
                      400) == "invalid_field"
    assert error_code(s.http("POST", url, token=agent,
                             json={"decision": "peut-etre"}), 400) == \
        "invalid_field"
    assert s.sql("select status from enrolment where id = %s",
                 (eid,))[0][0] == "demandee"

    r = s.http("POST", url, token=agent,
               json={"decision": "refusee", "reason": "Groupe complet"})
    assert r.status == 200, r
    assert (r.json()["status"], r.json()["reason"]) == \
        ("refusee", "Groupe complet")
    mails = outbox(s, "enrolment_refusee")
    assert len(mails) == 1 and "Groupe complet" in mails[0][3]

    module_sees(s, tok["f1"], lambda me: enrolment_status(
        "f1-b", "piscine", "2027-07-01")(me) == "refusee")
    assert book(s, tok["f1"], "f1-b", "piscine-20270706") == \
        ("refused", "not_enrolled")

    # the family sees the refusal and its reason, and may ask again
    en = {e["id"]: e for e in
          s.http("GET", "/api/enrolments", token=tok["f1"]).json()
          ["enrolments"]}
    assert (en[eid]["status"], en[eid]["reason"]) == \
        ("refusee", "Groupe complet")
    r = ask(s, tok["f1"], activity_id="piscine")
    assert r.status == 201 and r.json()["status"] == "demandee", r
    assert len(outbox(s, "enrolment_deposee")) == 3


def test_staff_routes_are_staff_only(s, tok, agent):
    assert error_code(s.http("GET", "/api/staff/enrolments",
                             token=tok["f1"]), 403) == "forbidden"
    assert error_code(s.http("GET", "/api/staff/enrolments"), 401) == \
        "unauthenticated"
    assert error_code(s.http("POST", "/api/staff/enrolments/1/decision",
                             token=tok["f1"],
                             json={"decision": "validee"}), 403) == \
        "forbidden"
    assert error_code(s.http("POST", "/api/staff/enrolments/999999/decision",
                             token=agent, json={"decision": "validee"}),
                      404) == "not_found"
    assert error_code(s.http("POST", "/api/staff/enrolments/abc/decision",
                             token=agent, json={"decision": "validee"}),
                      404) == "not_found"
    assert error_code(s.http("GET", "/api/staff/enrolments?status=x",
                             token=agent), 400) == "invalid_field"


def test_reloading_the_town_keeps_office_requests_and_decisions(s, tok):
    assert book(s, tok["f2"], "f2-a", "centre-20270707") == \
        ("confirmed", None)
    before = s.sql("select id, child_id, activity_id, status, origin"
                   " from enrolment order by id")
    assert any(r[4] == "office" for r in before)
    # a staff decision on a town row survives too
    s.sql("update enrolment set status = 'refusee', reason = 'test',"
          " decided_at = now(), decided_by = 'agent.a'"
          " where child_id = 'f2-a' and activity_id = 'centre'")
    s.ctl_run("load-town", s.town_file)
    after = s.sql("select id, child_id, activity_id, status, origin"
                  " from enrolment order by id")
    assert after == [r if r[1] != "f2-a" else r[:3] + ("refusee", "town")
                     for r in before]
    # the town file says validee, the office's decision says refusee: the
    # booking path obeys the office
    module_sees(s, tok["f2"], lambda me: enrolment_status(
        "f2-a", "centre", "2026-09-01")(me) == "refusee")
    assert book(s, tok["f2"], "f2-a", "centre-20270708") == \
        ("refused", "not_enrolled")
    assert book(s, tok["f1"], "f1-b", "centre-20270706") == \
        ("confirmed", None)
