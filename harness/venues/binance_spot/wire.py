"""Binance spot's wire for the fake venue (the `VenueWire` of harness/venues/wire.py).

Built on this package's `streams.py` (paths, combined framing, control requests) and `rest.py`
(routes, bodies, errors, weights): this module only maps them onto the contract. Binance's snapshot
travels over REST, so `stream_snapshot` is always None; the venue pings every 20 s and drops a
connection whose pong is 60 s late; `/ws` connections get the `data` part of each recorded combined
frame, `/stream` connections the frame as recorded, and `SET_PROPERTY combined` switches between them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import cast
from urllib.parse import urlsplit

from harness.book_events import Level
from harness.venues.binance_spot import rest, streams
from harness.venues.binance_spot.depth_aggregate import DepthAggregate
from harness.venues.wire import (
    Aggregator,
    Books,
    ConnectionState,
    Control,
    ControlKind,
    ControlRejected,
    Heartbeat,
    HttpReply,
    LimitName,
    Opened,
    Reply,
    RestVenue,
    SnapshotAsk,
    SnapshotAt,
    VenueWire,
    WireLimits,
)

COMBINED = "combined"
RAW = "raw"
PING_INTERVAL_S = 20.0
PONG_TIMEOUT_S = 60.0

_KINDS: dict[str, ControlKind] = {
    "SUBSCRIBE": "subscribe",
    "UNSUBSCRIBE": "unsubscribe",
    "LIST_SUBSCRIPTIONS": "list",
    "SET_PROPERTY": "set_framing",
    "GET_PROPERTY": "get_framing",
}
_NOT_FOUND = b'{"code":-1000,"msg":"Not found."}'
_REST_PREFIXES = ("/api/", "/sapi/")


@dataclass(frozen=True, slots=True)
class _DerivedDepth:
    """Binance's 1000 ms `@depth` computed from `@depth@100ms`, handed back in combined form."""

    stream: str
    aggregate: DepthAggregate

    def add(self, offset_ns: int, payload: bytes) -> list[bytes]:
        return [streams.wrap_combined(self.stream, data) for data in self.aggregate.add(offset_ns, payload)]

    def flush(self) -> list[bytes]:
        return [streams.wrap_combined(self.stream, data) for data in self.aggregate.flush()]


class BinanceSpotWire:
    """Binance spot as the fake venue speaks it; stateless, one instance serves every connection."""

    name = "binance-spot"
    limits = WireLimits(
        messages_per_second=streams.MAX_INCOMING_MESSAGES_PER_SECOND,
        too_many_messages_close=streams.TOO_MANY_REQUESTS_CLOSE,
        streams_per_connection=streams.MAX_STREAMS_PER_CONNECTION,
        rest_weight_per_minute=rest.REQUEST_WEIGHT_PER_MINUTE,
    )
    heartbeat = Heartbeat(PING_INTERVAL_S, PONG_TIMEOUT_S)

    # Connections and control messages.

    def is_rest(self, path: str) -> bool:
        return urlsplit(path).path.startswith(_REST_PREFIXES)

    def open_path(self, path: str) -> Opened | HttpReply:
        parsed = streams.parse_ws_path(path)
        if parsed is None:
            return HttpReply(404, _NOT_FOUND)
        unit = streams.unserved_time_unit(path)
        if unit is not None:
            msg = f"timeUnit={unit} is not served: the recorded frames are in milliseconds."
            return _error(rest.RestError(400, -1000, msg))
        return Opened(parsed.streams, COMBINED if parsed.combined else RAW)

    def parse_control(self, message: str | bytes, state: ConnectionState) -> Control | ControlRejected:
        try:
            request = streams.parse_control(message)
        except streams.ControlError as exc:
            return ControlRejected(Reply(exc.reply()))
        kind = _KINDS[request.method]
        if kind in ("subscribe", "unsubscribe"):
            return Control(kind, streams=tuple(request.params), request_id=request.id)
        if kind == "set_framing":
            return Control(kind, request_id=request.id, framing=COMBINED if request.params[1] else RAW)
        return Control(kind, request_id=request.id)

    def render_control(self, control: Control, state: ConnectionState) -> list[Reply]:
        result: object = None
        if control.kind == "list":
            result = list(state.streams)
        elif control.kind == "get_framing":
            result = state.framing == COMBINED
        return [Reply(streams.result_reply(cast("int | str | None", control.request_id), result))]

    def render_limit_error(self, control: Control, limit: LimitName, allowed: int, state: ConnectionState) -> Reply:
        """Binance documents the 1024-stream limit but not its answer; the fake refuses the whole request with
        the error it gives a SUBSCRIBE of too many names at once, and keeps the subscriptions as they were."""
        msg = f"Invalid request: too many streams for one connection (at most {allowed})"
        return Reply(streams.ControlError(2, msg, control.request_id).reply())

    def stream_snapshot(self, stream: str, books: Books, wall_ms: int) -> bytes | None:
        return None

    # Recorded frames.

    def frame(self, stream: str, payload: bytes, framing: str) -> bytes:
        if framing == COMBINED:
            return payload
        return streams.raw_data(payload, stream) or payload

    def symbol_of(self, stream: str) -> str | None:
        return streams.symbol_of(stream)

    def is_book_stream(self, stream: str) -> bool:
        return streams.is_depth_diff(stream)

    def derived_streams(self, recorded: Iterable[str]) -> dict[str, list[str]]:
        """For each recorded `<s>@depth@100ms`, the slower names Binance computes from the same updates
        (`<s>@depth`, `<s>@depth@1000ms`) that the recording does not hold itself."""
        have = list(recorded)
        derived: dict[str, list[str]] = {}
        for stream in have:
            if stream.endswith("@depth@100ms"):
                base = stream.removesuffix("@100ms")
                names = [name for name in (base, f"{base}@1000ms") if name not in have]
                if names:
                    derived[stream] = names
        return derived

    def aggregator(self, derived: str) -> Aggregator:
        return _DerivedDepth(derived, DepthAggregate())

    def shift_times(self, payload: bytes, delta_ms: int) -> bytes:
        return streams.shift_event_times(payload, delta_ms)

    def first_event_time_ms(self, payloads: Iterable[bytes]) -> int | None:
        return streams.first_event_time_ms(payloads)

    # REST.

    def request_weight(self, path: str, query: Mapping[str, Sequence[str]]) -> int:
        return rest.request_weight(path, query)

    def weight_headers(self, used: int) -> tuple[tuple[str, str], ...]:
        return tuple(rest.used_weight_headers(used))

    def weight_refused(self, status: int, limit: int, retry_after_s: float, ban_ends_wall_ms: int | None) -> HttpReply:
        if status == 429:
            error = rest.weight_exceeded(limit)
        else:
            if ban_ends_wall_ms is None:
                raise ValueError("a 418 names when the ban ends")
            error = rest.ip_banned(ban_ends_wall_ms)
        return HttpReply(error.status, error.body(), (rest.retry_after_header(retry_after_s),))

    def rest(self, path: str, query: Mapping[str, Sequence[str]], venue: RestVenue) -> HttpReply | SnapshotAsk:
        try:
            if path == rest.DEPTH_PATH:
                symbol, limit = rest.depth_params(query)
                if venue.books.book(symbol) is None:
                    raise rest.invalid_symbol()
                return SnapshotAsk(symbol, limit)
            if path == rest.PING_PATH:
                body = rest.ping_body()
            elif path == rest.TIME_PATH:
                body = rest.time_body(venue.wall_ms)
            elif path == rest.EXCHANGE_INFO_PATH:
                body = _exchange_info(query, venue)
            elif path == rest.BOOK_TICKER_PATH:
                body = _book_ticker(query, venue)
            elif path == rest.SYSTEM_STATUS_PATH:
                body = rest.system_status_body()
            else:
                return HttpReply(404, _NOT_FOUND)
        except rest.RestError as error:
            return _error(error)
        return HttpReply(200, body)

    def snapshot_body(
        self, last_update_id: int, bids: Sequence[Level], asks: Sequence[Level], at: SnapshotAt | None
    ) -> bytes:
        return rest.depth_body(last_update_id, bids, asks)  # spot's body carries no time

    def error_reply(self, status: int) -> HttpReply:
        return _error(rest.error_for_status(status, self.limits.rest_weight_per_minute))

    def rest_endpoint(self, path: str) -> str:
        return urlsplit(path).path.rsplit("/", 1)[-1]


WIRE: VenueWire = BinanceSpotWire()


def _error(error: rest.RestError) -> HttpReply:
    return HttpReply(error.status, error.body())


def _exchange_info(query: Mapping[str, Sequence[str]], venue: RestVenue) -> bytes:
    asked = rest.exchange_info_params(query)
    names = _known(asked.names, venue)
    if asked.status not in (None, rest.SYMBOL_STATUS):
        names = []
    specs = [cast("rest.SymbolSpec", venue.specs[name]) for name in names]
    return rest.exchange_info_body(specs, venue.wall_ms, show_permission_sets=asked.show_permission_sets)


def _book_ticker(query: Mapping[str, Sequence[str]], venue: RestVenue) -> bytes:
    """Best bid and ask from the venue book at the current replay position, like REST depth."""
    asked = rest.book_ticker_params(query)
    entries = []
    for name in _known(asked, venue):
        book = venue.books.book(name)
        if book is None:
            raise rest.invalid_symbol()
        bids, asks = book.bids(1), book.asks(1)
        entries.append(rest.book_ticker_entry(name, bids[0] if bids else None, asks[0] if asks else None))
    return rest.book_ticker_body(entries, single="symbol" in query)


def _known(names: list[str] | None, venue: RestVenue) -> list[str]:
    """`names` (every recorded symbol when None), or -1121 when one was not recorded."""
    if names is None:
        return list(venue.symbols)
    if any(name not in venue.specs for name in names):
        raise rest.invalid_symbol()
    return names
