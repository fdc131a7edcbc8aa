"""Read + schedule + oracle, no sockets, frames/s, against pyarrow reading the payload column alone
(issue 12's second row, goal >= 0.5x), on a busy symbol's synth made in the run.

What `harness replay` does with a recording besides serving and judging it, in the order it does it:
`load_replay_data` (the scan: replay start, snapshots, chain ids), `Scenario.plan` for `clean` (the fault
plan's build walk), one walk of the schedule the venue walks (`FaultPlan.entries`, every frame decoded
from the store into a `Send`), and the oracle (`oracle_for`: every depth frame decoded and applied, every
top kept, which a speed-0 run computes while it serves) with the final ids the replay asks it for. The
comparison reads the same segments' `payload` column with pyarrow (`iter_batches` + `to_pylist`: every
payload as Python bytes), the least any reader of the recording must do.

Both sides are timed in process CPU seconds (`time.process_time`: pyarrow may decode on its pool's
threads, which thread CPU time would leave out, and a shared machine's load moves wall times by 10x),
best of ROUNDS rounds taken in turns (pyarrow read PYARROW_READS times a round), after one untimed
read that brings the files into the page cache. The collector stays on: our pipeline's collections
are part of its cost.

    python -m bench load                                      # in `make bench`: 300,000 frames
    python -m bench.load_bench --frames 100000                # a quick look
    python -m bench.load_bench --keep /tmp/synths             # keep (or reuse) the synth
    python -m bench.load_bench --recording R                  # any recording
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from bench import results
from bench.synths import BUSY_RATE, synth
from harness.replay import oracle_for
from harness.scenarios import load_scenario
from replayer.replay_data import load_replay_data

FRAMES = 300_000
ROUNDS = 3
PYARROW_READS = 3
"""pyarrow's reads per round: each is a tenth of ours, so a moment's noise moves it most."""
GOAL = 0.5
STAGES = ("load", "plan", "schedule walk", "oracle")


def segments(recording: Path) -> list[Path]:
    return sorted(recording.glob("segment-*.parquet")) if recording.is_dir() else [recording]


def pyarrow_payloads(recording: Path) -> int:
    """Every segment's `payload` column as Python bytes, batch by batch; returns the rows read."""
    rows = 0
    for segment in segments(recording):
        for batch in pq.ParquetFile(segment).iter_batches(columns=["payload"]):
            rows += len(batch.column(0).to_pylist())
    return rows


def read_schedule_oracle(recording: Path, scenario: str = "clean") -> tuple[int, dict[str, float]]:
    """(frames, CPU seconds per stage) of what a replay does with the recording before and while it
    serves, sockets and judging aside."""
    spent: dict[str, float] = {}
    clock = _Stopwatch(spent)
    data = clock("load", lambda: load_replay_data(recording))
    chosen = load_scenario(scenario)
    plan = clock("plan", lambda: chosen.plan(data.frames, chosen.seed, data.dialect))
    walked = clock("schedule walk", lambda: sum(1 for _ in plan.entries))
    oracle = clock("oracle", lambda: _oracle_and_final_ids(data))
    oracle.close()
    if walked < len(data.frames):
        raise RuntimeError(f"the schedule walked {walked} entries for {len(data.frames)} frames")
    return len(data.frames), spent


def _oracle_and_final_ids(data: Any) -> Any:
    oracle = oracle_for(data, all_tops=True)  # every top, as a run computes them (on demand at speed 0)
    final_ids = {symbol: oracle.last_update_id(symbol) for symbol in oracle.symbols}
    if not final_ids:
        raise RuntimeError("the oracle knows no book: nothing was judged")
    return oracle


class _Stopwatch:
    """Runs a stage and adds its process CPU seconds to `spent` under its name."""

    def __init__(self, spent: dict[str, float]) -> None:
        self.spent = spent

    def __call__(self, stage: str, work: Callable[[], Any]) -> Any:
        gc.collect()
        started = time.process_time()
        value = work()
        self.spent[stage] = self.spent.get(stage, 0.0) + time.process_time() - started
        return value


def measure(recording: Path, rounds: int = ROUNDS) -> dict[str, Any]:
    """Best of `rounds` of each side (of `rounds` x PYARROW_READS for pyarrow), taken in turns; the
    figure's raw numbers."""
    rows = pyarrow_payloads(recording)  # untimed: the page cache, and pyarrow's first-use costs
    ours: list[dict[str, float]] = []
    theirs: list[float] = []
    frames = 0
    for _ in range(rounds):
        frames, spent = read_schedule_oracle(recording)
        ours.append(spent)
        for _ in range(PYARROW_READS):
            gc.collect()
            started = time.process_time()
            pyarrow_payloads(recording)
            theirs.append(time.process_time() - started)
    best = min(ours, key=lambda spent: sum(spent.values()))
    ours_s, pyarrow_s = sum(best.values()), min(theirs)
    return {
        "frames": frames,
        "rows_read_by_pyarrow": rows,
        "recording_mb": round(sum(p.stat().st_size for p in segments(recording)) / 2**20, 1),
        "ours_cpu_s": round(ours_s, 3),
        "pyarrow_cpu_s": round(pyarrow_s, 3),
        "ours_frames_per_s": round(frames / ours_s),
        "pyarrow_rows_per_s": round(rows / pyarrow_s),
        "stages_cpu_s": {stage: round(best[stage], 3) for stage in STAGES},
        "rounds": rounds,
        "pyarrow_reads": len(theirs),
    }


def report(raw: dict[str, Any]) -> float:
    """Prints the figure and its per-stage split; returns the ratio."""
    ratio = raw["ours_frames_per_s"] / raw["pyarrow_rows_per_s"]
    frames = raw["frames"]
    print(f"read + schedule + oracle (clean, no sockets), {frames:,} frames, {raw['recording_mb']} MB, CPU s")
    for stage in STAGES:
        seconds = raw["stages_cpu_s"][stage]
        share = seconds / raw["ours_cpu_s"]
        print(f"  {stage:14} {seconds:7.2f} s  {seconds * 1e6 / frames:6.2f} us/frame  {share:4.0%}")
    print(f"  {'ours':14} {raw['ours_cpu_s']:7.2f} s  {raw['ours_frames_per_s']:>10,} frames/s")
    print(f"  {'pyarrow':14} {raw['pyarrow_cpu_s']:7.2f} s  {raw['pyarrow_rows_per_s']:>10,} rows/s (payloads alone)")
    print(f"  ratio {ratio:.3f}x (goal >= {GOAL}x: {'met' if ratio >= GOAL else 'NOT met'})")
    return ratio


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=FRAMES, help="frames of the synth made for the run")
    parser.add_argument("--rate", type=float, default=BUSY_RATE, help="the synth's harness synth --rate")
    parser.add_argument("--keep", type=Path, help="a folder to write (or reuse) the synth in")
    parser.add_argument("--recording", type=Path, help="measure this recording instead of a synth")
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    args = parser.parse_args(argv or [])
    with tempfile.TemporaryDirectory(prefix="load-bench-") as tmp:
        recording = args.recording or synth(args.keep or Path(tmp), args.frames, args.rate)
        raw = measure(recording, args.rounds)
    ratio = report(raw)
    results.put(
        "read_schedule_oracle_vs_pyarrow",
        ratio=ratio,
        meaning="frames/s of load_replay_data + clean's plan + one walk of its schedule + the oracle (CPU), "
        "over pyarrow's rows/s; higher is better",
        comparison="pyarrow iter_batches(columns=['payload']) + to_pylist on the same segments, CPU",
        goal=f">= {GOAL}x",
        met=ratio >= GOAL,
        raw=raw,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
