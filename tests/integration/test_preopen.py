"""test_preopen.py -- a request sent before the opening writes nothing.

Every cell of a family's request refused not_open_yet by the engine's
pre-check (no Redis rule involved): the answer is that refusal with
"request_id": null after one EXISTS of the idempotency record; no demande,
no record kept for a replay, so that the parent who pressed "Réserver" a
second too early books with the same Idempotency-Key once it has opened.
A key Redis already knows gets its replay (or 422) as ever.  Independent
of the sold-out cache: this stack runs guichet_full_cache 0, and one nginx
worker, so that the catalogue a request meets is known without timing.

The opening is moved by loading the town file again with another
booking_opens_at (as tests/integration/test_draw.py does).
"""

import json
import os
import re
import uuid

import pytest

from stack import ROOT

FAR = "2036-06-07T18:00:00+02:00"
PAST = "2026-01-01T18:00:00+01:00"
FID = "f1"
IDEM = "{main}:f:%s:idem:" % FID
DEMANDES = "{main}:f:%s:demandes" % FID
STREAM = "{main}:stream"
# the saga's commands: none may run for a request refused before Redis
# (its GET runs inside MULTI/EXEC; nginx's catalogue refresher sends GETs
# of its own on its timer, so GET is not counted)
SAGA = ("set", "incr", "incrby", "zadd", "zrem", "xadd", "lpush", "multi",
        "exec", "bitfield", "hset", "sadd", "expire")


def town(opens):
    units = [{"code": "MATIN", "label": "Matin", "starts": "08:30",
              "ends": "12:00"}]

    def act(aid, opens_at, sessions):
        return {"id": aid, "name": "Activité " + aid, "age_min": 3,
                "age_max": 17, "booking_opens_at": opens_at,
                "deadline": {"working_days": 2}, "online_share_percent": 100,
                "week_required": False,
                "prices": [{"qf_max": None, "cents": 500}],
                "sessions": [{"id": sid, "date": day, "unit": "MATIN",
                              "places": 5} for sid, day in sessions]}

    acts = [act("soon", opens, [("soon-1", "2037-07-07"),
                                ("soon-2", "2037-07-08")]),
            act("open", PAST, [("open-1", "2037-07-09")])]
    kids = [{"id": FID + "-c1", "first_name": "Enfant1",
             "birth_date": "2030-03-01"}]
    fam = {"id": FID, "qf": 500, "resident": True, "direct_debit": False,
           "children": kids, "unpaid_invoices": 0,
           "enrolments": [{"child_id": FID + "-c1", "activity_id": a,
                           "from": "2026-01-01", "to": "2037-12-31",
                           "status": "validee"} for a in ("soon", "open")]}
    return {"town": {"name": "Ouverture", "timezone": "Europe/Paris"},
            "units": units, "activities": acts, "families": [fam]}


def template(tmpdir):
    """dev.conf with one nginx worker and the sold-out cache off."""
    src = open(os.path.join(ROOT, "lua-free-config", "dev.conf")).read()
    src, n = re.subn(r"(?m)^(\s*guichet_full_cache\s+)\S+;", r"\g<1>0;", src)
    assert n == 1
    src, n = re.subn(r"(?m)^worker_processes\s+\S+;", "worker_processes 1;",
                     src)
    assert n == 1
    path = os.path.join(tmpdir, "preopen.conf")
    with open(path, "w") as f:
        f.write(src)
    return path        # absolute: os.path.join in stack.py keeps it


@pytest.fixture(scope="module")
def s(make_stack, tmp_path_factory):
    tpl = template(str(tmp_path_factory.mktemp("conf")))
    return make_stack(town(FAR), name="preopen", nginx_template=tpl)


@pytest.fixture(scope="module")
def tok(s):
    return s.token(FID)


def book(s, tok, sessions, key):
    return s.http("POST", "/api/bookings", token=tok,
                  headers={"Idempotency-Key": key},
                  json={"items": [{"child_id": FID + "-c1", "session_id": x}
                                  for x in sessions]})


def cells(r):
    return [(i["session_id"], i["status"], i.get("reason"))
            for i in r.json()["items"]]


def open_at(s, opens):
    """Loads the town with "soon" opening at opens; waits until nginx's one
    worker has that catalogue."""
    def opening():
        acts = s.http("GET", "/api/activities").json()
        return [a for a in acts if a["id"] == "soon"][0]["booking_opens_at"]

    was = opening()
    with open(s.town_file, "w") as f:
        json.dump(town(opens), f)
    s.ctl_run("load-town", s.town_file)
    s._wait("the catalogue's new opening", lambda: opening() != was)


def commandstats(s):
    out = {}
    for k, v in s.redis.info("commandstats").items():
        out[k.split("_", 1)[1].split("|")[0]] = v["calls"]
    return out


def redis_state(s):
    return (s.redis.dbsize(), s.redis.xlen(STREAM), s.redis.llen(DEMANDES),
            sorted(k.decode() if isinstance(k, bytes) else k
                   for k in s.redis.scan_iter(IDEM + "*")))


def test_before_the_opening_nothing_is_written(s, tok):
    """The refusal, request_id null, opens_at said; Redis unchanged: no
    idempotency record, no stream entry, no demande pushed, one EXISTS and
    none of the saga's commands (the worker is stopped meanwhile, so that
    every command Redis runs is nginx's)."""
    s.procs["worker"].terminate()
    s.procs["worker"].wait(10)
    try:
        before, stats = redis_state(s), commandstats(s)
        r = book(s, tok, ["soon-1", "soon-2"], "early-1")
        after, stats2 = redis_state(s), commandstats(s)
    finally:
        s._start_worker()

    assert r.status == 200, r
    assert r.headers.get("idempotent-replayed") != "true", r.headers
    doc = r.json()
    assert doc["request_id"] is None, doc
    assert doc["status"] == "traitee_negativement", doc
    assert cells(r) == [("soon-1", "refused", "not_open_yet"),
                        ("soon-2", "refused", "not_open_yet")], doc
    assert all(i["opens_at"] == "2036-06-07T18:00:00+02:00"
               for i in doc["items"]), doc
    assert after == before
    assert not s.redis.exists(IDEM + "early-1")
    delta = {c: stats2.get(c, 0) - stats.get(c, 0)
             for c in set(stats) | set(stats2)}
    assert delta.get("exists", 0) == 1, delta
    assert [c for c in SAGA if delta.get(c, 0)] == [], delta

    # nothing reaches PostgreSQL either
    s.wait_worker_drained()
    assert s.sql("select count(*) from demande where idem_key = 'early-1'") \
        == [(0,)]


def test_an_open_cell_with_it_keeps_the_saga(s, tok):
    """One cell that may book sends the request to Redis: a demande, its
    not_open_yet cell recorded with it."""
    r = book(s, tok, ["soon-1", "open-1"], "mixed-1")
    assert r.status == 200, r
    assert r.json()["request_id"], r
    assert cells(r) == [("soon-1", "refused", "not_open_yet"),
                        ("open-1", "confirmed", None)], r
    assert s.redis.exists(IDEM + "mixed-1")


def test_the_same_key_books_once_open_then_replays(s, tok):
    """The parent's retry with the same key after the opening books (on a
    saga that kept the refusal it replayed "not_open_yet" for 10 minutes);
    once Redis knows the key, the shortcut no longer answers it: before an
    opening moved again, the same body gets its replay, another body 422."""
    r = book(s, tok, ["soon-1"], "retry-1")
    assert cells(r) == [("soon-1", "refused", "not_open_yet")], r

    open_at(s, PAST)
    r = book(s, tok, ["soon-1"], "retry-1")
    assert r.status == 200, r
    assert r.headers.get("idempotent-replayed") != "true", r.headers
    assert cells(r) == [("soon-1", "confirmed", None)], r
    rid = r.json()["request_id"]
    assert rid

    # the opening moved later again: the key Redis knows is replayed, not
    # refused not_open_yet
    open_at(s, FAR)
    r = book(s, tok, ["soon-1"], "retry-1")
    assert r.status == 200, r
    assert r.headers.get("idempotent-replayed") == "true", r.headers
    assert r.json()["request_id"] == rid, r
    assert cells(r) == [("soon-1", "confirmed", None)], r

    r = book(s, tok, ["soon-2"], "retry-1")
    assert r.status == 422, r
    assert r.json()["error"]["code"] == "idempotency_key_reused", r

    # a fresh key is refused at once again
    r = book(s, tok, ["soon-2"], uuid.uuid4().hex)
    assert cells(r) == [("soon-2", "refused", "not_open_yet")], r
    assert r.json()["request_id"] is None
