"""test_office_families.py -- the back office's families (office/family.c,
issue 26): an agent creates a family at the counter with its children,
e-mail, entourage and QF, enrols a child, records a new QF with the day it
takes effect and the resident status (the booking path prices with them
once the publisher laid them over the catalogue), adds a child and its
allergies; only an admin archives a family (office/archive.c), which
erases what identifies it and keeps the accounting.  Every change is in
the audit log.
"""

import json
import os

import psycopg2
import pytest

from office_town import (PDF, admin, agent, audit, book, error_code,
                         module_sees, published, regie, staffed_stack, town)


@pytest.fixture(scope="module")
def s(make_stack):
    return staffed_stack(make_stack, town(), "office-families",
                         roles=("agent", "regie", "admin"))


NEW = {"login": "martin", "email": "martin@example.org", "qf": 450,
       "resident": True,
       "children": [{"first_name": "Léo", "birth_date": "2019-03-03",
                     "allergies": "arachide"},
                    {"first_name": "Inès", "birth_date": "2020-05-05"}],
       "entourage": [{"first_name": "Paul", "last_name": "Martin",
                      "relation": "grand-père", "phone": "06 00 00 00 01",
                      "can_pick_up": True, "emergency": True},
                     {"first_name": "Jeanne", "last_name": "Roux",
                      "relation": "voisine", "phone": "01 00 00 00 02",
                      "can_pick_up": False, "emergency": True}]}


def catalogue_family(s, fid):
    cat = json.loads(s.redis.get("{main}:catalogue"))
    got = [f for f in cat["families"] if f["id"] == fid]
    return got[0] if got else None


def made_by_agent(s, agent, login, email):
    """A family made at the counter (NEW, without entourage): its id."""
    r = s.http("POST", "/api/staff/families", token=agent,
               json=dict(NEW, login=login, email=email, entourage=[]))
    assert r.status == 201, r
    return r.json()["id"]


def archive(s, admin, fid):
    """The family archived by an admin (200)."""
    r = s.http("POST", "/api/staff/families/%s/archive" % fid, token=admin)
    assert r.status == 200, r


def test_a_family_made_at_the_counter_books(s, agent):
    before = s.sql("select count(*) from family")[0][0]
    # bad bodies first: nothing written
    for body, path in ((dict(NEW, children=[]), "$.children"),
                       (dict(NEW, children=[{"first_name": "X"}]),
                        "$.children[0].birth_date"),
                       (dict(NEW, children=[3]),
                        "$.children[0] : objet attendu"),
                       (dict(NEW, entourage=[None]),
                        "$.entourage[0] : objet attendu"),
                       (dict(NEW, qf=-3), "$.qf"),
                       (dict(NEW, entourage=[{"relation": "x"}]),
                        "$.entourage[0].first_name"),
                       (dict(NEW, entourage=[dict(NEW["entourage"][0],
                                                  phone="demain")]),
                        "$.entourage[0] : Le champ phone"),
                       (dict(NEW, couleur=1), "$.couleur")):
        r = s.http("POST", "/api/staff/families", token=agent, json=body)
        assert error_code(r, 400) == "invalid_field", (body, r)
        assert r.json()["error"]["message"].startswith(path), r
    # a login already taken: the engine's word, by its path
    r = s.http("POST", "/api/staff/families", token=agent,
               json=dict(NEW, login="dupont"))
    assert error_code(r, 400) == "invalid_field", r
    assert r.json()["error"]["message"].startswith("$.login"), r
    assert s.sql("select count(*) from family")[0][0] == before

    r = s.http("POST", "/api/staff/families", token=agent, json=NEW)
    assert r.status == 201, r
    f = r.json()
    fid = f["id"]
    assert fid.startswith("fam-")
    assert (f["login"], f["email"], f["qf"], f["resident"]) == \
        ("martin", "martin@example.org", 450, True)
    assert [(c["id"], c["first_name"], c["allergies"])
            for c in f["children"]] == \
        [(fid + "-1", "Léo", "arachide"), (fid + "-2", "Inès", None)]
    assert [(c["first_name"], c["last_name"], c["can_pick_up"])
            for c in f["entourage"]] == \
        [("Paul", "Martin", True), ("Jeanne", "Roux", False)]
    assert [q["qf"] for q in f["qf_history"]] == [450]
    assert audit(s, "family.create")[-1][:2] == ("agent.a", "family:" + fid)

    # the booking path knows it once published
    published(s)
    cf = catalogue_family(s, fid)
    assert cf["qf"] == 450 and cf["login"] == "martin"
    assert [c["first_name"] for c in cf["children"]] == ["Léo", "Inès"]

    # the agent enrols Léo in the centre, validated at once
    r = s.http("POST", "/api/staff/families/%s/enrolments" % fid,
               token=agent, json={"child_id": fid + "-1",
                                  "activity_id": "centre",
                                  "from": "2027-01-01", "to": "2027-12-31"})
    assert r.status == 200, r
    assert r.json()["enrolments"][0]["status"] == "validee"
    r = s.http("POST", "/api/staff/families/%s/enrolments" % fid,
               token=agent, json={"child_id": fid + "-1",
                                  "activity_id": "centre",
                                  "from": "2027-06-01", "to": "2027-06-30"})
    assert error_code(r, 409) == "already_requested"
    r = s.http("POST", "/api/staff/families/%s/enrolments" % fid,
               token=agent, json={"child_id": "f1-a",
                                  "activity_id": "centre",
                                  "from": "2027-06-01", "to": "2027-06-30"})
    assert error_code(r, 400) == "invalid_field"
    tok = s.ctl_run("token", fid).strip()
    module_sees(s, tok, lambda me: any(
        e["activity_id"] == "centre" and e["status"] == "validee"
        for e in me.get("enrolments", [])))
    assert book(s, tok, fid + "-1", "centre-20270705") == \
        ("confirmed", None)
    # 7 € flat in this town: the price is recorded by the persister
    s.wait_worker_drained()
    assert s.sql("select price_cents from booking where child_id = %s",
                 (fid + "-1",)) == [(700,)]


def test_qf_history_and_resident_reach_the_catalogue(s, agent):
    fid = s.sql("select id from family where login = 'martin'")[0][0]
    # a QF from a later day is kept, not yet published
    r = s.http("PUT", "/api/staff/families/%s/qf" % fid, token=agent,
               json={"qf": 1200, "from": "2099-01-01"})
    assert r.status == 200, r
    assert [(q["qf"], q["from"]) for q in r.json()["qf_history"]] == \
        [(1200, "2099-01-01"), (450, r.json()["qf_history"][1]["from"])]
    assert r.json()["qf"] == 450
    # one from the past takes effect now
    r = s.http("PUT", "/api/staff/families/%s/qf" % fid, token=agent,
               json={"qf": 820, "from": "2026-09-01"})
    assert r.status == 200, r
    # the newest recorded from the latest day that has come wins: 820
    # (from 2026-09-01) over 450 (from today) only if its day is later;
    # here 450 started today, so 450 stays
    published(s)
    assert catalogue_family(s, fid)["qf"] == 450
    r = s.http("PUT", "/api/staff/families/%s" % fid, token=agent,
               json={"resident": False, "email": "m@example.org"})
    assert r.status == 200, r
    assert (r.json()["resident"], r.json()["email"]) == \
        (False, "m@example.org")
    published(s)
    assert catalogue_family(s, fid)["resident"] is False
    # a QF from today replaces the one of today
    r = s.http("PUT", "/api/staff/families/%s/qf" % fid, token=agent,
               json={"qf": None})
    assert r.status == 200 and r.json()["qf"] is None, r
    published(s)
    assert catalogue_family(s, fid)["qf"] is None
    assert [a[0] for a in audit(s, "family.qf")] == ["agent.a"] * 3
    assert error_code(s.http("PUT", "/api/staff/families/%s/qf" % fid,
                             token=agent, json={"qf": 3, "from": "demain"}),
                      400) == "invalid_field"
    assert error_code(s.http("PUT", "/api/staff/families/nobody/qf",
                             token=agent, json={"qf": 3}),
                      404) == "not_found"


def test_children_contacts_and_allergies(s, agent):
    fid = s.sql("select id from family where login = 'martin'")[0][0]
    r = s.http("POST", "/api/staff/families/%s/children" % fid,
               token=agent, json={"first_name": "Noé",
                                  "birth_date": "2021-07-07",
                                  "allergies": "gluten"})
    assert r.status == 201, r
    assert [c["id"] for c in r.json()["children"]][-1] == fid + "-3"
    published(s)
    assert [c["first_name"] for c in
            catalogue_family(s, fid)["children"]] == ["Léo", "Inès", "Noé"]
    r = s.http("PUT", "/api/staff/children/%s-2" % fid, token=agent,
               json={"allergies": "lactose"})
    assert r.status == 200, r
    assert [c["allergies"] for c in r.json()["children"]] == \
        ["arachide", "lactose", "gluten"]
    # the family's people: the agent adds, edits, removes with a reason
    anne = {"first_name": "Anne", "last_name": "Martin",
            "relation": "tante", "phone": "06 00 00 00 03",
            "can_pick_up": True, "emergency": False}
    url = "/api/staff/families/%s/entourage" % fid
    r = s.http("POST", url, token=agent, json=dict(anne, phone="x"))
    assert error_code(r, 400) == "invalid_field", r
    r = s.http("POST", url, token=agent, json=anne)
    assert r.status == 201, r
    aid = r.json()["id"]
    r = s.http("PUT", "/api/staff/entourage/%d" % aid, token=agent,
               json=dict(anne, relation="marraine"))
    assert r.status == 200, r
    jeanne = [p for p in s.http("GET", "/api/staff/families/%s/record"
                                % fid, token=agent).json()["entourage"]
              if p["first_name"] == "Jeanne"][0]
    r = s.http("DELETE", "/api/staff/entourage/%d" % jeanne["id"],
               token=agent, json={"reason": "déménagée"})
    assert r.status == 200, r
    r = s.http("GET", "/api/staff/families/%s/record" % fid, token=agent)
    assert [(c["first_name"], c["relation"], c["can_pick_up"])
            for c in r.json()["entourage"]] == \
        [("Anne", "marraine", True), ("Paul", "grand-père", True)]
    # the removed person stays, with its reason, for the town
    assert s.sql("select removal_reason, removed_by from entourage_person"
                 " where id = %s", (jeanne["id"],)) == \
        [("déménagée", "agent.a")]
    assert [a[0] for a in audit(s, "entourage.add")][-1] == "agent.a"
    assert [a[0] for a in audit(s, "entourage.edit")][-1] == "agent.a"
    assert s.http("PUT", "/api/staff/families/%s/contacts" % fid,
                  token=agent, json={"contacts": []}).status in (404, 405)
    assert len(audit(s, "child.allergies")) == 1
    assert len(audit(s, "family.child")) == 1


def test_only_an_admin_archives_and_accounting_is_kept(s, tok_f1, agent,
                                                       regie, admin):
    fid = s.sql("select id from family where login = 'martin'")[0][0]
    url = "/api/staff/families/%s/archive" % fid
    assert error_code(s.http("POST", url, token=agent), 403) == "forbidden"
    assert error_code(s.http("POST", url, token=regie), 403) == "forbidden"
    # a booking to come keeps it active
    r = s.http("POST", url, token=admin)
    assert error_code(r, 409) == "family_active"
    assert "1 réservation(s) à venir" in r.json()["error"]["message"]

    # without it (cancelled), the family is archived
    bid = s.sql("select id from booking where family_id = %s", (fid,))[0][0]
    tok = s.ctl_run("token", fid).strip()
    r = s.http("DELETE", "/api/bookings/" + bid, token=tok)
    assert r.status == 200, r
    s.wait_worker_drained()
    # a document on file, to be erased with its file
    r = s.http("POST", "/api/documents?type=vaccinations", token=tok,
               body=PDF, headers={"Content-Type": "application/pdf"})
    assert r.status == 201, r
    stored = s.sql("select stored_name from document where family_id = %s",
                   (fid,))[0][0]
    assert stored in os.listdir(s._path("uploads"))
    r = s.http("POST", url, token=admin)
    assert r.status == 200, r
    b = r.json()
    assert b["archived_at"] and b["login"] is None and b["email"] is None
    assert b["entourage"] == []
    assert s.sql("select count(*) from entourage_person"
                 " where family_id = %s", (fid,))[0][0] == 0
    assert {c["first_name"] for c in b["children"]} == {"Archivé"}
    assert {c["allergies"] for c in b["children"]} == {None}
    # the accounting and the QF history stay
    assert s.sql("select count(*) from booking where family_id = %s",
                 (fid,))[0][0] == 1
    assert s.sql("select count(*) from document where family_id = %s",
                 (fid,))[0][0] == 0
    assert stored not in os.listdir(s._path("uploads"))
    assert len(b["qf_history"]) == 4
    # out of the catalogue: the booking path no longer knows it
    published(s)
    assert catalogue_family(s, fid) is None
    assert audit(s, "family.archive")[-1][:2] == ("chef", "family:" + fid)
    # nothing changes it any more
    assert error_code(s.http("PUT", "/api/staff/families/%s/qf" % fid,
                             token=agent, json={"qf": 3}),
                      409) == "family_archived"
    assert error_code(s.http("POST", url, token=admin), 409) == \
        "family_archived"
    # the others are untouched
    assert catalogue_family(s, "f1")["login"] == "dupont"


@pytest.fixture(scope="module")
def tok_f1(s):
    return s.token("f1")


def test_an_archived_family_s_token_is_refused_by_the_office(s, agent,
                                                             admin):
    """docs/office.md: archiving leaves the family's tokens refused.  The
    module refused them (the family is out of the catalogue), but
    guichet-office did not: a session opened before the archiving read
    the family's data and wrote personal data back (contact details, a
    document) into the file the town had just erased."""
    fid = made_by_agent(s, agent, "durand", "durand@example.org")
    tok = s.ctl_run("token", fid).strip()
    assert s.http("GET", "/api/my-data", token=tok).status == 200

    archive(s, admin, fid)

    assert s.http("GET", "/api/my-data", token=tok).status in (401, 403)
    assert s.http("GET", "/api/contact", token=tok).status in (401, 403)
    r = s.http("PUT", "/api/contact", token=tok,
               json={"email": "durand@example.org",
                     "phone_mobile": "06 11 22 33 44"})
    assert r.status in (401, 403), r
    r = s.http("POST", "/api/documents?type=vaccinations", token=tok,
               body=PDF, headers={"Content-Type": "application/pdf"})
    assert r.status in (401, 403), r
    assert s.sql("select count(*) from family_contact"
                 " where family_id = %s", (fid,))[0][0] == 0
    assert s.sql("select count(*) from family_email"
                 " where family_id = %s", (fid,))[0][0] == 0
    assert s.sql("select count(*) from document where family_id = %s",
                 (fid,))[0][0] == 0
    # the others still work
    assert s.http("GET", "/api/my-data", token=s.token("f1")).status == 200


def test_archiving_leaves_no_way_back_into_the_file(s, agent, admin):
    """Archiving erased the family's login but kept its co-responsable
    (names, e-mail, login, password hash: their login still opened a
    session), a pending invitation (which could still make a login on
    the archived file) and its calendar feed (whose address kept serving
    the family's bookings); merging already erased the feed."""
    from office_town import coresp_accept, coresp_invite

    fid = made_by_agent(s, agent, "bernard", "bernard@example.org")
    published(s)
    tok = s.ctl_run("token", fid).strip()
    version = s.http("GET", "/api/account/cgu").json()["version"]

    link = coresp_invite(s, tok, "Paul", "Bernard", "paul.bernard@example.org")
    creds = coresp_accept(s, link, "paul.bernard", "paul-secret-1")
    feed = s.http("POST", "/api/calendar", token=tok)
    assert feed.status == 201, feed
    feed = feed.json()["path"]
    assert s.http("GET", feed).status == 200
    # a second invitation, not yet used (the first co-responsable
    # removed: one at a time)
    cid = s.sql("select id from co_responsable where family_id = %s",
                (fid,))[0][0]
    assert s.http("DELETE", "/api/co-responsables/%d" % cid,
                  token=tok).status in (200, 204)
    link2 = coresp_invite(s, tok, "Anne", "Bernard",
                          "anne.bernard@example.org")

    archive(s, admin, fid)

    for table in ("co_responsable", "calendar_feed"):
        assert s.sql("select count(*) from %s where family_id = %%s"
                     % table, (fid,))[0][0] == 0, table
    assert s.http("GET", feed).status == 404
    r = s.http("POST", "/api/account/co-responsable",
               json={"token": link2, "login": "anne.bernard",
                     "password": "anne-secret-1", "cgu_version": version})
    assert r.status == 400, r
    assert s.sql("select count(*) from family where id = %s"
                 " and login is null", (fid,))[0][0] == 1
    published(s)
    assert s.redis.hget("{main}:logins", "paul.bernard") is None
    assert s.http("POST", "/api/session", json=creds).status == 401


def test_the_worker_publishes_no_login_of_an_archived_file(s, agent,
                                                           admin):
    """Archiving and merging delete the co-responsables and the family's
    login, but a row left by an older version or brought back by a
    restore of the database (a co-responsable with a login, the family's
    login and hash) was published into {T}:logins by the worker at its
    next publication, and opened a session on the erased file.  The
    worker skips archived families and their co-responsables."""
    fid = made_by_agent(s, agent, "restaure", "restaure@example.org")
    archive(s, admin, fid)

    # the restore: f1's password (secret-f1) for both logins
    [(pw,)] = s.sql("select password_hash from family where id = 'f1'")
    s.sql("update family set login = 'restaure', password_hash = %s"
          " where id = %s", (pw, fid))
    s.sql("insert into co_responsable (family_id, first_name, last_name,"
          "   email, invite_hash, invite_expires_at, login, password_hash,"
          "   activated_at)"
          " values (%s, 'Rose', 'Restaure', 'rose@example.org',"
          "   'restaure-invite', now(), 'rose.restaure', %s, now())",
          (fid, pw))
    s.sql("update catalogue set version = version + 1")
    published(s)

    for who in ("restaure", "rose.restaure"):
        assert s.redis.hget("{main}:logins", who) is None, who
        r = s.http("POST", "/api/session",
                   json={"login": who, "password": "secret-f1"})
        assert r.status == 401, (who, r)
    # the live families' logins are still published
    assert s.redis.hget("{main}:logins", "dupont").startswith("f1 ")


def test_a_family_that_sent_an_attachment_is_archived(s, agent, admin):
    """The archive deleted the family's messages, but a message's
    attachments point at it (message_attachment_message_fkey): a family
    that had once sent a file could not be archived (503, PostgreSQL's
    foreign key error), and its files stayed on disk."""
    from office_town import PNG

    fid = made_by_agent(s, agent, "petit", "petit@example.org")
    tok = s.ctl_run("token", fid).strip()
    ids = []
    for data, ctype, name in ((PDF, "application/pdf", "pai.pdf"),
                              (PNG, "image/png", "photo.png")):
        r = s.http("POST", "/api/message-attachments?name=" + name,
                   token=tok, body=data, headers={"Content-Type": ctype})
        assert r.status == 201, r
        ids.append(r.json()["id"])
    r = s.http("POST", "/api/messages", token=tok,
               json={"service": "scolaire", "theme": "allergie",
                     "subject": "PAI", "body": "Voici le PAI.",
                     "attachments": ids[:1]})
    assert r.status == 201, r
    stored = [x[0] for x in s.sql("select stored_name from"
                                  " message_attachment where family_id = %s",
                                  (fid,))]
    assert len(stored) == 2
    uploads = s._path("uploads")
    assert all(n in os.listdir(uploads) for n in stored)

    archive(s, admin, fid)
    assert s.sql("select count(*) from message_attachment"
                 " where family_id = %s", (fid,))[0][0] == 0
    assert not any(n in os.listdir(uploads) for n in stored)


@pytest.mark.parametrize("email", [
    "x@example.org>\r\nRCPT TO:<y@example.org",   # a second recipient
    "x@example.org\nBcc: y@example.org",          # a header of the mail
    "pas-une-adresse", "a b@example.org", "a@b@example.org"])
def test_an_agent_cannot_give_a_family_an_address_that_is_not_one(s, agent,
                                                                  email):
    """The family's own details check the e-mail (PUT /api/contact, 400
    invalid_field); the back office passed any string to PostgreSQL, whose
    check (family_email_address) refused it: 503 unavailable, "try again
    in a moment", and an error in the log, for a typo.  (The check is what
    keeps a line break out of guichet-worker's RCPT TO and To:.)"""
    before = s.sql("select count(*) from family")[0][0]
    r = s.http("POST", "/api/staff/families", token=agent,
               json=dict(NEW, login="ecrit", email=email, entourage=[]))
    assert error_code(r, 400) == "invalid_field", r
    assert s.sql("select count(*) from family")[0][0] == before
    r = s.http("PUT", "/api/staff/families/f1", token=agent,
               json={"resident": True, "email": email})
    assert error_code(r, 400) == "invalid_field", r
    assert s.sql("select count(*) from family_email where address = %s",
                 (email,))[0][0] == 0


def test_archiving_a_family_that_asked_online_erases_its_request(s, agent,
                                                                 admin):
    """A family whose file was asked online (office/request.c) kept, once
    archived, its request's row: the parents' names, the e-mail, the
    login and password hash it chose, listed to the agents among the
    requests (status=tous).  Archiving erases it with the rest."""
    from test_office_request import asked_online, requests_listed

    fid = asked_online(s, "nadia.benali", "Nadia", "Benali", "Sami",
                       "2018-06-06")
    r = s.http("POST", "/api/staff/family-requests/%s/decision" % fid,
               token=agent, json={"decision": "validee", "resident": True})
    assert r.status == 200, r

    assert requests_listed(s, agent, fid)
    archive(s, admin, fid)
    assert requests_listed(s, agent, fid) == []
    assert s.sql("select count(*) from family_request where family_id = %s"
                 " or email = 'nadia.benali@example.org'", (fid,)) == [(0,)]


def test_archiving_erases_the_family_s_qf_requests(s, agent, admin):
    """Archiving kept the family's requests of a new QF (qf_change): the
    family's comment on its situation ("reprise d'emploi", a separation)
    and the agent's refusal reason, listed to the agents by family and
    given to the family as its own data (my-data), personal data the
    erasure promises to erase.  The QF that priced its bookings is
    family_qf's, which stays."""
    from office_town import upload_pdf

    fid = made_by_agent(s, agent, "qfarch", "qfarch@example.org")
    tok = s.ctl_run("token", fid).strip()
    for comment in ("Séparation depuis mars", "Reprise d'emploi"):
        doc = upload_pdf(s, tok, "avis-imposition")
        r = s.http("POST", "/api/qf-changes", token=tok,
                   json={"document_id": doc, "comment": comment})
        assert r.status == 201, r
        if comment.startswith("Sép"):
            r = s.http("POST", "/api/staff/qf-changes/%d/decision"
                       % r.json()["id"], token=agent,
                       json={"decision": "refusee",
                             "reason": "Avis illisible, Mme Qfarch"})
            assert r.status == 200, r

    def listed():
        r = s.http("GET", "/api/staff/qf-changes?family_id=" + fid,
                   token=agent)
        assert r.status == 200, r
        return r.json()["qf_changes"]

    assert len(listed()) == 2
    qfs = s.sql("select qf from family_qf where family_id = %s", (fid,))
    assert qfs == [(450,)]
    archive(s, admin, fid)
    assert listed() == []
    assert s.sql("select count(*) from qf_change where family_id = %s",
                 (fid,)) == [(0,)]
    # the QF history, which justifies a price, is kept
    assert s.sql("select qf from family_qf where family_id = %s",
                 (fid,)) == qfs


def test_an_archived_family_gets_no_activation_code(s, agent, admin):
    """Archiving empties the family's login, which is what guichetctl's
    letter (invite --letter) and « Créer mon espace » took for "no
    account yet": a letter for an archived family gave it a code, and the
    code a new login and e-mail on the erased file (a session the module
    and guichet-office then refused everywhere)."""
    import re

    from stack import StackError

    fid = made_by_agent(s, agent, "lucas.petit", "lucas@example.org")
    archive(s, admin, fid)

    code = None
    try:
        out = s.ctl_run("invite", "--letter", fid)
        code = re.search(r"activation ([A-Z2-9]{5}-[A-Z2-9]{5})",
                         out).group(1)
    except StackError as e:
        assert "archived" in str(e), e
    if code is not None:
        r = s.http("POST", "/api/account/create",
                   json={"dossier": fid, "code": code,
                         "email": "lucas@example.org",
                         "login": "lucas.petit2",
                         "password": "un-mot-de-passe-long",
                         "cgu_version": 1})
        assert r.status != 202, r
    # nor the mailing, should the family have an e-mail again
    s.sql("insert into family_email (family_id, address)"
          " values (%s, 'lucas@example.org')", (fid,))
    s.ctl_run("invite")
    assert s.sql("select count(*) from family_code where family_id = %s",
                 (fid,)) == [(0,)]
    assert s.sql("select login from family where id = %s", (fid,)) == \
        [(None,)]


def test_guichetctl_writes_no_e_mail_into_an_archived_file(s, agent, admin):
    """guichetctl set-email wrote an e-mail address into an archived
    family's file, whose address archiving had erased (the back office
    refuses any change to it, 409 family_archived)."""
    from stack import StackError

    fid = made_by_agent(s, agent, "emma.blanc", "emma@example.org")
    archive(s, admin, fid)
    with pytest.raises(StackError, match="archived"):
        s.ctl_run("set-email", fid, "emma@example.org")
    assert s.sql("select count(*) from family_email where family_id = %s",
                 (fid,)) == [(0,)]


MARKER = "effacé à l'archivage"


def tables_saying(s, needle):
    """The tables of the town's schema with a row whose text holds needle
    (whatever the case): where a family that asked for its erasure would
    find its words again."""
    tables = s.sql("select quote_ident(table_name)"
                   " from information_schema.tables"
                   " where table_schema = current_schema()"
                   " and table_type = 'BASE TABLE' order by 1")
    return [t for (t,) in tables
            if s.sql("select count(*) from %s x where x::text ilike %%s" % t,
                     ("%" + needle + "%",))[0][0]]


def redis_saying(s, needle):
    """The Redis keys whose name or value holds needle (whatever the
    case)."""
    needle = needle.lower()
    found = []
    for key in s.redis.scan_iter(count=1000):
        kind = s.redis.type(key)
        kind = kind.decode() if isinstance(kind, bytes) else kind
        if kind == "string":
            vals = [s.redis.get(key)]
        elif kind == "hash":
            vals = [x for kv in s.redis.hgetall(key).items() for x in kv]
        elif kind == "list":
            vals = s.redis.lrange(key, 0, -1)
        elif kind == "set":
            vals = list(s.redis.smembers(key))
        elif kind == "zset":
            vals = s.redis.zrange(key, 0, -1)
        elif kind == "stream":
            vals = [x for _, e in s.redis.xrange(key) for kv in e.items()
                    for x in kv]
        else:
            vals = []
        text = " ".join(v.decode("utf-8", "replace")
                        if isinstance(v, bytes) else str(v)
                        for v in [key] + vals)
        if needle in text.lower():
            found.append(key)
    return found


def test_archiving_erases_the_family_s_words_from_the_audit_log(s, agent,
                                                                 admin):
    """RGPD: archiving erased the family's file but the audit log, which
    refused every update, kept the family's words in its rows' detail:
    its comment on a request of a new QF, the agent's refusal reason, its
    phone, its people's names, its co-responsable's e-mail and login, its
    login, its IP addresses.  The town keeps who did what, to what and
    when; what a family that asked for its erasure checks is that its
    words are nowhere in the database any more."""
    from office_town import coresp_accept, coresp_invite, upload_pdf

    fid = made_by_agent(s, agent, "zorglub", "zorglub@example.org")
    published(s)
    tok = s.ctl_run("token", fid).strip()
    r = s.http("PUT", "/api/contact", token=tok,
               json={"email": "zorglub@example.org",
                     "phone_mobile": "06 98 76 54 32"})
    assert r.status == 200, r
    r = s.http("POST", "/api/entourage", token=tok,
               json={"first_name": "Mamie", "last_name": "Zorglub-Roux",
                     "relation": "grand-mère", "phone": "04 98 76 54 31",
                     "can_pick_up": True, "emergency": True})
    assert r.status == 201, r
    doc = upload_pdf(s, tok, "avis-imposition")
    r = s.http("POST", "/api/qf-changes", token=tok,
               json={"document_id": doc,
                     "comment": "Séparation depuis mars, je vis seule"})
    assert r.status == 201, r
    r = s.http("POST", "/api/staff/qf-changes/%d/decision" % r.json()["id"],
               token=agent, json={"decision": "refusee",
                                  "reason": "Avis illisible, Mme Zorglub"})
    assert r.status == 200, r
    link = coresp_invite(s, tok, "Claire", "Zorglub",
                         "claire.zorglub@example.org")
    coresp_accept(s, link, "claire.zorglub", "claire-secret-1")
    # an enrolment refused: the row stays (statistics), not its reason
    child = s.sql("select id from child where family_id = %s order by id",
                  (fid,))[0][0]
    upload_pdf(s, tok, "vaccinations", child)
    r = s.http("POST", "/api/enrolments", token=tok,
               json={"child_id": child, "activity_id": "piscine",
                     "from": "2027-08-01", "to": "2027-08-31"})
    assert r.status in (200, 201), r
    eid = r.json().get("id") or r.json()["enrolment"]["id"]
    r = s.http("POST", "/api/staff/enrolments/%d/decision" % int(eid),
               token=agent, json={"decision": "refusee",
                                  "reason": "Zorglub : certificat périmé"})
    assert r.status == 200, r

    words = ("zorglub", "Séparation depuis mars", "Avis illisible",
             "98 76 54")
    for w in words:
        assert "audit_log" in tables_saying(s, w), w

    def trail():
        return s.sql("select id, at, actor, action, target, detail, ip"
                     " from audit_log where actor = 'family:' || %s"
                     " or target = 'family:' || %s"
                     " or detail->>'family_id' = %s"
                     " or action like 'co_responsable.%%'"
                     " and target in (select target from audit_log"
                     "   where actor = 'family:' || %s)"
                     " order by id", (fid, fid, fid, fid))

    before = trail()
    assert any(r[6] for r in before if r[2] == "family:" + fid)
    others = s.sql("select id, detail, ip from audit_log where id not in"
                   " (select unnest(%s::bigint[])) order by id",
                   ([r[0] for r in before],))

    archive(s, admin, fid)
    published(s)

    # its words are nowhere in PostgreSQL nor in Redis
    for w in words:
        assert tables_saying(s, w) == [], w
        assert redis_saying(s, w) == [], w

    assert s.sql("select status, reason from enrolment where child_id = %s",
                 (child,)) == [("refusee", MARKER)]

    # who did what, to what and when stays: the same rows, with the same
    # actor, action, target and time; the family's addresses gone
    after = trail()
    assert [r[:5] for r in after[:-1]] == [r[:5] for r in before]
    assert all(r[6] is None for r in after[:-1]
               if r[2] not in ("chef", "agent.a"))
    byaction = {r[3]: r[5] for r in after}
    assert byaction["qf.request"] == {"document_id": str(doc),
                                      "comment": MARKER}
    refusal = [r for r in after if r[3] == "qf_change.decision"][0]
    assert not refusal[2].startswith("family:")
    assert refusal[5]["decision"] == "refusee"
    assert refusal[5]["reason"] == MARKER
    assert refusal[5]["family_id"] == fid
    assert byaction["co_responsable.invite"] == {"email": MARKER}
    assert byaction["co_responsable.activate"]["login"] == MARKER
    # the archiving itself: who, what, when, and how many rows it erased
    last = after[-1]
    assert (last[2], last[3], last[4]) == ("chef", "family.archive",
                                           "family:" + fid)
    changed = [b for b, a in zip(before, after) if b[5:] != a[5:]]
    assert int(last[5]["audit_erased"]) == len(changed) > 0
    # the journal still answers the family's filter
    r = s.http("GET", "/api/staff/audit?family=" + fid, token=admin)
    assert r.status == 200, r
    got = {e["action"] for e in r.json()["entries"]}
    assert {"family.create", "contact.update", "qf.request",
            "qf_change.decision", "family.archive"} <= got
    # the other families' rows are untouched
    assert s.sql("select id, detail, ip from audit_log where id = any(%s)"
                 " order by id", ([r[0] for r in others],)) == others
    # and the log stays append-only: nothing but that erasure
    rid = refusal[0]
    for q in ("update audit_log set detail = '{}' where id = %d" % rid,
              "update audit_log set detail = detail, actor = 'x'"
              " where id = %d" % rid,
              "update audit_log set ip = '10.0.0.1' where id = %d" % rid,
              "delete from audit_log where id = %d" % rid):
        with pytest.raises(psycopg2.Error):
            s.sql(q)
    assert trail()[:-1] == after[:-1]


def test_the_migration_erases_the_families_archived_before(s, tmp_path):
    """Migration 0140: the families an older version archived kept their
    words in the audit log; the migration erases them, once, with the same
    marker, and the family's addresses (not a staff account's).  Not those
    of a family on file, nor those of a duplicate merged into it (its file
    lives on in the family kept)."""
    import glob
    from stack import ROOT

    pre = "guichet_pre0140"
    root = psycopg2.connect(s.pg_conninfo.replace("dbname=guichet",
                                                  "dbname=postgres"))
    root.autocommit = True
    root.cursor().execute("drop database if exists " + pre)
    root.cursor().execute("create database " + pre)
    older = tmp_path / "older"
    older.mkdir()
    for p in glob.glob(os.path.join(ROOT, "sql", "migrations", "*.sql")):
        if int(os.path.basename(p)[:4]) < 140:
            os.symlink(p, str(older / os.path.basename(p)))
    with open(s.worker_conf) as f:
        text = f.read().replace("dbname=guichet ", "dbname=%s " % pre)
    assert "dbname=%s " % pre in text
    confs = {}
    for name, mdir in (("older", str(older)),
                       ("now", os.path.join(ROOT, "sql", "migrations"))):
        confs[name] = str(tmp_path / (name + ".conf"))
        with open(confs[name], "w") as g:
            g.write("\n".join("migrations_dir = " + mdir
                              if line.startswith("migrations_dir") else line
                              for line in text.split("\n")))
    s.ctl_run("-c", confs["older"], "migrate", conf=False)

    c = psycopg2.connect(s.pg_conninfo.replace("dbname=guichet",
                                               "dbname=" + pre))
    c.autocommit = True
    try:
        cur = c.cursor()
        cur.execute("insert into staff_account (login, name, role) values"
                    " ('agent.a', 'Alex Agent', 'agent'),"
                    " ('chef', 'Camille Chef', 'admin')")
        cur.execute("insert into family (id, resident, direct_debit,"
                    " archived_at, archived_by) values"
                    " ('f-gone', true, false, now(), 'chef'),"
                    " ('f-dup', true, false, now(), 'chef'),"
                    " ('f-kept', true, false, null, null)")
        rows = [("family:f-gone", "qf.request", "qf_change:1",
                 {"document_id": "3", "comment": "Séparation en mars"},
                 "192.0.2.1"),
                ("agent.a", "qf_change.decision", "qf_change:1",
                 {"decision": "refusee", "reason": "Avis de Mme Gone",
                  "family_id": "f-gone"}, "192.0.2.9"),
                ("chef", "family.archive", "family:f-gone",
                 {"documents_erased": "0"}, "192.0.2.8"),
                ("family:f-dup", "contact.update", "family:f-dup",
                 {"phone_mobile": "06 10 20 30 40"}, "192.0.2.2"),
                ("chef", "family.merge", "family:f-kept", {"from": "f-dup"},
                 "192.0.2.8"),
                ("family:f-kept", "contact.update", "family:f-kept",
                 {"phone_mobile": "06 50 60 70 80"}, "192.0.2.3")]
        for r in rows:
            cur.execute("insert into audit_log (actor, action, target,"
                        " detail, ip) values (%s, %s, %s, %s, %s)",
                        r[:3] + (json.dumps(r[3]), r[4]))

        s.ctl_run("-c", confs["now"], "migrate", conf=False)

        cur.execute("select actor, action, target, detail, ip"
                    " from audit_log order by id")
        got = cur.fetchall()
        assert got[0] == ("family:f-gone", "qf.request", "qf_change:1",
                          {"document_id": "3", "comment": MARKER}, None)
        assert got[1] == ("agent.a", "qf_change.decision", "qf_change:1",
                          {"decision": "refusee", "reason": MARKER,
                           "family_id": "f-gone"}, "192.0.2.9")
        assert [tuple(r) for r in got[2:]] == \
            [r[:3] + (r[3], r[4]) for r in rows[2:]]
        # a second migrate changes nothing
        assert s.ctl_run("-c", confs["now"], "migrate",
                         conf=False).strip() == "0 migrations applied"
        cur.execute("select actor, action, target, detail, ip"
                    " from audit_log order by id")
        assert cur.fetchall() == got
    finally:
        c.close()
        root.cursor().execute("drop database if exists " + pre)
        root.close()
