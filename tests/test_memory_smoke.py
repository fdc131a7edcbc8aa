"""CI's smoke of issue 12's memory goal: `harness replay --speed 0` of a 200,000-frame busy-symbol synth
keeps the harness's memory flat over the run.

The measuring is bench/replay_memory.py's (`make bench-memory` runs it on two sizes and writes
`memory_harness_flatness`); this runs the within-run half of it once. Memory, not time: the run may take
as long as the machine needs. Flat here is the peak RSS of the run's second half (the replay served and
judged) within WITHIN of its first half's (imports, loading, the plan, the oracle, the replay's start):
a holder that keeps a few hundred bytes or more for every frame the venue walks shows, as a replay
that held the frames, the schedule or the send log in memory did. The caps are far above a flat run's
(about 185 MB in the harness, 32 MB in the subject) and at the issue's goal for 10 million frames: a
replay that loads the recording up front is level within the run, and the caps catch it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.replay_memory import GOAL_HARNESS_MB, GOAL_SUBJECT_MB, halves_mb, replay
from bench.synths import synth

FRAMES = 200_000
WITHIN = 1.25


@pytest.mark.timeout(600)
def test_speed_0_replay_of_200k_frames_keeps_the_harness_memory_flat(tmp_path: Path) -> None:
    recording = synth(tmp_path, FRAMES)
    report_path = tmp_path / "report.json"
    run = replay(recording, FRAMES, "--report", str(report_path))
    assert run.exit_code == 0, run.tenths()
    report = json.loads(report_path.read_text())
    assert report["passed"] and report["frames"]["sent"] > FRAMES // 5
    first, second = halves_mb(run.harness_kb)
    assert second <= first * WITHIN, f"harness {first:.0f} MB -> {second:.0f} MB over the run: {run.tenths()}"
    harness, subject = run.peaks_mb
    assert 0 < harness <= GOAL_HARNESS_MB, run.tenths()
    assert 0 < subject <= GOAL_SUBJECT_MB, run.tenths()
