"""cconc.futures against concurrent.futures: every test body runs on both (futures_mod)."""
import asyncio
import concurrent.futures as std_futures
import gc
import itertools
import logging
import os
import re
import subprocess
import sys
import textwrap
import threading
import time
import types
import weakref

import pytest

from helpers import interrupt_main_after, join_all, run_in_fork, start_threads, wait_until

pytestmark = pytest.mark.timeout(60)

LONG = 10  # generous: the machine is shared and noisy


# ---------------------------------------------------------------- Future


def test_is_a_stdlib_future(futures_mod):
    f = futures_mod.Future()
    assert isinstance(f, std_futures.Future)
    assert isinstance(f, futures_mod.Future)
    alias = futures_mod.Future[int]
    assert isinstance(alias, types.GenericAlias)
    assert alias.__origin__ is futures_mod.Future and alias.__args__ == (int,)
    f.tag = "user attribute"  # instances keep a __dict__
    assert f.tag == "user attribute"
    assert weakref.ref(f)() is f


def test_state_transitions_result(futures_mod):
    f = futures_mod.Future()
    assert (f.running(), f.done(), f.cancelled()) == (False, False, False)
    assert f.set_running_or_notify_cancel() is True
    assert (f.running(), f.done(), f.cancelled()) == (True, False, False)
    assert f.cancel() is False
    f.set_result(42)
    assert (f.running(), f.done(), f.cancelled()) == (False, True, False)
    assert f.result() == 42 and f.result(timeout=0) == 42
    assert f.exception() is None
    assert f.cancel() is False
    with pytest.raises(futures_mod.InvalidStateError, match=r"^FINISHED: <Future at 0x[0-9a-f]+ state=finished returned int>$"):
        f.set_result(1)
    with pytest.raises(futures_mod.InvalidStateError):
        f.set_exception(ValueError())
    with pytest.raises(RuntimeError, match="Future in unexpected state"):
        f.set_running_or_notify_cancel()
    assert f.result() == 42


def test_state_transitions_exception(futures_mod):
    f = futures_mod.Future()
    err = ValueError("boom")
    f.set_exception(err)  # straight from pending, as the stdlib allows
    assert f.done() and not f.cancelled() and not f.running()
    assert f.exception() is err and f.exception(0) is err
    with pytest.raises(ValueError, match="boom") as info:
        f.result()
    assert info.value is err
    with pytest.raises(futures_mod.InvalidStateError, match=r"^FINISHED: .* raised ValueError>$"):
        f.set_exception(err)


def test_state_transitions_cancel(futures_mod):
    f = futures_mod.Future()
    assert f.cancel() is True
    assert f.cancelled() and f.done() and not f.running()
    assert f.cancel() is True
    with pytest.raises(futures_mod.CancelledError):
        f.result()
    with pytest.raises(futures_mod.CancelledError):
        f.exception(timeout=5)
    with pytest.raises(futures_mod.InvalidStateError, match="^CANCELLED: "):
        f.set_result(1)
    assert f.set_running_or_notify_cancel() is False
    assert f.cancelled() and f.cancel() is True
    with pytest.raises(futures_mod.InvalidStateError, match="^CANCELLED_AND_NOTIFIED: "):
        f.set_exception(ValueError())
    with pytest.raises(RuntimeError):
        f.set_running_or_notify_cancel()


def test_unexpected_state_is_logged(futures_mod, caplog):
    f = futures_mod.Future()
    f.set_result(None)
    with caplog.at_level(logging.CRITICAL, logger="concurrent.futures"):
        with pytest.raises(RuntimeError):
            f.set_running_or_notify_cancel()
    assert [r.getMessage() for r in caplog.records] == [f"Future {id(f)} in unexpected state: FINISHED"]


def test_repr(futures_mod):
    f = futures_mod.Future()
    addr = "0x%x" % id(f)
    assert repr(f) == f"<Future at {addr} state=pending>"
    f.set_running_or_notify_cancel()
    assert repr(f) == f"<Future at {addr} state=running>"
    f.set_result([1])
    assert repr(f) == f"<Future at {addr} state=finished returned list>"
    g = futures_mod.Future()
    g.set_exception(KeyError())
    assert repr(g) == "<Future at 0x%x state=finished raised KeyError>" % id(g)
    h = futures_mod.Future()
    h.cancel()
    assert repr(h) == "<Future at 0x%x state=cancelled>" % id(h)
    n = futures_mod.Future()
    n.set_result(None)
    assert repr(n).endswith("state=finished returned NoneType>")


def test_set_exception_none(futures_mod):
    f = futures_mod.Future()
    f.set_exception(None)
    assert f.done() and f.exception() is None and f.result() is None


def test_callbacks_order_and_immediate(futures_mod):
    calls = []
    f = futures_mod.Future()
    for i in range(3):
        f.add_done_callback(lambda fut, i=i: calls.append((i, fut)))
    assert calls == []
    f.set_result(1)
    assert calls == [(0, f), (1, f), (2, f)]
    f.add_done_callback(lambda fut: calls.append(("late", fut)))
    assert calls[-1] == ("late", f)
    g = futures_mod.Future()
    g.add_done_callback(lambda fut: calls.append(("cancel", fut.cancelled())))
    g.cancel()
    assert calls[-1] == ("cancel", True)
    # a callback adding a callback to its (done) future: it runs at once
    h = futures_mod.Future()
    h.add_done_callback(lambda fut: fut.add_done_callback(lambda fut2: calls.append("nested")))
    h.set_exception(ValueError())
    assert calls[-1] == "nested"


def test_callback_error_is_logged(futures_mod, caplog):
    calls = []
    f = futures_mod.Future()

    def bad(fut):
        raise ZeroDivisionError("in callback")

    f.add_done_callback(bad)
    f.add_done_callback(calls.append)
    with caplog.at_level(logging.ERROR, logger="concurrent.futures"):
        f.set_result(3)
        f.add_done_callback(bad)  # immediate call, logged too
    assert calls == [f]
    assert len(caplog.records) == 2
    for record in caplog.records:
        assert record.name == "concurrent.futures"
        assert record.levelno == logging.ERROR
        assert record.getMessage() == "exception calling callback for %r" % f
        assert record.exc_info[0] is ZeroDivisionError
        assert "in callback" in caplog.text


class _Stop(BaseException):
    pass


def test_callback_base_exception_propagates(futures_mod):
    f = futures_mod.Future()
    calls = []

    def stop(fut):
        raise _Stop

    f.add_done_callback(stop)
    f.add_done_callback(calls.append)
    with pytest.raises(_Stop):
        f.set_result(1)
    assert f.done() and f.result() == 1


def test_result_timeouts(futures_mod):
    f = futures_mod.Future()
    for timeout in (0, -1, 0.05):
        t0 = time.monotonic()
        with pytest.raises(futures_mod.TimeoutError) as info:
            f.result(timeout=timeout)
        assert isinstance(info.value, std_futures.TimeoutError)
        # the builtin TimeoutError since 3.11, a class of its own before
        assert isinstance(info.value, TimeoutError) == (sys.version_info >= (3, 11))
        assert time.monotonic() - t0 < LONG
        with pytest.raises(futures_mod.TimeoutError):
            f.exception(timeout)
    with pytest.raises(TypeError):
        f.result(timeout="1")
    with pytest.raises(OverflowError):
        f.result(timeout=1e300)


def test_result_wakes_on_set_from_other_thread(futures_mod):
    f = futures_mod.Future()
    threading.Timer(0.05, f.set_result, ("late",)).start()
    assert f.result(timeout=LONG) == "late"
    g = futures_mod.Future()
    threading.Timer(0.05, g.set_exception, (KeyError("k"),)).start()
    assert isinstance(g.exception(), KeyError)
    h = futures_mod.Future()
    threading.Timer(0.05, h.cancel).start()
    with pytest.raises(futures_mod.CancelledError):
        h.result()


def test_many_threads_wait_one_future(futures_mod):
    f = futures_mod.Future()
    results = []
    threads = start_threads(threading, lambda: results.append(f.result(LONG)), 8)
    time.sleep(0.05)
    f.set_result("x")
    for t in threads:
        t.join()
    assert results == ["x"] * 8


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(), reason="needs the main thread")
def test_ctrl_c_in_result(futures_mod):
    f = futures_mod.Future()
    timer = interrupt_main_after(0.2)
    with pytest.raises(KeyboardInterrupt):
        f.result()
    timer.join()
    f.set_result(1)  # still usable
    assert f.result() == 1


# --------------------------------------------------------------- executor


def test_submit_many_none_lost(futures_mod):
    with futures_mod.ThreadPoolExecutor(4) as ex:
        fs = [ex.submit(pow, i, 2) for i in range(20_000)]
        assert [f.result() for f in fs] == [i * i for i in range(20_000)]
        assert all(isinstance(f, std_futures.Future) for f in fs[:10])


def test_submit_from_many_threads(futures_mod):
    results = []
    with futures_mod.ThreadPoolExecutor(3) as ex:

        def producer(base):
            fs = [ex.submit(lambda x: x, base + i) for i in range(2000)]
            results.extend(f.result() for f in fs)

        threads = [threading.Thread(target=producer, args=(k * 10_000,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert sorted(results) == sorted(k * 10_000 + i for k in range(4) for i in range(2000))


def test_submit_args_kwargs(futures_mod):
    def capture(*args, **kwargs):
        return args, kwargs

    with futures_mod.ThreadPoolExecutor(1) as ex:
        assert ex.submit(capture, 1, 2, fn=3, self=4).result() == ((1, 2), {"fn": 3, "self": 4})
        assert ex.submit(capture).result() == ((), {})
        with pytest.raises(TypeError):
            ex.submit()
        with pytest.raises(TypeError):
            ex.submit(fn=capture)
        bad = ex.submit(42)  # not callable: the call fails in the worker
        assert isinstance(bad.exception(timeout=LONG), TypeError)


def test_exception_propagated(futures_mod):
    def fail(x):
        raise ValueError(x)

    with futures_mod.ThreadPoolExecutor(2) as ex:
        f = ex.submit(fail, "bad")
        exc = f.exception(timeout=LONG)
        assert type(exc) is ValueError and exc.args == ("bad",)
        assert exc.__traceback__ is not None
        with pytest.raises(ValueError, match="bad"):
            f.result()
        g = ex.submit(sys.exit, 3)  # BaseExceptions are captured too
        assert isinstance(g.exception(timeout=LONG), SystemExit)
        assert ex.submit(int, "7").result() == 7  # the worker survived


def test_map(futures_mod):
    with futures_mod.ThreadPoolExecutor(3) as ex:
        assert list(ex.map(pow, range(10), range(5))) == [pow(a, b) for a, b in zip(range(10), range(5))]
        assert list(ex.map(str, [])) == []
        it = ex.map(lambda x: 1 / x, [1, 0, 2])
        assert next(it) == 1.0
        with pytest.raises(ZeroDivisionError):
            next(it)
        with pytest.raises(TypeError):
            ex.map(str, 5)


def test_map_timeout(futures_mod):
    with futures_mod.ThreadPoolExecutor(2) as ex:
        results = []
        with pytest.raises(futures_mod.TimeoutError):
            for r in ex.map(time.sleep, [0, 0, 3], timeout=0.5):
                results.append(r)
        assert results == [None, None]


def test_map_buffersize(futures_mod):
    with futures_mod.ThreadPoolExecutor(2) as ex:
        if sys.version_info < (3, 14) and futures_mod is std_futures:
            pytest.skip("buffersize is new in Python 3.14")
        with pytest.raises(ValueError, match=r"buffersize must be None or > 0"):
            ex.map(str, range(3), buffersize=0)
        with pytest.raises(ValueError):
            ex.map(str, range(3), buffersize=-1)
        with pytest.raises(TypeError, match="buffersize must be an integer or None"):
            ex.map(str, range(3), buffersize=2.0)
        for size in (1, 2, 4, 10):
            assert list(ex.map(str, range(4), buffersize=size)) == ["0", "1", "2", "3"]
        assert list(ex.map(pow, range(5), range(3), buffersize=2)) == [1, 1, 4]
        consumed = []

        def source():
            for i in itertools.count():
                consumed.append(i)
                yield i

        it = ex.map(lambda x: x * 2, source(), buffersize=3)
        assert len(consumed) == 3  # read lazily
        assert [next(it) for _ in range(5)] == [0, 2, 4, 6, 8]
        assert len(consumed) <= 5 + 3
        it.close()


def test_shutdown_wait(futures_mod):
    ex = futures_mod.ThreadPoolExecutor(2)
    fs = [ex.submit(time.sleep, 0.05) for _ in range(4)]
    ex.shutdown(wait=True)
    assert all(f.done() for f in fs)
    assert not any(t.is_alive() for t in ex._threads)
    ex.shutdown()  # again: fine
    with pytest.raises(RuntimeError, match="^cannot schedule new futures after shutdown$"):
        ex.submit(print)


def test_shutdown_nowait(futures_mod):
    gate = threading.Event()
    ex = futures_mod.ThreadPoolExecutor(1)
    first = ex.submit(gate.wait, LONG)
    rest = [ex.submit(int, i) for i in range(5)]
    ex.shutdown(wait=False)
    assert not first.done()
    with pytest.raises(RuntimeError):
        ex.submit(print)
    gate.set()
    assert [f.result(timeout=LONG) for f in rest] == list(range(5))  # queued work still runs
    join_all(ex._threads, LONG)


def test_shutdown_cancel_futures(futures_mod):
    gate = threading.Event()
    ex = futures_mod.ThreadPoolExecutor(1)
    first = ex.submit(gate.wait, LONG)
    time.sleep(0.05)
    queued = [ex.submit(int, i) for i in range(5)]
    timer = threading.Timer(0.1, gate.set)
    timer.start()
    ex.shutdown(wait=True, cancel_futures=True)
    assert first.result() is True
    assert all(f.cancelled() for f in queued)
    timer.join()


@pytest.mark.parametrize("exc", [SystemExit, KeyboardInterrupt])
def test_shutdown_cancel_futures_callback_raises_base_exception(futures_mod, exc):
    # As the stdlib's get_nowait() loop: the futures before and at the failing
    # callback are cancelled, the error propagates, and the futures not reached
    # stay queued and run: none is left pending.
    gate = threading.Event()
    ex = futures_mod.ThreadPoolExecutor(1)
    first = ex.submit(gate.wait, LONG)
    # the worker holds `first` before shutdown (without a GIL it starts in parallel)
    wait_until(first.running)
    queued = [ex.submit(int, i) for i in range(10)]

    def boom(f):
        raise exc(7)

    queued[3].add_done_callback(boom)
    with pytest.raises(exc):
        ex.shutdown(wait=False, cancel_futures=True)
    gate.set()
    assert first.result(timeout=LONG) is True
    for f in queued[4:]:
        assert f.result(timeout=LONG) == queued.index(f)
    assert [f.cancelled() for f in queued] == [True] * 4 + [False] * 6
    assert all(f.done() for f in queued)
    ex.shutdown(wait=True)


def test_executor_context_manager(futures_mod):
    with futures_mod.ThreadPoolExecutor(2) as ex:
        f = ex.submit(time.sleep, 0.05)
    assert f.done()
    with pytest.raises(RuntimeError):
        ex.submit(print)


def test_bad_max_workers(futures_mod):
    for bad in (0, -1):
        with pytest.raises(ValueError, match="max_workers must be greater than 0"):
            futures_mod.ThreadPoolExecutor(bad)
    with pytest.raises(TypeError):
        futures_mod.ThreadPoolExecutor("4")
    with pytest.raises(TypeError, match="initializer must be a callable"):
        futures_mod.ThreadPoolExecutor(1, initializer=5)
    ex = futures_mod.ThreadPoolExecutor()
    assert ex._max_workers == min(32, (os.cpu_count() or 1) + 4)
    ex.shutdown()


def test_idle_thread_reused(futures_mod):
    with futures_mod.ThreadPoolExecutor(8) as ex:
        for i in range(20):
            assert ex.submit(int, i).result(timeout=LONG) == i
            time.sleep(0.002)
        assert len(ex._threads) == 1
    with futures_mod.ThreadPoolExecutor(3) as ex:
        gate = threading.Event()
        fs = [ex.submit(gate.wait, LONG) for _ in range(6)]
        assert len(ex._threads) == 3  # never more than max_workers
        gate.set()
        assert all(f.result() for f in fs)


def test_initializer(futures_mod):
    seen = []

    def init(tag):
        seen.append((tag, threading.current_thread().name))

    with futures_mod.ThreadPoolExecutor(2, thread_name_prefix="ini", initializer=init, initargs=("x",)) as ex:
        assert ex.submit(int, 5).result() == 5
    assert seen and all(tag == "x" and name.startswith("ini_") for tag, name in seen)


def test_broken_initializer(futures_mod, caplog):
    def init():
        raise ValueError("init failed")

    gate = threading.Event()
    with caplog.at_level(logging.CRITICAL, logger="concurrent.futures"):
        ex = futures_mod.ThreadPoolExecutor(1, initializer=init)
        fs = [ex.submit(gate.wait)]  # queued before the first worker starts
        for f in fs:
            with pytest.raises(futures_mod.BrokenExecutor) as info:
                f.result(timeout=LONG)
            assert type(info.value) is std_futures.thread.BrokenThreadPool
        with pytest.raises(std_futures.thread.BrokenThreadPool, match="initializer failed"):
            ex.submit(print)
        ex.shutdown()
    assert any(r.getMessage() == "Exception in initializer:" and r.exc_info for r in caplog.records)


def test_thread_names(futures_mod, caplog):
    with futures_mod.ThreadPoolExecutor(2) as ex:
        name = ex.submit(lambda: threading.current_thread().name).result()
        assert re.fullmatch(r"ThreadPoolExecutor-\d+_0", name)
        assert name in {t.name for t in threading.enumerate()}
        assert ex.submit(lambda: threading.current_thread() in threading.enumerate()).result()
    with futures_mod.ThreadPoolExecutor(2, thread_name_prefix="pfx") as ex:
        # both calls must run at once, so on both threads (an Event set by
        # this thread could let one worker run both, the other still starting)
        both = threading.Barrier(2)
        fs = [ex.submit(lambda: (both.wait(LONG), threading.current_thread().name)[1]) for _ in range(2)]
        assert sorted(f.result() for f in fs) == ["pfx_0", "pfx_1"]
        log = logging.getLogger("cconc.test.threadname")
        handler = logging.Handler()
        records = []
        handler.emit = records.append
        log.addHandler(handler)
        try:
            ex.submit(log.warning, "hello").result()
        finally:
            log.removeHandler(handler)
        assert records[0].threadName.startswith("pfx_")
    # executor numbers are unique across executors
    a, b = futures_mod.ThreadPoolExecutor(1), futures_mod.ThreadPoolExecutor(1)
    na, nb = a.submit(lambda: threading.current_thread().name).result(), b.submit(lambda: threading.current_thread().name).result()
    assert na != nb
    a.shutdown(), b.shutdown()


def test_executor_collected_workers_leave(futures_mod):
    ex = futures_mod.ThreadPoolExecutor(2)
    assert ex.submit(int, 1).result() == 1
    threads = list(ex._threads)
    ref = weakref.ref(ex)
    del ex
    gc.collect()
    assert ref() is None
    join_all(threads, LONG)


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(), reason="needs the main thread")
def test_ctrl_c_in_shutdown_wait(futures_mod):
    gate = threading.Event()
    ex = futures_mod.ThreadPoolExecutor(1)
    f = ex.submit(gate.wait, LONG)
    timer = interrupt_main_after(0.2)
    with pytest.raises(KeyboardInterrupt):
        ex.shutdown(wait=True)
    timer.join()
    gate.set()
    assert f.result(timeout=LONG) is True
    ex.shutdown()


def test_asyncio(futures_mod):
    async def main():
        loop = asyncio.get_running_loop()
        with futures_mod.ThreadPoolExecutor(2) as ex:
            assert await loop.run_in_executor(ex, pow, 2, 10) == 1024
            assert await asyncio.wrap_future(ex.submit(pow, 3, 3)) == 27
            with pytest.raises(ZeroDivisionError):
                await loop.run_in_executor(ex, lambda: 1 / 0)
            f = futures_mod.Future()
            loop.call_later(0.01, f.set_result, "done")
            assert await asyncio.wrap_future(f) == "done"
            # cancelling the asyncio side cancels the concurrent future
            gate = threading.Event()
            blockers = [ex.submit(gate.wait, LONG) for _ in range(2)]  # both workers busy
            pending = ex.submit(int, 1)
            wrapped = asyncio.wrap_future(pending)
            wrapped.cancel()
            await asyncio.sleep(0.05)
            gate.set()
            assert pending.cancelled()
            assert all(b.result(timeout=LONG) for b in blockers)
            loop.set_default_executor(ex)
            assert await loop.run_in_executor(None, int, "5") == 5

    asyncio.run(main())


def test_fork(futures_mod):
    if not hasattr(os, "fork"):
        pytest.skip("no fork")
    with futures_mod.ThreadPoolExecutor(2) as ex:
        assert ex.submit(int, 1).result() == 1

        def child():
            with futures_mod.ThreadPoolExecutor(2) as child_ex:
                fs = [child_ex.submit(pow, i, 2) for i in range(100)]
                ok = [f.result(timeout=LONG) for f in fs] == [i * i for i in range(100)]
            f = futures_mod.Future()
            threading.Timer(0.01, f.set_result, (7,)).start()
            assert ok and f.result(timeout=LONG) == 7

        run_in_fork(child)
        assert ex.submit(int, 2).result() == 2


def test_interpreter_exit_with_queued_tasks(futures_mod):
    script = textwrap.dedent(
        f"""
        import sys, time, threading
        import {futures_mod.__name__} as futures
        done = []
        ex = futures.ThreadPoolExecutor(1)
        fs = [ex.submit(lambda i=i: (time.sleep(0.002), done.append(i))) for i in range(200)]
        import atexit
        atexit.register(lambda: sys.stderr.write("ran %d\\n" % len(done)))
        print("exiting", flush=True)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                          cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "exiting\n"
    assert "ran 200" in proc.stderr  # the queued tasks were run before exit


def test_submit_during_interpreter_exit(futures_mod):
    script = textwrap.dedent(
        f"""
        import sys, time
        import {futures_mod.__name__} as futures
        ex = futures.ThreadPoolExecutor(2)
        def late_submit():
            time.sleep(0.3)  # the main thread is exiting by now
            try:
                ex.submit(print, "accepted")
            except RuntimeError as e:
                print("refused:", e, flush=True)
        ex.submit(late_submit)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                          cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "refused: cannot schedule new futures after interpreter shutdown\n"


# ------------------------------------------------------ wait / as_completed


def _finished(mod, value=None, exc=None):
    f = mod.Future()
    if exc is not None:
        f.set_exception(exc)
    else:
        f.set_result(value)
    return f


def _cancelled(mod):
    f = mod.Future()
    f.cancel()
    f.set_running_or_notify_cancel()
    return f


def test_wait_done_sets(futures_mod):
    a, b = _finished(futures_mod, 1), _finished(futures_mod, exc=ValueError())
    c, p = _cancelled(futures_mod), futures_mod.Future()
    r = futures_mod.wait([a, b, c, a, a], timeout=LONG)
    assert r.done == {a, b, c} and r.not_done == set()
    assert r == (r.done, r.not_done) and type(r).__name__ == "DoneAndNotDoneFutures"
    r = futures_mod.wait([a, p], timeout=0.05)
    assert r.done == {a} and r.not_done == {p}
    r = futures_mod.wait([a, p], return_when=futures_mod.FIRST_COMPLETED)
    assert r.done == {a} and r.not_done == {p}
    r = futures_mod.wait([b, p], return_when=futures_mod.FIRST_EXCEPTION)
    assert r.done == {b} and r.not_done == {p}
    r = futures_mod.wait([a, p], return_when=futures_mod.FIRST_EXCEPTION, timeout=0.05)
    assert r.done == {a} and r.not_done == {p}
    r = futures_mod.wait([], timeout=0)
    assert r.done == set() and r.not_done == set()
    # a cancelled future the executor has not noticed is not done for wait()
    q = futures_mod.Future()
    q.cancel()
    r = futures_mod.wait([q], timeout=0.01)
    assert r.not_done == {q}


def test_wait_blocks_until(futures_mod):
    fs = [futures_mod.Future() for _ in range(4)]

    def later(delay, f, how):
        def go():
            time.sleep(delay)
            if how == "exc":
                f.set_exception(KeyError())
            elif how == "cancel":
                f.cancel()
                f.set_running_or_notify_cancel()
            else:
                f.set_result(how)
        t = threading.Thread(target=go)
        t.start()
        return t

    threads = [later(0.05, fs[0], 1), later(0.1, fs[1], "exc"), later(0.15, fs[2], "cancel")]
    r = futures_mod.wait(fs, return_when=futures_mod.FIRST_COMPLETED, timeout=LONG)
    assert fs[0] in r.done and fs[3] in r.not_done
    r = futures_mod.wait(fs, return_when=futures_mod.FIRST_EXCEPTION, timeout=LONG)
    assert {fs[0], fs[1]} <= r.done and fs[3] in r.not_done
    t0 = time.monotonic()
    r = futures_mod.wait(fs, return_when=futures_mod.ALL_COMPLETED, timeout=0.4)
    assert time.monotonic() - t0 >= 0.3
    assert r.done == set(fs[:3]) and r.not_done == {fs[3]}
    threads.append(later(0.05, fs[3], 4))
    r = futures_mod.wait(fs, timeout=LONG)
    assert r.done == set(fs) and not r.not_done
    for t in threads:
        t.join()


def test_wait_with_pool(futures_mod):
    with futures_mod.ThreadPoolExecutor(4) as ex:
        fs = [ex.submit(pow, i, 2) for i in range(5000)]
        r = futures_mod.wait(fs + fs[:10])
        assert r.done == set(fs) and not r.not_done
        gate = threading.Event()
        slow = ex.submit(gate.wait, LONG)
        fast = ex.submit(int, 1)
        r = futures_mod.wait([slow, fast], return_when=futures_mod.FIRST_COMPLETED, timeout=LONG)
        assert r.done == {fast} and r.not_done == {slow}
        gate.set()


def test_wait_bad_input(futures_mod):
    p = futures_mod.Future()
    with pytest.raises(ValueError, match="Invalid return condition: 'bogus'"):
        futures_mod.wait([p], return_when="bogus", timeout=0)
    done = _finished(futures_mod, 1)
    assert futures_mod.wait([done], return_when="bogus").done == {done}  # the stdlib does not look
    with pytest.raises(TypeError):
        futures_mod.wait(5)
    with pytest.raises(TypeError):
        futures_mod.wait([[1]])  # unhashable
    with pytest.raises(AttributeError):
        futures_mod.wait([1])
    with pytest.raises(TypeError):
        futures_mod.wait([p], timeout="1")
    assert futures_mod.wait([p], timeout=-1).not_done == {p}
    with pytest.raises(OverflowError):
        futures_mod.wait([p], timeout=1e300)
    with pytest.raises(TypeError):
        p.result(1, 2)
    with pytest.raises(TypeError):
        p.add_done_callback()
    # a waiter left nothing behind: p still completes normally
    p.set_result(1)
    assert futures_mod.wait([p]).done == {p}


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(), reason="needs the main thread")
def test_ctrl_c_in_wait(futures_mod):
    p = futures_mod.Future()
    timer = interrupt_main_after(0.2)
    with pytest.raises(KeyboardInterrupt):
        futures_mod.wait([p])
    timer.join()
    p.set_result(1)
    assert futures_mod.wait([p], timeout=LONG).done == {p}


def test_as_completed_order(futures_mod):
    done_before = _finished(futures_mod, "early")
    fs = [futures_mod.Future() for _ in range(3)]
    order = [2, 0, 1]

    def finisher():
        for i in order:
            time.sleep(0.03)
            fs[i].set_result(i)

    t = threading.Thread(target=finisher)
    t.start()
    got = list(futures_mod.as_completed(fs + [done_before, fs[0]], timeout=LONG))
    t.join()
    assert got[0] is done_before
    assert got[1:] == [fs[i] for i in order]


def test_as_completed_duplicates_and_done(futures_mod):
    a, b = _finished(futures_mod, 1), _cancelled(futures_mod)
    got = list(futures_mod.as_completed([a, b, a, b, a]))
    assert sorted(map(id, got)) == sorted([id(a), id(b)])
    assert list(futures_mod.as_completed([])) == []


def test_as_completed_timeout(futures_mod):
    a, p, q = _finished(futures_mod, 1), futures_mod.Future(), futures_mod.Future()
    it = futures_mod.as_completed([a, p, q, p], timeout=0.1)
    assert next(it) is a
    with pytest.raises(futures_mod.TimeoutError, match=r"^2 \(of 3\) futures unfinished$"):
        next(it)
    with pytest.raises(StopIteration):
        next(it)
    # after the timeout the futures carry no stale waiter
    p.set_result(1)
    q.set_result(2)
    assert futures_mod.wait([p, q], timeout=LONG).not_done == set()


def test_as_completed_is_lazy(futures_mod):
    it = futures_mod.as_completed([1], timeout="x")  # nothing checked before the first next()
    with pytest.raises(TypeError):
        next(it)
    it = futures_mod.as_completed([1])
    with pytest.raises(AttributeError):
        next(it)
    with pytest.raises(TypeError):
        futures_mod.as_completed(5).__next__()


def test_as_completed_with_pool(futures_mod):
    with futures_mod.ThreadPoolExecutor(4) as ex:
        fs = [ex.submit(pow, i, 2) for i in range(5000)]
        assert sorted(f.result() for f in futures_mod.as_completed(fs)) == [i * i for i in range(5000)]


def test_as_completed_abandoned(futures_mod):
    p, q = futures_mod.Future(), futures_mod.Future()
    it = futures_mod.as_completed([p, q])
    threading.Timer(0.02, p.set_result, (1,)).start()
    assert next(it) is p
    del it
    gc.collect()
    q.set_result(2)  # the waiter was taken off: nothing to notify, nothing leaked
    assert q.result() == 2


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(), reason="needs the main thread")
def test_ctrl_c_in_as_completed(futures_mod):
    p = futures_mod.Future()
    timer = interrupt_main_after(0.2)
    with pytest.raises(KeyboardInterrupt):
        for _ in futures_mod.as_completed([p]):
            pass
    timer.join()


def test_mixed_stdlib_and_native_futures(futures_mod):
    std_done, mine_done = _finished(std_futures, 1), _finished(futures_mod, 2)
    std_p, mine_p = std_futures.Future(), futures_mod.Future()
    r = futures_mod.wait([std_done, mine_done, std_p, mine_p], timeout=0.05)
    assert r.done == {std_done, mine_done} and r.not_done == {std_p, mine_p}
    threading.Timer(0.05, std_p.set_result, (3,)).start()
    threading.Timer(0.1, mine_p.set_exception, (KeyError(),)).start()
    r = futures_mod.wait([std_p, mine_p], return_when=futures_mod.FIRST_EXCEPTION, timeout=LONG)
    assert r.done == {std_p, mine_p}
    assert std_p._waiters == []  # the stdlib future's waiter was taken back
    a, b = std_futures.Future(), futures_mod.Future()
    threading.Timer(0.05, b.set_result, (1,)).start()
    threading.Timer(0.1, a.set_result, (2,)).start()
    assert list(futures_mod.as_completed([a, b, std_done], timeout=LONG)) == [std_done, b, a]
    assert a._waiters == []
    with futures_mod.ThreadPoolExecutor(2) as ex, std_futures.ThreadPoolExecutor(2) as std_ex:
        fs = [ex.submit(pow, i, 2) for i in range(100)] + [std_ex.submit(pow, i, 3) for i in range(100)]
        assert sorted(f.result() for f in futures_mod.as_completed(fs)) == sorted(
            [i ** 2 for i in range(100)] + [i ** 3 for i in range(100)]
        )


def test_stdlib_wait_on_these_futures(futures_mod):
    # Code that keeps calling concurrent.futures.wait/as_completed must work
    # with the futures of a cconc executor (the stdlib's protocol: _condition,
    # _state, _waiters).
    with futures_mod.ThreadPoolExecutor(4) as ex:
        for _ in range(3):
            fs = [ex.submit(pow, i, 2) for i in range(3000)]
            r = std_futures.wait(fs, timeout=LONG)
            assert r.done == set(fs) and not r.not_done
            fs = [ex.submit(pow, i, 2) for i in range(3000)]
            got = [f.result() for f in std_futures.as_completed(fs, timeout=LONG)]
            assert sorted(got) == [i * i for i in range(3000)]
        gate = threading.Event()
        slow, fast = ex.submit(gate.wait, LONG), ex.submit(int, 1)
        r = std_futures.wait([slow, fast], return_when=std_futures.FIRST_COMPLETED, timeout=LONG)
        assert r.done == {fast} and r.not_done == {slow}
        gate.set()
        bad = ex.submit(lambda: 1 / 0)
        r = std_futures.wait([bad, ex.submit(gate.wait)], return_when=std_futures.FIRST_EXCEPTION, timeout=LONG)
        assert bad in r.done
    f = futures_mod.Future()
    f.cancel()
    threading.Timer(0.05, f.set_running_or_notify_cancel).start()
    assert list(std_futures.as_completed([f], timeout=LONG)) == [f]


def test_module_namespace(futures_mod):
    assert set(futures_mod.__all__) == set(std_futures.__all__)
    for name in ("CancelledError", "TimeoutError", "BrokenExecutor", "InvalidStateError", "Executor",
                 "FIRST_COMPLETED", "FIRST_EXCEPTION", "ALL_COMPLETED"):
        assert getattr(futures_mod, name) is getattr(std_futures, name)
    for name in futures_mod.__all__:
        assert hasattr(futures_mod, name)
    assert isinstance(futures_mod.ThreadPoolExecutor(1), std_futures.ThreadPoolExecutor)
    assert isinstance(futures_mod.ThreadPoolExecutor(1), futures_mod.Executor)


# ------------------------------------------------------------- re-entrancy


def test_callbacks_touching_their_future(futures_mod, caplog):
    f = futures_mod.Future()
    seen = []
    f.add_done_callback(lambda fut: seen.append(fut.result(timeout=0)))
    f.add_done_callback(lambda fut: fut.set_result("again"))  # InvalidStateError: logged
    f.add_done_callback(lambda fut: seen.append(fut.cancel()))
    with caplog.at_level(logging.ERROR, logger="concurrent.futures"):
        f.set_result("first")
    assert seen == ["first", False]
    assert f.result() == "first"
    assert len(caplog.records) == 1 and caplog.records[0].exc_info[0] is futures_mod.InvalidStateError


class _Tattler:
    """Runs code of its own when it is dropped."""

    def __init__(self, action):
        self.action = action

    def __del__(self):
        self.action()


def test_reentrant_executor(futures_mod):
    with futures_mod.ThreadPoolExecutor(4) as ex:
        later = []
        # callbacks submitting more work, from worker threads
        first = ex.submit(int, 1)
        first.add_done_callback(lambda fut: later.append(ex.submit(pow, fut.result(), 2)))
        first.result()
        for _ in range(100):
            if later:
                break
            time.sleep(0.01)
        assert later[0].result(timeout=LONG) == 1
        # results and arguments whose __del__ submits work
        dropped = []
        t = ex.submit(lambda obj: None, _Tattler(lambda: dropped.append(ex.submit(int, 5))))
        t.result()
        r = ex.submit(lambda: _Tattler(lambda: dropped.append(ex.submit(int, 6))))
        r.result()
        del r
        gc.collect()
        # A free-threaded build frees an object that another thread dropped
        # only once the thread that made it (the worker, here) runs Python
        # code again: have every worker run a task.
        everyone = threading.Barrier(4)
        list(ex.map(lambda _: everyone.wait(LONG), range(4)))
        for _ in range(200):
            if len(dropped) == 2:
                break
            time.sleep(0.01)
        assert sorted(f.result(timeout=LONG) for f in dropped) == [5, 6]
        # a task waiting for another task of the same pool
        inner = ex.submit(time.sleep, 0.02)
        assert ex.submit(lambda: inner.result(timeout=LONG)).result(timeout=LONG) is None
    # a task shutting its own executor down
    ex = futures_mod.ThreadPoolExecutor(2)
    own = ex.submit(lambda: ex.shutdown(wait=False))
    assert own.result(timeout=LONG) is None
    with pytest.raises(RuntimeError):
        ex.submit(print)
    ex.shutdown()


def test_cancel_and_complete_race(futures_mod):
    with futures_mod.ThreadPoolExecutor(2) as ex:
        fs = [ex.submit(int, i) for i in range(5000)]
        cancelled = [f for f in fs if f.cancel()]
        for f in fs:
            try:
                f.result(timeout=LONG)
            except futures_mod.CancelledError:
                assert f in cancelled
        r = futures_mod.wait(fs, timeout=LONG)
        assert r.done | r.not_done == set(fs)
        assert all(f.cancelled() for f in r.not_done)  # cancelled, never seen by a worker


# ----------------------------------------------------------------- cconc only


def test_no_growth_on_repeat():
    import tracemalloc

    import cconc.futures as futures

    def cycle(n):
        for _ in range(n):
            f = futures.Future()
            f.add_done_callback(lambda fut: None)
            f.set_result(object())
            f.result()
            g = futures.Future()
            g.set_exception(ValueError("x"))
            try:
                g.result()
            except ValueError:
                pass
            futures.wait([f, g])
            list(futures.as_completed([f, g]))
            p, sp = futures.Future(), std_futures.Future()
            futures.wait([p, sp, f], timeout=0)
            it = futures.as_completed([p, sp, g], timeout=0)
            next(it)
            try:
                next(it)
            except futures.TimeoutError:
                pass
            std_futures.wait([p, f], timeout=0)
            p.set_result(1)
            sp.set_result(2)
            futures.wait([p, sp], timeout=0)
        with futures.ThreadPoolExecutor(2) as ex:
            for f in [ex.submit(divmod, i, 3) for i in range(n)]:
                f.result()
            list(ex.map(abs, range(n), buffersize=8))

    cycle(2000)
    gc.collect()
    tracemalloc.start()
    try:
        cycle(2000)
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        cycle(10000)
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert after - before < 200_000, after - before
