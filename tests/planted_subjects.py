"""A subject with a bug planted for `harness search` to find: one no library scenario catches.

`trusts_stream_after_catch_up` is our default subject with one defect in its sync. When a snapshot
turns out to be ahead of the stream (the venue answered with a book the stream has not reached, the
`snapshot` fault's `too_new` mode), the client drops events until the stream catches up, as it should;
but once it has had to drop ten or more, it decides the stream is "known good" and from then on
applies any newer update without checking that it starts where the book ends. Alone, neither fault
shows it: a too-new snapshot is bridged correctly, and a hole before it is detected as usual. It takes
a too-new snapshot and, after it, a lost frame (drop, gap, corrupt, reorder, or a second snapshot
fault's trigger): two faults, in that order. The library has no too-new snapshot, so it never sees the
bug (checked: `harness suite --scenarios all --subject tests.planted_subjects:trusts_stream_after_catch_up`).
"""

from __future__ import annotations

from harness.book_events import DepthDelta, DepthSnapshot
from harness.default_subject import DefaultSubject
from harness.subject import SubjectConfig
from harness.sync import BookSync, Dropped
from harness.sync import SyncEvent as Decision
from harness.venues.binance_spot.sequencing import BinanceSpotSequencing

CATCH_UP_DROPS = 10
"""Events dropped while a held snapshot waited for the stream, after which the stream is trusted."""


class CatchUpTrustingSync(BookSync):
    """BookSync that stops checking sequence once it has caught up with a snapshot that was ahead."""

    def __init__(self) -> None:
        super().__init__(BinanceSpotSequencing())
        self.ahead_drops = 0
        self.trusting = False

    def on_snapshot(self, snapshot: DepthSnapshot) -> tuple[Decision, ...]:
        self.ahead_drops = 0
        return super().on_snapshot(snapshot)

    def on_delta(self, delta: DepthDelta) -> tuple[Decision, ...]:
        if self.trusting and self.synced and delta.last_update_id > self.book.last_update_id:
            return self._apply_live(delta)
        return super().on_delta(delta)

    def _bridge_one(self, delta: DepthDelta) -> tuple[Decision, ...]:
        events = super()._bridge_one(delta)
        if events and type(events[0]) is Dropped:
            self.ahead_drops += 1
        elif self.synced and self.ahead_drops >= CATCH_UP_DROPS:
            self.trusting = True
        return events


def trusts_stream_after_catch_up(config: SubjectConfig) -> DefaultSubject:
    """Applies updates across holes once it has waited ten events for a too-new snapshot."""
    subject = DefaultSubject(config)
    subject._syncs = {symbol: CatchUpTrustingSync() for symbol in config.symbols}
    return subject
