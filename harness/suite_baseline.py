"""Baselines: what a suite's cells looked like when someone last accepted them, and what got worse since.

Pure apart from reading and writing the file. The file states its own margins, so a team tightens or
loosens them in review like any other change. A timing figure regresses only when it is worse than
the baseline by more than both its relative and its absolute margin: a relative margin alone turns a
0.4 ms to 0.9 ms wobble on a busy runner into a failure. Divergence and expectations have no margin.
Cells the baseline does not know are reported as new, never as failures; baseline cells a run did
not include (another shard, a smaller matrix) are left alone, in the comparison and on update.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from harness.errors import HarnessError
from harness.suite_results import ERROR, PASS, divergence_expectation, failing_expectations

BASELINE_VERSION = 1
DEFAULT_MARGINS: dict[str, dict[str, float]] = {
    "recovery_p99_ms": {"relative": 1.0, "absolute": 1000.0},
    "e2e_p99_us": {"relative": 3.0, "absolute": 1_000_000.0},
}
"""Wide enough for a busy shared machine, where the same cell's figures moved this much between two runs
(docs/ci.md, "Baselines"); tighten them on a quiet dedicated runner."""

MARGIN_UNITS = {"recovery_p99_ms": "ms", "e2e_p99_us": "µs"}
MARGIN_LABELS = {"recovery_p99_ms": "recovery p99", "e2e_p99_us": "e2e p99"}


@dataclass(slots=True)
class BaselineComparison:
    """`regressions`: `{key, what, detail}` (what: divergence, expectation, unrecovered, recovery, e2e p99);
    `known_failures`: per cell, expectations that failed in the baseline too; `new_cells`: keys the
    baseline does not know; `not_run`: baseline keys this run did not include."""

    regressions: list[dict[str, Any]] = field(default_factory=list)
    known_failures: dict[str, list[str]] = field(default_factory=dict)
    new_cells: list[str] = field(default_factory=list)
    not_run: int = 0

    def as_dict(self, path: str) -> dict[str, Any]:
        return {
            "path": path,
            "regressions": self.regressions,
            "known_failures": self.known_failures,
            "new_cells": self.new_cells,
            "not_run": self.not_run,
        }


def load_baseline(path: Path) -> dict[str, Any]:
    """A baseline file, checked; every way it can be wrong is one error line naming the file."""
    try:
        doc = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        raise HarnessError(f"--baseline {path}: no such file (write one with --update-baseline)") from None
    except OSError as exc:
        raise HarnessError(f"--baseline {path}: cannot read: {exc.strerror or exc}") from None
    except orjson.JSONDecodeError:
        raise HarnessError(f"--baseline {path}: not JSON") from None
    if not isinstance(doc, dict) or doc.get("baseline_version") != BASELINE_VERSION:
        raise HarnessError(f"--baseline {path}: not a version {BASELINE_VERSION} suite baseline")
    margins = doc.get("margins")
    if not isinstance(margins, dict) or set(margins) != set(DEFAULT_MARGINS):
        raise HarnessError(f"--baseline {path}: 'margins' must name exactly {', '.join(DEFAULT_MARGINS)}")
    for name, margin in margins.items():
        if not isinstance(margin, dict) or set(margin) != {"relative", "absolute"}:
            raise HarnessError(f"--baseline {path}: margin {name!r} must have 'relative' and 'absolute'")
        for part, value in margin.items():
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise HarnessError(f"--baseline {path}: margin {name}.{part} must be a number >= 0, got {value!r}")
    if not isinstance(doc.get("cells"), dict) or not isinstance(doc.get("subject"), str):
        raise HarnessError(f"--baseline {path}: needs 'subject' and a 'cells' object")
    return doc


def write_baseline(doc: Mapping[str, Any], path: Path) -> None:
    try:
        path.write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n")
    except OSError as exc:
        raise HarnessError(f"cannot write baseline {path}: {exc.strerror or exc}") from None


def baseline_entry(result: Mapping[str, Any]) -> dict[str, Any]:
    """What a baseline keeps of a cell: enough to tell a new failure or a slower recovery."""
    recovery = result["recovery_ms"]
    return {
        "passed": result["status"] == PASS,
        "failing": failing_expectations(result),
        "divergent": result["divergent"],
        "recovery_p99_ms": recovery["p99"],
        "unrecovered": recovery["unrecovered"],
        "e2e_p99_us": result["e2e_p99_us"],
    }


def updated_baseline(
    previous: Mapping[str, Any] | None, results: Sequence[Mapping[str, Any]], subject: str
) -> dict[str, Any]:
    """The baseline after accepting `results`: their cells replaced, the others and the margins kept.

    A cell that produced no verdict keeps its old entry: there is nothing to accept.
    """
    cells = dict(previous["cells"]) if previous is not None and previous["subject"] == subject else {}
    for result in results:
        if result["status"] != ERROR:
            cells[result["key"]] = baseline_entry(result)
    margins = previous["margins"] if previous is not None else DEFAULT_MARGINS
    return {"baseline_version": BASELINE_VERSION, "subject": subject, "margins": margins, "cells": cells}


def compare(baseline: Mapping[str, Any], results: Sequence[Mapping[str, Any]], source: str) -> BaselineComparison:
    """Each cell against its baseline entry; `source` names the baseline file in errors."""
    subjects = {result["subject"] for result in results}
    if subjects and subjects != {baseline["subject"]}:
        raise HarnessError(
            f"--baseline {source}: made with subject {baseline['subject']!r}, this suite ran "
            f"{', '.join(sorted(subjects))}; a baseline belongs to one subject"
        )
    out = BaselineComparison()
    cells: Mapping[str, Any] = baseline["cells"]
    keys = {result["key"] for result in results}
    out.not_run = sum(1 for key in cells if key not in keys)
    for result in sorted(results, key=lambda r: r["key"]):
        key = result["key"]
        base = cells.get(key)
        if base is None:
            out.new_cells.append(key)
            continue
        if result["status"] == ERROR:
            continue
        known = [name for name in failing_expectations(result) if name in base.get("failing", ())]
        if known:
            out.known_failures[key] = known
        out.regressions += _cell_regressions(key, base, result, baseline["margins"])
    return out


def _cell_regressions(
    key: str, base: Mapping[str, Any], result: Mapping[str, Any], margins: Mapping[str, Mapping[str, float]]
) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    detail: str | None
    if not base.get("divergent") and result["divergent"]:
        detail = f"new silent divergence: {result['divergent']} synced books differ from the oracle (baseline 0)"
        found.append({"key": key, "what": "divergence", "detail": detail})
    for name in failing_expectations(result):
        if name not in base.get("failing", ()) and not divergence_expectation(name):
            value = next(row["value"] for row in result["expectations"] if row["name"] == name)
            found.append({"key": key, "what": "expectation", "detail": f"newly failing: {name} (got {value!r})"})
    unrecovered, before = result["recovery_ms"]["unrecovered"], base.get("unrecovered") or 0
    if unrecovered > before:
        detail = f"fault windows never recovered: {unrecovered} (baseline {before}, +{unrecovered - before})"
        found.append({"key": key, "what": "unrecovered", "detail": detail})
    figures = {"recovery_p99_ms": result["recovery_ms"]["p99"], "e2e_p99_us": result["e2e_p99_us"]}
    for name, value in figures.items():
        detail = worse_by(name, base.get(name), value, margins[name])
        if detail is not None:
            found.append(
                {"key": key, "what": "recovery" if name.startswith("recovery") else "e2e p99", "detail": detail}
            )
    return found


def worse_by(name: str, before: float | None, now: float | None, margin: Mapping[str, float]) -> str | None:
    """Says how much worse `now` is than `before`, or None when within the margin (or either is missing)."""
    if before is None or now is None:
        return None
    delta = now - before
    if delta <= margin["absolute"] or now <= before * (1 + margin["relative"]):
        return None
    unit = MARGIN_UNITS[name]
    pct = f", +{delta / before:.0%}" if before > 0 else ""
    return (
        f"{MARGIN_LABELS[name]} {now:,.1f} {unit} against baseline {before:,.1f} {unit}: worse by "
        f"{delta:,.1f} {unit}{pct} (margin {margin['relative']:.0%} and {margin['absolute']:,g} {unit})"
    )
