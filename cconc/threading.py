"""Drop-in mirror of the stdlib's :mod:`threading`.

The primitives implemented natively in cconc._cconc replace their stdlib
counterparts; everything else is the stdlib's own object, so that the module is
complete and programs see one thread registry, one ``excepthook`` and the
stdlib's exception classes (``BrokenBarrierError`` included).
"""
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


def __getattr__(name):
    # Private and undocumented names (threading._shutdown, _active, ...) are the stdlib's.
    return getattr(_std, name)
