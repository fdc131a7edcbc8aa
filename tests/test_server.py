"""The fake Binance spot venue over real loopback sockets: streams, control requests, REST and faults."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal

import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, ConnectionClosedError, InvalidStatus
from websockets.frames import Frame, Opcode

from replayer.replay_data import ReplayData, load_replay_data
from replayer.server import _BINARY_FRAME, _TEXT_FRAME, ServerThread, VenueServer, _frame_head
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
)
from replayer.venue_actions import Write
from tests.venue_recording import DEPTH, TRADE, Built, build_recording, sorted_levels

REPO = Path(__file__).resolve().parent.parent
LATER = 3600 * 10**9
"""An offset the tests never reach: it parks the replay walker so REST answers a known position."""


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
    per_frame: list[tuple[int, int, int, int]] = []
    per_write: list[tuple[int, int, int, int]] = []

    def on_send(client_id: int, entry: Send, intended: int, write_ns: int) -> None:
        per_frame.append((client_id, entry.frame.index, intended, write_ns))

    def on_written(client_id: int, writes: Sequence[Write], write_ns: int) -> None:
        per_write.extend((client_id, w.entry.frame.index, w.intended_mono_ns, write_ns) for w in writes if w.entry)

    async def run() -> None:
        async with serving(data, speed=0, on_send=on_send, on_written=on_written) as server:
            async with connect(f"{server.ws_url}/stream?streams={DEPTH}/{TRADE}", compression=None) as ws:
                got = await recv_n(ws, len(built.served))
                await server.finished.wait()
            assert got == [p for _, p in built.served]
            assert server.stats.frames_sent == len(got)
            (record,) = server.clients.values()
            assert [s.frame_index for s in record.sends] == list(range(len(got)))
            logged = [(record.client_id, s.frame_index, s.intended_mono_ns, s.write_mono_ns) for s in record.sends]
            assert per_write == per_frame == logged

    asyncio.run(run())


def test_control_messages_on_a_bare_ws_path_reach_the_core_and_its_replies_come_back(data: ReplayData) -> None:
    """The wiring of client messages: each is handed to the core and what it answers is sent, in order with
    the frames (tests/test_venue_core.py checks the protocol itself)."""

    async def run() -> None:
        async with serving(data, speed=0) as server, connect(f"{server.ws_url}/ws", compression=None) as ws:
            reply, before = await request(ws, {"method": "LIST_SUBSCRIPTIONS", "id": 3})
            assert (reply, before) == ({"result": [], "id": 3}, [])
            assert server.clock_start_mono_ns is None
            reply, _ = await request(ws, {"method": "SUBSCRIBE", "params": [TRADE], "id": 1})
            assert reply == {"result": None, "id": 1}
            reply, frames = await request(ws, {"method": "UNSUBSCRIBE", "params": [TRADE], "id": 312})
            assert reply == {"result": None, "id": 312}
            await ws.send("{not json")
            error = orjson.loads(await ws.recv(decode=False))
            assert error["error"]["code"] == 3 and error["id"] is None
            assert server.clock_start_mono_ns is not None
            assert all(orjson.loads(f)["e"] == "trade" for f in frames)

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


def test_a_message_past_the_frame_limit_closes_with_1009_and_the_neighbour_is_served(data: ReplayData) -> None:
    async def run() -> None:
        async with serving(data, speed=0, max_frame_bytes=1024) as server:
            path = f"{server.ws_url}/stream?streams={DEPTH}/{TRADE}"
            async with connect(f"{server.ws_url}/ws", compression=None) as rude, connect(path, compression=None) as ok:
                await rude.send("x" * 1025)
                with pytest.raises(ConnectionClosed) as closed:
                    await rude.recv()
                assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
                assert len(await recv_n(ok, len(data.frames))) == len(data.frames)

    asyncio.run(run())


def test_a_connection_past_the_limit_is_refused_with_503_until_one_closes(data: ReplayData) -> None:
    async def run() -> None:
        closed = asyncio.Event()

        def log(line: str) -> None:
            if line.startswith("connection 2 closed"):
                closed.set()

        async with serving(data, speed=0, max_connections=2, log=log) as server:
            url = f"{server.ws_url}/ws"
            async with connect(url, compression=None), connect(url, compression=None) as second:
                with pytest.raises(InvalidStatus) as caught:
                    async with connect(url, compression=None):
                        pass
                assert caught.value.response.status_code == 503
                assert orjson.loads(caught.value.response.body)["code"] == -1008
                await second.close()
                await closed.wait()  # the venue sees the close after the client does
                async with connect(url, compression=None) as third:
                    reply, _ = await request(third, {"method": "LIST_SUBSCRIPTIONS", "id": 1})
                    assert reply == {"result": [], "id": 1}
            assert server.stats.connections_refused == 1

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


# Framing: the writer frames data itself, byte for byte as websockets would.


@pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536])
def test_the_writer_frames_data_as_websockets_does(size: int) -> None:
    payload = bytes(range(256)) * (size // 256) + bytes(size % 256)
    for first, opcode in ((_TEXT_FRAME, Opcode.TEXT), (_BINARY_FRAME, Opcode.BINARY)):
        assert _frame_head(first, size) + payload == Frame(opcode, payload).serialize(mask=False)


# REST.


def test_a_client_syncing_by_binance_rules_ends_with_the_venue_book(tmp_path: Path) -> None:
    # Frames big enough, and a reader slow enough, that the walker is held mid-stream when the snapshot is asked.
    built = build_recording(tmp_path / "big", depth_frames=120, pad=120)
    data = load_replay_data(built.path)

    async def run() -> None:
        async with (
            serving(data, speed=0, socket_send_buffer=4096) as server,
            connect(f"{server.ws_url}/stream?streams={DEPTH}", compression=None, max_queue=1) as ws,
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
        assert final["bids"] == sorted_levels(bids, True) == sorted_levels(built.bids, True)
        assert final["asks"] == sorted_levels(asks, False) == sorted_levels(built.asks, False)

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


def test_a_slow_rest_answer_is_held_then_served_and_logged(data: ReplayData) -> None:
    """The shell holds a slow answer for its delay, then sends it and tells the core when it went out."""

    async def run() -> None:
        slow = RestBehaviour(0, "slow", count=1, delay_ns=50_000_000)
        async with serving(data, schedule=parked(data, 2, slow)) as server:
            async with connect(f"{server.ws_url}/ws/{DEPTH}", compression=None) as ws:
                await recv_n(ws, 1)
                asked = time.monotonic_ns()
                status, body = await http_get(server, "/api/v3/depth?symbol=BTCUSDT&limit=5000")
            assert status == 200
            (served,) = server.snapshots_served
            assert served.last_update_id == orjson.loads(body)["lastUpdateId"]
            assert served.served_mono_ns > asked
            assert server.stats.rest_faults == {"slow": 1}

    asyncio.run(run())


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
