"""test_redis_password.py -- a Redis that requires a password (issue 18,
finding 12: the shipped configuration gave Redis none).

* A whole stack whose Redis has `requirepass`: the module
  (guichet_redis_password, rendered by scripts/render-conf.sh from
  GUICHET_REDIS_PASSWORD), the worker, guichet-office and guichetctl
  (redis_password in the settings file) all authenticate: a family logs in,
  books a place, the worker persists it, and the office answers.
* A second nginx with a wrong password books nothing: 503 unavailable with
  Retry-After, never a wrong answer.
* production.conf requires a password: rendered without one, it gets a
  random one in redis.pass beside the secret file (mode 0600, like the
  self-signed TLS pair), the rendered file is mode 0600, and dev.conf
  rendered without one names none.
"""

import datetime
import http.client
import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from stack import (BUILD, DEMO_TOWN, NGINX, ROOT, Stack,  # noqa: E402
                   free_port)

PASSWORD = "tests-redis-pass-18"
CHILD, SESSION = "c-lea", "klub-0707-danse"


class PasswordStack(Stack):
    redis_password = PASSWORD


@pytest.fixture(scope="module")
def s():
    st = PasswordStack(town=DEMO_TOWN, name="redis-pass").start()
    yield st
    try:
        st.assert_clean_error_log()
    finally:
        st.stop()


def book(s, tok, idem):
    return s.http("POST", "/api/bookings", token=tok,
                  headers={"Idempotency-Key": idem},
                  json={"items": [{"child_id": CHILD,
                                   "session_id": SESSION}]})


def test_redis_really_requires_the_password(s):
    out = subprocess.run(["redis-cli", "-p", str(s.redis_port), "GET",
                          "{main}:catalogue:gen"], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True).stdout
    assert "NOAUTH" in out, out


def test_every_program_authenticates_and_a_booking_is_persisted(s):
    r = s.http("POST", "/api/session",
               json={"login": "martin", "password": "secret-demo"})
    assert r.status == 200, r
    tok = r.json()["token"]
    r = book(s, tok, "pass-1")
    assert r.status == 200, r
    item = r.json()["items"][0]
    assert item["status"] == "confirmed", r.json()
    s.wait_worker_drained()
    assert s.sql("select count(*) from booking where id = %s",
                 (item["booking_id"],)) == [(1,)]
    # guichet-office reads Redis too (the family's connections)
    r = s.http("GET", "/api/history?period=week&date=%s"
               % datetime.date.today().isoformat(), token=tok)
    assert r.status == 200, r
    assert "127.0.0.1" in json.dumps(r.json()), r.json()
    # guichetctl: its check reads Redis and PostgreSQL (StackError if not)
    s.ctl_run("check")


def test_a_wrong_password_books_nothing(s, tmp_path):
    """A second nginx rendered with a wrong password: 503 + Retry-After,
    nothing taken."""
    conf = str(tmp_path / "nginx.conf")
    port = free_port()
    env = dict(os.environ, GUICHET_REDIS_PASSWORD="not-the-password")
    subprocess.run([os.path.join(ROOT, "scripts", "render-conf.sh"),
                    os.path.join(ROOT, "lua-free-config", "dev.conf"), conf,
                    s.module, str(tmp_path), str(port), s.redis_address,
                    s.secret, s._path("invoices"), s._path("office.sock")],
                   env=env, check=True)
    assert 'guichet_redis_password "not-the-password";' in open(conf).read()
    left = s.redis.get("{main}:s:%s:left" % SESSION)
    tok = s.token("f-martin")
    err = str(tmp_path / "error.log")
    p = subprocess.Popen([NGINX, "-p", str(tmp_path), "-c", conf, "-e", err,
                          "-g", "daemon off;"], stdout=subprocess.DEVNULL,
                         stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                assert p.poll() is None, open(err).read()
                assert time.monotonic() < deadline, open(err).read()
                time.sleep(0.05)
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        c.request("POST", "/api/bookings", body=json.dumps(
            {"items": [{"child_id": CHILD, "session_id": SESSION}]}),
            headers={"Authorization": "Bearer " + tok,
                     "Content-Type": "application/json",
                     "Idempotency-Key": "pass-wrong"})
        r = c.getresponse()
        body = json.loads(r.read())
        assert r.status == 503, (r.status, body)
        assert body["error"]["code"] == "unavailable", body
        assert r.getheader("Retry-After"), r.getheaders()
        assert s.redis.get("{main}:s:%s:left" % SESSION) == left
        # the refusal is logged once the AUTH's reply is read, which on a
        # loaded machine may come after guichet_timeout answered the 503
        deadline = time.monotonic() + 10
        while not any(w in open(err).read() for w in (
                "NOAUTH", "WRONGPASS", "invalid password")):
            assert time.monotonic() < deadline, open(err).read()[-2000:]
            time.sleep(0.1)
    finally:
        s._end(p, signal.SIGQUIT, 10)   # killed if still there past 10 s


def render(template, env_password=None):
    d = tempfile.mkdtemp(prefix="guichet-pass-")
    secret = os.path.join(d, "secret.key")
    with open(secret, "w") as f:
        f.write(os.urandom(32).hex() + "\n")
    out = os.path.join(d, "nginx.conf")
    env = dict(os.environ)
    env.pop("GUICHET_REDIS_PASSWORD", None)
    if env_password:
        env["GUICHET_REDIS_PASSWORD"] = env_password
    subprocess.run([os.path.join(ROOT, "scripts", "render-conf.sh"),
                    os.path.join(ROOT, "lua-free-config", template), out,
                    os.path.join(BUILD, "ngx_http_guichet_module.so"), d,
                    "8443", "127.0.0.1:6379", secret], env=env, check=True)
    return d, out


def test_production_conf_always_names_a_password():
    d, out = render("production.conf")
    pw = open(os.path.join(d, "redis.pass")).read().strip()
    assert len(pw) >= 24, pw
    text = open(out).read()
    assert "guichet_redis_password %s;" % pw in text
    for f in (out, os.path.join(d, "redis.pass")):
        assert stat.S_IMODE(os.stat(f).st_mode) & 0o077 == 0, f
    # the operator's own wins
    d, out = render("production.conf", env_password="operators-own")
    assert "guichet_redis_password operators-own;" in open(out).read()


def test_dev_conf_names_none_without_one():
    d, out = render("dev.conf")
    text = open(out).read()
    assert not re.search(r"(?m)^\s*guichet_redis_password\s", text), text
    assert not os.path.exists(os.path.join(d, "redis.pass"))
