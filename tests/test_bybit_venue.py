"""Bybit's venue side: topics, the dialect's chain ids and levels, the encoder, and control messages."""

from __future__ import annotations

import orjson
import pytest

from harness.venues.bybit import DIALECT
from harness.venues.bybit.control import (
    SPOT_MAX_ARGS,
    BybitBadRequest,
    BybitRequest,
    BybitSubscriptions,
    parse_request,
    pong,
    reply,
    request_frame,
)
from harness.venues.bybit.encoder import BybitTradePrint, decimal_text, trade_frame
from harness.venues.bybit.topics import category_of_url, parse_book_topic, qualify, split_stream, topic_of
from harness.venues.dialect import ChainIds
from tests.bybit_frames import book


def test_topics_parse_and_qualify() -> None:
    assert parse_book_topic("orderbook.200.BTCUSDT") == (200, "BTCUSDT")
    assert parse_book_topic("publicTrade.BTCUSDT") is None
    assert parse_book_topic("orderbook.x.BTCUSDT") is None
    assert category_of_url("wss://stream.bybit.com/v5/public/linear") == "linear"
    assert category_of_url("ws://127.0.0.1:8080/v5/public/spot?x=1") == "spot"
    assert category_of_url("wss://stream.bybit.com/v5/private") is None
    assert split_stream(qualify("spot", "orderbook.50.ETHUSDT")) == ("spot", "orderbook.50.ETHUSDT")
    assert split_stream("orderbook.50.ETHUSDT") == (None, "orderbook.50.ETHUSDT")
    assert topic_of(reply("linear", "c1", "subscribe", None)) is None
    assert topic_of(b"not json") is None


def test_chain_ids_snapshot_resets_and_delta_covers_u() -> None:
    snap = DIALECT.chain_ids("orderbook.50.BTCUSDT", book(1, snapshot=True))
    delta = DIALECT.chain_ids("orderbook.50.BTCUSDT", book(8))
    assert snap == ChainIds("BTCUSDT", 1, 1, snapshot=True)
    assert snap.follows(5000), "a snapshot (u == 1 after a restart) follows anything"
    assert delta == ChainIds("BTCUSDT", 8, 8)
    assert delta.follows(7) and not delta.follows(6) and not delta.follows(8)
    assert DIALECT.chain_ids("publicTrade.BTCUSDT", b"{}") is None


def test_chain_ids_keep_categories_apart() -> None:
    spot = DIALECT.chain_ids("spot/orderbook.50.BTCUSDT", book(3, category="spot"))
    linear = DIALECT.chain_ids("linear/orderbook.50.BTCUSDT", book(3))
    assert spot is not None and linear is not None
    assert (spot.symbol, linear.symbol) == ("spot/BTCUSDT", "linear/BTCUSDT")
    assert DIALECT.is_book_stream("spot/orderbook.50.BTCUSDT")


@pytest.mark.parametrize(
    "payload",
    [
        b"nope",
        b"[]",
        b'{"topic":"orderbook.50.X","type":"delta","data":{"u":"7","b":[],"a":[]}}',
        b'{"topic":"orderbook.50.X","type":"partial","data":{"u":7,"b":[],"a":[]}}',
    ],
)
def test_malformed_book_frames_are_value_errors(payload: bytes) -> None:
    with pytest.raises(ValueError):
        DIALECT.chain_ids("orderbook.50.X", payload)


def test_book_levels_and_no_rest_snapshot() -> None:
    levels = DIALECT.book_levels(book(4, bids=[["1.5", "0"]], asks=[]))
    assert (list(levels.bids), list(levels.asks), levels.checksum) == ([["1.5", "0"]], [], None)
    assert DIALECT.snapshot_transport == "stream"
    assert DIALECT.snapshot_request("https://api.bybit.com/v5/market/orderbook?symbol=BTCUSDT") is None
    with pytest.raises(ValueError):
        DIALECT.parse_rest_snapshot("BTCUSDT", b"{}")


def test_encoder_key_order_and_number_style_differ_by_category() -> None:
    linear = orjson.loads(book(2))
    spot = orjson.loads(book(2, category="spot"))
    assert list(linear) == ["topic", "type", "ts", "data", "cts"]
    assert list(spot) == ["topic", "ts", "type", "data", "cts"]
    assert list(linear["data"]) == ["s", "b", "a", "u", "seq"]
    assert decimal_text(4_210_000_000_000, 2, strip=False) == "42100.00"
    assert decimal_text(4_210_000_000_000, 2, strip=True) == "42100"
    assert decimal_text(1_050, 8, strip=True) == "0.0000105"
    assert decimal_text(0, 3, strip=False) == "0.000"
    with pytest.raises(ValueError):
        decimal_text(-1, 2, strip=False)


def test_trade_frame_is_a_snapshot_list() -> None:
    fill = BybitTradePrint("77", 1_700_000_000_001, "100.10", "0.5", "Buy", 9)
    doc = orjson.loads(trade_frame("linear", "BTCUSDT", [fill], 1_700_000_000_002))
    assert doc["topic"] == "publicTrade.BTCUSDT" and doc["type"] == "snapshot"
    assert doc["data"][0]["S"] == "Buy" and doc["data"][0]["p"] == "100.10"
    with pytest.raises(ValueError):
        trade_frame("spot", "BTCUSDT", [], 1)


def test_acks_and_pongs_differ_between_spot_and_linear() -> None:
    assert orjson.loads(reply("linear", "c1", "subscribe", None)) == {
        "success": True,
        "ret_msg": "",
        "conn_id": "c1",
        "req_id": "",
        "op": "subscribe",
    }
    assert orjson.loads(reply("spot", "c2", "subscribe", None)) == {
        "success": True,
        "ret_msg": "subscribe",
        "conn_id": "c2",
        "op": "subscribe",
    }
    assert orjson.loads(reply("spot", "c2", "subscribe", "7"))["req_id"] == "7"
    assert orjson.loads(pong("spot", "c2")) == {"success": True, "ret_msg": "pong", "conn_id": "c2", "op": "ping"}
    assert orjson.loads(pong("linear", "c1", "p1"))["req_id"] == "p1"


def test_parse_request() -> None:
    assert parse_request(request_frame("subscribe", ("orderbook.1.X",), "r")) == BybitRequest(
        "subscribe", ("orderbook.1.X",), "r"
    )
    assert parse_request(request_frame("ping")) == BybitRequest("ping", ())
    assert isinstance(parse_request(b"{"), BybitBadRequest)
    assert isinstance(parse_request(b'{"op":"auth","args":[]}'), BybitBadRequest)
    assert isinstance(parse_request(b'{"op":"subscribe","args":[]}'), BybitBadRequest)
    assert isinstance(parse_request(b'{"op":"subscribe","args":[1]}'), BybitBadRequest)


def _ledger(category: str = "linear") -> BybitSubscriptions:
    served = {"orderbook.50.BTCUSDT", "publicTrade.BTCUSDT"} | {f"orderbook.1.S{i}" for i in range(12)}
    return BybitSubscriptions("spot" if category == "spot" else "linear", "c9", served.__contains__)


def test_subscriptions_subscribe_ping_unsubscribe() -> None:
    ledger = _ledger()
    outcome = ledger.handle(request_frame("subscribe", ("orderbook.50.BTCUSDT", "publicTrade.BTCUSDT"), "a"))
    assert orjson.loads(outcome.reply)["success"] is True
    assert outcome.subscribed == ("orderbook.50.BTCUSDT", "publicTrade.BTCUSDT")
    assert orjson.loads(ledger.handle(request_frame("ping")).reply)["ret_msg"] == "pong"
    gone = ledger.handle(request_frame("unsubscribe", ("publicTrade.BTCUSDT",)))
    assert gone.unsubscribed == ("publicTrade.BTCUSDT",) and ledger.topics == ["orderbook.50.BTCUSDT"]
    again = ledger.handle(request_frame("subscribe", ("orderbook.50.BTCUSDT",)))
    assert orjson.loads(again.reply)["ret_msg"] == "error:already subscribed,topic:orderbook.50.BTCUSDT"
    assert again.subscribed == ()


@pytest.mark.parametrize(
    ("category", "message", "error"),
    [
        ("spot", request_frame("subscribe", tuple(f"orderbook.1.S{i}" for i in range(SPOT_MAX_ARGS + 1))), "args size"),
        ("linear", request_frame("subscribe", ("orderbook.7.BTCUSDT",)), "handler not found"),
        ("linear", request_frame("unsubscribe", ("orderbook.50.BTCUSDT",)), "not subscribed"),
        ("linear", b"{oops", "not json"),
    ],
)
def test_refused_requests_change_nothing(category: str, message: bytes, error: str) -> None:
    ledger = _ledger(category)
    outcome = ledger.handle(message)
    doc = orjson.loads(outcome.reply)
    assert doc["success"] is False and error in doc["ret_msg"]
    assert (outcome.subscribed, ledger.topics) == ((), [])


def test_linear_takes_more_than_ten_args() -> None:
    ledger = _ledger("linear")
    outcome = ledger.handle(request_frame("subscribe", tuple(f"orderbook.1.S{i}" for i in range(12))))
    assert len(outcome.subscribed) == 12


def test_subscribe_step_acks_on_the_last_request() -> None:
    from harness.client_state import StepReply
    from harness.venues.bybit.control import BybitSubscribe

    step = BybitSubscribe(tuple(f"orderbook.1.S{i}" for i in range(12)))
    assert all(isinstance(m, str) for m in step.messages()), "requests go out as text frames"
    requests = [parse_request(m) for m in step.messages()]
    assert [len(r.args) for r in requests if isinstance(r, BybitRequest)] == [10, 2]
    ids = [r.req_id for r in requests if isinstance(r, BybitRequest)]
    assert step.classify(reply("spot", "c", "subscribe", ids[0])) is StepReply.OTHER
    assert step.classify(reply("spot", "c", "subscribe", ids[1])) is StepReply.ACK
    assert step.classify(reply("linear", "c", "subscribe", ids[0], success=False, ret_msg="x")) is StepReply.REJECTED
    assert step.classify(reply("linear", "c", "subscribe", None)) is StepReply.OTHER, "someone else's request"
    assert step.classify(book(3)) is StepReply.OTHER
    with pytest.raises(ValueError):
        BybitSubscribe(())
