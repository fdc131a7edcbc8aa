"""Binance spot WebSocket stream names and URLs, combined-stream framing, and control requests.

Binance wraps every message on a `/stream` connection as `{"stream":"<name>","data":<DATA>}` and sends
DATA alone on a `/ws` connection. Recordings hold the combined form exactly as received, so a raw
client gets DATA sliced out of the recorded bytes: never parsed and re-serialized, so a replayed
frame stays byte-identical to what the venue sent.

Control requests (SUBSCRIBE, UNSUBSCRIBE, LIST_SUBSCRIPTIONS, SET_PROPERTY, GET_PROPERTY) are parsed
here into `ControlRequest`, or rejected with a `ControlError` that carries Binance's error code and
message; the shell only moves the reply bytes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import orjson

RAW_PATH = "/ws"
COMBINED_PATH = "/stream"
MAX_STREAMS_PER_CONNECTION = 1024
MAX_INCOMING_MESSAGES_PER_SECOND = 5
TOO_MANY_REQUESTS_CLOSE = (1008, "Too many requests")

_STREAM_NAME = re.compile(r"^[a-z0-9_\-.!]+@[A-Za-z0-9_@\-.!]+$")
_DEPTH_DIFF = re.compile(r"^[^@]+@depth(@(100|1000)ms)?$")
_STREAM_KEY = b'{"stream":"'
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_METHODS = ("SUBSCRIBE", "UNSUBSCRIBE", "LIST_SUBSCRIPTIONS", "SET_PROPERTY", "GET_PROPERTY")


def depth_stream(symbol: str, speed_ms: int = 100) -> str:
    """The diff-depth stream name: `btcusdt@depth@100ms` (1000 ms is Binance's plain `btcusdt@depth`)."""
    base = f"{symbol.lower()}@depth"
    return base if speed_ms == 1000 else f"{base}@{speed_ms}ms"


def trade_stream(symbol: str) -> str:
    return f"{symbol.lower()}@trade"


def book_streams(symbols: Iterable[str]) -> list[str]:
    """What a syncing order-book client subscribes to: each symbol's `@depth@100ms` and `@trade`, in order."""
    return [name for symbol in symbols for name in (depth_stream(symbol), trade_stream(symbol))]


def book_ticker_stream(symbol: str) -> str:
    """The best bid/ask stream: `btcusdt@bookTicker`, real-time, with the book's update id `u`."""
    return f"{symbol.lower()}@bookTicker"


def combined_url(ws_base: str, streams: Iterable[str]) -> str:
    """The `/stream?streams=a/b` URL under `ws_base` that `parse_ws_path` reads back."""
    return f"{ws_base.rstrip('/')}{COMBINED_PATH}?streams={'/'.join(streams)}"


def symbol_of(stream: str) -> str:
    """`btcusdt@depth@100ms` -> `BTCUSDT`: Binance stream names carry the symbol in lower case."""
    return stream.split("@", 1)[0].upper()


def is_depth_diff(stream: str) -> bool:
    """True for diff-depth streams (`<s>@depth`, `@depth@100ms`); partial-book `@depth20` is not one."""
    return _DEPTH_DIFF.match(stream) is not None


def is_valid_stream_name(name: object) -> bool:
    return isinstance(name, str) and _STREAM_NAME.match(name) is not None


def combined_prefix(stream: str) -> bytes:
    return _STREAM_KEY + stream.encode() + b'","data":'


def wrap_combined(stream: str, data: bytes) -> bytes:
    """The combined-stream message Binance sends for `data` on `stream`, byte for byte."""
    return combined_prefix(stream) + data + b"}"


def raw_data(payload: bytes, stream: str) -> bytes | None:
    """The DATA bytes inside a recorded combined payload, or None when the payload is not in that form.

    None happens for a deliberately corrupted frame; the caller then sends the payload unchanged,
    so the corruption still reaches the client.
    """
    prefix = combined_prefix(stream)
    if payload.startswith(prefix) and payload.endswith(b"}") and len(payload) > len(prefix) + 1:
        return payload[len(prefix) : -1]
    return None


def stream_of(payload: bytes) -> str | None:
    """The `stream` of a combined-stream frame; None for anything else (e.g. a SUBSCRIBE reply).

    Binance puts `stream` first, so the common case is a prefix scan rather than a JSON parse.
    """
    if payload.startswith(_STREAM_KEY):
        end = payload.find(b'"', len(_STREAM_KEY))
        if end > 0:
            return payload[len(_STREAM_KEY) : end].decode("utf-8", "replace")
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    stream = doc.get("stream") if isinstance(doc, dict) else None
    return stream if isinstance(stream, str) else None


@dataclass(frozen=True, slots=True)
class WsPath:
    """A WebSocket endpoint: `combined` selects the `{"stream","data"}` wrapping; `streams` the initial set."""

    combined: bool
    streams: tuple[str, ...]


def unserved_time_unit(path: str) -> str | None:
    """The `timeUnit` a stream URL asks for when it is not milliseconds, else None.

    Recorded frames carry millisecond timestamps and are sent as recorded, never rewritten, so the
    caller refuses such a handshake rather than send a client milliseconds it did not ask for.
    """
    for value in parse_qs(urlsplit(path).query).get("timeUnit", []):
        if value.upper() != "MILLISECOND":
            return value
    return None


def parse_ws_path(path: str) -> WsPath | None:
    """Parses `/ws`, `/ws/<a>/<b>`, `/stream` and `/stream?streams=a/b`; None for any other path.

    Names are kept as given: a name that no recorded stream matches is accepted and simply never
    receives anything, as on Binance.
    """
    parts = urlsplit(path)
    route = parts.path.rstrip("/") or "/"
    if route == RAW_PATH or route.startswith(RAW_PATH + "/"):
        names = [unquote(n) for n in route[len(RAW_PATH) :].split("/") if n]
        return WsPath(False, tuple(dict.fromkeys(names)))
    if route == COMBINED_PATH:
        query = parse_qs(parts.query)
        names = [n for value in query.get("streams", []) for n in value.split("/") if n]
        return WsPath(True, tuple(dict.fromkeys(names)))
    return None


@dataclass(frozen=True, slots=True)
class ControlRequest:
    """A valid control request; `params` are stream names (SUBSCRIBE/UNSUBSCRIBE) or property arguments."""

    method: str
    params: tuple[Any, ...]
    id: int | str | None


class ControlError(Exception):
    """A request Binance would reject; `reply()` is the error message to send back."""

    def __init__(self, code: int, msg: str, request_id: object = None) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.request_id = request_id

    def reply(self) -> bytes:
        return orjson.dumps({"error": {"code": self.code, "msg": self.msg}, "id": self.request_id})


def parse_control(message: str | bytes) -> ControlRequest:
    """Validates a client's control message the way Binance does; raises ControlError otherwise."""
    try:
        request = orjson.loads(message)
    except orjson.JSONDecodeError as exc:
        raise ControlError(3, f"Invalid JSON: {exc}") from None
    if not isinstance(request, dict):
        raise ControlError(3, "Invalid JSON: expected an object")
    request_id = request.get("id")
    method = request.get("method")
    if method is None:
        raise ControlError(2, "Invalid request: missing field `method`", _echo_id(request_id))
    if method not in _METHODS:
        expected = ", ".join(f"`{m}`" for m in _METHODS)
        raise ControlError(
            2, f"Invalid request: unknown variant `{method}`, expected one of {expected}", _echo_id(request_id)
        )
    if "id" not in request or not _valid_id(request_id):
        raise ControlError(2, "Invalid request: request ID must be an unsigned integer", _echo_id(request_id))
    params = request.get("params", [])
    if not isinstance(params, list):
        raise ControlError(2, "Invalid request: params must be an array", request_id)
    if method in ("SUBSCRIBE", "UNSUBSCRIBE"):
        if len(params) > MAX_STREAMS_PER_CONNECTION:
            raise ControlError(2, "Invalid request: too many parameters", request_id)
        for name in params:
            if not is_valid_stream_name(name):
                raise ControlError(2, f"Invalid request: invalid stream name {name!r}", request_id)
    elif method == "SET_PROPERTY":
        if len(params) != 2 or not isinstance(params[0], str):
            raise ControlError(2, "Invalid request: property name must be a string", request_id)
        if params[0] != "combined":
            raise ControlError(0, "Unknown property", request_id)
        if not isinstance(params[1], bool):
            raise ControlError(1, "Invalid value type: expected Boolean", request_id)
    elif method == "GET_PROPERTY":
        if len(params) != 1 or not isinstance(params[0], str):
            raise ControlError(2, "Invalid request: property name must be a string", request_id)
        if params[0] != "combined":
            raise ControlError(0, "Unknown property", request_id)
    return ControlRequest(method, tuple(params), request_id)


def result_reply(request_id: int | str | None, result: object = None) -> bytes:
    """`{"result":null,"id":1}`, or `{"result":[...],"id":3}` for LIST_SUBSCRIPTIONS."""
    return orjson.dumps({"result": result, "id": request_id})


def _valid_id(value: object) -> bool:
    """Binance takes a 64-bit signed integer, a string of at most 36 characters, or null (echoed back as given)."""
    if value is None:
        return True
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return _INT64_MIN <= value <= _INT64_MAX
    return isinstance(value, str) and 0 < len(value) <= 36


def _echo_id(value: object) -> object:
    return value if _valid_id(value) else None


_EVENT_TIME = re.compile(rb'"([ET])":(\d{10,16})')


def shift_event_times(payload: bytes, delta_ms: int) -> bytes:
    """The payload with its event and trade times (`"E"`, `"T"`, epoch milliseconds) moved by `delta_ms`.

    Only for `harness serve --rebase-time`, which a user asks for so that recorded times read as now;
    the digits are replaced in place, every other byte stays as recorded.
    """
    return _EVENT_TIME.sub(lambda m: b'"%s":%d' % (m.group(1), int(m.group(2)) + delta_ms), payload)


def first_event_time_ms(payloads: Iterable[bytes]) -> int | None:
    """The first event time found in `payloads` (the anchor `shift_event_times` moves to now)."""
    for payload in payloads:
        found = _EVENT_TIME.search(payload)
        if found is not None and found.group(1) == b"E":
            return int(found.group(2))
    return None
