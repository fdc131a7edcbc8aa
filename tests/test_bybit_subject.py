"""Bybit's subject side (decoder + sequencing rule + BookSync) and the oracle's own rule, on made-up
frames: the same verdicts from both, reached by different code."""

from __future__ import annotations

import ast
from pathlib import Path
from types import SimpleNamespace

import orjson
import pytest

from harness.book_events import DecodeError, DepthDelta, DepthSnapshot
from harness.subject import SubjectConfig
from harness.sync import Applied, BookSync, GapDetected, NeedSnapshot, Synced
from harness.venues.bybit.decoder import decode_frame
from harness.venues.bybit.oracle_rule import BybitOracleChains, bridges, decode, read_book_frame, step
from harness.venues.bybit.oracle_rule import snapshot as is_snapshot
from harness.venues.bybit.sequencing import BybitSequencing
from harness.venues.bybit.subject_connections import connections
from tests.bybit_frames import book

REPO = Path(__file__).resolve().parents[1]


def feed(sync: BookSync, payload: bytes) -> tuple[object, ...]:
    event = decode_frame(payload)
    if isinstance(event, DepthSnapshot):
        return sync.on_stream_snapshot(event)
    assert isinstance(event, DepthDelta)
    return sync.on_delta(event)


def test_decoder_shapes() -> None:
    snap = decode_frame(book(5, snapshot=True))
    delta = decode_frame(book(6))
    assert isinstance(snap, DepthSnapshot) and snap.last_update_id == 5
    assert isinstance(delta, DepthDelta) and (delta.first_update_id, delta.last_update_id) == (6, 6)
    assert decode_frame(b'{"success":true,"ret_msg":"pong","conn_id":"c","op":"ping"}') is None
    assert decode_frame(b'{"topic":"publicTrade.BTCUSDT","type":"snapshot","data":[]}') is None
    for bad in (b"{", b'{"topic":"orderbook.1.X","type":"delta","data":{"s":"X","u":1,"b":[]}}'):
        with pytest.raises(DecodeError):
            decode_frame(bad)


def test_snapshot_syncs_at_once_and_deltas_follow() -> None:
    sync = BookSync(BybitSequencing())
    assert isinstance(feed(sync, book(10, snapshot=True))[0], Synced)
    assert isinstance(feed(sync, book(11, bids=[["100.10", "0"], ["100.00", "3"]]))[0], Applied)
    assert sync.book.best_bid() == ("100.00", "3") and sync.last_update_id == 11
    assert feed(sync, book(11))[0].__class__.__name__ == "Dropped"


def test_gap_unsyncs_and_asks_for_a_new_snapshot() -> None:
    sync = BookSync(BybitSequencing())
    feed(sync, book(10, snapshot=True))
    events = feed(sync, book(12))
    assert any(isinstance(e, GapDetected) for e in events)
    assert any(isinstance(e, NeedSnapshot) for e in events)
    assert not sync.synced
    assert isinstance(feed(sync, book(20, snapshot=True))[0], Synced)
    assert sync.synced and sync.last_update_id == 20


def test_restart_snapshot_with_u_1_replaces_a_synced_book() -> None:
    sync = BookSync(BybitSequencing())
    feed(sync, book(5000, snapshot=True, bids=[["90.00", "1"]]))
    feed(sync, book(1, snapshot=True, bids=[["95.00", "2"]]))
    assert sync.synced and sync.last_update_id == 1
    assert sync.book.best_bid() == ("95.00", "2")
    assert isinstance(feed(sync, book(2))[0], Applied)


def test_oracle_rule_agrees_without_the_components() -> None:
    chains = BybitOracleChains()
    frames = [book(10, snapshot=True), book(11), book(11), book(13), book(14), book(1, snapshot=True), book(2)]
    verdicts = [chains.feed("orderbook.50.BTCUSDT", read_book_frame(f)) for f in frames]  # type: ignore[arg-type]
    assert verdicts == ["reset", "apply", "stale", "gap", "gap", "reset", "apply"]
    assert read_book_frame(b'{"success":true,"op":"ping"}') is None
    frame = read_book_frame(book(3))
    assert frame is not None and step(None, frame) == "gap"
    with pytest.raises(ValueError):
        read_book_frame(b'{"topic":"orderbook.1.X","type":"delta","data":{"s":"X","u":true,"b":[],"a":[]}}')


def test_oracle_rule_imports_none_of_what_it_judges() -> None:
    tree = ast.parse((REPO / "harness" / "venues" / "bybit" / "oracle_rule.py").read_text())
    imported = {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    judged = {"harness.book", "harness.sync"} | {
        f"harness.venues.bybit.{name}" for name in ("decoder", "sequencing", "venue", "topics", "control")
    }
    assert not imported & judged, imported


def test_oracle_rule_in_the_oracles_shape() -> None:
    payloads = (book(7, snapshot=True), book(8), b"{}")
    snap, delta, other = (SimpleNamespace(payload=p, stream="orderbook.50.BTCUSDT") for p in payloads)
    assert decode(snap) == ("BTCUSDT", 7, 7, None, [["100.10", "1.000"]], [["100.20", "2.000"]])  # type: ignore[arg-type]
    keyed = SimpleNamespace(payload=payloads[0], stream="spot/orderbook.50.BTCUSDT")
    assert decode(keyed)[0] == "spot/BTCUSDT"  # type: ignore[arg-type,index]
    assert decode(other) is None  # type: ignore[arg-type]
    assert is_snapshot(snap) and not is_snapshot(delta)  # type: ignore[arg-type]
    assert bridges(SimpleNamespace(first_update_id=8), 7) and not bridges(SimpleNamespace(first_update_id=9), 7)  # type: ignore[arg-type]


def test_our_subject_connects_per_market_and_asks_for_the_recorded_topics() -> None:
    config = SubjectConfig(
        "bybit",
        ("spot/BTCUSDT", "linear/BTCUSDT", "linear/ETHUSDT"),
        "ws://h:1",
        "http://h:1",
        streams=("linear/orderbook.50.BTCUSDT", "spot/orderbook.200.BTCUSDT", "linear/orderbook.200.BTCUSDT"),
    )
    (spot, spot_parts), (linear, linear_parts) = connections(config)
    assert spot.symbols == ("spot/BTCUSDT",) and spot.streams == ("spot/orderbook.200.BTCUSDT",)
    assert linear.symbols == ("linear/BTCUSDT", "linear/ETHUSDT")
    assert linear.streams == ("linear/orderbook.200.BTCUSDT", "linear/orderbook.1000.ETHUSDT"), (
        "the deepest recorded topic; orderbook.1000 where none is recorded"
    )
    assert spot_parts.ws_url("ws://h:1", spot.symbols) == "ws://h:1/v5/public/spot"
    assert linear_parts.ws_url("ws://h:1", linear.symbols) == "ws://h:1/v5/public/linear"
    assert spot_parts.subscribe is not None and spot_parts.resubscribe is not None
    (ask,) = spot_parts.subscribe(spot.symbols).messages()
    assert orjson.loads(ask)["args"] == ["orderbook.200.BTCUSDT", "publicTrade.BTCUSDT"]
    again = [orjson.loads(message) for message in spot_parts.resubscribe("spot/BTCUSDT")]
    assert [(m["op"], m["args"]) for m in again] == [
        ("unsubscribe", ["orderbook.200.BTCUSDT"]),
        ("subscribe", ["orderbook.200.BTCUSDT"]),
    ]
    event = spot_parts.decode_frame(book(5, category="spot", depth=200))
    assert event is not None and event.symbol == "spot/BTCUSDT", "named as the recording names it"
    (only,) = connections(SubjectConfig("bybit", ("BTCUSDT",), "ws://h:1", "http://h:1"))
    assert only[0].streams == ("orderbook.1000.BTCUSDT",) and only[1].ws_url("ws://h:1", ()).endswith("/linear")
