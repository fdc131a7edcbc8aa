"""The fault plan's own memory and planning time on a recording (issue 12, "Schedule").

Loads the recording first (its frames are not the plan's), then for each scenario times planning
and one walk of the schedule, then measures with tracemalloc (a second plan: tracing slows it) what
planning allocates at its peak, what the plan keeps, and the peak above that while walking. Prints one line
per scenario; numbers, not a test (docs/performance.md, "The fault plan's schedule").

    python -m bench.plan_memory /tmp/synth --scenario clean --scenario gap_storm --scenario chaos
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

from harness.scenarios import load_scenario
from replayer.replay_data import load_replay_data

MB = 1024 * 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recording")
    parser.add_argument("--scenario", action="append", default=[])
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    data = load_replay_data(args.recording)
    print(f"{args.recording}: {len(data.frames):,} frames")
    for name in args.scenario or ["clean", "gap_storm", "chaos"]:
        scenario = load_scenario(name)
        began = time.perf_counter()
        plan = scenario.plan(data.frames, args.seed, data.dialect)
        planned = time.perf_counter() - began
        began = time.perf_counter()
        walked = sum(1 for _ in plan.entries)
        walk = time.perf_counter() - began
        del plan
        tracemalloc.start()
        plan = scenario.plan(data.frames, args.seed, data.dialect)
        kept, plan_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        for _ in plan.entries:
            pass
        _, walk_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(
            f"{name:10} plan {planned:6.2f} s, peak {plan_peak / MB:7.1f} MB, kept {kept / MB:7.1f} MB | "
            f"walk {walk:6.2f} s, {walked:,} entries, peak {(walk_peak - kept) / MB:6.1f} MB above kept",
            flush=True,
        )
        del plan


if __name__ == "__main__":
    main()
