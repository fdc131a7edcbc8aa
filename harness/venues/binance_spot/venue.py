"""Binance's venue side, shared by spot and USD-M: the `VenueDialect` both packages instantiate.

The two speak the same combined-stream framing (`{"stream":..,"data":..}`) and REST depth bodies;
they differ in paths, stream speeds, the `pu` link USD-M adds to every depth event, and by one in
which event bridges a REST snapshot (spot: `U <= lastUpdateId + 1 <= u`; USD-M: `U <= lastUpdateId
<= u`). Those differences are fields here. Only the venue side lives in this module (ids, levels,
snapshots, URLs, the synth's bytes); the subject's decoder and sync rule are imported by
`subject_parts` when called, so the oracle's own rule never loads them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson

from harness.book_events import DepthDelta, DepthSnapshot, Level
from harness.errors import HarnessError
from harness.synth.market import SYMBOLS, SynthSymbol
from harness.venues.binance_spot.encoder import book_ticker_data, decimal_string, depth_update_data, trade_data
from harness.venues.binance_spot.rest import DEPTH_MAX_LIMIT, DEPTH_PATH, EXCHANGE_INFO_PATH, depth_body
from harness.venues.binance_spot.streams import stream_of, wrap_combined
from harness.venues.dialect import (
    BookLevels,
    CapturePolicy,
    ChainIds,
    SnapshotTransport,
    SubjectParts,
    SynthEncoder,
    SynthTrade,
)
from harness.venues.wire import VenueWire

SYMBOL_SHAPE = re.compile(r"^[A-Z0-9]{2,20}$")
"""Binance symbols are base and quote run together, letters and digits (BTCUSDT, 1000SHIBUSDT)."""


@dataclass(frozen=True, slots=True)
class BinanceDialect:
    """One Binance market's dialect; see the module docstring for what the fields vary."""

    name: str
    live_ws_url: str
    live_rest_url: str
    depth_path: str
    depth_speeds: tuple[str, ...]
    """Suffixes a diff-depth stream may carry after `@depth` (`""` is the plain stream)."""
    book_speed: str
    """The suffix a syncing client (the recorder, the synth, our subject) subscribes with."""
    max_depth_limit: int
    bridge_slack: int
    """1 for spot (`U <= id + 1 <= u`), 0 for USD-M (`U <= id <= u`)."""
    linked: bool
    """Whether depth events carry `pu` (the previous event's `u`)."""
    synth_markets: tuple[SynthSymbol, ...]
    synth_window_ns: int
    price_decimals: int | None
    """Decimals the venue writes prices with (None: spot's 8, the synth market's default)."""
    listing_path: str | None
    """The exchangeInfo path that takes `?symbol=` and answers -1121 for a symbol not listed (spot)."""
    snapshot_transport: SnapshotTransport = "rest"

    # --- recorded frames ------------------------------------------------------------------

    stream_of = staticmethod(stream_of)
    """The module function itself, not a method calling it: the recorder calls it on every frame."""

    def symbol_of(self, stream: str) -> str | None:
        # A market stream is `<symbol>@<kind>`; a user-data stream (a listen key) names no symbol.
        return stream.split("@", 1)[0].upper() if "@" in stream else None

    def is_book_stream(self, stream: str) -> bool:
        name, sep, rest = stream.partition("@depth")
        if not sep or not name or "@" in name:
            return False
        return rest in self.depth_speeds

    def chain_ids(self, stream: str, payload: bytes) -> ChainIds | None:
        if not self.is_book_stream(stream):
            return None
        data = _data(payload)
        try:
            first, last = data["U"], data["u"]
            prev = data["pu"] if self.linked else None
            symbol = data.get("s") or self.symbol_of(stream)
        except (KeyError, TypeError):
            raise ValueError(f"a depth frame on {stream} without U, u{' and pu' if self.linked else ''}") from None
        if type(first) is not int or type(last) is not int or (self.linked and type(prev) is not int):
            raise ValueError(f"a depth frame on {stream} whose ids are not integers")
        return ChainIds(str(symbol), first, last, prev)

    def book_levels(self, payload: bytes) -> BookLevels:
        data = _data(payload)
        try:
            return BookLevels(data["b"], data["a"])
        except (KeyError, TypeError):
            raise ValueError("a depth frame without b and a") from None

    # --- snapshots ------------------------------------------------------------------------

    def bridges(self, ids: ChainIds, snapshot_id: int) -> bool:
        return ids.first_id <= snapshot_id + self.bridge_slack <= ids.last_id

    def snapshot_request(self, url: str) -> str | None:
        parts = urlsplit(url)
        if not parts.path.endswith(self.depth_path):
            return None
        symbols = parse_qs(parts.query).get("symbol")
        return symbols[0].upper() if symbols else None

    def parse_rest_snapshot(self, symbol: str, body: bytes) -> tuple[int, BookLevels]:
        try:
            doc = orjson.loads(body)
            last = doc["lastUpdateId"]
            bids, asks = doc["bids"], doc["asks"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            raise ValueError(f"not a {self.depth_path} body for {symbol}") from None
        if type(last) is not int or type(bids) is not list or type(asks) is not list:
            raise ValueError(f"a {self.depth_path} body for {symbol} with fields of the wrong types")
        return last, BookLevels(bids, asks)

    def checksum(self, bids: Sequence[Level], asks: Sequence[Level]) -> int | None:
        return None

    # --- URLs, for the subject, the recorder and the synth ----------------------------------

    def depth_stream(self, symbol: str) -> str:
        return f"{symbol.lower()}@depth{self.book_speed}"

    def book_streams(self, symbols: Sequence[str]) -> list[str]:
        """What a syncing client subscribes to: each symbol's diff-depth and trade streams, in order."""
        return [name for symbol in symbols for name in (self.depth_stream(symbol), f"{symbol.lower()}@trade")]

    def ws_url(self, ws_base: str, streams: Sequence[str]) -> str:
        return f"{ws_base.rstrip('/')}/stream?streams={'/'.join(streams)}"

    def depth_url(self, rest_base: str, symbol: str, limit: int) -> str:
        return f"{rest_base.rstrip('/')}{self.depth_path}?symbol={symbol}&limit={limit}"

    def wire(self) -> VenueWire | None:
        from harness.venues.binance_spot.wire import WIRE

        return WIRE

    def subject_parts(self) -> SubjectParts:
        from harness.venues.binance_spot.decoder import decode_frame, decode_snapshot
        from harness.venues.binance_spot.sequencing import BinanceSpotSequencing

        return self._parts(decode_frame, decode_snapshot, BinanceSpotSequencing)

    def _parts(self, decode_frame: Any, decode_snapshot: Any, sequencing: Any) -> SubjectParts:
        return SubjectParts(
            decode_frame=decode_frame,
            sequencing=sequencing,
            ws_url=lambda ws_base, symbols: self.ws_url(ws_base, self.book_streams(symbols)),
            decode_snapshot=decode_snapshot,
            snapshot_url=self.depth_url,
            max_snapshot_limit=self.max_depth_limit,
        )

    def capture_policy(self) -> CapturePolicy:
        def streams(symbols: Sequence[str], book_ticker: bool) -> list[str]:
            names = self.book_streams(symbols)
            return names + [f"{s.lower()}@bookTicker" for s in symbols] if book_ticker else names

        return CapturePolicy(
            streams=streams,
            ws_url=self.ws_url,
            symbol_shape=SYMBOL_SHAPE,
            symbol_example="BTCUSDT",
            snapshot_url=lambda rest_base, symbol: self.depth_url(rest_base, symbol, self.max_depth_limit),
            listing_url=None if self.listing_path is None else self._listing_url,
        )

    def _listing_url(self, rest_base: str, symbol: str) -> str:
        return f"{rest_base.rstrip('/')}{self.listing_path}?symbol={symbol}"

    def synth_encoder(self, symbol: str) -> SynthEncoder:
        return BinanceSynthEncoder(self, self.synth_market(symbol))

    def synth_market(self, symbol: str) -> SynthSymbol:
        for market in self.synth_markets:
            if market.symbol == symbol.upper():
                return market
        known = ", ".join(sorted(m.symbol for m in self.synth_markets))
        raise HarnessError(f"no synthetic {self.name} market for symbol {symbol!r}; known symbols: {known}")


class BinanceSynthEncoder:
    """The bytes Binance spot sends for one symbol, byte for byte (encoder.py; checked against a real
    capture in tests/test_synth.py). USD-M's encoder overrides the frames and the REST body."""

    def __init__(self, dialect: BinanceDialect, market: SynthSymbol) -> None:
        self._dialect = dialect
        self.market = market
        self.book_stream = dialect.depth_stream(market.symbol)
        self.trade_stream = f"{market.symbol.lower()}@trade"
        self.window_ns = dialect.synth_window_ns
        # `harness synth --rate` streams best bid/ask where an encoder offers it; USD-M's bookTicker
        # carries event and transaction times this one does not write, so it offers none yet.
        self.ticker_stream = None if dialect.linked else f"{market.symbol.lower()}@bookTicker"

    def price(self, units: int) -> str:
        decimals = self._dialect.price_decimals
        return decimal_string(units) if decimals is None else decimal_string(units, decimals)

    def size(self, units: int) -> str:
        return decimal_string(units, self.market.size_decimals)

    def book_frame(self, delta: DepthDelta) -> bytes:
        return wrap_combined(self.book_stream, depth_update_data(delta))

    def trade_frame(self, trade: SynthTrade) -> bytes:
        data = trade_data(
            symbol=self.market.symbol,
            trade_id=trade.trade_id,
            price=trade.price,
            quantity=trade.quantity,
            trade_time_ms=trade.trade_time_ms,
            event_time_ms=trade.event_time_ms,
            buyer_is_maker=trade.buyer_is_maker,
        )
        return wrap_combined(self.trade_stream, data)

    def ticker_frame(self, update_id: int, bid_price: str, bid_size: str, ask_price: str, ask_size: str) -> bytes:
        """Spot's `@bookTicker` frame: the best bid and ask with the book's update id `u`."""
        data = book_ticker_data(
            update_id=update_id,
            symbol=self.market.symbol,
            bid_price=bid_price,
            bid_size=bid_size,
            ask_price=ask_price,
            ask_size=ask_size,
        )
        assert self.ticker_stream is not None, "only asked of an encoder that offers the stream"
        return wrap_combined(self.ticker_stream, data)

    def snapshot_url(self, rest_base: str) -> str | None:
        return self._dialect.depth_url(rest_base, self.market.symbol, self._dialect.max_depth_limit)

    def snapshot_payload(self, snapshot: DepthSnapshot, time_ms: int) -> bytes:
        limit = self._dialect.max_depth_limit
        return depth_body(snapshot.last_update_id, snapshot.bids[:limit], snapshot.asks[:limit])


def _data(payload: bytes) -> Any:
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError:
        raise ValueError("a depth frame that is not JSON") from None
    data = doc.get("data", doc) if isinstance(doc, dict) else None
    if not isinstance(data, dict):
        raise ValueError("a depth frame that is not a JSON object")
    return data


DIALECT = BinanceDialect(
    name="binance-spot",
    live_ws_url="wss://stream.binance.com:9443",
    live_rest_url="https://api.binance.com",
    depth_path=DEPTH_PATH,
    depth_speeds=("", "@100ms", "@1000ms"),
    book_speed="@100ms",
    max_depth_limit=DEPTH_MAX_LIMIT,
    bridge_slack=1,
    linked=False,
    synth_markets=tuple(SYMBOLS.values()),
    synth_window_ns=100_000_000,
    price_decimals=None,
    listing_path=EXCHANGE_INFO_PATH,
)
"""Binance spot: `U == previous u + 1`, REST `/api/v3/depth` up to 5,000 levels, `@depth@100ms`."""
