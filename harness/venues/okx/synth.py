"""The synthetic market as OKX's `books` and `trades` channels send it, and as a recorder receives it.

`OkxBookPublisher` is the venue: it holds one instrument's book (the simulator's ticks and lots),
takes the market's `BookChange`s, and writes the snapshot a subscriber gets, then every 100 ms the
net change per level as an update whose `seqId` is the market's last update id and whose
`prevSeqId` is the previous message's, with the checksum of the book after it; a book idle for a
minute gets OKX's heartbeat (`prevSeqId == seqId`, no levels). `generate_okx_events` plays both ends
of one connection: the recorder opens it, sends one subscribe for every instrument's `books` and
`trades`, gets an ack per arg, then each instrument's snapshot and updates, after a seeded network
delay, in send order. Pure: seeded, no clock, no file; the same inputs give the same rows.
"""

from __future__ import annotations

import hashlib
import heapq
import random
from collections.abc import Iterator, Sequence
from dataclasses import replace

import orjson

from harness.errors import HarnessError
from harness.synth.market import BookChange, MarketSimulator, SynthSymbol, Trade, symbol_spec
from harness.venues.okx.channels import BOOKS, LIVE_WS_URL, inst_id_of, stream_key
from harness.venues.okx.checksum import book_checksum
from harness.venues.okx.encoder import books_message, okx_decimal, snapshot_message, wire_level
from recorder.format import EventKind, RecordedEvent

TRADES = "trades"
WINDOW_NS = 100_000_000
HEARTBEAT_NS = 60_000_000_000
"""OKX: an incremental channel with no change for about 60 s gets a heartbeat update."""
WALL_START_NS = 1_704_067_200_000_000_000
MONO_START_NS = 86_400_000_000_000
WS_CONN_ID = 1


class OkxBookPublisher:
    """One instrument's book on OKX's side of the wire; levels in the simulator's ticks and lots."""

    __slots__ = ("_asks", "_bids", "_changed", "_idle_since", "_last_seq", "_pending_seq", "_spec", "inst_id")

    def __init__(
        self, spec: SynthSymbol, bids: Sequence[tuple[int, int]], asks: Sequence[tuple[int, int]], seq_id: int
    ) -> None:
        self._spec = spec
        self.inst_id = inst_id_of(spec.base_asset, spec.quote_asset)
        self._bids = dict(bids)
        self._asks = dict(asks)
        self._changed: tuple[dict[int, int], dict[int, int]] = ({}, {})
        self._pending_seq = self._last_seq = seq_id
        self._idle_since = 0

    @property
    def last_seq_id(self) -> int:
        return self._last_seq

    def apply(self, change: BookChange) -> None:
        book = self._bids if change.is_bid else self._asks
        if change.size:
            book[change.price] = change.size
        else:
            book.pop(change.price, None)
        self._changed[0 if change.is_bid else 1][change.price] = change.size
        self._pending_seq = change.update_id

    def snapshot(self, ts_ms: int) -> bytes:
        """The `action: snapshot` a subscriber gets now; changes so far are in it, not in the next update."""
        self._changed = ({}, {})
        self._last_seq = self._pending_seq
        bids, asks = self._sides()
        return snapshot_message(self.inst_id, bids, asks, seq_id=self._last_seq, ts_ms=ts_ms)

    def publish(self, now_ns: int, ts_ms: int) -> bytes | None:
        """The update for the window ending now (None when nothing changed and no heartbeat is due)."""
        bid_changes, ask_changes = self._changed
        if not bid_changes and not ask_changes:
            if now_ns - self._idle_since < HEARTBEAT_NS:
                return None
            self._idle_since = now_ns
            return self._message([], [], ts_ms, self._last_seq)
        self._changed = ({}, {})
        self._idle_since = now_ns
        bids = [self._level(p, s) for p, s in sorted(bid_changes.items(), reverse=True)]
        asks = [self._level(p, s) for p, s in sorted(ask_changes.items())]
        return self._message(bids, asks, ts_ms, self._pending_seq)

    def _message(self, bids: list[list[str]], asks: list[list[str]], ts_ms: int, seq_id: int) -> bytes:
        prev = self._last_seq
        self._last_seq = seq_id
        top_bids, top_asks = self._sides(25)
        return books_message(
            self.inst_id,
            snapshot=False,
            bids=bids,
            asks=asks,
            ts_ms=ts_ms,
            seq_id=seq_id,
            prev_seq_id=prev,
            checksum=book_checksum(top_bids, top_asks),
        )

    def _sides(self, depth: int | None = None) -> tuple[list[list[str]], list[list[str]]]:
        bid_prices = sorted(self._bids, reverse=True)[:depth]
        ask_prices = sorted(self._asks)[:depth]
        return (
            [self._level(p, self._bids[p]) for p in bid_prices],
            [self._level(p, self._asks[p]) for p in ask_prices],
        )

    def _level(self, price: int, size: int) -> list[str]:
        spec = self._spec
        return wire_level(okx_decimal(price * spec.tick_units), okx_decimal(size * spec.lot_units), 1 if size else 0)

    def trade(self, trade: Trade, ts_ms: int) -> bytes:
        """The `trades` message: `side` is the taker's (a seller taking a resting bid is `sell`)."""
        spec = self._spec
        item = {
            "instId": self.inst_id,
            "tradeId": str(trade.trade_id),
            "px": okx_decimal(trade.price * spec.tick_units),
            "sz": okx_decimal(trade.quantity * spec.lot_units),
            "side": "sell" if trade.buyer_is_maker else "buy",
            "ts": str(ts_ms),
        }
        return orjson.dumps({"arg": {"channel": TRADES, "instId": self.inst_id}, "data": [item]})


def _instrument_messages(
    spec: SynthSymbol, seconds: float, seed: int, subscribed_ns: int
) -> Iterator[tuple[int, str, bytes]]:
    """(send time, stream, payload) of one instrument from its subscription on, in send order."""
    market = MarketSimulator(spec, seed)
    bids, asks = market.book()
    publisher = OkxBookPublisher(spec, bids, asks, market.last_update_id)
    books = stream_key(BOOKS, publisher.inst_id)
    trades = stream_key(TRADES, publisher.inst_id)
    end_ns = round(seconds * 1e9)
    subscribed = False
    window_end = subscribed_ns + WINDOW_NS
    for event in market.run(end_ns):
        if not subscribed and event.time_ns >= subscribed_ns:
            subscribed = True
            yield subscribed_ns, books, publisher.snapshot(_ms(subscribed_ns))
        while subscribed and window_end <= event.time_ns:
            update = publisher.publish(window_end, _ms(window_end))
            if update is not None:
                yield window_end, books, update
            window_end += WINDOW_NS
        if isinstance(event, BookChange):
            publisher.apply(event)
        elif subscribed:
            yield event.time_ns, trades, publisher.trade(event, _ms(event.time_ns))


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
        url=LIVE_WS_URL,
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
