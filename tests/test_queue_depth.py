"""The default subject's queue depth samples: the deepest per bucket, bounded however long the run."""

from __future__ import annotations

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
