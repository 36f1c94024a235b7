"""Start-up hook of processes started under ``python -m cconc run``.

``python -m cconc run`` puts this folder first on PYTHONPATH and sets
CCONC_PATCH, so that every Python child process (subprocess, multiprocessing's
spawn and forkserver) patches cconc in while ``site`` starts up, before its
main module is imported. Nothing else is ever on this folder: it is removed
from sys.path again here, and the ``sitecustomize`` it shadows (a
distribution's, a virtual environment's) still runs.
"""
import os as _os
import sys as _sys


_here = _os.path.dirname(_os.path.abspath(__file__))


def _chain():
    """Run the sitecustomize this one shadows."""
    me = _sys.modules.pop("sitecustomize")
    try:
        import sitecustomize  # noqa: F401
    except ModuleNotFoundError as exc:
        if exc.name != "sitecustomize":
            raise
        _sys.modules["sitecustomize"] = me  # the import in progress (site's) expects a module


def _boot():
    here = _here
    # cconc itself, wherever `python -m cconc run` found it (an in-place
    # build need not be on the child's path)
    package_parent = _os.path.dirname(_os.path.dirname(here))
    added = package_parent not in _sys.path
    if added:
        _sys.path.append(package_parent)
    try:
        from cconc._patch import patch_from_environment

        patch_from_environment()
    except ImportError as exc:
        # a child running another Python, for which cconc is not built: it
        # runs unpatched, as it would without cconc
        if exc.name not in ("cconc", "cconc._cconc"):
            raise
    finally:
        if added:
            _sys.path.remove(package_parent)


# sys.path as plain python has it
_sys.path[:] = [p for p in _sys.path if _os.path.abspath(p or ".") != _here]
if _os.environ.get("CCONC_PATCH"):
    _boot()  # first, so that not even another sitecustomize imports before the patch
_chain()
