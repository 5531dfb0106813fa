"""test_security.py -- issue 18's configuration items on a real stack
(dev.conf through stack.py): the security headers of the website, of the
module's JSON, of guichet-office's JSON and of an invoice PDF, and
limit_req on guichet-office's password-reset and staff-login routes
(429 JSON rate_limited with Retry-After, from api-errors.conf).

production.conf's own (TLS, HSTS, header timeout) is
test_production_conf.py.  docs/reliability.md (Security) lists them.
"""

import concurrent.futures
import http.client
import json as jsonlib
import os
import re
import sys
import uuid

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from stack import Response, Stack  # noqa: E402


def town():
    return {
        "town": {"name": "Entêtes", "timezone": "Europe/Paris"},
        "units": [{"code": "APM", "label": "Après-midi", "starts": "13:30",
                   "ends": "17:30"}],
        "activities": [{
            "id": "alsh", "name": "ALSH été", "age_min": 3, "age_max": 12,
            "booking_opens_at": "2026-01-01T18:00:00+01:00",
            "deadline": {"working_days": 2},
            "prices": [{"qf_max": None, "cents": 450}],
            "sessions": [{"id": "s5", "date": "2027-07-05", "unit": "APM",
                          "places": 10}]}],
        "families": [{
            "id": "f1", "qf": 300, "login": "entetes",
            "password": "secret-entetes",
            "children": [{"id": "f1-c", "first_name": "Inès",
                          "birth_date": "2019-02-02"}],
            "enrolments": [{"child_id": "f1-c", "activity_id": "alsh",
                            "from": "2027-07-01", "to": "2027-07-31",
                            "status": "validee"}]}],
    }


@pytest.fixture(scope="module")
def s():
    st = Stack(town=town(), name="security").start()
    yield st
    try:
        st.assert_clean_error_log()
    finally:
        st.stop()


def header(r, name):
    vals = r.header_all(name)
    assert len(vals) == 1, (name, vals, r)
    return vals[0]


def directives(csp):
    """{"default-src": ["'self'"], ...} of a Content-Security-Policy."""
    out = {}
    for part in csp.split(";"):
        words = part.split()
        if words:
            out[words[0].lower()] = words[1:]
    return out


# ----- the website ----------------------------------------------------------

@pytest.mark.parametrize("path", ["/", "/agent/", "/js/app.js",
                                  "/css/guichet.css"])
def test_site_sends_csp_referrer_policy_and_nosniff(s, path):
    r = s.http("GET", path)
    assert r.status == 200, r
    csp = directives(header(r, "Content-Security-Policy"))
    # no framing (clickjacking), scripts and styles of the site only
    assert csp["frame-ancestors"] == ["'none'"], csp
    assert csp["default-src"] == ["'self'"], csp
    for d in ("script-src", "style-src"):
        assert d not in csp, csp                 # default-src 'self' rules
    assert "'unsafe-inline'" not in header(r, "Content-Security-Policy")
    assert csp["object-src"] == ["'none'"], csp
    assert header(r, "Referrer-Policy") == "same-origin"
    assert header(r, "X-Content-Type-Options") == "nosniff"
    assert header(r, "X-Frame-Options") == "DENY"
    # plain HTTP: no Strict-Transport-Security (browsers ignore it there)
    assert r.header_all("Strict-Transport-Security") == []


def test_site_pages_have_no_inline_script_or_style(s):
    """What the CSP above relies on: the pages load their script and style
    sheet from files (an inline one would be blocked by the browser)."""
    for path in ("/", "/agent/"):
        html = s.http("GET", path).body.decode()
        assert "<style" not in html and " style=" not in html, path
        for tag in html.split("<script")[1:]:
            assert " src=" in tag.split(">")[0], (path, tag[:80])
        assert not re.search(r"<[^>]*\son[a-z]+\s*=", html, re.I), path


# ----- the API: module, nginx's own errors, guichet-office, PDF -------------

@pytest.mark.parametrize("method,path,status", [
    ("GET", "/api/health", 200),             # the module
    ("GET", "/api/me", 401),                 # the module's JSON error
    ("GET", "/api/nope", 404),               # module's not_found
    ("GET", "/api/enrolments", 401),         # guichet-office
    ("POST", "/api/password/forgot", 415),   # guichet-office, limited route
])
def test_api_answers_are_nosniff(s, method, path, status):
    r = s.http(method, path)
    assert r.status == status, r
    assert header(r, "Content-Type").startswith("application/json"), r
    assert header(r, "X-Content-Type-Options") == "nosniff"


def test_nginx_own_json_errors_are_nosniff(s):
    # 413 from nginx itself (client_max_body_size 64k): api-errors.conf
    r = s.http("POST", "/api/bookings", body=b"x" * (65 * 1024),
               headers={"Content-Type": "application/json"})
    assert r.status == 413, r
    assert r.json()["error"]["code"] == "body_too_large"
    assert header(r, "X-Content-Type-Options") == "nosniff"


@pytest.mark.parametrize("path", ["/api/staff/daily.pdf",
                                  "/api/bookings.html", "/api/x.js"])
def test_nginx_own_json_errors_are_json_whatever_the_extension(s, path):
    """nginx picked the error's Content-Type from the path's extension
    (mime.types), not default_type: a 413 of /api/staff/daily.pdf was
    JSON sent as application/pdf, of /api/bookings.html as text/html."""
    r = s.http("POST", path, body=b"x" * (100 * 1024),
               headers={"Content-Type": "application/json"})
    assert r.status == 413, r
    assert header(r, "Content-Type").startswith("application/json"), r
    assert r.json()["error"]["code"] == "body_too_large"


def test_office_json_with_a_family_is_nosniff(s):
    r = s.http("GET", "/api/enrolments", token=s.token("f1"))
    assert r.status == 200, r
    assert header(r, "X-Content-Type-Options") == "nosniff"


@pytest.fixture(scope="module")
def invoice(s):
    """f1's one invoice (July 2027): (token, invoice id)."""
    tok = s.token("f1")
    r = s.http("POST", "/api/bookings", token=tok,
               headers={"Idempotency-Key": uuid.uuid4().hex},
               json={"items": [{"child_id": "f1-c", "session_id": "s5"}]})
    assert r.status == 200 and \
        r.json()["items"][0]["status"] == "confirmed", r
    s.wait_worker_drained()
    s.ctl_run("invoice", "--month", "2027-07")
    inv = s.http("GET", "/api/invoices", token=tok).json()
    assert len(inv) == 1, inv
    return tok, inv[0]["id"]


def test_invoice_pdf_is_nosniff(s, invoice):
    tok, iid = invoice
    r = s.http("GET", "/api/invoices/%s.pdf" % iid, token=tok)
    assert r.status == 200, r
    assert header(r, "Content-Type") == "application/pdf"
    assert r.body.startswith(b"%PDF-")
    assert header(r, "X-Content-Type-Options") == "nosniff"


def test_a_missing_invoice_is_a_json_404(s, invoice):
    """The file is not there (another family's id, a typo): nginx's 404
    of /_invoices/, answered by api-errors.conf, was sent as
    application/pdf (the .pdf of the path): a browser showed a broken
    PDF instead of the message."""
    tok, iid = invoice
    r = s.http("GET", "/api/invoices/%s0.pdf" % iid, token=tok)
    assert r.status == 404, r
    assert header(r, "Content-Type").startswith("application/json"), r
    assert r.json()["error"]["code"] == "not_found"


def test_a_missing_invoice_says_nosniff_once(s, invoice):
    """The module's nosniff goes through its internal redirect to
    /_invoices/; nginx's 404 there must not add a second one."""
    tok, iid = invoice
    r = s.http("GET", "/api/invoices/%s0.pdf" % iid, token=tok)
    assert r.status == 404, r
    assert header(r, "X-Content-Type-Options") == "nosniff"


def test_invoice_pdf_is_never_stored_by_a_cache(s, invoice):
    """An invoice names the family, its address and what it owes: like
    every JSON answer of the module it must not stay in the browser's disk
    cache (a family on the town library's computer) nor in a proxy."""
    tok, iid = invoice
    r = s.http("GET", "/api/invoices/%s.pdf" % iid, token=tok)
    assert r.status == 200, r
    assert header(r, "Cache-Control") == "no-store"


# ----- limit_req on guichet-office's password and staff-login routes --------

def test_loopback_127_0_0_1_is_not_limited_in_dev_conf(s):
    """dev.conf's exception, which the other tests rely on: 30 resets in a
    row from 127.0.0.1 all reach guichet-office."""
    for _ in range(30):
        r = s.http("POST", "/api/password/reset",
                   json={"token": "y" * 43, "password": "jamais-vu-2"})
        assert r.status == 400, r

def post_from(s, source, path, body):
    """POST body as JSON from the address source (127.0.0.x: dev.conf
    does not count 127.0.0.1 in these zones, the other tests' client)."""
    c = http.client.HTTPConnection("127.0.0.1", s.port, timeout=30,
                                   source_address=(source, 0))
    try:
        c.request("POST", path, body=jsonlib.dumps(body),
                  headers={"Content-Type": "application/json"})
        r = c.getresponse()
        return Response(r.status, r.getheaders(), r.read())
    finally:
        c.close()


def hammer(s, source, path, body, n):
    """n requests at once (body(i) the i-th's JSON); their answers."""
    def one(i):
        return post_from(s, source, path, body(i))
    with concurrent.futures.ThreadPoolExecutor(max_workers=n) as ex:
        return list(ex.map(one, range(n)))


@pytest.mark.parametrize("source,path,body,passed_code,burst", [
    ("127.0.0.2", "/api/password/reset",
     lambda i: {"token": "x" * 43, "password": "jamais-vu-1"},
     "reset_token_invalid", 10),
    ("127.0.0.3", "/api/password/forgot", lambda i: {"login": "personne"},
     None, 10),
    # one unknown login each: guichet-office's own pacing (from the fifth
    # failure of one login from one address) stays out of the way
    ("127.0.0.4", "/api/staff/session",
     lambda i: {"login": "inconnu-%d" % i, "password": "faux-faux-1"},
     "unauthenticated", 20),
])
def test_office_password_routes_are_rate_limited(s, source, path, body,
                                                 passed_code, burst):
    """office.conf's limit_req (burst 10 or 20, nodelay) at production's
    rates (6 and 30 a minute per address, dev.conf as production.conf):
    of 6 x burst requests sent at once from one address, the ones over the
    burst are refused by nginx before guichet-office with 429 JSON
    rate_limited and Retry-After; the others reach guichet-office."""
    rs = hammer(s, source, path, body, 6 * burst)
    limited = [r for r in rs if r.status == 429]
    passed = [r for r in rs if r.status != 429]
    assert passed, [r.status for r in rs]
    # the burst, give or take what the rate refilled while they arrived
    assert burst <= len(passed) < 3 * burst, [r.status for r in rs]
    assert limited, [r.status for r in rs]
    for r in limited:
        assert r.json()["error"]["code"] == "rate_limited", r
        assert header(r, "Retry-After") == "1"
        assert header(r, "X-Content-Type-Options") == "nosniff"
    for r in passed:
        if passed_code is None:
            assert r.status == 202, r
        else:
            assert r.json()["error"]["code"] == passed_code, r
    # nginx refused them: guichet-office saw only the ones that passed
    # (each staff login failure it checked is in the audit log)
    if path == "/api/staff/session":
        n = s.sql("select count(*) from audit_log"
                  " where action = 'staff.login_failed'"
                  " and target like 'staff:inconnu-%%'")
        assert n == [(len(passed),)], (n, len(passed))
