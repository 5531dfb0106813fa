"""test_publish.py -- the publisher (worker/publish.c) when a reloaded town
changes a session's places: the live counter moves by the difference,
once, whoever publishes (guichetctl load-town and the worker's periodic
check both do; an advisory lock lets one at a time), and
session.places_published records what the counters are built on.  The
on-site counter moves the same way (session.onsite_published, issue 26).  Then a
load of more than 10,000 new sessions (the set-based update).
"""

import datetime as dt
import json
import subprocess
import time
import uuid


def town(places, extra=0):
    sessions = [{"id": "p-%d" % i, "date": "2027-07-%02d" % (5 + i),
                 "unit": "MATIN", "places": places} for i in range(3)]
    acts = [{"id": "pub", "name": "Publication", "age_min": 3, "age_max": 12,
             "booking_opens_at": "2026-01-01T18:00:00+01:00",
             "deadline": {"working_days": 2},
             "prices": [{"qf_max": None, "cents": 500}],
             "sessions": sessions}]
    for a in range((extra + 299) // 300):
        n = min(300, extra - a * 300)
        acts.append({"id": "bulk%d" % a, "name": "Bulk %d" % a, "age_min": 3,
                     "age_max": 12,
                     "booking_opens_at": "2026-01-01T18:00:00+01:00",
                     "deadline": {"working_days": 2},
                     "prices": [{"qf_max": None, "cents": 500}],
                     "sessions": [{"id": "bulk-%d" % (a * 300 + i),
                                   "date": (dt.date(2027, 1, 1)
                                            + dt.timedelta(days=i))
                                   .isoformat(),
                                   "unit": "MATIN", "places": 2}
                                  for i in range(n)]})
    return {
        "town": {"name": "Guichet", "timezone": "Europe/Paris"},
        "units": [{"code": "MATIN", "label": "Matin", "starts": "08:30",
                   "ends": "12:00"}],
        "activities": acts,
        "families": [{"id": "f%d" % i, "qf": 300,
                      "children": [{"id": "f%d-c" % i,
                                    "first_name": "Enfant%d" % i,
                                    "birth_date": "2018-04-04"}],
                      "enrolments": [{"child_id": "f%d-c" % i,
                                      "activity_id": "pub",
                                      "from": "2027-01-01",
                                      "to": "2027-12-31",
                                      "status": "validee"}]}
                     for i in range(1, 4)],
    }


def left(s, sid):
    return s.redis.execute_command("BITFIELD", "{main}:s:%s:left" % sid, "GET",
                                   "u32", "0")[0]


def onsite(s, sid):
    # the on-site u32 of the session's counters, at bit 32 of :left
    return s.redis.execute_command("BITFIELD", "{main}:s:%s:left" % sid, "GET",
                                   "u32", "32")[0]


def load(s, t, tmp_path, name):
    path = tmp_path / (name + ".json")
    path.write_text(json.dumps(t))
    # the worker's periodic check and guichetctl publish the new version
    # at about the same time: one waits for the other, neither shifts twice
    s.ctl_run("load-town", str(path))


def published(s):
    return dict(s.sql("select id, places_published from session"
                      " where id like 'p-%%'"))


def check(s):
    s.wait_worker_drained()
    r = subprocess.run([s.ctl, "-c", s.worker_conf, "check"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert r.returncode == 0, r.stdout.decode()


def test_changed_places_shift_the_live_counter_once(make_stack, tmp_path):
    s = make_stack(town(8), name="publish")
    tok = s.tokens()
    # 8 places, half online: 4
    assert [left(s, "p-%d" % i) for i in range(3)] == [4, 4, 4]
    assert published(s) == {"p-0": 4, "p-1": 4, "p-2": 4}

    r = s.http("POST", "/api/bookings", token=tok["f1"],
               headers={"Idempotency-Key": uuid.uuid4().hex},
               json={"items": [{"child_id": "f1-c", "session_id": "p-0"}]})
    assert r.status == 200 and r.json()["items"][0]["status"] == "confirmed"
    assert left(s, "p-0") == 3

    # 12 places, 6 online: every live counter moves by +2
    load(s, town(12), tmp_path, "more")
    assert [left(s, "p-%d" % i) for i in range(3)] == [5, 6, 6]
    assert published(s) == {"p-0": 6, "p-1": 6, "p-2": 6}

    # the same file again: nothing moves
    load(s, town(12), tmp_path, "same")
    assert [left(s, "p-%d" % i) for i in range(3)] == [5, 6, 6]

    # fewer places: the counters go down by 3 (never below 0)
    load(s, town(6), tmp_path, "fewer")
    assert [left(s, "p-%d" % i) for i in range(3)] == [2, 3, 3]
    assert published(s) == {"p-0": 3, "p-1": 3, "p-2": 3}
    check(s)


def test_changed_places_shift_the_on_site_counter_too(make_stack, tmp_path):
    s = make_stack(town(8), name="publish-onsite")
    subprocess.run([s.ctl, "-c", s.worker_conf, "staff-add", "guichet-1",
                    "agent", "Agent"], input=b"counter-pass-1\n",
                   check=True, stdout=subprocess.PIPE)
    agent = s.ctl_run("staff-token", "guichet-1").strip()
    # 8 places: 4 online, 4 at the counter
    assert [onsite(s, "p-%d" % i) for i in range(3)] == [4, 4, 4]
    assert s.sql("select count(*) from session where id like 'p-%%'"
                 " and onsite_published = 4")[0][0] == 3

    r = s.http("POST", "/api/staff/bookings", token=agent,
               headers={"Idempotency-Key": uuid.uuid4().hex},
               json={"family_id": "f1",
                     "items": [{"child_id": "f1-c", "session_id": "p-0"}]})
    assert r.status == 200 and r.json()["items"][0]["status"] == \
        "confirmed", r
    assert onsite(s, "p-0") == 3

    # 12 places, 6 at the counter: the live counters move by +2, the
    # booking at the counter still counted
    load(s, town(12), tmp_path, "more")
    assert [onsite(s, "p-%d" % i) for i in range(3)] == [5, 6, 6]
    assert [left(s, "p-%d" % i) for i in range(3)] == [6, 6, 6]
    load(s, town(12), tmp_path, "same")
    assert [onsite(s, "p-%d" % i) for i in range(3)] == [5, 6, 6]

    # 4 places, 2 at the counter: down by 4, never below 0
    load(s, town(4), tmp_path, "fewer")
    assert [onsite(s, "p-%d" % i) for i in range(3)] == [1, 2, 2]
    assert s.sql("select count(*) from session where id like 'p-%%'"
                 " and onsite_published = 2")[0][0] == 3
    check(s)


def test_a_large_load_records_every_new_session(make_stack, tmp_path):
    s = make_stack(town(8), name="publish-bulk")
    load(s, town(8, extra=12000), tmp_path, "bulk")
    n = s.sql("select count(*), count(places_published),"
              " count(*) filter (where places_published = places_online)"
              " from session where id like 'bulk-%%'")[0]
    assert n == (12000, 12000, 12000), n
    assert left(s, "bulk-11999") == 1
    check(s)


def test_after_the_release_a_change_of_places_goes_online(make_stack,
                                                          tmp_path):
    # the on-site places were released online (release_onsite_at passed):
    # their change moves {s}:left's online u32 and {s}:released, not its
    # on-site one
    def released_town(places):
        t = town(places)
        t["activities"][0]["release_onsite_at"] = "2026-06-01T09:00:00+02:00"
        return t

    s = make_stack(released_town(8), name="publish-released")
    deadline = time.monotonic() + 20
    while (left(s, "p-1"), onsite(s, "p-1")) != (8, 0) \
            and time.monotonic() < deadline:
        time.sleep(0.1)
    assert (left(s, "p-1"), onsite(s, "p-1")) == (8, 0)
    assert s.redis.get("{main}:s:p-1:released") == "4"

    load(s, released_town(12), tmp_path, "more")
    assert (left(s, "p-1"), onsite(s, "p-1")) == (12, 0)
    assert s.redis.get("{main}:s:p-1:released") == "6"
    check(s)
