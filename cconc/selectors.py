"""Drop-in mirror of the stdlib's :mod:`selectors`.

``SelectSelector``, ``PollSelector``, ``EpollSelector`` (Linux) and
``KqueueSelector`` (where the platform has kqueue) are native: ``select()``
waits with the GIL released and builds its ``[(key, events), ...]`` list in C.
``SelectorKey``, ``EVENT_READ``, ``EVENT_WRITE`` and ``BaseSelector`` are the
stdlib's own objects, and the native classes are registered as virtual
subclasses of ``BaseSelector``, so ``asyncio.SelectorEventLoop(DefaultSelector())``
runs on them.
"""
import selectors as _std
from collections.abc import Mapping as _Mapping
from selectors import *  # noqa: F401,F403  (every public name of the stdlib module first)
from selectors import BaseSelector, EVENT_READ, EVENT_WRITE, SelectorKey  # noqa: F401

from cconc import _cconc
from cconc import _mirror

SelectSelector = _cconc.SelectSelector
PollSelector = _cconc.PollSelector
_native = [SelectSelector, PollSelector]
if hasattr(_cconc, "EpollSelector"):
    EpollSelector = _cconc.EpollSelector
    _native.append(EpollSelector)
if hasattr(_cconc, "KqueueSelector"):
    KqueueSelector = _cconc.KqueueSelector
    _native.append(KqueueSelector)
for _cls in _native:
    # BaseSelector.register is the abstract method: ask the ABC machinery itself.
    type(BaseSelector).register(BaseSelector, _cls)
_Mapping.register(_cconc.SelectorMapping)

# The stdlib's choice, among the native classes: kqueue > epoll > devpoll > poll > select.
if hasattr(_cconc, "KqueueSelector") and _std._can_use("kqueue"):
    DefaultSelector = KqueueSelector
elif hasattr(_cconc, "EpollSelector") and _std._can_use("epoll"):
    DefaultSelector = EpollSelector
elif _std._can_use("devpoll"):
    DefaultSelector = _std.DevpollSelector  # Solaris: no native version, the stdlib's
elif _std._can_use("poll"):
    DefaultSelector = PollSelector
else:
    DefaultSelector = SelectSelector

del _cls, _native

_mirror.install(__name__, _std)  # names taken from the stdlib are read and set on selectors
