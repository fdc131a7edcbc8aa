"""Bybit as the rest of the house asks for it (harness/venues/dialect.py v2): the registry, our
subject's parts, the recorder's policy, the synth's encoder."""

from __future__ import annotations

import orjson
import pytest

from harness.errors import HarnessError
from harness.venues.bybit import DIALECT
from harness.venues.bybit.control import SPOT_MAX_ARGS
from harness.venues.dialect import ChainIds
from harness.venues.registry import dialect, package_of


def test_registry_knows_bybit() -> None:
    found = dialect("bybit")
    assert found is DIALECT and package_of("bybit") == "harness.venues.bybit"
    assert DIALECT.wire() is not None and DIALECT.wire().name == "bybit"  # type: ignore[union-attr]


def test_subject_parts_subscribe_by_message() -> None:
    parts = DIALECT.subject_parts()
    symbols = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "SHIBUSDT", "A", "B"]
    assert parts.ws_url("ws://127.0.0.1:9", symbols) == "ws://127.0.0.1:9/v5/public/linear"
    assert parts.snapshot_url is None and parts.decode_snapshot is None
    assert parts.subscribe is not None
    requests = [orjson.loads(m) for m in parts.subscribe(symbols).messages()]
    topics = [t for r in requests for t in r["args"]]
    assert topics[:2] == ["orderbook.1000.BTCUSDT", "publicTrade.BTCUSDT"] and len(topics) == 12
    assert all(r["op"] == "subscribe" and len(r["args"]) <= SPOT_MAX_ARGS for r in requests)
    assert parts.sequencing().follow.__name__ == "follow"


def test_capture_policy_and_bridges() -> None:
    policy = DIALECT.capture_policy()
    assert policy.streams(["BTCUSDT"], True) == ["orderbook.1000.BTCUSDT", "publicTrade.BTCUSDT"]
    assert policy.snapshot_url is None and policy.subscribe is not None
    assert len(policy.subscribe(["orderbook.1000.BTCUSDT"]).messages()) == 1
    assert DIALECT.bridges(ChainIds("BTCUSDT", 8, 8), 7) and not DIALECT.bridges(ChainIds("BTCUSDT", 9, 9), 7)


def test_synth_encoder_per_symbol() -> None:
    encoder = DIALECT.synth_encoder("btcusdt")
    assert encoder.book_stream == "orderbook.1000.BTCUSDT" and encoder.price(4_200_000_000_000) == "42000.00"
    with pytest.raises(HarnessError):
        DIALECT.synth_encoder("NOPEUSDT")
