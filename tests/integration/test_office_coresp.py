"""test_office_coresp.py -- a second legal representative with a login of
their own on the same file (issue 25, office/coresp.c, migration 0046):
the family invites them and gets a single-use link; with it they choose
a login and a password (the CGU in force accepted); they log in through
the module and see the same family; the worker keeps their login in
{T}:logins; a login is unique across families and co-responsables;
removing them ends their login and the family's other sessions.
"""

import time
from urllib.parse import parse_qs, urlsplit

import psycopg2
import pytest

from office_town import audit, error_code, town


@pytest.fixture(scope="module")
def s(make_stack):
    return make_stack(town(), name="office-coresp")


def login(s, who, password):
    return s.http("POST", "/api/session",
                  json={"login": who, "password": password})


def session(s, who, password):
    r = login(s, who, password)
    assert r.status == 200, r
    return r.json()["token"]


def cgu(s):
    r = s.http("GET", "/api/account/cgu")
    assert r.status == 200, r
    return r.json()["version"]


def accept(s, token, who="paul.dupont", password="paul-secret-1",
           version=None):
    return s.http("POST", "/api/account/co-responsable",
                  json={"token": token, "login": who, "password": password,
                        "cgu_version": cgu(s) if version is None
                        else version})


def eventually(what, ok, limit=20):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if ok():
            return
        time.sleep(0.1)
    raise AssertionError(what)


def test_a_co_responsable_logs_in_on_the_same_file(s):
    parent = session(s, "dupont", "secret-f1")
    r = s.http("POST", "/api/co-responsables", token=parent,
               json={"first_name": "Paul", "last_name": "Dupont",
                     "email": "paul@example.org"})
    assert r.status == 201, r
    c = r.json()
    assert c["status"] == "invite" and c["login"] is None
    url = urlsplit(c["invitation_url"])
    assert url.fragment.startswith("/invitation?jeton="), c
    token = parse_qs(url.fragment.split("?", 1)[1])["jeton"][0]
    # only the hash is kept
    assert token not in str(s.sql("select * from co_responsable"))

    assert error_code(s.http("POST", "/api/co-responsables", token=parent,
                             json={"first_name": "Luc", "last_name": "D",
                                   "email": "luc@example.org"}),
                      409) == "co_responsable_exists"

    # refusals write nothing and leave the link open
    assert error_code(accept(s, "x" * 43), 400) == "invitation_invalid"
    assert error_code(accept(s, token, who="dupont"), 409) == "login_taken"
    assert error_code(accept(s, token, password="court"), 400) == \
        "invalid_field"
    assert error_code(accept(s, token, version=0), 400) == "invalid_field"
    assert error_code(accept(s, token, who="é"), 400) == "invalid_field"

    r = accept(s, token)
    assert r.status == 200 and r.json() == {"login": "paul.dupont"}, r
    assert error_code(accept(s, token, who="paul2"), 400) == \
        "invitation_invalid"                            # single use

    co = session(s, "paul.dupont", "paul-secret-1")
    me = s.http("GET", "/api/me", token=co)
    assert me.status == 200, me
    assert [c["first_name"] for c in me.json()["children"]] == \
        ["Alice", "Bastien"]
    r = s.http("GET", "/api/co-responsables", token=co).json()
    assert [(x["login"], x["status"]) for x in r["co_responsables"]] == \
        [("paul.dupont", "actif")]
    d = s.http("GET", "/api/my-data", token=co).json()
    assert d["family"]["id"] == "f1"
    assert d["co_responsables"][0]["login"] == "paul.dupont"
    assert "password_hash" not in d["co_responsables"][0]
    assert "invite_hash" not in d["co_responsables"][0]
    # the parent's own password still works, each has their own
    assert login(s, "dupont", "paul-secret-1").status == 401
    assert login(s, "paul.dupont", "secret-f1").status == 401

    acts = [a[0] for a in s.sql("select action from audit_log"
                                " where target like 'co_responsable:%'"
                                " order by id")]
    assert acts == ["co_responsable.invite", "co_responsable.activate"]

    # the worker keeps the login in {T}:logins
    s.redis.hdel("{main}:logins", "paul.dupont")
    assert login(s, "paul.dupont", "paul-secret-1").status == 401
    s.sql("update catalogue set version = version + 1")
    eventually("the worker republishes the co-responsable's login",
               lambda: s.redis.hget("{main}:logins", "paul.dupont")
               is not None)
    assert s.redis.hget("{main}:logins", "paul.dupont").startswith("f1 ")

    # a login is unique across families and co-responsables
    with pytest.raises(psycopg2.Error):
        s.sql("update family set login = 'paul.dupont' where id = 'f2'")

    # another family cannot remove them
    assert error_code(s.http("DELETE", "/api/co-responsables/%d" % c["id"],
                             token=s.token("f2")), 404) == "not_found"

    # removed: their login goes, their session ends, the caller's stays
    co = session(s, "paul.dupont", "paul-secret-1")
    r = s.http("DELETE", "/api/co-responsables/%d" % c["id"], token=parent)
    assert r.status == 204, r
    assert login(s, "paul.dupont", "paul-secret-1").status == 401
    assert s.http("GET", "/api/co-responsables", token=co).status == 401
    assert s.http("GET", "/api/co-responsables", token=parent).json() == \
        {"co_responsables": []}
    assert audit(s, "co_responsable.remove")[-1][1] == \
        "co_responsable:%d" % c["id"]
    s.sql("update catalogue set version = version + 1")
    # the worker must not bring the removed login back
    eventually("the worker republished",
               lambda: s.redis.get("{main}:catalogue:version")
               == str(s.sql("select version from catalogue")[0][0]))
    assert s.redis.hget("{main}:logins", "paul.dupont") is None

    # a new invitation may follow
    r = s.http("POST", "/api/co-responsables", token=parent,
               json={"first_name": "Luc", "last_name": "Dupont",
                     "email": "luc@example.org"})
    assert r.status == 201, r


def test_bad_invitations(s):
    t = s.token("f2")
    for body in ({"first_name": "", "last_name": "D", "email": "a@b.c"},
                 {"first_name": "A", "last_name": "D", "email": "pas-un"},
                 {"first_name": "A", "last_name": "D"}):
        assert error_code(s.http("POST", "/api/co-responsables", token=t,
                                 json=body), 400) in ("invalid_field",
                                                      "bad_json"), body
    assert s.sql("select count(*) from co_responsable"
                 " where family_id = 'f2'")[0][0] == 0
    assert error_code(s.http("GET", "/api/co-responsables"), 401) == \
        "unauthenticated"
