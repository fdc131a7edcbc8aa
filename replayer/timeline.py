"""The replay timeline: the clean frames of a recording, and the faulted schedule the server walks.

A fault plan (replayer/faults) is a pure function from clean frames to a list of TimelineEntry.
The fake server walks that list on one replay clock for all clients: a Send goes to every client
subscribed to its stream, a control entry changes how the server behaves from that moment on.
Offsets are nanoseconds from the start of replay at speed 1 (the intended send time).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

UNTIL_HEALED = 2**31 - 1
"""A `count` that lasts until the fault's heal entry sets it back (RefuseHandshakes, RestBehaviour)."""

UNLIMITED = 2**62
"""A `ClientBufferLimit.max_bytes` that no client reaches: the heal entry of a slow-consumer fault."""


@dataclass(frozen=True, slots=True)
class Frame:
    """One recorded venue frame, in combined-stream form (`{"stream":..,"data":..}`) as recorded."""

    index: int
    offset_ns: int
    stream: str
    payload: bytes
    first_update_id: int | None = None
    last_update_id: int | None = None


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


@dataclass(frozen=True, slots=True)
class Disconnect:
    """End every client connection: a close frame with `code`, an abort without one, or a TCP reset."""

    offset_ns: int
    mode: Literal["close", "abort", "reset"]
    code: int = 1000
    reason: str = ""
    fault: str | None = None


@dataclass(frozen=True, slots=True)
class Stall:
    """Send nothing for `duration_ns`, sockets open; without `answer_pings` the peer looks half-open."""

    offset_ns: int
    duration_ns: int
    answer_pings: bool = True
    fault: str | None = None


@dataclass(frozen=True, slots=True)
class RefuseHandshakes:
    """Answer the next `count` WebSocket handshakes with HTTP `status` instead of upgrading.

    `count` replaces what is left of an earlier refusal; `count=0` (the heal) upgrades again.
    """

    offset_ns: int
    status: int
    count: int
    fault: str | None = None


@dataclass(frozen=True, slots=True)
class RestBehaviour:
    """How the next `count` REST depth requests are answered (`normal` restores the default).

    stale: a book older than frames already sent; too_new: a book ahead of frames sent; barely_stale:
    a book just older than the first depth frame the requesting client's newest connection was sent;
    slow: the right book after `delay_ns`; error: HTTP `status` with the venue's error body.
    `lag_frames` is how many depth frames behind (stale) or ahead of (too_new) the frames sent the
    book is, or before that first frame (barely_stale). Each entry replaces the one before; a
    fault's heal is a `normal` entry.
    """

    offset_ns: int
    mode: Literal["normal", "stale", "too_new", "barely_stale", "slow", "error"]
    count: int = 1
    status: int = 200
    delay_ns: int = 0
    lag_frames: int = 0
    fault: str | None = None


@dataclass(frozen=True, slots=True)
class ClientBufferLimit:
    """A client whose unsent backlog exceeds `max_bytes` is dropped, as a venue drops slow readers.

    The heal entry carries UNLIMITED.
    """

    offset_ns: int
    max_bytes: int
    fault: str | None = None


TimelineEntry = Send | Disconnect | Stall | RefuseHandshakes | RestBehaviour | ClientBufferLimit


def clean_schedule(frames: list[Frame]) -> list[TimelineEntry]:
    """The schedule with no faults: every frame once, at its recorded time."""
    return [Send(frame.offset_ns, frame, frame.payload) for frame in frames]
