"""Our components wired as the harness's default subject: client -> decode -> queue -> sync -> book.

The venue's parts (decoder, sync rule, URLs) come from its dialect (`subject_parts()`,
harness/venues/dialect.py); the pipeline is the one a market-data consumer runs in production: the
reconnecting client hands raw frames to `_on_message`, which parses them (stage `parse`) and
queues depth updates (and snapshots that come on the stream, in order with them) at NORMAL priority
and trades at HIGH; one consumer task takes them off (stage `queue`) and feeds the book sync (stage
`apply`). When the sync asks for a snapshot it is fetched over REST, or, where the venue sends its
book on subscribing (Bybit, OKX), that one book is subscribed again on the open connection where
the venue allows it (`SubjectParts.resubscribe`: Bybit, OKX), else the client reconnects and
subscribes everything again. Where the recording's books need several connections (Bybit's spot and
linear), `create` runs one DefaultSubject per connection as a `SubjectGroup`. Every book state the
sync exposes is reported as a BookObservation; every loss and regain of sync as a SyncEvent.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Iterable
from time import monotonic_ns
from typing import Any

from harness.book_events import DecodeError, DepthDelta, DepthSnapshot, Trade
from harness.client import ReconnectingClient
from harness.client_state import BackoffPolicy, ClientEvent, ConnectionOpened, Disconnected
from harness.http import HttpError, http_get
from harness.observations import BookObservation, FinalBook, SubjectMessage, SyncEvent
from harness.queue import BoundedPriorityQueue, MessagePriority
from harness.queue_depth import QueueDepthSampler
from harness.snapshot_depth import snapshot_limit, whole_book_levels
from harness.subject import Report, SubjectConfig
from harness.sync import Applied, BookSync, GapDetected, NeedSnapshot, Resync, SequencingRule, StaleSnapshot, Synced
from harness.sync import SyncEvent as Decision
from harness.venues.dialect import SubjectParts
from harness.venues.registry import dialect

TOP_LEVELS = 20
USER_AGENT = "harness-subject/1"
_HIGH, _NORMAL = MessagePriority.HIGH, MessagePriority.NORMAL
"""Read once: an enum member read through its class costs about 55 ns on 3.11, and every frame needs one."""


def create(config: SubjectConfig) -> DefaultSubject | SubjectGroup:
    """The factory `--subject harness.default_subject:create` names: one DefaultSubject, or a group of
    them, one per connection, where the venue needs several for the recording's books (Bybit's spot and
    linear, each on its own path)."""
    subjects = [DefaultSubject(share, parts=parts) for share, parts in _connections(config)]
    return subjects[0] if len(subjects) == 1 else SubjectGroup(subjects)


class DefaultSubject:
    """One connection for all symbols (the venue's combined stream), one BookSync per symbol."""

    def __init__(
        self,
        config: SubjectConfig,
        *,
        queue_size: int = 10_000,
        watchdog_s: float | None = 1.5,
        backoff: BackoffPolicy | None = None,
        max_retries: int | None = None,
        snapshot_retry_s: float = 0.05,
        snapshot_retry_cap_s: float = 1.0,
        snapshot_timeout_s: float = 5.0,
        sequencing: Callable[[], SequencingRule] | None = None,
        check_crossed: bool = True,
        parts: SubjectParts | None = None,
    ) -> None:
        """The keywords are the knobs a deployment tunes (tests/broken_subjects.py mistunes them on purpose).

        `sequencing` makes one rule per symbol (None: the venue's own); `watchdog_s=None` trusts a
        silent socket forever; `max_retries` caps consecutive failed reconnects (None: retry
        forever); `check_crossed=False` drops the sync's sanity check that a crossed book cannot be
        in sync. `parts` are the venue's parts for this one connection (`create` passes each
        connection's); without them the venue's own, whose connections must then be one (ValueError
        otherwise: `create` builds the group). An unknown venue is a HarnessError.
        """
        if parts is None:
            config, parts = _one_connection(config)
        self._in_stream = parts.snapshot_url is None or parts.decode_snapshot is None
        """The venue sends snapshots on the stream (Bybit, OKX): nothing to fetch; a new one comes with a
        new subscription, so a lost sync subscribes again (`_resubscribe`)."""
        self._config = config
        self._parts = parts
        self._decode_frame = parts.decode_frame
        self.snapshot_limit = parts.max_snapshot_limit
        """The deepest snapshot the venue serves: the first for each symbol, and any whose book may be deeper."""
        self._url = parts.ws_url(config.ws_url, config.symbols)
        rule = sequencing or parts.sequencing
        self._syncs = {symbol: BookSync(rule(), check_crossed=check_crossed) for symbol in config.symbols}
        self._queue = BoundedPriorityQueue(queue_size, "DROP_LOWEST")
        self._depth = QueueDepthSampler()
        self._client = ReconnectingClient(
            self._url,
            self._on_message,
            on_event=self._on_event,
            backoff=backoff or BackoffPolicy(base_s=0.05, multiplier=2.0, cap_s=1.0),
            rng=random.Random(config.seed),
            max_retries=max_retries,
            watchdog_s=watchdog_s,
            stable_after_s=2.0,
            subscribe=None if parts.subscribe is None else parts.subscribe(config.symbols),
            keepalive=parts.keepalive,
        )
        self._snapshot_retry_s = snapshot_retry_s
        self._snapshot_retry_cap_s = snapshot_retry_cap_s
        self._snapshot_timeout_s = snapshot_timeout_s
        self._book_levels: dict[str, int | None] = {}
        self._conn_id: int | None = None
        self._fetches: dict[str, asyncio.Task[None]] = {}
        self._overdue: dict[str, asyncio.TimerHandle] = {}
        """Per symbol resubscribed on the open connection, the timer that reconnects if no snapshot comes."""
        self._refetch: set[str] = set()
        self._unasked: set[str] = set()
        """Symbols of the open connection whose first update has not arrived: it asks for their snapshot."""
        self._report: Report = _discard
        self._stopping = False
        self._trades = 0
        self._decode_errors = 0

    async def run(self, report: Report, stop: asyncio.Event) -> None:
        """Runs until `stop`; the final books are taken before the client closes, so the close is no loss."""
        self._report = report
        consumer = asyncio.create_task(self._consume(), name="subject-consumer")
        client = self._client.start()
        try:
            await stop.wait()
            self._stopping = True
            for symbol, sync in self._syncs.items():
                bids, asks = sync.book.depth()
                report(FinalBook(symbol, sync.last_update_id, sync.synced, bids, asks))
        finally:
            self._stopping = True
            await self._client.stop()
            await asyncio.gather(client, return_exceptions=True)
            consumer.cancel()
            for overdue in self._overdue.values():
                overdue.cancel()
            for task in self._fetches.values():
                task.cancel()
            await asyncio.gather(consumer, *self._fetches.values(), return_exceptions=True)

    @property
    def symbols(self) -> tuple[str, ...]:
        return self._config.symbols

    def stats(self) -> dict[str, Any]:
        return {
            "queue": self._queue.get_metrics() | {"depth_samples": self._depth.samples()},
            "trades": self._trades,
            "decode_errors": self._decode_errors,
            "sync": {symbol: sync.stats.reasons | {"gaps": sync.stats.gaps} for symbol, sync in self._syncs.items()},
        }

    def _on_message(self, payload: bytes, recv_mono_ns: int, recv_wall_ns: int, conn_id: int) -> None:
        try:
            event = self._decode_frame(payload)
        except DecodeError as exc:
            self._decode_errors += 1
            self._report(SyncEvent("decode_error", monotonic_ns(), str(exc)[:200]))
            return
        parsed = monotonic_ns()
        if type(event) is Trade:
            self._queue.put_nowait((event, recv_mono_ns, parsed, conn_id), _HIGH)
        elif type(event) is DepthDelta or type(event) is DepthSnapshot:
            if type(event) is DepthDelta and event.symbol in self._unasked:
                self._ask_early(event.symbol)
            if not self._queue.put_nowait((event, recv_mono_ns, parsed, conn_id), _NORMAL):
                self._report(SyncEvent("dropped", parsed, "queue full", event.symbol))

    def _on_event(self, event: ClientEvent) -> None:
        if self._stopping:
            return
        if isinstance(event, ConnectionOpened):
            self._conn_id = event.conn_id
            self._unasked = set(self._syncs)
            self._report(SyncEvent("connection_open", event.mono_ns, f"conn {event.conn_id}"))
        elif isinstance(event, Disconnected):
            self._conn_id = None
            self._report(SyncEvent("connection_closed", event.mono_ns, f"{event.code} {event.reason}".strip()))
            for symbol, sync in self._syncs.items():
                self._handle(symbol, sync.on_connection_reset(), event.mono_ns)

    async def _consume(self) -> None:
        """Takes everything queued, one entry at a time, and waits only when the queue is empty.

        Nothing in the loop awaits, so no frame can be queued while it runs: taking the entries with
        `get_nowait_with_meta` gives the same order as awaiting each one, without a coroutine per
        frame. The dequeue stamp is the queue's own clock reading as it let the entry go."""
        queue = self._queue
        syncs = self._syncs
        get = queue.get_nowait_with_meta
        note_depth = self._depth.note
        while True:
            delivery = await queue.get_with_meta()
            if delivery is None:
                continue
            while True:
                item, _, waited, enqueued = delivery
                dequeued = enqueued + waited
                note_depth(dequeued, len(queue) + 1)
                event, recv, parsed, conn_id = item
                if conn_id != self._conn_id:
                    pass
                elif type(event) is Trade:
                    self._trades += 1
                else:
                    sync = syncs.get(event.symbol)
                    if sync is not None:
                        if type(event) is DepthSnapshot:
                            decisions = sync.on_stream_snapshot(event)
                        else:
                            decisions = sync.on_delta(event)
                        applied = monotonic_ns()
                        if len(decisions) == 1 and type(decisions[0]) is Applied:
                            self._observe(event.symbol, sync, recv, parsed, dequeued, applied)
                        else:
                            self._handle(event.symbol, decisions, applied, (recv, parsed, dequeued))
                if not queue:
                    break
                delivery = get()

    def _observe(self, symbol: str, sync: BookSync, recv: int, parsed: int, dequeued: int, applied: int) -> None:
        bids, asks = sync.book.top_n(TOP_LEVELS)
        self._report(BookObservation(symbol, sync.last_update_id, True, bids, asks, recv, parsed, dequeued, applied))

    def _handle(
        self,
        symbol: str,
        decisions: Iterable[Decision],
        now_ns: int,
        stamps: tuple[int, int, int] | None = None,
    ) -> None:
        report = self._report
        sync = self._syncs[symbol]
        for decision in decisions:
            kind = type(decision)
            if kind is Applied or kind is Synced:
                if type(decision) is Synced:
                    report(SyncEvent("synced", now_ns, f"at {decision.last_update_id}", symbol))
                recv, parsed, dequeued = stamps or (now_ns, now_ns, now_ns)
                self._observe(symbol, sync, recv, parsed, dequeued, now_ns)
            elif type(decision) is GapDetected:
                report(SyncEvent("gap_detected", now_ns, f"after {decision.last_update_id}", symbol))
            elif type(decision) is Resync:
                report(SyncEvent("resync", now_ns, decision.reason, symbol))
            elif type(decision) is StaleSnapshot:
                report(SyncEvent("stale_snapshot", now_ns, f"snapshot {decision.snapshot_id}", symbol))
            elif kind is NeedSnapshot:
                self._want_snapshot(symbol)

    def _ask_early(self, symbol: str) -> None:
        """The first update of a connection for `symbol`: its snapshot is fetched now, on arrival, not
        when the consumer reaches the update behind the queued trades (at a venue's full speed that
        was 200 ms and thousands of updates later, all of them unverifiable until the book syncs)."""
        self._unasked.discard(symbol)
        sync = self._syncs.get(symbol)
        if sync is None or sync.synced or self._in_stream:
            return
        task = self._fetches.get(symbol)
        if task is None or task.done():
            sync.snapshot_requested()
            self._start_fetch(symbol)

    def _want_snapshot(self, symbol: str) -> None:
        if self._in_stream:
            self._resubscribe(symbol)
            return
        task = self._fetches.get(symbol)
        if task is not None and not task.done():
            self._refetch.add(symbol)
            return
        self._start_fetch(symbol)

    def _start_fetch(self, symbol: str) -> None:
        self._fetches[symbol] = asyncio.create_task(self._fetch_snapshot(symbol), name=f"snapshot-{symbol}")

    def _resubscribe(self, symbol: str) -> None:
        """Asks the venue for `symbol`'s book again on the open connection, or reconnects where it cannot;
        a snapshot that has not come `snapshot_timeout_s` later (the request was lost) reconnects too."""
        resubscribe = self._parts.resubscribe
        if resubscribe is None or not self._client.send(resubscribe(symbol)):
            self._client.reconnect("resubscribe for a snapshot")
            return
        overdue = self._overdue.pop(symbol, None)
        if overdue is not None:
            overdue.cancel()
        loop = asyncio.get_running_loop()
        self._overdue[symbol] = loop.call_later(self._snapshot_timeout_s, self._snapshot_overdue, symbol, self._conn_id)

    def _snapshot_overdue(self, symbol: str, conn_id: int | None) -> None:
        self._overdue.pop(symbol, None)
        if not self._stopping and conn_id == self._conn_id and not self._syncs[symbol].synced:
            self._client.reconnect("no snapshot after resubscribing")

    async def _fetch_snapshot(self, symbol: str) -> None:
        """Fetches until the sync holds a snapshot it did not reject, backing off after failures (for as
        long as a 429's or 418's `Retry-After` says, at least); as deep as the book, to spare request weight."""
        sync = self._syncs[symbol]
        delay = self._snapshot_retry_s
        while True:
            self._refetch.discard(symbol)
            failure = None
            wait_s = None
            limit = snapshot_limit(self._book_levels.get(symbol), self.snapshot_limit)
            url = self.snapshot_url(symbol, limit)
            try:
                response = await http_get(url, user_agent=USER_AGENT, timeout_s=self._snapshot_timeout_s)
                retry_after = response.headers.get("retry-after", "")
                wait_s = float(retry_after) if retry_after.isdigit() else None
                if response.status != 200:
                    failure = f"HTTP {response.status}"
                else:
                    snapshot = self.decode_snapshot(response.body, symbol)
            except (HttpError, TimeoutError, DecodeError) as exc:
                failure = str(exc)[:200] or type(exc).__name__
            now = monotonic_ns()
            if failure is not None:
                self._report(SyncEvent("snapshot_error", now, failure, symbol))
                sync.on_snapshot_failed()
                await asyncio.sleep(max(delay, wait_s or 0.0))
                delay = min(delay * 2, self._snapshot_retry_cap_s)
                continue
            levels = self._book_levels[symbol] = whole_book_levels(limit, len(snapshot.bids), len(snapshot.asks))
            if levels is None and limit < self.snapshot_limit:
                continue  # the book outgrew the shallow answer, which may be cut short: ask for the deepest
            decisions = sync.on_snapshot(snapshot)
            again = any(type(d) is NeedSnapshot for d in decisions)
            self._handle(symbol, [d for d in decisions if type(d) is not NeedSnapshot], monotonic_ns())
            if not again and (sync.synced or symbol not in self._refetch):
                return
            delay = self._snapshot_retry_s
            await asyncio.sleep(delay)

    def snapshot_url(self, symbol: str, limit: int) -> str:
        """The venue's REST depth request for `symbol`, `limit` levels deep."""
        assert self._parts.snapshot_url is not None, "checked in __init__"
        return self._parts.snapshot_url(self._config.rest_url, symbol, limit)

    def decode_snapshot(self, body: bytes, symbol: str) -> DepthSnapshot:
        assert self._parts.decode_snapshot is not None, "checked in __init__"
        return self._parts.decode_snapshot(body, symbol)


class SubjectGroup:
    """Our subject over several connections, one DefaultSubject each, reporting as one subject. A
    SyncEvent naming no symbol means every symbol of the connection, which to the checker is every
    symbol of the run: the group names the connection's own instead, one event each."""

    def __init__(self, subjects: list[DefaultSubject]) -> None:
        if len(subjects) < 2:
            raise ValueError("a group is two or more connections; one is a DefaultSubject")
        self._subjects = subjects

    async def run(self, report: Report, stop: asyncio.Event) -> None:
        async with asyncio.TaskGroup() as group:
            for subject in self._subjects:
                group.create_task(subject.run(_naming(report, subject.symbols), stop))

    def stats(self) -> dict[str, Any]:
        """The busiest connection's queue as the report's `queue` (the report shows one), every
        connection's stats under `connections`, the counts summed."""
        each = [subject.stats() for subject in self._subjects]
        busiest = max(each, key=lambda stats: stats["queue"]["offered"])
        return {
            "queue": busiest["queue"],
            "trades": sum(stats["trades"] for stats in each),
            "decode_errors": sum(stats["decode_errors"] for stats in each),
            "sync": {symbol: reasons for stats in each for symbol, reasons in stats["sync"].items()},
            "connections": [{key: value for key, value in stats.items() if key != "sync"} for stats in each],
        }


def _naming(report: Report, symbols: tuple[str, ...]) -> Report:
    """`report`, with an event for every symbol of the connection sent once per symbol of it."""

    def named(message: SubjectMessage) -> None:
        if type(message) is SyncEvent and not message.symbol:
            for symbol in symbols:
                report(SyncEvent(message.kind, message.mono_ns, message.detail, symbol))
        else:
            report(message)

    return named


def _connections(config: SubjectConfig) -> list[tuple[SubjectConfig, SubjectParts]]:
    """Each connection's share of `config` and the venue's parts for it (one, unless the venue says)."""
    parts = dialect(config.venue).subject_parts()
    return [(config, parts)] if parts.connections is None else parts.connections(config)


def _one_connection(config: SubjectConfig) -> tuple[SubjectConfig, SubjectParts]:
    pieces = _connections(config)
    if len(pieces) != 1:
        raise ValueError(
            f"{config.venue} needs {len(pieces)} connections for {', '.join(config.symbols)}: "
            "harness.default_subject.create builds them"
        )
    return pieces[0]


def _discard(message: object) -> None:
    return None
