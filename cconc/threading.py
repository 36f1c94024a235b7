"""Drop-in mirror of the stdlib's :mod:`threading`.

The primitives implemented natively in cconc._cconc replace their stdlib
counterparts; everything else is the stdlib's own object, so that the module is
complete and programs see one thread registry, one ``excepthook`` and the
stdlib's exception classes (``BrokenBarrierError`` included).

``Thread`` and ``Timer`` are subclasses of the stdlib's classes (isinstance,
the registry, ``excepthook``, joining at exit all stay the stdlib's): their
start-up handshake is a native Event, and the OS thread under them is reused
from a finished thread when one is idle (each run still gets a fresh thread
state, hence fresh ``threading.local`` data; see src/threading/thread_start.c and
docs/threading.md). CCONC_THREAD_CACHE=0 in the environment turns the reuse off.
"""
import _thread
import os as _os
import threading as _std
from threading import *  # noqa: F401,F403  (the whole stdlib namespace first)
from threading import __all__  # noqa: F401

from cconc._cconc import (  # noqa: F401
    Barrier,
    BoundedSemaphore,
    Condition,
    Event,
    Lock,
    RLock,
    Semaphore,
)
from cconc._cconc import _drain_thread_cache, _start_thread
from cconc import _mirror

# Thread.start() of Python <= 3.12 spawns with _thread.start_new_thread and
# waits on self._started; 3.13 rewrote it around thread handles, so there the
# stdlib's start() is kept as it is.
_FAST_START = hasattr(_thread, "_set_sentinel") and hasattr(_std, "_limbo")
# CCONC_THREAD_CACHE=0 gives every Thread a new OS thread, as the stdlib does
# (for code that keeps per-OS-thread state in C: thread names, nice values...).
_THREAD_CACHE = _os.environ.get("CCONC_THREAD_CACHE", "1") != "0"

if hasattr(_os, "register_at_fork"):
    # Idle cached OS threads end before a fork, so the parent forks with as
    # few threads as it would with the stdlib (3.12+ warns about threads).
    _os.register_at_fork(before=_drain_thread_cache)


class Thread(_std.Thread):
    __doc__ = _std.Thread.__doc__

    def __init__(self, group=None, target=None, name=None, args=(), kwargs=None, *, daemon=None):
        _std.Thread.__init__(self, group, target, name, args, kwargs, daemon=daemon)
        if _FAST_START:
            self._started = Event()

    if _FAST_START:

        def start(self):
            """Start the thread's activity (see threading.Thread.start)."""
            if not self._initialized:
                raise RuntimeError("thread.__init__() not called")
            if self._started.is_set():
                raise RuntimeError("threads can only be started once")
            with _std._active_limbo_lock:
                _std._limbo[self] = self
            try:
                # threading._start_new_thread, which tests replace, as the stdlib's start() reads it
                start_new_thread = _std._start_new_thread
                if (not _THREAD_CACHE or start_new_thread is not _thread.start_new_thread
                        or _start_thread(self._bootstrap) is None):
                    start_new_thread(self._bootstrap, ())
            except Exception:
                with _std._active_limbo_lock:
                    del _std._limbo[self]
                raise
            self._started.wait()


class Timer(Thread, _std.Timer):
    __doc__ = _std.Timer.__doc__

    def __init__(self, interval, function, args=None, kwargs=None):
        Thread.__init__(self)
        self.interval = interval
        self.function = function
        self.args = args if args is not None else []
        self.kwargs = kwargs if kwargs is not None else {}
        self.finished = Event()


_mirror.install(__name__, _std)  # names taken from the stdlib are read and set on threading
