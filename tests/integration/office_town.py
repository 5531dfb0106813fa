"""office_town.py -- the town and helpers of the office tests of
enrolments, documents and the back office (test_office_enrolment.py,
test_office_documents.py, test_office_staff.py).

Two families: f1 (children f1-a, f1-b) and f2 (child f2-a).  Activity
"centre" needs nothing but an enrolment; "piscine" also requires a valid
"vaccinations" document.  Town enrolments: f1-a in both, f2-a in centre;
f1-b in none (the family asks in the office).
"""

import csv
import http.client
import io
import json
import os
import subprocess
import time
import uuid

import pytest

from stack import Response

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))

PDF = (b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer\n"
       b"<< /Root 1 0 R >>\n%%EOF\n")
PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00"
       b"\x01\x08\x02\x00\x00\x00\x90wS\xde\x00\x00\x00\x0cIDATx\x9cc\xf8"
       b"\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82")
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"


def town():
    def sessions(aid, days, places=10):
        return [{"id": "%s-%s" % (aid, d.replace("-", "")), "date": d,
                 "unit": "MATIN", "places": places} for d in days]

    def act(aid, days, **extra):
        a = {"id": aid, "name": aid.capitalize(), "age_min": 3,
             "age_max": 12, "booking_opens_at": "2026-01-01T18:00:00+01:00",
             "deadline": {"working_days": 2},
             "prices": [{"qf_max": None, "cents": 700}],
             "sessions": sessions(aid, days)}
        a.update(extra)
        return a

    days = ["2027-07-%02d" % d for d in range(5, 10)]
    return {
        "town": {"name": "Office", "timezone": "Europe/Paris"},
        "units": [{"code": "MATIN", "label": "Matin", "starts": "08:30",
                   "ends": "12:00"}],
        "activities": [
            act("centre", days),
            act("piscine", days, required_documents=["vaccinations"]),
        ],
        "families": [
            {"id": "f1", "login": "dupont", "password": "secret-f1",
             "qf": 300,
             "children": [{"id": "f1-a", "first_name": "Alice",
                           "birth_date": "2018-04-04"},
                          {"id": "f1-b", "first_name": "Bastien",
                           "birth_date": "2019-05-05"}],
             "enrolments": [{"child_id": "f1-a", "activity_id": a,
                             "from": "2026-09-01", "to": "2027-08-31",
                             "status": "validee"}
                            for a in ("centre", "piscine")]},
            {"id": "f2", "qf": 800,
             "children": [{"id": "f2-a", "first_name": "Zoé",
                           "birth_date": "2018-06-06"}],
             "enrolments": [{"child_id": "f2-a", "activity_id": "centre",
                             "from": "2026-09-01", "to": "2027-08-31",
                             "status": "validee"}]},
        ],
    }


def staff_add(s, login, role, name, password):
    """guichetctl staff-add with the password on stdin; its stdout."""
    r = subprocess.run([s.ctl, "-c", s.worker_conf, "staff-add", login, role,
                        name], input=(password + "\n").encode(), cwd=ROOT,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert r.returncode == 0, r.stderr.decode()
    return r.stdout.decode()


def staff_login(s, login, password):
    r = s.http("POST", "/api/staff/session",
               json={"login": login, "password": password})
    assert r.status == 200, r
    return r.json()["token"]


# The usual staff of the office's tests, by role: login, role, name,
# password.
STAFF = {"agent": ("agent.a", "agent", "Alex Agent", "agent-pass-1"),
         "regie": ("regie.r", "regie", "Robin Régie", "regie-pass-2"),
         "admin": ("chef", "admin", "Camille Chef", "admin-pass-3")}


def staffed_stack(make_stack, town_file, name, roles=("agent", "regie")):
    """make_stack(town_file) with the usual staff of these roles."""
    st = make_stack(town_file, name=name)
    for role in roles:
        staff_add(st, *STAFF[role])
    return st


def staff_token(s, role):
    """The usual staff of that role logged in: its token."""
    login, _, _, password = STAFF[role]
    return staff_login(s, login, password)


# Fixtures a test file imports (its own s the stack): the usual staff
# logged in.
@pytest.fixture(scope="module")
def agent(s):
    return staff_token(s, "agent")


@pytest.fixture(scope="module")
def regie(s):
    return staff_token(s, "regie")


@pytest.fixture(scope="module")
def admin(s):
    return staff_token(s, "admin")


def csv_rows(r):
    """The rows of a 200 answer's CSV (;-separated), its header left
    out."""
    assert r.status == 200, r
    return [x for x in csv.reader(io.StringIO(r.body.decode()),
                                  delimiter=";")][1:]


def staff_try(s, login, password, source=None, path="/api/staff/session"):
    """POST /api/staff/session (or path: /api/session) from source, a
    loopback address other than 127.0.0.1 (nginx passes it on in
    X-Real-IP: several people, as login attempts are counted per address);
    the Response."""
    c = http.client.HTTPConnection(
        "127.0.0.1", s.port, timeout=60,
        source_address=(source, 0) if source else None)
    try:
        c.request("POST", path,
                  body=json.dumps({"login": login, "password": password}),
                  headers={"Content-Type": "application/json"})
        r = c.getresponse()
        return Response(r.status, r.getheaders(), r.read())
    finally:
        c.close()


def error_code(r, status):
    assert r.status == status, r
    return r.json()["error"]["code"]


def book(s, tok, child, sid):
    """(status, reason) of a one-cell booking.  A 503 catalogue_behind (the
    nginx worker that answered has not yet read the catalogue where the
    family appeared; module_sees() may have asked the other one) or
    unavailable (Redis slower than guichet_timeout, seen with the suites
    sharing a loaded machine) is retried with the same key, as
    docs/errors.md tells a client to."""
    key = uuid.uuid4().hex
    deadline = time.monotonic() + 15
    while True:
        r = s.http("POST", "/api/bookings", token=tok,
                   json={"items": [{"child_id": child, "session_id": sid}]},
                   headers={"Idempotency-Key": key})
        if (r.status != 503 or time.monotonic() > deadline
                or r.json()["error"]["code"] not in ("catalogue_behind",
                                                     "unavailable")):
            break
        time.sleep(0.2)
    assert r.status == 200, r
    item = r.json()["items"][0]
    return item["status"], item.get("reason")


def published(s):
    """Waits until Redis holds the catalogue version of PostgreSQL (the
    worker republished after the last change) and every nginx worker holds
    that catalogue (stack.wait_catalogue_everywhere: each reloads on its
    own, and the next request may reach either)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        v = s.sql("select version from catalogue")[0][0]
        if s.redis.get("{main}:catalogue:version") == str(v):
            s.wait_catalogue_everywhere()
            return v
        time.sleep(0.05)
    raise AssertionError("catalogue version %s never published" % v)


def outbox(s, kind):
    return s.sql("select family_id, ref, subject, body from outbox"
                 " where kind = %s order by id", (kind,))


def upload_pdf(s, token, typ, child=None):
    """POST /api/documents of a small PDF of type typ (for child); its
    id.  An activity's required documents must be on file (waiting or
    accepted) before its enrolment is asked (issue 25)."""
    q = "type=" + typ + ("&child_id=" + child if child else "")
    r = s.http("POST", "/api/documents?" + q, token=token, body=PDF,
               headers={"Content-Type": "application/pdf"})
    assert r.status == 201, r
    return r.json()["id"]


def audit(s, action):
    return s.sql("select actor, target, detail from audit_log"
                 " where action = %s order by id", (action,))


def module_sees(s, tok, pred, timeout=20, path="/api/me"):
    """Waits until GET path (/api/me or /api/activities, rendered by the
    module from the catalogue it holds) satisfies pred(answer) with every
    nginx worker holding that catalogue: each worker reloads on its own
    every guichet_catalogue_refresh, so one answer (or eight in a row on
    fresh connections, which may all reach the same worker) let the next
    request reach the other worker, not yet reloaded.  Each turn waits
    until every worker holds Redis's generation G (/metrics'
    guichet_catalogue_generation, stack.wait_catalogue_everywhere), asks,
    and takes the answer if Redis still holds G: every worker then
    answers from the catalogue the answer came from.  The answer's
    JSON."""
    deadline = time.monotonic() + timeout
    while True:
        gen = s.wait_catalogue_everywhere(
            timeout=max(1, deadline - time.monotonic()))
        r = s.http("GET", path, token=tok)
        if (r.status == 200 and pred(r.json())
                and int(s.redis.get("{%s}:catalogue:gen" % s.town_id))
                == gen):
            return r.json()
        if time.monotonic() > deadline:
            raise AssertionError("the module never saw it: %r" % r)
        time.sleep(0.1)


def enrolment_status(child, activity, frm):
    """A module_sees predicate: child's enrolment in activity from frm has
    a status, returned."""
    def pred(me):
        for e in me.get("enrolments", []):
            if (e["child_id"], e["activity_id"], e["from"]) == \
                    (child, activity, frm):
                return e["status"]
        return None
    return pred


def book_until(s, tok, child, sid, leaving, timeout=20):
    """Books until the answer is no longer ("refused", leaving); the module
    learns the change at its next catalogue refresh.  The last answer."""
    deadline = time.monotonic() + timeout
    while True:
        got = book(s, tok, child, sid)
        if got != ("refused", leaving) or time.monotonic() > deadline:
            return got
        time.sleep(0.1)


def coresp_invite(s, tok, first, last, email):
    """A co-responsable invited by the family of tok: the invitation
    link's token (the "jeton" of its URL's fragment)."""
    from urllib.parse import parse_qs, urlsplit

    r = s.http("POST", "/api/co-responsables", token=tok,
               json={"first_name": first, "last_name": last, "email": email})
    assert r.status == 201, r
    url = urlsplit(r.json()["invitation_url"])
    return parse_qs(url.fragment.split("?", 1)[1])["jeton"][0]


def coresp_accept(s, link, login, password):
    """The invitation accepted with login and password (the CGU's current
    version); the co-responsable logs in: their credentials."""
    version = s.http("GET", "/api/account/cgu").json()["version"]
    r = s.http("POST", "/api/account/co-responsable",
               json={"token": link, "login": login, "password": password,
                     "cgu_version": version})
    assert r.status == 200, r
    creds = {"login": login, "password": password}
    assert s.http("POST", "/api/session", json=creds).status == 200
    return creds
