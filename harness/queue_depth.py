"""The subject's queue depth over time, kept small: the deepest the queue was in each time bucket.

A timer that sampled the depth now and then would miss the bursts that matter (a queue that fills and
drains between two samples); the consumer instead notes the depth at every dequeue, and each bucket
keeps its maximum. Most notes fall in the current bucket without beating its maximum, so `note` first
compares with the current bucket's end and maximum and returns (two comparisons, no arithmetic, no
dict). When the buckets outgrow `max_buckets` they are merged in pairs and the bucket doubles, so a
long run costs a bounded, evenly spaced series. Pure: the caller passes the time.
"""

from __future__ import annotations

BUCKET_NS = 50_000_000
MAX_BUCKETS = 2_000


class QueueDepthSampler:
    """`note(now_ns, depth)` at each dequeue; `samples()` gives `[[bucket_start_mono_ns, max_depth], ...]`."""

    __slots__ = ("_bucket", "_bucket_ns", "_depths", "_end", "_max", "_max_buckets", "_origin", "_start")

    def __init__(self, bucket_ns: int = BUCKET_NS, max_buckets: int = MAX_BUCKETS) -> None:
        if bucket_ns <= 0 or max_buckets < 2:
            raise ValueError(f"need bucket_ns > 0 and max_buckets >= 2, got {bucket_ns} and {max_buckets}")
        self._bucket_ns = bucket_ns
        self._max_buckets = max_buckets
        self._origin: int | None = None
        self._depths: dict[int, int] = {}
        self._bucket = 0
        self._start = 0
        """The current bucket, `_bucket`, spans `[_start, _end)` in clock time and holds `_max` (kept in
        `_depths` too); bucket 0 reaches back to any time before the first note."""
        self._end = 0
        self._max = -1

    def note(self, now_ns: int, depth: int) -> None:
        if now_ns < self._end and now_ns >= self._start:
            if depth > self._max:
                self._max = depth
                self._depths[self._bucket] = depth
            return
        self._note_elsewhere(now_ns, depth)

    def _note_elsewhere(self, now_ns: int, depth: int) -> None:
        """A note outside the current bucket: it becomes the current one (a clock that went back, or
        the first note, included)."""
        if self._origin is None:
            self._origin = now_ns
        bucket = max(0, now_ns - self._origin) // self._bucket_ns
        best = self._depths.get(bucket, -1)
        if depth > best:
            best = self._depths[bucket] = depth
            if bucket >= self._max_buckets:
                bucket = self._coarsen(bucket)
                best = self._depths[bucket]
        self._bucket = bucket
        self._start = self._origin + bucket * self._bucket_ns if bucket else -(1 << 62)
        self._end = self._origin + (bucket + 1) * self._bucket_ns
        self._max = best

    def _coarsen(self, last: int) -> int:
        """Merge buckets in pairs until `last` fits; returns `last`'s bucket after the merging."""
        while last >= self._max_buckets:
            merged: dict[int, int] = {}
            for bucket, depth in self._depths.items():
                merged[bucket // 2] = max(depth, merged.get(bucket // 2, 0))
            self._depths = merged
            self._bucket_ns *= 2
            last //= 2
        return last

    def samples(self) -> list[list[int]]:
        origin = self._origin or 0
        return [[origin + bucket * self._bucket_ns, depth] for bucket, depth in sorted(self._depths.items())]
