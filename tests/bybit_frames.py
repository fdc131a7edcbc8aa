"""Bybit frames for tests, built with our own encoder from made-up books (never from a capture), and
cryptofeed v3 captures of them; where the real (AGPL) capture lies, read in place, never copied."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa

from harness.venues.bybit.encoder import book_frame
from harness.venues.bybit.topics import Category, book_topic

REAL_BYBIT = Path(__file__).resolve().parents[2] / "shared/data/real/bybit_v5_linear_spot.cryptofeed-v3.jsonl.zst"
LINEAR_URL = "wss://stream.bybit.com/v5/public/linear"
SPOT_URL = "wss://stream.bybit.com/v5/public/spot"


def book(
    u: int,
    *,
    snapshot: bool = False,
    bids: list[list[str]] | None = None,
    asks: list[list[str]] | None = None,
    symbol: str = "BTCUSDT",
    category: Category = "linear",
    depth: int = 50,
) -> bytes:
    return book_frame(
        category,
        book_topic(depth, symbol),
        snapshot=snapshot,
        symbol=symbol,
        bids=bids if bids is not None else [["100.10", "1.000"]],
        asks=asks if asks is not None else [["100.20", "2.000"]],
        update_id=u,
        seq=1000 + u,
        ts_ms=1_700_000_000_000 + u,
        cts_ms=1_700_000_000_000 + u - 1,
    )


def write_v3(path: Path, records: list[dict | str]) -> Path:
    """A cryptofeed v3 capture (zstd JSON Lines) of `records`."""
    with pa.output_stream(str(path), compression="zstd") as out:
        for record in records:
            out.write((record if isinstance(record, str) else json.dumps(record)).encode() + b"\n")
    return path


def two_market_capture(path: Path, deltas: int = 30) -> Path:
    """BTCUSDT on spot (prices near 50) and on linear (near 100) in one capture, as cryptofeed records
    Bybit: a connection per category, each book a snapshot then `deltas` deltas 50 ms apart, each
    delta moving its best bid's size, so a book fed the other market's frames cannot match."""
    records: list[dict | str] = [{"t": "header", "format": 2, "exchange": "BYBIT"}]
    markets: tuple[tuple[Category, str, int], ...] = (("linear", LINEAR_URL, 100), ("spot", SPOT_URL, 50))
    for n, (category, url, price) in enumerate(markets):
        conn, start = f"X.ws.{n + 1}", 100.0 + n * 0.01
        bids = [[f"{price - i}.00", "1.000"] for i in range(1, 6)]
        asks = [[f"{price + i}.00", "1.000"] for i in range(1, 6)]
        records.append({"t": "connect", "conn": conn, "ts": start, "addr": url})
        frame = book(1, snapshot=True, bids=bids, asks=asks, category=category)
        records.append({"t": "recv", "conn": conn, "ts": start + 0.1, "data": frame.decode()})
        for u in range(2, deltas + 2):
            level = [[f"{price - 1}.00", f"{u}.000"]]
            frame = book(u, bids=level, asks=[], category=category)
            records.append({"t": "recv", "conn": conn, "ts": start + 0.1 + 0.05 * u, "data": frame.decode()})
    return write_v3(path, records)
