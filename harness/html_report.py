"""`--html PATH`: a run (or a suite) as one self-contained HTML page a person reads at a glance.

Built only from the JSON report (its `pictures`, `queue` and `expectations`), so the page says what
the report says: the verdict, what was flagged, the first divergence with the frames around it, then
the plots (harness/html_report_svg.py: latency percentiles per stage, the sync timeline with fault
windows and resyncs, the queue's depth) and the expectation table. No script, no stylesheet or font
fetched: the file opens anywhere, offline, and can be attached to a CI run. Pure apart from
`write_html_report`/`write_suite_html`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from os import PathLike
from typing import Any

from harness.html_report_svg import percentile_plot, queue_plot, timeline_plot
from harness.report import FLAG_ROWS, size_text, unverified_text

STYLE = """
body { font-family: sans-serif; margin: 24px; color: #222; max-width: 980px; }
h1 { font-size: 22px; } h2 { font-size: 17px; margin-top: 28px; } h3 { font-size: 15px; }
.pass { color: #1a7f37; } .fail { color: #c62828; }
table { border-collapse: collapse; margin: 8px 0; font-size: 13px; }
td, th { border: 1px solid #ddd; padding: 3px 8px; text-align: left; vertical-align: top; }
td.num { text-align: right; }
tr.fail td { background: #fdecea; } tr.pass td:first-child { color: #1a7f37; }
code { background: #f4f4f4; padding: 1px 4px; }
svg.plot { display: block; margin: 6px 0 12px 0; background: #fff; }
details { margin: 10px 0; }
"""


def replay_html(report: Mapping[str, Any]) -> str:
    """The whole page for one replay report."""
    title = f"{report['scenario']} seed {report['seed']}: {'PASS' if report['passed'] else 'FAIL'}"
    return _page(title, _replay_body(report, level=1))


def suite_html(summary: Mapping[str, Any], reports: Mapping[str, Mapping[str, Any]]) -> str:
    """The page for a suite: its table of cells, then each cell's pictures (`reports` by cell key: the
    parts of each cell's replay report the pictures need)."""
    verdict = "PASSED" if summary["passed"] else "FAILED"
    parts = [f'<h1 class="{_cls(summary["passed"])}">suite {verdict}</h1>']
    totals = summary["totals"]
    parts.append(
        f"<p>{totals['cells']} cells: {totals['passed']} passed, {totals['failed']} failed, "
        f"{totals['errors']} errors; subject <code>{escape(summary['subject'])}</code></p>"
    )
    rows = []
    for cell in summary["cells"]:
        failed = "; ".join(row["name"] for row in cell["expectations"] if row["passed"] is False)
        if cell["status"] == "error":
            failed = f"did not run ({cell['error']['kind']})"
        rows.append(
            f'<tr class="{"pass" if cell["status"] == "pass" else "fail"}"><td>{escape(cell["status"].upper())}</td>'
            f"<td>{escape(cell['key'])}</td><td>{escape(failed)}</td><td><code>{escape(cell['reproduce'])}</code></td></tr>"
        )
    parts.append("<table><tr><th></th><th>cell</th><th>failed</th><th>reproduce</th></tr>" + "".join(rows) + "</table>")
    for cell in summary["cells"]:
        report = reports.get(cell["key"])
        if report is None:
            continue
        head = f"{'PASS' if report['passed'] else 'FAIL'} {cell['key']}"
        opened = " open" if not report["passed"] else ""
        parts.append(f"<details{opened}><summary>{escape(head)}</summary>{_replay_body(report, level=2)}</details>")
    return _page(f"suite {verdict}", "".join(parts))


def pictures_of(report: Mapping[str, Any]) -> dict[str, Any]:
    """The parts of a replay report its pictures need: what a suite cell keeps for `suite_html`."""
    queue = report.get("queue") or {}
    return {
        "scenario": report["scenario"],
        "seed": report["seed"],
        "recording": report["recording"],
        "passed": report["passed"],
        "sync": {key: report["sync"].get(key) for key in _SYNC_KEYS},
        "expectations": report["expectations"],
        "pictures": report.get("pictures") or {},
        "queue": {"depth_samples": queue.get("depth_samples") or []},
    }


_SYNC_KEYS = (
    "divergent",
    "checks",
    "episodes",
    "episodes_verified",
    "unverified_episodes",
    "flags",
    "divergence_examples",
    *FLAG_ROWS,
)


def write_html_report(report: Mapping[str, Any], path: str | PathLike[str]) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(replay_html(report))


def write_suite_html(
    summary: Mapping[str, Any], reports: Mapping[str, Mapping[str, Any]], path: str | PathLike[str]
) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(suite_html(summary, reports))


def _page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>{body}</body></html>\n"
    )


def _cls(passed: bool) -> str:
    return "pass" if passed else "fail"


def _replay_body(report: Mapping[str, Any], level: int) -> str:
    h1, h2 = f"h{level}", f"h{level + 1}"
    sync = report["sync"]
    verdict = "PASS" if report["passed"] else "FAIL"
    parts = [
        f'<{h1} class="{_cls(report["passed"])}">{verdict} {escape(str(report["scenario"]))} '
        f"seed {escape(str(report['seed']))}</{h1}>",
        f"<p>recording <code>{escape(str(report['recording']))}</code></p>",
        _summary_table(report),
    ]
    parts += _divergence(sync, h2)
    pictures = report.get("pictures") or {}
    timeline = pictures.get("sync_timeline") or {}
    parts.append(f"<{h2}>Latency per stage (percentiles)</{h2}>")
    parts.append(percentile_plot(pictures.get("latency_percentiles") or {}))
    parts.append(f"<{h2}>Sync state per symbol</{h2}>")
    parts.append(timeline_plot(timeline))
    parts.append(f"<{h2}>Queue depth</{h2}>")
    parts.append(queue_plot(_queue_samples_ms(report, timeline), float(timeline.get("end_ms") or 0.0)))
    parts.append(f"<{h2}>Expectations</{h2}>")
    parts.append(_expectations(report["expectations"]))
    return "".join(parts)


def _summary_table(report: Mapping[str, Any]) -> str:
    sync = report["sync"]
    episodes, verified = sync.get("episodes", 0), sync.get("episodes_verified", 0)
    rows = [
        ("silent divergence", sync.get("divergent", 0), sync.get("divergent", 0) == 0),
        ("episodes verified", f"{verified} / {episodes}", verified == episodes),
        *((what, sync.get(flag, 0), not sync.get(flag)) for flag, what in FLAG_ROWS.items()),
    ]
    cells = "".join(
        f'<tr class="{_cls(ok)}"><td>{escape(name)}</td><td class="num">{escape(str(value))}</td></tr>'
        for name, value, ok in rows
    )
    flags = "".join(
        f"<li><b>{escape(row['flag'])}</b> {escape(row['symbol'])}: {escape(row['detail'])}</li>"
        for row in sync.get("flags") or []
    )
    for episode in sync.get("unverified_episodes") or []:
        what = unverified_text(episode, report)
        flags += f"<li><b>unverified episode</b> {escape(episode['symbol'])}: {escape(what)}</li>"
    return f"<table>{cells}</table>" + (f"<ul>{flags}</ul>" if flags else "")


def _divergence(sync: Mapping[str, Any], h2: str) -> list[str]:
    examples = sync.get("divergence_examples") or []
    if not examples:
        return []
    ex = examples[0]
    parts = [
        f"<{h2}>First divergence</{h2}>",
        f"<p>{escape(ex['symbol'])} at update {ex['update_id']}: {escape(ex['reason'])}</p>",
    ]
    first = ex.get("first_difference")
    if first:
        parts.append(
            f"<p>first differing level: {escape(first['side'])} at price <code>{escape(str(first['price']))}</code>, "
            f"subject {escape(size_text(first['subject']))}, oracle {escape(size_text(first['oracle']))}</p>"
        )
    context = ex.get("context") or {}
    rows = "".join(
        f"<tr><td>{row['frame_index']}</td><td>{row['first_update_id']}-{row['last_update_id']}</td>"
        f"<td>{escape(row['fate'])}</td><td>{escape(_writes(row['writes']))}</td></tr>"
        for row in context.get("frames") or []
    )
    if rows:
        parts.append(
            "<table><tr><th>frame</th><th>updates</th><th>what became of it</th>"
            "<th>writes (ms from the divergent book)</th></tr>" + rows + "</table>"
        )
    faults = context.get("faults") or []
    if faults:
        items = "".join(
            f"<li>{escape(f['kind'])} <code>{escape(f['fault_id'])}</code>: "
            f"{f['start_ms']} ms to {f['heal_ms']} ms</li>"
            for f in faults
        )
        parts.append(f"<p>faults open then:</p><ul>{items}</ul>")
    return parts


def _writes(writes: Sequence[Mapping[str, Any]]) -> str:
    return ", ".join(
        f"conn {w['client_id']} at {w['ms']}" + (f" ({w['fault']})" if w.get("fault") else "") for w in writes
    )


def _queue_samples_ms(report: Mapping[str, Any], timeline: Mapping[str, Any]) -> list[list[float]]:
    """The subject's depth samples on the timeline's clock (ms since the replay clock started)."""
    samples = (report.get("queue") or {}).get("depth_samples") or []
    start = timeline.get("start_mono_ns")
    origin = start if isinstance(start, int) else (samples[0][0] if samples else 0)
    return [[(t - origin) / 1e6, depth] for t, depth in samples if t >= origin]


_MARKS = {True: "PASS", False: "FAIL", None: "N/A"}


def _expectations(rows: Sequence[Mapping[str, Any]]) -> str:
    body = "".join(
        f'<tr class="{_cls(row["passed"] is not False)}"><td>{_MARKS[row["passed"]]}</td>'
        f"<td>{escape(str(row['name']))}</td><td>{escape(str(row['threshold']))}</td>"
        f'<td class="num">{escape(str(row["value"]))}</td></tr>'
        for row in rows
    )
    return (
        '<table class="expectations"><tr><th></th><th>name</th><th>threshold</th><th>value</th></tr>'
        + body
        + "</table>"
    )
