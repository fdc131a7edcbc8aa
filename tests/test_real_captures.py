"""Replay the real Binance captures through decoder + sync + book: no gaps, and the book agrees
with every bookTicker frame that names the same update id."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path

import pytest

from harness.book_events import DepthDelta, DepthSnapshot, TopOfBook, Trade
from harness.sync import Applied, BookSync, NeedSnapshot, SequencingRule, Synced
from harness.venues.binance_spot import decoder as spot_decoder
from harness.venues.binance_spot.sequencing import BinanceSpotSequencing
from harness.venues.binance_usdm import decoder as usdm_decoder
from harness.venues.binance_usdm.sequencing import BinanceUsdmSequencing

REAL = Path(__file__).parents[2] / "shared" / "data" / "real"


def _replay(
    name: str, decode: Callable[[bytes], object], snapshot: Callable[[bytes, str], DepthSnapshot], rule: SequencingRule
) -> dict[str, int]:
    path = REAL / name
    if not path.exists():
        pytest.skip(f"{path} not present")
    sync = BookSync(rule)
    tickers: dict[int, TopOfBook] = {}

    def compare(ticker: TopOfBook) -> None:
        book = sync.book
        agree = book.best_bid() == (ticker.bid_price, ticker.bid_size) and book.best_ask() == (
            ticker.ask_price,
            ticker.ask_size,
        )
        counts["matches" if agree else "mismatches"] += 1

    counts = dict(frames=0, applied=0, tickers=0, matches=0, mismatches=0, trades=0, snapshot_requests=0, syncs=0)
    with gzip.open(path, "rb") as fh:
        for line in fh:
            _, raw = line.rstrip(b"\n").split(b" ", 1)
            counts["frames"] += 1
            if b'"stream"' not in raw:
                events = sync.on_snapshot(snapshot(raw, "BTCUSDT"))
            else:
                event = decode(raw)
                if isinstance(event, Trade):
                    counts["trades"] += 1
                    continue
                if isinstance(event, TopOfBook):
                    counts["tickers"] += 1
                    if sync.synced and event.update_id == sync.last_update_id:
                        compare(event)
                    elif event.update_id > sync.last_update_id:
                        tickers[event.update_id] = event
                    continue
                assert isinstance(event, DepthDelta)
                events = sync.on_delta(event)
            for ev in events:
                if isinstance(ev, Applied | Synced):
                    # A ticker often arrives before the depth event that reaches its update id.
                    ticker = tickers.pop(sync.last_update_id, None)
                    if ticker is not None:
                        compare(ticker)
                    if len(tickers) > 10_000:
                        tickers = {u: t for u, t in tickers.items() if u > sync.last_update_id}
                counts["applied"] += isinstance(ev, Applied)
                counts["snapshot_requests"] += isinstance(ev, NeedSnapshot)
                counts["syncs"] += isinstance(ev, Synced)
    assert sync.synced
    assert sync.stats.gaps == 0
    assert sync.stats.resyncs == 0
    return counts


def test_binance_spot_capture_syncs_without_gaps_and_agrees_with_book_ticker() -> None:
    counts = _replay(
        "binance_spot_btcusdt_20240808.hftbacktest.gz",
        spot_decoder.decode_frame,
        spot_decoder.decode_snapshot,
        BinanceSpotSequencing(),
    )
    assert counts["syncs"] == 1
    assert counts["snapshot_requests"] == 1
    assert counts["mismatches"] == 0
    assert counts["matches"] >= 500


def test_binance_usdm_capture_syncs_without_gaps_and_agrees_with_book_ticker() -> None:
    counts = _replay(
        "binance_usdm_btcusdt_20240808.hftbacktest.gz",
        usdm_decoder.decode_frame,
        usdm_decoder.decode_snapshot,
        BinanceUsdmSequencing(),
    )
    assert counts["syncs"] == 1
    assert counts["mismatches"] == 0
    assert counts["matches"] >= 500
