"""The schedule while faults are being applied to it, and what each fault is handed.

Faults run one after another over one Work. Each decides from the clean frames and its own random
stream, never from what earlier faults did, so its decisions stay the same when another fault is added;
only applying a decision looks at the current slots (a frame another fault dropped cannot be delayed).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from replayer.timeline import FaultTag, Frame, Send, TimelineEntry, Withheld


@dataclass(frozen=True, slots=True)
class FaultWindow:
    """When a fault acted: it starts at `start_ns`, its last action is at `stop_ns`, and from `heal_ns`
    the server behaves normally again, so the checker measures the time to a correct book from here."""

    kind: str
    start_ns: int
    stop_ns: int
    heal_ns: int
    fault_id: str = ""


@dataclass(slots=True)
class Slot:
    """A Send being scheduled. `rank` orders sends due at the same offset (Work.normalize renumbers it);
    `copy` is 0 for the frame's original send and 1 for a duplicate."""

    offset_ns: int
    rank: tuple[int, int]
    send: Send
    copy: int = 0

    def mark(self, kind: str) -> None:
        """Labels the send with the first fault that touched it; only `corrupt` relabels (mangled matters most)."""
        if self.send.fault is None:
            self.send = replace(self.send, fault=kind)

    def tag(self, tag: FaultTag) -> None:
        """Adds an armed unit that this send serves when it reaches a client (several faults may touch it)."""
        self.send = replace(self.send, tags=(*self.send.tags, tag))


@dataclass(frozen=True, slots=True)
class FaultContext:
    """One fault, resolved against the recording: its window in nanoseconds and its own random stream."""

    kind: str
    fault_id: str
    start_ns: int
    stop_ns: int
    params: Mapping[str, Any]
    rng: random.Random


@dataclass(frozen=True, slots=True)
class ArmedUnit:
    """One unit a fault armed (counted in the report's `faults_armed`), and the parts that serve it."""

    kind: str
    fault_id: str
    unit: int
    parts: frozenset[str] = frozenset({""})


@dataclass(slots=True)
class Work:
    frames: Sequence[Frame]
    slots: list[Slot]
    controls: list[TimelineEntry] = field(default_factory=list)
    units: list[ArmedUnit] = field(default_factory=list)
    windows: list[FaultWindow] = field(default_factory=list)
    _next_unit: Counter[str] = field(default_factory=Counter)

    @classmethod
    def clean(cls, frames: Sequence[Frame]) -> Work:
        return cls(frames, [Slot(f.offset_ns, (f.index, 0), Send(f.offset_ns, f, f.payload)) for f in frames])

    def eligible(self, ctx: FaultContext, *, inclusive: bool = False) -> list[Frame]:
        """Clean frames due in the fault's window, of the kinds its `frames` parameter names."""
        depth_only = ctx.params.get("frames", "depth") == "depth"
        return [
            f
            for f in self.frames
            if ctx.start_ns <= f.offset_ns < ctx.stop_ns + (1 if inclusive else 0)
            and (f.first_update_id is not None or not depth_only)
        ]

    def primaries(self) -> dict[int, Slot]:
        """Frame index -> the slot of its original send, for frames still scheduled."""
        return {s.send.frame.index: s for s in self.slots if s.copy == 0}

    def remove(self, indices: set[int]) -> list[Slot]:
        """Takes every send (copies too) of these frames off the schedule; returns what it removed."""
        removed = [s for s in self.slots if s.send.frame.index in indices]
        self.slots = [s for s in self.slots if s.send.frame.index not in indices]
        return removed

    def normalize(self) -> None:
        """Puts the slots in schedule order and renumbers their ranks 0..n-1, so that the next fault
        can slot a send in right after another one with rank `(r, 1)`."""
        self.slots.sort(key=lambda s: (s.offset_ns, s.rank))
        for position, slot in enumerate(self.slots):
            slot.rank = (position, 0)

    def arm(self, ctx: FaultContext, parts: tuple[str, ...] = ("",)) -> FaultTag:
        """Arms one unit of this fault; returns its tag for the first part (`replace(tag, part=...)` for others)."""
        unit = self._next_unit[ctx.fault_id]
        self._next_unit[ctx.fault_id] += 1
        self.units.append(ArmedUnit(ctx.kind, ctx.fault_id, unit, frozenset(parts)))
        return FaultTag(ctx.kind, ctx.fault_id, unit, parts[0])

    def withhold(self, ctx: FaultContext, removed: list[Slot], tag: FaultTag) -> None:
        """Marks where removed sends would have gone out, so the server can tell whether anyone missed them."""
        for slot in removed:
            self.control(Withheld(slot.offset_ns, slot.send.frame.stream, fault=ctx.kind, tags=(tag,)))

    def record(self, ctx: FaultContext, count: int, start_ns: int, stop_ns: int, heal_ns: int) -> None:
        """A window for the checker, when the fault armed anything (`count` units) in it."""
        if count:
            self.windows.append(FaultWindow(ctx.kind, start_ns, stop_ns, heal_ns, ctx.fault_id))

    def control(self, *entries: TimelineEntry) -> None:
        """Control entries run in the order added when they share an offset, before that offset's sends."""
        self.controls.extend(entries)


def spread(rng: random.Random, start_ns: int, stop_ns: int, count: int, length_ns: int = 0) -> list[int]:
    """`count` start times in the window, one in each of `count` equal slots, each leaving `length_ns` room.

    Stratified rather than uniform, so a scenario's episodes never pile up on one moment.
    """
    slot = (stop_ns - start_ns) / count
    room = max(0.0, slot - length_ns)
    return [start_ns + round(i * slot + rng.random() * room) for i in range(count)]
