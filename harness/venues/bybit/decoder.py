"""Bybit v5 frames -> book events, for the subject side (our default subject's components).

An `orderbook.*` frame of `type: snapshot` becomes a `DepthSnapshot` (the book arrives in the stream,
and replaces the local one whatever its `u`), a `type: delta` a `DepthDelta` covering the single id
`u`. Other topics (trades, tickers, klines) and control replies (acks, pongs) carry no book change
and decode to None; a book frame without Bybit's shape raises `DecodeError`, which the caller counts
and skips (the next frame's `u` then shows the gap). `market` prefixes the symbol where one recording
holds several markets (`spot/` names spot's BTCUSDT `spot/BTCUSDT`), since the frame does not say which.
"""

from __future__ import annotations

import orjson

from harness.book_events import DecodeError, DepthDelta, DepthSnapshot

BookEvent = DepthSnapshot | DepthDelta


def decode_frame(frame: bytes | str, market: str = "") -> BookEvent | None:
    try:
        message = orjson.loads(frame)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(f"not JSON: {exc}") from None
    if not isinstance(message, dict):
        raise DecodeError("a Bybit frame is a JSON object")
    topic = message.get("topic")
    if not isinstance(topic, str) or not topic.startswith("orderbook."):
        return None
    kind = message.get("type")
    data = message.get("data")
    if not isinstance(data, dict):
        raise DecodeError(f"{topic}: no `data` object")
    symbol = data.get("s")
    update_id = data.get("u")
    bids = data.get("b")
    asks = data.get("a")
    if not isinstance(symbol, str) or not isinstance(update_id, int) or isinstance(update_id, bool):
        raise DecodeError(f"{topic}: `data.s` and an integer `data.u` are required")
    if not isinstance(bids, list) or not isinstance(asks, list):
        raise DecodeError(f"{topic}: `data.b` and `data.a` must be lists")
    symbol = market + symbol
    if kind == "snapshot":
        return DepthSnapshot(symbol=symbol, last_update_id=update_id, bids=bids, asks=asks)
    if kind == "delta":
        ts = message.get("ts")
        return DepthDelta(
            symbol=symbol,
            first_update_id=update_id,
            last_update_id=update_id,
            bids=bids,
            asks=asks,
            event_time_ms=ts if isinstance(ts, int) else 0,
        )
    raise DecodeError(f"{topic}: `type` must be snapshot or delta, not {kind!r}")
