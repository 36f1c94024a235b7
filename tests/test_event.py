"""Event: the same tests on threading and cconc.threading."""
import sys
import time
import warnings

import pytest

from helpers import SLACK, assert_interrupted, join_all, run_in_fork, start_thread, wait_until

pytestmark = pytest.mark.timeout(60)


def test_set_clear_is_set(threading_mod):
    e = threading_mod.Event()
    assert e.is_set() is False
    has_state_repr = type(e).__repr__ is not object.__repr__  # the stdlib's since 3.11
    assert not has_state_repr or "unset" in repr(e)
    e.set()
    assert e.is_set() is True
    assert not has_state_repr or repr(e).endswith(": set>")
    assert e.wait() is True
    assert e.wait(0) is True
    e.clear()
    assert e.is_set() is False
    if sys.version_info >= (3, 10):
        with pytest.warns(DeprecationWarning, match="isSet"):
            assert e.isSet() is False
    else:  # the alias was not deprecated yet
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert e.isSet() is False


def test_wait_timeout(threading_mod):
    e = threading_mod.Event()
    assert e.wait(0) is False
    assert e.wait(-1) is False  # negative polls, as Condition.wait does
    start = time.monotonic()
    assert e.wait(0.1) is False
    assert 0.1 <= time.monotonic() - start < 0.1 + SLACK
    assert e.wait(timeout=0.001) is False
    assert e.wait(float("nan")) is False  # NaN > 0 is false: polls


def test_fifty_waiters_woken_by_one_set(threading_mod):
    e = threading_mod.Event()
    results, started = [], []

    def waiter():
        started.append(1)
        results.append(e.wait(60))

    threads = [start_thread(waiter) for _ in range(50)]
    wait_until(lambda: len(started) == 50)
    time.sleep(0.05)
    assert results == []
    e.set()
    for t in threads:
        t.join(30)
    assert results == [True] * 50


def test_set_then_clear_still_wakes(threading_mod):
    """A waiter woken by set() returns True even if clear() followed at once."""
    e = threading_mod.Event()
    results, started = [], []

    def waiter():
        started.append(1)
        results.append(e.wait(30))

    t = start_thread(waiter)
    wait_until(lambda: started)
    time.sleep(0.05)
    e.set()
    e.clear()
    t.join(30)
    assert results == [True]


def test_ping_pong(threading_mod):
    ping, pong = threading_mod.Event(), threading_mod.Event()
    n = 2000

    def partner():
        for _ in range(n):
            assert ping.wait(30)
            ping.clear()
            pong.set()

    t = start_thread(partner)
    for _ in range(n):
        ping.set()
        assert pong.wait(30)
        pong.clear()
    t.join(30)


@pytest.mark.parametrize("timeout, exc", [
    ("1", TypeError),
    (1e100, OverflowError),
])
def test_bad_timeouts(threading_mod, timeout, exc):
    e = threading_mod.Event()
    with pytest.raises(exc):
        e.wait(timeout)


def test_bad_arguments(threading_mod):
    with pytest.raises(TypeError):
        threading_mod.Event(1)
    e = threading_mod.Event()
    with pytest.raises(TypeError):
        e.wait(1, 2)
    with pytest.raises(TypeError):
        e.wait(bogus=1)
    with pytest.raises(TypeError):
        e.set(1)


def test_subclass(threading_mod):
    class Flag(threading_mod.Event):
        def __init__(self, name):
            super().__init__()
            self.name = name

    f = Flag("x")
    assert f.name == "x" and not f.is_set()
    f.set()
    assert f.wait(1)


def test_ctrl_c_interrupts_wait(threading_mod):
    e = threading_mod.Event()
    assert_interrupted(e.wait)
    assert_interrupted(lambda: e.wait(60))
    e.set()
    assert e.wait(0)


def test_signal_handler_that_does_not_raise_keeps_waiting(threading_mod):
    import os
    import signal

    calls = []
    old = signal.signal(signal.SIGUSR1, lambda *a: calls.append(1))
    try:
        e = threading_mod.Event()
        import threading as std
        std.Timer(0.05, os.kill, (os.getpid(), signal.SIGUSR1)).start()
        start = time.monotonic()
        assert e.wait(0.3) is False
        assert time.monotonic() - start >= 0.3  # the remaining time was still waited
        assert calls == [1]
    finally:
        signal.signal(signal.SIGUSR1, old)


def test_fork_while_threads_wait(threading_mod):
    e = threading_mod.Event()
    started = []

    def waiter():
        started.append(1)
        e.wait(60)

    threads = [start_thread(waiter) for _ in range(3)]
    wait_until(lambda: len(started) == 3)
    time.sleep(0.05)

    def child():
        assert not e.is_set()
        e.set()  # the parent's waiters do not exist here: must not crash
        assert e.wait(0)
        e.clear()
        fresh = threading_mod.Event()
        start_thread(fresh.set).join()
        assert fresh.wait(5)

    run_in_fork(child)
    assert not e.is_set()  # the child's set() did not reach the parent
    e.set()
    join_all(threads, 30)


def test_isSet_calls_overridden_is_set(threading_mod):
    class Tracked(threading_mod.Event):
        def is_set(self):
            return "overridden"

    e = Tracked()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        expected = "overridden" if sys.version_info >= (3, 10) else False
        assert e.isSet() == expected
