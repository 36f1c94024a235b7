"""threading.Barrier, differential: stdlib and cconc."""
import os
import signal
import sys
import threading as std_threading
import time
import warnings

import pytest

from helpers import assert_no_memory_growth, interrupt_main_after, join_all, run_in_fork, start_threads, wait_until

pytestmark = pytest.mark.timeout(60)


def run_parties(threading_mod, count, target):
    results, errors = [], []

    def body():
        try:
            results.append(target())
        except BaseException as e:  # noqa: B902  (collected, checked by the test)
            errors.append(e)

    threads = start_threads(threading_mod, body, count)
    return threads, results, errors


def test_type_and_exception(threading_mod):
    assert threading_mod.BrokenBarrierError is std_threading.BrokenBarrierError
    if threading_mod is not std_threading:
        from cconc import _cconc

        assert threading_mod.Barrier is _cconc.Barrier
    b = threading_mod.Barrier(3, timeout=5)
    assert b.parties == 3
    assert b.n_waiting == 0
    assert b.broken is False
    if type(b).__repr__ is not object.__repr__:  # the stdlib's since 3.11
        assert "waiters=0/3" in repr(b)


def test_five_parties_hundred_rounds(threading_mod):
    parties, rounds = 5, 100
    actions = [0]
    barrier = threading_mod.Barrier(parties, action=lambda: actions.__setitem__(0, actions[0] + 1))
    log = []  # (round, index)
    phase = [0]
    mismatches = []

    def worker():
        for r in range(rounds):
            if phase[0] != r:
                mismatches.append((r, phase[0]))
            index = barrier.wait(20)
            log.append((r, index))
            if index == 0:
                phase[0] = r + 1
            barrier.wait(20)  # nobody starts round r+1 before phase is updated
        return True

    threads, results, errors = run_parties(threading_mod, parties, worker)
    join_all(threads, 60)
    assert errors == []
    assert results == [True] * parties
    assert mismatches == []
    assert actions[0] == 2 * rounds
    for r in range(rounds):
        assert sorted(i for rr, i in log if rr == r) == list(range(parties))
    assert not barrier.broken and barrier.n_waiting == 0


def test_abort_while_threads_wait(threading_mod):
    barrier = threading_mod.Barrier(4)
    threads, results, errors = run_parties(threading_mod, 3, lambda: barrier.wait(20))
    wait_until(lambda: barrier.n_waiting == 3)
    barrier.abort()
    join_all(threads)
    assert results == []
    assert len(errors) == 3
    assert all(isinstance(e, std_threading.BrokenBarrierError) for e in errors)
    assert barrier.broken
    if type(barrier).__repr__ is not object.__repr__:  # the stdlib's since 3.11
        assert "broken" in repr(barrier)
    with pytest.raises(std_threading.BrokenBarrierError):
        barrier.wait()
    barrier.reset()
    assert not barrier.broken
    threads, results, errors = run_parties(threading_mod, 4, lambda: barrier.wait(20))
    join_all(threads)
    assert sorted(results) == [0, 1, 2, 3] and errors == []


def test_reset_while_threads_wait(threading_mod):
    barrier = threading_mod.Barrier(3)
    threads, results, errors = run_parties(threading_mod, 2, lambda: barrier.wait(20))
    wait_until(lambda: barrier.n_waiting == 2)
    barrier.reset()
    join_all(threads)
    assert results == [] and len(errors) == 2
    assert all(isinstance(e, std_threading.BrokenBarrierError) for e in errors)
    assert not barrier.broken
    # Usable again right away.
    threads, results, errors = run_parties(threading_mod, 3, lambda: barrier.wait(20))
    join_all(threads)
    assert sorted(results) == [0, 1, 2] and errors == []


def test_action_that_raises_breaks_the_barrier(threading_mod):
    calls = []

    def action():
        calls.append(1)
        raise ZeroDivisionError("boom")

    barrier = threading_mod.Barrier(3, action=action)
    threads, results, errors = run_parties(threading_mod, 3, lambda: barrier.wait(20))
    join_all(threads)
    assert calls == [1]
    assert results == []
    kinds = sorted(type(e).__name__ for e in errors)
    assert kinds == ["BrokenBarrierError", "BrokenBarrierError", "ZeroDivisionError"]
    assert barrier.broken


def test_action_runs_once_per_round_before_release(threading_mod):
    seen = []
    barrier = threading_mod.Barrier(2, action=lambda: seen.append(barrier.n_waiting))
    threads, results, errors = run_parties(threading_mod, 2, lambda: barrier.wait(20))
    join_all(threads)
    assert sorted(results) == [0, 1] and errors == []
    assert seen == [2]  # called by the last arrival, while both count as waiting


def test_timeout_breaks_the_barrier(threading_mod):
    barrier = threading_mod.Barrier(3)
    threads, results, errors = run_parties(threading_mod, 1, lambda: barrier.wait(20))
    wait_until(lambda: barrier.n_waiting == 1)
    t0 = time.monotonic()
    with pytest.raises(std_threading.BrokenBarrierError):
        barrier.wait(0.1)
    assert time.monotonic() - t0 >= 0.09
    join_all(threads)
    assert barrier.broken
    assert len(errors) == 1 and isinstance(errors[0], std_threading.BrokenBarrierError)
    # The default timeout, given at construction.
    barrier = threading_mod.Barrier(2, timeout=0.05)
    with pytest.raises(std_threading.BrokenBarrierError):
        barrier.wait()
    assert barrier.broken
    barrier = threading_mod.Barrier(2, timeout=0.05)
    with pytest.raises(std_threading.BrokenBarrierError):
        barrier.wait(0)
    with pytest.raises(std_threading.BrokenBarrierError):
        threading_mod.Barrier(2).wait(-1)


def test_single_party(threading_mod):
    barrier = threading_mod.Barrier(1)
    assert [barrier.wait() for _ in range(3)] == [0, 0, 0]
    # The last arrival never looks at the timeout.
    assert barrier.wait("not a number") == 0


@pytest.mark.skipif(not hasattr(signal, "SIGINT"), reason="needs SIGINT")
def test_ctrl_c_interrupts_wait(threading_mod):
    barrier = threading_mod.Barrier(2)
    timer = interrupt_main_after(0.2)
    try:
        with pytest.raises(KeyboardInterrupt):
            barrier.wait()
    finally:
        timer.cancel()
        timer.join()
    # As in the stdlib, the interrupted party leaves without breaking the barrier.
    assert not barrier.broken
    assert barrier.n_waiting == 0
    threads, results, errors = run_parties(threading_mod, 2, lambda: barrier.wait(20))
    join_all(threads)
    assert sorted(results) == [0, 1]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_fork_while_threads_wait(threading_mod):
    barrier = threading_mod.Barrier(3)
    threads, results, errors = run_parties(threading_mod, 2, lambda: barrier.wait(20))
    wait_until(lambda: barrier.n_waiting == 2)
    def child():
        # The child inherits the count but not the waiting threads: it can
        # still abort and reset the barrier and use it again.
        barrier.abort()
        barrier.reset()
        other = threading_mod.Barrier(2)
        got = []
        t = threading_mod.Thread(target=lambda: got.append(other.wait(10)))
        t.start()
        mine = other.wait(10)
        t.join(10)
        assert sorted(got + [mine]) == [0, 1]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        run_in_fork(child)
    mine = barrier.wait(20)
    join_all(threads)
    assert errors == []
    assert sorted(results + [mine]) == [0, 1, 2]


def test_bad_input(threading_mod):
    with pytest.raises(TypeError):
        threading_mod.Barrier()
    with pytest.raises(TypeError):
        threading_mod.Barrier(2, None, None, None)
    barrier = threading_mod.Barrier(2)
    with pytest.raises(TypeError):
        barrier.wait(1, 2)
    with pytest.raises(TypeError):
        barrier.wait("soon")
    assert barrier.n_waiting == 0 and not barrier.broken
    with pytest.raises(OverflowError):
        barrier.wait(1e300)
    assert barrier.n_waiting == 0
    if sys.version_info >= (3, 13):
        with pytest.raises(ValueError):
            threading_mod.Barrier(0)


def test_repeat_does_not_leak(threading_mod):
    def cycle():
        b = threading_mod.Barrier(1, action=lambda: None)
        b.wait()
        b.reset()
        b.abort()
        try:
            b.wait()
        except std_threading.BrokenBarrierError:
            pass

    assert_no_memory_growth(cycle, repeat=20000, limit=200_000)


def test_action_calling_its_own_barrier(threading_mod):
    if threading_mod is std_threading:
        pytest.skip("the stdlib deadlocks here; cconc raises RuntimeError")
    barrier = threading_mod.Barrier(1, action=lambda: barrier.abort())
    with pytest.raises(RuntimeError, match="own action"):
        barrier.wait()
    assert barrier.broken  # an action that raises breaks the barrier
    barrier.reset()
    inner = threading_mod.Barrier(1, action=lambda: (inner.n_waiting, inner.broken, inner.parties))
    assert inner.wait() == 0  # reading the properties is fine


def test_action_releasing_the_gil_keeps_others_out(threading_mod):
    """While the action runs (and sleeps), reset() from another thread waits for it, as in the stdlib."""
    order = []

    def action():
        order.append("action start")
        time.sleep(0.2)
        order.append("action end")

    barrier = threading_mod.Barrier(1, action=action)

    def resetter():
        wait_until(lambda: order)
        barrier.reset()
        order.append("reset")

    t = threading_mod.Thread(target=resetter)
    t.start()
    assert barrier.wait() == 0
    t.join(30)
    assert order == ["action start", "action end", "reset"]


def test_falsy_action_is_not_called_and_truth_test_runs_locked(threading_mod):
    calls = []

    class Falsy:
        def __bool__(self):
            time.sleep(0.05)  # lets other threads run while the barrier decides
            return False

        def __call__(self):
            calls.append(1)

    barrier = threading_mod.Barrier(2, action=Falsy())
    threads, results, errors = run_parties(threading_mod, 3, lambda: barrier.wait(20))
    wait_until(lambda: len(results) >= 2)
    time.sleep(0.1)
    barrier.abort()
    join_all(threads)
    # Two pass the barrier; the third is left alone in the next round.
    assert sorted(results) == [0, 1]
    assert len(errors) == 1 and isinstance(errors[0], std_threading.BrokenBarrierError)
    assert calls == []
