"""multiprocessing.Pool: differential tests (the stdlib's Pool and cconc's run
the same bodies) and cconc-only tests (worker death as an error, the private
hooks, Ctrl-C, bounded imap). CPython's own pool tests: test_pool_cpython.py."""
import functools
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import threading
import time
import warnings

import pytest

from helpers import (SLACK, assert_interrupted, interrupt_main_after, run_with_random_ctrl_c,
                     wait_for_file_unless_first, wait_until)

import cconc.multiprocessing as cmp
from cconc.multiprocessing.pool import WorkerLostError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ------------------------------------------------------ task functions (picklable)


def sqr(x, wait=0.0):
    if wait:
        time.sleep(wait)
    return x * x


def add(a, b):
    return a + b


def raise_value_error(x):
    raise ValueError("bad %r" % (x,))


def fail_on_3(x):
    if x == 3:
        raise KeyError(x)
    return x


def fail_now_and_then(x):
    if x % 97 == 50:
        raise KeyError(x)
    return x


def unpicklable_result(x):
    return lambda: x


def exit_with(code):
    sys.exit(code)


def mib_of(n):
    return bytes([n]) * (n << 20)


def getpid(x=None, wait=0.02):
    time.sleep(wait)
    return os.getpid()


def die_on(x, target, how):
    if x == target:
        _die(how)
    time.sleep(0.005)
    return x


def _die(how):
    if how == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif how == "exit":
        os._exit(7)
    elif how == "segv":
        import ctypes
        import faulthandler

        faulthandler.disable()  # pytest's handler, inherited by a forked worker, would print a dump

        ctypes.string_at(0)
    time.sleep(5)


class DiesWhenPickled:
    def __reduce__(self):
        os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(5)


def result_that_kills_on_send(x):
    return DiesWhenPickled() if x == 0 else x


def init_die(how):
    _die(how)


_initialized = None


def init_set(value):
    global _initialized
    _initialized = value


def get_initialized(x):
    return _initialized


def endless():
    i = 0
    while True:
        yield i
        i += 1


# ------------------------------------------------------------- differential


@pytest.fixture
def pool_of(multiprocessing_mod):
    pools = []

    def make(*args, **kwds):
        p = multiprocessing_mod.Pool(*args, **kwds)
        pools.append(p)
        return p

    yield make
    for p in pools:
        p.terminate()
        p.join()


def test_apply_map_starmap(pool_of):
    p = pool_of(2)
    assert p.apply(sqr, (5,)) == 25
    assert p.apply(sqr, (), {"x": 3}) == 9
    assert p.map(sqr, range(100)) == [x * x for x in range(100)]
    assert p.map(sqr, range(100), chunksize=7) == [x * x for x in range(100)]
    assert p.map(sqr, range(50), 1) == [x * x for x in range(50)]
    assert p.map(sqr, iter(range(10))) == [x * x for x in range(10)]
    assert p.map(sqr, []) == []
    assert p.starmap(add, [(1, 2), (3, 4)]) == [3, 7]
    assert p.starmap(add, zip(range(10), range(10)), 3) == [2 * i for i in range(10)]
    assert p.map_async(sqr, range(5)).get(10) == [0, 1, 4, 9, 16]
    assert p.starmap_async(add, [(1, 1)]).get(10) == [2]


def test_results_larger_than_a_ring(pool_of):
    # A result ring holds 8 MiB: larger results stream through it while the
    # parent reads them (a caller reading for itself, or the collector).
    p = pool_of(2)
    assert p.apply_async(mib_of, (20,)).get(60) == mib_of(20)
    called = []
    r = p.apply_async(mib_of, (17,), callback=called.append)
    assert r.get(60) == mib_of(17)
    wait_until(lambda: called)
    assert called == [mib_of(17)]
    assert p.map(mib_of, [9, 10, 11, 12], chunksize=1) == [mib_of(n) for n in (9, 10, 11, 12)]
    assert [len(x) for x in p.imap_unordered(mib_of, [9, 10])] in ([9 << 20, 10 << 20], [10 << 20, 9 << 20])


def test_imap(pool_of):
    p = pool_of(2)
    assert list(p.imap(sqr, range(100))) == [x * x for x in range(100)]
    assert list(p.imap(sqr, range(100), chunksize=9)) == [x * x for x in range(100)]
    assert sorted(p.imap_unordered(sqr, range(100))) == [x * x for x in range(100)]
    assert sorted(p.imap_unordered(sqr, range(100), chunksize=9)) == [x * x for x in range(100)]
    assert list(p.imap(sqr, [])) == []
    it = p.imap(sqr, range(3))
    assert it.next(10) == 0 and next(it) == 1 and it.next() == 4
    with pytest.raises(StopIteration):
        it.next()
    with pytest.raises(ValueError):
        p.imap(sqr, range(3), chunksize=0)
    with pytest.raises(ValueError):
        p.imap_unordered(sqr, range(3), chunksize=-1)


def test_imap_shared_by_consumer_threads(cpool):
    # Results arrive a group at a time: every waiting consumer must still get
    # its item, and next() without a timeout never raises TimeoutError (the
    # stdlib's can, rarely, when another consumer took the item it was woken
    # for: so this test is cconc's only)
    p = cpool(2)
    for method in (p.imap, p.imap_unordered):
        it = method(sqr, range(2000))
        got = [[] for _ in range(4)]

        def consume(out):
            for x in it:
                out.append(x)

        threads = [threading.Thread(target=consume, args=(out,)) for out in got]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60 * SLACK)
        assert not any(t.is_alive() for t in threads)
        assert sorted(x for out in got for x in out) == [x * x for x in range(2000)]


def test_map_across_many_groups(pool_of):
    # (cconc's workers send a group of map tasks that all succeeded as their
    # values alone, and a group with a failed task as (ok, value) pairs)
    p = pool_of(2)
    for n, chunksize in ((3000, 1), (3003, 7), (60, 3)):
        expect = [x * x for x in range(n)]
        got, errs = [], []
        assert p.map_async(sqr, range(n), chunksize, callback=got.append).get(30) == expect
        wait_until(lambda: got)
        assert got == [expect]
        r = p.starmap_async(add, zip(range(n), range(n)), chunksize, callback=got.append)
        assert r.get(30) == [2 * x for x in range(n)]
        r = p.map_async(fail_now_and_then, range(n), chunksize, callback=got.append, error_callback=errs.append)
        with pytest.raises(KeyError) as info:
            r.get(30)
        assert info.value.args[0] % 97 == 50
        wait_until(lambda: errs)
        assert errs == [info.value] and len(got) == 2
    assert p.map(fail_now_and_then, range(50)) == list(range(50))


@pytest.mark.parametrize("method", ["imap", "imap_unordered"])
def test_imap_results_stream_while_other_tasks_run(pool_of, tmp_path, method):
    # The first task ends at once, the others only once its result is in the
    # parent: a pool that sent the tasks in one batch and its results back
    # only at the batch's end would never let them end.
    p = pool_of(2)
    flag = str(tmp_path / "first result in")
    deadline = time.time() + 30
    it = getattr(p, method)(functools.partial(wait_for_file_unless_first, path=flag, deadline=deadline), range(12))
    assert next(it) == 0
    open(flag, "w").close()
    assert sorted(it) == list(range(1, 12))


def test_map_over_range_slices(pool_of):
    p = pool_of(2)
    assert p.map(sqr, range(3, 1000, 7), chunksize=10) == [x * x for x in range(3, 1000, 7)]
    assert p.map(sqr, range(1000, 0, -3)) == [x * x for x in range(1000, 0, -3)]
    assert p.map(sqr, range(5), chunksize=100) == [x * x for x in range(5)]
    with pytest.raises(TypeError):
        p.starmap(add, range(5))


def test_imap_iterable_raises(pool_of):
    def gen():
        yield 1
        yield 2
        raise ZeroDivisionError("in the iterable")

    p = pool_of(2)
    it = p.imap(sqr, gen())
    assert next(it) == 1 and next(it) == 4
    with pytest.raises(ZeroDivisionError):
        next(it)
    with pytest.raises(StopIteration):
        next(it)


def test_errors_and_remote_traceback(pool_of, multiprocessing_mod):
    p = pool_of(2)
    with pytest.raises(ValueError, match="bad 1") as info:
        p.apply(raise_value_error, (1,))
    assert type(info.value.__cause__).__name__ == "RemoteTraceback"
    assert "raise_value_error" in str(info.value.__cause__)
    with pytest.raises(KeyError):
        p.map(fail_on_3, range(10), chunksize=1)
    r = p.map_async(fail_on_3, range(10))
    r.wait(10)
    assert r.ready() and not r.successful()
    it = p.imap(fail_on_3, range(6))
    assert [next(it) for _ in range(3)] == [0, 1, 2]
    with pytest.raises(KeyError):
        next(it)
    assert list(it) == [4, 5]


def test_unpicklable_result_and_arguments(pool_of, multiprocessing_mod):
    p = pool_of(2)
    with pytest.raises(multiprocessing_mod.pool.MaybeEncodingError) as info:
        p.apply(unpicklable_result, (1,))
    assert "Error sending result" in str(info.value)
    with pytest.raises(Exception):
        p.apply(sqr, (lambda: 1,))
    with pytest.raises(Exception):
        p.map(lambda x: x, range(3))
    for chunksize in (1, 3):
        # (cconc's worker sends a map group whose values do not pickle task by task)
        with pytest.raises(multiprocessing_mod.pool.MaybeEncodingError) as info:
            p.map(unpicklable_result, range(3, 10), chunksize)
        assert "Error sending result" in str(info.value)
    # the pool still works
    assert p.map(sqr, range(3)) == [0, 1, 4]


def test_callbacks(pool_of):
    p = pool_of(2)
    got, errs = [], []
    done = threading.Event()
    r = p.apply_async(sqr, (4,), callback=lambda v: (got.append(v), done.set()))
    assert r.get(10) == 16
    assert done.wait(10) and got == [16]
    r = p.apply_async(raise_value_error, (2,), error_callback=errs.append)
    with pytest.raises(ValueError):
        r.get(10)
    assert len(errs) == 1 and isinstance(errs[0], ValueError)
    r = p.map_async(sqr, range(4), callback=got.append)
    r.wait(10)
    assert got[-1] == [0, 1, 4, 9]
    r = p.map_async(fail_on_3, range(5), error_callback=errs.append)
    r.wait(10)
    assert isinstance(errs[-1], KeyError)


def test_async_result_api(pool_of, multiprocessing_mod):
    p = pool_of(1)
    r = p.apply_async(sqr, (3, 0.5))
    assert not r.ready()
    with pytest.raises(ValueError):
        r.successful()
    with pytest.raises(multiprocessing_mod.TimeoutError):
        r.get(0.01)
    r.wait(0.01)
    assert r.get(10) == 9 and r.ready() and r.successful()
    assert isinstance(r, multiprocessing_mod.pool.AsyncResult)
    it = p.imap(sqr, [(1)], 1)
    assert it.next(10) == 1
    it = p.imap(sqr, range(1))
    assert list(it) == [0]


def test_initializer(pool_of):
    p = pool_of(2, init_set, ("hello",))
    assert p.map(get_initialized, range(4)) == ["hello"] * 4


def test_maxtasksperchild(pool_of):
    p = pool_of(2, maxtasksperchild=2)
    pids = p.map(getpid, range(12), chunksize=1)
    assert len(set(pids)) >= 6
    assert [p.apply(sqr, (i,)) for i in range(5)] == [i * i for i in range(5)]


def test_close_join_terminate(pool_of):
    p = pool_of(2)
    r = p.map_async(sqr, range(20), chunksize=1)
    p.close()
    with pytest.raises(ValueError):
        p.apply(sqr, (1,))
    with pytest.raises(ValueError):
        p.map(sqr, [1])
    with pytest.raises(ValueError):
        p.imap(sqr, [1])
    p.join()
    assert r.get(0) == [x * x for x in range(20)]
    p2 = pool_of(2)
    with pytest.raises(ValueError):
        p2.join()
    p2.map_async(sqr, [0.2] * 10, chunksize=1)
    p2.terminate()
    p2.join()
    with pytest.raises(ValueError):
        p2.apply_async(sqr, (1,))


def test_context_manager_terminates(pool_of, multiprocessing_mod):
    with multiprocessing_mod.Pool(2) as p:
        assert p.map(sqr, range(3)) == [0, 1, 4]
    assert p._state == "TERMINATE"
    p.join()
    with pytest.raises(ValueError):
        with p:
            pass


def test_bad_arguments(multiprocessing_mod):
    with pytest.raises(ValueError, match="Number of processes must be at least 1"):
        multiprocessing_mod.Pool(0)
    if sys.version_info >= (3, 10) or multiprocessing_mod is cmp:
        # 3.9's stdlib accepts them and its workers then fail forever (a hang):
        # cconc raises 3.10's ValueError on every version
        with pytest.raises(ValueError, match="maxtasksperchild"):
            multiprocessing_mod.Pool(1, maxtasksperchild=0)
        with pytest.raises(ValueError, match="maxtasksperchild"):
            multiprocessing_mod.Pool(1, maxtasksperchild=1.5)
    with pytest.raises(TypeError, match="initializer must be a callable"):
        multiprocessing_mod.Pool(1, initializer=3)


def test_pickling_refused_and_resource_warning(multiprocessing_mod):
    p = multiprocessing_mod.Pool(1)
    try:
        with pytest.raises(NotImplementedError):
            pickle.dumps(p)
    finally:
        p.terminate()
        p.join()
    p = multiprocessing_mod.Pool(1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        del p
        import gc

        gc.collect()
    assert any(issubclass(w.category, ResourceWarning) for w in caught)


def test_context_pool_and_module_pool(multiprocessing_mod):
    ctx = multiprocessing_mod.get_context("fork")
    with ctx.Pool(1) as p:
        assert p.apply(sqr, (2,)) == 4
    assert isinstance(p, multiprocessing_mod.pool.Pool)


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_other_start_methods(multiprocessing_mod, method):
    ctx = multiprocessing_mod.get_context(method)
    with ctx.Pool(2, init_set, (method,)) as p:
        assert p.map(sqr, range(30), chunksize=1) == [x * x for x in range(30)]
        assert p.apply(get_initialized, (0,)) == method
        with pytest.raises(ValueError) as info:
            p.apply(raise_value_error, (1,))
        assert type(info.value.__cause__).__name__ == "RemoteTraceback"


# ------------------------------------------------------------- cconc only


@pytest.fixture
def cpool():
    pools = []

    def make(*args, **kwds):
        p = cmp.Pool(*args, **kwds)
        pools.append(p)
        return p

    yield make
    for p in pools:
        p.terminate()
        p.join()


def test_is_cconcs_pool():
    from cconc.multiprocessing import pool as cpool_mod
    import multiprocessing.pool as std_pool_mod

    assert cpool_mod is not std_pool_mod
    assert cmp.Pool is not None
    p = cmp.Pool(1)
    try:
        assert type(p) is cpool_mod.Pool
        assert isinstance(p.apply_async(sqr, (1,)), std_pool_mod.ApplyResult)
    finally:
        p.terminate()
        p.join()
    assert issubclass(WorkerLostError, cmp.ProcessError)


@pytest.mark.parametrize("how,code", [("kill", -signal.SIGKILL), ("exit", 7), ("segv", -signal.SIGSEGV)])
def test_worker_death_fails_its_tasks(cpool, how, code):
    lost = []
    p = cpool(2, _on_worker_lost=lambda pid, exitcode: lost.append((pid, exitcode)))
    before = set(p._worker_pids())
    start = time.monotonic()
    r = p.starmap_async(die_on, [(i, 5, how) for i in range(40)], chunksize=1)
    with pytest.raises(WorkerLostError) as info:
        r.get(30)
    assert time.monotonic() - start < 5 + SLACK
    err = info.value
    if how == "segv" and "libasan" in os.environ.get("LD_PRELOAD", ""):
        code = 1  # AddressSanitizer's SEGV handler reports and exits with 1
    assert err.exitcode == code and err.pid in before
    assert str(err.pid) in str(err)
    wait_until(lambda: len(lost) == 1)
    assert lost == [(err.pid, code)]
    # replaced, and still usable
    wait_until(lambda: len(p._worker_pids()) == 2)
    assert err.pid not in p._worker_pids()
    assert p.map(sqr, range(10)) == [x * x for x in range(10)]
    p.close()
    p.join()


def test_worker_death_other_tasks_complete(cpool):
    p = cpool(2)
    results = [p.apply_async(die_on, (i, 3, "kill")) for i in range(10)]
    outcomes = []
    for r in results:
        try:
            outcomes.append(r.get(30))
        except WorkerLostError:
            outcomes.append("lost")
    assert "lost" in outcomes
    assert outcomes[3] == "lost"
    assert all(o == i for i, o in enumerate(outcomes) if o != "lost")


def test_worker_death_while_sending_result(cpool):
    p = cpool(2)
    with pytest.raises(WorkerLostError):
        p.apply(result_that_kills_on_send, (0,))
    assert p.apply(result_that_kills_on_send, (1,)) == 1


def test_task_raising_a_base_exception_ends_its_worker(cpool):
    # as the stdlib's worker, which catches Exception only: SystemExit ends
    # the process (where the stdlib's pool then waits for the task forever)
    p = cpool(2)
    for code, exitcode in ((0, 0), (3, 3), ("bye", 1)):
        with pytest.raises(WorkerLostError) as info:
            p.apply_async(exit_with, (code,)).get(30)
        assert info.value.exitcode == exitcode
    assert p.map(sqr, range(10)) == [x * x for x in range(10)]


def test_worker_death_in_initializer_calls_hook():
    lost = []
    p = cmp.Pool(1, init_die, ("exit",), _on_worker_lost=lambda pid, code: lost.append(code))
    try:
        r = p.apply_async(sqr, (2,))
        with pytest.raises(WorkerLostError):
            r.get(30)
        wait_until(lambda: len(lost) >= 1)
        assert lost[0] == 7
    finally:
        p.terminate()
        p.join()


def test_error_callback_gets_worker_lost(cpool):
    p = cpool(1)
    errs = []
    r = p.apply_async(die_on, (0, 0, "kill"), error_callback=errs.append)
    r.wait(30)
    assert r.ready() and len(errs) == 1 and isinstance(errs[0], WorkerLostError)


def test_hooks_signal_and_pids(cpool):
    lost = []
    p = cpool(2, _on_worker_lost=lambda pid, code: lost.append((pid, code)))
    pids = p._worker_pids()
    assert len(pids) == 2 and all(isinstance(x, int) for x in pids)
    p._signal_workers(signal.SIGKILL)
    wait_until(lambda: len(lost) == 2)
    assert sorted(x[0] for x in lost) == sorted(pids)
    wait_until(lambda: len(p._worker_pids()) == 2)
    assert p.apply(sqr, (3,)) == 9


FULL_RING_DEATH_PROGRAM = textwrap.dedent(
    """
    import os, sys
    sys.path.insert(0, {root!r})
    import cconc.multiprocessing as mp
    from cconc.multiprocessing.pool import WorkerLostError

    def crash(x):
        os._exit(1)

    if __name__ == "__main__":
        with mp.get_context(sys.argv[1]).Pool(2) as p:
            # each task is larger than a worker's task ring: the sender waits
            # for room that a dead worker never makes
            for args in (dict(chunksize=None), dict(chunksize=1)):
                try:
                    p.map(crash, ["x" * (4 << 20)] * 10, **args)
                except WorkerLostError as e:
                    print("lost", e.exitcode, flush=True)
            r = p.map_async(crash, ["x" * (4 << 20)] * 6, chunksize=1)
            try:
                r.get(60)
            except WorkerLostError:
                print("lost async", flush=True)
            print(p.map(abs, [-1, -2]), flush=True)
    """
)


@pytest.mark.parametrize("method", ["fork", "forkserver"])
def test_worker_death_with_full_task_ring(tmp_path, method):
    # cconc only: the stdlib's Pool hangs on any worker death (gh-66587).
    # A program under a watchdog: the bug was a sender blocked forever on the
    # dead worker's full ring.
    script = tmp_path / "full_ring.py"
    script.write_text(FULL_RING_DEATH_PROGRAM.format(root=ROOT))
    proc = subprocess.Popen([sys.executable, str(script), method], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=60 + SLACK)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail("the pool hung: %r %r" % (out, err))
    assert proc.returncode == 0, (out, err)
    assert out.split("\n") == ["lost 1", "lost 1", "lost async", "[1, 2]", ""], (out, err)


PARENT_KILLED_PROGRAM = textwrap.dedent(
    """
    import os, signal, sys, time
    sys.path.insert(0, {root!r})
    import cconc.multiprocessing as mp

    def big_result(x):
        return b"x" * (1 << 20)

    if __name__ == "__main__":
        p = mp.get_context(sys.argv[1]).Pool(2)
        assert p.map(abs, range(-50, 0)) == list(range(50, 0, -1))
        print(*p._worker_pids(), flush=True)
        if sys.argv[2] == "full_result_ring":
            # the collector stops reading: the workers block on a full result ring
            p.map_async(big_result, range(100), chunksize=1)
            os.kill(os.getpid(), signal.SIGSTOP)
        time.sleep(120)
    """
)


def _state(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return None


def _running(pid):
    # a reparented worker that ended may stay a zombie until its new parent
    # reaps it: a zombie has ended
    return _state(pid) not in (None, "Z")


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="reads /proc")
@pytest.mark.parametrize("method,state", [("fork", "idle"), ("spawn", "idle"), ("forkserver", "idle"),
                                          ("fork", "full_result_ring"), ("forkserver", "full_result_ring")])
def test_workers_exit_when_parent_is_killed(tmp_path, method, state):
    # cconc only: the stdlib's workers wait forever on their task pipe (they
    # hold its write end themselves), so a SIGKILLed parent leaves them behind.
    script = tmp_path / "parent_killed.py"
    script.write_text(PARENT_KILLED_PROGRAM.format(root=ROOT))
    proc = subprocess.Popen([sys.executable, str(script), method, state], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    workers = []
    try:
        line = proc.stdout.readline()
        workers = [int(x) for x in line.split()]
        assert len(workers) == 2, (line, proc.stderr.read() if proc.poll() is not None else "")
        assert all(_running(pid) for pid in workers)
        if state == "full_result_ring":
            wait_until(lambda: _state(proc.pid) == "T", timeout=30)
            time.sleep(0.5)  # the workers fill the ring and block there
        proc.kill()
        proc.wait(30)
        wait_until(lambda: not any(_running(pid) for pid in workers), timeout=30 + SLACK)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in workers:
            if _running(pid):
                os.kill(pid, signal.SIGKILL)


def test_submit_batch(cpool):
    p = cpool(2)
    done = {}
    finished = threading.Event()

    def on_done(i, ok, value):
        done[i] = (ok, value)
        if len(done) == 300:
            finished.set()

    args = [(i, 2) for i in range(300)]
    args[7] = ("x", 2)
    assert threading.current_thread() is threading.main_thread()
    p._submit_batch(pow, args, on_done)
    assert finished.wait(30)
    assert all(done[i] == (True, i * i) for i in range(300) if i != 7)
    ok, exc = done[7]
    assert not ok and isinstance(exc, TypeError)
    assert type(exc.__cause__).__name__ == "RemoteTraceback"


def test_submit_batch_cancel(cpool):
    p = cpool(1)
    done = []
    blocker = p.apply_async(sqr, (1, 0.3))
    job = p._submit_batch(sqr, [(i, 0.01) for i in range(500)], lambda i, ok, v: done.append(i))
    dropped = job.cancel()
    blocker.get(10)
    assert dropped and len(dropped) < 500
    wait_until(lambda: len(done) == 500 - len(dropped))
    assert sorted(set(done) | set(dropped)) == list(range(500))


def test_callbacks_not_run_by_the_waiting_caller(pool_of):
    # cconc: a caller waiting in get() reads the pool's results itself, and
    # leaves those with callbacks to the collector (the stdlib's run on its
    # result-handler thread)
    p = pool_of(2)
    where = []
    for i in range(20):
        note = lambda v: where.append(threading.current_thread())  # noqa: E731
        if i % 2:
            p.apply_async(sqr, (i,), callback=note)
        else:
            p.apply_async(raise_value_error, (i,), error_callback=note)
        # a slower task without callbacks: waiting for it, the caller reads
        # the other's result first
        assert p.apply_async(sqr, (i, 0.005)).get(10) == i * i
    wait_until(lambda: len(where) == 20)
    assert threading.current_thread() not in where


def test_ctrl_c_while_waiting_loses_no_result(pool_of):
    # cconc: a caller waiting in get() may be reading the pool's results
    # itself; a Ctrl-C at any moment must drop none, its own or another's
    p = pool_of(2)
    rs = []
    called = []

    def submit_then_get(i):
        callback = called.append if i % 3 == 0 else None
        r = p.apply_async(sqr, (i, 0.004), callback=callback)
        rs.append(r)
        return lambda: r.get(30)

    interrupted = run_with_random_ctrl_c((submit_then_get(i) for i in range(60)), 0.008)
    assert interrupted > 0
    assert [r.get(30) for r in rs] == [i * i for i in range(60)]
    wait_until(lambda: len(called) == 20)
    assert sorted(called) == [i * i for i in range(0, 60, 3)]
    p.close()
    p.join()


def test_sigint_handler_that_returns_lets_get_wait_on(pool_of):
    p = pool_of(1)
    seen = []

    def handler(signum, frame):
        seen.append(signum)

    old = signal.signal(signal.SIGINT, handler)
    try:
        r = p.apply_async(sqr, (3, 0.3))
        timer = interrupt_main_after(0.05)
        assert r.get(30) == 9
        timer.join()
        wait_until(lambda: seen)
        assert seen == [signal.SIGINT]
        assert signal.getsignal(signal.SIGINT) is handler
    finally:
        signal.signal(signal.SIGINT, old)


def test_imap_endless_is_bounded(cpool):
    p = cpool(2)
    it = p.imap(sqr, endless())
    for i in range(3000):
        assert next(it) == i * i
    it2 = p.imap_unordered(sqr, endless())
    next(it2)
    time.sleep(0.3)  # a slow consumer: the window stops the producer
    src = it2._source
    assert src.unconsumed <= 256 * 2 + 64
    assert src.next_index <= 256 * 2 + 64


def test_maxtasksperchild_under_load(cpool):
    p = cpool(2, maxtasksperchild=3)
    rs = [p.map_async(sqr, range(60), chunksize=1) for _ in range(4)]
    for r in rs:
        assert r.get(60) == [x * x for x in range(60)]
    p.close()
    p.join()


def test_ctrl_c_in_blocking_calls(cpool):
    p = cpool(2)
    assert_interrupted(lambda: p.apply_async(time.sleep, (30,)).get())
    # one worker sleeps; the pool is still usable
    assert p.apply(sqr, (2,)) == 4
    for call in (lambda q: q.map(time.sleep, [30, 30], chunksize=1),
                 lambda q: q.apply(time.sleep, (30,)),
                 lambda q: next(q.imap(time.sleep, [30])),
                 lambda q: next(q.imap_unordered(time.sleep, [30]))):
        q = cpool(1)
        assert_interrupted(lambda: call(q))
        q.terminate()
        q.join()
    q = cpool(1)
    q.apply_async(time.sleep, (30,))
    q.close()
    assert_interrupted(q.join)
    q.terminate()
    q.join()


CTRL_C_PROGRAM = textwrap.dedent(
    """
    import sys, time
    sys.path.insert(0, {root!r})
    import cconc.multiprocessing as mp
    if __name__ == "__main__":
        p = mp.Pool(2)
        print("ready", *p._worker_pids(), flush=True)
        try:
            p.map(time.sleep, [30] * 4, chunksize=1)
        except KeyboardInterrupt:
            print("interrupted", flush=True)
        p.terminate()
        p.join()
        print("done", flush=True)
    """
)


def test_ctrl_c_to_process_group(tmp_path):
    script = tmp_path / "ctrl_c.py"
    script.write_text(CTRL_C_PROGRAM.format(root=ROOT))
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        line = proc.stdout.readline().split()
        assert line[0] == "ready"
        workers = [int(x) for x in line[1:]]
        time.sleep(0.3)
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "interrupted" in out and "done" in out, (out, err)
    assert "Traceback" not in err, err
    for pid in workers:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


# ------------------------------------------------- the scale-out seam (docs/multiprocessing.md)

RAY_PROGRAM = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {root!r})

    def work(x):
        return x * x

    def main(Pool):
        with Pool(4) as pool:
            squares = pool.map(work, range(100))
            total = sum(pool.imap_unordered(work, range(100), chunksize=10))
            r = pool.apply_async(work, (7,))
            return squares[:3], total, r.get(timeout=60)

    if __name__ == "__main__":
        if sys.argv[1] == "ray":
            from ray.util.multiprocessing import Pool
        else:
            import cconc.multiprocessing as mp
            Pool = mp.Pool
        print(main(Pool))
    """
)


def _docs_program():
    with open(os.path.join(ROOT, "docs", "multiprocessing.md"), encoding="utf-8") as f:
        text = f.read()
    return text


@pytest.mark.parametrize("which", ["cconc", "ray"])
def test_same_program_on_cconc_and_ray(tmp_path, which):
    if which == "ray":
        pytest.importorskip("ray")
    if os.path.exists(os.path.join(ROOT, "docs")):
        # the program the docs show is the one run here
        assert "squares = pool.map(work, range(100))" in _docs_program()
    script = tmp_path / "seam.py"
    script.write_text(RAY_PROGRAM.format(root=ROOT))
    out = subprocess.run([sys.executable, str(script), which], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-1] == "([0, 1, 4], 328350, 49)"


def test_process_hook_of_a_subclass(multiprocessing_mod):
    made = []

    class MyPool(multiprocessing_mod.pool.Pool):
        @staticmethod
        def Process(ctx, *args, **kwds):
            made.append(1)
            return ctx.Process(*args, **kwds)

    p = MyPool(2)
    try:
        assert p.map(sqr, range(4)) == [0, 1, 4, 9]
    finally:
        p.terminate()
        p.join()
    assert len(made) >= 2
