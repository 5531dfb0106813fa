"""demande.py -- the compact demande (engine/src/demande.c) read back by the
tests: what the idempotency record "D <hash> <demande>", the family's
demande list and the stream entry of a booking hold, as the dicts of the
JSON the engine renders from it (docs/architecture.md, "The compact
demande").  Text written before the compact form (JSON) is parsed as it is.

    answer(text)   the answer's dict ({"request_id", "status", "items"})
    record_answer(rec, family, key)  the same of an idempotency record
    entry(text)    the stream entry's dict ({"type": "book", ...})
"""

import datetime
import hashlib
import json
import re
from zoneinfo import ZoneInfo

MAGIC = "~1 "


class Reader:
    def __init__(self, b):
        self.b, self.i = b, 0

    def sp(self):
        assert self.b[self.i:self.i + 1] == b" ", (self.b, self.i)
        self.i += 1

    def int(self):
        j = self.i
        if self.b[j:j + 1] == b"-":
            j += 1
        while self.b[j:j + 1].isdigit():
            j += 1
        v = int(self.b[self.i:j])
        self.i = j
        return v

    def str(self):
        n = self.int()
        assert self.b[self.i:self.i + 1] == b":"
        s = self.b[self.i + 1:self.i + 1 + n]
        assert len(s) == n
        self.i += 1 + n
        return s.decode()

    def word(self):
        j = self.i
        while j < len(self.b) and self.b[j:j + 1] not in (b" ", b"@"):
            j += 1
        w = self.b[self.i:j].decode()
        self.i = j
        return w


def decode(text):
    """The fields of a compact demande (str or bytes)."""
    b = text.encode() if isinstance(text, str) else text
    assert b.startswith(MAGIC.encode()), b[:40]
    r = Reader(b)
    r.i = len(MAGIC)
    d = {"number": r.int()}
    r.sp()
    d["at_ms"] = r.int()
    r.sp()
    d["onsite"] = r.b[r.i:r.i + 1] == b"o"
    r.i += 1
    r.sp()
    d["family"] = r.str()
    r.sp()
    d["key"] = r.str()
    r.sp()
    d["agent"] = r.str()
    r.sp()
    cells = []
    for _ in range(r.int()):
        r.sp()
        c = {"child": r.str()}
        r.sp()
        c["session"] = r.str()
        r.sp()
        sign = r.b[r.i:r.i + 1]
        r.i += 1
        if sign == b"+":
            c["price_cents"] = r.int()
        else:
            c["reason"] = r.word()
            if r.b[r.i:r.i + 1] == b"@":
                r.i += 1
                c["opens_at"] = r.int()
        cells.append(c)
    assert r.i == len(b), b
    d["cells"] = cells
    return d


def booking_id(fid, key, cid, sid):
    h = hashlib.blake2b(digest_size=10)
    h.update(b"\0".join(x.encode() for x in (fid, key, cid, sid)))
    return "b-" + h.hexdigest()


def _status(cells):
    ok = sum("reason" not in c for c in cells)
    return ("traitee_positivement" if ok == len(cells)
            else "traitee_negativement" if ok == 0 else "partielle")


def _items(d):
    out = []
    for c in d["cells"]:
        it = {"child_id": c["child"], "session_id": c["session"]}
        if "reason" not in c:
            it.update(status="confirmed", booking_id=booking_id(
                d["family"], d["key"], c["child"], c["session"]),
                price_cents=c["price_cents"])
            if d["onsite"]:
                it["channel"] = "onsite"
        else:
            it.update(status="refused", reason=c["reason"])
            if "opens_at" in c:
                it["opens_at"] = datetime.datetime.fromtimestamp(
                    c["opens_at"], ZoneInfo("Europe/Paris")).isoformat()
        out.append(it)
    return out


def _rid(n):
    return "D-%06d" % n if n >= 0 else None


def answer(text, family=None, key=None):
    """The answer's dict; family and key fill in a bare demande's (the
    idempotency record's, whose Redis key names them)."""
    if text.lstrip()[:1] in ("{", b"{"):
        return json.loads(text)
    d = decode(text)
    if family is not None and not d["family"] and not d["key"]:
        d["family"], d["key"] = family, key
    return {"request_id": _rid(d["number"]), "status": _status(d["cells"]),
            "items": _items(d)}


def entry(text):
    if text.lstrip()[:1] in ("{", b"{"):
        return json.loads(text)
    d = decode(text)
    e = {"type": "book", "number": d["number"],
         "request_id": _rid(d["number"]), "family_id": d["family"],
         "idem": d["key"], "at_ms": d["at_ms"],
         "status": _status(d["cells"]), "items": _items(d)}
    if d["onsite"] and d["agent"]:
        e["agent"] = d["agent"]
    return e


def record_answer(rec, family, key):
    """The answer of the idempotency record rec "D <hash> <demande>" of
    this family and Idempotency-Key."""
    assert rec.startswith("D "), rec[:40]
    return answer(rec.split(" ", 2)[2], family, key)


def record_key_parts(rkey):
    """(family, key) of an idempotency record's Redis key."""
    m = re.search(r"f:([^:}]+)\}?:idem:(.*)$", rkey)
    assert m, rkey
    return m.group(1), m.group(2)
