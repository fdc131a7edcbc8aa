"""The suite's pure parts: seeds, shards, the matrix, the baseline comparison, JUnit and the log lines."""

from __future__ import annotations

import random
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import orjson
import pytest

from harness.errors import HarnessError
from harness.suite import conclude, exit_code
from harness.suite_baseline import DEFAULT_MARGINS, compare, load_baseline, updated_baseline, worse_by
from harness.suite_matrix import (
    RecordingChoice,
    ScenarioChoice,
    build_matrix,
    longest_first,
    parse_seeds,
    parse_shard,
    shard_of,
)
from harness.suite_results import (
    BAD_INPUT,
    CRASH,
    cell_result,
    error_result,
    progress_line,
    reproduce_command,
    summary_table,
    write_suite_junit,
)

SCENARIOS = [ScenarioChoice("gap_storm", "gap_storm", 1, 8.0), ScenarioChoice("my/slow.toml", "slow", 4, 2.0)]
RECORDINGS = [RecordingChoice(None, "bundled"), RecordingChoice("data/other", "other")]


def _matrix(seeds: list[int] | None = None) -> list:
    return build_matrix(SCENARIOS, RECORDINGS, seeds if seeds is not None else [1, 2, 3, 4, 5])


def _report(
    failed: tuple[str, ...] = (),
    divergent: int = 0,
    recovery: float | None = 100.0,
    e2e: float = 900.0,
    unrecovered: int = 0,
) -> dict[str, Any]:
    names = ("no silent divergence", "sync.final_book_correct == true", "sync.gaps_detected >= 1")
    rows = [{"name": n, "threshold": "t", "value": 0, "passed": n not in failed} for n in names]
    return {
        "passed": not failed,
        "expectations": rows,
        "sync": {
            "divergent": divergent,
            "recovery_ms": {"count": 3, "unrecovered": unrecovered, "p99": recovery, "max": recovery},
        },
        "latency_us": {"e2e": {"p99": e2e}},
    }


def _results(**by_key: dict[str, Any]) -> list[dict[str, Any]]:
    cells = {cell.key: cell for cell in _matrix()}
    return [cell_result(cells[key], "s:f", report, 1.5) for key, report in by_key.items()]


KEY = "gap_storm/bundled/seed1"


MARGINS = {"recovery_p99_ms": {"relative": 0.5, "absolute": 250.0}, "e2e_p99_us": {"relative": 1.0, "absolute": 5000.0}}


def _baseline(**by_key: dict[str, Any]) -> dict[str, Any]:
    return {**updated_baseline(None, _results(**by_key), "s:f"), "margins": MARGINS}


@pytest.mark.parametrize(
    ("text", "seeds"), [("1-3", [1, 2, 3]), ("7", [7]), ("1,4,7-9", [1, 4, 7, 8, 9]), (" 2 - 3 ,2", [2, 3])]
)
def test_seeds_parse_ranges_and_lists(text: str, seeds: list[int]) -> None:
    assert parse_seeds(text) == seeds


@pytest.mark.parametrize("text", ["5-1", "a", "", "1-", "-3", "1-100000", "1..3"])
def test_bad_seeds_are_one_error(text: str) -> None:
    with pytest.raises(HarnessError, match="--seeds"):
        parse_seeds(text)


@pytest.mark.parametrize("text", ["0/4", "5/4", "x", "1/0", "2-4", "/3"])
def test_bad_shard_specs_are_one_error(text: str) -> None:
    with pytest.raises(HarnessError, match="--shard"):
        parse_shard(text)


def test_shards_partition_the_matrix_the_same_way_whatever_the_order() -> None:
    cells = _matrix()
    assert parse_shard("2/3") == (2, 3)
    for count in (1, 2, 3, 7, 25):
        shards = [shard_of(cells, i, count) for i in range(1, count + 1)]
        assert sorted(c for shard in shards for c in shard) == sorted(cells)
        assert max(map(len, shards)) - min(map(len, shards)) <= 1
        shuffled = list(cells)
        random.Random(count).shuffle(shuffled)
        assert [shard_of(shuffled, i, count) for i in range(1, count + 1)] == shards
    # The five seeds of one scenario and recording go to different runners, not all to one.
    first = shard_of(cells, 1, 5)
    assert len({(c.scenario, c.recording_name) for c in first}) == len(first)


def test_matrix_defaults_to_each_scenarios_own_seed_and_refuses_clashing_names() -> None:
    cells = build_matrix(SCENARIOS, RECORDINGS, None)
    assert sorted((c.scenario, c.seed) for c in cells) == [("gap_storm", 1)] * 2 + [("slow", 4)] * 2
    assert longest_first(cells)[0].scenario == "slow"
    with pytest.raises(HarnessError, match="both named 'gap_storm'"):
        build_matrix([*SCENARIOS, ScenarioChoice("x/gap_storm.toml", "gap_storm", 1, 1.0)], RECORDINGS, [1])
    with pytest.raises(HarnessError, match="recording's folder name"):
        build_matrix(SCENARIOS, [*RECORDINGS, RecordingChoice("elsewhere/other", "other")], [1])


def test_reproduce_command_names_what_differs_from_the_defaults() -> None:
    slow_other = next(c for c in _matrix() if c.scenario == "slow" and c.recording_name == "other" and c.seed == 2)
    assert reproduce_command(slow_other, "my_client:make") == (
        "harness replay --scenario my/slow.toml --seed 2 --recording data/other --subject my_client:make"
    )
    assert reproduce_command(_matrix()[0], "harness.default_subject:create") == (
        "harness replay --scenario gap_storm --seed 1"
    )
    assert reproduce_command(_matrix()[0], "harness.default_subject:create", rest_weight_limit=0) == (
        "harness replay --scenario gap_storm --seed 1 --rest-weight-limit 0"
    )


def test_same_results_as_the_baseline_are_no_regression() -> None:
    results = _results(**{KEY: _report()})
    outcome = compare(_baseline(**{KEY: _report()}), results, "b.json")
    assert outcome.regressions == [] and outcome.new_cells == [] and outcome.not_run == 0


def test_new_divergence_and_newly_failing_expectation_name_the_cell() -> None:
    base = _baseline(**{KEY: _report()})
    now = _results(**{KEY: _report(failed=("no silent divergence", "sync.gaps_detected >= 1"), divergent=4)})
    regressions = compare(base, now, "b.json").regressions
    assert [(r["key"], r["what"]) for r in regressions] == [(KEY, "divergence"), (KEY, "expectation")]
    assert "new silent divergence: 4" in regressions[0]["detail"]
    assert "newly failing: sync.gaps_detected >= 1" in regressions[1]["detail"]


def test_a_failure_the_baseline_already_had_is_known_not_new() -> None:
    failing = _report(failed=("sync.gaps_detected >= 1",))
    outcome = compare(_baseline(**{KEY: failing}), _results(**{KEY: failing}), "b.json")
    assert outcome.regressions == []
    assert outcome.known_failures == {KEY: ["sync.gaps_detected >= 1"]}


@pytest.mark.parametrize(
    ("before", "now", "regressed"),
    [
        (100.0, 600.0, True),  # +500 ms, +500%: past 50 % and 250 ms
        (100.0, 340.0, False),  # +240 ms: within the absolute margin
        (1000.0, 1400.0, False),  # +400 ms but +40 %: within the relative margin
        (1000.0, 1600.0, True),
        (None, 5000.0, False),  # nothing recovered in the baseline: nothing to compare
    ],
)
def test_recovery_regresses_only_past_both_margins(before: float | None, now: float, regressed: bool) -> None:
    outcome = compare(_baseline(**{KEY: _report(recovery=before)}), _results(**{KEY: _report(recovery=now)}), "b")
    assert [r["what"] for r in outcome.regressions] == (["recovery"] if regressed else [])
    if regressed:
        assert before is not None and f"worse by {now - before:,.1f} ms" in outcome.regressions[0]["detail"]


def test_e2e_p99_and_unrecovered_windows_regress_with_how_much() -> None:
    base = _baseline(**{KEY: _report(e2e=1000.0)})
    outcome = compare(base, _results(**{KEY: _report(e2e=9000.0, unrecovered=2)}), "b.json")
    details = {r["what"]: r["detail"] for r in outcome.regressions}
    assert "never recovered: 2 (baseline 0, +2)" in details["unrecovered"]
    assert details["e2e p99"].startswith("e2e p99 9,000.0 µs against baseline 1,000.0 µs: worse by 8,000.0 µs, +800%")
    margin = {"relative": 0.0, "absolute": 0.0}
    assert worse_by("e2e_p99_us", 1000.0, 1000.5, margin) is not None
    assert worse_by("e2e_p99_us", 1000.0, 1000.0, margin) is None


def test_unknown_cells_are_new_and_missing_ones_counted_never_failed() -> None:
    other = "slow/other/seed3"
    base = _baseline(**{other: _report()})
    outcome = compare(base, _results(**{KEY: _report(failed=("sync.gaps_detected >= 1",))}), "b.json")
    assert outcome.regressions == [] and outcome.new_cells == [KEY] and outcome.not_run == 1


def test_a_baseline_of_another_subject_is_refused() -> None:
    base = updated_baseline(None, _results(**{KEY: _report()}), "other:subject")
    with pytest.raises(HarnessError, match="made with subject 'other:subject'"):
        compare(base, _results(**{KEY: _report()}), "b.json")


def test_update_keeps_margins_and_cells_not_run_and_skips_cells_without_a_verdict() -> None:
    other = "slow/other/seed3"
    previous = _baseline(**{KEY: _report(e2e=1.0), other: _report()})
    previous["margins"] = {name: {"relative": 0.1, "absolute": 1.0} for name in DEFAULT_MARGINS}
    cell = next(c for c in _matrix() if c.key == other)
    crashed = error_result(cell, "s:f", CRASH, "Traceback ...", 0.1)
    updated = updated_baseline(previous, [*_results(**{KEY: _report(e2e=5.0)}), crashed], "s:f")
    assert updated["margins"] == previous["margins"]
    assert updated["cells"][KEY]["e2e_p99_us"] == 5.0
    assert updated["cells"][other] == previous["cells"][other]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{", "not JSON"),
        (b'{"baseline_version": 9}', "not a version 1"),
        (b'{"baseline_version": 1, "margins": {}}', "'margins' must name"),
        (
            orjson.dumps(
                {"baseline_version": 1, "margins": {**DEFAULT_MARGINS, "e2e_p99_us": {"relative": -1, "absolute": 0}}}
            ),
            "e2e_p99_us.relative must be a number >= 0",
        ),
    ],
)
def test_a_bad_baseline_file_is_one_error(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "baseline.json"
    path.write_bytes(content)
    with pytest.raises(HarnessError, match=message):
        load_baseline(path)
    with pytest.raises(HarnessError, match="no such file"):
        load_baseline(tmp_path / "missing.json")


def test_junit_has_a_case_per_cell_and_expectation_known_failures_skipped(tmp_path: Path) -> None:
    cells = {cell.key: cell for cell in _matrix()}
    failing = _report(failed=("sync.gaps_detected >= 1", "sync.final_book_correct == true"))
    results = [
        *_results(**{KEY: failing, "gap_storm/bundled/seed2": _report()}),
        error_result(cells["slow/other/seed1"], "s:f", CRASH, "Traceback\nKeyError: 'x'", 0.2),
    ]
    regressions = [{"key": "gap_storm/bundled/seed2", "what": "e2e p99", "detail": "e2e p99 worse by 5 µs"}]
    path = tmp_path / "suite.xml"
    write_suite_junit(results, regressions, {KEY: ["sync.gaps_detected >= 1"]}, path)
    suites = {s.get("name"): s for s in ET.parse(path).getroot()}
    gap = suites["harness.suite.gap_storm"]
    assert (gap.get("tests"), gap.get("failures"), gap.get("skipped"), gap.get("errors")) == ("7", "2", "1", "0")
    cases = {(c.get("classname"), c.get("name")): c for c in gap}
    assert cases["suite.gap_storm.bundled.seed1", "sync.gaps_detected >= 1"].find("skipped") is not None
    failure = cases["suite.gap_storm.bundled.seed1", "sync.final_book_correct == true"].find("failure")
    assert failure is not None and "harness replay --scenario gap_storm --seed 1" in (failure.text or "")
    assert cases["suite.gap_storm.bundled.seed2", "baseline: e2e p99"].find("failure") is not None
    slow = suites["harness.suite.slow"]
    error = slow.find("testcase/error")
    assert slow.get("errors") == "1" and error is not None and "KeyError" in (error.text or "")


def test_log_lines_and_table_show_failures_with_their_command() -> None:
    results = _results(**{KEY: _report(failed=("sync.gaps_detected >= 1",)), "slow/other/seed2": _report()})
    line = progress_line(3, 12, results[0])
    assert line.startswith("[ 3/12] FAIL  gap_storm/bundled/seed1  1.5s  failed: sync.gaps_detected >= 1 (got 0)")
    assert line.splitlines()[1] == "    reproduce: harness replay --scenario gap_storm --seed 1 --subject s:f"
    assert progress_line(4, 12, results[1]).startswith("[ 4/12] PASS  slow/other/seed2  1.5s  recovery p99 100 ms")
    table = summary_table(results).splitlines()
    assert table[0].split() == ["cell", "verdict", "time", "recovery", "p99", "e2e", "p99", "failed"]
    assert table[1].split()[:2] == ["gap_storm/bundled/seed1", "FAIL"] and table[1].endswith("sync.gaps_detected >= 1")


def test_exit_code_is_two_only_for_bad_input_found_while_running() -> None:
    cell = _matrix()[0]
    ok = _results(**{KEY: _report()})
    bad = error_result(cell, "s:f", BAD_INPUT, "rec: a 'binance-usdm' recording", 0.1)
    crashed = error_result(cell, "s:f", CRASH, "Traceback ...", 0.1)
    for cells, passed, code in ((ok, True, 0), ([*ok, crashed], False, 1), ([*ok, bad, crashed], False, 2)):
        summary = conclude(
            cells,
            subject="s:f",
            shard=None,
            matrix_size=3,
            wall_s=1.0,
            jobs=1,
            baseline=None,
            baseline_path=None,
            update_baseline=False,
        )
        assert (summary["passed"], exit_code(summary)) == (passed, code)
