"""Bybit's `VenueDialect` (harness/venues/dialect.py): what the venue side believes about its frames.

Ids: every `orderbook.*` frame carries `data.u`, one per topic, +1 per frame; a frame covers the
single id `u` (first_id = last_id = u), and a `type: snapshot` frame resets the chain (a new
subscription, Bybit re-sending the book after trouble on its side, or `u == 1` after a restart of
its service). There is no REST snapshot and no checksum. Chains are keyed by topic symbol, qualified
by category when the recording holds both (see topics.py), so spot and linear BTCUSDT never mix.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import orjson

from harness.book_events import Level
from harness.venues.bybit.control import BybitSubscribe
from harness.venues.bybit.topics import (
    LIVE_REST_URL,
    LIVE_WS_URL,
    SUBJECT_CATEGORY,
    SUBJECT_DEPTH,
    book_topic,
    parse_book_topic,
    split_stream,
    symbol_of_topic,
    topic_of,
    trade_topic,
    ws_url,
)
from harness.venues.dialect import (
    BookLevels,
    CapturePolicy,
    ChainIds,
    SnapshotTransport,
    SubjectParts,
    SynthEncoder,
)
from harness.venues.wire import VenueWire

SYMBOL_SHAPE = re.compile(r"^[A-Z0-9]{2,25}$")
"""Bybit names spot and linear symbols as Binance does, base and quote run together (BTCUSDT)."""


def _book_data(payload: bytes) -> tuple[str, dict]:
    """(type, data) of an order book frame; ValueError when it does not have Bybit's shape."""
    try:
        message = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(message, dict):
        raise ValueError("not a JSON object")
    kind = message.get("type")
    data = message.get("data")
    if kind not in ("snapshot", "delta") or not isinstance(data, dict):
        raise ValueError("an order book frame needs `type` snapshot or delta and a `data` object")
    return kind, data


@dataclass(frozen=True, slots=True)
class BybitDialect:
    """Bybit v5 public spot and linear, as one venue `bybit`."""

    name: str = "bybit"
    snapshot_transport: SnapshotTransport = "stream"
    live_ws_url: str = LIVE_WS_URL
    live_rest_url: str = LIVE_REST_URL

    def stream_of(self, payload: bytes) -> str | None:
        return topic_of(payload)

    def symbol_of(self, stream: str) -> str | None:
        category, topic = split_stream(stream)
        symbol = symbol_of_topic(topic)
        if symbol is None or category is None:
            return symbol
        return f"{category}/{symbol}"

    def is_book_stream(self, stream: str) -> bool:
        return parse_book_topic(split_stream(stream)[1]) is not None

    def chain_ids(self, stream: str, payload: bytes) -> ChainIds | None:
        """ValueError for a book frame without an integer `u`; None for frames on other topics."""
        if not self.is_book_stream(stream):
            return None
        kind, data = _book_data(payload)
        update_id = data.get("u")
        if not isinstance(update_id, int) or isinstance(update_id, bool):
            raise ValueError("an order book frame needs an integer `data.u`")
        symbol = self.symbol_of(stream)
        assert symbol is not None, "a book topic always names a symbol"
        return ChainIds(symbol, update_id, update_id, snapshot=kind == "snapshot")

    def book_levels(self, payload: bytes) -> BookLevels:
        _, data = _book_data(payload)
        bids = data.get("b")
        asks = data.get("a")
        if not isinstance(bids, list) or not isinstance(asks, list):
            raise ValueError("an order book frame needs `data.b` and `data.a` lists")
        return BookLevels(bids, asks)

    def bridges(self, ids: ChainIds, snapshot_id: int) -> bool:
        """Bybit never bridges a REST snapshot; a delta continues a book at `u` only as `u + 1`."""
        return ids.first_id == snapshot_id + 1

    def snapshot_request(self, url: str) -> str | None:
        return None

    def parse_rest_snapshot(self, symbol: str, body: bytes) -> tuple[int, BookLevels]:
        raise ValueError("Bybit order books are snapshotted in the stream, never over REST")

    def checksum(self, bids: Sequence[Level], asks: Sequence[Level]) -> int | None:
        return None

    # --- the other ends: the fake venue, our subject, the recorder, the synth ----------------------

    def wire(self) -> VenueWire | None:
        from harness.venues.bybit.wire import WIRE

        return WIRE

    def book_streams(self, symbols: Sequence[str]) -> list[str]:
        """What a syncing client subscribes to: each symbol's book and trades, in order."""
        names = [symbol.upper() for symbol in symbols]
        return [topic for name in names for topic in (book_topic(SUBJECT_DEPTH, name), trade_topic(name))]

    def subject_parts(self) -> SubjectParts:
        from harness.venues.bybit.decoder import decode_frame
        from harness.venues.bybit.sequencing import BybitSequencing
        from harness.venues.bybit.subject_connections import connections

        return SubjectParts(
            decode_frame=decode_frame,
            sequencing=BybitSequencing,
            ws_url=lambda ws_base, symbols: ws_url(ws_base, SUBJECT_CATEGORY),
            subscribe=lambda symbols: BybitSubscribe(tuple(self.book_streams(symbols))),
            connections=connections,
        )

    def capture_policy(self) -> CapturePolicy:
        return CapturePolicy(
            streams=lambda symbols, book_ticker: self.book_streams(symbols),
            ws_url=lambda ws_base, streams: ws_url(ws_base, SUBJECT_CATEGORY),
            symbol_shape=SYMBOL_SHAPE,
            symbol_example="BTCUSDT",
            subscribe=lambda streams: BybitSubscribe(tuple(streams)),
        )

    def synth_encoder(self, symbol: str) -> SynthEncoder:
        from harness.synth.market import symbol_spec
        from harness.venues.bybit.synth_encoder import BybitSynthEncoder

        return BybitSynthEncoder(symbol_spec(symbol), SUBJECT_CATEGORY, SUBJECT_DEPTH)


DIALECT = BybitDialect()
