#!/usr/bin/python3
"""bench/tokc_rss.py -- the memory of an nginx worker's cache of verified
tokens (ngx_http_guichet_tokcache.c), as an operator sees it: the RSS of
the one worker of a stack (tests/integration/stack.py) serving a town of
--families families, after the catalogue's load, after one GET /api/me of
every family (every token entered), then after a catalogue of --shrink-to
families; with guichet_token_checks_total and, where the module has it,
guichet_token_cache_bytes.

    bench/tokc_rss.py [--module build/ab/before.so] [--families 20000]
                      [--shrink-to 2000]
"""

import argparse
import http.client
import json
import os
import shutil
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
sys.path.insert(0, os.path.join(ROOT, "tests", "fault"))

from faultlib import (conf_template, metrics, rush_town,  # noqa: E402
                      start_stack, wait_for)


def workers(s):
    """The pids of the stack's nginx workers (children of its master)."""
    master = s.procs["nginx"].pid
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == master:
            out.append(int(pid))
    return out


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def report(s, what):
    m = metrics(s)
    pids = workers(s)
    print("%-34s worker RSS %s kB, token checks %d, cache bytes %s"
          % (what, ",".join(str(rss_kb(p)) for p in pids),
             m.get("guichet_token_checks_total", 0),
             int(m["guichet_token_cache_bytes"])
             if "guichet_token_cache_bytes" in m else "-"),
          flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--module", default=None)
    ap.add_argument("--families", type=int, default=20000)
    ap.add_argument("--shrink-to", type=int, default=2000)
    a = ap.parse_args()

    if a.module:
        os.environ["GUICHET_MODULE"] = os.path.abspath(a.module)
    tmp = tempfile.mkdtemp(prefix="tokc-rss-")
    tpl = conf_template(tmp, "tokc", replace=[("worker_processes 2;",
                                               "worker_processes 1;")])
    s = start_stack(rush_town(families=a.families), "tokcrss", template=tpl)
    try:
        report(s, "catalogue of %d families" % a.families)
        t = s.tokens()
        c = http.client.HTTPConnection("127.0.0.1", s.port, timeout=30)
        for fid, tok in t.items():
            c.request("GET", "/api/me",
                      headers={"Authorization": "Bearer " + tok})
            r = c.getresponse()
            r.read()
            assert r.status == 200, r.status
        c.close()
        report(s, "every family's token entered")

        path = os.path.join(tmp, "small.json")
        with open(path, "w") as f:
            json.dump(rush_town(families=a.shrink_to), f)
        reloads = metrics(s)["guichet_catalogue_reloads_total"]
        s.ctl_run("load-town", path)
        wait_for("the worker's catalogue reloaded",
                 lambda: metrics(s)["guichet_catalogue_reloads_total"]
                 > reloads, timeout=60)
        report(s, "catalogue of %d families" % a.shrink_to)
    finally:
        s.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
