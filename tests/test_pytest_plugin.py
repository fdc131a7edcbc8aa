"""The pytest plugin, as a user's project sees it: installed through its entry point, run by pytester.

The inner sessions run in this process (pytester's in-process mode), so the plugin they load is the
one the `pytest11` entry point names, exactly as in any project with the harness installed.
"""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

BLIND = "tests.broken_subjects:gap_blind"

MARKED = """
import pytest

@pytest.mark.scenario("clean", "gap_storm", seed=[1, 2])
def test_both(harness_scenario):
    assert harness_scenario.seed in (1, 2, 7)

@pytest.mark.scenario("gap_storm")
def test_default_seed(harness_scenario):
    assert harness_scenario.seed == 1 or harness_scenario.seed == 7

def test_unmarked(harness_scenario):
    assert harness_scenario is None
"""


def test_the_plugin_is_installed_as_a_pytest11_entry_point() -> None:
    found = {ep.name: ep.value for ep in entry_points(group="pytest11")}
    assert found.get("harness") == "harness.pytest_plugin"


def test_importing_the_plugin_loads_none_of_the_harness() -> None:
    code = (
        "import sys, harness.pytest_plugin\n"
        "heavy = ('harness.replay', 'harness.scenarios', 'replayer', 'websockets', 'pyarrow', 'polars', 'orjson')\n"
        "print(sorted(m for m in sys.modules if m.startswith(heavy)))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "[]"


def test_marker_parametrizes_by_scenario_and_seed_and_harness_seed_narrows(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_marked=MARKED)
    ids = pytester.runpytest("--collect-only", "-q").stdout.lines
    expected = [f"test_both[{s}-seed{n}]" for s in ("clean", "gap_storm") for n in (1, 2)]
    assert [line.split("::")[1] for line in ids if "::" in line] == [
        *expected,
        "test_default_seed[gap_storm-seed1]",
        "test_unmarked",
    ]
    narrowed = pytester.runpytest("-q", "--harness-seed", "7")
    narrowed.assert_outcomes(passed=4)
    assert "test_both[gap_storm-seed7]" in "\n".join(
        pytester.runpytest("--collect-only", "-q", "--harness-seed", "7").stdout.lines
    )
    assert any(
        line.startswith("@pytest.mark.scenario(name, ...") for line in pytester.runpytest("--markers").stdout.lines
    )


def test_an_unknown_scenario_fails_collection_with_one_line(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.scenario("no_such_scenario")
        def test_x(harness_replay):
            pass
        """
    )
    result = pytester.runpytest("-q")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*@pytest.mark.scenario: unknown scenario 'no_such_scenario'; known scenarios: *"])
    assert "Traceback" not in result.stdout.str()


def test_harness_replay_returns_the_report_and_a_failure_prints_its_command(
    pytester: pytest.Pytester, short_recording: Path, repo_importable: None
) -> None:
    pytester.makeini(f"[pytest]\nharness_recording = {short_recording}\n")
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.scenario("clean", seed=2)
        def test_ours(harness_replay):
            report = harness_replay()
            assert report["passed"] and report["scenario"] == "clean" and report["seed"] == 2

        @pytest.mark.scenario("gap_storm", seed=3)
        def test_gap_blind(harness_replay):
            report = harness_replay("BLIND")
            assert report["sync"]["divergent"] > 0
            assert report["passed"], report
        """.replace("BLIND", BLIND)
    )
    result = pytester.runpytest("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    command = f"harness replay --scenario gap_storm --seed 3 --recording {short_recording} --subject {BLIND}"
    result.stdout.fnmatch_lines(
        [
            "*AssertionError: <replay gap_storm seed 3 FAIL: no silent divergence (got *",
            "*harness: reproduce*",
            command,
            "pytest '*.py::test_gap_blind?gap_storm-seed3?'*--harness-seed 3*",
        ]
    )


def test_fake_venue_serves_the_plan_and_the_oracle_knows_every_update_sent(
    pytester: pytest.Pytester, short_recording: Path
) -> None:
    pytester.makeini(f"[pytest]\nharness_recording = {short_recording}\n")
    pytester.makepyfile(
        """
        import orjson
        import pytest
        from websockets.sync.client import connect

        @pytest.mark.scenario("gap_storm", seed=4)
        def test_venue(fake_venue):
            venue = fake_venue()
            assert venue.ws_url.startswith("ws://127.0.0.1:") and venue.rest_url.startswith("http://127.0.0.1:")
            dropped = {row["frame"] for row in venue.fault_log() if row["action"] == "drop"}
            assert dropped and venue.injected["gap"] > 0
            assert {(row["fault"], row["fault_id"][:4]) for row in venue.fault_log()} == {("gap", "gap.")}
            lost = {venue.data.frames[i].last_update_id for i in dropped}
            received = set()
            last = venue.last_update_id()
            with connect(venue.ws_url + "/stream?streams=" + "/".join(venue.data.streams)) as ws:
                while last not in received:
                    data = orjson.loads(ws.recv(timeout=30))["data"]
                    if data.get("e") == "depthUpdate":
                        received.add(data["u"])
            assert venue.wait_finished(30)
            assert not received & lost
            depth = {f.last_update_id for f in venue.data.frames if f.last_update_id is not None}
            assert received | lost == depth
            for update_id in received:
                bids, asks = venue.oracle_book(update_id)
                assert float(bids[0][0]) < float(asks[0][0])
            assert venue.oracle_book(last + 1) is None

        def test_explicit_scenario_without_marker(fake_venue):
            venue = fake_venue("clean", seed=5)
            assert venue.scenario == "clean" and venue.seed == 5 and venue.fault_log() == []
            with pytest.raises(ValueError, match="not in the recording"):
                venue.oracle_book(1, symbol="NOSUCHUSDT")

        def test_a_failure_names_the_venue(fake_venue):
            fake_venue("gap_storm", seed=6)
            assert False
        """
    )
    result = pytester.runpytest("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=1)
    serve = f"the same venue, for any client: harness serve --scenario gap_storm --seed 6 --recording {short_recording}"
    result.stdout.fnmatch_lines(["*harness: reproduce*", serve])
