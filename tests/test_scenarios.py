"""Scenario files: the library loads and plans on a fixture-sized recording; bad files get one-line errors."""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest

from harness.errors import HarnessError
from harness.report import apply_expectations
from harness.scenarios import LIBRARY, Expectation, list_scenarios, load_scenario, parse_scenario
from replayer.faults import FAULT_KINDS
from replayer.timeline import Frame

LIBRARY_NAMES = {
    "clean",
    "gap_storm",
    "dup_flood",
    "reorder_window",
    "jitter",
    "burst_10x",
    "stall_half_open",
    "flappy_connection",
    "stale_snapshot",
    "snapshot_errors",
    "corrupt_frames",
    "slow_consumer",
    "exchange_restart",
    "restart_rest_outage",
    "chaos",
}


def fixture_like_frames(seconds: int = 60) -> list[Frame]:
    """The shape of the bundled fixture: depth every 100 ms with contiguous U/u, trades in between."""
    frames: list[Frame] = []
    last = 5000
    for tick in range(seconds * 10):
        first, last = last + 1, last + 4
        data = {"e": "depthUpdate", "E": tick, "s": "BTCUSDT", "U": first, "u": last, "b": [["1.5", "2"]], "a": []}
        payload = orjson.dumps({"stream": "btcusdt@depth@100ms", "data": data})
        frames.append(Frame(len(frames), tick * 100_000_000, "btcusdt@depth@100ms", payload, first, last))
        trade = b'{"stream":"btcusdt@trade","data":{"e":"trade","p":"1.5","q":"0.1"}}'
        frames.append(Frame(len(frames), tick * 100_000_000 + 40_000_000, "btcusdt@trade", trade))
    return frames


FRAMES = fixture_like_frames()

GOOD = """
name = "mine"
description = "a test scenario"
speed = 4
seed = 9

[[faults]]
kind = "gap"
start = "10%"
stop = 30.5
count = 2

[expect]
"sync.divergent" = 0
"sync.final_book_correct" = true
sync.checks = ">= 100"
"latency_us.e2e.p99" = "< 5000.5"
"""


def test_the_library_is_complete_and_every_scenario_plans_on_a_fixture_sized_recording() -> None:
    scenarios = list_scenarios()
    assert {s.name for s in scenarios} == LIBRARY_NAMES
    for scenario in scenarios:
        assert scenario.path == LIBRARY / f"{scenario.name}.toml"
        assert scenario.description and scenario.expectations
        assert 5 <= 60 / scenario.speed <= 15, f"{scenario.name} should run in 5-15 s"
        plan = scenario.plan(FRAMES)
        assert set(plan.injected) == {f.kind for f in scenario.faults}
        assert all(count >= 1 for count in plan.injected.values()), (scenario.name, plan.injected)
        assert all(w.heal_ns <= plan.heal_by_ns for w in plan.windows)
        assert plan == scenario.plan(FRAMES), f"{scenario.name} is not deterministic"
        metrics = {e.metric for e in scenario.expectations}
        assert {"sync.divergent", "sync.final_book_correct"} <= metrics
        assert not any(m.startswith("latency") for m in metrics), "no machine-speed thresholds in the library"


def test_chaos_has_every_kind_and_gap_storm_gaps() -> None:
    assert {f.kind for f in load_scenario("chaos").faults} == set(FAULT_KINDS)
    plan = load_scenario("gap_storm").plan(FRAMES)
    assert plan.injected == {"gap": 14} and plan.sequence_breaks == 14
    singles = [spec for spec in load_scenario("gap_storm").faults if spec.params["length"] == 1]
    assert singles and singles[0].params["count"] > 1, "one-update gaps are in the library"
    assert load_scenario("clean").plan(FRAMES).sequence_breaks == 0


def test_seed_override_changes_the_schedule() -> None:
    scenario = load_scenario("chaos")
    assert scenario.plan(FRAMES, seed=scenario.seed) == scenario.plan(FRAMES)
    assert scenario.plan(FRAMES, seed=scenario.seed + 1).entries != scenario.plan(FRAMES).entries


def test_load_by_path_and_parse(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(GOOD)
    scenario = load_scenario(str(path))
    assert (scenario.name, scenario.speed, scenario.seed, scenario.path) == ("mine", 4.0, 9, path)
    (gap,) = scenario.faults
    assert (gap.kind, str(gap.start), str(gap.stop), gap.params["count"], gap.params["length"]) == (
        "gap",
        "10%",
        "30.5s",
        2,
        5,
    )
    assert [e.name for e in scenario.expectations] == [
        "sync.divergent == 0",
        "sync.final_book_correct == true",
        "sync.checks >= 100",
        "latency_us.e2e.p99 < 5000.5",
    ]


def test_unknown_scenario_lists_the_known_ones() -> None:
    with pytest.raises(HarnessError) as caught:
        load_scenario("gap_strom")
    message = str(caught.value)
    assert message.startswith("unknown scenario 'gap_strom'; known scenarios: ")
    assert all(name in message for name in LIBRARY_NAMES)
    with pytest.raises(HarnessError, match=r"nowhere\.toml: no such scenario file"):
        load_scenario("nowhere.toml")


def _bad(text: str) -> str:
    with pytest.raises(HarnessError) as caught:
        parse_scenario(text, "scenarios/bad.toml")
    message = str(caught.value)
    assert "\n" not in message and message.startswith("scenarios/bad.toml")
    return message


@pytest.mark.parametrize(
    ("edit", "wanted"),
    [
        (lambda t: t.replace("seed = 9", 'seed = "nine"'), "key 'seed': expected an integer, got 'nine'"),
        (lambda t: t.replace("speed = 4\n", ""), "missing key 'speed'"),
        (lambda t: t.replace("speed = 4", "speed = 0"), "key 'speed': expected a number > 0"),
        (lambda t: t.replace("speed = 4", "sped = 4"), "unknown key 'sped'"),
        (lambda t: t.replace('kind = "gap"', 'kind = "gapp"'), "faults[0]: key 'kind': unknown fault kind 'gapp'"),
        (lambda t: t.replace('kind = "gap"\n', ""), "faults[0]: missing key 'kind'"),
        (lambda t: t.replace("count = 2", 'count = "2"'), "faults[0] (gap): key 'count': expected an integer >= 1"),
        (lambda t: t.replace("count = 2", "count = 0"), "faults[0] (gap): key 'count': expected an integer >= 1"),
        (lambda t: t.replace("count = 2", "lenght = 2"), "faults[0] (gap): unknown key 'lenght'"),
        (lambda t: t.replace("stop = 30.5\n", ""), "faults[0] (gap): missing key 'stop'"),
        (lambda t: t.replace("stop = 30.5", 'stop = "130%"'), "faults[0] (gap): key 'stop': expected seconds"),
        (lambda t: t.replace("stop = 30.5", 'stop = "5%"'), "faults[0] (gap): key 'stop': 5% is before start 10%"),
        (lambda t: t.replace('">= 100"', '"about 100"'), "expect key 'sync.checks': expected a number"),
        (lambda t: t.replace('">= 100"', '">= true"'), "expect key 'sync.checks': true/false takes only == or !="),
        (lambda t: t.split("[expect]")[0], "missing key 'expect'"),
        (lambda t: t.replace('name = "mine"', 'name = "my scenario"'), "key 'name': expected letters"),
        (lambda t: t.replace("count = 2", 'count = 2\nmode = "x"'), "faults[0] (gap): unknown key 'mode'"),
        (lambda t: t + '\n[[faults]]\nkind = "drop"\nstart = 1\nstop = 2\nprobability = 1.5\n', "probability"),
        (lambda t: t.replace("seed = 9", "seed = 9\nseed = 10"), "not valid TOML"),
        (lambda t: t.replace("speed = 4", "speed = "), "not valid TOML"),
    ],
)
def test_bad_scenarios_get_one_line_naming_file_and_key(edit, wanted: str) -> None:
    assert wanted in _bad(edit(GOOD))


def test_drop_probability_out_of_range_names_the_fault_and_range() -> None:
    message = _bad(GOOD + '\n[[faults]]\nkind = "drop"\nstart = 1\nstop = 2\nprobability = 1.5\n')
    assert "faults[1] (drop): key 'probability': expected a number from 0 to 1, got 1.5" in message


def test_library_file_name_must_match(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import harness.scenarios as module

    (tmp_path / "other.toml").write_text(GOOD)
    monkeypatch.setattr(module, "LIBRARY", tmp_path)
    with pytest.raises(
        HarnessError, match=r"other\.toml: key 'name': expected 'other' \(the file's name\), got 'mine'"
    ):
        load_scenario("other")


REPORT = {
    "passed": True,
    "sync": {"divergent": 0, "checks": 512, "final_book_correct": True, "recovery_ms": {"p99": 12.5}},
    "faults": {"gap": 8},
}


@pytest.mark.parametrize(
    ("expectation", "value", "passed"),
    [
        (Expectation("sync.divergent", "==", 0), 0, True),
        (Expectation("sync.checks", ">=", 600), 512, False),
        (Expectation("sync.checks", ">", 511), 512, True),
        (Expectation("sync.recovery_ms.p99", "<=", 12.5), 12.5, True),
        (Expectation("sync.recovery_ms.p99", "<", 12.5), 12.5, False),
        (Expectation("sync.final_book_correct", "==", True), True, True),
        (Expectation("sync.final_book_correct", "!=", True), True, False),
        (Expectation("faults.gap", "!=", 0), 8, True),
        (Expectation("sync.gaps_detected", ">=", 0), None, False),
        (Expectation("sync.final_book_correct", "==", 1), True, False),
        (Expectation("passed", "==", 1), True, False),
        (Expectation("sync", "==", 0), REPORT["sync"], False),
        (Expectation("sync.divergent.x", "==", 0), None, False),
    ],
)
def test_expectation_evaluation(expectation: Expectation, value, passed: bool) -> None:
    result = expectation.evaluate(REPORT)
    assert (result.name, result.threshold, result.value, result.passed) == (
        expectation.name,
        expectation.threshold,
        value,
        passed,
    )


def test_scenario_evaluate_reports_every_expectation() -> None:
    results = load_scenario("gap_storm").evaluate(REPORT)
    assert [r.name for r in results] == [e.name for e in load_scenario("gap_storm").expectations]
    by_name = {r.name: r.passed for r in results}
    assert by_name["sync.divergent == 0"] and by_name["faults.gap >= 1"]
    assert not by_name["sync.losses_detected >= 1"], "a metric missing from the report never passes"
    assert not by_name["sync.recovered >= 1"]


@pytest.mark.parametrize(
    ("metric", "message"),
    [
        ("sync.gap_detected", "did you mean 'sync.gaps_detected'"),
        ("faults.gaps", "did you mean 'faults.gap'"),
        ("sync.events.resynced", "no metric 'resynced' under 'sync.events'"),
        ("sync", "names a section"),
        ("snyc.divergent", "no metric 'snyc' in the report"),
    ],
)
def test_a_misspelt_metric_is_an_error_when_the_scenario_loads(metric: str, message: str) -> None:
    text = f'name = "x"\ndescription = "d"\nspeed = 1\nseed = 1\n[expect]\n"{metric}" = 0\n'
    with pytest.raises(HarnessError, match=re.escape(f"my.toml: expect key {metric!r}: ") + ".*" + re.escape(message)):
        parse_scenario(text, "my.toml")


@pytest.mark.parametrize("metric", ["faults.corrupt", "sync.events.resync", "venue.connections", "queue.high_water"])
def test_metrics_filled_at_run_time_are_known(metric: str) -> None:
    text = f'name = "x"\ndescription = "d"\nspeed = 1\nseed = 1\n[expect]\n"{metric}" = 0\n'
    assert parse_scenario(text, "my.toml").expectations[0].metric == metric


HEAD = 'name = "x"\ndescription = "d"\nspeed = 1\nseed = 1\n[expect]\n'


@pytest.mark.parametrize(
    ("sync", "passed", "threshold"),
    [
        ({"losses_detected": 2, "recording_gaps": 2}, True, 2),
        ({"losses_detected": 0, "recording_gaps": 0}, True, 0),
        ({"losses_detected": 3, "recording_gaps": 2}, False, 2),
        ({"losses_detected": 0}, False, None),  # the bound itself unmeasured: never a pass
        ({"losses_detected": 0, "recording_gaps": True}, False, True),
    ],
)
def test_a_threshold_may_name_another_metric_of_the_same_report(sync: dict, passed: bool, threshold: object) -> None:
    text = f'{HEAD}"sync.losses_detected" = "<= sync.recording_gaps"\n'
    (expectation,) = parse_scenario(text, "my.toml").expectations
    assert expectation.name == "sync.losses_detected <= sync.recording_gaps"
    result = expectation.evaluate({"sync": sync})
    assert (result.passed, result.threshold) == (passed, threshold)


def test_a_misspelt_metric_as_a_threshold_is_an_error_when_the_scenario_loads() -> None:
    text = f'{HEAD}"sync.losses_detected" = "<= sync.recording_gap"\n'
    with pytest.raises(HarnessError, match=re.escape("threshold 'sync.recording_gap'") + ".*did you mean"):
        parse_scenario(text, "my.toml")


def test_the_no_loss_scenarios_allow_one_loss_per_recorded_hole() -> None:
    for name in ("clean", "jitter", "burst_10x"):
        names = {e.name for e in load_scenario(name).expectations}
        assert "sync.losses_detected <= sync.recording_gaps" in names, name


def _stale_snapshot_on_a_stream_venue(left_out: dict[str, str]) -> dict:
    """stale_snapshot's report where the faults in `left_out` were not applicable (as the plan lists them)."""
    by_id = {f"snapshot.{n}": {"kind": "snapshot", "armed": 0, "served": 0} for n in range(2)}
    sync = {"divergent": 0, "final_book_correct": True, "coverage": 0.9, "episodes": 0, "episodes_verified": 0}
    sync |= {"books_before_snapshot": 0, "unrequested_output": 0, "dark_books": 0, "stale_synced": 0}
    return {"sync": sync, "faults": {"snapshot": 0}, "faults_by_id": by_id, "faults_not_applicable": left_out}


def test_an_expectation_counting_a_fault_the_venue_cannot_have_is_not_applicable() -> None:
    """Neither passed nor failed: its own status, with the plan's reason, and the run passes on the rest."""
    why = "bybit sends its snapshots over the WebSocket; there is no REST snapshot to fault"
    report = _stale_snapshot_on_a_stream_venue({"snapshot.0": why, "snapshot.1": why})
    results = {r.name: r for r in load_scenario("stale_snapshot").evaluate(report)}
    assert results["faults.snapshot >= 1"].passed is None and results["faults.snapshot >= 1"].reason == why
    assert all(r.passed is True for name, r in results.items() if name != "faults.snapshot >= 1")
    done = apply_expectations(report, results.values())
    row = next(row for row in done["expectations"] if row["name"] == "faults.snapshot >= 1")
    assert row["status"] == "not_applicable" and row["passed"] is None and row["reason"] == why
    assert done["passed"] and done["all_faults_not_applicable"]


def test_a_fault_kind_that_applies_once_is_still_counted() -> None:
    """One of the kind's faults left out is not enough: the others can be counted, so 0 of them fails."""
    report = _stale_snapshot_on_a_stream_venue({"snapshot.0": "left out"})
    results = {r.name: r for r in load_scenario("stale_snapshot").evaluate(report)}
    assert results["faults.snapshot >= 1"].passed is False
    done = apply_expectations(report, results.values())
    assert not done["passed"] and not done["all_faults_not_applicable"]
