"""test_office_publication.py -- the town's documents and news (issue 25,
office/publication.c): an agent publishes a PDF (rules, price lists,
menus) and news with their dates; families list and download the
documents and read the news shown today; withdrawn ones disappear; each
change is audited; a file that is not a PDF, a bad category or bad dates
are refused with nothing written.
"""

import datetime as dt
import os
from urllib.parse import quote
from zoneinfo import ZoneInfo

import pytest

from office_town import (PDF, PNG, audit, error_code, staff_add, staff_login,
                         town)

PARIS = ZoneInfo("Europe/Paris")


@pytest.fixture(scope="module")
def s(make_stack):
    st = make_stack(town(), name="office-publication")
    staff_add(st, "agent.p", "agent", "Paul Agent", "agent-pass-p")
    return st


@pytest.fixture(scope="module")
def tok(s):
    return s.tokens()


@pytest.fixture(scope="module")
def agent(s):
    return staff_login(s, "agent.p", "agent-pass-p")


def upload(s, agent, body, title="Règlement intérieur 2026-2027",
           category="reglement", ctype="application/pdf",
           name="reglement.pdf"):
    q = "title=%s&category=%s&name=%s" % (quote(title), category, name)
    return s.http("POST", "/api/staff/town-documents?" + q, token=agent,
                  body=body, headers={"Content-Type": ctype})


def today():
    return dt.datetime.now(PARIS).date()


def test_the_town_publishes_a_document_families_download(s, tok, agent):
    big = PDF + b"%" + b"x" * 200000 + b"\n"       # over /api/staff/'s 64k
    r = upload(s, agent, big)
    assert r.status == 201, r
    d = r.json()
    assert d["title"] == "Règlement intérieur 2026-2027"
    assert d["category"] == "reglement" and d["filename"] == "reglement.pdf"
    assert d["size"] == len(big) and d["published_by"] == "agent.p"

    r = s.http("GET", "/api/town/documents", token=tok["f1"])
    assert r.status == 200, r
    assert [x["id"] for x in r.json()["documents"]] == [d["id"]]
    r = s.http("GET", "/api/town/documents/%d" % d["id"], token=tok["f2"])
    assert r.status == 200, r
    assert r.headers["content-type"] == "application/pdf"
    assert r.body == big
    assert r.headers["content-disposition"] == \
        'attachment; filename="reglement.pdf"'

    rows = audit(s, "town_document.publish")
    assert rows[-1][0] == "agent.p"
    assert rows[-1][1] == "town_document:%d" % d["id"]
    assert rows[-1][2]["title"] == "Règlement intérieur 2026-2027"

    # withdrawn: gone for families, file deleted, audited
    stored = s.sql("select stored_name from town_publication where id = %s",
                   (d["id"],))[0][0]
    path = s._path("uploads", stored)
    assert os.path.exists(path)
    r = s.http("DELETE", "/api/staff/town-documents/%d" % d["id"],
               token=agent)
    assert r.status == 204, r
    assert s.http("GET", "/api/town/documents",
                  token=tok["f1"]).json() == {"documents": []}
    assert error_code(s.http("GET", "/api/town/documents/%d" % d["id"],
                             token=tok["f1"]), 404) == "not_found"
    assert error_code(s.http("DELETE", "/api/staff/town-documents/%d"
                             % d["id"], token=agent), 404) == "not_found"
    assert audit(s, "town_document.withdraw")[-1][1] == \
        "town_document:%d" % d["id"]
    assert not os.path.exists(path)


def test_bad_town_documents_write_nothing(s, tok, agent):
    before = s.sql("select count(*) from town_publication")[0][0]
    assert error_code(upload(s, agent, PNG, ctype="image/png"), 415) == \
        "unsupported_media_type"
    assert error_code(upload(s, agent, PNG), 415) == \
        "unsupported_media_type"           # a PNG said to be a PDF
    assert error_code(upload(s, agent, PDF, category="poster"), 400) == \
        "invalid_field"
    assert error_code(upload(s, agent, PDF, title=""), 400) == \
        "invalid_field"
    assert error_code(upload(s, agent, PDF, title="x" * 201), 400) == \
        "invalid_field"
    assert error_code(upload(s, agent, b""), 400) == "empty_file"
    assert s.sql("select count(*) from town_publication")[0][0] == before
    # families cannot publish, nor read the staff's list
    assert upload(s, tok["f1"], PDF).status in (401, 403)
    assert s.http("GET", "/api/staff/town-documents",
                  token=tok["f1"]).status in (401, 403)
    assert error_code(s.http("GET", "/api/town/documents"), 401) == \
        "unauthenticated"


def test_news_shown_between_their_dates(s, tok, agent):
    d = today()
    iso = dt.date.isoformat
    cur = s.http("POST", "/api/staff/news", token=agent,
                 json={"title": "Menus de décembre",
                       "body": "Repas de Noël le jeudi 17.\nBon appétit !",
                       "from": iso(d - dt.timedelta(days=1)),
                       "until": iso(d + dt.timedelta(days=10))})
    assert cur.status == 201, cur
    cur = cur.json()
    assert cur["created_by"] == "agent.p"
    future = s.http("POST", "/api/staff/news", token=agent,
                    json={"title": "Inscriptions de l'été",
                          "body": "Ouverture en mai.",
                          "from": iso(d + dt.timedelta(days=30)),
                          "until": None}).json()
    past = s.http("POST", "/api/staff/news", token=agent,
                  json={"title": "Fermeture de la Toussaint",
                        "body": "Le centre était fermé.",
                        "from": iso(d - dt.timedelta(days=40)),
                        "until": iso(d - dt.timedelta(days=30))}).json()
    open_ended = s.http("POST", "/api/staff/news", token=agent,
                        json={"title": "Nouveau portail",
                              "body": "Bienvenue sur l'Espace Famille.",
                              "from": iso(d)}).json()

    def shown():
        r = s.http("GET", "/api/town/news", token=tok["f1"])
        assert r.status == 200, r
        return [n["title"] for n in r.json()["news"]]

    assert shown() == ["Nouveau portail", "Menus de décembre"]
    r = s.http("GET", "/api/staff/news", token=agent)
    assert {n["id"] for n in r.json()["news"]} >= \
        {cur["id"], future["id"], past["id"], open_ended["id"]}

    # edited, then withdrawn
    r = s.http("PUT", "/api/staff/news/%d" % future["id"], token=agent,
               json={"title": "Inscriptions de l'été", "body": "Dès lundi.",
                     "from": iso(d), "until": None})
    assert r.status == 200 and r.json()["body"] == "Dès lundi.", r
    assert "Inscriptions de l'été" in shown()
    assert s.http("DELETE", "/api/staff/news/%d" % cur["id"],
                  token=agent).status == 204
    assert "Menus de décembre" not in shown()
    assert error_code(s.http("PUT", "/api/staff/news/%d" % cur["id"],
                             token=agent, json={"title": "t", "body": "b",
                                                "from": iso(d)}),
                      404) == "not_found"
    assert [r[1] for r in audit(s, "news.publish")][-4:] == \
        ["news:%d" % n["id"] for n in (cur, future, past, open_ended)]
    assert audit(s, "news.update")[-1][1] == "news:%d" % future["id"]
    assert audit(s, "news.withdraw")[-1][1] == "news:%d" % cur["id"]


def test_bad_news_write_nothing(s, tok, agent):
    before = s.sql("select count(*) from town_news")[0][0]
    d = dt.date.isoformat(today())
    for body in ({"title": "", "body": "b", "from": d},
                 {"title": "t", "body": "", "from": d},
                 {"title": "t" * 201, "body": "b", "from": d},
                 {"title": "t", "body": "b" * 5001, "from": d},
                 {"title": "t", "body": "b", "from": "demain"},
                 {"title": "t", "body": "b", "from": d,
                  "until": "2000-01-01"},
                 {"title": "t", "body": "b"},
                 {"title": "t", "body": "b", "from": d, "extra": 1}):
        assert error_code(s.http("POST", "/api/staff/news", token=agent,
                                 json=body), 400) in ("invalid_field",
                                                      "bad_json"), body
    assert s.sql("select count(*) from town_news")[0][0] == before
    assert s.http("POST", "/api/staff/news", token=tok["f1"],
                  json={"title": "t", "body": "b", "from": d}).status \
        in (401, 403)
