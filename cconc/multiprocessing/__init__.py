"""Drop-in mirror of the stdlib's :mod:`multiprocessing`.

``Queue``, ``JoinableQueue`` and ``SimpleQueue`` (from the module functions
and from every context: ``get_context("fork" | "spawn" | "forkserver")``) are
cconc's native process-shared queues (cconc.multiprocessing.queues); everything
else is the stdlib's own object, so the module is complete. The start method
is the stdlib's setting. Submodules that cconc does not replace
(``.managers``, ``.shared_memory``...) are the
stdlib's modules themselves.
"""
import importlib as _importlib
import importlib.abc as _abc
import importlib.util as _util
import multiprocessing as _std
import sys as _sys

from multiprocessing import *  # noqa: F401,F403  (the whole stdlib namespace first)
from multiprocessing import SUBDEBUG, SUBWARNING, __all__  # noqa: F401

from cconc import _mirror

from . import context
# imported here: otherwise `from cconc.multiprocessing import queues` would
# find the stdlib's submodule through __getattr__ once the stdlib imported it
from . import queues  # noqa: F401
from . import pool  # noqa: F401

# The names the stdlib binds to its default context's methods, bound to ours.
globals().update((_name, getattr(context._default_context, _name)) for _name in __all__)

# What patch mode (cconc.patch) puts on the stdlib module: the queue factories
# and Pool. The stdlib's contexts stay the stdlib's, since its own Pool and
# ProcessPoolExecutor build their pipes from ctx.SimpleQueue()/ctx.Queue() and
# read their private _reader/_writer.
__cconc_patch__ = ("Queue", "JoinableQueue", "SimpleQueue", "Pool")


class _StdlibSubmodules(_abc.MetaPathFinder, _abc.Loader):
    """``import cconc.multiprocessing.X`` gives the stdlib's multiprocessing.X
    (the same module object) for every X that cconc does not provide."""

    prefix = __name__ + "."
    ours = ("context", "queues", "pool")

    def find_spec(self, fullname, path=None, target=None):
        if not fullname.startswith(self.prefix):
            return None
        rest = fullname[len(self.prefix):]
        if rest.split(".")[0] in self.ours:
            return None
        if _util.find_spec("multiprocessing." + rest) is None:
            return None
        return _util.spec_from_loader(fullname, self)

    def create_module(self, spec):
        return _importlib.import_module("multiprocessing." + spec.name[len(self.prefix):])

    def exec_module(self, module):
        pass


if not any(isinstance(f, _StdlibSubmodules) for f in _sys.meta_path):
    _sys.meta_path.insert(0, _StdlibSubmodules())

_mirror.install(__name__, _std)  # names taken from the stdlib are read and set on multiprocessing
