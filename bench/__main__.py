"""`make bench`: runs every bench/*_bench.py module's `main()` in one process, one after another, then
writes the figures they `put` into bench/results.json (bench/results.py).

Benchmarks report ratios measured in the same run (ours against a baseline on the same machine,
at the same moment), never absolute thresholds: machines differ, ratios travel.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

import bench
from bench import results


def main(argv: list[str]) -> int:
    wanted = set(argv)
    names = sorted(m.name for m in pkgutil.iter_modules(bench.__path__) if m.name.endswith("_bench"))
    failed = 0
    for name in names:
        if wanted and name not in wanted and name.removesuffix("_bench") not in wanted:
            continue
        print(f"== {name}")
        module = importlib.import_module(f"bench.{name}")
        failed += bool(module.main())
    if results.pending():
        print(f"== wrote {results.write()}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
