"""test_deb.py -- issue 27: the Debian packages of `make deb`, installed on
this machine, run a town; then apt-get purge leaves nothing.

This machine is a container whose PID 1 is not systemd, so the units
cannot be started by systemctl (nor in a debootstrap chroot, which has no
systemd either).  What the test does instead, in order:

* make deb builds the packages (dpkg-buildpackage, debhelper) and lintian
  reports no tag that debian/*.lintian-overrides does not explain;
* the module's package depends on the nginx ABI that Debian's nginx
  provides (nginx-dev's libnginx-mod.abisubstvars), as libnginx-mod-*;
* apt-get installs both .debs; the module is enabled by its
  modules-enabled link and the stock /etc/nginx/nginx.conf still passes
  nginx -t with it; the units pass `systemd-analyze verify`; without
  /etc/guichet/guichet.conf nothing is started and nothing migrated;
* with the settings written (Redis and PostgreSQL of the test, on TCP
  like other machines) but PostgreSQL unreachable, a reinstall fails in
  the postinst with the way out; once it is reachable, `dpkg --configure`
  migrates the database (postinst, as the user guichet);
* guichet-worker and guichet-office are started the way their units
  would: the unit's User, Group, SupplementaryGroups, UMask,
  RuntimeDirectory, ExecStartPre, ExecStart, a clean environment,
  working directory /, and for Type=notify a notification socket
  ($NOTIFY_SOCKET) on which the start waits for READY=1;
* /usr/sbin/nginx runs the installed /etc/guichet/nginx.conf.example
  (only its listen address, TLS certificate, Redis address and log/pid/temp
  paths changed), which loads the module through modules-enabled, serves
  the installed website and reaches the office's socket; a family books a
  place over HTTPS, the worker writes it to PostgreSQL, the office answers
  its history;
* apt-get remove keeps the settings and disables the module; apt-get
  purge removes every file, link and directory the packages made, and
  /etc/nginx/modules-enabled is as before.

The machine is restored whatever happens (the fixture's teardown: the
processes stopped, the packages purged, the user guichet deleted when the
test created it).  Other tests never use /etc/nginx (they start nginx with
-c configurations of their own).  Runs as root.
"""

import glob
import grp
import http.client
import json as jsonlib
import os
import pwd
import re
import resource
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))

from stack import (BAD_LOG, DEMO_TOWN, NGINX, ROOT, Stack,  # noqa: E402
                   free_port)

DEB_DIR = os.path.join(ROOT, "build", "deb")
PKGS = ("guichet", "libnginx-mod-http-guichet")
CONF = "/etc/guichet/guichet.conf"
SECRET = "/etc/guichet/secret.key"
UNIT_DIR = "/lib/systemd/system"
ENABLED = "/etc/nginx/modules-enabled"
MODULE_LINK = os.path.join(ENABLED, "50-mod-http-guichet.conf")
CLEAN_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:"
                     "/sbin:/bin", "LANG": "C.UTF-8"}
# what the packages, their scripts or the units make, and purge removes
MADE = ["/etc/guichet", "/var/lib/guichet", "/usr/share/guichet",
        "/usr/share/doc/guichet", "/usr/share/doc/libnginx-mod-http-guichet",
        "/usr/lib/nginx/modules/ngx_http_guichet_module.so",
        "/usr/share/nginx/modules-available/mod-http-guichet.conf",
        "/usr/sbin/guichetctl", "/usr/sbin/guichet-worker",
        "/usr/sbin/guichet-office", "/run/guichet",
        UNIT_DIR + "/guichet-worker.service",
        UNIT_DIR + "/guichet-office.service",
        "/usr/share/man/man8/guichetctl.8.gz"]

if os.geteuid() != 0:
    pytest.fail("test_deb.py installs packages: run it as root",
                allow_module_level=True)


def run(argv, **kw):
    kw.setdefault("stdout", subprocess.PIPE)
    kw.setdefault("stderr", subprocess.STDOUT)
    r = subprocess.run(argv, **kw)
    out = r.stdout.decode(errors="replace") if r.stdout else ""
    assert r.returncode == 0, "%s: exit %d\n%s" % (" ".join(argv),
                                                   r.returncode, out[-4000:])
    return out


def apt_get(*args):
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    return run(["apt-get", "-y", "-q", "--no-install-recommends",
                "-o", "DPkg::Lock::Timeout=300"] + list(args), env=env)


def status(pkg):
    """dpkg's status of pkg: "installed", "config-files" or "" (none)."""
    r = subprocess.run(["dpkg-query", "-W", "-f", "${db:Status-Status}",
                        pkg], stdout=subprocess.PIPE,
                       stderr=subprocess.DEVNULL)
    st = r.stdout.decode().strip() if r.returncode == 0 else ""
    return "" if st == "not-installed" else st


def debs():
    return sorted(glob.glob(os.path.join(DEB_DIR, "guichet_*.deb")) +
                  glob.glob(os.path.join(DEB_DIR,
                                         "libnginx-mod-http-guichet_*.deb")))


def stock_nginx_t():
    """nginx -t of Debian's own /etc/nginx/nginx.conf (its modules-enabled
    snippets included); the output."""
    return run([NGINX, "-t"])


def unit(name):
    """The [Service] settings of an installed unit: {key: [values]}."""
    out = {}
    section = None
    with open(os.path.join(UNIT_DIR, name + ".service")) as f:
        for line in f:
            line = line.strip()
            if line.startswith("["):
                section = line
            elif section == "[Service]" and "=" in line and \
                    not line.startswith("#"):
                k, v = line.split("=", 1)
                out.setdefault(k, []).append(v)
    return out


def purge_all():
    for p in PKGS:
        if status(p):
            apt_get("purge", *[q for q in PKGS if status(q)])
            break


class InstalledTown(Stack):
    """A Stack whose programs are the installed ones, started as their
    units would start them, and whose nginx runs the installed example."""

    # production's Redis requires a password (production.conf, issue 18)
    redis_password = "deb-test-redis-pass"

    def __init__(self):
        super().__init__(town=DEMO_TOWN, name="deb")
        self.runtime_made = False

    @property
    def ctl(self):
        return "/usr/sbin/guichetctl"

    def start_backends(self):
        self.dir = tempfile.mkdtemp(prefix="guichet-deb-")
        os.chmod(self.dir, 0o755)
        self._start_redis()
        self._start_postgres()

    def write_settings(self):
        """/etc/guichet/guichet.conf from the installed example, as an
        operator would: Redis and PostgreSQL addresses, site, payments."""
        self.port = free_port()
        with open(CONF + ".example") as f:
            text = f.read()
        subs = [
            (r"(?m)^redis = .*$", "redis = 127.0.0.1:%d" % self.redis_port),
            (r"(?m)^redis_password =.*$", "redis_password = %s"
             % self.redis_password),
            (r"(?m)^postgres = .*$",
             'postgres = "host=127.0.0.1 port=%d dbname=guichet '
             'user=postgres"' % self.pg_port),
            (r"(?m)^site_url = .*$", "site_url = https://127.0.0.1:%d"
             % self.port),
            (r"(?m)^payfip_url = .*$", "payfip_url = http://127.0.0.1:%d"
             % free_port()),
        ]
        for pat, new in subs:
            text, n = re.subn(pat, new.replace("\\", "\\\\"), text)
            assert n == 1, pat
        with open(CONF, "w") as f:
            f.write(text)
        os.chown(CONF, 0, grp.getgrnam("guichet").gr_gid)
        os.chmod(CONF, 0o640)
        run([self.ctl, "init-secret", SECRET])
        os.chown(SECRET, 0, grp.getgrnam("guichet").gr_gid)
        os.chmod(SECRET, 0o640)

    def as_unit(self, name, key, background=False, env_extra=None):
        """Runs the unit's command line(s) `key` as systemd would."""
        u = unit(name)
        user = pwd.getpwnam(u["User"][0])
        group = grp.getgrnam(u["Group"][0]).gr_gid
        groups = [grp.getgrnam(g).gr_gid
                  for v in u.get("SupplementaryGroups", [])
                  for g in v.split()]
        umask = int(u.get("UMask", ["0022"])[0], 8)
        nnp = u.get("NoNewPrivileges", ["no"])[0] == "yes"

        def drop():
            os.setgroups(groups)
            os.setgid(group)
            os.setuid(user.pw_uid)
            os.umask(umask)
        procs = []
        for line in u.get(key, []):
            argv = (["/bin/sh", "-c", line[len("/bin/sh -c '"):-1]]
                    if line.startswith("/bin/sh -c '") else line.split())
            if nnp:
                argv = ["setpriv", "--no-new-privs"] + argv
            env = dict(CLEAN_ENV, HOME=user.pw_dir, USER=user.pw_name,
                       **(env_extra or {}))
            if background:
                p = subprocess.Popen(argv, cwd="/", env=env,
                                     preexec_fn=drop,
                                     stdout=self._log(name),
                                     stderr=subprocess.STDOUT)
                # Stack.stop() ends "worker" and "office"
                self.procs[name.replace("guichet-", "")] = p
                procs.append(p)
            else:
                run(argv, cwd="/", env=env, preexec_fn=drop)
        return procs

    def start_unit(self, name):
        u = unit(name)
        for d in u.get("RuntimeDirectory", []):
            path = os.path.join("/run", d)
            os.makedirs(path, exist_ok=True)
            self.runtime_made = True
            shutil.chown(path, u["User"][0], u["Group"][0])
            os.chmod(path, int(u.get("RuntimeDirectoryMode", ["0755"])[0], 8))
        self.as_unit(name, "ExecStartPre")
        # Type=notify: systemd's notification socket, where the program
        # says READY=1 (sd_notify); the start waits for it
        notify = u.get("Type") == ["notify"]
        extra = {}
        if notify:
            path = self._path("notify-" + name)
            ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            ns.bind(path)
            os.chmod(path, 0o777)
            extra["NOTIFY_SOCKET"] = path
        [p] = self.as_unit(name, "ExecStart", background=True,
                           env_extra=extra)
        if notify:
            got = b""
            ns.settimeout(0.2)
            deadline = time.monotonic() + 30
            while b"READY=1" not in got.split(b"\n"):
                assert p.poll() is None, "%s exited: %s" % (
                    name, self.read(name + ".log"))
                assert time.monotonic() < deadline, \
                    "%s: no READY=1 in 30 s (%r)" % (name, got)
                try:
                    got += ns.recv(4096) + b"\n"
                except socket.timeout:
                    pass
            ns.close()
        self.as_unit(name, "ExecStartPost")
        time.sleep(0.2)
        assert p.poll() is None, "%s exited: %s" % (name,
                                                     self.read(name + ".log"))

    def start_nginx(self):
        """The installed example, on a loopback port with a test
        certificate."""
        ndir = self._path("nginx")
        os.makedirs(ndir)
        for d in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            os.makedirs(os.path.join(ndir, d))
        self.cert = os.path.join(ndir, "tls.crt")
        key = os.path.join(ndir, "tls.key")
        run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
             "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
             "-subj", "/CN=127.0.0.1", "-addext",
             "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out",
             self.cert])
        with open("/etc/guichet/nginx.conf.example") as f:
            text = f.read()
        subs = [
            (r"listen 443 ssl", "listen 127.0.0.1:%d ssl" % self.port),
            (r"ssl_certificate /\S+;", "ssl_certificate %s;" % self.cert),
            (r"ssl_certificate_key /\S+;", "ssl_certificate_key %s;" % key),
            (r"guichet_redis \S+;", "guichet_redis 127.0.0.1:%d;"
             % self.redis_port),
            (r"guichet_redis_password \S+;", "guichet_redis_password %s;"
             % self.redis_password),
            (r"/var/log/nginx/", ndir + "/"),
            (r"/run/nginx\.pid", ndir + "/nginx.pid"),
            (r"/var/lib/nginx/", ndir + "/"),
        ]
        for pat, new in subs:
            text, n = re.subn(pat, new, text)
            assert n >= 1, pat
        assert "include /etc/nginx/modules-enabled/*.conf;" in text
        self.nginx_conf = os.path.join(ndir, "nginx.conf")
        with open(self.nginx_conf, "w") as f:
            f.write(text)
        self.procs["nginx"] = subprocess.Popen(
            [NGINX, "-c", self.nginx_conf, "-e",
             os.path.join(ndir, "error.log"), "-g", "daemon off;"],
            stdout=self._log("nginx-stderr"), stderr=subprocess.STDOUT)
        self._wait("GET /api/health = 200 over https",
                   lambda: self._health(), 30)

    def _health(self):
        if self.procs["nginx"].poll() is not None:
            raise AssertionError("nginx exited: " + self.error_log())
        try:
            return self.http("GET", "/api/health").status == 200
        except OSError:
            return False

    def http(self, method, path, json=None, headers=None, token=None,
             body=None, timeout=30):
        h = {"Host": "127.0.0.1:%d" % self.port}
        if json is not None:
            body = jsonlib.dumps(json)
            h["Content-Type"] = "application/json"
        if token is not None:
            h["Authorization"] = "Bearer " + token
        h.update(headers or {})
        ctx = ssl.create_default_context(cafile=self.cert)
        c = http.client.HTTPSConnection("127.0.0.1", self.port,
                                        timeout=timeout, context=ctx)
        try:
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            return _Response(r.status, r.read())
        finally:
            c.close()

    def ctl_as_guichet(self, *args):
        """guichetctl as the operator runs it: user guichet, no -c (the
        installed program finds /etc/guichet/guichet.conf)."""
        return run(["runuser", "-u", "guichet", "--", self.ctl] + list(args),
                   env=CLEAN_ENV, cwd="/")

    def stop(self):
        super().stop()
        if self.runtime_made:
            shutil.rmtree("/run/guichet", ignore_errors=True)
            self.runtime_made = False


class _Response:
    def __init__(self, status, body):
        self.status = status
        self.body = body

    def json(self):
        return jsonlib.loads(self.body)

    def __repr__(self):
        return "<%d %s>" % (self.status, self.body[:300])


@pytest.fixture(scope="module")
def machine():
    """What the machine was before; restored after the module's tests."""
    user_existed = True
    try:
        pwd.getpwnam("guichet")
    except KeyError:
        user_existed = False
    purge_all()                         # a run that died half-way
    before = {"enabled": sorted(os.listdir(ENABLED)),
              "nginx_t": stock_nginx_t()}
    for p in MADE:
        assert not os.path.exists(p), "%s exists before the packages" % p
    town = InstalledTown()
    yield {"before": before, "town": town}
    town.stop()
    purge_all()
    # what a faulty package left behind (the test fails on it; the
    # machine is restored anyway: none of these existed before)
    for p in MADE:
        if os.path.isdir(p) and not os.path.islink(p):
            shutil.rmtree(p, ignore_errors=True)
        elif os.path.lexists(p):
            os.unlink(p)
    if not user_existed:
        subprocess.run(["deluser", "--system", "--quiet", "guichet"])
        subprocess.run(["delgroup", "--system", "--quiet", "guichet"],
                       stderr=subprocess.DEVNULL)
    assert sorted(os.listdir(ENABLED)) == before["enabled"]


def test_make_deb_builds_lintian_clean_packages(machine):
    for f in glob.glob(os.path.join(DEB_DIR, "*")):
        os.unlink(f)
    out = run(["make", "--no-print-directory", "deb"], cwd=ROOT)
    assert len(debs()) == 2, out[-3000:]
    if shutil.which("lintian") is None:
        pytest.fail("lintian is not installed (apt-get install lintian)")
    out = run(["lintian", "--fail-on", "error,warning,info,pedantic",
               "--display-level", ">=pedantic",
               os.path.join(DEB_DIR, "guichet.changes")])
    tags = [l for l in out.splitlines() if re.match(r"^[EWIPX]: ", l)]
    assert tags == [], "\n".join(tags)


def test_module_depends_on_debian_nginx_abi(machine):
    with open("/usr/share/nginx/src/debian/libnginx-mod.abisubstvars") as f:
        abi = re.search(r"(?m)^nginx:abi=(\S+)", f.read()).group(1)
    [deb] = glob.glob(os.path.join(DEB_DIR, "libnginx-mod-http-guichet_*"))
    depends = run(["dpkg-deb", "-f", deb, "Depends"])
    assert re.search(r"(^|, )%s(,|$)" % re.escape(abi), depends.strip()), \
        depends
    provides = run(["dpkg-query", "-W", "-f", "${Provides}", "nginx"])
    assert abi in provides


def test_install_starts_nothing_half_configured(machine):
    apt_get("install", *debs())
    for p in PKGS:
        assert status(p) == "installed"
    # the module is enabled the Debian way, and the stock nginx still
    # passes its own configuration test with it loaded
    assert os.path.islink(MODULE_LINK)
    with open(MODULE_LINK) as f:
        assert f.read().strip() == \
            "load_module modules/ngx_http_guichet_module.so;"
    stock_nginx_t()
    # no settings yet: the units' conditions are false, and no migration
    assert not os.path.exists(CONF)
    for name in ("guichet-worker", "guichet-office"):
        u = open(os.path.join(UNIT_DIR, name + ".service")).read()
        assert "ConditionPathExists=%s\n" % CONF in u
        assert "ConditionPathExists=%s\n" % SECRET in u
        for opt in ("ProtectSystem=strict", "PrivateTmp=yes",
                    "NoNewPrivileges=yes", "Restart=on-failure",
                    "User=guichet", "Type=notify"):
            assert opt + "\n" in u, (name, opt)
    run(["systemd-analyze", "verify",
         UNIT_DIR + "/guichet-worker.service",
         UNIT_DIR + "/guichet-office.service"])
    pwd.getpwnam("guichet")
    st = os.stat("/var/lib/guichet/invoices")
    assert (st.st_mode & 0o7777, grp.getgrgid(st.st_gid).gr_name) == \
        (0o2750, "www-data")


def test_reinstall_with_settings_migrates(machine):
    town = machine["town"]
    town.start_backends()
    town.write_settings()
    assert town.sql("select to_regclass('town_main.booking')") == [(None,)]
    [deb] = [d for d in debs() if "/guichet_" in d]
    # PostgreSQL unreachable: the postinst fails, says what to do, and
    # the package stays half-configured (its units not restarted)
    with open(CONF) as f:
        good = f.read()
    with open(CONF, "w") as f:
        f.write(good.replace("port=%d " % town.pg_port,
                             "port=%d " % free_port()))
    r = subprocess.run(["apt-get", "-y", "-q", "-o",
                        "DPkg::Lock::Timeout=300", "install", "--reinstall",
                        deb], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
    out = r.stdout.decode(errors="replace")
    assert r.returncode != 0, out
    assert "migrate' failed" in out and "dpkg --configure -a" in out, out
    assert status("guichet") == "half-configured"
    # fixed, configuring again migrates
    with open(CONF, "w") as f:
        f.write(good)
    run(["dpkg", "--configure", "guichet"])
    assert status("guichet") == "installed"
    assert town.sql("select to_regclass('town_main.booking')") == \
        [("town_main.booking",)]
    # the database's default search_path, the first town's schema (set by
    # migrate, docs/architecture.md "Towns in PostgreSQL"), is for the
    # sessions opened from then on: the test's own opens again
    town._pg.close()
    # and an upgrade (here a reinstall) with the schema current is fine
    apt_get("install", "--reinstall", deb)


def test_book_through_installed_nginx(machine):
    town = machine["town"]
    tmp_town = town._path("town.json")
    shutil.copy(DEMO_TOWN, tmp_town)
    os.chmod(tmp_town, 0o644)
    town.ctl_as_guichet("load-town", tmp_town)
    town.start_unit("guichet-worker")
    town.start_unit("guichet-office")
    assert os.stat("/run/guichet/office.sock").st_gid == \
        grp.getgrnam("www-data").gr_gid
    town.start_nginx()

    r = town.http("GET", "/")
    assert r.status == 200 and b"<html" in r.body.lower(), r
    tok = town.ctl_as_guichet("token", "f-martin").strip()
    r = town.http("POST", "/api/bookings", token=tok,
                  headers={"Idempotency-Key": "deb-1"},
                  json={"items": [{"child_id": "c-lea",
                                   "session_id": "klub-0709-jeux"}]})
    assert r.status == 200, r
    [item] = r.json()["items"]
    assert item["status"] == "confirmed", item
    # the installed worker (user guichet) writes it to PostgreSQL
    town.wait_worker_drained(30)
    assert town.sql("select id from booking where id = %s",
                    (item["booking_id"],)) == [(item["booking_id"],)]
    # the installed office answers through nginx and its socket
    r = town.http("GET", "/api/history?period=month&date=2027-07-09",
                  token=tok)
    assert r.status == 200, r
    assert "error" not in r.json()
    assert_clean_logs(town)


def assert_clean_logs(town):
    """No alert, crit or emerg in nginx's log, nor in the office's, but
    the container's own limit: the example asks worker_rlimit_nofile
    65536 (Debian's nginx.service runs nginx as root with a hard limit
    above it); here the hard limit may be lower, and nginx says so."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    lines = (town.error_log() + town.read("guichet-office.log") +
             town.read("guichet-worker.log")).splitlines()
    bad = [l for l in lines if BAD_LOG.search(l) and not (
        "setrlimit(RLIMIT_NOFILE, 65536) failed" in l and hard < 65536)]
    assert bad == [], "\n".join(bad[:20])


def test_remove_then_purge_leaves_nothing(machine):
    town = machine["town"]
    town.stop()
    apt_get("remove", *PKGS)
    # remove: settings and data kept, the module's link set aside
    assert os.path.exists(CONF) and os.path.isdir("/var/lib/guichet")
    assert not os.path.exists(MODULE_LINK)
    stock_nginx_t()
    apt_get("purge", *PKGS)
    for p in PKGS:
        assert status(p) == ""
    left = [p for p in MADE if os.path.lexists(p)]
    assert left == []
    assert sorted(os.listdir(ENABLED)) == machine["before"]["enabled"]
    wants = glob.glob("/etc/systemd/system/*.wants/guichet-*") + \
        glob.glob("/var/lib/systemd/deb-systemd-helper-enabled/*guichet*")
    assert wants == []
    assert stock_nginx_t() == machine["before"]["nginx_t"]
