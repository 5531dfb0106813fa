"""test_json_suite.py -- every n_* case of JSONTestSuite (the texts RFC 8259
rejects; tests/json-test-suite/, see its README) sent to the real module as
the body of POST /api/bookings (a family's token, an Idempotency-Key) and of
POST /api/session: each is answered 400 bad_json with the JSON error body,
never invalid_field (several cases are valid-looking prefixes of a booking
body) nor anything else, and nothing is written to Redis.

Bodies over an endpoint's limit are refused before they are read as JSON:
413 body_too_large (client_max_body_size 64k for bookings, 2 KiB for a
login); the test says which cases those are.
"""

import os
import sys
import uuid

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from stack import ROOT  # noqa: E402

SUITE = os.path.join(ROOT, "tests", "json-test-suite")
CASES = sorted(f for f in os.listdir(SUITE)
               if f.startswith("n_") and f.endswith(".json"))
LIMIT = {"/api/bookings": 64 * 1024, "/api/session": 2048}


def test_the_suite_is_there():
    assert len(CASES) == 188


@pytest.fixture(scope="module")
def family_token(stack):
    return stack.token("f-martin")


def _redis_state(s):
    r = s.redis
    xlen = r.xlen("{main}:stream") if r.exists("{main}:stream") else 0
    tokens = sum(1 for _ in r.scan_iter(match="{main}:f:*:tokens", count=1000))
    return r.dbsize() - tokens, xlen


@pytest.mark.parametrize("path", ["/api/bookings", "/api/session"])
@pytest.mark.parametrize("case", CASES)
def test_n_case_is_bad_json(stack, family_token, path, case):
    with open(os.path.join(SUITE, case), "rb") as f:
        body = f.read()
    headers = {"Content-Type": "application/json"}
    token = None
    if path == "/api/bookings":
        headers["Idempotency-Key"] = "t-" + uuid.uuid4().hex
        token = family_token
    before = _redis_state(stack)
    r = stack.http("POST", path, body=body, headers=headers, token=token)
    want = (413, "body_too_large") if len(body) > LIMIT[path] \
        else (400, "bad_json")
    assert (r.status, r.json()["error"]["code"]) == want, (case, r)
    assert r.headers.get("content-type", "").startswith("application/json")
    assert _redis_state(stack) == before
