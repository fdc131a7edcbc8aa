"""Binance spot's stream events, written: book changes and trades to the exact `data` bytes Binance sends.

Byte for byte as Binance does it (checked against a real capture in tests/test_synth.py): compact
JSON with no spaces, keys in Binance's order, prices and sizes as fixed-decimal strings
("61837.63000000"; 8 decimals unless the asset's precision is lower). The synthesizer records these
bytes, wrapped by `streams.wrap_combined`; the REST bodies live in `rest.py`. The fake server sends
recorded bytes as they are.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import orjson

from harness.book_events import DepthDelta

DECIMALS = 8
_SCALE = 10**DECIMALS


def decimal_string(units: int, decimals: int = DECIMALS) -> str:
    """`units` of 1e-8 as Binance spot writes a price or size: 6183763000000 -> "61837.63000000".

    Binance writes an amount with its asset's precision: 8 decimals for most, fewer for a coin with
    a huge supply (SHIB sizes: 2, "4085577.00"). `units` must be a whole number of that last decimal.
    """
    whole, frac = divmod(units, _SCALE)
    if decimals == DECIMALS:
        return f"{whole}.{frac:08d}"
    if not 1 <= decimals < DECIMALS:
        raise ValueError(f"decimals must be 1..{DECIMALS}, not {decimals}")
    digits, rest = divmod(frac, 10 ** (DECIMALS - decimals))
    if rest:
        raise ValueError(f"{units} units of 1e-8 do not fit {decimals} decimals")
    return f"{whole}.{digits:0{decimals}d}"


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


def book_ticker_data(
    *, update_id: int, symbol: str, bid_price: str, bid_size: str, ask_price: str, ask_size: str
) -> bytes:
    """The `bookTicker` message (the `data` part): best bid and ask with the book's update id `u`."""
    return orjson.dumps({"u": update_id, "s": symbol, "b": bid_price, "B": bid_size, "a": ask_price, "A": ask_size})
