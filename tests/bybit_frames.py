"""Bybit frames for tests, built with our own encoder from made-up books (never from a capture)."""

from __future__ import annotations

from harness.venues.bybit.encoder import book_frame
from harness.venues.bybit.topics import Category, book_topic


def book(
    u: int,
    *,
    snapshot: bool = False,
    bids: list[list[str]] | None = None,
    asks: list[list[str]] | None = None,
    symbol: str = "BTCUSDT",
    category: Category = "linear",
    depth: int = 50,
) -> bytes:
    return book_frame(
        category,
        book_topic(depth, symbol),
        snapshot=snapshot,
        symbol=symbol,
        bids=bids if bids is not None else [["100.10", "1.000"]],
        asks=asks if asks is not None else [["100.20", "2.000"]],
        update_id=u,
        seq=1000 + u,
        ts_ms=1_700_000_000_000 + u,
        cts_ms=1_700_000_000_000 + u - 1,
    )
