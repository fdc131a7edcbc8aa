"""Why a book diverged: the first level that differs, and what the venue did with the frames just before.

A divergence example says the subject's book was wrong at update `u`. A reader then asks two things:
where exactly (the best price at which the two books part, with both sizes), and what happened on the
wire (which of the symbol's frames up to `u` were sent intact, dropped by a fault, corrupted,
duplicated, reordered, or arrived only after the wrong book). Both are answered here from what the
checker already holds: the two books, the clean frames' ids, the server's send log and the fault plan's
windows. Pure: every time is passed in, relative times in the output are milliseconds from the
divergent book (negative: before it).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from harness.level_match import LevelMatch, as_sent

FRAMES_BEFORE = 6
FRAMES_AFTER = 2
LOST_BY = frozenset({"drop", "gap"})
"""Fault kinds that remove a frame from the wire: a frame never written inside their window is theirs."""


class _Ids(Protocol):
    @property
    def index(self) -> int: ...
    @property
    def symbol(self) -> str: ...
    @property
    def first_update_id(self) -> int: ...
    @property
    def last_update_id(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Write:
    """One write of a frame to one of the subject's connections, with the highest update id of the same
    symbol that connection had been sent before it (a reorder shows as a frame below that)."""

    client_id: int
    write_mono_ns: int
    fault: str | None
    highest_before: int | None


def first_difference(
    match: LevelMatch,
    got: tuple[Sequence[Sequence[Any]], Sequence[Sequence[Any]]],
    expected: tuple[Sequence[Sequence[str]], Sequence[Sequence[str]]],
) -> dict[str, Any] | None:
    """The differing level nearest the top of either side: `{side, level, price, subject, oracle}`,
    sizes as each sent them (None where that book has no level at the price)."""
    best: tuple[int, dict[str, Any]] | None = None
    for side, mine, theirs in (("bids", got[0], expected[0]), ("asks", got[1], expected[1])):
        found = _side_difference(match, mine, theirs, bids=side == "bids")
        if found is not None and (best is None or found[0] < best[0]):
            best = (found[0], {"side": side, **found[1]})
    return None if best is None else best[1]


def _side_difference(
    match: LevelMatch, mine: Sequence[Sequence[Any]], theirs: Sequence[Sequence[str]], *, bids: bool
) -> tuple[int, dict[str, Any]] | None:
    """Walks both sides best first, merging by price; (levels walked, the first difference)."""
    sign = -1 if bids else 1
    i = j = 0
    while i < len(mine) or j < len(theirs):
        a = _price(mine[i][0]) if i < len(mine) else None
        b = _price(theirs[j][0]) if j < len(theirs) else None
        level = max(i, j)
        if a is not None and b is not None and a == b:
            if not match.equal(mine[i][1], theirs[j][1]):
                return level, _row(level, theirs[j][0], as_sent(mine[i][1]), theirs[j][1])
            i, j = i + 1, j + 1
        elif b is None or (a is not None and sign * a < sign * b):
            return level, _row(level, as_sent(mine[i][0]), as_sent(mine[i][1]), None)
        else:
            return level, _row(level, theirs[j][0], None, theirs[j][1])
    return None


def _row(level: int, price: Any, subject: Any, oracle: Any) -> dict[str, Any]:
    return {"level": level, "price": price, "subject": subject, "oracle": oracle}


def _price(value: Any) -> Decimal | None:
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


def writes_by_frame(
    clients: Iterable[Any], wanted: set[int], symbol_of: Callable[[int], tuple[str, int] | None]
) -> dict[int, list[Write]]:
    """The writes of the `wanted` frame indexes, each with its connection's highest update id of that
    symbol sent before it. `symbol_of(frame_index)` gives a depth frame's (symbol, last update id)."""
    found: dict[int, list[Write]] = {}
    for client in clients:
        highest: dict[str, int] = {}
        for send in client.sends:
            ids = symbol_of(send.frame_index)
            if ids is None:
                continue
            symbol, last = ids
            if send.frame_index in wanted:
                write = Write(client.client_id, send.write_mono_ns, getattr(send, "fault", None), highest.get(symbol))
                found.setdefault(send.frame_index, []).append(write)
            if last > highest.get(symbol, -1):
                highest[symbol] = last
    return found


class Nearby:
    """Picks a symbol's frames around `update_id` from a stream of them in any order, keeping only what
    it will give: in (update id, index) order, the last FRAMES_BEFORE ending at or before it and the
    first FRAMES_AFTER after, so a long recording's frames need not be gathered and sorted."""

    __slots__ = ("_after", "_before", "_update_id")

    def __init__(self, update_id: int) -> None:
        self._update_id = update_id
        self._before: list[tuple[tuple[int, int], _Ids]] = []
        """A min-heap of the highest (last id, index) at or below the id."""
        self._after: list[tuple[tuple[int, int], _Ids]] = []
        """A min-heap of the lowest after it, keys negated."""

    def add(self, frame: _Ids) -> None:
        last = frame.last_update_id
        if last <= self._update_id:
            key, heap, size = (last, frame.index), self._before, FRAMES_BEFORE
        else:
            key, heap, size = (-last, -frame.index), self._after, FRAMES_AFTER
        if len(heap) < size:
            heapq.heappush(heap, (key, frame))
        elif key > heap[0][0]:
            heapq.heapreplace(heap, (key, frame))

    def frames(self) -> list[_Ids]:
        return [frame for _, frame in sorted(self._before)] + [frame for _, frame in sorted(self._after, reverse=True)]


def frames_around(
    update_id: int,
    at_ns: int,
    frames: Sequence[_Ids],
    writes: dict[int, list[Write]],
    windows: Sequence[tuple[str, str, int, int]],
    due: Callable[[int], int] | None,
) -> dict[str, Any]:
    """`{frames: [...], faults: [...]}`: each nearby frame's fate and writes, and the fault windows that
    were open from the first of them to the divergence. `windows` are (fault_id, kind, start, heal) on
    the monotonic clock; `due(frame_index)` is when a frame was due (None: the replay had no clock)."""
    rows = []
    for frame in frames:
        mine = sorted(writes.get(frame.index, ()), key=lambda w: w.write_mono_ns)
        when = None if due is None else due(frame.index)
        rows.append(
            {
                "frame_index": frame.index,
                "first_update_id": frame.first_update_id,
                "last_update_id": frame.last_update_id,
                "due_ms": None if when is None else _ms(when - at_ns),
                "fate": _fate(frame, mine, at_ns, when, windows),
                "writes": [
                    {"client_id": w.client_id, "ms": _ms(w.write_mono_ns - at_ns), "fault": w.fault} for w in mine
                ],
            }
        )
    starts = [w.write_mono_ns for row in frames for w in writes.get(row.index, ())]
    if due is not None:
        starts += [due(frame.index) for frame in frames]
    since = min(starts, default=at_ns)
    faults = [
        {"fault_id": fault_id, "kind": kind, "start_ms": _ms(start - at_ns), "heal_ms": _ms(heal - at_ns)}
        for fault_id, kind, start, heal in windows
        if start <= at_ns and heal >= since
    ]
    return {"frames": rows, "faults": faults}


def _fate(
    frame: _Ids, writes: Sequence[Write], at_ns: int, due_ns: int | None, windows: Sequence[tuple[str, str, int, int]]
) -> str:
    """One phrase: what became of the frame, as far as the subject's book at `at_ns` could see it."""
    if not writes:
        if due_ns is not None:
            for fault_id, kind, start, heal in windows:
                if kind in LOST_BY and start <= due_ns <= heal:
                    return f"dropped by {fault_id or kind}"
        return "never sent (no connection subscribed, or the fault plan removed it)"
    intact = [w for w in writes if not (w.fault or "").startswith("corrupt")]
    if not intact:
        return "corrupted on every write"
    if all(w.write_mono_ns >= at_ns for w in intact):
        return "arrived only after the divergent book"
    faults = {w.fault for w in writes if w.fault}
    notes = []
    if len(intact) < len(writes):
        notes.append("corrupted once")
    if "duplicate" in faults or len(writes) > len({w.client_id for w in writes}):
        notes.append("duplicated")
    first_each = {w.client_id: w for w in reversed(intact)}.values()  # a late duplicate is no reorder
    if "reorder" in faults or any(
        w.highest_before is not None and w.highest_before >= frame.last_update_id for w in first_each
    ):
        notes.append("reordered (sent after a later update)")
    for kind, word in (("delay", "delayed"), ("burst", "held in a burst")):
        if kind in faults:
            notes.append(word)
    return ", ".join(notes) if notes else "sent intact"


def _ms(ns: int) -> float:
    return round(ns / 1e6, 3)
