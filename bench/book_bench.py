"""Our OrderBook against the design sketch's SyncedOrderBook, fed the same calls on the real capture.

Both get `process_snapshot` once and then `process_delta` for every depth event after it, as the
sketch's generic `{"update_id", "bids", "asks"}` dicts built before timing; the sketch's coroutines
are awaited in one task, which is how code written against it runs. Best of several passes each.
"""

from __future__ import annotations

import asyncio
import gzip
import importlib.util
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import orjson

from harness.book import OrderBook

ROOT = Path(__file__).resolve().parents[2] / "shared"
CAPTURE = ROOT / "data" / "real" / "binance_spot_btcusdt_20240808.hftbacktest.gz"
SKETCH = ROOT / "seed" / "sketches" / "synced_book.py"
PASSES = 5
REQUIRED_RATIO = 2.0


def _load_calls() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The snapshot and the depth events that follow it (bridging event included), as sketch dicts."""
    snapshot: dict[str, Any] | None = None
    events: list[dict[str, Any]] = []
    with gzip.open(CAPTURE, "rb") as fh:
        for line in fh:
            obj = orjson.loads(line.split(b" ", 1)[1])
            if "stream" not in obj:
                snapshot = {"update_id": obj["lastUpdateId"], "bids": obj["bids"], "asks": obj["asks"]}
            elif obj["data"].get("e") == "depthUpdate":
                data = obj["data"]
                events.append({"update_id": data["u"], "bids": data["b"], "asks": data["a"]})
    assert snapshot is not None
    return snapshot, [e for e in events if e["update_id"] > snapshot["update_id"]]


def _load_sketch() -> ModuleType | None:
    if not SKETCH.exists():
        return None
    spec = importlib.util.spec_from_file_location("synced_book_sketch", SKETCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _ours(snapshot: dict[str, Any], calls: list[dict[str, Any]]) -> float:
    best = float("inf")
    for _ in range(PASSES):
        book = OrderBook("BTCUSDT")
        book.process_snapshot(snapshot)
        process = book.process_delta
        start = time.perf_counter()
        for call in calls:
            process(call)
        best = min(best, time.perf_counter() - start)
    return best


def _sketch(module: ModuleType, snapshot: dict[str, Any], calls: list[dict[str, Any]]) -> float:
    async def run() -> float:
        best = float("inf")
        for _ in range(PASSES):
            book = module.SyncedOrderBook("BTCUSDT")
            await book.process_snapshot(snapshot)
            process = book.process_delta
            start = time.perf_counter()
            for call in calls:
                await process(call)
            best = min(best, time.perf_counter() - start)
        return best

    return asyncio.run(run())


def main() -> int:
    if not CAPTURE.exists():
        print(f"book: skipped ({CAPTURE} not present)")
        return 0
    module = _load_sketch()
    if module is None:
        print(f"book: skipped ({SKETCH} not present)")
        return 0
    snapshot, calls = _load_calls()
    levels = sum(len(c["bids"]) + len(c["asks"]) for c in calls)
    sketch_s = _sketch(module, snapshot, calls)
    ours_s = _ours(snapshot, calls)
    ratio = sketch_s / ours_s
    print(f"book: {len(calls)} depth updates, {levels} levels (real Binance spot capture)")
    print(f"  sketch SyncedOrderBook: {len(calls) / sketch_s:>10,.0f} updates/s")
    print(f"  harness OrderBook:      {len(calls) / ours_s:>10,.0f} updates/s")
    print(f"  ratio: {ratio:.2f}x (required >= {REQUIRED_RATIO:.1f}x)")
    return 0 if ratio >= REQUIRED_RATIO else 1
