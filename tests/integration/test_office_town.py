"""test_office_town.py -- the town's own settings in the back office
(office/town.c, issue 26): on a stack started without any town file, an
admin names the town and gives its units, then creates an activity and
its sessions from the back office and a family books: no guichetctl
load-town at all.  A unit a session uses cannot go; an agent reads the
settings but cannot change them; bad bodies write nothing.
"""

import pytest

from office_town import (audit, book, error_code, module_sees, published,
                         staff_token, staffed_stack)


UNITS = [{"code": "MATIN", "label": "Matin", "starts": "08:30",
          "ends": "12:00"},
         {"code": "REPAS", "label": "Repas", "starts": "12:00",
          "ends": "13:30"}]


@pytest.fixture(scope="module")
def s(make_stack):
    return staffed_stack(make_stack, None, "office-town",
                         roles=("agent", "admin"))


def test_a_town_made_in_the_back_office(s):
    agent = staff_token(s, "agent")
    admin = staff_token(s, "admin")
    r = s.http("GET", "/api/staff/town", token=agent)
    assert r.status == 200, r
    assert r.json() == {"loaded": False, "name": None, "timezone": None,
                        "units": []}
    # nothing can be created before the town exists
    assert error_code(s.http("POST", "/api/staff/activities", token=admin,
                             json={"id": "x"}), 409) == "no_town"

    body = {"name": "Villebois", "units": UNITS}
    assert error_code(s.http("PUT", "/api/staff/town", token=agent,
                             json=body), 403) == "forbidden"
    bad = dict(body, units=[dict(UNITS[0], starts="25:00")])
    assert error_code(s.http("PUT", "/api/staff/town", token=admin,
                             json=bad), 400) == "invalid_field"
    assert error_code(s.http("PUT", "/api/staff/town", token=admin,
                             json=dict(body, units=[{"code": "X"}])),
                      400) == "invalid_field"
    assert s.sql("select count(*) from catalogue") == [(0,)]

    r = s.http("PUT", "/api/staff/town", token=admin, json=body)
    assert r.status == 200, r
    assert r.json() == {"loaded": True, "name": "Villebois",
                        "timezone": "Europe/Paris", "units": UNITS}
    assert [a[:2] for a in audit(s, "town.update")] == [("chef", "town")]
    published(s)
    # published: the booking path knows the town
    assert s.redis.get("{main}:catalogue") is not None
    assert '"Villebois"' in s.redis.get("{main}:catalogue")

    # the activity and its sessions, from the back office
    r = s.http("POST", "/api/staff/activities", token=admin, json={
        "id": "mercredi", "name": "Club du mercredi", "age_min": 3,
        "age_max": 12, "booking_opens_at": "2026-01-01T18:00:00+01:00",
        "prices": [{"qf_max": None, "cents": 800}]})
    assert r.status == 201, r
    r = s.http("POST", "/api/staff/activities/mercredi/sessions",
               token=admin, json={"from": "2027-09-01", "to": "2027-09-08",
                                  "weekdays": [3], "units": ["MATIN"],
                                  "places": 12})
    assert r.status == 200 and r.json()["created"] == 2, r

    # a family made at the counter books it
    r = s.http("POST", "/api/staff/families", token=agent, json={
        "login": "martin", "email": "martin@example.org", "qf": 450,
        "resident": True, "children": [{"first_name": "Léo",
                                        "birth_date": "2019-03-03"}]})
    assert r.status == 201, r
    fid = r.json()["id"]
    r = s.http("POST", "/api/staff/families/%s/enrolments" % fid,
               token=agent, json={"child_id": fid + "-1",
                                  "activity_id": "mercredi",
                                  "from": "2027-01-01", "to": "2027-12-31"})
    assert r.status == 200, r
    sid = s.sql("select id from session where date = '2027-09-08'")[0][0]
    tok = s.ctl_run("token", fid).strip()
    module_sees(s, tok, lambda me: any(
        e["activity_id"] == "mercredi" and e["status"] == "validee"
        for e in me.get("enrolments", [])))
    assert book(s, tok, fid + "-1", sid) == ("confirmed", None)

    # renamed, a unit added; MATIN, used by a session, cannot go
    r = s.http("PUT", "/api/staff/town", token=admin,
               json={"name": "Villebois-sur-Loire", "units": [UNITS[1]]})
    assert error_code(r, 400) == "invalid_field"
    units = UNITS + [{"code": "SOIR", "label": "Soir", "starts": "16:30",
                      "ends": "18:30"}]
    r = s.http("PUT", "/api/staff/town", token=admin,
               json={"name": "Villebois-sur-Loire", "units": units})
    assert r.status == 200, r
    assert [u["code"] for u in r.json()["units"]] == \
        ["MATIN", "REPAS", "SOIR"]
    assert s.sql("select name from town") == [("Villebois-sur-Loire",)]
    # REPAS, used by nothing, goes
    r = s.http("PUT", "/api/staff/town", token=admin,
               json={"name": "Villebois-sur-Loire",
                     "units": [UNITS[0], units[2]]})
    assert r.status == 200, r
    assert s.sql("select code from unit order by code") == \
        [("MATIN",), ("SOIR",)]
