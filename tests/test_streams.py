"""Binance spot stream names, paths, combined-stream slicing, control requests and REST bodies."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.errors import HarnessError
from harness.venues.binance_spot import rest
from harness.venues.binance_spot.streams import (
    ControlError,
    WsPath,
    is_depth_diff,
    parse_control,
    parse_ws_path,
    raw_data,
    result_reply,
    symbol_of,
    unserved_time_unit,
    wrap_combined,
)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/ws", WsPath(False, ())),
        ("/ws/", WsPath(False, ())),
        ("/ws/btcusdt@depth@100ms", WsPath(False, ("btcusdt@depth@100ms",))),
        ("/ws/btcusdt@depth@100ms/btcusdt@trade", WsPath(False, ("btcusdt@depth@100ms", "btcusdt@trade"))),
        ("/ws/btcusdt%40trade", WsPath(False, ("btcusdt@trade",))),
        ("/stream?streams=btcusdt@depth@100ms/btcusdt@trade", WsPath(True, ("btcusdt@depth@100ms", "btcusdt@trade"))),
        ("/stream", WsPath(True, ())),
        ("/stream?streams=a@trade/a@trade", WsPath(True, ("a@trade",))),
        ("/api/v3/depth", None),
        ("/wsx", None),
        ("/", None),
    ],
)
def test_parse_ws_path(path: str, expected: WsPath | None) -> None:
    assert parse_ws_path(path) == expected


def test_only_millisecond_time_units_are_served() -> None:
    assert unserved_time_unit("/ws/btcusdt@trade") is None
    assert unserved_time_unit("/stream?streams=btcusdt@trade&timeUnit=millisecond") is None
    assert unserved_time_unit("/stream?streams=btcusdt@trade&timeUnit=MICROSECOND") == "MICROSECOND"
    assert unserved_time_unit("/ws/btcusdt@trade?timeUnit=microsecond") == "microsecond"


def test_stream_helpers() -> None:
    assert symbol_of("btcusdt@depth@100ms") == "BTCUSDT"
    assert is_depth_diff("btcusdt@depth@100ms")
    assert is_depth_diff("btcusdt@depth")
    assert not is_depth_diff("btcusdt@depth20@100ms")
    assert not is_depth_diff("btcusdt@trade")


_json_text = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=8,
)


@settings(max_examples=60, deadline=None)
@given(data=_json_text, stream=st.from_regex(r"[a-z]{3,8}@(trade|depth@100ms)", fullmatch=True))
def test_raw_data_slices_exactly_what_wrap_combined_wrapped(data: object, stream: str) -> None:
    data_bytes = orjson.dumps(data)
    payload = wrap_combined(stream, data_bytes)
    assert orjson.loads(payload) == {"stream": stream, "data": data}
    assert raw_data(payload, stream) == data_bytes


def test_raw_data_refuses_payloads_not_in_combined_form() -> None:
    payload = wrap_combined("btcusdt@trade", b'{"e":"trade","p":{"x":1}}')
    assert raw_data(payload, "ethusdt@trade") is None
    assert raw_data(b"\xff\xfe", "btcusdt@trade") is None
    assert raw_data(payload[:20], "btcusdt@trade") is None


@pytest.mark.parametrize("cut", range(1, 12))
def test_a_truncated_payload_still_reaches_a_raw_client_as_invalid_json(cut: int) -> None:
    payload = wrap_combined("btcusdt@trade", b'{"e":"trade","p":{"x":1}}')[:-cut]
    sliced = raw_data(payload, "btcusdt@trade")
    sent = payload if sliced is None else sliced
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(sent)


def test_control_requests_parse() -> None:
    sub = parse_control(b'{"method":"SUBSCRIBE","params":["btcusdt@depth@100ms","btcusdt@trade"],"id":1}')
    assert (sub.method, sub.params, sub.id) == ("SUBSCRIBE", ("btcusdt@depth@100ms", "btcusdt@trade"), 1)
    listing = parse_control('{"method":"LIST_SUBSCRIPTIONS","id":3}')
    assert (listing.method, listing.params) == ("LIST_SUBSCRIPTIONS", ())
    assert result_reply(1) == b'{"result":null,"id":1}'
    for request_id in (None, -5, 2**63 - 1, "a1b2-c3"):
        request = parse_control(orjson.dumps({"method": "SUBSCRIBE", "params": ["btcusdt@trade"], "id": request_id}))
        assert request.id == request_id
        assert orjson.loads(result_reply(request.id)) == {"result": None, "id": request_id}
    assert result_reply(3, ["btcusdt@depth@100ms"]) == b'{"result":["btcusdt@depth@100ms"],"id":3}'


@pytest.mark.parametrize(
    ("message", "code", "msg_start", "reply_id"),
    [
        ("not json", 3, "Invalid JSON", None),
        ("[1,2]", 3, "Invalid JSON", None),
        ('{"params":[],"id":1}', 2, "Invalid request: missing field `method`", 1),
        ('{"method":"SUBSCRIB","params":[],"id":1}', 2, "Invalid request: unknown variant `SUBSCRIB`", 1),
        ('{"method":"SUBSCRIBE","params":["btcusdt@trade"]}', 2, "Invalid request: request ID must be", None),
        (
            '{"method":"SUBSCRIBE","params":["btcusdt@trade"],"id":9223372036854775808}',
            2,
            "Invalid request: request",
            None,
        ),
        ('{"method":"SUBSCRIBE","params":["btcusdt@trade"],"id":true}', 2, "Invalid request: request ID must be", None),
        ('{"method":"SUBSCRIBE","params":"btcusdt@trade","id":7}', 2, "Invalid request: params", 7),
        ('{"method":"SUBSCRIBE","params":[5],"id":7}', 2, "Invalid request: invalid stream name", 7),
        ('{"method":"SET_PROPERTY","params":["combined","yes"],"id":5}', 1, "Invalid value type: expected Boolean", 5),
        ('{"method":"SET_PROPERTY","params":["colour",true],"id":5}', 0, "Unknown property", 5),
        ('{"method":"GET_PROPERTY","params":[1],"id":5}', 2, "Invalid request: property name must be a string", 5),
    ],
)
def test_control_errors_carry_binance_codes(message: str, code: int, msg_start: str, reply_id: object) -> None:
    with pytest.raises(ControlError) as caught:
        parse_control(message)
    reply = orjson.loads(caught.value.reply())
    assert reply["error"]["code"] == code
    assert reply["error"]["msg"].startswith(msg_start)
    assert reply["id"] == reply_id


def test_depth_params_defaults_truncation_and_errors() -> None:
    assert rest.depth_params({"symbol": ["BTCUSDT"]}) == ("BTCUSDT", 100)
    assert rest.depth_params({"symbol": ["BTCUSDT"], "limit": ["9000"]}) == ("BTCUSDT", 5000)
    assert rest.depth_params({"symbol": ["BTCUSDT"], "symbolStatus": ["TRADING"]}) == ("BTCUSDT", 100)
    cases = [
        ({}, 400, -1102),
        ({"symbol": ["btcusdt"]}, 400, -1100),
        ({"symbol": ["BTCUSDT"], "limit": ["ten"]}, 400, -1100),
        ({"symbol": ["BTCUSDT"], "limit": ["0"]}, 400, -1130),
        ({"symbol": ["BTCUSDT"], "depth": ["5"]}, 400, -1104),
        ({"symbol": ["BTCUSDT", "ETHUSDT"]}, 400, -1101),
        ({"symbol": ["BTCUSDT"], "symbolStatus": ["HALT"]}, 400, -1220),
        ({"symbol": ["BTCUSDT"], "symbolStatus": ["END_OF_DAY"]}, 400, -1122),
    ]
    for query, status, code in cases:
        with pytest.raises(rest.RestError) as caught:
            rest.depth_params(query)
        assert (caught.value.status, orjson.loads(caught.value.body())["code"]) == (status, code), query


def test_depth_body_shape() -> None:
    body = rest.depth_body(7, [("100.10", "1.5")], [("100.20", "0.25")])
    assert body == b'{"lastUpdateId":7,"bids":[["100.10","1.5"]],"asks":[["100.20","0.25"]]}'


def test_symbol_spec_derives_tick_and_lot_from_strings() -> None:
    spec = rest.symbol_spec("BTCUSDT", ["67000.01000000", "67000.10000000"], ["0.00012000", "1.00000000"])
    assert (spec.base_asset, spec.quote_asset) == ("BTC", "USDT")
    assert spec.tick_size == "0.01000000"
    assert spec.step_size == "0.00001000"
    coarse = rest.symbol_spec("ETHFDUSD", ["3000.00000000"], ["2"])
    assert (coarse.base_asset, coarse.quote_asset, coarse.tick_size, coarse.step_size) == (
        "ETH",
        "FDUSD",
        "1.00000000",
        "1.00000000",
    )
    with pytest.raises(HarnessError):
        rest.split_symbol("FOOBAR")


def test_exchange_info_body_has_the_fields_market_loaders_read() -> None:
    spec = rest.symbol_spec("BTCUSDT", ["1.01"], ["0.001"])
    info = orjson.loads(rest.exchange_info_body([spec], 123))
    assert info["serverTime"] == 123
    (symbol,) = info["symbols"]
    assert symbol["status"] == "TRADING"
    assert (symbol["baseAsset"], symbol["quoteAsset"], symbol["baseAssetPrecision"]) == ("BTC", "USDT", 8)
    filters = {f["filterType"]: f for f in symbol["filters"]}
    assert filters["PRICE_FILTER"]["tickSize"] == "0.01000000"
    assert filters["LOT_SIZE"]["stepSize"] == "0.00100000"
    assert rest.exchange_info_params({"symbols": ['["BTCUSDT","ETHUSDT"]']}).names == ["BTCUSDT", "ETHUSDT"]
    assert rest.exchange_info_params({}) == rest.ExchangeInfoQuery(None, None, True)
    asked = rest.exchange_info_params({"symbolStatus": ["HALT"], "showPermissionSets": ["false"]})
    assert asked == rest.ExchangeInfoQuery(None, "HALT", False)
    hidden = orjson.loads(rest.exchange_info_body([spec], 123, show_permission_sets=False))
    assert hidden["symbols"][0]["permissionSets"] == [] and symbol["permissionSets"] == [["SPOT"]]
    for query, code in [
        ({"symbols": ["BTCUSDT"]}, -1100),
        ({"symbol": ["BTCUSDT"], "symbolStatus": ["TRADING"]}, -1128),
        ({"symbolStatus": ["OPEN"]}, -1122),
        ({"showPermissionSets": ["yes"]}, -1130),
    ]:
        with pytest.raises(rest.RestError) as caught:
            rest.exchange_info_params(query)
        assert caught.value.code == code, query


def test_request_weights_follow_binance_and_headers_are_lower_case() -> None:
    weight = rest.request_weight
    assert weight(rest.PING_PATH, {}) == weight(rest.TIME_PATH, {}) == 1
    assert weight(rest.EXCHANGE_INFO_PATH, {}) == 20
    limits = {None: 5, "100": 5, "101": 25, "500": 25, "1000": 50, "5000": 250, "abc": 5}
    for limit, expected in limits.items():
        query = {"symbol": ["BTCUSDT"]} | ({"limit": [limit]} if limit else {})
        assert weight(rest.DEPTH_PATH, query) == expected, limit
    assert weight(rest.BOOK_TICKER_PATH, {"symbol": ["BTCUSDT"]}) == 2
    assert weight(rest.BOOK_TICKER_PATH, {}) == 4
    assert weight("/api/v3/klines", {}) == 0
    assert rest.used_weight_headers(47) == [("x-mbx-used-weight", "47"), ("x-mbx-used-weight-1m", "47")]


def test_book_ticker_params_and_shapes() -> None:
    assert rest.book_ticker_params({}) is None
    assert rest.book_ticker_params({"symbol": ["BTCUSDT"]}) == ["BTCUSDT"]
    assert rest.book_ticker_params({"symbolStatus": ["BREAK"]}) == []
    with pytest.raises(rest.RestError) as caught:
        rest.book_ticker_params({"symbol": ["BTCUSDT"], "symbolStatus": ["HALT"]})
    assert caught.value.code == -1220
    entry = rest.book_ticker_entry("BTCUSDT", ("1.00", "2.00"), None)
    assert entry == {
        "symbol": "BTCUSDT",
        "bidPrice": "1.00",
        "bidQty": "2.00",
        "askPrice": "0.00000000",
        "askQty": "0.00000000",
    }
    assert orjson.loads(rest.book_ticker_body([entry], single=True)) == entry
    assert orjson.loads(rest.book_ticker_body([entry], single=False)) == [entry]


def test_error_bodies_for_injected_statuses() -> None:
    assert orjson.loads(rest.error_for_status(429).body())["code"] == -1003
    assert orjson.loads(rest.error_for_status(503).body())["code"] == -1008
    assert rest.error_for_status(500).status == 500
    assert rest.invalid_symbol().body() == b'{"code":-1121,"msg":"Invalid symbol."}'
