"""Differential testing: every test that takes one of the `*_mod` fixtures runs
twice, once on the stdlib module and once on its cconc mirror; both must pass.

CCONC_TEST_SIDES=cconc runs the cconc side only (CI's fast pass on the Pythons other
than the main one, whose stdlib sides the main interpreter's run stands for)."""
import importlib
import os

import pytest

from cconc.bench import MIRRORS as _MIRRORS  # attribute -> (stdlib module, cconc module)


_SIDES = [side for side in ("stdlib", "cconc")
          if side in os.environ.get("CCONC_TEST_SIDES", "stdlib,cconc").split(",")]


def _module_fixture(kind):
    stdlib_name, cconc_name = _MIRRORS[kind]

    @pytest.fixture(params=_SIDES, name=f"{kind}_mod")
    def fixture(request):
        return importlib.import_module(stdlib_name if request.param == "stdlib" else cconc_name)

    return fixture


threading_mod = _module_fixture("threading")
queue_mod = _module_fixture("queue")
futures_mod = _module_fixture("futures")
selectors_mod = _module_fixture("selectors")
multiprocessing_mod = _module_fixture("multiprocessing")
