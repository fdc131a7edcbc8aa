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


LINEAR = ConnectionState((), "linear", 3)
SPOT = ConnectionState((), "spot", 4)


def test_control_replies_take_the_connection_category() -> None:
    control = WIRE.parse_control(request_frame("subscribe", ("orderbook.50.BTCUSDT",), "r1"), LINEAR)
    assert control == Control("subscribe", ("orderbook.50.BTCUSDT",), request_id="r1")
    spot = orjson.loads(WIRE.render_control(control, ConnectionState(("orderbook.50.BTCUSDT",), "spot"))[0].payload)
    linear = orjson.loads(WIRE.render_control(control, ConnectionState((), "linear", 7))[0].payload)
    assert (spot["ret_msg"], linear["ret_msg"], linear["req_id"]) == ("subscribe", "", "r1")
    assert linear["conn_id"] != spot["conn_id"], "each connection has its own conn_id"
    ping = WIRE.parse_control(b'{"op":"ping"}', SPOT)
    assert orjson.loads(WIRE.render_control(ping, ConnectionState((), "spot"))[0].payload)["ret_msg"] == "pong"  # type: ignore[arg-type]
    for bad in (b"{", request_frame("subscribe", ("orderbook.7.BTCUSDT",)), b'{"op":"auth"}'):
        rejected = WIRE.parse_control(bad, SPOT)
        assert isinstance(rejected, ControlRejected)
        answer = orjson.loads(rejected.reply.payload)
        assert answer["success"] is False and answer["conn_id"] == "harness-fake-venue-4"
        assert answer["ret_msg"] != "subscribe" and "req_id" not in answer, "spot's shape: no req_id unless sent"


def test_a_topic_is_keyed_by_the_path_it_was_asked_on_where_the_recording_holds_both() -> None:
    both = frozenset({"spot/orderbook.200.BTCUSDT", "linear/orderbook.200.BTCUSDT"})
    ask = request_frame("subscribe", ("orderbook.200.BTCUSDT", "publicTrade.BTCUSDT"), "r")
    on_spot = WIRE.parse_control(ask, ConnectionState((), "spot", 1, both))
    on_linear = WIRE.parse_control(ask, ConnectionState((), "linear", 2, both))
    assert isinstance(on_spot, Control) and isinstance(on_linear, Control)
    assert on_spot.streams == ("spot/orderbook.200.BTCUSDT", "spot/publicTrade.BTCUSDT")
    assert on_linear.streams == ("linear/orderbook.200.BTCUSDT", "linear/publicTrade.BTCUSDT")
    one = frozenset({"orderbook.1000.BTCUSDT"})
    bare = WIRE.parse_control(ask, ConnectionState((), "spot", 1, one))
    assert isinstance(bare, Control) and bare.streams == ("orderbook.200.BTCUSDT", "publicTrade.BTCUSDT")


def test_spot_takes_ten_topics_a_request_and_linear_more() -> None:
    eleven = request_frame("subscribe", tuple(f"publicTrade.S{i}USDT" for i in range(11)), "r")
    refused = WIRE.parse_control(eleven, SPOT)
    assert isinstance(refused, ControlRejected)
    assert orjson.loads(refused.reply.payload)["ret_msg"] == "error:args size >10"
    assert isinstance(WIRE.parse_control(eleven, LINEAR), Control)


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
