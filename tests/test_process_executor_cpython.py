"""CPython's own ProcessPoolExecutor tests (test_concurrent_futures) on cconc's
ProcessPoolExecutor, in a subprocess (tests/cpython_ppe_runner.py): here the
fork context's executor, deadlock and initializer classes; every class under
every start method runs in the CI stage cpython_ppe (.ci/run)."""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUNNER = os.path.join(ROOT, "tests", "cpython_ppe_runner.py")


def test_cpython_process_pool_tests_on_cconc():
    proc = subprocess.run(
        [sys.executable, RUNNER, "--quick", "--only", "ProcessPoolExecutorTest,Deadlock,Initializer"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=280,
    )
    assert proc.returncode == 0, proc.stdout[-6000:]
    last = proc.stdout.strip().splitlines()[-1]
    assert last.startswith("RAN ") and int(last.split()[1]) >= 20, last
