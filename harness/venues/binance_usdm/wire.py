"""Binance USD-M futures' wire for the fake venue (the `VenueWire` of harness/venues/wire.py).

The WebSocket side is spot's (`/ws` and `/stream` paths, combined framing, SUBSCRIBE and the other
control requests, the same error replies), so this wire is Binance spot's with USD-M's numbers and
REST: 10 client messages a second, a ping every 3 minutes answered within 10, 2,400 request weight a
minute, and the `/fapi/v1/*` routes of `rest.py`. USD-M's `@depth@0ms` is recorded as is; the venue
computes no slower stream from it here (`derived_streams` is empty), so a recording serves the speeds
it holds.

The snapshot body is USD-M's `{"lastUpdateId","E","T","bids","asks"}`: `T` (transaction time) is the
recorded `T` of the depth event the served state is at or inside, `E` (message output time) the
later of that event's `E` and the one at the replay position (a stale answer is output now, of an
older state), both on the clock the venue's frames are on (moved with them by `--rebase-time`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import cast
from urllib.parse import urlsplit

import orjson

from harness.book_events import Level
from harness.venues.binance_spot import rest as spot_rest
from harness.venues.binance_spot.wire import BinanceSpotWire
from harness.venues.binance_usdm import rest
from harness.venues.wire import Heartbeat, HttpReply, RestVenue, SnapshotAsk, SnapshotAt, VenueWire, WireLimits

_NOT_FOUND = b'{"code":-1000,"msg":"Not found."}'
_EVENT_TIME = re.compile(rb'"E":(\d+)')
_TRANSACTION_TIME = re.compile(rb'"T":(\d+)')


class BinanceUsdmWire(BinanceSpotWire):
    """Binance USD-M as the fake venue speaks it; stateless, one instance serves every connection."""

    name = "binance-usdm"
    limits = WireLimits(
        messages_per_second=rest.MAX_INCOMING_MESSAGES_PER_SECOND,
        too_many_messages_close=(1008, "Too many requests"),
        streams_per_connection=rest.MAX_STREAMS_PER_CONNECTION,
        rest_weight_per_minute=rest.REQUEST_WEIGHT_PER_MINUTE,
    )
    heartbeat = Heartbeat(rest.PING_INTERVAL_S, rest.PONG_TIMEOUT_S)

    def is_rest(self, path: str) -> bool:
        return urlsplit(path).path.startswith(rest.PREFIX)

    def is_book_stream(self, stream: str) -> bool:
        name, sep, speed = stream.partition("@depth")
        return bool(sep and name) and "@" not in name and speed in ("", "@0ms", "@100ms", "@250ms", "@500ms")

    def derived_streams(self, recorded: Iterable[str]) -> dict[str, list[str]]:
        return {}

    def request_weight(self, path: str, query: Mapping[str, Sequence[str]]) -> int:
        return rest.request_weight(path, query)

    def rest(self, path: str, query: Mapping[str, Sequence[str]], venue: RestVenue) -> HttpReply | SnapshotAsk:
        try:
            if path == rest.DEPTH_PATH:
                symbol, limit = rest.depth_params(query)
                if venue.books.book(symbol) is None:
                    raise spot_rest.invalid_symbol()
                return SnapshotAsk(symbol, limit)
            if path == rest.PING_PATH:
                body = b"{}"
            elif path == rest.TIME_PATH:
                body = orjson.dumps({"serverTime": venue.wall_ms})
            elif path == rest.EXCHANGE_INFO_PATH:
                specs = [cast("spot_rest.SymbolSpec", venue.specs[name]) for name in venue.symbols]
                body = rest.exchange_info_body(specs, venue.wall_ms)
            elif path == rest.BOOK_TICKER_PATH:
                body = _book_ticker(query, venue)
            else:
                return HttpReply(404, _NOT_FOUND)
        except spot_rest.RestError as error:
            return HttpReply(error.status, error.body())
        return HttpReply(200, body)

    def snapshot_body(
        self, last_update_id: int, bids: Sequence[Level], asks: Sequence[Level], at: SnapshotAt | None
    ) -> bytes:
        times = _times(at.event) if at is not None else None
        latest = _times(at.latest) if at is not None else None
        if times is None or latest is None:
            return spot_rest.depth_body(last_update_id, bids, asks)  # no recorded event to stand at
        output_ms, transaction_ms = max(times[0], latest[0]), times[1]
        return orjson.dumps(
            {"lastUpdateId": last_update_id, "E": output_ms, "T": transaction_ms, "bids": bids, "asks": asks}
        )


def _times(event: bytes) -> tuple[int, int] | None:
    """A recorded depth event's (`E`, `T`): its first of each (the `data` of a combined frame holds one)."""
    output, transaction = _EVENT_TIME.search(event), _TRANSACTION_TIME.search(event)
    return None if output is None or transaction is None else (int(output[1]), int(transaction[1]))


def _book_ticker(query: Mapping[str, Sequence[str]], venue: RestVenue) -> bytes:
    """Best bid and ask from the venue book at the current replay position; every symbol without `symbol`."""
    asked = query.get("symbol")
    names = [asked[0]] if asked else list(venue.symbols)
    entries = []
    for name in names:
        book = venue.books.book(name)
        if book is None:
            raise spot_rest.invalid_symbol()
        bid, ask = book.bids(1), book.asks(1)
        entries.append(rest.book_ticker_entry(name, bid[0] if bid else None, ask[0] if ask else None, venue.wall_ms))
    return orjson.dumps(entries[0] if asked else entries)


WIRE: VenueWire = BinanceUsdmWire()
