"""test_staff.py -- the two quotas of a session: half online, half at the
counter.  Town staff book the on-site share with their own token
(POST /api/staff/bookings, `guichetctl staff-token`), while the online
share is "complet"; neither channel can take the other's places.  Only an
active staff account books at the counter, its tokens end when it is
deactivated or its password changes, and the booking names its agent
(issue 18).
"""

import os
import subprocess
import sys
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from stack import ROOT  # noqa: E402


def staff_add(s, login, role="agent", password="counter-pass-1"):
    r = subprocess.run([s.ctl, "-c", s.worker_conf, "staff-add", login,
                        role, "Agent " + login],
                       input=(password + "\n").encode(), cwd=ROOT,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert r.returncode == 0, r.stderr.decode()


def staff_login(s, login, password="counter-pass-1"):
    return s.http("POST", "/api/staff/session",
                  json={"login": login, "password": password})


def town():
    fam = lambda i: {
        "id": "f%d" % i, "qf": 300,
        "children": [{"id": "f%d-c" % i, "first_name": "Enfant%d" % i,
                      "birth_date": "2018-04-04"}],
        "enrolments": [{"child_id": "f%d-c" % i, "activity_id": a,
                        "from": "2027-01-01", "to": "2027-12-31",
                        "status": "validee"}
                       for a in ("klub", "soon", "rel")]}
    act = lambda aid, opens: {
        "id": aid, "name": "Klub " + aid, "age_min": 3, "age_max": 12,
        "booking_opens_at": opens, "deadline": {"working_days": 2},
        "prices": [{"qf_max": None, "cents": 700}],
        "sessions": [{"id": aid + "-1", "date": "2027-07-07",
                      "unit": "MATIN", "places": 4}]}
    return {
        "town": {"name": "Guichet", "timezone": "Europe/Paris"},
        "units": [{"code": "MATIN", "label": "Matin", "starts": "08:30",
                   "ends": "12:00"}],
        "activities": [act("klub", "2026-01-01T18:00:00+01:00"),
                       act("soon", "2031-06-07T18:00:00+02:00"),
                       dict(act("rel", "2026-01-01T18:00:00+01:00"),
                            release_onsite_at="2026-06-01T09:00:00+02:00")],
        "families": [fam(i) for i in range(1, 7)],
    }


def post(s, path, token, body):
    return s.http("POST", path, token=token, json=body,
                  headers={"Idempotency-Key": uuid.uuid4().hex})


def onsite_left(s, sid):
    # the on-site u32 of the session's counters, at bit 32 of :left
    return s.redis.execute_command("BITFIELD", "{main}:s:%s:left" % sid, "GET",
                                   "u32", "32")[0]


def online_left(s, sid):
    return s.redis.execute_command("BITFIELD", "{main}:s:%s:left" % sid, "GET",
                                   "u32", "0")[0]


def one(r):
    assert r.status == 200, r
    i = r.json()["items"][0]
    return i["status"], i.get("reason"), i.get("channel")


def test_the_counter_books_the_on_site_share(make_stack):
    s = make_stack(town(), name="staff")
    tok = s.tokens()
    staff_add(s, "mairie-1")
    agent = s.ctl_run("staff-token", "mairie-1").strip()
    sid = "klub-1"
    item = lambda f: {"items": [{"child_id": f + "-c", "session_id": sid}]}

    assert (online_left(s, sid), onsite_left(s, sid)) == (2, 2)

    # online: two places, then "complet"
    for f in ("f1", "f2"):
        assert one(post(s, "/api/bookings", tok[f], item(f)))[0] == \
            "confirmed"
    assert one(post(s, "/api/bookings", tok["f3"], item("f3"))) == \
        ("refused", "full", None)

    # the counter still has its two places
    body = dict(item("f3"), family_id="f3")
    assert one(post(s, "/api/staff/bookings", agent, body)) == \
        ("confirmed", None, "onsite")
    body = dict(item("f4"), family_id="f4")
    r = post(s, "/api/staff/bookings", agent, body)
    assert one(r) == ("confirmed", None, "onsite")
    onsite_bid = r.json()["items"][0]["booking_id"]
    body = dict(item("f5"), family_id="f5")
    assert one(post(s, "/api/staff/bookings", agent, body)) == \
        ("refused", "full", None)
    assert (online_left(s, sid), onsite_left(s, sid)) == (0, 0)

    # and before the online opening too: the counter is not the rush
    body = {"family_id": "f6",
            "items": [{"child_id": "f6-c", "session_id": "soon-1"}]}
    assert one(post(s, "/api/staff/bookings", agent, body))[0] == \
        "confirmed"
    assert one(post(s, "/api/bookings", tok["f5"],
                    {"items": [{"child_id": "f5-c",
                                "session_id": "soon-1"}]}))[1] == \
        "not_open_yet"

    # wrong hands: a family on the counter's door, an agent on a family's
    assert post(s, "/api/staff/bookings", tok["f1"],
                dict(item("f1"), family_id="f1")).status == 403
    assert post(s, "/api/bookings", agent, item("f1")).status == 403
    r = post(s, "/api/staff/bookings", agent,
              dict(item("f1"), family_id="nobody"))
    assert r.status == 404 and r.json()["error"]["code"] == "not_found"

    # the family cancels its on-site booking: the place goes back on site
    r = s.http("DELETE", "/api/bookings/" + onsite_bid, token=tok["f4"])
    assert r.status == 200, r
    assert (online_left(s, sid), onsite_left(s, sid)) == (0, 1)

    s.wait_worker_drained()
    rows = s.sql("select channel, status, count(*) from booking"
                 " where session_id = %s group by 1, 2 order by 1, 2",
                 (sid,))
    assert rows == [("online", "confirmed", 2), ("onsite", "cancelled", 1),
                    ("onsite", "confirmed", 1)], rows
    rows = s.sql("select channel, booked_by, count(*) from booking"
                 " group by 1, 2 order by 1, 2")
    assert rows == [("online", None, 2), ("onsite", "mairie-1", 3)], rows
    r = subprocess.run([s.ctl, "-c", s.worker_conf, "check"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert r.returncode == 0, r.stdout.decode()


def test_unused_on_site_places_are_released_online(make_stack):
    """An activity whose release_onsite_at has passed: the worker moves the
    unused on-site places to the online quota, once."""
    import time

    s = make_stack(town(), name="release")
    sid = "rel-1"
    deadline = time.time() + 10
    while time.time() < deadline and onsite_left(s, sid) != 0:
        time.sleep(0.2)
    assert (online_left(s, sid), onsite_left(s, sid)) == (4, 0)
    assert s.redis.get("{main}:s:%s:released" % sid) == "2"

    # the other activities keep their counter's share
    assert (online_left(s, "klub-1"), onsite_left(s, "klub-1")) == (2, 2)
    acts = {a["id"]: a for a in s.http("GET", "/api/activities").json()}
    assert acts["rel"]["release_onsite_at"] == "2026-06-01T09:00:00+02:00"

    # four families book online now
    tok = s.tokens()
    for i in range(1, 5):
        r = post(s, "/api/bookings", tok["f%d" % i],
                 {"items": [{"child_id": "f%d-c" % i, "session_id": sid}]})
        assert one(r)[0] == "confirmed", r
    s.wait_worker_drained()
    assert subprocess.run([s.ctl, "-c", s.worker_conf, "check"],
                          stdout=subprocess.DEVNULL).returncode == 0


def test_only_an_active_agent_books_and_old_tokens_end(make_stack):
    """Finding 3: the counter checks the account ({main}:staff) and the token
    ({main}:revoked): a password change (guichetctl staff-add) and a
    deactivation (back office) end the agent's tokens at once."""
    s = make_stack(town(), name="staff-sec")
    staff_add(s, "agent1", password="first-pass-1")
    staff_add(s, "chef", role="admin", password="admin-pass-1")
    item = lambda f, sid="klub-1": {
        "family_id": f, "items": [{"child_id": f + "-c", "session_id": sid}]}
    counter = lambda t, f: post(s, "/api/staff/bookings", t, item(f))

    def refused(r):
        return r.status == 401 and \
            r.json()["error"]["code"] == "unauthenticated"

    r = staff_login(s, "agent1", "first-pass-1")
    assert r.status == 200, r
    t1 = r.json()["token"]
    t2 = s.ctl_run("staff-token", "agent1").strip()
    assert one(counter(t1, "f1"))[0] == "confirmed"

    # a login nobody made an account for books nothing
    ghost = s.ctl_run("staff-token", "ghost").strip()
    assert refused(counter(ghost, "f2"))

    # the password changes: every token made before ends, at the counter
    # and in the back office
    staff_add(s, "agent1", password="second-pass-2")
    for t in (t1, t2):
        assert refused(counter(t, "f2"))
        assert s.http("GET", "/api/staff/me", token=t).status == 401
    assert staff_login(s, "agent1", "first-pass-1").status == 401
    r = staff_login(s, "agent1", "second-pass-2")
    assert r.status == 200, r
    t3 = r.json()["token"]
    assert one(counter(t3, "f2"))[0] == "confirmed"

    # an admin deactivates the account: refused at once, everywhere
    admin = staff_login(s, "chef", "admin-pass-1").json()["token"]
    r = s.http("POST", "/api/staff/accounts/agent1/deactivate",
               token=admin)
    assert r.status == 200 and r.json()["active"] is False, r
    assert refused(counter(t3, "f3"))
    assert s.http("GET", "/api/staff/me", token=t3).status == 401
    assert staff_login(s, "agent1", "second-pass-2").status == 401
    assert s.http("POST", "/api/staff/accounts/agent1/deactivate",
                  token=t3).status == 401
    r = s.http("POST", "/api/staff/accounts/nobody/deactivate", token=admin)
    assert r.status == 404, r

    # what was booked says who booked it
    s.wait_worker_drained()
    rows = s.sql("select family_id, channel, booked_by from booking"
                 " order by family_id")
    assert rows == [("f1", "onsite", "agent1"), ("f2", "onsite", "agent1")]
    assert s.sql("select count(*) from audit_log"
                 " where action = 'staff.deactivate'"
                 " and target = 'staff:agent1' and actor = 'chef'") == \
        [(1,)]

    # staff-add makes the account active again, with a fresh token only
    staff_add(s, "agent1", password="third-pass-3")
    assert refused(counter(t3, "f3"))
    t4 = staff_login(s, "agent1", "third-pass-3").json()["token"]
    r = post(s, "/api/staff/bookings", t4, item("f3", "soon-1"))
    assert one(r)[0] == "confirmed"
