"""Binance spot frames and REST bodies -> venue-neutral book events.

One `orjson.loads` per frame; level lists are handed on as parsed, never copied. Combined-stream
frames (`{"stream": ..., "data": ...}`) and raw frames decode alike. Anything that is not the
venue's shape raises DecodeError, so the caller can count the frame and go on.
"""

from __future__ import annotations

from typing import Any

from orjson import JSONDecodeError, loads

from harness.book_events import DecodeError, DepthDelta, DepthSnapshot, TopOfBook, Trade

BookEvent = DepthDelta | TopOfBook | Trade


def decode_frame(frame: bytes | str) -> BookEvent | None:
    """A depth update, best bid/ask or trade; None for frames that carry none (subscription acks)."""
    try:
        obj = loads(frame)
    except JSONDecodeError as exc:
        raise DecodeError(f"not JSON: {exc}") from None
    return decode_payload(obj, False)


def decode_snapshot(body: bytes | str, symbol: str) -> DepthSnapshot:
    """A `/api/v3/depth` body; an error body (`{"code", "msg"}`) raises DecodeError with its message."""
    obj = _loads(body)
    if not isinstance(obj, dict):
        raise DecodeError(f"depth snapshot is not an object: {type(obj).__name__}")
    try:
        last_update_id = obj["lastUpdateId"]
        bids = obj["bids"]
        asks = obj["asks"]
    except KeyError:
        if "code" in obj:
            raise DecodeError(f"venue error {obj.get('code')}: {obj.get('msg')}") from None
        raise DecodeError(f"depth snapshot without lastUpdateId/bids/asks: keys {sorted(obj)}") from None
    if type(last_update_id) is not int or type(bids) is not list or type(asks) is not list:
        raise DecodeError("depth snapshot fields have the wrong types")
    return DepthSnapshot(symbol, last_update_id, bids, asks)


def decode_payload(obj: Any, require_prev: bool) -> BookEvent | None:
    """Decode an already parsed frame; shared with the USD-M decoder, which requires `pu`. Trades are
    tested for first: on a busy symbol they are most frames."""
    if type(obj) is not dict:
        raise DecodeError(f"frame is not an object: {type(obj).__name__}")
    data = obj.get("data", obj) if "stream" in obj else obj
    if type(data) is not dict:
        raise DecodeError("frame data is not an object")
    kind = data.get("e")
    try:
        if kind == "trade":
            return Trade(data["s"], data["t"], data["p"], data["q"], data["m"], data["T"])
        if kind == "depthUpdate":
            prev = data.get("pu")
            delta = DepthDelta(data["s"], data["U"], data["u"], data["b"], data["a"], prev, data.get("E", 0))
            if (
                type(delta.first_update_id) is not int
                or type(delta.last_update_id) is not int
                or type(delta.bids) is not list
                or type(delta.asks) is not list
                or delta.first_update_id > delta.last_update_id
            ):
                raise DecodeError("depthUpdate ids or levels have the wrong types")
            if require_prev and type(prev) is not int:
                raise DecodeError("depthUpdate without an integer pu")
            return delta
        if kind == "bookTicker" or (kind is None and "B" in data and "A" in data):
            return TopOfBook(data["s"], data["u"], data["b"], data["B"], data["a"], data["A"])
    except KeyError as exc:
        raise DecodeError(f"{kind or 'frame'} without field {exc.args[0]!r}") from None
    if "result" in data and "id" in data:
        return None
    if kind is None:
        raise DecodeError(f"frame of unknown shape: keys {sorted(data)[:8]}")
    return None


def _loads(frame: bytes | str) -> Any:
    try:
        return loads(frame)
    except JSONDecodeError as exc:
        raise DecodeError(f"not JSON: {exc}") from None
