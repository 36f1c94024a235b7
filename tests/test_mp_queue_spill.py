"""A Queue put that the bound allows never waits for room (differential).

The stdlib's multiprocessing.Queue.put hands the item to a feeder thread's
buffer and returns; cconc's places it in its shared ring when there is room
and otherwise spills it to a per-process buffer flushed by a feeder thread.
These tests fill far more than the ring (a 4 KiB ring for cconc, more than
the stdlib's 64 KiB pipe) before anything reads."""
import os
import queue
import signal
import time

import pytest

from helpers import wait_until

ITEM = b"x" * 1000  # ~1 KiB: four fill a cconc 4 KiB ring; 65 fill a pipe


def _is_cconc(mp):
    return mp.__name__.startswith("cconc")


def small_queue(mp, kind="Queue", maxsize=0, ctx=None):
    """A queue whose buffer fills fast: a 4 KiB ring on cconc."""
    ctx = ctx or mp.get_context()
    if _is_cconc(mp):
        from cconc.multiprocessing import queues as cq

        return getattr(cq, kind)(maxsize, ctx=ctx, buffer_size=4096)
    return getattr(ctx, kind)(maxsize)


def _consume(q, out):
    got = []
    while True:
        x = q.get(timeout=60)
        if x is None:
            break
        got.append(x)
    out.put(got)


def _check_per_producer_order(lists, expected):
    """Every item exactly once; each consumer saw each producer's items in order."""
    seen = [x for got in lists for x in got]
    assert sorted(seen) == sorted(expected)
    for got in lists:
        for producer in {x[0] for x in got}:
            indexes = [x[1] for x in got if x[0] == producer]
            assert indexes == sorted(indexes)


def test_put_far_more_than_the_ring_before_any_consumer(multiprocessing_mod):
    mp = multiprocessing_mod
    ctx = mp.get_context("fork")
    q = small_queue(mp, ctx=ctx)
    items = [("main", i, ITEM if i % 7 == 0 else i) for i in range(3000)]
    for x in items:
        q.put(x)  # no consumer yet: must not block
    assert q.qsize() == len(items)
    wait_until(lambda: not q.empty())
    out = ctx.Queue()
    consumers = [ctx.Process(target=_consume, args=(q, out)) for _ in range(2)]
    for p in consumers:
        p.start()
    for _ in consumers:
        q.put(None)
    lists = [out.get(timeout=120) for _ in consumers]
    for p in consumers:
        p.join(60)
        assert p.exitcode == 0
    _check_per_producer_order(lists, items)
    assert q.qsize() == 0


def test_more_than_8_mib_default_queue(multiprocessing_mod):
    mp = multiprocessing_mod
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    chunk = b"y" * (512 * 1024)
    for i in range(40):  # 20 MiB, more than the default 8 MiB ring
        q.put((i, chunk))
    out = ctx.Queue()
    p = ctx.Process(target=_consume, args=(q, out))
    p.start()
    q.put(None)
    got = out.get(timeout=120)
    p.join(60)
    assert p.exitcode == 0
    assert [x[0] for x in got] == list(range(40)) and all(x[1] == chunk for x in got)


def test_put_nowait_unbounded_full_ring_does_not_raise(multiprocessing_mod):
    q = small_queue(multiprocessing_mod)
    for i in range(500):
        q.put_nowait((i, ITEM))
        q.put(i, block=False)
        q.put(-i, timeout=0)
    assert q.qsize() == 1500
    out = [q.get(timeout=30) for _ in range(1500)]
    assert out == [x for i in range(500) for x in ((i, ITEM), i, -i)]
    with pytest.raises(queue.Empty):
        q.get(timeout=0.01)


def test_put_many_spills_in_order():
    from cconc.multiprocessing import queues as cq

    q = cq.Queue(buffer_size=4096)
    q.put_many([(i, ITEM) for i in range(100)])
    q.put(100)
    assert q.qsize() == 101
    assert q.get_many(1000, timeout=30)[0] == (0, ITEM)
    got = [q.get(timeout=30) for _ in range(100)]
    assert got[-1] == 100 and [x[0] for x in got[:-1]] == list(range(1, 100))


def test_bounded_queue_counts_spilled_items(multiprocessing_mod):
    mp = multiprocessing_mod
    q = small_queue(mp, maxsize=50)
    for i in range(50):
        q.put((i, ITEM), timeout=5)  # the ring holds 3 of them
    assert q.qsize() == 50 and q.full()
    with pytest.raises(queue.Full):
        q.put_nowait(50)
    with pytest.raises(queue.Full):
        q.put(50, timeout=0.05)
    got = [q.get(timeout=30)]
    q.put((50, ITEM), timeout=30)
    assert q.qsize() <= 50
    with pytest.raises(queue.Full):
        q.put_nowait(51)
    while len(got) < 51:
        got.append(q.get(timeout=30))
        assert q.qsize() <= 50
    assert [x[0] for x in got] == list(range(51))


def _bounded_producer(q, who, n):
    for i in range(n):
        q.put((who, i, ITEM))


def _watch_qsize(q, maxsize, n, out):
    got, worst = [], 0
    while len(got) < n:
        worst = max(worst, q.qsize())
        got.append(q.get(timeout=60))
        time.sleep(0.0005)
    out.put((worst, got))


def test_bounded_queue_never_exceeds_maxsize_across_processes(multiprocessing_mod):
    mp = multiprocessing_mod
    ctx = mp.get_context("fork")
    q = small_queue(mp, maxsize=20, ctx=ctx)
    producers = [ctx.Process(target=_bounded_producer, args=(q, w, 200)) for w in range(3)]
    out = ctx.Queue()
    consumer = ctx.Process(target=_watch_qsize, args=(q, 20, 600, out))
    for p in producers + [consumer]:
        p.start()
    worst, got = out.get(timeout=120)
    for p in producers + [consumer]:
        p.join(60)
        assert p.exitcode == 0
    assert worst <= 20
    _check_per_producer_order([[(w, i) for w, i, _ in got]], [(w, i) for w in range(3) for i in range(200)])


def _slow_task_worker(q, counter):
    while True:
        x = q.get(timeout=60)
        if x is not None:
            time.sleep(0.0002)
            with counter.get_lock():
                counter.value += 1
        q.task_done()
        if x is None:
            return


def test_joinable_queue_join_waits_for_spilled_items(multiprocessing_mod):
    mp = multiprocessing_mod
    ctx = mp.get_context("fork")
    q = small_queue(mp, "JoinableQueue", ctx=ctx)
    for i in range(400):
        q.put((i, ITEM))
    q.put(None)
    counter = ctx.Value("i", 0)
    p = ctx.Process(target=_slow_task_worker, args=(q, counter))
    p.start()
    q.join()
    assert counter.value == 400
    p.join(60)
    assert p.exitcode == 0


def _put_and_exit(q, who, n):
    for i in range(n):
        q.put((who, i, ITEM))
    # returns with most items still buffered: the exit flushes them


def test_exit_flushes_the_spill(multiprocessing_mod):
    mp = multiprocessing_mod
    for method in ("fork", "spawn"):
        ctx = mp.get_context(method)
        q = small_queue(mp, ctx=ctx)
        p = ctx.Process(target=_put_and_exit, args=(q, method, 300))
        p.start()
        got = [q.get(timeout=120) for _ in range(300)]
        p.join(60)
        assert p.exitcode == 0
        assert got == [(method, i, ITEM) for i in range(300)]


def test_join_thread_after_close_flushes():
    from cconc.multiprocessing import queues as cq

    q = cq.Queue(buffer_size=4096)
    for i in range(50):
        q.put((i, ITEM))
    assert q._spilled > 0
    import threading

    got = []
    reader_q = q  # the same handle: the reader drains while the feeder flushes
    t = threading.Thread(target=lambda: got.extend(reader_q.get(timeout=30) for _ in range(50)))
    t.start()
    t.join(60)
    q.close()
    q.join_thread()
    assert q._spilled == 0 and [x[0] for x in got] == list(range(50))


def _put_cancel_and_exit(q, n):
    q.cancel_join_thread()
    for i in range(n):
        q.put((i, ITEM))


def test_cancel_join_thread_lets_the_process_exit(multiprocessing_mod):
    mp = multiprocessing_mod
    ctx = mp.get_context("fork")
    q = small_queue(mp, ctx=ctx)
    p = ctx.Process(target=_put_cancel_and_exit, args=(q, 300))
    p.start()
    p.join(60)  # nothing reads: only cancel_join_thread lets it exit
    assert p.exitcode == 0


def _put_signal_and_exit(q, ready, n):
    for i in range(n):
        q.put((i, ITEM))
    ready.set()


def test_ctrl_c_interrupts_the_exit_flush(multiprocessing_mod):
    mp = multiprocessing_mod
    ctx = mp.get_context("fork")
    q = small_queue(mp, ctx=ctx)
    ready = ctx.Event()
    p = ctx.Process(target=_put_signal_and_exit, args=(q, ready, 300))
    p.start()
    assert ready.wait(60)
    deadline = time.monotonic() + 60
    while p.exitcode is None and time.monotonic() < deadline:
        time.sleep(0.1)
        if p.exitcode is None:
            os.kill(p.pid, signal.SIGINT)
        p.join(0.2)
    assert p.exitcode is not None


def _fork_child_puts(q, n):
    for i in range(n):
        q.put(("child", i, ITEM))


def test_fork_while_a_spill_is_pending(multiprocessing_mod):
    mp = multiprocessing_mod
    ctx = mp.get_context("fork")
    q = small_queue(mp, ctx=ctx)
    for i in range(300):
        q.put(("parent", i, ITEM))
    p = ctx.Process(target=_fork_child_puts, args=(q, 100))
    p.start()  # the child must not flush the parent's buffer a second time
    got = [q.get(timeout=120) for _ in range(400)]
    p.join(60)
    assert p.exitcode == 0
    _check_per_producer_order([[(w, i) for w, i, _ in got]],
                              [("parent", i) for i in range(300)] + [("child", i) for i in range(100)])
    with pytest.raises(queue.Empty):
        q.get(timeout=0.5)


def test_simple_queue_unchanged():
    from cconc.multiprocessing import queues as cq

    q = cq.SimpleQueue(buffer_size=4096)
    assert not hasattr(q, "_spilled")
