"""What differs between the Python versions cconc claims (3.9+): type creation and the
version shims of src/core/compat.h. CI runs this file on every Python it has."""
import logging
import os
import subprocess
import sys

import pytest


def test_every_mirror_imports_in_a_fresh_interpreter():
    # 3.9's PyType_FromModuleAndSpec takes its bases only as a tuple: a subclass type
    # made from a bare base (LifoQueue from Queue) failed the whole import there.
    code = (
        "import cconc.threading, cconc.queue, cconc.futures, cconc.selectors\n"
        "assert issubclass(cconc.queue.LifoQueue, cconc.queue.Queue)\n"
        "assert issubclass(cconc.queue.PriorityQueue, cconc.queue.Queue)\n"
        "assert issubclass(cconc.threading.BoundedSemaphore, cconc.threading.Semaphore)\n"
        "print('imported')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "imported"


def _internal_types():
    import cconc.futures
    import cconc.queue
    import cconc.selectors
    from cconc import _cconc

    q = cconc.queue.Queue()
    sel = cconc.selectors.DefaultSelector()
    try:
        found = [type(q.queue), type(iter(q.queue)), type(sel.get_map())]
    finally:
        sel.close()
    found += [_cconc._WorkQueue, _cconc._FutureWaiter, _cconc._AsCompleted]
    return found


@pytest.mark.parametrize("tp", _internal_types(), ids=lambda tp: tp.__name__)
def test_internal_types_cannot_be_instantiated(tp):
    # Made only by cconc itself, filled in C; before 3.10 (no DISALLOW_INSTANTIATION flag)
    # they could be created empty from Python, and using one crashed the interpreter.
    with pytest.raises(TypeError):
        tp()
    with pytest.raises(TypeError):
        object.__new__(tp)
    with pytest.raises(TypeError):
        tp.__new__(tp)


def test_error_in_callback_of_a_future_subclass_is_logged_with_its_traceback(futures_mod, caplog):
    # Finding the module state of a Python subclass (before 3.11, a walk of the MRO) must
    # not drop the callback's exception that is about to be logged.
    class MyFuture(futures_mod.Future):
        pass

    f = MyFuture()

    def bad(fut):
        raise ZeroDivisionError("in callback")

    f.add_done_callback(bad)
    with caplog.at_level(logging.ERROR, logger="concurrent.futures"):
        f.set_result(1)
    assert len(caplog.records) == 1
    assert caplog.records[0].exc_info[0] is ZeroDivisionError
