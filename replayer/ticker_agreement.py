"""Does a recording agree with itself? Its depth stream against its bookTicker stream.

Binance's (spot and USD-M) `@bookTicker` carries the best bid and ask with `u`, the book's update id at that moment;
the depth stream rebuilt on its REST snapshot gives the same book at the same id. A recording made
with `harness record --book-ticker` can so be checked without any reference outside it: a
disagreement means the recorder lost or garbled something, or the venue did. Only tickers whose `u`
equals the `u` of a depth frame can be compared: depth frames batch 100 ms of updates, and a ticker
inside a batch names a state the depth stream never shows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from replayer.replay_data import ReplayData, apply_depth

EXAMPLES = 5


@dataclass(slots=True)
class TickerAgreement:
    """Counts over every bookTicker frame of the replayable part of a recording."""

    tickers: int = 0
    compared: int = 0
    agree: int = 0
    disagree: int = 0
    examples: list[dict[str, Any]] = field(default_factory=list)


def ticker_agreement(data: ReplayData) -> TickerAgreement | None:
    """None when the recording holds no bookTicker stream."""
    if not any(stream.endswith("@bookTicker") for stream in data.streams):
        return None
    result = TickerAgreement()
    books = {symbol: book.copy() for symbol, book in data.start_books.items()}
    pending: dict[str, dict[int, tuple[int, dict[str, Any]]]] = {symbol: {} for symbol in books}
    for frame in data.frames:
        symbol = frame.symbol or ""
        book = books.get(symbol)
        if book is None:
            continue
        if frame.last_update_id is not None:
            apply_depth(book, frame, data.snapshots.get(symbol, ()), dialect=data.dialect)
            waiting = pending[symbol].pop(book.last_update_id, None)
            if waiting is not None:
                _compare(result, symbol, book, *waiting)
            continue
        if not frame.stream.endswith("@bookTicker"):
            continue
        ticker = _ticker(frame.payload)
        if ticker is None:
            continue
        result.tickers += 1
        update_id = ticker["u"]
        if update_id == book.last_update_id:
            _compare(result, symbol, book, frame.index, ticker)
        elif update_id > book.last_update_id:
            pending[symbol][update_id] = (frame.index, ticker)
    return result


def _ticker(payload: bytes) -> dict[str, Any] | None:
    try:
        data = orjson.loads(payload).get("data")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("u"), int):
        return None
    return data


def _compare(result: TickerAgreement, symbol: str, book: Any, index: int, ticker: dict[str, Any]) -> None:
    best_bid = book.bids(1)
    best_ask = book.asks(1)
    expected = (ticker.get("b"), ticker.get("B"), ticker.get("a"), ticker.get("A"))
    found = (*(best_bid[0] if best_bid else (None, None)), *(best_ask[0] if best_ask else (None, None)))
    result.compared += 1
    if found == expected:
        result.agree += 1
        return
    result.disagree += 1
    if len(result.examples) < EXAMPLES:
        result.examples.append(
            {"frame": index, "symbol": symbol, "update_id": ticker["u"], "ticker": expected, "book": found}
        )
