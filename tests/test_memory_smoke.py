"""CI's smoke of issue 12's memory goal: `harness replay --speed 0` of a 200,000-frame busy-symbol synth
keeps the harness's memory flat.

The measuring is bench/replay_memory.py's (`make bench-memory` runs it on N/2 and N frames and writes
`memory_harness_flatness`); this runs a cheap form of it. Memory, not time: the runs may take as long as
the machine needs. Flat, both ways, same run:

- with the recording: the harness's peak RSS on 200,000 frames within GROWTH of its peak on a tenth as
  many. A replay that holds something per frame shows here even when it takes it all while loading:
  the code before the streaming work (dd9487a) peaked at 186 MB on 20,000 frames and 367 MB on
  200,000 (1.97x); now 173 and 185 MB (1.07x). GROWTH leaves room for a peak's noise: identical runs'
  peaks differ by 10 to 15% (transient allocations while setting up and judging).
- over the run: the harness's level while the replay is served (the median RSS while the subject runs)
  within WITHIN from the first half of that time to the second: a holder that grows as the venue walks
  (reports, send log) shows here.

And the peaks stay under issue 12's caps for 10 million frames (500 MB harness, 300 MB subject).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.replay_memory import GOAL_HARNESS_MB, GOAL_SUBJECT_MB, SERVING_SAMPLES, replay, serving_levels_mb
from bench.synths import synth

FRAMES = 200_000
SMALL = FRAMES // 10
GROWTH = 1.5
WITHIN = 1.25


@pytest.mark.timeout(600)
def test_speed_0_replay_of_200k_frames_keeps_the_harness_memory_flat(tmp_path: Path) -> None:
    small = replay(synth(tmp_path, SMALL), SMALL)
    report_path = tmp_path / "report.json"
    run = replay(synth(tmp_path, FRAMES), FRAMES, "--report", str(report_path))
    assert small.exit_code == 0 and run.exit_code == 0, run.tenths()
    report = json.loads(report_path.read_text())
    assert report["passed"] and report["frames"]["sent"] > FRAMES // 5
    harness, subject = run.peaks_mb
    assert harness <= small.peaks_mb[0] * GROWTH, f"{small.peaks_mb[0]:.0f} MB -> {harness:.0f} MB: {run.tenths()}"
    levels = serving_levels_mb(run, 0)
    assert levels is not None, f"the subject ran for under {SERVING_SAMPLES} samples: {run.tenths()}"
    first, second = levels
    assert second <= first * WITHIN, f"harness {first:.0f} MB -> {second:.0f} MB while served: {run.tenths()}"
    assert 0 < harness <= GOAL_HARNESS_MB and 0 < subject <= GOAL_SUBJECT_MB, run.tenths()
