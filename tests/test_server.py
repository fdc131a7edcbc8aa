"""The fake Binance spot venue over real loopback sockets: streams, control requests, REST and faults."""

from __future__ import annotations

import asyncio
import random
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, ConnectionClosedError, InvalidStatus

from recorder.format import EventKind, RecordingMeta
from recorder.segments import RecordingWriter
from replayer.reference_book import ReferenceBook
from replayer.replay_data import ReplayData, VenueBooks, apply_depth, load_replay_data
from replayer.request_weight import IGNORED_429S_BEFORE_BAN
from replayer.server import ServerThread, VenueServer
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
from tests.depth_helpers import can_straddle

REPO = Path(__file__).resolve().parent.parent
DEPTH = "btcusdt@depth@100ms"
TRADE = "btcusdt@trade"
WS_URL = f"wss://stream.binance.com:9443/stream?streams={DEPTH}/{TRADE}"
REST_URL = "https://api.binance.com/api/v3/depth?symbol=BTCUSDT&limit=5000"
LATER = 3600 * 10**9
"""An offset the tests never reach: it parks the replay walker so REST answers a known position."""


# A small recording built the way the recorder writes one.


@dataclass
class Built:
    """What the builder knows: every recorded frame, the snapshot id and the true final book."""

    path: Path
    frames: list[tuple[str, bytes]] = field(default_factory=list)
    snapshot_id: int = 0
    start: int = 0
    bids: dict[str, str] = field(default_factory=dict)
    asks: dict[str, str] = field(default_factory=dict)

    @property
    def served(self) -> list[tuple[str, bytes]]:
        return self.frames[self.start :]


def _px(ticks: int) -> str:
    return f"{ticks // 100}.{ticks % 100:02d}000000"


def build_recording(
    path: Path, *, depth_frames: int = 30, before_snapshot: int = 3, pad: int = 0, seed: int = 7
) -> Built:
    """Depth frames with contiguous U/u, a trade after every other one, and the REST snapshot a syncing client
    fetched after `before_snapshot` depth frames (recorded two frames later, as a slow response would be)."""
    rng = random.Random(seed)
    built = Built(path)
    built.bids = {_px(10_000 - i): f"{rng.randint(1, 9)}.50000000" for i in range(12)}
    built.asks = {_px(10_001 + i): f"{rng.randint(1, 9)}.25000000" for i in range(12)}
    meta = RecordingMeta("binance-spot", ("BTCUSDT",), "test", 1_700_000_000 * 10**9, "test", "rec-1")
    uid = 5000
    mono = 10**12
    snapshot: bytes | None = None
    with RecordingWriter(path, meta, fsync=False) as writer:
        writer.append(EventKind.WS_OPEN, conn_id=1, wall_ns=mono, mono_ns=mono, url=WS_URL)
        for k in range(depth_frames):
            mono += 100_000_000
            span = rng.randint(1, 3)
            first, uid = uid + 1, uid + span
            bids: list[list[str]] = []
            asks: list[list[str]] = []
            for _ in range(2 + pad):
                side, levels, base = (
                    (bids, built.bids, 10_000 - rng.randint(0, 15))
                    if rng.random() < 0.5
                    else (asks, built.asks, 10_001 + rng.randint(0, 15))
                )
                price = _px(base)
                size = "0.00000000" if rng.random() < 0.3 else f"{rng.randint(1, 99)}.{rng.randint(0, 999):03d}00000"
                side.append([price, size])
                if size == "0.00000000":
                    levels.pop(price, None)
                else:
                    levels[price] = size
            data = {"e": "depthUpdate", "E": mono // 10**6, "s": "BTCUSDT", "U": first, "u": uid, "b": bids, "a": asks}
            _record_frame(writer, built, DEPTH, orjson.dumps(data), mono)
            if k == before_snapshot - 1:
                built.snapshot_id = uid
                snapshot = orjson.dumps(
                    {"lastUpdateId": uid, "bids": _sorted(built.bids, True), "asks": _sorted(built.asks, False)}
                )
                writer.append(EventKind.HTTP_REQUEST, conn_id=2, wall_ns=mono, mono_ns=mono, url=REST_URL)
            if k == before_snapshot:
                built.start = len(built.frames) - 1
            if k == before_snapshot + 1:
                assert snapshot is not None
                writer.append(
                    EventKind.HTTP_RESPONSE,
                    conn_id=2,
                    wall_ns=mono,
                    mono_ns=mono,
                    url=REST_URL,
                    status=200,
                    payload=snapshot,
                )
            if k % 2 == 1:
                price = _px(10_000 + rng.randint(0, 1))
                trade = {"e": "trade", "E": mono // 10**6, "s": "BTCUSDT", "t": k, "p": price, "q": "0.01000000"}
                _record_frame(writer, built, TRADE, orjson.dumps(trade), mono + 50_000_000)
    return built


def _record_frame(writer: RecordingWriter, built: Built, stream: str, data: bytes, mono: int) -> None:
    payload = b'{"stream":"' + stream.encode() + b'","data":' + data + b"}"
    built.frames.append((stream, payload))
    writer.append(EventKind.WS_RECV, conn_id=1, wall_ns=mono, mono_ns=mono, url=WS_URL, stream=stream, payload=payload)


def _sorted(levels: dict[str, str], descending: bool) -> list[list[str]]:
    return [[p, s] for p, s in sorted(levels.items(), key=lambda kv: float(kv[0]), reverse=descending)]


@pytest.fixture
def built(tmp_path: Path) -> Built:
    return build_recording(tmp_path / "rec")


@pytest.fixture
def data(built: Built) -> ReplayData:
    return load_replay_data(built.path)


# Helpers.


@asynccontextmanager
async def serving(data: ReplayData, **kwargs: Any) -> AsyncIterator[VenueServer]:
    server = VenueServer(data, **kwargs)
    await server.start()
    try:
        async with asyncio.timeout(20):
            yield server
    finally:
        await server.stop()


async def http_get(server: VenueServer, target: str) -> tuple[int, bytes]:
    status, _, body = await http_get_headers(server, target)
    return status, body


async def http_get_headers(server: VenueServer, target: str) -> tuple[int, dict[str, str], bytes]:
    """Like `http_get`, with the response headers (names lower-cased): what weight-aware clients read."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nAccept: */*\r\n\r\n".encode())
    response = await reader.read()
    writer.close()
    await writer.wait_closed()
    head, _, body = response.partition(b"\r\n\r\n")
    status_line, *lines = head.decode().split("\r\n")
    headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    return int(status_line.split(" ", 2)[1]), headers, body


async def recv_n(ws: ClientConnection, n: int) -> list[bytes]:
    return [await ws.recv(decode=False) for _ in range(n)]


async def request(ws: ClientConnection, message: dict) -> tuple[dict, list[bytes]]:
    """Sends a control request; returns its reply and the data frames that arrived before it."""
    await ws.send(orjson.dumps(message).decode())
    frames: list[bytes] = []
    while True:
        raw = await ws.recv(decode=False)
        parsed = orjson.loads(raw)
        if isinstance(parsed, dict) and ("result" in parsed or "error" in parsed):
            return parsed, frames
        frames.append(raw)


def parked(data: ReplayData, sent: int, *controls: TimelineEntry) -> list[TimelineEntry]:
    """The first `sent` frames at once, then `controls`, then the rest never (until the test ends)."""
    head = [Send(0, f, f.payload) for f in data.frames[:sent]]
    tail = [Send(LATER, f, f.payload) for f in data.frames[sent:]]
    return [*head, *controls, *tail]


def depth_u(payloads: list[bytes]) -> list[int]:
    out = []
    for payload in payloads:
        msg = orjson.loads(payload)
        msg = msg.get("data", msg)
        if msg.get("e") == "depthUpdate":
            out.append(msg["u"])
    return out


# Streams.


def test_replay_starts_at_the_first_frame_that_continues_the_snapshot(built: Built, data: ReplayData) -> None:
    assert data.skipped_frames == built.start > 0
    first = data.frames[0]
    assert first.first_update_id is not None and first.last_update_id is not None
    assert first.first_update_id <= built.snapshot_id + 1 <= first.last_update_id
    assert [f.payload for f in data.frames] == [p for _, p in built.served]
    assert data.start_books["BTCUSDT"].last_update_id == built.snapshot_id
    assert data.frames[0].offset_ns == 0
    assert all(a.offset_ns <= b.offset_ns for a, b in zip(data.frames, data.frames[1:], strict=False))


def test_combined_path_delivers_the_recorded_bytes_in_order(built: Built, data: ReplayData) -> None:
    async def run() -> None:
        async with serving(data, speed=0) as server:
            async with connect(f"{server.ws_url}/stream?streams={DEPTH}/{TRADE}", compression=None) as ws:
                got = await recv_n(ws, len(built.served))
                await server.finished.wait()
            assert got == [p for _, p in built.served]
            assert server.stats.frames_sent == len(got)
            (record,) = server.clients.values()
            assert [s.frame_index for s in record.sends] == list(range(len(got)))

    asyncio.run(run())


def test_raw_path_delivers_the_data_bytes_of_only_the_named_stream(built: Built, data: ReplayData) -> None:
    async def run() -> None:
        async with serving(data, speed=0) as server, connect(f"{server.ws_url}/ws/{DEPTH}", compression=None) as ws:
            expected = [p for s, p in built.served if s == DEPTH]
            got = await recv_n(ws, len(expected))
            await server.finished.wait()
        prefix = b'{"stream":"' + DEPTH.encode() + b'","data":'
        assert got == [p[len(prefix) : -1] for p in expected]
        assert all(orjson.loads(g)["e"] == "depthUpdate" for g in got)

    asyncio.run(run())


def test_subscribe_list_unsubscribe_and_errors_on_a_bare_ws_path(built: Built, data: ReplayData) -> None:
    async def run() -> None:
        # Thirteen requests back to back: past Binance's five a second, so the limit is off here.
        async with (
            serving(data, speed=0, messages_per_second=None) as server,
            connect(f"{server.ws_url}/ws", compression=None) as ws,
        ):
            reply, before = await request(ws, {"method": "LIST_SUBSCRIPTIONS", "id": 3})
            assert (reply, before) == ({"result": [], "id": 3}, [])
            assert server.clock_start_mono_ns is None and server.stats.frames_sent == 0

            reply, _ = await request(ws, {"method": "SUBSCRIBE", "params": [TRADE], "id": 1})
            assert reply == {"result": None, "id": 1}
            reply, frames = await request(ws, {"method": "LIST_SUBSCRIPTIONS", "id": 3})
            assert reply == {"result": [TRADE], "id": 3}
            reply, more = await request(ws, {"method": "UNSUBSCRIBE", "params": [TRADE], "id": 312})
            assert reply == {"result": None, "id": 312}
            received = frames + more
            assert received and all(orjson.loads(f)["e"] == "trade" for f in received)
            reply, after = await request(ws, {"method": "LIST_SUBSCRIPTIONS", "id": 4})
            assert (reply, after) == ({"result": [], "id": 4}, [])

            reply, _ = await request(ws, {"method": "SET_PROPERTY", "params": ["combined", True], "id": 5})
            assert reply == {"result": None, "id": 5}
            reply, _ = await request(ws, {"method": "GET_PROPERTY", "params": ["combined"], "id": 2})
            assert reply == {"result": True, "id": 2}

            await ws.send("{not json")
            error = orjson.loads(await ws.recv(decode=False))
            assert error["error"]["code"] == 3 and error["id"] is None
            reply, _ = await request(ws, {"method": "SUBSCRIBE!", "params": [], "id": 9})
            assert reply["error"]["code"] == 2 and reply["error"]["msg"].startswith("Invalid request: unknown variant")
            assert reply["id"] == 9
            reply, _ = await request(ws, {"method": "LIST_SUBSCRIPTIONS", "id": None})
            assert reply == {"result": [], "id": None}
            reply, _ = await request(ws, {"method": "SUBSCRIBE", "params": [TRADE], "id": "x" * 40})
            assert reply == {
                "error": {"code": 2, "msg": "Invalid request: request ID must be an unsigned integer"},
                "id": None,
            }

    asyncio.run(run())


def test_a_sixth_message_within_a_second_closes_the_connection_with_1008(data: ReplayData) -> None:
    async def run() -> None:
        async with serving(data, speed=0) as server, connect(f"{server.ws_url}/ws", compression=None) as ws:
            for request_id in range(1, 7):
                await ws.send(orjson.dumps({"method": "LIST_SUBSCRIPTIONS", "id": request_id}).decode())
            replies = []
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    replies.append(orjson.loads(await ws.recv(decode=False)))
            assert closed.value.rcvd is not None
            assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (1008, "Too many requests")
            assert [reply["id"] for reply in replies] == list(range(1, len(replies) + 1))
            assert len(replies) <= 5
            assert server.stats.too_many_requests == 1
            assert server.clients[1].close_cause == "too_many_requests"

    asyncio.run(run())


def test_a_path_naming_no_recorded_stream_is_accepted_and_sends_nothing(data: ReplayData) -> None:
    async def run() -> None:
        async with serving(data, speed=0) as server:
            async with connect(f"{server.ws_url}/ws/ethusdt@depth", compression=None) as ws:
                reply, frames = await request(ws, {"method": "LIST_SUBSCRIPTIONS", "id": 1})
                await server.finished.wait()
                reply2, frames2 = await request(ws, {"method": "LIST_SUBSCRIPTIONS", "id": 2})
            assert reply == {"result": ["ethusdt@depth"], "id": 1}
            assert reply2["id"] == 2 and frames == frames2 == []
            assert server.stats.frames_sent == 0

    asyncio.run(run())


def test_two_clients_share_one_replay_clock(tmp_path: Path) -> None:
    built = build_recording(tmp_path / "big", depth_frames=60, pad=120)
    data = load_replay_data(built.path)
    served = [p for _, p in built.served]

    async def run() -> None:
        async with serving(data, speed=0, socket_send_buffer=4096) as server:
            path = f"{server.ws_url}/stream?streams={DEPTH}/{TRADE}"
            async with connect(path, compression=None, max_queue=1) as a:
                first = await recv_n(a, 5)
                assert not server.finished.is_set()
                async with connect(path, compression=None) as b:
                    rest_of_a = await recv_n(a, len(served) - 5)
                    await server.finished.wait()
                    got_b = [await b.recv(decode=False) for _ in range(server.stats.frames_sent - len(served))]
            got_a = first + rest_of_a
            assert got_a == served
            start = served.index(got_b[0])
            assert 5 <= start < len(served)
            assert got_b == served[start:]
            log_a, log_b = (server.send_log(i) for i in sorted(server.clients))
            when_a = {s.frame_index: s.intended_mono_ns for s in log_a}
            assert all(when_a[s.frame_index] == s.intended_mono_ns for s in log_b)

    asyncio.run(run())


# REST.


def test_a_client_syncing_by_binance_rules_ends_with_the_venue_book(built: Built, data: ReplayData) -> None:
    async def run() -> None:
        async with (
            serving(data, speed=0) as server,
            connect(f"{server.ws_url}/stream?streams={DEPTH}", compression=None) as ws,
        ):
            buffered = [orjson.loads(m)["data"] for m in await recv_n(ws, 4)]
            status, body = await http_get(server, "/api/v3/depth?symbol=BTCUSDT&limit=1000")
            snapshot = orjson.loads(body)
            assert status == 200
            events = [(f.first_update_id, f.last_update_id) for f in data.frames if f.last_update_id is not None]
            assert snapshot["lastUpdateId"] >= buffered[-1]["u"]
            # As on the live venue, the snapshot falls inside an event, not on a frame boundary.
            assert any(first <= snapshot["lastUpdateId"] < last for first, last in events)
            expected_total = len([1 for s, _ in built.served if s == DEPTH])
            buffered += [orjson.loads(m)["data"] for m in await recv_n(ws, expected_total - 4)]
            await server.finished.wait()
            final_status, final_body = await http_get(server, "/api/v3/depth?symbol=BTCUSDT&limit=5000")

        bids = {p: s for p, s in snapshot["bids"]}
        asks = {p: s for p, s in snapshot["asks"]}
        last = snapshot["lastUpdateId"]
        pending = [e for e in buffered if e["u"] > last]
        assert pending[0]["U"] <= last + 1 <= pending[0]["u"]
        for event in pending:
            assert event["U"] <= last + 1
            for levels, updates in ((bids, event["b"]), (asks, event["a"])):
                for price, size in updates:
                    if float(size) == 0:
                        levels.pop(price, None)
                    else:
                        levels[price] = size
            last = event["u"]
        assert final_status == 200
        final = orjson.loads(final_body)
        assert final["lastUpdateId"] == last
        assert final["bids"] == _sorted(bids, True) == _sorted(built.bids, True)
        assert final["asks"] == _sorted(asks, False) == _sorted(built.asks, False)

    asyncio.run(run())


def test_rest_endpoints_and_their_errors(data: ReplayData) -> None:
    async def run() -> None:
        async with serving(data) as server:
            assert await http_get(server, "/api/v3/ping") == (200, b"{}")
            status, body = await http_get(server, "/api/v3/time")
            assert status == 200 and orjson.loads(body)["serverTime"] > 1_600_000_000_000
            status, body = await http_get(server, "/api/v3/exchangeInfo?symbol=BTCUSDT")
            (symbol,) = orjson.loads(body)["symbols"]
            filters = {f["filterType"]: f for f in symbol["filters"]}
            assert status == 200
            assert (symbol["symbol"], symbol["status"], symbol["baseAsset"], symbol["quoteAsset"]) == (
                "BTCUSDT",
                "TRADING",
                "BTC",
                "USDT",
            )
            assert filters["PRICE_FILTER"]["tickSize"] == "0.01000000"
            assert filters["LOT_SIZE"]["stepSize"] == "0.00100000"
            status, body = await http_get(server, "/api/v3/exchangeInfo")
            assert [s["symbol"] for s in orjson.loads(body)["symbols"]] == ["BTCUSDT"]

            status, body = await http_get(server, "/api/v3/depth?symbol=BTCUSDT&limit=3")
            depth = orjson.loads(body)
            assert status == 200 and len(depth["bids"]) == len(depth["asks"]) == 3
            first = next(f for f in data.frames if f.last_update_id is not None)
            assert first.first_update_id <= depth["lastUpdateId"] < first.last_update_id

            assert await http_get(server, "/api/v3/depth?symbol=ETHUSDT") == (
                400,
                b'{"code":-1121,"msg":"Invalid symbol."}',
            )
            assert await http_get(server, "/api/v3/exchangeInfo?symbol=ETHUSDT") == (
                400,
                b'{"code":-1121,"msg":"Invalid symbol."}',
            )
            status, body = await http_get(server, "/api/v3/depth?symbol=BTCUSDT&limit=abc")
            assert status == 400 and orjson.loads(body)["code"] == -1100
            status, body = await http_get(server, "/api/v3/depth")
            assert status == 400 and orjson.loads(body)["code"] == -1102
            status, _ = await http_get(server, "/api/v3/klines")
            assert status == 404
            assert server.stats.rest_requests["depth:400"] == 3
            assert server.stats.rest_requests["depth:200"] == 1

    asyncio.run(run())


def test_every_rest_answer_reports_the_weight_used_this_minute(data: ReplayData) -> None:
    """binance-connector's `show_limit_usage` read nothing before these headers existed."""
    requests = [
        ("/api/v3/ping", 1),
        ("/api/v3/depth?symbol=BTCUSDT&limit=500", 25),
        ("/api/v3/exchangeInfo", 20),
        ("/api/v3/depth?symbol=ETHUSDT", 5),
        ("/api/v3/ticker/bookTicker?symbol=BTCUSDT", 2),
        ("/sapi/v1/system/status", 1),
    ]

    async def run() -> None:
        async with serving(data, schedule=parked(data, 0)) as server:
            used = 0
            for target, weight in requests:
                status, headers, _ = await http_get_headers(server, target)
                assert headers["content-type"] == "application/json;charset=UTF-8", target
                now = int(headers["x-mbx-used-weight-1m"])
                assert headers["x-mbx-used-weight"] == headers["x-mbx-used-weight-1m"]
                assert now in (used + weight, weight), (target, now)  # the count restarts with each minute
                used = now
            assert status == 200

    asyncio.run(run())


def test_rest_weight_past_the_limit_is_refused_with_429_then_banned_with_418(data: ReplayData) -> None:
    """Binance's answers, headers and bodies as documented; a relaxed limit serves what the default refuses."""
    deep = "/api/v3/depth?symbol=BTCUSDT&limit=5000"

    async def run() -> None:
        async with serving(data, schedule=parked(data, 0), rest_weight_limit=1000) as server:
            before_ms = time.time_ns() // 1_000_000
            answers = [await http_get_headers(server, deep) for _ in range(4 + 1 + IGNORED_429S_BEFORE_BAN)]
            after_ms = time.time_ns() // 1_000_000
            assert [status for status, _, _ in answers] == [200] * 4 + [429] * IGNORED_429S_BEFORE_BAN + [418]
            _, headers, body = answers[4]
            assert headers["x-mbx-used-weight-1m"] == "1250" and 1 <= int(headers["retry-after"]) <= 60
            assert orjson.loads(body) == {
                "code": -1003,
                "msg": "Too much request weight used; current limit is 1000 request weight per 1 MINUTE. "
                "Please use WebSocket Streams for live updates to avoid polling the API.",
            }
            _, headers, body = answers[-1]
            ban = orjson.loads(body)
            assert ban["code"] == -1003 and int(headers["retry-after"]) == 120
            until = int(ban["msg"].split("IP banned until ")[1].split(".")[0])
            assert before_ms + 120_000 <= until <= after_ms + 120_000  # epoch ms, as Binance writes it
            assert (await http_get_headers(server, "/api/v3/ping"))[0] == 418  # banned from every endpoint
            weight = server.weight
            assert (weight.refused_429, weight.refused_418, weight.bans) == (IGNORED_429S_BEFORE_BAN, 2, 1)
            assert server.stats.rest_requests["depth:418"] == 1 and len(server.snapshots_served) == 4
        async with serving(data, schedule=parked(data, 0), rest_weight_limit=0) as relaxed:
            assert {(await http_get(relaxed, deep))[0] for _ in range(30)} == {200}
            assert relaxed.weight.peak_per_minute == 30 * 250

    asyncio.run(run())


def test_book_ticker_and_system_status_answer_from_the_current_position(data: ReplayData) -> None:
    """ccxt `fetch_bids_asks`/`fetch_status`, python-binance `get_orderbook_ticker`/`get_system_status` call these."""

    async def run() -> None:
        async with serving(data, schedule=parked(data, 6), straddle=False) as server:
            async with connect(f"{server.ws_url}/stream?streams={DEPTH}/{TRADE}", compression=None) as ws:
                got = await recv_n(ws, 6)
            status, body = await http_get(server, "/api/v3/depth?symbol=BTCUSDT&limit=1")
            depth = orjson.loads(body)
            assert depth["lastUpdateId"] == depth_u(got)[-1] != data.start_books["BTCUSDT"].last_update_id
            status, body = await http_get(server, "/api/v3/ticker/bookTicker?symbol=BTCUSDT")
            assert status == 200
            assert orjson.loads(body) == {
                "symbol": "BTCUSDT",
                "bidPrice": depth["bids"][0][0],
                "bidQty": depth["bids"][0][1],
                "askPrice": depth["asks"][0][0],
                "askQty": depth["asks"][0][1],
            }
            status, listed = await http_get(server, "/api/v3/ticker/bookTicker")
            assert status == 200 and orjson.loads(listed) == [orjson.loads(body)]
            status, listed = await http_get(server, '/api/v3/ticker/bookTicker?symbols=["BTCUSDT"]')
            assert status == 200 and orjson.loads(listed) == [orjson.loads(body)]
            assert await http_get(server, "/api/v3/ticker/bookTicker?symbolStatus=HALT") == (200, b"[]")
            status, body = await http_get(server, "/api/v3/ticker/bookTicker?symbol=ETHUSDT")
            assert (status, orjson.loads(body)["code"]) == (400, -1121)
            assert await http_get(server, "/sapi/v1/system/status") == (200, b'{"status":0,"msg":"normal"}')
            status, _ = await http_get(server, "/sapi/v1/capital/config/getall")
            assert status == 404

    asyncio.run(run())


def test_symbol_status_and_permission_set_parameters(data: ReplayData) -> None:
    async def run() -> None:
        async with serving(data, schedule=parked(data, 0)) as server:
            status, body = await http_get(server, "/api/v3/depth?symbol=BTCUSDT&limit=5&symbolStatus=TRADING")
            assert status == 200 and len(orjson.loads(body)["bids"]) == 5
            status, body = await http_get(server, "/api/v3/depth?symbol=BTCUSDT&symbolStatus=HALT")
            assert (status, orjson.loads(body)["code"]) == (400, -1220)
            status, body = await http_get(server, "/api/v3/exchangeInfo?symbolStatus=TRADING")
            assert status == 200 and [s["symbol"] for s in orjson.loads(body)["symbols"]] == ["BTCUSDT"]
            status, body = await http_get(server, "/api/v3/exchangeInfo?symbolStatus=BREAK")
            assert status == 200 and orjson.loads(body)["symbols"] == []
            status, body = await http_get(server, "/api/v3/exchangeInfo?symbol=BTCUSDT&symbolStatus=TRADING")
            assert (status, orjson.loads(body)["code"]) == (400, -1128)
            status, body = await http_get(server, "/api/v3/exchangeInfo?showPermissionSets=false")
            assert status == 200 and orjson.loads(body)["symbols"][0]["permissionSets"] == []

    asyncio.run(run())


@pytest.mark.parametrize("straddle", [True, False])
@pytest.mark.parametrize(("mode", "shift"), [("normal", 0), ("stale", -3), ("too_new", 3), ("slow", 0)])
def test_rest_behaviours_answer_from_the_expected_position(
    data: ReplayData, mode: Literal["normal", "stale", "too_new", "slow"], shift: int, straddle: bool
) -> None:
    """Each answer is the venue's book `shift` events from the frames sent; straddling, it lies inside
    the event after that point, and applying the event over it gives the book at the event's end."""
    sent = 12
    depth = [f for f in data.frames if f.last_update_id is not None]
    sent_depth = len([f for f in data.frames[:sent] if f.last_update_id is not None])
    behaviour = RestBehaviour(0, mode, count=1, lag_frames=3, delay_ns=50_000_000)

    async def run() -> None:
        schedule = parked(data, sent, behaviour)
        async with serving(data, schedule=schedule, straddle=straddle, seed=5) as server:
            async with connect(f"{server.ws_url}/stream?streams={DEPTH}/{TRADE}", compression=None) as ws:
                got = await recv_n(ws, sent)
                status, body = await http_get(server, "/api/v3/depth?symbol=BTCUSDT&limit=5000")
                _, after = await http_get(server, "/api/v3/depth?symbol=BTCUSDT&limit=5000")
            assert status == 200
            assert depth_u(got)[-1] == depth[sent_depth - 1].last_update_id
            served, next_served = orjson.loads(body), orjson.loads(after)
            for answer, at in ((served, sent_depth + shift), (next_served, sent_depth)):
                if straddle and can_straddle(depth[at]):
                    assert depth[at].first_update_id <= answer["lastUpdateId"] < depth[at].last_update_id
                else:
                    assert answer["lastUpdateId"] == depth[at - 1].last_update_id
            assert server.stats.rest_faults == ({} if mode == "normal" else {mode: 1})
            assert [s.last_update_id for s in server.snapshots_served] == [
                served["lastUpdateId"],
                next_served["lastUpdateId"],
            ]
            assert server.snapshots_served[0].bids == tuple(tuple(level) for level in served["bids"][:20])
            if straddle:
                book = ReferenceBook()
                book.load(served["lastUpdateId"], served["bids"], served["asks"])
                apply_depth(book, depth[sent_depth + shift], ())
                truth = VenueBooks(data, straddle=False)
                truth.advance_to(depth[sent_depth + shift].index)
                truth_book = truth.book("BTCUSDT")
                assert truth_book is not None
                assert book.bids() == truth_book.bids() and book.asks() == truth_book.asks()

    asyncio.run(run())


@pytest.mark.parametrize(("status", "code"), [(429, -1003), (503, -1008), (500, -1001)])
def test_rest_error_behaviour_then_recovery(data: ReplayData, status: int, code: int) -> None:
    async def run() -> None:
        schedule = parked(data, 2, RestBehaviour(0, "error", count=2, status=status))
        async with serving(data, schedule=schedule) as server:
            async with connect(f"{server.ws_url}/ws/{DEPTH}", compression=None) as ws:
                await recv_n(ws, 1)
                await recv_n(ws, len([f for f in data.frames[:2] if f.stream == DEPTH]) - 1)
                answers = [await http_get(server, "/api/v3/depth?symbol=BTCUSDT") for _ in range(3)]
            assert [s for s, _ in answers] == [status, status, 200]
            assert orjson.loads(answers[0][1])["code"] == code
            assert server.stats.rest_requests[f"depth:{status}"] == 2

    asyncio.run(run())


# Control entries.


@pytest.mark.parametrize("mode", ["close", "abort", "reset"])
def test_disconnect_modes_as_the_client_sees_them(data: ReplayData, mode: Literal["close", "abort", "reset"]) -> None:
    async def run() -> None:
        disconnect = Disconnect(0, mode, code=1008, reason="maintenance")
        async with serving(data, schedule=parked(data, 4, disconnect)) as server:
            async with connect(f"{server.ws_url}/stream?streams={DEPTH}/{TRADE}", compression=None) as ws:
                got = await recv_n(ws, 4)
                with pytest.raises(ConnectionClosed) as caught:
                    await ws.recv()
            assert got == [f.payload for f in data.frames[:4]]
            closed = caught.value
            if mode == "close":
                assert closed.rcvd is not None and (closed.rcvd.code, closed.rcvd.reason) == (1008, "maintenance")
            else:
                assert isinstance(closed, ConnectionClosedError) and closed.rcvd is None
            if mode == "reset":
                assert isinstance(closed.__cause__, ConnectionResetError)
            assert server.stats.disconnects == {mode: 1}
            (record,) = server.clients.values()
            assert record.close_cause == f"disconnect:{mode}"

    asyncio.run(run())


def test_refused_handshakes_get_the_status_and_binance_body(data: ReplayData) -> None:
    async def run() -> None:
        schedule = parked(data, 1, RefuseHandshakes(0, 429, 2))
        schedule = [schedule[0], schedule[1], Send(0, data.frames[1], data.frames[1].payload), *schedule[2:]]
        async with serving(data, schedule=schedule) as server:
            async with connect(f"{server.ws_url}/stream?streams={DEPTH}/{TRADE}", compression=None) as first:
                await recv_n(first, 2)
                for _ in range(2):
                    with pytest.raises(InvalidStatus) as caught:
                        async with connect(f"{server.ws_url}/ws/{DEPTH}", compression=None):
                            pass
                    assert caught.value.response.status_code == 429
                    assert orjson.loads(caught.value.response.body)["code"] == -1003
                async with connect(f"{server.ws_url}/ws/{DEPTH}", compression=None) as third:
                    reply, _ = await request(third, {"method": "LIST_SUBSCRIPTIONS", "id": 1})
                    assert reply == {"result": [DEPTH], "id": 1}
            assert server.stats.handshakes_refused == 2
            assert server.stats.clients_connected == 2

    asyncio.run(run())


def test_a_stream_url_asking_for_microseconds_is_refused_not_served_milliseconds(data: ReplayData) -> None:
    """binance-connector and python-binance add `timeUnit=` when asked; recorded frames are in milliseconds."""

    async def run() -> None:
        async with serving(data, speed=0) as server:
            with pytest.raises(InvalidStatus) as caught:
                async with connect(f"{server.ws_url}/ws/{DEPTH}?timeUnit=MICROSECOND", compression=None):
                    pass
            assert caught.value.response.status_code == 400
            assert "timeUnit=MICROSECOND" in orjson.loads(caught.value.response.body)["msg"]
            url = f"{server.ws_url}/stream?streams={DEPTH}&timeUnit=millisecond"
            async with connect(url, compression=None) as ws:
                assert depth_u(await recv_n(ws, 1)) == [data.frames[0].last_update_id]
            assert server.stats.clients_connected == 1

    asyncio.run(run())


def test_a_half_open_stall_leaves_client_pings_unanswered(data: ReplayData) -> None:
    async def run() -> None:
        stall = Stall(0, LATER, answer_pings=False)
        async with serving(data, schedule=parked(data, 3, stall)) as server:
            path = f"{server.ws_url}/stream?streams={DEPTH}/{TRADE}"
            async with connect(path, compression=None, ping_interval=0.05, ping_timeout=0.2, close_timeout=0.2) as ws:
                await recv_n(ws, 3)
                with pytest.raises(ConnectionClosedError) as caught:
                    await ws.recv()
            assert caught.value.sent is not None and caught.value.sent.code == 1011
            assert server.stats.frames_sent == 3

    asyncio.run(run())


def test_a_stall_that_answers_pings_keeps_the_connection_alive(data: ReplayData) -> None:
    async def run() -> None:
        stall = Stall(0, LATER, answer_pings=True)
        async with serving(data, schedule=parked(data, 3, stall)) as server:
            async with connect(f"{server.ws_url}/stream?streams={DEPTH}/{TRADE}", compression=None) as ws:
                await recv_n(ws, 3)
                for _ in range(3):
                    latency = await (await ws.ping())
                    assert latency >= 0
                reply, frames = await request(ws, {"method": "LIST_SUBSCRIPTIONS", "id": 1})
            assert frames == [] and reply["id"] == 1
            assert server.stats.frames_sent == 3

    asyncio.run(run())


def test_half_open_for_good_silences_open_connections_and_serves_new_ones(data: ReplayData) -> None:
    """The connection open at the HalfOpen hears nothing more (frames, pongs, pings) and is closed only by
    stop(); one made later gets the stream as usual."""
    tag = FaultTag("stall", "stall.0", 0)

    async def run() -> None:
        head = [Send(0, f, f.payload) for f in data.frames[:3]]
        tail = [Send(f.offset_ns + 10**9, f, f.payload) for f in data.frames[3:]]
        schedule: list[TimelineEntry] = [*head, HalfOpen(0, fault="stall", tags=(tag,)), *tail]
        server = VenueServer(data, schedule=schedule, speed=10, ping_interval_s=0.05, ping_timeout_s=0.1)
        await server.start()
        path = f"{server.ws_url}/stream?streams={DEPTH}/{TRADE}"
        try:
            async with asyncio.timeout(20):
                silent = await connect(path, compression=None, ping_interval=None, close_timeout=0.2)
                assert await recv_n(silent, 3) == [f.payload for f in data.frames[:3]]
                pong = await silent.ping()
                async with connect(path, compression=None) as fresh:
                    got = await recv_n(fresh, len(data.frames) - 3)
                assert got[-1] == data.frames[-1].payload
                # The fresh client was pinged every 50 ms and kept answering; the silent one got no pong
                # for its ping, and nothing else: the server's send log for it stops at the first three.
                assert isinstance(pong, asyncio.Future) and not pong.done()
                first, second = server.clients.values()
                assert len(first.sends) == 3 and first.closed_mono_ns is None
                assert len(second.sends) == len(data.frames) - 3
                assert server.served == {tag} and server.stats.half_open_connections == 1
        finally:
            await server.stop()
        with pytest.raises(ConnectionClosed):
            await silent.recv()
        assert first.close_cause == "half_open"

    asyncio.run(run())


def test_a_fault_is_served_only_when_it_meets_a_client(data: ReplayData) -> None:
    """Tags are recorded for what took effect: a frame written, a frame withheld from a subscriber, a
    disconnect that closed someone, the k-th refusal and REST answer; not for what met nobody."""
    tags = {name: FaultTag(name, name, 0) for name in ("send", "withheld", "elsewhere", "cut", "silence")}
    rest = (FaultTag("snapshot", "snapshot.0", 0), FaultTag("snapshot", "snapshot.0", 1))
    refusals = (FaultTag("handshake_refused", "h.0", 0), FaultTag("handshake_refused", "h.0", 1))
    first = data.frames[0]

    async def run() -> None:
        schedule = [
            Send(0, first, first.payload, tags=(tags["send"],)),
            Withheld(0, first.stream, tags=(tags["withheld"],)),
            Withheld(0, "ethusdt@depth@100ms", tags=(tags["elsewhere"],)),
            RestBehaviour(0, "error", 2, status=503, tags=rest),
            RefuseHandshakes(0, 503, 2, tags=refusals),
            Disconnect(0, "close", 1001, tags=(tags["cut"],)),
            HalfOpen(0, tags=(tags["silence"],)),
            *(Send(LATER, f, f.payload) for f in data.frames[1:]),
        ]
        async with serving(data, schedule=schedule) as server:
            async with connect(f"{server.ws_url}/ws/{first.stream}", compression=None) as ws:
                await recv_n(ws, 1)
                with pytest.raises(ConnectionClosed):
                    await ws.recv()
            statuses = [(await http_get(server, "/api/v3/depth?symbol=BTCUSDT"))[0] for _ in range(3)]
            with pytest.raises(InvalidStatus):
                async with connect(f"{server.ws_url}/ws/{first.stream}", compression=None):
                    pass
            assert statuses == [503, 503, 200]
            assert server.served == {tags["send"], tags["withheld"], tags["cut"], rest[0], rest[1], refusals[0]}

    asyncio.run(run())


def test_a_slow_reader_past_the_buffer_limit_is_dropped(tmp_path: Path) -> None:
    built = build_recording(tmp_path / "big", depth_frames=120, pad=150)
    data = load_replay_data(built.path)
    schedule: list[TimelineEntry] = [ClientBufferLimit(0, 64 * 1024)]
    # 8 ms apart: the sends outlast the venue's grace period, so staying over the limit is what drops.
    # The backlog passes the limit about 30 frames in (4 KiB depth frames), leaving over a second of
    # sends: a loaded loop that falls behind must lose more than that before the grace could be cut short.
    schedule += [Send(i * 8_000_000, f, f.payload) for i, f in enumerate(data.frames)]

    async def run() -> None:
        async with serving(data, schedule=schedule, socket_send_buffer=4096) as server:
            path = f"{server.ws_url}/stream?streams={DEPTH}/{TRADE}"
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.connect(("127.0.0.1", server.port))
            async with (
                connect(path, compression=None) as healthy,
                connect(path, compression=None, sock=sock, max_queue=1) as slow,
            ):
                got_healthy = await recv_n(healthy, len(data.frames))
                await server.finished.wait()
                got_slow = []
                with pytest.raises(ConnectionClosedError) as caught:
                    while True:
                        got_slow.append(await slow.recv(decode=False))
            assert got_healthy == [f.payload for f in data.frames]
            assert caught.value.rcvd is None
            payloads = [f.payload for f in data.frames]
            assert 0 < len(got_slow) < len(data.frames) // 2
            start = payloads.index(got_slow[0])
            assert got_slow == payloads[start : start + len(got_slow)]
            assert server.stats.slow_consumers_dropped == 1
            causes = sorted(record.close_cause or "open" for record in server.clients.values())
            assert causes == ["open", "slow_consumer"]

    asyncio.run(run())


def test_rest_truth_follows_the_clean_timeline_through_drops_duplicates_and_reorders(data: ReplayData) -> None:
    frames = data.frames
    depth = [f for f in frames if f.last_update_id is not None]
    dropped = depth[3].index
    faulted: list[Send] = []
    for f in frames:
        if f.index == dropped:
            continue
        faulted.append(Send(f.offset_ns, f, f.payload))
        if f.index == depth[5].index:
            faulted.append(Send(f.offset_ns, depth[1], depth[1].payload, fault="duplicate"))
    faulted[8], faulted[9] = faulted[9], faulted[8]
    books = VenueBooks(data)
    for entry in faulted[:6]:
        books.advance_to(entry.frame.index)
    book = books.book("BTCUSDT")
    assert book is not None and book.last_update_id == max(
        f.last_update_id for f in depth if f.last_update_id is not None and f.index <= faulted[5].frame.index
    )

    async def run() -> None:
        async with serving(data, schedule=faulted, speed=0) as server:
            async with connect(f"{server.ws_url}/stream?streams={DEPTH}/{TRADE}", compression=None) as ws:
                got = await recv_n(ws, len(faulted))
                await server.finished.wait()
                status, body = await http_get(server, "/api/v3/depth?symbol=BTCUSDT&limit=5000")
            assert status == 200
            assert got == [e.payload for e in faulted]
            assert [s.fault for s in server.send_log(1)].count("duplicate") == 1
            truth = VenueBooks(data)
            truth.advance_all()
            truth_book = truth.book("BTCUSDT")
            assert truth_book is not None
            assert orjson.loads(body)["lastUpdateId"] == truth_book.last_update_id == depth[-1].last_update_id
            assert orjson.loads(body)["bids"] == [list(level) for level in truth_book.bids()]

    asyncio.run(run())


# Running it from elsewhere.


def test_server_thread_serves_another_event_loop(data: ReplayData, built: Built) -> None:
    with ServerThread(data, speed=0) as server:

        async def client() -> list[bytes]:
            async with connect(f"{server.ws_url}/stream?streams={DEPTH}/{TRADE}", compression=None) as ws:
                return await recv_n(ws, len(built.served))

        got = asyncio.run(client())
    assert got == [p for _, p in built.served]


def test_the_bundled_fixture_replays_and_ends_on_the_venue_book() -> None:
    fixture = REPO / "fixtures" / "binance_spot_btcusdt_synth"
    if not fixture.exists():
        pytest.skip("bundled fixture not present")
    data = load_replay_data(fixture)

    async def run() -> None:
        async with (
            serving(data, speed=0) as server,
            connect(f"{server.ws_url}/stream?streams={'/'.join(data.streams)}", compression=None) as ws,
        ):
            got = await recv_n(ws, len(data.frames))
            await server.finished.wait()
            status, body = await http_get(server, "/api/v3/depth?symbol=BTCUSDT&limit=5000")
        assert got == [f.payload for f in data.frames]
        assert status == 200
        assert orjson.loads(body)["lastUpdateId"] == max(f.last_update_id or 0 for f in data.frames)

    asyncio.run(run())


def test_harness_serve_on_a_port_in_use_exits_2_with_one_line(built: Built) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "harness.cli", "serve", "--recording", str(built.path), "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=REPO,
        )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot listen on 127.0.0.1:") and str(port) in lines[0]


def test_harness_serve_on_a_bad_recording_exits_2_with_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "harness.cli", "serve", "--recording", str(tmp_path / "nothing")],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:")


@pytest.mark.parametrize("command", ["serve", "replay"])
def test_a_negative_rest_weight_limit_exits_2_with_one_line(built: Built, command: str) -> None:
    args = ["--recording", str(built.path), "--rest-weight-limit", "-1"]
    if command == "replay":
        args += ["--scenario", "clean"]
    result = subprocess.run(
        [sys.executable, "-m", "harness.cli", command, *args], capture_output=True, text=True, timeout=60, cwd=REPO
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--rest-weight-limit" in lines[0], lines


def test_the_server_pings_and_drops_a_peer_that_never_pongs(data: ReplayData) -> None:
    async def run() -> None:
        async with serving(data, ping_interval_s=0.05, ping_timeout_s=0.1) as server:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(
                b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
            )
            head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 101")
            opcodes: list[int] = []
            while not opcodes or opcodes[-1] != 0x8:
                first, length = await reader.readexactly(2)
                body = await reader.readexactly(length & 0x7F)
                opcodes.append(first & 0x0F)
            writer.close()
            assert opcodes[0] == 0x9
            assert int.from_bytes(body[:2], "big") == 1011
            (record,) = server.clients.values()
            assert record.sends == []

    asyncio.run(run())
