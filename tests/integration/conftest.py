"""conftest.py -- shared fixtures of the integration tests.

stack       the demo town (demo/amberieu.json) on a whole Guichet, one per
            test session; its nginx error log must stay clean
make_stack  make_stack(town_dict_or_path, name=...) starts another whole
            Guichet (custom town); every one is stopped at the end of the
            session and its error log checked too

See stack.py for what a Stack starts and its helpers.
"""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from stack import DEMO_TOWN, Stack  # noqa: E402


@pytest.fixture(scope="session")
def stack():
    s = Stack(town=DEMO_TOWN, name="demo").start()
    yield s
    try:
        s.assert_clean_error_log()
    finally:
        s.stop()


@pytest.fixture(scope="session")
def make_stack():
    started = []

    def make(town, name="custom", **kw):
        s = Stack(town=town, name=name, **kw).start()
        started.append(s)
        return s

    yield make
    # every stack stopped, even when one's log or stop() fails
    errors = []
    for s in started:
        try:
            s.assert_clean_error_log()
        except AssertionError as e:
            errors.append(str(e))
        finally:
            try:
                s.stop()
            except Exception as e:
                errors.append("%s: stop(): %r" % (s.name, e))
    assert not errors, "\n".join(errors)
