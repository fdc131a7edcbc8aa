"""Binance spot's wire format, written: book events and trades to the exact bytes Binance sends.

Byte for byte as Binance does it (checked against a real capture in tests/test_synth.py): compact
JSON with no spaces, keys in Binance's order, prices and sizes as 8-decimal strings
("61837.63000000"). The synthesizer records these bytes; the fake server sends recorded bytes as
they are and uses this module only for what it must compute itself (the REST depth body).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import orjson

from harness.book_events import DepthDelta, DepthSnapshot

DECIMALS = 8
_SCALE = 10**DECIMALS


def decimal_string(units: int) -> str:
    """`units` of 1e-8 as Binance spot writes a price or size: 6183763000000 -> "61837.63000000"."""
    whole, frac = divmod(units, _SCALE)
    return f"{whole}.{frac:08d}"


def depth_stream(symbol: str, speed_ms: int = 100) -> str:
    """The diff-depth stream name: `btcusdt@depth@100ms` (1000 ms is Binance's plain `btcusdt@depth`)."""
    base = f"{symbol.lower()}@depth"
    return base if speed_ms == 1000 else f"{base}@{speed_ms}ms"


def trade_stream(symbol: str) -> str:
    return f"{symbol.lower()}@trade"


def combined_frame(stream: str, data: bytes) -> bytes:
    """Wraps a raw stream payload as a `/stream?streams=` connection receives it; `data` is kept as is."""
    return b'{"stream":"' + stream.encode() + b'","data":' + data + b"}"


def _levels(levels: Iterable[Sequence[str]]) -> list[list[str]]:
    return [[level[0], level[1]] for level in levels]


def depth_update_data(delta: DepthDelta) -> bytes:
    """The `depthUpdate` event (the `data` part); bids are expected best first, asks best first."""
    return orjson.dumps(
        {
            "e": "depthUpdate",
            "E": delta.event_time_ms,
            "s": delta.symbol,
            "U": delta.first_update_id,
            "u": delta.last_update_id,
            "b": _levels(delta.bids),
            "a": _levels(delta.asks),
        }
    )


def trade_data(
    *,
    symbol: str,
    trade_id: int,
    price: str,
    quantity: str,
    trade_time_ms: int,
    event_time_ms: int,
    buyer_is_maker: bool,
) -> bytes:
    """The `trade` event (the `data` part). `buyer_is_maker` true means a seller took the bid."""
    return orjson.dumps(
        {
            "e": "trade",
            "E": event_time_ms,
            "s": symbol,
            "t": trade_id,
            "p": price,
            "q": quantity,
            "T": trade_time_ms,
            "m": buyer_is_maker,
            "M": True,
        }
    )


def depth_snapshot_body(snapshot: DepthSnapshot, limit: int | None = None) -> bytes:
    """The `GET /api/v3/depth` response body; `limit` keeps the best `limit` levels per side."""
    bids = snapshot.bids if limit is None else snapshot.bids[:limit]
    asks = snapshot.asks if limit is None else snapshot.asks[:limit]
    return orjson.dumps({"lastUpdateId": snapshot.last_update_id, "bids": _levels(bids), "asks": _levels(asks)})
