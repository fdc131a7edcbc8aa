"""Binance spot REST bodies and errors, for the endpoints order-book clients call.

Pure functions from book state and query parameters to response bytes; the fake server routes and
times requests, this module decides what Binance would answer. Errors are `RestError`s carrying the
HTTP status and Binance's `{"code","msg"}` body, raised by the parameter checks so the shell answers
them as it answers a book.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import orjson

from harness.book_events import DepthSnapshot, Level
from harness.errors import HarnessError

DEPTH_PATH = "/api/v3/depth"
PING_PATH = "/api/v3/ping"
TIME_PATH = "/api/v3/time"
EXCHANGE_INFO_PATH = "/api/v3/exchangeInfo"
BOOK_TICKER_PATH = "/api/v3/ticker/bookTicker"
SYSTEM_STATUS_PATH = "/sapi/v1/system/status"
"""The one sapi endpoint served: clients (ccxt `fetch_status`, python-binance `get_system_status`) call it as a
health check before connecting."""

REQUEST_WEIGHT_PER_MINUTE = 6000
"""Binance spot's REQUEST_WEIGHT limit per IP and minute, as exchangeInfo lists it."""

DEPTH_DEFAULT_LIMIT = 100
DEPTH_MAX_LIMIT = 5000
"""Binance truncates a larger limit to 5000 rather than rejecting it."""

ASSET_PRECISION = 8
SYMBOL_STATUS = "TRADING"
"""Every replayed symbol trades: a recording holds no halts."""
_SYMBOL_STATUSES = ("TRADING", "HALT", "BREAK")
_ZERO = "0." + "0" * ASSET_PRECISION
_SYMBOL = re.compile(r"^[A-Z0-9\-_.]{1,20}$")
_QUOTE_ASSETS = (
    "FDUSD", "USDT", "USDC", "TUSD", "BUSD", "USDP", "DAI", "BTC", "ETH", "BNB", "EUR", "TRY",
    "BRL", "JPY", "GBP", "AUD", "XRP", "DOGE", "TRX", "PLN", "RON", "UAH", "ZAR", "ARS", "MXN",
)  # fmt: skip


class RestError(Exception):
    """An error answer: HTTP `status` with Binance's `{"code":..,"msg":..}` body."""

    def __init__(self, status: int, code: int, msg: str) -> None:
        super().__init__(msg)
        self.status = status
        self.code = code
        self.msg = msg

    def body(self) -> bytes:
        return orjson.dumps({"code": self.code, "msg": self.msg})


def invalid_symbol() -> RestError:
    return RestError(400, -1121, "Invalid symbol.")


def error_for_status(status: int, weight_limit: int = REQUEST_WEIGHT_PER_MINUTE) -> RestError:
    """The body Binance sends with a throttling or server-side failure status (for fault injection); a
    429 names `weight_limit`, the venue's weight a minute (USD-M's is 2,400)."""
    if status == 429:
        return weight_exceeded(weight_limit)
    if status == 418:
        return RestError(
            418, -1003, "Way too much request weight used; IP banned. Please use WebSocket Streams for live updates."
        )
    if status == 503:
        return RestError(
            503, -1008, "Server is currently overloaded with other requests. Please try again in a few minutes."
        )
    if status == 504:
        return RestError(
            504,
            -1007,
            "Timeout waiting for response from backend server. Send status unknown; execution status unknown.",
        )
    if status >= 500:
        return RestError(status, -1001, "Internal error; unable to process your request. Please try again.")
    return RestError(status, -1000, "An unknown error occurred while processing the request.")


def weight_exceeded(limit: int) -> RestError:
    """429: the IP asked for more than `limit` weight this minute (Binance's -1003 wording)."""
    return RestError(
        429,
        -1003,
        f"Too much request weight used; current limit is {limit} request weight per 1 MINUTE. "
        "Please use WebSocket Streams for live updates to avoid polling the API.",
    )


def ip_banned(until_ms: int) -> RestError:
    """418: the IP kept sending after 429s and is banned until `until_ms` (epoch milliseconds)."""
    return RestError(
        418,
        -1003,
        f"Way too much request weight used; IP banned until {until_ms}. "
        "Please use WebSocket Streams for live updates to avoid bans.",
    )


def request_weight(route: str, query: Mapping[str, Sequence[str]]) -> int:
    """The REQUEST_WEIGHT Binance charges for a request, valid or not (0 for a route it does not serve).

    The caller adds it to the weight used in the current minute and reports the total in
    `used_weight_headers`, as Binance does on every response.
    """
    if route in (PING_PATH, TIME_PATH, SYSTEM_STATUS_PATH):
        return 1
    if route == EXCHANGE_INFO_PATH:
        return 20
    if route == DEPTH_PATH:
        raw = (query.get("limit") or [str(DEPTH_DEFAULT_LIMIT)])[0]
        limit = int(raw) if re.fullmatch(r"[0-9]{1,20}", raw) else DEPTH_DEFAULT_LIMIT
        return 5 if limit <= 100 else 25 if limit <= 500 else 50 if limit <= 1000 else 250
    if route == BOOK_TICKER_PATH:
        if "symbol" in query:
            return 2
        symbols = query.get("symbols")
        return 2 if symbols and symbols[0].count(",") < 20 else 4
    return 0


def used_weight_headers(used: int) -> list[tuple[str, str]]:
    """`x-mbx-used-weight` and `x-mbx-used-weight-1m`: the weight used this minute, lower-case as Binance sends them.

    binance-connector's `show_limit_usage` and weight-aware clients read these.
    """
    return [("x-mbx-used-weight", str(used)), ("x-mbx-used-weight-1m", str(used))]


def retry_after_header(seconds: float) -> tuple[str, str]:
    """`Retry-After` on a 429 or 418: whole seconds, rounded up and at least 1, so waiting it out is enough."""
    return ("Retry-After", str(max(1, math.ceil(seconds))))


def ping_body() -> bytes:
    return b"{}"


def system_status_body() -> bytes:
    """`/sapi/v1/system/status` when the venue is up: the fake is never in maintenance."""
    return b'{"status":0,"msg":"normal"}'


def time_body(server_time_ms: int) -> bytes:
    return orjson.dumps({"serverTime": server_time_ms})


def depth_params(query: Mapping[str, Sequence[str]]) -> tuple[str, int]:
    """(symbol, limit) from a `/api/v3/depth` query, checked as Binance checks them."""
    _reject_unknown(query, {"symbol", "limit", "symbolStatus"})
    symbol = _single(query, "symbol")
    if not symbol:
        raise RestError(400, -1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.")
    _check_symbol_chars(symbol, "symbol")
    if _check_symbol_status(query) not in (None, SYMBOL_STATUS):
        raise symbol_status_mismatch()
    raw_limit = _single(query, "limit")
    if raw_limit is None:
        return symbol, DEPTH_DEFAULT_LIMIT
    if not re.fullmatch(r"[0-9]{1,20}", raw_limit):
        raise RestError(400, -1100, "Illegal characters found in parameter 'limit'; legal range is '^[0-9]{1,20}$'.")
    limit = int(raw_limit)
    if limit < 1:
        raise RestError(400, -1130, "Invalid data sent for a parameter.")
    return symbol, min(limit, DEPTH_MAX_LIMIT)


def depth_url(rest_base: str, symbol: str, limit: int) -> str:
    """The `GET /api/v3/depth` URL under `rest_base` that `depth_params` reads back."""
    return f"{rest_base.rstrip('/')}{DEPTH_PATH}?symbol={symbol}&limit={limit}"


def depth_body(last_update_id: int, bids: Sequence[Level], asks: Sequence[Level]) -> bytes:
    """`{"lastUpdateId":N,"bids":[[p,q],..],"asks":[..]}`: pass the best `limit` levels, best first."""
    return orjson.dumps({"lastUpdateId": last_update_id, "bids": bids, "asks": asks})


def depth_snapshot_body(snapshot: DepthSnapshot, limit: int | None = None) -> bytes:
    """`depth_body` for a whole snapshot; `limit` keeps the best `limit` levels per side."""
    return depth_body(snapshot.last_update_id, snapshot.bids[:limit], snapshot.asks[:limit])


@dataclass(frozen=True, slots=True)
class ExchangeInfoQuery:
    """What an exchangeInfo request asks for: `names` None means every symbol (those with `status`, if given)."""

    names: list[str] | None
    status: str | None
    show_permission_sets: bool


def exchange_info_params(query: Mapping[str, Sequence[str]]) -> ExchangeInfoQuery:
    """`symbol=X` or `symbols=["X","Y"]`, or `symbolStatus=S` (not with either), and `showPermissionSets`."""
    _reject_unknown(query, {"symbol", "symbols", "permissions", "showPermissionSets", "symbolStatus"})
    names = _symbols_param(query)
    status = _check_symbol_status(query)
    if status is not None and names is not None:
        raise RestError(400, -1128, "Combination of optional parameters invalid.")
    show = _single(query, "showPermissionSets")
    if show not in (None, "true", "false"):
        raise RestError(400, -1130, "Invalid data sent for a parameter.")
    return ExchangeInfoQuery(names, status, show != "false")


def book_ticker_params(query: Mapping[str, Sequence[str]]) -> list[str] | None:
    """The symbols a `/api/v3/ticker/bookTicker` request names, or None for all of them."""
    _reject_unknown(query, {"symbol", "symbols", "symbolStatus"})
    names = _symbols_param(query)
    status = _check_symbol_status(query)
    if status is not None and status != SYMBOL_STATUS:
        if names is not None:
            raise symbol_status_mismatch()
        return []
    return names


def book_ticker_entry(symbol: str, best_bid: Level | None, best_ask: Level | None) -> dict:
    """One symbol's best bid and ask; an empty side reads as zero price and size, as on Binance."""
    bid_price, bid_qty = best_bid or (_ZERO, _ZERO)
    ask_price, ask_qty = best_ask or (_ZERO, _ZERO)
    return {"symbol": symbol, "bidPrice": bid_price, "bidQty": bid_qty, "askPrice": ask_price, "askQty": ask_qty}


def book_ticker_body(entries: Sequence[dict], single: bool) -> bytes:
    """The object for a `symbol=` request (`single`), otherwise the array of `entries`."""
    return orjson.dumps(entries[0] if single else list(entries))


def symbol_status_mismatch() -> RestError:
    return RestError(400, -1220, "The symbol's status does not match the requested symbolStatus.")


@dataclass(frozen=True, slots=True)
class SymbolSpec:
    """What exchangeInfo says about one symbol; `tick_size`/`step_size` in Binance's 8-decimal form."""

    symbol: str
    base_asset: str
    quote_asset: str
    tick_size: str
    step_size: str
    price_decimals: int
    size_decimals: int


def split_symbol(symbol: str) -> tuple[str, str]:
    """(base, quote) by the longest known quote-asset suffix; a HarnessError when none fits."""
    for quote in sorted(_QUOTE_ASSETS, key=len, reverse=True):
        if symbol.endswith(quote) and len(symbol) > len(quote):
            return symbol[: -len(quote)], quote
    raise HarnessError(f"cannot tell the base asset from the quote asset in symbol {symbol!r}")


def significant_decimals(values: Iterable[str]) -> int:
    """The most decimals any value needs once trailing zeros are dropped (`"1.50000000"` needs 1)."""
    most = 0
    for value in values:
        _, _, fraction = value.partition(".")
        most = max(most, len(fraction.rstrip("0")))
    return most


def symbol_spec(symbol: str, prices: Iterable[str], sizes: Iterable[str]) -> SymbolSpec:
    """A spec whose tick and lot are the finest increments the recorded price and size strings use.

    Derived, not known: a recording that never shows the finest tick gets a coarser one, which
    still accepts every price the replay sends.
    """
    base, quote = split_symbol(symbol)
    price_decimals = significant_decimals(prices)
    size_decimals = significant_decimals(sizes)
    return SymbolSpec(
        symbol=symbol,
        base_asset=base,
        quote_asset=quote,
        tick_size=_increment(price_decimals),
        step_size=_increment(size_decimals),
        price_decimals=price_decimals,
        size_decimals=size_decimals,
    )


def exchange_info_body(specs: Sequence[SymbolSpec], server_time_ms: int, *, show_permission_sets: bool = True) -> bytes:
    """The `/api/v3/exchangeInfo` document for `specs`, with the fields market loaders read."""
    return orjson.dumps(
        {
            "timezone": "UTC",
            "serverTime": server_time_ms,
            "rateLimits": [
                {
                    "rateLimitType": "REQUEST_WEIGHT",
                    "interval": "MINUTE",
                    "intervalNum": 1,
                    "limit": REQUEST_WEIGHT_PER_MINUTE,
                },
                {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
                {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 200000},
                {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 61000},
            ],
            "exchangeFilters": [],
            "symbols": [_symbol_entry(spec, show_permission_sets) for spec in specs],
        }
    )


def _symbol_entry(spec: SymbolSpec, show_permission_sets: bool) -> dict:
    precision = max(ASSET_PRECISION, spec.price_decimals, spec.size_decimals)
    return {
        "symbol": spec.symbol,
        "status": SYMBOL_STATUS,
        "baseAsset": spec.base_asset,
        "baseAssetPrecision": precision,
        "quoteAsset": spec.quote_asset,
        "quotePrecision": precision,
        "quoteAssetPrecision": precision,
        "baseCommissionPrecision": precision,
        "quoteCommissionPrecision": precision,
        "orderTypes": [
            "LIMIT",
            "LIMIT_MAKER",
            "MARKET",
            "STOP_LOSS",
            "STOP_LOSS_LIMIT",
            "TAKE_PROFIT",
            "TAKE_PROFIT_LIMIT",
        ],
        "icebergAllowed": True,
        "ocoAllowed": True,
        "otoAllowed": True,
        "quoteOrderQtyMarketAllowed": True,
        "allowTrailingStop": True,
        "cancelReplaceAllowed": True,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": spec.tick_size,
                "maxPrice": _fixed(1_000_000, precision),
                "tickSize": spec.tick_size,
            },
            {
                "filterType": "LOT_SIZE",
                "minQty": spec.step_size,
                "maxQty": _fixed(9_000, precision),
                "stepSize": spec.step_size,
            },
            {
                "filterType": "NOTIONAL",
                "minNotional": _fixed(5, precision),
                "applyMinToMarket": True,
                "maxNotional": _fixed(9_000_000, precision),
                "applyMaxToMarket": False,
                "avgPriceMins": 5,
            },
        ],
        "permissions": [],
        "permissionSets": [["SPOT"]] if show_permission_sets else [],
        "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
        "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
    }


def _increment(decimals: int) -> str:
    places = max(ASSET_PRECISION, decimals)
    if decimals == 0:
        return _fixed(1, places)
    return "0." + "0" * (decimals - 1) + "1" + "0" * (places - decimals)


def _fixed(whole: int, places: int) -> str:
    return f"{whole}." + "0" * places


def _single(query: Mapping[str, Sequence[str]], name: str) -> str | None:
    values = query.get(name)
    if not values:
        return None
    if len(values) > 1:
        raise RestError(400, -1101, f"Duplicate values for parameter '{name}'.")
    return values[0]


def _symbols_param(query: Mapping[str, Sequence[str]]) -> list[str] | None:
    symbol = _single(query, "symbol")
    symbols = _single(query, "symbols")
    if symbol is not None and symbols is not None:
        raise RestError(400, -1128, "Combination of optional parameters invalid.")
    if symbol is not None:
        _check_symbol_chars(symbol, "symbol")
        return [symbol]
    if symbols is None:
        return None
    try:
        names = orjson.loads(symbols)
    except orjson.JSONDecodeError:
        names = None
    if not isinstance(names, list) or not names or not all(isinstance(n, str) and _SYMBOL.match(n) for n in names):
        raise RestError(400, -1100, "Illegal characters found in parameter 'symbols'.")
    return names


def _check_symbol_status(query: Mapping[str, Sequence[str]]) -> str | None:
    """The `symbolStatus` asked for (None when absent); -1122 for a value Binance does not know.

    The caller compares it with SYMBOL_STATUS: a named symbol that differs is -1220, a listing filters.
    """
    status = _single(query, "symbolStatus")
    if status is None:
        return None
    if status not in _SYMBOL_STATUSES:
        raise RestError(400, -1122, "Invalid symbolStatus.")
    return status


def _check_symbol_chars(symbol: str, name: str) -> None:
    if not _SYMBOL.match(symbol):
        raise RestError(
            400, -1100, f"Illegal characters found in parameter '{name}'; legal range is '^[A-Z0-9-_.]{{1,20}}$'."
        )


def _reject_unknown(query: Mapping[str, Sequence[str]], known: set[str]) -> None:
    sent = sum(len(v) for v in query.values())
    read = sum(len(v) for k, v in query.items() if k in known)
    if read != sent:
        raise RestError(
            400, -1104, f"Not all sent parameters were read; read '{read}' parameter(s) but was sent '{sent}'."
        )
