#!/usr/bin/env python3
"""paysim.py -- a small local stand-in for the DGFiP's PayFiP, for dev and
tests only (a tool, not the product).  Python standard library only.

    paysim.py --port 8090 [--host 127.0.0.1]

guichet-office (docs/office.md, "Payments") talks to it like to PayFiP:

  POST /api/operations        the office registers an operation:
                              {"id", "amount_cents", "client", "object",
                               "return_url", "notify_url"} -> 201 {"id"}
  GET  /api/operations/<id>   its result: {"id", "status", "amount_cents",
                              "provider_ref"}; status pending, paid,
                              refused or abandoned
  GET  /paiement/<id>         the payment page (French): amount, buttons
                              Payer, Payer (notification en double),
                              Payer (notification perdue), Refuser,
                              Abandonner
  POST /paiement/<id>         a button: choix=payer|payer_double|
                              payer_perdue|refuser|abandonner -> the result
                              is recorded, the notification "idop=<id>" is
                              POSTed to notify_url (twice for payer_double,
                              never for payer_perdue), and the browser is
                              redirected (303) to return_url
  GET  /paiement/<id>?choix=  the same as the POST (for scripts)

A result is final: a second choice on a settled operation changes nothing
(and notifies again, as a real provider may).  ThreadingHTTPServer: the
office's status GET is answered while a notification is being sent.
"""

import argparse
import html
import http.server
import json
import secrets
import sys
import threading
import urllib.parse
import urllib.request

OPS = {}
LOCK = threading.Lock()
RESULT = {"payer": "paid", "payer_double": "paid", "payer_perdue": "paid",
          "refuser": "refused", "abandonner": "abandoned"}


def notify(op):
    body = urllib.parse.urlencode({"idop": op["id"]}).encode()
    url = op["notify_url"]
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    # a town's host name <id>.localhost (make run's second town): loopback,
    # as browsers resolve it (glibc does not), its name kept in Host
    u = urllib.parse.urlsplit(url)
    if u.hostname and u.hostname.endswith(".localhost"):
        headers["Host"] = u.netloc
        url = urllib.parse.urlunsplit(u._replace(netloc="127.0.0.1%s" % (
            ":%d" % u.port if u.port else "")))
    req = urllib.request.Request(url, data=body, method="POST",
                                 headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            r.read()
            return r.status
    except Exception as e:     # the provider retries later in real life
        sys.stderr.write("paysim: notify %s: %s\n" % (op["id"], e))
        return None


class Handler(http.server.BaseHTTPRequestHandler):
    server_version = "paysim/1"

    def log_message(self, fmt, *args):
        sys.stderr.write("paysim: " + (fmt % args) + "\n")

    def _send(self, status, body, ctype="application/json", headers=()):
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        body = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _op(self, oid):
        with LOCK:
            return OPS.get(oid)

    # ----- routes ----------------------------------------------------

    def do_GET(self):
        u = urllib.parse.urlsplit(self.path)
        parts = u.path.strip("/").split("/")
        if len(parts) == 3 and parts[:2] == ["api", "operations"]:
            op = self._op(parts[2])
            if op is None:
                return self._send(404, {"error": "unknown operation"})
            return self._send(200, {k: op[k] for k in (
                "id", "status", "amount_cents", "provider_ref")})
        if len(parts) == 2 and parts[0] == "paiement":
            op = self._op(parts[1])
            if op is None:
                return self._send(404, "<p>Opération inconnue.</p>",
                                  "text/html; charset=utf-8")
            q = urllib.parse.parse_qs(u.query)
            if "choix" in q:
                return self._choose(op, q["choix"][0])
            return self._page(op)
        if u.path == "/health":
            return self._send(200, {"ok": True})
        return self._send(404, {"error": "not found"})

    def do_POST(self):
        u = urllib.parse.urlsplit(self.path)
        parts = u.path.strip("/").split("/")
        body = self._body()
        if u.path == "/api/operations":
            try:
                d = json.loads(body)
                oid = d.get("id") or secrets.token_hex(16)
                op = {"id": str(oid), "amount_cents": int(d["amount_cents"]),
                      "client": str(d.get("client", "")),
                      "object": str(d.get("object", "")),
                      "return_url": str(d["return_url"]),
                      "notify_url": str(d["notify_url"]),
                      "status": "pending", "provider_ref": None,
                      "notified": 0}
            except (ValueError, KeyError, TypeError):
                return self._send(400, {"error": "bad operation"})
            if not (100 <= op["amount_cents"] <= 10000000):
                return self._send(422, {"error": "amount out of range"})
            with LOCK:
                if op["id"] in OPS:
                    return self._send(409, {"error": "duplicate id"})
                OPS[op["id"]] = op
            return self._send(201, {"id": op["id"]})
        if len(parts) == 2 and parts[0] == "paiement":
            op = self._op(parts[1])
            if op is None:
                return self._send(404, {"error": "unknown operation"})
            q = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
            return self._choose(op, (q.get("choix") or [""])[0])
        return self._send(404, {"error": "not found"})

    def _choose(self, op, choice):
        if choice not in RESULT:
            return self._send(400, "<p>Choix inconnu.</p>",
                              "text/html; charset=utf-8")
        with LOCK:
            if op["status"] == "pending":
                op["status"] = RESULT[choice]
                if op["status"] == "paid":
                    op["provider_ref"] = "SIM-" + secrets.token_hex(6)
        times = {"payer_double": 2, "payer_perdue": 0}.get(choice, 1)
        for _ in range(times):
            notify(op)
        with LOCK:
            op["notified"] += times
        return self._send(303, "", "text/plain",
                          [("Location", op["return_url"])])

    def _page(self, op):
        e = html.escape
        amount = "%d,%02d €" % divmod(op["amount_cents"], 100)
        done = op["status"] != "pending"
        buttons = "".join(
            '<button type="submit" name="choix" value="%s">%s</button>\n'
            % (v, e(label)) for v, label in (
                ("payer", "Payer"),
                ("payer_double", "Payer (notification en double)"),
                ("payer_perdue", "Payer (notification perdue)"),
                ("refuser", "Refuser"), ("abandonner", "Abandonner")))
        page = """<!doctype html>
<html lang="fr"><head><meta charset="utf-8">
<title>Paiement en ligne (simulateur)</title></head>
<body><main>
<h1>Paiement en ligne — simulateur PayFiP</h1>
<p>Opération <code>%s</code> : %s</p>
<p>Montant à payer : <strong id="montant">%s</strong></p>
%s
<form method="post" action="/paiement/%s" aria-label="Choix du paiement">
%s</form>
</main></body></html>
""" % (e(op["id"]), e(op["object"]), e(amount),
       '<p role="status">Opération déjà traitée : %s.</p>'
       % e(op["status"]) if done else "",
       e(op["id"]), buttons)
        return self._send(200, page, "text/html; charset=utf-8")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8090)
    a = ap.parse_args()
    srv = http.server.ThreadingHTTPServer((a.host, a.port), Handler)
    srv.daemon_threads = True
    sys.stderr.write("paysim: listening on %s:%d\n" % (a.host, a.port))
    sys.stderr.flush()
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
