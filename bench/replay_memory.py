"""Memory of `harness replay --speed 0` (issue 12): RSS sampled over the run, on synths of N/2 and N frames.

A day-long recording (10 million frames) must replay in flat memory: peak RSS <= 500 MB in the harness
and <= 300 MB in the default subject, flat over the run. This makes two synths of about N/2 and N
frames (a busy symbol's, `harness synth --rate 1000`: depth, trades and bookTicker; `--rate 0` the
default synth, a third of it depth), replays each clean at speed 0 as a user runs it (its own process)
and samples the resident memory of the harness and of its largest child (the subject) every 50 ms
(every 0.25 s past a million frames). It prints each run's peaks, bytes per frame, and the RSS at
every tenth of the run (the curve docs/performance.md plots).

Each synth is replayed `--rounds` times (2), the sizes in turns. Flat means both: the peak on N
frames within `--margin` of the peak on N/2 (memory that stays level within a run but was all taken
while loading is not flat), and, within the N run, the level while the replay is served (the median
RSS while the subject runs) within the margin from the first half of that time to the second (memory
that grows as the venue walks). A run's peak moves by 10 to 15% between identical runs, so both look
at the runs with the lowest peak; the caps are judged on the highest.
Written to bench/results.json as `memory_harness_flatness` and `memory_subject_flatness` (peak at N
over peak at N/2), by `make bench` (bench/memory_bench.py, 200,000 frames) and by this module's own
run. Exits 1 when a goal is not met. tests/test_memory_smoke.py runs a cheap form of it in CI
(200,000 frames against 20,000, and within the 200,000-frame run).

    make bench-memory                                                 # 100,000 and 200,000 frames
    python -m bench.replay_memory --keep /tmp/synths                  # keep the synths for the next run
    python -m bench.replay_memory --frames 1000000 --keep /tmp/synths # a larger N
    python -m bench.replay_memory --frames 10000000 --rounds 1 --keep /tmp/synths \
        --plot docs/replay-memory-10m.svg                             # issue 12's N, drawn
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench import results
from bench.memory_plot import memory_svg
from bench.synths import BUSY_RATE, synth

FRAMES = 200_000
MARGIN = 0.10
ROUNDS = 2
GOAL_HARNESS_MB = 500
GOAL_SUBJECT_MB = 300
SAMPLE_S = 0.05
SERVING_SAMPLES = 4

Sample = tuple[float, int, int]
"""(seconds since the start, harness kB, largest child kB)."""


def _rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as handle:
            return [int(word) for word in handle.read().split()]
    except OSError:
        return []


def _cmdline(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read()
    except OSError:
        return b""


def _largest_child_kb(pid: int) -> int:
    """The largest child's RSS, leaving out a child caught between fork and exec: until it runs its
    own program it is a copy of the parent and shows the parent's RSS."""
    parent = _cmdline(pid)
    return max((_rss_kb(child) for child in _children(pid) if _cmdline(child) != parent), default=0)


def sample_run(argv: list[str], every_s: float = SAMPLE_S) -> tuple[int, list[Sample]]:
    """Runs `argv`, returning its exit code and its samples while it was alive."""
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
    samples: list[Sample] = []
    started = time.monotonic()
    while process.poll() is None:
        child = _largest_child_kb(process.pid)
        samples.append((time.monotonic() - started, _rss_kb(process.pid), child))
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(every_s)  # a sample every `every_s`, and none after the process has ended
    return process.returncode, [s for s in samples if s[1] > 0]


def replay_argv(recording: Path) -> list[str]:
    """`harness replay` of `recording`, clean, at speed 0, by this interpreter (no console script needed)."""
    harness = [sys.executable, "-c", "from harness.cli import main; main()"]
    return [*harness, "replay", "--recording", str(recording), "--scenario", "clean", "--speed", "0"]


def serving_levels_mb(run: MemoryRun, index: int) -> tuple[float, float] | None:
    """Median MB of the harness (`index` 0) or the subject (1) over the first and over the second half of
    the samples taken while the subject ran: the level while the replay is served, which a holder that
    grows as the venue walks raises from one half to the next. Medians, because a moment's allocation
    (the subject connecting, a snapshot served) would decide a peak. None under 4 samples (too short)."""
    values = [s[1 + index] for s in run.samples if s[2] > 0]
    if len(values) < SERVING_SAMPLES:
        return None
    middle = len(values) // 2
    return statistics.median(values[:middle]) / 1024, statistics.median(values[middle:]) / 1024


@dataclass(frozen=True, slots=True)
class MemoryRun:
    """One sampled replay."""

    frames: int
    exit_code: int
    samples: list[Sample]

    @property
    def harness_kb(self) -> list[int]:
        return [s[1] for s in self.samples]

    @property
    def subject_kb(self) -> list[int]:
        """While the subject runs (before it starts and after it ends, the largest child is none)."""
        return [s[2] for s in self.samples if s[2] > 0]

    @property
    def peaks_mb(self) -> tuple[float, float]:
        return max(self.harness_kb, default=0) / 1024, max(self.subject_kb, default=0) / 1024

    def tenths(self) -> list[tuple[float, float, float]]:
        """(seconds, harness MB, subject MB) at every tenth of the run."""
        picked = [self.samples[max(0, round(t / 10 * len(self.samples)) - 1)] for t in range(1, 11)]
        return [(round(t, 1), round(h / 1024, 1), round(c / 1024, 1)) for t, h, c in picked] if self.samples else []

    def print(self) -> None:
        if self.exit_code != 0 or not self.samples:
            print(f"replay of ~{self.frames:,} frames exited {self.exit_code}")
            return
        harness, subject = self.peaks_mb
        print(
            f"~{self.frames:,} frames, {self.samples[-1][0]:.1f} s: peak RSS harness {harness:.0f} MB "
            f"({harness * 2**20 / self.frames:.0f} B/frame), subject {subject:.0f} MB"
        )
        for tenth, (t, h, c) in enumerate(self.tenths(), 1):
            print(f"  {tenth / 10:4.0%} t={t:6.1f} s  harness {h:6.0f} MB  subject {c:5.0f} MB")


def replay(recording: Path, frames: int, *extra: str) -> MemoryRun:
    """`replay_argv(recording)` with `extra` arguments, sampled; `frames` is about how many it holds."""
    code, samples = sample_run([*replay_argv(recording), *extra], SAMPLE_S if frames <= 1_000_000 else 0.25)
    return MemoryRun(frames, code, samples)


def measure(
    frames: int = FRAMES, rate: float | None = BUSY_RATE, keep: Path | None = None, rounds: int = ROUNDS
) -> tuple[list[MemoryRun], list[MemoryRun]]:
    """`rounds` replays of synths of about frames/2 and of frames frames, taken in turns."""
    with tempfile.TemporaryDirectory(prefix="replay-memory-") as tmp:
        recordings = [(size, synth(keep or Path(tmp), size, rate)) for size in (frames // 2, frames)]
        runs: tuple[list[MemoryRun], list[MemoryRun]] = ([], [])
        for _ in range(rounds):
            for taken, (size, recording) in zip(runs, recordings, strict=True):
                taken.append(replay(recording, size))
                taken[-1].print()
    return runs


def put_figures(halves: list[MemoryRun], fulls: list[MemoryRun], rate: float | None, margin: float = MARGIN) -> bool:
    """Prints the verdicts and `results.put`s both figures; returns whether both goals were met.

    A run's peak moves by 10 to 15% between identical runs (transient allocations while it sets up and
    judges), while a holder that grows with the recording raises every run's peak: so growth compares
    the lowest peak of the rounds at each size, the level while served is the run's with the lowest
    peak at N, and the cap is judged on the highest peak of all."""
    met_all = True
    ran = all(run.exit_code == 0 for run in halves + fulls)
    for name, who, goal_mb, index in (
        ("memory_harness_flatness", "harness", GOAL_HARNESS_MB, 0),
        ("memory_subject_flatness", "subject", GOAL_SUBJECT_MB, 1),
    ):
        full = min(fulls, key=lambda run: run.peaks_mb[index])
        peak, peak_half = full.peaks_mb[index], min(run.peaks_mb[index] for run in halves)
        highest = max(run.peaks_mb[index] for run in fulls)
        growth = peak / peak_half if peak_half else float("inf")
        levels = serving_levels_mb(full, index)
        within = levels[1] / levels[0] if levels else None
        met = ran and highest <= goal_mb and growth <= 1 + margin and (within is None or within <= 1 + margin)
        met_all = met_all and met
        served = f"served at {within:.2f}x its first half's level in the second" if within else "served too briefly"
        print(
            f"{who}: peak {peak:.0f} MB at ~{full.frames:,} frames (highest of {len(fulls)}: {highest:.0f} MB), "
            f"{growth:.2f}x its peak at half as many, {served}: "
            f"goal (<= {goal_mb} MB, flat within {margin:.0%}) {'met' if met else 'NOT met'}"
        )
        results.put(
            name,
            ratio=growth,
            meaning=f"{who} peak RSS of `harness replay --speed 0` on N frames over its peak on N/2 frames (the "
            "lowest of the rounds at each size), same run; 1.0 is flat (memory does not grow with the recording), "
            "lower is better",
            comparison=f"the same replay of a synth half as long (N = {full.frames:,}; issue 12's N is 10 million)",
            goal=f"peak <= {goal_mb} MB, flat (peak within {margin:.0%} from N/2 to N, level while served within "
            f"{margin:.0%} from its first half to its second)",
            met=met,
            raw={
                "frames": full.frames,
                "synth_rate": rate,
                "rounds": len(fulls),
                "exit_codes": [run.exit_code for run in halves + fulls],
                "peaks_mb": [round(run.peaks_mb[index], 1) for run in fulls],
                "peaks_mb_at_half_frames": [round(run.peaks_mb[index], 1) for run in halves],
                "bytes_per_frame": round(peak * 2**20 / full.frames),
                "serving_level_mb_first_half": round(levels[0], 1) if levels else None,
                "serving_level_mb_second_half": round(levels[1], 1) if levels else None,
                "serving_growth": round(within, 3) if within else None,
                "wall_s": round(full.samples[-1][0], 1) if full.samples else None,
                "tenths_s_harness_subject_mb": full.tenths(),
            },
        )
    return met_all


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=FRAMES)
    parser.add_argument("--margin", type=float, default=MARGIN, help="allowed growth, from N/2 to N frames and within")
    parser.add_argument("--keep", type=Path, help="a folder to write (or reuse) the two synths in")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="replays of each synth, taken in turns")
    parser.add_argument(
        "--rate", type=float, default=BUSY_RATE, help="the synths' harness synth --rate; 0: the default synth"
    )
    parser.add_argument("--plot", type=Path, help="draw the N-frame run with the lowest peak here, as SVG")
    args = parser.parse_args(argv)
    rate = args.rate or None
    halves, fulls = measure(args.frames, rate, args.keep, args.rounds)
    met = put_figures(halves, fulls, rate, args.margin)
    if args.plot:
        drawn = min(fulls, key=lambda run: run.peaks_mb[0])
        caps = (("harness cap", GOAL_HARNESS_MB), ("subject cap", GOAL_SUBJECT_MB))
        title = f"harness replay --speed 0, ~{drawn.frames:,} frames: RSS over the run"
        args.plot.write_text(memory_svg(drawn.samples, caps, title))
        print(f"== drew {args.plot}")
    print(f"== wrote {results.write()}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
