"""cconc.multiprocessing's process-shared queues: differential tests (the same
body on the stdlib's multiprocessing and on cconc's), every start method,
Ctrl-C, bad input, long messages, many processes and processes killed
mid-traffic (cconc only: the stdlib's queue can wedge or lose items there)."""
import math
import os
import pickle
import random
import signal
import threading
import time

import pytest

import cconc.multiprocessing as cmp
from cconc.multiprocessing import queues as cq
from helpers import assert_interrupted, wait_until

START_METHODS = ["fork", "spawn", "forkserver"]


# ---------------------------------------------------------------- in one process


def test_contexts_hand_out_the_module_queues(multiprocessing_mod):
    mp = multiprocessing_mod
    for ctx in [mp] + [mp.get_context(m) for m in START_METHODS]:
        for make, name in ((ctx.Queue, "Queue"), (ctx.JoinableQueue, "JoinableQueue"), (ctx.SimpleQueue, "SimpleQueue")):
            q = make()
            assert type(q).__name__ == name
            assert type(q).__module__ == mp.queues.__name__
            q.close()


def test_put_get_fifo_and_sizes(multiprocessing_mod):
    q = multiprocessing_mod.Queue()
    items = [0, -1, 2**63 - 1, 2**80, 1.5, float("inf"), "", "héllo", b"", b"\x00" * 3, None, True, False,
             (1, "a"), [1, [2]], {"k": {1, 2}}, bytearray(b"ab"), "\udc80"]
    for x in items:
        q.put(x)
    wait_until(lambda: q.qsize() == len(items) and not q.empty())
    out = [q.get(timeout=5) for _ in items]
    assert out == items
    assert [type(x) for x in out] == [type(x) for x in items]
    assert q.qsize() == 0 and q.empty() and not q.full()


def test_bounded_queue_full_and_timeouts(multiprocessing_mod):
    q = multiprocessing_mod.Queue(2)
    q.put(1)
    q.put(2)
    wait_until(q.full)
    with pytest.raises(multiprocessing_mod.queues.Full):
        q.put(3, block=False)
    with pytest.raises(multiprocessing_mod.queues.Full):
        q.put_nowait(3)
    for timeout in (0, -1, 0.05):
        with pytest.raises(multiprocessing_mod.queues.Full):
            q.put(3, True, timeout)
    with pytest.raises(OSError):  # the stdlib's sem_timedwait(NaN) is EINVAL
        q.put(3, True, float("nan"))
    assert q.get() == 1 and q.get() == 2
    for timeout in (0, -1, 0.05):
        with pytest.raises(multiprocessing_mod.queues.Empty):
            q.get(True, timeout)
    with pytest.raises(multiprocessing_mod.queues.Empty):
        q.get_nowait()
    with pytest.raises(ValueError):
        q.get(True, float("nan"))
    with pytest.raises(TypeError):
        q.put(1, True, "x")
    with pytest.raises(TypeError):
        q.get(False, "x")
    import queue

    assert multiprocessing_mod.queues.Empty is queue.Empty and multiprocessing_mod.queues.Full is queue.Full


def test_maxsize_attribute(multiprocessing_mod):
    assert multiprocessing_mod.Queue(3)._maxsize == 3
    assert multiprocessing_mod.Queue()._maxsize == multiprocessing_mod.Queue(-4)._maxsize == 2**31 - 1


def test_closed_queue(multiprocessing_mod):
    for q in multiprocessing_mod.Queue(), multiprocessing_mod.JoinableQueue():
        q.put(1)
        q.close()
        with pytest.raises(ValueError, match="is closed"):
            q.put(2)
        with pytest.raises(ValueError, match="is closed"):
            q.get()
        q.join_thread()
        q.cancel_join_thread()
    s = multiprocessing_mod.SimpleQueue()
    s.close()
    for call in (s.empty, s.get, lambda: s.put(1)):
        with pytest.raises(OSError):
            call()


def test_empty_after_close(multiprocessing_mod):
    # as CPython 3.13's test_closed_queue_empty_exceptions: closing an unused
    # queue is a no-op for empty(); closing a used one closes its pipe
    for q in multiprocessing_mod.Queue(), multiprocessing_mod.JoinableQueue():
        q.close()
        q.join_thread()
        assert q.empty()
    for q in multiprocessing_mod.Queue(), multiprocessing_mod.JoinableQueue():
        q.put("foo")
        q.close()
        q.join_thread()
        with pytest.raises(OSError, match="is closed"):
            q.empty()


def test_join_thread_needs_close(multiprocessing_mod):
    q = multiprocessing_mod.Queue()
    with pytest.raises(AssertionError):
        q.join_thread()


def test_unpicklable_item_simplequeue(multiprocessing_mod):
    s = multiprocessing_mod.SimpleQueue()
    with pytest.raises(TypeError, match="pickle"):
        s.put(threading.Lock())
    s.put(5)
    assert s.get() == 5


def test_unpicklable_item_queue_raises_in_put():
    # The stdlib's feeder thread prints the error and drops the item; cconc's
    # put pickles in the caller, so the error is raised by put (nothing placed).
    q = cmp.Queue()
    with pytest.raises(TypeError, match="pickle"):
        q.put(threading.Lock())
    with pytest.raises(TypeError, match="pickle"):
        q.put_many([1, threading.Lock()])
    assert q.qsize() == 0
    q.put(5)
    assert q.get() == 5


class Unloadable:
    def __reduce__(self):
        return (_raise, ())


def _raise():
    raise ZeroDivisionError("cannot rebuild")


def test_unpickling_error_raised_by_get_and_queue_usable(multiprocessing_mod):
    q = multiprocessing_mod.SimpleQueue()
    q.put(Unloadable())
    q.put(7)
    with pytest.raises(ZeroDivisionError):
        q.get()
    assert q.get() == 7


class Tagged:
    def __init__(self, tag):
        self.tag = tag


def _reduce_as(tag):
    return lambda obj: (Tagged, (tag,))


def test_reducers_registered_or_replaced_later_are_used(multiprocessing_mod):
    # The native queues keep one merged reducer table (_pickling): a reducer
    # added or replaced after the first put must still be honoured, as
    # ForkingPickler (which merges the tables on every call) honours it.
    import copyreg

    from multiprocessing.reduction import ForkingPickler

    q = multiprocessing_mod.SimpleQueue()
    try:
        q.put(Tagged("plain"))
        assert q.get().tag == "plain"
        ForkingPickler.register(Tagged, _reduce_as("forking"))
        q.put(Tagged("plain"))
        assert q.get().tag == "forking"
        ForkingPickler.register(Tagged, _reduce_as("replaced"))
        q.put(Tagged("plain"))
        assert q.get().tag == "replaced"
        del ForkingPickler._extra_reducers[Tagged]
        copyreg.pickle(Tagged, _reduce_as("copyreg"))
        q.put(Tagged("plain"))
        assert q.get().tag == "copyreg"
    finally:
        ForkingPickler._extra_reducers.pop(Tagged, None)
        copyreg.dispatch_table.pop(Tagged, None)
    q.put(Tagged("plain"))
    assert q.get().tag == "plain"


def test_pickling_rule(multiprocessing_mod):
    for q in (multiprocessing_mod.Queue(), multiprocessing_mod.JoinableQueue(), multiprocessing_mod.SimpleQueue()):
        with pytest.raises(RuntimeError, match="inheritance"):
            pickle.dumps(q)


def test_task_done_and_join(multiprocessing_mod):
    q = multiprocessing_mod.JoinableQueue()
    with pytest.raises(ValueError, match="too many"):
        q.task_done()
    q.join()
    q.put(1)
    q.put(2)
    q.get()
    q.task_done()
    done = threading.Event()
    t = threading.Thread(target=lambda: (q.join(), done.set()))
    t.start()
    assert not done.wait(0.2)
    q.get()
    q.task_done()
    assert done.wait(10)
    t.join()


def test_generic_alias(multiprocessing_mod):
    import multiprocessing.queues

    if hasattr(multiprocessing.queues.Queue, "__class_getitem__"):  # 3.12+
        assert multiprocessing_mod.queues.Queue[int].__origin__ is multiprocessing_mod.queues.Queue
    else:
        with pytest.raises(TypeError):
            multiprocessing_mod.queues.Queue[int]
    assert multiprocessing_mod.queues.SimpleQueue[int].__origin__ is multiprocessing_mod.queues.SimpleQueue


def test_namespace_is_complete():
    import multiprocessing

    assert set(multiprocessing.__all__) <= set(dir(cmp))
    for name in multiprocessing.__all__:
        if name in ("Queue", "JoinableQueue", "SimpleQueue", "Pool", "get_context", "set_start_method",
                    "get_start_method"):
            continue
        ours, theirs = getattr(cmp, name), getattr(multiprocessing, name)
        assert ours == theirs or getattr(ours, "__func__", None) is getattr(theirs, "__func__", None), name
    import cconc.multiprocessing.shared_memory
    import multiprocessing.shared_memory

    assert cconc.multiprocessing.shared_memory is multiprocessing.shared_memory
    assert cmp.get_start_method() == multiprocessing.get_start_method()
    assert cmp.TimeoutError is multiprocessing.TimeoutError
    assert cmp.get_context("spawn").get_start_method() == "spawn"
    with pytest.raises(ValueError):
        cmp.get_context("nope")


# ---------------------------------------------------------------- batches (cconc only)


def test_put_many_get_many():
    q = cmp.Queue()
    q.put_many(range(250))
    assert q.qsize() == 250
    assert q.get_many(100) == list(range(100))
    assert q.get_many(1000) == list(range(100, 250))
    with pytest.raises(cmp.queues.Empty):
        q.get_many(10, timeout=0.01)
    with pytest.raises(ValueError):
        q.get_many(0)
    q.put_many(x for x in ["a", (1,), None])
    assert q.get_many(5) == ["a", (1,), None]


def test_doorbell_rung_by_the_puts_of_a_queue_tied_to_it():
    # the pool's result rings: the parent sleeps on one doorbell for all of them
    bell = cq._Doorbell()
    q = cq.SimpleQueue(buffer_size=1 << 16)
    q._ring_on_put(bell)
    seen = bell.count()
    assert bell.wait(seen, 0.01) is False
    q.put(1)
    assert bell.count() != seen and bell.wait(seen, 0) is True
    assert q._has_frames()
    assert q.get() == 1 and not q._has_frames()
    # a long message rings as its parts are published: a reader sleeping on
    # the bell starts reading before the writer, waiting for room, is done
    big = b"x" * (1 << 20)
    seen = bell.count()
    writer = threading.Thread(target=q.put, args=(big,))
    writer.start()
    assert bell.wait(seen, 10) is True
    wait_until(q._has_frames)
    assert q.get() == big
    writer.join()
    with pytest.raises(TypeError):
        q._ring_on_put(object())
    with pytest.raises(RuntimeError):
        q._ring_on_put(bell)  # one doorbell per handle


def test_put_many_full_reports_put_count():
    q = cmp.Queue(3)
    with pytest.raises(cmp.queues.Full) as e:
        q.put_many(range(5), timeout=0.05)
    assert e.value.put_count == 3
    assert q.get_many(10) == [0, 1, 2]


def test_get_many_unpickling_error_keeps_the_others():
    q = cmp.SimpleQueue()
    q.put_many([(1,), Unloadable(), (3,)])
    with pytest.raises(ZeroDivisionError) as e:
        q.get_many(10)
    assert e.value.items == [(1,), (3,)]


# ---------------------------------------------------------------- Ctrl-C


def test_ctrl_c_get(multiprocessing_mod):
    q = multiprocessing_mod.Queue()
    assert_interrupted(q.get)
    assert_interrupted(lambda: q.get(timeout=60))
    q.put(1)
    assert q.get(timeout=5) == 1


def test_ctrl_c_put_full(multiprocessing_mod):
    q = multiprocessing_mod.Queue(1)
    q.put(1)
    assert_interrupted(lambda: q.put(2))
    assert q.get(timeout=5) == 1


def test_ctrl_c_join(multiprocessing_mod):
    q = multiprocessing_mod.JoinableQueue()
    q.put(1)
    assert_interrupted(q.join)


def test_ctrl_c_simplequeue_get(multiprocessing_mod):
    assert_interrupted(multiprocessing_mod.SimpleQueue().get)


def test_ctrl_c_put_long_message_nothing_placed():
    # SimpleQueue's put waits for room (a Queue's spills: test_mp_queue_spill.py)
    q = cq.SimpleQueue(buffer_size=1 << 16)
    assert_interrupted(lambda: q.put(b"x" * (1 << 20)))
    q.put(1)
    assert q.get() == 1
    assert q.empty()


def test_ctrl_c_wait_for_lock_held_by_another_thread():
    q = cq.SimpleQueue(buffer_size=1 << 16)
    # a thread blocked putting a long message holds the write side
    t = threading.Thread(target=lambda: q.put(b"y" * (1 << 20)), daemon=True)
    t.start()
    time.sleep(0.1)
    assert_interrupted(lambda: q.put(1))
    assert q.get() == b"y" * (1 << 20)
    t.join(10)
    assert not t.is_alive()


# ---------------------------------------------------------------- across processes


def _echo(inq, outq, n):
    for _ in range(n):
        outq.put(inq.get())


@pytest.mark.parametrize("method", START_METHODS)
def test_start_methods(multiprocessing_mod, method):
    ctx = multiprocessing_mod.get_context(method)
    inq, outq, sq = ctx.Queue(), ctx.JoinableQueue(), ctx.SimpleQueue()
    items = [1, "two", b"3" * 5000, (4,), None]
    p = ctx.Process(target=_echo, args=(inq, outq, len(items)))
    p.start()
    for x in items:
        inq.put(x)
    assert [outq.get(timeout=60) for _ in items] == items
    p.join(60)
    assert p.exitcode == 0
    p = ctx.Process(target=_echo, args=(outq, sq, 0))
    p.start()
    p.join(60)
    assert p.exitcode == 0


def _task_worker(q):
    while True:
        x = q.get()
        q.task_done()
        if x is None:
            return


def test_join_across_processes(multiprocessing_mod):
    ctx = multiprocessing_mod.get_context("fork")
    q = ctx.JoinableQueue()
    p = ctx.Process(target=_task_worker, args=(q,))
    p.start()
    for i in range(100):
        q.put(i)
    q.put(None)
    # join() in a thread, watched: a worker that dies (or never runs after the fork)
    # fails the test with its exit code instead of leaving join() waiting forever.
    joiner = threading.Thread(target=q.join, daemon=True)
    joiner.start()
    deadline = time.monotonic() + 60
    while joiner.is_alive():
        joiner.join(0.1)
        assert p.is_alive() or p.exitcode == 0, f"the worker ended with exit code {p.exitcode}"
        assert time.monotonic() < deadline, f"join() still waits; unfinished: {q._unfinished_tasks!r}"
    p.join(30)
    assert p.exitcode == 0


def _pool_init(q):
    global _POOL_QUEUE
    _POOL_QUEUE = q


def _pool_task(x):
    _POOL_QUEUE.put(x * 2)
    return x


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_queue_in_pool_initializer(multiprocessing_mod, method):
    ctx = multiprocessing_mod.get_context(method)
    q = ctx.Queue()
    with ctx.Pool(2, initializer=_pool_init, initargs=(q,)) as pool:
        assert sorted(pool.map(_pool_task, range(10))) == list(range(10))
        # Read inside the block: leaving it terminates the workers, and the
        # stdlib's queue can lose what a killed worker's feeder had not sent.
        assert sorted(q.get(timeout=30) for _ in range(10)) == [x * 2 for x in range(10)]


def _receive_big(q, out):
    x = q.get()
    out.put((len(x), x[:3], x[-3:]))


BIG_MB = int(os.environ.get("CCONC_TEST_BIG_MB", "1024"))


def test_message_larger_than_the_ring():
    # 1 GiB of bytes through an 8 MiB ring (CCONC_TEST_BIG_MB sets the size)
    ctx = cmp.get_context("fork")
    q, out = ctx.Queue(), ctx.Queue()
    p = ctx.Process(target=_receive_big, args=(q, out))
    p.start()
    big = bytearray(BIG_MB << 20)
    big[:3] = b"abc"
    big[-3:] = b"xyz"
    big = bytes(big)
    q.put(big)
    del big
    assert out.get(timeout=300) == (BIG_MB << 20, b"abc", b"xyz")
    p.join(60)
    assert p.exitcode == 0


def test_long_pickled_message_streams_both_ways():
    ctx = cmp.get_context("fork")
    q, out = cq.Queue(buffer_size=1 << 14), cq.Queue(buffer_size=1 << 14)
    obj = [list(range(1000)), "z" * 100000, b"q" * 300000]
    p = ctx.Process(target=_echo, args=(q, out, 3))
    p.start()
    # one at a time: a put waits for room in the ring (no feeder thread buffers it)
    for _ in range(3):
        q.put(obj)
        assert out.get(timeout=60) == obj
    p.join(30)
    assert p.exitcode == 0


def _produce(q, start, n):
    put_many = q.put_many
    for i in range(start, start + n, 1000):
        put_many(range(i, i + 1000))


def _consume(q, out, nitems):
    seen = bytearray(nitems)
    while True:
        batch = q.get_many(1000)
        for x in batch:
            if x >= 0:
                seen[x] += 1
        stops = batch.count(-1)
        if stops:
            # one stop sign each: hand back the ones meant for the others
            if stops > 1:
                q.put_many([-1] * (stops - 1))
            out.put(bytes(seen))
            return


def test_mpmc_4_by_4_one_million_items():
    ctx = cmp.get_context("fork")
    n, nprod, ncons = 1_000_000, 4, 4
    q, out = ctx.Queue(10000), ctx.Queue()
    per = n // nprod
    producers = [ctx.Process(target=_produce, args=(q, k * per, per)) for k in range(nprod)]
    consumers = [ctx.Process(target=_consume, args=(q, out, n)) for _ in range(ncons)]
    for p in producers + consumers:
        p.start()
    for p in producers:
        p.join(120)
        assert p.exitcode == 0
    for _ in consumers:
        q.put(-1)
    total = bytearray(n)
    for _ in consumers:
        seen = out.get(timeout=120)
        for i, c in enumerate(seen):
            if c:
                total[i] += c
    for p in consumers:
        p.join(60)
    assert total.count(1) == n  # each item exactly once


def test_mpmc_4_by_4_one_million_single_puts_and_gets():
    ctx = cmp.get_context("fork")
    n = 250_000
    q, out = ctx.Queue(), ctx.Queue()

    producers = [ctx.Process(target=_produce_one, args=(q, k * n, n)) for k in range(4)]
    consumers = [ctx.Process(target=_consume_one, args=(q, out)) for _ in range(4)]
    for p in producers + consumers:
        p.start()
    for p in producers:
        p.join(60)
    for _ in consumers:
        q.put(None)
    got = []
    for _ in consumers:
        got.extend(out.get(timeout=60))
    assert sorted(got) == list(range(4 * n))
    for p in consumers:
        p.join(30)


def _produce_one(q, start, n):
    for i in range(start, start + n):
        q.put(i)


def _consume_one(q, out):
    got = []
    while True:
        x = q.get()
        if x is None:
            out.put(got)
            return
        got.append(x)


# ---------------------------------------------------------------- killed processes




def _kill_consumer(q, seen, stop, errors):
    while True:
        try:
            [(item, payload)] = q.get_many(1, timeout=0.1)
        except cq.Empty:
            if stop.value:
                return
            continue
        except BaseException:
            # counted: a replacement consumer would hide this one's exit code
            # (a swallowed "corrupted cconc queue" looked like a wedge here)
            errors.value += 1
            raise
        seen[item] += 1


def test_kill_loop_nothing_wedges_nothing_duplicated():
    """SIGKILL producers and consumers at random instants during traffic: the
    others keep going; every put that returned is delivered exactly once,
    except at most one item per killed consumer (the one it was receiving);
    the item a killed producer was putting is delivered at most once.
    A SimpleQueue: a Queue's producer may spill items to its own buffer when
    the ring is full, and a killed producer loses those (as the stdlib's)."""
    ctx = cmp.get_context("fork")
    nprod, ncons, n = 2, 2, 200_000
    q = cq.SimpleQueue(buffer_size=1 << 16)  # long items (40 KB) stream
    progress = ctx.RawArray("q", nprod)
    seen = ctx.RawArray("i", nprod * n)
    stop = ctx.RawValue("i", 0)
    errors = ctx.RawValue("i", 0)  # no lock: a consumer killed holding it would block the others
    uncertain = set()
    rnd = random.Random(1234)

    def start_producer(k, restarted=False):
        p = ctx.Process(target=_kill_producer2, args=(q, k, progress, k * n, n, restarted))
        p.start()
        return p

    def start_consumer():
        p = ctx.Process(target=_kill_consumer, args=(q, seen, stop, errors))
        p.start()
        return p

    producers = [start_producer(k) for k in range(nprod)]
    consumers = [start_consumer() for _ in range(ncons)]
    try:
        _kill_loop(q, producers, consumers, start_producer, start_consumer, progress, seen, stop, errors,
                   uncertain, rnd, n)
    finally:
        # a failed run must not leave consumers polling for the rest of the session
        for p in producers + consumers:
            if p.is_alive():
                p.kill()
            p.join(10)


def _kill_loop(q, producers, consumers, start_producer, start_consumer, progress, seen, stop, errors, uncertain,
               rnd, n):
    nprod, ncons = len(producers), len(consumers)
    consumer_kills = producer_kills = 0
    start = time.monotonic()
    # 5 s of kills, and at least 5 of each kind: under load (a sanitizer build,
    # a busy machine) a kill and its restart can take long
    while any(p.is_alive() for p in producers) and time.monotonic() < start + 120 and (
            time.monotonic() < start + 5 or min(producer_kills, consumer_kills) < 5):
        time.sleep(rnd.uniform(0.005, 0.05))
        if rnd.random() < 0.5:
            k = rnd.randrange(nprod)
            if producers[k].is_alive():
                os.kill(producers[k].pid, signal.SIGKILL)
                producers[k].join()
                # the item it may have been putting: delivered at most once
                uncertain.add(k * n + progress[k])
                producer_kills += 1
                producers[k] = start_producer(k, restarted=True)
        else:
            k = rnd.randrange(ncons)
            os.kill(consumers[k].pid, signal.SIGKILL)
            consumers[k].join()
            consumer_kills += 1
            consumers[k] = start_consumer()
    assert producer_kills >= 5 and consumer_kills >= 5
    # no more kills: everything must drain
    for k, p in enumerate(producers):
        p.join(120)
        assert p.exitcode == 0
    wait_until(lambda: q.empty() or errors.value, timeout=60)
    assert errors.value == 0, "a consumer's get raised"
    stop.value = 1
    for p in consumers:
        p.join(60)
        assert p.exitcode == 0
    counts = list(seen)
    duplicated = [i for i, c in enumerate(counts) if c > 1]
    assert not duplicated
    lost = [i for i, c in enumerate(counts) if c == 0 and i not in uncertain]
    assert len(lost) <= consumer_kills, (lost, consumer_kills)
    # the queue still works
    q.put("after")
    assert q.get() == "after"


def _kill_producer2(q, slot, progress, start, n, restarted):
    # progress[slot] is the index of the item being put (or next to put): when
    # this process is killed, that one item may or may not have been placed.
    i = progress[slot] + (1 if restarted else 0)  # skip the predecessor's uncertain item
    progress[slot] = i
    rnd = random.Random(slot * 7919 + i)
    while i < n:
        size = rnd.choice((0, 10, 3000, 40000))
        q.put((start + i, b"p" * size))
        i += 1
        progress[slot] = i


def _put_long(q):
    q.put(b"z" * (1 << 22))  # streams through the 64 KiB ring: blocks until read
    # (a SimpleQueue: a Queue's put would spill it and its feeder would stream it)


def test_writer_killed_mid_message_is_skipped():
    ctx = cmp.get_context("fork")
    q = cq.SimpleQueue(buffer_size=1 << 16)
    p = ctx.Process(target=_put_long, args=(q,))
    p.start()
    time.sleep(0.3)  # it has filled the ring with the first chunks and waits for room
    os.kill(p.pid, signal.SIGKILL)
    p.join()
    q.put(1)  # recovers the write side: the partial message is cancelled
    assert q.get_many(10, timeout=10) == [1]
    assert q.empty()


def test_reader_waiting_mid_message_recovers_a_dead_writer():
    ctx = cmp.get_context("fork")
    q = cq.SimpleQueue(buffer_size=1 << 16)
    p = ctx.Process(target=_put_long, args=(q,))
    p.start()
    time.sleep(0.3)
    os.kill(p.pid, signal.SIGSTOP)  # frozen mid-message
    got = []
    t = threading.Thread(target=lambda: got.extend(q.get_many(1, timeout=30)))
    t.start()
    time.sleep(0.3)  # the reader took the chunks there are and waits for the rest
    os.kill(p.pid, signal.SIGKILL)
    p.join()
    time.sleep(0.3)  # the reader notices (it probes the writer once per 50 ms slice)
    assert not got
    # a new put is not stuck behind the dead writer, and the reader gets it
    q.put("next")
    t.join(30)
    assert got == ["next"]


def _blocked_then_killed(ctx, target, args, q, flag):
    """Run target(*args) in a process, wait until it sleeps (q's sleep flag
    `flag` raised), SIGKILL it there."""
    p = ctx.Process(target=target, args=args)
    p.start()
    try:
        wait_until(lambda: q._debug_state()[flag], timeout=30)
    finally:
        os.kill(p.pid, signal.SIGKILL)
        p.join()


def _receive_behind_a_put(q, item, count):
    """Put `item` from a thread (it may have to wait for room) while this
    thread receives `count` messages; return them."""
    t = threading.Thread(target=q.put, args=(item,), daemon=True)
    t.start()
    got = []
    while len(got) < count:
        got.extend(q.get_many(count - len(got), timeout=30))
    t.join(30)
    assert not t.is_alive()
    return got


def test_writers_killed_before_publishing_a_long_message_leave_no_abort():
    # The ring is full to its last 8 bytes (the reserve that always keeps
    # room for one ABORT frame). Writers killed while waiting for room for the
    # first chunk of a long message have published none of it: their deaths
    # must append nothing (an ABORT appended for each ate the reserve, then
    # wrote over unread frames: the wedge of the kill loop).
    ctx = cmp.get_context("fork")
    q = cq.SimpleQueue(buffer_size=1 << 16)
    prefill = [b"a" * 16368] * 4 + [b"b" * 16]  # frames of 16376 * 4 + 24 = 65536 - 8 bytes
    for x in prefill:
        q.put(x)
    for _ in range(2):
        _blocked_then_killed(ctx, _put_long, (q,), q, "w_sleep")  # waits for room, holding the write lock
    assert _receive_behind_a_put(q, b"x", len(prefill) + 1) == prefill + [b"x"]
    assert q.empty()


def test_abort_of_a_dead_writers_partial_message_in_a_full_ring():
    # A dead writer published the first chunks of a long message, which
    # filled the ring to its last 8 bytes: the recovering put appends the
    # ABORT there, and must then wait for room (the free space computed as
    # capacity - reserve - used wrapped around and let it write over the
    # unread frames).
    ctx = cmp.get_context("fork")
    q = cq.SimpleQueue(buffer_size=1 << 16)
    first = b"a" * 16344  # a frame of 16352 bytes, then 3 chunks of 16392: 65536 - 8
    q.put(first)
    _blocked_then_killed(ctx, _put_long, (q,), q, "w_sleep")
    assert _receive_behind_a_put(q, b"x", 2) == [first, b"x"]
    assert q.empty()


def test_sleepers_killed_leave_no_sleep_flag_raised():
    # A process killed while sleeping left its sleep announcement (a count)
    # raised forever: every later put, get or task_done made a futex system
    # call. Now the next change of the word it slept on clears it.
    ctx = cmp.get_context("fork")
    q = cq.Queue(1)
    q.put(0)
    _blocked_then_killed(ctx, q.put, (1,), q, "room_sleep")  # waits for a slot
    assert q.get(timeout=30) == 0
    assert q._debug_state()["room_sleep"] == 0
    q.put(2)
    assert q.get(timeout=30) == 2

    sq = cq.SimpleQueue()
    _blocked_then_killed(ctx, sq.get, (), sq, "r_sleep")
    sq.put(3)
    assert sq._debug_state()["r_sleep"] == 0
    assert sq.get() == 3

    jq = cq.JoinableQueue()
    jq.put(4)
    _blocked_then_killed(ctx, jq.join, (), jq, "j_sleep")
    assert jq.get(timeout=30) == 4
    jq.task_done()
    assert jq._debug_state()["j_sleep"] == 0
    jq.join()


def _put_get_batches(q):
    while True:
        q.put_many([0] * 2000)
        q.get_many(2000, timeout=30)


def _stopped(pid):
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0] in ("T", "t")


def test_put_nowait_waits_for_a_lock_holder_on_a_queue_not_full():
    # put_nowait (and a put past its timeout) on a bounded queue raised Full
    # whenever another process held the write lock; the stdlib raises Full
    # only when the queue is full. Here the holder is stopped (SIGSTOP) inside
    # a put_many, holding the lock: put_nowait waits until it is continued.
    if not os.path.exists("/proc/self/stat"):
        pytest.skip("needs /proc")
    ctx = cmp.get_context("fork")
    q = cq.Queue(100_000)
    p = ctx.Process(target=_put_get_batches, args=(q,))
    p.start()
    try:
        deadline = time.monotonic() + 60
        while True:  # stop it until it is caught holding the write lock
            assert time.monotonic() < deadline
            os.kill(p.pid, signal.SIGSTOP)
            wait_until(lambda: _stopped(p.pid))
            if q._debug_state()["wlock_word"] & 0x3FFFFFFF == p.pid:
                break
            os.kill(p.pid, signal.SIGCONT)
            time.sleep(0.001)
        calling = threading.Event()
        outcome = []

        def put_nowait():
            calling.set()
            try:
                q.put_nowait("x")
                outcome.append("put")
            except BaseException as e:  # noqa: BLE001
                outcome.append(e)

        t = threading.Thread(target=put_nowait, daemon=True)
        t.start()
        calling.wait(30)
        time.sleep(0.05)  # not needed for the outcome: lets put_nowait find the lock taken
        os.kill(p.pid, signal.SIGCONT)
        t.join(30)
        assert outcome == ["put"]
    finally:
        p.kill()
        p.join()


def _put_very_long(q):
    q.put(b"z" * (1 << 22))  # spilled: the feeder streams it, holding the lock while readers take it


def test_put_nowait_behind_a_feeder_streaming_an_item_larger_than_the_ring():
    # The one holder of the write lock that holds it long: a feeder streaming
    # an item that never fits in the ring at once, waiting for readers (this
    # process may be the reader): put_nowait raises Full rather than wait.
    ctx = cmp.get_context("fork")
    q = cq.Queue(10, buffer_size=1 << 16)
    p = ctx.Process(target=_put_very_long, args=(q,))
    p.start()
    try:
        wait_until(lambda: (lambda st: st["w_in_msg"] and st["w_sleep"])(q._debug_state()), timeout=30)
        with pytest.raises(cq.Full):
            q.put_nowait(1)
        assert q.get(timeout=30) == b"z" * (1 << 22)
        q.put_nowait(2)
        assert q.get(timeout=30) == 2
    finally:
        p.join(30)
        if p.is_alive():
            p.kill()
            p.join()


def test_nothing_left_in_dev_shm():
    if not os.path.isdir("/dev/shm"):
        pytest.skip("no /dev/shm")
    before = set(os.listdir("/dev/shm"))
    ctx = cmp.get_context("fork")
    qs = [ctx.Queue(), ctx.JoinableQueue(), ctx.SimpleQueue()]
    p = ctx.Process(target=_echo, args=(qs[0], qs[1], 1))
    p.start()
    qs[0].put(1)
    assert qs[1].get(timeout=30) == 1
    p.join(30)
    assert set(os.listdir("/dev/shm")) - before == set()
