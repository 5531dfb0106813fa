"""cluster.py -- a real Redis Cluster on loopback, for tests.

RedisCluster() starts, in a fresh temporary directory (or the one given),
`masters` x (1 + `replicas`) Debian redis-server 7.0 processes with
`cluster-enabled yes`, a small `cluster-node-timeout` and the persistence
settings of lua-free-config/redis.conf, joins them with
`redis-cli --cluster create ... --cluster-replicas N --cluster-yes`, and
waits until every node says `cluster_state:ok` and agrees on the slot map.
stop() ends every process and removes the directory.

    c = RedisCluster().start()          # 3 masters, 3 replicas
    c.seeds                             # "127.0.0.1:p1,127.0.0.1:p2,..."
    c.master_of("{main}")               # Node of the slot's master
    c.kill(node)                        # kill -9, as a crash
    c.wait_failover(node)               # its replica promoted, state ok
    c.move_slot(slot, to_node)          # SETSLOT MIGRATING/IMPORTING+MIGRATE
    c.stop()

ClusterStack(cluster, town=...) is a whole Guichet (stack.py) on such a
cluster: guichetctl, the worker and the office with redis_cluster, nginx
with guichet_redis_cluster; s.redis is a client of the master of the
town's slot (where all of the town's keys are).

Ports: each node needs its port and port + 10000 (the cluster bus) free on
127.0.0.1.  Run alone, `python3 tests/integration/cluster.py serve DIR
[PORT]` starts a cluster under DIR (ports PORT.. PORT+5 when given), prints
"SEEDS host:port,..." and runs until SIGTERM/SIGINT (`make run-cluster`).
"""

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import redis as redislib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from stack import Stack, lock_port  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
REDIS_CONF = os.path.join(ROOT, "lua-free-config", "redis.conf")
SLOTS = 16384


class ClusterError(Exception):
    pass


def _port_free(port):
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _ephemeral_range():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = (int(x) for x in f.read().split())
            return lo, hi
    except (OSError, ValueError):
        return 32768, 60999


def free_cluster_port(taken=()):
    """A loopback port p with p and p + 10000 free, both below the
    kernel's ephemeral range: an outgoing connection (the cluster bus's
    own among them) can take an ephemeral port between our check and
    redis-server's bind, and the node then exits "Address already in
    use".  Both are locked as stack.free_port() locks its ports (a
    stack's port chosen at the same time, in another xdist worker or
    lane, is in the same range: [20000, 32768)), so two choosers never
    take the same one; a listener that is no test's stays a race."""
    lo, _ = _ephemeral_range()
    top = min(lo, 65536) - 10000        # p + 10000 < lo
    for _ in range(500):
        p = random.randrange(max(1024, top - 12000), top)
        if (p not in taken and _port_free(p) and _port_free(p + 10000)
                and lock_port(p) and lock_port(p + 10000)):
            return p
    raise ClusterError("no free port pair for a cluster node")


def crc16(data):
    """CRC16-XMODEM, as Redis Cluster hashes keys (for the tests' own
    checks; the programs use engine/src/cluster.c)."""
    crc = 0
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def key_slot(key):
    if isinstance(key, str):
        key = key.encode()
    s = key.find(b"{")
    if s >= 0:
        e = key.find(b"}", s + 1)
        if e > s + 1:
            key = key[s + 1:e]
    return crc16(key) % SLOTS


class Node:
    def __init__(self, cluster, port):
        self.cluster = cluster
        self.port = port
        self.dir = os.path.join(cluster.dir, str(port))
        self.proc = None
        self.id = None

    @property
    def address(self):
        return "127.0.0.1:%d" % self.port

    def client(self, **kw):
        return redislib.Redis(host="127.0.0.1", port=self.port,
                              decode_responses=True, socket_timeout=5, **kw)

    def cmd(self, *args):
        """A command's reply as Redis sent it (no redis-py parsing)."""
        c = self.client()
        c.response_callbacks = {}
        try:
            return c.execute_command(*args)
        finally:
            c.close()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def start(self):
        os.makedirs(self.dir, exist_ok=True)
        log = open(os.path.join(self.dir, "redis.log"), "ab")
        self.proc = subprocess.Popen(
            ["redis-server", REDIS_CONF,
             "--bind", "127.0.0.1", "--port", str(self.port),
             "--dir", self.dir,
             "--cluster-enabled", "yes",
             "--cluster-config-file", "nodes.conf",
             "--cluster-node-timeout", str(self.cluster.node_timeout),
             "--cluster-replica-validity-factor", "0",
             "--appendfilename", "appendonly.aof",
             "--maxmemory", "64mb"]
            + list(self.cluster.extra),
            stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                if self.client().ping():
                    return
            except redislib.exceptions.BusyLoadingError:
                pass
            except redislib.ConnectionError:
                if self.proc.poll() is not None:
                    raise ClusterError("redis-server %d exited: %s"
                                       % (self.port, self.log()))
            time.sleep(0.05)
        raise ClusterError("redis-server %d did not answer" % self.port)

    def log(self):
        try:
            with open(os.path.join(self.dir, "redis.log"), "rb") as f:
                return f.read().decode(errors="replace")[-4000:]
        except OSError:
            return ""

    def role(self):
        return self.cmd("ROLE")[0]

    def __repr__(self):
        return "Node(%d)" % self.port


class RedisCluster:
    def __init__(self, masters=3, replicas=1, node_timeout=1000, dir=None,
                 base_port=None, extra=()):
        self.masters = masters
        self.replicas = replicas
        self.node_timeout = node_timeout
        self.extra = extra
        self.own_dir = dir is None
        self.dir = dir
        self.base_port = base_port
        self.nodes = []

    # ----- life -----------------------------------------------------------

    def start(self):
        if self.dir is None:
            self.dir = tempfile.mkdtemp(prefix="guichet-cluster-")
        os.makedirs(self.dir, exist_ok=True)
        try:
            taken = []
            for i in range(self.masters * (1 + self.replicas)):
                if self.base_port:
                    p = self.base_port + i
                else:
                    p = free_cluster_port(taken)
                taken.append(p)
                n = Node(self, p)
                self.nodes.append(n)
                n.start()
            out = subprocess.run(
                ["redis-cli", "--cluster", "create"]
                + [n.address for n in self.nodes]
                + ["--cluster-replicas", str(self.replicas),
                   "--cluster-yes"],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                timeout=60)
            if out.returncode != 0:
                raise ClusterError("redis-cli --cluster create: "
                                   + out.stdout.decode(errors="replace"))
            for n in self.nodes:
                n.id = n.cmd("CLUSTER", "MYID")
            self.wait_ok(replicas=self.replicas)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self):
        for n in self.nodes:
            if n.alive():
                n.proc.terminate()
        for n in self.nodes:
            if n.proc is not None:
                try:
                    n.proc.wait(10)
                except subprocess.TimeoutExpired:
                    n.proc.kill()
                    n.proc.wait()
        if self.own_dir and self.dir and os.environ.get("GUICHET_KEEP") != "1":
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # ----- views ----------------------------------------------------------

    @property
    def seeds(self):
        """The seed list the programs take (redis_cluster = ...)."""
        return ",".join(n.address for n in self.nodes)

    def live(self):
        return [n for n in self.nodes if n.alive()]

    def node(self, port):
        for n in self.nodes:
            if n.port == port:
                return n
        raise KeyError(port)

    def slot_map(self, via=None):
        """{slot: master Node} from CLUSTER SLOTS of a live node."""
        via = via or self.live()[0]
        m = {}
        for start, end, master, *_ in via.cmd("CLUSTER", "SLOTS"):
            n = self.node(int(master[1]))
            for s in range(int(start), int(end) + 1):
                m[s] = n
        return m

    def master_of_slot(self, slot, via=None):
        via = via or self.live()[0]
        for start, end, master, *_ in via.cmd("CLUSTER", "SLOTS"):
            if int(start) <= slot <= int(end):
                return self.node(int(master[1]))
        raise ClusterError("slot %d is not served" % slot)

    def master_of(self, key):
        return self.master_of_slot(key_slot(key))

    def masters_now(self):
        return [n for n in self.live() if n.role() == "master"]

    def replicas_of(self, master):
        return [n for n in self.live() if n.role() == "slave"
                and n.cmd("ROLE")[1:3]
                == ["127.0.0.1", master.port]]

    def client_for(self, key):
        """A plain connection to the master of key's slot (test checks)."""
        return self.master_of(key).client()

    def keys(self, pattern="*"):
        ks = []
        for n in self.masters_now():
            ks.extend(n.client().keys(pattern))
        return ks

    # ----- waiting --------------------------------------------------------

    def _ok_everywhere(self, replicas=0):
        want = None
        for n in self.live():
            try:
                if "cluster_state:ok" not in n.cmd("CLUSTER", "INFO"):
                    return False
                slots = n.cmd("CLUSTER", "SLOTS")
                if any(len(r) < 3 + replicas for r in slots):
                    return False
                m = sorted((int(a), int(b), int(ms[1])) for a, b, ms, *_ in
                           slots)
            except redislib.RedisError:
                return False
            if sum(b - a + 1 for a, b, _ in m) != SLOTS:
                return False
            if want is None:
                want = m
            elif m != want:
                return False
        return True

    def wait_ok(self, timeout=30, replicas=0):
        """Every live node says cluster_state:ok and they agree on which
        master serves which slot (and, with replicas=N, every master has
        N replicas in their CLUSTER SLOTS)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._ok_everywhere(replicas):
                return
            time.sleep(0.1)
        raise ClusterError("cluster not ok within %ds:\n%s" % (
            timeout, "\n".join("%s: %s" % (n, n.log()[-600:])
                               for n in self.nodes)))

    # ----- faults ---------------------------------------------------------

    def kill(self, node, sig=signal.SIGKILL):
        """kill -9 (default) of one node."""
        if node.alive():
            node.proc.send_signal(sig)
            node.proc.wait(10)

    def restart(self, node):
        node.start()

    def wait_failover(self, dead, timeout=30):
        """After killing the master `dead`: wait until another node serves
        its slots and the cluster is ok again; returns the masters now."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self._ok_everywhere():
                    served = {n.port for n in self.slot_map().values()}
                    if dead.port not in served:
                        break
            except redislib.RedisError:
                pass
            time.sleep(0.1)
        else:
            raise ClusterError("no failover of %s within %ds" %
                               (dead, timeout))
        return sorted(set(self.slot_map().values()),
                      key=lambda n: n.port)

    def failover(self, replica, timeout=30):
        """CLUSTER FAILOVER (graceful) run on a replica."""
        replica.client().execute_command("CLUSTER FAILOVER")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if replica.role() == "master" and self._ok_everywhere():
                return
            time.sleep(0.1)
        raise ClusterError("CLUSTER FAILOVER of %s did not finish" % replica)

    def begin_migration(self, slot, dst):
        """SETSLOT IMPORTING on dst, MIGRATING on the slot's master: from
        now on clients asking the source for a key already moved get
        -ASK.  Returns the source Node."""
        src = self.master_of_slot(slot)
        if src is dst:
            raise ClusterError("slot %d is already on %s" % (slot, dst))
        dst.client().execute_command("CLUSTER SETSLOT", slot, "IMPORTING",
                                     src.id)
        src.client().execute_command("CLUSTER SETSLOT", slot, "MIGRATING",
                                     dst.id)
        return src

    def migrate_keys(self, slot, src, dst, count=100):
        """MIGRATE up to count keys of slot from src to dst; returns how
        many moved."""
        c = src.client()
        ks = src.cmd("CLUSTER", "GETKEYSINSLOT", slot, count)
        if ks:
            c.execute_command("MIGRATE", "127.0.0.1", dst.port, "", 0, 5000,
                              "KEYS", *ks)
        return len(ks)

    def end_migration(self, slot, dst):
        """SETSLOT NODE dst on every master: MOVED from now on."""
        for n in self.masters_now():
            n.client().execute_command("CLUSTER SETSLOT", slot, "NODE",
                                       dst.id)
        self.wait_ok()

    def move_slot(self, slot, dst):
        """Move a whole slot (its keys included) to dst."""
        src = self.begin_migration(slot, dst)
        while self.migrate_keys(slot, src, dst):
            pass
        self.end_migration(slot, dst)
        return src


class ClusterStack(Stack):
    """A whole Guichet (stack.py) on the Redis Cluster `cluster` (started
    and stopped by the caller): guichetctl, the worker and the office get
    redis_cluster = its seeds, nginx guichet_redis_cluster (render-conf.sh,
    GUICHET_REDIS_CLUSTER) with guichet_redis_wait_replicas at its default
    (1).  No redis-server of its own.  s.redis is a plain client of the
    current master of the town's slot: every key of the town is there."""

    def __init__(self, cluster, *args, **kw):
        super().__init__(*args, **kw)
        self.cluster = cluster
        self._conf_done = False

    # stack.py assigns _redis; here it is always the town's master
    @property
    def _redis(self):
        if getattr(self, "cluster", None) is None:
            return None
        return self.cluster.master_of("{%s}" % self.town_id).client()

    @_redis.setter
    def _redis(self, value):
        pass

    @property
    def redis(self):
        return self._redis

    @property
    def redis_address(self):
        return "127.0.0.1:1"            # unused: redis_cluster wins

    def _start_redis(self, port=None, extra=(), loading=False):
        self.redis_port = None

    def stop_redis(self, sig=signal.SIGTERM):
        raise NotImplementedError("a cluster: use cluster.kill(node)")

    def start_redis(self, extra=(), loading=False):
        raise NotImplementedError("a cluster: use cluster.restart(node)")

    def ctl_run(self, *args, conf=True):
        # worker.conf exists from the first guichetctl run on (init-secret)
        if not self._conf_done and getattr(self, "worker_conf", None) \
                and os.path.exists(self.worker_conf):
            with open(self.worker_conf, "a") as f:
                f.write("redis_cluster = %s\n" % self.cluster.seeds)
            self._conf_done = True
        return super().ctl_run(*args, conf=conf)

    def _start_nginx(self):
        os.environ["GUICHET_REDIS_CLUSTER"] = self.cluster.seeds
        try:
            super()._start_nginx()
        finally:
            del os.environ["GUICHET_REDIS_CLUSTER"]

    @property
    def town_master(self):
        return self.cluster.master_of("{%s}" % self.town_id)


def main(argv):
    if len(argv) < 3 or argv[1] != "serve":
        sys.stderr.write("usage: cluster.py serve DIR [PORT]\n")
        return 2
    d = argv[2]
    port = int(argv[3]) if len(argv) > 3 else None
    if os.path.exists(d):
        shutil.rmtree(d)
    c = RedisCluster(dir=d, base_port=port)
    stopping = []

    def on_signal(signum, frame):
        stopping.append(signum)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    c.start()
    print("SEEDS " + c.seeds, flush=True)
    try:
        while not stopping:
            time.sleep(0.2)
    finally:
        c.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
