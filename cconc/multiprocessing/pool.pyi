# Stubs for cconc.multiprocessing.pool: the stdlib's multiprocessing.pool API,
# with cconc's native Pool and WorkerLostError.
from multiprocessing import ProcessError
from multiprocessing.context import BaseContext
from multiprocessing.pool import (
    ApplyResult as _StdApplyResult,
    IMapIterator as _StdIMapIterator,
    IMapUnorderedIterator as _StdIMapUnorderedIterator,
    MapResult as _StdMapResult,
    Pool as _StdPool,
    ThreadPool as ThreadPool,
    MaybeEncodingError as MaybeEncodingError,
    RemoteTraceback as RemoteTraceback,
    ExceptionWithTraceback as ExceptionWithTraceback,
    INIT as INIT,
    RUN as RUN,
    CLOSE as CLOSE,
    TERMINATE as TERMINATE,
)
from typing import Any, Callable, Iterable, Sequence, TypeVar

_T = TypeVar("_T")

__all__: list[str]

class WorkerLostError(ProcessError):
    pid: int
    exitcode: int | None
    def __init__(self, pid: int, exitcode: int | None) -> None: ...

class ApplyResult(_StdApplyResult[_T]): ...

AsyncResult = ApplyResult

class MapResult(_StdMapResult[_T]): ...
class IMapIterator(_StdIMapIterator[_T]): ...
class IMapUnorderedIterator(_StdIMapUnorderedIterator[_T]): ...

class _BatchJob:
    def cancel(self) -> list[int]: ...

class Pool(_StdPool):
    def __init__(
        self,
        processes: int | None = None,
        initializer: Callable[..., object] | None = None,
        initargs: Iterable[Any] = (),
        maxtasksperchild: int | None = None,
        context: BaseContext | None = None,
        *,
        _on_worker_lost: Callable[[int, int], object] | None = None,
    ) -> None: ...
    def _signal_workers(self, signum: int) -> None: ...
    def _worker_pids(self) -> list[int]: ...
    def _submit_batch(
        self, func: Callable[..., Any], args_list: Sequence[tuple[Any, ...]],
        on_done: Callable[[int, bool, Any], object]
    ) -> _BatchJob: ...
