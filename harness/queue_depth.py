"""The subject's queue depth over time, kept small: the deepest the queue was in each time bucket.

A timer that sampled the depth now and then would miss the bursts that matter (a queue that fills and
drains between two samples); the consumer instead notes the depth at every dequeue, which costs one
comparison, and each bucket keeps its maximum. When the buckets outgrow `max_buckets` they are merged
in pairs and the bucket doubles, so a long run costs a bounded, evenly spaced series. Pure: the caller
passes the time.
"""

from __future__ import annotations

BUCKET_NS = 50_000_000
MAX_BUCKETS = 2_000


class QueueDepthSampler:
    """`note(now_ns, depth)` at each dequeue; `samples()` gives `[[bucket_start_mono_ns, max_depth], ...]`."""

    __slots__ = ("_bucket_ns", "_depths", "_max_buckets", "_origin")

    def __init__(self, bucket_ns: int = BUCKET_NS, max_buckets: int = MAX_BUCKETS) -> None:
        if bucket_ns <= 0 or max_buckets < 2:
            raise ValueError(f"need bucket_ns > 0 and max_buckets >= 2, got {bucket_ns} and {max_buckets}")
        self._bucket_ns = bucket_ns
        self._max_buckets = max_buckets
        self._origin: int | None = None
        self._depths: dict[int, int] = {}

    def note(self, now_ns: int, depth: int) -> None:
        if self._origin is None:
            self._origin = now_ns
        bucket = max(0, now_ns - self._origin) // self._bucket_ns
        if depth > self._depths.get(bucket, -1):
            self._depths[bucket] = depth
            if bucket >= self._max_buckets:
                self._coarsen(bucket)

    def _coarsen(self, last: int) -> None:
        while last >= self._max_buckets:
            merged: dict[int, int] = {}
            for bucket, depth in self._depths.items():
                merged[bucket // 2] = max(depth, merged.get(bucket // 2, 0))
            self._depths = merged
            self._bucket_ns *= 2
            last //= 2

    def samples(self) -> list[list[int]]:
        origin = self._origin or 0
        return [[origin + bucket * self._bucket_ns, depth] for bucket, depth in sorted(self._depths.items())]
