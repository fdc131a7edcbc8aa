"""The terminal side of `harness search`: a line per schedule tried, the minimal failure, the command to replay it."""

from __future__ import annotations

import sys
from pathlib import Path

from harness.search import SearchRequest, parse_kinds, run_search


def run_search_command(
    *,
    subject: str,
    recording: Path | None,
    budget: int | None,
    minutes: float | None,
    seed: int,
    output: Path,
    kinds: str,
    speed: float | None,
    max_faults: int,
    shrink_budget: int,
) -> int:
    """Returns the exit code: 1 when a failing schedule was found, 0 when none was."""
    request = SearchRequest(
        subject=subject,
        recording=recording,
        budget=budget,
        minutes=minutes,
        seed=seed,
        out=output,
        kinds=parse_kinds(kinds),
        speed=speed,
        max_faults=max_faults,
        shrink_budget=shrink_budget,
    )
    counter = iter(range(1, 10**9))

    def say(line: str) -> None:
        print(f"[{next(counter):>4}] {line}", flush=True)

    result = run_search(request, progress=say)
    if not result.found:
        why = " (time up)" if result.out_of_time else ""
        print(f"no failing schedule in {result.trials} tried{why}; summary in {output / 'search.json'}")
        return 0
    print(
        f"FAIL: {result.trials} schedule(s) tried, the first failure ({result.first_failure_faults} fault(s)) "
        f"shrunk in {result.shrink_trials} replays to {len(result.faults)}:"
    )
    for spec in result.faults:
        params = ", ".join(f"{key}={value!r}" for key, value in spec.params.items())
        print(f"  {spec.kind} {spec.start}..{spec.stop}: {params}")
    print(f"failed: {'; '.join(result.failed_expectations)}")
    again = "reproduced" if result.reproduced else "did NOT reproduce (timing-dependent; see docs/search.md)"
    print(f"scenario: {result.scenario_path} (replayed once more from the file: {again})")
    print(f"reproduce: {result.command}")
    if not result.reproduced:
        print("warning: the written scenario passed when replayed again", file=sys.stderr)
    return 1
