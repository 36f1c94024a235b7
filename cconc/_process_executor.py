"""ProcessPoolExecutor on cconc's native process pool (cconc.multiprocessing.pool.Pool).

The stdlib's executor moves every call through a manager thread, a pipe-backed
call queue only ``max_workers + 1`` deep and a result pipe. Here the executor is
a thin layer on the native pool's data plane:

* ``submit()`` makes a native ``cconc.futures.Future``, pickles the call in the
  calling thread and queues it; at most a small window of calls is handed to
  the pool (in one batch per hand-off), so that a call still queued can be
  cancelled, as with the stdlib, whose call queue plays the same part.
* The pool's collector thread completes the futures (``on_done``) and refills
  the window from the queue: no manager thread, no wake-up pipe.
* ``map()`` groups its calls into batches (also with ``chunksize=1``): one pool
  task and one pickle per batch, results still yielded call by call.

What travels is bytes pickled here with ``multiprocessing``'s ForkingPickler
(so sockets, connections, shared memory travel as with the stdlib), and what
comes back is pickled by the worker itself: so every failure lands where the
stdlib puts it. An error pickling a call fails its future; an error while a
worker unpickles a call, or while the parent unpickles a result, breaks the
executor (``BrokenProcessPool``); an error pickling a result fails its future
with the stdlib's ``_RemoteTraceback`` as ``__cause__``; a worker that dies
(signal, ``os._exit``, crash, failing initializer) breaks the executor, and
the cause of the ``BrokenProcessPool`` names the process and its exit code.
"""
import collections
import functools
import itertools
import logging
import os
import pickle
import signal
import sys
import threading
import time
import weakref
from concurrent.futures import _base
from concurrent.futures import process as _std_process
from concurrent.futures.process import BrokenProcessPool, _ExceptionWithTraceback, _RemoteTraceback
from multiprocessing import ProcessError
from traceback import format_exception

from cconc.multiprocessing import _pickling
from cconc.threading import Event as _Event
from cconc.threading import Lock as _Lock

__all__ = ["ProcessPoolExecutor"]

_LOGGER = _base.LOGGER

_BROKEN_MESSAGE = "A child process terminated abruptly, the process pool is not usable anymore"
_FUTURE_BROKEN_MESSAGE = ("A process in the process pool was terminated abruptly "
                          "while the future was running or pending.")

# Kinds of what a worker sends back for one pool task.
_PLAIN = 0       # the value itself (of a type whose pickling cannot fail)
_PICKLED = 1     # pickled bytes of the value
_RAISED = 2      # pickled bytes of an exception (with its remote traceback)
_BAD_TASK = 3    # the task could not be unpickled in the worker: a formatted traceback

_PLAIN_TYPES = frozenset({int, float, str, bytes, bool, type(None), complex})

#: Set at interpreter exit: submit() then refuses, as the stdlib's.
_global_shutdown = False
#: Every executor's core that may still have work or workers, for interpreter exit.
_live_cores = weakref.WeakSet()


_dumps = functools.partial(_pickling.dumps, protocol=pickle.HIGHEST_PROTOCOL)
_loads = _pickling.loads


# ------------------------------------------------------------ in the worker

def _ship_exception(exc):
    try:
        return _RAISED, _dumps(_ExceptionWithTraceback(exc, exc.__traceback__))
    except BaseException as e:
        # As the stdlib's _sendback_result: an exception that cannot be sent
        # is replaced by the error sending it.
        return _RAISED, _dumps(_ExceptionWithTraceback(e, e.__traceback__))


def _ship_value(value):
    if type(value) in _PLAIN_TYPES:
        return _PLAIN, value
    try:
        return _PICKLED, _dumps(value)
    except BaseException as e:
        return _ship_exception(e)


def _bad_task(exc):
    return _BAD_TASK, "".join(format_exception(type(exc), exc, exc.__traceback__))


def _run_call(payload):
    """One submitted call, in the worker: (kind, data) as above."""
    try:
        fn, args, kwargs = _loads(payload)
    except BaseException as e:
        return _bad_task(e)
    del payload
    try:
        result = fn(*args, **kwargs)
    except BaseException as e:
        return _ship_exception(e)
    return _ship_value(result)


def _run_pack(payloads):
    """Several submitted calls, in the worker: a list of what _run_call returns."""
    return [_run_call(p) for p in payloads]


def _run_chunks(payload):
    """A batch of map chunks, in the worker: a list with one (ok, value) per
    chunk, value being the chunk's list of results or its exception, as
    the stdlib's _process_chunk (a failing call ends its chunk only)."""
    try:
        fn, chunks = _loads(payload)
    except BaseException as e:
        return _bad_task(e)
    del payload
    outcomes = []
    for chunk in chunks:
        try:
            outcomes.append((True, [fn(*args) for args in chunk]))
        except BaseException as e:
            outcomes.append((False, _ExceptionWithTraceback(e, e.__traceback__)))
    try:
        return _PICKLED, _dumps(outcomes)
    except BaseException:
        pass
    # One chunk's result (or exception) cannot be pickled: ship chunk by chunk
    # so that only that chunk fails, with the pickling error.
    shipped = []
    for ok, value in outcomes:
        try:
            shipped.append(_dumps((ok, value)))
        except BaseException as e:
            shipped.append(_dumps((False, _ExceptionWithTraceback(e, e.__traceback__))))
    return _PICKLED, _dumps(_Separately(shipped))


class _Separately:
    """Chunk outcomes pickled one by one (see _run_chunks)."""

    def __init__(self, pickled):
        self.pickled = pickled


def _run_initializer(initializer, initargs):
    """The executor's initializer, in the worker: a failure is logged as the
    stdlib logs it and ends the worker, which breaks the executor."""
    try:
        initializer(*initargs)
    except BaseException:
        _LOGGER.critical("Exception in initializer:", exc_info=True)
        # Ends the process (multiprocessing's exit: queues flushed, e.g. a
        # logging QueueHandler's); the pool reports the worker as lost.
        sys.exit(1)


# ------------------------------------------------------------ in the parent

class _WorkItem:
    __slots__ = ("future", "func", "payload")

    def __init__(self, future, func, payload):
        self.future = future
        self.func = func
        self.payload = payload


def _pool_class():
    from cconc.multiprocessing import pool as _pool_module

    return _pool_module.Pool


def _worker_lost_error(pid, exitcode):
    from cconc.multiprocessing.pool import WorkerLostError

    return WorkerLostError(pid, exitcode)


class _Core:
    """The executor's state, shared with the pool's collector thread (the
    callbacks hold the core, not the executor, so that an executor dropped
    without shutdown() is collected and its work still finishes, as the
    stdlib's manager thread finishes it)."""

    def __init__(self, executor):
        self.max_workers = executor._max_workers
        self.mp_context = executor._mp_context
        self.initializer = executor._initializer
        self.initargs = executor._initargs
        self.max_tasks_per_child = executor._max_tasks_per_child
        # Calls handed to the pool and not yet completed: a few per worker,
        # enough to keep them busy between two hand-offs, few enough that
        # most queued calls can still be cancelled (the stdlib: workers + 1).
        # While hand-offs complete within a few milliseconds (many short
        # calls) the window grows, so that one hand-off carries many calls;
        # slower calls bring it back (see adapt()).
        self.base_window = 2 * self.max_workers + 2
        self.max_window = 128 * self.max_workers
        self.window = self.base_window
        self.lock = _Lock()
        self.queued = collections.deque()  # _WorkItems not handed to the pool
        self.inflight = {}  # id -> _WorkItem handed to the pool
        self.ids = itertools.count()
        self.pool = None
        self.broken = False
        self.shutdown = False
        self.interrupted = False
        self.pool_closed = False
        self.terminator = None  # the thread terminating a broken executor's pool
        self.idle = _Event()  # nothing queued nor in flight (native: cheap clear())
        self.idle.set()

    # -- pool

    def start_pool(self):
        # under self.lock
        if self.pool is not None:
            return
        kwargs = {}
        if self.initializer is not None:
            kwargs["initializer"] = _run_initializer
            kwargs["initargs"] = (self.initializer, self.initargs)
        if self.max_tasks_per_child is not None:
            kwargs["maxtasksperchild"] = self.max_tasks_per_child
        self.pool = _pool_class()(self.max_workers, context=self.mp_context,
                                  _on_worker_lost=self.on_worker_lost, **kwargs)
        _live_cores.add(self)

    def processes(self):
        pool = self.pool
        if pool is None:
            return {}
        return {p.pid: p for p in list(getattr(pool, "_pool", ()) or ()) if p.pid is not None}

    # -- queue and window

    def check_accepting(self):
        # under self.lock: raise as the stdlib's submit() when no work is accepted
        if self.broken:
            raise BrokenProcessPool(self.broken)
        if self.shutdown:
            raise RuntimeError("cannot schedule new futures after shutdown")
        if _global_shutdown:
            raise RuntimeError("cannot schedule new futures after interpreter shutdown")

    def add(self, item):
        """Queue a work item and hand what the window allows to the pool."""
        with self.lock:
            self.check_accepting()
            self.start_pool()
            self.idle.clear()
            n = len(self.inflight)
            if not self.queued and n < self.base_window and (not n or self.window - n >= self.window // 2):
                # What hand_off() would do with this call alone queued: the
                # workers may lack work and nothing waits before it, so it
                # goes to the pool now (its future is not out yet, so
                # nothing can have cancelled it).
                self.inflight[id(item)] = item
                pool = self.pool
            else:
                self.queued.append(item)
                # The submitter hands off only while the workers may lack
                # work; beyond that the collector hands off, many calls at a
                # time, as calls complete.
                if len(self.inflight) >= self.base_window:
                    return
                pool = None
        if pool is None:
            self.hand_off()
            return
        item.future.set_running_or_notify_cancel()
        self.send(pool, [item])

    def hand_off(self):
        """Move queued items into the pool while the window has room. Called
        by submitters and by the collector thread as calls complete."""
        while True:
            with self.lock:
                room = self.window - len(self.inflight)
                if room <= 0 or not self.queued or self.broken or self.pool is None:
                    self._check_idle()
                    return
                # Refill in batches: wait until half the window is free.
                if self.inflight and room < self.window // 2:
                    return
                items = [self.queued.popleft() for _ in range(min(room, len(self.queued)))]
                for item in items:
                    self.inflight[id(item)] = item
                pool = self.pool
            # set_running_or_notify_cancel runs callbacks of cancelled futures:
            # outside the lock.
            batch = []
            cancelled = []
            for item in items:
                if item.future.set_running_or_notify_cancel():
                    batch.append(item)
                else:
                    cancelled.append(item)
            if cancelled:
                with self.lock:
                    for item in cancelled:
                        self.inflight.pop(id(item), None)
            if batch:
                self.send(pool, batch)
            if not cancelled:
                return

    def adapt(self, latency, n):
        """A hand-off of n calls completed `latency` seconds after it was
        sent (collector thread)."""
        if latency < 0.001 * n:
            self.window = min(self.window * 2, self.max_window)
        elif latency > 0.01 * n:
            self.window = max(self.window // 2, self.base_window)

    def send(self, pool, batch):
        by_func = {}
        for item in batch:
            by_func.setdefault(item.func, []).append(item)
        # Calls known to be short (the window grew) travel in packs, one pool
        # task each: one pickle, one message and one completion per pack.
        # Slow calls (the window at its base) travel one per task, so that
        # each completes as soon as it ends.
        # (Not with max_tasks_per_child: a worker counts pool tasks.)
        packs = (len(batch) > 2 * self.max_workers and self.window > self.base_window
                 and self.max_tasks_per_child is None)
        try:
            for func, items in by_func.items():
                if packs and func is _run_call:
                    size = min(64, max(1, len(items) // (2 * self.max_workers)))
                    tasks = [items[i:i + size] for i in range(0, len(items), size)]
                    func = _run_pack
                    args = [([item.payload for item in pack],) for pack in tasks]
                else:
                    tasks = items
                    args = [(item.payload,) for item in items]
                left_and_start = [len(tasks), time.monotonic()]

                # on the collector thread, one at a time
                def on_done(index, ok, value, tasks=tasks, state=left_and_start, n=len(items), core=self):
                    state[0] -= 1
                    if state[0] == 0:
                        core.adapt(time.monotonic() - state[1], n)
                    task = tasks[index]
                    if type(task) is not list:
                        core.complete(task, ok, value)
                    elif not ok:
                        core.break_pool(value)
                    else:
                        for item, outcome in zip(task, value):
                            core.complete(item, True, outcome)

                pool._submit_batch(func, args, on_done)
        except BaseException as e:
            # The pool refused (terminated under us, or at interpreter exit):
            # as the stdlib's manager thread, break the executor.
            self.break_pool(e, tb=True)
            if not isinstance(e, Exception):
                raise
        for item in batch:
            item.payload = None

    def complete(self, item, ok, value):
        """A pool task ended (collector thread, or a caller collecting the
        pool's results for itself: that caller leaves to the collector what
        runs callbacks, as the stdlib runs them on its manager thread)."""
        future = item.future
        if (future._with_callbacks or not ok or value[0] == _BAD_TASK) and self.pool is not None:
            pool_core = self.pool._core
            if pool_core.direct_reader == threading.get_ident():
                pool_core.on_collector(self.complete, item, ok, value)
                return
        if not ok:
            # Only the pool's own errors reach here (the worker ships every
            # exception of the call): the worker died holding it.
            self.break_pool(value)
            return
        kind, data = value
        try:
            if kind == _PLAIN:
                result, exc = data, None
            elif kind == _PICKLED:
                result, exc = _loads(data), None
            elif kind == _RAISED:
                result, exc = None, _loads(data)
            else:
                self.break_pool(_RemoteTraceback("\n'''\n%s'''" % data))
                return
        except BaseException as e:
            # As the stdlib's result handler: a result that cannot be
            # unpickled in the parent breaks the executor.
            self.break_pool(e, tb=True)
            return
        with self.lock:
            if self.inflight.pop(id(item), None) is None:
                return  # failed already by break_pool
            # Decided under the lock that add() takes: either add() saw this
            # call gone and hands off itself, or this sees its item queued.
            more = self.queued or not self.inflight
        try:
            if exc is not None:
                future.set_exception(exc)
            else:
                future.set_result(result)
        except _base.InvalidStateError:
            pass
        del future, result, exc, item
        if more:
            self.hand_off()

    def _check_idle(self):
        # under self.lock; the pool is closed before anyone waiting for
        # `idle` goes on to join it
        if not self.queued and not self.inflight:
            if self.shutdown and not self.pool_closed and self.pool is not None:
                self.pool_closed = True
                self.pool.close()
            self.idle.set()

    # -- failure and shutdown

    def on_worker_lost(self, pid, exitcode):
        self.break_pool(_worker_lost_error(pid, exitcode))

    def break_pool(self, cause, tb=False):
        with self.lock:
            if self.broken:
                return
            self.broken = _BROKEN_MESSAGE
            self.shutdown = True
            items = list(self.inflight.values()) + list(self.queued)
            self.inflight.clear()
            self.queued.clear()
            pool = self.pool
            self.pool_closed = True
            if pool is not None:
                # Off this thread: it may be the pool's collector.
                self.terminator = threading.Thread(target=pool.terminate, name="cconc-ppe-terminate",
                                                   daemon=True)
                self.terminator.start()
            self.idle.set()
        if tb and cause is not None:
            cause = _RemoteTraceback("\n'''\n%s'''" % "".join(format_exception(type(cause), cause, cause.__traceback__)))
        bpe = BrokenProcessPool(_FUTURE_BROKEN_MESSAGE)
        bpe.__cause__ = cause
        for item in items:
            try:
                item.future.set_exception(bpe)
            except _base.InvalidStateError:
                pass
        del items

    def begin_shutdown(self, cancel_futures):
        with self.lock:
            self.shutdown = True
            cancelled = list(self.queued) if cancel_futures else []
            if cancel_futures:
                self.queued.clear()
        for item in cancelled:
            item.future.cancel()
        with self.lock:
            self._check_idle()

    def finish(self, wait):
        if not wait:
            return
        self.idle.wait()
        self.join_pool()
        _live_cores.discard(self)

    def join_pool(self):
        pool = self.pool
        if pool is None:
            return
        terminator = self.terminator
        if terminator is not None:
            terminator.join()
        else:
            pool.join()

    def force(self, signum):
        """terminate_workers() / kill_workers()."""
        self.begin_shutdown(cancel_futures=True)
        pool = self.pool
        if pool is None:
            return
        pids = list(pool._worker_pids())
        pool._signal_workers(signum)
        how = "terminate_workers()" if signum == signal.SIGTERM else "kill_workers()"
        self.break_pool(ProcessError("worker processes %s ended by %s" % (pids, how)))

    def at_exit(self):
        """Interpreter exit: finish the work as the stdlib does, unless the
        program was interrupted (Ctrl-C): then end the workers right away."""
        interrupted = self.interrupted or _exiting_on_interrupt()
        self.begin_shutdown(cancel_futures=False)
        pool = self.pool
        if pool is None:
            return
        if interrupted:
            self.interrupted = True
            pool.terminate()
            return
        self.idle.wait()
        self.join_pool()


def _exiting_on_interrupt():
    last = getattr(sys, "last_exc", None) or getattr(sys, "last_value", None)
    return isinstance(last, KeyboardInterrupt)


def _python_exit():
    global _global_shutdown
    _global_shutdown = True
    for core in list(_live_cores):
        try:
            core.at_exit()
        except KeyboardInterrupt:
            core.interrupted = True
            if core.pool is not None:
                core.pool.terminate()


threading._register_atexit(_python_exit)

if hasattr(os, "register_at_fork"):
    # A forked child (a stdlib Process, a pool worker) has none of the
    # parent's pools: its exit must not wait for their work.
    os.register_at_fork(after_in_child=_live_cores.clear)


def _fail_unpicklable(future, exc):
    """A call that cannot be pickled fails its future, with the stdlib's
    remote-traceback cause (_SafeQueue._on_queue_feeder_error)."""
    tb = format_exception(type(exc), exc, exc.__traceback__)
    exc.__cause__ = _RemoteTraceback('\n"""\n{}"""'.format("".join(tb)))
    future.set_running_or_notify_cancel()
    future.set_exception(exc)


def _batch_outcomes(f, timeout, end_time):
    """The (ok, values) outcomes of one map batch's future, waited for until end_time."""
    outcomes = f.result() if timeout is None else f.result(end_time - time.monotonic())
    if isinstance(outcomes, _Separately):
        outcomes = [_loads(p) for p in outcomes.pickled]
    return outcomes


def _chain_outcomes(fs, timeout, end_time):
    """Results of map batches, call by call (the stdlib's result_iterator)."""
    try:
        fs.reverse()
        while fs:
            outcomes = _batch_outcomes(fs.pop(), timeout, end_time)
            for ok, value in outcomes:
                if not ok:
                    raise value
                value.reverse()
                while value:
                    yield value.pop()
    finally:
        for f in fs:
            f.cancel()


_future_class = None


def _Future(core):
    """A cconc Future of the executor whose _Core is `core`."""
    global _future_class
    if _future_class is None:
        # cconc.futures imports this module: its Future is subclassed later
        from cconc.futures import Future as base

        class Future(base):
            # A caller waiting in result() or exception() reads the pool's
            # results itself while no other caller does (Pool's collect_for):
            # one wake-up less than waiting for the collector to complete it.
            __slots__ = ("_executor_core", "_with_callbacks")
            __module__ = base.__module__
            __doc__ = base.__doc__

            def add_done_callback(self, fn):
                # (its completion is then left to the collector thread)
                self._with_callbacks = True
                base.add_done_callback(self, fn)

            def result(self, timeout=None):
                return base.result(self, self._collect(timeout))

            def exception(self, timeout=None):
                return base.exception(self, self._collect(timeout))

            def _collect(self, timeout):
                pool = self._executor_core.pool
                if pool is None or self._with_callbacks or self.done():
                    return timeout  # (with callbacks, the collector completes it)
                return pool._core.collect_for(self.done, timeout)

        _future_class = Future
    f = _future_class()
    f._executor_core = core
    f._with_callbacks = False
    return f


class ProcessPoolExecutor(_std_process.ProcessPoolExecutor):
    """concurrent.futures.ProcessPoolExecutor on cconc's native process pool."""

    def __init__(self, max_workers=None, mp_context=None, initializer=None, initargs=(), *,
                 max_tasks_per_child=None):
        import multiprocessing as mp

        _std_process._check_system_limits()
        if max_workers is None:
            count = getattr(os, "process_cpu_count", os.cpu_count)
            self._max_workers = count() or 1
        else:
            if max_workers <= 0:
                raise ValueError("max_workers must be greater than 0")
            self._max_workers = max_workers
        if mp_context is None:
            if max_tasks_per_child is not None:
                mp_context = mp.get_context("spawn")
            else:
                mp_context = mp.get_context()
        self._mp_context = mp_context
        if initializer is not None and not callable(initializer):
            raise TypeError("initializer must be a callable")
        self._initializer = initializer
        self._initargs = initargs
        if max_tasks_per_child is not None:
            if not isinstance(max_tasks_per_child, int):
                raise TypeError("max_tasks_per_child must be an integer")
            elif max_tasks_per_child <= 0:
                raise ValueError("max_tasks_per_child must be >= 1")
            if self._mp_context.get_start_method(allow_none=False) == "fork":
                raise ValueError("max_tasks_per_child is incompatible with"
                                 " the 'fork' multiprocessing start method;"
                                 " supply a different mp_context.")
        self._max_tasks_per_child = max_tasks_per_child
        self._core = _Core(self)
        self._joinable = True
        core = self._core
        # Dropped without shutdown(): finish the work, then let the workers go.
        self._finalizer = weakref.finalize(self, core.begin_shutdown, False)

    # The stdlib's attributes that programs and CPython's tests read.
    @property
    def _broken(self):
        return self._core.broken

    @property
    def _shutdown_thread(self):
        return self._core.shutdown

    @property
    def _processes(self):
        return self._core.processes()

    def submit(self, fn, /, *args, **kwargs):
        core = self._core
        with core.lock:
            core.check_accepting()
            # as the stdlib's submit(), which starts the workers
            core.start_pool()
        f = _Future(core)
        try:
            payload = _dumps((fn, args, kwargs))
        except Exception as e:
            # The stdlib pickles in its feeder thread and fails the future
            # (_SafeQueue._on_queue_feeder_error); the executor stays usable.
            _fail_unpicklable(f, e)
            return f
        core.add(_WorkItem(f, _run_call, payload))
        return f

    submit.__doc__ = _base.Executor.submit.__doc__

    def map(self, fn, *iterables, timeout=None, chunksize=1, buffersize=None):
        """Returns an iterator equivalent to map(fn, iter).

        As the stdlib's, with 3.14's *buffersize* on every version: at most
        that many chunks are submitted ahead of the results consumed, and the
        input is read lazily. The calls travel in batches of chunks, also with
        chunksize=1; results are still yielded one by one, in order.
        """
        if buffersize is not None and not isinstance(buffersize, int):
            raise TypeError("buffersize must be an integer or None")
        if buffersize is not None and buffersize < 1:
            raise ValueError("buffersize must be None or > 0")
        if chunksize < 1:
            raise ValueError("chunksize must be >= 1.")
        if timeout is not None:
            end_time = timeout + time.monotonic()
        else:
            end_time = None

        zipped = zip(*iterables)
        chunks = iter(lambda: tuple(itertools.islice(zipped, chunksize)), ())
        core = self._core
        if core.max_tasks_per_child is not None:
            # A worker counts pool tasks: one chunk per task, as the stdlib.
            per_batch = 1
        else:
            per_batch = None

        def submit_batch(batch):
            f = _Future(core)
            try:
                payload = _dumps((fn, batch))
            except Exception as e:
                with core.lock:
                    core.check_accepting()
                _fail_unpicklable(f, e)
                return f
            core.add(_WorkItem(f, _run_chunks, payload))
            return f

        if buffersize is None:
            all_chunks = list(chunks)
            if per_batch is None:
                per_batch = max(1, min(64, -(-len(all_chunks) // (4 * self._max_workers))))
            # Batches start at one chunk and double up to per_batch, so that
            # the first results of slow calls come back as soon as they end
            # (a batch's results come back together).
            fs = []
            start, size = 0, 1
            while start < len(all_chunks):
                fs.append(submit_batch(all_chunks[start:start + size]))
                start += size
                size = min(size * 2, per_batch)
            return _chain_outcomes(fs, timeout, end_time)

        if per_batch is None:
            per_batch = max(1, min(64, buffersize // 2))
        return self._map_buffered(chunks, per_batch, buffersize, submit_batch, timeout, end_time)

    def _map_buffered(self, chunks, per_batch, buffersize, submit_batch, timeout, end_time):
        # At most `buffersize` chunks submitted and not yet yielded. The
        # executor is held weakly, as the stdlib's map iterator holds it.
        fs = collections.deque()  # (future, number of chunks)
        executor_ref = weakref.ref(self)
        outstanding = 0

        def fill():
            nonlocal outstanding
            while outstanding < buffersize and executor_ref() is not None:
                batch = list(itertools.islice(chunks, min(per_batch, buffersize - outstanding)))
                if not batch:
                    return
                fs.append((submit_batch(batch), len(batch)))
                outstanding += len(batch)

        fill()

        def result_iterator():
            nonlocal outstanding
            try:
                while fs:
                    f, n = fs.popleft()
                    outcomes = _batch_outcomes(f, timeout, end_time)
                    del f
                    for ok, value in outcomes:
                        outstanding -= 1
                        fill()
                        if not ok:
                            raise value
                        value.reverse()
                        while value:
                            yield value.pop()
            finally:
                for f, _ in fs:
                    f.cancel()

        return result_iterator()

    def shutdown(self, wait=True, *, cancel_futures=False):
        core = self._core
        core.begin_shutdown(cancel_futures)
        # As the stdlib's, which forgets its manager thread on the first
        # shutdown() that returns: a later shutdown(wait=True) does not wait.
        if wait and self._joinable:
            try:
                core.finish(wait)
            except KeyboardInterrupt:
                # Ctrl-C while waiting: the interpreter's exit will not wait
                # for the running calls either.
                core.interrupted = True
                raise
        self._joinable = False

    shutdown.__doc__ = _base.Executor.shutdown.__doc__

    def __exit__(self, exc_type, exc_val, exc_tb):
        if exc_type is not None and issubclass(exc_type, KeyboardInterrupt):
            # Ctrl-C in the with-block: do not wait for the running calls.
            self._core.interrupted = True
            self.terminate_workers()
            return False
        self.shutdown(wait=True)
        return False

    def terminate_workers(self):
        """Terminate (SIGTERM) every worker still alive; the executor is then
        broken (3.14's API)."""
        self._core.force(signal.SIGTERM)

    def kill_workers(self):
        """Kill (SIGKILL) every worker still alive; the executor is then
        broken (3.14's API)."""
        self._core.force(signal.SIGKILL)

    # The stdlib's manager-thread machinery does not exist here.
    _start_executor_manager_thread = None
    _adjust_process_count = None
    _launch_processes = None
    _spawn_process = None

