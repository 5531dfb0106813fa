"""test_office_calendar.py -- a family's agenda as an iCalendar feed
(office/calendar.c, issue 24): a private address made by the family,
shown once, revocable and re-creatable; the feed (no login: the address is
the secret) lists the family's confirmed bookings as RFC 5545 events that
Debian's python3-icalendar reads, and the file is also checked strictly
here (CRLF, lines folded at 75 octets, escaped text, required properties).
"""

import datetime as dt
import re
import uuid
from zoneinfo import ZoneInfo

import pytest

icalendar = pytest.importorskip("icalendar")

PARIS = ZoneInfo("Europe/Paris")


def town():
    today = dt.datetime.now(PARIS).date()
    days = [today + dt.timedelta(days=i) for i in range(20, 40)]
    days = [d for d in days if d.weekday() < 5][:3]
    return {
        "town": {"name": "Agenda", "timezone": "Europe/Paris"},
        "units": [{"code": "MATIN", "label": "Matin", "starts": "08:30",
                   "ends": "12:00"},
                  {"code": "APM", "label": "Après-midi", "starts": "13:30",
                   "ends": "17:30"}],
        "activities": [{
            "id": "atelier", "name": "Atelier; dessin, peinture \\ collage",
            "site": "Maison des associations, salle 2",
            "age_min": 3, "age_max": 12, "booking_opens_at": None,
            "deadline": {}, "prices": [{"qf_max": None, "cents": 450}],
            "sessions": [{"id": "at-%s-%s" % (d.strftime("%Y%m%d"), u),
                          "date": d.isoformat(), "unit": u, "places": 10}
                         for d in days for u in ("MATIN", "APM")]}],
        "families": [
            {"id": "fa", "login": "agenda", "password": "secret-agenda",
             "qf": 300,
             "children": [{"id": "fa-l", "first_name": "Léa-Éloïse Marie "
                           "Bérénice de la Fontaine-Dupont",
                           "birth_date": "2018-04-04"}],
             "enrolments": [{"child_id": "fa-l", "activity_id": "atelier",
                             "from": today.isoformat(),
                             "to": (today + dt.timedelta(days=60))
                             .isoformat(), "status": "validee"}]},
            {"id": "fb", "qf": 300,
             "children": [{"id": "fb-a", "first_name": "Autre",
                           "birth_date": "2018-04-04"}]}],
    }


@pytest.fixture(scope="module")
def s(make_stack):
    return make_stack(town(), name="office-calendar")


@pytest.fixture(scope="module")
def tok(s):
    return s.tokens()


def error_code(r, status):
    assert r.status == status, r
    return r.json()["error"]["code"]


def strict_lines(raw):
    """The content lines of an iCalendar object, unfolded, after checking
    its form (RFC 5545 section 3.1): CRLF line ends only, no line longer
    than 75 octets, a folded line starts with one space."""
    assert raw.endswith(b"\r\n")
    assert b"\n" not in raw.replace(b"\r\n", b"")
    assert b"\r" not in raw.replace(b"\r\n", b"")
    phys = raw[:-2].split(b"\r\n")
    for ln in phys:
        assert len(ln) <= 75, ln
    lines = []
    for ln in phys:
        if ln.startswith(b" "):
            lines[-1] += ln[1:]
        else:
            lines.append(ln)
    out = [ln.decode("utf-8") for ln in lines]
    for ln in out:
        assert re.match(r"^[A-Z][A-Z0-9-]*(;[^:]*)?:", ln), ln
    depth = []
    for ln in out:
        if ln.startswith("BEGIN:"):
            depth.append(ln[6:])
        elif ln.startswith("END:"):
            assert depth and depth.pop() == ln[4:], ln
    assert depth == []
    return out


def feed(s, path):
    r = s.http("GET", path)
    assert r.status == 200, r
    assert r.headers.get("content-type", "").startswith("text/calendar"), r
    lines = strict_lines(r.body)
    cal = icalendar.Calendar.from_ical(r.body)
    assert cal.get("VERSION") == "2.0" and cal.get("PRODID")
    events = [c for c in cal.walk() if c.name == "VEVENT"]
    for e in events:
        for k in ("UID", "DTSTAMP", "DTSTART", "DTEND", "SUMMARY"):
            assert e.get(k) is not None, (k, e)
    return lines, events


def book(s, t, sid):
    r = s.http("POST", "/api/bookings", token=t,
               json={"items": [{"child_id": "fa-l", "session_id": sid}]},
               headers={"Idempotency-Key": uuid.uuid4().hex})
    assert r.status == 200, r
    item = r.json()["items"][0]
    assert item["status"] == "confirmed", item
    return item["booking_id"]


def test_no_feed_yet(s, tok):
    r = s.http("GET", "/api/calendar", token=tok["fa"])
    assert r.status == 200, r
    assert r.json()["active"] is False
    assert error_code(s.http("DELETE", "/api/calendar", token=tok["fa"]),
                      404) == "not_found"
    assert error_code(s.http("GET", "/api/calendar/" + "x" * 43 + ".ics"),
                      404) == "not_found"
    assert error_code(s.http("GET", "/api/calendar"), 401) \
        == "unauthenticated"


def test_feed_lists_bookings_and_follows_them(s, tok):
    r = s.http("POST", "/api/calendar", token=tok["fa"])
    assert r.status == 201, r
    path = r.json()["path"]
    assert re.fullmatch(r"/api/calendar/[A-Za-z0-9_-]{43}\.ics", path), path
    assert s.http("GET", "/api/calendar", token=tok["fa"]).json()["active"]

    _, events = feed(s, path)
    assert events == []

    sessions = town()["activities"][0]["sessions"]
    first, second = sessions[0], sessions[3]
    b1 = book(s, tok["fa"], first["id"])
    b2 = book(s, tok["fa"], second["id"])
    s.wait_worker_drained()

    lines, events = feed(s, path)
    assert sorted(str(e["UID"]) for e in events) \
        == sorted([b1 + "@guichet", b2 + "@guichet"])
    ev = next(e for e in events if str(e["UID"]) == b1 + "@guichet")
    day = dt.date.fromisoformat(first["date"])
    start = dt.datetime.combine(day, dt.time(8, 30), PARIS)
    assert ev.decoded("DTSTART") == start
    assert ev.decoded("DTEND") == dt.datetime.combine(day, dt.time(12, 0),
                                                      PARIS)
    # text escaped (RFC 5545 3.3.11), read back whole by icalendar
    assert str(ev["SUMMARY"]) == ("Léa-Éloïse Marie Bérénice de la "
                                  "Fontaine-Dupont — Atelier; dessin, "
                                  "peinture \\ collage (Matin)")
    assert str(ev["LOCATION"]) == "Maison des associations, salle 2"
    assert any(ln.startswith("SUMMARY:") and "Atelier\\; dessin\\, "
               "peinture \\\\ collage" in ln for ln in lines), lines
    assert "4,50 €" in str(ev["DESCRIPTION"])

    # a cancelled booking leaves the feed
    r = s.http("DELETE", "/api/bookings/" + b2, token=tok["fa"])
    assert r.status == 200, r
    s.wait_worker_drained()
    _, events = feed(s, path)
    assert [str(e["UID"]) for e in events] == [b1 + "@guichet"]

    # another family's feed shows nothing of this one
    r = s.http("POST", "/api/calendar", token=tok["fb"])
    assert r.status == 201, r
    _, other = feed(s, r.json()["path"])
    assert other == []


def test_recreate_and_revoke(s, tok):
    old = s.http("POST", "/api/calendar", token=tok["fa"]).json()["path"]
    feed(s, old)
    new = s.http("POST", "/api/calendar", token=tok["fa"]).json()["path"]
    assert new != old
    assert error_code(s.http("GET", old), 404) == "not_found"
    feed(s, new)
    assert s.sql("select count(*) from calendar_feed where family_id = 'fa'"
                 )[0][0] == 1
    # only a hash is kept
    token = new.rsplit("/", 1)[1][:-4]
    assert s.sql("select count(*) from calendar_feed where token_hash = %s",
                 (token,))[0][0] == 0

    r = s.http("DELETE", "/api/calendar", token=tok["fa"])
    assert r.status == 204, r
    assert error_code(s.http("GET", new), 404) == "not_found"
    assert s.http("GET", "/api/calendar", token=tok["fa"]).json()["active"] \
        is False
    assert [a for (a,) in s.sql("select action from audit_log where"
                                " action like 'calendar.%%' and target = 'fa'"
                                " order by id")][-1] == "calendar.revoke"


def test_the_feed_is_never_stored_and_says_so_once(s, tok):
    """The feed sent two Cache-Control headers, guichet-office's
    `no-store` and the calendar's `private, max-age=300`: a cache reading
    the last one kept the family's agenda (children's names, where they
    are and when) on disk for five minutes, and served it after the
    address was revoked.  One header, `no-store`, as every other answer of
    guichet-office and the module; a calendar client polls the address on
    its own schedule and needs no max-age."""
    path = s.http("POST", "/api/calendar", token=tok["fa"]).json()["path"]
    r = s.http("GET", path)
    assert r.status == 200, r
    assert r.header_all("Cache-Control") == ["no-store"], r.header_list
    # its errors too
    r = s.http("GET", "/api/calendar/" + "y" * 43 + ".ics")
    assert r.status == 404, r
    assert r.header_all("Cache-Control") == ["no-store"], r.header_list
