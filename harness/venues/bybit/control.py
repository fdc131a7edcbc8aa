"""Bybit v5 public control messages, both ends: what a client sends (`op` subscribe, unsubscribe,
ping) and what the venue answers, as pure functions and a per-connection subscription ledger.

Shapes (Bybit v5 docs "Connect", and its real wire): a request is `{"op", "args", "req_id"?}`. The
answer echoes `op` with `success`, `ret_msg` and `conn_id`, and spot and linear differ: linear always
carries `req_id` ("" when the client sent none) and an empty `ret_msg` on success; spot carries
`req_id` only when the client sent one, and its `ret_msg` on success is the op ("subscribe"). A ping
is answered `{"success": true, "ret_msg": "pong", "conn_id", ["req_id",] "op": "ping"}`. Spot takes
at most 10 args per request; every category caps the args of one request at 21,000 characters.

Failure texts Bybit does not document are ours, in Bybit's style (`error:<what>,topic:<topic>`), and
docs/venues.md lists them. A request that fails changes no subscription (all or nothing).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import orjson

from harness.client_state import StepReply, control_reply
from harness.venues.bybit.topics import Category

Op = Literal["subscribe", "unsubscribe", "ping"]
OPS: tuple[Op, ...] = ("subscribe", "unsubscribe", "ping")
SPOT_MAX_ARGS = 10
ARGS_MAX_CHARS = 21_000


@dataclass(frozen=True, slots=True)
class BybitRequest:
    op: Op
    args: tuple[str, ...]
    req_id: str | None = None


@dataclass(frozen=True, slots=True)
class BybitBadRequest:
    """A client message the venue cannot act on; `op` and `req_id` as far as they could be read."""

    reason: str
    op: str = ""
    req_id: str | None = None


def request_frame(op: Op, args: tuple[str, ...] = (), req_id: str | None = None) -> bytes:
    """What a client sends (the recorder and the default subject use it)."""
    message: dict[str, object] = {"op": op}
    if op != "ping":
        message["args"] = list(args)
    if req_id is not None:
        message["req_id"] = req_id
    return orjson.dumps(message)


def parse_request(text: bytes | str) -> BybitRequest | BybitBadRequest:
    try:
        message = orjson.loads(text)
    except orjson.JSONDecodeError:
        return BybitBadRequest("error:request not json")
    if not isinstance(message, dict):
        return BybitBadRequest("error:request not json object")
    op = message.get("op")
    raw_req_id = message.get("req_id")
    req_id = raw_req_id if isinstance(raw_req_id, str) else None
    if op not in OPS:
        return BybitBadRequest(f"error:unknown op {op!r}", op=op if isinstance(op, str) else "", req_id=req_id)
    args = message.get("args", [])
    if op == "ping":
        return BybitRequest("ping", (), req_id)
    if not isinstance(args, list) or not args or not all(isinstance(a, str) and a for a in args):
        return BybitBadRequest("error:args must be a non-empty list of topics", op=op, req_id=req_id)
    return BybitRequest(op, tuple(args), req_id)


def refusal(category: Category, request: BybitRequest, serves: Callable[[str], bool]) -> str | None:
    """Why the venue refuses a (un)subscribe on `category` whatever the connection holds, or None: too
    many topics (spot), too long, or a topic it does not publish (`serves`)."""
    if category == "spot" and len(request.args) > SPOT_MAX_ARGS:
        return f"error:args size >{SPOT_MAX_ARGS}"
    if sum(len(arg) for arg in request.args) > ARGS_MAX_CHARS:
        return f"error:args length >{ARGS_MAX_CHARS}"
    if request.op == "subscribe":
        for topic in request.args:
            if not serves(topic):
                return f"error:handler not found,topic:{topic}"
    return None


def reply(
    category: Category, conn_id: str, op: str, req_id: str | None, *, success: bool = True, ret_msg: str | None = None
) -> bytes:
    """The venue's answer to a subscribe, unsubscribe or ping (see the module docstring)."""
    if ret_msg is None:
        ret_msg = "pong" if op == "ping" else (op if category == "spot" else "")
    message: dict[str, object] = {"success": success, "ret_msg": ret_msg, "conn_id": conn_id}
    if category == "linear" or req_id is not None:
        message["req_id"] = req_id or ""
    message["op"] = op
    return orjson.dumps(message)


def pong(category: Category, conn_id: str, req_id: str | None = None) -> bytes:
    return reply(category, conn_id, "ping", req_id)


@dataclass(slots=True)
class BybitOutcome:
    """What one client message did: the reply to send, then the topics whose snapshot the venue
    must send now (`subscribed`, in request order) and the topics it must stop sending."""

    reply: bytes
    subscribed: tuple[str, ...] = ()
    unsubscribed: tuple[str, ...] = ()


@dataclass(slots=True)
class BybitSubscriptions:
    """One connection's topics. `serves(topic)` says whether the venue publishes a topic at all."""

    category: Category
    conn_id: str
    serves: Callable[[str], bool]
    topics: list[str] = field(default_factory=list)

    def handle(self, text: bytes | str) -> BybitOutcome:
        request = parse_request(text)
        if isinstance(request, BybitBadRequest):
            return BybitOutcome(self._fail(request.op, request.req_id, request.reason))
        if request.op == "ping":
            return BybitOutcome(pong(self.category, self.conn_id, request.req_id))
        problem = self._problem(request)
        if problem is not None:
            return BybitOutcome(self._fail(request.op, request.req_id, problem))
        if request.op == "subscribe":
            self.topics.extend(request.args)
            return BybitOutcome(
                reply(self.category, self.conn_id, "subscribe", request.req_id), subscribed=request.args
            )
        for topic in request.args:
            self.topics.remove(topic)
        return BybitOutcome(
            reply(self.category, self.conn_id, "unsubscribe", request.req_id), unsubscribed=request.args
        )

    def _problem(self, request: BybitRequest) -> str | None:
        problem = refusal(self.category, request, self.serves)
        if problem is not None:
            return problem
        seen: set[str] = set()
        for topic in request.args:
            if topic in seen:
                return f"error:duplicate topic,topic:{topic}"
            seen.add(topic)
            if request.op == "subscribe":
                if topic in self.topics:
                    return f"error:already subscribed,topic:{topic}"
            elif topic not in self.topics:
                return f"error:not subscribed,topic:{topic}"
        return None

    def _fail(self, op: str, req_id: str | None, reason: str) -> bytes:
        return reply(self.category, self.conn_id, op, req_id, success=False, ret_msg=reason)


REQ_ID_PREFIX = "harness-sub-"


@dataclass(slots=True)
class BybitSubscribe:
    """The client's subscription step (harness/client_state.py `SessionStep`): `topics` in requests of
    at most 10 (spot's limit, fine on linear too), each with its own `req_id`; acked when the last
    request's ack arrives (Bybit answers in order), rejected by any failure answer to one of them.
    Sent again on every new connection, which is also how a Bybit client gets fresh snapshots."""

    topics: tuple[str, ...]
    timeout_s: float = 10.0

    def __post_init__(self) -> None:
        if not self.topics:
            raise ValueError("a subscribe step needs at least one topic")

    def messages(self) -> Sequence[str]:
        chunks = [self.topics[i : i + SPOT_MAX_ARGS] for i in range(0, len(self.topics), SPOT_MAX_ARGS)]
        # As str: the client sends text frames, the only kind Bybit (and the fake venue) takes requests in.
        return [request_frame("subscribe", chunk, f"{REQ_ID_PREFIX}{n}").decode() for n, chunk in enumerate(chunks, 1)]

    def classify(self, payload: bytes) -> StepReply:
        # Acks carry "op"; book frames do not.
        answer = control_reply(payload, b'"op"')
        if answer is None or answer.get("op") != "subscribe":
            return StepReply.OTHER
        req_id = answer.get("req_id")
        if not (isinstance(req_id, str) and req_id.startswith(REQ_ID_PREFIX)):
            return StepReply.OTHER
        if answer.get("success") is not True:
            return StepReply.REJECTED
        last = f"{REQ_ID_PREFIX}{(len(self.topics) + SPOT_MAX_ARGS - 1) // SPOT_MAX_ARGS}"
        return StepReply.ACK if req_id == last else StepReply.OTHER
