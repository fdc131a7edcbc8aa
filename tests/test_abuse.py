"""Abuse on the wire: a running venue (real sockets on 127.0.0.1, port 0) against what a broken client or
an attacker sends.

Each case must end in the venue's own error reply, an HTTP error status, or a close with the code the
WebSocket protocol names for it, in bounded time (every test runs under a timeout) and bounded memory
(an oversized frame is refused on its header, before its payload is read). Beside every case a
well-behaved client receives every frame of the replay, and once the abuse is over the venue holds no
more descriptors or tasks than before it. docs/reliability.md lists the cases, the codes and why.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect as connect_sync

from bench.venue_abuse import masked_frame
from bench.venue_load import counts_settled, resource_counts
from harness.venues.binance_spot.streams import MAX_STREAMS_PER_CONNECTION
from replayer.replay_data import ReplayData, load_replay_data
from replayer.server import ServerThread, VenueServer
from replayer.venue_limits import DEFAULT_MAX_FRAME_BYTES as MAX_MESSAGE_BYTES

SPEED = 20.0
"""The 10 s recording in half a second: the abuse starts while the witness is being served."""
HANDSHAKE_TIMEOUT_S = 0.5
"""The venue's limit on the time a request may take to arrive, made short for the slowloris cases."""
CASE_TIMEOUT_S = 30.0

UNSUPPORTED_DATA = 1003
INVALID_PAYLOAD = 1007
POLICY_VIOLATION = 1008
MESSAGE_TOO_BIG = 1009


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> ReplayData:
    from harness.synth.run import write_synthetic_recording

    return load_replay_data(write_synthetic_recording(tmp_path_factory.mktemp("abuse") / "rec", seconds=10, seed=3))


@dataclass
class Witness:
    """A well-behaved client on every recorded stream: it must receive each frame, in order."""

    ws: ClientConnection
    received: list[bytes] = field(default_factory=list)

    async def read_all(self, count: int) -> None:
        while len(self.received) < count:
            self.received.append(await self.ws.recv(decode=False))


@asynccontextmanager
async def venue_beside_witness(data: ReplayData, **kwargs: Any) -> AsyncIterator[VenueServer]:
    """A venue replaying `data` to a witness; after the block: the witness got every frame, and the
    venue's descriptors and tasks are back to their count before the block."""
    server = VenueServer(data, speed=SPEED, **kwargs)
    await server.start()
    try:
        async with asyncio.timeout(CASE_TIMEOUT_S):
            streams = "/".join(data.streams)
            async with connect(f"{server.ws_url}/stream?streams={streams}", compression=None) as ws:
                witness = Witness(ws)
                before = resource_counts()
                yield server
                await witness.read_all(len(data.frames))
                assert witness.received == [f.payload for f in data.frames]
                assert await counts_settled(before) == before
    finally:
        await server.stop()


async def closed_with(ws: ClientConnection) -> tuple[int | None, str, list[bytes]]:
    """Reads until the venue closes: (its close code, None if it sent none; the reason; replies read)."""
    replies: list[bytes] = []
    try:
        while True:
            replies.append(await ws.recv(decode=False))
    except ConnectionClosed as closed:
        if closed.rcvd is None:
            return None, "", replies
        return closed.rcvd.code, closed.rcvd.reason, replies


async def http_exchange(port: int, request: bytes, *, half_close: bool = False) -> bytes:
    """Sends `request` raw and reads until the venue closes; `half_close` ends our side after it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        if half_close and writer.can_write_eof():
            writer.write_eof()
        with contextlib.suppress(ConnectionResetError):
            return await reader.read()
        return b""
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


def status_of(response: bytes) -> int | None:
    """The HTTP status of `response`, None when the venue closed without answering."""
    if not response:
        return None
    line = response.split(b"\r\n", 1)[0]
    assert line.startswith(b"HTTP/1.1 "), response[:80]
    return int(line.split()[1])


def run(case: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(case())


# Frames.


def test_a_message_over_the_size_limit_is_closed_with_1009(data: ReplayData) -> None:
    async def case() -> None:
        async with venue_beside_witness(data) as server:
            async with connect(f"{server.ws_url}/ws", compression=None, max_size=None) as ws:
                await ws.send("x" * (MAX_MESSAGE_BYTES + 1))
                code, _, replies = await closed_with(ws)
            assert (code, replies) == (MESSAGE_TOO_BIG, [])
            # Fragments that add up to more than the limit: refused as the total passes it.
            async with connect(f"{server.ws_url}/ws", compression=None, max_size=None) as ws:
                chunk = "y" * (MAX_MESSAGE_BYTES // 4)
                await ws.send(iter([chunk] * 5))
                code, _, replies = await closed_with(ws)
            assert (code, replies) == (MESSAGE_TOO_BIG, [])

    run(case)


def test_a_frame_header_declaring_a_huge_length_is_refused_before_any_payload(data: ReplayData) -> None:
    async def case() -> None:
        async with venue_beside_witness(data) as server:
            async with connect(f"{server.ws_url}/ws", compression=None) as ws:
                # Only the header goes out: the venue must answer it without waiting for 2**62 bytes.
                ws.transport.write(masked_frame(0x1, b"", declared=2**62))
                code, _, replies = await closed_with(ws)
            assert (code, replies) == (MESSAGE_TOO_BIG, [])

    run(case)


def test_invalid_utf8_in_a_text_frame_is_closed_with_1007(data: ReplayData) -> None:
    async def case() -> None:
        async with venue_beside_witness(data) as server:
            async with connect(f"{server.ws_url}/ws", compression=None) as ws:
                await ws.send(b'{"method":"LIST_SUBSCRIPTIONS","id":1,"x":"\xff\xfe"}', text=True)
                code, _, replies = await closed_with(ws)
            assert (code, replies) == (INVALID_PAYLOAD, [])

    run(case)


def test_a_binary_frame_where_text_is_expected_is_closed_with_1003(data: ReplayData) -> None:
    async def case() -> None:
        async with venue_beside_witness(data) as server:
            async with connect(f"{server.ws_url}/ws", compression=None) as ws:
                await ws.send(orjson.dumps({"method": "SUBSCRIBE", "params": ["btcusdt@trade"], "id": 1}))
                code, _, replies = await closed_with(ws)
            assert (code, replies) == (UNSUPPORTED_DATA, [])

    run(case)


def test_unknown_methods_and_bad_requests_get_binance_errors_and_the_connection_stays(data: ReplayData) -> None:
    async def case() -> None:
        async with (
            venue_beside_witness(data, messages_per_second=None) as server,
            connect(f"{server.ws_url}/ws", compression=None) as ws,
        ):
            asks: list[tuple[str, dict[str, Any]]] = [
                ('{"method":"DELETE_EVERYTHING","params":[],"id":7}', {"code": 2, "id": 7}),
                ('{"method":"SUBSCRIBE","params":[],"id":-1.5}', {"code": 2, "id": None}),
                ("[1,2,3]", {"code": 3, "id": None}),
                ("not json at all", {"code": 3, "id": None}),
                ('{"method":"SUBSCRIBE","params":"btcusdt@trade","id":8}', {"code": 2, "id": 8}),
                ('{"method":"SET_PROPERTY","params":["combined","yes"],"id":9}', {"code": 1, "id": 9}),
            ]
            for message, want in asks:
                await ws.send(message)
                reply = orjson.loads(await ws.recv(decode=False))
                assert (reply["error"]["code"], reply["id"]) == (want["code"], want["id"]), message
            await ws.send('{"method":"LIST_SUBSCRIPTIONS","id":10}')
            assert orjson.loads(await ws.recv(decode=False)) == {"result": [], "id": 10}

    run(case)


# Floods.


def test_ten_thousand_subscribe_requests_end_in_1008_after_the_fifth(data: ReplayData) -> None:
    async def case() -> None:
        async with venue_beside_witness(data) as server:
            async with connect(f"{server.ws_url}/ws", compression=None) as ws:
                flood = b"".join(
                    masked_frame(0x1, b'{"method":"SUBSCRIBE","params":["btcusdt@trade"],"id":%d}' % i)
                    for i in range(10_000)
                )
                ws.transport.write(flood)
                code, reason, replies = await closed_with(ws)
            assert (code, reason) == (POLICY_VIOLATION, "Too many requests")
            # The venue cuts the client off: replies not yet written when the sixth arrived are dropped.
            assert [orjson.loads(r) for r in replies] == [{"result": None, "id": i} for i in range(len(replies))]
            assert len(replies) <= 5
            assert server.stats.too_many_requests == 1

    run(case)


def test_one_subscribe_naming_ten_thousand_streams_is_refused(data: ReplayData) -> None:
    async def case() -> None:
        async with venue_beside_witness(data) as server:
            # 10,000 names pass the message size limit: closed before the request is read.
            async with connect(f"{server.ws_url}/ws", compression=None, max_size=None) as ws:
                names = [f"s{i}usdt@trade" for i in range(10_000)]
                await ws.send(orjson.dumps({"method": "SUBSCRIBE", "params": names, "id": 1}).decode())
                code, _, replies = await closed_with(ws)
            assert (code, replies) == (MESSAGE_TOO_BIG, [])
            # 1,025 short names fit in a message and pass the stream limit: refused, nothing subscribed.
            async with connect(f"{server.ws_url}/ws", compression=None) as ws:
                names = [f"s{i}@trade" for i in range(MAX_STREAMS_PER_CONNECTION + 1)]
                await ws.send(orjson.dumps({"method": "SUBSCRIBE", "params": names, "id": 1}).decode())
                reply = orjson.loads(await ws.recv(decode=False))
                assert (reply["error"]["code"], reply["id"]) == (2, 1)
                await ws.send('{"method":"LIST_SUBSCRIPTIONS","id":2}')
                assert orjson.loads(await ws.recv(decode=False)) == {"result": [], "id": 2}

    run(case)


def test_streams_beyond_the_per_connection_limit_are_refused(data: ReplayData) -> None:
    async def case() -> None:
        async with venue_beside_witness(data, messages_per_second=None) as server:
            async with connect(f"{server.ws_url}/ws", compression=None) as ws:
                batch = 1000
                replies = []
                for k in range(10):
                    names = [f"s{k}x{i}usdt@trade" for i in range(batch)]
                    await ws.send(orjson.dumps({"method": "SUBSCRIBE", "params": names, "id": k}).decode())
                    replies.append(orjson.loads(await ws.recv(decode=False)))
                await ws.send('{"method":"LIST_SUBSCRIPTIONS","id":99}')
                held = orjson.loads(await ws.recv(decode=False))["result"]
            assert replies[0] == {"result": None, "id": 0}
            assert all(reply["error"]["code"] == 2 for reply in replies[1:])
            assert len(held) == batch <= MAX_STREAMS_PER_CONNECTION

    run(case)


def test_a_client_that_subscribes_and_never_reads_is_dropped_past_the_backlog_limit(data: ReplayData) -> None:
    async def case() -> None:
        limit = 16 * 1024
        async with venue_beside_witness(data, max_backlog_bytes=limit, socket_send_buffer=4096) as server:
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.connect(("127.0.0.1", server.port))
            streams = "/".join(data.streams)
            url = f"{server.ws_url}/stream?streams={streams}"
            async with connect(url, compression=None, sock=sock, max_queue=1) as idle:
                await server.finished.wait()  # it read nothing while the whole replay was sent
                code, _, _ = await closed_with(idle)
            assert code is None  # dropped without a close frame, as a slow consumer
            causes = [record.close_cause for record in server.clients.values()]
            assert causes.count("slow_consumer") == server.stats.slow_consumers_dropped == 1

    run(case)


# HTTP.


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET /ws/" + b"a" * 10_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
        (b"GET /ws HTTP/1.1\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(200)) + b"\r\n", 431),
        (b"GET /ws HTTP/1.1\r\nHost: x\r\n\r\n", 426),
        (b"GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n", 404),
        # What websockets' HTTP parser cannot read it drops without an answer (docs/reliability.md).
        (b"GARBAGE\r\n\r\n", None),
        (b"GET /ws HTTP/0.9\r\n\r\n", None),
        (b"POST /api/v3/depth HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", None),
        (bytes(range(256)) * 4 + b"\r\n\r\n", None),
    ],
    ids=["line-too-long", "too-many-headers", "no-upgrade", "unknown-path", "garbage", "http-0.9", "post", "binary"],
)
def test_malformed_http_gets_an_error_status_or_a_close(
    data: ReplayData, request_bytes: bytes, status: int | None
) -> None:
    async def case() -> None:
        async with venue_beside_witness(data) as server:
            assert status_of(await http_exchange(server.port, request_bytes)) == status

    run(case)


def slowloris(count: int) -> Callable[[VenueServer], Awaitable[None]]:
    """`count` requests that stop half-way and never finish: the venue must close each one itself."""
    partial = b"GET /ws/btcusdt@trade HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"

    async def attack(server: VenueServer) -> None:
        answers = await asyncio.gather(
            *(http_exchange(server.port, partial[: 10 + i % (len(partial) - 10)]) for i in range(count))
        )
        assert {status_of(answer) for answer in answers} == {None}

    return attack


def test_slowloris_requests_are_closed_after_the_handshake_timeout(data: ReplayData) -> None:
    async def case() -> None:
        async with venue_beside_witness(data, handshake_timeout_s=HANDSHAKE_TIMEOUT_S) as server:
            await slowloris(50)(server)

    run(case)


@pytest.mark.slow
def test_a_thousand_slowloris_requests_are_all_closed_and_the_venue_serves_on(data: ReplayData) -> None:
    async def case() -> None:
        async with venue_beside_witness(data, handshake_timeout_s=HANDSHAKE_TIMEOUT_S) as server:
            await slowloris(1000)(server)

    run(case)


def test_a_handshake_past_the_connection_limit_is_refused_with_503(data: ReplayData) -> None:
    async def case() -> None:
        async with venue_beside_witness(data, max_connections=4) as server:
            url = f"{server.ws_url}/ws"  # no stream: nothing queues up for the held connections
            held = [await connect(url, compression=None) for _ in range(3)]  # the witness is the fourth
            with pytest.raises(InvalidStatus) as refused:
                await connect(url, compression=None)
            assert refused.value.response.status_code == 503
            assert orjson.loads(refused.value.response.body)["code"] == -1008
            for ws in held:
                await ws.close()
            async with connect(url, compression=None) as again:  # room again once they have gone
                assert again.response is not None and again.response.status_code == 101

    run(case)


def connections_opened_and_dropped(count: int) -> Callable[[VenueServer], Awaitable[None]]:
    """`count` connections in batches: bare TCP closed at once, half a request then a reset, a full
    handshake then an abort (no close frame): each a way a crashed or hostile client leaves."""

    async def one(server: VenueServer, k: int) -> None:
        if k % 3 == 0:
            _, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.close()
        elif k % 3 == 1:
            sock = socket.create_connection(("127.0.0.1", server.port))
            sock.sendall(b"GET /ws/btcusdt@trade HTTP/1.1\r\nHost: x\r\n")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()
        else:
            with contextlib.suppress(InvalidStatus):
                ws = await connect(f"{server.ws_url}/ws/btcusdt@trade", compression=None)
                ws.transport.abort()

    async def churn(server: VenueServer) -> None:
        batch = 100
        for start in range(0, count, batch):
            await asyncio.gather(*(one(server, k) for k in range(start, min(count, start + batch))))

    return churn


def test_hundreds_of_connections_opened_and_dropped_leave_nothing_behind(data: ReplayData) -> None:
    async def case() -> None:
        async with venue_beside_witness(data) as server:
            await connections_opened_and_dropped(600)(server)

    run(case)


@pytest.mark.slow
def test_thousands_of_connections_opened_and_dropped_leave_nothing_behind(data: ReplayData) -> None:
    async def case() -> None:
        async with venue_beside_witness(data) as server:
            await connections_opened_and_dropped(6000)(server)

    run(case)


# Hypothesis: whatever arrives, one reply per message, or a close with a code the protocol names.


@pytest.fixture(scope="module")
def thread_venue(data: ReplayData) -> Any:
    thread = ServerThread(data, speed=0, messages_per_second=None)
    server = thread.start()
    yield server
    thread.stop()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
requests = st.fixed_dictionaries(
    {},
    optional={
        "method": st.sampled_from(["SUBSCRIBE", "UNSUBSCRIBE", "LIST_SUBSCRIPTIONS", "SET_PROPERTY", "GET_PROPERTY"])
        | st.text(max_size=12),
        "params": json_values,
        "id": json_values,
    },
)
messages = st.one_of(
    requests.map(lambda doc: orjson.dumps(doc).decode()),
    st.text(max_size=200),
    json_values.map(lambda value: orjson.dumps(value).decode()),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=st.lists(messages, min_size=1, max_size=5))
def test_any_text_gets_exactly_one_reply_per_message(thread_venue: VenueServer, batch: list[str]) -> None:
    with connect_sync(f"{thread_venue.ws_url}/ws", compression=None, open_timeout=10) as ws:
        for message in batch:
            ws.send(message)
            reply = orjson.loads(ws.recv(timeout=10))
            assert isinstance(reply, dict) and "id" in reply
            assert ("result" in reply) != ("error" in reply)
            if "error" in reply:
                assert reply["error"]["code"] in (0, 1, 2, 3)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frame=st.binary(max_size=300), opcode=st.sampled_from([0x1, 0x2]))
def test_any_frame_gets_a_reply_or_a_protocol_close(thread_venue: VenueServer, frame: bytes, opcode: int) -> None:
    with connect_sync(f"{thread_venue.ws_url}/ws", compression=None, open_timeout=10) as ws:
        ws.socket.sendall(masked_frame(opcode, frame))
        try:
            reply = orjson.loads(ws.recv(timeout=10))
        except ConnectionClosed as closed:
            assert closed.rcvd is not None
            assert closed.rcvd.code in (UNSUPPORTED_DATA, INVALID_PAYLOAD)
            assert closed.rcvd.code == (UNSUPPORTED_DATA if opcode == 0x2 else INVALID_PAYLOAD)
        else:
            assert opcode == 0x1
            assert ("result" in reply) != ("error" in reply)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(request_bytes=st.binary(max_size=400))
def test_any_http_request_gets_a_status_or_a_close(thread_venue: VenueServer, request_bytes: bytes) -> None:
    async def case() -> bytes:
        return await http_exchange(thread_venue.port, request_bytes + b"\r\n\r\n")

    answer = asyncio.run(asyncio.wait_for(case(), CASE_TIMEOUT_S))
    status = status_of(answer)
    assert status is None or 400 <= status < 500
