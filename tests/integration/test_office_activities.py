"""test_office_activities.py -- the back office's activities and sessions
(office/activity.c, issue 26): a régie creates an activity and generates
its sessions from a calendar without the town file, a family books it; a
change of places moves both live counters (online and at the counter) in
both directions, never below what is booked (refused with the counts);
the publisher then shifts nothing again; agents read but cannot change;
every change is in the audit log.
"""

import json
import subprocess
import time
import uuid

import pytest

from office_town import (agent, audit, book, error_code, module_sees,
                         published, regie, staffed_stack, town)


@pytest.fixture(scope="module")
def s(make_stack):
    return staffed_stack(make_stack, town(), "office-activities")


@pytest.fixture(scope="module")
def tok(s):
    return s.tokens()


def counters(s, sid):
    """(online left, on-site left) of Redis's live counters."""
    return tuple(s.redis.execute_command("BITFIELD", "{main}:s:%s:left" % sid,
                                         "GET", "u32", off)[0]
                 for off in ("0", "32"))


def session_row(s, sid):
    return s.sql("select places, places_online, places_published,"
                 " onsite_published from session where id = %s", (sid,))[0]


def places(s, regie, sid, n):
    return s.http("PUT", "/api/staff/sessions/" + sid, token=regie,
                  json={"places": n})


def counter_book(s, agent, family, child, sid):
    r = s.http("POST", "/api/staff/bookings", token=agent,
               headers={"Idempotency-Key": uuid.uuid4().hex},
               json={"family_id": family,
                     "items": [{"child_id": child, "session_id": sid}]})
    assert r.status == 200, r
    return r.json()["items"][0]["status"]


def check(s):
    s.wait_worker_drained()
    r = subprocess.run([s.ctl, "-c", s.worker_conf, "check"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert r.returncode == 0, r.stdout.decode()


MERCREDI = {
    "id": "mercredi", "name": "Club du mercredi", "site": "École Jaurès",
    "age_min": 3, "age_max": 11,
    "booking_opens_at": "2026-06-01T18:00:00+02:00",
    "deadline": {"working_days": 2},
    "online_share_percent": 50,
    "prices": [{"qf_max": 500, "cents": 300}, {"qf_max": None, "cents": 900}],
    "non_resident_prices": [{"qf_max": None, "cents": 1500}],
}


def test_agents_read_but_only_the_regie_changes(s, agent, regie):
    r = s.http("GET", "/api/staff/activities", token=agent)
    assert r.status == 200, r
    b = r.json()
    assert [a["id"] for a in b["activities"]] == ["centre", "piscine"]
    assert b["activities"][0]["sessions"] == 5
    assert b["units"][0]["code"] == "MATIN"
    r = s.http("GET", "/api/staff/activities/centre", token=agent)
    assert r.status == 200 and len(r.json()["sessions"]) == 5, r
    assert r.json()["activity"]["name"] == "Centre"

    before = s.sql("select version, json from catalogue")[0]
    assert error_code(s.http("POST", "/api/staff/activities", token=agent,
                             json=MERCREDI), 403) == "forbidden"
    assert error_code(s.http("PUT", "/api/staff/activities/centre",
                             token=agent, json=dict(MERCREDI, id="centre")),
                      403) == "forbidden"
    assert error_code(places(s, agent, "centre-20270705", 20), 403) == \
        "forbidden"
    assert error_code(s.http("POST", "/api/staff/activities/centre/sessions",
                             token=agent, json={}), 403) == "forbidden"
    assert error_code(s.http("GET", "/api/staff/activities"), 401) == \
        "unauthenticated"
    assert s.sql("select version, json from catalogue")[0] == before
    assert audit(s, "activity.create") == []


def test_bad_activities_are_refused_by_their_path(s, regie):
    before = s.sql("select version, json from catalogue")[0]
    post = lambda body: s.http("POST", "/api/staff/activities", token=regie,
                               json=body)
    r = post(dict(MERCREDI, couleur="bleu"))
    assert error_code(r, 400) == "invalid_field"
    assert r.json()["error"]["message"].startswith("$.couleur"), r
    r = post(dict(MERCREDI, prices=[{"qf_max": None, "cents": -1}]))
    assert error_code(r, 400) == "invalid_field"
    assert r.json()["error"]["message"].startswith("$.prices[0].cents"), r
    r = post(dict(MERCREDI, booking_opens_at="demain"))
    assert r.json()["error"]["message"].startswith("$.booking_opens_at"), r
    # an id already taken
    assert error_code(post(dict(MERCREDI, id="centre")), 409) == \
        "already_exists"
    # duplicated members are refused, not merged
    r = s.http("POST", "/api/staff/activities", token=regie,
               body='{"id": "x", "id": "y", "name": "X",'
                    ' "prices": [{"qf_max": null, "cents": 1}]}',
               headers={"Content-Type": "application/json"})
    assert error_code(r, 400) == "invalid_field", r
    assert error_code(s.http("POST", "/api/staff/activities", token=regie,
                             body="[1]",
                             headers={"Content-Type": "application/json"}),
                      400) == "invalid_field"
    assert error_code(s.http("POST", "/api/staff/activities", token=regie,
                             body="{} ]",
                             headers={"Content-Type": "application/json"}),
                      400) == "bad_json"
    # settings only: sessions change one at a time
    r = s.http("PUT", "/api/staff/activities/centre", token=regie,
               json=dict(MERCREDI, id="centre", sessions=[]))
    assert error_code(r, 400) == "invalid_field"
    r = s.http("PUT", "/api/staff/activities/centre", token=regie,
               json=dict(MERCREDI, id="autre"))
    assert error_code(r, 400) == "invalid_field"
    assert error_code(s.http("PUT", "/api/staff/activities/golf",
                             token=regie, json=dict(MERCREDI, id="golf")),
                      404) == "not_found"
    assert error_code(places(s, regie, "nulle-part", 3), 404) == \
        "not_found"
    assert error_code(places(s, regie, "centre-20270705", -1), 400) == \
        "invalid_field"
    assert s.sql("select version, json from catalogue")[0] == before


def test_create_generate_and_book_without_the_town_file(s, tok, agent,
                                                        regie):
    r = s.http("POST", "/api/staff/activities", token=regie, json=MERCREDI)
    assert r.status == 201, r
    assert r.json()["activity"]["name"] == "Club du mercredi"
    assert r.json()["sessions"] == [] and r.json()["created"] == 0
    assert s.sql("select name, site, online_share_percent from activity"
                 " where id = 'mercredi'") == \
        [("Club du mercredi", "École Jaurès", 50)]
    assert s.sql("select qf_max, cents from activity_price where"
                 " activity_id = 'mercredi' order by position") == \
        [(500, 300), (None, 900)]

    # Wednesdays of September and October 2027, without the autumn
    # holidays (from 16 October) and a closed day (15 September)
    cal = {"from": "2027-09-01", "to": "2027-10-31", "weekdays": [3],
           "units": ["MATIN"], "places": 4,
           "closed": [{"from": "2027-10-16", "to": "2027-11-01"},
                      {"from": "2027-09-15", "to": "2027-09-15"}]}
    r = s.http("POST", "/api/staff/activities/mercredi/sessions",
               token=regie, json=cal)
    assert r.status == 200, r
    b = r.json()
    assert b["created"] == 6
    assert [x["date"] for x in b["sessions"]] == \
        ["2027-09-01", "2027-09-08", "2027-09-22", "2027-09-29",
         "2027-10-06", "2027-10-13"]
    assert {(x["places"], x["places_online"]) for x in b["sessions"]} == \
        {(4, 2)}
    # again: the existing sessions are kept, none added
    r = s.http("POST", "/api/staff/activities/mercredi/sessions",
               token=regie, json=dict(cal, places=9))
    assert r.status == 200 and r.json()["created"] == 0, r
    assert {x["places"] for x in r.json()["sessions"]} == {4}
    # a unit the town does not have: its path
    r = s.http("POST", "/api/staff/activities/mercredi/sessions",
               token=regie, json=dict(cal, units=["SOIR"]))
    assert error_code(r, 400) == "invalid_field"
    assert "unité inconnue" in r.json()["error"]["message"], r

    # the worker publishes it: the counters exist, the module knows it
    published(s)
    sid = "mercredi-20270901-MATIN"
    assert counters(s, sid) == (2, 2)
    cat = json.loads(s.redis.get("{main}:catalogue"))
    assert "mercredi" in [a["id"] for a in cat["activities"]]

    # Bastien is enrolled by the usual request and decision
    r = s.http("POST", "/api/enrolments", token=tok["f1"],
               json={"child_id": "f1-b", "activity_id": "mercredi",
                     "from": "2027-09-01", "to": "2028-07-07"})
    assert r.status == 201, r
    r = s.http("POST", "/api/staff/enrolments/%d/decision" % r.json()["id"],
               token=agent, json={"decision": "validee"})
    assert r.status == 200, r
    module_sees(s, tok["f1"], lambda me: any(
        e["activity_id"] == "mercredi" and e["status"] == "validee"
        for e in me.get("enrolments", [])))
    # module_sees() waited until every nginx worker holds that catalogue:
    # the booking is confirmed at once, whichever worker takes it
    assert book(s, tok["f1"], "f1-b", sid) == ("confirmed", None)
    assert counters(s, sid) == (1, 2)

    assert [a[1] for a in audit(s, "activity.create")] == \
        ["activity:mercredi"]
    assert [a[1] for a in audit(s, "activity.sessions")] == \
        ["activity:mercredi"] * 2
    assert audit(s, "activity.create")[0][0] == "regie.r"
    check(s)


def test_places_move_both_counters_both_ways(s, tok, agent, regie):
    sid = "centre-20270706"
    assert counters(s, sid) == (5, 5)
    assert book(s, tok["f1"], "f1-a", sid) == ("confirmed", None)
    assert counter_book(s, agent, "f2", "f2-a", sid) == "confirmed"
    assert counters(s, sid) == (4, 4)

    # 16 places: 8 online, 8 at the counter; each counter moves by +3
    r = places(s, regie, sid, 16)
    assert r.status == 200, r
    row = [x for x in r.json()["sessions"] if x["id"] == sid][0]
    assert (row["places"], row["places_online"], row["online_left"],
            row["onsite_left"]) == (16, 8, 7, 7)
    assert counters(s, sid) == (7, 7)
    assert session_row(s, sid) == (16, 8, 8, 8)

    # 4 places: 2 and 2; each counter moves by -6
    assert places(s, regie, sid, 4).status == 200
    assert counters(s, sid) == (1, 1)

    # 1 place cannot hold the two booked: refused with the counts,
    # nothing changed
    before = s.sql("select version, json from catalogue")[0]
    r = places(s, regie, sid, 1)
    assert error_code(r, 409) == "places_below_booked"
    e = r.json()["error"]
    assert e["sessions"] == [{"id": sid, "date": "2027-07-06",
                              "unit": "Matin", "booked_online": 1,
                              "booked_onsite": 1, "min_places": 2}]
    assert "au moins 2 places" in e["message"], e
    assert counters(s, sid) == (1, 1)
    assert session_row(s, sid) == (4, 2, 2, 2)
    assert s.sql("select version, json from catalogue")[0] == before

    # 2 places: exactly what is booked, both full
    assert places(s, regie, sid, 2).status == 200
    assert counters(s, sid) == (0, 0)
    assert book(s, tok["f2"], "f2-a", "centre-20270706") == \
        ("refused", "already_booked")

    # the publisher republishes the catalogue and shifts nothing again
    published(s)
    assert counters(s, sid) == (0, 0)
    cat = json.loads(s.redis.get("{main}:catalogue"))
    got = [x for a in cat["activities"] for x in a.get("sessions", [])
           if x["id"] == sid]
    assert got[0]["places"] == 2
    assert [a[1] for a in audit(s, "session.update")] == \
        ["session:" + sid] * 3
    check(s)


def test_a_new_share_moves_every_session(s, tok, regie):
    # piscine: 10 places, 5 and 5; all online now
    sid = "piscine-20270707"
    assert counters(s, sid) == (5, 5)
    body = {"id": "piscine", "name": "Piscine", "age_min": 3, "age_max": 12,
            "booking_opens_at": "2026-01-01T18:00:00+01:00",
            "deadline": {"working_days": 2}, "online_share_percent": 100,
            "required_documents": ["vaccinations"],
            "prices": [{"qf_max": None, "cents": 800}]}
    r = s.http("PUT", "/api/staff/activities/piscine", token=regie,
               json=body)
    assert r.status == 200, r
    assert r.json()["activity"]["online_share_percent"] == 100
    assert {(x["places_online"], x["online_left"], x["onsite_left"])
            for x in r.json()["sessions"]} == {(10, 10, 0)}
    assert s.sql("select online_share_percent from activity"
                 " where id = 'piscine'") == [(100,)]
    assert s.sql("select cents from activity_price"
                 " where activity_id = 'piscine'") == [(800,)]
    assert len(audit(s, "activity.update")) == 1
    published(s)
    assert counters(s, sid) == (10, 0)
    check(s)


def test_after_the_release_the_counter_places_go_online(s, regie):
    # on-site places released online (release_onsite_at passed): a change
    # of places moves {s}:left's online u32 by both differences, its
    # on-site one stays 0
    body = dict(MERCREDI, id="ete", name="Été",
                release_onsite_at="2026-06-01T09:00:00+02:00",
                sessions=[{"id": "ete-1", "date": "2027-07-12",
                           "unit": "MATIN", "places": 10}])
    r = s.http("POST", "/api/staff/activities", token=regie, json=body)
    assert r.status == 201, r
    published(s)
    deadline = time.monotonic() + 20
    while counters(s, "ete-1") != (10, 0) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert counters(s, "ete-1") == (10, 0)
    assert s.redis.get("{main}:s:ete-1:released") == "5"

    assert places(s, regie, "ete-1", 16).status == 200
    assert counters(s, "ete-1") == (16, 0)
    assert places(s, regie, "ete-1", 4).status == 200
    assert counters(s, "ete-1") == (4, 0)
    published(s)
    assert counters(s, "ete-1") == (4, 0)
    check(s)


def test_the_waiting_lists_offer_mode_is_an_activity_setting(s, regie):
    """An activity's "waitlist" (issue 23): {"mode": "offer",
    "hold_hours": N} set in the back office, checked by its path, kept in
    the catalogue and published for the worker's promoter."""
    post = lambda body: s.http("POST", "/api/staff/activities", token=regie,
                               json=body)
    for bad, path in (({"mode": "offre"}, "$.waitlist.mode"),
                      ({"mode": "offer", "hold_hours": 0},
                       "$.waitlist.hold_hours"),
                      ({"mode": "offer", "hold_hours": 721},
                       "$.waitlist.hold_hours"),
                      ({"mode": "book", "hold_hours": 3},
                       "$.waitlist.hold_hours"),
                      ({"hold_hours": 3}, "$.waitlist.mode")):
        r = post(dict(MERCREDI, id="poney", waitlist=bad))
        assert error_code(r, 400) == "invalid_field", (bad, r)
        assert r.json()["error"]["message"].startswith(path), (bad, r)

    r = post(dict(MERCREDI, id="poney",
                  waitlist={"mode": "offer", "hold_hours": 48}))
    assert r.status in (200, 201), r
    stored = json.loads(s.sql("select json from catalogue")[0][0])
    act = [a for a in stored["activities"] if a["id"] == "poney"][0]
    assert act["waitlist"] == {"mode": "offer", "hold_hours": 48}
    published(s)
    live = json.loads(s.redis.get("{main}:catalogue"))
    assert [a for a in live["activities"] if a["id"] == "poney"][0][
        "waitlist"] == {"mode": "offer", "hold_hours": 48}

    # back to booking at once: the setting goes
    r = s.http("PUT", "/api/staff/activities/poney", token=regie,
               json=dict(MERCREDI, id="poney"))
    assert r.status == 200, r
    stored = json.loads(s.sql("select json from catalogue")[0][0])
    assert "waitlist" not in [a for a in stored["activities"]
                              if a["id"] == "poney"][0]
