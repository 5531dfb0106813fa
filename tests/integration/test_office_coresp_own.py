"""test_office_coresp_own.py -- the co-responsable in the agent's family
file, and a password of their own (issue 25, office/account.c,
office/family.c): the token names the family, not the person, so
POST /api/password says whose password it changes with "login" (the
family's own, or its co-responsable's) and proves it with that person's
current password; the other person's login is untouched; the agent's
record shows the co-responsable, invited then active.
"""

from urllib.parse import parse_qs, urlsplit

import pytest

from office_town import agent, audit, error_code, staffed_stack, town


@pytest.fixture(scope="module")
def s(make_stack):
    return staffed_stack(make_stack, town(), "office-coresp-own",
                         roles=("agent",))


def session(s, who, password):
    r = s.http("POST", "/api/session",
               json={"login": who, "password": password})
    assert r.status == 200, (who, r)
    return r.json()["token"]


def record(s, agent):
    r = s.http("GET", "/api/staff/families/f1/record", token=agent)
    assert r.status == 200, r
    return r.json()


def test_the_co_responsable_in_the_file_and_their_own_password(s, agent):
    assert record(s, agent)["co_responsable"] is None
    parent = session(s, "dupont", "secret-f1")
    r = s.http("POST", "/api/co-responsables", token=parent,
               json={"first_name": "Paul", "last_name": "Dupont",
                     "email": "paul@example.org"})
    assert r.status == 201, r
    c = record(s, agent)["co_responsable"]
    assert (c["first_name"], c["last_name"], c["email"], c["login"],
            c["activated_at"]) == ("Paul", "Dupont", "paul@example.org",
                                   None, None)
    assert c["invite_expires_at"] is not None

    frag = urlsplit(r.json()["invitation_url"]).fragment
    token = parse_qs(frag.split("?", 1)[1])["jeton"][0]
    r = s.http("POST", "/api/account/co-responsable",
               json={"token": token, "login": "paul.dupont",
                     "password": "paul-secret-1", "cgu_version": 1})
    assert r.status == 200, r
    c = record(s, agent)["co_responsable"]
    assert c["login"] == "paul.dupont" and c["activated_at"] is not None

    paul = session(s, "paul.dupont", "paul-secret-1")
    # the family's own password is not Paul's
    r = s.http("POST", "/api/password", token=paul,
               json={"login": "paul.dupont", "old_password": "secret-f1",
                     "new_password": "paul-secret-2"})
    assert error_code(r, 403) == "wrong_password"
    # another family's login: the same answer
    r = s.http("POST", "/api/password", token=paul,
               json={"login": "f2-login", "old_password": "paul-secret-1",
                     "new_password": "paul-secret-2"})
    assert error_code(r, 403) == "wrong_password"

    r = s.http("POST", "/api/password", token=paul,
               json={"login": "paul.dupont",
                     "old_password": "paul-secret-1",
                     "new_password": "paul-secret-2"})
    assert r.status == 204, r
    a = audit(s, "password.change")[-1]
    assert a[:2] == ("family:f1", "family:f1")
    assert "paul.dupont" in str(a)
    assert s.http("POST", "/api/session",
                  json={"login": "paul.dupont",
                        "password": "paul-secret-1"}).status == 401
    paul = session(s, "paul.dupont", "paul-secret-2")
    # the family's own login is untouched
    session(s, "dupont", "secret-f1")

    # without "login" (or with the family's own) it is the family's
    r = s.http("POST", "/api/password", token=paul,
               json={"login": "dupont", "old_password": "secret-f1",
                     "new_password": "secret-f1-bis"})
    assert r.status == 204, r
    session(s, "dupont", "secret-f1-bis")
    session(s, "paul.dupont", "paul-secret-2")
