"""Judging a subject's book levels by value, and the part of a full book a subject could know.

A user's client keeps prices and sizes as it likes: the venue's strings, floats, Decimals or ints.
A level is right when it denotes the venue's number: a float when it is the very double the venue's
string parses to (so `41999.97` matches `"41999.97000000"`, and a float that drifted through
arithmetic does not), a str, int or Decimal when it is the same decimal. The oracle's strings are
converted once each and cached, so the per-observation cost stays a dict lookup per level; the
common case (the subject kept the venue's strings) is one tuple comparison.

The final book is compared within what the subject's own snapshot could show it: a REST snapshot
of `limit` levels says nothing about the levels beyond its deepest price, and a local book learns
those only where a diff since the snapshot touched them (Binance's guide says as much).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

Side = tuple[tuple[str, str], ...]

_CACHE_LIMIT = 500_000
"""Distinct strings kept converted; a run past it starts over rather than grow without bound."""


class LevelMatch:
    """Compares reported sides with the oracle's, by value; one per run (it caches conversions)."""

    __slots__ = ("_decimals", "_float_sides", "_floats")

    def __init__(self) -> None:
        self._floats: dict[str, float] = {}
        self._decimals: dict[str, Decimal | None] = {}
        self._float_sides: dict[int, tuple[Side, tuple[tuple[float, float], ...]]] = {}

    def same_side(self, got: Sequence[Sequence[Any]], expected: Side) -> bool:
        mine = tuple(got)
        if mine == expected:
            return True
        if len(got) != len(expected):
            return False
        if type(got[0][0]) is float and mine == self._as_floats(expected):
            return True  # a float subject's usual case: one comparison with the side converted once
        equal = self.equal
        for level, (price, size) in zip(got, expected, strict=True):
            if len(level) < 2 or not (equal(level[0], price) and equal(level[1], size)):
                return False
        return True

    def equal(self, mine: Any, theirs: str) -> bool:
        """Whether the subject's value `mine` denotes the venue's string `theirs`."""
        kind = type(mine)
        if kind is str:
            if mine == theirs:
                return True
            value = self._decimal(mine)
            return value is not None and value == self._decimal(theirs)
        if kind is float:
            known = self._floats.get(theirs)
            if known is None:
                known = self._remember_float(theirs)
            return mine == known
        if kind is int or kind is Decimal:
            return self._decimal(theirs) == mine
        return False

    def _as_floats(self, side: Side) -> tuple[tuple[float, float], ...]:
        """An oracle side as floats, converted once per side object (the oracle keeps its sides)."""
        cached = self._float_sides.get(id(side))
        if cached is not None and cached[0] is side:
            return cached[1]
        if len(self._float_sides) >= _CACHE_LIMIT // 40:
            self._float_sides.clear()
        floats = tuple((float(price), float(size)) for price, size in side)
        self._float_sides[id(side)] = (side, floats)  # holding `side` keeps its id from being reused
        return floats

    def _remember_float(self, text: str) -> float:
        if len(self._floats) >= _CACHE_LIMIT:
            self._floats.clear()
        value = self._floats[text] = float(text)
        return value

    def _decimal(self, text: str) -> Decimal | None:
        try:
            return self._decimals[text]
        except KeyError:
            pass
        if len(self._decimals) >= _CACHE_LIMIT:
            self._decimals.clear()
        try:
            value: Decimal | None = Decimal(text)
        except (InvalidOperation, ValueError):
            value = None
        self._decimals[text] = value
        return value


def as_sent(value: Any) -> Any:
    """A reported value as the report shows it: JSON scalars as they are, anything else as its str."""
    return value if value is None or type(value) in (str, int, float, bool) else str(value)


@dataclass(frozen=True, slots=True)
class SnapshotReach:
    """How far one served REST snapshot reached: its deepest bid and ask prices, None where the side
    was served whole (fewer levels than asked for), so the subject saw all of it."""

    last_update_id: int
    limit: int
    lowest_bid: float | None
    highest_ask: float | None


@dataclass(frozen=True, slots=True)
class VisibleDepth:
    """What of each side the final check compared, and how many oracle levels lay out of reach."""

    snapshot_levels: int
    bids_compared: int
    asks_compared: int
    bids_beyond: int
    asks_beyond: int


def reach_of(
    last_update_id: int, limit: int, bids: Sequence[Sequence[str]], asks: Sequence[Sequence[str]]
) -> SnapshotReach:
    """The reach of a snapshot body the venue served with `limit` levels per side."""
    lowest = float(bids[-1][0]) if len(bids) >= limit and bids else None
    highest = float(asks[-1][0]) if len(asks) >= limit and asks else None
    return SnapshotReach(last_update_id, limit, lowest, highest)


def within_reach(
    bids: Sequence[Sequence[Any]],
    asks: Sequence[Sequence[Any]],
    reach: SnapshotReach,
    touched_bids: Iterable[str],
    touched_asks: Iterable[str],
) -> tuple[list[Any], list[Any], int, int]:
    """The levels a book built on that snapshot can know: inside its reach, or at a price a diff touched
    since. Returns the kept bids and asks and how many levels of each side were left out."""
    kept_bids = _keep(bids, reach.lowest_bid, {float(p) for p in touched_bids}, bid=True)
    kept_asks = _keep(asks, reach.highest_ask, {float(p) for p in touched_asks}, bid=False)
    return kept_bids, kept_asks, len(bids) - len(kept_bids), len(asks) - len(kept_asks)


def _keep(levels: Sequence[Sequence[Any]], bound: float | None, touched: set[float], *, bid: bool) -> list[Any]:
    if bound is None:
        return list(levels)
    kept = []
    for level in levels:
        try:
            price = float(level[0])
        except (TypeError, ValueError, IndexError):
            kept.append(level)  # not a price at all: kept, so the comparison fails on it
            continue
        if (price >= bound if bid else price <= bound) or price in touched:
            kept.append(level)
    return kept
