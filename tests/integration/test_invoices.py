"""test_invoices.py -- the family's money, end to end: bookings, a late
cancellation (billed), a justified absence (not billed once the town
accepted its certificate, issue 25), the month's
invoice made by `guichetctl invoice`, listed by GET /api/invoices and its
PDF served by nginx to this family only.
"""

import uuid

from office_town import PDF, staff_add, staff_login


def town():
    return {
        "town": {"name": "Factures", "timezone": "Europe/Paris"},
        "units": [{"code": "APM", "label": "Après-midi", "starts": "13:30",
                   "ends": "17:30"}],
        "activities": [{
            "id": "alsh", "name": "ALSH été", "age_min": 3, "age_max": 12,
            "booking_opens_at": "2026-01-01T18:00:00+01:00",
            "deadline": {"working_days": 2},
            # cancelling is already late: it stays on the invoice
            "cancel_deadline": {"hours": 24 * 365},
            "prices": [{"qf_max": None, "cents": 450}],
            "sessions": [{"id": "s%d" % d, "date": "2027-07-0%d" % d,
                          "unit": "APM", "places": 10} for d in (5, 6, 7)]}],
        "families": [{
            "id": fid, "qf": 300,
            "children": [{"id": fid + "-c", "first_name": "Inès",
                          "birth_date": "2019-02-02"}],
            "enrolments": [{"child_id": fid + "-c", "activity_id": "alsh",
                            "from": "2027-07-01", "to": "2027-07-31",
                            "status": "validee"}]} for fid in ("f1", "f2")],
    }


def test_month_invoice_bills_late_cancellations_not_justified_ones(
        make_stack):
    s = make_stack(town(), name="invoices")
    t1, t2 = s.token("f1"), s.token("f2")

    r = s.http("POST", "/api/bookings", token=t1,
               headers={"Idempotency-Key": uuid.uuid4().hex},
               json={"items": [{"child_id": "f1-c", "session_id": sid}
                               for sid in ("s5", "s6", "s7")]})
    assert r.status == 200, r
    bids = [i["booking_id"] for i in r.json()["items"]]
    assert all(i["price_cents"] == 450 for i in r.json()["items"])

    # s6 cancelled late: billed; s7 cancelled late, then justified
    for b in bids[1:]:
        r = s.http("DELETE", "/api/bookings/" + b, token=t1)
        assert r.status == 200 and r.json()["billed"] is True, r
    r = s.http("POST", "/api/documents?type=certificat_medical", token=t1,
               body=PDF, headers={"Content-Type": "application/pdf"})
    assert r.status == 201, r
    r = s.http("POST", "/api/absences", token=t1,
               json={"booking_id": bids[2], "reason": "medical",
                     "document_id": str(r.json()["id"])})
    assert r.status == 200, r
    s.wait_worker_drained()
    staff_add(s, "agent.i", "agent", "Iris Agent", "agent-pass-9")
    r = s.http("POST", "/api/staff/absences/%s/decision" % bids[2],
               token=staff_login(s, "agent.i", "agent-pass-9"),
               json={"decision": "acceptee"})
    assert r.status == 200, r

    assert s.http("GET", "/api/invoices", token=t1).json() == []

    s.wait_worker_drained()
    out = s.ctl_run("invoice", "--month", "2027-07")
    assert "1 invoice" in out, out
    assert "0 invoice" in s.ctl_run("invoice", "--month", "2027-07")

    invoices = s.http("GET", "/api/invoices", token=t1).json()
    assert len(invoices) == 1, invoices
    inv = invoices[0]
    assert inv["total_cents"] == 900, inv       # s5 and s6, not s7
    assert inv["paid"] is False
    assert s.http("GET", "/api/invoices", token=t2).json() == []

    r = s.http("GET", "/api/invoices/%s.pdf" % inv["id"], token=t1)
    assert r.status == 200, r
    assert r.headers["content-type"] == "application/pdf"
    assert r.body.startswith(b"%PDF")
    # the module says so itself, whatever the location's configuration
    assert r.headers["x-content-type-options"] == "nosniff"

    # another family, or no login: not there
    r = s.http("GET", "/api/invoices/%s.pdf" % inv["id"], token=t2)
    assert r.status == 404 and r.json()["error"]["code"] == "not_found"
    assert s.http("GET", "/api/invoices/%s.pdf" % inv["id"]).status == 401
    r = s.http("GET", "/api/invoices/..%2f..%2fsecret.key.pdf", token=t1)
    assert r.status == 404, r
