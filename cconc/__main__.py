"""``python -m cconc run``: run a program with cconc patched in (docs/patch.md).

    python -m cconc run [--patch MODULES] script.py [args...]
    python -m cconc run [--patch MODULES] -m module [args...]

The program runs as ``python script.py`` / ``python -m module`` would run it:
the same ``sys.argv``, ``sys.path[0]``, ``__main__`` module, exit status and
traceback (the runner's own frames are left out). CCONC_PATCH and PYTHONPATH
are set so that Python child processes (subprocess, multiprocessing's spawn
and forkserver) start patched too (cconc/_boot/sitecustomize.py).
MODULES: a comma-separated subset of threading,queue,selectors,futures,multiprocessing
(default: all that cconc has).
"""
import os
import sys

USAGE = (
    "usage: python -m cconc run [--patch MODULES] script.py [args...]\n"
    "       python -m cconc run [--patch MODULES] -m module [args...]\n"
    "MODULES: comma-separated subset of threading,queue,selectors,futures,multiprocessing\n"
)


def _usage_error(message):
    sys.stderr.write(f"{USAGE}python -m cconc: error: {message}\n")
    return 2


def _set_child_environment(spec):
    """Children inherit patch mode: CCONC_PATCH, and the start-up hook on PYTHONPATH."""
    boot = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_boot")
    os.environ["CCONC_PATCH"] = spec
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != boot]
    os.environ["PYTHONPATH"] = os.pathsep.join([boot] + paths)


def _fresh_main():
    """A new, empty __main__ module in place of this one, as the interpreter makes it."""
    import builtins
    import types

    main = types.ModuleType("__main__")
    main.__builtins__ = builtins
    sys.modules["__main__"] = main
    return main


def _run_script(path):
    from importlib.machinery import SourceFileLoader

    if os.path.isdir(path) or not path.endswith((".py", ".pyw")) and _is_zip(path):
        # a directory or zip file with __main__.py: python puts it on sys.path
        import runpy

        sys.path[0] = os.path.abspath(path)
        _fresh_main()
        return _run_module_code(runpy._run_module_as_main, "__main__", False)
    abspath = os.path.abspath(path)
    sys.path[0] = os.path.dirname(os.path.realpath(abspath))
    main = _fresh_main()
    main.__file__ = abspath
    main.__cached__ = None
    main.__loader__ = SourceFileLoader("__main__", abspath)
    main.__package__ = None
    main.__spec__ = None
    return _run_module_code(_exec_file, abspath, main.__dict__)


def _exec_file(abspath, namespace):
    with open(abspath, "rb") as f:
        source = f.read()
    # a SyntaxError is reported as the interpreter does, with no frame
    exec(compile(source, abspath, "exec", dont_inherit=True), namespace)


def _is_zip(path):
    import zipfile

    return os.path.isfile(path) and zipfile.is_zipfile(path)


def _run_module(name):
    import runpy

    sys.path[0] = os.getcwd()
    _fresh_main()
    return _run_module_code(runpy._run_module_as_main, name, True)


_INTERRUPTED = []


def _exit_by_sigint():
    # What the interpreter does after an uncaught KeyboardInterrupt: die by
    # SIGINT, so that the parent (a shell) sees the program was interrupted.
    if _INTERRUPTED:
        import signal

        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)


def _run_module_code(runner, *args):
    """Run the program; an uncaught exception is reported as the interpreter
    would, without this module's frames in the traceback."""
    import atexit

    atexit.register(_exit_by_sigint)  # registered first: runs after the program's own handlers
    try:
        runner(*args)
    except SystemExit:
        raise
    except BaseException as exc:
        tb = exc.__traceback__
        while tb is not None and tb.tb_frame.f_code is not _run_module_code.__code__:
            tb = tb.tb_next
        if tb is None:  # not raised below the runner: keep the whole traceback
            tb = exc.__traceback__
        else:
            tb = tb.tb_next
            while tb is not None and tb.tb_frame.f_code is _exec_file.__code__:
                tb = tb.tb_next
        exc.__traceback__ = tb
        sys.last_type, sys.last_value, sys.last_traceback = type(exc), exc, tb
        if hasattr(sys, "last_exc"):
            sys.last_exc = exc
        sys.excepthook(type(exc), exc, tb)
        if isinstance(exc, KeyboardInterrupt):
            _INTERRUPTED.append(True)
        del exc, tb
        raise SystemExit(1) from None
    return 0


def main(argv):
    if not argv or argv[0] in ("-h", "--help"):
        sys.stdout.write(USAGE)
        return 0 if argv else 2
    if argv[0] != "run":
        return _usage_error(f"unknown command {argv[0]!r}")
    argv = argv[1:]
    spec = "all"
    if argv and (argv[0] == "--patch" or argv[0].startswith("--patch=")):
        if argv[0] == "--patch":
            if len(argv) < 2:
                return _usage_error("--patch needs a value")
            spec, argv = argv[1], argv[2:]
        else:
            spec, argv = argv[0].split("=", 1)[1], argv[1:]
    if not argv:
        return _usage_error("a script or -m module is required")

    from cconc import _patch

    try:
        options = _patch.parse_spec(spec)
    except ValueError as exc:
        return _usage_error(str(exc))
    _set_child_environment(spec)
    _patch.patch(**options)

    if argv[0] == "-m":
        if len(argv) < 2:
            return _usage_error("-m needs a module name")
        sys.argv = argv[1:]  # runpy sets argv[0] to the module's file
        return _run_module(argv[1])
    if argv[0].startswith("-"):
        return _usage_error(f"unknown option {argv[0]!r}")
    sys.argv = list(argv)
    if not os.path.exists(argv[0]):
        # the interpreter's own message and status
        sys.stderr.write(
            f"{sys.executable}: can't open file {os.path.abspath(argv[0])!r}: "
            f"[Errno 2] No such file or directory\n"
        )
        return 2
    return _run_script(argv[0])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
