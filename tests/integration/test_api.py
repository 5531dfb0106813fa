"""test_api.py -- acceptance tests of the HTTP API, written against the
contract (../shared/API.md, docs/api.md, docs/errors.md) the way a new user
would try it: real nginx with the module, Redis, PostgreSQL and the worker
(stack.py), the demo town (demo/amberieu.json) or a custom one.

Each test uses its own family, child and cells of the demo town so that the
tests do not depend on their order.
"""

import concurrent.futures
import http.client
import json
import os
import re
import signal
import threading
import time
import uuid

import pytest

from stack import ROOT, Response

MARTIN = ("martin", "secret-demo", "f-martin")

# the error codes of API.md / docs/errors.md and their statuses
ERROR_STATUS = {
    "bad_json": 400, "invalid_field": 400, "idempotency_key_missing": 400,
    "unauthenticated": 401, "forbidden": 403, "bad_origin": 403,
    "not_found": 404, "method_not_allowed": 405, "body_too_large": 413,
    "unsupported_media_type": 415, "request_in_progress": 409,
    "idempotency_key_reused": 422, "rate_limited": 429, "unavailable": 503,
}


def key():
    return "t-" + uuid.uuid4().hex


def assert_error(r, code):
    """r is the JSON error of API.md with this code and its status."""
    assert r.status == ERROR_STATUS[code], r
    assert r.headers.get("content-type", "").startswith("application/json"), r
    body = r.json()
    assert set(body) == {"error"}, body
    assert body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str)
    assert body["error"]["message"], body


def book(s, token, items, idem=None, headers=None):
    h = {"Idempotency-Key": idem or key()}
    h.update(headers or {})
    return s.http("POST", "/api/bookings", token=token, headers=h,
                  json={"items": [{"child_id": c, "session_id": sid}
                                  for c, sid in items]})


def booking_count(s):
    s.wait_worker_drained()
    return s.sql("select count(*) from booking")[0][0]


def redis_state(s):
    """(keys, stream length); the families' token lists aside (a token
    minted by guichetctl during the test is recorded there)."""
    r = s.redis
    xlen = r.xlen("{main}:stream") if r.exists("{main}:stream") else 0
    tokens = sum(1 for _ in r.scan_iter(match="{main}:f:*:tokens", count=1000))
    return r.dbsize() - tokens, xlen


# ----- session ---------------------------------------------------------------

def test_login_gives_token_and_strict_cookie(stack):
    login, password, fid = MARTIN
    r = stack.http("POST", "/api/session",
                   json={"login": login, "password": password})
    assert r.status == 200, r
    body = r.json()
    assert body["family_id"] == fid
    assert isinstance(body["token"], str) and body["token"]
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", body["expires_at"])
    cookies = r.header_all("Set-Cookie")
    assert cookies, r.header_list
    c = cookies[0]
    assert "HttpOnly" in c and "SameSite=Strict" in c, c

    # the token works as a bearer token
    me = stack.http("GET", "/api/me", token=body["token"])
    assert me.status == 200, me
    assert me.json()["family_id"] == fid


def test_login_wrong_password_is_401(stack):
    r = stack.http("POST", "/api/session",
                   json={"login": "martin", "password": "not-the-password"})
    assert_error(r, "unauthenticated")
    r = stack.http("POST", "/api/session",
                   json={"login": "nobody-here", "password": "secret-demo"})
    assert_error(r, "unauthenticated")


# ----- reads -------------------------------------------------------------------

def test_me_lists_children_and_enrolments(stack):
    r = stack.http("GET", "/api/me", token=stack.token("f-martin"))
    assert r.status == 200, r
    me = r.json()
    assert me["family_id"] == "f-martin"
    kids = {c["id"]: c for c in me["children"]}
    assert set(kids) == {"c-lea", "c-hugo"}
    assert kids["c-lea"]["first_name"] == "Léa"
    assert kids["c-lea"]["birth_date"] == "2016-04-12"
    assert {(e["child_id"], e["activity_id"], e["status"])
            for e in me["enrolments"]} >= {
        ("c-lea", "klub-8-12", "validee"), ("c-hugo", "alsh-bourg", "validee")}


def test_me_without_token_is_401(stack):
    assert_error(stack.http("GET", "/api/me"), "unauthenticated")
    assert_error(stack.http("GET", "/api/me", token="v1.forged.0.x.y"),
                 "unauthenticated")


def test_activities(stack):
    r = stack.http("GET", "/api/activities")
    assert r.status == 200, r
    acts = {a["id"]: a for a in r.json()}
    assert set(acts) == {"alsh-bourg", "klub-8-12", "mercredis",
                         "stage-ski", "sejour-ete"}
    for a in acts.values():
        for k in ("id", "name", "age_min", "age_max", "site",
                  "booking_opens_at", "deadline", "week_required"):
            assert k in a, (k, a)
    assert acts["alsh-bourg"]["week_required"] is True
    assert acts["klub-8-12"]["name"] == "Activités et repas Klub 8-12 ans"
    assert (acts["klub-8-12"]["age_min"], acts["klub-8-12"]["age_max"]) \
        == (8, 12)


def test_sessions_of_an_activity(stack):
    r = stack.http("GET", "/api/activities/klub-8-12/sessions"
                          "?from=2027-07-07&to=2027-07-08")
    assert r.status == 200, r
    sessions = {x["id"]: x for x in r.json()}
    for x in sessions.values():
        for k in ("id", "date", "unit", "label", "starts_at", "ends_at",
                  "places_online", "places_left", "status"):
            assert k in x, (k, x)
        assert x["status"] in ("open", "full", "closed", "not_open_yet")
        assert "2027-07-07" <= x["date"] <= "2027-07-08"
    danse = sessions["klub-0707-danse"]
    assert (danse["date"], danse["unit"], danse["label"]) \
        == ("2027-07-07", "MATIN", "Danse latine")
    assert danse["places_online"] == 4          # 8 places, 50 % online
    assert danse["starts_at"].startswith("2027-07-07T08:30:00")
    # one place in all: none online, "complet" from the start
    piscine = sessions["klub-0708-piscine"]
    assert piscine["places_online"] == 0
    assert piscine["places_left"] == 0
    assert piscine["status"] == "full"
    # the calendar's REPAS cells are there too
    assert any(x["unit"] == "REPAS" for x in sessions.values())


def test_unknown_api_path_is_json_404(stack):
    assert_error(stack.http("GET", "/api/no-such-thing"), "not_found")


# ----- booking ---------------------------------------------------------------

def test_book_one_place(stack):
    tok = stack.token("f-martin")
    before = stack.http("GET", "/api/activities/klub-8-12/sessions"
                               "?from=2027-07-09&to=2027-07-09")
    left = {x["id"]: x["places_left"] for x in before.json()}
    r = book(stack, tok, [("c-lea", "klub-0709-jeux")])
    assert r.status == 200, r
    body = r.json()
    assert re.match(r"^D-\d{6,}$", body["request_id"]), body
    assert body["status"] == "traitee_positivement"
    [item] = body["items"]
    assert item["child_id"] == "c-lea"
    assert item["session_id"] == "klub-0709-jeux"
    assert item["status"] == "confirmed", item
    assert re.match(r"^b-[0-9a-f]{20}$", item["booking_id"]), item
    assert item["price_cents"] == 600           # QF 650: band up to 1000

    after = stack.http("GET", "/api/activities/klub-8-12/sessions"
                              "?from=2027-07-09&to=2027-07-09")
    now_left = {x["id"]: x["places_left"] for x in after.json()}
    assert now_left["klub-0709-jeux"] == left["klub-0709-jeux"] - 1

    planning = stack.http("GET", "/api/bookings?from=2027-07-01&to=2027-07-31",
                          token=tok)
    assert planning.status == 200, planning
    mine = [b for b in planning.json()["bookings"]
            if b["booking_id"] == item["booking_id"]]
    assert len(mine) == 1, planning.json()
    assert mine[0]["price_cents"] == 600
    assert mine[0]["session_id"] == "klub-0709-jeux"

    stack.wait_worker_drained()
    rows = stack.sql("select id from booking where id = %s",
                     (item["booking_id"],))
    assert rows == [(item["booking_id"],)]


def test_conflict_across_activities(stack):
    """Noah holds Mercredis' MATIN on 7 July; the Klub's Danse latine, the
    same morning, is refused as a conflict."""
    tok = stack.token("f-bernard")
    r = book(stack, tok, [("c-noah", "mercredis-20270707-MATIN")])
    assert r.status == 200, r
    assert r.json()["items"][0]["status"] == "confirmed", r

    r = book(stack, tok, [("c-noah", "klub-0707-danse")])
    assert r.status == 200, r
    body = r.json()
    assert body["status"] == "traitee_negativement"
    [item] = body["items"]
    assert item["status"] == "refused"
    assert item["reason"] == "conflict"
    assert "booking_id" not in item


def _bad_json(s):
    return s.http("POST", "/api/bookings", token=s.token("f-nguyen"),
                  headers={"Idempotency-Key": key(),
                           "Content-Type": "application/json"},
                  body='{"items": [{"child_id": "c-ines", "session_id": ')


def _no_idempotency_key(s):
    return s.http("POST", "/api/bookings", token=s.token("f-nguyen"),
                  json={"items": [{"child_id": "c-ines",
                                   "session_id": "mercredis-20270630-APM"}]})


def _no_token(s):
    return s.http("POST", "/api/bookings",
                  headers={"Idempotency-Key": key()},
                  json={"items": [{"child_id": "c-ines",
                                   "session_id": "mercredis-20270630-APM"}]})


def _child_of_another_family(s):
    return book(s, s.token("f-nguyen"),
                [("c-ines", "mercredis-20270630-APM"),
                 ("c-lea", "mercredis-20270630-APM")])


def _too_large(s):
    items = [{"child_id": "c-ines", "session_id": "mercredis-20270630-APM"}]
    return s.http("POST", "/api/bookings", token=s.token("f-nguyen"),
                  headers={"Idempotency-Key": key()},
                  json={"items": items, "pad": "x" * 70000})


@pytest.mark.parametrize("request_, code", [
    (_bad_json, "bad_json"),
    (_no_idempotency_key, "idempotency_key_missing"),
    (_no_token, "unauthenticated"),
    (_child_of_another_family, "forbidden"),
    (_too_large, "body_too_large"),
], ids=["bad_json", "no_idempotency_key", "no_token", "other_family_child",
        "body_too_large"])
def test_refused_request_changes_nothing(stack, request_, code):
    stack.wait_worker_drained()
    redis_before = redis_state(stack)
    count_before = booking_count(stack)
    r = request_(stack)
    assert_error(r, code)
    assert redis_state(stack) == redis_before
    assert booking_count(stack) == count_before


def test_idempotent_replay_and_reused_key(stack):
    tok = stack.token("f-bernard")
    idem = key()
    first = book(stack, tok, [("c-chloe", "klub-0712-cuisine")], idem=idem)
    assert first.status == 200, first
    assert first.json()["items"][0]["status"] == "confirmed", first
    assert first.headers.get("idempotent-replayed") is None
    count = booking_count(stack)
    _, xlen = redis_state(stack)

    again = book(stack, tok, [("c-chloe", "klub-0712-cuisine")], idem=idem)
    assert again.status == 200, again
    assert again.headers.get("idempotent-replayed") == "true"
    assert again.json() == first.json()
    assert redis_state(stack)[1] == xlen
    assert booking_count(stack) == count

    other = book(stack, tok, [("c-chloe", "klub-0713-grimpe")], idem=idem)
    assert_error(other, "idempotency_key_reused")
    assert booking_count(stack) == count


def test_health(stack):
    r = None
    for _ in range(50):             # the worker's heartbeat comes each second
        r = stack.http("GET", "/api/health")
        if r.status == 200 and r.json().get("postgres") == "ok":
            break
        time.sleep(0.1)
    assert r.status == 200, r
    body = r.json()
    assert body["redis"] == "ok"
    assert body["postgres"] == "ok"
    assert isinstance(body["worker_lag_ms"], int)


# ----- the opening-day rush --------------------------------------------------

RUSH_FAMILIES = 300


def rush_town():
    families = []
    for i in range(1, RUSH_FAMILIES + 1):
        fid, cid = "f-%04d" % i, "c-%04d" % i
        families.append({
            "id": fid, "qf": 500 + i, "resident": True, "direct_debit": False,
            "children": [{"id": cid, "first_name": "Enfant%d" % i,
                          "birth_date": "2018-03-01"}],
            "enrolments": [{"child_id": cid, "activity_id": "alsh-rush",
                            "from": "2027-07-01", "to": "2027-08-31",
                            "status": "validee"}]})
    return {
        "town": {"name": "Ambérieu-en-Bugey", "timezone": "Europe/Paris"},
        "units": [
            {"code": "MATIN", "label": "Matin", "starts": "08:30",
             "ends": "12:00"},
            {"code": "REPAS", "label": "Repas", "starts": "12:00",
             "ends": "13:30"},
            {"code": "APM", "label": "Après-midi", "starts": "13:30",
             "ends": "17:30"}],
        "activities": [{
            "id": "alsh-rush", "name": "ALSH été", "age_min": 3,
            "age_max": 11,
            "booking_opens_at": "2026-11-01T18:00:00+01:00",
            "deadline": {"working_days": 9},
            "online_share_percent": 50, "week_required": False,
            "prices": [{"qf_max": 600, "cents": 300},
                       {"qf_max": None, "cents": 900}],
            "sessions": [{"id": "rush-0708-m", "date": "2027-07-08",
                          "unit": "MATIN", "label": "Grand jeu",
                          "places": 20}]}],
        "families": families,
    }


def test_rush_300_families_10_online_places(make_stack):
    s = make_stack(rush_town(), name="rush")
    tokens = s.tokens()
    assert len(tokens) == RUSH_FAMILIES

    def one(i):
        fid, cid = "f-%04d" % i, "c-%04d" % i
        return book(s, tokens[fid], [(cid, "rush-0708-m")])

    with concurrent.futures.ThreadPoolExecutor(64) as pool:
        answers = list(pool.map(one, range(1, RUSH_FAMILIES + 1)))

    assert all(r.status == 200 for r in answers), \
        [r for r in answers if r.status != 200][:3]
    items = [r.json()["items"][0] for r in answers]
    confirmed = [x for x in items if x["status"] == "confirmed"]
    refused = [x for x in items if x["status"] == "refused"]
    assert len(confirmed) == 10
    assert len(refused) == 290
    assert all(x["reason"] == "full" for x in refused), \
        {x["reason"] for x in refused}

    r = s.http("GET", "/api/activities/alsh-rush/sessions"
                      "?from=2027-07-08&to=2027-07-08")
    assert r.status == 200, r
    [cell] = r.json()
    assert cell["places_online"] == 10
    assert cell["places_left"] == 0
    assert cell["status"] == "full"

    s.wait_worker_drained()
    assert s.sql("select count(*) from booking")[0][0] == 10
    ids = {row[0] for row in s.sql("select id from booking")}
    assert ids == {x["booking_id"] for x in confirmed}


# ----- what one family can make the system keep (issue 18, finding 5) -------

def budget_town():
    t = rush_town()
    t["families"] = t["families"][:2]
    t["activities"][0]["sessions"][0]["places"] = 100
    return t


def test_one_family_cannot_fill_redis(make_stack):
    """A family's booking requests are charged 10 + their items against
    6000 a minute (GCH_FAMILY_*): past that, 429 rate_limited and nothing
    is kept; the answers of wholly refused requests live 10 minutes, not
    guichet_idempotency_ttl.  Another family, and a parent's normal pace,
    are never bothered."""
    s = make_stack(budget_town(), name="budget")
    tok = s.tokens()
    a, b = tok["f-0001"], tok["f-0002"]
    r = s.redis

    # a confirmed booking keeps its answer for a day
    k = key()
    res = book(s, a, [("c-0001", "rush-0708-m")], idem=k)
    assert res.status == 200, res
    assert res.json()["items"][0]["status"] == "confirmed"
    assert r.ttl("{main}:f:f-0001:idem:" + k) > 3600

    # 200 unknown cells: wholly refused, kept ten minutes at most
    junk = [("c-0001", "nope-%03d" % i) for i in range(200)]
    k = key()
    res = book(s, a, junk, idem=k)
    assert res.status == 200, res
    assert all(i["status"] == "refused" for i in res.json()["items"])
    assert 0 < r.ttl("{main}:f:f-0001:idem:" + k) <= 600

    # the finding's flood: refused within 30 requests of 200 items
    answers = []
    for _ in range(40):
        k = key()
        before = r.xlen("{main}:stream")
        res = book(s, a, junk, idem=k)
        answers.append(res.status)
        if res.status == 429:
            assert_error(res, "rate_limited")
            assert 1 <= int(res.headers["retry-after"]) <= 60
            assert r.exists("{main}:f:f-0001:idem:" + k) == 0
            assert r.xlen("{main}:stream") == before
            break
        assert res.status == 200, res
    assert answers[-1] == 429 and len(answers) <= 30, answers

    # the other family books at a parent's pace: 20 requests in a row
    res = book(s, b, [("c-0002", "rush-0708-m")])
    assert res.status == 200 and \
        res.json()["items"][0]["status"] == "confirmed", res
    for i in range(19):
        res = book(s, b, [("c-0002", "nope-%d" % i)] * 3)
        assert res.status == 200, res


def test_a_family_past_its_budget_still_learns_a_booking_s_fate(make_stack):
    """A booking that went through (its client got a 503, or lost the
    answer) is learnt by sending its Idempotency-Key again (docs/api.md).
    A family past its budget meanwhile gets that answer, replayed, not a
    429 saying that nothing was booked; a new key still gets the 429."""
    s = make_stack(budget_town(), name="budget-replay")
    a = s.tokens()["f-0001"]
    k = key()
    res = book(s, a, [("c-0001", "rush-0708-m")], idem=k)
    assert res.status == 200, res
    first = res.json()
    assert first["items"][0]["status"] == "confirmed", first

    junk = [("c-0001", "nope-%03d" % i) for i in range(200)]   # costs 210
    statuses = [book(s, a, junk).status for _ in range(29)]
    assert statuses[-1] == 429, statuses

    res = book(s, a, [("c-0001", "rush-0708-m")], idem=k)
    assert res.status == 200, res
    assert res.headers.get("idempotent-replayed") == "true", res
    assert res.json() == first

    res = book(s, a, [("c-0001", "rush-0708-m")])
    assert_error(res, "rate_limited")


def nginx_workers(s):
    """The pids of the nginx master's children (its workers)."""
    pid = s.procs["nginx"].pid
    with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
        return {int(p) for p in f.read().split()}


def worker_of(s, conn):
    """The nginx worker serving the keep-alive connection conn: the one
    holding the socket whose peer is conn's port (/proc/net/tcp)."""
    peer = "0100007F:%04X" % conn.sock.getsockname()[1]
    local = "0100007F:%04X" % s.port
    inode = None
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            col = line.split()
            if col[1] == local and col[2] == peer:
                inode = col[9]
    assert inode, "no server socket for %s" % peer
    for pid in nginx_workers(s):
        for fd in os.listdir("/proc/%d/fd" % pid):
            try:
                if os.readlink("/proc/%d/fd/%s" % (pid, fd)) == \
                        "socket:[%s]" % inode:
                    return pid
            except OSError:
                pass
    raise AssertionError("no worker holds socket %s" % inode)


def book_on(conn, token, items):
    """book() on a keep-alive connection."""
    conn.request("POST", "/api/bookings", headers={
        "Idempotency-Key": key(), "Authorization": "Bearer " + token,
        "Content-Type": "application/json"},
        body=json.dumps({"items": [{"child_id": c, "session_id": sid}
                                   for c, sid in items]}))
    r = conn.getresponse()
    return Response(r.status, r.getheaders(), r.read())


def test_family_budget_shared_by_workers_not_in_redis(make_stack):
    """A family's budget is kept in the nginx host's shared memory
    (guichet_budget_zone): both workers charge the same count, a family
    past it costs Redis one read a request (EXISTS of its Idempotency-Key,
    whose known answer it still gets) and no write, Redis keeps no
    counter, and a reload keeps the count."""
    s = make_stack(budget_town(), name="budget-shm")
    tok = s.tokens()
    a, b = tok["f-0001"], tok["f-0002"]
    junk = [("c-0001", "nope-%03d" % i) for i in range(200)]   # costs 210

    # one keep-alive connection on each of the two workers
    conns = {}
    for _ in range(200):
        c = http.client.HTTPConnection("127.0.0.1", s.port, timeout=30)
        c.request("GET", "/api/health")
        c.getresponse().read()
        pid = worker_of(s, c)
        if pid in conns:
            c.close()
        else:
            conns[pid] = c
        if len(conns) == 2:
            break
    assert len(conns) == 2, "one worker took every connection"
    pair = list(conns.values())

    # 28 requests of 210 fit in 6000, the 29th is past it: alternately on
    # each worker, so that each worker alone charged only half of them
    statuses = []
    for i in range(29):
        res = book_on(pair[i % 2], a, junk)
        statuses.append(res.status)
    assert statuses == [200] * 28 + [429], statuses
    assert_error(res, "rate_limited")
    assert 1 <= int(res.headers["retry-after"]) <= 60
    res = book_on(pair[0], a, [("c-0001", "rush-0708-m")])
    assert res.status == 429, res
    for c in pair:
        c.close()

    # no counter in Redis, and a family past its budget sends it nothing
    assert list(s.redis.scan_iter(match="*budget*")) == []
    seen, started, ended = [], threading.Event(), threading.Event()

    def watch(m):
        for cmd in m.listen():
            seen.append(cmd["command"])
            if "budget-test-start" in cmd["command"]:
                started.set()
            if "budget-test-end" in cmd["command"]:
                ended.set()
                return

    with s.redis.monitor() as m:
        t = threading.Thread(target=watch, args=(m,), daemon=True)
        t.start()
        while not started.is_set():     # MONITOR is on before the requests
            s.redis.echo("budget-test-start")
            started.wait(0.1)
        for _ in range(4):
            res = book(s, a, [("c-0001", "rush-0708-m")])
            assert res.status == 429, res
        s.redis.echo("budget-test-end")
        assert ended.wait(10), "MONITOR saw nothing"
    # one read each (does Redis know its Idempotency-Key?), no write
    named = [c for c in seen if "f-0001" in c]
    assert len(named) == 4, seen
    assert all(c.startswith("EXISTS {main}:f:f-0001:idem:") for c in named), \
        seen

    # a reload (SIGHUP): new workers, the same zone, the same count
    old = nginx_workers(s)
    os.kill(s.procs["nginx"].pid, signal.SIGHUP)
    for _ in range(300):
        now = nginx_workers(s)
        if len(now) == 2 and not now & old:
            break
        time.sleep(0.05)
    assert len(now) == 2 and not now & old, (old, now)
    for _ in range(100):
        res = book(s, a, [("c-0001", "rush-0708-m")])
        if res.status != 503:   # the new workers read the catalogue first
            break
        time.sleep(0.1)
    assert res.status == 429, res

    # the other family is not bothered
    res = book(s, b, [("c-0002", "rush-0708-m")])
    assert res.status == 200 and \
        res.json()["items"][0]["status"] == "confirmed", res


def test_family_budget_zone_full_forgets_the_least_recent(make_stack,
                                                          tmp_path):
    """A guichet_budget_zone too small for every family charged within the
    minute forgets the family charged least recently first: its next
    request starts a new minute; no request fails for want of room."""
    with open(os.path.join(ROOT, "lua-free-config", "dev.conf")) as f:
        conf = f.read()
    assert "guichet_budget_zone 8m;" in conf
    small = tmp_path / "dev-small-budget.conf"
    small.write_text(conf.replace("guichet_budget_zone 8m;",
                                  "guichet_budget_zone 32k;"))
    s = make_stack(rush_town(), name="budget-full",
                   nginx_template=str(small))
    tok = s.tokens()
    junk = [("c-0001", "nope-%03d" % i) for i in range(200)]   # costs 210

    statuses = [book(s, tok["f-0001"], junk).status for _ in range(29)]
    assert statuses == [200] * 28 + [429], statuses

    # 299 other families, more than 32k holds (128 bytes each)
    for i in range(2, RUSH_FAMILIES + 1):
        res = book(s, tok["f-%04d" % i], [("c-%04d" % i, "nope")])
        assert res.status == 200, (i, res)

    res = book(s, tok["f-0001"], junk)
    assert res.status == 200, res
    assert "not charged" not in s.error_log()
