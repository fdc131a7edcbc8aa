"""A small Binance spot recording built the way the recorder writes one, for the fake venue's tests
(tests/test_server.py over sockets, tests/test_venue_core.py against the pure core)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from recorder.format import EventKind, RecordingMeta
from recorder.segments import RecordingWriter

DEPTH = "btcusdt@depth@100ms"
TRADE = "btcusdt@trade"
WS_URL = f"wss://stream.binance.com:9443/stream?streams={DEPTH}/{TRADE}"
REST_URL = "https://api.binance.com/api/v3/depth?symbol=BTCUSDT&limit=5000"


@dataclass
class Built:
    """What the builder knows: every recorded frame, the snapshot id and the true final book."""

    path: Path
    frames: list[tuple[str, bytes]] = field(default_factory=list)
    snapshot_id: int = 0
    start: int = 0
    bids: dict[str, str] = field(default_factory=dict)
    asks: dict[str, str] = field(default_factory=dict)

    @property
    def served(self) -> list[tuple[str, bytes]]:
        return self.frames[self.start :]


def _px(ticks: int) -> str:
    return f"{ticks // 100}.{ticks % 100:02d}000000"


def build_recording(
    path: Path, *, depth_frames: int = 30, before_snapshot: int = 3, pad: int = 0, seed: int = 7
) -> Built:
    """Depth frames with contiguous U/u, a trade after every other one, and the REST snapshot a syncing client
    fetched after `before_snapshot` depth frames (recorded two frames later, as a slow response would be)."""
    rng = random.Random(seed)
    built = Built(path)
    built.bids = {_px(10_000 - i): f"{rng.randint(1, 9)}.50000000" for i in range(12)}
    built.asks = {_px(10_001 + i): f"{rng.randint(1, 9)}.25000000" for i in range(12)}
    meta = RecordingMeta("binance-spot", ("BTCUSDT",), "test", 1_700_000_000 * 10**9, "test", "rec-1")
    uid = 5000
    mono = 10**12
    snapshot: bytes | None = None
    with RecordingWriter(path, meta, fsync=False) as writer:
        writer.append(EventKind.WS_OPEN, conn_id=1, wall_ns=mono, mono_ns=mono, url=WS_URL)
        for k in range(depth_frames):
            mono += 100_000_000
            span = rng.randint(1, 3)
            first, uid = uid + 1, uid + span
            bids: list[list[str]] = []
            asks: list[list[str]] = []
            for _ in range(2 + pad):
                side, levels, base = (
                    (bids, built.bids, 10_000 - rng.randint(0, 15))
                    if rng.random() < 0.5
                    else (asks, built.asks, 10_001 + rng.randint(0, 15))
                )
                price = _px(base)
                size = "0.00000000" if rng.random() < 0.3 else f"{rng.randint(1, 99)}.{rng.randint(0, 999):03d}00000"
                side.append([price, size])
                if size == "0.00000000":
                    levels.pop(price, None)
                else:
                    levels[price] = size
            data = {"e": "depthUpdate", "E": mono // 10**6, "s": "BTCUSDT", "U": first, "u": uid, "b": bids, "a": asks}
            _record_frame(writer, built, DEPTH, orjson.dumps(data), mono)
            if k == before_snapshot - 1:
                built.snapshot_id = uid
                snapshot = orjson.dumps(
                    {
                        "lastUpdateId": uid,
                        "bids": sorted_levels(built.bids, True),
                        "asks": sorted_levels(built.asks, False),
                    }
                )
                writer.append(EventKind.HTTP_REQUEST, conn_id=2, wall_ns=mono, mono_ns=mono, url=REST_URL)
            if k == before_snapshot:
                built.start = len(built.frames) - 1
            if k == before_snapshot + 1:
                assert snapshot is not None
                writer.append(
                    EventKind.HTTP_RESPONSE,
                    conn_id=2,
                    wall_ns=mono,
                    mono_ns=mono,
                    url=REST_URL,
                    status=200,
                    payload=snapshot,
                )
            if k % 2 == 1:
                price = _px(10_000 + rng.randint(0, 1))
                trade = {"e": "trade", "E": mono // 10**6, "s": "BTCUSDT", "t": k, "p": price, "q": "0.01000000"}
                _record_frame(writer, built, TRADE, orjson.dumps(trade), mono + 50_000_000)
    return built


def _record_frame(writer: RecordingWriter, built: Built, stream: str, data: bytes, mono: int) -> None:
    payload = b'{"stream":"' + stream.encode() + b'","data":' + data + b"}"
    built.frames.append((stream, payload))
    writer.append(EventKind.WS_RECV, conn_id=1, wall_ns=mono, mono_ns=mono, url=WS_URL, stream=stream, payload=payload)


def sorted_levels(levels: dict[str, str], descending: bool) -> list[list[str]]:
    return [[p, s] for p, s in sorted(levels.items(), key=lambda kv: float(kv[0]), reverse=descending)]
