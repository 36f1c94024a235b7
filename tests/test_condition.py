"""threading.Condition, differential: every test runs on the stdlib and on cconc."""
import collections
import os
import signal
import sys
import threading as std_threading
import time
import warnings

import pytest

from helpers import (
    assert_no_memory_growth,
    interrupt_main_after,
    join_all,
    run_in_fork,
    start_thread,
    start_threads,
    wait_until,
)

pytestmark = pytest.mark.timeout(60)


def start_waiters(threading_mod, cond, count):
    """Start `count` threads that each wait(20) on `cond` and record what it
    returned; return (threads, results) once all of them have entered."""
    entered = [0]
    results = []

    def waiter():
        with cond:
            entered[0] += 1
            results.append(cond.wait(20))

    threads = start_threads(threading_mod, waiter, count)
    wait_until(lambda: entered[0] == count)
    return threads, results


def notify_until_woken(threading_mod, cond, timeout, join_timeout):
    """Start a thread that waits on `cond` for up to `timeout` seconds, notify
    it until it wakes (or `timeout` passes), join it; return [what wait() returned]."""
    woke = []

    def waiter():
        with cond:
            woke.append(cond.wait(timeout))

    t = threading_mod.Thread(target=waiter)
    t.start()
    deadline = time.monotonic() + timeout
    while not woke and time.monotonic() < deadline:
        with cond:
            cond.notify()
        time.sleep(0.01)
    t.join(join_timeout)
    return woke


class UserLock:
    """A lock class of the user's own, with nothing but acquire and release."""

    def __init__(self):
        self._lock = std_threading.Lock()
        self.acquires = 0

    def acquire(self, blocking=True, timeout=-1):
        got = self._lock.acquire(blocking, timeout)
        if got:
            self.acquires += 1
        return got

    def release(self):
        self._lock.release()

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *exc):
        self.release()


def make_lock(threading_mod, kind):
    return {
        "default": None,
        "Lock": threading_mod.Lock(),
        "RLock": threading_mod.RLock(),
        "stdlib Lock": std_threading.Lock(),
        "stdlib RLock": std_threading.RLock(),
        "user": UserLock(),
    }[kind]


LOCK_KINDS = ["default", "Lock", "RLock", "stdlib Lock", "stdlib RLock", "user"]


def test_is_the_native_type(threading_mod):
    if threading_mod is std_threading:
        pytest.skip("stdlib")
    from cconc import _cconc

    assert threading_mod.Condition is _cconc.Condition
    assert threading_mod.__all__ == std_threading.__all__


def test_default_lock_is_reentrant(threading_mod):
    cond = threading_mod.Condition()
    assert type(cond._lock) is type(threading_mod.RLock())
    with cond:
        with cond:
            assert cond._is_owned()
    assert not cond._is_owned()
    assert cond.acquire is not None and cond.release is not None
    assert cond.acquire()
    cond.release()


@pytest.mark.parametrize("kind", LOCK_KINDS)
def test_wait_timeout_and_notify_over_each_lock(threading_mod, kind):
    lock = make_lock(threading_mod, kind)
    cond = threading_mod.Condition(lock)
    if lock is not None:
        assert cond._lock is lock
    with cond:
        t0 = time.monotonic()
        assert cond.wait(0.05) is False
        assert time.monotonic() - t0 >= 0.04
        assert cond.wait(0) is False
        assert cond.wait(-1) is False
    got = []

    def waiter():
        with cond:
            got.append(cond.wait(10))

    threads = start_threads(threading_mod, waiter, 3)
    # Notify until all three have been woken (they may not all be waiting yet).
    deadline = time.monotonic() + 20
    while len(got) < 3 and time.monotonic() < deadline:
        with cond:
            cond.notify()
        time.sleep(0.01)
    join_all(threads)
    assert got == [True, True, True]
    if kind == "user":
        assert lock.acquires > 3  # the generic path went through the user's methods


@pytest.mark.parametrize("kind", LOCK_KINDS)
def test_wait_requires_the_lock(threading_mod, kind):
    cond = threading_mod.Condition(make_lock(threading_mod, kind))
    with pytest.raises(RuntimeError, match="cannot wait on un-acquired lock"):
        cond.wait()
    with pytest.raises(RuntimeError, match="cannot wait on un-acquired lock"):
        cond.wait(0.01)
    with pytest.raises(RuntimeError, match="cannot notify on un-acquired lock"):
        cond.notify()
    with pytest.raises(RuntimeError, match="cannot notify on un-acquired lock"):
        cond.notify_all()
    with pytest.raises(RuntimeError, match="cannot wait on un-acquired lock"):
        cond.wait_for(lambda: False, 0.01)
    # A true predicate needs no wait, hence no lock.
    assert cond.wait_for(lambda: 42) == 42


def test_rlock_recursion_is_restored_after_wait(threading_mod):
    lock = threading_mod.RLock()
    cond = threading_mod.Condition(lock)
    with cond:
        with cond:
            with cond:
                assert cond.wait(0.01) is False
                assert lock._is_owned()
            assert lock._is_owned()
        assert lock._is_owned()
    assert not lock._is_owned()
    # Fully released while waiting: another thread can take it.
    taken = []

    def other():
        with lock:
            taken.append(True)
        with cond:
            cond.notify()

    with cond:
        with cond:
            t = threading_mod.Thread(target=other)
            t.start()
            assert cond.wait_for(lambda: taken, 10)
    t.join()


def test_notify_n_wakes_exactly_n_of_10(threading_mod):
    cond = threading_mod.Condition()
    entered = [0]
    count = [0]

    def plain_waiter():
        with cond:
            entered[0] += 1
            if cond.wait(20):
                count[0] += 1

    threads = start_threads(threading_mod, plain_waiter, 10)
    wait_until(lambda: entered[0] == 10)
    with cond:
        pass  # all ten are now inside wait(): each entered under the lock and is released only by waiting
    with cond:
        cond.notify(3)
    wait_until(lambda: count[0] == 3)
    time.sleep(0.2)
    assert count[0] == 3
    with cond:
        cond.notify(0)
        cond.notify(-5)
    time.sleep(0.1)
    assert count[0] == 3
    with cond:
        cond.notify(4)
    wait_until(lambda: count[0] == 7)
    time.sleep(0.2)
    assert count[0] == 7
    with cond:
        cond.notify_all()
    join_all(threads)
    assert count[0] == 10


def test_notify_all_and_deprecated_alias(threading_mod):
    cond = threading_mod.Condition(threading_mod.Lock())
    threads, results = start_waiters(threading_mod, cond, 6)
    with cond:
        cond.notify_all()
    join_all(threads)
    assert results == [True] * 6
    threads, results = start_waiters(threading_mod, cond, 2)
    with cond:
        if sys.version_info >= (3, 10):
            with pytest.warns(DeprecationWarning, match="notifyAll"):
                cond.notifyAll()
        else:  # the alias was not deprecated yet
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                cond.notifyAll()
    join_all(threads)
    assert results == [True] * 2


def test_wait_for(threading_mod):
    cond = threading_mod.Condition()
    state = {"ready": False}

    def setter():
        time.sleep(0.1)
        with cond:
            state["ready"] = "yes"
            cond.notify_all()

    t = threading_mod.Thread(target=setter)
    t.start()
    with cond:
        assert cond.wait_for(lambda: state["ready"], 20) == "yes"
    t.join()
    calls = []

    def never():
        calls.append(1)
        return 0

    with cond:
        t0 = time.monotonic()
        assert cond.wait_for(never, 0.1) == 0
        assert time.monotonic() - t0 >= 0.09
        assert len(calls) >= 2
        calls.clear()
        assert cond.wait_for(never, 0) == 0
        assert cond.wait_for(never, -1) == 0
    with pytest.raises(ZeroDivisionError):
        with cond:
            cond.wait_for(lambda: 1 / 0)


def test_producer_consumer_200k(threading_mod):
    cond = threading_mod.Condition()
    items = collections.deque()
    total = 200_000
    producers, consumers = 4, 4
    per_producer = total // producers
    received = [[] for _ in range(consumers)]
    done = [0]

    def produce(base):
        for i in range(base, base + per_producer, 100):
            with cond:
                items.extend(range(i, i + 100))
                cond.notify(100)

    def consume(out):
        while True:
            with cond:
                while not items and done[0] < producers:
                    cond.wait()
                if not items:
                    return
                batch = [items.popleft() for _ in range(min(len(items), 50))]
            out.extend(batch)

    cons = [threading_mod.Thread(target=consume, args=(received[i],)) for i in range(consumers)]
    prods = [threading_mod.Thread(target=produce, args=(p * per_producer,)) for p in range(producers)]
    for t in cons + prods:
        t.start()
    join_all(prods, 60)
    with cond:
        done[0] = producers
        cond.notify_all()
    join_all(cons, 60)
    everything = sorted(x for r in received for x in r)
    assert everything == list(range(total))


def test_timeout_racing_notify_loses_nothing(threading_mod):
    """Waiters time out while being notified: every notify goes to a waiter that reports it."""
    cond = threading_mod.Condition()
    tokens = [0]
    consumed = [0]
    stop = [False]

    def consumer():
        while True:
            with cond:
                while tokens[0] == 0 and not stop[0]:
                    cond.wait(0.001)
                if tokens[0] == 0:
                    return
                tokens[0] -= 1
                consumed[0] += 1

    threads = start_threads(threading_mod, consumer, 4)
    for _ in range(2000):
        with cond:
            tokens[0] += 1
            cond.notify()
    wait_until(lambda: consumed[0] == 2000, 30)
    with cond:
        stop[0] = True
        cond.notify_all()
    join_all(threads)
    assert consumed[0] == 2000


@pytest.mark.skipif(not hasattr(signal, "SIGINT"), reason="needs SIGINT")
@pytest.mark.parametrize("kind", ["default", "Lock", "stdlib Lock", "user"])
def test_ctrl_c_interrupts_wait_and_lock_is_held(threading_mod, kind):
    lock = make_lock(threading_mod, kind)
    cond = threading_mod.Condition(lock)
    timer = interrupt_main_after(0.2)
    try:
        with cond:
            with pytest.raises(KeyboardInterrupt):
                cond.wait()
            assert cond._is_owned()
        if kind != "default":
            assert cond._lock.acquire(False)
            cond._lock.release()
    finally:
        timer.cancel()
        timer.join()


@pytest.mark.skipif(not hasattr(signal, "SIGINT"), reason="needs SIGINT")
def test_ctrl_c_does_not_lose_a_notification(threading_mod):
    """The interrupted main thread may have been notified: the other waiter still gets one."""
    cond = threading_mod.Condition()
    (t,), results = start_waiters(threading_mod, cond, 1)

    def notify_then_interrupt():
        with cond:
            cond.notify(2)  # both: the main thread and the other waiter
        os.kill(os.getpid(), signal.SIGINT)

    timer = std_threading.Timer(0.2, notify_then_interrupt)
    timer.start()
    try:
        with cond:
            cond.wait(20)
        time.sleep(10)  # if wait() returned first, the interrupt lands here
    except KeyboardInterrupt:
        pass
    timer.join()
    t.join(30)
    assert results == [True]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_fork_while_threads_wait(threading_mod):
    cond = threading_mod.Condition()
    threads, results = start_waiters(threading_mod, cond, 3)

    def child():
        # The child has no waiters: the lists of the parent's threads are gone.
        with cond:
            cond.notify_all()
            ok = cond.wait(0.01) is False
        got = notify_until_woken(threading_mod, cond, 10, join_timeout=10)
        assert ok and got == [True]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads (3.12+)
        run_in_fork(child)
    with cond:
        cond.notify_all()
    join_all(threads)
    assert results == [True, True, True]


def test_bad_input(threading_mod):
    cond = threading_mod.Condition()
    with pytest.raises(AttributeError):
        threading_mod.Condition(object())
    with pytest.raises(TypeError):
        threading_mod.Condition(None, None)
    with cond:
        with pytest.raises(TypeError):
            cond.wait("soon")
        with pytest.raises(OverflowError):
            cond.wait(1e300)
        with pytest.raises(TypeError):
            cond.wait(1, 2)
        assert cond.wait(float("nan")) is False
        assert cond._is_owned()
        cond.notify("x")  # no waiter: n is not even looked at
        with pytest.raises(TypeError):
            cond.wait_for()
        with pytest.raises(TypeError):
            cond.wait_for(lambda: False, "soon")
        with pytest.raises(TypeError):
            cond.notify(1, 2)
    with pytest.raises(RuntimeError):
        cond.release()
    assert repr(cond).startswith("<Condition(")


def test_repeat_does_not_leak(threading_mod):
    cond = threading_mod.Condition()
    user_cond = threading_mod.Condition(UserLock())

    def cycle():
        with cond:
            cond.wait(0)
            cond.notify()
            cond.wait_for(lambda: True)
        with user_cond:
            user_cond.wait(0)
            user_cond.notify_all()
        threading_mod.Condition(threading_mod.Lock())

    assert_no_memory_growth(cycle, repeat=20000, limit=200_000)


class FailingReleaseLock(UserLock):
    """release() fails once: wait() must withdraw cleanly, still holding the lock."""

    def __init__(self):
        super().__init__()
        self.fail_next = False

    def release(self):
        if self.fail_next:
            self.fail_next = False
            raise OSError("release failed")
        super().release()


def test_wait_when_the_lock_fails_to_release(threading_mod):
    lock = FailingReleaseLock()
    cond = threading_mod.Condition(lock)
    with cond:
        lock.fail_next = True
        with pytest.raises(OSError, match="release failed"):
            cond.wait(5)
        if threading_mod is not std_threading:
            # cconc withdraws the waiter; the stdlib leaves a stale one behind
            assert repr(cond).endswith(", 0)>")
        cond.notify()
    assert lock.acquire(False)
    lock.release()


def test_condition_over_a_condition(threading_mod):
    inner = threading_mod.Condition(threading_mod.Lock())
    outer = threading_mod.Condition(inner)
    assert notify_until_woken(threading_mod, outer, 20, join_timeout=30) == [True]


def test_subclass_wait_is_used_by_wait_for(threading_mod):
    calls = []

    class Counting(threading_mod.Condition):
        def wait(self, timeout=None):
            calls.append(timeout)
            return super().wait(timeout)

    cond = Counting()
    assert isinstance(cond, threading_mod.Condition)
    with cond:
        assert cond.wait_for(lambda: False, 0.05) is False
    assert calls and all(t is not None and t <= 0.05 for t in calls)
    calls.clear()
    flag = []

    def setter():
        time.sleep(0.05)
        with cond:
            flag.append(1)
            cond.notify()

    t = threading_mod.Thread(target=setter)
    t.start()
    with cond:
        assert cond.wait_for(lambda: flag, None) == [1]
    t.join()
    assert calls and all(c is None for c in calls)


@pytest.mark.parametrize("lock_kind", ["Lock", "RLock"])
def test_notified_waiter_whose_timeout_passes_while_the_lock_is_held(threading_mod, lock_kind):
    """notify() then keep the lock past the waiter's timeout: the waiter was
    notified, so wait() returns True once it has the lock back (and an RLock's
    recursion level is restored)."""
    lock = getattr(threading_mod, lock_kind)()
    cond = threading_mod.Condition(lock)
    result, waiting = [], threading_mod.Event()

    def waiter():
        with cond:
            if lock_kind == "RLock":
                lock.acquire()  # recursion level 2 while waiting
            waiting.set()
            result.append(cond.wait(timeout=0.2))
            if lock_kind == "RLock":
                result.append(lock._is_owned())
                lock.release()
                result.append(lock._is_owned())  # still held once: level restored to 2

    t = start_thread(waiter)
    assert waiting.wait(30)
    with cond:
        cond.notify()
        time.sleep(0.5)  # past the waiter's timeout, holding the lock
    t.join(30)
    assert result == ([True] if lock_kind == "Lock" else [True, True, True])


def test_notify_all_hands_the_lock_to_each_waiter_in_turn(threading_mod):
    cond = threading_mod.Condition()
    inside, peak, woken = [0], [0], []
    ready = threading_mod.Semaphore(0)

    def waiter(i):
        with cond:
            ready.release()
            assert cond.wait(30)
            inside[0] += 1
            peak[0] = max(peak[0], inside[0])
            woken.append(i)
            inside[0] -= 1

    threads = [start_thread(waiter, i) for i in range(6)]
    for _ in threads:
        assert ready.acquire(timeout=30)
    with cond:
        cond.notify_all()
        time.sleep(0.05)
        assert woken == []  # none runs while the notifier holds the lock
    for t in threads:
        t.join(30)
    assert sorted(woken) == list(range(6)) and peak[0] == 1


def test_notify_all_calls_overridden_notify(threading_mod):
    """The stdlib's notify_all is self.notify(len(self._waiters)); since 3.10
    notifyAll calls self.notify_all()."""
    calls = []

    class Tracked(threading_mod.Condition):
        def notify(self, n=1):
            calls.append(("notify", n))
            return super().notify(n)

        def notify_all(self):
            calls.append(("notify_all",))
            return super().notify_all()

    cond = Tracked(threading_mod.Lock())
    threads, results = start_waiters(threading_mod, cond, 3)
    with cond:
        cond.notify_all()
    join_all(threads)
    assert results == [True] * 3
    assert calls == [("notify_all",), ("notify", 3)]
    calls.clear()
    with cond:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            cond.notifyAll()
    if sys.version_info >= (3, 10):
        assert calls == [("notify_all",), ("notify", 0)]
    else:  # notifyAll = notify_all: Condition's own, which still calls self.notify
        assert calls == [("notify", 0)]
    with pytest.raises(RuntimeError):
        cond.notify_all()  # the ownership check is notify's
