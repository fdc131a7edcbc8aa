"""Scenario files: a named set of faults, a pacing, a default seed and the expectations a verdict checks.

Loading is pure apart from reading the file. Everything is checked on load, so a typo fails with one
line naming the file and the key before a server starts; `harness replay` then calls `Scenario.plan`
for the schedule and `Scenario.evaluate` on the finished report. docs/scenarios.md is the format.
"""

from __future__ import annotations

import difflib
import math
import operator
import re
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.observations import SYNC_EVENT_KINDS
from harness.venues.dialect import VenueDialect
from replayer.faults import FAULT_KINDS, FaultPlan, FaultSpec, build_schedule, parse_fault
from replayer.timeline import Frame

LIBRARY = Path(__file__).resolve().parent.parent / "scenarios"
"""The bundled scenario library (a source checkout or an editable install)."""

OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    ">": operator.gt,
}
_CONDITION = re.compile(r"^\s*(<=|>=|==|!=|<|>)\s*(\S+)\s*$")
_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
_METRIC_REF = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)+$")
_TOP_KEYS = ("name", "description", "speed", "seed", "stale_limit", "faults", "expect")
DEFAULT_STALE_LIMIT_S = 5.0
"""Seconds of wall time a book may claim synced while nothing reaches the subject and updates are due
(`sync.stale_synced`): past a watchdog's usual 1-3 s, far below a frozen connection."""


@dataclass(frozen=True, slots=True)
class ExpectationResult:
    """`passed` is None when the expectation is not applicable (`reason` says why): it is neither."""

    name: str
    threshold: Any
    value: Any
    passed: bool | None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Expectation:
    """`metric` is a dotted path into the JSON report; it holds when `value <op> threshold`.

    A threshold that is a string names another metric of the same report (`"<= sync.recording_gaps"`),
    for a bound the run itself sets: a recording with holes loses sync once per hole on any correct
    subject. A metric missing from the report, or of another type than the threshold (a bool against a
    number), fails: an expectation never passes by not being measured.
    """

    metric: str
    op: str
    threshold: bool | int | float | str

    @property
    def name(self) -> str:
        shown = str(self.threshold).lower() if isinstance(self.threshold, bool) else self.threshold
        return f"{self.metric} {self.op} {shown}"

    def evaluate(self, report: Mapping[str, Any]) -> ExpectationResult:
        value = _metric_value(report, self.metric)
        threshold = _metric_value(report, self.threshold) if isinstance(self.threshold, str) else self.threshold
        if isinstance(threshold, bool):
            passed = isinstance(value, bool) and OPERATORS[self.op](value, threshold)
        else:
            passed = _is_number(value) and _is_number(threshold) and OPERATORS[self.op](value, threshold)
        return ExpectationResult(self.name, threshold, value, passed)


def _metric_value(report: Mapping[str, Any], metric: str) -> Any:
    value: Any = report
    for part in metric.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass(frozen=True, slots=True)
class Scenario:
    """A loaded, checked scenario. `speed` is the replay pacing (1 = recorded timing)."""

    name: str
    description: str
    speed: float
    seed: int
    faults: tuple[FaultSpec, ...]
    expectations: tuple[Expectation, ...]
    path: Path | None = None
    stale_limit_s: float = DEFAULT_STALE_LIMIT_S
    """Wall-clock seconds of silence (with updates due) after which a book still synced is stale."""

    def plan(self, frames: Sequence[Frame], seed: int | None = None, venue: VenueDialect | None = None) -> FaultPlan:
        """The fault schedule on these frames, with the scenario's seed unless `seed` is given; with
        `venue`, the faults it cannot have are listed in `not_applicable` instead of armed."""
        return build_schedule(frames, self.faults, self.seed if seed is None else seed, venue)

    def evaluate(self, report: Mapping[str, Any]) -> list[ExpectationResult]:
        """Each expectation's result; one that counts a fault kind every fault of which the venue cannot
        have (the report's `faults_not_applicable`) is not applicable, with the plan's reasons."""
        missing = _kinds_not_applicable(report)
        results = []
        for e in self.expectations:
            refs = [e.metric, e.threshold] if isinstance(e.threshold, str) else [e.metric]
            kinds = [ref.removeprefix("faults.") for ref in refs if ref.startswith("faults.")]
            reasons = [missing[kind] for kind in kinds if kind in missing]
            if reasons:
                value = _metric_value(report, e.metric)
                results.append(ExpectationResult(e.name, e.threshold, value, None, "; ".join(reasons)))
            else:
                results.append(e.evaluate(report))
        return results


def _kinds_not_applicable(report: Mapping[str, Any]) -> dict[str, str]:
    """Fault kind -> why, for the kinds of which every fault of the scenario was left out of the plan."""
    left_out: Mapping[str, str] = report.get("faults_not_applicable") or {}
    by_id: Mapping[str, Mapping[str, Any]] = report.get("faults_by_id") or {}
    kinds: dict[str, list[str]] = {}
    for fault_id, row in by_id.items():
        kinds.setdefault(row["kind"], []).append(fault_id)
    return {
        kind: "; ".join(dict.fromkeys(left_out[i] for i in ids))
        for kind, ids in kinds.items()
        if all(i in left_out for i in ids)
    }


def load_scenario(name_or_path: str | Path) -> Scenario:
    """A library scenario by name (`gap_storm`) or any scenario file by path."""
    text = str(name_or_path)
    path = Path(name_or_path)
    if text.endswith(".toml") or "/" in text or "\\" in text or path.is_file():
        if not path.is_file():
            raise HarnessError(f"{path}: no such scenario file")
        return _load_file(path, library=False)
    if not _NAME.match(text) or not (LIBRARY / f"{text}.toml").is_file():
        known = ", ".join(s.stem for s in _library_files()) or "none"
        raise HarnessError(f"unknown scenario {text!r}; known scenarios: {known}")
    return _load_file(LIBRARY / f"{text}.toml", library=True)


def list_scenarios() -> list[Scenario]:
    """Every library scenario, by name; a broken library file raises its own error."""
    return [_load_file(path, library=True) for path in _library_files()]


def parse_scenario(text: str, source: str, expected_name: str | None = None) -> Scenario:
    """A Scenario from TOML text; `source` names it in errors (usually the file's path)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise HarnessError(f"{source}: not valid TOML: {exc}") from None
    for key in data:
        if key not in _TOP_KEYS:
            raise HarnessError(f"{source}: unknown key {key!r}; expected one of {', '.join(_TOP_KEYS)}")
    name = _require(data, "name", str, "a string", source)
    if not _NAME.match(name):
        raise HarnessError(f"{source}: key 'name': expected letters, digits, '_' or '-', got {name!r}")
    if expected_name is not None and name != expected_name:
        raise HarnessError(f"{source}: key 'name': expected {expected_name!r} (the file's name), got {name!r}")
    description = _require(data, "description", str, "a string", source)
    speed = _require(data, "speed", (int, float), "a number > 0", source)
    if not (speed > 0 and math.isfinite(speed)):
        raise HarnessError(f"{source}: key 'speed': expected a number > 0, got {speed!r}")
    seed = _require(data, "seed", int, "an integer", source)
    stale_limit = data.get("stale_limit", DEFAULT_STALE_LIMIT_S)
    if isinstance(stale_limit, bool) or not isinstance(stale_limit, int | float) or not 0 < stale_limit < math.inf:
        raise HarnessError(f"{source}: key 'stale_limit': expected seconds > 0, got {stale_limit!r}")
    raw_faults = data.get("faults", [])
    if not isinstance(raw_faults, list) or not all(isinstance(t, dict) for t in raw_faults):
        raise HarnessError(f"{source}: key 'faults': expected [[faults]] tables")
    faults = tuple(parse_fault(table, f"{source}: faults[{i}]") for i, table in enumerate(raw_faults))
    expect = data.get("expect")
    if not isinstance(expect, dict) or not expect:
        raise HarnessError(f"{source}: missing key 'expect' (expected an [expect] table with at least one threshold)")
    expectations = tuple(_expectations(expect, "", source))
    for expectation in expectations:
        problem = unknown_metric(expectation.metric)
        if problem:
            raise HarnessError(f"{source}: expect key {expectation.metric!r}: {problem}")
        if isinstance(expectation.threshold, str):
            problem = unknown_metric(expectation.threshold)
            if problem:
                where = f"expect key {expectation.metric!r}: threshold {expectation.threshold!r}"
                raise HarnessError(f"{source}: {where}: {problem}")
    return Scenario(name, description, float(speed), seed, faults, expectations, stale_limit_s=float(stale_limit))


OPEN_SECTIONS = ("venue", "subject", "queue")
"""Report sections filled from what the venue and the subject say at run time: only the section is checked."""


def unknown_metric(metric: str) -> str | None:
    """Why `metric` names nothing a report holds, or None when it does.

    The report's shape is taken from a report built on empty findings, so a metric the report gains is
    known here at once; under `faults` any fault kind, under `sync.events` any sync event kind.
    """
    parts = metric.split(".")
    if parts[0] in OPEN_SECTIONS:
        return None
    node: Any = _report_shape()
    for i, part in enumerate(parts):
        if not isinstance(node, Mapping):
            return f"{'.'.join(parts[:i])} is a value, not a section"
        if part not in node:
            here = ".".join(parts[:i])
            keys = sorted(node) or sorted(_open_keys(here))
            if not node and part in keys and i == len(parts) - 1:
                return None
            where = f"under {here!r}" if here else "in the report"
            close = difflib.get_close_matches(part, keys, n=1)
            hint = f"; did you mean {'.'.join([*parts[:i], close[0]])!r}?" if close else ""
            return f"no metric {part!r} {where} (docs/report-schema.md){hint}"
        node = node[part]
    if isinstance(node, Mapping):
        return "names a section, not a value"
    return None


def _open_keys(section: str) -> tuple[str, ...]:
    """The keys a report section built from a run's counts may have (empty in the skeleton)."""
    if section.split(".")[0].startswith("faults"):
        return FAULT_KINDS
    if section == "sync.events":
        return tuple(SYNC_EVENT_KINDS)
    return ()


@cache
def _report_shape() -> dict[str, Any]:
    from harness.checker import Findings
    from harness.report import build_report

    return build_report(Findings(), scenario="", seed=0, recording="", faults={})


def _load_file(path: Path, library: bool) -> Scenario:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise HarnessError(f"{path}: cannot read scenario ({exc.__class__.__name__})") from None
    scenario = parse_scenario(text, str(path), expected_name=path.stem if library else None)
    return replace(scenario, path=path)


def _library_files() -> list[Path]:
    return sorted(LIBRARY.glob("*.toml")) if LIBRARY.is_dir() else []


def _require(data: Mapping[str, Any], key: str, types: type | tuple[type, ...], expected: str, source: str) -> Any:
    if key not in data:
        raise HarnessError(f"{source}: missing key {key!r} (expected {expected})")
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, types):
        raise HarnessError(f"{source}: key {key!r}: expected {expected}, got {value!r}")
    return value


def _expectations(table: Mapping[str, Any], prefix: str, source: str) -> list[Expectation]:
    """`[expect]` holds `metric = value` (equality) or `metric = "<op> value"`; dotted keys nest."""
    found = []
    for key, value in table.items():
        metric = f"{prefix}{key}"
        if isinstance(value, dict):
            found.extend(_expectations(value, f"{metric}.", source))
            continue
        op, threshold = "==", value
        if isinstance(value, str):
            match = _CONDITION.match(value)
            threshold = _threshold(match.group(2)) if match else None
            if match is None or threshold is None:
                raise HarnessError(
                    f"{source}: expect key {metric!r}: expected a number, true/false, or a condition like "
                    f"'>= 10' or '<= sync.recording_gaps', got {value!r}"
                )
            op = match.group(1)
        elif not isinstance(value, bool | int | float):
            raise HarnessError(f"{source}: expect key {metric!r}: expected a number, true/false or a condition")
        if isinstance(threshold, float) and math.isnan(threshold):
            raise HarnessError(f"{source}: expect key {metric!r}: nan compares false with everything; give a number")
        if isinstance(threshold, bool) and op not in ("==", "!="):
            raise HarnessError(f"{source}: expect key {metric!r}: true/false takes only == or !=, got {op!r}")
        found.append(Expectation(metric, op, threshold))
    return found


def _threshold(text: str) -> bool | int | float | str | None:
    """A number, true/false, or the dotted name of another metric (checked against the report's shape later)."""
    if text in ("true", "false"):
        return text == "true"
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            continue
    return text if _METRIC_REF.match(text) else None
