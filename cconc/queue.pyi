# Stubs for cconc.queue: the stdlib's queue API, plus ShutDown on every
# version and the batch methods put_many/get_many.
from queue import Empty as Empty, Full as Full
from typing import Any

from cconc._cconc import (
    LifoQueue as LifoQueue,
    PriorityQueue as PriorityQueue,
    Queue as Queue,
    ShutDown as ShutDown,
    SimpleQueue as SimpleQueue,
)

__all__: list[str]

def __getattr__(name: str) -> Any: ...
