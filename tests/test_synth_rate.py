"""`harness synth --rate`: a busy symbol's pace, with a bookTicker stream that agrees with the book."""

from __future__ import annotations

import math
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from harness.cli import app
from harness.errors import HarnessError
from harness.synth.run import generate_events
from recorder.format import EventKind, RecordedEvent
from replayer.reference_book import ReferenceBook

SECONDS = 20.0
RATE = 300.0
TICKER = "btcusdt@bookTicker"


@pytest.fixture(scope="module")
def paced() -> list[RecordedEvent]:
    return list(generate_events("BTCUSDT", SECONDS, 4, rate=RATE))


def test_frames_come_at_about_the_rate_asked_with_all_three_streams(paced: list[RecordedEvent]) -> None:
    frames = [e for e in paced if e.kind is EventKind.WS_RECV]
    streams = {e.stream for e in frames}
    assert streams == {"btcusdt@depth@100ms", "btcusdt@trade", TICKER}
    assert 0.75 * RATE <= len(frames) / SECONDS <= 1.25 * RATE
    (opened,) = [e for e in paced if e.kind is EventKind.WS_OPEN]
    assert opened.url is not None and opened.url.endswith(f"btcusdt@depth@100ms/btcusdt@trade/{TICKER}")


def test_every_ticker_at_a_depth_frames_id_names_that_books_best_levels(paced: list[RecordedEvent]) -> None:
    (response,) = [e for e in paced if e.kind is EventKind.HTTP_RESPONSE]
    body = orjson.loads(response.payload)
    book = ReferenceBook()
    book.load(body["lastUpdateId"], body["bids"], body["asks"])
    tops: dict[int, tuple[str, str, str, str]] = {}
    tickers: list[dict] = []
    for event in paced:
        if event.kind is not EventKind.WS_RECV:
            continue
        data = orjson.loads(event.payload)["data"]
        if event.stream == TICKER:
            assert set(data) == {"u", "s", "b", "B", "a", "A"} and data["s"] == "BTCUSDT"
            tickers.append(data)
        elif data.get("e") == "depthUpdate" and data["u"] > book.last_update_id:
            book.apply(data["u"], data["b"], data["a"])
            (bid,), (ask,) = book.bids(1), book.asks(1)
            tops[data["u"]] = (*bid, *ask)
    compared = [t for t in tickers if t["u"] in tops]
    assert len(compared) >= 20
    assert all(tops[t["u"]] == (t["b"], t["B"], t["a"], t["A"]) for t in compared)
    ids = [t["u"] for t in tickers]
    assert ids == sorted(ids)


@pytest.mark.parametrize("rate", [0.0, -5.0, math.nan, math.inf])
def test_a_rate_that_is_not_a_positive_number_is_a_user_error(rate: float) -> None:
    with pytest.raises(HarnessError, match="rate must be a positive number"):
        generate_events("BTCUSDT", 1.0, 1, rate=rate)


def test_cli_rate_reports_the_pace_it_reached(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["synth", "--seconds", "5", "--rate", "150", "-o", str(tmp_path / "rec")])
    assert result.exit_code == 0, result.output
    assert "bookTicker" in result.stdout and "frames/s" in result.stdout
