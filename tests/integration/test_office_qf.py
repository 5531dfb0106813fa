"""test_office_qf.py -- a change of quotient familial with the tax notice
(issue 25, office/qf.c): the family asks with the document it uploaded,
an agent validates the new QF (audited, e-mailed), the next bookings are
priced on its band, a reload of the town file keeps it; a refusal says
why.
"""

import json
import time
import uuid

import pytest

from office_town import (audit, error_code, outbox, staff_add, staff_login,
                         town, upload_pdf)


def qf_town():
    t = town()
    for a in t["activities"]:
        if a["id"] == "centre":
            a["prices"] = [{"qf_max": 500, "cents": 300},
                           {"qf_max": None, "cents": 900}]
    return t


@pytest.fixture(scope="module")
def s(make_stack):
    st = make_stack(qf_town(), name="office-qf")
    staff_add(st, "agent.q", "agent", "Quentin Agent", "agent-pass-q")
    return st


@pytest.fixture(scope="module")
def tok(s):
    return s.tokens()


@pytest.fixture(scope="module")
def agent(s):
    return staff_login(s, "agent.q", "agent-pass-q")


def price(s, token, sid):
    r = s.http("POST", "/api/bookings", token=token,
               json={"items": [{"child_id": "f1-a", "session_id": sid}]},
               headers={"Idempotency-Key": uuid.uuid4().hex})
    assert r.status == 200, r
    item = r.json()["items"][0]
    assert item["status"] == "confirmed", item
    return item["price_cents"], item["booking_id"]


def test_a_new_qf_with_the_tax_notice(s, tok, agent):
    assert price(s, tok["f1"], "centre-20270705")[0] == 300
    r = s.http("GET", "/api/qf-changes", token=tok["f1"])
    assert r.status == 200 and r.json() == {"qf": 300, "qf_changes": []}, r

    other = upload_pdf(s, tok["f2"], "avis-imposition")
    for bad in ({"document_id": other}, {"document_id": 999999},
                {"document_id": "abc"}, {}):
        assert error_code(s.http("POST", "/api/qf-changes", token=tok["f1"],
                                 json=bad), 400) == "invalid_field", bad

    doc = upload_pdf(s, tok["f1"], "avis-imposition")
    r = s.http("POST", "/api/qf-changes", token=tok["f1"],
               json={"document_id": doc,
                     "comment": "Changement de situation : reprise "
                                "d'emploi"})
    assert r.status == 201, r
    q = r.json()
    assert (q["status"], q["document_id"], q["current_qf"]) == \
        ("demandee", doc, 300)
    assert audit(s, "qf.request")[-1][:2] == ("family:f1",
                                             "qf_change:%d" % q["id"])

    r = s.http("GET", "/api/staff/qf-changes?status=demandee", token=agent)
    assert [x["id"] for x in r.json()["qf_changes"]] == [q["id"]]
    url = "/api/staff/qf-changes/%d/decision" % q["id"]
    assert error_code(s.http("POST", url, token=tok["f1"],
                             json={"decision": "validee", "qf": 800}),
                      403) == "forbidden"
    for bad in ({"decision": "validee"}, {"decision": "validee", "qf": -1},
                {"decision": "validee", "qf": 800, "from": "demain"},
                {"decision": "refusee"}):
        assert error_code(s.http("POST", url, token=agent, json=bad),
                          400) == "invalid_field", bad
    r = s.http("POST", url, token=agent,
               json={"decision": "validee", "qf": 800, "from": "2026-09-01"})
    assert r.status == 200, r
    assert (r.json()["status"], r.json()["qf"], r.json()["effective_from"],
            r.json()["decided_by"]) == ("validee", 800, "2026-09-01",
                                        "agent.q")
    assert error_code(s.http("POST", url, token=agent,
                             json={"decision": "refusee", "reason": "x"}),
                      409) == "already_decided"
    assert s.http("GET", "/api/qf-changes", token=tok["f1"]).json()["qf"] \
        == 800
    actor, target, detail = audit(s, "qf_change.decision")[-1]
    assert (actor, detail["qf"], detail["family_id"]) == \
        ("agent.q", "800", "f1")
    body = outbox(s, "qf_validee")[0][3]
    assert "800" in body and body.rstrip().endswith("/#/situation")

    # the next bookings on the band of 800 (an nginx worker may still hold
    # the catalogue of before: the old price is cancelled and asked again)
    deadline = time.monotonic() + 20
    while True:
        got, bid = price(s, tok["f1"], "centre-20270706")
        if got != 300 or time.monotonic() > deadline:
            break
        assert s.http("DELETE", "/api/bookings/" + bid,
                      token=tok["f1"]).status == 200
        time.sleep(0.1)
    assert got == 900

    # the town file's QF (300) does not come back with a reload
    with open(s.town_file, "w") as f:
        json.dump(qf_town(), f, ensure_ascii=False)
    assert "unchanged" in s.ctl_run("load-town", s.town_file)
    assert s.sql("select qf from family where id = 'f1'") == [(800,)]


def test_a_refusal_says_why(s, tok, agent):
    doc = upload_pdf(s, tok["f2"], "avis-imposition")
    r = s.http("POST", "/api/qf-changes", token=tok["f2"],
               json={"document_id": doc})
    assert r.status == 201, r
    r = s.http("POST", "/api/staff/qf-changes/%d/decision" % r.json()["id"],
               token=agent, json={"decision": "refusee",
                                  "reason": "Avis d'imposition illisible"})
    assert r.status == 200, r
    got = s.http("GET", "/api/qf-changes", token=tok["f2"]).json()
    assert got["qf"] == 800 and got["qf_changes"][0]["reason"] == \
        "Avis d'imposition illisible"
