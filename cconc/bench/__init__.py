"""Benchmark cases shared by ``python -m cconc.bench`` and ``benchmarks/``.

A case is written once, as a generator taking an :class:`Impl` (the stdlib's
modules or cconc's) and yielding ``run(n)``, which performs n operations::

    @case("Lock acquire+release")
    def lock_acquire_release(m):
        lock = m.threading.Lock()
        def run(n):
            acquire, release = lock.acquire, lock.release
            for _ in repeat(None, n):
                acquire()
                release()
        yield run
        # code after the yield tears down (join threads, close sockets)

Both sides run the very same code, so the ratio measures the primitives.
"""
import contextlib
import importlib
from dataclasses import dataclass, field
from typing import Callable, List, Tuple

#: module mirrors: attribute of Impl -> (stdlib module, cconc module)
MIRRORS = {
    "threading": ("threading", "cconc.threading"),
    "queue": ("queue", "cconc.queue"),
    "futures": ("concurrent.futures", "cconc.futures"),
    "selectors": ("selectors", "cconc.selectors"),
    "multiprocessing": ("multiprocessing", "cconc.multiprocessing"),
}


class SkipCase(Exception):
    """Raised by a case's build when an implementation is not available (e.g. uvloop)."""


class Impl:
    """The modules one side of a comparison runs on: ``m.threading``, ``m.queue``...

    "stdlib" and "cconc" are the two sides; other names (e.g. "uvloop") are
    extra comparators, which see the stdlib modules and tell themselves apart
    by ``name``.
    """

    def __init__(self, name: str):
        self.name = name

    def __getattr__(self, attr):
        try:
            stdlib_name, cconc_name = MIRRORS[attr]
        except KeyError:
            raise AttributeError(attr) from None
        module = importlib.import_module(cconc_name if self.name == "cconc" else stdlib_name)
        setattr(self, attr, module)
        return module

    def __repr__(self):
        return f"Impl({self.name!r})"


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable  # Impl -> context manager yielding run(n)
    unit: str = "op"
    #: extra comparators measured beside stdlib and cconc, when available
    extra: Tuple[str, ...] = field(default=())


CASES: List[Case] = []


def case(name: str, unit: str = "op", extra: Tuple[str, ...] = ()):
    """Register a benchmark case (see the module docstring)."""

    def register(gen):
        CASES.append(Case(name, contextlib.contextmanager(gen), unit, tuple(extra)))
        return gen

    return register


def all_cases() -> List[Case]:
    from . import cases  # noqa: F401  (importing registers them)

    return list(CASES)
