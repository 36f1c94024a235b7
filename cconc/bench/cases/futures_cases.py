"""Benchmark cases for cconc.futures.

The batch cases work on batches of up to BATCH futures (50k): run(n) handles
n items in ceil(n / BATCH) batches, so their unit is one item (one task, one
future) and the ratio does not depend on how many the calibration picked.
"""
from itertools import repeat

from cconc.bench import case

BATCH = 50_000


def _batches(n):
    while n > 0:
        size = min(n, BATCH)
        yield size
        n -= size


def _noop(x=None):
    return x


@case("Future set_result+result")
def future_set_result_result(m):
    Future = m.futures.Future

    def run(n):
        for _ in repeat(None, n):
            f = Future()
            f.set_result(1)
            f.result()

    yield run


@case("ThreadPoolExecutor(4) submit+result, one at a time", unit="task")
def executor_submit_result(m):
    executor = m.futures.ThreadPoolExecutor(4)

    def run(n):
        submit = executor.submit
        for _ in repeat(None, n):
            submit(_noop).result()

    yield run
    executor.shutdown()


@case("ThreadPoolExecutor(4) map over 50k items", unit="item")
def executor_map(m):
    executor = m.futures.ThreadPoolExecutor(4)

    def run(n):
        for size in _batches(n):
            for _ in executor.map(_noop, range(size)):
                pass

    yield run
    executor.shutdown()


@case("ThreadPoolExecutor(4) submit 50k then collect", unit="task")
def executor_submit_all_collect(m):
    executor = m.futures.ThreadPoolExecutor(4)

    def run(n):
        submit = executor.submit
        for size in _batches(n):
            fs = [submit(_noop, i) for i in range(size)]
            for f in fs:
                f.result()

    yield run
    executor.shutdown()


@case("as_completed over 50k pool futures", unit="future")
def as_completed_50k(m):
    futures = m.futures
    executor = futures.ThreadPoolExecutor(4)

    def run(n):
        submit, as_completed = executor.submit, futures.as_completed
        for size in _batches(n):
            fs = [submit(_noop, i) for i in range(size)]
            for f in as_completed(fs):
                pass

    yield run
    executor.shutdown()


@case("wait over 50k pool futures", unit="future")
def wait_50k(m):
    futures = m.futures
    executor = futures.ThreadPoolExecutor(4)

    def run(n):
        submit, wait = executor.submit, futures.wait
        for size in _batches(n):
            fs = [submit(_noop, i) for i in range(size)]
            done, not_done = wait(fs)
            assert not not_done

    yield run
    executor.shutdown()
