"""test_tenant.py -- towns as tenants (issue 21, first stage): every Redis
key of a town under its hash tag "{<town id>}:", town.id in the town file,
guichet_town in nginx and the setting town of the worker and guichetctl,
and the upgrade of a Redis holding the layout before towns ("gch:*",
"{f:*", "{s:*", "{c:*") by guichetctl migrate-keys and by the worker at
start, which keeps every booking, token, demande, idempotency record and
connection history.
"""

import http.client
import json
import os
import re
import signal
import subprocess
import time
import uuid

import psycopg2
import pytest

from stack import BAD_LOG, BUILD, NGINX, ROOT, StackError, free_port

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


def served_everywhere(s, tok):
    """Every nginx worker has the catalogue again (fresh connections land
    on either of the two)."""
    return all(served(s, tok) for _ in range(8))


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
    wait_until("bookings served again", lambda: served_everywhere(s, tok))
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
    wait_until("the worker's migration, logged", lambda: (
        "%d renamed to town \"main\"" % n) in s.read("worker.log"))
    assert [k for k in keys(r) if not k.startswith("{main}:")] == []
    wait_until("bookings served again", lambda: served_everywhere(s, tok))
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


# ----- two towns in one nginx -------------------------------------------------

NGINX_TWO = """
load_module {module};
worker_processes 2;
error_log {dir}/error.log notice;
pid {dir}/nginx.pid;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    guichet_redis {redis};
    guichet_secret_file {secret};
    guichet_catalogue_refresh 200ms;
    guichet_cookie_secure off;
    # http's town: the first server keeps it
    guichet_town amberieu;
    server {{
        listen 127.0.0.1:{port_a};
        location /api/ {{ guichet_api; }}
    }}
    server {{
        listen 127.0.0.1:{port_b};
        guichet_town belley;
        location /api/ {{ guichet_api; }}
        location = /metrics {{ guichet_metrics; }}
    }}
}}
"""


def test_two_towns_in_one_nginx(amb, tmp_path):
    """A second town (its own database and worker, the same Redis) beside
    amberieu, both served by one nginx: each server block sells from its
    own town's catalogue and counters, under its own hash tag."""
    c = psycopg2.connect(host=amb.pg_socket, port=amb.pg_port,
                         user="postgres", dbname="postgres")
    c.autocommit = True
    c.cursor().execute("drop database if exists guichet_belley")
    c.cursor().execute("create database guichet_belley")
    c.close()
    conf = str(tmp_path / "belley.conf")
    with open(amb.worker_conf) as f, open(conf, "w") as g:
        g.write(f.read().replace("dbname=guichet ", "dbname=guichet_belley ")
                + "town = belley\noffice_listen = unix:%s\n"
                % (tmp_path / "office-b.sock"))
    path = write_town(amb, "belley.json", town("belley", name="Belley"))
    amb.ctl_run("-c", conf, "migrate", conf=False)
    amb.ctl_run("-c", conf, "load-town", path, conf=False)
    worker = subprocess.Popen([os.path.join(BUILD, "guichet-worker"), "-c",
                               conf], cwd=ROOT,
                              stdout=open(str(tmp_path / "worker-b.log"), "w"),
                              stderr=subprocess.STDOUT)
    nginx = None
    try:
        ndir = tmp_path / "nginx"
        ndir.mkdir()
        port_a, port_b = free_port(), free_port()
        with open(str(ndir / "nginx.conf"), "w") as f:
            f.write(NGINX_TWO.format(module=amb.module, dir=ndir,
                                     redis=amb.redis_address,
                                     secret=amb.secret,
                                     port_a=port_a, port_b=port_b))
        env = dict(os.environ)
        if amb.asan:                # as stack.py starts it
            env["LD_PRELOAD"] = subprocess.run(
                ["gcc", "-print-file-name=libasan.so"], stdout=subprocess.PIPE,
                check=True).stdout.decode().strip()
            env.setdefault("ASAN_OPTIONS", "detect_leaks=0:abort_on_error=0")
        nginx = subprocess.Popen([NGINX, "-p", str(ndir), "-c",
                                  str(ndir / "nginx.conf"), "-e",
                                  str(ndir / "error.log"), "-g",
                                  "daemon off;"], env=env,
                                 stderr=open(str(ndir / "stderr"), "w"))

        def call(port, method, path, token=None, json_body=None, key=None):
            h = {"Content-Type": "application/json"}
            if token:
                h["Authorization"] = "Bearer " + token
            if key:
                h["Idempotency-Key"] = key
            cn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            try:
                cn.request(method, path, headers=h, body=json.dumps(
                    json_body) if json_body is not None else None)
                r = cn.getresponse()
                return r.status, r.read()
            except OSError:
                return 0, b""
            finally:
                cn.close()

        def activities(port):
            st, body = call(port, "GET", "/api/activities",
                            token=amb.token("f1"))
            return st == 200 and json.loads(body)

        wait_until("both towns served", lambda: activities(port_a)
                   and activities(port_b))
        tok_a = amb.token("f1")
        tok = amb.ctl_run("-c", conf, "token", "f1", conf=False).strip()
        st, me_a = call(port_a, "GET", "/api/me", token=tok_a)
        assert json.loads(me_a)["town"] == "Tenantville"
        st, me_b = call(port_b, "GET", "/api/me", token=tok)
        assert st == 200 and json.loads(me_b)["town"] == "Belley"
        # tokens name their town: each block refuses the other's
        assert call(port_b, "GET", "/api/me", token=tok_a)[0] == 401
        assert call(port_a, "GET", "/api/me", token=tok)[0] == 401

        # the same session id in both towns: separate counters
        r = amb.redis
        left = {t: r.execute_command("BITFIELD", "{%s}:s:t-APM:left" % t,
                                     "GET", "u32", "0")[0]
                for t in ("amberieu", "belley")}
        st, body = call(port_b, "POST", "/api/bookings", token=tok,
                        key=uuid.uuid4().hex,
                        json_body={"items": [{"child_id": "f1-c1",
                                              "session_id": "t-APM"}]})
        assert st == 200 and json.loads(body)["items"][0]["status"] \
            == "confirmed", body
        assert r.execute_command("BITFIELD", "{belley}:s:t-APM:left", "GET",
                                 "u32", "0")[0] == left["belley"] - 1
        assert r.execute_command("BITFIELD", "{amberieu}:s:t-APM:left",
                                 "GET", "u32", "0")[0] == left["amberieu"]
        assert r.hlen("{belley}:f:f1:bookings") == 1
        # belley's worker persists belley's stream into belley's database
        wait_until("persisted in guichet_belley",
                   lambda: _count(amb, "guichet_belley") == 1)
        # and the metrics of belley's block read belley's stream
        st, m = call(port_b, "GET", "/metrics")
        assert st == 200 and re.search(
            rb"^guichet_stream_length 1$", m, re.M), m
        log = open(str(ndir / "error.log")).read()
        assert not BAD_LOG.search(log), log
    finally:
        # both stopped whatever failed (killed past 10 s), nginx's start
        # included: a failure before left belley's worker running
        if nginx is not None:
            amb._end(nginx, signal.SIGQUIT, 10)
        amb._end(worker, signal.SIGTERM, 10)
    log = open(str(ndir / "error.log")).read() + open(
        str(ndir / "stderr")).read()
    assert not BAD_LOG.search(log), log


def _count(s, db):
    c = psycopg2.connect(host=s.pg_socket, port=s.pg_port, user="postgres",
                         dbname=db)
    try:
        cur = c.cursor()
        cur.execute("select count(*) from booking where status = "
                    "'confirmed'")
        return cur.fetchone()[0]
    finally:
        c.close()


def test_old_keys_written_again_after_the_rename_are_merged(make_stack):
    """An nginx of the old layout still answering after a first pass
    writes old keys again: the stream's entries join the new stream, the
    demande counter keeps the larger value (no number given twice), any
    other key whose new name is taken is left as it is (nothing lost)."""
    s = make_stack(town(), name="tenant-merge")
    r = s.redis
    tok = login(s, "fam1")
    assert book(s, tok, "t-MATIN").status == 200
    s.wait_worker_drained()
    s._end(s.procs.pop("worker"), signal.SIGTERM, 10)

    seq = int(r.get("{main}:seq:demande"))
    length = r.xlen("{main}:stream")
    logins = r.hgetall("{main}:logins")
    assert logins
    r.set("gch:seq:demande", seq + 40)
    r.xadd("gch:bookings", {"d": '{"type":"late"}'})
    r.hset("gch:logins", "ghost", "f-ghost x")

    assert s.ctl_run("migrate-keys").startswith("2 keys renamed")

    assert int(r.get("{main}:seq:demande")) == seq + 40
    assert r.xlen("{main}:stream") == length + 1
    assert r.xrevrange("{main}:stream", count=1)[0][1] == {
        "d": '{"type":"late"}'}
    assert not r.exists("gch:seq:demande", "gch:bookings")
    # kept: both as they were
    assert r.hgetall("gch:logins") == {"ghost": "f-ghost x"}
    assert r.hgetall("{main}:logins") == logins
    # the demande counter never goes back: lower old values lose
    r.set("gch:seq:demande", 3)
    assert s.ctl_run("migrate-keys").startswith("1 key renamed")
    assert int(r.get("{main}:seq:demande")) == seq + 40
