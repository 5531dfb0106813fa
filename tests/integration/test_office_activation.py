"""test_office_activation.py -- « Créer mon espace » (issue 25,
office/activation.c, ctl/invite.c): the town's first-credentials mailing
through the outbox at a bounded rate, a family without an account that
creates it with its dossier number and code (CGU accepted, login,
password), the activation link (single use), the login, attempts
throttled like a login, a reload of the town file that keeps the
account, and a new version of the CGU that asks again.
"""

import json
import re

import pytest

from office_town import audit, error_code, outbox, town


def act_town():
    t = town()
    for fid, name in (("f3", "Léon"), ("f4", "Maé")):
        t["families"].append({"id": fid, "qf": 500, "children": [
            {"id": fid + "-a", "first_name": name,
             "birth_date": "2018-02-02"}]})
    return t


@pytest.fixture(scope="module")
def s(make_stack):
    st = make_stack(act_town(), name="office-activation")
    for fid in ("f2", "f3", "f4"):
        st.ctl_run("set-email", fid, "%s@example.org" % fid)
    return st


def create(s, **over):
    body = {"dossier": "f2", "code": "", "email": "zoe.parent@example.org",
            "login": "zoe.f2", "password": "un-mot-de-passe-long",
            "cgu_version": 1}
    body.update(over)
    return s.http("POST", "/api/account/create", json=body)


def code_of(s, fid):
    [(body,)] = s.sql("select body from outbox where kind = 'invitation'"
                      " and family_id = %s", (fid,))
    return re.search(r"code d'activation : (\S+)", body).group(1)


def test_the_mailing_goes_through_the_outbox_at_a_bounded_rate(s):
    out = s.ctl_run("invite", "--rate", "2")
    # f1 has an account: f2, f3, f4 are invited, one every 30 s
    assert out.startswith("3 invitations queued (2 per minute"), out
    rows = s.sql("select family_id, extract(epoch from next_attempt_at -"
                 " min(next_attempt_at) over ())::int, subject, body"
                 " from outbox where kind = 'invitation' order by 2")
    assert [r[:2] for r in rows] == [("f2", 0), ("f3", 30), ("f4", 60)]
    body = rows[0][3]
    assert "Votre numéro de dossier : f2" in body
    assert "Office vous ouvre son Espace Famille" in body
    assert "/#/creer-mon-espace?dossier=f2" in body
    assert re.search(r"code d'activation : [A-Z2-9]{5}-[A-Z2-9]{5} ", body)
    # only the code's hash is kept
    [(h,)] = s.sql("select code_hash from family_code where family_id ="
                   " 'f2'")
    assert code_of(s, "f2").replace("-", "") not in h
    # again: nobody has a new code while theirs is open
    assert s.ctl_run("invite").startswith("0 invitations queued")
    r = s.http("GET", "/api/account/cgu")
    assert r.status == 200 and r.json()["version"] == 1, r


def test_creating_the_account(s):
    code = code_of(s, "f2")
    n = s.sql("select count(*) from account_activation")[0][0]
    assert error_code(create(s, code="AAAAA-BBBBB"), 400) == \
        "activation_code_invalid"
    assert error_code(create(s, dossier="f-inconnu", code=code), 400) == \
        "activation_code_invalid"
    assert error_code(create(s, code=code, cgu_version=2), 400) == \
        "invalid_field"
    assert error_code(create(s, code=code, password="court"), 400) == \
        "invalid_field"
    assert error_code(create(s, code=code, login="a b"), 400) == \
        "invalid_field"
    assert error_code(create(s, code=code, login="dupont"), 409) == \
        "login_taken"
    assert s.sql("select count(*) from account_activation")[0][0] == n

    # the code as people type it: lower case, without the dash
    r = create(s, code=code.replace("-", " ").lower())
    assert r.status == 202, r
    [(ref, body)] = [(m[1], m[3]) for m in outbox(s, "activation")]
    assert "zoe.f2" in body
    token = re.search(r"/#/activer\?jeton=(\S+)", body).group(1)
    assert s.sql("select address from family_email where family_id ="
                 " 'f2'") == [("zoe.parent@example.org",)]
    assert audit(s, "account.create")[-1][:2] == ("family:f2", "family:f2")
    # not yet an account
    assert s.sql("select login from family where id = 'f2'") == [(None,)]
    assert s.http("POST", "/api/session",
                  json={"login": "zoe.f2",
                        "password": "un-mot-de-passe-long"}).status == 401

    assert error_code(s.http("POST", "/api/account/activate",
                             json={"token": "x" + token}), 400) == \
        "activation_token_invalid"
    r = s.http("POST", "/api/account/activate", json={"token": token})
    assert r.status == 200 and r.json() == {"login": "zoe.f2"}, r
    # single use; the code too
    assert error_code(s.http("POST", "/api/account/activate",
                             json={"token": token}), 400) == \
        "activation_token_invalid"
    assert error_code(create(s, code=code, login="zoe.bis"), 400) == \
        "activation_code_invalid"

    r = s.http("POST", "/api/session",
               json={"login": "zoe.f2", "password": "un-mot-de-passe-long"})
    assert r.status == 200, r
    tok = r.json()["token"]
    a = s.http("GET", "/api/account", token=tok).json()
    assert (a["family_id"], a["login"], a["cgu_version"], a["cgu_ok"]) == \
        ("f2", "zoe.f2", 1, True)
    assert a["activated_at"] is not None
    assert audit(s, "account.activate")[-1][:2] == ("family:f2", "family:f2")

    # a reload of the town file (no login for f2) keeps the account
    with open(s.town_file, "w") as f:
        json.dump(act_town(), f, ensure_ascii=False)
    s.ctl_run("load-town", s.town_file)
    assert s.sql("select login from family where id = 'f2'") == \
        [("zoe.f2",)]
    assert s.http("POST", "/api/session",
                  json={"login": "zoe.f2",
                        "password": "un-mot-de-passe-long"}).status == 200

    # a new version of the terms of use asks again
    s.sql("insert into cgu_version (version, title) values (2, 'CGU 2')")
    a = s.http("GET", "/api/account", token=tok).json()
    assert (a["cgu_current"], a["cgu_ok"]) == (2, False)
    assert error_code(s.http("POST", "/api/account/cgu", token=tok,
                             json={"version": 1}), 400) == "invalid_field"
    r = s.http("POST", "/api/account/cgu", token=tok, json={"version": 2})
    assert r.status == 200 and r.json()["cgu_ok"] is True, r
    assert audit(s, "account.cgu")[-1][0] == "family:f2"


def test_a_login_taken_before_the_link_is_opened(s):
    cgu = s.http("GET", "/api/account/cgu").json()["version"]
    r = create(s, dossier="f4", code=code_of(s, "f4"), login="mae.f4",
               email="mae@example.org", cgu_version=cgu)
    assert r.status == 202, r
    body = [m[3] for m in outbox(s, "activation") if "mae.f4" in m[3]][0]
    token = re.search(r"/#/activer\?jeton=(\S+)", body).group(1)
    # meanwhile a co-responsable of f1 chose it
    s.sql("insert into co_responsable (family_id, first_name, last_name,"
          " email, invite_hash, invite_expires_at, login,"
          " password_hash, activated_at)"
          " values ('f1', 'Mae', 'Autre', 'x@example.org', 'h-mae',"
          " now(), 'mae.f4', 'x', now())")
    assert error_code(s.http("POST", "/api/account/activate",
                             json={"token": token}), 409) == "login_taken"
    assert s.sql("select login from family where id = 'f4'") == [(None,)]


def test_guessing_a_code_is_throttled_like_a_login(s):
    cgu = s.http("GET", "/api/account/cgu").json()["version"]
    got = [create(s, dossier="f3", login="leon.f3", cgu_version=cgu,
                  code="ZZZZZ-ZZZZ%d" % i) for i in range(7)]
    assert [error_code(r, 400) for r in got[:4]] == \
        ["activation_code_invalid"] * 4
    assert 429 in [r.status for r in got[4:]], got
    # the right code too, while the pause lasts
    r = create(s, dossier="f3", login="leon.f3", cgu_version=cgu,
               code=code_of(s, "f3"))
    assert error_code(r, 429) == "rate_limited"
    assert "retry-after" in r.headers
