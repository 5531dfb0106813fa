"""test_office_absences.py -- a justified absence is un-billed only once
the town accepts it (issue 25: office/absence.c, engine/src/absence.c,
worker/batch.c, migration 0101).

The reasons the town accepts are a setting (medical with its certificate,
a death in the family, ... ; a strike without proof), published into
Redis where POST /api/absences checks them.  A justification is
en_examen: billed by an invoice made meanwhile; accepted, the booking is
un-billed; refused, it stays billed and the family gets a message in its
messagerie and an e-mail.  Each decision once, audited.
"""

import uuid

import pytest

from office_town import (PDF, admin, agent, audit, error_code, outbox,
                         published, staffed_stack, town, upload_pdf)


@pytest.fixture(scope="module")
def s(make_stack):
    return staffed_stack(make_stack, town(), "office-absences",
                         roles=("agent", "admin"))


@pytest.fixture(scope="module")
def tok(s):
    return s.tokens()


def booking(s, token, child, sid):
    r = s.http("POST", "/api/bookings", token=token,
               json={"items": [{"child_id": child, "session_id": sid}]},
               headers={"Idempotency-Key": uuid.uuid4().hex})
    assert r.status == 200, r
    item = r.json()["items"][0]
    assert item["status"] == "confirmed", item
    return item["booking_id"]


def absence(s, token, bid, reason="medical", doc=None):
    body = {"booking_id": bid, "reason": reason}
    if doc is not None:
        body["document_id"] = str(doc)
    return s.http("POST", "/api/absences", token=token, json=body)


def justification(s, bid):
    rows = s.sql("select status, reason from booking_justification"
                 " where booking_id = %s", (bid,))
    return rows[0] if rows else None


def decide(s, token, bid, decision, reason=None):
    body = {"decision": decision}
    if reason is not None:
        body["reason"] = reason
    return s.http("POST", "/api/staff/absences/%s/decision" % bid,
                  token=token, json=body)


def test_the_towns_reasons(s, tok):
    r = s.http("GET", "/api/absence-reasons", token=tok["f1"])
    assert r.status == 200, r
    reasons = {x["code"]: x["proof_required"] for x in r.json()["reasons"]}
    assert reasons["medical"] is True and reasons["deces"] is True
    assert reasons["greve"] is False


def test_reasons_and_proofs_are_checked(s, tok):
    f1 = tok["f1"]
    bid = booking(s, f1, "f1-a", "centre-20270705")
    before = s.sql("select count(*) from booking_justification")[0][0]
    r = absence(s, f1, bid, "medical")
    assert error_code(r, 400) == "invalid_field"
    assert "document_id" in r.json()["error"]["message"]
    r = absence(s, f1, bid, "vacances")
    assert error_code(r, 400) == "invalid_field"
    assert "reason" in r.json()["error"]["message"]
    r = absence(s, f1, bid, "Medical!")
    assert error_code(r, 400) == "invalid_field"
    s.wait_worker_drained()
    assert s.sql("select count(*) from booking_justification")[0][0] == \
        before
    # a reason without proof
    r = absence(s, f1, bid, "greve")
    assert r.status == 200, r
    assert r.json()["status"] == "en_examen" and r.json()["billed"] is True
    s.wait_worker_drained()
    assert justification(s, bid) == ("en_examen", "greve")


def test_accepted_refused_and_the_invoice(s, tok, agent):
    f1 = tok["f1"]
    doc = upload_pdf(s, f1, "certificat_medical")
    bids = [booking(s, f1, "f1-a", "centre-202707%02d" % d)
            for d in (6, 7, 8)]
    for b in bids:
        r = absence(s, f1, b, "medical", doc)
        assert r.status == 200, r
        assert r.json()["status"] == "en_examen", r
    s.wait_worker_drained()

    # the family sees them en_examen, the agent among the pending ones
    mine = {a["booking_id"]: a for a in s.http(
        "GET", "/api/justifications", token=f1).json()["absences"]}
    assert all(mine[b]["status"] == "en_examen" for b in bids)
    assert mine[bids[0]]["reason_label"].startswith("Maladie")
    assert mine[bids[0]]["document_id"] == str(doc)
    assert s.http("GET", "/api/justifications",
                  token=tok["f2"]).json()["absences"] == []
    pending = [a["booking_id"] for a in s.http(
        "GET", "/api/staff/absences", token=agent).json()["absences"]]
    assert set(bids) <= set(pending)
    assert error_code(s.http("GET", "/api/staff/absences", token=f1),
                      403) == "forbidden"

    # accepted: un-billed
    r = decide(s, agent, bids[0], "acceptee")
    assert r.status == 200, r
    assert r.json()["status"] == "acceptee" and r.json()["invoiced"] is False
    assert s.sql("select justified from booking where id = %s",
                 (bids[0],))[0][0] is True
    assert outbox(s, "absence_acceptee")[-1][0] == "f1"

    # refused: billed, a message in the messagerie and an e-mail
    assert error_code(decide(s, agent, bids[1], "refusee"), 400) == \
        "invalid_field"
    r = decide(s, agent, bids[1], "refusee", "Certificat illisible.")
    assert r.status == 200, r
    assert r.json()["status"] == "refusee"
    assert r.json()["refusal_reason"] == "Certificat illisible."
    assert s.sql("select justified from booking where id = %s",
                 (bids[1],))[0][0] is False
    mail = outbox(s, "absence_refusee")[-1]
    assert mail[0] == "f1" and "Certificat illisible." in mail[3]
    assert "/#/messagerie?fil=" in mail[3]
    threads = s.http("GET", "/api/messages", token=f1).json()
    th = [t for t in threads["threads"]
          if t["subject"] == "Justificatif d'absence refusé"]
    assert len(th) == 1 and th[0]["unread"] == 1
    page = s.http("GET", "/api/messages/%d" % th[0]["id"], token=f1).json()
    assert "Certificat illisible." in page["messages"][0]["body"]
    assert page["messages"][0]["from"] == "staff"

    # each decision once
    for b, d in ((bids[0], "refusee"), (bids[1], "acceptee")):
        assert error_code(decide(s, agent, b, d, "x"), 409) == \
            "already_decided"
    assert error_code(decide(s, agent, "b-unknown", "acceptee"), 404) == \
        "not_found"
    assert error_code(decide(s, agent, bids[2], "peut-etre"), 400) == \
        "invalid_field"
    rows = [r for r in audit(s, "absence.decision")]
    assert len(rows) == 2 and rows[-1][0] == "agent.a"

    # the invoice counts what is pending or refused, not what is accepted
    s.ctl_run("invoice", "--month", "2027-07")
    lines = {r[0] for r in s.sql(
        "select booking_id from invoice_line l join invoice i"
        " on i.id = l.invoice_id where i.family_id = 'f1'")}
    assert bids[0] not in lines
    assert bids[1] in lines and bids[2] in lines

    # accepted after the invoice: the answer says it was invoiced (the
    # régie makes the credit note), the invoice is not changed
    total = s.sql("select sum(total_cents) from invoice"
                  " where family_id = 'f1'")[0][0]
    r = decide(s, agent, bids[2], "acceptee")
    assert r.status == 200 and r.json()["invoiced"] is True, r
    assert s.sql("select sum(total_cents) from invoice"
                 " where family_id = 'f1'")[0][0] == total


def test_an_admin_edits_the_reasons(s, tok, agent, admin):
    new = {"reasons": [
        {"code": "medical", "label": "Maladie (certificat)",
         "proof_required": True},
        {"code": "rdv", "label": "Rendez-vous médical",
         "proof_required": False}]}
    assert error_code(s.http("PUT", "/api/staff/absence-reasons",
                             token=agent, json=new), 403) == "forbidden"
    r = s.http("PUT", "/api/staff/absence-reasons", token=admin, json=new)
    assert r.status == 200, r
    assert audit(s, "absence_reasons.update")[-1][0] == "chef"
    published(s)
    assert [x["code"] for x in s.http(
        "GET", "/api/absence-reasons",
        token=tok["f2"]).json()["reasons"]] == ["medical", "rdv"]

    f2 = tok["f2"]
    bid = booking(s, f2, "f2-a", "centre-20270709")
    assert error_code(absence(s, f2, bid, "deces"), 400) == "invalid_field"
    r = absence(s, f2, bid, "rdv")
    assert r.status == 200 and r.json()["reason"] == "rdv", r

    for bad in ({"reasons": []},
                {"reasons": [{"code": "x y", "label": "a",
                              "proof_required": True}]},
                {"reasons": [{"code": "x", "label": "",
                              "proof_required": True}]},
                {"reasons": [{"code": "x", "label": "a",
                              "proof_required": "oui"}]},
                {"reasons": [{"code": "x", "label": "a",
                              "proof_required": True},
                             {"code": "x", "label": "b",
                              "proof_required": False}]}):
        assert error_code(s.http("PUT", "/api/staff/absence-reasons",
                                 token=admin, json=bad), 400) == \
            "invalid_field", bad
