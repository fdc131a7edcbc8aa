"""`harness inspect`: a hand-built recording with a known hole, a reconnect and two segments, and the real slice."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from harness.cli import app
from harness.inspect_recording import inspect_recording, summarize
from recorder.format import EventKind, RecordingMeta
from recorder.segments import RecordingWriter
from replayer.reader import Recording, RecordingError
from replayer.replay_data import build_replay_data, load_replay_data
from replayer.ticker_agreement import ticker_agreement

SECOND = 1_000_000_000
START = 1_700_000_000 * SECOND
URL = "wss://stream.binance.com:9443/stream?streams=btcusdt@depth@100ms/btcusdt@trade"
REST = "https://api.binance.com/api/v3/depth?symbol=BTCUSDT&limit=5000"
META = RecordingMeta(
    venue="binance-spot",
    symbols=("BTCUSDT",),
    tool_version="0.1.0",
    start_wall_ns=START,
    source="test",
    recording_id="inspect-1",
)


def depth(first: int, last: int, *, swapped: bool = False) -> bytes:
    ids = f'"u":{last},"U":{first}' if swapped else f'"U":{first},"u":{last}'
    return f'{{"stream":"btcusdt@depth@100ms","data":{{"e":"depthUpdate","s":"BTCUSDT",{ids},"b":[],"a":[]}}}}'.encode()


def trade(trade_id: int) -> bytes:
    return f'{{"stream":"btcusdt@trade","data":{{"e":"trade","t":{trade_id},"p":"1.0","q":"2.0"}}}}'.encode()


def build(path: Path, *, close: bool = True, segment_max_bytes: int = 1_500) -> RecordingWriter:
    """10 s of recording: conn 1 has a 4-update hole, then drops (1006); conn 3 reconnects and has an overlap."""
    writer = RecordingWriter(path, META, segment_max_bytes=segment_max_bytes, fsync=False)
    t = 0

    def add(kind: EventKind, conn_id: int, payload: bytes = b"", *, url: str = URL, stream=None, **kw) -> None:
        nonlocal t
        writer.append(
            kind, conn_id=conn_id, wall_ns=START + t, mono_ns=t, payload=payload, url=url, stream=stream, **kw
        )
        t += SECOND // 2

    add(EventKind.WS_OPEN, 1)
    add(EventKind.WS_RECV, 1, depth(100, 104), stream="btcusdt@depth@100ms")
    add(EventKind.HTTP_REQUEST, 2, url=REST, reason="GET")
    add(EventKind.HTTP_RESPONSE, 2, b'{"lastUpdateId":102,"bids":[],"asks":[]}', url=REST, status=200, reason="OK")
    add(EventKind.WS_RECV, 1, depth(105, 110), stream="btcusdt@depth@100ms")
    add(EventKind.WS_RECV, 1, trade(1), stream="btcusdt@trade")
    add(EventKind.WS_RECV, 1, depth(115, 120, swapped=True), stream="btcusdt@depth@100ms")  # hole: 111..114
    add(EventKind.WS_RECV, 1, depth(121, 125), stream="btcusdt@depth@100ms")
    add(EventKind.WS_CLOSE, 1, status=1006, reason="no close frame received or sent")
    add(EventKind.WS_OPEN, 3)
    add(EventKind.WS_RECV, 3, depth(500, 505), stream="btcusdt@depth@100ms")  # new connection, new chain
    add(EventKind.HTTP_REQUEST, 4, url=REST, reason="GET")
    add(EventKind.HTTP_RESPONSE, 4, b'{"lastUpdateId":503,"bids":[],"asks":[]}', url=REST, status=200, reason="OK")
    add(EventKind.WS_RECV, 3, depth(506, 510), stream="btcusdt@depth@100ms")
    add(EventKind.WS_RECV, 3, depth(508, 512), stream="btcusdt@depth@100ms")  # overlap: goes back
    for i in range(5):
        add(EventKind.WS_RECV, 3, trade(10 + i), stream="btcusdt@trade")
    t = 10 * SECOND
    add(EventKind.WS_CLOSE, 3, status=1000, reason="")
    if close:
        writer.close()
    return writer


def test_summary_numbers(tmp_path: Path) -> None:
    build(tmp_path / "rec")
    s = summarize(tmp_path / "rec")
    assert s["events"] == 21
    assert s["duration_s"] == 10.0
    assert s["events_per_kind"] == {
        "ws_recv": 13,
        "ws_send": 0,
        "ws_open": 2,
        "ws_close": 2,
        "http_request": 2,
        "http_response": 2,
    }
    assert s["frames"] == 13 and s["frames_per_s"] == 1.3
    assert s["streams"] == {
        "btcusdt@depth@100ms": {"frames": 7, "frames_per_s": 0.7},
        "btcusdt@trade": {"frames": 6, "frames_per_s": 0.6},
    }
    holes = s["sequence_holes"]
    assert holes["count"] == 2 and holes["missing_updates"] == 4
    assert [(h["conn_id"], h["expected_U"], h["got_U"]) for h in holes["examples"]] == [(1, 111, 115), (3, 511, 508)]
    assert s["connections"] == {"ws_opens": 2, "reconnects": 1, "close_codes": {"1000": 1, "1006": 1}}
    assert s["rest_snapshots"]["count"] == 2
    assert [(i["symbol"], i["status"], i["last_update_id"]) for i in s["rest_snapshots"]["items"]] == [
        ("BTCUSDT", 200, 102),
        ("BTCUSDT", 200, 503),
    ]
    segments = s["segments"]
    assert len(segments) > 1
    assert sum(g["rows"] for g in segments) == 21
    assert all(g["sealed"] and g["bytes"] > 0 and g["name"].endswith(".parquet") for g in segments)
    assert (s["venue"], s["symbols"], s["source"], s["tool_version"]) == ("binance-spot", ["BTCUSDT"], "test", "0.1.0")
    assert s["start_time"].startswith("2023-11-14T22:13:20")


def test_json_keys_are_stable_and_text_mentions_the_findings(tmp_path: Path) -> None:
    build(tmp_path / "rec")
    doc = json.loads(inspect_recording(tmp_path / "rec", as_json=True))
    assert list(doc) == [
        "path",
        "format_version",
        "recording_id",
        "venue",
        "symbols",
        "source",
        "tool_version",
        "start_wall_ns",
        "start_time",
        "events",
        "first_wall_ns",
        "last_wall_ns",
        "duration_s",
        "events_per_kind",
        "frames",
        "frames_per_s",
        "streams",
        "sequence_holes",
        "connections",
        "holes",
        "rest_snapshots",
        "book_ticker",
        "segments",
    ]
    assert doc["book_ticker"] is None
    assert list(doc["sequence_holes"]["examples"][0]) == ["seq", "conn_id", "stream", "expected_U", "got_U"]
    text = inspect_recording(tmp_path / "rec", as_json=False)
    assert "seq holes   2  (4 updates missing)" in text
    assert "expected U=111, got U=115" in text
    assert "reconnects  1  (2 connections; close codes: 1000×1, 1006×1)" in text
    assert doc["holes"] == {
        "count": 1,
        "seconds": 0.5,
        "items": [
            {
                "close_seq": 8,
                "closed_conn": 1,
                "code": 1006,
                "reason": "no close frame received or sent",
                "open_seq": 9,
                "opened_conn": 3,
                "seconds": 0.5,
            }
        ],
    }
    assert "holes       1  (0.500 s without a connection)" in text
    assert "seq 8 conn 1 closed 1006 (no close frame received or sent), seq 9 conn 3 open 0.500 s later" in text
    assert "lastUpdateId 503" in text


def test_open_journal_of_a_crashed_recorder_is_listed(tmp_path: Path) -> None:
    writer = build(tmp_path / "rec", close=False, segment_max_bytes=10**9)
    writer.flush(11 * SECOND)
    s = summarize(tmp_path / "rec")
    assert s["events"] == 21
    assert [(g["name"], g["rows"], g["sealed"]) for g in s["segments"]] == [("segment-000000.arrows", 21, False)]
    assert "(open journal)" in inspect_recording(tmp_path / "rec", as_json=False)
    writer.close()


def test_cli_inspect_json_and_errors(tmp_path: Path) -> None:
    build(tmp_path / "rec")
    runner = CliRunner()
    result = runner.invoke(app, ["inspect", str(tmp_path / "rec"), "--json"])
    assert result.exit_code == 0
    assert json.loads(result.output)["connections"]["reconnects"] == 1

    missing = runner.invoke(app, ["inspect", str(tmp_path / "nope")])
    assert missing.exit_code == 2
    assert missing.output.strip().splitlines() == [f"error: {tmp_path / 'nope'}: no such recording"]

    (tmp_path / "junk.parquet").write_bytes(b"PAR1 not really")
    junk = runner.invoke(app, ["inspect", str(tmp_path / "junk.parquet")])
    assert junk.exit_code == 2
    assert junk.output.startswith("error: ") and len(junk.output.strip().splitlines()) == 1
    with pytest.raises(RecordingError):
        summarize(tmp_path / "junk.parquet")


REAL_SLICE = Path(__file__).resolve().parents[1] / "fixtures" / "binance_spot_btcusdt_real_60s"


def test_a_real_recording_agrees_with_its_own_book_ticker_stream() -> None:
    summary = summarize(REAL_SLICE)
    ticker = summary["book_ticker"]
    replayed = load_replay_data(REAL_SLICE).frames
    assert ticker["tickers"] == sum(frame.stream == "btcusdt@bookTicker" for frame in replayed)
    assert ticker["compared"] > 100 and ticker["agree"] == ticker["compared"] and ticker["disagree"] == 0
    assert "bookTicker  " in inspect_recording(REAL_SLICE, as_json=False)
    synthetic = summarize(Path(__file__).resolve().parents[1] / "fixtures" / "binance_spot_btcusdt_synth")
    assert synthetic["book_ticker"] is None


def test_a_garbled_ticker_at_a_depth_update_id_is_a_disagreement() -> None:
    recording = Recording(REAL_SLICE)
    events = list(recording.iter_events())
    data = build_replay_data(events, recording.symbols)
    depth_ids = {frame.last_update_id for frame in data.frames if frame.last_update_id is not None}
    target = next(
        e.seq for e in events if e.stream == "btcusdt@bookTicker" and orjson.loads(e.payload)["data"]["u"] in depth_ids
    )
    garbled = [replace(e, payload=e.payload.replace(b'"b":"', b'"b":"1', 1)) if e.seq == target else e for e in events]
    agreement = ticker_agreement(build_replay_data(garbled, recording.symbols))
    assert agreement is not None and agreement.disagree == 1
    (example,) = agreement.examples
    assert example["symbol"] == "BTCUSDT" and example["ticker"][0].startswith("1")
    assert example["book"][0] != example["ticker"][0]
