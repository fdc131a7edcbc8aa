"""Bybit v5 public's wire for the fake venue (the `VenueWire` of harness/venues/wire.py).

Paths `/v5/public/spot` and `/v5/public/linear` subscribe to nothing by themselves; the connection's
framing is its category, which picks the ack and pong shapes (control.py). Frames go out exactly as
recorded. The snapshot travels on the stream: a connection that starts holding `orderbook.{depth}.{symbol}`
gets one built from the venue's book at the replay position (the top `depth` levels, `u` = the
book's last applied id, so the next recorded delta, `u + 1`, continues it), or nothing while the
venue has no book yet (the recorded snapshot then comes in its turn). The client keeps the
connection alive with `{"op":"ping"}`; the venue sends no pings. There is no REST depth snapshot:
REST answers `/v5/market/time` and 404 elsewhere.

A request is read on its connection's category (`parse_control` gets the connection, whose framing
`open_path` made of its path): spot's limit of 10 topics a request holds on spot only, errors take the
category's shape, and a topic is named the way the recording keys it. A recording holding both
categories keys its streams `<category>/<topic>`, so `orderbook.200.BTCUSDT` asked on
`/v5/public/spot` is `spot/orderbook.200.BTCUSDT` and never reaches a linear subscriber, as on the real
venue; a recording of one category keys bare topics, served on either path (it does not say which
category it holds).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

from harness.venues.bybit import control
from harness.venues.bybit.encoder import book_frame
from harness.venues.bybit.topics import (
    BOOK_DEPTHS,
    PUBLIC_PATH,
    Category,
    category_of_url,
    parse_book_topic,
    qualify,
    split_stream,
)
from harness.venues.bybit.venue import DIALECT
from harness.venues.wire import (
    Aggregator,
    Books,
    ConnectionState,
    Control,
    ControlRejected,
    HttpReply,
    LimitName,
    Opened,
    Reply,
    RestVenue,
    SnapshotAsk,
    StreamSnapshotWire,
    WireLimits,
)


def conn_id_of(connection_id: int) -> str:
    """Bybit's `conn_id` is an opaque token per connection; ours names the core's connection number."""
    return f"harness-fake-venue-{connection_id}"


_TIMES = re.compile(rb'"(ts|cts|T)":(?P<ms>\d+)')
_NOT_FOUND = b'{"retCode":10404,"retMsg":"Not Found","result":{},"retExtInfo":{}}'
_TOO_MANY = b'{"retCode":10006,"retMsg":"Too many visits!","result":{},"retExtInfo":{}}'


def _category(framing: str) -> Category:
    return "spot" if framing == "spot" else "linear"


class BybitWire(StreamSnapshotWire):
    """Bybit v5 public as the fake venue speaks it; stateless, one instance serves every connection."""

    name = "bybit"
    dialect = DIALECT
    event_time = _TIMES
    limits = WireLimits(streams_per_connection=10_000)

    # Connections and control messages.

    def is_rest(self, path: str) -> bool:
        return path.startswith("/v5/") and not path.startswith(PUBLIC_PATH)

    def open_path(self, path: str) -> Opened | HttpReply:
        category = category_of_url("ws://venue" + path)
        if category is None:
            return HttpReply(404, _NOT_FOUND)
        return Opened(streams=(), framing=category)

    def parse_control(self, message: str | bytes, state: ConnectionState) -> Control | ControlRejected:
        category = _category(state.framing)
        request = control.parse_request(message)
        if isinstance(request, control.BybitBadRequest):
            return self._rejected(request.op, request.req_id, request.reason, state)
        if request.op == "ping":
            return Control("ping", request_id=request.req_id)
        problem = control.refusal(category, request, lambda topic: _served_topic(category, topic))
        if problem is not None:
            return self._rejected(request.op, request.req_id, problem, state)
        if any(split_stream(stream)[0] is not None for stream in state.venue_streams):
            keys = tuple(qualify(category, topic) for topic in request.args)
        else:
            keys = request.args
        return Control(request.op, streams=keys, request_id=request.req_id)

    def render_control(self, control_: Control, state: ConnectionState) -> list[Reply]:
        req_id = control_.request_id if isinstance(control_.request_id, str) else None
        return [Reply(control.reply(_category(state.framing), conn_id_of(state.connection_id), control_.kind, req_id))]

    def render_limit_error(self, control_: Control, limit: LimitName, allowed: int, state: ConnectionState) -> Reply:
        req_id = control_.request_id if isinstance(control_.request_id, str) else None
        reason = f"error:topics per connection >{allowed}"
        return self._rejected(control_.kind, req_id, reason, state).reply

    def stream_snapshot(self, stream: str, books: Books, wall_ms: int) -> bytes | None:
        category, topic = split_stream(stream)
        parsed = parse_book_topic(topic)
        symbol = DIALECT.symbol_of(stream)
        if parsed is None or symbol is None:
            return None
        book = books.book(symbol)
        if book is None:
            return None
        depth, name = parsed
        bids, asks = book.bids(depth), book.asks(depth)
        if not bids and not asks:
            return None  # a book that holds nothing yet: Bybit never sends an empty snapshot
        return book_frame(
            category or "linear",
            topic,
            snapshot=True,
            symbol=name,
            bids=bids,
            asks=asks,
            update_id=book.last_update_id,
            seq=book.last_update_id,
            ts_ms=wall_ms,
            cts_ms=wall_ms,
        )

    @staticmethod
    def _rejected(op: str, req_id: str | None, reason: str, state: ConnectionState) -> ControlRejected:
        """Bybit's error reply, in the connection's category's shape and with its `conn_id`."""
        conn_id = conn_id_of(state.connection_id)
        return ControlRejected(
            Reply(control.reply(_category(state.framing), conn_id, op, req_id, success=False, ret_msg=reason))
        )

    # Recorded frames.

    def derived_streams(self, recorded: Iterable[str]) -> dict[str, list[str]]:
        return {}

    def aggregator(self, derived: str) -> Aggregator:
        raise ValueError(f"Bybit computes no stream from another; {derived!r} is not one")

    def shift_times(self, payload: bytes, delta_ms: int) -> bytes:
        return _TIMES.sub(lambda m: b'"%s":%d' % (m.group(1), int(m.group(2)) + delta_ms), payload)

    # REST: no depth snapshot; the server time, and 404 for the rest.

    def weight_refused(self, status: int, limit: int, retry_after_s: float, ban_ends_wall_ms: int | None) -> HttpReply:
        return HttpReply(
            403 if status == 418 else 429, _TOO_MANY, (("Retry-After", str(max(1, round(retry_after_s)))),)
        )

    def rest(self, path: str, query: Mapping[str, Sequence[str]], venue: RestVenue) -> HttpReply | SnapshotAsk:
        if path.split("?", 1)[0] == "/v5/market/time":
            seconds = venue.wall_ms // 1000
            body = (
                b'{"retCode":0,"retMsg":"OK","result":{"timeSecond":"%d","timeNano":"%d"},"retExtInfo":{},"time":%d}'
                % (seconds, venue.wall_ms * 1_000_000, venue.wall_ms)
            )
            return HttpReply(200, body)
        return HttpReply(404, _NOT_FOUND)

    def error_reply(self, status: int) -> HttpReply:
        return HttpReply(status, b'{"retCode":%d,"retMsg":"error","result":{},"retExtInfo":{}}' % status)

    def rest_endpoint(self, path: str) -> str:
        return path.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1] or "/"


def _served_topic(category: Category, topic: str) -> bool:
    """A public topic a Bybit endpoint publishes (order books at the depths it serves, trades,
    tickers, klines); anything else is refused the way Bybit refuses it."""
    parsed = parse_book_topic(topic)
    if parsed is not None:
        return parsed[0] in BOOK_DEPTHS[category]
    kind, _, rest = topic.partition(".")
    return kind in ("publicTrade", "tickers", "kline") and bool(rest)


WIRE = BybitWire()
