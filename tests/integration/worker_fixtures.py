"""worker_fixtures.py -- real redis-server and PostgreSQL 15 for the worker.

Kept apart from conftest.py (shared by the whole stack) so that the worker's
tests can run alone:  /usr/bin/python3 -m pytest tests/integration/test_worker.py

Environment:
  GCHW_BIN_DIR  where guichet-worker and guichetctl are (default build/)
"""

import os
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
BIN = os.environ.get("GCHW_BIN_DIR", os.path.join(ROOT, "build"))
PGBIN = "/usr/lib/postgresql/15/bin"


from stack import free_port  # noqa: E402,F401 -- below the ephemeral range


def wait_for(pred, timeout=10.0, step=0.05):
    """pred()'s first true value, polled until timeout s (then its last
    value).  The timeout is a bound for a worker that never does it, never
    a measure: at least 30 s, since the worker shares a loaded machine
    with the other suites (xdist, ASan, the lanes), where 5 or 10 s of a
    busy worker and PostgreSQL's fsyncs ran out while nothing was
    wrong."""
    end = time.time() + max(timeout, 30.0)
    while time.time() < end:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


def as_postgres(args, **kw):
    if os.geteuid() == 0:
        args = ["runuser", "-u", "postgres", "--"] + args
    return subprocess.run(args, check=True, capture_output=True, **kw)


@pytest.fixture(scope="module")
def pg_server():
    """A throw-away PostgreSQL 15 cluster; yields a dict with conninfo."""
    if not os.path.exists(os.path.join(PGBIN, "initdb")):
        pytest.skip("PostgreSQL 15 is not installed")
    tmp = tempfile.mkdtemp(prefix="gchw-pg-")
    os.chmod(tmp, 0o755)
    data = os.path.join(tmp, "data")
    if os.geteuid() == 0:
        shutil.chown(tmp, "postgres")
    port = free_port()
    as_postgres([os.path.join(PGBIN, "initdb"), "-D", data, "-A", "trust",
                 "-U", "postgres", "--no-sync"])
    as_postgres([os.path.join(PGBIN, "pg_ctl"), "-D", data, "-w", "-l",
                 os.path.join(tmp, "log"), "-o",
                 "-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off"
                 % (port, tmp), "start"])
    info = {"dir": tmp, "port": port, "data": data,
            "conninfo": "host=%s port=%d user=postgres" % (tmp, port)}
    try:
        yield info
    finally:
        subprocess.run((["runuser", "-u", "postgres", "--"]
                        if os.geteuid() == 0 else [])
                       + [os.path.join(PGBIN, "pg_ctl"), "-D", data,
                          "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture()
def pg_db(pg_server):
    """A fresh database per test; yields its conninfo."""
    import psycopg2
    name = "t%d" % int(time.time() * 1e6)
    c = psycopg2.connect(pg_server["conninfo"] + " dbname=postgres")
    c.autocommit = True
    c.cursor().execute("create database " + name)
    c.close()
    yield pg_server["conninfo"] + " dbname=" + name


@pytest.fixture(scope="module")
def redis_server():
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    tmp = tempfile.mkdtemp(prefix="gchw-redis-")
    port = free_port()
    p = subprocess.Popen(["redis-server", "--port", str(port), "--bind",
                          "127.0.0.1", "--save", "", "--appendonly", "no",
                          "--dir", tmp], stdout=subprocess.DEVNULL)
    import redis
    r = redis.Redis(port=port)
    wait_for(lambda: _ping(r))
    try:
        yield {"port": port, "addr": "127.0.0.1:%d" % port}
    finally:
        p.terminate()
        p.wait()
        shutil.rmtree(tmp, ignore_errors=True)


def _ping(r):
    try:
        return r.ping()
    except Exception:
        return False


@pytest.fixture()
def rds(redis_server):
    import redis
    r = redis.Redis(port=redis_server["port"])
    r.flushall()
    return r


@pytest.fixture()
def worker_conf(tmp_path, pg_db, redis_server):
    """A settings file for guichetctl and guichet-worker, and the secret."""
    secret = tmp_path / "secret.key"
    subprocess.run([os.path.join(BIN, "guichetctl"), "init-secret",
                    str(secret)], check=True)
    conf = tmp_path / "worker.conf"
    conf.write_text(
        "# test settings\n"
        "redis = %s\n"
        "postgres = \"%s\"\n"
        "secret_file = %s\n"
        "migrations_dir = %s\n"
        "batch_size = 10\n"
        "batch_wait_ms = 20\n"
        "heartbeat_ms = 100\n"
        "claim_idle_ms = 300\n"
        "reap_after_ms = 500\n"
        "publish_interval_ms = 100\n"
        % (redis_server["addr"], pg_db, secret,
           os.path.join(ROOT, "sql", "migrations")))
    return {"conf": str(conf), "secret": str(secret), "pg": pg_db}


def ctl(conf, *args, check=True):
    p = subprocess.run([os.path.join(BIN, "guichetctl"), "-c", conf]
                       + list(args), capture_output=True, text=True)
    if check and p.returncode != 0:
        raise AssertionError("guichetctl %s: %d\n%s%s"
                             % (" ".join(args), p.returncode, p.stdout,
                                p.stderr))
    return p


class Worker:
    def __init__(self, conf, log):
        self.conf = conf
        self.log = log
        self.p = None

    def start(self):
        self.p = subprocess.Popen([os.path.join(BIN, "guichet-worker"),
                                   "-c", self.conf],
                                  stderr=open(self.log, "ab"))
        return self

    def kill9(self):
        self.p.send_signal(signal.SIGKILL)
        self.p.wait()

    def stop(self):
        if self.p and self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            return self.p.wait(timeout=10)
        return self.p.returncode if self.p else None


@pytest.fixture()
def worker(worker_conf, tmp_path):
    ws = []

    def make():
        w = Worker(worker_conf["conf"], str(tmp_path / "worker.log"))
        ws.append(w)
        return w.start()

    yield make
    for w in ws:
        if w.p and w.p.poll() is None:
            w.p.kill()
            w.p.wait()


def pg_stop(info):
    """Stops the cluster of pg_server (fast shutdown: clients cut)."""
    as_postgres([os.path.join(PGBIN, "pg_ctl"), "-D", info["data"], "-m",
                 "fast", "-w", "stop"])


def pg_start(info):
    """Starts the cluster of pg_server again, same port and socket."""
    as_postgres([os.path.join(PGBIN, "pg_ctl"), "-D", info["data"], "-w",
                 "-l", os.path.join(info["dir"], "log"), "-o",
                 "-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off"
                 % (info["port"], info["dir"]), "start"])
