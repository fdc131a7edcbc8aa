"""Abuse on the wire, measured: what the venue holds while it is attacked, and after.

`python -m bench.venue_abuse` runs the fake venue (the bundled fixture at speed 1, no faults) in a child
process and, from this one, a witness client on every stream beside waves of abuse: thousands of
connections opened and dropped, half-sent requests left to time out (slowloris), floods of SUBSCRIBE
requests, oversized and binary frames. After each wave the venue reports its RSS, descriptors, tasks and
live Python objects; at the end the witness must hold every frame the venue wrote to it. Memory is
bounded when those figures come back to where they were, however many connections came and went.
The waves run `--rounds` times: what the allocator keeps after the first round is its high-water mark,
what grows again in the next is held by the venue. `tests/test_abuse.py` asserts each case's answer;
this reports what the venue paid for them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import socket
import struct
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass

import orjson
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from harness.replay import BUNDLED_FIXTURE
from replayer.replay_data import load_replay_data
from replayer.server import VenueServer

PAGE = os.sysconf("SC_PAGE_SIZE")
HANDSHAKE_TIMEOUT_S = 0.5


def masked_frame(opcode: int, payload: bytes, *, declared: int | None = None, fin: bool = True) -> bytes:
    """A client frame as RFC 6455 writes it (masked), its length field `declared` when given."""
    length = len(payload) if declared is None else declared
    head = bytes([(0x80 if fin else 0) | opcode])
    if length < 126:
        head += bytes([0x80 | length])
    elif length < 2**16:
        head += bytes([0x80 | 126]) + struct.pack("!H", length)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", length)
    mask = os.urandom(4)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


@dataclass(slots=True)
class Snapshot:
    """The venue process at one moment."""

    rss_mib: float
    fds: int
    tasks: int
    py_objects: int
    open_clients: int
    witness_frames: int
    """Frames written to the first connection, the witness."""


# The venue process.


async def serve_child() -> None:
    """Prints `port N`; on each stdin line answers one JSON `Snapshot` (after a collection); EOF stops."""
    data = load_replay_data(BUNDLED_FIXTURE)
    witness_frames = 0

    def on_send(client_id: int, *_: object) -> None:
        nonlocal witness_frames
        witness_frames += client_id == 1

    server = VenueServer(data, speed=1.0, handshake_timeout_s=HANDSHAKE_TIMEOUT_S, keep_send_log=False, on_send=on_send)
    await server.start()
    print(f"port {server.port}", flush=True)
    loop = asyncio.get_running_loop()
    while await loop.run_in_executor(None, sys.stdin.readline):
        gc.collect()
        with open("/proc/self/statm") as statm:
            rss = int(statm.read().split()[1]) * PAGE / 2**20
        snapshot = Snapshot(
            rss,
            len(os.listdir("/proc/self/fd")),
            sum(t.get_name() != "venue-replay" for t in asyncio.all_tasks()),
            len(gc.get_objects()),
            server.stats.clients_open,
            witness_frames,
        )
        print(orjson.dumps(asdict(snapshot)).decode(), flush=True)
    await server.stop()


# The abuse, from this process.


async def _one_dropped(port: int, k: int) -> None:
    if k % 3 == 0:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.close()
    elif k % 3 == 1:
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(b"GET /ws/btcusdt@trade HTTP/1.1\r\nHost: x\r\n")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
    else:
        with contextlib.suppress(InvalidHandshake):
            ws = await connect(f"ws://127.0.0.1:{port}/ws/btcusdt@trade", compression=None)
            ws.transport.abort()


async def dropped_connections(port: int, count: int) -> None:
    """`count` connections, 100 at a time: bare TCP closed, half a request then a reset, a handshake then
    an abort without a close frame."""
    for start in range(0, count, 100):
        await asyncio.gather(*(_one_dropped(port, k) for k in range(start, min(count, start + 100))))


async def slowloris(port: int, count: int) -> None:
    """`count` requests stopped half-way, held open until the venue closes them."""
    partial = b"GET /ws/btcusdt@trade HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"

    async def one(k: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(partial[: 10 + k % (len(partial) - 10)])
        with contextlib.suppress(ConnectionError):
            await reader.read()
        writer.close()

    await asyncio.gather(*(one(k) for k in range(count)))


async def _frames_then_close(port: int, blob: bytes) -> None:
    async with connect(f"ws://127.0.0.1:{port}/ws", compression=None) as ws:
        ws.transport.write(blob)
        with contextlib.suppress(ConnectionClosed):
            while True:
                await ws.recv()


async def floods(port: int, count: int) -> None:
    """`count` connections each writing 10,000 SUBSCRIBE requests at once."""
    blob = b"".join(
        masked_frame(0x1, b'{"method":"SUBSCRIBE","params":["btcusdt@trade"],"id":%d}' % i) for i in range(10_000)
    )
    for start in range(0, count, 50):
        await asyncio.gather(*(_frames_then_close(port, blob) for _ in range(start, min(count, start + 50))))


async def bad_frames(port: int, count: int) -> None:
    """`count` connections each sending one bad frame: a header announcing 2**62 bytes, a binary request,
    or invalid UTF-8, in turn."""
    kinds = [
        masked_frame(0x1, b"", declared=2**62),
        masked_frame(0x2, b'{"method":"SUBSCRIBE","params":["btcusdt@trade"],"id":1}'),
        masked_frame(0x1, b'{"method":"LIST_SUBSCRIPTIONS","id":1,"x":"\xff"}'),
    ]
    for start in range(0, count, 100):
        await asyncio.gather(*(_frames_then_close(port, kinds[k % 3]) for k in range(start, min(count, start + 100))))


Wave = tuple[str, Callable[[int], Awaitable[None]]]


def waves(scale: int) -> list[Wave]:
    return [
        (f"{6 * scale:,} connections opened and dropped", lambda port: dropped_connections(port, 6 * scale)),
        (f"{scale:,} slowloris requests", lambda port: slowloris(port, scale)),
        (f"{scale // 10:,} floods of 10,000 SUBSCRIBE", lambda port: floods(port, scale // 10)),
        (f"{3 * scale // 10:,} bad frames", lambda port: bad_frames(port, 3 * scale // 10)),
    ]


async def run(scale: int, rounds: int) -> tuple[list[tuple[str, Snapshot, float]], int, int]:
    """Each wave's name, the venue after it, and its seconds; then frames written to the witness and read."""
    venue = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.venue_abuse", "--serve",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert venue.stdin is not None and venue.stdout is not None
    port = int((await venue.stdout.readline()).split()[1])

    async def snapshot() -> Snapshot:
        assert venue.stdin is not None and venue.stdout is not None
        venue.stdin.write(b"?\n")
        return Snapshot(**orjson.loads(await venue.stdout.readline()))

    data = load_replay_data(BUNDLED_FIXTURE)
    rows: list[tuple[str, Snapshot, float]] = []
    witness = await connect(f"ws://127.0.0.1:{port}/stream?streams={'/'.join(data.streams)}", compression=None)
    received = 0

    async def read() -> None:
        nonlocal received
        with contextlib.suppress(ConnectionClosed):
            while True:
                await witness.recv(decode=False)
                received += 1

    reading = asyncio.create_task(read())
    rows.append(("before (the witness connected)", await snapshot(), 0.0))
    for round_ in range(1, rounds + 1):
        for name, wave in waves(scale):
            started = time.monotonic()
            await wave(port)
            spent = time.monotonic() - started
            await asyncio.sleep(1.0)  # the venue's side of the last connections closes a moment later
            rows.append((f"round {round_}: {name}", await snapshot(), spent))
    await witness.close()
    await reading
    final = await snapshot()
    venue.stdin.close()
    await venue.wait()
    return rows, final.witness_frames, received


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.venue_abuse", description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=1000, help="slowloris requests; the other waves follow it")
    parser.add_argument("--rounds", type=int, default=2, help="the waves again: what grows each round is kept")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        asyncio.run(serve_child())
        return 0
    rows, written, received = asyncio.run(run(args.scale, args.rounds))
    print("| after | seconds | venue RSS MiB | fds | tasks | Python objects | open connections |")
    print("|---|---|---|---|---|---|---|")
    for name, snap, spent in rows:
        print(
            f"| {name} | {spent:.1f} | {snap.rss_mib:.1f} | {snap.fds} | {snap.tasks} | {snap.py_objects:,} "
            f"| {snap.open_clients} |"
        )
    print(f"witness: {received} frames received of {written} written")
    first, last = rows[0][1], rows[-1][1]
    return 0 if (last.fds, last.tasks, received) == (first.fds, first.tasks, written) else 1


if __name__ == "__main__":
    sys.exit(main())
