"""test_office_family_documents.py -- documents the town requires of the
whole family (issue 25, office/required.c, worker/overlay.c, migration
0111): the admin sets the town's list and what a missing one blocks;
the family sees them in its documents ahead with their state, counted;
one that blocks enrolment refuses the enrolment request until it is
uploaded; one that blocks booking is published with every activity, so
the engine refuses the booking until the town accepts it; a child's
document does not count for the family.
"""

import time
import uuid

import pytest

from office_town import (admin, agent, audit, error_code, module_sees,
                         published, staffed_stack, town, upload_pdf)


@pytest.fixture(scope="module")
def s(make_stack):
    return staffed_stack(make_stack, town(), "office-family-documents",
                         roles=("agent", "admin"))


@pytest.fixture(scope="module")
def tok(s):
    r = s.http("POST", "/api/session",
               json={"login": "dupont", "password": "secret-f1"})
    assert r.status == 200, r
    return r.json()["token"]


LIST = [{"type": "justificatif-domicile", "blocks": "reservation"},
        {"type": "attestation-caf", "blocks": "aucun"}]


def required(s, tok):
    r = s.http("GET", "/api/documents/required", token=tok)
    assert r.status == 200, r
    return r.json()


def book(s, tok, child, sid):
    r = s.http("POST", "/api/bookings", token=tok,
               json={"items": [{"child_id": child, "session_id": sid}]},
               headers={"Idempotency-Key": uuid.uuid4().hex})
    assert r.status == 200, r
    i = r.json()["items"][0]
    return i["status"], i.get("reason")


def module_requires(s, tok, want):
    """Waits until the centre's required documents, as every nginx worker's
    catalogue holds them (GET /api/activities), are want."""
    def centre(acts):
        acts = acts["activities"] if isinstance(acts, dict) else acts
        return [a["required_documents"] for a in acts
                if a["id"] == "centre"][0] == want
    module_sees(s, tok, centre, path="/api/activities")


def test_the_admin_sets_the_towns_list(s, agent, admin):
    r = s.http("GET", "/api/staff/family-documents", token=agent)
    assert r.status == 200 and r.json() == {"family_documents": []}, r
    r = s.http("PUT", "/api/staff/family-documents", token=agent,
               json={"family_documents": LIST})
    assert r.status == 403, r
    for body, words in (
            ({"family_documents": [{"type": "Domicile",
                                    "blocks": "aucun"}]}, "type"),
            ({"family_documents": [{"type": "x", "blocks": "tout"}]},
             "blocks"),
            ({"family_documents": [LIST[0], LIST[0]]}, "en double"),
            ({"family_documents": [{"type": "t%d" % i, "blocks": "aucun"}
                                   for i in range(9)]}, "8 pièces"),
            ({"family_documents": [{"type": "x"}]}, "blocks")):
        r = s.http("PUT", "/api/staff/family-documents", token=admin,
                   json=body)
        assert error_code(r, 400) == "invalid_field", (body, r)
        assert words in r.json()["error"]["message"], (body, r)
    assert s.sql("select count(*) from family_document_type") == [(0,)]
    r = s.http("PUT", "/api/staff/family-documents", token=admin,
               json={"family_documents": LIST})
    assert r.status == 200 and r.json() == {"family_documents": LIST}, r
    a = audit(s, "town.family_documents")[-1]
    assert a[:2] == ("chef", "town")


def test_the_family_sees_them_ahead_and_counted(s, tok):
    got = required(s, tok)
    assert [(d["type"], d["status"], d["blocks"]) for d in got["family"]] \
        == [("justificatif-domicile", "manquante", "reservation"),
            ("attestation-caf", "manquante", "aucun")]
    before = got["to_do"]
    # a child's document does not count for the family
    upload_pdf(s, tok, "attestation-caf", "f1-a")
    got = required(s, tok)
    assert got["family"][1]["status"] == "manquante"
    assert got["to_do"] == before
    upload_pdf(s, tok, "attestation-caf")
    got = required(s, tok)
    assert got["family"][1]["status"] == "deposee"
    assert got["to_do"] == before - 1


def test_missing_it_blocks_the_enrolment_request_then_the_booking(
        s, tok, agent):
    # Bastien (f1-b) has no enrolment in the centre
    r = s.http("POST", "/api/enrolments", token=tok,
               json={"child_id": "f1-b", "activity_id": "centre",
                     "from": "2027-07-01", "to": "2027-07-31"})
    assert error_code(r, 409) == "documents_missing"
    assert "justificatif-domicile" in r.json()["error"]["message"]
    assert "attestation-caf" not in r.json()["error"]["message"]

    # Alice is enrolled in the centre: the module now requires it
    published(s)
    module_requires(s, tok, ["justificatif-domicile"])
    assert book(s, tok, "f1-a", "centre-20270705") == \
        ("refused", "documents_missing")

    doc = upload_pdf(s, tok, "justificatif-domicile")
    r = s.http("POST", "/api/enrolments", token=tok,
               json={"child_id": "f1-b", "activity_id": "centre",
                     "from": "2027-07-01", "to": "2027-07-31"})
    assert r.status == 201, r
    # uploaded is not accepted: still refused
    published(s)
    assert book(s, tok, "f1-a", "centre-20270705") == \
        ("refused", "documents_missing")

    r = s.http("POST", "/api/staff/documents/%s/decision" % doc,
               token=agent, json={"decision": "acceptee",
                                  "valid_from": "2026-01-01",
                                  "valid_to": "2027-12-31"})
    assert r.status == 200, r
    published(s)
    deadline = time.monotonic() + 20
    got = book(s, tok, "f1-a", "centre-20270705")
    while got != ("confirmed", None) and time.monotonic() < deadline:
        time.sleep(0.1)
        got = book(s, tok, "f1-a", "centre-20270705")
    assert got == ("confirmed", None)
    assert required(s, tok)["family"][0]["status"] == "valide"


def test_a_type_that_blocks_nothing_more_is_published_no_more(s, tok,
                                                              admin):
    r = s.http("PUT", "/api/staff/family-documents", token=admin,
               json={"family_documents": [dict(LIST[0], blocks="aucun")]})
    assert r.status == 200, r
    published(s)
    module_requires(s, tok, [])
