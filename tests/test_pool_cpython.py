"""CPython's own pool tests (_TestPool, _TestPoolWorkerErrors,
_TestPoolWorkerLifetime, TestPoolNotLeakOnFailure from
Lib/test/_test_multiprocessing.py) run with cconc's Pool in place of the
stdlib's, in a subprocess so that this process keeps the stdlib. The main suite
runs them under fork; the `pool` stage of .ci/run also under spawn and
forkserver (CCONC_POOL_START_METHODS)."""
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
    # The test classes are installed at module level, so that spawn's and
    # forkserver's children find them in __mp_main__ as on the stdlib's own run.
    import sys, unittest
    sys.path.insert(0, {root!r})
    import multiprocessing, multiprocessing.pool
    import cconc.multiprocessing as cmp
    from cconc.multiprocessing import pool as cpool
    multiprocessing.Pool = cmp.Pool
    multiprocessing.pool.Pool = cpool.Pool
    import test._test_multiprocessing as tm

    tm.install_tests_in_module_dict(globals(), {method!r}, only_type="processes")

    if __name__ == "__main__":
        setUpModule()
        suite = unittest.TestSuite()
        loader = unittest.defaultTestLoader
        classes = [WithProcessesTestPool, WithProcessesTestPoolWorkerErrors,
                   WithProcessesTestPoolWorkerLifetime, tm.TestPoolNotLeakOnFailure]
        for cls in classes:
            suite.addTests(loader.loadTestsFromTestCase(cls))
        # the class under test really is cconc's
        p = WithProcessesTestPool.Pool(1)
        assert type(p) is cpool.Pool
        p.terminate()
        result = unittest.TextTestRunner(verbosity=2).run(suite)
        tearDownModule()
        print("RAN", result.testsRun)
        sys.exit(0 if result.wasSuccessful() else 1)
    """
)


def _installs_one_kind():
    if not have_module("test._test_multiprocessing"):
        return False
    import test._test_multiprocessing as tm

    return "only_type" in inspect.signature(tm.install_tests_in_module_dict).parameters


METHODS = os.environ.get("CCONC_POOL_START_METHODS", "fork").split(",")


@pytest.mark.timeout(600)
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.skipif(not _installs_one_kind(), reason="CPython's test package is not installed, "
                    "or its _test_multiprocessing has no only_type= yet (before 3.11)")
def test_cpython_pool_tests_on_cconc_pool(method, tmp_path):
    script = tmp_path / "run_cpython_pool_tests.py"
    script.write_text(RUNNER.format(root=ROOT, method=method))
    proc = subprocess.run(
        [sys.executable, str(script)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=580,
    )
    assert proc.returncode == 0, proc.stdout[-8000:]
    last = proc.stdout.strip().splitlines()[-1]
    assert last.startswith("RAN ") and int(last.split()[1]) >= 30, last
