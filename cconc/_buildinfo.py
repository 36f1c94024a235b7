"""Which C sources build cconc._cconc, and how a checkout tells that its extension is current.

Shared by setup.py (which loads this file by path, before any extension exists) and by
cconc/__init__.py. Imports nothing from cconc.

``python -m cconc.bench`` or ``python -m pytest`` run from a checkout's root import the
package from the checkout, not the installed copy, so the extension they load is the one
the build left in the checkout. setup.py stamps each build with the digest of the sources
it compiled (``_cconc._build_info``); :func:`check_checkout_build` refuses to import an
extension that is missing or was built from other sources than the checkout now holds,
instead of running stale native code silently.
"""
import hashlib
import os

SOURCE_DIR = "src"
STAMP_PREFIX = "cconc-build:"


def source_files(root):
    """The C files (.c, .h) under root/src, every folder, as sorted paths relative to root."""
    found = []
    for dirpath, dirnames, filenames in os.walk(os.path.join(root, SOURCE_DIR)):
        dirnames.sort()
        for name in filenames:
            if name.endswith((".c", ".h")):
                found.append(os.path.relpath(os.path.join(dirpath, name), root))
    return sorted(p.replace(os.sep, "/") for p in found)


def sources_digest(root):
    """Digest of the names and bytes of every C source under root/src."""
    h = hashlib.sha256()
    for rel in source_files(root):
        with open(os.path.join(root, rel), "rb") as f:
            data = f.read()
        h.update(b"%d:%s\0%d:" % (len(rel), rel.encode(), len(data)))
        h.update(data)
    return h.hexdigest()[:20]


def make_stamp(sources, config):
    """The string a build embeds: the sources' digest and the build configuration's."""
    return f"{STAMP_PREFIX}sources={sources}:config={config}"


def stamp_sources(stamp):
    """The sources digest a stamp records, or None for a missing or foreign stamp."""
    if not isinstance(stamp, str) or not stamp.startswith(STAMP_PREFIX):
        return None
    for part in stamp[len(STAMP_PREFIX):].split(":"):
        if part.startswith("sources="):
            return part[len("sources="):]
    return None


def checkout_root(package_dir):
    """The checkout the package sits in (setup.py and src/ beside it), or None when installed."""
    root = os.path.dirname(os.path.abspath(package_dir))
    if os.path.isfile(os.path.join(root, "setup.py")) and os.path.isdir(os.path.join(root, SOURCE_DIR)):
        return root
    return None


def check_checkout_build(package_dir):
    """In a checkout, refuse a missing or stale extension with the command that fixes it."""
    root = checkout_root(package_dir)
    if root is None:
        return
    fix = (f"build it for this Python from {root}: `pip install .` or `pip install -e .` "
           "(or `python setup.py build_ext --inplace`)")
    import importlib.machinery

    built_here = any(os.path.exists(os.path.join(package_dir, "_cconc" + suffix))
                     for suffix in importlib.machinery.EXTENSION_SUFFIXES)
    if not built_here:
        raise ImportError(f"cconc is imported from the checkout {root}, where its C extension "
                          f"cconc._cconc is not built for this Python; {fix}", name="cconc._cconc")
    from cconc import _cconc
    built = stamp_sources(getattr(_cconc, "_build_info", None))
    if built != sources_digest(root):
        raise ImportError(f"cconc._cconc in the checkout {root} ({_cconc.__file__}) was built from "
                          f"other C sources than {root}/{SOURCE_DIR} now holds; {fix}",
                          name="cconc._cconc")
