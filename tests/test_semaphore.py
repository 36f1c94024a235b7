"""threading.Semaphore and BoundedSemaphore, differential: stdlib and cconc."""
import os
import signal
import sys
import threading as std_threading
import time
import warnings

import pytest

from helpers import assert_no_memory_growth, interrupt_main_after, join_all, run_in_fork, start_threads, wait_until

pytestmark = pytest.mark.timeout(60)

KINDS = ["Semaphore", "BoundedSemaphore"]


def test_types(threading_mod):
    assert issubclass(threading_mod.BoundedSemaphore, threading_mod.Semaphore)
    if threading_mod is not std_threading:
        from cconc import _cconc

        assert threading_mod.Semaphore is _cconc.Semaphore
        assert threading_mod.BoundedSemaphore is _cconc.BoundedSemaphore


@pytest.mark.parametrize("kind", KINDS)
def test_basics(threading_mod, kind):
    sem = getattr(threading_mod, kind)(2)
    assert sem._value == 2
    assert sem.acquire() is True
    assert sem.acquire(True) is True
    assert sem._value == 0
    assert sem.acquire(False) is False
    assert sem.acquire(blocking=False) is False
    t0 = time.monotonic()
    assert sem.acquire(timeout=0.05) is False
    assert time.monotonic() - t0 >= 0.04
    assert sem.acquire(True, 0) is False
    assert sem.acquire(timeout=-1) is False
    sem.release()
    assert sem._value == 1
    with sem as entered:
        assert entered is True
        assert sem._value == 0
    assert sem._value == 1
    sem.release()
    assert sem._value == 2
    assert getattr(threading_mod, kind)()._value == 1
    assert getattr(threading_mod, kind)(0)._value == 0
    assert getattr(threading_mod, kind)(value=5)._value == 5
    if type(sem).__repr__ is not object.__repr__:  # the stdlib's since 3.11
        assert f"value={sem._value}" in repr(sem)
    assert kind in repr(sem)


def test_unbounded_release_n(threading_mod):
    sem = threading_mod.Semaphore(0)
    sem.release(5)
    assert sem._value == 5
    sem.release(n=2)
    sem.release()
    assert sem._value == 8
    for _ in range(8):
        assert sem.acquire(False)
    assert not sem.acquire(False)


def test_bounded_over_release(threading_mod):
    sem = threading_mod.BoundedSemaphore(3)
    with pytest.raises(ValueError, match="Semaphore released too many times"):
        sem.release()
    assert sem._value == 3
    sem.acquire()
    sem.acquire()
    with pytest.raises(ValueError, match="Semaphore released too many times"):
        sem.release(3)
    assert sem._value == 1
    sem.release(2)
    assert sem._value == 3
    if type(sem).__repr__ is not object.__repr__:  # the stdlib's since 3.11
        assert "value=3/3" in repr(sem)
    with pytest.raises(ValueError, match="Semaphore released too many times"):
        with sem:
            sem.release()
            sem.release()  # the with block's own release is now one too many
    # __exit__ raised too: the value is back at the bound, not above it.
    assert sem._value == 3


@pytest.mark.parametrize("kind", KINDS)
def test_release_n_wakes_n_waiters(threading_mod, kind):
    sem = getattr(threading_mod, kind)(5)
    for _ in range(5):
        sem.acquire()
    got = []
    threads = start_threads(threading_mod, lambda: got.append(sem.acquire(timeout=20)), 5)
    time.sleep(0.1)
    sem.release(3)
    wait_until(lambda: len(got) == 3)
    time.sleep(0.1)
    assert len(got) == 3 and sem._value == 0
    sem.release(2)
    for t in threads:
        t.join(30)
    assert got == [True] * 5
    assert sem._value == 0


@pytest.mark.parametrize("kind", KINDS)
def test_limits_concurrency(threading_mod, kind):
    k = 3
    sem = getattr(threading_mod, kind)(k)
    guard = std_threading.Lock()
    holders = [0]
    most = [0]
    rounds = 300

    def worker():
        for i in range(rounds):
            with sem:
                with guard:
                    holders[0] += 1
                    most[0] = max(most[0], holders[0])
                if i % 16 == 0:
                    time.sleep(0)
                with guard:
                    holders[0] -= 1

    threads = start_threads(threading_mod, worker, 16)
    join_all(threads, 60)
    assert 1 <= most[0] <= k
    assert sem._value == k


@pytest.mark.parametrize("kind", KINDS)
def test_timeouts_racing_releases_lose_no_unit(threading_mod, kind):
    n_items = 3000
    sem = getattr(threading_mod, kind)(n_items)
    for _ in range(n_items):
        sem.acquire()
    taken = [0]
    lock = std_threading.Lock()
    stop = [False]

    def consumer():
        while not stop[0]:
            if sem.acquire(timeout=0.001):
                with lock:
                    taken[0] += 1

    threads = start_threads(threading_mod, consumer, 4)
    for _ in range(n_items):
        sem.release()
    wait_until(lambda: taken[0] + sem._value == n_items and sem._value == 0, 30)
    stop[0] = True
    for t in threads:
        t.join(30)
    assert taken[0] == n_items


@pytest.mark.skipif(not hasattr(signal, "SIGINT"), reason="needs SIGINT")
@pytest.mark.parametrize("kind", KINDS)
def test_ctrl_c_interrupts_acquire(threading_mod, kind):
    sem = getattr(threading_mod, kind)(0) if kind == "Semaphore" else getattr(threading_mod, kind)(1)
    if kind == "BoundedSemaphore":
        sem.acquire()
    timer = interrupt_main_after(0.2)
    try:
        with pytest.raises(KeyboardInterrupt):
            sem.acquire()
    finally:
        timer.cancel()
        timer.join()
    assert sem._value == 0
    sem.release()
    assert sem.acquire(False)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_fork_while_threads_wait(threading_mod):
    sem = threading_mod.Semaphore(0)
    got = []
    threads = start_threads(threading_mod, lambda: got.append(sem.acquire(timeout=20)), 3)
    time.sleep(0.1)
    def child():
        # The parent's waiters do not exist here: a release must stay in the value.
        sem.release(2)
        assert sem._value == 2 and sem.acquire(False) and sem.acquire(False) and not sem.acquire(False)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        run_in_fork(child)
    sem.release(3)
    for t in threads:
        t.join(30)
    assert got == [True] * 3


@pytest.mark.parametrize("kind", KINDS)
def test_bad_input(threading_mod, kind):
    cls = getattr(threading_mod, kind)
    with pytest.raises(ValueError, match="semaphore initial value must be >= 0"):
        cls(-1)
    with pytest.raises(TypeError):
        cls("1")
    with pytest.raises(TypeError):
        cls(None)
    with pytest.raises(TypeError):
        cls(1, 2)
    sem = cls(1)
    with pytest.raises(ValueError, match="can't specify timeout for non-blocking acquire"):
        sem.acquire(False, 1)
    with pytest.raises(ValueError, match="can't specify timeout for non-blocking acquire"):
        sem.acquire(blocking=False, timeout=0)
    assert sem._value == 1
    with pytest.raises(TypeError):
        sem.acquire(True, 1, 2)
    with pytest.raises(TypeError):
        sem.acquire(bogus=1)
    with pytest.raises(ValueError, match="n must be one or more"):
        sem.release(0)
    with pytest.raises(ValueError, match="n must be one or more"):
        sem.release(-3)
    with pytest.raises(TypeError):
        sem.release("1")
    assert sem._value == 1
    sem.acquire()
    with pytest.raises(TypeError):
        sem.acquire(timeout="soon")
    with pytest.raises(OverflowError):
        sem.acquire(timeout=1e300)
    assert sem.acquire(blocking=0) is False
    assert sem.acquire(timeout=None, blocking=False) is False
    sem = cls(5)
    sem.acquire()
    sem.acquire()
    if threading_mod is std_threading and sys.version_info >= (3, 12):
        sem.release(1.5)  # 3.12's stdlib adds a float to its value: cconc's is a C integer (docs)
        assert sem._value == 4.5
    else:
        with pytest.raises(TypeError):
            sem.release(1.5)  # (3.11's stdlib has added 1.5 to its value by then)


def test_repeat_does_not_leak(threading_mod):
    sem = threading_mod.Semaphore(1)
    bsem = threading_mod.BoundedSemaphore(1)

    def cycle():
        with sem:
            sem.acquire(timeout=0)
        bsem.acquire()
        try:
            bsem.release(2)
        except ValueError:
            pass
        bsem.release()
        threading_mod.Semaphore(3)

    assert_no_memory_growth(cycle, repeat=20000, limit=200_000)


@pytest.mark.parametrize("cls_name", ["Semaphore", "BoundedSemaphore"])
def test_with_block_calls_overridden_release_not_acquire(threading_mod, cls_name):
    """The stdlib's __exit__ calls self.release(); its __enter__ is
    `__enter__ = acquire`, the class's own acquire, whatever a subclass does."""
    calls = []
    base = getattr(threading_mod, cls_name)

    class Tracked(base):
        def acquire(self, *args, **kwargs):
            calls.append("acquire")
            return super().acquire(*args, **kwargs)

        def release(self, *args, **kwargs):
            calls.append("release")
            return super().release(*args, **kwargs)

    sem = Tracked(1)
    with sem:
        assert sem._value == 0
    assert calls == ["release"]
    assert sem._value == 1

    class Refusing(base):
        def release(self, n=1):
            raise KeyError("release overridden")

    sem = Refusing(1)
    with pytest.raises(KeyError):
        with sem:
            pass
    assert sem._value == 0
