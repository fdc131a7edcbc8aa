"""The synthetic recordings the benches and the memory smoke test make in their run, sized in frames.

`harness synth` is sized in simulated seconds; a bench wants a frame count (memory and rates are per
frame), so the yields below turn one into the other. Both were measured on seed 1, BTCUSDT.
"""

from __future__ import annotations

from pathlib import Path

from harness.synth.run import synthesize

FRAMES_PER_SECOND = 31.4
"""Frames per simulated second of the default synth (one symbol: depth every 100 ms and trades)."""
RATE_YIELD = 0.641
"""Frames a `--rate R` synth writes per simulated second, over R (320,522 events in 500 s at --rate 1000;
depth stays at 10 a second, trades and bookTicker make the rest)."""
BUSY_RATE = 1000.0
"""`harness synth --rate`: about a busy Binance symbol's pace (depth, trades and bookTicker)."""


def synth_seconds(frames: int, rate: float | None) -> float:
    """Simulated seconds that give about `frames` frames at `rate` (None: the default synth)."""
    return round(frames / (rate * RATE_YIELD if rate else FRAMES_PER_SECOND))


def synth(folder: Path, frames: int, rate: float | None = BUSY_RATE, seed: int = 1) -> Path:
    """A BTCUSDT synth of about `frames` frames in `folder`, made unless it is there already (`--keep`)."""
    recording = folder / (f"synth-{frames}" if rate is None else f"synth-{frames}-rate{rate:g}")
    if not recording.exists():
        seconds = synth_seconds(frames, rate)
        synthesize(venue="binance-spot", symbols="BTCUSDT", seconds=seconds, seed=seed, output=recording, rate=rate)
    return recording
