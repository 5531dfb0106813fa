"""test_planning_api.py -- what the planning's summary reads (issue 24):
GET /api/me "prices" is the price a booking then fixes (the engine's
gch_price_cents: QF band, non-resident bands), and a session's
"cancel_until" is the instant from which DELETE /api/bookings/{id}
answers "billed": true.
"""

import datetime as dt
import uuid
from zoneinfo import ZoneInfo

import pytest

PARIS = ZoneInfo("Europe/Paris")


def town():
    today = dt.datetime.now(PARIS).date()
    days = [today + dt.timedelta(days=i) for i in range(1, 40)]
    days = [d for d in days if d.weekday() < 5]
    near, mid, far = days[0], days[-2], days[-1]
    return {
        "town": {"name": "Tarifs", "timezone": "Europe/Paris"},
        "units": [{"code": "MATIN", "label": "Matin", "starts": "08:30",
                   "ends": "12:00"}],
        "activities": [{
            "id": "peri", "name": "Périscolaire", "age_min": 3,
            "age_max": 12, "booking_opens_at": None, "deadline": {},
            "cancel_deadline": {"working_days": 5},
            "prices": [{"qf_max": 700, "cents": 300},
                       {"qf_max": None, "cents": 500}],
            "non_resident_prices": [{"qf_max": None, "cents": 800}],
            "sessions": [{"id": "p-" + d.strftime("%Y%m%d"),
                          "date": d.isoformat(), "unit": "MATIN",
                          "places": 10} for d in (near, far, mid)]}],
        "families": [
            {"id": "fr", "qf": 600, "resident": True,
             "children": [{"id": "fr-a", "first_name": "Ana",
                           "birth_date": "2018-04-04"}],
             "enrolments": [{"child_id": "fr-a", "activity_id": "peri",
                             "from": today.isoformat(),
                             "to": far.isoformat(), "status": "validee"}]},
            {"id": "fn", "qf": 600, "resident": False,
             "children": [{"id": "fn-a", "first_name": "Noé",
                           "birth_date": "2018-04-04"}],
             "enrolments": [{"child_id": "fn-a", "activity_id": "peri",
                             "from": today.isoformat(),
                             "to": far.isoformat(), "status": "validee"}]}],
    }


@pytest.fixture(scope="module")
def s(make_stack):
    return make_stack(town(), name="planning-api")


def book(s, tok, child, sid):
    r = s.http("POST", "/api/bookings", token=tok,
               json={"items": [{"child_id": child, "session_id": sid}]},
               headers={"Idempotency-Key": uuid.uuid4().hex})
    assert r.status == 200, r
    item = r.json()["items"][0]
    assert item["status"] == "confirmed", item
    return item


def test_me_prices_are_what_a_booking_fixes(s):
    tok = s.tokens()
    sid = town()["activities"][0]["sessions"][1]["id"]
    for fid, child, cents in (("fr", "fr-a", 300), ("fn", "fn-a", 800)):
        me = s.http("GET", "/api/me", token=tok[fid]).json()
        assert me["prices"] == [{"activity_id": "peri",
                                 "price_cents": cents}], me
        assert book(s, tok[fid], child, sid)["price_cents"] == cents


def test_cancel_until_says_whether_a_cancellation_is_billed(s):
    tok = s.tokens()
    near, far, mid = town()["activities"][0]["sessions"]
    r = s.http("GET", "/api/activities/peri/sessions?from=%s&to=%s"
               % (near["date"], far["date"]))
    assert r.status == 200, r
    until = {x["id"]: dt.datetime.fromisoformat(x["cancel_until"])
             for x in r.json()}
    now = dt.datetime.now(PARIS)
    assert until[near["id"]] <= now < until[mid["id"]], until
    for sess, billed in ((near, True), (mid, False)):
        b = book(s, tok["fr"], "fr-a", sess["id"])
        r = s.http("DELETE", "/api/bookings/" + b["booking_id"],
                   token=tok["fr"])
        assert r.status == 200, r
        assert r.json()["billed"] is billed, (sess, r.json())
