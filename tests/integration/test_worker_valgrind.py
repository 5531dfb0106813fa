"""test_worker_valgrind.py -- guichetctl and guichet-worker under valgrind.

The house rule is "no leaks under valgrind for the engine and the worker":
`make -f engine/engine.mk engine-valgrind` covers the engine; this covers
the two programs of worker/ against real Redis and PostgreSQL.  Every
command runs under memcheck with --error-exitcode: a definite or indirect
leak, or an invalid read or write, fails the test with valgrind's report.

Run:  /usr/bin/python3 -m pytest -q tests/integration/test_worker_valgrind.py
"""

import json
import os
import shutil
import signal
import subprocess

import pytest

import demande

from worker_fixtures import (BIN, wait_for, pg_server, pg_db,  # noqa: F401
                             redis_server, rds, worker_conf)
from test_worker import (TOWN, book_entry, cancel_entry, absence_entry,
                         pending, sql)

LEAKED = 99
VALGRIND = ["valgrind", "-q", "--leak-check=full",
            "--errors-for-leak-kinds=definite,indirect",
            "--show-leak-kinds=definite,indirect",
            "--error-exitcode=%d" % LEAKED]

pytestmark = pytest.mark.skipif(shutil.which("valgrind") is None,
                                reason="valgrind is not installed")


def vctl(conf, *args):
    """guichetctl under valgrind; its CompletedProcess (never the leak
    exit status)."""
    p = subprocess.run(VALGRIND + [os.path.join(BIN, "guichetctl"), "-c",
                                   conf] + list(args),
                       capture_output=True, text=True, timeout=300)
    assert p.returncode != LEAKED, "guichetctl %s under valgrind:\n%s" % (
        " ".join(args), p.stderr)
    return p


def test_guichetctl_and_worker_do_not_leak(worker_conf, rds, tmp_path):
    conf = worker_conf["conf"]
    town = tmp_path / "town.json"
    town.write_text(json.dumps(TOWN))

    assert vctl(conf, "migrate").returncode == 0
    assert vctl(conf, "load-town", str(town)).returncode == 0
    # documents of the whole family that block bookings: the overlay lays
    # them over every activity's required documents (issue 25)
    sql(worker_conf["pg"], "insert into family_document_type (type,"
        " position, blocks, updated_by) values ('justificatif-domicile', 0,"
        " 'reservation', 'test'), ('attestation-caf', 1, 'aucun', 'test')")
    assert vctl(conf, "publish").returncode == 0
    cat = json.loads(rds.get("{main}:catalogue"))
    assert all("justificatif-domicile" in a["required_documents"]
               for a in cat["activities"])
    sql(worker_conf["pg"], "delete from family_document_type")
    assert vctl(conf, "publish", "--rebuild").returncode == 0
    assert vctl(conf, "config").returncode == 0
    assert vctl(conf, "tokens").stdout.startswith("f-martin ")
    assert vctl(conf, "token", "f-nobody").returncode == 1
    assert vctl(conf, "staff-token", "agent").returncode == 0
    assert vctl(conf, "recount", "s1", "nope").returncode == 1
    assert vctl(conf, "check").returncode == 0

    log = open(tmp_path / "worker-valgrind.log", "w+")
    w = subprocess.Popen(VALGRIND + [os.path.join(BIN, "guichet-worker"),
                                     "-c", conf], stderr=log)
    try:
        # a booking, its cancellation, a justified absence, a void, and an
        # entry that is not JSON (dead-lettered after max_attempts)
        rds.xadd("{main}:stream", {"d": book_entry(1, "k1", "b-1")})
        rds.xadd("{main}:stream", {"d": cancel_entry("b-1", True)})
        rds.xadd("{main}:stream", {"d": book_entry(2, "k2", "b-2")})
        rds.xadd("{main}:stream", {"d": absence_entry(3, "b-2")})
        rds.xadd("{main}:stream", {"d": json.dumps({
            "type": "void", "family_id": "f-martin", "idem": "k9",
            "booking_ids": ["b-9"]})})
        rds.xadd("{main}:stream", {"d": "not json"})
        # a swap (issue 24): its compact demande releases b-x, a fenced
        # one's void restores b-y; its orphan marker "S" for the reaper
        rds.xadd("{main}:stream", {"d": "~1 5 1623081600123 w 8:f-martin "
                                        "2:k5 0: 1 7:c-thais 2:s1 +900 "
                                        ">3:b-x 2:s1 1"})
        rds.xadd("{main}:stream", {"d": json.dumps({
            "type": "void", "family_id": "f-martin", "idem": "k8",
            "booking_ids": ["b-8"], "restore": ["b-y"]})})
        rds.set("{main}:f:f-martin:cancel:b-z", "S 1 1 b-z c-thais s1")
        rds.zadd("{main}:inflight", {"{main}:f:f-martin:cancel:b-z": 1})
        assert wait_for(lambda: sql(
            worker_conf["pg"], "select count(*) from booking")[0][0] == 3
            and rds.exists("{main}:worker:heartbeat"), 120)
        assert wait_for(lambda: not rds.exists(
            "{main}:f:f-martin:cancel:b-z"), 120)
        assert rds.hget("{main}:f:f-martin:billed", "b-z") == b"s1"
        # the entry that is not JSON ends in the dead letters
        assert wait_for(lambda: rds.xlen("{main}:stream:dead") == 1
                        and pending(rds, worker_conf) == 0, 120)
        # a waiting list's promotion (worker/promote.c, issue 23): the
        # first child of s2's list with a place left, booked by the saga;
        # a leftover entry without its waiter is removed
        rds.rpush("{main}:s:s2:wait", "c-gone", "c-thais")
        rds.hset("{main}:s:s2:waiters", "c-thais",
                 "b-00000000000000000042 f-martin 1")
        rds.sadd("{main}:waiting", "s2")
        assert wait_for(lambda: not rds.sismember("{main}:waiting", "s2")
                        and pending(rds, worker_conf) == 0 and sql(
                            worker_conf["pg"], "select count(*) from booking"
                            " where session_id = 's2'")[0][0] == 1, 120)
        # a second town made while the worker runs: found, served too
        second = tmp_path / "second.json"
        second.write_text(json.dumps(dict(TOWN, town=dict(TOWN["town"],
                                                          id="second"))))
        assert vctl(conf, "--town", "second", "migrate").returncode == 0
        assert vctl(conf, "--town", "second", "load-town",
                    str(second)).returncode == 0
        rds.xadd("{second}:stream", {"d": book_entry(1, "k1", "b-1")})
        assert wait_for(lambda: sql(
            worker_conf["pg"], "select count(*) from town_second.booking")
            [0][0] == 1 and rds.exists("{second}:worker:heartbeat"), 120)
    finally:
        w.send_signal(signal.SIGTERM)
        rc = w.wait(timeout=120)
        log.seek(0)
        report = log.read()
        log.close()
    assert rc == 0, "guichet-worker under valgrind (exit %d):\n%s" % (
        rc, report)
    swap = demande.booking_id("f-martin", "k5", "c-thais", "s1")
    assert sql(worker_conf["pg"], "select id, status, justified from "
               "booking where id like 'b-_' or id = %s order by id",
               (swap,)) == sorted([
                   ("b-1", "cancelled", False), ("b-2", "confirmed", False),
                   (swap, "confirmed", False)])
    # b-2's justification waits for the town's decision (issue 25)
    assert sql(worker_conf["pg"], "select booking_id, status from"
               " booking_justification") == [("b-2", "en_examen")]
    assert sql(worker_conf["pg"], "select billed from booking_cancellation"
               " where booking_id = 'b-x'") == [(True,)]


def test_draw_does_not_leak(worker_conf, rds, tmp_path):
    """An opening by draw (issue 23): load-town drawing the seed, the
    worker deciding the draw through the saga (worker/draw.c), guichetctl
    draw-verify, all under valgrind."""
    import datetime
    from test_draw import town as draw_town

    conf = worker_conf["conf"]
    past = (datetime.datetime.now(datetime.timezone.utc)
            - datetime.timedelta(seconds=5)).replace(microsecond=0)
    town = tmp_path / "draw.json"
    t = draw_town(past.isoformat())
    del t["activities"][0]["opening"]["seed"]      # load-town draws it
    town.write_text(json.dumps(t))
    # the entries, as the saga's step two writes them (d1: 2 places)
    for i in range(1, 11):
        fid = "f%02d" % i
        rds.hset("{main}:a:d:entries", "%s %s-c1 d1" % (fid, fid),
                 "%d 0 %d" % (1000 + i, i % 2))
        rds.hset("{main}:a:d:entries", "%s %s-c2 d3" % (fid, fid),
                 "%d 1 0" % (1000 + i))
    assert vctl(conf, "migrate").returncode == 0
    assert vctl(conf, "load-town", str(town)).returncode == 0

    log = open(tmp_path / "worker-draw-valgrind.log", "w+")
    w = subprocess.Popen(VALGRIND + [os.path.join(BIN, "guichet-worker"),
                                     "-c", conf], stderr=log)
    try:
        assert wait_for(lambda: sql(
            worker_conf["pg"], "select count(*) from draw_run"
            " where decided_at is not null")[0][0] == 1
            and pending(rds, worker_conf) == 0 and sql(
                worker_conf["pg"], "select count(*) from demande"
                " where idem_key = 'dr.d'")[0][0] == 10, 180)
    finally:
        w.send_signal(signal.SIGTERM)
        rc = w.wait(timeout=120)
        log.seek(0)
        report = log.read()
        log.close()
    assert rc == 0, "guichet-worker under valgrind (exit %d):\n%s" % (
        rc, report)
    assert sql(worker_conf["pg"], "select count(*) from booking"
               " where session_id = 'd1'")[0][0] == 2
    p = vctl(conf, "draw-verify", "d")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "the decisions follow the order" in p.stdout
