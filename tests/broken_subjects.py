"""Deliberately broken subjects: our components with one defect each, for tests/test_replay_catches.py.

Each factory is importable as `tests.broken_subjects:<name>` from the repository root (the subject
process runs `python -m harness.subject_host` there). Each defect is one a real market-data client
has shipped with; each is harmless on a clean feed and shows only under the fault it mishandles, so
a test can show the checker separating the broken subject from our default one on the same replay.
"""

from __future__ import annotations

import asyncio
import re
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

import orjson

from harness.book import OrderBook
from harness.book_events import DecodeError, DepthDelta, Level
from harness.client_state import ClientEvent, ConnectionOpened, Disconnected
from harness.default_subject import USER_AGENT, DefaultSubject
from harness.http import HttpError, http_get
from harness.observations import BookObservation, SyncEvent
from harness.queue import MessagePriority
from harness.subject import Report, SubjectConfig
from harness.sync import BookSync, NeedSnapshot, Resync, StaleSnapshot, Step, Synced
from harness.sync import SyncEvent as Decision
from harness.venues.binance_spot.decoder import decode_frame
from harness.venues.binance_spot.sequencing import BinanceSpotSequencing
from harness.venues.binance_usdm.sequencing import BinanceUsdmSequencing
from harness.venues.bybit.sequencing import BybitSequencing
from harness.venues.okx.sequencing import OkxSequencing

# Sequencing rules with one rule of Binance's "manage a local order book" recipe left out.


class GapBlindSequencing(BinanceSpotSequencing):
    """Skips what it has seen, applies anything newer: an update that does not start at `u + 1` is
    applied anyway, so lost, corrupt and reordered frames leave holes nobody notices."""

    def follow(self, delta: DepthDelta, last_update_id: int) -> Step:
        return Step.DROP if delta.last_update_id <= last_update_id else Step.APPLY


class NoDedupSequencing(BinanceSpotSequencing):
    """Applies an update it has already applied (or an older one) instead of dropping it: a late
    retransmission puts old sizes back into the book."""

    def follow(self, delta: DepthDelta, last_update_id: int) -> Step:
        if delta.last_update_id <= last_update_id:
            return Step.APPLY
        return super().follow(delta, last_update_id)


class TrustingBridgeSequencing(BinanceSpotSequencing):
    """Joins any snapshot to the buffered updates: never refetches a stale snapshot and never drops
    the updates a too-new snapshot already contains."""

    def snapshot_is_stale(self, snapshot_id: int, first: DepthDelta) -> bool:
        return False

    def bridge(self, delta: DepthDelta, snapshot_id: int) -> Step:
        return Step.APPLY


class DropsByFirstIdSequencing(BinanceSpotSequencing):
    """Drops an update older than the snapshot by its first id (`U <= lastUpdateId`) instead of its last:
    the update that straddles the snapshot is dropped, so the next one never bridges it. Harmless
    while snapshots land on frame boundaries, where the two tests agree."""

    def bridge(self, delta: DepthDelta, snapshot_id: int) -> Step:
        if delta.first_update_id <= snapshot_id:
            return Step.DROP
        return super().bridge(delta, snapshot_id)


class UncheckedBridgeSequencing(BinanceSpotSequencing):
    """Drops what the snapshot covers (`u <= lastUpdateId`) and applies whatever comes next, without
    asking whether it starts at `lastUpdateId + 1` or earlier: a snapshot older than the stream is
    joined across the missing updates."""

    def snapshot_is_stale(self, snapshot_id: int, first: DepthDelta) -> bool:
        return False

    def bridge(self, delta: DepthDelta, snapshot_id: int) -> Step:
        return Step.DROP if delta.last_update_id <= snapshot_id else Step.APPLY


class TrustsNextSnapshotSequencing(BinanceSpotSequencing):
    """The usual rule, except that while `trust_next` is set any snapshot bridges."""

    def __init__(self) -> None:
        self.trust_next = False

    def snapshot_is_stale(self, snapshot_id: int, first: DepthDelta) -> bool:
        return not self.trust_next and super().snapshot_is_stale(snapshot_id, first)

    def bridge(self, delta: DepthDelta, snapshot_id: int) -> Step:
        step = super().bridge(delta, snapshot_id)
        return Step.APPLY if step is Step.GAP and self.trust_next else step


class ResumingSequencing(BinanceSpotSequencing):
    """The usual rule, except that the first update after a reconnect is taken as the next one."""

    def __init__(self) -> None:
        self.resume_next = False

    def follow(self, delta: DepthDelta, last_update_id: int) -> Step:
        if self.resume_next and delta.last_update_id > last_update_id:
            self.resume_next = False
            return Step.APPLY
        return super().follow(delta, last_update_id)


class LinkBlindSequencing(BinanceUsdmSequencing):
    """Binance USD-M's rule with the `pu` check left out: anything newer than the book is applied, so
    a lost event leaves a hole nobody notices (on a clean feed every `pu` matches anyway)."""

    def follow(self, delta: DepthDelta, last_update_id: int) -> Step:
        return Step.DROP if delta.last_update_id <= last_update_id else Step.APPLY


class UpdateIdBlindSequencing(BybitSequencing):
    """Bybit's rule with the `u` +1 check left out: anything newer than the book is applied, so a lost
    delta leaves a hole nobody notices (on a clean feed every `u` follows anyway)."""

    def follow(self, delta: DepthDelta, last_update_id: int) -> Step:
        return Step.DROP if delta.last_update_id <= last_update_id else Step.APPLY


class ChecksumBlindSequencing(OkxSequencing):
    """OKX's rule with the CRC32 check left out: a book the venue's checksum disowns is kept and shown
    as synced (on a clean feed every checksum matches anyway)."""

    def verify(self, book: OrderBook, delta: DepthDelta) -> bool:
        return True


# Books that get prices wrong in ways only some markets show.


class NaiveBook(OrderBook):
    """A dict of levels per side, keyed by `key(price)` and sorted by key on every read, best first:
    the book many clients start with. Exact when the key is exact; each subclass picks a key that is not."""

    __slots__ = ("_naive_asks", "_naive_bids")

    def key(self, price: str) -> Any:
        raise NotImplementedError

    def clear(self) -> None:
        self._naive_bids: dict[Any, Level] = {}
        self._naive_asks: dict[Any, Level] = {}
        self.last_update_id = -1

    def load(self, last_update_id: int, bids: Iterable[Level], asks: Iterable[Level]) -> None:
        self.clear()
        self.apply(last_update_id, bids, asks)

    def apply(self, last_update_id: int, bids: Iterable[Level], asks: Iterable[Level]) -> None:
        for side, levels in ((self._naive_bids, bids), (self._naive_asks, asks)):
            for level in levels:
                if level[1].strip("0."):
                    side[self.key(level[0])] = level
                else:
                    side.pop(self.key(level[0]), None)
        self.last_update_id = last_update_id

    def top_n(self, n: int) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        return self._side(self._naive_bids, True)[:n], self._side(self._naive_asks, False)[:n]

    def depth(self) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        return self._side(self._naive_bids, True), self._side(self._naive_asks, False)

    def is_crossed(self) -> bool:
        if not (self._naive_bids and self._naive_asks):
            return False
        return max(self._naive_bids) >= min(self._naive_asks)

    @staticmethod
    def _side(side: dict[Any, Level], bids: bool) -> list[tuple[str, str]]:
        return [(side[key][0], side[key][1]) for key in sorted(side, reverse=bids)]


class CentsKeyedBook(NaiveBook):
    """Keys prices by `round(float(price), 2)`: right for every market quoted in cents, and below a
    cent every level of a side lands on one key ("0.00000985" and "0.00000984" are both 0.0)."""

    __slots__ = ()

    def key(self, price: str) -> float:
        return round(float(price), 2)


class TextSortedBook(NaiveBook):
    """Keys and sorts prices as the strings they arrive as: right while every price has as many
    integer digits, wrong once a market crosses a power of ten ("100.01000000" < "99.99000000")."""

    __slots__ = ()

    def key(self, price: str) -> str:
        return price


# Subjects.


class ResumesAfterReconnect(DefaultSubject):
    """Assumes a new connection resumes the stream where the old one left off: keeps its book across
    a disconnect (no resync) and applies the new connection's first update on top of it."""

    def __init__(self, config: SubjectConfig, **options: Any) -> None:
        self._rules: list[ResumingSequencing] = []
        super().__init__(config, sequencing=self._new_rule, **options)

    def _new_rule(self) -> ResumingSequencing:
        rule = ResumingSequencing()
        self._rules.append(rule)
        return rule

    def _on_event(self, event: ClientEvent) -> None:
        if isinstance(event, Disconnected):
            for rule in self._rules:
                rule.resume_next = True
            return
        super()._on_event(event)


class TrustsSecondSnapshot(DefaultSubject):
    """Refetches a stale snapshot once, then takes the next one as if it bridged, whatever it is."""

    def __init__(self, config: SubjectConfig) -> None:
        self._rules: list[TrustsNextSnapshotSequencing] = []
        super().__init__(config, sequencing=self._new_rule)
        self._rule_of = dict(zip(config.symbols, self._rules, strict=True))

    def _new_rule(self) -> TrustsNextSnapshotSequencing:
        rule = TrustsNextSnapshotSequencing()
        self._rules.append(rule)
        return rule

    def _handle(
        self,
        symbol: str,
        decisions: Iterable[Decision],
        now_ns: int,
        stamps: tuple[int, int, int] | None = None,
    ) -> None:
        decisions = list(decisions)
        rule = self._rule_of[symbol]
        for decision in decisions:
            if isinstance(decision, StaleSnapshot):
                rule.trust_next = True
            elif isinstance(decision, Synced | Resync):
                rule.trust_next = False
        super()._handle(symbol, decisions, now_ns, stamps)


class SingleShotSnapshot(DefaultSubject):
    """Fetches a snapshot with one attempt; after an error or a timeout it asks no more for that symbol
    until something clears `_gave_up`, so meanwhile the book stays unsynced."""

    def __init__(self, config: SubjectConfig, **options: Any) -> None:
        super().__init__(config, **options)
        self._gave_up: set[str] = set()

    def _want_snapshot(self, symbol: str) -> None:
        if symbol not in self._gave_up:
            super()._want_snapshot(symbol)

    async def _fetch_snapshot(self, symbol: str) -> None:
        url = self.snapshot_url(symbol, self.snapshot_limit)
        try:
            response = await http_get(url, user_agent=USER_AGENT, timeout_s=self._snapshot_timeout_s)
            snapshot = self.decode_snapshot(response.body, symbol) if response.status == 200 else None
        except (HttpError, TimeoutError, DecodeError):
            snapshot = None
        if snapshot is None:
            self._gave_up.add(symbol)
            self._report(SyncEvent("snapshot_error", time.monotonic_ns(), "giving up", symbol))
            return
        self._fetches.pop(symbol, None)
        self._handle(symbol, self._syncs[symbol].on_snapshot(snapshot), time.monotonic_ns())


class GivesUpOnSnapshot(SingleShotSnapshot):
    """One snapshot attempt with a tight timeout, ever: after a failure the book stays unsynced."""

    def __init__(self, config: SubjectConfig) -> None:
        super().__init__(config, snapshot_timeout_s=0.25)


class FetchesOncePerConnection(SingleShotSnapshot):
    """Takes a failed snapshot for part of an outage that will drop the WebSocket too, and tries again
    only on the next connection. Right when REST and the WebSocket fail and recover together; stuck
    unsynced when REST is still down after the WebSocket is back."""

    def _on_event(self, event: ClientEvent) -> None:
        if isinstance(event, ConnectionOpened):
            self._gave_up.clear()
        super()._on_event(event)


class PollsSnapshots(DefaultSubject):
    """Reloads each book from a fresh 5,000-level snapshot over and over (a "consistency check" on a
    timer far too short), and retries a refused fetch at once, ignoring `Retry-After`: the venue answers
    429, then bans it with 418, and the reload it had started never completes."""

    RELOAD_EVERY_S = 0.05
    RETRY_S = 0.01

    async def _fetch_snapshot(self, symbol: str) -> None:
        sync = self._syncs[symbol]
        url = self.snapshot_url(symbol, self.snapshot_limit)
        while True:
            self._handle(
                symbol, [d for d in sync.on_connection_reset() if type(d) is not NeedSnapshot], time.monotonic_ns()
            )
            while True:
                try:
                    response = await http_get(url, user_agent=USER_AGENT, timeout_s=self._snapshot_timeout_s)
                except (HttpError, TimeoutError):
                    response = None
                if response is not None and response.status == 200:
                    break
                status = "no answer" if response is None else f"HTTP {response.status}"
                self._report(SyncEvent("snapshot_error", time.monotonic_ns(), status, symbol))
                await asyncio.sleep(self.RETRY_S)
            self._handle(symbol, sync.on_snapshot(self.decode_snapshot(response.body, symbol)), time.monotonic_ns())
            await asyncio.sleep(self.RELOAD_EVERY_S)


_FIELD = re.compile(rb'"([sUu])":"?([A-Za-z0-9]+)')
_LEVEL = re.compile(rb'\["([0-9.]+)","([0-9.]+)"\]')


def salvage_depth(payload: bytes) -> DepthDelta | None:
    """What a "tolerant" parser recovers from a broken depthUpdate: its ids and every complete level
    it can find. From a truncated frame that is the first part of the update under its full id range."""
    if b"depthUpdate" not in payload:
        return None
    fields = {key.decode(): value.decode() for key, value in _FIELD.findall(payload)}
    if not {"s", "U", "u"} <= fields.keys() or not (fields["U"].isdigit() and fields["u"].isdigit()):
        return None
    bids_at, asks_at = payload.find(b'"b":'), payload.find(b'"a":')
    bids_part = payload[bids_at : asks_at if asks_at > bids_at else len(payload)] if bids_at >= 0 else b""
    asks_part = payload[asks_at:] if asks_at >= 0 else b""
    bids = [[p.decode(), q.decode()] for p, q in _LEVEL.findall(bids_part)]
    asks = [[p.decode(), q.decode()] for p, q in _LEVEL.findall(asks_part)]
    return DepthDelta(fields["s"], int(fields["U"]), int(fields["u"]), bids, asks)


class SalvagesCorruptFrames(DefaultSubject):
    """Repairs frames it cannot decode instead of dropping them and letting the sequence check see the gap."""

    def _on_message(self, payload: bytes, recv_mono_ns: int, recv_wall_ns: int, conn_id: int) -> None:
        try:
            decode_frame(payload)
        except DecodeError:
            delta = salvage_depth(payload)
            if delta is not None:
                self._queue.put_nowait((delta, recv_mono_ns, time.monotonic_ns(), conn_id), MessagePriority.NORMAL)
                return
        super()._on_message(payload, recv_mono_ns, recv_wall_ns, conn_id)


class SlowReading(DefaultSubject):
    """Stops reading for `STALL_S` of wall time (a blocked loop, a long GC pause) once the stream is
    `STALL_AFTER_S` of recorded time old, on a 4 KiB receive buffer, so the venue's backlog for it
    grows past any slow-consumer limit. A stall rather than a steady slowness, so that whether the venue
    drops it depends on bytes (what is sent during the stall against what the kernels hold: about 40 KiB
    with the venue's pinned send buffer), not on how fast this machine happens to be. (The client has no
    socket-option hook, so this reaches into its live connection; fine for a test double, not for a subject.)"""

    STALL_AFTER_S = 3.0
    STALL_S = 3.0
    RECEIVE_BUFFER = 4096

    def __init__(self, config: SubjectConfig, **options: Any) -> None:
        super().__init__(config, **options)
        self._first_event_ms: int | None = None
        self._stalled = False

    def _on_event(self, event: ClientEvent) -> None:
        if isinstance(event, ConnectionOpened):
            ws = self._client._ws
            sock = ws.transport.get_extra_info("socket") if ws is not None and ws.transport is not None else None
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.RECEIVE_BUFFER)
        super()._on_event(event)

    def _on_message(self, payload: bytes, recv_mono_ns: int, recv_wall_ns: int, conn_id: int) -> None:
        if not self._stalled:
            event_ms = orjson.loads(payload).get("data", {}).get("E")
            if event_ms is None:
                pass
            elif self._first_event_ms is None:
                self._first_event_ms = event_ms
            elif event_ms - self._first_event_ms >= self.STALL_AFTER_S * 1000:
                self._stalled = True
                time.sleep(self.STALL_S)
        super()._on_message(payload, recv_mono_ns, recv_wall_ns, conn_id)


class SlowReaderResumes(SlowReading, ResumesAfterReconnect):
    """Dropped for being slow, it carries on with its old book."""


class OneSnapshotForAll(DefaultSubject):
    """Fetches every symbol's REST snapshot from the first symbol's URL (a client written for one
    market and extended to several): each other book is loaded from another market's snapshot."""

    async def _fetch_snapshot(self, symbol: str) -> None:
        sync = self._syncs[symbol]
        url = self.snapshot_url(self._config.symbols[0], self.snapshot_limit)
        while True:
            try:
                response = await http_get(url, user_agent=USER_AGENT, timeout_s=self._snapshot_timeout_s)
                snapshot = self.decode_snapshot(response.body, symbol) if response.status == 200 else None
            except (HttpError, TimeoutError, DecodeError):
                snapshot = None
            if snapshot is not None:
                decisions = sync.on_snapshot(snapshot)
                self._handle(symbol, [d for d in decisions if type(d) is not NeedSnapshot], time.monotonic_ns())
                if sync.synced or not any(type(d) is NeedSnapshot for d in decisions):
                    return
            await asyncio.sleep(0.2)


class ProvisionalBook(DefaultSubject):
    """Waits `WARM_UP_S` before its first snapshot of each symbol and meanwhile shows, as an unsynced book,
    the levels each update carries: a book reported before any snapshot it could stand on."""

    WARM_UP_S = 0.3

    def __init__(self, config: SubjectConfig, **options: Any) -> None:
        super().__init__(config, **options)
        self._warm: set[str] = set()

    async def _fetch_snapshot(self, symbol: str) -> None:
        if symbol not in self._warm:
            await asyncio.sleep(self.WARM_UP_S)
            self._warm.add(symbol)
        await super()._fetch_snapshot(symbol)

    def _on_message(self, payload: bytes, recv_mono_ns: int, recv_wall_ns: int, conn_id: int) -> None:
        try:
            event = decode_frame(payload)
        except DecodeError:
            event = None
        if type(event) is DepthDelta and event.symbol not in self._warm:
            now = time.monotonic_ns()
            bids = [(p, q) for p, q in sorted(event.bids, key=lambda level: -float(level[0]))[:20]]
            asks = [(p, q) for p, q in sorted(event.asks, key=lambda level: float(level[0]))[:20]]
            self._report(
                BookObservation(event.symbol, event.last_update_id, False, bids, asks, recv_mono_ns, now, now, now)
            )
        super()._on_message(payload, recv_mono_ns, recv_wall_ns, conn_id)


class LowercaseSymbols(DefaultSubject):
    """Reports every book, event and final book under its stream's lowercase name (`btcusdt`), the key
    its client files them under, instead of the symbol it was asked for."""

    async def run(self, report: Report, stop: asyncio.Event) -> None:
        def lowered(message: Any) -> None:
            if getattr(message, "symbol", ""):
                message = replace(message, symbol=message.symbol.lower())
            report(message)

        await super().run(lowered, stop)


def _with_books(config: SubjectConfig, book: Callable[[], OrderBook]) -> DefaultSubject:
    """Our subject on `book`s, without the crossed-book check (which such a book trips on every
    snapshot, so it would never claim sync and resync in a loop: caught, but as a book that never syncs)."""
    subject = DefaultSubject(config, check_crossed=False)
    subject._syncs = {
        symbol: BookSync(BinanceSpotSequencing(), book(), check_crossed=False) for symbol in config.symbols
    }
    return subject


def gap_blind(config: SubjectConfig) -> DefaultSubject:
    """Applies updates across sequence gaps (drop, gap, reorder)."""
    return DefaultSubject(config, sequencing=GapBlindSequencing)


def applies_duplicates(config: SubjectConfig) -> DefaultSubject:
    """Applies duplicate and older updates again (duplicate)."""
    return DefaultSubject(config, sequencing=NoDedupSequencing)


def sheds_bursts(config: SubjectConfig) -> DefaultSubject:
    """A four-slot queue: a burst overflows it and depth updates the venue delivered are dropped, so
    the sync sees gaps that were never on the wire and resyncs for nothing (burst)."""
    return DefaultSubject(config, queue_size=4)


def trigger_happy_watchdog(config: SubjectConfig) -> DefaultSubject:
    """Takes 200 ms of silence for a dead connection: a network delay costs it a reconnect and a resync (delay)."""
    return DefaultSubject(config, watchdog_s=0.2)


def no_watchdog(config: SubjectConfig) -> DefaultSubject:
    """Trusts a silent socket forever, so a half-open connection is never noticed (stall)."""
    return DefaultSubject(config, watchdog_s=None)


def resumes_after_reconnect(config: SubjectConfig) -> DefaultSubject:
    """Keeps its book across reconnects, and never asks whether the result is even uncrossed
    (disconnect): the crossed-book check would otherwise resync it by luck whenever the updates it
    missed while away happened to cross the book."""
    return ResumesAfterReconnect(config, check_crossed=False)


def gives_up_reconnecting(config: SubjectConfig) -> DefaultSubject:
    """Stops reconnecting after two refused handshakes in a row (handshake_refused, exchange_restart)."""
    return DefaultSubject(config, max_retries=2)


def gives_up_silently(config: SubjectConfig) -> DefaultSubject:
    """Never reconnects after a disconnect and does not notice: its book freezes but still claims synced."""
    return ResumesAfterReconnect(config, max_retries=0)


def trusts_any_snapshot(config: SubjectConfig) -> DefaultSubject:
    """Joins stale and too-new snapshots to the stream, and never asks whether the result is even
    uncrossed (snapshot stale, too_new): the crossed-book check would otherwise often resync it by luck."""
    return DefaultSubject(config, sequencing=TrustingBridgeSequencing, check_crossed=False)


def fetches_once_per_connection(config: SubjectConfig) -> DefaultSubject:
    """Retries a failed snapshot only after a reconnect (exchange_restart with a REST outage)."""
    return FetchesOncePerConnection(config)


def drops_by_first_id(config: SubjectConfig) -> DefaultSubject:
    """Drops buffered updates by `U <= lastUpdateId` (straddling snapshots)."""
    return DefaultSubject(config, sequencing=DropsByFirstIdSequencing)


def skips_bridge_check(config: SubjectConfig) -> DefaultSubject:
    """Applies the first update after a snapshot without the bridge check; its crossed-book check is on,
    so only a stale snapshot that leaves the book uncrossed gets past it (barely_stale)."""
    return DefaultSubject(config, sequencing=UncheckedBridgeSequencing)


def trusts_second_snapshot(config: SubjectConfig) -> DefaultSubject:
    """Refetches a stale snapshot once, then trusts the next one (barely_stale served twice in a row)."""
    return TrustsSecondSnapshot(config)


def gives_up_on_snapshot(config: SubjectConfig) -> DefaultSubject:
    """One snapshot attempt with a 250 ms timeout, then never again (snapshot error, slow)."""
    return GivesUpOnSnapshot(config)


def salvages_corrupt_frames(config: SubjectConfig) -> DefaultSubject:
    """Applies what it can parse of a broken frame (corrupt, truncated)."""
    return SalvagesCorruptFrames(config)


def polls_snapshots(config: SubjectConfig) -> DefaultSubject:
    """Refetches 5,000-level snapshots in a loop and ignores 429s until it is banned (REST request weight)."""
    return PollsSnapshots(config)


def slow_reader_resumes(config: SubjectConfig) -> DefaultSubject:
    """Too slow for the venue, and keeps its book when the venue drops it (slow_consumer)."""
    return SlowReaderResumes(config)


def cents_keyed_book(config: SubjectConfig) -> DefaultSubject:
    """Keys its books by prices rounded to the cent and trusts them uncrossed (a market quoted below a cent)."""
    return _with_books(config, CentsKeyedBook)


def text_sorted_book(config: SubjectConfig) -> DefaultSubject:
    """Sorts its books' prices as strings and trusts them uncrossed (a market crossing a power of ten)."""
    return _with_books(config, TextSortedBook)


def one_snapshot_for_all(config: SubjectConfig) -> DefaultSubject:
    """Loads every symbol's book from the first symbol's snapshot (several symbols on one connection)."""
    return OneSnapshotForAll(config)


def shows_book_before_snapshot(config: SubjectConfig) -> DefaultSubject:
    """Shows unsynced books built from updates before its first snapshot (books before a snapshot)."""
    return ProvisionalBook(config)


def lowercase_symbols(config: SubjectConfig) -> DefaultSubject:
    """Reports under `btcusdt` what it was asked for as `BTCUSDT` (output for a symbol never asked for, a dark book)."""
    return LowercaseSymbols(config)


def forgets_last_symbol(config: SubjectConfig) -> DefaultSubject:
    """Builds its stream list with an off-by-one: the last symbol it was asked for is never subscribed (dark book)."""
    return DefaultSubject(replace(config, symbols=config.symbols[:-1]))


class CrashesBeforeConnecting:
    async def run(self, report: object, stop: object) -> None:
        raise RuntimeError("the subject crashed before it connected")


def crashes_before_connecting(config: SubjectConfig) -> CrashesBeforeConnecting:
    """Raises at once, so nothing ever subscribes and the replay clock never starts."""
    return CrashesBeforeConnecting()


def ignores_pu(config: SubjectConfig) -> DefaultSubject:
    """USD-M: never compares `pu` with the last `u`, so dropped events go unnoticed."""
    return DefaultSubject(config, sequencing=LinkBlindSequencing)


def spot_rule_on_usdm(config: SubjectConfig) -> DefaultSubject:
    """USD-M with spot's rule (`U == last u + 1`): USD-M's ids skip, so every event looks like a gap."""
    return DefaultSubject(config, sequencing=BinanceSpotSequencing)


def ignores_bybit_u(config: SubjectConfig) -> DefaultSubject:
    """Bybit: never checks that `u` is the last one + 1, so lost deltas go unnoticed. Without the
    crossed-book check too, which on Bybit's 300 ms whole-book deltas catches most such holes by luck."""
    return DefaultSubject(config, sequencing=UpdateIdBlindSequencing, check_crossed=False)


def skips_okx_checksum(config: SubjectConfig) -> DefaultSubject:
    """OKX: never recomputes the checksum an update carries, so a book the venue disowns stays "synced"."""
    return DefaultSubject(config, sequencing=ChecksumBlindSequencing)
