# Stubs for cconc.multiprocessing: the stdlib's multiprocessing namespace,
# whose Queue, JoinableQueue and SimpleQueue return cconc's native queues and Pool
# cconc's native pool.
from multiprocessing import *  # noqa: F401,F403
from multiprocessing import SUBDEBUG as SUBDEBUG, SUBWARNING as SUBWARNING
from typing import Any

from . import context as context
from . import pool as pool
from .queues import JoinableQueue as _JoinableQueue, Queue as _Queue, SimpleQueue as _SimpleQueue

__all__: list[str]

def Queue(maxsize: int = 0) -> _Queue[Any]: ...
def JoinableQueue(maxsize: int = 0) -> _JoinableQueue[Any]: ...
def SimpleQueue() -> _SimpleQueue[Any]: ...
def Pool(
    processes: int | None = None,
    initializer: Any = None,
    initargs: Any = (),
    maxtasksperchild: int | None = None,
) -> pool.Pool: ...
def __getattr__(name: str) -> Any: ...
