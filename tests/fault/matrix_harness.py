"""matrix_harness.py -- the fault matrix's harness (matrix.py): the town
and the settings of its stacks, the stacks (MatrixStack, on a Redis
Cluster ClusterMatrixStack with its six towns), processes found in /proc,
and the tools of the faults that need some (iptables for the network
drop, a tmpfs for the full disk); FaultError, need and wait_until.  The
rush is matrix_rush.py, the faults matrix_faults.py.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from faultlib import Stack, rush_town  # noqa: E402
from stack import NGINX, PGBIN  # noqa: E402
from cluster import ClusterStack, key_slot  # noqa: E402


TIMEOUT_S = 1.0                 # guichet_timeout of the matrix's nginx
RUSH_FAMILIES = 800
PROBE_FAMILIES = 10
BULK = ["s%02d" % i for i in range(1, 12)]
SESSIONS = [("hot", 10)] + [(sid, 1000) for sid in BULK] + [("probe", 40)]
TOWN = rush_town(families=RUSH_FAMILIES + PROBE_FAMILIES, sessions=SESSIONS)
WORKER_SETTINGS = {"reap_after_ms": 8000, "claim_idle_ms": 3000,
                   "recount_after_ms": 3000}
OK_REASONS = {"full", "already_booked"}
# on a Redis Cluster: six towns of CLUSTER_FAMILIES rush families each (and
# PROBE_FAMILIES), two on each of the three masters (six_towns)
CLUSTER_FAMILIES = 150


def six_towns():
    """Six town ids whose hash tags {<id>} land two on each master of a
    fresh 3-master cluster (redis-cli --cluster create gives them the slots
    0-5460, 5461-10922 and 10923-16383), in turn: a town of each master,
    then the second of each.  check_spread checks it on the live cluster."""
    thirds = [[], [], []]
    i = 0
    while any(len(x) < 2 for x in thirds):
        i += 1
        tid = "ville%d" % i
        slot = key_slot("{%s}" % tid)
        x = thirds[0 if slot <= 5460 else 1 if slot <= 10922 else 2]
        if len(x) < 2:
            x.append(tid)
    return [tid for pair in zip(*thirds) for tid in pair]


TOWNS6 = six_towns()


def six_town(tid):
    town = rush_town(families=CLUSTER_FAMILIES + PROBE_FAMILIES,
                     sessions=SESSIONS)
    town["town"] = dict(town["town"], id=tid, name="Panne " + tid)
    return town


def fam(i):
    return "f-%04d" % i


def child(fid):
    return "c-" + fid[2:]


class FaultError(AssertionError):
    pass


def need(cond, what):
    if not cond:
        raise FaultError(what)


def wait_until(what, ok, timeout, step=0.05):
    """ok() true within timeout s (a bound for a hung fault, never a
    measure); FaultError otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        v = ok()
        if v:
            return v
        if time.monotonic() > deadline:
            raise FaultError("%s: not within %ss" % (what, timeout))
        time.sleep(step)


# ----- processes ----------------------------------------------------------

def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def children(pid):
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            out.append(int(d))
    return out


def cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


class PidProc:
    """What Stack.stop() needs of a process it did not start itself (the
    new nginx master after a binary upgrade)."""

    def __init__(self, pid):
        self.pid = pid

    def poll(self):
        return None if alive(self.pid) else 0

    def send_signal(self, sig):
        try:
            os.kill(self.pid, sig)
        except ProcessLookupError:
            pass

    def kill(self):
        self.send_signal(signal.SIGKILL)

    def wait(self, timeout=None):
        deadline = time.monotonic() + (timeout or 3600)
        while alive(self.pid):
            if time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(str(self.pid), timeout)
            time.sleep(0.05)
        return 0


class MatrixStack(Stack):
    """A Stack whose worker settings file gets worker_settings
    (WORKER_SETTINGS by default)."""

    def __init__(self, *args, worker_settings=None, **kw):
        super().__init__(*args, **kw)
        self.worker_settings = worker_settings or WORKER_SETTINGS

    def _setup(self):
        super()._setup()
        with open(self.worker_conf, "a") as f:
            for k, v in self.worker_settings.items():
                f.write("%s = %s\n" % (k, v))

    def restart_worker(self):
        self._start_worker()

    def postgres_pids(self):
        with open(os.path.join(self.pgdata, "postmaster.pid")) as f:
            master = int(f.readline())
        return [master] + children(master)

    def start_postgres_again(self):
        """pg_ctl start on the same cluster and port (crash recovery)."""
        opts = "-p %d -c listen_addresses=127.0.0.1 -k %s" % (
            self.pg_port, self.pg_socket)
        for k, v in self.pg_settings.items():
            opts += " -c %s=%s" % (k, v)
        r = self._as_postgres([PGBIN + "/pg_ctl", "-D", self.pgdata, "-w",
                               "-t", "120", "-l", self._path("pg", "log"),
                               "-o", opts, "start"], check=False)
        need(r.returncode == 0, "pg_ctl start: " + r.stdout.decode())
        if self._pg is not None:
            self._pg.close()
            self._pg = None

    def nginx_master(self):
        return self.procs["nginx"].pid

    def nginx_workers(self, master=None):
        m = master or self.nginx_master()
        return sorted(p for p in children(m)
                      if "worker process" in cmdline(p))

    def nginx_as_daemon(self):
        """Replaces the stack's nginx (started in the foreground, a child of
        this process) by the same configuration started as a daemon, as
        Debian's nginx.service does: a master whose parent is still the
        one it started with ignores USR2 ("the changing binary signal is
        ignored")."""
        self._end(self.procs.pop("nginx"), signal.SIGQUIT, 30)
        env = dict(os.environ)
        if self.asan:
            env["LD_PRELOAD"] = subprocess.run(
                ["gcc", "-print-file-name=libasan.so"], check=True,
                stdout=subprocess.PIPE).stdout.decode().strip()
            env.setdefault("ASAN_OPTIONS", "detect_leaks=0:abort_on_error=0")
        r = subprocess.run([NGINX, "-p", os.path.dirname(self.nginx_conf),
                            "-c", self.nginx_conf, "-e", self.error_log_path],
                           env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT)
        need(r.returncode == 0, "nginx as a daemon: " + r.stdout.decode())
        pid = wait_until("nginx.pid of the daemon", self.pid_file, 30)
        self.procs["nginx"] = PidProc(pid)
        wait_until("GET /api/health = 200 from the daemon",
                   lambda: self.http("GET", "/api/health").status == 200,
                   30, step=0.1)

    def pid_file(self, suffix=""):
        path = os.path.join(self.dir, "nginx", "nginx.pid" + suffix)
        try:
            with open(path) as f:
                return int(f.read().strip() or 0)
        except (OSError, ValueError):
            return 0


class ClusterMatrixStack(MatrixStack, ClusterStack):
    """A MatrixStack on a Redis Cluster (ClusterStack) serving the six
    towns of TOWNS6: the first is the stack's own (town_id, on
    localhost), the five others each on <id>.localhost (extra_towns),
    made and loaded by start() (guichetctl --town ID migrate, load-town).
    towns are the six, each a TownView (town_id, redis: a client of its
    master now)."""

    town_id = TOWNS6[0]
    extra_towns = " ".join(TOWNS6[1:])

    def start(self):
        super().start()
        for tid in TOWNS6[1:]:
            path = self._path(tid + ".json")
            with open(path, "w") as f:
                json.dump(six_town(tid), f)
            self.ctl_run("--town", tid, "migrate")
            self.ctl_run("--town", tid, "load-town", path)
        self.towns = [TownView(self.cluster, tid) for tid in TOWNS6]
        return self

    def tokens(self):
        """{"<town>/<family>": token} of every family of the six towns."""
        out = {}
        for tid in TOWNS6:
            for line in self.ctl_run("--town", tid, "tokens").splitlines():
                if line.strip():
                    fid, tok = line.split()
                    out["%s/%s" % (tid, fid)] = tok
        return out

    def host(self, tid):
        """The Host header of the town tid's requests."""
        return {} if tid == self.town_id else {"Host": tid + ".localhost"}


class TownView:
    """One town of a ClusterMatrixStack as faultlib's and the checker's
    functions see a stack: town_id, redis (a client of the current master
    of the town's slot)."""

    def __init__(self, cluster, tid):
        self.cluster = cluster
        self.town_id = tid

    @property
    def master(self):
        return self.cluster.master_of("{%s}" % self.town_id)

    @property
    def redis(self):
        return self.master.client()

    _redis = redis


def check_spread(cluster, towns):
    """The six towns are two on each of the three masters; their ports
    by town id."""
    where = {tid: cluster.master_of("{%s}" % tid) for tid in towns}
    per = {}
    for tid, m in where.items():
        per.setdefault(m.port, []).append(tid)
    need(len(per) == 3 and all(len(v) == 2 for v in per.values()),
         "the towns are not two per master: %r" % per)
    return {tid: m.port for tid, m in where.items()}


# ----- the faults' tools --------------------------------------------------

NETDROP_MARK = "0x47"


def iptables(*args):
    r = subprocess.run(["iptables", "-w"] + list(args),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    need(r.returncode == 0, "iptables %s: %s" % (" ".join(args),
                                                 r.stdout.decode()))


def netdrop_prepare(redis_port):
    """Marks every connection nginx's workers (user nobody) open to Redis
    (connmark), so that one rule in OUTPUT drops both directions (on
    loopback every packet goes through OUTPUT)."""
    iptables("-t", "mangle", "-A", "OUTPUT", "-o", "lo", "-p", "tcp",
             "--dport", str(redis_port), "-m", "owner", "--uid-owner",
             "nobody", "-j", "CONNMARK", "--set-mark", NETDROP_MARK)


class Tmpfs:
    def __init__(self, size_mb):
        self.parent = tempfile.mkdtemp(prefix="guichet-fault-tmpfs-")
        os.chmod(self.parent, 0o755)
        self.path = os.path.join(self.parent, "disk")
        os.mkdir(self.path)
        opts = "size=%dm,mode=0755" % size_mb
        subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "guichet-fault",
                        self.path], check=True)

    def fill(self):
        """Writes a file until the tmpfs is full; its size in bytes."""
        self.filler = os.path.join(self.path, "filler")
        n = 0
        with open(self.filler, "wb", buffering=0) as f:
            for chunk in (1 << 20, 4096, 512):
                try:
                    while True:
                        n += f.write(b"\0" * chunk)
                except OSError:
                    pass
        return n

    def free(self):
        os.unlink(self.filler)

    def remove(self):
        subprocess.run(["umount", "-l", self.path], check=False)
        shutil.rmtree(self.parent, ignore_errors=True)


def disk_full_prepare(s):
    """Moves every table and index of the database guichet to a tablespace
    on a 16 MiB tmpfs; WAL stays on the cluster's disk."""
    disk = Tmpfs(16)
    ts = os.path.join(disk.path, "ts")
    os.mkdir(ts)
    shutil.chown(ts, "postgres", "postgres")
    os.chmod(ts, 0o700)
    s.sql("create tablespace fault_full location %s", (ts,))
    s.sql("alter table all in tablespace pg_default "
          "set tablespace fault_full")
    s.sql("alter index all in tablespace pg_default "
          "set tablespace fault_full")
    n = s.sql("select count(*) from pg_class c join pg_tablespace t "
              "on t.oid = c.reltablespace where t.spcname = 'fault_full'")
    need(n[0][0] > 10, "relations moved to the tmpfs: %s" % n)
    return disk
