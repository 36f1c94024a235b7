"""Benchmark cases for multiprocessing.Pool (fork, 2 workers).

One pool per side lives across the rounds (start-up is its own case). mpire
and loky are measured beside the two sides where they are installed; their
rows use their own APIs for the same work.
"""
from itertools import repeat

from cconc.bench import SkipCase, case

MIB = b"m" * (1 << 20)
WORKERS = 2
MPIRE = "mpire"
LOKY = "loky"


def _identity(x):
    return x


class _MpireSide:
    def __init__(self):
        try:
            from mpire import WorkerPool
        except ImportError:
            raise SkipCase("mpire is not installed") from None
        self.pool = WorkerPool(WORKERS, start_method="fork", keep_alive=True)

    def map(self, func, items, chunksize=None):
        return self.pool.map(func, items, chunk_size=chunksize)

    def imap(self, func, items, chunksize=1):
        return self.pool.imap(func, items, chunk_size=chunksize)

    def imap_unordered(self, func, items, chunksize=1):
        return self.pool.imap_unordered(func, items, chunk_size=chunksize)

    def apply_async(self, func, args):
        return self.pool.apply_async(func, args)

    def terminate(self):
        self.pool.terminate()

    def join(self):
        pass


class _LokySide:
    def __init__(self):
        try:
            from loky import get_reusable_executor
        except ImportError:
            raise SkipCase("loky is not installed") from None
        self.ex = get_reusable_executor(max_workers=WORKERS)

    def map(self, func, items, chunksize=None):
        return list(self.ex.map(func, items, chunksize=chunksize or 1))

    def imap(self, func, items, chunksize=1):
        return self.ex.map(func, items, chunksize=chunksize)

    imap_unordered = imap

    def apply_async(self, func, args):
        fut = self.ex.submit(func, *args)
        fut.get = fut.result
        return fut

    def terminate(self):
        self.ex.shutdown(wait=True)

    def join(self):
        pass


def _pool(m):
    if m.name == MPIRE:
        return _MpireSide()
    if m.name == LOKY:
        return _LokySide()
    return m.multiprocessing.get_context("fork").Pool(WORKERS)


def _with_pool(body):
    def build(m):
        p = _pool(m)
        p.map(_identity, range(100))  # workers up and warm
        try:
            yield body(p)
        finally:
            p.terminate()
            p.join()

    return build


EXTRA = (MPIRE, LOKY)


@case("Pool.map chunksize=1, trivial tasks, 2 workers", unit="task", extra=EXTRA)
@_with_pool
def pool_map_chunksize_1(p):
    def run(n):
        p.map(_identity, range(n), chunksize=1)

    return run


@case("Pool.map default chunksize, trivial tasks, 2 workers", unit="task", extra=EXTRA)
@_with_pool
def pool_map_default_chunksize(p):
    def run(n):
        p.map(_identity, range(n))

    return run


@case("Pool.imap chunksize=1, trivial tasks, 2 workers", unit="task", extra=EXTRA)
@_with_pool
def pool_imap(p):
    def run(n):
        for _ in p.imap(_identity, range(n)):
            pass

    return run


@case("Pool.imap_unordered chunksize=1, trivial tasks, 2 workers", unit="task", extra=EXTRA)
@_with_pool
def pool_imap_unordered(p):
    def run(n):
        for _ in p.imap_unordered(_identity, range(n)):
            pass

    return run


@case("Pool.apply_async+get one at a time, 2 workers", unit="call", extra=EXTRA)
@_with_pool
def pool_apply_async_get(p):
    def run(n):
        apply_async = p.apply_async
        for i in repeat(1, n):
            apply_async(_identity, (i,)).get()

    return run


@case("Pool.map over 1 MiB bytes (sent and returned), 2 workers", unit="payload", extra=EXTRA)
@_with_pool
def pool_map_mib(p):
    def run(n):
        p.map(_identity, [MIB] * n, chunksize=1)

    return run


@case("Pool start + close + join, 2 workers (fork)", unit="pool")
def pool_start_close_join(m):
    ctx = m.multiprocessing.get_context("fork")

    def run(n):
        for _ in repeat(None, n):
            p = ctx.Pool(WORKERS)
            p.close()
            p.join()

    yield run
