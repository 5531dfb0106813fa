"""test_office_request.py -- a new family asks for a file online (issue
25, office/request.c): the form (parents, contact, address, children,
login, password, CGU), refused whole when a field is wrong; the e-mail
confirmation link (single use); the pending family logs in, sees its
state and uploads documents, but neither asks an enrolment nor books (the
module does not know it); the agent sees the possible duplicates, then
validates (the family enters the catalogue and books) or refuses with a
reason, e-mailed; attempts throttled like a login; every step audited.
"""

import re
import time

import pytest

from office_town import (agent, audit, error_code, module_sees,
                         outbox, published, staffed_stack, town,
                         upload_pdf)


@pytest.fixture(scope="module")
def s(make_stack):
    return staffed_stack(make_stack, town(), "office-request",
                         roles=("agent",))


FORM = {"parent1_first_name": "Awa", "parent1_last_name": "Diallo",
        "parent2_first_name": "Moussa", "parent2_last_name": "Diallo",
        "email": "awa.diallo@example.org", "phone": "06 12 34 56 78",
        "address_line1": "3 rue des Lilas", "address_line2": None,
        "postcode": "01500", "city": "Ambérieu-en-Bugey",
        "children": [{"first_name": "Alice", "birth_date": "2018-04-04"},
                     {"first_name": "Fatou", "birth_date": "2021-01-09"}],
        "login": "awa.diallo", "password": "un-mot-de-passe-long",
        "cgu_version": 1}


def ask(s, **over):
    body = dict(FORM)
    body.update(over)
    return s.http("POST", "/api/account/request", json=body)


def confirm_link(s, login):
    [body] = [m[3] for m in outbox(s, "family_request") if login in m[3]]
    return re.search(r"/#/confirmer-demande\?jeton=(\S+)", body).group(1)


def asked_online(s, login, first, last, child, birth):
    """A one-parent family with one child asked online and confirmed by
    its e-mail's link: its pending file's id."""
    r = ask(s, login=login, email=login + "@example.org",
            parent1_first_name=first, parent1_last_name=last,
            parent2_first_name=None, parent2_last_name=None,
            children=[{"first_name": child, "birth_date": birth}])
    assert r.status == 202, r
    r = s.http("POST", "/api/account/request/confirm",
               json={"token": confirm_link(s, login)})
    assert r.status == 200, r
    [(fid,)] = s.sql("select family_id from family_request"
                     " where login = %s", (login,))
    return fid


def requests_listed(s, staff, fid):
    """The agents' list of online requests (status=tous) as staff sees
    it, those of the file fid."""
    r = s.http("GET", "/api/staff/family-requests?status=tous", token=staff)
    assert r.status == 200, r
    return [x for x in r.json()["family_requests"] if x["family_id"] == fid]


def login(s, who, password="un-mot-de-passe-long"):
    r = s.http("POST", "/api/session",
               json={"login": who, "password": password})
    assert r.status == 200, r
    return r.json()["token"]


def module_refuses(s, tok):
    """GET /api/me until the module answers other than 503: a token
    issued less than GCH_CATALOGUE_SLACK_MS (5 s) before the catalogue the
    module holds was confirmed is 503 catalogue_behind first."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        r = s.http("GET", "/api/me", token=tok)
        if r.status != 503:
            return r
        assert r.json()["error"]["code"] == "catalogue_behind", r
        time.sleep(0.2)
    return r


def counts(s):
    return s.sql("select (select count(*) from family),"
                 " (select count(*) from child),"
                 " (select count(*) from family_request),"
                 " (select count(*) from outbox)")[0]


def test_a_wrong_form_writes_nothing(s):
    before = counts(s)
    for over, words in (
            ({"children": []}, "$.children"),
            ({"children": [{"first_name": "X"}]},
             "$.children[0].birth_date"),
            ({"children": [{"first_name": "X",
                            "birth_date": "2099-01-01"}]}, "à venir"),
            ({"children": [{"first_name": " ",
                            "birth_date": "2019-01-01"}]}, "prénom vide"),
            ({"parent2_last_name": None}, "second responsable"),
            ({"parent1_last_name": "  "}, "premier responsable"),
            ({"email": "pas-une-adresse"}, "email"),
            ({"phone": "demain"}, "phone"),
            ({"postcode": "01<500"}, "postcode"),
            ({"login": "a b"}, "login"),
            ({"password": "court"}, "10 caractères"),
            ({"cgu_version": 2}, "conditions"),
            ({"couleur": "bleu"}, "couleur")):
        r = ask(s, **over)
        assert error_code(r, 400) == "invalid_field", (over, r)
        assert words in r.json()["error"]["message"], (over, r)
    assert error_code(ask(s, login="dupont"), 409) == "login_taken"
    assert counts(s) == before


def test_a_new_family_asks_waits_and_is_validated(s, agent):
    r = ask(s)
    assert r.status == 202 and r.json() == {"status": "sent"}, r
    [(fid, st)] = s.sql("select family_id, status from family_request"
                        " where login = 'awa.diallo'")
    assert st == "a_confirmer" and fid.startswith("fam-")
    assert s.sql("select login, resident from family where id = %s",
                 (fid,)) == [(None, False)]
    assert s.sql("select id, first_name, birth_date::text from child"
                 " where family_id = %s order by id", (fid,)) == \
        [(fid + "-1", "Alice", "2018-04-04"),
         (fid + "-2", "Fatou", "2021-01-09")]
    assert s.sql("select phone_mobile, address_line1, postcode, city"
                 " from family_contact where family_id = %s", (fid,)) == \
        [("06 12 34 56 78", "3 rue des Lilas", "01500",
          "Ambérieu-en-Bugey")]
    assert audit(s, "family_request.create")[-1][:2] == \
        ("family:" + fid, "family:" + fid)
    # the login is promised to the request; not yet usable
    assert error_code(ask(s, email="autre@example.org"), 409) == \
        "login_taken"
    assert s.http("POST", "/api/session",
                  json={"login": "awa.diallo",
                        "password": "un-mot-de-passe-long"}).status == 401

    # the agent sees it only once confirmed
    r = s.http("GET", "/api/staff/family-requests", token=agent)
    assert fid not in [x["family_id"] for x in r.json()["family_requests"]]
    r = s.http("POST", "/api/staff/family-requests/%s/decision" % fid,
               token=agent, json={"decision": "validee", "resident": True})
    assert error_code(r, 409) == "request_unconfirmed"

    token = confirm_link(s, "awa.diallo")
    assert error_code(s.http("POST", "/api/account/request/confirm",
                             json={"token": "x" + token}), 400) == \
        "activation_token_invalid"
    r = s.http("POST", "/api/account/request/confirm",
               json={"token": token})
    assert r.status == 200 and r.json() == {"login": "awa.diallo"}, r
    assert error_code(s.http("POST", "/api/account/request/confirm",
                             json={"token": token}), 400) == \
        "activation_token_invalid"
    assert audit(s, "family_request.confirm")[-1][0] == "family:" + fid
    # the link's body is wiped once the worker claims the e-mail
    s.wait_worker_drained()

    # pending: it logs in, sees its state, uploads, nothing more
    tok = login(s, "awa.diallo")
    r = s.http("GET", "/api/account/pending", token=tok)
    assert r.status == 200, r
    p = r.json()
    assert (p["family_id"], p["status"], p["email"]) == \
        (fid, "en_attente", "awa.diallo@example.org")
    assert [x["last_name"] for x in p["parents"]] == ["Diallo", "Diallo"]
    assert [c["first_name"] for c in p["children"]] == ["Alice", "Fatou"]
    assert error_code(module_refuses(s, tok), 403) == "forbidden"
    # the booking may reach the other nginx worker, behind in its turn
    deadline = time.monotonic() + 30
    while True:
        r = s.http("POST", "/api/bookings", token=tok,
                   json={"items": [{"child_id": fid + "-1",
                                    "session_id": "centre-20270705"}]},
                   headers={"Idempotency-Key": "nf-1"})
        if r.status != 503 or time.monotonic() > deadline:
            break
        assert r.json()["error"]["code"] == "catalogue_behind", r
        time.sleep(0.2)
    assert r.status == 403, r
    upload_pdf(s, tok, "vaccinations", fid + "-1")
    r = s.http("POST", "/api/enrolments", token=tok,
               json={"child_id": fid + "-1", "activity_id": "centre",
                     "from": "2027-07-01", "to": "2027-07-31"})
    assert error_code(r, 409) == "family_pending"
    r = s.http("POST", "/api/staff/families/%s/enrolments" % fid,
               token=agent, json={"child_id": fid + "-1",
                                  "activity_id": "centre",
                                  "from": "2027-01-01",
                                  "to": "2027-12-31"})
    assert error_code(r, 409) == "family_pending"
    assert s.sql("select count(*) from enrolment e join child c"
                 " on c.id = e.child_id where c.family_id = %s",
                 (fid,)) == [(0,)]
    # a family the town made has no such request
    f1 = login(s, "dupont", "secret-f1")
    assert error_code(s.http("GET", "/api/account/pending", token=f1),
                      404) == "not_found"

    # the agent: Alice born 2018-04-04 is maybe f1's Alice
    r = s.http("GET", "/api/staff/family-requests", token=agent)
    assert r.status == 200, r
    [x] = [x for x in r.json()["family_requests"] if x["family_id"] == fid]
    assert x["status"] == "en_attente" and x["phone"] == "06 12 34 56 78"
    assert x["address"]["city"] == "Ambérieu-en-Bugey"
    assert [(d["family_id"], d["child_id"]) for d in x["duplicates"]] == \
        [("f1", "f1-a")]
    assert error_code(s.http("GET", "/api/staff/family-requests?status=x",
                             token=agent), 400) == "invalid_field"

    r = s.http("POST", "/api/staff/family-requests/%s/decision" % fid,
               token=agent, json={"decision": "validee"})
    assert error_code(r, 400) == "invalid_field"
    r = s.http("POST", "/api/staff/family-requests/nope/decision",
               token=agent, json={"decision": "validee", "resident": True})
    assert error_code(r, 404) == "not_found"
    r = s.http("POST", "/api/staff/family-requests/%s/decision" % fid,
               token=agent, json={"decision": "validee", "resident": True})
    assert r.status == 200 and r.json()["status"] == "validee", r
    r = s.http("POST", "/api/staff/family-requests/%s/decision" % fid,
               token=agent, json={"decision": "refusee", "reason": "x"})
    assert error_code(r, 409) == "already_decided"
    a = audit(s, "family_request.decision")[-1]
    assert a[:2] == ("agent.a", "family:" + fid)
    [(subject, body)] = [m[2:] for m in outbox(s, "family_request_validee")
                         if m[0] == fid]
    assert subject == "Dossier famille validé" and fid in body

    # the booking path knows it now: it books and asks enrolments
    published(s)
    me = module_sees(s, tok, lambda me: True)
    assert [c["first_name"] for c in me["children"]] == ["Alice", "Fatou"]
    r = s.http("POST", "/api/enrolments", token=tok,
               json={"child_id": fid + "-1", "activity_id": "centre",
                     "from": "2027-07-01", "to": "2027-07-31"})
    assert r.status == 201, r


def test_a_refused_file_stays_out_with_its_reason(s, agent):
    r = ask(s, login="lea.roux", email="lea.roux@example.org",
            parent1_first_name="Léa", parent1_last_name="Roux",
            parent2_first_name=None, parent2_last_name=None,
            children=[{"first_name": "Tom", "birth_date": "2017-02-02"}])
    assert r.status == 202, r
    r = s.http("POST", "/api/account/request/confirm",
               json={"token": confirm_link(s, "lea.roux")})
    assert r.status == 200, r
    [(fid,)] = s.sql("select family_id from family_request"
                     " where login = 'lea.roux'")
    r = s.http("POST", "/api/staff/family-requests/%s/decision" % fid,
               token=agent, json={"decision": "refusee", "reason": "  "})
    assert error_code(r, 400) == "invalid_field"
    r = s.http("POST", "/api/staff/family-requests/%s/decision" % fid,
               token=agent, json={"decision": "refusee",
                                  "reason": "Vous n'habitez pas la commune"})
    assert r.status == 200 and r.json()["status"] == "refusee", r
    [body] = [m[3] for m in outbox(s, "family_request_refusee")
              if m[0] == fid]
    assert "Motif : Vous n'habitez pas la commune" in body
    tok = login(s, "lea.roux")
    p = s.http("GET", "/api/account/pending", token=tok).json()
    assert (p["status"], p["reason"]) == \
        ("refusee", "Vous n'habitez pas la commune")
    assert p["parents"] == [{"first_name": "Léa", "last_name": "Roux"}]
    published(s)
    assert error_code(module_refuses(s, tok), 403) == "forbidden"
    r = s.http("POST", "/api/enrolments", token=tok,
               json={"child_id": fid + "-1", "activity_id": "centre",
                     "from": "2027-07-01", "to": "2027-07-31"})
    assert error_code(r, 409) == "family_pending"


def test_asking_again_and_again_is_throttled_like_a_login(s):
    got = [ask(s, email="robot@example.org", login="dupont")
           for _ in range(7)]
    assert [error_code(r, 409) for r in got[:4]] == ["login_taken"] * 4
    assert 429 in [r.status for r in got[4:]], got
    r = ask(s, email="robot@example.org", login="robot.1")
    assert error_code(r, 429) == "rate_limited"
    assert "retry-after" in r.headers
    assert s.sql("select count(*) from family_request"
                 " where email = 'robot@example.org'") == [(0,)]


def test_a_letters_code_and_the_outbox_from_guichetctl(s):
    """guichetctl invite --letter: a code for one family, printed for a
    letter, that « Créer mon espace » takes; guichetctl outbox prints the
    e-mails not sent (the README's walk-through uses both)."""
    from stack import StackError
    with pytest.raises(StackError, match="already has an account"):
        s.ctl_run("invite", "--letter", "f1")
    with pytest.raises(StackError, match="no such family"):
        s.ctl_run("invite", "--letter", "f-nobody")
    # a file asked online, not confirmed: neither the mailing nor a
    # letter gives it an activation code (it has its own link)
    r = ask(s, login="noe.martin", email="noe@example.org")
    assert r.status == 202, r
    [(pending,)] = s.sql("select family_id from family_request"
                         " where login = 'noe.martin'")
    s.ctl_run("set-email", "f2", "zoe@example.org")
    assert s.ctl_run("invite").startswith("1 invitations queued")
    assert [m[0] for m in outbox(s, "invitation")] == ["f2"]
    with pytest.raises(StackError, match="asked its file online"):
        s.ctl_run("invite", "--letter", pending)
    first = s.ctl_run("invite", "--letter", "f2")
    out = s.ctl_run("invite", "--letter", "f2")
    m = re.match(r"dossier f2  code d'activation ([A-Z2-9]{5}-[A-Z2-9]{5})"
                 r"  \(valable jusqu'au \d\d/\d\d/\d{4}\)\n$", out)
    assert m, out
    old = re.search(r"activation (\S+)", first).group(1)
    body = {"dossier": "f2", "email": "zoe@example.org", "login": "zoe.f2",
            "password": "un-mot-de-passe-long", "cgu_version": 1}
    # the second letter's code replaced the first
    r = s.http("POST", "/api/account/create", json=dict(body, code=old))
    assert error_code(r, 400) == "activation_code_invalid"
    r = s.http("POST", "/api/account/create",
               json=dict(body, code=m.group(1)))
    assert r.status == 202, r
    out = s.ctl_run("outbox", "--family", "f2", "--kind", "activation")
    assert "--- #" in out and "f2 activation to zoe@example.org" in out
    assert re.search(r"/#/activer\?jeton=\S+", out)
    assert out.endswith("1 e-mails not sent\n"), out
