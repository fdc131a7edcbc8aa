"""The synthetic market as OKX's `books` and `trades` channels send it, and as a recorder receives it.

`OkxSynthEncoder` is the venue's writing, per instrument, in the shape of the synth's encoder (see
harness/venues/dialect.py `SynthEncoder`): the snapshot a subscriber gets first, then updates whose
`seqId` is the market's last update id and whose `prevSeqId` is the previous message's, each with the
checksum of the venue's book after it. `OkxBookPublisher` batches the simulator's `BookChange`s into
one update per 100 ms window (net change per level; a heartbeat, `prevSeqId == seqId` and no levels,
after a minute of none). `generate_okx_events` plays both ends of one connection: the recorder opens
it, sends one subscribe for every instrument's `books` and `trades`, gets an ack per arg, then each
instrument's snapshot and updates after a seeded network delay, in send order. Pure: seeded, no
clock, no file; the same inputs give the same rows.
"""

from __future__ import annotations

import hashlib
import heapq
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

import orjson

from harness.book_events import DepthDelta, DepthSnapshot
from harness.errors import HarnessError
from harness.synth.market import BookChange, MarketSimulator, SynthSymbol, Trade, symbol_spec
from harness.venues.okx.channels import BOOKS, CHECKSUM_DEPTH, PUBLIC_WS_URL, inst_id_of, stream_key
from harness.venues.okx.checksum import book_checksum
from harness.venues.okx.encoder import books_message, okx_decimal, snapshot_message, wire_level
from recorder.format import EventKind, RecordedEvent
from replayer.reference_book import ReferenceBook

TRADES = "trades"
WINDOW_NS = 100_000_000
BOOKS_DEPTH = 400
"""OKX's `books` snapshot holds 400 levels a side at most."""
HEARTBEAT_NS = 60_000_000_000
"""OKX: an incremental channel with no change for about 60 s gets a heartbeat update."""
WALL_START_NS = 1_704_067_200_000_000_000
MONO_START_NS = 86_400_000_000_000
WS_CONN_ID = 1


class SynthTradeLike(Protocol):
    """A trade print with the venue's strings already formatted (the synth's `SynthTrade`)."""

    @property
    def trade_id(self) -> int: ...
    @property
    def price(self) -> str: ...
    @property
    def quantity(self) -> str: ...
    @property
    def trade_time_ms(self) -> int: ...
    @property
    def buyer_is_maker(self) -> bool: ...


class OkxSynthEncoder:
    """One instrument's venue side for the synth: the bytes OKX sends, from book changes.

    It keeps the venue's book (replayer/reference_book.py) because every update carries the checksum
    of the book after it: `snapshot_payload` loads it and must come first, as on OKX's wire, and each
    `book_frame` applies its delta, links it to the previous message by `prevSeqId` and checksums.
    """

    __slots__ = ("_book", "_last_seq", "book_stream", "inst_id", "market", "trade_stream")

    window_ns = WINDOW_NS

    def __init__(self, market: SynthSymbol) -> None:
        self.market = market
        self.inst_id = inst_id_of(market.base_asset, market.quote_asset)
        self.book_stream = stream_key(BOOKS, self.inst_id)
        self.trade_stream = stream_key(TRADES, self.inst_id)
        self._book: ReferenceBook | None = None
        self._last_seq = 0

    def price(self, units: int) -> str:
        return okx_decimal(units)

    def size(self, units: int) -> str:
        return okx_decimal(units)

    def snapshot_url(self, rest_base: str, limit: int) -> str | None:
        return None

    def snapshot_payload(self, snapshot: DepthSnapshot, limit: int, time_ms: int) -> bytes:
        """The `action: snapshot` message (OKX's `books` sends 400 levels a side at most)."""
        book = ReferenceBook()
        book.load(snapshot.last_update_id, snapshot.bids, snapshot.asks)
        self._book = book
        self._last_seq = snapshot.last_update_id
        depth = min(limit, BOOKS_DEPTH)
        return snapshot_message(self.inst_id, book.bids(depth), book.asks(depth), seq_id=self._last_seq, ts_ms=time_ms)

    def book_frame(self, delta: DepthDelta) -> bytes:
        """An update (a heartbeat when `delta` has no levels and keeps the last `seqId`)."""
        book = self._book
        if book is None:
            raise ValueError("OKX sends a books snapshot before any update: call snapshot_payload first")
        book.apply(delta.last_update_id, delta.bids, delta.asks)
        prev, self._last_seq = self._last_seq, delta.last_update_id
        return books_message(
            self.inst_id,
            snapshot=False,
            bids=[wire_level(level[0], level[1], _orders(level[1])) for level in delta.bids],
            asks=[wire_level(level[0], level[1], _orders(level[1])) for level in delta.asks],
            ts_ms=delta.event_time_ms,
            seq_id=delta.last_update_id,
            prev_seq_id=prev,
            checksum=book_checksum(book.bids(CHECKSUM_DEPTH), book.asks(CHECKSUM_DEPTH)),
        )

    def trade_frame(self, trade: SynthTradeLike) -> bytes:
        """The `trades` message: `side` is the taker's (a seller taking a resting bid is `sell`)."""
        item = {
            "instId": self.inst_id,
            "tradeId": str(trade.trade_id),
            "px": trade.price,
            "sz": trade.quantity,
            "side": "sell" if trade.buyer_is_maker else "buy",
            "ts": str(trade.trade_time_ms),
        }
        return orjson.dumps({"arg": {"channel": TRADES, "instId": self.inst_id}, "data": [item]})


@dataclass(frozen=True, slots=True)
class _Trade:
    trade_id: int
    price: str
    quantity: str
    trade_time_ms: int
    buyer_is_maker: bool


def _orders(size: str) -> int:
    """Orders at a level, as OKX's fourth field: the synth has one per level, none when it is gone."""
    return 0 if float(size) == 0 else 1


class OkxBookPublisher:
    """One instrument on OKX's side of the wire, in the simulator's ticks and lots: a snapshot for a
    subscriber, then every window the net change per level (a heartbeat after a minute of none)."""

    __slots__ = ("_changed", "_encoder", "_idle_since", "_levels", "_pending_seq", "_published_seq")

    def __init__(
        self, encoder: OkxSynthEncoder, bids: Sequence[tuple[int, int]], asks: Sequence[tuple[int, int]]
    ) -> None:
        self._encoder = encoder
        self._levels = (dict(bids), dict(asks))
        self._changed: tuple[dict[int, int], dict[int, int]] = ({}, {})
        self._pending_seq = self._published_seq = 0
        self._idle_since = 0

    def apply(self, change: BookChange) -> None:
        side = self._levels[0 if change.is_bid else 1]
        if change.size:
            side[change.price] = change.size
        else:
            side.pop(change.price, None)
        self._changed[0 if change.is_bid else 1][change.price] = change.size
        self._pending_seq = change.update_id

    def snapshot(self, seq_id: int, now_ns: int) -> bytes:
        """The snapshot as of now; changes so far are in it, not in the next update."""
        self._changed = ({}, {})
        self._pending_seq = self._published_seq = max(seq_id, self._pending_seq)
        self._idle_since = now_ns
        bids, asks = self._levels
        snapshot = DepthSnapshot(
            self._encoder.inst_id,
            self._published_seq,
            self._strings(sorted(bids.items(), reverse=True)),
            self._strings(sorted(asks.items())),
        )
        return self._encoder.snapshot_payload(snapshot, BOOKS_DEPTH, _ms(now_ns))

    def publish(self, now_ns: int) -> bytes | None:
        """The update for the window ending now; None when nothing changed and no heartbeat is due."""
        bid_changes, ask_changes = self._changed
        if not bid_changes and not ask_changes and now_ns - self._idle_since < HEARTBEAT_NS:
            return None
        self._changed = ({}, {})
        self._idle_since = now_ns
        self._published_seq = self._pending_seq
        delta = DepthDelta(
            symbol=self._encoder.inst_id,
            first_update_id=self._pending_seq,
            last_update_id=self._pending_seq,
            bids=self._strings(sorted(bid_changes.items(), reverse=True)),
            asks=self._strings(sorted(ask_changes.items())),
            event_time_ms=_ms(now_ns),
        )
        return self._encoder.book_frame(delta)

    def trade(self, trade: Trade) -> bytes:
        spec = self._encoder.market
        return self._encoder.trade_frame(
            _Trade(
                trade.trade_id,
                okx_decimal(trade.price * spec.tick_units),
                okx_decimal(trade.quantity * spec.lot_units),
                _ms(trade.time_ns),
                trade.buyer_is_maker,
            )
        )

    def _strings(self, levels: list[tuple[int, int]]) -> list[tuple[str, str]]:
        spec = self._encoder.market
        return [(okx_decimal(price * spec.tick_units), okx_decimal(size * spec.lot_units)) for price, size in levels]


def _instrument_messages(
    spec: SynthSymbol, seconds: float, seed: int, subscribed_ns: int
) -> Iterator[tuple[int, str, bytes]]:
    """(send time, stream, payload) of one instrument from its subscription on, in send order."""
    market = MarketSimulator(spec, seed)
    bids, asks = market.book()
    encoder = OkxSynthEncoder(spec)
    publisher = OkxBookPublisher(encoder, bids, asks)
    books, trades = encoder.book_stream, encoder.trade_stream
    end_ns = round(seconds * 1e9)
    subscribed = False
    window_end = subscribed_ns + WINDOW_NS
    for event in market.run(end_ns):
        if not subscribed and event.time_ns >= subscribed_ns:
            subscribed = True
            yield subscribed_ns, books, publisher.snapshot(market.last_update_id, subscribed_ns)
        while subscribed and window_end <= event.time_ns:
            update = publisher.publish(window_end)
            if update is not None:
                yield window_end, books, update
            window_end += WINDOW_NS
        if isinstance(event, BookChange):
            publisher.apply(event)
        elif subscribed:
            yield event.time_ns, trades, publisher.trade(event)


def generate_okx_events(symbols: Sequence[str], seconds: float, seed: int) -> Iterator[RecordedEvent]:
    """The rows a recorder of OKX's `books` and `trades` would write for the synthetic market, `seq` from 0.

    `symbols` are the synth's (`BTCUSDT`), recorded under OKX's ids (`BTC-USDT`). The first keeps
    `seed`, the others get seeds derived from it and their name.
    """
    if not symbols:
        raise HarnessError("no symbol given")
    specs = [symbol_spec(name) for name in symbols]
    rng = random.Random(seed)
    opened_ns = 40_000_000 + rng.randrange(20_000_000)
    sent_ns = opened_ns + 1_000_000
    subscribed_ns = sent_ns + _one_way(rng)
    args = [
        {"channel": channel, "instId": inst_id_of(spec.base_asset, spec.quote_asset)}
        for spec in specs
        for channel in (BOOKS, TRADES)
    ]
    rows: list[tuple[int, EventKind, str | None, bytes]] = [
        (opened_ns, EventKind.WS_OPEN, None, b""),
        (sent_ns, EventKind.WS_SEND, None, orjson.dumps({"op": "subscribe", "args": args})),
    ]
    recv_ns = subscribed_ns + _one_way(rng)
    for arg in args:
        rows.append((recv_ns, EventKind.WS_RECV, None, orjson.dumps({"event": "subscribe", "arg": arg})))
        recv_ns += 20_000
    seq = 0
    for at_ns, kind, stream, payload in rows:
        yield _row(seq, at_ns, kind, stream, payload)
        seq += 1
    streams = [
        _instrument_messages(spec, seconds, seed if i == 0 else _derived_seed(seed, spec.symbol), subscribed_ns)
        for i, spec in enumerate(specs)
    ]
    end_ns = round(seconds * 1e9)
    for send_ns, stream, payload in heapq.merge(*streams, key=lambda message: message[0]):
        recv_ns = max(send_ns + _one_way(rng), recv_ns + 15_000 + rng.randrange(30_000))
        if recv_ns >= end_ns:
            break
        yield _row(seq, recv_ns, EventKind.WS_RECV, stream, payload)
        seq += 1
    close = _row(seq, max(end_ns, recv_ns) + 2 * _one_way(rng), EventKind.WS_CLOSE, None, b"")
    yield replace(close, status=1000, reason="")


def _row(seq: int, at_ns: int, kind: EventKind, stream: str | None, payload: bytes) -> RecordedEvent:
    return RecordedEvent(
        seq=seq,
        conn_id=WS_CONN_ID,
        kind=kind,
        recv_wall_ns=WALL_START_NS + at_ns,
        recv_mono_ns=MONO_START_NS + at_ns,
        url=PUBLIC_WS_URL,
        stream=stream,
        payload=payload,
    )


def _one_way(rng: random.Random) -> int:
    """A network leg to the venue and back: 4 ms give or take, never under 2."""
    return max(2_000_000, round(rng.gauss(4_000_000, 800_000)))


def _ms(offset_ns: int) -> int:
    return (WALL_START_NS + offset_ns) // 1_000_000


def _derived_seed(seed: int, symbol: str) -> int:
    return int.from_bytes(hashlib.sha256(f"okx:{seed}:{symbol}".encode()).digest()[:8], "big")
