"""The synthetic market as OKX's `books` and `trades` channels send it (`harness synth --venue okx`).

`OkxSynthEncoder` is OKX's side of the synth (the `SynthEncoder` of harness/venues/dialect.py), one
per instrument: the snapshot a subscriber gets first, then updates whose `seqId` is the market's last
update id and whose `prevSeqId` is the previous message's, each with the checksum of the venue's book
after it (a heartbeat, `prevSeqId == seqId` and no levels, is an update without levels).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson

from harness.book_events import DepthDelta, DepthSnapshot
from harness.synth.market import SynthSymbol
from harness.venues.okx.channels import BOOKS, CHECKSUM_DEPTH, TRADES, inst_id_of, stream_key
from harness.venues.okx.checksum import book_checksum
from harness.venues.okx.encoder import books_message, okx_decimal, snapshot_message, wire_level
from replayer.reference_book import ReferenceBook

if TYPE_CHECKING:
    from harness.venues.dialect import SynthTrade

WINDOW_NS = 100_000_000
"""OKX pushes `books` updates every 100 ms when the book changed."""
BOOKS_DEPTH = 400
"""OKX's `books` snapshot holds 400 levels a side at most."""


class OkxSynthEncoder:
    """One instrument's venue side for the synth: the bytes OKX sends, from book changes.

    It keeps the venue's book (replayer/reference_book.py) because every update carries the checksum
    of the book after it: `snapshot_payload` loads it and must come first, as on OKX's wire, and each
    `book_frame` applies its delta, links it to the previous message by `prevSeqId` and checksums.
    """

    __slots__ = ("_book", "_last_seq", "book_stream", "inst_id", "market", "trade_stream")

    window_ns = WINDOW_NS

    def __init__(self, market: SynthSymbol) -> None:
        self.market = market
        self.inst_id = inst_id_of(market.base_asset, market.quote_asset)
        self.book_stream = stream_key(BOOKS, self.inst_id)
        self.trade_stream = stream_key(TRADES, self.inst_id)
        self._book: ReferenceBook | None = None
        self._last_seq = 0

    def price(self, units: int) -> str:
        return okx_decimal(units)

    def size(self, units: int) -> str:
        return okx_decimal(units)

    def snapshot_url(self, rest_base: str) -> str | None:
        return None

    def snapshot_payload(self, snapshot: DepthSnapshot, time_ms: int) -> bytes:
        """The `action: snapshot` message: OKX's `books` sends the best 400 levels a side."""
        book = ReferenceBook()
        book.load(snapshot.last_update_id, snapshot.bids, snapshot.asks)
        self._book = book
        self._last_seq = snapshot.last_update_id
        bids, asks = book.bids(BOOKS_DEPTH), book.asks(BOOKS_DEPTH)
        return snapshot_message(self.inst_id, bids, asks, seq_id=self._last_seq, ts_ms=time_ms)

    def book_frame(self, delta: DepthDelta) -> bytes:
        """An update (a heartbeat when `delta` has no levels and keeps the last `seqId`)."""
        book = self._book
        if book is None:
            raise ValueError("OKX sends a books snapshot before any update: call snapshot_payload first")
        book.apply(delta.last_update_id, delta.bids, delta.asks)
        prev, self._last_seq = self._last_seq, delta.last_update_id
        return books_message(
            self.inst_id,
            snapshot=False,
            bids=[wire_level(level[0], level[1], _orders(level[1])) for level in delta.bids],
            asks=[wire_level(level[0], level[1], _orders(level[1])) for level in delta.asks],
            ts_ms=delta.event_time_ms,
            seq_id=delta.last_update_id,
            prev_seq_id=prev,
            checksum=book_checksum(book.bids(CHECKSUM_DEPTH), book.asks(CHECKSUM_DEPTH)),
        )

    def trade_frame(self, trade: SynthTrade) -> bytes:
        """The `trades` message: `side` is the taker's (a seller taking a resting bid is `sell`)."""
        item = {
            "instId": self.inst_id,
            "tradeId": str(trade.trade_id),
            "px": trade.price,
            "sz": trade.quantity,
            "side": "sell" if trade.buyer_is_maker else "buy",
            "ts": str(trade.trade_time_ms),
        }
        return orjson.dumps({"arg": {"channel": TRADES, "instId": self.inst_id}, "data": [item]})


def _orders(size: str) -> int:
    """Orders at a level, as OKX's fourth field: the synth has one per level, none when it is gone."""
    return 0 if float(size) == 0 else 1
