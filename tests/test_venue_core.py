"""The fake venue's pure core: control messages, REST, limits, fault countdowns and slow consumers, with
time passed in. No socket and no clock here (tests/test_server.py proves the shell's wiring)."""

from __future__ import annotations

import itertools
from itertools import islice
from typing import Literal

import orjson
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from harness.venues.binance_spot.wire import WIRE, BinanceSpotWire
from harness.venues.okx.wire import WIRE as OKX_WIRE
from harness.venues.wire import Books, ConnectionState, Control, ControlRejected, Reply
from replayer.reference_book import ReferenceBook
from replayer.replay_data import ReplayData, VenueBooks, apply_depth, load_replay_data
from replayer.request_weight import IGNORED_429S_BEFORE_BAN, MINUTE_NS
from replayer.timeline import (
    ClientBufferLimit,
    Disconnect,
    FaultTag,
    HalfOpen,
    RefuseHandshakes,
    RestBehaviour,
    Send,
    Stall,
    TimelineEntry,
    Withheld,
)
from replayer.venue_actions import (
    Abort,
    Action,
    CheckBacklog,
    ClockStarted,
    Close,
    HttpAnswer,
    Pause,
    Resume,
    Wait,
    Write,
)
from replayer.venue_core import SLOW_CONSUMER_GRACE_NS, VenueCore
from replayer.venue_limits import BINARY_MESSAGE_CLOSE, DEFAULT_MAX_BACKLOG_BYTES, VenueLimits
from tests.depth_helpers import can_straddle
from tests.venue_recording import DEPTH, TRADE, build_recording

NOW = 10**12
"""The shell's monotonic clock when a test starts; later instants are offsets from it."""
WALL = 1_700_000_000 * 10**9
PEER = ("127.0.0.1", 50_000)
COMBINED = f"/stream?streams={DEPTH}/{TRADE}"
LATER = 3600 * 10**9


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> ReplayData:
    return load_replay_data(build_recording(tmp_path_factory.mktemp("core") / "rec").path)


def venue(data: ReplayData, schedule: list[TimelineEntry] | None = None, **kwargs: object) -> VenueCore:
    return VenueCore(data, WIRE, schedule=schedule, started_ns=NOW, **kwargs)  # type: ignore[arg-type]


def parked(data: ReplayData, sent: int, *controls: TimelineEntry) -> list[TimelineEntry]:
    """The first `sent` frames, then `controls`, then the rest far later."""
    head = [Send(0, f, f.payload) for f in data.frames[:sent]]
    tail = [Send(LATER, f, f.payload) for f in data.frames[sent:]]
    return [*head, *controls, *tail]


def walk(core: VenueCore, count: int | None = None, at: int = NOW) -> list[Action]:
    """Hands the core its next `count` entries (all when None) as if each were due at `at`."""
    done = core.stats.entries_walked
    entries = islice(core.schedule, done, None if count is None else done + count)
    actions: list[Action] = []
    for entry in entries:
        actions += core.entry(entry, at)
    return actions


def written(core: VenueCore, actions: list[Action]) -> list[Action]:
    """Reports every recorded frame among `actions` as handed to its socket, as the shell's writer does."""
    for action in actions:
        if isinstance(action, Write) and action.entry is not None:
            core.written(action.conn, [action], NOW)
    return actions


def payloads(actions: list[Action], conn: int | None = None) -> list[bytes]:
    return [a.payload for a in actions if isinstance(a, Write) and (conn is None or a.conn == conn)]


def ask(core: VenueCore, message: object, conn: int = 1, at: int = NOW) -> list[object]:
    """Sends a control message (a dict as JSON, a str as is) and returns the parsed replies."""
    text = message if isinstance(message, str) else orjson.dumps(message).decode()
    return [orjson.loads(p) for p in payloads(core.receive(conn, text, at, WALL))]


def get(core: VenueCore, target: str, at: int = NOW, ip: str = "127.0.0.1") -> tuple[int, dict[str, str], bytes]:
    answer = core.http_request(target, False, ip, at, WALL)
    assert isinstance(answer, HttpAnswer)
    if answer.snapshot is not None:
        core.snapshot_delivered(answer.snapshot, at)
    reply = answer.reply
    return reply.status, {name.lower(): value for name, value in reply.headers}, reply.body


def depth_frames(data: ReplayData) -> list:
    return [f for f in data.frames if f.last_update_id is not None]


# Connections and control messages.


def test_subscribe_list_unsubscribe_properties_and_errors(data: ReplayData) -> None:
    core = venue(data, limits=VenueLimits.of(WIRE).but(messages_per_second=None))
    conn, actions = core.open("/ws", PEER, NOW, WALL)
    assert not any(isinstance(a, ClockStarted) for a in actions)
    assert ask(core, {"method": "LIST_SUBSCRIPTIONS", "id": 3}) == [{"result": [], "id": 3}]
    assert core.clock_start_ns is None

    actions = core.receive(conn, orjson.dumps({"method": "SUBSCRIBE", "params": [TRADE], "id": 1}).decode(), 5, WALL)
    assert [orjson.loads(p) for p in payloads(actions)] == [{"result": None, "id": 1}]
    assert ClockStarted(5) in actions and core.sessions == [WALL]
    assert ask(core, {"method": "LIST_SUBSCRIPTIONS", "id": 3}) == [{"result": [TRADE], "id": 3}]
    sent = written(core, walk(core))
    trades = payloads(sent, conn)
    assert trades and all(orjson.loads(p)["e"] == "trade" for p in trades)  # raw: the data part only
    assert ask(core, {"method": "UNSUBSCRIBE", "params": [TRADE], "id": 312}) == [{"result": None, "id": 312}]
    assert ask(core, {"method": "LIST_SUBSCRIPTIONS", "id": 4}) == [{"result": [], "id": 4}]

    assert ask(core, {"method": "SET_PROPERTY", "params": ["combined", True], "id": 5}) == [{"result": None, "id": 5}]
    assert ask(core, {"method": "GET_PROPERTY", "params": ["combined"], "id": 2}) == [{"result": True, "id": 2}]
    (error,) = ask(core, "{not json")
    assert error["error"]["code"] == 3 and error["id"] is None  # type: ignore[index]
    (error,) = ask(core, {"method": "SUBSCRIBE!", "params": [], "id": 9})
    assert error["error"]["code"] == 2 and error["id"] == 9  # type: ignore[index]
    assert error["error"]["msg"].startswith("Invalid request: unknown variant")  # type: ignore[index]
    assert ask(core, {"method": "LIST_SUBSCRIPTIONS", "id": None}) == [{"result": [], "id": None}]
    assert ask(core, {"method": "SUBSCRIBE", "params": [TRADE], "id": "x" * 40}) == [
        {"error": {"code": 2, "msg": "Invalid request: request ID must be an unsigned integer"}, "id": None}
    ]


_STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("open"), st.sampled_from(["/ws", f"/ws/{DEPTH}", COMBINED, f"/stream?streams={TRADE}"])),
        st.tuples(st.sampled_from(["SUBSCRIBE", "UNSUBSCRIBE"]), st.integers(0, 3), st.sampled_from([DEPTH, TRADE])),
        st.tuples(st.sampled_from(["close", "silence"]), st.integers(0, 3)),
        st.tuples(st.just("walk"), st.integers(1, 6)),
    ),
    max_size=25,
)


@settings(max_examples=60, deadline=None)
@given(steps=_STEPS)
@example(  # each change of who holds a stream, between frames of the stream
    steps=[("open", "/ws"), ("walk", 4), ("SUBSCRIBE", 0, DEPTH), ("SUBSCRIBE", 0, TRADE), ("walk", 6),
           ("open", COMBINED), ("walk", 4), ("UNSUBSCRIBE", 0, DEPTH), ("walk", 6), ("close", 1), ("walk", 6),
           ("silence", 0), ("walk", 4), ("open", f"/ws/{DEPTH}"), ("walk", 6)]
)  # fmt: skip
def test_each_frame_goes_to_the_connections_listening_to_its_stream_as_they_change(
    data: ReplayData, steps: list[tuple]
) -> None:
    """The core keeps who holds a stream between frames (it changes only when a connection opens, closes
    or changes its streams); walked between such changes, every frame reaches exactly the connections a
    plain model says hold its stream and still listen, framed for each."""
    core = venue(data, limits=VenueLimits.of(WIRE).but(messages_per_second=None))
    model: dict[int, set[str]] = {}
    silent: set[int] = set()
    walked = 0
    for step in steps:
        conns = sorted(model)
        if step[0] == "open":
            conn, _ = core.open(step[1], PEER, NOW, WALL)
            model[conn] = {name for name in (DEPTH, TRADE) if name in step[1]}
        elif step[0] == "walk":
            for entry in islice(core.schedule, walked, walked + step[1]):
                walked += 1
                assert isinstance(entry, Send)
                got = {a.conn: a.payload for a in core.entry(entry, NOW) if isinstance(a, Write)}
                listening = {c for c in conns if entry.frame.stream in model[c] and c not in silent}
                assert set(got) == listening
                for conn in listening:
                    framing = "combined" if core.clients[conn].path.startswith("/stream") else "raw"
                    assert got[conn] == WIRE.frame(entry.frame.stream, entry.payload, framing)
        elif conns:
            conn = conns[step[1] % len(conns)]
            if step[0] == "close":
                core.closed(conn, NOW)
                del model[conn]
            elif step[0] == "silence":
                core.entry(HalfOpen(0), NOW)
                silent.update(conns)
            elif conn not in silent:
                message = orjson.dumps({"method": step[0], "params": [step[2]], "id": 1}).decode()
                core.receive(conn, message, NOW, WALL)
                (model[conn].add if step[0] == "SUBSCRIBE" else model[conn].discard)(step[2])


def test_raw_and_combined_framing_of_the_same_recorded_frame(data: ReplayData) -> None:
    core = venue(data)
    raw, _ = core.open(f"/ws/{DEPTH}", PEER, NOW, WALL)
    combined, _ = core.open(COMBINED, PEER, NOW, WALL)
    actions = walk(core)
    expected = [f.payload for f in data.frames]
    assert payloads(actions, combined) == expected
    prefix = b'{"stream":"' + DEPTH.encode() + b'","data":'
    assert payloads(actions, raw) == [p[len(prefix) : -1] for p in expected if p.startswith(prefix)]


def test_a_path_naming_no_recorded_stream_is_accepted_and_gets_nothing(data: ReplayData) -> None:
    core = venue(data)
    _, actions = core.open("/ws/ethusdt@depth", PEER, NOW, WALL)
    notes = [a.line for a in actions if hasattr(a, "line")]
    assert any("ethusdt@depth not in the recording" in line for line in notes)
    assert ClockStarted(NOW) in actions  # a subscription, even to nothing recorded, starts the clock
    assert payloads(walk(core)) == []
    assert ask(core, {"method": "LIST_SUBSCRIPTIONS", "id": 1}) == [{"result": ["ethusdt@depth"], "id": 1}]


def test_paths_the_venue_does_not_serve_are_refused_before_the_handshake(data: ReplayData) -> None:
    core = venue(data)
    assert get(core, "/nowhere")[0] == 404
    status, _, body = get(core, f"/ws/{DEPTH}?timeUnit=MICROSECOND")
    assert status == 400 and "timeUnit=MICROSECOND" in orjson.loads(body)["msg"]
    assert core.http_request(f"/stream?streams={DEPTH}&timeUnit=millisecond", True, "", NOW, WALL) is None
    with pytest.raises(ValueError, match="not a WebSocket path"):
        core.open("/nowhere", PEER, NOW, WALL)


# Limits.


def test_a_sixth_message_within_a_sliding_second_cuts_the_client_off_with_1008(data: ReplayData) -> None:
    core = venue(data)
    conn, _ = core.open("/ws", PEER, NOW, WALL)
    for k in range(5):
        assert ask(core, {"method": "LIST_SUBSCRIPTIONS", "id": k}, at=NOW + k * 100_000_000) == [
            {"result": [], "id": k}
        ]
    message = orjson.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 6}).decode()
    assert core.receive(conn, message, NOW + 999_999_999, WALL) == [Close(conn, 1008, "Too many requests", True)]
    assert core.stats.too_many_requests == 1 and core.clients[conn].close_cause == "too_many_requests"

    calm = venue(data)
    conn, _ = calm.open("/ws", PEER, NOW, WALL)
    for k in range(10):  # two a second never trips it
        assert len(ask(calm, {"method": "LIST_SUBSCRIPTIONS", "id": k}, at=NOW + k * 500_000_000)) == 1


def test_streams_per_connection_past_the_limit_are_refused_and_kept_as_they_were(data: ReplayData) -> None:
    core = venue(data, limits=VenueLimits.of(WIRE).but(streams_per_connection=3, messages_per_second=None))
    core.open(f"/ws/{DEPTH}/{TRADE}", PEER, NOW, WALL)
    assert ask(core, {"method": "SUBSCRIBE", "params": ["a@trade", DEPTH], "id": 1}) == [{"result": None, "id": 1}]
    (error,) = ask(core, {"method": "SUBSCRIBE", "params": ["b@trade"], "id": 2})
    assert error == {
        "error": {"code": 2, "msg": "Invalid request: too many streams for one connection (at most 3)"},
        "id": 2,
    }
    assert ask(core, {"method": "LIST_SUBSCRIPTIONS", "id": 3}) == [{"result": [DEPTH, TRADE, "a@trade"], "id": 3}]
    assert core.stats.streams_refused == 1
    answer = core.http_request("/ws/a@t/b@t/c@t/d@t", True, "", NOW, WALL)
    assert answer is not None and answer.reply.status == 400
    assert core.http_request("/ws/a@t/b@t/c@t", True, "", NOW, WALL) is None


def test_connections_past_the_limit_get_503_and_a_race_past_it_is_closed_with_1013(data: ReplayData) -> None:
    core = venue(data, limits=VenueLimits.of(WIRE).but(max_connections=2))
    first, _ = core.open("/ws", PEER, NOW, WALL)
    assert core.http_request("/ws", True, "", NOW, WALL) is None
    core.open("/ws", PEER, NOW, WALL)
    answer = core.http_request("/ws", True, "", NOW, WALL)
    assert answer is not None and answer.reply.status == 503
    assert orjson.loads(answer.reply.body)["code"] == -1008
    assert get(core, "/api/v3/ping")[0] == 200  # REST is not a connection
    late, actions = core.open("/ws", PEER, NOW, WALL)  # two handshakes in flight at once
    assert Close(late, 1013, "Try again later: too many connections", True) in actions
    assert core.clients[late].close_cause == "too_many_connections"
    core.closed(late, NOW)
    core.closed(first, NOW)
    assert core.http_request("/ws", True, "", NOW, WALL) is None
    assert core.stats.connections_refused == 2


def test_limits_are_checked_and_default_to_the_venue_s_own() -> None:
    limits = VenueLimits.of(WIRE)
    assert (limits.messages_per_second, limits.streams_per_connection, limits.rest_weight_per_minute) == (5, 1024, 6000)
    assert limits.max_frame_bytes == 64 * 1024 and limits.max_connections == 1000
    with pytest.raises(ValueError, match="max_connections"):
        limits.but(max_connections=0)
    with pytest.raises(ValueError, match="rest_weight_per_minute"):
        limits.but(rest_weight_per_minute=-1)
    assert limits.but(max_frame_bytes=None).max_frame_bytes is None


# REST.


def test_rest_endpoints_their_errors_and_counts(data: ReplayData) -> None:
    core = venue(data)
    assert get(core, "/api/v3/ping")[::2] == (200, b"{}")
    status, _, body = get(core, "/api/v3/time")
    assert status == 200 and orjson.loads(body) == {"serverTime": WALL // 1_000_000}
    status, _, body = get(core, "/api/v3/exchangeInfo?symbol=BTCUSDT")
    (symbol,) = orjson.loads(body)["symbols"]
    filters = {f["filterType"]: f for f in symbol["filters"]}
    assert (symbol["symbol"], symbol["status"], symbol["baseAsset"], symbol["quoteAsset"]) == (
        "BTCUSDT",
        "TRADING",
        "BTC",
        "USDT",
    )
    assert filters["PRICE_FILTER"]["tickSize"] == "0.01000000" and filters["LOT_SIZE"]["stepSize"] == "0.00100000"
    assert [s["symbol"] for s in orjson.loads(get(core, "/api/v3/exchangeInfo")[2])["symbols"]] == ["BTCUSDT"]

    status, _, body = get(core, "/api/v3/depth?symbol=BTCUSDT&limit=3")
    depth = orjson.loads(body)
    assert status == 200 and len(depth["bids"]) == len(depth["asks"]) == 3
    first = depth_frames(data)[0]
    assert first.first_update_id <= depth["lastUpdateId"] < first.last_update_id  # inside the next event
    invalid = b'{"code":-1121,"msg":"Invalid symbol."}'
    assert get(core, "/api/v3/depth?symbol=ETHUSDT")[::2] == (400, invalid)
    assert get(core, "/api/v3/exchangeInfo?symbol=ETHUSDT")[::2] == (400, invalid)
    assert orjson.loads(get(core, "/api/v3/depth?symbol=BTCUSDT&limit=abc")[2])["code"] == -1100
    assert orjson.loads(get(core, "/api/v3/depth")[2])["code"] == -1102
    assert get(core, "/api/v3/klines")[0] == 404
    assert (core.stats.rest_requests["depth:400"], core.stats.rest_requests["depth:200"]) == (3, 1)
    assert core.stats.rest_requests["klines:404"] == 1
    assert [s.last_update_id for s in core.snapshots_served] == [depth["lastUpdateId"]]


def test_every_answer_reports_the_weight_used_this_minute(data: ReplayData) -> None:
    core = venue(data)
    used = 0
    for target, weight in [
        ("/api/v3/ping", 1),
        ("/api/v3/depth?symbol=BTCUSDT&limit=500", 25),
        ("/api/v3/exchangeInfo", 20),
        ("/api/v3/depth?symbol=ETHUSDT", 5),
        ("/api/v3/ticker/bookTicker?symbol=BTCUSDT", 2),
        ("/sapi/v1/system/status", 1),
    ]:
        _, headers, _ = get(core, target)
        used += weight
        assert headers["x-mbx-used-weight-1m"] == headers["x-mbx-used-weight"] == str(used), target
    _, headers, _ = get(core, "/api/v3/ping", at=NOW + MINUTE_NS)
    assert headers["x-mbx-used-weight-1m"] == "1"  # a new minute


@pytest.mark.parametrize("speed", [1.0, 8.0])
def test_weight_past_the_limit_is_refused_with_429_then_banned_with_418(data: ReplayData, speed: float) -> None:
    """Binance's answers as documented, on the replay clock: at speed 8 a 2-minute ban is 15 s of wall time."""
    core = venue(data, speed=speed, limits=VenueLimits.of(WIRE).but(rest_weight_per_minute=1000))
    deep = "/api/v3/depth?symbol=BTCUSDT&limit=5000"
    answers = [get(core, deep, at=NOW + k) for k in range(4 + 1 + IGNORED_429S_BEFORE_BAN)]
    assert [status for status, _, _ in answers] == [200] * 4 + [429] * IGNORED_429S_BEFORE_BAN + [418]
    _, headers, body = answers[4]
    assert headers["x-mbx-used-weight-1m"] == "1250" and headers["retry-after"] == str(round(60 / speed))
    assert orjson.loads(body) == {
        "code": -1003,
        "msg": "Too much request weight used; current limit is 1000 request weight per 1 MINUTE. "
        "Please use WebSocket Streams for live updates to avoid polling the API.",
    }
    _, headers, body = answers[-1]
    ban_s = 120 / speed
    assert headers["retry-after"] == str(round(ban_s))
    assert f"IP banned until {WALL // 1_000_000 + round(ban_s * 1000)}." in orjson.loads(body)["msg"]
    assert get(core, "/api/v3/ping", at=NOW + 10)[0] == 418  # banned from every endpoint
    assert get(core, "/api/v3/ping", ip="10.0.0.2")[0] == 200  # per IP
    assert (core.weight.refused_429, core.weight.refused_418, core.weight.bans) == (IGNORED_429S_BEFORE_BAN, 2, 1)
    assert core.stats.rest_requests["depth:418"] == 1 and len(core.snapshots_served) == 4
    assert get(core, deep, at=NOW + round(2 * MINUTE_NS / speed) + 10)[0] == 200  # the ban is over

    relaxed = venue(data, limits=VenueLimits.of(WIRE).but(rest_weight_per_minute=0))
    assert {get(relaxed, deep)[0] for _ in range(30)} == {200}
    assert relaxed.weight.peak_per_minute == 30 * 250


def test_book_ticker_and_system_status_answer_from_the_current_position(data: ReplayData) -> None:
    core = venue(data, parked(data, 6), straddle=False)
    walk(core, 6)
    depth = orjson.loads(get(core, "/api/v3/depth?symbol=BTCUSDT&limit=1")[2])
    sent_depth = [f for f in data.frames[:6] if f.last_update_id is not None]
    assert depth["lastUpdateId"] == sent_depth[-1].last_update_id != data.start_books["BTCUSDT"].last_update_id
    status, _, body = get(core, "/api/v3/ticker/bookTicker?symbol=BTCUSDT")
    assert status == 200
    assert orjson.loads(body) == {
        "symbol": "BTCUSDT",
        "bidPrice": depth["bids"][0][0],
        "bidQty": depth["bids"][0][1],
        "askPrice": depth["asks"][0][0],
        "askQty": depth["asks"][0][1],
    }
    assert orjson.loads(get(core, "/api/v3/ticker/bookTicker")[2]) == [orjson.loads(body)]
    assert orjson.loads(get(core, '/api/v3/ticker/bookTicker?symbols=["BTCUSDT"]')[2]) == [orjson.loads(body)]
    assert get(core, "/api/v3/ticker/bookTicker?symbolStatus=HALT")[::2] == (200, b"[]")
    status, _, body = get(core, "/api/v3/ticker/bookTicker?symbol=ETHUSDT")
    assert (status, orjson.loads(body)["code"]) == (400, -1121)
    assert get(core, "/sapi/v1/system/status")[::2] == (200, b'{"status":0,"msg":"normal"}')
    assert get(core, "/sapi/v1/capital/config/getall")[0] == 404


def test_symbol_status_and_permission_set_parameters(data: ReplayData) -> None:
    core = venue(data)
    status, _, body = get(core, "/api/v3/depth?symbol=BTCUSDT&limit=5&symbolStatus=TRADING")
    assert status == 200 and len(orjson.loads(body)["bids"]) == 5
    status, _, body = get(core, "/api/v3/depth?symbol=BTCUSDT&symbolStatus=HALT")
    assert (status, orjson.loads(body)["code"]) == (400, -1220)
    status, _, body = get(core, "/api/v3/exchangeInfo?symbolStatus=TRADING")
    assert status == 200 and [s["symbol"] for s in orjson.loads(body)["symbols"]] == ["BTCUSDT"]
    assert orjson.loads(get(core, "/api/v3/exchangeInfo?symbolStatus=BREAK")[2])["symbols"] == []
    status, _, body = get(core, "/api/v3/exchangeInfo?symbol=BTCUSDT&symbolStatus=TRADING")
    assert (status, orjson.loads(body)["code"]) == (400, -1128)
    body = get(core, "/api/v3/exchangeInfo?showPermissionSets=false")[2]
    assert orjson.loads(body)["symbols"][0]["permissionSets"] == []


@pytest.mark.parametrize("straddle", [True, False])
@pytest.mark.parametrize(("mode", "shift"), [("normal", 0), ("stale", -3), ("too_new", 3), ("slow", 0)])
def test_rest_behaviours_answer_from_the_expected_position(
    data: ReplayData, mode: Literal["normal", "stale", "too_new", "slow"], shift: int, straddle: bool
) -> None:
    """Each answer is the venue's book `shift` events from the frames sent; straddling, it lies inside the
    event after that point, and applying the event over it gives the book at the event's end."""
    sent = 12
    depth = depth_frames(data)
    sent_depth = len([f for f in data.frames[:sent] if f.last_update_id is not None])
    behaviour = RestBehaviour(0, mode, count=1, lag_frames=3, delay_ns=50_000_000)
    core = venue(data, parked(data, sent, behaviour), straddle=straddle, seed=5, speed=2.0)
    walk(core, sent + 1)
    target = "/api/v3/depth?symbol=BTCUSDT&limit=5000"
    answer = core.http_request(target, False, "", NOW, WALL)
    assert answer is not None and answer.reply.status == 200
    assert answer.delay_s == (0.025 if mode == "slow" else 0.0)  # 50 ms of recorded time at speed 2
    served, next_served = orjson.loads(answer.reply.body), orjson.loads(get(core, target)[2])
    for body, at in ((served, sent_depth + shift), (next_served, sent_depth)):
        if straddle and can_straddle(depth[at]):
            assert depth[at].first_update_id <= body["lastUpdateId"] < depth[at].last_update_id
        else:
            assert body["lastUpdateId"] == depth[at - 1].last_update_id
    assert core.stats.rest_faults == ({} if mode == "normal" else {mode: 1})
    assert answer.snapshot is not None and answer.snapshot.bids == tuple(tuple(lv) for lv in served["bids"][:20])
    if straddle:
        book = ReferenceBook()
        book.load(served["lastUpdateId"], served["bids"], served["asks"])
        apply_depth(book, depth[sent_depth + shift], ())
        truth = VenueBooks(data, straddle=False)
        truth.advance_to(depth[sent_depth + shift].index)
        truth_book = truth.book("BTCUSDT")
        assert truth_book is not None
        assert book.bids() == truth_book.bids() and book.asks() == truth_book.asks()


def test_barely_stale_answers_just_before_the_requester_s_first_frame(data: ReplayData) -> None:
    sent = 12
    core = venue(data, parked(data, sent, RestBehaviour(0, "barely_stale", lag_frames=2)), straddle=False)
    walk(core, 6)
    core.open(f"/ws/{DEPTH}", PEER, NOW, WALL)  # connects after six frames went by
    walk(core, sent - 6 + 1)
    first = next(f for f in data.frames[6:] if f.last_update_id is not None)
    depth = depth_frames(data)
    k = depth.index(first)
    body = orjson.loads(get(core, "/api/v3/depth?symbol=BTCUSDT&limit=5000")[2])
    assert body["lastUpdateId"] == depth[k - 3].last_update_id  # two events before the one before `first`
    assert body["lastUpdateId"] + 1 < first.first_update_id


@pytest.mark.parametrize(("status", "code"), [(429, -1003), (503, -1008), (500, -1001)])
def test_a_rest_error_behaviour_answers_its_count_then_recovers(data: ReplayData, status: int, code: int) -> None:
    core = venue(data, parked(data, 2, RestBehaviour(0, "error", count=2, status=status)))
    walk(core, 3)
    answers = [get(core, "/api/v3/depth?symbol=BTCUSDT") for _ in range(3)]
    assert [s for s, _, _ in answers] == [status, status, 200]
    assert orjson.loads(answers[0][2])["code"] == code
    assert "x-mbx-used-weight-1m" in answers[0][1]
    assert core.stats.rest_requests[f"depth:{status}"] == 2 and core.stats.rest_faults == {"error": 2}


def test_rest_truth_follows_the_clean_timeline_through_drops_duplicates_and_reorders(data: ReplayData) -> None:
    frames = data.frames
    depth = depth_frames(data)
    faulted: list[TimelineEntry] = []
    for f in frames:
        if f.index == depth[3].index:
            continue
        faulted.append(Send(f.offset_ns, f, f.payload))
        if f.index == depth[5].index:
            faulted.append(Send(f.offset_ns, depth[1], depth[1].payload, fault="duplicate"))
    faulted[8], faulted[9] = faulted[9], faulted[8]
    core = venue(data, faulted, speed=0)
    conn, _ = core.open(COMBINED, PEER, NOW, WALL)
    sent = written(core, walk(core))
    sent += core.finish()
    assert payloads(sent, conn) == [e.payload for e in faulted if isinstance(e, Send)]
    assert [s.fault for s in core.clients[conn].sends].count("duplicate") == 1
    body = orjson.loads(get(core, "/api/v3/depth?symbol=BTCUSDT&limit=5000")[2])
    truth = VenueBooks(data)
    truth.advance_all()
    truth_book = truth.book("BTCUSDT")
    assert truth_book is not None
    assert body["lastUpdateId"] == truth_book.last_update_id == depth[-1].last_update_id
    assert body["bids"] == [list(level) for level in truth_book.bids()]


# Control entries and faults served.


@pytest.mark.parametrize("mode", ["close", "abort", "reset"])
def test_a_disconnect_ends_every_listening_connection(
    data: ReplayData, mode: Literal["close", "abort", "reset"]
) -> None:
    core = venue(data, parked(data, 4, Disconnect(0, mode, code=1008, reason="maintenance")))
    a, _ = core.open(COMBINED, PEER, NOW, WALL)
    b, _ = core.open("/ws", PEER, NOW, WALL)
    actions = walk(core, 5)
    assert len(payloads(actions, a)) == 4
    expected = [Close(c, 1008, "maintenance") if mode == "close" else Abort(c, reset=mode == "reset") for c in (a, b)]
    assert actions[-2:] == expected
    assert core.stats.disconnects == {mode: 1}
    assert {core.clients[c].close_cause for c in (a, b)} == {f"disconnect:{mode}"}
    assert payloads(walk(core)) == []  # closing connections hear nothing more


def test_refused_handshakes_count_upgrades_only_and_serve_one_tag_each(data: ReplayData) -> None:
    tags = (FaultTag("handshake_refused", "h.0", 0), FaultTag("handshake_refused", "h.0", 1))
    core = venue(data, parked(data, 1, RefuseHandshakes(0, 429, 2, tags=tags)))
    walk(core, 2)
    assert core.http_request(f"/ws/{DEPTH}", False, "", NOW, WALL) is None  # not an upgrade: not counted
    assert get(core, "/api/v3/ping")[0] == 200
    refusals = [core.http_request(f"/ws/{DEPTH}", True, "", NOW, WALL) for _ in range(3)]
    statuses = [r.reply.status if r is not None else None for r in refusals]
    assert statuses == [429, 429, None]
    assert refusals[0] is not None and orjson.loads(refusals[0].reply.body)["code"] == -1003
    assert core.stats.handshakes_refused == 2 and core.served == set(tags)


def test_a_stall_holds_the_schedule_and_pauses_connections_only_when_it_answers_no_pings(data: ReplayData) -> None:
    tag = FaultTag("stall", "s.0", 0)
    quiet = venue(data, parked(data, 3, Stall(0, 4_000_000_000, answer_pings=False, tags=(tag,))), speed=2.0)
    conn, _ = quiet.open(COMBINED, PEER, NOW, WALL)
    actions = walk(quiet, 4)
    assert actions[-2:] == [Pause(conn), Wait(2.0)] and quiet.served == {tag}
    late, opened = quiet.open(COMBINED, PEER, NOW, WALL)
    assert Pause(late) in opened  # connections made during the stall are paused too
    assert quiet.stall_ended() == [Resume(conn), Resume(late)]
    assert quiet.stall_ended() == []

    chatty = venue(data, parked(data, 3, Stall(0, 4_000_000_000, tags=(tag,))), speed=0)
    chatty.open(COMBINED, PEER, NOW, WALL)
    assert walk(chatty, 4)[-1:] == [Wait(4.0)]  # speed 0: the recorded duration
    assert chatty.stall_ended() == []

    nobody = venue(data, [Stall(0, 10, tags=(tag,))])
    assert walk(nobody) == [Wait(1e-8)] and nobody.served == set()


def test_half_open_silences_listening_connections_for_good_and_serves_new_ones(data: ReplayData) -> None:
    tag = FaultTag("stall", "stall.0", 0)
    core = venue(data, parked(data, 3, HalfOpen(0, tags=(tag,))))
    silent, _ = core.open(COMBINED, PEER, NOW, WALL)
    actions = walk(core, 4)
    assert len(payloads(actions, silent)) == 3 and actions[-1] == Pause(silent, for_good=True)
    fresh, _ = core.open(COMBINED, PEER, NOW, WALL)
    rest = walk(core)
    assert payloads(rest, silent) == [] and len(payloads(rest, fresh)) == len(data.frames) - 3
    assert core.served == {tag} and core.stats.half_open_connections == 1
    assert core.release_silenced() == [Abort(silent)]
    core.stopping()
    assert (core.clients[silent].close_cause, core.clients[fresh].close_cause) == ("half_open", "server_stop")


def test_a_fault_is_served_only_when_it_meets_a_client(data: ReplayData) -> None:
    """Tags are recorded for what took effect: a frame written, a frame withheld from a subscriber, a
    disconnect that closed someone, the k-th refusal and REST answer; not for what met nobody."""
    tags = {name: FaultTag(name, name, 0) for name in ("send", "withheld", "elsewhere", "cut", "silence", "early")}
    rest = (FaultTag("snapshot", "snapshot.0", 0), FaultTag("snapshot", "snapshot.0", 1))
    refusals = (FaultTag("handshake_refused", "h.0", 0), FaultTag("handshake_refused", "h.0", 1))
    first = data.frames[0]
    schedule: list[TimelineEntry] = [
        Disconnect(0, "close", tags=(tags["early"],)),  # nobody is connected yet
        Send(0, first, first.payload, tags=(tags["send"],)),
        Withheld(0, first.stream, tags=(tags["withheld"],)),
        Withheld(0, "ethusdt@depth@100ms", tags=(tags["elsewhere"],)),
        RestBehaviour(0, "error", 2, status=503, tags=rest),
        RefuseHandshakes(0, 503, 2, tags=refusals),
        Disconnect(0, "close", 1001, tags=(tags["cut"],)),
        HalfOpen(0, tags=(tags["silence"],)),
    ]
    core = venue(data, schedule)
    walk(core, 1)
    conn, _ = core.open(f"/ws/{first.stream}", PEER, NOW, WALL)
    actions = walk(core)
    assert core.served == {tags["withheld"], tags["cut"]}  # the frame is queued, not written yet
    written(core, actions)
    assert tags["send"] in core.served
    assert [get(core, "/api/v3/depth?symbol=BTCUSDT")[0] for _ in range(3)] == [503, 503, 200]
    assert core.http_request(f"/ws/{first.stream}", True, "", NOW, WALL) is not None
    core.closed(conn, NOW)
    assert core.served == {tags["send"], tags["withheld"], tags["cut"], rest[0], rest[1], refusals[0]}


def test_a_slow_consumer_is_dropped_only_after_staying_over_the_limit_for_the_grace(data: ReplayData) -> None:
    core = venue(data, [ClientBufferLimit(0, 1000)])
    conn, _ = core.open(COMBINED, PEER, NOW, WALL)
    assert core.backlog(conn, 5000, 100, NOW) == []  # no limit in force yet
    walk(core)
    assert core.buffer_limit == 1000
    assert core.backlog(conn, 5000, 0, NOW) == []  # the kernel takes more: the reader keeps up
    assert core.backlog(conn, 900, 100, NOW) == []  # at the limit, not over it
    started = core.backlog(conn, 900, 101, NOW)
    assert started == [CheckBacklog(conn, NOW + SLOW_CONSUMER_GRACE_NS, NOW)]
    assert core.backlog(conn, 2000, 100, NOW + SLOW_CONSUMER_GRACE_NS - 1) == []
    assert core.backlog(conn, 100, 100, NOW + 1) == []  # drained below: the grace starts over
    assert core.backlog(conn, 900, 101, NOW + SLOW_CONSUMER_GRACE_NS, since_ns=NOW) == []  # a stale check
    since = NOW + 5
    assert core.backlog(conn, 2000, 100, since) == [CheckBacklog(conn, since + SLOW_CONSUMER_GRACE_NS, since)]
    early = core.backlog(conn, 2000, 100, since + SLOW_CONSUMER_GRACE_NS - 1, since_ns=since)
    assert early == [CheckBacklog(conn, since + SLOW_CONSUMER_GRACE_NS, since)]  # a timer that fired early
    assert core.backlog(conn, 2000, 100, since + SLOW_CONSUMER_GRACE_NS, since_ns=since) == [Abort(conn)]
    assert core.stats.slow_consumers_dropped == 1 and core.clients[conn].close_cause == "slow_consumer"
    assert core.backlog(conn, 2000, 100, since + 2 * SLOW_CONSUMER_GRACE_NS) == []  # dropped once

    healed = venue(data, [ClientBufferLimit(0, 1000), ClientBufferLimit(0, 0)])
    conn, _ = healed.open(COMBINED, PEER, NOW, WALL)
    walk(healed)
    # The fault's limit is lifted: the venue's own (max_backlog_bytes) holds again, and None is none at all.
    assert healed.buffer_limit is None and healed.backlog_limit == DEFAULT_MAX_BACKLOG_BYTES
    assert healed.backlog(conn, 10**6, 100, NOW) == []
    assert healed.backlog(conn, DEFAULT_MAX_BACKLOG_BYTES, 1, NOW) == [
        CheckBacklog(conn, NOW + SLOW_CONSUMER_GRACE_NS, NOW)
    ]
    unlimited = venue(data, limits=VenueLimits.of(WIRE).but(max_backlog_bytes=None))
    conn, _ = unlimited.open(COMBINED, PEER, NOW, WALL)
    assert unlimited.backlog_limit is None and unlimited.backlog(conn, 10**9, 10**9, NOW) == []


def test_the_clock_starts_with_the_first_subscription_and_a_new_session_starts_over(data: ReplayData) -> None:
    core = venue(data, speed=2.0)
    with pytest.raises(ValueError, match="has not started"):
        core.due_ns(0)
    core.open("/ws", PEER, NOW, WALL)
    assert core.clock_start_ns is None
    ask(core, {"method": "SUBSCRIBE", "params": [DEPTH], "id": 1}, at=NOW + 7)
    assert core.clock_start_ns == NOW + 7 and core.due_ns(10) == NOW + 7 + 5
    assert core.start_clock(NOW + 9, WALL) == []  # idempotent
    walk(core)
    core.finish()
    core.new_session()
    book = core.books.book("BTCUSDT")
    assert core.clock_start_ns is None and book is not None
    assert book.last_update_id == data.start_books["BTCUSDT"].last_update_id
    actions = core.start_clock(NOW + 50, WALL + 1)
    assert actions[0] == ClockStarted(NOW + 50) and core.sessions == [WALL, WALL + 1]


def test_a_derived_depth_stream_is_computed_only_for_a_subscriber(data: ReplayData) -> None:
    core = venue(data)
    raw, _ = core.open("/ws/btcusdt@depth", PEER, NOW, WALL)
    actions = walk(core) + core.finish()
    updates = [orjson.loads(p) for p in payloads(actions, raw)]
    assert updates and all(u["e"] == "depthUpdate" for u in updates)
    assert all(isinstance(a, Write) and a.entry is None for a in actions if isinstance(a, Write))
    assert updates[-1]["u"] == depth_frames(data)[-1].last_update_id
    assert all(b["U"] == a["u"] + 1 for a, b in itertools.pairwise(updates))


class _StreamSnapshotWire(BinanceSpotWire):
    """Binance's wire with two OKX habits, to drive the core's venue-neutral paths: a text `ping` answered
    `pong`, and the book's snapshot sent on the stream to each new subscriber."""

    def parse_control(self, message: str | bytes, state: ConnectionState) -> Control | ControlRejected:
        return Control("ping") if message == "ping" else super().parse_control(message, state)

    def render_control(self, control: Control, state: ConnectionState) -> list[Reply]:
        return [Reply(b"pong")] if control.kind == "ping" else super().render_control(control, state)

    def stream_snapshot(self, stream: str, books: Books, wall_ms: int) -> bytes | None:
        book = books.book(self.symbol_of(stream) or "")
        if not self.is_book_stream(stream) or book is None:
            return None
        data = {"snapshot": book.last_update_id, "bids": book.bids(2), "at": wall_ms}
        return b'{"stream":"' + stream.encode() + b'","data":' + orjson.dumps(data) + b"}"


def test_a_stream_snapshot_venue_sends_the_current_book_first_and_answers_text_pings(data: ReplayData) -> None:
    core = VenueCore(data, _StreamSnapshotWire(), started_ns=NOW)
    early, opened = core.open(f"/ws/{DEPTH}/{TRADE}", PEER, NOW, WALL)
    (first,) = [orjson.loads(p) for p in payloads(opened, early)]  # raw framing: the data part
    assert first["snapshot"] == data.start_books["BTCUSDT"].last_update_id and first["at"] == WALL // 1_000_000
    walk(core, 6)
    late, _ = core.open("/ws", PEER, NOW, WALL)
    subscribe = orjson.dumps({"method": "SUBSCRIBE", "params": [DEPTH, TRADE], "id": 1}).decode()
    replies = core.receive(late, subscribe, NOW, WALL)
    ack, snapshot = [orjson.loads(p) for p in payloads(replies, late)]
    sent = [f for f in data.frames[:6] if f.last_update_id is not None]
    assert ack == {"result": None, "id": 1} and snapshot["snapshot"] == sent[-1].last_update_id
    assert len(snapshot["bids"]) == 2
    assert payloads(core.receive(late, "ping", NOW, WALL), late) == [b"pong"]


_NAMES = st.sampled_from([DEPTH, TRADE, "ethusdt@trade", "a@b", "bad name", 7])
_CONTROL = st.fixed_dictionaries(
    {"method": st.sampled_from(["SUBSCRIBE", "UNSUBSCRIBE", "LIST_SUBSCRIPTIONS", "PING"]), "id": st.integers(0, 9)},
    optional={"params": st.lists(_NAMES, max_size=4)},
).map(lambda doc: orjson.dumps(doc).decode())
_MESSAGES = st.lists(st.one_of(_CONTROL, st.text(max_size=20), st.binary(max_size=20)), max_size=25)


@settings(max_examples=60, deadline=None)
@given(messages=_MESSAGES)
def test_any_message_gets_one_reply_and_subscriptions_follow_a_model(data: ReplayData, messages: list) -> None:
    """Whatever text a client sends, the venue answers each message once and its subscriptions are what a
    plain model of SUBSCRIBE and UNSUBSCRIBE (with the per-connection limit) says; a binary frame closes."""
    core = venue(data, limits=VenueLimits.of(WIRE).but(messages_per_second=None, streams_per_connection=3))
    conn, _ = core.open("/ws", PEER, NOW, WALL)
    model: dict[str, None] = {}
    for message in messages:
        if isinstance(message, bytes):  # a binary frame: the connection is closed (1003), nothing changes
            assert core.receive(conn, message, NOW, WALL) == [Close(conn, *BINARY_MESSAGE_CLOSE, discard=True)]
            break
        replies = [orjson.loads(p) for p in payloads(core.receive(conn, message, NOW, WALL), conn)]
        assert len(replies) == 1 and ("result" in replies[0]) != ("error" in replies[0])
        if "error" in replies[0]:
            continue
        request = orjson.loads(message)
        if request["method"] == "SUBSCRIBE":
            model.update(dict.fromkeys(request.get("params", [])))
        elif request["method"] == "UNSUBSCRIBE":
            for name in request.get("params", []):
                model.pop(name, None)
    assert ask(core, {"method": "LIST_SUBSCRIPTIONS", "id": 1}) == [{"result": list(model), "id": 1}]
    assert len(model) <= 3


def test_without_the_send_log_the_venue_keeps_nothing_per_frame_or_per_depth_answer(data: ReplayData) -> None:
    """`harness serve` runs for days and nobody reads these: each would grow by a record per frame, client
    and REST answer (docs/reliability.md)."""
    core = venue(data, keep_send_log=False)
    conn, _ = core.open(f"/ws/{DEPTH}", PEER, NOW, WALL)
    writes = [a for a in walk(core, 5) if isinstance(a, Write)]
    assert all(write.entry is not None for write in writes), "recorded frames"
    core.written(conn, writes, NOW)
    assert get(core, "/api/v3/depth?symbol=BTCUSDT&limit=5")[0] == 200
    assert core.stats.frames_sent == len(writes) > 0
    assert core.clients[conn].sends == [] and core.snapshots_served == [] and core.depths_served == {}


def test_error_replies_name_the_connection_they_answer(data: ReplayData) -> None:
    """OKX puts its `connId` in errors as in acks: the core hands the wire the connection it parses for, and
    the connection as it was when a limit refuses a request."""
    core = VenueCore(data, OKX_WIRE, limits=VenueLimits.of(OKX_WIRE).but(streams_per_connection=1), started_ns=NOW)
    first, _ = core.open("/ws/v5/public", PEER, NOW, WALL)
    second, _ = core.open("/ws/v5/public", PEER, NOW, WALL)
    subscribe = {"op": "subscribe", "args": [{"channel": "trades", "instId": "BTC-USDT"}]}
    books = {**subscribe, "args": [{"channel": "books", "instId": "BTC-USDT"}]}
    ack, error, refused = (ask(core, message, conn=second)[0] for message in (subscribe, "{", books))
    (other,) = ask(core, "{", conn=first)
    assert isinstance(ack, dict) and isinstance(error, dict) and isinstance(refused, dict) and isinstance(other, dict)
    assert (error["event"], refused["code"]) == ("error", "60013")
    assert ack["connId"] == error["connId"] == refused["connId"] != other["connId"]
