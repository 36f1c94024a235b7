"""A checkout never runs an extension that is missing or stale (cconc/_buildinfo.py).

`python -m cconc.bench` and `python -m pytest` from a checkout's root import the checkout's
package; the build leaves the extension there and stamps it with its sources' digest. Each
test copies the package and the C sources into a scratch "checkout" and imports from it in
a fresh interpreter. (CI's README stage proves the commands themselves, from a fresh clone.)
"""
import glob
import os
import shutil
import subprocess
import sys

import pytest

import cconc
from cconc import _buildinfo, _cconc

PACKAGE = os.path.dirname(os.path.abspath(cconc.__file__))
ROOT = os.path.dirname(PACKAGE)


def _checkout(tmp_path, with_extension=True):
    root = tmp_path / "checkout"
    shutil.copytree(PACKAGE, root / "cconc", ignore=shutil.ignore_patterns("*.so", "__pycache__"))
    if with_extension:
        shutil.copy(_cconc.__file__, root / "cconc")
    src = os.path.join(ROOT, _buildinfo.SOURCE_DIR)
    if os.path.isdir(src):  # running from a checkout: its sources built this extension
        shutil.copytree(src, root / "src")
    else:  # an installed copy: no sources to compare with
        return None
    (root / "setup.py").write_text("# the checkout marker _buildinfo looks for\n")
    return root


def _import_in(root):
    code = "import cconc.threading, cconc.queue; print(cconc.__file__)"
    return subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=60)


def test_the_running_extension_carries_its_sources_digest():
    assert _buildinfo.stamp_sources(_cconc._build_info) is not None
    if _buildinfo.checkout_root(PACKAGE):
        assert _buildinfo.stamp_sources(_cconc._build_info) == _buildinfo.sources_digest(ROOT)


def test_a_current_build_imports_from_the_checkout(tmp_path):
    root = _checkout(tmp_path)
    if root is None:
        pytest.skip("cconc is imported from an installed copy, with no sources beside it")
    proc = _import_in(root)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(root / "cconc" / "__init__.py")


def test_an_edited_source_makes_the_checkout_refuse_its_extension(tmp_path):
    root = _checkout(tmp_path)
    if root is None:
        pytest.skip("cconc is imported from an installed copy, with no sources beside it")
    victim = sorted(glob.glob(str(root / "src" / "**" / "*.c"), recursive=True))[0]
    with open(victim, "a") as f:
        f.write("/* edited after the build */\n")
    proc = _import_in(root)
    assert proc.returncode != 0
    assert "ImportError" in proc.stderr and "other C sources" in proc.stderr
    assert "pip install" in proc.stderr


def test_a_new_source_file_counts_too(tmp_path):
    root = _checkout(tmp_path)
    if root is None:
        pytest.skip("cconc is imported from an installed copy, with no sources beside it")
    os.makedirs(root / "src" / "newfolder")
    (root / "src" / "newfolder" / "new.h").write_text("/* a header the build has not seen */\n")
    proc = _import_in(root)
    assert proc.returncode != 0 and "other C sources" in proc.stderr


def test_an_unbuilt_checkout_says_how_to_build(tmp_path):
    root = _checkout(tmp_path, with_extension=False)
    if root is None:
        pytest.skip("cconc is imported from an installed copy, with no sources beside it")
    proc = _import_in(root)
    assert proc.returncode != 0
    assert "not built for this Python" in proc.stderr and "pip install" in proc.stderr


def test_an_installed_copy_is_not_checked(tmp_path):
    # no setup.py and src/ beside the package: pip built it from the sources it shipped
    site = tmp_path / "site"
    shutil.copytree(PACKAGE, site / "cconc", ignore=shutil.ignore_patterns("*.so", "__pycache__"))
    shutil.copy(_cconc.__file__, site / "cconc")
    os.makedirs(site / "src")
    (site / "src" / "other.c").write_text("/* not cconc's */\n")
    proc = _import_in(site)
    assert proc.returncode == 0, proc.stderr
