"""Threads racing on every primitive, with exact accounting: nothing lost,
nothing duplicated, counts exact, no crash, no hang.

On a GIL build they check the waiting core's hand-offs under heavy switching;
on a free-threaded build with the GIL off (the free_threading CI stage) the
threads truly run in parallel, which is where per-object locking must hold.
Sizes: CCONC_STRESS_THREADS threads (default 4) x CCONC_STRESS_OPS operations
each (default 3000); the CI stage raises both. Differential: the stdlib runs the
same bodies and must pass them too."""
import collections
import os
import socket
import sys
import threading as std_threading

import pytest

from helpers import join_all, wait_until

THREADS = int(os.environ.get("CCONC_STRESS_THREADS", "4"))
OPS = int(os.environ.get("CCONC_STRESS_OPS", "3000"))
JOIN = 600  # seconds: generous, a hang fails the test rather than the run
# Larger sizes run long on 2 cores (a contended FIFO lock costs a thread switch per
# acquire): the default 120 s per test is for the default size.
pytestmark = pytest.mark.timeout(max(120, THREADS * OPS // 1000))


@pytest.fixture(autouse=True)
def _fast_switching():
    """On a GIL build, switch threads as often as possible so races show."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(old)


def run_threads(threading_mod, target, count=THREADS):
    """Start `count` threads of target(i), all released at once; join; re-raise."""
    errors = []
    start = threading_mod.Barrier(count)

    def body(i):
        try:
            start.wait()
            target(i)
        except BaseException as e:  # noqa: BLE001 - reported to the test
            errors.append(e)

    threads = [threading_mod.Thread(target=body, args=(i,), daemon=True) for i in range(count)]
    for t in threads:
        t.start()
    join_all(threads, timeout=JOIN)
    assert not any(t.is_alive() for t in threads), "threads hung"
    if errors:
        raise errors[0]


def test_gil_stays_off_after_import():
    """On a free-threaded build, importing every cconc module keeps the GIL off."""
    if not hasattr(sys, "_is_gil_enabled"):
        pytest.skip("no sys._is_gil_enabled before 3.13")
    import sysconfig

    if not sysconfig.get_config_var("Py_GIL_DISABLED"):
        pytest.skip("a GIL build")
    import cconc.futures  # noqa: F401
    import cconc.multiprocessing  # noqa: F401
    import cconc.queue  # noqa: F401
    import cconc.selectors  # noqa: F401
    import cconc.threading  # noqa: F401

    assert sys._is_gil_enabled() is False


@pytest.mark.parametrize("kind", ["Lock", "RLock"])
def test_lock_protected_counter_never_loses_an_update(threading_mod, kind):
    lock = getattr(threading_mod, kind)()
    counter = [0]

    def work(i):
        for _ in range(OPS):
            with lock:
                # a read-modify-write that only the lock makes atomic
                v = counter[0]
                counter[0] = v + 1
            if kind == "RLock":
                with lock, lock:
                    counter[0] += 0

    run_threads(threading_mod, work)
    assert counter[0] == THREADS * OPS
    assert lock.acquire(blocking=False)
    lock.release()


def test_lock_timed_acquires_are_exact(threading_mod):
    """acquire(timeout) racing with releases: every True owns the lock alone."""
    lock = threading_mod.Lock()
    inside = [0]
    got = [0] * THREADS

    def work(i):
        for _ in range(OPS // 4):
            if lock.acquire(timeout=0.0005):
                inside[0] += 1
                assert inside[0] == 1
                inside[0] -= 1
                got[i] += 1
                lock.release()

    run_threads(threading_mod, work)
    assert sum(got) > 0 and inside[0] == 0
    assert not lock.locked()


@pytest.mark.parametrize("bounded", [False, True])
def test_semaphore_never_over_admits(threading_mod, bounded):
    limit = 2
    sem = (threading_mod.BoundedSemaphore if bounded else threading_mod.Semaphore)(limit)
    guard = std_threading.Lock()
    inside = [0]
    peak = [0]
    done = [0] * THREADS

    def work(i):
        for n in range(OPS):
            ok = sem.acquire(timeout=5) if n % 3 else sem.acquire()
            assert ok
            with guard:
                inside[0] += 1
                peak[0] = max(peak[0], inside[0])
            with guard:
                inside[0] -= 1
            done[i] += 1
            sem.release()

    run_threads(threading_mod, work)
    assert sum(done) == THREADS * OPS
    assert 1 <= peak[0] <= limit
    # every unit came back: exactly `limit` can be taken now
    assert all(sem.acquire(blocking=False) for _ in range(limit))
    assert not sem.acquire(blocking=False)


def test_condition_producer_consumer_exact(threading_mod):
    cond = threading_mod.Condition(threading_mod.Lock())
    items = collections.deque()
    producers = max(1, THREADS // 2)
    consumers = max(1, THREADS - producers)
    per_producer = OPS
    total = producers * per_producer
    taken = []
    state = {"taken": 0}

    def work(i):
        if i < producers:
            for n in range(per_producer):
                with cond:
                    items.append((i, n))
                    cond.notify()
        else:
            mine = []
            while True:
                with cond:
                    while not items and state["taken"] < total:
                        cond.wait(1)
                    if state["taken"] >= total:
                        cond.notify_all()
                        break
                    mine.append(items.popleft())
                    state["taken"] += 1
            taken.extend(mine)

    run_threads(threading_mod, work, producers + consumers)
    assert len(taken) == total
    assert sorted(taken) == sorted((i, n) for i in range(producers) for n in range(per_producer))


def test_condition_notify_wakes_exactly_n(threading_mod):
    cond = threading_mod.Condition()
    waiters = 6
    woken = []
    ready = [0]
    guard = std_threading.Lock()

    def waiter(i):
        with cond:
            with guard:
                ready[0] += 1
            if cond.wait(timeout=60):
                woken.append(i)

    threads = [threading_mod.Thread(target=waiter, args=(i,), daemon=True) for i in range(waiters)]
    for t in threads:
        t.start()
    wait_until(lambda: ready[0] == waiters)
    with cond:  # each counted itself holding the lock: now every one is inside wait()
        pass
    for rnd in (2, 3):
        before = len(woken)
        with cond:
            cond.notify(rnd)
        wait_until(lambda: len(woken) == before + rnd)
    with cond:
        cond.notify_all()
    join_all(threads, timeout=60)
    assert sorted(woken) == list(range(waiters))


def test_event_set_wait_rounds(threading_mod):
    rounds = max(10, OPS // 50)
    events = [threading_mod.Event() for _ in range(rounds)]
    seen = [0] * THREADS

    def work(i):
        if i == 0:
            for e in events:
                e.set()
        else:
            for e in events:
                assert e.wait(timeout=60)
                assert e.is_set()
                seen[i] += 1

    run_threads(threading_mod, work)
    assert seen[1:] == [rounds] * (THREADS - 1)


def test_barrier_rounds_give_each_index_once(threading_mod):
    rounds = max(10, OPS // 20)
    actions = [0]
    barrier = threading_mod.Barrier(THREADS, action=lambda: actions.__setitem__(0, actions[0] + 1))
    indices = [[] for _ in range(rounds)]

    def work(i):
        for r in range(rounds):
            indices[r].append(barrier.wait(timeout=60))

    run_threads(threading_mod, work)
    assert actions[0] == rounds
    for got in indices:
        assert sorted(got) == list(range(THREADS))


_QUEUE_KINDS = ["Queue", "LifoQueue", "PriorityQueue", "SimpleQueue", "bounded"]


@pytest.mark.parametrize("kind", _QUEUE_KINDS)
def test_queue_mpmc_nothing_lost_or_duplicated(queue_mod, kind):
    q = queue_mod.Queue(maxsize=8) if kind == "bounded" else getattr(queue_mod, kind)()
    producers = max(1, THREADS // 2)
    consumers = max(1, THREADS - producers)
    got = [[] for _ in range(consumers)]
    stop = object() if kind != "PriorityQueue" else (float("inf"), None)

    def work(i):
        if i < producers:
            for n in range(OPS):
                item = (i * OPS + n, i)
                if n % 2:
                    q.put(item, timeout=60)
                else:
                    q.put(item)
        else:
            mine = got[i - producers]
            while True:
                item = q.get(timeout=60)
                if item is stop or item == stop:
                    break
                mine.append(item)

    ts = [std_threading.Thread(target=work, args=(i,), daemon=True) for i in range(producers + consumers)]
    for t in ts:
        t.start()
    join_all(ts[:producers], timeout=JOIN)
    # every item taken before the sentinels go in (a LIFO would hand them out first)
    wait_until(q.empty, timeout=JOIN)
    for _ in range(consumers):
        q.put(stop)
    join_all(ts, timeout=JOIN)
    assert not any(t.is_alive() for t in ts), "threads hung"
    allgot = [x for mine in got for x in mine]
    assert len(allgot) == producers * OPS
    assert sorted(x[0] for x in allgot) == list(range(producers * OPS))
    if kind in ("Queue", "bounded", "SimpleQueue"):
        # FIFO: each consumer sees each producer's items in order
        for mine in got:
            for p in range(producers):
                seq = [x[0] for x in mine if x[1] == p]
                assert seq == sorted(seq)
    assert q.empty()


def test_queue_task_done_join_accounting(queue_mod):
    q = queue_mod.Queue()
    handled = [0] * THREADS

    def work(i):
        if i == 0:
            for n in range(OPS * 2):
                q.put(n)
        else:
            while True:
                item = q.get(timeout=60)
                if item is None:
                    q.task_done()
                    break
                handled[i] += 1
                q.task_done()

    ts = [std_threading.Thread(target=work, args=(i,), daemon=True) for i in range(THREADS)]
    for t in ts:
        t.start()
    join_all(ts[:1], timeout=JOIN)
    for _ in range(THREADS - 1):
        q.put(None)
    q.join()
    join_all(ts, timeout=JOIN)
    assert sum(handled) == OPS * 2
    assert q.unfinished_tasks == 0


def test_queue_view_under_mutex_is_consistent(queue_mod):
    """`with q.mutex: q.queue...` groups operations atomically against puts and gets."""
    q = queue_mod.Queue()
    stop = std_threading.Event()
    bad = []

    def churn(i):
        n = 0
        while not stop.is_set():
            q.put(n)
            q.get()
            n += 1

    def inspect():
        for _ in range(max(50, OPS // 20)):
            with q.mutex:
                a = len(q.queue)
                snapshot = list(q.queue)
                b = len(q.queue)
            if a != b or len(snapshot) != a:
                bad.append((a, b, len(snapshot)))

    ts = [std_threading.Thread(target=churn, args=(i,), daemon=True) for i in range(max(1, THREADS - 1))]
    for t in ts:
        t.start()
    try:
        inspect()
    finally:
        stop.set()
        join_all(ts, timeout=JOIN)
    assert not bad


_MODULUS = 1_000_003


def test_executor_submit_from_many_threads(futures_mod):
    with futures_mod.ThreadPoolExecutor(max_workers=THREADS) as ex:
        per_thread = max(50, OPS // 10)
        results = [None] * THREADS

        def work(i):
            fs = [ex.submit(pow, i, n, _MODULUS) for n in range(per_thread)]  # small results at any size
            results[i] = [f.result(timeout=60) for f in fs]

        run_threads(std_threading, work)
    for i, got in enumerate(results):
        assert got == [pow(i, n, _MODULUS) for n in range(per_thread)]


def test_as_completed_and_wait_from_many_threads(futures_mod):
    with futures_mod.ThreadPoolExecutor(max_workers=THREADS) as ex:
        count = max(20, OPS // 50)
        out = [None] * THREADS

        def work(i):
            fs = [ex.submit(lambda n=n: n * n) for n in range(count)]
            if i % 2:
                done = [f.result() for f in futures_mod.as_completed(fs, timeout=60)]
            else:
                d, nd = futures_mod.wait(fs, timeout=60)
                assert not nd
                done = [f.result() for f in d]
            out[i] = sorted(done)

        run_threads(std_threading, work)
    assert all(o == sorted(n * n for n in range(count)) for o in out)


def test_future_callbacks_and_results_race(futures_mod):
    """set_result racing with add_done_callback and result(): each callback runs exactly once."""
    rounds = max(50, OPS // 10)
    calls = collections.Counter()
    guard = std_threading.Lock()

    def cb(f):
        with guard:
            calls[id(f)] += 1

    futures = [futures_mod.Future() for _ in range(rounds)]

    def work(i):
        for f in futures:
            if i == 0:
                f.set_result(1)
            elif i % 2:
                f.add_done_callback(cb)
            else:
                assert f.result(timeout=60) == 1

    run_threads(std_threading, work)
    callbacks_per_future = len([i for i in range(1, THREADS) if i % 2])
    assert all(calls[id(f)] == callbacks_per_future for f in futures)


def test_selector_register_unregister_in_parallel(selectors_mod):
    sel = selectors_mod.DefaultSelector()
    pairs = [socket.socketpair() for _ in range(THREADS)]
    try:
        rounds = max(50, OPS // 10)

        def work(i):
            a, b = pairs[i]
            for n in range(rounds):
                key = sel.register(a, selectors_mod.EVENT_READ, data=(i, n))
                assert sel.get_key(a) is key or sel.get_key(a) == key
                sel.unregister(a)

        run_threads(std_threading, work)
        assert len(sel.get_map()) == 0
    finally:
        sel.close()
        for a, b in pairs:
            a.close()
            b.close()


def test_thread_start_join_many(threading_mod):
    guard = std_threading.Lock()
    seen = []

    def child():
        with guard:
            seen.append(len(seen))

    def work(i):
        for _ in range(max(10, OPS // 100)):
            t = threading_mod.Thread(target=child)
            t.start()
            t.join(60)
            assert not t.is_alive()

    run_threads(std_threading, work)
    assert sorted(seen) == list(range(len(seen)))
    assert len(seen) == THREADS * max(10, OPS // 100)
