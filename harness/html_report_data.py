"""The data behind the report's pictures, carried in the JSON report (`pictures`) so that any report,
a suite cell's included, can be drawn later without the run: latency percentile curves per stage, and
each symbol's sync timeline with the fault windows and snapshot episodes. Pure, from the checker's Findings.
"""

from __future__ import annotations

from typing import Any

from harness.checker import Findings

MAX_CHANGES = 2_000
"""Per symbol, the most state changes the timeline keeps; more are merged into as many equal spans,
each showing the worst state it held (a page and a report stay small when a subject flips on every update)."""
SEVERITY = {"synced": 0, "unsynced": 1, "diverged": 2}
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
                "changes": compact(
                    [
                        [ms(t), state]
                        for t, state in zip(
                            timeline.times.get(symbol, []), timeline.states.get(symbol, []), strict=True
                        )
                    ],
                    ms(max(findings.end_mono_ns, start)),
                ),
                "episodes": [ms(t) for t in timeline.episode_starts.get(symbol, [])],
            }
            for symbol in symbols
        },
        "faults": [
            {"fault_id": fault_id, "kind": kind, "start_ms": ms(begin), "heal_ms": ms(heal)}
            for fault_id, kind, begin, heal in findings.fault_windows
        ],
    }


def compact(changes: list[list[Any]], end_ms: float, spans: int = MAX_CHANGES) -> list[list[Any]]:
    """`changes` ([ms, state], ascending) when there are at most `spans`; else `spans` equal spans from the
    first change to `end_ms`, each with the worst state it held, equal neighbours merged."""
    if len(changes) <= spans:
        return changes
    begin = changes[0][0]
    width = max(end_ms - begin, 1e-9) / spans
    worst: list[str | None] = [None] * spans
    for i, (at, state) in enumerate(changes):
        until = changes[i + 1][0] if i + 1 < len(changes) else end_ms
        first = min(spans - 1, int((at - begin) / width))
        last = min(spans - 1, max(first, int((until - begin) / width - 1e-9)))
        for k in range(first, last + 1):
            held = worst[k]
            if held is None or SEVERITY.get(state, 1) > SEVERITY.get(held, 1):
                worst[k] = state
    out: list[list[Any]] = []
    for k, state in enumerate(worst):
        if state is not None and (not out or out[-1][1] != state):
            out.append([round(begin + k * width, 3), state])
    return out
