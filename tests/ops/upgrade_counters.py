"""upgrade_counters.py OLD_CHECKOUT -- `make run` again on a loaded var/
across issue 20's fifth pass (a session's two counter keys merged into one
8-byte {T}:s:<sid>:left): run.sh of OLD_CHECKOUT (a built checkout of the
layout before, e.g. `git clone . /tmp/old && git -C /tmp/old checkout
168e242 && make -C /tmp/old build`), bookings online and at the counter,
then run.sh of this checkout on the same var/ (free ports, a temporary
GUICHET_VAR, as tests/ops/test_make_run.py).  Prints what a user would
check: the counters, no :onsite key left, the counter books from the merged
quota, `guichetctl check`, PostgreSQL's bookings.  Needs the old checkout,
so not a test of the suite; run by hand (docs/architecture.md, *Upgrade
from two counter keys a session*)."""
import json
import os
import subprocess
import sys
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
NEW = os.path.dirname(os.path.dirname(HERE))
OLD = os.path.abspath(sys.argv[1])
sys.path.insert(0, HERE)
import test_make_run as t  # noqa: E402

ops = t.Ops()
tw = t.town()
tw["activities"][0]["online_share_percent"] = 50        # 500 + 500
with open(ops.town_file, "w") as f:
    json.dump(tw, f)

def run_sh(root):
    r = subprocess.run(["bash", root + "/scripts/run.sh"], cwd=root,
                       env=ops.env(GUICHET_TOWN=ops.town_file),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=600)
    out = r.stdout.decode(errors="replace")
    print("--- run.sh", root, r.returncode, "\n" + out[-1500:])
    assert r.returncode == 0

def counters(sid):
    return ops.redis_cli("--raw", "BITFIELD", "{main}:s:%s:left" % sid,
                         "GET", "u32", "0", "GET", "u32", "32").split()

def book(tok, fid, sid, staff=False):
    path = "/api/staff/bookings" if staff else "/api/bookings"
    body = {"items": [{"child_id": "c-" + fid[2:], "session_id": sid}]}
    if staff:
        body["family_id"] = fid
    st, b = ops.http("POST", path, token=tok, body=body,
                     headers={"Idempotency-Key": uuid.uuid4().hex})
    return st, b

try:
    run_sh(OLD)
    staff = t.Ops.ctl(ops, "staff-token", "admin", binary=OLD + "/build/guichetctl").out.strip()
    for i, sid in enumerate(["s1", "s2"]):
        print("online", book(ops.token("f-01"), "f-01", sid))
        print("staff", book(staff, "f-%02d" % (i + 2), sid, staff=True))
    print("old layout:", ops.redis_cli("--raw", "STRLEN", "{main}:s:s1:left"),
          ops.redis_cli("--raw", "BITFIELD", "{main}:s:s1:onsite", "GET", "u32", "0"))
    run_sh(NEW)
    print("new layout s1:", counters("s1"), "s3:", counters("s3"),
          "onsite keys:", ops.redis_cli("--raw", "KEYS", "{main}:s:*:onsite"))
    st, b = ops.http("GET", "/api/bookings", token=ops.token("f-01"))
    print("f-01 bookings:", st, [x.get("session_id") for x in b.get("bookings", [])] if isinstance(b, dict) else b)
    staff = ops.ctl("staff-token", "admin").out.strip()
    print("staff again", book(staff, "f-05", "s1", staff=True))
    print("after:", counters("s1"))
    r = ops.ctl("check", check=False)
    print("check:", r.returncode, r.out[-500:], r.err[-500:])
    print("bookings pg:", ops.psql("select session_id, channel, count(*) from booking group by 1, 2 order by 1, 2"))
finally:
    ops.stop()
