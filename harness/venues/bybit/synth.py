"""The synthetic market as a recorder would have captured it from Bybit v5 (one category, one
connection): the seeded `MarketSimulator` book changes turned into Bybit's frames.

`generate_events` is the pure core (seed in, the recorder's rows out, no clock, no files). The
recorder opens `/v5/public/<category>`, subscribes to `orderbook.<depth>.<symbol>` and
`publicTrade.<symbol>` for each symbol (spot: at most 10 topics a request), and pings every 20 s as
Bybit asks; those requests are recorded as `ws_send` rows. The venue acks each request, then sends
each book's snapshot (its top `depth` levels, `u` from a seeded start), then every push interval a
delta holding exactly what changed in that top-`depth` view (levels that moved in or changed, and
"0" for levels that left it, as a depth-limited feed must), `u` +1 per frame, skipped when nothing
changed. Depth 1 is snapshots only, as on Bybit: one per change, the same `u` again after 3 s idle.
`seq` is the engine's change counter, `cts` the engine time of the last change, `ts` the push time.
Trades go out as they happen. Receive times are send times plus a seeded delay, never out of
order. Timestamps start at a fixed wall and monotonic origin, so a seed always gives the same
bytes. How to plug it into `harness synth`: docs/venues-bybit.md.
"""

from __future__ import annotations

import hashlib
import heapq
import random
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from harness import __version__
from harness.errors import HarnessError
from harness.synth.market import MarketEvent, MarketSimulator, SynthSymbol, Trade, symbol_spec
from harness.venues.bybit.control import SPOT_MAX_ARGS, pong, reply, request_frame
from harness.venues.bybit.encoder import BybitTradePrint, book_frame, decimal_text, decimals_of, trade_frame
from harness.venues.bybit.topics import (
    BOOK_DEPTHS,
    LIVE_WS_URL,
    PUSH_INTERVAL_MS,
    SUBJECT_CATEGORY,
    SUBJECT_DEPTH,
    Category,
    book_topic,
    trade_topic,
    ws_url,
)
from recorder.format import EventKind, RecordedEvent, RecordingMeta

VENUE = "bybit"
WALL_START_NS = 1_704_067_200_000_000_000
"""2024-01-01T00:00:00Z, as `harness synth` uses for Binance."""
MONO_START_NS = 86_400_000_000_000
PING_EVERY_NS = 20_000_000_000
LEVEL1_REPEAT_NS = 3_000_000_000
"""Bybit re-sends an unchanged level-1 book as a snapshot after 3 s, with the same `u`."""
WS_CONN_ID = 1
CONN_TAG = "synth-bybit-1"


@dataclass(slots=True)
class _Book:
    """One symbol as the venue publishes it: the full book, and the top-`depth` view last sent."""

    spec: SynthSymbol
    topic: str
    trades: str
    update_id: int
    bids: dict[int, int] = field(default_factory=dict)
    asks: dict[int, int] = field(default_factory=dict)
    sent_bids: dict[int, int] = field(default_factory=dict)
    sent_asks: dict[int, int] = field(default_factory=dict)
    engine_seq: int = 0
    last_change_ns: int = 0
    last_sent_ns: int = 0
    subscribed: bool = False


class _Run:
    def __init__(self, symbols: Sequence[str], seconds: float, seed: int, category: Category, depth: int) -> None:
        self.category = category
        self.depth = depth
        self.end_ns = round(seconds * 1e9)
        self.url = ws_url(LIVE_WS_URL, category)
        self.interval_ns = PUSH_INTERVAL_MS[category][depth] * 1_000_000
        self._net = random.Random(f"harness.synth.bybit.network:{seed}")
        ids = random.Random(f"harness.synth.bybit.ids:{seed}")
        self.markets: list[MarketSimulator] = []
        self.books: list[_Book] = []
        for name in symbols:
            market = MarketSimulator(symbol_spec(name), seed)
            book = _Book(market.spec, book_topic(depth, market.spec.symbol), trade_topic(market.spec.symbol), 0)
            book.update_id = ids.randrange(10**7, 10**8)
            bids, asks = market.book()
            book.bids, book.asks = dict(bids), dict(asks)
            book.engine_seq = market.last_update_id
            self.markets.append(market)
            self.books.append(book)
        self._recorded: list[tuple[int, int, RecordedEvent]] = []
        self._order = 0
        self._last_recv_ns = 0
        self._window_end = 0
        self._next_ping_ns = 0
        self._venue_subscribed_ns: int | None = None

    # --- network -----------------------------------------------------------------------------

    def _ms(self, base: float, jitter: float) -> int:
        return int((base + self._net.expovariate(1.0 / jitter)) * 1e6)

    def _one_way(self) -> int:
        return self._ms(1.2, 0.4)

    def _recv_at(self, send_ns: int) -> int:
        recv = max(send_ns + self._one_way(), self._last_recv_ns + self._net.randrange(400, 2_000))
        self._last_recv_ns = recv
        return recv

    # --- the run -------------------------------------------------------------------------------

    def events(self) -> Iterator[RecordedEvent]:
        open_ns = self._ms(18.0, 6.0)
        self._last_recv_ns = open_ns
        self._record(open_ns, EventKind.WS_OPEN)
        send_ns = open_ns + self._ms(0.1, 0.3)
        topics = [t for book in self.books for t in (book.topic, book.trades)]
        chunk = SPOT_MAX_ARGS if self.category == "spot" else len(topics)
        acks: list[int] = []
        for start in range(0, len(topics), chunk):
            request = request_frame("subscribe", tuple(topics[start : start + chunk]))
            self._record(send_ns, EventKind.WS_SEND, payload=request)
            acks.append(send_ns + self._one_way())
            send_ns += self._net.randrange(20_000, 80_000)
        self._venue_subscribed_ns = acks[-1]
        self._next_ping_ns = open_ns + PING_EVERY_NS
        self._window_end = self._venue_subscribed_ns + self._net.randrange(1, self.interval_ns + 1)
        merged = heapq.merge(*(self._tagged(market, i, self.end_ns) for i, market in enumerate(self.markets)))
        pending_acks = list(acks)
        for time_ns, _, index, event in merged:
            while pending_acks and pending_acks[0] <= time_ns:
                self._ack(pending_acks.pop(0))
            yield from self._advance(time_ns)
            self._apply(self.books[index], event, time_ns)
        for at in pending_acks:
            self._ack(at)
        yield from self._advance(self.end_ns)
        close_ns = self.end_ns + 2 * self._one_way()
        self._record(close_ns, EventKind.WS_CLOSE, status=1000, reason="")
        yield from self._release(close_ns + 1)

    @staticmethod
    def _tagged(market: MarketSimulator, index: int, until_ns: int) -> Iterator[tuple[int, int, int, MarketEvent]]:
        for order, event in enumerate(market.run(until_ns)):
            yield event.time_ns, order, index, event

    def _ack(self, venue_ns: int) -> None:
        recv = self._recv_at(venue_ns + self._ms(0.05, 0.05))
        self._record(recv, EventKind.WS_RECV, payload=reply(self.category, CONN_TAG, "subscribe", None))
        if venue_ns == self._venue_subscribed_ns:
            for book in self.books:
                self._send_book(book, venue_ns + self._ms(0.2, 0.3), snapshot=True)

    def _advance(self, now_ns: int) -> Iterator[RecordedEvent]:
        while self._window_end <= now_ns and self._window_end < self.end_ns:
            for book in self.books:
                self._send_book(book, self._window_end + self._ms(0.3, 0.8), snapshot=False)
            self._window_end += self.interval_ns
        while self._next_ping_ns <= now_ns and self._next_ping_ns < self.end_ns:
            ping_ns = self._next_ping_ns
            self._record(ping_ns, EventKind.WS_SEND, payload=request_frame("ping"))
            self._record(
                self._recv_at(ping_ns + self._one_way()), EventKind.WS_RECV, payload=pong(self.category, CONN_TAG)
            )
            self._next_ping_ns += PING_EVERY_NS
        yield from self._release(min(now_ns, self.end_ns))

    def _apply(self, book: _Book, event: MarketEvent, time_ns: int) -> None:
        if isinstance(event, Trade):
            if book.subscribed:
                self._send_trade(book, event)
            return
        side = book.bids if event.is_bid else book.asks
        if event.size:
            side[event.price] = event.size
        else:
            side.pop(event.price, None)
        book.engine_seq = event.update_id
        book.last_change_ns = time_ns

    def _top(self, side: dict[int, int], best_high: bool) -> dict[int, int]:
        prices = sorted(side, reverse=best_high)[: self.depth]
        return {price: side[price] for price in prices}

    def _send_book(self, book: _Book, send_ns: int, *, snapshot: bool) -> None:
        bids = self._top(book.bids, True)
        asks = self._top(book.asks, False)
        if not snapshot and not book.subscribed:
            return
        bid_levels = _changes(book.sent_bids, bids, reverse=True)
        ask_levels = _changes(book.sent_asks, asks, reverse=False)
        changed = bool(bid_levels or ask_levels)
        if not snapshot and self.depth == 1:
            # Level 1 is snapshots only: one per change, and the same `u` again after 3 s of none.
            if not changed and send_ns - book.last_sent_ns < LEVEL1_REPEAT_NS:
                return
            snapshot = True
        elif not snapshot and not changed:
            return
        if snapshot:
            bid_levels = sorted(bids.items(), reverse=True)
            ask_levels = sorted(asks.items())
        if book.subscribed and changed:
            book.update_id += 1
        book.subscribed = True
        book.last_sent_ns = send_ns
        book.sent_bids, book.sent_asks = bids, asks
        payload = book_frame(
            self.category,
            book.topic,
            snapshot=snapshot,
            symbol=book.spec.symbol,
            bids=[self._level(book.spec, level) for level in bid_levels],
            asks=[self._level(book.spec, level) for level in ask_levels],
            update_id=book.update_id,
            seq=book.engine_seq,
            ts_ms=(WALL_START_NS + send_ns) // 1_000_000,
            cts_ms=(WALL_START_NS + min(book.last_change_ns, send_ns)) // 1_000_000,
        )
        self._record(self._recv_at(send_ns), EventKind.WS_RECV, stream=book.topic, payload=payload)

    def _send_trade(self, book: _Book, trade: Trade) -> None:
        send_ns = trade.time_ns + self._ms(0.2, 0.5)
        spec = book.spec
        fill = BybitTradePrint(
            trade_id=str(trade.trade_id),
            time_ms=(WALL_START_NS + trade.time_ns) // 1_000_000,
            price=decimal_text(
                trade.price * spec.tick_units, decimals_of(spec.tick_units), strip=self.category == "spot"
            ),
            size=decimal_text(
                trade.quantity * spec.lot_units, decimals_of(spec.lot_units), strip=self.category == "spot"
            ),
            taker_side="Sell" if trade.buyer_is_maker else "Buy",
            seq=book.engine_seq,
        )
        payload = trade_frame(self.category, spec.symbol, [fill], (WALL_START_NS + send_ns) // 1_000_000)
        self._record(self._recv_at(send_ns), EventKind.WS_RECV, stream=book.trades, payload=payload)

    def _level(self, spec: SynthSymbol, level: tuple[int, int]) -> tuple[str, str]:
        strip = self.category == "spot"
        price, size = level
        return (
            decimal_text(price * spec.tick_units, decimals_of(spec.tick_units), strip=strip),
            decimal_text(size * spec.lot_units, decimals_of(spec.lot_units), strip=strip),
        )

    def _record(
        self,
        at_ns: int,
        kind: EventKind,
        *,
        stream: str | None = None,
        payload: bytes = b"",
        status: int | None = None,
        reason: str | None = None,
    ) -> None:
        if at_ns >= self.end_ns and kind is not EventKind.WS_CLOSE:
            return
        event = RecordedEvent(
            seq=-1,
            conn_id=WS_CONN_ID,
            kind=kind,
            recv_wall_ns=WALL_START_NS + at_ns,
            recv_mono_ns=MONO_START_NS + at_ns,
            url=self.url,
            stream=stream,
            payload=payload,
            status=status,
            reason=reason,
        )
        self._order += 1
        heapq.heappush(self._recorded, (at_ns, self._order, event))

    def _release(self, before_ns: int) -> Iterator[RecordedEvent]:
        while self._recorded and self._recorded[0][0] < before_ns:
            _, _, event = heapq.heappop(self._recorded)
            yield event


def _changes(sent: dict[int, int], now: dict[int, int], *, reverse: bool) -> list[tuple[int, int]]:
    """What turns the view a client holds (`sent`) into `now`: new or changed levels, 0 for gone ones."""
    changed = {price: size for price, size in now.items() if sent.get(price) != size}
    changed.update({price: 0 for price in sent if price not in now})
    return sorted(changed.items(), reverse=reverse)


def _symbol_list(symbols: str | Sequence[str]) -> list[str]:
    names = [s.strip().upper() for s in (symbols.split(",") if isinstance(symbols, str) else symbols)]
    names = [name for name in names if name]
    if not names:
        raise HarnessError("no symbol given")
    if len(set(names)) != len(names):
        raise HarnessError(f"a symbol is given twice in {','.join(names)}")
    return names


def _check(seconds: float, category: str, depth: int) -> Category:
    if not seconds > 0:
        raise HarnessError(f"seconds must be a positive number, not {seconds}")
    if category not in BOOK_DEPTHS:
        raise HarnessError(f"unknown Bybit category {category!r}; known: {', '.join(BOOK_DEPTHS)}")
    known: Category = "spot" if category == "spot" else "linear"
    if depth not in BOOK_DEPTHS[known]:
        depths = ", ".join(str(d) for d in BOOK_DEPTHS[known])
        raise HarnessError(f"Bybit {category} publishes order books at depths {depths}, not {depth}")
    return known


def generate_events(
    symbols: str | Sequence[str] = "BTCUSDT",
    seconds: float = 60.0,
    seed: int = 1,
    *,
    category: str = SUBJECT_CATEGORY,
    depth: int = SUBJECT_DEPTH,
) -> Iterator[RecordedEvent]:
    """The recording's rows in receive order, `seq` from 0. Streams: memory stays bounded by the
    books, not the duration. HarnessError for an unknown symbol, category or depth."""
    known = _check(seconds, category, depth)
    run = _Run(_symbol_list(symbols), seconds, seed, known, depth)
    for seq, event in enumerate(run.events()):
        yield RecordedEvent(
            seq=seq,
            conn_id=event.conn_id,
            kind=event.kind,
            recv_wall_ns=event.recv_wall_ns,
            recv_mono_ns=event.recv_mono_ns,
            url=event.url,
            stream=event.stream,
            payload=event.payload,
            status=event.status,
            reason=event.reason,
        )


def recording_meta(
    symbols: str | Sequence[str],
    seconds: float,
    seed: int,
    *,
    category: str = SUBJECT_CATEGORY,
    depth: int = SUBJECT_DEPTH,
) -> RecordingMeta:
    """The metadata of `generate_events`' recording; its id is derived from the inputs, so reruns match."""
    names = _symbol_list(symbols)
    key = f"synth:{VENUE}:{category}:{depth}:{','.join(names)}:{seconds!r}:{seed}"
    return RecordingMeta(
        venue=VENUE,
        symbols=tuple(names),
        tool_version=__version__,
        start_wall_ns=WALL_START_NS,
        source=f"synth {category}",
        recording_id=str(uuid.UUID(bytes=hashlib.sha256(key.encode()).digest()[:16])),
    )
