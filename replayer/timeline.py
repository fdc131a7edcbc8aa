"""The replay timeline: the clean frames of a recording, and the faulted schedule the server walks.

A fault plan (replayer/faults) is a pure function from clean frames to a Schedule of TimelineEntry,
made while it is walked (a Send per frame is never held for the whole recording).
The fake server walks it on one replay clock for all clients: a Send goes to every client
subscribed to its stream, a control entry changes how the server behaves from that moment on.
Offsets are nanoseconds from the start of replay at speed 1 (the intended send time).

Entries a fault made carry `tags`: the armed units of the fault they can serve (docs/report-schema.md,
"Faults served"). The server records a tag when the entry actually did something to a client, so the
report counts faults served apart from faults armed.

Frame and Send, made once per frame on every walk, are plain slotted dataclasses compared and hashed
by their fields like the frozen ones, and never changed once made; they are not `frozen` because a
frozen dataclass's `__init__` sets each field through `object.__setattr__`: a Send cost 0.85 us to make
frozen and 0.11 us so (CPython 3.11), and a walk of a clean schedule is little else.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Literal, Protocol, overload

from harness.venues.dialect import ChainIds

UNTIL_HEALED = 2**31 - 1
"""A `count` that lasts until the fault's heal entry sets it back (RefuseHandshakes, RestBehaviour)."""

UNLIMITED = 2**62
"""A `ClientBufferLimit.max_bytes` that no client reaches: the heal entry of a slow-consumer fault."""


@dataclass(frozen=True, slots=True)
class FaultTag:
    """One armed unit of a fault: the `unit`-th of fault `fault_id` (of `kind`).

    A unit is served when the server has recorded every one of its parts (FaultPlan.units lists them);
    only an exchange restart with a REST outage has two (`ws`: it closed a client, `rest`: it refused a
    snapshot after the WebSocket was back), every other unit has the one part "".
    """

    kind: str
    fault_id: str
    unit: int
    part: str = ""


Tags = tuple[FaultTag, ...]


@dataclass(slots=True, unsafe_hash=True)
class Frame:
    """One recorded venue frame, its payload as recorded, with what the venue's dialect says of it.

    A book frame carries its chain ids (`first_update_id..last_update_id`, the `prev_id` link where
    the venue sends one, `snapshot` for an in-stream snapshot); any other frame has None there.
    `symbol` is the symbol its stream carries (None for a stream that names none). A value, never
    changed once made, but not `frozen`: see the module docstring.
    """

    index: int
    offset_ns: int
    stream: str
    payload: bytes
    first_update_id: int | None = None
    last_update_id: int | None = None
    symbol: str | None = None
    prev_id: int | None = None
    snapshot: bool = False

    @property
    def chain(self) -> ChainIds | None:
        """The frame's place in its symbol's update chain; None for a frame that changes no book."""
        if self.first_update_id is None or self.last_update_id is None:
            return None
        return ChainIds(self.symbol or "", self.first_update_id, self.last_update_id, self.prev_id, self.snapshot)


@dataclass(slots=True, unsafe_hash=True)
class Send:
    """Put `payload` on the wire at `offset_ns`; `payload` is `frame.payload` unless a fault changed it.

    `binary` sends it as a binary frame: a corrupt payload that is not valid UTF-8 goes that way,
    because a text frame with invalid UTF-8 is a protocol error on which client libraries close (1007).
    A value, never changed once made (a stage that changes a send makes a new one), but not `frozen`:
    see the module docstring.
    """

    offset_ns: int
    frame: Frame
    payload: bytes
    fault: str | None = None
    binary: bool = False
    tags: Tags = ()


@dataclass(frozen=True, slots=True)
class Disconnect:
    """End every client connection: a close frame with `code`, an abort without one, or a TCP reset.

    Served when it ended at least one open connection (a half-open one does not count: it hears nothing).
    """

    offset_ns: int
    mode: Literal["close", "abort", "reset"]
    code: int = 1000
    reason: str = ""
    fault: str | None = None
    tags: Tags = ()


@dataclass(frozen=True, slots=True)
class Stall:
    """Send nothing for `duration_ns`, sockets open; without `answer_pings` the peer looks half-open.

    Served (its tags) when at least one connection was open at its start.
    """

    offset_ns: int
    duration_ns: int
    answer_pings: bool = True
    fault: str | None = None
    tags: Tags = ()


@dataclass(frozen=True, slots=True)
class RefuseHandshakes:
    """Answer the next `count` WebSocket handshakes with HTTP `status` instead of upgrading.

    `count` replaces what is left of an earlier refusal; `count=0` (the heal) upgrades again. The k-th
    refusal under this entry serves `tags[k]` (the last tag for any beyond).
    """

    offset_ns: int
    status: int
    count: int
    fault: str | None = None
    tags: Tags = ()


@dataclass(frozen=True, slots=True)
class RestBehaviour:
    """How the next `count` REST depth requests are answered (`normal` restores the default).

    stale: a book older than frames already sent; too_new: a book ahead of frames sent; barely_stale:
    a book just older than the first depth frame the requesting client's newest connection was sent;
    slow: the right book after `delay_ns`; error: HTTP `status` with the venue's error body.
    `lag_frames` is how many depth frames behind (stale) or ahead of (too_new) the frames sent the
    book is, or before that first frame (barely_stale). Each entry replaces the one before; a
    fault's heal is a `normal` entry. The k-th request answered under this entry serves `tags[k]` (the
    last tag for any beyond).
    """

    offset_ns: int
    mode: Literal["normal", "stale", "too_new", "barely_stale", "slow", "error"]
    count: int = 1
    status: int = 200
    delay_ns: int = 0
    lag_frames: int = 0
    fault: str | None = None
    tags: Tags = ()


@dataclass(frozen=True, slots=True)
class ClientBufferLimit:
    """A client whose unsent backlog exceeds `max_bytes` is dropped, as a venue drops slow readers.

    The heal entry carries UNLIMITED.
    """

    offset_ns: int
    max_bytes: int
    fault: str | None = None
    tags: Tags = ()


@dataclass(frozen=True, slots=True)
class HalfOpen:
    """Every connection open now goes silent for good: no frame, ping or pong reaches it or leaves it
    again (the venue stops reading it and sends it nothing) until the server stops, as a connection
    whose path died without a FIN. Connections made later are served normally.

    Served when at least one connection was open.
    """

    offset_ns: int
    fault: str | None = None
    tags: Tags = ()


@dataclass(frozen=True, slots=True)
class Withheld:
    """A send a fault took off the schedule (drop, gap), kept as a marker so that the server can tell
    whether anyone missed it: served when a connection was subscribed to `stream` at this moment."""

    offset_ns: int
    stream: str
    fault: str | None = None
    tags: Tags = ()


TimelineEntry = Send | Disconnect | Stall | HalfOpen | RefuseHandshakes | RestBehaviour | ClientBufferLimit | Withheld


@dataclass(slots=True)
class Slot:
    """A Send on its way through the fault stages: `offset_ns` is where it is scheduled now; `copy` is
    0 for the frame's original send and 1 for a duplicate."""

    offset_ns: int
    send: Send
    copy: int = 0

    def mark(self, kind: str) -> None:
        """Labels the send with the first fault that touched it; only `corrupt` relabels (mangled matters most)."""
        if self.send.fault is None:
            self.touch(kind, None)

    def tag(self, tag: FaultTag) -> None:
        """Adds an armed unit that this send serves when it reaches a client (several faults may touch it)."""
        self.touch(None, tag)

    def touch(self, kind: str | None, tag: FaultTag | None) -> None:
        """`mark(kind)` and `tag(tag)` in one new Send (the stages do both for every frame they move)."""
        send = self.send
        self.send = Send(
            send.offset_ns,
            send.frame,
            send.payload,
            send.fault if send.fault is not None or kind is None else kind,
            send.binary,
            send.tags if tag is None else (*send.tags, tag),
        )

    def scheduled(self) -> Send:
        """The send, at the offset it is scheduled for now."""
        send = self.send
        if send.offset_ns == self.offset_ns:
            return send
        return Send(self.offset_ns, send.frame, send.payload, send.fault, send.binary, send.tags)


class SendStage(Protocol):
    """A fault's stage (replayer/faults/work.py): slots in schedule order in, its schedule out; `build`
    on the plan's one counting walk."""

    def apply(self, slots: Iterator[Slot], build: bool) -> Iterator[Slot]: ...


class Schedule(Sequence[TimelineEntry]):
    """The entries the server walks, made while they are walked: clean sends from the frames one at a
    time, through each fault's stage, with the plan's control entries (few: O(faults), and a Withheld
    per removed send) merged in. Sorted by offset; at one offset, control entries (in the order the
    faults made them) come before sends. Each iteration walks it again from the start and gives the
    same entries (`serve --loop` replays it); `len` is counted by the plan's build walk."""

    __slots__ = ("_controls", "_frames", "_length", "_stages")

    def __init__(
        self, frames: Sequence[Frame], stages: Sequence[SendStage], controls: Sequence[TimelineEntry], length: int
    ) -> None:
        self._frames = frames
        self._stages = tuple(stages)
        self._controls = tuple(controls)
        self._length = length

    def __len__(self) -> int:
        return self._length

    @property
    def controls(self) -> tuple[TimelineEntry, ...]:
        """The entries that are not sends, in schedule order, without a walk."""
        return self._controls

    def __eq__(self, other: object) -> bool:
        """Entry by entry, against another Schedule or a list of entries (tests compare plans)."""
        if not isinstance(other, Schedule | list | tuple):
            return NotImplemented
        return len(self) == len(other) and all(mine == theirs for mine, theirs in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]

    def __iter__(self) -> Iterator[TimelineEntry]:
        sends = walk_sends(self._frames, self._stages, build=False)
        return merge_controls(sends, self._controls) if self._controls else sends

    @overload
    def __getitem__(self, index: int) -> TimelineEntry: ...
    @overload
    def __getitem__(self, index: slice) -> list[TimelineEntry]: ...
    def __getitem__(self, index: int | slice) -> TimelineEntry | list[TimelineEntry]:
        """The entry at `index`, or a list for a slice: a walk to it, for tests and small plans."""
        if isinstance(index, slice):
            return list(islice(self, *index.indices(self._length)))
        if index < 0:
            index += self._length
        for entry in islice(self, index, None):
            return entry
        raise IndexError(index)


def walk_sends(frames: Sequence[Frame], stages: Sequence[SendStage], build: bool) -> Iterator[Send]:
    """Clean sends made from the frames one at a time, through each stage in turn."""
    if not stages:
        return (Send(f.offset_ns, f, f.payload) for f in frames)
    slots: Iterator[Slot] = (Slot(f.offset_ns, Send(f.offset_ns, f, f.payload)) for f in frames)
    for stage in stages:
        slots = stage.apply(slots, build)
    return (slot.scheduled() for slot in slots)


def control_entries(schedule: Sequence[TimelineEntry]) -> Iterable[TimelineEntry]:
    """The entries of `schedule` that may not be sends: a Schedule's controls without a walk."""
    return schedule.controls if isinstance(schedule, Schedule) else schedule


def merge_controls(sends: Iterable[Send], controls: Sequence[TimelineEntry]) -> Iterator[TimelineEntry]:
    """Sends in order with the sorted control entries put in before the sends due at their offset: one
    comparison per send while controls are pending, and none after the last one."""
    sends = iter(sends)
    pending, total = 0, len(controls)
    if not total:
        yield from sends
        return
    due = controls[0].offset_ns
    for send in sends:
        if due <= send.offset_ns:
            while pending < total and controls[pending].offset_ns <= send.offset_ns:
                yield controls[pending]
                pending += 1
            if pending == total:
                yield send
                yield from sends
                return
            due = controls[pending].offset_ns
        yield send
    yield from controls[pending:]


def clean_schedule(frames: Sequence[Frame]) -> Schedule:
    """The schedule with no faults: every frame once, at its recorded time."""
    return Schedule(frames, (), (), len(frames))
