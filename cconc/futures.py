"""Drop-in mirror of the stdlib's :mod:`concurrent.futures`.

``Future``, ``ThreadPoolExecutor``, ``wait`` and ``as_completed`` are native
(cconc._cconc); ``ProcessPoolExecutor`` runs on cconc's process pool
(cconc/_process_executor.py); everything else is the stdlib's own object: the
exceptions (``CancelledError``, ``TimeoutError``, ``BrokenExecutor``,
``InvalidStateError``), the constants and ``Executor``.

``Future`` derives from the native core *and* from ``concurrent.futures.Future``
so that ``isinstance(f, concurrent.futures.Future)`` holds, which asyncio
requires (``wrap_future``, ``loop.run_in_executor``); likewise
``ThreadPoolExecutor`` is a ``concurrent.futures.ThreadPoolExecutor``
(``loop.set_default_executor`` checks that). The native core comes first in
the MRO: every public method is the native one.
"""
import collections
import itertools
import math
import os
import sys
import threading
import time
import weakref

import concurrent.futures as _std
from concurrent.futures import _base
from concurrent.futures import thread as _thread
from concurrent.futures import (  # noqa: F401  (the stdlib's own objects)
    ALL_COMPLETED,
    FIRST_COMPLETED,
    FIRST_EXCEPTION,
    BrokenExecutor,
    CancelledError,
    Executor,
    InvalidStateError,
    TimeoutError,
)
from concurrent.futures.thread import BrokenThreadPool

from cconc import _cconc
from cconc import _mirror
from cconc._cconc import as_completed, wait  # noqa: F401
from cconc._process_executor import ProcessPoolExecutor  # noqa: F401

__all__ = tuple(_std.__all__)


class Future(_cconc._FutureCore, _base.Future):
    """Represents the result of an asynchronous computation (native)."""


# Stdlib helpers the native core makes meaningless: fail loudly rather than
# touch attributes that do not exist.
Future._invoke_callbacks = None
Future._Future__get_result = None


def _result_or_cancel(fut, timeout=None):
    try:
        try:
            return fut.result(timeout)
        finally:
            fut.cancel()
    finally:
        # Break a reference cycle with the exception in the future
        del fut


# ------------------------------------------------------------- executors

# Threads and work queues of every executor, for joining at interpreter exit.
_threads_queues = weakref.WeakKeyDictionary()
# Held while workers are started, so that none starts unseen by _python_exit.
_global_shutdown_lock = threading.Lock()


def _python_exit():
    with _global_shutdown_lock:
        _cconc._futures_interpreter_exit()
    items = list(_threads_queues.items())
    for t, q in items:
        q._wake_all()
    for t, q in items:
        t.join()


# Called just before the interpreter joins its non-daemon threads, as the
# stdlib's ThreadPoolExecutor does (subinterpreters lack daemon threads).
threading._register_atexit(_python_exit)

if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=_global_shutdown_lock.acquire,
        after_in_child=_global_shutdown_lock._at_fork_reinit,
        after_in_parent=_global_shutdown_lock.release,
    )


def _spawn_worker(executor, index):
    """Start worker number `index` of `executor` (the native submit() asks)."""
    queue = executor._work_queue
    name = "%s_%d" % (executor._thread_name_prefix or executor, index)
    with _global_shutdown_lock:
        t = threading.Thread(name=name, target=queue._worker)
        t.start()
        executor._threads.add(t)
        _threads_queues[t] = queue


class ThreadPoolExecutor(_cconc._ThreadPoolExecutorCore, _thread.ThreadPoolExecutor):
    """A thread pool whose queue, worker loop and futures are native."""

    # _counter is the stdlib's (inherited): executor numbers stay unique
    # across stdlib and cconc pools, as ThreadPoolExecutor-N_M names show.

    def __init__(self, max_workers=None, thread_name_prefix="", initializer=None, initargs=()):
        if max_workers is None:
            max_workers = min(32, (os.cpu_count() or 1) + 4)
        if max_workers <= 0:
            raise ValueError("max_workers must be greater than 0")
        if initializer is not None and not callable(initializer):
            raise TypeError("initializer must be a callable")
        # The native core counts threads in a Py_ssize_t; the stdlib compares
        # len(threads) < max_workers, which a float or a huge int also allows.
        limit = min(max_workers if isinstance(max_workers, int) else math.ceil(max_workers), sys.maxsize)
        super().__init__(limit, initializer, initargs)
        self._max_workers = max_workers
        self._threads = set()
        self._thread_name_prefix = thread_name_prefix or ("ThreadPoolExecutor-%d" % self._counter())
        self._initializer = initializer
        self._initargs = initargs

    def map(self, fn, *iterables, timeout=None, chunksize=1, buffersize=None):
        """Returns an iterator equivalent to map(fn, iter).

        As the stdlib's (Python 3.14 API): with *buffersize*, at most that many
        calls are submitted ahead of the results consumed, and the input is
        read lazily, so an endless iterable works.
        """
        if buffersize is not None and not isinstance(buffersize, int):
            raise TypeError("buffersize must be an integer or None")
        if buffersize is not None and buffersize < 1:
            raise ValueError("buffersize must be None or > 0")

        if timeout is not None:
            end_time = timeout + time.monotonic()

        zipped_iterables = zip(*iterables)
        submit = self.submit
        if buffersize:
            fs = collections.deque(submit(fn, *args) for args in itertools.islice(zipped_iterables, buffersize))
        else:
            fs = [submit(fn, *args) for args in zipped_iterables]

        # A weak reference, so that the executor can be collected
        # independently of the result iterator.
        executor_weakref = weakref.ref(self)

        # Yield must be hidden in closure so that the futures are submitted
        # before the first iterator value is required.
        def result_iterator():
            try:
                # reverse to keep finishing order
                fs.reverse()
                while fs:
                    if buffersize and (executor := executor_weakref()) and (args := next(zipped_iterables, None)):
                        fs.appendleft(executor.submit(fn, *args))
                    # Careful not to keep a reference to the popped future
                    if timeout is None:
                        yield _result_or_cancel(fs.pop())
                    else:
                        yield _result_or_cancel(fs.pop(), end_time - time.monotonic())
            finally:
                for future in fs:
                    future.cancel()

        return result_iterator()

    def shutdown(self, wait=True, *, cancel_futures=False):
        self._shutdown_queue(cancel_futures)
        if wait:
            for t in list(self._threads):
                t.join()

    shutdown.__doc__ = _base.Executor.shutdown.__doc__

    # Stdlib internals the native core replaces.
    _adjust_thread_count = None
    _initializer_failed = None



_cconc._futures_setup(
    Future=Future,
    CancelledError=CancelledError,
    TimeoutError=TimeoutError,
    InvalidStateError=InvalidStateError,
    BrokenThreadPool=BrokenThreadPool,
    logger=_base.LOGGER,
    DoneAndNotDoneFutures=_base.DoneAndNotDoneFutures,
    spawn_worker=_spawn_worker,
    condition_factory=threading.Condition,
)


def __dir__():
    return __all__ + ("__doc__",)


# Names taken from the stdlib are read and set on concurrent.futures; private
# and undocumented ones (DoneAndNotDoneFutures, ...) come from its _base.
_mirror.install(__name__, _std, _base)
