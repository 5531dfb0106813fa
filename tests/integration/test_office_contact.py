"""test_office_contact.py -- a family's contact details (issue 25,
office/contact.c): e-mail and phones edited at once, a new postal
address that waits for the town, the agent's decision (audited,
e-mailed) that may change the residence and so the price band on the
booking path, and a reload of the town file that keeps that residence.
"""

import json
import time
import uuid

import pytest

from office_town import (audit, error_code, outbox, published, staff_add,
                         staff_login, town)


def contact_town():
    t = town()
    # non-residents pay more at the centre
    for a in t["activities"]:
        if a["id"] == "centre":
            a["non_resident_prices"] = [{"qf_max": None, "cents": 1200}]
    return t


@pytest.fixture(scope="module")
def s(make_stack):
    st = make_stack(contact_town(), name="office-contact")
    staff_add(st, "agent.c", "agent", "Camille Agent", "agent-pass-c")
    return st


@pytest.fixture(scope="module")
def tok(s):
    return s.tokens()


@pytest.fixture(scope="module")
def agent(s):
    return staff_login(s, "agent.c", "agent-pass-c")


def contact(s, token):
    r = s.http("GET", "/api/contact", token=token)
    assert r.status == 200, r
    return r.json()


def price(s, token, child, sid):
    r = s.http("POST", "/api/bookings", token=token,
               json={"items": [{"child_id": child, "session_id": sid}]},
               headers={"Idempotency-Key": uuid.uuid4().hex})
    assert r.status == 200, r
    item = r.json()["items"][0]
    assert item["status"] == "confirmed", item
    return item["price_cents"], item["booking_id"]


def test_phones_and_email_change_at_once(s, tok):
    c = contact(s, tok["f1"])
    assert (c["email"], c["phone_mobile"], c["address"], c["resident"],
            c["address_change"]) == (None, None, None, True, None)

    n = len(audit(s, "contact.update"))
    for bad in ({"email": "pas-une-adresse"},
                {"email": "a@b@c"},
                {"phone_mobile": "06 12"},
                {"phone_home": "appelez-moi"},
                {"fax": "01 02 03 04 05"}):
        assert error_code(s.http("PUT", "/api/contact", token=tok["f1"],
                                 json=bad), 400) == "invalid_field", bad
    assert len(audit(s, "contact.update")) == n

    r = s.http("PUT", "/api/contact", token=tok["f1"],
               json={"email": "dupont@example.org",
                     "phone_mobile": "+33 6 12 34 56 78",
                     "phone_home": "04 74 00 00 00", "phone_work": None})
    assert r.status == 200, r
    c = r.json()
    assert (c["email"], c["phone_mobile"], c["phone_home"],
            c["phone_work"]) == ("dupont@example.org", "+33 6 12 34 56 78",
                                 "04 74 00 00 00", None)
    assert contact(s, tok["f1"]) == c
    # the e-mails to the family go there
    assert s.sql("select address from family_email where family_id = 'f1'")\
        == [("dupont@example.org",)]
    actor, target, detail = audit(s, "contact.update")[-1]
    assert (actor, target, detail["phone_mobile"]) == \
        ("family:f1", "family:f1", "+33 6 12 34 56 78")
    # another family's details are its own
    assert contact(s, tok["f2"])["email"] is None


def test_a_new_address_waits_for_the_town(s, tok, agent):
    assert price(s, tok["f1"], "f1-a", "centre-20270705")[0] == 700

    addr = {"line1": "12 rue des Lilas", "line2": None,
            "postcode": "69001", "city": "Lyon"}
    for bad in (dict(addr, postcode="69 001!"), dict(addr, line1=" "),
                dict(addr, city=""), {"line1": "x"}):
        assert error_code(s.http("POST", "/api/contact/address",
                                 token=tok["f1"], json=bad), 400) == \
            "invalid_field", bad

    r = s.http("POST", "/api/contact/address", token=tok["f1"],
               json=dict(addr, line1="12 rue des Lilla"))
    assert r.status == 201, r
    # a typo: asked again, the first request is replaced
    r = s.http("POST", "/api/contact/address", token=tok["f1"], json=addr)
    assert r.status == 201, r
    c = r.json()
    assert c["address"] is None, "not before the town validates it"
    ch = c["address_change"]
    assert (ch["line1"], ch["postcode"], ch["city"], ch["status"]) == \
        ("12 rue des Lilas", "69001", "Lyon", "demandee")
    assert s.sql("select status from address_change where family_id = 'f1'"
                 " order by id") == [("annulee",), ("demandee",)]
    assert audit(s, "address.request")[-1][:2] == \
        ("family:f1", "address_change:%d" % ch["id"])

    # the back office's list; families may not see it
    assert error_code(s.http("GET", "/api/staff/address-changes",
                             token=tok["f1"]), 403) == "forbidden"
    r = s.http("GET", "/api/staff/address-changes?status=demandee",
               token=agent)
    assert r.status == 200, r
    [got] = r.json()["address_changes"]
    assert (got["id"], got["family_login"], got["current"],
            got["current_resident"]) == (ch["id"], "dupont", None, True)

    url = "/api/staff/address-changes/%d/decision" % ch["id"]
    assert error_code(s.http("POST", url, token=agent,
                             json={"decision": "refusee"}), 400) == \
        "invalid_field"
    assert error_code(s.http("POST", url, token=tok["f1"],
                             json={"decision": "validee"}), 403) == \
        "forbidden"
    # validated: Lyon is not the town, the family becomes non-resident
    r = s.http("POST", url, token=agent,
               json={"decision": "validee", "resident": False})
    assert r.status == 200, r
    assert (r.json()["status"], r.json()["resident"],
            r.json()["decided_by"]) == ("validee", False, "agent.c")
    assert error_code(s.http("POST", url, token=agent,
                             json={"decision": "refusee", "reason": "x"}),
                      409) == "already_decided"

    c = contact(s, tok["f1"])
    assert c["address"] == {"line1": "12 rue des Lilas", "line2": None,
                            "postcode": "69001", "city": "Lyon"}
    assert (c["resident"], c["address_change"]["status"]) == \
        (False, "validee")
    mails = outbox(s, "address_validee")
    assert len(mails) == 1 and "non-résident" in mails[0][3]
    assert mails[0][3].rstrip().endswith("/#/coordonnees")
    actor, target, detail = audit(s, "address_change.decision")[-1]
    assert (actor, target, detail["decision"], detail["resident"],
            detail["family_id"]) == ("agent.c", "address_change:%d"
                                     % ch["id"], "validee", "false", "f1")

    # the next bookings are priced on the non-residents' band (an nginx
    # worker may still hold the catalogue of before: a booking at the old
    # price is cancelled, free before the deadline, and asked again)
    published(s)
    deadline = time.monotonic() + 20
    while True:
        got, bid = price(s, tok["f1"], "f1-a", "centre-20270706")
        if got != 700 or time.monotonic() > deadline:
            break
        r = s.http("DELETE", "/api/bookings/" + bid, token=tok["f1"])
        assert r.status == 200, r
        time.sleep(0.1)
    assert got == 1200


def test_a_refusal_says_why(s, tok, agent):
    r = s.http("POST", "/api/contact/address", token=tok["f2"],
               json={"line1": "1 place de la Mairie", "postcode": "01500",
                     "city": "Ambérieu-en-Bugey"})
    assert r.status == 201, r
    cid = r.json()["address_change"]["id"]
    # a reason of blank lines is no reason, as for the other decisions
    assert error_code(s.http("POST", "/api/staff/address-changes/%d/"
                             "decision" % cid, token=agent,
                             json={"decision": "refusee",
                                   "reason": " \n\r\n"}), 400) == \
        "invalid_field"
    r = s.http("POST", "/api/staff/address-changes/%d/decision" % cid,
               token=agent, json={"decision": "refusee",
                                  "reason": "Justificatif de domicile "
                                            "manquant"})
    assert r.status == 200, r
    c = contact(s, tok["f2"])
    assert c["address"] is None and c["resident"] is True
    assert (c["address_change"]["status"], c["address_change"]["reason"]) \
        == ("refusee", "Justificatif de domicile manquant")
    assert "Justificatif" in outbox(s, "address_refusee")[0][3]
    assert error_code(s.http("POST", "/api/staff/address-changes/999999/"
                             "decision", token=agent,
                             json={"decision": "validee"}), 404) == \
        "not_found"


def test_a_town_reload_keeps_the_decided_residence(s, tok):
    with open(s.town_file, "w") as f:
        json.dump(contact_town(), f, ensure_ascii=False)
    out = s.ctl_run("load-town", s.town_file)
    assert "unchanged" in out, out
    assert s.sql("select resident from family where id = 'f1'") == \
        [(False,)]
    assert contact(s, tok["f1"])["resident"] is False


def test_paperless_invoices(s, tok):
    """« Adhésion à la facture en ligne » (migration 0024): the family
    opts in; the month's invoicing e-mails it instead of flagging its
    invoice for the post."""
    assert contact(s, tok["f1"])["paperless"] is False
    assert error_code(s.http("PUT", "/api/contact/paperless",
                             token=tok["f1"], json={"paperless": "oui"}),
                      400) == "invalid_field"
    r = s.http("PUT", "/api/contact/paperless", token=tok["f1"],
               json={"paperless": True})
    assert r.status == 200 and r.json()["paperless"] is True, r
    actor, target, detail = audit(s, "invoice.paperless")[-1]
    assert (actor, target, detail) == ("family:f1", "family:f1",
                                       {"paperless": "true"})

    # f2 stays on paper; both have a booking in July 2027
    price(s, tok["f2"], "f2-a", "centre-20270707")
    deadline = time.monotonic() + 20
    while s.sql("select count(distinct family_id) from booking"
                " where status = 'confirmed'")[0][0] < 2:
        assert time.monotonic() < deadline, "bookings never persisted"
        time.sleep(0.1)
    s.ctl_run("invoice", "--month", "2027-07")
    assert dict(s.sql("select family_id, paper from invoice"
                      " where month = '2027-07-01'")) == \
        {"f1": False, "f2": True}
    mails = outbox(s, "invoice")
    assert [m[0] for m in mails] == ["f1"]
    assert mails[0][2] == "Votre facture de juillet 2027 est disponible"
    assert "/#/factures" in mails[0][3] and "À payer avant le" in \
        mails[0][3]
    # invoicing again sends nothing twice
    s.ctl_run("invoice", "--month", "2027-07")
    assert len(outbox(s, "invoice")) == 1
