"""Shared test helpers."""
import os
import random
import signal
import threading
import time

import pytest

#: generous slack for timing checks: the CI machine has 2 busy cores
SLACK = 2.0


def interrupt_main_after(delay):
    """Send SIGINT to this process after `delay` seconds (a Ctrl-C at the keyboard).
    Returns the timer, so the caller can cancel it if the test ends earlier."""
    timer = threading.Timer(delay, os.kill, (os.getpid(), signal.SIGINT))
    timer.daemon = True
    timer.start()
    return timer


def assert_interrupted(blocking_call, delay=0.2):
    """`blocking_call` blocks forever unless Ctrl-C interrupts it promptly."""
    timer = interrupt_main_after(delay)
    start = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt):
            blocking_call()
    finally:
        timer.cancel()
    assert time.monotonic() - start < delay + SLACK


def run_with_random_ctrl_c(calls, max_delay):
    """Run each of `calls` while a SIGINT (a Ctrl-C at the keyboard) arrives
    at a random moment within `max_delay` seconds: mostly while the call
    runs, sometimes as it returns. Returns how many raised KeyboardInterrupt."""
    interrupted = 0
    for call in calls:
        timer = None
        try:
            try:
                # (the SIGINT may come before start() returns: on a slow
                # machine starting a thread can take longer than the delay)
                timer = interrupt_main_after(random.uniform(0, max_delay))
                call()
            finally:
                if timer is not None:
                    timer.cancel()
                    timer.join()  # a SIGINT it sent is handled by now, in this try
        except KeyboardInterrupt:
            interrupted += 1
    return interrupted


def run_in_fork(child):
    """Run `child()` in a forked child process; it passes by returning normally.
    Returns nothing; fails the test with the child's exit status otherwise."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through its exit code
        code = 1
        try:
            child()
            code = 0
        except BaseException:
            import traceback

            traceback.print_exc()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, f"child failed: status {status}"


def start_thread(target, *args, daemon=True):
    t = threading.Thread(target=target, args=args, daemon=daemon)
    t.start()
    return t


def start_threads(threading_mod, target, count, *args):
    """Start `count` threads of `threading_mod.Thread` (the module under test,
    or the stdlib's), each running target(*args); return them."""
    threads = [threading_mod.Thread(target=target, args=args) for _ in range(count)]
    for t in threads:
        t.start()
    return threads


def join_all(threads, timeout=30):
    """Join every thread, failing the test if one is still alive after `timeout` seconds."""
    for t in threads:
        t.join(timeout)
        assert not t.is_alive()


def wait_until(predicate, timeout=10.0):
    """Poll until predicate() is true; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition never became true"
        time.sleep(0.001)


def assert_no_memory_growth(operation, repeat=20_000, limit=64 * 1024):
    """Run `operation` many times and check that Python-allocated memory does
    not grow: an unbalanced reference count (on a result, an argument, an
    exception) keeps an object alive per call and shows here. Non-object
    leaks are LeakSanitizer's part (the ASan run in .ci/run)."""
    import gc
    import tracemalloc

    for _ in range(repeat // 10):  # warm caches, free lists, interned strings
        operation()
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(repeat):
            operation()
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < limit, f"memory grew by {grown} bytes over {repeat} calls"


def wait_for_file_unless_first(i, path, deadline):
    """A pool task: i, returned at once for task 0 and, for the others, once
    the file at `path` exists (the test makes it when it has the first
    result), or a complaint at `deadline` (time.time())."""
    while i and not os.path.exists(path):
        if time.time() > deadline:
            return "the first result never came"
        time.sleep(0.005)
    return i


def have_module(name):
    """Whether `name` imports (CPython's own `test` package is optional in an install)."""
    try:
        __import__(name)
    except ImportError:
        return False
    return True
