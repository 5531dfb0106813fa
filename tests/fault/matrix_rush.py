"""matrix_rush.py -- the fault matrix's rush (matrix.py): parents booking
during the fault, every answer classified (see matrix.py's docstring).
"""

import http.client
import json
import os
import random
import re
import sys
import threading
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from faultlib import body_of  # noqa: E402
from matrix_harness import (BULK, OK_REASONS, RUSH_FAMILIES,  # noqa: E402
                            child, fam)


# ----- the rush ------------------------------------------------------------

class Rush:
    """16 parents booking without pause between their requests but a
    short one (pace) after each answer; see the module docstring.
    allow_resets: a connection reset or a timeout is not wrong (the fault
    kills the process that held the connection)."""

    def __init__(self, s, tokens, threads=16, seed=8, pace=0.03,
                 allow_resets=False, towns=None, families=RUSH_FAMILIES):
        self.s = s
        # towns: the rush books in each of them (a ClusterMatrixStack's);
        # its families are then "<town>/<family>" (split)
        self.towns = towns
        if towns is None:
            self.families = [fam(i) for i in range(1, families + 1)]
        else:
            self.families = ["%s/%s" % (tid, fam(i))
                             for i in range(1, families + 1)
                             for tid in towns]
        self.tok = tokens
        self.threads = threads
        self.pace = pace
        self.allow_resets = allow_resets
        self.lock = threading.Lock()
        self.stop_ev = threading.Event()       # no new key
        self.give_up_ev = threading.Event()    # not even the current one
        self.t0 = time.monotonic()
        self.finals = []        # {"k","f","s","b","sent","answered"}
        self.wrong = []
        self.resets = []
        self.counts = {"requests": 0, "200": 0, "503": 0, "409": 0,
                       "reset": 0, "replayed": 0}
        self.confirmed = 0
        self.workers = []
        rnd = random.Random(seed)
        self.todo = {}
        for f in self.families:
            bulk = BULK[:]
            rnd.shuffle(bulk)
            self.todo[f] = ["hot"] + bulk
        self.rnd = [random.Random(seed * 1000 + t) for t in range(threads)]

    def now(self):
        return time.monotonic() - self.t0

    @staticmethod
    def split(f):
        """(town or None, family id) of a rush family."""
        tid, _, fid = f.rpartition("/")
        return tid or None, fid

    def start(self):
        for t in range(self.threads):
            th = threading.Thread(target=self._parent, args=(t,),
                                  daemon=True)
            th.start()
            self.workers.append(th)
        return self

    def _parent(self, t):
        try:
            self._parent_loop(t)
        except Exception as e:              # noqa: BLE001 -- a test bug
            with self.lock:
                self.wrong.append("parent %d died: %r" % (t, e))

    def _parent_loop(self, t):
        fams = self.families[t::self.threads]
        rnd = self.rnd[t]
        while not self.stop_ev.is_set():
            fams = [f for f in fams if self.todo[f]]
            if not fams:
                return
            f = rnd.choice(fams)
            n = 2 if len(self.todo[f]) > 1 and rnd.random() < 0.5 else 1
            sids = [self.todo[f].pop(0) for _ in range(n)]
            self.one(f, sids)
            time.sleep(self.pace)

    def one(self, f, sids, key=None, timeout=None):
        """Books sids for f's child with one key until a 200 (or give-up,
        or timeout s); records the final answer.  Returns it."""
        key = key or "m-" + uuid.uuid4().hex
        deadline = time.monotonic() + timeout if timeout else None
        tid, fid = self.split(f)
        items = [(child(fid), sid) for sid in sids]
        headers = {"Idempotency-Key": key,
                   "Content-Type": "application/json"}
        if tid is not None:
            headers.update(self.s.host(tid))
        sent = self.now()
        last = None
        while True:
            try:
                r = self.s.http("POST", "/api/bookings", token=self.tok[f],
                                headers=headers, body=body_of(items),
                                timeout=30)
            except (OSError, http.client.HTTPException) as e:
                with self.lock:
                    self.counts["requests"] += 1
                    self.counts["reset"] += 1
                    self.resets.append((round(self.now(), 3), repr(e)))
                    if not self.allow_resets:
                        self.wrong.append("%s: connection: %r" % (key, e))
                last = "reset"
            else:
                last = r.status
                if self._judge(key, f, sids, r):
                    rec = {"k": key, "f": f, "s": 200, "b": r.json(),
                           "sent": sent, "answered": self.now()}
                    with self.lock:
                        self.finals.append(rec)
                        self.confirmed += sum(
                            1 for it in rec["b"]["items"]
                            if it["status"] == "confirmed")
                    return rec
            if self.give_up_ev.is_set() or (
                    deadline and time.monotonic() > deadline):
                rec = {"k": key, "f": f, "s": last, "b": None,
                       "sent": sent, "answered": None}
                with self.lock:
                    self.finals.append(rec)
                return rec
            time.sleep(0.2 if last == 409 else 0.05)

    def _judge(self, key, f, sids, r):
        """Counts and checks one answer; True when it is the final 200."""
        with self.lock:
            self.counts["requests"] += 1
        bad = None
        final = False
        try:
            body = r.json()
        except ValueError:
            body = None
        code = (body or {}).get("error", {}).get("code") \
            if isinstance(body, dict) and isinstance(body.get("error"),
                                                     dict) else None
        if r.status == 200:
            items = body.get("items") if isinstance(body, dict) else None
            if not isinstance(items, list) or \
                    [(it.get("child_id"), it.get("session_id"))
                     for it in items] != [(child(self.split(f)[1]), s)
                                          for s in sids]:
                bad = "200 with other items"
            else:
                for it in items:
                    if it.get("status") == "confirmed":
                        if not str(it.get("booking_id", "")).startswith(
                                "b-"):
                            bad = "confirmed without booking_id"
                    elif it.get("status") != "refused" or \
                            it.get("reason") not in OK_REASONS:
                        bad = "item %s/%s" % (it.get("status"),
                                              it.get("reason"))
            final = bad is None
            with self.lock:
                self.counts["200"] += 1
                if r.headers.get("idempotent-replayed") == "true":
                    self.counts["replayed"] += 1
        elif r.status == 503:
            # not_replicated: WAIT fell short on a cluster (issue 21)
            if code not in ("unavailable", "not_replicated"):
                bad = "503 %s" % code
            elif not re.fullmatch(r"[1-9][0-9]*",
                                  r.headers.get("retry-after", "")):
                bad = "503 without Retry-After"
            with self.lock:
                self.counts["503"] += 1
        elif r.status == 409 and code == "request_in_progress":
            with self.lock:
                self.counts["409"] += 1
        else:
            bad = "%d %s" % (r.status, code or r.body[:80])
        if bad:
            with self.lock:
                self.wrong.append("%s at %.2fs: %s" % (key, self.now(), bad))
        return final

    def answered_since(self, t):
        with self.lock:
            return sum(1 for rec in self.finals
                       if rec["s"] == 200 and rec["sent"] >= t)

    def first_answer_since(self, t):
        with self.lock:
            a = [rec["answered"] for rec in self.finals
                 if rec["s"] == 200 and rec["sent"] >= t]
        return min(a) if a else None

    def finish(self, timeout=120):
        """No new key; each parent finishes its own (a bound for a hung
        parent: then it gives up and its key counts as unanswered)."""
        self.stop_ev.set()
        deadline = time.monotonic() + timeout
        for th in self.workers:
            th.join(max(0.1, deadline - time.monotonic()))
        if any(th.is_alive() for th in self.workers):
            self.give_up_ev.set()
            for th in self.workers:
                th.join(60)

    def write_log(self, path, town=None):
        """One JSON line per key, as bench/check.py reads them (those of
        the town when given)."""
        with open(path, "w") as f:
            for rec in self.finals:
                tid, fid = self.split(rec["f"])
                if tid != town:
                    continue
                f.write(json.dumps({"k": rec["k"], "f": fid,
                                    "s": rec["s"], "b": rec["b"]}) + "\n")
