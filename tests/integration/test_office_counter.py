"""test_office_counter.py -- the régie's counter (office/counter.c, issue
26): a cheque, cash, CESU or a transfer recorded against a family's whole
invoices (refused when an invoice is another family's, paid, in an online
payment or when the amount is not their total: nothing written); the
invoices become paid for the family at once; agents cannot record money;
the month's CSV for the town's accounting lists invoices issued and paid.
"""

import csv
import io
import subprocess
import tempfile

import pytest

from office_town import agent, audit, error_code, regie, staffed_stack, town


@pytest.fixture(scope="module")
def s(make_stack):
    return staffed_stack(make_stack, town(), "office-counter")


def invoice(s, fid, number, cents, month, issued="2027-08-02 10:00+02"):
    return s.sql("insert into invoice (number, family_id, month,"
                 " total_cents, issued_at, due_date)"
                 " values (%s, %s, %s, %s, %s, %s) returning id",
                 (number, fid, month, cents, issued, month))[0][0]


def pay(s, tok, **body):
    b = {"family_id": "f1", "method": "cheque", "amount_cents": 0,
         "reference": "", "invoice_ids": []}
    b.update(body)
    return s.http("POST", "/api/staff/counter-payments", token=tok, json=b)


def test_cheques_pay_whole_invoices(s, agent, regie):
    a = invoice(s, "f1", 101, 4200, "2027-07-01")
    b = invoice(s, "f1", 102, 1350, "2027-06-01")
    c = invoice(s, "f2", 103, 700, "2027-07-01")
    before = s.sql("select count(*) from counter_payment")[0][0]

    # an agent does not handle money
    assert error_code(pay(s, agent, amount_cents=5550, invoice_ids=[a, b]),
                      403) == "forbidden"
    # another family's invoice, a wrong total, an unknown invoice, a bad
    # method: refused, nothing written
    assert error_code(pay(s, regie, amount_cents=4900, invoice_ids=[a, c]),
                      400) == "invalid_field"
    r = pay(s, regie, amount_cents=5000, invoice_ids=[a, b])
    assert error_code(r, 422) == "amount_mismatch"
    assert "55,50" in r.json()["error"]["message"]
    assert error_code(pay(s, regie, amount_cents=4200,
                          invoice_ids=[a, 999999]), 404) == "not_found"
    assert error_code(pay(s, regie, method="bitcoin", amount_cents=4200,
                          invoice_ids=[a]), 400) == "invalid_field"
    # an invoice in an online payment not yet settled
    s.sql("insert into payment_operation (id, family_id, amount_cents)"
          " values (%s, 'f2', 700)", ("ab" * 16,))
    s.sql("insert into payment_operation_invoice values (%s, %s)",
          ("ab" * 16, c))
    assert error_code(pay(s, regie, family_id="f2", amount_cents=700,
                          invoice_ids=[c]), 409) == "payment_pending"
    assert s.sql("select count(*) from counter_payment")[0][0] == before
    assert s.sql("select count(*) from invoice where paid") == [(0,)]

    r = pay(s, regie, amount_cents=5550, invoice_ids=[a, b],
            reference="chèque n° 1234567 Banque Postale")
    assert r.status == 201, r
    p = r.json()
    assert (p["method"], p["amount_cents"], p["invoices"],
            p["recorded_by"]) == ("cheque", 5550, [101, 102], "regie.r")
    assert s.sql("select paid, paid_by from invoice where id in (%s, %s)",
                 (a, b)) == [(True, "counter")] * 2
    assert audit(s, "payment.counter")[-1][:2] == \
        ("regie.r", "counter_payment:%d" % p["id"])
    # the family sees them paid at once
    r = s.http("GET", "/api/invoices", token=s.token("f1"))
    assert r.status == 200, r
    assert {(i["number"], i["paid"]) for i in r.json()} >= \
        {(101, True), (102, True)}
    # twice: refused
    assert error_code(pay(s, regie, amount_cents=4200, invoice_ids=[a]),
                      409) == "invoice_paid"

    # cash for another
    d = invoice(s, "f2", 104, 900, "2027-08-01")
    r = pay(s, regie, family_id="f2", method="cash", amount_cents=900,
            invoice_ids=[d])
    assert r.status == 201, r
    r = s.http("GET", "/api/staff/counter-payments?family_id=f2",
               token=regie)
    assert [x["method"] for x in r.json()["payments"]] == ["cash"]
    assert error_code(s.http("GET", "/api/staff/counter-payments",
                             token=agent), 403) == "forbidden"


def test_the_accounting_export(s, regie, agent):
    month = s.sql("select to_char(now() at time zone 'Europe/Paris',"
                  " 'YYYY-MM')")[0][0]
    r = s.http("GET", "/api/staff/exports/accounting?month=" + month,
               token=regie)
    assert r.status == 200, r
    assert r.header_all("Content-Type")[0].startswith("text/csv")
    assert "guichet-comptabilite-%s.csv" % month in \
        r.header_all("Content-Disposition")[0]
    text = r.body.decode("utf-8")
    assert text.startswith("type;date;facture;famille;mode;montant;"
                           "reference;agent;piece\r\n")
    rows = list(csv.reader(io.StringIO(text), delimiter=";"))[1:]
    paid = sorted((x[2], x[3], x[4], x[5], x[6], x[7]) for x in rows
                  if x[0] == "encaissement")
    assert paid == [
        ("101", "f1", "cheque", "42,00", "chèque n° 1234567 Banque Postale",
         "regie.r"),
        ("102", "f1", "cheque", "13,50", "chèque n° 1234567 Banque Postale",
         "regie.r"),
        ("104", "f2", "especes", "9,00", "", "regie.r")]
    # invoices issued in August 2027
    r = s.http("GET", "/api/staff/exports/accounting?month=2027-08",
               token=regie)
    rows = list(csv.reader(io.StringIO(r.body.decode()), delimiter=";"))[1:]
    assert sorted((x[0], x[2], x[5]) for x in rows) == \
        [("facture", "101", "42,00"), ("facture", "102", "13,50"),
         ("facture", "103", "7,00"), ("facture", "104", "9,00")]
    assert error_code(s.http("GET", "/api/staff/exports/accounting"
                             "?month=2027-13", token=regie), 400) == \
        "invalid_field"
    assert error_code(s.http("GET", "/api/staff/exports/accounting"
                             "?month=" + month, token=agent), 403) == \
        "forbidden"


def test_the_letter_for_overdue_invoices(s, agent, regie):
    s.sql("insert into invoice (number, family_id, month, total_cents,"
          " issued_at, due_date) values (105, 'f2', '2026-10-01', 1200,"
          " '2026-11-02 10:00+01', '2026-11-15')")
    url = "/api/staff/families/f2/relance.pdf"
    assert error_code(s.http("GET", url, token=agent), 403) == "forbidden"
    r = s.http("GET", url, token=regie)
    assert r.status == 200, r
    assert r.header_all("Content-Type")[0] == "application/pdf"
    with tempfile.NamedTemporaryFile(suffix=".pdf") as f:
        f.write(r.body)
        f.flush()
        text = subprocess.run(["pdftotext", "-layout", f.name, "-"],
                              stdout=subprocess.PIPE, check=True
                              ).stdout.decode()
    assert "Objet : rappel de factures non payées" in text
    assert "n° 105" in text and "15/11/2026" in text
    assert "Total à payer : 12,00 €" in text
    # f1 has paid everything
    assert error_code(s.http("GET", "/api/staff/families/f1/relance.pdf",
                             token=regie), 404) == "not_found"
