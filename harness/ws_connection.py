"""One client WebSocket connection that reads the socket in bulk and splits the frames itself.

Why not websockets' asyncio client: it makes a `Frame`, an assembler entry and a coroutine step for
every message, 4 to 6 us a frame here, which capped `harness record` near 170,000 frames/s and put a
task switch between the socket and the book. What a venue sends is almost all small, final, unmasked
text frames, so those are cut straight out of each read and handed to `on_message` synchronously;
every frame of one read carries that read's timestamps, which is when its bytes left the kernel.

Everything else goes through websockets' sans-I/O `ClientProtocol`: the opening handshake, pings,
pongs, the closing handshake, fragmented or compressed messages, and whatever a server must not send
(a masked frame, reserved bits, an unknown opcode, a message over `max_size`). It is fed whole frames
only, so its parser never holds half of one, and those cases keep websockets' answers: 1002, 1009,
the pong to every ping, the echo of a close.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass

from websockets.client import ClientProtocol
from websockets.extensions.permessage_deflate import enable_client_permessage_deflate
from websockets.frames import Frame, Opcode
from websockets.http11 import USER_AGENT
from websockets.protocol import State
from websockets.uri import parse_uri

OnMessage = Callable[[bytes, int, int, int], None]
OnOpen = Callable[["ClientWebSocket", int, int], None]

KEEPALIVE_TIMEOUT_CODE = 1011
MAX_HANDSHAKE_BYTES = 64 * 1024
"""A response head longer than this is handed to websockets' parser whole, which refuses it."""
_TEXT_FIN = 0x81
_BINARY_FIN = 0x82
_MASKED = 0x80
_unpack_u64 = struct.Struct("!Q").unpack_from


def drop_message(payload: bytes, mono_ns: int, wall_ns: int, conn_id: int) -> None:
    """An `on_message` for a connection whose frames nobody wants any more (it is being closed)."""


class ClientWebSocket(asyncio.Protocol):
    """The asyncio protocol of one connection; made by `open_websocket`, never directly.

    `on_message(payload, mono_ns, wall_ns, conn_id)` may be replaced at any time, even from inside a
    call of it: the next frame goes to the new one. `on_open(self, mono_ns, wall_ns)` runs once, with
    the timestamps of the read that completed the handshake and before any frame is delivered, so
    that a caller can announce the connection and send its subscriptions first. An exception from
    either is kept in `failure` and the connection is aborted: a consumer that lost a frame must not
    be fed the next one.
    """

    def __init__(
        self, protocol: ClientProtocol, options: WebSocketOptions, conn_id: int, on_message: OnMessage, on_open: OnOpen
    ) -> None:
        loop = asyncio.get_running_loop()
        self.protocol = protocol
        self.conn_id = conn_id
        self.on_message = on_message
        self.frames = 0
        """Messages delivered so far."""
        self.last_rx_ns = 0
        """`time.monotonic_ns()` of the last read that held a message, or of the one that completed the
        handshake before any did (0 before that): the silence a watchdog measures starts there."""
        self.failure: Exception | None = None
        self.opened: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()
        self._loop = loop
        self._on_open = on_open
        self.transport: asyncio.Transport | None = None
        self._partial = bytearray()
        self._wanted = 0
        self._head_fed = False
        self._fast = False
        self._fragments: list[bytes] | None = None
        max_size = protocol.max_message_size
        self._max_size = (1 << 64) if max_size is None else max_size
        self._ping_interval_s = options.ping_interval_s
        self._ping_timeout_s = options.ping_timeout_s
        self._close_timeout_s = options.close_timeout_s
        self._ping_data: bytes | None = None
        self._ping_sent_s = 0.0
        self._ping_timer: asyncio.TimerHandle | None = None
        self._pong_timer: asyncio.TimerHandle | None = None
        self._close_timer: asyncio.TimerHandle | None = None

    @property
    def is_open(self) -> bool:
        return self.protocol.state is State.OPEN

    def send(self, message: str) -> bool:
        """Sends one text message; False, sending nothing, once the connection is no longer open."""
        if self.protocol.state is not State.OPEN:
            return False
        self.protocol.send_text(message.encode())
        self._flush()
        return True

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Starts the closing handshake; `closed` completes when the server ends the TCP connection,
        or `close_timeout_s` later, when the connection is aborted."""
        if self.protocol.state is State.OPEN:
            self.protocol.send_close(code, reason)
            self._flush()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    async def wait_closed(self) -> None:
        await asyncio.shield(self.closed)

    # asyncio's callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self._flush()

    def data_received(self, data: bytes) -> None:
        mono_ns, wall_ns = time.monotonic_ns(), time.time_ns()
        partial = self._partial
        if partial:
            partial += data
            if len(partial) < self._wanted:
                return
            data = bytes(partial)
            partial.clear()
        try:
            if self.protocol.state is State.CONNECTING:
                data = self._handshake(data, mono_ns, wall_ns)
                if not data:
                    return
            if self.protocol.state is State.OPEN or self._fragments is not None:
                self._split(data, mono_ns, wall_ns)
            else:
                self._feed(data, mono_ns, wall_ns)
        except Exception as exc:
            self._fail(exc)

    def eof_received(self) -> None:
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.protocol.receive_eof()
        for timer in (self._ping_timer, self._pong_timer, self._close_timer):
            if timer is not None:
                timer.cancel()
        if not self.opened.done():
            refusal = self.protocol.handshake_exc
            self.opened.set_exception(refusal or ConnectionError("connection closed during the handshake"))
        self.closed.set_result(None)

    # receiving

    def _split(self, data: bytes, mono_ns: int, wall_ns: int) -> None:
        """Delivers every whole frame in `data`; keeps the tail of an incomplete one for the next read."""
        size = len(data)
        pos = 0
        count = 0
        wanted = 0
        fast = self._fast
        max_size = self._max_size
        conn_id = self.conn_id
        while True:
            left = size - pos
            if left < 2:
                wanted = 2
                break
            second = data[pos + 1]
            length = second & 0x7F
            if length < 126:
                header = 2
            elif length == 126:
                if left < 4:
                    wanted = 4
                    break
                length = (data[pos + 2] << 8) | data[pos + 3]
                header = 4
            else:
                if left < 10:
                    wanted = 10
                    break
                length = _unpack_u64(data, pos + 2)[0]
                header = 10
            if length > max_size:  # refused on its header: never buffer what a server claims is coming
                self._note_delivered(count, mono_ns)
                self._feed(data[pos:], mono_ns, wall_ns)
                return
            if second & _MASKED:
                header += 4
            end = pos + header + length
            if end > size:
                wanted = end - pos
                break
            head = data[pos]
            if fast and head in (_TEXT_FIN, _BINARY_FIN) and second < _MASKED:
                count += 1
                self.on_message(data[pos + header : end], mono_ns, wall_ns, conn_id)
            else:
                self._note_delivered(count, mono_ns)
                count = 0
                self._feed(data[pos:end], mono_ns, wall_ns)
                if self.protocol.state is not State.OPEN:  # closing: the protocol reads (or discards) the rest
                    if end < size:
                        self._feed(data[end:], mono_ns, wall_ns)
                    return
                fast = self._fast
            pos = end
        self._note_delivered(count, mono_ns)
        if pos < size:
            self._partial += memoryview(data)[pos:]
            self._wanted = wanted

    def _note_delivered(self, count: int, mono_ns: int) -> None:
        if count:
            self.frames += count
            self.last_rx_ns = mono_ns

    def _feed(self, data: bytes, mono_ns: int, wall_ns: int) -> None:
        """Hands whole frames (or, once closing, anything) to websockets' protocol and acts on its events."""
        protocol = self.protocol
        protocol.receive_data(data)
        events = protocol.events_received()
        self._flush()
        for event in events:
            assert isinstance(event, Frame), "no HTTP event once the handshake is done"
            self._on_frame(event, mono_ns, wall_ns)
        self._fast = self._fragments is None and not protocol.extensions and protocol.state is State.OPEN

    def _on_frame(self, frame: Frame, mono_ns: int, wall_ns: int) -> None:
        opcode = frame.opcode
        if opcode is Opcode.TEXT or opcode is Opcode.BINARY:
            if frame.fin:
                self._deliver(bytes(frame.data), mono_ns, wall_ns)
            else:
                self._fragments = [bytes(frame.data)]
        elif opcode is Opcode.CONT:
            assert self._fragments is not None, "websockets refuses a continuation outside a message"
            self._fragments.append(bytes(frame.data))
            if frame.fin:
                payload = b"".join(self._fragments)
                self._fragments = None
                self._deliver(payload, mono_ns, wall_ns)
        elif opcode is Opcode.PONG and frame.data == self._ping_data:
            self._pong_arrived()

    def _deliver(self, payload: bytes, mono_ns: int, wall_ns: int) -> None:
        self.frames += 1
        self.last_rx_ns = mono_ns
        self.on_message(payload, mono_ns, wall_ns, self.conn_id)

    def _handshake(self, data: bytes, mono_ns: int, wall_ns: int) -> bytes:
        """Feeds the server's response to the protocol; returns what followed its head once open."""
        protocol = self.protocol
        if self._head_fed:  # a refusal whose body is still arriving: the protocol reads it to its end
            protocol.receive_data(data)
            data = b""
        else:
            end = data.find(b"\r\n\r\n")
            if end < 0 and len(data) < MAX_HANDSHAKE_BYTES:
                self._partial += data
                self._wanted = 0
                return b""
            cut = len(data) if end < 0 else end + 4
            protocol.receive_data(data[:cut])
            self._head_fed = True
            data = data[cut:]
            if protocol.state is State.CONNECTING and data:
                protocol.receive_data(data)
                data = b""
        protocol.events_received()
        self._flush()
        if protocol.state is State.OPEN:
            self.last_rx_ns = mono_ns
            self._fast = not protocol.extensions
            self.opened.set_result(None)
            self._on_open(self, mono_ns, wall_ns)
            self._schedule_ping(self._ping_interval_s)
            return data
        if protocol.handshake_exc is not None:
            self.opened.set_exception(protocol.handshake_exc)
            self.abort()
        return b""

    def _fail(self, exc: Exception) -> None:
        if self.failure is None:
            self.failure = exc
        self.on_message = drop_message
        self.abort()

    # sending

    def _flush(self) -> None:
        transport = self.transport
        if transport is None:
            return
        for data in self.protocol.data_to_send():
            if data:
                transport.write(data)
            elif transport.can_write_eof():
                transport.write_eof()
            else:
                transport.close()
        if self._close_timer is None and self.protocol.close_expected():
            self._close_timer = self._loop.call_later(self._close_timeout_s, transport.abort)

    # keepalive

    def _schedule_ping(self, delay_s: float | None) -> None:
        if delay_s is not None:
            self._ping_timer = self._loop.call_later(max(delay_s, 0.0), self._send_ping)

    def _send_ping(self) -> None:
        self._ping_timer = None
        if self.protocol.state is not State.OPEN:
            return
        self._ping_data = os.urandom(4)
        self._ping_sent_s = self._loop.time()
        self.protocol.send_ping(self._ping_data)
        self._flush()
        if self._ping_timeout_s is not None:
            self._pong_timer = self._loop.call_later(self._ping_timeout_s, self._pong_missing)
        else:
            self._schedule_ping(self._ping_interval_s)

    def _pong_arrived(self) -> None:
        self._ping_data = None
        if self._pong_timer is not None:
            self._pong_timer.cancel()
            self._pong_timer = None
            assert self._ping_interval_s is not None
            self._schedule_ping(self._ping_sent_s + self._ping_interval_s - self._loop.time())

    def _pong_missing(self) -> None:
        """As websockets does: a server that does not answer a ping within the timeout is failed with 1011."""
        self._pong_timer = None
        if self.protocol.state is State.OPEN:
            self.protocol.fail(KEEPALIVE_TIMEOUT_CODE, "keepalive ping timeout")
            self._flush()


@dataclass(frozen=True, slots=True)
class WebSocketOptions:
    """How a connection is opened and kept: what `ReconnectingClient` passes for every connection."""

    headers: tuple[tuple[str, str], ...] = ()
    user_agent: str | None = None
    open_timeout_s: float = 10.0
    max_size: int | None = 2**24
    compression: str | None = None
    """None, or "deflate" to offer permessage-deflate: a compressed stream is then read through
    websockets' parser throughout, at its speed."""
    ping_interval_s: float | None = 20.0
    ping_timeout_s: float | None = 20.0
    close_timeout_s: float = 2.0
    ssl_context: ssl.SSLContext | None = None
    """For wss:// URLs; None: the system's trust store (`ssl.create_default_context()`)."""

    def __post_init__(self) -> None:
        if self.compression not in (None, "deflate"):
            raise ValueError(f"compression must be None or 'deflate', not {self.compression!r}")


async def open_websocket(
    url: str, options: WebSocketOptions, *, conn_id: int, on_message: OnMessage, on_open: OnOpen
) -> ClientWebSocket:
    """Connects and completes the opening handshake within `options.open_timeout_s`.

    Raises what websockets' own `connect` raises for the same failures: `InvalidURI`, `InvalidStatus`
    (with the response) or another `InvalidHandshake` for a refusal, `OSError` for the socket,
    `TimeoutError`.
    """
    uri = parse_uri(url)
    extensions = enable_client_permessage_deflate(None) if options.compression == "deflate" else None
    protocol = ClientProtocol(uri, extensions=extensions, max_size=options.max_size)
    request = protocol.connect()
    request.headers["User-Agent"] = USER_AGENT if options.user_agent is None else options.user_agent
    for name, value in options.headers:
        request.headers[name] = value
    protocol.send_request(request)
    context = (options.ssl_context or ssl.create_default_context()) if uri.secure else None

    loop = asyncio.get_running_loop()
    ws: ClientWebSocket | None = None
    try:
        async with asyncio.timeout(options.open_timeout_s):
            _, ws = await loop.create_connection(
                lambda: ClientWebSocket(protocol, options, conn_id, on_message, on_open),
                uri.host,
                uri.port,
                ssl=context,
                server_hostname=uri.host if context else None,
            )
            await asyncio.shield(ws.opened)
    except BaseException:
        if ws is not None and not _opened(ws):
            ws.abort()
        raise
    return ws


def _opened(ws: ClientWebSocket) -> bool:
    """Whether the handshake succeeded: then `on_open` has handed the connection to its owner, and a
    cancelled `open_websocket` leaves it open for the owner to close; else the attempt is dropped."""
    if not ws.opened.done():
        ws.opened.cancel()
        return False
    return ws.opened.exception() is None
