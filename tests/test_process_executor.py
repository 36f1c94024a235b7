"""ProcessPoolExecutor, differential: every test taking `futures_mod` runs on the
stdlib's concurrent.futures and on cconc.futures. Tests of what only cconc has
(3.14's map(buffersize=), terminate_workers(), kill_workers(); the exit code in
BrokenProcessPool's cause; Ctrl-C at exit) take the cconc side only.

The worker functions live at module level, so that they pickle by reference."""
import asyncio
import itertools
import multiprocessing
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import concurrent.futures as std_futures
from concurrent.futures.process import BrokenProcessPool, _RemoteTraceback

from helpers import (SLACK, assert_interrupted, interrupt_main_after, run_with_random_ctrl_c,
                     wait_for_file_unless_first, wait_until)

LONG = 60
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

pytestmark = pytest.mark.timeout(120)


def fork_ctx():
    return multiprocessing.get_context("fork")


def executor(futures_mod, workers=2, **kwargs):
    kwargs.setdefault("mp_context", fork_ctx())
    return futures_mod.ProcessPoolExecutor(workers, **kwargs)


# ------------------------------------------------------------ worker functions

def mul(a, b):
    return a * b


def raise_runtime(value):
    raise RuntimeError(value)  # the line the remote traceback shows


def sleep_then(seconds, value=None):
    time.sleep(seconds)
    return value


def die(code=3):
    os._exit(code)


def getpid_after(seconds=0.0):
    time.sleep(seconds)
    return os.getpid()


def return_lock():
    return threading.Lock()


class _Boom(Exception):
    pass


def _unpickle_error():
    raise pickle.UnpicklingError("cannot rebuild")


class ErrorAtUnpickle:
    def __reduce__(self):
        return _unpickle_error, ()


def return_error_at_unpickle():
    return ErrorAtUnpickle()


def identity(x):
    return x


def when_file_exists(path, value=None):
    while not os.path.exists(path):
        time.sleep(0.001)
    return value


INIT_STATE = "uninitialized"


def init_state(value):
    global INIT_STATE
    INIT_STATE = value


def get_init_state():
    return INIT_STATE


def init_fail():
    raise ValueError("error in initializer")


# ------------------------------------------------------------ the class

def test_class_and_futures(futures_mod):
    with executor(futures_mod) as ex:
        assert isinstance(ex, std_futures.ProcessPoolExecutor)
        assert isinstance(ex, std_futures.Executor)
        f = ex.submit(mul, 6, 7)
        assert f.result(timeout=LONG) == 42
        assert isinstance(f, futures_mod.Future)
        assert isinstance(f, std_futures.Future)
        assert f.done() and not f.running() and not f.cancelled()
        f = ex.submit(mul, b=3, a="x")
        assert f.result(timeout=LONG) == "xxx"


def test_bad_constructor_arguments(futures_mod):
    for bad in (0, -1):
        with pytest.raises(ValueError, match="max_workers must be greater than 0"):
            futures_mod.ProcessPoolExecutor(bad)
    with pytest.raises(TypeError, match="initializer must be a callable"):
        futures_mod.ProcessPoolExecutor(1, initializer=3)
    if sys.version_info < (3, 11) and futures_mod is std_futures:
        with pytest.raises(TypeError):  # cconc has 3.11's max_tasks_per_child on every version
            futures_mod.ProcessPoolExecutor(1, max_tasks_per_child=1)
        return
    with pytest.raises(TypeError, match="max_tasks_per_child must be an integer"):
        futures_mod.ProcessPoolExecutor(1, max_tasks_per_child=1.0)
    for bad in (0, -2):
        with pytest.raises(ValueError, match="max_tasks_per_child must be >= 1"):
            futures_mod.ProcessPoolExecutor(1, max_tasks_per_child=bad)
    with pytest.raises(ValueError, match="incompatible with the 'fork'"):
        futures_mod.ProcessPoolExecutor(1, mp_context=fork_ctx(), max_tasks_per_child=3)
    ex = futures_mod.ProcessPoolExecutor(1, max_tasks_per_child=3)
    assert ex._mp_context.get_start_method() == "spawn"
    ex.shutdown()


def test_default_max_workers(futures_mod):
    ex = futures_mod.ProcessPoolExecutor()
    count = getattr(os, "process_cpu_count", os.cpu_count)
    assert ex._max_workers == (count() or 1)
    ex.shutdown()


@pytest.mark.skipif(sys.version_info < (3, 11), reason="max_tasks_per_child is new in 3.11")
def test_max_tasks_per_child_replaces_the_worker(futures_mod):
    ex = futures_mod.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("forkserver"),
                                         max_tasks_per_child=2)
    try:
        first = [ex.submit(os.getpid).result(timeout=LONG) for _ in range(2)]
        assert first[0] == first[1]
        later = ex.submit(os.getpid).result(timeout=LONG)
        assert later != first[0]
        if futures_mod is not std_futures:  # the stdlib's can hang here (CPython gh-115634)
            # many quick calls at once: still at most 2 per worker
            pids = [f.result(timeout=LONG) for f in [ex.submit(os.getpid) for _ in range(16)]]
            assert max(pids.count(p) for p in set(pids)) <= 2
        # map counts one task per chunk, as the stdlib
        assert sorted(ex.map(mul, range(6), range(6), chunksize=3)) == [0, 1, 4, 9, 16, 25]
    finally:
        ex.shutdown()


def test_map(futures_mod):
    with executor(futures_mod) as ex:
        assert list(ex.map(mul, range(10), range(10))) == [i * i for i in range(10)]
        assert list(ex.map(mul, range(10), range(3))) == [0, 1, 4]
        assert list(ex.map(mul, [], [])) == []
        ref = [pow(i, i) for i in range(40)]
        for chunksize in (1, 6, 40, 50):
            assert list(ex.map(pow, range(40), range(40), chunksize=chunksize)) == ref
        with pytest.raises(ValueError, match=r"chunksize must be >= 1\."):
            ex.map(pow, range(4), range(4), chunksize=0)
        assert list(ex.map(identity, range(3000))) == list(range(3000))


def test_map_first_results_come_while_other_calls_run(futures_mod, tmp_path):
    # The first call ends at once, the others only once its result is in the
    # parent: a map that sent its calls in batches of several, whose results
    # come back together, would never let them end.
    flag = str(tmp_path / "first result in")
    deadline = time.time() + 30
    with executor(futures_mod) as ex:
        it = ex.map(wait_for_file_unless_first, range(40), [flag] * 40, [deadline] * 40)
        assert next(it) == 0
        open(flag, "w").close()
        assert list(it) == list(range(1, 40))


def test_map_exception_stops_at_the_failing_item(futures_mod):
    with executor(futures_mod) as ex:
        it = ex.map(raise_runtime_if_three, range(10))
        got = []
        with pytest.raises(RuntimeError, match="3"):
            for value in it:
                got.append(value)
        assert got == [0, 1, 2]
        # with chunks, the failing item's whole chunk is lost, as the stdlib's
        it = ex.map(raise_runtime_if_three, range(10), chunksize=2)
        got = []
        with pytest.raises(RuntimeError):
            for value in it:
                got.append(value)
        assert got == [0, 1]


def raise_runtime_if_three(x):
    if x == 3:
        raise RuntimeError(x)
    return x


def test_map_timeout(futures_mod):
    with executor(futures_mod) as ex:
        ex.submit(sleep_then, 0).result(timeout=LONG)  # the workers are up: the timeout is all the first call's
        # (timeout counts from the map() call: under load, a quick call can take a while)
        it = ex.map(sleep_then, [0, LONG], timeout=3)
        assert next(it) is None
        start = time.monotonic()
        with pytest.raises(std_futures.TimeoutError):
            next(it)
        assert time.monotonic() - start < 3 + SLACK
        ex.shutdown(wait=False, cancel_futures=True)


def test_remote_traceback(futures_mod):
    with executor(futures_mod) as ex:
        f = ex.submit(raise_runtime, 123)
        exc = f.exception(timeout=LONG)
        assert type(exc) is RuntimeError and exc.args == (123,)
        assert type(exc.__cause__) is _RemoteTraceback
        assert "raise RuntimeError(value)  # the line the remote traceback shows" in exc.__cause__.tb
        with pytest.raises(RuntimeError):
            f.result()
        # the executor goes on
        assert ex.submit(mul, 2, 3).result(timeout=LONG) == 6


def test_unpicklable_call(futures_mod):
    with executor(futures_mod) as ex:
        f = ex.submit(mul, threading.Lock(), 2)
        exc = f.exception(timeout=LONG)
        assert isinstance(exc, TypeError) and "pickle" in str(exc)
        assert type(exc.__cause__) is _RemoteTraceback
        f = ex.submit(lambda: 1)
        exc = f.exception(timeout=LONG)
        assert isinstance(exc, (pickle.PicklingError, AttributeError))
        assert ex.submit(mul, 2, 3).result(timeout=LONG) == 6
        with pytest.raises(TypeError):
            list(ex.map(mul, [threading.Lock()], [1]))
        assert list(ex.map(mul, [1, 2], [3, 4])) == [3, 8]


def test_unpicklable_result(futures_mod):
    with executor(futures_mod) as ex:
        f = ex.submit(return_lock)
        exc = f.exception(timeout=LONG)
        assert isinstance(exc, TypeError) and "pickle" in str(exc)
        assert type(exc.__cause__) is _RemoteTraceback
        assert ex.submit(mul, 2, 3).result(timeout=LONG) == 6
        it = ex.map(return_lock_if_two, range(5))
        assert [next(it), next(it)] == [0, 1]
        with pytest.raises(TypeError):
            next(it)


def return_lock_if_two(x):
    return threading.Lock() if x == 2 else x


def test_error_at_result_unpickle_breaks_the_executor(futures_mod):
    with executor(futures_mod) as ex:
        f = ex.submit(return_error_at_unpickle)
        with pytest.raises(BrokenProcessPool):
            f.result(timeout=LONG)
        with pytest.raises(BrokenProcessPool):
            ex.submit(mul, 1, 2)


def test_error_at_task_unpickle_breaks_the_executor(futures_mod):
    with executor(futures_mod) as ex:
        f = ex.submit(identity, ErrorAtUnpickle())
        with pytest.raises(BrokenProcessPool):
            f.result(timeout=LONG)


def test_worker_death_breaks_the_executor(futures_mod):
    ex = executor(futures_mod)
    try:
        slow = ex.submit(sleep_then, 3)
        f = ex.submit(die, 7)
        with pytest.raises(BrokenProcessPool, match="terminated abruptly"):
            f.result(timeout=LONG)
        with pytest.raises(BrokenProcessPool):
            slow.result(timeout=LONG)
        with pytest.raises(BrokenProcessPool, match="not usable anymore"):
            ex.submit(mul, 2, 8)
        assert ex._broken
    finally:
        ex.shutdown(wait=True)


FULL_RING_DEATH_PROGRAM = textwrap.dedent(
    """
    import os, sys
    sys.path.insert(0, {root!r})
    import importlib
    from concurrent.futures.process import BrokenProcessPool

    def crash(x):
        os._exit(1)

    if __name__ == "__main__":
        futures = importlib.import_module(sys.argv[1])
        with futures.ProcessPoolExecutor(2) as ex:
            # each call is larger than a cconc worker's task ring: the sender
            # waits for room that a dead worker never makes
            try:
                list(ex.map(crash, ["x" * (4 << 20)] * 10))
            except BrokenProcessPool:
                print("broken", flush=True)
    """
)


def test_worker_death_with_big_pending_calls(futures_mod, tmp_path):
    # under a watchdog: the bug was a send blocked forever on the dead
    # worker's full task ring
    if futures_mod.__name__ == "concurrent.futures" and sys.version_info < (3, 10):
        pytest.skip("the 3.9 stdlib raises BrokenProcessPool here, then hangs at interpreter exit")
    script = tmp_path / "full_ring.py"
    script.write_text(FULL_RING_DEATH_PROGRAM.format(root=ROOT))
    proc = subprocess.Popen([sys.executable, str(script), futures_mod.__name__], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail("the executor hung: %r %r" % (out, err))
    assert proc.returncode == 0, (out, err)
    assert out == "broken\n", (out, err)


class ExitAtPickle:
    def __reduce__(self):
        os._exit(5)


def return_exit_at_pickle():
    return ExitAtPickle()


def test_worker_death_while_pickling_a_result(futures_mod):
    ex = executor(futures_mod)
    try:
        f = ex.submit(return_exit_at_pickle)
        with pytest.raises(BrokenProcessPool):
            f.result(timeout=LONG)
        with pytest.raises(BrokenProcessPool):
            ex.submit(mul, 1, 2)
    finally:
        ex.shutdown(wait=True)


def test_dropped_executor_finishes_its_work(futures_mod):
    import gc
    import warnings

    ex = executor(futures_mod)
    fs = [ex.submit(sleep_then, 0.05, i) for i in range(6)]
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)
        del ex
        gc.collect()
        assert [f.result(timeout=LONG) for f in fs] == list(range(6))
        gc.collect()


def test_killed_idle_worker_breaks_the_executor(futures_mod):
    ex = executor(futures_mod)
    try:
        assert ex.submit(mul, 1, 1).result(timeout=LONG) == 1
        pid, proc = next(iter(ex._processes.items()))
        assert pid == proc.pid
        proc.terminate()
        wait_until(lambda: ex._broken, timeout=LONG)
        with pytest.raises(BrokenProcessPool):
            ex.submit(mul, 2, 8)
    finally:
        ex.shutdown(wait=True)


def test_cause_names_the_dead_process(cconc_futures):
    ex = executor(cconc_futures, workers=1)
    try:
        f = ex.submit(sleep_then, 30)
        wait_until(f.running, timeout=LONG)
        (pid,) = ex._processes
        os.kill(pid, signal.SIGKILL)
        exc = f.exception(timeout=LONG)
        assert isinstance(exc, BrokenProcessPool)
        assert str(pid) in str(exc.__cause__) and "SIGKILL" in str(exc.__cause__)
        assert isinstance(exc.__cause__, multiprocessing.ProcessError)
    finally:
        ex.shutdown(wait=True)


def test_failing_initializer(futures_mod):
    ex = executor(futures_mod, initializer=init_fail)
    try:
        try:
            f = ex.submit(get_init_state)
        except std_futures.BrokenExecutor:
            pass
        else:
            with pytest.raises(std_futures.BrokenExecutor):
                f.result(timeout=LONG)
        wait_until(lambda: ex._broken, timeout=LONG)
        with pytest.raises(BrokenProcessPool):
            ex.submit(get_init_state)
    finally:
        ex.shutdown(wait=True)


def test_initializer(futures_mod):
    with executor(futures_mod, initializer=init_state, initargs=("initialized",)) as ex:
        assert [ex.submit(get_init_state).result(timeout=LONG) for _ in range(4)] == ["initialized"] * 4


def test_submit_after_shutdown(futures_mod):
    ex = executor(futures_mod)
    ex.shutdown()
    with pytest.raises(RuntimeError, match="cannot schedule new futures after shutdown"):
        ex.submit(mul, 1, 2)
    with pytest.raises(RuntimeError, match="cannot schedule new futures after shutdown"):
        ex.map(mul, [1], [2])
    ex.shutdown()  # twice is fine


def test_shutdown_cancel_futures(futures_mod):
    ex = executor(futures_mod)
    fs = [ex.submit(sleep_then, 0.1) for _ in range(50)]
    ex.shutdown(cancel_futures=True)
    cancelled = [f for f in fs if f.cancelled()]
    assert len(cancelled) > 20
    for f in fs:
        assert f.done()
        if not f.cancelled():
            assert f.result() is None


def test_shutdown_without_wait_finishes_the_work(futures_mod):
    ex = executor(futures_mod)
    fs = [ex.submit(sleep_then, 0.05, i) for i in range(8)]
    ex.shutdown(wait=False)
    assert [f.result(timeout=LONG) for f in fs] == list(range(8))


def test_cancel_queued_future(futures_mod):
    with executor(futures_mod, workers=1) as ex:
        fs = [ex.submit(sleep_then, 0.2, i) for i in range(20)]
        assert fs[-1].cancel()
        assert fs[-1].cancelled()
        assert fs[0].result(timeout=LONG) == 0
        assert not fs[0].cancel()
        with pytest.raises(std_futures.CancelledError):
            fs[-1].result()
        for f in fs[1:-1]:
            f.cancel()


def test_wait_and_as_completed(futures_mod):
    with executor(futures_mod) as ex:
        fs = [ex.submit(sleep_then, 0.01 * (i % 3), i) for i in range(20)]
        assert sorted(f.result() for f in futures_mod.as_completed(fs, timeout=LONG)) == list(range(20))
        done, not_done = futures_mod.wait(fs, timeout=LONG)
        assert len(done) == 20 and not not_done
        slow = ex.submit(sleep_then, 5)
        done, not_done = futures_mod.wait([slow, fs[0]], return_when=futures_mod.FIRST_COMPLETED, timeout=LONG)
        assert done == {fs[0]}
        ex.shutdown(wait=False, cancel_futures=True)


def test_callbacks_run(futures_mod):
    with executor(futures_mod) as ex:
        seen = threading.Event()
        got = []
        f = ex.submit(mul, 4, 5)
        f.add_done_callback(lambda fut: (got.append(fut.result()), seen.set()))
        assert seen.wait(LONG) and got == [20]


def test_callbacks_not_run_by_the_waiting_caller(futures_mod, tmp_path):
    # cconc: a caller waiting in result() reads the pool's results itself,
    # and leaves the completion of futures with callbacks to the collector
    # (the stdlib runs them on its manager thread)
    with executor(futures_mod) as ex:
        where = []
        for i in range(10):
            go = tmp_path / ("go%d" % i)
            f = ex.submit(when_file_exists, str(go), i)
            f.add_done_callback(lambda fut: where.append(threading.current_thread()))
            go.touch()
            # a slower call without callbacks: waiting for it, the caller
            # reads the other's result first
            assert ex.submit(sleep_then, 0.005, i).result(LONG) == i
            assert f.result(LONG) == i
        wait_until(lambda: len(where) == 10)
        assert threading.current_thread() not in where


def test_ctrl_c_while_waiting_loses_no_result(futures_mod):
    # cconc: a caller waiting in result() may be reading the pool's results
    # itself; a Ctrl-C at any moment must drop none, its own or another's
    with executor(futures_mod) as ex:
        fs = []

        def submit_then_result(i):
            f = ex.submit(sleep_then, 0.004, i)
            fs.append(f)
            return lambda: f.result(LONG)

        interrupted = run_with_random_ctrl_c((submit_then_result(i) for i in range(60)), 0.008)
        assert interrupted > 0
        assert [f.result(LONG) for f in fs] == list(range(60))


def test_asyncio_run_in_executor_and_wrap_future(futures_mod):
    async def main(ex):
        loop = asyncio.get_running_loop()
        a = await loop.run_in_executor(ex, mul, 6, 7)
        b = await asyncio.wrap_future(ex.submit(mul, 2, 5))
        results = await asyncio.gather(*(loop.run_in_executor(ex, mul, i, 2) for i in range(10)))
        with pytest.raises(RuntimeError, match="7"):
            await loop.run_in_executor(ex, raise_runtime, 7)
        return a, b, results

    with executor(futures_mod) as ex:
        assert asyncio.run(main(ex)) == (42, 10, [i * 2 for i in range(10)])


def test_many_submits_from_threads(futures_mod):
    with executor(futures_mod) as ex:
        results = []

        def submitter(base):
            fs = [ex.submit(mul, base + i, 1) for i in range(200)]
            results.extend(f.result(timeout=LONG) for f in fs)

        threads = [threading.Thread(target=submitter, args=(k * 1000,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(LONG)
        assert sorted(results) == sorted(k * 1000 + i for k in range(4) for i in range(200))


# ------------------------------------------------------------ cconc only (3.14 and beyond)

@pytest.fixture
def cconc_futures():
    import cconc.futures

    if cconc.futures.ProcessPoolExecutor is std_futures.ProcessPoolExecutor:
        pytest.skip("cconc.futures.ProcessPoolExecutor is not the native one")
    return cconc.futures


def test_map_buffersize(cconc_futures):
    with executor(cconc_futures) as ex:
        with pytest.raises(ValueError, match=r"buffersize must be None or > 0"):
            ex.map(str, range(3), buffersize=0)
        with pytest.raises(TypeError, match="buffersize must be an integer or None"):
            ex.map(str, range(3), buffersize=2.0)
        for size in (1, 2, 3, 10):
            assert list(ex.map(identity, range(7), buffersize=size)) == list(range(7))
        consumed = []

        def endless():
            for i in itertools.count():
                consumed.append(i)
                yield i

        it = ex.map(mul, endless(), itertools.repeat(2), buffersize=4)
        assert [next(it) for _ in range(10)] == [i * 2 for i in range(10)]
        time.sleep(0.1)
        assert len(consumed) <= 10 + 4
        it.close()
        assert list(ex.map(mul, range(9), range(9), chunksize=2, buffersize=2)) == [i * i for i in range(9)]


def test_map_batches_with_chunksize_one(cconc_futures):
    with executor(cconc_futures) as ex:
        ex.submit(int).result(timeout=LONG)
        pool = ex._core.pool
        calls = []
        original = pool._submit_batch

        def counting(func, args, on_done):
            calls.append(len(args))
            return original(func, args, on_done)

        pool._submit_batch = counting
        assert list(ex.map(identity, range(1000))) == list(range(1000))
        # far fewer pool tasks than calls
        assert sum(calls) < 200


@pytest.mark.parametrize("how", ["terminate_workers", "kill_workers"])
def test_terminate_and_kill_workers(cconc_futures, how):
    ex = executor(cconc_futures)
    running = ex.submit(sleep_then, 30)
    queued = [ex.submit(sleep_then, 30) for _ in range(20)]
    wait_until(running.running, timeout=LONG)
    pids = list(ex._processes)
    start = time.monotonic()
    getattr(ex, how)()
    with pytest.raises(BrokenProcessPool):
        running.result(timeout=LONG)
    assert time.monotonic() - start < 5 + SLACK
    assert all(f.done() for f in queued)
    with pytest.raises(BrokenProcessPool):
        ex.submit(mul, 1, 1)
    ex.shutdown(wait=True)
    for pid in pids:
        wait_until(lambda: not _alive(pid), timeout=LONG)


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return done == 0


def test_terminate_workers_unstarted(cconc_futures):
    ex = executor(cconc_futures)
    ex.terminate_workers()
    with pytest.raises(RuntimeError):
        ex.submit(mul, 1, 1)


def test_ctrl_c_in_blocking_calls(cconc_futures):
    ex = executor(cconc_futures)
    try:
        slow = ex.submit(sleep_then, 30)
        assert_interrupted(slow.result)
        assert_interrupted(lambda: list(ex.map(sleep_then, [30, 30])))
        assert_interrupted(lambda: list(cconc_futures.as_completed([slow])))
        assert_interrupted(lambda: cconc_futures.wait([slow]))
        assert_interrupted(lambda: ex.shutdown(wait=True))
    finally:
        ex.kill_workers()
        ex.shutdown(wait=True)


EXIT_AFTER_CTRL_C = textwrap.dedent(
    """
    import os, signal, sys, threading, time
    sys.path.insert(0, {root!r})
    sys.path.insert(0, {tests!r})
    import cconc.futures as futures
    from test_process_executor import sleep_then
    {body}
    """
)


@pytest.mark.parametrize("body", [
    # a KeyboardInterrupt out of result(): the exit does not wait for the running call
    "ex = futures.ProcessPoolExecutor(2)\n"
    "f = ex.submit(sleep_then, 60)\n"
    "threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT)).start()\n"
    "f.result()\n",
    # ... nor out of a with-block
    "with futures.ProcessPoolExecutor(2) as ex:\n"
    "    fs = [ex.submit(sleep_then, 60) for _ in range(4)]\n"
    "    threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT)).start()\n"
    "    futures.wait(fs)\n",
])
def test_exit_right_after_ctrl_c(cconc_futures, body):
    code = EXIT_AFTER_CTRL_C.format(root=ROOT, tests=os.path.dirname(os.path.abspath(__file__)),
                                    body=body)
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=50)
    assert time.monotonic() - start < 20, proc.stdout
    assert "KeyboardInterrupt" in proc.stdout
    assert proc.returncode != 0
