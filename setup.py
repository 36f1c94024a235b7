"""Builds the one extension, cconc._cconc, from the C files under src/.

Environment switches:
  CCONC_DEBUG=1     -O0 -g, assertions on
  CCONC_SANITIZE=1  ASan + UBSan, warnings are errors
  CCONC_COVERAGE=1  gcov instrumentation

Every build, `pip install .` included, also leaves the extension in the checkout's cconc/
folder: `python -m cconc.bench` or `python -m pytest` run from the checkout's root import
the checkout's package, not the installed copy, and must find it built. Each build is
stamped with the digest of its sources and of its configuration (flags, compiler
environment): a build whose stamp differs from the existing file's is redone in full, so
a file left by a build with other switches is never taken as current, and cconc refuses
to import a checkout's extension built from other sources (cconc/_buildinfo.py).
"""
import hashlib
import importlib.util
import os
import shutil
import sys
import sysconfig
import warnings

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext as _build_ext

HERE = os.path.dirname(os.path.abspath(__file__))


def _load_buildinfo():
    # By path: importing the package would need the extension this script builds.
    spec = importlib.util.spec_from_file_location("_cconc_buildinfo", os.path.join(HERE, "cconc", "_buildinfo.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


buildinfo = _load_buildinfo()


def flag(name):
    return os.environ.get(name, "") not in ("", "0")


compile_args = ["-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers",
                "-fvisibility=hidden", "-std=gnu11"]
link_args = []
define_macros = []
undef_macros = []

if flag("CCONC_DEBUG") or flag("CCONC_SANITIZE"):
    compile_args += ["-O0", "-g3", "-fno-omit-frame-pointer"]
    undef_macros.append("NDEBUG")
else:
    compile_args += ["-O2"]
if flag("CCONC_SANITIZE"):
    sanitize = ["-fsanitize=address,undefined", "-fno-sanitize-recover=undefined"]
    compile_args += sanitize + ["-Werror"]
    link_args += sanitize
if flag("CCONC_COVERAGE"):
    compile_args += ["--coverage"]
    link_args += ["--coverage"]

sources = buildinfo.source_files(HERE)
config = hashlib.sha256(repr((
    sys.implementation.cache_tag, sysconfig.get_config_var("EXT_SUFFIX"), compile_args, link_args,
    define_macros, undef_macros,
    [os.environ.get(v) for v in ("CC", "CFLAGS", "CPPFLAGS", "LDFLAGS", "LDSHARED")],
)).encode()).hexdigest()[:20]
stamp = buildinfo.make_stamp(buildinfo.sources_digest(HERE), config)
define_macros.append(("CCONC_BUILD_INFO", '"%s"' % stamp))


def _holds_stamp(path):
    try:
        with open(path, "rb") as f:
            return stamp.encode() in f.read()
    except OSError:
        return False


class build_ext(_build_ext):
    def build_extension(self, ext):
        # setuptools rebuilds only when a source is newer than the output; a build with
        # other switches (sanitizer, CC_NO_FUTEX) may be newer and still not this one.
        if self.force or _holds_stamp(self.get_ext_fullpath(ext.name)):
            return super().build_extension(ext)
        self.force = True
        try:
            return super().build_extension(ext)
        finally:
            self.force = False

    def copy_extensions_to_source(self):
        # As setuptools' (used by --inplace and editable installs), but a new file renamed
        # over the old one: a process that has the old one loaded keeps its mapping intact
        # (rewriting a loaded library in place crashes that process with SIGBUS).
        build_py = self.get_finalized_command("build_py")
        for ext in self.extensions:
            fullname = self.get_ext_fullname(ext.name)
            filename = self.get_ext_filename(fullname)
            package_dir = build_py.get_package_dir(".".join(fullname.split(".")[:-1]))
            built = os.path.join(self.build_lib, filename)
            target = os.path.join(package_dir, os.path.basename(filename))
            scratch = f"{target}.{os.getpid()}.tmp"
            try:
                shutil.copyfile(built, scratch)
                shutil.copymode(built, scratch)
                os.replace(scratch, target)
            finally:
                if os.path.exists(scratch):
                    os.unlink(scratch)

    def run(self):
        super().run()
        if self.inplace or not os.path.isdir(os.path.join(HERE, "cconc")):
            return
        # Leave the extension in the checkout too (see the docstring at the top).
        try:
            self.copy_extensions_to_source()
        except OSError as exc:
            warnings.warn(f"could not leave the built extension in {HERE}/cconc ({exc}): "
                          "`python -m cconc...` run from there will not import")


setup(
    cmdclass={"build_ext": build_ext},
    ext_modules=[
        Extension(
            "cconc._cconc",
            sources=[p for p in sources if p.endswith(".c")],
            depends=[p for p in sources if p.endswith(".h")],
            include_dirs=sorted({"src"} | {os.path.dirname(p) for p in sources if p.endswith(".h")}),
            define_macros=define_macros,
            undef_macros=undef_macros,
            extra_compile_args=compile_args,
            extra_link_args=link_args,
        )
    ],
)
