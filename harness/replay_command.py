"""The terminal side of `harness replay`: progress bar, verdict table, report files, exit code."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from harness.replay import ReplayRequest, run_replay
from harness.report import render_terminal, write_junit, write_report


def run_replay_command(
    *,
    scenario: str,
    recording: Path | None,
    seed: int | None,
    speed: float | None,
    report: Path | None,
    junit: Path | None,
    subject: str,
) -> int:
    """Returns the exit code: 0 when every expectation holds, 1 when one fails."""
    request = ReplayRequest(scenario=scenario, recording=recording, seed=seed, speed=speed, subject=subject)
    errors = Console(stderr=True)
    bar = Progress(
        TextColumn(f"replay {scenario}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=errors,
        transient=True,
        disable=not errors.is_terminal,
    )
    with bar:
        task = bar.add_task("replay", total=None)
        result = run_replay(request, progress=lambda done, total: bar.update(task, completed=done, total=total))
    Console().print(render_terminal(result))
    if report is not None:
        write_report(result, report)
    if junit is not None:
        write_junit(result, junit)
    return 0 if result["passed"] else 1
