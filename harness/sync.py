"""Book sync: the snapshot-plus-deltas protocol as a pure state machine, decisions out.

Inputs are `on_delta`, `on_snapshot` (a REST snapshot, bridged by a delta), `on_stream_snapshot` (a
snapshot on the depth stream itself, synced at once), `on_snapshot_failed` and `on_connection_reset`;
each returns the events the caller must act on (fetch a snapshot on `NeedSnapshot`, or resubscribe
where snapshots come on the stream; log `GapDetected`, ...).
Nothing here reads a clock, prints or awaits, so tests drive it at full speed.

States: UNSYNCED (nothing seen since start or reconnect) -> BUFFERING (deltas kept, snapshot
asked for) -> SYNCED -> RESYNCING (sync lost; buffering again for a new snapshot) -> SYNCED ...

The venue's sequencing rule is a `SequencingRule` object; the machine only knows its three
answers (DROP, APPLY, GAP), so venues with other id schemes or checksums plug in unchanged.
A book is reported synced only after a REST snapshot was bridged by a delta the rule accepts (or a
snapshot arrived on the stream, in order with the deltas), and it stops being synced at the first
delta the rule cannot place.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from enum import Enum, IntEnum
from typing import Protocol

from harness.book import OrderBook
from harness.book_events import DepthDelta, DepthSnapshot


class Step(IntEnum):
    """A rule's verdict on one delta."""

    DROP = 0
    """Already reflected (duplicate, replay, older than the snapshot): skip it, nothing is lost."""
    APPLY = 1
    """The next delta in sequence: apply it."""
    GAP = 2
    """Something between the book and this delta is missing: the book can no longer be trusted."""


_DROP, _APPLY, _GAP = Step.DROP, Step.APPLY, Step.GAP
"""The members as module globals: reading `Step.APPLY` goes through the enum's class attribute
machinery (about 55 ns on 3.11), and the live path reads two or three per delta."""


def consecutive_step(delta: DepthDelta, last_update_id: int) -> Step:
    """The rule of venues whose ids count every update (Binance spot's `U`, Bybit's `u`): a delta at or
    below the book's id is already in it, one starting right after it is next, anything later is a gap."""
    if delta.last_update_id <= last_update_id:
        return _DROP
    if delta.first_update_id == last_update_id + 1:
        return _APPLY
    return _GAP


class SequencingRule(Protocol):
    """One venue's rules for placing deltas relative to a snapshot and to each other."""

    def snapshot_is_stale(self, snapshot_id: int, first: DepthDelta) -> bool:
        """True when the snapshot predates the first buffered delta: fetch another."""
        ...

    def bridge(self, delta: DepthDelta, snapshot_id: int) -> Step:
        """Place a delta relative to the snapshot it must follow (the first delta applied on it)."""
        ...

    def follow(self, delta: DepthDelta, last_update_id: int) -> Step:
        """Place a delta relative to the previous one, whose last update id is `last_update_id`."""
        ...

    def verify(self, book: OrderBook, delta: DepthDelta) -> bool:
        """After applying `delta`: False when the book is provably wrong (a checksum mismatch)."""
        ...


class SyncState(Enum):
    UNSYNCED = "unsynced"
    BUFFERING = "buffering"
    SYNCED = "synced"
    RESYNCING = "resyncing"


@dataclass(frozen=True, slots=True)
class NeedSnapshot:
    """Fetch a snapshot and pass it to `on_snapshot` (or call `on_snapshot_failed`)."""

    reason: str


@dataclass(frozen=True, slots=True)
class Buffered:
    first_update_id: int
    last_update_id: int


@dataclass(frozen=True, slots=True)
class Dropped:
    """A delta skipped because the book or buffer already reflects it; never applied twice."""

    first_update_id: int
    last_update_id: int
    reason: str


@dataclass(frozen=True, slots=True)
class Applied:
    """The book now reflects venue update id `last_update_id` and is synced."""

    first_update_id: int
    last_update_id: int


@dataclass(frozen=True, slots=True)
class Synced:
    """The book became synced at `last_update_id`, after replaying `replayed` buffered deltas."""

    last_update_id: int
    replayed: int


@dataclass(frozen=True, slots=True)
class StaleSnapshot:
    """The snapshot is older than the deltas it must join; a new one is needed."""

    snapshot_id: int
    first_update_id: int


@dataclass(frozen=True, slots=True)
class GapDetected:
    """A delta that does not follow `last_update_id`; deltas in between were lost."""

    last_update_id: int
    first_update_id: int
    prev_last_update_id: int | None


@dataclass(frozen=True, slots=True)
class Resync:
    """The book is no longer synced (and has been cleared); a snapshot will be asked for."""

    reason: str


@dataclass(frozen=True, slots=True)
class SnapshotIgnored:
    snapshot_id: int
    reason: str


SyncEvent = (
    NeedSnapshot | Buffered | Dropped | Applied | Synced | StaleSnapshot | GapDetected | Resync | SnapshotIgnored
)


@dataclass(slots=True)
class SyncStats:
    """Counters a report can show; all monotonic for the life of the sync."""

    applied: int = 0
    dropped: int = 0
    buffered: int = 0
    buffer_overflows: int = 0
    gaps: int = 0
    resyncs: int = 0
    snapshots: int = 0
    stale_snapshots: int = 0
    snapshot_failures: int = 0
    syncs: int = 0
    reasons: dict[str, int] = field(default_factory=dict)


class BookSync:
    """Owns an OrderBook and keeps it provably in sync with a venue's depth stream.

    Read `synced` (a plain attribute) before trusting `book`; `last_update_id` is the venue id the
    book reflects. While not synced the book is empty or holds a snapshot waiting to be bridged.
    """

    __slots__ = (
        "_base",
        "_buffer",
        "_check_crossed",
        "_max_buffer",
        "_rule",
        "_snapshot_pending",
        "book",
        "state",
        "stats",
        "synced",
    )

    def __init__(
        self,
        rule: SequencingRule,
        book: OrderBook | None = None,
        *,
        max_buffer: int = 10_000,
        check_crossed: bool = True,
    ) -> None:
        self._rule = rule
        self.book = book if book is not None else OrderBook()
        self.book.clear()
        self._max_buffer = max_buffer
        self._check_crossed = check_crossed
        self._buffer: deque[DepthDelta] = deque()
        self._base: DepthSnapshot | None = None
        self._snapshot_pending = False
        self.state = SyncState.UNSYNCED
        self.synced = False
        self.stats = SyncStats()

    @property
    def last_update_id(self) -> int:
        return self.book.last_update_id

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def on_delta(self, delta: DepthDelta) -> tuple[SyncEvent, ...]:
        if self.synced:
            book = self.book
            step = self._rule.follow(delta, book.last_update_id)
            if step is _APPLY:
                return self._apply_live(delta)
            if step is _DROP:
                self.stats.dropped += 1
                return (Dropped(delta.first_update_id, delta.last_update_id, "already applied"),)
            gap = GapDetected(book.last_update_id, delta.first_update_id, delta.prev_last_update_id)
            self.stats.gaps += 1
            return (gap, *self._lose_sync("gap", keep=delta))
        if self.state is SyncState.UNSYNCED:
            self.state = SyncState.BUFFERING
        if self._base is not None and not self._buffer:
            return self._bridge_one(delta)
        return self._buffer_delta(delta)

    def on_snapshot(self, snapshot: DepthSnapshot) -> tuple[SyncEvent, ...]:
        """Take a snapshot as the base to bridge; it is proven only by a delta the rule accepts."""
        self._snapshot_pending = False
        self.stats.snapshots += 1
        if self.synced:
            return (SnapshotIgnored(snapshot.last_update_id, "already synced"),)
        if self._base is not None and snapshot.last_update_id <= self._base.last_update_id:
            return (SnapshotIgnored(snapshot.last_update_id, "not newer than the held snapshot"),)
        self._base = snapshot
        if self.state is SyncState.UNSYNCED:
            self.state = SyncState.BUFFERING
        return self._bridge_buffer()

    def on_stream_snapshot(self, snapshot: DepthSnapshot) -> tuple[SyncEvent, ...]:
        """A whole book pushed on the depth stream itself (OKX, Bybit): the book is synced at once.

        It comes in order with the deltas, so nothing can lie between it and the next one, which
        must follow it by the rule; no bridging is needed. It replaces the book and anything
        buffered, whatever their ids: on one stream the latest message is the truth, and a venue's
        ids may restart (OKX after maintenance). `Synced` when the book was not synced, else
        `Applied` (a venue that sends only snapshots, OKX `books5`, replaces the book each time).
        """
        was_synced = self.synced
        self._reset()
        self._snapshot_pending = False
        self.stats.snapshots += 1
        book = self.book
        try:
            book.load(snapshot.last_update_id, snapshot.bids, snapshot.asks)
        except (ValueError, TypeError, IndexError, KeyError, AttributeError):
            return self._lose_sync("malformed levels")
        if self._check_crossed and book.is_crossed():
            return self._lose_sync("crossed book")
        self.synced = True
        self.state = SyncState.SYNCED
        if was_synced:
            self.stats.applied += 1
            return (Applied(snapshot.last_update_id, snapshot.last_update_id),)
        self.stats.syncs += 1
        return (Synced(snapshot.last_update_id, 0),)

    def snapshot_requested(self) -> None:
        """The caller asked for a snapshot before this sync asked (Binance's procedure fetches it once
        the stream is open, while the first events are buffered): no NeedSnapshot until it lands
        (`on_snapshot`) or fails (`on_snapshot_failed`)."""
        self._snapshot_pending = True

    def on_snapshot_failed(self) -> tuple[SyncEvent, ...]:
        """The fetch failed; the caller decides when to retry (backoff) and acts on NeedSnapshot."""
        self._snapshot_pending = False
        self.stats.snapshot_failures += 1
        if self.synced or self._base is not None:
            return ()
        return self._need_snapshot("snapshot failed")

    def on_connection_reset(self) -> tuple[SyncEvent, ...]:
        """A new connection: nothing from the old one can be bridged, so start over.

        A snapshot request in flight may still be delivered; it is validated like any other.
        """
        was_active = self.state is not SyncState.UNSYNCED
        self._reset()
        self.state = SyncState.UNSYNCED
        self._snapshot_pending = False
        if not was_active:
            return ()
        self._count("connection reset")
        return (Resync("connection reset"),)

    def _apply_live(self, delta: DepthDelta) -> tuple[SyncEvent, ...]:
        book = self.book
        try:
            book.apply(delta.last_update_id, delta.bids, delta.asks)
        except (ValueError, TypeError, IndexError, KeyError, AttributeError):
            return self._lose_sync("malformed levels")
        if not self._rule.verify(book, delta):
            return self._lose_sync("verify failed")
        if self._check_crossed and book.is_crossed():
            return self._lose_sync("crossed book")
        self.stats.applied += 1
        return (Applied(delta.first_update_id, delta.last_update_id),)

    def _buffer_delta(self, delta: DepthDelta) -> tuple[SyncEvent, ...]:
        buffer = self._buffer
        events: list[SyncEvent] = []
        if buffer:
            step = self._rule.follow(delta, buffer[-1].last_update_id)
            if step is _DROP:
                self.stats.dropped += 1
                return (Dropped(delta.first_update_id, delta.last_update_id, "already buffered"),)
            if step is _GAP:
                self.stats.gaps += 1
                events.append(GapDetected(buffer[-1].last_update_id, delta.first_update_id, delta.prev_last_update_id))
                buffer.clear()
        buffer.append(delta)
        self.stats.buffered += 1
        if len(buffer) > self._max_buffer:
            buffer.popleft()
            self.stats.buffer_overflows += 1
        events.append(Buffered(delta.first_update_id, delta.last_update_id))
        if not self._snapshot_pending:
            events.extend(self._need_snapshot("initial" if self.state is SyncState.BUFFERING else "resync"))
        return tuple(events)

    def _bridge_one(self, delta: DepthDelta) -> tuple[SyncEvent, ...]:
        """A snapshot is held and nothing is buffered: this delta must bridge it."""
        base = self._base
        assert base is not None
        step = self._rule.bridge(delta, base.last_update_id)
        if step is _DROP:
            self.stats.dropped += 1
            return (Dropped(delta.first_update_id, delta.last_update_id, "older than snapshot"),)
        if step is _GAP:
            self._base = None
            self.stats.stale_snapshots += 1
            stale = StaleSnapshot(base.last_update_id, delta.first_update_id)
            return (stale, *self._buffer_delta(delta))
        self._buffer.append(delta)
        return self._bridge_buffer(check_stale=False)

    def _bridge_buffer(self, check_stale: bool = True) -> tuple[SyncEvent, ...]:
        """Join the held snapshot to the buffer by the venue's rules, or say why it cannot be.

        `check_stale` is off when the delta arrived after the snapshot: the rule's bridge test
        alone then decides (the staleness test is about deltas buffered before it).
        """
        base = self._base
        buffer = self._buffer
        rule = self._rule
        if base is None or not buffer:
            return ()
        if check_stale and rule.snapshot_is_stale(base.last_update_id, buffer[0]):
            self._base = None
            self.stats.stale_snapshots += 1
            stale = StaleSnapshot(base.last_update_id, buffer[0].first_update_id)
            return (stale, *self._need_snapshot("stale snapshot"))
        while buffer and rule.bridge(buffer[0], base.last_update_id) is _DROP:
            buffer.popleft()
            self.stats.dropped += 1
        if not buffer:
            return ()
        if rule.bridge(buffer[0], base.last_update_id) is _GAP:
            self._base = None
            self.stats.stale_snapshots += 1
            stale = StaleSnapshot(base.last_update_id, buffer[0].first_update_id)
            return (stale, *self._need_snapshot("stale snapshot"))
        book = self.book
        self._base = None
        replayed = 0
        try:
            book.load(base.last_update_id, base.bids, base.asks)
            for delta in buffer:
                if replayed and rule.follow(delta, book.last_update_id) is not _APPLY:
                    return self._lose_sync("buffer out of sequence")
                book.apply(delta.last_update_id, delta.bids, delta.asks)
                replayed += 1
                if not rule.verify(book, delta):
                    return self._lose_sync("verify failed")
        except (ValueError, TypeError, IndexError, KeyError, AttributeError):
            return self._lose_sync("malformed levels")
        buffer.clear()
        if self._check_crossed and book.is_crossed():
            return self._lose_sync("crossed book")
        self.synced = True
        self.state = SyncState.SYNCED
        self.stats.syncs += 1
        self.stats.applied += replayed
        return (Synced(book.last_update_id, replayed),)

    def _lose_sync(self, reason: str, keep: DepthDelta | None = None) -> tuple[SyncEvent, ...]:
        """Discard everything unproven; `keep` (the delta that showed the gap) starts the new buffer."""
        self._reset()
        self.state = SyncState.RESYNCING
        self.stats.resyncs += 1
        self._count(reason)
        events: tuple[SyncEvent, ...] = (Resync(reason),)
        if keep is not None:
            self._buffer.append(keep)
            self.stats.buffered += 1
        if not self._snapshot_pending:
            events += self._need_snapshot(reason)
        return events

    def _reset(self) -> None:
        self.synced = False
        self.book.clear()
        self._buffer.clear()
        self._base = None

    def _need_snapshot(self, reason: str) -> tuple[SyncEvent, ...]:
        self._snapshot_pending = True
        return (NeedSnapshot(reason),)

    def _count(self, reason: str) -> None:
        self.stats.reasons[reason] = self.stats.reasons.get(reason, 0) + 1
