"""The schedule a fault plan hands the server, made while it is walked.

Clean sends come from the frames one at a time; each fault's stage (replayer/faults/work.py) changes,
removes or adds sends as they stream by, holding back only the few it is moving; the control entries
(O(faults), plus a Withheld marker per removed send) are merged in by offset, before the sends due
then. Walking twice gives the same entries, so the schedule can be replayed (`serve --loop`) and
measured (`len`) without ever being held in memory: a 10-million-frame recording's plan keeps what
its faults touch, not a Send per frame.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from dataclasses import replace
from itertools import islice

from replayer.faults.work import FaultStage, Slot
from replayer.timeline import Frame, Send, TimelineEntry


class Schedule(Collection[TimelineEntry]):
    """Sorted by offset; at one offset, control entries (in the order the faults made them) come
    before sends. Iterating walks it again from the start; `len` is known from the plan's build walk."""

    __slots__ = ("_controls", "_frames", "_length", "_stages")

    def __init__(
        self, frames: Sequence[Frame], stages: Sequence[FaultStage], controls: Sequence[TimelineEntry], length: int
    ) -> None:
        self._frames = frames
        self._stages = tuple(stage for stage in stages if type(stage).apply is not FaultStage.apply)
        self._controls = tuple(controls)
        self._length = length

    def __len__(self) -> int:
        return self._length

    def __contains__(self, entry: object) -> bool:
        return any(entry == mine for mine in self)

    def __iter__(self) -> Iterator[TimelineEntry]:
        return merge_controls(self._sends(self._frames, self._stages, build=False), self._controls)

    def __getitem__(self, index: int) -> TimelineEntry:
        """The entry at `index` (a walk to it: for tests and small plans)."""
        if index < 0:
            index += self._length
        for entry in islice(self, index, None):
            return entry
        raise IndexError(index)

    @staticmethod
    def _sends(frames: Sequence[Frame], stages: Sequence[FaultStage], build: bool) -> Iterator[Send]:
        if not stages:
            return (Send(f.offset_ns, f, f.payload) for f in frames)
        slots: Iterator[Slot] = (Slot(f.offset_ns, Send(f.offset_ns, f, f.payload)) for f in frames)
        for stage in stages:
            slots = stage.apply(slots, build)
        return (s.send if s.send.offset_ns == s.offset_ns else replace(s.send, offset_ns=s.offset_ns) for s in slots)


def build_walk(frames: Sequence[Frame], stages: Sequence[FaultStage]) -> Iterator[Send]:
    """The sends of the plan's one build walk: every stage counts what it armed as it goes."""
    active = [stage for stage in stages if type(stage).apply is not FaultStage.apply]
    return Schedule._sends(frames, active, build=True)


def merge_controls(sends: Iterator[Send], controls: Sequence[TimelineEntry]) -> Iterator[TimelineEntry]:
    """Sends in order with the sorted control entries put in before the sends due at their offset."""
    pending, total = 0, len(controls)
    for send in sends:
        while pending < total and controls[pending].offset_ns <= send.offset_ns:
            yield controls[pending]
            pending += 1
        yield send
    yield from controls[pending:]


def clean_schedule(frames: Sequence[Frame]) -> Schedule:
    """The schedule with no faults: every frame once, at its recorded time."""
    return Schedule(frames, (), (), len(frames))
