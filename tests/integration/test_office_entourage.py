"""test_office_entourage.py -- the family's entourage (issue 25,
office/entourage.c): the family adds and edits the people allowed to
pick a child up and its emergency contacts; only the town removes one
(audited, the family e-mailed, the row kept).
"""

import pytest

from office_town import (audit, error_code, outbox, staff_add, staff_login,
                         town)


@pytest.fixture(scope="module")
def s(make_stack):
    st = make_stack(town(), name="office-entourage")
    staff_add(st, "agent.e", "agent", "Emma Agent", "agent-pass-e")
    return st


@pytest.fixture(scope="module")
def tok(s):
    return s.tokens()


@pytest.fixture(scope="module")
def agent(s):
    return staff_login(s, "agent.e", "agent-pass-e")


GRAN = {"first_name": "Josette", "last_name": "Dupont",
        "relation": "Grand-mère", "phone": "04 74 12 34 56",
        "can_pick_up": True, "emergency": True}


def people(s, token):
    r = s.http("GET", "/api/entourage", token=token)
    assert r.status == 200, r
    return r.json()["entourage"]


def test_the_family_adds_and_edits(s, tok):
    assert people(s, tok["f1"]) == []
    for bad in (dict(GRAN, phone="abc"), dict(GRAN, first_name=" "),
                dict(GRAN, can_pick_up=False, emergency=False),
                {k: v for k, v in GRAN.items() if k != "relation"}):
        assert error_code(s.http("POST", "/api/entourage", token=tok["f1"],
                                 json=bad), 400) == "invalid_field", bad
    r = s.http("POST", "/api/entourage", token=tok["f1"], json=GRAN)
    assert r.status == 201, r
    pid = r.json()["id"]
    assert (r.json()["first_name"], r.json()["can_pick_up"]) == \
        ("Josette", True)
    actor, target, detail = audit(s, "entourage.add")[-1]
    assert (actor, target, detail["relation"]) == \
        ("family:f1", "entourage:%d" % pid, "Grand-mère")

    r = s.http("PUT", "/api/entourage/%d" % pid, token=tok["f1"],
               json=dict(GRAN, phone="06 11 22 33 44", can_pick_up=False))
    assert r.status == 200, r
    [p] = people(s, tok["f1"])
    assert (p["phone"], p["can_pick_up"], p["emergency"]) == \
        ("06 11 22 33 44", False, True)
    assert audit(s, "entourage.edit")[-1][1] == "entourage:%d" % pid

    # another family sees nothing and edits nothing
    assert people(s, tok["f2"]) == []
    assert error_code(s.http("PUT", "/api/entourage/%d" % pid,
                             token=tok["f2"], json=GRAN), 404) == \
        "not_found"
    # the family does not remove: only the town does
    assert error_code(s.http("DELETE", "/api/entourage/%d" % pid,
                             token=tok["f1"]), 405) == "method_not_allowed"
    assert len(people(s, tok["f1"])) == 1


def test_only_the_town_removes(s, tok, agent):
    [p] = people(s, tok["f1"])
    url = "/api/staff/entourage/%d" % p["id"]
    assert error_code(s.http("DELETE", url, token=tok["f1"],
                             json={"reason": "x"}), 403) == "forbidden"
    assert error_code(s.http("DELETE", url, token=agent, json={}), 400) == \
        "invalid_field"
    r = s.http("DELETE", url, token=agent,
               json={"reason": "Décès, à la demande de la famille"})
    assert r.status == 200, r
    assert (r.json()["removed_by"], r.json()["removal_reason"]) == \
        ("agent.e", "Décès, à la demande de la famille")
    assert people(s, tok["f1"]) == []
    # the town keeps it
    staff = s.http("GET", "/api/staff/entourage?family_id=f1",
                   token=agent).json()["entourage"]
    assert [x["removed_at"] is not None for x in staff] == [True]
    actor, target, detail = audit(s, "entourage.remove")[-1]
    assert (actor, target, detail["family_id"]) == \
        ("agent.e", "entourage:%d" % p["id"], "f1")
    [mail] = outbox(s, "entourage_remove")
    assert mail[0] == "f1" and "Josette Dupont" in mail[3]
    assert mail[3].rstrip().endswith("/#/entourage")
    assert error_code(s.http("DELETE", url, token=agent,
                             json={"reason": "encore"}), 404) == \
        "not_found"
    # a removed person is not edited back
    assert error_code(s.http("PUT", "/api/entourage/%d" % p["id"],
                             token=tok["f1"], json=GRAN), 404) == \
        "not_found"


def test_at_most_twenty(s, tok):
    for i in range(20):
        r = s.http("POST", "/api/entourage", token=tok["f2"],
                   json=dict(GRAN, first_name="P%d" % i))
        assert r.status == 201, r
    assert error_code(s.http("POST", "/api/entourage", token=tok["f2"],
                             json=GRAN), 409) == "entourage_full"
    assert len(people(s, tok["f2"])) == 20
