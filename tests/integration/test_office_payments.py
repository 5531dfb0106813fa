"""test_office_payments.py -- online payments through the PayFiP-like
simulator, direct-debit mandates, the SEPA export and the régie's routes
(office/payment.c, invoicing.c, office/paysim/paysim.py, ctl/sepa.c), on a
whole stack (Redis, PostgreSQL, worker, office, nginx, simulator).

The simulator is driven over HTTP as a browser would: the redirect_url page,
then its form (choix=payer|payer_double|refuser|abandonner), whose answer
is a 303 to the site's return page after the notification was sent.
"""

import http.client
import json
import os
import subprocess
import time
import urllib.parse
import xml.etree.ElementTree as ET

import pytest

from stack import DEMO_TOWN, ROOT

NS = {"p": "urn:iso:std:iso:20022:tech:xsd:pain.008.001.02"}

VALID_IBANS = ["FR76 3000 6000 0112 3456 7890 189",
               "FR1420041010050500013M02606",
               "fr76-3000-1007-9412-3456-7890-185"]


def town():
    """The demo town, its families without direct debit, plus two more
    (f-pay-a, f-pay-b) without children."""
    with open(DEMO_TOWN) as f:
        t = json.load(f)
    for fam in t["families"]:
        fam["direct_debit"] = False
    for n in ("a", "b"):
        t["families"].append({"id": "f-pay-" + n, "login": "pay" + n,
                              "password": "secret-pay", "qf": 500,
                              "resident": True, "direct_debit": False,
                              "children": [], "enrolments": [],
                              "documents": []})
    return t


@pytest.fixture(scope="module")
def s(make_stack):
    return make_stack(town(), name="office-payments")


@pytest.fixture(scope="module")
def tok(s):
    return s.tokens()


@pytest.fixture(scope="module")
def fams(tok):
    f = sorted(tok)
    assert len(f) >= 4, "the demo town has fewer than four families"
    return f


def error_code(r, status):
    assert r.status == status, r
    return r.json()["error"]["code"]


_month = [0]


def invoice(s, fid, cents, month=None):
    """A fresh invoice row of family fid (one per family and month: each
    call takes another month of 2020-2029 unless month is given)."""
    if month is None:
        _month[0] += 1
        month = "%04d-%02d-01" % (2020 + _month[0] // 12,
                                  _month[0] % 12 + 1)
    rows = s.sql("insert into invoice (number, family_id, month,"
                 " total_cents, issued_at, due_date)"
                 " values ((select coalesce(max(number), 0) + 1"
                 " from invoice), %s, %s, %s, now(), %s) returning id",
                 (fid, month, cents, month))
    return rows[0][0]


def paid(s, iid):
    return s.sql("select paid, paid_by from invoice where id = %s",
                 (iid,))[0]


def sim(s, method, url, body=None):
    """One request to the simulator (an absolute URL of payfip_url)."""
    u = urllib.parse.urlsplit(url)
    assert url.startswith(s.payfip_url + "/"), url
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    try:
        h = {}
        if body is not None:
            h["Content-Type"] = "application/x-www-form-urlencoded"
        c.request(method, u.path + ("?" + u.query if u.query else ""),
                  body=body, headers=h)
        r = c.getresponse()
        return r.status, dict((k.lower(), v) for k, v in r.getheaders()), \
            r.read().decode()
    finally:
        c.close()


def pay(s, t, ids, choice="payer"):
    """Creates the operation and answers the simulator's page with choice;
    the operation's JSON as the return page reads it."""
    r = s.http("POST", "/api/payments", token=t, json={"invoice_ids": ids})
    assert r.status == 201, r
    op = r.json()
    assert op["redirect_url"] == "%s/paiement/%s" % (s.payfip_url,
                                                     op["operation_id"])
    st, _, page = sim(s, "GET", op["redirect_url"])
    assert st == 200 and "Payer" in page and "Abandonner" in page
    st, h, _ = sim(s, "POST", op["redirect_url"], "choix=" + choice)
    assert st == 303
    assert h["location"] == "%s/#factures?paiement=%s" % (
        s.url, op["operation_id"])
    r = s.http("GET", "/api/payments/" + op["operation_id"], token=t)
    assert r.status == 200, r
    return dict(r.json(), created=op)


def test_pay_one_invoice_through_the_simulator(s, tok, fams):
    f = fams[0]
    iid = invoice(s, f, 12345)
    r = s.http("POST", "/api/payments", token=tok[f],
               json={"invoice_ids": [iid]})
    assert r.status == 201, r
    op = r.json()
    assert op["amount_cents"] == 12345 and op["status"] == "pending"
    assert len(op["operation_id"]) == 32

    # the provider knows the operation, the page shows the amount
    st, _, body = sim(s, "GET", "%s/api/operations/%s"
                      % (s.payfip_url, op["operation_id"]))
    assert st == 200 and json.loads(body)["status"] == "pending"
    st, _, page = sim(s, "GET", op["redirect_url"])
    assert "123,45 €" in page and 'lang="fr"' in page
    assert paid(s, iid) == (False, None)

    st, h, _ = sim(s, "POST", op["redirect_url"], "choix=payer")
    assert st == 303

    r = s.http("GET", "/api/payments/" + op["operation_id"], token=tok[f])
    got = r.json()
    assert got["status"] == "paid" and got["settled_at"]
    assert [i["id"] for i in got["invoices"]] == [iid]
    assert paid(s, iid) == (True, "online")

    # the booking path's Redis data: the family's invoices, paid
    inv = json.loads(s.redis.get("{main}:f:%s:invoices" % f))
    assert [i["paid"] for i in inv if i["id"] == iid] == [True]
    # an e-mail, an audit row, the catalogue republished
    assert s.sql("select count(*) from outbox where kind = 'payment'"
                 " and ref = %s", (op["operation_id"],))[0][0] == 1
    assert s.sql("select count(*) from audit_log where action ="
                 " 'payment.settle' and target = %s",
                 (op["operation_id"],))[0][0] == 1

    lst = s.http("GET", "/api/payments", token=tok[f]).json()
    assert op["operation_id"] in [o["operation_id"]
                                  for o in lst["operations"]]


def test_pay_two_invoices_at_once(s, tok, fams):
    f = fams[0]
    a, b = invoice(s, f, 1000), invoice(s, f, 2550)
    got = pay(s, tok[f], [a, b])
    assert got["status"] == "paid" and got["amount_cents"] == 3550
    assert paid(s, a) == (True, "online") and paid(s, b) == (True, "online")
    assert error_code(s.http("POST", "/api/payments", token=tok[f],
                             json={"invoice_ids": [a]}), 409) == \
        "invoice_paid"


def test_refusal_and_abandonment_leave_invoices_payable(s, tok, fams):
    f = fams[1]
    iid = invoice(s, f, 4200)
    assert pay(s, tok[f], [iid], "refuser")["status"] == "refused"
    assert paid(s, iid) == (False, None)
    assert pay(s, tok[f], [iid], "abandonner")["status"] == "abandoned"
    assert paid(s, iid) == (False, None)
    assert s.sql("select count(*) from outbox where kind = 'payment'"
                 " and family_id = %s and subject = 'Paiement non abouti'",
                 (f,))[0][0] >= 2
    assert pay(s, tok[f], [iid])["status"] == "paid"
    assert paid(s, iid) == (True, "online")
    ops = s.sql("select status from payment_operation o join"
                " payment_operation_invoice p on p.operation_id = o.id"
                " where p.invoice_id = %s order by created_at", (iid,))
    assert [o[0] for o in ops] == ["refused", "abandoned", "paid"]


def test_a_pending_operation_blocks_another(s, tok, fams):
    f = fams[1]
    iid = invoice(s, f, 990)
    r = s.http("POST", "/api/payments", token=tok[f],
               json={"invoice_ids": [iid]})
    assert r.status == 201
    assert error_code(s.http("POST", "/api/payments", token=tok[f],
                             json={"invoice_ids": [iid]}), 409) == \
        "payment_pending"
    st, _, _ = sim(s, "POST", r.json()["redirect_url"], "choix=payer")
    assert st == 303 and paid(s, iid) == (True, "online")


def test_duplicated_notification_pays_once(s, tok, fams):
    f = fams[2]
    iid = invoice(s, f, 7777)
    got = pay(s, tok[f], [iid], "payer_double")
    opid = got["operation_id"]
    assert got["status"] == "paid"
    st, _, body = sim(s, "GET", "%s/api/operations/%s" % (s.payfip_url,
                                                          opid))
    assert st == 200

    # and once more, by hand, as a provider retrying would
    r = s.http("POST", "/api/payments/notify", body="idop=" + opid,
               headers={"Content-Type":
                        "application/x-www-form-urlencoded"})
    assert r.status == 200 and r.json()["status"] == "paid"

    assert paid(s, iid) == (True, "online")
    assert s.sql("select count(*) from payment_overpayment"
                 " where operation_id = %s", (opid,))[0][0] == 0
    assert s.sql("select count(*) from outbox where kind = 'payment'"
                 " and ref = %s", (opid,))[0][0] == 1
    assert s.sql("select count(*) from audit_log where action ="
                 " 'payment.settle' and target = %s", (opid,))[0][0] == 1
    assert s.sql("select settled_at is not null from payment_operation"
                 " where id = %s", (opid,))[0][0]


def test_lost_notification_is_made_up_for(s, tok, fams):
    """The provider paid but never notified: the return page's read and a
    new payment of the same invoice ask the provider and settle."""
    f = fams[2]
    iid = invoice(s, f, 1500)
    got = pay(s, tok[f], [iid], "payer_perdue")     # reads the return page
    assert got["status"] == "paid" and paid(s, iid) == (True, "online")

    iid = invoice(s, f, 1600)
    r = s.http("POST", "/api/payments", token=tok[f],
               json={"invoice_ids": [iid]})
    st, _, _ = sim(s, "POST", r.json()["redirect_url"],
                   "choix=payer_perdue")
    assert st == 303 and paid(s, iid) == (False, None)
    assert error_code(s.http("POST", "/api/payments", token=tok[f],
                             json={"invoice_ids": [iid]}), 409) == \
        "invoice_paid"
    assert paid(s, iid) == (True, "online")


def test_invoice_paid_elsewhere_meanwhile_is_an_overpayment(s, tok, fams):
    f = fams[2]
    iid = invoice(s, f, 3000)
    r = s.http("POST", "/api/payments", token=tok[f],
               json={"invoice_ids": [iid]})
    assert r.status == 201
    s.sql("update invoice set paid = true, paid_by = 'counter'"
          " where id = %s", (iid,))
    st, _, _ = sim(s, "POST", r.json()["redirect_url"], "choix=payer")
    assert st == 303
    assert paid(s, iid) == (True, "counter")         # not paid twice
    assert s.sql("select amount_cents from payment_overpayment"
                 " where operation_id = %s and invoice_id = %s",
                 (r.json()["operation_id"], iid)) == [(3000,)]


def test_amount_limits(s, tok, fams):
    f = fams[3]
    t = tok[f]
    small = invoice(s, f, 99)
    assert error_code(s.http("POST", "/api/payments", token=t,
                             json={"invoice_ids": [small]}), 422) == \
        "amount_out_of_range"
    one_euro = invoice(s, f, 100)
    assert s.http("POST", "/api/payments", token=t,
                  json={"invoice_ids": [one_euro]}).status == 201
    big, big2 = invoice(s, f, 9999999), invoice(s, f, 2)
    assert error_code(s.http("POST", "/api/payments", token=t,
                             json={"invoice_ids": [big, big2]}), 422) == \
        "amount_out_of_range"
    top = invoice(s, f, 10000000)
    assert s.http("POST", "/api/payments", token=t,
                  json={"invoice_ids": [top]}).status == 201
    # nothing half written by the refusals
    assert s.sql("select count(*) from payment_operation_invoice"
                 " where invoice_id in (%s, %s, %s)",
                 (small, big, big2))[0][0] == 0


def test_bad_requests(s, tok, fams):
    f, other = fams[3], fams[0]
    t = tok[f]
    theirs = invoice(s, other, 5000)
    mine = invoice(s, f, 5000)
    assert error_code(s.http("POST", "/api/payments", token=t,
                             json={"invoice_ids": [theirs]}), 404) == \
        "not_found"
    assert error_code(s.http("POST", "/api/payments", token=t,
                             json={"invoice_ids": [mine, theirs]}),
                      404) == "not_found"
    assert error_code(s.http("POST", "/api/payments", token=t,
                             json={"invoice_ids": [987654321]}), 404) == \
        "not_found"
    for body in ({"invoice_ids": []}, {"invoice_ids": [mine, mine]},
                 {"invoice_ids": ["1"]}, {"invoice_ids": [1.5]},
                 {"invoice_ids": list(range(1, 52))}, {"ids": [mine]}):
        assert error_code(s.http("POST", "/api/payments", token=t,
                                 json=body), 400) == "invalid_field", body
    assert s.http("POST", "/api/payments",
                  json={"invoice_ids": [mine]}).status == 401
    # another family cannot read an operation
    r = s.http("POST", "/api/payments", token=t,
               json={"invoice_ids": [mine]})
    assert r.status == 201
    assert error_code(s.http("GET", "/api/payments/" +
                             r.json()["operation_id"], token=tok[other]),
                      404) == "not_found"
    # notifications: form-encoded idop of a known operation
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    assert error_code(s.http("POST", "/api/payments/notify",
                             body="idop=" + "0" * 32, headers=form),
                      404) == "not_found"
    assert error_code(s.http("POST", "/api/payments/notify",
                             body="idop=../x", headers=form), 400) == \
        "invalid_field"
    assert error_code(s.http("POST", "/api/payments/notify",
                             json={"idop": "0" * 32}), 415) == \
        "unsupported_media_type"


def mandate(s, t, iban, bic="BNPAFRPPXXX", holder="Famille Test"):
    return s.http("PUT", "/api/direct-debit", token=t,
                  json={"iban": iban, "bic": bic, "holder": holder})


def test_direct_debit_mandate_and_iban_checks(s, tok, fams):
    f = fams[3]
    t = tok[f]
    r = mandate(s, t, "FR7630006000011234567890188")     # last digit off
    assert error_code(r, 400) == "invalid_field"
    assert "iban" in r.json()["error"]["message"]
    assert error_code(mandate(s, t, "FR1520041010050500013M02606"),
                      400) == "invalid_field"
    assert error_code(mandate(s, t, VALID_IBANS[0], bic="BNPAFRP"),
                      400) == "invalid_field"
    assert s.sql("select count(*) from direct_debit_mandate"
                 " where family_id = %s", (f,))[0][0] == 0

    version = s.sql("select version from catalogue where id = 1")[0][0]
    for n, iban in enumerate(VALID_IBANS, 1):
        r = mandate(s, t, iban)
        assert r.status == 200, r
        m = r.json()["mandate"]
        assert m["reference"] == "GCH-%s-%d" % (f, n)
        assert m["iban"] == iban.replace(" ", "").replace("-", "").upper()
    assert s.sql("select version from catalogue where id = 1")[0][0] > \
        version
    assert s.sql("select count(*) from direct_debit_mandate where"
                 " family_id = %s and ended_at is null", (f,))[0][0] == 1
    g = s.http("GET", "/api/direct-debit", token=t).json()
    assert g["active"] is True and g["mandate"]["reference"] == \
        "GCH-%s-3" % f

    iid = invoice(s, f, 5000)
    assert error_code(s.http("POST", "/api/payments", token=t,
                             json={"invoice_ids": [iid]}), 403) == \
        "direct_debit"

    r = s.http("DELETE", "/api/direct-debit", token=t)
    assert r.status == 200 and r.json()["active"] is False
    assert error_code(s.http("DELETE", "/api/direct-debit", token=t),
                      404) == "not_found"
    assert s.http("POST", "/api/payments", token=t,
                  json={"invoice_ids": [iid]}).status == 201


def ctl(s, *args):
    return subprocess.run([s.ctl, "-c", s.worker_conf] + list(args),
                          cwd=ROOT, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE)


def test_sepa_export_once_per_month(s, tok, fams):
    month = "2031-09"
    a, b, c = fams[0], fams[1], fams[2]
    assert mandate(s, tok[a], VALID_IBANS[0], holder="Dupont & <Fils>"
                   ).status == 200
    assert mandate(s, tok[b], VALID_IBANS[1], bic="AGRIFRPP").status == 200
    ia = invoice(s, a, 12345, month + "-01")
    ib = invoice(s, b, 678, month + "-01")
    ic = invoice(s, c, 1000, month + "-01")       # no mandate: not debited
    out = os.path.join(s.dir, "sdd.xml")

    r = ctl(s, "sepa-export", "--month", month, "--out", out)
    assert r.returncode == 0, r.stderr.decode()
    root = ET.parse(out).getroot()
    hdr = root.find("p:CstmrDrctDbtInitn/p:GrpHdr", NS)
    assert hdr.find("p:NbOfTxs", NS).text == "2"
    assert hdr.find("p:CtrlSum", NS).text == "130.23"
    txs = root.findall(".//p:DrctDbtTxInf", NS)
    refs = {a: "GCH-%s-1" % a, b: "GCH-%s-1" % b}
    assert sorted(t.find(".//p:MndtId", NS).text for t in txs) == \
        sorted(refs.values())
    amounts = sorted(t.find("p:InstdAmt", NS).text for t in txs)
    assert amounts == ["123.45", "6.78"]
    assert "Dupont & <Fils>" in [t.find("p:Dbtr/p:Nm", NS).text
                                 for t in txs]
    assert root.find(".//p:CdtrSchmeId/p:Id/p:PrvtId/p:Othr/p:Id",
                     NS).text == "FR12ZZZ123456"

    assert paid(s, ia) == (True, "direct_debit")
    assert paid(s, ib) == (True, "direct_debit")
    assert paid(s, ic) == (False, None)

    # a second export of the month: says so, writes and debits nothing
    os.unlink(out)
    r = ctl(s, "sepa-export", "--month", month, "--out", out)
    assert r.returncode == 1 and "déjà été exporté" in r.stderr.decode()
    assert not os.path.exists(out)
    assert s.sql("select count(*) from sepa_export_invoice x join"
                 " sepa_export e on e.id = x.export_id where e.month ="
                 " %s", (month + "-01",))[0][0] == 2

    # a month with nothing to debit: no file, no export row
    r = ctl(s, "sepa-export", "--month", "2031-10", "--out", out)
    assert r.returncode == 1 and not os.path.exists(out)
    assert ctl(s, "sepa-export", "--month", "2031-13").returncode == 2

    for f in (a, b):
        assert s.http("DELETE", "/api/direct-debit",
                      token=tok[f]).status == 200


def staff_token(s, login, role):
    r = subprocess.run([s.ctl, "-c", s.worker_conf, "staff-add", login,
                        role, "Agent " + login],
                       input=b"secret-pass-1\n", cwd=ROOT,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert r.returncode == 0, r.stderr.decode()
    r = s.http("POST", "/api/staff/session",
               json={"login": login, "password": "secret-pass-1"})
    assert r.status == 200, r
    return r.json()["token"]


def test_staff_routes(s, tok, fams):
    regie = staff_token(s, "regie.p", "regie")
    agent = staff_token(s, "agent.p", "agent")

    assert error_code(s.http("POST", "/api/staff/invoicing", token=agent,
                             json={"month": "2031-01"}), 403) == "forbidden"
    assert error_code(s.http("POST", "/api/staff/invoicing", token=regie,
                             json={"month": "2031-13"}), 400) == \
        "invalid_field"
    assert s.http("POST", "/api/staff/invoicing",
                  token=tok[fams[0]], json={"month": "2031-01"}).status \
        == 403
    r = s.http("POST", "/api/staff/invoicing", token=regie,
               json={"month": "2031-01"})
    assert r.status == 200 and r.json() == {"month": "2031-01",
                                            "created": 0}
    assert s.sql("select actor, detail->>'month' from audit_log"
                 " where action = 'invoicing.run'") == \
        [("regie.p", "2031-01")]

    assert error_code(s.http("GET", "/api/staff/payments", token=agent),
                      403) == "forbidden"
    r = s.http("GET", "/api/staff/payments", token=regie)
    assert r.status == 200
    ops = r.json()["operations"]
    assert ops and all(set(o) >= {"operation_id", "family_id", "status",
                                  "amount_cents", "invoice_ids"}
                       for o in ops)
    assert r.json()["paid_cents"] == sum(o["amount_cents"] for o in ops
                                         if o["status"] == "paid")
    assert s.http("GET", "/api/staff/payments?month=1999-01",
                  token=regie).json()["operations"] == []
    assert error_code(s.http("GET", "/api/staff/payments?month=nope",
                             token=regie), 400) == "invalid_field"

    ex = s.http("GET", "/api/staff/sepa-exports", token=regie)
    assert ex.status == 200
    assert isinstance(ex.json()["exports"], list)


def eventually(what, ok, limit=30):
    """Polls ok() until true; a generous limit (the machine is shared), not
    a timing assertion."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if ok():
            return
        time.sleep(0.1)
    raise AssertionError(what)


def published(s, fid):
    cat = json.loads(s.redis.get("{main}:catalogue"))
    return [f for f in cat["families"] if f["id"] == fid][0]


def test_booking_path_sees_payments_and_mandates(s, tok):
    """The catalogue the module books with: a past-due unpaid invoice
    counts in unpaid_invoices until it is paid online; a mandate sets
    direct_debit (GET /api/me, served by the module from Redis)."""
    f = "f-pay-b"
    iid = invoice(s, f, 2500, "2025-06-01")
    s.sql("update catalogue set version = version + 1 where id = 1")
    eventually("the unpaid invoice published",
               lambda: published(s, f)["unpaid_invoices"] == 1)
    assert pay(s, tok[f], [iid])["status"] == "paid"
    eventually("the paid invoice published",
               lambda: published(s, f)["unpaid_invoices"] == 0)

    me = s.http("GET", "/api/me", token=tok[f])
    assert me.status == 200 and me.json()["direct_debit"] is False
    assert mandate(s, tok[f], VALID_IBANS[0]).status == 200
    eventually("direct_debit published", lambda: s.http(
        "GET", "/api/me", token=tok[f]).json()["direct_debit"] is True)

    # reloading the town file (direct_debit false there) keeps the mandate
    s.ctl_run("load-town", s.town_file)
    assert s.sql("select direct_debit from family where id = %s",
                 (f,)) == [(True,)]
    r = s.http("POST", "/api/payments", token=tok[f],
               json={"invoice_ids": [invoice(s, f, 900)]})
    assert error_code(r, 403) == "direct_debit"

    assert s.http("DELETE", "/api/direct-debit", token=tok[f]).status == 200
    eventually("direct_debit ended", lambda: s.http(
        "GET", "/api/me", token=tok[f]).json()["direct_debit"] is False)
