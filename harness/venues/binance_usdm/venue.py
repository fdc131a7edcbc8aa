"""Binance USD-M futures' dialect: spot's framing, `@depth@0ms` with `pu`, REST `/fapi/v1/depth`.

Its rule, from Binance's "How to manage a local order book correctly" (futures) and the real
capture in ../shared/data/real/: drop events with `u < lastUpdateId`; the first applied event has
`U <= lastUpdateId <= u` (the capture's has `u == lastUpdateId`); every later event's `pu` equals
the previous event's `u` (the `U` of the next event is not the previous `u + 1` on USD-M).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import orjson

from harness.book_events import DepthDelta, DepthSnapshot
from harness.synth.market import SYMBOLS, SynthSymbol
from harness.venues.binance_spot.streams import wrap_combined
from harness.venues.binance_spot.venue import BinanceDialect, BinanceSynthEncoder
from harness.venues.dialect import SubjectParts, SynthEncoder, SynthTrade
from harness.venues.wire import VenueWire

DEPTH_PATH = "/fapi/v1/depth"
DEPTH_MAX_LIMIT = 1000
DEPTH_LIMITS = (5, 10, 20, 50, 100, 500, 1000)
"""The only `limit` values `/fapi/v1/depth` accepts."""

FOREIGN_IDS = 20.0
"""USD-M's update ids are shared by all its books: the real capture's events skip ids between `pu`
and `U` (69 at its first), so the synth's skip a seeded mean of 20 per change."""

SYNTH_MARKETS = (
    # USD-M's rules: BTCUSDT tick 0.10, step 0.001; ETHUSDT tick 0.01, step 0.001 (prices with 2
    # decimals, sizes with 3, as the venue writes them).
    SynthSymbol(
        "BTCUSDT",
        "BTC",
        "USDT",
        10_000_000,
        100_000,
        420_000,
        2_000_000,
        100_000,
        size_decimals=3,
        market=replace(SYMBOLS["BTCUSDT"].market, foreign_ids_per_change=FOREIGN_IDS),
    ),
    SynthSymbol(
        "ETHUSDT",
        "ETH",
        "USDT",
        1_000_000,
        100_000,
        230_000,
        30_000_000,
        1_000_000,
        size_decimals=3,
        market=replace(SYMBOLS["ETHUSDT"].market, foreign_ids_per_change=FOREIGN_IDS),
    ),
)


@dataclass(frozen=True, slots=True)
class BinanceUsdmDialect(BinanceDialect):
    """The USD-M subject parts: the decoder that requires `pu`, and the `pu`-linked sync rule."""

    def wire(self) -> VenueWire | None:
        from harness.venues.binance_usdm.wire import WIRE

        return WIRE

    def subject_parts(self) -> SubjectParts:
        from harness.venues.binance_usdm.decoder import decode_frame, decode_snapshot
        from harness.venues.binance_usdm.sequencing import BinanceUsdmSequencing

        return self._parts(decode_frame, decode_snapshot, BinanceUsdmSequencing)

    def synth_encoder(self, symbol: str) -> SynthEncoder:
        return BinanceUsdmSynthEncoder(self, self.synth_market(symbol))


class BinanceUsdmSynthEncoder(BinanceSynthEncoder):
    """USD-M's bytes: `T` and `pu` in depth events, `X` in trades, `E`/`T` in the REST body (key
    order as in the real capture)."""

    def book_frame(self, delta: DepthDelta) -> bytes:
        data = {
            "e": "depthUpdate",
            "E": delta.event_time_ms,
            "T": delta.event_time_ms,
            "s": delta.symbol,
            "U": delta.first_update_id,
            "u": delta.last_update_id,
            "pu": delta.prev_last_update_id,
            "b": [[level[0], level[1]] for level in delta.bids],
            "a": [[level[0], level[1]] for level in delta.asks],
        }
        return wrap_combined(self.book_stream, orjson.dumps(data))

    def trade_frame(self, trade: SynthTrade) -> bytes:
        data: dict[str, Any] = {
            "e": "trade",
            "E": trade.event_time_ms,
            "T": trade.trade_time_ms,
            "s": self.market.symbol,
            "t": trade.trade_id,
            "p": trade.price,
            "q": trade.quantity,
            "X": "MARKET",
            "m": trade.buyer_is_maker,
        }
        return wrap_combined(self.trade_stream, orjson.dumps(data))

    def snapshot_payload(self, snapshot: DepthSnapshot, time_ms: int) -> bytes:
        limit = DEPTH_MAX_LIMIT
        body = {
            "lastUpdateId": snapshot.last_update_id,
            "E": time_ms,
            "T": time_ms,
            "bids": [[level[0], level[1]] for level in snapshot.bids[:limit]],
            "asks": [[level[0], level[1]] for level in snapshot.asks[:limit]],
        }
        return orjson.dumps(body)


DIALECT = BinanceUsdmDialect(
    name="binance-usdm",
    live_ws_url="wss://fstream.binance.com",
    live_rest_url="https://fapi.binance.com",
    depth_path=DEPTH_PATH,
    depth_speeds=("", "@0ms", "@100ms", "@250ms", "@500ms"),
    book_speed="@0ms",
    max_depth_limit=DEPTH_MAX_LIMIT,
    bridge_slack=0,
    linked=True,
    synth_markets=SYNTH_MARKETS,
    synth_window_ns=50_000_000,
    price_decimals=2,
    listing_path=None,
)
"""`@depth@0ms` is published as the matching engine batches (about 20 frames a second on BTCUSDT in
the real capture); the synth batches 50 ms. Its exchangeInfo
takes no `symbol`, so the recorder does not ask it first (a symbol it does not list fails the snapshot)."""
