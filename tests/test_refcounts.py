"""Repeated operations, including failing ones, must not grow memory."""
import pytest

from helpers import assert_no_memory_growth


def _raises(exc, fn, *args, **kwargs):
    def op():
        try:
            fn(*args, **kwargs)
        except exc:
            pass
        else:
            raise AssertionError("no exception")
    return op


def test_lock_operations(threading_mod):
    lock = threading_mod.Lock()

    def op():
        lock.acquire()
        lock.acquire(False)
        lock.release()
        lock.acquire(timeout=1)
        lock.release()
        with lock:
            lock.locked()
        repr(lock)

    assert_no_memory_growth(op)
    assert_no_memory_growth(_raises(RuntimeError, lock.release))
    assert_no_memory_growth(_raises(ValueError, lock.acquire, False, 1))
    assert_no_memory_growth(_raises(TypeError, lock.acquire, timeout="x"))
    assert_no_memory_growth(_raises(TypeError, lock.acquire, bogus=1))
    assert_no_memory_growth(lambda: threading_mod.Lock())


def test_rlock_operations(threading_mod):
    lock = threading_mod.RLock()

    def op():
        with lock, lock:
            lock._is_owned()
        lock.acquire()
        lock._acquire_restore(lock._release_save())
        lock.release()
        repr(lock)

    assert_no_memory_growth(op)
    assert_no_memory_growth(_raises(RuntimeError, lock.release))
    assert_no_memory_growth(_raises(RuntimeError, lock._release_save))
    assert_no_memory_growth(lambda: threading_mod.RLock())


def test_event_operations(threading_mod):
    event = threading_mod.Event()

    def op():
        event.set()
        event.wait()
        event.wait(0)
        event.clear()
        event.wait(0)
        event.is_set()

    assert_no_memory_growth(op)
    assert_no_memory_growth(_raises(TypeError, event.wait, "x"), repeat=5000)
    assert_no_memory_growth(lambda: threading_mod.Event())
