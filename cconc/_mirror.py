"""One namespace shared by a mirror module and the stdlib module it mirrors.

A mirror (cconc.threading, cconc.queue, ...) holds two kinds of names: its own
(the native ``Lock``, ``Queue``, the ``Thread`` subclass, its private helpers)
and the ones it takes from the stdlib (``excepthook``, ``get_ident``, ``Empty``,
``_shutdown``, ``_active``, ...). The stdlib's code reads the second kind from
its own module, so ``cconc.threading.excepthook = hook`` must land there, and
``cconc.threading.excepthook`` must show what ``threading.excepthook`` is now,
whoever changed it. A mirror therefore ends with one line::

    _mirror.install(__name__, _std)          # _std: the stdlib module

after which:

* a name the mirror defines itself (``Lock``, ``_FAST_START``, dunders) is read,
  assigned and deleted on the mirror, as on any module;
* every other name is the stdlib module's: assigned and deleted there, and read
  from there. The public names the mirror imported from it (``from threading
  import *``) stay in the mirror's ``__dict__`` as copies, for speed, for
  ``from mirror import *`` and for the mirror's own code; the copies follow
  every assignment and deletion made through either module (the stdlib module's
  class gets the same ``__setattr__``/``__delattr__`` hook). Other names
  (``threading._shutdown``) are not copied: the module ``__getattr__`` reads
  them from the stdlib module on each access;
* a name new to both modules is created on the mirror, as plain assignment
  would; a stdlib name stays the stdlib's even while deleted (so ``mock.patch``'s
  delete-then-set restore puts it back on the stdlib module).

Not followed: the stdlib's own code rebinding a *public* global with a
``global`` statement (none of the mirrored modules does so after import) and
writes straight into ``vars(threading)``. ``install(name, std, *more)``: *more*
are further stdlib modules that answer names *std* lacks (cconc.futures:
``concurrent.futures._base``). ``dir()`` lists both kinds; ``importlib.reload``
of a mirror runs ``install`` again.
"""
import sys
import types

__all__ = ["install", "MirrorModule"]

_missing = object()


def _is_dunder(name):
    return name[:2] == "__" and name[-2:] == "__"


class _Route:
    """Where a mirror's names live."""

    __slots__ = ("mirror", "sources", "own", "copied", "homes")

    def __init__(self, mirror, sources, own, copied):
        self.mirror = mirror
        self.sources = sources  # the stdlib modules, first one first
        self.own = own  # names that belong to the mirror, present or deleted
        self.copied = copied  # stdlib names the mirror keeps a copy of
        # stdlib name -> the stdlib module it belongs to (present or deleted)
        self.homes = {}
        for src in reversed(sources):
            self.homes.update((n, src) for n in src.__dict__ if n not in own and not _is_dunder(n))

    def home(self, name):
        """The stdlib module a name belongs to; None for the mirror's names."""
        if name in self.own or _is_dunder(name):
            return None
        src = self.homes.get(name)
        if src is None:
            for candidate in self.sources:  # set on a stdlib module since install
                if name in candidate.__dict__:
                    src = self.homes[name] = candidate
                    break
        return src


_routes = {}  # mirror module name -> _Route
_copies = {}  # stdlib module name -> routes of the mirrors that copy its names


class MirrorModule(types.ModuleType):
    """The class of an installed mirror module (see the module docstring)."""

    def __setattr__(self, name, value):
        route = _routes.get(self.__name__)
        src = route.home(name) if route is not None else None
        if isinstance(value, types.ModuleType) and value.__name__ == f"{self.__name__}.{name}":
            src = None  # the import system binding a mirror package's own submodule
        if src is None:
            types.ModuleType.__setattr__(self, name, value)
            if route is not None and not _is_dunder(name):
                route.own.add(name)
        else:
            setattr(src, name, value)  # the stdlib module's hook updates the copy

    def __delattr__(self, name):
        route = _routes.get(self.__name__)
        src = route.home(name) if route is not None else None
        if src is None:
            types.ModuleType.__delattr__(self, name)
        else:
            delattr(src, name)

    def __dir__(self):
        ns = self.__dict__
        if "__dir__" in ns:  # the mirror's own __dir__ (cconc.futures copies concurrent.futures')
            return ns["__dir__"]()
        names = set(ns)
        route = _routes.get(self.__name__)
        if route is not None:
            for src in route.sources:
                names.update(n for n in dir(src) if n not in route.own and not _is_dunder(n))
        return sorted(names)


class _MirroredStdlibModule(types.ModuleType):
    """The class given to a stdlib module that a mirror copies names from:
    plain module behaviour, plus keeping the mirrors' copies current."""

    def __setattr__(self, name, value):
        types.ModuleType.__setattr__(self, name, value)
        for route in _copies.get(self.__name__, ()):
            if name in route.copied:
                route.mirror.__dict__[name] = value

    def __delattr__(self, name):
        types.ModuleType.__delattr__(self, name)
        for route in _copies.get(self.__name__, ()):
            if name in route.copied:
                route.mirror.__dict__.pop(name, None)


def install(name, std, *more):
    """Make the module `name` (a mirror of `std`) share `std`'s names.

    Called as the mirror's last line: ``_mirror.install(__name__, _std)``.
    """
    mod = sys.modules[name]
    ns = mod.__dict__
    sources = (std,) + more
    # Public names bound to the very object the stdlib module has came in by
    # ``from std import ...``: they are the stdlib's, the mirror keeps a copy.
    # Private names and modules are the mirror's helpers (``_std``, ``_os``,
    # ``sys``), even when the stdlib imports the same object under that name.
    copied = {
        key
        for key, value in ns.items()
        if not key.startswith("_")
        and not isinstance(value, types.ModuleType)
        and std.__dict__.get(key, _missing) is value
    }
    if type(std) is types.ModuleType:
        std.__class__ = _MirroredStdlibModule
    if type(std) is not _MirroredStdlibModule:  # someone else's module class: no hook, no copies
        for key in copied:
            del ns[key]
        copied = set()
    own = {n for n in ns if not _is_dunder(n) and n not in copied}
    if hasattr(mod, "__path__"):
        # A package's submodules are its own names, imported yet or not: else
        # `from cconc.multiprocessing import queues` would find the stdlib's
        # multiprocessing.queues through the forwarding and never import ours.
        import pkgutil

        own.update(info.name for info in pkgutil.iter_modules(mod.__path__))
    route = _Route(mod, sources, own, copied)
    old = _routes.get(name)
    peers = _copies.setdefault(std.__name__, [])
    if old in peers:  # importlib.reload
        peers.remove(old)
    peers.append(route)
    _routes[name] = route
    std_getattr = std.__dict__.get("__getattr__")  # concurrent.futures' lazy names

    def __getattr__(attr, _home=route.home, _missing=_missing):
        src = _home(attr)
        if src is not None:
            value = getattr(src, attr, _missing)
            if value is not _missing:
                return value
        elif std_getattr is not None and attr not in route.own and not _is_dunder(attr):
            value = getattr(std, attr, _missing)
            if value is not _missing:
                return value
        raise AttributeError(f"module {name!r} has no attribute {attr!r}")

    ns["__getattr__"] = __getattr__
    if type(mod) is not MirrorModule:
        mod.__class__ = MirrorModule
