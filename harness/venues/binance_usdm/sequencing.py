"""Binance USD-M futures diff-depth rules ("How to manage a local order book correctly", futures).

Events carry `U`, `u` and `pu` (the previous event's `u`). Events with `u < lastUpdateId` are
dropped; the first applied event must have `U <= lastUpdateId <= u`; every next event's `pu` must
equal the previous event's `u`. The first event may end exactly at `lastUpdateId`, so (unlike spot)
`u == lastUpdateId` is applied at the bridge; afterwards an event with `u` at or below the book's
is a replay and is dropped.
"""

from __future__ import annotations

from harness.book import OrderBook
from harness.book_events import DepthDelta
from harness.sync import Step


class BinanceUsdmSequencing:
    """The `SequencingRule` for Binance USD-M `<symbol>@depth` streams."""

    __slots__ = ()

    def snapshot_is_stale(self, snapshot_id: int, first: DepthDelta) -> bool:
        return snapshot_id < first.first_update_id

    def bridge(self, delta: DepthDelta, snapshot_id: int) -> Step:
        if delta.last_update_id < snapshot_id:
            return Step.DROP
        if delta.first_update_id <= snapshot_id:
            return Step.APPLY
        return Step.GAP

    def follow(self, delta: DepthDelta, last_update_id: int) -> Step:
        if delta.last_update_id <= last_update_id:
            return Step.DROP
        if delta.prev_last_update_id == last_update_id:
            return Step.APPLY
        return Step.GAP

    def verify(self, book: OrderBook, delta: DepthDelta) -> bool:
        return True
