"""The fake venue's shell: WebSocket streams and REST on one loopback port, around `VenueCore`.

Every decision is the pure core's (replayer/venue_core.py: subscriptions, control replies, limits,
REST answers, fault countdowns, the slow-consumer decision) and every venue shape its wire's
(harness/venues/wire.py; Binance spot by default). This module only moves bytes and reads the clock:
it hands the core each HTTP request, connection, client message and due schedule entry with the time,
carries out the actions it returns (replayer/venue_actions.py), and tells it what was written.

One replay clock for every client, as on a real venue: a client that connects late gets the stream
from that moment on. The clock starts when the first client holds a subscription (by its path or a
SUBSCRIBE), so a test or a replay run sees the schedule from its first entry, deterministically.
At `speed` 1 entries go out at their recorded offsets, at 2 twice as fast (the walker sleeps on a
timerfd, `replayer/due_timer.py`, at most once per PACING_GRAIN_NS, and sends everything due by then
in one write per client); at 0 as fast as the clients read (each batch of Sends waits until every
recipient's writer has handed it to the socket). When the schedule ends the connections stay open
and idle and `finished` is set.

Each client has its own outbox and writer task, so one slow reader delays only itself; the shell
reports its unsent backlog (its outbox plus the kernel's buffer) to the core while a ClientBufferLimit
is in force. A Stall holds the walker for its duration (real time at speed 0), pausing every
connection when it answers no pings; a slow REST answer is held for its delay. `ServerThread` runs the
server on an event loop in a thread of its own, for a harness whose subject lives on another loop.
"""

from __future__ import annotations

import asyncio
import http
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from itertools import chain
from typing import Any, Literal

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.protocol import State

from harness.level_match import SnapshotReach
from harness.venues.binance_spot.wire import WIRE as BINANCE_SPOT
from harness.venues.wire import HttpReply, VenueWire
from replayer.due_timer import DueTimer
from replayer.replay_data import ReplayData, VenueBooks
from replayer.request_weight import RequestWeightLimit
from replayer.timeline import FaultTag, Send, TimelineEntry
from replayer.venue_actions import (
    Abort,
    Action,
    CheckBacklog,
    CheckIdle,
    ClockStarted,
    Close,
    Note,
    Pause,
    Resume,
    Wait,
    Write,
)
from replayer.venue_core import VenueCore
from replayer.venue_limits import (
    DEFAULT_HANDSHAKE_TIMEOUT_S,
    DEFAULT_MAX_BACKLOG_BYTES,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_FRAME_BYTES,
    VenueLimits,
)
from replayer.venue_records import ClientRecord, SendLog, ServerStats, SnapshotRecord

CUT_OFF_CLOSE_TIMEOUT_S = 1.0
"""How long the venue waits for the close reply of a client it cut off (too many requests, a binary
frame) before dropping the connection. It no longer reads that client, whose unread messages may stand
in front of the reply, so websockets' 10 s would hold every flooding connection that long."""

WALK_BATCH = 64
WALK_BATCH_BYTES = 16 * 1024
"""Most recorded frames, and bytes written, the walker queues before it lets the writers run (a burst
after a stall, or everything at speed 0): each writer then sends them in one socket write, the loop's
other work (client messages, REST, pings) waits for at most that much, and at speed 0 a reader that
stops reading holds the walker within about one batch of where it stopped."""

PACING_GRAIN_NS = 500_000
"""The walker wakes at most once per grain: an entry due sooner after the last wake-up waits for the
grain's end and goes out with every other entry due by then, in one write per client. Entries further
apart than the grain go out at their due time (to within the timerfd's tens of microseconds); closer
ones up to one grain late, for a wake-up, a task switch and a syscall per grain instead of per frame:
at 10,000 frames/s on a busy machine that CPU is what decides whether the venue keeps up at all."""

OnSend = Callable[[int, Send, int, int], None]
"""`on_send(client_id, entry, intended_mono_ns, write_mono_ns)`, called on the server's loop for each
recorded frame of each socket write."""
OnWritten = Callable[[int, Sequence[Write], int], None]
"""`on_written(client_id, writes, write_mono_ns)`, called on the server's loop once per socket write with
its recorded frames (each Write's `entry` set) in order: what `on_send` hears, in a call per write
instead of per frame."""

VENUE: Literal["venue"] = "venue"
"""A limit or heartbeat argument left to the venue's wire (its published numbers)."""


class _Client:
    __slots__ = ("connection", "cut", "id", "idle", "outbox", "queued_bytes", "silent", "wake", "writer")

    def __init__(self, client_id: int, connection: ServerConnection) -> None:
        self.id = client_id
        self.connection = connection
        self.outbox: deque[Write | Close] = deque()
        self.queued_bytes = 0
        self.wake = asyncio.Event()
        self.idle = asyncio.Event()
        self.idle.set()
        self.writer: asyncio.Task | None = None
        self.silent = False
        self.cut = False
        """The venue cut the client off: nothing more is read from it."""

    def discard(self) -> None:
        self.outbox.clear()
        self.queued_bytes = 0


class VenueServer:
    """The fake venue on `host:port`; `await start()`, then clients connect to `ws_url` and `rest_url`."""

    def __init__(
        self,
        data: ReplayData,
        *,
        schedule: Sequence[TimelineEntry] | None = None,
        speed: float = 1.0,
        host: str = "127.0.0.1",
        port: int = 0,
        wire: VenueWire = BINANCE_SPOT,
        ping_interval_s: float | Literal["venue"] | None = VENUE,
        ping_timeout_s: float | Literal["venue"] | None = VENUE,
        on_send: OnSend | None = None,
        on_written: OnWritten | None = None,
        keep_send_log: bool = True,
        socket_send_buffer: int | None = None,
        messages_per_second: int | Literal["venue"] | None = VENUE,
        max_streams_per_connection: int | Literal["venue"] | None = VENUE,
        max_frame_bytes: int | None = DEFAULT_MAX_FRAME_BYTES,
        max_connections: int | None = DEFAULT_MAX_CONNECTIONS,
        handshake_timeout_s: float | None = DEFAULT_HANDSHAKE_TIMEOUT_S,
        max_backlog_bytes: int | None = DEFAULT_MAX_BACKLOG_BYTES,
        rest_weight_limit: int | Literal["venue"] = VENUE,
        log: Callable[[str], None] | None = None,
        loop: bool = False,
        rebase_time: bool = False,
        on_finished: Callable[[int], None] | None = None,
        seed: int = 0,
        straddle: bool = True,
    ) -> None:
        """`socket_send_buffer` fixes each connection's SO_SNDBUF, so a slow reader backs up after few bytes.
        Limits (docs/fake-venue.md, "Limits"; None turns one off, `"venue"` keeps the wire's number):
        `messages_per_second` a client may send (None: for tests of the control protocol itself),
        `max_streams_per_connection`, `max_frame_bytes` of a client message (1009 past it),
        `max_connections` open at once (HTTP 503 past it), `handshake_timeout_s` from accept to answer (a
        request left half-sent is closed then), `max_backlog_bytes` held for one client that does not read
        (dropped as a slow consumer past it), `rest_weight_limit` per IP and minute
        (replayer/request_weight.py; 0 counts it for the headers and the report but refuses nothing).
        `straddle` puts REST snapshots inside a depth event, as the live venue's are (off: at a frame
        boundary); `seed` fixes which states those are (replayer/replay_data.py).
        `log` gets one line per connection, subscription and session; `loop` replays the schedule again
        for the next client to subscribe after it ended (a session each); `rebase_time` moves recorded
        event times so the first frame reads as the session's start; `on_finished(session)` is called
        each time the schedule has been walked to its end."""
        limits = VenueLimits.of(wire).but(
            max_frame_bytes=max_frame_bytes, max_connections=max_connections, max_backlog_bytes=max_backlog_bytes
        )
        if messages_per_second != VENUE:
            limits = limits.but(messages_per_second=messages_per_second)
        if max_streams_per_connection != VENUE:
            limits = limits.but(streams_per_connection=max_streams_per_connection)
        if rest_weight_limit != VENUE:
            limits = limits.but(rest_weight_per_minute=rest_weight_limit)
        self._started_ns = time.monotonic_ns()
        self.core = VenueCore(
            data,
            wire,
            limits=limits,
            schedule=schedule,
            speed=speed,
            started_ns=self._started_ns,
            keep_send_log=keep_send_log,
            rebase_time=rebase_time,
            seed=seed,
            straddle=straddle,
        )
        self.host = host
        self._requested_port = port
        beat = wire.heartbeat
        self._ping_interval = beat.server_ping_interval_s if ping_interval_s == VENUE else ping_interval_s
        self._ping_timeout = beat.pong_timeout_s if ping_timeout_s == VENUE else ping_timeout_s
        self._on_send = on_send
        self._on_written = on_written
        self._sndbuf = socket_send_buffer
        if handshake_timeout_s is not None and not handshake_timeout_s > 0:
            raise ValueError(f"handshake_timeout_s must be > 0 (None turns it off), got {handshake_timeout_s}")
        self._handshake_timeout_s = handshake_timeout_s
        self.finished = asyncio.Event()
        self._clients: dict[int, _Client] = {}
        self._clock_started = asyncio.Event()
        self._batched: set[int] = set()
        """Clients written to since the walker last let the writers run (`_end_batch`)."""
        self._batch_bytes = 0
        self._server: Server | None = None
        self._walker: asyncio.Task | None = None
        self._timer: DueTimer | None = None
        """Wakes the walker when an entry is due, to within tens of microseconds (None: asyncio's timers)."""
        self._port: int | None = None
        self._log = log
        self._loop = loop
        self._on_finished = on_finished

    # What the core keeps, read by the harness, the report and tests.

    @property
    def data(self) -> ReplayData:
        return self.core.data

    @property
    def schedule(self) -> Sequence[TimelineEntry]:
        return self.core.schedule

    @property
    def speed(self) -> float:
        return self.core.speed

    @property
    def limits(self) -> VenueLimits:
        return self.core.limits

    @property
    def books(self) -> VenueBooks:
        return self.core.books

    @property
    def stats(self) -> ServerStats:
        return self.core.stats

    @property
    def served(self) -> set[FaultTag]:
        return self.core.served

    @property
    def clients(self) -> dict[int, ClientRecord]:
        return self.core.clients

    @property
    def snapshots_served(self) -> list[SnapshotRecord]:
        return self.core.snapshots_served

    @property
    def depths_served(self) -> dict[str, list[SnapshotReach]]:
        """Per symbol, how far each REST depth answer reached: what a client's book can know beyond it."""
        return self.core.depths_served

    @property
    def weight(self) -> RequestWeightLimit:
        return self.core.weight

    @property
    def sessions(self) -> list[int]:
        """Wall-clock ns at which each session's replay clock started (one, unless `loop`)."""
        return self.core.sessions

    @property
    def clock_start_mono_ns(self) -> int | None:
        return self.core.clock_start_ns

    def send_log(self, client_id: int) -> SendLog:
        return self.clients[client_id].sends

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

    def _netloc(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    # Life.

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
            max_size=self.core.limits.max_frame_bytes,
            server_header=None,
            open_timeout=self._handshake_timeout_s,
        )
        self._port = self._server.sockets[0].getsockname()[1]
        if self.core.speed != 0:
            self._timer = DueTimer.create()
        self._walker = asyncio.create_task(self._walk(), name="venue-replay")

    def start_clock(self) -> None:
        """Starts the replay clock now, without waiting for a subscriber (idempotent)."""
        self._do(self.core.start_clock(time.monotonic_ns(), time.time_ns()))

    async def wait_clock_started(self) -> None:
        """Returns once the replay clock runs: a client subscribed, or `start_clock` was called."""
        await self._clock_started.wait()

    async def stop(self) -> None:
        """Stops replay, closes every connection (1001, aborting after 2 s) and leaves no task behind."""
        if self._walker is not None:
            self._walker.cancel()
            await asyncio.gather(self._walker, return_exceptions=True)
            self._walker = None
        if self._timer is not None:
            self._timer.close()
            self._timer = None
        if self._server is None:
            return
        self.release_half_open()
        self._do(self.core.stall_ended())
        self.core.stopping()
        self._server.close()
        try:
            await asyncio.wait_for(self._server.wait_closed(), 2.0)
        except TimeoutError:
            for client in list(self._clients.values()):
                client.connection.transport.abort()
            await self._server.wait_closed()
        self._server = None

    def release_half_open(self) -> None:
        """Aborts every connection a HalfOpen silenced: the run is over, so the socket may close now."""
        self._do(self.core.release_silenced())

    # The replay walker.

    async def _walk(self) -> None:
        while True:
            await self._walk_once()
            if self._on_finished is not None:
                self._on_finished(len(self.sessions))
            if not self._loop:
                return
            self.core.new_session()
            self._clock_started.clear()
            self.finished.clear()

    async def _walk_once(self) -> None:
        core = self.core
        # The first entry is made before the clock starts: making it reads the recording's first block
        # (about 10 ms for 10,000 frames), which would otherwise make the schedule's first frames late.
        entries = iter(core.schedule)
        first = next(entries, None)
        await self._clock_started.wait()
        paced = core.speed != 0
        batch = 0
        woke = 0
        cap = self._batch_bytes_cap()
        for entry in entries if first is None else chain((first,), entries):
            send = isinstance(entry, Send)
            if paced:
                intended = core.due_ns(entry.offset_ns)
                if intended > time.monotonic_ns():
                    if self._batched:
                        await self._end_batch()
                    batch = 0
                    await self._sleep_until(max(intended, woke + PACING_GRAIN_NS))
                    woke = time.monotonic_ns()
            else:
                intended = time.monotonic_ns()
            if batch and (batch >= WALK_BATCH or self._batch_bytes >= cap or not send):
                await self._end_batch()
                batch = 0
            stall = self._do(core.entry(entry, intended))
            if send:
                batch += 1
            else:
                cap = self._batch_bytes_cap()  # a ClientBufferLimit changes it
            if stall is not None:
                if self._batched:
                    await self._end_batch()
                batch = 0
                try:
                    await asyncio.sleep(stall)
                finally:
                    self._do(core.stall_ended())
        await self._end_batch()
        self._do(core.finish())
        self.finished.set()

    def _batch_bytes_cap(self) -> int:
        """WALK_BATCH_BYTES, or less while a ClientBufferLimit is in force: a batch never exceeds the
        buffer a client is allowed, so a client is judged on what it failed to take, not on a batch."""
        limit = self.core.buffer_limit
        return WALK_BATCH_BYTES if limit is None else min(WALK_BATCH_BYTES, limit)

    async def _end_batch(self) -> None:
        """What the walker queued since the last call goes out now: the writers run, then each client's
        backlog is checked once (once per batch is as good as once per frame: nothing is written in
        between). At speed 0 the walker waits until the writers have handed the batch to their sockets
        (the pace of the slowest reader); at other speeds it only yields to them, so a burst's backlog
        is real. With nothing queued it yields all the same: a walker catching up on frames nobody listens
        to lets clients in."""
        batched = self._batched
        self._batched = set()
        self._batch_bytes = 0
        if self.core.speed != 0 or not batched:
            await asyncio.sleep(0)
        else:
            for conn in batched:
                client = self._clients.get(conn)
                if client is not None:
                    await client.idle.wait()
        if self.core.backlog_limit is not None:
            for conn in batched:
                self._check_backlog(conn, None)

    async def _sleep_until(self, due_ns: int) -> None:
        if self._timer is not None:
            await self._timer.until(due_ns)
        else:
            await asyncio.sleep((due_ns - time.monotonic_ns()) / 1e9)

    # Carrying out the core's actions.

    def _do(self, actions: list[Action]) -> float | None:
        """Carries out `actions` in order; returns a Wait's seconds for the walker to hold, if one came."""
        wait: float | None = None
        for action in actions:
            if isinstance(action, Write):
                self._write(action)
            elif isinstance(action, Wait):
                wait = action.seconds
            elif isinstance(action, Note):
                if self._log is not None:
                    self._log(action.line)
            elif isinstance(action, ClockStarted):
                self._clock_started.set()
            elif isinstance(action, CheckBacklog):
                delay = max(0, action.at_mono_ns - time.monotonic_ns()) / 1e9
                asyncio.get_running_loop().call_later(delay, self._check_backlog, action.conn, action.since_ns)
            elif isinstance(action, CheckIdle):
                delay = max(0, action.at_mono_ns - time.monotonic_ns()) / 1e9
                asyncio.get_running_loop().call_later(delay, self._check_idle, action.conn)
            else:
                client = self._clients.get(action.conn)
                if client is not None:
                    self._control(client, action)
        return wait

    def _write(self, action: Write) -> None:
        client = self._clients.get(action.conn)
        if client is None or client.silent or client.cut:
            return
        outbox = client.outbox
        if not outbox:  # the writer is woken once per burst: it takes everything queued when it runs
            client.idle.clear()
            client.wake.set()
        outbox.append(action)
        size = len(action.payload)
        client.queued_bytes += size
        self._batched.add(client.id)
        self._batch_bytes += size

    def _check_backlog(self, conn: int, since_ns: int | None) -> None:
        client = self._clients.get(conn)
        if client is None:
            return
        in_kernel = client.connection.transport.get_write_buffer_size()
        self._do(self.core.backlog(conn, client.queued_bytes, in_kernel, time.monotonic_ns(), since_ns))

    def _check_idle(self, conn: int) -> None:
        if conn in self._clients:
            self._do(self.core.idle(conn, time.monotonic_ns()))

    def _control(self, client: _Client, action: Close | Abort | Pause | Resume) -> None:
        transport = client.connection.transport
        if isinstance(action, Close):
            if action.discard:
                client.discard()
                client.cut = True
            client.outbox.append(action)
            client.idle.clear()
            client.wake.set()
        elif isinstance(action, Abort):
            client.discard()
            if action.reset:
                sock = transport.get_extra_info("socket")
                if sock is not None:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            transport.abort()
        elif isinstance(action, Pause):
            if action.for_good:
                client.silent = True
                client.discard()
                client.idle.set()
            transport.pause_reading()
            connection = client.connection
            if connection.keepalive_task is not None:
                connection.keepalive_task.cancel()
                connection.keepalive_task = None
        elif not transport.is_closing():
            transport.resume_reading()
            if client.connection.keepalive_task is None:
                client.connection.start_keepalive()

    # Connections.

    async def _handle(self, connection: ServerConnection) -> None:
        assert connection.request is not None, "websockets hands over a connection after its handshake"
        path = connection.request.path
        conn_id, actions = self.core.open(path, connection.remote_address, time.monotonic_ns(), time.time_ns())
        client = self._clients[conn_id] = _Client(conn_id, connection)
        if self._sndbuf is not None:
            sock = connection.transport.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self._sndbuf)
        client.writer = asyncio.create_task(self._write_loop(client), name=f"venue-writer-{conn_id}")
        self._do(actions)
        try:
            if not client.cut:
                async for message in connection:
                    self._do(self.core.receive(conn_id, message, time.monotonic_ns(), time.time_ns()))
                    if client.cut:
                        break
        except ConnectionClosed:
            pass
        finally:
            del self._clients[conn_id]
            self._do(self.core.closed(conn_id, time.monotonic_ns()))
            client.idle.set()
            if not (client.outbox and isinstance(client.outbox[0], Close)):
                client.writer.cancel()
            await asyncio.gather(client.writer, return_exceptions=True)

    async def _write_loop(self, client: _Client) -> None:
        """Writes what is queued for `client`, all of it at once, in one `transport.write`: a burst costs
        one syscall and no task switch per frame. Data frames are framed here (`_frame_head`: the server
        never masks and serves without extensions), which is websockets' own `Frame.serialize` output at
        a fraction of its cost per frame; close frames and pings stay websockets'. Every frame of one write
        is stamped with the same `write_mono_ns`, taken just before it: when its bytes went to the socket."""
        connection = client.connection
        protocol = connection.protocol
        assert not protocol.extensions, "the venue serves without compression: frames are written as they are"
        transport = connection.transport
        outbox = client.outbox
        core = self.core
        on_send, on_written = self._on_send, self._on_written
        try:
            while True:
                while not outbox:
                    client.idle.set()
                    client.wake.clear()
                    await client.wake.wait()
                item = outbox[0]
                if isinstance(item, Close):
                    if item.discard:
                        connection.close_timeout = CUT_OFF_CLOSE_TIMEOUT_S
                    await connection.close(item.code, item.reason)
                    return
                if protocol.state is not State.OPEN:  # closing: websockets waits for the close, then raises
                    outbox.popleft()
                    await connection.send(item.payload, text=item.text)
                    continue
                parts: list[bytes] = []
                written: list[Write] = []
                size = 0
                while outbox and not isinstance(item := outbox[0], Close):
                    outbox.popleft()
                    payload = item.payload
                    length = len(payload)
                    parts.append(_frame_head(_TEXT_FRAME if item.text else _BINARY_FRAME, length))
                    parts.append(payload)
                    size += length
                    if item.entry is not None:
                        written.append(item)
                client.queued_bytes -= size
                write_ns = time.monotonic_ns()
                transport.write(b"".join(parts))
                if written:
                    core.written(client.id, written, write_ns)
                    if on_written is not None:
                        on_written(client.id, written, write_ns)
                    if on_send is not None:
                        for item in written:
                            assert item.entry is not None, "only recorded frames are kept"
                            on_send(client.id, item.entry, item.intended_mono_ns, write_ns)
                await connection.drain()  # waits only while the transport's buffer is over its high-water mark
        except ConnectionClosed:
            pass
        finally:
            client.idle.set()

    # Plain HTTP: REST, and handshakes refused.

    async def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        peer = connection.remote_address
        ip = str(peer[0]) if peer else ""
        upgrade = request.headers.get("Upgrade", "").lower() == "websocket"
        answer = self.core.http_request(request.path, upgrade, ip, time.monotonic_ns(), time.time_ns())
        if answer is None:
            return None
        if answer.delay_s:
            await asyncio.sleep(answer.delay_s)
        if answer.snapshot is not None:
            self.core.snapshot_delivered(answer.snapshot, time.monotonic_ns())
        return _response(answer.reply)


_TEXT_FRAME = 0x81
_BINARY_FRAME = 0x82
"""FIN and the opcode: the first byte of a whole text or binary frame (RFC 6455, section 5.2)."""


_HEAD_16 = struct.Struct("!BBH").pack
_HEAD_64 = struct.Struct("!BBQ").pack


def _frame_head(first: int, size: int) -> bytes:
    """The header of an unmasked data frame carrying `size` bytes."""
    if size < 126:
        return bytes((first, size))
    if size < 65536:
        return _HEAD_16(first, 126, size)
    return _HEAD_64(first, 127, size)


def _response(reply: HttpReply) -> Response:
    try:
        phrase = http.HTTPStatus(reply.status).phrase
    except ValueError:
        phrase = "Error"
    headers = Headers(
        [
            ("Content-Type", reply.content_type),
            ("Content-Length", str(len(reply.body))),
            *reply.headers,
            ("Connection", "close"),
        ]
    )
    return Response(reply.status, phrase, headers, reply.body)


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
