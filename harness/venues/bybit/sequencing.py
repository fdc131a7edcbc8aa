"""Bybit v5's order book rule, subject side: "snapshot then deltas, `u` +1 per topic".

The snapshot travels in the stream, so the usual race between a REST snapshot and the deltas does
not exist: a snapshot is the book at its `u`, and the next delta must be `u + 1`. A delta at or
below the book's `u` is a replay (dropped); anything past `u + 1` is a gap, after which only a new
snapshot (resubscribe or reconnect) can restore the book. A new snapshot, including Bybit's `u == 1`
after a restart of its service, replaces the book whatever its `u`: the caller hands it to the sync
as an in-stream snapshot, not as a REST one to bridge.
"""

from __future__ import annotations

from harness.book import OrderBook
from harness.book_events import DepthDelta
from harness.sync import Step, consecutive_step


class BybitSequencing:
    """The `SequencingRule` for Bybit `orderbook.{depth}.{symbol}` topics."""

    __slots__ = ()

    def snapshot_is_stale(self, snapshot_id: int, first: DepthDelta) -> bool:
        return snapshot_id + 1 < first.first_update_id

    def bridge(self, delta: DepthDelta, snapshot_id: int) -> Step:
        return self.follow(delta, snapshot_id)

    def follow(self, delta: DepthDelta, last_update_id: int) -> Step:
        return consecutive_step(delta, last_update_id)

    def verify(self, book: OrderBook, delta: DepthDelta) -> bool:
        return True
