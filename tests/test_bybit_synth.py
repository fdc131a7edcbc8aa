"""The Bybit synth: Bybit's frames from the seeded market, deterministic, chained, and a depth-limited
view a client can keep from the deltas alone."""

from __future__ import annotations

import itertools
from collections import Counter

import orjson
import pytest

from harness.errors import HarnessError
from harness.venues.bybit import DIALECT
from harness.venues.bybit.control import SPOT_MAX_ARGS
from harness.venues.bybit.oracle_rule import BybitOracleChains, read_book_frame
from harness.venues.bybit.synth import generate_events, recording_meta
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
    events = list(generate_events("BTCUSDT,ETHUSDT,SOLUSDT,SHIBUSDT", 45, 1, category="spot", depth=1))
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
