"""My client through the harness: it passes `clean` and `gap_storm`, and without its gap check it fails.

Run from this folder or the repository root: `pytest examples/test_my_subject.py`. The harness's pytest
plugin (installed with the harness) runs each marked test once per scenario and seed, `harness_replay`
runs one replay and returns its report, and a failing test prints the `harness replay` command that
reproduces it; `--harness-seed N` reruns every marked test at seed N. The replays use a short synthetic
recording so the file runs in seconds; drop `recording=` to use the bundled 60 s fixture, or point it at
a recording of your own (`harness record`). docs/api.md describes the plugin.
"""

from pathlib import Path

import pytest

from harness.synth.run import write_synthetic_recording

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    return write_synthetic_recording(tmp_path_factory.mktemp("my_subject") / "rec", seconds=20, seed=5)


@pytest.fixture(autouse=True)
def run_here(monkeypatch):
    monkeypatch.chdir(HERE)  # the subject process imports my_subject from the current directory


@pytest.mark.scenario("clean", "gap_storm")
def test_my_client_passes(harness_replay, recording):
    report = harness_replay("my_subject:create", recording=recording)
    assert report["passed"], report  # on failure: <replay gap_storm seed 1 FAIL: ...> and the command


@pytest.mark.scenario("gap_storm")
def test_without_its_gap_check_my_client_is_silently_wrong_under_gap_storm(harness_replay, recording):
    report = harness_replay("no_gap_check:create", recording=recording)
    assert not report["passed"]
    assert report["sync"]["divergent"] > 0, "a book that claims synced and differs from the venue's"
    assert report["sync"]["gaps_injected"] > 0 and report["sync"]["losses_detected"] == 0
