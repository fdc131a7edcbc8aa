"""What the recorder asks a venue for, and when it needs a REST snapshot: pure, no I/O.

The recorder behaves like a syncing order-book client, so that a recording holds what such a client
saw: one connection with every symbol's book and trade streams (and best bid/ask streams when asked),
and, after the first book frame of a symbol on a connection, a REST depth snapshot, fetched again
while its last update id is below that frame's first id (the snapshot predates the buffered stream).
Venues that send the book on subscribing (Bybit, OKX) need no fetch: their snapshot is a frame.
The stream names, URLs and the snapshot request are the venue's dialect (`capture_policy()`,
harness/venues/); this module holds the policy only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from harness.errors import HarnessError
from harness.venues.dialect import VenueDialect

SNAPSHOT_ATTEMPTS = 8
RETRY_STATUSES = (418, 429)


def normalize_symbols(venue: VenueDialect, symbols: list[str]) -> tuple[str, ...]:
    """Uppercases and validates against the venue's own symbol shape; raises HarnessError for an empty
    list or a malformed symbol."""
    policy = venue.capture_policy()
    cleaned = tuple(dict.fromkeys(s.strip().upper() for s in symbols if s.strip()))
    if not cleaned:
        raise HarnessError(f"no symbols given; pass e.g. --symbols {policy.symbol_example}")
    for symbol in cleaned:
        if not policy.symbol_shape.match(symbol):
            raise HarnessError(f"{symbol!r} is not a symbol on {venue.name} (e.g. {policy.symbol_example})")
    return cleaned


def capture_url(
    venue: VenueDialect,
    ws_base: str,
    symbols: Sequence[str],
    *,
    book_ticker: bool = False,
    extra_streams: Sequence[str] = (),
) -> str:
    """The recorder's one connection: what a syncing client subscribes to, for every symbol, and each
    symbol's best bid/ask stream when asked (a second view of the book to check one against), then
    any further streams the user named (such as a user-data listen key)."""
    policy = venue.capture_policy()
    streams = policy.streams(symbols, book_ticker)
    streams += [s for s in extra_streams if s not in streams]
    return policy.ws_url(ws_base, streams)


@dataclass(slots=True)
class SnapshotNeeds:
    """Per connection: which symbols have had their first book frame, and that frame's first id.

    `on_frame` returns the symbol whose snapshot must be fetched now, at most once per symbol per
    connection; `fresh_enough` says whether a snapshot body ends the fetching for that symbol.
    `waiting` holds the streams `on_frame` can still act on, the same dict for the connection's life,
    so a caller may skip the call for any other frame (the recorder does, for nearly every frame).
    """

    venue: VenueDialect
    symbols_by_stream: dict[str, str]
    first_u: dict[str, int] = field(default_factory=dict)
    waiting: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        self.waiting = {s: symbol for s, symbol in self.symbols_by_stream.items() if symbol not in self.first_u}

    @classmethod
    def for_symbols(cls, venue: VenueDialect, symbols: Sequence[str]) -> SnapshotNeeds:
        streams = venue.capture_policy().streams(symbols, False)
        by_stream = {s: venue.symbol_of(s) for s in streams if venue.is_book_stream(s)}
        return cls(venue, {stream: symbol for stream, symbol in by_stream.items() if symbol is not None})

    def on_frame(self, stream: str | None, payload: bytes) -> str | None:
        symbol = self.symbols_by_stream.get(stream) if stream is not None else None
        if stream is None or symbol is None or symbol in self.first_u:
            return None
        try:
            ids = self.venue.chain_ids(stream, payload)
        except ValueError:
            return None
        if ids is None:
            return None
        self.first_u[symbol] = ids.first_id
        for done in [s for s, of in self.waiting.items() if of == symbol]:
            del self.waiting[done]
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
        try:
            last, _ = self.venue.parse_rest_snapshot(symbol, body)
        except ValueError:
            return True
        return last >= self.first_u[symbol]
