"""The default subject's pipeline (parse, queue, sync, apply) on the real Binance spot capture, in the same run
against orjson parsing alone (the ceiling) and against the design sketch's SyncedOrderBook fed the same frames.

Frames: the capture's lines for the streams the default subject subscribes to (`@depth@100ms` and
`@trade`; a client never receives the `@bookTicker` lines it did not ask for) plus the REST snapshot
where the capture took it, 13,209 frames of which 3,451 are depth updates.

- ceiling: `orjson.loads` of every frame, nothing else; no pipeline that parses every frame beats it.
- ours: what `harness.default_subject` does per frame, with its components wired as it wires them
  (decode_frame, queue put at NORMAL/HIGH priority with the subject's stamps, get, BookSync.on_delta
  with Binance spot's sequencing rule; the snapshot through decode_snapshot and on_snapshot). Left
  out: the socket, and the per-update BookObservation the harness asks the subject to report.
- sketch: the same frames parsed by the same orjson into the sketch's `{"update_id", "bids", "asks"}`
  dicts, its `process_snapshot`/`process_delta` awaited in one task (the sketch has no parser, queue
  or sequencing of its own beyond that).

The stages are also timed cumulatively (parse, + decode, + queue, + sync and apply) and the book's
apply alone, which is the profile of where the time goes. Timed in thread CPU time with the collector
paused, contenders taking turns pass by pass, best against best (bench/timing.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from time import monotonic_ns
from typing import Any

import orjson

from bench import results
from bench.captures import SPOT_CAPTURE as CAPTURE
from bench.captures import capture_lines
from bench.sketches import load_sketch, sketch_path
from bench.timing import cpu_timed
from harness.book import OrderBook
from harness.book_events import DepthDelta, Trade
from harness.queue import BoundedPriorityQueue, MessagePriority
from harness.sync import BookSync
from harness.venues.binance_spot.decoder import decode_frame, decode_snapshot
from harness.venues.binance_spot.sequencing import BinanceSpotSequencing

SKETCH = sketch_path("synced_book.py")
SUBSCRIBED = (b'{"stream":"btcusdt@depth@100ms"', b'{"stream":"btcusdt@trade"', b'{"lastUpdateId"')
SNAPSHOT_PREFIX = SUBSCRIBED[2]
PASSES = 7
GOAL = 3.0
SYMBOL = "BTCUSDT"


def read_frames() -> list[bytes]:
    return [line for line in capture_lines() if line.startswith(SUBSCRIBED)]


def _parse_only(frames: list[bytes]) -> int:
    loads = orjson.loads
    with cpu_timed() as spent:
        for frame in frames:
            loads(frame)
    return spent[0]


def _decode_only(frames: list[bytes]) -> int:
    with cpu_timed() as spent:
        for frame in frames:
            if frame.startswith(SNAPSHOT_PREFIX):
                decode_snapshot(frame, SYMBOL)
            else:
                decode_frame(frame)
    return spent[0]


def _pipeline(frames: list[bytes], *, queue_only: bool = False) -> int:
    """decode -> queue -> sync -> book, as the default subject's `_on_message` and `_consume` do it."""
    sync = BookSync(BinanceSpotSequencing())
    queue = BoundedPriorityQueue(10_000, "DROP_LOWEST")
    put, get = queue.put_nowait, queue.get_nowait_with_meta
    normal, high = MessagePriority.NORMAL, MessagePriority.HIGH
    conn_id = 1
    with cpu_timed() as spent:
        for frame in frames:
            if frame.startswith(SNAPSHOT_PREFIX):
                if not queue_only:
                    sync.on_snapshot(decode_snapshot(frame, SYMBOL))
                continue
            recv = monotonic_ns()
            event = decode_frame(frame)
            parsed = monotonic_ns()
            if type(event) is DepthDelta:
                put((event, recv, parsed, conn_id), normal)
            elif type(event) is Trade:
                put((event, recv, parsed, conn_id), high)
            while queue:
                (event, recv, parsed, conn), _, waited, enqueued = get()
                dequeued = enqueued + waited  # noqa: F841 (the subject's stamp, taken as it does)
                if conn != conn_id or type(event) is Trade or queue_only:
                    continue
                sync.on_delta(event)
                monotonic_ns()
    if not queue_only and not sync.synced:
        raise RuntimeError(f"the pipeline did not sync on the capture: {sync.stats}")
    return spent[0]


def _book_only(frames: list[bytes]) -> int:
    """OrderBook.apply alone on the depth updates after the snapshot (parsed untimed)."""
    snapshot = None
    deltas = []
    for frame in frames:
        if frame.startswith(SNAPSHOT_PREFIX):
            snapshot = decode_snapshot(frame, SYMBOL)
            continue
        event = decode_frame(frame)
        if type(event) is DepthDelta and snapshot is not None and event.last_update_id > snapshot.last_update_id:
            deltas.append(event)
    assert snapshot is not None
    book = OrderBook(SYMBOL)
    book.load(snapshot.last_update_id, snapshot.bids, snapshot.asks)
    apply = book.apply
    with cpu_timed() as spent:
        for delta in deltas:
            apply(delta.last_update_id, delta.bids, delta.asks)
    return spent[0]


def _sketch(module: Any, frames: list[bytes]) -> int:
    async def run() -> int:
        book = module.SyncedOrderBook(SYMBOL)
        loads = orjson.loads
        with cpu_timed() as spent:
            for frame in frames:
                obj = loads(frame)
                if "stream" not in obj:
                    snapshot = {"update_id": obj["lastUpdateId"], "bids": obj["bids"], "asks": obj["asks"]}
                    await book.process_snapshot(snapshot)
                    continue
                data = obj["data"]
                if data.get("e") == "depthUpdate":
                    await book.process_delta({"update_id": data["u"], "bids": data["b"], "asks": data["a"]})
        if not book.is_synced:
            raise RuntimeError("the sketch did not sync on the capture")
        return spent[0]

    return asyncio.run(run())


def main() -> int:
    if not CAPTURE.exists():
        print(f"pipeline: skipped ({CAPTURE} not present)")
        return 0
    module = load_sketch(SKETCH.name)
    frames = read_frames()
    contenders: dict[str, Callable[[], int]] = {
        "parse": lambda: _parse_only(frames),
        "decode": lambda: _decode_only(frames),
        "decode_queue": lambda: _pipeline(frames, queue_only=True),
        "pipeline": lambda: _pipeline(frames),
        "book_apply": lambda: _book_only(frames),
    }
    if module is not None:
        contenders["sketch"] = lambda: _sketch(module, frames)
    best = dict.fromkeys(contenders, float("inf"))
    for _ in range(PASSES):
        for name, run in contenders.items():
            best[name] = min(best[name], run())
    n = len(frames)
    rate = {name: n * 1e9 / ns for name, ns in best.items()}
    print(f"pipeline: {n} frames of the real Binance spot capture (depth, trade, the snapshot), best of {PASSES}")
    for name in contenders:
        print(f"  {name:<13} {best[name] / 1e6:8.1f} ms  {rate[name]:>10,.0f} frames/s")
    stages_ms = {
        "parse": best["parse"] / 1e6,
        "decode_beyond_parse": (best["decode"] - best["parse"]) / 1e6,
        "queue": (best["decode_queue"] - best["decode"]) / 1e6,
        "sync_and_apply": (best["pipeline"] - best["decode_queue"]) / 1e6,
        "of_which_book_apply": best["book_apply"] / 1e6,
    }
    raw = {"frames": n, "best_cpu_ms": {k: round(v / 1e6, 2) for k, v in best.items()}, "stages_ms": stages_ms}
    ceiling = best["parse"] / best["pipeline"]
    print(f"  ours against the ceiling (orjson alone): {ceiling:.2f}x its rate")
    results.put(
        "pipeline_vs_parse_ceiling",
        ratio=ceiling,
        meaning="our pipeline's frames/s over orjson.loads alone on the same frames; 1.0 would be free",
        comparison="orjson.loads of every frame, nothing else",
        raw=raw,
    )
    if module is None:
        print(f"  sketch not found at {SKETCH}: comparison skipped")
        return 0
    ratio = best["sketch"] / best["pipeline"]
    # Amdahl: the parse and our book's apply are both in any pipeline built from these parts.
    bound = best["sketch"] / (best["parse"] + best["book_apply"])
    print(f"  ratio against the sketch: {ratio:.2f}x (goal {GOAL:g}x); with queue, sync and decode free: {bound:.2f}x")
    results.put(
        "pipeline_vs_sketch",
        ratio=ratio,
        meaning="our pipeline's frames/s over the sketch's book fed the same frames; higher is better",
        comparison="orjson.loads + the design sketch's SyncedOrderBook (process_snapshot/process_delta)",
        goal=f">= {GOAL:g}x",
        met=ratio >= GOAL,
        raw=raw | {"bound_if_only_parse_and_apply": round(bound, 3)},
    )
    return 0
