"""The fake venue speaking Bybit over a real socket (127.0.0.1, port 0): a synth Bybit recording served
with Bybit's wire, read by our decoder and sync; a late subscriber's snapshot continues the chain."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest
from websockets.asyncio.client import connect

from harness.book_events import DepthSnapshot
from harness.sync import BookSync, GapDetected
from harness.synth.run import write_synthetic_recording
from harness.venues.bybit.decoder import decode_frame
from harness.venues.bybit.sequencing import BybitSequencing
from harness.venues.bybit.wire import WIRE
from replayer.replay_data import load_replay_data
from replayer.server import VenueServer

TOPIC = "orderbook.1000.BTCUSDT"


@pytest.fixture(scope="module")
def bybit_recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_recording(tmp_path_factory.mktemp("bybit") / "rec", "BTCUSDT", 3, 1, venue="bybit")


def test_served_bybit_syncs_without_gaps(bybit_recording: Path) -> None:
    data = load_replay_data(bybit_recording)
    book_frames = sum(1 for frame in data.frames if frame.stream == TOPIC)

    async def run() -> tuple[list[dict], BookSync, int, int, dict]:
        server = VenueServer(data, wire=WIRE, speed=20.0)
        await server.start()
        try:
            url = f"ws://127.0.0.1:{server.port}/v5/public/linear"
            async with connect(url) as ws:
                await ws.send('{"op":"subscribe","req_id":"s1","args":["orderbook.1000.BTCUSDT"]}')
                await ws.send('{"op":"ping","req_id":"p1"}')
                sync = BookSync(BybitSequencing())
                control: list[dict] = []
                gaps = seen = 0
                while seen < book_frames:
                    message = await asyncio.wait_for(ws.recv(), 10)
                    event = decode_frame(message)
                    if event is None:
                        control.append(orjson.loads(message))
                        continue
                    seen += 1
                    out = sync.on_stream_snapshot(event) if isinstance(event, DepthSnapshot) else sync.on_delta(event)
                    gaps += sum(isinstance(e, GapDetected) for e in out)
            async with connect(f"ws://127.0.0.1:{server.port}/v5/public/linear") as late:
                await late.send('{"op":"subscribe","args":["orderbook.1000.BTCUSDT"]}')
                ack = orjson.loads(await asyncio.wait_for(late.recv(), 10))
                snapshot = orjson.loads(await asyncio.wait_for(late.recv(), 10))
            return control, sync, gaps, seen, {"ack": ack, "snapshot": snapshot}
        finally:
            await server.stop()

    control, sync, gaps, seen, late = asyncio.run(run())
    assert [(c["op"], c["ret_msg"], c["req_id"]) for c in control] == [("subscribe", "", "s1"), ("ping", "pong", "p1")]
    assert seen == book_frames and gaps == 0 and sync.synced
    assert late["ack"]["success"] is True and late["snapshot"]["type"] == "snapshot"
    assert late["snapshot"]["data"]["u"] == sync.last_update_id, "the venue's book at the end of the replay"
