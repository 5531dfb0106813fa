"""test_invoice_regies.py -- each régie its own invoices and numbering
(backend/invoice.c, migration 0041, issue 26): a family booked in
activities of two régies gets two invoices for the month, each numbered
in its régie's series without gaps ("CANTINE-000001"); an invoice made
before the régies had their own series keeps its number and blocks its
family's month; a counter payment settles one régie's invoice, a credit
note on it is its régie's; the
accounting export of a régie lists its own invoices by reference, and
the SEPA file names each debit by it.
"""

import csv
import io
import os
import subprocess
import tempfile
import uuid
import xml.etree.ElementTree as ET

import pytest

from office_town import staff_add, staff_login

NS = {"p": "urn:iso:std:iso:20022:tech:xsd:pain.008.001.02"}


def town():
    acts = []
    for aid, cents, unit in (("centre", 700, "MATIN"),
                             ("cantine", 350, "REPAS")):
        acts.append({"id": aid, "name": aid.capitalize(),
                     "booking_opens_at": "2026-01-01T18:00:00+01:00",
                     "prices": [{"qf_max": None, "cents": cents}],
                     "sessions": [{"id": "%s-%s" % (aid, d), "date": d,
                                   "unit": unit, "places": 10}
                                  for d in ("2027-07-05", "2027-07-06",
                                            "2027-08-02")]})
    fams = []
    for fid in ("f1", "f2", "f3"):
        fams.append({"id": fid, "qf": 300,
                     "children": [{"id": fid + "-a", "first_name": "Alice",
                                   "birth_date": "2018-04-04"}],
                     "enrolments": [{"child_id": fid + "-a",
                                     "activity_id": a, "from": "2027-01-01",
                                     "to": "2027-12-31", "status": "validee"}
                                    for a in ("centre", "cantine")]})
    return {
        "town": {"name": "Deux régies", "timezone": "Europe/Paris"},
        "units": [{"code": "MATIN", "label": "Matin", "starts": "08:30",
                   "ends": "12:00"},
                  {"code": "REPAS", "label": "Repas", "starts": "12:00",
                   "ends": "13:30"}],
        "activities": acts,
        "families": fams,
    }


@pytest.fixture(scope="module")
def s(make_stack):
    st = make_stack(town(), name="invoice-regies")
    staff_add(st, "chef", "admin", "Camille Chef", "admin-pass-3")
    return st


def book(s, fid, sessions):
    r = s.http("POST", "/api/bookings", token=s.token(fid),
               headers={"Idempotency-Key": uuid.uuid4().hex},
               json={"items": [{"child_id": fid + "-a", "session_id": x}
                               for x in sessions]})
    assert r.status == 200, r


def test_two_regies_two_invoices_each_in_its_series(s):
    admin = staff_login(s, "chef", "admin-pass-3")
    r = s.http("POST", "/api/staff/regies", token=admin,
               json={"code": "cantine", "name": "Régie de la restauration"})
    assert r.status == 201, r
    r = s.http("PUT", "/api/staff/activities/cantine/regie", token=admin,
               json={"regie": "cantine"})
    assert r.status == 200, r

    # f3 was invoiced for July before the régies had their own series
    old = s.sql("insert into invoice (number, family_id, month,"
                " total_cents, issued_at, due_date) values (41, 'f3',"
                " '2027-07-01', 700, now(), '2027-07-31') returning id")[0][0]

    book(s, "f1", ["centre-2027-07-05", "centre-2027-07-06",
                   "cantine-2027-07-05"])
    book(s, "f2", ["centre-2027-07-06"])
    book(s, "f3", ["cantine-2027-07-06"])
    s.wait_worker_drained()
    out = s.ctl_run("invoice", "--month", "2027-07")
    assert "3 invoices" in out, out
    assert "0 invoice" in s.ctl_run("invoice", "--month", "2027-07")

    mine = s.http("GET", "/api/invoices", token=s.token("f1")).json()
    assert sorted((i["regie"], i["reference"], i["number"],
                   i["total_cents"]) for i in mine) == \
        [("cantine", "CANTINE-000001", 1, 350),
         ("principale", "PRINCIPALE-000001", 1, 1400)]
    theirs = s.http("GET", "/api/invoices", token=s.token("f2")).json()
    assert [(i["reference"], i["total_cents"]) for i in theirs] == \
        [("PRINCIPALE-000002", 700)]
    # the canteen's PDF says whose invoice it is and its reference
    r = s.http("GET", "/api/invoices/%s.pdf" % [
        i for i in mine if i["regie"] == "cantine"][0]["id"],
        token=s.token("f1"))
    assert r.status == 200, r
    with tempfile.NamedTemporaryFile(suffix=".pdf") as f:
        f.write(r.body)
        f.flush()
        text = subprocess.run(["pdftotext", "-layout", f.name, "-"],
                              stdout=subprocess.PIPE, check=True
                              ).stdout.decode()
    assert "Facture N° CANTINE-000001" in text, text
    assert "Régie de la restauration" in text, text
    assert "numéro de facture CANTINE-000001" in text, text

    # the old invoice untouched, its month not invoiced again
    assert s.sql("select id, number, reference, regie_code, total_cents"
                 " from invoice where family_id = 'f3'") == \
        [(old, 41, "41", None, 700)]
    # each invoice's lines are its régie's
    assert s.sql("select i.reference, count(*), sum(l.price_cents)"
                 " from invoice i join invoice_line l on l.invoice_id = i.id"
                 " group by 1 order by 1") == \
        [("CANTINE-000001", 1, 350), ("PRINCIPALE-000001", 2, 1400),
         ("PRINCIPALE-000002", 1, 700)]

    # next month: each series goes on without gaps
    book(s, "f2", ["cantine-2027-08-02"])
    book(s, "f1", ["centre-2027-08-02"])
    s.wait_worker_drained()
    assert "2 invoices" in s.ctl_run("invoice", "--month", "2027-08")
    assert s.sql("select family_id, reference from invoice"
                 " where month = '2027-08-01' order by 2") == \
        [("f2", "CANTINE-000002"), ("f1", "PRINCIPALE-000003")]

    # a cheque at the counter settles the canteen's invoice alone
    cant = [i for i in mine if i["regie"] == "cantine"][0]
    r = s.http("POST", "/api/staff/counter-payments", token=admin,
               json={"family_id": "f1", "method": "cheque",
                     "amount_cents": 350, "reference": "chèque 42",
                     "invoice_ids": [cant["id"]]})
    assert r.status == 201, r
    assert r.json()["invoice_references"] == ["CANTINE-000001"]
    paid = {i["reference"]: i["paid"] for i in
            s.http("GET", "/api/invoices", token=s.token("f1")).json()}
    assert paid == {"CANTINE-000001": True, "PRINCIPALE-000001": False,
                    "PRINCIPALE-000003": False}

    # a credit note on a régie's invoice is that régie's
    aug = s.sql("select id from invoice where reference = 'CANTINE-000002'"
                )[0][0]
    r = s.http("POST", "/api/staff/credit-notes", token=admin,
               json={"invoice_id": aug, "amount_cents": 100,
                     "reason": "x", "regie": "principale"})
    assert r.status == 400 and \
        r.json()["error"]["code"] == "invalid_field", r
    r = s.http("POST", "/api/staff/credit-notes", token=admin,
               json={"invoice_id": aug, "amount_cents": 100,
                     "reason": "Geste"})
    assert r.status == 201 and r.json()["regie"] == "cantine", r

    # the canteen's accounting export: its invoices, by reference
    month = s.sql("select to_char(now() at time zone 'Europe/Paris',"
                  " 'YYYY-MM')")[0][0]
    r = s.http("GET", "/api/staff/exports/accounting?month=%s&regie=cantine"
               % month, token=admin)
    assert r.status == 200, r
    rows = list(csv.reader(io.StringIO(r.body.decode()), delimiter=";"))
    assert rows[0][:3] == ["type", "date", "facture"]
    assert sorted((x[0], x[2], x[5]) for x in rows[1:]) == \
        [("avoir", "CANTINE-000002", "1,00"),
         ("encaissement", "CANTINE-000001", "3,50"),
         ("facture", "CANTINE-000001", "3,50"),
         ("facture", "CANTINE-000002", "3,50")]

    # the month's direct debits: each named by its invoice's reference
    r = s.http("PUT", "/api/direct-debit", token=s.token("f2"),
               json={"iban": "FR1420041010050500013M02606",
                     "bic": "AGRIFRPP", "holder": "Famille Deux"})
    assert r.status == 200, r
    out = os.path.join(s.dir, "sdd-regies.xml")
    s.ctl_run("sepa-export", "--month", "2027-08", "--out", out)
    txs = ET.parse(out).getroot().findall(".//p:DrctDbtTxInf", NS)
    assert [(t.find("p:PmtId/p:EndToEndId", NS).text,
             t.find("p:RmtInf/p:Ustrd", NS).text,
             t.find("p:InstdAmt", NS).text) for t in txs] == \
        [("FACT-CANTINE-000002", "Facture CANTINE-000002 du 08/2027",
          "2.50")]
    assert s.sql("select reference, paid, paid_by from invoice"
                 " where month = '2027-08-01' order by 1") == \
        [("CANTINE-000002", True, "direct_debit"),
         ("PRINCIPALE-000003", False, None)]
