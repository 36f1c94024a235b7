# The stdlib's threading namespace, with the native primitives in place.
import threading as _std
from threading import *  # noqa: F401,F403
from threading import __all__ as __all__
from typing import Any, Callable, Iterable, Mapping, Optional

from cconc._cconc import Barrier as Barrier
from cconc._cconc import BoundedSemaphore as BoundedSemaphore
from cconc._cconc import Condition as Condition
from cconc._cconc import Event as Event
from cconc._cconc import Lock as Lock
from cconc._cconc import RLock as RLock
from cconc._cconc import Semaphore as Semaphore

class Thread(_std.Thread):
    def __init__(self, group: None = None, target: Optional[Callable[..., object]] = None,
                 name: Optional[str] = None, args: Iterable[Any] = (),
                 kwargs: Optional[Mapping[str, Any]] = None, *, daemon: Optional[bool] = None) -> None: ...

class Timer(Thread, _std.Timer):
    def __init__(self, interval: float, function: Callable[..., object],
                 args: Optional[Iterable[Any]] = None, kwargs: Optional[Mapping[str, Any]] = None) -> None: ...
