"""test_tenant.py -- towns as tenants (issue 21, first stage): every Redis
key of a town under its hash tag "{<town id>}:", town.id in the town file,
guichet_town in nginx and the setting town of the worker and guichetctl,
and the upgrade of a Redis holding the layout before towns ("gch:*",
"{f:*", "{s:*", "{c:*") by guichetctl migrate-keys and by the worker at
start, which keeps every booking, token, demande, idempotency record and
connection history.
"""

import json
import os
import re
import signal
import time
import uuid

import pytest

from stack import StackError

DAY = "2027-07-07"


def town(town_id=None, name="Tenantville"):
    cells = [{"id": "t-%s" % u, "date": DAY, "unit": u, "places": 6}
             for u in ("MATIN", "APM")]
    families = []
    for i in (1, 2):
        fid = "f%d" % i
        families.append({
            "id": fid, "login": "fam%d" % i, "password": "secret-demo",
            "qf": 500, "resident": True, "direct_debit": False,
            "children": [{"id": fid + "-c1", "first_name": "Enfant",
                          "birth_date": "2018-03-01"}],
            "enrolments": [{"child_id": fid + "-c1", "activity_id": "t",
                            "from": "2026-01-01", "to": "2027-08-31",
                            "status": "validee"}]})
    t = {"town": {"name": name, "timezone": "Europe/Paris"},
         "units": [{"code": "MATIN", "label": "Matin", "starts": "08:30",
                    "ends": "12:00"},
                   {"code": "APM", "label": "Après-midi", "starts": "13:30",
                    "ends": "17:30"}],
         "activities": [{"id": "t", "name": "Centre", "age_min": 3,
                         "age_max": 17,
                         "booking_opens_at": "2026-01-01T18:00:00+01:00",
                         "deadline": {"working_days": 2},
                         "online_share_percent": 50, "week_required": False,
                         "prices": [{"qf_max": None, "cents": 500}],
                         "sessions": cells}],
         "families": families}
    if town_id is not None:
        t["town"]["id"] = town_id
    return t


def login(s, who):
    r = s.http("POST", "/api/session",
               json={"login": who, "password": "secret-demo"})
    assert r.status == 200, r
    return r.json()["token"]


def book(s, token, sid, key=None, child="f1-c1"):
    return s.http("POST", "/api/bookings", token=token,
                  headers={"Idempotency-Key": key or uuid.uuid4().hex},
                  json={"items": [{"child_id": child, "session_id": sid}]})


def wait_until(what, ok, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ok():
            return
        time.sleep(0.05)
    raise AssertionError("%s: not within %ds" % (what, timeout))


def write_town(s, name, data):
    path = os.path.join(s.dir, name)
    with open(path, "w") as f:
        json.dump(data, f, ensure_ascii=False)
    return path


def keys(r):
    return sorted(r.scan_iter(count=1000))


# ----- a town with its own id ---------------------------------------------

@pytest.fixture(scope="module")
def amb(make_stack):
    return make_stack(town("amberieu"), name="tenant-amb", town_id="amberieu")


def test_every_key_of_a_town_carries_its_hash_tag(amb):
    tok = login(amb, "fam1")
    r = book(amb, tok, "t-MATIN")
    assert r.status == 200 and r.json()["items"][0]["status"] == "confirmed", r
    amb.wait_worker_drained()
    assert amb.sql("select count(*) from booking where status = 'confirmed'"
                   )[0][0] == 1

    ks = keys(amb.redis)
    assert "{amberieu}:catalogue" in ks and "{amberieu}:stream" in ks
    assert "{amberieu}:f:f1:bookings" in ks
    assert "{amberieu}:s:t-MATIN:booked" in ks
    assert any(k.startswith("{amberieu}:c:f1-c1:%s:q" % DAY) for k in ks)
    # one hash tag for all: one Redis Cluster slot per town
    assert [k for k in ks if not k.startswith("{amberieu}:")] == []

    # the catalogue names its town
    cat = json.loads(amb.redis.get("{amberieu}:catalogue"))
    assert cat["town"]["id"] == "amberieu"


def test_load_town_refuses_another_towns_file(amb):
    for other, shown in ((town("autre"), '"autre"'), (town(), '"main"')):
        path = write_town(amb, "other.json", other)
        with pytest.raises(StackError) as e:
            amb.ctl_run("load-town", path)
        msg = str(e.value)
        assert shown in msg and '"amberieu"' in msg, msg
    # nothing changed: the town still answers, its catalogue still its own
    assert json.loads(amb.redis.get("{amberieu}:catalogue"))["town"][
        "name"] == "Tenantville"


@pytest.mark.parametrize("bad", ["Amberieu", "a_b", "", "x" * 41, "{a}"])
def test_a_bad_town_id_is_a_load_error(amb, bad):
    path = write_town(amb, "bad.json", town(bad))
    with pytest.raises(StackError) as e:
        amb.ctl_run("load-town", path)
    assert "$.town.id" in str(e.value), str(e.value)


def test_a_bad_town_setting_is_refused(amb):
    conf = os.path.join(amb.dir, "bad-town.conf")
    with open(amb.worker_conf) as f, open(conf, "w") as g:
        g.write(f.read() + "town = Not-A-Slug\n")
    with pytest.raises(StackError) as e:
        amb.ctl_run("-c", conf, "config", conf=False)
    assert "town" in str(e.value) and "Not-A-Slug" in str(e.value)


# ----- the layout before towns ----------------------------------------------

def to_old(name):
    """The name a key had before towns (the inverse of migrate.c)."""
    rest = name[len("{main}:"):]
    m = re.match(r"^staff:([^:]+):tokens$", rest)
    if m:
        return "{f:staff:%s}:tokens" % m.group(1)
    m = re.match(r"^([fsc]):([^:]+):(.*)$", rest)
    if m:
        return "{%s:%s}:%s" % m.groups()
    if rest == "stream" or rest.startswith("stream:"):
        return "gch:bookings" + rest[len("stream"):]
    return "gch:" + rest


def back_to_old_layout(r):
    """Renames every key of town main to its old name, as a Redis written
    by the Guichet before towns holds them; the attempt members too."""
    n = 0
    for k in keys(r):
        assert k.startswith("{main}:"), k
        r.rename(k, to_old(k))
        n += 1
    for m, score in r.zrange("gch:inflight", 0, -1, withscores=True):
        rkey, sep, rest = m.partition("#")
        r.zrem("gch:inflight", m)
        r.zadd("gch:inflight", {to_old(rkey) + sep + rest: score})
    return n


def served(s, tok):
    r = s.http("GET", "/api/bookings?from=%s&to=%s" % (DAY, DAY), token=tok)
    return r.status == 200 and r


def test_old_layout_is_renamed_and_served(make_stack):
    s = make_stack(town(), name="tenant-upgrade")
    r = s.redis

    tok = login(s, "fam1")
    key = uuid.uuid4().hex
    first = book(s, tok, "t-MATIN", key)
    assert first.json()["items"][0]["status"] == "confirmed", first
    tok2 = login(s, "fam2")
    s.wait_worker_drained()
    before = {
        "bookings": served(s, tok).json(),
        "requests": s.http("GET", "/api/requests", token=tok).json(),
        "connections": r.lrange("{main}:f:f1:connections", 0, -1),
        "tokens": r.zrange("{main}:f:f2:tokens", 0, -1),
        "demande": r.get("{main}:seq:demande"),
    }
    assert before["bookings"]["bookings"] and before["requests"]
    assert before["connections"] and before["tokens"]

    # the worker of the old layout is gone; Redis holds the old names
    s._end(s.procs.pop("worker"), signal.SIGTERM, 10)
    # an attempt caught half-way by the upgrade: its record's plan and its
    # member in the in-flight set name old keys too
    ms = int(time.time() * 1000) - 120000
    aid = "%d.1.0123abcd" % ms
    claim = "{main}:c:f1-c1:%s:q1" % DAY
    r.set(claim, "t-APM b-orphan")
    r.set("{main}:f:f1:idem:orphan",
          "P %s %s %s" % ("0" * 32, aid, json.dumps(
              [{"s": "t-APM", "c": "f1-c1", "b": "b-orphan",
                "q": [to_old(claim)]}], separators=(",", ":"))))
    r.zadd("{main}:inflight", {"{main}:f:f1:idem:orphan#" + aid: ms})
    n = back_to_old_layout(r)
    assert not [k for k in keys(r) if k.startswith("{main}:")]
    assert r.exists("gch:bookings", "gch:catalogue", "gch:logins",
                    "{f:f1}:bookings", "{s:t-MATIN}:booked",
                    to_old(claim)) == 6

    # what the module reads is gone: it stops selling (fail closed)
    wait_until("503 without the town's catalogue",
               lambda: s.http("GET", "/api/bookings", token=tok).status
               == 503)

    out = s.ctl_run("migrate-keys")
    assert out.strip() == "%d keys renamed to the layout of town main" % n
    assert [k for k in keys(r) if not k.startswith("{main}:")] == []
    # run again: nothing left to do
    assert s.ctl_run("migrate-keys").startswith("0 keys renamed")
    # the attempt's member and its plan now name the new keys
    assert r.zrange("{main}:inflight", 0, -1) == [
        "{main}:f:f1:idem:orphan#" + aid]
    assert ('"q":["%s"]' % claim) in r.get("{main}:f:f1:idem:orphan")

    # served as before: bookings, demandes, history, idempotency, tokens
    wait_until("bookings served again", lambda: served(s, tok))
    assert served(s, tok).json() == before["bookings"]
    assert s.http("GET", "/api/requests",
                  token=tok).json() == before["requests"]
    assert r.lrange("{main}:f:f1:connections", 0, -1) == \
        before["connections"]
    assert r.get("{main}:seq:demande") == before["demande"]
    again = book(s, tok, "t-MATIN", key)
    assert again.status == 200 and again.body == first.body, again
    assert again.header_all("Idempotent-Replayed") == ["true"], again
    # the old token is still known, and a logout still ends it
    assert r.zrange("{main}:f:f2:tokens", 0, -1) == before["tokens"]
    assert s.http("DELETE", "/api/session", token=tok2).status == 204
    wait_until("the logged-out token refused",
               lambda: all(s.http("GET", "/api/me", token=tok2).status == 401
                           for _ in range(4)))

    # the worker renames at start too (a stack restarted by the new make
    # run without guichetctl), then goes on persisting the same stream
    n = back_to_old_layout(r)
    s._start_worker()
    wait_until("the worker's migration",
               lambda: r.exists("{main}:stream") and not r.exists(
                   "gch:bookings"))
    assert "%d renamed to town \"main\"" % n in s.read("worker.log")
    wait_until("bookings served again", lambda: served(s, tok))
    # the reaper reads the rewritten plan: the orphan's claim is released
    # under its new name (an old name in the plan would leave it held)
    wait_until("the orphan reaped", lambda: not r.exists(
        "{main}:f:f1:idem:orphan") and not r.zcard("{main}:inflight"))
    assert r.get(claim) is None
    r2 = book(s, tok, "t-APM")
    assert r2.json()["items"][0]["status"] == "confirmed", r2
    s.wait_worker_drained()
    assert s.sql("select count(*) from booking where status = 'confirmed'"
                 )[0][0] == 2
