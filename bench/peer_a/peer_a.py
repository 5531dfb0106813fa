"""
bench/peer_a/peer_a.py -- peer A of issue 20 beside Guichet in `make bench`.

Peer A is what a town's platform team would write in an afternoon: Debian's
nginx with Lua (libnginx-mod-http-lua, lua-cjson) reading the booking POST
and making one Redis Function call per booking (SET NX of the child's claim,
DECR of the places, XADD to a stream), Redis with `appendfsync always`.  It
is a yardstick for the benchmark, never part of the product (whose configs
stay Lua-free): its code is not copied here but taken from the shared peers'
harness, ../shared/bench-peers (conf/lua.conf, lua/peer_book.lua,
redis/booking.lua), or from $GUICHET_BENCH_PEERS.  When that directory is
absent the bench says so and leaves peer A's rows out.

The Debian packages it needs are installed (apt-get, services kept from
starting) when missing and when running as root; otherwise the rows are
skipped, with the reason.
"""

import os
import shutil
import signal
import socket
import subprocess
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
PACKAGES = ("libnginx-mod-http-lua", "lua-cjson")
MODULES = "/usr/lib/nginx/modules"
PLACES = 100000000          # so that the measured path is "confirmed"


def peers_dir():
    d = os.environ.get("GUICHET_BENCH_PEERS") or os.path.join(
        os.path.dirname(ROOT), "shared", "bench-peers")
    need = ("conf/lua.conf", "lua/peer_book.lua", "redis/booking.lua")
    if all(os.path.exists(os.path.join(d, f)) for f in need):
        return os.path.abspath(d)
    return None


def missing_packages():
    out = []
    for p in PACKAGES:
        r = subprocess.run(["dpkg-query", "-W", "-f=${Status}", p],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        if b"ok installed" not in r.stdout:
            out.append(p)
    return out


def install(pkgs, say):
    """apt-get install PKGS without starting any service; None or why not."""
    if os.geteuid() != 0:
        return "not root: cannot install %s" % " ".join(pkgs)
    say("peer A: installing %s (a benchmark tool, not the product)"
        % " ".join(pkgs))
    added = False
    if not os.path.exists("/usr/sbin/policy-rc.d"):
        with open("/usr/sbin/policy-rc.d", "w") as fh:
            fh.write("#!/bin/sh\nexit 101\n")
        os.chmod("/usr/sbin/policy-rc.d", 0o755)
        added = True
    try:
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        r = subprocess.run(["apt-get", "install", "-y", "-qq"] + list(pkgs),
                           env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT)
        if r.returncode != 0:
            subprocess.run(["apt-get", "update", "-qq"], env=env,
                           stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
            r = subprocess.run(["apt-get", "install", "-y", "-qq"] +
                               list(pkgs), env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT)
        if r.returncode != 0:
            return "apt-get install failed: " + r.stdout.decode()[-500:]
    finally:
        if added:
            os.remove("/usr/sbin/policy-rc.d")
    return None


def _wait_port(port, proc, what):
    for _ in range(100):
        if proc.poll() is not None:
            raise RuntimeError("peer A: %s exited" % what)
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("peer A: %s does not listen on %d" % (what, port))


class PeerA:
    """Peer A's nginx (one worker, the shared conf) and its own Redis
    (AOF, appendfsync always, no RDB), on free loopback ports."""

    def __init__(self, d, free_port):
        self.d = d
        self.src = peers_dir()
        self.port = free_port()
        self.redis_port = free_port()
        self.procs = {}

    def start(self):
        os.makedirs(os.path.join(self.d, "redis"), exist_ok=True)
        os.chmod(self.d, 0o755)
        self.procs["redis"] = subprocess.Popen(
            ["redis-server", "--port", str(self.redis_port), "--bind",
             "127.0.0.1", "--dir", os.path.join(self.d, "redis"),
             "--appendonly", "yes", "--appendfsync", "always", "--save", "",
             "--auto-aof-rewrite-percentage", "0", "--logfile",
             os.path.join(self.d, "redis.log")])
        _wait_port(self.redis_port, self.procs["redis"], "redis-server")
        with open(os.path.join(self.src, "redis", "booking.lua")) as fh:
            self.cli("FUNCTION", "LOAD", "REPLACE", fh.read())
        with open(os.path.join(self.src, "conf", "lua.conf")) as fh:
            conf = fh.read()
        conf = (conf.replace("@TMP@", self.d)
                .replace("@PORT@", str(self.port))
                .replace("@HERE@", self.src)
                .replace("@REDIS_PORT@", str(self.redis_port))
                .replace("load_module modules/", "load_module %s/" % MODULES))
        cf = os.path.join(self.d, "nginx-lua.conf")
        with open(cf, "w") as fh:
            fh.write(conf)
        self.procs["nginx"] = subprocess.Popen(
            ["/usr/sbin/nginx", "-e", os.path.join(self.d, "start.log"),
             "-c", cf, "-g", "daemon off;"])
        _wait_port(self.port, self.procs["nginx"], "nginx (Lua)")

    def cli(self, *args):
        r = subprocess.run(["redis-cli", "-p", str(self.redis_port)] +
                           list(args), stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, check=True)
        return r.stdout.decode()

    def set_places(self, sessions, places):
        """places:{sid} for each session, through one redis-cli pipe."""
        cmds = "".join("SET places:{%s} %d\n" % (s, places)
                       for s in sessions)
        subprocess.run(["redis-cli", "-p", str(self.redis_port)],
                       input=cmds.encode(), stdout=subprocess.DEVNULL,
                       check=True)

    def pids(self):
        """{"nginx": [workers...], "redis": [pid]} for the CPU account."""
        out = {"redis": [self.procs["redis"].pid], "nginx": []}
        pid = self.procs["nginx"].pid
        try:
            for t in os.listdir("/proc/%d/task" % pid):
                with open("/proc/%d/task/%s/children" % (pid, t)) as fh:
                    out["nginx"] += [int(x) for x in fh.read().split()]
        except OSError:
            pass
        return out

    def stop(self):
        for name, sig in (("nginx", signal.SIGQUIT), ("redis", signal.SIGTERM)):
            p = self.procs.pop(name, None)
            if p is None:
                continue
            p.send_signal(sig)
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        shutil.rmtree(os.path.join(self.d, "redis"), ignore_errors=True)
