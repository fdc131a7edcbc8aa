"""What a suite keeps of each cell, and how it shows them: progress lines, the summary table, JSON, JUnit.

Pure apart from `write_suite_junit`. A cell's record is small on purpose (the verdict, the expectations,
the figures a baseline compares, the command that reproduces it): the full report of any cell is one
`harness replay` away, and a shard's JSON must stay small enough to pass between CI jobs.
docs/ci.md describes the summary document (`SUITE_SCHEMA_VERSION`).
"""

from __future__ import annotations

import shlex
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from os import PathLike
from typing import Any

from harness.report import NO_DIVERGENCE
from harness.subject import DEFAULT_SUBJECT
from harness.suite_matrix import SuiteCell

SUITE_SCHEMA_VERSION = 1
PASS, FAIL, ERROR = "pass", "fail", "error"
BAD_INPUT, CRASH = "bad_input", "crash"

CellResult = dict[str, Any]


def reproduce_command(cell: SuiteCell, subject: str, rest_weight_limit: int | None = None) -> str:
    """The one `harness replay` command that runs this cell again, alone, with its full report."""
    args = ["harness", "replay", "--scenario", cell.scenario_source, "--seed", str(cell.seed)]
    if cell.recording is not None:
        args += ["--recording", cell.recording]
    if subject != DEFAULT_SUBJECT:
        args += ["--subject", subject]
    if rest_weight_limit is not None:
        args += ["--rest-weight-limit", str(rest_weight_limit)]
    return shlex.join(args)


def _base(cell: SuiteCell, subject: str, duration_s: float, rest_weight_limit: int | None) -> CellResult:
    """`rest_weight_limit` as the suite was given it (None: each venue's own, which the report names)."""
    return {
        "key": cell.key,
        "scenario": cell.scenario,
        "scenario_source": cell.scenario_source,
        "recording": cell.recording,
        "recording_name": cell.recording_name,
        "seed": cell.seed,
        "speed": cell.speed,
        "subject": subject,
        "rest_weight_limit": rest_weight_limit,
        "duration_s": round(duration_s, 3),
        "reproduce": reproduce_command(cell, subject, rest_weight_limit),
    }


def cell_result(
    cell: SuiteCell,
    subject: str,
    report: Mapping[str, Any],
    duration_s: float,
    rest_weight_limit: int | None = None,
) -> CellResult:
    """A finished replay's record: verdict, expectations and the figures a baseline compares."""
    sync = report["sync"]
    recovery = sync["recovery_ms"]
    return {
        **_base(cell, subject, duration_s, rest_weight_limit),
        "status": PASS if report["passed"] else FAIL,
        "expectations": [dict(row) for row in report["expectations"]],
        "divergent": sync["divergent"],
        "recovery_ms": {key: recovery[key] for key in ("count", "unrecovered", "p99", "max")},
        "e2e_p99_us": report["latency_us"]["e2e"]["p99"],
        "error": None,
    }


def error_result(
    cell: SuiteCell,
    subject: str,
    error_kind: str,
    message: str,
    duration_s: float,
    rest_weight_limit: int | None = None,
) -> CellResult:
    """A cell that produced no verdict: bad input found only when it ran, or a crash (`message` is the trace)."""
    return {
        **_base(cell, subject, duration_s, rest_weight_limit),
        "status": ERROR,
        "expectations": [],
        "divergent": None,
        "recovery_ms": None,
        "e2e_p99_us": None,
        "error": {"kind": error_kind, "message": message},
    }


def failing_expectations(result: Mapping[str, Any]) -> list[str]:
    return [row["name"] for row in result["expectations"] if row["passed"] is False]


def progress_line(done: int, total: int, result: Mapping[str, Any]) -> str:
    """One plain line per finished cell (a CI log has no terminal); a failing cell adds its reproduce line."""
    width = len(str(total))
    head = f"[{done:>{width}}/{total}] {result['status'].upper():<5} {result['key']}  {result['duration_s']:.1f}s"
    if result["status"] == ERROR:
        error = result["error"]
        first = error["message"].strip().splitlines()[-1] if error["message"].strip() else error["kind"]
        return f"{head}  {error['kind']}: {first}\n    reproduce: {result['reproduce']}"
    if result["status"] == FAIL:
        failed = [f"{row['name']} (got {row['value']!r})" for row in result["expectations"] if row["passed"] is False]
        return f"{head}  failed: {'; '.join(failed)}\n    reproduce: {result['reproduce']}"
    return f"{head}  recovery p99 {_ms(result['recovery_ms']['p99'])}  e2e p99 {_us(result['e2e_p99_us'])}"


def summary_table(results: Sequence[Mapping[str, Any]]) -> str:
    """Every cell in matrix order, as aligned plain text."""
    header = ("cell", "verdict", "time", "recovery p99", "e2e p99", "failed")
    rows = [header]
    for result in sorted(results, key=lambda r: (r["scenario"], r["recording_name"], r["seed"])):
        recovery = result["recovery_ms"] or {}
        failed = failing_expectations(result) if result["status"] == FAIL else []
        if result["status"] == ERROR:
            failed = [result["error"]["kind"]]
        rows.append(
            (
                result["key"],
                result["status"].upper(),
                f"{result['duration_s']:.1f}s",
                _ms(recovery.get("p99")),
                _us(result["e2e_p99_us"]),
                ", ".join(failed),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=True)) + "  " + row[-1] for row in rows
    ]
    return "\n".join(line.rstrip() for line in lines)


def totals(results: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    counts = {"cells": len(results), PASS: 0, FAIL: 0, ERROR: 0}
    for result in results:
        counts[result["status"]] += 1
    return {"cells": counts["cells"], "passed": counts[PASS], "failed": counts[FAIL], "errors": counts[ERROR]}


def suite_summary(
    results: Sequence[Mapping[str, Any]],
    *,
    subject: str,
    shard: tuple[int, int] | None,
    matrix_size: int,
    wall_s: float | None,
    jobs: int | None,
    baseline: Mapping[str, Any] | None,
    passed: bool,
) -> dict[str, Any]:
    """The JSON summary: what `--merge` reads back, and what a CI job keeps as an artifact."""
    return {
        "suite_schema_version": SUITE_SCHEMA_VERSION,
        "passed": passed,
        "subject": subject,
        "shard": None if shard is None else f"{shard[0]}/{shard[1]}",
        "matrix_size": matrix_size,
        "jobs": jobs,
        "wall_s": None if wall_s is None else round(wall_s, 3),
        "totals": totals(results),
        "baseline": None if baseline is None else dict(baseline),
        "cells": sorted((dict(r) for r in results), key=lambda r: (r["scenario"], r["recording_name"], r["seed"])),
    }


def write_suite_junit(
    results: Sequence[Mapping[str, Any]],
    regressions: Sequence[Mapping[str, Any]],
    known_failures: Mapping[str, Sequence[str]],
    path: str | PathLike[str],
) -> None:
    """One testsuite per scenario; one testcase per cell and expectation, plus one per baseline regression.

    An expectation that failed in the baseline too is `skipped` (known), so the file agrees with the
    exit code; a cell that produced no verdict is one testcase with an `error`.
    """
    root = ET.Element("testsuites", name="harness.suite")
    by_scenario: dict[str, list[Mapping[str, Any]]] = {}
    for result in sorted(results, key=lambda r: (r["scenario"], r["recording_name"], r["seed"])):
        by_scenario.setdefault(result["scenario"], []).append(result)
    regressed: dict[str, list[Mapping[str, Any]]] = {}
    for row in regressions:
        regressed.setdefault(row["key"], []).append(row)
    for scenario, rows in by_scenario.items():
        suite = ET.SubElement(root, "testsuite", name=f"harness.suite.{scenario}")
        counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        for result in rows:
            classname = f"suite.{scenario}.{result['recording_name']}.seed{result['seed']}"
            known = set(known_failures.get(result["key"], ()))
            cases: list[tuple[str, str | None, str]] = []
            if result["status"] == ERROR:
                cases.append(("run", "error", result["error"]["message"]))
            for row in result["expectations"]:
                if row["passed"]:
                    cases.append((row["name"], None, ""))
                elif row["passed"] is None:
                    cases.append((row["name"], "skipped", f"not applicable: {row['reason']}"))
                elif row["name"] in known:
                    cases.append((row["name"], "skipped", "fails in the baseline too"))
                else:
                    detail = f"value {row['value']!r} does not meet {row['threshold']!r}; {result['reproduce']}"
                    cases.append((row["name"], "failure", detail))
            for row in regressed.get(result["key"], []):
                if row["what"] not in ("expectation", "divergence"):
                    cases.append((f"baseline: {row['what']}", "failure", f"{row['detail']}; {result['reproduce']}"))
            for n, (name, outcome, text) in enumerate(cases):
                # The cell's time on its first case only, so a viewer's sum is the suite's time.
                spent = result["duration_s"] if n == 0 else 0
                case = ET.SubElement(suite, "testcase", classname=classname, name=name, time=f"{spent}")
                counts["tests"] += 1
                if outcome is not None:
                    counts[{"error": "errors", "failure": "failures", "skipped": "skipped"}[outcome]] += 1
                    element = ET.SubElement(case, outcome, message=text.splitlines()[-1] if text else outcome)
                    if outcome != "skipped":
                        element.text = text
        for key, value in counts.items():
            suite.set(key, str(value))
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)


def divergence_expectation(name: str) -> bool:
    """The built-in divergence check, which a baseline reports as a divergence rather than an expectation."""
    return name == NO_DIVERGENCE


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f} ms"


def _us(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f} µs" if value < 10_000 else f"{value / 1000:,.1f} ms"
