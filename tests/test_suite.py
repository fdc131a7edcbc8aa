"""`harness suite` end to end: shards run as CI runners would, merged, against a baseline; bad input.

One small matrix (clean and gap_storm, seeds 1-2, on a 10 s recording) runs once per module, split
into two shards running at once, against tests/broken_subjects.py's gap-blind subject: clean passes
and gap_storm diverges, so both verdicts, the reproduce lines and a merge with failures are covered
by four replays.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest

from harness.cli import main

REPO = Path(__file__).resolve().parents[1]
SUBJECT = "tests.broken_subjects:gap_blind"


def _harness(capsys: pytest.CaptureFixture[str], *args: str | Path) -> subprocess.CompletedProcess[str]:
    """`harness ARGS` in this process (the console script's own entry), for what starts no replay."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sys, "argv", ["harness", *map(str, args)])
        with pytest.raises(SystemExit) as exited:
            main()
    out, err = capsys.readouterr()
    code = exited.value.code
    assert isinstance(code, int)
    return subprocess.CompletedProcess(args, code, out, err)


@dataclass(frozen=True, slots=True)
class Shards:
    recording: Path
    folder: Path
    runs: tuple[subprocess.CompletedProcess[str], ...]


def _start_shard(index: int, folder: Path, recording: Path) -> subprocess.Popen[str]:
    """One CI runner's share: shard `index` of 2, writing its summary into a folder of its own."""
    (folder / f"shard{index}").mkdir()
    args = ["suite", "--scenarios", "clean,gap_storm", "--recordings", str(recording), "--seeds", "1-2"]
    args += ["--subject", SUBJECT, "--jobs", "2", "--shard", f"{index}/2"]
    args += ["--json", str(folder / f"shard{index}" / "suite.json"), "--junit", str(folder / f"shard{index}.xml")]
    args += ["--html", str(folder / f"shard{index}.html")]
    return subprocess.Popen(
        [sys.executable, "-m", "harness.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory, short_recording: Path) -> Shards:
    folder = tmp_path_factory.mktemp("shards")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PYTHONPATH", str(REPO))
        processes = [_start_shard(index, folder, short_recording) for index in (1, 2)]
        runs = []
        for process in processes:
            out, err = process.communicate(timeout=240)
            runs.append(subprocess.CompletedProcess(process.args, process.returncode, out, err))
    return Shards(short_recording, folder, tuple(runs))


def test_each_shard_prints_a_line_per_cell_and_the_command_for_each_failure(shards: Shards) -> None:
    keys = []
    for run in shards.runs:
        shard = run.args[run.args.index("--shard") + 1]
        lines = run.stdout.splitlines()
        assert lines[0] == f"suite: 2 cells (shard {shard} of a 4-cell matrix), subject {SUBJECT}", run.stdout
        done = [line for line in lines if line.startswith("[")]
        assert [line[:5] for line in done] == ["[1/2]", "[2/2]"], run.stdout
        keys += [line.split()[2] for line in done]
        # Each shard got one clean cell, which a gap-blind book passes, and one gap_storm cell, where it diverges.
        verdicts = {line.split()[2].split("/")[0]: line.split()[1] for line in done}
        assert verdicts == {"clean": "PASS", "gap_storm": "FAIL"}, run.stdout
        assert run.returncode == 1, run.stderr
        fail = next(line for line in done if " FAIL " in line)
        assert "no silent divergence (got " in fail
        reproduce = lines[lines.index(fail) + 1].strip()
        assert reproduce.startswith("reproduce: harness replay --scenario gap_storm --seed ")
        assert reproduce.endswith(f"--recording {shards.recording} --subject {SUBJECT}")
        assert lines[-1] == "suite FAILED"
    name = shards.recording.name
    assert sorted(keys) == sorted(f"{s}/{name}/seed{n}" for s in ("clean", "gap_storm") for n in (1, 2))


def test_each_shard_draws_its_cells_on_one_page_and_keeps_the_pictures_out_of_its_summary(shards: Shards) -> None:
    for index in (1, 2):
        page = (shards.folder / f"shard{index}.html").read_text()
        assert page.count("<svg") == 6, "three plots for each of the shard's two cells"
        assert "<details open><summary>FAIL gap_storm/" in page and "<details><summary>PASS clean/" in page
        summary = orjson.loads((shards.folder / f"shard{index}" / "suite.json").read_bytes())
        assert all("pictures" not in cell for cell in summary["cells"])


def test_the_printed_command_reproduces_the_failing_cell(
    shards: Shards, repo_importable: None, capsys: pytest.CaptureFixture[str]
) -> None:
    line = next(line for line in shards.runs[0].stdout.splitlines() if "reproduce: " in line)
    command = shlex.split(line.split("reproduce: ", 1)[1])
    assert command[:2] == ["harness", "replay"]
    run = _harness(capsys, *command[1:])
    assert run.returncode == 1, run.stderr
    assert "FAIL" in run.stdout and "silent divergence" in run.stdout


def test_merge_joins_shards_into_one_summary_and_junit(
    shards: Shards, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    summary, junit = tmp_path / "merged.json", tmp_path / "merged.xml"
    run = _harness(capsys, "suite", "--merge", shards.folder, "--json", summary, "--junit", junit)
    assert run.returncode == 1, run.stderr
    doc = orjson.loads(summary.read_bytes())
    assert doc["totals"] == {"cells": 4, "passed": 2, "failed": 2, "errors": 0}
    assert doc["subject"] == SUBJECT and doc["matrix_size"] == 4 and doc["passed"] is False
    root = ET.parse(junit).getroot()
    expectations = sum(len(cell["expectations"]) for cell in doc["cells"])
    assert sum(int(s.get("tests", "")) for s in root) == expectations
    failed = sum(1 for cell in doc["cells"] for row in cell["expectations"] if not row["passed"])
    assert sum(int(s.get("failures", "")) for s in root) == failed > 0
    assert run.stdout.count("  harness replay --scenario gap_storm") == 2


def test_merge_refuses_a_missing_shard(shards: Shards, capsys: pytest.CaptureFixture[str]) -> None:
    run = _harness(capsys, "suite", "--merge", shards.folder / "shard1")
    assert run.returncode == 2
    assert run.stderr == "error: --merge: shard 2/2 missing; merged nothing\n"


def test_baseline_accepts_known_failures_and_names_what_got_worse(
    shards: Shards, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    baseline = tmp_path / "baseline.json"
    written = _harness(capsys, "suite", "--merge", shards.folder, "--baseline", baseline, "--update-baseline")
    assert written.returncode == 0, written.stderr
    doc = orjson.loads(baseline.read_bytes())
    assert len(doc["cells"]) == 4 and doc["subject"] == SUBJECT

    same = _harness(capsys, "suite", "--merge", shards.folder, "--baseline", baseline)
    assert same.returncode == 0, same.stdout  # the gap_storm failures are in the baseline: nothing new
    assert re.search(r"baseline \S+: 0 regressions, [1-9]\d* known failures", same.stdout), same.stdout

    name = shards.recording.name
    doc["cells"][f"gap_storm/{name}/seed1"].update(divergent=0, failing=[], passed=True)
    doc["cells"][f"clean/{name}/seed2"]["e2e_p99_us"] = 1.0
    doc["margins"]["e2e_p99_us"] = {"relative": 0.0, "absolute": 0.0}
    baseline.write_bytes(orjson.dumps(doc))
    worse = _harness(capsys, "suite", "--merge", shards.folder, "--baseline", baseline)
    assert worse.returncode == 1
    assert f"REGRESSION gap_storm/{name}/seed1: new silent divergence: " in worse.stdout
    assert f"REGRESSION clean/{name}/seed2: e2e p99 " in worse.stdout
    assert "against baseline 1.0 µs: worse by " in worse.stdout
    regressions = [line for line in worse.stdout.splitlines() if "REGRESSION" in line]
    assert not any(f"gap_storm/{name}/seed2" in line for line in regressions)


def test_shards_listed_cover_the_matrix_once(capsys: pytest.CaptureFixture[str]) -> None:
    whole = _harness(capsys, "suite", "--seeds", "1-3", "--list")
    assert whole.returncode == 0, whole.stderr
    cells = whole.stdout.split()
    parts = [
        _harness(capsys, "suite", "--seeds", "1-3", "--list", "--shard", f"{i}/4").stdout.split() for i in (1, 2, 3, 4)
    ]
    assert sorted(c for part in parts for c in part) == sorted(cells) and len(cells) == len(set(cells))
    assert {len(part) for part in parts} <= {len(cells) // 4, len(cells) // 4 + 1}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scenarios", "clean,nope"], "error: unknown scenario 'nope'"),
        (["--recordings", "no/such/recording"], "error: no/such/recording: "),
        (["--seeds", "5-1"], "error: --seeds '5-1': range 5-1 runs backwards"),
        (["--shard", "3/2"], "error: --shard '3/2': I must be between 1 and N"),
        (["--shard", "half"], "error: --shard 'half': expected I/N"),
        (["--subject", "nomodule_here:create"], "error: subject module 'nomodule_here' cannot be found"),
        (["--update-baseline"], "error: --update-baseline needs --baseline FILE"),
        (["--merge", "no/such/folder"], "error: --merge no/such/folder: no such file or folder"),
        (["stray"], "error: unexpected argument 'stray'"),
        (["--merge", "x", "--seeds", "1-3"], "error: --merge joins suites that already ran; --seeds does not apply"),
        (
            ["--merge", "x", "--subject", "m:f"],
            "error: --merge joins suites that already ran; --subject does not apply",
        ),
    ],
)
def test_bad_input_is_one_error_line_and_exit_2(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    run = _harness(capsys, "suite", *args)
    assert run.returncode == 2
    assert run.stderr.startswith(message) and run.stderr.count("\n") == 1, run.stderr
    assert run.stdout == ""
