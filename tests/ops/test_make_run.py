"""test_make_run.py -- the operators' commands on a real stack (issue 17).

`make run` is scripts/run.sh; here it runs with GUICHET_VAR (a temporary
state directory) and free ports, never the developer's var/ or the fixed
ports of make run, exactly as a user runs it otherwise: the first run loads
a small town of our own (GUICHET_TOWN, the database is empty), the later
ones are plain reruns.  What a user would notice:

* running it again over a loaded town keeps every family and booking (the
  token still works, GET /api/bookings still lists the booking);
* running it again during a booking rush cuts no connection, also when the
  module was rebuilt (the binary upgrade) or the configuration changed (a
  reload): zero socket-level errors on keep-alive clients;
* guichetctl without -c finds the stack's settings (GUICHET_CONF, or the
  checkout's var/worker.conf beside its build/) and names the file it used
  when it cannot connect;
* guichetctl, the worker and run.sh wait while Redis loads a large AOF:
  one progress line, not one error per command;
* load-town refuses another town, or a file dropping a family that has
  bookings, unless --replace.

No timing is asserted (the machine is shared).  GUICHET_OPS_RUNSH names
another run.sh (to show that the old one fails these tests).
"""

import http.client
import json
import os
import re
import select
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, "build")
CTL = os.path.join(BUILD, "guichetctl")
MODULE = os.path.join(BUILD, "ngx_http_guichet_module.so")
RUNSH = os.environ.get("GUICHET_OPS_RUNSH",
                       os.path.join(ROOT, "scripts", "run.sh"))
STOPSH = os.path.join(ROOT, "scripts", "stop.sh")
NEEDED = [MODULE, CTL, os.path.join(BUILD, "guichet-worker"),
          os.path.join(BUILD, "guichet-office")]

pytestmark = pytest.mark.skipif(
    not all(os.path.exists(f) for f in NEEDED),
    reason="the stack is not built (make build)")

FAMILIES = 12
SESSIONS = ["s%d" % i for i in range(1, 7)]
DAY = "2027-07-08"


def town(name="Opsville", families=FAMILIES):
    """families f-01.. (one child c-01.. each) enrolled in "centre",
    whose sessions s1..s6 (one per unit) have places for all."""
    units = [{"code": "U%d" % i, "label": "Créneau %d" % i,
              "starts": "%02d:00" % (8 + i), "ends": "%02d:00" % (9 + i)}
             for i in range(len(SESSIONS))]
    fams = []
    for i in range(1, families + 1):
        fid, cid = "f-%02d" % i, "c-%02d" % i
        fams.append({
            "id": fid, "qf": 500, "resident": True, "direct_debit": False,
            "children": [{"id": cid, "first_name": "Enfant%d" % i,
                          "birth_date": "2018-03-01"}],
            "enrolments": [{"child_id": cid, "activity_id": "centre",
                            "from": "2027-07-01", "to": "2027-08-31",
                            "status": "validee"}]})
    return {
        "town": {"name": name, "timezone": "Europe/Paris"},
        "units": units,
        "activities": [{
            "id": "centre", "name": "Centre de loisirs", "age_min": 3,
            "age_max": 11, "booking_opens_at": "2026-11-01T18:00:00+01:00",
            "deadline": {"working_days": 2}, "online_share_percent": 100,
            "week_required": False,
            "prices": [{"qf_max": None, "cents": 400}],
            "sessions": [{"id": sid, "date": DAY, "unit": "U%d" % i,
                          "places": 1000}
                         for i, sid in enumerate(SESSIONS)]}],
        "families": fams,
    }


sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "integration"))
from stack import free_port  # noqa: E402 -- below the ephemeral range


def wait_for(what, pred, timeout=60, step=0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(step)
    raise AssertionError("timed out waiting for " + what)


class Ops:
    """One stack started by run.sh in a temporary state directory."""

    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="gch-ops-")
        os.chmod(self.tmp, 0o755)
        self.var = os.path.join(self.tmp, "var")
        self.port = free_port()
        self.redis_port = free_port()
        self.pg_port = free_port()
        self.paysim_port = free_port()
        self.town_file = os.path.join(self.tmp, "opsville.json")
        with open(self.town_file, "w") as f:
            json.dump(town(), f)
        self.conf = os.path.join(self.var, "worker.conf")

    def env(self, **extra):
        e = dict(os.environ)
        for k in ("GUICHET_TOWN", "GUICHET_CONF", "GUICHET_MODULE"):
            e.pop(k, None)
        e.update(GUICHET_VAR=self.var, GUICHET_PORT=str(self.port),
                 GUICHET_REDIS_PORT=str(self.redis_port),
                 GUICHET_PG_PORT=str(self.pg_port),
                 GUICHET_PAYSIM_PORT=str(self.paysim_port))
        e.update(extra)
        return e

    def run_sh(self, **extra):
        """Runs run.sh (stdout not a terminal); its output (str)."""
        r = subprocess.run(["bash", RUNSH], cwd=ROOT, env=self.env(**extra),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=300)
        out = r.stdout.decode(errors="replace")
        sys.stdout.write("--- run.sh ---\n" + out)
        assert r.returncode == 0, out[-3000:]
        return out

    def stop(self):
        subprocess.run([STOPSH], env=self.env(), stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=120)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def ctl(self, *args, env=None, check=True, binary=CTL, conf=True,
            **kw):
        """guichetctl -c var/worker.conf ARGS; without it (conf=False) in
        env (default: no GUICHET_CONF)."""
        e = self.env() if env is None else env
        argv = [binary] + (["-c", self.conf] if conf else []) + list(args)
        r = subprocess.run(argv, env=e, cwd="/",
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=120, **kw)
        r.out = r.stdout.decode(errors="replace")
        r.err = r.stderr.decode(errors="replace")
        if check:
            assert r.returncode == 0, "guichetctl %s: %d\n%s%s" % (
                " ".join(args), r.returncode, r.out, r.err)
        return r

    def psql(self, sql):
        argv = ["psql", "-h", os.path.join(self.var, "pg", "run"), "-p",
                str(self.pg_port), "-U", "postgres", "-d", "guichet", "-X",
                "-q", "-tA", "-c", sql]
        return subprocess.run(argv, check=True, stdout=subprocess.PIPE,
                              timeout=60).stdout.decode().strip()

    def redis_cli(self, *args):
        return subprocess.run(["redis-cli", "-p", str(self.redis_port)]
                              + list(args), stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL,
                              timeout=60).stdout.decode()

    def token(self, fid):
        return self.ctl("token", fid).out.strip()

    def http(self, method, path, token=None, body=None, headers=None):
        h = dict(headers or {})
        if token:
            h["Authorization"] = "Bearer " + token
        if body is not None:
            body = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            data = r.read()
            return r.status, (json.loads(data) if data.startswith(b"{")
                              or data.startswith(b"[") else data)
        finally:
            c.close()

    def nginx_master(self):
        with open(os.path.join(self.var, "nginx", "nginx.pid")) as f:
            return int(f.read().strip())


@pytest.fixture(scope="module")
def ops():
    o = Ops()
    try:
        out = o.run_sh(GUICHET_TOWN=o.town_file)
        o.first_output = out
        yield o
    finally:
        o.stop()


def book(o, fid, sid, key=None):
    cid = "c-" + fid[2:]
    return o.http("POST", "/api/bookings", token=o.token(fid),
                  body={"items": [{"child_id": cid, "session_id": sid}]},
                  headers={"Idempotency-Key": key or uuid.uuid4().hex})


def listed(o, tok):
    st, body = o.http("GET", "/api/bookings?from=2027-07-01&to=2027-07-31",
                      token=tok)
    assert st == 200, (st, body)
    return body


def booked_sessions(body):
    """The session ids of the confirmed bookings GET /api/bookings lists."""
    text = json.dumps(body)
    return set(re.findall(r'"session_id": "([^"]+)"', text)) \
        if '"confirmed"' in text else set()


# --- make run again over a loaded town ---------------------------------------

def test_first_run_loads_our_town_and_prints_a_guichetctl_example(ops):
    assert ops.psql("select name from town") == "Opsville"
    assert int(ops.psql("select count(*) from family")) == FAMILIES
    assert re.search(r"guichetctl check", ops.first_output), \
        ops.first_output
    assert oct(os.stat(ops.conf).st_mode & 0o777) == "0o600"


def test_run_again_keeps_the_town_its_families_and_bookings(ops):
    tok = ops.token("f-01")
    st, body = book(ops, "f-01", "s1")
    assert st == 200, body
    assert body["items"][0]["status"] == "confirmed", body
    wait_for("the booking persisted in PostgreSQL", lambda: ops.psql(
        "select count(*) from booking where family_id = 'f-01'") == "1")
    assert "s1" in booked_sessions(listed(ops, tok))
    secret = open(os.path.join(ops.var, "secret.key")).read()
    conf_mtime = os.stat(ops.conf).st_mtime_ns

    out = ops.run_sh()                   # as a user does: no GUICHET_TOWN

    assert ops.psql("select name from town") == "Opsville", out
    assert int(ops.psql("select count(*) from family")) == FAMILIES
    assert ops.psql("select count(*) from booking where family_id = 'f-01'"
                    " and status = 'confirmed'") == "1"
    # the family's token still works, its booking is still listed
    assert "s1" in booked_sessions(listed(ops, tok))
    # the secret and the settings are kept as they were
    assert open(os.path.join(ops.var, "secret.key")).read() == secret
    assert os.stat(ops.conf).st_mtime_ns == conf_mtime
    assert "nginx: stopped" not in out


BELLERIVE = {"Host": "bellerive.localhost"}


def every_worker_holds(ops, town="main"):
    """Every nginx worker of make run's stack holds the town's catalogue
    generation Redis holds, or a newer one (/metrics'
    guichet_catalogue_generation: each worker reloads on its own)."""
    gen = int(ops.redis_cli("get", "{%s}:catalogue:gen" % town).strip()
              or 0)
    st, text = ops.http("GET", "/metrics")
    held = re.findall(r'^guichet_catalogue_generation\{town="%s",'
                      r'worker="\d+",pid="\d+"\} (\d+)$' % re.escape(town),
                      text.decode() if st == 200 else "", re.M)
    return gen > 0 and bool(held) and min(int(g) for g in held) >= gen


def test_a_second_town_on_its_own_host_name_kept_by_a_rerun(ops):
    """make run serves a second demo town (demo/bellerive.json) beside
    ours, from the same database, worker and office, on the host name
    bellerive.localhost: its own logins, catalogue and bookings; a rerun
    keeps it; 127.0.0.1 still serves our town."""
    assert "bellerive.localhost:%d" % ops.port in ops.first_output
    st, body = ops.http("POST", "/api/session", headers=BELLERIVE,
                        body={"login": "martin", "password": "secret-demo"})
    assert st == 200, body
    tok = body["token"]
    assert tok.startswith("v4.bellerive.")
    st, me = ops.http("GET", "/api/me", token=tok, headers=BELLERIVE)
    assert st == 200 and me["town"] == "Bellerive-sur-Allier", me
    # our town's server refuses bellerive's token, and knows no martin
    assert ops.http("GET", "/api/me", token=tok)[0] == 401
    st, me = ops.http("GET", "/api/me", token=ops.token("f-01"))
    assert st == 200 and me["town"] == "Opsville"
    st, body = ops.http("POST", "/api/bookings", token=tok,
                        headers=dict(BELLERIVE, **{
                            "Idempotency-Key": uuid.uuid4().hex}),
                        body={"items": [{"child_id": "c-lea",
                                         "session_id":
                                         "alsh-bourg-20270707-MATIN"}]})
    assert st == 200 and body["items"][0]["status"] == "confirmed", body
    wait_for("bellerive's booking persisted", lambda: ops.psql(
        "select count(*) from town_bellerive.booking") == "1")
    # its back office (admin / secret-demo)
    st, body = ops.http("POST", "/api/staff/session", headers=BELLERIVE,
                        body={"login": "admin", "password": "secret-demo"})
    assert st == 200 and body["token"].startswith("v3.bellerive."), body

    out = ops.run_sh()

    assert "already loaded, kept" in out
    assert ops.psql("select name from town_bellerive.town") == \
        "Bellerive-sur-Allier"
    assert ops.psql("select count(*) from town_bellerive.booking"
                    " where status = 'confirmed'") == "1"
    assert ops.http("GET", "/api/me", token=tok,
                    headers=BELLERIVE)[0] == 200
    assert ops.psql("select name from town") == "Opsville"
    assert sorted(ops.psql("select id from public.platform_town")
                  .split()) == ["bellerive", "main"]


def to_old(name):
    """The name a key of town main had before towns (the inverse of
    backend/migrate.c)."""
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


def redis_keys(o):
    return sorted(k for k in o.redis_cli("--scan").split("\n") if k)


def test_run_again_over_the_layout_before_towns_keeps_everything(ops):
    """A Redis left by the make run before towns (keys gch:*, {f:*, {s:*,
    {c:*; its worker stopped) and the new make run: every key renamed to
    town main's, the same bookings, demandes, token, idempotency record
    and connection history served."""
    tok = ops.token("f-02")
    key = uuid.uuid4().hex
    st, first = book(ops, "f-02", "s2", key)
    assert st == 200 and first["items"][0]["status"] == "confirmed", first
    wait_for("the booking persisted in PostgreSQL", lambda: ops.psql(
        "select count(*) from booking where family_id = 'f-02'") == "1")
    before = (listed(ops, tok),
              ops.http("GET", "/api/requests", token=tok))
    tokens = ops.redis_cli("zrange", "{main}:f:f-02:tokens", "0", "-1")
    assert tokens.strip(), "guichetctl token records the token"

    subprocess.run([STOPSH, "worker"], env=ops.env(), check=True,
                   stdout=subprocess.DEVNULL)
    for k in redis_keys(ops):
        if k.startswith("{bellerive}:"):
            continue        # make run's second town: of the new layout
        assert k.startswith("{main}:"), k
        ops.redis_cli("rename", k, to_old(k))
    assert ops.redis_cli("exists", "gch:bookings", "gch:catalogue",
                         "{f:f-02}:bookings").strip() == "3"

    out = ops.run_sh()

    assert [k for k in redis_keys(ops)
            if not k.startswith(("{main}:", "{bellerive}:"))] == [], out
    # every nginx worker reads the catalogue again (fresh connections land
    # on either): waited for on /metrics, eight answers in a row may all
    # come from one worker
    wait_for("the catalogue in every nginx worker",
             lambda: every_worker_holds(ops))
    assert ops.redis_cli("zrange", "{main}:f:f-02:tokens", "0",
                         "-1") == tokens
    assert (listed(ops, tok),
            ops.http("GET", "/api/requests", token=tok)) == before
    st, again = book(ops, "f-02", "s2", key)
    assert st == 200 and again == first, again
    # the worker goes on with the same stream: a new booking is persisted
    st, body = book(ops, "f-02", "s3")
    assert body["items"][0]["status"] == "confirmed", body
    wait_for("the new booking persisted", lambda: ops.psql(
        "select count(*) from booking where family_id = 'f-02'") == "2")


def test_run_again_over_two_counter_keys_a_session_keeps_both(ops):
    """A Redis left by the make run before one counter key a session (a
    4-byte {T}:s:<sid>:left, the on-site quota in its own 4-byte
    {T}:s:<sid>:onsite; its worker stopped), in both towns, and the new
    make run: every session's two counters as they were, in one 8-byte
    :left, no :onsite left (docs/architecture.md, *Upgrade from two
    counter keys a session*: guichetctl migrate-keys for the first town,
    the worker for both)."""
    subprocess.run([STOPSH, "worker"], env=ops.env(), check=True,
                   stdout=subprocess.DEVNULL)
    lefts = [k for k in redis_keys(ops)
             if re.match(r"^\{[^}]+\}:s:[^:]+:left$", k)]
    before = {}
    for k in lefts:
        both = ops.redis_cli("--raw", "BITFIELD", k, "GET", "u32", "0",
                             "GET", "u32", "32").split()
        before[k] = both
        ops.redis_cli("DEL", k)
        ops.redis_cli("BITFIELD", k, "SET", "u32", "0", both[0])
        ops.redis_cli("BITFIELD", k[:-len("left")] + "onsite", "SET", "u32",
                      "0", both[1])
    # both towns, and on-site places to keep (bellerive: 75 % online)
    assert {k.split("}")[0] for k in lefts} == {"{main", "{bellerive"}
    assert any(int(v[1]) > 0 for v in before.values()), before
    assert {ops.redis_cli("--raw", "STRLEN", k).strip()
            for k in lefts} == {"4"}

    out = ops.run_sh()

    wait_for("the on-site counters merged", lambda: not [
        k for k in redis_keys(ops) if k.endswith(":onsite")])
    assert {ops.redis_cli("--raw", "STRLEN", k).strip()
            for k in lefts} == {"8"}, out
    assert {k: ops.redis_cli("--raw", "BITFIELD", k, "GET", "u32", "0",
                             "GET", "u32", "32").split()
            for k in lefts} == before, out


# --- make run during a rush ----------------------------------------------------

class Rush:
    """Threads booking continuously on keep-alive connections, as browsers
    do.  A request that fails on a connection the server closed while it
    was idle (the keep-alive race every HTTP client retries, RFC 9112
    9.3.1) is retried once on a new connection; any other failure, and any
    failure on a new connection (refused, reset), is a socket error."""

    def __init__(self, o, threads=6):
        self.o = o
        self.stop_ev = threading.Event()
        self.lock = threading.Lock()
        self.errors = []
        self.answers = 0
        self.retried = 0
        self.tokens = {"f-%02d" % i: o.token("f-%02d" % i)
                       for i in range(2, 2 + threads)}
        self.threads = [threading.Thread(target=self._loop, args=(fid,),
                                         daemon=True)
                        for fid in self.tokens]

    def start(self):
        for t in self.threads:
            t.start()
        wait_for("the rush's first answers", lambda: self.answers >= 20)
        return self

    def answered_since(self, n, more=20):
        wait_for("%d more answers" % more, lambda: self.answers >= n + more)

    def stop(self):
        self.stop_ev.set()
        for t in self.threads:
            t.join(60)

    def _conn(self):
        return http.client.HTTPConnection("127.0.0.1", self.o.port,
                                          timeout=30)

    @staticmethod
    def _closed_by_peer(c):
        """The server closed this idle connection (EOF is readable)."""
        if c.sock is None:
            return False
        r, _, _ = select.select([c.sock], [], [], 0)
        return bool(r)

    def _loop(self, fid):
        cid = "c-" + fid[2:]
        c = self._conn()
        used = False
        i = 0
        while not self.stop_ev.is_set():
            i += 1
            body = json.dumps({"items": [{"child_id": cid, "session_id":
                                          SESSIONS[i % len(SESSIONS)]}]})
            h = {"Authorization": "Bearer " + self.tokens[fid],
                 "Content-Type": "application/json",
                 "Idempotency-Key": uuid.uuid4().hex}
            if used and self._closed_by_peer(c):
                c.close()
                c, used = self._conn(), False
            for attempt in (1, 2):
                try:
                    c.request("POST", "/api/bookings", body=body, headers=h)
                    r = c.getresponse()
                    r.read()
                except (OSError, http.client.HTTPException) as e:
                    c.close()
                    fresh = not used
                    c, used = self._conn(), False
                    if fresh or attempt == 2:
                        with self.lock:
                            self.errors.append(repr(e))
                        break
                    with self.lock:
                        self.retried += 1
                    continue
                used = not r.will_close
                if r.will_close:
                    c.close()
                    c = self._conn()
                with self.lock:
                    self.answers += 1
                break
        c.close()


def test_run_again_during_a_rush_cuts_no_connection(ops):
    rush = Rush(ops).start()
    try:
        # nothing changed: nginx left alone
        n = rush.answers
        out1 = ops.run_sh()
        rush.answered_since(n)

        # its configuration changed: a graceful reload
        with open(os.path.join(ops.var, "nginx", "nginx.conf"), "a") as f:
            f.write("# edited by hand\n")
        n = rush.answers
        out2 = ops.run_sh()
        rush.answered_since(n)

        # the module rebuilt since the master started: a binary upgrade
        master = ops.nginx_master()
        os.utime(MODULE)
        n = rush.answers
        out3 = ops.run_sh()
        rush.answered_since(n)
        wait_for("the old master gone", lambda: not os.path.exists(
            "/proc/%d" % master), 60)
    finally:
        rush.stop()
    print("answers %d, keep-alive retries %d, errors %d"
          % (rush.answers, rush.retried, len(rush.errors)))
    assert rush.errors == [], "%d socket errors: %s" % (
        len(rush.errors), rush.errors[:5])
    assert "nginx: already running" in out1, out1
    assert "reloaded" in out2, out2
    assert "upgraded" in out3, out3
    assert ops.nginx_master() != master
    for out in (out1, out2, out3):
        assert "nginx: stopped" not in out, out
    st, _ = ops.http("GET", "/api/health")
    assert st == 200


# --- guichetctl without -c -----------------------------------------------------

def test_guichetctl_finds_the_settings_without_c(ops, tmp_path):
    env = ops.env()                      # no GUICHET_CONF
    # GUICHET_CONF
    r = ops.ctl("check", env=ops.env(GUICHET_CONF=ops.conf), conf=False)
    assert "agree" in r.out, r.out + r.err
    # a checkout-like layout: <checkout>/build/guichetctl and
    # <checkout>/var/worker.conf, run from elsewhere (cwd /)
    checkout = tmp_path / "checkout"
    (checkout / "build").mkdir(parents=True)
    (checkout / "var").mkdir()
    binary = checkout / "build" / "guichetctl"
    shutil.copy(CTL, binary)
    shutil.copy(ops.conf, checkout / "var" / "worker.conf")
    r = ops.ctl("check", env=env, binary=str(binary), conf=False)
    assert "agree" in r.out, r.out + r.err
    r = ops.ctl("config", env=env, binary=str(binary), conf=False)
    assert "redis = 127.0.0.1:%d" % ops.redis_port in r.out, r.out


def test_guichetctl_names_its_settings_when_it_cannot_connect(ops,
                                                              tmp_path):
    dead = tmp_path / "dead.conf"
    dead.write_text("postgres = \"host=127.0.0.1 port=%d dbname=x "
                    "user=postgres connect_timeout=2\"\nredis = "
                    "127.0.0.1:%d\n" % (free_port(), free_port()))
    r = ops.ctl("check", env=ops.env(GUICHET_CONF=str(dead)), check=False,
                conf=False)
    assert r.returncode != 0
    assert "cannot connect to postgres" in r.err, r.err
    assert str(dead) in r.err, r.err

    # no settings file at all: it says so
    lone = tmp_path / "lone" / "bin"
    lone.mkdir(parents=True)
    shutil.copy(CTL, lone / "guichetctl")
    env = ops.env()
    env.pop("GUICHET_CONF", None)
    r = ops.ctl("check", env=env, check=False,
                binary=str(lone / "guichetctl"), conf=False)
    assert r.returncode != 0
    assert "no settings file" in r.err, r.err


# --- Redis loading its data after a restart -----------------------------------

def fill_and_restart_redis(o, keys=40000, delay_us=20):
    """Fills the stack's Redis with junk keys, compacts its AOF (an RDB
    preamble, which key-load-delay slows down), then restarts it on that
    AOF, slowed by key-load-delay (a sleep of delay_us microseconds per
    key): it answers LOADING for a few seconds, as it does for minutes on
    a large AOF.  It serves clients every 32 KiB loaded (2 MiB by default:
    it would answer once in this small file, as it answers every 2 MiB of
    a large one).  Returns once it answers LOADING."""
    import redis
    r = redis.Redis(port=o.redis_port)
    if r.dbsize() < keys:
        pipe = r.pipeline(transaction=False)
        for i in range(keys):
            pipe.set("ops:junk:%d" % i, "x" * 64)
            if i % 5000 == 4999:
                pipe.execute()
        pipe.execute()
    r.bgrewriteaof()
    wait_for("the AOF rewrite", lambda: r.info("persistence")
             ["aof_rewrite_in_progress"] == 0
             and r.info("persistence")["aof_rewrite_scheduled"] == 0)
    subprocess.run([STOPSH, "redis"], env=o.env(), check=True,
                   stdout=subprocess.DEVNULL)
    subprocess.run(["redis-server",
                    os.path.join(ROOT, "lua-free-config", "redis.conf"),
                    "--bind", "127.0.0.1", "--port", str(o.redis_port),
                    "--dir", os.path.join(o.var, "redis"),
                    "--daemonize", "yes", "--pidfile",
                    os.path.join(o.var, "redis", "redis.pid"),
                    "--logfile", os.path.join(o.var, "log", "redis.log"),
                    "--key-load-delay", str(delay_us),
                    "--loading-process-events-interval-bytes", "32768"],
                   check=True)
    wait_for("Redis loading", lambda: "loading:1" in o.redis_cli(
        "info", "persistence"), 30, step=0.01)


def loading_lines(text):
    return [ln for ln in text.splitlines() if "loading" in ln.lower()]


def test_guichetctl_waits_for_redis_loading_its_data(ops):
    worker_log = os.path.join(ops.var, "log", "worker.log")
    before = os.path.getsize(worker_log)
    fill_and_restart_redis(ops)
    r = ops.ctl("publish", check=False)
    print(r.err)
    assert r.returncode == 0, r.err
    assert "loading:0" in ops.redis_cli("info", "persistence")
    lines = loading_lines(r.err)
    assert len(lines) == 1, r.err[-2000:]     # one progress line
    assert "waiting" in lines[0], lines
    assert "LOADING" not in r.err, r.err[-2000:]
    # the worker waited too, without one error line per attempt, and is
    # connected again (its heartbeat is back)
    wait_for("the worker's heartbeat", lambda: ops.redis_cli(
        "get", "{main}:worker:heartbeat").strip() != "", 60)
    with open(worker_log, errors="replace") as f:
        f.seek(before)
        log = f.read()
    assert "LOADING" not in log, log[-2000:]
    assert len(loading_lines(log)) <= 2, log[-2000:]


def test_run_again_waits_for_redis_loading_its_data(ops):
    fill_and_restart_redis(ops)
    out = ops.run_sh()
    assert "redis: already running" in out, out
    assert "nginx: already running" in out, out
    assert "LOADING" not in out, out[-3000:]
    lines = loading_lines(out)
    assert len(lines) == 1 and "waiting" in lines[0], out[-3000:]
    assert "loading:0" in ops.redis_cli("info", "persistence")
    st, _ = ops.http("GET", "/api/health")
    assert st == 200


# --- load-town of another town --------------------------------------------------

def test_load_town_refuses_another_town_unless_replace(ops, tmp_path):
    families = ops.psql("select count(*) from family")
    catalogue = ops.psql("select version from catalogue")
    demo = os.path.join(ROOT, "demo", "amberieu.json")

    r = ops.ctl("load-town", demo, check=False)
    assert r.returncode == 1, r.out + r.err
    assert "refused" in r.err and "--replace" in r.err, r.err
    assert "Opsville" in r.err, r.err
    assert ops.psql("select name from town") == "Opsville"
    assert ops.psql("select count(*) from family") == families
    assert ops.psql("select version from catalogue") == catalogue

    # the same town dropping f-01, which has a booking
    t = town()
    t["families"] = [f for f in t["families"] if f["id"] != "f-01"]
    dropping = tmp_path / "dropping.json"
    dropping.write_text(json.dumps(t))
    r = ops.ctl("load-town", str(dropping), check=False)
    assert r.returncode == 1, r.out + r.err
    assert "f-01" in r.err and "refused" in r.err, r.err
    assert ops.psql("select count(*) from family") == families

    # the same town updated (one more family): loads as it always did
    grown = tmp_path / "grown.json"
    grown.write_text(json.dumps(town(families=FAMILIES + 1)))
    r = ops.ctl("load-town", str(grown))
    assert "loaded" in r.out, r.out
    assert int(ops.psql("select count(*) from family")) == FAMILIES + 1

    # --replace: the other town is loaded
    r = ops.ctl("load-town", demo, "--replace")
    assert "loaded" in r.out, r.out
    assert ops.psql("select name from town") == "Ambérieu-en-Bugey"
    # bookings are never deleted
    assert ops.psql("select count(*) from booking where family_id = 'f-01'"
                    ) == "1"
