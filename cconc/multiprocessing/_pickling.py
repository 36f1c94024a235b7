"""Pickling exactly as multiprocessing's ``ForkingPickler`` pickles, at half its cost.

``ForkingPickler.dumps`` builds a pickler whose ``__init__`` copies copyreg's
whole dispatch table and adds multiprocessing's reducers (sockets,
connections, shared memory, ...) on every call, which costs more than
pickling a small task or result. ``dumps`` here keeps one merged table and
builds it again only when either source table changed (a reducer registered
with ``copyreg.pickle`` or ``ForkingPickler.register``, also one replaced: the
tables are compared, not counted).
"""
import copyreg
import io
import pickle

from multiprocessing.reduction import ForkingPickler

__all__ = ["dumps", "loads"]

loads = pickle.loads


class _Pickler(pickle.Pickler):
    dispatch_table = {}


_copyreg_seen = None  # the source tables _Pickler.dispatch_table was built from
_extra_seen = None


def dumps(obj, protocol=None):
    """``ForkingPickler.dumps(obj, protocol)``, as bytes."""
    global _copyreg_seen, _extra_seen
    extra = ForkingPickler._extra_reducers
    if copyreg.dispatch_table != _copyreg_seen or extra != _extra_seen:
        copyreg_now, extra_now = copyreg.dispatch_table.copy(), extra.copy()
        table = copyreg_now.copy()
        table.update(extra_now)
        _Pickler.dispatch_table = table
        _copyreg_seen, _extra_seen = copyreg_now, extra_now
    buf = io.BytesIO()
    _Pickler(buf, protocol).dump(obj)
    return buf.getvalue()
