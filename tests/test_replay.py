"""`harness replay` end to end: the whole scenario library against our components, determinism, the CLI.

The library runs on the default fixture (four symbols on one connection: BTCUSDT, ETHUSDT, SOLUSDT
crossing 100.00, SHIBUSDT below a cent), on a one-symbol synthetic recording of another seed, and on
the bundled slice of a real Binance capture. Replays are
paced by the scenario (mostly waiting on the replay clock), so they run a few at a time in threads,
each with its own event loop, server and subject process.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import orjson
import pytest

import harness.replay as replay_module
from harness.message_log import MessageLog
from harness.replay import BUNDLED_FIXTURE, ReplayRequest, run_replay
from harness.replay_command import speed_zero_notice
from harness.scenarios import list_scenarios, load_scenario
from harness.synth.run import write_synthetic_recording
from harness.venues.binance_spot.rest import REQUEST_WEIGHT_PER_MINUTE
from replayer.replay_data import load_replay_data

REPO = Path(__file__).resolve().parents[1]
LIBRARY = sorted(s.name for s in list_scenarios())
REAL_SLICE = BUNDLED_FIXTURE.parent / "binance_spot_btcusdt_real_60s"
OTHER_SEED = 7
PARALLEL = 4


REAL_SAMPLE = ("clean", "corrupt_frames", "gap_storm", "chaos")
"""The library scenarios `make test` runs on the real slice; `make test-full` runs the rest there too."""


def _run_library(
    recording: Path, rest_weight_limit: int = REQUEST_WEIGHT_PER_MINUTE, names: tuple[str, ...] | list[str] = LIBRARY
) -> dict[str, dict]:
    with ThreadPoolExecutor(PARALLEL) as pool:
        futures = {
            name: pool.submit(
                run_replay, ReplayRequest(scenario=name, recording=recording, rest_weight_limit=rest_weight_limit)
            )
            for name in names
        }
        return {name: future.result() for name, future in futures.items()}


@pytest.fixture(scope="module")
def fixture_reports() -> dict[str, dict]:
    return _run_library(BUNDLED_FIXTURE)


@pytest.fixture(scope="module")
def other_seed_reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    recording = write_synthetic_recording(tmp_path_factory.mktemp("seed7") / "rec", seconds=60, seed=OTHER_SEED)
    return _run_library(recording)


def _real_slice(names: tuple[str, ...] | list[str]) -> dict[str, dict]:
    """Without the weight limit: the slice's book is about 1,000 levels deep, so each resync needs a
    5,000-level snapshot (250 weight), and reorder_window and chaos resync 15 to 18 times at their
    default seeds (4,750 and 5,000 weight), more at others, near Binance's 6,000: the live venue could
    refuse our subject there too (see docs/fake-venue.md). This run tests sync on real data; the synth
    runs keep the limit on."""
    return _run_library(REAL_SLICE, rest_weight_limit=0, names=names)


@pytest.fixture(scope="module")
def real_sample_reports() -> dict[str, dict]:
    return _real_slice(REAL_SAMPLE)


@pytest.fixture(scope="module")
def real_rest_reports() -> dict[str, dict]:
    return _real_slice([name for name in LIBRARY if name not in REAL_SAMPLE])


def _failures(report: dict) -> list[str]:
    return [f"{row['name']}: got {row['value']!r}" for row in report["expectations"] if not row["passed"]]


def _assert_passed_with_a_correct_book(report: dict) -> None:
    assert report["passed"], _failures(report)
    assert report["sync"]["divergent"] == 0
    assert report["sync"]["final_book_correct"] is True
    assert report["sync"]["checks"] > 0
    assert report["latency_us"]["e2e"]["count"] > 0


@pytest.mark.parametrize("name", LIBRARY)
def test_scenario_passes_on_bundled_fixture(name: str, fixture_reports: dict[str, dict]) -> None:
    _assert_passed_with_a_correct_book(fixture_reports[name])


@pytest.mark.slow
@pytest.mark.parametrize("name", LIBRARY)
def test_scenario_passes_on_another_seed(name: str, other_seed_reports: dict[str, dict]) -> None:
    _assert_passed_with_a_correct_book(other_seed_reports[name])


def _assert_real_slice_passed(report: dict) -> None:
    _assert_passed_with_a_correct_book(report)
    weight = report["venue"]["rest_weight"]
    assert weight["limit"] == 0 and weight["peak_per_minute"] >= 250 and weight["refused_429"] == 0


@pytest.mark.parametrize("name", REAL_SAMPLE)
def test_scenario_passes_on_the_real_capture_slice(name: str, real_sample_reports: dict[str, dict]) -> None:
    _assert_real_slice_passed(real_sample_reports[name])


@pytest.mark.slow
@pytest.mark.parametrize("name", [name for name in LIBRARY if name not in REAL_SAMPLE])
def test_the_rest_of_the_library_passes_on_the_real_slice(name: str, real_rest_reports: dict[str, dict]) -> None:
    _assert_real_slice_passed(real_rest_reports[name])


def test_our_subject_stays_within_the_rest_weight_limit_on_the_fixture(fixture_reports: dict[str, dict]) -> None:
    for name, report in fixture_reports.items():
        weight = report["venue"]["rest_weight"]
        assert weight["limit"] == 6000 and weight["refused_429"] == weight["refused_418"] == 0, (name, weight)


def test_the_default_fixture_checks_all_four_symbols(fixture_reports: dict[str, dict]) -> None:
    for name, report in fixture_reports.items():
        finals = report["sync"]["final"]
        assert [final["symbol"] for final in finals] == ["BTCUSDT", "ETHUSDT", "SHIBUSDT", "SOLUSDT"], name
        assert all(final["correct"] for final in finals), (name, finals)
    clean = fixture_reports["clean"]
    assert clean["sync"]["events"]["synced"] == 4 and clean["venue"]["rest_requests"]["depth:200"] == 4


def test_every_fault_a_library_scenario_arms_is_served_at_its_default_seed(fixture_reports: dict[str, dict]) -> None:
    for name in LIBRARY:
        scenario = load_scenario(name)
        report = fixture_reports[name]
        by_id = report["faults_by_id"]
        assert [row["kind"] for row in by_id.values()] == [spec.kind for spec in scenario.faults]
        assert all(row["served"] >= 1 for row in by_id.values()), (name, by_id)
        assert all(report["faults"][kind] <= armed for kind, armed in report["faults_armed"].items()), name


def test_fault_detecting_scenarios_detect_gaps(fixture_reports: dict[str, dict]) -> None:
    gap_storm = fixture_reports["gap_storm"]["sync"]
    # A gap that falls while the subject is still resyncing from the previous one is covered by the
    # snapshot it is waiting for, so on a loaded machine it may detect fewer than were injected.
    assert 0 < gap_storm["gaps_detected"] <= gap_storm["gaps_injected"]
    assert fixture_reports["clean"]["sync"]["gaps_injected"] == 0
    assert fixture_reports["clean"]["sync"]["resyncs"] == 0


def test_two_symbols_on_one_connection_are_each_synced_checked_and_correct(tmp_path: Path) -> None:
    recording = write_synthetic_recording(tmp_path / "two", "BTCUSDT,ETHUSDT", seconds=30, seed=3)
    report = run_replay(ReplayRequest(scenario="gap_storm", recording=recording))
    _assert_passed_with_a_correct_book(report)
    assert [(final["symbol"], final["correct"]) for final in report["sync"]["final"]] == [
        ("BTCUSDT", True),
        ("ETHUSDT", True),
    ]
    assert 0 < report["sync"]["gaps_detected"] <= report["sync"]["gaps_injected"]
    assert report["venue"]["rest_requests"]["depth:200"] >= 2


def test_a_subject_that_prints_to_stdout_does_not_corrupt_its_reports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    monkeypatch.syspath_prepend(str(REPO))
    recording = write_synthetic_recording(tmp_path / "rec", seconds=10, seed=2)
    report = run_replay(ReplayRequest(scenario="clean", recording=recording, subject="tests.printing_subject:create"))
    assert report["subject"]["protocol_error"] is None and report["subject"]["exit_code"] == 0
    _assert_passed_with_a_correct_book(report)


def test_a_subject_that_crashes_before_subscribing_fails_the_run_and_shows_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The replay clock never starts; fault windows used to be placed on it and raised a TypeError.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    monkeypatch.syspath_prepend(str(REPO))
    recording = write_synthetic_recording(tmp_path / "rec", seconds=10, seed=2)
    subject = "tests.broken_subjects:crashes_before_connecting"
    report = run_replay(ReplayRequest(scenario="gap_storm", recording=recording, subject=subject))
    assert report["passed"] is False and report["subject"]["exit_code"] != 0
    failed = {row["name"]: row["value"] for row in report["expectations"] if not row["passed"]}
    assert "crashed before it connected" in failed["subject ran without raising"]
    assert report["sync"]["coverage"] == 0


def test_a_book_reported_at_a_snapshot_inside_an_event_is_judged_against_what_the_venue_served(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    monkeypatch.syspath_prepend(str(REPO))
    recording = write_synthetic_recording(tmp_path / "rec", seconds=10, seed=4)
    report = run_replay(ReplayRequest(scenario="clean", recording=recording, subject="tests.eager_subject:create"))
    # Every synthetic event straddles, so the snapshot's id is no frame boundary: without the venue's
    # log of what it served, the observation made there would be counted as silent divergence.
    _assert_passed_with_a_correct_book(report)
    assert report["sync"]["unknown_update_ids"] == 0
    assert report["venue"]["rest_requests"]["depth:200"] >= 1


def test_same_recording_scenario_and_seed_give_the_same_schedule_and_counts(tmp_path: Path) -> None:
    frames = load_replay_data(BUNDLED_FIXTURE).frames
    scenario = load_scenario("chaos")
    first, second = scenario.plan(frames, 3), scenario.plan(frames, 3)
    assert first.entries == second.entries
    assert first.injected == second.injected
    assert scenario.plan(frames, 4).entries != first.entries
    recording = write_synthetic_recording(tmp_path / "rec", seconds=20, seed=5)
    runs = [run_replay(ReplayRequest(scenario="gap_storm", seed=5, recording=recording)) for _ in range(2)]
    assert runs[0]["faults"] == runs[1]["faults"]
    assert runs[0]["sync"]["gaps_injected"] == runs[1]["sync"]["gaps_injected"]
    assert runs[0]["frames"]["sent"] == runs[1]["frames"]["sent"]
    assert runs[0]["seed"] == 5


def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True, timeout=120, cwd=cwd
    )


def test_speed_zero_notes_the_faults_that_need_time_and_only_then() -> None:
    note = speed_zero_notice(load_scenario("chaos"), 0.0)
    assert note is not None and note.startswith("note: at --speed 0") and "\n" not in note
    assert "disconnect" in note and "stall" in note and "gap," not in note
    assert speed_zero_notice(load_scenario("chaos"), None) is None
    assert speed_zero_notice(load_scenario("gap_storm"), 0.0) is None
    assert speed_zero_notice(load_scenario("clean"), 0.0) is None


def test_cli_passing_run_writes_reports_and_exits_zero(tmp_path: Path) -> None:
    report_path, junit_path, html_path = tmp_path / "r.json", tmp_path / "r.xml", tmp_path / "r.html"
    outputs = ("--report", str(report_path), "--junit", str(junit_path), "--html", str(html_path))
    result = _cli("replay", "--scenario", "clean", "--speed", "20", "--busy-poll-us", "200", *outputs)
    assert result.returncode == 0, result.stderr
    assert "PASS" in result.stdout
    report = orjson.loads(report_path.read_bytes())
    for key in ("passed", "scenario", "seed", "recording", "faults", "frames", "sync", "latency_us", "expectations"):
        assert key in report
    assert report["passed"] is True and report["speed"] == 20
    assert report["subject"]["busy_poll_us"] == 200  # the subject ran, and passed, on a busy-polling loop
    assert junit_path.read_text().startswith("<?xml")
    assert report["subject"]["stderr_file"] == str(tmp_path / "r.subject-stderr.log")
    assert (tmp_path / "r.subject-stderr.log").is_file()
    assert html_path.read_text().count("<svg") == 3
    assert "reproduce" not in report and not (tmp_path / "r.repro.toml").exists()  # only a failed run leaves one


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scenario", "no_such_scenario"], "unknown scenario"),
        (["--scenario", "clean", "--recording", "/nonexistent/rec"], "no such recording"),
        (["--scenario", "clean", "--subject", "not_a_factory"], "module:factory"),
        (["--scenario", "clean", "--subject", "no_such_module_xyz:create"], "cannot be found"),
        (["--scenario", "clean", "--subject", "harness.default_subject:nothing"], "no callable"),
        (["--scenario", "clean", "--no-such-option"], "No such option: --no-such-option"),
        (["--scenario", "clean", "--speed", "-1"], "Invalid value for '--speed'"),
        ([], "Missing option '--scenario'"),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_two(args: list[str], message: str) -> None:
    result = _cli("replay", *args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], result.stderr


def test_cli_bad_scenario_file_names_file_and_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "bad"\ndescription = "x"\nspeed = "fast"\nseed = 1\n')
    result = _cli("replay", "--scenario", str(bad))
    assert result.returncode == 2
    assert str(bad) in result.stderr and "speed" in result.stderr


@pytest.mark.parametrize("read_bytes", [1, 3, 7, 64])
def test_report_lines_come_whole_however_the_reads_cut_them(monkeypatch: pytest.MonkeyPatch, read_bytes: int) -> None:
    monkeypatch.setattr(replay_module, "REPORT_READ_BYTES", read_bytes)
    monkeypatch.setattr(replay_module, "REPORT_LINE_LIMIT", 20)
    data = b'{"a":1}\n\nshort\n' + b"x" * 45 + b"\nafter the long one\nno newline"

    async def lines() -> tuple[list[bytes], str | None]:
        stdout = asyncio.StreamReader()
        stdout.feed_data(data)
        stdout.feed_eof()
        run = replay_module.SubjectRun(messages=MessageLog())
        got = [line async for batch in replay_module._report_lines(stdout, run) for line in batch]
        return got, run.protocol_error

    got, error = asyncio.run(lines())
    kept = [b'{"a":1}', b"", b"short", b"after the long one", b"no newline"]
    if read_bytes > 45:  # the long line came in one read with its newline: under the limit's watch
        kept.insert(3, b"x" * 45)
        assert error is None
    else:
        assert error is not None and "longer than 20 bytes" in error
    assert got == kept
