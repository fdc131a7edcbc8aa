"""Bybit's wire for the fake venue, without sockets: paths, control replies per category, the
in-stream snapshot a (re)subscriber gets from the venue's book, frames unchanged, REST."""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson

from harness.venues.bybit.control import request_frame
from harness.venues.bybit.decoder import decode_frame
from harness.venues.bybit.wire import WIRE
from harness.venues.wire import ConnectionState, Control, ControlRejected, HttpReply, Opened, VenueWire
from tests.bybit_frames import book


@dataclass
class FakeBook:
    last_update_id: int
    levels_bids: list[list[str]]
    levels_asks: list[list[str]]

    def bids(self, limit: int | None = None) -> list[list[str]]:
        return self.levels_bids[:limit]

    def asks(self, limit: int | None = None) -> list[list[str]]:
        return self.levels_asks[:limit]


@dataclass
class FakeBooks:
    books: dict[str, FakeBook] = field(default_factory=dict)

    def book(self, symbol: str) -> FakeBook | None:
        return self.books.get(symbol)


def test_paths() -> None:
    wire: VenueWire = WIRE
    assert wire.name == "bybit" and wire.heartbeat.server_ping_interval_s is None
    assert WIRE.open_path("/v5/public/linear") == Opened((), "linear")
    assert WIRE.open_path("/v5/public/spot") == Opened((), "spot")
    refused = WIRE.open_path("/v5/private")
    assert isinstance(refused, HttpReply) and refused.status == 404
    assert WIRE.is_rest("/v5/market/time") and not WIRE.is_rest("/v5/public/spot")


def test_control_replies_take_the_connection_category() -> None:
    spot_state = ConnectionState((), "spot")
    control = WIRE.parse_control(request_frame("subscribe", ("orderbook.50.BTCUSDT",), "r1"), spot_state)
    assert control == Control("subscribe", ("orderbook.50.BTCUSDT",), request_id="r1")
    spot = orjson.loads(WIRE.render_control(control, ConnectionState(("orderbook.50.BTCUSDT",), "spot"))[0].payload)
    linear = orjson.loads(WIRE.render_control(control, ConnectionState((), "linear", 7))[0].payload)
    assert (spot["ret_msg"], linear["ret_msg"], linear["req_id"]) == ("subscribe", "", "r1")
    assert linear["conn_id"] != spot["conn_id"], "each connection has its own conn_id"
    ping = WIRE.parse_control(b'{"op":"ping"}', spot_state)
    assert orjson.loads(WIRE.render_control(ping, ConnectionState((), "spot"))[0].payload)["ret_msg"] == "pong"  # type: ignore[arg-type]
    for bad in (b"{", request_frame("subscribe", ("orderbook.7.BTCUSDT",)), b'{"op":"auth"}'):
        rejected = WIRE.parse_control(bad, ConnectionState((), "linear", 7))
        assert isinstance(rejected, ControlRejected) and orjson.loads(rejected.reply.payload)["success"] is False
        assert orjson.loads(rejected.reply.payload)["conn_id"] == linear["conn_id"], "errors name the connection too"


def test_resubscriber_snapshot_continues_the_recorded_chain() -> None:
    levels = [[f"{100 - i}.00", "1"] for i in range(80)]
    books = FakeBooks({"BTCUSDT": FakeBook(41, levels, [[f"{101 + i}.00", "2"] for i in range(80)])})
    payload = WIRE.stream_snapshot("orderbook.50.BTCUSDT", books, 1_700_000_000_123)
    assert payload is not None
    snapshot = decode_frame(payload)
    assert snapshot is not None and snapshot.last_update_id == 41
    assert len(snapshot.bids) == 50 and snapshot.bids[0] == ["100.00", "1"]
    assert orjson.loads(payload)["ts"] == 1_700_000_000_123
    assert WIRE.stream_snapshot("orderbook.50.ETHUSDT", books, 1) is None, "no book yet: the recorded snapshot comes"
    assert WIRE.stream_snapshot("publicTrade.BTCUSDT", books, 1) is None
    books.books["ETHUSDT"] = FakeBook(0, [], [])
    assert WIRE.stream_snapshot("orderbook.50.ETHUSDT", books, 1) is None, "never an empty snapshot"


def test_frames_unchanged_and_times_shifted_in_place() -> None:
    frame = book(9)
    assert WIRE.frame("orderbook.50.BTCUSDT", frame, "linear") is frame
    shifted = WIRE.shift_times(frame, 1000)
    assert orjson.loads(shifted)["ts"] == orjson.loads(frame)["ts"] + 1000
    assert len(shifted) == len(frame) and orjson.loads(shifted)["data"] == orjson.loads(frame)["data"]
    assert WIRE.first_event_time_ms([b"{}", frame]) == orjson.loads(frame)["ts"]
