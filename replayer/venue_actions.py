"""What the fake venue's core asks its shell to do: the outputs of replayer/venue_core.py.

Each is a plain value naming a connection by its id; the shell (replayer/server.py) carries them out in
the order given and reports back what the core must know (a frame written, a connection closed, how much
a connection has buffered), so every decision stays in the core and every byte and clock in the shell.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.venues.wire import HttpReply
from replayer.timeline import Send
from replayer.venue_records import SnapshotRecord


@dataclass(slots=True, unsafe_hash=True)
class Write:
    """Queue `payload` on connection `conn`, after what is queued already.

    `entry` is the recorded Send it came from (None for a reply, an in-stream snapshot or a derived
    frame): once it is handed to the socket the shell calls `VenueCore.written`. `intended_mono_ns` is
    when the schedule meant it to go out. Made per frame and connection, so not `frozen` (though never
    changed), like a Send (replayer/timeline.py says why).
    """

    conn: int
    payload: bytes
    text: bool = True
    entry: Send | None = None
    intended_mono_ns: int = 0


@dataclass(frozen=True, slots=True)
class Close:
    """Close `conn` with a close frame: after what is queued, or at once when `discard` (what was queued is
    dropped, as a venue cuts a client off)."""

    conn: int
    code: int
    reason: str
    discard: bool = False


@dataclass(frozen=True, slots=True)
class Abort:
    """Drop `conn` without a close frame (what was queued is dropped); `reset` sends a TCP RST."""

    conn: int
    reset: bool = False


@dataclass(frozen=True, slots=True)
class Pause:
    """Stop reading `conn` and sending it keepalive pings (its pings go unanswered); `for_good` also drops
    what is queued, and nothing is written to it again (a half-open connection)."""

    conn: int
    for_good: bool = False


@dataclass(frozen=True, slots=True)
class Resume:
    """Read `conn` and keep it alive again, after a Pause that was not for good."""

    conn: int


@dataclass(frozen=True, slots=True)
class CheckBacklog:
    """Call `VenueCore.backlog(conn, ..., since_ns=since_ns)` again at `at_mono_ns`: a grace period ends then."""

    conn: int
    at_mono_ns: int
    since_ns: int


@dataclass(frozen=True, slots=True)
class CheckIdle:
    """Call `VenueCore.idle(conn, now)` at `at_mono_ns`: the venue's idle limit (`IdleClose`) may end then."""

    conn: int
    at_mono_ns: int


@dataclass(frozen=True, slots=True)
class Wait:
    """Hold the schedule for `seconds` of wall time (a Stall), then call `VenueCore.stall_ended`."""

    seconds: float


@dataclass(frozen=True, slots=True)
class ClockStarted:
    """The replay clock started at `mono_ns` (the first subscription, or `start_clock`): the walker may go."""

    mono_ns: int


@dataclass(frozen=True, slots=True)
class Note:
    """One line for the operator's log (a connection, a subscription, a session)."""

    line: str


Action = Write | Close | Abort | Pause | Resume | CheckBacklog | CheckIdle | Wait | ClockStarted | Note


@dataclass(frozen=True, slots=True)
class HttpAnswer:
    """The answer to a plain HTTP request, sent `delay_s` from now (a slow REST fault).

    When `snapshot` is set, the shell calls `VenueCore.snapshot_delivered(snapshot, now)` as it sends it.
    """

    reply: HttpReply
    delay_s: float = 0.0
    snapshot: SnapshotRecord | None = None
