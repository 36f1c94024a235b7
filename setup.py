"""Builds the one extension, cconc._cconc, from the C files under src/ (and its folders).

Environment switches:
  CCONC_DEBUG=1     -O0 -g, assertions on
  CCONC_SANITIZE=1  ASan + UBSan, warnings are errors
  CCONC_COVERAGE=1  gcov instrumentation
"""
import glob
import os

from setuptools import Extension, setup


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

setup(
    ext_modules=[
        Extension(
            "cconc._cconc",
            sources=sorted(glob.glob("src/**/*.c", recursive=True)),
            depends=sorted(glob.glob("src/**/*.h", recursive=True)),
            include_dirs=sorted({"src"} | {os.path.dirname(h) for h in glob.glob("src/**/*.h", recursive=True)}),
            define_macros=define_macros,
            undef_macros=undef_macros,
            extra_compile_args=compile_args,
            extra_link_args=link_args,
        )
    ],
)
