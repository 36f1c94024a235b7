"""cconc: the stdlib's concurrency primitives, native and GIL-free while they wait.

Import the mirrors in place of the stdlib modules::

    import cconc.threading as threading
    import cconc.queue as queue
"""
__version__ = "0.1.0"

from cconc import _buildinfo

# Run from a checkout (python -m ... at its root), the package is the checkout's, with the
# extension the last build left there: refuse one that is missing or stale, loudly.
_buildinfo.check_checkout_build(__path__[0])
del _buildinfo

# Patch mode (docs/patch.md): the stdlib modules hand out cconc's objects.
from cconc._patch import PatchWarning, patch, patched, unpatch  # noqa: E402,F401
