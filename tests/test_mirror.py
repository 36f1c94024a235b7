"""Assigning to a mirror module reaches the stdlib module (cconc/_mirror.py).

The stdlib's code reads its module globals (threading's Thread reads
``excepthook``, ``get_ident``, ``_trace_hook``; interpreter exit calls
``threading._shutdown``), so an assignment through the mirror must land on the
stdlib module, and the mirror must show what the stdlib module holds now. Each
test runs the same body on the stdlib module and on the mirror."""
import builtins
import dis
import importlib
import pickle
import subprocess
import sys
import textwrap
import types
from unittest import mock

import pytest

import cconc.futures
import cconc.queue
import cconc.selectors
import cconc.threading
from cconc._mirror import _routes
from cconc.bench import MIRRORS as _BENCH_MIRRORS

# Every mirror that uses cconc/_mirror.py (cconc.bench.MIRRORS lists them; a new
# one, such as cconc.multiprocessing, is tested as soon as it is listed there).
MIRRORS = [
    (stdlib_name, importlib.import_module(cconc_name))
    for stdlib_name, cconc_name in _BENCH_MIRRORS.values()
]

# A public name each mirror takes from the stdlib, and a private one (with
# the stdlib module that holds it: cconc.futures also forwards to _base).
FORWARDED = {
    "threading": (("threading", "excepthook"), ("threading", "_shutdown")),
    "queue": (("queue", "Empty"), ("queue", "_PySimpleQueue")),
    "concurrent.futures": (("concurrent.futures", "CancelledError"), ("concurrent.futures._base", "_AcquireFutures")),
    "selectors": (("selectors", "EVENT_READ"), ("selectors", "_fileobj_to_fd")),
    # multiprocessing has no private module variable: its `process` submodule
    # attribute is a name it does not copy either
    "multiprocessing": (("multiprocessing", "TimeoutError"), ("multiprocessing", "process")),
}
assert {std_name for std_name, _ in MIRRORS} <= set(FORWARDED), "a new mirror: add its names to FORWARDED"


def _run_thread(threading_mod, target):
    t = threading_mod.Thread(target=target)
    t.start()
    t.join()


def test_excepthook_assigned_through_the_module_is_called(threading_mod):
    seen = []
    original = threading_mod.excepthook
    threading_mod.excepthook = lambda args: seen.append(args.exc_type)
    try:
        _run_thread(threading_mod, lambda: 1 / 0)
        assert threading_mod.excepthook is not original
    finally:
        threading_mod.excepthook = original
    assert seen == [ZeroDivisionError]
    assert threading_mod.excepthook is original
    import threading

    assert threading.excepthook is original


def test_excepthook_mock_patch_round_trip(threading_mod):
    import threading

    seen = []
    original = threading.excepthook
    with mock.patch(f"{threading_mod.__name__}.excepthook", lambda args: seen.append(args.exc_type)):
        assert threading.excepthook is threading_mod.excepthook
        _run_thread(threading_mod, lambda: {}["missing"])
    assert seen == [KeyError]
    assert threading.excepthook is original and threading_mod.excepthook is original
    with mock.patch.object(threading_mod, "excepthook", lambda args: seen.append(args.exc_type)):
        _run_thread(threading_mod, lambda: [][1])
    assert seen == [KeyError, IndexError]
    assert threading.excepthook is original and threading_mod.excepthook is original


def test_get_ident_wrapper_is_seen_by_the_stdlib_code(threading_mod):
    import threading

    callers = []
    original = threading_mod.get_ident

    def wrapper():
        ident = original()
        callers.append(ident)
        return ident

    threading_mod.get_ident = wrapper
    try:
        assert threading.get_ident is wrapper
        # current_thread() and a new thread's bootstrap are the stdlib's code
        assert threading_mod.current_thread() is threading.main_thread()
        idents = []
        _run_thread(threading_mod, lambda: idents.append(original()))
    finally:
        threading_mod.get_ident = original
    assert threading.get_ident is original and threading_mod.get_ident is original
    assert threading.main_thread().ident in callers
    assert idents[0] in callers


def test_settrace_reaches_new_threads(threading_mod):
    calls = []

    def tracer(frame, event, arg):
        calls.append(frame.f_code.co_name)
        return None

    def traced_function():
        return 1

    threading_mod.settrace(tracer)
    try:
        assert threading_mod._trace_hook is tracer
        _run_thread(threading_mod, traced_function)
    finally:
        threading_mod.settrace(None)
    assert threading_mod._trace_hook is None
    assert "traced_function" in calls


def test_private_module_variable_patched_at_exit(threading_mod, tmp_path):
    # Interpreter exit calls threading._shutdown: the patched one must run.
    script = textwrap.dedent(
        f"""
        import {threading_mod.__name__} as mod
        original = mod._shutdown
        def patched():
            print("patched _shutdown", flush=True)
            original()
        mod._shutdown = patched
        t = mod.Thread(target=lambda: None)
        t.start()
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "patched _shutdown\n"


@pytest.mark.parametrize("std_name, mirror", MIRRORS, ids=[m for m, _ in MIRRORS])
@pytest.mark.parametrize("which", [0, 1], ids=["public", "private"])
def test_forwarded_names_are_one_binding(std_name, mirror, which):
    home, name = FORWARDED[std_name][which]
    std = importlib.import_module(home)
    original = getattr(std, name)
    assert getattr(mirror, name) is original
    assert name not in _routes[mirror.__name__].own
    sentinel = object()
    try:
        setattr(mirror, name, sentinel)  # through the mirror: the stdlib sees it
        assert getattr(std, name) is sentinel and getattr(mirror, name) is sentinel
        setattr(std, name, original)  # through the stdlib: the mirror sees it
        assert getattr(mirror, name) is original
        delattr(mirror, name)  # deletion too
        assert not hasattr(std, name) and not hasattr(mirror, name) and name not in mirror.__dict__
        with pytest.raises(AttributeError):
            delattr(mirror, name)
        setattr(mirror, name, original)  # and it stays the stdlib's while deleted
        assert getattr(std, name) is original and getattr(mirror, name) is original
    finally:
        setattr(std, name, original)
    assert getattr(std, name) is original and getattr(mirror, name) is original


@pytest.mark.parametrize("std_name, mirror", MIRRORS, ids=[m for m, _ in MIRRORS])
def test_mock_patch_of_a_forwarded_name_restores_it(std_name, mirror):
    for home, name in FORWARDED[std_name]:
        std = importlib.import_module(home)
        original = getattr(std, name)
        with mock.patch(f"{mirror.__name__}.{name}", "patched"):
            assert getattr(std, name) == "patched" == getattr(mirror, name)
        assert getattr(std, name) is original and getattr(mirror, name) is original


@pytest.mark.parametrize("name", ["Lock", "Condition", "Thread", "_FAST_START"])
def test_own_names_stay_the_mirrors(name):
    import threading

    std_value = getattr(threading, name, None)
    original = getattr(cconc.threading, name)
    with mock.patch(f"cconc.threading.{name}", "patched"):
        assert cconc.threading.__dict__[name] == "patched" == getattr(cconc.threading, name)
        assert getattr(threading, name, None) is std_value
    assert getattr(cconc.threading, name) is original
    assert getattr(threading, name, None) is std_value


def test_deleting_an_own_name_does_not_uncover_the_stdlibs():
    original = cconc.queue.Queue
    del cconc.queue.Queue
    try:
        assert not hasattr(cconc.queue, "Queue")
    finally:
        cconc.queue.Queue = original
    assert cconc.queue.Queue is original and cconc.queue.__dict__["Queue"] is original


def test_new_names_are_created_on_the_mirror():
    import queue

    cconc.queue.brand_new_name = 1
    try:
        assert cconc.queue.brand_new_name == 1 and not hasattr(queue, "brand_new_name")
    finally:
        del cconc.queue.brand_new_name
    assert not hasattr(cconc.queue, "brand_new_name")


def test_dunders_are_never_forwarded():
    # concurrent.futures is a package: its mirror must not look like one
    assert not hasattr(cconc.futures, "__path__")
    assert cconc.threading.__name__ == "cconc.threading"
    assert cconc.threading.__spec__.name == "cconc.threading"


@pytest.mark.parametrize("std_name, mirror", MIRRORS, ids=[m for m, _ in MIRRORS])
def test_import_star_gives_the_stdlibs_names(std_name, mirror):
    std_ns, mirror_ns = {}, {}
    exec(f"from {std_name} import *", std_ns)
    exec(f"from {mirror.__name__} import *", mirror_ns)
    missing = set(std_ns) - set(mirror_ns)
    assert missing == set()
    for name in std_ns:
        if name != "__builtins__" and name not in _routes[mirror.__name__].own:
            assert mirror_ns[name] is std_ns[name], name


@pytest.mark.parametrize("std_name, mirror", MIRRORS, ids=[m for m, _ in MIRRORS])
def test_dir_lists_the_stdlibs_names(std_name, mirror):
    std = importlib.import_module(std_name)
    listed = set(dir(mirror))
    assert {n for n in dir(std) if not n.startswith("_") and not isinstance(getattr(std, n), types.ModuleType)} <= listed
    if std_name == "threading":
        assert {"_shutdown", "_active", "excepthook", "Lock"} <= listed


def _picklable(mirror):
    for name in dir(mirror):
        value = getattr(mirror, name, None)
        if isinstance(value, (type, types.FunctionType)) and not name.startswith("_"):
            yield name, value


@pytest.mark.parametrize("std_name, mirror", MIRRORS, ids=[m for m, _ in MIRRORS])
def test_classes_and_functions_pickle_by_reference(std_name, mirror):
    for name, value in _picklable(mirror):
        try:
            data = pickle.dumps(value)
        except (pickle.PicklingError, TypeError):
            # the stdlib's own object must fail the same way
            std = importlib.import_module(std_name)
            if getattr(std, name, None) is value:
                continue
            raise
        assert pickle.loads(data) is value, name


def _global_names(code):
    for ins in dis.get_instructions(code):
        if ins.opname in ("LOAD_GLOBAL", "STORE_GLOBAL", "DELETE_GLOBAL"):
            yield ins.argval
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _global_names(const)


def _functions_of(mirror):
    for value in list(mirror.__dict__.values()):
        if isinstance(value, types.FunctionType) and value.__module__ == mirror.__name__:
            yield value
        elif isinstance(value, type) and value.__module__ == mirror.__name__:
            for attr in vars(value).values():
                attr = getattr(attr, "__func__", attr)
                if isinstance(attr, types.FunctionType):
                    yield attr
                elif isinstance(attr, property):
                    yield from (f for f in (attr.fget, attr.fset, attr.fdel) if f is not None)


@pytest.mark.parametrize("std_name, mirror", MIRRORS, ids=[m for m, _ in MIRRORS])
def test_mirror_code_uses_only_its_own_globals(std_name, mirror):
    # Forwarded names are not in the mirror's globals: the mirror's own code
    # must reach them as _std.name, or it would fail with NameError.
    bad = set()
    for func in _functions_of(mirror):
        if func.__globals__ is not mirror.__dict__:
            continue
        for name in _global_names(func.__code__):
            if name not in mirror.__dict__ and not hasattr(builtins, name):
                bad.add((func.__qualname__, name))
    assert bad == set()


def test_reload_keeps_the_forwarding(tmp_path):
    script = textwrap.dedent(
        """
        import importlib, threading, queue
        import cconc.threading, cconc.queue
        importlib.reload(cconc.threading)
        importlib.reload(cconc.queue)
        hook = lambda args: print("hook", args.exc_type.__name__)
        cconc.threading.excepthook = hook
        assert threading.excepthook is hook
        assert cconc.threading.excepthook is hook
        queue.Empty = "patched"
        assert cconc.queue.Empty == "patched"
        t = cconc.threading.Thread(target=lambda: 1 / 0)
        t.start(); t.join()
        assert type(cconc.threading.Lock()).__module__ == "cconc.threading"
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "hook ZeroDivisionError\n"


@pytest.mark.skipif(not hasattr(__import__("threading"), "_start_new_thread"), reason="3.13 starts threads by handle")
def test_thread_start_uses_the_modules_start_new_thread(threading_mod):
    # threading._start_new_thread replaced (CPython's test_limbo_cleanup does so):
    # start() raises its error and leaves nothing in the registry
    import threading

    def fail_new_thread(*args):
        raise threading.ThreadError()

    original = threading._start_new_thread
    threading_mod._start_new_thread = fail_new_thread
    try:
        t = threading_mod.Thread(target=lambda: None)
        with pytest.raises(threading.ThreadError):
            t.start()
        assert t not in threading._limbo and t not in threading._active.values()
    finally:
        threading_mod._start_new_thread = original
    assert threading._start_new_thread is original


def test_a_mirror_package_keeps_its_own_submodules():
    # `from mirror import submodule` imports the mirror's own even when the
    # stdlib's namesake was imported first, and binding it on the mirror
    # package never rebinds the stdlib package's attribute (a fresh process:
    # this one has imported both long ago)
    code = textwrap.dedent("""
        import multiprocessing.queues
        from cconc.multiprocessing import queues
        assert queues.__name__ == "cconc.multiprocessing.queues", queues
        assert multiprocessing.queues.__name__ == "multiprocessing.queues"
    """)
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
