"""test_office_messages.py -- the messagerie of guichet-office
(office/message.c): threads between a family and the town's services,
unread counts on both sides, staff replies with an e-mail and an audit
row, another family's thread unreachable, bad bodies writing nothing.
"""

import pytest

from office_town import (audit, error_code, outbox, staff_add, staff_login,
                         town)


@pytest.fixture(scope="module")
def s(make_stack):
    return make_stack(town(), name="office-messages")


@pytest.fixture(scope="module")
def tok(s):
    return s.tokens()


@pytest.fixture(scope="module")
def agent(s):
    staff_add(s, "agent.msg", "agent", "Claire Agent", "agent-password")
    return staff_login(s, "agent.msg", "agent-password")


def counts(s):
    return s.sql("select (select count(*) from message_thread),"
                 " (select count(*) from message)")[0]


def new_thread(s, t, subject="Menus de juillet", body="Bonjour, une "
               "question sur les menus.", service="scolaire"):
    r = s.http("POST", "/api/messages", token=t,
               json={"service": service, "subject": subject, "body": body})
    assert r.status == 201, r
    return r.json()


def test_a_thread_from_question_to_answer(s, tok, agent):
    f1 = tok["f1"]
    page = new_thread(s, f1)
    th = page["thread"]
    assert th["service"] == "scolaire" and th["subject"] == "Menus de juillet"
    assert th["unread"] == 0
    assert [m["from"] for m in page["messages"]] == ["family"]
    tid = th["id"]

    # the staff sees one unread family message
    lst = s.http("GET", "/api/staff/messages?unread=1", token=agent).json()
    mine = [t for t in lst["threads"] if t["id"] == tid]
    assert mine and mine[0]["unread"] == 1 and mine[0]["family_id"] == "f1"
    assert mine[0]["last_excerpt"].startswith("Bonjour, une question")

    # opening it marks it read for the staff, not for the family
    r = s.http("GET", "/api/staff/messages/%d" % tid, token=agent)
    assert r.status == 200, r
    assert r.json()["thread"]["unread"] == 0
    lst = s.http("GET", "/api/staff/messages?unread=1", token=agent).json()
    assert all(t["id"] != tid for t in lst["threads"])

    # the reply: the family gets an unread message and an e-mail
    r = s.http("POST", "/api/staff/messages/%d" % tid, token=agent,
               json={"body": "Les menus sont en ligne depuis lundi."})
    assert r.status == 201, r
    reply = r.json()
    assert reply["from"] == "staff" and reply["author_name"] == "Claire Agent"
    mails = [m for m in outbox(s, "message") if m[0] == "f1"]
    assert len(mails) == 1 and "Menus de juillet" in mails[0][2]
    rows = audit(s, "message.reply")
    assert rows and rows[-1][0] == "agent.msg", rows
    assert "Les menus" not in str(rows[-1])          # no text in the audit

    mine = s.http("GET", "/api/messages", token=f1).json()
    assert mine["unread"] == 1
    assert [t["unread"] for t in mine["threads"] if t["id"] == tid] == [1]

    page = s.http("GET", "/api/messages/%d" % tid, token=f1).json()
    assert [m["from"] for m in page["messages"]] == ["family", "staff"]
    assert page["messages"][1]["body"] == \
        "Les menus sont en ligne depuis lundi."
    assert s.http("GET", "/api/messages", token=f1).json()["unread"] == 0

    # the family answers; the thread comes first in the staff's list
    r = s.http("POST", "/api/messages/%d" % tid, token=f1,
               json={"body": "Merci beaucoup !"})
    assert r.status == 201 and r.json()["from"] == "family", r
    lst = s.http("GET", "/api/staff/messages", token=agent).json()
    assert lst["threads"][0]["id"] == tid
    assert lst["threads"][0]["unread"] == 1


def test_threads_are_the_familys_own(s, tok, agent):
    tid = new_thread(s, tok["f1"], subject="Privé")["thread"]["id"]
    before = counts(s)
    f2 = tok["f2"]
    for path in ("/api/messages/%d" % tid, "/api/messages/999999999",
                 "/api/messages/abc", "/api/messages/1e3"):
        assert error_code(s.http("GET", path, token=f2), 404) == "not_found"
        assert error_code(s.http("POST", path, token=f2,
                                 json={"body": "intrusion"}),
                          404) == "not_found"
    assert all(t["id"] != tid for t in
               s.http("GET", "/api/messages", token=f2).json()["threads"])
    assert counts(s) == before

    # a family token on the staff's routes
    assert error_code(s.http("GET", "/api/staff/messages", token=f2),
                      403) == "forbidden"
    assert error_code(s.http("POST", "/api/staff/messages/%d" % tid,
                             token=f2, json={"body": "x"}),
                      403) == "forbidden"
    assert error_code(s.http("GET", "/api/staff/messages/999999999",
                             token=agent), 404) == "not_found"


@pytest.mark.parametrize("body", [
    {"service": "scolaire", "subject": "Objet", "body": ""},
    {"service": "scolaire", "subject": "Objet", "body": "   "},
    {"service": "scolaire", "subject": "Objet", "body": "é" * 5001},
    {"service": "scolaire", "subject": "x" * 201, "body": "texte"},
    {"service": "scolaire", "subject": "", "body": "texte"},
    {"service": "piscine", "subject": "Objet", "body": "texte"},
    {"service": "scolaire", "subject": "Objet"},
    {"service": "scolaire", "subject": "Objet", "body": "t", "urgent": 1},
    {"service": "scolaire", "subject": "Objet", "body": 3},
])
def test_bad_messages_write_nothing(s, tok, body):
    before = counts(s)
    r = s.http("POST", "/api/messages", token=tok["f1"], json=body)
    assert error_code(r, 400) == "invalid_field"
    assert counts(s) == before


def test_long_messages_within_the_limit(s, tok):
    page = new_thread(s, tok["f2"], subject="é" * 200, body="é" * 5000,
                      service="regie")
    assert len(page["messages"][0]["body"]) == 5000


def test_staff_filter_by_service(s, tok, agent):
    new_thread(s, tok["f2"], subject="Facture de juin", service="regie")
    lst = s.http("GET", "/api/staff/messages?service=regie",
                 token=agent).json()
    assert lst["threads"]
    assert {t["service"] for t in lst["threads"]} == {"regie"}
    assert error_code(s.http("GET", "/api/staff/messages?service=x",
                             token=agent), 400) == "invalid_field"
