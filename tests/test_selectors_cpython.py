"""CPython's own selectors and asyncio tests, run with cconc's selector classes
in place of the stdlib's (in a subprocess, so this process keeps the stdlib)."""
import os
import subprocess
import sys
import textwrap

import pytest

from helpers import have_module

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

RUNNER = textwrap.dedent(
    """
    import sys, unittest
    sys.path.insert(0, {root!r})
    import selectors
    import cconc.selectors as cs
    for name in ("DefaultSelector", "SelectSelector", "PollSelector", "EpollSelector", "KqueueSelector"):
        if hasattr(cs, name):
            setattr(selectors, name, getattr(cs, name))
    import asyncio.selector_events as se
    used = set()
    init = se.BaseSelectorEventLoop.__init__
    def spy(self, selector=None):
        init(self, selector)
        used.add(type(self._selector).__module__)
    se.BaseSelectorEventLoop.__init__ = spy

    # White-box tests of the pure-Python classes (they mock its private
    # _selector_cls attribute); what they check, a failed modify() leaving no
    # key, tests/test_selectors.py checks with a real failing epoll_ctl().
    WHITE_BOX = ("test_modify_unregister",)

    def flatten(suite):
        for t in suite:
            if isinstance(t, unittest.TestSuite):
                yield from flatten(t)
            else:
                yield t

    loaded = unittest.defaultTestLoader.loadTestsFromNames(sys.argv[1:])
    suite = unittest.TestSuite(t for t in flatten(loaded) if t.id().rsplit(".", 1)[-1] not in WHITE_BOX)
    result = unittest.TextTestRunner(verbosity=0).run(suite)
    print("RAN", result.testsRun, "USED", sorted(used))
    sys.exit(0 if result.wasSuccessful() else 1)
    """
)


@pytest.mark.timeout(300)
@pytest.mark.skipif(not have_module("test.test_selectors"), reason="CPython's test package is not installed")
@pytest.mark.parametrize(
    "modules",
    [
        ["test.test_selectors"],
        ["test.test_asyncio.test_events", "test.test_asyncio.test_selector_events"],
    ],
    ids=["test_selectors", "test_asyncio"],
)
def test_cpython_suite_on_cconc_selectors(modules):
    proc = subprocess.run(
        [sys.executable, "-c", RUNNER.format(root=ROOT), *modules],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=280,
    )
    assert proc.returncode == 0, proc.stdout[-5000:]
    last = proc.stdout.strip().splitlines()[-1]
    assert last.startswith("RAN ") and int(last.split()[1]) > 50, last
    if "asyncio" in modules[0]:
        assert "'cconc.selectors'" in last, last  # the loops really ran on cconc
