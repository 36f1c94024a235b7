"""Benchmark cases for cconc.multiprocessing's process-shared queues.

Each case keeps one partner process (fork) alive across rounds; a round tells
it what to do over a stdlib Pipe and the main process does the other half, so
process start-up is not timed. faster-fifo is measured beside the two sides
where it is installed (``pip install 'cconc[bench]'``).
"""
import os
from itertools import repeat

from cconc.bench import SkipCase, case

KIB = b"k" * 1024
MIB = b"m" * (1 << 20)
FASTER_FIFO = "faster-fifo"


def _make_queue(m, simple=False):
    if m.name == FASTER_FIFO:
        if simple:
            raise SkipCase("faster-fifo has no SimpleQueue")
        try:
            import faster_fifo
        except ImportError:
            raise SkipCase("faster-fifo is not installed") from None
        return faster_fifo.Queue(max_size_bytes=64 << 20)
    ctx = m.multiprocessing.get_context("fork")
    return ctx.SimpleQueue() if simple else ctx.Queue()


def _get_many(q, k):
    get_many = getattr(q, "get_many", None)
    if get_many is None:  # the stdlib: the loop a program would write
        get = q.get
        return [get() for _ in range(k)]
    if type(q).__module__.startswith("faster_fifo"):
        return get_many(max_messages_to_get=k)
    return get_many(k)


def _put_many(q, items):
    put_many = getattr(q, "put_many", None)
    if put_many is None:
        put = q.put
        for x in items:
            put(x)
    else:
        put_many(items)


def _partner(ctl, q, back, payload):
    while True:
        cmd = ctl.recv()
        if cmd is None:
            return
        op, n = cmd
        if op == "produce":
            put = q.put
            for _ in repeat(None, n):
                put(payload)
        elif op == "produce_many":
            batch = [payload] * 100
            for _ in repeat(None, n):
                _put_many(q, batch)
        elif op == "echo":
            get, put = q.get, back.put
            for _ in repeat(None, n):
                put(get())
        ctl.send(True)


def _with_partner(m, simple=False, payload=1, two_queues=False):
    import multiprocessing

    q = _make_queue(m, simple)
    back = _make_queue(m, simple) if two_queues else None
    ctl, child_ctl = multiprocessing.Pipe()
    p = multiprocessing.get_context("fork").Process(target=_partner, args=(child_ctl, q, back, payload), daemon=True)
    p.start()
    return q, back, ctl, p


def _stop(ctl, p):
    ctl.send(None)
    p.join(10)
    if p.is_alive():  # pragma: no cover - a wedged partner must not hang the run
        os.kill(p.pid, 9)
        p.join()


def _one_to_one(payload, simple=False):
    def build(m):
        q, _, ctl, p = _with_partner(m, simple, payload)

        def run(n):
            ctl.send(("produce", n))
            get = q.get
            for _ in repeat(None, n):
                get()
            ctl.recv()

        yield run
        _stop(ctl, p)

    return build


case("mp.Queue 1->1 processes, small ints", unit="item", extra=(FASTER_FIFO,))(_one_to_one(1))
case("mp.Queue 1->1 processes, 1 KiB bytes", unit="item", extra=(FASTER_FIFO,))(_one_to_one(KIB))
case("mp.Queue 1->1 processes, 1 MiB bytes", unit="item", extra=(FASTER_FIFO,))(_one_to_one(MIB))
case("mp.SimpleQueue 1->1 processes, small ints", unit="item")(_one_to_one(1, simple=True))


def _ping_pong(m, simple):
    q, back, ctl, p = _with_partner(m, simple=simple, two_queues=True)

    def run(n):
        ctl.send(("echo", n))
        put, get = q.put, back.get
        for _ in repeat(None, n):
            put(1)
            get()
        ctl.recv()

    yield run
    _stop(ctl, p)


@case("mp.Queue ping-pong, 2 processes", unit="round trip", extra=(FASTER_FIFO,))
def mp_ping_pong(m):
    yield from _ping_pong(m, simple=False)


@case("mp.SimpleQueue ping-pong, 2 processes", unit="round trip")
def mp_simple_ping_pong(m):
    yield from _ping_pong(m, simple=True)


@case("mp.Queue put_many/get_many 100 ints vs put/get loop, 1->1 processes", unit="100 items",
      extra=(FASTER_FIFO,))
def mp_batches(m):
    q, _, ctl, p = _with_partner(m)

    def run(n):
        ctl.send(("produce_many", n))
        left = 100 * n
        while left:
            left -= len(_get_many(q, min(100, left)))
        ctl.recv()

    yield run
    _stop(ctl, p)
