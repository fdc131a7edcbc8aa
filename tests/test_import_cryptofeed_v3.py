"""`harness import --format cryptofeed-v3`: zstd JSON Lines captures become recordings, every frame's
bytes kept. Hand-made captures here hold our own made-up frames; the real Bybit capture (AGPL) is
only read from ../shared/data/real, never copied, and its tests skip where it is absent."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import orjson
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from harness.book_events import DepthSnapshot
from harness.cli import app
from harness.errors import HarnessError
from harness.replay import oracle_for
from harness.sync import BookSync, GapDetected
from harness.venues.bybit.decoder import decode_frame
from harness.venues.bybit.oracle_rule import BybitOracleChains, read_book_frame
from harness.venues.bybit.sequencing import BybitSequencing
from recorder.format import EventKind
from recorder.import_cryptofeed_v3 import import_cryptofeed_v3
from replayer.reader import Recording
from replayer.replay_data import load_replay_data
from tests.bybit_frames import LINEAR_URL as LINEAR
from tests.bybit_frames import REAL_BYBIT as REAL
from tests.bybit_frames import SPOT_URL as SPOT
from tests.bybit_frames import book, write_v3


def capture(tmp_path: Path, *, spot: bool = True, addr: str = LINEAR) -> Path:
    records: list[dict | str] = [
        {"t": "header", "format": 2, "exchange": "BYBIT"},
        {"t": "http", "conn": "X.http.1", "ts": 100.0, "url": "https://api.bybit.com/v5/market/time", "data": "{}"},
        {"t": "connect", "conn": "X.ws.2", "ts": 100.5, "addr": addr},
        {
            "t": "send",
            "conn": "X.ws.2",
            "ts": 100.6,
            "addr": addr,
            "data": '{"op":"subscribe","args":["orderbook.50.BTCUSDT"]}',
        },
        {
            "t": "recv",
            "conn": "X.ws.2",
            "ts": 100.7,
            "data": '{"success":true,"ret_msg":"","conn_id":"a","req_id":"","op":"subscribe"}',
        },
        {"t": "recv", "conn": "X.ws.2", "ts": 100.8, "data": book(7, snapshot=True).decode()},
        {"t": "recv", "conn": "X.ws.2", "ts": 101.25, "data": book(8).decode()},
    ]
    if spot:
        records += [
            {"t": "connect", "conn": "X.ws.3", "ts": 100.55, "addr": SPOT},
            {"t": "recv", "conn": "X.ws.3", "ts": 100.9, "data": book(3, snapshot=True, category="spot").decode()},
            {"t": "recv", "conn": "X.ws.3", "ts": 101.0, "data": book(4, category="spot").decode()},
        ]
    return write_v3(tmp_path / "cap.jsonl.zst", records)


def test_hand_made_capture_round_trips(tmp_path: Path) -> None:
    source = capture(tmp_path)
    summary = import_cryptofeed_v3(source, tmp_path / "rec")
    events = list(Recording(tmp_path / "rec").iter_events())
    assert [e.recv_wall_ns for e in events] == sorted(e.recv_wall_ns for e in events)
    assert Counter(e.kind for e in events) == {
        EventKind.WS_OPEN: 2,
        EventKind.WS_SEND: 1,
        EventKind.WS_RECV: 5,
        EventKind.HTTP_REQUEST: 1,
        EventKind.HTTP_RESPONSE: 1,
    }
    recv = [e for e in events if e.kind is EventKind.WS_RECV]
    assert recv[1].payload == book(7, snapshot=True) and recv[1].recv_wall_ns == 100_800_000_000
    assert recv[1].stream == "linear/orderbook.50.BTCUSDT" and recv[2].stream == "spot/orderbook.50.BTCUSDT"
    assert recv[0].stream is None, "an ack belongs to no topic"
    assert {e.conn_id for e in events if e.url == SPOT} == {3}
    assert (summary.frames, summary.sent, summary.connections, summary.http) == (5, 1, 2, 1)
    meta = Recording(tmp_path / "rec").meta
    assert (meta.venue, meta.symbols) == ("bybit", ("linear/BTCUSDT", "spot/BTCUSDT"))


def test_one_category_keeps_bare_topics_and_seconds_cut(tmp_path: Path) -> None:
    import_cryptofeed_v3(capture(tmp_path, spot=False), tmp_path / "rec", seconds=0.9)
    streams = [e.stream for e in Recording(tmp_path / "rec").iter_events() if e.kind is EventKind.WS_RECV]
    assert streams == [None, "orderbook.50.BTCUSDT"], "the delta 1.25 s after the first record is cut"


def test_venue_from_urls_or_flag(tmp_path: Path) -> None:
    source = capture(tmp_path, spot=False, addr="ws://127.0.0.1:9999/v5/public/linear")
    with pytest.raises(HarnessError, match="--venue"):
        import_cryptofeed_v3(source, tmp_path / "a")
    assert import_cryptofeed_v3(source, tmp_path / "b", venue="bybit").venue == "bybit"
    with pytest.raises(HarnessError, match="no binance-spot book stream"):
        import_cryptofeed_v3(source, tmp_path / "c", venue="binance-spot")
    with pytest.raises(HarnessError, match="unknown venue 'kraken'"):
        import_cryptofeed_v3(source, tmp_path / "d", venue="kraken")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "not JSON"),
        ('{"t":"teleport","conn":"c","ts":1.0}', "unknown record type"),
        ('{"t":"recv","conn":"c","ts":"soon","data":"{}"}', "numeric `ts`"),
        ('{"t":"recv","conn":"X.ws.2","ts":101.5,"data":{"a":1}}', "frame text"),
        ('{"t":"recv","conn":"X.ws.9","ts":101.5,"data":"{}"}', "never connected"),
    ],
)
def test_malformed_lines_name_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    good = capture(tmp_path, spot=False)
    text = pa.input_stream(str(good), compression="zstd").read().decode().splitlines()
    source = write_v3(tmp_path / "bad.jsonl.zst", [*text, line])
    with pytest.raises(HarnessError, match=message) as caught:
        import_cryptofeed_v3(source, tmp_path / "rec")
    if message != "never connected":
        assert f"bad.jsonl.zst:{len(text) + 1}:" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_cli_errors_are_one_line(tmp_path: Path) -> None:
    (tmp_path / "plain.jsonl.zst").write_bytes(b"not zstd at all")
    result = CliRunner().invoke(
        app, ["import", "--format", "cryptofeed-v3", str(tmp_path / "plain.jsonl.zst"), "-o", str(tmp_path / "r")]
    )
    assert result.exit_code == 2 and "error:" in result.output and "Traceback" not in result.output
    source = capture(tmp_path, spot=False)
    args = ["import", "--format", "cryptofeed-v3", "--venue", "kraken", str(source), "-o", str(tmp_path / "r")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and "unknown venue 'kraken'" in result.output


@pytest.fixture(scope="module")
def real_recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not REAL.exists():
        pytest.skip(f"{REAL} not present")
    out = tmp_path_factory.mktemp("bybit") / "rec"
    import_cryptofeed_v3(REAL, out)
    return out


def test_real_capture_keeps_every_byte(real_recording: Path) -> None:
    lines = [orjson.loads(line) for line in pa.input_stream(str(REAL), compression="zstd").read().splitlines()]
    wanted = Counter(r["data"].encode() for r in lines if r["t"] in ("recv", "send"))
    events = list(Recording(real_recording).iter_events())
    got = Counter(e.payload for e in events if e.kind in (EventKind.WS_RECV, EventKind.WS_SEND))
    assert got == wanted
    kinds = Counter(e.kind for e in events)
    assert (kinds[EventKind.WS_RECV], kinds[EventKind.WS_SEND], kinds[EventKind.WS_OPEN]) == (3227, 24, 2)


def test_real_capture_chains_have_no_gap_and_books_agree(real_recording: Path) -> None:
    chains = BybitOracleChains()
    oracle_books: dict[str, tuple[dict[str, str], dict[str, str]]] = {}
    syncs: dict[str, BookSync] = {}
    gaps = 0
    for event in Recording(real_recording).iter_events():
        if event.stream is None or "/orderbook." not in event.stream:
            continue
        frame = read_book_frame(event.payload)
        assert frame is not None
        chains.feed(event.stream, frame)
        bids, asks = oracle_books.setdefault(event.stream, ({}, {}))
        if frame.snapshot:
            bids.clear()
            asks.clear()
        for side, levels in ((bids, frame.bids), (asks, frame.asks)):
            for price, size in levels:
                if float(size) == 0:
                    side.pop(price, None)
                else:
                    side[price] = size
        sync = syncs.setdefault(event.stream, BookSync(BybitSequencing()))
        decoded = decode_frame(event.payload)
        out = sync.on_stream_snapshot(decoded) if isinstance(decoded, DepthSnapshot) else sync.on_delta(decoded)  # type: ignore[arg-type]
        gaps += sum(isinstance(e, GapDetected) for e in out)
    assert chains.counts == {"reset": 6, "apply": 2142, "gap": 0, "stale": 0}
    assert gaps == 0 and len(syncs) == 6 and all(sync.synced for sync in syncs.values())
    for stream, sync in syncs.items():
        bids, asks = oracle_books[stream]
        assert sync.book.bids() == sorted(bids.items(), key=lambda kv: -float(kv[0]))
        assert sync.book.asks() == sorted(asks.items(), key=lambda kv: float(kv[0]))


def test_real_capture_loads_each_category_s_book_once_under_the_frames_names(real_recording: Path) -> None:
    # Replay data used to upper-case the recording's `spot/BTCUSDT` into a second, bookless `SPOT/BTCUSDT`,
    # and the oracle named both BTCUSDT books `BTCUSDT`, one chain for two books.
    data = load_replay_data(real_recording)
    assert (
        sorted(oracle_for(data).symbols)
        == sorted(data.symbols)
        == [
            "linear/BTCUSDT",
            "linear/DOGEUSDT",
            "linear/ETHUSDT",
            "linear/SOLUSDT",
            "spot/BTCUSDT",
            "spot/ETHUSDT",
        ]
    )
