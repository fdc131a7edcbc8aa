"""Binance spot's diff-depth rules, as published in "How to manage a local order book correctly".

Events carry `U` (first update id) and `u` (last). A snapshot older than the first buffered `U` is
refetched; events with `u <= lastUpdateId` are dropped; the first applied event must bracket
`lastUpdateId + 1`; every next event must start at the previous `u + 1`. An event that overlaps the
book without starting exactly there is treated as a gap: it cannot be proven, so it is not applied.
"""

from __future__ import annotations

from harness.book import OrderBook
from harness.book_events import DepthDelta
from harness.sync import Step, consecutive_step


class BinanceSpotSequencing:
    """The `SequencingRule` for Binance spot `<symbol>@depth` streams."""

    __slots__ = ()

    def snapshot_is_stale(self, snapshot_id: int, first: DepthDelta) -> bool:
        return snapshot_id < first.first_update_id

    def bridge(self, delta: DepthDelta, snapshot_id: int) -> Step:
        if delta.last_update_id <= snapshot_id:
            return Step.DROP
        if delta.first_update_id <= snapshot_id + 1:
            return Step.APPLY
        return Step.GAP

    def follow(self, delta: DepthDelta, last_update_id: int) -> Step:
        return consecutive_step(delta, last_update_id)

    def verify(self, book: OrderBook, delta: DepthDelta) -> bool:
        return True
