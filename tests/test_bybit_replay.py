"""`harness replay` on Bybit end to end: a synth recording (in-stream snapshots, subscribe by message)
served by Bybit's wire, synced by our default subject with Bybit's rule, judged by the oracle's own copy;
and (marked slow) the whole scenario library on it: every scenario runs and passes, none diverges silently,
and the REST snapshot faults Bybit cannot have are reported as not applicable."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from rich.console import Console

from harness.replay import ReplayRequest, run_replay
from harness.report import render_terminal
from harness.synth.run import write_synthetic_recording
from tests.library_runs import failures, replay_library

REPO = Path(__file__).resolve().parents[1]
GAPS = """name = "bybit_gaps"
description = "single lost deltas against a subject that never checks u"
speed = 8
seed = 1

[[faults]]
kind = "gap"
start = "15%"
stop = "75%"
count = 10
length = 1

[expect]
"sync.divergent" = 0
"sync.final_book_correct" = true
"faults.gap" = ">= 1"
"""


def test_a_bybit_synth_recording_replays_clean(tmp_path: Path) -> None:
    recording = write_synthetic_recording(tmp_path / "bybit", "BTCUSDT,ETHUSDT", 10, seed=2, venue="bybit")
    report = run_replay(ReplayRequest(scenario="clean", recording=recording, speed=0))
    assert report["passed"], failures(report)
    sync = report["sync"]
    assert sync["divergent"] == 0 and sync["recording_gaps"] == 0 and sync["resyncs"] == 0
    assert sync["checks"] > 50 and {final["symbol"] for final in sync["final"] if final["correct"]} == {
        "BTCUSDT",
        "ETHUSDT",
    }
    assert report["venue"]["rest_requests"] == {}


def test_a_scenario_of_rest_snapshot_faults_is_not_applicable_on_bybit_and_says_so(tmp_path: Path) -> None:
    """stale_snapshot's faults are all REST snapshot faults: each is listed, the expectation that counts
    them is not applicable (neither passed nor failed), and the verdict says the run was a clean one."""
    recording = write_synthetic_recording(tmp_path / "bybit", "BTCUSDT", 10, seed=2, venue="bybit")
    report = run_replay(ReplayRequest(scenario="stale_snapshot", recording=recording, speed=0))
    assert set(report["faults_not_applicable"]) == {"snapshot.0", "snapshot.1"}
    row = next(row for row in report["expectations"] if row["name"] == "faults.snapshot >= 1")
    assert row["status"] == "not_applicable" and row["passed"] is None
    assert "over the WebSocket" in row["reason"]
    assert report["passed"] and report["all_faults_not_applicable"], failures(report)
    console = Console(record=True, width=200)
    console.print(render_terminal(report))
    assert "no fault of this scenario applies to this venue" in console.export_text()


@pytest.mark.slow
def test_every_library_scenario_on_a_bybit_synth_recording(tmp_path: Path) -> None:
    recording = write_synthetic_recording(tmp_path / "bybit", "BTCUSDT,ETHUSDT", 60, seed=3, venue="bybit")
    reports = replay_library(recording)
    assert all(report["sync"]["divergent"] == 0 for report in reports.values()), "never silently wrong"
    failed = {name: failures(report) for name, report in reports.items() if not report["passed"]}
    # chaos's stall used to meet no client here: each gap cost a reconnect (with a growing backoff), and
    # the stall fell between two; the subject now asks for the lost book on the open connection.
    assert not failed
    # The REST faults Bybit cannot have (no REST snapshot) are listed, and the expectations that count
    # them are not applicable; a restart's REST outage is left out alone, so the restart still counts.
    listed = {name for name, report in reports.items() if report["faults_not_applicable"]}
    assert listed == {"chaos", "restart_rest_outage", "snapshot_errors", "stale_snapshot"}
    not_applicable = {name for name, r in reports.items() if any(row["passed"] is None for row in r["expectations"])}
    assert not_applicable == {"chaos", "snapshot_errors", "stale_snapshot"}
    assert list(reports["restart_rest_outage"]["faults_not_applicable"]) == ["exchange_restart.0.rest_outage"]


def test_a_subject_blind_to_u_diverges_under_gaps_and_ours_recovers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bybit's own rule planted broken (tests/broken_subjects.py `ignores_bybit_u`), as
    tests/test_replay_catches.py does for the Binance rules, on a recording of its own."""
    recording = write_synthetic_recording(tmp_path / "bybit", "BTCUSDT", 20, seed=7, venue="bybit")
    scenario = tmp_path / "bybit_gaps.toml"
    scenario.write_text(GAPS)
    monkeypatch.syspath_prepend(str(REPO))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    with ThreadPoolExecutor(2) as pool:
        broken_run = pool.submit(
            run_replay,
            ReplayRequest(scenario=str(scenario), recording=recording, subject="tests.broken_subjects:ignores_bybit_u"),
        )
        good_run = pool.submit(run_replay, ReplayRequest(scenario=str(scenario), recording=recording))
        broken, good = broken_run.result(), good_run.result()
    assert good["passed"], failures(good)
    assert good["sync"]["gaps_detected"] > 0 and good["sync"]["recovered"] > 0
    assert good["venue"]["connections"] == 1, "each lost book asked for again on the open connection"
    assert broken["subject"]["exit_code"] == 0 and not broken["passed"]
    assert {"no silent divergence", "sync.divergent == 0"} <= {
        r["name"] for r in broken["expectations"] if not r["passed"]
    }
    assert broken["sync"]["divergent"] > 0 and broken["sync"]["gaps_detected"] == 0 < broken["sync"]["gaps_injected"]
