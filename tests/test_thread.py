"""Thread, Timer, local and the module functions, differential: stdlib and cconc."""
import os
import signal
import subprocess
import sys
import textwrap
import threading as std_threading
import time
import warnings

import pytest

from helpers import assert_no_memory_growth, join_all, run_in_fork, start_threads

pytestmark = pytest.mark.timeout(60)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SAME_OBJECTS = [
    "local", "excepthook", "current_thread", "enumerate", "active_count", "main_thread",
    "get_ident", "get_native_id", "settrace", "setprofile", "stack_size", "TIMEOUT_MAX",
    "ThreadError", "BrokenBarrierError", "ExceptHookArgs",
]


def test_namespace(threading_mod):
    assert threading_mod.__all__ == std_threading.__all__
    for name in threading_mod.__all__:
        assert hasattr(threading_mod, name), name
    for name in SAME_OBJECTS:
        assert getattr(threading_mod, name) is getattr(std_threading, name), name
    assert issubclass(threading_mod.Thread, std_threading.Thread)
    assert issubclass(threading_mod.Timer, std_threading.Timer)
    assert issubclass(threading_mod.Timer, threading_mod.Thread)


def test_start_guarantees_and_registry(threading_mod):
    go = std_threading.Event()
    seen = {}

    def body():
        seen["current"] = threading_mod.current_thread()
        seen["ident"] = threading_mod.get_ident()
        seen["native"] = threading_mod.get_native_id()
        seen["in_enumerate"] = threading_mod.current_thread() in threading_mod.enumerate()
        go.wait(20)

    t = threading_mod.Thread(target=body, name="worker-x")
    assert not t.is_alive() and t.ident is None
    assert "initial" in repr(t)
    count = threading_mod.active_count()
    t.start()
    try:
        # Right after start(): alive, ident set, registered.
        assert t.is_alive()
        assert t.ident is not None
        assert t in threading_mod.enumerate()
        assert threading_mod.active_count() == count + 1
        assert "started" in repr(t)
        with pytest.raises(RuntimeError, match="threads can only be started once"):
            t.start()
    finally:
        go.set()
    t.join(30)
    assert not t.is_alive()
    assert "stopped" in repr(t)
    assert t not in threading_mod.enumerate()
    assert seen["current"] is t
    assert seen["ident"] == t.ident
    assert seen["native"] == t.native_id
    assert seen["in_enumerate"] is True
    assert t.name == "worker-x"
    assert threading_mod.main_thread() is std_threading.main_thread()
    assert threading_mod.current_thread() is std_threading.main_thread()


def test_target_args_kwargs_and_subclass_run(threading_mod):
    out = []
    t = threading_mod.Thread(target=lambda *a, **k: out.append((a, k)), args=(1, 2), kwargs={"x": 3})
    t.start()
    t.join()
    assert out == [((1, 2), {"x": 3})]

    class Mine(threading_mod.Thread):
        def __init__(self):
            super().__init__(daemon=True)
            self.result = None

        def run(self):
            self.result = threading_mod.current_thread() is self

    m = Mine()
    assert m.daemon
    m.start()
    m.join()
    assert m.result is True


def test_join_rules(threading_mod):
    t = threading_mod.Thread(target=lambda: None)
    with pytest.raises(RuntimeError, match="cannot join thread before it is started"):
        t.join()
    errors = []

    def join_self():
        try:
            threading_mod.current_thread().join()
        except RuntimeError as e:
            errors.append(str(e))

    s = threading_mod.Thread(target=join_self)
    s.start()
    s.join()
    assert errors == ["cannot join current thread"]
    slow = threading_mod.Thread(target=time.sleep, args=(0.3,))
    slow.start()
    slow.join(0.01)
    assert slow.is_alive()
    slow.join(-1)  # negative acts as 0
    slow.join()
    assert not slow.is_alive()
    with pytest.raises(TypeError):
        threading_mod.Thread(target=None, bogus=1)
    with pytest.raises(AssertionError):
        threading_mod.Thread(group=object())


def test_excepthook(threading_mod, monkeypatch):
    seen = []
    monkeypatch.setattr(std_threading, "excepthook", lambda args: seen.append(args))

    def boom():
        raise ValueError("in thread")

    t = threading_mod.Thread(target=boom)
    t.start()
    t.join()
    assert len(seen) == 1
    assert seen[0].exc_type is ValueError
    assert str(seen[0].exc_value) == "in thread"
    assert seen[0].thread is t
    # SystemExit goes to the hook too (the default hook keeps quiet about it).
    seen.clear()
    t = threading_mod.Thread(target=sys.exit)
    t.start()
    t.join()
    assert [a.exc_type for a in seen] == [SystemExit] and not t.is_alive()


def test_local_is_fresh_per_thread(threading_mod):
    data = threading_mod.local()
    data.x = "main"
    observed = []

    def body(i):
        observed.append(getattr(data, "x", None))
        data.x = i

    # Many short threads back to back: even on a reused OS thread, each starts clean.
    for i in range(50):
        t = threading_mod.Thread(target=body, args=(i,))
        t.start()
        t.join()
    assert observed == [None] * 50
    assert data.x == "main"


def test_local_data_is_released_when_thread_ends(threading_mod):
    import weakref

    class Payload:
        pass

    data = threading_mod.local()
    refs = []

    def body():
        p = Payload()
        refs.append(weakref.ref(p))
        data.p = p

    t = threading_mod.Thread(target=body)
    t.start()
    t.join()
    assert refs[0]() is None  # the thread's local data went with its thread state


def test_many_concurrent_threads(threading_mod):
    lock = std_threading.Lock()
    idents = set()
    barrier = std_threading.Barrier(20)

    def body():
        with lock:
            idents.add(threading_mod.get_ident())
        barrier.wait(30)

    threads = start_threads(threading_mod, body, 20)
    for t in threads:
        t.join(30)
    assert len(idents) == 20
    assert all(not t.is_alive() for t in threads)


def test_timer(threading_mod):
    fired = []
    t = threading_mod.Timer(0.05, fired.append, args=("yes",))
    assert isinstance(t, std_threading.Timer) and isinstance(t, std_threading.Thread)
    t0 = time.monotonic()
    t.start()
    t.join(30)
    assert fired == ["yes"]
    assert time.monotonic() - t0 >= 0.04
    c = threading_mod.Timer(30, fired.append, kwargs={"object": "never"})
    c.start()
    c.cancel()
    c.join(30)
    assert not c.is_alive()
    assert fired == ["yes"]
    assert c.finished.is_set()


def test_settrace_reaches_new_threads(threading_mod):
    calls = []

    def tracer(frame, event, arg):
        if event == "call" and frame.f_code.co_name == "traced_target":
            calls.append(threading_mod.get_ident())
        return None

    def traced_target():
        pass

    threading_mod.settrace(tracer)
    try:
        t = threading_mod.Thread(target=traced_target)
        t.start()
        t.join()
    finally:
        threading_mod.settrace(None)
    assert calls == [t.ident]


def _run_script(module, body):
    script = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {ROOT!r})
        import {module} as threading
    """) + textwrap.dedent(body)
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("module", ["threading", "cconc.threading"])
def test_non_daemon_threads_are_joined_at_exit(module):
    proc = _run_script(module, """
        def late():
            time.sleep(0.3)
            print("late thread done", flush=True)
        def quick():
            pass
        for _ in range(5):
            q = threading.Thread(target=quick); q.start(); q.join()
        threading.Thread(target=late).start()
        threading.Thread(target=late, daemon=False).start()
        d = threading.Thread(target=time.sleep, args=(30,), daemon=True)
        d.start()
        print("main done", flush=True)
    """)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.startswith("main done") and out.count("late thread done") == 2, out


@pytest.mark.parametrize("module", ["threading", "cconc.threading"])
def test_uncaught_exception_is_reported_on_stderr(module):
    proc = _run_script(module, """
        def boom():
            raise KeyError("from the thread")
        t = threading.Thread(target=boom, name="boomer")
        t.start(); t.join()
    """)
    assert proc.returncode == 0
    assert "Exception in thread boomer" in proc.stderr
    assert "KeyError: 'from the thread'" in proc.stderr


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_fork_after_threads_ran(threading_mod):
    for _ in range(5):
        t = threading_mod.Thread(target=lambda: None)
        t.start()
        t.join()
    waiting = threading_mod.Thread(target=time.sleep, args=(0.5,))
    waiting.start()
    def child():
        out = []
        ts = [threading_mod.Thread(target=out.append, args=(i,)) for i in range(5)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(10)
        alive = [t for t in threading_mod.enumerate() if t is not threading_mod.main_thread()]
        assert sorted(out) == list(range(5)) and not alive

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        run_in_fork(child)
    waiting.join(30)


def test_custom_stack_size(threading_mod):
    old = threading_mod.stack_size()
    threading_mod.stack_size(1 << 20)
    try:
        out = []
        t = threading_mod.Thread(target=lambda: out.append(threading_mod.current_thread().name), name="sized")
        t.start()
        t.join(30)
        assert out == ["sized"]
    finally:
        threading_mod.stack_size(old)


def test_repeat_start_join_does_not_leak(threading_mod):
    def cycle():
        t = threading_mod.Thread(target=lambda: None)
        t.start()
        t.join()

    assert_no_memory_growth(cycle, repeat=2000, limit=300_000)


@pytest.mark.skipif(not os.path.exists("/proc/self/stat") or not hasattr(os, "fork"), reason="Linux /proc")
@pytest.mark.parametrize("module", ["threading", "cconc.threading"])
def test_no_leftover_os_threads_across_fork(module):
    """Finished threads leave no OS thread behind at a fork (3.12+ warns about those)."""
    proc = _run_script(module, """
        import os
        def os_threads():
            return int(open("/proc/self/stat").read().rsplit(")", 1)[1].split()[17])
        threads = [threading.Thread(target=time.sleep, args=(0.01,)) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        deadline = time.monotonic() + 0.5  # far less than cconc's idle time for cached threads
        pid = os.fork()
        if pid == 0:
            os._exit(0 if os_threads() == 1 else 3)
        while os_threads() != 1 and time.monotonic() < deadline:
            time.sleep(0.005)
        _, status = os.waitpid(pid, 0)
        print(os_threads(), os.waitstatus_to_exitcode(status))
    """)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["1", "0"]


@pytest.mark.skipif(not hasattr(signal, "pthread_sigmask"), reason="POSIX")
def test_signal_mask_is_inherited_from_the_starter(threading_mod):
    seen = []

    def block_usr1():
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
        seen.append(signal.SIGUSR1 in signal.pthread_sigmask(signal.SIG_BLOCK, set()))

    def report():
        seen.append(signal.SIGUSR1 in signal.pthread_sigmask(signal.SIG_BLOCK, set()))

    # A thread that changes its own mask must not pass it on to the next thread.
    for body in (block_usr1, report, report):
        t = threading_mod.Thread(target=body)
        t.start()
        t.join()
    assert seen == [True, False, False]
    # A starter with a blocked signal passes its mask on, as at thread creation.
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR2})
    try:
        seen.clear()
        t = threading_mod.Thread(target=lambda: seen.append(
            signal.SIGUSR2 in signal.pthread_sigmask(signal.SIG_BLOCK, set())))
        t.start()
        t.join()
        assert seen == [True]
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="Linux")
def test_cpu_affinity_is_inherited_from_the_starter(threading_mod):
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        pytest.skip("needs 2 CPUs")
    seen = []

    def pin():
        os.sched_setaffinity(0, {cpus[0]})
        seen.append(os.sched_getaffinity(0))

    def report():
        seen.append(os.sched_getaffinity(0))

    for body in (pin, report):
        t = threading_mod.Thread(target=body)
        t.start()
        t.join()
    assert seen == [{cpus[0]}, set(cpus)]


def test_threads_starting_threads_run_each_once(threading_mod):
    lock = std_threading.Lock()
    runs = []

    def leaf(i, j):
        with lock:
            runs.append((i, j))

    def starter(i):
        children = []
        for j in range(60):
            t = threading_mod.Thread(target=leaf, args=(i, j))
            t.start()
            children.append(t)
            if j % 3 == 0:
                t.join()
        for t in children:
            t.join()

    starters = [threading_mod.Thread(target=starter, args=(i,)) for i in range(6)]
    for t in starters:
        t.start()
    join_all(starters, 60)
    assert sorted(runs) == [(i, j) for i in range(6) for j in range(60)]


@pytest.mark.parametrize("cache", ["0", "1"])
def test_thread_cache_switch(cache):
    env = dict(os.environ, CCONC_THREAD_CACHE=cache)
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {ROOT!r})
        import cconc.threading as threading
        ids, data = [], threading.local()
        def body():
            ids.append(threading.get_native_id())
            assert not hasattr(data, "x")
            data.x = 1
        for _ in range(20):
            t = threading.Thread(target=body)
            t.start()
            assert t.is_alive() or ids
            t.join()
        print(len(ids), len(set(ids)) > 1)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 0, proc.stderr
    count, distinct = proc.stdout.split()
    assert count == "20"
    if cache == "0":
        assert distinct == "True"  # a new OS thread each time (ids may repeat, but not all 20)
