"""The HTML report: the page built from a report (pure), and the same page drawn by headless Chromium.

The pure tests read the SVG the builder wrote (every series carries `data-*` attributes saying what it
shows and how many points it has). The browser test asks the question a reader would: are the plots
actually painted? It screenshots the page and counts the pixels of the plots' own colours; it runs only
where Debian's `chromium` (or `chromium-browser`) is installed.
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from harness.checker import FLAGS
from harness.html_report import pictures_of, replay_html, suite_html
from harness.html_report_data import compact
from harness.html_report_svg import percentile_plot, queue_plot, timeline_plot
from harness.report import FLAG_ROWS
from tests.test_report import T0, run

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def report_with_queue(wrong: bool = True) -> dict:
    report = run(wrong=wrong)
    report["queue"]["depth_samples"] = [[T0 + k * 200_000, depth] for k, depth in enumerate([1, 4, 9, 2, 0, 3])]
    return report


def test_the_page_draws_every_plot_from_the_report_and_fetches_nothing() -> None:
    page = replay_html(report_with_queue())
    assert page.startswith("<!DOCTYPE html>") and page.count("<svg") == 3
    latency = dict(re.findall(r'<polyline class="series" data-series="([a-z_0-9]+)" data-points="(\d+)"', page))
    assert set(latency) == {"e2e", "e2e_intended", "wire", "parse", "queue", "apply"}
    assert all(int(points) > 10 for points in latency.values())
    assert re.findall(r'data-state="(\w+)"', page) == ["synced", "diverged", "synced"]
    assert re.findall(r'data-episode="(\w+)"', page) == ["sync"]
    assert 'class="fault" data-fault=""' in page  # the drop window, shaded across the rows
    assert 'data-series="queue depth" data-points="6"' in page
    assert page.count('<tr class="pass">') + page.count('<tr class="fail">') >= 1 + len(FLAG_ROWS) + 1
    assert "first differing level: bids at price <code>6.00</code>" in page
    # Self-contained: no script, no stylesheet, image or font to fetch (the SVG namespace is a name, not a fetch).
    assert "<script" not in page and "src=" not in page and "href=" not in page and "@import" not in page
    assert re.findall(r"https?://[^\"]+", page) == ["http://www.w3.org/2000/svg"] * 3


def test_flags_and_unverified_episodes_are_listed_under_the_verdict() -> None:
    report = report_with_queue(wrong=False)
    start = report["pictures"]["sync_timeline"]["start_mono_ns"]
    report["sync"]["unverified_episodes"] = [
        {"symbol": "ETHUSDT", "start_mono_ns": start + 2_500_000_000, "end_mono_ns": None}
    ]
    report["sync"]["flags"] = [{"flag": "dark_books", "symbol": "BTCUSDT", "mono_ns": None, "detail": "never shown"}]
    page = replay_html(report)
    assert "<li><b>dark_books</b> BTCUSDT: never shown</li>" in page
    assert "ETHUSDT: synced 2.50 s in, never checked against the oracle before the run ended" in page


def test_a_timeline_that_flips_on_every_update_is_kept_small_and_hides_no_divergence() -> None:
    flips = [[k * 1.0, "synced" if k % 2 else "unsynced"] for k in range(10_000)]
    flips[7_001][1] = "diverged"
    kept = compact(flips, 10_000.0, spans=100)
    assert len(kept) <= 100 and kept[0] == [0.0, "unsynced"]
    assert [state for _, state in kept].count("diverged") == 1
    assert compact(flips[:50], 50.0, spans=100) == flips[:50]


def test_plots_without_data_say_so_instead_of_drawing_an_empty_frame() -> None:
    assert "no latency samples" in percentile_plot({})
    assert "no sync states reported" in timeline_plot({"symbols": {}, "end_ms": 0})
    assert "no queue depth samples" in queue_plot([], 10.0)


def test_the_flag_rows_name_every_flag_the_checker_counts() -> None:
    assert tuple(FLAG_ROWS) == FLAGS


def test_the_suite_page_lists_every_cell_and_draws_the_cells_it_has_pictures_for() -> None:
    good, bad = report_with_queue(wrong=False), report_with_queue(wrong=True)
    cells = [
        {"key": "a/rec/seed1", "status": "pass", "expectations": good["expectations"], "reproduce": "harness replay a"},
        {"key": "b/rec/seed1", "status": "fail", "expectations": bad["expectations"], "reproduce": "harness replay b"},
    ]
    summary = {
        "passed": False,
        "subject": "harness.default_subject:create",
        "totals": {"cells": 2, "passed": 1, "failed": 1, "errors": 0},
        "cells": cells,
    }
    page = suite_html(summary, {"b/rec/seed1": pictures_of(bad)})
    assert "suite FAILED" in page and "harness replay a" in page and "harness replay b" in page
    assert page.count("<svg") == 3  # only the cell with pictures is drawn
    assert "<details open><summary>FAIL b/rec/seed1</summary>" in page


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium package is not installed")
def test_headless_chromium_paints_the_plots(tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_text(replay_html(report_with_queue()), encoding="utf-8")
    shot = tmp_path / "shot.png"
    assert CHROMIUM is not None
    subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--window-size=1000,1700",
            "--force-device-scale-factor=0.5",
            f"--screenshot={shot}",
            page.as_uri(),
        ],
        capture_output=True,
        timeout=120,
        check=True,
    )
    width, height, pixels = read_png(shot.read_bytes())
    counts = colour_counts(pixels)
    assert (width, height) == (500, 850)
    assert near(counts, (0x2C, 0xA0, 0x2C)) > 1_000, "the synced spans of the timeline"
    assert near(counts, (0xD6, 0x27, 0x28)) > 20, "the diverged span"
    assert near(counts, (0x1F, 0x77, 0xB4)) > 20, "the first latency series (its curve and legend)"
    assert near(counts, (0x55, 0x55, 0x99)) > 100, "the queue's bars"
    assert len(counts) > 50, "a page of text and plots, not a blank one"


def near(counts: dict[tuple[int, int, int], int], colour: tuple[int, int, int], tolerance: int = 6) -> int:
    return sum(n for rgb, n in counts.items() if all(abs(a - b) <= tolerance for a, b in zip(rgb, colour, strict=True)))


def colour_counts(pixels: list[bytes]) -> dict[tuple[int, int, int], int]:
    counts: dict[tuple[int, int, int], int] = {}
    for row in pixels:
        for i in range(0, len(row), 4):
            rgb = (row[i], row[i + 1], row[i + 2])
            counts[rgb] = counts.get(rgb, 0) + 1
    return counts


def read_png(data: bytes) -> tuple[int, int, list[bytes]]:
    """An 8-bit RGBA or RGB PNG's rows as RGBA bytes: enough of the format for a browser's screenshot."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    at, idat, width, height, channels = 8, b"", 0, 0, 4
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        kind, body = data[at + 4 : at + 8], data[at + 8 : at + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour_type = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and colour_type in (2, 6), (depth, colour_type)
            channels = 4 if colour_type == 6 else 3
        elif kind == b"IDAT":
            idat += body
        at += 12 + length
    raw = zlib.decompress(idat)
    stride = width * channels
    rows: list[bytes] = []
    previous = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        filter_type, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up = previous[i]
            corner = previous[i - channels] if i >= channels else 0
            if filter_type == 1:
                line[i] = (line[i] + left) & 0xFF
            elif filter_type == 2:
                line[i] = (line[i] + up) & 0xFF
            elif filter_type == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif filter_type == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 0xFF
        previous = line
        rows.append(
            bytes(line) if channels == 4 else b"".join(bytes(line[i : i + 3]) + b"\xff" for i in range(0, stride, 3))
        )
    return width, height, rows
