"""test_worker.py -- guichetctl and guichet-worker against real servers.

Run:  /usr/bin/python3 -m pytest -q tests/integration/test_worker.py
Needs: build/guichetctl, build/guichet-worker (make worker ctl), redis-server,
PostgreSQL 15, Debian packages python3-pytest python3-psycopg2 python3-redis.
"""

import json
import os
import re
import shutil
import struct
import subprocess
import time

import psycopg2

from worker_fixtures import (BIN, ctl, wait_for,  # noqa: F401
                             pg_server, pg_db, redis_server, rds,
                             worker_conf, worker)

TOWN = {
    "town": {"name": "Testville", "timezone": "Europe/Paris"},
    "units": [
        {"code": "MATIN", "label": "Matin", "starts": "08:30",
         "ends": "12:00"},
        {"code": "REPAS", "label": "Repas", "starts": "12:00",
         "ends": "13:30"},
    ],
    "activities": [{
        "id": "alsh", "name": "ALSH vacances", "age_min": 3, "age_max": 12,
        "booking_opens_at": "2021-06-07T18:00:00+02:00",
        "deadline": {"working_days": 9},
        "online_share_percent": 50, "week_required": False,
        "prices": [{"qf_max": 600, "cents": 300},
                   {"qf_max": None, "cents": 900}],
        "sessions": [
            {"id": "s1", "date": "2031-07-07", "unit": "MATIN",
             "label": "Danse", "places": 10},
            {"id": "s2", "date": "2031-07-07", "unit": "REPAS",
             "places": 4},
        ],
    }],
    "families": [{
        "id": "f-martin", "login": "martin", "password": "secret-demo",
        "qf": 650, "resident": True, "direct_debit": False,
        "children": [{"id": "c-thais", "first_name": "Thaïs",
                      "birth_date": "2024-03-04"}],
        "enrolments": [{"child_id": "c-thais", "activity_id": "alsh",
                        "from": "2031-07-01", "to": "2031-08-31",
                        "status": "validee"}],
    }],
}


def sql(conninfo, q, args=()):
    c = psycopg2.connect(conninfo)
    c.autocommit = True
    cur = c.cursor()
    cur.execute(q, args)
    rows = cur.fetchall() if cur.description else None
    c.close()
    return rows


def seed_rows(conninfo):
    """Catalogue rows written by hand, for tests that need no town file."""
    sql(conninfo, """
        insert into unit values ('MATIN', 'Matin', 510, 720);
        insert into activity (id, name, age_min, age_max, deadline_kind,
            online_share_percent, week_required)
            values ('alsh', 'ALSH', 3, 12, 'none', 50, false);
        insert into session (id, activity_id, date, unit_code, label,
            places, places_online)
            values ('s1', 'alsh', '2031-07-07', 'MATIN', 'Matin', 10, 5);
        insert into family (id, login, resident, direct_debit)
            values ('f-martin', 'martin', true, false),
                   ('f-durand', null, true, true);
        insert into child values ('c-thais', 'f-martin', 'Thaïs',
                                  '2024-03-04');
    """)


def book_entry(number, idem, bid, status="confirmed"):
    item = {"child_id": "c-thais", "session_id": "s1", "status": status}
    if status == "confirmed":
        item.update({"booking_id": bid, "price_cents": 900})
    else:
        item["reason"] = "full"
    return json.dumps({
        "type": "book", "number": number, "request_id": "D-%06d" % number,
        "family_id": "f-martin", "idem": idem, "at_ms": 1623081600123,
        "status": "traitee_positivement" if status == "confirmed"
        else "traitee_negativement", "items": [item]})


def pending(r, conf):
    """Entries of {main}:stream the worker has not persisted yet: after
    stream_position (migration 0050), -1 before it exists."""
    try:
        pos = sql(conf["pg"], "select last_id from stream_position")[0][0]
    except Exception:
        return -1
    return len(r.xrange("{main}:stream", "(" + pos, "+"))


# ------------------------------------------------------------------------

def test_migrate_twice_is_a_noop(worker_conf):
    p = ctl(worker_conf["conf"], "migrate")
    assert re.match(r"[1-9]\d* migrations? applied", p.stdout)
    n = sql(worker_conf["pg"], "select count(*) from schema_migrations")
    tables = sql(worker_conf["pg"], "select count(*) from pg_tables "
                 "where schemaname = 'public'")
    p = ctl(worker_conf["conf"], "migrate")
    assert p.stdout.strip() == "0 migrations applied"
    assert sql(worker_conf["pg"],
               "select count(*) from schema_migrations") == n
    assert sql(worker_conf["pg"], "select count(*) from pg_tables "
               "where schemaname = 'public'") == tables
    versions = sql(worker_conf["pg"], "select version, name from "
                   "schema_migrations order by version")
    assert versions[0] == (1, "create_core")


def test_config_lists_every_setting(worker_conf):
    out = ctl(worker_conf["conf"], "config").stdout
    for key in ("redis", "redis_password", "postgres", "secret_file",
                "migrations_dir", "consumer", "batch_size", "batch_wait_ms",
                "batch_gather_ms",
                "reap_after_ms", "recount_after_ms", "heartbeat_ms", "claim_idle_ms",
                "publish_interval_ms", "max_attempts", "stream_keep_ms",
                "invoice_dir", "invoice_day", "smtp", "smtp_from",
                "smtp_max_attempts", "smtp_retry_ms"):
        assert re.search(r"^%s = " % key, out, re.M), key
    assert "batch_size = 10" in out


def test_unknown_setting_is_refused(tmp_path):
    bad = tmp_path / "bad.conf"
    bad.write_text("no_such_key = 1\n")
    p = ctl(str(bad), "config", check=False)
    assert p.returncode == 1
    assert "unknown setting" in p.stderr


def test_load_town_publishes(worker_conf, rds, tmp_path):
    ctl(worker_conf["conf"], "migrate")
    town = tmp_path / "town.json"
    town.write_text(json.dumps(TOWN))
    p = ctl(worker_conf["conf"], "load-town", str(town))
    assert "loaded" in p.stdout

    # one key a session: online places left, then the counter's
    left = rds.get("{main}:s:s1:left")
    assert left == struct.pack(">II", 5, 5)      # 50 % of 10 online
    assert rds.get("{main}:s:s2:left") == struct.pack(">II", 2, 2)
    assert not rds.exists("{main}:s:s1:onsite")
    assert rds.get("{main}:catalogue:gen") == b"1"
    cat = json.loads(rds.get("{main}:catalogue"))
    assert "password" not in json.dumps(cat)
    fid, h = rds.hget("{main}:logins", "martin").decode().split(" ", 1)
    assert fid == "f-martin" and h.startswith("$argon2id$")

    rows = sql(worker_conf["pg"],
               "select id, places, places_online from session order by id")
    assert rows == [("s1", 10, 5), ("s2", 4, 2)]


def test_load_town_twice_changes_nothing(worker_conf, rds, tmp_path):
    ctl(worker_conf["conf"], "migrate")
    town = tmp_path / "town.json"
    town.write_text(json.dumps(TOWN))
    ctl(worker_conf["conf"], "load-town", str(town))
    before = sql(worker_conf["pg"],
                 "select xmin::text, id from family union all "
                 "select xmin::text, id from session order by 2")
    hash1 = sql(worker_conf["pg"], "select password_hash from family")
    rds.set("{main}:s:s1:left", struct.pack(">II", 3, 4))  # live bookings
    p = ctl(worker_conf["conf"], "load-town", str(town))
    assert "unchanged" in p.stdout
    after = sql(worker_conf["pg"],
                "select xmin::text, id from family union all "
                "select xmin::text, id from session order by 2")
    assert before == after
    assert sql(worker_conf["pg"], "select password_hash from family") \
        == hash1
    assert rds.get("{main}:s:s1:left") == struct.pack(">II", 3, 4)
    assert sql(worker_conf["pg"], "select version from catalogue") == [(1,)]


def test_bad_town_file_writes_nothing(worker_conf, tmp_path):
    ctl(worker_conf["conf"], "migrate")
    bad = json.loads(json.dumps(TOWN))
    bad["activities"][0]["sessions"][1]["unit"] = "NOPE"
    town = tmp_path / "bad.json"
    town.write_text(json.dumps(bad))
    p = ctl(worker_conf["conf"], "load-town", str(town), check=False)
    assert p.returncode == 1
    assert "$." in p.stderr
    assert sql(worker_conf["pg"], "select count(*) from session") == [(0,)]


def test_load_town_keeps_a_session_booked_by_the_batch_in_flight(
        worker_conf, rds, tmp_path):
    """No foreign key checks a booking's session or child (0015): a
    session dropped from the town file while the persister writes a
    booking of it stays, the load seeing the batch once committed."""
    ctl(worker_conf["conf"], "migrate")
    town = tmp_path / "town.json"
    town.write_text(json.dumps(TOWN))
    ctl(worker_conf["conf"], "load-town", str(town))

    batch = psycopg2.connect(worker_conf["pg"])      # the persister's
    cur = batch.cursor()
    cur.execute("select pg_advisory_xact_lock(7310044)")
    cur.execute("insert into demande (number, request_id, family_id, kind,"
                " status, idem_key, created_at, items) values (1, 'D-1',"
                " 'f-martin', 'book', 'traitee_positivement', 'k1', now(),"
                " '[]')")
    cur.execute("insert into booking (id, demande_number, family_id,"
                " child_id, session_id, price_cents, created_at) values"
                " ('b-1', 1, 'f-martin', 'c-thais', 's2', 900, now())")

    less = json.loads(json.dumps(TOWN))
    del less["activities"][0]["sessions"][1]            # s2
    town.write_text(json.dumps(less))
    load = subprocess.Popen([os.path.join(BIN, "guichetctl"), "-c",
                             worker_conf["conf"], "load-town", str(town)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    waiting = "select count(*) from pg_locks where not granted"
    assert wait_for(lambda: load.poll() is not None
                    or sql(worker_conf["pg"], waiting)[0][0] > 0, 30)
    batch.commit()
    batch.close()
    out, err = load.communicate(timeout=60)

    assert load.returncode == 0, err
    assert sql(worker_conf["pg"], "select id from session order by id") \
        == [("s1",), ("s2",)]
    assert sql(worker_conf["pg"], "select b.id from booking b where not"
               " exists (select 1 from session s where s.id = b.session_id)"
               " or not exists (select 1 from child c"
               " where c.id = b.child_id)") == []


def test_book_entry_persisted_exactly_once_across_kill9(worker_conf, rds,
                                                       worker):
    ctl(worker_conf["conf"], "migrate")
    seed_rows(worker_conf["pg"])
    n = 60
    for i in range(1, n + 1):
        rds.xadd("{main}:stream",
                 {"d": book_entry(i, "k%d" % i, "b-%020d" % i)})
    # a redelivered duplicate and a refused-only demande
    rds.xadd("{main}:stream", {"d": book_entry(1, "k1", "b-%020d" % 1)})
    rds.xadd("{main}:stream", {"d": book_entry(n + 1, "kx", None, "refused")})

    w = worker()
    wait_for(lambda: sql(worker_conf["pg"],
                         "select count(*) from booking")[0][0] > 0, 10, 0.001)
    w.kill9()
    for i in range(n + 2, n + 12):
        rds.xadd("{main}:stream",
                 {"d": book_entry(i, "k%d" % i, "b-%020d" % i)})

    w2 = worker()
    assert wait_for(lambda: pending(rds, worker_conf) == 0, 15)
    assert w2.stop() == 0

    total = n + 10
    assert sql(worker_conf["pg"], "select count(*), count(distinct id) "
               "from booking") == [(total, total)]
    assert sql(worker_conf["pg"], "select count(*) from demande") \
        == [(total + 1,)]
    assert sql(worker_conf["pg"], "select status, price_cents, billed from "
               "booking where id = %s", ("b-%020d" % 1,)) \
        == [("confirmed", 900, True)]
    # batches are written without "on conflict" first: the duplicate made
    # one fall back to the idempotent statements
    log = open(str(worker_conf["conf"]).replace("worker.conf",
                                                "worker.log")).read()
    assert "(a replay): written again with on conflict" in log


def test_void_entry(worker_conf, rds, worker):
    ctl(worker_conf["conf"], "migrate")
    seed_rows(worker_conf["pg"])
    rds.xadd("{main}:stream", {"d": book_entry(1, "k1", "b-1")})
    rds.xadd("{main}:stream", {"d": json.dumps(
        {"type": "void", "family_id": "f-martin", "idem": "k1",
         "booking_ids": ["b-1"]})})
    # a late redelivery of the voided attempt must not come back
    rds.xadd("{main}:stream", {"d": book_entry(1, "k1", "b-1")})
    # void before book (other batch order)
    rds.xadd("{main}:stream", {"d": json.dumps(
        {"type": "void", "family_id": "f-martin", "idem": "k2",
         "booking_ids": ["b-2"]})})
    rds.xadd("{main}:stream", {"d": book_entry(2, "k2", "b-2")})
    w = worker()
    assert wait_for(lambda: pending(rds, worker_conf) == 0 and sql(
        worker_conf["pg"], "select count(*) from voided_booking")[0][0] == 2
        and sql(worker_conf["pg"], "select count(*) from demande")[0][0]
        == 2, 10)
    time.sleep(0.3)
    assert w.stop() == 0
    assert sql(worker_conf["pg"], "select count(*) from booking") == [(0,)]


def test_heartbeat(worker_conf, rds, worker):
    ctl(worker_conf["conf"], "migrate")
    worker()
    hb = wait_for(lambda: rds.get("{main}:worker:heartbeat"), 5)
    hb = json.loads(hb)
    assert hb["postgres"] == "ok" and hb["lag_ms"] == 0
    assert rds.ttl("{main}:worker:heartbeat") <= 5


def test_tokens(worker_conf):
    ctl(worker_conf["conf"], "migrate")
    seed_rows(worker_conf["pg"])
    tok = ctl(worker_conf["conf"], "token", "f-martin").stdout.strip()
    parts = tok.split(".")
    # its town, and its issue time
    assert parts[:2] == ["v4", "main"] and len(parts) == 7
    assert int(parts[3]) > time.time() + 11 * 3600
    assert time.time() - 60 <= int(parts[4]) <= time.time()
    tok = ctl(worker_conf["conf"], "token", "f-martin", "--ttl",
              "60").stdout.strip()
    assert int(tok.split(".")[3]) <= time.time() + 61
    lines = ctl(worker_conf["conf"], "tokens").stdout.splitlines()
    assert [l.split(" ")[0] for l in lines] == ["f-durand", "f-martin"]
    p = ctl(worker_conf["conf"], "token", "nobody", check=False)
    assert p.returncode == 1


def test_secret_file_is_hex(worker_conf):
    s = open(worker_conf["secret"]).read()
    assert re.fullmatch(r"[0-9a-f]{64}\n", s)


def add_settings(worker_conf, text):
    with open(worker_conf["conf"], "a") as f:
        f.write(text)


def test_dead_letter(worker_conf, rds, worker):
    """Entries that fail on their own go to {main}:stream:dead after
    max_attempts attempts, with their error; the others are persisted, in
    the stream's order (the ones after a poison entry wait for it); the
    stream is trimmed only below what is persisted."""
    ctl(worker_conf["conf"], "migrate")
    seed_rows(worker_conf["pg"])
    add_settings(worker_conf, "max_attempts = 3\nstream_keep_ms = 1\n")
    rds.xadd("{main}:stream", {"d": book_entry(1, "k1", "b-1")})
    bad_json = rds.xadd("{main}:stream", {"d": "{not json"})
    fk = json.loads(book_entry(2, "k2", "b-2"))
    fk["family_id"] = "f-nobody"                 # refused by a foreign key
    bad_fk = rds.xadd("{main}:stream", {"d": json.dumps(fk)})
    no_d = rds.xadd("{main}:stream", {"x": "1"})
    rds.xadd("{main}:stream", {"d": book_entry(3, "k3", "b-3")})

    w = worker()
    assert wait_for(lambda: sql(worker_conf["pg"],
                                "select count(*) from booking")[0][0] == 1)
    # the poison entries stay (in the stream) for a while, b-3 after them
    assert pending(rds, worker_conf) == 4
    ids = [e[0] for e in rds.xrange("{main}:stream")]
    assert bad_json in ids and bad_fk in ids and no_d in ids

    assert wait_for(lambda: rds.xlen("{main}:stream:dead") == 3
                    and pending(rds, worker_conf) == 0, 15)
    dead = {f[b"id"]: f for _, f in rds.xrange("{main}:stream:dead")}
    assert set(dead) == {bad_json, bad_fk, no_d}
    assert b"foreign key" in dead[bad_fk][b"error"]
    assert json.loads(dead[bad_fk][b"d"])["family_id"] == "f-nobody"
    assert dead[bad_json][b"d"] == b"{not json"
    assert b"not a demande" in dead[bad_json][b"error"]
    assert all(int(f[b"deliveries"]) == 3 for f in dead.values())

    hb = wait_for(lambda: json.loads(rds.get("{main}:worker:heartbeat"))
                  if json.loads(rds.get("{main}:worker:heartbeat"))["dead"] == 3
                  else None, 5)
    assert hb["dead"] == 3
    # persisted entries are trimmed (stream_keep_ms 1)
    assert wait_for(lambda: rds.xlen("{main}:stream") == 0, 5)
    assert w.stop() == 0
    log = open(str(worker_conf["conf"]).replace("worker.conf",
                                                "worker.log")).read()
    assert "moved to {main}:stream:dead" in log
    assert sql(worker_conf["pg"], "select id from booking order by id") \
        == [("b-1",), ("b-3",)]


def test_book_entry_fields_verbatim(worker_conf, rds, worker):
    """Any character of a client's idempotency key, an agent, a refused
    item and the items' copy arrive in PostgreSQL as they were; an entry
    whose items are not an array goes to the dead letters."""
    ctl(worker_conf["conf"], "migrate")
    seed_rows(worker_conf["pg"])
    add_settings(worker_conf, "max_attempts = 1\n")
    idem = 'a"b\\c,{d} NULL \u00e9\u20ac\'x\''
    e1 = json.loads(book_entry(1, idem, "b-1"))
    e1["items"][0].update({"channel": "onsite", "note": [1, {"x": None}]})
    e1["agent"] = "agent \"un\""
    e1["items"].append({"child_id": "c-thais", "session_id": "s1",
                        "status": "refused", "reason": "full"})
    bad = json.loads(book_entry(2, "k2", "b-2"))
    bad["items"] = {"not": "an array"}
    rds.xadd("{main}:stream", {"d": json.dumps(e1)})
    bad_id = rds.xadd("{main}:stream", {"d": json.dumps(bad)})
    rds.xadd("{main}:stream", {"d": book_entry(3, "", "b-3")})
    w = worker()
    assert wait_for(lambda: pending(rds, worker_conf) == 0
                    and rds.xlen("{main}:stream:dead") == 1, 15)
    assert w.stop() == 0
    rows = sql(worker_conf["pg"], "select number, idem_key, items from"
               " demande order by number")
    assert rows == [(1, idem, e1["items"]), (3, "", json.loads(
        book_entry(3, "", "b-3"))["items"])]
    assert sql(worker_conf["pg"], "select id, channel, booked_by,"
               " price_cents from booking order by id") == [
        ("b-1", "onsite", 'agent "un"', 900),
        ("b-3", "online", None, 900)]
    dead = rds.xrange("{main}:stream:dead")[0][1]
    assert dead[b"id"] == bad_id


def cancel_entry(bid, billed, at_ms=1625000000000):
    return json.dumps({"type": "cancel", "booking_id": bid,
                       "family_id": "f-martin", "child_id": "c-thais",
                       "session_id": "s1", "at_ms": at_ms, "billed": billed})


def absence_entry(number, bid):
    return json.dumps({"type": "absence", "number": number,
                       "request_id": "D-%06d" % number, "booking_id": bid,
                       "family_id": "f-martin", "reason": "medical",
                       "document_id": None, "at_ms": 1625000000000})


def test_cancel_absence_any_order_and_outbox(worker_conf, rds, worker):
    """cancel and absence entries are applied whichever arrives first;
    each persisted demande queues exactly one e-mail, replays none."""
    ctl(worker_conf["conf"], "migrate")
    seed_rows(worker_conf["pg"])
    rds.xadd("{main}:stream", {"d": book_entry(1, "k1", "b-1")})
    rds.xadd("{main}:stream", {"d": cancel_entry("b-1", True)})
    # cancel (free) and absence before their booking's entry
    rds.xadd("{main}:stream", {"d": cancel_entry("b-2", False)})
    rds.xadd("{main}:stream", {"d": absence_entry(10, "b-3")})
    rds.xadd("{main}:stream", {"d": book_entry(2, "k2", "b-2")})
    rds.xadd("{main}:stream", {"d": book_entry(3, "k3", "b-3")})
    rds.xadd("{main}:stream", {"d": book_entry(4, "k4", None, "refused")})
    # replays
    rds.xadd("{main}:stream", {"d": book_entry(1, "k1", "b-1")})
    rds.xadd("{main}:stream", {"d": cancel_entry("b-1", True)})
    rds.xadd("{main}:stream", {"d": absence_entry(10, "b-3")})
    w = worker()
    assert wait_for(lambda: pending(rds, worker_conf) == 0 and sql(
        worker_conf["pg"], "select count(*) from booking")[0][0] == 3, 10)
    time.sleep(0.3)
    assert w.stop() == 0
    assert sql(worker_conf["pg"], "select id, status, billed, justified, "
               "cancelled_at is not null from booking order by id") == [
        ("b-1", "cancelled", True, False, True),
        ("b-2", "cancelled", False, False, True),
        ("b-3", "confirmed", True, False, False)]     # en_examen
    assert sql(worker_conf["pg"], "select booking_id, status, reason from "
               "booking_justification") == [("b-3", "en_examen", "medical")]
    assert sql(worker_conf["pg"], "select kind from demande where "
               "number = 10") == [("justification",)]
    rows = sql(worker_conf["pg"], "select kind, ref, subject, body from "
               "outbox_mail order by kind, ref")
    assert [(k, r) for k, r, _, _ in rows] == [
        ("cancellation", "b-1"), ("cancellation", "b-2"),
        ("demande", "D-000001"), ("demande", "D-000002"),
        ("demande", "D-000003"), ("demande", "D-000004"),
        ("justification", "D-000010")]
    refused = rows[5]
    justified = rows[6]
    rows = [rows[2], rows[0], rows[1]]
    assert rows[0][2] == "Demande N° D-000001 : traitée positivement"
    assert rows[0][3] == (
        "Bonjour,\n\nVotre demande N° D-000001 (réservation de séances) a "
        "été traitée positivement.\n\n- Thaïs, ALSH, le 07/07/2031 "
        "(Matin) : confirmée (9,00 €)\n\nLe service enfance\n")
    assert refused[2] == "Demande N° D-000004 : traitée négativement"
    assert "\n- Thaïs, ALSH, le 07/07/2031 (Matin) : refusée (complet)\n" \
        in refused[3]
    assert "reste facturée" in rows[1][3]
    assert "ne sera pas facturée" in rows[2][3]
    # the town examines the justification before the session is un-billed
    assert "la mairie examine votre justificatif" in justified[3]
    assert "une fois qu'elle l'a accepté" in justified[3].lower()


def entry(number, family, child, session, bid, cents):
    return json.dumps({
        "type": "book", "number": number, "request_id": "D-%06d" % number,
        "family_id": family, "idem": "k%d" % number, "at_ms": 1623081600123,
        "status": "traitee_positivement",
        "items": [{"child_id": child, "session_id": session,
                   "status": "confirmed", "booking_id": bid,
                   "price_cents": cents}]})


def seed_month(conninfo, month):
    """Sessions on days 5..8 of month ("YYYY-MM") and the next month's 2nd,
    a second family with a child."""
    import datetime
    y, m = map(int, month.split("-"))
    nxt = datetime.date(y + m // 12, m % 12 + 1, 2)
    for d in (5, 6, 7, 8):
        sql(conninfo, "insert into session (id, activity_id, date, "
            "unit_code, label, places, places_online) values "
            "(%s, 'alsh', %s, 'MATIN', 'Matin', 10, 5)",
            ("m%d" % d, datetime.date(y, m, d)))
    sql(conninfo, "insert into session (id, activity_id, date, unit_code, "
        "label, places, places_online) values ('next', 'alsh', %s, "
        "'MATIN', 'Matin', 10, 5)", (nxt,))
    sql(conninfo, "insert into child values ('c-leo', 'f-durand', 'Léo', "
        "'2022-01-01')")


def invoice_entries(rds):
    rds.xadd("{main}:stream", {"d": entry(1, "f-martin", "c-thais", "m5",
                                         "b-1", 900)})
    rds.xadd("{main}:stream", {"d": entry(2, "f-martin", "c-thais", "m6",
                                         "b-2", 900)})
    rds.xadd("{main}:stream", {"d": entry(3, "f-martin", "c-thais", "m7",
                                         "b-3", 900)})
    rds.xadd("{main}:stream", {"d": entry(4, "f-martin", "c-thais", "m8",
                                         "b-4", 450)})
    rds.xadd("{main}:stream", {"d": entry(5, "f-durand", "c-leo", "m5",
                                         "b-5", 300)})
    rds.xadd("{main}:stream", {"d": entry(6, "f-martin", "c-thais", "next",
                                         "b-6", 900)})
    # a late cancellation (billed), a free one, a justified absence
    rds.xadd("{main}:stream", {"d": cancel_entry("b-2", True)})
    rds.xadd("{main}:stream", {"d": cancel_entry("b-3", False)})
    rds.xadd("{main}:stream", {"d": absence_entry(7, "b-4")})


def accept_justification(conninfo, bid):
    """The town accepts the justification of bid, as guichet-office's
    POST /api/staff/absences/{bid}/decision does (issue 25: a pending one
    is billed; test_office_absences.py drives the real one)."""
    sql(conninfo, "update booking_justification set status = 'acceptee',"
        " decided_at = now(), decided_by = 'agent' where booking_id = %s"
        " and status = 'en_examen'", (bid,))
    sql(conninfo, "update booking set justified = true where id = %s",
        (bid,))


def test_invoice_of_a_month_to_come_is_due_after_it(worker_conf, rds,
                                                   worker, tmp_path):
    """Issue 22: invoicing a month not begun gave a due date before the
    services (the end of the month of issue); it is now the end of the
    invoiced month."""
    ctl(worker_conf["conf"], "migrate")
    seed_rows(worker_conf["pg"])
    seed_month(worker_conf["pg"], "2031-07")
    add_settings(worker_conf, "invoice_dir = %s\n" % (tmp_path / "inv"))
    invoice_entries(rds)
    w = worker()
    assert wait_for(lambda: pending(rds, worker_conf) == 0, 10)
    w.stop()
    out = ctl(worker_conf["conf"], "invoice", "--month", "2031-07").stdout
    assert out.strip() == "2 invoices created"
    assert sql(worker_conf["pg"], "select distinct to_char(due_date, "
               "'YYYY-MM-DD') from invoice") == [("2031-07-31",)]


def test_invoice_month(worker_conf, rds, worker, tmp_path):
    import subprocess
    ctl(worker_conf["conf"], "migrate")
    seed_rows(worker_conf["pg"])
    seed_month(worker_conf["pg"], "2021-07")
    # issue 25: the postal address the town validated
    sql(worker_conf["pg"], "insert into family_contact (family_id,"
        " address_line1, address_line2, postcode, city) values"
        " ('f-martin', '12 rue des Lilas', 'Bâtiment B', '01500',"
        " 'Ambérieu-en-Bugey')")
    add_settings(worker_conf, "invoice_dir = %s\n" % (tmp_path / "inv"))
    invoice_entries(rds)
    w = worker()
    assert wait_for(lambda: pending(rds, worker_conf) == 0 and sql(
        worker_conf["pg"], "select count(*) from booking b"
        " join booking_justification j on j.booking_id = b.id")
        [0][0] == 1, 10)
    accept_justification(worker_conf["pg"], "b-4")
    w.stop()

    out = ctl(worker_conf["conf"], "invoice", "--month", "2021-07").stdout
    assert out.strip() == "2 invoices created"
    rows = sql(worker_conf["pg"],
               "select id, number, family_id, to_char(month, 'YYYY-MM'), "
               "total_cents, paid, due_date = (date_trunc('month', "
               "issued_at at time zone 'Europe/Paris') + interval "
               "'1 month - 1 day')::date from invoice order by number")
    assert [r[1:] for r in rows] == [
        (1, "f-durand", "2021-07", 300, False, True),
        (2, "f-martin", "2021-07", 1800, False, True)]
    lines = sql(worker_conf["pg"], "select booking_id, child_id, "
                "to_char(date, 'DD'), unit_code, price_cents from "
                "invoice_line order by booking_id")
    assert lines == [("b-1", "c-thais", "05", "MATIN", 900),
                     ("b-2", "c-thais", "06", "MATIN", 900),
                     ("b-5", "c-leo", "05", "MATIN", 300)]

    # PDFs and the Redis list
    for iid, _, fid, *_ in rows:
        pdf = tmp_path / "inv" / fid / ("%d.pdf" % iid)
        assert pdf.read_bytes()[:5] == b"%PDF-"
    martin = rows[1][0]
    pdf = tmp_path / "inv" / "f-martin" / ("%d.pdf" % martin)
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"],
                          capture_output=True, text=True).stdout
    # migration 0041: numbered in the régie principale's series
    for s in ("Facture N° PRINCIPALE-000002", "Régie principale",
              "Période : juillet 2021", "Enfant",
              "Date", "Unité", "Montant", "Thaïs", "05/07/2021",
              "9,00 €", "Total : 18,00 €", "À payer avant le",
              # issue 22: who the family is, how to pay, whom to ask
              "Famille de Thaïs (référence f-martin)", "Comment payer",
              "Espace Famille", "numéro de facture PRINCIPALE-000002",
              "Une question",
              # issue 25: the family's postal address
              "12 rue des Lilas", "Bâtiment B", "01500 Ambérieu-en-Bugey"):
        assert s in text, s
    assert "07/07/2021" not in text and "08/07/2021" not in text
    lst = json.loads(rds.get("{main}:f:f-martin:invoices"))
    assert lst == [{"id": martin, "number": 2,
                    "reference": "PRINCIPALE-000002", "regie": "principale",
                    "month": "2021-07", "total_cents": 1800, "paid": False,
                    "due_date": lst[0]["due_date"],
                    "issued_at": lst[0]["issued_at"],
                    "credited_cents": 0, "due_cents": 1800,
                    "credit_notes": [], "refunds": []}]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d", lst[0]["due_date"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ",
                        lst[0]["issued_at"])

    # idempotent: nothing new, a lost PDF is written again
    pdf.unlink()
    rds.delete("{main}:f:f-martin:invoices")
    out = ctl(worker_conf["conf"], "invoice", "--month", "2021-07").stdout
    assert out.strip() == "0 invoices created"
    assert sql(worker_conf["pg"], "select count(*), sum(total_cents) from "
               "invoice") == [(2, 2100)]
    assert sql(worker_conf["pg"], "select count(*) from invoice_line") \
        == [(3,)]
    assert pdf.exists() and rds.get("{main}:f:f-martin:invoices")
    # a bad month is refused
    assert ctl(worker_conf["conf"], "invoice", "--month", "2021-13",
               check=False).returncode == 1
    if os.environ.get("GCHW_KEEP_PDF"):
        shutil.copy(str(pdf), os.environ["GCHW_KEEP_PDF"])


def test_invoice_day(worker_conf, rds, worker, tmp_path):
    """invoice_day = today: the worker invoices the previous month."""
    import datetime
    import zoneinfo
    today = datetime.datetime.now(zoneinfo.ZoneInfo("Europe/Paris")).date()
    if today.day > 28:
        import pytest
        pytest.skip("invoice_day is at most 28")
    prev = (today.replace(day=1) - datetime.timedelta(days=1))
    ctl(worker_conf["conf"], "migrate")
    seed_rows(worker_conf["pg"])
    seed_month(worker_conf["pg"], prev.strftime("%Y-%m"))
    invoice_entries(rds)
    w = worker()
    assert wait_for(lambda: pending(rds, worker_conf) == 0 and sql(
        worker_conf["pg"], "select count(*) from booking b"
        " join booking_justification j on j.booking_id = b.id")
        [0][0] == 1, 10)
    accept_justification(worker_conf["pg"], "b-4")
    w.stop()
    add_settings(worker_conf, "invoice_dir = %s\ninvoice_day = %d\n"
                 % (tmp_path / "inv", today.day))
    worker()
    assert wait_for(lambda: sql(worker_conf["pg"], "select count(*) from "
                                "invoice")[0][0] == 2, 15)
    assert sql(worker_conf["pg"], "select to_char(month, 'YYYY-MM') from "
               "invoice group by 1") == [(prev.strftime("%Y-%m"),)]
    assert wait_for(lambda: rds.get("{main}:f:f-durand:invoices"), 5)


class Sink:
    """A local SMTP sink (Debian python3-aiosmtpd) that keeps messages."""

    def __init__(self, port):
        from aiosmtpd.controller import Controller
        self.messages = []
        sink = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                sink.messages.append(envelope)
                return "250 OK"

        self.c = Controller(Handler(), hostname="127.0.0.1", port=port)

    def start(self):
        self.c.start()
        return self

    def stop(self):
        self.c.stop()


def test_outbox_smtp(worker_conf, rds, worker):
    """E-mails wait while the relay is down, go once it is up, never twice;
    families without an address get nothing."""
    import email
    import email.policy
    from worker_fixtures import free_port
    ctl(worker_conf["conf"], "migrate")
    seed_rows(worker_conf["pg"])
    ctl(worker_conf["conf"], "set-email", "f-martin", "martin@example.org")
    assert ctl(worker_conf["conf"], "set-email", "nobody", "a@b.c",
               check=False).returncode == 1
    port = free_port()
    add_settings(worker_conf, "smtp = 127.0.0.1:%d\nsmtp_from = "
                 "guichet@mairie.example\nsmtp_retry_ms = 200\n" % port)
    rds.xadd("{main}:stream", {"d": book_entry(1, "k1", "b-1")})
    rds.xadd("{main}:stream", {"d": cancel_entry("b-1", True)})
    w = worker()
    # relay down: attempts are counted, errors kept, nothing sent
    assert wait_for(lambda: sql(worker_conf["pg"], "select min(attempts) "
                                "from outbox")[0][0] or 0 >= 1, 10)
    assert sql(worker_conf["pg"], "select count(*) from outbox where "
               "sent_at is not null") == [(0,)]
    assert "refused" in sql(worker_conf["pg"], "select last_error from "
                            "outbox limit 1")[0][0].lower()
    sink = Sink(port).start()
    try:
        assert wait_for(lambda: len(sink.messages) == 2, 15)
        time.sleep(1.5)              # another round or two: nothing more
        assert len(sink.messages) == 2
        w.stop()
        w2 = worker()                # a restart sends nothing again
        time.sleep(1.5)
        w2.stop()
        assert len(sink.messages) == 2
    finally:
        sink.stop()
    msgs = [email.message_from_bytes(m.original_content,
                                     policy=email.policy.default)
            for m in sink.messages]
    subjects = sorted(m["subject"] for m in msgs)
    assert subjects == ["Annulation de réservation",
                        "Demande N° D-000001 : traitée positivement"]
    assert all(m.rcpt_tos == ["martin@example.org"] for m in sink.messages)
    assert all(m.mail_from == "guichet@mairie.example"
               for m in sink.messages)
    body = [m for m in msgs if "Demande" in m["subject"]][0].get_content()
    assert "Thaïs" in body and "9,00 €" in body
    assert sql(worker_conf["pg"], "select count(*) from outbox where "
               "sent_at is null") == [(0,)]


def test_outbox_keeps_no_reset_link_once_sent(worker_conf, rds, worker):
    """A password reset e-mail (guichet-office's) keeps its link while it
    waits for a retry, goes with it, then the outbox holds no link; other
    e-mails keep their body."""
    import email
    import email.policy
    from worker_fixtures import free_port
    ctl(worker_conf["conf"], "migrate")
    seed_rows(worker_conf["pg"])
    ctl(worker_conf["conf"], "set-email", "f-martin", "martin@example.org")
    link = "https://guichet.example/#/nouveau-mot-de-passe?jeton=" + \
        "S3cr3t-T0ken_" * 3
    sql(worker_conf["pg"], "insert into outbox (family_id, kind, ref,"
        " subject, body) values ('f-martin', 'password_reset', 'h1',"
        " 'Votre nouveau mot de passe', %s), ('f-martin', 'note', 'n1',"
        " 'Une note', 'Rien de secret.')", ("Ouvrez ce lien :\n\n" + link
                                           + "\n",))
    port = free_port()
    add_settings(worker_conf, "smtp = 127.0.0.1:%d\nsmtp_from = "
                 "guichet@mairie.example\nsmtp_retry_ms = 200\n" % port)
    w = worker()
    # relay down: the row waits for a retry, with its link (read in the
    # same query as its state: between a claim and its put-back the row
    # is marked sent and holds the note)
    waiting = wait_for(lambda: sql(worker_conf["pg"], "select body from"
                                   " outbox where ref = 'h1' and attempts"
                                   " >= 1 and sent_at is null"), 10)
    assert waiting and link in waiting[0][0]
    sink = Sink(port).start()
    try:
        assert wait_for(lambda: len(sink.messages) == 2, 15)
    finally:
        w.stop()
        sink.stop()
    msgs = [email.message_from_bytes(m.original_content,
                                     policy=email.policy.default)
            for m in sink.messages]
    sent = [m for m in msgs if "mot de passe" in m["subject"]][0]
    assert link in sent.get_content()
    rows = dict(sql(worker_conf["pg"], "select ref, body from outbox where"
                    " sent_at is not null"))
    assert "jeton" not in rows["h1"] and "S3cr3t" not in rows["h1"]
    assert rows["n1"] == "Rien de secret."


def test_check(worker_conf, rds, worker, tmp_path):
    """guichetctl check: 0 when Redis and PostgreSQL agree, 1 and every
    difference otherwise."""
    ctl(worker_conf["conf"], "migrate")
    town = tmp_path / "town.json"
    town.write_text(json.dumps(TOWN))
    ctl(worker_conf["conf"], "load-town", str(town))
    # a booking made as the module does: place taken, set, claims, stream
    rds.bitfield("{main}:s:s1:left").incrby("u32", 0, -1).execute()
    rds.sadd("{main}:s:s1:booked", "b-1")
    for q in (0,):
        rds.set("{main}:c:c-thais:2031-07-07:q%d" % q, "s1 b-1")
    rds.xadd("{main}:stream", {"d": book_entry(1, "k1", "b-1")})
    w = worker()
    assert wait_for(lambda: pending(rds, worker_conf) == 0 and sql(
        worker_conf["pg"], "select count(*) from booking")[0][0] == 1)
    w.stop()
    p = ctl(worker_conf["conf"], "check", check=False)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "agree" in p.stdout

    # drift: a place lost, a booking missing from the set, a stray claim
    rds.bitfield("{main}:s:s2:left").incrby("u32", 0, -1).execute()
    rds.srem("{main}:s:s1:booked", "b-1")
    rds.set("{main}:c:c-thais:2031-07-07:q1", "s2 b-x")
    rds.delete("{main}:c:c-thais:2031-07-07:q0")
    p = ctl(worker_conf["conf"], "check", check=False)
    assert p.returncode == 1
    out = p.stdout
    assert "session s1: places taken 1 in redis (5 - left 4), booked set 0, " \
        "postgres 1 confirmed" in out
    assert "session s2: places taken 1 in redis (2 - left 1), booked set 0, " \
        "postgres 0 confirmed" in out
    assert 'claim {main}:c:c-thais:2031-07-07:q0: postgres "s1 b-1", ' \
        'redis "(none)"' in out
    assert 'claim {main}:c:c-thais:2031-07-07:q1: no booking in postgres, ' \
        'redis holds "s2 b-x"' in out
    assert out.strip().endswith("4 differences")
    assert "recount" not in p.stderr

    # a session the reaper will recount: the operator is told why s2 may
    # differ for a while
    rds.zadd("{main}:recount", {"s2": 1})
    p = ctl(worker_conf["conf"], "check", check=False)
    assert p.returncode == 1
    assert "1 sessions wait for the reaper's recount" in p.stderr
    rds.delete("{main}:recount")


def test_recount(worker_conf, rds, worker, tmp_path):
    """guichetctl recount: the places a dead attempt kept come back once
    the worker's reaper recounts the session (on-site places released
    online included); a session whose booked set PostgreSQL does not
    confirm, or an unknown one, is not scheduled."""
    ctl(worker_conf["conf"], "migrate")
    town = tmp_path / "town.json"
    town.write_text(json.dumps(TOWN))
    ctl(worker_conf["conf"], "load-town", str(town))
    # s2 (2 online places): one taken by an attempt nothing gives back,
    # one on-site place released online (gchw_release_onsite)
    rds.bitfield("{main}:s:s2:left").incrby("u32", 0, -1).execute()
    rds.bitfield("{main}:s:s2:left").incrby("u32", 0, 1).execute()
    rds.set("{main}:s:s2:released", 1)
    # s1: a booking in the set that PostgreSQL has not (yet) persisted
    rds.sadd("{main}:s:s1:booked", "b-1")
    p = ctl(worker_conf["conf"], "check", check=False)
    assert "session s2: places taken 1 in redis (3 - left 2), booked set " \
        "0, postgres 0 confirmed" in p.stdout

    p = ctl(worker_conf["conf"], "recount", "s2", "s1", "nope", check=False)
    assert p.returncode == 1
    assert p.stdout.splitlines() == [
        "session s2: scheduled for the reaper's recount",
        "session s1: booked set 1, postgres 0 confirmed: not scheduled "
        "(the recount trusts the booked set)",
        "session nope: unknown, not scheduled"]
    # a recount already due later (the reaper's delay) keeps its time
    due = int(time.time() * 1000) + 2000
    rds.zadd("{main}:recount", {"s2": due})
    p = ctl(worker_conf["conf"], "recount", "s2", "s1", "nope", check=False)
    assert p.returncode == 1
    assert rds.zscore("{main}:recount", "s2") == due
    assert p.stdout.splitlines() == [
        "session s2: already scheduled for the reaper's recount",
        "session s1: booked set 1, postgres 0 confirmed: not scheduled "
        "(the recount trusts the booked set)",
        "session nope: unknown, not scheduled"]
    assert [m for m, _ in rds.zrange("{main}:recount", 0, -1,
                                     withscores=True)] == [b"s2"]

    w = worker()
    assert wait_for(lambda: rds.zcard("{main}:recount") == 0, 10)
    w.stop()
    assert rds.bitfield("{main}:s:s2:left").get("u32", 0).execute() == [3]
    p = ctl(worker_conf["conf"], "check", check=False)
    assert "session s2" not in p.stdout


def test_postgres_stopped_during_bookings(worker_conf, rds, worker,
                                          pg_server):
    """PostgreSQL down for a while: entries accumulate, the heartbeat says
    so, the worker backs off and catches up; nothing lost or doubled."""
    from worker_fixtures import pg_stop, pg_start
    ctl(worker_conf["conf"], "migrate")
    seed_rows(worker_conf["pg"])
    w = worker()
    for i in range(1, 21):
        rds.xadd("{main}:stream", {"d": book_entry(i, "k%d" % i,
                                                  "b-%d" % i)})
    assert wait_for(lambda: sql(worker_conf["pg"], "select count(*) from "
                                "booking")[0][0] == 20, 10)
    pg_stop(pg_server)
    try:
        for i in range(21, 221):
            rds.xadd("{main}:stream", {"d": book_entry(i, "k%d" % i,
                                                      "b-%d" % i)})
            if i % 50 == 0:
                rds.xadd("{main}:stream", {"d": cancel_entry("b-%d" % (i - 1),
                                                            True)})
                # a replay of an entry persisted before the outage
                rds.xadd("{main}:stream", {"d": book_entry(3, "k3", "b-3")})
        assert wait_for(lambda: json.loads(rds.get("{main}:worker:heartbeat")
                                           or "{}").get("postgres") == "down",
                        10)
        time.sleep(2)
        hb = json.loads(rds.get("{main}:worker:heartbeat"))
        assert hb["lag_ms"] > 1000
        assert w.p.poll() is None
    finally:
        pg_start(pg_server)
    assert wait_for(lambda: pending(rds, worker_conf) == 0, 30)
    assert w.stop() == 0
    assert sql(worker_conf["pg"], "select count(*), count(distinct id) "
               "from booking") == [(220, 220)]
    assert sql(worker_conf["pg"], "select count(*) from demande") \
        == [(220,)]
    assert sql(worker_conf["pg"], "select count(*) from booking where "
               "status = 'cancelled' and billed") == [(4,)]
    assert sql(worker_conf["pg"], "select count(*), count(distinct ref) "
               "from outbox_mail") == [(224, 224)]
    assert rds.xlen("{main}:stream:dead") == 0


def test_two_workers_booking_and_its_cancellation(worker_conf, rds, worker):
    """Two workers reading at once: one persists a booking while the
    other reads it and its cancellation; the booking ends cancelled, once.
    A slow trigger (2 s per booking insert) holds the first worker's
    transaction open while the second reads the same entries from the same
    position: the second finds the position moved when its turn comes,
    writes nothing of that batch, and reads on from the new position."""
    ctl(worker_conf["conf"], "migrate")
    seed_rows(worker_conf["pg"])
    sql(worker_conf["pg"], """
        create function test_slow() returns trigger language plpgsql as
          $$ begin perform pg_sleep(2); return null; end $$;
        create trigger test_slow after insert on booking
          for each statement execute function test_slow();""")
    first = worker()
    rds.xadd("{main}:stream", {"d": book_entry(1, "k1", "b-1")})
    # the first worker holds the entry, inside its slow transaction
    assert wait_for(lambda: sql(worker_conf["pg"], "select count(*) from"
                                " pg_stat_activity where wait_event ="
                                " 'PgSleep'")[0][0] == 1, 10)
    second = worker()
    rds.xadd("{main}:stream", {"d": cancel_entry("b-1", False)})
    assert wait_for(lambda: pending(rds, worker_conf) == 0, 15)
    assert first.stop() == 0 and second.stop() == 0
    assert sql(worker_conf["pg"], "select id, status, billed from booking"
               ) == [("b-1", "cancelled", False)]
    assert sql(worker_conf["pg"], "select booking_id from "
               "booking_cancellation") == [("b-1",)]
    assert sql(worker_conf["pg"], "select count(*) from demande") == [(1,)]
    log = open(str(worker_conf["conf"]).replace("worker.conf",
                                                "worker.log")).read()
    assert "moved by another worker: read again" in log


def test_stream_made_again_behind_the_position_is_read(worker_conf, rds,
                                                       worker):
    """Redis lost its data and its stream was made again with ids below the
    persisted position (a Redis whose clock is behind the old one's): the
    worker, once reconnected, finds the stream's last id below its
    position and reads the stream again from its start; nothing is lost,
    nothing written twice."""
    ctl(worker_conf["conf"], "migrate")
    seed_rows(worker_conf["pg"])
    w = worker()
    rds.xadd("{main}:stream", {"d": book_entry(1, "k1", "b-1")})
    rds.xadd("{main}:stream", {"d": book_entry(2, "k2", "b-2")})
    assert wait_for(lambda: pending(rds, worker_conf) == 0 and sql(
        worker_conf["pg"], "select count(*) from booking")[0][0] == 2, 10)
    # the data lost, a new stream whose ids are below the position
    rds.delete("{main}:stream")
    rds.xadd("{main}:stream", {"d": book_entry(3, "k3", "b-3")}, id="1-1")
    rds.xadd("{main}:stream", {"d": book_entry(4, "k4", "b-4")}, id="1-2")
    rds.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
    assert wait_for(lambda: sql(worker_conf["pg"], "select count(*) from"
                                " booking")[0][0] == 4, 10)
    assert wait_for(lambda: pending(rds, worker_conf) == 0, 10)
    assert w.stop() == 0
    assert sql(worker_conf["pg"], "select last_id from stream_position") \
        == [("1-2",)]
    assert sql(worker_conf["pg"], "select id from booking order by id") \
        == [("b-1",), ("b-2",), ("b-3",), ("b-4",)]
    log = open(str(worker_conf["conf"]).replace("worker.conf",
                                                "worker.log")).read()
    assert "is read again from its start" in log


def test_persisting_writes_nothing_to_redis(worker_conf, rds, worker):
    """The worker reads the stream with plain XREAD after the position it
    keeps in PostgreSQL: no consumer group, nothing Redis writes to its
    AOF per entry persisted (a group's XREADGROUP wrote an XCLAIM per entry
    and its XACK one more command per batch: 12 % of a booking's AOF)."""
    ctl(worker_conf["conf"], "migrate")
    seed_rows(worker_conf["pg"])
    w = worker()
    rds.xadd("{main}:stream", {"d": book_entry(1, "k1", "b-1")})
    assert wait_for(lambda: pending(rds, worker_conf) == 0 and sql(
        worker_conf["pg"], "select count(*) from booking")[0][0] == 1, 10)
    rds.config_resetstat()
    for i in range(2, 22):
        rds.xadd("{main}:stream", {"d": book_entry(i, "k%d" % i,
                                                  "b-%d" % i)})
    assert wait_for(lambda: pending(rds, worker_conf) == 0 and sql(
        worker_conf["pg"], "select count(*) from booking")[0][0] == 21, 10)
    assert w.stop() == 0
    assert rds.xinfo_groups("{main}:stream") == []
    stats = rds.info("commandstats")
    assert not [c for c in stats if c in (
        "cmdstat_xreadgroup", "cmdstat_xack", "cmdstat_xautoclaim",
        "cmdstat_xclaim")]
    assert sql(worker_conf["pg"], "select last_id from stream_position") \
        == [(rds.xrevrange("{main}:stream", count=1)[0][0].decode(),)]


def test_upgrade_takes_the_position_from_the_old_consumer_group(
        worker_conf, rds, worker):
    """A Redis a worker from before 0050 read with the consumer group
    "persist": what it acknowledged is persisted, what is pending may not
    be.  The new worker starts just before the first pending entry (not
    from the stream's start, which replayed a day of entries after the
    upgrade), persists the pending ones, and destroys the group."""
    ctl(worker_conf["conf"], "migrate")
    seed_rows(worker_conf["pg"])
    ids = [rds.xadd("{main}:stream", {"d": book_entry(i, "k%d" % i,
                                                      "b-%d" % i)})
           for i in range(1, 7)]
    rds.xgroup_create("{main}:stream", "persist", id="0")
    # the old worker read the first four and acknowledged two of them
    # (entries 1 and 2 were persisted before this database: they are not
    # in it, so a replay from the stream's start would write them)
    rds.xreadgroup("persist", "old", {"{main}:stream": ">"}, count=4)
    rds.xack("{main}:stream", "persist", ids[0], ids[1])
    w = worker()
    assert wait_for(lambda: pending(rds, worker_conf) == 0 and sql(
        worker_conf["pg"], "select count(*) from booking")[0][0] == 4, 10)
    assert w.stop() == 0
    assert sorted(r[0] for r in sql(worker_conf["pg"],
                                    "select id from booking")) == \
        ["b-3", "b-4", "b-5", "b-6"]
    assert rds.xinfo_groups("{main}:stream") == []
    assert sql(worker_conf["pg"], "select last_id from stream_position") \
        == [(ids[5].decode(),)]


def test_swap_entry_cancels_what_it_released_and_a_void_restores_it(
        worker_conf, rds, worker):
    """A swap's book entry (issue 24, compact: its item names the booking
    released) inserts the new booking and cancels the old one in one
    batch, billed as the entry says, with no cancellation e-mail; a
    fenced swap's void (its "restore") deletes the new booking and gives
    the old one back its confirmed row."""
    import demande
    ctl(worker_conf["conf"], "migrate")
    seed_rows(worker_conf["pg"])
    rds.xadd("{main}:stream", {"d": book_entry(1, "k1", "b-old")})
    rds.xadd("{main}:stream", {"d": "~1 2 1623081600123 w 8:f-martin "
                                    "2:k2 0: 1 7:c-thais 2:s1 +900 "
                                    ">5:b-old 2:s1 1"})
    new = demande.booking_id("f-martin", "k2", "c-thais", "s1")
    w = worker()
    assert wait_for(lambda: pending(rds, worker_conf) == 0 and sql(
        worker_conf["pg"], "select count(*) from booking")[0][0] == 2, 10)
    assert sql(worker_conf["pg"], "select id, status, billed from booking "
               "order by id") == sorted([("b-old", "cancelled", True),
                                         (new, "confirmed", True)])
    assert sql(worker_conf["pg"], "select items->0->'released'->>"
               "'booking_id' from demande where number = 2") == [("b-old",)]
    assert sql(worker_conf["pg"], "select count(*) from outbox_mail "
               "where kind = 'cancellation'") == [(0,)]

    rds.xadd("{main}:stream", {"d": json.dumps({
        "type": "void", "family_id": "f-martin", "idem": "k2",
        "booking_ids": [new], "restore": ["b-old"]})})
    assert wait_for(lambda: pending(rds, worker_conf) == 0 and sql(
        worker_conf["pg"], "select count(*) from booking")[0][0] == 1, 10)
    assert w.stop() == 0
    assert sql(worker_conf["pg"], "select id, status, cancelled_at from "
               "booking") == [("b-old", "confirmed", None)]
    assert sql(worker_conf["pg"], "select count(*) from "
               "booking_cancellation where booking_id = 'b-old'") == [(0,)]


def compact(number, at_ms, family, key, cells, onsite=False, agent=""):
    """A booking's compact demande as nginx's engine writes it to the
    stream (engine/src/demande.c): cells are (child, session, "+<price>")
    or (child, session, "-<reason>[@<opens>][#<position>]")."""
    def s(x):
        b = x.encode()
        return b"%d:%s" % (len(b), b)
    out = b"~1 %d %d %s %s %s %s %d" % (
        number, at_ms, b"o" if onsite else b"w", s(family), s(key),
        s(agent), len(cells))
    for child, session, outcome in cells:
        out += b" %s %s %s" % (s(child), s(session), outcome.encode())
    return out


def test_compact_demandes_copied_as_the_statements_write_them(
        worker_conf, rds, worker):
    """A batch of compact demandes only (the rush) is written with COPY:
    the same demande, booking and outbox rows as the statements write
    for the same entries in a batch they take (one with a cancellation);
    a booking cancelled before its demande is persisted is inserted
    cancelled, and an unknown family still goes to the dead letters."""
    ctl(worker_conf["conf"], "migrate")
    seed_rows(worker_conf["pg"])
    add_settings(worker_conf, "max_attempts = 1\n")
    sql(worker_conf["pg"], """
        insert into session (id, activity_id, date, unit_code, label,
            places, places_online)
            values ('s2', 'alsh', '2031-07-08', 'MATIN', 'Matin', 10, 5);
        insert into child values ('c-jules', 'f-durand', 'Jules',
                                  '2023-01-02');""")
    odd = 'k\t"\\n\\ {a,b} NULL\n\u00e9\u20ac\'x\''
    entries = [
        compact(7, 1623081600007, "f-martin", odd,
                [("c-thais", "s1", "+900"), ("c-thais", "s2", "-full#3"),
                 ("c-thais", "s9", "-not_open_yet@1625000000")]),
        compact(8, 1623081601999, "f-durand", "k8",
                [("c-jules", "s1", "+0"), ("c-jules", "s2", "+450")],
                onsite=True, agent='agent "un"\\\t'),
        compact(9, 1623081602000, "f-durand", "wl.b-x.1",
                [("c-jules", "s2", "-full")]),
        compact(10, 1623081602001, "f-durand", "wl.b-y.1",
                [("c-jules", "s2", "-closed")]),
        compact(11, 1623081602002, "f-martin", "wl.b-z.2",
                [("c-thais", "s2", "+300")]),
    ]

    def rows():
        pg = worker_conf["pg"]
        return (sql(pg, "select number, request_id, family_id, kind,"
                    " status, idem_key, created_at, items from demande"
                    " order by number"),
                sql(pg, "select id, demande_number, family_id, child_id,"
                    " session_id, price_cents, status, created_at, channel,"
                    " cancelled_at, billed, justified, booked_by from booking"
                    " order by id"),
                sql(pg, "select family_id, kind, ref, subject, body,"
                    " sent_at, attempts from outbox_mail"
                    " where kind = 'demande' order by ref"))

    def drain(first=()):
        """The entries in one batch (the worker started after them)."""
        sql(worker_conf["pg"], "truncate demande, booking, outbox,"
            " demande_mail_batch, booking_cancellation cascade")
        rds.delete("{main}:stream", "{main}:stream:dead")
        for d in list(first) + entries:
            rds.xadd("{main}:stream", {"d": d})
        w = worker()
        assert wait_for(lambda: sql(worker_conf["pg"], "select count(*)"
                                    " from demande")[0][0] == len(entries),
                        15)
        assert w.stop() == 0
        return rows()

    copied = drain()
    # the same entries with a cancellation: the statements write them
    stated = drain([cancel_entry("b-unknown", False)])
    assert copied == stated
    demandes, bookings, mails = copied
    assert [(d[0], d[1], d[4], d[5], d[6].timestamp()) for d in demandes] \
        == [(7, "D-000007", "partielle", odd, 1623081600.007),
            (8, "D-000008", "traitee_positivement", "k8", 1623081601.999),
            (9, "D-000009", "traitee_negativement", "wl.b-x.1",
             1623081602.0),
            (10, "D-000010", "traitee_negativement", "wl.b-y.1",
             1623081602.001),
            (11, "D-000011", "traitee_positivement", "wl.b-z.2",
             1623081602.002)]
    assert [i["status"] for i in demandes[0][7]] == [
        "confirmed", "waitlisted", "refused"]
    assert demandes[0][7][2]["opens_at"]
    assert sorted((b[1], b[4], b[5], b[6], b[8], b[12]) for b in bookings) \
        == [(7, "s1", 900, "confirmed", "online", None),
            (8, "s1", 0, "confirmed", "onsite", 'agent "un"\\\t'),
            (8, "s2", 450, "confirmed", "onsite", 'agent "un"\\\t'),
            (11, "s2", 300, "confirmed", "online", None)]
    # a promotion that did not book mails nothing, but its list's end
    assert [m[2] for m in mails] == ["D-000007", "D-000008", "D-000010",
                                     "D-000011"]

    # a booking cancelled before its demande is persisted (its entry
    # waited at a dead consumer): inserted cancelled, as by the statements
    bid = [b[0] for b in bookings if b[1] == 7][0]
    sql(worker_conf["pg"], "truncate demande, booking, outbox,"
        " demande_mail_batch, booking_cancellation cascade")
    rds.delete("{main}:stream")
    rds.xadd("{main}:stream", {"d": cancel_entry(bid, True)})
    w = worker()
    assert wait_for(lambda: sql(worker_conf["pg"], "select count(*) from"
                                " booking_cancellation")[0][0] == 1, 15)
    for d in entries:
        rds.xadd("{main}:stream", {"d": d})
    assert wait_for(lambda: sql(worker_conf["pg"], "select count(*) from"
                                " demande")[0][0] == len(entries), 15)
    assert sql(worker_conf["pg"], "select status, billed from booking"
               " where id = %s", (bid,)) == [("cancelled", True)]

    # an unknown family: that entry to the dead letters, the others written
    nobody = compact(12, 1623081603000, "f-nobody", "k12",
                     [("c-thais", "s1", "+900")])
    for d in [compact(13, 1623081603000, "f-martin", "k13",
                      [("c-thais", "s1", "+900")]), nobody]:
        rds.xadd("{main}:stream", {"d": d})
    assert wait_for(lambda: rds.xlen("{main}:stream:dead") == 1, 15)
    assert w.stop() == 0
    dead = rds.xrange("{main}:stream:dead")[0][1]
    assert dead[b"d"] == nobody and b"foreign key" in dead[b"error"]
    assert sql(worker_conf["pg"], "select number from demande where number"
               " > 11 order by number") == [(13,)]


def test_compact_demande_twice_in_a_batch_written_once(worker_conf, rds,
                                                       worker):
    """A compact demande twice in the stream (a replay), with a new one in
    the same batch: the COPY meets the first one's rows, the batch is
    written again with on conflict do nothing, each row exists once."""
    ctl(worker_conf["conf"], "migrate")
    seed_rows(worker_conf["pg"])
    first = compact(1, 1623081600000, "f-martin", "k1",
                    [("c-thais", "s1", "+900")])
    rds.xadd("{main}:stream", {"d": first})
    w = worker()
    assert wait_for(lambda: sql(worker_conf["pg"], "select count(*) from"
                                " demande")[0][0] == 1, 15)
    assert w.stop() == 0
    rds.xadd("{main}:stream", {"d": first})
    rds.xadd("{main}:stream", {"d": compact(2, 1623081600001, "f-martin",
                                            "k2", [("c-thais", "s1",
                                                    "+900")])})
    w = worker()
    assert wait_for(lambda: sql(worker_conf["pg"], "select count(*) from"
                                " demande")[0][0] == 2, 15)
    assert w.stop() == 0
    assert sql(worker_conf["pg"], "select demande_number, count(*) from"
               " booking group by 1 order by 1") == [(1, 1), (2, 1)]
    assert sql(worker_conf["pg"], "select ref from outbox_mail"
               " order by ref") == [("D-000001",), ("D-000002",)]
    log = open(str(worker_conf["conf"]).replace("worker.conf",
                                                "worker.log")).read()
    assert "already in PostgreSQL (a replay)" in log


def test_compact_demandes_voided_or_justified_before_they_are_persisted(
        worker_conf, rds, worker):
    """The rush's probe (one query a batch, before its COPY) finds a
    booking of the batch already voided, accepted as justified or
    cancelled (its entry persisted after them) among hundreds of other
    rows of those tables: that batch is written by the statements (the
    voided booking not inserted, the justified one justified, the
    cancelled one cancelled), and a batch with none of them is copied."""
    ctl(worker_conf["conf"], "migrate")
    seed_rows(worker_conf["pg"])
    pg = worker_conf["pg"]
    # other bookings' rows, and their statistics: the probe's plan is
    # that of a town whose tables are not empty
    sql(pg, """
        insert into voided_booking (id, family_id, idem_key)
            select 'b-v' || i, 'f-martin', 'k' || i
            from generate_series(1, 300) i;
        insert into booking_cancellation
            select 'b-c' || i, 'f-martin', now(), true
            from generate_series(1, 300) i;
        insert into booking_justification (booking_id, family_id,
                demande_number, justified_at, reason, status)
            select 'b-j' || i, 'f-martin', 1000000 + i, now(), 'medical',
                'acceptee'
            from generate_series(1, 300) i;
        analyze voided_booking;
        analyze booking_cancellation;
        analyze booking_justification""")
    entries = [compact(n, 1623081600000 + n, "f-martin", "k%d" % n,
                       [("c-thais", "s1", "+900")]) for n in range(1, 5)]
    log = str(worker_conf["conf"]).replace("worker.conf", "worker.log")

    def drain():
        rds.delete("{main}:stream")
        for d in entries:
            rds.xadd("{main}:stream", {"d": d})
        w = worker()
        assert wait_for(lambda: sql(pg, "select count(*) from demande")[0][0]
                        == len(entries), 15)
        assert w.stop() == 0
        return sql(pg, "select demande_number, id, status, justified"
                   " from booking order by demande_number")

    copied = drain()
    assert [(b[0], b[2], b[3]) for b in copied] == [
        (n, "confirmed", False) for n in range(1, 5)]
    assert "written by the statements" not in open(log).read()
    bid = {b[0]: b[1] for b in copied}

    for kind in ("voided", "justified", "cancelled"):
        # the demandes written again, after a void, a justification or a
        # cancellation of one of their bookings
        sql(pg, "truncate demande, booking, demande_mail_batch cascade")
        if kind == "voided":
            sql(pg, "insert into voided_booking (id, family_id, idem_key)"
                " values (%s, 'f-martin', 'k2')", (bid[2],))
        elif kind == "justified":
            sql(pg, "insert into booking_justification (booking_id,"
                " family_id, demande_number, justified_at, reason, status)"
                " values (%s, 'f-martin', 3, now(), 'medical', 'acceptee')",
                (bid[3],))
        else:
            sql(pg, "insert into booking_cancellation values"
                " (%s, 'f-martin', now(), false)", (bid[4],))
        before = open(log).read().count("written by the statements")
        rows = drain()
        assert open(log).read().count("written by the statements") \
            == before + 1, kind
        # each round keeps the rows of the rounds before it
        want = {"voided": [(1, "confirmed", False), (3, "confirmed", False),
                           (4, "confirmed", False)],
                "justified": [(1, "confirmed", False), (3, "confirmed", True),
                              (4, "confirmed", False)],
                "cancelled": [(1, "confirmed", False), (3, "confirmed", True),
                              (4, "cancelled", False)]}[kind]
        assert [(b[0], b[2], b[3]) for b in rows] == want, kind
        assert sql(pg, "select count(*) from demande")[0][0] == 4


def test_busy_stream_gathered_into_few_transactions(worker_conf, rds,
                                                   worker):
    """batch_gather_ms: while entries keep coming (a rush), the worker reads
    them that far apart and writes each read in one transaction: a steady
    flow of bookings reaches PostgreSQL in a few commits, not one commit
    per entry, and every entry once."""
    ctl(worker_conf["conf"], "migrate")
    seed_rows(worker_conf["pg"])
    add_settings(worker_conf, "batch_size = 1000\nbatch_gather_ms = 1500\n")
    w = worker()
    rds.xadd("{main}:stream", {"d": compact(1, 1623081600000, "f-martin",
                                            "k1", [("c-thais", "s1",
                                                    "+900")])})
    # an idle stream's first entry is read at once
    assert wait_for(lambda: sql(worker_conf["pg"], "select count(*) from"
                                " demande")[0][0] == 1, 15)
    n = 40
    t0 = time.monotonic()
    for i in range(2, n + 2):
        rds.xadd("{main}:stream", {"d": compact(
            i, 1623081600000 + i, "f-martin", "k%d" % i,
            [("c-thais", "s1", "+900")])})
        time.sleep(0.05)
    spent = time.monotonic() - t0
    assert wait_for(lambda: pending(rds, worker_conf) == 0, 15)
    assert w.stop() == 0
    assert sql(worker_conf["pg"], "select count(*), count(distinct number)"
               " from demande where number > 1") == [(n, n)]
    assert sql(worker_conf["pg"], "select count(*) from booking") \
        == [(n + 1,)]
    # the rows of one transaction share its xmin: one read at most every
    # 1.5 s while they came (batch_wait_ms is 20: without the window each
    # entry was read, and committed, alone), and the last one
    commits = sql(worker_conf["pg"], "select count(distinct xmin::text)"
                  " from demande where number > 1")[0][0]
    assert commits <= 2 + int(spent / 1.5), (commits, spent)


def test_demande_mail_found_by_number_without_request_id_index(
        worker_conf, rds, worker):
    """A persisted demande inserts no index entry for its request_id
    (0130: "D-%06lld" of its number, the primary key), and its e-mail is
    still found by that ref alone, past a million too; refs that only
    spell the same number find nothing, as with the unique key."""
    ctl(worker_conf["conf"], "migrate")
    seed_rows(worker_conf["pg"])
    rds.xadd("{main}:stream", {"d": book_entry(7, "k7", "b-7")})
    rds.xadd("{main}:stream", {"d": book_entry(1234567, "k8", "b-8",
                                               status="refused")})
    w = worker()
    assert wait_for(lambda: pending(rds, worker_conf) == 0 and sql(
        worker_conf["pg"], "select count(*) from demande")[0][0] == 2, 10)
    assert w.stop() == 0

    assert sql(worker_conf["pg"], "select indexrelid::regclass::text"
               " from pg_index where indrelid = 'demande'::regclass"
               " order by 1") == [("demande_family_idx",),
                                  ("demande_pkey",)]
    assert sql(worker_conf["pg"], "select ref, subject from outbox_mail"
               " where kind = 'demande' order by ref") == [
        ("D-000007", "Demande N° D-000007 : traitée positivement"),
        ("D-1234567", "Demande N° D-1234567 : traitée négativement")]
    body = sql(worker_conf["pg"], "select body from outbox_mail"
               " where ref = 'D-1234567'")[0][0]
    assert "Votre demande N° D-1234567 (réservation de séances)" in body
    assert "Thaïs" in body and "refusée (complet)" in body
    for ref in ("D-7", "D-0000007", "D-", "7", "D-00000a7",
                "D-99999999999999999999"):
        assert sql(worker_conf["pg"], "select subject, body"
                   " from demande_mail(%s)", (ref,)) == [(None, None)], ref


def test_demande_mails_queued_per_batch_sent_once(worker_conf, rds,
                                                  worker):
    """The persister queues a batch's e-mails as ONE row (0131), not an
    outbox row per demande; the view shows them at once, the mailer turns
    them into outbox rows and sends each once: a replayed entry, a second
    round and a restarted worker send nothing more."""
    import email
    import email.policy
    from worker_fixtures import free_port
    ctl(worker_conf["conf"], "migrate")
    seed_rows(worker_conf["pg"])
    ctl(worker_conf["conf"], "set-email", "f-martin", "martin@example.org")
    for n in (1, 2, 3):       # compact: COPY's way
        rds.xadd("{main}:stream", {"d": compact(
            n, 1623081600000 + n, "f-martin", "k%d" % n,
            [("c-thais", "s1", "+900")])})
    w = worker()              # no relay configured: nothing is sent
    assert wait_for(lambda: pending(rds, worker_conf) == 0 and sql(
        worker_conf["pg"], "select count(*) from demande")[0][0] == 3, 10)
    assert w.stop() == 0
    assert sql(worker_conf["pg"], "select count(*) from outbox") == [(0,)]
    assert sql(worker_conf["pg"], "select numbers from demande_mail_batch"
               ) == [([1, 2, 3],)]
    assert sql(worker_conf["pg"], "select ref, subject from outbox_mail"
               " order by ref") == [
        ("D-00000%d" % n, "Demande N° D-00000%d : traitée positivement" % n)
        for n in (1, 2, 3)]
    out = ctl(worker_conf["conf"], "outbox", "--kind", "demande").stdout
    assert out.count("--- #- f-martin demande to martin@example.org\n"
                     "Subject: Demande N° D-00000") == 3
    assert out.endswith("3 e-mails not sent\n")

    port = free_port()
    add_settings(worker_conf, "smtp = 127.0.0.1:%d\nsmtp_from = "
                 "guichet@mairie.example\nsmtp_retry_ms = 200\n" % port)
    # a replay of demande 2 (JSON: the statements' way) and a new one
    rds.xadd("{main}:stream", {"d": book_entry(2, "k2", "b-2")})
    rds.xadd("{main}:stream", {"d": book_entry(4, "k4", "b-4")})
    rds.xadd("{main}:stream", {"d": cancel_entry("b-4", True)})
    sink = Sink(port).start()
    try:
        w = worker()
        assert wait_for(lambda: len(sink.messages) == 5, 15)
        time.sleep(1.5)              # another round or two: nothing more
        w.stop()
        w2 = worker()                # a restart sends nothing again
        time.sleep(1.5)
        w2.stop()
        assert len(sink.messages) == 5
    finally:
        sink.stop()
    # in the order they were persisted: a booking's before its cancellation
    subjects = [email.message_from_bytes(
        m.original_content, policy=email.policy.default)["subject"]
        for m in sink.messages]
    assert subjects == ["Demande N° D-00000%d : traitée positivement" % n
                        for n in (1, 2, 3, 4)] + ["Annulation de réservation"]
    assert sql(worker_conf["pg"], "select ref, attempts, sent_at is not"
               " null from outbox where kind = 'demande' order by ref") == [
        ("D-00000%d" % n, 1, True) for n in (1, 2, 3, 4)]
    assert sql(worker_conf["pg"], "select count(*) from outbox_mail") \
        == [(5,)]
    assert sql(worker_conf["pg"], "select count(*) from demande_mail_batch"
               ) == [(0,)]


def test_queued_demande_mail_of_an_archived_family_dropped(
        worker_conf, rds, worker):
    """Archiving a family deletes its e-mails not sent (office/archive.c):
    those still queued in a batch row (0131) are dropped as well."""
    ctl(worker_conf["conf"], "migrate")
    seed_rows(worker_conf["pg"])
    rds.xadd("{main}:stream", {"d": book_entry(1, "k1", "b-1")})
    w = worker()
    assert wait_for(lambda: pending(rds, worker_conf) == 0 and sql(
        worker_conf["pg"], "select count(*) from demande")[0][0] == 1, 10)
    assert w.stop() == 0
    assert sql(worker_conf["pg"], "select ref from outbox_mail") \
        == [("D-000001",)]
    sql(worker_conf["pg"], "update family set archived_at = now()"
        " where id = 'f-martin'")
    assert sql(worker_conf["pg"], "select count(*) from outbox_mail") \
        == [(0,)]
    assert sql(worker_conf["pg"], "select demande_mail_expand(50)") \
        == [(1,)]
    assert sql(worker_conf["pg"], "select count(*) from outbox") == [(0,)]
    assert sql(worker_conf["pg"], "select count(*) from demande_mail_batch"
               ) == [(0,)]
