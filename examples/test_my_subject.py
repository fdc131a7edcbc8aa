"""My client through the harness: it passes `clean` and `gap_storm`, and without its gap check it fails.

Run from this folder or the repository root: `pytest examples/test_my_subject.py`. The replays use a short
synthetic recording so the file runs in seconds; drop `recording=` to use the bundled 60 s fixture, or
point it at a recording of your own (`harness record`).
"""

from pathlib import Path

import pytest

from harness.replay import ReplayRequest, run_replay
from harness.synth.run import write_synthetic_recording

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    return write_synthetic_recording(tmp_path_factory.mktemp("my_subject") / "rec", seconds=20, seed=5)


@pytest.fixture(autouse=True)
def run_here(monkeypatch):
    monkeypatch.chdir(HERE)  # the subject process imports my_subject from the current directory


def failures(report):
    return [f"{row['name']}: {row['value']}" for row in report["expectations"] if not row["passed"]]


@pytest.mark.parametrize("scenario", ["clean", "gap_storm"])
def test_my_client_passes(scenario, recording):
    report = run_replay(ReplayRequest(scenario=scenario, recording=recording, subject="my_subject:create"))
    assert report["passed"], failures(report)


def test_without_its_gap_check_my_client_is_silently_wrong_under_gap_storm(recording):
    report = run_replay(ReplayRequest(scenario="gap_storm", recording=recording, subject="no_gap_check:create"))
    assert not report["passed"]
    assert report["sync"]["divergent"] > 0, "a book that claims synced and differs from the venue's"
    assert report["sync"]["gaps_injected"] > 0 and report["sync"]["losses_detected"] == 0
