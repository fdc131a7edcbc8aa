"""The terminal side of `harness suite`: plain lines a CI log keeps, the summary, report files, exit code.

No progress bar and no colour: a CI log is a pipe, so each finished cell is one flushed line, and the
summary at the end is plain aligned text. Failing cells print their `harness replay` command twice:
as they finish, and together at the end where a reader of a long log looks first.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

from harness.errors import HarnessError
from harness.html_report import write_suite_html
from harness.replay_command import check_output_path
from harness.subject import DEFAULT_SUBJECT
from harness.suite import SuiteRequest, exit_code, merge_suites, plan_suite, run_suite
from harness.suite_matrix import parse_seeds, parse_shard
from harness.suite_results import ERROR, FAIL, progress_line, summary_table, write_suite_junit


def run_suite_command(
    *,
    scenarios: str | None,
    recordings: str | None,
    seeds: str | None,
    subject: str | None,
    jobs: int | None,
    shard: str | None,
    junit: Path | None,
    json_path: Path | None,
    baseline: Path | None,
    update_baseline: bool,
    merge: Sequence[Path] | None,
    list_only: bool,
    rest_weight_limit: int | None = None,
    html: Path | None = None,
) -> int:
    """Returns the exit code: 0 passed, 1 failed, 2 bad input."""
    check_output_path(junit, "--junit")
    check_output_path(json_path, "--json")
    check_output_path(html, "--html")
    drawn: dict[str, dict[str, Any]] = {}
    if update_baseline and baseline is not None:
        check_output_path(baseline, "--baseline")
    if merge is not None:
        matrix: dict[str, object] = {
            "--scenarios": scenarios,
            "--recordings": recordings,
            "--seeds": seeds,
            "--subject": subject,
        }
        matrix |= {
            "--jobs": jobs,
            "--shard": shard,
            "--list": list_only or None,
            "--rest-weight-limit": rest_weight_limit,
        }
        given = [option for option, value in matrix.items() if value is not None]
        if given:
            raise HarnessError(f"--merge joins suites that already ran; {given[0]} does not apply to it")
        summary = merge_suites(merge, baseline, update_baseline)
    else:
        subject = subject or DEFAULT_SUBJECT
        request = SuiteRequest(
            scenarios=None if scenarios is None or scenarios.strip() == "all" else _names(scenarios, "--scenarios"),
            recordings=None if recordings is None else [Path(p) for p in _names(recordings, "--recordings")],
            seeds=None if seeds is None else parse_seeds(seeds),
            subject=subject,
            jobs=jobs,
            shard=None if shard is None else parse_shard(shard),
            baseline=baseline,
            update_baseline=update_baseline,
            rest_weight_limit=rest_weight_limit,
            pictures=html is not None,
        )
        plan = plan_suite(request)
        if list_only:
            for cell in plan.cells:
                _say(cell.key)
            return 0
        where = "" if request.shard is None else f" (shard {shard} of a {plan.matrix_size}-cell matrix)"
        _say(f"suite: {_count(len(plan.cells), 'cell')}{where}, subject {subject}")

        def on_result(result: dict[str, Any], done: int, total: int) -> None:
            if "pictures" in result:  # for the page only: the summary and its JSON stay small
                drawn[result["key"]] = result.pop("pictures")
            _say(progress_line(done, total, result))

        summary = run_suite(request, on_result=on_result)
    _say("")
    _say(summary_table(summary["cells"]))
    _say(_conclusion(summary, baseline, update_baseline))
    if json_path is not None:
        _write(json_path, lambda: json_path.write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2)))
    if junit is not None:
        known = (summary["baseline"] or {}).get("known_failures", {})
        regressions = (summary["baseline"] or {}).get("regressions", [])
        _write(junit, lambda: write_suite_junit(summary["cells"], regressions, known, junit))
    if html is not None:
        _write(html, lambda: write_suite_html(summary, drawn, html))
    return exit_code(summary)


def _conclusion(summary: Mapping[str, Any], baseline: Path | None, update_baseline: bool) -> str:
    """Totals, what the baseline says, the commands that reproduce each failing cell, the verdict."""
    t = summary["totals"]
    wall = "" if summary["wall_s"] is None else f" in {summary['wall_s']:.1f} s with {_count(summary['jobs'], 'job')}"
    counts = f"{t['passed']} passed, {t['failed']} failed, {_count(t['errors'], 'error')}"
    lines = ["", f"{_count(t['cells'], 'cell')}: {counts}{wall}"]
    compared = summary["baseline"]
    if compared is not None:
        lines.append(
            f"baseline {compared['path']}: {len(compared['regressions'])} regressions, "
            f"{sum(map(len, compared['known_failures'].values()))} known failures, "
            f"{len(compared['new_cells'])} cells not in it, {compared['not_run']} of its cells not run"
        )
        lines += [f"  REGRESSION {row['key']}: {row['detail']}" for row in compared["regressions"]]
    if update_baseline:
        lines.append(f"baseline {baseline} written ({t['cells'] - t['errors']} cells accepted)")
    failing = [c for c in summary["cells"] if c["status"] in (FAIL, ERROR)]
    if failing:
        lines.append("reproduce a failing cell with:")
        lines += [f"  {c['reproduce']}" for c in failing]
    for cell in summary["cells"]:
        if cell["status"] == ERROR:
            lines.append(f"{cell['key']} did not run ({cell['error']['kind']}):\n{cell['error']['message'].rstrip()}")
    lines.append("suite PASSED" if summary["passed"] else "suite FAILED")
    return "\n".join(lines)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _names(text: str, option: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise HarnessError(f"{option} {text!r}: give at least one name")
    return names


def _write(path: Path, write: Callable[[], object]) -> None:
    try:
        write()
    except OSError as exc:
        raise HarnessError(f"cannot write {path}: {exc.strerror or exc}") from None


def _say(text: str) -> None:
    """CI logs are pipes: an unflushed line would show only when the job ends."""
    print(text, flush=True)
