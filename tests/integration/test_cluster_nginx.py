"""test_cluster_nginx.py -- the nginx module on a real Redis Cluster
(issue 21): 3 masters, 3 replicas (tests/integration/cluster.py), a whole
Guichet on it (ClusterStack: guichetctl, the worker, nginx with
guichet_redis_cluster and guichet_redis_wait_replicas at its default, 1)
and a second nginx instance on another port serving the same town.

* bookings go to the master of the town's slot (nothing elsewhere), and
  both instances see them; a second town, whose slot is on another
  master, books there (its own Guichet on the same cluster);
* idempotency, logout revocation and the login lock-out hold across the
  two instances, and so does the sold-out cache's staleness bound
  (guichet_full_cache): a place freed through one instance is sold by the
  other, whose cache had the session full, once the bound has passed;
* the town's slot moved to another master during a rush (MOVED): every
  answer is 2xx or 503 with Retry-After, every confirmed booking is
  there afterwards, no place sold twice, and bookings go on;
* a migration half done (ASK): the module follows ASK (ASKING, then the
  step on the target) for the steps of one key, answers 503 with
  Retry-After for those Redis refuses with TRYAGAIN (several keys, some
  not moved yet), never a wrong answer; once the slot is moved, bookings
  go on;
* the replica of the town's master paused (SIGSTOP): a booking answers
  503 not_replicated, its retry with the same key the replay.

tests/fault/test_cluster_faults.py adds kill -9 of the master, CLUSTER
FAILOVER and kill -9 of the replica.
"""

import collections
import concurrent.futures
import os
import signal
import sys
import tempfile
import threading
import time
import uuid

import http.client
import json as jsonlib

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from cluster import ClusterStack, RedisCluster, key_slot  # noqa: E402
from stack import DEMO_TOWN  # noqa: E402

TOWN_TAG = "{main}"
ACTIVITY = "klub-8-12"
RANGE = "?from=2027-07-01&to=2027-07-31"


class ClusterFront(ClusterStack):
    """A second nginx instance on the cluster beside a whole Guichet
    (ClusterStack), serving the same town with its secret: only nginx."""

    def __init__(self, setup, cluster, name):
        super().__init__(cluster, town=setup.town, name=name,
                         town_id=setup.town_id)
        self.setup = setup

    def start(self):
        self.dir = tempfile.mkdtemp(prefix="guichet-%s-" % self.name)
        os.chmod(self.dir, 0o755)
        self.secret = self.setup.secret
        try:
            self._start_nginx()
            wait_catalogue(self)
        except BaseException:
            self.stop()
            raise
        return self


def wait_catalogue(front, timeout=20):
    def ok():
        try:
            return front.http("GET", "/api/activities/%s/sessions%s"
                              % (ACTIVITY, RANGE)).status == 200
        except OSError:
            return False
    front._wait("the catalogue from the cluster", ok, timeout)


class FaultClusterStack(ClusterStack):
    """ClusterStack whose worker reaps a dead attempt after 3 s (the
    matrix's settings, tests/fault/matrix.py): after a failover the
    attempts the old master's death cut off settle within the test."""

    def ctl_run(self, *args, conf=True):
        if args and args[0] == "migrate":
            with open(self.worker_conf, "a") as f:
                f.write("reap_after_ms = 3000\nclaim_idle_ms = 3000\n")
        return super().ctl_run(*args, conf=conf)

    def wait_settled(self, timeout=60):
        """No attempt in flight ({T}:inflight empty), the stream drained."""
        key = "{%s}:inflight" % self.town_id
        deadline = time.monotonic() + timeout
        while self.redis.zcard(key):
            assert time.monotonic() < deadline, "attempts never settled"
            time.sleep(0.2)
        self.wait_worker_drained(timeout)


@pytest.fixture(scope="module")
def env():
    """A 3-master 3-replica cluster, a whole Guichet on it (its nginx is
    the first instance) and a second nginx instance."""
    cluster = RedisCluster(masters=3, replicas=1).start()
    setup = b = None
    try:
        setup = FaultClusterStack(cluster, town=DEMO_TOWN,
                                  name="cluster-a").start()
        wait_catalogue(setup)
        b = ClusterFront(setup, cluster, "cluster-b").start()
        yield setup, cluster, [setup, b]
        errors = []
        for f in (setup, b):
            try:
                f.assert_clean_error_log()
            except AssertionError as e:
                errors.append(str(e))
        assert not errors, "\n".join(errors)
    finally:
        if b:
            b.stop()
        if setup:
            setup.stop()
        for n in cluster.nodes:
            if n.alive():
                n.proc.send_signal(signal.SIGCONT)
        cluster.stop()


@pytest.fixture(scope="module")
def toks(env):
    return env[0].tokens()


@pytest.fixture(scope="module")
def town2(env):
    """A second town, whose hash tag's slot is on another master than
    {main}'s: a whole Guichet of its own on the same cluster (guichetctl
    and the worker with town = tN, nginx with guichet_town tN)."""
    _, cluster, _ = env
    home = cluster.master_of(TOWN_TAG)
    tid = next("t%d" % i for i in range(2, 200)
               if cluster.master_of("{t%d}" % i) is not home)
    with open(DEMO_TOWN) as f:
        town = jsonlib.load(f)
    town["town"]["id"] = tid
    st = ClusterStack(cluster, town=town, town_id=tid,
                      name="cluster-" + tid)
    try:
        st.start()
        wait_catalogue(st)
        yield tid, st, st
        st.assert_clean_error_log()
    finally:
        st.stop()


def key():
    return "c-" + uuid.uuid4().hex


def book(front, tok, sid, child, idem=None):
    return front.http("POST", "/api/bookings", token=tok,
                      headers={"Idempotency-Key": idem or key()},
                      json={"items": [{"child_id": child,
                                       "session_id": sid}]})


def sessions(front):
    r = front.http("GET", "/api/activities/%s/sessions%s" % (ACTIVITY, RANGE))
    assert r.status == 200, r
    return {x["session_id"]: x for x in r.json()}


def planning(front, tok):
    r = front.http("GET", "/api/bookings" + RANGE, token=tok)
    assert r.status == 200, r
    return r.json()["bookings"]


def redirects(fronts):
    """guichet_redis_redirects_total of every instance: {kind: n}."""
    out = {"moved": 0, "ask": 0}
    for f in fronts:
        r = f.http("GET", "/metrics")
        assert r.status == 200, r
        for line in r.body.decode().splitlines():
            if line.startswith("guichet_redis_redirects_total{"):
                kind = line.split('"')[1]
                out[kind] += int(line.split()[-1])
    return out


def assert_503(r):
    assert r.status == 503, r
    assert r.json()["error"]["code"] in ("unavailable", "not_replicated"), r
    assert r.headers.get("retry-after"), r


FAMILIES = [("f-martin", "c-lea"), ("f-martin", "c-hugo"),
            ("f-bernard", "c-chloe"), ("f-bernard", "c-noah"),
            ("f-nguyen", "c-ines"), ("f-nguyen", "c-sami")]


def rush(fronts, toks, sid, rounds=1, stop=None):
    """Every child of FAMILIES books sid through both fronts in turn;
    returns [(family, child, response)]."""
    out = []
    lock = threading.Lock()

    def one(i):
        fam, child = FAMILIES[i % len(FAMILIES)]
        front = fronts[i % len(fronts)]
        while True:
            r = book(front, toks[fam], sid, child)
            with lock:
                out.append((fam, child, r))
            if stop is None or stop.is_set():
                return
            time.sleep(0.01)

    with concurrent.futures.ThreadPoolExecutor(len(FAMILIES)) as ex:
        list(ex.map(one, range(len(FAMILIES) * rounds)))
    return out


def check_no_lost_no_oversell(fronts, toks, sid, answers):
    """Each confirmed 2xx is in its family's planning (on both fronts);
    places taken + left = online; a child has the session at most once."""
    confirmed = {}
    for fam, child, r in answers:
        assert r.status in (200, 409, 422, 429, 503), r
        if r.status == 503:
            assert_503(r)
        if r.status == 200:
            for it in r.json()["items"]:
                if it["status"] == "confirmed":
                    confirmed[it["booking_id"]] = (fam, child)
    for front in fronts:
        mine = {}
        for fam in {f for f, _ in FAMILIES}:
            for b in planning(front, toks[fam]):
                if b["session_id"] == sid:
                    mine[b["booking_id"]] = (fam, b["child_id"])
        for bid, who in confirmed.items():
            assert mine.get(bid) == who, ("a confirmed booking is lost",
                                          bid, who)
        children = [c for _, c in mine.values()]
        assert len(children) == len(set(children)), ("twice", mine)
        s = sessions(front)[sid]
        assert s["places_left"] + len(mine) == s["places_online"], (s, mine)
    return confirmed


# ----- routing --------------------------------------------------------------

def test_bookings_go_to_the_master_of_the_town(env, toks):
    setup, cluster, (a, b) = env
    fam, child = FAMILIES[0]
    r = book(a, toks[fam], "klub-0707-danse", child)
    assert r.status == 200, r
    assert r.json()["items"][0]["status"] == "confirmed", r.json()
    bid = r.json()["items"][0]["booking_id"]
    assert bid in [x["booking_id"] for x in planning(b, toks[fam])]
    home = cluster.master_of(TOWN_TAG)
    assert home.client().dbsize() > 0
    for m in cluster.masters_now():
        if m is not home:
            assert not m.client().keys(TOWN_TAG + "*"), m


def test_two_towns_book_on_two_masters(env, toks, town2):
    setup, cluster, (a, b) = env
    tid, setup2, front2 = town2
    home1 = cluster.master_of(TOWN_TAG)
    home2 = cluster.master_of("{%s}" % tid)
    assert home1 is not home2
    toks2 = setup2.tokens()
    fam, child = FAMILIES[0]
    sid = "klub-0709-jeux"
    before1 = {k for k in home1.client().keys("*")}
    r1 = book(a, toks[fam], sid, child)
    r2 = book(front2, toks2[fam], sid, child)
    for r in (r1, r2):
        assert r.status == 200, r
        assert r.json()["items"][0]["status"] == "confirmed", r.json()
    # each town's keys on its own master, and only there
    assert all(k.startswith(TOWN_TAG) for k in home1.client().keys("*"))
    assert all(k.startswith("{%s}" % tid) for k in home2.client().keys("*"))
    assert {k for k in home1.client().keys("*")} - before1
    # one town's token means nothing to the other's nginx
    assert front2.http("GET", "/api/me", token=toks[fam]).status == 401
    # each town's planning has its own booking
    assert [x["booking_id"] for x in planning(a, toks[fam])
            if x["session_id"] == sid] == [r1.json()["items"][0]
                                           ["booking_id"]]
    assert [x["booking_id"] for x in planning(front2, toks2[fam])
            if x["session_id"] == sid] == [r2.json()["items"][0]
                                           ["booking_id"]]


def test_an_idempotency_key_holds_across_instances(env, toks):
    _, _, (a, b) = env
    fam, child = FAMILIES[1]
    idem = key()
    r1 = book(a, toks[fam], "klub-0707-danse", child, idem)
    assert r1.status == 200, r1
    r2 = book(b, toks[fam], "klub-0707-danse", child, idem)
    assert r2.status == 200, r2
    assert r2.headers.get("idempotent-replayed") == "true", r2
    assert r2.json() == r1.json()


def test_the_sold_out_cache_is_bounded_across_instances(env, toks):
    """guichet_full_cache (200 ms in dev.conf) with two instances: once
    an instance saw a session full it refuses it from its cache (no
    request_id, nothing written); a place freed through the other
    instance is sold by it once the bound has passed (issue 21)."""
    setup, cluster, (a, b) = env
    sid = "klub-0707-jeux"                       # one place online
    (fam1, c1), (fam2, c2) = FAMILIES[0], FAMILIES[2]
    r = book(a, toks[fam1], sid, c1)
    assert r.status == 200, r
    assert r.json()["items"][0]["status"] == "confirmed", r.json()
    bid = r.json()["items"][0]["booking_id"]
    # refusals that reach Redis mark the session full in b's workers
    for _ in range(6):
        r = book(b, toks[fam2], sid, c2)
        assert r.status == 200, r
        assert [(it["status"], it.get("reason"))
                for it in r.json()["items"]] == [("refused", "full")], r
    home = cluster.master_of(TOWN_TAG).client()
    cached = 0
    for _ in range(20):
        before = (home.dbsize(), home.xlen(TOWN_TAG + ":stream"))
        r = book(b, toks[fam2], sid, c2)
        assert r.status == 200, r
        assert r.json()["items"][0]["reason"] == "full", r.json()
        if r.json()["request_id"] is None:
            cached += 1
            assert (home.dbsize(),
                    home.xlen(TOWN_TAG + ":stream")) == before
    assert cached > 0, "no refusal came from b's sold-out cache"
    # the place freed through a; b's cache is stale for at most 200 ms
    assert a.http("DELETE", "/api/bookings/" + bid,
                  token=toks[fam1]).status == 200
    time.sleep(0.3)
    r = book(b, toks[fam2], sid, c2)
    assert r.status == 200, r
    assert r.json()["items"][0]["status"] == "confirmed", r.json()
    assert [x["child_id"] for x in planning(a, toks[fam2])
            if x["session_id"] == sid] == [c2]


def test_logout_on_one_instance_is_refused_by_the_other(env):
    _, _, (a, b) = env
    r = a.http("POST", "/api/session",
               json={"login": "martin", "password": "secret-demo"})
    assert r.status == 200, r
    tok = r.json()["token"]
    assert b.http("GET", "/api/me", token=tok).status == 200
    assert a.http("DELETE", "/api/session", token=tok).status in (200, 204)
    # the worker process that ended it refuses it at once, every other
    # (of both instances) at its guichet_catalogue_refresh
    for front in (a, b):
        deadline = time.monotonic() + 10
        while front.http("GET", "/api/me", token=tok).status != 401:
            assert time.monotonic() < deadline, "the token still works"
            time.sleep(0.1)


def login_from(front, source, password):
    c = http.client.HTTPConnection("127.0.0.1", front.port, timeout=30,
                                   source_address=(source, 0))
    try:
        c.request("POST", "/api/session",
                  body=jsonlib.dumps({"login": "bernard",
                                      "password": password}),
                  headers={"Content-Type": "application/json"})
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def test_login_failures_count_across_instances(env):
    _, _, (a, b) = env
    src = "127.0.0.31"
    # GCH_LOGIN_FREE (5) failures, spread over both instances
    for i in range(5):
        st, body = login_from((a, b)[i % 2], src, "wrong-%d" % i)
        assert st == 401, body
    # the next, on either instance, is paced: even the right password
    st, body = login_from(a, src, "secret-demo")
    assert st == 429, body
    st, body = login_from(b, src, "secret-demo")
    assert st == 429, body


# ----- WAIT -----------------------------------------------------------------

def test_a_paused_replica_of_the_town_master_refuses_the_2xx(env, toks):
    _, cluster, (a, b) = env
    home = cluster.master_of(TOWN_TAG)
    replicas = cluster.replicas_of(home)
    assert replicas, "the town's master has no replica"
    fam, child = FAMILIES[2]
    idem = key()
    for rep in replicas:
        rep.proc.send_signal(signal.SIGSTOP)
    try:
        r = book(a, toks[fam], "klub-0708-danse", child, idem)
        assert_503(r)
        assert r.json()["error"]["code"] == "not_replicated", r
    finally:
        for rep in replicas:
            rep.proc.send_signal(signal.SIGCONT)
    deadline = time.monotonic() + 20
    while True:
        r = book(b, toks[fam], "klub-0708-danse", child, idem)
        if r.status == 200:
            break
        assert_503(r)
        assert time.monotonic() < deadline, r
        time.sleep(0.1)
    assert r.headers.get("idempotent-replayed") == "true", r
    assert r.json()["items"][0]["status"] == "confirmed", r.json()
    rows = [x for x in planning(a, toks[fam])
            if x["session_id"] == "klub-0708-danse"
            and x["child_id"] == child]
    assert len(rows) == 1, rows


# ----- MOVED and ASK --------------------------------------------------------

def test_moved_during_a_rush(env, toks):
    _, cluster, fronts = env
    sid = "klub-0709-jeux"
    slot = key_slot(TOWN_TAG)
    src = cluster.master_of(TOWN_TAG)
    dst = [m for m in cluster.masters_now() if m is not src][0]
    stop = threading.Event()
    answers = []
    before = redirects(fronts)

    def go():
        answers.extend(rush(fronts, toks, sid, stop=stop))
    t = threading.Thread(target=go)
    t.start()
    try:
        time.sleep(0.2)
        cluster.move_slot(slot, dst)
        time.sleep(0.3)
    finally:
        stop.set()
        t.join()
    assert cluster.master_of(TOWN_TAG) is dst
    print("MOVED rush:", collections.Counter(r.status for _, _, r in answers),
          redirects(fronts))
    check_no_lost_no_oversell(fronts, toks, sid, answers)
    # the rush met the migration (ASK) and its end (MOVED), and followed
    after = redirects(fronts)
    assert after["ask"] + after["moved"] > before["ask"] + before["moved"], \
        (before, after)
    assert any(r.status == 200 for _, _, r in answers), answers
    # after the move, both instances book on the new master
    fam, child = FAMILIES[3]
    for front in fronts:
        r = book(front, toks[fam], "klub-0712-cuisine", child)
        assert r.status == 200, r
        it = r.json()["items"][0]
        assert it["status"] == "confirmed" or \
            it.get("reason") == "already_booked", r.json()
    assert not src.client().keys(TOWN_TAG + "*")
    # the worker followed the move too: Redis and PostgreSQL agree
    env[0].wait_settled()
    env[0].ctl_run("check")


def test_ask_during_a_migration(env, toks):
    _, cluster, fronts = env
    a = fronts[0]
    slot = key_slot(TOWN_TAG)
    src = cluster.master_of(TOWN_TAG)
    dst = [m for m in cluster.masters_now() if m is not src][0]
    left_before = sessions(a)["klub-0713-grimpe"]["places_left"]
    before = redirects(fronts)
    cluster.begin_migration(slot, dst)
    try:
        # the catalogue's generation moves first: the refresher's GET of
        # it is answered ASK by the source, and followed
        srcc = src.client()
        gen = [k for k in srcc.keys(TOWN_TAG + ":catalogue:gen*")]
        assert gen, srcc.keys(TOWN_TAG + "*")[:20]
        srcc.execute_command("MIGRATE", "127.0.0.1", dst.port, "", 0, 5000,
                             "KEYS", *gen)
        # half of the other keys too
        ks = src.cmd("CLUSTER", "GETKEYSINSLOT", slot, 100000)
        half = ks[:len(ks) // 2]
        if half:
            srcc.execute_command("MIGRATE", "127.0.0.1", dst.port, "", 0,
                                 5000, "KEYS", *half)
        # the refresher (every guichet_catalogue_refresh) asks the source
        # for it, gets ASK, asks the target after ASKING
        deadline = time.monotonic() + 10
        while redirects(fronts)["ask"] < before["ask"] + 2:
            assert time.monotonic() < deadline, redirects(fronts)
            time.sleep(0.1)
        for front in fronts:
            r = front.http("GET", "/api/activities/%s/sessions%s"
                           % (ACTIVITY, RANGE))
            assert r.status in (200, 503), r
            if r.status == 503:
                assert_503(r)
        answers = rush(fronts, toks, "klub-0713-grimpe")
        print("ASK rush:", collections.Counter(
            (r.status, r.json().get("error", {}).get("code"))
            for _, _, r in answers), redirects(fronts))
        for _, _, r in answers:
            assert r.status in (200, 503), r
            if r.status == 503:
                assert_503(r)
    finally:
        while cluster.migrate_keys(slot, src, dst, 1000):
            pass
        cluster.end_migration(slot, dst)
    assert cluster.master_of(TOWN_TAG) is dst
    check_no_lost_no_oversell(fronts, toks, "klub-0713-grimpe", answers)
    fam, child = FAMILIES[4]
    r = book(a, toks[fam], "klub-0713-grimpe", child)
    assert r.status == 200, r
    assert sessions(a)["klub-0713-grimpe"]["places_left"] <= left_before
