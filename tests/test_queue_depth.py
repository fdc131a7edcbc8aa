"""The default subject's queue depth samples: the deepest per bucket, bounded however long the run."""

from __future__ import annotations

import random

import pytest

from harness.queue_depth import QueueDepthSampler


def test_each_bucket_keeps_the_deepest_depth_noted_in_it() -> None:
    sampler = QueueDepthSampler(bucket_ns=100, max_buckets=10)
    for t, depth in [(1_000, 3), (1_050, 9), (1_099, 2), (1_100, 1), (1_350, 4)]:
        sampler.note(t, depth)
    assert sampler.samples() == [[1_000, 9], [1_100, 1], [1_300, 4]]


def test_a_long_run_merges_buckets_in_pairs_and_keeps_their_maxima() -> None:
    sampler = QueueDepthSampler(bucket_ns=10, max_buckets=4)
    for k in range(8):
        sampler.note(k * 10, k)
    samples = sampler.samples()
    assert samples == [[0, 1], [20, 3], [40, 5], [60, 7]]  # 8 buckets of 10 became 4 of 20
    sampler.note(1_000, 2)
    assert len(sampler.samples()) <= 4 and sampler.samples()[-1][1] == 2
    with pytest.raises(ValueError, match="bucket_ns"):
        QueueDepthSampler(bucket_ns=0)


def test_notes_in_any_order_keep_the_deepest_per_bucket_as_the_plain_rule_does() -> None:
    """The current-bucket shortcut gives what the rule gives (bucket = time since the first note over
    the width, earlier times in bucket 0), for times that go back and forth and coarsening."""
    rng = random.Random(7)
    for _ in range(200):
        sampler = QueueDepthSampler(bucket_ns=10, max_buckets=4)
        width, buckets, origin = 10, dict[int, int](), -1
        for _ in range(rng.randint(1, 40)):
            t, depth = rng.randint(0, 120), rng.randint(0, 9)
            sampler.note(t, depth)
            origin = t if origin < 0 else origin
            bucket = max(0, t - origin) // width
            buckets[bucket] = max(depth, buckets.get(bucket, -1))
            while max(buckets) >= 4:
                merged: dict[int, int] = {}
                for b, d in buckets.items():
                    merged[b // 2] = max(d, merged.get(b // 2, 0))
                buckets, width = merged, width * 2
        assert sampler.samples() == [[origin + b * width, d] for b, d in sorted(buckets.items())]
