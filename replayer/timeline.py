"""The replay timeline: the clean frames of a recording, and the faulted schedule the server walks.

A fault plan (replayer/faults) is a pure function from clean frames to a list of TimelineEntry.
The fake server walks that list on one replay clock for all clients: a Send goes to every client
subscribed to its stream, a control entry changes how the server behaves from that moment on.
Offsets are nanoseconds from the start of replay at speed 1 (the intended send time).

Entries a fault made carry `tags`: the armed units of the fault they can serve (docs/report-schema.md,
"Faults served"). The server records a tag when the entry actually did something to a client, so the
report counts faults served apart from faults armed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

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


@dataclass(frozen=True, slots=True)
class Frame:
    """One recorded venue frame, its payload as recorded, with what the venue's dialect says of it.

    A book frame carries its chain ids (`first_update_id..last_update_id`, the `prev_id` link where
    the venue sends one, `snapshot` for an in-stream snapshot); any other frame has None there.
    `symbol` is the symbol its stream carries (None for a stream that names none).
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


@dataclass(frozen=True, slots=True)
class Send:
    """Put `payload` on the wire at `offset_ns`; `payload` is `frame.payload` unless a fault changed it.

    `binary` sends it as a binary frame: a corrupt payload that is not valid UTF-8 goes that way,
    because a text frame with invalid UTF-8 is a protocol error on which client libraries close (1007).
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


def clean_schedule(frames: Iterable[Frame]) -> list[TimelineEntry]:
    """The schedule with no faults: every frame once, at its recorded time."""
    return [Send(frame.offset_ns, frame, frame.payload) for frame in frames]
