"""test_production_conf.py -- lua-free-config/production.conf itself,
started as shipped (rendered by scripts/render-conf.sh with a self-signed
certificate, listening on 127.0.0.1 only) with the built module:

* its TLS server sends Strict-Transport-Security, with the website's
  Content-Security-Policy, Referrer-Policy and nosniff on / and /agent/,
  and nosniff on the API's JSON;
* a client that sends part of its request head and then nothing is cut
  by client_header_timeout (10 s here), well before nginx's 60 s default,
  without an answer.

No Redis is started: the website is static and /api/health answers 503
unavailable (the catalogue is unreachable), which is enough for headers.
docs/reliability.md (Security) lists what this file checks.
"""

import http.client
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from stack import BUILD, NGINX, ROOT, free_port  # noqa: E402

CONF = os.path.join(ROOT, "lua-free-config", "production.conf")
NGINX_DEFAULT_S = 60         # nginx's client_header_timeout default


def shipped(directive):
    """The value of a directive of production.conf's http block."""
    m = re.search(r"(?m)^\s*%s\s+(\S+);" % directive, open(CONF).read())
    assert m, directive
    return m.group(1)


def seconds(v):
    m = re.fullmatch(r"(\d+)(s?)", v)
    assert m, v                       # this test knows "10s" and "10"
    return int(m.group(1))


@pytest.fixture(scope="module")
def prod():
    module = os.path.abspath(os.environ.get(
        "GUICHET_MODULE", os.path.join(BUILD, "ngx_http_guichet_module.so")))
    if not os.path.exists(module):
        pytest.fail("%s is missing: run make build" % module)
    d = tempfile.mkdtemp(prefix="guichet-prod-")
    # nginx's workers run as www-data (production.conf's user): they
    # must reach the temp directories under it
    os.chmod(d, 0o755)
    secret = os.path.join(d, "secret.key")
    with open(secret, "w") as f:
        f.write(os.urandom(32).hex() + "\n")
    os.chmod(secret, 0o600)
    port = free_port()
    conf = os.path.join(d, "nginx.conf")
    redis = "127.0.0.1:%d" % free_port()     # nothing listens there
    subprocess.run([os.path.join(ROOT, "scripts", "render-conf.sh"), CONF,
                    conf, module, d, "127.0.0.1:%d" % port, redis, secret],
                   check=True)
    err = os.path.join(d, "error.log")
    env = dict(os.environ)
    if os.environ.get("GUICHET_ASAN") == "1":
        env["LD_PRELOAD"] = subprocess.run(
            ["gcc", "-print-file-name=libasan.so"], stdout=subprocess.PIPE,
            check=True).stdout.decode().strip()
        env.setdefault("ASAN_OPTIONS", "detect_leaks=0")
    p = subprocess.Popen([NGINX, "-p", d, "-c", conf, "-e", err,
                          "-g", "daemon off;"], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 15
        while True:
            if p.poll() is not None:
                pytest.fail("nginx exited: " + open(err).read())
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("nginx does not listen: " + open(err).read())
                time.sleep(0.05)
        yield {"port": port, "dir": d, "error_log": err}
    finally:
        p.send_signal(signal.SIGQUIT)
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        log = open(err).read() if os.path.exists(err) else ""
        shutil.rmtree(d, ignore_errors=True)
    # worker_rlimit_nofile 65536 is refused where the hard limit is lower
    # (a container): the machine's limit, not the configuration's fault
    bad = [l for l in log.splitlines()
           if re.search(r"\[(alert|emerg)\]|AddressSanitizer", l)
           and "setrlimit(RLIMIT_NOFILE" not in l]
    assert not bad, "\n".join(bad[:20])


def tls():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE        # the render's self-signed pair
    return ctx


def get(prod, path):
    c = http.client.HTTPSConnection("127.0.0.1", prod["port"], timeout=10,
                                    context=tls())
    try:
        c.request("GET", path, headers={"Host": "famille.example"})
        r = c.getresponse()
        r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, \
            r.getheaders()
    finally:
        c.close()


def test_production_conf_shortens_the_client_timeouts():
    for d in ("client_header_timeout", "client_body_timeout",
              "send_timeout"):
        assert seconds(shipped(d)) < NGINX_DEFAULT_S / 2, d


@pytest.mark.parametrize("path", ["/", "/agent/"])
def test_tls_site_sends_hsts_and_the_site_headers(prod, path):
    status, h, _ = get(prod, path)
    assert status == 200
    hsts = h.get("strict-transport-security", "")
    m = re.match(r"max-age=(\d+)", hsts)
    assert m and int(m.group(1)) >= 180 * 86400, hsts   # six months at least
    assert "frame-ancestors 'none'" in h["content-security-policy"]
    assert h["referrer-policy"] == "same-origin"
    assert h["x-content-type-options"] == "nosniff"


def test_tls_api_json_sends_hsts_and_nosniff(prod):
    status, h, raw = get(prod, "/api/health")
    assert status == 503                       # no Redis in this test
    assert h["content-type"].startswith("application/json")
    assert h["x-content-type-options"] == "nosniff"
    assert h["strict-transport-security"].startswith("max-age=")
    assert [k for k, _ in raw].count("X-Content-Type-Options") == 1


def test_partial_request_head_is_cut_by_client_header_timeout(prod):
    """Half a request head over TLS, then nothing: nginx closes the
    connection without an answer once client_header_timeout passes.
    Measured, not bounded tightly: closed before nginx's 60 s default."""
    configured = seconds(shipped("client_header_timeout"))
    raw = socket.create_connection(("127.0.0.1", prod["port"]), 5)
    s = tls().wrap_socket(raw, server_hostname="famille.example")
    s.settimeout(NGINX_DEFAULT_S - 5)
    t0 = time.monotonic()
    s.sendall(b"GET / HTTP/1.1\r\nHost: famille.example\r\nUser-Agent: x")
    got = b""
    try:
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            got += chunk
    except (ssl.SSLError, ConnectionResetError):
        pass                                  # closed without close_notify
    except socket.timeout:
        pytest.fail("still open after %d s (client_header_timeout %d s)"
                    % (NGINX_DEFAULT_S - 5, configured))
    finally:
        s.close()
    took = time.monotonic() - t0
    assert got == b"", got[:200]              # cut, not answered
    print("closed after %.1f s (client_header_timeout %d s)"
          % (took, configured))
