"""What the fake venue keeps about what it did, for the checker and the report.

Filled by the pure core (replayer/venue_core.py) from what the shell tells it happened: a frame handed
to a socket, a connection closed, a REST snapshot delivered. Timestamps are the shell's monotonic clock.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class SendRecord:
    """One frame written to one client: intended = clock start + offset / speed; write = handed to the socket.

    `fault` is the Send's fault (a corrupted or duplicated payload), None for a clean frame.
    """

    frame_index: int
    stream: str
    last_update_id: int | None
    intended_mono_ns: int
    write_mono_ns: int
    fault: str | None = None


@dataclass(frozen=True, slots=True)
class SnapshotRecord:
    """One REST depth answer served: the book a client may start its chain from (the checker's hole search),
    with its top levels, best first.

    A served `lastUpdateId` usually falls inside a depth event, where the clean recording has no book;
    the checker judges a subject's book at such an id against what the venue said it was.
    """

    symbol: str
    last_update_id: int
    served_mono_ns: int
    bids: tuple[tuple[str, str], ...] = ()
    asks: tuple[tuple[str, str], ...] = ()


@dataclass(slots=True)
class ClientRecord:
    """A connection's life, kept after it closes; match it to a subject by `peer` (the client's address)."""

    client_id: int
    path: str
    peer: tuple | None
    opened_mono_ns: int
    closed_mono_ns: int | None = None
    close_cause: str | None = None
    sends: list[SendRecord] = field(default_factory=list)


@dataclass(slots=True)
class ServerStats:
    """Counts for the report; `rest_requests` is keyed `endpoint:status`, `rest_faults` by behaviour mode.

    `connections_refused` counts handshakes refused because the venue held its maximum of connections
    (`streams_refused`: SUBSCRIBEs refused past the streams-per-connection limit).
    """

    entries_walked: int = 0
    frames_sent: int = 0
    bytes_sent: int = 0
    clients_connected: int = 0
    clients_open: int = 0
    handshakes_refused: int = 0
    half_open_connections: int = 0
    slow_consumers_dropped: int = 0
    too_many_requests: int = 0
    connections_refused: int = 0
    streams_refused: int = 0
    disconnects: Counter = field(default_factory=Counter)
    rest_requests: Counter = field(default_factory=Counter)
    rest_faults: Counter = field(default_factory=Counter)
