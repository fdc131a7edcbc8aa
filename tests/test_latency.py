"""Latency histograms: percentiles within the bucket error of exact ones, merging, wire form, the tracker."""

from __future__ import annotations

import json
import math
import pickle
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.errors import HarnessError
from harness.latency import INTENDED_SUFFIX, Histogram, LatencyTracker

QUANTILES = (0.001, 0.25, 0.5, 0.9, 0.99, 0.999, 1.0)


def exact_percentile(sorted_values: list[int], quantile: float) -> int:
    """Nearest rank, with the quantile rounded to parts per million like the histogram's."""
    ppm = round(quantile * 1_000_000)
    rank = max(1, math.ceil(ppm * len(sorted_values) / 1_000_000))
    return sorted_values[rank - 1]


def seeded_samples(seed: int, n: int) -> list[int]:
    rng = random.Random(seed)
    return [int(rng.lognormvariate(11, 2.5)) for _ in range(n)]


def test_percentiles_within_bucket_error_of_exact() -> None:
    samples = seeded_samples(1, 50_000)
    hist = Histogram()
    for value in samples:
        hist.record(value)
    ordered = sorted(samples)
    for quantile, got in zip(QUANTILES, hist.percentiles(QUANTILES), strict=True):
        exact = exact_percentile(ordered, quantile)
        assert abs(got - exact) <= exact * hist.relative_error, (quantile, got, exact)
    assert hist.count == len(samples)
    assert hist.min == ordered[0]
    assert hist.max == ordered[-1]
    assert hist.total == sum(samples)


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(st.integers(min_value=0, max_value=1 << 45), min_size=1, max_size=300),
    sub_bits=st.integers(min_value=2, max_value=8),
)
def test_percentile_error_bound_holds_for_any_values(values: list[int], sub_bits: int) -> None:
    hist = Histogram(sub_bits=sub_bits, max_bits=50)
    for value in values:
        hist.record(value)
    ordered = sorted(values)
    for quantile in QUANTILES:
        exact = exact_percentile(ordered, quantile)
        assert abs(hist.percentile(quantile) - exact) <= exact * hist.relative_error


def test_small_values_are_exact() -> None:
    hist = Histogram(sub_bits=4)
    for value in range(32):
        hist.record(value)
    assert [hist.percentile((v + 1) / 32) for v in range(32)] == list(range(32))


def test_values_beyond_the_layout_land_in_the_top_bucket_and_keep_exact_max() -> None:
    hist = Histogram(sub_bits=3, max_bits=10)
    hist.record(5)
    hist.record(1 << 30)
    assert hist.count == 2
    assert hist.max == 1 << 30
    assert hist.percentile(1.0) == 1 << 30
    assert hist.percentile(0.5) == 5


def test_negative_values_count_as_zero() -> None:
    hist = Histogram()
    hist.record(-40)
    assert (hist.count, hist.min, hist.max, hist.percentile(0.5)) == (1, 0, 0, 0)


def test_merge_equals_recording_everything_into_one() -> None:
    samples = seeded_samples(2, 20_000)
    one = Histogram()
    parts = [Histogram() for _ in range(3)]
    for i, value in enumerate(samples):
        one.record(value)
        parts[i % 3].record(value)
    merged = Histogram()
    for part in parts:
        merged.merge(part)
    assert merged.encode() == one.encode()
    assert merged.percentiles(QUANTILES) == one.percentiles(QUANTILES)


def test_merging_an_empty_histogram_changes_nothing() -> None:
    hist = Histogram()
    hist.record(1000)
    before = hist.encode()
    hist.merge(Histogram())
    assert hist.encode() == before
    empty = Histogram()
    empty.merge(hist)
    assert empty.encode() == before


def test_merge_refuses_a_different_layout() -> None:
    with pytest.raises(HarnessError, match="layouts"):
        Histogram(sub_bits=7).merge(Histogram(sub_bits=5))


def test_encoded_form_crosses_json_and_pickle_and_stays_small() -> None:
    hist = Histogram()
    for value in seeded_samples(3, 5000):
        hist.record(value)
    via_json = Histogram.decode(json.loads(json.dumps(hist.encode())))
    via_pickle = pickle.loads(pickle.dumps(hist))
    assert via_json.encode() == hist.encode() == via_pickle.encode()
    assert len(hist.encode()["buckets"]) < 2 * 5000


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.pop("buckets"),
        lambda d: d.update(v=99),
        lambda d: d.update(count=d["count"] + 1),
        lambda d: d.update(buckets=[*d["buckets"], 10**9, 1]),
        lambda d: d.update(buckets=[-1, 1]),
    ],
)
def test_decode_rejects_malformed_data(mutate) -> None:
    hist = Histogram()
    hist.record(12345)
    data = hist.encode()
    mutate(data)
    with pytest.raises(HarnessError, match="histogram"):
        Histogram.decode(data)


def test_bad_layout_is_a_user_error() -> None:
    with pytest.raises(HarnessError, match="layout"):
        Histogram(sub_bits=0)


def test_tracker_to_dict_reports_microseconds() -> None:
    tracker = LatencyTracker()
    for value in range(1, 1001):
        tracker.record("decode", value * 1000)
    stats = tracker.to_dict()["decode"]
    assert stats["count"] == 1000
    assert stats["max"] == 1000.0
    assert stats["mean"] == pytest.approx(500.5)
    assert stats["p50"] == pytest.approx(500, rel=1 / 128)
    assert stats["p99"] == pytest.approx(990, rel=1 / 128)
    assert stats["p999"] == pytest.approx(999, rel=1 / 128)
    assert set(stats) == {"count", "p50", "p90", "p99", "p999", "max", "mean"}


def test_record_intended_exposes_a_stall_the_actual_start_hides() -> None:
    """A sender stalled 50 ms then caught up: each message is fast from its actual send, slow from its intended one."""
    tracker = LatencyTracker()
    period = 1_000_000
    stall_until = 50 * period
    for i in range(100):
        intended = i * period
        actual = max(intended, stall_until)
        tracker.record_intended("wire", intended, actual, actual + 20_000)
    report = tracker.to_dict()
    assert report["wire"]["max"] == 20.0
    assert report["wire" + INTENDED_SUFFIX]["max"] == pytest.approx(50_020.0)
    assert report["wire" + INTENDED_SUFFIX]["p90"] > 1000 * report["wire"]["p90"]


def test_sketch_start_end_names_work_with_an_injected_clock() -> None:
    now = [0]
    tracker = LatencyTracker(clock=lambda: now[0])
    tracker.start("parse")
    now[0] += 3000
    assert tracker.end("parse") == 3000
    first = tracker.start("apply")
    now[0] += 100
    second = tracker.start("apply")
    now[0] += 900
    assert tracker.end("apply", first) == 1000
    assert tracker.end("apply", second) == 900
    stats = tracker.get_stats("parse")
    assert stats["count"] == 1
    assert stats["median_us"] == 3.0
    assert stats["min_us"] == stats["max_us"] == 3.0
    assert set(tracker.report()) == {"parse", "apply"}
    assert tracker.report()["apply"]["count"] == 2
    assert tracker.get_stats("missing") == {}


def test_end_without_start_is_an_error_not_a_silent_zero() -> None:
    with pytest.raises(HarnessError, match="without a start"):
        LatencyTracker().end("never")


def test_trackers_merge_and_cross_a_process_boundary() -> None:
    a, b = LatencyTracker(), LatencyTracker()
    for i, value in enumerate(seeded_samples(4, 3000)):
        (a if i % 2 else b).record("stage", value)
    b.record("only_b", 77)
    decoded = LatencyTracker.decode(json.loads(json.dumps(b.encode())))
    a.merge(decoded)
    assert a.histogram("stage").count == 3000
    assert a.to_dict()["only_b"]["count"] == 1
