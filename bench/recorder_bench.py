"""Recorder throughput: `harness record` from a local venue that sends as fast as the socket takes, against
pyarrow writing the same rows to Parquet, and a bare websockets client reading the same venue, same run.

The venue runs in a child process and writes the real Binance spot capture's frames (depth, trade and
bookTicker, cycled to FRAMES) as pre-encoded WebSocket frames straight to its transport, with flow
control, so the venue's own Python costs almost nothing per frame and the recorder is what is measured.

- recorder: `recorder.live.record` as `harness record` runs it (fsync on, the writer thread, a Parquet
  seal at the end), stopped once every frame arrived; frames/s is FRAMES over the wall time from the
  first frame received to the recording sealed on disk. Then every frame is checked to be in the
  recording once, in order, byte for byte (nothing lost).
- pyarrow: the recording's own rows written with `pyarrow.parquet.write_table` (zstd level 3, as a
  sealed segment), CPU time: the rate of the format alone.
- bare client: `websockets` `recv()` in a loop on the same venue, nothing kept: the socket's ceiling
  for any recorder built on websockets.
- uvloop: when it is installed, the recorder runs on it too, turn about with asyncio's loop (best of
  ROUNDS each), which is the measurement behind `harness record` using it (harness/event_loop.py).

Goal (issue 12): >= 200,000 frames/s and 0 lost.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.http11 import Request, Response

from bench import results
from bench.captures import SPOT_CAPTURE as CAPTURE
from bench.captures import capture_lines
from bench.timing import cpu_timed
from harness.event_loop import ENV as EVENT_LOOP_ENV
from harness.event_loop import loop_factory
from recorder.format import EventKind
from recorder.live import RecordConfig, record

FRAMES = 200_000
ROUNDS = 2
CHUNK = 500
GOAL_FPS = 200_000
HIGH_WATER = 1 << 20
T = TypeVar("T")


def capture_frames() -> list[bytes]:
    """The capture's WebSocket frames (the REST snapshot line left out), in order."""
    return [line for line in capture_lines() if line.startswith(b'{"stream"')]


def frame_sequence(frames: list[bytes], count: int) -> list[bytes]:
    return [frames[i % len(frames)] for i in range(count)]


def _ws_frame(payload: bytes) -> bytes:
    """One unmasked, final text frame as a server writes it (RFC 6455 section 5.2)."""
    n = len(payload)
    if n < 126:
        header = bytes((0x81, n))
    elif n < 1 << 16:
        header = bytes((0x81, 126)) + n.to_bytes(2, "big")
    else:
        header = bytes((0x81, 127)) + n.to_bytes(8, "big")
    return header + payload


class BlastVenue:
    """Sends `count` frames to each WebSocket client as fast as its transport drains; answers depth snapshots."""

    def __init__(self, count: int) -> None:
        frames = capture_frames()
        self.count = count
        self.chunks = [b"".join(_ws_frame(f) for f in frames[i : i + CHUNK]) for i in range(0, len(frames), CHUNK)]
        self.chunk_sizes = [len(frames[i : i + CHUNK]) for i in range(0, len(frames), CHUNK)]

    def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        path = urlsplit(request.path).path
        if path.endswith("/api/v3/depth"):
            body = orjson.dumps({"lastUpdateId": 10**15, "bids": [["1.00", "1.0"]], "asks": [["2.00", "1.0"]]})
            return connection.respond(200, body.decode())
        if path.startswith("/api/"):
            return connection.respond(404, "")
        return None

    async def handler(self, ws: ServerConnection) -> None:
        transport = ws.transport
        sent = 0
        index = 0
        while sent < self.count and not transport.is_closing():
            chunk, size = self.chunks[index], self.chunk_sizes[index]
            if sent + size > self.count:
                size = self.count - sent
                chunk = b"".join(_ws_frame(f) for f in capture_frames()[index * CHUNK : index * CHUNK + size])
            transport.write(chunk)
            sent += size
            index = (index + 1) % len(self.chunks)
            while transport.get_write_buffer_size() > HIGH_WATER and not transport.is_closing():
                await asyncio.sleep(0.0005)
        await ws.wait_closed()


async def _serve(count: int) -> None:
    venue = BlastVenue(count)
    loop = asyncio.get_running_loop()
    async with serve(venue.handler, "127.0.0.1", 0, process_request=venue.process_request, compression=None) as server:
        print(f"port {server.sockets[0].getsockname()[1]}", flush=True)
        await loop.run_in_executor(None, sys.stdin.buffer.read)


async def _with_venue(count: int, body: Callable[[int], Awaitable[T]]) -> T:
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.recorder_bench", "--serve", str(count),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert child.stdin is not None and child.stdout is not None
    try:
        port = int((await child.stdout.readline()).split()[1])
        return await body(port)
    finally:
        child.stdin.close()
        await child.wait()


async def _record(port: int, output: Path, count: int) -> tuple[float, int]:
    """(seconds from the first frame to the recording sealed, frames received)."""
    stop = asyncio.Event()
    first: list[float] = []
    received = 0

    def observe(kind: EventKind, conn_id: int, stream: str | None) -> None:
        nonlocal received
        if kind is EventKind.WS_RECV:
            if not first:
                first.append(time.perf_counter())
            received += 1
            if received == count:
                stop.set()

    config = RecordConfig(
        venue="binance-spot",
        symbols=("BTCUSDT",),
        ws_url=f"ws://127.0.0.1:{port}",
        rest_url=f"http://127.0.0.1:{port}",
        output=output,
        seconds=120.0,
        book_ticker=True,
    )
    await record(config, stop=stop, observe=observe)
    return time.perf_counter() - first[0], received


async def _bare_client(port: int, count: int) -> float:
    """Seconds a bare websockets client takes to receive `count` frames from the first one."""
    async with connect(f"ws://127.0.0.1:{port}/stream", compression=None, max_size=None) as ws:
        await ws.recv()
        started = time.perf_counter()
        for _ in range(count - 1):
            await ws.recv()
        return time.perf_counter() - started


def _recorded_frames(output: Path) -> tuple[pa.Table, list[bytes]]:
    table = pa.concat_tables(pq.read_table(p) for p in sorted(output.glob("*.parquet")))
    recv = table.filter(pa.compute.equal(table["kind"], str(EventKind.WS_RECV)))
    return table, recv["payload"].to_pylist()


def _pyarrow_write_s(table: pa.Table, folder: Path) -> float:
    best = float("inf")
    for attempt in range(3):
        with cpu_timed() as spent:
            pq.write_table(table, folder / f"raw-{attempt}.parquet", compression="zstd", compression_level=3)
        best = min(best, spent[0] / 1e9)
    return best


def _run(main: Awaitable[T], factory: Callable[[], asyncio.AbstractEventLoop] | None) -> T:
    async def wrapped() -> T:
        return await main

    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(wrapped())


def main() -> int:
    if not CAPTURE.exists():
        print(f"recorder: skipped ({CAPTURE} not present)")
        return 0
    expected = frame_sequence(capture_frames(), FRAMES)
    uvloop_factory = loop_factory() if os.environ.get(EVENT_LOOP_ENV) is None else None
    loops: dict[str, Callable[[], asyncio.AbstractEventLoop] | None] = {"asyncio": None}
    if uvloop_factory is not None:
        loops["uvloop"] = uvloop_factory
    best = dict.fromkeys(loops, float("inf"))
    lost, exact, received = 0, True, 0
    with tempfile.TemporaryDirectory(prefix="recorder-bench-") as tmp:
        folder = Path(tmp)
        for round_ in range(ROUNDS):
            for name, factory in loops.items():
                output = folder / f"rec-{name}-{round_}"
                recording = functools.partial(_record, output=output, count=FRAMES)
                seconds, received = _run(_with_venue(FRAMES, recording), factory)
                best[name] = min(best[name], seconds)
                table, recorded = _recorded_frames(output)
                lost = max(lost, FRAMES - sum(1 for a, b in zip(recorded, expected, strict=False) if a == b))
                exact = exact and recorded == expected
        bare_s = _run(_with_venue(FRAMES, lambda port: _bare_client(port, FRAMES)), None)
        raw_s = _pyarrow_write_s(table, folder)
    record_s = min(best.values())
    rec_fps = FRAMES / record_s
    bare_fps = (FRAMES - 1) / bare_s
    raw_fps = table.num_rows / raw_s
    met = rec_fps >= GOAL_FPS and lost == 0 and exact
    print(f"recorder: {FRAMES:,} frames of the real capture from a local venue (child process)")
    for name, seconds in best.items():
        print(f"  recorder on {name + ',':<8} first frame to sealed: {FRAMES / seconds:>10,.0f} frames/s, lost {lost}")
    print(f"  bare websockets client recv:     {bare_fps:>10,.0f} frames/s")
    print(f"  pyarrow write_table, same rows:  {raw_fps:>10,.0f} rows/s (CPU)")
    print(f"  ratio against pyarrow: {rec_fps / raw_fps:.3f}x, against the bare client: {rec_fps / bare_fps:.2f}x")
    print(f"  goal >= {GOAL_FPS:,} frames/s, 0 lost, in order: {'met' if met else 'NOT met'}")
    raw = {
        "frames": FRAMES,
        "received": received,
        "lost": lost,
        "in_order_byte_identical": exact,
        "recorder_fps": round(rec_fps),
        "bare_websockets_client_fps": round(bare_fps),
        "pyarrow_write_rows_per_s": round(raw_fps),
        "recorder_wall_s": round(record_s, 3),
        "recorder_fps_by_loop": {name: round(FRAMES / seconds) for name, seconds in best.items()},
    }
    results.put(
        "recorder_vs_pyarrow_write",
        ratio=rec_fps / raw_fps,
        meaning="recorder frames/s (received to sealed) over pyarrow's Parquet write of the same rows",
        comparison="pyarrow.parquet.write_table of the recording's rows, zstd 3",
        goal=f">= {GOAL_FPS:,} frames/s and 0 lost",
        met=met,
        raw=raw,
    )
    if "uvloop" in best:
        gain = best["asyncio"] / best["uvloop"]
        print(f"  uvloop against asyncio's loop, recorder frames/s: {gain:.2f}x")
        results.put(
            "recorder_uvloop_vs_asyncio",
            ratio=gain,
            meaning="recorder frames/s on uvloop over asyncio's own loop, same run; above 1 uvloop wins",
            comparison="the same recorder on asyncio's default loop",
            raw=raw,
        )
    results.put(
        "recorder_vs_bare_client",
        ratio=rec_fps / bare_fps,
        meaning="recorder frames/s over a bare websockets client reading the same venue: the socket's ceiling",
        comparison="websockets recv() in a loop, nothing kept",
        raw=raw,
    )
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.recorder_bench")
    parser.add_argument("--serve", type=int, help="serve this many frames per connection (the bench's venue)")
    args = parser.parse_args()
    if args.serve:
        asyncio.run(_serve(args.serve))
        sys.exit(0)
    sys.exit(main())
