"""Hypothesis drives BookSync (Binance spot rules) through a lossy, duplicating, reordering network
and reconnects, against a model venue that remembers its book at every update id.

Safety: whenever the sync says synced, its book equals the venue's book at the same update id, and
no update id is applied twice. Liveness: after the network heals, the sync is synced again.
"""

from __future__ import annotations

import random

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from harness.book_events import DepthDelta, DepthSnapshot
from harness.sync import Applied, BookSync, NeedSnapshot, Synced
from harness.venues.binance_spot.sequencing import BinanceSpotSequencing

BID_PRICES = [f"{p}.50" for p in range(1, 16)]
ASK_PRICES = [f"{p}.50" for p in range(20, 35)]  # never crosses the bids
SIZES = ["0", "0.000", "1.5", "2", "0.25"]


class SyncMachine(RuleBasedStateMachine):
    @initialize(seed=st.integers(0, 2**32 - 1))
    def start(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.sync = BookSync(BinanceSpotSequencing())
        self.bids: dict[str, str] = {}
        self.asks: dict[str, str] = {}
        self.venue_id = 1000
        self.history: dict[int, tuple[list[tuple[str, str]], list[tuple[str, str]]]] = {self.venue_id: self._depth()}
        self.in_flight: list[DepthDelta] = []
        self.sent: list[DepthDelta] = []
        self.requested = False
        self.applied_upto: int | None = None

    def _depth(self) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        bids = sorted(self.bids.items(), key=lambda lv: -float(lv[0]))
        asks = sorted(self.asks.items(), key=lambda lv: float(lv[0]))
        return bids, asks

    def _handle(self, events) -> None:
        for event in events:
            if isinstance(event, NeedSnapshot):
                self.requested = True
            elif isinstance(event, Synced):
                self.applied_upto = event.last_update_id
            elif isinstance(event, Applied):
                assert self.applied_upto is not None
                assert event.first_update_id == self.applied_upto + 1, "an update applied twice or skipped"
                self.applied_upto = event.last_update_id
        if not self.sync.synced:
            self.applied_upto = None

    @rule(count=st.integers(1, 3))
    def venue_update(self, count: int) -> None:
        bids = [[self.rng.choice(BID_PRICES), self.rng.choice(SIZES)] for _ in range(self.rng.randint(0, 4))]
        asks = [[self.rng.choice(ASK_PRICES), self.rng.choice(SIZES)] for _ in range(self.rng.randint(0, 4))]
        for side, levels in ((self.bids, bids), (self.asks, asks)):
            for price, size in levels:
                if float(size) == 0:
                    side.pop(price, None)
                else:
                    side[price] = size
        first = self.venue_id + 1
        self.venue_id += count
        self.history[self.venue_id] = self._depth()
        self.in_flight.append(DepthDelta("X", first, self.venue_id, bids, asks))

    @precondition(lambda self: self.in_flight)
    @rule()
    def deliver(self) -> None:
        delta = self.in_flight.pop(0)
        self.sent.append(delta)
        self._handle(self.sync.on_delta(delta))

    @precondition(lambda self: self.sent)
    @rule()
    def deliver_duplicate(self) -> None:
        self._handle(self.sync.on_delta(self.rng.choice(self.sent[-5:])))

    @precondition(lambda self: len(self.in_flight) >= 2)
    @rule()
    def reorder(self) -> None:
        self.in_flight[0], self.in_flight[1] = self.in_flight[1], self.in_flight[0]

    @precondition(lambda self: self.in_flight)
    @rule()
    def lose_frame(self) -> None:
        self.in_flight.pop(0)

    @rule()
    def reconnect(self) -> None:
        self.in_flight.clear()
        self._handle(self.sync.on_connection_reset())

    @precondition(lambda self: self.requested)
    @rule()
    def snapshot(self) -> None:
        self.requested = False
        bids, asks = self.history[self.venue_id]
        self._handle(
            self.sync.on_snapshot(DepthSnapshot("X", self.venue_id, [list(b) for b in bids], [list(a) for a in asks]))
        )

    @rule()
    def late_snapshot(self) -> None:
        """A snapshot from any earlier moment: a slow or duplicated REST response."""
        snapshot_id = self.rng.choice(list(self.history)[-6:])
        bids, asks = self.history[snapshot_id]
        self._handle(
            self.sync.on_snapshot(DepthSnapshot("X", snapshot_id, [list(b) for b in bids], [list(a) for a in asks]))
        )

    @precondition(lambda self: self.requested)
    @rule()
    def snapshot_fails(self) -> None:
        self.requested = False
        self._handle(self.sync.on_snapshot_failed())

    @invariant()
    def synced_book_equals_venue_at_same_id(self) -> None:
        if not hasattr(self, "sync") or not self.sync.synced:
            return
        assert self.sync.last_update_id in self.history
        assert self.sync.book.depth() == self.history[self.sync.last_update_id]

    @rule()
    def heal(self) -> None:
        """Deliver everything in order, then run the snapshot protocol once: the sync must recover."""
        while self.in_flight:
            self.deliver()
        self.venue_update(1)
        self.deliver()
        bids, asks = self.history[self.venue_id]
        self._handle(
            self.sync.on_snapshot(DepthSnapshot("X", self.venue_id, [list(b) for b in bids], [list(a) for a in asks]))
        )
        self.requested = False
        self.venue_update(1)
        self.deliver()
        assert self.sync.synced
        assert self.sync.last_update_id == self.venue_id


SyncMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
TestSyncStateful = SyncMachine.TestCase
