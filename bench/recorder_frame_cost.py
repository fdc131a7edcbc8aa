"""The recorder's own CPU per frame, without sockets: `python -m bench.recorder_frame_cost`.

`recorder.live.record` runs as `harness record` runs it (fsync on, the writer thread, the Parquet seal
at the end), but its `ReconnectingClient` is replaced by a stand-in that hands over the real Binance
spot capture's frames (depth, trade and bookTicker, cycled to FRAMES) the way the client's bulk
receive path does: `on_message(payload, mono_ns, wall_ns, conn_id)` called synchronously once per
frame, every frame of one socket read (READ_BYTES of wire) sharing one timestamp, the loop given a
turn between reads. The REST snapshot is answered in memory. So everything measured is what comes
after the client hands a frame over: the stream name, the redactor, the snapshot rule, the row handed
to the writer thread, the writer's batches, journal, fsyncs, and the seal.

Reported per frame, in process CPU time (the loop thread and the writer thread together, which share
one core while the venue takes the other): the whole run from the first frame handed over to the
recording sealed, the writer thread's part (its CPU from start to close), the seal alone (what
rotation and close do to finish a segment, in the writer thread), and the loop thread's part while
frames are handed over. Rounds run one after another in the same process; the best is kept.
Not one of the `make bench` figures: it is the driver behind docs/performance.md's "The recorder's
own cost per frame", run on two commits in turns to compare them.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import orjson

import recorder.live
import recorder.segments
from bench.captures import SPOT_CAPTURE
from bench.recorder_bench import capture_frames, frame_sequence
from harness.client_state import ClientEvent, ConnectionOpened
from harness.http import HttpResponse
from recorder.live import RecordConfig, record

FRAMES = 200_000
ROUNDS = 3
READ_BYTES = 65_536
"""Wire bytes per socket read: frames of one read share a timestamp (2 to 9 header bytes each)."""


@dataclass(slots=True)
class Cost:
    frames: int
    process_ns: int
    writer_ns: int
    seal_ns: int
    feed_loop_ns: int
    wall_ns: int

    def per_frame_us(self, ns: int) -> float:
        return ns / self.frames / 1000

    def line(self) -> str:
        us = self.per_frame_us
        return (
            f"{us(self.process_ns):5.2f} us/frame all (process CPU, first frame to sealed), "
            f"{us(self.process_ns - self.seal_ns):5.2f} without the seal (writer thread "
            f"{us(self.writer_ns - self.seal_ns):4.2f}), seal {us(self.seal_ns):4.2f}; "
            f"loop thread while handing over {us(self.feed_loop_ns):4.2f}; wall {self.wall_ns / 1e9:.2f} s"
        )


def reads(payloads: list[bytes], read_bytes: int) -> Iterator[list[bytes]]:
    """The payloads grouped as one socket read of `read_bytes` would deliver them."""
    group: list[bytes] = []
    size = 0
    for payload in payloads:
        group.append(payload)
        size += len(payload) + (2 if len(payload) < 126 else 4)
        if size >= read_bytes:
            yield group
            group, size = [], 0
    if group:
        yield group


class FeedingClient:
    """Stands in for `ReconnectingClient`: one connection, then every frame, then the recording stops."""

    def __init__(self, groups: list[list[bytes]], stop: asyncio.Event, timings: dict[str, int]) -> None:
        self._groups = groups
        self._stop = stop
        self._timings = timings
        self._on_message: Callable[[bytes, int, int, int], None] | None = None
        self._on_event: Callable[[ClientEvent], None] | None = None
        self.url = ""
        self._task: asyncio.Task[None] | None = None

    def __call__(self, url: str, on_message: Callable[..., None], *, on_event: Callable[..., None], **_: Any) -> Any:
        self.url, self._on_message, self._on_event = url, on_message, on_event
        return self

    def start(self) -> asyncio.Task[None]:
        self._task = asyncio.ensure_future(self._feed())
        return self._task

    async def stop(self) -> None:
        if self._task is not None:
            await self._task

    async def _feed(self) -> None:
        on_message, on_event = self._on_message, self._on_event
        assert on_message is not None and on_event is not None
        on_event(ConnectionOpened(1, self.url, 0, time.monotonic_ns(), time.time_ns()))
        monotonic_ns, time_ns = time.monotonic_ns, time.time_ns
        self._timings["process_start"] = time.process_time_ns()
        self._timings["wall_start"] = time.perf_counter_ns()
        loop_start = time.thread_time_ns()
        for group in self._groups:
            mono_ns, wall_ns = monotonic_ns(), time_ns()
            for payload in group:
                on_message(payload, mono_ns, wall_ns, 1)
            await asyncio.sleep(0)
        self._timings["feed_loop"] = time.thread_time_ns() - loop_start
        self._stop.set()


async def _snapshot(url: str, **_: Any) -> HttpResponse:
    body = orjson.dumps({"lastUpdateId": 10**15, "bids": [["1.00", "1.0"]], "asks": [["2.00", "1.0"]]})
    return HttpResponse(200, "OK", body)


def one_round(groups: list[list[bytes]], output: Path) -> Cost:
    timings: dict[str, int] = {"seal": 0}
    seal = recorder.segments.RecordingWriter._seal
    close = recorder.segments.RecordingWriter.close

    @functools.wraps(close)
    def timed_close(self: recorder.segments.RecordingWriter) -> list[Path]:
        try:
            return close(self)
        finally:
            timings["writer"] = time.thread_time_ns()  # the writer thread's CPU since it started

    @functools.wraps(seal)
    def timed_seal(self: recorder.segments.RecordingWriter) -> None:
        started = time.thread_time_ns()
        try:
            seal(self)
        finally:
            timings["seal"] += time.thread_time_ns() - started

    async def main() -> None:
        stop = asyncio.Event()
        client = FeedingClient(groups, stop, timings)
        config = RecordConfig(
            venue="binance-spot",
            symbols=("BTCUSDT",),
            ws_url="ws://127.0.0.1:9",
            rest_url="http://127.0.0.1:9",
            output=output,
            book_ticker=True,
        )
        with (
            mock.patch.object(recorder.live, "ReconnectingClient", client),
            mock.patch.object(recorder.live, "http_get", _snapshot),
            mock.patch.object(recorder.segments.RecordingWriter, "_seal", timed_seal),
            mock.patch.object(recorder.segments.RecordingWriter, "close", timed_close),
        ):
            summary = await record(config, stop=stop)
        timings["process_end"] = time.process_time_ns()
        timings["wall_end"] = time.perf_counter_ns()
        timings["frames"] = summary.frames

    asyncio.run(main())
    return Cost(
        frames=timings["frames"],
        process_ns=timings["process_end"] - timings["process_start"],
        writer_ns=timings["writer"],
        seal_ns=timings["seal"],
        feed_loop_ns=timings["feed_loop"],
        wall_ns=timings["wall_end"] - timings["wall_start"],
    )


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.recorder_frame_cost")
    parser.add_argument("--frames", type=int, default=FRAMES)
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--read-bytes", type=int, default=READ_BYTES)
    args = parser.parse_args()
    if not SPOT_CAPTURE.exists():
        print(f"recorder_frame_cost: skipped ({SPOT_CAPTURE} not present)")
        return 0
    groups = list(reads(frame_sequence(capture_frames(), args.frames), args.read_bytes))
    print(
        f"recorder's own cost: {args.frames:,} frames of the real capture, {len(groups):,} reads of "
        f"{args.read_bytes:,} bytes, {args.rounds} rounds ({recorder.live.__file__})"
    )
    costs = []
    with tempfile.TemporaryDirectory(prefix="recorder-cost-") as tmp:
        for round_ in range(args.rounds):
            cost = one_round(groups, Path(tmp) / f"rec-{round_}")
            if cost.frames != args.frames:
                print(f"  round {round_}: recorded {cost.frames} frames of {args.frames}")
                return 1
            costs.append(cost)
            print(f"  round {round_}: {cost.line()}")
    best = min(costs, key=lambda c: c.process_ns)
    print(f"  best:    {best.line()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
