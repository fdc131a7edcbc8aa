"""Hypothesis strategies for a user's own tests: fault schedules and Binance depth-update streams.

A scenario names the faults its author imagined; these strategies draw the ones nobody did. A fault
drawn here is a `FaultSpec` built through `replayer.faults.spec.fault`, the same check a scenario
file's `[[faults]]` table goes through, so every drawn schedule can be written as a scenario file
(`harness.scenario_toml`) and replayed with `harness replay`. `harness search` drives a subject with
them; a test can use them with `@given` for its own pure code (a book, a sync rule) too.

Parameters are drawn from each kind's declared ranges (replayer/faults/spec.py), capped to values a
ten-second recording can hold, and windows are whole percentages of the recording between 5% and 80%,
so every fault heals before the last 15% in which the book must be proven.

`TIMING_FREE_KINDS` are the faults whose effect does not depend on wall time: at `--speed 0` they
give the same frames to the subject on every run (docs/scenarios.md, "At speed 0"). With
`timing_free=True` the `snapshot` kind is drawn only in the modes and trigger that hold at speed 0
(stale and too_new, triggered by a gap).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hypothesis import assume
from hypothesis import strategies as st

from harness.book_events import DepthDelta, DepthSnapshot
from harness.errors import HarnessError
from harness.venues.binance_spot.encoder import decimal_string, depth_update_data
from replayer.faults.spec import FAULT_KINDS, FAULT_PARAMS, FaultSpec, Param, fault

TIMING_FREE_KINDS: tuple[str, ...] = ("drop", "gap", "duplicate", "reorder", "corrupt", "snapshot")
"""Faults a subject meets the same way at any pace; `snapshot` only in the modes `timing_free` draws."""

_TIMING_FREE_SNAPSHOT = {"mode": ("stale", "too_new"), "trigger": ("gap",)}

_INT_SPAN = {
    "count": 3,
    "length": 7,
    "every": 18,
    "lag_frames": 20,
    "window": 3,
    "requests": 2,
    "attempts": 3,
    "lag_updates": 3,
}
"""How far above its minimum each integer parameter is drawn: enough to matter on a short recording."""

_INT_CHOICES = {"code": (1000, 1001, 1011, 1012), "max_bytes": (1024, 4096, 16384)}
_SECONDS_TENTHS = (1, 30)
"""Durations are drawn in tenths of a second, 0.1 s to 3 s (0 allowed where the kind allows it)."""


def _param(name: str, param: Param) -> st.SearchStrategy[Any]:
    if param.choices:
        return st.sampled_from(param.choices)
    if bool in param.types:
        return st.booleans()
    if str in param.types:
        return st.just(param.default)
    if name in _INT_CHOICES:
        return st.sampled_from(_INT_CHOICES[name])
    if float in param.types:
        if param.maximum == 1.0:  # a probability, on a grid of hundredths so the file reads 0.05, not 0.0497...
            return st.integers(1, 100).map(lambda hundredths: hundredths / 100)
        low = 0 if (param.minimum or 0.0) == 0.0 else _SECONDS_TENTHS[0]
        return st.integers(low, _SECONDS_TENTHS[1]).map(lambda tenths: tenths / 10)
    low = int(param.minimum or 0)
    return st.integers(low, low + _INT_SPAN.get(name, 3))


@st.composite
def fault_specs(draw: st.DrawFn, kinds: Sequence[str] = FAULT_KINDS, timing_free: bool = False) -> FaultSpec:
    """One fault of one of `kinds`, with a window of whole percentages and every parameter drawn."""
    unknown = [kind for kind in kinds if kind not in FAULT_PARAMS]
    if unknown or not kinds:
        raise ValueError(f"unknown fault kinds {unknown}; known: {', '.join(FAULT_KINDS)}")
    kind = draw(st.sampled_from(tuple(kinds)))
    start = draw(st.integers(5, 70))
    stop = draw(st.integers(start, 80))
    params: dict[str, Any] = {}
    for name, param in FAULT_PARAMS[kind].items():
        if timing_free and kind == "snapshot" and name in _TIMING_FREE_SNAPSHOT:
            params[name] = draw(st.sampled_from(_TIMING_FREE_SNAPSHOT[name]))
        else:
            params[name] = draw(_param(name, param))
    try:
        return fault(kind, f"{start}%", f"{stop}%", **params)
    except HarnessError:  # a pair of parameters the kind refuses together (stall half_open with answer_pings)
        assume(False)
        raise


def fault_schedules(
    kinds: Sequence[str] = FAULT_KINDS, max_faults: int = 4, timing_free: bool = False
) -> st.SearchStrategy[list[FaultSpec]]:
    """One to `max_faults` faults, in the order a scenario file would list them; shrinks towards fewer."""
    if max_faults < 1:
        raise ValueError(f"max_faults must be >= 1, not {max_faults}")
    return st.lists(fault_specs(kinds, timing_free), min_size=1, max_size=max_faults)


@dataclass(frozen=True, slots=True)
class DepthStream:
    """A REST snapshot and the depth updates that follow it without a hole, as Binance spot sends them.

    `frames()` are the `depthUpdate` event bytes; `book_after(i)` is the true book after `deltas[i]`
    (`book_after(-1)`: the snapshot), bids best first, asks best first, levels of size zero removed.
    """

    snapshot: DepthSnapshot
    deltas: tuple[DepthDelta, ...]

    def frames(self) -> list[bytes]:
        return [depth_update_data(delta) for delta in self.deltas]

    def book_after(self, index: int) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        if not -1 <= index < len(self.deltas):
            raise IndexError(f"no delta {index}; the stream has {len(self.deltas)}")
        bids = {price: size for price, size in self.snapshot.bids}
        asks = {price: size for price, size in self.snapshot.asks}
        for delta in self.deltas[: index + 1]:
            for side, levels in ((bids, delta.bids), (asks, delta.asks)):
                for price, size in levels:
                    side[price] = size
        return _sorted(bids, best_high=True), _sorted(asks, best_high=False)


def _sorted(side: dict[str, str], best_high: bool) -> list[tuple[str, str]]:
    live = [(price, size) for price, size in side.items() if float(size) != 0.0]
    return sorted(live, key=lambda level: float(level[0]), reverse=best_high)


@st.composite
def depth_streams(
    draw: st.DrawFn, symbol: str = "BTCUSDT", max_deltas: int = 30, ticks: int = 40, tick_units: int = 1_000_000
) -> DepthStream:
    """A snapshot and 0..`max_deltas` linked updates on a book of `2 * ticks` price levels.

    Bids live on the lower `ticks` levels and asks on the upper ones, so no state is ever crossed; an
    update sets or removes (size zero) a few levels and covers one or more update ids (`u - U >= 0`).
    Prices are `tick_units` of 1e-8 apart (0.01 by default), written with Binance's eight decimals.
    """
    base_price = 4_000_000 * tick_units

    def price(tick: int) -> str:
        return decimal_string(base_price + tick * tick_units)

    sizes = st.integers(1, 5_000).map(lambda lots: decimal_string(lots * 1_000_000))
    bid_ticks, ask_ticks = st.integers(0, ticks - 1), st.integers(ticks, 2 * ticks - 1)
    bids = draw(st.dictionaries(bid_ticks, sizes, min_size=1, max_size=ticks))
    asks = draw(st.dictionaries(ask_ticks, sizes, min_size=1, max_size=ticks))
    last = draw(st.integers(1, 10**12))
    snapshot = DepthSnapshot(
        symbol,
        last,
        [[price(t), s] for t, s in sorted(bids.items(), reverse=True)],
        [[price(t), s] for t, s in sorted(asks.items())],
    )
    change = st.one_of(sizes, st.just(decimal_string(0)))
    deltas: list[DepthDelta] = []
    for _ in range(draw(st.integers(0, max_deltas))):
        bid_changes = draw(st.dictionaries(bid_ticks, change, max_size=4))
        ask_changes = draw(st.dictionaries(ask_ticks, change, max_size=4))
        first = last + 1
        last = first + draw(st.integers(0, 5))
        deltas.append(
            DepthDelta(
                symbol,
                first,
                last,
                [[price(t), s] for t, s in sorted(bid_changes.items(), reverse=True)],
                [[price(t), s] for t, s in sorted(ask_changes.items())],
                event_time_ms=1_700_000_000_000 + len(deltas) * 100,
            )
        )
    return DepthStream(snapshot, tuple(deltas))
