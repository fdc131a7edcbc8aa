"""The reconnecting client's pure core: states, events, backoff, session steps and the retry ledger.

Nothing here reads a clock, sleeps or touches a socket. The asyncio shell in `harness/client.py`
passes timestamps in, sends the bytes a step asks for, and emits the events this core returns, so
every decision (which transition is legal, how long to back off, when to give up, when a flapping
server has earned a reset of the retry count) can be tested at full speed with a seeded RNG.
"""

from __future__ import annotations

import enum
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from harness.errors import HarnessError


class ConnectionState(enum.Enum):
    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    AUTHENTICATED = "authenticated"
    SUBSCRIBED = "subscribed"
    ACTIVE = "active"


_LEGAL: dict[ConnectionState, frozenset[ConnectionState]] = {
    ConnectionState.DISCONNECTED: frozenset({ConnectionState.CONNECTING}),
    ConnectionState.CONNECTING: frozenset({ConnectionState.CONNECTED, ConnectionState.DISCONNECTED}),
    ConnectionState.CONNECTED: frozenset({ConnectionState.AUTHENTICATED, ConnectionState.DISCONNECTED}),
    ConnectionState.AUTHENTICATED: frozenset({ConnectionState.SUBSCRIBED, ConnectionState.DISCONNECTED}),
    ConnectionState.SUBSCRIBED: frozenset({ConnectionState.ACTIVE, ConnectionState.DISCONNECTED}),
    ConnectionState.ACTIVE: frozenset({ConnectionState.DISCONNECTED}),
}


class DisconnectCause(enum.Enum):
    """Why a connection that had opened ended; `code`/`reason` on the event say what the wire said."""

    SERVER_CLOSE = "server_close"
    """The server sent a close frame first."""
    CONNECTION_LOST = "connection_lost"
    """The transport died without a close frame (code 1006), or keepalive pings went unanswered (1011)."""
    WATCHDOG = "watchdog"
    """No frame arrived for longer than the watchdog threshold; the client aborted the socket."""
    STEP_TIMEOUT = "step_timeout"
    """The auth or subscribe step sent its messages and no ack came within its timeout."""
    STEP_REJECTED = "step_rejected"
    """The server answered the auth or subscribe step with an error."""
    STOPPED = "stopped"
    """The caller asked for `stop()`; the client closed with 1000."""
    RESUBSCRIBE = "resubscribe"
    """The caller asked for `reconnect()`; the client closed with 1000 to connect and subscribe afresh."""


# Events. Every one carries the monotonic timestamp at which the shell observed it.


@dataclass(frozen=True, slots=True)
class StateChanged:
    old: ConnectionState
    new: ConnectionState
    conn_id: int
    """The connection the new state belongs to; 0 before the first connection opened."""
    mono_ns: int


@dataclass(frozen=True, slots=True)
class ConnectionOpened:
    """A new WebSocket is up. Emitted before any frame of `conn_id` reaches `on_message`.

    The caller must treat everything derived from earlier connections as unproven: a book resyncs.
    """

    conn_id: int
    url: str
    attempt: int
    """Consecutive failures before this success (0 on a first try or after a stable connection)."""
    mono_ns: int
    wall_ns: int


@dataclass(frozen=True, slots=True)
class ConnectFailed:
    """The TCP connect or the WebSocket handshake failed; a retry or give-up decision follows."""

    attempt: int
    status_code: int | None
    """The HTTP status of a refused upgrade (429, 503, ...), None when no HTTP response came."""
    error: str
    mono_ns: int


@dataclass(frozen=True, slots=True)
class WatchdogFired:
    conn_id: int
    silence_ns: int
    """How long the connection had been silent when the watchdog aborted it."""
    mono_ns: int


@dataclass(frozen=True, slots=True)
class Disconnected:
    """Connection `conn_id` is gone. Emitted after the last frame of `conn_id` reached `on_message`."""

    conn_id: int
    code: int
    """The close code from the close frame (received first, else sent); 1006 when there was none."""
    reason: str
    cause: DisconnectCause
    frames: int
    """Frames delivered on this connection."""
    mono_ns: int
    wall_ns: int


@dataclass(frozen=True, slots=True)
class ReconnectScheduled:
    attempt: int
    """The retry index this delay was drawn for (0 = first retry after a failure)."""
    delay_s: float
    mono_ns: int


@dataclass(frozen=True, slots=True)
class GaveUp:
    """`max_retries` consecutive retries failed; the client stopped trying and `run()` returns."""

    attempts: int
    mono_ns: int


@dataclass(frozen=True, slots=True)
class Stopped:
    """The client has stopped (after `stop()` or after giving up) and owns no task or socket."""

    mono_ns: int


ClientEvent = (
    StateChanged
    | ConnectionOpened
    | ConnectFailed
    | WatchdogFired
    | Disconnected
    | ReconnectScheduled
    | GaveUp
    | Stopped
)


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    """Exponential backoff with full jitter: delay = uniform(0, min(cap, base * multiplier**attempt)).

    Full jitter (rather than +-10% around the exponential) spreads a herd of clients that lost the
    same server over the whole window, which is what keeps them from reconnecting in lockstep.
    """

    base_s: float = 0.5
    multiplier: float = 2.0
    cap_s: float = 30.0

    def __post_init__(self) -> None:
        if not (self.base_s > 0 and math.isfinite(self.base_s)):
            raise HarnessError(f"backoff base must be a positive number of seconds, got {self.base_s!r}")
        if not (self.multiplier >= 1 and math.isfinite(self.multiplier)):
            raise HarnessError(f"backoff multiplier must be >= 1, got {self.multiplier!r}")
        if not (self.cap_s >= self.base_s and math.isfinite(self.cap_s)):
            raise HarnessError(f"backoff cap must be >= base ({self.base_s}), got {self.cap_s!r}")

    def ceiling(self, attempt: int) -> float:
        """The upper bound of the delay for retry `attempt` (0-based); never overflows."""
        if attempt < 0:
            raise ValueError(f"attempt must be >= 0, got {attempt}")
        if self.multiplier == 1:
            return self.base_s
        if attempt * math.log(self.multiplier) >= math.log(self.cap_s / self.base_s):
            return self.cap_s
        return min(self.cap_s, self.base_s * self.multiplier**attempt)

    def delay(self, attempt: int, rng: random.Random) -> float:
        return rng.random() * self.ceiling(attempt)


@dataclass(frozen=True, slots=True)
class AppKeepalive:
    """An application-level ping the client sends every `interval_s` while connected, for venues that
    close a connection they have heard nothing from (OKX: the text `ping` within 30 s). Ping frames
    do not count there: they are not messages."""

    message: str
    interval_s: float

    def __post_init__(self) -> None:
        if not self.interval_s > 0:
            raise ValueError(f"keepalive interval must be positive seconds, got {self.interval_s!r}")


class StepReply(enum.Enum):
    ACK = "ack"
    REJECTED = "rejected"
    OTHER = "other"
    """Not an answer to this step (a data frame, another request's reply): keep waiting."""


class SessionStep(Protocol):
    """One request/ack exchange after the WebSocket opens (authentication, subscription).

    The shell sends `messages()`, then classifies every received frame with `classify()` until one
    is ACK (advance), REJECTED (disconnect, back off) or `timeout_s` passes (disconnect, back off).
    Frames seen meanwhile are still delivered to `on_message`.
    """

    timeout_s: float

    def messages(self) -> Sequence[str]: ...

    def classify(self, payload: bytes) -> StepReply: ...


CONTROL_REPLY_MAX_BYTES = 4096
"""Acks and errors are tiny; a larger frame is data and is never parsed to look for one."""


def control_reply(payload: bytes, marker: bytes) -> dict[str, Any] | None:
    """The JSON object a venue answered a control message with, when `payload` is small, holds `marker`
    (a key only replies carry) and parses to an object; None for anything else, data frames included,
    so a subscribe step costs the stream nothing but a length check and a substring search."""
    if len(payload) > CONTROL_REPLY_MAX_BYTES or marker not in payload:
        return None
    try:
        reply = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    return reply if isinstance(reply, dict) else None


@dataclass(frozen=True, slots=True)
class JsonRpcSubscribe:
    """Binance's `/ws` style: `{"method":"SUBSCRIBE","params":[...],"id":N}`, ack `{"result":null,"id":N}`.

    Sent again on every new connection, so a reconnect resubscribes. For URLs that already name their
    streams (`/stream?streams=a/b`) pass no subscribe step at all.
    """

    params: tuple[str, ...]
    request_id: int = 1
    timeout_s: float = 10.0
    method: str = "SUBSCRIBE"

    def __post_init__(self) -> None:
        if not self.params:
            raise HarnessError("a subscribe step needs at least one stream name")
        if not self.timeout_s > 0:
            raise HarnessError(f"subscribe timeout must be positive, got {self.timeout_s!r}")

    def messages(self) -> Sequence[str]:
        # A str goes out as a text frame: the venues take JSON requests in text frames only.
        return (orjson.dumps({"method": self.method, "params": list(self.params), "id": self.request_id}).decode(),)

    def classify(self, payload: bytes) -> StepReply:
        # Data frames never carry a top-level "id".
        reply = control_reply(payload, b'"id"')
        if reply is None or reply.get("id") != self.request_id:
            return StepReply.OTHER
        if "error" in reply:
            return StepReply.REJECTED
        return StepReply.ACK if "result" in reply else StepReply.OTHER


@dataclass(frozen=True, slots=True)
class Retry:
    attempt: int
    delay_s: float


@dataclass(frozen=True, slots=True)
class GiveUp:
    attempts: int


class ClientCore:
    """The state machine and retry ledger; the shell calls one method per thing that happened.

    Each method returns the events to emit, in order. The retry count is reset only when a
    connection has stayed ACTIVE for `stable_after_ns`, so a server that accepts and then drops
    every connection still sees the client back off exponentially.
    """

    __slots__ = ("_active_since_ns", "attempt", "backoff", "conn_id", "max_retries", "rng", "stable_after_ns", "state")

    def __init__(
        self, backoff: BackoffPolicy, rng: random.Random, max_retries: int | None, stable_after_ns: int
    ) -> None:
        if max_retries is not None and max_retries < 0:
            raise HarnessError(f"max_retries must be >= 0 or None (forever), got {max_retries}")
        if stable_after_ns < 0:
            raise HarnessError(f"the stable-connection time must be >= 0, got {stable_after_ns} ns")
        self.backoff = backoff
        self.rng = rng
        self.max_retries = max_retries
        self.stable_after_ns = stable_after_ns
        self.state = ConnectionState.DISCONNECTED
        self.conn_id = 0
        self.attempt = 0
        self._active_since_ns: int | None = None

    def advance(self, new: ConnectionState, now_ns: int) -> StateChanged:
        """Move to `new`; an illegal transition is a bug in the shell and raises."""
        old = self.state
        if new not in _LEGAL[old]:
            raise RuntimeError(f"illegal client transition {old.name} -> {new.name}")
        self.state = new
        if new is ConnectionState.ACTIVE:
            self._active_since_ns = now_ns
        return StateChanged(old, new, self.conn_id, now_ns)

    def connecting(self, now_ns: int) -> list[ClientEvent]:
        return [self.advance(ConnectionState.CONNECTING, now_ns)]

    def connect_failed(self, now_ns: int, status_code: int | None, error: str) -> list[ClientEvent]:
        return [
            ConnectFailed(self.attempt, status_code, error, now_ns),
            self.advance(ConnectionState.DISCONNECTED, now_ns),
        ]

    def opened(self, now_ns: int, wall_ns: int, url: str) -> list[ClientEvent]:
        self.conn_id += 1
        self._active_since_ns = None
        return [
            self.advance(ConnectionState.CONNECTED, now_ns),
            ConnectionOpened(self.conn_id, url, self.attempt, now_ns, wall_ns),
        ]

    def closed(
        self, now_ns: int, wall_ns: int, code: int, reason: str, cause: DisconnectCause, frames: int
    ) -> list[ClientEvent]:
        since = self._active_since_ns
        if since is not None and now_ns - since >= self.stable_after_ns:
            self.attempt = 0
        self._active_since_ns = None
        return [
            Disconnected(self.conn_id, code, reason, cause, frames, now_ns, wall_ns),
            self.advance(ConnectionState.DISCONNECTED, now_ns),
        ]

    def next_retry(self) -> Retry | GiveUp:
        """Decide after a failure or disconnect: wait `delay_s` and reconnect, or give up."""
        if self.max_retries is not None and self.attempt >= self.max_retries:
            return GiveUp(self.attempt)
        decision = Retry(self.attempt, self.backoff.delay(self.attempt, self.rng))
        self.attempt += 1
        return decision
