"""stack.py -- a whole Guichet on loopback, for tests.

Stack() starts, in a fresh temporary directory, everything `make run` starts,
on free ports: redis-server (appendonly, appendfsync always), a PostgreSQL 15
cluster (initdb as the user postgres when we are root), guichetctl
init-secret / migrate / load-town, guichet-worker and /usr/sbin/nginx with
the built module and lua-free-config/dev.conf (nginx_template).  stop()
ends all of it.

    s = Stack(town="demo/amberieu.json")     # or a dict in town-file format
    s.start()
    r = s.http("POST", "/api/bookings", json={...}, token=s.token("f-martin"),
               headers={"Idempotency-Key": "k1"})
    s.redis.dbsize(); s.sql("select count(*) from booking")
    s.wait_worker_drained(); s.assert_clean_error_log(); s.stop()

Environment:
    GUICHET_MODULE   the .so to load (default build/ngx_http_guichet_module.so)
    GUICHET_ASAN=1   start nginx with LD_PRELOAD=libasan (an ASan module)
    GUICHET_KEEP=1   keep the temporary directory after stop()
    GUICHET_PG_TEMPLATE  a directory `stack.py pg-template DIR` made: the
                     stack's PostgreSQL starts on a copy of its cluster
                     (cp -a) instead of initdb + createdb (tests/run-all)

Run alone, `python3 tests/integration/stack.py serve [TOWN | --no-town]`
starts a stack (--no-town: no guichetctl load-town at all), prints "URL
http://127.0.0.1:PORT" and runs until it gets SIGTERM/SIGINT/SIGHUP or
its parent ends, then stops the stack (tests/run-all and
tests/web/helpers.mjs use it for the browser tests).
"""

import fcntl
import http.client
import json as jsonlib
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import psycopg2
import redis as redislib

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, "build")
DEMO_TOWN = os.path.join(ROOT, "demo", "amberieu.json")
PGBIN = "/usr/lib/postgresql/15/bin"
NGINX = "/usr/sbin/nginx"
NGINX_GROUP = "nogroup"     # nginx's workers when its master runs as root
BAD_LOG = re.compile(r"\[(alert|crit|emerg)\]|AddressSanitizer|"
                     r"LeakSanitizer|runtime error:")


PORT_LOCKS = os.path.join(tempfile.gettempdir(), "guichet-test-ports")
_held_ports = []     # the lock of every port this process chose


def lock_port(port):
    """Takes port for this process (flock of PORT_LOCKS/<port>, held until
    it exits), as free_port() does for the ports it chooses: False when
    another process holds it.  For ports chosen elsewhere (cluster.py's
    node ports and their bus ports)."""
    os.makedirs(PORT_LOCKS, mode=0o1777, exist_ok=True)
    fd = os.open(os.path.join(PORT_LOCKS, str(port)),
                 os.O_CREAT | os.O_RDWR, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return False
    _held_ports.append(fd)
    return True


def free_port():
    """A loopback TCP port nobody listens on, below Linux's ephemeral range
    (32768-60999): a port the kernel handed out (bind to 0) is also what
    it hands to outgoing connections, and with the suites in lanes one of
    them took an ops stack's port before its nginx bound it.  Two stacks
    choosing at once (lanes, xdist workers) never get the same one: each
    port chosen is locked (flock of PORT_LOCKS/<port>) until the process
    that chose it exits, and another process skips a locked port."""
    rnd = random.SystemRandom()
    os.makedirs(PORT_LOCKS, mode=0o1777, exist_ok=True)
    while True:
        port = rnd.randrange(20000, 32768)
        fd = os.open(os.path.join(PORT_LOCKS, str(port)),
                     os.O_CREAT | os.O_RDWR, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                os.close(fd)
                continue
        _held_ports.append(fd)
        return port


def listens(pid, port):
    """Does process pid hold a TCP socket listening on port?"""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            col = row.split()
            if col[3] == "0A" and col[1].endswith(":%04X" % port):
                inodes.add("socket:[%s]" % col[9])
    try:
        fds = os.listdir("/proc/%d/fd" % pid)
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink("/proc/%d/fd/%s" % (pid, fd)) in inodes:
                return True
        except OSError:
            continue
    return False


class StackError(Exception):
    pass


class _Procs(dict):
    """Stack.procs: the running processes by name, remembering every one
    ever stored (self.every), so that stop() ends even one whose name was
    given to another since (a worker started again while the first still
    ran, a test's own process kept under a name stop() does not know)."""

    def __init__(self):
        super().__init__()
        self.every = []

    def __setitem__(self, name, p):
        self.every.append(p)
        super().__setitem__(name, p)


class Response:
    """What s.http() returns: status, headers (lower-case names), body."""

    def __init__(self, status, headers, body):
        self.status = status
        self.headers = {}
        self.header_list = headers
        for k, v in headers:
            self.headers[k.lower()] = v
        self.body = body

    def json(self):
        return jsonlib.loads(self.body)

    def header_all(self, name):
        return [v for k, v in self.header_list if k.lower() == name.lower()]

    def __repr__(self):
        return "<Response %d %r>" % (self.status, self.body[:300])


class Stack:

    # What a subclass (or a caller) may change: the configuration template
    # of lua-free-config/ nginx starts with, and PostgreSQL's settings (the
    # tests trade durability for speed; a benchmark wants fsync on).
    nginx_template = "dev.conf"
    pg_settings = {"fsync": "off", "synchronous_commit": "off",
                   "full_page_writes": "off"}
    # nginx's module and the worker reach Redis on its unix socket (as on
    # a single host) rather than on 127.0.0.1 (the tests' own client always
    # uses TCP)
    redis_unix = False
    # a shared object LD_PRELOAD'ed into nginx (guichet-office) and the
    # environment it reads when loaded (test_module_faults.py's
    # faults_preload.c); None: none
    nginx_preload = None
    nginx_env = {}
    office_preload = None
    office_env = {}
    # a password Redis requires (requirepass), given to the module
    # (guichet_redis_password through render-conf.sh), the worker, the
    # office and guichetctl (redis_password); None: no password
    redis_password = None
    # the town served (guichet_town, the setting town): its Redis keys
    # are "{<town_id>}:..."; the town file must carry the same town.id
    # (none for main)
    town_id = "main"
    # more towns served by the same nginx, each on its host name
    # <id>.localhost (lua-free-config/dev-town.conf), space-separated; the
    # test makes and loads them (guichetctl --town ID migrate, load-town)
    extra_towns = ""

    def __init__(self, town=DEMO_TOWN, module=None, name="stack",
                 nginx_template=None, pg_settings=None, town_id=None):
        if town_id is not None:
            self.town_id = town_id
        if nginx_template is not None:
            self.nginx_template = nginx_template
        if pg_settings is not None:
            self.pg_settings = dict(self.pg_settings, **pg_settings)
        self.town = town
        self.module = module or os.environ.get(
            "GUICHET_MODULE",
            os.path.join(BUILD, "ngx_http_guichet_module.so"))
        self.module = os.path.abspath(self.module)
        self.asan = os.environ.get("GUICHET_ASAN") == "1"
        self.name = name
        self.dir = None
        self.procs = _Procs()
        self._redis = None
        self._pg = None
        self.pg_started = False
        # another build of guichet-worker (bench/profile.py's A/B)
        self.worker_bin = None

    # ----- life cycle ---------------------------------------------------

    def start(self):
        for f in (self.module, self.ctl, os.path.join(BUILD, "guichet-worker"),
                  os.path.join(BUILD, "guichet-office")):
            if not os.path.exists(f):
                raise StackError("%s is missing: run make build" % f)
        self.dir = tempfile.mkdtemp(prefix="guichet-%s-" % self.name)
        os.chmod(self.dir, 0o755)
        try:
            self._start_redis()
            self._start_postgres()
            self._start_paysim()
            self._setup()
            self._start_worker()
            self._start_office()
            self._start_nginx()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self):
        nginx = self.procs.pop("nginx", None)
        if nginx is not None:
            self._end(nginx, signal.SIGQUIT, 10)
        for name in ("office", "worker", "paysim", "redis"):
            p = self.procs.pop(name, None)
            if p is not None:
                self._end(p, signal.SIGTERM, 10)
        # whatever else this stack started and is still running: a process
        # replaced under its name, or one under a name unknown here
        for p in self.procs.every:
            self._end(p, signal.SIGTERM, 10)
        del self.procs.every[:]
        if self._pg is not None:
            self._pg.close()
            self._pg = None
        if self.pg_started:
            self._as_postgres([PGBIN + "/pg_ctl", "-D", self.pgdata,
                               "-m", "immediate", "-w", "stop"],
                              check=False)
            self.pg_started = False
        if self.dir and os.environ.get("GUICHET_KEEP") != "1":
            shutil.rmtree(self.dir, ignore_errors=True)

    @staticmethod
    def _end(p, sig, timeout):
        if p.poll() is None:
            p.send_signal(sig)
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def _path(self, *parts):
        return os.path.join(self.dir, *parts)

    @property
    def ctl(self):
        return os.path.join(BUILD, "guichetctl")

    @staticmethod
    def _wait(what, ok, timeout=15):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ok():
                return
            time.sleep(0.05)
        raise StackError("%s did not come up within %ds" % (what, timeout))

    def _log(self, name):
        return open(self._path(name + ".log"), "ab")

    # ----- Redis ----------------------------------------------------------

    def _start_redis(self, port=None, extra=(), loading=False):
        self.redis_port = port or free_port()
        os.makedirs(self._path("redis"), exist_ok=True)
        self.procs["redis"] = subprocess.Popen(
            ["redis-server", os.path.join(ROOT, "lua-free-config",
                                          "redis.conf"),
             "--bind", "127.0.0.1",
             "--port", str(self.redis_port), "--dir", self._path("redis"),
             "--unixsocket", self._path("redis.sock"),
             "--unixsocketperm", "777"]
            + (["--requirepass", self.redis_password]
               if self.redis_password else []) + list(extra),
            stdout=self._log("redis"), stderr=subprocess.STDOUT)
        self._redis = redislib.Redis(host="127.0.0.1", port=self.redis_port,
                                     password=self.redis_password,
                                     decode_responses=True)

        def up():
            try:
                # ours: another stack choosing the same free port at the
                # same time (free_port) would answer the ping while ours
                # exits, unable to bind
                if (self._redis.ping()
                        and self._redis.info("server")["process_id"]
                        == self.procs["redis"].pid):
                    return True
                if self.procs["redis"].poll() is not None:
                    raise StackError("redis-server exited: " +
                                     self.read("redis.log"))
                return False
            except redislib.BusyLoadingError:
                if loading:
                    return True     # up, still loading its data: enough
                return False
            except redislib.ConnectionError:
                if self.procs["redis"].poll() is not None:
                    raise StackError("redis-server exited: " +
                                     self.read("redis.log"))
                return False
        self._wait("redis", up)

    @property
    def redis(self):
        return self._redis

    @property
    def redis_address(self):
        """Redis as the module and the worker see it."""
        if self.redis_unix:
            return "unix:" + self._path("redis.sock")
        return "127.0.0.1:%d" % self.redis_port

    def stop_redis(self, sig=signal.SIGTERM):
        """Stops redis-server (SIGTERM: its AOF is complete; SIGKILL: as a
        crash).  start_redis() brings it back on the same port with the
        same directory, hence the same data."""
        p = self.procs.pop("redis", None)
        if p is not None:
            self._end(p, sig, 10)

    def start_redis(self, extra=(), loading=False):
        """(Re)starts redis-server on its port and directory, with extra
        command-line settings; loading=True returns as soon as it answers,
        even LOADING (it is still reading its AOF)."""
        self._start_redis(port=self.redis_port, extra=extra,
                          loading=loading)

    # ----- PostgreSQL -----------------------------------------------------

    def _as_postgres(self, argv, check=True, **kw):
        if os.geteuid() == 0:
            argv = ["runuser", "-u", "postgres", "--"] + argv
        return subprocess.run(argv, check=check, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, **kw)

    def _start_postgres(self):
        self.pg_port = free_port()
        self.pg_socket = self._path("pg", "run")
        self.pgdata = self._path("pg", "data")
        os.makedirs(self.pg_socket)
        if os.geteuid() == 0:
            for d in (self._path("pg"), self.pg_socket):
                shutil.chown(d, "postgres", "postgres")
        template = os.environ.get("GUICHET_PG_TEMPLATE")
        if template and os.path.exists(os.path.join(template, "data",
                                                    "PG_VERSION")):
            # a copy of the cluster pg_template() made once (tests/run-all)
            r = subprocess.run(["cp", "-a", os.path.join(template, "data"),
                                self.pgdata], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT)
            if r.returncode != 0:
                raise StackError("cp -a of the template cluster failed: " +
                                 r.stdout.decode())
        else:
            initdb(self.pgdata)
        opts = "-p %d -c listen_addresses=127.0.0.1 -k %s" % (
            self.pg_port, self.pg_socket)
        for k, v in self.pg_settings.items():
            opts += " -c %s=%s" % (k, v)
        # stop() stops it even when pg_ctl did not see it up; pg_ctl in a
        # session of its own, as the postmaster it starts: a signal to
        # this process group (a timeout's) does not end it before
        # postmaster.pid names the server (stack.py serve)
        self.pg_started = True
        r = self._as_postgres([PGBIN + "/pg_ctl", "-D", self.pgdata, "-w",
                               "-t", "30", "-l", self._path("pg", "log"),
                               "-o", opts, "start"], check=False,
                              start_new_session=True)
        if r.returncode != 0:
            raise StackError("postgres did not start: " + r.stdout.decode())
        c = psycopg2.connect(host=self.pg_socket, port=self.pg_port,
                             user="postgres", dbname="postgres")
        c.autocommit = True
        with c.cursor() as cur:
            cur.execute("select 1 from pg_database where datname = 'guichet'")
            if not cur.fetchall():      # else the template's, empty
                cur.execute("create database guichet")
        c.close()
        self.pg_conninfo = ("host=%s port=%d dbname=guichet user=postgres"
                            % (self.pg_socket, self.pg_port))

    def sql(self, query, params=None):
        """Runs one statement (autocommit); the rows, or [] without any."""
        if self._pg is None or self._pg.closed:
            self._pg = psycopg2.connect(self.pg_conninfo)
            self._pg.autocommit = True
        with self._pg.cursor() as cur:
            cur.execute(query, params)
            return cur.fetchall() if cur.description else []

    # ----- guichetctl, worker ---------------------------------------------

    def _setup(self):
        self.secret = self._path("secret.key")
        self.worker_conf = self._path("worker.conf")
        with open(self.worker_conf, "w") as f:
            f.write("# written by tests/integration/stack.py\n"
                    "redis = %s\n"
                    "postgres = \"%s\"\n"
                    "secret_file = %s\n"
                    "migrations_dir = %s\n"
                    "invoice_dir = %s\n"
                    "office_listen = unix:%s\n"
                    "office_upload_dir = %s\n"
                    "recount_after_ms = 3000\n"
                    % (self.redis_address, self.pg_conninfo, self.secret,
                       os.path.join(ROOT, "sql", "migrations"),
                       self._path("invoices"), self._path("office.sock"),
                       self._path("uploads")))
            # office.sock is 0660: its group must be nginx's workers'
            # (started by root without a user directive, they run as
            # nobody:nogroup, Debian's build defaults)
            if os.geteuid() == 0:
                f.write("office_socket_group = %s\n" % NGINX_GROUP)
            if self.redis_password:
                f.write("redis_password = %s\n" % self.redis_password)
            if self.town_id != "main":
                f.write("town = %s\n" % self.town_id)
            # nginx's port is chosen now: the payment provider's return
            # and notification addresses are on the site (site_url)
            self.port = free_port()
            f.write("site_url = http://127.0.0.1:%d\n"
                    "payfip_url = %s\n"
                    "sepa_creditor_name = \"Régie des tests\"\n"
                    "sepa_creditor_iban = FR1420041010050500013M02606\n"
                    "sepa_creditor_bic = PSSTFRPPXXX\n"
                    "sepa_creditor_id = FR12ZZZ123456\n"
                    % (self.port, self.payfip_url))
        if isinstance(self.town, dict):
            self.town_file = self._path("town.json")
            with open(self.town_file, "w") as f:
                jsonlib.dump(self.town, f, ensure_ascii=False, indent=1)
        elif self.town is not None:
            self.town_file = os.path.abspath(self.town)
        self.ctl_run("init-secret", self.secret, conf=False)
        self.ctl_run("migrate")
        if self.town is not None:       # None: no town file at all
            self.ctl_run("load-town", self.town_file)

    def ctl_run(self, *args, conf=True):
        """Runs guichetctl; its stdout (str).  StackError when it fails."""
        argv = [self.ctl] + (["-c", self.worker_conf] if conf else [])
        argv += list(args)
        r = subprocess.run(argv, cwd=ROOT, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE)
        if r.returncode != 0:
            raise StackError("%s: exit %d: %s" % (" ".join(argv),
                             r.returncode, r.stderr.decode()))
        return r.stdout.decode()

    def token(self, family_id):
        return self.ctl_run("token", family_id).strip()

    def tokens(self):
        """{family_id: token} of every family, from `guichetctl tokens`."""
        out = {}
        for line in self.ctl_run("tokens").splitlines():
            if line.strip():
                fid, tok = line.split()
                out[fid] = tok
        return out

    def _start_worker(self):
        w = self.procs.get("worker")
        if w is not None and w.poll() is None:
            # two workers on one stack is never what a test means (a test
            # that stops the worker did not run first: pytest -k, --lf)
            raise StackError("guichet-worker %d is still running: stop it"
                             " before starting another" % w.pid)
        self.procs["worker"] = subprocess.Popen(
            [self.worker_bin or os.path.join(BUILD, "guichet-worker"), "-c",
             self.worker_conf],
            cwd=ROOT, stdout=self._log("worker"), stderr=subprocess.STDOUT)
        time.sleep(0.1)
        if self.procs["worker"].poll() is not None:
            raise StackError("guichet-worker exited: " +
                             self.read("worker.log"))

    def _start_office(self):
        """guichet-office (the family space and the back office) on the
        unix socket office.sock of the stack's directory."""
        office = os.path.join(BUILD, "guichet-office")
        if self.asan and os.path.exists(os.path.join(BUILD, "asan",
                                                     "guichet-office")):
            office = os.path.join(BUILD, "asan", "guichet-office")
        env = dict(os.environ)
        if self.office_preload:
            env["LD_PRELOAD"] = " ".join(
                p for p in (env.get("LD_PRELOAD"), self.office_preload) if p)
            env.update(self.office_env)
        self.procs["office"] = subprocess.Popen(
            [office, "-c", self.worker_conf], env=env,
            cwd=ROOT, stdout=self._log("office"), stderr=subprocess.STDOUT)
        sock = self._path("office.sock")

        # listening, not only there: the office binds the socket, sets its
        # mode and group, then listens; nginx's workers (not root) cannot
        # connect before, and a request right after a restart was 503
        # (test_office_core's office-down test on a loaded machine)
        def up():
            if self.procs["office"].poll() is not None:
                raise StackError("guichet-office exited: " +
                                 self.read("office.log"))
            if not os.path.exists(sock):
                return False
            with socket.socket(socket.AF_UNIX) as c:
                try:
                    c.connect(sock)
                except OSError:
                    return False
            return True
        self._wait("guichet-office", up)

    def stream_position(self):
        """The last id of {T}:stream the worker has persisted
        (stream_position, migration 0050), None before the migration."""
        try:
            rows = self.sql("select last_id from town_%s.stream_position"
                            % self.town_id.replace("-", "_"))
        except psycopg2.Error:
            self._pg.close()
            return None
        return rows[0][0] if rows else None

    def stream_unpersisted(self):
        """How many entries of {T}:stream are after the persisted position
        (-1 before the migration)."""
        pos = self.stream_position()
        if pos is None:
            return -1
        return len(self.redis.xrange("{%s}:stream" % self.town_id,
                                      "(" + pos, "+"))

    def wait_worker_drained(self, timeout=15):
        """Waits until the worker has persisted every entry of the stream
        {main}:stream (none after stream_position)."""
        stream = "{%s}:stream" % self.town_id
        self._wait("the worker draining " + stream,
                   lambda: self.stream_unpersisted() == 0, timeout)

    # ----- nginx ---------------------------------------------------------

    def _start_paysim(self):
        """The payment provider's simulator (office/paysim/paysim.py)."""
        self.paysim_port = free_port()
        self.payfip_url = "http://127.0.0.1:%d" % self.paysim_port
        self.procs["paysim"] = subprocess.Popen(
            [sys.executable, os.path.join(ROOT, "office", "paysim",
                                          "paysim.py"),
             "--port", str(self.paysim_port)],
            cwd=ROOT, stdout=self._log("paysim"), stderr=subprocess.STDOUT)

        def up():
            if self.procs["paysim"].poll() is not None:
                raise StackError("paysim exited: " + self.read("paysim.log"))
            try:
                socket.create_connection(("127.0.0.1", self.paysim_port),
                                         0.5).close()
                return True
            except OSError:
                return False
        self._wait("the payment simulator", up)

    def _start_nginx(self):
        self.port = getattr(self, "port", None) or free_port()
        ndir = self._path("nginx")
        os.mkdir(ndir)
        self.nginx_conf = os.path.join(ndir, "nginx.conf")
        self.error_log_path = os.path.join(ndir, "error.log")
        subprocess.run([os.path.join(ROOT, "scripts", "render-conf.sh"),
                        os.path.join(ROOT, "lua-free-config",
                                     self.nginx_template),
                        self.nginx_conf, self.module, ndir, str(self.port),
                        self.redis_address, self.secret,
                        self._path("invoices"), self._path("office.sock")],
                       env=dict(os.environ, GUICHET_REDIS_PASSWORD=(
                           self.redis_password or ""),
                           GUICHET_TOWN_ID=self.town_id,
                           GUICHET_EXTRA_TOWNS=self.extra_towns),
                       check=True)
        env = dict(os.environ)
        if self.asan:
            libasan = subprocess.run(["gcc", "-print-file-name=libasan.so"],
                                     stdout=subprocess.PIPE,
                                     check=True).stdout.decode().strip()
            env["LD_PRELOAD"] = libasan
            env.setdefault("ASAN_OPTIONS", "detect_leaks=0:abort_on_error=0")
            env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
        if self.nginx_preload:
            env["LD_PRELOAD"] = " ".join(
                p for p in (env.get("LD_PRELOAD"), self.nginx_preload) if p)
            env.update(self.nginx_env)
        self.procs["nginx"] = subprocess.Popen(
            [NGINX, "-p", ndir, "-c", self.nginx_conf, "-e",
             self.error_log_path, "-g", "daemon off;"],
            env=env, stdout=self._log("nginx-stderr"),
            stderr=subprocess.STDOUT)

        def listening():
            if self.procs["nginx"].poll() is not None:
                raise StackError("nginx exited: " + self.error_log())
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
            except OSError:
                return False
            # ours: another stack's nginx on the same port (free_port is
            # racy between stacks starting at once) would answer too,
            # while ours retries its bind() and exits
            return listens(self.procs["nginx"].pid, self.port)
        self._wait("nginx", listening)

        # the module reads the catalogue from Redis shortly after start
        def healthy():
            try:
                return self.http("GET", "/api/health").status == 200
            except OSError:
                return False
        try:
            self._wait("GET /api/health = 200", healthy, 10)
        except StackError:
            pass    # the tests will say what is wrong
        # and by every worker, not only the one that answered: on a loaded
        # machine the other could still be without it (503 unavailable
        # for the test's next request)
        if self.town is not None:
            try:
                self.wait_catalogue_everywhere(timeout=10)
            except Exception:
                pass    # no /metrics here, no Redis yet...: as above

    def held_generations(self, town=None, what="catalogue"):
        """{worker: (pid, generation)}: the generation of town's catalogue
        (default the stack's town; what="revoked": of its set of revoked
        tokens) the nginx worker of that slot holds, and that worker's
        pid, from /metrics (guichet_catalogue_generation,
        guichet_revoked_generation)."""
        town = town or self.town_id
        r = self.http("GET", "/metrics")
        assert r.status == 200, r
        pat = re.compile(r'^guichet_%s_generation\{town="%s",'
                         r'worker="(\d+)",pid="(\d+)"\} (\d+)$'
                         % (what, re.escape(town)))
        held = {}
        for line in r.body.decode().splitlines():
            m = pat.match(line)
            if m:
                held[int(m.group(1))] = (int(m.group(2)), int(m.group(3)))
        assert held, "no guichet_%s_generation of town %s" % (what, town)
        return held

    def catalogue_generations(self, town=None, what="catalogue"):
        """{worker: generation} of held_generations()."""
        return {w: g for w, (_, g) in
                self.held_generations(town, what).items()}

    def nginx_worker_pids(self):
        """The pids of the nginx master's worker processes (None when this
        stack's nginx is not its child: a test replaced it)."""
        p = self.procs.get("nginx")
        if p is None or p.poll() is not None:
            return None
        try:
            with open("/proc/%d/task/%d/children" % (p.pid, p.pid)) as f:
                kids = [int(x) for x in f.read().split()]
        except OSError:
            return None
        pids = set()
        for k in kids:
            try:
                with open("/proc/%d/cmdline" % k, "rb") as f:
                    if b"worker process" in f.read():
                        pids.add(k)
            except OSError:
                pass
        return pids

    def wait_catalogue_everywhere(self, town=None, timeout=20,
                                  what="catalogue"):
        """Waits until every nginx worker holds the catalogue generation
        Redis holds ({T}:catalogue:gen; what="revoked": the revoked
        tokens', {T}:revoked:gen) or a newer one, and returns it: each
        worker reloads on its own every guichet_catalogue_refresh, so a
        change one answer showed may not yet be the other worker's; after
        this, whichever worker takes a request answers from it.  Each
        slot's pid must be one of the master's workers: a worker killed
        leaves its values until the one respawned in its slot starts."""
        town = town or self.town_id
        gen = int(self.redis.get("{%s}:%s:gen" % (town, what)) or 0)
        last = {}

        def everywhere():
            last.clear()
            last.update(self.held_generations(town, what))
            live = self.nginx_worker_pids()
            return (min(g for _, g in last.values()) >= gen
                    and (live is None
                         or {p for p, _ in last.values()} == live))
        try:
            self._wait("every nginx worker holding %s generation %d"
                       % (what, gen), everywhere, timeout)
        except StackError as e:
            raise AssertionError("%s: %r" % (e, last))
        return gen

    def wait_revoked_everywhere(self, town=None, timeout=20):
        """Waits until every nginx worker holds the revoked tokens Redis
        holds (a logout's {T}:revoked:gen or newer): a token logged out is
        then refused by each."""
        return self.wait_catalogue_everywhere(town, timeout, "revoked")

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def http(self, method, path, json=None, headers=None, token=None,
             body=None, timeout=30):
        """One request on a fresh connection.  json is encoded (and
        Content-Type set); body sends raw bytes/str as they are; token adds
        Authorization: Bearer."""
        h = {}
        if json is not None:
            body = jsonlib.dumps(json)
            h["Content-Type"] = "application/json"
        if token is not None:
            h["Authorization"] = "Bearer " + token
        h.update(headers or {})
        if isinstance(body, str):
            body = body.encode()
        c = http.client.HTTPConnection("127.0.0.1", self.port,
                                       timeout=timeout)
        try:
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            return Response(r.status, r.getheaders(), r.read())
        finally:
            c.close()

    # ----- logs ------------------------------------------------------------

    def read(self, name):
        try:
            with open(self._path(name), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def error_log(self):
        """nginx's error log plus whatever nginx wrote on stderr (ASan)."""
        return (self.read(os.path.join("nginx", "error.log")) +
                self.read("nginx-stderr.log"))

    def assert_clean_error_log(self):
        bad = [l for l in self.error_log().splitlines() if BAD_LOG.search(l)]
        assert not bad, "nginx error log:\n" + "\n".join(bad[:20])
        # guichet-office runs with ASan+UBSan under GUICHET_ASAN=1
        bad = [l for l in self.read("office.log").splitlines()
               if BAD_LOG.search(l)]
        assert not bad, "guichet-office log:\n" + "\n".join(bad[:20])


def _as_postgres(argv, check=True, **kw):
    return Stack._as_postgres(None, argv, check=check, **kw)


def initdb(pgdata):
    """A new PostgreSQL 15 cluster in pgdata (whose parent postgres owns
    when we are root)."""
    r = _as_postgres([PGBIN + "/initdb", "-D", pgdata, "-U", "postgres",
                      "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8",
                      "--no-sync"], check=False)
    if r.returncode != 0:
        raise StackError("initdb failed: " + r.stdout.decode())


def pg_template(top):
    """Makes top/data, a cluster as a Stack's own initdb makes it, with its
    empty database guichet, shut down cleanly.  With GUICHET_PG_TEMPLATE=top
    in their environment, Stacks start on a copy of it (cp -a) instead of
    running initdb and createdb each (tests/run-all: a second or more per
    stack on a loaded machine)."""
    os.makedirs(top, exist_ok=True)
    os.chmod(top, 0o755)
    if os.geteuid() == 0:
        shutil.chown(top, "postgres", "postgres")
    data = os.path.join(top, "data")
    initdb(data)
    sock = tempfile.mkdtemp(prefix="guichet-pgt-")
    os.chmod(sock, 0o777)
    port = free_port()
    r = _as_postgres([PGBIN + "/pg_ctl", "-D", data, "-w", "-t", "60",
                      "-l", os.path.join(sock, "log"), "-o",
                      "-p %d -c listen_addresses='' -k %s" % (port, sock),
                      "start"], check=False)
    try:
        if r.returncode != 0:
            raise StackError("postgres did not start: " + r.stdout.decode())
        c = psycopg2.connect(host=sock, port=port, user="postgres",
                             dbname="postgres")
        c.autocommit = True
        c.cursor().execute("create database guichet")
        c.close()
    finally:
        _as_postgres([PGBIN + "/pg_ctl", "-D", data, "-m", "fast", "-w",
                      "stop"], check=False)
        shutil.rmtree(sock, ignore_errors=True)


def _die_with_parent(sig):
    """sig comes to this process when its parent ends (PR_SET_PDEATHSIG):
    False when the parent has already ended."""
    import ctypes
    parent = os.getppid()
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(1, int(sig), 0, 0, 0) != 0:       # PR_SET_PDEATHSIG
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG)")
    return os.getppid() == parent


def serve(town):
    """Whatever ends serve short of SIGKILL stops what it started:
    SIGTERM (a timeout's, tests/web/helpers.mjs' stopStack), SIGINT or
    SIGHUP, at any time (while the stack starts too: start() goes on to
    its end, then everything stops), and its parent's end (a node test
    file or a shell killed: SIGTERM by PR_SET_PDEATHSIG).  Its
    PostgreSQL is in a session of its own (pg_ctl setsid()s it): no
    signal to serve's process group reaches it, only stop() does
    (tests/integration/test_stack_serve.py)."""
    stop = []
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda n, _: stop.append(n))
    if not _die_with_parent(signal.SIGTERM):
        return
    s = Stack(town=town, name="serve")
    try:
        s.start()
        if not stop:
            print("URL " + s.url, flush=True)
            # the browser tests run guichetctl (staff-add, invoice,
            # sepa-export)
            print("CONF " + s.worker_conf, flush=True)
        while not stop:
            time.sleep(0.2)
    finally:
        s.stop()


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "serve":
        arg = sys.argv[2] if len(sys.argv) > 2 else DEMO_TOWN
        serve(None if arg == "--no-town" else arg)
    elif len(sys.argv) == 3 and sys.argv[1] == "pg-template":
        pg_template(sys.argv[2])
    else:
        sys.exit("usage: stack.py serve [TOWN | --no-town]\n"
                 "       stack.py pg-template DIR")
