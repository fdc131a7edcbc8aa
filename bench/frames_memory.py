"""What loading a recording and walking its frames hold, and how fast the read is (issue 12's frames).

    python -m bench.frames_memory RECORDING [RECORDING ...] [--trace]

For each recording, in a fresh process each (so peaks do not mix): `load_replay_data`, one plain
walk over the frames, then a walk as the fake venue's, with `VenueBooks` moved along as
`VenueCore.entry` moves it and REST snapshots served every 5,000 frames (a stale one and a
barely-stale one every 100,000), as a subject that resyncs often would ask. Prints the load's and the
plain walk's CPU seconds against pyarrow reading the payload column alone (the comparison issue 12
names, which `make bench` takes for read + schedule + oracle together, bench/load_bench.py; CPU, not
wall time, because the shared machine's load moves wall times by 10x), the venue walk's wall time
and the peak RSS; with `--trace`, tracemalloc's live and peak bytes after each stage (tracing slows
everything, so read that run's memory, not its times). Not part of `make bench`: a by-hand measure
(docs/performance.md, "Frames and the venue's books read on demand").
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

from bench.load_bench import pyarrow_payloads

SNAPSHOT_EVERY = 5_000
STALE_EVERY = 100_000


def _payload_read_cpu_s(path: Path) -> float:
    """pyarrow reading the payload column alone into Python bytes, every segment: CPU seconds."""
    started = time.process_time()
    pyarrow_payloads(path)
    return time.process_time() - started


def _measure(path: str, trace: bool) -> dict:
    from replayer.replay_data import VenueBooks, load_replay_data

    stages: dict[str, object] = {}
    if trace:
        tracemalloc.start()
    started, cpu = time.perf_counter(), time.process_time()
    data = load_replay_data(path)
    stages["load_s"], stages["load_cpu_s"] = time.perf_counter() - started, time.process_time() - cpu
    if trace:
        stages["load_live_mb"], stages["load_peak_mb"] = (b / 1e6 for b in tracemalloc.get_traced_memory())
        tracemalloc.reset_peak()
    cpu = time.process_time()
    for _ in data.frames:
        pass
    stages["iterate_cpu_s"] = time.process_time() - cpu
    if trace:
        stages["iterate_live_mb"], stages["iterate_peak_mb"] = (b / 1e6 for b in tracemalloc.get_traced_memory())
        tracemalloc.reset_peak()
    symbol = next(iter(data.start_books))
    books = VenueBooks(data, seed=1)
    started, cpu = time.perf_counter(), time.process_time()
    frames = served = 0
    half = len(data.frames) // 2
    for frame in data.frames:
        books.advance_to(frame.index)
        frames += 1
        if trace and frames == half:
            stages["walk_half_live_mb"] = tracemalloc.get_traced_memory()[0] / 1e6
        if frames % SNAPSHOT_EVERY == 0:
            books.snapshot(symbol, served)
            served += 1
        if frames % STALE_EVERY == 0:
            books.snapshot(symbol, served, -10)
            books.snapshot_before(symbol, None, 10, served + 1)
            served += 2
    stages["walk_s"], stages["walk_cpu_s"] = time.perf_counter() - started, time.process_time() - cpu
    if trace:
        stages["walk_live_mb"], stages["walk_peak_mb"] = (b / 1e6 for b in tracemalloc.get_traced_memory())
    stages["frames"] = frames
    stages["snapshots_served"] = served
    stages["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if not trace:
        stages["pyarrow_payload_cpu_s"] = payload = _payload_read_cpu_s(Path(path))
        stages["read_ratio"] = payload / stages["load_cpu_s"]  # type: ignore[operator]
        stages["iterate_ratio"] = payload / stages["iterate_cpu_s"]  # type: ignore[operator]
    return stages


def main(argv: list[str]) -> int:
    if argv and argv[0] == "--child":
        print(json.dumps(_measure(argv[1], argv[2] == "trace")))
        return 0
    trace = "--trace" in argv
    for path in (a for a in argv if a != "--trace"):
        out = subprocess.run(
            [sys.executable, "-m", "bench.frames_memory", "--child", path, "trace" if trace else "time"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        figures = json.loads(out)
        print(path, " ".join(f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}" for k, v in figures.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
