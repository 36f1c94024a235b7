"""The waiting core (src/park.c) through the primitives built on it: wake-ups
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
