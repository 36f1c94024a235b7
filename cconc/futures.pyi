"""Stubs for cconc.futures: the stdlib's concurrent.futures API (3.14 map with buffersize)."""
import concurrent.futures as _std
from concurrent.futures import (
    ALL_COMPLETED as ALL_COMPLETED,
    FIRST_COMPLETED as FIRST_COMPLETED,
    FIRST_EXCEPTION as FIRST_EXCEPTION,
    BrokenExecutor as BrokenExecutor,
    CancelledError as CancelledError,
    Executor as Executor,
    InvalidStateError as InvalidStateError,
    TimeoutError as TimeoutError,
)
from concurrent.futures._base import DoneAndNotDoneFutures
from typing import Any, Callable, Iterable, Iterator, Optional, Set, Tuple, TypeVar

_T = TypeVar("_T")

__all__: Tuple[str, ...]

class Future(_std.Future[_T]): ...

class ThreadPoolExecutor(_std.ThreadPoolExecutor):
    def __init__(
        self,
        max_workers: Optional[int] = None,
        thread_name_prefix: str = "",
        initializer: Optional[Callable[..., object]] = None,
        initargs: Tuple[Any, ...] = (),
    ) -> None: ...
    def submit(self, fn: Callable[..., _T], /, *args: Any, **kwargs: Any) -> Future[_T]: ...
    def map(
        self,
        fn: Callable[..., _T],
        *iterables: Iterable[Any],
        timeout: Optional[float] = None,
        chunksize: int = 1,
        buffersize: Optional[int] = None,
    ) -> Iterator[_T]: ...
    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None: ...

class ProcessPoolExecutor(_std.ProcessPoolExecutor):
    def __init__(
        self,
        max_workers: Optional[int] = None,
        mp_context: Optional[Any] = None,
        initializer: Optional[Callable[..., object]] = None,
        initargs: Tuple[Any, ...] = (),
        *,
        max_tasks_per_child: Optional[int] = None,
    ) -> None: ...
    def submit(self, fn: Callable[..., _T], /, *args: Any, **kwargs: Any) -> Future[_T]: ...
    def map(
        self,
        fn: Callable[..., _T],
        *iterables: Iterable[Any],
        timeout: Optional[float] = None,
        chunksize: int = 1,
        buffersize: Optional[int] = None,
    ) -> Iterator[_T]: ...
    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None: ...
    def terminate_workers(self) -> None: ...
    def kill_workers(self) -> None: ...

def wait(
    fs: Iterable[_std.Future[_T]], timeout: Optional[float] = None, return_when: str = "ALL_COMPLETED"
) -> DoneAndNotDoneFutures[_T]: ...
def as_completed(fs: Iterable[_std.Future[_T]], timeout: Optional[float] = None) -> Iterator[_std.Future[_T]]: ...
