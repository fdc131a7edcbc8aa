"""The fake Binance spot venue: WebSocket streams and the REST endpoints, on one loopback port.

One replay clock for every client, as on a real venue: a client that connects late gets the stream
from that moment on. The clock starts when the first client holds a subscription (by its path or a
SUBSCRIBE), so a test or a replay run sees the schedule from its first entry, deterministically.
At `speed` 1 entries go out at their recorded offsets, at 2 twice as fast; at 0 as fast as the
clients read (each Send waits until every recipient's writer has drained it). When the schedule
ends the connections stay open and idle and `finished` is set.

The server walks a `list[TimelineEntry]` (replayer/timeline.py): a fault plan changes the list, never
this module. Sends go to the clients subscribed to the frame's stream, the recorded bytes as they
are (`/stream`) or their `data` part sliced out (`/ws`). REST depth answers from `VenueBooks`, which
advances by clean frame index as entries pass, so `lastUpdateId` follows what has been sent even
when faults dropped, duplicated or reordered frames: by default it falls inside the next depth event
not sent yet (`U <= lastUpdateId < u`), as on the live venue.

Control entries: a Disconnect ends every open connection (`close` after what is already queued to
it, `abort` and `reset` at once). A Stall holds every entry due during it (they go out late, at its
end); its duration is scaled by `speed` like offsets, and is real time at speed 0. A HalfOpen silences
every connection open at that moment for good (nothing sent, nothing read, no keepalive; later
Disconnects do not reach it either) until `release_half_open()` or `stop()` aborts it. RefuseHandshakes
counts WebSocket upgrades only, never REST. RestBehaviour applies to the next `count` depth requests
that pass validation; `slow` takes the book when the request arrives and answers `delay_ns` later
(scaled by speed like every scheduled duration), as a slow network would deliver it.

Faults served: an entry's `tags` go into `served` when the entry did something to a client (a
tagged frame written, a Withheld frame a client was subscribed to, a Disconnect, Stall or HalfOpen
that met an open connection, a refusal, a REST answer in a fault's mode); FaultPlan.served counts them.

Each client has its own outbox and writer task, so one slow reader delays only itself; its unsent
backlog is what `ClientBufferLimit` measures (only while the kernel refuses more bytes, and only a
client that stays over the limit for SLOW_CONSUMER_GRACE_NS is dropped, so a burst to a healthy reader
is not mistaken for a slow one). A client that sends more than Binance's five messages in a second is
closed with 1008 "Too many requests", as the venue does (replayer/rate_limit.py); REST requests are
charged Binance's request weight per IP and minute and refused with 429, then 418, past the limit
(replayer/request_weight.py). Every depth answer served is logged (`snapshots_served`) for the checker,
which looks for chains a client could not have built from what it received, and judges a book
reported at a snapshot's id inside an event against the snapshot's levels. Everything runs on one
event loop; `ServerThread` runs it in a thread of its own for a harness whose subject lives on another
loop.
"""

from __future__ import annotations

import asyncio
import http
import socket
import struct
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from harness.level_match import SnapshotReach, reach_of
from harness.venues.binance_spot import rest
from harness.venues.binance_spot.streams import (
    MAX_INCOMING_MESSAGES_PER_SECOND,
    TOO_MANY_REQUESTS_CLOSE,
    ControlError,
    first_event_time_ms,
    is_depth_diff,
    parse_control,
    parse_ws_path,
    raw_data,
    result_reply,
    shift_event_times,
    symbol_of,
    unserved_time_unit,
    wrap_combined,
)
from replayer.depth_aggregate import DepthAggregate
from replayer.rate_limit import MessageRateLimit
from replayer.replay_data import ReplayData, VenueBooks
from replayer.request_weight import RequestWeightLimit
from replayer.timeline import (
    ClientBufferLimit,
    Disconnect,
    FaultTag,
    HalfOpen,
    RefuseHandshakes,
    RestBehaviour,
    Send,
    Stall,
    Tags,
    TimelineEntry,
    Withheld,
    clean_schedule,
)

BINANCE_PING_INTERVAL_S = 20.0
BINANCE_PONG_TIMEOUT_S = 60.0
SERVED_LEVELS = 20
"""Levels per side of each served snapshot kept in `snapshots_served`: the depth the checker compares."""
SLOW_CONSUMER_GRACE_NS = 250_000_000
"""How long a client may stay over its buffer limit before it is dropped: a healthy reader that was
not scheduled for a moment drains in milliseconds, a slow one does not."""

OnSend = Callable[[int, Send, int, int], None]
"""`on_send(client_id, entry, intended_mono_ns, write_mono_ns)`, called on the server's loop after each write."""


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
    """Counts for the report; `rest_requests` is keyed `endpoint:status`, `rest_faults` by behaviour mode."""

    entries_walked: int = 0
    frames_sent: int = 0
    bytes_sent: int = 0
    clients_connected: int = 0
    clients_open: int = 0
    handshakes_refused: int = 0
    half_open_connections: int = 0
    slow_consumers_dropped: int = 0
    too_many_requests: int = 0
    disconnects: Counter = field(default_factory=Counter)
    rest_requests: Counter = field(default_factory=Counter)
    rest_faults: Counter = field(default_factory=Counter)


@dataclass(frozen=True, slots=True)
class _CloseMarker:
    code: int
    reason: str


class _Client:
    __slots__ = (
        "combined",
        "connection",
        "first_depth",
        "id",
        "idle",
        "outbox",
        "over_limit_since",
        "queued_bytes",
        "rate",
        "record",
        "silent",
        "streams",
        "wake",
        "writer",
    )

    def __init__(
        self,
        client_id: int,
        connection: ServerConnection,
        combined: bool,
        streams: tuple[str, ...],
        rate: MessageRateLimit | None,
    ) -> None:
        self.id = client_id
        self.connection = connection
        self.combined = combined
        self.streams: dict[str, None] = dict.fromkeys(streams)
        self.first_depth: dict[str, int] = {}
        """Symbol -> clean index of the first depth frame queued to this connection."""
        self.outbox: deque = deque()
        self.queued_bytes = 0
        self.over_limit_since: int | None = None
        self.rate = rate
        self.wake = asyncio.Event()
        self.idle = asyncio.Event()
        self.idle.set()
        self.writer: asyncio.Task | None = None
        self.silent = False
        assert connection.request is not None, "websockets hands over a connection after its handshake"
        self.record = ClientRecord(client_id, connection.request.path, connection.remote_address, time.monotonic_ns())


class VenueServer:
    """The fake venue on `host:port`; `await start()`, then clients connect to `ws_url` and `rest_url`."""

    def __init__(
        self,
        data: ReplayData,
        *,
        schedule: list[TimelineEntry] | None = None,
        speed: float = 1.0,
        host: str = "127.0.0.1",
        port: int = 0,
        ping_interval_s: float | None = BINANCE_PING_INTERVAL_S,
        ping_timeout_s: float | None = BINANCE_PONG_TIMEOUT_S,
        on_send: OnSend | None = None,
        keep_send_log: bool = True,
        socket_send_buffer: int | None = None,
        messages_per_second: int | None = MAX_INCOMING_MESSAGES_PER_SECOND,
        log: Callable[[str], None] | None = None,
        loop: bool = False,
        rebase_time: bool = False,
        on_finished: Callable[[int], None] | None = None,
        rest_weight_limit: int = rest.REQUEST_WEIGHT_PER_MINUTE,
        seed: int = 0,
        straddle: bool = True,
    ) -> None:
        """`socket_send_buffer` fixes each connection's SO_SNDBUF, so a slow reader backs up after few bytes.
        `messages_per_second` is the venue's limit on what a client sends (None: no limit, for tests of
        the control protocol itself). `rest_weight_limit` is the REST weight an IP may use per minute
        (replayer/request_weight.py; 0 counts it for the headers and the report but refuses nothing).
        `straddle` puts REST snapshots inside a depth event, as the live venue's are (off: at a frame
        boundary); `seed` fixes which states those are (replayer/replay_data.py).
        `log` gets one line per connection, subscription and session; `loop` replays the schedule again
        for the next client to subscribe after it ended (a session each); `rebase_time` moves recorded
        event times so the first frame reads as the session's start; `on_finished(session)` is called
        each time the schedule has been walked to its end."""
        if speed < 0:
            raise ValueError("speed must be >= 0")
        self.data = data
        self.schedule = schedule if schedule is not None else clean_schedule(data.frames)
        self.speed = speed
        self.host = host
        self._requested_port = port
        self._ping_interval = ping_interval_s
        self._ping_timeout = ping_timeout_s
        self._on_send = on_send
        self._keep_send_log = keep_send_log
        self._sndbuf = socket_send_buffer
        self._messages_per_second = messages_per_second
        self.books = VenueBooks(data, seed=seed, straddle=straddle)
        self._seed, self._straddle = seed, straddle
        self._depth_requests = 0
        self.stats = ServerStats()
        self.served: set[FaultTag] = set()
        self.clients: dict[int, ClientRecord] = {}
        self.depths_served: dict[str, list[SnapshotReach]] = {}
        """Per symbol, how far each REST depth answer reached: what a client's book can know beyond it."""
        self.finished = asyncio.Event()
        self._open: dict[int, _Client] = {}
        self._next_client_id = 1
        self._clock_started = asyncio.Event()
        self._clock_start_ns: int | None = None
        self._server: Server | None = None
        self._walker: asyncio.Task | None = None
        self._port: int | None = None
        self._refusal: RefuseHandshakes | None = None
        self._refusals_left = 0
        self._refused = 0
        self._rest_mode: RestBehaviour | None = None
        self._rest_left = 0
        self._rest_answered = 0
        self._buffer_limit: int | None = None
        self._half_open = False
        self.weight = RequestWeightLimit(rest_weight_limit)
        self.snapshots_served: list[SnapshotRecord] = []
        self._started_ns = time.monotonic_ns()
        self._log = log
        self._loop = loop
        self._on_finished = on_finished
        self._rebase_anchor = first_event_time_ms(f.payload for f in data.frames) if rebase_time else None
        self._rebase_ms = 0
        self.sessions: list[int] = []
        """Wall-clock ns at which each session's replay clock started (one, unless `loop`)."""
        self._slow_streams = slow_depth_streams(data.streams)
        self._aggregates: dict[str, DepthAggregate] = {}

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("server not started")
        return self._port

    @property
    def ws_url(self) -> str:
        return f"ws://{self._netloc()}"

    @property
    def rest_url(self) -> str:
        return f"http://{self._netloc()}"

    @property
    def clock_start_mono_ns(self) -> int | None:
        return self._clock_start_ns

    def _netloc(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    async def start(self) -> None:
        """Binds and starts the replay walker; raises OSError when the port cannot be bound."""
        self._server = await serve(
            self._handle,
            self.host,
            self._requested_port,
            process_request=self._process_request,
            compression=None,
            ping_interval=self._ping_interval,
            ping_timeout=self._ping_timeout,
            server_header=None,
            open_timeout=30,
        )
        self._port = self._server.sockets[0].getsockname()[1]
        self._walker = asyncio.create_task(self._walk(), name="venue-replay")

    def start_clock(self) -> None:
        """Starts the replay clock now, without waiting for a subscriber (idempotent)."""
        if not self._clock_started.is_set():
            self._clock_start_ns = time.monotonic_ns()
            self.sessions.append(time.time_ns())
            if self._rebase_anchor is not None:
                self._rebase_ms = self.sessions[-1] // 1_000_000 - self._rebase_anchor
            self._clock_started.set()
            self._note(f"session {len(self.sessions)}: replay clock started")

    async def wait_clock_started(self) -> None:
        """Returns once the replay clock runs: a client subscribed, or `start_clock` was called."""
        await self._clock_started.wait()

    async def stop(self) -> None:
        """Stops replay, closes every connection (1001, aborting after 2 s) and leaves no task behind."""
        if self._walker is not None:
            self._walker.cancel()
            await asyncio.gather(self._walker, return_exceptions=True)
            self._walker = None
        if self._server is None:
            return
        self.release_half_open()
        self._set_half_open(False)
        for client in self._open.values():
            client.record.close_cause = client.record.close_cause or "server_stop"
        self._server.close()
        try:
            await asyncio.wait_for(self._server.wait_closed(), 2.0)
        except TimeoutError:
            for client in list(self._open.values()):
                client.connection.transport.abort()
            await self._server.wait_closed()
        self._server = None

    def release_half_open(self) -> None:
        """Aborts every connection a HalfOpen silenced: the run is over, so the socket may close now."""
        for client in list(self._open.values()):
            if client.silent and not client.connection.transport.is_closing():
                client.record.close_cause = client.record.close_cause or "half_open"
                client.connection.transport.abort()

    def send_log(self, client_id: int) -> list[SendRecord]:
        return self.clients[client_id].sends

    # The replay walker.

    async def _walk(self) -> None:
        while True:
            await self._walk_once()
            if self._on_finished is not None:
                self._on_finished(len(self.sessions))
            if not self._loop:
                return
            self._new_session()

    def _new_session(self) -> None:
        """Back to the start of the schedule, the venue's book and fault state with it."""
        self._clock_started.clear()
        self._clock_start_ns = None
        self.books = VenueBooks(self.data, seed=self._seed, straddle=self._straddle)
        self._refusal, self._refusals_left = None, 0
        self._rest_mode, self._rest_left = None, 0
        self._buffer_limit = None
        self._set_half_open(False)
        self._aggregates.clear()
        self.finished.clear()

    async def _walk_once(self) -> None:
        await self._clock_started.wait()
        for entry in self.schedule:
            intended = await self._wait_due(entry.offset_ns)
            if isinstance(entry, Send):
                self.books.advance_to(entry.frame.index)
                await self._send(entry, intended)
            elif isinstance(entry, Withheld):
                if any(entry.stream in c.streams for c in self._listening()):
                    self._serve(entry.tags)
            elif isinstance(entry, Disconnect):
                self._disconnect(entry)
            elif isinstance(entry, Stall):
                await self._stall(entry)
            elif isinstance(entry, HalfOpen):
                self._silence(entry)
            elif isinstance(entry, RefuseHandshakes):
                self._refusal, self._refusals_left, self._refused = entry, entry.count, 0
            elif isinstance(entry, RestBehaviour):
                normal = entry.mode == "normal"
                self._rest_mode, self._rest_left = (None, 0) if normal else (entry, entry.count)
                self._rest_answered = 0
            elif isinstance(entry, ClientBufferLimit):
                self._buffer_limit = entry.max_bytes if entry.max_bytes > 0 else None
            self.stats.entries_walked += 1
        self.books.advance_all()
        for stream, aggregate in self._aggregates.items():
            self._send_slow(stream, aggregate.flush())
        self.finished.set()

    async def _wait_due(self, offset_ns: int) -> int:
        if self.speed == 0:
            return time.monotonic_ns()
        assert self._clock_start_ns is not None, "the walker waits for the clock to start"
        intended = self._clock_start_ns + int(offset_ns / self.speed)
        delay = intended - time.monotonic_ns()
        if delay > 0:
            await asyncio.sleep(delay / 1e9)
        return intended

    def _listening(self) -> list[_Client]:
        """The open connections that still hear the venue: not silenced by a HalfOpen, and not already
        being closed (a Disconnect's close frame queued, a slow or rate-limited client cut off)."""
        return [c for c in self._open.values() if not c.silent and c.record.close_cause is None]

    def _serve(self, tags: Tags, k: int | None = None) -> None:
        """Records that an entry's fault took effect: all its tags, or the k-th (the last one beyond)."""
        if not tags:
            return
        if k is None:
            self.served.update(tags)
        else:
            self.served.add(tags[min(k, len(tags) - 1)])

    async def _send(self, entry: Send, intended: int) -> None:
        stream = entry.frame.stream
        raw: bytes | None = None
        recipients = [c for c in self._listening() if stream in c.streams]
        combined_payload = entry.payload
        if self._rebase_ms:
            combined_payload = shift_event_times(combined_payload, self._rebase_ms)
        if stream in self._slow_streams:
            self._aggregate(stream, entry.offset_ns, combined_payload)
        if entry.frame.first_update_id is not None:
            symbol = symbol_of(stream)
            for client in recipients:
                client.first_depth.setdefault(symbol, entry.frame.index)
        for client in recipients:
            if client.combined:
                payload = combined_payload
            else:
                if raw is None:
                    raw = raw_data(combined_payload, stream) or combined_payload
                payload = raw
            self._enqueue(client, (payload, entry, intended), len(payload))
            if self._buffer_limit is not None:
                self._police_backlog(client)
        if self.speed == 0:
            for client in recipients:
                if client.id in self._open:
                    await client.idle.wait()
        else:
            await asyncio.sleep(0)  # let writers run between the sends of a burst, so backlogs are real

    def _aggregate(self, stream: str, offset_ns: int, payload: bytes) -> None:
        """Feeds the slow streams derived from `stream` that some client holds (computed only when held)."""
        for slow in self._slow_streams[stream]:
            aggregate = self._aggregates.get(slow)
            if aggregate is None:
                if not any(slow in c.streams for c in self._open.values()):
                    continue
                aggregate = self._aggregates[slow] = DepthAggregate()
            self._send_slow(slow, aggregate.add(offset_ns, payload))

    def _send_slow(self, stream: str, datas: list[bytes]) -> None:
        """Aggregated frames go out like control replies: not recorded frames, so not in the send log."""
        for data in datas:
            for client in self._open.values():
                if stream in client.streams:
                    payload = wrap_combined(stream, data) if client.combined else data
                    self._enqueue(client, (payload, None, None), len(payload))

    def _note(self, line: str) -> None:
        if self._log is not None:
            self._log(line)

    def _note_streams(self, client: _Client, streams: Sequence[str]) -> None:
        if not streams or self._log is None:
            return
        self._note(f"connection {client.id} subscribed to {', '.join(streams)}")
        served = set(self.data.streams).union(*self._slow_streams.values())
        missing = [name for name in streams if name not in served]
        if missing:
            self._note(
                f"connection {client.id}: {', '.join(missing)} not in the recording, so it gets nothing there; "
                f"recorded: {', '.join(self.data.streams)}"
            )

    def _police_backlog(self, client: _Client) -> None:
        """Drops a client that has stayed over the buffer limit for the grace period.

        Checked on every send to the client and once more when a grace period that began ends, so a
        reader that stays behind is dropped even when no further frame comes to trigger the check.
        """
        if not self._over_limit(client):
            client.over_limit_since = None
            return
        now = time.monotonic_ns()
        if client.over_limit_since is None:
            client.over_limit_since = now
            asyncio.get_running_loop().call_later(
                SLOW_CONSUMER_GRACE_NS / 1e9, self._grace_ended, client, client.over_limit_since
            )
        elif now - client.over_limit_since >= SLOW_CONSUMER_GRACE_NS:
            self._drop_slow(client)

    def _grace_ended(self, client: _Client, since: int) -> None:
        if client.id not in self._open or client.over_limit_since != since or self._buffer_limit is None:
            return
        if self._over_limit(client):
            self._drop_slow(client)
        else:
            client.over_limit_since = None

    def _over_limit(self, client: _Client) -> bool:
        assert self._buffer_limit is not None, "callers police backlogs only under a limit"
        transport = client.connection.transport
        in_kernel_queue = transport.get_write_buffer_size()
        return in_kernel_queue > 0 and client.queued_bytes + in_kernel_queue > self._buffer_limit

    def _drop_slow(self, client: _Client) -> None:
        self.stats.slow_consumers_dropped += 1
        client.record.close_cause = "slow_consumer"
        client.outbox.clear()
        client.queued_bytes = 0
        client.connection.transport.abort()

    def _close_too_many_requests(self, client: _Client) -> None:
        """Closes at once: what was queued for the client is discarded, as the venue cuts it off."""
        self.stats.too_many_requests += 1
        client.record.close_cause = "too_many_requests"
        client.outbox.clear()
        client.queued_bytes = 0
        self._enqueue(client, _CloseMarker(*TOO_MANY_REQUESTS_CLOSE), 0)

    def _disconnect(self, entry: Disconnect) -> None:
        self.stats.disconnects[entry.mode] += 1
        affected = self._listening()
        if affected:
            self._serve(entry.tags)
        for client in affected:
            client.record.close_cause = f"disconnect:{entry.mode}"
            if entry.mode == "close":
                self._enqueue(client, _CloseMarker(entry.code, entry.reason), 0)
                continue
            transport = client.connection.transport
            if entry.mode == "reset":
                sock = transport.get_extra_info("socket")
                if sock is not None:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            transport.abort()

    def _wall_seconds(self, duration_ns: int) -> float:
        """A scheduled duration in wall time: scaled by speed like offsets, as recorded at speed 0."""
        return duration_ns / 1e9 if self.speed == 0 else duration_ns / self.speed / 1e9

    async def _stall(self, entry: Stall) -> None:
        if self._listening():
            self._serve(entry.tags)
        seconds = self._wall_seconds(entry.duration_ns)
        if not entry.answer_pings:
            self._set_half_open(True)
        try:
            await asyncio.sleep(seconds)
        finally:
            self._set_half_open(False)

    def _silence(self, entry: HalfOpen) -> None:
        """Every connection open now hears nothing more and says nothing more, for good."""
        affected = self._listening()
        if affected:
            self._serve(entry.tags)
        for client in affected:
            client.silent = True
            client.outbox.clear()
            client.queued_bytes = 0
            client.over_limit_since = None
            client.idle.set()
            self.stats.half_open_connections += 1
            self._mute(client.connection)

    def _mute(self, connection: ServerConnection) -> None:
        connection.transport.pause_reading()
        if connection.keepalive_task is not None:
            connection.keepalive_task.cancel()
            connection.keepalive_task = None

    def _set_half_open(self, half_open: bool) -> None:
        """Half-open: read nothing (pings go unanswered) and send no keepalive pings, on every connection."""
        if half_open == self._half_open:
            return
        self._half_open = half_open
        for client in self._listening():
            self._apply_half_open(client.connection)

    def _apply_half_open(self, connection: ServerConnection) -> None:
        if self._half_open:
            self._mute(connection)
        elif not connection.transport.is_closing():
            connection.transport.resume_reading()
            if connection.keepalive_task is None:
                connection.start_keepalive()

    # Connections.

    def _enqueue(self, client: _Client, item: object, size: int) -> None:
        if client.silent:
            return
        client.outbox.append(item)
        client.queued_bytes += size
        client.idle.clear()
        client.wake.set()

    async def _handle(self, connection: ServerConnection) -> None:
        assert connection.request is not None, "websockets hands over a connection after its handshake"
        ws_path = parse_ws_path(connection.request.path)
        assert ws_path is not None, "_process_request answered 404 to any other path"
        rate = MessageRateLimit(self._messages_per_second) if self._messages_per_second is not None else None
        client = _Client(self._next_client_id, connection, ws_path.combined, ws_path.streams, rate)
        self._next_client_id += 1
        self.clients[client.id] = client.record
        self._open[client.id] = client
        self.stats.clients_connected += 1
        self.stats.clients_open += 1
        if self._sndbuf is not None:
            sock = connection.transport.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self._sndbuf)
        if self._half_open:
            self._apply_half_open(connection)
        client.writer = asyncio.create_task(self._write_loop(client), name=f"venue-writer-{client.id}")
        self._note(f"connection {client.id} from {_peer(connection.remote_address)}: {connection.request.path}")
        self._note_streams(client, list(client.streams))
        if client.streams:
            self.start_clock()
        try:
            async for message in connection:
                if client.rate is not None and not client.rate.admit(time.monotonic_ns()):
                    self._close_too_many_requests(client)
                    break
                self._control(client, message)
        except ConnectionClosed:
            pass
        finally:
            del self._open[client.id]
            self.stats.clients_open -= 1
            client.record.closed_mono_ns = time.monotonic_ns()
            client.record.close_cause = client.record.close_cause or "client"
            self._note(f"connection {client.id} closed ({client.record.close_cause})")
            client.idle.set()
            if not (client.outbox and isinstance(client.outbox[0], _CloseMarker)):
                client.writer.cancel()
            await asyncio.gather(client.writer, return_exceptions=True)

    async def _write_loop(self, client: _Client) -> None:
        connection = client.connection
        record = client.record
        try:
            while True:
                while not client.outbox:
                    client.idle.set()
                    client.wake.clear()
                    await client.wake.wait()
                item = client.outbox[0]
                if isinstance(item, _CloseMarker):
                    await connection.close(item.code, item.reason)
                    return
                client.outbox.popleft()
                payload, entry, intended = item
                client.queued_bytes -= len(payload)
                write_ns = time.monotonic_ns()
                await connection.send(payload, text=entry is None or not entry.binary)
                if entry is None:
                    continue
                self.stats.frames_sent += 1
                self.stats.bytes_sent += len(payload)
                if entry.tags:
                    self.served.update(entry.tags)
                if self._keep_send_log:
                    frame = entry.frame
                    record.sends.append(
                        SendRecord(frame.index, frame.stream, frame.last_update_id, intended, write_ns, entry.fault)
                    )
                if self._on_send is not None:
                    self._on_send(client.id, entry, intended, write_ns)
        except ConnectionClosed:
            pass
        finally:
            client.idle.set()

    def _control(self, client: _Client, message: str | bytes) -> None:
        try:
            request = parse_control(message)
        except ControlError as exc:
            reply = exc.reply()
        else:
            result: object = None
            if request.method == "SUBSCRIBE":
                client.streams.update(dict.fromkeys(request.params))
                self._note_streams(client, request.params)
            elif request.method == "UNSUBSCRIBE":
                for name in request.params:
                    client.streams.pop(name, None)
            elif request.method == "LIST_SUBSCRIPTIONS":
                result = list(client.streams)
            elif request.method == "SET_PROPERTY":
                client.combined = request.params[1]
            elif request.method == "GET_PROPERTY":
                result = client.combined
            reply = result_reply(request.id, result)
        self._enqueue(client, (reply, None, None), len(reply))
        if client.streams:
            self.start_clock()

    # Plain HTTP: REST, and handshakes refused by a fault.

    async def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        parts = urlsplit(request.path)
        if parts.path.startswith(("/api/", "/sapi/")):
            peer = connection.remote_address
            ip = str(peer[0]) if peer else ""
            return await self._rest(parts.path, parse_qs(parts.query, keep_blank_values=True), ip)
        if parse_ws_path(request.path) is None:
            return _response(404, b'{"code":-1000,"msg":"Not found."}')
        unit = unserved_time_unit(request.path)
        if unit is not None:
            msg = f"timeUnit={unit} is not served: the recorded frames are in milliseconds."
            return _response(400, rest.RestError(400, -1000, msg).body())
        if request.headers.get("Upgrade", "").lower() == "websocket" and self._refusals_left > 0:
            self._refusals_left -= 1
            self.stats.handshakes_refused += 1
            assert self._refusal is not None, "set together with _refusals_left"
            self._serve(self._refusal.tags, self._refused)
            self._refused += 1
            error = rest.error_for_status(self._refusal.status)
            return _response(error.status, error.body())
        return None

    async def _rest(self, route: str, query: dict[str, list[str]], ip: str) -> Response:
        endpoint = route.rsplit("/", 1)[-1]
        decision = self.weight.admit(ip, rest.request_weight(route, query), self._weight_clock_ns())
        weight = rest.used_weight_headers(decision.used)
        if decision.status != 200:
            self.stats.rest_requests[f"{endpoint}:{decision.status}"] += 1
            wait_s = self._wall_seconds(decision.retry_after_ns or 0)
            if decision.status == 429:
                error = rest.weight_exceeded(self.weight.limit)
            else:
                error = rest.ip_banned(time.time_ns() // 1_000_000 + round(wait_s * 1000))
            return _response(error.status, error.body(), [*weight, rest.retry_after_header(wait_s)])
        try:
            if route == rest.PING_PATH:
                body = rest.ping_body()
            elif route == rest.TIME_PATH:
                body = rest.time_body(time.time_ns() // 1_000_000)
            elif route == rest.EXCHANGE_INFO_PATH:
                body = self._exchange_info(query)
            elif route == rest.DEPTH_PATH:
                body = await self._depth(query)
            elif route == rest.BOOK_TICKER_PATH:
                body = self._book_ticker(query)
            elif route == rest.SYSTEM_STATUS_PATH:
                body = rest.system_status_body()
            else:
                self.stats.rest_requests[f"{endpoint}:404"] += 1
                return _response(404, b'{"code":-1000,"msg":"Not found."}', weight)
        except rest.RestError as error:
            self.stats.rest_requests[f"{endpoint}:{error.status}"] += 1
            return _response(error.status, error.body(), weight)
        self.stats.rest_requests[f"{endpoint}:200"] += 1
        return _response(200, body, weight)

    def _weight_clock_ns(self) -> int:
        """The clock request-weight minutes run on: replay time, scaled by speed like every scheduled
        duration (at speed 8 a minute of weight lasts 7.5 s), so a client's snapshot fetches per recorded
        minute meet the limit they would meet live; wall time at speed 0."""
        elapsed = time.monotonic_ns() - self._started_ns
        return elapsed if self.speed == 0 else round(elapsed * self.speed)

    def _exchange_info(self, query: dict[str, list[str]]) -> bytes:
        asked = rest.exchange_info_params(query)
        names = self._known(asked.names)
        if asked.status not in (None, rest.SYMBOL_STATUS):
            names = []
        specs = [self.data.specs[n] for n in names]
        return rest.exchange_info_body(
            specs, time.time_ns() // 1_000_000, show_permission_sets=asked.show_permission_sets
        )

    def _book_ticker(self, query: dict[str, list[str]]) -> bytes:
        """Best bid and ask from the venue book at the current replay position, like REST depth."""
        asked = rest.book_ticker_params(query)
        entries = []
        for name in self._known(asked):
            book = self.books.book(name)
            if book is None:
                raise rest.invalid_symbol()
            bids, asks = book.bids(1), book.asks(1)
            entries.append(rest.book_ticker_entry(name, bids[0] if bids else None, asks[0] if asks else None))
        return rest.book_ticker_body(entries, single="symbol" in query)

    def _known(self, names: list[str] | None) -> list[str]:
        """`names` (every recorded symbol when None), or -1121 when one was not recorded."""
        if names is None:
            return list(self.data.symbols)
        if any(name not in self.data.specs for name in names):
            raise rest.invalid_symbol()
        return names

    async def _depth(self, query: dict[str, list[str]]) -> bytes:
        symbol, limit = rest.depth_params(query)
        if self.books.book(symbol) is None:
            raise rest.invalid_symbol()
        behaviour = self._take_rest_behaviour()
        request = self._depth_requests
        self._depth_requests += 1
        delay_ns, shift = 0, 0
        if behaviour is not None:
            self.stats.rest_faults[behaviour.mode] += 1
            if behaviour.mode == "error":
                raise rest.error_for_status(behaviour.status)
            if behaviour.mode == "stale":
                shift = -behaviour.lag_frames
            elif behaviour.mode == "too_new":
                shift = behaviour.lag_frames
            elif behaviour.mode == "slow":
                delay_ns = behaviour.delay_ns
        if behaviour is not None and behaviour.mode == "barely_stale":
            first = self._newest_first_depth(symbol)
            book = self.books.snapshot_before(symbol, first, behaviour.lag_frames, request)
        else:
            book = self.books.snapshot(symbol, request, shift)
        bids, asks = book.bids(limit), book.asks(limit)
        self.depths_served.setdefault(symbol, []).append(reach_of(book.last_update_id, limit, bids, asks))
        body = rest.depth_body(book.last_update_id, bids, asks)
        if delay_ns:
            await asyncio.sleep(self._wall_seconds(delay_ns))
        top_bids, top_asks = tuple(bids[:SERVED_LEVELS]), tuple(asks[:SERVED_LEVELS])
        record = SnapshotRecord(symbol, book.last_update_id, time.monotonic_ns(), top_bids, top_asks)
        self.snapshots_served.append(record)
        return body

    def _newest_first_depth(self, symbol: str) -> int | None:
        """The first depth frame of `symbol` queued to the newest open connection holding its stream
        (None: nothing queued to it yet). Every client is on loopback, one IP, so the newest is the
        requester's as far as the venue can tell."""
        for client in sorted(self._open.values(), key=lambda c: c.id, reverse=True):
            if any(is_depth_diff(name) and symbol_of(name) == symbol for name in client.streams):
                return client.first_depth.get(symbol)
        return None

    def _take_rest_behaviour(self) -> RestBehaviour | None:
        if self._rest_mode is None or self._rest_left <= 0:
            return None
        self._rest_left -= 1
        self._serve(self._rest_mode.tags, self._rest_answered)
        self._rest_answered += 1
        return self._rest_mode


def slow_depth_streams(recorded: Sequence[str]) -> dict[str, list[str]]:
    """For each recorded `<s>@depth@100ms`, the slower diff-depth names Binance computes from the same
    updates (`<s>@depth`, `<s>@depth@1000ms`) that the recording does not hold itself."""
    have = set(recorded)
    slow: dict[str, list[str]] = {}
    for stream in recorded:
        if stream.endswith("@depth@100ms"):
            base = stream.removesuffix("@100ms")
            names = [name for name in (base, f"{base}@1000ms") if name not in have]
            if names:
                slow[stream] = names
    return slow


def _peer(address: object) -> str:
    if isinstance(address, tuple) and len(address) >= 2:
        return f"{address[0]}:{address[1]}"
    return str(address)


def _response(status: int, body: bytes, extra_headers: Sequence[tuple[str, str]] = ()) -> Response:
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    headers = Headers(
        [
            ("Content-Type", "application/json;charset=UTF-8"),
            ("Content-Length", str(len(body))),
            *extra_headers,
            ("Connection", "close"),
        ]
    )
    return Response(status, phrase, headers, body)


class ServerThread:
    """Runs a VenueServer on an event loop in its own thread, for a harness whose subject has another loop."""

    def __init__(self, data: ReplayData, **kwargs: Any) -> None:
        self._data = data
        self._kwargs = kwargs
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="venue-server", daemon=True)
        self.server: VenueServer | None = None

    def start(self, timeout: float = 10.0) -> VenueServer:
        """Returns once the server listens; raises what `VenueServer.start` raised (OSError for a busy port)."""
        self._thread.start()
        self.server = asyncio.run_coroutine_threadsafe(self._create(), self._loop).result(timeout)
        return self.server

    async def _create(self) -> VenueServer:
        server = VenueServer(self._data, **self._kwargs)
        await server.start()
        return server

    def wait_finished(self, timeout: float) -> bool:
        """Blocks until the server has walked its whole schedule (True) or `timeout` seconds pass (False)."""
        if self.server is None:
            raise RuntimeError("server not started")
        future = asyncio.run_coroutine_threadsafe(self.server.finished.wait(), self._loop)
        try:
            future.result(timeout)
        except TimeoutError:
            future.cancel()
            return False
        return True

    def stop(self, timeout: float = 10.0) -> None:
        if self.server is not None and self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(self.server.stop(), self._loop).result(timeout)
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout)
        self._loop.close()

    def __enter__(self) -> VenueServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
