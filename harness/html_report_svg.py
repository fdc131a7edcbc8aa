"""The report's plots as inline SVG text: no library, no script, nothing fetched when the page opens.

Each function takes plain numbers (from the JSON report's `pictures` and `queue`) and returns one
`<svg>` element. Every drawn series carries `data-*` attributes naming what it shows and how many
points it has, so a test (or a curious reader of the page source) can tell a plot with data from an
empty frame. Pure: text in, text out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

WIDTH, HEIGHT = 760, 300
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 70, 130, 20, 40
COLOURS = ("#1f77b4", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22")
"""Latency series; none is a state's colour, so a screenshot can tell the plots apart by colour."""
QUEUE_COLOUR = "#555599"
FAULT_COLOUR = "#f0a000"
STATE_COLOURS = {"synced": "#2ca02c", "unsynced": "#bbbbbb", "diverged": "#d62728"}
MIN_US = 0.1
"""Latencies below this (0 included) are drawn at it: a log axis has no zero."""


def _svg(kind: str, width: int, height: int, body: list[str], label: str) -> str:
    return (
        f'<svg class="plot {kind}" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(label)}">' + "".join(body) + "</svg>"
    )


def _text(x: float, y: float, text: str, anchor: str = "middle", size: int = 11, extra: str = "") -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
        f'font-family="sans-serif"{extra}>{escape(text)}</text>'
    )


def _line(x1: float, y1: float, x2: float, y2: float, colour: str = "#dddddd", extra: str = "") -> str:
    return f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{colour}"{extra}/>'


def _empty(kind: str, why: str) -> str:
    return _svg(kind, WIDTH, 60, [_text(WIDTH / 2, 35, why)], why)


def percentile_plot(curves: Mapping[str, Sequence[Sequence[float]]]) -> str:
    """HdrHistogram's picture: latency (log) against percentile on the axis 1 / (1 - q), 0 to 99.99%."""
    series = {stage: [(p, us) for p, us in points if p < 100] for stage, points in curves.items() if len(points) > 1}
    series = {stage: points for stage, points in series.items() if points}
    if not series:
        return _empty("latency", "no latency samples")
    plot_w = WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    plot_h = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM
    x_max = max(_nines(p) for points in series.values() for p, _ in points) or 1.0
    values = [max(MIN_US, us) for points in series.values() for _, us in points]
    lo = math.floor(math.log10(min(values)))
    hi = max(lo + 1, math.ceil(math.log10(max(values))))

    def x_of(p: float) -> float:
        return MARGIN_LEFT + plot_w * _nines(p) / x_max

    def y_of(us: float) -> float:
        return MARGIN_TOP + plot_h * (1 - (math.log10(max(MIN_US, us)) - lo) / (hi - lo))

    body: list[str] = []
    for decade in range(lo, hi + 1):
        y = y_of(10**decade)
        body.append(_line(MARGIN_LEFT, y, MARGIN_LEFT + plot_w, y))
        body.append(_text(MARGIN_LEFT - 6, y + 4, _us_label(10**decade), anchor="end"))
    for nines, label in ((0, "0%"), (1, "90%"), (2, "99%"), (3, "99.9%"), (4, "99.99%")):
        if nines > x_max + 1e-9:
            break
        x = MARGIN_LEFT + plot_w * nines / x_max
        body.append(_line(x, MARGIN_TOP, x, MARGIN_TOP + plot_h))
        body.append(_text(x, MARGIN_TOP + plot_h + 16, label))
    body.append(_text(MARGIN_LEFT + plot_w / 2, HEIGHT - 4, "percentile"))
    mid = MARGIN_TOP + plot_h / 2
    body.append(_text(14, mid, "latency", extra=f' transform="rotate(-90 14 {mid:.0f})"'))
    for i, (stage, points) in enumerate(series.items()):
        colour = COLOURS[i % len(COLOURS)]
        coords = " ".join(f"{x_of(p):.1f},{y_of(us):.1f}" for p, us in points)
        body.append(
            f'<polyline class="series" data-series="{escape(stage)}" data-points="{len(points)}" '
            f'fill="none" stroke="{colour}" stroke-width="2" points="{coords}"/>'
        )
        y = MARGIN_TOP + 14 * i + 8
        body.append(f'<rect x="{WIDTH - MARGIN_RIGHT + 10}" y="{y - 5}" width="20" height="10" fill="{colour}"/>')
        body.append(_text(WIDTH - MARGIN_RIGHT + 34, y + 4, stage, anchor="start"))
    return _svg("latency", WIDTH, HEIGHT, body, "latency percentiles per stage")


def _nines(percentile: float) -> float:
    """Where a percentile sits on the HdrHistogram axis: log10(1 / (1 - q)); 90% is 1, 99.9% is 3."""
    return math.log10(1 / max(1e-6, 1 - percentile / 100))


def _us_label(us: float) -> str:
    if us >= 1_000_000:
        return f"{us / 1_000_000:g} s"
    if us >= 1000:
        return f"{us / 1000:g} ms"
    return f"{us:g} µs"


def timeline_plot(timeline: Mapping[str, Any]) -> str:
    """One row per symbol coloured by state over the run, a tick at each snapshot episode (the first
    sync blue, each resync purple), and above them a lane per fault with its windows, each window also
    shaded faintly across the symbols' rows."""
    symbols: Mapping[str, Any] = timeline.get("symbols") or {}
    end = float(timeline.get("end_ms") or 0.0)
    if not symbols or end <= 0:
        return _empty("timeline", "no sync states reported")
    faults = list(timeline.get("faults") or [])
    lanes = list(dict.fromkeys(str(fault["fault_id"] or fault["kind"]) for fault in faults))
    lane_h, row_h, gap = 9, 22, 8
    longest = max([len(name) * 5.5 for name in lanes] + [len(symbol) * 7.0 for symbol in symbols])
    left = max(MARGIN_LEFT, round(longest) + 10)
    plot_w = WIDTH - left - MARGIN_RIGHT
    rows_top = MARGIN_TOP + len(lanes) * lane_h + (gap if lanes else 0) + 8
    bottom = rows_top + len(symbols) * (row_h + gap)
    height = bottom + MARGIN_BOTTOM

    def x_of(ms: float) -> float:
        return left + plot_w * min(max(ms, 0.0), end) / end

    body: list[str] = []
    for lane, name in enumerate(lanes):
        body.append(_text(left - 6, MARGIN_TOP + lane * lane_h + lane_h - 1, name, anchor="end", size=9))
    for fault in faults:
        lane = lanes.index(str(fault["fault_id"] or fault["kind"]))
        x1, x2 = x_of(fault["start_ms"]), x_of(fault["heal_ms"])
        width = max(1.5, x2 - x1)
        title = escape(f"{fault['kind']} {fault['fault_id']}: {fault['start_ms']} to {fault['heal_ms']} ms")
        body.append(
            f'<rect class="fault" data-fault="{escape(str(fault["fault_id"]))}" x="{x1:.1f}" '
            f'y="{MARGIN_TOP + lane * lane_h + 1}" width="{width:.1f}" height="{lane_h - 2}" fill="{FAULT_COLOUR}">'
            f"<title>{title}</title></rect>"
            f'<rect x="{x1:.1f}" y="{rows_top - 4}" width="{width:.1f}" height="{bottom - rows_top}" '
            f'fill="{FAULT_COLOUR}" opacity="0.15"/>'
        )
    for row, (symbol, data) in enumerate(symbols.items()):
        y = rows_top + row * (row_h + gap)
        body.append(_text(left - 6, y + row_h / 2 + 4, symbol, anchor="end"))
        changes = list(data.get("changes") or [])
        segments = 0
        for i, (start, state) in enumerate(changes):
            stop = changes[i + 1][0] if i + 1 < len(changes) else end
            x1, x2 = x_of(start), x_of(stop)
            body.append(
                f'<rect class="state" data-state="{escape(state)}" x="{x1:.1f}" y="{y}" '
                f'width="{max(0.5, x2 - x1):.1f}" height="{row_h}" fill="{STATE_COLOURS.get(state, "#888888")}"/>'
            )
            segments += 1
        for k, at in enumerate(data.get("episodes") or []):
            x = x_of(at)
            colour = "#1f77b4" if k == 0 else "#9467bd"
            body.append(
                f'<path class="episode" data-episode="{"sync" if k == 0 else "resync"}" '
                f'd="M{x:.1f},{y - 1} l-4,-6 h8 z" fill="{colour}"/>'
            )
        body.append(f'<g class="row" data-symbol="{escape(symbol)}" data-segments="{segments}"></g>')
    _time_axis(body, end, bottom, plot_w, left)
    legend = [(name, STATE_COLOURS[name]) for name in ("synced", "unsynced", "diverged")]
    legend += [("fault window", FAULT_COLOUR), ("sync", "#1f77b4"), ("resync", "#9467bd")]
    for i, (name, colour) in enumerate(legend):
        y = MARGIN_TOP + 14 * i
        body.append(f'<rect x="{WIDTH - MARGIN_RIGHT + 10}" y="{y}" width="14" height="10" fill="{colour}"/>')
        body.append(_text(WIDTH - MARGIN_RIGHT + 28, y + 9, name, anchor="start"))
    return _svg("timeline", WIDTH, height, body, "sync state per symbol over the run")


def _time_axis(body: list[str], end_ms: float, y: float, plot_w: float, left: float = MARGIN_LEFT) -> None:
    step = _nice_step(end_ms / 8)
    t = 0.0
    while t <= end_ms + 1e-9:
        x = left + plot_w * t / end_ms
        body.append(_line(x, y, x, y + 4, "#666666"))
        body.append(_text(x, y + 16, f"{t / 1000:g} s"))
        t += step
    body.append(_text(left + plot_w / 2, y + 32, "time since the replay clock started"))


def _nice_step(raw: float) -> float:
    """1, 2 or 5 times a power of ten, at least `raw`."""
    if raw <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


def queue_plot(samples_ms: Sequence[Sequence[float]], end_ms: float) -> str:
    """The deepest the subject's queue was in each interval, as bars over the run's time axis."""
    if not samples_ms:
        return _empty("queue", "the subject reported no queue depth samples")
    end = max(end_ms, max(t for t, _ in samples_ms)) or 1.0
    plot_w = WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    plot_h = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM - 20
    step = max(1.0, _nice_step(max(int(depth) for _, depth in samples_ms) / 4))
    top = step * 4
    bottom = MARGIN_TOP + plot_h

    def x_of(ms: float) -> float:
        return MARGIN_LEFT + plot_w * min(max(ms, 0.0), end) / end

    body: list[str] = []
    for k in range(5):
        depth = step * k
        y = bottom - plot_h * depth / top
        body.append(_line(MARGIN_LEFT, y, MARGIN_LEFT + plot_w, y))
        body.append(_text(MARGIN_LEFT - 6, y + 4, f"{depth:g}", anchor="end"))
    width = max(1.0, plot_w / max(1, len(samples_ms)) * 0.8)
    bars = []
    for t, depth in samples_ms:
        h = plot_h * depth / top
        bars.append(f'<rect x="{x_of(t):.1f}" y="{bottom - h:.1f}" width="{width:.1f}" height="{h:.1f}"/>')
    body.append(f'<g class="series" data-series="queue depth" data-points="{len(samples_ms)}" fill="{QUEUE_COLOUR}">')
    body.extend(bars)
    body.append("</g>")
    _time_axis(body, end, bottom, plot_w)
    mid = MARGIN_TOP + plot_h / 2
    body.append(_text(14, mid, "depth", extra=f' transform="rotate(-90 14 {mid:.0f})"'))
    return _svg("queue", WIDTH, HEIGHT, body, "queue depth over time")
