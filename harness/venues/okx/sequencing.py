"""OKX's `books` rule for the subject: a `prevSeqId` chain on a stream that brings its own snapshot.

From OKX's docs ("Sequence ID"): an update applies when its `prevSeqId` is the last applied `seqId`
(steps are not 1; the once-a-minute heartbeat has `prevSeqId == seqId` and no levels and applies
like any other; after maintenance an update may have `seqId` below `prevSeqId`, and its link still
holds). A message already applied (`seqId` at or below the book's and linking to an older id) is a
duplicate and dropped; anything else is a gap: resubscribe for a new snapshot. The snapshot comes on
the stream, in order with the updates, so it is never stale. `verify` recomputes the checksum after
each update that carries one: a mismatch is a book the venue disagrees with, so the sync resyncs.
Updates without `seqId` (before 2023) have no link and apply wherever they come; the checksum is
then the only guard.
"""

from __future__ import annotations

from harness.book import OrderBook
from harness.book_events import DepthDelta
from harness.sync import Step
from harness.venues.okx.checksum import DEPTH, book_checksum


class OkxSequencing:
    """The `SequencingRule` for OKX `books`; use with `BookSync.on_stream_snapshot` for snapshots."""

    __slots__ = ()

    def snapshot_is_stale(self, snapshot_id: int, first: DepthDelta) -> bool:
        return False

    def bridge(self, delta: DepthDelta, snapshot_id: int) -> Step:
        return self.follow(delta, snapshot_id)

    def follow(self, delta: DepthDelta, last_update_id: int) -> Step:
        prev = delta.prev_last_update_id
        if prev is None or prev == last_update_id:
            return Step.APPLY
        if delta.last_update_id <= last_update_id and prev < last_update_id:
            return Step.DROP
        return Step.GAP

    def verify(self, book: OrderBook, delta: DepthDelta) -> bool:
        if delta.checksum is None:
            return True
        bids, asks = book.top_n(DEPTH)
        return book_checksum(bids, asks) == delta.checksum
