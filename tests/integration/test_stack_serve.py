"""test_stack_serve.py -- `stack.py serve` (the browser tests' stack:
tests/run-all's web lane, tests/web/helpers.mjs) stops everything it
started however it is ended short of SIGKILL: a PostgreSQL of a serve
was found running after a helper's web test run had ended.

Its PostgreSQL is pg_ctl's, in a session of its own (pg_ctl setsid()s
it), so neither a signal to serve's process group nor the end of its
parent reaches it: serve itself must stop it.  Each test runs serve with
TMPDIR a directory of its own, so that its stack's directory is found
and told apart from other stacks'."""

import glob
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture
def tmpdir_own():
    # short: PostgreSQL's and nginx's unix sockets live under it
    d = tempfile.mkdtemp(prefix="gserve-")
    os.chmod(d, 0o755)          # PostgreSQL runs as postgres
    yield d
    shutil.rmtree(d, ignore_errors=True)


def serve_argv():
    return [sys.executable, os.path.join(HERE, "stack.py"), "serve",
            "--no-town"]


def stack_dir(tmp):
    found = glob.glob(os.path.join(tmp, "guichet-serve-*"))
    return found[0] if found else None


def postmaster_pid(d):
    try:
        with open(os.path.join(d, "pg", "data", "postmaster.pid")) as f:
            return int(f.readline())
    except (OSError, ValueError):
        return None


def wait_for(what, ok, timeout=120):
    # not an assertion on speed: a bound for a hung start
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = ok()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError("no %s within %d s" % (what, timeout))


def processes_of(d):
    """The processes whose command line, working directory or an open
    file names the stack's directory d (postgres' postmaster,
    redis-server, guichet-worker, guichet-office, nginx; the payment
    simulator by its log)."""
    left = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
            names = [os.readlink("/proc/%s/cwd" % pid)]
            fds = "/proc/%s/fd" % pid
            names += [os.readlink(os.path.join(fds, n))
                      for n in os.listdir(fds)]
        except OSError:
            continue
        if d in cmd or any(n.startswith(d) for n in names):
            left.append((int(pid), cmd))
    return left


def ended(pid):
    """pid is no more, or a zombie its new parent has not reaped yet."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(") ", 1)[1].startswith("Z")
    except (OSError, IndexError):
        return True


def assert_nothing_left(d, pg):
    # pg_ctl stop -w returns once postmaster.pid is gone, the postmaster
    # itself a moment later
    wait_for("postgres %d's end" % pg, lambda: ended(pg))
    assert processes_of(d) == []
    assert not os.path.exists(d)


def test_serve_ended_by_a_timeout_while_it_starts(tmpdir_own):
    """timeout(1) sends SIGTERM to serve's process group: serve got it
    while its stack was starting (its handler was set afterwards) and
    died at once, its PostgreSQL (started, in its own session) and the
    servers already up left running."""
    env = dict(os.environ, TMPDIR=tmpdir_own)
    p = subprocess.Popen(serve_argv(), env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, start_new_session=True)
    try:
        d = wait_for("stack directory", lambda: stack_dir(tmpdir_own))
        pg = wait_for("postgres", lambda: postmaster_pid(d))
        os.killpg(p.pid, signal.SIGTERM)
        p.communicate(timeout=120)
        assert_nothing_left(d, pg)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP,
                                 signal.SIGINT])
def test_serve_ended_by_a_signal_once_up(tmpdir_own, sig):
    """Up (its URL printed), serve stops its stack on SIGTERM, SIGINT or
    SIGHUP (a terminal closed, a timeout's signal) and exits."""
    env = dict(os.environ, TMPDIR=tmpdir_own)
    p = subprocess.Popen(serve_argv(), env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    try:
        line = p.stdout.readline().decode()
        assert line.startswith("URL "), (line, p.stderr.read())
        d = stack_dir(tmpdir_own)
        pg = postmaster_pid(d)
        assert pg is not None
        p.send_signal(sig)
        p.communicate(timeout=120)
        assert_nothing_left(d, pg)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_serve_whose_parent_dies(tmpdir_own):
    """serve's parent (a node test file, a shell) killed with SIGKILL:
    nothing told serve, which ran on with its stack, for good."""
    env = dict(os.environ, TMPDIR=tmpdir_own)
    parent = subprocess.Popen(
        ["/bin/sh", "-c", '"$@" & echo $!; wait', "sh"] + serve_argv(),
        env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    serve = int(parent.stdout.readline())
    try:
        line = parent.stdout.readline().decode()
        assert line.startswith("URL "), line
        d = stack_dir(tmpdir_own)
        pg = postmaster_pid(d)
        assert pg is not None
        parent.kill()
        parent.wait()
        wait_for("serve's end", lambda: ended(serve))
        assert_nothing_left(d, pg)
    finally:
        try:
            os.kill(serve, signal.SIGKILL)
        except ProcessLookupError:
            pass
