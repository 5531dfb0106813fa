"""test_matrix.py -- issue 8's fault matrix (matrix.py) under pytest.

Each fault starts its own whole Guichet, runs the rush, applies the fault
and its recovery, then the invariant checker (bench/check.py and the
rest, see matrix.py).  make test runs the short subset (matrix.QUICK:
Redis kill -9, worker kill -9 mid-batch, nginx worker kill -9, the network
drop, kill -9 of a Redis Cluster replica under six towns); GUICHET_FAULTS=all runs every fault, as `make faults` does (which
prints one line per fault instead).

Needs root: the network drop makes a network namespace and iptables rules
in it, the disk-full fault mounts a tmpfs.
"""

import os

import pytest

from matrix import FAULTS, QUICK, line, run_fault


@pytest.mark.parametrize("name", list(FAULTS))
def test_fault(name):
    if name not in QUICK and os.environ.get("GUICHET_FAULTS") != "all":
        pytest.skip("make faults (or GUICHET_FAULTS=all) runs it")
    if os.geteuid() != 0:
        pytest.skip("the fault matrix needs root")
    res = run_fault(name)
    assert res["ok"], line(res)
