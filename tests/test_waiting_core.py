"""The waiting core (src/core/park.c) through the primitives built on it: wake-ups
racing timeouts and signals, waiters leaving from the middle of a list, FIFO."""
import signal
import time

import pytest

from helpers import interrupt_main_after, start_thread, wait_until

pytestmark = pytest.mark.timeout(120)


def test_timeouts_racing_releases_lose_nothing(threading_mod):
    """Waiters whose timeouts expire while the lock is being handed to them:
    every acquire that reports True really got the lock, none is lost."""
    lock = threading_mod.Lock()
    inside = [0]
    acquired = [0]
    violations = []

    def worker():
        for _ in range(3000):
            if lock.acquire(timeout=0.0002):
                inside[0] += 1
                if inside[0] != 1:
                    violations.append(inside[0])
                inside[0] -= 1
                acquired[0] += 1
                lock.release()

    threads = [start_thread(worker) for _ in range(6)]
    for t in threads:
        t.join()
    assert violations == []
    assert acquired[0] > 0
    # a handoff lost to a timed-out waiter would leave the lock held by nobody
    assert lock.acquire(timeout=5)
    lock.release()


def test_waiters_leaving_from_the_middle(threading_mod):
    lock = threading_mod.Lock()
    lock.acquire()
    results = {}
    started = []

    def waiter(name, timeout):
        started.append(name)
        ok = lock.acquire(timeout=timeout)
        results[name] = ok
        if ok:
            lock.release()

    plan = [("long1", 30), ("short1", 0.05), ("long2", 30), ("short2", 0.1), ("long3", 30)]
    threads = []
    for name, timeout in plan:
        threads.append(start_thread(waiter, name, timeout))
        wait_until(lambda: name in started)
        time.sleep(0.01)
    wait_until(lambda: "short1" in results and "short2" in results)
    lock.release()
    for t in threads:
        t.join(30)
    assert results == {"long1": True, "short1": False, "long2": True, "short2": False, "long3": True}
    assert not lock.locked()


def test_handler_that_wakes_the_waiter_then_raises(threading_mod):
    """SIGINT's handler releases the lock the main thread waits for, then
    raises: the lock must not stay held by a waiter that is gone."""
    lock = threading_mod.Lock()
    start_thread(lock.acquire).join()

    def handler(signum, frame):
        lock.release()
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGINT, handler)
    try:
        timer = interrupt_main_after(0.1)
        try:
            lock.acquire(timeout=30)
        except KeyboardInterrupt:
            interrupted = True
        else:
            interrupted = False
            lock.release()  # the stdlib may report success: both are fine
        timer.join()
    finally:
        signal.signal(signal.SIGINT, old)
    assert interrupted or not lock.locked()
    assert lock.acquire(timeout=5), "the lock was lost"
    lock.release()


def test_event_handler_sets_then_raises(threading_mod):
    e = threading_mod.Event()

    def handler(signum, frame):
        e.set()
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGINT, handler)
    try:
        interrupt_main_after(0.1)
        with pytest.raises(KeyboardInterrupt):
            e.wait(30)
    finally:
        signal.signal(signal.SIGINT, old)
    assert e.is_set()


def test_cconc_lock_hands_over_in_fifo_order():
    """cconc guarantees FIFO handoff (the stdlib promises no order)."""
    import cconc.threading as threading

    lock = threading.Lock()
    lock.acquire()
    order, started = [], []

    def waiter(i):
        started.append(i)
        with lock:
            order.append(i)

    threads = []
    for i in range(8):
        threads.append(start_thread(waiter, i))
        wait_until(lambda: i in started)
        time.sleep(0.02)  # let it reach the waiter list
    lock.release()
    for t in threads:
        t.join(30)
    assert order == list(range(8))


def test_memory_is_stable_under_repeated_blocking(threading_mod):
    """Parking and waking must not leak: RSS after many round trips stays flat."""
    import resource

    ping, pong = threading_mod.Event(), threading_mod.Event()
    lock = threading_mod.Lock()

    def rounds(n):
        def partner():
            for _ in range(n):
                ping.wait()
                ping.clear()
                with lock:
                    pass
                pong.set()

        t = start_thread(partner)
        for _ in range(n):
            ping.set()
            pong.wait()
            pong.clear()
        t.join()

    rounds(2000)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rounds(20000)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert after - before < 4096  # KiB; a per-round leak of 200 bytes would show


# ---------------------------------------------------------------------------
# Threads that cannot come back: daemon threads at interpreter exit, the
# threads of the parent after fork(). Each scenario runs in a subprocess.

import os
import subprocess
import sys
import textwrap

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_PRELUDE = """
import importlib, os, sys, time, signal, warnings
threading = importlib.import_module(sys.argv[1])
queue = importlib.import_module("queue" if sys.argv[1] == "threading" else "cconc.queue")
kind = sys.argv[2]
warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads (3.12+)
"""


def _run_script(script, threading_mod, *args, runs=1, timeout=60):
    """Run `script` `runs` times at once in fresh interpreters with the module
    under test; return their (returncode, stdout + stderr)."""
    env = dict(os.environ, PYTHONPATH=_ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    if "ASAN_OPTIONS" in env:
        # These interpreters exit with daemon threads still alive, whose memory
        # CPython never frees (the stdlib's runs leak the same): ASan still
        # checks every access, LeakSanitizer is left out of it.
        env["ASAN_OPTIONS"] += ":detect_leaks=0"
    code = _PRELUDE + textwrap.dedent(script)
    procs = [
        subprocess.Popen([sys.executable, "-c", code, threading_mod.__name__, *args], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for _ in range(runs)
    ]
    results = []
    for p in procs:
        try:
            out, _ = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            out, _ = p.communicate()
            out += "\n<hung>"
        results.append((p.returncode, out))
    return results


_EXIT_SCRIPT = """
if kind in ("lock", "rlock"):
    obj = threading.Lock() if kind == "lock" else threading.RLock()
    obj.acquire()
    wait = lambda: obj.acquire(timeout=0.05)
    def poke():
        obj.release()
        return obj.acquire(timeout=5)
elif kind == "semaphore":
    obj = threading.Semaphore(0)
    wait = lambda: obj.acquire(timeout=0.05)
    def poke():
        obj.release()
        return obj.acquire(timeout=5)
elif kind == "event":
    obj = threading.Event()
    wait = lambda: obj.wait(0.05)
    def poke():
        obj.set()
        return obj.wait(5)
elif kind == "condition":
    obj = threading.Condition()
    def wait():
        with obj:
            obj.wait(0.05)
    def poke():
        with obj:
            obj.notify_all()
            return obj.wait_for(lambda: True, 5)
elif kind in ("queue", "simplequeue"):
    obj = queue.Queue() if kind == "queue" else queue.SimpleQueue()
    wait = lambda: obj.get(timeout=0.05)
    def poke():
        obj.put(1)
        return obj.get(timeout=5)

def loop():
    while True:
        try:
            wait()
        except Exception:
            pass

for _ in range(4):
    threading.Thread(target=loop, daemon=True).start()
time.sleep(0.2)

class Poker:
    # Runs while the interpreter finalizes: the daemon threads' timed waits
    # expire meanwhile and they die re-taking the GIL, their waiters linked.
    def __del__(self, sleep=time.sleep, poke=poke, out=sys.stdout):
        sleep(0.3)
        out.write("poked: %s\\n" % bool(poke()))
        out.flush()

# A module no thread refers to, torn down (with the Poker) during finalization.
import types
holder = types.ModuleType("poker_holder")
holder.poker = Poker()
sys.modules[holder.__name__] = holder
del holder
"""


@pytest.mark.parametrize("kind", ["lock", "rlock", "semaphore", "event", "condition", "queue", "simplequeue"])
def test_daemon_threads_in_timed_waits_at_exit(threading_mod, kind):
    """Module teardown releases/sets/puts while daemon threads that were in
    timed waits have died: no crash, no hang, nothing handed to a dead thread."""
    if kind == "simplequeue" and threading_mod.__name__ == "threading" and sys.version_info >= (3, 13):
        pytest.skip("3.13's own SimpleQueue hands the item to the dead thread (its get then raises Empty)")
    for returncode, out in _run_script(_EXIT_SCRIPT, threading_mod, kind, runs=3):
        assert returncode == 0, out
        assert "poked: True" in out, out


_HANDED_SCRIPT = """
def child_status(pid):
    _, st = os.waitpid(pid, 0)
    return os.WEXITSTATUS(st) if os.WIFEXITED(st) else 100 + os.WTERMSIG(st)

# No forced GIL switch between the wake-up and the fork: the woken thread
# cannot run in between (it would take what it was woken for).
sys.setswitchinterval(100)
usable = 0
for _ in range(10):
    if kind == "semaphore":
        obj = threading.Semaphore(0)
        waiter = lambda: obj.acquire(timeout=10)
        wake = obj.release
    elif kind in ("lock", "rlock"):
        obj = threading.Lock() if kind == "lock" else threading.RLock()
        obj.acquire()
        waiter = lambda: obj.acquire(timeout=10) and obj.release()
        wake = obj.release
    elif kind == "condition":
        obj = threading.Condition()
        def waiter():
            with obj:
                obj.wait(10)
        def wake():
            with obj:
                obj.notify()
    t = threading.Thread(target=waiter, daemon=True)
    t.start()
    time.sleep(0.05)
    wake()
    pid = os.fork()  # at once: the woken thread has not run, and is not in the child
    if pid == 0:
        os._exit(0 if obj.acquire(timeout=2) else 1)
    usable += child_status(pid) == 0
    t.join()
print("usable %d/10" % usable)
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
@pytest.mark.parametrize("kind", ["semaphore", "condition"])
def test_fork_right_after_waking_a_waiter(threading_mod, kind):
    """What was handed to a woken thread that never ran returns to the object
    in the child (the stdlib's Semaphore and Condition never hand anything)."""
    [(returncode, out)] = _run_script(_HANDED_SCRIPT, threading_mod, kind)
    assert returncode == 0, out
    assert "usable 10/10" in out, out


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
@pytest.mark.parametrize("kind", ["lock", "rlock"])
def test_cconc_lock_handed_over_before_fork_is_free_in_the_child(kind):
    """A cconc lock released to a waiting thread belongs to that thread at
    once; in a child forked before it ran, the lock is free again. (The stdlib
    leaves it to chance: taken if the waiter got it before the fork.)"""
    import cconc.threading

    [(returncode, out)] = _run_script(_HANDED_SCRIPT, cconc.threading, kind)
    assert returncode == 0, out
    assert "usable 10/10" in out, out


_SIGNAL_FORK_SCRIPT = """
q = queue.Queue()
cond = threading.Condition()
state = {}

def handler(signum, frame):
    pid = os.fork()
    if pid == 0:
        state["child"] = True
        if kind == "queue":
            threading.Timer(0.2, q.put, ("child",)).start()
        else:
            def notify():
                with cond:
                    state["notified"] = True
                    cond.notify()
            threading.Timer(0.2, notify).start()
    else:
        state["pid"] = pid
        if kind == "queue":
            q.put("parent")
        else:
            state["notified"] = True  # the parent's wait may end at its timeout

signal.signal(signal.SIGUSR1, handler)
threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGUSR1)).start()
if kind == "queue":
    try:
        got = q.get(timeout=10)
    except queue.Empty:
        got = None
    if state.get("child"):
        ok = got == "child"
        threading.Timer(0.2, q.put, ("again",)).start()
        try:
            ok = ok and q.get(timeout=10) == "again"  # the waiter list is still sound
        except queue.Empty:
            ok = False
        os._exit(0 if ok else 1)
else:
    with cond:
        notified = cond.wait(10)
        if state.get("child"):
            os._exit(0 if notified and state.get("notified") else 1)
        cond.wait_for(lambda: "notified" in state, 10)
_, status = os.waitpid(state["pid"], 0)
print("child exit", os.WEXITSTATUS(status) if os.WIFEXITED(status) else "signal")
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
@pytest.mark.parametrize("kind", ["queue", "condition"])
def test_signal_handler_forks_while_main_thread_waits(threading_mod, kind):
    """The forking thread's own waiter survives into the child: it is woken
    there, and the waiter list stays sound for the next waiter."""
    [(returncode, out)] = _run_script(_SIGNAL_FORK_SCRIPT, threading_mod, kind)
    assert returncode == 0, out
    assert "child exit 0" in out, out


_THREAD_FORK_SCRIPT = """
result = {}
def target():
    pid = os.fork()
    if pid == 0:
        return  # the child's only thread ends here: so does the child
    start = time.monotonic()
    os.waitpid(pid, 0)
    result["seconds"] = time.monotonic() - start
t = threading.Thread(target=target)
t.start()
t.join()
print("child ended after %.2f s" % result["seconds"])
print("lingered" if result["seconds"] > 1.5 else "ended")
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_fork_in_a_thread_whose_child_returns(threading_mod):
    """The child of a fork inside a Thread ends when the thread function
    returns (cconc's cached OS thread used to idle there for 2 s first)."""
    [(returncode, out)] = _run_script(_THREAD_FORK_SCRIPT, threading_mod, "thread")
    assert returncode == 0, out
    assert out.splitlines()[-1] == "ended", out
