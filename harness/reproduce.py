"""A failed run handed back as a file: its scenario with the run's seed (and speed) written in, so that
`harness replay --scenario FILE` alone reproduces it, whoever runs it and whatever the library's
scenario later becomes. The scenario's own text is kept (its comments, its fault tables as written);
only the top-level `seed` and `speed` lines are replaced, and a header says what failed and how to run it.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.report import size_text
from harness.scenarios import Scenario, parse_scenario

_TABLE = re.compile(r"^\s*\[")
HEADER_START = "# Reproduces a failed run"


def reproduction_text(scenario_text: str, seed: int, speed: float | None, header: Sequence[str]) -> str:
    """`scenario_text` with its top-level `seed` (and `speed`, when given and above 0) set, after `header`
    as comment lines and a blank one (replacing such a header already there). Keys before the first table
    are the top level in TOML; a key missing there is added."""
    lines = scenario_text.splitlines()
    if lines and lines[0].startswith(HEADER_START):  # a reproduction of a reproduction: one header, the new one
        end = next((i for i, line in enumerate(lines) if not line.startswith("#")), len(lines))
        lines = lines[end + 1 :] if end < len(lines) and not lines[end].strip() else lines[end:]
    top = next((i for i, line in enumerate(lines) if _TABLE.match(line)), len(lines))
    values = {"seed": str(seed)}
    if speed is not None and speed > 0:
        values["speed"] = repr(float(speed)) if not float(speed).is_integer() else str(int(speed))
    for key, value in values.items():
        pattern = re.compile(rf"^\s*{key}\s*=")
        at = next((i for i in range(top) if pattern.match(lines[i])), None)
        if at is None:
            lines.insert(0, f"{key} = {value}")
            top += 1
        else:
            lines[at] = f"{key} = {value}"
    head = [*(f"# {line}" for line in header), ""] if header else []
    return "\n".join([*head, *lines]) + "\n"


def write_reproduction(
    report: Mapping[str, Any],
    scenario: Scenario,
    path: Path,
    command: Sequence[str],
    speed: float | None,
) -> dict[str, Any]:
    """Writes the file and returns the report's `reproduce` entry. `command` is the `harness replay`
    command line without `--scenario` (recording, subject, options), which the header completes."""
    if scenario.path is None:
        raise ValueError("a scenario built from text has no file to reproduce from")
    try:
        text = scenario.path.read_text(encoding="utf-8")
    except OSError as exc:
        raise HarnessError(f"cannot read {scenario.path} to write its reproduction: {exc.strerror or exc}") from None
    run = shlex.join([*command[:2], "--scenario", str(path), *command[2:]])
    failed = [row["name"] for row in report["expectations"] if row["passed"] is False]
    header = [
        f"{HEADER_START.removeprefix('# ')} of {report['scenario']} (seed {report['seed']}) on {report['recording']}.",
        f"Failed: {'; '.join(failed) or 'the run'}.",
        *_first_divergence(report),
        f"Run: {run}",
    ]
    text = reproduction_text(text, int(report["seed"]), speed, header)
    parse_scenario(text, str(path))  # what is written must load, or it reproduces nothing
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise HarnessError(f"cannot write {path}: {exc.strerror or exc}") from None
    return {"scenario_file": str(path), "seed": report["seed"], "command": run}


def _first_divergence(report: Mapping[str, Any]) -> list[str]:
    examples = report["sync"]["divergence_examples"]
    if not examples:
        return []
    example = examples[0]
    line = f"First divergence: {example['symbol']} at update {example['update_id']}: {example['reason']}"
    first = example.get("first_difference")
    if first:
        subject, oracle = size_text(first["subject"]), size_text(first["oracle"])
        line += f" ({first['side']} at {first['price']}: subject {subject}, oracle {oracle})"
    return [line + "."]
