"""Bad input, table-driven and differential: each case runs on the stdlib
module and on its cconc mirror in the same process, and both must end the
same way (the same exception class, or equal results), on every Python
version. Values: wrong types, negatives, NaN, infinities, huge numbers,
numbers of other kinds (Decimal, Fraction, bool)."""
import concurrent.futures as std_futures
import math
import os
import queue as std_queue
import selectors as std_selectors
import socket
import sys
import weakref
from decimal import Decimal
from fractions import Fraction

import pytest

import cconc.futures as cc_futures
import cconc.queue as cc_queue
import cconc.selectors as cc_selectors

pytestmark = pytest.mark.timeout(120)

NAN = float("nan")
INF = float("inf")

# Values a timeout may be given as, none of which may wait long: each either
# fails at once or waits at most a few hundredths of a second.
TIMEOUTS = [
    None, -1, -0.5, -INF, -(10**400), 0, 0.0, 0.01, NAN, INF, 1e300, 2**63, 10**400, True, False,
    "1", b"1", [], Decimal("0.01"), Decimal("-1"), Fraction(1, 100), complex(1, 0), object(),
]
NUMBERS = [0, 1, -1, 2, 1.5, -1.5, NAN, INF, -INF, 2**63, -(2**63), 10**400, True, None, "3", Decimal(2),
           Fraction(3, 2), [], object()]


def is_nan(x):
    return isinstance(x, float) and math.isnan(x)


def outcome(fn):
    try:
        r = fn()
    except BaseException as e:  # noqa: B902 - the class is the outcome
        if isinstance(e, (KeyboardInterrupt, SystemExit)):
            raise
        return ("raises", _std_name(type(e)))
    return ("returns", _normalize(r))


def _std_name(cls):
    # cconc.queue.ShutDown before 3.13 has no stdlib class to be: same name.
    return cls.__name__


def _normalize(r):
    if isinstance(r, (list, tuple)):
        return type(r).__name__, [_normalize(x) for x in r]
    if isinstance(r, float) and math.isnan(r):
        return "nan"
    if isinstance(r, (int, float, str, bool, type(None), Decimal, Fraction)):
        return r
    return type(r).__name__


def case_id(v):
    r = repr(v)
    return r if len(r) < 30 else r[:27] + "..."


def differential(make):
    """make(module_dict) -> callable; compare both outcomes."""
    std = outcome(make(STD))
    cc = outcome(make(CC))
    assert cc == std


STD = {"queue": std_queue, "futures": std_futures, "selectors": std_selectors}
CC = {"queue": cc_queue, "futures": cc_futures, "selectors": cc_selectors}


# ------------------------------------------------------------------- queue

QUEUE_KINDS = ["Queue", "LifoQueue", "PriorityQueue"]


@pytest.mark.parametrize("kind", QUEUE_KINDS)
@pytest.mark.parametrize("maxsize", NUMBERS, ids=case_id)
def test_queue_maxsize(kind, maxsize):
    def make(m):
        def run():
            q = getattr(m["queue"], kind)(maxsize)
            seen = [q.maxsize is maxsize or q.maxsize == maxsize, q.qsize(), q.empty()]
            for op in (lambda: q.full(), lambda: q.put(1, timeout=0.01), lambda: q.put_nowait(2),
                       lambda: q.put(3, timeout=0.01), lambda: q.full(), lambda: q.qsize(), lambda: q.get_nowait()):
                seen.append(outcome(op))
            return seen

        return run

    differential(make)


@pytest.mark.parametrize("kind", QUEUE_KINDS + ["SimpleQueue"])
@pytest.mark.parametrize("timeout", TIMEOUTS, ids=case_id)
@pytest.mark.parametrize("block", [True, False, None, 0, "x"], ids=case_id)
def test_queue_get_timeout(kind, timeout, block):
    if timeout is None and block not in (False, None, 0):
        pytest.skip("waits forever")
    if is_nan(timeout) and block not in (False, None, 0) and kind != "SimpleQueue":
        pytest.skip("the stdlib spins forever (NaN < 0 and NaN <= 0 are false); cconc raises ValueError")

    def make(m):
        def run():
            q = getattr(m["queue"], kind)()
            return q.get(block, timeout)

        return run

    differential(make)


@pytest.mark.parametrize("kind", QUEUE_KINDS)
@pytest.mark.parametrize("timeout", TIMEOUTS, ids=case_id)
@pytest.mark.parametrize("block", [True, False], ids=case_id)
def test_queue_put_timeout_when_full(kind, timeout, block):
    if timeout is None and block:
        pytest.skip("waits forever")
    if is_nan(timeout) and block:
        pytest.skip("the stdlib spins forever (NaN < 0 and NaN <= 0 are false); cconc raises ValueError")

    def make(m):
        def run():
            q = getattr(m["queue"], kind)(1)
            q.put(0)
            return q.put(1, block, timeout)

        return run

    differential(make)


@pytest.mark.parametrize("kind", QUEUE_KINDS)
@pytest.mark.parametrize("timeout", TIMEOUTS, ids=case_id)
def test_queue_put_timeout_when_room(kind, timeout):
    # As the stdlib: an unbounded queue never looks at the timeout.
    def make(m):
        def run():
            q = getattr(m["queue"], kind)()
            q.put(1, True, timeout)
            return q.qsize()

        return run

    differential(make)


@pytest.mark.parametrize("kind", QUEUE_KINDS + ["SimpleQueue"])
@pytest.mark.parametrize("call", [
    lambda q: q.put(), lambda q: q.put(1, True, None, 5), lambda q: q.put(1, bogus=1), lambda q: q.get(1, 2, 3),
    lambda q: q.get(bogus=1), lambda q: q.put_nowait(), lambda q: q.get_nowait(1), lambda q: q.qsize(1),
    lambda q: q.task_done(), lambda q: q.join(1), lambda q: q.empty(1), lambda q: q.full(1),
], ids=range(12))
def test_queue_bad_calls(kind, call):
    def make(m):
        return lambda: call(getattr(m["queue"], kind)())

    differential(make)


@pytest.mark.parametrize("kind", QUEUE_KINDS + ["SimpleQueue"])
@pytest.mark.parametrize("args", [(1,), (1, 2), ("x",)], ids=case_id)
def test_queue_constructor_arity(kind, args):
    def make(m):
        return lambda: getattr(m["queue"], kind)(*args).qsize()

    differential(make)


@pytest.mark.parametrize("kind", QUEUE_KINDS)
def test_queue_copy(kind):
    import copy
    import pickle

    def make(m):
        def run():
            q = getattr(m["queue"], kind)(5)
            q.put(2)
            q.put(1)
            c = copy.copy(q)
            seen = [type(c) is type(q), c.maxsize, outcome(lambda: copy.deepcopy(q)),
                    outcome(lambda: pickle.dumps(q))]
            return seen

        return run

    differential(make)


# ----------------------------------------------------------------- futures


@pytest.mark.parametrize("timeout", TIMEOUTS, ids=case_id)
@pytest.mark.parametrize("method", ["result", "exception"])
def test_future_wait_timeout(timeout, method):
    if timeout is None:
        pytest.skip("waits forever")

    def make(m):
        return lambda: getattr(m["futures"].Future(), method)(timeout)

    differential(make)


@pytest.mark.parametrize("timeout", TIMEOUTS, ids=case_id)
def test_wait_timeout(timeout):
    if timeout is None:
        pytest.skip("waits forever")

    def make(m):
        def run():
            f = m["futures"].Future()
            done, not_done = m["futures"].wait([f], timeout)
            return len(done), len(not_done)

        return run

    differential(make)


@pytest.mark.parametrize("return_when", ["FIRST_COMPLETED", "bogus", None, 1, "ALL_COMPLETED"], ids=case_id)
@pytest.mark.parametrize("fs", [[], "done", "pending"])
def test_wait_return_when(return_when, fs):
    def make(m):
        def run():
            f = m["futures"].Future()
            if fs == "done":
                f.set_result(1)
            futures = [] if fs == [] else [f]
            done, not_done = m["futures"].wait(futures, 0.01, return_when)
            return len(done), len(not_done)

        return run

    differential(make)


@pytest.mark.parametrize("timeout", TIMEOUTS, ids=case_id)
@pytest.mark.parametrize("pending", [True, False])
def test_as_completed_timeout(timeout, pending):
    if timeout is None and pending:
        pytest.skip("waits forever")
    if is_nan(timeout) and pending:
        pytest.skip("the stdlib spins forever (NaN < 0 is false, Event.wait(NaN) returns at once)")

    def make(m):
        def run():
            f = m["futures"].Future()
            if not pending:
                f.set_result(1)
            return [g.result() for g in m["futures"].as_completed([f], timeout)]

        return run

    differential(make)


@pytest.mark.parametrize("fs", [None, 1, "ab", [1], [None]], ids=case_id)
def test_as_completed_and_wait_bad_fs(fs):
    def make(m):
        def run():
            return [outcome(lambda: list(m["futures"].as_completed(fs, 0.01))),
                    outcome(lambda: m["futures"].wait(fs, 0.01))]

        return run

    differential(make)


def test_as_completed_iterator_is_weakrefable():
    def make(m):
        def run():
            f = m["futures"].Future()
            f.set_result(1)
            it = m["futures"].as_completed([f])
            return weakref.ref(it)() is it, next(it).result(), iter(it) is it

        return run

    differential(make)


@pytest.mark.parametrize("kwargs", [
    {"max_workers": 0}, {"max_workers": -1}, {"max_workers": 1.5}, {"max_workers": "2"}, {"max_workers": None},
    {"max_workers": 2**63}, {"max_workers": True}, {"initializer": 1}, {"initargs": 1},
    {"initializer": print, "initargs": 1}, {"initializer": print, "initargs": None},
    {"thread_name_prefix": None}, {"thread_name_prefix": 1},
], ids=case_id)
def test_thread_pool_executor_arguments(kwargs):
    def make(m):
        def run():
            ex = m["futures"].ThreadPoolExecutor(**kwargs)
            try:
                f = ex.submit(int, 3)
                return outcome(lambda: f.result(10))
            finally:
                ex.shutdown(wait=True)

        return run

    differential(make)


@pytest.mark.parametrize("timeout", [None, -1, 30, "1", NAN], ids=case_id)
def test_executor_map_timeout(timeout):
    def make(m):
        def run():
            with m["futures"].ThreadPoolExecutor(1) as ex:
                return list(ex.map(int, ["1", "2"], timeout=timeout))

        return run

    differential(make)


# --------------------------------------------------------------- selectors

SELECTOR_NAMES = [n for n in ("SelectSelector", "PollSelector", "EpollSelector")
                  if hasattr(std_selectors, n) and hasattr(cc_selectors, n)]


@pytest.fixture(scope="module")
def sock():
    a, b = socket.socketpair()
    b.send(b"x")  # readable: select() returns at once whatever the timeout
    yield a
    a.close()
    b.close()


@pytest.mark.parametrize("name", SELECTOR_NAMES)
@pytest.mark.parametrize("fileobj", ["sock", -1, 2**31, 2**70, 1.5, None, "3", True], ids=case_id)
@pytest.mark.parametrize("events", [1, 3, 0, 4, -1, 1.5, None, "1", True, 2**70], ids=case_id)
def test_selector_register(name, fileobj, events, sock):
    def make(m):
        def run():
            sel = getattr(m["selectors"], name)()
            try:
                obj = sock if fileobj == "sock" else fileobj
                key = sel.register(obj, events)
                return [key.events, outcome(lambda: sel.select(0) and None), len(sel.get_map())]
            finally:
                sel.close()

        return run

    differential(make)


@pytest.mark.parametrize("name", SELECTOR_NAMES)
@pytest.mark.parametrize("timeout", TIMEOUTS, ids=case_id)
def test_selector_select_timeout(name, timeout, sock):
    def make(m):
        def run():
            sel = getattr(m["selectors"], name)()
            try:
                sel.register(sock, m["selectors"].EVENT_READ)
                return len(sel.select(timeout))
            finally:
                sel.close()

        return run

    differential(make)


@pytest.mark.parametrize("name", SELECTOR_NAMES)
@pytest.mark.parametrize("call", ["modify", "unregister", "get_key", "modify_bad_events", "register_twice"])
def test_selector_bad_calls(name, call, sock):
    def make(m):
        def run():
            sel = getattr(m["selectors"], name)()
            try:
                if call == "modify":
                    return sel.modify(sock, 1)
                if call == "unregister":
                    return sel.unregister(sock)
                if call == "get_key":
                    return sel.get_key(sock)
                sel.register(sock, 1)
                if call == "register_twice":
                    return sel.register(sock, 2)
                return sel.modify(sock, 8)
            finally:
                sel.close()

        return run

    differential(make)
