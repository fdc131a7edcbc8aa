"""Suite parallelism: `harness suite --scenarios all --seeds 1-3` with two jobs against the same cells one
after another, on the bundled fixture, in the same run.

A cell is mostly paced by its replay clock (60 s of recording at speed 4 to 10), so cells in parallel
should take about the sum of their times divided by the jobs; the ratio says how close the pool gets.
Both are wall time (each cell spans a worker and a subject process). Takes about eleven minutes on a
busy 2-core machine: `python -m bench suite` runs it alone. Reported, not judged.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from bench import results
from harness.suite import SuiteRequest, run_suite

SEEDS = (1, 2, 3)
PARALLEL_JOBS = 2


def measure(scenarios: Sequence[str] | None, seeds: Sequence[int]) -> tuple[float, float, int]:
    """(parallel wall s, one-after-another wall s, cells); raises if any cell fails, since a failing
    cell may end early and make either side look faster than it is."""
    walls = []
    for jobs in (PARALLEL_JOBS, 1):
        started = time.perf_counter()
        summary = run_suite(SuiteRequest(scenarios=scenarios, seeds=seeds, jobs=jobs))
        walls.append(time.perf_counter() - started)
        if not summary["passed"]:
            raise RuntimeError(f"--jobs {jobs}: the suite failed, so its time means nothing: {summary['totals']}")
    return walls[0], walls[1], summary["totals"]["cells"]


def main() -> int:
    parallel_s, serial_s, cells = measure(None, SEEDS)
    print(f"suite: {cells} cells (every library scenario, seeds 1-3, bundled fixture)")
    print(f"  --jobs {PARALLEL_JOBS}:  {parallel_s:7.1f} s wall")
    print(f"  --jobs 1:  {serial_s:7.1f} s wall")
    print(f"  ratio: one after another takes {serial_s / parallel_s:.2f}x the parallel run")
    results.put(
        "suite_parallel_vs_serial",
        ratio=serial_s / parallel_s,
        meaning=f"--jobs 1 wall time over --jobs {PARALLEL_JOBS}; {PARALLEL_JOBS}.0 would be perfect",
        comparison="the same cells one after another",
        raw={"cells": cells, "parallel_s": round(parallel_s, 1), "serial_s": round(serial_s, 1)},
    )
    return 0
