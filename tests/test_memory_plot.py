"""bench/memory_plot.py: the memory picture in docs/performance.md draws what was sampled, and the caps."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from bench.memory_plot import memory_svg

SVG = "{http://www.w3.org/2000/svg}"


def _samples() -> list[tuple[float, int, int]]:
    """A harness at 200 MB rising to 240 MB, a subject that runs for the middle half at 32 MB."""
    return [(t / 10, (200 + t // 10) * 1024, 32 * 1024 if 100 <= t < 300 else 0) for t in range(400)]


def test_each_process_is_one_line_through_its_own_samples_under_the_caps() -> None:
    svg = memory_svg(_samples(), [("harness cap", 500), ("subject cap", 300)], "a run")
    root = ET.fromstring(svg)
    lines = {p.get("data-series"): p for p in root.iter(f"{SVG}polyline")}
    assert lines["harness"].get("data-points") == "400"
    assert lines["subject"].get("data-points") == "200"  # only while it ran
    texts = [t.text or "" for t in root.iter(f"{SVG}text")]
    assert "harness, peak 239 MB" in texts and "subject, peak 32 MB" in texts
    assert "harness cap 500 MB" in texts and "subject cap 300 MB" in texts
    dashed = [line for line in root.iter(f"{SVG}line") if line.get("stroke-dasharray")]
    assert len(dashed) == 2
    # the harness line stays below the harness cap's line (SVG y grows downwards)
    cap_y = min(float(line.get("y1", "0")) for line in dashed)
    harness_ys = [float(y) for y in re.findall(r",([\d.]+)", lines["harness"].get("points", ""))]
    assert min(harness_ys) > cap_y


def test_nothing_sampled_is_a_caller_error() -> None:
    with pytest.raises(ValueError, match="no samples"):
        memory_svg([], [("harness cap", 500)], "empty")
