"""The client's own WebSocket reader (`harness.ws_connection`) against a raw scripted server on 127.0.0.1:
frames cut at every place a read can end, everything websockets' parser is trusted with (fragments,
pings, close, what a server must not send), refusals, and keepalive.
"""

from __future__ import annotations

import asyncio
import random
import ssl
from pathlib import Path

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import InvalidHandshake, InvalidStatus

from harness.ws_connection import ClientWebSocket, WebSocketOptions, open_websocket
from tests.client_probe import SAFETY_S, CallbackProbe, aio
from tests.raw_ws_server import (
    ClientFrame,
    answer_close,
    close_frame,
    handshake_response,
    raw_server,
    read_client_frame,
    server_frame,
)

PING, PONG, CLOSE, TEXT, CONT = 0x9, 0xA, 0x8, 0x1, 0x0


class Opened:
    """`on_open`'s record: the connection and the read's stamps, and the frames delivered before it."""

    def __init__(self, probe: CallbackProbe) -> None:
        self.calls: list[tuple[ClientWebSocket, int, int, int]] = []
        self._probe = probe

    def __call__(self, ws: ClientWebSocket, mono_ns: int, wall_ns: int) -> None:
        self.calls.append((ws, mono_ns, wall_ns, len(self._probe.frames)))


async def connect(
    url: str, probe: CallbackProbe, options: WebSocketOptions | None = None
) -> tuple[ClientWebSocket, Opened]:
    opened = Opened(probe)
    ws = await open_websocket(
        url, options or WebSocketOptions(), conn_id=7, on_message=probe.on_message, on_open=opened
    )
    return ws, opened


def payloads(count: int, rng: random.Random) -> list[bytes]:
    """Sizes that take each length encoding: 7-bit, 16-bit and 64-bit."""
    sizes = [0, 1, 125, 126, 127, 65535, 65536, 70000]
    return [bytes(rng.getrandbits(8) for _ in range(8)) * (sizes[i % len(sizes)] // 8) for i in range(count)]


@pytest.mark.parametrize("seed", [1, 2, 3])
@aio
async def test_frames_cut_anywhere_arrive_whole_and_in_order(seed: int) -> None:
    rng = random.Random(seed)
    sent = payloads(24, rng)
    stream = b"".join(server_frame(p, TEXT if i % 2 else 0x2) for i, p in enumerate(sent))

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: bytes) -> None:
        writer.write(handshake_response(head))
        pos = 0
        while pos < len(stream):  # every cut from a single byte to a few frames' worth
            step = rng.choice([1, 2, 3, 9, 130, 4096, 70001])
            writer.write(stream[pos : pos + step])
            await writer.drain()
            pos += step
        await answer_close(reader, writer)

    probe = CallbackProbe()
    async with raw_server(script) as url:
        ws, opened = await connect(url, probe)
        await probe.until(lambda: len(probe.frames) == len(sent))
        ws.close()
        await ws.wait_closed()
    assert [f[0] for f in probe.frames] == sent
    assert all(type(f[0]) is bytes and f[3] == 7 for f in probe.frames)
    assert ws.frames == len(sent) and len(opened.calls) == 1


@aio
async def test_frames_in_the_handshake_read_come_after_on_open_with_its_stamp() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: bytes) -> None:
        writer.write(handshake_response(head) + server_frame(b"a") + server_frame(b"b"))
        await answer_close(reader, writer)

    probe = CallbackProbe()
    async with raw_server(script) as url:
        ws, opened = await connect(url, probe)
        await probe.until(lambda: len(probe.frames) == 2)
        ws.close()
        await ws.wait_closed()
    [(_, mono_ns, wall_ns, frames_before)] = opened.calls
    assert frames_before == 0
    assert [f[:3] for f in probe.frames] == [(b"a", mono_ns, wall_ns), (b"b", mono_ns, wall_ns)]


@aio
async def test_a_fragmented_message_with_a_ping_inside_is_one_payload_and_the_ping_is_answered() -> None:
    pong: asyncio.Future[ClientFrame] = asyncio.get_running_loop().create_future()

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: bytes) -> None:
        writer.write(handshake_response(head) + server_frame(b"one"))
        writer.write(server_frame(b'{"par', TEXT, fin=False) + server_frame(b"ping!", PING))
        writer.write(server_frame(b't":1', CONT, fin=False) + server_frame(b"}", CONT) + server_frame(b"two"))
        pong.set_result(await read_client_frame(reader))
        await answer_close(reader, writer)

    probe = CallbackProbe()
    async with raw_server(script) as url:
        ws, _ = await connect(url, probe)
        await probe.until(lambda: len(probe.frames) == 3)
        async with asyncio.timeout(SAFETY_S):
            answer = await pong
        ws.close()
        await ws.wait_closed()
    assert [f[0] for f in probe.frames] == [b"one", b'{"part":1}', b"two"]
    assert (answer.opcode, answer.payload) == (PONG, b"ping!")


@aio
async def test_a_server_close_is_echoed_and_nothing_after_it_is_delivered() -> None:
    echoed: asyncio.Future[ClientFrame] = asyncio.get_running_loop().create_future()

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: bytes) -> None:
        writer.write(handshake_response(head) + server_frame(b"x") + close_frame(1001, "bye") + server_frame(b"late"))
        echoed.set_result(await read_client_frame(reader))

    probe = CallbackProbe()
    async with raw_server(script) as url:
        ws, _ = await connect(url, probe)
        async with asyncio.timeout(SAFETY_S):
            await ws.wait_closed()
            answer = await echoed
    assert [f[0] for f in probe.frames] == [b"x"]
    assert ws.protocol.close_rcvd is not None and (ws.protocol.close_rcvd.code, ws.protocol.close_rcvd.reason) == (
        1001,
        "bye",
    )
    assert answer.opcode == CLOSE and int.from_bytes(answer.payload[:2], "big") == 1001


@pytest.mark.parametrize(
    ("bad", "code"),
    [
        (server_frame(b"masked", mask=b"\x01\x02\x03\x04"), 1002),
        (server_frame(b"rsv", rsv=0b010), 1002),
        (server_frame(b"opcode", 0x3), 1002),
        (server_frame(b"p" * 126, PING), 1002),
        (server_frame(b"c", CONT), 1002),
        (server_frame(b"y" * 2000), 1009),
        (bytes((0x81, 127)) + (1 << 40).to_bytes(8, "big"), 1009),
    ],
    ids=["masked", "reserved-bits", "reserved-opcode", "long-ping", "stray-continuation", "too-big", "claims-1-TB"],
)
@aio
async def test_what_a_server_must_not_send_fails_the_connection_with_websockets_code(bad: bytes, code: int) -> None:
    told: asyncio.Future[ClientFrame] = asyncio.get_running_loop().create_future()

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: bytes) -> None:
        writer.write(handshake_response(head) + server_frame(b"fine") + bad + server_frame(b"after"))
        told.set_result(await read_client_frame(reader))
        writer.close()

    probe = CallbackProbe()
    async with raw_server(script) as url:
        ws, _ = await connect(url, probe, WebSocketOptions(max_size=1000))
        async with asyncio.timeout(SAFETY_S):
            answer = await told
            await ws.wait_closed()
    assert [f[0] for f in probe.frames] == [b"fine"]
    assert answer.opcode == CLOSE and int.from_bytes(answer.payload[:2], "big") == code
    assert ws.protocol.close_sent is not None and ws.protocol.close_sent.code == code


@pytest.mark.parametrize(
    "response",
    [
        b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusy",
        b"HTTP/1.1 429 Too Many Requests\r\n\r\nno length: read to the end",
    ],
)
@aio
async def test_a_refused_handshake_raises_invalid_status_with_its_code(response: bytes) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: bytes) -> None:
        writer.write(response[:20])
        await writer.drain()
        writer.write(response[20:])
        writer.write_eof()

    probe = CallbackProbe()
    async with raw_server(script) as url:
        with pytest.raises(InvalidStatus) as refused:
            await connect(url, probe)
    assert refused.value.response.status_code == int(response.split()[1])
    assert probe.frames == []


@aio
async def test_a_wrong_accept_key_is_refused() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: bytes) -> None:
        good = handshake_response(head)
        writer.write(good.replace(b"Accept: ", b"Accept: x"))
        await reader.read()

    async with raw_server(script) as url:
        with pytest.raises(InvalidHandshake):
            await connect(url, CallbackProbe())


@aio
async def test_a_server_that_never_answers_pings_is_failed_with_1011() -> None:
    told: asyncio.Future[ClientFrame] = asyncio.get_running_loop().create_future()

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: bytes) -> None:
        writer.write(handshake_response(head))
        while (frame := await read_client_frame(reader)).opcode == PING:
            pass
        told.set_result(frame)

    async with raw_server(script) as url:
        ws, _ = await connect(url, CallbackProbe(), WebSocketOptions(ping_interval_s=0.01, ping_timeout_s=0.02))
        async with asyncio.timeout(SAFETY_S):
            answer = await told
            await ws.wait_closed()
    assert answer.opcode == CLOSE and int.from_bytes(answer.payload[:2], "big") == 1011


@aio
async def test_compressed_messages_are_read_through_websockets_parser() -> None:
    sent = [b'{"e":"depthUpdate","u":%d}' % i * 20 for i in range(50)]

    async def handler(connection: ServerConnection) -> None:
        for payload in sent:
            await connection.send(payload.decode())
        await connection.wait_closed()

    probe = CallbackProbe()
    async with serve(handler, "127.0.0.1", 0, compression="deflate") as server:
        url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
        ws, _ = await connect(url, probe, WebSocketOptions(compression="deflate"))
        await probe.until(lambda: len(probe.frames) == len(sent))
        ws.close()
        await ws.wait_closed()
    assert ws.protocol.extensions, "the server accepted permessage-deflate"
    assert [f[0] for f in probe.frames] == sent


@aio
async def test_an_exception_from_on_message_is_kept_and_the_connection_aborted() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: bytes) -> None:
        writer.write(handshake_response(head) + server_frame(b"1") + server_frame(b"2") + server_frame(b"3"))
        await reader.read()

    seen: list[bytes] = []

    def on_message(payload: bytes, mono_ns: int, wall_ns: int, conn_id: int) -> None:
        seen.append(payload)
        if payload == b"2":
            raise RuntimeError("consumer bug")

    async with raw_server(script) as url:
        ws = await open_websocket(url, WebSocketOptions(), conn_id=1, on_message=on_message, on_open=lambda *_: None)
        async with asyncio.timeout(SAFETY_S):
            await ws.wait_closed()
    assert seen == [b"1", b"2"]
    assert isinstance(ws.failure, RuntimeError)
    assert ws.protocol.close_sent is None, "aborted, not closed: the consumer lost a frame"


def test_an_unknown_compression_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="compression"):
        WebSocketOptions(compression="brotli")


TLS = Path(__file__).parent / "tls"
"""A self-signed certificate for localhost and 127.0.0.1 (100 years), made for these tests only."""


@aio
async def test_wss_reads_through_tls_and_refuses_a_certificate_it_does_not_trust() -> None:
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(TLS / "localhost.crt", TLS / "localhost.key")
    trusting = ssl.create_default_context(cafile=TLS / "localhost.crt")
    sent = [b"x" * n for n in (10, 200, 70_000)]

    async def handler(connection: ServerConnection) -> None:
        for payload in sent:
            await connection.send(payload)
        await connection.wait_closed()

    probe = CallbackProbe()
    async with serve(handler, "127.0.0.1", 0, ssl=server_context) as server:
        url = f"wss://localhost:{server.sockets[0].getsockname()[1]}/"
        with pytest.raises(ssl.SSLCertVerificationError):
            await connect(url, CallbackProbe())
        ws, _ = await connect(url, probe, WebSocketOptions(ssl_context=trusting))
        await probe.until(lambda: len(probe.frames) == len(sent))
        ws.close()
        await ws.wait_closed()
    assert [f[0] for f in probe.frames] == sent
    assert ws.protocol.close_rcvd is not None and ws.protocol.close_rcvd.code == 1000
