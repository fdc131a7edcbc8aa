"""`harness import --format cryptofeed-v1`: frame logs (and request logs beside them) become recordings
with every payload byte kept; the venue comes from the URLs; bad lines name their file and line."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.venues.okx.oracle_rule import OkxOracleBooks, Verdict, read_book_frame
from recorder.format import EventKind
from recorder.import_cryptofeed_v1 import capture_files, import_cryptofeed_v1
from replayer.reader import Recording
from replayer.replay_data import load_replay_data
from tests.okx_helpers import REAL_OKX, real_okx_received

WS_URL = "wss://stream.binance.com:9443/stream?streams=btcusdt@depth@100ms/btcusdt@trade"
DEPTH_URL = "https://api.binance.com/api/v3/depth?symbol=BTCUSDT&limit=1000"


def depth(first: int, last: int) -> str:
    return (
        '{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1,"s":"BTCUSDT",'
        f'"U":{first},"u":{last},"b":[["100.10","1.0"]],"a":[]}}}}'
    )


TRADE = '{"stream":"btcusdt@trade","data":{"e":"trade","E":2,"s":"BTCUSDT","t":7,"p":"100.20","q":"0.5"}}'
SNAPSHOT = '{"lastUpdateId":11,"bids":[["100.10","1.0"]],"asks":[["100.20","2.0"]]}'


def binance_capture(folder: Path) -> Path:
    """A small cryptofeed v1 Binance spot capture: a frame log and, numbered on its own, a request log."""
    folder.mkdir()
    ws = folder / "BINANCE.ws.3.0"
    ws.write_text(
        f"{WS_URL} <-> 1723161253.5\n"
        f"1723161253.61: {depth(10, 11)}\n"
        f"1723161253.62: {TRADE}\n"
        f"\n"
        f"1723161253.9: {depth(12, 14)}\n"
    )
    (folder / "BINANCE.http.1.0").write_text(f"{DEPTH_URL} -> 1723161253.7: {SNAPSHOT}\n")
    return ws


def test_the_real_okx_capture_imports_every_byte_and_every_checksum_still_matches(tmp_path: Path) -> None:
    received = list(real_okx_received())
    summary = import_cryptofeed_v1(REAL_OKX, tmp_path / "rec")
    recording = Recording(tmp_path / "rec")
    assert recording.venue == "okx"
    assert recording.symbols == ("BTC-USD-220527", "UNI-USD-SWAP", "BTC-USDT")
    events = list(recording.iter_events())
    kinds = Counter(event.kind for event in events)
    assert kinds == {EventKind.WS_OPEN: 1, EventKind.WS_SEND: 3, EventKind.WS_RECV: 410}
    assert [e.payload for e in events if e.kind is EventKind.WS_RECV] == received
    assert events[0].recv_wall_ns == 1_652_459_224_530_060_500 and events[0].url == "wss://ws.okx.com:8443/ws/v5/public"
    assert summary.frames == 392 and summary.snapshots == 0
    assert {k: v for k, v in summary.streams.items() if k.startswith("books:")} == {
        "books:BTC-USD-220527": 99,
        "books:UNI-USD-SWAP": 93,
        "books:BTC-USDT": 98,
    }
    oracle = OkxOracleBooks()
    verdicts = Counter(
        oracle.feed(frame) for e in events if e.stream is not None and (frame := read_book_frame(e.payload)) is not None
    )
    assert verdicts == {Verdict.SNAPSHOT: 3, Verdict.APPLIED: 287}


def test_a_binance_frame_log_takes_its_request_log_along(tmp_path: Path) -> None:
    ws = binance_capture(tmp_path / "cap")
    summary = import_cryptofeed_v1(ws, tmp_path / "rec")
    assert (summary.frames, summary.snapshots) == (3, 1)
    assert summary.streams == {"btcusdt@depth@100ms": 2, "btcusdt@trade": 1}
    recording = Recording(tmp_path / "rec")
    assert recording.venue == "binance-spot" and recording.symbols == ("BTCUSDT",)
    events = list(recording.iter_events())
    assert [(e.kind, e.conn_id) for e in events] == [
        (EventKind.WS_OPEN, 1),
        (EventKind.WS_RECV, 1),
        (EventKind.WS_RECV, 1),
        (EventKind.HTTP_REQUEST, 2),
        (EventKind.HTTP_RESPONSE, 2),
        (EventKind.WS_RECV, 1),
    ]
    assert events[4].payload == SNAPSHOT.encode() and events[4].url == DEPTH_URL and events[4].status == 200
    assert events[5].payload == depth(12, 14).encode()
    data = load_replay_data(tmp_path / "rec")
    assert data.start_books["BTCUSDT"].last_update_id == 11
    # The folder gives the same files, so the same recording.
    assert capture_files(ws.parent) == capture_files(ws)
    import_cryptofeed_v1(ws.parent, tmp_path / "again")
    assert list(Recording(tmp_path / "again").iter_events()) == events


def test_rotations_continue_a_connection_and_a_new_connect_opens_another(tmp_path: Path) -> None:
    ws = binance_capture(tmp_path / "cap")
    (ws.parent / "BINANCE.ws.3.1").write_text(f"1723161254.0: {depth(15, 15)}\n{WS_URL} <-> 1723161255\n")
    (ws.parent / "OTHER.ws.3.0").write_text("not read\n")
    import_cryptofeed_v1(ws, tmp_path / "rec", seconds=1.0)
    events = list(Recording(tmp_path / "rec").iter_events())
    assert events[-1].payload == depth(15, 15).encode() and events[-1].conn_id == 1
    import_cryptofeed_v1(ws, tmp_path / "all")
    opens = [e.conn_id for e in Recording(tmp_path / "all").iter_events() if e.kind is EventKind.WS_OPEN]
    assert opens == [1, 3]


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("X.ws.1.0", "wss://ws.okx.com:8443/ws/v5/public <-> 1\nnonsense\n", "X.ws.1.0:2: expected"),
        ("X.ws.1.0", "1652459225.5: {}\n", "X.ws.1.0:1: a frame before the connection"),
        ("X.ws.1.0", "wss://ws.okx.com/ws/v5/public <-> 2\n1: {}\n", "X.ws.1.0:2: time goes back"),
        ("X.ws.1.0", "wss://ws.okx.com/ws/v5/public <-> 2\n3: b'\\x1f'\n", "X.ws.1.0:2: a binary frame"),
        ("X.ws.1.0", "wss://ws.kraken.com <-> 2\n3: {}\n", "cannot tell the venue"),
        ("X.http.1.0", "https://x -> 1: {}\n", "not a cryptofeed v1 frame log"),
    ],
)
def test_malformed_captures_are_one_line_errors(tmp_path: Path, name: str, text: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(HarnessError, match=message) as caught:
        import_cryptofeed_v1(path, tmp_path / "rec")
    assert "\n" not in str(caught.value)


def test_a_bad_request_log_line_names_its_file(tmp_path: Path) -> None:
    ws = binance_capture(tmp_path / "cap")
    (ws.parent / "BINANCE.http.2.0").write_text("garbage\n")
    with pytest.raises(HarnessError, match=r"BINANCE\.http\.2\.0:1: expected '<url> -> <time>: <body>'"):
        import_cryptofeed_v1(ws, tmp_path / "rec")


def test_venue_overrides_the_urls_and_is_checked(tmp_path: Path) -> None:
    path = tmp_path / "KRAKEN.ws.1.0"
    path.write_text('wss://ws.kraken.com <-> 2\n3: {"arg":{"channel":"books","instId":"A-B"},"data":[]}\n')
    summary = import_cryptofeed_v1(path, tmp_path / "rec", venue="okx")
    assert Recording(tmp_path / "rec").venue == "okx" and summary.streams == {"books:A-B": 1}
    with pytest.raises(HarnessError, match="unknown venue 'kraken'"):
        import_cryptofeed_v1(path, tmp_path / "other", venue="kraken")


def test_the_cli_imports_and_reports_a_bad_capture_on_one_line(tmp_path: Path) -> None:
    ws = binance_capture(tmp_path / "cap")
    harness = [sys.executable, "-m", "harness.cli", "import", "--format", "cryptofeed-v1"]
    done = subprocess.run([*harness, str(ws.parent), "-o", str(tmp_path / "rec")], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.startswith("imported 3 frames")
    (ws.parent / "BINANCE.ws.3.0").write_text("bad\n")
    done = subprocess.run([*harness, str(ws), "-o", str(tmp_path / "r2")], capture_output=True, text=True)
    assert done.returncode == 2 and done.stderr.strip().count("\n") == 0 and "BINANCE.ws.3.0:1" in done.stderr


REAL_FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "okx_books_real_2022_4s"


def test_the_okx_fixture_holds_82_checksummed_book_messages_and_matches_a_fresh_import(tmp_path: Path) -> None:
    events = list(Recording(REAL_FIXTURE).iter_events())
    oracle = OkxOracleBooks()
    frames = [frame for e in events if e.stream is not None and (frame := read_book_frame(e.payload)) is not None]
    assert all(frame.checksum is not None for frame in frames)
    assert Counter(oracle.feed(frame) for frame in frames) == {Verdict.SNAPSHOT: 3, Verdict.APPLIED: 79}
    if not REAL_OKX.exists():
        pytest.skip(f"{REAL_OKX} not present")
    import_cryptofeed_v1(REAL_OKX, tmp_path / "rec", seconds=4)
    assert list(Recording(tmp_path / "rec").iter_events()) == events
