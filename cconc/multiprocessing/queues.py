"""Drop-in mirror of :mod:`multiprocessing.queues`, with native queues.

``Queue``, ``JoinableQueue`` and ``SimpleQueue`` keep their items in a byte
ring in shared memory (a memfd: nothing is left in /dev/shm), written and read
by C (src/multiprocessing/). A ``put`` that returns has placed the item: there
is no feeder thread, and the item survives the death of the process that put
it. Items are pickled with the stdlib's ``ForkingPickler`` (exact ``int``,
``float``, ``str``, ``bytes``, ``bool`` and ``None`` travel as raw bytes), so
objects with special reducers travel as they do on the stdlib.

As on the stdlib, a queue is passed to a child process when the process is
created (inherited under fork, its file descriptor passed under spawn and
forkserver); pickling it at any other time raises ``RuntimeError``.

Beyond the stdlib: ``put_many(items, block=True, timeout=None)`` and
``get_many(max_items, block=True, timeout=None)`` (see docs/multiprocessing.md).
"""
import types

from multiprocessing import context as _std_context
from multiprocessing import queues as _std_queues
from multiprocessing import reduction as _reduction
from queue import Empty, Full  # noqa: F401  (the stdlib's own classes)

from cconc import _cconc, _mirror

__all__ = ["Queue", "SimpleQueue", "JoinableQueue"]

# The native queues are built on Linux (memfd, futexes, robust mutexes);
# elsewhere the names below are rebound to the stdlib's classes.
_NATIVE = hasattr(_cconc, "_MPQueue")
if _NATIVE:
    _cconc._mp_setup(_reduction.ForkingPickler.dumps, _reduction.ForkingPickler.loads)


def _rebuild(cls, dupfd):
    # In the child: the fd was passed by the start method (spawn's pass_fds,
    # forkserver's SCM_RIGHTS), exactly as multiprocessing passes its pipes.
    return cls._attach(dupfd.detach())


def _reduce(self):
    _std_context.assert_spawning(self)
    return _rebuild, (type(self), _reduction.DupFd(self._fileno()))


class Queue(_cconc._MPQueue if _NATIVE else object):
    """multiprocessing.Queue(maxsize=0, *, ctx): a process-shared FIFO queue.

    ``buffer_size`` (keyword, cconc only) is the size in bytes of the shared
    ring (default 8 MiB); a put waits for room when it is full. Items larger
    than a quarter of it stream through it."""

    def __init__(self, maxsize=0, *, ctx=None, buffer_size=None):
        # The C __new__ took the arguments. For concurrent.futures, which
        # sets it on the stdlib's queue:
        self._ignore_epipe = False
        self._joincancelled = False

    __reduce__ = _reduce

    def join_thread(self):
        """Nothing to join: there is no feeder thread (a put has placed its item)."""
        assert self._closed, "Queue {0!r} not closed".format(self)

    def cancel_join_thread(self):
        """Accepted for the stdlib's API; nothing is ever buffered in this process."""
        self._joincancelled = True

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


if not _NATIVE:  # pragma: no cover
    from multiprocessing.queues import JoinableQueue, Queue, SimpleQueue  # noqa: F401,F811

_mirror.install(__name__, _std_queues)  # Finalize, debug, is_exiting...: the stdlib's
