"""Lock and RLock: the same tests on threading and cconc.threading."""
import gc
import pickle
import sys
import threading as std_threading
import time
import weakref

import pytest

from helpers import SLACK, assert_interrupted, join_all, run_in_fork, start_thread, wait_until

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(params=["Lock", "RLock"])
def any_lock(request, threading_mod):
    return getattr(threading_mod, request.param)


# ------------------------------------------------------------------ basics

def test_acquire_release_locked(threading_mod):
    lock = threading_mod.Lock()
    assert not lock.locked()
    assert lock.acquire() is True
    assert lock.locked()
    assert lock.acquire(False) is False
    assert lock.acquire(blocking=False) is False
    assert lock.acquire(True, 0) is False
    assert lock.acquire(timeout=0.01) is False
    assert lock.release() is None
    assert not lock.locked()
    assert lock.acquire(blocking=True, timeout=1) is True
    lock.release()


def test_context_manager(any_lock):
    lock = any_lock()
    with lock as entered:
        assert entered is True
        assert "locked" in repr(lock) and "unlocked" not in repr(lock)
    assert "unlocked" in repr(lock)
    with pytest.raises(ZeroDivisionError):
        with lock:
            1 / 0
    assert lock.acquire(False)  # the exception released it
    lock.release()


def test_release_unlocked(threading_mod):
    with pytest.raises(RuntimeError, match="release unlocked lock"):
        threading_mod.Lock().release()


def test_lock_released_by_another_thread(threading_mod):
    lock = threading_mod.Lock()
    lock.acquire()
    start_thread(lock.release).join()
    assert not lock.locked()


def test_blocked_acquire_released_by_other_thread(any_lock):
    lock = any_lock()
    lock.acquire()
    got = []

    def waiter():
        got.append(lock.acquire(timeout=30))
        lock.release()

    t = start_thread(waiter)
    time.sleep(0.05)
    assert got == []
    lock.release()
    t.join(30)
    assert got == [True]


def test_timeout_honoured(any_lock):
    lock = any_lock()
    holder_ready = std_threading.Event()
    stop = std_threading.Event()

    def holder():
        with lock:
            holder_ready.set()
            stop.wait(30)

    t = start_thread(holder)
    holder_ready.wait(30)
    start = time.monotonic()
    assert lock.acquire(timeout=0.1) is False
    elapsed = time.monotonic() - start
    assert 0.1 <= elapsed < 0.1 + SLACK
    assert lock.acquire(blocking=False) is False
    stop.set()
    t.join()


def test_no_lost_updates_8_threads(threading_mod):
    lock = threading_mod.Lock()
    counter = [0]
    n = 100_000

    def worker():
        for _ in range(n):
            with lock:
                counter[0] += 1

    threads = [start_thread(worker) for _ in range(8)]
    for t in threads:
        t.join()
    assert counter[0] == 8 * n


def test_rlock_no_lost_updates_with_timeouts(threading_mod):
    lock = threading_mod.RLock()
    counter = [0]

    def worker():
        done = 0
        while done < 20_000:
            if lock.acquire(timeout=0.001):
                with lock:  # reentrant
                    counter[0] += 1
                lock.release()
                done += 1

    threads = [start_thread(worker) for _ in range(4)]
    for t in threads:
        t.join()
    assert counter[0] == 80_000


def test_waiters_are_not_starved_by_a_thread_that_retakes_the_lock(any_lock):
    """A thread re-acquires the lock right after each release while others wait
    in acquire(), with and without timeouts: every waiter gets the lock (cconc
    lets a running thread overtake a woken waiter, but hands the lock to one
    that has waited long), and the lock ends free with nobody left waiting."""
    lock = any_lock()
    stop = std_threading.Event()
    got = []

    def hammer():
        while not stop.is_set():
            with lock:
                pass

    def waiter(i):
        while not lock.acquire(timeout=0.05 if i % 2 else -1):
            pass
        got.append(i)
        lock.release()

    hammers = [start_thread(hammer) for _ in range(2)]
    waiters = [start_thread(waiter, i) for i in range(4)]
    join_all(waiters, timeout=30)
    stop.set()
    join_all(hammers)
    assert sorted(got) == [0, 1, 2, 3]
    assert lock.acquire(False)
    lock.release()


def test_weakref_and_no_pickle(any_lock):
    lock = any_lock()
    ref = weakref.ref(lock)
    assert ref() is lock
    with pytest.raises(TypeError):
        pickle.dumps(lock)
    del lock
    gc.collect()
    assert ref() is None


# ------------------------------------------------------------------- RLock

def test_rlock_reentrancy(threading_mod):
    lock = threading_mod.RLock()
    assert lock.acquire() and lock.acquire() and lock.acquire(False)
    assert lock._is_owned()
    assert "count=3" in repr(lock)
    lock.release()
    lock.release()
    assert lock._is_owned()
    lock.release()
    assert not lock._is_owned()
    assert "count=0" in repr(lock) and "owner=0" in repr(lock)


def test_rlock_ownership_errors(threading_mod):
    lock = threading_mod.RLock()
    with pytest.raises(RuntimeError, match="cannot release un-acquired lock"):
        lock.release()
    lock.acquire()
    errors = []

    def other():
        try:
            lock.release()
        except RuntimeError as e:
            errors.append(str(e))
        errors.append(lock._is_owned())
        errors.append(lock.acquire(False))

    start_thread(other).join()
    assert errors == ["cannot release un-acquired lock", False, False]
    lock.release()
    with pytest.raises(RuntimeError):
        lock._release_save()


def test_rlock_release_save_restore(threading_mod):
    lock = threading_mod.RLock()
    lock.acquire()
    lock.acquire()
    state = lock._release_save()
    assert state == (2, threading_mod.get_ident())
    assert not lock._is_owned()
    # another thread can take it meanwhile
    t = start_thread(lambda: lock.acquire() and lock.release())
    t.join()
    lock._acquire_restore(state)
    assert lock._is_owned()
    lock.release()
    lock.release()
    assert not lock._is_owned()
    with pytest.raises(TypeError):
        lock._acquire_restore(5)


def test_rlock_recursion_count(threading_mod):
    lock = threading_mod.RLock()
    if not hasattr(lock, "_recursion_count"):
        pytest.skip("no _recursion_count on this Python")
    assert lock._recursion_count() == 0
    with lock, lock:
        assert lock._recursion_count() == 2
        seen = []
        start_thread(lambda: seen.append(lock._recursion_count())).join()
        assert seen == [0]


def test_rlock_with_stdlib_condition(threading_mod):
    """The stdlib's Condition drives an RLock through the private protocol."""
    cond = std_threading.Condition(threading_mod.RLock())
    flag = []

    def notifier():
        with cond:
            flag.append(1)
            cond.notify()

    with cond, cond:
        start_thread(notifier)
        assert cond.wait_for(lambda: flag, timeout=30)


# --------------------------------------------------------------- bad input

@pytest.mark.parametrize("kwargs, exc", [
    ({"blocking": False, "timeout": 1}, ValueError),
    ({"timeout": -2}, ValueError),
    ({"timeout": -0.5}, ValueError),
    ({"timeout": 1e100}, OverflowError),
    ({"timeout": std_threading.TIMEOUT_MAX * 2}, OverflowError),
    ({"timeout": float("nan")}, ValueError),
    ({"timeout": "1"}, TypeError),
    ({"timeout": None}, TypeError),
    ({"bogus": 1}, TypeError),
])
def test_bad_acquire_arguments(any_lock, kwargs, exc):
    lock = any_lock()
    with pytest.raises(exc):
        lock.acquire(**kwargs)
    # nothing was taken by the failed call
    assert lock.acquire(False)
    lock.release()


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="since 3.12 `blocking` takes any truth value")
@pytest.mark.parametrize("blocking", ["yes", None, 1.5])
def test_blocking_must_be_an_int_before_312(any_lock, blocking):
    with pytest.raises(TypeError):
        any_lock().acquire(blocking)


@pytest.mark.skipif(sys.version_info < (3, 12), reason="before 3.12 `blocking` must be an int")
def test_blocking_takes_a_truth_value_since_312(any_lock):
    lock = any_lock()
    assert lock.acquire(blocking="yes") is True
    seen = []
    start_thread(lambda: seen.append(lock.acquire(blocking=None))).join()  # falsy: does not wait
    assert seen == [False]


def test_too_many_positional(any_lock):
    with pytest.raises(TypeError):
        any_lock().acquire(True, 1, 2)


def test_timeout_minus_one_waits_forever_and_int_timeouts(any_lock):
    lock = any_lock()
    assert lock.acquire(True, -1)
    lock.release()
    assert lock.acquire(timeout=1)  # int timeout
    lock.release()
    assert lock.acquire(1, 0.5)  # int blocking
    lock.release()


def test_timeout_max_accepted(any_lock):
    lock = any_lock()
    assert lock.acquire(timeout=std_threading.TIMEOUT_MAX)
    lock.release()


# ------------------------------------------------------------ Ctrl-C, fork

def test_ctrl_c_interrupts_lock_acquire(any_lock):
    lock = any_lock()
    start_thread(lock.acquire).join()  # held by a thread that is gone
    assert_interrupted(lock.acquire)
    assert_interrupted(lambda: lock.acquire(timeout=60))


def test_ctrl_c_leaves_lock_usable(threading_mod):
    lock = threading_mod.Lock()
    lock.acquire()
    assert_interrupted(lock.acquire)
    lock.release()
    assert lock.acquire(False)
    lock.release()


def test_fork_while_threads_wait(threading_mod):
    held = threading_mod.Lock()
    held.acquire()
    waiting = []

    def waiter():
        waiting.append(1)
        held.acquire()
        held.release()

    threads = [start_thread(waiter) for _ in range(3)]
    wait_until(lambda: len(waiting) == 3)
    time.sleep(0.05)

    def child():
        assert held.locked()  # a held lock stays held, as in the stdlib
        assert not held.acquire(timeout=0.01)
        held.release()  # a Lock may be released by anyone; no waiter exists here
        assert held.acquire(False)
        fresh, rfresh, ev = threading_mod.Lock(), threading_mod.RLock(), threading_mod.Event()
        with fresh, rfresh, rfresh:
            pass
        t = std_threading.Thread(target=lambda: (fresh.acquire(), ev.set()))
        t.start()
        assert ev.wait(10)
        t.join()
        assert fresh.locked()

    run_in_fork(child)
    held.release()
    join_all(threads, 30)
