"""Recorder soak: record from a local venue at a steady frame rate, dropped on a timer, for minutes.

`python -m bench.soak_record --seconds 600 --rate 2000 --reconnect-every 60` (`make soak`). The venue
runs in a child process (so the recorder's process holds only the recorder); every `--reconnect-every`
seconds it ends the connection, alternately with a close frame (1001) and an abort without one.
While recording, this process samples its own RSS, open file descriptors, asyncio tasks and threads.
At the end it checks the recording against what the venue says it sent on each connection:

- every frame the recorder acknowledged (received and handed to the writer) is in the recording,
  exactly once, in order, and each connection's frames are a prefix of what the venue sent on it
  (all of it when the connection ended with a close frame; an abort may lose what was in flight);
- RSS after warm-up is flat (reported: first, last, max and the least-squares slope in MiB/min,
  with the count of live Python objects and Arrow's allocated bytes, which tell a leak from the
  allocator's own drift);
- descriptors, tasks and threads are back where they started once the recorder has stopped.

Not part of `make bench` (its name does not end in `_bench`) and not of `make test`: a ten-minute
run is a soak, not a check. `tests/test_soak_short.py` runs the same venue and checks for seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import orjson
import pyarrow as pa
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from recorder.format import EventKind
from recorder.live import RecordConfig, RecordSummary, record
from replayer.reader import Recording

SYMBOL = "BTCUSDT"
STREAM = "btcusdt@depth@100ms"
TICK_S = 0.01
VENUE_CLOSE_CODE = 1001
PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass(slots=True)
class SentRange:
    """What the venue wrote on one connection: update ids `first`..`last` (one per frame), and how it ended."""

    first: int | None = None
    last: int | None = None
    ended_by: str = "open"


@dataclass(slots=True)
class SoakVenue:
    """A Binance-shaped venue that makes up depth frames at `rate` per second, with ids that never reset.

    Every `reconnect_every_s` it ends the open connections, alternating `close` (1001) and `abort`.
    """

    rate: int
    reconnect_every_s: float
    sent: list[SentRange] = field(default_factory=list)
    next_id: int = 1_000
    _open: dict[int, ServerConnection] = field(default_factory=dict)
    _drops: int = 0

    def frame(self, update_id: int) -> bytes:
        return (
            b'{"stream":"%s","data":{"e":"depthUpdate","E":%d,"s":"%s","U":%d,"u":%d,'
            b'"b":[["100.00","%d.5"]],"a":[["100.10","2.0"]]}}'
            % (STREAM.encode(), time.time_ns() // 1_000_000, SYMBOL.encode(), update_id, update_id, update_id % 97)
        )

    def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        if not urlsplit(request.path).path.endswith("/api/v3/depth"):
            return None
        body = orjson.dumps({"lastUpdateId": self.next_id - 1, "bids": [["100.00", "1.0"]], "asks": [["100.10", "2"]]})
        return connection.respond(200, body.decode())

    async def handler(self, ws: ServerConnection) -> None:
        index = len(self.sent)
        self.sent.append(SentRange())
        self._open[index] = ws
        try:
            await ws.wait_closed()
        finally:
            self._open.pop(index, None)

    async def run(self, ready: Callable[[int], None], stop: asyncio.Event) -> None:
        """Serves on 127.0.0.1 until `stop`; `ready(port)` once it listens."""
        async with serve(
            self.handler, "127.0.0.1", 0, process_request=self.process_request, compression=None
        ) as server:
            ready(server.sockets[0].getsockname()[1])
            await asyncio.gather(self._produce(stop), self._drop_on_timer(stop))

    async def _produce(self, stop: asyncio.Event) -> None:
        per_tick = max(1, round(self.rate * TICK_S))
        started = time.monotonic()
        tick = 0
        while not stop.is_set():
            for _ in range(per_tick):
                update_id = self.next_id
                self.next_id += 1
                payload = self.frame(update_id)
                for index, ws in list(self._open.items()):
                    sent = self.sent[index]
                    try:
                        await ws.send(payload.decode())
                    except ConnectionClosed:  # ended mid-send: the point of the soak
                        continue
                    sent.first = update_id if sent.first is None else sent.first
                    sent.last = update_id
            tick += 1
            delay = started + tick * TICK_S - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)

    async def _drop_on_timer(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.reconnect_every_s)
            if stop.is_set():
                return
            mode = "close" if self._drops % 2 == 0 else "abort"
            self._drops += 1
            for index, ws in list(self._open.items()):
                self.sent[index].ended_by = mode
                if mode == "close":
                    await ws.close(VENUE_CLOSE_CODE, "soak reconnect")
                else:
                    ws.transport.abort()


@dataclass(slots=True)
class Sample:
    at_s: float
    rss_mib: float
    fds: int
    tasks: int
    threads: int
    py_objects: int
    arrow_mib: float


def sample(started: float) -> Sample:
    with open("/proc/self/statm") as statm:
        rss = int(statm.read().split()[1]) * PAGE / 2**20
    return Sample(
        time.monotonic() - started,
        rss,
        len(os.listdir("/proc/self/fd")),
        len(asyncio.all_tasks()),
        threading.active_count(),
        len(gc.get_objects()),
        pa.total_allocated_bytes() / 2**20,
    )


def settled_sample(started: float) -> Sample:
    """A sample after a full collection: descriptors that unreachable objects (an earlier test's in the
    same process, or the recorder's own garbage) close in their finalizers must not count on either side."""
    gc.collect()
    return sample(started)


@dataclass(slots=True)
class SoakResult:
    summary: RecordSummary
    sent: list[SentRange]
    samples: list[Sample]
    before: Sample
    after: Sample
    acknowledged: int
    problems: list[str]


def check_recording(output: Path, sent: list[SentRange], acknowledged: int) -> list[str]:
    """Every acknowledged frame recorded once, in order, a prefix of what the venue sent per connection."""
    problems = []
    per_conn: dict[int, list[int]] = {}
    opens: list[int] = []
    venue_closed: set[int] = set()
    for event in Recording(output).iter_events():
        if event.kind is EventKind.WS_OPEN:
            opens.append(event.conn_id)
        elif event.kind is EventKind.WS_CLOSE and event.status == VENUE_CLOSE_CODE:
            venue_closed.add(event.conn_id)
        elif event.kind is EventKind.WS_RECV and event.stream == STREAM:
            per_conn.setdefault(event.conn_id, []).append(orjson.loads(event.payload)["data"]["u"])
    recorded = sum(len(ids) for ids in per_conn.values())
    if recorded != acknowledged:
        problems.append(f"{acknowledged} frames acknowledged, {recorded} recorded")
    if len(opens) != len(sent):
        problems.append(f"{len(sent)} connections served, {len(opens)} recorded")
    all_ids = [i for conn in opens for i in per_conn.get(conn, [])]
    if len(all_ids) != len(set(all_ids)) or all_ids != sorted(all_ids):
        problems.append("a frame recorded twice or out of order")
    for conn, served in zip(opens, sent, strict=False):
        ids = per_conn.get(conn, [])
        if served.first is None:
            if ids:
                problems.append(f"conn {conn}: {len(ids)} frames recorded, none sent")
            continue
        assert served.last is not None, "set with first"
        expected = list(range(served.first, served.last + 1))
        if ids != expected[: len(ids)]:
            problems.append(f"conn {conn}: recorded frames are not a prefix of the {len(expected)} sent")
        # Whole only where the recorder read the venue's close frame: a close the venue began as the
        # recorder's own time ran out races it, and then only the prefix rule holds.
        elif served.ended_by == "close" and conn in venue_closed and len(ids) != len(expected):
            problems.append(f"conn {conn}: closed cleanly but {len(expected) - len(ids)} sent frames missing")
    return problems


async def soak(
    *, seconds: float, rate: int, reconnect_every_s: float, output: Path, sample_every_s: float = 5.0,
    venue_in_process: bool = False, segment_max_bytes: int = 32 * 2**20,
) -> SoakResult:  # fmt: skip
    """Runs the venue (a child process, or this loop when `venue_in_process`) and the recorder."""
    venue = SoakVenue(rate, reconnect_every_s)
    venue_stop = asyncio.Event()
    port_known: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    child: asyncio.subprocess.Process | None = None
    venue_task: asyncio.Task[None] | None = None
    # The recorder's own descriptors, tasks and threads: counted before it starts and after it returns,
    # with the venue in the same state both times (not yet started and stopped again when it shares
    # this loop; running when it is a child, whose pipes and waitpid thread are not the recorder's).
    if venue_in_process:
        before = settled_sample(time.monotonic())
        venue_task = asyncio.create_task(venue.run(port_known.set_result, venue_stop))
        port = await port_known
    else:
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.soak_record", "--serve", "--rate", str(rate),
            "--reconnect-every", str(reconnect_every_s),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert child.stdout is not None
        port = int((await child.stdout.readline()).split()[1])
        before = settled_sample(time.monotonic())
    acknowledged = 0

    def observe(kind: EventKind, conn_id: int, stream: str | None) -> None:
        nonlocal acknowledged
        acknowledged += kind is EventKind.WS_RECV and stream == STREAM

    config = RecordConfig(
        venue="binance-spot",
        symbols=(SYMBOL,),
        ws_url=f"ws://127.0.0.1:{port}",
        rest_url=f"http://127.0.0.1:{port}",
        output=output,
        seconds=seconds,
        seed=1,
        backoff_initial_s=0.2,
        backoff_cap_s=2.0,
        watchdog_s=5.0,
        segment_max_bytes=segment_max_bytes,
    )
    samples: list[Sample] = []
    started = time.monotonic()

    async def sampler() -> None:
        while True:
            await asyncio.sleep(sample_every_s)
            samples.append(sample(started))

    sampling = asyncio.create_task(sampler())
    try:
        summary = await record(config, observe=observe)
    finally:
        sampling.cancel()
        await asyncio.gather(sampling, return_exceptions=True)
        if child is not None:
            after = settled_sample(started)
            assert child.stdin is not None and child.stdout is not None
            child.stdin.close()
            sent = [SentRange(**item) for item in orjson.loads(await child.stdout.read())]
            await child.wait()
        else:
            venue_stop.set()
            assert venue_task is not None
            await venue_task
            sent = venue.sent
            after = settled_sample(started)
    return SoakResult(summary, sent, samples, before, after, acknowledged, check_recording(output, sent, acknowledged))


def slope_mib_per_min(samples: list[Sample]) -> float:
    if len(samples) < 2:
        return 0.0
    xs = [s.at_s / 60 for s in samples]
    ys = [s.rss_mib for s in samples]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    var = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var if var else 0.0


def report(result: SoakResult, seconds: float, warm_up_s: float) -> list[str]:
    summary = result.summary
    warm = [s for s in result.samples if s.at_s >= warm_up_s] or result.samples
    lines = [
        summary.line(),
        f"  frames acknowledged {result.acknowledged} ({result.acknowledged / max(seconds, 1e-9):,.0f}/s), "
        f"connections served {len(result.sent)}, closes {summary.close_codes.count(1001)}x1001 "
        f"{summary.close_codes.count(1006)}x1006, watchdog {summary.watchdog_fired}",
    ]
    if warm:
        rss = [s.rss_mib for s in warm]
        lines.append(
            f"  RSS after {warm_up_s:.0f} s warm-up: first {rss[0]:.1f} MiB, last {rss[-1]:.1f}, max {max(rss):.1f}, "
            f"slope {slope_mib_per_min(warm):+.2f} MiB/min over {len(warm)} samples"
        )
        lines.append(
            f"  Python objects first {warm[0].py_objects}, last {warm[-1].py_objects}, max "
            f"{max(s.py_objects for s in warm)}; Arrow memory at samples max {max(s.arrow_mib for s in warm):.1f} MiB"
        )
        lines.append(
            f"  while recording: fds {min(s.fds for s in warm)}..{max(s.fds for s in warm)}, "
            f"tasks {min(s.tasks for s in warm)}..{max(s.tasks for s in warm)}, "
            f"threads {min(s.threads for s in warm)}..{max(s.threads for s in warm)}"
        )
    b, a = result.before, result.after
    lines.append(
        f"  before -> after: fds {b.fds} -> {a.fds}, tasks {b.tasks} -> {a.tasks}, threads {b.threads} -> {a.threads}"
    )
    verdict = "; ".join(result.problems) or "every acknowledged frame once, in order"
    lines.append(f"  recording: {verdict}")
    return lines


async def serve_only(rate: int, reconnect_every_s: float) -> None:
    """The child: prints `port N`, serves until stdin closes, then prints what it sent as JSON."""
    venue = SoakVenue(rate, reconnect_every_s)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    serving = asyncio.create_task(venue.run(lambda port: print(f"port {port}", flush=True), stop))
    await loop.run_in_executor(None, sys.stdin.buffer.read)
    stop.set()
    await serving
    sys.stdout.buffer.write(orjson.dumps([asdict(s) for s in venue.sent]))
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak_record", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600.0)
    parser.add_argument("--rate", type=int, default=2000, help="frames per second")
    parser.add_argument("--reconnect-every", type=float, default=60.0, help="seconds between drops")
    parser.add_argument("--warm-up", type=float, default=60.0, help="seconds before RSS counts as flat")
    parser.add_argument("--sample-every", type=float, default=5.0)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        asyncio.run(serve_only(args.rate, args.reconnect_every))
        return 0
    with tempfile.TemporaryDirectory(prefix="soak-") as folder:
        result = asyncio.run(
            soak(
                seconds=args.seconds,
                rate=args.rate,
                reconnect_every_s=args.reconnect_every,
                output=Path(folder) / "rec",
                sample_every_s=args.sample_every,
            )
        )
        print(f"soak: {args.seconds:g} s at {args.rate} frames/s, a drop every {args.reconnect_every:g} s")
        for line in report(result, args.seconds, args.warm_up):
            print(line)
    return 1 if result.problems else 0


if __name__ == "__main__":
    sys.exit(main())
