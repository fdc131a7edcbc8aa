"""The report: every key the schema promises, orjson round trip, the verdict, the terminal table and JUnit."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import orjson
from rich.console import Console

from harness.book_events import DepthSnapshot
from harness.checker import check, replay_clock
from harness.observations import BookObservation, FinalBook, SyncEvent
from harness.oracle import Oracle
from harness.report import apply_expectations, build_report, dumps_report, render_terminal, write_junit, write_report
from replayer.timeline import Frame

SYMBOL = "ETHUSDT"
STREAM = "ethusdt@depth@100ms"
T0 = 1_000_000_000
SNAP = DepthSnapshot(SYMBOL, 10, [["10.00", "1"]], [["11.00", "1"]])

REQUIRED = [
    "passed",
    "scenario",
    "seed",
    "recording",
    "faults",
    "faults_armed",
    "faults_by_id",
    "frames.sent",
    "sync.checks",
    "sync.divergent",
    "sync.gaps_injected",
    "sync.gaps_detected",
    "sync.resyncs",
    "sync.unsynced_ms",
    "sync.recovery_ms.p50",
    "sync.recovery_ms.p99",
    "sync.recovery_ms.max",
    "sync.final_book_correct",
    "sync.episodes",
    "sync.episodes_verified",
    "sync.books_before_snapshot",
    "sync.unrequested_output",
    "sync.dark_books",
    "sync.stale_synced",
    "sync.flags",
    "pictures.latency_percentiles",
    "pictures.sync_timeline.symbols",
    *(f"latency_us.{n}.{k}" for n in ("e2e", "e2e_intended") for k in ("p50", "p90", "p99", "p999", "max")),
    *(
        f"latency_us.stages.{s}.{k}"
        for s in ("wire", "parse", "queue", "apply")
        for k in ("count", "p50", "p90", "p99", "p999", "max")
    ),
    "queue",
    "expectations",
]


@dataclass
class Write:
    frame_index: int
    intended_mono_ns: int
    write_mono_ns: int


@dataclass
class Client:
    client_id: int
    sends: list[Write]


@dataclass
class Window:
    kind: str
    start_ns: int
    heal_ns: int


def frame(i: int) -> Frame:
    data = {"e": "depthUpdate", "s": SYMBOL, "U": 10 + i, "u": 10 + i, "b": [[f"{9 - i}.00", "2"]], "a": []}
    return Frame(i, i * 1_000_000, STREAM, orjson.dumps({"stream": STREAM, "data": data}), 10 + i, 10 + i)


def run(wrong: bool = False) -> dict:
    """Five updates, each adding a lower bid; `wrong` makes the subject report one size wrong."""
    frames = [frame(i) for i in range(1, 6)]
    bids = [("10.00", "1")]
    messages: list = [SyncEvent("synced", T0)]
    writes = []
    for f in frames:
        t = T0 + f.offset_ns
        writes.append(Write(f.index, t - 2_000, t))
        bids.append((f"{9 - f.index}.00", "2"))
        shown = [*bids[:-1], (bids[-1][0], "3")] if wrong and f.index == 3 else list(bids)
        messages.append(
            BookObservation(
                SYMBOL, 10 + f.index, True, shown, [("11.00", "1")], t + 40_000, t + 41_000, t + 45_000, t + 46_000
            )
        )
    messages.append(FinalBook(SYMBOL, 15, True, list(bids), [("11.00", "1")]))
    oracle = Oracle(frames, SNAP)
    found = check(oracle, messages, [Client(1, writes)], [Window("drop", 2_000_000, 3_000_000)], replay_clock(T0, 1.0))
    return build_report(
        found,
        scenario="gap_storm",
        seed=7,
        recording="fixtures/btcusdt",
        faults={"drop": 3, "duplicate": 1},
        faults_armed={"drop": 4, "duplicate": 1},
        faults_by_id={"drop.0": {"kind": "drop", "armed": 4, "served": 3}},
        queue={"high_water": 4, "drops": {"low": 0}},
        speed=1.0,
    )


def dig(report: dict, path: str):
    node = report
    for part in path.split("."):
        assert isinstance(node, dict) and part in node, path
        node = node[part]
    return node


def test_report_has_every_required_key_and_round_trips_through_orjson(tmp_path: Path) -> None:
    report = run()
    for path in REQUIRED:
        dig(report, path)
    assert orjson.loads(dumps_report(report)) == report
    write_report(report, tmp_path / "r.json")
    assert orjson.loads((tmp_path / "r.json").read_bytes()) == report
    assert report["passed"] is True
    assert report["sync"]["checks"] == 6 and report["sync"]["final_book_correct"] is True
    assert report["frames"]["sent"] == 5
    assert report["faults"] == {"drop": 3, "duplicate": 1}
    assert report["faults_armed"] == {"drop": 4, "duplicate": 1}
    assert report["faults_by_id"] == {"drop.0": {"kind": "drop", "armed": 4, "served": 3}}
    assert report["latency_us"]["e2e"]["max"] == 46.0
    assert report["latency_us"]["e2e_intended"]["max"] == 48.0
    assert report["latency_us"]["stages"]["wire"]["count"] == 5
    assert report["sync"]["recovery_ms"] == {"count": 1, "unrecovered": 0, "p50": 0.046, "p99": 0.046, "max": 0.046}


def test_divergence_fails_the_run_even_when_every_expectation_holds() -> None:
    report = apply_expectations(run(wrong=True), [{"name": "gaps", "threshold": ">= 1", "value": 3, "passed": True}])
    assert report["sync"]["divergent"] == 1
    assert report["passed"] is False
    assert [row["name"] for row in report["expectations"]] == ["no silent divergence", "gaps"]
    assert report["sync"]["divergence_examples"][0]["update_id"] == 13


def test_a_failing_expectation_fails_the_run_and_objects_are_accepted() -> None:
    @dataclass
    class Result:
        name: str
        threshold: object
        value: object
        passed: bool

    report = apply_expectations(run(), [Result("recovery", ("<=", 50), 80.5, False)])
    assert report["passed"] is False
    row = {"name": "recovery", "threshold": ["<=", 50], "value": 80.5, "passed": False, "status": "failed"}
    assert report["expectations"][1] == row
    orjson.loads(dumps_report(report))


def test_junit_has_one_testcase_per_expectation_and_marks_failures(tmp_path: Path) -> None:
    report = apply_expectations(run(), [{"name": "p99", "threshold": "< 1000", "value": 2000, "passed": False}])
    path = tmp_path / "junit.xml"
    write_junit(report, path)
    suite = ET.parse(path).getroot()
    assert suite.tag == "testsuite" and suite.get("name") == "harness.replay.gap_storm"
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == ["no silent divergence", "p99"]
    assert suite.get("failures") == "1"
    assert cases[0].find("failure") is None
    failure = cases[1].find("failure")
    assert failure is not None and "2000" in failure.get("message", "")


def test_terminal_table_leads_with_the_verdict() -> None:
    console = Console(record=True, width=120, color_system=None)
    console.print(render_terminal(run(wrong=True)))
    text = console.export_text()
    assert text.index("FAIL") < text.index("silent divergence")
    assert "first divergence: ETHUSDT at update 13" in text
    for stage in ("e2e_intended", "wire", "parse", "queue", "apply", "drop"):
        assert stage in text
    passing = Console(record=True, width=120, color_system=None)
    passing.print(render_terminal(run()))
    text = passing.export_text()
    assert "PASS" in text
    served_armed = [line.split() for line in text.splitlines() if line.split()[:1] in (["drop"], ["duplicate"])]
    assert ["drop", "3", "4"] in served_armed and ["duplicate", "1", "1"] in served_armed
