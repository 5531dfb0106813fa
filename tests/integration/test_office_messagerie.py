"""test_office_messagerie.py -- the messagerie's services, themes and
attachments (issue 25, office/message.c, office/attachment.c, migration
0100): the town's list of services and themes (seeded, edited by an admin,
a service taken off the list kept for its threads), a family writing to a
service on a theme with attachments checked by their bytes, staff
filtering by service and theme, answering with an attachment and opening
a thread to a family; attachments read only by their family and staff.
"""

import os

import pytest

from office_town import (JPEG, PDF, PNG, admin, agent, audit, error_code,
                         outbox, staffed_stack, town)


@pytest.fixture(scope="module")
def s(make_stack):
    return staffed_stack(make_stack, town(), "office-messagerie",
                         roles=("agent", "admin"))


@pytest.fixture(scope="module")
def tok(s):
    return s.tokens()


def attach(s, token, data, ctype, name="piece.pdf", staff=False):
    return s.http("POST", "/api/%smessage-attachments?name=%s"
                  % ("staff/" if staff else "", name), token=token,
                  body=data, headers={"Content-Type": ctype})


def counts(s):
    return s.sql("select (select count(*) from message_thread),"
                 " (select count(*) from message),"
                 " (select count(*) from message_attachment"
                 "   where message_id is not null)")[0]


def files(s):
    return sorted(os.listdir(s._path("uploads")))


def test_the_towns_services_and_themes(s, tok):
    r = s.http("GET", "/api/message-services", token=tok["f1"])
    assert r.status == 200, r
    services = r.json()["services"]
    assert [x["label"] for x in services] == [
        "Périscolaire", "Restauration scolaire", "Accueil de loisirs",
        "Régie (factures, paiements)"]
    scolaire = [x for x in services if x["code"] == "scolaire"][0]
    assert "Menus" in [t["label"] for t in scolaire["themes"]]


def test_a_family_writes_on_a_theme_with_attachments(s, tok, agent):
    f1 = tok["f1"]
    a = attach(s, f1, PDF, "application/pdf", name="ordonnance.pdf")
    assert a.status == 201, a
    b = attach(s, f1, PNG, "image/png", name="photo.png")
    assert b.status == 201, b
    ids = [a.json()["id"], b.json()["id"]]
    assert a.json()["filename"] == "ordonnance.pdf"

    r = s.http("POST", "/api/messages", token=f1,
               json={"service": "scolaire", "theme": "allergie",
                     "subject": "PAI de Léa", "body": "Voici le PAI.",
                     "attachments": ids})
    assert r.status == 201, r
    th, msgs = r.json()["thread"], r.json()["messages"]
    assert (th["service"], th["theme"], th["theme_label"]) == \
        ("scolaire", "allergie", "Allergie, PAI, régime")
    att = msgs[0]["attachments"]
    assert [(x["filename"], x["content_type"]) for x in att] == \
        [("ordonnance.pdf", "application/pdf"), ("photo.png", "image/png")]

    # staff filter by service and theme, and read the attachment
    lst = s.http("GET", "/api/staff/messages?service=scolaire&theme=allergie",
                 token=agent).json()["threads"]
    assert [t["id"] for t in lst] == [th["id"]]
    assert s.http("GET", "/api/staff/messages?service=scolaire&theme=menus",
                  token=agent).json()["threads"] == []
    r = s.http("GET", "/api/staff/message-attachments/%d" % ids[0],
               token=agent)
    assert r.status == 200 and r.body == PDF, r
    assert "ordonnance.pdf" in r.headers["content-disposition"]

    # the family reads its own; another family does not
    r = s.http("GET", "/api/message-attachments/%d" % ids[1], token=f1)
    assert r.status == 200 and r.body == PNG, r
    for i in ids + [999999]:
        assert error_code(s.http("GET", "/api/message-attachments/%d" % i,
                                 token=tok["f2"]), 404) == "not_found"

    # sent once: naming it again in another message is refused
    before = counts(s)
    r = s.http("POST", "/api/messages/%d" % th["id"], token=f1,
               json={"body": "Encore", "attachments": [ids[0]]})
    assert error_code(r, 400) == "invalid_field"
    assert "attachments" in r.json()["error"]["message"]
    assert counts(s) == before

    # the staff answers with a file of its own: the family reads it
    c = attach(s, agent, JPEG, "image/jpeg", name="menu.jpg", staff=True)
    assert c.status == 201, c
    r = s.http("POST", "/api/staff/messages/%d" % th["id"], token=agent,
               json={"body": "Bien reçu, voici le menu adapté.",
                     "attachments": [c.json()["id"]]})
    assert r.status == 201, r
    assert [x["filename"] for x in r.json()["attachments"]] == ["menu.jpg"]
    r = s.http("GET", "/api/message-attachments/%d" % c.json()["id"],
               token=f1)
    assert r.status == 200 and r.body == JPEG, r
    assert error_code(s.http("GET", "/api/message-attachments/%d"
                             % c.json()["id"], token=tok["f2"]),
                      404) == "not_found"
    assert audit(s, "message.reply")[-1][0] == "agent.a"


def test_attachments_are_checked_by_their_bytes(s, tok):
    f2 = tok["f2"]
    before = (counts(s), files(s),
              s.sql("select count(*) from message_attachment")[0][0])
    assert error_code(attach(s, f2, PNG, "application/pdf"), 415) == \
        "unsupported_media_type"
    assert error_code(attach(s, f2, b"<html>hello</html>", "application/pdf"),
                      415) == "unsupported_media_type"
    assert error_code(attach(s, f2, b"GIF89a....", "image/gif"), 415) == \
        "unsupported_media_type"
    assert error_code(attach(s, f2, b"", "application/pdf"), 400) == \
        "empty_file"
    assert error_code(attach(s, f2, PDF + b"0" * (5 * 1024 * 1024),
                             "application/pdf"), 413) == "body_too_large"
    assert (counts(s), files(s),
            s.sql("select count(*) from message_attachment")[0][0]) == before

    # another family's upload, not yet sent, cannot be attached
    mine = attach(s, tok["f1"], PDF, "application/pdf").json()["id"]
    r = s.http("POST", "/api/messages", token=f2,
               json={"service": "regie", "subject": "Facture",
                     "body": "Question", "attachments": [mine]})
    assert error_code(r, 400) == "invalid_field"
    assert error_code(s.http("GET", "/api/message-attachments/%d" % mine,
                             token=f2), 404) == "not_found"
    assert counts(s) == before[0]


@pytest.mark.parametrize("extra", [
    {"service": "piscine"},
    {"theme": "menus", "service": "regie"},
    {"theme": 3},
    {"attachments": "1"},
    {"attachments": [1, 1]},
    {"attachments": [1, 2, 3, 4, 5, 6]},
    {"attachments": ["1"]},
    {"attachments": [1.5]},
])
def test_bad_topics_and_attachments_write_nothing(s, tok, extra):
    body = {"service": "scolaire", "subject": "Objet", "body": "Texte"}
    body.update(extra)
    before = counts(s)
    r = s.http("POST", "/api/messages", token=tok["f2"], json=body)
    assert error_code(r, 400) == "invalid_field"
    assert counts(s) == before


def test_too_many_attachments_waiting(s, tok):
    f2 = tok["f2"]
    s.sql("delete from message_attachment where message_id is null")
    for i in range(10):
        assert attach(s, f2, PDF, "application/pdf").status == 201
    n = s.sql("select count(*) from message_attachment")[0][0]
    r = attach(s, f2, PDF, "application/pdf")
    assert error_code(r, 413) == "attachment_limit"
    assert s.sql("select count(*) from message_attachment")[0][0] == n
    s.sql("delete from message_attachment where message_id is null")


def test_staff_opens_a_thread_to_a_family_on_a_theme(s, tok, agent):
    r = s.http("POST", "/api/staff/threads", token=agent,
               json={"family_id": "f2", "service": "regie",
                     "theme": "facture", "subject": "Votre facture de juin",
                     "body": "Une erreur a été corrigée."})
    assert r.status == 201 and r.json()["families"] == ["f2"], r
    th = [t for t in s.http("GET", "/api/messages",
                            token=tok["f2"]).json()["threads"]
          if t["subject"] == "Votre facture de juin"]
    assert len(th) == 1 and th[0]["theme"] == "facture"
    assert th[0]["unread"] == 1
    assert [m for m in outbox(s, "message") if m[0] == "f2"]
    r = s.http("POST", "/api/staff/threads", token=agent,
               json={"family_id": "f2", "service": "regie",
                     "theme": "menus", "subject": "x", "body": "y"})
    assert error_code(r, 400) == "invalid_field"


def test_an_admin_edits_the_list(s, tok, agent, admin):
    new = {"services": [
        {"code": "scolaire", "label": "Restauration",
         "themes": [{"code": "menus", "label": "Menus et repas"}]},
        {"code": "sport", "label": "École des sports",
         "themes": [{"code": "inscription", "label": "Inscription"}]}]}
    assert error_code(s.http("PUT", "/api/staff/message-services",
                             token=agent, json=new), 403) == "forbidden"
    r = s.http("PUT", "/api/staff/message-services", token=admin, json=new)
    assert r.status == 200, r
    fam = s.http("GET", "/api/message-services", token=tok["f1"]).json()
    assert [(x["code"], x["label"], [t["code"] for t in x["themes"]])
            for x in fam["services"]] == [
        ("scolaire", "Restauration", ["menus"]),
        ("sport", "École des sports", ["inscription"])]
    assert audit(s, "message_services.update")[-1][0] == "chef"

    # a service off the list: no new thread, old ones keep it, staff
    # still filter by it
    r = s.http("POST", "/api/messages", token=tok["f1"],
               json={"service": "regie", "subject": "x", "body": "y"})
    assert error_code(r, 400) == "invalid_field"
    r = s.http("POST", "/api/messages", token=tok["f1"],
               json={"service": "sport", "theme": "inscription",
                     "subject": "Inscription", "body": "Bonjour"})
    assert r.status == 201, r
    assert s.http("GET", "/api/staff/messages?service=regie",
                  token=agent).json()["threads"]
    staff = s.http("GET", "/api/staff/message-services",
                   token=agent).json()["services"]
    assert {x["code"]: x["active"] for x in staff}["regie"] is False

    for bad in ({"services": []},
                {"services": [{"code": "A B", "label": "x", "themes": []}]},
                {"services": [{"code": "a", "label": " ", "themes": []}]},
                {"services": [{"code": "a", "label": "x", "themes": []},
                              {"code": "a", "label": "y", "themes": []}]},
                {"services": [{"code": "a", "label": "x",
                               "themes": [{"code": "t", "label": "x"},
                                          {"code": "t", "label": "y"}]}]},
                {"services": [{"code": "a", "label": "x"}]}):
        r = s.http("PUT", "/api/staff/message-services", token=admin,
                   json=bad)
        assert error_code(r, 400) == "invalid_field", bad
    assert [x["code"] for x in s.http("GET", "/api/message-services",
                                      token=tok["f1"]).json()["services"]] \
        == ["scolaire", "sport"]
