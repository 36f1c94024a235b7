"""python -m cconc.bench [NAME-FILTER ...] [--json FILE]

Runs every benchmark case on the stdlib and on cconc, interleaved in this one
process, and prints the median time per operation of each and the speedup.
"""
import argparse
import gc
import json
import os
import platform
import statistics
import sys
import time

from . import Impl, SkipCase, all_cases

ROUNDS = 5
ROUND_SECONDS = 0.04  # target length of one timed round
MAX_N = 2_000_000


def _time(run, n):
    gc.collect()
    t0 = time.perf_counter_ns()
    run(n)
    return (time.perf_counter_ns() - t0) / n


def _calibrate(run):
    """Operations per round so that a round lasts about ROUND_SECONDS."""
    n = 1
    while True:
        t0 = time.perf_counter()
        run(n)
        elapsed = time.perf_counter() - t0
        if elapsed >= ROUND_SECONDS / 4 or n >= MAX_N:
            return max(1, min(MAX_N, int(n * ROUND_SECONDS / max(elapsed, 1e-9))))
        n *= 4


def measure(case, impl_names=("stdlib", "cconc"), rounds=ROUNDS):
    """Median ns per operation for each implementation that is available."""
    stacks, runs = {}, {}
    try:
        for name in impl_names:
            ctx = case.build(Impl(name))
            try:
                runs[name] = ctx.__enter__()
            except SkipCase:
                continue
            stacks[name] = ctx
        sizes = {name: _calibrate(run) for name, run in runs.items()}
        samples = {name: [] for name in runs}
        for _ in range(rounds):  # interleaved, so drift hits both sides alike
            for name, run in runs.items():
                samples[name].append(_time(run, sizes[name]))
        return {name: statistics.median(s) for name, s in samples.items()}
    finally:
        for ctx in stacks.values():
            ctx.__exit__(None, None, None)


def _fmt_ns(ns):
    return f"{ns:,.0f}" if ns >= 100 else f"{ns:.1f}"


def run_caption(rounds):
    """Where and how a run was measured: the line above its Markdown table."""
    try:
        load = "load average %.2f at the start" % os.getloadavg()[0]
    except (AttributeError, OSError):
        load = "load average unknown"
    return (f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by `python -m cconc.bench`: "
            f"Python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs, {load}; "
            f"median of {rounds} interleaved rounds per side.")


def markdown_table(results, caption=None):
    lines = [caption, ""] if caption else []
    lines += ["| case | stdlib ns/op | cconc ns/op | speedup | others |", "|---|---:|---:|---:|---|"]
    for r in results:
        t = r["ns_per_op"]
        others = ", ".join(f"{k} {_fmt_ns(v)}" for k, v in t.items() if k not in ("stdlib", "cconc"))
        lines.append(f"| {r['case']} | {_fmt_ns(t['stdlib'])} | {_fmt_ns(t['cconc'])} | "
                     f"{r['speedup']:.2f}x | {others} |")
    return "\n".join(lines) + "\n"


RESULTS_BEGIN = "<!-- results:"
RESULTS_END = "<!-- end of results -->"


def write_markdown(path, table):
    """Write the table to path; into a page that has the results markers (docs/performance.md),
    replace only what lies between them."""
    try:
        with open(path, encoding="utf-8") as f:
            page = f.read()
    except FileNotFoundError:
        page = ""
    begin, end = page.find(RESULTS_BEGIN), page.find(RESULTS_END)
    if 0 <= begin < end:
        head_end = page.index("\n", begin) + 1
        table = page[:head_end] + table + page[end:]
    with open(path, "w", encoding="utf-8") as f:
        f.write(table)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m cconc.bench", description=__doc__.split("\n\n")[1])
    parser.add_argument("filters", nargs="*", help="run only cases whose name contains one of these (case-insensitive)")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="timed rounds per side (median taken)")
    parser.add_argument("--markdown", metavar="FILE",
                        help="also write the table as Markdown (into a page with the results markers, "
                             "such as docs/performance.md, between them)")
    parser.add_argument("--list", action="store_true", help="list the case names and exit")
    args = parser.parse_args(argv)

    cases = all_cases()
    if args.filters:
        wanted = [f.lower() for f in args.filters]
        cases = [c for c in cases if any(f in c.name.lower() for f in wanted)]
    if args.list:
        for c in cases:
            print(c.name)
        return 0
    if not cases:
        print("no case matches", file=sys.stderr)
        return 1

    width = max(len(c.name) for c in cases)
    print(f"cconc vs stdlib, Python {platform.python_version()} on {platform.machine()}, "
          f"median of {args.rounds} interleaved rounds")
    print(f"{'case':<{width}}  {'stdlib ns/op':>13}  {'cconc ns/op':>12}  {'speedup':>8}")
    caption = run_caption(args.rounds)
    results = []
    for c in cases:
        times = measure(c, ("stdlib", "cconc") + c.extra, args.rounds)
        speedup = times["stdlib"] / times["cconc"]
        others = "  ".join(f"{k} {_fmt_ns(v)}" for k, v in times.items() if k not in ("stdlib", "cconc"))
        print(f"{c.name:<{width}}  {_fmt_ns(times['stdlib']):>13}  {_fmt_ns(times['cconc']):>12}  "
              f"{speedup:>7.2f}x" + (f"  ({others} ns/op)" if others else ""), flush=True)
        results.append({"case": c.name, "unit": c.unit, "ns_per_op": times, "speedup": speedup})
    if args.markdown:
        write_markdown(args.markdown, markdown_table(results, caption))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"python": platform.python_version(), "machine": platform.machine(),
                       "results": results}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
