"""Replay throughput: `harness replay` at `--speed 0` on the bundled real slice, against the bare work.

The bare work is what no subject can skip: parse every frame once and apply every depth update to
an OrderBook, in this process. The replay adds the venue (schedule walk, one writer per client,
real loopback sockets), the subject process (decode, queue, sync, one observation line per update)
and the checker (every synced book against the oracle). The ratio says how much the harness costs
on top of the book itself; both are wall time in the same run, since the replay spans two processes.
Reported, not judged: there is no target yet.
"""

from __future__ import annotations

import time
from pathlib import Path

import orjson

from bench import results
from harness.book import OrderBook
from harness.replay import ReplayRequest, run_replay
from replayer.replay_data import load_replay_data

RECORDING = Path(__file__).resolve().parents[1] / "fixtures" / "binance_spot_btcusdt_real_60s"


def _bare_work_s(payloads: list[bytes], start_book: tuple[int, list, list]) -> float:
    book = OrderBook()
    book.load(*start_book)
    started = time.perf_counter()
    for payload in payloads:
        data = orjson.loads(payload)["data"]
        if data.get("e") == "depthUpdate":
            book.apply(data["u"], data["b"], data["a"])
    return time.perf_counter() - started


def main() -> int:
    data = load_replay_data(RECORDING)
    reference = data.start_books["BTCUSDT"]
    bids, asks = [list(level) for level in reference.bids()], [list(level) for level in reference.asks()]
    payloads = [frame.payload for frame in data.frames]
    bare_s = min(_bare_work_s(payloads, (reference.last_update_id, bids, asks)) for _ in range(3))

    started = time.perf_counter()
    report = run_replay(ReplayRequest(scenario="clean", recording=RECORDING, speed=0))
    replay_s = time.perf_counter() - started
    sent = report["frames"]["sent"]
    print(f"replay: {len(payloads)} frames of {RECORDING.name} ({sent} sent to the subject), clean at --speed 0")
    print(f"  bare parse + book:      {len(payloads) / bare_s:>10,.0f} frames/s")
    rate = len(payloads) / replay_s
    print(f"  harness replay:         {rate:>10,.0f} frames/s  ({replay_s:.2f} s wall, setup included)")
    print(f"  ratio: the replay takes {replay_s / bare_s:,.1f}x the bare work (reported, no target yet)")
    print(f"  synced books checked: {report['sync']['checks']}, divergent: {report['sync']['divergent']}")
    results.put(
        "replay_speed0_vs_bare_work",
        ratio=bare_s / replay_s,
        meaning="harness replay --speed 0 frames/s (wall, setup included) over bare parse + book in-process",
        comparison="orjson.loads of every frame and OrderBook.apply of every depth update, one process",
        raw={"frames": len(payloads), "replay_wall_s": round(replay_s, 3), "bare_s": round(bare_s, 4),
             "checks": report["sync"]["checks"], "divergent": report["sync"]["divergent"]},
    )  # fmt: skip
    return 0
