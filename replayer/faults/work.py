"""What each fault is handed while the plan is built, and the pieces its stage keeps.

A fault decides from the clean frames (their counts, offsets and ids) and its own random stream,
never from what earlier faults did, so its decisions stay the same when another fault is added. What
earlier faults removed is known from their decisions alone (`Present`), since a removal takes every
send of a frame. Applying a decision happens in the fault's stage (`FaultStage.apply`), one slot at a
time as the schedule streams by (replayer/timeline.py, Schedule), so a plan keeps only what its faults
touch, never one object per frame.
"""

from __future__ import annotations

import random
from array import array
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, overload

from replayer.timeline import FaultTag, Frame, Slot, TimelineEntry


@dataclass(frozen=True, slots=True)
class FaultWindow:
    """When a fault acted: it starts at `start_ns`, its last action is at `stop_ns`, and from `heal_ns`
    the server behaves normally again, so the checker measures the time to a correct book from here."""

    kind: str
    start_ns: int
    stop_ns: int
    heal_ns: int
    fault_id: str = ""


@dataclass(frozen=True, slots=True)
class FaultContext:
    """One fault, resolved against the recording: its window in nanoseconds and its own random stream
    (`stream_seed` makes the same stream again for a stage that draws while the schedule is walked)."""

    kind: str
    fault_id: str
    start_ns: int
    stop_ns: int
    params: Mapping[str, Any]
    stream_seed: str

    def stream(self) -> random.Random:
        """The fault's random stream from its start (each call a new one)."""
        return random.Random(self.stream_seed)

    def eligible(self, frame: Frame, *, inclusive: bool = False, frames: str | None = None) -> bool:
        """A clean frame due in the fault's window, of the kinds its `frames` parameter names. Asked of
        every frame by each fault's decision pass: the window is checked first, the parameter only inside."""
        if not self.start_ns <= frame.offset_ns < self.stop_ns + (1 if inclusive else 0):
            return False
        return frame.first_update_id is not None or (frames or self.params.get("frames", "depth")) != "depth"


@dataclass(frozen=True, slots=True)
class ArmedUnit:
    """One unit a fault armed (counted in the report's `faults_armed`), and the parts that serve it."""

    kind: str
    fault_id: str
    unit: int
    parts: frozenset[str] = frozenset({""})


class ArmedUnits(Sequence[ArmedUnit]):
    """Every unit the plan armed, in fault order then unit order; a fault's units are numbered 0..n-1,
    so this keeps a count per fault and makes the ArmedUnit on demand (a delay arms one per frame)."""

    __slots__ = ("_faults", "_starts")

    def __init__(self, faults: Iterable[tuple[str, str, int, frozenset[str]]]) -> None:
        self._faults = [f for f in faults if f[2]]
        self._starts = [0]
        for fault in self._faults:
            self._starts.append(self._starts[-1] + fault[2])

    def __len__(self) -> int:
        return self._starts[-1]

    @overload
    def __getitem__(self, index: int) -> ArmedUnit: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[ArmedUnit]: ...
    def __getitem__(self, index: int | slice) -> ArmedUnit | Sequence[ArmedUnit]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        at = bisect_left(self._starts, index + 1) - 1
        kind, fault_id, _, parts = self._faults[at]
        return ArmedUnit(kind, fault_id, index - self._starts[at], parts)

    def __iter__(self) -> Iterator[ArmedUnit]:
        for kind, fault_id, count, parts in self._faults:
            for unit in range(count):
                yield ArmedUnit(kind, fault_id, unit, parts)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ArmedUnits | list | tuple):
            return NotImplemented
        return len(self) == len(other) and all(mine == theirs for mine, theirs in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]

    def counts(self) -> Iterator[tuple[str, int]]:
        """(kind, units) per fault that armed any."""
        return ((kind, count) for kind, _, count, _ in self._faults)


class IndexSet:
    """Frame indices a fault touches: sorted in an array (8 bytes each) for `position`, an index's
    rank (a fault's unit number where it arms one unit per frame), and a bit per frame between the
    first and the last of them for `in`, which every stage asks of every send that goes by."""

    __slots__ = ("_bits", "_first", "_items")

    def __init__(self, indices: Iterable[int] = ()) -> None:
        self._items = array("q", sorted(indices))
        self._first = self._items[0] if self._items else 0
        self._bits = bytearray((self._items[-1] - self._first) // 8 + 1 if self._items else 0)
        for index in self._items:
            offset = index - self._first
            self._bits[offset >> 3] |= 1 << (offset & 7)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, index: object) -> bool:
        offset = index - self._first  # type: ignore[operator]
        return 0 <= offset < len(self._bits) * 8 and bool(self._bits[offset >> 3] >> (offset & 7) & 1)

    def position(self, index: int) -> int:
        """The index's rank among the set's, or -1 when it is not in the set."""
        if index not in self:
            return -1
        return bisect_left(self._items, index)

    def bits(self) -> tuple[bytearray, int]:
        """(bitmap, first index) for a stage's loop to test `in` inline: `0 <= i - first < 8 * len(bitmap)
        and bitmap[(i - first) >> 3] >> ((i - first) & 7) & 1`."""
        return self._bits, self._first


Present = Callable[[Frame], bool]
"""Whether a frame still has its sends when a fault runs (no earlier fault removed it)."""


@dataclass(slots=True)
class Span:
    """One window over the (offset, heal) pairs a fault touched, counted as they stream by."""

    count: int = 0
    start: int = 0
    stop: int = 0
    heal: int = 0

    def add(self, at_ns: int, heal_ns: int) -> None:
        if not self.count:
            self.start = self.stop = at_ns
            self.heal = heal_ns
        else:
            self.start = min(self.start, at_ns)
            self.stop = max(self.stop, at_ns)
            self.heal = max(self.heal, heal_ns)
        self.count += 1

    def windows(self, ctx: FaultContext) -> list[FaultWindow]:
        if not self.count:
            return []
        return [FaultWindow(ctx.kind, self.start, self.stop, max(self.stop, self.heal), ctx.fault_id)]


@dataclass(eq=False)
class FaultStage:
    """One fault in the plan: its control entries (in the order made), and how it changes the sends.

    `apply` turns the schedule's slots, in schedule order, into this fault's schedule, in order; with
    `build` it also counts what it armed and where (`armed`, `windows`, `withheld`): the plan walks
    the schedule once so, then every walk of `FaultPlan.entries` runs `apply` again.
    """

    ctx: FaultContext
    controls: list[TimelineEntry] = field(default_factory=list)
    windows: list[FaultWindow] = field(default_factory=list)
    armed: int = 0
    parts: tuple[str, ...] = ("",)

    def removes(self, frame: Frame) -> bool:
        """Whether this fault takes every send of `frame` off the schedule."""
        return False

    def apply(self, slots: Iterator[Slot], build: bool) -> Iterator[Slot]:
        return slots

    def finish(self) -> None:
        """After the build walk: turn what was counted into windows and controls."""

    def withheld(self) -> list[TimelineEntry]:
        """Markers for the sends this fault removed, made by the build walk (drop, gap)."""
        return []

    def arm(self, count: int = 1) -> FaultTag:
        """Arms `count` more units; returns the first one's tag."""
        self.armed += count
        return self.tag(self.armed - count)

    def tag(self, unit: int, part: str = "") -> FaultTag:
        return FaultTag(self.ctx.kind, self.ctx.fault_id, unit, part or self.parts[0])

    def record(self, count: int, start_ns: int, stop_ns: int, heal_ns: int) -> None:
        """A window for the checker, when the fault armed anything (`count` units) in it."""
        if count:
            self.windows.append(FaultWindow(self.ctx.kind, start_ns, stop_ns, heal_ns, self.ctx.fault_id))


def spread(rng: random.Random, start_ns: int, stop_ns: int, count: int, length_ns: int = 0) -> list[int]:
    """`count` start times in the window, one in each of `count` equal slots, each leaving `length_ns` room.

    Stratified rather than uniform, so a scenario's episodes never pile up on one moment.
    """
    slot = (stop_ns - start_ns) / count
    room = max(0.0, slot - length_ns)
    return [start_ns + round(i * slot + rng.random() * room) for i in range(count)]
