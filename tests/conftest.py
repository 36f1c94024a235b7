"""Differential testing: every test that takes one of the `*_mod` fixtures runs
twice, once on the stdlib module and once on its cconc mirror; both must pass.

CCONC_TEST_SIDES=cconc runs the cconc side only (CI's fast pass on the Pythons other
than the main one, whose stdlib sides the main interpreter's run stands for)."""
import importlib
import os

import pytest

from cconc.bench import MIRRORS as _MIRRORS  # attribute -> (stdlib module, cconc module)


_SIDES = [side for side in ("stdlib", "cconc")
          if side in os.environ.get("CCONC_TEST_SIDES", "stdlib,cconc").split(",")]


def _module_fixture(kind):
    stdlib_name, cconc_name = _MIRRORS[kind]

    @pytest.fixture(params=_SIDES, name=f"{kind}_mod")
    def fixture(request):
        return importlib.import_module(stdlib_name if request.param == "stdlib" else cconc_name)

    return fixture


threading_mod = _module_fixture("threading")
queue_mod = _module_fixture("queue")
futures_mod = _module_fixture("futures")
selectors_mod = _module_fixture("selectors")
multiprocessing_mod = _module_fixture("multiprocessing")


def _under_address_sanitizer():
    try:
        with open("/proc/self/maps") as maps:
            return "libasan" in maps.read()
    except OSError:
        return False


if _under_address_sanitizer() and hasattr(os, "register_at_fork"):
    import threading
    import time

    from cconc._cconc import _drain_thread_cache

    def _wait_for_no_thread_starting_or_ending():
        """GCC 12's AddressSanitizer takes no allocator lock around fork()
        (LLVM 18 added that): a child forked while another thread is ending,
        and so handing its allocator cache back under a lock, waits on that
        lock forever at its first malloc (seen: pool workers stuck in their
        first task), or starting (its ASan set-up allocates before Python
        runs it). CPython's own suite skips its fork tests under ASan for
        this. Here the fork waits, briefly, until no thread is starting and
        every OS thread of this process is one Python knows alive (so none is
        ending)."""
        _drain_thread_cache()  # cconc's own before-fork hook, which runs after this one: its idle threads end now
        give_up = time.monotonic() + 1.0
        while ((getattr(threading, "_limbo", None) or len(os.listdir("/proc/self/task")) > threading.active_count())
               and time.monotonic() < give_up):
            time.sleep(0.001)

    os.register_at_fork(before=_wait_for_no_thread_starting_or_ending)
