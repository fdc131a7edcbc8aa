"""Throughput at `--speed 0`: `harness replay` end to end, and the fake venue alone, against a bare websockets
push of the same frames to a bare client in another process, in the same run.

The recording is issue 12's own kind at a length where a replay's fixed costs (two interpreters, imports,
the subject's first snapshot) no longer decide the figure: a default synth of about FRAMES frames (depth
every 100 ms and trades, the streams the default subject takes, so every frame is sent; bench/synths.py).
On the 600 s synth used before (19,000 frames) the bare push takes 0.2 s and the replay's fixed costs about
1.5 s, which no per-frame work can win back. Three figures, frames/s, each from the best of ROUNDS rounds
taken in turns:

- replay: `harness replay --recording R --scenario clean --speed 0` as a user runs it (a new process:
  imports, loading, plan, oracle, the venue, the default subject in its own process, the checker), frames
  sent to the subject over its wall time. This is the issue's figure (`replay_speed0_vs_bare_push`).
- venue: `replayer.server.VenueServer` at speed 0 on the loaded recording, from the reader's connection
  to the close after the schedule's end, the reader being the bare client below: the venue's walk, core
  and writer against websockets' own send loop (`venue_speed0_vs_bare_push`).
- bare push: a websockets server in this process sends the same payloads with `await ws.send` in a loop,
  then closes; the child process reads until the close. Timed from the connection to the close's
  completion, which comes after the child has read every frame before it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve

from bench import results
from bench.synths import synth, synth_seconds
from replayer.replay_data import ReplayData, load_replay_data
from replayer.server import VenueServer

FRAMES = 200_000
SEED = 1
ROUNDS = 2
GOAL = 0.5


def _replay_fps(recording: Path, report: Path) -> tuple[float, int]:
    """(frames/s, frames sent) of `harness replay` in a process of its own, wall clock, setup included."""
    command = [sys.executable, "-c", "from harness.cli import main; main()", "replay", "--recording", str(recording)]
    command += ["--scenario", "clean", "--speed", "0", "--report", str(report)]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    wall_s = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"harness replay exited {done.returncode}: {done.stdout[-2000:]}{done.stderr[-2000:]}")
    sent = json.loads(report.read_text())["frames"]["sent"]
    return sent / wall_s, sent


async def _reader(url: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(sys.executable, "-m", "bench.speed0_bench", "--read", url)


async def _venue_fps(data: ReplayData) -> float:
    connected: list[int] = []

    def on_send(client_id: int, entry: object, intended: int, write_ns: int) -> None:
        if not connected:
            connected.append(time.perf_counter_ns())

    server = VenueServer(data, speed=0, on_send=on_send, keep_send_log=False, messages_per_second=None)
    await server.start()
    streams = "/".join(data.streams)
    reader = await _reader(f"{server.ws_url}/stream?streams={streams}")
    try:
        await server.finished.wait()
        await server.stop()  # closes the reader's connection after what was queued: it has read everything
        ended = time.perf_counter_ns()
    finally:
        await server.stop()
        await reader.wait()
    return server.stats.frames_sent / ((ended - connected[0]) / 1e9)


async def _bare_fps(payloads: list[bytes]) -> float:
    spans: list[float] = []

    async def handler(ws: ServerConnection) -> None:
        started = time.perf_counter()
        for payload in payloads:
            await ws.send(payload, text=True)
        await ws.close()
        spans.append(time.perf_counter() - started)

    async with serve(handler, "127.0.0.1", 0, compression=None) as server:
        port = server.sockets[0].getsockname()[1]
        reader = await _reader(f"ws://127.0.0.1:{port}")
        await reader.wait()
    return len(payloads) / spans[0]


async def _read_all(url: str) -> None:
    async with connect(url, compression=None, max_size=None) as ws:
        async for _ in ws:
            pass


def main(frames: int = FRAMES) -> int:
    seconds = synth_seconds(frames, None)
    with tempfile.TemporaryDirectory(prefix="speed0-bench-") as tmp:
        recording = synth(Path(tmp), frames, rate=None, seed=SEED)
        data = load_replay_data(recording)
        payloads = [frame.payload for frame in data.frames]
        replay, venue, bare = [], [], []
        sent = 0
        for k in range(ROUNDS):
            fps, sent = _replay_fps(recording, Path(tmp) / f"report{k}.json")
            replay.append(fps)
            venue.append(asyncio.run(_venue_fps(data)))
            bare.append(asyncio.run(_bare_fps(payloads)))
    best = {"replay": max(replay), "venue": max(venue), "bare": max(bare)}
    ratio, venue_ratio = best["replay"] / best["bare"], best["venue"] / best["bare"]
    recording_name = f"harness synth --seconds {seconds} --seed {SEED}"
    print(f"speed0: {recording_name}: {len(payloads):,} frames, {sent:,} sent to the subject")
    print(f"  harness replay --speed 0, end to end  {best['replay']:>10,.0f} frames/s  (rounds: {_rates(replay)})")
    print(f"  VenueServer at speed 0, bare reader   {best['venue']:>10,.0f} frames/s  (rounds: {_rates(venue)})")
    print(f"  bare websockets push, bare reader     {best['bare']:>10,.0f} frames/s  (rounds: {_rates(bare)})")
    verdict = "met" if ratio >= GOAL else "NOT met"
    print(f"  ratio replay/bare {ratio:.3f}x (goal >= {GOAL}x: {verdict}); venue/bare {venue_ratio:.2f}x")
    raw = {"frames": len(payloads), "sent_to_subject": sent, "synth_seconds": seconds, "best_fps": best,
           "rounds_fps": {"replay": replay, "venue": venue, "bare": bare}}  # fmt: skip
    comparison = "a bare websockets server pushing the same payloads to a bare client process, as fast as it reads"
    results.put(
        "replay_speed0_vs_bare_push",
        ratio=ratio,
        meaning="harness replay --scenario clean --speed 0 frames/s, end to end (a new process, setup included), "
        "over the bare push's; higher is better",
        comparison=comparison,
        goal=f">= {GOAL}x",
        met=ratio >= GOAL,
        raw=raw,
    )
    results.put(
        "venue_speed0_vs_bare_push",
        ratio=venue_ratio,
        meaning="VenueServer at speed 0 frames/s to the bare client over the bare push's; higher is better",
        comparison=comparison,
        raw=raw,
    )
    return 0


def _rates(values: list[float]) -> str:
    return ", ".join(f"{v:,.0f}" for v in values)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.speed0_bench")
    parser.add_argument("--read", help="read every frame from this URL until it closes (the bench's client)")
    parser.add_argument("--frames", type=int, default=FRAMES, help="about how many frames the synth holds")
    args = parser.parse_args()
    if args.read:
        asyncio.run(_read_all(args.read))
        sys.exit(0)
    sys.exit(main(args.frames))
