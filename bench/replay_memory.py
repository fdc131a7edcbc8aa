"""Memory smoke check for issue 12: `harness replay --speed 0` on a synth, RSS sampled over the run.

A day-long recording (10 million frames) must replay in flat memory. This makes two synths, of about
`--frames` and half as many frames (about 31 frames a second of simulated time by default; `--rate`
makes a busy symbol's, depth, trades and bookTicker together), replays each clean at speed 0 and
samples the resident memory of the harness and of the subject process every 50 ms (every 0.25 s past
a million frames). It prints each run's peaks, bytes per frame, and the RSS at every tenth of the
run (the curve docs/performance.md shows). Flat means
the harness's peak on the longer recording is within `--margin` of the shorter one's: memory that
stays level within a run but was all taken while loading is not flat. Reported as ratios, never a
test: a statement about memory needs whole runs, which is a bench's job. Exits 1 when not flat (it
is not yet: docs/performance.md, "Replay memory").

    make bench-memory                                   # 100,000 and 200,000 frames, about 3 minutes
    python -m bench.replay_memory --keep /tmp/synths    # keep the synths for the next run
    python -m bench.replay_memory --frames 1000000 --rate 1000 --keep /tmp/synths   # issue 12's N, ~15 min
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FRAMES_PER_SECOND = 31.4
"""Frames per simulated second of the default synth (one symbol: depth, trades, bookTicker)."""
RATE_YIELD = 0.641
"""Frames a `--rate R` synth writes per simulated second, over R (measured: 320,522 events in 500 s at
--rate 1000; depth stays at 10 a second, trades and bookTicker make the rest)."""
SAMPLE_S = 0.05


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


def sample_run(argv: list[str], every_s: float = SAMPLE_S) -> tuple[int, list[tuple[float, int, int]]]:
    """Runs `argv`, returning its exit code and (seconds, harness kB, largest child kB) samples."""
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
    samples: list[tuple[float, int, int]] = []
    started = time.monotonic()
    while process.poll() is None:
        child = max((_rss_kb(pid) for pid in _children(process.pid)), default=0)
        samples.append((time.monotonic() - started, _rss_kb(process.pid), child))
        time.sleep(every_s)
    return process.returncode, samples


def _synth(harness: Path, frames: int, folder: Path, rate: float | None) -> None:
    if not folder.exists():
        seconds = f"{frames / (rate * RATE_YIELD if rate else FRAMES_PER_SECOND):.0f}"
        argv = [str(harness), "synth", "--seconds", seconds, "--seed", "1", "-o", str(folder)]
        if rate is not None:
            argv += ["--rate", f"{rate:g}"]
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)


def _replay(harness: Path, recording: Path, frames: int) -> int | None:
    """Prints one run's samples; returns the harness's peak RSS in kB (None when the replay failed)."""
    code, samples = sample_run(
        [str(harness), "replay", "--recording", str(recording), "--scenario", "clean", "--speed", "0"],
        SAMPLE_S if frames <= 1_000_000 else 0.25,
    )
    alive = [s for s in samples if s[1] > 0]
    if code != 0 or not alive:
        print(f"replay of {recording} exited {code}")
        return None
    peak_harness = max(s[1] for s in alive)
    peak_subject = max(s[2] for s in alive)
    print(
        f"~{frames:,} frames, {alive[-1][0]:.1f} s: peak RSS harness {peak_harness / 1024:.0f} MB "
        f"({peak_harness * 1024 / frames:.0f} B/frame), subject {peak_subject / 1024:.0f} MB"
    )
    for tenth in range(1, 11):
        q = tenth / 10
        t, h, c = alive[max(0, round(q * len(alive)) - 1)]
        print(f"  {q:4.0%} t={t:6.1f} s  harness {h / 1024:6.0f} MB  subject {c / 1024:5.0f} MB")
    return peak_harness


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=200_000)
    parser.add_argument("--margin", type=float, default=0.10, help="allowed growth of the peak from N/2 to N frames")
    parser.add_argument("--keep", type=Path, help="a folder to write (or reuse) the two synths in")
    parser.add_argument("--rate", type=float, help="synth frames per simulated second (harness synth --rate)")
    args = parser.parse_args(argv)
    harness = Path(sys.executable).with_name("harness")
    with tempfile.TemporaryDirectory(prefix="replay-memory-") as tmp:
        folder = args.keep or Path(tmp)
        peaks = []
        for frames in (args.frames // 2, args.frames):
            recording = folder / (f"synth-{frames}" if args.rate is None else f"synth-{frames}-rate{args.rate:g}")
            _synth(harness, frames, recording, args.rate)
            peaks.append(_replay(harness, recording, frames))
    if peaks[0] is None or peaks[1] is None:
        return 1
    growth = peaks[1] / peaks[0]
    flat = growth <= 1 + args.margin
    verdict = "flat" if flat else "NOT flat: memory grows with the recording"
    print(
        f"harness peak at {args.frames:,} frames / at half as many: {growth:.2f}x ({verdict}, margin {args.margin:.0%})"
    )
    return 0 if flat else 1


if __name__ == "__main__":
    sys.exit(main())
