"""A scripted WebSocket server for the client's wire tests: it answers the handshake, then writes exactly
the bytes a test gives it, split where the test says, and reads back the client's masked frames.

websockets' own server would refuse to send most of what these tests need (a masked frame, reserved
bits, a length it does not mean to send), hence raw sockets.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def server_frame(
    payload: bytes, opcode: int = 0x1, *, fin: bool = True, rsv: int = 0, mask: bytes | None = None
) -> bytes:
    """One frame as a server writes it (unmasked unless `mask` is given, which a server must not do)."""
    first = (0x80 if fin else 0) | rsv << 4 | opcode
    n = len(payload)
    mask_bit = 0x80 if mask is not None else 0
    if n < 126:
        header = bytes((first, mask_bit | n))
    elif n < 1 << 16:
        header = bytes((first, mask_bit | 126)) + n.to_bytes(2, "big")
    else:
        header = bytes((first, mask_bit | 127)) + n.to_bytes(8, "big")
    if mask is None:
        return header + payload
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def close_frame(code: int, reason: str = "") -> bytes:
    return server_frame(code.to_bytes(2, "big") + reason.encode(), 0x8)


def handshake_response(request: bytes) -> bytes:
    key = next(
        line.split(b":", 1)[1].strip()
        for line in request.split(b"\r\n")
        if line.lower().startswith(b"sec-websocket-key:")
    )
    accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
    return (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
    )


@dataclass(frozen=True, slots=True)
class ClientFrame:
    opcode: int
    fin: bool
    payload: bytes


async def read_client_frame(reader: asyncio.StreamReader) -> ClientFrame:
    """One frame from the client, unmasked (a client must mask every frame)."""
    first, second = await reader.readexactly(2)
    assert second & 0x80, "a client frame must be masked"
    n = second & 0x7F
    if n == 126:
        n = int.from_bytes(await reader.readexactly(2), "big")
    elif n == 127:
        n = int.from_bytes(await reader.readexactly(8), "big")
    mask = await reader.readexactly(4)
    data = await reader.readexactly(n)
    return ClientFrame(first & 0x0F, bool(first & 0x80), bytes(b ^ mask[i % 4] for i, b in enumerate(data)))


async def answer_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Reads the client's frames until its close, and echoes that close (the script then ends the TCP
    connection, as a server does)."""
    while (frame := await read_client_frame(reader)).opcode != 0x8:
        pass
    writer.write(server_frame(frame.payload, 0x8))


Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter, bytes], Awaitable[None]]


@asynccontextmanager
async def raw_server(script: Script) -> AsyncIterator[str]:
    """Serves `script(reader, writer, request_head)` on 127.0.0.1; yields the ws:// URL. The script
    answers the handshake itself (see `handshake_response`), so it can refuse or garble it too."""
    tasks: set[asyncio.Task[None]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        tasks.add(asyncio.current_task())  # type: ignore[arg-type]
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            await script(reader, writer, head)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/ws"
    finally:
        server.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()
