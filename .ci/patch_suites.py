"""CPython's own test suites, run under cconc's patch mode (driver of .ci/patch-suites).

    python -m cconc run .ci/patch_suites.py SUITE [--expected FILE] [--plain]

Runs one suite's tests with unittest, in this (patched) process, and compares
the failures with the list of known ones (FILE: lines "test.id  reason"). Exits
1 when a test fails that is not on the list; listed tests that pass are reported
so that the list can shrink. --plain runs the same tests without checking that
patch mode is on (to see what fails on the stdlib itself).
"""
import argparse
import contextlib
import faulthandler
import importlib.util
import os
import sys
import unittest

# suite -> (module, test-id substrings to keep (None: all))
SUITES = {
    "threading": ("test.test_threading", None),
    "queue": ("test.test_queue", None),
    # the thread-pool and futures parts (process pools are not cconc's)
    "concurrent_futures": ("test_concurrent_futures", ["ThreadPool", "FutureTests"]),
    "logging_queue": ("test.test_logging", [".QueueHandlerTest."]),
    "asyncio_events": ("test.test_asyncio.test_events", None),
    "asyncio_selector_events": ("test.test_asyncio.test_selector_events", None),
}


def load(suite):
    module_name, keep = SUITES[suite]
    if module_name == "test_concurrent_futures":
        # Missing from some installs (3.11 here): CCONC_CF_TESTS names the
        # file to use (another version's test_concurrent_futures.py).
        path = os.environ.get("CCONC_CF_TESTS")
        try:
            module = importlib.import_module("test.test_concurrent_futures")
        except ImportError:
            if not path:
                sys.exit("test_concurrent_futures is missing: set CCONC_CF_TESTS to a test_concurrent_futures.py")
            spec = importlib.util.spec_from_file_location("test_concurrent_futures", path)
            module = importlib.util.module_from_spec(spec)
            sys.modules["test_concurrent_futures"] = module
            spec.loader.exec_module(module)
    else:
        module = importlib.import_module(module_name)
    loader = unittest.TestLoader()
    tests = loader.loadTestsFromModule(module)
    if hasattr(module, "load_tests") and not tests.countTestCases():  # pragma: no cover
        tests = loader.loadTestsFromName(module_name)

    def flatten(suite_or_case):
        if isinstance(suite_or_case, unittest.TestSuite):
            for item in suite_or_case:
                yield from flatten(item)
        else:
            yield suite_or_case

    cases = list(flatten(tests))
    if keep is not None:
        cases = [c for c in cases if any(k in c.id() for k in keep)]
    return unittest.TestSuite(cases)


def read_expected(path):
    expected = {}
    if path and os.path.exists(path):
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line and not line.startswith("#"):
                    test_id, _, reason = line.partition(" ")
                    expected[test_id] = reason.strip()
    return expected


def check_patched():
    import queue
    import selectors
    import threading

    import cconc.queue
    import cconc.selectors
    import cconc.threading

    if not (threading.Lock is cconc.threading.Lock and queue.Queue is cconc.queue.Queue
            and selectors.DefaultSelector is cconc.selectors.DefaultSelector):
        sys.exit("patch mode is not on: run this under `python -m cconc run`")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("suite", choices=sorted(SUITES))
    parser.add_argument("--expected")
    parser.add_argument("--plain", action="store_true")
    parser.add_argument("--timeout", type=float, default=900)
    args = parser.parse_args()
    if not args.plain:
        check_patched()
    faulthandler.dump_traceback_later(args.timeout, exit=True)  # a hang fails the stage, with stacks
    from test import support

    support.verbose = 0  # as regrtest sets it: the suites' chatter off
    tests = load(args.suite)
    ids = {case.id() for case in tests}  # the suite forgets its tests as they run
    with contextlib.redirect_stdout(sys.stderr):  # what tests print goes with the unittest report
        result = unittest.TextTestRunner(stream=sys.stderr, verbosity=1).run(tests)
    failed = {}
    for case, text in result.failures + result.errors + [(c, "unexpected success") for c in result.unexpectedSuccesses]:
        failed[case.id()] = text.strip().splitlines()[-1] if text else ""
    expected = {k: v for k, v in read_expected(args.expected).items() if k.startswith(SUITES[args.suite][0] + ".")}
    new = sorted(set(failed) - set(expected))
    fixed = sorted(t for t in expected if t not in failed and t in ids)
    print(f"== {args.suite}: {result.testsRun} run, {len(failed)} failed "
          f"({len(failed) - len(new)} known), {len(result.skipped)} skipped")
    for test_id in fixed:
        print(f"   now passes (remove it from the list): {test_id}")
    for test_id in new:
        print(f"   NEW FAILURE: {test_id}  {failed[test_id]}")
    return 1 if new else 0


if __name__ == "__main__":
    sys.exit(main())
