"""What an OKX client sends and what OKX answers, as pure functions: the fake venue's side of the wire.

From OKX's v5 docs and real replies: a client sends `{"op":"subscribe"|"unsubscribe","args":[{"channel":
"books","instId":"BTC-USDT"},...]}` (an optional `id` is echoed); OKX acks each arg on its own,
`{"event":"subscribe","arg":{...},"connId":".."}`. A bad request is `{"event":"error","code":"60012",
"msg":"Invalid request: <the text>","connId":".."}`; an unknown channel or instrument is code 60018,
"Wrong URL or channel:<channel>,instId:<instId> doesn't exist. ...". The text `ping` is answered with
the text `pong`; a connection with no message for 30 seconds is closed by OKX, so clients ping. A new
`books` subscriber first gets an `action: snapshot` message of the venue's current book
(encoder.snapshot_message), then the updates after it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import orjson

from harness.venues.okx.channels import stream_key

IDLE_CLOSE_S = 30.0
"""OKX closes a connection that received nothing for this long (no data pushed, no pong)."""
PING = "ping"
PONG = b"pong"
INVALID_REQUEST = "60012"
NO_SUCH_CHANNEL = "60018"

Op = Literal["subscribe", "unsubscribe"]


@dataclass(frozen=True, slots=True)
class Ping:
    """The text `ping`; the answer is `PONG`."""


@dataclass(frozen=True, slots=True)
class Subscription:
    """A valid subscribe or unsubscribe: `args` as sent (each `{"channel", "instId"}`), `streams` their keys."""

    op: Op
    args: tuple[dict[str, str], ...]
    streams: tuple[str, ...]
    request_id: str | None = None


@dataclass(frozen=True, slots=True)
class Rejected:
    """A message OKX answers with an error and otherwise ignores; `reply` is that error."""

    reply: bytes


def parse_request(message: str | bytes, conn_id: str) -> Ping | Subscription | Rejected:
    """A client message as OKX reads it. Channels other than the book channels are accepted too (a
    venue accepts `trades`), so a recording's other streams can be served."""
    text = message.decode("utf-8", "replace") if isinstance(message, bytes) else message
    if text == PING:
        return Ping()
    try:
        doc = orjson.loads(text)
    except orjson.JSONDecodeError:
        return Rejected(error_reply(INVALID_REQUEST, f"Invalid request: {text}", conn_id))
    if not isinstance(doc, dict) or doc.get("op") not in ("subscribe", "unsubscribe"):
        return Rejected(error_reply(INVALID_REQUEST, f"Invalid request: {text}", conn_id, _id_of(doc)))
    args = doc.get("args")
    if not isinstance(args, list) or not args or not all(_is_arg(arg) for arg in args):
        return Rejected(error_reply(INVALID_REQUEST, f"Invalid request: {text}", conn_id, _id_of(doc)))
    kept = tuple({"channel": arg["channel"], "instId": arg["instId"]} for arg in args)
    streams = tuple(dict.fromkeys(stream_key(arg["channel"], arg["instId"]) for arg in kept))
    return Subscription(doc["op"], kept, streams, _id_of(doc))


def acks(subscription: Subscription, conn_id: str) -> list[bytes]:
    """One ack per arg, in the order sent."""
    replies = []
    for arg in subscription.args:
        reply: dict[str, Any] = {}
        if subscription.request_id is not None:
            reply["id"] = subscription.request_id
        reply.update(event=subscription.op, arg=arg, connId=conn_id)
        replies.append(orjson.dumps(reply))
    return replies


def no_such_channel(channel: str, inst_id: str, conn_id: str) -> bytes:
    """OKX's answer to a subscription to an instrument it does not list."""
    msg = (
        f"Wrong URL or channel:{channel},instId:{inst_id} doesn't exist. "
        "Please use the correct URL, channel and parameters referring to API document."
    )
    return orjson.dumps({"event": "error", "msg": msg, "code": NO_SUCH_CHANNEL, "connId": conn_id})


def error_reply(code: str, msg: str, conn_id: str, request_id: str | None = None) -> bytes:
    reply: dict[str, Any] = {}
    if request_id is not None:
        reply["id"] = request_id
    reply.update(event="error", code=code, msg=msg, connId=conn_id)
    return orjson.dumps(reply)


def _is_arg(arg: object) -> bool:
    return (
        isinstance(arg, dict)
        and isinstance(arg.get("channel"), str)
        and isinstance(arg.get("instId"), str)
        and bool(arg["channel"])
        and bool(arg["instId"])
    )


def _id_of(doc: object) -> str | None:
    if isinstance(doc, dict) and isinstance(doc.get("id"), str):
        return doc["id"]
    return None
