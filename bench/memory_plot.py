"""The resident memory of one sampled replay as an SVG picture, for docs/performance.md.

The goal (issue 12) is a shape as much as a cap: flat over the run. A table of tenths says it, a curve
shows it, with the caps drawn in, so a reader sees at a glance where the run loads, serves and judges.
Pure: samples in, text out; no plotting library (none is a dependency, and none is needed for two lines).
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

WIDTH, HEIGHT = 720, 300
LEFT, RIGHT, TOP, BOTTOM = 60, 150, 30, 40
SERIES = (("harness", 1, "#1f77b4"), ("subject", 2, "#ff7f0e"))
"""(name, index in a sample, colour); a sample is (seconds, harness KB, subject KB), as bench.replay_memory takes."""


def memory_svg(samples: Sequence[tuple[float, int, int]], caps_mb: Sequence[tuple[str, float]], title: str) -> str:
    """RSS in MB against seconds, one polyline per process, a dashed line per cap ("harness cap", 500)."""
    if not samples:
        raise ValueError("no samples to draw")
    end_s = max(samples[-1][0], 1e-9)
    top_mb = max(max(cap for _, cap in caps_mb), max(max(s[1], s[2]) for s in samples) / 1024) * 1.1
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(seconds: float) -> float:
        return LEFT + seconds / end_s * plot_w

    def y(mb: float) -> float:
        return TOP + plot_h - mb / top_mb * plot_h

    body = [_text(WIDTH / 2 - RIGHT / 2, 18, title, size=13)]
    step = _step(top_mb)
    for k in range(int(top_mb // step) + 1):
        mb = k * step
        body.append(f'<line x1="{LEFT}" y1="{y(mb):.1f}" x2="{LEFT + plot_w}" y2="{y(mb):.1f}" stroke="#e4e4e4"/>')
        body.append(_text(LEFT - 6, y(mb) + 4, f"{mb:g} MB", anchor="end"))
    time_step = _step(end_s)
    for k in range(int(end_s // time_step) + 1):
        seconds = k * time_step
        body.append(_text(x(seconds), TOP + plot_h + 16, f"{seconds:g} s"))
    for n, (name, cap) in enumerate(caps_mb):
        body.append(
            f'<line x1="{LEFT}" y1="{y(cap):.1f}" x2="{LEFT + plot_w}" y2="{y(cap):.1f}" '
            f'stroke="#d62728" stroke-dasharray="6 4"/>'
        )
        body.append(_text(LEFT + plot_w + 6, y(cap) + 4 + 12 * n, f"{name} {cap:g} MB", anchor="start"))
    for n, (name, index, colour) in enumerate(SERIES):
        points = [(s[0], s[index] / 1024) for s in samples if s[index] > 0]
        if not points:
            continue
        path = " ".join(f"{x(t):.1f},{y(mb):.1f}" for t, mb in points)
        peak = max(mb for _, mb in points)
        body.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{path}" '
            f'data-series="{name}" data-points="{len(points)}"/>'
        )
        body.append(_text(LEFT + plot_w + 6, TOP + 14 + 16 * n, f"{name}, peak {peak:.0f} MB", anchor="start"))
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'role="img" aria-label="{escape(title)}"><rect width="100%" height="100%" fill="white"/>'
        + "".join(body)
        + "</svg>\n"
    )


def _text(x: float, y: float, text: str, anchor: str = "middle", size: int = 11) -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
        f'font-family="sans-serif">{escape(text)}</text>'
    )


def _step(span: float) -> float:
    """The smallest round grid step (1, 2 or 5 times a power of ten) that draws at most ten lines over `span`."""
    return next(m * 10.0**e for e in range(-3, 9) for m in (1, 2, 5) if span / (m * 10.0**e) <= 10)
