"""Odd arguments to every threading primitive's timeout, blocking and count
parameters, table-driven and differential: the same exception type, or the
same return value, or both block, on the stdlib and on cconc, for the
running Python version (each version converts timeouts its own way)."""
import copy
import math
import queue as std_queue
import threading as std_threading
import time
import warnings
from decimal import Decimal
from fractions import Fraction

import pytest

pytestmark = pytest.mark.timeout(300)


class FloatOnly:
    def __float__(self):
        return 0.01

    def __repr__(self):
        return "FloatOnly()"


class IndexOnly:
    def __index__(self):
        return 0

    def __repr__(self):
        return "IndexOnly()"


class IntOnly:
    def __int__(self):
        return 0

    def __repr__(self):
        return "IntOnly()"


class BadBool:
    def __bool__(self):
        raise ZeroDivisionError("bool")

    def __repr__(self):
        return "BadBool()"


TIMEOUT_MAX = std_threading.TIMEOUT_MAX

#: returns or raises at once wherever a timeout would be waited for
QUICK = [None, 0, 0.01, -1, -2, -0.5, -1e-9, -1.0000000001, math.nan, math.inf, -math.inf, 1e300, -1e300,
         2**63, 2**64, -2**63, 10**400, -10**400, False, Decimal("0.01"), Decimal("-1"), Fraction(1, 100),
         Fraction(-1, 100), FloatOnly(), IndexOnly(), IntOnly(), "1", [], 1 + 0j, BadBool(), TIMEOUT_MAX * 2,
         int(TIMEOUT_MAX) + 1, 9223372037.0]
#: may wait long (or forever) on some primitive: used only where nothing waits
SLOW = [True, 2**31, TIMEOUT_MAX, -0.9999999999]
ALL = QUICK + SLOW


def _counts(below):
    """Counts for Semaphore(value) and release(n): the stdlib keeps any
    number it is given; cconc counts in ints (a documented difference), and
    agrees wherever the stdlib refuses (its `value < 0` / `n < 1` test)."""
    def refused_or_int(v):
        try:
            if v < below:
                return True
        except TypeError:
            return True
        # (the stdlib's release(n) also notifies n times: no huge counts)
        return isinstance(v, int) and abs(v) <= 1000
    return [v for v in ALL if refused_or_int(v)] + [7]


VALUE_COUNTS = _counts(0)
RELEASE_COUNTS = _counts(1)


def _cases(threading, queue):
    """name -> (values, setup); setup() returns (call(value), unblock)."""

    def held(kind):
        def setup():
            lock = getattr(threading, kind)()
            lock.acquire()  # by this thread; the call runs in another
            return lock, lock.release
        return setup

    def free(kind):
        return lambda: (getattr(threading, kind)(), None)

    def semaphore(kind, value):
        def setup():
            sem = getattr(threading, kind)(1)  # bounded at 1: room for the unblocking release
            if value == 0:
                sem.acquire()
            return sem, sem.release
        return setup

    def event(is_set):
        def setup():
            e = threading.Event()
            if is_set:
                e.set()
            return e, e.set
        return setup

    def condition():
        cond = threading.Condition()
        done = []  # wait_for's predicate, made true to unblock

        def unblock():
            with cond:
                done.append(True)
                cond.notify_all()
        return (cond, done), unblock

    def with_cond(call):
        def run(cond_done, v):
            cond, done = cond_done
            with cond:
                return call(cond, done, v)
        return run

    def simplequeue(items):
        def setup():
            q = queue.SimpleQueue()
            for i in range(items):
                q.put(i)
            return q, lambda: q.put(0)
        return setup

    cases = {}
    for kind in ("Lock", "RLock"):
        cases[f"{kind}.acquire(timeout=v), free"] = (ALL, free(kind), lambda o, v: o.acquire(timeout=v))
        cases[f"{kind}.acquire(blocking=v), free"] = (ALL, free(kind), lambda o, v: o.acquire(blocking=v))
        cases[f"{kind}.acquire(v), free"] = (ALL, free(kind), lambda o, v: o.acquire(v))
        cases[f"{kind}.acquire(False, v), free"] = (ALL, free(kind), lambda o, v: o.acquire(False, v))
        cases[f"{kind}.acquire(v, 0), held"] = (ALL, held(kind), lambda o, v: o.acquire(v, 0))
        cases[f"{kind}.acquire(v, timeout=v), held"] = (QUICK, held(kind), lambda o, v: o.acquire(v, timeout=v))
        cases[f"{kind}.acquire(timeout=v), held"] = (QUICK + [2**31, -0.9999999999], held(kind),
                                                     lambda o, v: o.acquire(timeout=v))
    for kind in ("Semaphore", "BoundedSemaphore"):
        cases[f"{kind}(0).acquire(timeout=v)"] = (QUICK + [2**31], semaphore(kind, 0),
                                                  lambda o, v: o.acquire(timeout=v))
        cases[f"{kind}(1).acquire(timeout=v)"] = (ALL, semaphore(kind, 1), lambda o, v: o.acquire(timeout=v))
        cases[f"{kind}(0).acquire(v, 0)"] = (ALL, semaphore(kind, 0), lambda o, v: o.acquire(v, 0))
        cases[f"{kind}(0).acquire(False, v)"] = (ALL, semaphore(kind, 0), lambda o, v: o.acquire(False, v))
        cases[f"{kind}(v)"] = (VALUE_COUNTS, lambda kind=kind: (getattr(threading, kind), None), lambda o, v: o(v)._value)
        cases[f"{kind}(1).release(v)"] = (RELEASE_COUNTS, semaphore(kind, 1), lambda o, v: o.release(v))
        cases[f"{kind}(0).release(v)"] = (RELEASE_COUNTS, semaphore(kind, 0), lambda o, v: o.release(v))
    cases["Event.wait(v), unset"] = (QUICK + [2**31], event(False), lambda o, v: o.wait(v))
    cases["Event.wait(v), set"] = (ALL, event(True), lambda o, v: o.wait(v))
    cases["Condition.wait(v)"] = (QUICK + [2**31], condition, with_cond(lambda c, done, v: c.wait(v)))
    cases["Condition.wait_for(false, v)"] = (QUICK + [2**31], condition,
                                            with_cond(lambda c, done, v: c.wait_for(lambda: done, v)))
    cases["Condition.wait_for(true, v)"] = (ALL, condition, with_cond(lambda c, done, v: c.wait_for(lambda: 1, v)))
    cases["Condition.notify(v), nobody waits"] = (ALL, condition, with_cond(lambda c, done, v: c.notify(v)))
    cases["Barrier(2).wait(v)"] = (QUICK + [2**31], lambda: (lambda b: (b, b.abort))(threading.Barrier(2)),
                                   lambda o, v: o.wait(v))
    cases["Barrier(1).wait(v)"] = (ALL, lambda: (threading.Barrier(1), None), lambda o, v: o.wait(v))
    # (the stdlib before 3.13 keeps any object as parties: cconc takes ints)
    cases["Barrier(v)"] = ([-2, -1, 0, 1, 2, True, False], lambda: (threading.Barrier, None), lambda o, v: o(v).parties)
    cases["Barrier(2, timeout=v).wait()"] = (QUICK + [2**31], lambda: (threading.Barrier, None), None)
    cases["SimpleQueue().get(timeout=v)"] = (QUICK + [2**31], simplequeue(0), lambda o, v: o.get(timeout=v))
    cases["SimpleQueue(1 item).get(timeout=v)"] = (ALL, simplequeue(1), lambda o, v: o.get(timeout=v))
    cases["SimpleQueue().get(False, v)"] = (ALL, simplequeue(0), lambda o, v: o.get(False, v))
    cases["SimpleQueue().get(v, 0)"] = (ALL, simplequeue(0), lambda o, v: o.get(v, 0))
    return {name: case for name, case in cases.items() if case[2] is not None}


def _outcomes(threading, queue, patience=2.0, only=None):
    """Run every (case, value) at once (or those of `only`), each in its own
    thread; the calls still running once none has ended for `patience`
    seconds are woken and reported as blocking. (A deadline per call is not
    enough: with a thousand threads taking turns at the GIL, a call that
    returns at once may wait seconds for its turn, under load.)"""
    runs = []
    for name, (values, setup, call) in _cases(threading, queue).items():
        for value in values:
            if only is not None and (name, repr(value)) not in only:
                continue
            obj, unblock = setup()
            result = {}

            def run(call=call, obj=obj, value=value, result=result):
                try:
                    r = call(obj, value)
                    result["r"] = ("returns", r if isinstance(r, (bool, int, type(None))) else type(r).__name__)
                except BaseException as e:  # noqa: B902 - the exception's type is the outcome
                    result["r"] = ("raises", type(e).__name__)

            t = std_threading.Thread(target=run, daemon=True)
            runs.append(((name, repr(value)), t, unblock, result))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 3.9's __int__ conversions, notifyAll...
        for _, t, _, _ in runs:
            t.start()
        give_up = time.monotonic() + 120
        alive = len(runs)
        last_progress = time.monotonic()
        while alive and time.monotonic() - last_progress < patience and time.monotonic() < give_up:
            time.sleep(0.05)
            now_alive = sum(t.is_alive() for _, t, _, _ in runs)
            if now_alive != alive:
                alive, last_progress = now_alive, time.monotonic()
        outcomes = {}
        for key, t, unblock, result in runs:
            if t.is_alive():
                if unblock:
                    unblock()
                t.join(10)
                outcomes[key] = ("blocks",)
            else:
                outcomes[key] = result["r"]
    return outcomes


def test_bad_timeouts_blocking_and_counts_match_the_stdlib():
    import cconc.queue
    import cconc.threading

    expected = _outcomes(std_threading, std_queue)
    got = _outcomes(cconc.threading, cconc.queue)
    # A call reported as blocking may only have been starved of the GIL for
    # `patience` seconds on a loaded machine (it happened once in CI, on
    # 3.9's stdlib side): a difference counts when it persists with the case
    # run alone.
    differing = {key for key in expected if expected[key] != got[key]}
    if differing:
        expected.update(_outcomes(std_threading, std_queue, only=differing))
        got.update(_outcomes(cconc.threading, cconc.queue, only=differing))
    differences = [f"{name} with {value}: stdlib {expected[name, value]}, cconc {got[name, value]}"
                   for name, value in expected if expected[name, value] != got[name, value]]
    assert differences == [], "\n".join([f"{len(differences)} of {len(expected)} differ:"] + differences)


def test_copy_event(threading_mod):
    """copy.copy(Event()) works as the stdlib's shallow copy of its __dict__:
    the copy starts with the original's flag."""
    e = threading_mod.Event()
    e.set()
    c = copy.copy(e)
    assert c is not e and isinstance(c, threading_mod.Event)
    assert c.is_set()
    assert not copy.copy(threading_mod.Event()).is_set()


def test_copy_event_subclass_and_deepcopy(threading_mod):
    class Tagged(threading_mod.Event):
        pass

    e = Tagged()
    e.tag = ["shared"]
    c = copy.copy(e)
    assert type(c) is Tagged and c.tag is e.tag and not c.is_set()
    with pytest.raises(TypeError):
        copy.deepcopy(threading_mod.Event())  # the stdlib's lock cannot be copied
