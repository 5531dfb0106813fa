"""test_office_merge.py -- an admin merges a duplicate family into the one
kept (office/merge.c, issue 26): refused while the duplicate has bookings
to come, an invoice of a month the kept family was invoiced for too, or
for an agent or a régie (nothing changed); then its children, invoices,
payments, entourage and documents move, it is archived (its token
refused), the catalogue is republished and the booking path books the
merged child for the kept family.
"""

import time
import uuid

import pytest

from office_town import (audit, error_code, module_sees, published,
                         staff_add, staff_login)
from test_office_families import catalogue_family


def town():
    return {
        "town": {"name": "Fusion", "timezone": "Europe/Paris"},
        "units": [{"code": "MATIN", "label": "Matin", "starts": "08:30",
                   "ends": "12:00"}],
        "activities": [{"id": "centre", "name": "Centre",
                        "booking_opens_at": "2026-01-01T18:00:00+01:00",
                        "prices": [{"qf_max": None, "cents": 700}],
                        "sessions": [{"id": "centre-%d" % d,
                                      "date": "2027-07-%02d" % d,
                                      "unit": "MATIN", "places": 10}
                                     for d in (5, 6)]}],
        "families": [
            {"id": fid, "qf": 300,
             "children": [{"id": cid, "first_name": name,
                           "birth_date": "2018-04-04"}],
             "enrolments": [{"child_id": cid, "activity_id": "centre",
                             "from": "2027-01-01", "to": "2027-12-31",
                             "status": "validee"}]}
            for fid, cid, name in (("f1", "f1-a", "Alice"),
                                   ("f2", "f2-b", "Bruno"),
                                   ("f3", "f3-c", "Chloé"),
                                   ("f4", "f4-d", "Denis"),
                                   ("f5", "f5-e", "Emma"))],
    }


@pytest.fixture(scope="module")
def s(make_stack):
    st = make_stack(town(), name="office-merge")
    staff_add(st, "regie.r", "regie", "Robin Régie", "regie-pass-2")
    staff_add(st, "chef", "admin", "Camille Chef", "admin-pass-3")
    return st


def book(s, tok, child, sid):
    """The one-cell booking's item.  Retried with the same key on a 503
    unavailable (Redis slower than guichet_timeout on a loaded machine),
    as docs/errors.md tells a client; never on a 403: module_sees() and
    published() wait until every nginx worker holds the catalogue after
    the change (a child merged into the family)."""
    key = uuid.uuid4().hex
    deadline = time.monotonic() + 15
    while True:
        r = s.http("POST", "/api/bookings", token=tok,
                   headers={"Idempotency-Key": key},
                   json={"items": [{"child_id": child, "session_id": sid}]})
        if r.status == 200 or time.monotonic() > deadline:
            break
        assert r.status == 503, r
        time.sleep(0.2)
    assert r.status == 200, r
    return r.json()["items"][0]


def merge(s, tok, into, frm):
    return s.http("POST", "/api/staff/families/%s/merge" % into, token=tok,
                  json={"from": frm})


def test_merge_a_duplicate_family(s):
    regie = staff_login(s, "regie.r", "regie-pass-2")
    admin = staff_login(s, "chef", "admin-pass-3")
    t1, t2 = s.token("f1"), s.token("f2")
    b = book(s, t2, "f2-b", "centre-5")
    assert b["status"] == "confirmed", b
    s.wait_worker_drained()
    inv = s.sql("insert into invoice (number, family_id, month,"
                " total_cents, issued_at, due_date)"
                " values (1, 'f2', '2026-09-01', 700, now(), '2026-10-15')"
                " returning id")[0][0]
    s.sql("insert into invoice (number, family_id, month, total_cents,"
          " issued_at, due_date) values (2, 'f3', '2026-10-01', 900,"
          " now(), '2026-11-15'), (3, 'f1', '2026-10-01', 300, now(),"
          " '2026-11-15')")
    version = s.sql("select version from catalogue")[0][0]

    # only an admin; not itself; unknown family
    assert error_code(merge(s, regie, "f1", "f2"), 403) == "forbidden"
    assert error_code(merge(s, admin, "f1", "f1"), 400) == "invalid_field"
    assert error_code(merge(s, admin, "f1", "nope"), 404) == "not_found"
    # f2 has a booking to come: its Redis record is f2's
    r = merge(s, admin, "f1", "f2")
    assert error_code(r, 409) == "merge_refused"
    assert "1 réservation(s) à venir" in r.json()["error"]["message"]
    # f3 was invoiced for October as f1 was
    r = merge(s, admin, "f1", "f3")
    assert error_code(r, 409) == "merge_refused"
    assert "10/2026" in r.json()["error"]["message"]
    assert s.sql("select family_id from child where id in ('f2-b',"
                 " 'f3-c') order by id") == [("f2",), ("f3",)]
    assert s.sql("select version from catalogue")[0][0] == version
    assert s.sql("select count(*) from family where archived_at is not"
                 " null") == [(0,)]

    r = s.http("DELETE", "/api/bookings/" + b["booking_id"], token=t2)
    assert r.status == 200, r
    s.wait_worker_drained()
    r = merge(s, admin, "f1", "f2")
    assert r.status == 200, r
    assert r.json() == {"id": "f1", "merged": "f2",
                        "children": ["f1-a", "f2-b"]}
    assert s.sql("select family_id from child where id = 'f2-b'") == \
        [("f1",)]
    assert s.sql("select family_id from invoice where id = %s",
                 (inv,)) == [("f1",)]
    assert s.sql("select family_id from booking where id = %s",
                 (b["booking_id"],)) == [("f1",)]
    assert s.sql("select login is null, archived_by from family"
                 " where id = 'f2'") == [(True, "chef")]
    assert [a[:2] for a in audit(s, "family.merge")] == \
        [("chef", "family:f1")]
    assert error_code(merge(s, admin, "f1", "f2"), 409) == "family_archived"

    # the family kept sees the invoice; the booking path, one family
    r = s.http("GET", "/api/invoices", token=t1)
    assert sorted(i["number"] for i in r.json()) == [1, 3]
    published(s)
    module_sees(s, t1, lambda me: "f2-b" in
                [c["id"] for c in me.get("children", [])])
    # f2 is out of the catalogue: its token books nothing (the module
    # takes an unknown family for a catalogue behind: 503)
    assert catalogue_family(s, "f2") is None
    assert catalogue_family(s, "f1")["children"][1]["id"] == "f2-b"
    assert s.http("GET", "/api/me", token=t2).status == 503
    assert book(s, t1, "f2-b", "centre-6")["status"] == "confirmed"


def test_merging_erases_the_duplicate_s_co_responsables(s):
    """The duplicate's co-responsable, active or invited, kept a login on
    the archived file after a merge (the worker republished it: the login
    opened a session the module and guichet-office refuse everywhere,
    their names and e-mail stayed); archiving erases them, merging must
    too (they may be invited again by the family kept)."""
    from office_town import coresp_accept, coresp_invite

    admin = staff_login(s, "chef", "admin-pass-3")
    t4 = s.token("f4")

    link = coresp_invite(s, t4, "Paule", "Denis", "paule.denis@example.org")
    creds = coresp_accept(s, link, "paule.denis", "paule-secret-1")

    r = merge(s, admin, "f1", "f4")
    assert r.status == 200, r
    published(s)
    s.wait_worker_drained()
    published(s)
    assert s.http("POST", "/api/session", json=creds).status == 401
    assert s.redis.hget("{main}:logins", "paule.denis") is None
    assert s.sql("select count(*) from co_responsable"
                 " where family_id = 'f4'") == [(0,)]


def test_merging_a_file_asked_online_erases_its_request(s):
    """The duplicate is often a file the family asked online (office/
    request.c) while the town knew it: its request's row (the parents'
    names, e-mail, login and password hash chosen) stayed after the
    merge, listed to the agents under status=tous."""
    from test_office_request import asked_online, requests_listed

    admin = staff_login(s, "chef", "admin-pass-3")
    fid = asked_online(s, "alice.dup", "Alice", "Dupont", "Alice",
                       "2018-04-04")

    assert requests_listed(s, admin, fid)
    r = merge(s, admin, "f1", fid)
    assert r.status == 200, r
    assert requests_listed(s, admin, fid) == []
    assert s.sql("select count(*) from family_request where family_id = %s",
                 (fid,)) == [(0,)]


def test_merging_erases_the_duplicate_s_unsent_attachments(s):
    """A file the duplicate uploaded for a message it never sent stayed
    (its row, its file on disk: a PAI, a medical certificate) once the
    duplicate was merged and archived, where nobody can send nor see it;
    archiving erases them, merging must too.  A sent one follows its
    thread to the family kept."""
    import os

    from office_town import PDF

    admin = staff_login(s, "chef", "admin-pass-3")
    t5 = s.token("f5")
    r = s.http("POST", "/api/message-attachments?name=pai.pdf", token=t5,
               body=PDF, headers={"Content-Type": "application/pdf"})
    assert r.status == 201, r
    [(stored,)] = s.sql("select stored_name from message_attachment"
                        " where family_id = 'f5' and message_id is null")
    uploads = s._path("uploads")
    assert stored in os.listdir(uploads)

    r = merge(s, admin, "f1", "f5")
    assert r.status == 200, r
    assert s.sql("select count(*) from message_attachment"
                 " where family_id = 'f5' and message_id is null") == [(0,)]
    assert stored not in os.listdir(uploads)
