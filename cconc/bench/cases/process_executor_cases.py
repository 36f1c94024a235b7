"""Benchmark cases for cconc.futures.ProcessPoolExecutor (2 workers, fork).

The executor is built and warmed up once per case, so process start-up is
not timed. loky's ProcessPoolExecutor is measured beside the two sides where
it is installed.
"""
import multiprocessing
from itertools import repeat

from cconc.bench import SkipCase, case

LOKY = "loky"
WORKERS = 2
BATCH = 10_000


def _noop(x=None):
    return x


def _executor(m):
    if m.name == LOKY:
        try:
            import loky
        except ImportError:
            raise SkipCase("loky is not installed") from None
        return loky.ProcessPoolExecutor(WORKERS)
    return m.futures.ProcessPoolExecutor(WORKERS, mp_context=multiprocessing.get_context("fork"))


def _batches(n):
    while n > 0:
        size = min(n, BATCH)
        yield size
        n -= size


def _warm(executor):
    for f in [executor.submit(_noop, i) for i in range(4 * WORKERS)]:
        f.result()


@case("ProcessPoolExecutor(2) map over 10k trivial tasks", unit="task", extra=(LOKY,))
def ppe_map(m):
    executor = _executor(m)
    _warm(executor)

    def run(n):
        for size in _batches(n):
            for _ in executor.map(_noop, range(size)):
                pass

    yield run
    executor.shutdown()


@case("ProcessPoolExecutor(2) submit+result, one at a time", unit="task", extra=(LOKY,))
def ppe_submit_result(m):
    executor = _executor(m)
    _warm(executor)

    def run(n):
        submit = executor.submit
        for _ in repeat(None, n):
            submit(_noop).result()

    yield run
    executor.shutdown()


@case("ProcessPoolExecutor(2) submit 10k then as_completed", unit="task", extra=(LOKY,))
def ppe_submit_all_as_completed(m):
    futures = m.futures if m.name != LOKY else __import__("concurrent.futures").futures
    executor = _executor(m)
    _warm(executor)

    def run(n):
        submit, as_completed = executor.submit, futures.as_completed
        for size in _batches(n):
            fs = [submit(_noop, i) for i in range(size)]
            for f in as_completed(fs):
                f.result()

    yield run
    executor.shutdown()
