"""Binance USD-M futures REST, for the endpoints order-book clients call: paths, parameter checks,
request weights and bodies. Errors and their bodies are spot's (`binance_spot/rest.py`: the same
`{"code","msg"}` shapes and codes), so only what differs lives here.

From Binance's USD-M "Order Book" documentation: `GET /fapi/v1/depth`, `limit` one of 5, 10, 20,
50, 100, 500 (the default) or 1000, weight 2 / 5 / 10 / 20 by depth; the answer carries the message
and transaction times `E` and `T`; 2,400 request weight per IP and minute.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import orjson

from harness.book_events import Level
from harness.venues.binance_spot.rest import RestError, SymbolSpec

PREFIX = "/fapi/"
DEPTH_PATH = "/fapi/v1/depth"
PING_PATH = "/fapi/v1/ping"
TIME_PATH = "/fapi/v1/time"
EXCHANGE_INFO_PATH = "/fapi/v1/exchangeInfo"
BOOK_TICKER_PATH = "/fapi/v1/ticker/bookTicker"

REQUEST_WEIGHT_PER_MINUTE = 2400
DEPTH_DEFAULT_LIMIT = 500
DEPTH_LIMITS = (5, 10, 20, 50, 100, 500, 1000)
MAX_INCOMING_MESSAGES_PER_SECOND = 10
"""USD-M's WebSocket takes 10 incoming messages a second per connection (spot: 5)."""
MAX_STREAMS_PER_CONNECTION = 1024
PING_INTERVAL_S = 180.0
PONG_TIMEOUT_S = 600.0
"""USD-M pings every 3 minutes and drops a connection that has not answered within 10."""


def depth_params(query: Mapping[str, Sequence[str]]) -> tuple[str, int]:
    """(symbol, limit) from a `/fapi/v1/depth` query. A `limit` USD-M does not offer is refused with
    -1130 (the fake's choice of wording; Binance documents the values, not the refusal)."""
    symbols = query.get("symbol") or []
    if not symbols or not symbols[0]:
        raise RestError(400, -1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.")
    raw = (query.get("limit") or [str(DEPTH_DEFAULT_LIMIT)])[0]
    if not re.fullmatch(r"[0-9]{1,20}", raw) or int(raw) not in DEPTH_LIMITS:
        raise RestError(400, -1130, f"Data sent for parameter 'limit' is not valid: one of {list(DEPTH_LIMITS)}.")
    return symbols[0], int(raw)


def request_weight(route: str, query: Mapping[str, Sequence[str]]) -> int:
    if route in (PING_PATH, TIME_PATH, EXCHANGE_INFO_PATH):
        return 1
    if route == DEPTH_PATH:
        raw = (query.get("limit") or [str(DEPTH_DEFAULT_LIMIT)])[0]
        limit = int(raw) if re.fullmatch(r"[0-9]{1,20}", raw) else DEPTH_DEFAULT_LIMIT
        return 2 if limit <= 50 else 5 if limit <= 100 else 10 if limit <= 500 else 20
    if route == BOOK_TICKER_PATH:
        return 2 if "symbol" in query else 5
    return 0


def exchange_info_body(specs: Sequence[SymbolSpec], server_time_ms: int) -> bytes:
    """`/fapi/v1/exchangeInfo` with the fields market loaders read: every recorded symbol, a perpetual."""
    return orjson.dumps(
        {
            "timezone": "UTC",
            "serverTime": server_time_ms,
            "futuresType": "U_MARGINED",
            "rateLimits": [
                {
                    "rateLimitType": "REQUEST_WEIGHT",
                    "interval": "MINUTE",
                    "intervalNum": 1,
                    "limit": REQUEST_WEIGHT_PER_MINUTE,
                },
                {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": 1200},
            ],
            "exchangeFilters": [],
            "assets": [],
            "symbols": [_symbol_entry(spec) for spec in specs],
        }
    )


def _symbol_entry(spec: SymbolSpec) -> dict:
    return {
        "symbol": spec.symbol,
        "pair": spec.symbol,
        "contractType": "PERPETUAL",
        "status": "TRADING",
        "baseAsset": spec.base_asset,
        "quoteAsset": spec.quote_asset,
        "marginAsset": spec.quote_asset,
        "pricePrecision": spec.price_decimals,
        "quantityPrecision": spec.size_decimals,
        "underlyingType": "COIN",
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": spec.tick_size,
                "maxPrice": "1000000.00",
                "tickSize": spec.tick_size,
            },
            {"filterType": "LOT_SIZE", "minQty": spec.step_size, "maxQty": "1000", "stepSize": spec.step_size},
        ],
        "orderTypes": ["LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET"],
        "timeInForce": ["GTC", "IOC", "FOK", "GTX"],
    }


def book_ticker_entry(symbol: str, best_bid: Level | None, best_ask: Level | None, now_ms: int) -> dict:
    bid_price, bid_qty = best_bid or ("0", "0")
    ask_price, ask_qty = best_ask or ("0", "0")
    return {
        "symbol": symbol,
        "bidPrice": bid_price,
        "bidQty": bid_qty,
        "askPrice": ask_price,
        "askQty": ask_qty,
        "time": now_ms,
    }
