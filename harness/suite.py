"""`harness suite`: a matrix of replays in parallel processes, one verdict, a baseline, shards and merges.

Everything the user typed is checked before the first cell starts (scenarios load, recordings open,
the subject module exists, seeds and shard parse), so a typo costs a second, not a CI run. Each cell
is one `run_replay` in a worker process of its own (a cell already runs its subject in a second
process, and its venue clock must not share a loop or a GIL with another cell's). A cell is
deterministic from (recording, scenario, seed, subject), so where it runs does not change what it
means. The pure parts live in suite_matrix (cells, shards), suite_results (records, table, JUnit)
and suite_baseline (what got worse).
"""

from __future__ import annotations

import multiprocessing
import os
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from harness.errors import HarnessError
from harness.html_report import pictures_of
from harness.replay import BUNDLED_FIXTURE, ReplayRequest, run_replay
from harness.scenarios import list_scenarios, load_scenario
from harness.subject import DEFAULT_SUBJECT, check_factory_spec
from harness.suite_baseline import compare, load_baseline, updated_baseline, write_baseline
from harness.suite_matrix import (
    RecordingChoice,
    ScenarioChoice,
    SuiteCell,
    build_matrix,
    longest_first,
    shard_of,
)
from harness.suite_results import (
    BAD_INPUT,
    CRASH,
    ERROR,
    FAIL,
    SUITE_SCHEMA_VERSION,
    CellResult,
    cell_result,
    error_result,
    suite_summary,
)
from replayer.reader import Recording

OnResult = Callable[[CellResult, int, int], None]
"""`on_result(result, done, total)`, called in the parent as each cell finishes."""


@dataclass(slots=True)
class SuiteRequest:
    """A suite to run. None means: every library scenario, the bundled fixture, each scenario's own
    seed, one worker per core, the whole matrix, no baseline."""

    scenarios: Sequence[str] | None = None
    recordings: Sequence[Path] | None = None
    seeds: Sequence[int] | None = None
    subject: str = DEFAULT_SUBJECT
    jobs: int | None = None
    shard: tuple[int, int] | None = None
    baseline: Path | None = None
    update_baseline: bool = False
    rest_weight_limit: int | None = None
    """None: each recording's venue's own."""
    pictures: bool = False
    """Each cell's result carries `pictures` (for `--html`) until `on_result` takes it out."""


@dataclass(frozen=True, slots=True)
class SuitePlan:
    """The cells this run (or shard) takes, and how many the whole matrix has."""

    cells: list[SuiteCell]
    matrix_size: int


def plan_suite(request: SuiteRequest) -> SuitePlan:
    """Checks every input and returns the cells to run; a HarnessError names the first bad one."""
    check_factory_spec(request.subject)
    if request.jobs is not None and request.jobs < 1:
        raise HarnessError(f"--jobs {request.jobs}: must be at least 1")
    if request.update_baseline and request.baseline is None:
        raise HarnessError("--update-baseline needs --baseline FILE (the file to write)")
    if request.rest_weight_limit is not None and request.rest_weight_limit < 0:
        raise HarnessError(f"--rest-weight-limit {request.rest_weight_limit}: must be >= 0 (0 turns it off)")
    if request.seeds is not None and not request.seeds:
        raise HarnessError("--seeds: no seeds given")
    if request.scenarios is None:
        loaded = list_scenarios()
    else:
        if not request.scenarios:
            raise HarnessError("--scenarios: no scenarios given")
        loaded = [load_scenario(name) for name in request.scenarios]
    sources = request.scenarios or [s.name for s in loaded]
    scenarios = [ScenarioChoice(src, s.name, s.seed, s.speed) for src, s in zip(sources, loaded, strict=True)]
    paths: list[Path | None] = [*(request.recordings or ())] or [None]
    recordings = [_recording_choice(path) for path in paths]
    cells = build_matrix(scenarios, recordings, request.seeds)
    mine = cells if request.shard is None else shard_of(cells, *request.shard)
    return SuitePlan(mine, len(cells))


def run_cells(
    cells: Sequence[SuiteCell],
    subject: str,
    jobs: int | None,
    on_result: OnResult | None = None,
    rest_weight_limit: int | None = None,
    pictures: bool = False,
) -> list[CellResult]:
    """Runs the cells in up to `jobs` worker processes, longest first; results in finishing order.

    `pictures` adds to each result, under `pictures`, what `--html` draws of its replay (harness/html_report.py
    `pictures_of`); the caller takes it out before the result goes into a summary."""
    if not cells:
        return []
    workers = min(jobs or default_jobs(), len(cells))
    results: list[CellResult] = []
    # spawn, not fork: a caller (a pytest session, a notebook) may hold threads that fork would copy mid-step.
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        pending: set[Future[CellResult]] = {
            pool.submit(run_cell, cell, subject, rest_weight_limit, pictures) for cell in longest_first(cells)
        }
        try:
            while pending:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    results.append(future.result())
                    if on_result is not None:
                        on_result(results[-1], len(results), len(cells))
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    return results


def run_cell(cell: SuiteCell, subject: str, rest_weight_limit: int | None = None, pictures: bool = False) -> CellResult:
    """One cell, in whatever process calls it; a crash is kept with its trace instead of ending the suite."""
    started = time.monotonic()
    request = ReplayRequest(
        scenario=cell.scenario_source,
        recording=None if cell.recording is None else Path(cell.recording),
        seed=cell.seed,
        subject=subject,
        rest_weight_limit=rest_weight_limit,
    )
    try:
        report = run_replay(request)
    except HarnessError as exc:
        return error_result(cell, subject, BAD_INPUT, str(exc), time.monotonic() - started, rest_weight_limit)
    except Exception:
        trace = traceback.format_exc()
        return error_result(cell, subject, CRASH, trace, time.monotonic() - started, rest_weight_limit)
    result = cell_result(cell, subject, report, time.monotonic() - started, rest_weight_limit)
    if pictures:
        result["pictures"] = pictures_of(report)
    return result


def run_suite(request: SuiteRequest, on_result: OnResult | None = None) -> dict[str, Any]:
    """Plans, runs, compares with the baseline (and rewrites it when asked); returns the JSON summary."""
    plan = plan_suite(request)
    baseline = _read_baseline(request)
    started = time.monotonic()
    results = run_cells(
        plan.cells, request.subject, request.jobs, on_result, request.rest_weight_limit, request.pictures
    )
    jobs = min(request.jobs or default_jobs(), max(1, len(plan.cells)))
    return conclude(
        results,
        subject=request.subject,
        shard=request.shard,
        matrix_size=plan.matrix_size,
        wall_s=time.monotonic() - started,
        jobs=jobs,
        baseline=baseline,
        baseline_path=request.baseline,
        update_baseline=request.update_baseline,
    )


def merge_suites(
    paths: Sequence[Path], baseline_path: Path | None = None, update_baseline: bool = False
) -> dict[str, Any]:
    """Joins shards' JSON summaries (files, or folders searched for them) into one summary."""
    if not paths:
        raise HarnessError("--merge needs at least one folder or summary file")
    if update_baseline and baseline_path is None:
        raise HarnessError("--update-baseline needs --baseline FILE (the file to write)")
    docs = _read_summaries(paths)
    subjects = {doc["subject"] for _, doc in docs}
    if len(subjects) != 1:
        raise HarnessError(f"--merge: the summaries ran different subjects: {', '.join(sorted(subjects))}")
    _check_shards_complete(docs)
    results: list[CellResult] = []
    seen: dict[str, Path] = {}
    for path, doc in docs:
        for cell in doc["cells"]:
            if cell["key"] in seen:
                raise HarnessError(f"--merge: cell {cell['key']} is in both {seen[cell['key']]} and {path}")
            seen[cell["key"]] = path
            results.append(cell)
    baseline = None
    if baseline_path is not None and not (update_baseline and not baseline_path.exists()):
        baseline = load_baseline(baseline_path)
    return conclude(
        results,
        subject=subjects.pop(),
        shard=None,
        matrix_size=max(doc["matrix_size"] for _, doc in docs),
        wall_s=None,
        jobs=None,
        baseline=baseline,
        baseline_path=baseline_path,
        update_baseline=update_baseline,
    )


def conclude(
    results: Sequence[CellResult],
    *,
    subject: str,
    shard: tuple[int, int] | None,
    matrix_size: int,
    wall_s: float | None,
    jobs: int | None,
    baseline: Mapping[str, Any] | None,
    baseline_path: Path | None,
    update_baseline: bool,
) -> dict[str, Any]:
    """The verdict: a cell without a verdict fails the suite; then, against a baseline, only what got
    worse fails it; without one, any failing cell does; accepting a new baseline passes."""
    comparison = None if baseline is None else compare(baseline, results, str(baseline_path))
    errors = any(r["status"] == ERROR for r in results)
    if update_baseline:
        assert baseline_path is not None
        write_baseline(updated_baseline(baseline, results, subject), baseline_path)
        passed = not errors
    elif comparison is not None:
        passed = not errors and not comparison.regressions
    else:
        passed = not errors and not any(r["status"] == FAIL for r in results)
    return suite_summary(
        results,
        subject=subject,
        shard=shard,
        matrix_size=matrix_size,
        wall_s=wall_s,
        jobs=jobs,
        baseline=None if comparison is None else comparison.as_dict(str(baseline_path)),
        passed=passed,
    )


def exit_code(summary: Mapping[str, Any]) -> int:
    """0 passed, 1 failed, 2 when a cell found bad input only once it ran (a recording it cannot replay)."""
    if any(c["status"] == ERROR and c["error"]["kind"] == BAD_INPUT for c in summary["cells"]):
        return 2
    return 0 if summary["passed"] else 1


def default_jobs() -> int:
    """The cores this process may use (a CI container's quota, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _recording_choice(path: Path | None) -> RecordingChoice:
    if path is None:
        return RecordingChoice(None, BUNDLED_FIXTURE.name)
    Recording(path)  # a missing or unreadable recording is an error now, not in every cell
    return RecordingChoice(str(path), path.resolve().name)


def _read_baseline(request: SuiteRequest) -> dict[str, Any] | None:
    """The baseline to compare with: required to exist unless this run is the one that writes it."""
    if request.baseline is None:
        return None
    if request.update_baseline and not request.baseline.exists():
        return None
    return load_baseline(request.baseline)


def _read_summaries(paths: Sequence[Path]) -> list[tuple[Path, dict[str, Any]]]:
    """Summaries from files named, or found under folders named (an artifact download nests them)."""
    docs: list[tuple[Path, dict[str, Any]]] = []
    for path in paths:
        if path.is_dir():
            found = [(f, doc) for f in sorted(path.rglob("*.json")) if (doc := _summary(f, strict=False))]
            if not found:
                raise HarnessError(f"--merge {path}: no suite summary (.json from harness suite --json) in it")
            docs += found
        elif path.is_file():
            summary = _summary(path, strict=True)
            assert summary is not None, "strict: anything but a summary raises"
            docs.append((path, summary))
        else:
            raise HarnessError(f"--merge {path}: no such file or folder")
    return docs


def _summary(path: Path, strict: bool) -> dict[str, Any] | None:
    """A suite summary, or None for another JSON file in a folder (a full replay report, say)."""
    try:
        doc = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        if strict:
            raise HarnessError(f"--merge {path}: cannot read a JSON summary ({exc.__class__.__name__})") from None
        return None
    if isinstance(doc, dict) and doc.get("suite_schema_version") == SUITE_SCHEMA_VERSION:
        if not isinstance(doc.get("cells"), list) or not isinstance(doc.get("subject"), str):
            raise HarnessError(f"--merge {path}: a suite summary without 'cells' and 'subject'")
        return doc
    if strict:
        raise HarnessError(f"--merge {path}: not a version {SUITE_SCHEMA_VERSION} suite summary")
    return None


def _check_shards_complete(docs: Sequence[tuple[Path, Mapping[str, Any]]]) -> None:
    """A merge of shards must hold every shard once: a runner that died must not read as a smaller suite."""
    shards = [(path, doc["shard"]) for path, doc in docs]
    if all(shard is None for _, shard in shards):
        return
    if any(shard is None for _, shard in shards):
        raise HarnessError("--merge: some summaries are shards (--shard) and some are whole suites")
    counts = {int(shard.split("/")[1]) for _, shard in shards}
    if len(counts) != 1:
        raise HarnessError(f"--merge: the summaries come from different shard counts: {sorted(counts)}")
    count = counts.pop()
    indexes = [int(shard.split("/")[0]) for _, shard in shards]
    missing = sorted(set(range(1, count + 1)) - set(indexes))
    if missing:
        raise HarnessError(f"--merge: shard {', '.join(f'{i}/{count}' for i in missing)} missing; merged nothing")
    twice = sorted({i for i in indexes if indexes.count(i) > 1})
    if twice:
        raise HarnessError(f"--merge: shard {', '.join(f'{i}/{count}' for i in twice)} given twice")
