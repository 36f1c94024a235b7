"""Drop-in mirror of :mod:`multiprocessing.pool`, with a native data plane.

``Pool`` has the stdlib's API and behaviour (the result classes are
subclasses of the stdlib's ``ApplyResult``, ``MapResult``, ``IMapIterator``
and ``IMapUnorderedIterator``, so ``get``/``wait``/``ready``/``successful``,
callbacks and errors are the running version's own), on another design:

* Each worker has its own pair of rings (cconc process-shared channels): a
  task ring (the parent its only writer, that worker its only reader) and a
  result ring (that worker its only writer, the parent its only reader), so
  no lock is shared between processes and a worker that dies at any instant
  cannot wedge another. The result rings ring one doorbell at every publish,
  on which the parent sleeps (_ResultRings). The worker's loop is C
  (src/multiprocessing/poolworker.c). Tasks travel in *groups* (many tasks
  per message, even with ``chunksize=1``), pickled once with ``ForkingPickler`` when they are
  sent; the function of a group is pickled once per message.
* One collector thread in the parent (no task-, result- or worker-handler
  threads) moves results out of the result rings, completes the results and
  runs the callbacks (as the stdlib's result-handler thread does), refills
  the workers' rings and watches the workers' sentinels. A caller waiting
  for its result reads the result rings itself while no other caller does
  (one wake-up less per result: see _Core.collect_for); it leaves results
  with callbacks to the collector.
* ``imap``/``imap_unordered`` read their iterable lazily and keep a bounded
  window of tasks in flight or not yet consumed.
* A worker that dies (a signal, ``os._exit``, a crash, an initializer that
  raised) fails exactly the tasks it held with :class:`WorkerLostError`
  (naming its pid and exit code) instead of hanging; it is replaced and the
  pool stays usable.
* A send to a worker whose task ring is full never waits on a dead worker:
  it waits in slices and gives up once the worker has died (its tasks fail
  as above). Workers exit on their own once the pool's process is gone
  (killed by SIGKILL), when idle or blocked on a full result ring.
* Workers ignore SIGINT: Ctrl-C in a terminal interrupts the parent's blocking
  call and does not make every worker print a traceback.

``ThreadPool`` is the stdlib's.

Private hooks (stable; cconc.futures.ProcessPoolExecutor builds on them)
------------------------------------------------------------------------
``Pool(..., *, _on_worker_lost=None)``
    A callable ``(pid, exitcode)`` run in the parent on the collector thread
    (GIL held) whenever a worker process ends without the pool having asked
    it to (killed by a signal -- exitcode ``-signum`` --, ``os._exit``, a
    crash, an initializer that raised). The tasks that worker held have
    already been failed (their ``error_callback`` ran / their ``AsyncResult``
    raises ``WorkerLostError``) when the hook runs. An exception it raises
    is printed and ignored.
``pool._signal_workers(signum)``
    Send ``signum`` to every live worker now, without waiting.
``pool._worker_pids()``
    The pids of the live workers (a new list).
``pool._submit_batch(func, args_list, on_done)``
    Submit ``func(*args)`` for every tuple of ``args_list``; tasks go to the
    workers in groups (as ``map(chunksize=1)`` does). ``on_done(index, ok,
    value)`` is called once per task, on the collector thread or on a caller
    thread reading results for itself (``_core.direct_reader`` is then its
    ident; ``_core.on_collector(fn, *args)`` moves work to the collector):
    ``ok`` True with the return value, or False with the exception (with its
    ``RemoteTraceback`` cause, or a ``WorkerLostError``: those always on the
    collector). Returns a handle
    whose ``cancel()`` drops the tasks not yet sent to a worker and returns
    their indices (their ``on_done`` is never called). Raises ``ValueError``
    when the pool is not running.
Callbacks of ``apply_async``/``map_async``/``starmap_async`` run on the
collector thread, as the stdlib runs them on its result-handler thread.
"""
import _signal
import collections
import functools
import itertools
import os
import select
import signal
import sys
import threading
import time
import traceback
import types
import warnings
from queue import Empty
from queue import Full as _Full

from multiprocessing import ProcessError, TimeoutError  # noqa: F401
from multiprocessing import pool as _std_pool
from multiprocessing import util
from multiprocessing.pool import (  # noqa: F401
    CLOSE,
    INIT,
    RUN,
    TERMINATE,
    ExceptionWithTraceback,
    MaybeEncodingError,
    RemoteTraceback,
    ThreadPool,
    mapstar,
    starmapstar,
)

from cconc import _cconc, _mirror
from cconc.threading import Event as _Event
from cconc.threading import Lock as _Lock

__all__ = ["Pool", "ThreadPool"]

job_counter = _std_pool.job_counter  # one numbering with the stdlib's pools

# group kinds (the third field of a task group). _MAP and _STARMAP groups
# hold chunks (a task each, whose result is a list, as the stdlib's mapstar);
# _EACH and _STAREACH groups hold single items (a task each, whose result is
# func(item) or func(*item): imap with chunksize=1, _submit_batch).
_APPLY, _MAP, _STARMAP, _EACH, _STAREACH = 0, 1, 2, 3, 4
# A group's results come back as (job, i0, [(ok, value) per task], seconds it
# ran). _FLAT, added to map_async's kinds: a group whose tasks all succeeded
# comes back as (job, i0, values, ntasks, seconds), its chunks' values
# concatenated: a pair and a list less per task to make, pickle, unpickle and
# store
_FLAT = 8

_TASK_RING_SIZE = 4 << 20
_RESULT_RING_SIZE = 8 << 20
_MAX_GROUP = 256  # tasks per message to a worker
# A job's groups grow from one task (twofold per group back) while a group's
# tasks take less than this, and shrink to it otherwise: results of slow tasks
# stream back, and such a job spreads over the workers task by task, as on
# the stdlib's pool (s)
_GROUP_TIME = 0.002
_GROUPS_IN_FLIGHT = 2  # per worker: one running, one waiting in its ring
_WINDOW_PER_WORKER = 256  # imap: tasks sent and not yet consumed, per worker
_BIG_TASK = 16  # items per task (chunksize) from which a task travels alone
_WATCH_SLICE = 0.02  # the collector looks at the workers' sentinels this often (s)
# A send to a worker whose ring is full waits in slices, checking between them
# that the worker lives (a slice that ends mid-message drops that message's
# chunks and sends it again whole: slices grow, so a huge one still gets through)
_SEND_SLICE = 0.1
_SEND_SLICE_MAX = 2.0
_PARENT_SLICE = 0.5  # an idle worker checks this often that its parent lives (s)


class WorkerLostError(ProcessError):
    """A pool worker process ended while it held this task (killed by a
    signal, ``os._exit``, a crash). ``pid`` and ``exitcode`` (negative:
    the signal number) say which and how."""

    def __init__(self, pid, exitcode):
        self.pid = pid
        self.exitcode = exitcode
        if exitcode is not None and exitcode < 0:
            try:
                how = "killed by signal %s" % signal.Signals(-exitcode).name
            except ValueError:
                how = "killed by signal %d" % -exitcode
        else:
            how = "exit code %s" % (exitcode,)
        super().__init__("pool worker process %d died while running this task (%s)" % (pid, how))

    def __reduce__(self):
        return type(self), (self.pid, self.exitcode)


# ---------------------------------------------------------------- the worker


def _wrap(exc, wrap_exception):
    return ExceptionWithTraceback(exc, exc.__traceback__) if wrap_exception else exc


def _apply(func, args, kwds):
    return func(*args, **kwds)


def _encodable(msg):
    """The message (wid, [(job, i0, results, seconds)]) with each result
    that does not pickle replaced by the stdlib's MaybeEncodingError."""
    from ._pickling import dumps

    wid, out = msg
    fixed = []
    for job, i0, results, seconds in out:
        res = []
        for r in results:
            try:
                dumps(r)
                res.append(r)
            except Exception as e:
                res.append((False, MaybeEncodingError(e, r[1])))
        fixed.append((job, i0, res, seconds))
    return wid, fixed


def _parent_watch():
    """A function telling whether the pool's process has ended. Under fork
    and spawn it is our parent: we are reparented when it dies. Under
    forkserver our parent is the forkserver, which lives on (we hold its
    alive pipe), but the pool's process holds the write end of our
    parent_process() sentinel, which reads EOF once it is gone. (Under fork
    that sentinel is useless: sibling workers inherit its write end.)"""
    from multiprocessing import process

    ppid = os.getppid()
    parent = process.parent_process()
    sentinel = getattr(parent, "sentinel", None)

    def parent_gone():
        if os.getppid() != ppid:
            return True
        if sentinel is not None:
            try:
                return bool(select.select([sentinel], [], [], 0)[0])
            except (OSError, ValueError):
                pass
        return False

    return parent_gone


class _ParentGone(BaseException):
    """The pool's process ended while this worker waited to send a result."""


def _result_sender(results, parent_gone):
    """send(msg): put msg, (wid, [results of a group]) or the goodbye (wid,
    None), on this worker's result ring (whose puts ring the parent's
    doorbell: _worker_main). When the ring stays full, checks in slices that
    the pool's process (its only reader) still lives. Results that do not
    pickle are sent as the stdlib's MaybeEncodingError."""
    put = results._put_timeout

    def send(msg):
        slice_ = _PARENT_SLICE
        fixed = False
        while True:
            try:
                put(msg, slice_)
                return
            except _Full:
                pass
            except Exception:
                if fixed or msg[1] is None:
                    raise
                msg, fixed = _encodable(msg), True
                continue
            if parent_gone():
                raise _ParentGone
            slice_ = min(slice_ * 2, _SEND_SLICE_MAX)

    return send


def _worker_main(tasks, results, bell, wid, initializer, initargs, maxtasks, wrap_exception):
    """The loop of a worker process: read task groups from its ring, run
    them, send their results. Ends on None (close) or after maxtasks tasks."""
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    except (ValueError, OSError):  # pragma: no cover
        pass
    if initializer is not None:
        initializer(*initargs)
    # Nothing can send us work nor read our results once the pool's process
    # is gone (a SIGKILL leaves no time to stop us): an idle worker, or one
    # waiting for room in the result ring, checks that in slices.
    parent_gone = _parent_watch()
    results._ring_on_put(bell)
    send = _result_sender(results, parent_gone)

    def idle():
        if parent_gone():
            raise _ParentGone

    get = functools.partial(tasks.get_many, _GROUPS_IN_FLIGHT, True, _PARENT_SLICE)
    try:
        # the loop is C (src/multiprocessing/poolworker.c)
        completed = _cconc._pool_worker_loop(get, send, idle, wid, maxtasks,
                                             functools.partial(_wrap, wrap_exception=wrap_exception), _apply)
    except _ParentGone:
        util.debug("worker exiting: the pool's process is gone")
    else:
        util.debug("worker exiting after %d tasks" % completed)


# ---------------------------------------------------------- the parent side


class _Worker:
    """The parent's view of one worker process."""

    __slots__ = ("wid", "process", "tasks", "inflight", "sent", "quota", "stopping", "sentinel")

    def __init__(self, wid, process, tasks, quota):
        self.wid = wid
        self.process = process
        self.tasks = tasks  # its task ring (we write, it reads)
        self.inflight = {}  # (job, i0) -> number of tasks in that group
        self.sent = {}  # (job, i0) -> its _Source, to size the job's next groups
        self.quota = quota  # tasks it may still be given (None: unbounded)
        self.stopping = False  # the pool asked it to end
        self.sentinel = getattr(process, "sentinel", None)


class _Source:
    """Tasks of one job not yet sent to a worker."""

    __slots__ = ("result", "kind", "func", "items", "total", "next_index", "exhausted", "window", "refill_at",
                 "unconsumed", "chunksize", "group_size")

    def __init__(self, result, kind, func, items, total=None, window=None, chunksize=1):
        self.result = result
        self.kind = kind
        self.func = func
        self.items = items  # an iterator of payloads (chunks, or one (args, kwds))
        self.total = total  # how many payloads items yields, where known
        self.next_index = 0
        self.exhausted = False
        self.window = window  # imap: at most this many tasks sent and not consumed
        # imap: the room in a full window at which its consumer sends more
        self.refill_at = None if window is None else window // 4
        self.unconsumed = 0
        self.chunksize = chunksize  # items per task
        self.group_size = 1  # tasks in its next group (see _GROUP_TIME)

    def group_back(self, n, seconds):
        """A group of n tasks ran in `seconds` in its worker."""
        size = self.group_size * 2
        if seconds > 0:
            size = min(size, int(_GROUP_TIME * n / seconds))
        self.group_size = max(1, min(size, _MAX_GROUP))


class _ResultRings:
    """The parent's end of the workers' result rings: one ring per worker
    (that worker its only writer, the parent its only reader) and one
    doorbell that the rings ring at every publish, on which the reader
    sleeps. Read by one thread at a time (the pool's reader lock);
    rings are added by whoever starts a worker, and dropped by the reader."""

    def __init__(self, ctx):
        from .queues import SimpleQueue, _Doorbell

        self.ctx = ctx
        self.new_queue = SimpleQueue
        self.bell = _Doorbell()
        self.by_wid = {}
        self.rings = ()  # a snapshot of by_wid's rings, replaced on change
        self.woken = False

    def add(self, wid):
        ring = self.new_queue(ctx=self.ctx, buffer_size=_RESULT_RING_SIZE)
        self.by_wid[wid] = ring
        self.rings = tuple(self.by_wid.values())
        return ring

    def drop(self, wid):
        """Forget an ended worker's ring once drained. (Not closed: a
        caller may still hold the old snapshot; its fd goes with the last
        reference.)"""
        if self.by_wid.pop(wid, None) is not None:
            self.rings = tuple(self.by_wid.values())

    def poll(self):
        """Every message in the rings now, and the rest of each long message
        begun (its writer rings the bell at every part, and waits for the
        room its reading makes)."""
        msgs = []
        for ring in self.rings:
            while ring._has_frames():
                try:
                    msgs += ring.get_many(256, False)
                except Empty:
                    break  # only padding, or what a dead writer left
        return msgs

    def get_many(self, timeout, collector=False):
        """The messages in the rings, waiting up to `timeout` for one: an
        empty list when it passed, or (for the collector) at a wake()."""
        bell = self.bell
        deadline = time.monotonic() + timeout
        while True:
            seen = bell.count()
            msgs = self.poll()
            if msgs:
                return msgs
            if collector and self.woken:
                self.woken = False
                return msgs
            left = deadline - time.monotonic()
            if left <= 0 or not bell.wait(seen, left):
                return msgs

    def wake(self):
        """Make the collector's get_many return now."""
        self.woken = True
        self.bell.ring()


class _SigintHold:
    """Holds SIGINT's Python handler back (main thread only): a SIGINT
    meanwhile is noted in `caught`, and the handler runs at release().
    (_signal: signal.signal's enum conversions cost 8 us here, the call 0.5.)"""

    def __init__(self):
        self.caught = None
        self.old = _signal.getsignal(signal.SIGINT)
        self.handler = self.note
        if not callable(self.old):
            self.old = None  # ignored, or the default action: nothing to hold
            return
        try:
            _signal.signal(signal.SIGINT, self.handler)
        except ValueError:  # not the main interpreter, whose handlers run elsewhere
            self.old = None

    def note(self, signum, frame):
        if self.caught is None:
            self.caught = (signum, frame)

    def release(self):
        if self.old is None:
            return
        if _signal.getsignal(signal.SIGINT) is self.handler:  # not replaced meanwhile
            _signal.signal(signal.SIGINT, self.old)
        if self.caught is not None:
            self.old(*self.caught)


class _Core:
    """The pool's state, shared by the Pool, its collector thread and its
    finalizer (which must not hold the Pool itself, so that an unreferenced
    Pool is collected, warns and is terminated, as the stdlib's)."""

    def __init__(self, ctx, processes, initializer, initargs, maxtasksperchild, wrap_exception, on_worker_lost,
                 make_process):
        self.ctx = ctx
        self.make_process = make_process  # Pool.Process(ctx, ...), which subclasses may override
        self.processes = processes
        self.initializer = initializer
        self.initargs = initargs
        self.maxtasks = maxtasksperchild
        self.wrap_exception = wrap_exception
        self.on_worker_lost = on_worker_lost
        self.lock = threading.RLock()  # the workers, pending jobs, groups in flight
        self.complete_lock = threading.RLock()  # completing results (see complete())
        self.state = INIT
        self.cache = {}
        self.pending = collections.deque()  # _Source objects
        self.workers = {}  # wid -> _Worker
        self.wids = itertools.count()
        self.results = _ResultRings(ctx)
        self.poller = select.poll()
        self.by_fd = {}
        self.collector = None
        self.collector_stop = False
        self.all_processes = []  # workers started and not yet joined, for join()
        self.fail_later = []  # (result, index, exc): tasks whose iterable raised
        self.lengths = []  # (imap result, length) to set outside the lock
        self.byes = []  # workers that said goodbye
        self.next_look = 0.0  # when to look at the workers' sentinels again
        # Who reads the result rings: the collector, or a caller waiting for
        # its result (collect_for). `reader` is held while reading and acting
        # on what was read; the collector keeps out while direct_reader is
        # set or direct_rounds moved in its last slice; `turn` calls it back.
        self.reader = _Lock()
        self.direct_reader = None
        self.direct_rounds = 0
        self.turn = _Event()
        self.deferred = collections.deque()  # (fn, args) for the collector thread: see on_collector

    # ------------------------------------------------ workers

    def start_worker(self):
        from .queues import SimpleQueue

        wid = next(self.wids)
        tasks = SimpleQueue(ctx=self.ctx, buffer_size=_TASK_RING_SIZE)
        results = self.results
        try:
            proc = self.make_process(
                self.ctx,
                target=_worker_main,
                args=(tasks, results.add(wid), results.bell, wid, self.initializer, self.initargs, self.maxtasks,
                      self.wrap_exception),
            )
            proc.name = proc.name.replace("Process", "PoolWorker")
            proc.daemon = True
            proc.start()
        except BaseException:
            results.drop(wid)
            raise
        w = _Worker(wid, proc, tasks, self.maxtasks)
        self.workers[wid] = w
        self.all_processes.append(proc)
        if w.sentinel is not None:
            self.by_fd[w.sentinel] = w
            self.poller.register(w.sentinel, select.POLLIN)
        util.debug("added worker")
        return w

    def live_workers(self):
        return [w for w in self.workers.values() if w.process.exitcode is None]

    # ------------------------------------------------ dispatch

    def submit(self, source):
        """Queue a job's tasks and send what the workers have room for."""
        with self.lock:
            if self.state != RUN:
                raise ValueError("Pool not running")
            self.pending.append(source)
            sends = self.plan()
        self.send(sends)

    def plan(self):
        """Under the lock: choose task groups for the workers with room.
        Returns [(worker, group)] to send outside the lock."""
        sends = []
        if self.state == TERMINATE:
            return sends
        pending = self.pending
        nworkers = max(1, len(self.workers))
        blocked = 0  # sources in a row held back by their window
        while pending and blocked < len(pending):
            w = self.least_loaded()
            if w is None:
                break
            src = pending[0]
            group = self.take_group(src, w, nworkers)
            if group is not None:
                sends.append((w, group))
                blocked = 0
            if src.exhausted:
                pending.popleft()
            elif group is None:
                pending.rotate(-1)  # let the next job go first
                blocked += 1
        return sends

    def least_loaded(self):
        """Under the lock: the worker with room and the fewest groups in flight."""
        best = None
        best_load = _GROUPS_IN_FLIGHT
        for w in self.workers.values():
            load = len(w.inflight)
            if load >= best_load or w.stopping:
                continue
            if w.quota is not None and w.quota - sum(w.inflight.values()) <= 0:
                continue
            best, best_load = w, load
            if load == 0:
                break
        return best

    def take_group(self, src, w, nworkers):
        if src.exhausted:
            return None
        # big tasks go one per message, so that their results come back (and are
        # unpickled) while the worker runs the next one
        limit = src.group_size if src.chunksize < _BIG_TASK else 1
        if w.quota is not None:
            limit = min(limit, w.quota - sum(w.inflight.values()))
        if src.window is not None:
            # at most half the window in flight: the rest is slack for the
            # consumer, so that the workers do not wait for it to catch up
            limit = min(limit, src.window - src.unconsumed, max(1, src.window // (2 * _GROUPS_IN_FLIGHT * nworkers)))
            if limit <= 0:
                return None
        if src.kind == _APPLY:
            payload = next(src.items, None)
            if payload is None:
                src.exhausted = True
                return None
            i0 = src.next_index
            src.next_index += 1
            src.exhausted = True
            w.inflight[(src.result._job, i0)] = 1
            return (src.result._job, i0, _APPLY, src.func, payload)
        # spread a job over the workers: a group is at most an even share of
        # what is left, so that long tasks do not queue behind one worker
        if src.total is not None:
            share = -(-(src.total - src.next_index) // (_GROUPS_IN_FLIGHT * nworkers))
            limit = max(1, min(limit, share))
        chunks = []
        i0 = src.next_index
        try:
            # (extend keeps what it appended before the iterator raised)
            chunks.extend(itertools.islice(src.items, limit))
        except Exception as e:
            # the iterable raised (imap): that task fails, the job ends there
            src.exhausted = True
            bad = i0 + len(chunks)
            src.next_index = bad + 1
            self.fail_later.append((src.result, bad, e))
            return self.hand_out(src, w, i0, chunks) if chunks else None
        if len(chunks) < limit:
            src.exhausted = True
            if src.result._set_length_pending:
                self.lengths.append((src.result, i0 + len(chunks)))
        if not chunks:
            return None
        src.next_index = i0 + len(chunks)
        return self.hand_out(src, w, i0, chunks)

    def hand_out(self, src, w, i0, chunks):
        """Under the lock: these tasks of src are w's now; their group."""
        src.unconsumed += len(chunks)
        key = (src.result._job, i0)
        w.inflight[key] = len(chunks)
        w.sent[key] = src
        return (key[0], i0, src.kind, src.func, chunks)

    def worker_gone(self, w):
        """The worker has ended (its sentinel is readable) or was reaped."""
        if self.workers.get(w.wid) is not w:
            return True
        try:
            return bool(select.select([w.sentinel], [], [], 0)[0])
        except (OSError, ValueError, TypeError):
            return w.process.exitcode is not None

    def put_task(self, w, msg):
        """Write msg to w's ring. False (nothing sent) if w ended meanwhile:
        the collector fails the tasks it holds (WorkerLostError); a send
        never waits on a dead worker."""
        put = w.tasks._put_timeout
        slice_ = _SEND_SLICE
        while True:
            try:
                put(msg, slice_)
                return True
            except _Full:
                pass
            if self.worker_gone(w) or self.state == TERMINATE:
                self.wake()  # the collector may be asleep: let it reap now
                return False
            slice_ = min(slice_ * 2, _SEND_SLICE_MAX)

    def send(self, sends):
        """Outside the lock: pickle and write each group to its worker's ring."""
        with self.lock:
            fail_later, self.fail_later = self.fail_later, []
            lengths, self.lengths = self.lengths, []
        for w, group in sends:
            try:
                self.put_task(w, group)
            except Exception as e:
                self.group_failed(w, group, e)
        for result, length in lengths:
            result._set_length_from_pool(length)
        for result, i, e in fail_later:
            is_map = isinstance(result, _std_pool.MapResult)
            if is_map:
                ntasks = result._ntasks
            self.complete(result, i, (False, e))
            if is_map:
                # the iterable's __len__ promised more tasks than it gave: the
                # missing ones fail too (the stdlib's map would hang there)
                for k in range(i + 1, ntasks):
                    if result._job not in self.cache:
                        break
                    self.complete(result, k, (False, e))
            else:
                result._set_length_from_pool(i + 1)

    def group_failed(self, w, group, exc):
        """A group could not be sent (it does not pickle): retry its tasks one
        by one, so that only those that do not pickle fail, as on the stdlib."""
        job, i0, kind, func, payload = group
        with self.lock:
            w.sent.pop((job, i0), None)
            if w.inflight.pop((job, i0), None) is None:
                return  # its worker ended and the group was failed already
        result = self.cache.get(job)
        if kind == _APPLY or len(payload) == 1:
            if result is not None:
                self.complete(result, i0, (False, exc))
            return
        for k, chunk in enumerate(payload):
            single = (job, i0 + k, kind, func, [chunk])
            with self.lock:
                w.inflight[(job, i0 + k)] = 1
            try:
                self.put_task(w, single)
            except Exception as e:
                with self.lock:
                    if w.inflight.pop((job, i0 + k), None) is None:
                        continue
                if result is not None:
                    self.complete(result, i0 + k, (False, e))

    # ------------------------------------------------ results

    def complete(self, result, i, obj):
        # The stdlib's results count what is left without a lock (their
        # _set runs on one thread there); here a sending thread may fail a
        # task while the collector completes another: one lock orders them
        # (re-entrant: a callback may submit, and a failed send completes)
        with self.complete_lock:
            self._complete(result, i, obj)

    def _complete(self, result, i, obj):
        try:
            result._set(i, obj)
        except Exception:
            # a callback raised: the stdlib's result handler would die with a
            # traceback and hang the pool; report it and finish the result
            self.report("Exception in a multiprocessing.Pool callback")
            ev = getattr(result, "_event", None)
            if ev is not None and not ev.is_set():
                ev.set()
                self.cache.pop(result._job, None)

    def report(self, what):
        try:
            print(what + ":", file=sys.stderr)
            traceback.print_exc()
        except Exception:  # pragma: no cover  (interpreter exit)
            pass

    def account(self, msg, done):
        """Take one message off the books: its groups leave their worker's
        tasks in flight (under the lock) and go to ``done``, to be completed
        by finish(). A goodbye is noted for the collector."""
        wid, out = msg
        with self.lock:
            w = self.workers.get(wid)
            if w is None:
                return
            if out is None:
                self.byes.append(w)
                return
            for group in out:
                key = (group[0], group[1])
                n = w.inflight.pop(key, None)
                if n is None:
                    continue  # failed already (should not happen: kept for safety)
                src = w.sent.pop(key, None)
                if src is not None:
                    src.group_back(n, group[-1])
                if w.quota is not None:
                    w.quota -= n
                done.append(group)

    def finish(self, done):
        """Complete the results of these groups (from account()). A caller
        collecting for itself leaves results with callbacks to the
        collector thread, where the stdlib's result-handler thread runs them."""
        cache = self.cache
        complete = self._complete
        direct = self.direct_reader == threading.get_ident()
        with self.complete_lock:
            for group in done:
                job, i0, res = group[0], group[1], group[2]
                result = cache.get(job)
                if result is None:
                    continue
                if direct and (getattr(result, "_callback", None) or getattr(result, "_error_callback", None)):
                    self.on_collector(self.finish, [group])
                    continue
                set_many = getattr(result, "_set_many", None)
                if set_many is not None:
                    # imap's iterators: a group's results at once (no
                    # callbacks there, so nothing can raise but a bug)
                    try:
                        set_many(i0, res)
                    except Exception:  # pragma: no cover
                        self.report("Pool collector")
                    continue
                if len(group) == 5:  # a map group that all succeeded: see _FLAT
                    if result._store_values(i0, group[3], res):
                        continue
                    res = result._as_pairs(group[3], res)
                for k, obj in enumerate(res):
                    complete(result, i0 + k, obj)

    def drain(self):
        while True:
            msgs = self.results.poll()
            if not msgs:
                return
            done = []
            for m in msgs:
                self.account(m, done)
            self.finish(done)

    # ------------------------------------------------ deaths

    def reap(self, ended):
        """These workers have ended: fail what they held, replace them, run
        the hook."""
        if not ended:
            return
        # everything an ended worker sent is in its result ring already
        self.drain()
        lost = []
        with self.lock:
            for w in ended:
                if self.workers.get(w.wid) is not w:
                    continue  # reaped already (its goodbye came in the drain above)
                w.process.join()
                try:
                    self.all_processes.remove(w.process)
                except ValueError:
                    pass
                self.poller.unregister(w.sentinel)
                del self.by_fd[w.sentinel]
                self.workers.pop(w.wid, None)
                self.results.drop(w.wid)
                held = list(w.inflight.items())
                w.inflight.clear()
                expected = w.stopping or (
                    w.quota is not None and w.quota <= 0 and not held and w.process.exitcode == 0)
                if not expected and self.state != TERMINATE:
                    lost.append((w, held))
                try:
                    w.tasks.close()
                except Exception:
                    pass
            self.repopulate()
        for w, held in lost:
            err_args = (w.process.pid, w.process.exitcode)
            for (job, i0), n in held:
                result = self.cache.get(job)
                if result is None:
                    continue
                for k in range(n):
                    self.complete(result, i0 + k, (False, WorkerLostError(*err_args)))
            if self.on_worker_lost is not None:
                try:
                    self.on_worker_lost(*err_args)
                except Exception:
                    self.report("Exception in Pool's _on_worker_lost hook")

    def repopulate(self):
        """Under the lock: start workers up to the pool's size while it runs
        (or is closed with work left)."""
        if self.state == TERMINATE or self.collector_stop:
            return
        if self.state == CLOSE and not self.cache:
            return
        while len(self.workers) < self.processes:
            try:
                self.start_worker()
            except Exception:
                self.report("Pool could not start a worker process")
                return

    # ------------------------------------------------ the collector

    def process(self, msgs, woken):
        """The collector, under the reader lock: act on messages read from
        the result rings, look at the workers' sentinels when due (or at a
        wake-up), reap, refill, and complete the results last: a caller
        woken by its result then finds this thread no longer holding the GIL."""
        done = []
        try:
            for m in msgs:
                self.account(m, done)
        except Exception:  # pragma: no cover  (a bug: keep collecting rather than hang the pool)
            self.report("Pool collector")
        ended = []
        if self.byes:
            with self.lock:
                ended, self.byes = self.byes, []
            for w in ended:
                w.process.join(1.0)  # it said goodbye: it is ending now
        now = time.monotonic()
        if woken or now >= self.next_look:
            # a death is seen here (or at a wake-up), at most _WATCH_SLICE
            # late, also while results keep coming
            self.next_look = now + _WATCH_SLICE
            ready = self.poller.poll(0)
            if ready:
                ended.extend(self.by_fd[fd] for fd, ev in ready
                             if fd in self.by_fd and self.by_fd[fd] not in ended)
        if ended:
            self.reap([w for w in ended if w.process.exitcode is not None])
        self.refill_and_finish(done)

    def process_direct(self, msgs):
        """A caller collecting for itself, under the reader lock: only move
        results (completing those without callbacks); goodbyes, wake-ups,
        deaths and callbacks are the collector's."""
        done = []
        for m in msgs:
            self.account(m, done)
        if self.byes:
            self.turn.set()
        self.refill_and_finish(done)

    def refill_and_finish(self, done):
        if self.pending or self.fail_later or self.lengths:
            # (read unlocked: whoever adds to them plans and sends itself)
            with self.lock:
                sends = self.plan()
            self.send(sends)
        try:
            self.finish(done)
        except Exception:  # pragma: no cover
            self.report("Pool collector")

    def on_collector(self, fn, *args):
        """Have the collector thread run fn(*args) soon."""
        self.deferred.append((fn, args))
        self.wake()  # also if it sleeps on the ring, having just stopped keeping out

    def run_deferred(self):
        while self.deferred:
            fn, args = self.deferred.popleft()
            try:
                fn(*args)
            except Exception:  # pragma: no cover  (a bug)
                self.report("Pool collector")

    def collect(self):
        """The collector thread: reads the result rings, except while a
        caller waiting for its result reads them itself (see collect_for)."""
        get_many = self.results.get_many
        reader = self.reader
        seen = self.direct_rounds
        while not self.collector_stop:
            if self.deferred:
                self.run_deferred()
            if self.direct_reader is not None or self.direct_rounds != seen:
                # Callers collect for themselves: keep out of their way (one
                # wake-up less per result) and only watch the workers, until
                # a caller leaves with other work outstanding (turn) or a
                # whole slice passes without one.
                seen = self.direct_rounds
                if self.turn.wait(_WATCH_SLICE):
                    self.turn.clear()
                    seen = self.direct_rounds  # read next, unless a caller still does
                # The poller is the collector's alone: look without the
                # reader lock, which a caller holds a slice at a time (and
                # then hands over: the lock is FIFO).
                if (self.byes or self.poller.poll(0)) and reader.acquire(True, _SEND_SLICE_MAX):
                    try:
                        self.process((), True)
                    finally:
                        reader.release()
            elif reader.acquire(True, _WATCH_SLICE):
                try:
                    msgs = get_many(_WATCH_SLICE, True)
                    self.process(msgs, not msgs)
                    msgs = None
                except Exception:
                    if not self.collector_stop:
                        self.report("Pool collector")
                finally:
                    reader.release()
            if self.state == CLOSE:
                self.maybe_finish_close()
                if not self.workers or self.all_stopping():
                    # Nothing left to collect: every worker was told to end
                    # and holds no task, so no death can lose work. join()
                    # waits for the processes itself (one wake-up after the
                    # last exit instead of two: ours, then join's).
                    break
        util.debug("collector exiting")

    def collect_for(self, ready, timeout):
        """Called by a caller about to wait for a result: until ready() (its
        result completed) or `timeout` passes, read the result rings in this
        thread if no other caller does, so that the worker's message wakes
        this thread itself instead of the collector, which would then wake
        this thread. The results read are completed here, except those with
        callbacks, which go to the collector (process_direct). Returns the
        timeout left for the caller's own wait (None: no timeout), which
        returns at once when ready.

        In the main thread, SIGINT's handler is held back from before this
        thread claims the rings until it gives them back, so that Ctrl-C never
        drops what was read nor leaves the rings claimed; the handler runs
        (KeyboardInterrupt is raised) at most one _WATCH_SLICE late."""
        if ready():
            return timeout
        if timeout is not None:
            try:
                if not timeout > 0:  # also NaN: the caller's own wait judges it
                    return timeout
                deadline = time.monotonic() + timeout
            except TypeError:
                return timeout
        else:
            deadline = None
        me = threading.get_ident()
        held = None
        claimed = False
        try:
            with self.lock:
                if (self.direct_reader is not None or self.state != RUN or self.collector_stop
                        or self.collector is threading.current_thread()):
                    # another caller reads (and completes ours too); or the
                    # pool is closing; or this is a callback on the collector
                    return timeout
                if me == threading.main_thread().ident:
                    held = _SigintHold()  # before the claim: see above
                self.direct_reader = me
                self.direct_rounds += 1
                claimed = True
            reader = self.reader
            while not ready() and not (held is not None and held.caught):
                slice_ = _WATCH_SLICE
                if deadline is not None:
                    slice_ = min(slice_, deadline - time.monotonic())
                    if slice_ <= 0:
                        break
                if not reader.acquire(True, slice_):
                    continue
                try:
                    if ready():
                        break
                    msgs = self.results.get_many(slice_)
                    self.process_direct(msgs)
                    msgs = None
                finally:
                    reader.release()
        finally:
            if claimed:
                with self.lock:
                    self.direct_reader = None
                    outstanding = bool(self.cache or self.pending)
                if outstanding:
                    self.turn.set()  # the collector reads again
            if held is not None:
                held.release()  # may raise KeyboardInterrupt
        if deadline is None:
            return None
        return max(0.0, deadline - time.monotonic())

    def all_stopping(self):
        """Closed, no work left, every worker asked to end and idle."""
        with self.lock:
            if self.cache or self.pending or self.fail_later or self.lengths or self.deferred:
                return False
            return all(w.stopping and not w.inflight for w in self.workers.values())

    def close_rings(self):
        """After join: release the task rings of the workers that ended."""
        with self.lock:
            for w in self.workers.values():
                if w.process.exitcode is not None:
                    try:
                        w.tasks.close()
                    except Exception:
                        pass

    def maybe_finish_close(self):
        """Closed and no work left: ask every worker to end."""
        with self.lock:
            if self.cache or self.pending:
                return
            for w in self.workers.values():
                if not w.stopping and not w.inflight:
                    w.stopping = True
                    try:
                        w.tasks.put(None)
                    except Exception:
                        pass

    def start(self):
        with self.lock:
            for _ in range(self.processes):
                self.start_worker()
        self.collector = threading.Thread(target=self.collect, name="PoolCollector", daemon=True)
        self.collector.start()

    # ------------------------------------------------ ending

    def wake(self):
        """Wake the collector now (it also looks every _WATCH_SLICE)."""
        self.turn.set()
        self.results.wake()

    def signal_workers(self, signum):
        with self.lock:
            for w in list(self.workers.values()):
                if w.process.exitcode is None:
                    try:
                        os.kill(w.process.pid, signum)
                    except ProcessLookupError:
                        pass

    @staticmethod
    def terminate_core(core):
        # called once, by terminate() or the finalizer
        util.debug("finalizing pool")
        with core.lock:
            core.state = TERMINATE
            core.collector_stop = True
            core.pending.clear()
            procs = [w.process for w in core.workers.values()]
            for p in procs:
                if p.exitcode is None:
                    p.terminate()
        core.wake()
        collector = core.collector
        if collector is not None and collector is not threading.current_thread():
            collector.join()
        for p in procs:
            p.join()
        with core.lock:
            for w in core.workers.values():
                try:
                    w.tasks.close()
                except Exception:
                    pass


def _native_event(result):
    # cconc's Event: get() waits in the native waiting core (Ctrl-C answered
    # there as on the stdlib's), set() wakes it without a Python Condition
    ev = _Event()
    if result._event.is_set():
        ev.set()
    result._event = ev


class ApplyResult(_std_pool.ApplyResult):
    __doc__ = _std_pool.ApplyResult.__doc__
    _set_length_pending = False

    def __init__(self, pool, callback, error_callback):
        # the stdlib's __init__ (the same in 3.9-3.13) with cconc's Event in
        # place of threading's, made directly: building both cost 12 us here
        self._pool = pool
        self._event = _Event()
        self._job = next(job_counter)
        self._cache = pool._cache
        self._callback = callback
        self._error_callback = error_callback
        self._cache[self._job] = self

    def wait(self, timeout=None):
        core = getattr(self._pool, "_core", None)  # the pool, until completed
        if core is not None and not (self._callback or self._error_callback):
            # (with callbacks, the collector completes it: nothing to gain)
            timeout = core.collect_for(self._event.is_set, timeout)
        self._event.wait(timeout)


AsyncResult = ApplyResult


class MapResult(_std_pool.MapResult, ApplyResult):
    __doc__ = _std_pool.MapResult.__doc__
    _set_length_pending = False

    def __init__(self, pool, chunksize, length, callback, error_callback):
        _std_pool.MapResult.__init__(self, pool, chunksize, length, callback, error_callback)
        _native_event(self)

    def _store_values(self, i0, n, values):
        """Stores n successful tasks' values (from task i0 on, concatenated)
        at once: what _set does for each, unless the job failed already or
        they end it; then False, and each task takes _set (as_pairs), which
        keeps the first failure and runs the callbacks at the end."""
        if n >= self._number_left or not self._success:
            return False
        start = i0 * self._chunksize
        self._value[start:start + len(values)] = values
        self._number_left -= n
        return True

    def _as_pairs(self, n, values):
        """_store_values' values as the (True, chunk's values) of n tasks
        (the job's last chunk, which may be shorter, is a group's last)."""
        cs = self._chunksize
        return [(True, values[k * cs:(k + 1) * cs]) for k in range(n)]


class _Windowed:
    """imap's iterators: each consumed item makes room in the job's window."""

    _set_length_pending = True
    _source = None
    _core = None

    def __init__(self, pool):
        super().__init__(pool)
        # the stdlib's code on cconc's Condition: its with/wait/notify are native
        # (one item's hand-over costs a Python Condition's notify() otherwise)
        from cconc.threading import Condition, Lock

        self._cond = Condition(Lock())

    def next(self, timeout=None):
        # The stdlib's next, except that it waits until an item comes or the
        # timeout ends: the stdlib's waits once and then raises TimeoutError
        # even with timeout=None when another consumer thread took the item
        # it was woken for (results here arrive a group at a time, which
        # makes that frequent with several consumers).
        core = self._core
        if core is not None and not self._items:
            # read the result rings while waiting, as AsyncResult.wait does
            timeout = core.collect_for(self._has_item, timeout)
        cond = self._cond
        with cond:
            items = self._items
            deadline = None if timeout is None else time.monotonic() + timeout
            while not items and self._index != self._length:
                if deadline is None:
                    cond.wait()
                else:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    cond.wait(left)
            try:
                item = items.popleft()
            except IndexError:
                if self._index == self._length:
                    self._pool = None
                    raise StopIteration from None
                raise TimeoutError from None
        self._consumed()  # also for a failed task: its slot of the window is free
        success, value = item
        if success:
            return value
        raise value

    __next__ = next

    def _has_item(self):
        # read without the condition's lock: a hint for collect_for, which
        # next() confirms under the lock
        return bool(self._items) or self._index == self._length

    def _consumed(self):
        src, core = self._source, self._core
        if src is None or core is None:
            return
        with core.lock:
            src.unconsumed -= 1
            if src.exhausted or src.window - src.unconsumed != src.refill_at:
                return  # the collector refills as results come; we only unblock a full window
            sends = core.plan()
        if sends:
            core.send(sends)

    def _set_length_from_pool(self, length):
        self._set_length(length)

    # Once the last result is in, every consumer still waiting must see the
    # end (the stdlib wakes one per item and leaves the others waiting)
    def _set(self, i, obj):
        super()._set(i, obj)
        self._wake_all_at_end()

    def _set_length(self, length):
        super()._set_length(length)
        self._wake_all_at_end()

    def _finish_if_complete(self):
        """Under self._cond, after _set_many: the last result is in."""
        if self._index == self._length:
            del self._cache[self._job]
            self._pool = None
            self._cond.notify_all()

    def _wake_all_at_end(self):
        if self._index == self._length:
            with self._cond:
                self._cond.notify_all()


class IMapIterator(_Windowed, _std_pool.IMapIterator):
    __doc__ = _std_pool.IMapIterator.__doc__

    def _set_many(self, i0, objs):
        """_set(i0 + k, obj) for each obj of objs (one group's results),
        under one acquisition of the condition."""
        with self._cond:
            if self._index == i0:
                self._items.extend(objs)
                self._index += len(objs)
                added = len(objs)
                while self._index in self._unsorted:
                    self._items.append(self._unsorted.pop(self._index))
                    self._index += 1
                    added += 1
                self._cond.notify(added)  # as many as _set would have woken
            else:
                for k, obj in enumerate(objs):
                    self._unsorted[i0 + k] = obj
            self._finish_if_complete()


class IMapUnorderedIterator(_Windowed, _std_pool.IMapUnorderedIterator):
    __doc__ = _std_pool.IMapUnorderedIterator.__doc__

    def _set_many(self, i0, objs):
        """As IMapIterator._set_many."""
        with self._cond:
            self._items.extend(objs)
            self._index += len(objs)
            self._cond.notify(len(objs))
            self._finish_if_complete()


class _BatchJob:
    """The job of _submit_batch: on_done per task, nothing else."""

    _set_length_pending = False

    def __init__(self, core, on_done, n):
        self._job = next(job_counter)
        self._core = core
        self._on_done = on_done
        self._left = n
        self._n = n
        self._source = None
        self._lock = threading.Lock()
        if n:
            core.cache[self._job] = self

    def _set(self, i, obj):
        ok, value = obj
        with self._lock:
            self._left -= 1
            last = self._left == 0
        if last:
            self._core.cache.pop(self._job, None)
        self._on_done(i, ok, value)

    def cancel(self):
        """Drop the tasks not yet sent to a worker; returns their indices."""
        src, core = self._source, self._core
        if src is None:
            return []
        with core.lock:
            if src.exhausted:
                return []
            dropped = list(range(src.next_index, self._n))
            src.exhausted = True
            try:
                core.pending.remove(src)
            except ValueError:
                pass
            with self._lock:
                self._left -= len(dropped)
                last = self._left == 0
        if last:
            core.cache.pop(self._job, None)
        return dropped


class Pool:
    """A pool of worker processes (see the module's docstring)."""

    _wrap_exception = True

    @staticmethod
    def Process(ctx, *args, **kwds):
        return ctx.Process(*args, **kwds)

    def __init__(self, processes=None, initializer=None, initargs=(), maxtasksperchild=None, context=None,
                 *, _on_worker_lost=None):
        # exist in __del__ even when __init__ raises
        self._pool = []
        self._state = INIT
        self._core = None
        from .context import _default_context

        self._ctx = context or _default_context.get_context()
        if processes is None:
            cpu_count = getattr(os, "process_cpu_count", os.cpu_count)
            processes = cpu_count() or 1
        if processes < 1:
            raise ValueError("Number of processes must be at least 1")
        if maxtasksperchild is not None:
            if not isinstance(maxtasksperchild, int) or maxtasksperchild <= 0:
                raise ValueError("maxtasksperchild must be a positive int or None")
        if initializer is not None and not callable(initializer):
            raise TypeError("initializer must be a callable")
        self._processes = processes
        self._maxtasksperchild = maxtasksperchild
        self._initializer = initializer
        self._initargs = initargs
        core = _Core(self._ctx, processes, initializer, initargs, maxtasksperchild, self._wrap_exception,
                     _on_worker_lost, self.Process)
        self._cache = core.cache
        try:
            core.start()
        except Exception:
            core.collector_stop = True
            for w in core.workers.values():
                if w.process.exitcode is None:
                    w.process.terminate()
            for w in core.workers.values():
                w.process.join()
            raise
        self._core = core
        self._pool = core.all_processes
        self._terminate = util.Finalize(self, _Core.terminate_core, args=(core,), exitpriority=15)
        core.state = RUN
        self._state = RUN

    def __del__(self, _warn=warnings.warn, RUN=RUN):
        if self._state == RUN:
            _warn(f"unclosed running multiprocessing pool {self!r}", ResourceWarning, source=self)

    def __repr__(self):
        cls = self.__class__
        return f"<{cls.__module__}.{cls.__qualname__} state={self._state} pool_size={len(self._pool)}>"

    def __reduce__(self):
        raise NotImplementedError("pool objects cannot be passed between processes or pickled")

    def _check_running(self):
        if self._state != RUN:
            raise ValueError("Pool not running")

    # ------------------------------------------------ the API

    def apply(self, func, args=(), kwds={}):
        """Equivalent of `func(*args, **kwds)`. Pool must be running."""
        return self.apply_async(func, args, kwds).get()

    def map(self, func, iterable, chunksize=None):
        """Apply `func` to each element in `iterable`, collecting the results
        in a list that is returned."""
        return self._map_async(func, iterable, _MAP | _FLAT, chunksize).get()

    def starmap(self, func, iterable, chunksize=None):
        """Like `map()` method but the elements of the `iterable` are expected
        to be iterables as well and will be unpacked as arguments."""
        return self._map_async(func, iterable, _STARMAP | _FLAT, chunksize).get()

    def starmap_async(self, func, iterable, chunksize=None, callback=None, error_callback=None):
        """Asynchronous version of `starmap()` method."""
        return self._map_async(func, iterable, _STARMAP | _FLAT, chunksize, callback, error_callback)

    def apply_async(self, func, args=(), kwds={}, callback=None, error_callback=None):
        """Asynchronous version of `apply()` method."""
        self._check_running()
        result = ApplyResult(self, callback, error_callback)
        try:
            self._core.submit(_Source(result, _APPLY, func, iter(((args, kwds),)), 1))
        except BaseException:
            self._cache.pop(result._job, None)
            raise
        return result

    def map_async(self, func, iterable, chunksize=None, callback=None, error_callback=None):
        """Asynchronous version of `map()` method."""
        return self._map_async(func, iterable, _MAP | _FLAT, chunksize, callback, error_callback)

    def _map_async(self, func, iterable, kind, chunksize=None, callback=None, error_callback=None):
        self._check_running()
        if not hasattr(iterable, "__len__"):
            iterable = list(iterable)
        if chunksize is None:
            chunksize, extra = divmod(len(iterable), self._processes * 4)
            if extra:
                chunksize += 1
        if len(iterable) == 0:
            chunksize = 0
        result = MapResult(self, chunksize, len(iterable), callback, error_callback=error_callback)
        result._ntasks = -(-len(iterable) // chunksize) if chunksize > 0 else 0
        if chunksize > 0:
            chunks = _chunks(iterable, chunksize)
            self._submit_source(_Source(result, kind, func, chunks, result._ntasks, chunksize=chunksize), result)
        return result

    def _submit_source(self, src, result):
        try:
            self._core.submit(src)
        except BaseException:
            self._cache.pop(result._job, None)
            raise

    def _imap(self, cls, func, iterable, chunksize):
        self._check_running()
        if chunksize != 1 and chunksize < 1:
            raise ValueError("Chunksize must be 1+, not {0!r}".format(chunksize)
                             if cls is IMapUnorderedIterator else "Chunksize must be 1+, not {0:n}".format(chunksize))
        result = cls(self)
        chunks = _lazy_chunks(iterable, chunksize)
        window = max(_WINDOW_PER_WORKER * self._processes, 64)
        src = _Source(result, _EACH if chunksize == 1 else _MAP, func, chunks, window=window, chunksize=chunksize)
        result._source = src
        result._core = self._core
        self._submit_source(src, result)
        if chunksize == 1:
            return result
        return (item for chunk in result for item in chunk)

    def imap(self, func, iterable, chunksize=1):
        """Equivalent of `map()` -- can be MUCH slower than `Pool.map()`."""
        return self._imap(IMapIterator, func, iterable, chunksize)

    def imap_unordered(self, func, iterable, chunksize=1):
        """Like `imap()` method but ordering of results is arbitrary."""
        return self._imap(IMapUnorderedIterator, func, iterable, chunksize)

    def close(self):
        util.debug("closing pool")
        if self._state == RUN:
            self._state = CLOSE
            core = self._core
            with core.lock:
                core.state = CLOSE
            # Idle workers are told to end now, from here: their exit does
            # not wait for the collector's wake-up.
            core.maybe_finish_close()
            core.wake()

    def terminate(self):
        util.debug("terminating pool")
        self._state = TERMINATE
        self._terminate()

    def join(self):
        util.debug("joining pool")
        if self._state == RUN:
            raise ValueError("Pool is still running")
        elif self._state not in (CLOSE, TERMINATE):
            raise ValueError("In unknown state")
        core = self._core
        if core.collector is not threading.current_thread():
            core.collector.join()
        for p in list(self._pool):
            p.join()
        core.close_rings()

    def __enter__(self):
        self._check_running()
        return self

    def __exit__(self, exc_type, exc_val, exc_tb):
        self.terminate()

    def _repopulate_pool(self):
        core = self._core
        with core.lock:
            core.repopulate()

    # ------------------------------------------------ private hooks (module docstring)

    def _signal_workers(self, signum):
        self._core.signal_workers(signum)

    def _worker_pids(self):
        core = self._core
        with core.lock:
            return [w.process.pid for w in core.workers.values() if w.process.exitcode is None]

    def _submit_batch(self, func, args_list, on_done):
        self._check_running()
        args_list = list(args_list)
        job = _BatchJob(self._core, on_done, len(args_list))
        if args_list:
            if len(args_list) == 1:  # as apply_async: no group to cut
                src = _Source(job, _APPLY, func, iter(((args_list[0], {}),)), 1)
            else:
                src = _Source(job, _STAREACH, func, iter(args_list), len(args_list))
            job._source = src
            try:
                self._core.submit(src)
            except BaseException:
                self._cache.pop(job._job, None)
                raise
        return job

    __class_getitem__ = classmethod(types.GenericAlias)


def _chunks(iterable, size):
    """The chunks of map's sized iterable, made by C iterators: 1-tuples for
    size 1, as the stdlib's; else slices (a range's slice is a range: it
    pickles as three ints) as tuples, or islices where it does not slice."""
    if size == 1:
        return zip(iterable)
    try:
        iterable[0:0]
    except Exception:
        it = iter(iterable)
        return iter(lambda: tuple(itertools.islice(it, size)), ())
    n = len(iterable)
    chunks = map(iterable.__getitem__, map(slice, range(0, n, size), range(size, n + size, size)))
    return chunks if type(iterable) is range else map(tuple, chunks)


def _lazy_chunks(iterable, size):
    it = iter(iterable)
    if size == 1:
        return it
    return iter(lambda: tuple(itertools.islice(it, size)), ())


_mirror.install(__name__, _std_pool)
