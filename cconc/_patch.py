"""Patch mode: the stdlib modules' classes become cconc's for the whole process.

``cconc.patch()`` replaces *attributes* of the stdlib modules (``threading.Lock``,
``queue.Queue``, ``selectors.DefaultSelector``, ``concurrent.futures.ThreadPoolExecutor``,
...) by cconc's native objects. The module objects stay the stdlib's (they are
referenced from everywhere, ``threading`` since interpreter start), so every
``threading.Lock()`` evaluated after the patch makes a cconc lock, whoever
imported ``threading`` and whenever. What cannot be reached: names bound
before the patch (``from threading import Lock`` in a module imported earlier)
and objects created before it; ``patch()`` warns about the first kind
(:class:`PatchWarning`). See docs/patch.md.

Which names: a mirror's own public names that the stdlib module also has
(the names ``cconc._mirror`` records as the mirror's), minus the ones listed in
``TARGETS`` as kept (``threading.Thread``: the stdlib class stays, so that
``isinstance(threading.main_thread(), threading.Thread)`` holds, and its
``start`` becomes cconc's; ``concurrent.futures.Future``: asyncio and
``ProcessPoolExecutor`` need the stdlib class, of which cconc's futures are
instances anyway). A mirror may list its names itself in ``__cconc_patch__``.
The list of modules is data: a mirror that cannot be imported
(``cconc.multiprocessing`` before it exists) is skipped.
"""
import importlib
import os
import sys
import warnings

from cconc import _mirror

__all__ = ["patch", "unpatch", "patched", "PatchWarning", "TARGETS"]


class PatchWarning(RuntimeWarning):
    """Something was imported before cconc.patch() and keeps the stdlib's objects."""


# key -> (stdlib module, cconc mirror, stdlib names kept as they are)
TARGETS = {
    "threading": ("threading", "cconc.threading", frozenset({"Thread", "Timer"})),
    "queue": ("queue", "cconc.queue", frozenset()),
    "selectors": ("selectors", "cconc.selectors", frozenset()),
    "futures": ("concurrent.futures", "cconc.futures", frozenset({"Future"})),
    "multiprocessing": ("multiprocessing", "cconc.multiprocessing", frozenset()),
}

# key -> {name: original value} for every patched module (a tuple name: a
# stdlib module's early-bound alias, or a method of a stdlib class)
_saved = {}
# key -> {name: cconc's value}, for modules imported afresh while patched
_values = {}
_ABSENT = object()


def _wanted(modules):
    unknown = set(modules) - set(TARGETS)
    if unknown:
        raise TypeError(f"unknown module key(s) {sorted(unknown)}; known: {list(TARGETS)}")
    return {key: bool(modules.get(key, True)) for key in TARGETS}


def _names_to_patch(key, std, mirror):
    explicit = getattr(mirror, "__cconc_patch__", None)
    if explicit is not None:
        return list(explicit)
    kept = TARGETS[key][2]
    route = _mirror._routes.get(mirror.__name__)
    own = route.own if route is not None else set(vars(mirror))
    names = []
    for name in sorted(own):
        if name.startswith("_") or name in kept or name not in vars(mirror):
            continue
        value = vars(mirror)[name]
        if isinstance(value, type(sys)) or not hasattr(std, name):
            continue
        if getattr(std, name) is not value:
            names.append(name)
    return names


def _exception_classes(mirror):
    """The stdlib exception classes a mirror's objects raise (queue.Empty, ...):
    a copy of the module imported afresh must name these, not new ones."""
    route = _mirror._routes.get(mirror.__name__)
    found = {}
    for name in route.copied if route is not None else ():
        value = vars(mirror).get(name)
        if isinstance(value, type) and issubclass(value, BaseException):
            found[name] = value
    return found


def _thread_start_patch(std, mirror):
    """threading.Thread keeps its class; its start() becomes cconc's (<= 3.12)."""
    if not getattr(mirror, "_FAST_START", False):
        return None
    return ("start", std.Thread.__dict__["start"], mirror.Thread.__dict__["start"])


def _import_mirror(key):
    std_name, mirror_name, _ = TARGETS[key]
    try:
        mirror = importlib.import_module(mirror_name)
    except ImportError as exc:
        if exc.name == mirror_name:  # not part of this cconc (yet)
            return None, None
        raise
    return importlib.import_module(std_name), mirror


def patched():
    """The keys of the modules patched now."""
    return sorted(_saved)


def patch(*, warn=True, **modules):
    """Make the stdlib's threading, queue, selectors, concurrent.futures (and
    multiprocessing, where cconc has it) hand out cconc's objects.

    ``patch(selectors=False)`` leaves a module alone (keys: ``TARGETS``:
    threading, queue, selectors, futures, multiprocessing). Patching a patched
    module does nothing. Returns the keys patched by this call. ``warn``:
    issue a PatchWarning for names other modules bound before the patch.
    """
    wanted = _wanted(modules)
    loaded = {}
    # Every mirror is imported (and so has captured the stdlib's originals)
    # before any stdlib attribute changes.
    for key, on in wanted.items():
        if on and key not in _saved:
            std, mirror = _import_mirror(key)
            if mirror is not None:
                loaded[key] = (std, mirror)
    done = []
    replaced = {}  # id(original) -> (key, "module.name"), for the early-import check
    patched_values = {}
    for key, (std, mirror) in loaded.items():
        saved = {}
        for name in _names_to_patch(key, std, mirror):
            original = std.__dict__.get(name, _ABSENT)
            if original is _ABSENT:  # lazily created (concurrent.futures.ThreadPoolExecutor)
                original = getattr(std, name)
            saved[name] = original
            where = replaced[id(original)] = (key, f"{std.__name__}.{name}")
            patched_values[where] = getattr(mirror, name)
            setattr(std, name, patched_values[where])
        if key == "threading":
            start = _thread_start_patch(std, mirror)
            if start is not None:
                saved[(".Thread", "start")] = start[1]
                std.Thread.start = start[2]
        _saved[key] = saved
        _values[key] = values = _exception_classes(mirror)
        values.update((name, getattr(std, name)) for name in saved if isinstance(name, str))
        done.append(key)
    if done and _FreshImportPatcher not in sys.meta_path:
        sys.meta_path.insert(0, _FreshImportPatcher)
    stale = _rebind_early_imports(replaced, loaded, patched_values) if replaced else []
    if warn and stale:
        warnings.warn(
            "cconc.patch() came after these names were imported; they keep the stdlib's objects: "
            + ", ".join(sorted(stale)),
            PatchWarning,
            stacklevel=2,
        )
    return done


def unpatch(**modules):
    """Put the stdlib's own objects back (for the modules given, all by default).

    Names bound to cconc's objects while patched (``from threading import Lock``
    after ``patch()``) and objects created meanwhile stay cconc's."""
    wanted = _wanted(modules)
    for key, on in wanted.items():
        if not on or key not in _saved:
            continue
        std = sys.modules[TARGETS[key][0]]
        _values.pop(key, None)
        for name, original in _saved.pop(key).items():
            if isinstance(name, str):
                setattr(std, name, original)
            elif name[0] in sys.modules:  # a name bound early in a stdlib module
                vars(sys.modules[name[0]])[name[1]] = original
            else:  # a method of a stdlib class
                setattr(getattr(std, name[0][1:]), name[1], original)
    if not _saved and _FreshImportPatcher in sys.meta_path:
        sys.meta_path.remove(_FreshImportPatcher)


class _FreshImportPatcher:
    """A patched stdlib module imported again as a new module object
    (``importlib.reload``, ``test.support.import_helper.import_fresh_module``,
    as CPython's test_queue does) comes out patched as well."""

    @classmethod
    def find_spec(cls, name, path=None, target=None):
        key = _KEY_OF.get(name)
        if key is None or key not in _values:
            return None
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            if finder is cls or find is None:
                continue
            spec = find(name, path, target)
            if spec is not None:
                break
        else:
            return None
        if spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        spec.loader = _PatchingLoader(spec.loader, key)
        return spec


class _PatchingLoader:
    def __init__(self, loader, key):
        self.loader = loader
        self.key = key

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        # the module sees its real loader, as without the patch
        module.__loader__ = module.__spec__.loader = self.loader
        self.loader.exec_module(module)
        for name, value in _values.get(self.key, {}).items():
            setattr(module, name, value)

    def __getattr__(self, attr):
        return getattr(self.loader, attr)


_KEY_OF = {std_name: key for key, (std_name, _, _) in TARGETS.items()}


def _stdlib_dirs():
    import sysconfig

    paths = sysconfig.get_paths()
    return tuple({os.path.join(paths[k], "") for k in ("stdlib", "platstdlib") if k in paths})


def _rebind_early_imports(replaced, loaded, patched_values):
    """Names that modules bound before the patch (``from threading import Lock``).

    In the stdlib's own modules (``subprocess._PopenSelector``,
    ``tempfile._allocate_lock``, ``multiprocessing.dummy.Lock``) they are
    rebound to cconc's objects and put back by unpatch(); anywhere else they
    are left alone and reported (returned, for the PatchWarning)."""
    skip = {std.__name__ for std, _ in loaded.values()}
    stdlib = _stdlib_dirs()
    site_dirs = tuple(p for p in sys.path if "-packages" in p)
    stale = []
    for modname, module in list(sys.modules.items()):
        if modname in skip or modname == "cconc" or modname.startswith(("cconc.", "concurrent.futures.")):
            continue
        ns = getattr(module, "__dict__", None)
        if not isinstance(ns, dict):
            continue
        path = getattr(module, "__file__", None) or ""
        in_stdlib = path.startswith(stdlib) and not path.startswith(site_dirs)
        for name, value in list(ns.items()):
            where = replaced.get(id(value))
            # the module that defines the object (_thread.allocate_lock,
            # _queue.SimpleQueue) is its home, not an early importer
            if where is None or name.startswith("__") or getattr(value, "__module__", None) == modname:
                continue
            key, stdname = where
            if in_stdlib:
                _saved[key][(modname, name)] = value
                ns[name] = patched_values[where]
            else:
                stale.append(f"{modname}.{name} ({stdname})")
    return stale


ENV = "CCONC_PATCH"


def parse_spec(spec):
    """CCONC_PATCH's value ("1", "all" or "threading,queue") -> patch() keywords."""
    spec = spec.strip()
    if spec.lower() in ("1", "all", "yes", "true"):
        return {}
    keys = {part.strip() for part in spec.split(",") if part.strip()}
    unknown = keys - set(TARGETS)
    if unknown:
        raise ValueError(f"{ENV}: unknown module(s) {sorted(unknown)}; known: {sorted(TARGETS)}")
    return {key: key in keys for key in TARGETS}


def patch_from_environment():
    """Patch as CCONC_PATCH says (the start-up hook of patched child processes)."""
    import os

    spec = os.environ.get(ENV)
    if spec and spec.strip() not in ("0", ""):
        return patch(**parse_spec(spec))
    return []
