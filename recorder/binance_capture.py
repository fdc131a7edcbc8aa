"""What the recorder asks Binance spot for, and when it needs a REST snapshot: pure, no I/O.

The recorder behaves like a syncing order-book client, so that a recording holds what such a client
saw: one combined-stream connection with `<symbol>@depth@100ms` and `<symbol>@trade` for every symbol,
and, after the first depth frame of a symbol on a connection, a `/api/v3/depth` snapshot, fetched
again while its `lastUpdateId` is below that frame's `U` (the snapshot predates the buffered stream).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import orjson

from harness.errors import HarnessError

SNAPSHOT_LIMIT = 5000
SNAPSHOT_ATTEMPTS = 5
_SYMBOL = re.compile(r"^[A-Z0-9]{2,20}$")
_STREAM_PREFIX = b'{"stream":"'


def normalize_symbols(symbols: list[str]) -> tuple[str, ...]:
    """Uppercases and validates; raises HarnessError for an empty list or a malformed symbol."""
    cleaned = tuple(dict.fromkeys(s.strip().upper() for s in symbols if s.strip()))
    if not cleaned:
        raise HarnessError("no symbols given; pass e.g. --symbols BTCUSDT,ETHUSDT")
    for symbol in cleaned:
        if not _SYMBOL.match(symbol):
            raise HarnessError(f"{symbol!r} is not a Binance spot symbol (letters and digits, e.g. BTCUSDT)")
    return cleaned


def depth_stream(symbol: str) -> str:
    return f"{symbol.lower()}@depth@100ms"


def trade_stream(symbol: str) -> str:
    return f"{symbol.lower()}@trade"


def combined_stream_url(ws_base: str, symbols: tuple[str, ...]) -> str:
    streams = "/".join(s for symbol in symbols for s in (depth_stream(symbol), trade_stream(symbol)))
    return f"{ws_base.rstrip('/')}/stream?streams={streams}"


def depth_snapshot_url(rest_base: str, symbol: str, limit: int = SNAPSHOT_LIMIT) -> str:
    return f"{rest_base.rstrip('/')}/api/v3/depth?symbol={symbol}&limit={limit}"


def stream_of(payload: bytes) -> str | None:
    """The `stream` of a combined-stream frame; None for anything else (e.g. a SUBSCRIBE reply).

    Binance puts `stream` first, so the common case is a prefix scan rather than a JSON parse.
    """
    if payload.startswith(_STREAM_PREFIX):
        end = payload.find(b'"', len(_STREAM_PREFIX))
        if end > 0:
            return payload[len(_STREAM_PREFIX) : end].decode("utf-8", "replace")
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    stream = doc.get("stream") if isinstance(doc, dict) else None
    return stream if isinstance(stream, str) else None


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
        """True when a syncing client would keep this snapshot (or when retrying cannot help)."""
        if status != 200:
            return True
        last = snapshot_last_update_id(body)
        return last is None or last >= self.first_u[symbol]
