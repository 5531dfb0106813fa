"""test_towns.py -- many towns on one platform (issue 21, second stage):
two towns in one stack -- one Redis, one PostgreSQL database, one
guichet-worker, one guichet-office, one nginx with a server block per town
(the second on the host name beta.localhost, lua-free-config/dev-town.conf).

Both towns use the same ids (family f1, child f1-c1, session t-APM, login
fam1): nothing collides.  A token names its town and the other town's
server refuses it (401); each town's logins, places, bookings, demandes and
office data are its own; the worker persists both towns into their own
schemas; guichetctl works on the town --town names.  And a database of the
layout before towns (tables in public) is moved into its town's schema by
guichetctl migrate, rows kept.
"""

import glob
import http.client
import json
import os
import subprocess
import time
import urllib.parse
import uuid

import psycopg2
import pytest

from stack import ROOT, Stack, StackError

DAY = "2027-07-07"


def town(town_id, name, password, places=2, enrolled_from="2026-01-01",
         only=None):
    """A small town: activity t, sessions t-MATIN and t-APM on DAY with
    `places` places (half online), families f1 and f2 (logins fam1, fam2)
    and, if given, a family `only` of this town alone."""
    fams = ["f1", "f2"] + ([only] if only else [])
    families = []
    for i, fid in enumerate(fams, 1):
        families.append({
            "id": fid, "login": "fam%d" % i if fid != only else only,
            "password": password, "qf": 500, "resident": True,
            "direct_debit": False,
            "children": [{"id": fid + "-c1", "first_name": "Enfant",
                          "birth_date": "2018-03-01"}],
            "enrolments": [{"child_id": fid + "-c1", "activity_id": "t",
                            "from": enrolled_from, "to": "2027-08-31",
                            "status": "validee"}]})
    return {
        "town": {"id": town_id, "name": name, "timezone": "Europe/Paris"},
        "units": [{"code": "MATIN", "label": "Matin", "starts": "08:30",
                   "ends": "12:00"},
                  {"code": "APM", "label": "Après-midi", "starts": "13:30",
                   "ends": "17:30"}],
        "activities": [{
            "id": "t", "name": "Centre", "age_min": 3, "age_max": 17,
            "booking_opens_at": "2026-01-01T18:00:00+01:00",
            "deadline": {"working_days": 2}, "online_share_percent": 50,
            "week_required": False,
            "prices": [{"qf_max": None, "cents": 500}],
            "sessions": [{"id": "t-%s" % u, "date": DAY, "unit": u,
                          "places": places} for u in ("MATIN", "APM")]}],
        "families": families}


class TwoTowns(Stack):
    town_id = "alpha"
    extra_towns = "beta"

    def _setup(self):
        super()._setup()
        # links in e-mails: each town's host name (the office starts later)
        with open(self.worker_conf, "a") as f:
            f.write("town_site_url = http://{town}.localhost:%d\n"
                    % self.port)


BETA = {"Host": "beta.localhost"}


def wait_until(what, ok, timeout=20):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if ok():
            return
        time.sleep(0.1)
    raise AssertionError("timed out waiting for " + what)


@pytest.fixture(scope="module")
def two():
    s = TwoTowns(town=town("alpha", "Alphaville", "secret-alpha",
                           only="fa-only"), name="towns")
    s.start()
    try:
        path = os.path.join(s.dir, "beta.json")
        with open(path, "w") as f:
            json.dump(town("beta", "Betacourt", "secret-beta", places=4,
                           enrolled_from="2026-02-01"), f)
        s.ctl_run("--town", "beta", "migrate")
        s.ctl_run("--town", "beta", "load-town", path)
        s.beta_token = lambda fid: s.ctl_run("--town", "beta", "token",
                                             fid).strip()
        # the worker finds the new town and publishes its catalogue
        wait_until("beta served", lambda: s.http(
            "GET", "/api/me", headers=BETA,
            token=s.beta_token("f1")).status == 200)
        # by every nginx worker (one answer came from one of them)
        s.wait_catalogue_everywhere("beta")
        yield s
        s.assert_clean_error_log()
    finally:
        s.stop()


def book(s, tok, child, session, headers=None):
    r = s.http("POST", "/api/bookings", token=tok,
               headers=dict(headers or {},
                            **{"Idempotency-Key": uuid.uuid4().hex}),
               json={"items": [{"child_id": child, "session_id": session}]})
    assert r.status == 200, (r.status, r.body)
    return r.json()["items"][0]


def login(s, who, password, headers=None):
    return s.http("POST", "/api/session", headers=headers,
                  json={"login": who, "password": password})


def count(s, sql):
    return s.sql(sql)[0][0]


def test_each_host_name_serves_its_town(two):
    a = two.http("GET", "/api/me", token=two.token("f1"))
    b = two.http("GET", "/api/me", token=two.beta_token("f1"),
                 headers=BETA)
    assert a.status == 200 and a.json()["town"] == "Alphaville"
    assert b.status == 200 and b.json()["town"] == "Betacourt"


def test_a_token_of_one_town_is_refused_by_the_other(two):
    """The same family id in both towns, the same secret: a token of
    alpha presented to beta's server block is 401, and the reverse; each
    is 200 at home.  Families, staff and the office alike."""
    ta, tb = two.token("f1"), two.beta_token("f1")
    assert ta.startswith("v4.alpha.") and tb.startswith("v4.beta.")
    assert two.http("GET", "/api/me", token=ta, headers=BETA).status == 401
    assert two.http("GET", "/api/me", token=tb).status == 401
    # booking with another town's token: refused, nothing taken
    left = two.redis.execute_command("BITFIELD", "{beta}:s:t-MATIN:left",
                                     "GET", "u32", "0")[0]
    r = two.http("POST", "/api/bookings", token=ta,
                 headers=dict(BETA, **{"Idempotency-Key": "x-town"}),
                 json={"items": [{"child_id": "f1-c1",
                                  "session_id": "t-MATIN"}]})
    assert r.status == 401
    assert two.redis.execute_command("BITFIELD", "{beta}:s:t-MATIN:left",
                                     "GET", "u32", "0")[0] == left
    # guichet-office (X-Guichet-Town from $guichet_town) too
    assert two.http("GET", "/api/enrolments", token=tb,
                    headers=BETA).status == 200
    assert two.http("GET", "/api/enrolments", token=ta,
                    headers=BETA).status == 401
    assert two.http("GET", "/api/enrolments", token=tb).status == 401


def test_a_family_of_one_town_does_not_exist_in_the_other(two):
    """fa-only is alpha's alone: its login fails at beta, and beta cannot
    even make it a token (guichetctl --town beta: no such family)."""
    assert login(two, "fa-only", "secret-alpha").status == 200
    assert login(two, "fa-only", "secret-alpha",
                 headers=BETA).status == 401
    with pytest.raises(StackError):
        two.beta_token("fa-only")


def test_logins_are_each_towns(two):
    """fam1 is a login of both towns, each with its own password; the
    token a login gives names the town of the host name."""
    ra = login(two, "fam1", "secret-alpha")
    rb = login(two, "fam1", "secret-beta", headers=BETA)
    assert ra.status == 200 and rb.status == 200
    assert ra.json()["token"].startswith("v4.alpha.")
    assert rb.json()["token"].startswith("v4.beta.")
    assert login(two, "fam1", "secret-alpha", headers=BETA).status == 401
    assert login(two, "fam1", "secret-beta").status == 401


def test_office_serves_the_town_of_the_host_name(two):
    """The same family id, each town's own enrolments (alpha's from
    January, beta's from February)."""
    a = two.http("GET", "/api/enrolments", token=two.token("f1"))
    b = two.http("GET", "/api/enrolments", token=two.beta_token("f1"),
                 headers=BETA)
    assert a.status == 200 and b.status == 200, (a.body, b.body)
    assert "2026-01-01" in a.body.decode() and \
        "2026-02-01" not in a.body.decode()
    assert "2026-02-01" in b.body.decode() and \
        "2026-01-01" not in b.body.decode()


def test_sold_out_in_one_town_is_not_in_the_other(two):
    """t-APM has one online place in alpha, two in beta, under the same
    session id: alpha sells its one place then says full; beta still
    sells both of its; the worker persists each town's bookings into its
    own schema, each with its own demande numbers from 1."""
    assert book(two, two.token("f1"), "f1-c1", "t-APM")["status"] == \
        "confirmed"
    full = book(two, two.token("f2"), "f2-c1", "t-APM")
    assert full["status"] != "confirmed", full
    for fid in ("f1", "f2"):
        item = book(two, two.beta_token(fid), fid + "-c1", "t-APM",
                    headers=BETA)
        assert item["status"] == "confirmed", item
    wait_until("both towns persisted", lambda: count(
        two, "select count(*) from town_alpha.booking"
             " where status = 'confirmed'") == 1 and count(
        two, "select count(*) from town_beta.booking"
             " where status = 'confirmed'") == 2)
    assert two.sql("select family_id, session_id from town_alpha.booking"
                   " where status = 'confirmed'") == [("f1", "t-APM")]
    assert sorted(two.sql("select family_id from town_beta.booking"
                          " where status = 'confirmed'")) == \
        [("f1",), ("f2",)]
    # numbered per town: both towns have their demande 1
    for t in ("alpha", "beta"):
        assert count(two, "select min(number) from town_%s.demande" % t) \
            == 1
    # and Redis agrees with each database (guichetctl check, per town)
    two.wait_worker_drained()
    two.ctl_run("check")
    two.ctl_run("--town", "beta", "check")


def test_guichetctl_town(two):
    """--town names the town; without it, the configured one; a town
    the database lacks is refused with a clear message."""
    assert two.ctl_run("token", "f1").startswith("v4.alpha.")
    assert two.ctl_run("--town", "beta", "token", "f1").startswith(
        "v4.beta.")
    toks = two.ctl_run("--town", "beta", "tokens").split()
    assert "fa-only" not in toks and "f1" in toks
    r = subprocess.run([two.ctl, "-c", two.worker_conf, "--town", "nowhere",
                        "token", "f1"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE)
    assert r.returncode == 1
    assert b'no town "nowhere"' in r.stderr, r.stderr
    r = subprocess.run([two.ctl, "-c", two.worker_conf, "--town", "Bad_Id",
                        "token", "f1"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE)
    assert r.returncode == 2 and b"not a town id" in r.stderr
    # load-town: a file of another town than --town's is refused
    path = os.path.join(two.dir, "beta.json")
    with pytest.raises(StackError, match="nothing loaded"):
        two.ctl_run("--town", "alpha", "load-town", path)
    # migrate reaches every town, and is idempotent
    assert two.ctl_run("migrate").strip() == "0 migrations applied"
    assert sorted(r[0] for r in two.sql(
        "select id from public.platform_town")) == ["alpha", "beta"]


def test_a_database_before_towns_is_moved_into_its_town(two, tmp_path):
    """The tables of the layout before towns (in public, migrations up to
    0020 applied by the runner of that time) move with their rows into
    the configured town's schema; 0030 names the town in its town row;
    the database's default search_path is that town, so that unqualified
    SQL keeps reading it."""
    admin = psycopg2.connect(two.pg_conninfo.replace("dbname=guichet",
                                                     "dbname=postgres"))
    admin.autocommit = True
    admin.cursor().execute("drop database if exists guichet_old")
    admin.cursor().execute("create database guichet_old")
    admin.close()
    conninfo = two.pg_conninfo.replace("dbname=guichet", "dbname=guichet_old")
    c = psycopg2.connect(conninfo)
    c.autocommit = True
    cur = c.cursor()
    for path in sorted(glob.glob(os.path.join(ROOT, "sql", "migrations",
                                              "00[012]*.sql"))):
        name = os.path.basename(path)
        cur.execute(open(path).read())
        cur.execute("insert into schema_migrations (version, name)"
                    " values (%s, %s)", (int(name[:4]), name[5:-4]))
    cur.execute("insert into town (id, name, timezone) values"
                " (1, 'Vieilleville', 'Europe/Paris')")
    cur.execute("insert into family (id, login, resident, direct_debit)"
                " values ('f-old', 'old', true, false)")
    c.close()

    conf = str(tmp_path / "old.conf")
    with open(two.worker_conf) as f, open(conf, "w") as g:
        g.write(f.read().replace("dbname=guichet ", "dbname=guichet_old ")
                .replace("town = alpha\n", "town = vieille\n"))
    out = two.ctl_run("-c", conf, "migrate", conf=False)
    later = [p for p in glob.glob(os.path.join(ROOT, "sql", "migrations",
                                              "*.sql"))
             if int(os.path.basename(p)[:4]) >= 30]          # 0030 and on
    assert out.strip() == "%d migration%s applied" % (
        len(later), "" if len(later) == 1 else "s")

    c = psycopg2.connect(conninfo)
    try:
        cur = c.cursor()
        cur.execute("select id from public.platform_town")
        assert cur.fetchall() == [("vieille",)]
        cur.execute("select id from town_vieille.family")
        assert cur.fetchall() == [("f-old",)]
        cur.execute("select name, town_id from town_vieille.town")
        assert cur.fetchall() == [("Vieilleville", "vieille")]
        cur.execute("select to_regclass('public.family')")
        assert cur.fetchone() == (None,)
        # unqualified: the default search_path is the town's
        cur.execute("select count(*) from family")
        assert cur.fetchone() == (1,)
        cur.execute("select euros(1250)")        # its functions moved too
        assert cur.fetchone()[0]
    finally:
        c.close()
    # guichetctl finds it without --town (the configured town)
    assert "f-old" in two.ctl_run("-c", conf, "tokens", conf=False)
    # a second town there: its schema (a '-' written '_'), every migration
    assert two.ctl_run("-c", conf, "--town", "st-ex", "migrate",
                       conf=False).strip() != "0 migrations applied"
    c = psycopg2.connect(conninfo)
    try:
        cur = c.cursor()
        cur.execute("select id, schema_name from public.platform_town"
                    " order by id")
        assert cur.fetchall() == [("st-ex", "town_st_ex"),
                                  ("vieille", "town_vieille")]
        cur.execute("select count(*) from town_st_ex.family")
        assert cur.fetchone() == (0,)
        # still the first town by default
        cur.execute("select count(*) from family")
        assert cur.fetchone() == (1,)
    finally:
        c.close()


def test_e_mailed_links_name_the_towns_address(two):
    """A forgotten password at beta: the link is beta's (town_site_url),
    its token resets the password at beta only; alpha's link is
    site_url's."""
    two.ctl_run("--town", "beta", "set-email", "f2", "f2@beta.example")
    two.ctl_run("set-email", "f2", "f2@alpha.example")
    for h in (BETA, None):
        r = two.http("POST", "/api/password/forgot", headers=h,
                     json={"login": "fam2"})
        assert r.status == 202, r
    body = {t: two.sql("select body from town_%s.outbox where kind ="
                       " 'password_reset'" % t)[0][0]
            for t in ("alpha", "beta")}
    assert "http://beta.localhost:%d/#/nouveau-mot-de-passe?jeton=" \
        % two.port in body["beta"], body
    assert "http://127.0.0.1:%d/#/nouveau-mot-de-passe?jeton=" \
        % two.port in body["alpha"], body
    tok = body["beta"].split("jeton=")[1].split()[0]
    new = {"token": tok, "password": "nouveau-secret-beta"}
    assert two.http("POST", "/api/password/reset",
                    json=new).status == 400
    assert two.http("POST", "/api/password/reset", headers=BETA,
                    json=new).status == 204
    assert login(two, "fam2", "nouveau-secret-beta",
                 headers=BETA).status == 200
    assert login(two, "fam2", "secret-alpha").status == 200


def test_an_online_payment_of_the_second_town_settles_there(two):
    """Beta's payment: the provider's return and notification addresses
    are beta's (town_site_url); the notification reaches beta's office
    through beta's server block and pays beta's invoice (the simulator
    sends <id>.localhost to loopback, as browsers do)."""
    iid = two.sql("insert into town_beta.invoice (number, family_id, month,"
                  " total_cents, issued_at, due_date) values (1, 'f1',"
                  " '2026-06-01', 2500, now(), '2026-06-30')"
                  " returning id")[0][0]
    r = two.http("POST", "/api/payments", token=two.beta_token("f1"),
                 headers=BETA, json={"invoice_ids": [iid]})
    assert r.status == 201, r
    op = r.json()
    u = urllib.parse.urlsplit(op["redirect_url"])
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    try:
        c.request("POST", u.path, body="choix=payer", headers={
            "Content-Type": "application/x-www-form-urlencoded"})
        resp = c.getresponse()
        resp.read()
    finally:
        c.close()
    assert resp.status == 303
    assert resp.getheader("Location") == \
        "http://beta.localhost:%d/#factures?paiement=%s" % (
            two.port, op["operation_id"])
    # settled by the notification alone (nobody has asked the office yet)
    wait_until("beta's invoice paid", lambda: two.sql(
        "select paid from town_beta.invoice where id = %s", (iid,))[0][0])
    assert two.sql("select status from town_beta.payment_operation")[0][0] \
        == "paid"
    assert two.sql("select count(*) from town_alpha.payment_operation")[0][0] \
        == 0


def test_office_refuses_a_town_the_database_lacks(two):
    """X-Guichet-Town naming no town of the database, or no town id at
    all (only nginx can send it: the socket is nginx's): 404
    unknown_town, nothing read.  Without the header: the setting town."""
    import socket

    def office(headers):
        c = http.client.HTTPConnection("localhost", timeout=30)
        c.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.sock.connect(os.path.join(two.dir, "office.sock"))
        try:
            c.request("GET", "/api/enrolments", headers=dict(
                headers, Authorization="Bearer " + two.token("f1")))
            r = c.getresponse()
            return r.status, r.read()
        finally:
            c.close()

    for town_id in ("gamma", "Not_A_Town"):
        st, body = office({"X-Guichet-Town": town_id})
        assert st == 404 and json.loads(body)["error"]["code"] == \
            "unknown_town", body
    assert office({"X-Guichet-Town": "alpha"})[0] == 200
    assert office({})[0] == 200


def test_the_town_documents_route_serves_the_host_names_town(two):
    """POST and GET /api/staff/town-documents have a location of their
    own in office.conf (a 6 MB body): it forgot X-Guichet-Town, so
    guichet-office took the setting town (alpha) for beta's host name --
    beta's agents got 401 there -- or whatever town the client's own
    X-Guichet-Town header named."""
    r = subprocess.run([two.ctl, "-c", two.worker_conf, "--town", "beta",
                        "staff-add", "agent.b", "agent", "Agent Beta"],
                       input=b"agent-beta-1\n", cwd=ROOT,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert r.returncode == 0, r.stderr.decode()
    r = two.http("POST", "/api/staff/session", headers=BETA,
                 json={"login": "agent.b", "password": "agent-beta-1"})
    assert r.status == 200, r
    agent = r.json()["token"]
    assert agent.split(".")[1] == "beta"

    pdf = (b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer\n"
           b"<< /Root 1 0 R >>\n%%EOF\n")
    r = two.http("POST", "/api/staff/town-documents?title=Menus%20beta"
                 "&category=menus&name=menus.pdf", token=agent, body=pdf,
                 headers=dict(BETA, **{"Content-Type": "application/pdf"}))
    assert r.status == 201, r
    r = two.http("GET", "/api/staff/town-documents", token=agent,
                 headers=BETA)
    assert r.status == 200, r
    assert "Menus beta" in r.body.decode()
    assert two.sql("select count(*) from town_beta.town_publication")[0][0] \
        == 1
    assert two.sql("select count(*) from town_alpha.town_publication"
                   )[0][0] == 0
    # the town is the host name's, never the client's header
    r = two.http("GET", "/api/staff/town-documents", token=agent,
                 headers=dict(BETA, **{"X-Guichet-Town": "alpha"}))
    assert r.status == 200, r
    assert "Menus beta" in r.body.decode()


def test_every_office_location_names_the_town_and_the_address():
    """No stack: each location of office.conf that reaches guichet-office
    sets X-Guichet-Town, X-Real-IP and X-Guichet-Cookie itself (a location's own
    proxy_set_header drops the others', and the client's header would
    pass through)."""
    with open(os.path.join(ROOT, "lua-free-config", "office.conf")) as f:
        text = "\n".join(line.split("#")[0] for line in f)
    blocks = text.split("\nlocation ")[1:]
    proxied = [b for b in blocks if "proxy_pass" in b]
    assert len(proxied) >= 5, len(proxied)
    for b in proxied:
        where = b.split("{")[0].strip()
        assert "proxy_set_header X-Guichet-Town $guichet_town;" in b, where
        assert "proxy_set_header X-Real-IP $remote_addr;" in b, where
        assert "proxy_set_header X-Guichet-Cookie $guichet_cookie_name;" \
            in b, where
