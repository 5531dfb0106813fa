"""test_office_core.py -- guichet-office's common behaviour behind nginx.

What every route of the family space and the back office shares
(office/http.c, lua-free-config/office.conf): JSON errors with stable
codes, authentication by token or cookie with the module's logout set,
the Origin check for cookie requests that change something, staff-only
routes, body limits, and -- the promise to parents -- the booking path
does not depend on the office: with guichet-office down its routes answer
503 with Retry-After and bookings still go through.
"""

import signal
import uuid

from stack import BAD_LOG, Stack

OWN_PATH = "/api/enrolments"          # a family route of guichet-office


def assert_error(r, status, code):
    assert r.status == status, r
    assert r.headers.get("content-type", "").startswith("application/json"), r
    body = r.json()
    assert body["error"]["code"] == code, body
    assert body["error"]["message"], body


def login_cookie(s, login="martin", password="secret-demo"):
    r = s.http("POST", "/api/session",
               json={"login": login, "password": password})
    assert r.status == 200, r
    tok = r.json()["token"]
    return tok, "guichet_session=" + tok


def test_unknown_office_path_is_json_404(stack):
    tok = stack.token("f-martin")
    assert_error(stack.http("GET", "/api/enrolments/a/b/c", token=tok),
                 404, "not_found")
    assert_error(stack.http("GET", "/api/staff/no-such-page"),
                 404, "not_found")


def test_wrong_method_is_json_405(stack):
    tok = stack.token("f-martin")
    assert_error(stack.http("PATCH", OWN_PATH, token=tok),
                 405, "method_not_allowed")


def test_no_token_forged_token_expired_token_are_401(stack):
    assert_error(stack.http("GET", OWN_PATH), 401, "unauthenticated")
    good = stack.token("f-martin")
    forged = good[:-3] + ("AAA" if not good.endswith("AAA") else "BBB")
    assert_error(stack.http("GET", OWN_PATH, token=forged),
                 401, "unauthenticated")


def test_logout_ends_the_session_in_the_office_too(stack):
    tok, _ = login_cookie(stack)
    assert stack.http("GET", OWN_PATH, token=tok).status == 200
    r = stack.http("DELETE", "/api/session", token=tok)
    assert r.status == 204, r
    assert_error(stack.http("GET", OWN_PATH, token=tok),
                 401, "unauthenticated")


def test_cookie_requests_that_write_need_our_origin(stack):
    _, cookie = login_cookie(stack)
    body = {"child_id": "c-lea", "activity_id": "klub-8-12",
            "from": "2027-07-01", "to": "2027-07-31"}
    # reading with the cookie needs no Origin
    r = stack.http("GET", OWN_PATH, headers={"Cookie": cookie})
    assert r.status == 200, r
    for origin in (None, "http://evil.example", "null"):
        h = {"Cookie": cookie}
        if origin:
            h["Origin"] = origin
        before = stack.sql("select count(*) from enrolment")
        assert_error(stack.http("POST", OWN_PATH, json=body, headers=h),
                     403, "bad_origin")
        assert stack.sql("select count(*) from enrolment") == before


def test_staff_routes_refuse_families_unknown_agents_and_cookies(stack):
    fam = stack.token("f-martin")
    assert_error(stack.http("GET", "/api/staff/enrolments", token=fam),
                 403, "forbidden")
    ghost = stack.ctl_run("staff-token", "ghost-" + uuid.uuid4().hex[:6])
    assert_error(stack.http("GET", "/api/staff/enrolments",
                            token=ghost.strip()),
                 403, "forbidden")
    assert_error(stack.http("GET", "/api/staff/enrolments"),
                 401, "unauthenticated")


def test_body_over_the_limit_is_413_and_writes_nothing(stack):
    tok = stack.token("f-martin")
    before = stack.sql("select count(*) from enrolment")
    r = stack.http("POST", OWN_PATH, token=tok,
                   headers={"Content-Type": "application/json"},
                   body=b'{"child_id":"' + b"x" * 70000 + b'"}')
    assert_error(r, 413, "body_too_large")
    assert stack.sql("select count(*) from enrolment") == before


def test_bad_json_and_wrong_content_type(stack):
    tok = stack.token("f-martin")
    r = stack.http("POST", OWN_PATH, token=tok,
                   headers={"Content-Type": "application/json"},
                   body=b'{"child_id": ')
    assert_error(r, 400, "bad_json")
    r = stack.http("POST", OWN_PATH, token=tok,
                   headers={"Content-Type": "text/plain"}, body=b"{}")
    assert_error(r, 415, "unsupported_media_type")
    r = stack.http("POST", OWN_PATH, token=tok,
                   json={"child_id": "c-lea", "surprise": 1})
    assert_error(r, 400, "invalid_field")


def test_office_down_is_503_and_bookings_still_go_through():
    s = Stack(name="office-down").start()
    try:
        tok = s.token("f-martin")
        office = s.procs.pop("office")
        office.send_signal(signal.SIGTERM)
        office.wait(10)

        r = s.http("GET", OWN_PATH, token=tok)
        assert_error(r, 503, "unavailable")
        assert r.headers.get("retry-after"), r

        r = s.http("POST", "/api/bookings", token=tok,
                   json={"items": [{"child_id": "c-lea",
                                    "session_id": "klub-0709-jeux"}]},
                   headers={"Idempotency-Key": "office-down-1"})
        assert r.status == 200, r
        assert r.json()["items"][0]["status"] == "confirmed", r.json()

        # it serves again once restarted
        s._start_office()
        assert s.http("GET", OWN_PATH, token=tok).status == 200

        # nginx said why it answered 503 (the socket was gone), nothing else
        bad = [l for l in s.error_log().splitlines()
               if BAD_LOG.search(l) and "office.sock failed" not in l]
        assert not bad, bad
    finally:
        s.stop()


def test_a_database_error_is_503_never_an_absent_row():
    """office/store.c's shapes of statements (gcho_sql_exists, _row,
    _changed): a statement PostgreSQL refuses is 503 `unavailable`, never
    read as "no such row" -- not a 401 for a family whose file is there,
    not a 404 for a payment or a calendar feed."""
    s = Stack(name="office-sql-error").start()
    try:
        tok = s.token("f-martin")

        def refused(table, method, path):
            """path answers 503 while table is missing."""
            s.sql("alter table %s rename to %s_away" % (table, table))
            try:
                r = s.http(method, path, token=tok)
            finally:
                s.sql("alter table %s_away rename to %s" % (table, table))
            assert_error(r, 503, "unavailable")
            assert r.headers.get("retry-after"), r

        # the family's file is live (auth.c, gcho_sql_exists): not 401
        refused("family", "GET", OWN_PATH)
        assert s.http("GET", OWN_PATH, token=tok).status == 200

        # a payment of the family (payment.c, gcho_sql_row): not 404
        unknown = "/api/payments/" + "0" * 32
        refused("payment_operation", "GET", unknown)
        assert_error(s.http("GET", unknown, token=tok), 404, "not_found")

        # the calendar feed ended (calendar.c, gcho_sql_changed): not 404,
        # and the feed is still there to end afterwards
        assert s.http("POST", "/api/calendar", token=tok).status == 201
        refused("calendar_feed", "DELETE", "/api/calendar")
        assert s.http("DELETE", "/api/calendar", token=tok).status == 204
        assert_error(s.http("DELETE", "/api/calendar", token=tok),
                     404, "not_found")
    finally:
        s.stop()
