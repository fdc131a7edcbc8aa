"""The scenario library replayed on one recording, for the per-venue matrices (slow tests)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from harness.replay import ReplayRequest, run_replay
from harness.scenarios import list_scenarios

LIBRARY = sorted(s.name for s in list_scenarios())


def replay_library(recording: Path, parallel: int = 4) -> dict[str, dict[str, Any]]:
    """Every library scenario's report on `recording`, `parallel` replays at a time."""
    with ThreadPoolExecutor(parallel) as pool:
        futures = {name: pool.submit(run_replay, ReplayRequest(scenario=name, recording=recording)) for name in LIBRARY}
        return {name: future.result() for name, future in futures.items()}


def failures(report: dict[str, Any]) -> list[str]:
    """The expectations a report failed, each with the value it got."""
    return [f"{row['name']}: got {row['value']!r}" for row in report["expectations"] if row["passed"] is False]
