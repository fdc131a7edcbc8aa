"""One Bybit recording holding spot and linear (as cryptofeed captures Bybit): the fake venue serves
each market on its own path under the same topic names, as Bybit does; our subject and a user's own
client each open a connection per market and end on the oracle's books. The real capture (AGPL) is
read in place from ../shared/data/real, never copied; its tests skip where it is absent."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from harness.book_events import DepthSnapshot
from harness.replay import ReplayRequest, oracle_for, run_replay
from harness.sync import BookSync, GapDetected
from harness.venues.bybit.control import request_frame
from harness.venues.bybit.decoder import decode_frame
from harness.venues.bybit.sequencing import BybitSequencing
from harness.venues.bybit.wire import WIRE
from recorder.import_cryptofeed_v3 import import_cryptofeed_v3
from replayer.replay_data import ReplayData, load_replay_data
from replayer.serve_command import _how_to_connect
from replayer.venue_actions import Write
from replayer.venue_core import VenueCore
from tests.bybit_frames import REAL_BYBIT, two_market_capture

REPO = Path(__file__).resolve().parents[1]
NOW = 10**12
WALL = 1_700_000_000 * 10**9
PEER = ("127.0.0.1", 50_000)
USER_SUBJECT = "tests.bybit_user_subject:create"


@pytest.fixture(scope="module")
def real_recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not REAL_BYBIT.exists():
        pytest.skip(f"{REAL_BYBIT} not present")
    out = tmp_path_factory.mktemp("bybit_real") / "rec"
    import_cryptofeed_v3(REAL_BYBIT, out)
    return out


def _failures(report: dict) -> list[str]:
    return [f"{row['name']}: got {row['value']!r}" for row in report["expectations"] if row["passed"] is False]


def _served(data: ReplayData, topic: str) -> dict[str, list[Write]]:
    """Connections on /spot and /linear, each subscribed to `topic`, after the whole schedule: what each got."""
    core = VenueCore(data, WIRE, started_ns=NOW)
    conns = {market: core.open(f"/v5/public/{market}", PEER, NOW, WALL)[0] for market in ("spot", "linear")}
    actions = []
    for conn in conns.values():
        actions += core.receive(conn, request_frame("subscribe", (topic,), "s").decode(), NOW, WALL)
    for entry in core.schedule:
        actions += core.entry(entry, NOW)
    return {m: [a for a in actions if isinstance(a, Write) and a.conn == conn] for m, conn in conns.items()}


def test_one_real_recording_serves_spot_and_linear_each_on_its_own_path(real_recording: Path) -> None:
    data = load_replay_data(real_recording)
    oracle = oracle_for(data)
    served = _served(data, "orderbook.200.BTCUSDT")
    for market, writes in served.items():
        stream = f"{market}/orderbook.200.BTCUSDT"
        sent = [w.entry.frame.stream for w in writes if w.entry is not None]
        assert sent and set(sent) == {stream}, f"{market} gets its own market's book only"
        assert len(sent) == sum(1 for frame in data.frames if frame.stream == stream)
        sync, gaps = BookSync(BybitSequencing()), 0
        for write in writes:
            event = decode_frame(write.payload, market=f"{market}/")
            if event is None:
                continue
            decisions = sync.on_stream_snapshot(event) if isinstance(event, DepthSnapshot) else sync.on_delta(event)
            gaps += sum(isinstance(d, GapDetected) for d in decisions)
        symbol = f"{market}/BTCUSDT"
        last = oracle.last_update_id(symbol)
        assert gaps == 0 and sync.synced and sync.last_update_id == last
        expected = oracle.full_book(symbol, last)
        assert expected is not None
        bids, asks = sync.book.depth()
        assert ([tuple(level) for level in bids], [tuple(level) for level in asks]) == (
            [tuple(level) for level in expected[0]],
            [tuple(level) for level in expected[1]],
        ), "the book the venue's own rule gives"


def test_a_users_own_client_syncs_both_markets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A client we did not write (tests/bybit_user_subject.py: raw websockets, its book in floats)
    subscribes to the same topic on /spot and /linear and is judged on both books. At speed 1: at
    speed 0 this 1.6 s recording is all sent before the second connection has subscribed."""
    import_cryptofeed_v3(two_market_capture(tmp_path / "cap.jsonl.zst"), tmp_path / "rec")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    report = run_replay(ReplayRequest(scenario="clean", recording=tmp_path / "rec", subject=USER_SUBJECT, speed=1))
    assert report["passed"], _failures(report)
    sync = report["sync"]
    assert sync["divergent"] == 0 and sync["checks"] >= 60
    assert {f["symbol"]: f["correct"] for f in sync["final"]} == {"spot/BTCUSDT": True, "linear/BTCUSDT": True}
    assert report["venue"]["connections"] == 2


@pytest.mark.slow
def test_the_real_capture_replays_clean_for_our_subject_and_a_users(
    real_recording: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    with ThreadPoolExecutor(2) as pool:
        runs = {
            subject: pool.submit(
                # At the scenario's pace: at speed 0 the venue sends as fast as the first connection reads, so
                # how much passes before the other market's connection syncs is the machine's, not the subject's.
                run_replay,
                ReplayRequest(scenario="clean", recording=real_recording, subject=subject),
            )
            for subject in ("harness.default_subject:create", USER_SUBJECT)
        }
        reports = {subject: run.result() for subject, run in runs.items()}
    for report in reports.values():
        assert report["passed"], _failures(report)
        sync = report["sync"]
        assert sync["divergent"] == 0 and sync["recording_gaps"] == 0 and sync["checks"] > 2000
        assert len(sync["final"]) == 6 and all(final["correct"] for final in sync["final"])
        assert report["venue"]["connections"] == 2, "one per market"


def test_serve_says_where_each_market_is(tmp_path: Path) -> None:
    import_cryptofeed_v3(two_market_capture(tmp_path / "cap.jsonl.zst", deltas=2), tmp_path / "rec")
    lines = _how_to_connect(load_replay_data(tmp_path / "rec"), "ws://h:1", "http://h:1")
    assert lines[0].startswith("websocket: ws://h:1  (e.g. ws://h:1/v5/public/linear, then send {")
    assert lines[1].split()[:3] == ["ws://h:1", "(and", "ws://h:1/v5/public/spot,"]
    assert '"args":["orderbook.50.BTCUSDT","publicTrade.BTCUSDT"]' in lines[1]
