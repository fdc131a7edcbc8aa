"""The client's side of an OKX subscription: one `subscribe` message, done when every arg is acked.

A `SessionStep` (harness/client_state.py) for our reconnecting client, the recorder and the default
subject: sent again on every new connection, so a reconnect resubscribes (and OKX sends a new
snapshot). OKX acks each arg on its own (`{"event":"subscribe","arg":{...}}`); an `{"event":"error"}`
(60012 bad request, 60018 unknown instrument) rejects the step.

`KEEPALIVE` is the text `ping` every 20 s: OKX closes a connection it has received nothing from for
30 s (harness/venues/okx/wire.py `IDLE_CLOSE`), so a client whose subscription is quiet must ping.
"""

from __future__ import annotations

from collections.abc import Sequence

import orjson

from harness.client_state import AppKeepalive, StepReply, control_reply
from harness.venues.okx.channels import BOOKS, split_stream

KEEPALIVE = AppKeepalive("ping", 20.0)


def resubscribe_books(inst_id: str) -> tuple[str, str]:
    """`books:<inst_id>` unsubscribed and subscribed again on the open connection: OKX answers the
    subscribe with a new snapshot (its docs' way to recover from a broken `seqId` chain or a checksum
    mismatch), and the connection's other instruments go on undisturbed."""
    args = [{"channel": BOOKS, "instId": inst_id}]
    unsubscribe = orjson.dumps({"op": "unsubscribe", "args": args}).decode()
    return unsubscribe, orjson.dumps({"op": "subscribe", "args": args}).decode()


class OkxSubscribe:
    """Subscribes to `streams` (`books:BTC-USDT`, ...); waits for an ack of each."""

    __slots__ = ("_args", "_pending", "timeout_s")

    def __init__(self, streams: Sequence[str], timeout_s: float = 10.0) -> None:
        args = []
        for stream in dict.fromkeys(streams):
            named = split_stream(stream)
            if named is None:
                raise ValueError(f"not an OKX stream key: {stream!r}")
            args.append(named)
        if not args:
            raise ValueError("an OKX subscription needs at least one stream")
        self._args = tuple(args)
        self._pending: set[tuple[str, str]] = set()
        self.timeout_s = timeout_s

    def messages(self) -> Sequence[str]:
        self._pending = set(self._args)
        args = [{"channel": channel, "instId": inst_id} for channel, inst_id in self._args]
        # Text, not bytes: a binary frame is not a control message (the venue closes it with 1003).
        return (orjson.dumps({"op": "subscribe", "args": args}).decode(),)

    def classify(self, payload: bytes) -> StepReply:
        # Acks and errors carry "event" (data frames start with "arg").
        reply = control_reply(payload, b'"event"')
        if reply is None:
            return StepReply.OTHER
        event = reply.get("event")
        if event == "error":
            return StepReply.REJECTED
        arg = reply.get("arg")
        if event != "subscribe" or not isinstance(arg, dict):
            return StepReply.OTHER
        self._pending.discard((arg.get("channel"), arg.get("instId")))
        return StepReply.OTHER if self._pending else StepReply.ACK
