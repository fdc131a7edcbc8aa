"""Book states and trades -> Bybit v5 frame bytes, as the fake venue and the synth send them.

Shapes follow Bybit's docs and its real wire: an order book frame is
`{"topic", "type", "ts", "data": {"s", "b", "a", "u", "seq"}, "cts"}` on linear and puts `ts` before
`type` on spot; linear writes prices and sizes with the instrument's fixed decimals ("65114.20"),
spot without trailing zeros ("65140.4"). Compact JSON, as Bybit sends it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import orjson

from harness.book_events import Level
from harness.venues.bybit.topics import Category, trade_topic

UNIT_DECIMALS = 8
"""Amounts arrive as integers of 1e-8 (the synth's fixed point)."""


def decimals_of(units: int) -> int:
    """How many decimals an increment of `units` 1e-8 needs (a tick of 1_000_000 is 0.01: 2)."""
    decimals = UNIT_DECIMALS
    while units % 10 == 0 and decimals > 0:
        units //= 10
        decimals -= 1
    return decimals


def decimal_text(units: int, decimals: int, *, strip: bool) -> str:
    """`units` of 1e-8 written with `decimals` places; `strip` drops trailing zeros (spot's style)."""
    if units < 0:
        raise ValueError(f"amounts are never negative, got {units}")
    if not 0 <= decimals <= UNIT_DECIMALS:
        raise ValueError(f"decimals must be 0..{UNIT_DECIMALS}, got {decimals}")
    scale = 10 ** (UNIT_DECIMALS - decimals)
    whole, frac = divmod(units // scale, 10**decimals)
    if decimals == 0:
        return str(whole)
    frac_text = str(frac).rjust(decimals, "0")
    if strip:
        frac_text = frac_text.rstrip("0")
        if not frac_text:
            return str(whole)
    return f"{whole}.{frac_text}"


def book_frame(
    category: Category,
    topic: str,
    *,
    snapshot: bool,
    symbol: str,
    bids: Sequence[Level],
    asks: Sequence[Level],
    update_id: int,
    seq: int,
    ts_ms: int,
    cts_ms: int,
) -> bytes:
    """One `orderbook.*` frame; bids best first, asks best first, a size "0" removes in a delta."""
    data = {
        "s": symbol,
        "b": [list(level) for level in bids],
        "a": [list(level) for level in asks],
        "u": update_id,
        "seq": seq,
    }
    kind = "snapshot" if snapshot else "delta"
    if category == "spot":
        message: dict[str, object] = {"topic": topic, "ts": ts_ms, "type": kind, "data": data, "cts": cts_ms}
    else:
        message = {"topic": topic, "type": kind, "ts": ts_ms, "data": data, "cts": cts_ms}
    return orjson.dumps(message)


@dataclass(frozen=True, slots=True)
class BybitTradePrint:
    """One fill as `publicTrade` reports it; `taker_side` is "Buy" or "Sell"."""

    trade_id: str
    time_ms: int
    price: str
    size: str
    taker_side: str
    seq: int


def trade_frame(category: Category, symbol: str, prints: Sequence[BybitTradePrint], ts_ms: int) -> bytes:
    """A `publicTrade.{symbol}` push (always `type: snapshot`, one entry per fill)."""
    if not prints:
        raise ValueError("a trade frame carries at least one fill")
    data = [
        {
            "T": p.time_ms,
            "s": symbol,
            "S": p.taker_side,
            "v": p.size,
            "p": p.price,
            "i": p.trade_id,
            "BT": False,
            "seq": p.seq,
        }
        for p in prints
    ]
    topic = trade_topic(symbol)
    if category == "spot":
        return orjson.dumps({"topic": topic, "ts": ts_ms, "type": "snapshot", "data": data})
    return orjson.dumps({"topic": topic, "type": "snapshot", "ts": ts_ms, "data": data})
