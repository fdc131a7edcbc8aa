"""Latency histograms with log-spaced buckets, and a tracker of named pipeline stages.

A `Histogram` is HDR-style: every power-of-two range of nanoseconds is split into `2**sub_bits`
linear sub-buckets, so a recorded value is known to within one part in `2**sub_bits` however large
it is, the memory is fixed at construction, recording is a few integer operations, and two
histograms with the same layout merge by adding counts. Percentiles are read from the counts, never
by sorting samples, so a run of any length costs the same to summarize.

Coordinated omission: a pipeline that stalls also stops taking samples, so latency measured only
from when work actually started hides the stall. `LatencyTracker.record_intended` records each
sample twice, from the actual start and from the time the work was meant to start (the replay's
intended send time); the second one is reported as the stage `"<stage>@intended"`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from harness.errors import HarnessError

DEFAULT_SUB_BITS = 7
"""128 sub-buckets per power of two: a reported value is within 1/128 (0.8%) of a recorded one."""

DEFAULT_MAX_BITS = 42
"""Values up to 2**42 ns (73 minutes) get their own bucket; larger ones share the top bucket."""

INTENDED_SUFFIX = "@intended"
"""Appended to a stage's name for its latencies measured from the intended start time."""

PERCENTILES: tuple[tuple[str, float], ...] = (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p999", 0.999))

_WIRE_VERSION = 1
_EMPTY_MIN = 1 << 64
_PPM = 1_000_000


def _check_layout(sub_bits: int, max_bits: int) -> None:
    if not 1 <= sub_bits <= 16 or not sub_bits < max_bits <= 64:
        raise HarnessError(f"histogram layout sub_bits={sub_bits} max_bits={max_bits} is out of range")


def _rank(quantile: float, count: int) -> int:
    """The 1-based nearest rank of `quantile` among `count` values, in integer arithmetic.

    The quantile is rounded to parts per million first, so 0.999 * 1000 is rank 999, not 1000 by
    float error. Tests compute exact percentiles with this same rank.
    """
    ppm = round(quantile * _PPM)
    return max(1, -(-ppm * count // _PPM))


class Histogram:
    """Counts of non-negative integer nanoseconds in log-spaced buckets; see the module docstring.

    Negative values (a clock stepped backwards, an intended time in the future) are recorded as 0;
    values of `2**max_bits` and more share the top bucket, whose percentiles report the exact max.
    `min`, `max`, `count` and `total` are exact; percentiles are bucket midpoints clamped to
    `[min, max]`, so they lie within `relative_error` of the exact nearest-rank percentile.
    """

    __slots__ = ("_counts", "_linear", "_min", "_sub_bits", "_top", "count", "max", "max_bits", "total")

    def __init__(self, sub_bits: int = DEFAULT_SUB_BITS, max_bits: int = DEFAULT_MAX_BITS) -> None:
        _check_layout(sub_bits, max_bits)
        self._sub_bits = sub_bits
        self.max_bits = max_bits
        self._linear = 2 << sub_bits
        self._counts = [0] * ((max_bits - sub_bits + 1) << sub_bits)
        self._top = len(self._counts) - 1
        self.count = 0
        self.total = 0
        self._min = _EMPTY_MIN
        self.max = 0

    @property
    def sub_bits(self) -> int:
        return self._sub_bits

    @property
    def min(self) -> int:
        return self._min if self.count else 0

    @property
    def relative_error(self) -> float:
        """Largest |reported - exact| / exact for any percentile (bucket width over its lower bound)."""
        return 1.0 / (1 << self._sub_bits)

    def record(self, value: int) -> None:
        """Count one value in nanoseconds."""
        if value < self._linear:
            if value < 0:
                value = 0
            index = value
        else:
            sub_bits = self._sub_bits
            shift = value.bit_length() - sub_bits - 1
            index = (shift << sub_bits) + (value >> shift)
            if index > self._top:
                index = self._top
        self._counts[index] += 1
        if value > self.max:
            self.max = value
        if value < self._min:
            self._min = value
        self.count += 1
        self.total += value

    def _bucket_midpoint(self, index: int) -> int:
        if index < self._linear:
            return index
        shift = (index >> self._sub_bits) - 1
        lower = (index - (shift << self._sub_bits)) << shift
        return lower + ((1 << shift) - 1) // 2

    def percentiles(self, quantiles: Iterable[float]) -> list[int]:
        """Values at each quantile in (0, 1], in one pass over the counts; zeros when empty."""
        wanted = sorted((_rank(q, self.count), i) for i, q in enumerate(quantiles))
        out = [0] * len(wanted)
        if self.count == 0:
            return out
        seen = 0
        w = 0
        for index, n in enumerate(self._counts):
            if not n:
                continue
            seen += n
            while w < len(wanted) and wanted[w][0] <= seen:
                if index == self._top:
                    out[wanted[w][1]] = self.max
                else:
                    out[wanted[w][1]] = min(self.max, max(self.min, self._bucket_midpoint(index)))
                w += 1
            if w == len(wanted):
                break
        return out

    def percentile(self, quantile: float) -> int:
        return self.percentiles((quantile,))[0]

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else 0.0

    def stddev(self) -> float:
        """Population standard deviation from bucket midpoints (approximate, like every bucketed figure)."""
        if self.count < 2:
            return 0.0
        mean = self.mean
        acc = 0.0
        for index, n in enumerate(self._counts):
            if n:
                acc += n * (self._bucket_midpoint(index) - mean) ** 2
        return (acc / self.count) ** 0.5

    def merge(self, other: Histogram) -> None:
        """Add `other`'s counts into this one; both must share one layout."""
        if (other._sub_bits, other.max_bits) != (self._sub_bits, self.max_bits):
            raise HarnessError(
                f"cannot merge histograms with layouts {other._sub_bits}/{other.max_bits} "
                f"and {self._sub_bits}/{self.max_bits}"
            )
        if not other.count:
            return
        counts = self._counts
        for index, n in enumerate(other._counts):
            if n:
                counts[index] += n
        self._min = min(self._min, other._min)
        self.max = max(self.max, other.max)
        self.count += other.count
        self.total += other.total

    def encode(self) -> dict[str, Any]:
        """A compact, JSON- and pickle-safe form (only non-empty buckets) for `Histogram.decode`."""
        flat: list[int] = []
        for index, n in enumerate(self._counts):
            if n:
                flat.append(index)
                flat.append(n)
        return {
            "v": _WIRE_VERSION,
            "sub_bits": self._sub_bits,
            "max_bits": self.max_bits,
            "count": self.count,
            "total": self.total,
            "min": self.min,
            "max": self.max,
            "buckets": flat,
        }

    @classmethod
    def decode(cls, data: Mapping[str, Any]) -> Histogram:
        """Rebuild a histogram from `encode()` output (from another process or a report file)."""
        try:
            if data["v"] != _WIRE_VERSION:
                raise HarnessError(f"histogram wire version {data['v']!r} is not {_WIRE_VERSION}")
            hist = cls(int(data["sub_bits"]), int(data["max_bits"]))
            flat = data["buckets"]
            pairs = zip(flat[0::2], flat[1::2], strict=True)
            for index, n in pairs:
                if not 0 <= index < len(hist._counts) or n < 1:
                    raise HarnessError(f"malformed histogram data: bucket {index} count {n}")
                hist._counts[index] += n
            hist.count, hist.total = int(data["count"]), int(data["total"])
            hist._min = int(data["min"]) if hist.count else _EMPTY_MIN
            hist.max = int(data["max"])
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise HarnessError(f"malformed histogram data: {exc}") from None
        if sum(hist._counts) != hist.count:
            raise HarnessError("malformed histogram data: bucket counts do not add up to count")
        return hist

    def summary_us(self) -> dict[str, float | int]:
        """`{count, p50, p90, p99, p999, max, mean}`, latencies in microseconds."""
        values = self.percentiles(q for _, q in PERCENTILES)
        out: dict[str, float | int] = {"count": self.count}
        for (name, _), v in zip(PERCENTILES, values, strict=True):
            out[name] = v / 1000
        out["max"] = self.max / 1000
        out["mean"] = self.mean / 1000
        return out


class LatencyTracker:
    """Named stages, one `Histogram` each; the shell passes nanoseconds in (or uses start/end).

    `start`/`end`/`get_stats`/`report` keep the names of the design sketch so code written against
    it moves over; `end` also takes the value `start` returned, so overlapping timings of one stage
    (two tasks, one stage name) do not overwrite each other.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], int] = time.monotonic_ns,
        sub_bits: int = DEFAULT_SUB_BITS,
        max_bits: int = DEFAULT_MAX_BITS,
    ) -> None:
        self._clock = clock
        self._layout = (sub_bits, max_bits)
        _check_layout(sub_bits, max_bits)
        self._stages: dict[str, Histogram] = {}
        self._active: dict[str, int] = {}

    def histogram(self, stage: str) -> Histogram:
        """The stage's histogram, created empty on first use."""
        hist = self._stages.get(stage)
        if hist is None:
            hist = self._stages[stage] = Histogram(*self._layout)
        return hist

    @property
    def stages(self) -> list[str]:
        return list(self._stages)

    def record(self, stage: str, ns: int) -> None:
        hist = self._stages.get(stage)
        if hist is None:
            hist = self.histogram(stage)
        hist.record(ns)

    def record_intended(self, stage: str, intended_ns: int, actual_ns: int, now_ns: int) -> None:
        """Record `now - actual` under `stage` and `now - intended` under `stage@intended`.

        `intended_ns` is when the work should have started (a replay's scheduled send time),
        `actual_ns` when it did; a stall shows up in the second histogram even when every
        individual piece of work was fast.
        """
        self.record(stage, now_ns - actual_ns)
        self.record(stage + INTENDED_SUFFIX, now_ns - intended_ns)

    def start(self, stage: str) -> int:
        """Start timing `stage` now; returns the start time to pass to `end` when timings overlap."""
        started = self._clock()
        self._active[stage] = started
        return started

    def end(self, stage: str, started_ns: int | None = None) -> int:
        """Record the time since `start(stage)` (or since `started_ns`) and return it in ns."""
        if started_ns is None:
            started_ns = self._active.pop(stage, None)
            if started_ns is None:
                raise HarnessError(f"latency stage {stage!r} ended without a start")
        elapsed = self._clock() - started_ns
        self.record(stage, elapsed)
        return elapsed

    def get_stats(self, stage: str) -> dict[str, float | int]:
        """The sketch's per-stage figures in microseconds (plus p90/p999); `{}` for an unknown stage."""
        hist = self._stages.get(stage)
        if hist is None or not hist.count:
            return {}
        p50, p90, p95, p99, p999 = hist.percentiles((0.5, 0.9, 0.95, 0.99, 0.999))
        return {
            "count": hist.count,
            "mean_us": hist.mean / 1000,
            "median_us": p50 / 1000,
            "p90_us": p90 / 1000,
            "p95_us": p95 / 1000,
            "p99_us": p99 / 1000,
            "p999_us": p999 / 1000,
            "min_us": hist.min / 1000,
            "max_us": hist.max / 1000,
            "std_us": hist.stddev() / 1000,
        }

    def report(self) -> dict[str, dict[str, float | int]]:
        return {stage: self.get_stats(stage) for stage in self._stages}

    def to_dict(self) -> dict[str, dict[str, float | int]]:
        """`{stage: {count, p50, p90, p99, p999, max, mean}}` in microseconds, for reports."""
        return {stage: hist.summary_us() for stage, hist in self._stages.items()}

    def merge(self, other: LatencyTracker) -> None:
        for stage, hist in other._stages.items():
            self.histogram(stage).merge(hist)

    def encode(self) -> dict[str, dict[str, Any]]:
        """Every stage's `Histogram.encode()`, to carry a tracker across a process boundary."""
        return {stage: hist.encode() for stage, hist in self._stages.items()}

    @classmethod
    def decode(cls, data: Mapping[str, Mapping[str, Any]]) -> LatencyTracker:
        tracker = cls()
        for stage, encoded in data.items():
            hist = Histogram.decode(encoded)
            tracker._layout = (hist.sub_bits, hist.max_bits)
            tracker.histogram(stage).merge(hist)
        return tracker
