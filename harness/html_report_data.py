"""The data behind the report's pictures, carried in the JSON report (`pictures`) so that any report,
a suite cell's included, can be drawn later without the run: latency percentile curves per stage, and
each symbol's sync timeline with the fault windows and snapshot episodes. Pure, from the checker's Findings.
"""

from __future__ import annotations

from typing import Any

from harness.checker import Findings

CURVE_POINTS_PER_DECADE = 10
CURVE_DECADES = 4
"""Percentiles from 0 to 99.99 (1 - 10^-4), evenly spaced on the HdrHistogram axis 1 / (1 - q)."""


def curve_quantiles() -> list[float]:
    steps = CURVE_POINTS_PER_DECADE * CURVE_DECADES
    return [1 - 10 ** (-k / CURVE_POINTS_PER_DECADE) for k in range(steps + 1)]


def pictures(findings: Findings) -> dict[str, Any]:
    """`{latency_percentiles, sync_timeline}`; docs/report-schema.md, "pictures"."""
    quantiles = curve_quantiles()
    curves: dict[str, list[list[float]]] = {}
    for stage, hist in findings.latency.items():
        if hist.count == 0:
            continue
        values = hist.percentiles(quantiles)
        curves[stage] = [[round(q * 100, 4), v / 1000] for q, v in zip(quantiles, values, strict=True)]
        curves[stage].append([100.0, hist.max / 1000])
    return {"latency_percentiles": curves, "sync_timeline": _timeline(findings)}


def _timeline(findings: Findings) -> dict[str, Any]:
    start = findings.start_mono_ns
    if start is None:
        return {"start_mono_ns": None, "end_ms": 0.0, "symbols": {}, "faults": []}
    timeline = findings.timeline

    def ms(t: int) -> float:
        return round((t - start) / 1e6, 3)

    symbols = sorted(set(timeline.times) | set(timeline.episode_starts))
    return {
        "start_mono_ns": start,
        "end_ms": ms(max(findings.end_mono_ns, start)),
        "symbols": {
            symbol: {
                "changes": [
                    [ms(t), state]
                    for t, state in zip(timeline.times.get(symbol, []), timeline.states.get(symbol, []), strict=True)
                ],
                "episodes": [ms(t) for t in timeline.episode_starts.get(symbol, [])],
            }
            for symbol in symbols
        },
        "faults": [
            {"fault_id": fault_id, "kind": kind, "start_ms": ms(begin), "heal_ms": ms(heal)}
            for fault_id, kind, begin, heal in findings.fault_windows
        ],
    }
