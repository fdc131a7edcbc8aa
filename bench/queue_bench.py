"""Our bounded priority queue against the design sketch's BackpressureQueue, in the same run.

Targets (issue 3): at least 100x the sketch's put rate on a full 10,000-item DROP_LOWEST queue (the
sketch scans every item and re-heapifies on each overflow; ours pops one deque head), and at least
2x its put+get rate below capacity. Both queues are driven through their async `put`/`get`, the
way a pipeline calls them. The sketch is loaded from ../shared/seed/sketches/ when that folder is
present; without it the comparison is skipped. Also prints the cost of one latency record.

Measured so that a busy machine does not decide the verdict: ours and the sketch take turns repeat
by repeat, each run is timed in this thread's CPU time with the cyclic collector paused, and the
ratio is best against best.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

from bench import results
from bench.sketches import load_sketch, sketch_path
from bench.timing import cpu_timed
from harness.latency import Histogram, LatencyTracker
from harness.queue import BoundedPriorityQueue, MessagePriority

SKETCH = sketch_path("backpressure_queue.py")
CAPACITY = 10_000
AT_CAPACITY_TARGET = 100.0
BELOW_CAPACITY_TARGET = 2.0
REPEATS = 5


async def _puts_at_capacity(queue: Any, low: Any, normal: Any, puts: int) -> float:
    """Put rate into a queue already full of LOW items: every put evicts one."""
    for i in range(CAPACITY):
        await queue.put(i, low)
    assert queue.qsize() == CAPACITY
    with cpu_timed() as spent:
        for i in range(puts):
            await queue.put(i, normal)
    assert queue.qsize() == CAPACITY
    return puts * 1e9 / spent[0]


async def _put_get_below_capacity(queue: Any, priorities: list[Any], rounds: int) -> float:
    """Put/get rate in bursts of mixed priorities that never fill the queue."""
    with cpu_timed() as spent:
        for _ in range(rounds):
            for i, priority in enumerate(priorities):
                await queue.put(i, priority)
            for _ in priorities:
                await queue.get()
    assert queue.qsize() == 0
    return 2 * rounds * len(priorities) * 1e9 / spent[0]


def _best_in_turns(*contenders: tuple[Any, Any]) -> list[float]:
    """Best rate of each `(factory, run)` pair over REPEATS rounds, the pairs taking turns within a round."""
    best = [0.0] * len(contenders)
    for _ in range(REPEATS):
        for i, (factory, run) in enumerate(contenders):
            best[i] = max(best[i], asyncio.run(run(factory())))
    return best


def _record_ns() -> tuple[float, float]:
    rng = random.Random(7)
    samples = [rng.randrange(1_000, 50_000_000) for _ in range(1000)]
    hist = Histogram()
    tracker = LatencyTracker()
    n = 200
    started = time.perf_counter_ns()
    for _ in range(n):
        for value in samples:
            hist.record(value)
    per_hist = (time.perf_counter_ns() - started) / (n * len(samples))
    started = time.perf_counter_ns()
    for _ in range(n):
        for value in samples:
            tracker.record("decode", value)
    per_tracker = (time.perf_counter_ns() - started) / (n * len(samples))
    return per_hist, per_tracker


def main() -> int:
    failed = False
    rng = random.Random(3)
    ours_priorities = [rng.choice(list(MessagePriority)) for _ in range(1000)]
    ours_full_run = (
        lambda: BoundedPriorityQueue(CAPACITY, "DROP_LOWEST"),
        lambda q: _puts_at_capacity(q, MessagePriority.LOW, MessagePriority.NORMAL, CAPACITY),
    )
    ours_below_run = (
        lambda: BoundedPriorityQueue(CAPACITY, "DROP_LOWEST"),
        lambda q: _put_get_below_capacity(q, ours_priorities, 20),
    )

    sketch = load_sketch(SKETCH.name)
    if sketch is None:
        ours_full, ours_below = _best_in_turns(ours_full_run, ours_below_run)
        print(f"ours   at capacity:    {ours_full:>12,.0f} puts/s")
        print(f"ours   below capacity: {ours_below:>12,.0f} ops/s")
        print(f"sketch not found at {SKETCH}: comparison skipped")
    else:
        sketch_priority = sketch.MessagePriority
        sketch_priorities = [sketch_priority(int(p)) for p in ours_priorities]
        ours_full, sketch_full = _best_in_turns(
            ours_full_run,
            (
                lambda: sketch.BackpressureQueue(CAPACITY, "DROP_LOWEST"),
                lambda q: _puts_at_capacity(q, sketch_priority.LOW, sketch_priority.NORMAL, 300),
            ),
        )
        ours_below, sketch_below = _best_in_turns(
            ours_below_run,
            (
                lambda: sketch.BackpressureQueue(CAPACITY, "DROP_LOWEST"),
                lambda q: _put_get_below_capacity(q, sketch_priorities, 20),
            ),
        )
        print(f"ours   at capacity:    {ours_full:>12,.0f} puts/s")
        print(f"ours   below capacity: {ours_below:>12,.0f} ops/s")
        print(f"sketch at capacity:    {sketch_full:>12,.0f} puts/s")
        print(f"sketch below capacity: {sketch_below:>12,.0f} ops/s")
        for label, ratio, target in (
            ("at capacity", ours_full / sketch_full, AT_CAPACITY_TARGET),
            ("below capacity", ours_below / sketch_below, BELOW_CAPACITY_TARGET),
        ):
            verdict = "ok" if ratio >= target else "BELOW TARGET"
            print(f"ratio {label}: {ratio:,.1f}x (target {target:g}x) {verdict}")
            failed |= ratio < target
            results.put(
                f"queue_{label.replace(' ', '_')}_vs_sketch",
                ratio=ratio,
                meaning=f"BoundedPriorityQueue ops/s {label} over the sketch's BackpressureQueue; higher is better",
                comparison="the design sketch's BackpressureQueue, same puts and gets",
                goal=f">= {target:g}x",
                met=ratio >= target,
                raw={"ours_full_puts_per_s": round(ours_full), "sketch_full_puts_per_s": round(sketch_full),
                     "ours_below_ops_per_s": round(ours_below), "sketch_below_ops_per_s": round(sketch_below)},
            )  # fmt: skip

    per_hist, per_tracker = _record_ns()
    print(f"latency record: {per_hist:.0f} ns/Histogram.record, {per_tracker:.0f} ns/LatencyTracker.record")
    return 1 if failed else 0
