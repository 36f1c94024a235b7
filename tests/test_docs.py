"""The docs say what is so: what README.md and pyproject.toml claim is checked against the
modules as they import on this Python."""
import importlib
import inspect
import os
import re

import pytest

from cconc.bench import MIRRORS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STDLIB_OF = {cconc_name: stdlib_name for stdlib_name, cconc_name in MIRRORS.values()}


def _read(*parts):
    path = os.path.join(ROOT, *parts)
    if not os.path.exists(path):
        pytest.skip(f"{os.path.join(*parts)} is not beside the tests (an installed copy)")
    with open(path, encoding="utf-8") as f:
        return f.read()


def _readme_rows():
    """(mirror module, native cell, from-the-stdlib cell) of README's "What is there" table."""
    text = _read("README.md")
    section = text.split("## What is there", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("`cconc."):
            rows.append((cells[0].strip("`"), cells[1], cells[2]))
    assert rows, "README.md has no module table under 'What is there'"
    return rows


def _names(cell):
    return [t for t in re.findall(r"`([^`]+)`", cell) if t.isidentifier()]


def _mirror_and_stdlib(mirror_name):
    mirror = importlib.import_module(mirror_name)  # a module the README lists must exist
    return mirror, importlib.import_module(STDLIB_OF.get(mirror_name, mirror_name[len("cconc."):]))


@pytest.mark.parametrize("row", _readme_rows(), ids=lambda row: row[0])
def test_readme_table_native_and_stdlib_columns_are_true(row):
    mirror_name, native_cell, stdlib_cell = row
    mirror, std = _mirror_and_stdlib(mirror_name)
    checked = 0
    for name in _names(native_cell):
        obj = getattr(mirror, name, None)
        if obj is None:  # a method (put_many), or a class this platform has not built
            continue
        if isinstance(obj, type) and issubclass(obj, BaseException):
            continue  # exceptions are the stdlib's classes wherever it has them
        assert obj is not getattr(std, name, None), f"README says {mirror_name}.{name} is native"
        checked += 1
    for name in _names(stdlib_cell):
        mine, theirs = getattr(mirror, name), getattr(std, name)
        # `==` for bound methods made afresh at each access (multiprocessing.Pool is the
        # default context's method): equal when they are the same function of the same object
        assert mine is theirs or (inspect.ismethod(theirs) and mine == theirs), \
            f"README says {mirror_name}.{name} is the stdlib's"
        checked += 1
    assert checked


def test_pyproject_description_names_only_modules_that_exist():
    text = _read("pyproject.toml")
    description = re.search(r'^description = "(.*)"$', text, re.M).group(1)
    listed = re.search(r"\(([^)]*)\)", description).group(1)
    by_stdlib = {stdlib_name: cconc_name for cconc_name, stdlib_name in STDLIB_OF.items()}
    for stdlib_name in (n.strip() for n in listed.split(",")):
        module = stdlib_name.split(".")[0] if stdlib_name not in by_stdlib else stdlib_name
        importlib.import_module(by_stdlib.get(module, "cconc." + module))


def test_performance_figures_live_in_one_table():
    # Every measured figure comes from one run, in docs/performance.md; other pages link to it.
    docs = os.path.join(ROOT, "docs")
    if not os.path.isdir(docs):
        pytest.skip("docs/ is not beside the tests (an installed copy)")
    pages = [name for name in sorted(os.listdir(docs)) if name.endswith(".md")]
    quoting = [name for name in pages + ["../README.md"]
               if name != "performance.md" and "ns/op" in _read("docs", name)]
    assert quoting == []
    assert "| case | stdlib ns/op | cconc ns/op | speedup |" in _read("docs", "performance.md")


def test_bench_markdown_replaces_only_the_results_between_the_markers(tmp_path):
    from cconc.bench.__main__ import RESULTS_BEGIN, RESULTS_END, markdown_table, write_markdown

    results = [{"case": "X op", "unit": "op", "ns_per_op": {"stdlib": 300.0, "cconc": 100.0}, "speedup": 3.0}]
    page = tmp_path / "page.md"
    page.write_text(f"# Title\n\nbefore\n\n{RESULTS_BEGIN} how -->\nold table\n{RESULTS_END}\n\nafter\n")
    for _ in range(2):  # rewriting is idempotent
        write_markdown(str(page), markdown_table(results, "Measured now."))
        text = page.read_text()
        assert text.startswith("# Title\n\nbefore\n\n") and text.endswith(f"{RESULTS_END}\n\nafter\n")
        assert "old table" not in text and text.count("| X op | 300 | 100 | 3.00x |") == 1
    plain = tmp_path / "table.md"  # a file without the markers gets the table alone
    write_markdown(str(plain), markdown_table(results))
    assert plain.read_text().startswith("| case | stdlib ns/op |")
