"""test_office_documents.py -- documents in guichet-office
(office/document.c): upload with the type checked by content, list,
download (own family only), staff decisions, and how an accepted document
lifts documents_missing on the booking path (worker/overlay.c).

Refused uploads leave neither a row nor a file (not even a temporary
one) in office_upload_dir.
"""

import hashlib
import os

import pytest

from office_town import (JPEG, PDF, PNG, audit, book, book_until, error_code,
                         outbox, staff_add, staff_login, town)


@pytest.fixture(scope="module")
def s(make_stack):
    st = make_stack(town(), name="office-docs")
    staff_add(st, "agent.d", "agent", "Denise Agent", "agent-pass-2")
    return st


@pytest.fixture(scope="module")
def tok(s):
    return s.tokens()


@pytest.fixture(scope="module")
def agent(s):
    return staff_login(s, "agent.d", "agent-pass-2")


def upload(s, token, data, ctype, query="type=vaccinations", headers=None):
    h = {"Content-Type": ctype}
    h.update(headers or {})
    return s.http("POST", "/api/documents?" + query, token=token, body=data,
                  headers=h)


def files(s):
    return sorted(os.listdir(s._path("uploads")))


def state(s):
    return (s.sql("select count(*) from document")[0][0], files(s),
            s.sql("select count(*) from audit_log")[0][0])


def test_refused_uploads_write_nothing(s, tok):
    before = state(s)
    f1 = tok["f1"]
    # a PNG declared as a PDF, a text file named .pdf, a GIF
    assert error_code(upload(s, f1, PNG, "application/pdf"), 415) == \
        "unsupported_media_type"
    assert error_code(upload(s, f1, b"Bonjour, ceci est un certificat.\n",
                             "application/pdf",
                             headers={"X-Filename": "certificat.pdf"}),
                      415) == "unsupported_media_type"
    assert error_code(upload(s, f1, b"GIF89a\x01\x00\x01\x00\x00\x00\x00",
                             "image/png"), 415) == "unsupported_media_type"
    assert error_code(upload(s, f1, PDF, "text/plain"), 415) == \
        "unsupported_media_type"
    assert error_code(upload(s, f1, PDF, "application/json"), 415) == \
        "unsupported_media_type"
    # empty, too large (office_upload_max = 5 MiB), no type, bad type
    assert error_code(upload(s, f1, b"", "application/pdf"), 400) == \
        "empty_file"
    big = PDF + b"0" * (5 * 1024 * 1024)
    assert error_code(upload(s, f1, big, "application/pdf"), 413) == \
        "body_too_large"
    assert error_code(upload(s, f1, PDF, "application/pdf", query=""),
                      400) == "invalid_field"
    assert error_code(upload(s, f1, PDF, "application/pdf",
                             query="type=../x"), 400) == "invalid_field"
    # another family's child, no token
    assert error_code(upload(s, f1, PDF, "application/pdf",
                             query="type=vaccinations&child_id=f2-a"),
                      403) == "forbidden"
    assert error_code(s.http("POST", "/api/documents?type=vaccinations",
                             body=PDF,
                             headers={"Content-Type": "application/pdf"}),
                      401) == "unauthenticated"
    assert state(s) == before


def test_upload_list_download(s, tok):
    r = upload(s, tok["f1"], PDF, "application/pdf",
               query="type=vaccinations&child_id=f1-a",
               headers={"X-Filename": "../../Carnet de santé.pdf"})
    assert r.status == 201, r
    d = r.json()
    assert (d["family_id"], d["child_id"], d["type"], d["content_type"],
            d["size"], d["status"], d["valid_from"], d["valid_to"]) == \
        ("f1", "f1-a", "vaccinations", "application/pdf", len(PDF),
         "deposee", None, None)
    assert d["sha256"] == hashlib.sha256(PDF).hexdigest()
    assert d["filename"] == "Carnet_de_sant_.pdf"     # path, space, é
    stored = s.sql("select stored_name from document where id = %s",
                   (d["id"],))[0][0]
    assert files(s) == [stored]
    with open(os.path.join(s._path("uploads"), stored), "rb") as f:
        assert f.read() == PDF
    assert audit(s, "document.upload")[-1][:2] == \
        ("family:f1", "document:%d" % d["id"])

    # the name's extension is the detected type's (issue 18, finding 9)
    r = upload(s, tok["f1"], PNG, "image/png", query="type=photo&name=moi")
    assert r.status == 201 and r.json()["filename"] == "moi.png", r
    r = upload(s, tok["f1"], JPEG, "image/jpeg; charset=binary",
               query="type=certificat_medical")
    assert r.status == 201, r
    assert (r.json()["content_type"], r.json()["filename"]) == \
        ("image/jpeg", "certificat_medical.jpg")

    r = s.http("GET", "/api/documents", token=tok["f1"])
    assert r.status == 200, r
    assert [x["type"] for x in r.json()["documents"]] == \
        ["certificat_medical", "photo", "vaccinations"]
    assert s.http("GET", "/api/documents",
                  token=tok["f2"]).json()["documents"] == []

    r = s.http("GET", "/api/documents/%d" % d["id"], token=tok["f1"])
    assert r.status == 200 and r.body == PDF, r
    assert r.headers["content-type"] == "application/pdf"
    assert "attachment" in r.headers["content-disposition"]
    # another family's document is not found; so are junk ids
    for path in ("/api/documents/%d" % d["id"], "/api/documents/abc",
                 "/api/documents/99999"):
        tk = tok["f2"] if path.endswith(str(d["id"])) else tok["f1"]
        assert error_code(s.http("GET", path, token=tk), 404) == "not_found"


def test_accepted_document_lifts_documents_missing(s, tok, agent):
    # f1-a is enrolled in piscine, which requires vaccinations
    assert book(s, tok["f1"], "f1-a", "piscine-20270705") == \
        ("refused", "documents_missing")

    r = s.http("GET", "/api/staff/documents?status=deposee", token=agent)
    assert r.status == 200, r
    pending = [x for x in r.json()["documents"] if x["type"] ==
               "vaccinations"]
    assert len(pending) == 1
    doc = pending[0]["id"]

    r = s.http("GET", "/api/staff/documents/%d" % doc, token=agent)
    assert r.status == 200 and r.body == PDF, r

    url = "/api/staff/documents/%d/decision" % doc
    assert error_code(s.http("POST", url, token=agent,
                             json={"decision": "acceptee",
                                   "valid_from": "2027-12-31",
                                   "valid_to": "2027-01-01"}), 400) == \
        "invalid_field"
    assert error_code(s.http("POST", url, token=tok["f1"],
                             json={"decision": "acceptee"}), 403) == \
        "forbidden"
    r = s.http("POST", url, token=agent,
               json={"decision": "acceptee", "valid_from": "2027-01-01",
                     "valid_to": "2027-12-31"})
    assert r.status == 200, r
    assert (r.json()["status"], r.json()["valid_to"],
            r.json()["decided_by"]) == ("acceptee", "2027-12-31", "agent.d")

    assert book_until(s, tok["f1"], "f1-a", "piscine-20270705",
                      "documents_missing") == ("confirmed", None)

    assert error_code(s.http("POST", url, token=agent,
                             json={"decision": "refusee", "reason": "x"}),
                      409) == "already_decided"
    assert len(outbox(s, "document_accepte")) == 1
    actor, target, detail = audit(s, "document.decision")[-1]
    assert (actor, target, detail["decision"], detail["valid_to"]) == \
        ("agent.d", "document:%d" % doc, "acceptee", "2027-12-31")


def test_refusing_a_document(s, tok, agent):
    r = s.http("GET", "/api/staff/documents?status=deposee&family_id=f1",
               token=agent)
    photo = [x for x in r.json()["documents"] if x["type"] == "photo"][0]
    url = "/api/staff/documents/%d/decision" % photo["id"]
    assert error_code(s.http("POST", url, token=agent,
                             json={"decision": "refusee"}), 400) == \
        "invalid_field"
    r = s.http("POST", url, token=agent,
               json={"decision": "refusee", "reason": "Photo illisible"})
    assert r.status == 200 and r.json()["status"] == "refusee", r
    mails = outbox(s, "document_refuse")
    assert len(mails) == 1 and "Photo illisible" in mails[0][3]
    r = s.http("GET", "/api/documents", token=tok["f1"])
    got = {x["id"]: x for x in r.json()["documents"]}[photo["id"]]
    assert (got["status"], got["reason"]) == ("refusee", "Photo illisible")
    assert error_code(s.http("GET", "/api/staff/documents?status=nope",
                             token=agent), 400) == "invalid_field"
    assert error_code(s.http("GET", "/api/staff/documents/424242",
                             token=agent), 404) == "not_found"


def test_a_family_deletes_its_own_upload_until_it_is_accepted(s, tok, agent):
    """Issue 22: a parent could neither view nor delete the files it
    uploaded.  DELETE /api/documents/{id}: the row, the file and the id in
    {main}:f:<fid>:documents go, the audit keeps the deletion; another family's
    or an unknown id is 404; an accepted document stays (409)."""
    r = upload(s, tok["f1"], PDF, "application/pdf",
               query="type=attestation-assurance")
    assert r.status == 201, r
    doc = r.json()["id"]
    stored = s.sql("select stored_name from document where id = %s",
                   (doc,))[0][0]
    assert stored in files(s)
    assert s.redis.sismember("{main}:f:f1:documents", str(doc))

    assert error_code(s.http("DELETE", "/api/documents/%d" % doc,
                             token=tok["f2"]), 404) == "not_found"
    r = s.http("DELETE", "/api/documents/%d" % doc, token=tok["f1"])
    assert r.status == 204, r
    assert s.sql("select count(*) from document where id = %s",
                 (doc,))[0][0] == 0
    assert stored not in files(s)
    assert not s.redis.sismember("{main}:f:f1:documents", str(doc))
    actor, target, detail = audit(s, "document.delete")[-1]
    assert (actor, target, detail["family_id"]) == \
        ("family:f1", "document:%d" % doc, "f1")
    assert error_code(s.http("GET", "/api/documents/%d" % doc,
                             token=tok["f1"]), 404) == "not_found"
    assert error_code(s.http("DELETE", "/api/documents/%d" % doc,
                             token=tok["f1"]), 404) == "not_found"

    # accepted: it lets bookings through, it stays
    r = upload(s, tok["f1"], PDF, "application/pdf",
               query="type=attestation-assurance")
    kept = r.json()["id"]
    assert s.http("POST", "/api/staff/documents/%d/decision" % kept,
                  token=agent, json={"decision": "acceptee"}).status == 200
    assert error_code(s.http("DELETE", "/api/documents/%d" % kept,
                             token=tok["f1"]), 409) == "already_decided"
    assert s.sql("select count(*) from document where id = %s",
                 (kept,))[0][0] == 1
