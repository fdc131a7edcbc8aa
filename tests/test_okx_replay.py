"""`harness replay` on OKX end to end: OKX's own rule planted broken in a subject, a sample of the scenario
library in `make test`, and (marked slow) the whole library on a synth OKX recording.

The planted bug follows tests/test_replay_catches.py (its `Case` writes the scenario, with the
expectations every library scenario asks) on a recording of its own, as tests/test_bybit_replay.py
does, so the timing-sensitive catches fixture keeps its load.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from harness.replay import ReplayRequest, run_replay
from harness.synth.run import write_synthetic_recording
from tests.library_runs import failures, replay_library
from tests.test_replay_catches import DIVERGED, Case, _fault

REPO = Path(__file__).resolve().parents[1]
REST_SNAPSHOT_FAULTS = {"chaos", "restart_rest_outage", "snapshot_errors", "stale_snapshot"}
"""Scenarios with faults OKX cannot have (its snapshot comes on the stream): listed, not passed."""
CHECKSUM = Case(
    "corrupt",
    "skips_okx_checksum",
    8,
    _fault("corrupt", "15%", "75%", probability=0.1, mode="checksum"),
    '"sync.resyncs" = ">= 1"',
    venue="okx",
)
"""OKX's own rule: the book after an update must match its checksum. Mode `checksum` changes only the
checksum, so the levels a blind subject applies are the clean ones: what gives it away is the frames
it built on, which never reached it intact."""


def test_a_subject_that_skips_the_checksum_builds_on_frames_the_venue_disowned_and_ours_resyncs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recording = write_synthetic_recording(tmp_path / "okx", seconds=12, seed=7, venue="okx")
    scenario = tmp_path / "okx_checksum.toml"
    scenario.write_text(CHECKSUM.toml("okx_checksum"))
    monkeypatch.syspath_prepend(str(REPO))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    broken_subject = "tests.broken_subjects:" + CHECKSUM.broken
    with ThreadPoolExecutor(2) as pool:
        broken_run = pool.submit(
            run_replay, ReplayRequest(scenario=str(scenario), recording=recording, subject=broken_subject)
        )
        good_run = pool.submit(run_replay, ReplayRequest(scenario=str(scenario), recording=recording))
        broken, good = broken_run.result(), good_run.result()
    assert good["passed"], failures(good)
    assert good["sync"]["resyncs"] >= 1 and good["faults"]["corrupt"] >= 1
    assert broken["subject"]["exit_code"] == 0 and not broken["passed"]
    failed = {row["name"] for row in broken["expectations"] if row["passed"] is False}
    assert {*DIVERGED, "sync.resyncs >= 1"} <= failed
    sync = broken["sync"]
    assert sync["divergent"] > 0 and sync["holes_bridged"] > 0 and sync["resyncs"] == 0
    assert {example["hole"]["why"] for example in sync["divergence_examples"]} == {"never reached the subject intact"}
    assert sync["final_book_correct"], "only the checksum was wrong: the levels it applied were the clean ones"


def test_gap_storm_passes_on_an_okx_synth_recording(tmp_path: Path) -> None:
    """`make test`'s sample of the slow matrix below: each lost update leaves a `prevSeqId` that does not
    link, and the subject subscribes to that instrument again on the open connection for a new snapshot
    on the stream, quickly enough that the scenario's coverage holds on a short recording."""
    recording = write_synthetic_recording(tmp_path / "okx", "BTC-USDT", 12, seed=3, venue="okx")
    report = run_replay(ReplayRequest(scenario="gap_storm", recording=recording))
    assert report["passed"], failures(report)
    sync = report["sync"]
    assert sync["divergent"] == 0 and sync["final_book_correct"] is True
    assert report["faults"]["gap"] > 0 and sync["gaps_detected"] > 0 and sync["resyncs"] > 0


@pytest.mark.slow
@pytest.mark.timeout(900)  # 15 paced replays of 60 s, 4 at a time: about 2 minutes on an idle machine
def test_every_library_scenario_on_an_okx_synth_recording(tmp_path: Path) -> None:
    recording = write_synthetic_recording(tmp_path / "okx", "BTC-USDT,ETH-USDT", 60, seed=3, venue="okx")
    reports = replay_library(recording)
    assert all(report["sync"]["divergent"] == 0 for report in reports.values()), "never silently wrong"
    failed = {name: failures(report) for name, report in reports.items() if not report["passed"]}
    assert not failed
    assert all(report["sync"]["final_book_correct"] for report in reports.values())
    listed = {name for name, report in reports.items() if report["faults_not_applicable"]}
    assert listed == REST_SNAPSHOT_FAULTS
