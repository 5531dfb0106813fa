"""test_office_mydata.py -- the family's right of access (RGPD, issue 25,
office/mydata.c): GET /api/my-data downloads the whole file of the
family that asks, as JSON -- identity, children, contacts and entourage,
enrolments, documents, bookings, demandes, absences' justifications,
invoices, payments, messages and their attachments, connections -- and nothing of another family's, nor any secret; each
download is audited.
"""

import json
import time

import pytest

from office_town import (PDF, audit, book, error_code, published,
                         town, upload_pdf)


@pytest.fixture(scope="module")
def s(make_stack):
    st = make_stack(town(), name="office-mydata")
    st.ctl_run("set-email", "f1", "dupont@example.org")
    return st


@pytest.fixture(scope="module")
def tok(s):
    return s.tokens()


def login(s):
    r = s.http("POST", "/api/session",
               json={"login": "dupont", "password": "secret-f1"})
    assert r.status == 200, r
    return r.json()["token"]


def my_data(s, token):
    r = s.http("GET", "/api/my-data", token=token)
    assert r.status == 200, r
    assert r.headers["content-type"].startswith("application/json"), r
    assert r.headers["content-disposition"] == \
        'attachment; filename="mes-donnees-f1.json"', r
    assert r.headers["cache-control"] == "no-store", r
    return r.json()


def test_the_family_downloads_its_whole_file(s, tok):
    t = login(s)
    published(s)
    assert book(s, t, "f1-a", "centre-20270705") == ("confirmed", None)
    doc = upload_pdf(s, t, "attestation-assurance", "f1-b")
    att = s.http("POST", "/api/message-attachments?name=menu.pdf", token=t,
                 body=PDF, headers={"Content-Type": "application/pdf"})
    assert att.status == 201, att
    kept = s.http("POST", "/api/message-attachments?name=brouillon.pdf",
                  token=t, body=PDF, headers={"Content-Type":
                                              "application/pdf"})
    assert kept.status == 201, kept
    r = s.http("POST", "/api/messages", token=t,
               json={"service": "enfance", "subject": "Cantine",
                     "body": "Alice ne mange pas de porc.",
                     "attachments": [att.json()["id"]]})
    assert r.status == 201, r
    r = s.http("POST", "/api/entourage", token=t,
               json={"first_name": "Marie", "last_name": "Dupont",
                     "relation": "grand-mère", "phone": "06 11 22 33 44",
                     "can_pick_up": True, "emergency": True})
    assert r.status == 201, r
    r = s.http("PUT", "/api/contact", token=t,
               json={"email": "dupont@example.org",
                     "phone_mobile": "06 00 00 00 01"})
    assert r.status == 200, r
    # the other family's file must not leak into this one
    upload_pdf(s, tok["f2"], "vaccinations", "f2-a")
    s.sql("insert into invoice (number, family_id, month, total_cents,"
          " issued_at, due_date) values (9001, 'f1', '2027-07-01', 700,"
          " now(), '2027-08-15'), (9002, 'f2', '2027-07-01', 700, now(),"
          " '2027-08-15')")

    # the booking reaches PostgreSQL through the worker
    deadline = time.monotonic() + 20
    while not s.sql("select 1 from booking where family_id = 'f1'"):
        assert time.monotonic() < deadline, "booking never persisted"
        time.sleep(0.1)

    # an absence justified, as the worker records it from the stream
    s.sql("insert into booking_justification (booking_id, family_id,"
          " demande_number, justified_at, reason, document_id)"
          " select id, family_id, demande_number, now(), 'medical', %s"
          " from booking where family_id = 'f1'" % ("'%s'" % doc))

    d = my_data(s, t)
    assert d["format"] == "guichet-my-data/1"
    assert d["family"]["id"] == "f1" and d["family"]["login"] == "dupont"
    assert d["family"]["qf"] == 300
    assert d["email"]["address"] == "dupont@example.org"
    assert d["contact"]["phone_mobile"] == "06 00 00 00 01"
    assert [c["first_name"] for c in d["children"]] == ["Alice", "Bastien"]
    assert [(p["first_name"], p["relation"]) for p in d["entourage"]] == \
        [("Marie", "grand-mère")]
    assert {(e["child_id"], e["activity_id"]) for e in d["enrolments"]} == \
        {("f1-a", "centre"), ("f1-a", "piscine")}
    assert [(x["id"], x["type"], x["child_id"]) for x in d["documents"]] \
        == [(doc, "attestation-assurance", "f1-b")]
    assert [b["session_id"] for b in d["bookings"]] == ["centre-20270705"]
    assert len(d["demandes"]) == 1
    assert [i["number"] for i in d["invoices"]] == [9001]
    assert d["invoices"][0]["lines"] == []
    assert d["payments"] == {"online": [], "counter": []}
    assert [m["subject"] for m in d["messages"]] == ["Cantine"]
    assert [m["body"] for m in d["messages"][0]["messages"]] == \
        ["Alice ne mange pas de porc."]
    assert [a["filename"] for a in d["messages"][0]["messages"][0][
        "attachments"]] == ["menu.pdf"]
    assert [a["filename"] for a in d["attachments_not_sent"]] == \
        ["brouillon.pdf"]
    assert [(j["reason"], j["document_id"], j["status"])
            for j in d["justifications"]] == [("medical", str(doc), "en_examen")]
    assert d["connections"] and d["connections"][0]["ip"] == "127.0.0.1"

    text = json.dumps(d)
    for secret in ("password_hash", "stored_name", "token_hash",
                   "code_hash", "$argon2", "f2-a", "Zoé"):
        assert secret not in text, secret

    # the download is an access the journal shows
    rows = audit(s, "family.data_export")
    assert rows and rows[-1][0] == "family:f1" and rows[-1][1] == "f1", rows


def test_only_a_family_downloads_its_data(s, tok):
    assert error_code(s.http("GET", "/api/my-data"), 401) == "unauthenticated"
    # the other family gets its own file
    r = s.http("GET", "/api/my-data", token=tok["f2"])
    assert r.status == 200, r
    d = r.json()
    assert d["family"]["id"] == "f2"
    assert [x["child_id"] for x in d["documents"]] == ["f2-a"]
    assert "f1-a" not in r.body.decode()
    assert r.headers["content-disposition"] == \
        'attachment; filename="mes-donnees-f2.json"'
