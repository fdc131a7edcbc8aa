"""harness.testing's strategies, scenario files written from them, and `harness search` finding and shrinking a bug."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.book import OrderBook
from harness.errors import HarnessError
from harness.scenario_toml import round_trip, scenario_toml
from harness.scenarios import load_scenario
from harness.search import SearchRequest, explore, parse_kinds, run_search, schedule_key
from harness.suite import SuiteRequest, run_suite
from harness.synth.run import write_synthetic_recording
from harness.testing import TIMING_FREE_KINDS, DepthStream, depth_streams, fault_schedules, fault_specs
from harness.venues.binance_spot.decoder import decode_frame
from replayer.faults import FAULT_KINDS, FaultSpec, build_schedule
from replayer.faults.spec import fault
from replayer.replay_data import load_replay_data
from replayer.timeline import Frame

PLANTED = "tests.planted_subjects:trusts_stream_after_catch_up"
EXPECT = {"sync.divergent": 0, "sync.final_book_correct": True}


@pytest.fixture(scope="module")
def short_recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_recording(tmp_path_factory.mktemp("rec") / "r", "BTCUSDT", seconds=4, seed=1)


@pytest.fixture(scope="module")
def short_frames(short_recording: Path) -> Sequence[Frame]:
    return load_replay_data(short_recording).frames


@pytest.mark.parametrize("kind", FAULT_KINDS)
@settings(max_examples=15, deadline=None, database=None)
@given(data=st.data())
def test_every_kind_is_drawn_and_its_scenario_file_holds_the_same_fault(kind: str, data: st.DataObject) -> None:
    spec = data.draw(fault_specs([kind]))
    assert spec.kind == kind
    text = scenario_toml("drawn", "a drawn fault", [spec], EXPECT, speed=2.5, seed=7)
    loaded = round_trip(text, [spec])
    assert (loaded.speed, loaded.seed, loaded.faults) == (2.5, 7, (spec,))


@settings(max_examples=30, deadline=None, database=None)
@given(schedule=fault_schedules(TIMING_FREE_KINDS, max_faults=3, timing_free=True))
def test_a_drawn_schedule_plans_or_is_refused_with_one_line(schedule: list[FaultSpec], short_frames: list) -> None:
    try:
        plan = build_schedule(short_frames, tuple(schedule), 1)
    except HarnessError as exc:
        assert "\n" not in str(exc)
        return
    assert {window.kind for window in plan.windows} <= {spec.kind for spec in schedule}
    snapshot_modes = {spec.params["mode"] for spec in schedule if spec.kind == "snapshot"}
    assert snapshot_modes <= {"stale", "too_new"}


def test_a_percentage_is_written_as_the_shortest_text_that_reads_back() -> None:
    spec = fault("gap", "29%", "57.5%", count=2)
    text = scenario_toml("w", "d", [spec], EXPECT)
    assert 'start = "29%"' in text and 'stop = "57.5%"' in text
    assert "length" not in text  # a default is left out
    with pytest.raises(HarnessError, match="expect key"):
        scenario_toml("w", "d", [spec], {"sync.nope": 0})


@settings(max_examples=25, deadline=None, database=None)
@given(stream=depth_streams(max_deltas=12))
def test_a_depth_stream_links_decodes_and_books_as_our_book_does(stream: DepthStream) -> None:
    book = OrderBook()
    book.load(stream.snapshot.last_update_id, stream.snapshot.bids, stream.snapshot.asks)
    assert book.depth() == tuple(stream.book_after(-1))
    previous = stream.snapshot.last_update_id
    for index, (delta, frame) in enumerate(zip(stream.deltas, stream.frames(), strict=True)):
        assert delta.first_update_id == previous + 1 <= delta.last_update_id + 1
        assert decode_frame(frame) == delta
        book.apply(delta.last_update_id, delta.bids, delta.asks)
        assert book.depth() == tuple(stream.book_after(index))
        assert not book.is_crossed()
        previous = delta.last_update_id


def _too_new_then_drop(schedule: list[FaultSpec]) -> bool:
    """A stand-in for a replay: fails when a too-new snapshot is followed by a drop window."""
    snaps = [spec for spec in schedule if spec.kind == "snapshot" and spec.params["mode"] == "too_new"]
    drops = [spec for spec in schedule if spec.kind == "drop"]
    return any(drop.stop.value > snap.start.value for snap in snaps for drop in drops)


def test_explore_shrinks_to_the_two_faults_that_matter_and_repeats_itself() -> None:
    strategy = fault_schedules(("snapshot", "drop", "gap", "duplicate"), max_faults=4, timing_free=True)
    first = explore(_too_new_then_drop, strategy, seed=3, budget=200, shrink_budget=300)
    again = explore(_too_new_then_drop, strategy, seed=3, budget=200, shrink_budget=300)
    assert first.minimal is not None and first.first_failure is not None
    assert sorted(spec.kind for spec in first.minimal) == ["drop", "snapshot"]
    assert len(first.first_failure) >= len(first.minimal)
    assert schedule_key(first.minimal) == schedule_key(again.minimal or [])
    assert (first.trials, first.shrink_trials) == (again.trials, again.shrink_trials)


def test_explore_gives_up_after_its_budget_and_stops_shrinking_at_its_limit() -> None:
    strategy = fault_schedules(("gap",), max_faults=2)
    tried: list[str] = []

    def never(schedule: list[FaultSpec]) -> bool:
        tried.append(schedule_key(schedule))
        return False

    nothing = explore(never, strategy, seed=1, budget=12)
    assert nothing.minimal is None and nothing.trials == len(tried) == len(set(tried)) <= 12
    capped = explore(lambda schedule: True, fault_schedules(FAULT_KINDS), seed=1, budget=5, shrink_budget=3)
    assert capped.trials == 1 and capped.shrink_trials <= 3 and capped.minimal is not None
    calls: list[int] = []

    def broken(schedule: list[FaultSpec]) -> bool:
        calls.append(1)
        raise HarnessError("subject module 'x' not found")

    with pytest.raises(HarnessError, match="not found"):
        explore(broken, strategy, seed=1, budget=12)
    assert len(calls) == 1
    late = explore(never, strategy, seed=1, budget=12, out_of_time=lambda: True)
    assert late.out_of_time and late.trials == 0 and late.minimal is None


def test_kinds_and_limits_are_checked_before_anything_runs(tmp_path: Path) -> None:
    assert parse_kinds("all") == FAULT_KINDS and parse_kinds("gap, drop") == ("gap", "drop")
    with pytest.raises(HarnessError, match="unknown fault kind 'gaps'"):
        parse_kinds("gaps")
    with pytest.raises(HarnessError, match="--budget or --minutes"):
        run_search(SearchRequest(subject="tests.quiet_subject:create", budget=3, minutes=1, out=tmp_path))
    run = subprocess.run(
        [sys.executable, "-m", "harness.cli", "search", "--subject", "nomodule", "-o", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2 and run.stderr.startswith("error: ") and len(run.stderr.splitlines()) == 1


def test_search_writes_a_scenario_that_replays_the_failure(harness_search: Any, short_recording: Path) -> None:
    """Real replays through the plugin's fixture: a subject blind to gaps, searched over gaps only."""
    result = harness_search(
        "tests.broken_subjects:gap_blind", recording=short_recording, budget=3, shrink_budget=0, seed=2, kinds=("gap",)
    )
    assert result.found and result.scenario_path is not None and result.command is not None
    assert "sync.divergent == 0" in result.failed_expectations
    written = load_scenario(result.scenario_path)
    assert written.faults == result.faults and written.seed == 2
    assert result.reproduced is True
    assert f"--scenario {result.scenario_path}" in result.command and "--speed 10" in result.command
    assert written.speed == 10
    assert (result.scenario_path.parent / "search.json").is_file()


@pytest.mark.slow
def test_search_finds_the_planted_bug_and_shrinks_it_to_at_most_three_faults(tmp_path: Path) -> None:
    """The planted subject passes the whole library (test below); the search finds its bug and shrinks it."""
    result = run_search(
        SearchRequest(subject=PLANTED, budget=40, shrink_budget=30, seed=14, out=tmp_path, max_faults=3)
    )
    assert result.found, result.to_json()
    assert len(result.faults) <= 3 and "snapshot" in {spec.kind for spec in result.faults}
    assert result.reproduced is True
    assert load_scenario(result.scenario_path or "").faults == result.faults


@pytest.mark.slow
def test_no_library_scenario_catches_the_planted_bug() -> None:
    summary = run_suite(SuiteRequest(subject=PLANTED, jobs=2))
    assert [cell["key"] for cell in summary["cells"] if cell["status"] != "pass"] == []
