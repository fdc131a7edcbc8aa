"""Bybit's side of `harness synth` in the per-symbol encoder shape the synth asks a dialect for
(`VenueDialect.synth_encoder`): book changes in, Bybit frames out, one symbol and category.

Bybit publishes a depth-limited view (`orderbook.{depth}`), so the encoder keeps the venue's whole
book (replayer/reference_book.py) and the top-`depth` view it last sent: the snapshot is that view,
and each delta is exactly what changed in it (a level pushed out of the view is sent as "0", one
that moves in is sent whole), `u` +1 per frame. `u` starts at the snapshot's engine id / 1000 (a
deterministic number of Bybit's size); `seq` is the engine's change id (the market's update id).
The default depth is 1000, which holds the whole synthetic book, so every change shows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from harness.book_events import DepthDelta, DepthSnapshot
from harness.synth.market import SynthSymbol
from harness.venues.bybit.encoder import BybitTradePrint, book_frame, decimal_text, decimals_of, trade_frame
from harness.venues.bybit.topics import PUSH_INTERVAL_MS, Category, book_topic, trade_topic
from replayer.reference_book import ReferenceBook

DEFAULT_DEPTH = 1000


class BybitSynthTrade(Protocol):
    """A trade print as the synth hands it over, strings already in the venue's style."""

    @property
    def trade_id(self) -> int: ...
    @property
    def price(self) -> str: ...
    @property
    def quantity(self) -> str: ...
    @property
    def trade_time_ms(self) -> int: ...
    @property
    def event_time_ms(self) -> int: ...
    @property
    def buyer_is_maker(self) -> bool: ...


def _view(levels: Sequence[tuple[str, str]]) -> dict[str, str]:
    return dict(levels)


def _changes(sent: dict[str, str], now: dict[str, str], *, bids: bool) -> list[list[str]]:
    changed = {price: size for price, size in now.items() if sent.get(price) != size}
    zero = "0"
    changed.update({price: zero for price in sent if price not in now})
    return [[price, size] for price, size in sorted(changed.items(), key=lambda kv: float(kv[0]), reverse=bids)]


class BybitSynthEncoder:
    """One symbol's Bybit frames for the synth; `snapshot_payload` must come before any `book_frame`."""

    __slots__ = ("_book", "_depth", "_sent", "_u", "book_stream", "category", "market", "trade_stream", "window_ns")

    def __init__(self, market: SynthSymbol, category: Category = "linear", depth: int = DEFAULT_DEPTH) -> None:
        if depth not in PUSH_INTERVAL_MS[category]:
            raise ValueError(f"Bybit {category} has no orderbook.{depth}")
        self.market = market
        self.category = category
        self._depth = depth
        self.book_stream = book_topic(depth, market.symbol)
        self.trade_stream = trade_topic(market.symbol)
        self.window_ns = PUSH_INTERVAL_MS[category][depth] * 1_000_000
        self._book: ReferenceBook | None = None
        self._sent: tuple[dict[str, str], dict[str, str]] = ({}, {})
        self._u = 0

    def price(self, units: int) -> str:
        return decimal_text(units, decimals_of(self.market.tick_units), strip=self.category == "spot")

    def size(self, units: int) -> str:
        return decimal_text(units, decimals_of(self.market.lot_units), strip=self.category == "spot")

    def snapshot_url(self, rest_base: str) -> str | None:
        return None

    def snapshot_payload(self, snapshot: DepthSnapshot, time_ms: int) -> bytes:
        """The in-stream snapshot a subscriber gets first: the top `depth` levels."""
        book = ReferenceBook()
        book.load(snapshot.last_update_id, snapshot.bids, snapshot.asks)
        self._book = book
        self._u = max(1, snapshot.last_update_id // 1000)
        bids, asks = book.bids(self._depth), book.asks(self._depth)
        self._sent = (_view(bids), _view(asks))
        return self._frame(True, [list(b) for b in bids], [list(a) for a in asks], snapshot.last_update_id, time_ms)

    def book_frame(self, delta: DepthDelta) -> bytes:
        book = self._book
        if book is None:
            raise ValueError("Bybit sends the snapshot before any delta: call snapshot_payload first")
        book.apply(delta.last_update_id, delta.bids, delta.asks)
        now = (_view(book.bids(self._depth)), _view(book.asks(self._depth)))
        bids = _changes(self._sent[0], now[0], bids=True)
        asks = _changes(self._sent[1], now[1], bids=False)
        self._sent = now
        self._u += 1
        return self._frame(False, bids, asks, delta.last_update_id, delta.event_time_ms)

    def trade_frame(self, trade: BybitSynthTrade) -> bytes:
        fill = BybitTradePrint(
            trade_id=str(trade.trade_id),
            time_ms=trade.trade_time_ms,
            price=trade.price,
            size=trade.quantity,
            taker_side="Sell" if trade.buyer_is_maker else "Buy",
            seq=trade.trade_id,
        )
        return trade_frame(self.category, self.market.symbol, [fill], trade.event_time_ms)

    def _frame(self, snapshot: bool, bids: list[list[str]], asks: list[list[str]], seq: int, time_ms: int) -> bytes:
        return book_frame(
            self.category,
            self.book_stream,
            snapshot=snapshot,
            symbol=self.market.symbol,
            bids=bids,
            asks=asks,
            update_id=self._u,
            seq=seq,
            ts_ms=time_ms,
            cts_ms=time_ms,
        )
