"""A bounded priority queue with backpressure policies, O(1) per put and get.

There are four priority levels, one FIFO deque each, so a put appends to one deque, a get pops the
head of the first non-empty one, and making room on overflow pops the head of one deque: no heap,
no scan of the queued items. Items of one priority come out in the order they went in (order book
deltas must not be reordered).

When the queue is full, the policy decides:

- `DROP_LOWEST`: evict the oldest item of the lowest priority below the new item's; when every
  queued item is at least as urgent, the new item is dropped.
- `DROP_OLDEST`: evict the oldest item of the new item's own priority; when there is none, fall
  back to `DROP_LOWEST` (an older, less urgent item never outranks a newer, more urgent one).
- `BLOCK`: `put` waits for room; `put_nowait` refuses the item (counted as dropped).
- `CONFLATE`: a put whose key is already queued at the same priority replaces that item's value in
  place (it keeps its position, takes the new item's enqueue time); the replaced value counts as
  dropped and conflated. A new key on a full queue falls back to `DROP_LOWEST`.

Every item offered is eventually dequeued, dropped, or still queued, per priority, and the counters
say which (`offered == dequeued + dropped + depth`). Waiting uses loop futures only (no lock and
condition pair), on one event loop: a put wakes one waiting getter, a get wakes one blocked putter,
and a waiter cancelled after being woken passes the wake-up on, so none is ever lost. The clock is
injectable; it is read once per put and once per get.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import Any, NamedTuple

from harness.errors import HarnessError
from harness.latency import Histogram


class MessagePriority(IntEnum):
    """Lower value is more urgent (the design sketch's names and values)."""

    CRITICAL = 0
    HIGH = 1
    NORMAL = 2
    LOW = 3


class OverflowPolicy(StrEnum):
    DROP_LOWEST = "DROP_LOWEST"
    DROP_OLDEST = "DROP_OLDEST"
    BLOCK = "BLOCK"
    CONFLATE = "CONFLATE"


_PRIORITIES = tuple(MessagePriority)


class Delivery(NamedTuple):
    """An item as it leaves the queue, with the times the replay needs to measure queue wait."""

    item: Any
    priority: MessagePriority
    queued_ns: int
    enqueued_ns: int


@dataclass(slots=True)
class PriorityStats:
    """Counters for one priority level; `offered == dequeued + dropped + depth` always holds."""

    offered: int = 0
    enqueued: int = 0
    dropped: int = 0
    conflated: int = 0
    dequeued: int = 0
    depth: int = 0
    high_water: int = 0
    queued: Histogram = field(default_factory=Histogram)

    def as_dict(self) -> dict[str, Any]:
        return {
            "offered": self.offered,
            "enqueued": self.enqueued,
            "dropped": self.dropped,
            "conflated": self.conflated,
            "dequeued": self.dequeued,
            "depth": self.depth,
            "high_water": self.high_water,
            "queued_us": self.queued.summary_us(),
        }


_new_tuple = tuple.__new__
"""Builds a `Delivery` without NamedTuple's Python-level `__new__` (half the cost on the meta get path)."""

_ITEM, _ENQUEUED_NS, _KEY, _PRIORITY, _WAITED_NS = 0, 1, 2, 3, 4
"""A queued entry is a list `[item, enqueued_ns, key, priority, waited_ns]`: mutable for conflation, and cheaper
to build than an object; `waited_ns` is filled in when it leaves the queue."""


def _wake_next(waiters: deque[asyncio.Future[None]]) -> None:
    while waiters:
        fut = waiters.popleft()
        if not fut.done():
            fut.set_result(None)
            return


class BoundedPriorityQueue:
    """See the module docstring. Use from one event loop; the `*_nowait` methods need no loop at all."""

    def __init__(
        self,
        max_size: int = 10_000,
        drop_strategy: OverflowPolicy | str = OverflowPolicy.DROP_LOWEST,
        *,
        clock: Callable[[], int] = time.monotonic_ns,
        key_of: Callable[[Any], Hashable] | None = None,
    ) -> None:
        if max_size < 1:
            raise HarnessError(f"queue max_size must be at least 1, got {max_size}")
        try:
            self._policy = OverflowPolicy(drop_strategy)
        except ValueError:
            choices = ", ".join(OverflowPolicy)
            raise HarnessError(f"unknown queue policy {drop_strategy!r}; choose one of {choices}") from None
        self._max_size = max_size
        self._clock = clock
        self._key_of = key_of
        self._conflate = self._policy is OverflowPolicy.CONFLATE
        self._block = self._policy is OverflowPolicy.BLOCK
        self._fast_below = 0 if self._conflate else max_size
        """`put_nowait` takes its fast path while the queue holds fewer items than this."""
        self._levels: tuple[deque[list[Any]], ...] = tuple(deque() for _ in _PRIORITIES)
        self._keys: tuple[dict[Hashable, list[Any]], ...] = tuple({} for _ in _PRIORITIES)
        self._stats = tuple(PriorityStats() for _ in _PRIORITIES)
        self._size = 0
        self._high_water = 0
        self._getters: deque[asyncio.Future[None]] = deque()
        self._putters: deque[asyncio.Future[None]] = deque()

    @property
    def max_size(self) -> int:
        return self._max_size

    @property
    def policy(self) -> OverflowPolicy:
        return self._policy

    def qsize(self) -> int:
        return self._size

    def __len__(self) -> int:
        return self._size

    def empty(self) -> bool:
        return not self._size

    def full(self) -> bool:
        return self._size >= self._max_size

    def put_nowait(
        self, item: Any, priority: MessagePriority | int = MessagePriority.NORMAL, key: Hashable | None = None
    ) -> bool:
        """Queue `item` now; False when the policy dropped it (it is counted either way).

        `key` matters only under CONFLATE (default: `key_of(item)` when given); an item without a
        key is never conflated.
        """
        if priority.__class__ is not MessagePriority:
            priority = self._coerce(priority)
        size = self._size
        if size >= self._fast_below:
            return self._put_contended(item, priority, key)
        # The common case (room, no conflation) is `_put_contended` without the branches that cannot apply.
        level = self._levels[priority]
        level.append([item, self._clock(), None, priority, 0])
        size += 1
        self._size = size
        if size > self._high_water:
            self._high_water = size
        stats = self._stats[priority]
        stats.offered += 1
        stats.enqueued += 1
        depth = stats.depth = len(level)
        if depth > stats.high_water:
            stats.high_water = depth
        if self._getters:
            _wake_next(self._getters)
        return True

    def _put_contended(self, item: Any, priority: int, key: Hashable | None) -> bool:
        """`put_nowait` on a full queue or under CONFLATE: conflate, make room, or refuse."""
        stats = self._stats[priority]
        stats.offered += 1
        now = self._clock()
        if self._conflate:
            if key is None and self._key_of is not None:
                key = self._key_of(item)
            if key is not None:
                existing = self._keys[priority].get(key)
                if existing is not None:
                    existing[_ITEM] = item
                    existing[_ENQUEUED_NS] = now
                    stats.enqueued += 1
                    stats.dropped += 1
                    stats.conflated += 1
                    return True
        else:
            key = None
        if self._size >= self._max_size and not self._make_room(priority):
            stats.dropped += 1
            return False
        entry = [item, now, key, priority, 0]
        level = self._levels[priority]
        level.append(entry)
        if key is not None:
            self._keys[priority][key] = entry
        self._size += 1
        if self._size > self._high_water:
            self._high_water = self._size
        stats.enqueued += 1
        depth = len(level)
        stats.depth = depth
        if depth > stats.high_water:
            stats.high_water = depth
        if self._getters:
            _wake_next(self._getters)
        return True

    async def put(
        self, item: Any, priority: MessagePriority | int = MessagePriority.NORMAL, key: Hashable | None = None
    ) -> bool:
        """`put_nowait`, except that under BLOCK it first waits for room (cancellable)."""
        if self._size >= self._max_size and self._block:
            loop = asyncio.get_running_loop()
            while self._size >= self._max_size:
                fut: asyncio.Future[None] = loop.create_future()
                self._putters.append(fut)
                try:
                    await fut
                except BaseException:
                    self._abandon(fut, self._putters, self._size < self._max_size)
                    raise
        return self.put_nowait(item, priority, key)

    def get_nowait_with_meta(self) -> Delivery:
        """The most urgent, oldest item with its priority and time queued; raises asyncio.QueueEmpty."""
        if not self._size:
            raise asyncio.QueueEmpty
        entry = self._pop()
        return _new_tuple(Delivery, (entry[_ITEM], entry[_PRIORITY], entry[_WAITED_NS], entry[_ENQUEUED_NS]))

    def get_nowait(self) -> Any:
        """The most urgent, oldest item; raises asyncio.QueueEmpty."""
        if not self._size:
            raise asyncio.QueueEmpty
        return self._pop()[_ITEM]

    async def get_with_meta(self, timeout: float | None = None) -> Delivery | None:
        """Wait for an item (at most `timeout` seconds; None on timeout) and return it with its metadata."""
        if not self._size and not await self._wait_for_item(timeout):
            return None
        entry = self._pop()
        return _new_tuple(Delivery, (entry[_ITEM], entry[_PRIORITY], entry[_WAITED_NS], entry[_ENQUEUED_NS]))

    async def get(self, timeout: float | None = None) -> Any:
        """The sketch's `get`: the next item, or None after `timeout` seconds without one."""
        if not self._size and not await self._wait_for_item(timeout):
            return None
        return self._pop()[_ITEM]

    def priority_stats(self, priority: MessagePriority) -> PriorityStats:
        return self._stats[self._coerce(priority)]

    def get_metrics(self) -> dict[str, Any]:
        """The sketch's totals (`queue_size`, `dropped`, `processed`, `drop_rate`) plus `by_priority`."""
        offered = sum(s.offered for s in self._stats)
        dropped = sum(s.dropped for s in self._stats)
        return {
            "queue_size": self._size,
            "max_size": self._max_size,
            "high_water": self._high_water,
            "policy": str(self._policy),
            "offered": offered,
            "dropped": dropped,
            "processed": sum(s.dequeued for s in self._stats),
            "drop_rate": dropped / offered if offered else 0.0,
            "by_priority": {p.name: s.as_dict() for p, s in zip(_PRIORITIES, self._stats, strict=True)},
        }

    def _make_room(self, priority: int) -> bool:
        levels = self._levels
        if self._policy is OverflowPolicy.BLOCK:
            return False
        if self._policy is OverflowPolicy.DROP_OLDEST and levels[priority]:
            self._evict(priority)
            return True
        for lower in range(len(levels) - 1, priority, -1):
            if levels[lower]:
                self._evict(lower)
                return True
        return False

    def _pop(self) -> list[Any]:
        """Remove the head of the most urgent non-empty level (the caller checked `_size`), its wait filled in."""
        for level in self._levels:
            if level:
                break
        entry = level.popleft()
        priority = entry[_PRIORITY]
        self._size -= 1
        if entry[_KEY] is not None:
            self._forget_key(priority, entry)
        waited = entry[_WAITED_NS] = self._clock() - entry[_ENQUEUED_NS]
        stats = self._stats[priority]
        stats.dequeued += 1
        stats.depth = len(level)
        stats.queued.record(waited)
        if self._putters:
            _wake_next(self._putters)
        return entry

    def _evict(self, priority: int) -> None:
        level = self._levels[priority]
        entry = level.popleft()
        self._size -= 1
        if entry[_KEY] is not None:
            self._forget_key(priority, entry)
        stats = self._stats[priority]
        stats.dropped += 1
        stats.depth = len(level)

    def _forget_key(self, priority: int, entry: list[Any]) -> None:
        keys = self._keys[priority]
        if keys.get(entry[_KEY]) is entry:
            del keys[entry[_KEY]]

    async def _wait_for_item(self, timeout: float | None) -> bool:
        """Wait until an item is queued; False when `timeout` seconds passed first."""
        if timeout is None:
            await self._wait_nonempty()
            return True
        try:
            async with asyncio.timeout(timeout):
                await self._wait_nonempty()
        except TimeoutError:
            return False
        return True

    async def _wait_nonempty(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._size:
            fut: asyncio.Future[None] = loop.create_future()
            self._getters.append(fut)
            try:
                await fut
            except BaseException:
                self._abandon(fut, self._getters, self._size > 0)
                raise

    @staticmethod
    def _abandon(fut: asyncio.Future[None], waiters: deque[asyncio.Future[None]], can_proceed: bool) -> None:
        """A waiter is leaving (cancelled, timed out): if it had been woken, the wake-up goes to the next one."""
        woken = fut.done() and not fut.cancelled()
        fut.cancel()
        with contextlib.suppress(ValueError):
            waiters.remove(fut)
        if woken and can_proceed:
            _wake_next(waiters)

    @staticmethod
    def _coerce(priority: Any) -> MessagePriority:
        try:
            return MessagePriority(priority)
        except ValueError:
            raise HarnessError(f"unknown priority {priority!r}; use MessagePriority CRITICAL..LOW") from None


BackpressureQueue = BoundedPriorityQueue
"""The design sketch's name, so code written against it moves over unchanged."""
