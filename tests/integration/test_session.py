"""test_session.py -- sessions that really end and accounts that cannot be
guessed at: logout revokes the token everywhere, repeated wrong passwords
lock the account for a while (per account, whatever the address).

Demo town, its own families: bernard (lockout) and nguyen (logout).
"""

import time


def login(s, who, password="secret-demo"):
    return s.http("POST", "/api/session",
                  json={"login": who, "password": password})


def test_logout_revokes_the_token_in_every_worker(stack):
    r = login(stack, "nguyen")
    assert r.status == 200, r
    tok = r.json()["token"]
    assert stack.http("GET", "/api/me", token=tok).status == 200

    r = stack.http("DELETE", "/api/session", token=tok)
    assert r.status == 204, r
    assert any("Max-Age=0" in c for c in r.header_all("Set-Cookie"))

    # every nginx worker refuses it within guichet_catalogue_refresh (1 s)
    time.sleep(1.5)
    for _ in range(8):           # fresh connections: several workers
        r = stack.http("GET", "/api/me", token=tok)
        assert r.status == 401, r
        assert r.json()["error"]["code"] == "unauthenticated"

    # a new login works and is a different token
    r = login(stack, "nguyen")
    assert r.status == 200 and r.json()["token"] != tok
    assert stack.http("GET", "/api/me",
                      token=r.json()["token"]).status == 200


def test_wrong_passwords_lock_the_account_not_the_others(stack):
    for _ in range(5):
        r = login(stack, "bernard", "not-the-password")
        assert r.status == 401, r
    time.sleep(0.2)              # the failures are counted after answering

    # locked now, even with the right password, with a real Retry-After
    r = login(stack, "bernard")
    assert r.status == 429, r
    assert r.json()["error"]["code"] == "rate_limited"
    assert int(r.headers["retry-after"]) > 60

    # unknown logins are counted too, and other accounts are untouched
    assert login(stack, "personne", "x").status == 401
    assert login(stack, "martin").status == 200
    assert stack.redis.ttl("gch:loginfail:bernard") > 60
