"""`harness record`: capture a live venue's frames, REST snapshots and connection events.

The event loop only receives bytes and stamps them (`time.time_ns` and `time.monotonic_ns` right
after each read); a writer thread owns the RecordingWriter, so a flush, an fsync or a segment being
sealed to Parquet never delays a timestamp. The loop gathers each turn's events as runs (a
connection's frames share every column but four) and hands them over once per turn, so its cost per
frame is a tuple and an append. The writer thread also acts as the flush timer: it ticks
the writer whenever the queue has been idle for a tenth of a second, so rows reach the disk within a
second of arriving. The rows waiting for the writer are bounded (`max_backlog_bytes`): a disk that
falls that far behind stops the recording with an error once everything received is written, rather
than growing the process until the OS kills it and the open segment's tail is lost. After a drop the
recorder reconnects with capped, jittered backoff; the recording shows the hole as a `ws_close` and a
later `ws_open`. `docs/recording-format.md` lists what each event kind holds.

The connection itself is the project's `ReconnectingClient`: the same backoff policy (full jitter,
reset only after a connection stayed up), the same watchdog (a connection silent for `watchdog_s` is
aborted and replaced, which is what a half-open socket needs) as every subject that uses it. Each new
connection subscribes again and gets fresh snapshots: where the streams are in its URL (Binance) it
fetches REST snapshots; where the venue subscribes by message and sends the book on subscribing
(Bybit, OKX) the client runs the dialect's subscribe step, its messages are recorded as `ws_send`
rows, and the acks and in-stream snapshots are frames like any other. Every
row passes through `recorder.redaction` before it reaches the disk, so a secret the recorder holds
or meets is never written: URLs, stream names and reasons on the loop, payloads in the writer thread
as each batch is flushed (`Redactor.payloads`, one pass in C over the batch).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import operator
import queue
import random
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import orjson

import harness
from harness import event_loop
from harness.client import ReconnectingClient
from harness.client_state import (
    BackoffPolicy,
    ClientEvent,
    ConnectFailed,
    ConnectionOpened,
    DisconnectCause,
    Disconnected,
    ReconnectScheduled,
    SessionStep,
    StepReply,
    WatchdogFired,
)
from harness.errors import HarnessError
from harness.http import HttpError, http_get
from harness.venues.dialect import VenueDialect
from harness.venues.registry import dialect
from recorder.capture import SNAPSHOT_ATTEMPTS, SnapshotNeeds, capture_url, normalize_symbols
from recorder.format import EventKind, RecordingMeta
from recorder.redaction import Redactor
from recorder.segments import SEGMENT_MAX_BYTES, RecordingWriter, Row, RunHead

USER_AGENT = f"harness-recorder/{harness.__version__}"
WRITER_IDLE_TICK_S = 0.1
MAX_BACKLOG_BYTES = 256 * 1024 * 1024
STOP_GRACE_S = 2.0
WATCHDOG_S = 60.0
"""A connection that delivers no frame for this long is replaced. Binance's depth@100ms stream sends
whenever the book moved; a minute of silence on a listed symbol means the socket is dead, not quiet."""

Observer = Callable[[EventKind, int, str | None], None]
ClientObserver = Callable[[ClientEvent], None]
Batch = list[tuple[RunHead, list[Row]]]
_PAYLOAD = operator.itemgetter(3)


@dataclass(frozen=True, slots=True)
class RecordConfig:
    """Everything a recording run needs; the timing knobs exist so tests can make drops cheap."""

    venue: str
    symbols: tuple[str, ...]
    ws_url: str
    rest_url: str
    output: Path
    seconds: float | None = None
    snapshot_attempts: int = SNAPSHOT_ATTEMPTS
    snapshot_retry_s: float = 0.25
    backoff_initial_s: float = 0.5
    backoff_cap_s: float = 30.0
    open_timeout_s: float = 10.0
    fsync: bool = True
    seed: int | None = None
    max_backlog_bytes: int = MAX_BACKLOG_BYTES
    book_ticker: bool = False
    watchdog_s: float = WATCHDOG_S
    segment_max_bytes: int = SEGMENT_MAX_BYTES
    headers: tuple[tuple[str, str], ...] = ()
    """Sent with every handshake and REST request (an API key); never recorded, and redacted if echoed."""
    extra_streams: tuple[str, ...] = ()
    """Streams beyond the market ones, such as a user-data listen key; a listen key is redacted."""
    secrets: tuple[str, ...] = ()
    """Further values to redact wherever they appear."""

    @property
    def dialect(self) -> VenueDialect:
        return dialect(self.venue)

    def redactor(self) -> Redactor:
        """Every value this config holds that must not reach the file."""
        market = set(self.dialect.capture_policy().streams(self.symbols, True))
        listen_keys = [s for s in self.extra_streams if "@" not in s and s not in market]
        return Redactor([*(value for _, value in self.headers), *listen_keys, *self.secrets])


@dataclass(slots=True)
class RecordSummary:
    output: Path
    frames: int = 0
    events: int = 0
    connections: int = 0
    snapshots: int = 0
    close_codes: list[int] = field(default_factory=list)
    segments: list[Path] = field(default_factory=list)
    seconds: float = 0.0
    connect_failures: int = 0
    watchdog_fired: int = 0
    backoff_waits: int = 0

    @property
    def reconnects(self) -> int:
        return max(self.connections - 1, 0)

    def line(self) -> str:
        why = [
            f"{n} {what}"
            for n, what in ((self.watchdog_fired, "by the watchdog"), (self.connect_failures, "refused attempts"))
            if n
        ]
        return (
            f"recorded {self.frames} frames, {self.snapshots} REST snapshots, {self.reconnects} reconnects"
            + (f" ({', '.join(why)})" if why else "")
            + f" in {self.seconds:.1f} s: {self.events} events in {len(self.segments)} segments at {self.output}"
        )


def make_config(
    *,
    venue: str,
    symbols: list[str] | None,
    ws_url: str | None,
    rest_url: str | None,
    seconds: float | None,
    output: Path,
    book_ticker: bool = False,
    headers: list[str] | None = None,
    extra_streams: list[str] | None = None,
    watchdog_s: float = WATCHDOG_S,
) -> RecordConfig:
    """Resolves the venue's default endpoints (and symbol, when `symbols` is None); raises HarnessError
    for an unknown venue, bad symbols, a header that is not `Name: value`, a secret too short to be
    told from data, or an option the venue's capture cannot honour."""
    info = dialect(venue)
    policy = info.capture_policy()
    names = normalize_symbols(info, [policy.symbol_example] if symbols is None else symbols)
    if book_ticker and policy.streams(names, True) == policy.streams(names, False):
        raise HarnessError(f"--book-ticker: harness record has no best bid/ask stream for {info.name}")
    if extra_streams and policy.subscribe is not None:
        raise HarnessError(f"--stream: harness record takes no further streams on {info.name} (subscribed by message)")
    config = RecordConfig(
        venue=info.name,
        symbols=names,
        ws_url=ws_url or info.live_ws_url,
        rest_url=rest_url or info.live_rest_url,
        output=Path(output),
        seconds=seconds,
        book_ticker=book_ticker,
        watchdog_s=watchdog_s,
        headers=tuple(_header(text) for text in headers or []),
        extra_streams=tuple(s.strip() for s in extra_streams or [] if s.strip()),
    )
    try:
        config.redactor()
    except ValueError as exc:
        raise HarnessError(f"--header/--stream: {exc}") from None
    return config


def _header(text: str) -> tuple[str, str]:
    name, sep, value = text.partition(":")
    name, value = name.strip(), value.strip()
    if not sep or not name or not value or any(c in text for c in "\r\n") or " " in name:
        raise HarnessError("--header: expected 'Name: value' on one line (the value is not repeated here)")
    return name, value


def run_record(config: RecordConfig) -> None:
    """The CLI shell: records until the time is up, SIGINT or SIGTERM, then prints one summary line."""
    print(
        f"recording {config.venue} {','.join(config.symbols)} from {config.ws_url} to {config.output}"
        + ("" if config.seconds is not None else " (Ctrl-C to stop)"),
        file=sys.stderr,
    )
    summary = event_loop.run(record(config, handle_signals=True))
    print(summary.line(), file=sys.stderr)


async def record(
    config: RecordConfig,
    *,
    stop: asyncio.Event | None = None,
    observe: Observer | None = None,
    observe_client: ClientObserver | None = None,
    handle_signals: bool = False,
) -> RecordSummary:
    """Records until `config.seconds` pass or `stop` is set; every received byte is sealed on return.

    `observe(kind, conn_id, stream)` is called on the loop for every event, in recording order;
    `observe_client(event)` for every event of the reconnecting client (backoff, watchdog, failures).
    Raises HarnessError when the first connection cannot be made or the output already exists.
    """
    recorder = _Recorder(config, stop or asyncio.Event(), observe, observe_client)
    return await recorder.run(handle_signals)


class _WriterThread:
    """Owns the RecordingWriter; the loop hands it batches through a queue and never waits on the disk.

    The backlog is two counters with one writer each (bytes put by the loop, bytes written by this
    thread), so reading it needs no lock.
    """

    def __init__(self, writer: RecordingWriter, on_failure: Callable[[], object]) -> None:
        self.writer = writer
        self.error: BaseException | None = None
        self._queue: queue.SimpleQueue[tuple[Batch, int] | None] = queue.SimpleQueue()
        self._on_failure = on_failure
        self._put_bytes = 0
        self._written_bytes = 0
        self._thread = threading.Thread(target=self._run, name="recording-writer", daemon=True)
        self._thread.start()

    @property
    def backlog_bytes(self) -> int:
        """Payload bytes handed over and not yet appended to the writer."""
        return self._put_bytes - self._written_bytes

    def put(self, batch: Batch, payload_bytes: int) -> None:
        self._put_bytes += payload_bytes
        self._queue.put((batch, payload_bytes))

    def close(self) -> list[Path]:
        self._queue.put(None)
        self._thread.join()
        if self.error is not None:
            raise HarnessError(f"writing {self.writer.path} failed: {self.error}")
        return self.writer.sealed

    def _run(self) -> None:
        writer = self.writer
        try:
            while True:
                try:
                    item = self._queue.get(timeout=WRITER_IDLE_TICK_S)
                except queue.Empty:
                    writer.tick(time.monotonic_ns())
                    continue
                if item is None:
                    break
                batch, payload_bytes = item
                for head, rows in batch:
                    writer.extend(head, rows)
                self._written_bytes += payload_bytes
            writer.close()
        except Exception as exc:
            self.error = exc
            self._on_failure()
            with contextlib.suppress(Exception):
                writer.close()


class _Recorder:
    def __init__(
        self, config: RecordConfig, stop: asyncio.Event, observe: Observer | None, observe_client: ClientObserver | None
    ) -> None:
        self.config = config
        self.stop = stop
        self.observe = observe
        self.observe_client = observe_client
        self.summary = RecordSummary(output=config.output)
        self.venue = config.dialect
        self.url = capture_url(
            self.venue,
            config.ws_url,
            config.symbols,
            book_ticker=config.book_ticker,
            extra_streams=config.extra_streams,
        )
        self.redact = config.redactor()
        self._streams = config.dialect.capture_policy().streams(config.symbols, config.book_ticker)
        self._next_conn_id = 1
        seed = config.seed
        self._client_rng = random.Random(seed if seed is None else f"{seed}/ws")
        self._snapshot_rng = random.Random(seed if seed is None else f"{seed}/rest")
        self._snapshot_backoff = BackoffPolicy(
            base_s=config.snapshot_retry_s, cap_s=max(config.snapshot_retry_s, config.backoff_cap_s)
        )
        self._conn_id: int | None = None
        self._needs: SnapshotNeeds | None = None
        self._fetches: set[asyncio.Task[None]] = set()
        self._connect_failure: HarnessError | None = None
        self._rest_failure: HarnessError | None = None
        self._fetch_bug: BaseException | None = None
        self._backlog_failure: HarnessError | None = None
        self._subscribe_failure: HarnessError | None = None
        self._last_control = b""
        self._writer: _WriterThread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._batch: Batch = []
        """Runs gathered on the loop since the last hand-over to the writer thread."""
        self._frames: list[Row] | None = None
        """The open run of the current connection's frames, the last run in `_batch`; None when the next
        frame must open one (a hand-over, or another event, came after the last frame)."""
        self._frame_head: RunHead | None = None
        self._observe_frame: Callable[[str | None], object] | None = None
        """`observe` with the open connection's frame kind and id bound (C's partial: a Python call less a frame)."""
        self._url_text = self.redact.text(self.url)
        self._stream_of = self.venue.stream_of
        self._redact_text = self.redact.text
        self._waiting: dict[str, str] = {}
        """The open connection's `SnapshotNeeds.waiting`: the streams whose next frame may need a snapshot."""

    async def run(self, handle_signals: bool) -> RecordSummary:
        listing_url = self.venue.capture_policy().listing_url
        if listing_url is not None:
            for symbol in self.config.symbols:
                await _check_listed(listing_url(self.config.rest_url, symbol), symbol, self.config.headers)
        loop = asyncio.get_running_loop()
        started = time.monotonic()
        meta = RecordingMeta(
            venue=self.config.venue,
            symbols=self.config.symbols,
            tool_version=harness.__version__,
            start_wall_ns=time.time_ns(),
            source=self.redact.text(f"record {self.config.ws_url}") or "record",
            recording_id=uuid.uuid4().hex,
        )
        policy = self.venue.capture_policy()
        subscribe = policy.subscribe
        client = ReconnectingClient(
            self.url,
            self._on_frame,
            on_event=self._on_client_event,
            subscribe=None if subscribe is None else _RecordedStep(subscribe(self._streams), self._on_send),
            keepalive=policy.keepalive,
            backoff=BackoffPolicy(base_s=self.config.backoff_initial_s, cap_s=self.config.backoff_cap_s),
            rng=self._client_rng,
            connect_timeout_s=self.config.open_timeout_s,
            watchdog_s=self.config.watchdog_s,
            max_size=None,
            headers=self.config.headers,
            user_agent=USER_AGENT,
        )
        output_existed = self.config.output.exists()
        writer = RecordingWriter(
            self.config.output,
            meta,
            fsync=self.config.fsync,
            segment_max_bytes=self.config.segment_max_bytes,
            redact_payloads=self.redact.payloads,
        )
        self._writer = _WriterThread(writer, lambda: loop.call_soon_threadsafe(self.stop.set))
        self._loop = loop
        if handle_signals:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, self.stop.set)
        deadline = loop.call_later(self.config.seconds, self.stop.set) if self.config.seconds is not None else None
        try:
            task = client.start()
            stopping = asyncio.ensure_future(self.stop.wait())
            await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            await client.stop()
            task.result()
        finally:
            if deadline is not None:
                deadline.cancel()
            if handle_signals:
                for sig in (signal.SIGINT, signal.SIGTERM):
                    loop.remove_signal_handler(sig)
            await self._finish_fetches()
            self._hand_over()
            self.summary.segments = self._writer.close()
            self.summary.seconds = time.monotonic() - started
            if not output_existed and not self.summary.segments:
                with contextlib.suppress(OSError):
                    self.config.output.rmdir()
        failures = (self._fetch_bug, self._connect_failure, self._subscribe_failure, self._backlog_failure)
        for failure in (*failures, self._rest_failure):
            if failure is not None:
                raise failure
        return self.summary

    def _on_client_event(self, event: ClientEvent) -> None:
        """The client's account of the connection, turned into `ws_open`/`ws_close` rows and counters."""
        if isinstance(event, ConnectionOpened):
            self._conn_id = self._take_conn_id()
            if self.venue.capture_policy().snapshot_url is not None:
                self._needs = SnapshotNeeds.for_symbols(self.venue, self.config.symbols)
            self._waiting = {} if self._needs is None else self._needs.waiting
            self._frame_head = (self._conn_id, EventKind.WS_RECV, self._url_text, None, None)
            if self.observe is not None:
                self._observe_frame = functools.partial(self.observe, EventKind.WS_RECV, self._conn_id)
            self.summary.connections += 1
            self._emit(EventKind.WS_OPEN, self._conn_id, event.wall_ns, event.mono_ns, b"", self.url)
        elif isinstance(event, Disconnected) and self._conn_id is not None:
            if event.cause is DisconnectCause.STEP_REJECTED and self.summary.connections == 1:
                # As a symbol the venue does not list is refused up front on Binance: retrying cannot help.
                answer = self.redact.text(self._last_control.decode(errors="replace"))
                self._subscribe_failure = HarnessError(f"the venue refused the subscription: {answer}")
                self.stop.set()
            self.summary.close_codes.append(event.code)
            reason = event.reason or event.cause.value
            self._emit(
                EventKind.WS_CLOSE, self._conn_id, event.wall_ns, event.mono_ns, b"", self.url,
                status=event.code, reason=reason,
            )  # fmt: skip
            self._conn_id, self._needs, self._waiting, self._frame_head = None, None, {}, None
            self._observe_frame = None
        elif isinstance(event, ConnectFailed):
            self.summary.connect_failures += 1
            if self.summary.connections == 0 and self._connect_failure is None:
                self._connect_failure = HarnessError(f"cannot connect to {self.redact.text(self.url)}: {event.error}")
                self.stop.set()
        elif isinstance(event, ReconnectScheduled):
            self.summary.backoff_waits += 1
        elif isinstance(event, WatchdogFired):
            self.summary.watchdog_fired += 1
        if self.observe_client is not None:
            self.observe_client(event)

    def _on_frame(self, payload: bytes, mono_ns: int, wall_ns: int, client_conn_id: int) -> None:
        """The hot path (profiled): everything but the tuple and the append is a lookup that misses."""
        stream = self._stream_of(payload)
        text = self._redact_text(stream)  # remembered by the redactor: a lookup for any stream seen before
        rows = self._frames
        if rows is None:
            rows = self._open_frames()
        rows.append((wall_ns, mono_ns, text, payload))
        observe = self._observe_frame
        if observe is not None:
            observe(text)
        if stream in self._waiting:
            needs = self._needs
            assert needs is not None, "waiting streams belong to the open connection's needs"
            symbol = needs.on_frame(stream, payload)
            if symbol is not None:
                self._spawn_fetch(needs, symbol)
        elif stream is None:
            self._last_control = payload[:300]

    def _open_frames(self) -> list[Row]:
        head = self._frame_head
        assert head is not None, "a frame outside a connection"
        rows: list[Row] = []
        self._add_run(head, rows)
        self._frames = rows
        return rows

    def _add_run(self, head: RunHead, rows: list[Row]) -> None:
        if not self._batch:
            assert self._loop is not None, "run() sets the loop before any event arrives"
            self._loop.call_soon(self._hand_over)
        self._batch.append((head, rows))

    def _hand_over(self) -> None:
        """Gives the writer thread every run gathered since the last turn of the loop (one queue put a
        turn rather than one a frame), counts them, and checks the backlog."""
        batch = self._batch
        if not batch:
            return
        self._batch, self._frames = [], None
        payload_bytes = 0
        summary = self.summary
        for head, rows in batch:
            payload_bytes += sum(map(len, map(_PAYLOAD, rows)))
            summary.events += len(rows)
            if head[1] is EventKind.WS_RECV:
                summary.frames += len(rows)
        assert self._writer is not None, "run() sets the writer before any event arrives"
        self._writer.put(batch, payload_bytes)
        if self._writer.backlog_bytes > self.config.max_backlog_bytes and self._backlog_failure is None:
            mib = self.config.max_backlog_bytes / 2**20
            self._backlog_failure = HarnessError(
                f"the disk is not keeping up: more than {mib:g} MiB received and not yet written; recording "
                f"stopped, and everything received up to then was written to {self.config.output}"
            )
            self.stop.set()

    def _on_send(self, message: str) -> None:
        conn_id = self._conn_id
        assert conn_id is not None, "the client subscribes only on an open connection"
        self._emit(EventKind.WS_SEND, conn_id, time.time_ns(), time.monotonic_ns(), message.encode(), self.url)

    def _spawn_fetch(self, needs: SnapshotNeeds, symbol: str) -> None:
        task = asyncio.ensure_future(self._fetch_snapshot(needs, symbol))
        self._fetches.add(task)
        task.add_done_callback(self._fetch_done)

    def _fetch_done(self, task: asyncio.Task[None]) -> None:
        """A fetch that failed unexpectedly stops the recording and is re-raised by `run`, not lost."""
        self._fetches.discard(task)
        if not task.cancelled() and task.exception() is not None and self._fetch_bug is None:
            self._fetch_bug = task.exception()
            self.stop.set()

    async def _fetch_snapshot(self, needs: SnapshotNeeds, symbol: str) -> None:
        """Fetches until a snapshot a syncing client would keep, backing off between tries (at least
        as long as a 429's or 418's `Retry-After` says: Binance bans an IP that keeps asking)."""
        snapshot_url = self.venue.capture_policy().snapshot_url
        assert snapshot_url is not None, "make_config refuses venues without REST snapshots"
        url = snapshot_url(self.config.rest_url, symbol)
        told_to_wait_s = 0.0
        for attempt in range(self.config.snapshot_attempts):
            if attempt:
                delay = self._snapshot_backoff.delay(attempt - 1, self._snapshot_rng)
                if await self._stopped_within(max(delay, told_to_wait_s)):
                    return
            conn_id = self._take_conn_id()
            self._emit(EventKind.HTTP_REQUEST, conn_id, time.time_ns(), time.monotonic_ns(), b"", url, reason="GET")
            try:
                response = await http_get(url, user_agent=USER_AGENT, headers=self.config.headers)
            except HttpError as exc:
                wall_ns, mono_ns = time.time_ns(), time.monotonic_ns()
                self._emit(EventKind.HTTP_RESPONSE, conn_id, wall_ns, mono_ns, b"", url, reason=_one_line(exc))
                if self.summary.snapshots == 0 and self._rest_failure is None:
                    self._rest_failure = HarnessError(f"cannot fetch {self.redact.text(url)}: {_one_line(exc)}")
                    self.stop.set()
                    return
                continue
            wall_ns, mono_ns = time.time_ns(), time.monotonic_ns()
            self.summary.snapshots += 1
            self._emit(
                EventKind.HTTP_RESPONSE,
                conn_id,
                wall_ns,
                mono_ns,
                response.body,
                url,
                status=response.status,
                reason=response.reason,
            )
            if needs.fresh_enough(symbol, response.status, response.body):
                return
            retry_after = response.headers.get("retry-after", "")
            told_to_wait_s = float(retry_after) if retry_after.isdigit() else 0.0

    async def _stopped_within(self, seconds: float) -> bool:
        """Waits `seconds`, or less when the recording is stopped meanwhile (a Retry-After can be long)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), seconds)
        return self.stop.is_set()

    async def _finish_fetches(self) -> None:
        if not self._fetches:
            return
        _, pending = await asyncio.wait(set(self._fetches), timeout=STOP_GRACE_S)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    def _take_conn_id(self) -> int:
        conn_id = self._next_conn_id
        self._next_conn_id += 1
        return conn_id

    def _emit(
        self,
        kind: EventKind,
        conn_id: int,
        wall_ns: int,
        mono_ns: int,
        payload: bytes,
        url: str,
        stream: str | None = None,
        *,
        status: int | None = None,
        reason: str | None = None,
    ) -> None:
        redact = self.redact
        head = (conn_id, kind, redact.text(url), status, redact.text(reason))
        stream = redact.text(stream)
        self._add_run(head, [(wall_ns, mono_ns, stream, payload)])
        self._frames = None
        if self.observe is not None:
            self.observe(kind, conn_id, stream)


class _RecordedStep:
    """A venue's subscribe step whose messages are handed to `on_send` as the client is about to send
    them, so that the recording holds what was asked for on each connection (`ws_send` rows)."""

    def __init__(self, step: SessionStep, on_send: Callable[[str], None]) -> None:
        self._step = step
        self._on_send = on_send
        self.timeout_s = step.timeout_s

    def messages(self) -> Sequence[str]:
        messages = self._step.messages()
        for message in messages:
            self._on_send(message)
        return messages

    def classify(self, payload: bytes) -> StepReply:
        return self._step.classify(payload)


async def _check_listed(url: str, symbol: str, headers: tuple[tuple[str, str], ...]) -> None:
    """Refuses, before anything is recorded, a symbol the venue says it does not list (-1121).

    Without this a stream nobody publishes records nothing, and the run ends "0 frames" as if that
    were a result. Any other answer (none at all, or a venue without the endpoint) is left to the
    recording itself, which reports an unreachable venue on its own.
    """
    try:
        response = await http_get(url, user_agent=USER_AGENT, headers=headers)
    except HttpError:
        return
    try:
        code = orjson.loads(response.body).get("code") if response.status == 400 else None
    except (orjson.JSONDecodeError, AttributeError):
        code = None
    if code == INVALID_SYMBOL_CODE:
        raise HarnessError(f"the venue does not list {symbol} ({url} answered: Invalid symbol)")


INVALID_SYMBOL_CODE = -1121


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
