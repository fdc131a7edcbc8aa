"""The Bybit synth: Bybit's frames from the seeded market, deterministic, chained, and a depth-limited
view a client can keep from the deltas alone."""

from __future__ import annotations

import orjson
import pytest

from harness.book_events import DepthDelta, DepthSnapshot
from harness.synth.market import BookChange, MarketSimulator, symbol_spec
from harness.synth.run import generate_events
from harness.venues.bybit import DIALECT
from harness.venues.bybit.oracle_rule import BybitOracleChains, read_book_frame
from harness.venues.bybit.synth_encoder import BybitSynthEncoder
from recorder.format import EventKind


def test_same_seed_same_bytes_other_seed_other_market() -> None:
    one = [(e.kind, e.recv_mono_ns, e.payload) for e in generate_events("BTCUSDT", 3, 4, venue="bybit")]
    assert one == [(e.kind, e.recv_mono_ns, e.payload) for e in generate_events("BTCUSDT", 3, 4, venue="bybit")]
    assert one != [(e.kind, e.recv_mono_ns, e.payload) for e in generate_events("BTCUSDT", 3, 5, venue="bybit")]


def test_harness_synth_writes_bybit_sessions_the_oracle_can_chain() -> None:
    events = list(generate_events("BTCUSDT,SOLUSDT", 6, 2, venue="bybit"))
    assert events[0].url == "wss://stream.bybit.com/v5/public/linear"
    sent = [orjson.loads(e.payload) for e in events if e.kind is EventKind.WS_SEND]
    assert [m["op"] for m in sent] == ["subscribe"]
    assert sent[0]["args"] == [
        "orderbook.1000.BTCUSDT",
        "publicTrade.BTCUSDT",
        "orderbook.1000.SOLUSDT",
        "publicTrade.SOLUSDT",
    ]
    chains = BybitOracleChains()
    for event in events:
        if event.stream is not None and DIALECT.is_book_stream(event.stream):
            frame = read_book_frame(event.payload)
            assert frame is not None
            chains.feed(event.stream, frame)
    assert chains.counts["reset"] == 2 and chains.counts["gap"] == 0 and chains.counts["apply"] > 30


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
