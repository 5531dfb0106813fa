"""test_rush_quick.py -- smoke test of the opening-day rush benchmark.

Runs `bench/run --quick` (a small town, 1 s runs, under 2 minutes) into a
temporary directory and asserts only that it completes, writes its result
file and that the invariant checker found zero violations.  Never a timing
assertion: the machine is shared and noisy (docs/benchmarks.md).
"""

import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
RUN = os.path.join(ROOT, "bench", "run")
NEEDED = [os.path.join(ROOT, "build", f) for f in (
    "ngx_http_guichet_module.so", "guichetctl", "guichet-worker")]


@pytest.mark.skipif(not all(os.path.exists(f) for f in NEEDED),
                    reason="the stack is not built (make build)")
def test_rush_quick():
    # not under pytest's tmp_path: PostgreSQL's peer runs as postgres and
    # must traverse every parent, and another pytest session starting
    # meanwhile sets /tmp/pytest-of-root back to 0700 (initdb then fails)
    top = pathlib.Path(tempfile.mkdtemp(prefix="guichet-load-"))
    try:
        run_quick(top / "bench")
    finally:
        shutil.rmtree(top, ignore_errors=True)


def run_quick(out):
    # --no-peer-a: make test installs no Lua module and starts no peer
    # (make bench measures peer A beside Guichet)
    r = subprocess.run(["/usr/bin/python3", RUN, "--quick", "--no-peer-a",
                        "--out", str(out)], cwd=ROOT, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=600)
    text = r.stdout.decode(errors="replace")
    sys.stdout.write(text[-4000:])
    res_file = out / "result.json"
    assert res_file.exists(), "no result file:\n" + text[-3000:]
    res = json.loads(res_file.read_text())
    assert "error" not in res, res.get("error")
    check = res.get("check", {})
    assert check.get("violations") == 0, json.dumps(check, indent=1)[:3000]
    assert res["phases"]["rush"]["answers"] > 0
    assert res["phases"].get("peer_duplicates", {}).get("lost_places") == []
    assert r.returncode == 0, text[-3000:]
