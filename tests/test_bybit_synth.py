"""The Bybit synth: Bybit's frames from the seeded market, deterministic, chained, and a depth-limited
view a client can keep from the deltas alone."""

from __future__ import annotations

import itertools
from collections import Counter

import orjson
import pytest

from harness.book_events import DepthDelta, DepthSnapshot
from harness.errors import HarnessError
from harness.synth.market import BookChange, MarketSimulator, symbol_spec
from harness.venues.bybit import DIALECT
from harness.venues.bybit.control import SPOT_MAX_ARGS
from harness.venues.bybit.oracle_rule import BybitOracleChains, read_book_frame
from harness.venues.bybit.synth import generate_events, recording_meta
from harness.venues.bybit.synth_encoder import BybitSynthEncoder
from recorder.format import EventKind


def test_same_seed_same_bytes_other_seed_other_market() -> None:
    one = [(e.kind, e.recv_mono_ns, e.payload) for e in generate_events("BTCUSDT", 3, 4)]
    assert one == [(e.kind, e.recv_mono_ns, e.payload) for e in generate_events("BTCUSDT", 3, 4)]
    assert one != [(e.kind, e.recv_mono_ns, e.payload) for e in generate_events("BTCUSDT", 3, 5)]
    assert recording_meta("BTCUSDT", 3, 4) == recording_meta(["btcusdt"], 3, 4)


@pytest.mark.parametrize(("category", "depth"), [("linear", 200), ("spot", 50)])
def test_chains_hold_and_the_view_stays_within_depth(category: str, depth: int) -> None:
    events = list(generate_events("BTCUSDT,SOLUSDT", 6, 2, category=category, depth=depth))
    assert [e.seq for e in events] == list(range(len(events)))
    assert [e.recv_mono_ns for e in events] == sorted(e.recv_mono_ns for e in events)
    chains = BybitOracleChains()
    views: dict[str, tuple[dict[float, str], dict[float, str]]] = {}
    for event in events:
        if event.stream is None or not DIALECT.is_book_stream(event.stream):
            continue
        frame = read_book_frame(event.payload)
        assert frame is not None
        chains.feed(event.stream, frame)
        bids, asks = views.setdefault(event.stream, ({}, {}))
        if frame.snapshot:
            bids.clear()
            asks.clear()
        for side, levels in ((bids, frame.bids), (asks, frame.asks)):
            for price, size in levels:
                if float(size) == 0:
                    assert float(price) in side, "a removal names a level the client holds"
                    del side[float(price)]
                else:
                    side[float(price)] = size
        assert len(bids) <= depth and len(asks) <= depth
        assert max(bids) < min(asks)
    assert chains.counts["reset"] == 2 and chains.counts["gap"] == 0 and chains.counts["apply"] > 50


def test_connection_script_acks_pings_and_spot_batches() -> None:
    events = list(generate_events("SHIBUSDT", 41, 1, category="spot", depth=1))
    kinds = Counter(e.kind for e in events)
    assert kinds[EventKind.WS_OPEN] == 1 and kinds[EventKind.WS_CLOSE] == 1
    sent = [orjson.loads(e.payload) for e in events if e.kind is EventKind.WS_SEND]
    assert [m["op"] for m in sent] == ["subscribe", "ping", "ping"]
    assert all(len(m.get("args", ())) <= SPOT_MAX_ARGS for m in sent)
    replies = [orjson.loads(e.payload) for e in events if e.kind is EventKind.WS_RECV and e.stream is None]
    assert [r["ret_msg"] for r in replies] == ["subscribe", "pong", "pong"]
    assert events[0].url == "wss://stream.bybit.com/v5/public/spot"


def test_many_symbols_split_spot_subscriptions() -> None:
    from harness.venues.bybit.synth import _Run

    run = _Run(["BTCUSDT", "ETHUSDT", "SOLUSDT", "SHIBUSDT"] * 2, 0.2, 1, "spot", 50)  # 16 topics
    sends = [e for e in run.events() if e.kind is EventKind.WS_SEND]
    assert [len(orjson.loads(e.payload)["args"]) for e in sends] == [10, 6]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"category": "inverse"}, "category"), ({"depth": 25}, "depths"), ({"seconds": 0}, "positive")],
)
def test_bad_arguments_are_harness_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(HarnessError, match=message):
        list(generate_events(**{"symbols": "BTCUSDT", **kwargs}))
    with pytest.raises(HarnessError, match="no synthetic market"):
        list(generate_events("DOGEUSDT", 1, 1))


def test_level_one_is_snapshots_only() -> None:
    frames = [
        orjson.loads(e.payload)
        for e in generate_events("SHIBUSDT", 20, 3, depth=1)
        if e.stream == "orderbook.1.SHIBUSDT"
    ]
    assert len(frames) > 10 and all(f["type"] == "snapshot" for f in frames)
    ids = [f["data"]["u"] for f in frames]
    assert all(b - a in (0, 1) for a, b in itertools.pairwise(ids))
    assert all(len(f["data"]["b"]) == 1 and len(f["data"]["a"]) == 1 for f in frames)


def _encoder_frames(depth: int, category: str) -> tuple[list[bytes], BybitSynthEncoder, MarketSimulator]:
    market = MarketSimulator(symbol_spec("BTCUSDT"), 7)
    encoder = BybitSynthEncoder(market.spec, "spot" if category == "spot" else "linear", depth)
    tick, lot = market.spec.tick_units, market.spec.lot_units

    def levels(side: list[tuple[int, int]]) -> list[list[str]]:
        return [[encoder.price(p * tick), encoder.size(s * lot)] for p, s in side]

    bids, asks = market.book()
    snap = DepthSnapshot("BTCUSDT", market.last_update_id, levels(bids), levels(asks))
    frames = [encoder.snapshot_payload(snap, 1)]
    window: dict[tuple[bool, int], int] = {}

    def publish(at_ns: int) -> None:
        changes = sorted(window.items())
        bid_levels = levels([(p, s) for (is_bid, p), s in changes if is_bid])
        ask_levels = levels([(p, s) for (is_bid, p), s in changes if not is_bid])
        delta = DepthDelta("BTCUSDT", 0, market.last_update_id, bid_levels, ask_levels, event_time_ms=at_ns // 10**6)
        frames.append(encoder.book_frame(delta))
        window.clear()

    end = encoder.window_ns
    for event in market.run(2_000_000_000):
        while event.time_ns >= end:
            if window:
                publish(end)
            end += encoder.window_ns
        if isinstance(event, BookChange):
            window[(event.is_bid, event.price)] = event.size
    if window:
        publish(end)
    return frames, encoder, market


@pytest.mark.parametrize(("depth", "category"), [(50, "linear"), (1000, "spot")])
def test_synth_encoder_frames_keep_the_top_depth_view(depth: int, category: str) -> None:
    frames, _, market = _encoder_frames(depth, category)
    chains = BybitOracleChains()
    bids: dict[float, str] = {}
    asks: dict[float, str] = {}
    for payload in frames:
        frame = read_book_frame(payload)
        assert frame is not None
        chains.feed(frame.topic, frame)
        for side, levels in ((bids, frame.bids), (asks, frame.asks)):
            for price, size in levels:
                if float(size) == 0:
                    side.pop(float(price), None)
                else:
                    side[float(price)] = size
    assert chains.counts["reset"] == 1 and chains.counts["gap"] == 0 and chains.counts["apply"] == len(frames) - 1
    spec = market.spec
    want_bids, want_asks = (side[:depth] for side in market.book())
    assert sorted(bids, reverse=True) == [p * spec.tick_units / 1e8 for p, _ in want_bids]
    assert sorted(asks) == [p * spec.tick_units / 1e8 for p, _ in want_asks]


def test_synth_encoder_needs_its_snapshot_first() -> None:
    encoder = BybitSynthEncoder(symbol_spec("ETHUSDT"))
    with pytest.raises(ValueError, match="snapshot"):
        encoder.book_frame(DepthDelta("ETHUSDT", 1, 1, [], []))
    assert encoder.snapshot_url("https://api.bybit.com") is None and encoder.book_stream == "orderbook.1000.ETHUSDT"
