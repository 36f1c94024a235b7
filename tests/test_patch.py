"""Patch mode (cconc.patch / cconc.unpatch / python -m cconc run): unchanged
programs and the libraries they use run on cconc's objects."""
import os
import subprocess
import sys
import textwrap
import threading
import warnings

import pytest

import cconc
from cconc import _patch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _env(**extra):
    env = dict(os.environ)
    env.pop("CCONC_PATCH", None)
    env["PYTHONPATH"] = os.pathsep.join([REPO] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env.update(extra)
    return env


def _python(args, cwd, **kw):
    return subprocess.run([sys.executable, *args], cwd=cwd, env=_env(), capture_output=True, text=True,
                          timeout=120, **kw)


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def _stdlib_state():
    import concurrent.futures
    import queue
    import selectors

    names = {
        threading: ["Lock", "RLock", "Condition", "Semaphore", "BoundedSemaphore", "Event", "Barrier", "Thread",
                    "Timer"],
        queue: ["Queue", "LifoQueue", "PriorityQueue", "SimpleQueue"],
        selectors: ["SelectSelector", "PollSelector", "EpollSelector", "DefaultSelector"],
        concurrent.futures: ["Future", "ThreadPoolExecutor", "wait", "as_completed"],
    }
    state = {(m.__name__, n): getattr(m, n) for m, ns in names.items() for n in ns if hasattr(m, n)}
    state[("threading.Thread", "start")] = threading.Thread.__dict__["start"]
    return state


@pytest.fixture
def unpatched():
    before = _stdlib_state()
    assert cconc.patched() == []
    yield before
    cconc.unpatch()
    assert _stdlib_state() == before


def test_patch_replaces_and_unpatch_restores(unpatched):
    import concurrent.futures
    import queue
    import selectors

    import cconc.futures
    import cconc.queue
    import cconc.selectors
    import cconc.threading

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", cconc.PatchWarning)  # pytest's plugins imported before
        assert cconc.patch() == ["threading", "queue", "selectors", "futures", "multiprocessing"]
    assert cconc.patched() == ["futures", "multiprocessing", "queue", "selectors", "threading"]
    for name in ("Lock", "RLock", "Condition", "Semaphore", "BoundedSemaphore", "Event", "Barrier"):
        assert getattr(threading, name) is getattr(cconc.threading, name)
    # the stdlib Thread class stays (isinstance(main_thread(), Thread) holds)
    assert threading.Thread is unpatched[("threading", "Thread")]
    assert isinstance(threading.main_thread(), threading.Thread)
    for name in ("Queue", "LifoQueue", "PriorityQueue", "SimpleQueue"):
        assert getattr(queue, name) is getattr(cconc.queue, name)
    assert selectors.DefaultSelector is cconc.selectors.DefaultSelector
    assert concurrent.futures.ThreadPoolExecutor is cconc.futures.ThreadPoolExecutor
    assert concurrent.futures.wait is cconc.futures.wait
    # asyncio and ProcessPoolExecutor need the stdlib Future class; cconc's futures are instances of it
    assert concurrent.futures.Future is unpatched[("concurrent.futures", "Future")]
    with concurrent.futures.ThreadPoolExecutor(2) as ex:
        assert isinstance(ex.submit(int), concurrent.futures.Future)
    # a stdlib Thread now starts on cconc's start-up path and still works
    seen = []
    t = threading.Thread(target=seen.append, args=(1,))
    t.start()
    t.join()
    assert seen == [1] and type(t._started) is cconc.threading.Event
    # patching again changes nothing
    state = _stdlib_state()
    assert cconc.patch() == []
    assert _stdlib_state() == state
    cconc.unpatch()
    assert cconc.patched() == []
    assert _stdlib_state() == unpatched
    cconc.unpatch()  # unpatching twice is harmless
    assert _stdlib_state() == unpatched


def test_patch_a_subset(unpatched):
    import queue

    import cconc.queue

    assert cconc.patch(threading=False, selectors=False, futures=False, multiprocessing=False, warn=False) == ["queue"]
    assert queue.Queue is cconc.queue.Queue
    assert threading.Lock is unpatched[("threading", "Lock")]
    cconc.unpatch(queue=False)
    assert queue.Queue is cconc.queue.Queue
    cconc.unpatch(queue=True)
    assert queue.Queue is unpatched[("queue", "Queue")]


def test_stdlib_modules_imported_earlier_are_rebound(unpatched):
    import subprocess as sp
    import tempfile

    import cconc.selectors
    import cconc.threading

    early = sp._PopenSelector
    early_lock = tempfile._allocate_lock
    lock_is_alias = early_lock is threading.Lock  # up to 3.12; 3.13's is _thread.allocate_lock
    cconc.patch(warn=False)
    try:
        assert sp._PopenSelector is getattr(cconc.selectors, early.__name__)
        assert (tempfile._allocate_lock is cconc.threading.Lock) == lock_is_alias
    finally:
        cconc.unpatch()
    assert sp._PopenSelector is early
    assert tempfile._allocate_lock is early_lock


def test_patch_after_import_warns_about_names_bound_early(tmp_path):
    _write(tmp_path, "earlylib.py", "from threading import Lock as EarlyLock\nimport queue\n")
    script = _write(
        tmp_path,
        "main.py",
        """
        import threading, warnings
        import earlylib
        import cconc
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            cconc.patch()
        print([str(w.message) for w in caught if w.category is cconc.PatchWarning])
        print(type(threading.Lock()).__module__, earlylib.EarlyLock.__module__, earlylib.queue.Queue.__module__)
        """,
    )
    proc = _python([str(script)], tmp_path)
    assert proc.returncode == 0, proc.stderr
    warned, kinds = proc.stdout.splitlines()
    assert "earlylib.EarlyLock (threading.Lock)" in warned
    # what the module reached through the module object is patched; the name it bound is not
    assert kinds == "cconc.threading _thread cconc.queue"


LIBRARIES = """
import asyncio, concurrent.futures, logging, logging.handlers, queue, sys, threading

# logging's QueueHandler / QueueListener, made by the program as usual
records = []
class Collect(logging.Handler):
    def emit(self, record):
        records.append(record.getMessage())
q = queue.Queue()
listener = logging.handlers.QueueListener(q, Collect())
listener.start()
started_kind = type(listener._thread._started).__module__
log = logging.getLogger("patched")
log.propagate = False
log.addHandler(logging.handlers.QueueHandler(q))
log.warning("one")
log.warning("two")
listener.stop()
print("logging", records, type(q).__module__, started_kind)

# a ThreadPoolExecutor created inside a library function
def library_map(fn, items):
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as ex:
        return type(ex).__module__, list(ex.map(fn, items))
print("library", *library_map(abs, [-1, -2, 3]))

# asyncio: the default executor and the selector
async def main():
    loop = asyncio.get_running_loop()
    value = await loop.run_in_executor(None, sum, [1, 2, 3])
    return value, type(loop._default_executor).__module__, type(loop._selector).__module__
print("asyncio", *asyncio.run(main()))
"""


def test_libraries_run_on_cconc_objects(tmp_path):
    script = _write(tmp_path, "libs.py", LIBRARIES)
    plain = _python([str(script)], tmp_path)
    patched = _python(["-m", "cconc", "run", str(script)], tmp_path)
    assert plain.returncode == 0 and patched.returncode == 0, (plain.stderr, patched.stderr)
    assert patched.stderr == ""
    assert patched.stdout.splitlines() == [
        "logging ['one', 'two'] cconc.queue cconc.threading",
        "library cconc.futures [1, 2, 3]",
        "asyncio 6 cconc.futures cconc.selectors",
    ]
    assert plain.stdout.splitlines() == [
        "logging ['one', 'two'] queue threading",
        "library concurrent.futures.thread [1, 2, 3]",
        "asyncio 6 concurrent.futures.thread selectors",
    ]


CHILDREN = """
import multiprocessing, subprocess, sys, threading

def kind(q=None):
    text = type(threading.Lock()).__module__
    if q is None:
        print(text)
    else:
        q.put(text)

if __name__ == "__main__":
    kind()
    out = subprocess.run([sys.executable, "-c", "import threading; print(type(threading.Lock()).__module__)"],
                         capture_output=True, text=True, check=True).stdout
    print(out.strip())
    for method in ("spawn", "forkserver", "fork"):
        ctx = multiprocessing.get_context(method)
        q = ctx.Queue()
        p = ctx.Process(target=kind, args=(q,))
        p.start()
        print(method, q.get(timeout=60))
        p.join()
        assert p.exitcode == 0
"""


def test_children_inherit_patch_mode(tmp_path):
    script = _write(tmp_path, "children.py", CHILDREN)
    proc = _python(["-m", "cconc", "run", str(script)], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "cconc.threading",
        "cconc.threading",
        "spawn cconc.threading",
        "forkserver cconc.threading",
        "fork cconc.threading",
    ]
    plain = _python([str(script)], tmp_path)
    assert plain.returncode == 0, plain.stderr
    assert set(plain.stdout.split()) == {"_thread", "spawn", "forkserver", "fork"}


def test_child_environment_keeps_other_sitecustomize(tmp_path):
    # the start-up hook shadows sitecustomize: the one it shadows still runs
    other = tmp_path / "other"
    other.mkdir()
    (other / "sitecustomize.py").write_text("import builtins\nbuiltins.OTHER_SITECUSTOMIZE = True\n")
    script = _write(tmp_path, "s.py", """
        import subprocess, sys
        code = "import sys, threading; print(OTHER_SITECUSTOMIZE, type(threading.Lock()).__module__, any('_boot' in p for p in sys.path))"
        print(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip())
        """)
    env = _env()
    env["PYTHONPATH"] = os.pathsep.join([REPO, str(other)])
    proc = subprocess.run([sys.executable, "-m", "cconc", "run", str(script)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "True cconc.threading False"


FAILING = {
    "raise": "def f():\n    raise ValueError('boom')\nprint('before', flush=True)\nf()\n",
    "exit3": "import sys\nsys.exit(3)\n",
    "exitmsg": "import sys\nsys.exit('a message')\n",
    "interrupt": "raise KeyboardInterrupt\n",
    "syntax": "def f(:\n    pass\n",
    "chained": "try:\n    1/0\nexcept Exception as e:\n    raise KeyError('k') from e\n",
    "thread": "import threading\nt = threading.Thread(target=lambda: 1/0)\nt.start(); t.join()\nprint('after')\n",
    "argv": "import sys\nprint(sys.argv, __name__, __file__ == __import__('os').path.abspath(sys.argv[0]))\nprint(__spec__, __package__, __cached__)\n",
}


def _normalize(text):
    # thread idents in the thread-exception message differ from run to run
    import re

    return re.sub(r"0x[0-9a-f]+", "0x?", re.sub(r"Thread-\d+ \(<lambda>\)", "Thread-N", text))


@pytest.mark.parametrize("case", sorted(FAILING))
def test_exit_status_and_traceback_are_plain_pythons(tmp_path, case):
    script = _write(tmp_path, f"{case}.py", FAILING[case])
    plain = _python([script.name, "x", "y"], tmp_path)
    patched = _python(["-m", "cconc", "run", script.name, "x", "y"], tmp_path)
    assert (patched.returncode, patched.stdout, _normalize(patched.stderr)) == (
        plain.returncode, plain.stdout, _normalize(plain.stderr))


@pytest.mark.parametrize("case", ["raise", "exit3", "argv"])
def test_module_mode_is_plain_pythons(tmp_path, case):
    _write(tmp_path, f"mod_{case}.py", FAILING[case])
    plain = _python(["-m", f"mod_{case}", "x"], tmp_path)
    patched = _python(["-m", "cconc", "run", "-m", f"mod_{case}", "x"], tmp_path)
    assert (patched.returncode, _normalize(patched.stdout), patched.stderr) == (
        plain.returncode, _normalize(plain.stdout), plain.stderr)


def test_missing_script_and_module(tmp_path):
    plain = _python(["nothere.py"], tmp_path)
    patched = _python(["-m", "cconc", "run", "nothere.py"], tmp_path)
    assert (patched.returncode, patched.stderr) == (plain.returncode, plain.stderr)
    plain = _python(["-m", "nothere"], tmp_path)
    patched = _python(["-m", "cconc", "run", "-m", "nothere"], tmp_path)
    assert (patched.returncode, patched.stderr) == (plain.returncode, plain.stderr)


def test_run_usage_errors(tmp_path):
    for args in (["run"], ["walk", "x.py"], ["run", "--patch", "nosuch", "x.py"], ["run", "-m"]):
        proc = _python(["-m", "cconc", *args], tmp_path)
        assert proc.returncode == 2 and "usage: python -m cconc run" in proc.stderr, args


def test_run_with_a_subset(tmp_path):
    script = _write(tmp_path, "s.py", """
        import queue, subprocess, sys, threading
        print(type(threading.Lock()).__module__, queue.Queue.__module__)
        sys.stdout.flush()
        subprocess.run([sys.executable, "-c", "import queue, threading; print(type(threading.Lock()).__module__, queue.Queue.__module__)"])
        """)
    proc = _python(["-m", "cconc", "run", "--patch", "queue", str(script)], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["_thread cconc.queue", "_thread cconc.queue"]


def test_parse_spec():
    assert _patch.parse_spec("1") == {} == _patch.parse_spec("all")
    assert _patch.parse_spec("queue, threading") == {
        "threading": True, "queue": True, "selectors": False, "futures": False, "multiprocessing": False}
    with pytest.raises(ValueError):
        _patch.parse_spec("queue,nosuch")


@pytest.mark.skipif(sys.version_info < (3, 10), reason="test.support.import_helper is new in 3.10")
def test_a_module_imported_afresh_while_patched_is_patched(unpatched):
    # import_fresh_module (CPython's test_queue) and reload make new module objects
    import importlib
    import queue

    import cconc.queue
    from test.support import import_helper

    cconc.patch(warn=False)
    fresh = import_helper.import_fresh_module("queue", blocked=["_queue"])
    assert fresh is not queue
    assert fresh.Queue is cconc.queue.Queue and fresh.SimpleQueue is cconc.queue.SimpleQueue
    # the exceptions cconc's queues raise, not classes new with the copy
    assert fresh.Empty is queue.Empty and fresh.Full is queue.Full
    with pytest.raises(fresh.Empty):
        fresh.Queue().get_nowait()
    assert type(fresh.__loader__).__name__ == "SourceFileLoader"
    cconc.unpatch()
    fresh = import_helper.import_fresh_module("queue")
    assert fresh.Queue is not cconc.queue.Queue
    assert importlib.import_module("queue") is queue


@pytest.mark.parametrize("kind", ["directory", "zipfile"])
def test_directory_and_zip_programs_run_as_plain_python(tmp_path, kind):
    import zipfile

    main = "import sys\nprint(sys.argv, sys.path[0], __name__, __file__)\nraise SystemExit(4)\n"
    if kind == "directory":
        (tmp_path / "app").mkdir()
        (tmp_path / "app" / "__main__.py").write_text(main)
        target = "app"
    else:
        with zipfile.ZipFile(tmp_path / "app.zip", "w") as zf:
            zf.writestr("__main__.py", main)
        target = "app.zip"
    plain = _python([target, "a"], tmp_path)
    patched = _python(["-m", "cconc", "run", target, "a"], tmp_path)
    assert plain.returncode == 4
    assert (patched.returncode, patched.stdout, patched.stderr) == (plain.returncode, plain.stdout, plain.stderr)


def test_multiprocessing_queue_factories_are_patched_and_contexts_stay(unpatched):
    import multiprocessing

    import cconc.multiprocessing

    std_queue, std_ctx = multiprocessing.Queue, multiprocessing.get_context("spawn")
    assert cconc.patch(threading=False, queue=False, selectors=False, futures=False, warn=False) == [
        "multiprocessing"]
    try:
        for name in ("Queue", "JoinableQueue", "SimpleQueue", "Pool"):
            assert getattr(multiprocessing, name) is getattr(cconc.multiprocessing, name)
        q = multiprocessing.Queue()
        q.put(1)
        assert type(q) is cconc.multiprocessing.queues.Queue and q.get(timeout=10) == 1
        with multiprocessing.Pool(1) as pool:
            assert isinstance(pool, cconc.multiprocessing.pool.Pool) and pool.apply(abs, (-2,)) == 2
        # the stdlib Pool/ProcessPoolExecutor read ctx.SimpleQueue()'s _reader: contexts stay
        assert multiprocessing.get_context("spawn") is std_ctx
        with multiprocessing.get_context("fork").Pool(1) as pool:
            assert pool.apply(abs, (-1,)) == 1
    finally:
        cconc.unpatch()
    assert multiprocessing.Queue == std_queue
    with pytest.raises(TypeError):
        cconc.patch(nosuch=True)