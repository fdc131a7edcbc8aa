"""The terminal side of `harness replay`: progress bar, verdict table, report files, exit code."""

from __future__ import annotations

import shlex
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from harness.errors import HarnessError
from harness.html_report import write_html_report
from harness.replay import ReplayRequest, run_replay
from harness.report import render_terminal, write_junit, write_report
from harness.reproduce import write_reproduction
from harness.scenarios import Scenario, load_scenario
from harness.subject import DEFAULT_SUBJECT

# Faults whose effect is a span of time (a hold, a downtime, a reconnect race). At --speed 0 the stream
# does not wait for the subject to come back, so they are not what they are at a finite speed.
TIMED_FAULTS = frozenset(
    {"delay", "burst", "stall", "disconnect", "handshake_refused", "slow_consumer", "exchange_restart"}
)


def run_replay_command(
    *,
    scenario: str,
    recording: Path | None,
    seed: int | None,
    speed: float | None,
    report: Path | None,
    junit: Path | None,
    subject: str,
    rest_weight_limit: int | None = None,
    html: Path | None = None,
    owns_process: bool = False,
    busy_poll_us: int = 0,
) -> int:
    """Returns the exit code: 0 when every expectation holds, 1 when one fails.

    A failed run with `--report` also leaves, next to the report, its scenario with the run's seed
    (`run.json` -> `run.repro.toml`), named in the report's `reproduce`."""
    check_output_path(report, "--report")
    check_output_path(junit, "--junit")
    check_output_path(html, "--html")
    request = ReplayRequest(
        scenario=scenario,
        recording=recording,
        seed=seed,
        speed=speed,
        subject=subject,
        stderr_path=subject_log_path(report),
        rest_weight_limit=rest_weight_limit,
        owns_process=owns_process,
        subject_busy_poll_us=busy_poll_us,
    )
    errors = Console(stderr=True)
    loaded = load_scenario(scenario)
    notice = speed_zero_notice(loaded, speed)
    if notice:
        print(notice, file=sys.stderr)
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
    options = _replay_options(recording, subject, speed, rest_weight_limit, busy_poll_us)
    if report is not None and not result["passed"]:
        result["reproduce"] = write_reproduction(result, loaded, repro_path(report), options, speed)
    Console().print(render_terminal(result))
    if "reproduce" in result:
        print(f"reproduce with: {result['reproduce']['command']}")
    elif not result["passed"]:  # no file without --report: the scenario as given, and the seed, say it all
        again = [*options[:2], "--scenario", scenario, "--seed", str(result["seed"]), *options[2:]]
        again += ["--speed", f"{speed:g}"] if speed else []
        print(f"reproduce with: {shlex.join(again)}")
    if report is not None:
        _write(write_report, result, report)
    if html is not None:
        _write(write_html_report, result, html)
    if junit is not None:
        _write(write_junit, result, junit)
    return 0 if result["passed"] else 1


def repro_path(report: Path) -> Path:
    """The failed run's scenario with its seed, next to the report (`run.json` -> `run.repro.toml`)."""
    return report.with_name(f"{report.stem}.repro.toml")


def _replay_options(
    recording: Path | None, subject: str, speed: float | None, rest_weight_limit: int | None, busy_poll_us: int
) -> list[str]:
    """`harness replay` and the options that are not in the scenario file (speed 0 cannot be written there)."""
    args = ["harness", "replay"]
    if recording is not None:
        args += ["--recording", str(recording)]
    if subject != DEFAULT_SUBJECT:
        args += ["--subject", subject]
    if speed == 0:
        args += ["--speed", "0"]
    if rest_weight_limit is not None:
        args += ["--rest-weight-limit", str(rest_weight_limit)]
    if busy_poll_us:
        args += ["--busy-poll-us", str(busy_poll_us)]
    return args


def subject_log_path(report: Path | None) -> Path | None:
    """The subject's stderr, kept next to the report (`run.json` -> `run.subject-stderr.log`)."""
    return None if report is None else report.with_name(f"{report.stem}.subject-stderr.log")


def speed_zero_notice(scenario: Scenario, speed: float | None) -> str | None:
    """One line for a run at speed 0 whose scenario has faults that need time to mean anything."""
    if (scenario.speed if speed is None else speed) != 0:
        return None
    timed = sorted({spec.kind for spec in scenario.faults} & TIMED_FAULTS)
    if not timed:
        return None
    return (
        f"note: at --speed 0 the stream does not wait for a subject that is reconnecting or held up, so "
        f"{', '.join(timed)} can leave it short of the end (docs/scenarios.md, 'At speed 0')"
    )


def check_output_path(path: Path | None, option: str) -> None:
    """Refuses, before the run rather than after it, an output path no file can be written to."""
    if path is None:
        return
    if path.is_dir():
        raise HarnessError(f"{option} {path}: is a folder; give a file path")
    if not path.parent.is_dir():
        raise HarnessError(f"{option} {path}: folder {path.parent} does not exist")


def _write(write: Callable[[Mapping[str, Any], Path], None], result: Mapping[str, Any], path: Path) -> None:
    try:
        write(result, path)
    except OSError as exc:
        raise HarnessError(f"cannot write {path}: {exc.strerror or exc}") from None
