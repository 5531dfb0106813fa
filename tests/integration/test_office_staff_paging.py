"""test_office_staff_paging.py -- the back office's family search pages
through a town of 120 families (issue 22: it was silently cut at 50):
GET /api/staff/families?q=&offset=&limit= answers a page and the total.
"""

import pytest

from office_town import error_code, staff_add, staff_login, town

N = 120


def big_town():
    t = town()
    t["families"] = [
        {"id": "p%03d" % i, "login": "famille%03d" % i, "qf": 500,
         "children": [{"id": "p%03d-a" % i,
                       "first_name": "Lou" if i % 2 else "Max",
                       "birth_date": "2018-04-04"}]}
        for i in range(N)]
    return t


@pytest.fixture(scope="module")
def s(make_stack):
    st = make_stack(big_town(), name="office-paging")
    staff_add(st, "agent.p", "agent", "Pat Agent", "agent-pass-7")
    return st


@pytest.fixture(scope="module")
def agent(s):
    return staff_login(s, "agent.p", "agent-pass-7")


def ids(r):
    assert r.status == 200, r
    return [f["id"] for f in r.json()["families"]]


def test_every_family_can_be_reached_page_by_page(s, agent):
    r = s.http("GET", "/api/staff/families?q=", token=agent)
    b = r.json()
    assert (b["total"], b["offset"], b["limit"]) == (N, 0, 50)
    assert ids(r) == ["p%03d" % i for i in range(50)]

    seen = []
    for off in range(0, N, 50):
        r = s.http("GET", "/api/staff/families?q=&offset=%d" % off,
                   token=agent)
        assert r.json()["total"] == N
        seen += ids(r)
    assert seen == ["p%03d" % i for i in range(N)]

    # a search pages too, its total is the search's
    r = s.http("GET", "/api/staff/families?q=lou&offset=40&limit=10",
               token=agent)
    assert r.json()["total"] == N // 2
    assert ids(r) == ["p%03d" % i for i in range(81, 101, 2)]
    # past the end: no family, the total still said
    r = s.http("GET", "/api/staff/families?offset=500", token=agent)
    assert ids(r) == [] and r.json()["total"] == N


@pytest.mark.parametrize("query", [
    "offset=-1", "offset=x", "offset=", "offset=1e3", "limit=0",
    "limit=101", "limit=5.5", "offset=99999999",
])
def test_bad_paging_is_refused(s, agent, query):
    r = s.http("GET", "/api/staff/families?q=&" + query, token=agent)
    assert error_code(r, 400) == "invalid_field"
    assert query.split("=")[0] in r.json()["error"]["message"]
