"""The reconnecting WebSocket client: an asyncio shell around `harness.client_state.ClientCore`.

The shell moves bytes and timestamps and nothing else. Every frame goes, undecoded, to a synchronous
`on_message(payload, recv_mono_ns, recv_wall_ns, conn_id)`, called straight from the socket's read
(`harness.ws_connection`: every frame of one read carries that read's timestamps); everything that
happens to the connection goes, as a small dataclass from `harness.client_state`, to a synchronous
`on_event(event)`. A new connection is always announced by `ConnectionOpened` before its first frame,
and ended by `Disconnected` after its last, so a book sync can resync on every new `conn_id`.

The subscribe and auth steps run in the same callbacks: a step's messages go out as the connection
opens (or as the previous step is acknowledged), and each reply is classified as it is delivered, so
the first frame after the last ack already finds the client ACTIVE.

Liveness has two layers: keepalive pings (a server that stops answering is failed with 1011) and a
watchdog on received frames, which aborts a connection that has been silent longer than `watchdog_s`
without waiting for any close handshake (a half-open socket never completes one). Where the venue
wants application-level pings as well (OKX closes a connection it has heard nothing from for 30 s;
ping frames do not count), `keepalive` sends its message on a timer.

An exception raised by `on_message` or `on_event` is a bug in the caller: the client aborts the
connection and `run()` re-raises it rather than carry on with a consumer that lost a frame.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Sequence

from websockets.exceptions import InvalidStatus, InvalidURI, WebSocketException
from websockets.uri import parse_uri

from harness.client_state import (
    AppKeepalive,
    BackoffPolicy,
    ClientCore,
    ClientEvent,
    ConnectionState,
    DisconnectCause,
    GaveUp,
    GiveUp,
    ReconnectScheduled,
    SessionStep,
    StepReply,
    Stopped,
    WatchdogFired,
)
from harness.errors import HarnessError
from harness.ws_connection import ClientWebSocket, OnMessage, WebSocketOptions, drop_message, open_websocket

OnEvent = Callable[[ClientEvent], None]

_ABNORMAL_CLOSURE = 1006


def _ignore_event(event: ClientEvent) -> None:
    return None


class ReconnectingClient:
    """Keeps one WebSocket to `url` alive until `stop()`, or until `max_retries` retries in a row fail.

    Use either `start()` + `await stop()`, or `await run()` in a task of your own and `await stop()`
    from elsewhere. `rng` makes the jittered backoff reproducible; pass a seeded `random.Random`.
    `headers` go with every handshake (an API key, a bearer token); `user_agent` replaces websockets'.
    """

    def __init__(
        self,
        url: str,
        on_message: OnMessage,
        *,
        on_event: OnEvent | None = None,
        subscribe: SessionStep | None = None,
        auth: SessionStep | None = None,
        keepalive: AppKeepalive | None = None,
        backoff: BackoffPolicy | None = None,
        rng: random.Random | None = None,
        max_retries: int | None = None,
        connect_timeout_s: float = 10.0,
        watchdog_s: float | None = 30.0,
        ping_interval_s: float | None = 20.0,
        ping_timeout_s: float | None = 20.0,
        close_timeout_s: float = 2.0,
        stable_after_s: float = 30.0,
        max_size: int | None = 2**24,
        compression: str | None = None,
        headers: Sequence[tuple[str, str]] = (),
        user_agent: str | None = None,
    ) -> None:
        try:
            parse_uri(url)
        except InvalidURI as exc:
            raise HarnessError(f"not a WebSocket URL: {url!r} ({exc})") from None
        for name, value in (("connect timeout", connect_timeout_s), ("close timeout", close_timeout_s)):
            if not value > 0:
                raise HarnessError(f"{name} must be a positive number of seconds, got {value!r}")
        if watchdog_s is not None and not watchdog_s > 0:
            raise HarnessError(f"watchdog threshold must be positive seconds or None, got {watchdog_s!r}")
        self.url = url
        self._on_message = on_message
        self._on_event = on_event or _ignore_event
        self._steps = (
            (ConnectionState.AUTHENTICATED, auth),
            (ConnectionState.SUBSCRIBED, subscribe),
        )
        self._core = ClientCore(
            backoff or BackoffPolicy(), rng or random.Random(), max_retries, int(stable_after_s * 1e9)
        )
        self._options = WebSocketOptions(
            headers=tuple(headers),
            user_agent=user_agent,
            open_timeout_s=connect_timeout_s,
            max_size=max_size,
            compression=compression,
            ping_interval_s=ping_interval_s,
            ping_timeout_s=ping_timeout_s,
            close_timeout_s=close_timeout_s,
        )
        self._watchdog_ns = None if watchdog_s is None else int(watchdog_s * 1e9)
        self._keepalive = keepalive
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._ws: ClientWebSocket | None = None
        self._watchdog: asyncio.TimerHandle | None = None
        self._watchdog_silence_ns = 0
        self._step_index = 0
        self._step_timer: asyncio.TimerHandle | None = None
        self._cause: DisconnectCause | None = None

    @property
    def state(self) -> ConnectionState:
        return self._core.state

    @property
    def conn_id(self) -> int:
        """The id of the current (or last) connection; 0 until the first one opens."""
        return self._core.conn_id

    @property
    def retry_count(self) -> int:
        """Consecutive failed attempts since the last connection that stayed up `stable_after_s`."""
        return self._core.attempt

    def start(self) -> asyncio.Task[None]:
        """Run the client in a task of its own; `await stop()` ends it, awaiting the task gives `run()`'s end."""
        if self._task is not None:
            raise RuntimeError("this client has already been started")
        self._task = asyncio.get_running_loop().create_task(self.run(), name=f"ReconnectingClient({self.url})")
        return self._task

    async def stop(self) -> None:
        """Close the connection with 1000 and return once no task, timer or socket of ours is left."""
        task = self._task
        if task is None or task.done():
            self._stopping = True
            return
        if task is asyncio.current_task():
            raise RuntimeError("stop() cannot be awaited from inside the client's own task")
        if not self._stopping:
            self._stopping = True
            task.cancel()
        await asyncio.wait([task])

    def reconnect(self, reason: str = "resubscribe") -> None:
        """Closes the open connection with 1000 so that the client connects and subscribes again: how a
        client gets a fresh snapshot from a venue that sends the book on subscribing (Bybit, OKX). Does
        nothing between connections or while such a close is under way."""
        ws = self._ws
        if ws is None or self._cause is not None or not ws.is_open:
            return
        self._cause = DisconnectCause.RESUBSCRIBE
        ws.close(1000, reason)

    def send(self, messages: Sequence[str]) -> bool:
        """Sends `messages`, in order, on the open connection once it is subscribed: a request the venue
        answers there (OKX's unsubscribe and subscribe for one instrument, which sends its book again).
        False, sending nothing, when no subscribed connection is open (the caller may `reconnect`)."""
        ws = self._ws
        subscribed = self._core.state in (ConnectionState.SUBSCRIBED, ConnectionState.ACTIVE)
        if ws is None or self._cause is not None or not subscribed or not ws.is_open:
            return False
        for message in messages:
            ws.send(message)
        return True

    async def run(self) -> None:
        """Connect, keep reconnecting with backoff, and return after `stop()` or after giving up."""
        task = asyncio.current_task()
        if self._task is None:
            self._task = task
        elif self._task is not task:
            raise RuntimeError("this client is already running in another task")
        try:
            while not self._stopping:
                await self._one_connection()
                if self._stopping:
                    break
                decision = self._core.next_retry()
                if isinstance(decision, GiveUp):
                    self._on_event(GaveUp(decision.attempts, time.monotonic_ns()))
                    break
                self._on_event(ReconnectScheduled(decision.attempt, decision.delay_s, time.monotonic_ns()))
                await asyncio.sleep(decision.delay_s)
        except asyncio.CancelledError:
            if not self._stopping:
                raise
            assert task is not None
            task.uncancel()
        self._on_event(Stopped(time.monotonic_ns()))

    def _emit(self, events: list[ClientEvent]) -> None:
        for event in events:
            self._on_event(event)

    async def _one_connection(self) -> None:
        core = self._core
        self._emit(core.connecting(time.monotonic_ns()))
        self._cause = None
        try:
            await open_websocket(self.url, self._options, conn_id=0, on_message=drop_message, on_open=self._opened)
        except asyncio.CancelledError:
            if self._ws is None:
                self._on_event(core.advance(ConnectionState.DISCONNECTED, time.monotonic_ns()))
            else:
                await self._cancelled_while_open(self._ws)
            raise
        except InvalidStatus as exc:
            self._emit(core.connect_failed(time.monotonic_ns(), exc.response.status_code, str(exc)))
            return
        except (OSError, WebSocketException) as exc:
            self._emit(core.connect_failed(time.monotonic_ns(), None, f"{type(exc).__name__}: {exc}"))
            return
        ws = self._ws
        assert ws is not None, "open_websocket returns once on_open has run"
        pinger = None if self._keepalive is None else asyncio.create_task(self._app_pings(ws, self._keepalive))
        try:
            await ws.wait_closed()
        except asyncio.CancelledError:
            await self._cancelled_while_open(ws)
            raise
        finally:
            if pinger is not None:
                pinger.cancel()
                await asyncio.wait([pinger])
            await self._let_go(ws)
        if ws.failure is not None:
            raise ws.failure
        self._closed(ws, self._cause)

    async def _cancelled_while_open(self, ws: ClientWebSocket) -> None:
        """`stop()` closes an open connection with 1000 and reports it; any other cancel just drops it."""
        try:
            if self._stopping:
                ws.on_message = drop_message
                ws.close(1000, "client stopping")
                await ws.wait_closed()
                self._closed(ws, DisconnectCause.STOPPED)
        finally:
            await self._let_go(ws)

    async def _let_go(self, ws: ClientWebSocket) -> None:
        self._disarm_timers()
        if not ws.closed.done():
            ws.abort()
            await ws.wait_closed()
        self._ws = None

    def _opened(self, ws: ClientWebSocket, mono_ns: int, wall_ns: int) -> None:
        """The handshake completed (called from the socket's read, before any frame is delivered)."""
        self._ws = ws
        self._watchdog_silence_ns = 0
        self._step_index = 0
        self._emit(self._core.opened(mono_ns, wall_ns, self.url))
        ws.conn_id = self._core.conn_id
        self._arm_watchdog()
        self._next_step(ws)

    def _next_step(self, ws: ClientWebSocket) -> None:
        """Runs the steps up to the next one that waits for a reply; after the last, the first frame makes
        the connection ACTIVE."""
        while self._step_index < len(self._steps):
            state, step = self._steps[self._step_index]
            if step is not None:
                for message in step.messages():
                    ws.send(message)
                ws.on_message = self._step_reply
                self._step_timer = asyncio.get_running_loop().call_later(step.timeout_s, self._step_timed_out)
                return
            self._step_index += 1
            self._on_event(self._core.advance(state, time.monotonic_ns()))
        ws.on_message = self._first_message

    def _step_reply(self, payload: bytes, mono_ns: int, wall_ns: int, conn_id: int) -> None:
        self._on_message(payload, mono_ns, wall_ns, conn_id)
        ws = self._ws
        state, step = self._steps[self._step_index]
        assert ws is not None and step is not None, "replies are classified only while a step waits"
        reply = step.classify(payload)
        if reply is StepReply.ACK:
            self._cancel_step_timer()
            self._step_index += 1
            self._on_event(self._core.advance(state, time.monotonic_ns()))
            self._next_step(ws)
        elif reply is StepReply.REJECTED:
            self._end_connection(DisconnectCause.STEP_REJECTED, "request rejected")

    def _step_timed_out(self) -> None:
        self._step_timer = None
        self._end_connection(DisconnectCause.STEP_TIMEOUT, "no ack before timeout")

    def _end_connection(self, cause: DisconnectCause, reason: str) -> None:
        ws = self._ws
        assert ws is not None, "a step ends only an open connection"
        self._cause = cause
        ws.on_message = drop_message
        ws.close(1000, reason)

    def _first_message(self, payload: bytes, mono_ns: int, wall_ns: int, conn_id: int) -> None:
        ws = self._ws
        assert ws is not None, "frames arrive only on an open connection"
        ws.on_message = self._on_message
        self._on_event(self._core.advance(ConnectionState.ACTIVE, mono_ns))
        self._on_message(payload, mono_ns, wall_ns, conn_id)

    def _closed(self, ws: ClientWebSocket, cause: DisconnectCause | None) -> None:
        protocol = ws.protocol
        rcvd, sent = protocol.close_rcvd, protocol.close_sent
        server_first = rcvd is not None and (sent is None or bool(protocol.close_rcvd_then_sent))
        frame = rcvd if server_first else sent
        if cause is None:
            if self._watchdog_silence_ns:
                cause = DisconnectCause.WATCHDOG
            elif server_first:
                cause = DisconnectCause.SERVER_CLOSE
            else:
                cause = DisconnectCause.CONNECTION_LOST
        if cause is DisconnectCause.WATCHDOG:
            self._on_event(WatchdogFired(self._core.conn_id, self._watchdog_silence_ns, time.monotonic_ns()))
        code = _ABNORMAL_CLOSURE if frame is None else int(frame.code)
        reason = "" if frame is None else frame.reason
        self._emit(self._core.closed(time.monotonic_ns(), time.time_ns(), code, reason, cause, ws.frames))

    @staticmethod
    async def _app_pings(ws: ClientWebSocket, keepalive: AppKeepalive) -> None:
        """Sends the venue's application-level ping every `interval_s` until the connection ends."""
        while True:
            await asyncio.sleep(keepalive.interval_s)
            if not ws.send(keepalive.message):
                return

    def _arm_watchdog(self) -> None:
        if self._watchdog_ns is not None:
            self._watchdog = asyncio.get_running_loop().call_later(self._watchdog_ns / 1e9, self._check_watchdog)

    def _cancel_step_timer(self) -> None:
        if self._step_timer is not None:
            self._step_timer.cancel()
            self._step_timer = None

    def _disarm_timers(self) -> None:
        self._cancel_step_timer()
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None

    def _check_watchdog(self) -> None:
        """Timer callback: abort a silent connection, else re-arm for the rest of the threshold.

        It only aborts the transport; the client's task then sees the connection end and emits the
        events, so callbacks never run outside the client's task.
        """
        assert self._watchdog_ns is not None
        ws = self._ws
        if ws is None:
            return
        silence = time.monotonic_ns() - ws.last_rx_ns
        if silence >= self._watchdog_ns:
            self._watchdog = None
            self._watchdog_silence_ns = silence
            ws.abort()
            return
        self._watchdog = asyncio.get_running_loop().call_later(
            (self._watchdog_ns - silence) / 1e9, self._check_watchdog
        )
