"""Drop-in mirror of :mod:`multiprocessing.context`.

cconc's contexts are subclasses of the stdlib's: everything they hand out is
the stdlib's object (Process, Lock, Manager, Pipe, ...), except ``Queue``,
``JoinableQueue`` and ``SimpleQueue``, which are cconc's native queues, and
``Pool``, cconc's native pool (cconc.multiprocessing.pool). The start method is the
stdlib's own setting: ``set_start_method`` here and in ``multiprocessing`` are
one and the same.
"""
from multiprocessing import context as _std
from multiprocessing.context import *  # noqa: F401,F403
from multiprocessing.context import __all__  # noqa: F401


class _CconcContext:
    """What cconc's contexts change in the stdlib's BaseContext."""

    def Queue(self, maxsize=0):
        """Returns a queue object"""
        from .queues import Queue

        return Queue(maxsize, ctx=self.get_context())

    def JoinableQueue(self, maxsize=0):
        """Returns a queue object"""
        from .queues import JoinableQueue

        return JoinableQueue(maxsize, ctx=self.get_context())

    def SimpleQueue(self):
        """Returns a queue object"""
        from .queues import SimpleQueue

        return SimpleQueue(ctx=self.get_context())

    def Pool(self, processes=None, initializer=None, initargs=(), maxtasksperchild=None, *, _on_worker_lost=None):
        """Returns a process pool object"""
        from .pool import Pool

        return Pool(processes, initializer, initargs, maxtasksperchild, context=self.get_context(),
                    _on_worker_lost=_on_worker_lost)

    def get_context(self, method=None):
        if method is None:
            return self
        try:
            ctx = _concrete_contexts[method]
        except KeyError:
            raise ValueError("cannot find context for %r" % method) from None
        ctx._check_available()
        return ctx


_concrete_contexts = {}
for _name, _std_ctx in _std._concrete_contexts.items():
    _cls = type(_std_ctx)
    _cls = type(_cls.__name__, (_CconcContext, _cls), {"__module__": __name__, "__doc__": _cls.__doc__})
    globals()[_cls.__name__] = _cls
    _concrete_contexts[_name] = _cls()
del _name, _std_ctx, _cls


class DefaultContext(_CconcContext, _std.DefaultContext):
    """The default context: the stdlib's start-method setting, cconc's queues."""

    def __init__(self, std_default=_std._default_context):
        _std.DefaultContext.__init__(self, std_default._default_context)
        self._std_default = std_default

    def get_context(self, method=None):
        if method is None:
            return _concrete_contexts[self._std_default.get_context()._name]
        return _CconcContext.get_context(self, method)

    def set_start_method(self, method, force=False):
        self._std_default.set_start_method(method, force)

    def get_start_method(self, allow_none=False):
        return self._std_default.get_start_method(allow_none)


_default_context = DefaultContext()


def __getattr__(name):
    return getattr(_std, name)
