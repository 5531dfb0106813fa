"""make_cases.py -- writes cases.json, the catalogue of bad inputs that
tests/integration/test_bad_inputs.py plays against a real stack.

    python3 tests/integration/bad_inputs/make_cases.py

cases.json is the table (committed; edit this script, not the table).  One
case: name, category, method, path, headers, the body (one of "body": text
sent as UTF-8, "body_hex": raw bytes, "body_gen": {"repeat": [prefix, unit,
count, suffix]}), the expected status and error code (code null: an answer
of nginx itself, not the module's JSON; "nginx" says what it is).  In
path, headers and body, <<...>> are filled in by the test:

    <<TOK:name>>   a token (test_bad_inputs.TOKENS: f1, f2, expired, ...)
    <<KEY>>        a fresh Idempotency-Key      <<KEY:used>> one already used
    <<BID:name>>   a booking id made during setup (f1, f2, f1_cancelled)
    <<ORIGIN>>     http://127.0.0.1:<port>      <<HOST>> 127.0.0.1:<port>
"""

import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
CASES = []

AUTH = {"Authorization": "Bearer <<TOK:f1>>"}
JSONCT = {"Content-Type": "application/json"}


def case(cat, name, method, path, status, code, headers=None, body=None,
         body_hex=None, body_gen=None, note=None):
    c = {"name": name, "category": cat, "method": method, "path": path,
         "headers": headers or {}, "status": status, "code": code}
    if body is not None:
        c["body"] = body
    if body_hex is not None:
        c["body_hex"] = body_hex
    if body_gen is not None:
        c["body_gen"] = body_gen
    if note:
        c["note"] = note
    CASES.append(c)


def booking(cat, name, status, code, body=None, body_hex=None, body_gen=None,
            headers=None, note=None):
    h = dict(AUTH, **JSONCT)
    h["Idempotency-Key"] = "<<KEY>>"
    h.update(headers or {})
    for k in [k for k, v in h.items() if v is None]:
        del h[k]
    case(cat, name, "POST", "/api/bookings", status, code, h, body, body_hex,
         body_gen, note)


ITEM = '{"child_id":"f1-c1","session_id":"a-m2"}'


def items(s):
    return '{"items":[%s]}' % s


# ----- malformed JSON: 400 bad_json --------------------------------------

bad_json = {
    "empty body": "",
    "whitespace only": "   \n\t ",
    "truncated after brace": "{",
    "truncated in key": '{"ite',
    "truncated after colon": '{"items":',
    "truncated in array": '{"items":[',
    "truncated in item": items('{"child_id":"f1-c1"'),
    "truncated in string": '{"items":[{"child_id":"f1-',
    "truncated escape": '{"items":[{"child_id":"\\',
    "truncated unicode escape": '{"items":[{"child_id":"\\u00',
    "missing closing brace": items(ITEM)[:-1],
    "trailing comma in object": '{"items":[%s],}' % ITEM,
    "trailing comma in array": items(ITEM + ","),
    "single quotes": "{'items':[]}",
    "unquoted key": "{items:[%s]}" % ITEM,
    "comment": "/* c */" + items(ITEM),
    "line comment": "// c\n" + items(ITEM),
    "trailing garbage": items(ITEM) + " x",
    "two documents": items(ITEM) + items(ITEM),
    "trailing NUL byte": items(ITEM) + "\u0000",
    "NaN": items('{"child_id":NaN,"session_id":"a-m2"}'),
    "Infinity": items('{"child_id":Infinity,"session_id":"a-m2"}'),
    "hex number": items('{"child_id":0x10,"session_id":"a-m2"}'),
    "leading zero number": items('{"child_id":012,"session_id":"a-m2"}'),
    "plus number": items('{"child_id":+1,"session_id":"a-m2"}'),
    "bare minus": items('{"child_id":-,"session_id":"a-m2"}'),
    "raw newline in string": items('{"child_id":"f1\nc1","session_id":"a-m2"}'),
    "raw tab in string": items('{"child_id":"f1\tc1","session_id":"a-m2"}'),
    "bad escape \\x": items('{"child_id":"\\x41","session_id":"a-m2"}'),
    "bad unicode escape": items('{"child_id":"\\uZZZZ","session_id":"a-m2"}'),
    "escaped NUL in child_id": items('{"child_id":"f1-c1\\u0000","session_id":"a-m2"}'),
    "escaped NUL in key": items('{"child_id\\u0000":"f1-c1","session_id":"a-m2"}'),
    "duplicate key items": '{"items":[%s],"items":[%s]}' % (ITEM, ITEM),
    "duplicate key child_id": items('{"child_id":"f1-c1","child_id":"f1-c2","session_id":"a-m2"}'),
    "duplicate key session_id": items('{"child_id":"f1-c1","session_id":"a-m","session_id":"a-m2"}'),
    "duplicate key via escape": items('{"child_id":"f1-c1","chil\\u0064_id":"f2-c1","session_id":"a-m2"}'),
    "lone high surrogate": items('{"child_id":"\\ud800","session_id":"a-m2"}'),
    "lone low surrogate": items('{"child_id":"\\udc00","session_id":"a-m2"}'),
    "reversed surrogates": items('{"child_id":"\\udc00\\ud800","session_id":"a-m2"}'),
    "nesting 5 deep": '{"items":[{"child_id":[[["x"]]],"session_id":"a-m2"}]}',
    "nesting 100 deep": '{"items":' + "[" * 100 + "]" * 100 + "}",
    "unclosed 64 KiB of brackets": None,   # body_gen below
    "object instead of value": items('{"child_id":"f1-c1","session_id":}'),
    "missing colon": items('{"child_id" "f1-c1","session_id":"a-m2"}'),
    "missing comma": items('{"child_id":"f1-c1" "session_id":"a-m2"}'),
    "true misspelled": items('{"child_id":tru,"session_id":"a-m2"}'),
}
# Valid JSON syntax the strict reader still refuses: docs/errors.md files
# these under bad_json, the engine answers invalid_field naming the field
# (engine/tests/golden agree); both are 400 and write nothing.
STRICT = {"escaped NUL in child_id", "escaped NUL in key",
          "duplicate key items", "duplicate key child_id",
          "duplicate key session_id", "duplicate key via escape",
          "overlong UTF-8 slash", "overlong UTF-8 NUL",
          "overlong 3-byte UTF-8", "UTF-8 encoded surrogate",
          "UTF-8 above U+10FFFF", "lone low surrogate",
          "reversed surrogates"}
# yajl decodes a lone high surrogate escape to "?" (a lone low one to
# bytes the UTF-8 check refuses): the id "?" is no child of the family
# (ids are [A-Za-z0-9_-]), so 403 and nothing written.
SURROGATE = {"lone high surrogate"}
for n, b in bad_json.items():
    if b is None:
        continue
    if n in STRICT:
        booking("hostile JSON", n, 400, "invalid_field", body=b)
    elif n in SURROGATE:
        booking("hostile JSON", n, 403, "forbidden", body=b,
                note="yajl turns a lone surrogate into '?'")
    else:
        booking("malformed JSON", n, 400, "bad_json", body=b)
booking("malformed JSON", "10 000 open brackets", 400, "bad_json",
        body_gen={"repeat": ['{"items":', "[", 10000, ""]})
booking("malformed JSON", "nesting 10 000 deep, closed", 400, "bad_json",
        body_gen={"repeat": ['{"items":', "[", 5000, "]" * 5000 + "}"]})

raw = {
    "invalid UTF-8 byte 0xff": b'{"items":[{"child_id":"\xff","session_id":"a-m2"}]}',
    "invalid UTF-8 continuation alone": b'{"items":[{"child_id":"\x80","session_id":"a-m2"}]}',
    "truncated UTF-8 sequence": b'{"items":[{"child_id":"\xc3","session_id":"a-m2"}]}',
    "overlong UTF-8 slash": b'{"items":[{"child_id":"\xc0\xaf","session_id":"a-m2"}]}',
    "overlong UTF-8 NUL": b'{"items":[{"child_id":"f1-c1\xc0\x80","session_id":"a-m2"}]}',
    "overlong 3-byte UTF-8": b'{"items":[{"child_id":"\xe0\x80\xaf","session_id":"a-m2"}]}',
    "UTF-8 encoded surrogate": b'{"items":[{"child_id":"\xed\xa0\x80","session_id":"a-m2"}]}',
    "UTF-8 above U+10FFFF": b'{"items":[{"child_id":"\xf4\x90\x80\x80","session_id":"a-m2"}]}',
    "invalid UTF-8 in key": b'{"items":[{"child_id\xfe":"f1-c1","session_id":"a-m2"}]}',
    "UTF-16 body": '{"items":[]}'.encode("utf-16"),
    "Latin-1 body": '{"items":[{"child_id":"é","session_id":"a-m2"}]}'.encode("latin-1"),
    "UTF-8 BOM": b"\xef\xbb\xbf" + items(ITEM).encode(),
    "raw NUL inside string": b'{"items":[{"child_id":"f1\x00c1","session_id":"a-m2"}]}',
    "raw control char 0x01": b'{"items":[{"child_id":"f1\x01c1","session_id":"a-m2"}]}',
}
for n, b in raw.items():
    if n in STRICT:
        booking("hostile JSON", n, 400, "invalid_field", body_hex=b.hex())
    else:
        booking("malformed JSON", n, 400, "bad_json", body_hex=b.hex())

# ----- valid JSON, wrong shape: 400 invalid_field ----------------------------

invalid = {
    "top-level array": "[%s]" % ITEM,
    "top-level string": '"items"',
    "top-level number": "42",
    "top-level null": "null",
    "top-level true": "true",
    "empty object": "{}",
    "items null": '{"items":null}',
    "items object": '{"items":%s}' % ITEM,
    "items string": '{"items":"f1-c1"}',
    "items number": '{"items":1}',
    "items empty": '{"items":[]}',
    "item is a string": items('"f1-c1"'),
    "item is null": items("null"),
    "item is an array": items('["f1-c1","a-m2"]'),
    "item is empty object": items("{}"),
    "item without session_id": items('{"child_id":"f1-c1"}'),
    "item without child_id": items('{"session_id":"a-m2"}'),
    "child_id number": items('{"child_id":1,"session_id":"a-m2"}'),
    "child_id huge number": items('{"child_id":1e999999,"session_id":"a-m2"}'),
    "child_id 400-digit integer": items('{"child_id":%s,"session_id":"a-m2"}' % ("9" * 400)),
    "child_id negative float": items('{"child_id":-1.5e-300,"session_id":"a-m2"}'),
    "child_id true": items('{"child_id":true,"session_id":"a-m2"}'),
    "child_id null": items('{"child_id":null,"session_id":"a-m2"}'),
    "child_id object": items('{"child_id":{},"session_id":"a-m2"}'),
    "child_id array": items('{"child_id":["f1-c1"],"session_id":"a-m2"}'),
    "session_id number": items('{"child_id":"f1-c1","session_id":7}'),
    "session_id null": items('{"child_id":"f1-c1","session_id":null}'),
    "child_id empty string": items('{"child_id":"","session_id":"a-m2"}'),
    "session_id empty string": items('{"child_id":"f1-c1","session_id":""}'),
    "child_id of 65 bytes": items('{"child_id":"%s","session_id":"a-m2"}' % ("c" * 65)),
    "session_id of 65 bytes": items('{"child_id":"f1-c1","session_id":"%s"}' % ("s" * 65)),
    "child_id of 65 bytes, UTF-8": items('{"child_id":"%s","session_id":"a-m2"}' % ("é" * 32 + "c")),
    "child_id of 4000 bytes": items('{"child_id":"%s","session_id":"a-m2"}' % ("c" * 4000)),
    "unknown top-level field": '{"items":[%s],"note":"x"}' % ITEM,
    "unknown field family_id": '{"items":[%s],"family_id":"f2"}' % ITEM,
    "unknown item field": items('{"child_id":"f1-c1","session_id":"a-m2","price_cents":0}'),
    "unknown item field, empty name": items('{"child_id":"f1-c1","session_id":"a-m2","":1}'),
    "__proto__ field": '{"items":[%s],"__proto__":{}}' % ITEM,
    "401 items": None,
    "1000 items": None,
    "401 empty items": None,
}
for n, b in invalid.items():
    if b is None:
        continue
    booking("wrong types and shapes", n, 400, "invalid_field", body=b)
# one more than guichet_max_items (400 in the shipped configurations)
booking("wrong types and shapes", "401 items", 400, "invalid_field",
        body_gen={"repeat": ['{"items":[', ITEM + ",", 400, ITEM + "]}"]})
booking("wrong types and shapes", "1000 items", 400, "invalid_field",
        body_gen={"repeat": ['{"items":[', ITEM + ",", 999, ITEM + "]}"]})
booking("wrong types and shapes", "401 empty items", 400, "invalid_field",
        body_gen={"repeat": ['{"items":[', "{},", 400, "{}]}"]})

# ----- oversized bodies: 413 body_too_large (client_max_body_size 64k) -------

booking("oversized body", "65 537 bytes of JSON", 413, "body_too_large",
        body_gen={"repeat": ['{"items":[', ITEM + ",", 1600, ITEM + "]}"]})
booking("oversized body", "1 MiB of spaces", 413, "body_too_large",
        body_gen={"repeat": ["", " ", 1 << 20, items(ITEM)]})
booking("oversized body", "1 MiB string", 413, "body_too_large",
        body_gen={"repeat": ['{"items":[{"child_id":"', "x", 1 << 20,
                             '","session_id":"a-m2"}]}']})
case("oversized body", "login body of 100 KiB", "POST", "/api/session", 413,
     "body_too_large", JSONCT,
     body_gen={"repeat": ['{"login":"', "x", 100000, '","password":"p"}']})
case("oversized body", "absence body of 100 KiB", "POST", "/api/absences",
     413, "body_too_large", dict(AUTH, **JSONCT),
     body_gen={"repeat": ['{"booking_id":"<<BID:f1>>","reason":"', "m",
                          100000, '"}']})
case("oversized body", "staff body of 100 KiB", "POST",
     "/api/staff/bookings", 413, "body_too_large",
     {"Authorization": "Bearer <<TOK:staff>>", "Content-Type":
      "application/json", "Idempotency-Key": "<<KEY>>"},
     body_gen={"repeat": ['{"family_id":"f1","items":[', ITEM + ",", 2500,
                          ITEM + "]}"]})

# ----- methods: 405 method_not_allowed -----------------------------------------

for m, p in [("GET", "/api/session"), ("PUT", "/api/session"),
             ("PATCH", "/api/bookings"), ("PUT", "/api/bookings"),
             ("DELETE", "/api/bookings"), ("POST", "/api/me"),
             ("DELETE", "/api/me"), ("POST", "/api/activities"),
             ("DELETE", "/api/activities"),
             ("POST", "/api/activities/a/sessions"),
             ("GET", "/api/bookings/<<BID:f1>>"),
             ("POST", "/api/bookings/<<BID:f1>>"),
             ("GET", "/api/absences"), ("DELETE", "/api/absences"),
             ("GET", "/api/staff/bookings"), ("POST", "/api/health"),
             ("POST", "/api/requests"), ("POST", "/api/invoices"),
             ("OPTIONS", "/api/bookings"), ("PROPFIND", "/api/bookings")]:
    h = dict(AUTH)
    body = None
    if m in ("POST", "PUT", "PATCH"):
        h.update(JSONCT)
        h["Idempotency-Key"] = "<<KEY>>"
        body = items(ITEM)
    case("wrong methods", "%s %s" % (m, p.replace("<<BID:f1>>", "{id}")), m,
         p, 405, "method_not_allowed", h, body)

# ----- content types: 415 unsupported_media_type ---------------------------

for ct in [None, "text/plain", "application/x-www-form-urlencoded",
           "multipart/form-data; boundary=x", "application/jsonp",
           "application/json-patch+json", "text/json", "application/xml",
           "", "json", "application/javascript"]:
    booking("content types", "Content-Type %r" % ct, 415,
            "unsupported_media_type", body=items(ITEM),
            headers={"Content-Type": ct})
case("content types", "login as a form", "POST", "/api/session", 415,
     "unsupported_media_type",
     {"Content-Type": "application/x-www-form-urlencoded"},
     "login=f1&password=x")
case("content types", "absence as text/plain", "POST", "/api/absences", 415,
     "unsupported_media_type", dict(AUTH, **{"Content-Type": "text/plain"}),
     '{"booking_id":"<<BID:f1>>","reason":"medical"}')

# ----- Idempotency-Key -------------------------------------------------------

for n, k in [("missing", None), ("empty", ""), ("65 characters", "k" * 65),
             ("a space inside", "a b"), ("a dot", "key.1"),
             ("a slash", "a/b"), ("a colon (Redis key injection)", "a:b"),
             ("braces (hash tag injection)", "{main}:f:f2"),
             ("non-ASCII", "clé"), ("a star", "*"),
             ("only spaces", "   "), ("percent-encoded", "a%20b")]:
    booking("Idempotency-Key", "Idempotency-Key %s" % n, 400,
            "idempotency_key_missing", body=items(ITEM),
            headers={"Idempotency-Key": k})
booking("Idempotency-Key", "same key, another body", 422,
        "idempotency_key_reused",
        body=items('{"child_id":"f1-c2","session_id":"a-m2"}'),
        headers={"Idempotency-Key": "<<KEY:used>>"})
booking("Idempotency-Key", "same key, same items, other spacing", 422,
        "idempotency_key_reused",
        body='{ "items" : [ {"child_id":"f1-c1","session_id":"a-m"} ] }',
        headers={"Idempotency-Key": "<<KEY:used>>"})

# ----- tokens: 401 unauthenticated -----------------------------------------

TOKEN_CASES = ["none", "empty", "garbage", "expired", "expired_long_ago",
               "other_secret", "mac_flipped", "mac_truncated", "mac_missing",
               "mac_extended", "fid_swapped", "exp_bumped", "nonce_changed",
               "issued_bumped", "town_rewritten", "town_dropped",
               "v1_relabelled", "v3", "no_prefix",
               "extra_part", "bad_base64", "negative_exp",
               "huge_exp", "revoked", "truncated_half", "lowercased",
               "whitespace_inside", "4k_long", "nul_inside"]
for t in TOKEN_CASES:
    h = {} if t == "none" else {"Authorization": "Bearer <<TOK:%s>>" % t}
    case("forged, expired and tampered tokens", "bearer %s on GET /api/me" % t,
         "GET", "/api/me", 401, "unauthenticated", h)
for t in ["expired", "mac_flipped", "fid_swapped", "revoked", "garbage"]:
    booking("forged, expired and tampered tokens",
            "bearer %s on POST /api/bookings" % t, 401, "unauthenticated",
            body=items(ITEM), headers={"Authorization": "Bearer <<TOK:%s>>" % t})
    case("forged, expired and tampered tokens",
         "bearer %s on DELETE /api/bookings/{id}" % t, "DELETE",
         "/api/bookings/<<BID:f1>>", 401, "unauthenticated",
         {"Authorization": "Bearer <<TOK:%s>>" % t})
for n, h in [("Basic scheme", "Basic ZjE6eA=="),
             ("Bearer without token", "Bearer"),
             ("Bearer and a space", "Bearer "),
             ("token without scheme", "<<TOK:f1>>"),
             ("two tokens", "Bearer <<TOK:garbage>> <<TOK:f1>>")]:
    case("forged, expired and tampered tokens", "Authorization: " + n, "GET",
         "/api/me", 401, "unauthenticated", {"Authorization": h})
for t in ["expired", "mac_flipped", "fid_swapped", "revoked", "garbage",
          "empty"]:
    case("forged, expired and tampered tokens", "cookie %s on GET /api/me" % t,
         "GET", "/api/me", 401, "unauthenticated",
         {"Cookie": "guichet_session=<<TOK:%s>>" % t})
case("forged, expired and tampered tokens", "token in the wrong cookie name",
     "GET", "/api/me", 401, "unauthenticated",
     {"Cookie": "session=<<TOK:f1>>"})
case("forged, expired and tampered tokens", "token in the query string",
     "GET", "/api/me?token=<<TOK:f1>>", 401, "unauthenticated", {})
case("forged, expired and tampered tokens", "staff: no token", "POST",
     "/api/staff/bookings", 401, "unauthenticated",
     dict(JSONCT, **{"Idempotency-Key": "<<KEY>>"}),
     '{"family_id":"f1","items":[%s]}' % ITEM)

# ----- cookies and Origin: 403 bad_origin ----------------------------------

COOK = {"Cookie": "guichet_session=<<TOK:f1>>"}
for n, o in [("missing", None), ("foreign", "https://evil.example"),
             ("foreign with our port", "http://evil.example:<<PORT>>"),
             ("null", "null"), ("empty", ""),
             ("our host as a prefix", "http://127.0.0.1:<<PORT>>.evil.example"),
             ("our host as a suffix", "http://evil.example/127.0.0.1:<<PORT>>"),
             ("other port", "http://127.0.0.1:1"),
             ("no scheme", "127.0.0.1:<<PORT>>")]:
    hb = dict(COOK, **JSONCT)
    hb["Idempotency-Key"] = "<<KEY>>"
    if o is not None:
        hb["Origin"] = o
    booking("cross-site requests", "cookie booking, Origin %s" % n, 403,
            "bad_origin", body=items(ITEM), headers=dict(hb, Authorization=None))
hd = dict(COOK, Origin="https://evil.example")
case("cross-site requests", "cookie cancel, foreign Origin", "DELETE",
     "/api/bookings/<<BID:f1>>", 403, "bad_origin", hd)
case("cross-site requests", "cookie cancel, no Origin", "DELETE",
     "/api/bookings/<<BID:f1>>", 403, "bad_origin", COOK)
case("cross-site requests", "cookie absence, foreign Origin", "POST",
     "/api/absences", 403, "bad_origin", dict(hd, **JSONCT),
     '{"booking_id":"<<BID:f1>>","reason":"medical"}')
case("cross-site requests", "login, foreign Origin", "POST", "/api/session",
     403, "bad_origin", dict(JSONCT, Origin="https://evil.example"),
     '{"login":"famille1","password":"secret-bad"}')

# ----- another family's child, staff, unknown family: 403 forbidden ---------

for n, it in [("another family's child", '{"child_id":"f2-c1","session_id":"a-m2"}'),
              ("own child then another family's",
               ITEM + ',{"child_id":"f2-c1","session_id":"a-m2"}'),
              ("a child of nobody", '{"child_id":"ghost","session_id":"a-m2"}'),
              ("another family's child, unknown session",
               '{"child_id":"f2-c1","session_id":"nope"}'),
              ("case-changed own child", '{"child_id":"F1-C1","session_id":"a-m2"}'),
              ("own child with a trailing space",
               '{"child_id":"f1-c1 ","session_id":"a-m2"}')]:
    booking("another family's child", n, 403, "forbidden", body=items(it))
booking("another family's child", "token of a family unknown to the catalogue",
        403, "forbidden", body=items(ITEM),
        headers={"Authorization": "Bearer <<TOK:ghost>>"})
booking("another family's child", "staff token on the family endpoint", 403,
        "forbidden", body=items(ITEM),
        headers={"Authorization": "Bearer <<TOK:staff>>"})
case("another family's child", "family token on the counter's endpoint",
     "POST", "/api/staff/bookings", 403, "forbidden",
     dict(AUTH, **dict(JSONCT, **{"Idempotency-Key": "<<KEY>>"})),
     '{"family_id":"f2","items":[%s]}' % ITEM)
case("another family's child", "cookie on the counter's endpoint", "POST",
     "/api/staff/bookings", 403, "forbidden",
     dict(COOK, **dict(JSONCT, **{"Idempotency-Key": "<<KEY>>",
                                  "Origin": "<<ORIGIN>>"})),
     '{"family_id":"f2","items":[%s]}' % ITEM)

# ----- IDOR: another family's booking ids: 404 not_found ---------------------

case("IDOR", "cancel another family's booking", "DELETE",
     "/api/bookings/<<BID:f2>>", 404, "not_found", AUTH)
case("IDOR", "cancel an unknown booking id", "DELETE",
     "/api/bookings/b-00000000000000000000", 404, "not_found", AUTH)
case("IDOR", "cancel an already cancelled booking", "DELETE",
     "/api/bookings/<<BID:f1_cancelled>>", 404, "not_found", AUTH)
# nginx decodes %2f and resolves "..": the request leaves /api/ for the
# static site, whose own HTML answers are nginx's (no JSON, no module)
case("IDOR", "cancel with a path traversal id", "DELETE",
     "/api/bookings/..%2f..%2f<<BID:f2>>", 405, None, AUTH,
     note="nginx: the static location refuses DELETE (HTML 405)")
case("IDOR", "cancel with a 300-byte id", "DELETE",
     "/api/bookings/" + "b" * 300, 404, "not_found", AUTH)
case("IDOR", "cancel with a Redis hash-tag id", "DELETE",
     "/api/bookings/{main}:f:f2", 404, "not_found", AUTH)
case("IDOR", "justify another family's booking", "POST", "/api/absences",
     404, "not_found", dict(AUTH, **JSONCT),
     '{"booking_id":"<<BID:f2>>","reason":"medical"}')
case("IDOR", "justify an unknown booking", "POST", "/api/absences",
     404, "not_found", dict(AUTH, **JSONCT),
     '{"booking_id":"b-ffffffffffffffffffff","reason":"medical"}')
case("IDOR", "another family's invoice", "GET", "/api/invoices/../f2/1.pdf",
     404, "not_found", AUTH)
case("IDOR", "invoice id with a traversal", "GET",
     "/api/invoices/..%2f..%2fetc%2fpasswd.pdf", 404, None, AUTH,
     note="nginx: /etc/passwd.pdf under the static root (HTML 404)")

# ----- absences: bad bodies --------------------------------------------------

for n, b, code in [
        ("reason not medical", '{"booking_id":"<<BID:f1>>","reason":"holiday"}',
         "invalid_field"),
        ("reason missing", '{"booking_id":"<<BID:f1>>"}', "invalid_field"),
        ("booking_id number", '{"booking_id":5,"reason":"medical"}',
         "invalid_field"),
        ("unknown field", '{"booking_id":"<<BID:f1>>","reason":"medical",'
         '"billed":false}', "invalid_field"),
        ("truncated", '{"booking_id":"<<BID:f1>>","reas', "bad_json"),
        ("duplicate key", '{"booking_id":"<<BID:f1>>","booking_id":'
         '"<<BID:f2>>","reason":"medical"}', "invalid_field")]:
    case("absences", "absence: " + n, "POST", "/api/absences", 400, code,
         dict(AUTH, **JSONCT), b)

# ----- login bodies ------------------------------------------------------------

for n, b, st, code in [
        ("truncated", '{"login":"famille1"', 400, "bad_json"),
        ("array", '["famille1","secret-bad"]', 400, "invalid_field"),
        ("login number", '{"login":1,"password":"secret-bad"}', 400,
         "invalid_field"),
        ("password missing", '{"login":"famille1"}', 400, "invalid_field"),
        ("unknown field", '{"login":"famille1","password":"secret-bad",'
         '"admin":true}', 400, "invalid_field"),
        ("duplicate login", '{"login":"x","login":"famille1",'
         '"password":"secret-bad"}', 400, "invalid_field"),
        ("NUL in login", '{"login":"famille1\\u0000x","password":"secret-bad"}',
         400, "invalid_field"),
        ("empty object", "{}", 400, "invalid_field")]:
    case("login bodies", "login: " + n, "POST", "/api/session", st, code,
         JSONCT, b)

# ----- empty bodies (Content-Length: 0) on every POST endpoint ---------------
# Until 2026-11 these crashed the nginx worker (SIGSEGV in
# ngx_http_guichet_read_body: nginx hands an empty body over as a special
# buf that is neither in memory nor in a file); login needs no token.

case("empty bodies", "login, Content-Length 0", "POST", "/api/session", 400,
     "bad_json", JSONCT, "")
case("empty bodies", "absence, Content-Length 0", "POST", "/api/absences",
     400, "bad_json", dict(AUTH, **JSONCT), "")
case("empty bodies", "counter booking, Content-Length 0", "POST",
     "/api/staff/bookings", 400, "bad_json",
     {"Authorization": "Bearer <<TOK:staff>>", "Content-Type":
      "application/json", "Idempotency-Key": "<<KEY>>"}, "")

# ----- query parameters and paths ------------------------------------------

for n, q in [("from not a date", "from=tomorrow&to=2027-07-08"),
             ("to before from", "from=2027-07-08&to=2027-07-01"),
             ("more than 92 days", "from=2027-01-01&to=2027-12-31"),
             ("month 13", "from=2027-13-01&to=2027-13-02"),
             ("February 30", "from=2027-02-30&to=2027-03-01"),
             ("empty from", "from=&to=2027-07-08")]:
    case("query parameters", "sessions: " + n, "GET",
         "/api/activities/a/sessions?" + q, 400, "invalid_field")
case("query parameters", "bookings: to not a date", "GET",
     "/api/bookings?from=2027-07-01&to=x", 400, "invalid_field", AUTH)
for p in ["/api/nope", "/api/activities/nope/sessions",
          "/api/activities//sessions", "/api/activities/a/sessions/x",
          "/api/paiements", "/api/", "/api/bookings/"]:
    case("unknown paths", "GET " + p, "GET", p, 404, "not_found", AUTH)

json.dump(CASES, open(os.path.join(HERE, "cases.json"), "w"), indent=1,
          ensure_ascii=True)
print(len(CASES), "cases")
