"""pytest-benchmark view of the shared cases (cconc/bench/cases): the same code
as ``python -m cconc.bench``, grouped per case, stdlib and cconc side by side.
Both sides of a case run the same number of operations per round, so the
round times compare directly.

    pip install -e '.[bench]' && python -m pytest benchmarks
"""
import functools

import pytest

from cconc.bench import Impl, SkipCase, all_cases
from cconc.bench.__main__ import _calibrate

CASES = all_cases()


@functools.lru_cache(maxsize=None)
def ops_per_round(case):
    """Sized on the stdlib side, then used for every implementation."""
    with case.build(Impl("stdlib")) as run:
        return _calibrate(run)


@pytest.mark.parametrize("impl", ["stdlib", "cconc"])
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case(benchmark, case, impl):
    benchmark.group = case.name
    n = ops_per_round(case)
    benchmark.extra_info["ops_per_round"] = n
    try:
        ctx = case.build(Impl(impl))
        run = ctx.__enter__()
    except SkipCase as e:
        pytest.skip(str(e))
    try:
        benchmark.pedantic(run, args=(n,), rounds=5, warmup_rounds=1)
    finally:
        ctx.__exit__(None, None, None)
