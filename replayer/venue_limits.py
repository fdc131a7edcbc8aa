"""The fake venue's limits on what clients may do, on by default (docs/fake-venue.md, "Limits").

A venue's own numbers come from its wire (`WireLimits`: Binance's five messages a second, 1024 streams a
connection, 6,000 REST weight a minute); the two the venues do not publish are the fake's choice:

- `max_frame_bytes` (64 KiB): the largest message a client may send. Past it the WebSocket layer closes
  with 1009 (message too big) before the message is read whole, so a client cannot make the venue hold
  megabytes; 64 KiB takes a SUBSCRIBE naming 1024 streams with room to spare.
- `max_connections` (1000): open WebSocket connections. A handshake past it is refused with HTTP 503 and
  the venue's "overloaded" body, rather than accepted and closed: the client's library reports a status
  it already retries on (as for a load balancer turning it away), and the venue spends no WebSocket state
  on it. A connection that slipped past a burst of concurrent handshakes is closed at once with 1013
  (try again later), so the limit holds either way.
- `max_backlog_bytes` (8 MiB): what the venue holds for one client that does not read (its outbox plus
  the socket's buffer). Past it for the slow-consumer grace the client is dropped, as a venue drops slow
  readers; without it a client that subscribes and never reads makes the venue hold everything it is
  sent, for as long as it stays connected. A scenario's `slow_consumer` fault sets a tighter limit for its
  window. 8 MiB is minutes of a busy book at speed 1, so only a client that has stopped reading meets it.

`None` turns a limit off (the REST weight's "off" is 0: counted for the headers, never refused).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from harness.venues.wire import VenueWire

DEFAULT_MAX_FRAME_BYTES = 64 * 1024
DEFAULT_HANDSHAKE_TIMEOUT_S = 30.0
"""How long a connection may take from its TCP accept to its HTTP answer or WebSocket upgrade: a request
sent half-way and left there (slowloris) is closed, without an answer, once it passes. It covers the
REST answer too (a `slow` snapshot fault waits inside it), hence well above any scheduled delay. The
shell enforces it (the WebSocket layer's opening timeout), not the core, which never sees a partial
request."""
BINARY_MESSAGE_CLOSE = (1003, "Binary messages are not accepted: send JSON in text frames")
"""Every venue we fake takes its requests as JSON in text frames; a binary frame is data the endpoint
cannot accept, which RFC 6455 (7.4.1) answers with 1003 (docs/reliability.md, "Abuse on the wire")."""
DEFAULT_MAX_CONNECTIONS = 1000
DEFAULT_MAX_BACKLOG_BYTES = 8 * 2**20
TRY_AGAIN_LATER_CLOSE = (1013, "Try again later: too many connections")


@dataclass(frozen=True, slots=True)
class VenueLimits:
    """What the core enforces; see the module docstring for each field and why."""

    max_frame_bytes: int | None
    max_connections: int | None
    streams_per_connection: int | None
    messages_per_second: int | None
    rest_weight_per_minute: int
    max_backlog_bytes: int | None = DEFAULT_MAX_BACKLOG_BYTES

    def __post_init__(self) -> None:
        names = ("max_frame_bytes", "max_connections", "streams_per_connection", "messages_per_second")
        for name in (*names, "max_backlog_bytes"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be at least 1 (None turns it off), got {value}")
        if self.rest_weight_per_minute < 0:
            weight = self.rest_weight_per_minute
            raise ValueError(f"rest_weight_per_minute must be >= 0 (0 turns refusals off), got {weight}")

    @classmethod
    def of(cls, wire: VenueWire) -> VenueLimits:
        """The venue's own limits, with the fake's defaults for the two it does not publish."""
        own = wire.limits
        return cls(
            max_frame_bytes=DEFAULT_MAX_FRAME_BYTES,
            max_connections=DEFAULT_MAX_CONNECTIONS,
            streams_per_connection=own.streams_per_connection,
            messages_per_second=own.messages_per_second,
            rest_weight_per_minute=own.rest_weight_per_minute,
        )

    def but(self, **changes: int | None) -> VenueLimits:
        """These limits with some changed (checked again)."""
        return replace(self, **changes)  # type: ignore[arg-type]
