"""The mirrors are complete: every public name of the stdlib module exists."""
import importlib
import json
import subprocess
import sys

import pytest

MIRRORS = [
    ("threading", "cconc.threading"),
    ("concurrent.futures", "cconc.futures"),
    ("queue", "cconc.queue"),
    ("selectors", "cconc.selectors"),
    ("multiprocessing", "cconc.multiprocessing"),
    ("multiprocessing.queues", "cconc.multiprocessing.queues"),
    ("multiprocessing.context", "cconc.multiprocessing.context"),
]


@pytest.mark.parametrize("stdlib_name, cconc_name", MIRRORS)
def test_mirror_is_complete(stdlib_name, cconc_name):
    std = importlib.import_module(stdlib_name)
    mirror = importlib.import_module(cconc_name)
    if hasattr(std, "__all__"):  # selectors has none
        # the same names; cconc.queue adds the 3.13 ShutDown on older Pythons
        assert set(mirror.__all__) - set(std.__all__) <= {"ShutDown"}
        assert set(std.__all__) <= set(mirror.__all__)
    public = [n for n in dir(std) if not n.startswith("_") and not isinstance(getattr(std, n), type(sys))]
    missing = [n for n in public if not hasattr(mirror, n)]
    assert missing == []


def test_threading_private_names_are_the_stdlib():
    import threading as std

    import cconc.threading as mirror

    assert mirror._shutdown is std._shutdown
    assert mirror._active is std._active


def test_native_primitives_replace_the_stdlib():
    import cconc._cconc as native
    import cconc.threading as threading

    assert threading.Lock is native.Lock
    assert threading.RLock is native.RLock
    assert threading.Event is native.Event
    import threading as std

    for name in ("Condition", "Semaphore", "BoundedSemaphore", "Barrier"):
        assert getattr(threading, name) is getattr(native, name)
    # Thread and Timer are the stdlib's classes, subclassed: the registry,
    # excepthook and exit-joining stay the stdlib's own code
    assert issubclass(threading.Thread, std.Thread)
    assert issubclass(threading.Timer, std.Timer) and issubclass(threading.Timer, threading.Thread)
    assert threading.BrokenBarrierError is std.BrokenBarrierError
    assert threading.TIMEOUT_MAX == native.TIMEOUT_MAX == std.TIMEOUT_MAX


def test_bench_runs_and_writes_json(tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, "-m", "cconc.bench", "Lock acquire+release", "--rounds", "1", "--json", str(out)],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Lock acquire+release" in proc.stdout
    data = json.loads(out.read_text())
    rows = {r["case"]: r for r in data["results"]}
    assert set(rows) == {"Lock acquire+release", "RLock acquire+release"}  # substring filter
    row = rows["Lock acquire+release"]
    assert set(row["ns_per_op"]) == {"stdlib", "cconc"}
    assert row["speedup"] > 0


def test_bench_lists_cases():
    proc = subprocess.run([sys.executable, "-m", "cconc.bench", "--list"], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0
    names = proc.stdout.splitlines()
    assert "Event set+clear" in names and len(names) == len(set(names))
