"""`harness serve` for a client in any language: a scenario's faults with a log of what was injected,
connections and subscriptions logged, sessions replayed again with --loop, event times rebased, and
Binance's slower @depth stream computed from a recorded @depth@100ms."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import orjson
from websockets.asyncio.client import connect

from harness.scenarios import load_scenario
from harness.venues.binance_spot.depth_aggregate import DepthAggregate
from harness.venues.binance_spot.streams import first_event_time_ms, shift_event_times
from harness.venues.binance_spot.wire import WIRE
from replayer.replay_data import load_replay_data
from replayer.serve_command import _how_to_connect
from replayer.server import VenueServer

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "fixtures" / "binance_spot_btcusdt_synth"
STREAM = "btcusdt@depth@100ms"
WAIT_S = 30


def depth(first: int, last: int, bids=(), asks=(), event_time: int = 1) -> bytes:
    data = {"e": "depthUpdate", "E": event_time, "s": "BTCUSDT", "U": first, "u": last, "b": bids, "a": asks}
    return orjson.dumps({"stream": STREAM, "data": data})


def test_frames_of_one_window_merge_into_one_update_with_the_latest_size_per_price() -> None:
    slow = DepthAggregate(window_ns=1000)
    assert slow.add(0, depth(1, 2, [["10.0", "1"]], [["11.0", "1"]])) == []
    assert slow.add(500, depth(3, 3, [["10.0", "0"], ["9.0", "2"]], event_time=7)) == []
    (closed,) = slow.add(1000, depth(4, 4, [["8.0", "1"]]))
    merged = {"e": "depthUpdate", "E": 7, "s": "BTCUSDT", "U": 1, "u": 3}
    assert orjson.loads(closed) == {**merged, "b": [["10.0", "0"], ["9.0", "2"]], "a": [["11.0", "1"]]}
    assert [orjson.loads(d)["U"] for d in slow.flush()] == [4]


def test_an_aggregate_never_spans_a_gap_a_duplicate_or_a_broken_frame() -> None:
    slow = DepthAggregate(window_ns=10**9)
    out = [slow.add(0, depth(1, 1)), slow.add(1, depth(2, 2)), slow.add(2, depth(2, 2)), slow.add(3, depth(5, 5))]
    out += [slow.add(4, b'{"stream":"x","data":{"e":"depthUpdate","U":"6"'), slow.add(5, depth(7, 7)), slow.flush()]
    ids = [(orjson.loads(d)["U"], orjson.loads(d)["u"]) for batch in out for d in batch]
    assert ids == [(1, 2), (5, 5), (7, 7)], "the duplicate is left out; the gap and the broken frame each close one"


def test_event_times_are_shifted_in_place_and_nothing_else_changes() -> None:
    payload = b'{"stream":"btcusdt@trade","data":{"e":"trade","E":1723100000123,"T":1723100000120,"p":"1.0"}}'
    assert first_event_time_ms([b"{}", payload]) == 1723100000123
    shifted = shift_event_times(payload, 1000)
    assert shifted == payload.replace(b"1723100000123", b"1723100001123").replace(b"1723100000120", b"1723100001120")


def test_only_unrecorded_slower_depth_streams_are_derived() -> None:
    assert WIRE.derived_streams([STREAM, "btcusdt@trade"]) == {STREAM: ["btcusdt@depth", "btcusdt@depth@1000ms"]}
    assert WIRE.derived_streams([STREAM, "btcusdt@depth"]) == {STREAM: ["btcusdt@depth@1000ms"]}


def test_a_default_depth_subscriber_gets_a_continuous_aggregate_and_loop_replays_for_the_next_session() -> None:
    data = load_replay_data(FIXTURE)
    lines: list[str] = []
    finished: list[int] = []

    async def main() -> None:
        ended = asyncio.Event()

        def on_finished(session: int) -> None:
            finished.append(session)
            ended.set()

        server = VenueServer(
            data, speed=0, log=lines.append, loop=True, rebase_time=True, on_finished=on_finished,
        )  # fmt: skip
        await server.start()
        try:
            for session in (1, 2):
                ended.clear()
                async with connect(f"{server.ws_url}/ws/btcusdt@depth/btcusdt@ticker") as ws:
                    updates: list[dict] = []
                    while not updates or updates[-1]["u"] != data_last_u:
                        updates.append(orjson.loads(await asyncio.wait_for(ws.recv(), WAIT_S)))
                assert len(updates) < len(data.frames) / 3, "several 100 ms frames per aggregate"
                assert all(b["U"] == a["u"] + 1 for a, b in itertools.pairwise(updates))
                assert abs(updates[0]["E"] / 1000 - server.sessions[-1] / 1e9) < 5, "event times read as now"
                assert finished[-1] == session
        finally:
            await server.stop()

    data_last_u = max(f.last_update_id for f in data.frames if f.last_update_id is not None)
    asyncio.run(main())
    assert any("connection 1 from 127.0.0.1:" in line and "/ws/btcusdt@depth" in line for line in lines)
    assert any(line.startswith("connection 1 subscribed to btcusdt@depth, btcusdt@ticker") for line in lines)
    assert any("btcusdt@ticker not in the recording" in line for line in lines)
    assert any(line.startswith("session 2: replay clock started") for line in lines)


def test_serve_with_a_scenario_logs_connections_and_writes_what_it_injected(tmp_path: Path) -> None:
    injected = tmp_path / "injected.json"
    command = [sys.executable, "-m", "harness.cli", "serve", "--recording", str(FIXTURE), "--scenario", "gap_storm"]
    command += ["--speed", "30", "--injected", str(injected), "--max-frame-bytes", "0", "--max-connections", "1"]
    command += ["--handshake-timeout", "0.5"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    assert proc.stdout is not None and proc.stderr is not None
    try:
        urls: dict[str, str] = {}
        while len(urls) < 2:
            line = proc.stdout.readline()
            assert line, proc.stderr.read()
            label, _, rest = line.partition(":")
            if label in ("websocket", "rest"):
                urls[label] = rest.split()[0]

        async def client() -> int:
            frames = 0
            async with connect(f"{urls['websocket']}/stream?streams={STREAM}") as ws:
                while True:
                    try:
                        await asyncio.wait_for(ws.recv(), 2.0)
                    except TimeoutError:
                        return frames
                    frames += 1

        assert asyncio.run(client()) > 100
        port = int(urls["rest"].rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=WAIT_S) as half_sent:
            half_sent.sendall(b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            assert half_sent.recv(1024) == b""  # closed by the venue once the handshake timeout passed
        seen: list[str] = []
        while not any("injected faults written" in line for line in seen):
            seen.append(proc.stdout.readline())
            assert seen[-1], proc.stderr.read()
        proc.send_signal(signal.SIGINT)
        rest_of_output = proc.communicate(timeout=WAIT_S)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
    text = "".join(seen) + rest_of_output
    assert "connection 1 from 127.0.0.1:" in text and f"connection 1 subscribed to {STREAM}" in text
    limits = next(line for line in text.splitlines() if line.startswith("limits: "))
    assert "max connections 1, max frame bytes off, max streams per connection 1024" in limits
    assert "handshake timeout 0.5" in limits
    doc = orjson.loads(injected.read_bytes())
    frames = load_replay_data(FIXTURE).frames
    plan = load_scenario("gap_storm").plan(frames)
    sent = {entry.frame.index for entry in plan.sends}
    assert (doc["scenario"], doc["seed"], doc["speed"], doc["injected"]) == ("gap_storm", 1, 30, plan.injected)
    assert len(doc["frames_dropped"]) == len(frames) - len(sent) > 0
    assert all(f["update_ids"] for f in doc["frames_dropped"])
    assert len(doc["windows"]) == len(plan.windows) and all(w["start_due"].endswith("Z") for w in doc["windows"])
    assert len(doc["sessions_started"]) == 1


def test_serve_seed_without_a_scenario_is_one_error_line() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "harness.cli", "serve", "--recording", str(FIXTURE), "--seed", "3"],
        capture_output=True, text=True, cwd=REPO, timeout=WAIT_S, env={**os.environ},
    )  # fmt: skip
    assert (
        result.returncode == 2
        and result.stderr.strip() == "error: --seed chooses a scenario's fault draws; give --scenario too"
    )


def test_serve_says_how_to_connect_in_the_recording_s_venue_s_terms() -> None:
    okx = _how_to_connect(load_replay_data(REPO / "fixtures" / "okx_books_real_2022_4s"), "ws://h:1", "http://h:1")
    assert okx[0].startswith('websocket: ws://h:1  (e.g. ws://h:1/ws/v5/public, then send {"op":"subscribe"')
    assert okx[1].endswith("(snapshots come on the stream)")
    spot = _how_to_connect(load_replay_data(FIXTURE), "ws://h:1", "http://h:1")
    assert spot == [
        "websocket: ws://h:1  (e.g. ws://h:1/stream?streams=btcusdt@depth@100ms/btcusdt@trade)",
        "rest:      http://h:1  (e.g. http://h:1/api/v3/depth?symbol=BTCUSDT&limit=100)",
    ]
