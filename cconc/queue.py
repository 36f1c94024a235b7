"""Drop-in mirror of the stdlib's :mod:`queue`, implemented natively.

``Queue``, ``LifoQueue``, ``PriorityQueue`` and ``SimpleQueue`` come from
cconc._cconc; ``Empty`` and ``Full`` are the stdlib's own classes (so
``except queue.Empty`` catches either implementation's), and ``ShutDown`` is
``queue.ShutDown`` on Python 3.13+ and cconc's own class before.

Beyond the stdlib: ``put_many(items, block=True, timeout=None)`` and
``get_many(max_items, block=True, timeout=None)`` move many items per wake-up
(see docs/queue.md).
"""
import queue as _std
from queue import Empty, Full  # noqa: F401  (the stdlib's own classes)

from cconc._cconc import LifoQueue, PriorityQueue, Queue, ShutDown, SimpleQueue  # noqa: F401
from cconc import _mirror

__all__ = list(_std.__all__)
if "ShutDown" not in __all__:
    __all__.append("ShutDown")

_mirror.install(__name__, _std)  # names taken from the stdlib are read and set on queue
