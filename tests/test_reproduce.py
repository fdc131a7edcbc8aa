"""A failed run's scenario written back with its seed: the text kept, the seed and speed set, loadable."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import replay_command
from harness.errors import HarnessError
from harness.reproduce import reproduction_text, write_reproduction
from harness.scenarios import load_scenario, parse_scenario
from tests.test_report import run

SCENARIO = """# my own scenario
name = "mine"
description = "one gap"
speed = 8
seed = 1   # the default

[[faults]]
kind = "gap"
start = "10%"
stop = "50%"
count = 1

[expect]
"sync.divergent" = 0
seed = 1  # an expectation on the report's seed: not the scenario's, left alone
"""


def test_the_seed_and_speed_lines_are_replaced_and_nothing_else() -> None:
    text = reproduction_text(SCENARIO, 7, 2.5, ["Reproduces X.", "Run: harness replay ..."])
    assert text.startswith("# Reproduces X.\n# Run: harness replay ...\n\n# my own scenario\n")
    assert "\nseed = 7\n" in text and "\nspeed = 2.5\n" in text
    assert "seed = 1  # an expectation" in text  # inside [expect]: left alone
    assert reproduction_text(SCENARIO, 7, 0, []).count("speed = 8") == 1  # speed 0 cannot be written
    assert "\nspeed = 4\n" in reproduction_text(SCENARIO, 7, 4.0, [])


def test_the_file_written_loads_with_the_run_seed(tmp_path: Path) -> None:
    source = tmp_path / "mine.toml"
    source.write_text(SCENARIO)
    scenario = load_scenario(source)
    report = {
        "scenario": "mine",
        "seed": 12,
        "recording": "rec",
        "expectations": [{"name": "no silent divergence", "passed": False}],
        "sync": {"divergence_examples": [{"symbol": "BTCUSDT", "update_id": 5, "reason": "top 20 differs"}]},
    }
    out = tmp_path / "run.repro.toml"
    entry = write_reproduction(report, scenario, out, ["harness", "replay", "--subject", "m:f"], None)
    assert entry == {
        "scenario_file": str(out),
        "seed": 12,
        "command": f"harness replay --scenario {out} --subject m:f",
    }
    again = load_scenario(out)
    assert again.seed == 12 and again.faults == scenario.faults and again.expectations == scenario.expectations
    assert "First divergence: BTCUSDT at update 5: top 20 differs." in out.read_text()
    twice = tmp_path / "twice.repro.toml"
    write_reproduction(report | {"seed": 13}, again, twice, ["harness", "replay"], None)
    assert twice.read_text().count("# Reproduces a failed run") == 1 and load_scenario(twice).seed == 13


def test_stale_limit_is_optional_positive_seconds() -> None:
    assert parse_scenario(SCENARIO, "x").stale_limit_s == 5.0
    with_limit = SCENARIO.replace("seed = 1   # the default", "seed = 1\nstale_limit = 2.5")
    assert parse_scenario(with_limit, "x").stale_limit_s == 2.5
    for bad in ("0", "-1", "true", '"5"'):
        text = SCENARIO.replace("seed = 1   # the default", f"seed = 1\nstale_limit = {bad}")
        with pytest.raises(HarnessError, match="key 'stale_limit': expected seconds > 0"):
            parse_scenario(text, "x")


def test_the_replay_command_leaves_a_file_with_report_and_prints_the_command_without(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    failed = run(wrong=True)  # gap_storm at seed 7, one divergence
    monkeypatch.setattr(replay_command, "run_replay", lambda request, progress=None: failed)

    def command(speed: float | None, report: Path | None, html: Path | None = None) -> int:
        return replay_command.run_replay_command(
            scenario="gap_storm",
            recording=None,
            seed=7,
            speed=speed,
            report=report,
            junit=None,
            subject="m:f",
            html=html,
        )

    assert command(2.0, None, tmp_path / "a.html") == 1
    out = capsys.readouterr().out
    assert "reproduce with: harness replay --scenario gap_storm --seed 7 --subject m:f --speed 2\n" in out
    assert (tmp_path / "a.html").read_text().count("<svg") == 3
    assert command(None, tmp_path / "run.json") == 1
    repro = tmp_path / "run.repro.toml"
    assert f"reproduce with: harness replay --scenario {repro} --subject m:f" in capsys.readouterr().out
    assert load_scenario(repro).seed == 7 and load_scenario(repro).faults == load_scenario("gap_storm").faults
