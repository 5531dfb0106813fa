"""faultlib.py -- what the failure tests (tests/fault/) and the hot-path
tests (tests/integration/test_hotpath.py) share: a rush town, a
configuration derived from lua-free-config/dev.conf, booking helpers,
the Prometheus counters and the invariants that must hold in Redis
whatever failed.

The invariants, per session of the town:

    left + SCARD {s}:booked == places_online        (no place lost or sold
                                                     twice)
    booked == confirmed ids of the stream's book entries, minus void ones
    every D record's confirmed ids are booked, no P record is left
"""

import json
import os
import re
import signal
import socket
import sys
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))

from stack import BUILD, ROOT, Stack  # noqa: E402,F401
import demande  # noqa: E402

ASAN_MODULE = os.path.join(BUILD, "asan", "ngx_http_guichet_module.so")
DAY = "2027-07-08"


def rush_town(families=60, sessions=(("s1", 20),)):
    """families f-0001.. with one child c-0001.. each, all enrolled in
    activity "rush" whose sessions (id, places) are on DAY, one per unit
    so that a child may hold all of them; online share 50 %."""
    units = [{"code": "U%d" % i, "label": "Créneau %d" % i,
              "starts": "%02d:00" % (8 + i), "ends": "%02d:00" % (9 + i)}
             for i in range(len(sessions))]
    fams = []
    for i in range(1, families + 1):
        fid, cid = "f-%04d" % i, "c-%04d" % i
        fams.append({
            "id": fid, "qf": 500, "resident": True, "direct_debit": False,
            "children": [{"id": cid, "first_name": "Enfant%d" % i,
                          "birth_date": "2018-03-01"}],
            "enrolments": [{"child_id": cid, "activity_id": "rush",
                            "from": "2027-07-01", "to": "2027-08-31",
                            "status": "validee"}]})
    return {
        "town": {"name": "Panne", "timezone": "Europe/Paris"},
        "units": units,
        "activities": [{
            "id": "rush", "name": "Centre de loisirs", "age_min": 3,
            "age_max": 11, "booking_opens_at": "2026-11-01T18:00:00+01:00",
            "deadline": {"working_days": 2}, "online_share_percent": 50,
            "week_required": False,
            "prices": [{"qf_max": None, "cents": 400}],
            "sessions": [{"id": sid, "date": DAY, "unit": "U%d" % i,
                          "places": places}
                         for i, (sid, places) in enumerate(sessions)]}],
        "families": fams,
    }


def online(places):
    return places * 50 // 100


def conf_template(directory, name, replace=(), http_extra="",
                  api_extra=""):
    """Writes DIRECTORY/NAME.conf: dev.conf with each (old, new) of replace
    applied (old must be there), http_extra at the top of http {} and
    api_extra inside location /api/.  Returns its absolute path (a
    template for Stack(nginx_template=...) or render_conf)."""
    with open(os.path.join(ROOT, "lua-free-config", "dev.conf")) as f:
        text = f.read()
    for old, new in replace:
        assert old in text, old
        text = text.replace(old, new)
    text = text.replace("http {\n", "http {\n" + http_extra + "\n", 1)
    text = text.replace("        location /api/ {\n",
                        "        location /api/ {\n" + api_extra + "\n", 1)
    path = os.path.join(str(directory), name + ".conf")
    with open(path, "w") as f:
        f.write(text)
    return path


def start_stack(town, name, template=None, asan=False):
    s = Stack(town=town, name=name, nginx_template=template,
              module=ASAN_MODULE if asan else None)
    if asan:
        if not os.path.exists(ASAN_MODULE):
            raise AssertionError("%s is missing: run make asan" % ASAN_MODULE)
        s.asan = True
    return s.start()


def finish_stack(s):
    """Checks the error log, then stops the stack."""
    try:
        s.assert_clean_error_log()
    finally:
        s.stop()


def body_of(items):
    return json.dumps({"items": [{"child_id": c, "session_id": sid}
                                 for c, sid in items]})


def book(s, token, items, idem=None, timeout=30):
    return s.http("POST", "/api/bookings", token=token,
                  headers={"Idempotency-Key": idem or uuid.uuid4().hex,
                           "Content-Type": "application/json"},
                  body=body_of(items), timeout=timeout)


def child(fid):
    return "c-" + fid[2:]


def tag(s):
    """The hash tag of s's town's keys: {<town id>} ({main} by default)."""
    return "{%s}" % getattr(s, "town_id", "main")


def left(s, sid):
    v = s.redis.execute_command("BITFIELD", tag(s) + ":s:%s:left" % sid,
                                "GET", "u32", "0")[0]
    return v


def booked(s, sid):
    return set(s.redis.smembers(tag(s) + ":s:%s:booked" % sid))


def metrics(s):
    """{'name{labels}': value} of GET /metrics."""
    r = s.http("GET", "/metrics")
    assert r.status == 200, r
    out = {}
    for line in r.body.decode().splitlines():
        if line and not line.startswith("#"):
            k, v = line.rsplit(" ", 1)
            out[k] = float(v)
    return out


def wait_for(what, ok, timeout=15, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ok():
            return
        time.sleep(step)
    raise AssertionError("%s: not within %ss" % (what, timeout))


def traced_and_running(pid):
    """gdb has attached to pid (TracerPid), set its breakpoint and let it
    run again (no longer in tracing stop): a fixed sleep was too short at
    a load of 14 (test_draw_faults: the breakpoint's count started
    mid-draw; test_swap_faults: the request ran before the breakpoint)."""
    with open("/proc/%d/status" % pid) as f:
        st = dict(line.split(":", 1) for line in f if ":" in line)
    return (st.get("TracerPid", "0").strip() != "0"
            and not st.get("State", "").strip().startswith("t"))


def settled(s):
    """No attempt between its two steps ({main}:inflight empty), no session
    waiting for the reaper's recount ({main}:recount empty)."""
    return (s.redis.zcard(tag(s) + ":inflight") == 0
            and s.redis.zcard(tag(s) + ":recount") == 0)


def stream_entries(s):
    if not s.redis.exists(tag(s) + ":stream"):
        return []
    return [demande.entry(f["d"]) for _, f in
            s.redis.xrange(tag(s) + ":stream", "-", "+")]


def assert_consistent(s, town, stream=True):
    """The invariants of the module docstring, for every session (without
    the stream one when stream is false: after Redis lost its data the
    rebuilt bookings have no stream entry)."""
    r = s.redis
    entries = stream_entries(s)
    voided = set()
    for e in entries:
        if e.get("type") == "void":
            voided.update(e.get("booking_ids", []))
    confirmed_in_stream = {}
    child_of = {}
    demandes = set()
    for e in entries:
        if e.get("type") != "book":
            continue
        demandes.add(tag(s) + ":f:%s:idem:%s" % (e["family_id"], e["idem"]))
        for it in e["items"]:
            if it["status"] == "confirmed" and it["booking_id"] not in voided:
                confirmed_in_stream.setdefault(it["session_id"], set()).add(
                    it["booking_id"])
                child_of[it["booking_id"]] = it["child_id"]

    for sess in town["activities"][0]["sessions"]:
        sid, n = sess["id"], online(sess["places"])
        b = booked(s, sid)
        assert left(s, sid) + len(b) == n, (sid, left(s, sid), len(b), n)
        if stream:
            assert b == confirmed_in_stream.get(sid, set()), sid
            # each child holds the session at most once
            children = [child_of[bid] for bid in b]
            assert len(children) == len(set(children)), (sid, children)

    all_booked = set()
    for sess in town["activities"][0]["sessions"]:
        all_booked |= booked(s, sess["id"])
    pending = []
    for k in r.scan_iter(tag(s) + ":f:*:idem:*", count=1000):
        v = r.get(k)
        if v is None:
            continue
        if v.startswith("P "):
            pending.append(k)
            continue
        assert v.startswith("D "), (k, v[:40])
        if stream:
            assert k in demandes, k      # the answer has its stream entry
        answer = demande.record_answer(v, *demande.record_key_parts(k))
        for it in answer.get("items", []):
            if it.get("status") == "confirmed":
                assert it["booking_id"] in all_booked, (k, it)
    assert not pending, pending[:5]
    assert r.zcard(tag(s) + ":inflight") == 0


def booking_head(token, key, length):
    """The head of a POST /api/bookings of length bytes, for a raw
    socket."""
    return ("POST /api/bookings HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Authorization: Bearer %s\r\nIdempotency-Key: %s\r\n"
            "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
            % (token, key, length)).encode()


def send_booking(port, token, key, body):
    """POST /api/bookings of body (bytes) sent whole on a raw socket: the
    socket, its answer not read."""
    c = socket.create_connection(("127.0.0.1", port), 5)
    c.sendall(booking_head(token, key, len(body)) + body)
    return c


def raw_post(port, token, items, idem, close_after=0.0, partial=False,
             reset=False):
    """Sends POST /api/bookings on a raw socket and closes it without
    reading the answer: after close_after seconds, with only half of the
    body when partial, with a RST instead of a FIN when reset."""
    body = body_of(items).encode()
    head = booking_head(token, idem, len(body))
    c = socket.create_connection(("127.0.0.1", port), 5)
    try:
        c.sendall(head + (body[:len(body) // 2] if partial else body))
        if close_after:
            time.sleep(close_after)
        if reset:
            c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                         b"\x01\x00\x00\x00\x00\x00\x00\x00")
    finally:
        c.close()


BAD_LOG = re.compile(r"\[(alert|crit|emerg)\]|AddressSanitizer|"
                     r"LeakSanitizer|runtime error:")


def step_one_alone(s, token, key, body):
    """POST /api/bookings of body (bytes) with key while Redis is stopped:
    nginx sends step one and answers 503 at guichet_timeout; every nginx
    worker is then killed (the master makes new ones) and Redis goes on,
    so that step one runs with nobody left for step two
    (docs/architecture.md, orphans)."""
    redis = s.procs["redis"]
    redis.send_signal(signal.SIGSTOP)
    try:
        c = send_booking(s.port, token, key, body)
        c.settimeout(30)
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = c.recv(4096)
            assert chunk, head
            head += chunk
        assert head.startswith(b"HTTP/1.1 503"), head
        for p in s.nginx_workers():
            os.kill(p, signal.SIGKILL)
        c.close()
    finally:
        redis.send_signal(signal.SIGCONT)
