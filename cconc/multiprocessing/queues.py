"""Drop-in mirror of :mod:`multiprocessing.queues`, with native queues.

``Queue``, ``JoinableQueue`` and ``SimpleQueue`` keep their items in a byte
ring in shared memory (a memfd: nothing is left in /dev/shm), written and read
by C (src/multiprocessing/). A ``put`` never waits for room: when the ring
has room (and this process has nothing spilled) a ``put`` that returns has
placed the item, which survives the death of the process that put it; when the
ring is full, the encoded item goes to this process's spill buffer, which a
feeder thread places in the ring in order (as the stdlib's feeder thread
empties its buffer), and is lost if the process is killed or exits after
cancel_join_thread(). Spilled items count in qsize(), the bound and join(). Items are pickled as the stdlib's ``ForkingPickler`` pickles them (exact ``int``,
``float``, ``str``, ``bytes``, ``bool`` and ``None`` travel as raw bytes), so
objects with special reducers travel as they do on the stdlib.

As on the stdlib, a queue is passed to a child process when the process is
created (inherited under fork, its file descriptor passed under spawn and
forkserver); pickling it at any other time raises ``RuntimeError``.

Beyond the stdlib: ``put_many(items, block=True, timeout=None)`` and
``get_many(max_items, block=True, timeout=None)`` (see docs/multiprocessing.md).
"""
import os
import threading
import types

from multiprocessing import context as _std_context
from multiprocessing import queues as _std_queues
from multiprocessing import reduction as _reduction
from multiprocessing import util as _util
from queue import Empty, Full  # noqa: F401  (the stdlib's own classes)

from cconc import _cconc, _mirror

__all__ = ["Queue", "SimpleQueue", "JoinableQueue"]

# The native queues are built on Linux (memfd, futexes, robust mutexes);
# elsewhere the names below are rebound to the stdlib's classes.
_NATIVE = hasattr(_cconc, "_MPQueue")
if _NATIVE:
    from . import _pickling

    _cconc._mp_setup(_pickling.dumps, _pickling.loads)


def _rebuild(cls, dupfd):
    # In the child: the fd was passed by the start method (spawn's pass_fds,
    # forkserver's SCM_RIGHTS), exactly as multiprocessing passes its pipes.
    q = cls._attach(dupfd.detach())
    if isinstance(q, Queue):
        q._ignore_epipe = False
        q._reset_feeder()
    return q


def _reduce(self):
    _std_context.assert_spawning(self)
    return _rebuild, (type(self), _reduction.DupFd(self._fileno()))


class Queue(_cconc._MPQueue if _NATIVE else object):
    """multiprocessing.Queue(maxsize=0, *, ctx): a process-shared FIFO queue.

    ``buffer_size`` (keyword, cconc only) is the size in bytes of the shared
    ring (default 8 MiB); when it is full, puts spill to a per-process buffer
    that a feeder thread places in the ring. Items larger than a quarter of it
    stream through it."""

    def __init__(self, maxsize=0, *, ctx=None, buffer_size=None):
        # The C __new__ took the arguments. For concurrent.futures, which
        # sets it on the stdlib's queue:
        self._ignore_epipe = False
        self._reset_feeder()

    def _reset_feeder(self):
        # The feeder state of one process: a forked child starts afresh (the
        # C spill buffer is reset the same way), as the stdlib's _after_fork.
        self._feeder_pid = os.getpid()
        self._feeder_box = [None]  # the current feeder thread
        self._jointhread = None  # the Finalize that flushes at exit
        self._joincancelled = False

    __reduce__ = _reduce

    def _start_feeder(self):
        # Called by the C put when it spilled items and no feeder runs. The
        # thread holds the queue while it runs and ends once the spill
        # buffer is empty; a later spill starts another.
        if self._feeder_pid != os.getpid():
            self._reset_feeder()
        thread = threading.Thread(target=self._feed, name="QueueFeederThread", daemon=True)
        self._feeder_box[0] = thread
        thread.start()
        if self._jointhread is None and not self._joincancelled:
            # as the stdlib's: at exit, wait for the feeder to flush the buffer
            self._jointhread = _util.Finalize(self, Queue._finalize_join, [self._feeder_box], exitpriority=-5)

    @staticmethod
    def _finalize_join(box):
        thread = box[0]
        while thread is not None and thread is not threading.current_thread() and thread.is_alive():
            _util.debug("joining queue feeder thread")
            thread.join()
            thread = box[0]

    def join_thread(self):
        """Wait until the items this process spilled (put while the ring was
        full) are in the queue; the queue must be closed, as on the stdlib."""
        assert self._closed, "Queue {0!r} not closed".format(self)
        if self._feeder_pid == os.getpid():
            Queue._finalize_join(self._feeder_box)

    def cancel_join_thread(self):
        """Let this process exit without waiting for its spilled items to be
        placed in the queue: they are lost, as the stdlib's buffered items."""
        if self._feeder_pid != os.getpid():
            self._reset_feeder()
        self._joincancelled = True
        if self._jointhread is not None:
            self._jointhread.cancel()
            self._jointhread = None

    if hasattr(_std_queues.Queue, "__class_getitem__"):  # 3.12+
        __class_getitem__ = classmethod(types.GenericAlias)


class JoinableQueue(Queue):
    """multiprocessing.JoinableQueue: a Queue with task_done() and join(),
    across processes."""

    if _NATIVE:
        task_done = _cconc._MPQueue._task_done
        join = _cconc._MPQueue._join


class SimpleQueue(_cconc._MPSimpleQueue if _NATIVE else object):
    """multiprocessing.SimpleQueue(*, ctx): put(), get(), empty(), close()."""

    def __init__(self, *, ctx=None, buffer_size=None):
        pass

    __reduce__ = _reduce

    __class_getitem__ = classmethod(types.GenericAlias)


if _NATIVE:

    class _Doorbell(_cconc._Doorbell):
        """The pool's doorbell (src/multiprocessing/doorbell.c), passed to
        its workers as the queues are."""

        __reduce__ = _reduce


if not _NATIVE:  # pragma: no cover
    from multiprocessing.queues import JoinableQueue, Queue, SimpleQueue  # noqa: F401,F811

_mirror.install(__name__, _std_queues)  # Finalize, debug, is_exiting...: the stdlib's
