"""test_office_credit.py -- credit notes (avoirs) and refunds of the régie
(office/credit.c, issue 26): an avoir against a line (its activity's
régie) or a part of an invoice lowers what is due before payment (the
counter then asks the rest; an invoice credited in full is settled) and
is owed back after payment, which a refund pays at the counter, never
more than owed; numbered AV-n / RB-n; the family sees them in its
invoices; the month's accounting export lists them per régie; agents
cannot do any of it; refusals write nothing.  Invoices are made by the
real monthly invoicing of real bookings.
"""

import uuid

import pytest

from office_town import audit, csv_rows, error_code, staff_token, staffed_stack
from test_office_regies import town


@pytest.fixture(scope="module")
def s(make_stack):
    return staffed_stack(make_stack, town(), "office-credit",
                         roles=("agent", "regie", "admin"))


def counts(s):
    return s.sql("select (select count(*) from credit_note),"
                 " (select count(*) from refund),"
                 " (select credited_cents from invoice order by id"
                 "  limit 1)")[0]


def family_invoice(s, number):
    r = s.http("GET", "/api/invoices", token=s.token("f1"))
    assert r.status == 200, r
    return [i for i in r.json() if i["number"] == number][0]


def test_credit_notes_and_refunds(s):
    agent = staff_token(s, "agent")
    regie = staff_token(s, "regie")
    admin = staff_token(s, "admin")
    r = s.http("POST", "/api/bookings", token=s.token("f1"),
               headers={"Idempotency-Key": uuid.uuid4().hex},
               json={"items": [{"child_id": "f1-a", "session_id": x}
                               for x in ("centre-5", "centre-6",
                                         "cantine-5")]})
    assert r.status == 200, r
    s.wait_worker_drained()
    r = s.http("POST", "/api/staff/invoicing", token=regie,
               json={"month": "2027-07"})
    assert r.status == 200 and r.json()["created"] == 1, r
    # made as before migration 0041: one invoice with both régies' lines
    # (a régie's own invoices: test_invoice_regies.py)
    s.sql("update invoice set regie_code = null")
    inv, number = s.sql("select id, number from invoice")[0]
    canteen = s.sql("select l.booking_id from invoice_line l"
                    " join booking b on b.id = l.booking_id"
                    " where b.session_id = 'cantine-5'")[0][0]
    assert s.http("POST", "/api/staff/regies", token=admin,
                  json={"code": "cantine", "name": "Restauration"}
                  ).status == 201
    assert s.http("PUT", "/api/staff/activities/cantine/regie", token=admin,
                  json={"regie": "cantine"}).status == 200

    # the child missed the canteen: an avoir on that line (an agent
    # does not handle money)
    line = {"invoice_id": inv, "booking_id": canteen,
            "reason": "Absence justifiée (certificat médical)"}
    assert error_code(s.http("POST", "/api/staff/credit-notes", token=agent,
                             json=line), 403) == "forbidden"
    r = s.http("POST", "/api/staff/credit-notes", token=regie, json=line)
    assert r.status == 201, r
    c = r.json()
    assert (c["number"], c["amount_cents"], c["regie"], c["after_payment"],
            c["invoice_number"], c["issued_by"]) == \
        (1, 350, "cantine", False, number, "regie.r")
    # refused, nothing written: the same line again, a booking not on the
    # invoice, more than is left, an unknown invoice or régie, no amount
    before = counts(s)
    assert before == (1, 0, 350)
    assert error_code(s.http("POST", "/api/staff/credit-notes", token=regie,
                             json=line), 409) == "already_credited"
    assert error_code(s.http("POST", "/api/staff/credit-notes", token=regie,
                             json=dict(line, booking_id="nope")),
                      404) == "not_found"
    r = s.http("POST", "/api/staff/credit-notes", token=regie,
               json={"invoice_id": inv, "amount_cents": 1401,
                     "reason": "Geste"})
    assert error_code(r, 422) == "credit_exceeds"
    assert "14,00" in r.json()["error"]["message"]
    assert error_code(s.http("POST", "/api/staff/credit-notes", token=regie,
                             json={"invoice_id": 999999,
                                   "amount_cents": 100, "reason": "x"}),
                      404) == "not_found"
    assert error_code(s.http("POST", "/api/staff/credit-notes", token=regie,
                             json={"invoice_id": inv, "amount_cents": 100,
                                   "reason": "x", "regie": "piscine"}),
                      404) == "not_found"
    assert error_code(s.http("POST", "/api/staff/credit-notes", token=regie,
                             json={"invoice_id": inv, "reason": "x"}),
                      400) == "invalid_field"
    assert counts(s) == before

    # the family sees what is left to pay, and the counter asks it
    fi = family_invoice(s, number)
    assert (fi["total_cents"], fi["credited_cents"], fi["due_cents"],
            fi["paid"]) == (1750, 350, 1400, False)
    assert [(x["number"], x["amount_cents"]) for x in fi["credit_notes"]] \
        == [(1, 350)]
    pay = {"family_id": "f1", "method": "cheque", "reference": "n° 42",
           "invoice_ids": [inv]}
    assert error_code(s.http("POST", "/api/staff/counter-payments",
                             token=regie, json=dict(pay, amount_cents=1750)),
                      422) == "amount_mismatch"
    r = s.http("POST", "/api/staff/counter-payments", token=regie,
               json=dict(pay, amount_cents=1400))
    assert r.status == 201, r

    # nothing owed back yet: no refund
    refund = {"invoice_id": inv, "method": "cheque", "amount_cents": 100,
              "reference": "chèque du Trésor n° 7"}
    assert error_code(s.http("POST", "/api/staff/refunds", token=regie,
                             json=refund), 422) == "refund_exceeds"
    # the centre closed a day after payment: an avoir on the invoice,
    # owed back, then refunded (not more than owed; agents cannot)
    r = s.http("POST", "/api/staff/credit-notes", token=regie,
               json={"invoice_id": inv, "amount_cents": 700,
                     "reason": "Centre fermé le 6 juillet"})
    assert r.status == 201, r
    assert (r.json()["number"], r.json()["after_payment"],
            r.json()["regie"]) == (2, True, "principale")
    assert error_code(s.http("POST", "/api/staff/refunds", token=agent,
                             json=refund), 403) == "forbidden"
    r = s.http("POST", "/api/staff/refunds", token=regie,
               json=dict(refund, amount_cents=701))
    assert error_code(r, 422) == "refund_exceeds"
    assert "7,00" in r.json()["error"]["message"]
    assert error_code(s.http("POST", "/api/staff/refunds", token=regie,
                             json=dict(refund, method="cesu")),
                      400) == "invalid_field"
    assert counts(s)[1] == 0
    r = s.http("POST", "/api/staff/refunds", token=regie,
               json=dict(refund, amount_cents=700))
    assert r.status == 201, r
    assert (r.json()["number"], r.json()["amount_cents"],
            r.json()["recorded_by"]) == (1, 700, "regie.r")
    assert error_code(s.http("POST", "/api/staff/refunds", token=regie,
                             json=dict(refund, amount_cents=1)),
                      422) == "refund_exceeds"

    fi = family_invoice(s, number)
    assert (fi["paid"], fi["due_cents"], fi["credited_cents"]) == \
        (True, 0, 1050)
    assert [(x["number"], x["amount_cents"], x["method"])
            for x in fi["refunds"]] == [(1, 700, "cheque")]
    assert [a[:2] for a in audit(s, "invoice.credit_note")] == \
        [("regie.r", "credit_note:1"), ("regie.r", "credit_note:2")]
    assert [a[:2] for a in audit(s, "payment.refund")] == \
        [("regie.r", "refund:1")]
    r = s.http("GET", "/api/staff/credits?family_id=f1", token=regie)
    assert r.status == 200, r
    assert [x["number"] for x in r.json()["credit_notes"]] == [2, 1]
    assert [x["number"] for x in r.json()["refunds"]] == [1]
    assert error_code(s.http("GET", "/api/staff/credits", token=agent),
                      403) == "forbidden"

    # the month's export: money received is what was left; the avoirs and
    # the refund, each for its régie
    month = s.sql("select to_char(now() at time zone 'Europe/Paris',"
                  " 'YYYY-MM')")[0][0]
    url = "/api/staff/exports/accounting?month=%s" % month
    r = s.http("GET", url, token=regie)
    assert r.body.decode().startswith("type;date;facture;famille;mode;"
                                      "montant;reference;agent;piece\r\n")
    n = str(number)
    assert [(x[0], x[2], x[4], x[5], x[6], x[8]) for x in csv_rows(r)] == [
        ("facture", n, "", "17,50", "", ""),
        ("encaissement", n, "cheque", "14,00", "n° 42", ""),
        ("avoir", n, "", "3,50", "Absence justifiée (certificat médical)",
         "AV-1"),
        ("avoir", n, "", "7,00", "Centre fermé le 6 juillet", "AV-2"),
        ("remboursement", n, "cheque", "7,00", "chèque du Trésor n° 7",
         "RB-1")]
    assert [(x[0], x[5], x[8]) for x in
            csv_rows(s.http("GET", url + "&regie=cantine", token=regie))] == \
        [("facture", "3,50", ""), ("avoir", "3,50", "AV-1")]
    assert [(x[0], x[5], x[8]) for x in
            csv_rows(s.http("GET", url + "&regie=principale",
                            token=regie))] == \
        [("facture", "14,00", ""), ("encaissement", "14,00", ""),
         ("avoir", "7,00", "AV-2"), ("remboursement", "7,00", "RB-1")]


def test_an_invoice_credited_in_full_is_settled(s):
    regie = staff_token(s, "regie")
    inv = s.sql("insert into invoice (number, family_id, month,"
                " total_cents, issued_at, due_date)"
                " values (900, 'f1', '2027-08-01', 500, now(), '2027-08-01')"
                " returning id")[0][0]
    r = s.http("POST", "/api/staff/credit-notes", token=regie,
               json={"invoice_id": inv, "amount_cents": 500,
                     "reason": "Facture annulée"})
    assert r.status == 201, r
    assert s.sql("select paid, paid_by, credited_cents from invoice"
                 " where id = %s", (inv,)) == [(True, "credit_note", 500)]
    fi = family_invoice(s, 900)
    assert (fi["paid"], fi["due_cents"]) == (True, 0)
    # nothing was received, nothing is owed back
    assert error_code(s.http("POST", "/api/staff/refunds", token=regie,
                             json={"invoice_id": inv, "method": "cash",
                                   "amount_cents": 500}),
                      422) == "refund_exceeds"
    month = s.sql("select to_char(now() at time zone 'Europe/Paris',"
                  " 'YYYY-MM')")[0][0]
    r = s.http("GET", "/api/staff/exports/accounting?month=" + month,
               token=regie)
    assert not [x for x in csv_rows(r) if x[0] == "encaissement"
                and x[2] == "900"]
