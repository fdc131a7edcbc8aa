"""`make conformance`: well-known open-source clients through the scenario library, written up as docs/conformance.md.

Each client is wired as a subject by an adapter (harness/ccxt_subject.py, harness/python_binance_subject.py)
and run through `harness suite` (every library scenario at its own seed, the bundled fixture). The page
states what the checker measured, cell by cell, with the command that replays each cell; nothing in it
is written by hand. The clients are the `conformance` extra, installed by `make conformance` into a venv
of their own, never into the project's: a client that is not installed gets a line saying so.
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.suite import SuiteRequest, run_suite
from harness.suite_results import progress_line

RECORDINGS = (Path("fixtures/binance_spot_multi_synth"), Path("fixtures/binance_spot_btcusdt_real_60s"))
"""The bundled four-symbol synthetic fixture, and the real BTCUSDT slice: a client's bug that shows on one
symbol's formatting (SHIBUSDT's two-decimal sizes) is told apart from one that shows on any market."""

STOPPED = ("subject subscribed, ran and stopped when asked", "subject exited cleanly", "subject ran without raising")


def _ccxt_version() -> str | None:
    try:
        import ccxt
    except ImportError:
        return None
    return str(ccxt.__version__)


def _python_binance_version() -> str | None:
    try:
        import binance
    except ImportError:
        return None
    return str(binance.__version__)


@dataclass(frozen=True, slots=True)
class Client:
    name: str
    subject: str
    distribution: str
    """Its package name on PyPI."""
    version: Callable[[], str | None]
    """The installed version, or None when it is not importable here (plain imports: no import by name)."""


CLIENTS = (
    Client("ccxt.pro binance `watch_order_book`", "harness.ccxt_subject:create", "ccxt", _ccxt_version),
    Client(
        "python-binance `DepthCacheManager(ws_interval=100)`",
        "harness.python_binance_subject:create",
        "python-binance",
        _python_binance_version,
    ),
)


def _row_value(cell: dict[str, Any], metric: str) -> Any:
    for row in cell["expectations"]:
        if row["name"].startswith(metric + " "):
            return row["value"]
    return None


def _recovery(cell: dict[str, Any]) -> str:
    recovery = cell.get("recovery_ms") or {}
    if not recovery.get("count") and not recovery.get("unrecovered"):
        return "-"
    if recovery.get("count"):
        text = f"p99 {recovery['p99']:,.0f} ms, max {recovery['max']:,.0f} ms ({recovery['count']})"
    else:
        text = "none recovered"
    if recovery.get("unrecovered"):
        text += f", **{recovery['unrecovered']} never recovered**"
    return text


def _cell_row(cell: dict[str, Any], python: str) -> str:
    rows = cell["expectations"]
    failed = [row["name"] for row in rows if row["passed"] is False and row["name"] != "no silent divergence"]
    final = _row_value(cell, "sync.final_book_correct")
    coverage = _row_value(cell, "sync.coverage")
    verdict = {"pass": "pass", "fail": "**FAIL**"}.get(cell["status"], cell["status"])
    divergent = cell.get("divergent")
    columns = [
        cell["scenario"],
        verdict,
        "-" if divergent is None else (f"**{divergent}**" if divergent else "0"),
        "-" if final is None else ("yes" if final else "**no**"),
        "-" if coverage is None else f"{coverage:.2f}",
        _recovery(cell),
        "; ".join(failed) or (cell.get("error") or ""),
        f"`{python} {cell['reproduce'].removeprefix('harness ')}`",
    ]
    return "| " + " | ".join(str(column).replace("|", "\\|") for column in columns) + " |"


def client_section(client: Client, version: str | None, summary: dict[str, Any] | None, python: str) -> list[str]:
    lines = [f"## {client.name}", ""]
    if version is None or summary is None:
        return [*lines, f"Not installed here (`{client.distribution}`); `make conformance` installs it.", ""]
    cells = sorted(summary["cells"], key=lambda cell: (cell["recording_name"], cell["scenario"]))
    passed = sum(cell["status"] == "pass" for cell in cells)
    lines += [
        f"{client.distribution} {version}, subject `{client.subject}`: {passed} of {len(cells)} cells passed "
        f"in {summary['wall_s']:.0f} s.",
        "",
    ]
    for recording in dict.fromkeys(cell["recording_name"] for cell in cells):
        mine = [cell for cell in cells if cell["recording_name"] == recording]
        diverged = [f"{cell['scenario']} ({cell['divergent']})" for cell in mine if cell.get("divergent")]
        wrong_end = [cell["scenario"] for cell in mine if _row_value(cell, "sync.final_book_correct") is False]
        stuck = [
            cell["scenario"]
            for cell in mine
            if any(row["name"] in STOPPED and row["passed"] is False for row in cell["expectations"])
        ]
        never = [cell["scenario"] for cell in mine if (cell.get("recovery_ms") or {}).get("unrecovered")]
        lines += [
            f"### `{recording}`",
            "",
            f"- {sum(cell['status'] == 'pass' for cell in mine)} of {len(mine)} scenarios passed",
            "- silent divergence (books handed out as current that differ from the oracle): "
            + (", ".join(diverged) or "none"),
            f"- wrong or unsynced final book: {', '.join(wrong_end) or 'none'}",
            f"- a loss of sync never recovered: {', '.join(never) or 'none'}",
            f"- had to be stopped or killed, or exited with an error: {', '.join(stuck) or 'none'}",
            "",
            "| scenario | verdict | divergent | final book correct | coverage | recovery | failed expectations | "
            "reproduce |",
            "|---|---|---|---|---|---|---|---|",
            *(_cell_row(cell, python) for cell in mine),
            "",
        ]
    return lines


HEADER = """# Popular clients, judged

Generated by `make conformance` (`harness/conformance.py`); do not edit by hand. Each client runs as a
subject through every library scenario at the scenario's own seed, on the bundled fixture
(`fixtures/binance_spot_multi_synth`: BTCUSDT, ETHUSDT, SOLUSDT, SHIBUSDT on one connection) and on the
real BTCUSDT slice (`fixtures/binance_spot_btcusdt_real_60s`), against the fake venue on 127.0.0.1: the
adapters point every URL the clients hold at it and refuse to start otherwise. A client keeps no
"synced" flag, so every book it hands out is reported as synced, each time it applies an update, and
judged against the oracle: "divergent" counts those that differed (docs/subject.md, "How it is judged").
Coverage is the share of the recording's book states it showed; recovery is from a detected loss of sync
to the next correct book. Timing-dependent counts (recoveries, divergent books after a reconnect) vary
from run to run (docs/scenarios.md, "Determinism"); each command replays one cell with its full report.
"""


NOTES = Path(__file__).resolve().parent.parent / "docs" / "conformance-notes.md"
"""What the numbers mean, client by client, traced to the clients' installed source: written by hand
(it is read, not generated), appended to the page, and re-checked whenever the page is regenerated."""


def write_page(path: Path, sections: Sequence[str], started: float) -> None:
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started))
    meta = f"Written {stamp} on Python {platform.python_version()}; each client's suite time is given with it.\n"
    notes = NOTES.read_text(encoding="utf-8") if NOTES.is_file() else ""
    path.write_text(HEADER + "\n" + meta + "\n" + "\n".join(sections) + notes, encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.conformance", description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("docs/conformance.md"))
    parser.add_argument("--jobs", type=int, default=None)
    parser.add_argument("--scenarios", default=None, help="comma-separated scenario names (default: the library)")
    parser.add_argument("--python", default=".venv-conformance/bin/harness", help="the harness shown in commands")
    parser.add_argument("--summaries", type=Path, default=Path("out/conformance"), help="each client's suite JSON")
    parser.add_argument("--render-only", action="store_true", help="write the page from --summaries, run nothing")
    parser.add_argument("--only", default=None, help="run this client (its PyPI name); the others from --summaries")
    args = parser.parse_args(argv)
    args.summaries.mkdir(parents=True, exist_ok=True)
    started = time.time()
    sections: list[str] = []
    scenarios = args.scenarios.split(",") if args.scenarios else None
    for client in CLIENTS:
        version = client.version()
        summary = None
        saved = args.summaries / f"{client.distribution}.json"
        if version is not None and (args.render_only or args.only not in (None, client.distribution)):
            summary = json.loads(saved.read_text(encoding="utf-8")) if saved.is_file() else None
        elif version is not None:
            print(f"{client.distribution} {version}: {client.subject}", flush=True)
            request = SuiteRequest(scenarios=scenarios, recordings=RECORDINGS, subject=client.subject, jobs=args.jobs)
            summary = run_suite(request, on_result=lambda cell, done, total: print(progress_line(done, total, cell)))
            saved.write_text(json.dumps(summary, indent=1), encoding="utf-8")
        sections += client_section(client, version, summary, shlex.quote(args.python))
    write_page(args.out, sections, started)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
