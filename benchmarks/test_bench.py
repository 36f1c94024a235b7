"""pytest-benchmark view of the shared cases (cconc/bench/cases): the same code
as ``python -m cconc.bench``, grouped per case, stdlib and cconc side by side.

    pip install -e '.[bench]' && python -m pytest benchmarks
"""
import pytest

from cconc.bench import Impl, SkipCase, all_cases

CASES = all_cases()


@pytest.mark.parametrize("impl", ["stdlib", "cconc"])
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case(benchmark, case, impl):
    from cconc.bench.__main__ import _calibrate

    benchmark.group = case.name
    try:
        ctx = case.build(Impl(impl))
        run = ctx.__enter__()
    except SkipCase as e:
        pytest.skip(str(e))
    try:
        n = _calibrate(run)
        benchmark.extra_info["ops_per_round"] = n
        benchmark.pedantic(run, args=(n,), rounds=5, warmup_rounds=1)
    finally:
        ctx.__exit__(None, None, None)
