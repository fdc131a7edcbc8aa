"""OKX's public WebSocket as the fake venue speaks it (the `VenueWire` of harness/venues/wire.py).

Built on `control.py` (requests, acks, errors, ping/pong) and `encoder.py` (the snapshot a new
`books` subscriber gets, from the venue's book at the current position, with its checksum): this
module only maps them onto the contract; `books5` and `bbo-tbt` are computed from a recorded `books`
(top_streams.py). One path, `/ws/v5/public`, subscribes to nothing by itself;
clients subscribe by message and keep the connection alive with the text `ping` (OKX sends no ping
frames; a connection it has received no message from for 30 s it closes with 4004 "No data received
in 30s", `IDLE_CLOSE`, which the core enforces). Recorded frames go
out as recorded. OKX's REST snapshot is not needed by a `books` client, so REST answers 404.
Limits: OKX documents no per-connection count of channels (the args of one request must stay under
64 KB) and answers a flood with error 60014 rather than a close, so the core's limits are set wide.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from urllib.parse import urlsplit

from harness.venues.okx import control
from harness.venues.okx.channels import BBO_TBT, BOOKS, BOOKS5, WS_PATH, split_stream, stream_key
from harness.venues.okx.dialect import DIALECT
from harness.venues.okx.encoder import snapshot_message
from harness.venues.okx.top_streams import TopStream
from harness.venues.wire import (
    Aggregator,
    Books,
    ConnectionState,
    Control,
    ControlRejected,
    Heartbeat,
    HttpReply,
    IdleClose,
    LimitName,
    Opened,
    Reply,
    RestVenue,
    SnapshotAsk,
    StreamSnapshotWire,
    VenueWire,
    WireLimits,
)

FRAMING = "raw"
SNAPSHOT_DEPTH = 400
_TS = re.compile(rb'"ts":"(?P<ms>\d+)"')
_NOT_FOUND = b'{"code":"404","msg":"Not Found"}'
IDLE_CLOSE = IdleClose(30.0, 4004, "No data received in 30s")
"""OKX's "Connect" docs: the connection breaks if no data has passed for 30 s, and the client should
send the text `ping` when it has had nothing for less than that; the close code and text are those of
OKX's WebSocket error table (4004). A client message of any kind restarts the count."""


class OkxWire(StreamSnapshotWire):
    """OKX v5 public as the fake venue speaks it; stateless, one instance serves every connection."""

    name = "okx"
    dialect = DIALECT
    event_time = _TS
    limits = WireLimits(
        messages_per_second=None,
        too_many_messages_close=(1008, "too many requests"),
        streams_per_connection=1024,
        rest_weight_per_minute=0,
    )
    heartbeat = Heartbeat(server_ping_interval_s=None, pong_timeout_s=None, idle_close=IDLE_CLOSE)

    def is_rest(self, path: str) -> bool:
        return urlsplit(path).path.startswith("/api/")

    def open_path(self, path: str) -> Opened | HttpReply:
        if urlsplit(path).path != WS_PATH:
            return HttpReply(404, _NOT_FOUND)
        return Opened((), FRAMING)

    def parse_control(self, message: str | bytes, state: ConnectionState) -> Control | ControlRejected:
        request = control.parse_request(message, conn_id(state.connection_id))
        if isinstance(request, control.Ping):
            return Control("ping")
        if isinstance(request, control.Rejected):
            return ControlRejected(Reply(request.reply))
        return Control(request.op, streams=request.streams, request_id=request.request_id, echo=request)

    def render_control(self, control_: Control, state: ConnectionState) -> list[Reply]:
        if control_.kind == "ping":
            return [Reply(control.PONG)]
        request = control_.echo
        if not isinstance(request, control.Subscription):
            raise TypeError(f"an OKX {control_.kind} control carries its Subscription in `echo`")
        return [Reply(ack) for ack in control.acks(request, conn_id(state.connection_id))]

    def render_limit_error(self, control_: Control, limit: LimitName, allowed: int, state: ConnectionState) -> Reply:
        msg = f"Invalid args: at most {allowed} channels on one connection"
        return Reply(control.error_reply("60013", msg, conn_id(state.connection_id), _request_id(control_)))

    def stream_snapshot(self, stream: str, books: Books, wall_ms: int) -> bytes | None:
        named = split_stream(stream)
        if named is None or named[0] != BOOKS:
            return None
        book = books.book(named[1])
        if book is None:
            return None
        bids, asks = book.bids(SNAPSHOT_DEPTH), book.asks(SNAPSHOT_DEPTH)
        if not bids and not asks:
            return None  # no book yet (replay starts at the recorded snapshot): OKX never sends an empty one
        return snapshot_message(named[1], bids, asks, seq_id=book.last_update_id, ts_ms=wall_ms)

    def derived_streams(self, recorded: Iterable[str]) -> dict[str, list[str]]:
        """For each recorded `books:X`, the `books5:X` and `bbo-tbt:X` OKX would also serve (top_streams.py)."""
        have = list(recorded)
        derived: dict[str, list[str]] = {}
        for stream in have:
            named = split_stream(stream)
            if named is not None and named[0] == BOOKS:
                names = [stream_key(channel, named[1]) for channel in (BOOKS5, BBO_TBT)]
                names = [name for name in names if name not in have]
                if names:
                    derived[stream] = names
        return derived

    def aggregator(self, derived: str) -> Aggregator:
        return TopStream(derived)

    def shift_times(self, payload: bytes, delta_ms: int) -> bytes:
        """Every `"ts":"<ms>"` moved by `delta_ms`; every other byte as recorded."""
        return _TS.sub(lambda m: b'"ts":"%d"' % (int(m[1]) + delta_ms), payload)

    def weight_refused(self, status: int, limit: int, retry_after_s: float, ban_ends_wall_ms: int | None) -> HttpReply:
        return HttpReply(status, b'{"code":"50011","msg":"Too Many Requests"}')

    def rest(self, path: str, query: Mapping[str, Sequence[str]], venue: RestVenue) -> HttpReply | SnapshotAsk:
        return HttpReply(404, _NOT_FOUND)

    def error_reply(self, status: int) -> HttpReply:
        return HttpReply(status, b'{"code":"%d","msg":"error"}' % status)

    def rest_endpoint(self, path: str) -> str:
        return urlsplit(path).path.rsplit("/", 1)[-1]


WIRE: VenueWire = OkxWire()


def conn_id(connection_id: int) -> str:
    """OKX's `connId` for the fake venue's connection number: 8 hex digits, as OKX writes them."""
    return f"{connection_id & 0xFFFFFFFF:08x}"


def _request_id(control_: Control) -> str | None:
    return control_.request_id if isinstance(control_.request_id, str) else None
