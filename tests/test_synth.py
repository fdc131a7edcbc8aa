"""`harness synth`: the seeded market, the Binance spot encoder, and the recording they make."""

from __future__ import annotations

import gzip
import itertools
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields, replace
from decimal import Decimal
from itertools import pairwise
from pathlib import Path
from typing import cast

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from harness.book_events import DepthDelta, DepthSnapshot
from harness.cli import app
from harness.client_state import JsonRpcSubscribe, SessionStep
from harness.errors import HarnessError
from harness.sync import BookSync
from harness.synth.market import BookChange, MarketSimulator, Trade, symbol_spec
from harness.synth.run import generate_events, synthesize, write_synthetic_recording
from harness.venues.binance_spot import DIALECT as BINANCE_SPOT
from harness.venues.binance_spot.encoder import decimal_string, depth_update_data, trade_data
from harness.venues.binance_spot.rest import depth_snapshot_body
from harness.venues.binance_spot.streams import wrap_combined
from harness.venues.binance_spot.venue import BinanceDialect, BinanceSynthEncoder
from harness.venues.binance_usdm import DIALECT as BINANCE_USDM
from harness.venues.binance_usdm import decoder as usdm_decoder
from harness.venues.binance_usdm.sequencing import BinanceUsdmSequencing
from harness.venues.dialect import CapturePolicy, ChainIds, SynthEncoder, SynthTrade
from harness.venues.registry import DIALECTS
from recorder.format import EventKind, RecordedEvent
from replayer.reader import Recording
from replayer.reference_book import ReferenceBook
from replayer.replay_data import VenueBooks, build_replay_data

REPO = Path(__file__).resolve().parent.parent
FIXTURE = REPO / "fixtures" / "binance_spot_btcusdt_synth"
WIDE_FIXTURE = REPO / "fixtures" / "binance_spot_multi_synth"
WIDE_SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "SHIBUSDT")
REAL_BINANCE = REPO.parent / "shared" / "data" / "real" / "binance_spot_btcusdt_20240808.hftbacktest.gz"
WS_URL = "wss://stream.binance.com:9443/stream?streams=btcusdt@depth@100ms/btcusdt@trade"
REST_URL = "https://api.binance.com/api/v3/depth?symbol=BTCUSDT&limit=5000"
DECIMAL = re.compile(r"^[0-9]+\.[0-9]{8}$")
DECIMAL_2 = re.compile(r"^[0-9]+\.[0-9]{2}$")
SECONDS = 8.0


@pytest.fixture(scope="module")
def events() -> list[RecordedEvent]:
    return list(generate_events("BTCUSDT", SECONDS, 5))


def depth_frames(events: list[RecordedEvent]) -> list[dict]:
    return [orjson.loads(e.payload)["data"] for e in events if e.stream == "btcusdt@depth@100ms"]


def snapshot_of(events: list[RecordedEvent]) -> dict:
    (response,) = [e for e in events if e.kind is EventKind.HTTP_RESPONSE]
    return orjson.loads(response.payload)


def units(text: str) -> int:
    assert DECIMAL.match(text), text
    whole, frac = text.split(".")
    return int(whole) * 10**8 + int(frac)


def test_same_seed_gives_the_same_rows_and_another_seed_does_not() -> None:
    first = list(generate_events("BTCUSDT", 3.0, 11))
    again = list(generate_events("BTCUSDT", 3.0, 11))
    other = list(generate_events("BTCUSDT", 3.0, 12))
    assert first == again
    assert [e.payload for e in first] != [e.payload for e in other]


def test_same_seed_writes_byte_identical_files(tmp_path: Path) -> None:
    one = write_synthetic_recording(tmp_path / "one", "BTCUSDT", 3.0, 4)
    two = write_synthetic_recording(tmp_path / "two", "BTCUSDT", 3.0, 4)
    files_one = sorted(p.name for p in one.iterdir())
    assert files_one == sorted(p.name for p in two.iterdir())
    assert files_one
    for name in files_one:
        assert (one / name).read_bytes() == (two / name).read_bytes()


def test_rows_follow_the_recorder_conventions(events: list[RecordedEvent]) -> None:
    assert [e.seq for e in events] == list(range(len(events)))
    first, last = events[0], events[-1]
    assert (first.kind, first.conn_id, first.url, first.payload) == (EventKind.WS_OPEN, 1, WS_URL, b"")
    assert (last.kind, last.conn_id, last.status, last.reason, last.payload) == (EventKind.WS_CLOSE, 1, 1000, "", b"")
    monos = [e.recv_mono_ns for e in events]
    assert monos == sorted(monos)
    assert len({e.recv_wall_ns - e.recv_mono_ns for e in events}) == 1
    for e in events:
        if e.kind in (EventKind.HTTP_REQUEST, EventKind.HTTP_RESPONSE):
            assert (e.conn_id, e.url) == (2, REST_URL)
        else:
            assert (e.conn_id, e.url) == (1, WS_URL)
    kinds = [e.kind for e in events]
    assert kinds.count(EventKind.HTTP_REQUEST) == kinds.count(EventKind.HTTP_RESPONSE) == 1


def test_frames_are_binance_shaped(events: list[RecordedEvent]) -> None:
    spec = symbol_spec("BTCUSDT")
    seen = set()
    for e in (e for e in events if e.kind is EventKind.WS_RECV):
        frame = orjson.loads(e.payload)
        assert frame["stream"] == e.stream and e.stream is not None
        assert e.payload == wrap_combined(e.stream, orjson.dumps(frame["data"]))
        data = frame["data"]
        seen.add(data["e"])
        assert data["s"] == "BTCUSDT"
        assert data["E"] * 1_000_000 <= e.recv_wall_ns
        if data["e"] == "trade":
            assert units(data["p"]) % spec.tick_units == 0
            assert units(data["q"]) % spec.lot_units == 0 and units(data["q"]) > 0
            assert isinstance(data["m"], bool) and data["M"] is True and data["T"] <= data["E"]
        else:
            assert list(data) == ["e", "E", "s", "U", "u", "b", "a"]
            bids = [units(p) for p, _ in data["b"]]
            asks = [units(p) for p, _ in data["a"]]
            assert bids == sorted(bids, reverse=True) and asks == sorted(asks)
            for price, size in data["b"] + data["a"]:
                assert units(price) % spec.tick_units == 0 and units(size) % spec.lot_units == 0
    assert seen == {"trade", "depthUpdate"}


def test_update_ids_are_contiguous_across_depth_frames(events: list[RecordedEvent]) -> None:
    frames = depth_frames(events)
    assert len(frames) > SECONDS * 8
    for before, after in pairwise(frames):
        assert before["U"] <= before["u"]
        assert after["U"] == before["u"] + 1


def test_depth_frames_come_every_100ms(events: list[RecordedEvent]) -> None:
    times = [frame["E"] for frame in depth_frames(events)]
    gaps = [b - a for a, b in pairwise(times)]
    for gap in gaps:
        windows = round(gap / 100)
        assert windows >= 1 and abs(gap - 100 * windows) <= 6, gap
    assert sum(1 for gap in gaps if round(gap / 100) == 1) > 0.9 * len(gaps)


def test_rest_snapshot_brackets_the_buffered_stream(events: list[RecordedEvent]) -> None:
    index = {e.kind: i for i, e in reversed(list(enumerate(events)))}
    request, response = events[index[EventKind.HTTP_REQUEST]], events[index[EventKind.HTTP_RESPONSE]]
    first_depth = next(i for i, e in enumerate(events) if e.stream == "btcusdt@depth@100ms")
    assert first_depth < index[EventKind.HTTP_REQUEST] < index[EventKind.HTTP_RESPONSE]
    assert (request.reason, request.payload, request.status) == ("GET", b"", None)
    assert (response.status, response.reason) == (200, "OK")
    assert 10_000_000 < response.recv_mono_ns - request.recv_mono_ns < 200_000_000
    body = snapshot_of(events)
    assert list(body) == ["lastUpdateId", "bids", "asks"]
    frames = depth_frames(events)
    last_update_id = body["lastUpdateId"]
    assert frames[0]["U"] <= last_update_id
    assert any(f["U"] <= last_update_id + 1 <= f["u"] for f in frames[1:])
    assert 100 <= len(body["bids"]) < 5000 and 100 <= len(body["asks"]) < 5000


def test_replaying_frames_over_the_snapshot_keeps_a_sane_book_equal_to_the_market(
    events: list[RecordedEvent],
) -> None:
    body = snapshot_of(events)
    book = ReferenceBook()
    book.load(body["lastUpdateId"], body["bids"], body["asks"])
    applied = 0
    for frame in depth_frames(events):
        if frame["u"] <= book.last_update_id:
            continue
        assert frame["U"] <= book.last_update_id + 1 <= frame["u"]
        book.apply(frame["u"], frame["b"], frame["a"])
        applied += 1
        assert float(book.bids(1)[0][0]) < float(book.asks(1)[0][0])
    assert applied > 0 and len(book.bids()) >= 100 and len(book.asks()) >= 100

    spec = symbol_spec("BTCUSDT")
    market = MarketSimulator(spec, 5)
    for event in market.run(int(SECONDS * 1e9)):
        if isinstance(event, BookChange) and event.update_id == book.last_update_id:
            break
    bids, asks = market.book()
    assert book.bids() == [(decimal_string(p * spec.tick_units), decimal_string(s * spec.lot_units)) for p, s in bids]
    assert book.asks() == [(decimal_string(p * spec.tick_units), decimal_string(s * spec.lot_units)) for p, s in asks]


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(min_value=0, max_value=2**32))
def test_market_never_crosses_and_counts_every_change(seed: int) -> None:
    market = MarketSimulator(symbol_spec("ETHUSDT"), seed)
    bids, asks = (dict(side) for side in market.book())
    next_id = market.last_update_id + 1
    last_time = 0
    trades = 0
    for event in market.run(3_000_000_000):
        assert event.time_ns >= last_time
        last_time = event.time_ns
        if isinstance(event, Trade):
            trades += 1
            touch = max(bids) if event.buyer_is_maker else min(asks)
            assert event.price == touch and event.quantity > 0
            continue
        assert event.update_id == next_id
        next_id += 1
        side = bids if event.is_bid else asks
        if event.size:
            side[event.price] = event.size
        else:
            del side[event.price]
        assert max(bids) < min(asks)
    assert trades > 0
    assert market.book() == (sorted(bids.items(), reverse=True), sorted(asks.items()))


@pytest.mark.skipif(not REAL_BINANCE.exists(), reason="real capture not available")
def test_encoder_reproduces_real_binance_bytes() -> None:
    checked = {"depthUpdate": 0, "trade": 0, "snapshot": 0}
    with gzip.open(REAL_BINANCE) as handle:
        for _, line in zip(range(400), handle, strict=False):
            raw = line.rstrip(b"\n").split(b" ", 1)[1]
            message = orjson.loads(raw)
            if "lastUpdateId" in message:
                snapshot = DepthSnapshot("BTCUSDT", message["lastUpdateId"], message["bids"], message["asks"])
                assert depth_snapshot_body(snapshot) == raw
                checked["snapshot"] += 1
                continue
            data = message["data"]
            if data.get("e") == "depthUpdate":
                delta = DepthDelta(data["s"], data["U"], data["u"], data["b"], data["a"], event_time_ms=data["E"])
                encoded = depth_update_data(delta)
            elif data.get("e") == "trade":
                encoded = trade_data(
                    symbol=data["s"],
                    trade_id=data["t"],
                    price=data["p"],
                    quantity=data["q"],
                    trade_time_ms=data["T"],
                    event_time_ms=data["E"],
                    buyer_is_maker=data["m"],
                )
            else:
                continue
            assert wrap_combined(message["stream"], encoded) == raw
            checked[data["e"]] += 1
    assert all(count > 0 for count in checked.values()), checked


def test_decimal_strings_match_binance_spot() -> None:
    assert decimal_string(6_183_763_000_000) == "61837.63000000"
    assert decimal_string(1_000) == "0.00001000"
    assert decimal_string(0) == "0.00000000"


@pytest.mark.parametrize(("fixture", "symbols"), [(FIXTURE, ("BTCUSDT",)), (WIDE_FIXTURE, WIDE_SYMBOLS)])
def test_bundled_fixture_is_small_readable_and_current(fixture: Path, symbols: tuple[str, ...]) -> None:
    recording = Recording(fixture)
    assert (recording.venue, recording.symbols, recording.meta.source) == ("binance-spot", symbols, "synth")
    assert sum(p.stat().st_size for p in fixture.iterdir()) < 1024 * 1024
    stored = [e.payload for e in recording.iter_events()]
    fresh = [e.payload for e in generate_events(symbols, 60.0, 1)]
    assert stored == fresh, f"fixture is stale: run `make fixture` and commit {fixture.relative_to(REPO)}"


def test_unknown_symbol_and_bad_duration_are_user_errors() -> None:
    with pytest.raises(HarnessError, match="known symbols: BTCUSDT, ETHUSDT, SHIBUSDT, SOLUSDT"):
        generate_events("DOGEUSDT", 1.0, 1)
    with pytest.raises(HarnessError, match="positive"):
        generate_events("BTCUSDT", 0.0, 1)


def test_synthesize_refuses_an_output_that_exists(tmp_path: Path) -> None:
    target = tmp_path / "taken"
    target.write_text("x")
    with pytest.raises(HarnessError, match="taken"):
        synthesize(venue="binance-spot", symbols="BTCUSDT", seconds=1.0, seed=1, output=target)


def test_cli_writes_a_readable_recording(tmp_path: Path) -> None:
    out = tmp_path / "rec"
    result = CliRunner().invoke(app, ["synth", "--seconds", "2", "--seed", "3", "--symbol", "ethusdt", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "book frames" in result.stdout and "ETHUSDT" in result.stdout
    recording = Recording(out)
    assert recording.symbols == ("ETHUSDT",)
    assert any(e.stream == "ethusdt@depth@100ms" for e in recording.iter_events())

    again = CliRunner().invoke(app, ["synth", "--seconds", "2", "-o", str(out)])
    assert again.exit_code == 2
    assert again.stderr.startswith("error: ") and str(out) in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1


def test_cli_unknown_venue_exits_2_with_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["synth", "--venue", "kraken", "-o", str(tmp_path / "rec")])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: unknown venue 'kraken'; known venues: binance-spot, ")
    assert not (tmp_path / "rec").exists()


def test_two_symbols_share_one_connection_and_each_keeps_its_own_market() -> None:
    both = list(generate_events("BTCUSDT,ETHUSDT", 4.0, 5))
    alone = list(generate_events("BTCUSDT", 4.0, 5))
    assert [e.seq for e in both] == list(range(len(both)))
    monos = [e.recv_mono_ns for e in both]
    assert monos == sorted(monos)
    kinds = [e.kind for e in both]
    assert kinds[0] is EventKind.WS_OPEN and kinds[-1] is EventKind.WS_CLOSE
    assert kinds.count(EventKind.WS_OPEN) == kinds.count(EventKind.WS_CLOSE) == 1
    frames = [e for e in both if e.kind is EventKind.WS_RECV]
    assert {e.conn_id for e in frames} == {1}
    assert {e.url for e in frames} == {both[0].url} and (both[0].url or "").endswith(
        "/stream?streams=btcusdt@depth@100ms/btcusdt@trade/ethusdt@depth@100ms/ethusdt@trade"
    )
    assert {e.stream for e in frames} == {
        "btcusdt@depth@100ms",
        "btcusdt@trade",
        "ethusdt@depth@100ms",
        "ethusdt@trade",
    }
    # The first symbol keeps the seed: its frames are byte for byte those of a run of it alone.
    assert [e.payload for e in frames if (e.stream or "").startswith("btcusdt@")] == [
        e.payload for e in alone if e.kind is EventKind.WS_RECV
    ]
    for symbol in ("btcusdt", "ethusdt"):
        depth = [orjson.loads(e.payload)["data"] for e in frames if e.stream == f"{symbol}@depth@100ms"]
        assert depth and all(b["U"] == a["u"] + 1 for a, b in itertools.pairwise(depth))
    responses = [e for e in both if e.kind is EventKind.HTTP_RESPONSE]
    requests = [e for e in both if e.kind is EventKind.HTTP_REQUEST]
    assert sorted(e.conn_id for e in responses) == sorted(e.conn_id for e in requests) == [2, 3]
    assert {(e.url or "").split("symbol=")[1].split("&")[0] for e in responses} == {"BTCUSDT", "ETHUSDT"}


def test_a_repeated_or_missing_symbol_is_a_user_error() -> None:
    with pytest.raises(HarnessError, match="symbol given twice: BTCUSDT"):
        generate_events("BTCUSDT,btcusdt", 1.0, 1)
    with pytest.raises(HarnessError, match="no symbol given"):
        generate_events(" , ", 1.0, 1)


# The wide symbols: Binance's ticks, steps and string formats, and the prices that break naive books.

FIXED = {8: re.compile(r"^[0-9]+\.[0-9]{8}$"), 2: re.compile(r"^[0-9]+\.[0-9]{2}$")}


def book_states(events: list[RecordedEvent], symbol: str) -> Iterator[ReferenceBook]:
    """The symbol's book after its REST snapshot and after each depth frame that follows it, in one
    object updated in place (read it before advancing)."""
    stream = f"{symbol.lower()}@depth@100ms"
    (response,) = [e for e in events if e.kind is EventKind.HTTP_RESPONSE and f"symbol={symbol}&" in (e.url or "")]
    body = orjson.loads(response.payload)
    book = ReferenceBook()
    book.load(body["lastUpdateId"], body["bids"], body["asks"])
    yield book
    for event in events:
        if event.stream == stream and event.recv_mono_ns > response.recv_mono_ns:
            frame = orjson.loads(event.payload)["data"]
            if frame["u"] > book.last_update_id:
                book.apply(frame["u"], frame["b"], frame["a"])
                yield book


@pytest.fixture(scope="module")
def wide_events() -> list[RecordedEvent]:
    return list(Recording(WIDE_FIXTURE).iter_events())


@pytest.mark.parametrize("symbol", ["ETHUSDT", "SOLUSDT", "SHIBUSDT"])
def test_new_symbols_are_deterministic_and_written_as_binance_writes_them(symbol: str) -> None:
    spec = symbol_spec(symbol)
    first = list(generate_events(symbol, 3.0, 9))
    assert first == list(generate_events(symbol, 3.0, 9))
    assert [e.payload for e in first] != [e.payload for e in generate_events(symbol, 3.0, 10)]
    strings = 0
    for event in first:
        if event.kind is EventKind.WS_RECV:
            data = orjson.loads(event.payload)["data"]
            levels = [(data["p"], data["q"])] if data["e"] == "trade" else data["b"] + data["a"]
        elif event.kind is EventKind.HTTP_RESPONSE:
            body = orjson.loads(event.payload)
            levels = body["bids"] + body["asks"]
        else:
            continue
        for price, size in levels:
            assert FIXED[8].match(price) and FIXED[spec.size_decimals].match(size), (price, size)
            assert Decimal(price) * 10**8 % spec.tick_units == 0 and Decimal(size) * 10**8 % spec.lot_units == 0
            strings += 1
    assert strings > 300


def test_shib_sizes_have_two_decimals_and_prices_all_eight() -> None:
    assert (symbol_spec("SHIBUSDT").tick_units, symbol_spec("SHIBUSDT").lot_units) == (1, 10**8)
    assert decimal_string(985) == "0.00000985"
    assert decimal_string(61_100_154 * 10**8, 2) == "61100154.00"
    assert decimal_string(0, 2) == "0.00"
    with pytest.raises(ValueError, match="do not fit"):
        decimal_string(1, 2)


def test_a_symbol_keeps_its_bytes_when_another_is_added() -> None:
    def frames(symbols: str, stream_prefix: str) -> list[bytes]:
        return [e.payload for e in generate_events(symbols, 3.0, 4) if (e.stream or "").startswith(stream_prefix)]

    assert frames("BTCUSDT,SOLUSDT", "solusdt@") == frames("BTCUSDT,ETHUSDT,SOLUSDT,SHIBUSDT", "solusdt@")
    assert frames("BTCUSDT,SOLUSDT", "solusdt@")


def test_default_fixture_crosses_100_with_levels_on_both_sides_at_once(wide_events: list[RecordedEvent]) -> None:
    """What breaks a book that sorts price strings: "100.01000000" < "99.99000000" as text."""
    best_bids = []
    straddled = 0
    for book in book_states(wide_events, "SOLUSDT"):
        best_bids.append(Decimal(book.bids(1)[0][0]))
        digits = {len(price.split(".")[0]) for price, _ in book.bids() + book.asks()}
        straddled += digits == {2, 3}
    assert best_bids[0] < 100 <= best_bids[-1]
    assert straddled == len(best_bids) > 500


def test_default_fixture_quotes_below_one_with_all_eight_decimals(wide_events: list[RecordedEvent]) -> None:
    """What breaks a book keyed by a float rounded to 2 decimals (or truncated): every level is "0.00"."""
    prices: set[str] = set()
    for book in book_states(wide_events, "SHIBUSDT"):
        prices.update(price for price, _ in book.bids(20) + book.asks(20))
    assert all(price.startswith("0.0000") and FIXED[8].match(price) for price in prices)
    assert len(prices) > 40 and len({round(float(price), 2) for price in prices}) == 1


REAL_USDM = REAL_BINANCE.with_name("binance_usdm_btcusdt_20240808.hftbacktest.gz")


@pytest.mark.skipif(not REAL_USDM.exists(), reason="real capture not available")
def test_usdm_encoder_writes_the_real_capture_s_shapes() -> None:
    """Key order and number formats as USD-M sends them; the real frames carry two times (`E` the event,
    `T` the transaction) where the synth has one, so `T` is set to `E` on both sides before comparing."""
    encoder = BINANCE_USDM.synth_encoder("BTCUSDT")
    checked = {"depthUpdate": 0, "trade": 0, "snapshot": 0}
    with gzip.open(REAL_USDM) as handle:
        for _, line in zip(range(400), handle, strict=False):
            raw = line.rstrip(b"\n").split(b" ", 1)[1]
            message = orjson.loads(raw)
            if "lastUpdateId" in message:
                snapshot = DepthSnapshot("BTCUSDT", message["lastUpdateId"], message["bids"], message["asks"])
                same_times = raw.replace(b'"T":%d' % message["T"], b'"T":%d' % message["E"])
                assert encoder.snapshot_payload(snapshot, message["E"]) == same_times
                checked["snapshot"] += 1
                continue
            data = message["data"]
            same_times = raw.replace(b'"T":%d' % data.get("T", 0), b'"T":%d' % data["E"])
            if data.get("e") == "depthUpdate":
                delta = DepthDelta(
                    data["s"], data["U"], data["u"], data["b"], data["a"], data["pu"], event_time_ms=data["E"]
                )
                assert encoder.book_frame(delta) == same_times
            elif data.get("e") == "trade" and data["X"] == "MARKET":
                trade = SynthTrade(data["t"], data["p"], data["q"], data["E"], data["E"], data["m"])
                assert encoder.trade_frame(trade) == same_times
            else:
                continue
            checked[data["e"]] += 1
    assert all(count > 0 for count in checked.values()), checked


def test_usdm_synth_chains_on_pu_with_skipping_ids_and_syncs_by_its_rule() -> None:
    usdm_events = list(generate_events("BTCUSDT", 6.0, 5, venue=BINANCE_USDM.name))
    streams = {e.stream for e in usdm_events if e.kind is EventKind.WS_RECV}
    assert streams == {"btcusdt@depth@0ms", "btcusdt@trade"}
    (request,) = [e for e in usdm_events if e.kind is EventKind.HTTP_REQUEST]
    assert request.url == "https://fapi.binance.com/fapi/v1/depth?symbol=BTCUSDT&limit=1000"
    data = build_replay_data(usdm_events, ["BTCUSDT"], dialect=BINANCE_USDM)
    chain = [f.chain for f in data.frames if f.chain is not None]
    assert len(chain) > 60, "about one frame every 50 ms"
    assert all(b.prev_id == a.last_id for a, b in pairwise(chain))
    assert sum(b.first_id > a.last_id + 1 for a, b in pairwise(chain)) > len(chain) // 2
    books = [BINANCE_USDM.book_levels(f.payload) for f in data.frames if f.chain is not None]
    prices = [level[0] for levels in books for level in levels.bids]
    assert prices and all(DECIMAL_2.match(price) for price in prices), "USD-M writes BTCUSDT prices with 2 decimals"
    # Our USD-M components sync it: one snapshot, every event applied, no gap.
    (snapshot,) = data.snapshots["BTCUSDT"]
    sync = BookSync(BinanceUsdmSequencing())
    sync.on_connection_reset()
    decoded = [usdm_decoder.decode_frame(e.payload) for e in usdm_events if e.stream == "btcusdt@depth@0ms"]
    deltas = [d for d in decoded if isinstance(d, DepthDelta)]
    for delta in deltas[:3]:
        sync.on_delta(delta)
    sync.on_snapshot(DepthSnapshot("BTCUSDT", snapshot.last_update_id, snapshot.bids, snapshot.asks))
    for delta in deltas[3:]:
        sync.on_delta(delta)
    assert sync.synced and sync.stats.gaps == 0 and sync.last_update_id == chain[-1].last_id


class _StreamSnapshotEncoder(BinanceSynthEncoder):
    """Spot's bytes, except that the book comes first as a frame on the depth stream."""

    def snapshot_url(self, rest_base: str) -> str | None:
        return None

    def snapshot_payload(self, snapshot: DepthSnapshot, time_ms: int) -> bytes:
        data = {"e": "depthSnapshot", "E": time_ms, "s": snapshot.symbol, "u": snapshot.last_update_id}
        return wrap_combined(self.book_stream, orjson.dumps(data | {"b": snapshot.bids, "a": snapshot.asks}))


def _subscribe(streams: Sequence[str]) -> SessionStep:
    return cast(SessionStep, JsonRpcSubscribe(tuple(streams)))  # a frozen step: its timeout is read-only


@dataclass(frozen=True, slots=True)
class _StreamSnapshotVenue(BinanceDialect):
    """A Binance-shaped venue whose snapshot travels on the stream and whose client subscribes by message:
    the synth's path for Bybit- and OKX-like venues, without either."""

    def chain_ids(self, stream: str, payload: bytes) -> ChainIds | None:
        data = orjson.loads(payload)["data"]
        if data["e"] == "depthSnapshot":
            return ChainIds(data["s"], data["u"], data["u"], snapshot=True)
        return BinanceDialect.chain_ids(self, stream, payload)

    def capture_policy(self) -> CapturePolicy:
        return replace(BinanceDialect.capture_policy(self), snapshot_url=None, subscribe=_subscribe)

    def synth_encoder(self, symbol: str) -> SynthEncoder:
        return _StreamSnapshotEncoder(self, self.synth_market(symbol))


def test_a_venue_whose_snapshot_travels_on_the_stream_sends_it_first_then_continues_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    venue = _StreamSnapshotVenue(**{f.name: getattr(BINANCE_SPOT, f.name) for f in fields(BINANCE_SPOT)})
    monkeypatch.setitem(DIALECTS, "stream-venue", replace(venue, name="stream-venue"))
    rows = list(generate_events("BTCUSDT,ETHUSDT", 4.0, 3, venue="stream-venue"))
    assert [row.kind for row in rows[:2]] == [EventKind.WS_OPEN, EventKind.WS_SEND]
    subscribe = orjson.loads(rows[1].payload)
    assert subscribe["method"] == "SUBSCRIBE" and len(subscribe["params"]) == 4
    assert not [row for row in rows if row.kind in (EventKind.HTTP_REQUEST, EventKind.HTTP_RESPONSE)]
    for symbol in ("BTCUSDT", "ETHUSDT"):
        stream = f"{symbol.lower()}@depth@100ms"
        chain = [venue.chain_ids(stream, row.payload) for row in rows if row.stream == stream]
        assert chain[0] is not None and chain[0].snapshot
        assert not any(ids is None or ids.snapshot for ids in chain[1:])
        assert all(b is not None and a is not None and b.follows(a.last_id) for a, b in pairwise(chain))
    data = build_replay_data(rows, ["BTCUSDT", "ETHUSDT"], dialect=venue)
    assert data.frames[0].snapshot, "replay starts at the later symbol's snapshot frame"
    books = VenueBooks(data)
    books.advance_all()
    for symbol in ("BTCUSDT", "ETHUSDT"):
        book = books.book(symbol)
        last = [f.last_update_id for f in data.frames if f.symbol == symbol and f.chain is not None][-1]
        assert book is not None and book.last_update_id == last and book.bids(1) and book.asks(1)
