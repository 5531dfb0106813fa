"""test_bad_inputs.py -- the catalogue of bad inputs (issue 8) against a
real stack: every case of bad_inputs/cases.json (made by
bad_inputs/make_cases.py), then the raw-socket cases nginx answers itself
(request smuggling, oversized headers, slow bodies), a request one second
before the opening, and the last place requested by 500 clients at once.

Every case asserts its status and error code, and that nothing was written:
Redis DBSIZE and the length of gch:bookings unchanged, PostgreSQL's booking
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
    src = src.replace("http {", "http {\n    client_body_timeout %ds;\n"
                      "    client_header_timeout %ds;" % (TIMEOUT_S,
                                                          TIMEOUT_S), 1)
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
         "mac_missing": ".".join(parts[:4]),
         "mac_extended": f1 + "AA",
         "fid_swapped": ".".join([parts[0], b64(b"f2")] + parts[2:]),
         "exp_bumped": ".".join(parts[:2] + [str(int(parts[2]) + 1000)]
                                + parts[3:]),
         "nonce_changed": ".".join(parts[:3] + [b64(b"\1" * 16)]
                                   + parts[4:]),
         "v2": "v2." + f1[3:], "no_prefix": f1[3:],
         "extra_part": f1 + ".x",
         "bad_base64": ".".join([parts[0], "!!!!"] + parts[2:]),
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
    time.sleep(1.5)     # the other worker learns it within catalogue_refresh

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
    xlen = r.xlen("gch:bookings") if r.exists("gch:bookings") else 0
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
