"""What the fake venue's core asks of a venue's wire: the `VenueWire` contract.

The fake venue is split like the `websockets` library: `replayer/venue_core.py` is a pure object that
decides (subscriptions, limits, fault countdowns, which book a REST answer reads, who is a slow
consumer) and `replayer/server.py` only moves bytes and reads the clock. Neither knows a venue's wire:
paths, control message shapes, acks and errors, heartbeats, REST routes and bodies, rate limits. Those
are a `VenueWire`, one per venue, under `harness/venues/<venue>/wire.py` (Binance spot's is
`harness/venues/binance_spot/wire.py`). Everything here is pure: no clock (times come in as
arguments), no socket, no file. Everything sent is bytes; the core never parses or re-serializes a
recorded frame, it asks the wire to frame it (`frame`) and sends what comes back.

How the core uses a wire, in order of a client's life:

1. An HTTP request arrives. `is_rest(path)` routes it to REST (below); otherwise it is a WebSocket
   handshake and `open_path(path)` says which subscriptions the URL itself makes and how frames are
   framed on it (`Opened`), or refuses it (`HttpReply`, e.g. 404 for an unknown path).
2. Each text or binary message the client sends goes to `parse_control(message, state)`, which returns a
   `Control` (what the client asks) or a `ControlRejected` (the venue's error reply, sent as is). The core
   applies a `Control` to the connection (its subscriptions, its framing) after checking its limits,
   then asks `render_control(control, state)` for the replies (acks, LIST results, pongs) or
   `render_limit_error(control, limit, allowed, state)` when a limit refused it. `state` is the
   connection as it stands (its streams, its framing, its number, the streams the venue serves), so an
   error reply carries the same connection id (Bybit's `conn_id`, OKX's `connId`) as the acks on that
   connection, and one recording can serve a venue whose paths name markets (Bybit's spot and linear,
   each on its own path under the same topic names).
3. For each stream a connection newly holds, the core asks `stream_snapshot(stream, books, wall_ms)`:
   venues whose snapshot travels on the stream (Bybit, OKX) render it from the venue's current book,
   and the core sends it before any delta of that stream; REST-snapshot venues (Binance) return None.
4. Each recorded frame due goes, for every connection holding its stream, through `frame(stream,
   payload, framing)`: the recorded bytes unchanged, or a slice of them (Binance's raw `/ws` sends
   the `data` part of the recorded combined frame). Never a re-serialization. Which recorded frames
   are in the schedule (say, whether the snapshot the recorder itself was sent on subscribing is
   replayed) is the replay data's and the fault plan's business; the core sends every Send it is given.
5. REST: `rest(path, query, venue)` answers every route itself (`HttpReply`) except the depth
   snapshot, which it validates and returns as a `SnapshotAsk`; the core then picks the book (at the
   replay position, or as a fault says) and asks `snapshot_body(last_update_id, bids, asks, at)` for
   the book's best `limit` levels (`at`: the recorded events the answer stands at, for a body that
   carries times, as USD-M's `E` and `T`). Request weight:
   `request_weight(path, query)` is charged before routing, and the answer carries
   `weight_headers(used)`; past the limit `weight_refused(...)` is the answer.

A sketch of the other venues, so the contract is implementable from this page alone (the shapes are
from their public documentation; the venue's own docs and the real captures decide the details):

- Bybit v5 public (`/v5/public/spot`, `/v5/public/linear`): the path makes no subscription
  (`Opened(streams=(), framing="raw")`). `{"op":"subscribe","req_id":"1","args":["orderbook.50.BTCUSDT"]}`
  parses to `Control("subscribe", streams=("orderbook.50.BTCUSDT",), request_id="1", echo=<the doc>)`;
  its reply is `{"success":true,"ret_msg":"subscribe","conn_id":"..","req_id":"1","op":"subscribe"}`.
  `{"op":"ping"}` is `Control("ping")`, answered `{"success":true,"ret_msg":"pong","conn_id":"..","op":"ping"}`.
  Bad JSON or an unknown op is a `ControlRejected` with `{"success":false,"ret_msg":"..","op":".."}`.
  Heartbeat: the client pings (text), the server sends no ping frames (`server_ping_interval_s=None`).
  `stream_snapshot("orderbook.50.BTCUSDT", books, wall_ms)` renders
  `{"topic":..,"type":"snapshot","ts":wall_ms,"data":{"s":..,"b":[[p,q],..],"a":..,"u":..,"seq":..}}`
  from `books.book("BTCUSDT")` (depth 50). `frame` returns the payload as is. REST: Bybit's snapshot
  travels on the stream, so `rest` answers the routes it serves and 404 elsewhere.
- OKX v5 public (`/ws/v5/public`): `{"op":"subscribe","args":[{"channel":"books","instId":"BTC-USDT"}]}`
  parses to `Control("subscribe", streams=("books:BTC-USDT",), echo=<the args>)` (the stream key is
  whatever the venue's dialect records in the `stream` column); the reply is one
  `{"event":"subscribe","arg":{"channel":"books","instId":"BTC-USDT"},"connId":".."}` per arg, so
  `render_control` returns a list. The text message `ping` is `Control("ping")`, answered with the text
  `pong` (`Reply(b"pong", text=True)`). Errors: `{"event":"error","code":"60012","msg":"Invalid request: ..",
  "connId":".."}` (`ControlRejected`). The first message of `books` is an in-stream snapshot
  (`"action":"snapshot"`, with its CRC32 `checksum` over the top 25 levels), rendered by `stream_snapshot`.

Limits are the venue's numbers (`WireLimits`); the core enforces them and a user may override them
(`replayer/venue_limits.py`; `VenueServer(messages_per_second=..., max_streams_per_connection=...)`;
`harness serve --messages-per-second ...`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal, Protocol

from harness.book_events import Level

if TYPE_CHECKING:
    from harness.venues.dialect import VenueDialect

ControlKind = Literal["subscribe", "unsubscribe", "list", "set_framing", "get_framing", "ping"]
"""What a client's control message asks: change or list its subscriptions, change or read how its frames
are framed (Binance `SET_PROPERTY`/`GET_PROPERTY combined`), or an application-level ping (Bybit
`{"op":"ping"}`, OKX text `ping`)."""


@dataclass(frozen=True, slots=True)
class Reply:
    """One message to send back; `text` False sends a binary frame."""

    payload: bytes
    text: bool = True


@dataclass(frozen=True, slots=True)
class HttpReply:
    """A plain HTTP answer: a REST response, or a refused WebSocket handshake. `headers` come after the
    content type the wire names; the shell adds Content-Length and `Connection: close`."""

    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()
    content_type: str = "application/json;charset=UTF-8"


@dataclass(frozen=True, slots=True)
class Opened:
    """A WebSocket path the venue serves: the streams its URL subscribes to (in order, no repeats) and the
    framing its frames start with (a value only the wire interprets: Binance `"raw"`/`"combined"`)."""

    streams: tuple[str, ...]
    framing: str


@dataclass(frozen=True, slots=True)
class Control:
    """A valid control message. `streams` are stream keys as recorded (subscribe, unsubscribe);
    `framing` the framing asked for (set_framing); `request_id` and `echo` are whatever the wire needs to
    render the reply (the id to echo, the original args); the core never reads them."""

    kind: ControlKind
    streams: tuple[str, ...] = ()
    request_id: object = None
    framing: str | None = None
    echo: object = None


@dataclass(frozen=True, slots=True)
class ControlRejected:
    """A message the venue answers with an error and otherwise ignores: `reply` is sent as is."""

    reply: Reply


@dataclass(frozen=True, slots=True)
class ConnectionState:
    """The connection as the wire sees it: before a control is applied (`parse_control`), or after, for
    what a reply may report (`render_control`). `connection_id` is the venue's number for it (Bybit's
    `conn_id`, OKX's `connId` may be derived from it); `venue_streams` every stream key the venue serves
    (recorded and derived), so a wire whose keys depend on how the recording named them can name a
    subscription the recorded way (Bybit: a bare topic, or `<category>/<topic>` where one recording
    holds both categories)."""

    streams: tuple[str, ...]
    framing: str
    connection_id: int = 0
    venue_streams: frozenset[str] = frozenset()


LimitName = Literal["streams_per_connection"]
"""A limit whose refusal is a reply on the connection (the others close it or refuse the handshake)."""


@dataclass(frozen=True, slots=True)
class SnapshotAsk:
    """A valid REST depth-snapshot request for `symbol`, the best `limit` levels per side (None: all)."""

    symbol: str
    limit: int | None


@dataclass(frozen=True, slots=True)
class SnapshotAt:
    """Where a REST depth answer stands in the recording, for a venue whose body carries times (USD-M's
    `E`, message output time, and `T`, transaction time): `event` is the recorded frame of the depth
    event the served state is at or inside, `latest` the one at the replay position (they differ when a
    fault serves a stale or too-new book). Both as sent: their times moved as the venue moves every
    frame's (`shift_times`, `harness serve --rebase-time`), so the answer and the stream read one clock."""

    event: bytes
    latest: bytes


class Book(Protocol):
    """The venue's book of one symbol (replayer/reference_book.py): levels best first, venue strings."""

    @property
    def last_update_id(self) -> int: ...

    def bids(self, depth: int | None = None) -> Sequence[Level]: ...

    def asks(self, depth: int | None = None) -> Sequence[Level]: ...


class Books(Protocol):
    """The venue's books at the current replay position, by symbol as the venue spells it in REST."""

    def book(self, symbol: str) -> Book | None: ...


class RestVenue(Protocol):
    """What REST answers other than the snapshot read: the recorded symbols, their books, the time."""

    @property
    def symbols(self) -> Sequence[str]:
        """Every recorded symbol, in recording order."""
        ...

    @property
    def specs(self) -> Mapping[str, object]:
        """Per symbol, the venue's own description of it (Binance: `rest.SymbolSpec`), built by the wire's
        caller from the recording; a wire reads only the type it built."""
        ...

    @property
    def books(self) -> Books: ...

    @property
    def wall_ms(self) -> int:
        """The machine's wall clock, epoch milliseconds, read by the shell for this request."""
        ...


@dataclass(frozen=True, slots=True)
class WireLimits:
    """The venue's own limits, the core's defaults.

    `streams_per_connection`: subscriptions one connection may hold. `messages_per_second`: client
    messages in any sliding second before the connection is closed with `too_many_messages_close` (None,
    the default: the venue closes none for it). `rest_weight_per_minute`: REST request weight per IP and
    fixed minute (0, the default: the venue weighs no request). docs/venues.md, "Limits", has each
    venue's numbers and their sources.
    """

    streams_per_connection: int
    messages_per_second: int | None = None
    too_many_messages_close: tuple[int, str] = (1008, "too many requests")
    rest_weight_per_minute: int = 0


@dataclass(frozen=True, slots=True)
class IdleClose:
    """The venue closes, with `code` and `reason`, a connection it has received no message from for
    `after_s` seconds of wall time (OKX: 30 s, 4004 "No data received in 30s"): a client keeps it open
    with application-level pings. Ping frames are not messages and do not count."""

    after_s: float
    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """Who keeps the connection alive. `server_ping_interval_s`: the venue sends a ping frame this often and
    closes a connection whose pong is `pong_timeout_s` late (Binance 20 s / 60 s); None: the venue sends
    none and expects the client's application-level pings (Bybit, OKX: `Control("ping")`), which
    `idle_close` enforces where the venue documents a limit (None: the venue tolerates a silent client)."""

    server_ping_interval_s: float | None
    pong_timeout_s: float | None
    idle_close: IdleClose | None = None


class Aggregator(Protocol):
    """A stream the venue computes from a recorded one (Binance's 1000 ms `@depth` from `@depth@100ms`)."""

    def add(self, offset_ns: int, payload: bytes) -> list[bytes]:
        """Takes one recorded frame of the source stream; returns the derived frames now complete, in the
        recorded (combined) form `frame` expects."""
        ...

    def flush(self) -> list[bytes]:
        """The derived frames still pending when the replay ends."""
        ...


class VenueWire(Protocol):
    """One venue's wire, as the fake venue's core needs it. Implementations are small objects of pure
    functions; the core keeps every piece of state (subscriptions, framing, counters)."""

    @property
    def name(self) -> str:
        """The venue id users type (`binance-spot`)."""
        ...

    @property
    def limits(self) -> WireLimits: ...

    @property
    def heartbeat(self) -> Heartbeat: ...

    # --- connections and control messages ---------------------------------------------------------

    def is_rest(self, path: str) -> bool:
        """Whether an HTTP request for `path` (with its query) is a REST call rather than a WebSocket handshake."""
        ...

    def open_path(self, path: str) -> Opened | HttpReply:
        """The subscriptions and framing a WebSocket URL makes, or the HTTP refusal the venue gives it
        (unknown path: 404; a parameter the fake cannot honour: 400). Stream names no recording holds are
        accepted (they simply receive nothing), as venues do."""
        ...

    def parse_control(self, message: str | bytes, state: ConnectionState) -> Control | ControlRejected:
        """A client's message (text as str, binary as bytes) as the venue reads it on a connection in
        `state` (before the message is applied; its framing says which path it came on, where a venue's
        paths differ)."""
        ...

    def render_control(self, control: Control, state: ConnectionState) -> list[Reply]:
        """The replies to an applied control, in order (usually one; OKX acks each arg)."""
        ...

    def render_limit_error(self, control: Control, limit: LimitName, allowed: int, state: ConnectionState) -> Reply:
        """The error reply when the core refused `control` for `limit` (`allowed` is the limit's value) on a
        connection in `state` (as it was: the refused control changed nothing)."""
        ...

    def stream_snapshot(self, stream: str, books: Books, wall_ms: int) -> bytes | None:
        """The message a connection gets first when it starts holding `stream`, for venues whose snapshot
        travels on the stream, in recorded form (it goes through `frame` like a recorded frame); None for
        streams that carry no book, for a symbol with no book yet, and for REST-snapshot venues."""
        ...

    # --- recorded frames ------------------------------------------------------------------------

    def frame(self, stream: str, payload: bytes, framing: str) -> bytes:
        """What a connection with `framing` receives for a recorded `payload` of `stream`: the recorded bytes
        or a slice of them, never re-serialized. A payload not in the expected form (a corrupt frame) goes
        out unchanged, so the corruption reaches the client."""
        ...

    def symbol_of(self, stream: str) -> str | None:
        """The symbol a stream carries as REST spells it (`btcusdt@depth@100ms` -> `BTCUSDT`); None if none."""
        ...

    def is_book_stream(self, stream: str) -> bool:
        """Whether `stream` carries order-book changes (what REST snapshots are chained with)."""
        ...

    def derived_streams(self, recorded: Iterable[str]) -> dict[str, list[str]]:
        """For each recorded stream, the streams the venue computes from it that the recording lacks."""
        ...

    def aggregator(self, derived: str) -> Aggregator:
        """A fresh computation of the derived stream `derived` (named by `derived_streams`)."""
        ...

    def shift_times(self, payload: bytes, delta_ms: int) -> bytes:
        """`payload` with its event times moved by `delta_ms`, every other byte as recorded
        (`harness serve --rebase-time`)."""
        ...

    def first_event_time_ms(self, payloads: Iterable[bytes]) -> int | None:
        """The first event time in `payloads`: the anchor `shift_times` moves to the session's start."""
        ...

    # --- REST ---------------------------------------------------------------------------------------

    def request_weight(self, path: str, query: Mapping[str, Sequence[str]]) -> int:
        """The weight the venue charges for a request, valid or not (0 where the venue charges none)."""
        ...

    def weight_headers(self, used: int) -> tuple[tuple[str, str], ...]:
        """Headers every REST answer carries about the weight used this minute (Binance `x-mbx-used-weight-1m`)."""
        ...

    def weight_refused(self, status: int, limit: int, retry_after_s: float, ban_ends_wall_ms: int | None) -> HttpReply:
        """The answer past the weight limit: 429 (`retry_after_s` until the minute ends) or 418 (banned
        until `ban_ends_wall_ms`), with the venue's body and Retry-After header."""
        ...

    def rest(self, path: str, query: Mapping[str, Sequence[str]], venue: RestVenue) -> HttpReply | SnapshotAsk:
        """The answer to a REST request, or a validated snapshot request the core answers from its book."""
        ...

    def snapshot_body(
        self, last_update_id: int, bids: Sequence[Level], asks: Sequence[Level], at: SnapshotAt | None
    ) -> bytes:
        """The REST snapshot body for a book (levels already cut to the request's limit, best first);
        `at` None when the symbol has no recorded depth event to stand at."""
        ...

    def error_reply(self, status: int) -> HttpReply:
        """The venue's answer with an error `status` (a REST fault, a refused handshake, a full venue)."""
        ...

    def rest_endpoint(self, path: str) -> str:
        """A short name for a REST path in the report's counts (`depth`, `exchangeInfo`)."""
        ...


class UnweightedRest:
    """The request-weight half of `VenueWire` for venues whose REST limits the fake venue does not model
    (Bybit, OKX: their `rest_weight_per_minute` is 0): every request weighs nothing and says nothing."""

    def request_weight(self, path: str, query: Mapping[str, Sequence[str]]) -> int:
        return 0

    def weight_headers(self, used: int) -> tuple[tuple[str, str], ...]:
        return ()


class StreamSnapshotWire(UnweightedRest):
    """The half of `VenueWire` that venues whose snapshot travels on the stream share (Bybit, OKX), so
    each writes only what differs. The client keeps the connection alive with application pings (the
    venue sends no ping frames); recorded frames go out exactly as recorded; the dialect names a
    stream's symbol; the first `event_time` match in a frame is its event time, in milliseconds, in the
    pattern's group `ms`; and REST never asks for a depth body."""

    name: ClassVar[str]
    dialect: ClassVar[VenueDialect]
    event_time: ClassVar[re.Pattern[bytes]]
    heartbeat = Heartbeat(server_ping_interval_s=None, pong_timeout_s=None)

    def frame(self, stream: str, payload: bytes, framing: str) -> bytes:
        return payload

    def symbol_of(self, stream: str) -> str | None:
        return self.dialect.symbol_of(stream)

    def is_book_stream(self, stream: str) -> bool:
        return self.dialect.is_book_stream(stream)

    def first_event_time_ms(self, payloads: Iterable[bytes]) -> int | None:
        for payload in payloads:
            found = self.event_time.search(payload)
            if found is not None:
                return int(found["ms"])
        return None

    def snapshot_body(
        self, last_update_id: int, bids: Sequence[Level], asks: Sequence[Level], at: SnapshotAt | None
    ) -> bytes:
        raise ValueError(f"{self.name}'s order book snapshot travels on the stream; REST never asks for one")
