"""Memory of `harness replay --speed 0` on an hour of synthetic BTCUSDT: peak RSS of the harness and of the
default subject, and whether it stays flat, sampled through the run.

The recording is `harness synth --seconds 3600` (about 113,000 frames; issue 12's own example). A thread
samples this process's RSS and every child process's (the subject) every SAMPLE_S. Flatness is a
same-run ratio: the mean RSS over the run's last quarter against its second quarter (1.0 is flat; a
replay that keeps everything grows with the frames it has walked). This is the baseline the streaming
replay is measured against; the goal (issue 12, on a 10-million-frame recording) is peak RSS <= 500 MB
in the harness and <= 300 MB in the subject, flat over the run.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from pathlib import Path

from bench import results
from harness.replay import ReplayRequest, run_replay
from harness.synth.run import synthesize

SECONDS = 3600.0
SAMPLE_S = 0.25
PAGE = os.sysconf("SC_PAGE_SIZE")
GOAL_HARNESS_MB = 500
GOAL_SUBJECT_MB = 300


def rss_mb(pid: int | str = "self") -> float | None:
    try:
        with open(f"/proc/{pid}/statm") as statm:
            return int(statm.read().split()[1]) * PAGE / 2**20
    except (OSError, ValueError, IndexError):
        return None


def children(pid: int) -> list[int]:
    """Process ids whose parent is `pid` (from /proc/N/stat, whose fourth field after the name is the parent)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            found.append(int(entry))
    return found


class Sampler(threading.Thread):
    """(seconds since start, harness MB, subject MB) every SAMPLE_S until stopped."""

    def __init__(self) -> None:
        super().__init__(name="rss-sampler", daemon=True)
        self.samples: list[tuple[float, float, float]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        started = time.monotonic()
        me = os.getpid()
        while not self.stop.wait(SAMPLE_S):
            subject = sum(rss_mb(pid) or 0.0 for pid in children(me))
            self.samples.append((time.monotonic() - started, rss_mb() or 0.0, subject))


def flatness(values: list[float]) -> float:
    """Mean of the last quarter over the mean of the second quarter; 1.0 when there are too few samples."""
    n = len(values)
    if n < 8:
        return 1.0
    second = values[n // 4 : n // 2]
    last = values[3 * n // 4 :]
    return (sum(last) / len(last)) / (sum(second) / len(second))


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="memory-bench-") as tmp:
        recording = Path(tmp) / "hour"
        synthesize(venue="binance-spot", symbols="BTCUSDT", seconds=SECONDS, seed=1, output=recording)
        size_mb = sum(p.stat().st_size for p in recording.iterdir()) / 2**20
        sampler = Sampler()
        sampler.start()
        started = time.perf_counter()
        try:
            report = run_replay(ReplayRequest(scenario="clean", recording=recording, speed=0))
        finally:
            sampler.stop.set()
            sampler.join()
        wall_s = time.perf_counter() - started
    samples = sampler.samples
    harness_mb = [s[1] for s in samples]
    subject_mb = [s[2] for s in samples if s[2] > 0]
    sent = report["frames"]["sent"]
    peak_h, peak_s = max(harness_mb, default=0.0), max(subject_mb, default=0.0)
    flat_h, flat_s = flatness(harness_mb), flatness(subject_mb)
    met = peak_h <= GOAL_HARNESS_MB and peak_s <= GOAL_SUBJECT_MB and flat_h <= 1.1 and flat_s <= 1.1
    print(f"memory: harness replay --speed 0, {SECONDS:g} s of synth BTCUSDT ({size_mb:.1f} MB), {wall_s:.1f} s")
    print(f"  frames sent {sent:,}; {len(samples)} samples every {SAMPLE_S} s")
    print(f"  harness: peak {peak_h:7.1f} MB, last quarter / second quarter {flat_h:.2f}x")
    print(f"  subject: peak {peak_s:7.1f} MB, last quarter / second quarter {flat_s:.2f}x")
    print(f"  goal (on 10 million frames) harness <= {GOAL_HARNESS_MB} MB, subject <= {GOAL_SUBJECT_MB} MB, flat: "
          f"{'met' if met else 'NOT met'}")  # fmt: skip
    raw = {
        "recording_mb": round(size_mb, 2),
        "frames_sent": sent,
        "wall_s": round(wall_s, 1),
        "harness_peak_mb": round(peak_h, 1),
        "subject_peak_mb": round(peak_s, 1),
        "harness_flatness": round(flat_h, 3),
        "subject_flatness": round(flat_s, 3),
        "samples": [[round(t, 2), round(h, 1), round(s, 1)] for t, h, s in samples[:: max(1, len(samples) // 200)]],
    }
    goal = f"peak <= {GOAL_HARNESS_MB} MB (harness), <= {GOAL_SUBJECT_MB} MB (subject), flat"
    results.put(
        "memory_harness_flatness",
        ratio=flat_h,
        meaning="harness RSS, mean of the run's last quarter over its second quarter; 1.0 is flat, lower is better",
        comparison="the same run's second quarter",
        goal=goal,
        met=met,
        raw=raw,
    )
    results.put(
        "memory_subject_flatness",
        ratio=flat_s,
        meaning="default subject RSS, mean of the run's last quarter over its second quarter; 1.0 is flat",
        comparison="the same run's second quarter",
        goal=goal,
        met=met,
        raw={k: v for k, v in raw.items() if k != "samples"},
    )
    return 0
