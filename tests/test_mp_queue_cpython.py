"""CPython's own multiprocessing queue tests (_TestQueue, TestSimpleQueue from
Lib/test/_test_multiprocessing.py) run with cconc's queues in place of the
stdlib's, in a subprocess so that this process keeps the stdlib. They run under
the fork start method, which lets the children inherit the substitution; the
other start methods are covered by tests/test_mp_queue.py."""
import inspect
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
    import multiprocessing
    import cconc.multiprocessing as cmp
    from cconc.multiprocessing import queues as cq
    for name in ("Queue", "JoinableQueue", "SimpleQueue"):
        setattr(multiprocessing, name, getattr(cmp, name))
    import test._test_multiprocessing as tm

    # White-box tests of the stdlib's feeder thread and pipes, which cconc's
    # queues do not have (a put places its item itself; see docs/multiprocessing.md):
    WHITE_BOX = (
        "test_queue_feeder_donot_stop_onexc",      # patches Queue._on_queue_feeder_error
        "test_queue_feeder_on_queue_feeder_error",  # subclasses the stdlib's Queue
        "test_closed",                              # looks at SimpleQueue._reader/_writer
        "test_release_unused_processes",            # a Pool whose Process class is mocked
    )

    ns = {{"__name__": "__main__"}}
    tm.install_tests_in_module_dict(ns, "fork", only_type="processes")
    ns["setUpModule"]()
    names = ["WithProcessesTestQueue"]
    suite = unittest.TestSuite()
    loader = unittest.defaultTestLoader
    for cls in (ns["WithProcessesTestQueue"], tm.TestSimpleQueue):
        for t in loader.loadTestsFromTestCase(cls):
            if t.id().rsplit(".", 1)[-1] not in WHITE_BOX:
                suite.addTest(t)
    # the classes under test really are cconc's
    assert type(multiprocessing.Queue()) is cq.Queue
    assert ns["WithProcessesTestQueue"].Queue is cmp.Queue
    result = unittest.TextTestRunner(verbosity=2).run(suite)
    print("RAN", result.testsRun)
    sys.exit(0 if result.wasSuccessful() else 1)
    """
)


@pytest.mark.timeout(300)
def _installs_one_kind():
    if not have_module("test._test_multiprocessing"):
        return False
    import test._test_multiprocessing as tm

    return "only_type" in inspect.signature(tm.install_tests_in_module_dict).parameters


@pytest.mark.skipif(not _installs_one_kind(), reason="CPython's test package is not installed, "
                    "or its _test_multiprocessing has no only_type= yet (before 3.11)")
def test_cpython_queue_tests_on_cconc_queues():
    proc = subprocess.run(
        [sys.executable, "-c", RUNNER.format(root=ROOT)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=280,
    )
    assert proc.returncode == 0, proc.stdout[-6000:]
    last = proc.stdout.strip().splitlines()[-1]
    assert last.startswith("RAN ") and int(last.split()[1]) >= 10, last
