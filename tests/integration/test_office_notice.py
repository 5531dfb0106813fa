"""test_office_notice.py -- what the town tells many families at once
(office/notice.c, issue 26): a thread opened to one family or to every
family of an activity (each gets the message in its space and one e-mail);
reminders scheduled through the outbox (one e-mail per family and
reminder, due at the instant chosen), cancelled before they go; only the
régie schedules.
"""

import pytest

from office_town import agent, audit, error_code, regie, staffed_stack, town


@pytest.fixture(scope="module")
def s(make_stack):
    return staffed_stack(make_stack, town(), "office-notice")


def test_a_message_to_every_family_of_an_activity(s, agent):
    post = lambda body: s.http("POST", "/api/staff/threads", token=agent,
                               json=body)
    body = {"activity_id": "centre", "service": "enfance",
            "subject": "Sortie au parc jeudi",
            "body": "Prévoyez une casquette et une gourde."}
    r = post(body)
    assert r.status == 201, r
    assert r.json()["families"] == ["f1", "f2"]
    assert r.json()["threads"] == 2
    for fid in ("f1", "f2"):
        m = s.http("GET", "/api/messages", token=s.token(fid))
        assert m.status == 200, m
        th = [t for t in m.json()["threads"]
              if t["subject"] == "Sortie au parc jeudi"]
        assert len(th) == 1 and th[0]["service"] == "enfance", m.json()
    mails = s.sql("select family_id, subject, body from outbox"
                  " where kind = 'message' order by family_id")
    assert [(m[0], m[1]) for m in mails] == \
        [("f1", "Nouveau message de la mairie : Sortie au parc jeudi"),
         ("f2", "Nouveau message de la mairie : Sortie au parc jeudi")]
    assert "/#/messagerie?fil=" in mails[0][2]
    assert audit(s, "message.open")[-1][:2] == ("agent.a",
                                                "activity:centre")
    # one family
    r = post(dict(body, activity_id=None, family_id="f2"))
    assert error_code(r, 400) == "invalid_field"
    b = dict(body, family_id="f2")
    del b["activity_id"]
    r = post(b)
    assert r.status == 201 and r.json()["families"] == ["f2"], r
    # errors: nothing written
    n = s.sql("select count(*) from message_thread")[0][0]
    assert error_code(post(dict(body, activity_id="golf")), 404) == \
        "not_found"
    assert error_code(post(dict(body, service="sport")), 400) == \
        "invalid_field"
    assert error_code(post(dict(body, subject="")), 400) == "invalid_field"
    assert error_code(post(dict(body, subject="x" * 201)), 400) == \
        "invalid_field"
    assert s.sql("select count(*) from message_thread")[0][0] == n


def test_reminders_go_through_the_outbox_once(s, agent, regie):
    remind = lambda tok, body: s.http("POST", "/api/staff/reminders",
                                      token=tok, json=body)
    body = {"kind": "opening", "activity_id": "piscine",
            "send_at": "2030-06-01T09:00:00+02:00"}
    assert error_code(remind(agent, body), 403) == "forbidden"
    r = remind(regie, body)
    assert r.status == 201, r
    rem = r.json()
    assert (rem["kind"], rem["families"], rem["sent"]) == \
        ("opening", 1, 0)
    assert "Piscine" in rem["subject"] and "ouvrent" in rem["body"]
    rows = s.sql("select family_id, ref, sent_at,"
                 " next_attempt_at = '2030-06-01T09:00:00+02:00'"
                 " from outbox where kind = 'reminder'")
    assert rows == [("f1", "%d:f1" % rem["id"], None, True)]

    # invoices due: the families with an unpaid invoice past due
    s.sql("insert into invoice (number, family_id, month, total_cents,"
          " issued_at, due_date) values (1, 'f2', '2026-01-01', 700,"
          " now(), '2026-02-15')")
    r = remind(regie, {"kind": "invoice_due",
                       "send_at": "2030-06-02T09:00:00+02:00"})
    assert r.status == 201 and r.json()["families"] == 1, r
    assert error_code(remind(regie, {"kind": "invoice_due",
                                     "activity_id": "centre",
                                     "send_at": "2030-06-02T09:00:00Z"}),
                      400) == "invalid_field"
    assert error_code(remind(regie, dict(body, send_at="demain")), 400) == \
        "invalid_field"
    assert error_code(remind(regie, dict(body, activity_id="golf")),
                      404) == "not_found"
    assert error_code(remind(regie, {"kind": "custom",
                                     "activity_id": "centre",
                                     "send_at": "2030-06-02T09:00:00Z"}),
                      400) == "invalid_field"
    r = remind(regie, {"kind": "custom", "activity_id": "centre",
                       "send_at": "2030-06-03T09:00:00Z",
                       "subject": "Fermeture exceptionnelle",
                       "body": "Le centre sera fermé le 14 juillet."})
    assert r.status == 201 and r.json()["families"] == 2, r

    listed = s.http("GET", "/api/staff/reminders", token=agent).json()
    assert [x["kind"] for x in listed["reminders"]] == \
        ["custom", "invoice_due", "opening"]

    # cancelled before it goes: its e-mails are gone
    r = s.http("DELETE", "/api/staff/reminders/%d" % rem["id"],
               token=regie)
    assert r.status == 200 and r.json()["cancelled_at"], r
    assert s.sql("select count(*) from outbox where ref = %s",
                 ("%d:f1" % rem["id"],)) == [(0,)]
    assert error_code(s.http("DELETE", "/api/staff/reminders/%d"
                             % rem["id"], token=regie), 404) == \
        "not_found"
    created = audit(s, "reminder.create")
    assert len(created) == 3 and created[0][:2] == \
        ("regie.r", "reminder:%d" % rem["id"])
    assert len(audit(s, "reminder.cancel")) == 1
