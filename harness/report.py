"""The run's report: a JSON document (docs/report-schema.md), a terminal table, and JUnit XML for CI.

`build_report` turns the checker's Findings plus what the runner knows (scenario, seed, recording,
faults served and armed, queue figures) into a plain dict. The runner then evaluates the scenario's expectations
against that dict (harness/scenarios.py reads it by dotted path) and hands the results back to
`apply_expectations`, which sets `passed`. Silent divergence fails a run whatever the scenario says.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from dataclasses import asdict
from os import PathLike
from typing import Any

import orjson
from rich import box
from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from harness.checker import FLAGS, STAGES, Findings
from harness.html_report_data import pictures

SCHEMA_VERSION = 1
NO_DIVERGENCE = "no silent divergence"
NOT_APPLICABLE = "not_applicable"
"""An expectation's status when it counts a fault the venue cannot have (docs/report-schema.md)."""
LATENCY_ROWS = ("e2e", "e2e_intended", *STAGES)
FLAG_ROWS = {
    "books_before_snapshot": "books before a snapshot",
    "unrequested_output": "output for symbols not asked for",
    "dark_books": "dark books",
    "stale_synced": "stale but synced",
}
PERCENTILE_KEYS = ("p50", "p90", "p99", "p999", "max")


def build_report(
    findings: Findings,
    *,
    scenario: str,
    seed: int,
    recording: str,
    faults: Mapping[str, int],
    faults_armed: Mapping[str, int] | None = None,
    faults_by_id: Mapping[str, Mapping[str, Any]] | None = None,
    queue: Mapping[str, Any] | None = None,
    speed: float | None = None,
) -> dict[str, Any]:
    """The report dict; `passed` reflects divergence only until the scenario's results go to apply_expectations.

    `faults` are the units served, `faults_armed` those the plan armed (the same as served when omitted:
    a caller that cannot tell them apart), `faults_by_id` both per fault of the scenario.
    """
    f = findings
    latency = {name: _latency(f, name) for name in ("e2e", "e2e_intended")}
    report: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "passed": False,
        "scenario": scenario,
        "seed": seed,
        "recording": recording,
        "speed": speed,
        "faults": {kind: int(n) for kind, n in sorted(faults.items())},
        "faults_armed": {kind: int(n) for kind, n in sorted((faults_armed or faults).items())},
        "faults_by_id": {fault_id: dict(row) for fault_id, row in (faults_by_id or {}).items()},
        "frames": {
            "sent": f.frames_sent,
            "depth_sent": f.depth_frames_sent,
            "clean_depth": f.clean_depth_frames,
            "observed": f.observations,
        },
        "sync": {
            "checks": f.checks,
            "coverage": _coverage(f),
            "before_first_snapshot": f.before_first_snapshot,
            "divergent": f.divergent,
            "unknown_update_ids": f.unknown_update_ids,
            "holes_bridged": f.holes_bridged,
            "divergence_examples": f.examples,
            "unverified": f.unverified,
            "gaps_injected": f.gaps_injected,
            "gaps_detected": f.gaps_detected,
            "out_of_order_sent": f.out_of_order_sent,
            "duplicates_applied": f.duplicates_applied,
            "reorders_applied": f.reorders_applied,
            "resyncs": f.resyncs,
            "losses_detected": f.losses_detected,
            "recovered": f.recovered,
            "episodes": f.episodes,
            "episodes_verified": f.episodes_verified,
            **{flag: getattr(f, flag) for flag in FLAGS},
            "stale_limit_s": None if f.stale_limit_ns is None else f.stale_limit_ns / 1e9,
            "flags": [dict(row) for row in f.flags],
            "unverified_episodes": [dict(row) for row in f.unverified_episodes],
            "unsynced_ms": round(f.unsynced_ns / 1e6, 3),
            "recovery_ms": _recovery(f),
            "windows": [
                {
                    "kind": r.kind,
                    "fault_id": r.fault_id,
                    "symbol": r.symbol,
                    "recovery_ms": None if r.recovery_ns is None else round(r.recovery_ns / 1e6, 3),
                }
                for r in f.recoveries
            ],
            "final_book_correct": f.final_book_correct,
            "final": [
                {
                    "symbol": c.symbol,
                    "correct": c.correct,
                    "detail": c.detail,
                    "update_id": c.update_id,
                    "oracle_last_update_id": c.oracle_last_update_id,
                    "depth": None if c.depth is None else asdict(c.depth),
                }
                for c in f.finals
            ],
            "events": dict(sorted(f.events.items())),
            "recording_gaps": f.recording_gaps,
        },
        "latency_us": {
            **latency,
            "stages": {stage: _latency(f, stage) for stage in STAGES},
            "unjoined": f.unjoined,
            "negative": f.negative_latencies,
        },
        "queue": dict(queue or {}),
        "expectations": [],
        "pictures": pictures(f),
    }
    apply_expectations(report, ())
    return report


def apply_expectations(report: dict[str, Any], results: Iterable[Any]) -> dict[str, Any]:
    """Sets `expectations` (the built-in divergence check first, then `results`) and `passed`.

    Each result is a mapping or an object with `name`, `threshold`, `value` and `passed`.
    """
    divergent = report["sync"]["divergent"]
    rows = [{"name": NO_DIVERGENCE, "threshold": "sync.divergent == 0", "value": divergent, "passed": divergent == 0}]
    for result in results:
        get = result.get if isinstance(result, Mapping) else lambda key, r=result: getattr(r, key)
        passed = get("passed")
        row = {
            "name": str(get("name")),
            "threshold": _plain(get("threshold")),
            "value": _plain(get("value")),
            "passed": None if passed is None else bool(passed),
        }
        if passed is None:  # neither passed nor failed: the venue cannot have what it counts
            row["reason"] = str(get("reason"))
        rows.append(row)
    for row in rows:
        row["status"] = {True: "passed", False: "failed", None: NOT_APPLICABLE}[row["passed"]]
    report["expectations"] = rows
    report["passed"] = all(row["passed"] is not False for row in rows)
    by_id = report.get("faults_by_id") or {}
    report["all_faults_not_applicable"] = bool(by_id) and set(by_id) <= set(report.get("faults_not_applicable") or {})
    return report


def dumps_report(report: Mapping[str, Any]) -> bytes:
    return orjson.dumps(report, option=orjson.OPT_INDENT_2)


def write_report(report: Mapping[str, Any], path: str | PathLike[str]) -> None:
    with open(path, "wb") as handle:
        handle.write(dumps_report(report))


def write_junit(report: Mapping[str, Any], path: str | PathLike[str]) -> None:
    """One testcase per expectation (the divergence check included), in a suite named for the scenario."""
    rows = report["expectations"]
    failures = [row for row in rows if row["passed"] is False]
    suite = ET.Element(
        "testsuite",
        name=f"harness.replay.{report['scenario']}",
        tests=str(len(rows)),
        failures=str(len(failures)),
        errors="0",
        skipped=str(sum(row["passed"] is None for row in rows)),
    )
    props = ET.SubElement(suite, "properties")
    for key in ("scenario", "seed", "recording"):
        ET.SubElement(props, "property", name=key, value=str(report[key]))
    for row in rows:
        case = ET.SubElement(suite, "testcase", classname=f"replay.{report['scenario']}", name=row["name"])
        if row["passed"] is None:
            ET.SubElement(case, "skipped", message=f"not applicable: {row['reason']}")
        elif row["passed"] is False:
            failure = ET.SubElement(
                case,
                "failure",
                message=f"value {row['value']!r} does not meet {row['threshold']!r}",
                type="expectation",
            )
            failure.text = orjson.dumps(row).decode()
    ET.ElementTree(suite).write(path, encoding="utf-8", xml_declaration=True)


def render_terminal(report: Mapping[str, Any]) -> RenderableType:
    """Verdict first, then sync findings, faults, latency per stage and the expectations."""
    sync = report["sync"]
    parts: list[RenderableType] = [_verdict(report)]
    subject = report.get("subject") or {}
    if subject.get("traceback"):
        parts.append(Panel(Text(subject["traceback"].rstrip()), title="the subject raised", border_style="red"))
    if subject.get("stopped"):
        parts.append(Text(f"subject {subject['stopped']}", style="red"))
    if subject.get("stderr_file") and not report["passed"]:
        parts.append(Text(f"subject's stderr: {subject['stderr_file']}", style="dim"))

    table = Table(title="sync", box=box.SIMPLE_HEAD, show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column(justify="right")
    table.add_column(style="dim")
    divergent = sync["divergent"]
    table.add_row("silent divergence", _mark(divergent, divergent == 0), f"of {sync['checks']} synced books checked")
    holes = sync.get("holes_bridged", 0)
    table.add_row("holes bridged", _mark(holes, holes == 0), "synced states built across updates never received intact")
    table.add_row(
        "final book",
        _mark("correct" if sync["final_book_correct"] else "WRONG", sync["final_book_correct"]),
        _final_detail(sync.get("final", [])),
    )
    gaps_ok = sync["gaps_detected"] > 0 or sync["gaps_injected"] == 0
    table.add_row(
        "gaps detected",
        _mark(f"{sync['gaps_detected']} / {sync['gaps_injected']}", gaps_ok),
        "detected / on the wire",
    )
    table.add_row("resyncs", str(sync["resyncs"]))
    twice = sync["duplicates_applied"] + sync["reorders_applied"]
    table.add_row("applied twice", _mark(twice, twice == 0), "duplicates + going back while synced")
    table.add_row("unsynced", f"{sync['unsynced_ms']:.1f} ms", f"{sync['unverified']} unsynced books, not compared")
    episodes, verified = sync.get("episodes", 0), sync.get("episodes_verified", 0)
    unverified = sync.get("unverified_episodes") or []
    why = "syncs and resyncs whose book was checked against the oracle before the next loss"
    if unverified:
        why = f"{unverified[0]['symbol']} {unverified_text(unverified[0], report)}"
    table.add_row("episodes verified", _mark(f"{verified} / {episodes}", verified == episodes), why)
    for flag, what in FLAG_ROWS.items():
        if sync.get(flag):
            first = next((row["detail"] for row in sync.get("flags", []) if row["flag"] == flag), "")
            table.add_row(what, _mark(sync[flag], False), first)
    rec = sync["recovery_ms"]
    if rec["count"] or rec["unrecovered"]:
        text = "  ".join(f"{k} {_ms(rec[k])}" for k in ("p50", "p99", "max"))
        table.add_row("recovery", _mark(text, rec["unrecovered"] == 0), f"{rec['unrecovered']} windows never recovered")
    parts.append(table)

    for example in sync["divergence_examples"][:1]:
        parts.append(Text(f"first divergence: {_example(example)}", style="red"))
        parts.extend(_context_lines(example))

    weight = report.get("venue", {}).get("rest_weight")
    if weight:
        limit = f"{weight['limit']:,}" if weight["limit"] else "off"
        refused = weight["refused_429"] + weight["refused_418"]
        parts.append(
            Text.assemble(
                f"REST weight: peak {weight['peak_per_minute']:,} a minute (limit {limit}), refused ",
                _mark(f"{weight['refused_429']} with 429, {weight['refused_418']} with 418", refused == 0),
            )
        )

    if report["faults"]:
        faults = Table(title="faults", box=box.SIMPLE_HEAD, title_justify="left")
        faults.add_column("kind")
        faults.add_column("served", justify="right")
        faults.add_column("armed", justify="right")
        armed = report.get("faults_armed", report["faults"])
        for kind, count in report["faults"].items():
            faults.add_row(kind, _mark(count, count > 0 or armed.get(kind, 0) == 0), str(armed.get(kind, count)))
        parts.append(faults)

    lat = Table(title="latency (µs)", box=box.SIMPLE_HEAD, title_justify="left")
    lat.add_column("stage")
    lat.add_column("count", justify="right")
    for key in PERCENTILE_KEYS:
        lat.add_column(key, justify="right")
    latency = report["latency_us"]
    for name in LATENCY_ROWS:
        row = latency[name] if name in latency else latency["stages"][name]
        lat.add_row(name, str(row["count"]), *(f"{row[key]:,.1f}" for key in PERCENTILE_KEYS))
    parts.append(lat)

    if report["queue"]:
        parts.append(_queue_table(report["queue"]))

    exp = Table(title="expectations", box=box.SIMPLE_HEAD, title_justify="left")
    exp.add_column("")
    exp.add_column("name")
    exp.add_column("threshold")
    exp.add_column("value", justify="right")
    for row in report["expectations"]:
        exp.add_row(
            _mark("N/A", True) if row["passed"] is None else _mark("PASS" if row["passed"] else "FAIL", row["passed"]),
            row["name"],
            str(row["threshold"]),
            str(row["value"]),
        )
    parts.append(exp)
    return Group(*parts)


def _final_detail(finals: Iterable[Mapping[str, Any]]) -> str:
    """Each wrong final book's reason, or how deep a correct one was compared when not whole."""
    wrong = [f"{c['symbol']}: {c['detail']}" for c in finals if not c["correct"]]
    if wrong:
        return "; ".join(wrong)
    depths = [c["depth"] for c in finals if c.get("depth")]
    if not depths:
        return "whole book compared"
    shallowest = min(d["snapshot_levels"] for d in depths)
    beyond = sum(d["bids_beyond"] + d["asks_beyond"] for d in depths)
    return f"within the subject's {shallowest}-level snapshot's reach; {beyond} deeper levels it could not know"


def _queue_table(queue: Mapping[str, Any]) -> RenderableType:
    """Per priority: what was offered, dropped, the deepest the queue got and how long items waited."""
    by_priority = queue.get("by_priority")
    if not isinstance(by_priority, Mapping):
        return Text("queue: " + ", ".join(f"{k} {v}" for k, v in queue.items()))
    limits = f"{queue.get('policy', '?')}, max {queue.get('max_size', '?')}, high water {queue.get('high_water', '?')}"
    title = f"queue ({limits})"
    table = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left")
    for name in ("priority", "offered", "dropped", "high water", "wait p50 µs", "wait p99 µs", "wait max µs"):
        table.add_column(name, justify="left" if name == "priority" else "right")
    for priority, stats in by_priority.items():
        if not stats.get("offered"):
            continue
        wait = stats.get("queued_us", {})
        table.add_row(
            priority,
            str(stats["offered"]),
            _mark(stats["dropped"], stats["dropped"] == 0),
            str(stats["high_water"]),
            *(f"{wait.get(key, 0):,.1f}" for key in ("p50", "p99", "max")),
        )
    return table


def _verdict(report: Mapping[str, Any]) -> Panel:
    failed = [row["name"] for row in report["expectations"] if row["passed"] is False]
    skipped = [row["name"] for row in report["expectations"] if row["passed"] is None]
    if report["passed"]:
        headline = Text("PASS", style="bold green")
        why = f"{len(report['expectations']) - len(skipped)} expectations hold"
    else:
        headline = Text("FAIL", style="bold red")
        why = "failed: " + ", ".join(failed) if failed else "no expectations evaluated"
    if skipped:
        why += f"; not applicable on this venue: {', '.join(skipped)}"
    if report.get("all_faults_not_applicable"):
        why += "\nno fault of this scenario applies to this venue: this was a clean run"
    headline.append(f"  {report['scenario']}  seed {report['seed']}  {report['recording']}", style="default")
    return Panel(Group(headline, Text(why)), border_style="green" if report["passed"] else "red", expand=False)


def _coverage(f: Findings) -> float:
    """Distinct states verified over the clean depth states a subject could verify: those from its
    symbol's first served snapshot on (a subject that is never served one can verify none)."""
    verifiable = f.clean_depth_frames - f.before_first_snapshot
    return round(min(1.0, f.checked_states / verifiable), 4) if verifiable > 0 else 0.0


def _latency(findings: Findings, name: str) -> dict[str, float | int]:
    hist = findings.latency.get(name)
    if hist is None:
        return {"count": 0, **dict.fromkeys(PERCENTILE_KEYS, 0.0)}
    summary = hist.summary_us()
    return {"count": summary["count"], **{key: summary[key] for key in PERCENTILE_KEYS}}


def _recovery(findings: Findings) -> dict[str, Any]:
    """Exact nearest-rank percentiles: there are few windows, so no histogram is needed."""
    values = sorted(r.recovery_ns for r in findings.recoveries if r.recovery_ns is not None)
    out: dict[str, Any] = {"count": len(values), "unrecovered": len(findings.recoveries) - len(values)}
    for key, q in (("p50", 0.5), ("p99", 0.99)):
        out[key] = round(values[max(0, math.ceil(q * len(values)) - 1)] / 1e6, 3) if values else None
    out["max"] = round(values[-1] / 1e6, 3) if values else None
    return out


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return str(value)


def _mark(value: Any, ok: bool) -> Text:
    return Text(str(value), style="green" if ok else "bold red")


def _ms(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:,.2f} ms" if value < 100 else f"{value:,.0f} ms"


def _example(example: Mapping[str, Any]) -> str:
    text = f"{example['symbol']} at update {example['update_id']}: {example['reason']}"
    hole = example.get("hole")
    if hole:
        text += f"; updates {hole['first_update_id']}-{hole['last_update_id']} {hole['why']}"
    first = example.get("first_difference")
    if first:
        text += (
            f"; first differing level: {first['side']} at {first['price']}, "
            f"subject {size_text(first['subject'])}, oracle {size_text(first['oracle'])}"
        )
    else:
        for side in ("bids", "asks"):
            for row in example.get(side, [])[:1]:
                text += f"; {side}[{row['level']}] subject {row['subject']} oracle {row['oracle']}"
    return text


def unverified_text(episode: Mapping[str, Any], report: Mapping[str, Any]) -> str:
    """When an unverified episode began (seconds into the run) and how it ended."""
    start = ((report.get("pictures") or {}).get("sync_timeline") or {}).get("start_mono_ns") or 0
    ended = "it lost sync" if episode["end_mono_ns"] is not None else "the run ended"
    return (
        f"synced {(episode['start_mono_ns'] - start) / 1e9:.2f} s in, never checked against the oracle before {ended}"
    )


def size_text(size: Any) -> str:
    """A size from a first differing level, or what it means to have none."""
    return "no level" if size is None else f"size {size}"


def _context_lines(example: Mapping[str, Any]) -> list[Text]:
    """The frames of the symbol around the divergent update and the faults open then, one line each."""
    context = example.get("context") or {}
    lines = [
        Text(
            f"  frame {row['frame_index']} updates {row['first_update_id']}-{row['last_update_id']}: {row['fate']}",
            style="dim" if row["fate"] == "sent intact" else "yellow",
        )
        for row in context.get("frames", [])
    ]
    for fault in context.get("faults", []):
        lines.append(
            Text(f"  fault {fault['fault_id']} ({fault['kind']}) open {fault['start_ms']} ms to {fault['heal_ms']} ms")
        )
    return lines
