"""`harness import`: hftbacktest captures become recordings with their payload bytes unchanged."""

from __future__ import annotations

import gzip
import itertools
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from harness.errors import HarnessError
from recorder.format import EventKind
from recorder.import_hftbacktest import import_hftbacktest
from recorder.importing import run_import
from recorder.segments import RecordingWriter
from replayer.reader import Recording
from replayer.replay_data import load_replay_data

REPO = Path(__file__).resolve().parents[1]
REAL_CAPTURE = REPO.parent / "shared" / "data" / "real" / "binance_spot_btcusdt_20240808.hftbacktest.gz"
REAL_FIXTURE = REPO / "fixtures" / "binance_spot_btcusdt_real_60s"
REAL_USDM_CAPTURE = REAL_CAPTURE.with_name("binance_usdm_btcusdt_20240808.hftbacktest.gz")
REAL_USDM_FIXTURE = REPO / "fixtures" / "binance_usdm_btcusdt_real_30s"
T0 = 1_723_161_253_937_085_768


def depth(first: int, last: int, bid: str = "100.10") -> bytes:
    data = {"e": "depthUpdate", "E": 1, "s": "BTCUSDT", "U": first, "u": last, "b": [[bid, "1.0"]], "a": []}
    return orjson.dumps({"stream": "btcusdt@depth@100ms", "data": data})


TRADE = b'{"stream":"btcusdt@trade","data":{"e":"trade","E":2,"s":"BTCUSDT","t":7,"p":"100.20","q":"0.5"}}'
TICKER = b'{"stream":"btcusdt@bookTicker","data":{"u":12,"s":"BTCUSDT","b":"100.10","B":"1.0","a":"100.20","A":"2.0"}}'
SNAPSHOT = b'{"lastUpdateId":11,"bids":[["100.10","1.0"],["100.00","3.0"]],"asks":[["100.20","2.0"]]}'


def write_capture(path: Path, lines: list[tuple[int, bytes]]) -> Path:
    with gzip.open(path, "wb") as out:
        for at, payload in lines:
            out.write(str(at).encode() + b" " + payload + b"\n")
    return path


def capture_lines() -> list[tuple[int, bytes]]:
    return [
        (T0, depth(10, 11)),
        (T0 + 40_000_000, TRADE),
        (T0 + 60_000_000, SNAPSHOT),
        (T0 + 100_000_000, depth(12, 14, bid="100.05")),
        (T0 + 120_000_000, TICKER),
        (T0 + 2_200_000_000, depth(15, 15)),
    ]


def test_frames_keep_their_bytes_and_the_snapshot_becomes_a_request_and_response(tmp_path: Path) -> None:
    source = write_capture(tmp_path / "cap.gz", capture_lines())
    summary = import_hftbacktest(source, tmp_path / "rec")
    assert (summary.frames, summary.snapshots) == (5, 1)
    assert summary.streams == {"btcusdt@depth@100ms": 3, "btcusdt@trade": 1, "btcusdt@bookTicker": 1}

    recording = Recording(tmp_path / "rec")
    assert (recording.venue, recording.symbols) == ("binance-spot", ("BTCUSDT",))
    assert recording.meta.start_wall_ns == T0
    assert recording.meta.source == "import hftbacktest cap.gz"
    events = list(recording.iter_events())
    assert [e.kind for e in events] == [
        EventKind.WS_OPEN,
        EventKind.WS_RECV,
        EventKind.WS_RECV,
        EventKind.HTTP_REQUEST,
        EventKind.HTTP_RESPONSE,
        EventKind.WS_RECV,
        EventKind.WS_RECV,
        EventKind.WS_RECV,
    ]
    received = [e for e in events if e.kind is EventKind.WS_RECV]
    assert [e.payload for e in received] == [p for _, p in capture_lines() if p != SNAPSHOT]
    assert [e.recv_wall_ns for e in received] == [e.recv_mono_ns for e in received]
    assert [e.recv_wall_ns for e in received] == [at for at, p in capture_lines() if p != SNAPSHOT]
    assert {e.conn_id for e in received} == {1}
    assert events[0].url == received[0].url
    assert (events[0].url or "").endswith("/stream?streams=btcusdt@depth@100ms/btcusdt@trade/btcusdt@bookTicker")
    request, response = events[3], events[4]
    assert request.conn_id == response.conn_id == 2
    assert request.url == response.url == "https://api.binance.com/api/v3/depth?symbol=BTCUSDT&limit=2"
    assert (response.status, response.payload, response.recv_wall_ns) == (200, SNAPSHOT, T0 + 60_000_000)

    data = load_replay_data(tmp_path / "rec")
    assert data.start_books["BTCUSDT"].last_update_id == 11
    assert [f.first_update_id for f in data.frames if f.first_update_id is not None] == [12, 15]


def test_the_same_capture_gives_the_same_bytes_and_seconds_cuts_it(tmp_path: Path) -> None:
    source = write_capture(tmp_path / "cap.gz", capture_lines())
    import_hftbacktest(source, tmp_path / "a")
    import_hftbacktest(source, tmp_path / "b")
    assert [p.read_bytes() for p in sorted((tmp_path / "a").iterdir())] == [
        p.read_bytes() for p in sorted((tmp_path / "b").iterdir())
    ]
    cut = import_hftbacktest(source, tmp_path / "cut", seconds=1.0)
    assert cut.frames == 4 and cut.seconds == pytest.approx(0.12)
    assert Recording(tmp_path / "cut").meta.recording_id != Recording(tmp_path / "a").meta.recording_id


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ([(T0, depth(1, 2)), (T0 + 1, b"not json at all")], r"cap\.gz:2: not JSON"),
        ([(T0, depth(1, 2)), (T0 + 1, b'{"result":null,"id":1}')], r"cap\.gz:2: neither a combined-stream frame"),
        ([(T0, depth(1, 2)), (T0 - 1, TRADE)], r"cap\.gz:2: receive time goes back"),
        ([(T0, TRADE)], r"no binance-spot depth stream"),
        (
            [(T0, depth(1, 2)), (T0 + 1, depth(1, 2).replace(b"btcusdt@", b"ethusdt@")), (T0 + 2, SNAPSHOT)],
            r"depth streams for BTCUSDT, ETHUSDT, and a REST snapshot body does not say which symbol",
        ),
    ],
)
def test_a_capture_that_is_not_one_is_refused_with_its_line(
    tmp_path: Path, lines: list[tuple[int, bytes]], message: str
) -> None:
    source = write_capture(tmp_path / "cap.gz", lines)
    with pytest.raises(HarnessError, match=message):
        import_hftbacktest(source, tmp_path / "rec")
    assert not (tmp_path / "rec").exists()


def test_a_line_without_a_timestamp_and_a_file_that_is_not_gzip_are_refused(tmp_path: Path) -> None:
    source = tmp_path / "cap.gz"
    with gzip.open(source, "wb") as out:
        out.write(depth(1, 2) + b"\n")
    with pytest.raises(HarnessError, match=r"cap\.gz:1: expected '<receive time ns> <JSON>'"):
        import_hftbacktest(source, tmp_path / "rec")
    plain = tmp_path / "plain.txt"
    plain.write_bytes(b"%d %s\n" % (T0, depth(1, 2)))
    with pytest.raises(HarnessError, match=r"plain\.txt: not a gzip-compressed hftbacktest capture"):
        import_hftbacktest(plain, tmp_path / "rec")
    with pytest.raises(HarnessError, match="no such file"):
        import_hftbacktest(tmp_path / "missing.gz", tmp_path / "rec")
    with pytest.raises(HarnessError, match="is a folder"):
        import_hftbacktest(tmp_path, tmp_path / "rec")
    with pytest.raises(HarnessError, match=r"unknown capture format 'tardis'; known formats: cryptofeed-v1, .*hft"):
        run_import(capture_format="tardis", source=plain, output=tmp_path / "rec", seconds=None)


def test_a_full_disk_is_one_error_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_space(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(RecordingWriter, "append", no_space)
    source = write_capture(tmp_path / "cap.gz", capture_lines())
    with pytest.raises(HarnessError, match=r"cannot write the recording to .*rec: No space left on device"):
        import_hftbacktest(source, tmp_path / "rec")


def test_an_existing_output_is_never_written_over(tmp_path: Path) -> None:
    source = write_capture(tmp_path / "cap.gz", capture_lines())
    import_hftbacktest(source, tmp_path / "rec")
    before = {p.name: p.read_bytes() for p in (tmp_path / "rec").iterdir()}
    with pytest.raises(HarnessError, match="already exists"):
        import_hftbacktest(source, tmp_path / "rec")
    assert {p.name: p.read_bytes() for p in (tmp_path / "rec").iterdir()} == before


def _cli_import(source: Path, output: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "harness.cli", "import", str(source), "-o", str(output)]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=REPO)


def test_cli_imports_and_a_bad_capture_is_one_error_line(tmp_path: Path) -> None:
    ok = _cli_import(write_capture(tmp_path / "cap.gz", capture_lines()), tmp_path / "rec")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("imported 5 frames (btcusdt@depth@100ms 3, btcusdt@trade 1, btcusdt@bookTicker 1)")
    failed = _cli_import(write_capture(tmp_path / "bad.gz", [(T0, b"{")]), tmp_path / "rec2")
    assert failed.returncode == 2
    lines = failed.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "bad.gz:1: not JSON" in lines[0]


@pytest.mark.skipif(not REAL_CAPTURE.exists(), reason="real capture not available")
def test_the_bundled_real_fixture_is_what_the_importer_writes(tmp_path: Path) -> None:
    import_hftbacktest(REAL_CAPTURE, tmp_path / "rec", seconds=60)
    fresh = [p.read_bytes() for p in sorted((tmp_path / "rec").iterdir())]
    stored = [p.read_bytes() for p in sorted(REAL_FIXTURE.iterdir())]
    stale = "fixture is stale: delete fixtures/binance_spot_btcusdt_real_60s and run `make fixture-real`"
    assert fresh == stored, stale


def test_the_bundled_real_fixture_holds_an_unbroken_depth_stream_after_its_snapshot() -> None:
    assert sum(p.stat().st_size for p in REAL_FIXTURE.iterdir()) < 1024 * 1024
    data = load_replay_data(REAL_FIXTURE)
    depth_frames = [f for f in data.frames if f.first_update_id is not None]
    assert len(depth_frames) > 500
    assert all(
        a.last_update_id is not None and b.first_update_id == a.last_update_id + 1
        for a, b in itertools.pairwise(depth_frames)
    )
    first = depth_frames[0]
    assert first.first_update_id is not None and first.last_update_id is not None
    assert first.first_update_id <= data.start_books["BTCUSDT"].last_update_id + 1 <= first.last_update_id


def usdm_lines() -> list[tuple[int, bytes]]:
    """A USD-M capture's shapes: `@depth@0ms` with `pu` (ids skip, as USD-M's do), the snapshot body
    with `E`/`T`, the first applicable event ending at its `lastUpdateId`."""

    def event(first: int, last: int, prev: int) -> bytes:
        data = {"e": "depthUpdate", "E": 1, "T": 1, "s": "BTCUSDT", "U": first, "u": last, "pu": prev}
        return orjson.dumps({"stream": "btcusdt@depth@0ms", "data": data | {"b": [["100.1", "1.5"]], "a": []}})

    snapshot = b'{"lastUpdateId":30,"E":2,"T":2,"bids":[["100.1","1.0"]],"asks":[["100.2","2.0"]]}'
    return [(T0, event(20, 30, 12)), (T0 + 1, snapshot), (T0 + 2, event(37, 41, 30)), (T0 + 3, event(45, 45, 41))]


def test_a_capture_with_pu_is_binance_usdm_unless_told_otherwise(tmp_path: Path) -> None:
    source = write_capture(tmp_path / "cap.gz", usdm_lines())
    import_hftbacktest(source, tmp_path / "rec")
    recording = Recording(tmp_path / "rec")
    assert recording.venue == "binance-usdm"
    requests = [e.url for e in recording.iter_events() if e.kind is EventKind.HTTP_REQUEST]
    assert requests == ["https://fapi.binance.com/fapi/v1/depth?symbol=BTCUSDT&limit=1"]
    data = load_replay_data(tmp_path / "rec")
    assert [f.prev_id for f in data.frames] == [12, 30, 41]
    assert data.start_books["BTCUSDT"].last_update_id == 30
    spot = write_capture(tmp_path / "spot.gz", capture_lines())
    import_hftbacktest(spot, tmp_path / "told", venue="binance-usdm")
    assert Recording(tmp_path / "told").venue == "binance-usdm"
    with pytest.raises(HarnessError, match="unknown venue 'nope'; known venues: binance-spot"):
        run_import(capture_format="hftbacktest", source=source, output=tmp_path / "x", seconds=None, venue="nope")
    assert not (tmp_path / "x").exists()


@pytest.mark.skipif(not REAL_USDM_CAPTURE.exists(), reason="real capture not available")
def test_the_bundled_usdm_fixture_is_what_the_importer_writes(tmp_path: Path) -> None:
    import_hftbacktest(REAL_USDM_CAPTURE, tmp_path / "rec", seconds=30)
    fresh = [p.read_bytes() for p in sorted((tmp_path / "rec").iterdir())]
    stored = [p.read_bytes() for p in sorted(REAL_USDM_FIXTURE.iterdir())]
    stale = "fixture is stale: delete fixtures/binance_usdm_btcusdt_real_30s and run `make fixture-real`"
    assert fresh == stored, stale


def test_the_usdm_fixture_chains_on_pu_and_its_first_event_brackets_the_snapshot() -> None:
    assert sum(p.stat().st_size for p in REAL_USDM_FIXTURE.iterdir()) < 1024 * 1024
    data = load_replay_data(REAL_USDM_FIXTURE)
    assert data.dialect.name == "binance-usdm"
    chain = [f.chain for f in data.frames if f.chain is not None]
    assert len(chain) > 500
    assert all(b.prev_id == a.last_id for a, b in itertools.pairwise(chain))
    assert any(b.first_id != a.last_id + 1 for a, b in itertools.pairwise(chain)), "USD-M ids skip"
    snapshot = data.snapshots["BTCUSDT"][0]
    assert chain[0].first_id <= snapshot.last_update_id <= chain[0].last_id
    assert data.start_books["BTCUSDT"].last_update_id == snapshot.last_update_id
