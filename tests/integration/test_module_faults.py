"""test_module_faults.py -- the module and guichet-office when the
process fails under them: an allocation refused inside the engine or
libsodium's argon2id, a request body read back short from its temporary
file.  nginx (or guichet-office) runs with faults_preload.c (built here,
LD_PRELOAD'ed: Stack.nginx_preload, Stack.office_preload), which makes
those failures happen where the test says and nowhere else; Redis,
PostgreSQL and the worker are the real ones, untouched.

A failure of the server is the server's: 500 `internal` or 503
`unavailable` (docs/errors.md), never a refusal that blames the user (403
"compte inconnu", 401 wrong password, 400 bad_json), and nothing is
written.  faults_preload.c also holds guichet-office's password check on
its thread while the test has other requests served (an archiving during
a password change), and ends guichet-office at its first unlink of an
upload (a crash between an archiving's commit and its files' erasure).
"""

import os
import re
import subprocess
import sys
import threading
import uuid

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from stack import DEMO_TOWN, Stack  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
FAMILY = "f-martin"
CHILD = "c-lea"
SESSION = "klub-0709-jeux"

pytestmark = pytest.mark.skipif(
    os.environ.get("GUICHET_ASAN") == "1",
    reason="ASan's allocator comes first in LD_PRELOAD: faults_preload.c "
           "would see no malloc")


@pytest.fixture(scope="module")
def preload(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("preload") / "faults.so")
    subprocess.run(["cc", "-shared", "-fPIC", "-O1", "-Wall", "-Werror",
                    "-o", out, os.path.join(HERE, "faults_preload.c"),
                    "-ldl"], check=True)
    return out


def faulty_stack(preload, name, env, conf=None):
    s = Stack(town=DEMO_TOWN, name=name, nginx_template=conf)
    s.nginx_preload = preload
    s.nginx_env = env
    return s


def book(s, tok, sid=SESSION):
    r = s.http("POST", "/api/bookings", token=tok,
               headers={"Idempotency-Key": uuid.uuid4().hex},
               json={"items": [{"child_id": CHILD, "session_id": sid}]})
    return r


def assert_clean_but_refused_mallocs(s, nginx_logs_it=True):
    """The stack's logs are clean but for nginx's own line of each refused
    allocation (ngx_alloc logs malloc failures at [emerg]; a library's
    are not)."""
    refused = re.compile(r"\[emerg\] \d+#\d+: malloc\(\d+\) failed "
                         r"\(12: Cannot allocate memory\)")
    log = s.error_log()
    assert not nginx_logs_it or refused.search(log), \
        "no allocation was refused"
    cleaned = "\n".join(l for l in log.splitlines() if not refused.search(l))
    s.error_log = lambda: cleaned
    s.assert_clean_error_log()


def assert_internal(r, what):
    assert r.status == 500, (what, r)
    assert r.headers.get("content-type", "").startswith(
        "application/json"), (what, r)
    assert r.json()["error"]["code"] == "internal", (what, r)


# the engine functions whose allocations fail, one route each
PLANS = "gch_absence_plan,gch_cancel_plan,gch_wait_plan,gch_bookings_plan," \
        "gch_sessions_plan,gch_requests_plan,gch_render_me," \
        "gch_render_activities"


def test_an_engine_allocation_failure_is_500_never_a_user_error(preload):
    """gch_absence_plan() out of memory was answered 403 forbidden "Ce
    compte n'est pas connu de ce guichet." (the family told its account
    was unknown, the page offering to log in again); every route whose
    plan or rendering fails to allocate answers 500 internal, nothing
    written."""
    s = faulty_stack(preload, "faults-oom",
                     {"GUICHET_FAIL_MALLOC_IN": PLANS})
    try:
        s.start()
        tok = s.token(FAMILY)
        # the booking path allocates elsewhere: it works
        r = book(s, tok)
        assert r.status == 200, r
        item = r.json()["items"][0]
        assert item["status"] == "confirmed", item
        bid = item["booking_id"]
        key = "{main}:f:%s:bookings" % FAMILY
        before = s.redis.hgetall(key)
        assert bid in before
        s.wait_worker_drained()
        stream = s.redis.xlen("{main}:stream")
        demandes = s.sql("select count(*) from demande")[0][0]

        assert_internal(s.http("POST", "/api/absences", token=tok,
                               json={"booking_id": bid,
                                     "reason": "medical"}), "absence")
        assert_internal(s.http("DELETE", "/api/bookings/" + bid, token=tok),
                        "cancellation")
        assert_internal(s.http("GET", "/api/waitlist", token=tok),
                        "waiting list")
        assert_internal(s.http("GET", "/api/bookings?from=2027-07-01"
                               "&to=2027-07-31", token=tok), "planning")
        assert_internal(s.http("GET", "/api/activities/klub/sessions"
                               "?from=2027-07-01&to=2027-07-31"),
                        "sessions")
        assert_internal(s.http("GET", "/api/me", token=tok), "me")
        assert_internal(s.http("GET", "/api/activities"), "activities")
        assert_internal(s.http("GET", "/api/requests", token=tok),
                        "requests")

        # nothing written: the booking is there, no absence nor
        # cancellation asked
        assert s.redis.hgetall(key) == before
        assert s.redis.xlen("{main}:stream") == stream
        s.wait_worker_drained()
        assert s.sql("select status from booking where id = %s",
                     (bid,))[0][0] == "confirmed"
        assert s.sql("select count(*) from demande")[0][0] == demandes
        assert_clean_but_refused_mallocs(s)
    finally:
        s.stop()


def small_buffer_conf(tmp_path):
    """dev.conf with /api/'s client_body_buffer_size at 1k: a larger body
    is buffered to a temporary file, which the module reads back (an
    operator may set it so; the shipped configurations keep 64k)."""
    from stack import ROOT
    with open(os.path.join(ROOT, "lua-free-config", "dev.conf")) as f:
        conf = f.read()
    old = ("            client_max_body_size 64k;\n"
           "            client_body_buffer_size 64k;\n")
    assert conf.count(old) == 1
    path = str(tmp_path / "small-buffer.conf")
    with open(path, "w") as f:
        f.write(conf.replace(old, "            client_max_body_size 64k;\n"
                                  "            client_body_buffer_size 1k;\n"))
    return path


def padded_booking(s, tok, sid=SESSION):
    """A booking whose body (3 KiB: JSON with spaces) is over the 1k
    buffer."""
    body = ('{"items": [{"child_id": "%s", "session_id": "%s"}]%s}'
            % (CHILD, sid, " " * 3000)).encode()
    return s.http("POST", "/api/bookings", token=tok, body=body,
                  headers={"Idempotency-Key": uuid.uuid4().hex,
                           "Content-Type": "application/json"})


def test_a_body_read_back_in_pieces_is_read_whole(preload, tmp_path):
    """ngx_http_guichet_read_body() read a body buffered to a temporary
    file with one pread() and counted the size asked for, not the bytes
    read: a short read (which POSIX allows) left the rest of the buffer
    unfilled and the engine parsed it (400 bad_json, the family told its
    request was malformed).  The module reads until it has the whole
    body."""
    s = faulty_stack(preload, "faults-short-read",
                     {"GUICHET_PREAD_MAX": "100"},
                     conf=small_buffer_conf(tmp_path))
    try:
        s.start()
        tok = s.token(FAMILY)
        r = padded_booking(s, tok)
        assert r.status == 200, r
        assert r.json()["items"][0]["status"] == "confirmed", r
        s.assert_clean_error_log()
    finally:
        s.stop()


def test_a_body_file_shorter_than_its_size_is_refused(preload, tmp_path):
    """A temporary file that reads back shorter than the body nginx wrote
    (truncated under it): the module does not parse bytes it never read;
    500 internal, logged, nothing booked."""
    s = faulty_stack(preload, "faults-truncated",
                     {"GUICHET_PREAD_EOF": "1000"},
                     conf=small_buffer_conf(tmp_path))
    try:
        s.start()
        tok = s.token(FAMILY)
        key = "{main}:f:%s:bookings" % FAMILY
        before = s.redis.hgetall(key)
        r = padded_booking(s, tok)
        assert_internal(r, "truncated body")
        assert s.redis.hgetall(key) == before
        assert "request body" in s.error_log(), s.error_log()
        s.assert_clean_error_log()
    finally:
        s.stop()


def login(s, who="martin", password="secret-demo"):
    return s.http("POST", "/api/session",
                  json={"login": who, "password": password})


def test_a_password_check_without_memory_is_not_a_wrong_password(preload):
    """libsodium's argon2id check returns -1 for a wrong password and for
    memory it could not get (errno EINVAL or ENOMEM): the module answered
    the rightful owner 401 "Identifiant ou mot de passe incorrect.".  A
    check that could not run is 503 unavailable (Retry-After), no
    session, no cookie."""
    s = faulty_stack(preload, "faults-argon2", {
        "GUICHET_FAIL_MALLOC_IN": "crypto_pwhash_argon2id_str_verify"})
    try:
        s.start()
        r = login(s)
        assert r.status == 503, r
        assert r.json()["error"]["code"] == "unavailable", r
        assert r.headers.get("retry-after") == "1", r
        assert "set-cookie" not in r.headers, r
        # no session recorded (a login's connection and token)
        assert s.redis.llen("{main}:f:%s:connections" % FAMILY) == 0
        assert not s.redis.exists("{main}:f:%s:tokens" % FAMILY)
        # the shim refused argon2id only: without it, the owner logs in
        assert_clean_but_refused_mallocs(s, nginx_logs_it=False)
    finally:
        s.stop()


def test_guichet_office_s_password_checks_without_memory(preload):
    """guichet-office's argon2id checks likewise (office/hash.c): a staff
    login was answered 401 "wrong password" and a family's password
    change 403 wrong_password when the check had no memory; both are 503
    unavailable, nothing changed."""
    from office_town import staff_add
    s = faulty_stack(preload, "faults-office-argon2", {})
    s.office_preload = preload
    s.office_env = {
        "GUICHET_FAIL_MALLOC_IN": "crypto_pwhash_argon2id_str_verify"}
    try:
        s.start()
        staff_add(s, "agent.m", "agent", "Morgan Agent", "agent-pass-m1")
        r = s.http("POST", "/api/staff/session",
                   json={"login": "agent.m", "password": "agent-pass-m1"})
        assert r.status == 503, r
        assert r.json()["error"]["code"] == "unavailable", r

        tok = s.token(FAMILY)
        hashed = s.sql("select password_hash from family where id = %s",
                       (FAMILY,))[0][0]
        r = s.http("POST", "/api/password", token=tok,
                   json={"old_password": "secret-demo",
                         "new_password": "nouveau-mot-2027"})
        assert r.status == 503, r
        assert r.json()["error"]["code"] == "unavailable", r
        assert s.sql("select password_hash from family where id = %s",
                     (FAMILY,))[0][0] == hashed
        s.assert_clean_error_log()
    finally:
        s.stop()


def program_function(program, name):
    """"file:start:size" of a function of a program (nm -S), for
    GUICHET_FAIL_MALLOC_AT: a program exports none of its symbols."""
    out = subprocess.run(["nm", "-S", program], check=True,
                         stdout=subprocess.PIPE).stdout.decode()
    for line in out.splitlines():
        f = line.split()
        if len(f) == 4 and f[3] == name:
            return "%s:%s:%s" % (os.path.basename(program), f[0], f[1])
    raise AssertionError("%s not in %s" % (name, program))


def test_guichet_office_s_json_parse_without_memory(preload):
    """guichet-office answered a JSON body the engine's parser could not
    allocate for 400 bad_json "Le corps de la demande n'est pas du JSON
    valide." (the family told its request was malformed): it is 500
    internal, nothing written.  The allocations refused are
    gch_json_parse()'s only."""
    from stack import BUILD
    s = faulty_stack(preload, "faults-office-json", {})
    s.office_preload = preload
    s.office_env = {"GUICHET_FAIL_MALLOC_AT": program_function(
        os.path.join(BUILD, "guichet-office"), "gch_json_parse")}
    try:
        s.start()
        tok = s.token(FAMILY)
        contact = ("select phone_home, phone_mobile from family_contact"
                   " where family_id = %s")
        before = s.sql(contact, (FAMILY,))
        r = s.http("PUT", "/api/contact", token=tok,
                   json={"phone_mobile": "06 01 02 03 04"})
        assert r.status == 500, r
        assert r.json()["error"]["code"] == "internal", r
        assert s.sql(contact, (FAMILY,)) == before
        # a route that reads no JSON is served
        assert s.http("GET", "/api/contact", token=tok).status == 200
        s.assert_clean_error_log()
    finally:
        s.stop()


def test_guichet_office_s_activity_check_without_memory(preload):
    """A new activity is checked by the engine (gch_town_parse()): when
    that could not allocate, guichet-office answered 400 invalid_field
    "Activité invalide." (the régie told its activity was wrong); it is
    500 internal, nothing written."""
    from stack import BUILD
    from office_town import staff_add, staff_login
    s = faulty_stack(preload, "faults-office-activity", {})
    s.office_preload = preload
    s.office_env = {"GUICHET_FAIL_MALLOC_AT": program_function(
        os.path.join(BUILD, "guichet-office"), "gch_town_parse")}
    try:
        s.start()
        staff_add(s, "regie.f", "regie", "Régie Faute", "regie-pass-f1")
        regie = staff_login(s, "regie.f", "regie-pass-f1")
        before = s.sql("select version, json from catalogue")
        r = s.http("POST", "/api/staff/activities", token=regie, json={
            "id": "mercredi", "name": "Club du mercredi", "age_min": 3,
            "age_max": 11, "booking_opens_at": "2026-06-01T18:00:00+02:00",
            "deadline": {"working_days": 2},
            "prices": [{"qf_max": None, "cents": 900}]})
        assert r.status == 500, r
        assert r.json()["error"]["code"] == "internal", r
        # a session's places: the catalogue is checked again once changed
        r = s.http("PUT", "/api/staff/sessions/" + SESSION, token=regie,
                   json={"places": 30})
        assert r.status == 500, r
        assert r.json()["error"]["code"] == "internal", r
        assert s.sql("select version, json from catalogue") == before
        s.assert_clean_error_log()
    finally:
        s.stop()


def gated_stack(preload, tmp_path, name):
    """A stack whose guichet-office holds its password hashings at the
    gate (GUICHET_PWHASH_GATE, while_hashing()): the stack, the gate."""
    gate = str(tmp_path / "gate")
    s = faulty_stack(preload, name, {})
    s.office_preload = preload
    s.office_env = {"GUICHET_PWHASH_GATE": gate}
    return s, gate


def while_hashing(gate, request, meanwhile):
    """request() (an HTTP call to guichet-office) held in its password
    hashing by GUICHET_PWHASH_GATE=gate (faults_preload.c), meanwhile()
    run then, the hashing let go: request()'s answer."""
    out = []
    open(gate + ".armed", "w").close()
    t = threading.Thread(target=lambda: out.append(request()))
    t.start()
    try:
        while not os.path.exists(gate + ".entered"):
            assert t.is_alive(), out
            t.join(0.05)
        meanwhile()
    finally:
        open(gate, "w").close()
        t.join()
    (r,) = out
    return r


def new_family(s, admin, login, first_name, email="c@example.org"):
    """An admin adds a family (login, one child first_name): its id."""
    r = s.http("POST", "/api/staff/families", token=admin,
               json={"login": login, "email": email, "qf": 450,
                     "resident": True, "entourage": [],
                     "children": [{"first_name": first_name,
                                   "birth_date": "2019-03-03"}]})
    assert r.status == 201, r
    return r.json()["id"]


def test_a_password_change_that_outlived_its_family_s_archiving(preload,
                                                                 tmp_path):
    """A password change is checked (its family there, not archived)
    before its argon2id work, on a thread, while guichet-office serves
    the others: an admin's archiving then ran, and the change's second
    half wrote a password hash into the erased file (204).  The second
    half of a family's request checks again: 401, nothing written.
    faults_preload.c holds the check until the archiving is done."""
    from office_town import staff_add, staff_login
    s, gate = gated_stack(preload, tmp_path, "faults-office-archive-race")
    try:
        s.start()
        staff_add(s, "chef.r", "admin", "Camille Chef", "admin-pass-r1")
        admin = staff_login(s, "chef.r", "admin-pass-r1")
        fid = new_family(s, admin, "remi.race", "Rémi", "remi@example.org")
        # the password of f-martin, secret-demo
        s.sql("update family set password_hash = (select password_hash"
              " from family where id = %s) where id = %s", (FAMILY, fid))
        tok = s.ctl_run("token", fid).strip()

        def archive():
            r = s.http("POST", "/api/staff/families/%s/archive" % fid,
                       token=admin)
            assert r.status == 200, r

        r = while_hashing(gate, lambda: s.http(
            "POST", "/api/password", token=tok,
            json={"old_password": "secret-demo",
                  "new_password": "nouveau-mot-2027"}, timeout=60), archive)
        assert r.status == 401, r
        assert r.json()["error"]["code"] == "unauthenticated", r
        assert s.sql("select login, password_hash from family"
                     " where id = %s", (fid,)) == [(None, None)]
        s.assert_clean_error_log()
    finally:
        s.stop()


def unlink_crashing_stack(preload, tmp_path, name):
    """A stack whose guichet-office ends (SIGKILL, faults_preload.c) at its
    first unlink while the file crash exists: (stack, crash)."""
    crash = str(tmp_path / "crash")
    s = faulty_stack(preload, name, {})
    s.office_preload = preload
    s.office_env = {"GUICHET_UNLINK_CRASH": crash}
    return s, crash


def crashed_at_unlink(s, crash, request):
    """request() sent with the crash armed: no 200, guichet-office killed
    at its first unlink, after its commit."""
    open(crash, "w").close()
    r = request()
    assert r.status != 200, r
    s.procs["office"].wait(timeout=30)
    assert s.procs["office"].returncode == 137


def office_restarted(s, crash):
    """guichet-office started again, the crash disarmed."""
    os.unlink(crash)
    os.unlink(s._path("office.sock"))
    s._start_office()


def test_an_archiving_retried_after_a_crash_erases_the_files(preload,
                                                             tmp_path):
    """Archiving unlinks the family's files (documents, attachments) and
    its Redis keys after its commit: guichet-office killed in between
    left them for good (no row named them any more, and archiving again
    answered 409 family_archived, doing nothing).  The archiving's
    transaction queues the files in upload_erasure; the archiving
    retried unlinks them and deletes the keys, then answers 409.
    faults_preload.c ends guichet-office at its first unlink."""
    from office_town import PDF, staff_add, staff_login
    s, crash = unlink_crashing_stack(preload, tmp_path,
                                     "faults-office-archive-crash")
    try:
        s.start()
        staff_add(s, "chef.c", "admin", "Camille Chef", "admin-pass-c1")
        admin = staff_login(s, "chef.c", "admin-pass-c1")
        fid = new_family(s, admin, "crash.arch", "Zoé")
        tok = s.ctl_run("token", fid).strip()
        r = s.http("POST", "/api/documents?type=vaccinations", token=tok,
                   body=PDF, headers={"Content-Type": "application/pdf"})
        assert r.status == 201, r
        stored = s.sql("select stored_name from document"
                       " where family_id = %s", (fid,))[0][0]
        uploads = s._path("uploads")
        key = "{%s}:f:%s:documents" % (s.town_id, fid)
        assert stored in os.listdir(uploads)
        assert s.redis.exists(key)

        url = "/api/staff/families/%s/archive" % fid
        crashed_at_unlink(s, crash, lambda: s.http("POST", url, token=admin))
        # committed: the file erased, but not its file on disk
        assert s.sql("select archived_at is not null from family"
                     " where id = %s", (fid,)) == [(True,)]
        assert s.sql("select count(*) from document where family_id = %s",
                     (fid,)) == [(0,)]
        assert stored in os.listdir(uploads)

        office_restarted(s, crash)
        r = s.http("POST", url, token=admin)
        assert r.status == 409 and r.json()["error"]["code"] == \
            "family_archived", r
        assert stored not in os.listdir(uploads)
        assert not s.redis.exists(key)
        assert s.sql("select count(*) from upload_erasure") == [(0,)]
        # and again: nothing left to do
        r = s.http("POST", url, token=admin)
        assert r.status == 409, r
    finally:
        s.stop()


def test_a_merge_retried_after_a_crash_erases_the_files(preload, tmp_path):
    """A merge erases the duplicate's attachments never sent (their rows
    in its transaction) and unlinked their files after its commit:
    guichet-office killed in between left the files for good (no row
    named them any more, and merging again answered 409
    family_archived, doing nothing).  The merge's transaction queues
    them in upload_erasure, as archiving's does; the merge retried
    unlinks them before its 409.  faults_preload.c ends guichet-office
    at its first unlink."""
    from office_town import PDF, staff_add, staff_login
    s, crash = unlink_crashing_stack(preload, tmp_path,
                                     "faults-office-merge-crash")
    try:
        s.start()
        staff_add(s, "chef.m", "admin", "Camille Chef", "admin-pass-m1")
        admin = staff_login(s, "chef.m", "admin-pass-m1")
        kept = new_family(s, admin, "crash.kept", "Zoé")
        dup = new_family(s, admin, "crash.dup", "Zoe")
        tok = s.ctl_run("token", dup).strip()
        r = s.http("POST", "/api/message-attachments?name=pai.pdf",
                   token=tok, body=PDF,
                   headers={"Content-Type": "application/pdf"})
        assert r.status == 201, r
        stored = s.sql("select stored_name from message_attachment"
                       " where family_id = %s and message_id is null",
                       (dup,))[0][0]
        uploads = s._path("uploads")
        assert stored in os.listdir(uploads)

        url = "/api/staff/families/%s/merge" % kept
        crashed_at_unlink(s, crash, lambda: s.http("POST", url, token=admin,
                                                   json={"from": dup}))
        # committed: the duplicate merged and its attachment's row
        # erased, but not its file on disk
        assert s.sql("select archived_at is not null from family"
                     " where id = %s", (dup,)) == [(True,)]
        assert s.sql("select count(*) from message_attachment"
                     " where family_id = %s", (dup,)) == [(0,)]
        assert stored in os.listdir(uploads)

        office_restarted(s, crash)
        r = s.http("POST", url, token=admin, json={"from": dup})
        assert r.status == 409 and r.json()["error"]["code"] == \
            "family_archived", r
        assert stored not in os.listdir(uploads)
        assert s.sql("select count(*) from upload_erasure") == [(0,)]
        # and again: nothing left to do
        r = s.http("POST", url, token=admin, json={"from": dup})
        assert r.status == 409, r
    finally:
        s.stop()


def test_a_staff_login_that_outlived_its_account_s_deactivation(preload,
                                                                 tmp_path):
    """No staff request hashes but the staff login (public): its second
    half reads the account again after the argon2id check, so an
    admin's deactivation served while the password was checked ends it
    with a 401, no token and no staff.login audit row.  (A regression
    guard: it passed before; faults_preload.c holds the check.)"""
    from office_town import staff_add, staff_login
    s, gate = gated_stack(preload, tmp_path, "faults-office-staff-race")
    try:
        s.start()
        staff_add(s, "chef.d", "admin", "Camille Chef", "admin-pass-d1")
        staff_add(s, "agent.d", "agent", "Alex Agent", "agent-pass-d2")
        admin = staff_login(s, "chef.d", "admin-pass-d1")

        def deactivate():
            r = s.http("POST", "/api/staff/accounts/agent.d/deactivate",
                       token=admin)
            assert r.status in (200, 204), r

        r = while_hashing(gate, lambda: s.http(
            "POST", "/api/staff/session",
            json={"login": "agent.d", "password": "agent-pass-d2"},
            timeout=60), deactivate)
        assert r.status == 401, r
        assert r.json()["error"]["code"] == "unauthenticated", r
        assert "token" not in r.json(), r
        assert s.sql("select count(*) from audit_log where action ="
                     " 'staff.login' and target = 'staff:agent.d'") == [(0,)]
        s.assert_clean_error_log()
    finally:
        s.stop()


def test_a_co_responsable_s_password_change_that_outlived_their_removal(
        preload, tmp_path):
    """A co-responsable changes their password; while it is checked on
    its thread, the family removes them (their login out of {T}:logins,
    their sessions ended).  The change's second half did not look at the
    session again: 204, a password.change audited, and their login
    published back into {T}:logins with the new hash, so the removed
    co-responsable logged in again.  Now 401 `unauthenticated`, nothing
    written, nothing published.  faults_preload.c holds the check."""
    from urllib.parse import parse_qs, urlsplit

    s, gate = gated_stack(preload, tmp_path, "faults-office-coresp-race")
    try:
        s.start()
        parent = s.ctl_run("token", FAMILY).strip()
        r = s.http("POST", "/api/co-responsables", token=parent,
                   json={"first_name": "Paul", "last_name": "Martin",
                         "email": "paul.martin@example.org"})
        assert r.status == 201, r
        cid = r.json()["id"]
        url = urlsplit(r.json()["invitation_url"])
        link = parse_qs(url.fragment.split("?", 1)[1])["jeton"][0]
        version = s.http("GET", "/api/account/cgu").json()["version"]
        r = s.http("POST", "/api/account/co-responsable",
                   json={"token": link, "login": "paul.martin",
                         "password": "paul-secret-1",
                         "cgu_version": version})
        assert r.status == 200, r
        r = s.http("POST", "/api/session",
                   json={"login": "paul.martin", "password": "paul-secret-1"})
        assert r.status == 200, r
        co = r.json()["token"]

        def remove():
            r = s.http("DELETE", "/api/co-responsables/%d" % cid,
                       token=parent)
            assert r.status in (200, 204), r

        r = while_hashing(gate, lambda: s.http(
            "POST", "/api/password", token=co,
            json={"login": "paul.martin", "old_password": "paul-secret-1",
                  "new_password": "paul-nouveau-2027"}, timeout=60), remove)
        assert r.status == 401, r
        assert r.json()["error"]["code"] == "unauthenticated", r
        assert s.redis.hget("{main}:logins", "paul.martin") is None
        r = s.http("POST", "/api/session",
                   json={"login": "paul.martin",
                         "password": "paul-nouveau-2027"})
        assert r.status == 401, r
        assert s.sql("select count(*) from audit_log"
                     " where action = 'password.change'") == [(0,)]
        s.assert_clean_error_log()
    finally:
        s.stop()
