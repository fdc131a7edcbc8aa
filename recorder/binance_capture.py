"""What the recorder asks Binance spot for, and when it needs a REST snapshot: pure, no I/O.

The recorder behaves like a syncing order-book client, so that a recording holds what such a client
saw: one combined-stream connection with `<symbol>@depth@100ms` and `<symbol>@trade` for every symbol
(and `<symbol>@bookTicker` when asked), and, after the first depth frame of a symbol on a connection,
a `/api/v3/depth` snapshot, fetched again while its `lastUpdateId` is below that frame's `U` (the
snapshot predates the buffered stream). This module holds that policy only; stream names, URLs and
framing are the venue's dialect, in `harness/venues/binance_spot/`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import orjson

from harness.errors import HarnessError
from harness.venues.binance_spot.rest import DEPTH_MAX_LIMIT
from harness.venues.binance_spot.streams import book_streams, book_ticker_stream, combined_url, depth_stream

SNAPSHOT_LIMIT = DEPTH_MAX_LIMIT
SNAPSHOT_ATTEMPTS = 8
RETRY_STATUSES = (418, 429)
_SYMBOL = re.compile(r"^[A-Z0-9]{2,20}$")


def normalize_symbols(symbols: list[str]) -> tuple[str, ...]:
    """Uppercases and validates; raises HarnessError for an empty list or a malformed symbol."""
    cleaned = tuple(dict.fromkeys(s.strip().upper() for s in symbols if s.strip()))
    if not cleaned:
        raise HarnessError("no symbols given; pass e.g. --symbols BTCUSDT,ETHUSDT")
    for symbol in cleaned:
        if not _SYMBOL.match(symbol):
            raise HarnessError(f"{symbol!r} is not a Binance spot symbol (letters and digits, e.g. BTCUSDT)")
    return cleaned


def combined_stream_url(
    ws_base: str, symbols: tuple[str, ...], *, book_ticker: bool = False, extra_streams: tuple[str, ...] = ()
) -> str:
    """The recorder's one connection: what a syncing client subscribes to, for every symbol, and each
    symbol's best bid/ask stream when asked (a second view of the book to check one against), then
    any further streams the user named (such as a user-data listen key)."""
    streams = book_streams(symbols)
    if book_ticker:
        streams += [book_ticker_stream(symbol) for symbol in symbols]
    streams += [s for s in extra_streams if s not in streams]
    return combined_url(ws_base, streams)


def first_update_id(payload: bytes) -> int | None:
    """`U` of a combined depthUpdate frame, or None when the frame does not carry one."""
    try:
        data = orjson.loads(payload).get("data")
        value = data.get("U")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    return value if isinstance(value, int) else None


def snapshot_last_update_id(body: bytes) -> int | None:
    try:
        value = orjson.loads(body).get("lastUpdateId")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    return value if isinstance(value, int) else None


@dataclass(slots=True)
class SnapshotNeeds:
    """Per connection: which symbols have had their first depth frame, and that frame's `U`.

    `on_frame` returns the symbol whose snapshot must be fetched now, at most once per symbol per
    connection; `fresh_enough` says whether a snapshot body ends the fetching for that symbol.
    """

    symbols_by_stream: dict[str, str]
    first_u: dict[str, int] = field(default_factory=dict)

    @classmethod
    def for_symbols(cls, symbols: tuple[str, ...]) -> SnapshotNeeds:
        return cls({depth_stream(s): s for s in symbols})

    def on_frame(self, stream: str | None, payload: bytes) -> str | None:
        symbol = self.symbols_by_stream.get(stream) if stream is not None else None
        if symbol is None or symbol in self.first_u:
            return None
        u = first_update_id(payload)
        if u is None:
            return None
        self.first_u[symbol] = u
        return symbol

    def fresh_enough(self, symbol: str, status: int, body: bytes) -> bool:
        """True when a syncing client would keep this snapshot, or when retrying cannot help.

        A rate limit (429, 418) or a server error (5xx) is worth another try after a backoff; any
        other refusal (a bad symbol, say) would be refused again.
        """
        if status in RETRY_STATUSES or 500 <= status <= 599:
            return False
        if status != 200:
            return True
        last = snapshot_last_update_id(body)
        return last is None or last >= self.first_u[symbol]
