"""`make bench`: run the benchmarks, print a table, write bench-results.json.

Usage: python -m bench [NAME …]   (names: see BENCHMARKS; default all)
"""

from __future__ import annotations

import importlib
import os
import platform
import sys

from bench.results import RESULTS_FILE, Figure, write

BENCHMARKS = ["decode", "pipeline", "dbus_path", "gpio_latency", "sync", "exports"]


def main(argv: list[str]) -> int:
    names = argv or BENCHMARKS
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        print(f"bench: unknown benchmark(s) {unknown}; known: {BENCHMARKS}", file=sys.stderr)
        return 2
    # The targets are stated for one core: keep the interpreter on one.
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[-1]})
    print(f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} cores")
    figures: list[Figure] = []
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        print(f"running {name}…", flush=True)
        figures += module.run()
    width = max(len(f.name) for f in figures)
    print()
    print(f"{'figure':<{width}}  {'value':>14}  {'unit':<20} {'target':>12}  met")
    for f in figures:
        target = ""
        if f.target is not None:
            shown = f"{f.target:,.0f}" if f.target >= 10 else f"{f.target:g}"
            target = f"{'≥' if f.better == 'higher' else '≤'} {shown}"
        met = {True: "yes", False: "NO", None: "-"}[f.meets_target]
        value = f"{f.value:>14,.1f}" if f.value >= 10 else f"{f.value:>14.3f}"
        print(f"{f.name:<{width}}  {value}  {f.unit:<20} {target:>12}  {met}")
        if f.note:
            print(f"{'':<{width}}  {f.note}")
    write(figures)
    print(f"\nwritten to {RESULTS_FILE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
