"""Venue-neutral book events: what decoders produce and what books, sync rules and oracles consume.

Prices and sizes stay the venue's own strings: checksums are computed over them, and comparing the
subject with the oracle must not depend on float formatting. Level lists are whatever the JSON
parser produced (lists of `[price, size, ...]`), so decoding does not copy them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

Level = Sequence[str]
"""A `[price, size]` pair of venue strings; a size that parses to zero removes the level."""


@dataclass(slots=True)
class DepthDelta:
    """An incremental book update covering venue update ids `first_update_id..last_update_id`.

    `prev_last_update_id` is the venue's link to the previous update where it sends one (Binance
    USD-M `pu`, OKX `prevSeqId`), else None. `event_time_ms` is the venue's own timestamp.
    `checksum` is the venue's checksum of the book after this update where it sends one (OKX's
    CRC32), for the sequencing rule's `verify`; None where it sends none.
    """

    symbol: str
    first_update_id: int
    last_update_id: int
    bids: Sequence[Level]
    asks: Sequence[Level]
    prev_last_update_id: int | None = None
    event_time_ms: int = 0
    checksum: int | None = None


@dataclass(slots=True)
class DepthSnapshot:
    """A full (or top-N) book as of venue update id `last_update_id`."""

    symbol: str
    last_update_id: int
    bids: Sequence[Level]
    asks: Sequence[Level]


@dataclass(slots=True)
class TopOfBook:
    """A venue's best bid/ask message (Binance `bookTicker`), used to cross-check a book."""

    symbol: str
    update_id: int
    bid_price: str
    bid_size: str
    ask_price: str
    ask_size: str


@dataclass(slots=True)
class Trade:
    """A public trade print; books ignore it, but decoders must not mistake it for a malformed frame."""

    symbol: str
    trade_id: int
    price: str
    size: str
    buyer_is_maker: bool
    trade_time_ms: int


class DecodeError(ValueError):
    """A frame or REST body that does not have the venue's shape.

    Decoders raise it instead of a bare KeyError or TypeError so the caller can count the frame and
    skip it; a skipped depth frame is a gap, which the sync detects on the next one.
    """
