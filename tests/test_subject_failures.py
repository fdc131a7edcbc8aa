"""A subject that fails is shown clearly: its own traceback, what a hanging one did, its stderr kept,
imports from the current directory, and recordings that cannot be replayed refused as bad input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import harness.replay as replay_module
from harness.errors import HarnessError
from harness.replay import ReplayRequest, run_replay
from harness.report import render_terminal
from harness.synth.run import write_synthetic_recording
from recorder.format import EventKind, RecordingMeta
from recorder.segments import RecordingWriter

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def short_recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_recording(tmp_path_factory.mktemp("short") / "rec", seconds=20, seed=3)


def rendered(report: dict) -> str:
    from rich.console import Console

    console = Console(width=200, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(render_terminal(report))
    return console.export_text()


def test_a_raising_subject_shows_its_own_traceback_whole_and_its_stderr_is_kept(
    short_recording: Path, tmp_path: Path
) -> None:
    log = tmp_path / "subject.stderr.log"
    request = ReplayRequest(
        scenario="clean", recording=short_recording, speed=0, subject="tests.failing_subjects:raises", stderr_path=log
    )
    report = run_replay(request)
    assert not report["passed"]
    traceback = report["subject"]["traceback"]
    assert traceback.startswith("Traceback (most recent call last):")
    assert "_parse_level" in traceback and traceback.strip().endswith("(expected 2, got 1)")
    assert "Fatal Python error" not in log.read_text()
    assert "about to parse" in log.read_text()
    first_failed = next(row for row in report["expectations"] if not row["passed"])
    assert first_failed["name"] == "subject ran without raising"
    assert report["subject"]["exit_code"] == 1 and report["subject"]["stderr_file"] == str(log)
    text = rendered(report)
    assert "the subject raised" in text and "price, size = level" in text


def test_a_hanging_subject_is_stopped_after_a_stated_time_with_what_it_did(
    short_recording: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(replay_module, "SUBSCRIBE_TIMEOUT_S", 1.0)
    monkeypatch.setattr(replay_module, "STOP_TIMEOUT_S", 1.0)
    subject = "tests.failing_subjects:hangs"
    request = ReplayRequest(scenario="clean", recording=short_recording, speed=0, subject=subject)
    report = run_replay(request)
    stopped = report["subject"]["stopped"]
    assert stopped.startswith("stopped after 1 s without subscribing to any stream")
    assert "connections: 0" in stopped and "subscribed: no" in stopped and "books reported: 0" in stopped
    assert "killed" in stopped
    assert not report["passed"]
    kept = Path(report["subject"]["stderr_file"])
    assert kept.is_file(), "a failed subject's temporary stderr is kept"
    kept.unlink()
    assert "without subscribing" in rendered(report)


def test_each_wrong_final_book_names_its_reason_in_the_terminal(short_recording: Path) -> None:
    report = run_replay(
        ReplayRequest(scenario="clean", recording=short_recording, speed=0, subject="tests.broken_subjects:gap_blind")
    )
    report["sync"]["final_book_correct"] = False
    report["sync"]["final"][0].update(correct=False, detail="not synced at the end")
    assert "BTCUSDT: not synced at the end" in rendered(report)


def test_subject_module_is_imported_from_the_current_directory(short_recording: Path, tmp_path: Path) -> None:
    (tmp_path / "my_client.py").write_text(
        "from harness.default_subject import create as ours\n\ndef x(config):\n    return ours(config)\n"
    )
    harness = str(Path(sys.executable).parent / "harness")  # a console script: the cwd is not on its path
    result = subprocess.run(
        [harness, "replay", "--scenario", "clean", "--recording", str(short_recording), "--subject", "my_client:x"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "PASS" in result.stdout


def test_a_subject_module_that_is_nowhere_is_one_line_naming_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(HarnessError, match=r"cannot be found \(looked in "):
        run_replay(ReplayRequest(scenario="clean", subject="no_such_client_module:create"))


def test_a_recording_without_depth_frames_is_bad_input_naming_what_is_missing(tmp_path: Path) -> None:
    start = 1_700_000_000 * 10**9
    meta = RecordingMeta("binance-spot", ("BTCUSDT",), "0", start, source="test", recording_id="no-depth")
    with RecordingWriter(tmp_path / "rec", meta, fsync=False) as writer:
        ticker = b'{"stream":"btcusdt@bookTicker","data":{"u":5,"s":"BTCUSDT","b":"1.0","B":"1","a":"2.0","A":"1"}}'
        for i in range(3):
            writer.append(
                EventKind.WS_RECV, conn_id=1, wall_ns=start + i, mono_ns=i, payload=ticker, stream="btcusdt@bookTicker"
            )
    result = subprocess.run(
        [sys.executable, "-m", "harness.cli", "replay", "--scenario", "clean", "--recording", str(tmp_path / "rec")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and "no depth update frames" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("scenario", ["gap_storm", "flappy_connection", "corrupt_frames"])
def test_a_subject_that_names_no_events_passes_by_what_its_books_show(scenario: str, short_recording: Path) -> None:
    quiet = "tests.quiet_subject:create"
    report = run_replay(ReplayRequest(scenario=scenario, recording=short_recording, subject=quiet))
    assert report["passed"], [row for row in report["expectations"] if not row["passed"]]
    sync = report["sync"]
    assert sync["events"] == {} and sync["losses_detected"] >= 1 and sync["recovered"] >= 1
