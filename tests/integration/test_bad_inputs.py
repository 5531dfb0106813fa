"""test_bad_inputs.py -- the catalogue of bad inputs (issue 8) against a
real stack: every case of bad_inputs/cases.json (made by
bad_inputs/make_cases.py), then the raw-socket cases nginx answers itself
(request smuggling, oversized headers, slow bodies), a request one second
before the opening, and the last place requested by 500 clients at once.

Every case asserts its status and error code, and that nothing was written:
Redis DBSIZE and the length of {main}:stream unchanged, PostgreSQL's booking
count unchanged, and no [alert]/[crit]/[emerg] in nginx's error log.

The stack is dev.conf with two changes (written at start into a temporary
template): client_body_timeout and client_header_timeout of 2 s, so that the
slow-body and slow-header cases end within the test run.
docs/reliability.md sums up what this file tries.
"""

import base64
import binascii
import concurrent.futures
import datetime
import hashlib
import hmac
import http.client
import json
import os
import re
import socket
import sys
import threading
import time
import uuid

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from stack import ROOT, Stack  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
CASES = json.load(open(os.path.join(HERE, "bad_inputs", "cases.json")))
TIMEOUT_S = 2               # client_body_timeout / client_header_timeout
RUSH = 500                  # clients for the last place

ERROR_STATUS = {
    "bad_json": 400, "invalid_field": 400, "idempotency_key_missing": 400,
    "unauthenticated": 401, "forbidden": 403, "bad_origin": 403,
    "not_found": 404, "method_not_allowed": 405, "body_too_large": 413,
    "unsupported_media_type": 415, "request_in_progress": 409,
    "idempotency_key_reused": 422, "rate_limited": 429, "unavailable": 503,
}


# ----- the town and the stack ----------------------------------------------

def town(opens_at=None):
    units = [{"code": "MATIN", "label": "Matin", "starts": "08:30",
              "ends": "12:00"},
             {"code": "APM", "label": "Après-midi", "starts": "13:30",
              "ends": "17:30"}]

    def act(aid, sessions, opens="2026-01-01T18:00:00+01:00"):
        return {"id": aid, "name": "Activité " + aid, "age_min": 3,
                "age_max": 17, "booking_opens_at": opens,
                "deadline": {"working_days": 2}, "online_share_percent": 50,
                "week_required": False,
                "prices": [{"qf_max": None, "cents": 500}],
                "sessions": sessions}

    def sess(sid, date, unit, places):
        return {"id": sid, "date": date, "unit": unit, "places": places}

    acts = [act("a", [sess("a-m", "2027-07-07", "MATIN", 10),
                      sess("a-m2", "2027-07-08", "MATIN", 10),
                      sess("a-apm", "2027-07-07", "APM", 10)]),
            act("last", [sess("last-1", "2027-07-09", "MATIN", 2)])]
    if opens_at:
        acts.append(act("soon", [sess("soon-1", "2027-07-12", "MATIN", 4)],
                        opens=opens_at))

    def fam(fid, nkids, login=None, acts_=("a", "last", "soon")):
        kids = [{"id": "%s-c%d" % (fid, k), "first_name": "Enfant%d" % k,
                 "birth_date": "2018-03-0%d" % k} for k in range(1, nkids + 1)]
        f = {"id": fid, "qf": 500, "resident": True, "direct_debit": False,
             "children": kids,
             "enrolments": [{"child_id": c["id"], "activity_id": a,
                             "from": "2026-01-01", "to": "2027-12-31",
                             "status": "validee"}
                            for c in kids for a in acts_]}
        if login:
            f["login"], f["password"] = login, "secret-bad"
        return f

    main = ("a", "last", "soon") if opens_at else ("a", "last")
    families = [fam("f1", 2, "famille1", main), fam("f2", 2, None, main),
                fam("f3", 1, None, main)]
    if opens_at is None:
        families += [fam("r%03d" % i, 1, acts_=("last",))
                     for i in range(RUSH)]
    return {"town": {"name": "Mauvaises", "timezone": "Europe/Paris"},
            "units": units, "activities": acts, "families": families}


def short_timeouts_template(tmpdir):
    """dev.conf with client_body_timeout / client_header_timeout of 2 s."""
    src = open(os.path.join(ROOT, "lua-free-config", "dev.conf")).read()
    for d in ("client_body_timeout", "client_header_timeout"):
        # dev.conf sets both (10 s, as production.conf): replaced, since
        # a second one in the same block would be a duplicate for nginx
        src, n = re.subn(r"(?m)^(\s*%s\s+)\S+;" % d,
                         r"\g<1>%ds;" % TIMEOUT_S, src)
        if n == 0:
            src = src.replace("http {", "http {\n    %s %ds;"
                              % (d, TIMEOUT_S), 1)
    path = os.path.join(tmpdir, "bad-inputs.conf")
    with open(path, "w") as f:
        f.write(src)
    return path        # absolute: os.path.join in stack.py keeps it


@pytest.fixture(scope="module")
def s(tmp_path_factory):
    tpl = short_timeouts_template(str(tmp_path_factory.mktemp("conf")))
    st = Stack(town=town(), name="bad", nginx_template=tpl).start()
    yield st
    try:
        st.assert_clean_error_log()
    finally:
        st.stop()


# ----- tokens --------------------------------------------------------------

def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def read_secret(path):
    raw = open(path, "rb").read()
    if len(raw) == 32:
        return raw
    return binascii.unhexlify(raw.strip())


def forge(secret, fid, exp, nonce=b"\0" * 16):
    msg = "v1.%s.%s.%s" % (b64(fid.encode()), exp, b64(nonce))
    mac = hmac.new(secret, msg.encode(), hashlib.sha256).digest()
    return msg + "." + b64(mac)


def make_tokens(s):
    secret = read_secret(s.secret)
    f1 = s.token("f1")
    # v4.<town>.<fid>.<expires>.<issued>.<nonce>.<mac>
    parts = f1.split(".")
    now = int(time.time())
    t = {"f1": f1, "f2": s.token("f2"),
         "staff": s.ctl_run("staff-token", "agent-1").strip(),
         "ghost": forge(secret, "ghost-family", now + 3600),
         "none": "", "empty": "", "garbage": "hello",
         "expired": forge(secret, "f1", now - 60),
         "expired_long_ago": forge(secret, "f1", 1),
         "other_secret": forge(os.urandom(32), "f1", now + 3600),
         "mac_flipped": f1[:-1] + ("A" if f1[-1] != "A" else "B"),
         "mac_truncated": f1[:-4],
         "mac_missing": ".".join(parts[:6]),
         "mac_extended": f1 + "AA",
         "fid_swapped": ".".join(parts[:2] + [b64(b"f2")] + parts[3:]),
         "exp_bumped": ".".join(parts[:3] + [str(int(parts[3]) + 1000)]
                                + parts[4:]),
         "issued_bumped": ".".join(parts[:4] + [str(int(parts[4]) - 1000)]
                                   + parts[5:]),
         "nonce_changed": ".".join(parts[:5] + [b64(b"\1" * 16)]
                                   + parts[6:]),
         "town_rewritten": ".".join([parts[0], "other"] + parts[2:]),
         "town_dropped": ".".join(["v2"] + parts[2:]),
         "v1_relabelled": "v1." + f1[3:], "v3": "v3." + f1[3:],
         "no_prefix": f1[3:],
         "extra_part": f1 + ".x",
         "bad_base64": ".".join(parts[:2] + ["!!!!"] + parts[3:]),
         "negative_exp": forge(secret, "f1", -5),
         "huge_exp": forge(secret, "f1", "9" * 25),
         "truncated_half": f1[:len(f1) // 2],
         "lowercased": f1.lower(),
         "whitespace_inside": f1[:20] + " " + f1[20:],
         "4k_long": "v1." + "A" * 4000,
         "nul_inside": f1[:10] + "%00" + f1[10:]}
    # a token really logged out
    rev = s.token("f3")
    r = s.http("DELETE", "/api/session", token=rev)
    assert r.status == 204, r
    t["revoked"] = rev
    s.wait_revoked_everywhere()     # the other worker learns it too

    return t


# ----- setup: what the cases point at ------------------------------------------

@pytest.fixture(scope="module")
def env(s):
    e = {"tokens": make_tokens(s), "keys": {"used": "setup-used-key"},
         "bids": {}}
    tok = e["tokens"]

    def book(token, child, sid, key):
        r = s.http("POST", "/api/bookings", token=token,
                   headers={"Idempotency-Key": key},
                   json={"items": [{"child_id": child, "session_id": sid}]})
        assert r.status == 200, r
        item = r.json()["items"][0]
        assert item["status"] == "confirmed", r
        return item["booking_id"]

    e["bids"]["f1"] = book(tok["f1"], "f1-c1", "a-m", "setup-used-key")
    e["bids"]["f2"] = book(tok["f2"], "f2-c1", "a-m", "setup-f2")
    e["bids"]["f1_cancelled"] = book(tok["f1"], "f1-c2", "a-apm", "setup-c")
    r = s.http("DELETE", "/api/bookings/" + e["bids"]["f1_cancelled"],
               token=tok["f1"])
    assert r.status == 200, r
    s.wait_worker_drained()
    return e


def fill(text, s, env):
    def sub(m):
        kind, _, arg = m.group(1).partition(":")
        if kind == "TOK":
            return env["tokens"][arg]
        if kind == "KEY":
            return env["keys"][arg] if arg else uuid.uuid4().hex
        if kind == "BID":
            return env["bids"][arg]
        if kind == "PORT":
            return str(s.port)
        if kind == "HOST":
            return "127.0.0.1:%d" % s.port
        if kind == "ORIGIN":
            return "http://127.0.0.1:%d" % s.port
        raise KeyError(m.group(0))
    return re.sub(r"<<([A-Za-z_]+(?::[A-Za-z0-9_]*)?)>>", sub, text)


def case_body(c, s, env):
    if "body_hex" in c:
        return bytes.fromhex(c["body_hex"])
    if "body_gen" in c:
        pre, unit, n, post = c["body_gen"]["repeat"]
        return fill(pre + unit * n + post, s, env).encode()
    if "body" in c:
        return fill(c["body"], s, env).encode()
    return None


# ----- raw HTTP ------------------------------------------------------------

def raw_request(method, path, headers, body, port):
    lines = ["%s %s HTTP/1.1" % (method, path), "Host: 127.0.0.1:%d" % port]
    for k, v in headers.items():
        if v is not None:
            lines.append("%s: %s" % (k, v))
    if body is not None or method in ("POST", "PUT", "PATCH"):
        lines.append("Content-Length: %d" % len(body or b""))
    lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")


def send_raw(s, data, timeout=10, pause=None):
    """Sends bytes (a list: parts sent `pause` seconds apart) on one
    connection; returns everything nginx sent until it closed."""
    sock = socket.create_connection(("127.0.0.1", s.port), timeout=timeout)
    try:
        parts = data if isinstance(data, list) else [data]
        for i, p in enumerate(parts):
            if i and pause:
                time.sleep(pause)
            try:
                sock.sendall(p)
            except (BrokenPipeError, ConnectionResetError):
                break
        out = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            except socket.timeout:
                out += b"<timeout>"
                break
            if not chunk:
                break
            out += chunk
        return out
    finally:
        sock.close()


def parse_responses(raw):
    """[(status, headers dict lower-case, body bytes)] of a byte stream."""
    out = []
    while raw.startswith(b"HTTP/"):
        head, _, rest = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        h = {}
        for l in lines[1:]:
            k, _, v = l.partition(":")
            h[k.strip().lower()] = v.strip()
        if "content-length" in h:
            n = int(h["content-length"])
            body, raw = rest[:n], rest[n:]
        elif h.get("transfer-encoding") == "chunked":
            body = b""
            while True:
                size, _, rest = rest.partition(b"\r\n")
                n = int(size.split(b";")[0], 16)
                body += rest[:n]
                rest = rest[n + 2:]
                if n == 0:
                    rest = rest.partition(b"\r\n")[2] if \
                        rest.startswith(b"\r\n") is False else rest[2:]
                    break
            raw = rest
        else:
            body, raw = rest, b""
        out.append((status, h, body))
    return out


# ----- nothing written -------------------------------------------------------

def state(s):
    r = s.redis
    xlen = r.xlen("{main}:stream") if r.exists("{main}:stream") else 0
    return {"dbsize": r.dbsize(), "xlen": xlen,
            "pg_bookings": s.sql("select count(*) from booking")[0][0],
            "pg_demandes": s.sql("select count(*) from demande")[0][0]}


def keys(s):
    return set(s.redis.scan_iter(count=1000))


class Unchanged:
    """with Unchanged(s): ... asserts nothing was written meanwhile."""

    def __init__(self, s):
        self.s = s

    def __enter__(self):
        self.before = state(self.s)
        self.keys = keys(self.s)
        return self

    def __exit__(self, et, ev, tb):
        if et is not None:
            return False
        after = state(self.s)
        if after != self.before:
            time.sleep(0.3)             # a heartbeat key that just expired?
            after = state(self.s)
        assert after == self.before, (
            "something was written: %r -> %r, new keys %r, gone %r" % (
                self.before, after, sorted(keys(self.s) - self.keys)[:10],
                sorted(self.keys - keys(self.s))[:10]))
        self.s.assert_clean_error_log()
        return False


def assert_json_error(status, headers, body, code, expect_status=None):
    assert status == (expect_status or ERROR_STATUS[code]), (status, body)
    assert headers.get("content-type", "").startswith("application/json"), \
        (headers, body)
    doc = json.loads(body)
    assert set(doc) == {"error"}, doc
    assert doc["error"]["code"] == code, doc
    assert isinstance(doc["error"]["message"], str) and doc["error"]["message"]


# ----- the catalogue ---------------------------------------------------------

@pytest.mark.parametrize("c", CASES, ids=[c["category"] + ": " + c["name"]
                                          for c in CASES])
def test_catalogue(s, env, c):
    headers = {k: (fill(v, s, env) if v is not None else None)
               for k, v in c["headers"].items()}
    body = case_body(c, s, env)
    path = fill(c["path"], s, env)
    req = raw_request(c["method"], path,
                      {k: v for k, v in headers.items()}, body, s.port)
    with Unchanged(s):
        rs = parse_responses(send_raw(s, req))
        assert len(rs) == 1, rs
        status, h, b = rs[0]
        if c["code"] is None:          # nginx's own answer (HTML)
            assert status == c["status"], (status, b[:300])
            assert h.get("content-type", "").startswith("text/html"), h
        else:
            assert_json_error(status, h, b, c["code"], c["status"])


def test_catalogue_has_150_cases():
    assert len(CASES) >= 150


# ----- raw HTTP nginx answers itself ------------------------------------------
# (name, request bytes with <<...>> filled in, expected status, expected
# error code or None for nginx's own HTML answer).  Every request is sent
# with keep-alive and a second, valid booking request behind it: nginx must
# answer once and close, and that second request must never be processed.

SMUGGLED = ('POST /api/bookings HTTP/1.1\r\nHost: <<HOST>>\r\n'
            'Authorization: Bearer <<TOK:f1>>\r\n'
            'Content-Type: application/json\r\nIdempotency-Key: <<KEY>>\r\n'
            'Content-Length: 53\r\n\r\n'
            '{"items":[{"child_id":"f1-c2","session_id":"a-m2"}]}')
BOOK_HEAD = ('POST /api/bookings HTTP/1.1\r\nHost: <<HOST>>\r\n'
             'Authorization: Bearer <<TOK:f1>>\r\n'
             'Content-Type: application/json\r\nIdempotency-Key: <<KEY>>\r\n')
CHUNK0 = "0\r\n\r\n"

RAW_CASES = [
    ("CL + TE chunked (CL.TE)",
     BOOK_HEAD + "Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n"
     + CHUNK0 + SMUGGLED, 400, None),
    ("TE chunked + CL (TE.CL)",
     BOOK_HEAD + "Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n"
     + "%x\r\n%s\r\n" % (len(SMUGGLED), SMUGGLED) + CHUNK0, 400, None),
    ("duplicate Content-Length, different",
     BOOK_HEAD + "Content-Length: 0\r\nContent-Length: 53\r\n\r\n" + SMUGGLED,
     400, None),
    ("duplicate Content-Length, equal",
     BOOK_HEAD + "Content-Length: 2\r\nContent-Length: 2\r\n\r\n{}" + SMUGGLED,
     400, None),
    ("Content-Length list",
     BOOK_HEAD + "Content-Length: 2, 2\r\n\r\n{}" + SMUGGLED, 400, None),
    ("negative Content-Length",
     BOOK_HEAD + "Content-Length: -1\r\n\r\n" + SMUGGLED, 400, None),
    ("Content-Length with a plus",
     BOOK_HEAD + "Content-Length: +2\r\n\r\n{}" + SMUGGLED, 400, None),
    ("Content-Length of 20 digits",
     BOOK_HEAD + "Content-Length: 99999999999999999999\r\n\r\n" + SMUGGLED,
     400, None),
    ("TE chunked, identity",
     BOOK_HEAD + "Transfer-Encoding: chunked, identity\r\n\r\n" + CHUNK0
     + SMUGGLED, 501, None),
    ("TE xchunked",
     BOOK_HEAD + "Transfer-Encoding: xchunked\r\n\r\n" + CHUNK0 + SMUGGLED,
     501, None),
    ("TE twice",
     BOOK_HEAD + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked"
     "\r\n\r\n" + CHUNK0 + SMUGGLED, 400, None),
    ("TE with HTTP/1.0",
     BOOK_HEAD.replace("HTTP/1.1", "HTTP/1.0", 1)
     + "Transfer-Encoding: chunked\r\n\r\n" + CHUNK0 + SMUGGLED, 400, None),
    ("chunk size overflow",
     BOOK_HEAD + "Transfer-Encoding: chunked\r\n\r\n"
     "ffffffffffffffffffff\r\n{}\r\n" + CHUNK0 + SMUGGLED, 400, None),
    ("chunk size not hex",
     BOOK_HEAD + "Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n" + CHUNK0
     + SMUGGLED, 400, None),
    ("space before the colon of Content-Length",
     BOOK_HEAD + "Content-Length : 2\r\n\r\n{}" + SMUGGLED, 400, None),
    ("header with a NUL byte",
     BOOK_HEAD + "X-A: a\0b\r\nContent-Length: 2\r\n\r\n{}" + SMUGGLED,
     400, None),
    ("no Host with HTTP/1.1",
     BOOK_HEAD.replace("Host: <<HOST>>\r\n", "") + "Content-Length: 2\r\n\r\n{}"
     + SMUGGLED, 400, None),
    ("two Host headers",
     BOOK_HEAD + "Host: evil.example\r\nContent-Length: 2\r\n\r\n{}"
     + SMUGGLED, 400, None),
    ("bare LF in the request line",
     "POST /api/bookings HTTP/1.1\nHost: <<HOST>>\r\nX\rY: z\r\n\r\n"
     + SMUGGLED, 400, None),
    ("chunked booking body > client_max_body_size",
     BOOK_HEAD + "Transfer-Encoding: chunked\r\n\r\n"
     + "10000\r\n" + " " * 0x10000 + "\r\n" + "10\r\n" + " " * 16 + "\r\n"
     + CHUNK0 + SMUGGLED, 413, "body_too_large"),
    # oversized headers (large_client_header_buffers 4 8k)
    ("request line of 9 KiB",
     "GET /api/activities?x=" + "a" * 9000 + " HTTP/1.1\r\nHost: <<HOST>>"
     "\r\n\r\n" + SMUGGLED, 414, None),
    ("one header of 9 KiB",
     "GET /api/me HTTP/1.1\r\nHost: <<HOST>>\r\nX-Big: " + "a" * 9000
     + "\r\n\r\n" + SMUGGLED, 400, None),
    ("cookie of 20 KiB",
     "GET /api/me HTTP/1.1\r\nHost: <<HOST>>\r\nCookie: guichet_session="
     + "a" * 20000 + "\r\n\r\n" + SMUGGLED, 400, None),
    ("Authorization of 9 KiB",
     "GET /api/me HTTP/1.1\r\nHost: <<HOST>>\r\nAuthorization: Bearer "
     + "v1." + "A" * 9000 + "\r\n\r\n" + SMUGGLED, 400, None),
    ("40 headers of 1 KiB (40 KiB > 4 x 8k)",
     "GET /api/me HTTP/1.1\r\nHost: <<HOST>>\r\n"
     + "".join("X-H%d: %s\r\n" % (i, "b" * 1000) for i in range(40))
     + "\r\n" + SMUGGLED, 400, None),
    ("1000 small headers",
     "GET /api/me HTTP/1.1\r\nHost: <<HOST>>\r\n"
     + "".join("X-%d: 1\r\n" % i for i in range(1000)) + "\r\n" + SMUGGLED,
     None, None),
]


@pytest.mark.parametrize("name,req,status,code", RAW_CASES,
                         ids=[c[0] for c in RAW_CASES])
def test_raw(s, env, name, req, status, code):
    data = fill(req, s, env).encode("latin-1")
    with Unchanged(s):
        rs = parse_responses(send_raw(s, data))
        assert len(rs) == 1, [(x[0], x[2][:80]) for x in rs]
        st, h, b = rs[0]
        if status is None:           # no limit: a normal answer is fine
            assert st in (200, 400), (st, b[:200])
            return
        assert st == status, (st, b[:300])
        if code is None:
            assert h.get("content-type", "").startswith("text/html"), h
        else:
            assert_json_error(st, h, b, code, status)


# ----- slow clients (client_body_timeout / client_header_timeout 2 s) --------

def test_slow_body_times_out_and_books_nothing(s, env):
    """Headers announce 53 bytes, 10 come, then nothing.  guichet_timeout
    (2 s) runs from the start of the booking, body read included, so the
    module answers 503 unavailable (Retry-After: 1) when it fires; had
    client_body_timeout come first, nginx would close the connection
    (408 without a page).  Nothing is written either way."""
    head = fill(BOOK_HEAD + "Content-Length: 53\r\nConnection: close\r\n"
                "\r\n", s, env).encode()
    with Unchanged(s):
        t0 = time.monotonic()
        out = send_raw(s, [head, b'{"items":['], timeout=TIMEOUT_S + 8,
                       pause=0.1)
        took = time.monotonic() - t0
        assert TIMEOUT_S - 0.5 <= took < TIMEOUT_S + 3, (took, out[:300])
        rs = parse_responses(out)
        if out:
            assert len(rs) == 1, out[:300]
            if rs[0][0] == 503:
                assert_json_error(*rs[0], "unavailable")
                assert rs[0][1].get("retry-after") == "1", rs[0][1]
            else:
                assert rs[0][0] == 408, out[:300]


def test_slow_headers_time_out(s, env):
    """Half a request line, then nothing: closed after
    client_header_timeout, no answer (nginx's way)."""
    with Unchanged(s):
        t0 = time.monotonic()
        out = send_raw(s, b"POST /api/bookings HTTP/1.1\r\nHost: x",
                       timeout=TIMEOUT_S + 8)
        took = time.monotonic() - t0
        assert TIMEOUT_S - 0.5 <= took < TIMEOUT_S + 5, took
        assert out == b"" or parse_responses(out)[0][0] in (400, 408), out


def test_slow_but_steady_body_is_answered(s, env):
    """A body dribbled in 4 parts 0.4 s apart (each within the timeout):
    read whole, then judged like any other (here: bad_json)."""
    body = b'{"items":[{"child_id":"f1-c2","session_id":"a-m2"}'
    head = fill(BOOK_HEAD + "Content-Length: %d\r\nConnection: close\r\n\r\n"
                % len(body), s, env).encode()
    with Unchanged(s):
        out = send_raw(s, [head, body[:10], body[10:30], body[30:]],
                       pause=0.4)
        rs = parse_responses(out)
        assert len(rs) == 1
        assert_json_error(rs[0][0], rs[0][1], rs[0][2], "bad_json")


# ----- one second before the opening ------------------------------------------

def test_one_second_before_the_opening(tmp_path_factory):
    """A town whose activity opens a few seconds from now: one second
    before, not_open_yet with opens_at and nothing booked; one second after,
    the same request books."""
    opens = int(time.time()) + 12
    iso = datetime.datetime.fromtimestamp(opens, datetime.timezone.utc) \
        .strftime("%Y-%m-%dT%H:%M:%S+00:00")
    st = Stack(town=town(opens_at=iso), name="opening").start()
    try:
        tok = st.token("f1")
        body = {"items": [{"child_id": "f1-c1", "session_id": "soon-1"}]}
        wait = opens - 1 - time.time()
        assert wait > 0, "the stack took too long to start"
        time.sleep(wait)
        # a refusal is a demande (recorded, answered 200), not a booking:
        # no place taken, no booking, no claim
        left = lambda: st.redis.execute_command(
            "BITFIELD", "{main}:s:soon-1:left", "GET", "u32", "0")[0]
        left0 = left()
        r = st.http("POST", "/api/bookings", token=tok, json=body,
                    headers={"Idempotency-Key": uuid.uuid4().hex})
        assert time.time() < opens, "too slow to test the second before"
        assert r.status == 200, r
        item = r.json()["items"][0]
        assert item["status"] == "refused", item
        assert item["reason"] == "not_open_yet", item
        assert item.get("opens_at"), item
        assert left() == left0
        assert not st.redis.exists("{main}:s:soon-1:booked")
        assert not list(st.redis.scan_iter("{main}:c:f1-c1:*"))
        st.wait_worker_drained()
        assert st.sql("select count(*) from booking")[0][0] == 0
        time.sleep(max(0, opens + 1 - time.time()))
        r = st.http("POST", "/api/bookings", token=tok, json=body,
                    headers={"Idempotency-Key": uuid.uuid4().hex})
        assert r.status == 200, r
        assert r.json()["items"][0]["status"] == "confirmed", r
        st.wait_worker_drained()
        assert st.sql("select count(*) from booking")[0][0] == 1
        st.assert_clean_error_log()
    finally:
        st.stop()


# ----- the last place, 500 clients at once --------------------------------------

def test_last_place_500_clients_at_once(s, env):
    """Session last-1 has one online place; 500 families ask for it at the
    same instant (500 open connections, requests released together):
    exactly one confirmed, 499 full, one booking in PostgreSQL."""
    tokens = s.tokens()
    fams = ["r%03d" % i for i in range(RUSH)]
    before = state(s)
    go = threading.Barrier(RUSH)

    def one(fid):
        body = json.dumps({"items": [{"child_id": fid + "-c1",
                                      "session_id": "last-1"}]}).encode()
        req = raw_request("POST", "/api/bookings", {
            "Authorization": "Bearer " + tokens[fid],
            "Content-Type": "application/json",
            "Idempotency-Key": "rush-" + fid}, body, s.port)
        sock = socket.create_connection(("127.0.0.1", s.port), timeout=30)
        try:
            go.wait(30)
            sock.sendall(req)
            resp = http.client.HTTPResponse(sock)
            resp.begin()
            return resp.status, json.loads(resp.read())
        finally:
            sock.close()

    with concurrent.futures.ThreadPoolExecutor(RUSH) as pool:
        results = list(pool.map(one, fams))
    assert all(st == 200 for st, _ in results), \
        [r for r in results if r[0] != 200][:5]
    outcomes = [(b["items"][0]["status"], b["items"][0].get("reason"))
                for _, b in results]
    assert outcomes.count(("confirmed", None)) == 1, outcomes
    assert outcomes.count(("refused", "full")) == RUSH - 1, outcomes
    s.wait_worker_drained()
    assert state(s)["pg_bookings"] == before["pg_bookings"] + 1
    assert s.redis.execute_command("BITFIELD", "{main}:s:last-1:left", "GET",
                                   "u32", "0")[0] == 0
    s.assert_clean_error_log()
